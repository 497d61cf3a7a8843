"""gait_window aggregates (pipeline/window_aggregates.py), pure: per sensor and 10 s window,
the step count and mean/min/max of every numeric step field over its finite values, the
same for any split of the records into calls, and the same whether the sink hands over the
encoder's rows or the aggregator reads the records itself."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from influx_fixtures import make_step_records
from pipeline import lineprotocol as lp
from pipeline import schema
from pipeline.records import Metric, SensorInfo, SessionInfo, StepRecord
from pipeline.window_aggregates import WindowAggregator

LEFT = SensorInfo("L", "foot", "left")
RIGHT = SensorInfo("R", "foot", "right")
SESSION = SessionInfo("s", "a", 0)


def reference(records, window_s):
    out = {}
    for r in records:
        d = out.setdefault((r.sensor.sensor_id, math.floor(r.step.ic_s / window_s)), {"steps": 0})
        d["steps"] += 1
        for name, v in schema.step_fields(r).items():
            if not isinstance(v, str) and name not in schema.STEP_NON_AGGREGATED and math.isfinite(v):
                d.setdefault(name, []).append(v)
    return out


def check(windows, records, window_s):
    ref = reference(records, window_s)
    assert sorted((w.sensor.sensor_id, round(w.start_s / window_s)) for w in windows) == sorted(ref)
    for w in windows:
        d = ref[(w.sensor.sensor_id, round(w.start_s / window_s))]
        assert w.steps == d["steps"] and w.window_s == window_s
        assert {s[0] for s in w.stats} == set(d) - {"steps"}  # a field with no finite value is left out
        for name, mean, lo, hi in w.stats:
            vals = d[name]
            assert (lo, hi) == (min(vals), max(vals))
            assert abs(mean - math.fsum(vals) / len(vals)) <= 1e-13 * max(map(abs, vals))


def records(nan_every, inf_at, extra):
    recs = make_step_records(sensors=[LEFT, RIGHT], duration_s=35.0, nan_every=nan_every)
    out = []
    for i, r in enumerate(recs):
        metrics = r.metrics
        if i == inf_at:
            metrics = (*metrics, Metric("strike_angle_deg", math.inf, "", 0.0, r.sensor.sensor_id))[1:]
        if extra and i % extra == 0:  # a metric only some steps have: two field sets in one window
            metrics = (*metrics, Metric("sometimes", float(i), "", 0.0, r.sensor.sensor_id))
        if i % 7 == 3:  # a metric named like a core field replaces it
            metrics = (*metrics, Metric("flight_ms", 100.0 + i, "ms", 0.0, r.sensor.sensor_id))
        out.append(StepRecord(r.sensor, r.step, metrics))
    return out


@settings(max_examples=30, deadline=None)
@given(nan_every=st.sampled_from([0, 1, 3]), inf_at=st.integers(-1, 40), extra=st.sampled_from([0, 1, 4]),
       chunk=st.integers(1, 30), via_rows=st.booleans())
def test_windows_match_the_reference_for_any_split(nan_every, inf_at, extra, chunk, via_rows):
    recs = records(nan_every, inf_at, extra)
    agg = WindowAggregator(window_s=10.0)
    enc = lp.SessionEncoder(SESSION, "ms")
    out = []
    for i in range(0, len(recs), chunk):
        part = recs[i : i + chunk]
        if via_rows:
            rows: list = []
            enc.steps(part, [], None, rows)
            out += agg.update(part, rows=rows)
        else:
            out += agg.update(part)
    out += agg.flush()
    check(out, recs, 10.0)
