"""In-run form cues: per-step metrics -> a few alerts a runner can act on.

Each rule (TOML ``[[alerts.rules]]``, shipped defaults in ``defaults.toml``) watches one
metric of one sensor's running steps on a short moving average (5 steps by default: the
window of tibial-shock biofeedback, Crowell & Davis 2011, Clin. Biomech. 26:78). It fires
when the average has been beyond ``threshold`` for ``min_steps`` consecutive steps and
clears only once the average is back beyond ``clear`` (hysteresis), so a value hovering
at the threshold does not flicker. A rule is *absolute*, or *relative* to the runner's own
baseline: ``relative_to = "run"`` (median of the first ``baseline_s`` of running, after
``baseline_skip_s`` of warm-up) or ``"history"`` (the athlete's stored median from earlier
sessions, falling back to the run baseline); a relative threshold is a ratio
(1.2 = 20 % above baseline).

Left/right imbalance watches the symmetry indices of ``detectors.form.asymmetry``
(``contact_si_pct``: Robinson et al. 1987) with ``magnitude = true`` (the index is signed);
both sensors of a pair carry it, so such a rule keeps one state per pair.

Messages are format strings; they may use ``{value}``, ``{threshold}``, ``{baseline}``,
``{cadence}`` (current step rate) and ``{cadence_target}`` (5 % more: Heiderscheit et al.
2011, Med. Sci. Sports Exerc. 43:296, the usual cue against overstriding).

Streaming contract: ``update(StepRecord) -> list[Alert]``, ``flush()``, ``reset()``.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.records import CLEARED, Alert, StepRecord

STEP_FIELDS = ("contact_ms", "flight_ms", "cadence_spm")
# Metric names of issue 3 (detectors/form); the registry's own lists are added at run time.
FORM_METRICS = (
    "pta_g", "impact_g", "impact_rate_gps", "braking_g", "strike_angle_deg", "shank_angle_ic_deg",
    "pronation_excursion_deg", "pronation_velocity_dps", "foot_progression_deg", "stride_length_m",
    "speed_mps", "swing_height_m",
)
RULE_KEYS = {
    "name": str, "metric": str, "op": str, "threshold": float, "clear": float, "min_steps": int,
    "relative_to": str, "severity": str, "message": str, "placement": str, "window_steps": int,
    "magnitude": bool,
}
REQUIRED = ("name", "metric", "threshold", "message")


def known_metrics() -> set[str]:
    """Every metric name a rule may watch."""
    from detectors.form import asymmetry
    from pipeline import metrics  # the per-step metric registry (issue 3)

    names = set(STEP_FIELDS) | set(FORM_METRICS) | set(asymmetry.NAMES)
    for group in metrics.NAMES.values():
        names |= set(group)
    return names


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    threshold: float
    message: str
    op: str = "above"
    clear: float | None = None
    min_steps: int = 3
    relative_to: str = ""
    severity: str = "warning"
    placement: str = ""
    window_steps: int = 0  # 0: the [alerts] default
    magnitude: bool = False  # watch |value| (signed symmetry indices)

    @property
    def clear_level(self) -> float:
        if self.clear is not None:
            return self.clear
        # default hysteresis: 5 % of the threshold back towards safety
        return self.threshold * (0.95 if self.op == "above" else 1.05)

    def beyond(self, x: float, level: float) -> bool:
        return x > level if self.op == "above" else x < level


def parse_rules(raw: Iterable[Mapping[str, Any]], *, where: str = "[[alerts.rules]]") -> list[Rule]:
    """Validate rule tables: unknown keys, wrong types and unknown metrics are errors.

    Valid rule sets are parsed once per process and content (``_parsed_rules``; Rule is
    frozen, each call gets its own list): validating the shipped rules (~70 us, ~160 us
    after a GC) is otherwise a fixed cost of every engine. Tables with values that are not
    hashable (lists: always an error) and every error go through ``_parse_rules``."""
    raw, known = list(raw), known_metrics()
    try:
        key = (tuple(tuple((k, type(v), v) for k, v in table.items()) for table in raw), where, frozenset(known))
        hash(key)
    except (AttributeError, TypeError):  # not a table, or an unhashable value: parse (and report) as ever
        return _parse_rules(raw, where, known)
    return list(_parsed_rules(key))


@functools.lru_cache(maxsize=16)
def _parsed_rules(key) -> tuple[Rule, ...]:
    """``_parse_rules`` of the tables in ``key`` (as built by ``parse_rules``: each table's
    items in order with their types, so 1 and 1.0 or True stay apart); errors not cached."""
    tables, where, known = key
    return tuple(_parse_rules([{k: v for k, _, v in items} for items in tables], where, known))


def _parse_rules(raw: Iterable[Mapping[str, Any]], where: str, known) -> list[Rule]:
    rules = []
    for i, table in enumerate(raw):
        at = f"{where} #{i + 1}"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{at}: expected a table, got {type(table).__name__}")
        for key, value in table.items():
            if key not in RULE_KEYS:
                raise ConfigError(f"{at}: unknown key {key!r}; valid keys: {', '.join(sorted(RULE_KEYS))}")
            want = RULE_KEYS[key]
            ok = isinstance(value, want) or (want is float and isinstance(value, int) and not isinstance(value, bool))
            if not ok or (isinstance(value, bool) and want is not bool):
                raise ConfigError(f"{at}.{key}: expected {want.__name__}, got {type(value).__name__} {value!r}")
        for key in REQUIRED:
            if key not in table:
                raise ConfigError(f"{at}: missing key {key!r}")
        t = dict(table)
        if t["metric"] not in known:
            raise ConfigError(f"{at}.metric: unknown metric {t['metric']!r}; known: {', '.join(sorted(known))}")
        if t.get("op", "above") not in ("above", "below"):
            raise ConfigError(f"{at}.op: expected 'above' or 'below', got {t['op']!r}")
        if t.get("relative_to", "") not in ("", "run", "history"):
            raise ConfigError(f"{at}.relative_to: expected '', 'run' or 'history', got {t['relative_to']!r}")
        if t.get("placement", "") not in ("", "foot", "shank"):
            raise ConfigError(f"{at}.placement: expected '', 'foot' or 'shank', got {t['placement']!r}")
        if t.get("min_steps", 3) < 1 or t.get("window_steps", 0) < 0:
            raise ConfigError(f"{at}: min_steps must be >= 1 and window_steps >= 0")
        for k in ("threshold", "clear"):
            if k in t:
                t[k] = float(t[k])
        try:
            t["message"].format(value=1.0, threshold=1.0, baseline=1.0, cadence=1.0, cadence_target=1.0)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"{at}.message: bad placeholder {exc}; use {{value}}, {{threshold}}, "
                              f"{{baseline}}, {{cadence}}, {{cadence_target}}") from None
        rule = Rule(**t)
        if rule.beyond(rule.clear_level, rule.threshold):
            raise ConfigError(f"{at}.clear: {rule.clear_level} is beyond the threshold {rule.threshold} "
                              f"(hysteresis must clear on the safe side)")
        rules.append(rule)
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: rule names must be unique, got {names}")
    return rules


@dataclass
class _State:
    values: deque
    beyond_run: int = 0
    active: bool = False
    baseline: list[float] = field(default_factory=list)
    median: float = math.nan  # median of ``baseline`` when it held ``median_n`` values (computed once)
    median_n: int = -1


def metric_values(rec: StepRecord) -> dict[str, float]:
    """``{name: value}`` of a record's metrics (the first one of a name wins, as a scan would).
    Built once per record by the engine and shared by the rules."""
    return {m.name: m.value for m in reversed(rec.metrics)}  # reversed: the first of a name is set last


class _Check:
    """One rule as it applies to one sensor: its state (shared by a left/right pair) and
    the rule's figures looked up once instead of per step."""

    __slots__ = ("rule", "state", "step_field", "both", "above", "magnitude", "relative", "window", "metric")

    def __init__(self, rule: Rule, state: _State, both: bool, window: int):
        self.rule, self.state, self.both, self.window = rule, state, both, window
        self.metric = rule.metric
        self.step_field = rule.metric if rule.metric in STEP_FIELDS else ""
        self.above = rule.op == "above"
        self.magnitude = rule.magnitude
        self.relative = bool(rule.relative_to)


class FormCues:
    """Evaluates the rules on every sensor's running steps (see module doc).

    Per step the cost is a few dict lookups and a 5-value mean per rule: the rules that
    apply to a sensor are resolved once (:class:`_Check`), and a run baseline's median is
    computed once when the baseline is complete (absolute rules only need it for a message).
    """

    def __init__(self, *, rules: list[Rule], window_steps: int = 5, baseline_skip_s: float = 30.0,
                 baseline_s: float = 120.0, history_baselines: Mapping[str, float] | None = None):
        if window_steps < 1:
            raise ValueError("window_steps must be >= 1")
        self.rules = rules
        self.window_steps = window_steps
        self.baseline_skip_s = baseline_skip_s
        self.baseline_s = baseline_s
        self.history_baselines = dict(history_baselines or {})
        self.reset()

    @classmethod
    def from_config(cls, config: Config, *, history_baselines: Mapping[str, float] | None = None) -> "FormCues":
        a = config.section("alerts")
        return cls(rules=parse_rules(a["rules"]), window_steps=a["window_steps"],
                   baseline_skip_s=a["baseline_skip_s"], baseline_s=a["baseline_s"],
                   history_baselines=history_baselines)

    def reset(self) -> None:
        self._states: dict[tuple[str, str], _State] = {}
        self._first_run_s: float | None = None
        self._cadence: dict[str, deque] = {}
        self._checks: dict[tuple[str, str], list[_Check]] = {}  # (sensor id, placement) -> its rules

    def flush(self) -> list[Alert]:
        return []

    def _checks_for(self, sensor_id: str, placement: str) -> list[_Check]:
        checks = []
        for rule in self.rules:
            if rule.placement and rule.placement != placement:
                continue
            both = rule.metric.endswith("_si_pct")  # a left/right index: one state per pair
            key = (rule.name, "pair:" + placement if both else sensor_id)
            s = self._states.get(key)
            if s is None:
                s = self._states[key] = _State(deque(maxlen=rule.window_steps or self.window_steps))
            checks.append(_Check(rule, s, both, s.values.maxlen))
        self._checks[(sensor_id, placement)] = checks
        return checks

    def update(self, rec: StepRecord, values: Mapping[str, float] | None = None) -> list[Alert]:
        """``values``: :func:`metric_values` of ``rec`` if the caller has it already."""
        st = rec.step
        if st.activity != "running":
            return []
        if self._first_run_s is None:
            self._first_run_s = st.ic_s
        elapsed = st.ic_s - self._first_run_s
        in_baseline = self.baseline_skip_s <= elapsed < self.baseline_skip_s + self.baseline_s
        sensor = rec.sensor
        sid = sensor.sensor_id
        cad = self._cadence.get(sid)
        if cad is None:
            cad = self._cadence[sid] = deque(maxlen=self.window_steps)
        cadence = st.cadence_spm
        if math.isfinite(cadence):
            cad.append(cadence)
        checks = self._checks.get((sid, sensor.placement))
        if checks is None:
            checks = self._checks_for(sid, sensor.placement)
        if values is None:
            values = metric_values(rec)
        out: list[Alert] = []
        nan = math.nan
        for c in checks:
            x = getattr(st, c.step_field) if c.step_field else values.get(c.metric, nan)
            if type(x) is not float:
                x = float(x)
            if c.magnitude:
                x = abs(x)
            if not x - x == 0.0:  # NaN or infinite (math.isfinite without the call)
                continue
            rule = c.rule
            s = c.state
            if in_baseline:
                s.baseline.append(x)
            vals = s.values
            vals.append(x)
            if len(vals) < c.window:
                continue
            if c.relative:
                baseline = self._baseline(rule, s, elapsed)
                if baseline is None:
                    continue  # relative rule before its baseline exists
                scale = baseline
            else:
                baseline = None  # only a message may show it: looked up when an alert is raised
                scale = 1.0
            avg = sum(vals) / len(vals)  # 5 values: plain Python beats a numpy call
            if not s.active:
                level = rule.threshold * scale
                s.beyond_run = s.beyond_run + 1 if (avg > level if c.above else avg < level) else 0
                if s.beyond_run >= rule.min_steps:
                    s.active = True
                    if not c.relative:
                        baseline = self._baseline(rule, s, elapsed)
                    out.append(self._alert(rule, rec, avg, level, baseline, cad, fired=True, both=c.both))
            else:
                clear = rule.clear_level * scale
                if not (avg > clear if c.above else avg < clear):
                    s.active = False
                    s.beyond_run = 0
                    if not c.relative:
                        baseline = self._baseline(rule, s, elapsed)
                    out.append(self._alert(rule, rec, avg, clear, baseline, cad, fired=False, both=c.both))
        return out

    def _baseline(self, rule: Rule, s: _State, elapsed: float) -> float | None:
        if rule.relative_to == "history" and rule.metric in self.history_baselines:
            return self.history_baselines[rule.metric]
        if elapsed < self.baseline_skip_s + self.baseline_s or len(s.baseline) < self.window_steps:
            return None
        if s.median_n != len(s.baseline):  # the baseline is complete: computed once, not every step
            s.median, s.median_n = float(np.median(s.baseline)), len(s.baseline)
        return s.median

    @staticmethod
    def _alert(rule: Rule, rec: StepRecord, value: float, threshold: float, baseline: float | None,
               cad: deque, *, fired: bool, both: bool = False) -> Alert:
        cadence = sum(cad) / len(cad) if cad else math.nan
        if fired:
            text = rule.message.format(value=value, threshold=threshold, baseline=baseline or math.nan,
                                       cadence=cadence, cadence_target=cadence * 1.05)
        else:
            text = f"Back in range: {rule.name.replace('_', ' ')} ({value:.3g})."
        return Alert(rule=rule.name, severity=rule.severity if fired else CLEARED, value=value,
                     threshold=threshold, t_s=rec.step.ic_s, message=text,
                     sensor_id="left+right" if both else rec.sensor.sensor_id, athlete=rec.sensor.athlete)
