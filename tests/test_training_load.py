"""Training history and load rules across runs (pipeline/history.py, pipeline/training_load.py):
synthetic histories with chosen dates; each rule must fire exactly when it should."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.history import Checkin, HistoryError, InfluxHistory, LocalHistory, SessionEntry
from pipeline.training_load import evaluate, pain_now
from tests.influx_fixtures import influx_db, influx_server  # noqa: F401  (real server fixtures)

T0 = datetime(2026, 3, 2, 7, 0, tzinfo=timezone.utc)  # a Monday morning


def run(day: float, minutes: float, km: float = math.nan, athlete="ana") -> SessionEntry:
    return SessionEntry(athlete=athlete, session_id=f"s{day}", start=T0 + timedelta(days=day),
                        duration_s=minutes * 60.0, distance_m=km * 1000.0, steps=int(minutes * 170))


def pain(day: float, level: int, swelling=False) -> Checkin:
    return Checkin(athlete="ana", t=T0 + timedelta(days=day), pain=level, swelling=swelling)


def fired(sessions, checkins=(), *, now_day=None) -> set[str]:
    now = T0 + timedelta(days=now_day if now_day is not None else sessions[-1].start.__sub__(T0).days, hours=2)
    return {v.rule for v in evaluate(list(sessions), list(checkins), now=now) if v.fired}


def test_longest_run_rule_fires_above_ten_percent_of_the_last_30_days():
    # runs every 5 days (2 a week), beginner rule not involved: history starts 100 days back
    base = [run(d, 30.0) for d in range(-100, 0, 5)]
    assert "longest_run" not in fired(base + [run(0, 32.9)])  # +9.7 %
    assert "longest_run" in fired(base + [run(0, 33.1)])  # +10.3 %
    old_long = [run(-40, 60.0)]  # outside the 30-day window: does not count
    assert "longest_run" in fired(old_long + base + [run(0, 33.1)])
    # distance counts too when measured
    base_d = [run(d, 30.0, 5.0) for d in range(-100, 0, 5)]
    assert "longest_run" in fired(base_d + [run(0, 30.0, 5.6)])
    assert "longest_run" not in fired(base_d + [run(0, 30.0, 5.4)])


def test_weekly_ramp_over_two_weeks():
    two_weeks_ago = [run(-20, 30.0), run(-17, 30.0)]  # 60 min in days -21..-14
    assert "weekly_ramp" in fired(two_weeks_ago + [run(-4, 40.0), run(0, 40.0)])  # 80 min: +33 %
    assert "weekly_ramp" not in fired(two_weeks_ago + [run(-4, 37.0), run(0, 37.0)])  # +23 %


def test_beginner_frequency_two_runs_a_week_for_two_months():
    start = [run(-20, 20.0), run(-16, 20.0), run(-13, 20.0), run(-9, 20.0)]
    assert "beginner_frequency" not in fired(start + [run(-3, 20.0), run(0, 20.0)])  # 2 in 7 days
    assert "beginner_frequency" in fired(start + [run(-5, 20.0), run(-3, 20.0), run(0, 20.0)])  # 3 in 7 days
    veteran = [run(d, 20.0) for d in range(-90, -6, 4)]
    assert "beginner_frequency" not in fired(veteran + [run(-5, 20.0), run(-3, 20.0), run(0, 20.0)])
    # pain 30 days ago restarts the two months
    assert "beginner_frequency" in fired(veteran + [run(-5, 20.0), run(-3, 20.0), run(0, 20.0)], [pain(-30, 4)])


def test_run_logged_while_pain_was_reported():
    hist = [run(d, 20.0) for d in range(-90, 0, 4)]
    morning = T0 - timedelta(hours=1)
    assert "run_with_pain" in fired(hist + [run(0, 20.0)], [Checkin("ana", morning, 3)])
    assert "run_with_pain" not in fired(hist + [run(0, 20.0)], [Checkin("ana", morning, 0)])
    assert "run_with_pain" not in fired(hist + [run(0, 20.0)], [pain(-3, 5)])  # days ago, not before this run


def test_persistent_pain_or_swelling_means_see_a_professional():
    daily = [pain(d, 3) for d in range(0, 8)]
    assert "see_a_professional" in fired([run(-10, 20.0)], daily, now_day=7)
    assert "see_a_professional" not in fired([run(-10, 20.0)], daily[:5], now_day=4)
    assert "see_a_professional" not in fired([run(-10, 20.0)], daily[:4] + [pain(4, 0)] + daily[5:8], now_day=7)
    assert "see_a_professional" in fired([run(-10, 20.0)], [pain(0, 1, swelling=True)], now_day=0)
    msg = pain_now(daily, now=T0 + timedelta(days=7, hours=2))
    assert "Don't run on a painful knee" in msg and "physiotherapist" in msg


def test_local_history_round_trip_corruption_is_reported_and_never_overwritten(tmp_path):
    h = LocalHistory(tmp_path)
    h.add_session(run(0, 31.5, 5.2))
    h.add_session(run(0, 31.5, 5.2))  # same run stored again: kept once
    h.add_checkin(pain(1, 2))
    assert h.sessions("ana") == [run(0, 31.5, 5.2)] and h.checkins("ana") == [pain(1, 2)]
    p = h.path("ana")
    p.write_text(p.read_text() + '{"type": "session", "athlete": "ana"\n')
    before = p.read_bytes()
    with pytest.raises(HistoryError, match=r"ana\.jsonl:3: corrupt history line"):
        h.sessions("ana")
    with pytest.raises(HistoryError, match="corrupt"):
        h.add_checkin(pain(2, 0))
    assert p.read_bytes() == before


def test_bad_checkin_values_are_refused():
    with pytest.raises(HistoryError, match="pain must be an integer from 0 to 10"):
        Checkin("ana", T0, 11)


def test_influx_history_same_interface_and_verdicts(influx_server, influx_db, tmp_path):
    ih = InfluxHistory(url=influx_server.url, database=influx_db, username=influx_server.user,
                       password=influx_server.password)
    lh = LocalHistory(tmp_path)
    entries = [run(d, 30.0, 5.0) for d in range(-60, 0, 5)] + [run(0, 36.0, 6.0)]
    checks = [pain(-2, 0), pain(0, 0, swelling=True)]
    for store in (ih, lh):
        for e in entries:
            store.add_session(e)
        for c in checks:
            store.add_checkin(c)
    got = ih.sessions("ana")
    assert [(s.start, s.duration_s, s.distance_m) for s in got] == [(e.start, e.duration_s, e.distance_m) for e in entries]
    assert ih.checkins("ana") == checks
    now = T0 + timedelta(hours=2)
    assert evaluate(ih.sessions("ana"), ih.checkins("ana"), now=now) == \
        evaluate(lh.sessions("ana"), lh.checkins("ana"), now=now)


def test_checkin_and_load_commands(tmp_path, run_cli):
    d = tmp_path / "data"
    p = run_cli("checkin", "--athlete", "ana", "--pain", "4", "--data-dir", d, "--at", "2026-03-01T07:00:00Z")
    assert p.returncode == 0, p.stderr
    assert "Don't run on a painful knee" in p.stdout
    p = run_cli("checkin", "--athlete", "ana", "--pain", "12", "--data-dir", d)
    assert p.returncode == 2 and "0-10" in p.stderr
    p = run_cli("load", "--athlete", "ana", "--data-dir", d, "--at", "2026-03-02T07:00:00Z")
    assert p.returncode == 0, p.stderr
    assert "week ending" in p.stdout and "ok      longest_run" in p.stdout
