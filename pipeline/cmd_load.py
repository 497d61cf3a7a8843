"""``gaitwatch load --athlete A``: recent weeks of running and the load rules' verdicts."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from pipeline.cmd_checkin import add_history_arguments, history_from_args
from pipeline.history import parse_time
from pipeline.training_load import evaluate


def add_parser(subparsers):
    p = subparsers.add_parser("load", help="weekly training load and the load rules' verdicts",
                              description="Print the athlete's recent weeks (runs, time, distance, load) and "
                                          "every load rule's verdict.")
    add_history_arguments(p)
    p.add_argument("--weeks", type=int, default=6, help="weeks to show (default 6)")
    return p


def run(args) -> int:
    history, config = history_from_args(args)
    now = parse_time(args.at) if args.at else datetime.now(timezone.utc)
    sessions, checkins = history.sessions(args.athlete), history.checkins(args.athlete)
    print(f"athlete {args.athlete}: {len(sessions)} runs in the history")
    print(f"{'week ending':12s} {'runs':>4s} {'time_min':>9s} {'dist_km':>8s} {'load':>7s} {'max_pain':>8s}")
    for k in range(args.weeks - 1, -1, -1):
        end = now - timedelta(days=7 * k)
        start = end - timedelta(days=7)
        inside = [s for s in sessions if start < s.start <= end]
        pains = [c.pain for c in checkins if start < c.t <= end]
        dist = [s.distance_m for s in inside]
        dist_txt = f"{sum(dist) / 1000:8.1f}" if inside and all(math.isfinite(d) for d in dist) else f"{'-':>8s}"
        load = sum(s.load for s in inside if math.isfinite(s.load))
        print(f"{end:%Y-%m-%d}   {len(inside):4d} {sum(s.duration_s for s in inside) / 60:9.1f} {dist_txt} "
              f"{load:7.1f} {max(pains) if pains else '-':>8}")
    print()
    for v in evaluate(sessions, checkins, now=now, config=config):
        print(f"{'WARNING' if v.fired else 'ok':7s} {v.rule}: {v.message}")
    return 0
