"""END-TO-END: `gaitwatch replay` as a user runs it (subprocess), on simulated recordings.

Needs the whole backbone (the lead's simulator, alignment and step detector). Checks the
outputs' form and determinism, pacing, Ctrl-C and the terminal-only progress bar; the
accuracy of the steps themselves is tested by the detector tests.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

import pipeline.simulator as sim


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("session")
    sim.write_recording(sim.SimParams(side="left", duration_s=10, sensor_id="lf"), d / "run_left_foot.csv")
    sim.write_recording(sim.SimParams(side="right", duration_s=10, sensor_id="rf", phase_s=0.35),
                        d / "run_right_foot.csv")
    sim.write_recording(sim.SimParams(placement="shank", side="left", duration_s=10, sensor_id="ls",
                                      fs_hz=200.0), d / "run_shank.csv")
    return d


def recs(d):
    return [d / "run_left_foot.csv", d / "run_right_foot.csv", d / "run_shank.csv"]


def test_replay_writes_steps_session_and_a_table(session_dir, tmp_path, run_cli):
    out = tmp_path / "out"
    proc = run_cli("replay", *recs(session_dir), "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal, no logs
    rows = list(csv.DictReader(io.StringIO((out / "steps.csv").read_text())))
    assert set(rows[0]) >= {"sensor_id", "side", "placement", "athlete", "segment", "activity", "ic_s", "to_s",
                            "contact_ms", "flight_ms", "cadence_spm"}
    assert {r["sensor_id"] for r in rows} == {"lf", "rf", "ls"}
    ics = [float(r["ic_s"]) for r in rows]
    assert ics == sorted(ics) and 0 <= min(ics) and max(ics) <= 10
    d = json.loads((out / "session.json").read_text())
    assert d["session_id"] == "run" and d["status"] == "complete" and d["start_utc"] == "2026-01-01T08:00:00.000Z"
    assert [s["sensor_id"] for s in d["sensors"]] == ["lf", "rf", "ls"]
    assert [s["steps"] for s in d["sensors"]] == [sum(r["sensor_id"] == sid for r in rows) for sid in ("lf", "rf", "ls")]
    assert d["sensors"][2]["fs_hz"] == 200.0 and d["sensors"][0]["duration_s"] == pytest.approx(10, abs=0.01)
    assert [s["side"] for s in d["sides"]] == ["left", "right"] and d["sides"][0]["sensor_id"] == "lf"
    table = proc.stdout
    for word in ("session run", "lf", "rf", "ls", "cadence_spm", "contact_ms", "per side"):
        assert word in table


def test_output_is_byte_identical_across_runs_and_block_sizes(session_dir, tmp_path, run_cli):
    outs = []
    for k, block in enumerate(["0.05", "1", "1", "3.3"]):
        out = tmp_path / f"o{k}"
        proc = run_cli("replay", *recs(session_dir), "--out", out, "--block-s", block)
        assert proc.returncode == 0, proc.stderr
        session = json.loads((out / "session.json").read_text())
        assert session["extra"]["block_s"] == float(block)
        session["extra"].pop("block_s")
        outs.append(((out / "steps.csv").read_bytes(), json.dumps(session)))
    assert len(outs[0][0].splitlines()) > 30
    assert all(o == outs[0] for o in outs)


def test_flags_replace_a_missing_sidecar(session_dir, tmp_path, run_cli):
    src = session_dir / "run_left_foot.csv"
    bare = tmp_path / "bare.csv"
    bare.write_bytes(src.read_bytes())
    proc = run_cli("replay", bare, "--placement", "foot", "--side", "right", "--athlete", "zoe", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    d = json.loads((tmp_path / "o" / "session.json").read_text())
    assert (d["athlete"], d["sensors"][0]["sensor_id"], d["sensors"][0]["side"]) == ("zoe", "bare", "right")
    assert d["sensors"][0]["steps"] > 10


def test_speed_paces_the_replay(session_dir, tmp_path, run_cli):
    t0 = time.monotonic()
    proc = run_cli("replay", session_dir / "run_shank.csv", "--speed", "10", "--out", tmp_path / "o")
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert wall >= 0.95  # 10 s of signal at 10x real time


def test_ctrl_c_exits_130_and_keeps_the_steps(session_dir, tmp_path):
    out = tmp_path / "o"
    p = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "replay", *map(str, recs(session_dir)), "--speed", "2",
                          "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60.0
    while not out.exists() and time.monotonic() < deadline:  # sinks are open: the run has started
        time.sleep(0.05)
    time.sleep(1.5)  # about 3 s of signal replayed
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=30)
    assert p.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "gaitwatch: interrupted" and "Traceback" not in stderr
    d = json.loads((out / "session.json").read_text())
    assert d["status"] == "interrupted"
    rows = (out / "steps.csv").read_text().splitlines()[1:]
    assert len(rows) == sum(s["steps"] for s in d["sensors"]) > 0
    assert max(float(r.split(",")[6]) for r in rows) < 9.0


def test_progress_bar_only_on_a_terminal(session_dir, tmp_path):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "replay", str(session_dir / "run_left_foot.csv"),
                             "--out", str(tmp_path / "o")], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    err = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "replay" in err and "s signal" in err  # the tqdm bar, on stderr
    assert b"s signal" not in proc.stdout.read()


def test_verbose_logs_go_to_stderr(session_dir, tmp_path, run_cli):
    proc = run_cli("-vv", "replay", session_dir / "run_shank.csv", "--out", tmp_path / "o")
    assert proc.returncode == 0
    assert "DEBUG" in proc.stderr or "INFO" in proc.stderr
