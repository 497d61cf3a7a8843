"""Takeover by checkpoint (issue 10), without NATS: a worker's unit run is stopped between two
checkpoints, a second run resumes from the committed checkpoint, and the records both runs
handed to the sinks are compared with one uninterrupted run of the same frames.

The stream messages are made like the gateway makes them (per-sensor batches of ``.gwcap``
records, both feet interleaved by time, stream sequence numbers from 1); the KV bucket is an
in-memory stand-in with the same compare-and-set rules. The real cluster path (NATS, a
SIGKILLed worker process, InfluxDB) is in tests/test_cluster_nats.py.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

import nats  # noqa: E402,F401  (nats-py is a product dependency: missing, the tests must fail, not skip)

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

import pipeline.sinks
from firmware_bridge.serial_capture import read_capture
from pipeline.cluster import ClusterSettings, dumps, loads, pack_records
from pipeline.config import load_config
from pipeline.records import Alert, StepRecord
from pipeline.sinks.memory_sink import MemorySink
from pipeline.worker import RESUME_TOL_S, UnitRun, Worker, _ABORT

from test_cluster_nats import DURATION_S, make_capture

BATCH_S = 0.05


class FakeKV:
    """The KV calls the run uses: get / update(last=) / create, revisions like JetStream's."""

    def __init__(self):
        self.data: dict[str, tuple[bytes, int]] = {}
        self.rev = 0
        self.history: list[dict] = []

    async def get(self, key):
        if key not in self.data:
            raise KeyNotFoundError
        v, r = self.data[key]
        return SimpleNamespace(value=v, revision=r)

    async def update(self, key, value, last=None):
        if key in self.data and self.data[key][1] != last:
            raise KeyWrongLastSequenceError
        self.rev += 1
        self.data[key] = (value, self.rev)
        self.history.append(loads(value))
        return self.rev

    async def create(self, key, value):
        if key in self.data:
            raise KeyWrongLastSequenceError
        return await self.update(key, value, last=None)


class FakeWorker:
    def __init__(self, tmp_path, kv, name, **kw):
        self.s = ClusterSettings(urls=["nats://unused"], **kw)
        self.out_dir = tmp_path / name
        self.config = load_config()
        from pipeline.sinks import add_sink_arguments
        import argparse

        p = argparse.ArgumentParser()
        add_sink_arguments(p)
        self.sink_args = p.parse_args([])
        self.worker_id = name
        self._kv = {"checkpoints": kv}
        self._loop = None


@pytest.fixture(scope="module")
def loop():
    lp = asyncio.new_event_loop()
    t = threading.Thread(target=lp.run_forever, daemon=True)
    t.start()
    yield lp
    lp.call_soon_threadsafe(lp.stop)
    t.join(5)


@pytest.fixture(scope="module")
def unit(tmp_path_factory):
    """One athlete, two feet: the spec a gateway registers and its stream messages in order."""
    d = tmp_path_factory.mktemp("resume")
    sensors, per_sensor = [], []
    for j, side in enumerate(("left", "right")):
        sid = f"zoe-{side[0]}"
        cap = make_capture(d / f"{sid}.gwcap", sensor_id=sid, side=side, athlete="zoe", seed=40 + j)
        meta, recs = read_capture(cap)
        from firmware_bridge.gateway import decoder_settings_from_meta

        sensors.append({"sensor_id": sid, "placement": "foot", "side": side, "athlete": "zoe",
                        "decoder": decoder_settings_from_meta(meta)})
        batches, cur = [], []
        for h, data in recs:
            if cur and h - cur[0][0] >= BATCH_S:
                batches.append(cur)
                cur = []
            cur.append((h, data))
        batches.append(cur)
        per_sensor.append([(b[0][0], sid, b, k == len(batches) - 1) for k, b in enumerate(batches)])
    msgs = []
    for seq, (_, sid, b, end) in enumerate(heapq.merge(*per_sensor, key=lambda m: m[0]), start=1):
        msgs.append((sid, pack_records([(round(h * 1e9), x) for h, x in b]), end, seq, None))  # None: a v1 (serial) batch
    spec = {"session_id": "r1", "athlete": "zoe", "start_wall_ns": 0, "sensors": sensors}
    return spec, msgs


@pytest.fixture(scope="module")
def ble_unit(unit):
    """The same athlete with gaitwatch BLE sensors: the frame stream's chunks as notifications in
    v2 batches (Gw-Ver 2, kind gaitwatch), the unit spec as ``gateway --ble`` registers it."""
    spec, msgs = unit
    keys = ("clock_warmup_s", "clock_window_s", "slip_threshold_samples")
    sensors = [{**x, "decoder": {"transport": "ble", "device": f"gw-{x['sensor_id']}", "kind": None,
                                 **{k: x["decoder"][k] for k in keys}}} for x in spec["sensors"]]
    return {**spec, "sensors": sensors}, [(*m[:4], ("2", "ble", "gaitwatch")) for m in msgs]


def run_unit(tmp_path, loop, kv, spec, msgs, name, *, resume=None, stop_after=None, checkpoint_s=0.0,
             last_checkpoint_at=None, preroll_s=10.0, unconfirmed=False):
    """Feed ``msgs`` to a UnitRun; with ``stop_after`` (a stream seq) abort it once it has processed
    that message, checkpoints stop after ``last_checkpoint_at`` (the worker 'dies' in between)."""
    sink = MemorySink()
    w = FakeWorker(tmp_path, kv, name, checkpoint_s=checkpoint_s, resume_preroll_s=preroll_s)
    w._loop = loop
    run = UnitRun("u", spec, worker=w, lease_rev=kv.rev + 1, resume=resume, unconfirmed=unconfirmed,
                  ckpt_rev=kv.data["u"][1] if "u" in kv.data else None)
    orig = pipeline.sinks.build_sinks
    pipeline.sinks.build_sinks = lambda *a, **k: [sink]
    try:
        run.thread.start()
        start = (resume or {}).get("resume_seq", 1)
        for m in msgs:
            if m[3] < start:
                continue
            if last_checkpoint_at is not None and m[3] == last_checkpoint_at + 2:
                # the checkpoint at the top of message last_checkpoint_at + 1 covered everything up to
                # last_checkpoint_at: no more checkpoints from here on
                deadline = time.monotonic() + 60
                while run._done_seq < last_checkpoint_at + 1 and time.monotonic() < deadline:
                    time.sleep(0.005)
                run._next_ckpt_s = math.inf
                w.s.checkpoint_s = 1e9
            run.q.put(m)
            if stop_after is not None and m[3] == stop_after:
                break
        if stop_after is not None:
            deadline = time.monotonic() + 60
            while run._done_seq < stop_after and time.monotonic() < deadline:
                time.sleep(0.01)
            run.abort()
        run.thread.join(120)
        assert not run.thread.is_alive()
    finally:
        pipeline.sinks.build_sinks = orig
    return run, sink


def steps(records):
    return [r for r in records if isinstance(r, StepRecord)]


@pytest.mark.parametrize("preroll_s", [10.0])  # (alignment warm-up 2.5 s + 10-step symmetry window)
@pytest.mark.parametrize("which", ["unit", "ble_unit"])  # serial (v1) and BLE (v2) batches
def test_resume_from_checkpoint_loses_nothing_after_the_horizon_and_writes_nothing_twice(tmp_path, loop, which,
                                                                                       request, preroll_s):
    spec, msgs = request.getfixturevalue(which)
    ref_run, ref = run_unit(tmp_path, loop, FakeKV(), spec, msgs, "ref")
    assert ref_run.ok and ref_run.checkpoints > 10
    ref_steps = steps(ref.records)
    assert len(ref_steps) > 50

    kv = FakeKV()
    n = len(msgs)
    last_ckpt, died_at = int(n * 0.55), int(n * 0.6)  # ~1.2 s of data processed after the last checkpoint
    a_run, a = run_unit(tmp_path, loop, kv, spec, msgs, "wa", stop_after=died_at, last_checkpoint_at=last_ckpt,
                        preroll_s=preroll_s)
    assert not a_run.ok
    ck = loads(kv.data["u"][0])
    committed = ck["committed"]
    assert ck["pending"] is None and last_ckpt <= committed["seq"] <= last_ckpt + 1 < died_at
    assert committed["resume_seq"] < last_ckpt  # pre-roll before the horizon
    horizon = committed["horizon_s"]

    # the dead run handed exactly the uninterrupted run's records up to its committed horizon
    a_steps = steps(a.records)
    assert [(r.step.sensor_id, r.step.ic_s) for r in a_steps] == \
        [(r.step.sensor_id, r.step.ic_s) for r in ref_steps if r.step.ic_s <= horizon[r.step.sensor_id]]
    assert all(r.step.ic_s <= horizon[r.step.sensor_id] for r in a_steps)

    b_run, b = run_unit(tmp_path, loop, kv, spec, msgs, "wb", resume=committed, preroll_s=preroll_s)
    assert b_run.ok
    b_steps = steps(b.records)
    # nothing twice: the new owner starts after the horizon, per sensor
    assert all(r.step.ic_s > horizon[r.step.sensor_id] for r in b_steps)
    assert b_run.held.suppressed > 0  # the pre-roll recomputed (and dropped) committed steps
    # nothing lost: after the horizon, the same steps as the uninterrupted run (same count per
    # sensor, IC within 3 ms: a fresh clock fit and alignment estimate), one new segment
    for sid in horizon:
        want = [r for r in ref_steps if r.step.sensor_id == sid and r.step.ic_s > horizon[sid]]
        got = [r for r in b_steps if r.step.sensor_id == sid]
        assert len(got) == len(want) > 5, sid
        d_ic = np.abs([g.step.ic_s - x.step.ic_s for g, x in zip(got, want)])
        d_to = np.abs([g.step.to_s - x.step.to_s for g, x in zip(got, want)])
        assert d_ic.max() < 3e-3 and d_to.max() < 3e-3, (sid, d_ic.max(), d_to.max())
        assert {g.step.segment for g in got} == {x.step.segment + 1 for x in want}
        # per-step metrics: the alignment is estimated again from the pre-roll (strike angle and
        # pronation differ by hundredths of a degree); none appears or vanishes (NaN pattern)
        for name in (m.name for m in want[0].metrics):
            gv, wv = (np.array([r.value(name) for r in x]) for x in (got, want))
            assert np.array_equal(np.isnan(gv), np.isnan(wv)), (sid, name)
            ok = np.isnan(wv) | (np.abs(gv - wv) <= 0.2 + 0.01 * np.abs(wv))
            assert ok.all(), (sid, name, np.nanmax(np.abs(gv - wv)))
    # the alerts: none the dead run had handed out is written again
    t_h = committed["t_horizon_s"]
    assert all(r.t_s > t_h for r in b.records if isinstance(r, Alert))
    assert b.summary.extra["resumed"]["from_stream_seq"] == committed["resume_seq"]
    assert min(r.step.ic_s for r in b_steps) - max(horizon.values()) < 1.0  # resumed right at the horizon
    assert RESUME_TOL_S < 0.25


def test_a_stale_owner_cannot_write_a_checkpoint_after_the_takeover(tmp_path, loop, unit):
    """The new owner rewrites the checkpoint key (compare-and-set) when it takes the unit: the old
    owner's next checkpoint fails and it stops (its held records are dropped)."""
    spec, msgs = unit
    kv = FakeKV()
    w = FakeWorker(tmp_path, kv, "old", checkpoint_s=0.0)
    w._loop = loop
    run = UnitRun("u", spec, worker=w, lease_rev=1, ckpt_rev=None)
    orig = pipeline.sinks.build_sinks
    sink = MemorySink()
    pipeline.sinks.build_sinks = lambda *a, **k: [sink]
    try:
        run.thread.start()
        for m in msgs[:40]:
            run.q.put(m)
        deadline = time.monotonic() + 60
        while run._done_seq < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert run.checkpoints > 0
        # another worker takes the unit: rewrites the key
        for _ in range(100):  # (the old owner may be storing a checkpoint right now: compare-and-set again)
            v, rev = kv.data["u"]
            try:
                asyncio.run_coroutine_threadsafe(kv.update("u", dumps({**loads(v), "owner": "new/9"}), last=rev),
                                                 loop).result()
                break
            except KeyWrongLastSequenceError:
                time.sleep(0.01)
        for m in msgs[40:60]:
            run.q.put(m)
        run.thread.join(60)
        assert not run.thread.is_alive() and not run.ok
        assert loads(kv.data["u"][0])["owner"] == "new/9"
    finally:
        pipeline.sinks.build_sinks = orig
        if run.thread.is_alive():
            run.q.put(_ABORT)


def test_a_worker_killed_while_committing_is_resumed_after_its_pending_batch(tmp_path, loop, unit):
    """Died after handing a batch to the sinks but before storing it as committed: the key holds
    {committed: previous, pending: that batch}. The new owner resumes after the *pending* horizon:
    nothing written twice (the batch went to the sinks; what InfluxDB had not acknowledged is in
    the dead worker's spool directory)."""
    spec, msgs = unit
    _, ref = run_unit(tmp_path, loop, FakeKV(), spec, msgs, "ref2")
    ref_steps = steps(ref.records)
    kv = FakeKV()
    n = len(msgs)
    _, a = run_unit(tmp_path, loop, kv, spec, msgs, "wa2", stop_after=int(n * 0.6), last_checkpoint_at=int(n * 0.55))
    # the state between 'release' and 'store committed' of the last checkpoint
    last = loads(kv.data["u"][0])["committed"]
    mid = next(h for h in kv.history if h.get("pending") == last)
    asyncio.run_coroutine_threadsafe(kv.update("u", dumps(mid), last=kv.data["u"][1]), loop).result()
    take = asyncio.run_coroutine_threadsafe(
        Worker._take_checkpoint(SimpleNamespace(), {"checkpoints": kv}, "u", "wb2/7"), loop).result()
    resume, rev, unconfirmed = take
    assert unconfirmed and resume == last and loads(kv.data["u"][0])["owner"] == "wb2/7"
    b_run, b = run_unit(tmp_path, loop, kv, spec, msgs, "wb2", resume=resume, unconfirmed=unconfirmed)
    assert b_run.ok and b.summary.extra["resumed"]["unconfirmed"]
    both = [(r.step.sensor_id, r.step.ic_s) for r in steps(a.records) + steps(b.records)]
    assert len(both) == len(ref_steps)  # every step once
    for sid in last["horizon_s"]:
        got = sorted(t for s_, t in both if s_ == sid)
        want = [r.step.ic_s for r in ref_steps if r.step.sensor_id == sid]
        assert np.abs(np.subtract(got, want)).max() < 3e-3


def test_a_batch_format_this_worker_does_not_know_fails_the_unit_instead_of_being_misdecoded(tmp_path, loop, unit):
    """v1 (serial, no Gw-Ver) and v2 (BLE) are read; a newer version stops the unit with a message
    naming the cause, and a BLE batch for a sensor registered as serial is refused too."""
    spec, msgs = unit
    sid = spec["sensors"][0]["sensor_id"]
    for src, why in ((("3", "ble", "gaitwatch"), "upgrade the worker"), (("2", "ble", "gaitwatch"), "serial sensor")):
        first = next(m for m in msgs if m[0] == sid)
        run, sink = run_unit(tmp_path, loop, FakeKV(), spec, [(*first[:4], src)], f"v{src[0]}")
        assert not run.ok and why in run.error, run.error
        assert not steps(sink.records)


def test_ble_batches_of_a_frame_stream_give_the_steps_of_the_serial_batches(tmp_path, loop, unit, ble_unit):
    """The same bytes as gaitwatch BLE notifications (v2, decoded by live's FrameNotifications) or as
    a serial byte stream (v1, PortDecoder): the same step records."""
    _, serial = run_unit(tmp_path, loop, FakeKV(), *unit, "ser")
    _, ble = run_unit(tmp_path, loop, FakeKV(), *ble_unit, "ble")
    key = [(r.step.sensor_id, r.step.ic_s, r.step.to_s, r.step.segment) for r in steps(serial.records)]
    assert len(key) > 50 and key == [(r.step.sensor_id, r.step.ic_s, r.step.to_s, r.step.segment)
                                     for r in steps(ble.records)]
