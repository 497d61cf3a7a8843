"""Worker: consumes gateway frames from JetStream and runs the engine and sinks of ``live`` (issue 10).

Assignment. The unit of work is one athlete of one gateway session (all of that athlete's
sensors together, so the left/right symmetry metrics see both feet). A worker owns a unit
while it holds the unit's *lease*: a key in the KV bucket ``<kv_prefix>_leases`` created
with ``create`` (atomic: only one worker can create it) and renewed with
``update(last=revision)`` every ``lease_ttl_s / 3`` (compare-and-set: a worker that lost the
key cannot renew it; one not renewed for a whole ``lease_ttl_s`` is given up). The
bucket has a TTL of ``lease_ttl_s``: a worker that dies stops renewing and its leases vanish
after at most ``lease_ttl_s``; the other workers look for unowned units every ``poll_s``. A
worker takes at most ``ceil(open units / live workers)`` units (live workers: heartbeats in
``<kv_prefix>_workers``, same TTL), and a worker holding more than that (a worker joined)
gives its newest unit back, at most one per ``lease_ttl_s``; so units spread over the
workers and adding a worker spreads the load (the moved unit is resumed by its new owner from
the last checkpoint, below). Every sensor's frames are therefore processed by exactly one
worker at a time (a worker that loses its lease stops that unit).

Order and takeover. A unit is read with one pull consumer filtered on the unit's subjects, in
stream order (each sensor's batches in the order the gateway sealed them; a repeated ``Gw-Seq``
is dropped, a missing one becomes a lost-port marker, i.e. a :class:`~pipeline.records.Gap`).

Checkpoints. The records of a unit are *held* (:class:`HeldSinks`) and handed to the sinks
every ``checkpoint_s``, at a message boundary, in three steps: (1) store in the KV bucket
``<kv_prefix>_checkpoints`` a *pending* entry: the stream sequence processed so far, the
*horizon* (per sensor, the IC time of the last step about to be released; the time of the last
record of any kind), the stream sequence a new owner should start from (the last message at
least ``resume_preroll_s`` before the horizon) and the segment numbers; (2) write the records
to the sinks and *commit* them (InfluxDB: spool and wait for the server); (3) store the entry
as *committed*. Writes are compare-and-set on the key's revision, so a worker that lost the
unit fails its next checkpoint and stops.

A new owner (the lease expired: at most ``lease_ttl_s + poll_s`` after the owner died) rewrites
the key (fencing the old owner off), reads the last entry (committed, or pending if the owner
died while committing, see below) and starts the consumer at its
``resume_seq``: fresh decoder and engine, a ``Gap`` before each sensor's first block, segment
numbers continuing after the previous owner's, and every record at or before the horizon
dropped (steps by IC time per sensor, with ``RESUME_TOL_S``; alerts by time). The pre-roll
(default 10 s: the alignment's 2.5 s of activity plus the 10-step symmetry window) warms the
detectors up again, so the steps after the horizon are the uninterrupted run's steps (IC/TO
within ms: another clock fit; form metrics within hundredths of a degree: the alignment is
estimated again). Takeover work is bounded by the pre-roll plus one checkpoint interval, not
by the length of the run. A worker that is killed loses only what it held (records since its
last checkpoint, which the new owner recomputes); a worker that gives a unit up (lease lost,
a worker joined, Ctrl-C) keeps the files of what it committed in
``<out>/<session>/<athlete>/part-<first seq>-<worker>/``; the run that completes the unit writes
``<out>/<session>/<athlete>/`` (its ``session.json`` names where it resumed; if a previous owner
had completed the unit and died before storing "done", its files stay and the new run's go
beside them as a part).

What a takeover changes: nothing is written twice and nothing after the horizon is lost, with
two stated exceptions: (a) a worker killed *while committing* (between steps 1 and 3) leaves
a pending entry; the new owner resumes after the pending horizon (its records were handed to
the sinks; whatever InfluxDB had not acknowledged yet is in the dead worker's spool directory,
``gaitwatch spool flush`` sends it), so that batch is at-most-once, never duplicated; (b) when
the checkpoint bucket does not answer 5 times in a row (or at the end of the unit), records
are released without a stored checkpoint (bounded memory and latency); a takeover right then
writes them again, with IC times that may differ by ~1 ms (points next to the old ones).
Run-level state starts again at the resumed point like a new run: the alert rules' run
baselines and the fatigue drift baseline, the open alerts, the session summary (of the
resumed run only), and the InfluxDB ``gait_window`` window that contains the horizon (only the
new owner's steps).

Delivery is at-least-once, and the InfluxDB writes are idempotent: a point with the same
measurement, tag set and timestamp overwrites the stored one.
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
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.cluster import ClusterSettings, dumps, ensure_layout, loads, pack_records, unpack_records
from pipeline.records import SensorInfo, SessionInfo

log = logging.getLogger(__name__)

_ABORT = object()


class _Aborted(Exception):
    pass


#: A step recomputed by a new owner lands within a few ms of the previous owner's (another clock
#: fit, another alignment estimate); the next step of the same foot is >= 0.25 s later.
RESUME_TOL_S = 0.15


class HeldSinks:
    """The one sink :func:`~pipeline.run.run_session` of a unit sees, in front of the real sinks.

    Records are *held* here and handed to the real sinks only at a checkpoint
    (:meth:`UnitRun._checkpoint`), which first stores the horizon they reach. On a resumed run,
    records at or before the previous owner's horizon are dropped (the pre-roll recomputes
    them; they are in the sinks already): per sensor, steps with ``ic_s`` below
    ``horizon_s[sensor] + RESUME_TOL_S``; alerts with ``t_s <= t_horizon_s``.
    """

    def __init__(self, sinks, *, horizon_s: dict[str, float] | None = None, t_horizon_s: float | None = None):
        self.sinks = list(sinks)
        self.skip_s = {k: float(v) for k, v in (horizon_s or {}).items()}
        self.skip_t = -math.inf if t_horizon_s is None else float(t_horizon_s)
        self.horizon_s = dict(self.skip_s)  # per sensor: ic_s of the last step held or released
        self.t_horizon_s = self.skip_t  # time of the last record of any kind held or released
        self.held: list = []
        self.suppressed = 0
        self.released = 0
        self.checkpoint = None  # set by the run: called at close (the final checkpoint)
        self.discard = False  # set by the run when it is aborted: held records are dropped

    def write(self, records) -> None:
        from pipeline.records import StepRecord

        for r in records:
            if isinstance(r, StepRecord):
                sid, t = r.step.sensor_id, r.step.ic_s
                if t < self.skip_s.get(sid, -math.inf) + RESUME_TOL_S:
                    self.suppressed += 1
                    continue
                if not t <= self.horizon_s.get(sid, -math.inf):
                    self.horizon_s[sid] = t
            else:
                t = r.t_s
                if t <= self.skip_t:
                    self.suppressed += 1
                    continue
            if t > self.t_horizon_s:
                self.t_horizon_s = t
            self.held.append(r)

    def release(self, *, commit_timeout_s: float) -> bool:
        """Hand the held records to the real sinks and ask them to commit (InfluxDB: spool and
        wait until the server took them, up to ``commit_timeout_s``). True: every sink with a
        ``commit`` has them stored."""
        held, self.held = self.held, []
        if held:
            for s in self.sinks:
                s.write(held)
            self.released += len(held)
        ok = True
        for s in self.sinks:
            commit = getattr(s, "commit", None)
            if commit is not None and not commit(timeout_s=commit_timeout_s):
                ok = False
        return ok

    def close(self, summary) -> None:
        from pipeline.run import _close_all

        try:
            if not self.discard and self.checkpoint is not None:
                self.checkpoint(final=True)  # stores the final horizon, releases the rest
        except BaseException:
            self.discard = True
            raise
        finally:
            if self.discard:
                self.held = []
            _close_all(self.sinks, summary, primary_failed=self.discard)


class UnitRun:
    """One unit on this worker: a thread running :func:`pipeline.run.run_session` over the
    decoded frames the fetch task puts in ``q``.

    ``resume``: the last checkpoint entry the previous owner stored (its pending one if it died
    while committing; None: start at the unit's first frame). The run then reads from ``resume["resume_seq"]``, puts a :class:`Gap` before each
    sensor's first block, numbers segments on from ``resume["segments"]`` and drops the records
    the previous owner had committed (:class:`HeldSinks`). ``ckpt_rev``: revision of the
    unit's key in the checkpoints bucket, written by compare-and-set only.
    """

    def __init__(self, unit: str, spec: dict[str, Any], *, worker: "Worker", lease_rev: int,
                 resume: dict[str, Any] | None = None, ckpt_rev: int | None = None, unconfirmed: bool = False):
        self.unit, self.spec, self.worker, self.lease_rev = unit, spec, worker, lease_rev
        self.run_id = f"{worker.worker_id}/{lease_rev}"
        self.q: queue.Queue = queue.Queue()
        self.sensor_ids = [s["sensor_id"] for s in spec["sensors"]]
        self.resume = resume
        self.ckpt_rev = ckpt_rev
        # the previous owner died while committing: ``resume`` is its pending entry, whose records
        # may not all have reached the sinks (they are in its InfluxDB spool directory)
        self.unconfirmed = unconfirmed
        self.last_stream_seq = int(resume["resume_seq"]) - 1 if resume else 0
        self.last_stream_seq0 = self.last_stream_seq + 1  # where this run starts reading
        self.msgs = 0
        self.duplicates = 0
        self.missing = 0
        self.seen: dict[str, int] = {}
        self.fetched_end: set[str] = set(resume.get("ended", [])) if resume else set()
        self.aborted = threading.Event()
        self.finished = threading.Event()
        self.ok = False
        self.error = ""
        self.started_s = time.monotonic()
        self.lease_ok_s = self.started_s  # last time the lease was known to be ours (created or renewed)
        self.first_release_s: float | None = None  # monotonic time of the first checkpoint of this run
        self.checkpoints = 0
        self.released_unstored = 0  # releases without a stored checkpoint (the bucket did not answer)
        self._store_failures = 0
        self.committed: dict[str, Any] | None = resume
        self.held: HeldSinks | None = None
        self._done_seq = 0  # stream seq of the last message whose items the engine has processed
        self._hist: deque = deque()  # (stream seq, first host_s) of processed messages, for the pre-roll
        self._segments: dict[str, int] = {}
        self._ended: set[str] = set(self.fetched_end)
        self._next_ckpt_s = time.monotonic() + worker.s.checkpoint_s
        self.thread = threading.Thread(target=self._main, name=f"unit-{unit}", daemon=True)

    def abort(self) -> None:
        self.aborted.set()
        if self.held is not None:
            self.held.discard = True  # records held since the last checkpoint: the next owner recomputes them
        self.q.put(_ABORT)

    # -- checkpoints ---------------------------------------------------------------------------
    def _resume_seq(self) -> int:
        """Where a new owner would start: the last processed message at or before
        ``min(horizon) - resume_preroll_s`` (so the new owner's detectors and alignment are warmed
        up again when it reaches the horizon)."""
        h = self.held.horizon_s if self.held is not None else {}
        hist = self._hist
        if not h:  # no step yet: start where this run started; keep the history bounded meanwhile
            cut = (hist[-1][1] if hist else 0.0) - self.worker.s.resume_preroll_s - 60.0
            while len(hist) > 1 and hist[1][1] <= cut:
                hist.popleft()
            return int(self.resume["resume_seq"]) if self.resume else 1
        cut = min(h.values()) - self.worker.s.resume_preroll_s
        while len(hist) > 1 and hist[1][1] <= cut:
            hist.popleft()
        if hist and hist[0][1] <= cut:
            return hist[0][0]
        return int(self.committed["resume_seq"]) if self.committed else 1

    def _store(self, value: dict[str, Any]) -> bool:
        """Write this unit's checkpoint key (compare-and-set). False: no answer (try again at the
        next checkpoint); :class:`_Aborted`: another worker owns the unit now."""
        import concurrent.futures

        from nats.js.errors import KeyWrongLastSequenceError

        w = self.worker
        kv = w._kv["checkpoints"]
        value = {**value, "owner": self.run_id, "t_wall_s": time.time()}
        for attempt in range(2):
            fut = asyncio.run_coroutine_threadsafe(kv.update(self.unit, dumps(value), last=self.ckpt_rev), w._loop)
            try:
                self.ckpt_rev = fut.result(timeout=3.0)
                return True
            except KeyWrongLastSequenceError:
                # a write of ours that timed out may have landed: then the key still names this run
                # (read a few times: a KV read may be answered by a replica that is behind)
                e = None
                for _ in range(3):
                    fut = asyncio.run_coroutine_threadsafe(kv.get(self.unit), w._loop)
                    try:
                        got = fut.result(timeout=3.0)
                    except Exception:
                        return False
                    if (loads(got.value) or {}).get("owner") == self.run_id:
                        e = got
                        break
                    time.sleep(0.2)
                if e is None:
                    log.warning("unit %s: checkpoint taken over by another worker", self.unit)
                    self.abort()
                    raise _Aborted(self.unit) from None
                self.ckpt_rev = e.revision
            except (concurrent.futures.TimeoutError, Exception) as exc:
                fut.cancel()
                log.info("unit %s: storing checkpoint: %r", self.unit, exc)
                return False
        return False

    def _checkpoint(self, final: bool = False) -> None:
        """Store where this run's output will reach (``pending``), hand the held records to the
        sinks and commit them, then store the entry as ``committed``. A new owner resumes after
        the pending entry if there is one (the owner died while committing), else after the
        committed one (:meth:`Worker._take_checkpoint`)."""
        held = self.held
        entry = {"seq": self._done_seq, "resume_seq": self._resume_seq(), "horizon_s": dict(held.horizon_s),
                 "t_horizon_s": held.t_horizon_s if math.isfinite(held.t_horizon_s) else None,
                 "segments": dict(self._segments), "ended": sorted(self._ended), "worker": self.worker.worker_id}
        if self.aborted.is_set():
            held.discard = True
            raise _Aborted(self.unit)
        if not self._store({"committed": self.committed, "pending": entry}):
            # no answer (leader election): keep holding, try again at the next message boundary;
            # at the end of the unit, or after 5 failures (bounded latency and memory), release
            # anyway: a takeover right then would write this span again (at-least-once)
            self._store_failures += 1
            if not (final or self._store_failures >= 5):
                return
            held.release(commit_timeout_s=min(5.0, max(1.0, self.worker.s.checkpoint_s)))
            self.released_unstored += 1
            self._next_ckpt_s = time.monotonic() + self.worker.s.checkpoint_s
            return
        self._store_failures = 0
        if held.release(commit_timeout_s=min(5.0, max(1.0, self.worker.s.checkpoint_s))):
            self.committed = entry
            self._store({"committed": entry, "pending": None})  # no answer: the pending entry stays (safe)
        # else a sink could not commit (InfluxDB down): the entry stays pending; a new owner
        # resumes after it all the same (the records wait in this worker's InfluxDB spool)
        self.checkpoints += 1
        if self.first_release_s is None:
            self.first_release_s = time.monotonic()
        self._next_ckpt_s = time.monotonic() + self.worker.s.checkpoint_s

    # -- items -----------------------------------------------------------------------------------
    def _items(self):
        from firmware_bridge.protocol_stream import PortDecoder
        from pipeline.records import Gap, SampleBlock, StepRecord

        decoders = {}
        ble_specs = {}  # BLE sensors: decoder made at the first v2 batch (the device kind it names)
        for s in self.spec["sensors"]:
            if (s.get("decoder") or {}).get("transport") == "ble":
                ble_specs[s["sensor_id"]] = s
                continue
            kw = {k: v for k, v in (s.get("decoder") or {}).items()
                  if k in ("fmt", "text_fs_hz", "text_acc_unit", "text_gyr_unit", "clock_warmup_s",
                           "clock_window_s", "slip_threshold_samples")}
            decoders[s["sensor_id"]] = PortDecoder(name=f"nats {self.unit}/{s['sensor_id']}",
                                                   sensor_id=s["sensor_id"], host_t0_s=0.0, **kw)
        all_ids = set(decoders) | set(ble_specs)

        def ble_decoder(sid: str, src):
            """The decoder ``live --ble`` uses for the device kind the batch (or the spec) names."""
            from firmware_bridge.ble_decode import make_decoder

            spec = ble_specs[sid]
            opts = spec.get("decoder") or {}
            kind = (src[2] if src else "") or opts.get("kind")
            if not kind:
                return None  # nothing received from the device yet (e.g. an empty end batch)
            fields = {k: v for k, v in spec.items() if k != "decoder"}
            return make_decoder(kind, sensor=SensorInfo(**fields), name=f"nats {self.unit}/{sid}", options=opts)
        offset = {sid: int(n) for sid, n in (self.resume or {}).get("segments", {}).items()}
        gap_due = set(all_ids) if self.resume else set()  # a resumed run: a Gap before each sensor's first block

        # decoded blocks are small (one gateway batch, ~0.25 s); joined per sensor into blocks of
        # block_s before the engine: less per-block work, same records (chunk invariance, DESIGN.md)
        block_s = self.worker.s.block_s
        pend: dict[str, list] = {}
        pend_n: dict[str, int] = {}

        def joined(sid):
            bl = pend.pop(sid, None)
            pend_n.pop(sid, None)
            if not bl:
                return
            if len(bl) == 1:
                yield bl[0]
                return
            b0 = bl[0]
            gyr = None if b0.gyr_dps is None else np.concatenate([b.gyr_dps for b in bl])
            yield SampleBlock(b0.sensor_id, b0.fs_hz, b0.t0_s, b0.first_index, np.concatenate([b.acc_ms2 for b in bl]),
                              gyr, segment=b0.segment, frame=b0.frame)

        def out(items):
            for it in items:
                if isinstance(it, StepRecord):  # finished metrics (RSC footpod): straight to the sinks
                    yield it
                    continue
                if not isinstance(it, SampleBlock):  # a Gap: the sensor's joined samples go first
                    yield from joined(it.sensor_id)
                    yield it
                    continue
                sid = it.sensor_id
                if sid in gap_due:
                    gap_due.discard(sid)
                    t = it.t0_s + it.first_index / it.fs_hz
                    yield Gap(sid, t, t)
                k = offset.get(sid, 0)
                if k:
                    it = replace(it, segment=it.segment + k)
                if it.segment + 1 > self._segments.get(sid, 0):
                    self._segments[sid] = it.segment + 1
                if block_s <= 0:
                    yield it
                    continue
                bl = pend.get(sid)
                if bl:
                    last = bl[-1]
                    if not (last.end_index == it.first_index and last.segment == it.segment and last.fs_hz == it.fs_hz
                            and last.t0_s == it.t0_s and last.frame == it.frame
                            and (last.gyr_dps is None) == (it.gyr_dps is None)):
                        yield from joined(sid)
                pend.setdefault(sid, []).append(it)
                pend_n[sid] = pend_n.get(sid, 0) + it.n
                if pend_n[sid] >= block_s * it.fs_hz:
                    yield from joined(sid)

        ended: set[str] = set(self._ended)
        idle, idle_seq = False, 0
        while ended != all_ids:
            # every item handed out so far went through the engine (samples still being joined
            # have produced nothing yet): a checkpoint may go here. Also when no message came for
            # a checkpoint interval, if records are held or the position moved: a backlog worked
            # off in one burst, or a sensor gone quiet, would otherwise keep its last steps from
            # the sinks (and its progress from the checkpoint) until the athlete's next frame
            # (none, if the gateway has nothing more to send)
            now = time.monotonic()
            if self._done_seq and now >= self._next_ckpt_s and (
                    not idle or idle_seq != self._done_seq or (self.held is not None and self.held.held)):
                idle_seq = self._done_seq
                self._checkpoint()
            wait_s = self._next_ckpt_s - time.monotonic()
            if wait_s <= 0:
                wait_s = self.worker.s.checkpoint_s
            try:
                m = self.q.get(timeout=None if wait_s == math.inf else wait_s)  # (inf: checkpoints off)
            except queue.Empty:
                idle = True
                continue
            idle = False
            if m is _ABORT:
                raise _Aborted(self.unit)
            sid, body, end, seq, src = m
            if src is not None and src[0] != "2":
                raise RuntimeError(f"unit {self.unit}: batch format version {src[0]} of sensor {sid} is newer "
                                   "than this worker reads (1, 2): upgrade the worker")
            if src is not None and sid not in ble_specs:
                raise RuntimeError(f"unit {self.unit}: a {src[1]} batch for {sid}, registered as a serial sensor")
            dec = decoders.get(sid)
            if dec is None and sid in ble_specs:  # (a link's kind is fixed once known: BleSession)
                dec = ble_decoder(sid, src)
                if dec is not None:
                    decoders[sid] = dec
            if dec is None:  # a BLE sensor that sent nothing yet: no decoder to feed or reset
                if end:
                    ended.add(sid)
                    self._ended.add(sid)
                self._done_seq = seq
                continue
            first = True
            for host_s, data in unpack_records(body):
                if first and data is not None:
                    self._hist.append((seq, host_s))
                    first = False
                if data is None:
                    yield from out(dec.interrupted())
                else:
                    yield from out(dec.feed(data, host_s=host_s))
            if end:
                yield from out(dec.flush())
                yield from joined(sid)
                ended.add(sid)
                self._ended.add(sid)
            self._done_seq = seq
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
            if any((x.get("decoder") or {}).get("transport") == "ble" for x in self.spec["sensors"]):
                from firmware_bridge.ble_cli import RecordPassingEngine  # as `live --ble`: RSC records to the sinks

                engine = RecordPassingEngine(engine, sensors)
            sinks = build_sinks(args, w.config, session, sensors)
            r = self.resume or {}
            self.held = HeldSinks(sinks, horizon_s=r.get("horizon_s"), t_horizon_s=r.get("t_horizon_s"))
            self.held.checkpoint = self._checkpoint
            extra = {"inputs": [f"nats:{self.unit}"], "config": w.config.source, "worker": w.worker_id}
            if self.resume:
                extra["resumed"] = {"from_stream_seq": r["resume_seq"], "previous_owner": r.get("worker", ""),
                                    "horizon_s": r.get("horizon_s", {}), "unconfirmed": self.unconfirmed}
            try:
                run_session(self._items(), engine, [self.held], session=session, extra=extra)
            except BaseException:
                self.held.discard = True
                raise
            if not self.aborted.is_set():
                # a previous owner may have completed the unit and died before storing 'done': its
                # files stay, this run's (records after its horizon, if any) go beside them as a part
                dest = final
                if (final / "session.json").exists():
                    dest = final / f"part-{self.last_stream_seq0:09d}-{w.worker_id}"
                dest.mkdir(parents=True, exist_ok=True)
                for f in staging.iterdir() if staging.exists() else ():
                    os.replace(f, dest / f.name)
                self.ok = True
        except _Aborted:
            # the files hold what this run committed (up to its last checkpoint): kept as a part
            part = final / f"part-{self.last_stream_seq0:09d}-{w.worker_id}"
            try:
                if staging.exists() and any(staging.iterdir()):
                    part.mkdir(parents=True, exist_ok=True)
                    for f in staging.iterdir():
                        os.replace(f, part / f.name)
            except OSError as exc:
                log.info("unit %s: keeping the partial output: %s", self.unit, exc)
            log.warning("unit %s: given up (lease lost or handed over); records since the last checkpoint "
                        "are left to the next owner", self.unit)
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
            except asyncio.TimeoutError:
                # Nothing within the timeout: fetch again on the same consumer. nats-py raises
                # its own TimeoutError (a subclass) or, when its deadline ran out between the
                # no-wait probe and the waiting request, a plain asyncio.TimeoutError (seen on a
                # busy machine). That one was taken for a consumer error: a new consumer (a
                # JetStream API call) each time, for an ordinary empty fetch
                continue
            except Exception as exc:  # node lost, consumer gone: a new one from the next sequence
                log.info("unit %s: consumer error %r, recreating", run.unit, exc)
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
                # a resumed run starts mid-stream: each sensor's first batch sets its sequence
                expected = run.seen.get(sid, gseq - 1 if run.resume else -1) + 1
                if gseq < expected:
                    run.duplicates += 1
                    continue
                if gseq > expected:  # batches missing (stream trimmed): the decoder restarts after a gap
                    run.missing += gseq - expected
                    run.q.put((sid, pack_records([(0, None)]), False, seq, None))
                run.seen[sid] = gseq
                run.msgs += 1
                end = hdr.get("Gw-End") == "1"
                if end:
                    run.fetched_end.add(sid)
                ver = hdr.get("Gw-Ver")  # batch format (firmware_bridge/gateway.py): none = v1, serial bytes
                src = None if ver is None else (ver, hdr.get("Gw-Transport", ""), hdr.get("Gw-Kind", ""))
                run.q.put((sid, m.data, end, seq, src))
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
        self._loop, self._kv = asyncio.get_running_loop(), kv
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
            if time.monotonic() - run.lease_ok_s < self.s.lease_ttl_s / 3:
                continue  # renewed recently (renewals every lease_ttl_s / 3, not every poll: KV load)
            try:
                run.lease_rev = await kv["leases"].update(u, dumps({"worker": self.worker_id}), last=run.lease_rev)
            except KeyWrongLastSequenceError:
                pass
            except Exception as exc:  # no answer (leader election): the lease may still be ours, retry next tick
                log.info("worker %s: renewing %s: %r", self.worker_id, u, exc)
                if time.monotonic() - run.lease_ok_s <= self.s.lease_ttl_s:
                    continue
                # not renewed for a whole TTL: it may have expired and moved; stop rather than write twice
            else:
                run.lease_ok_s = time.monotonic()
                continue
            try:  # a renewal that timed out on our side may have been applied: then the lease is still ours
                e = await kv["leases"].get(u)
                if (loads(e.value) or {}).get("worker") == self.worker_id:
                    run.lease_rev = e.revision
                    run.lease_ok_s = time.monotonic()
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
            try:  # where the previous owner's output ended (and fence it off: compare-and-set)
                resume, ckpt_rev, unconfirmed = await self._take_checkpoint(kv, u, f"{self.worker_id}/{rev}")
            except Exception as exc:
                log.info("worker %s: checkpoint of %s: %r; giving the lease back", self.worker_id, u, exc)
                try:
                    await kv["leases"].delete(u)
                except Exception:
                    pass
                continue
            run = UnitRun(u, spec, worker=self, lease_rev=rev, resume=resume, ckpt_rev=ckpt_rev,
                          unconfirmed=unconfirmed)
            self.runs[u] = run
            run.thread.start()
            tasks[u] = asyncio.create_task(self._fetch(js, run))
            log.info("worker %s: took unit %s%s", self.worker_id, u,
                     f" (resuming at stream seq {resume['resume_seq']})" if resume else "")

    async def _take_checkpoint(self, kv, unit: str, run_id: str):
        """Where to resume ``unit``: the previous owner's pending checkpoint if it died while
        committing, else its committed one (None: none yet); the key's new revision; whether the
        last batch is unconfirmed (pending). The key is rewritten at once (compare-and-set) so
        that a previous owner still running fails its next write."""
        from nats.js.errors import KeyDeletedError, KeyNotFoundError

        from nats.js.errors import KeyWrongLastSequenceError

        b = kv["checkpoints"]
        for attempt in range(3):  # a read answered by a replica that is behind: read again
            try:
                e = await b.get(unit)
            except (KeyNotFoundError, KeyDeletedError):
                e = None
            old = (loads(e.value) or {}) if e is not None and e.value else {}
            # died while committing: its pending batch was handed to the sinks (most likely sent, else
            # in its spool directory): resume after it, so that nothing is written twice
            start = old.get("pending") or old.get("committed")
            value = {"committed": start, "pending": None, "owner": run_id, "t_wall_s": time.time()}
            try:
                if e is None:
                    rev = await b.create(unit, dumps(value))
                else:
                    rev = await b.update(unit, dumps(value), last=e.revision)
            except KeyWrongLastSequenceError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.2)
                continue
            return start, rev, old.get("pending") is not None
        raise AssertionError("unreachable")

    def status(self) -> dict[str, Any]:
        return {"worker": self.worker_id, "t_wall_s": time.time(), "completed": len(self.completed),
                "units": {u: {"sensors": r.sensor_ids, "msgs": r.msgs, "last_stream_seq": r.last_stream_seq,
                              "duplicates": r.duplicates, "queued": r.q.qsize(), "checkpoints": r.checkpoints,
                              "resumed_from": (r.resume or {}).get("resume_seq")}
                          for u, r in self.runs.items()}}
