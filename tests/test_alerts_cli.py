"""Alerts and training history through the real `gaitwatch replay` command."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from pipeline.simulator import SimParams, write_recording


def _session(tmp_path: Path, right_contact_ms: float) -> list[Path]:
    common = dict(duration_s=40.0, fs_hz=100.0, athlete="ana", variability=0.5)
    left = write_recording(SimParams(placement="foot", side="left", contact_ms=240.0, phase_s=60 / 170, seed=1,
                                     sensor_id="lf", **common), tmp_path / "lf.csv")
    right = write_recording(SimParams(placement="foot", side="right", contact_ms=right_contact_ms, seed=2,
                                      sensor_id="rf", **common), tmp_path / "rf.csv")
    return [left, right]


def test_left_right_imbalance_alert_in_alerts_csv_console_and_summary(tmp_path, run_cli):
    recs = _session(tmp_path, right_contact_ms=280.0)  # SI = 40 / 260 = 15 %
    out = tmp_path / "o"
    p = run_cli("replay", *recs, "--out", out)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((out / "alerts.csv").open()))
    fired = [r for r in rows if r["severity"] == "warning"]
    assert [r["rule"] for r in fired] == ["left_right_imbalance"]
    assert 12.0 < float(fired[0]["value"]) < 18.0 and "ground contact" in fired[0]["message"]
    assert "left_right_imbalance" in p.stdout  # printed while the run went on
    assert json.loads((out / "session.json").read_text())["extra"]["alerts"] == {"left_right_imbalance": 1}


def test_symmetric_run_raises_no_alert(tmp_path, run_cli):
    out = tmp_path / "o"
    p = run_cli("replay", *_session(tmp_path, right_contact_ms=240.0), "--out", out)
    assert p.returncode == 0, p.stderr
    assert (out / "alerts.csv").read_text().splitlines() == \
        ["t_s,rule,severity,sensor_id,athlete,value,threshold,message"]


def test_replay_with_history_records_the_run_and_checks_load(tmp_path, run_cli):
    data = tmp_path / "data"
    recs = _session(tmp_path, right_contact_ms=240.0)
    assert run_cli("checkin", "--athlete", "ana", "--pain", "5", "--data-dir", data,
                   "--at", "2026-01-01T07:30:00Z").returncode == 0  # the sims start 2026-01-01T08:00Z
    p = run_cli("replay", *recs, "--out", tmp_path / "o", "--history", "--data-dir", data)
    assert p.returncode == 0, p.stderr
    assert "LOAD    run_with_pain" in p.stdout
    lines = (data / "athletes" / "ana.jsonl").read_text().splitlines()
    s = json.loads(lines[-1])
    assert s["type"] == "session" and 35.0 < s["duration_s"] < 42.0  # running time from steps x stride time and s["steps"] > 40
