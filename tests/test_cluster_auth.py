"""NATS with TLS and user/password (issue 10): a gateway and a worker configured through the
``[cluster]`` TOML section (``tls_ca``, ``user``) and the environment (``GAITWATCH_NATS_PASSWORD``)
reach a JetStream server that requires both; without the password nothing gets in and the
gateway keeps its batches on disk.

One ``nats-server`` (JetStream, R1) with a certificate signed by a throw-away CA made with the
``openssl`` command (both installed by .ci/run); skipped, saying so, when either is missing.

Decentralised JWT auth (``creds``): a second ``nats-server`` in operator mode (operator, system
and application account JWTs preloaded in a MEMORY resolver, made with the ``nkeys`` package as
``nsc`` would, tests/nats_fixtures.py); a gateway and a worker given a user's ``.creds`` file
(TOML ``creds`` / ``GAITWATCH_NATS_CREDS``) get in and the steps arrive; a user whose JWT is
signed by a key the account does not know is refused and the gateway keeps its batches.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import nats  # noqa: E402  (nats-py is a product dependency: missing, the tests must fail, not skip)

from nats_fixtures import NATS_SERVER, OperatorAuth, free_ports
from test_cluster_nats import DURATION_S, TIMEOUT_S, WorkerThread, feed_all, make_capture, start_gateway, unit_steps, wait_for

from firmware_bridge.gateway import Gateway
from pipeline.cli import main as cli_main
from pipeline.cluster import ClusterSettings
from pipeline.config import load_config
from pipeline.records import SensorInfo

OPENSSL = shutil.which("openssl")


def _ssl(*args, cwd):
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True)


def one_sensor_athlete(tmp_path, name: str, side: str, seed: int) -> dict:
    """One athlete with one foot sensor ``<name>-<l|r>``: its serial capture, in feed_all's form."""
    sid = f"{name}-{side[0]}"
    cap = make_capture(tmp_path / f"{sid}.gwcap", sensor_id=sid, side=side, athlete=name, seed=seed)
    return {"sensors": [SensorInfo(sensor_id=sid, placement="foot", side=side, athlete=name)], "caps": [cap]}


def assert_cluster_equals_live(tmp_path, s_gw, s_wk, athlete: dict, *, session_id: str, worker_id: str,
                               toml) -> None:
    """The athlete sent through a gateway (``s_gw``) and a worker (``s_wk``) gives the steps.csv of
    ``live --from-capture`` of the same capture; ``cluster status`` works with the config file."""
    info, cap = athlete["sensors"][0], athlete["caps"][0]
    ref = tmp_path / "ref"
    assert cli_main(["live", "--from-capture", str(cap), "--placement", "foot", "--side", info.side,
                     "--athlete", info.athlete, "--out", str(ref)]) == 0
    out = tmp_path / "out"
    worker = WorkerThread(s_wk, out, worker_id)
    try:
        gw = start_gateway(s_gw, tmp_path / "buf", athlete, session_id=session_id)
        feed_all(gw, athlete)
        assert gw.close(timeout_s=TIMEOUT_S), gw.health()
        wait_for(lambda: unit_steps(out, session_id, info.athlete).exists(), what="steps.csv")
        assert unit_steps(out, session_id, info.athlete).read_text() == (ref / "steps.csv").read_text()
        assert cli_main(["cluster", "status", "--config", str(toml)]) == 0
    finally:
        worker.close()


async def wait_until_serving(connect_kw: dict) -> None:
    """Connect with ``connect_kw`` until JetStream answers (30 s)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            nc = await nats.connect(**{**connect_kw, "max_reconnect_attempts": 1})
            await nc.jetstream().account_info()
            await nc.close()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


@pytest.fixture(scope="module")
def secure_server(tmp_path_factory):
    if NATS_SERVER is None or OPENSSL is None:
        pytest.skip("needs the nats-server and openssl commands (apt-get install nats-server openssl; .ci/run does)")
    d = tmp_path_factory.mktemp("nats-tls")
    _ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=gaitwatch-test-ca", cwd=d)
    _ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    port = free_ports(1)[0]
    conf = d / "server.conf"
    conf.write_text(
        f'listen: "127.0.0.1:{port}"\n'
        f'jetstream {{\n  store_dir: "{d / "js"}"\n  max_memory_store: 64MB\n  max_file_store: 256MB\n}}\n'
        f'authorization {{\n  user: "gw"\n  password: "s3cret"\n}}\n'
        f'tls {{\n  cert_file: "{d / "server.pem"}"\n  key_file: "{d / "server.key"}"\n}}\n')
    proc = subprocess.Popen([NATS_SERVER, "-c", str(conf)], stdout=(d / "log").open("wb"), stderr=subprocess.STDOUT)
    url = f"tls://127.0.0.1:{port}"
    try:
        asyncio.run(wait_until_serving(
            ClusterSettings(urls=[url], user="gw", password="s3cret", tls_ca=str(d / "ca.pem")).connect_kw()))
        yield {"url": url, "ca": d / "ca.pem", "dir": d}
    finally:
        proc.terminate()
        proc.wait(10)


def test_gateway_and_worker_through_tls_and_password_from_config_and_env(secure_server, tmp_path, monkeypatch):
    toml = tmp_path / "gw.toml"
    toml.write_text(f'[cluster]\nurls = ["{secure_server["url"]}"]\nreplicas = 1\nuser = "gw"\n'
                    f'tls_ca = "{secure_server["ca"]}"\nstream = "SEC"\nsubject_prefix = "sec.f"\nkv_prefix = "sec"\n'
                    f'poll_s = 0.25\nbatch_max_s = 0.05\n')
    monkeypatch.setenv("GAITWATCH_NATS_PASSWORD", "s3cret")  # the secret from the environment, not the file
    config = load_config(toml)
    s = ClusterSettings.from_config(config)
    assert s.password == "s3cret" and s.tls_ca and "tls" in s.connect_kw()

    # (cluster status reads the same config, and the password from the environment)
    assert_cluster_equals_live(tmp_path, s, s, one_sensor_athlete(tmp_path, "dan", "right", 7),
                               session_id="sec1", worker_id="wsec", toml=toml)


def test_without_the_password_nothing_gets_in_and_the_gateway_keeps_its_batches(secure_server, tmp_path):
    s = ClusterSettings(urls=[secure_server["url"]], user="gw", password="wrong", tls_ca=str(secure_server["ca"]),
                        replicas=1, stream="SEC2", subject_prefix="sec2.f", kv_prefix="sec2", batch_max_s=0.05)
    athlete = one_sensor_athlete(tmp_path, "eve", "left", 8)
    gw = start_gateway(s, tmp_path / "buf", athlete, session_id="sec2")
    feed_all(gw, athlete, stop_s=DURATION_S / 4)
    assert gw.close(timeout_s=3) is False
    h = gw.health()
    assert h["published"] == 0 and h["pending"] > 0
    # (nats-py reports it as "no servers available"; the server says why)
    assert "authentication error" in (secure_server["dir"] / "log").read_text().lower()


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory):
    """nats-server in operator (JWT) mode with JetStream; yields its URL and the OperatorAuth."""
    import nkeys  # noqa: F401  (nats-py's .creds support needs it: missing, the test must fail, not skip)

    if NATS_SERVER is None:
        pytest.skip("needs the nats-server command (apt-get install nats-server; .ci/run does)")
    d = tmp_path_factory.mktemp("nats-jwt")
    auth = OperatorAuth()
    port = free_ports(1)[0]
    conf = d / "server.conf"
    conf.write_text(f'listen: "127.0.0.1:{port}"\n'
                    f'jetstream {{\n  store_dir: "{d / "js"}"\n  max_memory_store: 64MB\n  max_file_store: 256MB\n}}\n'
                    + auth.server_conf(d))
    proc = subprocess.Popen([NATS_SERVER, "-c", str(conf)], stdout=(d / "log").open("wb"), stderr=subprocess.STDOUT)
    url = f"nats://127.0.0.1:{port}"
    try:
        probe = auth.user_creds(d, "probe")
        asyncio.run(wait_until_serving({"servers": [url], "user_credentials": str(probe)}))
        yield {"url": url, "auth": auth, "dir": d}
    finally:
        proc.terminate()
        proc.wait(10)


def test_gateway_and_worker_with_creds_files_against_an_operator_mode_server(jwt_server, tmp_path, monkeypatch):
    auth = jwt_server["auth"]
    gw_creds = auth.user_creds(tmp_path, "gateway-track-3")
    wk_creds = auth.user_creds(tmp_path, "worker-1")
    toml = tmp_path / "gw.toml"
    toml.write_text(f'[cluster]\nurls = ["{jwt_server["url"]}"]\nreplicas = 1\ncreds = "{gw_creds}"\n'
                    f'stream = "JWT"\nsubject_prefix = "jwt.f"\nkv_prefix = "jwt"\npoll_s = 0.25\nbatch_max_s = 0.05\n')
    s_gw = ClusterSettings.from_config(load_config(toml))
    assert s_gw.connect_kw()["user_credentials"] == str(gw_creds)
    monkeypatch.setenv("GAITWATCH_NATS_CREDS", str(wk_creds))  # the environment wins over the file
    s_wk = ClusterSettings.from_config(load_config(toml))
    assert s_wk.creds == str(wk_creds)
    monkeypatch.delenv("GAITWATCH_NATS_CREDS")

    assert_cluster_equals_live(tmp_path, s_gw, s_wk, one_sensor_athlete(tmp_path, "fay", "right", 9),
                               session_id="jwt1", worker_id="wjwt", toml=toml)
    # the users connected as themselves (the server logs nothing else; ask it who we are)
    async def whoami(creds):
        nc = await nats.connect(servers=[jwt_server["url"]], user_credentials=str(creds), max_reconnect_attempts=1)
        try:
            msg = await nc.request("$JS.API.INFO", b"", timeout=5)  # answered only inside the APP account
            return msg.data
        finally:
            await nc.close()

    assert b"io.nats.jetstream.api.v1.account_info_response" in asyncio.run(whoami(gw_creds))


def test_creds_signed_by_an_unknown_key_are_refused_and_the_gateway_keeps_its_batches(jwt_server, tmp_path):
    import nkeys

    from nats_fixtures import nkey_pair

    rogue_seed, _ = nkey_pair(nkeys.PREFIX_BYTE_ACCOUNT)  # not the account's key: the server must refuse
    creds = jwt_server["auth"].user_creds(tmp_path, "mallory", account_seed=rogue_seed)
    s = ClusterSettings(urls=[jwt_server["url"]], creds=str(creds), replicas=1, stream="JWT2",
                        subject_prefix="jwt2.f", kv_prefix="jwt2", batch_max_s=0.05)
    athlete = one_sensor_athlete(tmp_path, "gus", "left", 11)
    gw = start_gateway(s, tmp_path / "buf", athlete, session_id="jwt2")
    feed_all(gw, athlete, stop_s=DURATION_S / 4)
    assert gw.close(timeout_s=3) is False
    h = gw.health()
    assert h["published"] == 0 and h["pending"] > 0
    assert "authentication error" in (jwt_server["dir"] / "log").read_text().lower()  # (the server says why)
