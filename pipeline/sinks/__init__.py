"""Sinks: where StepRecords and the session summary go (DESIGN.md, "Sources and sinks").

A sink has ``write(records)`` (called with each batch of StepRecords the engine finishes)
and ``close(summary)`` (called exactly once at the end of a run, also after a failure or
Ctrl-C, with the session summary or ``None``). The run loop (``pipeline.run``) owns
the calls; a sink never sees samples.

Command-line hooks shared by every subcommand that produces records:

* :func:`add_sink_arguments` adds the sink options to an argparse parser;
* :func:`build_sinks` turns parsed options into sinks.

To add a sink (e.g. InfluxDB), add its options in ``add_sink_arguments`` and append it in
``build_sinks`` (marked places below).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pipeline.records import SensorInfo, SessionInfo, StepRecord

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.summary import SessionSummary

DEFAULT_OUT_DIR = "gaitwatch-out"


@runtime_checkable
class Sink(Protocol):
    def write(self, records: Sequence[StepRecord]) -> None: ...

    def close(self, summary: "SessionSummary | None") -> None: ...


def add_sink_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that choose the sinks of a run."""
    parser.add_argument("--out", metavar="DIR", type=Path, default=Path(DEFAULT_OUT_DIR),
                        help=f"directory for steps.csv and session.json (default: ./{DEFAULT_OUT_DIR})")
    # -- other sinks add their options here (e.g. --influx) --
    from pipeline.sinks.influx import add_influx_arguments

    add_influx_arguments(parser)
    parser.add_argument("--history", action="store_true",
                        help="store this session in the athlete's training history and check the load rules")
    parser.add_argument("--data-dir", metavar="DIR", type=Path, default=None,
                        help="training history directory (default: [history].dir, $GAITWATCH_DATA_DIR or "
                             "~/.local/share/gaitwatch)")


def build_sinks(args: argparse.Namespace, config: "Config", session: SessionInfo,
                sensors: Sequence[SensorInfo]) -> list[Sink]:
    """The sinks selected by ``args`` (the file sink always)."""
    from pipeline.sinks.file_sink import FileSink

    from pipeline.sinks.console import ConsoleAlertSink

    sinks: list[Sink] = [FileSink(Path(args.out), session=session, sensors=sensors), ConsoleAlertSink()]
    # -- other sinks are appended here (e.g. InfluxDB when --influx is given) --
    from pipeline.sinks.influx import influx_sink_from_args

    influx = influx_sink_from_args(args, config, session, sensors)
    if influx is not None:
        sinks.append(influx)
    if getattr(args, "history", False):
        from pipeline.history import history_from_config
        from pipeline.sinks.history_sink import HistorySink
        from pipeline.sinks.influx import section_from_args

        history = history_from_config(config, data_dir=getattr(args, "data_dir", None),
                                      influx_section=section_from_args(args, config))
        sinks.append(HistorySink(history, config=config))
    return sinks
