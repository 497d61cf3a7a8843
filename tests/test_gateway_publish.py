"""Pipelined gateway publishing on a real 3-node NATS JetStream cluster (issue 10).

The gateway keeps up to ``publish_window`` publishes in flight, at most one per sensor subject.
Through the loss of the stream's leader node mid-publishing (publishes in flight time out, a new
leader takes the next ones, the node comes back), every batch must be stored exactly once and
each sensor's batches in the order they were sealed (Gw-Seq 0, 1, 2, ... in stream order, each
with its own payload).

What the real-cluster test does not show: the hazard the one-per-subject rule exists for (a
batch lost with the old leader while the sensor's next batch is stored by the new one, then
re-sent after it) did not occur in two runs of it with the rule switched off either. That case
is made on demand by a TEST DOUBLE of ``js.publish`` (:class:`FlakyJetStream`: a real server
does not fail one chosen publish while taking the next), against which the scheduler with the
rule switched off stores batches out of order and this test fails.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import nats  # noqa: F401  (a product dependency: missing, the test must fail, not skip)

from nats_fixtures import nats_cluster  # noqa: F401  (fixture)
from test_cluster_nats import settings, wait_for

from firmware_bridge.gateway import Gateway
from pipeline.cluster import ClusterSettings, unpack_records
from pipeline.records import SensorInfo


async def stored(s) -> list[tuple[str, int, bytes]]:
    import nats

    nc = await nats.connect(servers=s.urls)
    try:
        js = nc.jetstream(timeout=10)
        out = []
        for seq in range(1, (await js.stream_info(s.stream)).state.last_seq + 1):
            m = await js.get_msg(s.stream, seq)
            out.append((m.headers["Gw-Sensor"], int(m.headers["Gw-Seq"]), m.data))
        return out
    finally:
        await nc.close()


async def stream_leader(s) -> str:
    import nats

    nc = await nats.connect(servers=s.urls)
    try:
        return (await nc.jetstream(timeout=10).stream_info(s.stream)).cluster.leader
    finally:
        await nc.close()


def test_pipelined_publishing_keeps_each_sensors_order_and_loses_nothing_through_an_outage(nats_cluster, tmp_path):
    s = settings(nats_cluster, "p", publish_window=16)
    s.batch_max_bytes = 1  # every chunk is a batch of its own
    sensors = [SensorInfo(sensor_id=f"s{k}", placement="foot", side=("left", "right")[k % 2], athlete=f"a{k // 2}")
               for k in range(12)]
    gw = Gateway(s, buffer_dir=tmp_path / "buf", sensors=sensors, session_id="p1")
    n_per_sensor = 400
    errors: list[str] = []

    def feed():
        for i in range(n_per_sensor):
            for x in sensors:
                gw.chunk(x.sensor_id, i * 1_000_000, f"{x.sensor_id}:{i}".encode())
            time.sleep(0.04)  # ~16 s of batches, 300/s
            if gw.last_error and not errors:
                errors.append(gw.last_error)

    t = threading.Thread(target=feed)
    t.start()
    try:
        wait_for(lambda: gw.published > 100, what="publishing under way")
        assert t.is_alive()
        # the stream's leader dies: what it had not replicated is lost, a new leader is elected within
        # seconds and takes later publishes while earlier ones (in flight to the old one) time out
        leader = int(asyncio.run(stream_leader(s))[1:])
        nats_cluster.kill(leader)
        time.sleep(8.0)  # longer than a publish's 5 s timeout
        nats_cluster.restart(leader)
        t.join()
        for x in sensors:
            gw.end(x.sensor_id)
        assert gw.close(timeout_s=180), gw.health()
    finally:
        t.join()
        for i in range(3):
            if nats_cluster.procs[i] is None:
                nats_cluster.restart(i)
        nats_cluster.wait_ready()
    assert errors or gw.last_error, "the outage must have hit publishes in flight"
    msgs = asyncio.run(stored(s))
    assert len(msgs) == gw.buf.state["next_gseq"] == len(sensors) * (n_per_sensor + 1)  # each batch once
    per: dict[str, list[tuple[int, bytes]]] = {}
    for sid, seq, body in msgs:
        per.setdefault(sid, []).append((seq, body))
    for x in sensors:
        got = per[x.sensor_id]
        assert [q for q, _ in got] == list(range(n_per_sensor + 1)), x.sensor_id  # stream order = sealing order
        payloads = [d for _, b in got[:-1] for _, d in unpack_records(b)]
        assert payloads == [f"{x.sensor_id}:{i}".encode() for i in range(n_per_sensor)]


class FlakyJetStream:
    """TEST DOUBLE of ``js.publish`` for the one failure a real cluster does not produce on demand:
    a publish that fails while later ones succeed (a batch lost with an old stream leader while
    the next ones reach the new leader). Stores by Nats-Msg-Id like JetStream's duplicate window,
    answers after random delays (acks come back out of order across subjects) and records how
    many publishes of each subject were in flight at once."""

    def __init__(self, fail_ids: set[str], seed: int = 1):
        import random

        self.rng = random.Random(seed)
        self.fail_ids = set(fail_ids)
        self.stored: list[tuple[str, str]] = []  # (subject, msg id) in storing order
        self.ids: set[str] = set()
        self.inflight: dict[str, int] = {}
        self.max_inflight_subject = 0
        self.max_inflight = 0

    async def publish(self, subject, body, headers=None, timeout=None):
        mid = headers["Nats-Msg-Id"]
        self.inflight[subject] = self.inflight.get(subject, 0) + 1
        self.max_inflight_subject = max(self.max_inflight_subject, self.inflight[subject])
        self.max_inflight = max(self.max_inflight, sum(self.inflight.values()))
        try:
            await asyncio.sleep(self.rng.uniform(0, 0.004))
            if mid in self.fail_ids:
                self.fail_ids.discard(mid)  # lost this time; the re-send goes through
                raise TimeoutError(f"no PubAck for {mid}")
            if mid not in self.ids:
                self.ids.add(mid)
                self.stored.append((subject, mid))
        finally:
            self.inflight[subject] -= 1


def test_publish_window_never_sends_a_sensors_next_batch_before_the_previous_ack(tmp_path):
    s = ClusterSettings(urls=["nats://unused"], publish_window=8, batch_max_bytes=1)
    sensors = [SensorInfo(sensor_id=f"s{k}", placement="foot", side="left", athlete=f"a{k}") for k in range(5)]
    gw = Gateway(s, buffer_dir=tmp_path / "buf", sensors=sensors, session_id="f1", connect=False)
    for i in range(40):
        for x in sensors:
            gw.chunk(x.sensor_id, i, b"x")
    files = gw.buf.pending()
    fail = {gw._message(files[k])[2]["Nats-Msg-Id"] for k in (7, 61, 62, 150)}
    js = FlakyJetStream(fail)
    rounds = 0
    while gw.buf.pending():  # as the publisher thread: a failure -> start again from the files left
        rounds += 1
        try:
            asyncio.run(gw._publish_window(js, gw.buf.pending()))
        except TimeoutError:
            pass
    assert rounds > 1 and not js.fail_ids  # the failures happened, and were re-sent
    assert js.max_inflight_subject == 1 and js.max_inflight == 5  # one per subject, all 5 sensors at once
    assert len(js.stored) == 200 == gw.published  # each batch stored once, every file deleted after its ack
    per: dict[str, list[int]] = {}
    for subject, mid in js.stored:
        per.setdefault(subject, []).append(int(mid.rsplit(".", 1)[1]))
    assert all(v == list(range(40)) for v in per.values())  # each sensor in sealing order


def test_publish_window_from_the_toml_config_and_checked(tmp_path):
    """``[cluster].publish_window`` is a documented TOML setting (defaults.toml), validated at start."""
    from pipeline.cluster import ClusterSettings
    from pipeline.config import load_config
    from pipeline.errors import ConfigError

    assert ClusterSettings.from_config(load_config(None), urls=["nats://127.0.0.1:1"]).publish_window == 64
    cfg = tmp_path / "c.toml"
    cfg.write_text('[cluster]\nurls = ["nats://127.0.0.1:1"]\npublish_window = 8\n')
    assert ClusterSettings.from_config(load_config(cfg)).publish_window == 8
    cfg.write_text('[cluster]\nurls = ["nats://127.0.0.1:1"]\npublish_window = 0\n')
    with pytest.raises(ConfigError, match="publish_window must be >= 1"):
        ClusterSettings.from_config(load_config(cfg))
