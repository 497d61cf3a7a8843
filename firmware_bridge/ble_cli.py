"""``gaitwatch live --ble NAME_OR_ADDRESS [--ble ...]``: the BLE part of the live command.

``pipeline/cmd_live.py`` adds these options (:func:`add_ble_arguments`) and hands the run
to :func:`run_ble` when ``--ble`` or ``--from-ble-capture`` is given. ``--placement``,
``--side`` and ``--sensor-id`` work as for serial ports: once for all devices or once per
``--ble``. ``--ble-kind`` (once, or once per device) overrides what the device advertises.

Samples (gaitwatch, NUS, Movesense) go through the engine's step detectors; RSC footpods
give finished metric records (:mod:`firmware_bridge.rsc`) that go to the same sinks
(:class:`RecordPassingEngine`). ``--ble-capture DIR`` keeps every notification with its
receive time (``DIR/<sensor-id>.gwcap``, the serial capture format); ``--from-ble-capture
FILE`` replays such files through the same decoders into the same sinks.
"""

from __future__ import annotations

import argparse
import logging
import math
import threading
import time
from pathlib import Path

from firmware_bridge.ble_decode import KINDS, Item, make_decoder
from pipeline.errors import ConfigError
from pipeline.records import SensorInfo, SessionInfo, StepRecord

log = logging.getLogger(__name__)

#: tests put a scripted backend here: (client backend class, scanner backend class)
BACKENDS: tuple | None = None


def add_ble_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("BLE sensors (bleak)")
    g.add_argument("--ble", action="append", default=[], metavar="NAME_OR_ADDRESS",
                   help="a BLE sensor by advertised name or address (repeat for more); see `gaitwatch scan`")
    g.add_argument("--ble-kind", action="append", choices=sorted(KINDS), default=None,
                   help="device kind if it does not advertise its service (once, or once per --ble)")
    g.add_argument("--movesense-rate-hz", type=int, default=104, choices=(13, 26, 52, 104, 208, 416),
                   help="Movesense /Meas/IMU6 sample rate (default 104)")
    g.add_argument("--rsc-cadence", choices=("auto", "own_foot", "both_feet"), default="auto",
                   help="what an RSC footpod's cadence counts (default: auto from speed and stride length)")
    g.add_argument("--ble-scan-timeout-s", type=float, default=10.0, metavar="S", help="scan time per attempt")
    g.add_argument("--ble-backoff-max-s", type=float, default=10.0, metavar="S",
                   help="longest wait between reconnect attempts (from 0.5 s, doubling)")
    g.add_argument("--ble-capture", type=Path, default=None, metavar="DIR",
                   help="keep every notification with its receive time in DIR/<sensor-id>.gwcap")
    g.add_argument("--from-ble-capture", action="append", type=Path, default=[], metavar="FILE",
                   help="replay BLE captures through the same decoders (as fast as possible)")


def wants_ble(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "ble", None) or getattr(args, "from_ble_capture", None))


class RecordPassingEngine:
    """The engine, plus finished records (RSC metrics) passed straight to the sinks."""

    def __init__(self, engine, sensors: list[SensorInfo]):
        self.engine = engine
        self.sensors = {s.sensor_id: s for s in sensors}
        self.passed = 0

    def update(self, item: Item) -> list[StepRecord]:
        if isinstance(item, StepRecord):
            self.passed += 1
            return [item]
        return self.engine.update(item)

    def flush(self) -> list[StepRecord]:
        return self.engine.flush()

    def counters(self):
        return self.engine.counters()


def _options(args: argparse.Namespace, cfg) -> dict:
    return {"movesense_rate_hz": args.movesense_rate_hz, "rsc_cadence_counts": args.rsc_cadence,
            "clock_warmup_s": cfg["clock_warmup_s"], "clock_window_s": cfg["clock_window_s"],
            "slip_threshold_samples": cfg["slip_threshold_samples"]}


def check_ble_args(args: argparse.Namespace, command: str) -> None:
    """The BLE options' own checks, shared by ``live`` and ``gateway`` (``command`` names the
    one in the message)."""
    if args.serial or args.from_capture:
        raise ConfigError(f"{command}: BLE and serial sensors in one run are not supported yet; use one kind")
    if args.ble and args.from_ble_capture:
        raise ConfigError(f"{command}: use either --ble devices or --from-ble-capture files, not both")
    for name, v in (("--ble-scan-timeout-s", args.ble_scan_timeout_s), ("--ble-backoff-max-s", args.ble_backoff_max_s)):
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(f"{command}: {name} must be a positive number, got {v!r}")


def ble_kinds(args: argparse.Namespace, command: str) -> list[str | None]:
    """``--ble-kind`` given once (for every ``--ble``) or once per ``--ble``; None = detect."""
    kinds = args.ble_kind
    if kinds and len(kinds) not in (1, len(args.ble)):
        raise ConfigError(f"{command}: expected --ble-kind once or {len(args.ble)} times (once per --ble)")
    return (kinds * len(args.ble) if kinds and len(kinds) == 1 else kinds) or [None] * len(args.ble)


def _sensors(args: argparse.Namespace, names: list[str], command: str = "live") -> list[SensorInfo]:
    from pipeline.cmd_live import _per_port

    n = len(names)
    per = "--ble" if args.ble else "--from-ble-capture"
    placements = _per_port("placement", args.placement, n, command=command, per=per)
    sides = _per_port("side", args.side, n, command=command, per=per)
    ids = _per_port("sensor-id", args.sensor_id, n, default=lambda k: "ble-" + "".join(
        c if c.isalnum() else "-" for c in names[k]).strip("-").lower(), command=command, per=per)
    if args.sensor_id is not None and len(args.sensor_id) == 1 and n > 1:
        raise ConfigError(f"{command}: --sensor-id must be given once per --ble device (ids must be unique)")
    if len(set(ids)) != len(ids):
        ids = [f"{i}-{k}" for k, i in enumerate(ids)]
    return [SensorInfo(sensor_id=i, placement=pl, side=sd, athlete=args.athlete)
            for i, pl, sd in zip(ids, placements, sides)]


def run_ble(args: argparse.Namespace) -> int:
    from pipeline.config import load_config

    check_ble_args(args, "live")
    config = load_config(args.config)
    cfg = config.section("serial")
    if args.from_ble_capture:
        return _run_captures(args, config, cfg)
    kinds = ble_kinds(args, "live")
    sensors = _sensors(args, list(args.ble))

    from firmware_bridge.ble_source import BleSession, BleTarget
    from pipeline.engine import Engine
    from pipeline.run import run_session
    from pipeline.sinks import build_sinks

    engine = RecordPassingEngine(Engine(sensors, config=config), sensors)
    host_t0 = time.monotonic()
    session = SessionInfo(session_id=time.strftime("live-%Y%m%dT%H%M%S", time.gmtime()),
                          athlete=args.athlete, start_wall_ns=time.time_ns())
    backends = BACKENDS or (None, None)
    ble = BleSession([BleTarget(q, s, k) for q, s, k in zip(args.ble, sensors, kinds)], host_t0_s=host_t0,
                     client_backend=backends[0], scanner_backend=backends[1], scan_timeout_s=args.ble_scan_timeout_s,
                     backoff_max_s=max(args.ble_backoff_max_s, 0.5), options=_options(args, cfg),
                     capture_dir=args.ble_capture,
                     session_meta={"session_id": session.session_id, "start_wall_ns": session.start_wall_ns})
    sinks = build_sinks(args, config, session, sensors)
    stop = threading.Event()
    extra: dict = {"inputs": list(args.ble), "config": config.source}

    def source_stats() -> dict:
        health = ble.health()
        extra["ble"] = health
        extra["ended_by"] = "ctrl-c" if stop.is_set() else ("duration" if args.duration_s else "end of stream")
        _health_to_sinks(sinks, health, t_s=time.monotonic() - host_t0)
        return health

    import signal

    def on_sigint(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("Ctrl-C: disconnecting, writing what was computed (again to abort)")
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    try:
        ble.start()
        summary = run_session(ble.items(duration_s=args.duration_s, stop=stop), engine, sinks, session=session,
                              source_stats=source_stats, extra=extra,
                              progress=_progress(ble, sinks, host_t0))
    finally:
        ble.stop()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    _report(args, summary, extra)
    return 0


def _run_captures(args: argparse.Namespace, config, cfg) -> int:
    from firmware_bridge.serial_capture import read_capture
    from pipeline.engine import Engine
    from pipeline.run import run_session
    from pipeline.sinks import build_sinks

    metas = [read_capture(p)[0] for p in args.from_ble_capture]
    for p, m in zip(args.from_ble_capture, metas):
        if m.get("transport") != "ble":
            raise ConfigError(f"{p}: not a BLE capture (use --from-capture for serial captures)")
    sensors = [SensorInfo(sensor_id=str(m["sensor_id"]), placement=args.placement[0] if args.placement else m["placement"],
                          side=args.side[0] if args.side else m["side"], athlete=args.athlete) for m in metas]
    if len({s.sensor_id for s in sensors}) != len(sensors):
        raise ConfigError("live: the BLE captures have the same sensor id")
    session = SessionInfo(session_id=str(metas[0].get("session_id") or args.from_ble_capture[0].stem),
                          athlete=args.athlete, start_wall_ns=int(metas[0].get("start_wall_ns") or time.time_ns()))
    engine = RecordPassingEngine(Engine(sensors, config=config), sensors)
    sinks = build_sinks(args, config, session, sensors)
    decoders: dict = {}

    def items():
        yield from captures_items(list(zip(args.from_ble_capture, sensors, metas)), decoders=decoders)

    extra: dict = {"inputs": [str(p) for p in args.from_ble_capture], "config": config.source}

    def source_stats() -> dict:
        health = {s.sensor_id: {"device": m.get("device", "?"), "kind": m.get("kind", "?"),
                                **decoders[s.sensor_id].health()} for s, m in zip(sensors, metas) if s.sensor_id in decoders}
        extra["ble"] = health
        extra["ended_by"] = "end of capture"
        return health

    summary = run_session(items(), engine, sinks, session=session, source_stats=source_stats, extra=extra)
    _report(args, summary, extra)
    return 0


def captures_items(captures, *, decoders: dict | None = None):
    """Items of BLE captures ``[(path, sensor, meta), ...]`` through the decoders the live run used.

    The notifications of all captures are merged by their receive time, which is the order
    in which the live run decoded them, so the sinks see the records in the same order.
    """
    import heapq

    from firmware_bridge.serial_capture import read_capture

    decs, streams = [], []
    for k, (path, sensor, meta) in enumerate(captures):
        m, records = read_capture(path)
        meta = meta or m
        dec = make_decoder(str(meta["kind"]), sensor=sensor, name=f"ble {meta.get('device', path)}", options=meta)
        decs.append(dec)
        if decoders is not None:
            decoders[sensor.sensor_id] = dec
        streams.append(_tagged(records, k))
    for host_s, k, data in heapq.merge(*streams, key=lambda r: (r[0], r[1])):
        dec = decs[k]
        yield from (dec.interrupted() if data is None else dec.feed(data, host_s=host_s))
    for dec in decs:
        yield from dec.flush()


def _tagged(records, k: int):
    for host_s, data in records:
        yield host_s, k, data


def _health_to_sinks(sinks, health: dict, *, t_s: float) -> None:
    for sink in sinks:
        write = getattr(sink, "write_health", None)
        if write is None:
            continue
        for sid, h in health.items():
            vals = {f"ble_{k}": float(v) for k, v in h.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}
            try:
                write(t_s=t_s, component="ble", values=vals, sensor=sid)
            except Exception as exc:  # noqa: BLE001 - health must never end a run
                log.debug("health to %s failed: %s", type(sink).__name__, exc)


def _progress(ble, sinks, host_t0: float, *, every_s: float = 10.0):
    next_t = [time.monotonic() + every_s]

    def progress(item) -> None:
        now = time.monotonic()
        if now < next_t[0]:
            return
        next_t[0] = now + every_s
        health = ble.health()
        _health_to_sinks(sinks, health, t_s=now - host_t0)
        for sid, h in health.items():
            log.info("%s: %s, %d notifications, lost frames %s, gaps %s, reconnects %d, latency max %.1f ms",
                     sid, "connected" if h["connected"] else "DISCONNECTED", h["notifications"],
                     h.get("lost_frames", "-"), h.get("gaps", "-"), h["reconnects"], h["latency_ms_max"])

    return progress


HEALTH_COLUMNS = ("notifications", "lost_frames", "duplicate_frames", "gaps", "reconnects", "stale_notifications",
                  "latency_ms_max", "clock_skew_ppm")


def format_health(health: dict) -> str:
    lines = ["ble health: " + " ".join(HEALTH_COLUMNS)]
    for sid, h in health.items():
        vals = [f"{h[c]:.1f}" if isinstance(h.get(c), float) else str(h.get(c, "-")) for c in HEALTH_COLUMNS]
        lines.append(f"  {sid} ({h.get('device', '?')}, {h.get('kind') or h.get('format', '?')}): " + " ".join(vals))
    return "\n".join(lines)


def _report(args: argparse.Namespace, summary, extra: dict) -> None:
    print(summary.format_table())
    print()
    print(format_health(extra.get("ble", {})))
    print(f"\nwrote {Path(args.out) / 'steps.csv'} and {Path(args.out) / 'session.json'}")
