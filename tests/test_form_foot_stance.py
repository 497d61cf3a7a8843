"""A foot step's impact, strike and pronation from one compiled pass (issue 9:
``detectors.form.foot_stance``, shared by the three metric groups) must give exactly what the
replaced code gave: the three functions and groups before the change are kept below verbatim,
and the metrics of whole engine runs are compared bit for bit (repr of every Metric) with
the old groups swapped back into the registry - simulated feet (rates below and above
impact_min_fs_hz, clipping with and without a known range, noise, variability, walking,
gaps, block sizes), the heel/forefoot fixtures and the PyShoe trials - and step by step
against the old functions for every clipping mode (range known or not, rotation or not,
windows too short for a flat top). Also: with no metric group enabled (events only) the
chain neither buffers samples nor looks for strides, and the records are as before."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import pipeline.metrics as M
from detectors.form import Values, nan_all
from detectors.form import impact as _impact
from detectors.form import pronation as _pronation
from detectors.form import stance_kernels as _pk
from detectors.form import strike as _strike
from detectors.form.foot_stance import foot_stance
from detectors.form.orientation import Attitude
from pipeline.config import load_config
from pipeline.engine import Engine
from pipeline.records import Gap, SampleBlock, SensorInfo, StepRecord
from pipeline.simulator import SimParams, Simulator

ROOT = Path(__file__).resolve().parent.parent


# ---- the replaced code, verbatim ------------------------------------------------------------

def old_clipped(step, acc_range_g, *, i0, i1, clip_fraction, sensor_rotation=None) -> float:
    limit = math.nan if acc_range_g is None else clip_fraction * acc_range_g * step.gravity_ms2
    if acc_range_g is not None and sensor_rotation is None:
        return 1.0 if _pk.max_norm(step.acc_ms2, i0, i1) >= limit else 0.0
    if sensor_rotation is None or i1 - i0 < _impact.FLAT_TOP_SAMPLES:
        return math.nan
    # each sensor axis against the range (exact), else the flat tops
    return 1.0 if _pk.clipped_in_sensor_frame(step.acc_ms2, np.asarray(sensor_rotation, dtype=float), i0, i1, limit,
                                              _impact.FLAT_TOP_MIN_G * step.gravity_ms2,
                                              _impact.FLAT_TOP_SAMPLES) else 0.0


def old_impact(step, att, reason, *, placement, acc_range_g, axis_body=None, window_s=0.05, clip_fraction=0.98,
               sensor_rotation=None, travel_heading_rad=math.nan) -> Values:
    names = _impact.FOOT_NAMES if placement == "foot" else _impact.SHANK_NAMES
    g = step.gravity_ms2
    ic = step.rel(step.ic_index)
    i0 = max(int(math.floor(ic)), 0)
    i1 = min(int(math.floor(ic + window_s * step.fs_hz)) + 1, step.acc_ms2.shape[0])
    clip = old_clipped(step, acc_range_g, i0=i0, i1=i1, clip_fraction=clip_fraction, sensor_rotation=sensor_rotation)
    clip_v = (clip, "" if math.isfinite(clip) else "acc_range_unknown")
    if clip != 1.0 and att is None and placement == "shank" and axis_body is not None and step.gyr_dps is None:
        return _impact._axial_without_gyro(step, axis_body, i0, i1, ic, clip_v)
    if clip == 1.0 or att is None:
        out = nan_all(names, "clipped" if clip == 1.0 else reason)
        out["impact_clipped"] = clip_v
        return out
    h = travel_heading_rad if math.isfinite(travel_heading_rad) else 0.0
    mode = 0 if placement == "foot" else (2 if axis_body is None else 1)
    axis = _impact._NO_AXIS if axis_body is None else np.asarray(axis_body, dtype=float)
    kp, peak, at_ic, res_peak, brake = _pk.impact_peaks(att.matrices, step.acc_ms2, g, i0, i1, ic, math.cos(h),
                                                        math.sin(h), axis, mode)
    out: Values = {}
    if placement == "foot":
        out["impact_g"] = (peak / g, "")
    else:
        out["pta_g"] = (peak / g, "") if axis_body is not None else (math.nan, "no_standing_calibration")
        out["pta_resultant_g"] = (res_peak / g, "")
    dt = (kp - ic) / step.fs_hz
    rate = (peak - at_ic) / g / dt if dt > 0 else math.nan
    out["impact_rate_gps"] = (rate, "" if math.isfinite(rate) else "no_rise")
    out["braking_g"] = (max(brake, 0.0) / g, "")
    out["impact_clipped"] = clip_v
    return out


def old_strike(step, att, reason, *, rearfoot_min_deg=8.0, forefoot_max_deg=-1.6) -> Values:
    if att is None:
        return nan_all(_strike.NAMES, reason)
    angle = att.pitch_at_deg(step.rel(step.ic_index)) - att.pitch_at_deg(att.anchor)
    return {"strike_angle_deg": (angle, ""),
            "strike_pattern_code": (_strike.pattern_code(angle, rearfoot_min_deg=rearfoot_min_deg,
                                                         forefoot_max_deg=forefoot_max_deg), "")}


def old_pronation(step, att, reason, *, side) -> Values:
    if att is None:
        return nan_all(_pronation.NAMES, reason)
    ic, to = step.rel(step.ic_index), step.rel(step.to_index)
    excursion, rate, n_rates = _pk.eversion(att.matrices, 1.0 if side == "left" else -1.0, ic, int(math.ceil(ic)),
                                            int(math.floor(to)), 1.0 / step.fs_hz)
    return {"pronation_excursion_deg": (excursion, ""),
            "pronation_velocity_dps": (rate, "" if n_rates else "no_eversion")}


def old_impact_group(ctx) -> Values:
    p = ctx.params
    names = _impact.FOOT_NAMES if ctx.sensor.placement == "foot" else _impact.SHANK_NAMES
    if ctx.step.fs_hz < p["impact_min_fs_hz"]:
        return nan_all(names, "fs_too_low")
    att, why = ctx.attitude
    return old_impact(ctx.step, att, why, placement=ctx.sensor.placement, acc_range_g=ctx.sensor.acc_range_g,
                      axis_body=ctx.shank_axis_body, window_s=p["impact_window_s"],
                      clip_fraction=p["clip_fraction"], sensor_rotation=ctx.sensor_rotation,
                      travel_heading_rad=ctx.travel_heading_rad)


def old_strike_group(ctx) -> Values:
    if ctx.sensor.placement != "foot":
        return {}
    att, why = ctx.foot_attitude
    p = ctx.params
    return old_strike(ctx.step, att, why, rearfoot_min_deg=p["rearfoot_min_deg"],
                      forefoot_max_deg=p["forefoot_max_deg"])


def old_pronation_group(ctx) -> Values:
    if ctx.sensor.placement != "foot":
        return {}
    att, why = ctx.foot_attitude
    return old_pronation(ctx.step, att, why, side=ctx.sensor.side)


OLD_GROUPS = {"impact": old_impact_group, "strike": old_strike_group, "pronation": old_pronation_group}


# ---- helpers ---------------------------------------------------------------------------------

def _items(p: SimParams, sid: str, block_n: int, gap_at: int | None = None):
    """Blocks of a simulated recording; with ``gap_at``, a Gap there and a new segment (its
    indices from 0) from the block after it."""
    sim = Simulator(p)
    _, acc, gyr = sim.signals()
    if not p.with_gyro:
        gyr = None
    seg, seg_start = 0, 0
    for i in range(0, acc.shape[0], block_n):
        if gap_at is not None and seg == 0 and i >= gap_at:
            yield Gap(sensor_id=sid, last_t_s=(i - 1) / p.fs_hz, next_t_s=i / p.fs_hz + 0.5)
            seg, seg_start = 1, i
        yield SampleBlock(sid, p.fs_hz, (seg_start / p.fs_hz + 0.5 * seg), i - seg_start, acc[i:i + block_n],
                          None if gyr is None else gyr[i:i + block_n], segment=seg)


def _run_engine(sensors, items, config=None):
    eng = Engine(sensors, config=config or load_config())
    out = []
    for it in items:
        out += eng.update(it)
    out += eng.flush()
    return out


def _metrics_repr(records):
    return [(r.sensor.sensor_id, r.step.ic_index, repr(r.metrics)) for r in records if isinstance(r, StepRecord)]


def _both(monkeypatch, run):
    new = run()
    with monkeypatch.context() as mp:
        for name, fn in OLD_GROUPS.items():
            mp.setitem(M.METRICS, name, fn)
        old = run()
    return new, old


_SIMS = [
    dict(),
    dict(fs_hz=100.0),  # below impact_min_fs_hz: impact NaN, strike and pronation measured
    dict(fs_hz=200.0, acc_range_g=8.0, impact_g=9.0),  # clipped against a known range
    dict(fs_hz=400.0, acc_range_g=16.0),
    dict(fs_hz=500.0, acc_noise_ms2=0.3, gyr_noise_dps=2.0, variability=1.0, seed=4),
    dict(fs_hz=250.0, strike_angle_deg=-6.0, pronation_deg=14.0, side="left", seed=2),
    dict(fs_hz=208.0, cadence_spm=120.0, speed_mps=1.4, contact_ms=600.0, impact_g=2.0),  # walking
    dict(fs_hz=500.0, mount_euler_deg=(20.0, -35.0, 60.0), variability=0.5, seed=7),
    dict(fs_hz=300.0, with_gyro=False),
]


@pytest.mark.parametrize("kw", _SIMS)
@pytest.mark.parametrize("block_n", [37, 1000])
def test_engine_metrics_as_before_sim(monkeypatch, kw, block_n):
    kw = dict(kw)
    side = kw.pop("side", "right")
    p = SimParams(placement="foot", side=side, sensor_id="f", duration_s=12.0, **kw)
    sensor = SensorInfo("f", "foot", side, acc_range_g=p.acc_range_g)
    new, old = _both(monkeypatch, lambda: _run_engine([sensor], _items(p, "f", block_n, gap_at=1200)))
    assert len(new) > 10
    assert _metrics_repr(new) == _metrics_repr(old)


def test_engine_metrics_as_before_two_feet_and_shank(monkeypatch):
    ps = [SimParams(placement="foot", side="left", sensor_id="l", fs_hz=200.0, duration_s=10.0, seed=1),
          SimParams(placement="foot", side="right", sensor_id="r", fs_hz=200.0, duration_s=10.0, seed=2),
          SimParams(placement="shank", side="right", sensor_id="s", fs_hz=200.0, duration_s=10.0, seed=3)]
    sensors = [SensorInfo(p.sensor_id, p.placement, p.side) for p in ps]

    def run():
        items = [it for p in ps for it in _items(p, p.sensor_id, 200)]
        items.sort(key=lambda b: (b.first_index, b.sensor_id))
        return _run_engine(sensors, items)

    new, old = _both(monkeypatch, run)
    assert _metrics_repr(new) == _metrics_repr(old)


def _replay(paths):
    from pipeline.cmd_replay import replay_in_memory

    return replay_in_memory([Path(p) for p in paths])[0]


@pytest.mark.parametrize("kind", ["heel", "forefoot", "demo"])
def test_fixtures_as_before(monkeypatch, kind):
    paths = sorted((ROOT / "fixtures" / kind).glob(f"{kind}_*.csv"))
    paths = [p for p in paths if not p.name.endswith("_truth.csv")]
    new, old = _both(monkeypatch, lambda: _replay(paths))
    assert len(new) > 10 and _metrics_repr(new) == _metrics_repr(old)


def test_pyshoe_as_before(monkeypatch, tmp_path, shared_data_dir):
    sys.path.insert(0, str(ROOT / "tests"))
    from pyshoe import TRIALS, pyshoe_recording

    for trial in TRIALS:
        path = pyshoe_recording(trial, tmp_path, shared_data_dir)
        new, old = _both(monkeypatch, lambda: _replay([path]))
        assert len(new) > 10 and _metrics_repr(new) == _metrics_repr(old)


def _steps_with_attitudes():
    """(step, attitude) of simulated foot steps, through the real chain's stride samples."""
    out = []
    for kw in ({}, dict(fs_hz=200.0, acc_noise_ms2=0.2, variability=1.0), dict(fs_hz=120.0, seed=3)):
        p = SimParams(placement="foot", side="right", sensor_id="f", duration_s=6.0, **kw)
        got = []
        orig = M.MetricsChain.update

        def spy(self, step, got=got, orig=orig):
            stride = self._buffer.stride(step, max_stride_s=self.params["max_stride_s"])
            ctx = M.StepContext(step=step, sensor=self.sensor, params=self.params, stride=stride)
            att = ctx.foot_attitude[0]
            if att is not None:
                got.append((step, att))
            return orig(self, step)

        M.MetricsChain.update = spy
        try:
            _run_engine([SensorInfo("f", "foot", "right")], _items(p, "f", 500))
        finally:
            M.MetricsChain.update = orig
        out += got
    assert len(out) > 20
    return out


@pytest.mark.parametrize("acc_range_g", [None, 2.0, 4.0, 16.0])
@pytest.mark.parametrize("rotation", ["none", "eye", "random", "transposed"])
@pytest.mark.parametrize("window_s", [0.05, 0.004, 0.0])
def test_step_by_step_as_the_three_functions(acc_range_g, rotation, window_s):
    rng = np.random.default_rng(5)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot = {"none": None, "eye": np.eye(3), "random": q, "transposed": q.T}[rotation]
    for step, att in _steps_with_attitudes():
        for side in ("left", "right"):
            for heading in (math.nan, 0.4, -2.0):
                for want in (True, False):
                    imp, stk, pro = foot_stance(step, att, want_impact=want, acc_range_g=acc_range_g,
                                                window_s=window_s, clip_fraction=0.98, sensor_rotation=rot,
                                                travel_heading_rad=heading, side=side, rearfoot_min_deg=8.0,
                                                forefoot_max_deg=-1.6)
                    if want:
                        old = old_impact(step, att, "", placement="foot", acc_range_g=acc_range_g,
                                         window_s=window_s, clip_fraction=0.98, sensor_rotation=rot,
                                         travel_heading_rad=heading)
                        assert repr(imp) == repr(old)
                        assert repr(imp) == repr(_impact.impact(
                            step, att, "", placement="foot", acc_range_g=acc_range_g, window_s=window_s,
                            clip_fraction=0.98, sensor_rotation=rot, travel_heading_rad=heading))
                    else:
                        assert imp is None
                    assert repr(stk) == repr(old_strike(step, att, "")) == repr(_strike.strike(step, att, ""))
                    assert repr(pro) == repr(old_pronation(step, att, "", side=side)) == repr(
                        _pronation.pronation(step, att, "", side=side))


def test_impact_refactor_as_before_for_the_shank():
    """impact() itself now builds its values through helpers: the shank's paths as before."""
    p = SimParams(placement="shank", side="right", sensor_id="s", fs_hz=200.0, duration_s=8.0, stand_s=2.0)
    recs = [r for r in _run_engine([SensorInfo("s", "shank", "right")], _items(p, "s", 400))
            if isinstance(r, StepRecord)]
    assert any(m.name == "pta_g" and math.isfinite(m.value) for r in recs for m in r.metrics)
    step = recs[3].step
    mats = np.tile(np.eye(3), (step.acc_ms2.shape[0], 1, 1))
    att = Attitude(matrices=mats, anchor=5, fs_hz=step.fs_hz)
    for axis in (None, np.array([0.0, 0.0, 1.0]), np.array([0.1, 0.2, 0.97])):
        for a in (att, None):
            for rng in (None, 8.0):
                kw = dict(placement="shank", acc_range_g=rng, axis_body=axis, sensor_rotation=np.eye(3),
                          travel_heading_rad=0.3)
                assert repr(_impact.impact(step, a, "why", **kw)) == repr(old_impact(step, a, "why", **kw))


def test_events_only_chain_keeps_no_samples():
    cfg = load_config(overrides={"metrics": {"enabled": []}})
    p = SimParams(placement="foot", side="right", sensor_id="f", fs_hz=200.0, duration_s=8.0)
    eng = Engine([SensorInfo("f", "foot", "right")], config=cfg)
    recs = []
    for it in _items(p, "f", 300):
        recs += eng.update(it)
    recs += eng.flush()
    steps = [r for r in recs if isinstance(r, StepRecord)]
    assert len(steps) > 10
    chain = eng._chains["f"].form
    assert chain._buffer._n == 0 and chain.update(steps[-1].step) == ()  # nothing buffered, no metrics
    # the same records as the replaced chain, which buffered and looked up strides (metrics ())
    full = [(r.step.ic_index, r.step.to_index, r.step.activity) for r in steps]
    old = []

    class OldChain(M.MetricsChain):
        def samples(self, block):
            if self._pending_reset:
                self._reset_now()
            self._buffer.append(block)
            if self._calibration is not None:
                self._calibration.update(block)

        def update(self, step):
            stride = self._buffer.stride(step, max_stride_s=self.params["max_stride_s"])
            axis = self._calibration.axis_body if self._calibration is not None else None
            rot = self._sensor_rotation() if self._sensor_rotation is not None else None
            out = M._run(M.StepContext(step=step, sensor=self.sensor, params=self.params, stride=stride,
                                       shank_axis_body=axis, sensor_rotation=rot), self._plan)
            self._buffer.keep_from_step(step)
            return out

    eng2 = Engine([SensorInfo("f", "foot", "right")], config=cfg)
    eng2._chains["f"].form = OldChain(SensorInfo("f", "foot", "right"), cfg)
    for it in _items(p, "f", 300):
        old += eng2.update(it)
    old += eng2.flush()
    assert [(r.step.ic_index, r.step.to_index, r.step.activity) for r in old if isinstance(r, StepRecord)] == full
    assert _metrics_repr(old) == _metrics_repr(recs)  # (the symmetry indices only)
