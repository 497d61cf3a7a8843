"""Where does a replay spend its time? cProfile of exactly ``gaitwatch replay`` (imports
excluded), printed as the repo's own functions by cumulative time, plus the unprofiled CPU
time of the same call (the profiler inflates small-function-heavy code ~1.5-2x).

    .venv/bin/python bench/profile_replay.py                    # 10-min bench session, full config
    .venv/bin/python bench/profile_replay.py --minutes 2 --events-only --top 40
    .venv/bin/python bench/profile_replay.py --files a.csv b.csv --sort tottime

The bench session is the cached one of ``bench/bench_pipeline.py`` (generated on first use).
"""

from __future__ import annotations

import argparse
import cProfile
import contextlib
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import bench_pipeline  # noqa: E402  (the cached bench session)
from pipeline import cmd_replay  # noqa: E402
from pipeline.cli import build_parser  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--files", nargs="*", type=Path)
    ap.add_argument("--events-only", action="store_true", help="[metrics] enabled = []")
    ap.add_argument("--sort", default="cumulative", choices=["cumulative", "tottime"])
    ap.add_argument("--top", type=int, default=45)
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/gaitwatch-bench"))
    a = ap.parse_args(argv)
    files = a.files or bench_pipeline.session_files(a.cache_dir, a.minutes * 60.0)
    with tempfile.TemporaryDirectory() as tmp:
        argv_r = ["replay", *map(str, files), "--out", tmp]
        off = bench_pipeline.metrics_off_config(Path(tmp)) if a.events_only else None
        if off is not None:
            argv_r += ["--config", str(off)]
        args = build_parser().parse_args(argv_r)
        with contextlib.redirect_stdout(io.StringIO()):
            cmd_replay.run(args)  # warm: compiled kernels, file cache
            t0 = time.process_time()
            cmd_replay.run(args)
            cpu = time.process_time() - t0
            pr = cProfile.Profile()
            pr.enable()
            cmd_replay.run(args)
            pr.disable()
    dur_s = a.minutes * 60.0 if not a.files else float("nan")
    print(f"unprofiled CPU {cpu * 1e3:.2f} ms (warm: the second call in this process)"
          + (f"  -> {dur_s / cpu:.0f}x real time" if dur_s == dur_s else ""))
    st = pstats.Stats(pr)
    st.sort_stats(a.sort).print_stats(str(ROOT), a.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
