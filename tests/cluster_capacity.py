"""Capacity measurement of the NATS scale-out (issue 10), CPU-time based (robust to the other
work on a shared machine): gateway publishes, worker CPU per sensor-second and per message with
1 and 2 worker processes, NATS servers' CPU per message, on a local 3-node JetStream cluster.

    .venv/bin/python tests/cluster_capacity.py [N_ATHLETES]

Not a test (pytest does not collect it); figures in docs/CLUSTER.md. Per process CPU comes from
/proc/<pid>/stat (user + system), so other processes' load does not count; a worker's start-up
(imports) and its idle polling are measured on a worker with no work and subtracted.
"""
import asyncio
import os
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

N_ATH = int(sys.argv[1]) if len(sys.argv) > 1 else 16
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
    argv = [sys.executable, "-m", "pipeline.cli", "worker", "--worker-id", wid, "--out", str(out),
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
                keys = await kv.keys()
                specs = [loads((await kv.get(k)).value) for k in keys]
                if len(specs) == n_units and all(x.get("done") for x in specs):
                    return
            except Exception:
                pass
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


def settings(c, tag):
    return ClusterSettings(urls=c.urls, stream=f"B_{tag}", subject_prefix=f"b{tag}.f", kv_prefix=f"b{tag}",
                           replicas=3, lease_ttl_s=6.0, poll_s=0.25, batch_max_s=0.25, batch_max_bytes=65536)


d = Path(tempfile.mkdtemp())
c = NatsCluster(d / "nats").start()
try:
    # a worker with nothing to do: start-up CPU (imports, connect) and idle CPU per second
    s0 = settings(c, "idle")
    p = subprocess.Popen(worker_argv(s0, "idle", d / "out-idle"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    asyncio.run(wait_heartbeats(s0, 1))
    time.sleep(1.0)
    startup_cpu, startup_wall = cpu_s(p.pid), time.monotonic() - t0
    time.sleep(5.0)
    idle_cpu_per_s = (cpu_s(p.pid) - startup_cpu) / 5.0
    p.terminate()
    p.wait(20)
    print(f"worker start-up: {startup_cpu:.2f} CPU-s ({startup_wall:.1f} s wall); idle: {idle_cpu_per_s * 1e3:.1f} CPU-ms/s")

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
    for tag, nworkers in (("one", 1), ("two", 2)):
        s = settings(c, tag)
        # gateway (this process): publish everything, serial PubAcks on the R3 stream
        g_cpu0, n_cpu0, t0 = self_cpu(), nats_cpu(c), time.monotonic()
        n = nbytes = 0
        for name, a in caps.items():
            gw = T.start_gateway(s, d / f"buf-{tag}-{name}", a, session_id="cap")
            T.feed_all(gw, a)
            assert gw.close(timeout_s=300)
            n += gw.published
        dt, g_cpu, n_cpu = time.monotonic() - t0, self_cpu() - g_cpu0, nats_cpu(c) - n_cpu0
        nbytes = sum(sum(len(x) for _, x in T.read_capture(cp)[1] if x) for a in caps.values() for cp in a["caps"])
        print(f"[{tag}] gateway: {n} batches ({nbytes / n / 1e3:.1f} kB avg) in {dt:.2f} s wall -> {n / dt:.0f} msg/s; "
              f"gateway CPU {g_cpu:.2f} s (incl. reading the captures); NATS 3 nodes CPU {n_cpu:.2f} s "
              f"-> {n / n_cpu:.0f} R3 publishes per NATS CPU-second")
        n_cpu0, t0 = nats_cpu(c), time.monotonic()
        procs = [subprocess.Popen(worker_argv(s, f"{tag}{w}", d / f"out-{tag}"), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for w in range(nworkers)]
        asyncio.run(wait_done(s, N_ATH))
        dt = time.monotonic() - t0
        cpus = [cpu_s(p.pid) for p in procs]
        n_cpu = nats_cpu(c) - n_cpu0
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
        work = [x - startup_cpu - idle_cpu_per_s * max(0.0, dt - startup_wall) for x in cpus]
        w = sum(work)
        print(f"[{tag}] {nworkers} worker(s): {N_ATH} athletes x 2 sensors x {T.DURATION_S:.0f} s = {sensor_s:.0f} "
              f"sensor-s, {n} msgs, in {dt:.2f} s wall (incl. ~{startup_wall:.1f} s start) -> {sensor_s / dt:.0f} sensor-s/s, "
              f"{n / dt:.0f} msg/s")
        print(f"[{tag}]   worker CPU per process {', '.join(f'{x:.2f}' for x in cpus)} s; minus start-up and idle: "
              f"{w:.2f} CPU-s -> {sensor_s / w:.0f} sensor-s per CPU-s, {n / w:.0f} msg per CPU-s, "
              f"{w / sensor_s * 1e3:.2f} CPU-ms per sensor-second")
        print(f"[{tag}]   NATS CPU while the workers consumed: {n_cpu:.2f} s ({n / n_cpu:.0f} delivered msgs per NATS "
              f"CPU-s, incl. KV leases/checkpoints/heartbeats); load average {os.getloadavg()[0]:.1f}")
finally:
    c.stop()
