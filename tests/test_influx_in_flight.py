"""Several write requests in flight ([influx] requests_in_flight), against a real influxd.

InfluxDB 1.x parses and stores concurrent write requests on separate cores, so the v1 sink
sends up to ``requests_in_flight`` requests at once (default 2), one worker thread each.
The outage-and-replay tests in test_influx_sink.py run with the default too; these check
what is specific to concurrency: the requests really overlap, never more than asked, every
point lands, and the final gait_health point (whose series and time may equal a periodic
one's) is written last, after everything else was acknowledged.
"""

from __future__ import annotations

import threading
import time

import pytest

from influx_fixtures import influx_db, influx_server, make_step_records, v2_front  # noqa: F401 - fixtures
from pipeline import schema
from pipeline.errors import ConfigError
from pipeline.records import Alert
from test_influx_sink import LEFT, RIGHT, SESSION, creds, n_steps, run_session, section
from pipeline.sinks.influx import sink_from_config


def _overlap_probe(sink, *, hold_s: float):
    """Wrap the transport's send: record how many requests are in flight at once. Each
    request is held ``hold_s`` before it goes to the (real) server, so two workers' requests
    overlap whenever two are allowed, however fast this server answers."""
    state = {"active": 0, "max": 0, "requests": 0}
    lock = threading.Lock()
    send = sink.transport.send

    def probed(body: bytes) -> None:
        with lock:
            state["active"] += 1
            state["requests"] += 1
            state["max"] = max(state["max"], state["active"])
        try:
            time.sleep(hold_s)
            send(body)
        finally:
            with lock:
                state["active"] -= 1

    sink.transport.send = probed
    return state


@pytest.mark.parametrize("in_flight", [1, 2, 3])
def test_requests_overlap_up_to_the_limit_and_every_point_lands(influx_server, influx_db, tmp_path, in_flight):
    recs = make_step_records(sensors=[LEFT, RIGHT], duration_s=300.0)
    sink = sink_from_config(section(influx_server.url, influx_db, tmp_path, batch_size=100, flush_interval_s=60.0,
                                    requests_in_flight=in_flight, **creds(influx_server)),
                            session=SESSION, sensors=[LEFT, RIGHT])
    state = _overlap_probe(sink, hold_s=0.03)
    run_session(sink, recs, chunk=3)
    stats = sink.close(None)
    assert state["max"] == in_flight, state
    assert n_steps(influx_server, influx_db) == len(recs)
    assert stats.points_written == stats.points_encoded and stats.lines_rejected == 0
    assert sink.spool.depth_points == 0 and not list(sink.spool.directory.glob("*.lp"))
    # one point per series and time: the IC times of each sensor are all there, once
    for s in (LEFT, RIGHT):
        got = influx_server.query(
            f'SELECT "ic_s" FROM "{schema.MEASUREMENT_STEP}" WHERE "sensor" = \'{s.sensor_id}\'', db=influx_db)
        times = [v[0] for v in got[0]["values"]]
        assert len(times) == len(set(times)) == sum(1 for r in recs if r.sensor is s)
    # the final health point went last: it counts every point written before it
    last = influx_server.rows(
        f'SELECT * FROM "{schema.MEASUREMENT_HEALTH}" WHERE "component" = \'{schema.HEALTH_COMPONENT_INFLUX}\' '
        f'ORDER BY time DESC LIMIT 1', db=influx_db)[0]
    if in_flight > 1:
        assert last[schema.FIELD_POINTS_WRITTEN] == stats.points_written - 1
    else:  # one request at a time: the final point is in the last request, counted before it
        assert last[schema.FIELD_POINTS_WRITTEN] < stats.points_written


def test_final_health_point_wins_over_a_periodic_one_with_the_same_time(influx_server, influx_db, tmp_path):
    """The session's last record falls exactly on a health interval (an alert at t = 50 s):
    the periodic gait_health point and the final one then share series and time. The final
    one (sent after everything else was acknowledged, so it counts every point before it)
    must be what is stored, although two requests are in flight."""
    recs = [r for r in make_step_records(sensors=[LEFT], duration_s=60.0) if r.step.ic_s < 50.0]
    sink = sink_from_config(section(influx_server.url, influx_db, tmp_path, batch_size=50, flush_interval_s=60.0,
                                    requests_in_flight=2, health_interval_s=10.0, **creds(influx_server)),
                            session=SESSION, sensors=[LEFT])
    _overlap_probe(sink, hold_s=0.01)
    run_session(sink, recs, chunk=5)
    sink.write([Alert("overstride", "warning", 12.5, 10.0, 50.0, "Land under your hips", sensor_id=LEFT.sensor_id)])
    stats = sink.close(None)
    rows = influx_server.rows(
        f'SELECT * FROM "{schema.MEASUREMENT_HEALTH}" WHERE "component" = \'{schema.HEALTH_COMPONENT_INFLUX}\'',
        db=influx_db)
    at_end = [r for r in rows if r["time"] == SESSION.wall_ns(50.0)]
    assert len(at_end) == 1 and rows[-1] is at_end[0], rows
    assert at_end[0][schema.FIELD_POINTS_WRITTEN] == stats.points_written - 1


def test_v2_sends_one_request_at_a_time(influx_server, influx_db, v2_front, tmp_path):
    """influxdb-client's batching WriteApi reports through one set of callbacks: the v2
    transport caps the sink at one request in flight, whatever the config asks."""
    sink = sink_from_config(section(v2_front.url, influx_db, tmp_path, transport="v2", token=v2_front.token,
                                    requests_in_flight=4), session=SESSION, sensors=[LEFT])
    try:
        assert sink.requests_in_flight == 1 and len(sink._workers) == 1
    finally:
        sink.close(None)


@pytest.mark.parametrize("bad", [0, -1])
def test_requests_in_flight_below_one_is_a_config_error(influx_server, influx_db, tmp_path, bad):
    with pytest.raises(ConfigError, match="requests_in_flight must be >= 1"):
        sink_from_config(section(influx_server.url, influx_db, tmp_path, requests_in_flight=bad,
                                 **creds(influx_server)), session=SESSION, sensors=[LEFT])
