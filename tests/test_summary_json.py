"""SessionSummary.to_dict (session.json) is ``_clean(dataclasses.asdict(summary))`` computed in
one pass (issue 9: asdict's deep copy was a fixed cost of every replay). Same values, same
types and same key order - hence the same session.json text - for real summaries (demo
session with alerts and form metrics, PyShoe, an accelerometer-only and a failed run) and
for odd leaves (numpy scalars, dict subclasses, named tuples, NaN/inf, nested dataclasses)."""

from __future__ import annotations

import json
import math
from collections import OrderedDict, namedtuple
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.recording import open_recordings
from firmware_bridge.replay import replay
from pipeline.config import load_config
from pipeline.engine import Engine
from pipeline.run import run_session
from pipeline.records import SessionInfo
from pipeline.sinks.memory_sink import MemorySink
from pipeline.summary import SessionSummary, _clean, _jsonable

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _reference(x):
    return _clean(asdict(x))


def _same(a, b):
    """Equal with the same types all the way down (1 == 1.0 == True would hide a change)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def _summary(paths, config=None, **kw) -> SessionSummary:
    config = config or load_config()
    recs = open_recordings(paths, config=config, block_s=10.0, **kw)
    sink = MemorySink()
    return run_session(replay(recs), Engine([r.info for r in recs], config=config), [sink],
                       session=SessionInfo(session_id="t", athlete="a", start_wall_ns=1_700_000_000_123_456_789),
                       source_stats=lambda: {r.info.sensor_id: r.stats for r in recs}, extra={"block_s": 10.0})


@pytest.mark.parametrize("paths", [
    ["demo/demo_left_foot.csv", "demo/demo_right_foot.csv", "demo/demo_right_shank.csv"],
    ["heel/heel_left_foot.csv", "heel/heel_right_foot.csv"],
    ["forefoot/forefoot_right_foot.csv"],
])
def test_real_summaries(paths):
    s = _summary([FIXTURES / p for p in paths])
    got, ref = s.to_dict(), _reference(s)
    _same(got, ref)
    assert json.dumps(got, indent=2, allow_nan=False) == json.dumps(ref, indent=2, allow_nan=False)


def test_pyshoe_summary(tmp_path, shared_data_dir):
    from pyshoe import pyshoe_recording

    s = _summary([pyshoe_recording("2017-11-27-11-13-41_running", tmp_path, shared_data_dir)])
    _same(s.to_dict(), _reference(s))


def test_accelerometer_only_and_failed_runs(tmp_path, write_recording):
    t = np.arange(0, 12, 1 / 100)
    acc = np.column_stack([np.sin(7 * t), np.cos(5 * t), 9.80665 + 3 * np.sin(2 * np.pi * 2.8 * t)])
    p = write_recording("acc", t_s=t, acc=acc, sidecar={"sensor_id": "acc", "placement": "shank", "side": "left"})
    s = _summary([p])
    _same(s.to_dict(), _reference(s))
    failed = SessionSummary(session_id="f", athlete="", start_utc="x", duration_s=math.nan, status="failed",
                            error="boom", sensors=(), sides=())
    _same(failed.to_dict(), _reference(failed))


NT = namedtuple("NT", "a b")


@dataclass(frozen=True)
class Inner:
    x: float
    y: tuple = ()


@dataclass(frozen=True)
class Outer:
    inner: Inner
    items: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def test_odd_leaves():
    odd = Outer(
        inner=Inner(1 / 3, (np.float64(2 / 3), np.int64(7), np.float32(0.1), math.inf, -math.inf, math.nan, True)),
        items=[Inner(-0.0), NT(1e-7, 123456.1234567), None, "é", [np.bool_(True), 2**70]],
        extra=OrderedDict([("b", {"n": np.float64("nan"), "k": Inner(5e-7)}), ("a", (1, 2.5))]),
    )
    _same(_jsonable(odd), _reference(odd))


# ---- the session medians' small-run path (summary._StepMedian)
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as hs  # noqa: E402

from pipeline.median import FOLD_EVERY, RESOLUTION, BinnedMedian  # noqa: E402
from pipeline.summary import _StepMedian  # noqa: E402

_values = hs.lists(hs.one_of(hs.floats(-500.0, 500.0), hs.floats(allow_nan=True, allow_infinity=True),
                             hs.sampled_from([0.005, -0.005, 0.015, 1e300, -1e300, 2.5e-3, 117.125])),
                   min_size=0, max_size=FOLD_EVERY + 40)


@settings(max_examples=400, deadline=None)
@given(values=_values, res=hs.sampled_from(sorted(set(RESOLUTION.values()))), split=hs.integers(0, FOLD_EVERY + 40))
def test_step_median_equals_binned_median(values, res, split):
    fast, ref = _StepMedian(res), BinnedMedian(res)
    for i, v in enumerate(values):
        fast.add(v)
        ref.add(v)
        if i == split:  # asked mid-run too: the same, and nothing changes for what follows
            assert repr(fast.median()) == repr(ref.median())
    assert repr(fast.median()) == repr(ref.median())
    assert fast.count == ref.count
