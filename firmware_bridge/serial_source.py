"""Live serial/USB source: a pyserial reader in a worker thread -> SampleBlocks and Gaps.

The worker reads large chunks (whatever the driver holds, as pyserial's ``ReaderThread``
does: ``read(in_waiting or 1)``; never one byte at a time in a loop), stamps each chunk
with the host's monotonic clock, feeds the sans-I/O decoder (binary frames or plain-text
CSV, see PROTOCOL.md) and the :class:`~firmware_bridge.protocol_stream.BlockAssembler`,
and puts finished items on a queue the run loop consumes. When the port disappears (USB
unplugged) the error is logged, the port is reopened as soon as it is back, and the next
samples start a new segment after a :class:`~pipeline.records.Gap`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Literal

import serial

from firmware_bridge.protocol_stream import FORMATS, PortDecoder
from pipeline.errors import DeviceError, GaitwatchError
from pipeline.records import Gap, SampleBlock

log = logging.getLogger(__name__)

Format = Literal["auto", "binary", "text"]
__all__ = ["FORMATS", "LiveItems", "SerialSource"]


class SerialSource:
    """One serial port, one sensor. ``start()`` the worker, ``stop()`` it; items go to ``out``.

    ``host_t0_s``: ``clock()`` value of session time 0 (shared by all sources of a session,
    so all sensors share one time base). ``fmt``: ``binary``, ``text`` (needs
    ``text_fs_hz`` and the declared units) or ``auto`` (decided from the first bytes).
    ``capture``: optional :class:`~firmware_bridge.serial_capture.CaptureWriter` that keeps
    every byte read with its host time (``gaitwatch live --capture``).
    """

    def __init__(
        self,
        *,
        port: str,
        sensor_id: str,
        out: "queue.Queue[SampleBlock | Gap]",
        host_t0_s: float,
        baud: int = 921600,
        fmt: Format = "auto",
        text_fs_hz: float | None = None,
        text_acc_unit: str = "g",
        text_gyr_unit: str = "dps",
        clock_warmup_s: float = 2.0,
        clock_window_s: float = 60.0,
        slip_threshold_samples: float = 0.75,
        reopen_interval_s: float = 0.2,
        read_timeout_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        capture=None,
    ):
        if not reopen_interval_s > 0:
            raise ValueError(f"reopen_interval_s must be positive, got {reopen_interval_s!r}")
        # the decoder sees session time (host_s - host_t0_s) in whole ns, exactly as a
        # capture of this port stores it, so replaying the capture is bit-identical
        self.dec = PortDecoder(
            name=f"serial {port}", sensor_id=sensor_id, host_t0_s=0.0, fmt=fmt, text_fs_hz=text_fs_hz,
            text_acc_unit=text_acc_unit, text_gyr_unit=text_gyr_unit, clock_warmup_s=clock_warmup_s,
            clock_window_s=clock_window_s, slip_threshold_samples=slip_threshold_samples,
        )
        self.port = port
        self.sensor_id = sensor_id
        self.baud = int(baud)
        self.host_t0_s = float(host_t0_s)
        self.out = out
        self.reopen_interval_s = float(reopen_interval_s)
        self.read_timeout_s = float(read_timeout_s)
        self.capture = capture
        self._clock = clock
        self.opens = 0
        self.disconnects = 0
        self.connected = False
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ser: serial.Serial | None = None
        self._thread = threading.Thread(target=self._run, name=f"serial:{port}", daemon=True)

    @property
    def fmt(self) -> str:
        return self.dec.fmt

    @property
    def assembler(self):
        return self.dec.assembler

    # ------------------------------------------------------------------ control
    def open_once(self) -> None:
        """Open the port now (raises DeviceError with the reason): fail fast at start."""
        self._ser = self._open()

    def close(self) -> None:
        """Close a port opened by :meth:`open_once` that was never started."""
        if self._ser is not None:
            self._ser.close()
            self._ser = None
            self.connected = False

    def start(self) -> "SerialSource":
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _open(self) -> serial.Serial:
        try:
            ser = serial.Serial(self.port, self.baud, timeout=self.read_timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceError(f"cannot open serial port {self.port!r}: {exc}") from None
        self.opens += 1
        self.connected = True
        return ser

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                ser = self._ser
                self._ser = None
                if ser is None:
                    try:
                        ser = self._open()
                    except DeviceError:
                        self._stop.wait(self.reopen_interval_s)
                        continue
                    if self.opens > 1:
                        log.warning("serial %s: port is back, reading again", self.port)
                try:
                    self._read_loop(ser)
                except (serial.SerialException, OSError) as exc:
                    self.disconnects += 1
                    log.warning("serial %s: port lost (%s); reopening when it is back", self.port, exc)
                    with self._lock:
                        if self.capture is not None:
                            self.capture.lost(self._session_ns(self._clock()))
                        self._put(self.dec.interrupted())
                finally:
                    self.connected = False
                    try:
                        ser.close()
                    except Exception:  # noqa: BLE001 - closing a vanished port may fail too
                        pass
            with self._lock:
                self._put(self.dec.flush())
        except BaseException as exc:  # noqa: BLE001 - reported to the consumer, never lost
            self.error = exc
            log.debug("serial %s: reader stopped: %s", self.port, exc, exc_info=True)
        finally:
            if self.capture is not None:
                self.capture.close()

    def _read_loop(self, ser: serial.Serial) -> None:
        while not self._stop.is_set():
            data = ser.read(ser.in_waiting or 1)
            if not data:
                continue
            if ser.in_waiting:
                data += ser.read(ser.in_waiting)
            self.feed(data, host_s=self._clock())

    def feed(self, data: bytes, *, host_s: float) -> None:
        """Decode received bytes (the worker calls this; tests may too)."""
        ns = self._session_ns(host_s)
        with self._lock:
            if self.capture is not None:
                self.capture.chunk(ns, data)
            self._put(self.dec.feed(data, host_s=ns * 1e-9))

    def _session_ns(self, host_s: float) -> int:
        return int(round((host_s - self.host_t0_s) * 1e9))

    def _put(self, items: list[SampleBlock | Gap]) -> None:
        for it in items:
            self.out.put(it)

    # ------------------------------------------------------------------ health
    def health(self) -> dict[str, float | int | str | bool]:
        """Counters for the session summary and the health measurement."""
        with self._lock:
            h: dict[str, float | int | str | bool] = {
                "port": self.port,
                "connected": self.connected,
                "opens": self.opens,
                "disconnects": self.disconnects,
            }
            h.update(self.dec.health())
            return h


class LiveItems:
    """Items of all sources in arrival order, until ``duration_s`` has passed (or forever).

    Iterate it once. Setting ``stop`` (the CLI's SIGINT handler does) or Ctrl-C while
    waiting for data ends the stream cleanly (``interrupted`` is then True for Ctrl-C): the
    sources are stopped and what they flushed is still yielded, so the run loop flushes
    the engine and writes the summary. A reader that died with an
    unexpected error re-raises it here.
    """

    def __init__(
        self,
        sources: list[SerialSource],
        q: "queue.Queue[SampleBlock | Gap]",
        *,
        duration_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.05,
        stop: threading.Event | None = None,
    ):
        self.sources, self.q = sources, q
        self.stop = stop if stop is not None else threading.Event()
        self.duration_s, self.clock, self.poll_s = duration_s, clock, poll_s
        self.interrupted = False

    def __iter__(self) -> Iterator[SampleBlock | Gap]:
        clock, q = self.clock, self.q
        t_end = None if self.duration_s is None else clock() + self.duration_s
        try:
            while (t_end is None or clock() < t_end) and not self.stop.is_set():
                for s in self.sources:
                    if isinstance(s.error, GaitwatchError):
                        raise s.error
                    if s.error is not None:
                        raise DeviceError(f"serial {s.port}: reader failed: {s.error!r}") from s.error
                timeout = self.poll_s if t_end is None else max(0.0, min(self.poll_s, t_end - clock()))
                try:
                    item = q.get(timeout=timeout)
                except queue.Empty:
                    continue
                except KeyboardInterrupt:
                    self.interrupted = True
                    log.warning("interrupted: stopping the serial readers")
                    break
                yield item
        finally:
            for s in self.sources:
                s._stop.set()
            for s in self.sources:
                s.stop()
        while True:  # what the readers flushed on the way out
            try:
                yield q.get_nowait()
            except queue.Empty:
                break
