"""Drift-controlled orientation over one step window, reset at every stance.

The gyroscope is integrated only across one step's window (about 0.4 s of running), from
an *anchor* sample at which the sensor's tilt is known from gravity, forwards and
backwards. Nothing is carried from step to step, so gyro bias can only accumulate over
a fraction of a second (a 2 deg/s bias gives < 0.4 deg at IC): the zero-velocity /
foot-flat reset of foot-mounted inertial navigation (Foxlin 2005, IEEE CG&A 25(6):38;
Skog et al. 2010, IEEE TBME 57:2657) and of the foot-strike-angle method of Falbriard
et al. 2020 (Front. Sports Act. Living 2:558019 - orientation integrated from foot-flat
back to initial contact).

Anchor: for the foot the quietest part of stance (foot-flat; smallest mean angular rate
over ``QUIET_WINDOW_S``), where the specific force is gravity. For a segment that is never
still (the shank) callers pass their own anchor and up vector.

Output: rotation matrices ``R[k]`` taking body-frame vectors of sample ``k`` into the
*level frame* of the anchor: z up (world vertical), x the anchor's forward axis levelled
(heading = the body x axis at the anchor). Angles follow the simulator's and ISB's
``Rz(yaw) Ry(-pitch) Rx(roll)`` order: pitch toe-up positive, roll positive when the body
y axis (left) rises.

Integration: quaternion increments from the trapezoidal mean rate of consecutive samples,
composed sample by sample (body frame, on the right) in a compiled loop
(:mod:`.strapdown_kernels`; sequential integration is the natural form and numpy's per-call
overhead dominated the per-step cost, see :mod:`detectors._jit`). Written by hand rather
than with ``scipy.spatial.transform.Rotation`` because no library offers a fast
*cumulative* composition (a per-sample loop of Rotation products costs ~5 us per sample,
2 ms per step); the small pieces (Hamilton product, matrix of a quaternion, levelling
rotation) are the textbook formulas, checked against scipy by tests/test_form_orientation.py
and by the accuracy tests (angles within 0.5 deg of the simulator, which uses scipy).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from detectors.form import stance_kernels as _pk
from detectors.form import strapdown_kernels as _sk

# Foot-flat window: short, because the foot is not perfectly still while it everts (a
# sensor 7 cm above the eversion axis feels ~80 rad/s^2 x 0.07 m a few ms away from the
# eversion peak); 3 samples at least (zero-velocity detectors use 5-30 samples).
QUIET_WINDOW_S = 0.012


def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (..., 4) quaternions in scalar-last (x, y, z, w) order."""
    a, b = np.broadcast_arrays(a, b)
    ax, ay, az, aw = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bx, by, bz, bw = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    out = np.empty(a.shape)
    out[..., 0] = aw * bx + ax * bw + ay * bz - az * by
    out[..., 1] = aw * by - ax * bz + ay * bw + az * bx
    out[..., 2] = aw * bz + ax * by - ay * bx + az * bw
    out[..., 3] = aw * bw - ax * bx - ay * by - az * bz
    return out


def integrate(gyr_dps: np.ndarray, fs_hz: float) -> np.ndarray:
    """Orientation of every sample relative to sample 0 as quaternions (body_k -> body_0)."""
    return _sk.integrate_gyro(np.asarray(gyr_dps, dtype=float), float(fs_hz))


def quat_matrices(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (n, 3, 3) of unit quaternions (n, 4), scalar last."""
    x, y, z, w = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    m = np.empty((q.shape[0], 3, 3))
    m[:, 0, 0] = 1 - 2 * (y * y + z * z)
    m[:, 0, 1] = 2 * (x * y - z * w)
    m[:, 0, 2] = 2 * (x * z + y * w)
    m[:, 1, 0] = 2 * (x * y + z * w)
    m[:, 1, 1] = 1 - 2 * (x * x + z * z)
    m[:, 1, 2] = 2 * (y * z - x * w)
    m[:, 2, 0] = 2 * (x * z - y * w)
    m[:, 2, 1] = 2 * (y * z + x * w)
    m[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return m


def level_matrix(up_body: np.ndarray) -> np.ndarray:
    """Smallest rotation (3x3) taking the measured up direction (body frame) onto +z."""
    return _sk.level_matrix(float(up_body[0]), float(up_body[1]), float(up_body[2]))


@functools.lru_cache(maxsize=64)
def quiet_window_len(fs_hz: float) -> int:
    """Samples of the foot-flat window: ``QUIET_WINDOW_S``, at least 3."""
    return max(3, int(round(QUIET_WINDOW_S * float(fs_hz))))


def _bounds(n: int, fs_hz: float, lo: int, hi: int) -> tuple[int, int, int]:
    w = quiet_window_len(fs_hz)
    lo, hi = max(lo, 0), min(hi, n)
    if hi - lo < w:
        w = max(1, hi - lo)
    if hi - lo < w:
        raise ValueError(f"quiet window: empty range [{lo}, {hi})")
    return w, lo, hi


def quiet_anchor(gyr_dps: np.ndarray, fs_hz: float, lo: int, hi: int) -> tuple[int, int, float]:
    """Start, end (exclusive) of the quietest ``QUIET_WINDOW_S`` window inside [lo, hi), and
    its mean angular-rate magnitude in deg/s (foot-flat when small)."""
    w, lo, hi = _bounds(gyr_dps.shape[0], fs_hz, lo, hi)
    k, rate = _sk.quiet_window(gyr_dps, w, lo, hi)
    return k, k + w, rate


def foot_flat(gyr_dps: np.ndarray, acc_ms2: np.ndarray, fs_hz: float, lo: int, hi: int):
    """The foot-flat candidate of [lo, hi) (:func:`quiet_anchor`): its middle sample, the
    mean specific force there (body frame, m/s^2, a tuple) and its norm, the mean angular
    rate (deg/s)."""
    a0, a1, rate, ux, uy, uz, norm = _sk.foot_flat(gyr_dps, acc_ms2, quiet_window_len(fs_hz), lo, hi)
    return (a0 + a1) // 2, (ux, uy, uz), norm, rate


@dataclass(frozen=True)
class Attitude:
    """Level-frame orientation of every sample of a step window (see module doc)."""

    matrices: np.ndarray  # (n, 3, 3) body -> level
    anchor: int
    fs_hz: float

    def level(self, v: np.ndarray) -> np.ndarray:
        """Body-frame vectors (n, 3) of the window expressed in the level frame."""
        return _pk.level_rows(self.matrices, np.asarray(v, dtype=float))

    def pitch_deg(self) -> np.ndarray:
        """Inclination of the body x axis above the horizontal (toe-up / forward-up positive)."""
        return _pk.pitch_series(self.matrices)

    def roll_deg(self) -> np.ndarray:
        """Roll about the body x axis (ZYX Euler roll): positive when the body y (left) rises."""
        return _pk.roll_series(self.matrices)

    def pitch_at_deg(self, rel_index: float) -> float:
        """:meth:`pitch_deg` interpolated at a fractional window index (as :func:`interp`)."""
        return _pk.pitch_at(self.matrices, float(rel_index))

    def axis_pitch_at_deg(self, axis_body: np.ndarray, rel_index: float) -> float:
        """:meth:`axis_pitch_deg` interpolated at a fractional window index."""
        return _pk.axis_pitch_at(self.matrices, np.asarray(axis_body, dtype=float), float(rel_index))

    def axis_pitch_deg(self, axis_body: np.ndarray) -> np.ndarray:
        """Sagittal inclination of a body-fixed axis from the vertical, positive when its
        *lower* end is ahead (forward, level x) of its upper end: ``atan2(-x, z)``."""
        return _pk.axis_pitch_series(self.matrices, np.asarray(axis_body, dtype=float))


def attitude(gyr_dps: np.ndarray, fs_hz: float, *, anchor: int, up_body: np.ndarray,
             quats: np.ndarray | None = None) -> Attitude:
    """Integrate from ``anchor`` (where gravity points along ``up_body``) over the window;
    ``quats`` (from :func:`integrate`) reuses an integration already done."""
    q = integrate(gyr_dps, fs_hz) if quats is None else quats
    m = _sk.level_matrices(q, anchor, float(up_body[0]), float(up_body[1]), float(up_body[2]), 0, q.shape[0])
    return Attitude(matrices=m, anchor=anchor, fs_hz=fs_hz)


def interp(values: np.ndarray, rel_index: float) -> float:
    """Linear interpolation of a per-sample series at a fractional window index
    (``np.interp`` over ``arange(n)``)."""
    return _pk.interp_at(np.asarray(values, dtype=float), float(rel_index))


# Foot-flat in *running*: the foot is never as still as in walking (the zero-velocity
# thresholds of walking INS, 30-60 deg/s and ~0.1 g, miss most running stances; detectors
# for running must be looser: Skog et al. 2010, Wagstaff et al. 2020). A running mid-stance
# still rolls over at up to ~1.5 rad/s with ~0.4 g of acceleration at the instep. With
# stride-mean levelling the anchor only needs a near-zero velocity, not stillness.
FLAT_MAX_DPS = 90.0
FLAT_MAX_ACC_DEV_MS2 = 0.4 * 9.80665


def stride_mean_up(quats: np.ndarray, acc_ms2: np.ndarray, *, start: int, anchor: int,
                   gravity_ms2: float) -> tuple[float, float, float] | None:
    """Gravity (up) in the body frame of sample ``anchor`` from the mean specific force over
    ``[start, anchor)`` (``acc_ms2``: specific force of each sample in its own body frame;
    ``quats``: body_k -> body_0), when the segment has the same velocity at
    ``start`` and ``anchor`` (two foot-flats; two initial contacts of a steady stride): the
    mean acceleration over the interval is then zero, so the mean specific force is gravity,
    free of the rotational accelerations that bias a single quiet window (the
    periodicity/zero-velocity levelling of foot-mounted INS, Foxlin 2005)."""
    if anchor - start < 3:
        return None
    ux, uy, uz, norm = _sk.stride_mean_up(quats, acc_ms2, start, anchor)
    if abs(norm - gravity_ms2) > 0.15 * gravity_ms2:
        return None
    return ux, uy, uz


def stance_bounds(ic: float, to: float) -> tuple[int, int]:
    """Where this step's foot-flat is searched: from 10 % of the contact after IC to 15 %
    before TO (window indices)."""
    contact = to - ic
    return int(math.ceil(ic + 0.1 * contact)), int(math.floor(to - 0.15 * contact))


def previous_stance_bounds(pic: float, contact: float) -> tuple[int, int]:
    """Where the previous step's foot-flat is searched (its TO is not in the Step): from
    10 % to 85 % of this step's contact time after the previous IC."""
    return int(math.ceil(pic + 0.1 * contact)), int(math.floor(pic + 0.85 * contact))


def foot_stance_attitude(step, stride=None) -> tuple[Attitude | None, str]:
    """Attitude of a foot step anchored at its foot-flat, or (None, reason).

    Levelled by the stride-mean specific force from the previous foot-flat when ``stride``
    samples are given (exact for any rotation of the foot while flat), else by the mean
    specific force of the quiet window itself."""
    if step.gyr_dps is None:
        return None, "no_gyro"
    if not math.isfinite(step.to_index):
        return None, "no_toe_off"
    fs, g = step.fs_hz, step.gravity_ms2
    if stride is not None and stride.gyr_dps is not None:
        # in the stride's samples (which hold the window), one compiled pass shared with the
        # stride metrics (stride_length.StrideSamples.foot)
        lo, hi = stance_bounds(stride.rel(step.ic_index), stride.rel(step.to_index))
        if hi - lo < 3:
            return None, "contact_too_short"
        att_ok, k, m = stride.foot(step)[:3]
        if not att_ok:
            return None, "no_foot_flat"
        return Attitude(matrices=m, anchor=k - (step.window_start_index - stride.start_index), fs_hz=fs), ""
    ic, to = step.rel(step.ic_index), step.rel(step.to_index)
    lo, hi = stance_bounds(ic, to)
    if hi - lo < 3:
        return None, "contact_too_short"
    anchor, up, norm, rate = foot_flat(step.gyr_dps, step.acc_ms2, fs, lo, hi)
    if rate > FLAT_MAX_DPS or abs(norm - g) > FLAT_MAX_ACC_DEV_MS2:
        return None, "no_foot_flat"
    return attitude(step.gyr_dps, fs, anchor=anchor, up_body=up), ""
