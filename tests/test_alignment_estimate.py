"""The alignment estimate's per-run fixed costs were cut (issue 9: short recordings) without
changing its result: the still runs are found by edges instead of a Python loop over the
samples, the low-pass design is cached per rate, the low-passed sagittal rate is only
computed when the travel sign is undecided, and 3-vector cross products skip np.cross's
general-shape handling. Checked against the code it replaced (copied
below verbatim as the reference), bit for bit, on simulated foot/shank runs (acc + gyro),
including an estimate that falls through to the swing sign."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from detectors import alignment
from detectors.alignment import (ACTIVE_GYR_DPS, G_MS2, QUIET_GYR_DPS, _cross3, _lowpass_sos, _still_runs,
                                 _swing_sign, _travel_sign, estimate_rotation)  # noqa: F401
from pipeline.simulator import SimParams, Simulator


def _loop_runs(still):  # the loop _still_runs replaced
    runs = []
    i, n = 0, still.size
    while i < n:
        if still[i]:
            j = i
            while j < n and still[j]:
                j += 1
            if j - i >= 3:
                runs.append((i, j))
            i = j
        else:
            i += 1
    return runs


def _reference_travel_sign(acc_ms2, gyr_dps, still, ml, *, fs_hz):
    """_travel_sign as it was (Python loop for the still runs, np.cross; its compiled
    _level_acc, since replaced, as plain Python from test_alignment_stride_votes)."""
    from test_alignment_stride_votes import _level_acc

    from scipy.spatial.transform import Rotation

    dt = 1.0 / fs_hz
    runs = _loop_runs(still)
    vote = 0.0
    for (a0, a1), (b0, _) in zip(runs, runs[1:]):
        if not 0.2 * fs_hz <= b0 - a1 <= 2.0 * fs_hz:
            continue
        g_sensor = acc_ms2[a0:a1].mean(axis=0)
        r0, _ = Rotation.align_vectors([[0.0, 0.0, 1.0]], [g_sensor])
        steps = Rotation.from_rotvec(np.radians(gyr_dps[a1:b0]) * dt).as_matrix()
        acc_w = _level_acc(r0.as_matrix(), steps, np.ascontiguousarray(acc_ms2[a1:b0]))
        acc_w[:, 2] -= np.linalg.norm(g_sensor)
        v = np.cumsum(acc_w, axis=0) * dt
        v -= np.outer(np.arange(1, v.shape[0] + 1) / v.shape[0], v[-1])
        d = v.sum(axis=0) * dt
        d[2] = 0.0
        length = float(np.linalg.norm(d))
        if length < 0.2:
            continue
        fwd = r0.inv().apply(d / length)
        up = g_sensor / np.linalg.norm(g_sensor)
        vote += length * float(np.sign(np.cross(fwd, up) @ ml))
    return float(np.sign(vote))


def _reference_estimate(acc_ms2, gyr_dps, *, placement, fs_hz, travel=_reference_travel_sign):
    """estimate_rotation as it was (with gyro): sag_lp always computed, butter designed per call."""
    wn = np.linalg.norm(gyr_dps, axis=1)
    active = wn > ACTIVE_GYR_DPS
    w = gyr_dps[active]
    evals, evecs = np.linalg.eigh(w.T @ w)
    ml = evecs[:, -1]
    quiet = wn < QUIET_GYR_DPS
    acc_n = np.linalg.norm(acc_ms2, axis=1)
    still = quiet & (np.abs(acc_n - G_MS2) < 2.0)
    if placement == "foot" and still.sum() >= max(5, int(0.05 * fs_hz)):
        up = acc_ms2[still].mean(axis=0)
    else:
        up = acc_ms2.mean(axis=0)
    up = up - (up @ ml) * ml
    up /= np.linalg.norm(up)
    sag = gyr_dps @ ml
    sos = signal.butter(2, min(8.0, 0.4 * fs_hz) / (fs_hz / 2), output="sos")
    sag_lp = signal.sosfiltfilt(sos, sag)
    sign = travel(acc_ms2, gyr_dps, still, ml, fs_hz=fs_hz) if placement == "foot" else 0.0
    if sign == 0.0:
        sign = _swing_sign(sag_lp, acc_ms2 @ up, fs_hz=fs_hz)
    right = sign * ml
    fwd = np.cross(up, right)
    return np.vstack([fwd, -right, up]), True


@pytest.mark.parametrize("seed", range(4))
def test_still_runs_equal_the_loop(seed):
    rng = np.random.default_rng(seed)
    for _ in range(500):
        m = rng.random(int(rng.integers(0, 80))) < rng.random()
        assert _still_runs(m) == _loop_runs(m)
    assert _still_runs(np.ones(5, bool)) == [(0, 5)] and _still_runs(np.zeros(0, bool)) == []


def _sim(placement, side, fs_hz, cadence, seed):
    p = SimParams(placement=placement, side=side, fs_hz=fs_hz, duration_s=6.0, cadence_spm=cadence, seed=seed,
                  acc_noise_ms2=0.15, gyr_noise_dps=1.0, mount_euler_deg=(20.0 * seed, -30.0, 95.0 - 40 * seed))
    _, acc, gyr = Simulator(p).signals()
    return acc, gyr


@pytest.mark.parametrize("placement,side,fs_hz,cadence,seed", [
    ("foot", "left", 200.0, 170.0, 0), ("foot", "right", 500.0, 180.0, 1), ("foot", "left", 100.0, 110.0, 2),
    ("shank", "right", 200.0, 170.0, 3), ("shank", "left", 500.0, 165.0, 1)])
def test_estimate_is_bit_identical_to_the_code_it_replaced(placement, side, fs_hz, cadence, seed):
    acc, gyr = _sim(placement, side, fs_hz, cadence, seed)
    for n in (acc.shape[0] // 2, acc.shape[0]):
        got = estimate_rotation(acc[:n], gyr[:n], placement=placement, fs_hz=fs_hz)
        ref = _reference_estimate(acc[:n], gyr[:n], placement=placement, fs_hz=fs_hz)
        assert got[1] is ref[1] and np.array_equal(got[0], ref[0])


def test_undecided_travel_sign_still_uses_the_swing_sign(monkeypatch):
    """A foot whose strides give no travel direction falls back to the swing sign: the
    low-passed rate (now computed only then) gives the same rotation as before."""
    acc, gyr = _sim("foot", "right", 200.0, 170.0, 0)
    monkeypatch.setattr(alignment, "_travel_sign", lambda *a, **k: 0.0)
    got = estimate_rotation(acc, gyr, placement="foot", fs_hz=200.0)
    ref = _reference_estimate(acc, gyr, placement="foot", fs_hz=200.0, travel=lambda *a, **k: 0.0)
    assert np.array_equal(got[0], ref[0])


def test_lowpass_design_is_cached_and_not_shared_mutably():
    a = _lowpass_sos(200.0)
    assert a is _lowpass_sos(200.0)  # designed once per rate
    assert np.array_equal(a, signal.butter(2, 8.0 / 100.0, output="sos"))
    assert np.array_equal(_lowpass_sos(10.0), signal.butter(2, 4.0 / 5.0, output="sos"))  # 0.4 fs below 8 Hz


@pytest.mark.parametrize("seed", range(3))
def test_cross3_is_np_cross_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    for _ in range(20_000):
        a = rng.normal(size=3) * 10.0 ** rng.uniform(-8, 8, 3)
        b = rng.normal(size=3) * 10.0 ** rng.uniform(-8, 8, 3)
        assert np.array_equal(_cross3(a, b), np.cross(a, b))
    e = np.eye(3)
    assert np.array_equal(_cross3(e[0], e[1]), np.cross(e[0], e[1]))


def test_accelerometer_only_estimate_unchanged():
    acc, _ = _sim("shank", "left", 200.0, 170.0, 2)
    up = acc.mean(axis=0)
    up /= np.linalg.norm(up)
    helper = np.eye(3)[np.argmin(np.abs(up))]
    fwd = np.cross(helper, up)
    fwd /= np.linalg.norm(fwd)
    ref = np.vstack([fwd, np.cross(up, fwd), up])
    got, heading = estimate_rotation(acc, None, placement="shank", fs_hz=200.0)
    assert heading is False and np.array_equal(got, ref)


@pytest.mark.parametrize("placement,side,fs_hz,cadence,seed", [
    ("foot", "left", 200.0, 170.0, 0), ("foot", "right", 500.0, 180.0, 1), ("foot", "left", 100.0, 110.0, 2)])
def test_travel_sign_equals_the_replaced_code(placement, side, fs_hz, cadence, seed):
    acc, gyr = _sim(placement, side, fs_hz, cadence, seed)
    wn = np.linalg.norm(gyr, axis=1)
    still = (wn < QUIET_GYR_DPS) & (np.abs(np.linalg.norm(acc, axis=1) - G_MS2) < 2.0)
    w = gyr[wn > ACTIVE_GYR_DPS]
    ml = np.linalg.eigh(w.T @ w)[1][:, -1]
    for m in (ml, -ml):
        got = _travel_sign(acc, gyr, still, m, fs_hz=fs_hz)
        assert got != 0.0 and got == _reference_travel_sign(acc, gyr, still, m, fs_hz=fs_hz)
