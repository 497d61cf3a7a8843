"""Capacity measurement of the NATS scale-out (issue 10): gateway messages/s, worker
sensor-seconds/s with 1 and 2 worker processes, on a local 3-node JetStream cluster.

    .venv/bin/python tests/cluster_capacity.py [N_ATHLETES]

Not a test (pytest does not collect it); figures in docs/CLUSTER.md.
"""
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from nats_fixtures import NatsCluster
import test_cluster_nats as T
from pipeline.cluster import ClusterSettings, loads
import nats

N_ATH = int(sys.argv[1]) if len(sys.argv) > 1 else 6
d = Path(tempfile.mkdtemp())
c = NatsCluster(d / "nats").start()
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
    for tag, nworkers in (("one", 1), ("two", 2)):
        s = ClusterSettings(urls=c.urls, stream=f"B_{tag}", subject_prefix=f"b{tag}.f", kv_prefix=f"b{tag}", replicas=3,
                            lease_ttl_s=6.0, poll_s=0.25, batch_max_s=0.25, batch_max_bytes=2048)
        # gateway: publish everything, measure messages/s (one gateway, serial PubAcks on an R3 stream)
        t0 = time.monotonic(); n = 0
        for name, a in caps.items():
            gw = T.start_gateway(s, d / f"buf-{tag}-{name}", a, session_id="cap")
            T.feed_all(gw, a)
            assert gw.close(timeout_s=300)
            n += gw.published
        dt = time.monotonic() - t0
        print(f"[{tag}] gateway: {n} batches published in {dt:.2f} s -> {n/dt:.0f} msg/s (incl. sealing to disk)")
        t0 = time.monotonic()
        procs = []
        for w in range(nworkers):
            argv = [sys.executable, "-m", "pipeline.cli", "worker", "--worker-id", f"{tag}{w}", "--out", str(d / f"out-{tag}"),
                    "--stream", s.stream, "--subject-prefix", s.subject_prefix, "--kv-prefix", s.kv_prefix,
                    "--lease-ttl-s", "6", "--poll-s", "0.25"]
            for u in s.urls:
                argv += ["--nats", u]
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        async def done():
            nc = await nats.connect(servers=s.urls); kv = await nc.jetstream().key_value(s.bucket("units"))
            while True:
                try:
                    keys = await kv.keys()
                except Exception:
                    await asyncio.sleep(0.1); continue
                specs = [loads((await kv.get(k)).value) for k in keys]
                if len(specs) == N_ATH and all(x.get("done") for x in specs):
                    break
                await asyncio.sleep(0.1)
            await nc.close()
        asyncio.run(done())
        dt = time.monotonic() - t0
        sensor_s = N_ATH * 2 * T.DURATION_S
        print(f"[{tag}] {nworkers} worker(s): {N_ATH} athletes x 2 sensors x {T.DURATION_S:.0f} s ({n} msgs) in {dt:.2f} s "
              f"-> {n/dt:.0f} msg/s, {sensor_s/dt:.0f} sensor-seconds/s (= sensors in real time), incl. ~0.5-1 s start")
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        print(f"[{tag}] worker CPU {cpu:.2f} s -> {sensor_s / cpu:.0f} sensor-seconds per CPU-second, "
              f"{n / cpu:.0f} msg per CPU-second (load average now {os.getloadavg()[0]:.1f})")
finally:
    c.stop()
