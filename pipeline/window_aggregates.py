"""Windowed aggregates of step records (the ``gait_window`` measurement), streaming.

Each sensor's steps are grouped into fixed windows of session time
``[k * window_s, (k + 1) * window_s)`` by their initial contact; a window is finished when
the first step of a later window arrives (or at ``flush()``). Per window: the number of
steps and mean/min/max of every numeric step field (NaN/inf values are left out of the
statistics; a field with no finite value in the window is not reported). Windows without
steps are not emitted.

Follows the streaming contract (DESIGN.md): ``update(records) -> finished windows``,
``flush()``, ``reset()``; memory is bounded by one window of steps per sensor. The output
depends only on each sensor's sequence of records, not on how they were split into calls.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline import schema
from pipeline.records import SensorInfo, StepRecord


@dataclass(frozen=True, slots=True)
class WindowAggregate:
    """One finished window of one sensor. ``stats``: ``(field, mean, min, max)`` rows."""

    sensor: SensorInfo
    start_s: float
    window_s: float
    steps: int
    stats: tuple[tuple[str, float, float, float], ...]

    def fields(self) -> dict[str, float]:
        out: dict[str, float] = {schema.FIELD_WINDOW_STEPS: float(self.steps), schema.FIELD_WINDOW_S: self.window_s}
        for name, mean, lo, hi in self.stats:
            out[schema.window_field(name, "mean")] = mean
            out[schema.window_field(name, "min")] = lo
            out[schema.window_field(name, "max")] = hi
        return out


class _Acc:
    """Running sum/count/min/max per field of one open window."""

    __slots__ = ("k", "steps", "stats", "sensor")

    def __init__(self, k: int, sensor: SensorInfo):
        self.k = k
        self.sensor = sensor
        self.steps = 0
        self.stats: dict[str, list] = {}  # name -> [sum, count, min, max]

    def add(self, record: StepRecord, fields: dict | None = None) -> None:
        self.steps += 1
        skip = schema.STEP_NON_AGGREGATED
        stats = self.stats
        for name, v in (fields if fields is not None else schema.step_fields(record)).items():
            if type(v) is not float or v - v != 0.0 or name in skip:  # strings, NaN, inf
                continue
            a = stats.get(name)
            if a is None:
                stats[name] = [v, 1, v, v]
                continue
            a[0] += v
            a[1] += 1
            if v < a[2]:
                a[2] = v
            elif v > a[3]:
                a[3] = v

    def finish(self, window_s: float) -> WindowAggregate:
        stats = tuple((n, a[0] / a[1], a[2], a[3]) for n, a in self.stats.items())
        return WindowAggregate(self.sensor, self.k * window_s, window_s, self.steps, stats)


class WindowAggregator:
    """Fixed, session-time-aligned windows per sensor (``window_s`` seconds, > 0)."""

    def __init__(self, *, window_s: float = schema.DEFAULT_WINDOW_S):
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
        self.window_s = float(window_s)
        self._open: dict[str, _Acc] = {}

    def update(self, records: Iterable[StepRecord], fields: Iterable[dict] | None = None) -> list[WindowAggregate]:
        """Add records; ``fields`` (optional, parallel to ``records``) are their
        :func:`pipeline.schema.step_fields`, if the caller computed them already."""
        out: list[WindowAggregate] = []
        fields_it = iter(fields) if fields is not None else None
        for r in records:
            f = next(fields_it) if fields_it is not None else None
            if not isinstance(r, StepRecord):
                continue
            k = math.floor(r.step.ic_s / self.window_s)
            sid = r.sensor.sensor_id
            acc = self._open.get(sid)
            if acc is not None and acc.k != k:
                out.append(acc.finish(self.window_s))
                acc = None
            if acc is None:
                acc = self._open[sid] = _Acc(k, r.sensor)
            acc.add(r, f)
        return out

    def flush(self) -> list[WindowAggregate]:
        out = [acc.finish(self.window_s) for acc in self._open.values()]
        self._open.clear()
        return out

    def reset(self) -> None:
        self._open.clear()
