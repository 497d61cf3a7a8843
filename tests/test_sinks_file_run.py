"""The run loop (pipeline/run.py) with the real engine, real recordings and real sinks:
complete runs, a failure in the middle of a file, and Ctrl-C."""

from __future__ import annotations

import json

import pytest

from firmware_bridge.recording import Recording
from firmware_bridge.replay import replay
import pipeline.engine as engine_mod  # end-to-end: the lead's engine, detectors and simulator
import pipeline.simulator as sim
from pipeline.errors import InputError
from pipeline.records import SessionInfo
from pipeline.sinks.file_sink import FileSink
from pipeline.sinks.memory_sink import MemorySink

SESSION = SessionInfo(session_id="t", athlete="sim", start_wall_ns=0)


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    sim.write_recording(sim.SimParams(side="left", duration_s=12, sensor_id="lf"), d / "lf.csv")
    sim.write_recording(sim.SimParams(side="right", duration_s=12, sensor_id="rf", phase_s=0.35), d / "rf.csv")
    return d


def _run(recs, sinks, items=None):
    from pipeline.run import run_session

    engine = engine_mod.Engine([r.info for r in recs])
    items = replay(recs) if items is None else items
    return run_session(items, engine, sinks, session=SESSION,
                       source_stats=lambda: {r.info.sensor_id: r.stats for r in recs})


def test_complete_run_feeds_every_sink_and_closes_them(sim_dir, tmp_path):
    recs = [Recording(sim_dir / "lf.csv"), Recording(sim_dir / "rf.csv")]
    mem, fs = MemorySink(), FileSink(tmp_path, session=SESSION, sensors=[r.info for r in recs])
    summary = _run(recs, [mem, fs])
    assert summary.status == "complete" and mem.closed and mem.summary is summary
    n_rows = len((tmp_path / "steps.csv").read_text().splitlines()) - 1
    assert n_rows == len(mem.records) > 20
    d = json.loads((tmp_path / "session.json").read_text())
    assert d["status"] == "complete"
    assert [s["steps"] for s in d["sensors"]] == [sum(r.sensor.sensor_id == sid for r in mem.records) for sid in ("lf", "rf")]
    assert d["sensors"][0]["samples"] == 12 * 500 and d["sensors"][0]["rows"] == 12 * 500


def test_failure_mid_file_still_writes_what_was_computed(sim_dir, tmp_path):
    lines = (sim_dir / "lf.csv").read_text().splitlines()
    lines[4001] = "0.5," + lines[4001].split(",", 1)[1]  # t_s jumps back at line 4002 (t = 8 s)
    bad = tmp_path / "in" / "lf.csv"
    bad.parent.mkdir()
    bad.write_text("\n".join(lines) + "\n")
    (tmp_path / "in" / "lf.json").write_text((sim_dir / "lf.json").read_text())
    recs = [Recording(bad), Recording(sim_dir / "rf.csv")]
    mem, fs = MemorySink(), FileSink(tmp_path / "out", session=SESSION, sensors=[r.info for r in recs])
    with pytest.raises(InputError, match=r"lf\.csv:4002 column 't_s': time goes backwards"):
        _run(recs, [mem, fs])
    assert mem.closed and mem.summary.status == "failed"
    d = json.loads((tmp_path / "out" / "session.json").read_text())
    assert d["status"] == "failed" and "time goes backwards" in d["error"]
    rows = (tmp_path / "out" / "steps.csv").read_text().splitlines()[1:]
    assert len(rows) == len(mem.records) >= 10  # steps before the fault are kept
    assert all(float(r.split(",")[6]) < 8.5 for r in rows)


def test_ctrl_c_flushes_the_engine_and_closes_the_sinks(sim_dir, tmp_path):
    recs = [Recording(sim_dir / "lf.csv", block_s=0.5)]

    def interrupted(items, after):
        for k, it in enumerate(items):
            if k == after:
                raise KeyboardInterrupt
            yield it

    mem, fs = MemorySink(), FileSink(tmp_path, session=SESSION, sensors=[recs[0].info])
    with pytest.raises(KeyboardInterrupt):
        _run(recs, [mem, fs], items=interrupted(replay(recs), 12))  # 6 s of 12
    assert mem.closed and mem.summary.status == "interrupted"
    assert 5 <= len(mem.records) <= 12
    assert json.loads((tmp_path / "session.json").read_text())["status"] == "interrupted"
    assert len((tmp_path / "steps.csv").read_text().splitlines()) == len(mem.records) + 1


def test_a_failing_sink_does_not_stop_the_others_from_closing(sim_dir, tmp_path):
    class Broken(MemorySink):
        def close(self, summary=None):
            super().close(summary)
            raise OSError("disk full")

    recs = [Recording(sim_dir / "lf.csv")]
    broken, mem = Broken(), MemorySink()
    with pytest.raises(OSError, match="disk full"):
        _run(recs, [broken, mem])
    assert mem.closed and mem.summary.status == "complete"
