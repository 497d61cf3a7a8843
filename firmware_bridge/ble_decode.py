"""What each supported BLE device is, and its notification decoder (sans-I/O).

Four kinds of device (``KINDS``), found by the service UUID they advertise:

``gaitwatch``
    our sensors: private service ``GAITWATCH_SERVICE_UUID``; its notify characteristic
    carries the frames of ``firmware_bridge/PROTOCOL.md``, batched into notifications of
    at most ATT MTU − 3 bytes (``protocol.pack_notifications``); the host writes the
    COMMAND frame START to the write characteristic after every (re)connect.
``nus``
    the same frames over the Nordic UART Service (NUS, service
    ``6e400001-b5a3-f393-e0a9-e50e24dcca9e``; the peripheral notifies on TX ``…0003``,
    the host writes to RX ``…0002``; Nordic nRF5 SDK / nRF Connect SDK "Nordic UART
    Service") for boards whose firmware only has NUS.
``rsc``
    standard Running Speed and Cadence footpods (0x1814 / 0x2A53, :mod:`firmware_bridge.rsc`):
    metrics, not samples; no start command (notifications start with the CCCD).
``movesense``
    Movesense sensors over GSP, ``/Meas/IMU6`` (:mod:`firmware_bridge.movesense`).

A decoder is fed the notifications of one device in order, each with the host time it
was received (session seconds): ``feed(data, host_s=...) -> items``; ``interrupted()``
when the link is lost (partial frames dropped, a :class:`~pipeline.records.Gap` before the
next samples); ``flush()`` at the end; ``health()`` counters. Items are
:class:`~pipeline.records.SampleBlock` / :class:`~pipeline.records.Gap` for the engine,
or finished :class:`~pipeline.records.StepRecord` (RSC metrics) that go straight to the
sinks. The notifications of one characteristic form one byte stream (PROTOCOL.md §1), so
gaitwatch/NUS frames reuse :class:`~firmware_bridge.protocol_stream.PortDecoder` exactly as
the serial source does: duplicates after a reconnect are dropped by sequence number there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_bridge import movesense as ms
from firmware_bridge import rsc
from firmware_bridge.protocol import Command, CommandFrame, encode_frame
from firmware_bridge.protocol_stream import BlockAssembler, PortDecoder
from firmware_bridge.clock import ClockMap
from pipeline.records import Gap, SampleBlock, SensorInfo, StepRecord

Item = SampleBlock | Gap | StepRecord

GAITWATCH_SERVICE_UUID = "67770001-9b3c-4b6e-9f2c-6761697477a1"
GAITWATCH_NOTIFY_UUID = "67770002-9b3c-4b6e-9f2c-6761697477a1"
GAITWATCH_WRITE_UUID = "67770003-9b3c-4b6e-9f2c-6761697477a1"
NUS_SERVICE_UUID = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
NUS_RX_UUID = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"  # host writes
NUS_TX_UUID = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"  # peripheral notifies

START_COMMAND = encode_frame(CommandFrame(0, 0, int(Command.START)))


@dataclass(frozen=True)
class DeviceKind:
    name: str
    description: str
    service_uuid: str
    notify_uuid: str
    write_uuid: str | None
    start_command: Callable[[dict], bytes | None] = field(default=lambda opts: None)
    samples: bool = True  # raw samples for the engine (False: finished metric records)


KINDS: dict[str, DeviceKind] = {
    "gaitwatch": DeviceKind("gaitwatch", "gaitwatch IMU (PROTOCOL.md frames)", GAITWATCH_SERVICE_UUID,
                            GAITWATCH_NOTIFY_UUID, GAITWATCH_WRITE_UUID, lambda opts: START_COMMAND),
    "nus": DeviceKind("nus", "IMU on Nordic UART (PROTOCOL.md frames)", NUS_SERVICE_UUID, NUS_TX_UUID,
                      NUS_RX_UUID, lambda opts: START_COMMAND),
    "rsc": DeviceKind("rsc", "running speed and cadence footpod", rsc.RSC_SERVICE_UUID,
                      rsc.RSC_MEASUREMENT_UUID, None, samples=False),
    "movesense": DeviceKind("movesense", "Movesense IMU6 (GATT SensorData Protocol)", ms.GSP_SERVICE_UUID,
                            ms.GSP_NOTIFY_UUID, ms.GSP_WRITE_UUID,
                            lambda opts: ms.subscribe_command(rate_hz=int(opts.get("movesense_rate_hz", 104)))),
}


def kind_of(service_uuids: list[str] | tuple[str, ...], name: str | None = None) -> DeviceKind | None:
    """The supported kind a device advertises (by service UUID; Movesense also by name)."""
    uu = {u.lower() for u in service_uuids or ()}
    for k in KINDS.values():
        if k.service_uuid in uu:
            return k
    if name and name.startswith("Movesense"):  # Movesense advertises 0xFE06, not the GSP service
        return KINDS["movesense"]
    return None


class FrameNotifications:
    """gaitwatch / NUS notifications: the byte stream of PROTOCOL.md frames."""

    def __init__(self, *, name: str, sensor_id: str, **decoder_kw):
        self.dec = PortDecoder(name=name, sensor_id=sensor_id, host_t0_s=0.0, fmt="binary", **decoder_kw)

    def feed(self, data: bytes, *, host_s: float) -> list[Item]:
        return self.dec.feed(data, host_s=host_s)

    def interrupted(self) -> list[Item]:
        return self.dec.interrupted()

    def flush(self) -> list[Item]:
        return self.dec.flush()

    def health(self) -> dict:
        return self.dec.health()


class MovesenseNotifications:
    """Movesense GSP notifications -> the same BlockAssembler as our frames."""

    def __init__(self, *, name: str, sensor_id: str, rate_hz: int = 104, clock_warmup_s: float = 2.0,
                 clock_window_s: float = 60.0, slip_threshold_samples: float = 0.75, **_ignored):
        self.name = name
        self.frames = ms.MovesenseFrames(rate_hz=rate_hz)
        self.assembler = BlockAssembler(sensor_id=sensor_id, host_t0_s=0.0, clock=ClockMap(window_s=clock_window_s),
                                        clock_warmup_s=clock_warmup_s, slip_threshold_samples=slip_threshold_samples)

    def feed(self, data: bytes, *, host_s: float) -> list[Item]:
        for f in self.frames.feed(data):
            self.assembler.frame(f, host_s=host_s)
        return self.assembler.drain()

    def interrupted(self) -> list[Item]:
        self.assembler.interrupted()
        return self.assembler.drain()

    def flush(self) -> list[Item]:
        return self.assembler.flush()

    def health(self) -> dict:
        f = self.frames
        h: dict = {"format": "movesense-imu6", "notifications": f.notifications, "duplicate_frames": f.duplicates,
                   "malformed": f.bad, "last_status": f.last_status if f.last_status is not None else ""}
        h.update(self.assembler.health())
        return h


class RscNotifications:
    """RSC Measurement notifications -> one StepRecord each (metrics, no samples)."""

    def __init__(self, *, name: str, sensor: SensorInfo, cadence_counts: str = "auto", **_ignored):
        self.name = name
        self.builder = rsc.RscRecordBuilder(sensor=sensor, cadence_counts=cadence_counts)
        self.malformed = 0
        self.interruptions = 0

    def feed(self, data: bytes, *, host_s: float) -> list[Item]:
        try:
            m = rsc.decode_rsc_measurement(data)
        except rsc.RscError:
            self.malformed += 1
            return []
        return self.builder.update(m, t_s=host_s)

    def interrupted(self) -> list[Item]:
        self.interruptions += 1
        self.builder.reset()
        return []

    def flush(self) -> list[Item]:
        return []

    def health(self) -> dict:
        b = self.builder
        return {"format": "rsc", "records": b.records, "malformed": self.malformed,
                "interruptions": self.interruptions, "cadence_counts": b.decided or b.cadence_counts}


def make_decoder(kind: str, *, sensor: SensorInfo, name: str, options: dict | None = None):
    """The decoder for a device of ``kind`` worn as ``sensor``."""
    opts = dict(options or {})
    if kind in ("gaitwatch", "nus"):
        kw = {k: opts[k] for k in ("clock_warmup_s", "clock_window_s", "slip_threshold_samples") if k in opts}
        return FrameNotifications(name=name, sensor_id=sensor.sensor_id, **kw)
    if kind == "movesense":
        kw = {k: opts[k] for k in ("clock_warmup_s", "clock_window_s", "slip_threshold_samples") if k in opts}
        return MovesenseNotifications(name=name, sensor_id=sensor.sensor_id,
                                      rate_hz=int(opts.get("movesense_rate_hz", 104)), **kw)
    if kind == "rsc":
        return RscNotifications(name=name, sensor=sensor, cadence_counts=opts.get("rsc_cadence_counts", "auto"))
    raise ValueError(f"unknown BLE device kind {kind!r}; known: {sorted(KINDS)}")
