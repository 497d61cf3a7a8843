"""Form metrics in the stream: chunk invariance, left/right symmetry, the registry, the
standing calibration and the NaN reasons in the session summary."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.form.asymmetry import Symmetry, symmetry_index
from detectors.form.overstride import StandingCalibration
from pipeline.config import load_config
from pipeline.engine import Engine
from pipeline.errors import ConfigError
from pipeline.metrics import METRICS, NAMES, MetricsChain, compute_metrics, unit_of
from pipeline.records import SampleBlock, SensorInfo, SessionInfo, StepRecord
from pipeline.run import run_session
from pipeline.simulator import SimParams, Simulator
from pipeline.sinks.memory_sink import MemorySink

NOISE = dict(acc_noise_ms2=0.1, gyr_noise_dps=0.5, gyr_bias_dps=(1.0, -1.0, 0.7))


def _signals(p: SimParams):
    t, acc, gyr = Simulator(p).signals()
    return acc, gyr


def _pair_session(duration_s=8.0, fs_hz=200.0, **right):
    """Left and right foot plus a left shank (standing first), as (info, acc, gyr)."""
    lf = SimParams(side="left", duration_s=duration_s, fs_hz=fs_hz, mount_euler_deg=(20, -70, 100), **NOISE)
    rf = SimParams(side="right", duration_s=duration_s, fs_hz=fs_hz, phase_s=0.35, seed=1,
                   mount_euler_deg=(-150, 30, 10), **{**NOISE, **right})
    ls = SimParams(placement="shank", side="left", duration_s=duration_s, fs_hz=fs_hz, stand_s=1.5,
                   mount_euler_deg=(90, 10, -30), **NOISE)
    return [(SensorInfo(sid, p.placement, p.side), *_signals(p)) for sid, p in (("lf", lf), ("rf", rf), ("ls", ls))]


def _run(session, cuts_by_sensor):
    """Feed each sensor's samples in the given blocks, sensors interleaved block by block."""
    eng = Engine([s[0] for s in session])
    queues = []
    for (info, acc, gyr), cuts in zip(session, cuts_by_sensor):
        edges = [0] + sorted(set(c for c in cuts if 0 < c < acc.shape[0])) + [acc.shape[0]]
        queues.append([SampleBlock(info.sensor_id, 200.0, 0.0, a, acc[a:b], gyr[a:b]) for a, b in zip(edges, edges[1:])])
    out = []
    while any(queues):
        for q in queues:
            if q:
                out += eng.update(q.pop(0))
    out += eng.flush()
    rows = sorted((r.sensor.sensor_id, r.step.ic_s, tuple((m.name, m.value, m.reason) for m in r.metrics))
                  for r in out if isinstance(r, StepRecord))
    return rows


@pytest.fixture(scope="module")
def session():
    return _pair_session()


@pytest.fixture(scope="module")
def one_block(session):
    return _run(session, [[], [], []])


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x[:2] == y[:2]
        for (n1, v1, r1), (n2, v2, r2) in zip(x[2], y[2]):
            assert n1 == n2 and r1 == r2
            assert (math.isnan(v1) and math.isnan(v2)) or v1 == v2, (x[0], x[1], n1, v1, v2)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.integers(1, 1599), max_size=12), min_size=3, max_size=3))
def test_metrics_do_not_depend_on_chunking(session, one_block, cuts):
    """Any split of each sensor's stream, any interleaving of the sensors: bit-identical
    metrics, including the left/right symmetry (steps are held until both sides are known)."""
    _same(_run(session, cuts), one_block)


def test_one_sample_blocks_round_the_warmup(session, one_block):
    _same(_run(session, [list(range(0, 700, 1)), list(range(0, 1600, 7)), list(range(0, 1600, 33))]), one_block)


def test_pair_has_symmetry_and_single_shank_has_no_pair(one_block):
    by = {}
    for sid, ic, metrics in one_block:
        by.setdefault(sid, []).append(dict((n, (v, r)) for n, v, r in metrics))
    assert all(m["contact_si_pct"][1] == "no_pair" for m in by["ls"])
    si = [m["contact_si_pct"][0] for m in by["lf"][2:]] + [m["contact_si_pct"][0] for m in by["rf"][2:]]
    assert np.all(np.abs(si) < 2.0)  # a symmetric runner, contact times from the detector


def test_asymmetric_runner_is_measured():
    """Right contact 270 ms, left 240 ms; right impact 8 g, left 6 g: SI = 100 (L-R)/mean."""
    rows = _run(_pair_session(duration_s=10.0, contact_ms=270.0, impact_g=8.0)[:2], [[], []])
    want_contact = symmetry_index(240.0, 270.0)
    got = [dict((n, v) for n, v, _ in m) for sid, ic, m in rows if ic > 4.0]
    contact = np.array([g["contact_si_pct"] for g in got])
    assert np.all(np.abs(contact - want_contact) < 2.0), (contact, want_contact)  # 2 % of a 12 % asymmetry
    impact = np.array([g["impact_si_pct"] for g in got])
    assert np.all(impact < -10.0)  # the right foot lands harder (sensor-point impact, not the contact 6 vs 8 g)
    stride = np.array([g["stride_length_si_pct"] for g in got])
    assert np.all(np.abs(stride) < 2.0)  # same speed and cadence: same stride length


def test_symmetry_index_and_parameters():
    assert symmetry_index(110.0, 90.0) == pytest.approx(20.0)
    assert math.isnan(symmetry_index(math.nan, 1.0)) and math.isnan(symmetry_index(0.0, 0.0))
    with pytest.raises(ValueError, match="window_steps"):
        Symmetry([], window_steps=0)


def test_registry_config_units_and_errors():
    for group in METRICS:
        for name in NAMES[group]:
            assert unit_of(name)
    with pytest.raises(ValueError, match="no unit suffix"):
        unit_of("strike")
    cfg = load_config(overrides={"metrics": {"enabled": ["strike"]}})
    p = SimParams(duration_s=4)
    t, acc, gyr = Simulator(p).signals()
    eng = Engine([SensorInfo("s", "foot", "right")], config=cfg)
    recs = [r for r in eng.update(SampleBlock("s", p.fs_hz, 0.0, 0, acc, gyr)) + eng.flush() if isinstance(r, StepRecord)]
    names = {m.name for m in recs[2].metrics}
    assert {"strike_angle_deg", "strike_pattern_code"} <= names and "impact_g" not in names
    assert compute_metrics(recs[2].step, SensorInfo("s", "foot", "right"), cfg)[0].name == "strike_angle_deg"
    with pytest.raises(ValueError, match="unknown"):
        MetricsChain(SensorInfo("s", "foot", "right"), load_config(overrides={"metrics": {"enabled": ["nope"]}}))
    with pytest.raises(ConfigError):
        load_config(overrides={"metrics": {"rearfoot_min": 8.0}})


def test_strike_thresholds_come_from_config():
    p = SimParams(duration_s=5, strike_angle_deg=6.0)
    t, acc, gyr = Simulator(p).signals()
    codes = {}
    for lo in (8.0, 4.0):
        cfg = load_config(overrides={"metrics": {"rearfoot_min_deg": lo}})
        eng = Engine([SensorInfo("s", "foot", "right")], config=cfg)
        recs = [r for r in eng.update(SampleBlock("s", p.fs_hz, 0.0, 0, acc, gyr)) + eng.flush()
                if isinstance(r, StepRecord)]
        codes[lo] = {r.value("strike_pattern_code") for r in recs}
    assert codes == {8.0: {0.0}, 4.0: {1.0}}  # a 6 deg strike: midfoot by Altman & Davis, rearfoot at 4 deg


def test_standing_calibration_is_split_invariant():
    rng = np.random.default_rng(3)
    n = 900
    acc = np.tile([0.5, -1.0, 9.7], (n, 1)) + rng.normal(0, 0.05, (n, 3))
    gyr = rng.normal(0, 1.0, (n, 3))
    acc[100:130] += 5.0  # a fidget breaks the first still run
    gyr[100:130] += 50.0

    def axis(cuts, with_gyro=True):
        cal = StandingCalibration(min_still_s=1.0)
        edges = [0] + cuts + [n]
        for a, b in zip(edges, edges[1:]):
            cal.update(SampleBlock("s", 200.0, 0.0, a, acc[a:b], gyr[a:b] if with_gyro else None, frame="body"))
        return cal.axis_body

    for with_gyro in (True, False):  # accelerometer-only: stillness from sample-to-sample change
        ref = axis([], with_gyro)
        np.testing.assert_allclose(ref, np.array([0.5, -1.0, 9.7]) / np.linalg.norm([0.5, -1.0, 9.7]), atol=2e-3)
        for cuts in ([1, 2, 3, 129, 130, 331], list(range(7, n, 7)), [450]):
            assert np.array_equal(axis(cuts, with_gyro), ref)
    short = StandingCalibration(min_still_s=5.0)
    short.update(SampleBlock("s", 200.0, 0.0, 0, acc, gyr, frame="body"))
    assert short.axis_body is None  # 4.35 s of stillness is not 5 s


def test_nan_reasons_are_counted_in_the_session_summary():
    p = SimParams(placement="shank", duration_s=6, with_gyro=True)
    t, acc, gyr = Simulator(p).signals()
    info = SensorInfo("sh", "shank", "left")
    sink = MemorySink()
    summary = run_session([SampleBlock("sh", p.fs_hz, 0.0, 0, acc, gyr)], Engine([info]), [sink],
                          session=SessionInfo("s", "a", 0))
    m = summary.to_dict()["extra"]["metrics"]["sh"]
    steps = sum(isinstance(r, StepRecord) for r in sink.records)
    assert m["shank_angle_ic_deg"]["nan_reasons"]["no_standing_calibration"] == steps - 1
    assert m["shank_angle_ic_deg"]["nan_reasons"]["no_previous_stride"] == 1
    assert m["strike_angle_deg"]["nan_reasons"] == {"wrong_placement": steps}
    assert m["pta_resultant_g"]["valid"] == steps - 1 and m["pta_resultant_g"]["unit"] == "g"
    assert 3.0 < m["pta_resultant_g"]["median"] < 9.0


def test_gap_restarts_the_stride_buffer_and_acc_only_says_why():
    """After a Gap the first step has no previous stride (not a stride across the gap);
    metrics resume on the next step. Accelerometer-only streams: NaN, reason no_gyro."""
    from pipeline.records import Gap
    p = SimParams(duration_s=12, fs_hz=200)
    t, acc, gyr = Simulator(p).signals()
    eng = Engine([SensorInfo("s", "foot", "right")])
    half = 1200
    out = eng.update(SampleBlock("s", 200.0, 0.0, 0, acc[:half], gyr[:half]))
    out += eng.update(Gap("s", t[half - 1], t[half + 100]))
    out += eng.update(SampleBlock("s", 200.0, t[half + 100], 0, acc[half + 100:], gyr[half + 100:], segment=1))
    out += eng.flush()
    recs = [r for r in out if isinstance(r, StepRecord)]
    seg0 = [r for r in recs if r.step.segment == 0]
    seg1 = [r for r in recs if r.step.segment == 1]
    assert len(seg1) >= 4
    # the step flushed at the gap still had its segment's samples (the engine resets first)
    assert all(np.isfinite(r.value("stride_length_m")) for r in seg0[1:])
    assert {m.reason for m in seg1[0].metrics if m.name == "stride_length_m"} == {"no_previous_stride"}
    assert all(np.isfinite(r.value("stride_length_m")) for r in seg1[2:])  # [0] is a partial stance
    assert all(np.isfinite(r.value("strike_angle_deg")) for r in seg1[1:])

    eng = Engine([SensorInfo("a", "foot", "right")])
    out = eng.update(SampleBlock("a", 200.0, 0.0, 0, acc)) + eng.flush()
    recs = [r for r in out if isinstance(r, StepRecord)]
    assert recs and all({m.reason for m in r.metrics if m.name in ("strike_angle_deg", "impact_g", "stride_length_m")}
                        == {"no_gyro"} for r in recs[1:])


def throughput(duration_s: float = 120.0) -> str:
    """x real time of the engine (one process, in memory) for a 2-sensor 500 Hz 6-axis
    session, with every form metric and with none (``python tests/test_form_streaming.py``)."""
    import time

    sigs = []
    for sid, side, phase in (("lf", "left", 0.0), ("rf", "right", 0.35)):
        p = SimParams(side=side, fs_hz=500, duration_s=duration_s, phase_s=phase, mount_euler_deg=(20, -70, 100),
                      seed=len(sid), **NOISE)
        sigs.append((SensorInfo(sid, "foot", side), *_signals(p)))

    def cpu(cfg):
        eng = Engine([s[0] for s in sigs], config=cfg)
        t0 = time.process_time()
        for k in range(0, int(duration_s * 500), 500):
            for info, acc, gyr in sigs:
                eng.update(SampleBlock(info.sensor_id, 500.0, 0.0, k, acc[k:k + 500], gyr[k:k + 500]))
        eng.flush()
        return time.process_time() - t0

    lines = []
    for name, cfg in (("every form metric", load_config()),
                      ("no form metric", load_config(overrides={"metrics": {"enabled": []}}))):
        best = min(cpu(cfg) for _ in range(3))
        lines.append(f"{name}: {duration_s / best:.0f}x real time ({best:.2f} s CPU for {duration_s:.0f} s, 2 x 500 Hz)")
    return "\n".join(lines)


if __name__ == "__main__":
    print(throughput())


def test_left_right_pair_adds_no_latency_live():
    """Two feet streamed live (10 ms blocks, interleaved): every step still leaves the engine
    within the step detector's look-ahead (< 400 ms of signal after IC at 170 steps/min),
    with its symmetry indices - the other side's steps it needs are long known."""
    lf = SimParams(side="left", duration_s=20.0, fs_hz=500.0, cadence_spm=170.0)
    rf = SimParams(side="right", duration_s=20.0, fs_hz=500.0, cadence_spm=170.0, phase_s=0.35)
    sig = [(SensorInfo("l", "foot", "left"), *_signals(lf)), (SensorInfo("r", "foot", "right"), *_signals(rf))]
    eng = Engine([s[0] for s in sig])
    lat, si = [], []
    for k in range(0, 10000, 5):
        for info, acc, gyr in sig:
            for r in eng.update(SampleBlock(info.sensor_id, 500.0, 0.0, k, acc[k:k + 5], gyr[k:k + 5])):
                if isinstance(r, StepRecord):
                    lat.append((r.step.ic_s, (k + 4) / 500.0 - r.step.ic_s))
                    si.append((r.step.ic_s, r.value("contact_si_pct")))
    after = np.array([x for ic, x in lat if ic > 6.0])
    assert after.size > 30 and after.max() < 0.400, after.max()
    assert all(np.isfinite(v) and abs(v) < 2.0 for ic, v in si if ic > 6.0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=5, max_size=80), st.integers(0, 2**32 - 1))
def test_sample_buffer_strides_are_the_samples_and_memory_stays_bounded(sizes, seed):
    """The contiguous stride buffer (detectors/form/stride_length.SampleBuffer) hands out
    exactly the samples of the blocks it keeps, whatever the block sizes, and its storage
    stays within twice what it keeps."""
    from detectors.form.stride_length import SampleBuffer
    from pipeline.records import Step

    fs, rng = 100.0, np.random.default_rng(seed)
    total = sum(sizes)
    acc, gyr = rng.normal(size=(total, 3)), rng.normal(size=(total, 3))
    buf = SampleBuffer(buffer_s=5.0)
    start = 0
    for n in sizes:
        buf.append(SampleBlock("s", fs, start / fs, start, acc[start:start + n], gyr[start:start + n], frame="body"))
        start += n
        assert buf._acc.shape[0] <= max(2 * (buf._hi - buf._lo + 300), 4096)
        ic = start - 30.0
        if ic - 240 < 10:
            continue
        step = Step("s", 0, fs, ic, ic + 10, ic / fs, (ic + 10) / fs, (ic - 200) / fs, "running", start - 40,
                    acc[start - 40:start], gyr[start - 40:start])
        got = buf.stride(step, max_stride_s=2.5)
        lo = int(math.floor(step.ic_index - step.stride_s * fs)) - 2  # as SampleBuffer.stride
        if got is None:  # not kept any more: the first kept block starts after lo
            assert buf._blocks[0][0] > lo
            continue
        assert got.start_index == lo and not got.acc_ms2.flags.writeable
        np.testing.assert_array_equal(got.acc_ms2, acc[lo:start])
        np.testing.assert_array_equal(got.gyr_dps, gyr[lo:start])
        buf.keep_from_step(step)
