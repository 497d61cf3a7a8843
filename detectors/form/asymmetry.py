"""Left/right asymmetry over a rolling window (two sensors of the same placement).

For every step of a left/right pair, symmetry indices (Robinson et al. 1987, J.
Manipulative Physiol. Ther. 10:172; used for running by Zifchock et al. 2008, Gait Posture
27:622)::

    SI = 100 * (L - R) / ((L + R) / 2)      [%]; 0 = symmetric, > 0 left larger

of the medians of the last ``window_steps`` steps of this side up to this step's IC and of
the other side up to ``partner_lag_s`` before it:
``contact_si_pct`` (contact time), ``impact_si_pct`` (``impact_g`` for feet, ``pta_g`` for
shanks) and ``stride_length_si_pct`` (feet). A symmetry difference above ~10 % is the
usual flag in running (Zifchock 2008 report 4-18 % for healthy runners by variable).

Chunk invariance without latency: steps of two sensors reach the engine in an order that
depends on the block size (a 3 s block of the left foot arrives before the right foot's).
A step uses the other side's steps up to ``partner_lag_s`` before its own IC and is *held*
only until the other side has emitted a step later than that (per-sensor steps come in IC
order, so the earlier ones are then all known): the output is the same for any split. Live,
the other foot's step of ~0.35-0.55 s earlier has long been emitted (step look-ahead
< 0.4 s running, ~0.7 s walking), so nothing waits and the step latency is unchanged.
Memory: at most ``max_hold_s`` of held steps (a silent other side releases them with
reason ``other_side_silent``); a sensor without a partner passes straight through (reason
``no_pair``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque

from pipeline.records import Metric, SensorInfo, StepRecord

NAMES = ("contact_si_pct", "impact_si_pct", "stride_length_si_pct")
IMPACT_METRIC = {"foot": "impact_g", "shank": "pta_g"}
_NO_MEDIANS = (math.nan, math.nan, math.nan)  # a window without a step


def symmetry_index(left: float, right: float) -> float:
    """Robinson's symmetry index in %: 100 (L - R) / mean(L, R); NaN when undefined."""
    mean = 0.5 * (left + right)
    if not (left - left == 0.0 and right - right == 0.0) or mean == 0:  # x - x == 0: finite
        return math.nan
    return 100.0 * (left - right) / mean


def _median(v) -> float:
    if type(v) is not tuple:
        v = tuple(v)  # any iterable (read twice below)
    t = sum(v)  # finite iff every value is (an overflow only sends it to the filter below)
    a = sorted(v) if t - t == 0.0 else sorted([x for x in v if x - x == 0.0])  # finite only; a few
    # values: plain Python beats numpy
    n = len(a)
    if not n:
        return math.nan
    return a[n // 2] if n % 2 else 0.5 * (a[n // 2 - 1] + a[n // 2])


class _History:
    """One side's last ``maxlen`` emitted steps as rows ``(ic_s, contact, impact, stride
    length)``, with the medians of a window of them.

    A window is the last ``n`` rows with ``ic_s <= t_s``: found by bisection on the IC times
    (a sensor's steps come in IC order; should one ever not, a plain scan is used), and its
    medians are kept for the next query of the same window (every window is asked for twice:
    by this side's step and by the other side's). Rows older than ``maxlen`` are not used,
    exactly as a ``deque(maxlen=maxlen)`` of them would forget them; the lists are trimmed in
    batches to stay within ``2 * maxlen``.
    """

    __slots__ = ("maxlen", "_ics", "_rows", "_base", "_sorted", "_cache")

    def __init__(self, maxlen: int):
        self.maxlen = maxlen
        self._ics: list[float] = []
        self._rows: list[tuple[float, float, float, float]] = []
        self._base = 0  # absolute number of the row at _rows[0]
        self._sorted = True
        self._cache: dict[tuple[int, int], tuple[float, float, float]] = {}

    def append(self, row: tuple[float, float, float, float]) -> None:
        if self._ics and row[0] < self._ics[-1]:
            self._sorted = False
        self._ics.append(row[0])
        self._rows.append(row)
        if len(self._rows) >= 2 * self.maxlen:
            cut = len(self._rows) - self.maxlen
            del self._ics[:cut], self._rows[:cut]
            self._base += cut
            self._cache.clear()

    def medians(self, t_s: float, n: int) -> tuple[float, float, float] | None:
        first = len(self._rows) - self.maxlen  # rows a deque(maxlen) would still hold
        if first < 0:
            first = 0
        if self._sorted:
            end = bisect_right(self._ics, t_s, first)
            start = end - n
            if start < first:
                start = first
            if end == start:
                return None
            base = self._base
            key = (base + start, base + end)
            got = self._cache.get(key)
            if got is None:
                _, contact, impact, stride = zip(*self._rows[start:end])
                got = (_median(contact), _median(impact), _median(stride))
                if len(self._cache) > 32:
                    self._cache.clear()
                self._cache[key] = got
            return got
        rows = [h for h in self._rows[first:] if h[0] <= t_s][-n:]
        if not rows:
            return None
        return _median([h[1] for h in rows]), _median([h[2] for h in rows]), _median([h[3] for h in rows])


class Symmetry:
    """Streaming left/right symmetry metrics (update/flush/reset) over StepRecords."""

    def __init__(self, sensors: list[SensorInfo], *, window_steps: int = 10, max_hold_s: float = 30.0,
                 partner_lag_s: float = 1.0):
        if window_steps < 1:
            raise ValueError(f"window_steps must be >= 1, got {window_steps}")
        if not max_hold_s > 0:
            raise ValueError(f"max_hold_s must be > 0, got {max_hold_s}")
        if not 0 <= partner_lag_s < max_hold_s:
            raise ValueError(f"partner_lag_s must be in [0, max_hold_s), got {partner_lag_s}")
        self.window_steps, self.max_hold_s, self.partner_lag_s = window_steps, max_hold_s, partner_lag_s
        self._partner: dict[str, str] = {}
        for placement in ("foot", "shank"):
            left = next((s.sensor_id for s in sensors if s.placement == placement and s.side == "left"), None)
            right = next((s.sensor_id for s in sensors if s.placement == placement and s.side == "right"), None)
            if left and right:
                self._partner[left], self._partner[right] = right, left
        self.reset()

    def reset(self) -> None:
        self._held: dict[str, deque[StepRecord]] = {sid: deque() for sid in self._partner}
        self._last_ic: dict[str, float] = {sid: -math.inf for sid in self._partner}
        self._closed: set[str] = set()
        self._hist = {sid: _History(4 * self.window_steps + 64) for sid in self._partner}
        self._where: dict[tuple[str, str], int] = {}  # (sensor, metric) -> its usual position in .metrics

    # -- history of emitted steps (ic_s, contact, impact, stride length), per side
    def _metric(self, r: StepRecord, name: str) -> float:
        """``r``'s value of metric ``name`` (NaN if absent): a sensor's metrics come in the
        same order every step, so the position found once is checked, not searched."""
        ms = r.metrics
        key = (r.sensor.sensor_id, name)
        i = self._where.get(key, -1)
        if 0 <= i < len(ms) and ms[i].name == name:
            return ms[i].value
        value = math.nan
        for i, m in enumerate(ms):  # the last one of a name, as a dict of the metrics would give
            if m.name == name:
                value = m.value
                self._where[key] = i
        return value

    def _remember(self, r: StepRecord) -> None:
        self._hist[r.sensor.sensor_id].append((
            r.step.ic_s, r.step.contact_ms, self._metric(r, IMPACT_METRIC[r.sensor.placement]),
            self._metric(r, "stride_length_m")))

    def _medians(self, sid: str, t_s: float) -> tuple[float, float, float] | None:
        """Medians of contact, impact and stride length over the last ``window_steps`` steps
        of ``sid`` up to ``t_s`` (None without such a step)."""
        return self._hist[sid].medians(t_s, self.window_steps)

    def _with_si(self, r: StepRecord, reason: str = "") -> StepRecord:
        sensor = r.sensor
        sid = sensor.sensor_id
        t_s = r.step.ic_s
        if not reason:
            mine = self._hist[sid].medians(t_s, self.window_steps) or _NO_MEDIANS
            other = self._hist[self._partner[sid]].medians(t_s - self.partner_lag_s, self.window_steps)
            if other is None:
                reason = "other_side_silent"
            else:
                lw, rw = (mine, other) if sensor.side == "left" else (other, mine)
                c, i = symmetry_index(lw[0], rw[0]), symmetry_index(lw[1], rw[1])
                if sensor.placement == "foot":
                    s = symmetry_index(lw[2], rw[2])
                    s_why = "" if s - s == 0.0 else "not_measurable"  # s - s == 0: finite
                else:
                    s, s_why = math.nan, "wrong_placement"
                # three Metrics written out: a generator over the names cost ~2 us per step
                return StepRecord(sensor, r.step, r.metrics + (
                    Metric(NAMES[0], c, "%", t_s, sid, "" if c - c == 0.0 else "not_measurable"),
                    Metric(NAMES[1], i, "%", t_s, sid, "" if i - i == 0.0 else "not_measurable"),
                    Metric(NAMES[2], s, "%", t_s, sid, s_why)))
        nan = math.nan
        return StepRecord(sensor, r.step, r.metrics + (
            Metric(NAMES[0], nan, "%", t_s, sid, reason), Metric(NAMES[1], nan, "%", t_s, sid, reason),
            Metric(NAMES[2], nan, "%", t_s, sid, reason)))

    def update(self, records: list[StepRecord]) -> list[StepRecord]:
        """Records in; the records whose symmetry is now known out (in arrival order of release)."""
        out: list[StepRecord] = []
        for r in records:
            sid = r.sensor.sensor_id
            partner = self._partner.get(sid)
            if partner is None:
                out.append(self._with_si(r, "no_pair"))
                continue
            self._remember(r)
            self._last_ic[sid] = r.step.ic_s
            self._held[sid].append(r)
            self._release(partner, out)  # the partner's held steps may now be known
            self._release(sid, out)
        return out

    def _release(self, sid: str, out: list[StepRecord]) -> list[StepRecord]:
        """Appends ``sid``'s held steps whose symmetry is now known (or that waited too long)
        to ``out``."""
        q, other = self._held[sid], self._partner[sid]
        if not q:
            return out
        closed = other in self._closed
        while q:
            r = q[0]
            ic = r.step.ic_s
            known = self._last_ic[other] > ic - self.partner_lag_s or closed
            if not (known or q[-1].step.ic_s - ic > self.max_hold_s):
                break
            q.popleft()
            out.append(self._with_si(r, "" if known else "other_side_silent"))
        return out

    def flush(self) -> list[StepRecord]:
        out: list[StepRecord] = []
        for sid in self._partner:
            self._closed.add(sid)
        for sid in self._partner:
            self._release(sid, out)
        return out
