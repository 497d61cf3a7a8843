"""Replay: several recordings merged in time order, optional real-time pacing (firmware_bridge/replay.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import synthetic_signals

from firmware_bridge.recording import Recording
from firmware_bridge.replay import item_end_s, item_start_s, merge_items, pace, replay
from pipeline.records import Gap, SampleBlock


def _recs(write_recording, tmp_path):
    t, acc, gyr = synthetic_signals(3000, fs_hz=500.0)
    a = write_recording("a", t_s=t, acc=acc, gyr=gyr, sidecar={"sensor_id": "a", "placement": "foot", "side": "left"})
    keep = np.setdiff1d(np.arange(3000), np.r_[1200:1400])  # a 0.4 s gap in b
    tb = t[keep] + 0.25  # b starts later
    b = write_recording("b", t_s=tb, acc=acc[keep], sidecar={"sensor_id": "b", "placement": "shank", "side": "right"})
    c = write_recording("c", t_s=t, acc=acc, sidecar={"sensor_id": "c", "placement": "foot", "side": "right"})
    return [Recording(a, block_s=0.3), Recording(b, block_s=0.5), Recording(c, block_s=0.3)]


def test_merge_is_time_ordered_and_keeps_each_sensors_order(write_recording, tmp_path):
    recs = _recs(write_recording, tmp_path)
    merged = list(replay(recs))
    starts = [item_start_s(it) for it in merged]
    assert starts == sorted(starts)
    for r in recs:
        own = [it for it in merged if it.sensor_id == r.info.sensor_id]
        ref = list(Recording(r.path, block_s=r.block_s).items())
        assert len(own) == len(ref)
        for x, y in zip(own, ref):
            if isinstance(x, Gap):
                assert x == y
            else:
                assert (x.first_index, x.segment, x.t0_s) == (y.first_index, y.segment, y.t0_s)
                assert np.array_equal(x.acc_ms2, y.acc_ms2)
    # equal start times: the sensor listed first comes first (a before c, every block)
    ac = [it.sensor_id for it in merged if it.sensor_id in "ac"]
    assert ac == ["a", "c"] * (len(ac) // 2)
    assert sum(isinstance(it, Gap) for it in merged) == 1


def test_merge_order_is_deterministic_for_reversed_inputs(write_recording, tmp_path):
    recs = _recs(write_recording, tmp_path)
    fwd = [(it.sensor_id, item_start_s(it)) for it in replay(recs)]
    rev = [(it.sensor_id, item_start_s(it)) for it in replay(recs[::-1])]
    assert sorted(fwd) == sorted(rev)
    assert [x for x in rev if x[0] in "ac"][:2] == [("c", 0.0), ("a", 0.0)]  # ties by the given order


def test_speed_paces_blocks_against_the_monotonic_clock(write_recording, tmp_path):
    t, acc, _ = synthetic_signals(1000, fs_hz=500.0)  # 2 s of signal
    rec = Recording(write_recording("p", t_s=t, acc=acc), block_s=0.1)
    t0 = time.monotonic()
    seen = []
    for it in replay([rec], speed=8.0):
        seen.append((time.monotonic() - t0, item_end_s(it)))
    elapsed = time.monotonic() - t0
    assert elapsed == pytest.approx((seen[-1][1] - 0.0) / 8.0, abs=0.08)  # ~0.25 s
    # no item is released before its time
    assert all(wall >= sig / 8.0 - 0.005 for wall, sig in seen)
    t0 = time.monotonic()
    list(replay([Recording(rec.path, block_s=0.1)]))
    assert time.monotonic() - t0 < elapsed / 2  # default: as fast as possible


def test_pace_rejects_bad_speed():
    with pytest.raises(ValueError, match="speed must be > 0"):
        list(pace(iter([]), speed=0.0))


def test_merge_items_accepts_plain_iterables():
    acc = np.zeros((10, 3))
    x = [SampleBlock(sensor_id="x", fs_hz=10.0, t0_s=0.0, first_index=i, acc_ms2=acc) for i in (0, 10, 20)]
    y = [SampleBlock(sensor_id="y", fs_hz=10.0, t0_s=0.5, first_index=i, acc_ms2=acc) for i in (0, 10)]
    got = [(b.sensor_id, item_start_s(b)) for b in merge_items([x, y])]
    assert got == [("x", 0.0), ("y", 0.5), ("x", 1.0), ("y", 1.5), ("x", 2.0)]
