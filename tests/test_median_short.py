"""Short runs' metric medians (issue 9: a fixed cost of every short replay): while nothing has
been folded (fewer than FOLD_EVERY steps of a sensor), ``MetricsSummary.to_dict`` takes each
median from the values' bins directly (``pipeline.median.median_of_finite``) instead of
folding them into pages first. It must give the same count and the same float as
BinnedMedian (NaN/inf, huge values, ties, every resolution), and ``to_dict`` the same dict as
the replaced code (kept below verbatim) - asked at the end, mid-run, and across FOLD_EVERY."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as hs

from pipeline.median import FOLD_EVERY, RESOLUTION, BinnedMedian, median_of_finite
from pipeline.metrics import MetricsSummary, unit_of


class OldSummary(MetricsSummary):
    def to_dict(self) -> dict:  # MetricsSummary.to_dict before the change, verbatim
        out: dict = {}
        for sid, medians in sorted(self._medians.items()):
            self._fold(sid)
            out[sid] = {}
            by_name: dict[str, dict[str, int]] = {}
            for (name, reason), n in self._nan_counts[sid].items():
                r = by_name.setdefault(name, {})
                why = reason or "not_measurable"
                r[why] = r.get(why, 0) + n
            for name, med in medians.items():
                reasons = by_name.get(name, {})
                out[sid][name] = {
                    "unit": unit_of(name), "steps": med.count + sum(reasons.values()), "valid": med.count,
                    "median": med.median(),
                    "nan_reasons": dict(sorted(reasons.items())),
                }
        return out


_value = hs.one_of(hs.floats(-3.0, 3.0), hs.floats(-1e4, 1e4), hs.floats(allow_nan=True, allow_infinity=True),
                   hs.sampled_from([0.0, -0.0, 0.0005, -0.0005, 0.005, 1e300, -1e300, 2.0**62]))


def _same(a: float, b: float) -> bool:
    return repr(a) == repr(b) or (math.isnan(a) and math.isnan(b))


@settings(max_examples=400, deadline=None)
@given(values=hs.lists(_value, max_size=FOLD_EVERY + 40), w=hs.sampled_from(sorted(set(RESOLUTION.values()))))
def test_median_of_finite_is_binned_median(values, w):
    m = BinnedMedian(w)
    m.extend(values)
    count, median = median_of_finite(values, w)
    assert count == m.count and _same(median, m.median())
    m2 = BinnedMedian(w)
    for v in values:
        m2.add(v)
    assert _same(median, m2.median())


class _M:
    __slots__ = ("name", "value", "reason")

    def __init__(self, name, value, reason):
        self.name, self.value, self.reason = name, value, reason


class _S:
    def __init__(self, sid):
        self.sensor_id = sid


class _R:
    def __init__(self, sid, metrics):
        self.sensor, self.metrics = _S(sid), metrics


NAMES = ("impact_g", "strike_angle_deg", "speed_mps", "pronation_dps", "stride_length_m", "clip_clipped",
         "strike_code", "duty_pct", "loading_gps")


def _records(rng: random.Random, n: int):
    out = []
    for _ in range(n):
        sid = rng.choice(["lf", "rf"])
        ms = []
        for name in NAMES:
            r = rng.random()
            if r < 0.15:
                ms.append(_M(name, math.nan, rng.choice(["", "no_stride", "clipped"])))
            elif r < 0.17:
                ms.append(_M(name, rng.choice([math.inf, -math.inf]), "overflow"))
            else:
                ms.append(_M(name, rng.choice([round(rng.gauss(1, 2), 3), rng.gauss(0, 1e3), 1.25]), ""))
        out.append(_R(sid, ms))
    return out


@settings(max_examples=60, deadline=None)
@given(seed=hs.integers(0, 10**6), n=hs.sampled_from([0, 1, 2, 17, 2 * FOLD_EVERY - 1, 2 * FOLD_EVERY + 3, 700]),
       asks=hs.lists(hs.integers(0, 700), max_size=3))
def test_to_dict_same_as_the_replaced_code(seed, n, asks):
    recs = _records(random.Random(seed), n)
    new, old = MetricsSummary(), OldSummary()
    for i, r in enumerate(recs):
        new.add(r)
        old.add(r)
        if i in asks:  # asked mid-run: the run goes on the same
            assert repr(new.to_dict()) == repr(old.to_dict())
    assert repr(new.to_dict()) == repr(old.to_dict())
    assert repr(new.to_dict()) == repr(old.to_dict())  # asked twice
