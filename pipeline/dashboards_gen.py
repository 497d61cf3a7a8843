"""Grafana dashboards for gaitwatch, generated from the schema, and a checker that runs every
query against a real InfluxDB the way Grafana's backend would.

    python -m pipeline.dashboards_gen write [DIR]          # (re)write dashboards/*.json
    python -m pipeline.dashboards_gen check URL DB --from ISO --to ISO [-u USER -p PASS]

Every measurement, tag and field name comes from :mod:`pipeline.schema` or the form-metric
modules' ``NAMES`` (detectors/form); panel thresholds come from the alert rules of
``defaults.toml`` (``[[alerts.rules]]``), so a dashboard line sits where the alert fires.
All queries are InfluxQL (Grafana's InfluxDB datasource, query language InfluxQL), which
InfluxDB 1.x serves natively, 2.x through a DBRP mapping and 3.x through its InfluxQL API.

Macro expansion (:func:`expand`) follows Grafana's InfluxDB datasource
(public/app/plugins/datasource/influxdb, ``datasource.ts`` / ``influx_query_model.ts``):

* ``$timeFilter`` -> ``time >= <from>ms and time <= <to>ms`` (epoch milliseconds);
* ``$__interval`` / ``$interval`` -> range / max data points rounded with Grafana's
  ``rangeutil.roundInterval`` table, never below the datasource's ``timeInterval``;
  ``$__interval_ms`` the same in milliseconds; ``$__from`` / ``$__to`` epoch ms;
* ``$var``, ``${var}``, ``[[var]]`` -> the variable's value, formatted by
  ``interpolateQueryExpr``: a single-valued variable regex-escaped (``escapeRegex``), a
  multi-valued/All one as ``(a|b|c)`` of values escaped by ``influxSpecialRegexEscape``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline import schema

DATASOURCE_UID = "gaitwatch-influxdb"
DATASOURCE_TYPE = "influxdb"
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
#: Datasource ``timeInterval`` (lower bound of ``$__interval``): steps come ~3 per second.
MIN_INTERVAL = "1s"
#: Early-vs-late comparison: the first and the last this many step points of the session
#: (about a minute of both feet at 170 steps/min); the fatigue rule itself compares the
#: early run with the last ``[fatigue] window_s`` (pipeline/fatigue.py).
EARLY_LATE_STEPS = 100
DASHBOARDS_DIR = Path(__file__).resolve().parent.parent / "dashboards"

M_STEP, M_WINDOW, M_ALERT, M_SESSION = (schema.MEASUREMENT_STEP, schema.MEASUREMENT_WINDOW,
                                        schema.MEASUREMENT_ALERT, schema.MEASUREMENT_SESSION)


def metric_names() -> tuple[str, ...]:
    """Every per-step form metric name (the NAMES of the detectors/form modules)."""
    from detectors.form import asymmetry, impact, overstride, pronation, strike, stride_length

    names: dict[str, None] = {}
    for group in (impact.FOOT_NAMES, impact.SHANK_NAMES, strike.NAMES, pronation.NAMES, overstride.NAMES,
                  stride_length.NAMES, asymmetry.NAMES):
        names.update(dict.fromkeys(group))
    return tuple(names)


def schema_names() -> frozenset[str]:
    """Every name a dashboard query may quote: measurements, tags, fields (incl. windows)."""
    step_numeric = [f for f in schema.STEP_CORE_FIELDS if f not in schema.STEP_NON_AGGREGATED] + list(metric_names())
    names = set(schema.MEASUREMENTS) | set(schema.HISTORY_MEASUREMENTS) | set(schema.ALL_TAGS)
    names |= set(schema.STEP_CORE_FIELDS) | set(metric_names())
    names |= {schema.window_field(f, s) for f in step_numeric for s in schema.WINDOW_STATS}
    names |= {schema.FIELD_WINDOW_STEPS, schema.FIELD_WINDOW_S}
    names |= {schema.FIELD_ALERT_VALUE, schema.FIELD_ALERT_THRESHOLD, schema.FIELD_ALERT_T_S,
              schema.FIELD_ALERT_MESSAGE, schema.FIELD_SESSION_STATUS, schema.FIELD_SESSION_DURATION_S}
    names |= set(schema.HEALTH_FIELDS)
    names |= {schema.FIELD_HISTORY_DURATION_S, schema.FIELD_HISTORY_DISTANCE_M, schema.FIELD_HISTORY_STEPS,
              schema.FIELD_HISTORY_MEAN_IMPACT_G, schema.FIELD_HISTORY_LOAD, schema.FIELD_HISTORY_SESSION_ID,
              schema.FIELD_LOAD_FIRED, schema.FIELD_LOAD_MESSAGE, schema.FIELD_LOAD_SESSION_ID}
    return frozenset(names)


def alert_thresholds() -> dict[str, float]:
    """metric -> threshold of the shipped absolute alert rules (``relative_to`` rules skipped)."""
    from pipeline.config import load_config

    out: dict[str, float] = {}
    for r in load_config().section("alerts").get("rules", []):
        if not r.get("relative_to"):
            out.setdefault(str(r["metric"]), float(r["threshold"]))
    return out


def window_steps() -> int:
    from pipeline.config import load_config

    return int(load_config().get("alerts", "window_steps"))


# -- query building ------------------------------------------------------------------------------


def q(name: str) -> str:
    return f'"{name}"'


ATHLETE = f"{q(schema.TAG_ATHLETE)} =~ /^$athlete$/"
SESSION = f"{q(schema.TAG_SESSION)} =~ /^$session$/"
#: The session's own gait_session point (not the per-sensor or per-side ones): no such tags.
SESSION_POINT = (f"{q(schema.TAG_SENSOR)} = ''", f"{q(schema.TAG_SIDE)} = ''")


def where(*conds: str) -> str:
    return " AND ".join((*conds, "$timeFilter"))


def sel_mean_by(field: str, measurement: str, conds: Sequence[str], by: str) -> str:
    return (f"SELECT mean({q(field)}) AS {q(field)} FROM {q(measurement)} WHERE {where(*conds)} "
            f"GROUP BY time($__interval), {q(by)} fill(none)")


# -- panels ----------------------------------------------------------------------------------------


class _Board:
    """Collects panels on a 24-column grid, row by row."""

    def __init__(self) -> None:
        self.panels: list[dict] = []
        self._x = 0
        self._y = 0
        self._row_h = 0

    def add(self, panel_type: str, title: str, targets: Sequence[tuple[str, str]], *, w: int = 12, h: int = 8,
            unit: str = "", thresholds: Sequence[float] = (), decimals: int | None = None,
            description: str = "", options: dict | None = None, mappings: list | None = None,
            fmt: str = "time_series", overrides: list | None = None) -> dict:
        if self._x + w > 24:
            self._x, self._y, self._row_h = 0, self._y + self._row_h, 0
        steps = [{"color": "green", "value": None}] + [
            {"color": "red" if i == len(thresholds) - 1 else "orange", "value": t} for i, t in enumerate(thresholds)]
        defaults: dict = {"unit": unit or "none", "thresholds": {"mode": "absolute", "steps": steps}}
        if decimals is not None:
            defaults["decimals"] = decimals
        if mappings:
            defaults["mappings"] = mappings
        if thresholds and panel_type == "timeseries":
            defaults["custom"] = {"thresholdsStyle": {"mode": "line+area"}}
        panel = {
            "id": len(self.panels) + 1,
            "type": panel_type,
            "title": title,
            "description": description,
            "datasource": dict(DATASOURCE),
            "gridPos": {"x": self._x, "y": self._y, "w": w, "h": h},
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
            "options": options or {},
            "targets": [
                {"refId": chr(ord("A") + i), "datasource": dict(DATASOURCE), "rawQuery": True, "query": text,
                 "alias": alias, "resultFormat": fmt}
                for i, (alias, text) in enumerate(targets)
            ],
        }
        self.panels.append(panel)
        self._x += w
        self._row_h = max(self._row_h, h)
        return panel


def _variable(name: str, label: str, query: str, *, multi: bool = False, include_all: bool = False) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": dict(DATASOURCE),
        "query": query,
        "definition": query,
        "refresh": 2,  # on time range change
        "sort": 1,
        "multi": multi,
        "includeAll": include_all,
        "current": {},
        "options": [],
        "hide": 0,
    }


def _athlete_var(*, multi: bool = False, measurement: str = M_STEP) -> dict:
    return _variable("athlete", "Athlete",
                     f"SHOW TAG VALUES FROM {q(measurement)} WITH KEY = {q(schema.TAG_ATHLETE)}",
                     multi=multi, include_all=multi)


def _session_var() -> dict:
    return _variable("session", "Session",
                     f"SHOW TAG VALUES FROM {q(M_STEP)} WITH KEY = {q(schema.TAG_SESSION)} WHERE {ATHLETE}")


def _alert_annotation() -> dict:
    return {
        "name": "Alerts",
        "datasource": dict(DATASOURCE),
        "enable": True,
        "iconColor": "red",
        "query": (f"SELECT {q(schema.FIELD_ALERT_MESSAGE)}, {q(schema.FIELD_ALERT_VALUE)}, {q(schema.TAG_RULE)}, "
                  f"{q(schema.TAG_SEVERITY)} FROM {q(M_ALERT)} WHERE {where(ATHLETE)}"),
        "textColumn": schema.FIELD_ALERT_MESSAGE,
        "tagsColumn": f"{schema.TAG_RULE},{schema.TAG_SEVERITY}",
    }


def _dashboard(uid: str, title: str, panels: list[dict], variables: list[dict], *, time_from: str,
               refresh: str = "", annotations: list[dict] = (), description: str = "") -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["gaitwatch"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": list(annotations)},
        # the other gaitwatch dashboards in the top bar, keeping the athlete and time range
        "links": [{"title": "gaitwatch", "type": "dashboards", "tags": ["gaitwatch"], "asDropdown": False,
                   "includeVars": True, "keepTime": True}],
        "panels": panels,
    }


def _alerts_table(b: _Board, conds: Sequence[str], *, w: int = 24, title: str = "Alerts") -> None:
    fields = ", ".join(q(f) for f in (schema.TAG_RULE, schema.TAG_SEVERITY, schema.TAG_SENSOR,
                                      schema.FIELD_ALERT_VALUE, schema.FIELD_ALERT_THRESHOLD,
                                      schema.FIELD_ALERT_MESSAGE))
    b.add("table", title, [("", f"SELECT {fields} FROM {q(M_ALERT)} WHERE {where(*conds)} ORDER BY time DESC LIMIT 50")],
          w=w, h=8, fmt="table", description="The alerts of the pipeline (pipeline/alerts.py, pipeline/fatigue.py) "
          "with the advice they give.")


def live_run() -> dict:
    th = alert_thresholds()
    n_avg = window_steps()
    b = _Board()
    by_side = [ATHLETE]
    b.add("timeseries", "Cadence", [("$tag_side", sel_mean_by(schema.FIELD_CADENCE_SPM, M_STEP, by_side, schema.TAG_SIDE))],
          w=8, unit="suffix: steps/min", decimals=0)
    b.add("timeseries", "Ground contact time", [("$tag_side", sel_mean_by(schema.FIELD_CONTACT_MS, M_STEP, by_side, schema.TAG_SIDE))],
          w=8, unit="ms", decimals=0)
    b.add("stat", "Left/right asymmetry (last 10 steps)",
          [("", f"SELECT last({q(n)}) AS {q(n)} FROM {q(M_STEP)} WHERE {where(ATHLETE)}")
           for n in ("contact_si_pct", "impact_si_pct", "stride_length_si_pct")],
          w=8, unit="percent", decimals=1, thresholds=[th.get("lr_contact_si_pct", 10.0)],
          description="Robinson symmetry index of contact time, impact and stride length over the last 10 steps "
                      "(0 % = both legs equal); the imbalance alert fires above the red line.")
    impact_targets = []
    for name in ("pta_g", "impact_g"):
        impact_targets.append(("$tag_sensor " + name,
                               f"SELECT {q(name)} FROM {q(M_STEP)} WHERE {where(ATHLETE)} GROUP BY {q(schema.TAG_SENSOR)}"))
        impact_targets.append((f"$tag_sensor {name} ({n_avg}-step avg)",
                               f"SELECT moving_average({q(name)}, {n_avg}) AS {q(name + '_avg')} FROM {q(M_STEP)} "
                               f"WHERE {where(ATHLETE)} GROUP BY {q(schema.TAG_SENSOR)}"))
    b.add("timeseries", f"Impact per step and its {n_avg}-step average", impact_targets, w=12, unit="suffix: g",
          decimals=1, thresholds=[th["pta_g"]] if "pta_g" in th else [],
          description="Peak tibial acceleration (shank sensor, pta_g) and foot impact (impact_g); the red line is "
                      "the high-impact alert's threshold.")
    b.add("timeseries", "Foot strike angle", [("$tag_side", sel_mean_by("strike_angle_deg", M_STEP, by_side, schema.TAG_SIDE))],
          w=6, unit="degree", decimals=0, thresholds=[th["strike_angle_deg"]] if "strike_angle_deg" in th else [],
          description="Foot pitch at initial contact, toe up positive: > 8 deg rearfoot, < -1.6 deg forefoot.")
    code = q("strike_pattern_code")
    shares = {"rearfoot": f"(abs({code}) + {code}) / 2", "midfoot": f"1 - abs({code})",
              "forefoot": f"(abs({code}) - {code}) / 2"}
    inner = ", ".join(f"{expr} AS {q(label)}" for label, expr in shares.items())
    outer = ", ".join(f"sum({q(label)}) AS {q(label)}" for label in shares)
    b.add("piechart", "Strike pattern (steps)",
          [("", f"SELECT {outer} FROM (SELECT {inner} FROM {q(M_STEP)} WHERE {where(ATHLETE)})")], w=6, unit="none",
          fmt="table", options={"reduceOptions": {"calcs": ["sum"], "values": False}, "pieType": "donut",
                                "displayLabels": ["percent"]},
          description="Steps by strike pattern (strike_pattern_code +1 rearfoot, 0 midfoot, -1 forefoot; "
                      "Altman & Davis 2012); a pattern with no step counts 0.")
    b.add("timeseries", "Shank angle at contact (overstriding)",
          [("$tag_sensor", sel_mean_by("shank_angle_ic_deg", M_STEP, [ATHLETE], schema.TAG_SENSOR))], w=12,
          unit="degree", decimals=1, thresholds=[th["shank_angle_ic_deg"]] if "shank_angle_ic_deg" in th else [],
          description="+ when the ankle lands ahead of the knee; above the red line the overstriding cue fires.")
    b.add("timeseries", "Pronation (eversion excursion)",
          [("$tag_side", sel_mean_by("pronation_excursion_deg", M_STEP, by_side, schema.TAG_SIDE))], w=12,
          unit="degree", decimals=1,
          thresholds=[th["pronation_excursion_deg"]] if "pronation_excursion_deg" in th else [])
    _alerts_table(b, [ATHLETE], title="Current alerts")
    return _dashboard("gaitwatch-live", "gaitwatch - Live run", b.panels, [_athlete_var()], time_from="now-5m",
                      refresh="5s", annotations=[_alert_annotation()],
                      description="One athlete while running: refreshes every 5 s.")


def session_review(*, early_late_steps: int = EARLY_LATE_STEPS) -> dict:
    th = alert_thresholds()
    b = _Board()
    c = [ATHLETE, SESSION]
    for field, title, unit, w in ((schema.FIELD_CADENCE_SPM, "Cadence", "suffix: steps/min", 8),
                                  (schema.FIELD_CONTACT_MS, "Ground contact time", "ms", 8),
                                  ("strike_angle_deg", "Foot strike angle", "degree", 8),
                                  ("pta_g", "Peak tibial acceleration", "suffix: g", 8),
                                  ("stride_length_m", "Stride length", "lengthm", 8),
                                  ("speed_mps", "Speed", "velocityms", 8)):
        wf = schema.window_field(field, "mean")
        b.add("timeseries", f"{title} (10 s windows)",
              [("$tag_side", sel_mean_by(wf, M_WINDOW, c, schema.TAG_SIDE))], w=w, unit=unit, decimals=1,
              thresholds=[th[field]] if field in th else [])
    for field, title, unit in ((schema.FIELD_CONTACT_MS, "Contact time distribution", "ms"),
                               ("strike_angle_deg", "Strike angle distribution", "degree"),
                               ("pronation_excursion_deg", "Pronation distribution", "degree")):
        b.add("histogram", title, [("", f"SELECT {q(field)} FROM {q(M_STEP)} WHERE {where(*c)}")], w=8, unit=unit,
              options={"bucketCount": 20})
    cmp_fields = (schema.FIELD_CADENCE_SPM, schema.FIELD_CONTACT_MS, "strike_angle_deg", "pta_g", "stride_length_m")
    inner_sel = ", ".join(q(f) for f in cmp_fields)
    outer = ", ".join(f"mean({q(f)}) AS {q(f)}" for f in cmp_fields)
    run = f"{q(schema.FIELD_ACTIVITY)} = 'running'"
    targets = [(part, f"SELECT {outer} FROM (SELECT {inner_sel} FROM {q(M_STEP)} WHERE {where(*c, run)} "
                      f"ORDER BY time {order} LIMIT {early_late_steps}) ORDER BY time {order}")
               for part, order in (("early", "ASC"), ("late", "DESC"))]
    b.add("table", f"Early vs late (first and last {early_late_steps} running steps)", targets, w=12, fmt="table",
          decimals=1, description="Fatigue shows as a late run with longer contacts, lower cadence and harder "
          "impacts than the early run (the fatigue alerts compare the same way, pipeline/fatigue.py).")
    b.add("stat", "Session", [("", f"SELECT last({q(schema.FIELD_SESSION_DURATION_S)}) AS {q(schema.FIELD_SESSION_DURATION_S)}, "
                                   f"last({q(schema.FIELD_SESSION_STATUS)}) AS {q(schema.FIELD_SESSION_STATUS)} "
                                   f"FROM {q(M_SESSION)} WHERE {where(*c, *SESSION_POINT)}")],
          w=12, unit="s", fmt="table", options={"textMode": "value_and_name", "reduceOptions": {
              "values": False, "calcs": ["lastNotNull"], "fields": "/.*/"}})
    _alerts_table(b, c)
    return _dashboard("gaitwatch-session", "gaitwatch - Session review", b.panels, [_athlete_var(), _session_var()],
                      time_from="now-7d", annotations=[_alert_annotation()],
                      description="One session: metrics over time, distributions, early vs late, alerts.")


def team_overview() -> dict:
    th = alert_thresholds()
    b = _Board()
    summary_only = [ATHLETE, *SESSION_POINT]
    b.add("table", "Latest session per athlete",
          [("", f"SELECT last({q(schema.FIELD_SESSION_DURATION_S)}) AS {q(schema.FIELD_SESSION_DURATION_S)}, "
                f"{q(schema.TAG_SESSION)}, {q(schema.FIELD_SESSION_STATUS)} FROM {q(M_SESSION)} "
                f"WHERE {where(*summary_only)} GROUP BY {q(schema.TAG_ATHLETE)}")],
          w=12, fmt="table", unit="s")
    b.add("table", "Active alerts (warnings in the time range)",
          [("", f"SELECT count({q(schema.FIELD_ALERT_VALUE)}) AS {q('alerts')}, last({q(schema.FIELD_ALERT_MESSAGE)}) "
                f"AS {q('latest')} FROM {q(M_ALERT)} WHERE {where(ATHLETE, q(schema.TAG_SEVERITY) + ' != ' + repr('info'))} "
                f"GROUP BY {q(schema.TAG_ATHLETE)}, {q(schema.TAG_RULE)}")], w=12, fmt="table")
    b.add("timeseries", "Impact trend (peak tibial acceleration)",
          [("$tag_athlete", sel_mean_by(schema.window_field("pta_g", "mean"), M_WINDOW, [ATHLETE], schema.TAG_ATHLETE))],
          w=8, unit="suffix: g", decimals=1, thresholds=[th["pta_g"]] if "pta_g" in th else [])
    b.add("timeseries", "Cadence trend",
          [("$tag_athlete", sel_mean_by(schema.window_field(schema.FIELD_CADENCE_SPM, "mean"), M_WINDOW, [ATHLETE],
                                        schema.TAG_ATHLETE))], w=8, unit="suffix: steps/min", decimals=0)
    b.add("bargauge", "Left/right asymmetry",
          [("$tag_athlete " + n, f"SELECT mean({q(n)}) AS {q(n)} FROM {q(M_STEP)} WHERE {where(ATHLETE)} "
                                 f"GROUP BY {q(schema.TAG_ATHLETE)}")
           for n in ("contact_si_pct", "stride_length_si_pct")],
          w=8, unit="percent", decimals=1, thresholds=[th.get("lr_contact_si_pct", 10.0)],
          options={"displayMode": "gradient", "orientation": "horizontal"})
    return _dashboard("gaitwatch-team", "gaitwatch - Team overview", b.panels, [_athlete_var(multi=True)],
                      time_from="now-30d", annotations=[],
                      description="For the coach: every athlete's latest session, active alerts, trends, asymmetry.")


def training_load() -> dict:
    b = _Board()
    h = schema.MEASUREMENT_HISTORY
    week = "time(1w, 4d)"  # weeks from Monday (the epoch was a Thursday)
    for field, title, scale, unit in ((schema.FIELD_HISTORY_DURATION_S, "Weekly running time", " / 60", "m"),
                                      (schema.FIELD_HISTORY_DISTANCE_M, "Weekly distance", " / 1000", "lengthkm"),
                                      (schema.FIELD_HISTORY_LOAD, "Weekly load", "", "none")):
        b.add("timeseries", title,
              [("$tag_athlete", f"SELECT sum({q(field)}){scale} AS {q(field)} FROM {q(h)} WHERE {where(ATHLETE)} "
                                f"GROUP BY {week}, {q(schema.TAG_ATHLETE)} fill(0)")],
              w=8, unit=unit, decimals=1, options={"legend": {"displayMode": "list"}},
              overrides=[], description="Sum over each week (Monday to Sunday) of the runs in the training history.")
    b.add("table", "Longest run of each month",
          [("", f"SELECT max({q(schema.FIELD_HISTORY_DURATION_S)}) / 60 AS {q('longest_min')}, "
                f"max({q(schema.FIELD_HISTORY_DISTANCE_M)}) / 1000 AS {q('longest_km')} FROM {q(h)} "
                f"WHERE {where(ATHLETE)} GROUP BY time(30d), {q(schema.TAG_ATHLETE)} fill(none)")],
          w=8, fmt="table", decimals=1)
    b.add("table", "Load rules: latest verdicts",
          [("", f"SELECT last({q(schema.FIELD_LOAD_FIRED)}) AS {q(schema.FIELD_LOAD_FIRED)}, "
                f"last({q(schema.FIELD_LOAD_MESSAGE)}) AS {q(schema.FIELD_LOAD_MESSAGE)} FROM {q(schema.MEASUREMENT_LOAD)} "
                f"WHERE {where(ATHLETE)} GROUP BY {q(schema.TAG_ATHLETE)}, {q(schema.TAG_RULE)}")],
          w=16, fmt="table",
          mappings=[{"type": "value", "options": {"1": {"text": "WARNING", "color": "red"},
                                                  "0": {"text": "ok", "color": "green"}}}],
          description="pipeline/training_load.py: longest run (Frandsen 2025), 2-week ramp (Nielsen 2014), "
                      "beginner frequency, running with pain, see a professional.")
    # athletes from the history itself: it may be kept in InfluxDB without the per-step data
    return _dashboard("gaitwatch-load", "gaitwatch - Training load", b.panels,
                      [_athlete_var(multi=True, measurement=schema.MEASUREMENT_HISTORY)],
                      time_from="now-90d", description="Weekly time, distance and load per athlete with the "
                      "load rules' verdicts.")


def all_dashboards() -> dict[str, dict]:
    """file name -> dashboard model."""
    return {"live_run.json": live_run(), "session_review.json": session_review(),
            "team_overview.json": team_overview(), "training_load.json": training_load()}


def write_dashboards(directory: str | Path = DASHBOARDS_DIR) -> list[Path]:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for name, model in all_dashboards().items():
        p = d / name
        p.write_text(json.dumps(model, indent=2) + "\n")
        out.append(p)
    return out


# -- Grafana's macro expansion -----------------------------------------------------------------------

# rangeutil.roundInterval: (upper bound ms, interval ms)
_ROUND = ((15, 10), (35, 20), (75, 50), (150, 100), (250, 200), (350, 300), (450, 400), (750, 500),
          (1500, 1000), (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000),
          (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000),
          (1050000, 900000), (1500000, 1200000), (2700000, 1800000), (5400000, 3600000),
          (9000000, 7200000), (16200000, 10800000), (24300000, 21600000), (32400000, 28800000),
          (86400000, 43200000), (604800000, 86400000), (1814400000, 604800000), (3628800000, 1209600000))
_UNITS_MS = (("w", 604800000), ("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1))


def round_interval_ms(interval_ms: float) -> int:
    for upper, value in _ROUND:
        if interval_ms < upper:
            return value
    return 2592000000  # 30d


def interval_text(ms: int) -> str:
    """Grafana's ``secondsToHms``-style text of an interval (``200ms``, ``10s``, ``1m``, ``1d``)."""
    for unit, size in _UNITS_MS:
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def parse_interval_ms(text: str) -> int:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", text)
    if not m:
        raise ValueError(f"interval like '1s' expected, got {text!r}")
    return int(m.group(1)) * dict(_UNITS_MS)[m.group(2)]


def grafana_interval_ms(from_ms: int, to_ms: int, *, max_data_points: int = 1000, min_interval: str = MIN_INTERVAL) -> int:
    ms = round_interval_ms((to_ms - from_ms) / max_data_points)
    return max(ms, parse_interval_ms(min_interval))


_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_SPECIAL_INFLUX = re.compile(r"[$^*{}\[\]'+?.()|]")


def format_value(value: str | Sequence[str], *, multi: bool, include_all: bool) -> str:
    """``interpolateQueryExpr`` of Grafana's InfluxDB datasource."""
    if not multi and not include_all:
        v = value if isinstance(value, str) else value[0]
        try:
            float(v)
            return v
        except ValueError:
            return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), v)

    def special(v: str) -> str:
        return _SPECIAL_INFLUX.sub(lambda m: "\\\\" + m.group(0), v.replace("\\", "\\\\\\\\"))

    if isinstance(value, str):
        return special(value)
    vals = [special(v) for v in value]
    return vals[0] if len(vals) == 1 else "(" + "|".join(vals) + ")"


def expand(query: str, *, from_ms: int, to_ms: int, variables: Mapping[str, str | Sequence[str]],
           var_defs: Mapping[str, dict] | None = None, interval_ms: int | None = None) -> str:
    """A query as Grafana sends it to InfluxDB (see the module doc)."""
    if interval_ms is None:
        interval_ms = grafana_interval_ms(from_ms, to_ms)
    var_defs = var_defs or {}
    builtins = {
        "timeFilter": f"time >= {from_ms}ms and time <= {to_ms}ms",
        "__interval_ms": str(interval_ms),
        "__interval": interval_text(interval_ms),
        "interval": interval_text(interval_ms),
        "__from": str(from_ms),
        "__to": str(to_ms),
    }

    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in builtins:
            return builtins[name]
        if name in variables:
            d = var_defs.get(name, {})
            return format_value(variables[name], multi=bool(d.get("multi")), include_all=bool(d.get("includeAll")))
        return m.group(0)  # unknown: Grafana leaves it as is (and InfluxDB then fails on it)

    return re.sub(r"\$\{(\w+)\}|\[\[(\w+)\]\]|\$(\w+)", sub, query)


# -- the checker ---------------------------------------------------------------------------------------


class CheckError(AssertionError):
    """A dashboard query failed, returned nothing or returned other columns than expected."""


def _split_top(text: str) -> list[str]:
    parts, depth, cur, quote = [], 0, "", ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def expected_columns(query: str) -> list[str]:
    """Columns InfluxDB answers a SELECT with: time, then each item's alias / function / field.

    SHOW TAG VALUES answers ``key, value``."""
    s = query.strip()
    if re.match(r"(?i)SHOW\s+TAG\s+VALUES", s):
        return ["key", "value"]
    m = re.match(r"(?is)SELECT\s+(.*?)\s+FROM\s", s)
    if not m:
        raise CheckError(f"cannot read the SELECT list of {query!r}")
    cols = ["time"]
    for item in _split_top(m.group(1)):
        a = re.search(r'(?i)\s+AS\s+"([^"]+)"\s*$', item)
        if a:
            cols.append(a.group(1))
            continue
        f = re.match(r"\s*(\w+)\s*\(", item)
        if f:
            cols.append(f.group(1).lower())
            continue
        n = re.match(r'\s*"([^"]+)"\s*$', item)
        if not n:
            raise CheckError(f"cannot tell the column of {item!r} in {query!r}")
        cols.append(n.group(1))
    return cols


def group_by_tags(query: str) -> list[str]:
    """Tag keys of the outermost GROUP BY (``time(...)`` left out)."""
    m = re.search(r'(?is)\bGROUP\s+BY\s+(.*?)(?:\s+fill\(|\s+ORDER\s|\s+LIMIT\s|\s+SLIMIT\s|$)', query.rsplit(")", 1)[-1]
                  if re.search(r"(?i)\bFROM\s*\(", query) else query)
    return re.findall(r'"([^"]+)"', m.group(1)) if m else []


def quoted_names(query: str) -> set[str]:
    """Double-quoted identifiers of a query except ``AS "alias"`` names (and their uses in an
    outer query over a subquery)."""
    aliases = set(re.findall(r'(?i)\bAS\s+"([^"]*)"', query))
    names = set(re.findall(r'"([^"]+)"', re.sub(r'(?i)\bAS\s+"[^"]*"', "", query)))
    return names - aliases if re.search(r"(?i)\bFROM\s*\(", query) else names


@dataclass
class QueryResult:
    where: str
    query: str
    series: list[dict]


def iter_queries(dashboard: Mapping) -> list[tuple[str, str, str]]:
    """(where, raw query, result format) of every variable, annotation and panel target."""
    out = []
    for v in dashboard.get("templating", {}).get("list", []):
        out.append((f"variable ${v['name']}", v["query"], "table"))
    for a in dashboard.get("annotations", {}).get("list", []):
        if a.get("query"):
            out.append((f"annotation {a['name']}", a["query"], "table"))
    for p in dashboard.get("panels", []):
        for t in p.get("targets", []):
            out.append((f"panel {p['id']} {p['title']!r} target {t['refId']}", t["query"], t.get("resultFormat", "")))
    return out


def check_dashboard(dashboard: Mapping, run_query: Callable[[str], list[dict]], *, from_ms: int, to_ms: int,
                    pick: Mapping[str, str] | None = None) -> list[QueryResult]:
    """Run every variable and target of ``dashboard`` through ``run_query`` as Grafana would.

    Variables are resolved in order from their own queries (like Grafana at load): a
    multi/All variable takes all its values, a single one ``pick[name]`` (which must be
    among the values) or the first value. Raises :class:`CheckError` when a query fails,
    answers no series, a series lacks an expected column, or a column holds only nulls
    (a misspelt field inside a subquery answers a column of nulls, not an error).
    """
    pick = pick or {}
    defs = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    values: dict[str, str | list[str]] = {}
    results = []

    def run(where_: str, raw: str) -> list[dict]:
        text = expand(raw, from_ms=from_ms, to_ms=to_ms, variables=values, var_defs=defs)
        if re.search(r"\$\w|\[\[\w", text):
            raise CheckError(f"{where_}: unexpanded macro in {text!r}")
        try:
            series = run_query(text)
        except CheckError:
            raise
        except Exception as exc:  # noqa: BLE001 - the server's error is the message
            raise CheckError(f"{where_}: {exc}") from None
        if not series or not any(s.get("values") for s in series):
            raise CheckError(f"{where_}: no data for {text!r}")
        want = expected_columns(raw)
        for s in series:
            missing = [c for c in want if c not in s["columns"]]
            if missing:
                raise CheckError(f"{where_}: columns {s['columns']} lack {missing} for {text!r}")
        empty = [c for c in want if not any(row[s["columns"].index(c)] is not None
                                            for s in series for row in s.get("values", []))]
        if empty:
            raise CheckError(f"{where_}: column(s) {empty} hold no value for {text!r}")
        for tag in group_by_tags(raw):
            if not any((s.get("tags") or {}).get(tag) for s in series):
                raise CheckError(f"{where_}: no series has a value of the GROUP BY tag {tag!r} for {text!r}")
        results.append(QueryResult(where_, text, series))
        return series

    for name, d in defs.items():
        series = run(f"variable ${name}", d["query"])
        vals = sorted({row[s["columns"].index("value")] for s in series for row in s["values"]})
        if d.get("multi") or d.get("includeAll"):
            values[name] = vals
        else:
            chosen = pick.get(name, vals[0])
            if chosen not in vals:
                raise CheckError(f"variable ${name}: {chosen!r} not among {vals}")
            values[name] = chosen
    for where_, raw, _fmt in iter_queries(dashboard):
        if where_.startswith("variable "):
            continue
        run(where_, raw)
    return results


def check_structure(dashboard: Mapping, *, allowed_names: frozenset[str] | None = None) -> None:
    """Unique panel ids, non-overlapping grid positions inside 24 columns, the provisioned
    datasource on every panel/target/variable, and only schema names in queries."""
    allowed = schema_names() if allowed_names is None else allowed_names
    ids = [p["id"] for p in dashboard["panels"]]
    if len(ids) != len(set(ids)):
        raise CheckError(f"{dashboard['uid']}: duplicate panel ids {ids}")
    cells: dict[tuple[int, int], int] = {}
    for p in dashboard["panels"]:
        g = p["gridPos"]
        if not (g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["y"] >= 0 and g["x"] + g["w"] <= 24):
            raise CheckError(f"panel {p['id']}: bad gridPos {g}")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    raise CheckError(f"panel {p['id']} overlaps panel {cells[(x, y)]} at {(x, y)}")
                cells[(x, y)] = p["id"]
        refs = [p] + list(p["targets"])
        if not p["targets"]:
            raise CheckError(f"panel {p['id']}: no targets")
        ref_ids = [t["refId"] for t in p["targets"]]
        if len(ref_ids) != len(set(ref_ids)):
            raise CheckError(f"panel {p['id']}: duplicate refIds {ref_ids}")
        for t in p["targets"]:  # a legend naming a tag the query does not group by shows "$tag_x" literally
            for tag in re.findall(r"\$tag_(\w+)", t.get("alias", "")):
                if tag not in group_by_tags(t["query"]):
                    raise CheckError(f"panel {p['id']} target {t['refId']}: alias uses $tag_{tag} but the query "
                                     f"does not GROUP BY {tag!r}")
        for r in refs:
            if r.get("datasource") != DATASOURCE:
                raise CheckError(f"panel {p['id']}: datasource {r.get('datasource')} is not {DATASOURCE}")
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("datasource") != DATASOURCE:
            raise CheckError(f"variable {v['name']}: datasource {v.get('datasource')} is not {DATASOURCE}")
    for where_, raw, _ in iter_queries(dashboard):
        unknown = quoted_names(raw) - allowed
        if unknown:
            raise CheckError(f"{dashboard['uid']} {where_}: names not in pipeline.schema: {sorted(unknown)}")


def http_query_fn(url: str, database: str, *, username: str = "", password: str = "") -> Callable[[str], list[dict]]:
    """``run_query`` over InfluxDB's ``/query`` (POST, like Grafana's httpMode POST)."""
    import base64
    import urllib.request

    def run_query(text: str) -> list[dict]:
        body = urllib.parse.urlencode({"db": database, "q": text, "epoch": "ms"}).encode()
        req = urllib.request.Request(url.rstrip("/") + "/query", data=body, method="POST")
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        if username:
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                data = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            raise CheckError(f"HTTP {exc.code}: {exc.read()[:300]!r}") from None
        if "error" in data:
            raise CheckError(data["error"])
        res = data["results"][0]
        if "error" in res:
            raise CheckError(res["error"])
        return res.get("series", [])

    return run_query


def _iso_ms(text: str) -> int:
    from datetime import datetime, timezone

    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.dashboards_gen", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="write dashboards/*.json")
    w.add_argument("dir", nargs="?", default=str(DASHBOARDS_DIR))
    c = sub.add_parser("check", help="run every dashboard query against a server")
    c.add_argument("url")
    c.add_argument("database")
    c.add_argument("--from", dest="from_", required=True, help="ISO time")
    c.add_argument("--to", required=True, help="ISO time")
    c.add_argument("-u", "--username", default="")
    c.add_argument("-p", "--password", default="")
    args = p.parse_args(argv)
    if args.cmd == "write":
        for path in write_dashboards(args.dir):
            print(f"wrote {path}")
        return 0
    fn = http_query_fn(args.url, args.database, username=args.username, password=args.password)
    bad = 0
    for name, model in all_dashboards().items():
        try:
            check_structure(model)
            res = check_dashboard(model, fn, from_ms=_iso_ms(args.from_), to_ms=_iso_ms(args.to))
            print(f"ok   {name}: {len(res)} queries")
        except CheckError as exc:
            bad += 1
            print(f"FAIL {name}: {exc}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
