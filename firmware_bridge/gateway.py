"""Gateway: raw sensor bytes -> batches on disk -> a NATS JetStream stream, in order (issue 10).

A gateway runs near the runners and forwards exactly what its ports delivered: the raw
protocol bytes with the host time each read returned (the ``.gwcap`` record format of
:mod:`firmware_bridge.serial_capture`), so a worker decodes them with the very same
:class:`~firmware_bridge.protocol_stream.PortDecoder` and clock fit as ``gaitwatch live``
(and as ``live --from-capture``): same items, same steps.

Delivery: every batch is first *sealed* into the :class:`DiskBuffer` (one file per batch,
named by a gateway-wide sequence number, written before it is sent), then a publisher
thread sends the files oldest first and deletes each one only after JetStream's PubAck
for it. While the network or the cluster is down the files pile up on
disk and go out in order when it is back; a gateway restarted on the same buffer
directory continues the same session and sequence numbers. Up to ``publish_window`` publishes
are in flight at once, at most one per sensor subject (:meth:`Gateway._publish_window`), so
each sensor's batches are stored in the order they were sealed. A batch whose PubAck was lost
is sent again with the same ``Nats-Msg-Id`` (``<unit>.<sensor>.<seq>``) and the stream
drops the duplicate (within ``dup_window_s``), so every batch is stored exactly once.
Files are flushed to the OS, not fsync'ed: a gateway process crash loses nothing, a power
cut may lose the last batches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.cluster import ClusterSettings, dumps, ensure_layout, pack_records, token, unit_key
from pipeline.records import SensorInfo

log = logging.getLogger(__name__)


#: Batch format versions. 1: serial/USB port bytes (``.gwcap`` records of the raw byte stream),
#: no ``Gw-Ver`` header. 2: BLE notifications (one ``.gwcap`` record per notification payload,
#: a lost-link record for a disconnect), headers ``Gw-Ver: 2``, ``Gw-Transport: ble``, ``Gw-Kind``.
BATCH_VERSION_BLE = 2


class DiskBuffer:
    """Sealed batches as files ``<gseq:012d>.gwb`` (a JSON header line, then the body) plus
    ``state.json`` (unit registration and the next sequence numbers), in ``directory``."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "state.json"
        self.state: dict[str, Any] = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        self.state.setdefault("next_gseq", 0)
        self.state.setdefault("seq", {})
        self._lock = threading.Lock()

    def save_state(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, sort_keys=True))
        os.replace(tmp, self.state_path)

    def seal(self, sensor_id: str, body: bytes, *, end: bool = False, source: dict[str, Any] | None = None) -> Path:
        """``source``: the batch format fields of a v2 batch (``{"ver": 2, "transport": "ble",
        "kind": ...}``); None: a v1 batch (serial bytes; a file without ``ver`` is v1)."""
        with self._lock:
            g = self.state["next_gseq"]
            seq = self.state["seq"].get(sensor_id, 0)
            head = {"sensor": sensor_id, "seq": seq, "end": end, **(source or {})}
            path = self.dir / f"{g:012d}.gwb"
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as f:
                f.write(json.dumps(head).encode() + b"\n" + body)
            os.replace(tmp, path)
            self.state["next_gseq"] = g + 1
            self.state["seq"][sensor_id] = seq + 1
            self.save_state()
            return path

    def pending(self) -> list[Path]:
        return sorted(self.dir.glob("*.gwb"))

    @staticmethod
    def load(path: Path) -> tuple[dict[str, Any], bytes]:
        raw = path.read_bytes()
        nl = raw.index(b"\n")
        return json.loads(raw[:nl]), raw[nl + 1:]

    def bytes_pending(self) -> int:
        return sum(p.stat().st_size for p in self.pending())


class Gateway:
    """Batches per sensor, seals them into the disk buffer, publishes them in order.

    ``sensors``: the athlete's sensors (one gateway session may carry several athletes:
    one unit per athlete). ``decoder``: per sensor id, the PortDecoder settings a worker
    must use (format, text_fs_hz, clock settings...). Thread-safe ``chunk``/``lost``/``end``
    (the serial readers call them, through :meth:`capture_for`).
    """

    def __init__(self, settings: ClusterSettings, *, buffer_dir: str | Path, sensors: list[SensorInfo],
                 decoder: dict[str, dict[str, Any]] | None = None, session_id: str | None = None,
                 gateway_id: str | None = None, connect: bool = True):
        self.s = settings
        self.buf = DiskBuffer(buffer_dir)
        st = self.buf.state
        if "session_id" not in st:  # a fresh buffer starts a session; a kept one continues it
            st["session_id"] = session_id or time.strftime("gw-%Y%m%dT%H%M%S", time.gmtime())
            st["start_wall_ns"] = time.time_ns()
            st["gateway"] = gateway_id or f"{os.uname().nodename}-{os.getpid()}"
            self.buf.save_state()
        self.session_id = st["session_id"]
        self.gateway_id = st["gateway"]
        self.sensors = {s.sensor_id: s for s in sensors}
        self.decoder = decoder or {}
        self.units: dict[str, dict[str, Any]] = {}
        for s in sensors:
            u = unit_key(self.session_id, s.athlete)
            spec = self.units.setdefault(u, {"session_id": self.session_id, "athlete": s.athlete,
                                             "start_wall_ns": st["start_wall_ns"], "gateway": self.gateway_id,
                                             "sensors": [], "done": False})
            spec["sensors"].append({**asdict(s), "decoder": self.decoder.get(s.sensor_id, {})})
        self._unit_of = {s.sensor_id: unit_key(self.session_id, s.athlete) for s in sensors}
        self._batch: dict[str, list[tuple[int, bytes | None]]] = {}
        self._source: dict[str, dict[str, Any]] = {}  # sensor id -> v2 batch fields (BLE sensors)
        for sid, d in self.decoder.items():  # a BLE device of a given kind (--ble-kind): v2 from its first batch
            if d.get("transport") == "ble" and d.get("kind"):
                self._source[sid] = {"ver": BATCH_VERSION_BLE, "transport": "ble", "kind": d["kind"]}
        self._batch_bytes: dict[str, int] = {}
        self._batch_t0: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._abandon = threading.Event()
        self.published = 0
        self.connected = False
        self.last_error = ""
        self._thread: threading.Thread | None = None
        if connect:
            self._thread = threading.Thread(target=self._publisher_main, name="gw-publisher", daemon=True)
            self._thread.start()

    # -- input side (reader threads) ------------------------------------------------------
    def chunk(self, sensor_id: str, host_ns: int, data: bytes | None) -> None:
        """``data`` (or None: the port was lost) read at ``host_ns`` after session time 0."""
        with self._lock:
            b = self._batch.setdefault(sensor_id, [])
            if not b:
                self._batch_t0[sensor_id] = time.monotonic()
            b.append((int(host_ns), data))
            self._batch_bytes[sensor_id] = self._batch_bytes.get(sensor_id, 0) + 12 + len(data or b"")
            if self._batch_bytes[sensor_id] >= self.s.batch_max_bytes:
                self._seal(sensor_id)

    def lost(self, sensor_id: str, host_ns: int) -> None:
        self.chunk(sensor_id, host_ns, None)

    def notification(self, sensor_id: str, host_ns: int, data: bytes | None, *, kind: str) -> None:
        """A BLE notification's payload (or None: the link was lost) received at ``host_ns``,
        from a device of ``kind`` (:data:`firmware_bridge.ble_decode.KINDS`). Batches of BLE
        sensors are format v2: each record is one notification (its boundaries matter: one RSC
        measurement, one Movesense packet), and the batch names the decoder the worker must use."""
        with self._lock:
            src = self._source.get(sensor_id)
            if src is None or src["kind"] != kind:
                if src is not None:  # (the device's kind cannot change mid-batch: one decoder per batch)
                    self._seal(sensor_id)
                self._source[sensor_id] = {"ver": BATCH_VERSION_BLE, "transport": "ble", "kind": kind}
        self.chunk(sensor_id, host_ns, data)

    def end(self, sensor_id: str) -> None:
        """The sensor's stream is over: its last batch carries the end flag."""
        with self._lock:
            self._seal(sensor_id, end=True)

    def seal_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            for sid, b in list(self._batch.items()):
                if b and now - self._batch_t0[sid] >= self.s.batch_max_s:
                    self._seal(sid)

    def _seal(self, sensor_id: str, *, end: bool = False) -> None:
        b = self._batch.pop(sensor_id, [])
        self._batch_bytes.pop(sensor_id, None)
        if b or end:
            self.buf.seal(sensor_id, pack_records(b), end=end, source=self._source.get(sensor_id))
            self._wake.set()

    def capture_for(self, sensor_id: str) -> "_CaptureAdapter":
        """An object with the CaptureWriter interface (``chunk``/``lost``/``close``) for SerialSource."""
        return _CaptureAdapter(self, sensor_id)

    # -- publisher thread ---------------------------------------------------------------
    def _publisher_main(self) -> None:
        asyncio.run(self._publisher())

    async def _publisher(self) -> None:
        import nats

        nc = None
        while not self._stop.is_set() or self.buf.pending():
            try:
                if nc is None or nc.is_closed:
                    nc = await nats.connect(**{**self.s.connect_kw(), "max_reconnect_attempts": 2})
                    js = nc.jetstream(timeout=5)
                    kv = await ensure_layout(js, self.s)
                    for u, spec in self.units.items():  # register before the first frame goes out
                        await kv["units"].put(u, dumps(spec))
                    self.connected = True
                self.seal_due()
                files = self.buf.pending()
                if not files:
                    if self._stop.is_set():
                        break
                    await asyncio.get_running_loop().run_in_executor(None, self._wake.wait, 0.05)
                    self._wake.clear()
                    continue
                await self._publish_window(js, files[:self.CHUNK_FILES])
            except Exception as exc:  # network/cluster down, leader election: keep the files, retry
                self.connected = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.debug("gateway publish: %s", self.last_error)
                if nc is not None:
                    try:
                        await nc.close()
                    except Exception:
                        pass
                    nc = None
                if self._abandon.is_set():
                    break
                await asyncio.sleep(0.5)
        if nc is not None:
            await nc.close()

    #: files taken from the buffer per round of :meth:`_publish_window` (a round ends when all are acked)
    CHUNK_FILES = 512

    def _message(self, path: Path):
        head, body = self.buf.load(path)
        sid = head["sensor"]
        unit = self._unit_of.get(sid) or unit_key(self.session_id, "")
        hdr = {"Nats-Msg-Id": f"{unit}.{token(sid)}.{head['seq']}", "Gw-Sensor": sid, "Gw-Seq": str(head["seq"])}
        if head.get("end"):
            hdr["Gw-End"] = "1"
        if head.get("ver", 1) != 1:  # v1 (serial bytes) carries no version header: old workers read it
            hdr["Gw-Ver"] = str(head["ver"])
            hdr["Gw-Transport"] = str(head["transport"])
            hdr["Gw-Kind"] = str(head["kind"])
        return self.s.subject(unit, sid), body, hdr

    async def _publish_window(self, js, files: list[Path]) -> None:
        """Publish ``files`` (oldest first) with up to ``publish_window`` PubAcks awaited at once
        but at most one per subject (sensor): a sensor's next batch goes out only after the
        previous one is acked, so each subject's messages are stored in the order sealed even
        when a publish fails mid-window (a failure raises; the caller reconnects and starts again
        from the files left: those stored already are dropped as duplicates by their Msg-Id). A
        file is deleted only after its own PubAck."""
        queues: dict[str, list] = {}
        for path in files:  # per subject, in sealing order
            subject, body, hdr = self._message(path)
            queues.setdefault(subject, []).append((path, body, hdr))
        window = max(1, int(self.s.publish_window))
        inflight: dict[asyncio.Task, tuple[str, Path]] = {}
        busy: set[str] = set()
        order = list(queues)  # subjects by their oldest file
        try:
            while order or inflight:
                for subject in list(order):
                    if len(inflight) >= window:
                        break
                    if subject in busy:
                        continue
                    q = queues[subject]
                    path, body, hdr = q.pop(0)
                    if not q:
                        order.remove(subject)
                    busy.add(subject)
                    t = asyncio.ensure_future(js.publish(subject, body, headers=hdr, timeout=5))
                    inflight[t] = (subject, path)
                done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                failed = None
                for t in done:
                    subject, path = inflight.pop(t)
                    if t.exception() is not None:  # no PubAck: the file stays, re-sent in order after reconnecting
                        failed = failed or t.exception()
                        continue
                    path.unlink()  # only after the PubAck: a lost ack means a re-send, dropped as duplicate
                    busy.discard(subject)
                    self.published += 1
                if failed is not None:
                    raise failed
        finally:
            for t in inflight:  # a failure: the others' fate is unknown, their files stay for the re-send
                t.cancel()

    def close(self, *, timeout_s: float = 30.0) -> bool:
        """Seal what is batched and wait up to ``timeout_s`` until everything is published;
        True if the buffer is empty (False: the rest stays on disk for the next run)."""
        with self._lock:
            for sid in list(self._batch):
                self._seal(sid)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                self._abandon.set()
                self._thread.join(10)
        return not self.buf.pending()

    def health(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "published": self.published, "pending": len(self.buf.pending()),
                "connected": self.connected, "last_error": self.last_error}


class _CaptureAdapter:
    def __init__(self, gw: Gateway, sensor_id: str):
        self.gw, self.sensor_id, self.bytes = gw, sensor_id, 0

    def chunk(self, host_ns: int, data: bytes) -> None:
        self.bytes += len(data)
        self.gw.chunk(self.sensor_id, host_ns, data)

    def lost(self, host_ns: int) -> None:
        self.gw.lost(self.sensor_id, host_ns)

    def close(self) -> None:
        pass


DECODER_KEYS = ("fmt", "text_fs_hz", "text_acc_unit", "text_gyr_unit", "clock_warmup_s", "clock_window_s",
                "slip_threshold_samples")


def decoder_settings_from_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The PortDecoder settings a ``.gwcap`` header stands for (as :class:`CaptureSource` reads it)."""
    return {"fmt": meta.get("format", "auto"), "text_fs_hz": meta.get("text_fs_hz"),
            "text_acc_unit": meta.get("text_acc_unit", "g"), "text_gyr_unit": meta.get("text_gyr_unit", "dps"),
            "clock_warmup_s": meta.get("clock_warmup_s", 2.0), "clock_window_s": meta.get("clock_window_s", 60.0),
            "slip_threshold_samples": meta.get("slip_threshold_samples", 0.75)}


def feed_capture(gw: Gateway, sensor_id: str, records, *, speed: float | None = None, start_s: float = 0.0,
                 stop_s: float = float("inf"), end: bool = True, t0_monotonic: float | None = None) -> None:
    """Forward a capture's ``(host_s, bytes|None)`` records to ``gw`` (paced at ``speed`` x real
    time, or as fast as possible); only records with ``start_s <= host_s < stop_s``."""
    t0 = time.monotonic() if t0_monotonic is None else t0_monotonic
    for host_s, data in records:
        if host_s < start_s:
            continue
        if host_s >= stop_s:
            break
        if speed:
            wait = t0 + host_s / speed - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        gw.chunk(sensor_id, round(host_s * 1e9), data)
    if end:
        gw.end(sensor_id)
