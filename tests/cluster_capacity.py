"""Capacity measurement of the NATS scale-out (issue 10), CPU-time based (robust to the other
work on a shared machine): gateway publishes, worker CPU per sensor-second and per message with
1 and 2 worker processes, NATS servers' CPU per message, on a local 3-node JetStream cluster.

    .venv/bin/python tests/cluster_capacity.py [N_ATHLETES]
    .venv/bin/python tests/cluster_capacity.py --publish [ROUNDS]   # gateway publishing: window 1 vs 64

Not a test (pytest does not collect it); figures in docs/CLUSTER.md. Per process CPU comes from
/proc/<pid>/stat (user + system), so other processes' load does not count. Each worker first processes one
warm-up athlete (imports, compiled kernels loaded), its idle CPU (polling) is measured and
subtracted; the workers are paused (SIGSTOP) while the gateway publishes, so each side is
measured alone, then resumed and timed until every athlete is done.
"""
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nats  # noqa: E402
import test_cluster_nats as T  # noqa: E402
from nats_fixtures import NatsCluster  # noqa: E402

from pipeline.cluster import ClusterSettings, loads  # noqa: E402

N_ATH = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 16
FLOOD_ONLY = "--flood-only" in sys.argv
PUBLISH_BENCH = "--publish" in sys.argv  # gateway publishing only: publish_window 1 vs 64, alternated
TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TCK


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def nats_cpu(c) -> float:
    return sum(cpu_s(p.pid) for p in c.procs if p is not None)


def worker_argv(s, wid, out):
    argv = [sys.executable, "-m", "pipeline.cli", "-v", "worker", "--worker-id", wid, "--out", str(out),
            "--stream", s.stream, "--subject-prefix", s.subject_prefix, "--kv-prefix", s.kv_prefix,
            "--lease-ttl-s", "6", "--poll-s", "0.25"]
    for u in s.urls:
        argv += ["--nats", u]
    return argv


async def wait_heartbeats(s, n):
    nc = await nats.connect(servers=s.urls)
    try:
        while True:
            try:
                kv = await nc.jetstream().key_value(s.bucket("workers"))
                if len(await kv.keys()) >= n:
                    return
            except Exception:
                pass
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def wait_done(s, n_units):
    nc = await nats.connect(servers=s.urls)
    kv = await nc.jetstream().key_value(s.bucket("units"))
    try:
        while True:
            try:
                keys = await asyncio.wait_for(kv.keys(), timeout=5.0)
                specs = [loads((await kv.get(k)).value) for k in keys]
                if len(specs) == n_units and all(x.get("done") for x in specs):
                    return
            except Exception:
                pass
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


BATCH_BYTES = 1700  # ~0.25 s of one sensor's frames: what a live gateway seals (batch_max_s); captures are fed faster


def settings(c, tag):
    return ClusterSettings(urls=c.urls, stream=f"B_{tag}", subject_prefix=f"b{tag}.f", kv_prefix=f"b{tag}",
                           replicas=3, lease_ttl_s=6.0, poll_s=0.25, batch_max_s=0.25, batch_max_bytes=BATCH_BYTES)


def publish(s, athletes, tag, session):
    n = 0
    for name, a in athletes.items():
        gw = T.start_gateway(s, d / f"buf-{tag}-{session}-{name}", a, session_id=session)
        T.feed_all(gw, a)
        assert gw.close(timeout_s=300)
        n += gw.published
    return n


def publish_bench(c, rounds: int, *, n_sensors: int = 32, per_sensor: int = 125, windows=(1, 64)):
    """One gateway with ``n_sensors`` sensors (16 athletes x 2 feet) and ``n_sensors * per_sensor``
    batches of BATCH_BYTES already sealed in its disk buffer (a backlog after an outage, or a
    gateway at full load) publishes them all with each ``publish_window``, alternated per round:
    wall msg/s, gateway process CPU per msg, NATS CPU per msg (3 nodes summed, R3)."""
    from firmware_bridge.gateway import Gateway
    from pipeline.records import SensorInfo

    sensors = [SensorInfo(sensor_id=f"p{k}", placement="foot", side=("left", "right")[k % 2], athlete=f"a{k // 2}")
               for k in range(n_sensors)]
    body = os.urandom(BATCH_BYTES - 12)
    res: dict[int, list] = {w: [] for w in windows}
    for r in range(-1, rounds):  # round -1: creates each stream and its KV buckets (R3), not counted
        for w in windows if r % 2 == 0 else windows[::-1]:
            s = settings(c, f"pub{w}")
            s.publish_window = w
            s.batch_max_bytes = 1  # each chunk below is one batch
            buf = d / f"pubbuf-{w}-{r}"
            g = Gateway(s, buffer_dir=buf, sensors=sensors, session_id=f"r{r}", connect=False)
            for i in range(per_sensor if r >= 0 else 2):
                for x in sensors:
                    g.chunk(x.sensor_id, i * 250_000_000, body)
            n = g.buf.state["next_gseq"]
            load = os.getloadavg()[0]
            g_cpu0, n_cpu0, t0 = self_cpu(), nats_cpu(c), time.monotonic()
            g = Gateway(s, buffer_dir=buf, sensors=sensors)  # publishes the backlog
            while g.buf.pending():
                time.sleep(0.01)
            dt, g_cpu, n_cpu = time.monotonic() - t0, self_cpu() - g_cpu0, nats_cpu(c) - n_cpu0
            assert g.close(timeout_s=60) and g.published == n
            if r < 0:
                continue
            res[w].append((n / dt, n / g_cpu, n / n_cpu, load))
            print(f"round {r} window {w:3d}: {n} msgs in {dt:.2f} s wall -> {n / dt:.0f} msg/s; gateway CPU "
                  f"{g_cpu:.2f} s -> {n / g_cpu:.0f} msg per CPU-s; NATS CPU {n_cpu:.2f} s -> {n / n_cpu:.0f} R3 "
                  f"publishes per NATS CPU-s; load average before {load:.1f}", flush=True)
    for w, xs in res.items():
        a = np.array([x[:3] for x in xs])
        print(f"window {w:3d}: msg/s median {np.median(a[:, 0]):.0f} (range {a[:, 0].min():.0f}-{a[:, 0].max():.0f}); "
              f"msg per gateway CPU-s {np.median(a[:, 1]):.0f} ({a[:, 1].min():.0f}-{a[:, 1].max():.0f}); msg per NATS "
              f"CPU-s {np.median(a[:, 2]):.0f} ({a[:, 2].min():.0f}-{a[:, 2].max():.0f})")


d = Path(tempfile.mkdtemp())
c = NatsCluster(d / "nats").start()
if PUBLISH_BENCH:
    import numpy as np

    try:
        rounds = [int(a) for a in sys.argv[1:] if a.isdigit()]
        publish_bench(c, rounds[0] if rounds else 4)
    finally:
        c.stop()
    sys.exit(0)
try:
    caps = {}
    for k in range(N_ATH):
        name = f"a{k}"
        sensors, cl = [], []
        for j, side in enumerate(("left", "right")):
            sid = f"{name}-{side[0]}"
            cl.append(T.make_capture(d / f"{sid}.gwcap", sensor_id=sid, side=side, athlete=name, seed=10 * k + j))
            sensors.append(T.SensorInfo(sensor_id=sid, placement="foot", side=side, athlete=name))
        caps[name] = {"sensors": sensors, "caps": cl}
    sensor_s = N_ATH * 2 * T.DURATION_S
    nbytes = sum(sum(len(x) for _, x in T.read_capture(cp)[1] if x) for a in caps.values() for cp in a["caps"])
    print(f"{N_ATH} athletes x 2 foot sensors x {T.DURATION_S:.0f} s at 500 Hz: {nbytes / sensor_s:.0f} B per sensor-second "
          f"of device frames; gateway batches ~0.25 s ({BATCH_BYTES} B)")
    for tag, nworkers in () if FLOOD_ONLY else (("one", 1), ("two", 2)):
        s = settings(c, tag)
        procs = [subprocess.Popen(worker_argv(s, f"{tag}{w}", d / f"out-{tag}"), stdout=subprocess.DEVNULL,
                                  stderr=open(d / f"{tag}{w}.log", "wb")) for w in range(nworkers)]
        # warm-up: one athlete per worker (imports, compiled kernels from the cache), then idle CPU
        warm = {f"w{k}": caps[f"a{k}"] for k in range(nworkers)}
        publish(s, warm, tag, "warm")
        asyncio.run(wait_done(s, nworkers))
        time.sleep(1.0)
        base = [cpu_s(p.pid) for p in procs]
        time.sleep(4.0)
        idle = sum(cpu_s(p.pid) - b for p, b in zip(procs, base)) / (4.0 * nworkers)
        for p in procs:  # paused while the gateway publishes: each side measured alone
            os.kill(p.pid, signal.SIGSTOP)
        base = [cpu_s(p.pid) for p in procs]
        g_cpu0, n_cpu0, t0 = self_cpu(), nats_cpu(c), time.monotonic()
        n = publish(s, caps, tag, "cap")
        dt, g_cpu, n_cpu = time.monotonic() - t0, self_cpu() - g_cpu0, nats_cpu(c) - n_cpu0
        print(f"[{tag}] gateway: {n} batches ({nbytes / n / 1e3:.2f} kB avg) in {dt:.2f} s wall -> {n / dt:.0f} msg/s "
              f"(R3; one gateway per athlete: at most its 2 sensors' publishes in flight); gateway process CPU {g_cpu:.2f} s (incl. reading the captures and sealing to "
              f"disk) -> {n / g_cpu:.0f} msg per CPU-s; NATS 3 nodes CPU {n_cpu:.2f} s -> {n / n_cpu:.0f} R3 publishes "
              f"per NATS CPU-second (all 3 replicas' work)")
        n_cpu0 = nats_cpu(c)
        for p in procs:
            os.kill(p.pid, signal.SIGCONT)
        t0 = time.monotonic()
        asyncio.run(wait_done(s, N_ATH + nworkers))
        dt = time.monotonic() - t0
        cpus = [cpu_s(p.pid) - b for p, b in zip(procs, base)]
        n_cpu = nats_cpu(c) - n_cpu0
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
        w = sum(cpus) - idle * dt * nworkers
        logs = [(d / f"{tag}{k}.log").read_text() for k in range(nworkers)]
        took = [x.count(": took unit ") for x in logs]
        moved = sum(x.count("(resuming at") + x.count("gave ") for x in logs)
        print(f"[{tag}]   units taken per worker (incl. the warm-up): {took}; moved between workers: {moved}")
        print(f"[{tag}] {nworkers} worker(s): {sensor_s:.0f} sensor-s, {n} msgs in {dt:.2f} s wall -> "
              f"{sensor_s / dt:.0f} sensor-s/s, {n / dt:.0f} msg/s (wall: shared with 3 NATS nodes and other work)")
        print(f"[{tag}]   worker CPU per process {', '.join(f'{x:.2f}' for x in cpus)} s (idle {idle * 1e3:.1f} "
              f"CPU-ms/s each, subtracted): {w:.2f} CPU-s -> {sensor_s / w:.0f} sensor-s per CPU-s, {n / w:.0f} msg "
              f"per CPU-s, {w / sensor_s * 1e3:.2f} CPU-ms per sensor-second")
        print(f"[{tag}]   NATS CPU while the workers consumed: {n_cpu:.2f} s -> {n / n_cpu:.0f} delivered msgs per NATS "
              f"CPU-s (incl. leases, checkpoints, heartbeats); load average {os.getloadavg()[0]:.1f}")
    # NATS alone: R3 publishes of gateway-sized messages with 64 in flight, any subject order
    # (the gateway keeps one in flight per sensor subject: --publish measures that)
    async def flood(n_msgs=6000, window=64):
        nc = await nats.connect(servers=c.urls)
        js = nc.jetstream(timeout=10)
        from nats.js.api import StreamConfig

        await js.add_stream(StreamConfig(name="FLOOD", subjects=["flood.>"], num_replicas=3))
        body = os.urandom(BATCH_BYTES)
        sem = asyncio.Semaphore(window)

        async def one(i):
            async with sem:
                await js.publish(f"flood.s{i % 32}", body)

        n0, t0 = nats_cpu(c), time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n_msgs)))
        dt, ncpu = time.monotonic() - t0, nats_cpu(c) - n0
        await nc.close()
        print(f"NATS R3, {window} publishes in flight: {n_msgs} x {BATCH_BYTES} B in {dt:.2f} s wall -> {n_msgs / dt:.0f} "
              f"msg/s; NATS CPU {ncpu:.2f} s -> {n_msgs / ncpu:.0f} R3 publishes per NATS CPU-second")

    asyncio.run(flood())
finally:
    c.stop()
