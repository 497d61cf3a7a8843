"""The InfluxDB schema: measurement, tag and field names shared by sinks, queries and dashboards.

Import the names from here; never spell them as string literals elsewhere. The README section
"InfluxDB schema" documents the same layout for people.

Layout (InfluxDB line protocol, https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/)

===============  =======================================  ===========================================
measurement      tags                                     fields
===============  =======================================  ===========================================
``gait_step``    athlete, session, sensor, side,          ic_s, to_s, contact_ms, flight_ms,
                 placement                                cadence_spm, segment, activity (string),
                                                          + every ``Metric`` of the record by name
``gait_window``  athlete, session, sensor, side,          steps, window_s, and ``<f>_mean``,
                 placement                                ``<f>_min``, ``<f>_max`` of every numeric
                                                          step field f (see :func:`window_field`)
``gait_alert``   athlete, session, sensor, rule,          value, threshold, t_s, message (string)
                 severity
``gait_session`` athlete, session; per-sensor points     numeric summary values, status (string)
                 add sensor, side, placement; per-side    (see :func:`pipeline.lineprotocol.summary_lines`)
                 points add side
``gait_health``  athlete, session, component, sensor      spool_depth_points, spool_depth_batches,
                                                          points_written, points_nonfinite_dropped,
                                                          lines_rejected, write_latency_ms,
                                                          packets_lost, resyncs, latency_ms ...
===============  =======================================  ===========================================

Rules
-----
* Tags hold only bounded values (who, which run, which sensor, which rule); everything that
  varies per step is a field. An empty tag value is left out of the point.
* Every numeric field is written as a float (no ``i`` suffix), so a value that happens to
  be whole never conflicts with the same field written as a fraction.
* The timestamp is the session's wall clock (:meth:`pipeline.records.SessionInfo.wall_ns`)
  of the event: initial contact for a step, window start for a window, the alert's time,
  session start for the summary. Same series + same timestamp overwrites in InfluxDB, so
  writing a session twice (a spool replay, a re-run of ``gaitwatch replay``) never
  duplicates points.
* Step metric names are not fixed here: the field set of a step point is derived from the
  record (:func:`step_fields`), so a metric added later appears as a field of its own name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from pipeline.records import StepRecord

# -- measurements ---------------------------------------------------------------------------
MEASUREMENT_STEP = "gait_step"
MEASUREMENT_WINDOW = "gait_window"
MEASUREMENT_ALERT = "gait_alert"
MEASUREMENT_SESSION = "gait_session"
MEASUREMENT_HEALTH = "gait_health"
MEASUREMENTS: tuple[str, ...] = (
    MEASUREMENT_STEP,
    MEASUREMENT_WINDOW,
    MEASUREMENT_ALERT,
    MEASUREMENT_SESSION,
    MEASUREMENT_HEALTH,
)

# -- tags -------------------------------------------------------------------------------------
TAG_ATHLETE = "athlete"
TAG_SESSION = "session"
TAG_SENSOR = "sensor"
TAG_SIDE = "side"
TAG_PLACEMENT = "placement"
TAG_RULE = "rule"
TAG_SEVERITY = "severity"
TAG_COMPONENT = "component"

STEP_TAGS: tuple[str, ...] = (TAG_ATHLETE, TAG_SESSION, TAG_SENSOR, TAG_SIDE, TAG_PLACEMENT)
WINDOW_TAGS: tuple[str, ...] = STEP_TAGS
ALERT_TAGS: tuple[str, ...] = (TAG_ATHLETE, TAG_SESSION, TAG_SENSOR, TAG_RULE, TAG_SEVERITY)
SESSION_TAGS: tuple[str, ...] = (TAG_ATHLETE, TAG_SESSION, TAG_SENSOR, TAG_SIDE, TAG_PLACEMENT)
HEALTH_TAGS: tuple[str, ...] = (TAG_ATHLETE, TAG_SESSION, TAG_COMPONENT, TAG_SENSOR)
TAGS_BY_MEASUREMENT: dict[str, tuple[str, ...]] = {
    MEASUREMENT_STEP: STEP_TAGS,
    MEASUREMENT_WINDOW: WINDOW_TAGS,
    MEASUREMENT_ALERT: ALERT_TAGS,
    MEASUREMENT_SESSION: SESSION_TAGS,
    MEASUREMENT_HEALTH: HEALTH_TAGS,
}
ALL_TAGS: frozenset[str] = frozenset(t for tags in TAGS_BY_MEASUREMENT.values() for t in tags)

# -- step fields ------------------------------------------------------------------------------
FIELD_IC_S = "ic_s"
FIELD_TO_S = "to_s"
FIELD_CONTACT_MS = "contact_ms"
FIELD_FLIGHT_MS = "flight_ms"
FIELD_CADENCE_SPM = "cadence_spm"
FIELD_SEGMENT = "segment"
FIELD_ACTIVITY = "activity"  # string: "running" | "walking"

STEP_CORE_FIELDS: tuple[str, ...] = (
    FIELD_IC_S,
    FIELD_TO_S,
    FIELD_CONTACT_MS,
    FIELD_FLIGHT_MS,
    FIELD_CADENCE_SPM,
    FIELD_SEGMENT,
    FIELD_ACTIVITY,
)
STEP_STRING_FIELDS: frozenset[str] = frozenset({FIELD_ACTIVITY})
#: Step fields that locate a step rather than measure it: not aggregated in windows.
STEP_NON_AGGREGATED: frozenset[str] = frozenset({FIELD_IC_S, FIELD_TO_S, FIELD_SEGMENT, FIELD_ACTIVITY})
#: Units of the core step fields (metrics carry their own ``Metric.unit``).
CORE_UNITS: dict[str, str] = {
    FIELD_IC_S: "s",
    FIELD_TO_S: "s",
    FIELD_CONTACT_MS: "ms",
    FIELD_FLIGHT_MS: "ms",
    FIELD_CADENCE_SPM: "steps/min",
    FIELD_SEGMENT: "",
}

# -- window fields ----------------------------------------------------------------------------
FIELD_WINDOW_STEPS = "steps"
FIELD_WINDOW_S = "window_s"
WINDOW_STATS: tuple[str, ...] = ("mean", "min", "max")
DEFAULT_WINDOW_S = 10.0

# -- alert fields -----------------------------------------------------------------------------
FIELD_ALERT_VALUE = "value"
FIELD_ALERT_THRESHOLD = "threshold"
FIELD_ALERT_T_S = "t_s"
FIELD_ALERT_MESSAGE = "message"  # string

# -- session summary fields (numbers flattened from pipeline.summary.SessionSummary) --------
FIELD_SESSION_STATUS = "status"  # string: "complete" | "interrupted" | "failed"
FIELD_SESSION_DURATION_S = "duration_s"

# -- health fields ----------------------------------------------------------------------------
HEALTH_COMPONENT_INFLUX = "influx_sink"
HEALTH_COMPONENT_SOURCE = "source"
FIELD_SPOOL_DEPTH_POINTS = "spool_depth_points"
FIELD_SPOOL_DEPTH_BATCHES = "spool_depth_batches"
FIELD_POINTS_WRITTEN = "points_written"
FIELD_POINTS_NONFINITE = "points_nonfinite_dropped"
FIELD_LINES_REJECTED = "lines_rejected"
FIELD_WRITE_LATENCY_MS = "write_latency_ms"
FIELD_PACKETS_LOST = "packets_lost"
FIELD_RESYNCS = "resyncs"
FIELD_LATENCY_MS = "latency_ms"
HEALTH_FIELDS: tuple[str, ...] = (
    FIELD_SPOOL_DEPTH_POINTS,
    FIELD_SPOOL_DEPTH_BATCHES,
    FIELD_POINTS_WRITTEN,
    FIELD_POINTS_NONFINITE,
    FIELD_LINES_REJECTED,
    FIELD_WRITE_LATENCY_MS,
    FIELD_PACKETS_LOST,
    FIELD_RESYNCS,
    FIELD_LATENCY_MS,
)

# -- training history (pipeline.history.InfluxHistory) and the load rules' verdicts -------------
MEASUREMENT_HISTORY = "gait_history"  # one point per run at its start; tag athlete
MEASUREMENT_CHECKIN = "gait_checkin"  # pain/swelling check-ins; tag athlete
MEASUREMENT_LOAD = "gait_load"  # load-rule verdicts (pipeline.training_load); tags athlete, rule
HISTORY_MEASUREMENTS: tuple[str, ...] = (MEASUREMENT_HISTORY, MEASUREMENT_CHECKIN, MEASUREMENT_LOAD)
FIELD_HISTORY_DURATION_S = "duration_s"
FIELD_HISTORY_DISTANCE_M = "distance_m"
FIELD_HISTORY_STEPS = "steps"
FIELD_HISTORY_MEAN_IMPACT_G = "mean_impact_g"
FIELD_HISTORY_LOAD = "load"
FIELD_HISTORY_SESSION_ID = "session_id"  # string
FIELD_LOAD_FIRED = "fired"  # 1.0 the rule fired, 0.0 it did not
FIELD_LOAD_MESSAGE = "message"  # string
FIELD_LOAD_SESSION_ID = "session_id"  # string: the run judged

#: Names InfluxQL cannot use as a field key (``time``) or that are taken by tags.
RESERVED_FIELD_NAMES: frozenset[str] = frozenset({"time"}) | ALL_TAGS

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@lru_cache(maxsize=4096)
def check_field_name(name: str) -> str:
    """Validate a metric/field name: an identifier, not ``time`` and not a tag key."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"field name must be an identifier like 'impact_g', got {name!r}")
    if name in RESERVED_FIELD_NAMES:
        raise ValueError(f"field name {name!r} is reserved (tag key or 'time'); rename the metric")
    return name


def window_field(name: str, stat: str) -> str:
    """Name of a window aggregate: ``window_field("cadence_spm", "mean") == "cadence_spm_mean"``."""
    if stat not in WINDOW_STATS:
        raise ValueError(f"stat must be one of {WINDOW_STATS}, got {stat!r}")
    return f"{name}_{stat}"


def step_fields(record: StepRecord) -> dict[str, float | str]:
    """All fields of one step point, derived from the record (values may be NaN/inf here).

    Core fields come from the :class:`~pipeline.records.Step`; then every metric of the
    record by its name. A metric named like a core field (e.g. ``flight_ms`` measured from
    both feet) replaces the single-sensor core value.
    """
    s = record.step
    fields: dict[str, float | str] = {
        FIELD_IC_S: float(s.ic_s),
        FIELD_TO_S: float(s.to_s),
        FIELD_CONTACT_MS: float(s.contact_ms),
        FIELD_FLIGHT_MS: float(s.flight_ms),
        FIELD_CADENCE_SPM: float(s.cadence_spm),
        FIELD_SEGMENT: float(s.segment),
        FIELD_ACTIVITY: str(s.activity),
    }
    for m in record.metrics:
        if m.name == FIELD_ACTIVITY:
            raise ValueError(f"metric name {m.name!r} is reserved for the step's activity string")
        fields[check_field_name(m.name)] = float(m.value)
    return fields


def numeric_step_field_names(records: Iterable[StepRecord]) -> list[str]:
    """Numeric fields of these records that windows aggregate, in first-seen order."""
    seen: dict[str, None] = {}
    for r in records:
        for k, v in step_fields(r).items():
            if k not in STEP_NON_AGGREGATED and not isinstance(v, str):
                seen.setdefault(k)
    return list(seen)
