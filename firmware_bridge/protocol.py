"""The gaitwatch sensor wire protocol, version 1 (spec: ``firmware_bridge/PROTOCOL.md``).

Sans-I/O: nothing here opens a port or reads a clock. Sources hand received bytes to a
decoder's ``feed(bytes) -> list[frame]`` and get whole, CRC-checked frames back; partial
frames are kept until the rest arrives, garbage and corrupt frames are skipped and counted
(the decoder resynchronises at the next ``0x00`` delimiter, so the following good frame is
never lost).

Binary framing: ``COBS(header | payload | CRC-16) 0x00``. COBS (Cheshire & Baker,
"Consistent Overhead Byte Stuffing", IEEE/ACM Trans. Networking 7(2), 1999) is done by the
``cobs`` package (C extension); the CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF),
which is :func:`binascii.crc_hqx` with ``value=0xFFFF``.

Plain-text mode (:class:`TextDecoder`): CSV lines ``t_us,ax,ay,az[,gx,gy,gz]`` in units
declared by the user.
"""

from __future__ import annotations

import binascii
import struct
from collections import deque
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np
from cobs import cobs

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BBHI")  # version, type, seq, t_us
HEADER_SIZE = HEADER.size  # 8
CRC_SIZE = 2
#: Largest frame before COBS (header + payload + CRC). COBS adds one byte for frames of up
#: to 254 bytes and the delimiter one more, so an encoded frame is at most 244 bytes: one
#: BLE notification at ATT MTU 247 (247 - 3 bytes of ATT header).
MAX_RAW_FRAME = 242
MAX_ENCODED_FRAME = MAX_RAW_FRAME + 2  # COBS code byte + 0x00 delimiter
BLE_MAX_PAYLOAD = 244
#: Samples per frame at most: 19 with gyroscope (6 axes), 38 accelerometer only (3 axes).
MAX_SAMPLES = {6: (MAX_RAW_FRAME - HEADER_SIZE - 2 - CRC_SIZE) // 12, 3: (MAX_RAW_FRAME - HEADER_SIZE - 2 - CRC_SIZE) // 6}
SEQ_MOD = 1 << 16
T_US_MOD = 1 << 32


class FrameType(IntEnum):
    SAMPLES = 0x01
    DEVICE_INFO = 0x02
    SENSOR_CONFIG = 0x03
    STATUS = 0x04
    COMMAND = 0x10  # host -> device


class Command(IntEnum):
    START = 1
    STOP = 2
    SEND_INFO = 3  # device answers with DEVICE_INFO and SENSOR_CONFIG


class ProtocolError(ValueError):
    """A frame's content does not follow PROTOCOL.md (raised by the encoders; decoders count)."""


# ----------------------------------------------------------------------------- frames
# ``lost_before`` and ``restart`` are reception metadata set by the decoder's sequence
# tracker; they are not part of the bytes and are ignored by the encoder.


@dataclass(frozen=True, slots=True, eq=False)
class SamplesFrame:
    """``n`` consecutive IMU samples; ``t_us`` is the device time of sample 0.

    ``raw``: int16 array of shape (n, axes), axes 6 = ax ay az gx gy gz, 3 = ax ay az.
    """

    seq: int
    t_us: int
    raw: np.ndarray
    lost_before: int = 0
    restart: bool = False

    @property
    def n(self) -> int:
        return int(self.raw.shape[0])

    @property
    def axes(self) -> int:
        return int(self.raw.shape[1])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SamplesFrame)
            and (self.seq, self.t_us) == (other.seq, other.t_us)
            and self.raw.shape == other.raw.shape
            and bool(np.array_equal(self.raw, other.raw))
        )


@dataclass(frozen=True, slots=True)
class DeviceInfoFrame:
    seq: int
    t_us: int
    device_id: int  # 64-bit serial number
    fw_version: tuple[int, int, int]
    name: str
    lost_before: int = field(default=0, compare=False)
    restart: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class SensorConfigFrame:
    """Sample rate and scale factors: physical value = raw * scale.

    ``fs_mhz``: sample rate in millihertz (exact integer on the wire); ``acc_scale_ms2`` is
    m/s² per LSB, ``gyr_scale_dps`` deg/s per LSB (0 when there is no gyroscope).
    """

    seq: int
    t_us: int
    fs_mhz: int
    axes: int
    acc_range_g: int
    gyr_range_dps: int
    acc_scale_ms2: float
    gyr_scale_dps: float
    lost_before: int = field(default=0, compare=False)
    restart: bool = field(default=False, compare=False)

    @property
    def fs_hz(self) -> float:
        return self.fs_mhz / 1000.0


@dataclass(frozen=True, slots=True)
class StatusFrame:
    seq: int
    t_us: int
    battery_mv: int
    battery_pct: int  # 255 = unknown
    flags: int  # bit 0: IMU FIFO overflowed since last status, bit 1: charging
    dropped_samples: int  # device-side count since boot
    temperature_cdeg: int  # 0.01 degC
    lost_before: int = field(default=0, compare=False)
    restart: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class CommandFrame:
    seq: int
    t_us: int
    command: int
    arg: int = 0
    lost_before: int = field(default=0, compare=False)
    restart: bool = field(default=False, compare=False)


Frame = SamplesFrame | DeviceInfoFrame | SensorConfigFrame | StatusFrame | CommandFrame

_INFO = struct.Struct("<QBBBB")  # device_id, fw major, minor, patch, reserved; then name
_CONFIG = struct.Struct("<IBBHHff")  # fs_mhz, axes, reserved, acc_range_g, gyr_range_dps, scales
_STATUS = struct.Struct("<HBBIh")
_COMMAND = struct.Struct("<BI")
MAX_NAME_BYTES = 32


# ----------------------------------------------------------------------------- encoding
def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR)."""
    return binascii.crc_hqx(data, 0xFFFF)


def _check_u(name: str, v: int, bits: int) -> None:
    if not (0 <= int(v) < (1 << bits)):
        raise ProtocolError(f"{name} must be an unsigned {bits}-bit integer, got {v!r}")


def _payload(frame: Frame) -> tuple[FrameType, bytes]:
    if isinstance(frame, SamplesFrame):
        raw = np.asarray(frame.raw)
        if raw.ndim != 2 or raw.shape[1] not in MAX_SAMPLES:
            raise ProtocolError(f"samples must have shape (n, 3) or (n, 6), got {raw.shape}")
        n, axes = raw.shape
        if not 1 <= n <= MAX_SAMPLES[axes]:
            raise ProtocolError(f"a {axes}-axis frame holds 1..{MAX_SAMPLES[axes]} samples, got {n}")
        if raw.dtype != np.int16 and (raw.min() < -32768 or raw.max() > 32767):
            raise ProtocolError(f"samples must fit int16, got range [{raw.min()}, {raw.max()}]")
        return FrameType.SAMPLES, bytes((n, axes)) + raw.astype("<i2").tobytes()
    if isinstance(frame, DeviceInfoFrame):
        name = frame.name.encode("utf-8")
        if len(name) > MAX_NAME_BYTES:
            raise ProtocolError(f"device name is at most {MAX_NAME_BYTES} UTF-8 bytes, got {len(name)}")
        _check_u("device_id", frame.device_id, 64)
        for v in frame.fw_version:
            _check_u("fw_version part", v, 8)
        return FrameType.DEVICE_INFO, _INFO.pack(frame.device_id, *frame.fw_version, 0) + name
    if isinstance(frame, SensorConfigFrame):
        if frame.axes not in (3, 6):
            raise ProtocolError(f"axes must be 3 or 6, got {frame.axes}")
        _check_u("fs_mhz", frame.fs_mhz, 32)
        if frame.fs_mhz == 0:
            raise ProtocolError("fs_mhz must be positive, got 0")
        return FrameType.SENSOR_CONFIG, _CONFIG.pack(
            frame.fs_mhz, frame.axes, 0, frame.acc_range_g, frame.gyr_range_dps,
            frame.acc_scale_ms2, frame.gyr_scale_dps,
        )
    if isinstance(frame, StatusFrame):
        return FrameType.STATUS, _STATUS.pack(
            frame.battery_mv, frame.battery_pct, frame.flags, frame.dropped_samples, frame.temperature_cdeg
        )
    if isinstance(frame, CommandFrame):
        return FrameType.COMMAND, _COMMAND.pack(frame.command, frame.arg)
    raise ProtocolError(f"cannot encode {type(frame).__name__}")


def encode_raw(frame: Frame) -> bytes:
    """The frame before COBS: header | payload | CRC-16 (little-endian)."""
    ftype, payload = _payload(frame)
    _check_u("seq", frame.seq, 16)
    _check_u("t_us", frame.t_us, 32)
    body = HEADER.pack(PROTOCOL_VERSION, ftype, frame.seq, frame.t_us) + payload
    if len(body) + CRC_SIZE > MAX_RAW_FRAME:
        raise ProtocolError(f"frame is at most {MAX_RAW_FRAME} bytes before COBS, got {len(body) + CRC_SIZE}")
    return body + crc16(body).to_bytes(2, "little")


def encode_frame(frame: Frame) -> bytes:
    """Bytes on the wire for one frame: ``COBS(raw) + b'\\x00'`` (at most 244 bytes)."""
    return cobs.encode(encode_raw(frame)) + b"\x00"


def pack_notifications(encoded_frames: list[bytes], *, payload_max: int = BLE_MAX_PAYLOAD) -> list[bytes]:
    """Batch encoded frames into BLE notifications of at most ``payload_max`` bytes (MTU - 3).

    Frames are packed whole and in order, as many per notification as fit; a frame is split
    across notifications only when it is longer than ``payload_max`` (small MTU, e.g. 23 ->
    20 bytes). The receiver feeds notifications in order to one decoder, so both work; a
    lost notification then costs only the frames it touched.
    """
    if payload_max < 1:
        raise ValueError(f"payload_max must be >= 1, got {payload_max}")
    out: list[bytes] = []
    cur = bytearray()
    for f in encoded_frames:
        if cur and len(cur) + len(f) > payload_max:
            out.append(bytes(cur))
            cur.clear()
        if len(f) <= payload_max:
            cur += f
            continue
        for i in range(0, len(f), payload_max):  # only for payload_max < a frame
            part = f[i : i + payload_max]
            if len(part) == payload_max:
                out.append(part)
            else:
                cur += part
    if cur:
        out.append(bytes(cur))
    return out


# ----------------------------------------------------------------------------- decoding
@dataclass
class DecoderCounters:
    """What a decoder saw.

    ``crc_errors``/``malformed``/``bad_version``/``oversize`` count chunks between
    delimiters that held no good frame (by the first reason found); ``resyncs`` counts every
    time bytes were thrown away to find the next frame (such a chunk, or garbage in front of
    a good frame).
    """

    bytes_in: int = 0
    frames_ok: int = 0
    crc_errors: int = 0
    malformed: int = 0  # COBS error, too short, bad length for its type, unknown type
    oversize: int = 0  # more than MAX_ENCODED_FRAME bytes without a delimiter
    bad_version: int = 0
    resyncs: int = 0  # chunks (or chunk prefixes) thrown away to find the next frame
    bytes_discarded: int = 0
    lost_frames: int = 0  # from sequence-number jumps
    duplicate_frames: int = 0
    restarts: int = 0  # the device's sequence/time went backwards (reboot)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def decode_raw(raw: bytes) -> Frame:
    """Parse one frame after COBS (header | payload | CRC); raises ProtocolError."""
    if len(raw) < HEADER_SIZE + CRC_SIZE:
        raise ProtocolError(f"frame shorter than header + CRC ({HEADER_SIZE + CRC_SIZE} bytes): {len(raw)}")
    body, crc = raw[:-2], int.from_bytes(raw[-2:], "little")
    if crc16(body) != crc:
        raise _CrcError(f"CRC mismatch: computed 0x{crc16(body):04x}, frame says 0x{crc:04x}")
    version, ftype, seq, t_us = HEADER.unpack_from(body)
    if version != PROTOCOL_VERSION:
        raise _VersionError(f"protocol version {PROTOCOL_VERSION} expected, frame says {version}")
    p = body[HEADER_SIZE:]
    if ftype == FrameType.SAMPLES:
        if len(p) < 2:
            raise ProtocolError("samples frame without count/axes")
        n, axes = p[0], p[1]
        if axes not in (3, 6) or n == 0 or len(p) != 2 + 2 * n * axes:
            raise ProtocolError(f"samples frame: n={n} axes={axes} needs {2 + 2 * n * axes} payload bytes, got {len(p)}")
        raw_s = np.frombuffer(p, dtype="<i2", offset=2).reshape(n, axes)
        return SamplesFrame(seq, t_us, raw_s)
    if ftype == FrameType.DEVICE_INFO:
        if len(p) < _INFO.size or len(p) > _INFO.size + MAX_NAME_BYTES:
            raise ProtocolError(f"device-info payload must be {_INFO.size}..{_INFO.size + MAX_NAME_BYTES} bytes, got {len(p)}")
        dev, ma, mi, pa, _ = _INFO.unpack_from(p)
        return DeviceInfoFrame(seq, t_us, dev, (ma, mi, pa), p[_INFO.size:].decode("utf-8", "replace"))
    if ftype == FrameType.SENSOR_CONFIG:
        if len(p) != _CONFIG.size:
            raise ProtocolError(f"sensor-config payload must be {_CONFIG.size} bytes, got {len(p)}")
        fs, axes, _, ar, gr, asc, gsc = _CONFIG.unpack(p)
        if axes not in (3, 6) or fs == 0:
            raise ProtocolError(f"sensor-config: axes must be 3 or 6 and fs positive, got axes={axes} fs_mhz={fs}")
        return SensorConfigFrame(seq, t_us, fs, axes, ar, gr, asc, gsc)
    if ftype == FrameType.STATUS:
        if len(p) != _STATUS.size:
            raise ProtocolError(f"status payload must be {_STATUS.size} bytes, got {len(p)}")
        return StatusFrame(seq, t_us, *_STATUS.unpack(p))
    if ftype == FrameType.COMMAND:
        if len(p) != _COMMAND.size:
            raise ProtocolError(f"command payload must be {_COMMAND.size} bytes, got {len(p)}")
        return CommandFrame(seq, t_us, *_COMMAND.unpack(p))
    raise ProtocolError(f"unknown frame type 0x{ftype:02x}")


class _CrcError(ProtocolError):
    pass


class _VersionError(ProtocolError):
    pass


class SequenceTracker:
    """Lost, duplicated and restarted frames from the 16-bit sequence number.

    One counter per device across all frame types, incremented by 1 per frame and wrapping
    at 2^16. A frame whose ``(type, seq, t_us)`` was seen among the last ``window`` frames is
    a duplicate (BLE re-delivery after a reconnect); a forward jump of ``d`` counts ``d-1``
    lost frames; a backward jump (or device time going back by more than 1 s) is a device
    restart. State survives a reconnect: keep one tracker per device, not per connection.
    """

    def __init__(self, *, window: int = 512):
        self._window = window
        self._recent: deque[tuple[int, int, int]] = deque()
        self._recent_set: set[tuple[int, int, int]] = set()
        self._last_seq: int | None = None
        self._last_t_us: int | None = None

    def check(self, ftype: int, seq: int, t_us: int) -> tuple[str, int]:
        """Returns ("dup", 0), ("restart", 0) or ("ok", lost_before)."""
        key = (ftype, seq, t_us)
        if key in self._recent_set:
            return "dup", 0
        self._recent.append(key)
        self._recent_set.add(key)
        if len(self._recent) > self._window:
            self._recent_set.discard(self._recent.popleft())
        last, last_t = self._last_seq, self._last_t_us
        self._last_seq, self._last_t_us = seq, t_us
        if last is None:
            return "ok", 0
        d = (seq - last) % SEQ_MOD
        dt = (t_us - last_t + T_US_MOD // 2) % T_US_MOD - T_US_MOD // 2
        if d == 0 or d >= SEQ_MOD // 2 or dt < -1_000_000:
            return "restart", 0
        return "ok", d - 1


class FrameDecoder:
    """Binary decoder: ``feed(bytes) -> list[Frame]`` (COBS + CRC-16, see PROTOCOL.md).

    Duplicates are dropped (counted); each returned frame carries ``lost_before`` (frames
    missing just before it, from the sequence number) and ``restart``. Call
    :meth:`reset_stream` when the byte stream is interrupted (port reopened, BLE
    reconnect): the partial frame is dropped but sequence state is kept.
    """

    def __init__(self, *, track_sequence: bool = True):
        self.counters = DecoderCounters()
        self._buf = b""
        self._trimmed = False
        self._seq = SequenceTracker() if track_sequence else None

    def reset_stream(self) -> None:
        if self._buf:
            self.counters.bytes_discarded += len(self._buf)
            self.counters.resyncs += 1
        self._buf = b""
        self._trimmed = False

    def feed(self, data: bytes) -> list[Frame]:
        c = self.counters
        c.bytes_in += len(data)
        buf = self._buf + bytes(data) if self._buf else bytes(data)
        parts = buf.split(b"\x00")
        tail = parts.pop()
        out: list[Frame] = []
        for chunk in parts:
            if chunk:  # empty chunks are idle delimiters
                chunk = self._trim(chunk)
                frame = self._decode_chunk(chunk, self._trimmed)
                if frame is not None:
                    out.append(frame)
            self._trimmed = False
        self._buf = self._trim(tail)
        return out

    def _trim(self, chunk: bytes) -> bytes:
        """No frame is longer than MAX_ENCODED_FRAME: only the last bytes of a longer run
        can still be (the start of) a frame; the rest is discarded (bounded memory)."""
        keep = MAX_ENCODED_FRAME - 1
        if len(chunk) <= keep:
            return chunk
        self.counters.bytes_discarded += len(chunk) - keep
        if not self._trimmed:
            self.counters.oversize += 1
        self._trimmed = True
        return chunk[-keep:]

    def _decode_chunk(self, chunk: bytes, trimmed: bool) -> Frame | None:
        c = self.counters
        try:
            frame = decode_raw(cobs.decode(chunk))
        except (ProtocolError, cobs.DecodeError) as exc:
            # Garbage right before a frame (no 0x00 between) is one chunk with the frame:
            # a good frame is then a suffix of the chunk. Accept the longest suffix that
            # decodes, passes the CRC *and* the structural checks (version, type, exact
            # payload length), which keeps false acceptance far below the CRC's 2^-16.
            frame = None
            for k in range(1, len(chunk) - (HEADER_SIZE + CRC_SIZE)):
                try:
                    frame = decode_raw(cobs.decode(chunk[k:]))
                    break
                except (ProtocolError, cobs.DecodeError):
                    continue
            c.resyncs += 1
            if frame is None:
                c.bytes_discarded += len(chunk)
                if trimmed:
                    pass  # already counted as oversize
                elif isinstance(exc, _CrcError):
                    c.crc_errors += 1
                elif isinstance(exc, _VersionError):
                    c.bad_version += 1
                else:
                    c.malformed += 1
                return None
            c.bytes_discarded += k
        c.frames_ok += 1
        if self._seq is None:
            return frame
        verdict, lost = self._seq.check(int(_type_of(frame)), frame.seq, frame.t_us)
        if verdict == "dup":
            c.duplicate_frames += 1
            return None
        if verdict == "restart":
            c.restarts += 1
            return _with(frame, restart=True)
        if lost:
            c.lost_frames += lost
            return _with(frame, lost_before=lost)
        return frame


def _type_of(frame: Frame) -> FrameType:
    return {
        SamplesFrame: FrameType.SAMPLES,
        DeviceInfoFrame: FrameType.DEVICE_INFO,
        SensorConfigFrame: FrameType.SENSOR_CONFIG,
        StatusFrame: FrameType.STATUS,
        CommandFrame: FrameType.COMMAND,
    }[type(frame)]


def _with(frame: Frame, **kw) -> Frame:
    return replace(frame, **kw)


# ----------------------------------------------------------------------------- text mode
ACC_UNITS_MS2 = {"ms2": 1.0, "g": 9.80665, "mg": 9.80665e-3}
GYR_UNITS_DPS = {"dps": 1.0, "rads": 180.0 / np.pi, "mdps": 1e-3}
MAX_TEXT_LINE = 256


@dataclass(frozen=True, slots=True, eq=False)
class TextSamples:
    """Consecutive CSV lines: device times (µs, as sent) and values in SI / deg/s."""

    t_us: np.ndarray  # int64, (n,)
    acc_ms2: np.ndarray  # (n, 3)
    gyr_dps: np.ndarray | None  # (n, 3) or None

    @property
    def n(self) -> int:
        return int(self.t_us.shape[0])


@dataclass
class TextCounters:
    bytes_in: int = 0
    lines_ok: int = 0
    bad_lines: int = 0  # wrong field count, not numbers, too long, changed axis count
    comment_lines: int = 0  # blank, '#...' or a header such as 't_us,ax,...'
    bytes_discarded: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class TextDecoder:
    """Plain-text mode: ``feed(bytes) -> list[TextSamples]`` (one per feed with data).

    Lines are ``t_us,ax,ay,az`` or ``t_us,ax,ay,az,gx,gy,gz`` (CRLF or LF), values in the
    declared units (``acc_unit`` in ``g|mg|ms2``, ``gyr_unit`` in ``dps|mdps|rads``). The
    first good line fixes the axis count; a line with the other count is a bad line.
    Bad lines are skipped and counted; the next line is decoded normally.
    """

    def __init__(self, *, acc_unit: str = "g", gyr_unit: str = "dps"):
        if acc_unit not in ACC_UNITS_MS2:
            raise ValueError(f"acc_unit must be one of {sorted(ACC_UNITS_MS2)}, got {acc_unit!r}")
        if gyr_unit not in GYR_UNITS_DPS:
            raise ValueError(f"gyr_unit must be one of {sorted(GYR_UNITS_DPS)}, got {gyr_unit!r}")
        self.acc_unit, self.gyr_unit = acc_unit, gyr_unit
        self._acc_k = ACC_UNITS_MS2[acc_unit]
        self._gyr_k = GYR_UNITS_DPS[gyr_unit]
        self.counters = TextCounters()
        self._buf = b""
        self._skipping = False
        self.fields: int | None = None

    def reset_stream(self) -> None:
        self.counters.bytes_discarded += len(self._buf)
        self._buf = b""
        self._skipping = False

    def feed(self, data: bytes) -> list[TextSamples]:
        c = self.counters
        c.bytes_in += len(data)
        lines = (self._buf + bytes(data)).split(b"\n")
        tail = lines.pop()
        if len(tail) > MAX_TEXT_LINE:
            c.bytes_discarded += len(tail)
            if not self._skipping:
                c.bad_lines += 1
            self._skipping, tail = True, b""
        self._buf = tail
        rows: list[list[float]] = []
        for line in lines:
            if self._skipping:
                self._skipping = False
                c.bytes_discarded += len(line)
                continue
            row = self._parse(line)
            if row is not None:
                rows.append(row)
        if not rows:
            return []
        arr = np.asarray(rows, dtype=np.float64)
        t = arr[:, 0].astype(np.int64)
        acc = arr[:, 1:4] * self._acc_k
        gyr = arr[:, 4:7] * self._gyr_k if arr.shape[1] == 7 else None
        return [TextSamples(t, acc, gyr)]

    def _parse(self, line: bytes) -> list[float] | None:
        c = self.counters
        s = line.strip()
        if not s or s[:1] == b"#" or s[:1].isalpha():
            c.comment_lines += 1
            return None
        parts = s.split(b",")
        try:
            if len(parts) not in (4, 7):
                raise ValueError
            t = int(parts[0])
            if t < 0:
                raise ValueError
            vals = [float(t)] + [float(p) for p in parts[1:]]
        except ValueError:
            c.bad_lines += 1
            c.bytes_discarded += len(line) + 1
            return None
        if not all(np.isfinite(vals)):
            c.bad_lines += 1
            return None
        if self.fields is None:
            self.fields = len(parts)
        elif len(parts) != self.fields:
            c.bad_lines += 1
            return None
        c.lines_ok += 1
        return vals


def looks_like_text(data: bytes) -> bool | None:
    """Guess the port's mode from its first bytes: True text, False binary, None unsure.

    Binary frames are delimited by 0x00, which never occurs in text; text is printable ASCII
    with at least one complete CSV line of 4 or 7 numeric fields.
    """
    if b"\x00" in data:
        return False
    if any(b >= 0x80 or (b < 0x20 and b not in (0x09, 0x0A, 0x0D)) for b in data):
        return False
    for line in data.split(b"\n")[1:-1]:  # the first may be partial, the last unfinished
        parts = line.strip().split(b",")
        if len(parts) in (4, 7):
            try:
                [float(p) for p in parts]
                return True
            except ValueError:
                continue
    return None
