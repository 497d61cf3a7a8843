"""The ``gaitwatch`` command line (console script ``pipeline.cli:main``).

Each subcommand lives in its own module ``pipeline.cmd_<name>`` with
``add_parser(subparsers)`` and ``run(args) -> int``; to add one, append its name to
``SUBCOMMANDS``. Logging is configured here and nowhere else (``-v`` INFO, ``-vv``
DEBUG, on stderr). Any :class:`pipeline.errors.GaitwatchError` ends the run with one line
``gaitwatch: error: ...`` on stderr and exit code 2, without a traceback; Ctrl-C exits
with 130 after the run loop has written what it computed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pipeline.errors import GaitwatchError

SUBCOMMANDS: tuple[str, ...] = ("replay", "simulate", "spool", "live", "emulate", "capture", "scan", "checkin", "load", "report", "gateway", "worker", "cluster")

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gaitwatch",
        description="Open real-time running-gait monitor: IMU recordings or live sensors in, "
        "steps, cadence and contact times out.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"pipeline.cmd_{name}")  # an import error is a bug: let it show
        before = set(sub.choices)
        module.add_parser(sub)
        for added in set(sub.choices) - before:
            sub.choices[added].set_defaults(func=module.run)
    return parser


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except GaitwatchError as exc:
        print(f"gaitwatch: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("gaitwatch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
