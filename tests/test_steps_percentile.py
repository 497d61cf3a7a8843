"""The step detector's reference push-off depth takes the 1st percentile of the first
``init_s`` of filtered rate with ``detectors.steps._percentile`` (issue 9: one sort instead of
``np.percentile``'s ~25 numpy calls, a fixed cost of every segment). It must be
``np.percentile``'s value bit for bit (numpy's 'linear' method; a zero may differ in sign
only), for any length, ties, infinities and NaN, any q; and the detector's steps equal to
those with ``np.percentile`` (the replaced code)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import steps
from detectors.steps import GyroStepDetector, _percentile
from pipeline.records import SampleBlock
from pipeline.simulator import SimParams, Simulator


def _same(a, b):
    return (a == b) or (a != a and b != b)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's own inf - inf
@pytest.mark.parametrize("seed", range(4))
def test_percentile_is_numpys_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    qs = [0.0, 1.0, 0.5, 2.5, 25.0, 49.999, 50.0, 75.0, 99.0, 100.0, 33.3]
    for _ in range(3000):
        n = int(rng.integers(1, 700))
        x = rng.normal(size=n) * 10.0 ** rng.uniform(-3, 3)
        if rng.random() < 0.3:
            x = np.round(x, int(rng.integers(0, 2)))  # ties
        if rng.random() < 0.05:
            x[rng.integers(0, n)] = rng.choice([np.inf, -np.inf, np.nan])
        q = float(rng.choice(qs)) if rng.random() < 0.7 else float(rng.uniform(0, 100))
        got, ref = _percentile(x, q), float(np.percentile(x, q))
        assert _same(got, ref), (n, q, got, ref)
        assert got != 0.0 or ref == 0.0
    view = rng.normal(size=(50, 3))[:, 1]  # a strided view, as a buffer column can be
    assert _same(_percentile(view, 1.0), float(np.percentile(view, 1.0)))
    with pytest.raises(IndexError):
        _percentile(np.zeros(0), 1.0)
    with pytest.raises(ValueError):
        _percentile(np.zeros(3), 101.0)


@pytest.mark.parametrize("fs_hz,seed", [(200.0, 0), (500.0, 1), (100.0, 2)])
def test_steps_equal_with_np_percentile(monkeypatch, fs_hz, seed):
    p = SimParams(placement="foot", side="left", fs_hz=fs_hz, duration_s=12.0, seed=seed, acc_noise_ms2=0.2,
                  gyr_noise_dps=1.5)
    _, acc, gyr = Simulator(p).signals()

    def run():
        det = GyroStepDetector(fs_hz=fs_hz)
        out, depths = [], []
        for i in range(0, acc.shape[0], 97):
            b = SampleBlock("s", fs_hz, 0.0, i, acc[i:i + 97], gyr[i:i + 97], frame="body")
            out += det.update(b)
            depths.append(det._ref_depth_dps)
        return [(s.ic_index, s.to_index, s.activity) for s in out + det.flush()], depths

    got = run()
    monkeypatch.setattr(steps, "_percentile", lambda x, q: float(np.percentile(x, q)))
    ref = run()
    assert got == ref and len(got[0]) > 10
