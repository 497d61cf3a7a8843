"""Shared pieces of the NATS JetStream scale-out (issue 10): names, settings, connection.

Layout on the NATS side (all names from the ``[cluster]`` config section)::

    stream  <stream>            subjects "<subject_prefix>.>", file storage, <replicas> replicas,
                                duplicate window <dup_window_s> (drops a gateway's re-sends by Nats-Msg-Id)
    subject <prefix>.<unit>.<sensor>   one per athlete and sensor; <unit> = "<session>.<athlete>"
    KV      <kv_prefix>_units   unit -> JSON {session_id, athlete, start_wall_ns, gateway, sensors[...], done}
    KV      <kv_prefix>_leases  unit -> JSON {worker}; TTL lease_ttl_s: a worker that stops renewing loses it
    KV      <kv_prefix>_workers worker id -> JSON heartbeat {units, msgs, lag...}; TTL lease_ttl_s
    KV      <kv_prefix>_checkpoints unit -> JSON {committed, pending, owner}: where the owner's output
                                reached (pipeline.worker: a new owner resumes there); compare-and-set only

A message body is a run of ``.gwcap`` records (:mod:`firmware_bridge.serial_capture`):
``i64 host_ns | u32 length | bytes`` (length 0xFFFFFFFF: the port was lost), i.e. the raw
protocol bytes exactly as the gateway read them, with its receive times. Headers:
``Nats-Msg-Id`` = ``<unit>.<sensor>.<seq>``, ``Gw-Sensor``, ``Gw-Seq`` (per sensor, from 0,
kept across gateway restarts by the disk buffer) and ``Gw-End: 1`` on a sensor's last batch.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ConfigError

REC = struct.Struct("<qI")
LOST = 0xFFFFFFFF
_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


def token(text: str) -> str:
    """A NATS subject token / KV key piece: anything outside [A-Za-z0-9_-] becomes ``_``."""
    t = _TOKEN.sub("_", str(text))
    if not t:
        raise ConfigError("cluster: empty name where a subject token is needed")
    return t


def unit_key(session_id: str, athlete: str) -> str:
    """The unit of work a worker leases: one athlete of one gateway session (all its sensors)."""
    return f"{token(session_id)}.{token(athlete or 'anon')}"


def pack_records(records: list[tuple[int, bytes | None]]) -> bytes:
    out = bytearray()
    for host_ns, data in records:
        if data is None:
            out += REC.pack(int(host_ns), LOST)
        else:
            out += REC.pack(int(host_ns), len(data)) + data
    return bytes(out)


def unpack_records(body: bytes) -> Iterator[tuple[float, bytes | None]]:
    """``(host_s, bytes)`` or ``(host_s, None)``; host_s = host_ns * 1e-9 as in a capture replay."""
    i, n = 0, len(body)
    while i + REC.size <= n:
        t_ns, ln = REC.unpack_from(body, i)
        i += REC.size
        if ln == LOST:
            yield t_ns * 1e-9, None
            continue
        yield t_ns * 1e-9, body[i:i + ln]
        i += ln


@dataclass
class ClusterSettings:
    urls: list[str]
    stream: str = "GAITWATCH"
    subject_prefix: str = "gw.frames"
    kv_prefix: str = "gw"
    replicas: int = 3
    dup_window_s: float = 600.0
    max_age_s: float = 86400.0
    lease_ttl_s: float = 10.0
    poll_s: float = 0.5
    checkpoint_s: float = 2.0
    resume_preroll_s: float = 10.0
    block_s: float = 1.0
    batch_max_s: float = 0.25
    batch_max_bytes: int = 65536
    publish_window: int = 64  # gateway: publishes in flight (at most one per sensor subject: order kept)
    creds: str = ""
    user: str = ""
    password: str = ""
    token: str = ""
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config, **over) -> "ClusterSettings":
        c = config.section("cluster")
        c.update({k: v for k, v in over.items() if v not in (None, [], "")})
        for k in ("creds", "user", "password", "token"):  # secrets from the environment rather than a file
            v = os.environ.get(f"GAITWATCH_NATS_{k.upper()}")
            if v:
                c[k] = v
        urls = c.pop("urls")
        if isinstance(urls, str):
            urls = [u for u in urls.split(",") if u]
        if not urls:
            raise ConfigError("cluster: no NATS server URL (give --nats URL or [cluster].urls)")
        known = set(cls.__dataclass_fields__)
        bad = set(c) - known
        if bad:
            raise ConfigError(f"cluster: unknown settings {sorted(bad)}")
        s = cls(urls=list(urls), **c)
        if s.lease_ttl_s < 1.0:
            raise ConfigError(f"cluster: lease_ttl_s must be >= 1 s, got {s.lease_ttl_s}")
        if not int(s.publish_window) >= 1:
            raise ConfigError(f"cluster: publish_window must be >= 1, got {s.publish_window}")
        if not (s.checkpoint_s > 0 and s.resume_preroll_s >= 0):
            raise ConfigError(f"cluster: checkpoint_s must be > 0 and resume_preroll_s >= 0, got "
                              f"{s.checkpoint_s}, {s.resume_preroll_s}")
        return s

    def bucket(self, what: str) -> str:
        return f"{self.kv_prefix}_{what}"

    def subject(self, unit: str, sensor_id: str = ">") -> str:
        return f"{self.subject_prefix}.{unit}.{sensor_id if sensor_id == '>' else token(sensor_id)}"

    def connect_kw(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"servers": self.urls, "max_reconnect_attempts": -1, "reconnect_time_wait": 0.5,
                              "connect_timeout": 2, "allow_reconnect": True, "error_cb": _quiet}
        if self.creds:
            kw["user_credentials"] = self.creds
        if self.user:
            kw["user"], kw["password"] = self.user, self.password
        if self.token:
            kw["token"] = self.token
        if self.tls_ca or self.tls_cert:  # (tls:// URLs without these: the system's CAs)
            import ssl

            ctx = ssl.create_default_context(cafile=self.tls_ca or None)
            if self.tls_cert:  # client certificate (servers with `verify: true`)
                ctx.load_cert_chain(self.tls_cert, self.tls_key or None)
            kw["tls"] = ctx
        return kw


async def _quiet(exc) -> None:
    import logging

    logging.getLogger("pipeline.cluster").debug("nats: %s", exc)


async def ensure_layout(js, s: ClusterSettings) -> dict[str, Any]:
    """Create (or find) the stream and the three KV buckets; returns the KV handles."""
    from nats.js.api import KeyValueConfig, StorageType, StreamConfig
    from nats.js.errors import BadRequestError

    cfg = StreamConfig(name=s.stream, subjects=[f"{s.subject_prefix}.>"], num_replicas=s.replicas,
                       storage=StorageType.FILE, duplicate_window=s.dup_window_s, max_age=s.max_age_s)
    for attempt in range(10):  # no JetStream answer yet (leader election, a creation racing ours): retry
        try:
            await js.add_stream(cfg)
            break
        except BadRequestError:  # exists with another config (e.g. replicas): keep the existing one
            await js.stream_info(s.stream)
            break
        except Exception:
            try:
                await js.stream_info(s.stream)
                break
            except Exception:
                if attempt == 9:
                    raise
                await asyncio.sleep(0.3 * (attempt + 1))
    kv = {}
    for what, ttl in (("units", None), ("leases", s.lease_ttl_s), ("workers", s.lease_ttl_s), ("checkpoints", None)):
        name = s.bucket(what)
        for attempt in range(5):  # gateways and workers may create the buckets at the same time
            try:
                kv[what] = await js.key_value(name)
                break
            except Exception:
                try:
                    kv[what] = await js.create_key_value(KeyValueConfig(
                        bucket=name, history=1, ttl=ttl, replicas=s.replicas, storage=StorageType.FILE))
                    break
                except Exception:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))
    return kv


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True).encode()


def loads(data: bytes | None) -> Any:
    return json.loads(data) if data else None
