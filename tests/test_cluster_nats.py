"""Scale-out on a real 3-node NATS JetStream cluster (issue 10), with the real engine.

Recorded-style input: simulated runs (pipeline.simulator) -> emulated device frames ->
``.gwcap`` captures with jittered host read times. The reference is a single process,
``gaitwatch live --from-capture`` of the same captures; the cluster's steps.csv per athlete
must be byte-identical to it, through a NATS node killed mid-stream, a worker killed
mid-run (SIGKILL) and a gateway that buffered on disk during an outage and restarted.
"""

from __future__ import annotations

import asyncio
import csv
import heapq
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import nats  # noqa: E402,F401  (nats-py is a product dependency: missing, the tests must fail, not skip)

from influx_fixtures import influx_db, influx_server  # noqa: F401  (fixtures)
from nats_fixtures import nats_cluster  # noqa: F401  (fixture)

from firmware_bridge.gateway import Gateway, decoder_settings_from_meta, feed_capture
from firmware_bridge.serial_capture import CaptureWriter, read_capture
from firmware_bridge.serial_emulator import DeviceParams, device_frames, simulator_signal
from pipeline import schema
from pipeline.cli import main as cli_main
from pipeline.cluster import ClusterSettings, unit_key
from pipeline.records import SensorInfo
from pipeline.simulator import SimParams
from pipeline.worker import Worker

FS = 500.0
DURATION_S = 24.0
TIMEOUT_S = 60.0


def make_capture(path: Path, *, sensor_id: str, side: str, athlete: str, seed: int) -> Path:
    p = SimParams(placement="foot", side=side, sensor_id=sensor_id, athlete=athlete, fs_hz=FS,
                  duration_s=DURATION_S, seed=seed, variability=0.5, phase_s=0.0 if side == "left" else 0.35)
    sig, n = simulator_signal(p)
    rng = np.random.default_rng(seed)
    w = CaptureWriter(path, meta={"sensor_id": sensor_id, "format": "binary", "clock_warmup_s": 0.5})
    last_ns = 0
    for due, data, _ in device_frames(DeviceParams(fs_hz=FS, drift_ppm=30.0 * (seed % 3)), sig, n_samples=n):
        last_ns = max(last_ns, int(round((due + 2e-4 + rng.exponential(1e-3)) * 1e9)))  # reads are in order
        w.chunk(last_ns, data)
    w.close()
    return path


@pytest.fixture(scope="module")
def athletes(tmp_path_factory):
    """Two athletes, left + right foot each: captures and the single-process reference steps.csv."""
    d = tmp_path_factory.mktemp("caps")
    out = {}
    for k, name in enumerate(("ann", "bob")):
        sensors, caps = [], []
        for j, side in enumerate(("left", "right")):
            sid = f"{name}-{side[0]}"
            caps.append(make_capture(d / f"{sid}.gwcap", sensor_id=sid, side=side, athlete=name, seed=10 * k + j))
            sensors.append(SensorInfo(sensor_id=sid, placement="foot", side=side, athlete=name))
        ref = d / f"ref-{name}"
        argv = ["live", "--placement", "foot", "--side", "left", "--side", "right", "--athlete", name, "--out", str(ref)]
        for c in caps:
            argv += ["--from-capture", str(c)]
        assert cli_main(argv) == 0
        steps = (ref / "steps.csv").read_text()
        assert steps.count("\n") > 50, "the reference run must have steps"
        out[name] = {"sensors": sensors, "caps": caps, "ref": steps}
    return out


def settings(cluster, tag: str, **kw) -> ClusterSettings:
    return ClusterSettings(urls=cluster.urls, stream=f"GW_{tag}", subject_prefix=f"gw{tag}.frames",
                           kv_prefix=f"gw{tag}", replicas=3, lease_ttl_s=kw.pop("lease_ttl_s", 6.0),
                           poll_s=0.25, batch_max_s=0.05, batch_max_bytes=8192, **kw)


def start_gateway(s, buffer_dir, athlete, *, session_id) -> Gateway:
    dec = {}
    for c, sensor in zip(athlete["caps"], athlete["sensors"]):
        meta, _ = read_capture(c)
        dec[sensor.sensor_id] = decoder_settings_from_meta(meta)
    return Gateway(s, buffer_dir=buffer_dir, sensors=athlete["sensors"], decoder=dec, session_id=session_id)


def feed_all(gw, athlete, *, speed=None, start_s=0.0, stop_s=float("inf"), end=True):
    """Both sensors interleaved by host time, like live readers would deliver them."""
    per_sensor = []
    for c, sensor in zip(athlete["caps"], athlete["sensors"]):
        _, it = read_capture(c)
        per_sensor.append([(h, k, sensor.sensor_id, d) for k, (h, d) in enumerate(it)])
    recs = heapq.merge(*per_sensor, key=lambda r: r[0])  # each sensor's own order kept
    t0 = time.monotonic()
    for h, _, sid, d in recs:
        if start_s <= h < stop_s:
            feed_capture(gw, sid, [(h, d)], speed=speed, end=False, t0_monotonic=t0 - start_s / (speed or 1))
    if end:
        for sensor in athlete["sensors"]:
            gw.end(sensor.sensor_id)


class WorkerThread:
    def __init__(self, s, out_dir, worker_id):
        self.stop = threading.Event()
        self.worker = Worker(s, out_dir=out_dir, worker_id=worker_id)
        self.error = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self):
        try:
            asyncio.run(self.worker.run(self.stop))
        except BaseException as exc:  # shown by close()
            self.error = exc

    def close(self):
        self.stop.set()
        self.thread.join(30)
        assert self.error is None, f"worker {self.worker.worker_id} died: {self.error!r}"


def wait_for(pred, timeout_s=TIMEOUT_S, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def unit_steps(out: Path, session: str, athlete: str) -> Path:
    return out / unit_key(session, athlete).replace(".", "/") / "steps.csv"


def assert_unit_steps(out: Path, session: str, athlete: str, ref: str) -> None:
    """The unit's steps equal the single-process ones: byte-identical when one worker did it all;
    when the lease moved (e.g. renewals unanswered for lease_ttl_s during a node's loss), the
    given-up run's part (``part-*``: its steps up to its checkpoint) and the resuming run's
    steps together hold every step once (IC within 3 ms: the new owner's fresh clock fit)."""
    final = unit_steps(out, session, athlete)
    parts = sorted(final.parent.glob("part-*/steps.csv"))
    if not parts:
        assert final.read_text() == ref
        return
    print(f"{athlete}: taken over ({len(parts)} part(s) before the final run)")
    got: dict[str, list[float]] = {}
    for p in [*parts, final]:
        for sid, times in csv_steps(p.read_text()).items():
            got.setdefault(sid, []).extend(times)
    want = csv_steps(ref)
    assert sorted(got) == sorted(want)
    for sid in want:
        assert len(got[sid]) == len(want[sid]), sid
        assert np.abs(np.subtract(sorted(got[sid]), want[sid])).max() < 3e-3, sid


async def stream_count(s, subject=None) -> int:
    import nats

    nc = await nats.connect(servers=s.urls)
    try:
        info = await nc.jetstream().stream_info(s.stream, subjects_filter=subject)
        assert info.config.num_replicas == 3
        return info.state.messages
    finally:
        await nc.close()


def test_two_workers_match_single_process_through_a_nats_node_kill(nats_cluster, athletes, tmp_path):
    s = settings(nats_cluster, "a")
    out = tmp_path / "out"
    workers = [WorkerThread(s, out, f"w{k}") for k in range(2)]
    gws = {n: start_gateway(s, tmp_path / f"buf-{n}", a, session_id="s1") for n, a in athletes.items()}
    try:
        feeders = [threading.Thread(target=feed_all, args=(gws[n], a), kwargs={"stop_s": DURATION_S / 2, "end": False})
                   for n, a in athletes.items()]
        for t in feeders:
            t.start()
        for t in feeders:
            t.join()
        wait_for(lambda: all(g.published > 10 for g in gws.values()), what="first batches published")
        # the two units are spread over the two workers (each takes at most ceil(2 units / 2 workers))
        wait_for(lambda: sorted(len(w.worker.runs) for w in workers) == [1, 1], what="one unit per worker")
        nats_cluster.kill(1)  # mid-stream: the replicated stream keeps everything
        for n, a in athletes.items():
            feed_all(gws[n], a, start_s=DURATION_S / 2)
        for g in gws.values():
            assert g.close(timeout_s=TIMEOUT_S), f"gateway could not publish everything: {g.health()}"
        nats_cluster.restart(1)  # the node comes back (it catches up from the other replicas)
        for n, a in athletes.items():
            # generous: on a loaded machine the JetStream groups can take a while to settle after the kill
            wait_for(lambda: unit_steps(out, "s1", n).exists(), 2 * TIMEOUT_S, what=f"steps.csv of {n}")
            assert_unit_steps(out, "s1", n, a["ref"])
        # the units were spread over both workers (ceil(2 units / 2 workers) = 1 each)
        wait_for(lambda: sum(len(w.worker.completed) for w in workers) >= 2, 2 * TIMEOUT_S, what="units marked done")
    finally:
        for w in workers:
            w.close()
        if nats_cluster.procs[1] is None:
            nats_cluster.restart(1)
        nats_cluster.wait_ready()


def test_gateway_buffers_on_disk_during_an_outage_and_restarts_without_duplicates(nats_cluster, athletes, tmp_path):
    s = settings(nats_cluster, "b")
    ann = athletes["ann"]
    buf = tmp_path / "buf"
    dead = ClusterSettings(**{**s.__dict__, "urls": ["nats://127.0.0.1:1"]})  # network down: nothing listens
    gw = start_gateway(dead, buf, ann, session_id="s2")
    feed_all(gw, ann, stop_s=DURATION_S / 2, end=False)
    assert gw.close(timeout_s=2) is False  # nothing could be sent: all of it stays on disk
    kept = sorted(buf.glob("*.gwb"))
    assert len(kept) > 10 and gw.published == 0
    # a crash after a send whose PubAck was lost: the gateway sends that batch again
    dup = kept[3].read_bytes()

    out = tmp_path / "out"
    worker = WorkerThread(s, out, "wb")
    try:
        gw2 = start_gateway(s, buf, ann, session_id="ignored: the buffer keeps its session")
        assert gw2.session_id == "s2"
        wait_for(lambda: not list(buf.glob("*.gwb")), what="buffer drained")
        (buf / "999999999999.gwb").write_bytes(dup)  # re-sent batch, same Nats-Msg-Id
        feed_all(gw2, ann, start_s=DURATION_S / 2)
        assert gw2.close(timeout_s=TIMEOUT_S)
        sealed = gw2.buf.state["next_gseq"]
        wait_for(lambda: unit_steps(out, "s2", "ann").exists(), what="steps.csv")
        assert unit_steps(out, "s2", "ann").read_text() == ann["ref"]
        stored = asyncio.run(stream_count(s))
        assert stored == sealed  # every batch stored exactly once: the re-send was dropped by JetStream
        # gaitwatch cluster status: the unit, its gateway and sensors, done, the worker's heartbeat
        from pipeline.cmd_cluster import collect

        wait_for(lambda: asyncio.run(collect(s))["units"][0]["done"], what="unit marked done")
        st = asyncio.run(collect(s))
        assert [u["unit"] for u in st["units"]] == ["s2.ann"]
        assert st["units"][0]["sensors"] == ["ann-l", "ann-r"] and st["units"][0]["messages"] == sealed
        assert "wb" in st["workers"] and st["stream"]["replicas"] == 3
        argv = ["cluster", "status", "--stream", s.stream, "--subject-prefix", s.subject_prefix, "--kv-prefix", s.kv_prefix]
        for u in s.urls:
            argv += ["--nats", u]
        assert cli_main(argv) == 0
    finally:
        worker.close()


def n_influx_steps(server, db, athlete) -> int:
    return server.count(schema.MEASUREMENT_STEP, "ic_s", db=db, where=f"\"athlete\" = '{athlete}'")


def influx_step_times(server, db, athlete, start_wall_ns) -> dict[str, list[float]]:
    """Per sensor, the session times (s) of the step points InfluxDB holds for ``athlete``."""
    rows = server.rows(f'SELECT "ic_s" FROM "{schema.MEASUREMENT_STEP}" WHERE "athlete" = \'{athlete}\' '
                       f'GROUP BY "{schema.TAG_SENSOR}"', db=db)
    out: dict[str, list[float]] = {}
    for r in rows:
        out.setdefault(r[schema.TAG_SENSOR], []).append((r["time"] - start_wall_ns) * 1e-9)
    return {k: sorted(v) for k, v in out.items()}


def csv_steps(text: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        out.setdefault(row["sensor_id"], []).append(float(row["ic_s"]))
    return out


def test_killed_worker_units_resume_on_the_other_worker_from_the_checkpoint(nats_cluster, athletes, tmp_path,
                                                                         influx_server, influx_db):
    """SIGKILL the worker of one athlete mid-run (between two checkpoints): the other worker takes
    the athlete over within lease_ttl_s + poll_s and resumes from the dead worker's committed
    checkpoint (pre-roll, a Gap, records up to the checkpoint's horizon dropped), not from the
    first frame. InfluxDB then holds every step of the single-process run exactly once: the
    dead worker's steps up to its horizon unchanged, the new owner's after it (IC within 3 ms:
    a fresh clock fit). The other athlete is untouched (steps.csv byte-identical)."""
    ttl, poll, ckpt = 3.0, 0.25, 1.0
    s = settings(nats_cluster, "c", lease_ttl_s=ttl)
    out = tmp_path / "out"
    procs = {}
    env = dict(os.environ, PYTHONUNBUFFERED="1", GAITWATCH_INFLUX_USERNAME=influx_server.user,
               GAITWATCH_INFLUX_PASSWORD=influx_server.password)
    influx_args = ["--influx", "--influx-url", influx_server.url, "--influx-db", influx_db,
                   "--influx-spool-dir", str(tmp_path / "spool")]
    for wid in ("wk1", "wk2"):
        argv = [sys.executable, "-m", "pipeline.cli", "-v", "worker", "--worker-id", wid, "--out", str(out),
                "--stream", s.stream, "--subject-prefix", s.subject_prefix, "--kv-prefix", s.kv_prefix,
                "--lease-ttl-s", str(ttl), "--poll-s", str(poll), "--checkpoint-s", str(ckpt),
                "--resume-preroll-s", "5", *influx_args]  # (the steps need ~3 s; symmetry indices 10 s)
        for u in s.urls:
            argv += ["--nats", u]
        procs[wid] = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"{wid}.log", "wb"))
    gws = {n: start_gateway(s, tmp_path / f"buf-{n}", a, session_id="s3") for n, a in athletes.items()}
    ann_unit = unit_key("s3", "ann")
    try:
        speed = DURATION_S / 16.0  # 16 s of streaming
        # ann's end of stream is sent only after the kill: on a loaded machine the holder could
        # otherwise finish ann's whole unit before the kill below (seen once in CI), and the
        # test would no longer be about a takeover mid-run
        feeders = [threading.Thread(target=feed_all, args=(gws[n], a), kwargs={"speed": speed, "end": n != "ann"})
                   for n, a in athletes.items()]
        for t in feeders:
            t.start()
        # spread: one athlete per worker process (a worker with more than its share gives one back)
        wait_for(lambda: {asyncio.run(_wait_lease_holder(s, unit_key("s3", n))) for n in athletes} == {"wk1", "wk2"},
                 what="one athlete per worker")
        holder = asyncio.run(_wait_lease_holder(s, ann_unit))
        other = ({"wk1", "wk2"} - {holder}).pop()
        # once a checkpoint with steps past the pre-roll is committed, stop the holder between two
        # checkpoints (SIGSTOP, check that no commit is in flight) and kill it
        wait_for(lambda: n_influx_steps(influx_server, influx_db, "ann") > 5, what="first steps in InfluxDB")
        pid = procs[holder].pid
        for _ in range(200):
            os.kill(pid, signal.SIGSTOP)
            ck = asyncio.run(_checkpoint(s, ann_unit))
            c = (ck or {}).get("committed") or {}
            if ck and ck.get("pending") is None and c.get("resume_seq", 1) > 1:
                break
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.2)
        else:
            raise AssertionError(f"no committed checkpoint past the pre-roll: {ck}")
        procs[holder].send_signal(signal.SIGKILL)
        procs[holder].wait(10)
        killed_at = time.monotonic()
        horizon = c["horizon_s"]
        # takeover: the other worker fences the checkpoint key, then commits its own checkpoints
        try:
            wait_for(lambda: ((asyncio.run(_checkpoint(s, ann_unit)) or {}).get("owner") or "").startswith(other + "/"),
                     what="the other worker took ann over")
        except AssertionError as exc:  # say why (the workers' logs)
            logs = "\n".join(f"--- {w}\n" + (tmp_path / f"{w}.log").read_text()[-3000:] for w in procs)
            raise AssertionError(f"{exc}; checkpoint {asyncio.run(_checkpoint(s, ann_unit))}\n{logs}") from None
        took_s = time.monotonic() - killed_at
        wait_for(lambda: (((asyncio.run(_checkpoint(s, ann_unit)) or {}).get("committed") or {}).get("worker") == other),
                 what="the new owner's first checkpoint")
        resumed_s = time.monotonic() - killed_at
        print(f"takeover {took_s:.1f} s after the kill (stated: lease_ttl_s + poll_s = {ttl + poll:.2f} s), "
              f"output resumed after {resumed_s:.1f} s; horizon {horizon}, resumed at stream seq {c['resume_seq']}")
        # stated: lease_ttl_s + poll_s until the lease moves (the KV TTL is enforced on a ~1 s tick,
        # and this machine is shared: 5 s slack), then one checkpoint_s plus the pre-roll's replay
        assert took_s <= ttl + poll + 5.0
        assert resumed_s <= ttl + poll + ckpt + 10.0
        for t in feeders:
            t.join()
        assert not unit_steps(out, "s3", "ann").exists()  # nobody could finish ann before the kill
        for sensor in athletes["ann"]["sensors"]:
            gws["ann"].end(sensor.sensor_id)
        for g in gws.values():
            assert g.close(timeout_s=TIMEOUT_S)
        for n in athletes:
            wait_for(lambda: unit_steps(out, "s3", n).exists(), what=f"steps.csv of {n}")
        assert unit_steps(out, "s3", "bob").read_text() == athletes["bob"]["ref"]
        assert asyncio.run(_done_by(s, ann_unit)) == other
        resumed = json.loads(unit_steps(out, "s3", "ann").with_name("session.json").read_text())["extra"]["resumed"]
        assert resumed["from_stream_seq"] == c["resume_seq"] > 1 and resumed["previous_owner"] == holder
        ref = csv_steps(athletes["ann"]["ref"])
        # the new owner's own output (steps.csv of its run): only steps after the horizon, all of them
        mine = csv_steps(unit_steps(out, "s3", "ann").read_text())
        for sid, times in ref.items():
            after = [t for t in times if t > horizon[sid] + 1e-3]  # (steps.csv: 6 decimals)
            assert len(mine[sid]) == len(after) > 3 and np.abs(np.subtract(mine[sid], after)).max() < 3e-3, sid
        # InfluxDB: every step once (no duplicates, nothing lost)
        n_ref = {n: a["ref"].count("\n") - 1 for n, a in athletes.items()}
        for n in athletes:
            wait_for(lambda: n_influx_steps(influx_server, influx_db, n) >= n_ref[n], what=f"{n}'s steps in InfluxDB")
        start_ns = gws["ann"].buf.state["start_wall_ns"]
        got = influx_step_times(influx_server, influx_db, "ann", start_ns)
        for sid, times in ref.items():
            assert len(got[sid]) == len(times), (sid, len(got[sid]), len(times))
            d = np.abs(np.subtract(got[sid], times))
            before = np.array(times) <= horizon[sid] + 1e-3
            assert before.sum() > 3 and (~before).sum() > 3
            assert d[before].max() <= 1e-3  # written by the dead worker: the single-process values (ms precision)
            assert d[~before].max() < 4e-3  # written by the new owner after the takeover
        assert n_influx_steps(influx_server, influx_db, "bob") == n_ref["bob"]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


async def _checkpoint(s, unit) -> dict | None:
    import nats

    from pipeline.cluster import loads

    nc = await nats.connect(servers=s.urls)
    try:
        kv = await nc.jetstream().key_value(s.bucket("checkpoints"))
        try:
            return loads((await kv.get(unit)).value)
        except Exception:
            return None
    finally:
        await nc.close()


async def _wait_lease_holder(s, unit) -> str:
    import nats

    from pipeline.cluster import loads

    nc = await nats.connect(servers=s.urls)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                kv = await nc.jetstream().key_value(s.bucket("leases"))
                e = await kv.get(unit)
                return loads(e.value)["worker"]
            except Exception:
                await asyncio.sleep(0.2)
        raise AssertionError(f"no worker took {unit}")
    finally:
        await nc.close()


async def _done_by(s, unit) -> str:
    import nats

    from pipeline.cluster import loads

    nc = await nats.connect(servers=s.urls)
    try:
        kv = await nc.jetstream().key_value(s.bucket("units"))
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            spec = loads((await kv.get(unit)).value)
            if spec.get("done"):
                return spec["done_by"]
            await asyncio.sleep(0.2)
        raise AssertionError(f"{unit} not marked done")
    finally:
        await nc.close()


def test_gateway_and_cluster_commands(nats_cluster, athletes, tmp_path, capsys):
    """``gaitwatch gateway --from-capture`` publishes; a worker writes the single-process steps;
    ``gaitwatch cluster status`` names the gateway, the athlete and its worker."""
    s = settings(nats_cluster, "d")
    bob = athletes["bob"]
    common = ["--stream", s.stream, "--subject-prefix", s.subject_prefix, "--kv-prefix", s.kv_prefix]
    for u in s.urls:
        common += ["--nats", u]
    out = tmp_path / "out"
    worker = WorkerThread(s, out, "wd")
    try:
        argv = ["gateway", "--placement", "foot", "--side", "left", "--side", "right", "--athlete", "bob",
                "--buffer", str(tmp_path / "buf"), "--session-id", "s4", "--gateway-id", "track-pi",
                "--publish-window", "4", *common]
        for c in bob["caps"]:
            argv += ["--from-capture", str(c)]
        assert cli_main(argv) == 0
        assert "0 left in" in capsys.readouterr().out
        wait_for(lambda: unit_steps(out, "s4", "bob").exists(), what="steps.csv")
        assert unit_steps(out, "s4", "bob").read_text() == bob["ref"]
        wait_for(lambda: "done" in (cli_main(["cluster", "status", *common]) == 0 and capsys.readouterr().out),
                 what="status shows the unit done")
        assert cli_main(["cluster", "status", *common]) == 0
        text = capsys.readouterr().out
        assert "gateways: track-pi" in text and "s4.bob" in text and "bob-l,bob-r" in text
    finally:
        worker.close()


def test_a_missing_batch_becomes_a_gap_and_the_detectors_restart(nats_cluster, athletes, tmp_path):
    """A batch gone from the stream (e.g. trimmed by retention) is a lost-port marker: the sensor's
    records get a new segment after a Gap instead of samples glued across the hole."""
    s = settings(nats_cluster, "e")
    ann = athletes["ann"]
    gw = start_gateway(s, tmp_path / "buf", ann, session_id="s5")
    feed_all(gw, ann)
    assert gw.close(timeout_s=TIMEOUT_S)

    async def drop_one() -> int:
        import nats

        nc = await nats.connect(servers=s.urls)
        try:
            js = nc.jetstream()
            seqs = []
            for seq in range(1, (await js.stream_info(s.stream)).state.last_seq + 1):
                m = await js.get_msg(s.stream, seq)
                if m.headers and m.headers.get("Gw-Sensor") == "ann-l":
                    seqs.append(seq)
            victim = seqs[len(seqs) // 2]  # mid-run
            await js.delete_msg(s.stream, victim)
            return victim
        finally:
            await nc.close()

    asyncio.run(drop_one())
    out = tmp_path / "out"
    worker = WorkerThread(s, out, "we")
    try:
        wait_for(lambda: unit_steps(out, "s5", "ann").exists(), what="steps.csv")
        rows = [r.split(",") for r in unit_steps(out, "s5", "ann").read_text().splitlines()[1:]]
        ref = [r.split(",") for r in ann["ref"].splitlines()[1:]]
        seg = {sid: {r[4] for r in rows if r[0] == sid} for sid in ("ann-l", "ann-r")}
        assert seg == {"ann-l": {"0", "1"}, "ann-r": {"0"}}
        n_left, n_left_ref = (sum(r[0] == "ann-l" for r in x) for x in (rows, ref))
        assert n_left_ref // 2 < n_left < n_left_ref  # the steps around the hole are lost, not invented
    finally:
        worker.close()


def test_serial_gateway_on_a_pty_gives_the_steps_of_its_own_capture(nats_cluster, tmp_path):
    """``gaitwatch gateway --serial``: an emulated sensor on a real pty; the worker's steps equal
    ``live --from-capture`` of the bytes the gateway read (kept with ``--capture``)."""
    from firmware_bridge.serial_emulator import PtyPort, stream
    from test_serial_live import wait_until_opened

    s = settings(nats_cluster, "f")
    p = SimParams(placement="foot", side="right", sensor_id="rf", athlete="cat", fs_hz=FS, duration_s=6.0, seed=5)
    sig, n = simulator_signal(p)
    out = tmp_path / "out"
    worker = WorkerThread(s, out, "wf")
    try:
        with PtyPort(link_path=tmp_path / "ttyGW") as port:
            argv = [sys.executable, "-m", "pipeline.cli", "gateway", "--serial", port.path, "--placement", "foot",
                    "--side", "right", "--sensor-id", "rf", "--athlete", "cat", "--duration-s", "9",
                    "--buffer", str(tmp_path / "buf"), "--session-id", "s6", "--capture", str(tmp_path / "cap"),
                    "--stream", s.stream, "--subject-prefix", s.subject_prefix, "--kv-prefix", s.kv_prefix]
            for u in s.urls:
                argv += ["--nats", u]
            gw = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_until_opened(gw, port.slave_name)
            stream(port, device_frames(DeviceParams(fs_hz=FS), sig, n_samples=n))
            gw_out, gw_err = gw.communicate(timeout=TIMEOUT_S)
        assert gw.returncode == 0, gw_err
        assert "0 left in" in gw_out
        ref = tmp_path / "ref"
        assert cli_main(["live", "--from-capture", str(tmp_path / "cap" / "rf.gwcap"), "--placement", "foot",
                         "--side", "right", "--athlete", "cat", "--out", str(ref)]) == 0
        want = (ref / "steps.csv").read_text()
        assert want.count("\n") > 5
        wait_for(lambda: unit_steps(out, "s6", "cat").exists(), what="steps.csv")
        assert unit_steps(out, "s6", "cat").read_text() == want
    finally:
        worker.close()


def test_a_backlog_worked_off_in_one_burst_is_released_without_a_next_frame(nats_cluster, athletes, tmp_path):
    """A worker that starts after the gateway published an athlete's frames (no end yet: the
    sensor went quiet, or the worker came late) works the backlog off in well under one
    checkpoint interval. Its records must still reach the sinks and the checkpoint then, not
    wait for a next frame that may never come. (They waited: the checkpoint was only taken
    when a message arrived; a fresh clone's killed-worker test stalled on it.)"""
    s = settings(nats_cluster, "h")
    bob = athletes["bob"]
    gw = start_gateway(s, tmp_path / "buf", bob, session_id="s6")
    feed_all(gw, bob, end=False)  # everything but the end of stream
    time.sleep(0.5)  # (the last partial batch is sealed after batch_max_s)
    wait_for(lambda: not gw.buf.pending(), what="the backlog published")
    unit = unit_key("s6", "bob")
    last_ic = {sid: max(t) for sid, t in csv_steps(bob["ref"]).items()}
    worker = WorkerThread(s, tmp_path / "out", "wh")
    try:
        def released() -> bool:
            h = (((asyncio.run(_checkpoint(s, unit)) or {}).get("committed") or {}).get("horizon_s") or {})
            # the detectors keep the last step or two until the next samples or the end: 2 s of slack
            return all(h.get(sid, -1.0) >= t - 2.0 for sid, t in last_ic.items())

        wait_for(released, timeout_s=20.0, what="the backlog's steps released and checkpointed")
    finally:
        for sensor in bob["sensors"]:
            gw.end(sensor.sensor_id)
        assert gw.close(timeout_s=TIMEOUT_S)
        worker.close()
