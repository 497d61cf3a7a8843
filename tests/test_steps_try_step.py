"""A swing-start candidate is tried in one compiled call (``steps_kernels.try_step_at``,
issue 9: three kernels and ~30 Python operations per candidate, ~25 us each on short
recordings). The Python it replaced is kept below verbatim (``_replaced_try_step``) and
must give the same steps, bit for bit (IC/TO indices, activity, windows, the detector's
running push-off depth), on simulated feet and shanks (rates, cadences, strike angles,
noise, variability, gaps in the stream, block splits), on the heel/forefoot fixtures and
on the real PyShoe recordings; and the kernel's Python-slice handling on out-of-range
bounds equals Python's ``slice.indices``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from detectors import steps
from detectors.steps import (FIRST_CONTACT_FRACTION, G_MS2, LATE_IMPACT_RATIO, ONSET_FRACTION, PUSH_RELATIVE_DEPTH,
                             GyroStepDetector, _median, impact_onset)
from detectors.steps_kernels import max_rise, push_off, try_step_at
from firmware_bridge.recording import Recording
from pipeline.engine import Engine
from pipeline.records import Gap, SampleBlock, SensorInfo, StepRecord
from pipeline.simulator import SimParams, Simulator

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _replaced_try_step(self, c):
    """GyroStepDetector._try_step before try_step_at (its _jerk_ok inlined)."""
    b = self._buf
    fs = self.fs_hz
    wf = b.column("wf")
    w = b.column("w")
    ws = max(self._win_start, b.start, c - int((self.max_stride_s + self.max_contact_s) * fs))
    i_c, i_ws = c - b.start, ws - b.start
    thr = max(self.push_threshold_dps, PUSH_RELATIVE_DEPTH * self._ref_depth_dps)
    k_to, frac, k_start, ms = push_off(w, wf, i_ws, i_c, thr, 0.5 * thr, self._delay_n)
    if k_to < 0:
        return None
    to = (b.start + k_to) + frac
    if wf[ms] < max(3.0 * self.swing_threshold_dps, 0.3 * self._ref_depth_dps):
        ms = i_ws
    ic_hi = int(math.floor(to - self.min_contact_s * fs))
    ic_lo = max(b.start + ms, int(math.ceil(to - self.max_contact_s * fs)))
    up = b.acc[:, 2]
    found = impact_onset(up, ic_lo - b.start, ic_hi - b.start, rise_n=self._rise_n)
    if found is None or not (found[2] / (self._rise_n / self.fs_hz) / G_MS2 >= self.impact_jerk_min_gps):
        return None
    l0, l1, _ = slice(ic_hi - b.start, i_c + 1).indices(up.shape[0])
    if l1 - l0 > self._rise_n and max_rise(up, l0, l1, self._rise_n) > LATE_IMPACT_RATIO * found[2]:
        return None
    step = self._make_step((b.start + found[0]) + found[1], to)
    self._win_start = c
    self._depths = (self._depths + [float(-w[k_to])])[-8:]
    self._ref_depth_dps = _median(self._depths)
    return step


def _key(records):
    out = []
    for r in records:
        if isinstance(r, StepRecord):
            s = r.step
            out.append((s.sensor_id, s.segment, s.ic_index, s.to_index, s.ic_s, s.to_s, s.prev_ic_s, s.activity,
                        s.window_start_index, s.acc_ms2.tobytes(), s.gyr_dps.tobytes()))
    return out


def _engine_run(infos, blocks):
    eng = Engine(infos)
    out = []
    depths = []
    for b in blocks:
        out += eng.update(b)
        depths.append(tuple(getattr(ch._steps, "_ref_depth_dps", None) for ch in eng._chains.values()))
    out += eng.flush()
    return _key(out), depths


def _both(monkeypatch, infos, blocks):
    blocks = list(blocks)
    got = _engine_run(infos, blocks)
    with monkeypatch.context() as m:
        m.setattr(GyroStepDetector, "_try_step", _replaced_try_step)
        ref = _engine_run(infos, blocks)
    assert got == ref
    return len(got[0])


def _sim_blocks(p: SimParams, block_n: int, gap_at: int | None = None):
    """Blocks of a simulated run; with ``gap_at``, the samples from there are a new segment
    after a Gap (the detectors reset and start again)."""
    _, acc, gyr = Simulator(p).signals()
    sid = p.sensor_id or "s"
    cuts = [0, acc.shape[0]] if gap_at is None else [0, gap_at, acc.shape[0]]
    for seg, (a, z) in enumerate(zip(cuts, cuts[1:])):
        if seg:
            yield Gap(sid, (a - 1) / p.fs_hz, a / p.fs_hz)
        for i in range(a, z, block_n):
            j = min(i + block_n, z)
            yield SampleBlock(sid, p.fs_hz, a / p.fs_hz, i - a, acc[i:j], gyr[i:j], segment=seg)


@pytest.mark.parametrize("placement,fs_hz,cadence,strike,seed", [
    ("foot", 200.0, 170.0, 12.0, 0), ("foot", 500.0, 180.0, -8.0, 1), ("foot", 100.0, 150.0, 4.0, 2),
    ("foot", 400.0, 165.0, -14.0, 3), ("shank", 200.0, 170.0, 10.0, 4), ("shank", 500.0, 160.0, -5.0, 5)])
@pytest.mark.parametrize("block_n", [19, 1000, 100000])
def test_same_steps_as_the_replaced_code_on_simulated_runs(monkeypatch, placement, fs_hz, cadence, strike, seed,
                                                           block_n):
    p = SimParams(placement=placement, side="right", sensor_id="s", fs_hz=fs_hz, duration_s=20.0,
                  cadence_spm=cadence, strike_angle_deg=strike, seed=seed, acc_noise_ms2=0.3, gyr_noise_dps=2.0,
                  variability=1.0, mount_euler_deg=(15.0 * seed, -20.0, 60.0 * seed), stand_s=1.0)
    n = _both(monkeypatch, [SensorInfo("s", placement, "right")],
              _sim_blocks(p, block_n, gap_at=int(9.3 * fs_hz) if seed % 2 else None))
    assert n > 20


@pytest.mark.parametrize("kind", ["heel", "forefoot"])
def test_same_steps_as_the_replaced_code_on_fixtures(monkeypatch, kind):
    for block_s in (0.04, 10.0):
        recs = [Recording(p, block_s=block_s) for p in sorted((FIXTURES / kind).glob(f"{kind}_*_foot.csv"))]
        items = [it for r in recs for it in r.items()]
        items.sort(key=lambda it: (it.t0_s if isinstance(it, SampleBlock) else 0.0))
        assert _both(monkeypatch, [r.info for r in recs], items) > 20


def test_same_steps_as_the_replaced_code_on_pyshoe(monkeypatch, tmp_path, shared_data_dir):
    from pyshoe import TRIALS, pyshoe_recording

    for trial in TRIALS:
        for block_s in (0.038, 10.0):
            rec = Recording(pyshoe_recording(trial, tmp_path, shared_data_dir), block_s=block_s)
            assert _both(monkeypatch, [rec.info], list(rec.items())) >= 15


def test_slice_bounds_like_python():
    """The late-impact check's window, also with bounds before the buffer or past its end,
    against the Python expression, on a kernel call whose other inputs give a step."""
    fs = 200.0
    p = SimParams(placement="foot", fs_hz=fs, duration_s=4.0, seed=1)
    _, acc, gyr = Simulator(p).signals()
    det = GyroStepDetector(fs_hz=fs)
    w = np.ascontiguousarray(-gyr[:, 1])
    up = acc[:, 2]
    rng = np.random.default_rng(0)
    seen = 0
    for _ in range(400):
        i_c = int(rng.integers(40, w.size))
        i_ws = int(rng.integers(0, i_c))
        start = int(rng.integers(0, 50))
        min_c = float(rng.choice([det.min_contact_s * fs, 2000.0, -3000.0]))
        args = (w, w, up, start, i_ws, i_c, 100.0, 50.0, det._delay_n, 90.0, min_c, det.max_contact_s * fs,
                det._rise_n, det._back_n, FIRST_CONTACT_FRACTION, ONSET_FRACTION, det._rise_n / fs, G_MS2, 1.0,
                LATE_IMPACT_RATIO)
        k_to, to, n, frac = try_step_at(*args)
        if k_to < 0:
            continue
        ic_hi = int(math.floor(to - min_c))
        ms = push_off(w, w, i_ws, i_c, 100.0, 50.0, det._delay_n)[3]
        ms = ms if w[ms] >= 90.0 else i_ws
        found = impact_onset(up, max(start + ms, int(math.ceil(to - det.max_contact_s * fs))) - start,
                             ic_hi - start, rise_n=det._rise_n)
        if found is None or not found[2] / (det._rise_n / fs) / G_MS2 >= 1.0:
            assert n == -1
            continue
        l0, l1, _ = slice(ic_hi - start, i_c + 1).indices(up.shape[0])
        late = l1 - l0 > det._rise_n and max_rise(up, l0, l1, det._rise_n) > LATE_IMPACT_RATIO * found[2]
        assert (n, frac) == ((-1, 0.0) if late else (found[0], found[1]))
        seen += 1
    assert seen > 20
