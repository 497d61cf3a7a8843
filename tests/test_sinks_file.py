"""File sink (steps.csv, session.json), memory sink, summary and the run loop."""

from __future__ import annotations

import csv
import io
import json
import math
import random

import numpy as np
import pytest

from pipeline.records import Metric, SensorInfo, SessionInfo, Step, StepRecord
from pipeline.sinks import Sink
from pipeline.sinks.file_sink import BASE_COLUMNS, FileSink
from pipeline.sinks.memory_sink import MemorySink
from pipeline.median import RESOLUTION
from pipeline.summary import SummaryBuilder

LEFT = SensorInfo(sensor_id="lf", placement="foot", side="left", athlete="ann")
RIGHT = SensorInfo(sensor_id="rf", placement="foot", side="right", athlete="ann")
SHANK = SensorInfo(sensor_id="ls", placement="shank", side="left", athlete="ann")
SESSION = SessionInfo(session_id="s", athlete="ann", start_wall_ns=1_767_254_400_000_000_000)


def step(sensor: SensorInfo, ic_s: float, *, contact_s: float = 0.24, stride_s: float = 0.7, activity="running",
         segment: int = 0) -> Step:
    fs = 500.0
    return Step(sensor_id=sensor.sensor_id, segment=segment, fs_hz=fs, ic_index=ic_s * fs, to_index=(ic_s + contact_s) * fs,
                ic_s=ic_s, to_s=ic_s + contact_s, prev_ic_s=ic_s - stride_s, activity=activity,
                window_start_index=int(ic_s * fs) - 50, acc_ms2=np.zeros((200, 3)))


def records(sensor, ics, **kw):
    return [StepRecord(sensor=sensor, step=step(sensor, t, **kw)) for t in ics]


def read_steps(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_sinks_follow_the_protocol(tmp_path):
    assert isinstance(FileSink(tmp_path, session=SESSION, sensors=[LEFT]), Sink)
    assert isinstance(MemorySink(), Sink)


def test_rows_are_sorted_and_bytes_do_not_depend_on_arrival_order(tmp_path):
    recs = records(LEFT, [1.0, 1.7, 2.4]) + records(RIGHT, [1.35, 2.05, 2.75]) + records(SHANK, [1.0, 1.7])
    outs = []
    for seed in range(4):
        shuffled = recs[:]
        random.Random(seed).shuffle(shuffled)
        sink = FileSink(tmp_path / str(seed), session=SESSION, sensors=[LEFT, RIGHT, SHANK])
        k = 0
        while k < len(shuffled):  # batches of varying size
            n = random.Random(seed + k).randint(1, 3)
            sink.write(shuffled[k:k + n])
            k += n
        sink.close(None)
        outs.append((tmp_path / str(seed) / "steps.csv").read_bytes())
    assert len(set(outs)) == 1
    rows = read_steps(tmp_path / "0" / "steps.csv")
    assert list(rows[0]) == list(BASE_COLUMNS)
    assert [(r["sensor_id"], r["ic_s"]) for r in rows] == [
        ("lf", "1.000000"), ("ls", "1.000000"), ("rf", "1.350000"), ("lf", "1.700000"), ("ls", "1.700000"),
        ("rf", "2.050000"), ("lf", "2.400000"), ("rf", "2.750000")]
    r = rows[0]
    assert (r["side"], r["placement"], r["athlete"], r["segment"], r["activity"]) == ("left", "foot", "ann", "0", "running")
    assert (r["to_s"], r["contact_ms"], r["cadence_spm"], r["flight_ms"]) == ("1.240000", "240.000", "171.429", "110.000")


def test_metric_columns_are_the_union_in_first_seen_order(tmp_path):
    a, b = step(LEFT, 1.0), step(LEFT, 1.7)
    sink = FileSink(tmp_path, session=SESSION, sensors=[LEFT])
    sink.write([StepRecord(sensor=LEFT, step=b, metrics=(Metric("impact_g", 7.123456789, "g", 1.7, "lf"),))])
    sink.write([StepRecord(sensor=LEFT, step=a, metrics=(
        Metric("strike_angle_deg", -3.5, "deg", 1.0, "lf"),
        Metric("impact_g", math.nan, "g", 1.0, "lf", reason="clipped"),
        Metric("flight_ms", 99.5, "ms", 1.0, "lf")))])
    sink.close(None)
    text = (tmp_path / "steps.csv").read_text()
    rows = read_steps(tmp_path / "steps.csv")
    assert text.splitlines()[0] == ",".join(BASE_COLUMNS) + ",impact_g,strike_angle_deg"
    assert rows[0]["ic_s"] == "1.000000" and rows[0]["impact_g"] == "" and rows[0]["strike_angle_deg"] == "-3.5"
    assert rows[0]["flight_ms"] == "99.500"  # a measured flight time replaces the one-foot estimate
    assert rows[1]["impact_g"] == "7.12346" and rows[1]["strike_angle_deg"] == ""


def test_first_step_of_a_segment_has_empty_cadence(tmp_path):
    s = step(LEFT, 1.0)
    first = Step(**{**{k: getattr(s, k) for k in Step.__dataclass_fields__}, "prev_ic_s": math.nan})
    sink = FileSink(tmp_path, session=SESSION, sensors=[LEFT])
    sink.write([StepRecord(sensor=LEFT, step=first)])
    sink.close(None)
    r = read_steps(tmp_path / "steps.csv")[0]
    assert r["cadence_spm"] == "" and r["flight_ms"] == "" and r["contact_ms"] == "240.000"


def test_summary_per_sensor_and_side(tmp_path):
    b = SummaryBuilder(SESSION, [LEFT, RIGHT, SHANK])
    b.add(records(LEFT, [1.0, 1.7, 2.4], stride_s=0.7))
    b.add(records(LEFT, [5.0, 6.2], stride_s=1.2, contact_s=0.5, activity="walking"))
    b.add(records(RIGHT, [1.35, 2.05], stride_s=0.75, contact_s=0.2))
    b.add(records(SHANK, [1.0, 1.7, 2.4, 3.1], stride_s=0.7))
    stats = {"lf": {"first_t_s": 0.0, "last_t_s": 60.0, "rows": 30001, "gaps": 1, "gap_s": 0.5,
                    "filled_samples": 7, "effective_fs_hz": 500.1, "fs_hz": 500.0}}
    s = b.build(counters={}, sources=stats)
    lf = s.sensors[0]
    assert (lf.steps, lf.running.steps, lf.walking.steps) == (5, 3, 2)
    # session medians are exact to half the stated resolution (pipeline/median.py): 0.01 spm, 0.01 ms
    half_spm, half_ms = RESOLUTION["spm"] / 2, RESOLUTION["ms"] / 2
    assert abs(lf.running.cadence_spm_median - 120 / 0.7) <= half_spm
    assert abs(lf.walking.contact_ms_median - 500) <= half_ms
    assert (lf.duration_s, lf.gaps, lf.filled_samples, lf.rows, lf.effective_fs_hz) == (60.0, 1, 7, 30001, 500.1)
    rf = s.sensors[1]
    assert abs(rf.running.contact_ms_median - 200) <= half_ms and abs(rf.running.flight_ms_median - 175) <= half_ms
    sides = {x.side: x for x in s.sides}
    assert sides["left"].sensor_id == "lf" and sides["left"].sensors == ("lf", "ls") and sides["left"].steps == 5
    assert sides["right"].sensor_id == "rf" and sides["left"].duration_s == 60.0
    assert s.start_utc == "2026-01-01T08:00:00.000Z" and s.duration_s == 60.0
    d = json.loads(json.dumps(s.to_dict(), allow_nan=False))
    assert d["sensors"][2]["walking"]["cadence_spm_median"] is None
    table = s.format_table()
    assert "lf" in table and "3/2" in table and "171.4" in table and "per side" in table


def test_session_json_is_written_at_close(tmp_path):
    b = SummaryBuilder(SESSION, [LEFT])
    recs = records(LEFT, [1.0, 1.7])
    b.add(recs)
    sink = FileSink(tmp_path / "o", session=SESSION, sensors=[LEFT])
    sink.write(recs)
    assert not (tmp_path / "o" / "steps.csv").exists()
    sink.close(b.build(status="interrupted"))
    d = json.loads((tmp_path / "o" / "session.json").read_text())
    assert d["status"] == "interrupted" and d["sensors"][0]["steps"] == 2
    assert not list((tmp_path / "o").glob(".*.tmp"))
    sink.close(None)  # a second close is a no-op


def test_memory_sink_keeps_records_and_summary():
    m = MemorySink()
    recs = records(LEFT, [1.0])
    m.write(recs)
    m.close("summary")
    assert m.records == recs and m.summary == "summary" and m.closed
    with pytest.raises(RuntimeError):
        m.write(recs)


def test_row_template_gives_the_cell_by_cell_text(tmp_path):
    """Rows are formatted with one %-template per metric layout; the text must be what
    formatting each cell with _fmt gives: empty NaN/inf, no '-0', a metric named like a fixed
    column replaces it (the last of a name wins), new columns appended as first seen."""
    from pipeline.sinks.file_sink import _fmt

    odd = [0.0, -0.0, -0.0004, -0.0005, -4e-7, -1e-300, math.inf, -math.inf, math.nan, -0.5, 1e-5, -1e-5,
           123456789.0, 1, True, np.float64(-0.0), 2.5e-310]
    rng = random.Random(3)
    recs, want = [], []
    for k in range(60):
        sensor = (LEFT, RIGHT, SHANK)[k % 3]
        names = ["a", "b", "flight_ms"] + (["c"] if k >= 20 and sensor is SHANK else []) + ["a", "activity"]
        vals = [rng.choice(odd) for _ in names]
        st = step(sensor, 1.0 + k, contact_s=rng.choice([0.24, 1e-7]), stride_s=rng.choice([0.7, math.nan]))
        recs.append(StepRecord(sensor, st, tuple(Metric(n, v, "", st.ic_s, sensor.sensor_id) for n, v in zip(names, vals))))
        got = dict(zip(names, vals))
        want.append([_fmt(st.ic_s, ".6f"), _fmt(st.to_s, ".6f"), _fmt(st.contact_ms, ".3f"),
                     _fmt(got["flight_ms"], ".3f"), _fmt(st.cadence_spm, ".3f"),
                     _fmt(got["a"], ".6g"), _fmt(got["b"], ".6g"), _fmt(got["c"], ".6g") if "c" in got else ""])
    sink = FileSink(tmp_path, session=SESSION, sensors=[LEFT, RIGHT, SHANK])
    for k in range(0, len(recs), 7):
        sink.write(recs[k:k + 7])
    sink.close(None)
    lines = (tmp_path / "steps.csv").read_text().splitlines()
    assert lines[0].split(",") == list(BASE_COLUMNS) + ["a", "b", "c"]
    assert [line.split(",")[6:] for line in lines[1:]] == want
    assert not any(",-0" in line and "-0." not in line for line in lines)
