"""Training history across runs: session summaries and knee check-ins, per athlete.

One interface (:class:`History`), two stores:

* :class:`LocalHistory` — the embedded default: one JSON-lines file per athlete under a
  data directory (``[history].dir``, else ``$GAITWATCH_DATA_DIR``, else
  ``~/.local/share/gaitwatch``). Lines are only ever appended (flushed and fsync'd); a
  corrupt file is reported with its line number and never written to or overwritten.
* :class:`InfluxHistory` — the same records in InfluxDB (measurements ``gait_history`` and
  ``gait_checkin``, tag ``athlete``) through the 1.x HTTP API (``/write`` and ``/query``),
  when a server is configured.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from pipeline.errors import GaitwatchError


class HistoryError(GaitwatchError):
    """A history store is unreadable or corrupt."""


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def parse_time(text: str) -> datetime:
    try:
        return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise HistoryError(f"expected an ISO 8601 time like 2026-03-01T07:30:00Z, got {text!r}") from None


@dataclass(frozen=True)
class SessionEntry:
    """One run in the history (running time only; distance NaN when not measured)."""

    athlete: str
    session_id: str
    start: datetime
    duration_s: float
    distance_m: float = math.nan
    steps: int = 0
    mean_impact_g: float = math.nan
    load: float = math.nan

    def to_json(self) -> dict:
        d = asdict(self)
        d["start"] = _utc(self.start).isoformat().replace("+00:00", "Z")
        for k in ("distance_m", "mean_impact_g", "load"):
            if not math.isfinite(d[k]):
                d[k] = None
        return {"type": "session", **d}

    @classmethod
    def from_json(cls, d: dict) -> "SessionEntry":
        return cls(athlete=str(d["athlete"]), session_id=str(d["session_id"]), start=parse_time(d["start"]),
                   duration_s=float(d["duration_s"]),
                   distance_m=math.nan if d.get("distance_m") is None else float(d["distance_m"]),
                   steps=int(d.get("steps", 0)),
                   mean_impact_g=math.nan if d.get("mean_impact_g") is None else float(d["mean_impact_g"]),
                   load=math.nan if d.get("load") is None else float(d["load"]))


@dataclass(frozen=True)
class Checkin:
    """How the knee feels: pain 0-10 (0 none) and whether it is swollen."""

    athlete: str
    t: datetime
    pain: int
    swelling: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.pain, int) and 0 <= self.pain <= 10):
            raise HistoryError(f"pain must be an integer from 0 to 10, got {self.pain!r}")

    def to_json(self) -> dict:
        return {"type": "checkin", "athlete": self.athlete, "t": _utc(self.t).isoformat().replace("+00:00", "Z"),
                "pain": self.pain, "swelling": self.swelling}

    @classmethod
    def from_json(cls, d: dict) -> "Checkin":
        return cls(athlete=str(d["athlete"]), t=parse_time(d["t"]), pain=int(d["pain"]),
                   swelling=bool(d.get("swelling", False)))


class History(Protocol):
    def sessions(self, athlete: str) -> list[SessionEntry]: ...

    def checkins(self, athlete: str) -> list[Checkin]: ...

    def add_session(self, entry: SessionEntry) -> None: ...

    def add_checkin(self, checkin: Checkin) -> None: ...


def default_dir() -> Path:
    env = os.environ.get("GAITWATCH_DATA_DIR")
    return Path(env) if env else Path.home() / ".local" / "share" / "gaitwatch"


class LocalHistory:
    """JSON lines, one file per athlete: ``DIR/athletes/<name>.jsonl``."""

    def __init__(self, directory: str | Path | None = None):
        self.dir = Path(directory) if directory else default_dir()

    def path(self, athlete: str) -> Path:
        if not athlete:
            raise HistoryError("an athlete name is needed for the training history (--athlete)")
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", athlete)
        return self.dir / "athletes" / f"{safe}.jsonl"

    def _read(self, athlete: str) -> tuple[list[SessionEntry], list[Checkin]]:
        p = self.path(athlete)
        sessions: list[SessionEntry] = []
        checkins: list[Checkin] = []
        if not p.exists():
            return sessions, checkins
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise HistoryError(f"{p}: cannot read the history: {exc}") from None
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                kind = d["type"]
                if kind == "session":
                    sessions.append(SessionEntry.from_json(d))
                elif kind == "checkin":
                    checkins.append(Checkin.from_json(d))
                else:
                    raise ValueError(f"unknown record type {kind!r}")
            except (ValueError, KeyError, TypeError, HistoryError) as exc:
                raise HistoryError(f"{p}:{n}: corrupt history line ({exc}); the file is left as it is - "
                                   f"repair or move it") from None
        if text and not text.endswith("\n"):
            raise HistoryError(f"{p}: the last line is incomplete (a write was interrupted); the file is left "
                               f"as it is - repair or move it")
        sessions.sort(key=lambda s: s.start)
        checkins.sort(key=lambda c: c.t)
        return sessions, checkins

    def sessions(self, athlete: str) -> list[SessionEntry]:
        return self._read(athlete)[0]

    def checkins(self, athlete: str) -> list[Checkin]:
        return self._read(athlete)[1]

    def _append(self, athlete: str, record: dict) -> None:
        self._read(athlete)  # refuse to append to a corrupt file
        p = self.path(athlete)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            with open(p, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise HistoryError(f"{p}: cannot write the history: {exc.strerror}") from None

    def add_session(self, entry: SessionEntry) -> None:
        if any(s.session_id == entry.session_id and s.start == entry.start for s in self.sessions(entry.athlete)):
            return  # the same run replayed again: keep one entry
        self._append(entry.athlete, entry.to_json())

    def add_checkin(self, checkin: Checkin) -> None:
        self._append(checkin.athlete, checkin.to_json())


class InfluxHistory:
    """The history in InfluxDB 1.x (``/write`` + ``/query``, InfluxQL), same interface."""

    def __init__(self, *, url: str, database: str, username: str = "", password: str = ""):
        import urllib3

        self.url = url.rstrip("/")
        self.database = database
        self._auth = {"u": username, "p": password} if username else {}
        self._http = urllib3.PoolManager(retries=urllib3.Retry(total=2, backoff_factor=0.2))

    def _request(self, path: str, fields: dict, body: bytes | None = None):
        import urllib3

        try:
            if body is None:
                r = self._http.request("GET", self.url + path, fields={**fields, **self._auth})
            else:
                from urllib.parse import urlencode

                q = urlencode({**fields, **self._auth})
                r = self._http.request("POST", f"{self.url}{path}?{q}", body=body)
        except urllib3.exceptions.HTTPError as exc:
            raise HistoryError(f"InfluxDB history at {self.url}: unreachable ({type(exc).__name__})") from None
        if r.status >= 300:
            raise HistoryError(f"InfluxDB history at {self.url}: HTTP {r.status}: {r.data[:200]!r}")
        return r

    @staticmethod
    def _esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")

    def _write(self, line: str) -> None:
        self._request("/write", {"db": self.database, "precision": "s"}, body=line.encode("utf-8"))

    def _select(self, measurement: str, athlete: str) -> list[dict]:
        a = athlete.replace("\\", "\\\\").replace("'", "\\'")
        r = self._request("/query", {"db": self.database, "epoch": "s",
                                     "q": f"SELECT * FROM \"{measurement}\" WHERE \"athlete\" = '{a}'"})
        rows = []
        for res in json.loads(r.data).get("results", []):
            if "error" in res:
                raise HistoryError(f"InfluxDB history: {res['error']}")
            for s in res.get("series", []):
                for v in s["values"]:
                    rows.append(dict(zip(s["columns"], v)))
        return rows

    def add_session(self, entry: SessionEntry) -> None:
        fields = {"duration_s": entry.duration_s, "distance_m": entry.distance_m, "steps": float(entry.steps),
                  "mean_impact_g": entry.mean_impact_g, "load": entry.load}
        body = ",".join(f"{k}={float(v)!r}" for k, v in fields.items() if math.isfinite(v))
        sid = entry.session_id.replace("\\", "\\\\").replace('"', '\\"')
        ts = int(_utc(entry.start).timestamp())
        self._write(f"gait_history,athlete={self._esc(entry.athlete)} {body},session_id=\"{sid}\" {ts}")

    def sessions(self, athlete: str) -> list[SessionEntry]:
        out = []
        for r in self._select("gait_history", athlete):
            g = lambda k: math.nan if r.get(k) is None else float(r[k])  # noqa: E731
            out.append(SessionEntry(athlete=athlete, session_id=str(r.get("session_id", "")),
                                    start=datetime.fromtimestamp(r["time"], timezone.utc), duration_s=g("duration_s"),
                                    distance_m=g("distance_m"), steps=int(g("steps")) if r.get("steps") else 0,
                                    mean_impact_g=g("mean_impact_g"), load=g("load")))
        return sorted(out, key=lambda s: s.start)

    def add_checkin(self, checkin: Checkin) -> None:
        ts = int(_utc(checkin.t).timestamp())
        self._write(f"gait_checkin,athlete={self._esc(checkin.athlete)} pain={float(checkin.pain)!r},"
                    f"swelling={'true' if checkin.swelling else 'false'} {ts}")

    def add_verdicts(self, athlete: str, verdicts, *, at: datetime, session_id: str = "") -> None:
        """Store the load rules' verdicts (:func:`pipeline.training_load.evaluate`) at ``at`` as
        ``gait_load`` points (tags athlete, rule; fields fired 0/1, message, session_id), for the
        training-load dashboard (dashboards/)."""
        from pipeline import schema

        ts = int(_utc(at).timestamp())
        sid = session_id.replace("\\", "\\\\").replace('"', '\\"')
        lines = []
        for v in verdicts:
            msg = " ".join(v.message.split()).replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f"{schema.MEASUREMENT_LOAD},athlete={self._esc(athlete)},rule={self._esc(v.rule)} "
                         f"{schema.FIELD_LOAD_FIRED}={1.0 if v.fired else 0.0!r},{schema.FIELD_LOAD_MESSAGE}=\"{msg}\","
                         f"{schema.FIELD_LOAD_SESSION_ID}=\"{sid}\" {ts}")
        if lines:
            self._write("\n".join(lines))

    def checkins(self, athlete: str) -> list[Checkin]:
        return sorted((Checkin(athlete=athlete, t=datetime.fromtimestamp(r["time"], timezone.utc),
                               pain=int(r["pain"]), swelling=bool(r.get("swelling")))
                       for r in self._select("gait_checkin", athlete)), key=lambda c: c.t)


def history_from_config(config, *, data_dir: str | Path | None = None, influx_section: dict | None = None):
    """InfluxDB when one is configured with the v1 API (credentials from the environment win,
    as for the sink), otherwise the local store."""
    if influx_section is not None and influx_section.get("transport", "v1") == "v1" and not data_dir:
        return InfluxHistory(url=influx_section["url"], database=influx_section["database"],
                             username=os.environ.get("GAITWATCH_INFLUX_USERNAME") or influx_section.get("username", ""),
                             password=os.environ.get("GAITWATCH_INFLUX_PASSWORD") or influx_section.get("password", ""))
    return LocalHistory(data_dir or config.get("history", "dir") or None)
