"""``gaitwatch live``: live sensors on serial/USB ports through the engine into the sinks.

    gaitwatch live --serial PORT [--serial PORT ...] --placement foot|shank --side left|right
                   [--sensor-id ID ...] [--athlete NAME] [--baud 921600] [--format auto|binary|text]
                   [--text-fs-hz HZ --text-acc-unit g --text-gyr-unit dps]
                   [--duration-s S] [--capture DIR] [--out DIR] [--config FILE]
    gaitwatch live --from-capture DIR/ID.gwcap [...] --placement ... --side ... [--out DIR]

``--placement``, ``--side`` and ``--sensor-id`` are given once for all ports or once per
port, in the order of the ``--serial`` options. Each port is read by its own worker thread
(:mod:`firmware_bridge.serial_source`); all sensors share the host's monotonic clock as
their time base (session time 0 = start of the command). The run ends after
``--duration-s`` or at Ctrl-C (the first Ctrl-C stops the readers and lets the run loop
flush the engine and write the summary; a second one aborts). A port that disappears is
reopened when it comes back; the missing time is a gap in the records.

``--capture DIR`` keeps the raw bytes of each port with their host read times
(:mod:`firmware_bridge.serial_capture`); ``--from-capture`` replays such files through the
same decoder and clock fit with the recorded times, giving the same steps as the live run.
"""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import threading
import time
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.records import PLACEMENTS, SIDES, SensorInfo, SessionInfo

log = logging.getLogger(__name__)


from pipeline.cli_types import positive_float as _positive


def add_parser(subparsers) -> argparse.ArgumentParser:
    from firmware_bridge.protocol import ACC_UNITS_MS2, GYR_UNITS_DPS
    from firmware_bridge.serial_source import FORMATS
    from pipeline.sinks import add_sink_arguments

    p = subparsers.add_parser(
        "live",
        help="analyse live sensors (serial/USB ports and BLE)",
        description="Read live IMU sensors on serial/USB ports (binary frames of firmware_bridge/PROTOCOL.md "
        "or CSV text lines) or over BLE (--ble) through the step detectors; write steps.csv and session.json. "
        "Ctrl-C ends the run and writes the summary.",
    )
    p.add_argument("--serial", action="append", default=[], metavar="PORT",
                   help="serial port of one sensor (repeat for more sensors), e.g. /dev/ttyACM0")
    p.add_argument("--placement", action="append", choices=PLACEMENTS, default=None,
                   help="where the sensor is worn (once for all ports, or once per port)")
    p.add_argument("--side", action="append", choices=SIDES, default=None,
                   help="which leg (once for all ports, or once per port)")
    p.add_argument("--sensor-id", action="append", default=None, metavar="ID",
                   help="sensor id per port (default: serial-<port name>)")
    p.add_argument("--athlete", default="", help="athlete name for the records")
    p.add_argument("--baud", type=int, default=None, help="baud rate (default: config [serial].baud, 921600)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="binary frames, CSV text lines, or auto-detect (default: config [serial].format)")
    p.add_argument("--text-fs-hz", type=_positive, default=None, metavar="HZ",
                   help="text mode: the board's sample rate (required for text)")
    p.add_argument("--text-acc-unit", choices=sorted(ACC_UNITS_MS2), default="g",
                   help="text mode: unit of ax, ay, az (default g)")
    p.add_argument("--text-gyr-unit", choices=sorted(GYR_UNITS_DPS), default="dps",
                   help="text mode: unit of gx, gy, gz (default dps)")
    p.add_argument("--duration-s", type=_positive, default=None, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C)")
    p.add_argument("--capture", type=Path, default=None, metavar="DIR",
                   help="also keep every byte read, with its host time, in DIR/<sensor-id>.gwcap")
    p.add_argument("--from-capture", action="append", type=Path, default=[], metavar="FILE",
                   help="instead of ports: replay .gwcap captures through the same decoder (as fast as possible)")
    p.add_argument("--config", type=Path, default=None, metavar="FILE", help="TOML config over the defaults")
    add_sink_arguments(p)
    from firmware_bridge.ble_cli import add_ble_arguments  # BLE sensors (issue 7): --ble NAME_OR_ADDRESS

    add_ble_arguments(p)
    return p


def _per_port(name: str, values: list[str] | None, n: int, default=None, *, command: str = "live",
              per: str = "--serial") -> list:
    """A per-sensor option given once (for all) or once per sensor (``per``: the option that
    names the sensors); errors name ``command`` (live and gateway share this)."""
    if not values:
        if default is None:
            raise ConfigError(f"{command}: --{name} is required (once for all sensors or once per {per})")
        return [default(k) for k in range(n)]
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ConfigError(f"{command}: expected --{name} once or {n} times (once per {per}), got {len(values)}")
    return list(values)


def sensors_for(args: argparse.Namespace, command: str = "live") -> list[SensorInfo]:
    ports = args.serial or [str(p) for p in args.from_capture]
    if not ports:
        raise ConfigError(f"{command}: give at least one sensor with --serial PORT (or --from-capture FILE)")
    if args.serial and args.from_capture:
        raise ConfigError(f"{command}: use either --serial ports or --from-capture files, not both")
    per = "--serial" if args.serial else "--from-capture"
    placements = _per_port("placement", args.placement, len(ports), command=command, per=per)
    sides = _per_port("side", args.side, len(ports), command=command, per=per)
    ids = _per_port("sensor-id", args.sensor_id, len(ports), default=lambda k: _default_id(args, k),
                    command=command, per=per)
    if args.sensor_id is not None and len(args.sensor_id) == 1 and len(ports) > 1:
        unit = "port" if args.serial else "file"
        raise ConfigError(f"{command}: --sensor-id must be given once per {per} {unit} (ids must be unique)")
    if len(set(ids)) != len(ids):
        ids = [f"{i}-{k}" for k, i in enumerate(ids)]
    return [SensorInfo(sensor_id=i, placement=pl, side=sd, athlete=args.athlete)
            for i, pl, sd in zip(ids, placements, sides)]


def _default_id(args: argparse.Namespace, k: int) -> str:
    if args.from_capture:
        from firmware_bridge.serial_capture import read_capture

        meta, _ = read_capture(args.from_capture[k])
        return str(meta.get("sensor_id") or args.from_capture[k].stem)
    return f"serial-{Path(args.serial[k]).name}"


def run_captures(args: argparse.Namespace, config, sensors: list[SensorInfo]) -> int:
    """``--from-capture``: the captures through the same decoder, engine and sinks."""
    import itertools

    from firmware_bridge.serial_capture import CaptureSource
    from pipeline.engine import Engine
    from pipeline.run import run_session
    from pipeline.sinks import build_sinks

    caps = [CaptureSource(p, sensor_id=s.sensor_id) for p, s in zip(args.from_capture, sensors)]
    starts = [c.meta.get("start_wall_ns") for c in caps]
    session = SessionInfo(session_id=str(caps[0].meta.get("session_id") or args.from_capture[0].stem),
                          athlete=args.athlete, start_wall_ns=int(starts[0] or time.time_ns()))
    engine = Engine(sensors, config=config)
    sinks = build_sinks(args, config, session, sensors)
    from pipeline.sinks.history_sink import attach_history_baselines
    attach_history_baselines(engine, sinks, session.athlete)
    extra: dict = {"inputs": [str(p) for p in args.from_capture], "config": config.source}

    def source_stats() -> dict:
        health = {c.sensor_id: c.health() for c in caps}
        extra["serial"] = health
        extra["ended_by"] = "end of capture"
        return health

    summary = run_session(itertools.chain.from_iterable(c.items() for c in caps), engine, sinks,
                          session=session, source_stats=source_stats, extra=extra)
    _report(args, summary, extra)
    return 0


def _report(args: argparse.Namespace, summary, extra: dict) -> None:
    print(summary.format_table())
    print()
    print(format_health(extra.get("serial", {})))
    print(f"\nwrote {Path(args.out) / 'steps.csv'} and {Path(args.out) / 'session.json'}")


def run(args: argparse.Namespace) -> int:
    from firmware_bridge.serial_source import LiveItems, SerialSource
    from pipeline.config import load_config

    from firmware_bridge.ble_cli import run_ble, wants_ble

    from pipeline.warmup import warm_kernels

    # compiled kernels loaded (compiled on a machine's first run, ~15 s) before any sensor
    # is connected, not on the first step of the run
    log.info("compiled kernels ready in %.1f s", warm_kernels())
    if wants_ble(args):  # BLE sensors: firmware_bridge/ble_cli.py
        return run_ble(args)
    config = load_config(args.config)
    cfg = config.section("serial")
    sensors = sensors_for(args)
    if args.from_capture:
        return run_captures(args, config, sensors)
    fmt = args.format or cfg["format"]
    if fmt == "text" and args.text_fs_hz is None:
        raise ConfigError("live: --format text needs the board's sample rate: --text-fs-hz HZ")

    # everything heavy is imported and built before the ports open: from then on the
    # readers must run, or the first packets queue up and the clock fit starts skewed
    from pipeline.engine import Engine
    from pipeline.run import run_session
    from pipeline.sinks import build_sinks

    engine = Engine(sensors, config=config)
    host_t0 = time.monotonic()
    session = SessionInfo(session_id=time.strftime("live-%Y%m%dT%H%M%S", time.gmtime()),
                          athlete=args.athlete, start_wall_ns=time.time_ns())
    q: queue.Queue = queue.Queue()
    decoder_kw = dict(fmt=fmt, text_fs_hz=args.text_fs_hz, text_acc_unit=args.text_acc_unit,
                      text_gyr_unit=args.text_gyr_unit, clock_warmup_s=cfg["clock_warmup_s"],
                      clock_window_s=cfg["clock_window_s"], slip_threshold_samples=cfg["slip_threshold_samples"])
    sources = []
    for port, s in zip(args.serial, sensors):
        capture = None
        if args.capture is not None:
            from firmware_bridge.serial_capture import CaptureWriter

            capture = CaptureWriter(args.capture / f"{s.sensor_id}.gwcap", meta={
                "port": port, "sensor_id": s.sensor_id, "session_id": session.session_id,
                "start_wall_ns": session.start_wall_ns, "format": fmt, **decoder_kw})
        sources.append(SerialSource(port=port, sensor_id=s.sensor_id, out=q, host_t0_s=host_t0,
                                    baud=args.baud or cfg["baud"], reopen_interval_s=cfg["reopen_interval_s"],
                                    capture=capture, **decoder_kw))
    sinks = build_sinks(args, config, session, sensors)
    from pipeline.sinks.history_sink import attach_history_baselines
    attach_history_baselines(engine, sinks, session.athlete)
    try:
        for src in sources:  # a port that cannot be opened at start is an error (typo, permissions)
            src.open_once()
    except BaseException:
        for src in sources:
            src.close()
        for sink in sinks:
            sink.close(None)
        raise
    stop = threading.Event()
    items = LiveItems(sources, q, duration_s=args.duration_s, stop=stop)
    extra: dict = {"inputs": list(args.serial), "config": config.source}

    def source_stats() -> dict:
        health = {s.sensor_id: s.health() for s in sources}
        extra["serial"] = health
        extra["ended_by"] = "ctrl-c" if stop.is_set() or items.interrupted else (
            "duration" if args.duration_s else "end of stream")
        return health

    def on_sigint(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("Ctrl-C: stopping the readers, writing what was computed (again to abort)")
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    try:
        for src in sources:
            src.start()
        summary = run_session(items, engine, sinks, session=session, source_stats=source_stats, extra=extra,
                              progress=_status_logger(sources, engine))
    finally:
        for src in sources:
            src.stop()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    _report(args, summary, extra)
    return 0


def _status_logger(sources, engine, *, every_s: float = 10.0):
    """A run-loop progress hook: one INFO line per sensor every ``every_s`` (``-v`` shows it)."""
    next_t = [time.monotonic() + every_s]

    def progress(item) -> None:
        now = time.monotonic()
        if now < next_t[0]:
            return
        next_t[0] = now + every_s
        counters = engine.counters()
        for s in sources:
            h = s.health()
            c = counters.get(s.sensor_id)
            log.info("%s: %s, %d samples, %d steps, lost frames %s, resyncs %s, gaps %s, skew %.1f ppm",
                     s.sensor_id, "connected" if h["connected"] else "DISCONNECTED", h.get("samples", 0),
                     getattr(c, "steps", 0), h.get("lost_frames", "-"), h.get("resyncs", "-"), h.get("gaps", 0),
                     h.get("clock_skew_ppm", float("nan")))

    return progress


HEALTH_COLUMNS = ("frames_ok", "lost_frames", "duplicate_frames", "crc_errors", "resyncs", "gaps",
                  "disconnects", "clock_slips", "clock_skew_ppm")


def format_health(health: dict) -> str:
    """One line per serial sensor: what the link lost and recovered."""
    lines = ["serial health: " + " ".join(HEALTH_COLUMNS)]
    for sid, h in health.items():
        vals = []
        for c in HEALTH_COLUMNS:
            v = h.get(c, "")
            vals.append(f"{v:.1f}" if isinstance(v, float) else str(v))
        lines.append(f"  {sid} ({h.get('port', '?')}, {h.get('format', '?')}): " + " ".join(vals))
    return "\n".join(lines)
