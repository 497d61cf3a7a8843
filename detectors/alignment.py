"""Sensor-to-body alignment: find how a strapped-on IMU sits on the foot or shank.

Sensors are mounted in any orientation. From the first seconds of movement the
alignment finds, in the sensor frame,

* the **medio-lateral axis** (the plane of leg swing): the principal axis of the angular
  rate, since foot and shank rotate mostly in the sagittal plane (principal-component
  functional calibration as in Favre et al. 2009, J. Biomech. 42:2330, and the
  "sagittal-plane PCA" alignment used by gaitmap);
* its **sign**, so that the sagittal rate is positive while the leg swings forward
  (distal end moving forward): for the foot from the direction of travel between two
  foot-flat periods (``_travel_sign``); for the shank, or a foot that is never flat, from
  the leg swinging forward just before each impact and rotating backward just after it
  (``_swing_sign``);
* the **vertical**: gravity, the mean specific force while the foot is flat (foot) or
  over whole strides (shank), made orthogonal to the medio-lateral axis.

Output blocks are in the body frame: x forward, y left, z up (for the shank, z along the
shank towards the knee at mid-stance). Accelerometer-only streams get the vertical only
(x and y are then an arbitrary horizontal pair; ``has_heading`` is False).

The estimate is made once, from exactly the first ``warmup_active_s`` seconds of active
movement (so any split of the stream gives the same result) and held until ``reset()``.
Samples are buffered until then (at most ``max_buffer_s``); older samples of a long
standing start are dropped (counted), never the ones used for the estimate.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import signal

from detectors._jit import njit
from detectors.contract import require
from pipeline.records import SampleBlock

G_MS2 = 9.80665
ACTIVE_GYR_DPS = 100.0  # leg swing exceeds this easily; standing and fidgeting do not
ACTIVE_ACC_MS2 = 4.0  # |acc| - g for accelerometer-only streams
QUIET_GYR_DPS = 40.0  # foot-flat: the foot is still (zero-velocity detectors use ~30-50)


@njit
def _rotate_rows(m, v, out):
    """``out[i] = m @ v[i]`` for every row, summed left to right (row r:
    ``m[r, 0] * v[i, 0] + m[r, 1] * v[i, 1] + m[r, 2] * v[i, 2]``), so each sample's result
    is the same whatever block it comes in (chunk invariance). Compiled (why: see
    detectors/_jit.py): one pass instead of 15 numpy operations per block."""
    for i in range(v.shape[0]):
        v0, v1, v2 = v[i, 0], v[i, 1], v[i, 2]
        for r in range(3):
            out[i, r] = m[r, 0] * v0 + m[r, 1] * v1 + m[r, 2] * v2


@njit
def _motion_masks(acc_ms2, gyr_dps, active_dps, quiet_dps, g_ms2, still_tol_ms2):
    """The estimate's per-sample masks in one pass: ``(active, still, n_still, still_sum)``
    with ``|gyr| > active_dps`` (active), ``|gyr| < quiet_dps`` and ``||acc| - g_ms2| <
    still_tol_ms2`` (still), the number of still samples and the sum of their specific
    force. The same bits as the numpy expressions it replaces (``np.linalg.norm(x, axis=1)``
    sums the three squares left to right, as here; ``acc[still].mean(axis=0)`` sums the
    rows in order from +0.0: ``still_sum / n_still``; tests/test_alignment_motion_masks.py checks
    both): ~10 numpy calls on the warm-up buffer (~60 us, ~270 us after a GC) in one
    compiled loop (why compiled: see detectors/_jit.py)."""
    n = acc_ms2.shape[0]
    active = np.empty(n, dtype=np.bool_)
    still = np.empty(n, dtype=np.bool_)
    s = np.zeros(3)
    m = 0
    for i in range(n):
        g0, g1, g2 = gyr_dps[i, 0], gyr_dps[i, 1], gyr_dps[i, 2]
        wn = np.sqrt(g0 * g0 + g1 * g1 + g2 * g2)
        a0, a1, a2 = acc_ms2[i, 0], acc_ms2[i, 1], acc_ms2[i, 2]
        an = np.sqrt(a0 * a0 + a1 * a1 + a2 * a2)
        active[i] = wn > active_dps
        st = wn < quiet_dps and abs(an - g_ms2) < still_tol_ms2
        still[i] = st
        if st:  # numpy's sum: from +0.0, row by row
            s[0] += a0
            s[1] += a1
            s[2] += a2
            m += 1
    return active, still, m, s


@njit
def _stride_votes(acc_ms2, gyr_dps, starts, stops, ml, fs_hz):
    """Each stride's travel vote for ``_travel_sign``: ``(vote, votes)`` where ``votes[j]``
    is ``[length, side]`` of the j-th stride between consecutive still runs
    ``[starts[i], stops[i])`` (``side`` = +1/-1, or 0 when the stride was skipped: swing
    not 0.2-2 s long, or shorter than 0.2 m) and ``vote`` is ``sum(length * side)`` in
    stride order.

    The strapdown integration with zero-velocity updates (Foxlin 2005, IEEE CG&A 25(6):38)
    of one stride, in the sensor frame of its first stance: ``R_0 = I``,
    ``R_{k+1} = R_k @ exp([w_k dt]x)`` (the gyro increment as a rotation vector, its matrix
    by scipy's formulas: the half-angle quaternion, a Taylor series below 1e-3 rad, then
    the quaternion's matrix), gravity-free acceleration ``R_k @ acc_k - g`` with ``g`` the
    mean specific force of the stance, velocity its running sum times ``dt`` with the
    linear drift removed so that it ends at zero, displacement the sum of the velocities
    times ``dt``, and its horizontal part (the component along ``g`` removed).

    The code this replaced did the same in a *levelled* frame: the stance's attitude
    ``q0`` (scipy's ``align_vectors``, gravity onto +z), then ``q0 R_k acc_k`` minus
    ``|g|`` on z, zeroing z of the displacement, and rotating it back with ``q0``'s inverse.
    Since ``q0 g = |g| z``, every step there is ``q0`` applied to the one here, and ``q0``
    cancels: the same stride lengths and directions in exact arithmetic, within rounding
    (~1e-15 relative; only the sign of the summed vote is used) - without a levelling
    rotation, and without ~5 scipy calls and ~20 numpy calls per stride (~0.8 ms per
    foot sensor on a 19-s recording, most of a short replay's alignment cost).
    Compiled (why: see detectors/_jit.py).
    """
    n_runs = starts.shape[0]
    votes = np.zeros((max(n_runs - 1, 0), 2))
    dt = 1.0 / fs_hz
    rad_dt = np.pi / 180.0 * dt
    vote = 0.0
    r = np.empty((3, 3))
    nr = np.empty((3, 3))
    s = np.empty((3, 3))
    for i in range(n_runs - 1):
        a0, a1, b0 = starts[i], stops[i], starts[i + 1]
        n = b0 - a1
        if not (0.2 * fs_hz <= n <= 2.0 * fs_hz):
            continue
        g0 = 0.0
        g1 = 0.0
        g2 = 0.0
        for k in range(a0, a1):
            g0 += acc_ms2[k, 0]
            g1 += acc_ms2[k, 1]
            g2 += acc_ms2[k, 2]
        m = a1 - a0
        g0 /= m
        g1 /= m
        g2 /= m
        for p in range(3):
            for q in range(3):
                r[p, q] = 1.0 if p == q else 0.0
        c0 = c1 = c2 = 0.0  # running sum of the gravity-free acceleration (velocity / dt)
        sv0 = sv1 = sv2 = 0.0  # sum of the velocities / dt
        for k in range(a1, b0):
            a_0, a_1, a_2 = acc_ms2[k, 0], acc_ms2[k, 1], acc_ms2[k, 2]
            c0 += r[0, 0] * a_0 + r[0, 1] * a_1 + r[0, 2] * a_2 - g0
            c1 += r[1, 0] * a_0 + r[1, 1] * a_1 + r[1, 2] * a_2 - g1
            c2 += r[2, 0] * a_0 + r[2, 1] * a_1 + r[2, 2] * a_2 - g2
            sv0 += c0
            sv1 += c1
            sv2 += c2
            # the increment's rotation matrix (scipy from_rotvec(...).as_matrix())
            x, y, z = gyr_dps[k, 0] * rad_dt, gyr_dps[k, 1] * rad_dt, gyr_dps[k, 2] * rad_dt
            angle = np.sqrt(x * x + y * y + z * z)
            if angle <= 1e-3:
                a2 = angle * angle
                scale = 0.5 - a2 / 48.0 + a2 * a2 / 3840.0
            else:
                scale = np.sin(angle / 2.0) / angle
            qx, qy, qz, qw = scale * x, scale * y, scale * z, np.cos(angle / 2.0)
            xx, yy, zz, ww = qx * qx, qy * qy, qz * qz, qw * qw
            xy, zw, xz, yw, yz, xw = qx * qy, qz * qw, qx * qz, qy * qw, qy * qz, qx * qw
            s[0, 0] = xx - yy - zz + ww
            s[1, 1] = -xx + yy - zz + ww
            s[2, 2] = -xx - yy + zz + ww
            s[0, 1] = 2.0 * (xy - zw)
            s[1, 0] = 2.0 * (xy + zw)
            s[0, 2] = 2.0 * (xz + yw)
            s[2, 0] = 2.0 * (xz - yw)
            s[1, 2] = 2.0 * (yz - xw)
            s[2, 1] = 2.0 * (yz + xw)
            for p in range(3):
                for q in range(3):
                    nr[p, q] = r[p, 0] * s[0, q] + r[p, 1] * s[1, q] + r[p, 2] * s[2, q]
            r[:, :] = nr
        # velocity v_k = dt * (c_k - (k + 1) / n * c_last): displacement dt * sum(v_k)
        h = (n + 1) / 2.0
        d0 = (sv0 - h * c0) * dt * dt
        d1 = (sv1 - h * c1) * dt * dt
        d2 = (sv2 - h * c2) * dt * dt
        gn = np.sqrt(g0 * g0 + g1 * g1 + g2 * g2)
        u0, u1, u2 = g0 / gn, g1 / gn, g2 / gn
        du = d0 * u0 + d1 * u1 + d2 * u2
        h0, h1, h2 = d0 - du * u0, d1 - du * u1, d2 - du * u2  # horizontal displacement
        length = np.sqrt(h0 * h0 + h1 * h1 + h2 * h2)
        votes[i, 0] = length
        if length < 0.2:  # shuffling or standing: no direction
            continue
        # right = forward x up; its sign along ml
        side = (h1 * u2 - h2 * u1) * ml[0] + (h2 * u0 - h0 * u2) * ml[1] + (h0 * u1 - h1 * u0) * ml[2]
        sg = 1.0 if side > 0 else (-1.0 if side < 0 else (0.0 if side == 0 else np.nan))  # np.sign
        votes[i, 1] = sg
        vote += length * sg
    return vote, votes


def _cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` of two 3-vectors, the same bits (numpy computes the same three
    ``x * y - z * w`` in float64): ~1 us instead of ~20 us of numpy's general-shape
    handling, a few calls per sensor's estimate."""
    a0, a1, a2 = a.tolist()
    b0, b1, b2 = b.tolist()
    return np.array([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0])


def _rotate(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise m @ v (bit-identical whatever the block size), a new (n, 3) array."""
    out = np.empty((v.shape[0], 3))
    _rotate_rows(m, v, out)
    return out


def warm_up() -> None:
    """Compile ``_rotate_rows`` (for read-only blocks, as SampleBlocks hold them) and
    ``_stride_votes`` and ``_motion_masks`` or load them from numba's cache, before the first block needs them."""
    v = np.zeros((1, 3))
    v.flags.writeable = False
    _rotate(np.eye(3), v)
    z = np.zeros(2, dtype=np.int64)
    _stride_votes(np.zeros((1, 3)), np.zeros((1, 3)), z, z, np.zeros(3), 200.0)
    _motion_masks(np.zeros((1, 3)), np.zeros((1, 3)), 100.0, 40.0, G_MS2, 2.0)


def estimate_rotation(acc_ms2: np.ndarray, gyr_dps: np.ndarray | None, *, placement: str,
                      fs_hz: float) -> tuple[np.ndarray, bool]:
    """Rotation matrix sensor -> body (rows: forward, left, up) and whether heading is known."""
    if gyr_dps is None:
        up = acc_ms2.mean(axis=0)
        up /= np.linalg.norm(up)
        helper = np.eye(3)[np.argmin(np.abs(up))]
        fwd = _cross3(helper, up)
        fwd /= np.linalg.norm(fwd)
        return np.vstack([fwd, _cross3(up, fwd), up]), False

    active, still, n_still, still_sum = _motion_masks(  # contiguous copies only for the kernel (the
        np.ascontiguousarray(acc_ms2, dtype=np.float64),  # means below depend on the input's layout)
        np.ascontiguousarray(gyr_dps, dtype=np.float64), ACTIVE_GYR_DPS, QUIET_GYR_DPS, G_MS2, 2.0)
    w = gyr_dps[active]
    evals, evecs = np.linalg.eigh(w.T @ w)
    ml = evecs[:, -1]
    if placement == "foot" and n_still >= max(5, int(0.05 * fs_hz)):
        up = still_sum / n_still  # acc_ms2[still].mean(axis=0)
    else:
        up = acc_ms2.mean(axis=0)
    up = up - (up @ ml) * ml
    up /= np.linalg.norm(up)
    sign = _travel_sign(acc_ms2, gyr_dps, still, ml, fs_hz=fs_hz) if placement == "foot" else 0.0
    if sign == 0.0:  # only then is the low-passed sagittal rate needed
        sag_lp = signal.sosfiltfilt(_lowpass_sos(fs_hz).copy(), gyr_dps @ ml)  # offline, on the warm-up buffer only
        sign = _swing_sign(sag_lp, acc_ms2 @ up, fs_hz=fs_hz)
    right = sign * ml
    fwd = _cross3(up, right)
    return np.vstack([fwd, -right, up]), True


@functools.lru_cache(maxsize=16)
def _lowpass_sos(fs_hz: float) -> np.ndarray:
    """2nd-order Butterworth low-pass at min(8 Hz, 0.4 fs) for ``_swing_sign`` (second-order
    sections; callers get a copy). Designed once per rate and process: the design (~0.25 ms)
    is a fixed cost of every sensor's estimate otherwise."""
    return signal.butter(2, min(8.0, 0.4 * fs_hz) / (fs_hz / 2), output="sos")


def _still_runs(still: np.ndarray, min_n: int = 3) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True in ``still`` at least ``min_n`` long, in order."""
    starts, stops = _still_bounds(still, min_n)
    return list(zip(starts.tolist(), stops.tolist()))


def _still_bounds(still: np.ndarray, min_n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``_still_runs`` as two int64 arrays (starts, stops), for the compiled vote."""
    edges = np.flatnonzero(np.diff(still.astype(np.int8), prepend=np.int8(0), append=np.int8(0)))
    starts, stops = edges[0::2], edges[1::2]
    keep = stops - starts >= min_n
    return starts[keep].astype(np.int64), stops[keep].astype(np.int64)


def _travel_sign(acc_ms2: np.ndarray, gyr_dps: np.ndarray, still: np.ndarray, ml: np.ndarray, *,
                 fs_hz: float) -> float:
    """Sign of ``ml`` from the direction of travel of a foot (0.0 when undecided).

    Between two foot-flat periods the foot's displacement is computed by strapdown
    integration with zero-velocity updates (Foxlin 2005, IEEE CG&A 25(6):38; the PyShoe
    INS of Wagstaff et al. 2020 works the same way): orientation from the gyro starting
    at the first stance, velocity from the gravity-free acceleration, its drift removed so
    the velocity is zero again at the next stance. The foot moves forward, so the
    horizontal displacement is the forward axis, and right = forward x up. Each stride
    votes with its length. All strides in one compiled pass (``_stride_votes``: why, and
    why no levelling rotation is needed, there).
    """
    starts, stops = _still_bounds(still)
    vote, _ = _stride_votes(np.ascontiguousarray(acc_ms2, dtype=np.float64),
                            np.ascontiguousarray(gyr_dps, dtype=np.float64), starts, stops,
                            np.ascontiguousarray(ml, dtype=np.float64), float(fs_hz))
    return float(np.sign(vote))


def _swing_sign(sag_lp: np.ndarray, up_ms2: np.ndarray, *, fs_hz: float) -> float:
    """+1 if positive sagittal rate is forward swing along ``ml``, else -1.

    Anchored on the impacts (largest rises of the upward specific force within 10 ms, one
    per stride): before touching down the leg swings forward, after it the foot rolls down
    flat and the shank rotates backward over the foot as the knee moves forward. So the
    mean sagittal rate shortly before an impact minus the mean shortly after it is
    positive in the swing-positive convention, for foot and shank, rearfoot and forefoot
    strikes, walking and running. The median vote decides.
    """
    rise_n = max(1, int(round(0.010 * fs_hz)))
    d = up_ms2[rise_n:] - up_ms2[:-rise_n]
    refractory = int(0.4 * fs_hz)
    pre0, pre1 = int(0.25 * fs_hz), int(0.06 * fs_hz)
    post0, post1 = int(0.01 * fs_hz), int(0.12 * fs_hz)
    order = np.argsort(d)[::-1]
    taken = np.zeros(d.size, dtype=bool)
    votes: list[float] = []
    for k in order:
        if d[k] < 0.5 * d[order[0]] or len(votes) >= 12:
            break
        if taken[max(k - refractory, 0):k + refractory].any():
            continue
        taken[k] = True
        if k - pre0 < 0 or k + post1 >= sag_lp.size:
            continue
        votes.append(sag_lp[k - pre0:k - pre1].mean() - sag_lp[k + post0:k + post1].mean())
    if not votes:  # no impacts: the biggest rate of a stride is mid-swing
        hi, lo = np.percentile(sag_lp, [99.0, 1.0])
        return 1.0 if hi >= -lo else -1.0
    return 1.0 if np.median(votes) >= 0 else -1.0


class Alignment:
    """Streaming sensor-to-body alignment (update/flush/reset)."""

    def __init__(self, *, placement: str, warmup_active_s: float = 2.5, max_buffer_s: float = 20.0):
        require(placement in ("foot", "shank"), f"placement must be foot or shank, got {placement!r}")
        require(warmup_active_s > 0, f"warmup_active_s must be > 0, got {warmup_active_s}")
        require(max_buffer_s > warmup_active_s, "max_buffer_s must exceed warmup_active_s")
        self.placement = placement
        self.warmup_active_s = warmup_active_s
        self.max_buffer_s = max_buffer_s
        self.reset()
        self.dropped_samples = 0

    def reset(self) -> None:
        self._buf: list[SampleBlock] = []
        self._active = 0
        self.rotation: np.ndarray | None = None
        self.has_heading = False

    def _emit(self, b: SampleBlock) -> SampleBlock:
        m = self.rotation
        return SampleBlock(
            sensor_id=b.sensor_id, fs_hz=b.fs_hz, t0_s=b.t0_s, first_index=b.first_index,
            acc_ms2=_rotate(m, b.acc_ms2),
            gyr_dps=None if b.gyr_dps is None else _rotate(m, b.gyr_dps),
            segment=b.segment, frame="body",
        )

    def update(self, block: SampleBlock) -> list[SampleBlock]:
        if self.rotation is not None:
            return [self._emit(block)]
        fs = block.fs_hz
        if block.gyr_dps is not None:
            act = np.linalg.norm(block.gyr_dps, axis=1) > ACTIVE_GYR_DPS
        else:
            act = np.abs(np.linalg.norm(block.acc_ms2, axis=1) - G_MS2) > ACTIVE_ACC_MS2
        need = int(round(self.warmup_active_s * fs))
        cum = self._active + np.cumsum(act)
        hit = np.flatnonzero(cum >= need)
        if hit.size == 0:
            self._buf.append(block)
            self._active = int(cum[-1]) if cum.size else self._active
            self._trim(fs)
            return []
        cut = int(hit[0]) + 1  # the estimate uses exactly the samples up to here
        self._buf.append(block)
        acc = np.concatenate([b.acc_ms2 for b in self._buf])
        gyr = None if block.gyr_dps is None else np.concatenate([b.gyr_dps for b in self._buf])
        end = acc.shape[0] - (block.n - cut)
        self.rotation, self.has_heading = estimate_rotation(
            acc[:end], None if gyr is None else gyr[:end], placement=self.placement, fs_hz=fs)
        out = [self._emit(b) for b in self._buf]
        self._buf = []
        return out

    def _trim(self, fs_hz: float) -> None:
        limit = int(self.max_buffer_s * fs_hz)
        while sum(b.n for b in self._buf) > limit and len(self._buf) > 1:
            b = self._buf[0]
            if b.gyr_dps is not None:
                a = int((np.linalg.norm(b.gyr_dps, axis=1) > ACTIVE_GYR_DPS).sum())
            else:
                a = int((np.abs(np.linalg.norm(b.acc_ms2, axis=1) - G_MS2) > ACTIVE_ACC_MS2).sum())
            self._active -= a
            self.dropped_samples += b.n
            self._buf.pop(0)

    def flush(self) -> list[SampleBlock]:
        """End of stream before enough movement: estimate from what there is, if anything."""
        if self.rotation is not None or not self._buf:
            return []
        acc = np.concatenate([b.acc_ms2 for b in self._buf])
        gyr = None if self._buf[0].gyr_dps is None else np.concatenate([b.gyr_dps for b in self._buf])
        if gyr is not None and not (np.linalg.norm(gyr, axis=1) > ACTIVE_GYR_DPS).any():
            gyr = None  # no movement at all: vertical only
        self.rotation, self.has_heading = estimate_rotation(
            acc, gyr, placement=self.placement, fs_hz=self._buf[0].fs_hz)
        out = [self._emit(b) for b in self._buf]
        self._buf = []
        return out
