"""Per-run fixed costs of the metrics layer (issue 9): a metric name's unit is found once per
process (``unit_of``'s memo), and a chain's plan once per group list and registry
(``_plan_of``). Both must answer as the replaced code (kept below verbatim): the same units,
the same errors on every call, the same plans; a changed registry gives a new plan."""

from __future__ import annotations

import itertools

import pytest

import pipeline.metrics as M
from pipeline.config import load_config
from pipeline.metrics import METRICS, NAMES, UNITS, MetricsChain, _plan, _plan_of, unit_of
from pipeline.records import SensorInfo


def old_unit_of(name: str) -> str:  # unit_of before the memo, verbatim
    for suffix, unit in UNITS:
        if name.endswith(suffix):
            return unit
    raise ValueError(f"metric name {name!r} has no unit suffix ({', '.join(s for s, _ in UNITS)})")


def _names():
    out = [n for names in NAMES.values() for n in names]
    out += ["cadence_spm", "contact_ms", "a_g", "x_gps", "y_code", "z_clipped", "w_pct", "v_mps", "q_m", "e_deg",
            "e_dps", "_g", "g", "", "strike", "impact_clipped", "flight_ms", "m_g_m", "gps"]
    return out


def test_unit_of_as_before_twice():
    for _ in range(2):
        for name in _names():
            try:
                want = old_unit_of(name)
            except ValueError as e:
                with pytest.raises(ValueError) as got:
                    unit_of(name)
                assert str(got.value) == str(e)
            else:
                assert unit_of(name) == want


def test_unit_of_str_subclass_not_memoised():
    class Name(str):
        pass

    n = Name("weird_new_metric_g")
    assert unit_of(n) == "g"
    assert "weird_new_metric_g" not in M._UNIT_OF


def test_plan_of_equals_plan():
    groups = list(METRICS)
    for r in range(len(groups) + 1):
        for combo in itertools.permutations(groups, r):
            for enabled in (list(combo), list(combo) + list(combo[:1])):
                want = _plan(enabled)
                assert _plan_of(enabled) == want
                assert _plan_of(tuple(enabled)) is _plan_of(enabled)  # cached


def test_plan_of_follows_the_registry(monkeypatch):
    before = _plan_of(["strike"])

    def other(ctx):
        return {}

    monkeypatch.setitem(METRICS, "strike", other)
    got = _plan_of(["strike"])
    assert got is not before and got[0][0] is other and got == _plan(["strike"])
    monkeypatch.setitem(NAMES, "strike", ("strike_angle_deg",))
    assert _plan_of(["strike"]) == ((other, (("strike_angle_deg", "deg"),)),)
    with pytest.raises(KeyError):
        _plan_of(["no_such_group"])


def test_chain_plan_as_before():
    for sensor in (SensorInfo("f", "foot", "left"), SensorInfo("s", "shank", "right")):
        chain = MetricsChain(sensor, load_config())
        assert chain._plan == _plan(load_config().section("metrics")["enabled"])
