"""pipeline.median.median_of_finite's plain-Python path for up to FEW values (issue 9: a short
run's ~26 medians per sensor without ~8 numpy calls each) must give exactly what its numpy
path (the code it replaced for short lists) gives: the same count and the same float bit for bit
(NaN/inf, -0.0, half-bin ties, huge values past the +-2**60 clamp and past float overflow,
ints and numpy floats, every resolution, both sides of FEW), and BinnedMedian's figure. The
two callers (MetricsSummary.to_dict's short path, the session summary's _StepMedian) give
the same results with every list on the numpy path."""

from __future__ import annotations

import math
import random
import struct
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from pipeline.median import FEW, RESOLUTION, BinnedMedian, median_of_finite
from pipeline.median import _median_of_few as python_path
from pipeline.median import _median_of_many as numpy_path

_RES = sorted(set(RESOLUTION.values()) | {0.001, 0.3, 1e-9, 7.0})
_value = hs.one_of(hs.floats(-3.0, 3.0), hs.floats(-1e4, 1e4), hs.floats(allow_nan=True, allow_infinity=True),
                   hs.sampled_from([0.0, -0.0, 0.0005, -0.0005, 0.005, -0.005, 0.015, 0.5, 1.5, -2.5, 1e300, -1e300,
                                    1.7e308, -1.7e308, 2.0**62, -(2.0**62), 2.0**60 * 0.001, 5e-324]))


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _same(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and type(a[0]) is type(b[0]) is int and type(a[1]) is type(b[1]) is float and (
        _bits(a[1]) == _bits(b[1]) or (math.isnan(a[1]) and math.isnan(b[1])))


@settings(max_examples=600, deadline=None)
@given(values=hs.lists(_value, max_size=FEW + 20), w=hs.sampled_from(_RES))
def test_median_of_few_is_median_of_finite(values, w):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow/invalid warnings from the Python path
        got = median_of_finite(values, w)
    assert _same(got, numpy_path(values, w))
    m = BinnedMedian(w)
    m.extend(values)
    assert got[0] == m.count and (_bits(got[1]) == _bits(m.median()) or math.isnan(got[1]) and math.isnan(m.median()))


def test_random_lists_bit_for_bit():
    rng = random.Random(9)
    for trial in range(20000):
        n = rng.randrange(0, FEW + 3)
        w = rng.choice(_RES)
        kind = trial % 4
        if kind == 0:
            values = [rng.gauss(0.0, 10.0 ** rng.randrange(-3, 4)) for _ in range(n)]
        elif kind == 1:  # exact half-bin ties (rint rounds half to even)
            values = [(rng.randrange(-400, 400) + 0.5) * w for _ in range(n)]
        elif kind == 2:  # repeated values, NaN and infinities
            values = [rng.choice([1.0, 2.0, -0.0, math.nan, math.inf, -math.inf, 3.25]) for _ in range(n)]
        else:
            values = [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(n)]
        assert _same(python_path(values, w), numpy_path(values, w)), (values, w)


def test_other_number_types_as_numpy_reads_them():
    for values in ([1, 2, 3, 4], [np.float64(0.005), np.float64(-0.015), 2], [True, 0.5, np.float32(0.25)],
                   [np.float64(np.inf), np.float64(np.nan), np.float64(1.0)]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = python_path(values, 0.01)
        assert _same(got, numpy_path(values, 0.01))


def test_long_lists_go_to_numpy():
    values = [float(i) for i in range(FEW + 1)]
    assert _same(median_of_finite(values, 0.01), numpy_path(values, 0.01))
    assert median_of_finite([], 0.01)[0] == 0 and math.isnan(median_of_finite([], 0.01)[1])
    assert median_of_finite([math.nan] * 3, 0.01)[0] == 0


@pytest.mark.parametrize("duration_s,placement", [(10.0, "foot"), (25.0, "foot"), (12.0, "shank"), (100.0, "foot")])
def test_callers_as_with_median_of_finite(monkeypatch, duration_s, placement):
    """MetricsSummary.to_dict and the session summary's step medians give the same dict with
    the replaced call (median_of_finite) patched back in, on simulated runs of ~14-140 steps
    per sensor (both sides of FEW)."""
    import pipeline.median as mf
    from pipeline.records import SensorInfo, SessionInfo
    from pipeline.simulator import SimParams
    from pipeline.summary import SummaryBuilder
    from sim_helpers import run_sim

    p = SimParams(placement=placement, fs_hz=200.0, duration_s=duration_s, variability=1.0, seed=5,
                  acc_noise_ms2=0.05, gyr_noise_dps=0.5)
    _, records = run_sim(p)
    assert len(records) > 5

    def build():
        b = SummaryBuilder(SessionInfo(session_id="x", athlete="a", start_wall_ns=0),
                           [SensorInfo("s", placement, "right")])
        b.add(records)
        return b.build().to_dict()

    new = build()
    monkeypatch.setattr(mf, "FEW", -1)  # every list to the numpy path: the replaced code
    assert repr(build()) == repr(new)
