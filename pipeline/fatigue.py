"""Fatigue drift: is the runner's form degrading compared with their own early run?

Per sensor, the running steps of the early run (``baseline_skip_s`` after the first running
step, for ``baseline_s``) form a baseline. Every step, the last ``window_s`` of running is
compared with it on four signs of fatigue reported for prolonged and exhausting runs:

* **duty factor** (contact / stride) up — contact time rises as runners tire (Hanley &
  Mohan 2014; Apte et al. 2021, Front. Sports Act. Living 3:692474). Using the duty factor
  instead of raw contact time corrects for cadence: contact time also changes when the
  runner simply changes pace or step rate;
* **impact** (``pta_g`` or ``impact_g``) up — tibial shock rises with fatigue (Clansey et
  al. 2012; Mizrahi et al. 2000, Clin. Biomech. 15:15). It is compared per unit of speed
  when ``speed_mps`` is measured (impact grows with speed);
* **cadence** down (Apte 2021);
* **stride-time variability** (coefficient of variation over 10 strides) up (Meardon et al.
  2011, Gait Posture 33:36).

A sign counts when its change is both practically large (``min_change`` per feature, the
order of changes reported at exhaustion) and clear of the noise (beyond 3 standard errors
of the window mean). Fatigue is raised when at least ``min_signs`` signs hold for
``sustain_s`` seconds of running, and re-armed only after they clear.

Streaming contract: ``update(StepRecord) -> list[Alert]``, ``flush()``, ``reset()``;
memory is bounded by ``window_s`` of steps per sensor.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from pipeline.config import Config
from pipeline.records import CLEARED, Alert, StepRecord

# feature -> (direction of fatigue, minimum relative change that matters)
FEATURES = {
    "duty_factor": (+1, 0.04),
    "impact": (+1, 0.10),
    "cadence_spm": (-1, 0.03),
    "stride_cv": (+1, 0.30),
}
MESSAGE = ("Your form is degrading ({signs}). Consider slowing down, walking for a while or "
           "stopping for today.")


@dataclass
class _Sensor:
    baseline: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in FEATURES})
    base_stats: dict[str, tuple[float, float]] | None = None
    window: deque = field(default_factory=deque)  # (t_s, feature dict)
    strides: deque = field(default_factory=lambda: deque(maxlen=10))
    sums: dict[str, float] = field(default_factory=lambda: {k: 0.0 for k in FEATURES})
    counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in FEATURES})
    since: float | None = None  # time the signs first held together
    active: bool = False


class FatigueDrift:
    """See the module docstring."""

    def __init__(self, *, baseline_skip_s: float = 60.0, baseline_s: float = 240.0, window_s: float = 120.0,
                 sustain_s: float = 60.0, min_signs: int = 2):
        for name, v in (("baseline_s", baseline_s), ("window_s", window_s)):
            if not v > 0:
                raise ValueError(f"{name} must be > 0, got {v}")
        if not 1 <= min_signs <= len(FEATURES):
            raise ValueError(f"min_signs must be in 1..{len(FEATURES)}, got {min_signs}")
        self.baseline_skip_s, self.baseline_s = baseline_skip_s, baseline_s
        self.window_s, self.sustain_s, self.min_signs = window_s, sustain_s, min_signs
        self.reset()

    @classmethod
    def from_config(cls, config: Config) -> "FatigueDrift":
        f = config.section("fatigue")
        return cls(baseline_skip_s=f["baseline_skip_s"], baseline_s=f["baseline_s"], window_s=f["window_s"],
                   sustain_s=f["sustain_s"], min_signs=f["min_signs"])

    def reset(self) -> None:
        self._sensors: dict[str, _Sensor] = {}
        self._first_s: float | None = None

    def flush(self) -> list[Alert]:
        return []

    @staticmethod
    def _metric(values: Mapping[str, float], name: str, other: str = "") -> float:
        """The first of ``name``, ``other`` with a finite value (NaN if none)."""
        v = values.get(name)
        if v is not None and v - v == 0.0:  # finite
            return float(v)
        if other:
            v = values.get(other)
            if v is not None and v - v == 0.0:
                return float(v)
        return math.nan

    def _features(self, rec: StepRecord, s: _Sensor, values: Mapping[str, float]) -> dict[str, float]:
        st = rec.step
        stride_s = st.stride_s
        finite_stride = stride_s - stride_s == 0.0  # math.isfinite without the call (~4 per step)
        if finite_stride:
            s.strides.append(stride_s)
        impact = self._metric(values, "pta_g", "impact_g")
        speed = self._metric(values, "speed_mps")
        if impact - impact == 0.0 and speed - speed == 0.0 and speed > 0.5:
            impact /= speed
        cv = math.nan
        if len(s.strides) == s.strides.maxlen:  # 10 values: plain Python beats two numpy calls
            m = sum(s.strides) / len(s.strides)
            cv = math.sqrt(sum([(x - m) ** 2 for x in s.strides]) / len(s.strides)) / m  # same order as a generator
        return {
            "duty_factor": st.contact_ms / 1e3 / stride_s if finite_stride else math.nan,
            "impact": impact,
            "cadence_spm": st.cadence_spm,
            "stride_cv": cv,
        }

    def update(self, rec: StepRecord, values: Mapping[str, float] | None = None) -> list[Alert]:
        """``values``: ``pipeline.alerts.metric_values(rec)`` if the caller has it already."""
        st = rec.step
        if st.activity != "running":
            return []
        if self._first_s is None:
            self._first_s = st.ic_s
        elapsed = st.ic_s - self._first_s
        s = self._sensors.get(rec.sensor.sensor_id)
        if s is None:
            s = self._sensors[rec.sensor.sensor_id] = _Sensor()
        if values is None:
            values = {}
            for m in rec.metrics:
                values.setdefault(m.name, m.value)
        feats = self._features(rec, s, values)
        if elapsed < self.baseline_skip_s:
            return []
        if elapsed < self.baseline_skip_s + self.baseline_s:
            for k, v in feats.items():
                if v - v == 0.0:  # finite
                    s.baseline[k].append(v)
            return []
        if s.base_stats is None:
            s.base_stats = {k: (float(np.mean(v)), float(np.std(v))) for k, v in s.baseline.items() if len(v) >= 20}
            s.baseline = {k: [] for k in FEATURES}  # no longer needed: keep memory bounded
        s.window.append((st.ic_s, feats))
        sums, counts = s.sums, s.counts
        for k, v in feats.items():
            if v - v == 0.0:  # finite
                sums[k] += v
                counts[k] += 1
        while s.window and s.window[0][0] < st.ic_s - self.window_s:
            _, old = s.window.popleft()
            for k, v in old.items():
                if v - v == 0.0:
                    sums[k] -= v
                    counts[k] -= 1
        if st.ic_s - self._first_s < self.baseline_skip_s + self.baseline_s + self.window_s:
            return []  # the window is not full yet
        signs = self.signs(s)
        if len(signs) >= self.min_signs:
            if s.since is None:
                s.since = st.ic_s
            if not s.active and st.ic_s - s.since >= self.sustain_s:
                s.active = True
                return [Alert(rule="fatigue", severity="warning", value=float(len(signs)),
                              threshold=float(self.min_signs), t_s=st.ic_s,
                              message=MESSAGE.format(signs=", ".join(signs)),
                              sensor_id=rec.sensor.sensor_id, athlete=rec.sensor.athlete)]
        else:
            s.since = None
            if s.active:
                s.active = False
                return [Alert(rule="fatigue", severity=CLEARED, value=float(len(signs)),
                              threshold=float(self.min_signs), t_s=st.ic_s,
                              message="Back in range: form is no longer degrading.",
                              sensor_id=rec.sensor.sensor_id, athlete=rec.sensor.athlete)]
        return []

    def signs(self, s: _Sensor) -> list[str]:
        """Names of the fatigue signs that hold for the current window."""
        out = []
        for k, (direction, min_change) in FEATURES.items():
            if not s.base_stats or k not in s.base_stats:
                continue
            mu, sd = s.base_stats[k]
            n = s.counts[k]
            if n < 20 or mu == 0:
                continue
            mean = s.sums[k] / n  # running sums over the window: O(1) per step
            change = (mean - mu) / abs(mu) * direction
            se = sd / math.sqrt(n)
            if change >= min_change and (mean - mu) * direction > 3.0 * se:
                out.append(_LABELS[k].format(pct=change * 100.0))
        return out


_LABELS = {
    "duty_factor": "ground contact up {pct:.0f} %",
    "impact": "impact up {pct:.0f} %",
    "cadence_spm": "cadence down {pct:.0f} %",
    "stride_cv": "stride rhythm {pct:.0f} % more irregular",
}
