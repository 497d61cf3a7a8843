"""Raw serial captures: every byte a port delivered, with the host time it was read.

A capture replays through the very same decoder, clock fit and assembler
(:class:`~firmware_bridge.protocol_stream.PortDecoder`) with the recorded host times, so it
gives exactly the items (and, through the engine, the steps) of the live run that wrote
it; a bug seen live can be reproduced at the desk.

File format (``.gwcap``, little-endian)::

    b"GWCAP1\\n"
    one line of JSON: {"port", "sensor_id", "format", "text_fs_hz", "text_acc_unit",
                       "text_gyr_unit", "start_wall_ns", ...}
    records: i64 host_ns (host time since session time 0) | u32 length | bytes
             length 0xFFFFFFFF (no bytes): the port was lost at that time

Records are flushed to the OS as they are written; a capture cut short by a crash is
readable up to its last whole record. Live decoding sees the host time as
``host_ns * 1e-9`` too (:class:`~firmware_bridge.serial_source.SerialSource`), so a replay
repeats its floating-point arithmetic bit for bit.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from firmware_bridge.protocol_stream import PortDecoder
from pipeline.errors import InputError
from pipeline.records import Gap, SampleBlock

MAGIC = b"GWCAP1\n"
_REC = struct.Struct("<qI")
LOST = 0xFFFFFFFF


class CaptureWriter:
    """Appends ``(host time, bytes)`` records; ``meta`` describes the port (JSON-able)."""

    def __init__(self, path: str | Path, *, meta: dict[str, Any]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: BinaryIO | None = self.path.open("wb")
        self._f.write(MAGIC + json.dumps(meta, sort_keys=True).encode() + b"\n")
        self.bytes = 0

    def chunk(self, host_ns: int, data: bytes) -> None:
        """``data`` read at ``host_ns`` nanoseconds after session time 0."""
        if self._f is None:
            return
        self._f.write(_REC.pack(int(host_ns), len(data)) + data)
        self._f.flush()
        self.bytes += len(data)

    def lost(self, host_ns: int) -> None:
        if self._f is not None:
            self._f.write(_REC.pack(int(host_ns), LOST))
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def read_capture(path: str | Path) -> tuple[dict[str, Any], Iterator[tuple[float, bytes | None]]]:
    """``(meta, records)``: records are ``(host_s, bytes)`` or ``(host_s, None)`` (port lost)."""
    p = Path(path)
    try:
        f = p.open("rb")
    except FileNotFoundError:
        raise InputError("capture file not found", path=str(p)) from None
    magic = f.read(len(MAGIC))
    if magic != MAGIC:
        f.close()
        raise InputError(f"not a gaitwatch serial capture (expected {MAGIC!r} at the start, got {magic!r})", path=str(p))
    try:
        meta = json.loads(f.readline())
    except ValueError as exc:
        f.close()
        raise InputError(f"capture header is not JSON: {exc}", path=str(p), line=2) from None

    def records() -> Iterator[tuple[float, bytes | None]]:
        with f:
            while True:
                head = f.read(_REC.size)
                if len(head) < _REC.size:
                    return
                t_ns, n = _REC.unpack(head)
                if n == LOST:
                    yield t_ns * 1e-9, None
                    continue
                data = f.read(n)
                if len(data) < n:
                    return  # cut short (crash while writing): keep what is whole
                yield t_ns * 1e-9, data

    return meta, records()


class CaptureSource:
    """Replays a capture: the same :class:`PortDecoder` fed with the recorded host times.

    Session time 0 is the capture's own (host times are stored relative to it), so the
    captures of one live session keep their common time base.
    """

    def __init__(self, path: str | Path, *, sensor_id: str | None = None, **decoder_kw: Any):
        self.path = Path(path)
        self.meta, self._records = read_capture(self.path)
        m = self.meta
        self.sensor_id = sensor_id or m.get("sensor_id") or self.path.stem
        kw = {
            "fmt": m.get("format", "auto"),
            "text_fs_hz": m.get("text_fs_hz"),
            "text_acc_unit": m.get("text_acc_unit", "g"),
            "text_gyr_unit": m.get("text_gyr_unit", "dps"),
            "clock_warmup_s": m.get("clock_warmup_s", 2.0),
            "clock_window_s": m.get("clock_window_s", 60.0),
            "slip_threshold_samples": m.get("slip_threshold_samples", 0.75),
        }
        kw.update(decoder_kw)
        self.dec = PortDecoder(name=f"capture {self.path}", sensor_id=self.sensor_id, host_t0_s=0.0, **kw)
        self.chunks = 0
        self.disconnects = 0

    def items(self) -> Iterator[SampleBlock | Gap]:
        for host_s, data in self._records:
            if data is None:
                self.disconnects += 1
                yield from self.dec.interrupted()
            else:
                self.chunks += 1
                yield from self.dec.feed(data, host_s=host_s)
        yield from self.dec.flush()

    def health(self) -> dict[str, Any]:
        h: dict[str, Any] = {"port": str(self.path), "chunks": self.chunks, "disconnects": self.disconnects}
        h.update(self.dec.health())
        return h
