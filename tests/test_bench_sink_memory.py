"""The file sink's memory does not grow with the run (perf, issue 9): rows are spilled in
sorted runs and merged at close, and the bytes of steps.csv are the same as when every row
stays in memory (the behaviour before spilling), whatever the arrival order."""

from __future__ import annotations

import random
import tracemalloc

import numpy as np

import pipeline.sinks.file_sink as fs_mod
from pipeline.records import Metric, SensorInfo, SessionInfo, Step, StepRecord
from pipeline.sinks.file_sink import FileSink

LEFT = SensorInfo(sensor_id="lf", placement="foot", side="left", athlete="ann")
RIGHT = SensorInfo(sensor_id="rf", placement="foot", side="right", athlete="ann, \"the\" runner")
SESSION = SessionInfo(session_id="s", athlete="ann", start_wall_ns=0)


def _rec(sensor: SensorInfo, ic_s: float, k: int, segment: int = 0) -> StepRecord:
    fs = 500.0
    st = Step(sensor_id=sensor.sensor_id, segment=segment, fs_hz=fs, ic_index=ic_s * fs,
              to_index=(ic_s + 0.24) * fs, ic_s=ic_s, to_s=ic_s + 0.24, prev_ic_s=ic_s - 0.7,
              activity="running", window_start_index=int(ic_s * fs) - 50, acc_ms2=np.zeros((4, 3)))
    def m(name, v, unit):
        return Metric(name=name, value=v, unit=unit, t_s=ic_s, sensor_id=sensor.sensor_id)

    metrics = (m("impact_g", 5.0 + k % 7, "g"), m("strike_angle_deg", -3.0 + k % 11, "deg"))
    if k % 5 == 0 and k > 0:  # a column that first appears late, and only on some rows
        metrics += (m("rare_m", k / 3.0, "m"),)
    return StepRecord(sensor=sensor, step=st, metrics=metrics)


def _session(n: int) -> list[StepRecord]:
    recs = []
    for k in range(n):
        recs.append(_rec(LEFT, 0.05 + 0.706 * k, k))
        recs.append(_rec(RIGHT, 0.403 + 0.706 * k, k))
    recs.append(_rec(LEFT, recs[10].step.ic_s, 99, segment=1))  # a tie on ic_s: sensor, then segment order
    return recs


def _write(path, recs, *, spill_rows, monkeypatch, batch_seed=0):
    monkeypatch.setattr(fs_mod, "SPILL_ROWS", spill_rows)
    sink = FileSink(path, session=SESSION, sensors=[LEFT, RIGHT])
    rnd = random.Random(batch_seed)
    k = 0
    while k < len(recs):
        n = rnd.randint(1, 9)
        sink.write(recs[k:k + n])
        k += n
    sink.close(None)
    return (path / "steps.csv").read_bytes()


def test_spilled_runs_give_the_same_bytes_as_in_memory(tmp_path, monkeypatch):
    recs = _session(300)
    shuffled = recs[:]
    random.Random(1).shuffle(shuffled)  # far more disorder than the engine ever produces
    ref = _write(tmp_path / "mem", recs, spill_rows=10**9, monkeypatch=monkeypatch)
    assert ref.count(b"\n") == len(recs) + 1 and b"rare_m" in ref.splitlines()[0]
    for i, (arrival, spill) in enumerate([(recs, 7), (recs, 64), (shuffled, 7), (shuffled, 1)]):
        assert _write(tmp_path / str(i), arrival, spill_rows=spill, monkeypatch=monkeypatch, batch_seed=i) == ref


def test_memory_is_bounded_by_the_spill_size(tmp_path, monkeypatch):
    """Held memory after writing 4x more rows stays about the same (it grew ~2 KB per row before)."""
    monkeypatch.setattr(fs_mod, "SPILL_ROWS", 256)
    held = []
    for n in (600, 2400):
        recs = _session(n)
        sink = FileSink(tmp_path / str(n), session=SESSION, sensors=[LEFT, RIGHT])
        tracemalloc.start()
        for k in range(0, len(recs), 8):
            sink.write(recs[k:k + 8])
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        held.append(current)
        sink.close(None)
        assert (tmp_path / str(n) / "steps.csv").read_text().count("\n") == len(recs) + 1
    assert held[1] < 1.5 * held[0] + 64 * 1024, held


def test_spilled_alerts_give_the_same_alerts_csv(tmp_path, monkeypatch):
    """Alert lines also go to a temporary file past SPILL_ROWS: alerts.csv is the same, in raise order."""
    from pipeline.records import Alert

    alerts = [Alert(rule=f"r{k % 3}", severity="warning" if k % 2 else "cleared", value=k / 7, threshold=1.5,
                    t_s=0.5 * k, message=f'msg, "quoted" {k}', sensor_id="lf", athlete="ann") for k in range(50)]
    out = []
    for i, spill in enumerate((10**9, 3, 1)):
        monkeypatch.setattr(fs_mod, "SPILL_ROWS", spill)
        sink = FileSink(tmp_path / str(i), session=SESSION, sensors=[LEFT, RIGHT])
        for k in range(0, len(alerts), 4):
            sink.write(alerts[k:k + 4] + [_rec(LEFT, 0.05 + k, k)])
        sink.close(None)
        out.append((tmp_path / str(i) / "alerts.csv").read_bytes())
    assert out[0].count(b"\n") == 51 and out[1] == out[0] and out[2] == out[0]
