"""Live BLE sensors with bleak: scan, connect one at a time, enqueue notifications, reconnect.

Practice followed (bleak documentation and known pitfalls):

* **Scan first, connect with the discovered** ``BLEDevice`` (``BleakScanner.find_device_by_filter``),
  never with a bare address: ``BleakClient(address)`` scans implicitly, which bleak's
  docs warn breaks when several devices connect at the same time.
* **One connect at a time**: BlueZ rejects a second connection attempt while one is in
  progress, so scanning + connecting + subscribing of all devices is serialised by one
  ``asyncio.Lock``; streaming devices keep running meanwhile.
* **The notify callback is synchronous and only enqueues** ``(host receive time, bytes)``
  on a thread-safe queue; decoding, the clock fit and the detectors run in the consumer
  (the run loop's thread, :meth:`BleSession.items`), never in bleak's event loop.
* **Reconnect supervisor** per device: on an unsolicited disconnect (bleak's
  ``disconnected_callback``) the link is marked lost (the decoder inserts a ``Gap``
  before the next samples), the **old client is disconnected first** — otherwise BlueZ may
  deliver every notification twice after the reconnect (bleak issue #2002) — then it
  rescans and reconnects with exponential backoff (``backoff_initial_s`` doubling up to
  ``backoff_max_s``; it keeps trying for as long as the run lasts, since a runner may come
  back into range), re-subscribes and resends the start command. Notifications of a
  previous connection that still arrive are dropped (``stale_notifications``); frames
  re-delivered by the device are dropped by sequence number in the decoder.
* The event loop runs in its own thread, so a slow sink or detector never delays the
  acknowledgement of notifications.

Health per sensor (``health()``): notifications, bytes, connects, disconnects, scan and
connect failures, stale notifications, the queue latency from callback to decoder (mean
and max, ms), plus the decoder's counters (lost/duplicate frames, gaps, clock skew).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from firmware_bridge.ble_decode import KINDS, Item, kind_of, make_decoder
from pipeline.errors import DeviceError, GaitwatchError
from pipeline.records import SensorInfo

log = logging.getLogger(__name__)


@dataclass
class BleTarget:
    """A device to connect: ``query`` is its advertised name or its address."""

    query: str
    sensor: SensorInfo
    kind: str | None = None  # None: from what it advertises

    def matches(self, device, adv) -> bool:
        q = self.query.lower()
        names = {(getattr(device, "name", None) or "").lower(), (getattr(adv, "local_name", None) or "").lower()}
        return device.address.lower() == q or q in names


@dataclass
class LinkCounters:
    notifications: int = 0
    bytes: int = 0
    connects: int = 0
    disconnects: int = 0
    scan_misses: int = 0
    connect_failures: int = 0
    stale_notifications: int = 0
    latency_ms_max: float = 0.0
    latency_ms_sum: float = 0.0


@dataclass
class _Link:
    idx: int
    target: BleTarget
    kind: str | None
    counters: LinkCounters = field(default_factory=LinkCounters)
    connected: bool = False
    generation: int = 0
    address: str = ""
    decoder: object = None
    capture: object = None


_LOST = None  # queue payload meaning "link lost at this time"


class BleSession:
    """All BLE sensors of one run.

    ``client_backend`` / ``scanner_backend``: bleak backend classes (``None``: the
    platform's, i.e. BlueZ over D-Bus on Linux); tests pass a scripted backend through
    these, so the real ``BleakClient`` / ``BleakScanner`` façades are exercised.
    ``host_t0_s``: ``clock()`` value of session time 0, shared with other sources.
    """

    def __init__(
        self,
        targets: list[BleTarget],
        *,
        host_t0_s: float,
        clock: Callable[[], float] = time.monotonic,
        client_backend=None,
        scanner_backend=None,
        scan_timeout_s: float = 10.0,
        connect_timeout_s: float = 20.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        options: dict | None = None,
        capture_dir=None,
        session_meta: dict | None = None,
    ):
        if not targets:
            raise ValueError("BleSession needs at least one target")
        for name, v in (("scan_timeout_s", scan_timeout_s), ("connect_timeout_s", connect_timeout_s),
                        ("backoff_initial_s", backoff_initial_s), ("backoff_max_s", backoff_max_s)):
            if not v > 0:
                raise ValueError(f"{name} must be positive, got {v!r}")
        if backoff_max_s < backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        for t in targets:
            if t.kind is not None and t.kind not in KINDS:
                raise ValueError(f"unknown BLE device kind {t.kind!r}; known: {sorted(KINDS)}")
        self.host_t0_s = float(host_t0_s)
        self.clock = clock
        self.client_backend, self.scanner_backend = client_backend, scanner_backend
        self.scan_timeout_s, self.connect_timeout_s = float(scan_timeout_s), float(connect_timeout_s)
        self.backoff_initial_s, self.backoff_max_s = float(backoff_initial_s), float(backoff_max_s)
        self.options = dict(options or {})
        self.capture_dir = capture_dir
        self.session_meta = dict(session_meta or {})
        self.links = [_Link(i, t, t.kind) for i, t in enumerate(targets)]
        # queue.Queue, not SimpleQueue: CPython 3.11's SimpleQueue.get(timeout=...) blocks until
        # the next put() when a signal handler that runs during the wait outlasts the timeout
        # (it then waits with a negative, i.e. infinite, timeout). The Ctrl-C handler's log line
        # took longer than the 50 ms poll in a software-emulated VM while every link was down,
        # so nothing was ever put again and `live` hung (tests/test_ble_supervisor.py)
        self.raw: "queue.Queue[tuple[int, float, bytes | None]]" = queue.Queue()
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_async: asyncio.Event | None = None
        self._started = threading.Event()
        self._stop_requested = False
        self._thread = threading.Thread(target=self._thread_main, name="ble", daemon=True)
        self._lock = threading.Lock()  # decoders: consumer vs health()

    # ------------------------------------------------------------------ control
    def start(self) -> "BleSession":
        self._thread.start()
        self._started.wait(5.0)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop_requested = True
        loop, ev = self._loop, self._stop_async
        if loop is not None and ev is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # loop already closed
                pass
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the consumer
            self.error = exc
            log.debug("ble: event loop stopped: %s", exc, exc_info=True)
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_async = asyncio.Event()
        if self._stop_requested:
            self._stop_async.set()
        self._started.set()
        lock = asyncio.Lock()
        await asyncio.gather(*(self._supervise(link, lock) for link in self.links))

    # ------------------------------------------------------------------ supervisor
    def _now(self) -> float:
        return self.clock()

    async def _find(self, link: _Link):
        from bleak import BleakScanner

        found: dict = {}

        def want(device, adv) -> bool:
            if link.target.matches(device, adv):
                found["adv"] = adv
                return True
            return False

        kw = {} if self.scanner_backend is None else {"backend": self.scanner_backend}
        device = await BleakScanner.find_device_by_filter(want, timeout=self.scan_timeout_s, **kw)
        return device, found.get("adv")

    async def _supervise(self, link: _Link, lock: asyncio.Lock) -> None:
        from bleak import BleakClient
        from bleak.exc import BleakError

        stop = self._stop_async
        delay = self.backoff_initial_s
        name = link.target.query
        while not stop.is_set():
            client = None
            lost = asyncio.Event()
            try:
                async with lock:  # BlueZ: one scan/connect at a time
                    if stop.is_set():
                        break
                    device, adv = await self._find(link)
                    if device is None:
                        link.counters.scan_misses += 1
                        raise _Retry(f"not found in a {self.scan_timeout_s:g} s scan")
                    kind = KINDS[link.kind] if link.kind else kind_of(list(getattr(adv, "service_uuids", []) or []),
                                                                      getattr(adv, "local_name", None) or device.name)
                    if kind is None:
                        raise DeviceError(f"BLE {name}: advertises no supported service; give its kind with --ble-kind")
                    link.kind = kind.name
                    link.address = device.address

                    def on_disconnect(_client, ev=lost) -> None:
                        ev.set()

                    kw = {} if self.client_backend is None else {"backend": self.client_backend}
                    client = BleakClient(device, disconnected_callback=on_disconnect, timeout=self.connect_timeout_s, **kw)
                    await asyncio.wait_for(client.connect(), self.connect_timeout_s)
                    link.generation += 1
                    await client.start_notify(kind.notify_uuid, self._callback(link, link.generation))
                    cmd = kind.start_command(self.options)
                    if cmd is not None and kind.write_uuid is not None:
                        await client.write_gatt_char(kind.write_uuid, cmd, response=True)
                link.connected = True
                link.counters.connects += 1
                delay = self.backoff_initial_s
                level = logging.WARNING if link.counters.connects > 1 else logging.INFO  # reconnects stand out
                log.log(level, "BLE %s: connected (%s, %s)", name, device.address, kind.name)
                waiter = asyncio.ensure_future(lost.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                if lost.is_set():
                    log.warning("BLE %s: link lost; reconnecting", name)
            except _Retry as exc:
                log.info("BLE %s: %s; retrying in %.1f s", name, exc, delay)
            except GaitwatchError:
                raise
            except (BleakError, asyncio.TimeoutError, OSError) as exc:
                link.counters.connect_failures += 1
                log.warning("BLE %s: connect failed (%s); retrying in %.1f s", name, exc or type(exc).__name__, delay)
            finally:
                if link.connected:
                    link.connected = False
                    link.counters.disconnects += 0 if stop.is_set() and not lost.is_set() else 1
                    link.generation += 1  # late notifications of this connection are stale
                    self.raw.put((link.idx, self._now(), _LOST))
                if client is not None:  # bleak #2002: drop the old client before a new one
                    try:
                        await asyncio.wait_for(client.disconnect(), 5.0)
                    except Exception as exc:  # noqa: BLE001 - it may be gone already
                        log.debug("BLE %s: disconnect of the old client: %s", name, exc)
            if stop.is_set():
                break
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2.0, self.backoff_max_s)

    def _callback(self, link: _Link, generation: int):
        put, now, c = self.raw.put, self._now, link.counters

        def on_notify(_char, data: bytearray) -> None:  # synchronous: enqueue only
            if link.generation != generation:
                c.stale_notifications += 1
                return
            put((link.idx, now(), bytes(data)))

        return on_notify

    # ------------------------------------------------------------------ consumer
    def _decoder(self, link: _Link):
        if link.decoder is None:
            if link.kind is None:  # cannot happen: bytes arrive only after the kind is known
                raise DeviceError(f"BLE {link.target.query}: data before the device kind is known")
            link.decoder = make_decoder(link.kind, sensor=link.target.sensor, name=f"ble {link.target.query}",
                                        options=self.options)
            if self.capture_dir is not None:
                from pathlib import Path

                from firmware_bridge.serial_capture import CaptureWriter

                s = link.target.sensor
                link.capture = CaptureWriter(Path(self.capture_dir) / f"{s.sensor_id}.gwcap", meta={
                    "transport": "ble", "kind": link.kind, "device": link.target.query, "address": link.address,
                    "sensor_id": s.sensor_id, "placement": s.placement, "side": s.side, **self.options,
                    **self.session_meta})
        return link.decoder

    def handle(self, idx: int, host_s: float, data: bytes | None) -> list[Item]:
        """Decode one queued notification (or a lost-link marker) of link ``idx``."""
        link = self.links[idx]
        ns = int(round((host_s - self.host_t0_s) * 1e9))
        with self._lock:
            dec = self._decoder(link)
            if data is None:
                if link.capture is not None:
                    link.capture.lost(ns)
                return dec.interrupted()
            c = link.counters
            c.notifications += 1
            c.bytes += len(data)
            lat_ms = (self._now() - host_s) * 1e3
            c.latency_ms_sum += lat_ms
            c.latency_ms_max = max(c.latency_ms_max, lat_ms)
            if link.capture is not None:
                link.capture.chunk(ns, data)
            return dec.feed(data, host_s=ns * 1e-9)

    def items(self, *, duration_s: float | None = None, stop: threading.Event | None = None,
              poll_s: float = 0.05) -> Iterator[Item]:
        """Decoded items of all devices in arrival order until ``duration_s`` or ``stop``."""
        stop = stop if stop is not None else threading.Event()
        t_end = None if duration_s is None else self._now() + duration_s
        try:
            while (t_end is None or self._now() < t_end) and not stop.is_set():
                if self.error is not None:
                    if isinstance(self.error, GaitwatchError):
                        raise self.error
                    raise DeviceError(f"BLE: event loop failed: {self.error!r}") from self.error
                timeout = poll_s if t_end is None else max(0.0, min(poll_s, t_end - self._now()))
                try:
                    idx, host_s, data = self.raw.get(timeout=timeout)
                except queue.Empty:
                    continue
                yield from self.handle(idx, host_s, data)
        finally:
            self.stop()
        while True:  # what arrived before the links closed
            try:
                idx, host_s, data = self.raw.get_nowait()
            except queue.Empty:
                break
            yield from self.handle(idx, host_s, data)
        for link in self.links:
            if link.decoder is not None:
                with self._lock:
                    out = link.decoder.flush()
                yield from out
            if link.capture is not None:
                link.capture.close()

    # ------------------------------------------------------------------ health
    def health(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for link in self.links:
            c = link.counters
            h: dict = {"device": link.target.query, "address": link.address, "kind": link.kind or "",
                       "connected": link.connected, "notifications": c.notifications, "bytes": c.bytes,
                       "connects": c.connects, "reconnects": max(0, c.connects - 1), "disconnects": c.disconnects,
                       "scan_misses": c.scan_misses, "connect_failures": c.connect_failures,
                       "stale_notifications": c.stale_notifications,
                       "latency_ms_mean": c.latency_ms_sum / c.notifications if c.notifications else float("nan"),
                       "latency_ms_max": c.latency_ms_max}
            with self._lock:
                if link.decoder is not None:
                    h.update(link.decoder.health())
            out[link.target.sensor.sensor_id] = h
        return out


class _Retry(Exception):
    pass


# ---------------------------------------------------------------------- scanning
@dataclass(frozen=True)
class Found:
    name: str
    address: str
    rssi: int
    kind: str  # "" when not supported

    @property
    def what(self) -> str:
        return KINDS[self.kind].description if self.kind else "not supported"


async def scan_async(*, timeout_s: float = 5.0, backend=None) -> list[Found]:
    from bleak import BleakScanner

    kw = {} if backend is None else {"backend": backend}
    seen = await BleakScanner.discover(timeout=timeout_s, return_adv=True, **kw)
    out = []
    for device, adv in seen.values():
        name = adv.local_name or device.name or ""
        k = kind_of(list(adv.service_uuids or []), name)
        out.append(Found(name, device.address, int(adv.rssi), k.name if k else ""))
    out.sort(key=lambda f: (f.kind == "", -f.rssi, f.address))
    return out


def scan(*, timeout_s: float = 5.0, backend=None) -> list[Found]:
    """Nearby BLE devices, supported ones first (strongest signal first)."""
    return asyncio.run(scan_async(timeout_s=timeout_s, backend=backend))
