"""Alert rules are validated once per process and content (``pipeline.alerts._parsed_rules``,
issue 9: ~70-160 us of validation, a fixed cost of every engine). The rules must be the same
as the replaced parser's (``_parse_rules``, the unchanged validation, called directly), for
the shipped rules and variants; each call gets its own list; 1, 1.0 and True stay apart;
generators, non-tables and unhashable values still parse or fail as before; an error is
raised on every call, never cached."""

from __future__ import annotations

import pytest

from pipeline import alerts
from pipeline.alerts import _parse_rules, known_metrics, parse_rules
from pipeline.config import load_config
from pipeline.errors import ConfigError

RULE = dict(name="impact", metric="impact_g", threshold=8.0, message="soften {value:.1f}")


def _old(raw, where="[[alerts.rules]]"):
    return _parse_rules(list(raw), where, known_metrics())


def test_shipped_rules_same_as_uncached_and_cached_once():
    raw = load_config().section("alerts")["rules"]
    alerts._parsed_rules.cache_clear()
    a = parse_rules(raw)
    b = parse_rules(load_config().section("alerts")["rules"])
    assert a == b == _old(raw) and a is not b
    assert alerts._parsed_rules.cache_info().hits == 1 and alerts._parsed_rules.cache_info().misses == 1
    a.append("x")
    assert parse_rules(raw) == _old(raw)  # a caller's list is its own


@pytest.mark.parametrize("variant", [
    dict(RULE), dict(RULE, threshold=8), dict(RULE, clear=7.0, min_steps=2), dict(RULE, op="below", threshold=2.0),
    dict(RULE, relative_to="run", threshold=1.2), dict(RULE, magnitude=True, metric="contact_si_pct"),
    dict(RULE, window_steps=3, placement="foot", severity="info")])
def test_rules_equal_the_uncached_parser(variant):
    for where in ("[[alerts.rules]]", "elsewhere"):
        got = parse_rules([variant, dict(RULE, name="second")], where=where)
        assert got == _old([variant, dict(RULE, name="second")], where)
        assert [type(getattr(r, "threshold")) for r in got] == [float, float]


def test_int_float_bool_values_are_not_confused():
    ok = parse_rules([dict(RULE, min_steps=2)])
    assert ok[0].min_steps == 2
    with pytest.raises(ConfigError, match="min_steps: expected int"):
        parse_rules([dict(RULE, min_steps=2.0)])  # == 2 and same hash as 2: must not hit the cache
    with pytest.raises(ConfigError, match="threshold: expected float"):
        parse_rules([dict(RULE, threshold=True)])  # == 1 as a key


def test_generators_non_tables_unhashable_and_errors():
    assert parse_rules(r for r in [RULE]) == _old([RULE])
    with pytest.raises(ConfigError, match="expected a table"):
        parse_rules(["impact"])
    with pytest.raises(ConfigError, match="message: expected str"):
        parse_rules([dict(RULE, message=["a"])])
    for _ in range(2):  # errors every time
        with pytest.raises(ConfigError, match="must be unique"):
            parse_rules([RULE, RULE])
        with pytest.raises(ConfigError, match="unknown metric"):
            parse_rules([dict(RULE, metric="nope")])
