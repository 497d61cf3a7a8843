"""``pipeline.cmd_replay.replay_in_memory``: ``gaitwatch replay`` with a memory sink instead of
the files (the benchmark's same-scope comparison with gaitmap, issue 9). It must be the same
run: the same steps, in the same order, with the same times as steps.csv, and the same
summary as session.json, for any block size; a second call in the process gives the same."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import pytest

from pipeline import cli, cmd_replay
from pipeline.records import Alert, StepRecord

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEMO = [FIXTURES / "demo" / f"demo_{n}.csv" for n in ("left_foot", "right_foot", "right_shank")]


def _cli(paths, out: Path, *extra: str):
    args = cli.build_parser().parse_args(["replay", *map(str, paths), "--out", str(out), *extra])
    with contextlib.redirect_stdout(io.StringIO()):
        assert cmd_replay.run(args) == 0
    with open(out / "steps.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads((out / "session.json").read_text())


def _same_as_files(paths, tmp_path, block_s=None):
    rows, session = _cli(paths, tmp_path / "out", *(["--block-s", str(block_s)] if block_s else []))
    for _ in range(2):  # a second call in the same process (warm) gives the same
        records, summary = cmd_replay.replay_in_memory(paths, block_s=block_s)
        steps = [r for r in records if isinstance(r, StepRecord)]
        assert all(isinstance(r, (StepRecord, Alert)) for r in records)
        # steps.csv is sorted by (ic_s, sensor order); the same multiset of (sensor, ic, to)
        mem = sorted((r.sensor.sensor_id, f"{r.step.ic_s:.6f}", f"{r.step.to_s:.6f}".replace("nan", "")) for r in steps)
        fil = sorted((r["sensor_id"], r["ic_s"], r["to_s"]) for r in rows)
        assert mem == fil and len(steps) == len(rows) > 0
        assert summary.to_dict() == session  # session.json, whole


def test_demo_session(tmp_path):
    _same_as_files(DEMO, tmp_path)


@pytest.mark.parametrize("block_s", [0.038, 1.0])
def test_demo_any_block_size(tmp_path, block_s):
    _same_as_files(DEMO, tmp_path, block_s)


def test_pyshoe(tmp_path, shared_data_dir):
    from pyshoe import pyshoe_recording

    _same_as_files([pyshoe_recording("2017-11-27-11-13-41_running", tmp_path, shared_data_dir)], tmp_path)
