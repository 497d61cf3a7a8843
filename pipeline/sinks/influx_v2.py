"""InfluxDB v2 write API transport through ``influxdb-client`` (InfluxDB 2.x, 3.x, and 1.8+).

Uses the client as its documentation intends
(https://influxdb-client.readthedocs.io/en/stable/usage.html#batching): one batching
``WriteApi`` (``WriteOptions``: batch size, flush interval, retries with exponential backoff
and ``Retry-After``), whose ``success_callback``/``error_callback`` report each batch. The
client drops a batch once its retries run out; the sink keeps every batch in its on-disk
spool until a callback says it was written, so nothing is lost.

``send(body)`` hands one request's worth of pre-built line protocol (the sink joins spool
batches up to ``batch_size`` lines) to the batching API as *one* item and waits for its
callback. Handing it the lines one by one would run each line through the client's reactive
pipeline (tens of microseconds of Python per line, more than encoding it); so the client's
own batch size is one item, and its retries, backoff and callbacks apply to that request.
A synchronous ``WriteApi`` is used only to split a batch the server rejected (400/422) and
for the start check.

InfluxDB 1.8 accepts this API with ``token = "user:password"`` and
``bucket = "database/retention_policy"``
(https://docs.influxdata.com/influxdb/v1/tools/api/#apiv2write-http-endpoint); the
``username``/``password`` settings are turned into that token.
"""

from __future__ import annotations

import threading
import time

from influxdb_client import InfluxDBClient, WriteOptions
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from influxdb_client.service.write_service import WriteService

from pipeline.sinks.influx_transport import Refused, Rejected, Unavailable, describe_http_error

_PRECISION = {"ns": "ns", "us": "us", "ms": "ms", "s": "s"}


class V2Transport:
    kind = "v2"
    max_requests_in_flight = 1  # send() waits on the one batching WriteApi's callbacks: one sender

    def __init__(
        self,
        *,
        url: str,
        bucket: str,
        org: str = "",
        token: str = "",
        username: str = "",
        password: str = "",
        precision: str = "ms",
        timeout_s: float = 10.0,
        batch_size: int = 5000,  # lines per request: the sink joins spool batches up to it (InfluxSink)
        flush_interval_s: float = 0.1,
        max_retries: int = 5,
        retry_interval_s: float = 1.0,
        max_retry_delay_s: float = 30.0,
        max_retry_time_s: float = 60.0,
        exponential_base: float = 2.0,
    ):
        if not bucket:
            raise ValueError("bucket must be given for the v2 transport")
        if precision not in _PRECISION:
            raise ValueError(f"precision must be one of {sorted(_PRECISION)}, got {precision!r}")
        if not token and (username or password):
            token = f"{username}:{password}"  # InfluxDB 1.8 compatibility API
        self.url = url.rstrip("/")
        self.bucket = bucket
        self.org = org or "-"  # 1.8 ignores org; 2.x needs the real one
        self.precision = precision
        self._wait_s = max_retry_time_s + timeout_s * (max_retries + 1) + flush_interval_s + 5.0
        self._client = InfluxDBClient(url=self.url, token=token, org=self.org, timeout=int(timeout_s * 1000))
        self._cond = threading.Condition()
        self._outstanding = 0
        self._errors: list[BaseException] = []
        self._batch_api = self._client.write_api(
            write_options=WriteOptions(
                batch_size=1,  # one item = one pre-joined request body (see the module docstring)
                flush_interval=int(flush_interval_s * 1000),
                jitter_interval=0,
                retry_interval=int(retry_interval_s * 1000),
                max_retries=max_retries,
                max_retry_delay=int(max_retry_delay_s * 1000),
                max_retry_time=int(max_retry_time_s * 1000),
                exponential_base=exponential_base,
            ),
            success_callback=self._on_success,
            error_callback=self._on_error,
        )
        self._sync_api = self._client.write_api(write_options=SYNCHRONOUS)

    def describe(self) -> dict:
        return {"transport": self.kind, "url": self.url, "bucket": self.bucket, "org": self.org, "precision": self.precision}

    @property
    def where(self) -> str:
        return f"{self.url} bucket {self.bucket!r}"

    # -- callbacks (run on the client's threads) -----------------------------------------
    @staticmethod
    def _n_lines(data: str | bytes) -> int:
        if isinstance(data, bytes):
            return data.count(b"\n") + 1 if data else 0
        return data.count("\n") + 1 if data else 0

    def _on_success(self, conf, data) -> None:
        with self._cond:
            self._outstanding -= self._n_lines(data)
            self._cond.notify_all()

    def _on_error(self, conf, data, exc) -> None:
        with self._cond:
            self._outstanding -= self._n_lines(data)
            self._errors.append(exc)
            self._cond.notify_all()

    # -- errors -----------------------------------------------------------------------------
    def _classify(self, exc: BaseException) -> Exception:
        if isinstance(exc, ApiException):
            status = int(exc.status or 0)
            msg = describe_http_error(status, exc.body or exc.reason)
            if status in (401, 403):
                return Refused(f"InfluxDB at {self.url} refused the token ({status}: {msg}); check [influx] token or GAITWATCH_INFLUX_TOKEN")
            if status == 404:
                return Refused(f"InfluxDB at {self.url}: bucket {self.bucket!r} or org not found ({msg}); fix [influx] bucket/org")
            if status in (400, 413, 422):
                return Rejected(status, msg)
            return Unavailable(f"InfluxDB at {self.url} answered {status} after retries: {msg}")
        reason = str(getattr(exc, "reason", None) or exc).split(": ", 1)[-1]
        return Unavailable(f"InfluxDB at {self.url} is unreachable: {reason}")

    # -- transport API ------------------------------------------------------------------
    def check(self) -> None:
        """Empty write through the v2 API: checks reachability, token and bucket, stores nothing."""
        try:
            WriteService(self._client.api_client).post_write(
                org=self.org, bucket=self.bucket, body="", precision=self.precision,
                content_type="text/plain; charset=utf-8", urlopen_kw={"retries": False},
            )
        except Exception as exc:  # noqa: BLE001 - classified below
            err = self._classify(exc)
            if isinstance(err, Rejected):
                return  # e.g. 2.x "writing requires points": auth and bucket were accepted
            raise err from None

    def send(self, body: bytes) -> None:
        """Hand one batch (newline-separated lines) to the batching WriteApi and wait for
        its callbacks; raises Unavailable/Refused/Rejected."""
        data = body.strip(b"\n")
        if not data:
            return
        with self._cond:
            self._outstanding += self._n_lines(data)
            self._errors.clear()
        self._batch_api.write(bucket=self.bucket, org=self.org, record=data, write_precision=self.precision)
        deadline = time.monotonic() + self._wait_s
        with self._cond:
            while self._outstanding > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Unavailable(f"InfluxDB at {self.url}: no answer for a batch within {self._wait_s:.0f} s")
                self._cond.wait(left)
            errors = list(self._errors)
        if errors:
            # Prefer the most actionable error: content > credentials > availability.
            classified = [self._classify(e) for e in errors]
            for kind in (Rejected, Refused, Unavailable):
                for c in classified:
                    if isinstance(c, kind):
                        raise c

    def post(self, lines: list[str]) -> None:
        try:
            self._sync_api.write(bucket=self.bucket, org=self.org, record=lines, write_precision=self.precision)
        except Exception as exc:  # noqa: BLE001 - classified
            raise self._classify(exc) from None

    def close(self) -> None:
        try:
            self._batch_api.close()
            self._sync_api.close()
        finally:
            self._client.close()
