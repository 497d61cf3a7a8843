"""The travel-sign vote is one compiled pass over all strides (``_stride_votes``, issue 9:
~0.8 ms of scipy/numpy calls per foot sensor on a 19-s recording) in the sensor frame of
each stride's first stance, instead of per-stride scipy rotations in a levelled frame (the
code it replaced, copied below verbatim as the reference with scipy's public ``Rotation``
API, which the replaced code's backend calls were proven bit-identical to). The levelling
rotation cancels in exact arithmetic, so every stride's length must agree to rounding,
every stride the same side, and the travel sign - the only thing the estimate uses -
must be the same: on simulated feet (rates, mounts, cadences, both directions of the
axis), on the real PyShoe recordings (whole and the first 5 s, as the warm-up sees them),
and the whole estimate the same bits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from detectors import alignment
from detectors.alignment import (ACTIVE_GYR_DPS, G_MS2, QUIET_GYR_DPS, _still_bounds, _still_runs, _stride_votes,
                                 _travel_sign, estimate_rotation)
from pipeline.simulator import SimParams, Simulator


def _level_acc(q0, steps, acc_ms2):  # the replaced compiled kernel, as plain Python
    n = acc_ms2.shape[0]
    out = np.empty((n, 3))
    q = q0.copy()
    nq = np.empty((3, 3))
    for k in range(n):
        a0, a1, a2 = acc_ms2[k, 0], acc_ms2[k, 1], acc_ms2[k, 2]
        for r in range(3):
            out[k, r] = q[r, 0] * a0 + q[r, 1] * a1 + q[r, 2] * a2
        for r in range(3):
            for c in range(3):
                nq[r, c] = q[r, 0] * steps[k, 0, c] + q[r, 1] * steps[k, 1, c] + q[r, 2] * steps[k, 2, c]
        q[:, :] = nq
    return out


def _replaced_votes(acc_ms2, gyr_dps, still, ml, *, fs_hz):
    """_travel_sign as it was (public Rotation API; its backend calls were the same bits),
    returning the vote and every stride's (length, side) as _stride_votes does."""
    dt = 1.0 / fs_hz
    runs = _still_runs(still)
    vote = 0.0
    votes = np.zeros((max(len(runs) - 1, 0), 2))
    for i, ((a0, a1), (b0, _)) in enumerate(zip(runs, runs[1:])):
        if not 0.2 * fs_hz <= b0 - a1 <= 2.0 * fs_hz:
            continue
        g_sensor = acc_ms2[a0:a1].mean(axis=0)
        g_norm = np.linalg.norm(g_sensor)
        q0 = Rotation.align_vectors([[0.0, 0.0, 1.0]], [g_sensor])[0]
        steps = Rotation.from_rotvec(np.radians(gyr_dps[a1:b0]) * dt).as_matrix()
        acc_w = _level_acc(q0.as_matrix(), steps, np.ascontiguousarray(acc_ms2[a1:b0]))
        acc_w[:, 2] -= g_norm
        v = np.cumsum(acc_w, axis=0) * dt
        v -= np.outer(np.arange(1, v.shape[0] + 1) / v.shape[0], v[-1])
        d = v.sum(axis=0) * dt
        d[2] = 0.0
        length = float(np.linalg.norm(d))
        votes[i, 0] = length
        if length < 0.2:
            continue
        fwd = q0.inv().apply(d / length)
        up = g_sensor / g_norm
        side = float(np.sign(np.cross(fwd, up) @ ml))
        votes[i, 1] = side
        vote += length * side
    return vote, votes


def _inputs(acc, gyr):
    wn = np.linalg.norm(gyr, axis=1)
    still = (wn < QUIET_GYR_DPS) & (np.abs(np.linalg.norm(acc, axis=1) - G_MS2) < 2.0)
    w = gyr[wn > ACTIVE_GYR_DPS]
    ml = np.linalg.eigh(w.T @ w)[1][:, -1]
    return still, ml


def _check(acc, gyr, fs_hz):
    still, ml = _inputs(acc, gyr)
    starts, stops = _still_bounds(still)
    voted = 0
    for m in (ml, -ml):
        ref_vote, ref = _replaced_votes(acc, gyr, still, m, fs_hz=fs_hz)
        vote, got = _stride_votes(acc, gyr, starts, stops, np.ascontiguousarray(m), fs_hz)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got[:, 0], ref[:, 0], rtol=1e-9, atol=1e-12)
        assert np.array_equal(got[:, 1], ref[:, 1])
        assert vote == pytest.approx(ref_vote, rel=1e-9, abs=1e-12)
        assert _travel_sign(acc, gyr, still, m, fs_hz=fs_hz) == float(np.sign(ref_vote))
        voted += int(np.count_nonzero(ref[:, 1]))
    return voted


@pytest.mark.parametrize("fs_hz,cadence,seed", [
    (200.0, 170.0, 0), (500.0, 180.0, 1), (100.0, 110.0, 2), (200.0, 150.0, 3), (400.0, 175.0, 4), (128.0, 165.0, 5)])
@pytest.mark.parametrize("side", ["left", "right"])
def test_stride_votes_equal_the_replaced_code_on_simulated_feet(fs_hz, cadence, seed, side):
    p = SimParams(placement="foot", side=side, fs_hz=fs_hz, duration_s=6.0, cadence_spm=cadence, seed=seed,
                  acc_noise_ms2=0.15, gyr_noise_dps=1.0, mount_euler_deg=(37.0 * seed, -30.0 + 11 * seed, 95.0 - 40 * seed))
    _, acc, gyr = Simulator(p).signals()
    assert _check(acc, gyr, fs_hz) >= 4  # strides really voted (both axis signs counted)


def test_stride_votes_equal_the_replaced_code_on_pyshoe(shared_data_dir):
    import pandas as pd
    from pyshoe import TRIALS, pyshoe_dir

    for trial in TRIALS:
        df = pd.read_csv(pyshoe_dir(shared_data_dir) / f"{trial}.csv")
        acc = df[["ax", "ay", "az"]].to_numpy(dtype=float)
        gyr = np.degrees(df[["gx", "gy", "gz"]].to_numpy(dtype=float))
        for n in (1000, acc.shape[0]):  # 5 s (the estimate's warm-up) and the whole trial
            _check(np.ascontiguousarray(acc[:n]), np.ascontiguousarray(gyr[:n]), 200.0)


def test_small_and_large_gyro_increments_and_edge_cases():
    """Rotation increments on both sides of scipy's 1e-3 rad Taylor switch, a swing that
    is too short or too long (skipped), no still run or just one (no stride)."""
    rng = np.random.default_rng(7)
    fs = 200.0
    for scale in (1e-4, 0.15, 1.0, 8.0, 60.0):  # deg/s: increments ~1e-8 .. ~5e-3 rad
        n = 600
        still = np.zeros(n, bool)
        still[:40] = still[150:190] = still[300:330] = still[560:] = True  # 110, 110, 230-sample swings
        still[330:332] = True  # too short a run: ignored
        acc = rng.normal(size=(n, 3)) * 3.0 + np.array([0.0, 0.0, G_MS2])
        gyr = rng.normal(size=(n, 3)) * scale * 40.0
        acc[still] = rng.normal(size=(int(still.sum()), 3)) * 0.05 + np.array([1.0, -2.0, 9.5])
        for m in (np.array([0.0, 1.0, 0.0]), np.array([0.6, 0.0, 0.8])):
            starts, stops = _still_bounds(still)
            ref_vote, ref = _replaced_votes(acc, gyr, still, m, fs_hz=fs)
            vote, got = _stride_votes(acc, gyr, starts, stops, m, fs)
            np.testing.assert_allclose(got[:, 0], ref[:, 0], rtol=1e-9, atol=1e-12)
            assert np.array_equal(got[:, 1], ref[:, 1]) and vote == pytest.approx(ref_vote, rel=1e-9)
    for still in (np.zeros(50, bool), np.r_[np.ones(10, bool), np.zeros(40, bool)]):
        starts, stops = _still_bounds(still)
        vote, got = _stride_votes(np.zeros((50, 3)), np.zeros((50, 3)), starts, stops, np.ones(3) / 3 ** 0.5, fs)
        assert vote == 0.0 and got.shape == (max(len(starts) - 1, 0), 2)


def test_still_bounds_are_still_runs():
    rng = np.random.default_rng(3)
    for _ in range(300):
        m = rng.random(int(rng.integers(0, 60))) < rng.random()
        starts, stops = _still_bounds(m)
        assert starts.dtype == np.int64 and list(zip(starts.tolist(), stops.tolist())) == _still_runs(m)


def test_estimate_same_bits_with_the_replaced_vote(monkeypatch):
    p = SimParams(placement="foot", side="right", fs_hz=200.0, duration_s=6.0, seed=2,
                  mount_euler_deg=(10.0, 50.0, -120.0))
    _, acc, gyr = Simulator(p).signals()
    got = estimate_rotation(acc, gyr, placement="foot", fs_hz=200.0)
    monkeypatch.setattr(alignment, "_travel_sign",
                        lambda a, g, s, m, *, fs_hz: float(np.sign(_replaced_votes(a, g, s, m, fs_hz=fs_hz)[0])))
    ref = estimate_rotation(acc, gyr, placement="foot", fs_hz=200.0)
    assert got[1] is ref[1] and np.array_equal(got[0], ref[0])


def test_warm_up_compiles_the_vote():
    alignment.warm_up()
    assert len(_stride_votes.signatures) >= 1
