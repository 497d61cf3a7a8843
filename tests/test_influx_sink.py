"""The InfluxDB sink against a real InfluxDB server (Debian's influxd 1.6.7, see influx_fixtures).

Every test reads back with InfluxQL over /query and asserts exact counts and values.
"""

from __future__ import annotations

import logging
import math
import time

import pytest

from influx_fixtures import (  # noqa: F401 - pytest fixtures
    InfluxServer,
    free_port,
    influx_db,
    influx_server,
    make_step_records,
    own_influx_server,
    v2_front,
)
from pipeline import schema
from pipeline.config import load_config
from pipeline.errors import SinkError
from pipeline.records import Alert, Metric, SensorInfo, SessionInfo, StepRecord
from pipeline.sinks.influx import flush_spool, sink_from_config

LEFT = SensorInfo("L-foot", "foot", "left", athlete="Zoë Müller")
RIGHT = SensorInfo("R-foot", "foot", "right", athlete="Zoë Müller")
SESSION = SessionInfo("2026-11-25 run,1", "Zoë Müller", 1_764_000_000_000_000_000)


def section(url: str, db: str, tmp_path, **over) -> dict:
    s = load_config().section("influx")
    s.update(
        enabled=True,
        url=url,
        database=db,
        bucket=db,
        spool_dir=str(tmp_path / "spool"),
        max_retries=2,
        retry_interval_s=0.02,
        max_retry_delay_s=0.1,
        max_retry_time_s=1.0,
        replay_interval_s=0.2,
        close_timeout_s=20.0,
        timeout_s=5.0,
    )
    s.update(over)
    return s


def creds(server: InfluxServer) -> dict:
    return {"username": server.user, "password": server.password}


def n_steps(server, db) -> int:
    return server.count(schema.MEASUREMENT_STEP, schema.FIELD_CONTACT_MS, db=db)


def run_session(sink, records, *, chunk: int = 25, between=None):
    for i in range(0, len(records), chunk):
        sink.write(records[i : i + chunk])
        if between:
            between(i)
    return sink


def test_v1_session_lands_with_exact_values_and_nan_left_out(influx_server, influx_db, tmp_path):
    recs = make_step_records(sensors=[LEFT, RIGHT], duration_s=60.0, nan_every=10)
    alert = Alert("overstride", "warning", 12.5, 10.0, 30.0, 'Land under your hips, "quick feet"', sensor_id="L-foot")
    sink = sink_from_config(section(influx_server.url, influx_db, tmp_path, **creds(influx_server)),
                            session=SESSION, sensors=[LEFT, RIGHT])
    run_session(sink, recs, chunk=5)
    sink.write([alert])
    stats = sink.close(None)

    assert n_steps(influx_server, influx_db) == len(recs)
    n_nan = sum(1 for r in recs if math.isnan(r.value("impact_g")))
    assert n_nan > 0
    assert influx_server.count(schema.MEASUREMENT_STEP, "impact_g", db=influx_db) == len(recs) - n_nan
    first_steps = 2  # no stride yet: cadence and flight NaN
    assert stats.nonfinite_dropped == n_nan + 2 * first_steps
    assert stats.points_written == stats.points_encoded and stats.lines_rejected == 0

    # exact values and tags of one step, found by its wall-clock timestamp
    r = recs[17]
    ts_ms = (SESSION.wall_ns(r.step.ic_s) + 500_000) // 1_000_000
    rows = influx_server.rows(
        f'SELECT * FROM "{schema.MEASUREMENT_STEP}" WHERE time = {ts_ms}ms AND "sensor" = \'{r.sensor.sensor_id}\'',
        db=influx_db,
    )
    assert len(rows) == 1
    row = rows[0]
    assert row["athlete"] == "Zoë Müller" and row["session"] == SESSION.session_id and row["side"] == r.sensor.side
    assert row["contact_ms"] == r.step.contact_ms and row["cadence_spm"] == r.step.cadence_spm
    assert row["impact_g"] == r.value("impact_g") and row["strike_angle_deg"] == r.value("strike_angle_deg")
    assert row["activity"] == r.step.activity and row["ic_s"] == r.step.ic_s

    a = influx_server.rows(f'SELECT * FROM "{schema.MEASUREMENT_ALERT}"', db=influx_db)
    assert len(a) == 1 and a[0]["message"] == alert.message and a[0]["rule"] == "overstride"
    assert a[0]["value"] == 12.5 and a[0]["sensor"] == "L-foot"

    # windows: 10 s, every step of a sensor in exactly one window
    w = influx_server.rows(
        f'SELECT "steps", "contact_ms_mean" FROM "{schema.MEASUREMENT_WINDOW}" WHERE "sensor" = \'L-foot\'',
        db=influx_db,
    )
    left = [x for x in recs if x.sensor is LEFT]
    assert sum(x["steps"] for x in w) == len(left)
    in_first = [x.step.contact_ms for x in left if x.step.ic_s < 10.0]
    assert w[0]["steps"] == len(in_first)
    assert w[0]["contact_ms_mean"] == pytest.approx(sum(in_first) / len(in_first), rel=1e-12)
    h = influx_server.rows(f'SELECT * FROM "{schema.MEASUREMENT_HEALTH}"', db=influx_db)
    assert len(h) >= 5 and h[-1]["points_nonfinite_dropped"] == stats.nonfinite_dropped
    gaps_s = [(b["time"] - a["time"]) / 1e9 for a, b in zip(h, h[1:-1])]
    assert all(g >= 10.0 for g in gaps_s)  # health_interval_s in session time


def test_rewriting_a_session_does_not_duplicate(influx_server, influx_db, tmp_path):
    recs = make_step_records(sensors=[LEFT, RIGHT], duration_s=30.0)
    for i in range(2):
        sink = sink_from_config(section(influx_server.url, influx_db, tmp_path / str(i), **creds(influx_server)),
                                session=SESSION, sensors=[LEFT, RIGHT])
        run_session(sink, recs, chunk=7 + i * 30)  # different batch boundaries
        sink.close(None)
        assert n_steps(influx_server, influx_db) == len(recs)
    n_windows = influx_server.count(schema.MEASUREMENT_WINDOW, "steps", db=influx_db)
    assert n_windows == 2 * 3  # 30 s, 2 sensors, 10 s windows


def test_summary_is_written_as_session_points(influx_server, influx_db, tmp_path):
    from pipeline.summary import SummaryBuilder

    recs = make_step_records(sensors=[LEFT, RIGHT], duration_s=20.0)
    b = SummaryBuilder(SESSION, [LEFT, RIGHT])
    b.add(recs)
    summary = b.build(counters={s.sensor_id: {"samples": 4000, "fs_hz": 200.0} for s in (LEFT, RIGHT)})
    sink = sink_from_config(section(influx_server.url, influx_db, tmp_path, **creds(influx_server)),
                            session=SESSION, sensors=[LEFT, RIGHT])
    sink.write(recs)
    sink.close(summary)
    rows = influx_server.rows(f'SELECT * FROM "{schema.MEASUREMENT_SESSION}" GROUP BY *', db=influx_db)
    by_sensor = {r.get("sensor", ""): r for r in rows if not r.get("side") or r.get("sensor")}
    assert by_sensor["L-foot"]["steps"] == sum(1 for r in recs if r.sensor is LEFT)
    assert by_sensor[""]["status"] == "complete"
    assert all(r["time"] == SESSION.start_wall_ns for r in rows)


def test_wrong_password_is_a_clear_error_at_start_that_hides_the_secret(influx_server, influx_db, tmp_path, caplog):
    secret = "s3cret-Pa55word-do-not-print"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SinkError) as e:
        sink_from_config(section(influx_server.url, influx_db, tmp_path, username=influx_server.user, password=secret),
                         session=SESSION, sensors=[LEFT])
    assert "refused the credentials" in str(e.value) and "401" in str(e.value)
    assert secret not in str(e.value) and secret not in caplog.text


def test_token_from_environment_is_used_and_never_printed(influx_server, influx_db, v2_front, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("GAITWATCH_INFLUX_TOKEN", "gw_admin:wrong-token-xyz")
    for transport in ("v1", "v2"):
        with pytest.raises(SinkError) as e:
            sink_from_config(section(v2_front.url, influx_db, tmp_path / transport, transport=transport),
                             session=SESSION, sensors=[LEFT])
        assert "401" in str(e.value) and "wrong-token-xyz" not in str(e.value)
    assert "wrong-token-xyz" not in caplog.text
    monkeypatch.setenv("GAITWATCH_INFLUX_TOKEN", v2_front.token)
    sink = sink_from_config(section(v2_front.url, influx_db, tmp_path / "ok", transport="v1"), session=SESSION, sensors=[LEFT])
    sink.write(make_step_records(sensors=[LEFT], duration_s=10.0))
    sink.close(None)
    assert n_steps(influx_server, influx_db) == len(make_step_records(sensors=[LEFT], duration_s=10.0))
    assert v2_front.token not in caplog.text


def test_unknown_database_is_a_clear_error_at_start(influx_server, tmp_path):
    with pytest.raises(SinkError, match="database 'no_such_db' not found"):
        sink_from_config(section(influx_server.url, "no_such_db", tmp_path, **creds(influx_server)),
                         session=SESSION, sensors=[LEFT])


def test_malformed_point_is_logged_and_skipped_rest_written(influx_server, influx_db, tmp_path, caplog):
    """One step carries a field the database already holds as a string: the server refuses
    that point (400, field type conflict); it is found by splitting, logged, and the rest written."""
    recs = make_step_records(sensors=[LEFT], duration_s=60.0)
    bad_i = 11
    odd = recs[bad_i]
    recs[bad_i] = StepRecord(odd.sensor, odd.step, odd.metrics + (Metric("odd_metric", 1.5, "", 0.0, "L-foot"),))
    ts = SESSION.wall_ns(odd.step.ic_s) // 1_000_000
    status, _ = influx_server.write_raw(
        influx_db, f'{schema.MEASUREMENT_STEP},sensor=other odd_metric="text" {ts - 5}'.encode(), precision="ms"
    )
    assert status == 204
    caplog.set_level(logging.ERROR)
    sink = sink_from_config(section(influx_server.url, influx_db, tmp_path, **creds(influx_server)),
                            session=SESSION, sensors=[LEFT])
    sink.write(recs)
    stats = sink.close(None)
    assert stats.lines_rejected == 1 and "odd_metric=1.5" in stats.rejected_examples[0]
    assert "rejected a point" in caplog.text and "odd_metric" in caplog.text
    assert n_steps(influx_server, influx_db) == len(recs) - 1
    assert sink.spool.depth_points == 0


def test_v1_retries_5xx_and_429_with_backoff(influx_server, influx_db, v2_front, tmp_path):
    recs = make_step_records(sensors=[LEFT], duration_s=30.0)
    sink = sink_from_config(section(v2_front.url, influx_db, tmp_path, transport="v1", **creds(influx_server)),
                            session=SESSION, sensors=[LEFT])
    v2_front.fail_next = [503, 429]
    before = len(v2_front.requests)
    sink.write(recs)
    stats = sink.close(None)
    assert v2_front.fail_next == [] and len(v2_front.requests) - before >= 3
    assert n_steps(influx_server, influx_db) == len(recs) and stats.outages == 0


def test_v1_backoff_waits_between_retries(influx_server, influx_db, v2_front, tmp_path):
    """Two 503s in a row: urllib3's exponential backoff (retry_interval_s * 2**(n-1) from the
    second retry on) must hold the batch back, not hammer the server."""
    recs = make_step_records(sensors=[LEFT], duration_s=10.0)
    sink = sink_from_config(section(v2_front.url, influx_db, tmp_path, transport="v1", retry_interval_s=0.3,
                                    max_retry_delay_s=5.0, **creds(influx_server)), session=SESSION, sensors=[LEFT])
    v2_front.fail_next = [503, 503]
    t0 = time.monotonic()
    sink.write(recs)
    sink.close(None)
    assert time.monotonic() - t0 >= 0.6 * 0.95  # second retry waits 0.3 * 2 s
    assert v2_front.fail_next == [] and n_steps(influx_server, influx_db) == len(recs)


def test_5xx_beyond_retries_is_spooled_then_replayed(influx_server, influx_db, v2_front, tmp_path, caplog):
    recs = make_step_records(sensors=[LEFT], duration_s=30.0)
    caplog.set_level(logging.WARNING)
    sink = sink_from_config(section(v2_front.url, influx_db, tmp_path, transport="v1", **creds(influx_server)),
                            session=SESSION, sensors=[LEFT])
    v2_front.fail_next = [503] * 6  # more than 1 + max_retries(2)
    sink.write(recs[:30])
    sink._spool_buffer()
    deadline = time.monotonic() + 10
    while sink.stats.outages == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sink.stats.outages == 1 and sink.spool.depth_points >= 30
    sink.write(recs[30:])
    stats = sink.close(None)
    assert n_steps(influx_server, influx_db) == len(recs)
    assert sink.spool.depth_points == 0 and stats.outages == 1
    assert caplog.text.count("keeping data in the spool") == 1 and "is back" in caplog.text


def test_v2_transport_end_to_end_through_influxdb_client(influx_server, influx_db, v2_front, tmp_path):
    """The real influxdb-client batching WriteApi -> compatibility front -> real server.

    The front exists only because Debian's 1.6.7 lacks /api/v2/write (1.8+ has it)."""
    recs = make_step_records(sensors=[LEFT, RIGHT], duration_s=60.0)
    sink = sink_from_config(
        section(v2_front.url, influx_db, tmp_path, transport="v2", token=v2_front.token, batch_size=100),
        session=SESSION, sensors=[LEFT, RIGHT],
    )
    v2_front.fail_next = [503]  # the client's own retry must absorb this
    run_session(sink, recs, chunk=40)
    stats = sink.close(None)
    assert n_steps(influx_server, influx_db) == len(recs)
    assert stats.outages == 0 and stats.points_written == stats.points_encoded
    writes = [r for r in v2_front.requests if r == "POST /api/v2/write"]
    assert len(writes) >= stats.points_written // 100  # batches of at most 100 lines


def test_v2_transport_wrong_bucket_and_rejected_point(influx_server, influx_db, v2_front, tmp_path):
    with pytest.raises(SinkError, match="not found"):
        sink_from_config(section(v2_front.url, "nope", tmp_path / "a", transport="v2", token=v2_front.token),
                         session=SESSION, sensors=[LEFT])
    recs = make_step_records(sensors=[LEFT], duration_s=20.0)
    odd = recs[5]
    recs[5] = StepRecord(odd.sensor, odd.step, odd.metrics + (Metric("odd_metric", 2.5, "", 0.0, "L-foot"),))
    ts = SESSION.wall_ns(odd.step.ic_s) // 1_000_000
    influx_server.write_raw(influx_db, f'{schema.MEASUREMENT_STEP} odd_metric="x" {ts - 1}'.encode(), precision="ms")
    sink = sink_from_config(section(v2_front.url, influx_db, tmp_path / "b", transport="v2", token=v2_front.token),
                            session=SESSION, sensors=[LEFT])
    sink.write(recs)
    stats = sink.close(None)
    assert stats.lines_rejected == 1 and n_steps(influx_server, influx_db) == len(recs) - 1


def _records_and_alerts():
    recs = make_step_records(sensors=[LEFT, RIGHT], duration_s=120.0, nan_every=13)
    return recs


@pytest.mark.parametrize("transport", ["v1", "v2"])
def test_outage_mid_run_replays_automatically_exactly_once(own_influx_server, tmp_path, transport, caplog):
    """Stop the server mid-run, keep writing, restart it mid-run: at close every point is there once."""
    from influx_fixtures import V2CompatFront

    srv = own_influx_server
    srv.create_database("gw")
    front = V2CompatFront(srv) if transport == "v2" else None
    url = front.url if front else srv.url
    extra = {"token": front.token} if front else creds(srv)
    caplog.set_level(logging.WARNING)
    recs = _records_and_alerts()
    sink = sink_from_config(section(url, "gw", tmp_path, transport=transport, batch_size=50, flush_interval_s=0.0, **extra),
                            session=SESSION, sensors=[LEFT, RIGHT])
    n = len(recs)

    def outage(i):
        if i == 100:
            srv.stop()
        if i == 150:  # let the sink notice: its retries run out and it starts spooling
            deadline = time.monotonic() + 20
            while sink.stats.outages == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
        if i == 300:
            assert sink.spool.depth_points > 0  # piled up while down
            srv.start()

    try:
        run_session(sink, recs, chunk=25, between=outage)
        stats = sink.close(None)
    finally:
        if front:
            front.close()
    assert srv.count(schema.MEASUREMENT_STEP, schema.FIELD_CONTACT_MS, db="gw") == n
    # exactly once per series and timestamp: per sensor, distinct IC times == points
    for s in (LEFT, RIGHT):
        got = srv.query(f'SELECT "ic_s" FROM "{schema.MEASUREMENT_STEP}" WHERE "sensor" = \'{s.sensor_id}\'', db="gw")
        times = [v[0] for v in got[0]["values"]]
        assert len(times) == len(set(times)) == sum(1 for r in recs if r.sensor is s)
    assert stats.outages >= 1 and sink.spool.depth_points == 0
    assert "keeping data in the spool" in caplog.text


def test_server_down_for_the_whole_run_then_spool_flush(own_influx_server, tmp_path, caplog):
    """The issue's scenario: server down, the run finishes, the server starts, flush, count."""
    srv = own_influx_server
    srv.create_database("gw")
    srv.stop()
    caplog.set_level(logging.WARNING)
    recs = _records_and_alerts()
    sec = section(srv.url, "gw", tmp_path, close_timeout_s=1.0, **creds(srv))
    sink = sink_from_config(sec, session=SESSION, sensors=[LEFT, RIGHT])  # down at start: warns, continues
    run_session(sink, recs)
    stats = sink.close(None)
    assert caplog.text.count("keeping data in the spool") == 1
    assert "safe in" in caplog.text
    assert sink.spool.depth_points == stats.points_encoded > len(recs)
    srv.start()
    sent, left = flush_spool(sec, timeout_s=20)
    assert (sent, left) == (stats.points_encoded, 0)
    assert srv.count(schema.MEASUREMENT_STEP, schema.FIELD_CONTACT_MS, db="gw") == len(recs)
    assert flush_spool(sec, timeout_s=5) == (0, 0)  # nothing twice


def test_next_run_replays_an_earlier_runs_spool_first(own_influx_server, tmp_path):
    srv = own_influx_server
    srv.create_database("gw")
    srv.stop()
    sec = section(srv.url, "gw", tmp_path, close_timeout_s=0.5, **creds(srv))
    first = make_step_records(sensors=[LEFT], duration_s=30.0)
    sink = sink_from_config(sec, session=SESSION, sensors=[LEFT])
    sink.write(first)
    sink.close(None)
    srv.start()
    later = SessionInfo("second", "Zoë Müller", SESSION.start_wall_ns + 3600 * 10**9)
    sink = sink_from_config(sec, session=later, sensors=[LEFT])
    second = make_step_records(sensors=[LEFT], duration_s=20.0)
    sink.write(second)
    sink.close(None)
    assert srv.count(schema.MEASUREMENT_STEP, "contact_ms", db="gw") == len(first) + len(second)


def test_full_spool_stops_the_run(influx_server, tmp_path):
    port = free_port()  # nothing listens here
    sec = section(f"http://127.0.0.1:{port}", "gw", tmp_path, spool_max_mb=0.05, batch_size=100,
                  username="u", password="p")
    sink = sink_from_config(sec, session=SESSION, sensors=[LEFT])
    recs = make_step_records(sensors=[LEFT], duration_s=600.0)
    with pytest.raises(SinkError, match="spool .* is full"):
        for i in range(0, len(recs), 50):
            sink.write(recs[i : i + 50])
            sink._last_spool = 0.0  # spool at every write
    depth = sink.spool.depth_points
    assert depth > 0
    sink.close(None)  # the error was raised once, from write(); close cleans up quietly
    assert sink.spool.depth_points == depth  # everything accepted is still there


def test_partial_buffer_reaches_the_server_without_another_write(influx_server, influx_db, tmp_path):
    """Live: the runner stops, no write() comes; the last steps still arrive within flush_interval_s."""
    recs = make_step_records(sensors=[LEFT], duration_s=10.0)
    sink = sink_from_config(section(influx_server.url, influx_db, tmp_path, flush_interval_s=0.3, **creds(influx_server)),
                            session=SESSION, sensors=[LEFT])
    try:
        sink.write(recs[:1])  # first call: the buffer is young, nothing spooled yet
        sink.write(recs[1:])
        deadline = time.monotonic() + 10
        while n_steps(influx_server, influx_db) < len(recs) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert n_steps(influx_server, influx_db) == len(recs)
    finally:
        sink.close(None)


def test_ns_precision_and_source_health(influx_server, influx_db, tmp_path):
    recs = make_step_records(sensors=[LEFT], duration_s=5.0)
    sink = sink_from_config(section(influx_server.url, influx_db, tmp_path, precision="ns", **creds(influx_server)),
                            session=SESSION, sensors=[LEFT])
    sink.write(recs)
    sink.write_health(t_s=4.5, component=schema.HEALTH_COMPONENT_SOURCE, sensor="L-foot",
                      values={schema.FIELD_PACKETS_LOST: 3, schema.FIELD_RESYNCS: 1, schema.FIELD_LATENCY_MS: 12.5})
    sink.close(None)
    times = [v[0] for v in influx_server.query(f'SELECT "ic_s" FROM "{schema.MEASUREMENT_STEP}"', db=influx_db)[0]["values"]]
    assert times == [SESSION.wall_ns(r.step.ic_s) for r in recs]  # exact nanoseconds
    h = influx_server.rows(
        f'SELECT * FROM "{schema.MEASUREMENT_HEALTH}" WHERE "component" = \'{schema.HEALTH_COMPONENT_SOURCE}\'', db=influx_db)
    assert len(h) == 1 and h[0]["packets_lost"] == 3 and h[0]["resyncs"] == 1 and h[0]["sensor"] == "L-foot"
    assert h[0]["time"] == SESSION.wall_ns(4.5)


@pytest.mark.parametrize("in_flight", [1, 2])
def test_replay_burst_is_sent_in_requests_of_batch_size(influx_server, influx_db, tmp_path, in_flight):
    """A replay hands lines faster than the server takes them: lines are spooled in chunks of
    batch_size // 5 as they fill (the next request is ready when the server answers), and the
    worker joins the waiting chunks into requests of at most batch_size lines, full ones once
    the server falls behind; the few lines past a whole chunk wait for the next one; every
    point lands. With two requests in flight, the final gait_health point goes alone, last."""
    recs = make_step_records(sensors=[LEFT, RIGHT], duration_s=300.0)
    sink = sink_from_config(section(influx_server.url, influx_db, tmp_path, batch_size=200, flush_interval_s=60.0,
                                    requests_in_flight=in_flight, **creds(influx_server)),
                            session=SESSION, sensors=[LEFT, RIGHT])
    assert sink.chunk_lines == 40 and sink.requests_in_flight == in_flight
    sizes: list[int] = []
    last_lines: list[bytes] = []
    send = sink.transport.send

    def counting(body: bytes) -> None:
        sizes.append(body.count(b"\n"))
        last_lines[:] = [body.rstrip(b"\n").rsplit(b"\n", 1)[-1]]
        send(body)

    sink.transport.send = counting
    run_session(sink, recs, chunk=3)
    stats = sink.close(None)
    assert n_steps(influx_server, influx_db) == len(recs)
    assert sum(sizes) == stats.points_written == stats.points_encoded > len(recs)
    tail = 1 if in_flight == 1 else 2  # (2: the rest of the buffer, then the final health point alone)
    assert all(n % 40 == 0 and n <= 200 for n in sizes[:-tail]) and all(0 < n <= 200 for n in sizes[-tail:]), sizes
    assert len(sizes) < sum(sizes) / 40 and max(sizes) == 200, sizes  # chunks joined, up to full requests
    if in_flight == 2:
        assert sizes[-1] == 1 and last_lines[0].startswith(schema.MEASUREMENT_HEALTH.encode() + b","), last_lines
    assert not list(sink.spool.directory.glob("*.lp"))  # accepted batches' files deleted by close()


def test_live_pace_is_sent_every_flush_interval(influx_server, influx_db, tmp_path):
    """Live: a few steps per second never fill a batch; while write() keeps coming, what was
    written reaches the server within ~flush_interval_s, in requests far below batch_size."""
    recs = make_step_records(sensors=[LEFT], duration_s=60.0)
    sink = sink_from_config(section(influx_server.url, influx_db, tmp_path, flush_interval_s=0.3,
                                    **creds(influx_server)), session=SESSION, sensors=[LEFT])
    try:
        for r in recs[:20]:
            sink.write([r])
            time.sleep(0.05)
        written_by = time.monotonic()
        deadline = written_by + 10
        while n_steps(influx_server, influx_db) < 15 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert n_steps(influx_server, influx_db) >= 15  # all but the last < 0.3 s of writes
        assert time.monotonic() - written_by < 1.0  # (the flush interval and a request)
        assert sink.stats.batches_written >= 2  # sent in several small requests, not at close
    finally:
        sink.close(None)
    assert n_steps(influx_server, influx_db) == 20
