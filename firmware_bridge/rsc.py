"""Standard BLE Running Speed and Cadence footpods (service 0x1814, RSC Measurement 0x2A53).

Stryd, Polar, Garmin and many other footpods expose this Bluetooth SIG profile. They send
*metrics*, not raw samples, about once a second, so they bypass the step detectors: each
notification becomes one :class:`~pipeline.records.StepRecord` (see
:class:`RscRecordBuilder`) that flows into the same sinks (``steps.csv``, InfluxDB) as the
steps detected from IMUs.

RSC Measurement value (Bluetooth SIG, *Running Speed and Cadence Service* 1.0 and the
*GATT Specification Supplement*, "RSC Measurement"; all little-endian)::

    u8   flags      bit 0 Instantaneous Stride Length present
                    bit 1 Total Distance present
                    bit 2 Walking or Running Status: 0 walking, 1 running
    u16  Instantaneous Speed     unit m/s, resolution 1/256 m/s
    u8   Instantaneous Cadence   unit 1/min
    u16  Instantaneous Stride Length (if bit 0)   resolution 1/100 m
    u32  Total Distance (if bit 1)                resolution 1/10 m

Cadence: the RSC text calls it the rate of foot falls per minute; which feet a given pod
counts differs between vendors (some report steps of both feet, others strides of the
foot they are worn on). ``cadence_counts`` says which; ``"auto"`` decides from the
pod's own numbers when it sends a stride length, because speed = stride length × stride
rate (stride = two steps, one full cycle of the sensor's foot): a cadence ``c`` that
satisfies ``speed ≈ stride_len · c / 60`` counts the own foot's strides, one that
satisfies ``speed ≈ stride_len · c / 120`` counts steps of both feet. Without a stride
length ``auto`` assumes the own foot's strides (the sensor sees only its own foot).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from pipeline.records import Metric, SensorInfo, Step, StepRecord

RSC_SERVICE_UUID = "00001814-0000-1000-8000-00805f9b34fb"
RSC_MEASUREMENT_UUID = "00002a53-0000-1000-8000-00805f9b34fb"

FLAG_STRIDE_LENGTH = 0x01
FLAG_TOTAL_DISTANCE = 0x02
FLAG_RUNNING = 0x04
_BASE = struct.Struct("<BHB")
CADENCE_COUNTS = ("auto", "own_foot", "both_feet")


class RscError(ValueError):
    """An RSC Measurement value that does not follow the spec (too short for its flags)."""


@dataclass(frozen=True, slots=True)
class RscMeasurement:
    """One decoded RSC Measurement, in SI units; absent optional fields are ``None``."""

    speed_mps: float
    cadence_per_min: int  # as sent; see the module docstring for which feet it counts
    stride_length_m: float | None
    total_distance_m: float | None
    running: bool


def decode_rsc_measurement(data: bytes) -> RscMeasurement:
    """Bytes of one 0x2A53 notification -> :class:`RscMeasurement` (raises :class:`RscError`)."""
    data = bytes(data)
    if len(data) < _BASE.size:
        raise RscError(f"RSC Measurement: expected at least 4 bytes, got {len(data)}")
    flags, speed, cadence = _BASE.unpack_from(data, 0)
    need = _BASE.size + (2 if flags & FLAG_STRIDE_LENGTH else 0) + (4 if flags & FLAG_TOTAL_DISTANCE else 0)
    if len(data) < need:
        raise RscError(f"RSC Measurement: flags 0x{flags:02x} need {need} bytes, got {len(data)}")
    off = _BASE.size
    stride = dist = None
    if flags & FLAG_STRIDE_LENGTH:
        stride = struct.unpack_from("<H", data, off)[0] / 100.0
        off += 2
    if flags & FLAG_TOTAL_DISTANCE:
        dist = struct.unpack_from("<I", data, off)[0] / 10.0
    # bytes after the defined fields are reserved for future use: ignored, as the spec asks
    return RscMeasurement(speed / 256.0, int(cadence), stride, dist, bool(flags & FLAG_RUNNING))


def encode_rsc_measurement(*, speed_mps: float, cadence_per_min: int, stride_length_m: float | None = None,
                           total_distance_m: float | None = None, running: bool = True) -> bytes:
    """The notification a footpod would send (for the emulator and tests)."""
    flags = (FLAG_RUNNING if running else 0)
    tail = b""
    if stride_length_m is not None:
        flags |= FLAG_STRIDE_LENGTH
        tail += struct.pack("<H", int(round(stride_length_m * 100)))
    if total_distance_m is not None:
        flags |= FLAG_TOTAL_DISTANCE
        tail += struct.pack("<I", int(round(total_distance_m * 10)))
    return _BASE.pack(flags, int(round(speed_mps * 256)), int(cadence_per_min)) + tail


_EMPTY = np.zeros((0, 3))


class RscRecordBuilder:
    """RSC Measurements of one footpod -> one StepRecord each, for the usual sinks.

    A record is not a detected step: its ``ic_s`` is the session time the notification
    arrived (the pod sends no timestamp), ``to_s`` is NaN (a footpod does not report contact
    times), ``activity`` is the pod's walking/running flag, and ``prev_ic_s`` is set one
    stride period (from the reported cadence) earlier so that ``cadence_spm`` — steps per
    minute of both feet, as everywhere in gaitwatch — is the pod's cadence (the
    ``cadence_spm`` column of steps.csv and field in InfluxDB). Metrics: ``speed_mps``,
    ``stride_length_m`` and ``distance_m`` (NaN when the pod does not send them). ``segment`` counts link interruptions (:meth:`reset`).
    """

    def __init__(self, *, sensor: SensorInfo, cadence_counts: str = "auto",
                 auto_ratio_tolerance: float = 0.25):
        if cadence_counts not in CADENCE_COUNTS:
            raise ValueError(f"cadence_counts must be one of {CADENCE_COUNTS}, got {cadence_counts!r}")
        if not 0 < auto_ratio_tolerance < 0.5:
            raise ValueError(f"auto_ratio_tolerance must be in (0, 0.5), got {auto_ratio_tolerance!r}")
        self.sensor = sensor
        self.cadence_counts = cadence_counts
        self.auto_ratio_tolerance = float(auto_ratio_tolerance)
        self.decided: str | None = None if cadence_counts == "auto" else cadence_counts
        self.segment = 0
        self.records = 0

    def _steps_per_min(self, m: RscMeasurement) -> float:
        if self.decided is None and m.stride_length_m and m.cadence_per_min and m.speed_mps > 0.5:
            # speed / (stride length * c / 60) is 1 for strides of one foot, 2 for steps of both
            r = m.speed_mps / (m.stride_length_m * m.cadence_per_min / 60.0)
            tol = self.auto_ratio_tolerance
            if abs(r - 1.0) <= tol:
                self.decided = "own_foot"
            elif abs(r - 0.5) <= tol * 0.5:
                self.decided = "both_feet"
        counts = self.decided or "own_foot"
        return float(m.cadence_per_min) * (2.0 if counts == "own_foot" else 1.0)

    def update(self, m: RscMeasurement, *, t_s: float) -> list[StepRecord]:
        spm = self._steps_per_min(m)
        stride_s = 120.0 / spm if spm > 0 else math.nan
        step = Step(
            sensor_id=self.sensor.sensor_id, segment=self.segment, fs_hz=1.0, ic_index=0.0,
            to_index=math.nan, ic_s=t_s, to_s=math.nan, prev_ic_s=t_s - stride_s,
            activity="running" if m.running else "walking", window_start_index=0, acc_ms2=_EMPTY,
        )
        sid = self.sensor.sensor_id
        nan = math.nan
        metrics = (
            Metric("speed_mps", m.speed_mps, "m/s", t_s, sid),
            Metric("stride_length_m", nan if m.stride_length_m is None else m.stride_length_m, "m", t_s, sid,
                   reason="" if m.stride_length_m is not None else "not sent by the footpod"),
            Metric("distance_m", nan if m.total_distance_m is None else m.total_distance_m, "m", t_s, sid,
                   reason="" if m.total_distance_m is not None else "not sent by the footpod"),
        )
        self.records += 1
        return [StepRecord(sensor=self.sensor, step=step, metrics=metrics)]

    def reset(self) -> None:
        """After a lost link: later records belong to a new segment."""
        self.segment += 1
