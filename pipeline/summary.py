"""Session summary: per sensor and per side, from the StepRecords and the engine's counters.

Built incrementally and finished at the end of a run, also after a failure or Ctrl-C
(then ``status`` says so). Memory does not grow with the run: :class:`SummaryBuilder` keeps
a fixed-resolution histogram per sensor, activity and quantity (:mod:`pipeline.median`),
not the steps or their values. Written to ``session.json`` by the file sink and printed as a table
by ``gaitwatch replay``.

Definitions
-----------
* steps: StepRecords of the sensor; ``running`` / ``walking`` by ``Step.activity``.
* cadence_spm: step rate of *both* feet (``Step.cadence_spm`` = 120 / stride time of this
  foot); ``contact_ms``, ``flight_ms`` as in :class:`pipeline.records.Step`. The summary
  gives their medians per activity, ignoring NaN (the first step of a segment has no
  stride yet), to within half the resolution of :data:`pipeline.median.RESOLUTION`
  (0.01 spm, 0.01 ms: ``pipeline.median.BinnedMedian``).
* duration_s: span of the sensor's input (last minus first ``t_s``), from the source's
  statistics if it has them, else samples / fs.
* per side: one sensor per side speaks for that foot, the first *foot* sensor of that
  side, else the first shank sensor (two sensors on one leg see the same steps; adding
  them would double count).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from pipeline.median import BinnedMedian, median_of_finite, resolution_of
from pipeline.metrics import MetricsSummary  # form (issue 3)
from pipeline.records import CLEARED, SIDES, Alert, SensorInfo, SessionInfo, StepRecord

ACTIVITIES = ("running", "walking")
JSON_DECIMALS = 6
STEP_QUANTITIES = (("cadence_spm", "spm"), ("contact_ms", "ms"), ("flight_ms", "ms"))


class _StepMedian(BinnedMedian):
    """A :class:`BinnedMedian` whose median, while none of its values has been folded into
    pages yet (fewer than ``FOLD_EVERY`` values: a short run), is taken from the values' bins
    directly - the same bins (``rint(x / resolution)``, clamped), the same middle-element rule,
    the same float - instead of first folding them into 1024-bin pages and scanning those
    (~50 us per median, six per sensor: a fixed cost of every replay;
    :func:`pipeline.median.median_of_finite`). tests/test_summary_json.py checks it against
    BinnedMedian."""

    __slots__ = ()

    def median(self) -> float:
        if self._folded or not self._pending:
            return super().median()
        return median_of_finite(self._pending, self.resolution)[1]  # (pending values are finite)


class _Figures:
    """Steps and the session medians of one sensor and activity (bounded memory)."""

    __slots__ = ("steps", "cadence_spm", "contact_ms", "flight_ms")

    def __init__(self) -> None:
        self.steps = 0
        for name, unit in STEP_QUANTITIES:
            setattr(self, name, _StepMedian(resolution_of(unit)))


@dataclass(frozen=True)
class ActivityFigures:
    steps: int = 0
    cadence_spm_median: float = math.nan
    contact_ms_median: float = math.nan
    flight_ms_median: float = math.nan


@dataclass(frozen=True)
class SensorSummary:
    sensor_id: str
    side: str
    placement: str
    athlete: str
    steps: int
    running: ActivityFigures
    walking: ActivityFigures
    duration_s: float
    samples: int
    fs_hz: float
    effective_fs_hz: float
    has_gyro: bool | None
    gaps: int
    gap_s: float
    filled_samples: int
    rows: int | None

    @property
    def main(self) -> tuple[str, ActivityFigures]:
        """The activity the table shows: running if any running step, else walking."""
        return ("running", self.running) if self.running.steps or not self.walking.steps else ("walking", self.walking)


@dataclass(frozen=True)
class SideSummary:
    side: str
    sensor_id: str  # the sensor that speaks for this side
    sensors: tuple[str, ...]  # every sensor on this side
    steps: int
    duration_s: float
    running: ActivityFigures
    walking: ActivityFigures


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    athlete: str
    start_utc: str
    duration_s: float
    status: str  # "complete" | "interrupted" | "failed"
    error: str
    sensors: tuple[SensorSummary, ...]
    sides: tuple[SideSummary, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in a fixed key order: NaN -> None, floats rounded to 6 decimals
        (so session.json does not change with the block size: medians of values that agree
        to ~1e-12 would otherwise differ in their last digits)."""
        return _jsonable(self)

    def format_table(self) -> str:
        return format_table(self)


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float):
        return round(x, JSON_DECIMALS) if math.isfinite(x) else None
    if isinstance(x, np.generic):
        return _clean(x.item())
    return x


_FIELDS: dict[type, tuple[str, ...]] = {}  # dataclass -> its field names (dataclasses.fields is slow)


def _jsonable(x: Any) -> Any:
    """``_clean(dataclasses.asdict(x))`` in one pass, without ``asdict``'s deep copy of every
    leaf (~0.3-0.9 ms of a short replay's fixed cost; values and key order are the same:
    tests/test_summary_json.py)."""
    t = type(x)
    if t is str or t is int or t is bool or x is None:
        return x
    if t is float:
        return round(x, JSON_DECIMALS) if math.isfinite(x) else None
    if t is dict:
        return {k: _jsonable(v) for k, v in x.items()}
    if t is list or t is tuple:
        return [_jsonable(v) for v in x]
    names = _FIELDS.get(t)
    if names is None and is_dataclass(t):
        names = _FIELDS[t] = tuple(f.name for f in fields(t))
    if names is not None:
        return {n: _jsonable(getattr(x, n)) for n in names}
    if isinstance(x, dict):  # subclasses, as _clean treats them
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return _clean(x)


def _get(obj: Any, name: str, default: Any = math.nan) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


class SummaryBuilder:
    """Collects per-step figures while records stream past; ``build`` makes the summary."""

    def __init__(self, session: SessionInfo, sensors: Sequence[SensorInfo]):
        self.session = session
        self.sensors = list(sensors)
        self._vals: dict[tuple[str, str], _Figures] = {
            (s.sensor_id, a): _Figures() for s in self.sensors for a in ACTIVITIES
        }
        self.alerts: dict[str, int] = {}
        self.metrics = MetricsSummary()  # form metrics (issue 3): medians and NaN reasons

    def add(self, records: Iterable[StepRecord | Alert]) -> None:
        for r in records:
            if isinstance(r, Alert):  # counted per rule (fired, not cleared) for the summary
                if r.severity != CLEARED:
                    self.alerts[r.rule] = self.alerts.get(r.rule, 0) + 1
                continue
            self.metrics.add(r)  # form (issue 3)
            st = r.step
            activity = st.activity if st.activity in ACTIVITIES else "walking"
            key = (r.sensor.sensor_id, activity)
            v = self._vals.get(key)
            if v is None:  # a sensor the builder was not told about
                v = self._vals[key] = _Figures()
            measured = [m.value for m in r.metrics if m.name == "flight_ms"]
            flight = measured[-1] if measured else st.flight_ms  # a measured flight time (both feet) wins
            v.steps += 1
            v.cadence_spm.add(st.cadence_spm)
            v.contact_ms.add(st.contact_ms)
            v.flight_ms.add(flight)

    def _figures(self, sensor_id: str, activity: str) -> ActivityFigures:
        v = self._vals.get((sensor_id, activity))
        if v is None or not v.steps:
            return ActivityFigures()
        return ActivityFigures(
            steps=v.steps,
            cadence_spm_median=v.cadence_spm.median(),
            contact_ms_median=v.contact_ms.median(),
            flight_ms_median=v.flight_ms.median(),
        )

    def build(self, *, counters: Mapping[str, Any] | None = None, sources: Mapping[str, Any] | None = None,
              status: str = "complete", error: str = "", extra: dict[str, Any] | None = None) -> SessionSummary:
        """``counters``: ``Engine.counters()``; ``sources``: per sensor reader statistics
        (e.g. ``RecordingStats``: rows, filled_samples, gaps, effective_fs_hz, first/last_t_s)."""
        counters, sources = counters or {}, sources or {}
        extra = dict(extra or {})
        extra.setdefault("alerts", dict(sorted(self.alerts.items())))
        extra.setdefault("metrics", self.metrics.to_dict())  # form (issue 3)
        sensors = []
        firsts, lasts = [], []
        for s in self.sensors:
            c, src = counters.get(s.sensor_id), sources.get(s.sensor_id)
            running, walking = self._figures(s.sensor_id, "running"), self._figures(s.sensor_id, "walking")
            fs = float(_get(src, "fs_hz", _get(c, "fs_hz")))
            samples = int(_get(c, "samples", 0) or _get(src, "samples", 0) or 0)
            first, last = float(_get(src, "first_t_s")), float(_get(src, "last_t_s"))
            if math.isfinite(first) and math.isfinite(last):
                duration = last - first
                firsts.append(first)
                lasts.append(last)
            else:
                duration = samples / fs if fs > 0 else math.nan
            gaps = _get(src, "gaps", None)
            gaps = int(gaps) if gaps is not None else int(_get(c, "gaps", 0))
            gap_s = float(_get(src, "gap_s", _get(c, "gap_s", 0.0)))
            rows = _get(src, "rows", None)
            sensors.append(SensorSummary(
                sensor_id=s.sensor_id, side=s.side, placement=s.placement, athlete=s.athlete,
                steps=running.steps + walking.steps, running=running, walking=walking,
                duration_s=duration, samples=samples, fs_hz=fs,
                effective_fs_hz=float(_get(src, "effective_fs_hz")),
                has_gyro=_get(c, "has_gyro", None),
                gaps=gaps, gap_s=gap_s, filled_samples=int(_get(src, "filled_samples", 0)),
                rows=None if rows is None else int(rows),
            ))
        sides = []
        for side in SIDES:
            on_side = [x for x in sensors if x.side == side]
            if not on_side:
                continue
            main = next((x for x in on_side if x.placement == "foot"), on_side[0])
            sides.append(SideSummary(side=side, sensor_id=main.sensor_id, sensors=tuple(x.sensor_id for x in on_side),
                                     steps=main.steps, duration_s=main.duration_s, running=main.running,
                                     walking=main.walking))
        if firsts:
            duration = max(lasts) - min(firsts)
        else:
            duration = max((x.duration_s for x in sensors if math.isfinite(x.duration_s)), default=math.nan)
        start = datetime.fromtimestamp(self.session.start_wall_ns / 1e9, tz=timezone.utc)
        return SessionSummary(
            session_id=self.session.session_id, athlete=self.session.athlete,
            start_utc=start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            duration_s=duration, status=status, error=error, sensors=tuple(sensors), sides=tuple(sides),
            extra=dict(extra or {}),
        )


def _f(v: float, fmt: str) -> str:
    return format(v, fmt) if v is not None and math.isfinite(v) else "-"


def format_table(summary: SessionSummary) -> str:
    """A readable console table: one row per sensor, then one per side."""
    s = summary
    head = f"session {s.session_id}"
    if s.athlete:
        head += f"  athlete {s.athlete}"
    head += f"  start {s.start_utc}  duration {_f(s.duration_s, '.1f')} s"
    if s.status != "complete":
        head += f"  [{s.status.upper()}{': ' + s.error if s.error else ''}]"
    cols = ["sensor", "side", "placement", "dur_s", "steps run/walk", "cadence_spm", "contact_ms", "flight_ms",
            "fs_hz", "eff_fs_hz", "gaps", "filled"]
    rows = []
    for x in s.sensors:
        _, fig = x.main
        rows.append([x.sensor_id, x.side, x.placement, _f(x.duration_s, ".1f"),
                     f"{x.running.steps}/{x.walking.steps}", _f(fig.cadence_spm_median, ".1f"),
                     _f(fig.contact_ms_median, ".0f"), _f(fig.flight_ms_median, ".0f"), _f(x.fs_hz, ".1f"),
                     _f(x.effective_fs_hz, ".1f"), str(x.gaps), str(x.filled_samples)])
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    right = set(range(3, len(cols)))

    def line(vals):
        return "  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(vals, widths))).rstrip()

    out = [head, line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows]
    if s.sides:
        out.append("")
        out.append("per side (medians; running steps if any, else walking; foot sensor preferred):")
        for sd in s.sides:
            act, fig = ("running", sd.running) if sd.running.steps or not sd.walking.steps else ("walking", sd.walking)
            out.append(f"  {sd.side:<5}  {sd.sensor_id}: {sd.steps} steps ({sd.running.steps} running) "
                       f"in {_f(sd.duration_s, '.1f')} s, "
                       f"{act} cadence {_f(fig.cadence_spm_median, '.1f')} spm, "
                       f"contact {_f(fig.contact_ms_median, '.0f')} ms, flight {_f(fig.flight_ms_median, '.0f')} ms")
    return "\n".join(out)
