"""``gaitwatch replay``: recordings of one session through the engine into the sinks.

    gaitwatch replay REC.csv [REC2.csv ...] [--out DIR] [--speed X] [--config FILE]
                     [--placement foot|shank] [--side left|right] [--athlete NAME] [--block-s S]

All recordings are validated (header and sidecar) before anything is written. Block size:
``--block-s`` if given; else ``[ingest].block_s`` for a paced replay (``--speed``), and at
least ``OFFLINE_BLOCK_S`` for an unpaced one: steps.csv is bit-identical for any block size
(tests/test_cli_replay.py, the Hypothesis chunk-invariance tests), and fewer, larger blocks
cost less per sample. Output:
``DIR/steps.csv`` and ``DIR/session.json`` (see ``pipeline.sinks.file_sink``) and the
summary table on stdout. A progress bar is shown on stderr only when stderr is a terminal.

The same run without files: :func:`replay_in_memory` (records and summary in memory, e.g.
for a library-style comparison such as bench/bench_pipeline.py's with gaitmap); both go
through :func:`open_session` and :meth:`ReplaySession.run`.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.records import PLACEMENTS, SIDES, SessionInfo

log = logging.getLogger(__name__)


from pipeline.cli_types import positive_float as _positive

# Seconds per block of an unpaced replay unless --block-s says otherwise: per-block costs
# (engine, alignment, step detector, form samples) then amortise over 10x more samples;
# well below [metrics].asymmetry_max_hold_s (30 s), the longest a step waits for the other side.
OFFLINE_BLOCK_S = 10.0


def add_parser(subparsers) -> argparse.ArgumentParser:
    from pipeline.sinks import add_sink_arguments

    p = subparsers.add_parser(
        "replay",
        help="analyse recorded sessions (CSV + sidecar per sensor)",
        description="Replay recordings of one session (one CSV + NAME.json sidecar per sensor, format in "
        "fixtures/README.md) through the step detectors; write steps.csv and session.json.",
    )
    p.add_argument("recordings", nargs="+", type=Path, metavar="REC.csv",
                   help="one recording per sensor, or raw-byte captures (.gwcap) of live sensors")
    add_sink_arguments(p)
    p.add_argument("--speed", type=_positive, default=None, metavar="X",
                   help="pace the replay at X times real time (default: as fast as possible)")
    p.add_argument("--config", type=Path, default=None, metavar="FILE", help="TOML config over the defaults")
    p.add_argument("--placement", choices=PLACEMENTS, default=None, help="override the sidecar's placement")
    p.add_argument("--side", choices=SIDES, default=None, help="override the sidecar's side")
    p.add_argument("--athlete", default=None, help="override the sidecar's athlete")
    p.add_argument("--block-s", type=_positive, default=None, metavar="S",
                   help="seconds of signal per block handed to the engine (default: config [ingest].block_s "
                   f"with --speed, else at least {OFFLINE_BLOCK_S:g} s; the output does not depend on it)")
    return p


def session_id_for(paths: list[Path]) -> str:
    """Common prefix of the file names (``demo_left_foot``, ``demo_shank`` -> ``demo``)."""
    stems = [p.stem for p in paths]
    prefix = os.path.commonprefix(stems).rstrip("_-. ")
    return prefix or stems[0]


def _replay_captures(args: argparse.Namespace) -> int:
    """``gaitwatch replay FILE.gwcap ...``: raw-byte captures (``gaitwatch capture`` or
    ``live --capture``) go through the same decoder as live: this is ``gaitwatch live
    --from-capture FILE ...`` with the replay's options passed on."""
    from pipeline.cli import build_parser

    argv = ["live"]
    for path in args.recordings:
        argv += ["--from-capture", str(path)]
    argv += ["--out", str(args.out)]
    for flag, value in (("--config", args.config), ("--placement", args.placement), ("--side", args.side),
                        ("--athlete", args.athlete), ("--data-dir", getattr(args, "data_dir", None))):
        if value is not None:
            argv += [flag, str(value)]
    for key, value in sorted(vars(args).items()):  # sink switches: --history, --influx*, ...
        if key == "history" or key.startswith("influx"):
            if value is True:
                argv.append("--" + key.replace("_", "-"))
            elif value not in (None, False):
                argv += ["--" + key.replace("_", "-"), str(value)]
    live = build_parser().parse_args(argv)
    return live.func(live)


class ReplaySession:
    """Recordings of one session opened and validated, with the engine that will analyse them:
    what ``gaitwatch replay`` runs, whatever the sinks (:func:`open_session`)."""

    __slots__ = ("config", "recordings", "engine", "session")

    def __init__(self, config, recordings, engine, session: SessionInfo):
        self.config, self.recordings, self.engine, self.session = config, recordings, engine, session

    @property
    def sensors(self):
        return [r.info for r in self.recordings]

    def extra(self) -> dict:
        """The run's settings recorded in session.json."""
        return {
            "inputs": [r.path.name for r in self.recordings],
            "config": self.config.source,
            "block_s": self.recordings[0].block_s,
            "gap_fill_max_s": self.recordings[0].gap_fill_max_s,
        }

    def run(self, sinks, *, speed: float | None = None, progress=None):
        """The one run loop (``pipeline.run.run_session``) from the recordings into ``sinks``."""
        from firmware_bridge.replay import replay
        from pipeline.run import run_session

        recordings = self.recordings
        return run_session(
            replay(recordings, speed=speed), self.engine, sinks, session=self.session,
            source_stats=lambda: {r.info.sensor_id: r.stats for r in recordings},
            progress=progress, extra=self.extra(),
        )


_KERNELS_READY: set[str] = set()  # modules whose warm_up ran in this process


def _ready_kernels() -> None:
    """Each kernel module's ``warm_up`` (compile, or load from numba's cache) once per
    process: once done, a kernel stays loaded for the process, and a repeated warm-up is
    ~20 us of calls on dummy arrays (~190 us right after a garbage collection, when the
    caches are cold) at the start of every later replay in the same process."""
    from detectors import alignment, steps_kernels
    from firmware_bridge import recording

    for module in (recording, alignment, steps_kernels):
        if module.__name__ not in _KERNELS_READY:
            module.warm_up()
            _KERNELS_READY.add(module.__name__)


def open_session(paths: list[Path], *, config, placement: str | None = None, side: str | None = None,
                 athlete: str | None = None, block_s: float | None = None,
                 speed: float | None = None) -> ReplaySession:
    """Validate and open the recordings (all of them before anything runs), ready the compiled
    kernels and make the engine: everything of ``gaitwatch replay`` before the sinks."""
    from firmware_bridge.recording import open_recordings

    if block_s is None and speed is None:
        block_s = max(config.get("ingest", "block_s"), OFFLINE_BLOCK_S)
    recordings = open_recordings(paths, config=config, placement=placement, side=side,
                                 athlete=athlete, block_s=block_s)
    for r in recordings:
        log.info("%s: sensor %s (%s, %s), %.6g Hz grid, %s, block %d samples", r.path.name, r.info.sensor_id,
                 r.info.placement, r.info.side, r.fs_hz, "acc+gyro" if r.has_gyro else "acc only", r.block_n)
    ids = [r.info.sensor_id for r in recordings]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"sensor_id {dup[0]!r} appears in more than one recording; each sensor needs its own id")

    # imported after the inputs are validated: bad input is reported fast
    from pipeline.engine import Engine

    _ready_kernels()  # compiled kernels ready before the run starts

    if athlete is None:
        athlete = next((r.info.athlete for r in recordings if r.info.athlete), "")
    with_utc = [r.start_utc_ns for r in recordings if r.start_utc_ns is not None]
    start_ns = with_utc[0] if with_utc else min(r.start_wall_ns for r in recordings)
    session = SessionInfo(session_id=session_id_for(paths), athlete=athlete, start_wall_ns=start_ns)
    engine = Engine([r.info for r in recordings], config=config)
    return ReplaySession(config, recordings, engine, session)


def replay_in_memory(paths: list[Path], *, config=None, **kw):
    """``gaitwatch replay`` into memory instead of files: (records, summary), where records are
    the StepRecords and Alerts in the order the sinks get them. The same reader, engine and run
    loop as the command (:func:`open_session`, :meth:`ReplaySession.run`); only the sink
    differs (``pipeline.sinks.memory_sink.MemorySink``). ``kw`` as :func:`open_session`."""
    from pipeline.config import load_config
    from pipeline.sinks.memory_sink import MemorySink

    rs = open_session([Path(p) for p in paths], config=load_config() if config is None else config, **kw)
    sink = MemorySink()
    summary = rs.run([sink])
    return sink.records, summary


def run(args: argparse.Namespace) -> int:
    captures = [p for p in args.recordings if p.suffix == ".gwcap"]
    if captures:
        if len(captures) != len(args.recordings):
            raise ConfigError("replay: give recordings (.csv) or captures (.gwcap), not both in one session")
        return _replay_captures(args)
    from firmware_bridge.replay import item_end_s
    from pipeline.config import load_config

    config = load_config(args.config)
    rs = open_session(args.recordings, config=config, placement=args.placement, side=args.side,
                      athlete=args.athlete, block_s=args.block_s, speed=args.speed)
    recordings, engine, session, sensors = rs.recordings, rs.engine, rs.session, rs.sensors

    from pipeline.sinks import build_sinks

    sinks = build_sinks(args, config, session, sensors)
    from pipeline.sinks.history_sink import attach_history_baselines
    attach_history_baselines(engine, sinks, session.athlete)

    bar = None
    progress = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        lasts = [r.last_t_s_hint() for r in recordings]
        total = max((x for x in lasts if math.isfinite(x)), default=None)
        try:
            width_known = os.get_terminal_size(sys.stderr.fileno()).columns > 0
        except OSError:
            width_known = False
        bar = tqdm(total=round(total, 1) if total else None, unit="s", desc="replay", file=sys.stderr,
                   dynamic_ncols=width_known, ncols=None if width_known else 80, leave=False, bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} s signal [{elapsed}<{remaining}]")
        done = [0.0]

        def progress(item) -> None:
            t = item_end_s(item)
            if t > done[0]:
                bar.update(round(t - done[0], 3))
                done[0] = t

    try:
        summary = rs.run(sinks, speed=args.speed, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    for r in recordings:
        st = r.stats
        log.info("%s: %d rows, %d samples, %d filled, %d gaps, %d NaN rows dropped", r.path.name, st.rows,
                 st.samples, st.filled_samples, st.gaps, st.nan_rows)
    print(summary.format_table())
    print(f"\nwrote {Path(args.out) / 'steps.csv'} and {Path(args.out) / 'session.json'}")
    return 0
