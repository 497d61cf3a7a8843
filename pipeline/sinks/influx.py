"""The InfluxDB sink: records -> line protocol -> durable spool -> server, losing nothing.

Data path (DESIGN.md, "Sources and sinks")::

    write(records) -> lines (pipeline.lineprotocol) -> in-memory buffer
                   -> every batch_size // 5 lines (200 while the worker has nothing to
                      send) / flush_interval_s: Spool.append (write-ahead)
    worker threads -> oldest spool batches no other worker is sending (joined up to
      (requests_in_flight)  batch_size lines) -> transport.send (its own retries/backoff)
                   -> accepted: removed (requests may complete out of spool order)

Every batch is in the spool before it is sent (fsync'd as soon as the server fails to take
it, and on append while it is down), so an outage or a killed process loses at most the
lines still in the in-memory buffer (< ``flush_interval_s`` of data; the worker spools a
stale buffer by itself). When the server is down, batches pile up in the spool (its depth
is reported in ``gait_health``); the worker probes the server every ``replay_interval_s``
and replays the spool oldest first; it warns once per outage. Re-sending is harmless:
InfluxDB overwrites a point with the same series and timestamp.

A batch the server rejects (400/413/422) is split in halves until the offending lines are
found; those are logged (shortened) and counted, the rest is written. Wrong credentials or
an unknown database raise :class:`~pipeline.errors.SinkError` at start; an unreachable
server at start only warns (the data waits in the spool). A full spool raises
``SinkError`` -- the run stops rather than dropping data.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import lineprotocol as lp
from pipeline import schema
from pipeline.errors import ConfigError, SinkError
from pipeline.records import Alert, SensorInfo, SessionInfo, StepRecord
from pipeline.sinks.influx_transport import Refused, Rejected, Unavailable
from pipeline.spool import Spool, SpoolBatch
from pipeline import lineprotocol_floats, window_aggregates
from pipeline.window_aggregates import WindowAggregator

log = logging.getLogger(__name__)

# Lines are spooled (write-ahead) in chunks of batch_size // 5 lines (1,000 by default) as
# soon as a chunk is full, and the worker sends the oldest chunks joined, up to batch_size
# lines per request ([influx] batch_size, default 5,000: InfluxDB's advice is 5,000-10,000
# lines per write). So while one request is with the server the next is already spooled
# and goes out the moment the answer comes (no wait for a whole batch_size to gather and be
# spooled: that cost 2-30 ms of idle server per request, bench/bench_influx.py docstring),
# and a replay still sends full batch_size requests once the server falls behind. While the
# worker has nothing to send, WAL_FIRST_LINES lines are enough, so the server starts early.
WAL_CHUNKS_PER_BATCH = 5
PENDING_RECORDS = 32  # write() encodes this many records at a time (or at flush_interval_s)
WAL_FIRST_LINES = 200
ENV_TOKEN = "GAITWATCH_INFLUX_TOKEN"
ENV_USERNAME = "GAITWATCH_INFLUX_USERNAME"
ENV_PASSWORD = "GAITWATCH_INFLUX_PASSWORD"


@dataclass
class SinkStats:
    """Counters of one sink (also written as ``gait_health``)."""

    points_encoded: int = 0
    points_written: int = 0
    nonfinite_dropped: int = 0
    points_empty: int = 0
    lines_rejected: int = 0
    batches_written: int = 0
    outages: int = 0
    last_write_latency_ms: float = float("nan")
    rejected_examples: list[str] = field(default_factory=list)


def _credentials(section: Mapping[str, object]) -> dict[str, str]:
    """Token / username / password: environment first, then the config file. Never logged."""
    return {
        "token": os.environ.get(ENV_TOKEN) or str(section.get("token", "") or ""),
        "username": os.environ.get(ENV_USERNAME) or str(section.get("username", "") or ""),
        "password": os.environ.get(ENV_PASSWORD) or str(section.get("password", "") or ""),
    }


def make_transport(section: Mapping[str, object]):
    """A v1 or v2 transport from an ``[influx]`` config section (plus credentials from env)."""
    kind = section.get("transport", "v1")
    cred = _credentials(section)
    common = dict(
        url=str(section["url"]),
        precision=str(section["precision"]),
        timeout_s=float(section["timeout_s"]),
        max_retries=int(section["max_retries"]),
        retry_interval_s=float(section["retry_interval_s"]),
        max_retry_delay_s=float(section["max_retry_delay_s"]),
        **cred,
    )
    try:
        if kind == "v1":
            from pipeline.sinks.influx_v1 import V1Transport

            return V1Transport(database=str(section["database"]), retention_policy=str(section["retention_policy"]), **common)
        if kind == "v2":
            from pipeline.sinks.influx_v2 import V2Transport

            return V2Transport(
                bucket=str(section["bucket"]),
                org=str(section["org"]),
                batch_size=int(section["batch_size"]),
                max_retry_time_s=float(section["max_retry_time_s"]),
                exponential_base=float(section["exponential_base"]),
                **common,
            )
    except ValueError as exc:
        raise ConfigError(f"[influx]: {exc}") from None
    raise ConfigError(f"[influx] transport: expected 'v1' or 'v2', got {kind!r}")


def default_spool_root() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "gaitwatch" / "influx-spool"


def spool_dir_for(root: str | Path, target: dict) -> Path:
    """One spool directory per target under ``root`` (readable name + short hash)."""
    name = "-".join(str(target.get(k, "")) for k in ("transport", "url", "database", "bucket") if target.get(k))
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:80]
    digest = hashlib.sha1(repr(sorted(target.items())).encode()).hexdigest()[:8]
    return Path(root) / f"{slug}-{digest}"


class InfluxSink:
    """Sink writing steps, windows, alerts, health and the summary to InfluxDB."""

    def __init__(
        self,
        *,
        transport,
        spool: Spool,
        session: SessionInfo,
        sensors: Sequence[SensorInfo] = (),
        precision: str = "ms",
        batch_size: int = 5000,
        flush_interval_s: float = 1.0,
        replay_interval_s: float = 5.0,
        close_timeout_s: float = 30.0,
        window_s: float = schema.DEFAULT_WINDOW_S,
        health_interval_s: float = 10.0,
        check: bool = True,
        requests_in_flight: int = 1,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.transport = transport
        self.spool = spool
        self.session = session
        self.sensors = {s.sensor_id: s for s in sensors}
        self.precision = precision
        self.batch_size = int(batch_size)
        if int(requests_in_flight) < 1:
            raise ValueError(f"requests_in_flight must be >= 1, got {requests_in_flight}")
        # Requests sent at once (one worker thread each). InfluxDB 1.x parses and stores
        # concurrent write requests on separate cores: two in flight wrote the bench hour's
        # pre-built lines in 0.19 s instead of 0.37 s on 2 cores (bench/bench_influx.py).
        # A transport that cannot send concurrently (v2: one batching WriteApi) caps it.
        self.requests_in_flight = min(int(requests_in_flight), getattr(transport, "max_requests_in_flight", 1))
        # Lines are spooled (write-ahead) in chunks of chunk_lines, fewer when the worker is
        # idle or flush_interval_s has passed (live runs: at least every ~1 s); the worker
        # joins consecutive chunks up to batch_size per request (also when catching up after
        # an outage). A killed process loses only the unspooled buffer: < chunk_lines lines
        # and < flush_interval_s of data.
        self.chunk_lines = max(1, self.batch_size // WAL_CHUNKS_PER_BATCH)
        self.eager_lines = min(self.chunk_lines, WAL_FIRST_LINES)
        self.flush_interval_s = float(flush_interval_s)
        self.replay_interval_s = float(replay_interval_s)
        self.close_timeout_s = float(close_timeout_s)
        self.health_interval_s = float(health_interval_s)
        self.stats = SinkStats()
        self._enc = lp.EncodeStats()
        self._encoder = lp.SessionEncoder(session, precision)
        self._windows = WindowAggregator(window_s=window_s) if window_s > 0 else None
        # Load the compiled kernels now (~0.3 s each, once per process), not at the first write.
        lineprotocol_floats.warm_up()
        if self._windows is not None:
            window_aggregates.warm_up()
        self._buf: list[str] = []
        self._records: list = []  # taken by write(), not encoded yet (< PENDING_RECORDS)
        self._buf_lock = threading.RLock()  # the producer and the worker's stale-buffer flush
        self._last_spool = time.monotonic()
        self._next_health_s = float(health_interval_s)  # (session time of the next gait_health point)
        self._last_t_s = 0.0
        self._cond = threading.Condition()  # also guards _claimed, _down and the stats the workers update
        self._claimed: set[int] = set()  # seq of the spool batches a worker is sending
        self._stop = False
        self._closed = False
        self._down = False
        self._retry_at = 0.0
        self._error: BaseException | None = None
        self._error_raised = False
        if check:
            try:
                transport.check()
            except Unavailable as exc:
                self._mark_down(exc)
            except Refused:
                transport.close()
                raise
        if spool.depth_batches:
            log.info("InfluxDB spool %s holds %d points from an earlier run; replaying them first",
                     spool.directory, spool.depth_points)
        self._workers = [threading.Thread(target=self._run, args=(i,), name=f"influx-sink-{i}" if i else "influx-sink",
                                          daemon=True) for i in range(self.requests_in_flight)]
        for w in self._workers:
            w.start()

    # -- producer side --------------------------------------------------------------------
    def write(self, records: Sequence[StepRecord | Alert]) -> None:
        """Take records. They are encoded PENDING_RECORDS at a time (a replay hands over
        ~2 per call; the per-call work of encoder and window aggregator was ~10 % of the
        sink's CPU on the bench hour), or as soon as flush_interval_s has passed since the
        last spooling (the worker does it too when no write() comes, like for a partial
        buffer). ``gait_health`` points fall on whole multiples of health_interval_s of
        session time, however the records are split into calls."""
        if self._closed:
            raise SinkError("InfluxDB sink: write() after close()")
        if self._error is not None:
            self._error_raised = True
            raise self._error
        with self._buf_lock:
            pending = self._records
            pending += records
            if len(pending) < PENDING_RECORDS and time.monotonic() - self._last_spool < self.flush_interval_s:
                return
            self._records = []
            self._encode(pending)
            n = len(self._buf) + self._encoder.pending
            stale = time.monotonic() - self._last_spool >= self.flush_interval_s
            if (
                stale
                or n >= self.chunk_lines
                or (n >= self.eager_lines and not self._down and self.spool.depth_batches == 0)
            ):
                try:
                    # Whole chunks only, unless stale or less than one: the few lines past
                    # the last whole chunk wait for the next one (or flush_interval_s).
                    self._spool_buffer(whole_batches=n >= self.chunk_lines and not stale)
                except SinkError as exc:
                    self._error, self._error_raised = exc, True
                    raise

    def _encode(self, records: Sequence[StepRecord | Alert]) -> None:
        """Records -> lines in the buffer (deferred in the encoder), windows, health (lock held)."""
        buf, enc = self._buf, self._enc
        steps = [r for r in records if isinstance(r, StepRecord)]
        rows: list | None = [] if self._windows is not None else None
        # lines (formatted a few dozen points at a time: defer), plus what the windows need
        last_t = self._encoder.steps(steps, buf, enc, rows, defer=True)
        if len(steps) != len(records):
            others = [r for r in records if not isinstance(r, StepRecord)]
            buf.extend(lp.record_lines(others, session=self.session, precision=self.precision, stats=enc))
            for r in others:
                t = getattr(r, "t_s", None)
                if t is not None and t > last_t:  # (NaN compares False)
                    last_t = t
        if last_t > self._last_t_s:
            self._last_t_s = last_t
        if rows:
            windows = self._windows.update(steps, rows=rows)
            if windows:
                self._encoder.windows(windows, buf, enc, defer=True)
        if self.health_interval_s > 0 and self._last_t_s >= self._next_health_s:
            # a point at the last whole multiple of health_interval_s of session time reached
            # (whatever the number of records per call), then the next multiple
            every = self.health_interval_s
            t = math.floor(self._last_t_s / every) * every
            self._buf_health(t)
            self._next_health_s = t + every

    def _encode_pending(self) -> None:
        """Encode the records write() has kept (lock held)."""
        if self._records:
            pending, self._records = self._records, []
            self._encode(pending)

    def write_health(self, *, t_s: float, component: str, values: Mapping[str, float], sensor: str = "") -> None:
        """Health counters of another component (e.g. a serial source: packets_lost, resyncs)."""
        line = lp.health_line(session=self.session, t_s=t_s, component=component, values=values,
                              sensor=sensor, precision=self.precision, stats=self._enc)
        if line:
            with self._buf_lock:
                self._buf.append(line)

    def _buf_health(self, t_s: float) -> None:
        self._encoder.flush(self._buf)  # (deferred points are counted when their lines are made)
        s = self.stats
        values = {
            schema.FIELD_SPOOL_DEPTH_POINTS: (self.spool.depth_points + len(self._buf) + self._encoder.pending
                                              + len(self._records)),
            schema.FIELD_SPOOL_DEPTH_BATCHES: self.spool.depth_batches,
            schema.FIELD_POINTS_WRITTEN: s.points_written,
            schema.FIELD_POINTS_NONFINITE: self._enc.nonfinite_dropped,
            schema.FIELD_LINES_REJECTED: s.lines_rejected,
        }
        if s.last_write_latency_ms == s.last_write_latency_ms:  # not NaN: a batch was written
            values[schema.FIELD_WRITE_LATENCY_MS] = s.last_write_latency_ms
        line = lp.health_line(session=self.session, t_s=t_s, component=schema.HEALTH_COMPONENT_INFLUX,
                              values=values, precision=self.precision, stats=self._enc)
        if line:
            self._buf.append(line)

    def _spool_buffer(self, *, whole_batches: bool = False) -> None:
        with self._buf_lock:
            self._spool_buffer_locked(whole_batches)
        with self._cond:
            self._cond.notify_all()

    def _spool_buffer_locked(self, whole_batches: bool = False) -> None:
        self._encode_pending()  # records write() kept, then the encoder's deferred points
        self._encoder.flush(self._buf)
        while self._buf and (not whole_batches or len(self._buf) >= self.chunk_lines):
            chunk = self._buf[: self.chunk_lines]
            # fsync'd when the server is known down (the batch will wait); else the rename
            # alone makes it survive a killed process, and the worker sends it right away.
            self.spool.append(chunk, fsync=self._down)  # SinkError (full/disk): the run stops
            del self._buf[: len(chunk)]
        self._last_spool = time.monotonic()

    # -- worker side ----------------------------------------------------------------------
    def _mark_down(self, exc: BaseException) -> None:
        try:
            self.spool.sync()  # everything now waiting is on stable storage
        except SinkError as err:
            self._error = err
        with self._cond:
            first = not self._down
            self._down = True
            if first:
                self.stats.outages += 1
            self._retry_at = time.monotonic() + self.replay_interval_s
        if first:
            log.warning("%s; keeping data in the spool %s and retrying every %g s",
                        exc, self.spool.directory, self.replay_interval_s)

    def _deliver(self, batches: list[SpoolBatch]) -> None:
        """Send consecutive spool batches as one request (up to ``batch_size`` lines)."""
        read = self.spool.read
        body = read(batches[0]) if len(batches) == 1 else b"".join(map(read, batches))
        n_lines = sum(b.n_lines for b in batches)
        t0 = time.monotonic()
        rejected: list[tuple[str, str]] = []
        try:
            self.transport.send(body)
        except Rejected:
            self._split([ln for ln in body.decode("utf-8").split("\n") if ln], rejected)
        latency_ms = (time.monotonic() - t0) * 1e3
        for line, why in rejected:
            log.error("InfluxDB rejected a point (%s), skipped: %s", why, line if len(line) <= 400 else line[:400] + "...")
        with self._cond:  # (another worker may be updating them too)
            s = self.stats
            s.last_write_latency_ms = latency_ms
            s.rejected_examples.extend(line for line, _ in rejected[:max(0, 10 - len(s.rejected_examples))])
            s.lines_rejected += len(rejected)
            s.points_written += n_lines - len(rejected)
            s.batches_written += 1
        for b in batches:
            self.spool.remove(b, lazy=True)  # (files deleted when the worker is idle or at the next append)

    def _split(self, lines: list[str], rejected: list[tuple[str, str]]) -> None:
        """Find the lines the server refuses by halving (each request is one plain write)."""
        if len(lines) == 1:
            try:
                self.transport.post(lines)
            except Rejected as exc:
                rejected.append((lines[0], str(exc)))
            return
        mid = len(lines) // 2
        for part in (lines[:mid], lines[mid:]):
            try:
                self.transport.post(part)
            except Rejected:
                self._split(part, rejected)

    def _flush_stale(self) -> None:
        """Spool a partial buffer older than ``flush_interval_s`` (live: no write() may come
        for a while when the runner stops, yet the last steps should reach the server)."""
        if (self._closed or not (self._buf or self._encoder.pending or self._records)
                or time.monotonic() - self._last_spool < self.flush_interval_s):
            return
        with self._buf_lock:
            if (self._buf or self._encoder.pending or self._records) and not self._closed:
                try:
                    self._spool_buffer()
                except Exception as exc:  # noqa: BLE001 - SinkError, or a record the encoder refuses
                    self._error = exc  # (raised by the next write() or close())

    def _sendable(self) -> bool:
        """A spool batch no worker is sending (called with ``_cond`` held)."""
        return bool(self.spool.oldest_run(max_lines=1, skip=self._claimed))

    def _waiting(self, worker: int) -> bool:
        """Nothing for this worker to do now (called with ``_cond`` held). While the server is
        down only worker 0 probes it; the others wait until it is back."""
        if self._stop:
            return False
        if self._down:
            return worker != 0 or time.monotonic() < self._retry_at
        return not self._sendable()

    def _run(self, worker: int = 0) -> None:
        """One worker: sends the oldest batches no other worker is sending, one request at a
        time. Several workers may complete out of spool order; that is harmless because every
        point of a session has its own series and timestamp, except the final gait_health
        point, which close() sends only after everything else was acknowledged."""
        while True:
            if worker == 0:
                self._flush_stale()
            batches: list[SpoolBatch] = []
            with self._cond:
                if self._stop and (self._down or not self._sendable()):
                    return
                waiting = self._waiting(worker)
                if not waiting:
                    batches = self.spool.oldest_run(max_lines=self.batch_size, skip=self._claimed)
                    self._claimed.update(b.seq for b in batches)
            if waiting:
                self.spool.collect()  # (files of accepted batches: deleted while there is time)
                with self._cond:
                    if self._waiting(worker):  # (re-checked: a batch or stop may have come meanwhile)
                        timeout = 0.25
                        if self._down and worker == 0:
                            timeout = min(timeout, max(0.0, self._retry_at - time.monotonic()))
                        self._cond.wait(timeout)
                continue
            if not batches:
                continue
            try:
                if self._down:
                    # Probe with one cheap request (no retries) before sending real batches,
                    # so a known outage does not cost a full backoff cycle per attempt.
                    self.transport.check()
                self._deliver(batches)
            except (Unavailable, Refused) as exc:
                self._mark_down(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - reported to the producer, run stops
                log.error("InfluxDB sink worker failed: %s", exc)
                self._error = SinkError(f"InfluxDB sink worker failed: {exc}")
                return
            finally:
                with self._cond:
                    self._claimed.difference_update(b.seq for b in batches)
                    self._cond.notify_all()
            with self._cond:
                back = self._down
                self._down = False
            if back:
                log.warning("InfluxDB at %s is back; replaying %d spooled points",
                            self.transport.where, self.spool.depth_points)

    # -- end --------------------------------------------------------------------------------
    def commit(self, *, timeout_s: float) -> bool:
        """Spool the in-memory buffer now and wait up to ``timeout_s`` until the server took
        everything (True). Server down: returns False at once (the data waits in the spool).
        Used by the cluster worker at each checkpoint (pipeline/worker.py)."""
        self._spool_buffer()
        if self._down:
            return False
        return self.drain(timeout_s=timeout_s)

    def drain(self, *, timeout_s: float) -> bool:
        """Wait until the spool is empty (True) or ``timeout_s`` passed / server down (False)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._cond.notify_all()
            while self.spool.depth_batches and self._error is None:
                if self._down and time.monotonic() >= deadline:
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
        return self.spool.depth_batches == 0

    def close(self, summary=None) -> SinkStats:
        """Write the last windows, the summary and a final health point; send what can be sent."""
        if self._closed:
            return self.stats
        self._closed = True
        try:
            if self._error is None:
                with self._buf_lock:  # (the worker may be spooling a stale buffer)
                    self._encode_pending()
                    extra = []
                    if self._windows is not None:
                        self._encoder.windows(self._windows.flush(), extra, self._enc)  # (+ deferred points)
                    extra += lp.summary_lines(summary, session=self.session, precision=self.precision,
                                              stats=self._enc)
                    self._buf.extend(extra)
                    if self.requests_in_flight == 1:
                        self._buf_health(self._last_t_s)
                try:
                    self._spool_buffer()
                    if self.requests_in_flight > 1:
                        # The final gait_health point may have the key (series, time) of a
                        # periodic one; with requests completing out of order it must go
                        # last to win, so it is sent once everything before it is written.
                        if not self._down:
                            self.drain(timeout_s=self.close_timeout_s)
                        with self._buf_lock:
                            self._buf_health(self._last_t_s)
                        self._spool_buffer()
                except SinkError as exc:
                    self._error = exc
                else:
                    if self._down:
                        # One more attempt right now, then leave the rest for the next run / spool flush.
                        self._retry_at = 0.0
                        with self._cond:
                            self._cond.notify_all()
                        self.drain(timeout_s=min(self.close_timeout_s, 1.0))
                    else:
                        self.drain(timeout_s=self.close_timeout_s)
        finally:
            self._stop_worker(timeout_s=self.close_timeout_s + 5)
            self.transport.close()
            self.spool.collect()
            self.stats.points_encoded = self._enc.points
            self.stats.nonfinite_dropped = self._enc.nonfinite_dropped
            self.stats.points_empty = self._enc.points_empty
        if self._buf or self._encoder.pending or self._records:
            log.error("InfluxDB sink: %d points could not be spooled and are lost (%s)",
                      len(self._buf) + self._encoder.pending + len(self._records), self._error)
        left = self.spool.depth_points
        if left:
            log.warning("InfluxDB at %s did not take %d points; they are safe in %s and are sent at the "
                        "next run or with `gaitwatch spool flush`", self.transport.where, left, self.spool.directory)
        if self._error is not None and not self._error_raised:  # (raised from write() already: not twice)
            raise self._error
        return self.stats

    def _stop_worker(self, *, timeout_s: float) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout_s
        for w in self._workers:
            w.join(timeout=max(0.0, deadline - time.monotonic()))


def open_spool(section: Mapping[str, object], transport) -> Spool:
    root = str(section.get("spool_dir") or "") or str(default_spool_root())
    target = transport.describe()
    return Spool(spool_dir_for(root, target), target=target,
                 max_bytes=int(float(section["spool_max_mb"]) * 1024 * 1024))


def sink_from_config(section: Mapping[str, object], *, session: SessionInfo,
                     sensors: Sequence[SensorInfo] = ()) -> InfluxSink:
    """An :class:`InfluxSink` from an ``[influx]`` section (see defaults.toml)."""
    transport = make_transport(section)
    try:
        spool = open_spool(section, transport)
        return InfluxSink(
            transport=transport,
            spool=spool,
            session=session,
            sensors=sensors,
            precision=str(section["precision"]),
            batch_size=int(section["batch_size"]),
            flush_interval_s=float(section["flush_interval_s"]),
            replay_interval_s=float(section["replay_interval_s"]),
            close_timeout_s=float(section["close_timeout_s"]),
            window_s=float(section["window_s"]),
            health_interval_s=float(section["health_interval_s"]),
            requests_in_flight=int(section.get("requests_in_flight", 1)),
        )
    except ValueError as exc:  # (a value out of range in [influx])
        transport.close()
        raise ConfigError(f"[influx]: {exc}") from None
    except BaseException:
        transport.close()
        raise


def flush_spool(section: Mapping[str, object], *, spool_dir: str | Path | None = None,
                timeout_s: float = 60.0) -> tuple[int, int]:
    """Send what a spool holds (``gaitwatch spool flush``); returns (points sent, points left).

    ``spool_dir`` may be one target's directory or the root holding several; each target's
    URL/database come from its ``target.json``, the credentials from config/environment.
    """
    root = Path(spool_dir) if spool_dir else Path(str(section.get("spool_dir") or "") or default_spool_root())
    dirs = [root] if (root / "target.json").exists() else sorted(p.parent for p in root.glob("*/target.json"))
    sent = left = 0
    for d in dirs:
        target = Spool.read_target(d) or {}
        sec = dict(section)
        for k in ("transport", "url", "database", "retention_policy", "bucket", "org", "precision"):
            if k in target:
                sec[k] = target[k]
        transport = make_transport(sec)
        spool = Spool(d, target=transport.describe(), max_bytes=int(float(section["spool_max_mb"]) * 1024 * 1024))
        before = spool.depth_points
        if not before:
            transport.close()
            continue
        sink = InfluxSink(transport=transport, spool=spool,
                          session=SessionInfo(session_id="spool-flush", athlete="", start_wall_ns=0),
                          precision=str(sec["precision"]), batch_size=int(section["batch_size"]),
                          requests_in_flight=int(section.get("requests_in_flight", 1)),
                          replay_interval_s=float(section["replay_interval_s"]), close_timeout_s=timeout_s,
                          window_s=0.0, health_interval_s=0.0)
        sink.drain(timeout_s=timeout_s)
        sink._closed = True  # nothing of its own to add (no windows/summary/health)
        sink._stop_worker(timeout_s=timeout_s)
        transport.close()
        spool.collect()
        sent += before - spool.depth_points
        left += spool.depth_points
    return sent, left


# -- command line ------------------------------------------------------------------------------

_ARG_KEYS = {
    "influx_url": "url",
    "influx_transport": "transport",
    "influx_db": "database",
    "influx_rp": "retention_policy",
    "influx_bucket": "bucket",
    "influx_org": "org",
    "influx_precision": "precision",
    "influx_spool_dir": "spool_dir",
}


def add_influx_arguments(parser) -> None:
    """The ``--influx`` family (no secrets on the command line: use config or environment)."""
    g = parser.add_argument_group(
        "InfluxDB", "send the session to InfluxDB as well (credentials: GAITWATCH_INFLUX_TOKEN or "
        "GAITWATCH_INFLUX_USERNAME/PASSWORD, or [influx] in --config)")
    g.add_argument("--influx", action="store_true", help="write to InfluxDB ([influx] in the config)")
    g.add_argument("--influx-url", metavar="URL", help="server URL (default from [influx] url)")
    g.add_argument("--influx-transport", choices=("v1", "v2"), help="v1: POST /write; v2: influxdb-client")
    g.add_argument("--influx-db", metavar="NAME", help="v1 database")
    g.add_argument("--influx-rp", metavar="NAME", help="v1 retention policy")
    g.add_argument("--influx-bucket", metavar="NAME", help="v2 bucket")
    g.add_argument("--influx-org", metavar="NAME", help="v2 organization")
    g.add_argument("--influx-precision", choices=tuple(lp.PRECISIONS), help="timestamp precision")
    g.add_argument("--influx-spool-dir", metavar="DIR", help="where unsent batches wait")


def section_from_args(args, config) -> dict | None:
    """The ``[influx]`` section with command-line overrides, or None if InfluxDB is off."""
    sec = config.section("influx")
    given = {v: getattr(args, k) for k, v in _ARG_KEYS.items() if getattr(args, k, None) is not None}
    sec.update(given)
    if not (getattr(args, "influx", False) or given or sec.get("enabled")):
        return None
    return sec


def influx_sink_from_args(args, config, session: SessionInfo, sensors: Sequence[SensorInfo]) -> InfluxSink | None:
    """Hook for :func:`pipeline.sinks.build_sinks`."""
    sec = section_from_args(args, config)
    if sec is None:
        return None
    return sink_from_config(sec, session=session, sensors=sensors)
