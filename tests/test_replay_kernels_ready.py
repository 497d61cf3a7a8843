"""``gaitwatch replay`` readies the compiled kernels once per process (issue 9:
``pipeline.cmd_replay._ready_kernels``; a repeated warm-up was ~20-190 us at the start of
every later replay in the process). Each module's ``warm_up`` runs on the first replay, not on
later ones; a warm-up that fails is tried again; the records of a later replay are the same
as the first one's (and as with the warm-ups run every time, the code it replaced)."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors import alignment, steps_kernels
from firmware_bridge import recording
from pipeline import cmd_replay

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEMO = [FIXTURES / "demo" / f"demo_{n}.csv" for n in ("left_foot", "right_foot", "right_shank")]
MODULES = (recording, alignment, steps_kernels)


def _counting(monkeypatch, fail_once=None):
    calls = []
    for m in MODULES:
        real = m.warm_up

        def counted(m=m, real=real):
            calls.append(m.__name__)
            if fail_once == m.__name__ and calls.count(m.__name__) == 1:
                raise RuntimeError("no compiler")
            real()
        monkeypatch.setattr(m, "warm_up", counted)
    monkeypatch.setattr(cmd_replay, "_KERNELS_READY", set())
    return calls


def _key(records):
    return [(type(r).__name__, repr(r)) for r in records]


def test_warm_up_once_per_process_same_records(monkeypatch):
    calls = _counting(monkeypatch)
    first = cmd_replay.replay_in_memory(DEMO)
    assert sorted(calls) == sorted(m.__name__ for m in MODULES)
    second = cmd_replay.replay_in_memory(DEMO[:2], block_s=0.5)
    third = cmd_replay.replay_in_memory(DEMO)
    assert len(calls) == 3  # not again
    assert _key(first[0]) == _key(third[0]) and first[1].to_dict() == third[1].to_dict()
    monkeypatch.setattr(cmd_replay, "_ready_kernels",
                        lambda: [m.warm_up() for m in MODULES])  # the replaced code: every time
    again = cmd_replay.replay_in_memory(DEMO[:2], block_s=0.5)
    assert _key(again[0]) == _key(second[0]) and again[1].to_dict() == second[1].to_dict()


def test_failed_warm_up_is_tried_again(monkeypatch):
    calls = _counting(monkeypatch, fail_once="detectors.alignment")
    with pytest.raises(RuntimeError, match="no compiler"):
        cmd_replay.replay_in_memory(DEMO[:1])
    cmd_replay.replay_in_memory(DEMO[:1])
    assert calls.count("detectors.alignment") == 2 and calls.count("firmware_bridge.recording") == 1
