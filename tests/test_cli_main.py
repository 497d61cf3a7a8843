"""The `gaitwatch` entry point: installed console script, every subcommand registered, the demo run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import SUBCOMMANDS

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "fixtures" / "demo"


def test_console_script_is_installed_and_lists_every_subcommand():
    exe = shutil.which("gaitwatch", path=str(Path(sys.executable).parent))
    assert exe, "the gaitwatch console script is not installed in this environment (pip install -e .)"
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for name in SUBCOMMANDS:
        assert f"    {name} " in proc.stdout or f"    {name}\n" in proc.stdout, name


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(name, run_cli):
    proc = run_cli(name, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: gaitwatch {name}"), proc.stderr


def test_no_subcommand_is_a_usage_error(run_cli):
    proc = run_cli()
    assert proc.returncode == 2 and "usage: gaitwatch" in proc.stderr


def test_the_bundled_demo_run_replays(tmp_path, run_cli):
    """What `make demo` runs: every CSV in fixtures/demo except the simulator's *_truth.csv."""
    recs = sorted(p for p in DEMO.glob("*.csv") if not p.name.endswith("_truth.csv"))
    assert len(recs) >= 3, f"demo recordings missing in {DEMO}"
    proc = run_cli("replay", *recs, "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    d = json.loads((tmp_path / "session.json").read_text())
    assert d["status"] == "complete" and len(d["sensors"]) == len(recs)
    assert {s["placement"] for s in d["sensors"]} == {"foot", "shank"}
    assert {s["side"] for s in d["sides"]} == {"left", "right"}
    assert all(s["running"]["steps"] > 0 for s in d["sensors"])
    assert "per side" in proc.stdout
