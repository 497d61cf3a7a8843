"""Line protocol encoding (pure): escaping, float formatting, NaN/inf handling, precision.

Reference: https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/
(special characters and escaping). Round trips through a real server are in
test_lineprotocol_server.py.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from influx_fixtures import make_step_records
from pipeline import lineprotocol as lp
from pipeline import schema
from pipeline.records import Alert, Metric, SensorInfo, SessionInfo, StepRecord

SESSION = SessionInfo("s1", "ann", 1_700_000_000_123_456_789)
LEFT = SensorInfo("L", "foot", "left")


def test_escaping_follows_the_reference():
    line = lp.encode_point(
        "my meas,x",
        {"tag key": "a,b=c d", "empty": "", "z": "ü"},
        {"f=1": 1.0, "msg": 'say "hi" \\ there'},
        5,
    )
    assert line == r'my\ meas\,x,tag\ key=a\,b\=c\ d,z=ü f\=1=1.0,msg="say \"hi\" \\ there" 5'


def test_line_breaks_and_trailing_backslash_cannot_break_a_line():
    line = lp.encode_point("m", {"t": "a\nb\\"}, {"s": "x\r\ny"}, 1)
    assert "\n" not in line and "\r" not in line
    assert line == 'm,t=a\\ b/ s="x  y" 1'


def test_numbers_are_floats_and_round_trip_exactly():
    vals = {"a": 3, "b": 0.1, "c": 1e-300, "d": -2.5e17, "e": 123456789.123456789}
    line = lp.encode_point("m", {}, vals, 0)
    fields = line.split(" ")[1].split(",")
    got = {f.split("=")[0]: f.split("=")[1] for f in fields}
    assert got["a"] == "3.0"  # no integer suffix, ever
    for k, v in vals.items():
        assert float(got[k]) == float(v)
    with pytest.raises(TypeError, match="expected a number or str"):
        lp.encode_point("m", {}, {"x": object()}, 0)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_float_round_trips(v):
    assert float(lp.format_float(v)) == v


def test_nan_and_inf_are_dropped_and_counted():
    stats = lp.EncodeStats()
    line = lp.encode_point("m", {}, {"a": math.nan, "b": 1.0, "c": math.inf, "d": -math.inf}, 7, stats=stats)
    assert line == "m b=1.0 7"
    assert stats.nonfinite_dropped == 3 and stats.points == 1
    assert lp.encode_point("m", {}, {"a": math.nan}, 7, stats=stats) is None
    assert stats.points_empty == 1 and stats.nonfinite_dropped == 4 and stats.points == 1


def test_precision_rounds_wall_clock_nanoseconds():
    assert lp.to_timestamp(1_500_000, "ms") == 2
    assert lp.to_timestamp(1_499_999, "ms") == 1
    assert lp.to_timestamp(123, "ns") == 123
    with pytest.raises(ValueError, match="precision must be one of"):
        lp.to_timestamp(1, "minutes")


def test_step_point_fields_come_from_the_record_including_new_metrics():
    rec = make_step_records(sensors=[LEFT], duration_s=3.0, metric_names=("impact_g", "brand_new_metric"))[2]
    line = lp.step_line(rec, session=SESSION, precision="ns")
    head, fields, ts = line.split(" ")
    assert head == "gait_step,athlete=ann,placement=foot,sensor=L,session=s1,side=left"
    names = [f.split("=")[0] for f in fields.split(",")]
    assert names == [*schema.STEP_CORE_FIELDS, "impact_g", "brand_new_metric"]
    assert int(ts) == SESSION.wall_ns(rec.step.ic_s)
    assert f'activity="{rec.step.activity}"' in fields
    assert f"brand_new_metric={rec.value('brand_new_metric')!r}" in fields


def test_first_step_has_no_cadence_and_it_is_counted_not_sent():
    rec = make_step_records(sensors=[LEFT], duration_s=3.0)[0]
    assert math.isnan(rec.step.cadence_spm)
    stats = lp.EncodeStats()
    line = lp.step_line(rec, session=SESSION, stats=stats)
    assert "cadence_spm" not in line and "flight_ms" not in line
    assert stats.nonfinite_dropped == 2


def test_metric_named_like_a_core_field_replaces_it_and_bad_names_are_refused():
    base = make_step_records(sensors=[LEFT], duration_s=3.0, metric_names=())[1]
    rec = StepRecord(LEFT, base.step, (Metric("flight_ms", 99.5, "ms", 0.0, "L"),))
    assert schema.step_fields(rec)["flight_ms"] == 99.5
    for bad in ("time", "athlete", "has space", "", "activity"):
        with pytest.raises(ValueError, match=repr(bad) if bad else "identifier"):
            schema.step_fields(StepRecord(LEFT, base.step, (Metric(bad, 1.0, "", 0.0, "L"),)))


def test_alert_point_uses_session_athlete_when_the_alert_has_none():
    a = Alert("overstride", "warning", 12.5, 10.0, 61.25, 'Land closer to your hips, "short and quick"')
    line = lp.alert_line(a, session=SESSION, precision="ms")
    assert line.startswith("gait_alert,athlete=ann,rule=overstride,session=s1,severity=warning ")
    assert line.endswith(" " + str(lp.to_timestamp(SESSION.wall_ns(61.25), "ms")))
    assert 'message="Land closer to your hips, \\"short and quick\\""' in line


def test_summary_lines_flatten_numbers_and_split_sensors():
    summary = {"duration_s": 60.0, "steps": 300, "name": "x", "status": "complete", "flags": {"ok": True},
               "sensors": {"L": {"steps": 150, "gaps": 1, "side": "left"}}}
    lines = lp.summary_lines(summary, session=SESSION, precision="ns")
    t = SESSION.start_wall_ns
    assert lines[0] == f'gait_session,athlete=ann,session=s1 duration_s=60.0,steps=300.0,flags_ok=1.0,status="complete" {t}'
    assert lines[1] == f"gait_session,athlete=ann,sensor=L,session=s1,side=left steps=150.0,gaps=1.0 {t}"


def test_summary_lines_from_the_real_session_summary():
    from pipeline.summary import SummaryBuilder

    recs = make_step_records(sensors=[LEFT], duration_s=20.0)
    b = SummaryBuilder(SESSION, [LEFT])
    b.add(recs)
    summary = b.build(counters={"L": {"samples": 4000, "fs_hz": 200.0, "gaps": 0, "gap_s": 0.0}})
    lines = lp.summary_lines(summary, session=SESSION, precision="ms")
    assert [ln.split(" ")[0] for ln in lines] == [
        "gait_session,athlete=ann,session=s1",
        "gait_session,athlete=ann,placement=foot,sensor=L,session=s1,side=left",
        "gait_session,athlete=ann,session=s1,side=left",
    ]
    assert f"steps={float(len(recs))!r}" in lines[1] and 'status="complete"' in lines[0]
    fields = dict(f.split("=") for f in lines[1].split(" ")[1].split(","))
    assert float(fields["running_cadence_spm_median"]) == pytest.approx(170.0)
    assert "walking_cadence_spm_median" not in fields  # NaN (too few walking strides): dropped


def test_record_lines_refuses_unknown_types():
    with pytest.raises(TypeError, match="cannot encode dict"):
        lp.record_lines([{}], session=SESSION)


def test_readme_documents_every_measurement_tag_and_health_field():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## InfluxDB schema", 1)[1]
    rows = {m: next(ln for ln in section.splitlines() if ln.startswith(f"| `{m}`")) for m in schema.MEASUREMENTS}
    for m, tags in schema.TAGS_BY_MEASUREMENT.items():
        for t in tags:
            assert t in rows[m], (m, t)
    for f in schema.STEP_CORE_FIELDS:
        assert f"`{f}`" in rows[schema.MEASUREMENT_STEP]
    for f in schema.HEALTH_FIELDS:
        assert f"`{f}`" in rows[schema.MEASUREMENT_HEALTH]
    for f in (schema.FIELD_ALERT_VALUE, schema.FIELD_ALERT_THRESHOLD, schema.FIELD_ALERT_T_S, schema.FIELD_ALERT_MESSAGE):
        assert f"`{f}`" in rows[schema.MEASUREMENT_ALERT]


# -- the sink's fast path (SessionEncoder) writes exactly what step_line/window_line write ----------

_odd_text = st.lists(st.sampled_from([*' ,="\\%äZ\n', "ab", "Zoë", "%r", "%%"]), min_size=1, max_size=6).map("".join)
_value = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10, 10),
    st.floats(-1e3, 1e3).map(lambda v: __import__("numpy").float64(v)),
)


@settings(deadline=None)  # (the first call loads the compiled float formatter)
@given(
    athlete=_odd_text,
    session_id=_odd_text,
    sensor_id=_odd_text,
    activity=st.sampled_from(["running", "walking", 'odd "%s" act,ivity']),
    names=st.lists(st.sampled_from(["impact_g", "strike_angle_deg", "flight_ms", "x_1", "contact_ms"]), max_size=4),
    values=st.lists(_value, min_size=4, max_size=4),
    times=st.tuples(st.floats(0, 1e5), st.floats(0, 2), st.one_of(st.just(math.nan), st.floats(0.01, 3))),
    precision=st.sampled_from(sorted(lp.PRECISIONS)),
)
def test_session_encoder_steps_equal_step_line(athlete, session_id, sensor_id, activity, names, values, times, precision):
    import numpy as np

    from pipeline.records import Step

    ic, contact, stride = times
    session = SessionInfo(session_id, athlete, 1_700_000_000_123_456_789)
    sensor = SensorInfo(sensor_id, "foot", "left")
    step = Step(sensor_id=sensor_id, segment=np.int64(2), fs_hz=200.0, ic_index=0.0, to_index=1.0, ic_s=ic,
                to_s=ic + contact, prev_ic_s=ic - stride, activity=activity, window_start_index=0, acc_ms2=np.zeros((2, 3)))
    rec = StepRecord(sensor, step, tuple(Metric(n, v, "", ic, sensor_id) for n, v in zip(names, values)))
    want_stats, got_stats = lp.EncodeStats(), lp.EncodeStats()
    want = lp.step_line(rec, session=session, precision=precision, stats=want_stats)
    enc = lp.SessionEncoder(session, precision)
    out: list[str] = []
    rows: list = []
    for _ in range(2):  # second time from the cached shape
        latest = enc.steps([rec], out, got_stats, rows)
    assert out == [want, want] if want is not None else out == []
    assert got_stats.points == 2 * want_stats.points
    assert got_stats.nonfinite_dropped == 2 * want_stats.nonfinite_dropped
    assert got_stats.points_empty == 2 * want_stats.points_empty
    numeric = repr({k: v for k, v in schema.step_fields(rec).items() if not isinstance(v, str)})
    assert [repr(dict(zip(row[0], map(float, row[1])))) for row in rows] == [numeric, numeric]  # (repr: NaN == NaN)
    assert latest == ic


def test_session_encoder_refuses_bad_metric_names_like_step_fields():
    base = make_step_records(sensors=[LEFT], duration_s=3.0, metric_names=())[1]
    enc = lp.SessionEncoder(SESSION, "ms")
    for bad in ("time", "athlete", "has space", "activity"):
        with pytest.raises(ValueError, match=repr(bad)):
            enc.steps([StepRecord(LEFT, base.step, (Metric(bad, 1.0, "", 0.0, "L"),))], [])


@settings(deadline=None)
@given(
    names=st.lists(st.sampled_from(["contact_ms", "impact_g", "odd,key =%"]), unique=True, max_size=3),
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=9, max_size=9),
    steps=st.integers(1, 40),
    start_s=st.floats(0, 1e5),
    precision=st.sampled_from(sorted(lp.PRECISIONS)),
)
def test_session_encoder_windows_equal_window_line(names, values, steps, start_s, precision):
    from pipeline.window_aggregates import WindowAggregate

    stats = tuple((n, *values[3 * i : 3 * i + 3]) for i, n in enumerate(names))
    w = WindowAggregate(LEFT, start_s, 10.0, steps, stats)
    want_stats, got_stats = lp.EncodeStats(), lp.EncodeStats()
    want = lp.window_line(w, session=SESSION, precision=precision, stats=want_stats)
    out: list[str] = []
    lp.SessionEncoder(SESSION, precision).windows([w, w], out, got_stats)
    assert out == [want, want]
    assert (got_stats.points, got_stats.nonfinite_dropped) == (2 * want_stats.points, 2 * want_stats.nonfinite_dropped)


def test_session_encoder_defer_keeps_order_and_bytes():
    from pipeline.window_aggregates import WindowAggregator

    recs = make_step_records(sensors=[LEFT, SensorInfo("R", "foot", "right")], duration_s=60.0, nan_every=7)
    recs[5] = StepRecord(LEFT, recs[5].step, (Metric("flight_ms", 99.5, "ms", 0.0, "L"),))  # general path
    want = [lp.step_line(r, session=SESSION, precision="ms") for r in recs]
    enc = lp.SessionEncoder(SESSION, "ms")
    out: list[str] = []
    for i in range(0, len(recs), 3):
        enc.steps(recs[i : i + 3], out, defer=True)
        assert len(out) + enc.pending == i + len(recs[i : i + 3])
    enc.flush(out)
    assert enc.pending == 0 and out == want
    agg = WindowAggregator(window_s=10.0)
    agg.update(recs)
    windows = agg.flush()
    got: list[str] = []
    enc.windows(windows, got, defer=True)
    enc.flush(got)
    assert got == [lp.window_line(w, session=SESSION, precision="ms") for w in windows]


def test_session_encoder_timestamps_beyond_int64_and_percent_signs_in_names():
    sensor = SensorInfo("100%", "foot", "left", athlete="Zoë %d %s %%")
    rec = make_step_records(sensors=[sensor], duration_s=3.0, metric_names=("impact_g",))[2]
    for session, precision in ((SESSION, "ns"), (SessionInfo("x", "y", 2**63 + 5), "ns"), (SESSION, "s")):
        out: list[str] = []
        lp.SessionEncoder(session, precision).steps([rec], out)
        assert out == [lp.step_line(rec, session=session, precision=precision)]
