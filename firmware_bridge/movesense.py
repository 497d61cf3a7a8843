"""Movesense sensors over the GATT SensorData Protocol (GSP), stream ``/Meas/IMU6``.

Which device: a Movesense MD / Flash / HR+ sensor (LSM6DS3 accelerometer + gyroscope)
running Movesense's ``gatt_sensordata_app`` firmware, which exposes GSP
(https://movesense.com/docs/esw/gatt_sensordata_protocol, "GATT SensorData Protocol
specification", Movesense document GD-77 v1.0):

* service ``34802252-7185-4d5d-b431-630e7050e8f0``; commands are written to
  ``34800001-…`` (write), responses and data arrive on ``34800002-…`` (notify);
* command = ``u8 command, u8 client reference, payload``: HELLO 0, SUBSCRIBE 1 (payload:
  the resource path in UTF-8, e.g. ``Meas/IMU6/104``), UNSUBSCRIBE 2;
* notification = ``u8 response code, u8 client reference, body``: 1 command result (body
  ``u16`` HTTP-like status), 2 DATA (body: the resource's data), 3 DATA_PART2 (second half
  of a body too long for one notification; not used by IMU6 at the rates accepted here).

``/Meas/IMU6/{SampleRate}`` data (Movesense API ``meas/imu.yaml``, ``IMU6Data``):
``u32 Timestamp`` (ms, device clock) then ``ArrayAcc`` and ``ArrayGyro``, each ``n``
``FloatVector3D`` (3 × f32 little-endian), acceleration in m/s² (gravity included),
angular rate in deg/s; the acceleration vectors come first, then the gyroscope vectors.
Sample rates offered by the API: 13, 26, 52, 104, 208, 416, 833 and 1666 Hz. gaitwatch
accepts **13–416 Hz**: the timestamp has a resolution of 1 ms, so at 833 Hz and above a
lost notification (a jump of one batch) can no longer be told from rounding with the
half-sample tolerance the assembler uses. ``Timestamp`` is taken as the time of the first
sample of the notification.

Decoding: each DATA notification becomes a :class:`~firmware_bridge.protocol.SamplesFrame`
fed to the same :class:`~firmware_bridge.protocol_stream.BlockAssembler` as our own frames
(clock mapping, segments and gaps), with a synthetic SENSOR_CONFIG. The floats are stored
as int16 at the LSB of the sensor's widest ranges (±16 g, ±2000 deg/s: 4.8 mm/s², 0.061
deg/s), the resolution of the LSM6DS3 itself at those ranges. GSP has no sequence
number: a notification whose timestamp is not later than the last one is a re-delivery
(after a reconnect) and is dropped; a timestamp jump of more than half a sample is a gap.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from firmware_bridge.protocol import T_US_MOD, SamplesFrame, SensorConfigFrame

GSP_SERVICE_UUID = "34802252-7185-4d5d-b431-630e7050e8f0"
GSP_WRITE_UUID = "34800001-7185-4d5d-b431-630e7050e8f0"
GSP_NOTIFY_UUID = "34800002-7185-4d5d-b431-630e7050e8f0"

CMD_HELLO = 0
CMD_SUBSCRIBE = 1
CMD_UNSUBSCRIBE = 2
RESP_COMMAND_RESULT = 1
RESP_DATA = 2
RESP_DATA_PART2 = 3

IMU6_RATES_HZ = (13, 26, 52, 104, 208, 416, 833, 1666)
SUPPORTED_RATES_HZ = (13, 26, 52, 104, 208, 416)
G_MS2 = 9.80665
ACC_RANGE_G = 16
GYR_RANGE_DPS = 2000
ACC_SCALE_MS2 = float(np.float32(ACC_RANGE_G * G_MS2 / 32768.0))
GYR_SCALE_DPS = float(np.float32(GYR_RANGE_DPS / 32768.0))
DEFAULT_REF = 99


class GspError(ValueError):
    """A GSP notification that does not follow the spec."""


def subscribe_command(*, rate_hz: int, ref: int = DEFAULT_REF) -> bytes:
    """SUBSCRIBE ``Meas/IMU6/<rate_hz>`` with client reference ``ref`` (1..255)."""
    if rate_hz not in SUPPORTED_RATES_HZ:
        raise ValueError(f"Movesense IMU6 rate must be one of {SUPPORTED_RATES_HZ} Hz, got {rate_hz!r}")
    if not 1 <= ref <= 255:
        raise ValueError(f"client reference must be 1..255, got {ref!r}")
    return bytes([CMD_SUBSCRIBE, ref]) + f"Meas/IMU6/{rate_hz}".encode()


def unsubscribe_command(*, ref: int = DEFAULT_REF) -> bytes:
    return bytes([CMD_UNSUBSCRIBE, ref])


@dataclass(frozen=True, slots=True)
class CommandResult:
    ref: int
    status: int  # HTTP-like: 200 OK, 201 created (subscribed), 4xx/5xx errors


@dataclass(frozen=True, slots=True)
class Imu6Data:
    ref: int
    timestamp_ms: int
    acc_ms2: np.ndarray  # (n, 3)
    gyr_dps: np.ndarray  # (n, 3)


def decode_gsp_notification(data: bytes) -> CommandResult | Imu6Data:
    """One notification of ``34800002-…`` carrying IMU6 data or a command result."""
    data = bytes(data)
    if len(data) < 2:
        raise GspError(f"GSP notification: expected at least 2 bytes, got {len(data)}")
    code, ref = data[0], data[1]
    if code == RESP_COMMAND_RESULT:
        if len(data) < 4:
            raise GspError(f"GSP command result: expected 4 bytes, got {len(data)}")
        return CommandResult(ref, struct.unpack_from("<H", data, 2)[0])
    if code != RESP_DATA:
        raise GspError(f"GSP notification: response code {code} is not handled (1 result, 2 data)")
    body = len(data) - 6
    if body <= 0 or body % 24:
        raise GspError(f"GSP IMU6 data: expected 6 + 24*n bytes, got {len(data)}")
    n = body // 24
    ts = struct.unpack_from("<I", data, 2)[0]
    v = np.frombuffer(data, dtype="<f4", offset=6).astype(np.float64).reshape(2 * n, 3)
    return Imu6Data(ref, ts, v[:n], v[n:])


def encode_imu6_data(*, timestamp_ms: int, acc_ms2: np.ndarray, gyr_dps: np.ndarray, ref: int = DEFAULT_REF) -> bytes:
    """The DATA notification a Movesense sends (for the emulator and tests)."""
    acc = np.asarray(acc_ms2, dtype="<f4").reshape(-1, 3)
    gyr = np.asarray(gyr_dps, dtype="<f4").reshape(-1, 3)
    if acc.shape != gyr.shape:
        raise ValueError(f"acc {acc.shape} and gyr {gyr.shape} must have the same shape")
    return bytes([RESP_DATA, ref]) + struct.pack("<I", timestamp_ms % (1 << 32)) + acc.tobytes() + gyr.tobytes()


def _quantize(x: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(np.round(x / scale), -32768, 32767).astype(np.int16)


class MovesenseFrames:
    """GSP notifications -> protocol frames for the BlockAssembler (sans-I/O).

    :meth:`feed` turns one notification into ``[SamplesFrame]`` (preceded, for the first one,
    by the synthetic SENSOR_CONFIG at the same device time), or ``[]`` for command results
    and re-deliveries.
    Counters: ``notifications``, ``duplicates`` (dropped), ``bad`` (malformed), ``results``
    (status codes seen, last in ``last_status``).
    """

    def __init__(self, *, rate_hz: int, ref: int = DEFAULT_REF):
        if rate_hz not in SUPPORTED_RATES_HZ:
            raise ValueError(f"Movesense IMU6 rate must be one of {SUPPORTED_RATES_HZ} Hz, got {rate_hz!r}")
        self.rate_hz = int(rate_hz)
        self.ref = ref
        self.notifications = 0
        self.duplicates = 0
        self.bad = 0
        self.results = 0
        self.last_status: int | None = None
        self._last_ts: int | None = None
        self._seq = 0

    def config_frame(self, t_us: int = 0) -> SensorConfigFrame:
        return SensorConfigFrame(0, t_us, self.rate_hz * 1000, 6, ACC_RANGE_G, GYR_RANGE_DPS, ACC_SCALE_MS2, GYR_SCALE_DPS)

    def feed(self, data: bytes) -> list[SamplesFrame | SensorConfigFrame]:
        self.notifications += 1
        try:
            msg = decode_gsp_notification(data)
        except GspError:
            self.bad += 1
            return []
        if isinstance(msg, CommandResult):
            self.results += 1
            self.last_status = msg.status
            return []
        ts = msg.timestamp_ms
        restart = False
        if self._last_ts is not None:
            d = (ts - self._last_ts + (1 << 31)) % (1 << 32) - (1 << 31)
            if -1000 < d <= 0:  # re-delivered (or repeated) notification
                self.duplicates += 1
                return []
            restart = d <= -1000  # the sensor rebooted: its clock started again
        raw = np.hstack([_quantize(msg.acc_ms2, ACC_SCALE_MS2), _quantize(msg.gyr_dps, GYR_SCALE_DPS)])
        self._seq = (self._seq + 1) % 65536
        t_us = (ts * 1000) % T_US_MOD
        out: list[SamplesFrame | SensorConfigFrame] = []
        if self._last_ts is None:  # the assembler needs the scales first, at the same device time
            out.append(self.config_frame(t_us))
        self._last_ts = ts
        out.append(SamplesFrame(self._seq, t_us, raw, restart=restart))
        return out
