"""A real 3-node NATS JetStream cluster on loopback ports, for the cluster tests (issue 10).

``NatsCluster(tmp_dir).start()`` writes one config per node (client port, cluster port,
JetStream store dir under ``tmp_dir``), starts three ``nats-server`` processes (Debian
package ``nats-server``, installed by ``.ci/run``) and waits until JetStream has a meta
leader. ``kill(i)`` SIGKILLs node ``i``; ``restart(i)`` starts it again on the same ports
and store. ``stop()`` ends every node this fixture started (by pid). Tests skip when the
binary is missing.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

NATS_SERVER = shutil.which("nats-server") or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


async def _quiet(exc) -> None:  # nats-py logs every refused connect otherwise
    pass


class NatsCluster:
    def __init__(self, base_dir: Path, *, nodes: int = 3, name: str = "gwtest"):
        if NATS_SERVER is None:
            pytest.skip("nats-server not installed (apt-get install nats-server)")
        self.base = Path(base_dir)
        self.base.mkdir(parents=True, exist_ok=True)
        self.n = nodes
        self.name = name
        ports = free_ports(2 * nodes)
        self.client_ports = ports[:nodes]
        self.cluster_ports = ports[nodes:]
        self.procs: list[subprocess.Popen | None] = [None] * nodes

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p}" for p in self.client_ports]

    def _conf(self, i: int) -> Path:
        routes = ",".join(f"nats-route://127.0.0.1:{p}" for k, p in enumerate(self.cluster_ports) if k != i)
        store = self.base / f"n{i}"
        store.mkdir(parents=True, exist_ok=True)
        text = (
            f'server_name: "n{i}"\nlisten: "127.0.0.1:{self.client_ports[i]}"\n'
            f'jetstream {{\n  store_dir: "{store}"\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}}\n'
            f'cluster {{\n  name: "{self.name}"\n  listen: "127.0.0.1:{self.cluster_ports[i]}"\n  routes: [{routes}]\n}}\n'
        )
        path = self.base / f"n{i}.conf"
        path.write_text(text)
        return path

    def _spawn(self, i: int) -> None:
        log = (self.base / f"n{i}.log").open("ab")
        self.procs[i] = subprocess.Popen([NATS_SERVER, "-c", str(self._conf(i))], stdout=log, stderr=subprocess.STDOUT)

    def start(self, *, timeout_s: float = 60.0) -> "NatsCluster":
        for i in range(self.n):
            self._spawn(i)
        self.wait_ready(timeout_s=timeout_s)
        return self

    def wait_ready(self, *, timeout_s: float = 60.0) -> None:
        """Until a client can create and delete a replicated stream (meta leader elected)."""
        asyncio.run(self._wait_ready(timeout_s))

    async def _wait_ready(self, timeout_s: float) -> None:
        import nats
        from nats.js.api import StreamConfig

        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            try:
                nc = await nats.connect(servers=self.urls, connect_timeout=2, max_reconnect_attempts=1,
                                        error_cb=_quiet, allow_reconnect=False)
                try:
                    js = nc.jetstream(timeout=5)
                    await js.add_stream(StreamConfig(name="READY_PROBE", subjects=["ready.probe"], num_replicas=self.n))
                    await js.delete_stream("READY_PROBE")
                    return
                finally:
                    await nc.close()
            except Exception as exc:  # not up yet / no meta leader yet
                last = exc
                await asyncio.sleep(0.5)
        raise RuntimeError(f"NATS cluster not ready after {timeout_s} s: {last!r}; logs in {self.base}")

    def kill(self, i: int) -> None:
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
        self.procs[i] = None

    def restart(self, i: int) -> None:
        self.kill(i)
        self._spawn(i)

    def stop(self) -> None:
        for i, p in enumerate(self.procs):
            if p is not None and p.poll() is None:
                p.terminate()
        for i, p in enumerate(self.procs):
            if p is not None:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
            self.procs[i] = None


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory):
    c = NatsCluster(tmp_path_factory.mktemp("nats"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


# -- decentralised auth (operator / account / user JWTs) for the `.creds` test -------------------------
# What `nsc` would make, made here with the `nkeys` package (a dependency of nats-py's `.creds`
# support) so the real nats-server can run in operator mode: an operator, a system account, an
# application account with JetStream enabled, and users whose `.creds` files hold their JWT and
# seed. JWT v2 as nats-io/jwt writes it: header {"typ": "JWT", "alg": "ed25519-nkey"}, claims
# {jti, iat, iss, name, sub, nats: {..., type, version: 2}}, each part base64url without padding,
# signed (ed25519) by the issuer's seed over "<header>.<claims>".

def nkey_pair(prefix: int):
    """A fresh key pair: (seed bytes, public key str) for an operator/account/user prefix byte."""
    import os

    import nkeys

    seed = nkeys.encode_seed(os.urandom(32), prefix)
    return seed, nkeys.from_seed(bytearray(seed)).public_key.decode()


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def encode_jwt(claims_nats: dict, *, name: str, subject: str, issuer_seed: bytes) -> str:
    import base64
    import hashlib
    import json

    import nkeys

    kp = nkeys.from_seed(bytearray(issuer_seed))
    claims = {"iat": int(time.time()), "iss": kp.public_key.decode(), "name": name, "sub": subject,
              "nats": {**claims_nats, "version": 2}}
    claims["jti"] = base64.b32encode(hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()).decode().rstrip("=")
    head = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(kp.sign(f'{head}.{body}'.encode()))}"


UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True, "conn": -1,
             "leaf": -1}


def creds_text(user_jwt: str, user_seed: bytes) -> str:
    return ("-----BEGIN NATS USER JWT-----\n" + user_jwt + "\n------END NATS USER JWT------\n\n"
            "************************* IMPORTANT *************************\n"
            "NKEY Seed printed below can be used to sign and prove identity.\n"
            "NKEYs are sensitive and should be treated as secrets.\n\n"
            "-----BEGIN USER NKEY SEED-----\n" + user_seed.decode() + "\n------END USER NKEY SEED------\n\n"
            "*************************************************************\n")


class OperatorAuth:
    """Operator + SYS account + account ``APP`` (JetStream on) and ``user_creds(dir, name)`` files."""

    def __init__(self):
        import nkeys

        self.op_seed, self.op_pub = nkey_pair(nkeys.PREFIX_BYTE_OPERATOR)
        self.sys_seed, self.sys_pub = nkey_pair(nkeys.PREFIX_BYTE_ACCOUNT)
        self.acc_seed, self.acc_pub = nkey_pair(nkeys.PREFIX_BYTE_ACCOUNT)
        self.op_jwt = encode_jwt({"type": "operator", "system_account": self.sys_pub}, name="gw-op",
                                 subject=self.op_pub, issuer_seed=self.op_seed)
        self.sys_jwt = encode_jwt({"type": "account", "limits": UNLIMITED}, name="SYS", subject=self.sys_pub,
                                  issuer_seed=self.op_seed)
        js = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}
        self.acc_jwt = encode_jwt({"type": "account", "limits": {**UNLIMITED, **js}}, name="APP", subject=self.acc_pub,
                                  issuer_seed=self.op_seed)

    def server_conf(self, d: Path) -> str:
        """nats-server config lines: operator mode, accounts preloaded in a MEMORY resolver."""
        op = d / "operator.jwt"
        op.write_text(self.op_jwt)
        return (f'operator: "{op}"\nsystem_account: "{self.sys_pub}"\nresolver: MEMORY\n'
                f'resolver_preload: {{\n  {self.sys_pub}: "{self.sys_jwt}"\n  {self.acc_pub}: "{self.acc_jwt}"\n}}\n')

    def user_creds(self, d: Path, name: str, *, account_seed: bytes | None = None) -> Path:
        """A ``.creds`` file of a new user of account APP (``account_seed``: signed by another key)."""
        import nkeys

        seed, pub = nkey_pair(nkeys.PREFIX_BYTE_USER)
        jwt = encode_jwt({"type": "user", "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                          **({"issuer_account": self.acc_pub} if account_seed is not None else {})},
                         name=name, subject=pub, issuer_seed=account_seed or self.acc_seed)
        path = d / f"{name}.creds"
        path.write_text(creds_text(jwt, seed))
        path.chmod(0o600)
        return path
