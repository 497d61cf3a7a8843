"""Form metrics against the simulator's ground truth (issue 3, "Accuracy").

Every run goes through the real engine (alignment -> steps -> metrics). Detected steps are
matched to true ICs within 30 ms. Tolerances come from what a runner or coach needs, not
from what the code happens to reach:

* strike angle: median error <= 2 deg and every step <= 3 deg (the rearfoot/midfoot band of
  Altman & Davis 2012 is 9.6 deg wide; Falbriard et al. 2020 reach 2.0 +/- 5.9 deg);
  pattern correct for >= 95 % of steps more than 2 deg away from a threshold;
* shank angle at IC within 2 deg (overstriding cues move it by ~3-5 deg: Heiderscheit 2011);
* pronation excursion within 3 deg, eversion velocity within 10 %;
* foot progression within 3 deg (toe-out ranges 0-20 deg between runners);
* impact peak within 3 % of what the sensor point feels when not clipped, always flagged
  when clipped; loading rate within 25 % (it depends on the IC instant to ~1 ms of a
  ~12 ms rise; between-runner differences are ~2x);
* stride length within 3 % (speed from it within 3 %); swing height within 1 cm; forward
  foot velocity at impact (the foot's overstriding proxy) within 0.05 m/s.

Realistic sensor errors: white noise 0.1 m/s^2 and 0.5 deg/s, biases 0.1 m/s^2 and 1 deg/s
per axis (consumer MEMS such as the BMI160: 180 ug/sqrt(Hz), 0.007 deg/s/sqrt(Hz)), any
mounting rotation, 200-1000 Hz, stride-to-stride variability of a typical runner.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.engine import Engine
from pipeline.records import SensorInfo, StepRecord
from pipeline.simulator import G_MS2, SimParams, Simulator
from sim_helpers import run_sim

NOISE = dict(acc_noise_ms2=0.1, gyr_noise_dps=0.5, acc_bias_ms2=(0.1, -0.05, 0.08), gyr_bias_dps=(1.0, -1.0, 0.7))
MOUNTS = [(0, 0, 0), (30, -60, 120), (170, 20, -45), (-90, 45, 10), (60, 80, -150), (0, 90, 0)]


_RUNS: dict[str, list] = {}


def matched(p: SimParams):
    """[(record, truth row)] of a simulated run, steps matched to true ICs within 30 ms."""
    if repr(p) not in _RUNS:
        _RUNS[repr(p)] = _matched(p)
    return _RUNS[repr(p)]


def _matched(p: SimParams):
    info = SensorInfo("s", p.placement, p.side, acc_range_g=p.acc_range_g)
    sim, out = run_sim(p, engine=Engine([info]))
    truth = sim.truth()
    ics = np.array([t["ic_s"] for t in truth])
    pairs = []
    for r in out:
        if not isinstance(r, StepRecord):
            continue
        k = int(np.argmin(np.abs(ics - r.step.ic_s)))
        if abs(ics[k] - r.step.ic_s) < 0.03:
            row = dict(truth[k])
            # a step's stride metrics describe the stride that *ends* at its IC (from the
            # previous IC): the truth row of the previous stride
            for key in ("stride_length_m", "speed_mps", "sensor_swing_height_m"):
                row[key] = truth[k - 1].get(key, np.nan) if k > 0 else np.nan
            # foot progression over that stride: the mean of its two stances
            row["toe_out_deg"] = 0.5 * (truth[k - 1]["toe_out_deg"] + truth[k]["toe_out_deg"]) if k > 0 else np.nan
            pairs.append((r, row))
    assert len(pairs) >= 0.8 * len(truth) > 5
    return pairs


def values(pairs, name, key, *, relative=False):
    v = np.array([r.value(name) for r, _ in pairs])
    t = np.array([row[key] for _, row in pairs])
    ok = np.isfinite(v) & np.isfinite(t)
    assert ok.sum() >= len(pairs) - 2, f"{name}: {len(pairs) - ok.sum()} NaN of {len(pairs)}"
    return (v[ok] / t[ok] - 1.0) if relative else (v[ok] - t[ok])


FOOT_CASES = [
    # (fs_hz, side, strike_angle_deg, mount)
    (200, "left", 14.0, MOUNTS[1]), (500, "right", 14.0, MOUNTS[2]), (1000, "left", 3.0, MOUNTS[3]),
    (500, "right", 3.0, MOUNTS[4]), (200, "right", -6.0, MOUNTS[5]), (1000, "left", -6.0, MOUNTS[0]),
]


def foot(fs, side, strike, mount, **kw):
    return SimParams(fs_hz=fs, side=side, strike_angle_deg=strike, mount_euler_deg=mount, duration_s=12,
                     variability=1.0, seed=int(fs + strike * 10), **NOISE, **kw)


@pytest.mark.parametrize("case", FOOT_CASES, ids=lambda c: f"{c[0]:.0f}Hz-{c[1]}-{c[2]:+.0f}deg")
def test_foot_strike_pronation_progression_stride(case):
    pairs = matched(foot(*case))
    e = values(pairs, "strike_angle_deg", "strike_angle_deg")
    assert np.median(np.abs(e)) <= 2.0 and np.abs(e).max() <= 3.0, e
    e = values(pairs, "pronation_excursion_deg", "pronation_deg")
    assert np.abs(e).max() <= 3.0, e
    e = values(pairs, "foot_progression_deg", "toe_out_deg")
    assert np.abs(e).max() <= 3.0, e
    e = values(pairs, "stride_length_m", "stride_length_m", relative=True)
    assert np.abs(e).max() <= 0.03, e
    e = values(pairs, "speed_mps", "speed_mps", relative=True)
    assert np.abs(e).max() <= 0.03, e


@pytest.mark.parametrize("case", FOOT_CASES, ids=lambda c: f"{c[0]:.0f}Hz-{c[1]}-{c[2]:+.0f}deg")
def test_foot_landing_velocity_and_swing_height(case):
    """Overstriding proxy: forward foot velocity at impact onset within 0.05 m/s (the
    simulator's range over strike patterns is 0.3-0.55 m/s); swing height within 1 cm."""
    pairs = matched(foot(*case))
    e = values(pairs, "landing_velocity_mps", "sensor_landing_velocity_mps")
    assert np.abs(e).max() <= 0.05, e
    e = values(pairs, "swing_height_m", "sensor_swing_height_m")
    assert np.abs(e).max() <= 0.01, e


@pytest.mark.parametrize("case", FOOT_CASES[:4], ids=lambda c: f"{c[0]:.0f}Hz-{c[1]}")
def test_foot_pronation_velocity(case):
    """Peak eversion velocity of the simulator's quintic eversion: 15/8 excursion / rise time
    (eversion rises from IC to its peak at 40 % of contact)."""
    pairs = matched(foot(*case))
    v = np.array([r.value("pronation_velocity_dps") for r, _ in pairs])
    t = np.array([1.875 * row["pronation_deg"] / (0.4 * row["contact_ms"] / 1e3) for _, row in pairs])
    ok = np.isfinite(v)
    assert ok.sum() >= len(v) - 2
    assert np.abs(v[ok] / t[ok] - 1).max() <= 0.10


@pytest.mark.parametrize("case", FOOT_CASES, ids=lambda c: f"{c[0]:.0f}Hz-{c[1]}-{c[2]:+.0f}deg")
def test_foot_impact_within_3_percent(case):
    pairs = matched(foot(*case))
    e = values(pairs, "impact_g", "sensor_impact_g", relative=True)
    assert np.abs(e).max() <= 0.03, e
    e = values(pairs, "braking_g", "sensor_braking_g", relative=True)
    assert np.median(np.abs(e)) <= 0.10, e
    if case[0] >= 500:
        e = values(pairs, "impact_rate_gps", "sensor_impact_rate_gps", relative=True)
        assert np.abs(e).max() <= 0.25, e
    assert all(r.value("impact_clipped") == 0.0 for r, _ in pairs)  # not clipped (told by the signal)


def test_strike_pattern_at_least_95_percent_away_from_thresholds():
    ok = n = 0
    for case in FOOT_CASES:
        for r, row in matched(foot(*case)):
            a = row["strike_angle_deg"]
            if min(abs(a - 8.0), abs(a + 1.6)) <= 2.0:
                continue
            want = 1.0 if a > 8.0 else (-1.0 if a < -1.6 else 0.0)
            n += 1
            ok += r.value("strike_pattern_code") == want
    assert n >= 60 and ok / n >= 0.95


SHANK_CASES = [
    (200, "left", 12.0, MOUNTS[1]), (500, "right", 6.0, MOUNTS[0]), (1000, "right", 0.0, MOUNTS[2]),
    (500, "left", -3.0, MOUNTS[4]),
]


def shank(fs, side, angle, mount, **kw):
    return SimParams(placement="shank", stand_s=2.0, fs_hz=fs, side=side, shank_angle_ic_deg=angle,
                     mount_euler_deg=mount, duration_s=14, variability=1.0, seed=int(fs + angle), **NOISE, **kw)


@pytest.mark.parametrize("case", SHANK_CASES, ids=lambda c: f"{c[0]:.0f}Hz-{c[1]}-{c[2]:+.0f}deg")
def test_shank_angle_and_pta(case):
    pairs = matched(shank(*case))
    e = values(pairs, "shank_angle_ic_deg", "shank_angle_ic_deg")
    assert np.abs(e).max() <= 2.0, e
    e = values(pairs, "pta_g", "sensor_pta_g", relative=True)
    assert np.abs(e).max() <= 0.03, e
    e = values(pairs, "pta_resultant_g", "sensor_pta_resultant_g", relative=True)
    assert np.abs(e).max() <= 0.03, e
    # foot-only metrics are NaN on a shank, with the reason
    r = pairs[3][0]
    assert {m.reason for m in r.metrics if m.name in ("strike_angle_deg", "stride_length_m")} == {"wrong_placement"}


def test_shank_without_standing_has_resultant_but_no_axis():
    pairs = matched(SimParams(placement="shank", duration_s=8, mount_euler_deg=MOUNTS[3], **NOISE))
    r = pairs[4][0]
    reasons = {m.name: m.reason for m in r.metrics}
    assert reasons["shank_angle_ic_deg"] == "no_standing_calibration" and reasons["pta_g"] == "no_standing_calibration"
    e = values(pairs, "pta_resultant_g", "sensor_pta_resultant_g", relative=True)
    assert np.abs(e).max() <= 0.03


@pytest.mark.parametrize("fs", [200.0, 1000.0])
def test_accelerometer_only_shank_has_axial_pta(fs):
    """Cheap tibial accelerometers have no gyroscope: axial PTA from the standing axis minus
    1 g (the shank is near vertical at IC) within 3 %; what needs the vertical is NaN."""
    pairs = matched(SimParams(placement="shank", with_gyro=False, stand_s=2.0, duration_s=12, fs_hz=fs,
                              mount_euler_deg=MOUNTS[1], **NOISE))
    e = values(pairs, "pta_g", "sensor_pta_g", relative=True)
    assert np.abs(e).max() <= 0.03, e
    reasons = {m.name: m.reason for m in pairs[3][0].metrics}
    assert reasons["pta_resultant_g"] == reasons["shank_angle_ic_deg"] == reasons["braking_g"] == "no_gyro"


@pytest.mark.parametrize("placement", ["foot", "shank"])
@pytest.mark.parametrize("range_known", [True, False], ids=["range-known", "from-signal"])
def test_clipped_impacts_are_flagged_never_reported(placement, range_known):
    """A step is clipped when a raw sensor axis reaches the range within 50 ms of IC (from
    the signal alone: on two consecutive samples - one saturated sample looks like a peak).
    Every clipped step is flagged, its impact NaN (reason ``clipped``); no unclipped step is."""
    p = SimParams(placement=placement, stand_s=2.0 if placement == "shank" else 0.0, duration_s=10, impact_g=9.5,
                  acc_range_g=8.0, mount_euler_deg=MOUNTS[2], **NOISE)
    t, acc, _ = Simulator(p).signals()
    at_range = (np.abs(acc) >= 8.0 * G_MS2 - 1e-9).any(axis=1)
    if not range_known:
        at_range[:-1] &= at_range[1:] | np.concatenate([[False], at_range[:-2]])  # runs of >= 2
        at_range[-1] &= at_range[-2]
    info = SensorInfo("s", placement, p.side, acc_range_g=8.0 if range_known else None)
    _, out = run_sim(p, engine=Engine([info]))
    recs = [r for r in out if isinstance(r, StepRecord)]
    main = "impact_g" if placement == "foot" else "pta_resultant_g"
    n_clipped = 0
    for r in recs:
        k = int(np.ceil(r.step.ic_s * p.fs_hz))
        truly = bool(at_range[k:k + int(0.05 * p.fs_hz) + 1].any())
        n_clipped += truly
        assert r.value("impact_clipped") == float(truly), r.step.ic_s
        if truly:
            assert np.isnan(r.value(main)) and {m.reason for m in r.metrics if m.name == main} == {"clipped"}
    assert n_clipped >= 3


def test_impact_needs_200_hz():
    pairs = matched(SimParams(fs_hz=100, duration_s=8))
    assert all(np.isnan(r.value("impact_g")) for r, _ in pairs)
    assert {m.reason for r, _ in pairs for m in r.metrics if m.name == "impact_g"} == {"fs_too_low"}
    e = values(pairs, "strike_angle_deg", "strike_angle_deg")  # angles still work at 100 Hz
    assert np.abs(e).max() <= 3.0


def accuracy_table() -> str:
    """Measured errors over the test matrix (``python tests/test_form_sim.py``)."""
    rows = []

    def add(label, cases, make, name, key, relative=False):
        errs = np.concatenate([values(matched(make(*c)), name, key, relative=relative) for c in cases])
        a = np.abs(errs) * (100 if relative else 1)
        unit = "%" if relative else name.rsplit("_", 1)[-1]
        rows.append(f"{label:<34} n={a.size:4d}  median |err| {np.median(a):6.3f} {unit:<4} max {a.max():6.3f} {unit}")

    add("strike angle (foot)", FOOT_CASES, foot, "strike_angle_deg", "strike_angle_deg")
    add("pronation excursion (foot)", FOOT_CASES, foot, "pronation_excursion_deg", "pronation_deg")
    add("foot progression (foot)", FOOT_CASES, foot, "foot_progression_deg", "toe_out_deg")
    add("stride length (foot)", FOOT_CASES, foot, "stride_length_m", "stride_length_m", relative=True)
    add("speed (foot)", FOOT_CASES, foot, "speed_mps", "speed_mps", relative=True)
    add("swing height (foot)", FOOT_CASES, foot, "swing_height_m", "sensor_swing_height_m")
    add("landing velocity (foot)", FOOT_CASES, foot, "landing_velocity_mps", "sensor_landing_velocity_mps")
    add("impact_g (foot)", FOOT_CASES, foot, "impact_g", "sensor_impact_g", relative=True)
    add("impact rate (foot, >= 500 Hz)", [c for c in FOOT_CASES if c[0] >= 500], foot, "impact_rate_gps",
        "sensor_impact_rate_gps", relative=True)
    add("braking (foot)", FOOT_CASES, foot, "braking_g", "sensor_braking_g", relative=True)
    ok = n = 0
    for case in FOOT_CASES:
        for r, row in matched(foot(*case)):
            a = row["strike_angle_deg"]
            want = 1.0 if a > 8.0 else (-1.0 if a < -1.6 else 0.0)
            n += 1
            ok += r.value("strike_pattern_code") == want
    rows.append(f"{'strike pattern (all steps)':<34} n={n:4d}  correct {100.0 * ok / n:.1f} %")
    add("shank angle at IC", SHANK_CASES, shank, "shank_angle_ic_deg", "shank_angle_ic_deg")
    add("pta_g axial (shank)", SHANK_CASES, shank, "pta_g", "sensor_pta_g", relative=True)
    add("pta_resultant_g (shank)", SHANK_CASES, shank, "pta_resultant_g", "sensor_pta_resultant_g", relative=True)
    return "\n".join(rows)


if __name__ == "__main__":
    print(accuracy_table())
