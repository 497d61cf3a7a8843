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
from functools import lru_cache
from itertools import chain
from operator import truediv

import numpy as np

from detectors._jit import njit

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
    """The steps of one open window, kept as rows of numeric fields; the statistics are
    computed column-wise in one compiled pass when the window finishes (instead of Python
    work per field and step: the sink adds every step of a run)."""

    __slots__ = ("k", "steps", "groups", "sensor", "_names", "_rows")

    def __init__(self, k: int, sensor: SensorInfo):
        self.k = k
        self.sensor = sensor
        self.steps = 0
        self.groups: dict[tuple[str, ...], list[tuple[float, ...]]] = {}  # field names -> rows of values
        self._names: tuple[str, ...] | None = None  # the last group (steps of a sensor share one)
        self._rows: list = []

    def add_row(self, names: tuple[str, ...], values: tuple[float, ...]) -> None:
        self.steps += 1
        if names is not self._names:
            self._names = names
            self._rows = self.groups.setdefault(names, [])
        self._rows.append(values)

    def add(self, record: StepRecord, fields: dict | None = None) -> None:
        items = [(k, v) for k, v in (fields if fields is not None else schema.step_fields(record)).items()
                 if type(v) is float]
        self.add_row(tuple(k for k, _ in items), tuple(v for _, v in items))

    def finish(self, window_s: float) -> WindowAggregate:
        if len(self.groups) == 1:  # the usual case: every step of the window has the same fields
            ((names, rows),) = self.groups.items()
            names, totals, counts, mins, maxs = _column_stats(names, rows)
            stats = tuple(zip(names, map(truediv, totals, counts), mins, maxs))
        else:
            acc: dict[str, list] = {}  # name -> [sum, count, min, max]
            for names, rows in self.groups.items():
                for name, total, n, lo, hi in zip(*_column_stats(names, rows)):
                    a = acc.get(name)
                    if a is None:
                        acc[name] = [total, n, lo, hi]
                    else:
                        a[0] += total
                        a[1] += n
                        a[2] = min(a[2], lo)
                        a[3] = max(a[3], hi)
            stats = tuple((n, a[0] / a[1], a[2], a[3]) for n, a in acc.items())
        return WindowAggregate(self.sensor, self.k * window_s, window_s, self.steps, stats)


def _column_stats(names: tuple[str, ...], rows: list[tuple[float, ...]]) -> tuple[list, ...]:
    """Names, sums, counts, minima and maxima of the aggregated columns over their finite
    values (a column without any finite value is left out), in one compiled pass over the
    window's rows (the sink aggregates every step of a run; per-column Python calls cost
    ~40 us per window)."""
    idx, names, idx_arr = _aggregated(names)
    n_rows, n_cols = len(rows), len(rows[0]) if rows else 0
    values = np.fromiter(chain.from_iterable(rows), np.float64, n_rows * n_cols)
    sums, counts, mins, maxs = _finite_column_stats(values, n_rows, n_cols, idx_arr)
    out = [list(names), sums.tolist(), counts.tolist(), mins.tolist(), maxs.tolist()]
    if 0 in out[2]:
        keep = [i for i, c in enumerate(out[2]) if c]
        out = [[column[i] for i in keep] for column in out]
    return tuple(out)


@njit
def _finite_column_stats(values, n_rows, n_cols, idx):
    """Per column ``idx[c]`` of the row-major ``values`` (n_rows x n_cols): sum (in row
    order, from -0.0, as Python's ``sum``), count, min and max of its finite values (the first
    of equal extremes, as ``min``/``max``)."""
    n = idx.shape[0]
    sums = np.zeros(n)
    counts = np.zeros(n, dtype=np.int64)
    mins = np.zeros(n)
    maxs = np.zeros(n)
    for c in range(n):
        j = idx[c]
        s = -0.0
        k = 0
        lo = 0.0
        hi = 0.0
        for r in range(n_rows):
            v = values[r * n_cols + j]
            if v - v == 0.0:  # finite
                s += v
                if k == 0:
                    lo = v
                    hi = v
                elif v < lo:
                    lo = v
                elif v > hi:
                    hi = v
                k += 1
        sums[c] = s
        counts[c] = k
        mins[c] = lo
        maxs[c] = hi
    return sums, counts, mins, maxs


@lru_cache(maxsize=1024)
def _aggregated(names: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[str, ...], np.ndarray]:
    """Positions and names of the fields that windows aggregate (not ic_s/to_s/segment)."""
    skip = schema.STEP_NON_AGGREGATED
    idx = tuple(j for j, n in enumerate(names) if n not in skip)
    return idx, tuple(names[j] for j in idx), np.array(idx, dtype=np.int64)


class WindowAggregator:
    """Fixed, session-time-aligned windows per sensor (``window_s`` seconds, > 0)."""

    def __init__(self, *, window_s: float = schema.DEFAULT_WINDOW_S):
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
        self.window_s = float(window_s)
        self._open: dict[str, _Acc] = {}

    def update(
        self,
        records: Iterable[StepRecord],
        fields: Iterable[dict] | None = None,
        *,
        rows: Iterable[tuple[tuple[str, ...], tuple[float, ...]]] | None = None,
    ) -> list[WindowAggregate]:
        """Add records. Optional, parallel to ``records``: ``fields``, their
        :func:`pipeline.schema.step_fields`, or ``rows``, their numeric fields as
        ``(names, values)`` (what :meth:`pipeline.lineprotocol.SessionEncoder.steps` gives),
        if the caller computed them already."""
        out: list[WindowAggregate] = []
        window_s = self.window_s
        if rows is not None and fields is None:  # the sink's path, kept lean (every step of a run)
            open_ = self._open
            for r, (names, values) in zip(records, rows, strict=True):
                if not isinstance(r, StepRecord):
                    continue
                k = math.floor(r.step.ic_s / window_s)
                acc = open_.get(r.sensor.sensor_id)
                if acc is None or acc.k != k:
                    if acc is not None:
                        out.append(acc.finish(window_s))
                    acc = open_[r.sensor.sensor_id] = _Acc(k, r.sensor)
                acc.steps += 1
                if names is not acc._names:
                    acc._names = names
                    acc._rows = acc.groups.setdefault(names, [])
                acc._rows.append(values)
            return out
        fields_it = iter(fields) if fields is not None else None
        rows_it = iter(rows) if rows is not None else None
        for r in records:
            f = next(fields_it) if fields_it is not None else None
            row = next(rows_it) if rows_it is not None else None
            if not isinstance(r, StepRecord):
                continue
            k = math.floor(r.step.ic_s / window_s)
            sid = r.sensor.sensor_id
            acc = self._open.get(sid)
            if acc is not None and acc.k != k:
                out.append(acc.finish(window_s))
                acc = None
            if acc is None:
                acc = self._open[sid] = _Acc(k, r.sensor)
            if row is not None:
                acc.add_row(*row)
            else:
                acc.add(r, f)
        return out

    def flush(self) -> list[WindowAggregate]:
        out = [acc.finish(self.window_s) for acc in self._open.values()]
        self._open.clear()
        return out

    def reset(self) -> None:
        self._open.clear()


def warm_up() -> None:
    """Load the compiled kernel now (from numba's cache, once per process)."""
    _finite_column_stats(np.zeros(2), 1, 2, np.array([1], dtype=np.int64))
