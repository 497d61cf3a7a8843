"""``gaitwatch gateway``: serial or BLE sensors (or captures) -> disk buffer -> NATS JetStream.

    gaitwatch gateway --serial PORT [...] --placement ... --side ... [--sensor-id ID ...] [--athlete NAME]
                      --buffer DIR [--nats URL ...] [--duration-s S]
    gaitwatch gateway --ble NAME_OR_ADDRESS [...] --placement ... --side ... [--ble-kind ...] [--ble-capture DIR]
                      --buffer DIR [--nats URL ...] [--duration-s S]
    gaitwatch gateway --from-capture FILE [...] --placement ... --side ... --buffer DIR [--speed X]
    gaitwatch gateway --from-ble-capture FILE [...] --buffer DIR [--speed X]

The ports are read exactly as ``gaitwatch live`` reads them (:mod:`firmware_bridge.serial_source`);
every byte read goes, with its host time, into batches that are sealed on disk and published
in order (:mod:`firmware_bridge.gateway`). BLE devices are connected and supervised by the
session of ``live --ble`` with the same options (:mod:`firmware_bridge.gateway_ble`); every
notification payload goes, with its receive time, into v2 batches (a lost link: a gap marker). A gateway restarted on the same ``--buffer``
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
                              description="Read serial or BLE sensors exactly as `live` does (or replay their captures) and "
                              "publish their raw frames / notifications with the receive times, buffered on "
                              "disk, to a NATS JetStream stream (docs/CLUSTER.md).")
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
    p.add_argument("--publish-window", type=int, default=None, metavar="N",
                   help="publishes awaiting their PubAck at once, at most one per sensor (default 64; 1: one at a time)")
    add_cluster_arguments(p)
    from firmware_bridge.ble_cli import add_ble_arguments  # the BLE options of `live` (--ble NAME ...)

    add_ble_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from firmware_bridge.gateway import Gateway, decoder_settings_from_meta, feed_capture
    from pipeline.cmd_live import sensors_for
    from pipeline.config import load_config

    config = load_config(args.config)
    s = settings_from_args(args, config)
    if args.publish_window is not None:
        from pipeline.errors import ConfigError

        if args.publish_window < 1:
            raise ConfigError(f"gateway: --publish-window must be >= 1, got {args.publish_window}")
        s.publish_window = args.publish_window
    if getattr(args, "ble", None) or getattr(args, "from_ble_capture", None):
        return run_ble(args, config, s)
    sensors = sensors_for(args, "gateway")
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


def run_ble(args: argparse.Namespace, config, s) -> int:
    """``--ble`` devices (or ``--from-ble-capture`` files) -> v2 batches."""
    from firmware_bridge import ble_cli
    from firmware_bridge.gateway import Gateway, feed_capture
    from firmware_bridge.gateway_ble import GatewayBleSession, ble_decoder_spec
    from pipeline.errors import ConfigError

    ble_cli.check_ble_args(args, "gateway")
    cfg = config.section("serial")
    if args.from_ble_capture:
        from firmware_bridge.serial_capture import read_capture
        from pipeline.records import SensorInfo

        metas, readers = [], []
        for path in args.from_ble_capture:
            meta, recs = read_capture(path)
            if meta.get("transport") != "ble":
                raise ConfigError(f"{path}: not a BLE capture (use --from-capture for serial captures)")
            metas.append(meta)
            readers.append(recs)
        sensors = [SensorInfo(sensor_id=str(m["sensor_id"]), placement=args.placement[0] if args.placement else m["placement"],
                              side=args.side[0] if args.side else m["side"], athlete=args.athlete) for m in metas]
        keys = ("movesense_rate_hz", "rsc_cadence_counts", "clock_warmup_s", "clock_window_s", "slip_threshold_samples")
        decoders = {x.sensor_id: ble_decoder_spec(str(m.get("device", "")), str(m["kind"]), {k: m[k] for k in keys if k in m})
                    for x, m in zip(sensors, metas)}
        gw = Gateway(s, buffer_dir=args.buffer, sensors=sensors, decoder=decoders, session_id=args.session_id,
                     gateway_id=args.gateway_id)
        t0 = time.monotonic()

        def feed(sid: str, kind: str, recs) -> None:
            feed_capture(_KindAdapter(gw, kind), sid, recs, speed=args.speed, t0_monotonic=t0)

        threads = [threading.Thread(target=feed, args=(x.sensor_id, str(m["kind"]), recs))
                   for x, m, recs in zip(sensors, metas, readers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        kinds = ble_cli.ble_kinds(args, "gateway")
        sensors = ble_cli._sensors(args, list(args.ble), "gateway")
        options = ble_cli._options(args, cfg)
        from firmware_bridge.ble_source import BleTarget

        gw = Gateway(s, buffer_dir=args.buffer, sensors=sensors, session_id=args.session_id, gateway_id=args.gateway_id,
                     decoder={x.sensor_id: ble_decoder_spec(q, k, options) for q, x, k in zip(args.ble, sensors, kinds)})
        backends = ble_cli.BACKENDS or (None, None)
        ble = GatewayBleSession([BleTarget(q, x, k) for q, x, k in zip(args.ble, sensors, kinds)], gateway=gw,
                                host_t0_s=time.monotonic(), client_backend=backends[0], scanner_backend=backends[1],
                                scan_timeout_s=args.ble_scan_timeout_s, backoff_max_s=max(args.ble_backoff_max_s, 0.5),
                                options=options, capture_dir=args.ble_capture,
                                session_meta={"session_id": gw.session_id, "start_wall_ns": gw.buf.state["start_wall_ns"]})
        stop = threading.Event()
        try:
            ble.start()
            for _ in ble.items(duration_s=args.duration_s, stop=stop):
                pass  # decoded only for the gateway's health figures; the worker decodes the forwarded payloads
        except KeyboardInterrupt:
            pass
        finally:
            ble.stop()
        for x in sensors:
            gw.end(x.sensor_id)
        print(ble_cli.format_health(ble.health()))
    ok = gw.close(timeout_s=args.drain_timeout_s)
    h = gw.health()
    print(f"gateway session {h['session_id']}: {h['published']} batches published, {h['pending']} left in {args.buffer}")
    return 0 if ok else 1


class _KindAdapter:
    """``Gateway.chunk`` of a BLE capture's records: notifications of a device of ``kind``."""

    def __init__(self, gw, kind: str):
        self.gw, self.kind = gw, kind

    def chunk(self, sensor_id: str, host_ns: int, data: bytes | None) -> None:
        self.gw.notification(sensor_id, host_ns, data, kind=self.kind)

    def end(self, sensor_id: str) -> None:
        self.gw.end(sensor_id)


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
