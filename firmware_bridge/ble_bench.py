"""CPU cost of BLE ingest per sensor, with the scripted (TEST DOUBLE) bleak backend.

    python -m firmware_bridge.ble_bench [--sensors 2] [--fs-hz 1000] [--seconds 10] [--mtu 247]

Each emulated sensor streams a simulator run (``pipeline.simulator``) as PROTOCOL.md frames at ``fs_hz`` (6 axes) in notifications of
MTU − 3 bytes through the real ``BleakClient`` façade into :class:`BleSession`, whose
consumer decodes and runs the engine (step detectors and metrics), as ``gaitwatch live
--ble`` does. Reported: process CPU seconds per second of stream and per sensor (this
includes the fake peripherals' own work, so it is an upper bound on what gaitwatch
costs), and the consumer thread's share alone (decoding + clock fit + detectors).
No BlueZ/D-Bus costs are included: on a real stack BlueZ's D-Bus signal per
notification adds work in bluetoothd and in dbus-fast.
"""

from __future__ import annotations

import argparse
import time

from firmware_bridge.ble_decode import KINDS
from firmware_bridge.ble_fake import FakeWorld, ScriptedPeripheral
from firmware_bridge.ble_source import BleSession, BleTarget
from firmware_bridge.protocol import pack_notifications
from firmware_bridge.serial_emulator import DeviceParams, device_frames, simulator_signal
from pipeline.engine import Engine
from pipeline.records import SensorInfo, StepRecord


def bench(*, sensors: int = 2, fs_hz: float = 1000.0, seconds: float = 10.0, mtu: int = 247) -> dict:
    k = KINDS["gaitwatch"]
    peris, targets, infos = [], [], []
    from pipeline.simulator import SimParams

    for i in range(sensors):
        sig, n = simulator_signal(SimParams(placement="foot", side="left" if i % 2 == 0 else "right", fs_hz=fs_hz,
                                            duration_s=seconds, sensor_id=f"s{i}"))
        frames = [b for _, b, _ in device_frames(DeviceParams(fs_hz=fs_hz), sig, n_samples=n)]
        notes = pack_notifications(frames, payload_max=mtu - 3)
        name = f"gw-{i}"
        peris.append(ScriptedPeripheral(name=name, address=f"AA:00:00:00:01:{i:02X}", service_uuid=k.service_uuid,
                                        notify_uuid=k.notify_uuid, write_uuid=k.write_uuid, notifications=notes,
                                        interval_s=seconds / len(notes), mtu=mtu))
        info = SensorInfo(f"s{i}", "foot", "left" if i % 2 == 0 else "right")
        infos.append(info)
        targets.append(BleTarget(name, info))
    client, scanner = FakeWorld(peris).backends()
    engine = Engine(infos)
    s = BleSession(targets, host_t0_s=time.monotonic(), client_backend=client, scanner_backend=scanner,
                   scan_timeout_s=2.0)
    cpu0, wall0, thr0 = time.process_time(), time.monotonic(), time.thread_time()
    s.start()
    steps = 0
    for item in s.items(duration_s=seconds + 1.5):
        if not isinstance(item, StepRecord):
            steps += len(engine.update(item))
    steps += len(engine.flush())
    cpu, wall, thr = time.process_time() - cpu0, time.monotonic() - wall0, time.thread_time() - thr0
    h = s.health()
    return {
        "sensors": sensors, "fs_hz": fs_hz, "mtu": mtu, "stream_s": seconds, "wall_s": round(wall, 2),
        "notifications": sum(v["notifications"] for v in h.values()),
        "samples": sum(v.get("device_samples", 0) for v in h.values()), "steps": steps,
        "cpu_share_per_sensor_total": round(cpu / seconds / sensors, 4),
        "cpu_share_per_sensor_consumer": round(thr / seconds / sensors, 4),
        "latency_ms_max": round(max(v["latency_ms_max"] for v in h.values()), 2),
        "lost_frames": sum(v.get("lost_frames", 0) for v in h.values()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sensors", type=int, default=2)
    p.add_argument("--fs-hz", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--mtu", type=int, default=247)
    a = p.parse_args()
    print(bench(sensors=a.sensors, fs_hz=a.fs_hz, seconds=a.seconds, mtu=a.mtu))


if __name__ == "__main__":
    main()
