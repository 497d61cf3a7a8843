"""Per-step form metrics: a plain dict registry of metric groups named from config.

Config (``[metrics]`` in ``defaults.toml``): ``enabled`` lists group names of
:data:`METRICS`; the other keys are the groups' parameters (thresholds in physical units).

Each group is a function ``(ctx) -> {name: (value, reason)}`` over a :class:`StepContext`
(the step, its sensor, the shared stance orientation, the stride samples when the
per-sensor buffer has them). Names carry their unit (``_deg``, ``_dps``, ``_g``, ``_gps``,
``_m``, ``_mps``, ``_pct``); a metric that does not apply to the placement is not emitted at
all (no column of foot metrics for a shank sensor's rows); a metric that applies but cannot
be measured on this step is NaN with a reason, counted in the session summary.

:func:`compute_metrics` is pure (step + sensor + config). :class:`MetricsChain` is the
per-sensor streaming wrapper the engine uses: it also keeps a bounded buffer of the
body-frame samples (``samples``), so that metrics spanning a whole stride (stride length,
speed, foot progression, swing height, the shank's stride-mean vertical) can integrate
from the previous step to this one. It follows update/flush/reset.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from detectors.form import Values, nan_all
from detectors.form import impact as _impact
from detectors.form import overstride as _overstride
from detectors.form import pronation as _pronation
from detectors.form import strike as _strike
from detectors.form import stride_length as _stride
from detectors.form.foot_stance import foot_stance
from detectors.form.orientation import Attitude, foot_stance_attitude
from pipeline.config import Config, load_config
from pipeline.records import Metric, SampleBlock, SensorInfo, Step

UNITS = (("_gps", "g/s"), ("_dps", "deg/s"), ("_deg", "deg"), ("_mps", "m/s"), ("_pct", "%"),
         ("_g", "g"), ("_m", "m"), ("_code", "code"), ("_clipped", "bool"))


_UNIT_OF: dict[str, str] = {}  # name -> unit, filled by unit_of (a name's unit never changes)


def unit_of(name: str) -> str:
    """The unit of a metric from its name's suffix (:data:`UNITS`); ValueError without one.
    Looked up once per name and process (~25 names, asked ~40 times per sensor and run)."""
    unit = _UNIT_OF.get(name)
    if unit is not None:
        return unit
    for suffix, unit in UNITS:
        if name.endswith(suffix):
            if type(name) is str:  # (a str subclass could compare equal to another name)
                _UNIT_OF[name] = unit
            return unit
    raise ValueError(f"metric name {name!r} has no unit suffix ({', '.join(s for s, _ in UNITS)})")


class StepContext:
    """What metric groups share for one step (orientation computed once, lazily).

    A plain slotted class with hand-written memos rather than a dataclass with
    ``functools.cached_property`` (which takes a lock per access in Python 3.11): one is
    built per step, and the metrics layer's budget is tens of microseconds per step."""

    __slots__ = ("step", "sensor", "params", "stride", "shank_axis_body", "sensor_rotation",
                 "_foot_att", "_shank_att", "_stride_values", "_foot_stance")

    def __init__(self, step: Step, sensor: SensorInfo, params: dict,
                 stride: _stride.StrideSamples | None = None, shank_axis_body: np.ndarray | None = None,
                 sensor_rotation: np.ndarray | None = None):
        self.step = step
        self.sensor = sensor
        self.params = params
        self.stride = stride  # samples from the previous step on (MetricsChain)
        self.shank_axis_body = shank_axis_body  # from a standing calibration (MetricsChain)
        self.sensor_rotation = sensor_rotation  # sensor -> body (alignment), for clipping from the signal
        self._foot_att = self._shank_att = self._stride_values = self._foot_stance = None

    @property
    def foot_attitude(self) -> tuple[Attitude | None, str]:
        if self._foot_att is None:
            self._foot_att = foot_stance_attitude(self.step, self.stride)
        return self._foot_att

    @property
    def shank_attitude(self) -> tuple[Attitude | None, str]:
        if self._shank_att is None:
            self._shank_att = _overstride.shank_stance_attitude(self.step, self.stride)
        return self._shank_att

    @property
    def stride_values(self) -> Values:
        """Foot stride metrics (computed once: impact uses their direction of travel)."""
        if self._stride_values is None:
            self._stride_values = _stride.stride_metrics(self.step, self.stride, side=self.sensor.side,
                                                         max_stride_s=self.params["max_stride_s"])
        return self._stride_values

    @property
    def travel_heading_rad(self) -> float:
        if self.sensor.placement != "foot":
            return math.nan
        return self.stride_values.get(_stride.TRAVEL_HEADING, (math.nan, ""))[0]

    @property
    def attitude(self) -> tuple[Attitude | None, str]:
        return self.foot_attitude if self.sensor.placement == "foot" else self.shank_attitude

    def foot_stance(self, att: Attitude) -> tuple:
        """A foot step's (impact, strike, pronation) Values from one compiled pass, once
        (:func:`detectors.form.foot_stance.foot_stance`; ``att`` is :attr:`foot_attitude`'s).
        Impact is None when its group would not measure it (a rate below
        ``impact_min_fs_hz``)."""
        if self._foot_stance is None:
            p = self.params
            want = not self.step.fs_hz < p["impact_min_fs_hz"]
            self._foot_stance = foot_stance(
                self.step, att, want_impact=want, acc_range_g=self.sensor.acc_range_g, window_s=p["impact_window_s"],
                clip_fraction=p["clip_fraction"], sensor_rotation=self.sensor_rotation,
                travel_heading_rad=self.travel_heading_rad if want else math.nan, side=self.sensor.side,
                rearfoot_min_deg=p["rearfoot_min_deg"], forefoot_max_deg=p["forefoot_max_deg"])
        return self._foot_stance


def _impact_group(ctx: StepContext) -> Values:
    p = ctx.params
    names = _impact.FOOT_NAMES if ctx.sensor.placement == "foot" else _impact.SHANK_NAMES
    if ctx.step.fs_hz < p["impact_min_fs_hz"]:
        return nan_all(names, "fs_too_low")
    att, why = ctx.attitude
    if att is not None and ctx.sensor.placement == "foot":  # shared with strike and pronation
        return ctx.foot_stance(att)[0]
    return _impact.impact(ctx.step, att, why, placement=ctx.sensor.placement, acc_range_g=ctx.sensor.acc_range_g,
                          axis_body=ctx.shank_axis_body, window_s=p["impact_window_s"],
                          clip_fraction=p["clip_fraction"], sensor_rotation=ctx.sensor_rotation,
                          travel_heading_rad=ctx.travel_heading_rad)


def _strike_group(ctx: StepContext) -> Values:
    if ctx.sensor.placement != "foot":
        return {}
    att, why = ctx.foot_attitude
    if att is not None:
        return ctx.foot_stance(att)[1]
    p = ctx.params
    return _strike.strike(ctx.step, att, why, rearfoot_min_deg=p["rearfoot_min_deg"],
                          forefoot_max_deg=p["forefoot_max_deg"])


def _pronation_group(ctx: StepContext) -> Values:
    if ctx.sensor.placement != "foot":
        return {}
    att, why = ctx.foot_attitude
    if att is not None:
        return ctx.foot_stance(att)[2]
    return _pronation.pronation(ctx.step, att, why, side=ctx.sensor.side)


def _overstride_group(ctx: StepContext) -> Values:
    if ctx.sensor.placement != "shank":
        return {}
    att, why = ctx.shank_attitude
    return _overstride.shank_angle(ctx.step, att, why, axis_body=ctx.shank_axis_body)


def _stride_group(ctx: StepContext) -> Values:
    if ctx.sensor.placement != "foot":
        return {}
    return ctx.stride_values


#: The registry: config name -> metric group.
METRICS: dict[str, Callable[[StepContext], Values]] = {
    "impact": _impact_group,
    "strike": _strike_group,
    "pronation": _pronation_group,
    "overstride": _overstride_group,
    "stride": _stride_group,
}
#: Every metric name of each group, in column order. Each record carries all names of the
#: enabled groups (NaN, reason ``wrong_placement``, where the placement cannot measure
#: it), so steps.csv has the same columns in the same order whichever sensor's step
#: arrives first (byte-identical output for any block size).
NAMES: dict[str, tuple[str, ...]] = {
    "impact": tuple(dict.fromkeys(_impact.FOOT_NAMES[:1] + _impact.SHANK_NAMES[:2] + _impact.FOOT_NAMES[1:])),
    "strike": _strike.NAMES,
    "pronation": _pronation.NAMES,
    "overstride": _overstride.NAMES,
    "stride": _stride.NAMES,
}


def _check(params: dict) -> dict:
    unknown = [n for n in params["enabled"] if n not in METRICS]
    if unknown:
        raise ValueError(f"[metrics] enabled: unknown {unknown}; known: {', '.join(METRICS)}")
    return params


_WRONG_PLACEMENT = (math.nan, "wrong_placement")


def _plan(enabled) -> tuple:
    """Per enabled group: its function and its (name, unit) pairs in column order, resolved
    once (the per-step loop then does no registry or unit-suffix look-ups)."""
    return tuple((METRICS[g], tuple((name, unit_of(name)) for name in NAMES[g])) for g in dict.fromkeys(enabled))


_PLANS: dict[tuple, tuple] = {}  # (groups, their registry entries) -> _plan(groups)


def _plan_of(enabled) -> tuple:
    """:func:`_plan` once per process and group list (a fixed cost of every sensor's chain,
    ~15 us after a GC). Keyed by the groups and what the registry holds for them (function
    and names), so a changed registry gives a new plan; unknown groups are not cached
    (KeyError as from :func:`_plan`)."""
    groups = tuple(enabled)
    key = (groups, tuple((METRICS.get(g), NAMES.get(g)) for g in groups))
    plan = _PLANS.get(key)
    if plan is None:
        plan = _plan(groups)
        _PLANS[key] = plan
    return plan


def _run(ctx: StepContext, plan: tuple | None = None) -> tuple[Metric, ...]:
    step = ctx.step
    t_s, sid = step.ic_s, step.sensor_id
    out = []
    append = out.append  # ~16 Metrics per step: records-speed
    for group, names in plan if plan is not None else _plan(ctx.params["enabled"]):
        got = group(ctx)
        for name, unit in names:
            v, reason = got.get(name, _WRONG_PLACEMENT)
            if type(v) is not float:
                v = float(v)
            append(Metric(name, v, unit, t_s, sid,
                          "" if v - v == 0.0 else (reason or "not_measurable")))  # v - v == 0: finite
    return tuple(out)


def compute_metrics(step: Step, sensor: SensorInfo, config: Config | None = None) -> tuple[Metric, ...]:
    """The per-step metrics of one step from the step alone (no stride samples: the
    stride-spanning metrics are NaN with reason ``no_stride_samples``)."""
    params = _check((config or load_config()).section("metrics"))
    return _run(StepContext(step=step, sensor=sensor, params=params))


class MetricsChain:
    """Per-sensor metrics with a bounded buffer of body-frame samples (update/flush/reset).

    ``samples(block)`` is fed every body-frame block before the steps found in it are
    passed to ``update(step)``; the buffer keeps whole blocks covering at least
    ``buffer_s`` seconds (so a stride's samples are there whatever the block size), and is
    cut back at every step to the samples the next stride needs.
    """

    def __init__(self, sensor: SensorInfo, config: Config | None = None, *,
                 sensor_rotation: Callable[[], np.ndarray | None] | None = None):
        """``sensor_rotation``: returns the alignment's sensor -> body rotation (or None),
        so clipping can be found in the sensor frame when the range is unknown."""
        self.sensor = sensor
        self._sensor_rotation = sensor_rotation
        self.params = _check((config or load_config()).section("metrics"))
        self._plan = _plan_of(self.params["enabled"])
        self._buffer = _stride.SampleBuffer(buffer_s=self.params["buffer_s"])
        self._pending_reset = False
        self._calibration = _overstride.StandingCalibration(
            min_still_s=self.params["standing_min_s"]) if sensor.placement == "shank" else None

    def samples(self, block: SampleBlock) -> None:
        if not self._plan:  # no metric group enabled (events only): nothing reads the samples
            return
        if self._pending_reset:
            self._reset_now()
        self._buffer.append(block)
        if self._calibration is not None:
            self._calibration.update(block)

    def update(self, step: Step) -> tuple[Metric, ...]:
        if not self._plan:  # events only: no metrics, so no stride samples to find or trim (~5 us a step)
            return ()
        stride = self._buffer.stride(step, max_stride_s=self.params["max_stride_s"])
        axis = self._calibration.axis_body if self._calibration is not None else None
        rot = self._sensor_rotation() if self._sensor_rotation is not None else None
        out = _run(StepContext(step=step, sensor=self.sensor, params=self.params, stride=stride,
                               shank_axis_body=axis, sensor_rotation=rot), self._plan)
        self._buffer.keep_from_step(step)
        return out

    def flush(self) -> list:
        return []

    def reset(self) -> None:
        """After a gap. The engine resets *before* it turns the steps flushed at the gap into
        records, and those still need this segment's samples: the state is renewed at the
        next segment's first block instead (the standing calibration too: the alignment,
        hence the body frame, is estimated anew)."""
        self._pending_reset = True

    def _reset_now(self) -> None:
        self._pending_reset = False
        self._buffer.reset()
        if self._calibration is not None:
            self._calibration.reset()


class MetricsSummary:
    """Per sensor and metric: steps, median of the finite values, NaN count by reason.

    Memory does not grow with the run: per (sensor, metric) a counter per NaN reason and a
    fixed-resolution histogram (:class:`pipeline.median.BinnedMedian`, bin width from the
    metric's unit, :data:`pipeline.median.RESOLUTION`): the median is exact to within half
    that resolution (e.g. 0.005 deg, 0.0005 g). Values wait in a list per metric and go into
    the histogram every ``FOLD_EVERY`` steps of a sensor. ``to_dict`` goes into
    ``session.json`` (``extra.metrics``).
    """

    def __init__(self) -> None:
        from pipeline.median import FOLD_EVERY  # records-speed: bounded medians

        self._fold_every = FOLD_EVERY
        self._medians: dict[str, dict[str, BinnedMedian]] = {}  # sid -> name -> histogram
        self._pending: dict[str, dict[str, list[float]]] = {}  # sid -> name -> values not folded yet
        self._steps: dict[str, int] = {}
        self._nan_counts: dict[str, dict[tuple[str, str], int]] = {}  # sid -> (name, reason) -> NaN count

    def add(self, record) -> None:
        sid = record.sensor.sensor_id
        pending = self._pending.get(sid)
        if pending is None:
            pending = self._pending[sid] = {}
            self._medians[sid], self._nan_counts[sid], self._steps[sid] = {}, {}, 0
        get = pending.get  # ~20 metrics per step
        nan_counts = self._nan_counts[sid]
        for m in record.metrics:
            values = get(m.name)
            if values is None:
                values = pending[m.name] = []
                self._medians[sid][m.name] = self._new_median(m.name)
            x = m.value
            values.append(x)
            if not x - x == 0.0:  # NaN or infinite: counted by (name, reason), ~10 per step
                key = (m.name, m.reason)
                nan_counts[key] = nan_counts.get(key, 0) + 1
        n = self._steps[sid] = self._steps[sid] + 1
        if n % self._fold_every == 0:
            self._fold(sid)

    def _fold(self, sid: str) -> None:
        medians = self._medians[sid]
        for name, values in self._pending[sid].items():
            if values:
                medians[name].extend(values)
                values.clear()

    def to_dict(self) -> dict:
        from pipeline.median import BinnedMedian
        from pipeline.median import median_of_finite

        out: dict = {}
        for sid, medians in sorted(self._medians.items()):
            pending = self._pending[sid]
            # a short run (nothing folded yet: fewer than FOLD_EVERY steps) takes its medians from
            # the values directly (the same bins and floats, pipeline.median.median_of_finite)
            # instead of folding them into pages first; the values stay pending, as before a fold
            short = all(type(med) is BinnedMedian and not med._folded and not med._pending for med in medians.values())
            if not short:
                self._fold(sid)
            out[sid] = {}
            by_name: dict[str, dict[str, int]] = {}
            for (name, reason), n in self._nan_counts[sid].items():
                r = by_name.setdefault(name, {})
                why = reason or "not_measurable"
                r[why] = r.get(why, 0) + n
            for name, med in medians.items():
                reasons = by_name.get(name, {})
                count, median = (median_of_finite(pending[name], med.resolution) if short
                                 else (med.count, med.median()))
                out[sid][name] = {
                    "unit": unit_of(name), "steps": count + sum(reasons.values()), "valid": count,
                    "median": median,
                    "nan_reasons": dict(sorted(reasons.items())),
                }
        return out

    @classmethod
    def _new_median(cls, name: str):
        from pipeline.median import BinnedMedian, resolution_of

        return BinnedMedian(resolution_of(cls._unit_or_blank(name)))

    @staticmethod
    def _unit_or_blank(name: str) -> str:
        try:
            return unit_of(name)
        except ValueError:  # reported by to_dict, as before
            return ""
