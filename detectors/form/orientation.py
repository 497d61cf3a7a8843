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
combined by a parallel prefix product (log2(n) vectorised passes, no Python loop per
sample) - an exact composition of the same increments a sample loop would multiply.
Written here rather than with ``scipy.spatial.transform.Rotation`` because no library
offers a vectorised *cumulative* composition (a per-sample loop of Rotation products costs
~5 us per sample, 2 ms per step); the small pieces (Hamilton product, matrix of a
quaternion, levelling rotation) are the textbook formulas, checked against scipy by the
accuracy tests (angles within 0.5 deg of the simulator, which uses scipy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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


def _increments(gyr_dps: np.ndarray, fs_hz: float) -> np.ndarray:
    """Quaternion from sample k to k+1 (body frame of k), (n-1, 4)."""
    rv = np.radians(0.5 * (gyr_dps[1:] + gyr_dps[:-1])) / fs_hz
    ang = np.linalg.norm(rv, axis=1)
    half = 0.5 * ang
    s = np.where(ang > 1e-12, np.sin(half) / np.where(ang > 1e-12, ang, 1.0), 0.5)
    return np.column_stack([rv * s[:, None], np.cos(half)])


def prefix_product(q: np.ndarray) -> np.ndarray:
    """P[k] = q[0] * q[1] * ... * q[k] (Hillis-Steele scan, order kept).

    Done on the Cayley-Dickson form q = (w + x i) + (y + z i) j, where the Hamilton
    product is (a1, b1)(a2, b2) = (a1 a2 - b1 conj(b2), a1 b2 + b1 conj(a2)): four complex
    multiplications instead of sixteen real ones per pass (3.5x faster, same result)."""
    a = q[:, 3] + 1j * q[:, 0]
    b = q[:, 1] + 1j * q[:, 2]
    s = 1
    while s < a.size:
        a1, b1, a2, b2 = a[:-s], b[:-s], a[s:], b[s:]
        na = a1 * a2 - b1 * np.conj(b2)
        nb = a1 * b2 + b1 * np.conj(a2)
        a = np.concatenate([a[:s], na])
        b = np.concatenate([b[:s], nb])
        s *= 2
    return np.column_stack([a.imag, b.real, b.imag, a.real])


def integrate(gyr_dps: np.ndarray, fs_hz: float) -> np.ndarray:
    """Orientation of every sample relative to sample 0 as quaternions (body_k -> body_0)."""
    out = np.empty((gyr_dps.shape[0], 4))
    out[0] = (0.0, 0.0, 0.0, 1.0)
    if gyr_dps.shape[0] > 1:
        out[1:] = prefix_product(_increments(gyr_dps, fs_hz))
    return out


def qconj(q: np.ndarray) -> np.ndarray:
    return q * np.array([-1.0, -1.0, -1.0, 1.0])


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


def relative_matrices(q: np.ndarray, anchor: int) -> np.ndarray:
    """Matrices taking body_k vectors into the body frame of sample ``anchor``."""
    return quat_matrices(qmul(qconj(q[anchor])[None, :], q))


def level_matrix(up_body: np.ndarray) -> np.ndarray:
    """Smallest rotation (3x3) taking the measured up direction (body frame) onto +z."""
    ux, uy, uz = (float(v) for v in up_body)
    n = math.sqrt(ux * ux + uy * uy + uz * uz)
    ux, uy, uz = ux / n, uy / n, uz / n
    s = math.hypot(ux, uy)  # |u x z|
    if s < 1e-12:
        return np.eye(3) if uz > 0 else np.diag([1.0, -1.0, -1.0])
    k = np.array([uy / s, -ux / s, 0.0])  # (u x z) / |u x z|
    c = uz
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * (kx @ kx)


def quiet_anchor(gyr_dps: np.ndarray, fs_hz: float, lo: int, hi: int) -> tuple[int, int, float]:
    """Start, end (exclusive) of the quietest ``QUIET_WINDOW_S`` window inside [lo, hi), and
    its mean angular-rate magnitude in deg/s (foot-flat when small)."""
    w = max(3, int(round(QUIET_WINDOW_S * fs_hz)))
    lo, hi = max(lo, 0), min(hi, gyr_dps.shape[0])
    if hi - lo < w:
        w = max(1, hi - lo)
    norm = np.linalg.norm(gyr_dps[lo:hi], axis=1)
    c = np.concatenate([[0.0], np.cumsum(norm)])
    mean = (c[w:] - c[:-w]) / w
    k = int(np.argmin(mean))
    return lo + k, lo + k + w, float(mean[k])


@dataclass(frozen=True)
class Attitude:
    """Level-frame orientation of every sample of a step window (see module doc)."""

    matrices: np.ndarray  # (n, 3, 3) body -> level
    anchor: int
    fs_hz: float

    def level(self, v: np.ndarray) -> np.ndarray:
        """Body-frame vectors (n, 3) of the window expressed in the level frame."""
        return np.einsum("nij,nj->ni", self.matrices, v)

    def pitch_deg(self) -> np.ndarray:
        """Inclination of the body x axis above the horizontal (toe-up / forward-up positive)."""
        return np.degrees(np.arcsin(np.clip(self.matrices[:, 2, 0], -1.0, 1.0)))

    def roll_deg(self) -> np.ndarray:
        """Roll about the body x axis (ZYX Euler roll): positive when the body y (left) rises."""
        return np.degrees(np.arctan2(self.matrices[:, 2, 1], self.matrices[:, 2, 2]))

    def axis_pitch_deg(self, axis_body: np.ndarray) -> np.ndarray:
        """Sagittal inclination of a body-fixed axis from the vertical, positive when its
        *lower* end is ahead (forward, level x) of its upper end: ``atan2(-x, z)``."""
        a = np.einsum("nij,j->ni", self.matrices, np.asarray(axis_body, dtype=float))
        return np.degrees(np.arctan2(-a[:, 0], a[:, 2]))


def attitude(gyr_dps: np.ndarray, fs_hz: float, *, anchor: int, up_body: np.ndarray,
             quats: np.ndarray | None = None) -> Attitude:
    """Integrate from ``anchor`` (where gravity points along ``up_body``) over the window;
    ``quats`` (from :func:`integrate`) reuses an integration already done."""
    q = integrate(gyr_dps, fs_hz) if quats is None else quats
    m = np.einsum("ij,njk->nik", level_matrix(up_body), relative_matrices(q, anchor))
    return Attitude(matrices=m, anchor=anchor, fs_hz=fs_hz)


def interp(values: np.ndarray, rel_index: float) -> float:
    """Linear interpolation of a per-sample series at a fractional window index."""
    return float(np.interp(rel_index, np.arange(values.shape[0]), values))


# Foot-flat in *running*: the foot is never as still as in walking (the zero-velocity
# thresholds of walking INS, 30-60 deg/s and ~0.1 g, miss most running stances; detectors
# for running must be looser: Skog et al. 2010, Wagstaff et al. 2020). A running mid-stance
# still rolls over at up to ~1.5 rad/s with ~0.4 g of acceleration at the instep. With
# stride-mean levelling the anchor only needs a near-zero velocity, not stillness.
FLAT_MAX_DPS = 90.0
FLAT_MAX_ACC_DEV_MS2 = 0.4 * 9.80665


def stride_mean_up(mat_anchor: np.ndarray, f0: np.ndarray, *, start: int, anchor: int,
                   gravity_ms2: float) -> np.ndarray | None:
    """Gravity (up) in the body frame of sample ``anchor`` from the mean specific force over
    ``[start, anchor)`` (``f0``: specific force in the body frame of sample 0;
    ``mat_anchor``: body_anchor -> body_0), when the segment has the same velocity at
    ``start`` and ``anchor`` (two foot-flats; two initial contacts of a steady stride): the
    mean acceleration over the interval is then zero, so the mean specific force is gravity,
    free of the rotational accelerations that bias a single quiet window (the
    periodicity/zero-velocity levelling of foot-mounted INS, Foxlin 2005)."""
    if anchor - start < 3:
        return None
    up = mat_anchor.T @ (f0[start:anchor].sum(axis=0) / (anchor - start))
    if abs(np.linalg.norm(up) - gravity_ms2) > 0.15 * gravity_ms2:
        return None
    return up


def foot_stance_attitude(step, stride=None) -> tuple[Attitude | None, str]:
    """Attitude of a foot step anchored at its foot-flat, or (None, reason).

    Levelled by the stride-mean specific force from the previous foot-flat when ``stride``
    samples are given (exact for any rotation of the foot while flat), else by the mean
    specific force of the quiet window itself."""
    if step.gyr_dps is None:
        return None, "no_gyro"
    if not np.isfinite(step.to_index):
        return None, "no_toe_off"
    fs = step.fs_hz
    ic, to = step.rel(step.ic_index), step.rel(step.to_index)
    contact = to - ic
    lo = int(np.ceil(ic + 0.1 * contact))
    hi = int(np.floor(to - 0.15 * contact))
    if hi - lo < 3:
        return None, "contact_too_short"
    a0, a1, rate = quiet_anchor(step.gyr_dps, fs, lo, hi)
    up = step.acc_ms2[a0:a1].mean(axis=0)
    if rate > FLAT_MAX_DPS or abs(np.linalg.norm(up) - step.gravity_ms2) > FLAT_MAX_ACC_DEV_MS2:
        return None, "no_foot_flat"
    anchor = (a0 + a1) // 2
    if stride is not None and stride.gyr_dps is not None:
        off = step.window_start_index - stride.start_index
        pic = stride.rel(stride.prev_ic_index)
        p0, p1, prate = quiet_anchor(stride.gyr_dps, fs, int(np.ceil(pic + 0.1 * contact)),
                                     int(np.floor(pic + 0.85 * contact)))
        up_s = stride.up_at(anchor + off, start=(p0 + p1) // 2,
                            gravity_ms2=step.gravity_ms2) if prate <= FLAT_MAX_DPS else None
        if up_s is not None:
            up = up_s
        m = stride.level_mats(anchor + off, up, off, off + step.acc_ms2.shape[0])
        return Attitude(matrices=m, anchor=anchor, fs_hz=fs), ""
    return attitude(step.gyr_dps, fs, anchor=anchor, up_body=up), ""
