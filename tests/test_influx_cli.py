"""`gaitwatch replay ... --influx` and `gaitwatch spool flush` end to end: real CLI in a
subprocess, real simulated recordings through the real engine, real influxd."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time

import pytest

from influx_fixtures import influx_db, influx_server, own_influx_server  # noqa: F401 - fixtures
from pipeline import schema

from pipeline import simulator as sim  # noqa: E402  (part of the product: a missing one must fail, not skip)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    sim.write_recording(sim.SimParams(side="left", duration_s=12, sensor_id="lf"), d / "lf.csv")
    sim.write_recording(sim.SimParams(side="right", duration_s=12, sensor_id="rf", phase_s=0.35), d / "rf.csv")
    return [d / "lf.csv", d / "rf.csv"]


def config_file(path, *, url, db, spool):
    path.write_text(
        f"""[influx]
url = "{url}"
database = "{db}"
spool_dir = "{spool}"
flush_interval_s = 0.1
replay_interval_s = 0.2
retry_interval_s = 0.05
max_retries = 1
close_timeout_s = 20.0
"""
    )
    return path


def gaitwatch(*args, env, timeout=120, wait=True):
    cmd = [sys.executable, "-m", "pipeline.cli", *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def env_for(server, **over):
    env = {**os.environ, "GAITWATCH_INFLUX_USERNAME": server.user, "GAITWATCH_INFLUX_PASSWORD": server.password}
    env.update(over)
    return env


def steps_csv(out):
    with open(out / "steps.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_replay_with_influx_writes_the_same_steps_as_the_file(influx_server, influx_db, recordings, tmp_path):
    cfg = config_file(tmp_path / "gw.toml", url=influx_server.url, db=influx_db, spool=tmp_path / "spool")
    out = tmp_path / "out"
    r = gaitwatch("replay", *recordings, "--out", out, "--config", cfg, "--influx", env=env_for(influx_server))
    assert r.returncode == 0, r.stderr
    rows = steps_csv(out)
    assert len(rows) > 20
    assert influx_server.count(schema.MEASUREMENT_STEP, schema.FIELD_CONTACT_MS, db=influx_db) == len(rows)
    got = influx_server.rows(
        f'SELECT "contact_ms", "ic_s" FROM "{schema.MEASUREMENT_STEP}" WHERE "sensor" = \'lf\'', db=influx_db
    )
    want = [r for r in rows if r["sensor_id"] == "lf"]
    assert [g["contact_ms"] for g in got] == pytest.approx([float(w["contact_ms"]) for w in want], abs=1e-3)
    assert [g["ic_s"] for g in got] == pytest.approx([float(w["ic_s"]) for w in want], abs=1e-6)
    sess = influx_server.rows(f'SELECT "status" FROM "{schema.MEASUREMENT_SESSION}"', db=influx_db)
    assert sess and sess[0]["status"] == "complete"
    assert influx_server.password not in r.stderr + r.stdout


def test_wrong_password_stops_the_replay_with_one_clear_line(influx_server, influx_db, recordings, tmp_path):
    cfg = config_file(tmp_path / "gw.toml", url=influx_server.url, db=influx_db, spool=tmp_path / "spool")
    r = gaitwatch("replay", *recordings, "--out", tmp_path / "out", "--config", cfg, "--influx",
                  env=env_for(influx_server, GAITWATCH_INFLUX_PASSWORD="hunter2-wrong"))
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("gaitwatch: error: InfluxDB at") and "refused the credentials" in last
    assert "hunter2-wrong" not in r.stderr + r.stdout


def test_server_stopped_mid_replay_then_spool_flush_counts_exactly(own_influx_server, recordings, tmp_path):
    """The issue's test: start a replay, stop the server mid-run, let the run finish, start
    the server, `gaitwatch spool flush`, and count: every point is there exactly once."""
    srv = own_influx_server
    srv.create_database("gw")
    cfg = config_file(tmp_path / "gw.toml", url=srv.url, db="gw", spool=tmp_path / "spool")
    out = tmp_path / "out"
    env = env_for(srv)
    p = gaitwatch("replay", *recordings, "--out", out, "--config", cfg, "--influx", "--speed", "5",
                  env=env, wait=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until some steps have reached the server
        try:
            if srv.count(schema.MEASUREMENT_STEP, schema.FIELD_CONTACT_MS, db="gw") > 0:
                break
        except AssertionError:
            pass
        time.sleep(0.05)
    srv.stop()
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 0, stderr
    assert "keeping data in the spool" in stderr and "gaitwatch spool flush" in stderr
    rows = steps_csv(out)
    srv.start()
    partial = srv.count(schema.MEASUREMENT_STEP, schema.FIELD_CONTACT_MS, db="gw")
    assert 0 < partial < len(rows)  # the outage really cut the run
    st = gaitwatch("spool", "status", "--config", cfg, env=env)
    assert st.returncode == 0 and "spool depth: 0 points" not in st.stdout
    r = gaitwatch("spool", "flush", "--config", cfg, env=env)
    assert r.returncode == 0, r.stderr
    assert srv.count(schema.MEASUREMENT_STEP, schema.FIELD_CONTACT_MS, db="gw") == len(rows)
    for sid in ("lf", "rf"):
        got = srv.query(f'SELECT "ic_s" FROM "{schema.MEASUREMENT_STEP}" WHERE "sensor" = \'{sid}\'', db="gw")
        times = [v[0] for v in got[0]["values"]]
        assert len(times) == len(set(times)) == sum(1 for x in rows if x["sensor_id"] == sid)
    st = gaitwatch("spool", "status", "--config", cfg, env=env)
    assert "spool depth: 0 points" in st.stdout
