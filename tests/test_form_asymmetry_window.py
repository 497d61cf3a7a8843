"""The rolling window of detectors/form/asymmetry.py (bisection + cached medians) gives
exactly what a deque(maxlen) of the rows filtered by IC time gives (its definition)."""

from __future__ import annotations

import math
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as hs

from detectors.form.asymmetry import _History, _median

value = hs.one_of(hs.floats(0.1, 500.0), hs.just(math.nan))


def _naive(rows: deque, t_s: float, n: int):
    w = [h for h in rows if h[0] <= t_s][-n:]
    if not w:
        return None
    return tuple(_median(h[k] for h in w) for k in (1, 2, 3))


@settings(max_examples=200, deadline=None)
@given(steps=hs.lists(hs.tuples(hs.floats(0.0, 1.5), value, value, value), min_size=1, max_size=120),
       queries=hs.lists(hs.tuples(hs.integers(0, 119), hs.floats(-2.0, 2.0)), max_size=40),
       maxlen=hs.integers(1, 20), n=hs.integers(1, 12), shuffle_at=hs.integers(-1, 119))
def test_window_medians_equal_the_definition(steps, queries, maxlen, n, shuffle_at):
    hist, ref = _History(maxlen), deque(maxlen=maxlen)
    t = 0.0
    qs = {}
    for i, q in queries:
        qs.setdefault(i, []).append(q)
    for i, (dt, c, imp, sl) in enumerate(steps):
        t = t - 0.5 if i == shuffle_at else t + dt  # one step out of IC order: the scan fallback
        row = (t, c, imp, sl)
        hist.append(row)
        ref.append(row)
        for lag in [0.0] + qs.get(i, []):
            got, want = hist.medians(t + lag, n), _naive(ref, t + lag, n)
            assert (got is None) == (want is None)
            if got is not None:
                assert all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(got, want))
