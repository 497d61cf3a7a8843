"""``gaitwatch capture``: record a serial port's raw bytes with their host read times.

    gaitwatch capture --serial PORT --out FILE.gwcap [--duration-s S] [--baud 921600]
                      [--format auto|binary|text] [--text-fs-hz HZ ...] [--sensor-id ID]

Nothing is analysed; the bytes are decoded only to report the link's health at the end.
Replay the file through the same decoder and the step detectors with
``gaitwatch live --from-capture FILE.gwcap --placement ... --side ...``. Ctrl-C ends the
capture (the file is complete up to the last chunk read).
"""

from __future__ import annotations

import argparse
import queue
import signal
import threading
import time
from pathlib import Path

from pipeline.errors import ConfigError


def add_parser(subparsers) -> argparse.ArgumentParser:
    from firmware_bridge.protocol import ACC_UNITS_MS2, GYR_UNITS_DPS
    from firmware_bridge.serial_source import FORMATS
    from pipeline.cmd_live import _positive

    p = subparsers.add_parser(
        "capture",
        help="record a serial sensor's raw bytes (replay with: live --from-capture)",
        description="Record every byte a serial port delivers, with the host time it was read, to a .gwcap file.",
    )
    p.add_argument("--serial", required=True, metavar="PORT", help="serial port, e.g. /dev/ttyACM0")
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="capture file to write (.gwcap)")
    p.add_argument("--duration-s", type=_positive, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--sensor-id", default=None, metavar="ID", help="sensor id stored in the capture")
    p.add_argument("--baud", type=int, default=None, help="baud rate (default: config [serial].baud)")
    p.add_argument("--format", choices=FORMATS, default=None, help="how to decode for the health report")
    p.add_argument("--text-fs-hz", type=_positive, default=None, metavar="HZ", help="text mode: sample rate")
    p.add_argument("--text-acc-unit", choices=sorted(ACC_UNITS_MS2), default="g")
    p.add_argument("--text-gyr-unit", choices=sorted(GYR_UNITS_DPS), default="dps")
    p.add_argument("--config", type=Path, default=None, metavar="FILE", help="TOML config over the defaults")
    return p


def run(args: argparse.Namespace) -> int:
    from firmware_bridge.serial_capture import CaptureWriter
    from firmware_bridge.serial_source import SerialSource
    from pipeline.cmd_live import format_health
    from pipeline.config import load_config

    cfg = load_config(args.config).section("serial")
    fmt = args.format or cfg["format"]
    if fmt == "text" and args.text_fs_hz is None:
        raise ConfigError("capture: --format text needs the board's sample rate: --text-fs-hz HZ")
    sensor_id = args.sensor_id or f"serial-{Path(args.serial).name}"
    decoder_kw = dict(fmt=fmt, text_fs_hz=args.text_fs_hz, text_acc_unit=args.text_acc_unit,
                      text_gyr_unit=args.text_gyr_unit, clock_warmup_s=cfg["clock_warmup_s"],
                      clock_window_s=cfg["clock_window_s"], slip_threshold_samples=cfg["slip_threshold_samples"])
    host_t0 = time.monotonic()
    q: queue.Queue = queue.Queue()
    src = SerialSource(port=args.serial, sensor_id=sensor_id, out=q, host_t0_s=host_t0,
                       baud=args.baud or cfg["baud"], reopen_interval_s=cfg["reopen_interval_s"], **decoder_kw)
    src.open_once()
    src.capture = CaptureWriter(args.out, meta={
        "port": args.serial, "sensor_id": sensor_id, "session_id": args.out.stem,
        "start_wall_ns": time.time_ns(), "format": fmt, **decoder_kw})
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        src.start()
        deadline = None if args.duration_s is None else time.monotonic() + args.duration_s
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            stop.wait(0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic())))
            while not q.empty():  # items are not needed: only the bytes are kept
                q.get_nowait()
    finally:
        src.stop()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    print(format_health({sensor_id: src.health()}))
    print(f"\nwrote {args.out} ({src.capture.bytes} bytes)")
    return 0
