"""Compiled per-step and per-block work of :mod:`detectors.steps` (why compiled: see
``detectors/_jit.py``).

Each stance needs a handful of searches over a few hundred samples (the push-off minimum,
its lobe, the mid-swing peak, the impact onset), and each block a low-pass and a search
for swing starts; as numpy/scipy calls they cost ~1-5 us of call overhead each, ~60 us per
step (``scipy.signal.find_peaks`` alone ~30 us) and ~10 us per live block of ~20 samples.
These kernels do the same comparisons and the same float operations in the same order,
so their results are bit-identical to the numpy/scipy expressions quoted in each
docstring (``tests/test_steps_kernels.py`` checks them against those expressions).

Indices are plain sample indices into the arrays passed in; -1 means "none".
"""

from __future__ import annotations

import math

import numpy as np

from detectors._jit import njit


@njit
def last_prominent_minimum(x, lo, hi, depth, prominence):
    """Index of the last minimum of ``x[lo:hi]`` that is at least ``depth`` deep
    (``-x <= -depth``) with a prominence of at least ``prominence`` (same unit as x), or -1.

    Equal to ``lo + scipy.signal.find_peaks(-x[lo:hi], height=depth,
    prominence=prominence)[0][-1]``: a peak of ``y = -x`` is a plateau (run of equal values,
    its middle sample ``(first + last) // 2``) with a strictly lower sample on both sides,
    not touching either end of the slice; its prominence is its height above the higher of
    the two lowest points reached before ``y`` exceeds it on either side, within the slice
    (``wlen=None``). Searched from the right, stopping at the first peak that qualifies.
    """
    n = hi - lo
    i = n - 2
    while i >= 1:
        yi = -x[lo + i]
        if -x[lo + i + 1] < yi:  # i is the last sample of a plateau falling to the right
            a = i
            while a >= 1 and -x[lo + a - 1] == yi:
                a -= 1
            if a >= 1 and -x[lo + a - 1] < yi:
                p = (a + i) // 2
                yp = -x[lo + p]
                if depth <= yp:
                    left_min = yp
                    k = p
                    while k >= 0 and -x[lo + k] <= yp:
                        if -x[lo + k] < left_min:
                            left_min = -x[lo + k]
                        k -= 1
                    right_min = yp
                    k = p
                    while k <= n - 1 and -x[lo + k] <= yp:
                        if -x[lo + k] < right_min:
                            right_min = -x[lo + k]
                        k += 1
                    base = left_min if left_min >= right_min else right_min
                    if prominence <= yp - base:
                        return lo + p
            i = a - 1
        else:
            i -= 1
    return -1


@njit
def last_index_at_least(x, lo, hi, level):
    """Last index k in [lo, hi) with ``x[k] >= level``, or -1
    (``lo + np.flatnonzero(x[lo:hi] >= level)[-1]``)."""
    k = hi - 1
    while k >= lo:
        if x[k] >= level:
            return k
        k -= 1
    return -1


@njit
def argmin_in(x, lo, hi):
    """``lo + np.argmin(x[lo:hi])`` (the first of equal minima); needs hi > lo."""
    best = lo
    v = x[lo]
    for k in range(lo + 1, hi):
        if x[k] < v:
            v = x[k]
            best = k
    return best


@njit
def argmax_in(x, lo, hi):
    """``lo + np.argmax(x[lo:hi])`` (the first of equal maxima); needs hi > lo."""
    best = lo
    v = x[lo]
    for k in range(lo + 1, hi):
        if x[k] > v:
            v = x[k]
            best = k
    return best


@njit
def parabolic_offset(x, k):
    """Offset (in samples, within ±1) of the minimum near sample k from the parabola
    through k-1, k, k+1 (0.0 at the ends, for a non-convex triple or an offset beyond ±1)."""
    if k < 1 or k + 1 >= x.shape[0]:
        return 0.0
    a = x[k - 1] - 2.0 * x[k] + x[k + 1]
    if a <= 0:
        return 0.0
    v = 0.5 * (x[k - 1] - x[k + 1]) / a
    return v if abs(v) <= 1.0 else 0.0


@njit
def push_off(w, wf, lo, hi, depth, prominence, delay_n):
    """The push-off (TO) of the stance window ``[lo, hi)`` of a sagittal rate (deg/s).

    ``w``: raw rate, ``wf``: its low-pass. Returns ``(k_to, offset, k_start, k_mid)``:
    the sample of the raw minimum and its parabolic sub-sample offset, the first sample of
    the negative lobe holding it, and the mid-swing peak of ``wf`` before that lobe
    (``lo`` when the lobe starts the window); ``k_to = -1`` when there is no push-off.
    The same steps as the numpy code they replace (``GyroStepDetector._try_step``):

    * ``k_f``: :func:`last_prominent_minimum` of ``wf`` (``depth``, ``prominence``);
    * ``k_start``: one after the last ``wf >= 0`` in ``[lo, k_f)``, else ``lo``;
    * ``k_to``: ``argmin`` of ``w`` over ``[max(k_f - delay_n, k_start), k_f]``
      (the low-pass lags the raw rate by up to ``delay_n`` samples);
    * ``k_mid``: ``argmax`` of ``wf`` over ``[lo, k_start)``.
    """
    k_f = last_prominent_minimum(wf, lo, hi, depth, prominence)
    if k_f < 0:
        return -1, 0.0, -1, -1
    k_nn = last_index_at_least(wf, lo, k_f, 0.0)
    k_start = k_nn + 1 if k_nn >= 0 else lo
    a = k_f - delay_n
    if a < k_start:
        a = k_start
    k_to = argmin_in(w, a, k_f + 1)
    k_mid = argmax_in(wf, lo, k_start) if k_start > lo else lo
    return k_to, parabolic_offset(w, k_to), k_start, k_mid


@njit
def max_rise(up, lo, hi, rise_n):
    """``(up[rise_n:] - up[:-rise_n]).max()`` over ``up[lo:hi]`` (needs hi - lo > rise_n)."""
    best = up[lo + rise_n] - up[lo]
    for k in range(lo + 1, hi - rise_n):
        d = up[k + rise_n] - up[k]
        if d > best:
            best = d
    return best


@njit
def impact_onset_at(up, lo, hi, rise_n, back_n, first_fraction, onset_fraction):
    """Core of :func:`detectors.steps.impact_onset` on ``up`` (m/s²), with ``lo``/``hi``
    already clipped to ``[3, len - rise_n - 3)`` and ``hi > lo``.

    Returns ``(n, fraction, rise)``, ``n = -1`` for no impact. With ``r[k] = up[lo + k +
    rise_n] - up[lo + k]``: the biggest rise ``k0``; the first ``k`` in ``[k0 - back_n, k0]``
    whose rise is at least ``first_fraction`` of it (first contact before a second
    loading), climbed to that rise's own peak ``n0``; the first one-sample step in
    ``[n0 - 1, n0 + rise_n + 1)`` reaching ``onset_fraction`` of the largest, refined where
    the lines through the two samples before and after it meet.
    """
    # biggest rise within one rise time, first of equals
    k0 = lo
    r0 = up[lo + rise_n] - up[lo]
    for k in range(lo + 1, hi):
        d = up[k + rise_n] - up[k]
        if d > r0:
            r0 = d
            k0 = k
    if r0 <= 0.0:
        return -1, 0.0, 0.0
    back = k0 - back_n
    if back < lo:
        back = lo
    level = first_fraction * r0
    k = back
    while not (up[k + rise_n] - up[k] >= level):
        k += 1
    # climb to that rise's own peak
    while k + 1 < hi and up[k + 1 + rise_n] - up[k + 1] > up[k + rise_n] - up[k]:
        k += 1
    n0 = k
    rise = up[n0 + rise_n] - up[n0]
    w0 = n0 - 1
    w1 = n0 + rise_n + 1
    k_max = w0
    d_max = up[w0 + 1] - up[w0]
    for j in range(w0 + 1, w1):
        d = up[j + 1] - up[j]
        if d > d_max:
            d_max = d
            k_max = j
    if d_max <= 0.0:
        return -1, 0.0, 0.0
    level = onset_fraction * d_max
    n = w0
    while not (up[n + 1] - up[n] >= level):
        n += 1
    best_m = n
    best_t = 0.5
    best_score = -1.0
    for m in (n, n - 1):
        p = up[m] - up[m - 1]
        q = up[m + 2] - up[m + 1]
        if q == p:
            continue
        t = (up[m + 1] - up[m] - q) / (p - q)
        if 0.0 <= t <= 1.0:
            u = 1.0 - t
            score = u if u < t else t  # Python's min(t, 1 - t)
        else:
            score = -abs(t - 0.5)
        if score > best_score:
            c = 0.0 if 0.0 > t else t  # Python's max(t, 0.0)
            best_t = 1.0 if 1.0 < c else c  # Python's min(c, 1.0)
            best_m = m
            best_score = score
    return best_m, best_t, rise



@njit
def _slice_bound(i, n):
    """A start or stop of ``slice(...).indices(n)`` with step 1: negative counts from the end,
    then clamped to [0, n] (Python's semantics)."""
    if i < 0:
        i += n
        return i if i > 0 else 0
    return i if i < n else n


@njit
def try_step_at(w, wf, up, start, i_ws, i_c, depth, prominence, delay_n, mid_level, min_contact_n,
                max_contact_n, rise_n, back_n, first_fraction, onset_fraction, rise_s, g_ms2, jerk_min_gps,
                late_ratio):
    """One swing-start candidate of ``GyroStepDetector._try_step`` in one call: its
    push-off (TO), its impact (IC) and both rejections, with buffer sample ``k`` at
    segment index ``start + k``. Returns ``(k_to, to, n, frac)``: TO's buffer sample and
    segment index, IC's buffer sample and sub-sample fraction (IC = ``(start + n) +
    frac``); ``n = -1`` when the window is not a step (``k_to = -1`` too when there is no
    push-off). The same steps, comparisons and float operations in the same order as the
    Python it replaces (``tests/test_steps_try_step.py`` keeps it and compares):

    * ``push_off`` over ``[i_ws, i_c)``; ``to = (start + k_to) + offset``;
    * the mid-swing peak only counts if ``wf`` there reaches ``mid_level``, else ``i_ws``;
    * IC searched in ``[max(start + mid, ceil(to - max_contact_n)), floor(to -
      min_contact_n))`` as ``detectors.steps.impact_onset`` does (clipped to ``[3, len -
      rise_n - 3)``, ``impact_onset_at``), kept if its jerk ``rise / rise_s / g_ms2``
      reaches ``jerk_min_gps``;
    * rejected when the biggest rise over ``slice(floor(to - min_contact_n) - start,
      i_c + 1)`` (Python's slice semantics: negative bounds from the end) exceeds
      ``late_ratio`` times the IC's rise (a forefoot landing's heel drop).

    One compiled call per candidate instead of three kernels and ~30 Python operations
    (~8 us each warm, and each kernel's dispatch cold after a GC).
    """
    k_to, offset, k_start, ms = push_off(w, wf, i_ws, i_c, depth, prominence, delay_n)
    if k_to < 0:
        return -1, 0.0, -1, 0.0
    to = (start + k_to) + offset
    if wf[ms] < mid_level:
        ms = i_ws  # no swing in the window (first step of a segment)
    ic_hi = np.int64(math.floor(to - min_contact_n))
    ic_lo = np.int64(math.ceil(to - max_contact_n))
    if start + ms > ic_lo:
        ic_lo = start + ms
    n_up = up.shape[0]
    lo = ic_lo - start
    hi = ic_hi - start
    if lo < 3:
        lo = 3
    if hi > n_up - rise_n - 3:
        hi = n_up - rise_n - 3
    if hi - lo < 1:
        return k_to, to, -1, 0.0
    n, frac, rise = impact_onset_at(up, lo, hi, rise_n, back_n, first_fraction, onset_fraction)
    if n < 0 or not (rise / rise_s / g_ms2 >= jerk_min_gps):
        return k_to, to, -1, 0.0
    # slice(ic_hi - start, i_c + 1).indices(n_up)
    l0 = _slice_bound(ic_hi - start, n_up)
    l1 = _slice_bound(i_c + 1, n_up)
    if l1 - l0 > rise_n and max_rise(up, l0, l1, rise_n) > late_ratio * rise:
        return k_to, to, -1, 0.0
    return k_to, to, n, frac


@njit
def upward_crossings(x, before, level):
    """Indices k where ``x`` rises through ``level``: ``x[k - 1] < level <= x[k]``, with
    ``x[-1]`` taken as ``before`` (the sample before this block)
    (``np.flatnonzero((np.r_[before, x[:-1]] < level) & (x >= level))``)."""
    out = np.empty(x.shape[0], dtype=np.int64)
    n = 0
    prev = before
    for k in range(x.shape[0]):
        if prev < level and x[k] >= level:
            out[n] = k
            n += 1
        prev = x[k]
    return out[:n]


@njit
def sosfilt_1d(sos, x, zi):
    """``scipy.signal.sosfilt(sos, x, zi=zi)`` for a 1-D ``x``: the cascade of biquads in
    transposed direct form II, each product and sum in the order of scipy's own compiled
    loop (``scipy/signal/_sosfilt.pyx``), so the output is bit-identical; returns (y, zf)."""
    y = np.empty(x.shape[0])
    z = zi.copy()
    n_sec = sos.shape[0]
    for n in range(x.shape[0]):
        x_cur = x[n]
        for s in range(n_sec):
            x_new = sos[s, 0] * x_cur + z[s, 0]
            z[s, 0] = sos[s, 1] * x_cur - sos[s, 4] * x_new + z[s, 1]
            z[s, 1] = sos[s, 2] * x_cur - sos[s, 5] * x_new
            x_cur = x_new
        y[n] = x_cur
    return y, z


def warm_up() -> None:
    """Compile the kernels, or load them from numba's cache, for the argument types the
    detector passes (contiguous rate columns, the strided vertical column of a buffer), so
    the first stance of a run is not held up by the compiler (~1-3 s on a cold cache)."""
    w = np.zeros(32)
    up = np.zeros((32, 3))[:, 2]
    push_off(w, w, 0, 32, 1.0, 0.5, 3)
    upward_crossings(w, np.inf, 30.0)
    sosfilt_1d(np.ones((1, 6)), w, np.zeros((1, 2)))
    impact_onset_at(up, 3, 8, 2, 16, 0.6, 0.6)
    max_rise(up, 0, 8, 2)
    try_step_at(w, w, up, 0, 0, 32, 1.0, 0.5, 3, 1.0, 2.0, 5.0, 2, 16, 0.6, 0.6, 0.01, 9.8, 40.0, 3.0)
