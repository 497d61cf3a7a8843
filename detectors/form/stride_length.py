"""Stride length, speed, foot progression and swing height (foot sensor), by
zero-velocity-aided strapdown integration between two foot-flats.

From the foot-flat of the previous step to the foot-flat of this one the foot's
orientation is integrated from the gyroscope (levelled by gravity at the first flat), the
gravity-free acceleration rotated into that level frame and integrated to velocity; the
foot is still at both flats, so the velocity's drift is removed linearly to make it zero
at both ends (zero-velocity update, Foxlin 2005, IEEE CG&A 25(6):38; Skog et al. 2010,
IEEE TBME 57:2657; the PyShoe INS of Wagstaff et al. 2020), and integrated to position.

* ``stride_length_m``: horizontal displacement between the two flats (one stride),
* ``speed_mps``: stride length / stride time (this foot's IC to IC),
* ``foot_progression_deg``: angle between the foot's long axis in stance and the direction
  of travel over the stride that ends at this step: the mean heading of the sensor's
  forward axis at the two flats minus the heading of the displacement. On a curve the
  displacement is the chord of the arc, whose direction is the mean of the travel
  directions at its ends, so the turn cancels (the mean of both stances' angles). The
  foot's long axis is taken perpendicular to the axis the foot pitches about in swing
  (:func:`_foot_axis`), which is exact when the foot swings about its own lateral axis (as
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

Integration spans one stride only (< ``max_stride_s``), so drift stays bounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from detectors.form import Values, nan_all
from detectors.form.orientation import (FLAT_MAX_ACC_DEV_MS2, FLAT_MAX_DPS, integrate, level_matrix, quat_matrices,
                                       quiet_anchor, stride_mean_up)
from pipeline.records import SampleBlock, Step

NAMES = ("stride_length_m", "speed_mps", "foot_progression_deg", "swing_height_m", "landing_velocity_mps")
PRE_N = 2  # samples kept before the previous IC
# Not a metric: the direction of travel (rad) in the level frame of this step's foot-flat,
# which the foot's stance attitude shares (same anchor, same levelling), for braking.
TRAVEL_HEADING = "_travel_heading_rad"


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
        if "q" not in self._memo:
            self._memo["q"] = integrate(self.gyr_dps, self.fs_hz)
        return self._memo["q"]

    @property
    def mats0(self) -> np.ndarray:
        """Rotation matrices body_k -> body_0, (n, 3, 3)."""
        if "m" not in self._memo:
            self._memo["m"] = quat_matrices(self.quats)
        return self._memo["m"]

    @property
    def f0(self) -> np.ndarray:
        """Specific force of every sample in the body frame of sample 0, (n, 3): any other
        frame is one 3x3 product away, so no per-anchor rotation of the whole stride."""
        if "f" not in self._memo:
            self._memo["f"] = np.einsum("nij,nj->ni", self.mats0, self.acc_ms2)
        return self._memo["f"]

    def up_at(self, anchor: int, *, start: int, gravity_ms2: float) -> np.ndarray | None:
        """Gravity in the body frame of ``anchor`` from the mean specific force over
        ``[start, anchor)`` (:func:`detectors.form.orientation.stride_mean_up`)."""
        return stride_mean_up(self.mats0[anchor], self.f0, start=start, anchor=anchor, gravity_ms2=gravity_ms2)

    def level_mats(self, anchor: int, up_body: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Body -> level matrices of samples [lo, hi) for the level frame of ``anchor``."""
        return np.einsum("ij,njk->nik", self.to_level(anchor, up_body), self.mats0[lo:hi])

    def to_level(self, anchor: int, up_body: np.ndarray) -> np.ndarray:
        """3x3 taking body_0 vectors into the level frame of ``anchor``."""
        return level_matrix(up_body) @ self.mats0[anchor].T


class SampleBuffer:
    """Whole body-frame blocks of one segment, bounded to ``buffer_s`` (plus one block)."""

    def __init__(self, *, buffer_s: float):
        if not buffer_s > 0:
            raise ValueError(f"buffer_s must be > 0, got {buffer_s}")
        self.buffer_s = buffer_s
        self.reset()

    def reset(self) -> None:
        self._blocks: list[SampleBlock] = []
        self._n = 0

    def append(self, block: SampleBlock) -> None:
        if self._blocks:
            last = self._blocks[-1]
            if block.segment != last.segment or block.first_index != last.end_index:
                self.reset()
        self._blocks.append(block)
        self._n += block.n
        limit = self.buffer_s * block.fs_hz
        while len(self._blocks) > 1 and self._n - self._blocks[0].n >= limit:
            self._n -= self._blocks.pop(0).n

    def keep_from_step(self, step: Step) -> None:
        """Drop what the next step's stride (from this step's IC) will not need."""
        self.trim_before(int(math.floor(step.ic_index)) - 2 * PRE_N)

    def trim_before(self, index: int) -> None:
        """Drop whole blocks that end at or before segment index ``index``."""
        while len(self._blocks) > 1 and self._blocks[0].end_index <= index:
            self._n -= self._blocks.pop(0).n

    def stride(self, step: Step, *, max_stride_s: float) -> StrideSamples | None:
        """This step's stride samples, or None (first step, stride too long, not buffered)."""
        if not self._blocks or not math.isfinite(step.prev_ic_s) or step.stride_s > max_stride_s:
            return None
        fs = step.fs_hz
        prev_ic = step.ic_index - step.stride_s * fs
        lo = int(math.floor(prev_ic)) - PRE_N
        hi = step.window_start_index + step.acc_ms2.shape[0]
        first = self._blocks[0]
        if lo < first.first_index or hi > self._blocks[-1].end_index or first.segment != step.segment:
            return None
        acc = np.concatenate([b.acc_ms2 for b in self._blocks])
        s0 = lo - first.first_index
        gyr = None
        if first.gyr_dps is not None:
            gyr = np.concatenate([b.gyr_dps for b in self._blocks])[s0:s0 + hi - lo]
        return StrideSamples(acc_ms2=acc[s0:s0 + hi - lo], gyr_dps=gyr, start_index=lo, fs_hz=fs,
                             prev_ic_index=prev_ic)


def _flat(acc, gyr, fs, lo, hi, g):
    a0, a1, rate = quiet_anchor(gyr, fs, lo, hi)
    up = acc[a0:a1].mean(axis=0)
    ok = rate <= FLAT_MAX_DPS and abs(np.linalg.norm(up) - g) <= FLAT_MAX_ACC_DEV_MS2
    return (a0 + a1) // 2, up, ok


def _foot_axis(gyr_dps: np.ndarray, up_body: np.ndarray) -> np.ndarray:
    """The foot's long axis (body frame, level at flat) from this stride's swing:
    perpendicular to the axis the foot pitches about (the principal axis of the angular
    rate from toe-off to contact, where the foot pitches but no longer everts) and to the
    vertical. The alignment's forward axis comes from all samples, so stance eversion
    (rolling about the long axis while pitching) tilts it by ~1-2 deg, which would bias
    foot progression."""
    w = gyr_dps[np.linalg.norm(gyr_dps, axis=1) > 100.0]
    if w.shape[0] < 5:
        return np.array([1.0, 0.0, 0.0])
    ml = np.linalg.eigh(w.T @ w)[1][:, -1]
    if ml[1] < 0:  # the alignment's y is left: keep that sign
        ml = -ml
    f = np.cross(ml, up_body)
    return f / np.linalg.norm(f)


def stride_metrics(step: Step, stride: StrideSamples | None, *, side: str, max_stride_s: float = 2.5) -> Values:
    if stride is None:
        return nan_all(NAMES, "no_previous_stride" if not math.isfinite(step.prev_ic_s) or step.stride_s > max_stride_s
                       else "stride_not_buffered")
    if stride.gyr_dps is None:
        return nan_all(NAMES, "no_gyro")
    if not math.isfinite(step.to_index):
        return nan_all(NAMES, "no_toe_off")
    fs, g = stride.fs_hz, step.gravity_ms2
    acc, gyr = stride.acc_ms2, stride.gyr_dps
    ic, to, pic = stride.rel(step.ic_index), stride.rel(step.to_index), stride.rel(stride.prev_ic_index)
    contact = to - ic
    # previous flat: within a contact time after the previous IC (its TO is not in the Step)
    k0, _, ok0 = _flat(acc, gyr, fs, int(math.ceil(pic + 0.1 * contact)), int(math.floor(pic + 0.85 * contact)), g)
    k1, _, ok1 = _flat(acc, gyr, fs, int(math.ceil(ic + 0.1 * contact)), int(math.floor(to - 0.15 * contact)), g)
    if not (ok0 and ok1) or k1 - k0 < 3:
        return nan_all(NAMES, "no_foot_flat")
    up = stride.up_at(k1, start=k0, gravity_ms2=g)  # this flat's frame, levelled by the stride mean
    if up is None:
        return nan_all(NAMES, "stride_not_periodic")
    to_level = stride.to_level(k1, up)
    a = stride.f0[k0:k1 + 1] @ to_level.T
    a[:, 2] -= g
    dt = 1.0 / fs
    v = np.concatenate([[np.zeros(3)], np.cumsum(0.5 * (a[1:] + a[:-1]), axis=0) * dt])
    v -= np.outer(np.linspace(0.0, 1.0, v.shape[0]), v[-1])  # zero velocity at both flats
    pos = np.concatenate([[np.zeros(3)], np.cumsum(0.5 * (v[1:] + v[:-1]), axis=0) * dt])
    d = pos[-1]
    length = float(math.hypot(d[0], d[1]))
    swing = gyr[int(math.ceil(pic + contact)):int(ic)]  # previous TO (about one contact after its IC) to IC
    mats = np.einsum("ij,njk->nik", to_level, stride.mats0[[k0, k1]])
    fwd = np.einsum("nij,j->ni", mats, _foot_axis(swing, up))  # long axis at both flats
    heading_foot = math.atan2(fwd[:, 1].sum(), fwd[:, 0].sum())  # mean heading: the chord of a curve
    travel = math.atan2(d[1], d[0])
    diff = (travel - heading_foot + math.pi) % (2 * math.pi) - math.pi
    fpa = math.degrees(diff) * (1.0 if side == "right" else -1.0)
    z = pos[:, 2] - np.linspace(0.0, 1.0, pos.shape[0]) * d[2]
    # forward (direction of travel) velocity of the foot at the onset of the impact
    v_fwd = (v[:, 0] * d[0] + v[:, 1] * d[1]) / length if length > 0 else v[:, 0] * math.nan
    landing = float(np.interp(ic - k0, np.arange(v.shape[0]), v_fwd)) if k0 < ic < k1 else math.nan
    return {"stride_length_m": (length, ""), "speed_mps": (length / step.stride_s, ""),
            "foot_progression_deg": (fpa, ""), "swing_height_m": (float(z.max()), ""),
            "landing_velocity_mps": (landing, "" if math.isfinite(landing) else "no_foot_flat"),
            TRAVEL_HEADING: (travel, "")}
