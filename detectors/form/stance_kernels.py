"""Compiled kernels of the per-step stance metrics: level-frame angles, impact peaks,
clipping and eversion.

Why compiled: a step window is ~100-300 samples, too few for numpy to amortise its
per-call overhead (see :mod:`detectors._jit`). Each kernel is the sample loop of a
definition documented where it is used: :mod:`.orientation` (angles of the level-frame
attitude), :mod:`.impact` (first peak, cubic peak refinement, loading rate, braking,
clipping; Milner et al. 2006), :mod:`.pronation` (eversion excursion and velocity;
Koldenhoven et al. 2018). They reproduce the numpy expressions they replace (``np.interp``,
``np.argmax``, ``np.gradient``, NaN propagation included). Units: deg, deg/s, m/s^2.
"""

from __future__ import annotations

import math

import numpy as np

from detectors._jit import njit

RAD_TO_DEG = 180.0 / math.pi  # np.degrees multiplies by this

# Cubic Hermite basis on 21 points of a sample interval (impact peak refinement)
_T = np.linspace(0.0, 1.0, 21)
_H = np.stack([2 * _T**3 - 3 * _T**2 + 1, _T**3 - 2 * _T**2 + _T, -2 * _T**3 + 3 * _T**2, _T**3 - _T**2])


@njit
def interp_at(y, x):
    """``np.interp(x, np.arange(len(y)), y)`` for one fractional index ``x``."""
    n = y.shape[0]
    if x != x:
        return math.nan
    if x <= 0.0:
        return y[0]
    if x >= n - 1:
        return y[n - 1]
    j = int(math.floor(x))
    if j == x:
        return y[j]
    slope = y[j + 1] - y[j]
    r = slope * (x - j) + y[j]
    if r != r:
        r = slope * (x - (j + 1)) + y[j + 1]
        if r != r and y[j] == y[j + 1]:
            r = y[j]
    return r


@njit
def argmax_range(x, lo, hi):
    """``lo + np.argmax(x[lo:hi])`` (the first maximum; the first NaN if any)."""
    k = lo
    best = x[lo]
    if best != best:
        return lo
    for i in range(lo + 1, hi):
        v = x[i]
        if v != v:
            return i
        if v > best:
            best, k = v, i
    return k


@njit
def first_peak(x, lo, hi, fraction):
    """Index of the first local maximum of ``x[lo:hi]`` reaching ``fraction`` of the
    largest value there (the impact, not a later foot slap), else the largest."""
    n = hi - lo
    if n < 3:
        return argmax_range(x, lo, hi)
    k = argmax_range(x, lo, hi)
    top = fraction * x[k]
    for i in range(lo + 1, hi - 1):
        m = x[i]
        if m >= x[i - 1] and m > x[i + 1] and m >= top:
            return i
    return k


@njit
def cubic_peak(x, k):
    """Maximum near sample ``k`` refined by the Catmull-Rom cubic through the samples on
    both sides, on 21 points per interval: (fractional index, value)."""
    n = x.shape[0]
    if k < 2 or k > n - 3:
        return float(k), x[k]
    best_i, best_v = float(k), x[k]
    for i in (k - 1, k):
        m0 = 0.5 * (x[i + 1] - x[i - 1])
        m1 = 0.5 * (x[i + 2] - x[i])
        jb = 0
        yb = 0.0
        for j in range(_T.shape[0]):
            y = _H[0, j] * x[i] + _H[1, j] * m0 + _H[2, j] * x[i + 1] + _H[3, j] * m1
            if j == 0 or y > yb or (y != y and yb == yb):
                yb, jb = y, j
                if y != y:
                    break
        if yb > best_v:
            best_i, best_v = i + _T[jb], yb
    return best_i, best_v


@njit
def pitch_series(mats):
    """Inclination (deg) of the body x axis above the level plane: asin(R[2, 0])."""
    n = mats.shape[0]
    out = np.empty(n)
    for k in range(n):
        out[k] = _pitch(mats, k)
    return out


@njit
def roll_series(mats):
    """ZYX Euler roll (deg): atan2(R[2, 1], R[2, 2])."""
    n = mats.shape[0]
    out = np.empty(n)
    for k in range(n):
        out[k] = math.atan2(mats[k, 2, 1], mats[k, 2, 2]) * RAD_TO_DEG
    return out


@njit
def axis_pitch_series(mats, axis):
    """Sagittal inclination (deg) of the body-fixed ``axis``: atan2(-a_x, a_z), a = R axis."""
    n = mats.shape[0]
    out = np.empty(n)
    for k in range(n):
        out[k] = _axis_pitch(mats, axis, k)
    return out


@njit
def _pitch(mats, k):
    return math.asin(min(max(mats[k, 2, 0], -1.0), 1.0)) * RAD_TO_DEG


@njit
def _axis_pitch(mats, axis, k):
    ax = mats[k, 0, 0] * axis[0] + mats[k, 0, 1] * axis[1] + mats[k, 0, 2] * axis[2]
    az = mats[k, 2, 0] * axis[0] + mats[k, 2, 1] * axis[1] + mats[k, 2, 2] * axis[2]
    return math.atan2(-ax, az) * RAD_TO_DEG


@njit
def _interp_index(n, x):
    """Where ``np.interp(x, arange(n), y)`` reads: (j, fraction) with fraction 0 when it
    returns ``y[j]`` itself, or (-1, nan) for NaN."""
    if x != x:
        return -1, math.nan
    if x <= 0.0:
        return 0, 0.0
    if x >= n - 1:
        return n - 1, 0.0
    j = int(math.floor(x))
    return j, x - j


@njit
def _interp2(y0, y1, j, x):
    slope = y1 - y0
    r = slope * (x - j) + y0
    if r != r:
        r = slope * (x - (j + 1)) + y1
        if r != r and y0 == y1:
            r = y0
    return r


@njit
def pitch_at(mats, x):
    """:func:`pitch_series` interpolated at the fractional index ``x`` (``np.interp``),
    computed from the one or two samples it needs."""
    j, f = _interp_index(mats.shape[0], x)
    if j < 0:
        return math.nan
    if f == 0.0:
        return _pitch(mats, j)
    return _interp2(_pitch(mats, j), _pitch(mats, j + 1), j, x)


@njit
def axis_pitch_at(mats, axis, x):
    """:func:`axis_pitch_series` interpolated at the fractional index ``x``."""
    j, f = _interp_index(mats.shape[0], x)
    if j < 0:
        return math.nan
    if f == 0.0:
        return _axis_pitch(mats, axis, j)
    return _interp2(_axis_pitch(mats, axis, j), _axis_pitch(mats, axis, j + 1), j, x)


@njit
def level_rows(mats, v):
    """Body-frame vectors (n, 3) in the level frame: ``R[k] @ v[k]``."""
    n = v.shape[0]
    out = np.empty((n, 3))
    for k in range(n):
        for i in range(3):
            out[k, i] = mats[k, i, 0] * v[k, 0] + mats[k, i, 1] * v[k, 1] + mats[k, i, 2] * v[k, 2]
    return out


@njit
def impact_peaks(mats, acc_ms2, gravity_ms2, i0, i1, ic, cos_h, sin_h, axis, mode):
    """Impact peaks of one step from its level-frame attitude (see :mod:`.impact`).

    Gravity-free level-frame acceleration ``lin = R f - g z``; the impact series is its
    vertical component (``mode`` 0, foot), its component along the body-fixed ``axis``
    (1, shank axial) or its magnitude (2, shank without the axis). Returns the refined
    first peak of the impact series in ``[i0, i1)`` (index, value), its value at the
    fractional index ``ic``, the refined first peak of the magnitude (the resultant), and
    the refined largest deceleration along the heading ``(cos_h, sin_h)`` (m/s^2)."""
    n = acc_ms2.shape[0]
    # the samples the searches in [i0, i1), the cubic refinement (2 either side) and the
    # interpolation at ic read; the others stay unset
    j = int(math.floor(ic)) if ic == ic else i0
    lo = max(min(i0, j) - 2, 0)
    hi = min(max(i1, j + 2) + 2, n)
    if ic >= n - 1:
        hi = n
    lin = np.empty((n, 3))
    res = np.empty(n)
    main = np.empty(n)
    back = np.empty(n)
    for k in range(lo, hi):
        for i in range(3):
            lin[k, i] = mats[k, i, 0] * acc_ms2[k, 0] + mats[k, i, 1] * acc_ms2[k, 1] + mats[k, i, 2] * acc_ms2[k, 2]
        lin[k, 2] -= gravity_ms2
        x, y, z = lin[k, 0], lin[k, 1], lin[k, 2]
        res[k] = math.sqrt(x * x + y * y + z * z)
        back[k] = -(x * cos_h + y * sin_h)
        if mode == 0:
            main[k] = z
        elif mode == 1:
            a0 = mats[k, 0, 0] * axis[0] + mats[k, 0, 1] * axis[1] + mats[k, 0, 2] * axis[2]
            a1 = mats[k, 1, 0] * axis[0] + mats[k, 1, 1] * axis[1] + mats[k, 1, 2] * axis[2]
            a2 = mats[k, 2, 0] * axis[0] + mats[k, 2, 1] * axis[1] + mats[k, 2, 2] * axis[2]
            main[k] = x * a0 + y * a1 + z * a2
        else:
            main[k] = res[k]
    kp, peak = cubic_peak(main, first_peak(main, i0, i1, 0.5))
    at_ic = interp_at(main, ic)
    res_peak = cubic_peak(res, first_peak(res, i0, i1, 0.5))[1]
    braking = cubic_peak(back, argmax_range(back, i0, i1))[1]
    return kp, peak, at_ic, res_peak, braking


@njit
def _max_nan(a, b):
    """np.max's pairwise rule: NaN wins."""
    if a != a or b != b:
        return math.nan
    return a if a >= b else b


@njit
def max_norm(acc_ms2, i0, i1):
    """Largest |f| in ``[i0, i1)`` (NaN if any is NaN)."""
    top = -math.inf
    for k in range(i0, i1):
        x, y, z = acc_ms2[k, 0], acc_ms2[k, 1], acc_ms2[k, 2]
        top = _max_nan(top, math.sqrt(x * x + y * y + z * z))
    return top


@njit
def clipped_in_sensor_frame(acc_ms2, rotation, i0, i1, limit_ms2, min_top_ms2, n_flat):
    """Saturation in rows ``[i0, i1)`` back in the sensor frame (``rotation``: sensor ->
    body, so ``R^T f_body``, i.e. ``acc_body @ rotation``, is the sensor-frame sample).

    With ``limit_ms2`` finite: any axis with ``|f| >= limit_ms2``. Else a flat top: a sensor
    axis whose largest ``|f|`` reaches ``min_top_ms2`` stays at that extreme (within 1e-6
    relative) for ``n_flat`` consecutive samples."""
    n = i1 - i0
    a = np.empty((n, 3))
    for k in range(n):
        for j in range(3):
            a[k, j] = abs(acc_ms2[i0 + k, 0] * rotation[0, j] + acc_ms2[i0 + k, 1] * rotation[1, j]
                          + acc_ms2[i0 + k, 2] * rotation[2, j])
    if limit_ms2 == limit_ms2:
        top = -math.inf
        for k in range(n):
            for j in range(3):
                top = _max_nan(top, a[k, j])
        return top >= limit_ms2
    for j in range(3):
        top = -math.inf
        for k in range(n):
            top = _max_nan(top, a[k, j])
        if top < min_top_ms2:
            continue
        lim = top - (1e-6 * top + 1e-9)
        run = 0
        for k in range(n):
            if a[k, j] >= lim:
                run += 1
                if run >= n_flat:
                    return True
            else:
                run = 0
    return False


@njit
def eversion(mats, sign, ic, i0, i1, dt_s):
    """Eversion (deg, ``sign`` * roll) excursion from IC (fractional index ``ic``) to its
    maximum in ``[i0, i1]``, and the largest eversion rate (deg/s, ``np.gradient`` of the
    series with spacing ``dt_s``) from ``i0`` to that maximum, and the number of rates
    (0: NaN)."""
    n = mats.shape[0]
    ev = np.empty(n)
    # the samples read: the interpolation at ic, [i0, i1] and one either side (gradient)
    j = int(math.floor(ic)) if ic == ic else i0
    lo = max(min(i0, j) - 1, 0)
    hi = min(max(i1, j + 1) + 2, n)
    if ic >= n - 1:
        hi = n
    for k in range(lo, hi):
        ev[k] = math.atan2(mats[k, 2, 1], mats[k, 2, 2]) * RAD_TO_DEG * sign
    ev_ic = interp_at(ev, ic)
    hi = min(i1 + 1, n)
    if hi <= i0:
        return math.nan, math.nan, 0
    k = argmax_range(ev, i0, hi) - i0
    top = ev[i0 + k]
    excursion = (ev_ic if ev_ic > top else top) - ev_ic
    rate = math.nan
    for j in range(i0, min(i0 + k + 1, n)):
        if j == 0:
            r = (ev[1] - ev[0]) / dt_s
        elif j == n - 1:
            r = (ev[n - 1] - ev[n - 2]) / dt_s
        else:
            r = (ev[j + 1] - ev[j - 1]) / (2.0 * dt_s)
        rate = r if j == i0 else _max_nan(rate, r)
    return excursion, rate, min(i0 + k + 1, n) - i0


@njit
def foot_stance(mats, acc_ms2, gravity_ms2, want_impact, i0, i1, ic, cos_h, sin_h, axis, clip_mode, rotation,
                limit_ms2, min_top_ms2, n_flat, anchor, sign, e0, e1, dt_s):
    """A foot step's stance metrics in one call, from its level-frame attitude ``mats``
    (one trip from Python instead of five - clipping, impact peaks, two pitches, eversion -:
    each costs about a microsecond, and more when the caches are cold). The same kernels as the per-metric
    functions, in the same order, so the same floats:

    * clipping in ``[i0, i1)`` (:func:`.impact.clipped`): ``clip_mode`` 0 the resultant
      against ``limit_ms2`` (:func:`max_norm`), 1 the sensor frame (:func:`clipped_in_sensor_frame`
      with ``rotation``), 2 unknowable (NaN); then, unless clipped, :func:`impact_peaks`
      (``mode`` 0, the foot's vertical) - both only when ``want_impact`` (else NaN);
    * the strike angle, pitch at ``ic`` minus pitch at ``anchor`` (:func:`pitch_at`,
      :mod:`.strike`);
    * :func:`eversion` from ``ic`` over ``[e0, e1]`` (:mod:`.pronation`).

    Returns ``(clip, kp, peak, at_ic, res_peak, braking, strike_angle, excursion, rate,
    n_rates)``."""
    nan = math.nan
    clip = kp = peak = at_ic = res_peak = braking = nan
    if want_impact:
        if clip_mode == 0:
            clip = 1.0 if max_norm(acc_ms2, i0, i1) >= limit_ms2 else 0.0
        elif clip_mode == 1:
            clip = 1.0 if clipped_in_sensor_frame(acc_ms2, rotation, i0, i1, limit_ms2, min_top_ms2, n_flat) else 0.0
        if clip != 1.0:
            kp, peak, at_ic, res_peak, braking = impact_peaks(mats, acc_ms2, gravity_ms2, i0, i1, ic, cos_h, sin_h,
                                                              axis, 0)
    angle = pitch_at(mats, ic) - pitch_at(mats, float(anchor))
    excursion, rate, n_rates = eversion(mats, sign, ic, e0, e1, dt_s)
    return clip, kp, peak, at_ic, res_peak, braking, angle, excursion, rate, n_rates
