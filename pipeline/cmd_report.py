"""``gaitwatch report DIR [--out FILE]``: a self-contained HTML report of a replay/live output
directory (steps.csv, alerts.csv, session.json), no Grafana needed (pipeline/report.py)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report", help="HTML report of a run (plots, alerts with advice)",
        description="Turn the --out directory of `gaitwatch replay` / `gaitwatch live` into one self-contained "
                    "HTML page: the run at a glance, what to work on, cadence/contact/impact over the run, "
                    "strike pattern, left vs right.")
    p.add_argument("directory", type=Path, metavar="DIR", help="output directory with steps.csv and session.json")
    p.add_argument("--out", type=Path, default=None, metavar="FILE", help="HTML file (default: DIR/report.html)")
    return p


def run(args: argparse.Namespace) -> int:
    from pipeline.report import write_report

    path = write_report(args.directory, args.out)
    print(f"wrote {path}")
    return 0
