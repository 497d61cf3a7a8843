"""``gaitwatch spool flush``: send what InfluxDB batches wait in the on-disk spool.

Batches land in the spool when the server was unreachable during a run
(pipeline/sinks/influx.py); they are also replayed automatically at the start of the next
run. Each spool directory names its own target (URL, database/bucket); credentials come
from the config file or the environment (GAITWATCH_INFLUX_*).
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("spool", help="InfluxDB spool: send batches that are waiting on disk")
    p.add_argument("action", choices=("flush", "status"), help="flush: send and remove; status: show depth")
    p.add_argument("--config", metavar="FILE", help="TOML config (credentials, [influx] spool_dir)")
    p.add_argument("--spool-dir", metavar="DIR", help="a spool directory or the root holding several")
    p.add_argument("--timeout-s", type=float, default=60.0, help="give up after this many seconds (default 60)")
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.config import load_config
    from pipeline.errors import SinkError
    from pipeline.sinks.influx import default_spool_root, flush_spool
    from pipeline.spool import Spool

    section = load_config(args.config).section("influx")
    if args.action == "status":
        root = Path(args.spool_dir or section.get("spool_dir") or default_spool_root())
        dirs = [root] if (root / "target.json").exists() else sorted(p.parent for p in root.glob("*/target.json"))
        total = 0
        for d in dirs:
            target = Spool.read_target(d) or {}
            n = sum(int(p.name.split("-")[1].split(".")[0]) for p in d.glob("*-*.lp"))
            total += n
            print(f"{d}: {n} points for {target.get('url')} {target.get('database') or target.get('bucket')}")
        print(f"spool depth: {total} points")
        return 0
    sent, left = flush_spool(section, spool_dir=args.spool_dir, timeout_s=args.timeout_s)
    print(f"sent {sent} points; {left} left in the spool")
    if left:
        raise SinkError(f"{left} points could not be sent (server unreachable?); they stay in the spool")
    return 0
