"""Structure of the Grafana dashboards and provisioning files, and Grafana's macro expansion
(no server needed; the queries themselves are run in tests/test_dashboards_influx.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from pipeline import dashboards_gen as dg
from pipeline import schema

ROOT = Path(__file__).resolve().parent.parent
DASH = ROOT / "dashboards"


@pytest.mark.parametrize("name", sorted(dg.all_dashboards()))
def test_committed_json_is_what_the_generator_writes(name):
    on_disk = json.loads((DASH / name).read_text())
    assert on_disk == dg.all_dashboards()[name], f"run `python -m pipeline.dashboards_gen write` ({name} is stale)"


@pytest.mark.parametrize("name", sorted(dg.all_dashboards()))
def test_structure(name):
    model = json.loads((DASH / name).read_text())
    dg.check_structure(model)
    assert model["uid"].startswith("gaitwatch-") and model["panels"]
    for p in model["panels"]:
        assert p["fieldConfig"]["defaults"]["unit"], p["title"]  # every panel states its unit
    uids = [json.loads((DASH / n).read_text())["uid"] for n in dg.all_dashboards()]
    assert len(set(uids)) == len(uids)


def test_variables_and_refresh():
    live, review, team, load = (dg.live_run(), dg.session_review(), dg.team_overview(), dg.training_load())
    assert [v["name"] for v in live["templating"]["list"]] == ["athlete"]
    assert [v["name"] for v in review["templating"]["list"]] == ["athlete", "session"]
    assert "$athlete" in review["templating"]["list"][1]["query"]  # sessions of the chosen athlete
    assert team["templating"]["list"][0]["multi"] and team["templating"]["list"][0]["includeAll"]
    assert live["refresh"] == "5s" and live["annotations"]["list"][0]["query"].count(schema.MEASUREMENT_ALERT) == 1
    for model in (live, review, team, load):
        for _where, raw, _ in dg.iter_queries(model):
            if "$athlete" not in raw and not (raw.startswith("SHOW TAG VALUES") and raw.endswith('WITH KEY = "athlete"')):
                pytest.fail(f"{model['uid']}: a query not filtered by athlete: {raw}")


def test_thresholds_come_from_the_alert_rules():
    th = dg.alert_thresholds()
    assert th["pta_g"] == 8.0 and th["shank_angle_ic_deg"] == 10.0  # defaults.toml [[alerts.rules]]
    panels = {p["title"]: p for p in dg.live_run()["panels"]}
    shank = panels["Shank angle at contact (overstriding)"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert shank[-1]["value"] == th["shank_angle_ic_deg"]
    impact = next(p for t, p in panels.items() if t.startswith("Impact per step"))
    assert impact["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == th["pta_g"]
    assert any("moving_average(\"pta_g\", 5)" in t["query"] for t in impact["targets"])  # [alerts] window_steps


def _broken(mutate):
    model = copy.deepcopy(dg.session_review())
    mutate(model)
    with pytest.raises(dg.CheckError):
        dg.check_structure(model)


def test_structure_check_catches_mistakes():
    def dup_id(m):
        m["panels"][1]["id"] = m["panels"][0]["id"]

    def overlap(m):
        m["panels"][1]["gridPos"] = dict(m["panels"][0]["gridPos"])

    def too_wide(m):
        m["panels"][0]["gridPos"]["w"] = 30

    def other_ds(m):
        m["panels"][2]["targets"][0]["datasource"] = {"type": "influxdb", "uid": "somewhere-else"}

    def var_ds(m):
        m["templating"]["list"][0]["datasource"] = None

    def unknown_field(m):
        m["panels"][0]["targets"][0]["query"] = m["panels"][0]["targets"][0]["query"].replace(
            '"cadence_spm_mean"', '"cadense_spm_mean"', 1)

    def unknown_measurement(m):
        m["panels"][-1]["targets"][0]["query"] = m["panels"][-1]["targets"][0]["query"].replace(
            '"gait_alert"', '"alerts"')

    def dup_ref(m):
        m["panels"][9]["targets"][1]["refId"] = "A"

    def alias_tag_not_grouped(m):
        m["panels"][0]["targets"][0]["alias"] = "$tag_sensor"  # the query groups by side

    for f in (dup_id, overlap, too_wide, other_ds, var_ds, unknown_field, unknown_measurement, dup_ref,
              alias_tag_not_grouped):
        _broken(f)


def test_schema_names_cover_the_metrics():
    names = dg.schema_names()
    for n in ("pta_g", "impact_g", "strike_angle_deg", "shank_angle_ic_deg", "pronation_excursion_deg",
              "foot_progression_deg", "stride_length_m", "speed_mps", "contact_si_pct"):
        assert n in names and schema.window_field(n, "mean") in names
    assert "gait_steps" not in names and "time" not in names


# -- Grafana's macro expansion ------------------------------------------------------------------------


def test_expand_time_filter_interval_and_variables():
    q = ('SELECT mean("x") FROM "gait_step" WHERE "athlete" =~ /^$athlete$/ AND "session" =~ /^${session}$/ '
         'AND $timeFilter GROUP BY time($__interval) LIMIT [[n]]')
    out = dg.expand(q, from_ms=1_000_000, to_ms=1_000_000 + 3_600_000, variables={"athlete": "a.b", "session": "s1",
                                                                                      "n": "5"})
    # 1 h / 1000 points = 3.6 s -> Grafana rounds to 5 s
    assert out == ('SELECT mean("x") FROM "gait_step" WHERE "athlete" =~ /^a\\.b$/ AND "session" =~ /^s1$/ '
                   'AND time >= 1000000ms and time <= 4600000ms GROUP BY time(5s) LIMIT 5')


@pytest.mark.parametrize("range_ms,expected", [
    (5 * 60_000, "1s"),  # 300 ms raw -> 300ms rounded -> datasource minimum 1s
    (3 * 3_600_000, "10s"),
    (7 * 86_400_000, "10m"),
    (30 * 86_400_000, "30m"),  # 43.2 min raw
    (90 * 86_400_000, "2h"),  # 2.16 h raw
])
def test_interval_rounding_like_grafana(range_ms, expected):
    assert dg.interval_text(dg.grafana_interval_ms(0, range_ms)) == expected


def test_multi_value_variables_become_an_alternation():
    defs = {"athlete": {"multi": True, "includeAll": True}}
    q = '"athlete" =~ /^$athlete$/'
    assert dg.expand(q, from_ms=0, to_ms=1, variables={"athlete": ["ana", "ben"]}, var_defs=defs) == \
        '"athlete" =~ /^(ana|ben)$/'
    assert dg.expand(q, from_ms=0, to_ms=1, variables={"athlete": ["ana"]}, var_defs=defs) == '"athlete" =~ /^ana$/'
    # an unknown variable stays as is (and then fails on the server / in the checker)
    assert dg.expand("$nope", from_ms=0, to_ms=1, variables={}) == "$nope"


def test_expected_columns():
    assert dg.expected_columns('SELECT mean("a") AS "x", last("b"), "c" FROM "m"') == ["time", "x", "last", "c"]
    assert dg.expected_columns('SHOW TAG VALUES FROM "m" WITH KEY = "athlete"') == ["key", "value"]
    assert dg.expected_columns('SELECT sum("a") / 60 AS "min" FROM (SELECT "a" FROM "m")') == ["time", "min"]


# -- provisioning ---------------------------------------------------------------------------------------


def test_provisioning_files():
    ds = yaml.safe_load((DASH / "provisioning" / "datasources" / "gaitwatch.yaml").read_text())
    assert ds["apiVersion"] == 1
    (src,) = ds["datasources"]
    assert src["uid"] == dg.DATASOURCE_UID and src["type"] == dg.DATASOURCE_TYPE == "influxdb"
    assert src["jsonData"]["version"] == "InfluxQL" and src["jsonData"]["timeInterval"] == dg.MIN_INTERVAL
    # everything site-specific comes from the environment; no secret in the file
    assert src["url"] == "${GAITWATCH_INFLUX_URL}" and src["jsonData"]["dbName"] == "${GAITWATCH_INFLUX_DATABASE}"
    assert src["user"] == "${GAITWATCH_INFLUX_USERNAME}"
    assert src["secureJsonData"] == {"password": "${GAITWATCH_INFLUX_PASSWORD}"}
    prov = yaml.safe_load((DASH / "provisioning" / "dashboards" / "gaitwatch.yaml").read_text())
    (p,) = prov["providers"]
    assert p["type"] == "file" and p["options"]["path"] == "${GAITWATCH_DASHBOARDS_DIR}"
    readme = (DASH / "README.md").read_text()
    for name in dg.all_dashboards():
        assert name in readme
    for var in ("GAITWATCH_INFLUX_URL", "GAITWATCH_INFLUX_DATABASE", "GAITWATCH_INFLUX_USERNAME",
                "GAITWATCH_INFLUX_PASSWORD", "GAITWATCH_DASHBOARDS_DIR"):
        assert var in readme  # the guide says what to set
