"""In-run form cues (pipeline/alerts.py) and fatigue drift (pipeline/fatigue.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.alerts import FormCues, parse_rules
from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.fatigue import FatigueDrift
from pipeline.records import Metric, SensorInfo, Step, StepRecord
from pipeline.simulator import SimParams, Simulator

SHANK = SensorInfo("r_shank", "shank", "right", athlete="ana")
LEFT = SensorInfo("l_foot", "foot", "left", athlete="ana")
RIGHT = SensorInfo("r_foot", "foot", "right", athlete="ana")


def rec(sensor, ic_s, *, stride_s=0.7, contact_ms=240.0, activity="running", **metrics):
    z = np.zeros((2, 3))
    st = Step(sensor_id=sensor.sensor_id, segment=0, fs_hz=100.0, ic_index=ic_s * 100, to_index=0.0, ic_s=ic_s,
              to_s=ic_s + contact_ms / 1e3, prev_ic_s=ic_s - stride_s, activity=activity,
              window_start_index=0, acc_ms2=z, gyr_dps=z)
    ms = tuple(Metric(k, float(v), "", ic_s, sensor.sensor_id) for k, v in metrics.items())
    return StepRecord(sensor=sensor, step=st, metrics=ms)


RULE = dict(name="overstriding", metric="shank_angle_ic_deg", threshold=10.0, clear=7.0, min_steps=3,
            message="Foot ahead of knee ({value:.0f} deg). Aim for {cadence_target:.0f} steps/min.")


def cues(*rules, window=5):
    return FormCues(rules=parse_rules(rules), window_steps=window, baseline_skip_s=0.0, baseline_s=10.0)


def feed(fc, values, sensor=SHANK, t0=0.0, metric="shank_angle_ic_deg"):
    out = []
    for i, v in enumerate(values):
        out += [(i, a) for a in fc.update(rec(sensor, t0 + 0.7 * i, **{metric: v}))]
    return out


def test_fires_after_min_steps_clears_with_hysteresis_and_does_not_flicker():
    fc = cues(RULE)
    seq = [5.0] * 10 + [14.0] * 10 + [8.5, 9.5, 8.0, 9.9] * 5 + [3.0] * 10
    got = feed(fc, seq)
    fired = [(i, a) for i, a in got if a.severity == "warning"]
    cleared = [(i, a) for i, a in got if a.severity == "cleared"]
    assert len(fired) == 1 and len(cleared) == 1  # hovering between 7 and 10 neither re-fires nor clears
    i, a = fired[0]
    # the 5-step average first exceeds 10 deg with 3 high steps (5,5,14,14,14 -> 10.4): step 12;
    # it must stay beyond for min_steps = 3 steps: fires at step 14
    assert i == 14
    assert a.rule == "overstriding" and a.value > 10.0 and a.threshold == 10.0
    assert "Aim for" in a.message and a.sensor_id == "r_shank" and a.athlete == "ana"
    assert cleared[0][0] >= 40  # only once the average fell below 7 deg


def test_message_has_cadence_target_five_percent_up():
    fc = cues(RULE)
    got = feed(fc, [15.0] * 10)
    a = [a for _, a in got][0]
    assert "Aim for 180 steps/min" in a.message  # 120 / 0.7 s = 171.4 spm, +5 % = 180


def test_relative_rule_uses_run_baseline():
    rule = dict(name="impact_up", metric="pta_g", relative_to="run", threshold=1.2, clear=1.1, min_steps=3,
                message="{value:.1f} g vs your usual {baseline:.1f} g")
    fc = FormCues(rules=parse_rules([rule]), window_steps=5, baseline_skip_s=2.0, baseline_s=20.0)
    base = [6.0] * 40
    assert feed(fc, base + [6.9] * 20, metric="pta_g") == []  # +15 %: below 1.2x
    fc.reset()
    got = feed(fc, base + [7.5] * 20, metric="pta_g")  # +25 %
    assert len(got) == 1 and "usual 6.0 g" in got[0][1].message


def test_run_baseline_follows_values_that_arrive_after_it_was_first_used():
    """The baseline median is computed once when complete, and again if a value still joins it
    (a pair rule: the other sensor's steps from inside the baseline window can arrive later)."""
    rule = dict(name="lr_rel", metric="contact_si_pct", magnitude=True, relative_to="run", threshold=1.5,
                clear=1.2, min_steps=1, message="{value:.2f} vs {baseline:.2f}")
    fc = FormCues(rules=parse_rules([rule]), window_steps=3, baseline_skip_s=0.0, baseline_s=10.0)
    out = []
    for i in range(20):  # left: 2.0, 15 steps inside the 10 s baseline, then past it (baseline used: 2.0)
        out += fc.update(rec(LEFT, 0.7 * i, contact_si_pct=2.0))
    for i in range(20):  # right, late: 20 steps from inside the baseline window at 4.0 (median -> 4.0)
        out += fc.update(rec(RIGHT, 0.35 + 0.45 * i, contact_si_pct=4.0))
    assert out == []
    for i in range(3):  # 6.5 = 1.625 x 4.0: fires only when the 3-step average passes 1.5 x 4.0
        out += fc.update(rec(LEFT, 14.0 + 0.7 * i, contact_si_pct=6.5))
    assert [(a.severity, a.message) for a in out] == [("warning", "6.50 vs 4.00")]


def test_placement_filter_and_non_running_steps_are_ignored():
    fc = cues(dict(RULE, placement="shank"))
    assert feed(fc, [20.0] * 10, sensor=RIGHT) == []
    out = []
    for i in range(10):
        out += fc.update(rec(SHANK, 0.7 * i, activity="walking", shank_angle_ic_deg=20.0))
    assert out == []


def test_left_right_imbalance_one_alert_per_pair_on_the_signed_index():
    rule = dict(name="lr", metric="contact_si_pct", magnitude=True, threshold=10.0, clear=7.0, min_steps=5,
                message="{value:.0f} %")
    fc = cues(rule)
    out = []
    for i in range(30):
        si = -11.3 if i > 10 else -0.8  # right contact longer: negative index, both sides carry it
        out += fc.update(rec(LEFT, 0.7 * i, contact_si_pct=si))
        out += fc.update(rec(RIGHT, 0.7 * i + 0.35, contact_si_pct=-si))
    assert len(out) == 1 and out[0].value == pytest.approx(11.3) and out[0].sensor_id == "left+right"


@pytest.mark.parametrize("bad, match", [
    (dict(RULE, colour="red"), "unknown key 'colour'"),
    (dict(RULE, threshold="ten"), "threshold: expected float"),
    (dict(RULE, metric="knee_pain_index"), "unknown metric 'knee_pain_index'"),
    (dict(RULE, op="sideways"), "op: expected 'above' or 'below'"),
    (dict(RULE, clear=12.0), "hysteresis"),
    (dict(RULE, message="too {fast}"), "bad placeholder"),
    ({k: v for k, v in RULE.items() if k != "metric"}, "missing key 'metric'"),
])
def test_bad_rules_are_errors_at_start(bad, match):
    with pytest.raises(ConfigError, match=match):
        parse_rules([bad])


def test_shipped_rules_parse(tmp_path):
    fc = FormCues.from_config(load_config())
    assert {"overstriding", "high_impact", "left_right_imbalance"} <= {r.name for r in fc.rules}
    bad = tmp_path / "c.toml"
    bad.write_text('[[alerts.rules]]\nname = "x"\nmetric = "nope"\nthreshold = 1.0\nmessage = "m"\n')
    with pytest.raises(ConfigError, match="unknown metric 'nope'"):
        FormCues.from_config(load_config(bad))


# ------------------------------------------------------------------ fatigue
def _truth_records(p: SimParams, sensor: SensorInfo, seed: int):
    """Per-step records with the simulator's planned per-stride values plus measurement noise
    (the stride plan only: the detectors' accuracy is tested elsewhere, and generating 40 min
    of IMU signals would make this test slow)."""
    rng = np.random.default_rng(seed)
    out = []
    for s in Simulator(p)._strides:
        if not 0.0 <= s.ic_s <= p.duration_s:
            continue
        out.append(rec(sensor, s.ic_s, stride_s=s.stride_s,
                       contact_ms=s.contact_s * 1e3 + rng.normal(0, 3.0),
                       pta_g=s.impact_ms2 / 9.80665 * (1 + rng.normal(0, 0.05)), speed_mps=s.speed_mps))
    return out


def _run_fatigue(p, sensor=SHANK, seed=1):
    fd = FatigueDrift()
    alerts = []
    for r in _truth_records(p, sensor, seed):
        alerts += fd.update(r)
    return alerts


def test_fatigue_fires_on_a_drifting_run_within_the_stated_delay():
    # 40 min: contact +12 %, impact +20 %, cadence -5 % by the end (exhausting run)
    p = SimParams(placement="shank", duration_s=2400.0, variability=1.0, seed=3,
                  drift={"contact_ms": 0.12, "impact_g": 0.20, "cadence_spm": -0.05})
    alerts = [a for a in _run_fatigue(p) if a.severity == "warning"]
    assert len(alerts) == 1
    a = alerts[0]
    # When do the signs hold, from the drift model? Relative to the baseline (60-300 s, mean drift
    # fraction f0 = 0.075), per-unit-speed impact passes +10 % first, then the duty factor
    # (contact +12 % f, stride +5.3 % f) passes +4 %; the alert needs two signs.
    f0 = 0.075
    t_impact = (0.10 * (1 + 0.2 * f0) / 0.2 + f0) * 2400.0
    duty = lambda f: (1 + 0.12 * f) / (1 + 0.05 * f / (1 - 0.05 * f))  # noqa: E731
    f = np.linspace(0, 1, 10001)
    t_duty = f[np.argmax(duty(f) / duty(f0) >= 1.04)] * 2400.0
    onset = sorted([t_impact, t_duty])[1]
    # stated delay: the 120 s window average and the 60 s sustain: within 180 s (+/- noise, 120 s)
    assert onset - 120.0 <= a.t_s <= onset + 180.0, (a.t_s, onset)
    assert "impact up" in a.message and "ground contact up" in a.message


def test_fatigue_does_not_fire_on_a_steady_run():
    p = SimParams(placement="shank", duration_s=2400.0, variability=1.0, seed=4)
    assert [a for a in _run_fatigue(p, seed=2) if a.severity == "warning"] == []


def test_fatigue_ignores_a_deliberate_change_of_pace():
    # the runner speeds up: cadence +4 %, contact -8 % (duty factor ~ -4 %), impact +8 % with speed +10 %:
    # per unit of speed the impact does not rise; none of this is fatigue
    p = SimParams(placement="shank", duration_s=1800.0, variability=1.0, seed=5,
                  drift={"cadence_spm": 0.04, "contact_ms": -0.08, "impact_g": 0.08, "speed_mps": 0.10})
    assert [a for a in _run_fatigue(p, seed=3) if a.severity == "warning"] == []


def test_history_relative_rule_uses_the_stored_baseline_from_the_start():
    rule = dict(name="impact_vs_history", metric="pta_g", relative_to="history", threshold=1.2, clear=1.1,
                min_steps=3, message="{value:.1f} g vs {baseline:.1f} g")
    fc = FormCues(rules=parse_rules([rule]), window_steps=5, baseline_skip_s=30.0, baseline_s=120.0,
                  history_baselines={"pta_g": 5.0})
    got = feed(fc, [6.5] * 10, metric="pta_g")  # 30 % over the stored 5 g, long before a run baseline exists
    assert len(got) == 1 and "vs 5.0 g" in got[0][1].message
