"""``gaitwatch gateway``: serial sensors (or captures) -> disk buffer -> NATS JetStream.

    gaitwatch gateway --serial PORT [...] --placement ... --side ... [--sensor-id ID ...] [--athlete NAME]
                      --buffer DIR [--nats URL ...] [--duration-s S]
    gaitwatch gateway --from-capture FILE [...] --placement ... --side ... --buffer DIR [--speed X]

The ports are read exactly as ``gaitwatch live`` reads them (:mod:`firmware_bridge.serial_source`);
every byte read goes, with its host time, into batches that are sealed on disk and published
in order (:mod:`firmware_bridge.gateway`). A gateway restarted on the same ``--buffer``
continues its session and sends what was left.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from pipeline.cmd_worker import add_cluster_arguments, settings_from_args


def add_parser(subparsers) -> argparse.ArgumentParser:
    from pipeline.cmd_live import _positive
    from pipeline.records import PLACEMENTS, SIDES

    p = subparsers.add_parser("gateway", help="publish live sensors' raw frames to a NATS JetStream cluster",
                              description="Read serial sensors (or replay captures) and publish their raw frames, "
                              "buffered on disk, to a NATS JetStream stream.")
    p.add_argument("--serial", action="append", default=[], metavar="PORT")
    p.add_argument("--from-capture", action="append", type=Path, default=[], metavar="FILE")
    p.add_argument("--placement", action="append", choices=PLACEMENTS, default=None)
    p.add_argument("--side", action="append", choices=SIDES, default=None)
    p.add_argument("--sensor-id", action="append", default=None, metavar="ID")
    p.add_argument("--athlete", default="")
    p.add_argument("--baud", type=int, default=None)
    p.add_argument("--format", choices=("auto", "binary", "text"), default=None)
    p.add_argument("--text-fs-hz", type=_positive, default=None)
    p.add_argument("--text-acc-unit", default="g")
    p.add_argument("--text-gyr-unit", default="dps")
    p.add_argument("--duration-s", type=_positive, default=None)
    p.add_argument("--speed", type=_positive, default=None, help="--from-capture: x real time (default: as fast as possible)")
    p.add_argument("--buffer", type=Path, required=True, metavar="DIR", help="disk buffer directory")
    p.add_argument("--capture", type=Path, default=None, metavar="DIR",
                   help="--serial: also keep every byte read, with its host time, in DIR/<sensor-id>.gwcap")
    p.add_argument("--session-id", default=None)
    p.add_argument("--gateway-id", default=None)
    p.add_argument("--drain-timeout-s", type=float, default=30.0, help="at the end, wait this long for the buffer to drain")
    add_cluster_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from firmware_bridge.gateway import Gateway, decoder_settings_from_meta, feed_capture
    from pipeline.cmd_live import sensors_for
    from pipeline.config import load_config

    config = load_config(args.config)
    s = settings_from_args(args, config)
    sensors = sensors_for(args)
    cfg = config.section("serial")
    if args.from_capture:
        from firmware_bridge.serial_capture import read_capture

        decoders, readers = {}, []
        for path, sensor in zip(args.from_capture, sensors):
            meta, recs = read_capture(path)
            decoders[sensor.sensor_id] = decoder_settings_from_meta(meta)
            readers.append((sensor.sensor_id, recs))
        gw = Gateway(s, buffer_dir=args.buffer, sensors=sensors, decoder=decoders, session_id=args.session_id,
                     gateway_id=args.gateway_id)
        t0 = time.monotonic()
        threads = [threading.Thread(target=feed_capture, args=(gw, sid, recs), kwargs={"speed": args.speed, "t0_monotonic": t0})
                   for sid, recs in readers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:

        from firmware_bridge.serial_source import SerialSource

        fmt = args.format or cfg["format"]
        kw = dict(fmt=fmt, text_fs_hz=args.text_fs_hz, text_acc_unit=args.text_acc_unit,
                  text_gyr_unit=args.text_gyr_unit, clock_warmup_s=cfg["clock_warmup_s"],
                  clock_window_s=cfg["clock_window_s"], slip_threshold_samples=cfg["slip_threshold_samples"])
        gw = Gateway(s, buffer_dir=args.buffer, sensors=sensors, decoder={x.sensor_id: kw for x in sensors},
                     session_id=args.session_id, gateway_id=args.gateway_id)
        host_t0 = time.monotonic()
        sources = []
        for port, x in zip(args.serial, sensors):
            capture = gw.capture_for(x.sensor_id)
            if args.capture is not None:  # the same bytes and times, kept locally (replay with live --from-capture)
                from firmware_bridge.serial_capture import CaptureWriter

                local = CaptureWriter(args.capture / f"{x.sensor_id}.gwcap", meta={
                    "port": port, "sensor_id": x.sensor_id, "session_id": gw.session_id, "format": fmt, **kw})
                capture = _Tee(capture, local)
            sources.append(SerialSource(port=port, sensor_id=x.sensor_id, out=_Discard(), host_t0_s=host_t0,
                                        baud=args.baud or cfg["baud"], reopen_interval_s=cfg["reopen_interval_s"],
                                        capture=capture, **kw))
        for src in sources:
            src.open_once()
            src.start()
        try:
            deadline = time.monotonic() + (args.duration_s or float("inf"))
            while time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            for src in sources:
                src.stop()
        for x in sensors:
            gw.end(x.sensor_id)
    ok = gw.close(timeout_s=args.drain_timeout_s)
    h = gw.health()
    print(f"gateway session {h['session_id']}: {h['published']} batches published, {h['pending']} left in {args.buffer}")
    return 0 if ok else 1


class _Discard:
    """A queue that drops the decoded items (the worker decodes the published bytes itself)."""

    def put(self, item, *a, **k) -> None:
        pass

    def put_nowait(self, item) -> None:
        pass


class _Tee:
    """Two capture writers fed with the same records."""

    def __init__(self, *writers):
        self.writers = writers

    def chunk(self, host_ns: int, data: bytes) -> None:
        for w in self.writers:
            w.chunk(host_ns, data)

    def lost(self, host_ns: int) -> None:
        for w in self.writers:
            w.lost(host_ns)

    def close(self) -> None:
        for w in self.writers:
            w.close()
