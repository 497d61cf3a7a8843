"""Stride length, speed, foot progression and swing height (foot sensor), by
zero-velocity-aided strapdown integration between two foot-flats.

From the foot-flat of the previous step to the foot-flat of this one the foot's
orientation is integrated from the gyroscope and levelled at the second flat by gravity,
taken as the mean specific force over the stride (flat to flat: the velocity is the same
at both ends, so the mean acceleration is zero); the gravity-free acceleration rotated
into that level frame is integrated to velocity; the foot is still at both flats, so the
velocity's drift is removed linearly to make it zero at both ends (zero-velocity update,
Foxlin 2005, IEEE CG&A 25(6):38; Skog et al. 2010, IEEE TBME 57:2657; the PyShoe INS of
Wagstaff et al. 2020), and integrated to position.

* ``stride_length_m``: horizontal displacement between the two flats (one stride),
* ``speed_mps``: stride length / stride time (this foot's IC to IC),
* ``foot_progression_deg``: angle between the foot's long axis in stance and the direction
  of travel over the stride that ends at this step: the mean heading of the sensor's
  forward axis at the two flats minus the heading of the displacement. On a curve the
  displacement is the chord of the arc, whose direction is the mean of the travel
  directions at its ends, so the turn cancels (the mean of both stances' angles). The
  foot's long axis is taken perpendicular to the axis the foot pitches about in swing
  (:func:`.strapdown_kernels.foot_heading`), which is exact when the foot swings about its own lateral axis (as
  simulated). A real foot's swing mixes leg rotation (perpendicular to travel) and ankle
  rotation, so on real data the absolute angle depends on that assumption (PyShoe: the
  axis estimates tried differ by up to ~10 deg); changes within a session are robust.
  (the displacement), toe-out positive for both feet (Rebula et al. 2013, Gait Posture
  38:974; Falbriard et al. 2020). The foot's long axis is the sensor's forward axis after
  ``detectors.alignment`` (perpendicular to the foot's swing axis).
* ``swing_height_m``: highest point of the sensor in swing above the line joining its
  heights at the two flats (ground assumed level over one stride).
* ``landing_velocity_mps``: forward (direction of travel) velocity of the foot at the
  onset of the impact - the foot-sensor proxy for overstriding. A foot that lands ahead of
  the body is still moving forward at contact; pulling it back before landing (swing-leg
  retraction) lowers it and the braking impulse (Seyfarth et al. 2003, J. Biomech.
  36:1853; Lieberman et al. 2015, J. Exp. Biol. 218:3406 on landing ahead of the body).
  The usual cue when it is high is a 5-10 % higher step rate (Heiderscheit et al. 2011).

Integration spans one stride only (< ``max_stride_s``), so drift stays bounded. The sample
loops (orientation, velocity, position, swing axis) are compiled kernels in
:mod:`.strapdown_kernels` (numpy's per-call overhead dominated a stride's few hundred samples).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from detectors.form import Values, nan_all
from detectors.form import strapdown_kernels as _sk
from detectors.form.orientation import (FLAT_MAX_ACC_DEV_MS2, FLAT_MAX_DPS, integrate,
                                       previous_stance_bounds, quiet_window_len, stance_bounds, stride_mean_up)
from pipeline.records import SampleBlock, Step

NAMES = ("stride_length_m", "speed_mps", "foot_progression_deg", "swing_height_m", "landing_velocity_mps")
PRE_N = 2  # samples kept before the previous IC
# Not a metric: the direction of travel (rad) in the level frame of this step's foot-flat,
# which the foot's stance attitude shares (same anchor, same levelling), for braking.
TRAVEL_HEADING = "_travel_heading_rad"
# Swing samples that define the foot's pitch axis: faster than this (deg/s); see foot_heading.
SWING_MIN_DPS = 100.0


@dataclass(frozen=True)
class StrideSamples:
    """Body-frame samples from the previous IC to the end of this step's window."""

    acc_ms2: np.ndarray
    gyr_dps: np.ndarray | None
    start_index: int  # segment index of row 0
    fs_hz: float
    prev_ic_index: float

    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    def rel(self, index: float) -> float:
        return index - self.start_index

    @property
    def quats(self) -> np.ndarray:
        """Gyro integrated once over the stride (body_k -> body_0), shared by all metrics."""
        q = self._memo.get("q")
        if q is None:
            q = self._memo["q"] = integrate(self.gyr_dps, self.fs_hz)
        return q

    def foot(self, step: Step) -> tuple:
        """The foot's per-step pass over these samples, once for the stance attitude and the
        stride metrics (:func:`.strapdown_kernels.foot_stride`): ``(att_ok, anchor, mats,
        stride_code, dx, dy, swing_height_m, landing_mps, heading_foot_rad)``, ``anchor`` in
        stride samples, ``mats`` over the step's window."""
        key = ("foot", step.ic_index, step.to_index, step.window_start_index)
        got = self._memo.get(key)
        if got is None:
            ic, to, pic = self.rel(step.ic_index), self.rel(step.to_index), self.rel(self.prev_ic_index)
            contact = to - ic
            lo1, hi1 = stance_bounds(ic, to)
            lo0, hi0 = previous_stance_bounds(pic, contact)
            off = step.window_start_index - self.start_index
            got = self._memo[key] = _sk.foot_stride(
                self.gyr_dps, self.acc_ms2, float(self.fs_hz), float(step.gravity_ms2), quiet_window_len(self.fs_hz),
                lo1, hi1, lo0, hi0, off, off + step.acc_ms2.shape[0],
                # the swing: from the previous TO (about one contact after its IC) to IC
                int(math.ceil(pic + contact)), int(ic), float(ic), FLAT_MAX_DPS, FLAT_MAX_ACC_DEV_MS2, SWING_MIN_DPS)
        return got

    def up_at(self, anchor: int, *, start: int, gravity_ms2: float) -> tuple[float, float, float] | None:
        """Gravity in the body frame of ``anchor`` from the mean specific force over
        ``[start, anchor)`` (:func:`detectors.form.orientation.stride_mean_up`)."""
        key = ("up", anchor, start, gravity_ms2)
        if key not in self._memo:
            self._memo[key] = stride_mean_up(self.quats, self.acc_ms2, start=start, anchor=anchor,
                                             gravity_ms2=gravity_ms2)
        return self._memo[key]

    def level_mats(self, anchor: int, up_body, lo: int, hi: int) -> np.ndarray:
        """Body -> level matrices of samples [lo, hi) for the level frame of ``anchor``
        (gravity along ``up_body`` in its body frame)."""
        return _sk.level_matrices(self.quats, anchor, float(up_body[0]), float(up_body[1]), float(up_body[2]),
                                  lo, hi)


class SampleBuffer:
    """Whole body-frame blocks of one segment, bounded to ``buffer_s`` (plus one block).

    Which samples are kept is decided per whole block (as the blocks arrive); the samples
    themselves are copied once into contiguous arrays, so a stride is a (read-only) view
    rather than a concatenation of blocks at every step. Storage grows to at most twice
    the samples kept (bounded by ``buffer_s`` and the block size)."""

    def __init__(self, *, buffer_s: float):
        if not buffer_s > 0:
            raise ValueError(f"buffer_s must be > 0, got {buffer_s}")
        self.buffer_s = buffer_s
        self._acc = np.empty((0, 3))
        self._gyr: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self._blocks: deque[tuple[int, int]] = deque()  # (first segment index, samples) of the kept blocks
        self._segment = None
        self._has_gyr = False
        self._n = 0
        self._lo = self._hi = 0  # storage rows of the kept samples

    def append(self, block: SampleBlock) -> None:
        n = block.acc_ms2.shape[0]
        if self._blocks:
            first, last_n = self._blocks[-1]
            if block.segment != self._segment or block.first_index != first + last_n:
                self.reset()
        if not self._blocks:
            self._segment, self._has_gyr = block.segment, block.gyr_dps is not None
        self._store(block, n)
        self._blocks.append((block.first_index, n))
        self._n += n
        limit = self.buffer_s * block.fs_hz
        while len(self._blocks) > 1 and self._n - self._blocks[0][1] >= limit:
            self._drop_first()

    def _store(self, block: SampleBlock, n: int) -> None:
        live = self._hi - self._lo
        if self._hi + n > self._acc.shape[0]:  # no room at the end: compact, or grow
            if live + n > self._acc.shape[0] // 2:
                cap = max(2 * (live + n), 4096)
                acc = np.empty((cap, 3))
                acc[:live] = self._acc[self._lo:self._hi]
                gyr = None
                if self._has_gyr:
                    gyr = np.empty((cap, 3))
                    if self._gyr is not None:
                        gyr[:live] = self._gyr[self._lo:self._hi]
                self._acc, self._gyr = acc, gyr
            else:  # slice assignment copes with the overlap
                self._acc[:live] = self._acc[self._lo:self._hi]
                if self._has_gyr:
                    self._gyr[:live] = self._gyr[self._lo:self._hi]
            self._lo, self._hi = 0, live
        if self._has_gyr and self._gyr is None:
            self._gyr = np.empty_like(self._acc)
        self._acc[self._hi:self._hi + n] = block.acc_ms2
        if self._has_gyr:
            self._gyr[self._hi:self._hi + n] = block.gyr_dps
        self._hi += n

    def _drop_first(self) -> None:
        _, n = self._blocks.popleft()
        self._n -= n
        self._lo += n

    def keep_from_step(self, step: Step) -> None:
        """Drop what the next step's stride (from this step's IC) will not need."""
        self.trim_before(int(math.floor(step.ic_index)) - 2 * PRE_N)

    def trim_before(self, index: int) -> None:
        """Drop whole blocks that end at or before segment index ``index``."""
        while len(self._blocks) > 1 and self._blocks[0][0] + self._blocks[0][1] <= index:
            self._drop_first()

    def stride(self, step: Step, *, max_stride_s: float) -> StrideSamples | None:
        """This step's stride samples, or None (first step, stride too long, not buffered)."""
        if not self._blocks or not math.isfinite(step.prev_ic_s) or step.stride_s > max_stride_s:
            return None
        fs = step.fs_hz
        prev_ic = step.ic_index - step.stride_s * fs
        lo = int(math.floor(prev_ic)) - PRE_N
        hi = step.window_start_index + step.acc_ms2.shape[0]
        first = self._blocks[0][0]
        if lo < first or hi > first + (self._hi - self._lo) or self._segment != step.segment:
            return None
        r0 = self._lo + lo - first
        acc = self._acc[r0:r0 + hi - lo]
        acc.flags.writeable = False  # a view of the buffer: read-only, like a Step's samples
        gyr = None
        if self._has_gyr:
            gyr = self._gyr[r0:r0 + hi - lo]
            gyr.flags.writeable = False
        return StrideSamples(acc_ms2=acc, gyr_dps=gyr, start_index=lo, fs_hz=fs, prev_ic_index=prev_ic)


def stride_metrics(step: Step, stride: StrideSamples | None, *, side: str, max_stride_s: float = 2.5) -> Values:
    if stride is None:
        return nan_all(NAMES, "no_previous_stride" if not math.isfinite(step.prev_ic_s) or step.stride_s > max_stride_s
                       else "stride_not_buffered")
    if stride.gyr_dps is None:
        return nan_all(NAMES, "no_gyro")
    if not math.isfinite(step.to_index):
        return nan_all(NAMES, "no_toe_off")
    # flats, stride-mean levelling, zero-velocity-aided integration from flat to flat and the
    # foot's long axis in one compiled pass (detectors/_jit.py), shared with the stance attitude
    _, _, _, code, dx, dy, swing_height, landing, heading_foot = stride.foot(step)
    if code:
        return nan_all(NAMES, "no_foot_flat" if code == 1 else "stride_not_periodic")
    length = math.hypot(dx, dy)
    travel = math.atan2(dy, dx)
    diff = (travel - heading_foot + math.pi) % (2 * math.pi) - math.pi
    fpa = math.degrees(diff) * (1.0 if side == "right" else -1.0)
    return {"stride_length_m": (length, ""), "speed_mps": (length / step.stride_s, ""),
            "foot_progression_deg": (fpa, ""), "swing_height_m": (swing_height, ""),
            "landing_velocity_mps": (landing, "" if math.isfinite(landing) else "no_foot_flat"),
            TRAVEL_HEADING: (travel, "")}
