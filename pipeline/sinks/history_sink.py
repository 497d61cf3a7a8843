"""Stores the finished session in the athlete's training history and prints the load rules'
verdicts (``--history``): running time, distance (sum of one foot's stride lengths when
measured) and mean impact go into a :class:`pipeline.history.SessionEntry`."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import TextIO

from pipeline.config import Config
from pipeline.history import History
from pipeline.records import Alert, StepRecord
from pipeline.training_load import evaluate, session_entry

IMPACT_METRICS = ("pta_g", "impact_g")


class HistorySink:
    def __init__(self, history: History, *, config: Config | None = None, stream: TextIO | None = None):
        self.history = history
        self.config = config
        self.stream = stream if stream is not None else sys.stdout
        self._stride_m: dict[str, float] = {}
        self._impact = [0.0, 0]
        self.verdicts = []

    def write(self, records: Sequence[StepRecord | Alert]) -> None:
        for r in records:
            if not isinstance(r, StepRecord) or r.step.activity != "running":
                continue
            for m in r.metrics:
                if not math.isfinite(m.value):
                    continue
                if m.name == "stride_length_m":
                    self._stride_m[r.sensor.sensor_id] = self._stride_m.get(r.sensor.sensor_id, 0.0) + m.value
                elif m.name in IMPACT_METRICS:
                    self._impact[0] += m.value
                    self._impact[1] += 1

    def close(self, summary=None) -> None:
        if summary is None:
            return
        extra = {"distance_m": max(self._stride_m.values()) if self._stride_m else math.nan,
                 "mean_impact_g": self._impact[0] / self._impact[1] if self._impact[1] else math.nan}
        entry = session_entry(summary, extra)
        self.history.add_session(entry)
        a = entry.athlete
        now = entry.start + timedelta(seconds=max(entry.duration_s, 0.0))
        self.verdicts = evaluate(self.history.sessions(a), self.history.checkins(a), now=now, config=self.config)
        store = getattr(self.history, "add_verdicts", None)
        if store is not None:  # InfluxHistory: gait_load points for the training-load dashboard
            store(a, self.verdicts, at=now, session_id=entry.session_id)
        for v in self.verdicts:
            if v.fired:
                print(f"LOAD    {v.rule}: {v.message}", file=self.stream)


def attach_history_baselines(engine, sinks, athlete: str) -> None:
    """Give rules with ``relative_to = "history"`` the athlete's stored baseline: the median
    of the mean impact of earlier sessions (for ``pta_g`` and ``impact_g``)."""
    for sink in sinks:
        if isinstance(sink, HistorySink) and athlete:
            vals = sorted(s.mean_impact_g for s in sink.history.sessions(athlete) if math.isfinite(s.mean_impact_g))
            if vals:
                med = vals[len(vals) // 2] if len(vals) % 2 else 0.5 * (vals[len(vals) // 2 - 1] + vals[len(vals) // 2])
                engine.cues.history_baselines.update({name: med for name in IMPACT_METRICS})
