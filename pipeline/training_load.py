"""Training-load rules across runs, each explained in its message.

* ``longest_run`` — a single run more than ``longest_run_margin`` (10 %) longer, in time or
  distance, than the longest run of the past ``longest_run_days`` (30) days: the strongest
  running-injury signal in Frandsen et al. 2025 (Br. J. Sports Med., 5,205 runners).
* ``weekly_ramp`` — weekly running time (or distance) up more than ``weekly_increase``
  (30 %) over two weeks: this week's volume against the week two weeks earlier (Nielsen et
  al. 2014, J. Orthop. Sports Phys. Ther. 44:739, novice runners).
* ``beginner_frequency`` — the ramp our runners are taught: start with 2 runs a week and go
  to 3 only after ``beginner_days`` (two months) without injury or pain.
* ``run_with_pain`` — a run logged while pain was reported (a check-in with pain at or above
  ``pain_threshold`` in the day before the run, and no pain-free check-in since).
* ``see_a_professional`` — pain that persists ``persistent_pain_days`` (a week) of
  check-ins, or any swelling.

``evaluate`` is pure: history in, verdicts out (tests give synthetic dates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pipeline.config import Config
from pipeline.history import Checkin, SessionEntry, parse_time

DEFAULTS = dict(longest_run_days=30, longest_run_margin=0.10, weekly_increase=0.30, beginner_days=60,
                beginner_runs_per_week=2, pain_threshold=1, persistent_pain_days=7)


@dataclass(frozen=True)
class Verdict:
    rule: str
    fired: bool
    message: str


def _params(config: Config | None) -> dict[str, Any]:
    p = dict(DEFAULTS)
    if config is not None:
        sec = config.section("history")
        p.update({k: sec[k] for k in DEFAULTS if k in sec})
    return p


def _volume(sessions: list[SessionEntry], start: datetime, end: datetime) -> tuple[float, float]:
    """(running seconds, metres; NaN metres if any run lacks a distance) in [start, end)."""
    inside = [s for s in sessions if start <= s.start < end]
    dist = [s.distance_m for s in inside]
    return sum(s.duration_s for s in inside), (sum(dist) if all(math.isfinite(d) for d in dist) else math.nan)


def _pain_started(checkins: list[Checkin], now: datetime, threshold: int) -> datetime | None:
    """Start of the current uninterrupted run of painful check-ins (None if the last is pain-free)."""
    start = None
    for c in checkins:
        if c.t > now:
            break
        start = (start or c.t) if c.pain >= threshold else None
    return start


def evaluate(sessions: list[SessionEntry], checkins: list[Checkin], *, now: datetime,
             config: Config | None = None) -> list[Verdict]:
    """Every rule's verdict for the athlete at ``now`` (the latest run is the one judged)."""
    p = _params(config)
    sessions = sorted((s for s in sessions if s.start <= now), key=lambda s: s.start)
    checkins = sorted(checkins, key=lambda c: c.t)
    out: list[Verdict] = []
    last = sessions[-1] if sessions else None

    # longest run of the past 30 days
    fired, msg = False, "No run is more than 10 % longer than your longest of the past 30 days."
    if last is not None:
        prior = [s for s in sessions[:-1] if last.start - timedelta(days=p["longest_run_days"]) <= s.start]
        if prior:
            longest_t = max(s.duration_s for s in prior)
            ok_d = [s.distance_m for s in prior if math.isfinite(s.distance_m)]
            margin = 1.0 + p["longest_run_margin"]
            by_time = last.duration_s > margin * longest_t
            by_dist = bool(ok_d) and math.isfinite(last.distance_m) and last.distance_m > margin * max(ok_d)
            if by_time or by_dist:
                fired = True
                what = (f"{last.duration_s / 60:.0f} min against {longest_t / 60:.0f} min" if by_time
                        else f"{last.distance_m / 1000:.1f} km against {max(ok_d) / 1000:.1f} km")
                msg = (f"Your run on {last.start:%d %b} was more than {p['longest_run_margin']:.0%} longer than your "
                       f"longest of the past {p['longest_run_days']} days ({what}). Single runs that jump in length "
                       f"are the clearest injury risk (Frandsen 2025): grow your longest run by 10 % at most.")
    out.append(Verdict("longest_run", fired, msg))

    # weekly volume over two weeks
    fired, msg = False, "Your weekly running volume is not rising too fast."
    this_t, this_d = _volume(sessions, now - timedelta(days=7), now + timedelta(seconds=1))
    before_t, before_d = _volume(sessions, now - timedelta(days=21), now - timedelta(days=14))
    if before_t > 0:
        use_d = math.isfinite(this_d) and math.isfinite(before_d) and before_d > 0
        ratio = this_d / before_d if use_d else this_t / before_t
        if ratio > 1.0 + p["weekly_increase"]:
            fired = True
            msg = (f"This week you ran {ratio - 1:.0%} more {'distance' if use_d else 'time'} than two weeks ago. "
                   f"Novice runners who add more than {p['weekly_increase']:.0%} in two weeks get injured more "
                   f"often (Nielsen 2014): hold this week's volume for a while.")
    out.append(Verdict("weekly_ramp", fired, msg))

    # beginner frequency ramp: 2 runs a week until two months without injury or pain
    fired, msg = False, "Your number of runs per week fits the beginner plan."
    if sessions:
        pains = [c.t for c in checkins if c.pain >= p["pain_threshold"] and c.t <= now]
        since = max([sessions[0].start] + pains)
        runs_week = sum(1 for s in sessions if now - timedelta(days=7) < s.start <= now)
        if now - since < timedelta(days=p["beginner_days"]) and runs_week > p["beginner_runs_per_week"]:
            fired = True
            msg = (f"{runs_week} runs in the last 7 days. Start with {p['beginner_runs_per_week']} runs a week and go "
                   f"to {p['beginner_runs_per_week'] + 1} only after two months without injury or pain "
                   f"(pain-free since {since:%d %b}).")
    out.append(Verdict("beginner_frequency", fired, msg))

    # a run logged while pain was reported
    fired, msg = False, "No run was logged on a painful knee."
    if last is not None:
        before = [c for c in checkins if last.start - timedelta(days=1) <= c.t <= last.start]
        if before and before[-1].pain >= p["pain_threshold"]:
            fired = True
            msg = (f"You ran on {last.start:%d %b} after reporting knee pain {before[-1].pain}/10. "
                   f"Don't run on a painful knee - rest until it is gone.")
    out.append(Verdict("run_with_pain", fired, msg))

    out.append(checkin_verdict(checkins, now=now, config=config))
    return out


def checkin_verdict(checkins: list[Checkin], *, now: datetime, config: Config | None = None) -> Verdict:
    """Pain that persists a week, or any swelling: see a professional."""
    p = _params(config)
    recent = [c for c in checkins if c.t <= now]
    swollen = [c for c in recent if c.swelling and now - c.t <= timedelta(days=p["persistent_pain_days"])]
    started = _pain_started(recent, now, p["pain_threshold"])
    if swollen:
        return Verdict("see_a_professional", True,
                       f"Your knee was swollen on {swollen[-1].t:%d %b}. See a physiotherapist or doctor before "
                       f"running again.")
    if started is not None and now - started >= timedelta(days=p["persistent_pain_days"]):
        return Verdict("see_a_professional", True,
                       f"Your knee has hurt since {started:%d %b} ({(now - started).days} days). Pain that lasts a "
                       f"week needs a look: see a physiotherapist or doctor.")
    return Verdict("see_a_professional", False, "No persistent pain or swelling reported.")


def pain_now(checkins: list[Checkin], *, now: datetime, config: Config | None = None) -> str:
    """The message for a check-in just made (empty if there is nothing to say)."""
    p = _params(config)
    msgs = []
    if checkins and checkins[-1].pain >= p["pain_threshold"]:
        msgs.append("Don't run on a painful knee - rest until it is gone.")
    v = checkin_verdict(checkins, now=now, config=config)
    if v.fired:
        msgs.append(v.message)
    return " ".join(msgs)


def session_entry(summary, records_metrics: dict[str, float] | None = None) -> SessionEntry:
    """A history entry from a :class:`pipeline.summary.SessionSummary` (running time of the
    longest-running sensor, its distance if stride lengths were measured)."""
    d = summary.to_dict()
    start = parse_time(d["start_utc"])
    run_s, steps = 0.0, 0
    for s in d.get("sensors", []):
        r = s.get("running") or {}
        steps = max(steps, int(r.get("steps") or 0))
        dur = r.get("duration_s")
        if dur is None:  # running time from the steps: strides of one foot
            cad = r.get("cadence_spm_median")
            dur = (r.get("steps") or 0) * 120.0 / cad if cad else 0.0
        run_s = max(run_s, float(dur or 0.0))
    m = records_metrics or {}
    impact = m.get("mean_impact_g", math.nan)
    return SessionEntry(athlete=d["athlete"], session_id=d["session_id"], start=start,
                        duration_s=run_s, distance_m=m.get("distance_m", math.nan), steps=steps,
                        mean_impact_g=impact,
                        load=run_s / 60.0 * (impact / 6.0 if math.isfinite(impact) else 1.0))
