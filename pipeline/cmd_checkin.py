"""``gaitwatch checkin --athlete A --pain 0-10 [--swelling]``: record how the knee feels.

Pain before a run gives "don't run on a painful knee - rest"; pain that persists a week,
or any swelling, gives "see a physiotherapist or doctor" (pipeline/training_load.py).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from pipeline.config import load_config
from pipeline.history import Checkin, LocalHistory, parse_time
from pipeline.training_load import pain_now


def _pain(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if not 0 <= v <= 10:
        raise argparse.ArgumentTypeError(f"expected pain as a whole number 0-10, got {text!r}")
    return v


def add_history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--athlete", required=True, help="athlete name")
    p.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                   help="training history directory (default: [history].dir, $GAITWATCH_DATA_DIR or "
                        "~/.local/share/gaitwatch)")
    p.add_argument("--config", type=Path, default=None, metavar="FILE", help="TOML config over the defaults")
    p.add_argument("--at", default=None, metavar="ISO_TIME", help="time of the entry (default: now)")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("checkin", help="record knee pain (0-10) and swelling",
                              description="Record how the knee feels; prints what to do about it.")
    add_history_arguments(p)
    p.add_argument("--pain", type=_pain, required=True, metavar="0-10", help="knee pain now (0 = none)")
    p.add_argument("--swelling", action="store_true", help="the knee is swollen")
    return p


def history_from_args(args):
    config = load_config(args.config)
    return LocalHistory(args.data_dir or config.get("history", "dir") or None), config


def run(args) -> int:
    history, config = history_from_args(args)
    at = parse_time(args.at) if args.at else datetime.now(timezone.utc)
    history.add_checkin(Checkin(athlete=args.athlete, t=at, pain=args.pain, swelling=args.swelling))
    msg = pain_now(history.checkins(args.athlete), now=at, config=config)
    print(f"recorded: {args.athlete} pain {args.pain}/10{', swelling' if args.swelling else ''}")
    if msg:
        print(msg)
    return 0
