"""Line protocol round trips through a real InfluxDB: what we encode is what the server stores.

Hypothesis draws names and strings with spaces, commas, equals signs, quotes, backslashes and
unicode (athlete names); the server parses our lines and InfluxQL reads them back.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from influx_fixtures import influx_db, influx_server  # noqa: F401 - fixtures
from pipeline import lineprotocol as lp

_counter = itertools.count(1)

# Printable text without control characters (those are replaced by spaces, tested in
# test_lineprotocol.py), with the protocol's special characters made likely.
text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(' ,="\\\'=äöüßéZoëΣ😀')),
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
    ),
    min_size=1,
    max_size=24,
)


def expected_tag(v: str) -> str:
    stripped = v.rstrip("\\")
    return stripped + "/" * (len(v) - len(stripped))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(athlete=text, session=text, message=text, value=st.floats(allow_nan=False, allow_infinity=False))
def test_tags_strings_and_floats_survive_the_server(influx_server, influx_db, athlete, session, message, value):
    t = next(_counter)
    line = lp.encode_point(
        "rt", {"athlete": athlete, "session": session}, {"value": value, "message": message}, t, precision="ns"
    )
    status, body = influx_server.write_raw(influx_db, line.encode(), precision="ns")
    assert status == 204, (line, body)
    rows = influx_server.rows(f"SELECT * FROM rt WHERE time = {t}", db=influx_db)
    assert len(rows) == 1, line
    row = rows[0]
    assert row["athlete"] == expected_tag(athlete) and row["session"] == expected_tag(session)
    assert row["message"] == message
    assert float(row["value"]) == value  # exact: repr() round trip, the server keeps float64 (JSON may print it as an int)


def test_measurement_and_field_keys_with_special_characters(influx_server, influx_db):
    line = lp.encode_point("weird meas,1", {"tag key=x": "v"}, {"field key,=": 2.5}, 42, precision="ns")
    status, body = influx_server.write_raw(influx_db, line.encode(), precision="ns")
    assert status == 204, body
    series = influx_server.query('SELECT * FROM "weird meas,1"', db=influx_db)
    assert series[0]["columns"] == ["time", "field key,=", "tag key=x"]
    assert series[0]["values"] == [[42, 2.5, "v"]]


def test_ms_precision_lands_on_the_millisecond(influx_server, influx_db):
    ns = 1_764_000_000_123_456_789
    line = lp.encode_point("p", {}, {"v": 1.0}, ns, precision="ms")
    assert influx_server.write_raw(influx_db, line.encode(), precision="ms")[0] == 204
    rows = influx_server.rows("SELECT * FROM p", db=influx_db)
    assert rows[0]["time"] == 1_764_000_000_123_000_000


@pytest.mark.parametrize("v", [1e-300, 5e-324, 1.7976931348623157e308, -0.0, 123456789012345678.0])
def test_extreme_floats(influx_server, influx_db, v):
    line = lp.encode_point("x", {}, {"v": v}, 1, precision="ns")
    status, body = influx_server.write_raw(influx_db, line.encode(), precision="ns")
    assert status == 204, (line, body)
    status, raw = influx_server._request("GET", f"/query?db={influx_db}&q=SELECT+v+FROM+x")
    assert float(json.loads(raw)["results"][0]["series"][0]["values"][0][1]) == v
