"""Every Grafana dashboard query, proven against a real InfluxDB (issue 8).

The real server (tests/influx_fixtures.py) is seeded the way a team would fill it: simulated
sessions of three athletes (``gaitwatch simulate --session``) replayed through the real
engine and the real InfluxDB sink (``gaitwatch replay --influx``), and a few weeks of
training history written by :class:`pipeline.history.InfluxHistory` with the load rules'
verdicts of :func:`pipeline.training_load.evaluate`. Then every template variable,
annotation and panel target of every dashboard is expanded as Grafana's InfluxDB datasource
does and run over ``/query``: each must answer non-empty series with the expected columns.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipeline import dashboards_gen as dg
from pipeline import schema
from pipeline.cli import main as cli_main
from tests.influx_fixtures import influx_db, influx_server  # noqa: F401  (pytest fixtures)

# athlete -> (simulator session kind, extra simulate options): a heel striker who overstrides
# and lands hard (warnings), a forefoot runner, and a runner with natural stride variability
# whose contacts lengthen over the run (+15 %: fatigue).
ATHLETES = {
    "ana": ("demo", ["--strike-angle-deg", "18", "--shank-angle-ic-deg", "13", "--impact-g", "11"]),
    "ben": ("forefoot", []),
    "cho": ("demo", ["--variability", "1", "--drift", "contact_ms=0.15"]),
}
RUN_DAYS = (datetime(2026, 1, 5, 7, 0, tzinfo=timezone.utc), datetime(2026, 1, 8, 18, 30, tzinfo=timezone.utc))
DURATION_S = 15
FS_HZ = 200
FROM = datetime(2025, 11, 1, tzinfo=timezone.utc)
TO = datetime(2026, 1, 10, tzinfo=timezone.utc)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def seed_sessions(tmp: Path, *, url: str, database: str, spool: Path) -> dict[str, list[str]]:
    """Simulate each athlete's run once and replay it on each day into InfluxDB (the real
    engine and sink, through ``gaitwatch replay --influx``); returns athlete -> session ids."""
    sessions: dict[str, list[str]] = {}
    for athlete, (kind, extra) in ATHLETES.items():
        rec = tmp / f"rec_{athlete}"
        assert cli_main(["simulate", str(rec), "--session", kind, "--duration-s", str(DURATION_S),
                         "--fs-hz", str(FS_HZ), "--stand-s", "2", *extra]) == 0
        recordings = sorted(p for p in rec.glob(f"{kind}_*.csv") if not p.stem.endswith("_truth"))
        for k, start in enumerate(RUN_DAYS):
            sid = f"{athlete}-run{k + 1}"
            paths = []
            for csv in recordings:
                part = csv.stem[len(kind) + 1:]  # left_foot, right_foot, right_shank
                meta = json.loads(csv.with_suffix(".json").read_text())
                meta.update(sensor_id=f"{athlete}_{part}", start_utc=start.strftime("%Y-%m-%dT%H:%M:%SZ"))
                new = rec / f"{sid}_{part}.csv"
                new.symlink_to(csv.name)
                new.with_suffix(".json").write_text(json.dumps(meta))
                paths.append(str(new))
            assert cli_main(["replay", *paths, "--out", str(tmp / f"out_{sid}"), "--athlete", athlete,
                             "--influx", "--influx-url", url, "--influx-db", database,
                             "--influx-spool-dir", str(spool)]) == 0
            sessions.setdefault(athlete, []).append(sid)
    return sessions


def seed_history(*, url: str, database: str, user: str, password: str) -> None:
    """Six weeks of runs per athlete (one ramps up too fast) with the load rules' verdicts."""
    from pipeline.history import InfluxHistory, SessionEntry
    from pipeline.training_load import evaluate

    h = InfluxHistory(url=url, database=database, username=user, password=password)
    monday = datetime(2025, 11, 24, 7, 0, tzinfo=timezone.utc)
    for i, athlete in enumerate(ATHLETES):
        for week in range(6):
            ramp = 1.6 ** week if athlete == "ana" else 1.0 + 0.05 * week  # ana: far over +30 %/2 weeks
            for day in (0, 3):
                minutes = 30.0 * ramp + 5 * i
                start = monday + timedelta(days=7 * week + day)
                h.add_session(SessionEntry(athlete=athlete, session_id=f"{athlete}-w{week}d{day}", start=start,
                                           duration_s=minutes * 60, distance_m=minutes * 60 * 3.0, steps=int(minutes * 170),
                                           mean_impact_g=6.0 + i, load=minutes * (6.0 + i) / 6.0))
        entries = h.sessions(athlete)
        last = entries[-1]
        at = last.start + timedelta(seconds=last.duration_s)
        h.add_verdicts(athlete, evaluate(entries, h.checkins(athlete), now=at), at=at, session_id=last.session_id)


@pytest.fixture(scope="module")
def seeded(influx_server, tmp_path_factory):  # noqa: F811
    tmp = tmp_path_factory.mktemp("dash")
    db = "dash_" + secrets.token_hex(3)
    influx_server.create_database(db)
    env = {"GAITWATCH_INFLUX_USERNAME": influx_server.user, "GAITWATCH_INFLUX_PASSWORD": influx_server.password}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        sessions = seed_sessions(tmp, url=influx_server.url, database=db, spool=tmp / "spool")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seed_history(url=influx_server.url, database=db, user=influx_server.user, password=influx_server.password)
    yield {"db": db, "sessions": sessions, "tmp": tmp}
    influx_server.query(f'DROP DATABASE "{db}"')


def _run_query(influx_server, db):  # noqa: F811
    return dg.http_query_fn(influx_server.url, db, username=influx_server.user, password=influx_server.password)


@pytest.mark.parametrize("name", sorted(dg.all_dashboards()))
def test_every_query_answers_with_its_columns(seeded, influx_server, name):  # noqa: F811
    model = dg.all_dashboards()[name]
    pick = {"athlete": "ana", "session": "ana-run2"}
    res = dg.check_dashboard(model, _run_query(influx_server, seeded["db"]), from_ms=_ms(FROM), to_ms=_ms(TO), pick=pick)
    n_targets = sum(len(p["targets"]) for p in model["panels"])
    n_expected = n_targets + len(model["templating"]["list"]) + len(model["annotations"]["list"])
    assert len(res) == n_expected
    # the variables found what was seeded
    var = {r.where: r for r in res}
    athletes = {row[1] for s in var["variable $athlete"].series for row in s["values"]}
    assert athletes == set(ATHLETES)
    if "variable $session" in var:
        assert {row[1] for s in var["variable $session"].series for row in s["values"]} == set(seeded["sessions"]["ana"])
    # filters really apply: no series of another athlete where one athlete is picked
    if not any(v.get("multi") for v in model["templating"]["list"]):
        for r in res:
            for s in r.series:
                assert s.get("tags", {}).get(schema.TAG_ATHLETE, pick["athlete"]) == pick["athlete"], r.where


def test_the_values_are_the_seeded_ones(seeded, influx_server):  # noqa: F811
    """Spot checks that the panels show the data, not just any data."""
    fn = _run_query(influx_server, seeded["db"])
    res = {r.where: r for r in dg.check_dashboard(dg.team_overview(), fn, from_ms=_ms(FROM), to_ms=_ms(TO))}
    latest = next(r for k, r in res.items() if "Latest session" in k)
    by_athlete = {s["tags"]["athlete"]: dict(zip(s["columns"], s["values"][0])) for s in latest.series}
    assert set(by_athlete) == set(ATHLETES)
    assert all(v["session"].endswith("run2") and v["status"] == "complete" for v in by_athlete.values())
    assert all(abs(v["duration_s"] - DURATION_S) < 3.0 for v in by_athlete.values())
    active = next(r for k, r in res.items() if "Active alerts" in k)
    who = {(s["tags"]["athlete"], s["tags"]["rule"]) for s in active.series}
    assert ("ana", "overstriding") in who  # shank angle 13 deg > the rule's 10 deg
    assert all(a != "ben" for a, _ in who)  # the forefoot runner has no warning
    # training load: ana's ramp fires the 2-week rule, the others' does not
    res = {r.where: r for r in dg.check_dashboard(dg.training_load(), fn, from_ms=_ms(FROM), to_ms=_ms(TO))}
    verdicts = next(r for k, r in res.items() if "verdicts" in k)
    fired = {(s["tags"]["athlete"], s["tags"]["rule"]): s["values"][0][1] for s in verdicts.series}
    assert fired[("ana", "weekly_ramp")] == 1.0 and fired[("ben", "weekly_ramp")] == 0.0
    weekly = next(r for k, r in res.items() if "Weekly running time" in k)
    ana = next(s for s in weekly.series if s["tags"]["athlete"] == "ana")
    minutes = [v[1] for v in ana["values"] if v[1]]
    assert len(minutes) == 6 and minutes[1] == pytest.approx(minutes[0] * 1.6, rel=1e-6)
    assert minutes[0] == pytest.approx(2 * 30.0, rel=1e-6)  # two 30-min runs in the first week (from Monday)


def test_a_broken_query_fails_the_check(seeded, influx_server):  # noqa: F811
    fn = _run_query(influx_server, seeded["db"])
    good = dg.session_review()
    kw = dict(from_ms=_ms(FROM), to_ms=_ms(TO), pick={"athlete": "ana", "session": "ana-run1"})
    dg.check_dashboard(good, fn, **kw)
    breakages = {
        "syntax": lambda t: t.replace("SELECT", "SELEC", 1),
        "unknown field (no data)": lambda t: t.replace('"contact_ms"', '"contact_msec"'),
        "unknown measurement": lambda t: t.replace('"gait_step"', '"gait_steps"'),
        "filter on a value that never occurs": lambda t: t.replace("'running'", "'Running'"),
        "misspelt GROUP BY tag": lambda t: t.replace('"side" fill', '"sides" fill'),
        "undefined variable": lambda t: t.replace("$session", "$sesion"),
    }
    for what, breaker in breakages.items():
        bad = copy.deepcopy(good)
        changed = False
        for p in bad["panels"]:
            for t in p["targets"]:
                new = breaker(t["query"])
                if new != t["query"] and not changed:
                    t["query"], changed = new, True
        assert changed, what
        with pytest.raises(dg.CheckError):
            dg.check_dashboard(bad, fn, **kw)
            pytest.fail(f"the check passed a broken query ({what})")
    # a time range without data: the check fails rather than passing on empty answers
    with pytest.raises(dg.CheckError, match="no data"):
        dg.check_dashboard(good, fn, from_ms=_ms(FROM) - 10**10, to_ms=_ms(FROM) - 10**9, pick=kw["pick"])


def test_check_command_line(seeded, influx_server, capsys):  # noqa: F811
    rc = dg.main(["check", influx_server.url, seeded["db"], "--from", FROM.isoformat(), "--to", TO.isoformat(),
                  "-u", influx_server.user, "-p", influx_server.password])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.count("ok ") == len(dg.all_dashboards())


def test_history_sink_stores_the_verdicts_the_dashboard_reads(influx_server, influx_db):  # noqa: F811
    """A replay with the history in InfluxDB: HistorySink writes the run to gait_history and the
    load rules' verdicts to gait_load, which the training-load dashboard's queries answer."""
    from firmware_bridge.recording import open_recordings
    from firmware_bridge.replay import replay
    from pipeline.config import load_config
    from pipeline.engine import Engine
    from pipeline.history import InfluxHistory
    from pipeline.records import SessionInfo
    from pipeline.run import run_session
    from pipeline.sinks.history_sink import HistorySink

    root = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
    paths = sorted(p for p in root.glob("*.csv") if not p.stem.endswith("_truth"))
    config = load_config()
    recs = open_recordings(paths, config=config, athlete="dee")
    session = SessionInfo(session_id="dee-demo", athlete="dee", start_wall_ns=recs[0].start_utc_ns or 0)
    h = InfluxHistory(url=influx_server.url, database=influx_db, username=influx_server.user,
                      password=influx_server.password)
    sink = HistorySink(h, config=config, stream=open(os.devnull, "w"))
    run_session(replay(recs), Engine([r.info for r in recs], config=config), [sink], session=session)
    rows = influx_server.rows(f'SELECT * FROM "{schema.MEASUREMENT_LOAD}"', db=influx_db)
    assert {r["rule"] for r in rows} == {v.rule for v in sink.verdicts} and len(rows) == len(sink.verdicts)
    assert all(r["athlete"] == "dee" and r["session_id"] == "dee-demo" for r in rows)
    start = datetime.fromtimestamp(session.start_wall_ns / 1e9, timezone.utc)
    res = dg.check_dashboard(dg.training_load(), _run_query(influx_server, influx_db),
                             from_ms=_ms(start - timedelta(days=1)), to_ms=_ms(start + timedelta(days=1)))
    verdicts = next(r for r in res if "verdicts" in r.where)
    assert {s["tags"]["rule"] for s in verdicts.series} == {v.rule for v in sink.verdicts}


def test_early_vs_late_shows_the_drift(seeded, influx_server):  # noqa: F811
    """cho's contact time drifts +15 % over the run: the late steps' mean is clearly longer."""
    n = 30  # the seeded runs are short (20 s); the shipped dashboards use 100 steps
    model = dg.session_review(early_late_steps=n)
    panel = next(p for p in model["panels"] if p["title"].startswith("Early vs late"))
    fn = _run_query(influx_server, seeded["db"])
    (early,), (late,) = [fn(dg.expand(t["query"], from_ms=_ms(FROM), to_ms=_ms(TO),
                                      variables={"athlete": "cho", "session": "cho-run1"}))
                         for t in panel["targets"]]
    col = early["columns"].index(schema.FIELD_CONTACT_MS)
    assert late["values"][0][col] > 1.05 * early["values"][0][col]
    cad = early["columns"].index(schema.FIELD_CADENCE_SPM)
    assert late["values"][0][cad] == pytest.approx(early["values"][0][cad], rel=0.03)
