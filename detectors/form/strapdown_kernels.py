"""Compiled kernels of the per-step orientation and zero-velocity integration.

Why compiled: one stride is a few hundred samples, too few for numpy to amortise its
per-call overhead, and quaternion integration is sequential (see :mod:`detectors._jit`).
Each kernel is the plain sample loop of a formula documented where it is used:
:mod:`.orientation` (stance orientation reset at every foot-flat, Foxlin 2005; Falbriard
et al. 2020) and :mod:`.stride_length` (zero-velocity-aided strapdown integration, Skog et
al. 2010; Wagstaff et al. 2020). Frames: body (x forward, y left, z up after alignment);
quaternions scalar-last ``(x, y, z, w)``; ``q[k]`` takes body_k vectors into body_0.
Units: deg/s in, rad inside, m/s^2, m/s, m.
"""

from __future__ import annotations

import math

import numpy as np

from detectors._jit import njit

DEG = math.pi / 180.0  # np.radians multiplies by this


@njit
def quiet_window(gyr_dps, w, lo, hi):
    """Start (index into ``gyr_dps``) and mean angular-rate magnitude (deg/s) of the
    ``w``-sample window with the smallest mean in ``[lo, hi)`` (the first on ties); the
    running sum is the cumulative sum of the magnitudes, as ``np.cumsum``."""
    n = hi - lo
    c = np.empty(n + 1)
    c[0] = 0.0
    for i in range(n):
        x, y, z = gyr_dps[lo + i, 0], gyr_dps[lo + i, 1], gyr_dps[lo + i, 2]
        c[i + 1] = c[i] + math.sqrt(x * x + y * y + z * z)
    best, k = math.inf, 0
    for i in range(n - w + 1):
        m = (c[i + w] - c[i]) / w
        if m != m:  # NaN wins, as np.argmin
            return lo + i, m
        if m < best:
            best, k = m, i
    return lo + k, best


@njit
def foot_flat(gyr_dps, acc_ms2, w, lo, hi):
    """The quietest ``w``-sample window of ``[lo, hi)`` (:func:`quiet_window`; the range
    clipped to the array, ``w`` to the range): start, end (exclusive), mean angular rate (deg/s), mean specific force there (body frame, m/s^2,
    three scalars: no array crosses back into Python) and its norm."""
    lo, hi = max(lo, 0), min(hi, gyr_dps.shape[0])
    if hi - lo < w:
        w = max(1, hi - lo)
    if hi - lo < w:
        raise ValueError("foot_flat: empty sample range")
    a0, rate = quiet_window(gyr_dps, w, lo, hi)
    sx = sy = sz = 0.0
    for i in range(a0, a0 + w):
        sx += acc_ms2[i, 0]
        sy += acc_ms2[i, 1]
        sz += acc_ms2[i, 2]
    ux, uy, uz = sx / w, sy / w, sz / w
    return a0, a0 + w, rate, ux, uy, uz, math.sqrt(ux * ux + uy * uy + uz * uz)


@njit
def quat_matrix(q, k, m):
    """Rotation matrix of the unit quaternion ``q[k]`` into the 3x3 ``m``."""
    x, y, z, w = q[k, 0], q[k, 1], q[k, 2], q[k, 3]
    m[0, 0] = 1 - 2 * (y * y + z * z)
    m[0, 1] = 2 * (x * y - z * w)
    m[0, 2] = 2 * (x * z + y * w)
    m[1, 0] = 2 * (x * y + z * w)
    m[1, 1] = 1 - 2 * (x * x + z * z)
    m[1, 2] = 2 * (y * z - x * w)
    m[2, 0] = 2 * (x * z - y * w)
    m[2, 1] = 2 * (y * z + x * w)
    m[2, 2] = 1 - 2 * (x * x + y * y)


@njit
def _rotate(m, v0, v1, v2, out):
    out[0] = m[0, 0] * v0 + m[0, 1] * v1 + m[0, 2] * v2
    out[1] = m[1, 0] * v0 + m[1, 1] * v1 + m[1, 2] * v2
    out[2] = m[2, 0] * v0 + m[2, 1] * v1 + m[2, 2] * v2


# Below this squared rotation angle per sample (rad^2; 0.074 rad = 4.2 deg per sample, i.e.
# 2100 deg/s at 500 Hz, 850 deg/s at 200 Hz) the half-angle sine and cosine come from their
# Taylor series in x = (angle/2)^2 < 1.4e-3: sin(h)/h to x^3 and cos(h) to x^4, whose
# remainders (x^4/9! and x^5/10!, < 1e-17) are below half an ulp (measured: within 1 ulp of
# libm). The loop then avoids two libm calls per sample (most of its cost); Estrin's
# grouping keeps the dependency chain short. Faster samples use sin/cos.
SERIES_MAX_ANGLE2 = 0.074 ** 2
_S1, _S2, _S3 = -1 / 6, 1 / 120, -1 / 5040
_C1, _C2, _C3, _C4 = -1 / 2, 1 / 24, -1 / 720, 1 / 40320


@njit
def half_angle_series(x):
    """``sin(h) / (2 h)`` and ``cos(h)`` for ``x = h^2 < SERIES_MAX_ANGLE2 / 4``."""
    x2 = x * x
    return 0.5 * ((1.0 + x * _S1) + x2 * (_S2 + x * _S3)), (1.0 + x * _C1) + x2 * ((_C2 + x * _C3) + x2 * _C4)


@njit
def integrate_gyro(gyr_dps, fs_hz):
    """Orientation of every sample relative to sample 0, (n, 4) quaternions body_k -> body_0.

    The increment from sample k to k+1 is the rotation vector of the trapezoidal mean rate
    times the sample period, composed on the right (body frame) by the Hamilton product:
    q[k+1] = q[k] * exp(rv_k / 2)."""
    n = gyr_dps.shape[0]
    q = np.empty((n, 4))
    x, y, z, w = 0.0, 0.0, 0.0, 1.0
    if n > 0:
        q[0, 0], q[0, 1], q[0, 2], q[0, 3] = x, y, z, w
    scale = 0.5 * DEG / fs_hz  # mean of two samples, deg/s -> rad per sample
    for k in range(n - 1):
        rx = (gyr_dps[k + 1, 0] + gyr_dps[k, 0]) * scale
        ry = (gyr_dps[k + 1, 1] + gyr_dps[k, 1]) * scale
        rz = (gyr_dps[k + 1, 2] + gyr_dps[k, 2]) * scale
        a2 = rx * rx + ry * ry + rz * rz
        if a2 < SERIES_MAX_ANGLE2:  # sin(h) / (2 h) and cos(h), h = angle / 2
            s, c = half_angle_series(0.25 * a2)
        else:
            ang = math.sqrt(a2)
            s, c = math.sin(0.5 * ang) / ang, math.cos(0.5 * ang)
        bx, by, bz, bw = rx * s, ry * s, rz * s, c
        x, y, z, w = (w * bx + x * bw + y * bz - z * by,
                      w * by - x * bz + y * bw + z * bx,
                      w * bz + x * by - y * bx + z * bw,
                      w * bw - x * bx - y * by - z * bz)
        q[k + 1, 0], q[k + 1, 1], q[k + 1, 2], q[k + 1, 3] = x, y, z, w
    return q


@njit
def level_matrix(ux, uy, uz):
    """Smallest rotation (3x3) taking the up direction ``(ux, uy, uz)`` (body frame) onto +z:
    Rodrigues' formula ``I + s K + (1 - c) K^2`` about ``k = (u x z) / |u x z|``."""
    n = math.sqrt(ux * ux + uy * uy + uz * uz)
    if n == 0.0:
        return np.full((3, 3), math.nan)
    ux, uy, uz = ux / n, uy / n, uz / n
    s = math.hypot(ux, uy)
    out = np.zeros((3, 3))
    if s < 1e-12:
        out[0, 0] = 1.0
        out[1, 1] = 1.0 if uz > 0 else -1.0
        out[2, 2] = 1.0 if uz > 0 else -1.0
        return out
    kx, ky = uy / s, -ux / s  # k_z = 0
    c = uz
    kk = np.zeros((3, 3))
    kk[0, 2], kk[1, 2], kk[2, 0], kk[2, 1] = ky, -kx, -ky, kx
    k2 = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            k2[i, j] = kk[i, 0] * kk[0, j] + kk[i, 1] * kk[1, j] + kk[i, 2] * kk[2, j]
    for i in range(3):
        for j in range(3):
            out[i, j] = (1.0 if i == j else 0.0) + s * kk[i, j] + (1 - c) * k2[i, j]
    return out


@njit
def level_frame(q, anchor, ux, uy, uz):
    """3x3 taking body_0 vectors into the level frame of sample ``anchor``, where gravity
    points along ``(ux, uy, uz)`` (body frame of the anchor): ``level_matrix(up) @
    R(q[anchor]).T``."""
    level = level_matrix(ux, uy, uz)
    ra = np.empty((3, 3))
    quat_matrix(q, anchor, ra)
    out = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            out[i, j] = level[i, 0] * ra[j, 0] + level[i, 1] * ra[j, 1] + level[i, 2] * ra[j, 2]
    return out


@njit
def level_matrices(q, anchor, ux, uy, uz, lo, hi):
    """Body_k -> level matrices (level frame of ``anchor``, up ``(ux, uy, uz)``) of samples
    ``[lo, hi)``: ``level_frame(...) @ R(q[k])``, (hi-lo, 3, 3)."""
    to_level = level_frame(q, anchor, ux, uy, uz)
    out = np.empty((hi - lo, 3, 3))
    m = np.empty((3, 3))
    for k in range(lo, hi):
        quat_matrix(q, k, m)
        for i in range(3):
            for j in range(3):
                out[k - lo, i, j] = to_level[i, 0] * m[0, j] + to_level[i, 1] * m[1, j] + to_level[i, 2] * m[2, j]
    return out


@njit
def stride_mean_up(q, acc_ms2, start, anchor):
    """Mean specific force over ``[start, anchor)``, each sample rotated into the body frame
    of sample 0 (``R(q[k]) acc[k]``), expressed in the body frame of ``anchor``
    (``R(q[anchor]).T @ mean``): three scalars and the norm, in m/s^2."""
    m = np.empty((3, 3))
    f = np.empty(3)
    sx = sy = sz = 0.0
    for k in range(start, anchor):
        quat_matrix(q, k, m)
        _rotate(m, acc_ms2[k, 0], acc_ms2[k, 1], acc_ms2[k, 2], f)
        sx += f[0]
        sy += f[1]
        sz += f[2]
    n = anchor - start
    sx, sy, sz = sx / n, sy / n, sz / n
    quat_matrix(q, anchor, m)
    ux = m[0, 0] * sx + m[1, 0] * sy + m[2, 0] * sz
    uy = m[0, 1] * sx + m[1, 1] * sy + m[2, 1] * sz
    uz = m[0, 2] * sx + m[1, 2] * sy + m[2, 2] * sz
    return ux, uy, uz, math.sqrt(ux * ux + uy * uy + uz * uz)


@njit
def body0_rows(q, acc_ms2, k0, k1):
    """Specific force of samples ``[k0, k1]`` rotated into the body frame of sample 0,
    ``R(q[k]) acc[k]``, (k1 - k0 + 1, 3) (the levelling and the ZUPT share them)."""
    n = k1 - k0 + 1
    f = np.empty((n, 3))
    for i in range(n):
        k = k0 + i
        x, y, z, w = q[k, 0], q[k, 1], q[k, 2], q[k, 3]
        a0, a1, a2 = acc_ms2[k, 0], acc_ms2[k, 1], acc_ms2[k, 2]
        f[i, 0] = (1 - 2 * (y * y + z * z)) * a0 + (2 * (x * y - z * w)) * a1 + (2 * (x * z + y * w)) * a2
        f[i, 1] = (2 * (x * y + z * w)) * a0 + (1 - 2 * (x * x + z * z)) * a1 + (2 * (y * z - x * w)) * a2
        f[i, 2] = (2 * (x * z - y * w)) * a0 + (2 * (y * z + x * w)) * a1 + (1 - 2 * (x * x + y * y)) * a2
    return f


@njit
def zupt(f0, to_level, gravity_ms2, fs_hz, x_land):
    """Zero-velocity-aided integration between two foot-flats, the first and last rows of
    ``f0`` (specific force in the body frame of sample 0; Skog et al. 2010).

    Gravity-free acceleration in the level frame (``to_level @ f0[i] - g z``), trapezoidal
    integration to velocity, the velocity's end value removed linearly (zero at both flats:
    ``v -= linspace(0, 1) * v[-1]``), trapezoidal integration to position. Returns the
    displacement ``(dx, dy, dz)`` in m, the highest point above the chord joining the two
    flats' heights (m), and the forward velocity along the horizontal displacement (m/s)
    interpolated at ``x_land`` samples after the first flat (NaN when ``x_land`` is NaN).
    Each column's sums run in sample order (as ``np.cumsum``)."""
    n = f0.shape[0]
    dt = 1.0 / fs_hz
    step = 1.0 / (n - 1)  # np.linspace(0, 1, n): k * step, the last exactly 1
    l00, l01, l02 = to_level[0, 0], to_level[0, 1], to_level[0, 2]
    l10, l11, l12 = to_level[1, 0], to_level[1, 1], to_level[1, 2]
    l20, l21, l22 = to_level[2, 0], to_level[2, 1], to_level[2, 2]
    v = np.empty((n, 3))
    v[0, 0] = v[0, 1] = v[0, 2] = 0.0
    s0 = s1 = s2 = 0.0
    p0 = l00 * f0[0, 0] + l01 * f0[0, 1] + l02 * f0[0, 2]
    p1 = l10 * f0[0, 0] + l11 * f0[0, 1] + l12 * f0[0, 2]
    p2 = (l20 * f0[0, 0] + l21 * f0[0, 1] + l22 * f0[0, 2]) - gravity_ms2
    for i in range(1, n):
        c0 = l00 * f0[i, 0] + l01 * f0[i, 1] + l02 * f0[i, 2]
        c1 = l10 * f0[i, 0] + l11 * f0[i, 1] + l12 * f0[i, 2]
        c2 = (l20 * f0[i, 0] + l21 * f0[i, 1] + l22 * f0[i, 2]) - gravity_ms2
        s0 += 0.5 * (c0 + p0)
        s1 += 0.5 * (c1 + p1)
        s2 += 0.5 * (c2 + p2)
        v[i, 0], v[i, 1], v[i, 2] = s0 * dt, s1 * dt, s2 * dt
        p0, p1, p2 = c0, c1, c2
    e0, e1, e2 = v[n - 1, 0], v[n - 1, 1], v[n - 1, 2]
    z = np.empty(n)
    z[0] = 0.0
    s0 = s1 = s2 = 0.0
    q0, q1, q2 = v[0, 0], v[0, 1], v[0, 2]  # t = 0: unchanged
    for i in range(1, n):
        t = 1.0 if i == n - 1 else i * step
        c0, c1, c2 = v[i, 0] - t * e0, v[i, 1] - t * e1, v[i, 2] - t * e2
        v[i, 0], v[i, 1], v[i, 2] = c0, c1, c2
        s0 += 0.5 * (c0 + q0)
        s1 += 0.5 * (c1 + q1)
        s2 += 0.5 * (c2 + q2)
        z[i] = s2 * dt
        q0, q1, q2 = c0, c1, c2
    d0, d1, d2 = s0 * dt, s1 * dt, s2 * dt
    top = -math.inf
    for i in range(n):
        t = 1.0 if i == n - 1 else i * step
        h = z[i] - t * d2
        if h > top or h != h:
            top = h
    length = math.hypot(d0, d1)
    land = math.nan
    if x_land == x_land and length > 0:
        j = min(int(math.floor(x_land)), n - 1)
        a0 = (v[j, 0] * d0 + v[j, 1] * d1) / length
        if x_land >= n - 1 or x_land == j:
            land = a0
        else:
            a1 = (v[j + 1, 0] * d0 + v[j + 1, 1] * d1) / length
            land = (a1 - a0) * (x_land - j) + a0
    return d0, d1, d2, top, land


@njit
def foot_heading(swing_gyr_dps, min_dps, q, ux, uy, uz, k0, k1):
    """Heading (rad) of the foot's long axis in the level frame of ``k1`` (up ``(ux, uy,
    uz)`` in its body frame), mean over the flats ``k0`` and ``k1``.

    The long axis (body frame) is perpendicular to the vertical ``up`` and to the axis the
    foot pitches about in swing: the principal eigenvector of ``sum w w^T`` over the swing
    samples faster than ``min_dps`` (``x`` forward when fewer than 5), its sign such that
    its y component (left) is positive."""
    s = np.zeros((3, 3))
    count = 0
    for k in range(swing_gyr_dps.shape[0]):
        x, y, z = swing_gyr_dps[k, 0], swing_gyr_dps[k, 1], swing_gyr_dps[k, 2]
        if math.sqrt(x * x + y * y + z * z) > min_dps:
            count += 1
            for i in range(3):
                for j in range(3):
                    s[i, j] += swing_gyr_dps[k, i] * swing_gyr_dps[k, j]
    ax = np.zeros(3)
    if count < 5:
        ax[0] = 1.0
    else:
        ml = np.linalg.eigh(s)[1][:, 2].copy()
        if ml[1] < 0:
            ml = -ml
        fx = ml[1] * uz - ml[2] * uy
        fy = ml[2] * ux - ml[0] * uz
        fz = ml[0] * uy - ml[1] * ux
        fn = math.sqrt(fx * fx + fy * fy + fz * fz)
        if fn == 0.0:
            return math.nan
        ax[0], ax[1], ax[2] = fx / fn, fy / fn, fz / fn
    to_level = level_frame(q, k1, ux, uy, uz)
    hx = hy = 0.0
    m = np.empty((3, 3))
    b = np.empty(3)
    for k in (k0, k1):
        quat_matrix(q, k, m)
        _rotate(m, ax[0], ax[1], ax[2], b)
        hx += to_level[0, 0] * b[0] + to_level[0, 1] * b[1] + to_level[0, 2] * b[2]
        hy += to_level[1, 0] * b[0] + to_level[1, 1] * b[1] + to_level[1, 2] * b[2]
    return math.atan2(hy, hx)


@njit
def foot_stride(gyr_dps, acc_ms2, fs_hz, gravity_ms2, w, lo1, hi1, lo0, hi0, win_lo, win_hi, swing_lo, swing_hi,
                ic, flat_max_dps, flat_max_dev_ms2, swing_min_dps):
    """The foot's whole per-step pass over its stride samples, in one call (each call and
    each array handed back to Python costs about a microsecond; a step needs all of these).

    The gyro integrated once (:func:`integrate_gyro`); this step's foot-flat in
    ``[lo1, hi1)`` and the previous one in ``[lo0, hi0)`` (:func:`foot_flat`); the
    stride-mean up at this flat (:func:`stride_mean_up` from the previous flat, valid when
    they are >= 3 samples apart and its norm is within 15 % of g). Returns:

    * ``att_ok`` and the body -> level matrices of the step window ``[win_lo, win_hi)``
      (:func:`level_matrices`, anchored at this flat; levelled by the stride-mean up when
      the previous flat's rate is at most ``flat_max_dps`` and that up is valid, else by
      this flat's mean specific force); ``att_ok`` is False (and the matrices empty) when
      this flat is not flat (rate above ``flat_max_dps`` or | |f| - g | above
      ``flat_max_dev_ms2``): the stance attitude of :mod:`.orientation`;
    * ``stride_code`` (0 ok, 1 a flat missing or the flats < 3 samples apart, 2 the
      stride-mean up invalid) and, when 0, :func:`zupt`'s displacement, swing
      height and landing velocity (at ``ic``, the step's IC in stride samples, when it
      lies between the flats), and :func:`foot_heading` of the swing ``[swing_lo,
      swing_hi)``: the stride metrics of :mod:`.stride_length`.
    """
    q = integrate_gyro(gyr_dps, fs_hz)
    a0, a1, rate1, u1x, u1y, u1z, norm1 = foot_flat(gyr_dps, acc_ms2, w, lo1, hi1)
    k1 = (a0 + a1) // 2
    b0, b1, rate0, _, _, _, norm0 = foot_flat(gyr_dps, acc_ms2, w, lo0, hi0)
    k0 = (b0 + b1) // 2
    up_ok = False
    ux = uy = uz = 0.0
    f0 = np.empty((0, 3))
    if k1 - k0 >= 3:
        f0 = body0_rows(q, acc_ms2, k0, k1)  # flat to flat, both included
        sx = sy = sz = 0.0
        for i in range(k1 - k0):  # stride-mean up: the mean over [k0, k1) in the frame of k1
            sx += f0[i, 0]
            sy += f0[i, 1]
            sz += f0[i, 2]
        nk = k1 - k0
        sx, sy, sz = sx / nk, sy / nk, sz / nk
        x, y, z, w = q[k1, 0], q[k1, 1], q[k1, 2], q[k1, 3]  # R(q[k1]).T @ mean
        ux = (1 - 2 * (y * y + z * z)) * sx + (2 * (x * y + z * w)) * sy + (2 * (x * z - y * w)) * sz
        uy = (2 * (x * y - z * w)) * sx + (1 - 2 * (x * x + z * z)) * sy + (2 * (y * z + x * w)) * sz
        uz = (2 * (x * z + y * w)) * sx + (2 * (y * z - x * w)) * sy + (1 - 2 * (x * x + y * y)) * sz
        up_ok = not (abs(math.sqrt(ux * ux + uy * uy + uz * uz) - gravity_ms2) > 0.15 * gravity_ms2)
    att_ok = not (rate1 > flat_max_dps or abs(norm1 - gravity_ms2) > flat_max_dev_ms2)
    if att_ok:
        if rate0 <= flat_max_dps and up_ok:
            mats = level_matrices(q, k1, ux, uy, uz, win_lo, win_hi)
        else:
            mats = level_matrices(q, k1, u1x, u1y, u1z, win_lo, win_hi)
    else:
        mats = np.empty((0, 3, 3))
    nan = math.nan
    ok0 = rate0 <= flat_max_dps and abs(norm0 - gravity_ms2) <= flat_max_dev_ms2
    ok1 = rate1 <= flat_max_dps and abs(norm1 - gravity_ms2) <= flat_max_dev_ms2
    if not (ok0 and ok1) or k1 - k0 < 3:
        return att_ok, k1, mats, 1, nan, nan, nan, nan, nan
    if not up_ok:
        return att_ok, k1, mats, 2, nan, nan, nan, nan, nan
    x_land = ic - k0 if k0 < ic < k1 else nan
    dx, dy, _, swing_height, landing = zupt(f0, level_frame(q, k1, ux, uy, uz), gravity_ms2, fs_hz, x_land)
    n = gyr_dps.shape[0]
    swing_lo, swing_hi = min(max(swing_lo, 0), n), min(max(swing_hi, 0), n)
    heading = foot_heading(gyr_dps[swing_lo:max(swing_lo, swing_hi)], swing_min_dps, q, ux, uy, uz, k0, k1)
    return att_ok, k1, mats, 0, dx, dy, swing_height, landing, heading
