"""The alignment estimate's per-sample masks come from one compiled pass
(``detectors.alignment._motion_masks``, issue 9: ~10 numpy calls, ~60 us warm and ~270 us
after a GC per foot sensor). Checked bit for bit against the numpy expressions it replaced
(norms of gyro and acc rows, the active and still masks, the number of still samples and
their mean), on random data around the thresholds, with NaN/inf and -0.0, and on simulated
foot and shank runs; the whole estimate against the replaced code is in
tests/test_alignment_estimate.py."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import alignment
from detectors.alignment import ACTIVE_GYR_DPS, G_MS2, QUIET_GYR_DPS, _motion_masks, estimate_rotation
from pipeline.simulator import SimParams, Simulator


def _replaced(acc, gyr):
    wn = np.linalg.norm(gyr, axis=1)
    active = wn > ACTIVE_GYR_DPS
    still = (wn < QUIET_GYR_DPS) & (np.abs(np.linalg.norm(acc, axis=1) - G_MS2) < 2.0)
    return active, still, int(still.sum()), (acc[still].mean(axis=0) if still.any() else None)


def _check(acc, gyr):
    active, still, n, s = _motion_masks(acc, gyr, ACTIVE_GYR_DPS, QUIET_GYR_DPS, G_MS2, 2.0)
    r_active, r_still, r_n, r_mean = _replaced(acc, gyr)
    assert np.array_equal(active, r_active) and np.array_equal(still, r_still) and n == r_n
    if n:
        mean = s / n
        assert np.array_equal(mean, r_mean) and np.array_equal(np.signbit(mean), np.signbit(r_mean))


@pytest.mark.parametrize("seed", range(5))
def test_masks_and_mean_equal_numpy_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n = int(rng.integers(1, 3000))
        gyr = rng.normal(size=(n, 3)) * rng.choice([10.0, 30.0, 80.0, 300.0])
        acc = rng.normal(size=(n, 3)) * rng.choice([0.5, 3.0, 6.0]) + np.array([0.0, 0.0, G_MS2])
        if rng.random() < 0.3:  # exactly on the thresholds
            k = rng.integers(0, n, size=3)
            gyr[k[0]] = [ACTIVE_GYR_DPS, 0.0, 0.0]
            gyr[k[1]] = [0.0, -QUIET_GYR_DPS, 0.0]
            acc[k[2]] = [0.0, 0.0, G_MS2 + 2.0]
        if rng.random() < 0.2:
            gyr[rng.integers(0, n)] = [np.nan, 1.0, 1.0]
            acc[rng.integers(0, n)] = [np.inf, 0.0, 0.0]
        if rng.random() < 0.2:
            acc[:, 0] = -0.0
        _check(acc, gyr)


@pytest.mark.parametrize("placement,fs_hz,seed", [("foot", 200.0, 0), ("foot", 500.0, 1), ("shank", 100.0, 2)])
def test_masks_on_simulated_runs_and_estimate_unchanged(monkeypatch, placement, fs_hz, seed):
    p = SimParams(placement=placement, fs_hz=fs_hz, duration_s=6.0, seed=seed, acc_noise_ms2=0.15, gyr_noise_dps=1.0,
                  mount_euler_deg=(30.0 * seed, 10.0, -70.0), stand_s=1.0)
    _, acc, gyr = Simulator(p).signals()
    _check(acc, gyr)
    got = estimate_rotation(acc, gyr, placement=placement, fs_hz=fs_hz)

    def numpy_masks(acc_ms2, gyr_dps, *_):  # the replaced expressions behind the same interface
        a, s, n, mean = _replaced(acc_ms2, gyr_dps)
        return a, s, n, (mean * n if n else np.zeros(3))
    monkeypatch.setattr(alignment, "_motion_masks", numpy_masks)
    ref = estimate_rotation(acc, gyr, placement=placement, fs_hz=fs_hz)
    assert got[1] is ref[1] and np.array_equal(got[0], ref[0])


def test_warm_up_compiles_the_masks():
    alignment.warm_up()
    assert len(_motion_masks.signatures) >= 1
