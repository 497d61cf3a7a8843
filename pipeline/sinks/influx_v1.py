"""InfluxDB 1.x transport: line protocol POSTed to ``/write`` (also served by 1.8+, 2.x, 3.x).

API: https://docs.influxdata.com/influxdb/v1/tools/api/#write-http-endpoint
``POST /write?db=DB&rp=RP&precision=ms`` with the line protocol as body; ``204`` = written,
``400`` = some lines could not be parsed or conflict with the stored field types (1.x writes
the others and says ``partial write``), ``401/403`` = credentials, ``404`` = no such database,
``429/5xx`` = try again later.

HTTP and retries come from urllib3 (already installed as a dependency of influxdb-client):
its ``Retry`` does exponential backoff, honours ``Retry-After`` and retries connection
errors, exactly what this needs; writing that by hand would only add bugs.

Credentials: ``username``/``password`` go in an HTTP Basic header (never in the URL, so
they cannot leak into logs with it); a ``token`` goes as ``Authorization: Token ...``
(InfluxDB 1.8+ with ``user:password``, 2.x/3.x tokens via their v1-compatible API).
"""

from __future__ import annotations

import urllib.parse

import urllib3
from urllib3.util import Retry, Timeout

from pipeline.sinks.influx_transport import Refused, Rejected, Unavailable, describe_http_error

RETRY_STATUSES = (429, 500, 502, 503, 504)


class V1Transport:
    """Synchronous ``/write`` client; safe to call from up to ``max_requests_in_flight``
    worker threads at once (one pooled connection each)."""

    kind = "v1"
    max_requests_in_flight = 4  # the sink's workers share the connection pool (urllib3 is thread-safe)

    def __init__(
        self,
        *,
        url: str,
        database: str,
        retention_policy: str = "",
        username: str = "",
        password: str = "",
        token: str = "",
        precision: str = "ms",
        timeout_s: float = 10.0,
        max_retries: int = 5,
        retry_interval_s: float = 1.0,
        max_retry_delay_s: float = 30.0,
    ):
        if not database:
            raise ValueError("database must be given for the v1 transport")
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise ValueError(f"url must look like http://host:8086, got {url!r}")
        if u.username or u.password:
            raise ValueError("put credentials in [influx] username/password/token or the environment, not in the URL")
        self.url = url.rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self.precision = precision
        params = {"db": database, "precision": precision}
        if retention_policy:
            params["rp"] = retention_policy
        self._write_path = self.url + "/write?" + urllib.parse.urlencode(params)
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if token:
            self._headers["Authorization"] = f"Token {token}"
        elif username or password:
            self._headers.update(urllib3.make_headers(basic_auth=f"{username}:{password}"))
        self._retry = Retry(
            total=max_retries,
            connect=max_retries,
            read=max_retries,
            status=max_retries,
            other=0,
            allowed_methods=None,  # POST /write is idempotent in InfluxDB (same point overwrites)
            status_forcelist=RETRY_STATUSES,
            backoff_factor=retry_interval_s,
            backoff_max=max_retry_delay_s,
            backoff_jitter=retry_interval_s * 0.2,
            respect_retry_after_header=True,
            raise_on_status=False,
            redirect=0,
        )
        self._http = urllib3.PoolManager(num_pools=2, maxsize=self.max_requests_in_flight,
                                         timeout=Timeout(total=timeout_s))

    def describe(self) -> dict:
        """Where the data goes (no credentials): the spool's target identity."""
        return {
            "transport": self.kind,
            "url": self.url,
            "database": self.database,
            "retention_policy": self.retention_policy,
            "precision": self.precision,
        }

    @property
    def where(self) -> str:
        return f"{self.url} database {self.database!r}"

    def _post(self, body: bytes, *, retries: Retry | bool) -> None:
        try:
            resp = self._http.request("POST", self._write_path, body=body, headers=self._headers, retries=retries)
        except urllib3.exceptions.HTTPError as exc:
            reason = str(getattr(exc, "reason", None) or exc).split(": ", 1)[-1]
            raise Unavailable(f"InfluxDB at {self.url} is unreachable: {reason}") from None
        status = resp.status
        if 200 <= status < 300:
            return
        msg = describe_http_error(status, resp.data)
        if status in (401, 403):
            raise Refused(f"InfluxDB at {self.url} refused the credentials ({status}: {msg}); check [influx] username/password/token or GAITWATCH_INFLUX_* variables")
        if status == 404:
            raise Refused(f"InfluxDB at {self.url}: database {self.database!r} not found ({msg}); create it or fix [influx] database")
        if status in (400, 413, 422):
            raise Rejected(status, msg)
        raise Unavailable(f"InfluxDB at {self.url} answered {status} after retries: {msg}")

    def check(self) -> None:
        """Reachable, credentials accepted, database exists: an empty write checks all three
        on 1.x (auth and database lookup come before the body is parsed) without storing
        anything. Raises :class:`Refused` or :class:`Unavailable`."""
        try:
            self._post(b"", retries=False)
        except Rejected:
            pass  # a server that refuses an empty body has passed auth and database checks

    def send(self, body: bytes) -> None:
        """Write one batch (newline-separated UTF-8 lines), retrying with backoff;
        raises Unavailable/Refused/Rejected."""
        self._post(body, retries=self._retry)

    def post(self, lines: list[str]) -> None:
        """Write some lines (used when splitting a rejected batch), with retries."""
        self._post(("\n".join(lines)).encode("utf-8"), retries=self._retry)

    def close(self) -> None:
        self._http.clear()
