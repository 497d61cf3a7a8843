"""The compiled step searches (detectors/steps_kernels.py) equal the numpy/scipy expressions
they replace, bit for bit, on random signals with plateaus, ties and short windows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from detectors import steps_kernels as K
from detectors.steps import FIRST_CONTACT_FRACTION, IMPACT_RISE_S, ONSET_FRACTION, SECOND_LOADING_S, impact_onset


def _signal(seed: int, n: int, levels: int | None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.normal(0.0, 30.0, n)) + 200.0 * np.sin(np.arange(n) / 17.0)
    if levels:  # quantised: many plateaus and equal values
        x = np.round(x / 400.0 * levels) * (400.0 / levels)
    return x


def _find_peaks_last(x, lo, hi, depth, prominence):
    mins, _ = signal.find_peaks(-x[lo:hi], height=depth, prominence=prominence)
    return lo + int(mins[-1]) if mins.size else -1


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 400), levels=st.sampled_from([None, 3, 8, 40]),
       depth=st.floats(-200.0, 300.0), prom=st.floats(0.0, 300.0), lo=st.integers(0, 50), width=st.integers(0, 400))
def test_last_prominent_minimum_equals_find_peaks(seed, n, levels, depth, prom, lo, width):
    x = _signal(seed, n, levels)
    lo = min(lo, n)
    hi = min(lo + width, n)
    assert K.last_prominent_minimum(x, lo, hi, depth, prom) == _find_peaks_last(x, lo, hi, depth, prom)


def _push_off_reference(w, wf, lo, hi, depth, prominence, delay_n):
    k_f = _find_peaks_last(wf, lo, hi, depth, prominence)
    if k_f < 0:
        return None
    nonneg = np.flatnonzero(wf[lo:k_f] >= 0.0)
    k_start = lo + (int(nonneg[-1]) + 1 if nonneg.size else 0)
    a = max(k_f - delay_n, k_start)
    k_to = a + int(np.argmin(w[a:k_f + 1]))
    off = 0.0
    if 1 <= k_to and k_to + 1 < w.size:
        c = w[k_to - 1] - 2.0 * w[k_to] + w[k_to + 1]
        if c > 0:
            v = 0.5 * (w[k_to - 1] - w[k_to + 1]) / c
            off = float(v) if abs(v) <= 1.0 else 0.0
    k_mid = lo + int(np.argmax(wf[lo:k_start])) if k_start > lo else lo
    return k_to, off, k_start, k_mid


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 600), levels=st.sampled_from([None, 5, 40]),
       depth=st.floats(0.0, 300.0), lo=st.integers(0, 50), delay_n=st.integers(0, 20))
def test_push_off_equals_numpy(seed, n, levels, depth, lo, delay_n):
    w = _signal(seed, n, levels)
    wf = signal.sosfilt(signal.butter(2, 0.08, output="sos"), w)
    lo = min(lo, n)
    ref = _push_off_reference(w, wf, lo, n, depth, 0.5 * depth, delay_n)
    got = K.push_off(w, wf, lo, n, depth, 0.5 * depth, delay_n)
    if ref is None:
        assert got[0] == -1
    else:
        assert got == ref


def _impact_onset_reference(up, lo, hi, rise_n):
    """The numpy implementation impact_onset had before it was compiled."""
    lo = max(lo, 3)
    hi = min(hi, up.shape[0] - rise_n - 3)
    if hi - lo < 1:
        return None
    r = up[lo + rise_n:hi + rise_n] - up[lo:hi]
    k0 = int(np.argmax(r))
    if r[k0] <= 0.0:
        return None
    back = max(k0 - int(round(SECOND_LOADING_S * rise_n / IMPACT_RISE_S)), 0)
    k0 = back + int(np.flatnonzero(r[back:k0 + 1] >= FIRST_CONTACT_FRACTION * r[k0])[0])
    while k0 + 1 < r.size and r[k0 + 1] > r[k0]:
        k0 += 1
    n0 = lo + k0
    w0, w1 = n0 - 1, n0 + rise_n + 1
    d = up[w0 + 1:w1 + 1] - up[w0:w1]
    k_max = int(np.argmax(d))
    if d[k_max] <= 0.0:
        return None
    k = int(np.flatnonzero(d[:k_max + 1] >= ONSET_FRACTION * d[k_max])[0])
    n = w0 + k
    s = up[n - 2:n + 3]
    best, best_score = (n, 0.5), -1.0
    for m in (n, n - 1):
        j = m - (n - 2)
        p = s[j] - s[j - 1]
        q = s[j + 2] - s[j + 1]
        if q == p:
            continue
        t = (s[j + 1] - s[j] - q) / (p - q)
        score = min(t, 1.0 - t) if 0.0 <= t <= 1.0 else -abs(t - 0.5)
        if score > best_score:
            best, best_score = (m, float(min(max(t, 0.0), 1.0))), score
    return best[0], best[1], float(r[n0 - lo])


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 500), levels=st.sampled_from([None, 4, 30]),
       lo=st.integers(-5, 100), width=st.integers(-5, 500), rise_n=st.integers(1, 12),
       strided=st.booleans())
def test_impact_onset_equals_numpy(seed, n, levels, lo, width, rise_n, strided):
    up = _signal(seed, n, levels)
    if strided:  # a column of an (n, 3) block, as the detector passes it
        up = np.repeat(up[:, None], 3, axis=1)[:, 2]
    got = impact_onset(up, lo, lo + width, rise_n=rise_n)
    assert got == _impact_onset_reference(up, lo, lo + width, rise_n)


@pytest.mark.parametrize("seed", range(20))
def test_max_rise_equals_numpy(seed):
    up = _signal(seed, 300, 7 if seed % 2 else None)
    for lo, hi, rise_n in ((0, 300, 5), (17, 40, 5), (3, 5, 1), (100, 112, 11)):
        assert K.max_rise(up, lo, hi, rise_n) == (up[lo:hi][rise_n:] - up[lo:hi][:-rise_n]).max()


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 60), levels=st.sampled_from([None, 3, 8]),
       before=st.sampled_from([np.inf, -np.inf, 0.0, 30.0, 29.0, 100.0]))
def test_upward_crossings_equal_numpy(seed, n, levels, before):
    x = _signal(seed, n, levels) / 4.0
    ref = np.flatnonzero((np.concatenate([[before], x[:-1]]) < 30.0) & (x >= 30.0))
    assert K.upward_crossings(x, before, 30.0).tolist() == ref.tolist()


@pytest.mark.parametrize("fs_hz,cut_hz,order", [(500.0, 20.0, 2), (100.0, 20.0, 2), (1000.0, 20.0, 4), (200.0, 8.0, 3)])
def test_sosfilt_equals_scipy_bit_for_bit(fs_hz, cut_hz, order):
    sos = signal.butter(order, cut_hz / (fs_hz / 2), output="sos")
    rng = np.random.default_rng(int(fs_hz))
    x = np.cumsum(rng.normal(0, 40, 50_000)) + rng.normal(0, 300, 50_000)
    zi = signal.sosfilt_zi(sos) * x[0]
    ref_y, ref_z = signal.sosfilt(sos, x, zi=zi)
    y, z = K.sosfilt_1d(sos, x, zi)
    assert y.tobytes() == ref_y.tobytes() and z.tobytes() == ref_z.tobytes()
    # block by block with the carried state: the same samples
    parts, zc = [], zi
    for a in range(0, x.size, 19):
        yb, zc = K.sosfilt_1d(sos, x[a:a + 19], zc)
        parts.append(yb)
    assert np.concatenate(parts).tobytes() == ref_y.tobytes()
