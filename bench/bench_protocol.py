"""Serial ingest speed: decoder throughput and the CPU cost of live 1 kHz 6-axis sensors.

    .venv/bin/python bench/bench_protocol.py [--seconds 10] [--sensors 1 8] [--engine] [--gait]

1. Decoder throughput (no I/O): full 6-axis frames (19 samples) fed in 4 KiB chunks to
   ``FrameDecoder`` alone, and to decoder + ``BlockAssembler`` (SampleBlocks out), in
   frames/s and samples/s on one core.
2. Live CPU share: N emulated 1 kHz 6-axis sensors on real ptys, written in real time by a
   separate process; this process runs N ``SerialSource`` reader threads and consumes
   their items (with ``--engine`` also the step detectors). Reported: CPU seconds of this
   process per wall second (1.0 = one core), per sensor and in total. Target (issue 6):
   8 sensors at 1 kHz within one core.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from firmware_bridge.protocol import FrameDecoder, SamplesFrame, encode_frame  # noqa: E402
from firmware_bridge.protocol_stream import BlockAssembler  # noqa: E402
from firmware_bridge.serial_emulator import DeviceParams, PtyPort, device_frames, sine_signal, stream  # noqa: E402


def decoder_throughput(n_frames: int = 20000, chunk: int = 4096) -> dict[str, float]:
    rng = np.random.default_rng(0)
    frames = [SamplesFrame(k % 65536, (k * 19_000) % 2**32,
                           rng.integers(-2000, 2000, size=(19, 6)).astype(np.int16)) for k in range(n_frames)]
    wire = b"".join(encode_frame(f) for f in frames)
    chunks = [wire[i:i + chunk] for i in range(0, len(wire), chunk)]
    out = {"bytes": len(wire)}
    dec = FrameDecoder()
    t = time.perf_counter()
    n = sum(len(dec.feed(c)) for c in chunks)
    dt = time.perf_counter() - t
    assert n == n_frames
    out["decode_frames_per_s"] = n / dt
    out["decode_samples_per_s"] = 19 * n / dt
    out["decode_MB_per_s"] = len(wire) / dt / 1e6

    from firmware_bridge.protocol import SensorConfigFrame

    dec = FrameDecoder()
    asm = BlockAssembler(sensor_id="b", host_t0_s=0.0, clock_warmup_s=0.0)
    asm.frame(SensorConfigFrame(65535, 0, 1_000_000, 6, 16, 2000, 16 * 9.80665 / 32768, 2000 / 32768), host_s=0.0)
    t = time.perf_counter()
    samples = 0
    for k, c in enumerate(chunks):
        host = k * chunk / 12_700  # bytes of a 1 kHz sensor per second
        for f in dec.feed(c):
            asm.frame(f, host_s=host + f.t_us * 0)
        samples += sum(b.n for b in asm.drain() if hasattr(b, "n"))
    dt = time.perf_counter() - t
    out["decode_assemble_frames_per_s"] = n_frames / dt
    out["decode_assemble_samples_per_s"] = samples / dt
    return out


def _emulators(paths_q: mp.Queue, n: int, seconds: float, ready: mp.Event, gait: bool) -> None:
    import threading

    ports = [PtyPort(drop_if_full=True) for _ in range(n)]
    if gait:  # the kinematic simulator's running foot: the engine finds real steps
        from firmware_bridge.serial_emulator import simulator_signal
        from pipeline.simulator import SimParams

        sig, _ = simulator_signal(SimParams(placement="foot", side="right", fs_hz=1000.0, duration_s=seconds + 4))
    else:
        sig = sine_signal(fs_hz=1000.0)
    paths_q.put([p.path for p in ports])
    ready.wait(30)
    threads = [threading.Thread(target=stream, args=(p, device_frames(DeviceParams(fs_hz=1000.0), sig,
                                                                       n_samples=int(1000 * (seconds + 3)))))
               for p in ports]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    time.sleep(0.5)
    for p in ports:
        p.close()


def live_cpu(n_sensors: int, seconds: float, *, engine: bool, gait: bool = False) -> dict[str, float]:
    from firmware_bridge.serial_source import SerialSource

    ctx = mp.get_context("fork")
    paths_q, ready = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_emulators, args=(paths_q, n_sensors, seconds, ready, gait), daemon=True)
    proc.start()
    paths = paths_q.get(timeout=120)
    q: queue.Queue = queue.Queue()
    t0 = time.monotonic()
    sources = [SerialSource(port=p, sensor_id=f"s{k}", out=q, host_t0_s=t0, fmt="binary") for k, p in enumerate(paths)]
    eng = None
    if engine:
        from pipeline.engine import Engine
        from pipeline.records import SensorInfo

        eng = Engine([SensorInfo(sensor_id=f"s{k}", placement="foot", side="right") for k in range(n_sensors)])
    for s in sources:
        s.open_once()
        s.start()
    ready.set()
    time.sleep(2.5)  # clock warm-up, steady state
    while not q.empty():
        q.get_nowait()
    r0, w0, samples = resource.getrusage(resource.RUSAGE_SELF), time.monotonic(), 0
    while time.monotonic() - w0 < seconds:
        try:
            item = q.get(timeout=0.1)
        except queue.Empty:
            continue
        if hasattr(item, "n"):
            samples += item.n
        if eng is not None:
            eng.update(item)
    r1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    steps = sum(c.steps for c in eng.counters().values()) if eng is not None else 0
    for s in sources:
        s.stop()
    proc.join(10)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    wall = w1 - w0
    h = sources[0].health()
    return {
        "sensors": n_sensors, "wall_s": wall, "cpu_share_total": cpu / wall, "cpu_share_per_sensor": cpu / wall / n_sensors,
        "samples_per_s": samples / wall, "lost_frames_s0": h["lost_frames"], "crc_errors_s0": h["crc_errors"],
        "steps": steps,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sensors", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--engine", action="store_true", help="also run the engine (step detectors) on the items")
    ap.add_argument("--gait", action="store_true", help="stream the simulator's running foot instead of a sine")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for k, v in decoder_throughput().items():
        print(f"  {k:34s} {v:14,.0f}")
    for n in args.sensors:
        r = live_cpu(n, args.seconds, engine=args.engine, gait=args.gait)
        what = (" + engine" if args.engine else "") + (" (simulated running)" if args.gait else "")
        print(f"live, {n} x 1 kHz 6-axis sensors{what}: "
              f"CPU {100 * r['cpu_share_total']:.1f}% of one core ({100 * r['cpu_share_per_sensor']:.2f}% per sensor), "
              f"{r['samples_per_s']:,.0f} samples/s received, lost frames {r['lost_frames_s0']}, "
              f"CRC errors {r['crc_errors_s0']} (sensor 0)" + (f", {r['steps']} steps" if args.engine else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
