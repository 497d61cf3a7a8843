"""Worker: consumes gateway frames from JetStream and runs the engine and sinks of ``live`` (issue 10).

Assignment. The unit of work is one athlete of one gateway session (all of that athlete's
sensors together, so the left/right symmetry metrics see both feet). A worker owns a unit
while it holds the unit's *lease*: a key in the KV bucket ``<kv_prefix>_leases`` created
with ``create`` (atomic: only one worker can create it) and renewed every ``poll_s`` with
``update(last=revision)`` (compare-and-set: a worker that lost the key cannot renew it). The
bucket has a TTL of ``lease_ttl_s``: a worker that dies stops renewing and its leases vanish
after at most ``lease_ttl_s``; the other workers look for unowned units every ``poll_s``. A
worker takes at most ``ceil(open units / live workers)`` units (live workers: heartbeats in
``<kv_prefix>_workers``, same TTL), and a worker holding more than that (a worker joined)
gives its newest unit back, at most one per ``lease_ttl_s``; so units spread over the
workers and adding a worker spreads the load (the moved unit is replayed by its new owner). Every sensor's frames are therefore processed by exactly one worker at
a time (a worker that loses its lease stops that unit and discards its unfinished output).

Order and takeover. A unit is read with one pull consumer filtered on the unit's subjects,
from the unit's first message, in stream order (each sensor's batches in the order the
gateway sealed them; a repeated ``Gw-Seq`` is dropped, a missing one becomes a lost-port
marker, i.e. a :class:`~pipeline.records.Gap` in the records). A worker that takes over a
unit replays it from its first frame through a *fresh* decoder and engine: the detectors
never mix the state of two workers, and the records come out identical to a single
process (``gaitwatch live --from-capture`` of the same bytes). Failover time is at most
``lease_ttl_s + poll_s`` plus the replay, which runs at engine speed (hundreds of times
real time per sensor).

Delivery is at-least-once: after a takeover the records the dead worker had already
written are written again, identical (same series, tags and timestamps), and InfluxDB
overwrites a point with the same measurement, tag set and timestamp, so the stored data
do not change. File outputs are written to a staging directory and moved to
``<out>/<session>/<athlete>/`` only when the unit is complete and the lease still held.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from pipeline.cluster import ClusterSettings, dumps, ensure_layout, loads, pack_records, unpack_records
from pipeline.records import SensorInfo, SessionInfo

log = logging.getLogger(__name__)

_ABORT = object()


class _Aborted(Exception):
    pass


class UnitRun:
    """One unit on this worker: a thread running :func:`pipeline.run.run_session` over the
    decoded frames the fetch task puts in ``q``."""

    def __init__(self, unit: str, spec: dict[str, Any], *, worker: "Worker", lease_rev: int):
        self.unit, self.spec, self.worker, self.lease_rev = unit, spec, worker, lease_rev
        self.q: queue.Queue = queue.Queue()
        self.sensor_ids = [s["sensor_id"] for s in spec["sensors"]]
        self.last_stream_seq = 0
        self.msgs = 0
        self.duplicates = 0
        self.missing = 0
        self.seen: dict[str, int] = {}
        self.fetched_end: set[str] = set()
        self.aborted = threading.Event()
        self.finished = threading.Event()
        self.ok = False
        self.error = ""
        self.started_s = time.monotonic()
        self.thread = threading.Thread(target=self._main, name=f"unit-{unit}", daemon=True)

    def abort(self) -> None:
        self.aborted.set()
        self.q.put(_ABORT)

    def _items(self):
        from firmware_bridge.protocol_stream import PortDecoder

        decoders = {}
        for s in self.spec["sensors"]:
            kw = {k: v for k, v in (s.get("decoder") or {}).items()
                  if k in ("fmt", "text_fs_hz", "text_acc_unit", "text_gyr_unit", "clock_warmup_s",
                           "clock_window_s", "slip_threshold_samples")}
            decoders[s["sensor_id"]] = PortDecoder(name=f"nats {self.unit}/{s['sensor_id']}",
                                                   sensor_id=s["sensor_id"], host_t0_s=0.0, **kw)
        ended: set[str] = set()
        while ended != set(decoders):
            m = self.q.get()
            if m is _ABORT:
                raise _Aborted(self.unit)
            sid, body, end = m
            dec = decoders[sid]
            for host_s, data in unpack_records(body):
                if data is None:
                    yield from dec.interrupted()
                else:
                    yield from dec.feed(data, host_s=host_s)
            if end:
                yield from dec.flush()
                ended.add(sid)
        self.health = {sid: d.health() for sid, d in decoders.items()}

    def _main(self) -> None:
        from pipeline.engine import Engine
        from pipeline.run import run_session
        from pipeline.sinks import build_sinks

        w = self.worker
        final = w.out_dir / self.unit.replace(".", "/")
        staging = w.out_dir / ".staging" / f"{self.unit}.{w.worker_id}"
        shutil.rmtree(staging, ignore_errors=True)
        sensors = [SensorInfo(**{k: v for k, v in s.items() if k != "decoder"}) for s in self.spec["sensors"]]
        session = SessionInfo(session_id=self.spec["session_id"], athlete=self.spec["athlete"],
                              start_wall_ns=int(self.spec["start_wall_ns"]))
        from pipeline.sinks.influx import section_from_args

        over: dict[str, Any] = {"out": staging}
        if section_from_args(w.sink_args, w.config) is not None:
            # one InfluxDB spool per unit run: two athletes on one worker must not share a spool
            spool = Path(getattr(w.sink_args, "influx_spool_dir", None) or w.out_dir / ".influx-spool")
            over["influx_spool_dir"] = str(spool / f"{self.unit}.{w.worker_id}")
        args = argparse.Namespace(**{**vars(w.sink_args), **over})
        try:
            engine = Engine(sensors, config=w.config)
            sinks = build_sinks(args, w.config, session, sensors)
            extra = {"inputs": [f"nats:{self.unit}"], "config": w.config.source, "worker": w.worker_id}
            run_session(self._items(), engine, sinks, session=session, extra=extra)
            if not self.aborted.is_set():
                final.mkdir(parents=True, exist_ok=True)
                for f in staging.iterdir():
                    os.replace(f, final / f.name)
                self.ok = True
        except _Aborted:
            log.warning("unit %s: lease lost, output discarded", self.unit)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("unit %s failed: %s", self.unit, self.error)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            self.finished.set()


class Worker:
    def __init__(self, settings: ClusterSettings, *, out_dir: str | Path, config=None,
                 sink_args: argparse.Namespace | None = None, worker_id: str | None = None):
        from pipeline.config import load_config

        self.s = settings
        self.out_dir = Path(out_dir)
        self.config = config if config is not None else load_config()
        if sink_args is None:
            from pipeline.sinks import add_sink_arguments

            p = argparse.ArgumentParser()
            add_sink_arguments(p)
            sink_args = p.parse_args([])
        self.sink_args = sink_args
        self.worker_id = worker_id or f"{os.uname().nodename}-{os.getpid()}"
        self.runs: dict[str, UnitRun] = {}
        self.completed: list[str] = []
        self.shed = 0
        self._views: dict[str, dict[str, Any]] = {"units": {}, "workers": {}}
        self._synced: dict[str, bool] = {}
        self._last_shed_s = -math.inf

    # -- fetch ------------------------------------------------------------------------------
    async def _fetch(self, js, run: UnitRun) -> None:
        import nats.errors
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        subject = self.s.subject(run.unit)
        sub = None
        while not run.aborted.is_set() and run.fetched_end != set(run.sensor_ids):
            if run.q.qsize() > 256:  # bounded memory: let the engine catch up
                await asyncio.sleep(0.02)
                continue
            try:
                if sub is None:
                    start = run.last_stream_seq + 1
                    cfg = ConsumerConfig(ack_policy=AckPolicy.NONE, filter_subject=subject,
                                         deliver_policy=DeliverPolicy.BY_START_SEQUENCE if run.last_stream_seq
                                         else DeliverPolicy.ALL,
                                         opt_start_seq=start if run.last_stream_seq else None,
                                         inactive_threshold=60.0, mem_storage=True, num_replicas=1)
                    sub = await js.pull_subscribe(subject, stream=self.s.stream, config=cfg)
                msgs = await sub.fetch(batch=64, timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            except Exception as exc:  # node lost, consumer gone: a new one from the next sequence
                log.info("unit %s: consumer error %s, recreating", run.unit, exc)
                if sub is not None:
                    try:
                        await sub.unsubscribe()
                    except Exception:
                        pass
                sub = None
                await asyncio.sleep(0.5)
                continue
            for m in msgs:
                seq = m.metadata.sequence.stream
                if seq <= run.last_stream_seq:
                    continue
                run.last_stream_seq = seq
                hdr = m.headers or {}
                sid = hdr.get("Gw-Sensor", "")
                if sid not in run.sensor_ids:
                    continue
                gseq = int(hdr.get("Gw-Seq", "0"))
                expected = run.seen.get(sid, -1) + 1
                if gseq < expected:
                    run.duplicates += 1
                    continue
                if gseq > expected:  # batches missing (stream trimmed): the decoder restarts after a gap
                    run.missing += gseq - expected
                    run.q.put((sid, pack_records([(0, None)]), False))
                run.seen[sid] = gseq
                run.msgs += 1
                end = hdr.get("Gw-End") == "1"
                if end:
                    run.fetched_end.add(sid)
                run.q.put((sid, m.data, end))
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:
                pass

    async def _watch(self, kv, name: str) -> None:
        """Mirror a KV bucket into ``self._views[name]`` (one long-lived watcher, rebuilt on errors).
        Expired heartbeats leave no delete marker: liveness is judged by their ``t_wall_s``."""
        while True:
            try:
                w = await kv[name].watchall()
                fresh: dict[str, Any] = {}
                initial = True
                async for e in w:
                    if e is None:  # end of the initial values
                        initial = False
                        self._views[name] = fresh
                        self._synced[name] = True
                        continue
                    view = fresh if initial else self._views[name]
                    if e.operation in ("DEL", "PURGE") or not e.value:
                        view.pop(e.key, None)
                    else:
                        view[e.key] = loads(e.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("worker %s: watcher of %s: %r", self.worker_id, name, exc)
            await asyncio.sleep(0.5)

    # -- main loop --------------------------------------------------------------------------
    async def run(self, stop: threading.Event, *, max_units: int | None = None) -> None:
        import nats

        nc = await nats.connect(**self.s.connect_kw())
        js = nc.jetstream(timeout=max(1.0, min(5.0, self.s.lease_ttl_s / 3)))  # a stuck call must not outlive the lease
        while True:
            try:
                kv = await ensure_layout(js, self.s)
                break
            except Exception as exc:  # cluster not ready: keep trying until stopped
                log.warning("worker %s: cluster layout not reachable yet: %s", self.worker_id, exc)
                if stop.is_set():
                    await nc.close()
                    return
                await asyncio.sleep(1.0)
        tasks: dict[str, asyncio.Task] = {}
        watchers = [asyncio.create_task(self._watch(kv, name)) for name in ("units", "workers")]
        try:  # be counted before taking a share
            await kv["workers"].put(self.worker_id, dumps(self.status()))
        except Exception as exc:  # a bucket just created may not answer yet: the ticks retry
            log.info("worker %s: first heartbeat: %s", self.worker_id, exc)
        await asyncio.sleep(2 * self.s.poll_s)
        try:
            while not stop.is_set():
                try:
                    await self._tick(js, kv, tasks)
                except Exception as exc:  # cluster hiccup: next tick
                    log.info("worker %s tick: %r", self.worker_id, exc)
                if max_units is not None and len(self.completed) >= max_units and not self.runs:
                    break
                await asyncio.sleep(self.s.poll_s)
        finally:
            for u, run in list(self.runs.items()):  # graceful stop: give the units back at once
                run.abort()
                try:
                    await kv["leases"].delete(u)
                except Exception:
                    pass
            for t in [*tasks.values(), *watchers]:
                t.cancel()
            try:
                await kv["workers"].delete(self.worker_id)
            except Exception:
                pass
            await nc.close()

    async def _tick(self, js, kv, tasks) -> None:
        from nats.js.errors import KeyWrongLastSequenceError

        # renew leases (compare-and-set); a lost lease stops the unit here
        for u, run in list(self.runs.items()):
            if run.finished.is_set():
                if run.ok:  # keep the finished run (and its lease) until "done" is stored: no re-take meanwhile
                    spec = dict(run.spec, done=True, done_by=self.worker_id)
                    try:
                        await kv["units"].put(u, dumps(spec))
                    except Exception as exc:
                        log.info("worker %s: marking %s done: %r (retrying)", self.worker_id, u, exc)
                        try:
                            run.lease_rev = await kv["leases"].update(u, dumps({"worker": self.worker_id}),
                                                                      last=run.lease_rev)
                        except Exception:
                            pass
                        continue
                    self._views["units"][u] = spec
                    self.completed.append(u)
                del self.runs[u]
                tasks.pop(u, None)
                try:
                    await kv["leases"].delete(u)
                except Exception:
                    pass
                continue
            try:
                run.lease_rev = await kv["leases"].update(u, dumps({"worker": self.worker_id}), last=run.lease_rev)
            except KeyWrongLastSequenceError:
                pass
            except Exception as exc:  # no answer (leader election): the lease may still be ours, retry next tick
                log.info("worker %s: renewing %s: %r", self.worker_id, u, exc)
                continue
            else:
                continue
            try:  # a renewal that timed out on our side may have been applied: then the lease is still ours
                e = await kv["leases"].get(u)
                if (loads(e.value) or {}).get("worker") == self.worker_id:
                    run.lease_rev = e.revision
                    continue
            except Exception:
                pass
            log.warning("worker %s: lease of %s lost", self.worker_id, u)
            run.abort()
            del self.runs[u]
            t = tasks.pop(u, None)
            if t is not None:
                t.cancel()
        try:
            await kv["workers"].put(self.worker_id, dumps(self.status()))
        except Exception as exc:  # a missed heartbeat is not fatal: claiming goes on
            log.info("worker %s: heartbeat: %r", self.worker_id, exc)
        # look for work: the units and workers buckets are mirrored by watchers (no per-tick scans)
        if not (self._synced.get("units") and self._synced.get("workers")):
            return
        now = time.time()
        live = [w for w, v in self._views["workers"].items()
                if w == self.worker_id or now - float((v or {}).get("t_wall_s", 0)) < self.s.lease_ttl_s]
        n_workers = max(1, len(live))
        open_units = [(u, spec) for u, spec in sorted(self._views["units"].items()) if spec and not spec.get("done")]
        target = math.ceil(len(open_units) / n_workers)
        now = time.monotonic()
        if len(self.runs) > target and now - self._last_shed_s > self.s.lease_ttl_s:
            # more than our share (a worker joined): give the newest unit back; its new owner replays it
            u = max(self.runs, key=lambda k: self.runs[k].started_s)
            self.runs.pop(u).abort()
            t = tasks.pop(u, None)
            if t is not None:
                t.cancel()
            await kv["leases"].delete(u)
            self._last_shed_s = now
            self.shed += 1
            log.info("worker %s: gave %s back (%d units for %d workers)", self.worker_id, u, len(open_units), n_workers)
            return
        for u, spec in open_units:
            if u in self.runs:
                continue
            if len(self.runs) >= target:
                break
            try:
                rev = await kv["leases"].create(u, dumps({"worker": self.worker_id}))
            except KeyWrongLastSequenceError:
                continue  # another worker holds it
            except Exception as exc:  # e.g. the key expired between create's checks: next tick
                log.info("worker %s: claiming %s: %r", self.worker_id, u, exc)
                continue
            run = UnitRun(u, spec, worker=self, lease_rev=rev)
            self.runs[u] = run
            run.thread.start()
            tasks[u] = asyncio.create_task(self._fetch(js, run))
            log.info("worker %s: took unit %s", self.worker_id, u)

    def status(self) -> dict[str, Any]:
        return {"worker": self.worker_id, "t_wall_s": time.time(), "completed": len(self.completed),
                "units": {u: {"sensors": r.sensor_ids, "msgs": r.msgs, "last_stream_seq": r.last_stream_seq,
                              "duplicates": r.duplicates, "queued": r.q.qsize()} for u, r in self.runs.items()}}
