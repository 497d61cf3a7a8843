"""The benchmark script cannot rot: bench/bench_pipeline.py runs end to end on a few seconds
of data (a correctness smoke test: no timing is asserted), and its event matching is right."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "bench_pipeline.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_pipeline", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_pipeline_runs_offline_and_live(tmp_path):
    out_json = tmp_path / "bench.json"
    cache = tmp_path / "cache"
    p = subprocess.run(
        [sys.executable, str(SCRIPT), "--parts", "offline,live", "--minutes", "0.1", "--cache-dir", str(cache),
         "--jobs", "1", "--live-s", "9", "--live-warmup-s", "6", "--live-sensors", "2", "--capacity-sensors", "2",
         "--mem-sensors", "3", "--json", str(out_json)],
        capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert p.returncode == 0, p.stderr[-3000:]
    assert "x_realtime" in p.stdout and "p99_ms" in p.stdout  # the table was printed
    res = json.loads(out_json.read_text())
    # nothing but the asked-for files: the recordings are in the cache, not in the repo
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bench.json", "cache"]

    row = res["offline"][0]
    assert row["pipeline"] == "full" and row["minutes"] == 0.1 and row["rows"] == 2 * 3000
    for other in res["offline"][1:]:  # the same run with the form metrics off: the same steps
        assert other["pipeline"] == "events only" and other["steps"] == row["steps"]
    # every simulated contact of both feet is in steps.csv (truth from the simulator)
    master = next(d for d in cache.iterdir() if (d / "complete").is_file())
    truth = 0
    for f in master.glob("*_truth.csv"):
        with f.open() as fh:
            truth += sum(1 for _ in csv.DictReader(fh))
    assert truth >= 15 and row["steps"] == truth
    assert row["wall_s"] > 0 and row["x_realtime"] > 0 and row["peak_rss_mib"] > 10

    (live,) = res["live"]
    assert live["sensors"] == 2 and live["steps"] >= 4
    assert 0 < live["p50_ms"] <= live["p99_ms"] <= live["max_ms"]
    assert res["capacity"]["sensors_per_core"] > 0
    # resident-memory deltas of a few sensors are within the allocator's noise: only check they were measured
    assert res["memory"]["n"] == 3 and math.isfinite(res["memory"]["per_sensor_kib"])


def test_event_matching_is_one_to_one_within_tolerance():
    bp = _bench_module()
    ref = [1.0, 2.0, 3.0, 4.0]
    est = [1.010, 2.004, 2.006, 3.5, 5.0]  # 2.006 is a duplicate; 3.5 and 5.0 are too far
    m = bp.match(ref, est)
    assert m["matched"] == 2 and m["only_ref"] == 2 and m["only_est"] == 3
    assert math.isclose(m["mad_ms"], 7.0, abs_tol=1e-6) and math.isclose(m["bias_ms"], 7.0, abs_tol=1e-6)
    assert bp.match([], [1.0])["only_est"] == 1 and math.isnan(bp.match([], [1.0])["mad_ms"])


def test_foot_flat_agreement_counts_ic_before_and_to_after():
    bp = _bench_module()
    starts = np.arange(10) * 0.75 + 1.0
    zv = np.column_stack([starts, starts + 0.1])
    ic = starts - 0.08  # IC 80 ms before foot-flat
    to = starts + 0.1 + 0.12  # TO 120 ms after it
    a = bp.zv_agreement(zv, ic, to)
    assert a["intervals"] == 10 and a["ic_before"] == 10 and a["to_after"] == 10
    assert math.isclose(a["ic_lead_ms"], 80.0, abs_tol=1e-6) and math.isclose(a["to_lag_ms"], 120.0, abs_tol=1e-6)
    late = bp.zv_agreement(zv, starts + 0.02, to[:5])  # ICs after foot-flat began are wrong
    assert late["ic_before"] == 0 and late["to_after"] == 5


def test_in_memory_child_gives_the_replay_commands_events(tmp_path):
    """The benchmark's same-scope timing of gaitwatch (``_events``: replay_in_memory warm in a
    fresh process) runs 1 + N calls and returns the events of steps.csv (``_replay`` child)."""
    bp = _bench_module()
    rec = ROOT / "fixtures" / "demo" / "demo_left_foot.csv"
    res, _ = bp.run_child(["_events", "2", str(rec)])
    assert len(res["warm_cpu_all_s"]) == 2 and res["cold_cpu_s"] > 0
    assert math.isclose(res["warm_cpu_s"], float(np.median(res["warm_cpu_all_s"])))
    ic, to, cpu = bp.gaitwatch_events(rec)
    assert cpu > 0 and len(ic) >= 20
    assert [f"{x:.6f}" for x in res["ic_s"]] == [f"{x:.6f}" for x in sorted(ic)]
    assert [f"{x:.6f}" for x in res["to_s"]] == [f"{x:.6f}" for x in sorted(to)]
    # the checked wrapper the gaitmap part uses raises when they differ
    bp.gaitwatch_events_warm(rec, None, 1, (ic, to))
    import pytest

    with pytest.raises(AssertionError):
        bp.gaitwatch_events_warm(rec, None, 1, (ic[:-1], to))


def test_gaitmap_part_runs_both_scopes(tmp_path):
    """``--parts gaitmap`` end to end on 12 s of the simulated session (no PyShoe): gaitmap in
    its own venv and gaitwatch at both scopes. Needs gaitmap's venv (not a product dependency;
    bench/README.md: python3 -m venv /tmp/gaitmap-venv && /tmp/gaitmap-venv/bin/pip install
    gaitmap gaitmap-mad, or GAITMAP_PYTHON)."""
    import os

    import pytest

    bp = _bench_module()
    if not bp.GAITMAP_PY.exists():
        pytest.skip(f"gaitmap venv not found at {bp.GAITMAP_PY}: python3 -m venv /tmp/gaitmap-venv && "
                    "/tmp/gaitmap-venv/bin/pip install gaitmap gaitmap-mad (or set GAITMAP_PYTHON)")
    out_json = tmp_path / "gm.json"
    p = subprocess.run(
        [sys.executable, str(SCRIPT), "--parts", "gaitmap", "--gaitmap-sim-min", "0.2", "--gaitmap-repeat", "2",
         "--cache-dir", str(tmp_path / "cache"), "--jobs", "1", "--shared-data", str(tmp_path / "none"),
         "--json", str(out_json)],
        capture_output=True, text=True, timeout=600, cwd=str(ROOT), env={**os.environ})
    assert p.returncode == 0, p.stderr[-3000:]
    assert "(a)cli" in p.stdout and "(b)mem" in p.stdout
    rows = json.loads(out_json.read_text())["gaitmap"]["rows"]
    assert [r["kind"] for r in rows] == ["sim", "sim"]
    for r in rows:
        assert r["repeat"] == 2 and len(r["gw_mem_warm_all_s"]) == 2 and len(r["gm_warm_all_s"]) == 2
        for k in ("gw_s", "gw_events_s", "gw_mem_warm_s", "gw_mem_ev_warm_s", "gm_warm_s", "gm_cold_s"):
            assert r[k] > 0, k
        assert r["gw_steps"] > 0


def test_profile_replay_runs_on_given_files():
    """bench/profile_replay.py --files: the unprofiled CPU time and the repo's functions."""
    demo = ROOT / "fixtures" / "demo"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "profile_replay.py"), "--files",
                        str(demo / "demo_left_foot.csv"), str(demo / "demo_right_foot.csv"), "--top", "5"],
                       capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.startswith("unprofiled CPU ") and " ms (warm" in p.stdout.splitlines()[0]
    assert "pipeline/run.py" in p.stdout
