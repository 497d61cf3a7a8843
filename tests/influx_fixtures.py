"""A real InfluxDB server for the tests, started by hand (no system service).

``influxd`` (Debian's ``influxdb`` package, 1.6.7; installed by ``.ci/run``) is started on a
free loopback port with temporary meta/data/wal directories, usage reporting off, HTTP auth
on (so wrong credentials can be tested) and an admin user created through the documented
"first user" path. It is stopped by its PID.

Also here: :class:`V2CompatFront`, a small loopback HTTP front that lets the real
``influxdb-client`` (v2 API) write into the 1.6.7 server. 1.6.7 predates InfluxDB 1.8's
``/api/v2/write`` compatibility endpoint, and no 1.8+/2.x/3.x server is offered by the
package registries here, so the front does what 1.8's compatibility layer does
(https://docs.influxdata.com/influxdb/v1/tools/api/#apiv2write-http-endpoint):
``/api/v2/write?bucket=db/rp&precision=ms`` -> ``/write?db=db&rp=rp&precision=ms`` and
``Authorization: Token user:password`` -> the same user/password (also on ``/write``, so
the v1 transport's token mode is tested too); ``/health`` answers from ``/ping``; other
paths pass through unchanged. Everything else is the real server.

Use from a test module with ``from tests.influx_fixtures import influx_server, influx_db``
(pytest picks up fixtures imported into the module).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"
ADMIN_USER = "gw_admin"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  trace-logging-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = {auth}
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""


class _PortTaken(Exception):
    pass


class InfluxServer:
    """One ``influxd`` process with its own temporary directories.

    ``url`` is ``http://127.0.0.1:PORT``. ``stop()`` and ``start()`` keep port and data, so
    a test can simulate an outage and a restart of the same server.
    """

    def __init__(self, root: Path, *, auth: bool = True):
        if not os.path.exists(INFLUXD):
            # Not a skip: these tests exist to run against a real server (.ci/run installs it).
            pytest.fail("influxd not found: apt-get install influxdb (Debian's 1.6.7, see .ci/run)", pytrace=False)
        self.root = Path(root)
        self.auth = auth
        self.http_port = free_port()
        self.rpc_port = free_port()
        self.user = ADMIN_USER
        self.password = secrets.token_hex(12)
        self.proc: subprocess.Popen | None = None
        self.conf = self.root / "influxdb.conf"
        self._write_config()
        self._log = open(self.root / "influxd.log", "ab")
        self._admin_created = False

    def _write_config(self) -> None:
        self.conf.write_text(
            _CONFIG.format(
                root=self.root,
                rpc_port=self.rpc_port,
                http_port=self.http_port,
                auth="true" if self.auth else "false",
            )
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    # -- process ----------------------------------------------------------------------
    def start(self, *, timeout_s: float = 20.0) -> None:
        for attempt in range(3):
            try:
                return self._start(timeout_s=timeout_s)
            except _PortTaken:
                if self._admin_created or attempt == 2:
                    raise RuntimeError(f"influxd could not bind 127.0.0.1:{self.http_port} (port taken)") from None
                # free_port() raced with another process: pick new ports (first start only)
                self.http_port, self.rpc_port = free_port(), free_port()
                self._write_config()

    def _start(self, *, timeout_s: float) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen(
            [INFLUXD, "run", "-config", str(self.conf)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "INFLUXDB_REPORTING_DISABLED": "true"},
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.root / "influxd.log").read_text(errors="replace")[-2000:]
                self.proc = None
                if "address already in use" in log:
                    raise _PortTaken()
                raise RuntimeError(f"influxd exited at start:\n{log}")
            try:
                status, _ = self._request("GET", "/ping", auth=False, timeout_s=0.5)
                if status == 204:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"influxd did not answer /ping on {self.url} within {timeout_s} s")
        if self.auth and not self._admin_created:
            # With auth on and no users yet, InfluxDB 1.x accepts exactly this statement.
            q = f"CREATE USER {self.user} WITH PASSWORD '{self.password}' WITH ALL PRIVILEGES"
            status, body = self._request("POST", "/query?" + urllib.parse.urlencode({"q": q}), auth=False)
            if status != 200:
                raise RuntimeError(f"could not create the admin user: {status} {body[:200]!r}")
            self._admin_created = True

    def stop(self) -> None:
        """Stop by PID: SIGTERM, then SIGKILL after 10 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        self._log.close()

    # -- HTTP helpers -----------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None, *, auth: bool = True,
                 timeout_s: float = 30.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout_s)
        headers = {}
        if auth and self.auth:
            cred = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {cred}"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def query(self, q: str, *, db: str | None = None) -> list[dict]:
        """Run InfluxQL over ``/query``; returns the ``series`` of the first statement.

        Each series is ``{"name", "tags", "columns", "values"}`` as the server sends it.
        """
        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        status, body = self._request("POST", "/query?" + urllib.parse.urlencode(params))
        data = json.loads(body)
        if status != 200 or "error" in data:
            raise AssertionError(f"query {q!r} failed: {status} {body[:300]!r}")
        result = data["results"][0]
        if "error" in result:
            raise AssertionError(f"query {q!r} failed: {result['error']}")
        return result.get("series", [])

    def rows(self, q: str, *, db: str) -> list[dict]:
        """All rows of all series as dicts (tags merged in)."""
        out = []
        for s in self.query(q, db=db):
            for v in s["values"]:
                row = dict(zip(s["columns"], v))
                row.update(s.get("tags", {}))
                row["_measurement"] = s["name"]
                out.append(row)
        return out

    def count(self, measurement: str, field: str, *, db: str, where: str = "") -> int:
        w = f" WHERE {where}" if where else ""
        series = self.query(f'SELECT count("{field}") FROM "{measurement}"{w}', db=db)
        return int(sum(s["values"][0][1] for s in series))

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')

    def write_raw(self, db: str, body: bytes, *, precision: str = "ms") -> tuple[int, bytes]:
        return self._request("POST", f"/write?db={db}&precision={precision}", body)


class V2CompatFront:
    """Loopback front translating the InfluxDB v2 write API onto a 1.x server's ``/write``.

    Stands in for InfluxDB 1.8's built-in compatibility endpoint (not present in 1.6.7)
    so the real ``influxdb-client`` code path can be tested against the real server.
    ``fail_next`` makes the next N write requests (``/write`` or ``/api/v2/write``) answer
    with the given statuses (to test retries/backoff against a flaky front while the
    server itself is untouched); ``requests`` records what arrived.
    """

    def __init__(self, server: InfluxServer):
        self.server = server
        self.requests: list[str] = []
        self.fail_next: list[int] = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # keep test output clean
                pass

            def _relay(self, method: str):
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                front.requests.append(f"{method} {u.path}")
                if u.path in ("/write", "/api/v2/write") and front.fail_next:
                    status = front.fail_next.pop(0)
                    msg = json.dumps({"code": "unavailable", "message": "injected"}).encode()
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                if u.path in ("/ping", "/health"):
                    target = "/ping"
                elif u.path == "/api/v2/write":
                    bucket = q.get("bucket", [""])[0]
                    db, _, rp = bucket.partition("/")
                    params = {"db": db, "precision": q.get("precision", ["ns"])[0]}
                    if rp:
                        params["rp"] = rp
                    target = "/write?" + urllib.parse.urlencode(params)
                else:
                    target = self.path  # /write, /query: the server's own API
                headers = {}
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Token "):
                    headers["Authorization"] = "Basic " + base64.b64encode(auth[6:].encode()).decode()
                elif auth:
                    headers["Authorization"] = auth
                if self.headers.get("Content-Encoding"):
                    headers["Content-Encoding"] = self.headers["Content-Encoding"]
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", front.server.http_port, timeout=30)
                    conn.request(method, target, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    status = resp.status
                    conn.close()
                except OSError:
                    # The real server is down: answer like a gateway in front of it would.
                    status, data = 503, b'{"code":"unavailable","message":"server down"}'
                if u.path == "/health" and status == 204:
                    status, data = 200, b'{"status":"pass"}'
                if status >= 400 and data and not data.startswith(b'{"code"'):
                    # 1.x says {"error": "..."}; v2 clients expect {"code", "message"}.
                    try:
                        msg = json.loads(data).get("error", "")
                    except ValueError:
                        msg = data.decode(errors="replace")
                    code = {400: "invalid", 401: "unauthorized", 404: "not found"}.get(status, "internal error")
                    data = json.dumps({"code": code, "message": msg}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                if data:
                    self.send_header("Content-Type", "application/json")
                self.end_headers()
                if data:
                    self.wfile.write(data)

            def do_GET(self):
                self._relay("GET")

            def do_HEAD(self):
                self._relay("GET")

            def do_POST(self):
                self._relay("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        """A v2-style token for the server's admin, as 1.8's compatibility API accepts it."""
        return f"{self.server.user}:{self.server.password}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def influx_server():
    """One real server for the whole test session (tests use their own databases)."""
    root = Path(tempfile.mkdtemp(prefix="gw-influxd-"))
    srv = InfluxServer(root)
    try:
        srv.start()
        yield srv
    finally:
        srv.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_influx_server(tmp_path):
    """A server of the test's own, which the test may stop and restart (outages)."""
    (tmp_path / "influxd").mkdir(exist_ok=True)
    srv = InfluxServer(tmp_path / "influxd")
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


@pytest.fixture
def influx_db(influx_server, request):
    """A fresh database on the shared server, named after the test; dropped afterwards."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:40] + "_" + secrets.token_hex(3)
    influx_server.create_database(name)
    yield name
    influx_server.query(f'DROP DATABASE "{name}"')


@pytest.fixture
def v2_front(influx_server):
    front = V2CompatFront(influx_server)
    yield front
    front.close()


# -- records for the tests (plain records, no engine: fast and exact) -------------------------


def make_step_records(
    *,
    sensors,
    duration_s: float,
    cadence_spm: float = 170.0,
    contact_ms: float = 240.0,
    metric_names: tuple[str, ...] = ("impact_g", "strike_angle_deg"),
    nan_every: int = 0,
):
    """Step records of a steady run: each sensor steps every 120/cadence s, alternating feet.

    Metric values vary deterministically per step; with ``nan_every=n`` every n-th step has a
    NaN ``impact_g`` (as a metric that could not be computed) -- these must be dropped and
    counted, never sent.
    """
    import numpy as np

    from pipeline.records import Metric, Step, StepRecord

    stride_s = 120.0 / cadence_spm
    out = []
    window = np.zeros((8, 3))
    for j, sensor in enumerate(sensors):
        offset = j * stride_s / 2
        n = int((duration_s - offset) / stride_s)
        for i in range(n):
            ic = offset + i * stride_s + 0.5
            to = ic + contact_ms / 1e3 + 0.001 * (i % 7)
            step = Step(
                sensor_id=sensor.sensor_id,
                segment=0,
                fs_hz=200.0,
                ic_index=ic * 200,
                to_index=to * 200,
                ic_s=ic,
                to_s=to,
                prev_ic_s=ic - stride_s if i else float("nan"),
                activity="running" if i % 50 else "walking",
                window_start_index=int(ic * 200) - 20,
                acc_ms2=window,
            )
            metrics = []
            for k, name in enumerate(metric_names):
                v = 2.0 + k + 0.01 * (i % 97) + 0.5 * j
                if nan_every and name == "impact_g" and i % nan_every == 0:
                    v = float("nan")
                metrics.append(Metric(name, v, "", ic, sensor.sensor_id))
            out.append(StepRecord(sensor, step, tuple(metrics)))
    out.sort(key=lambda r: r.step.ic_s)
    return out
