"""What ``gaitwatch replay --influx`` costs a user: the same replay with and without the sink.

    .venv/bin/python bench/bench_influx_replay.py [--minutes 60] [--repeat 5]

Starts a real ``influxd`` (tests/influx_fixtures.py, Debian's 1.6.7) on a free loopback port,
then calls ``pipeline.cmd_replay.run`` in this process -- exactly ``gaitwatch replay L.csv
R.csv --out DIR [--influx]`` -- on bench_pipeline's cached simulated session (2 feet, 500 Hz,
all metrics; generated on first use), alternating without and with ``--influx`` (v1, the
default ``[influx]`` config: ``requests_in_flight = 2``), after one untimed call of each.
Each timed call runs from the call to its return: with the sink, until every point is
acknowledged (close() drains the spool). Prints every call's wall and CPU time (this process,
all threads) and influxd's CPU (from /proc), then the medians and the added time in percent
of the plain replay; checks the step count in the database after each call.

The sink writes while the replay runs (its encoder on the replay's thread, its senders on
their own), so this is the time writing adds, not the time writing takes on its own (that is
``bench/bench_influx.py``'s "1-hour session written in" figure).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import bench_pipeline  # noqa: E402  (the cached bench session)
from influx_fixtures import InfluxServer  # noqa: E402
from pipeline import cmd_replay, schema  # noqa: E402
from pipeline.cli import build_parser  # noqa: E402


def server_cpu_s(srv: InfluxServer) -> float:
    fields = Path(f"/proc/{srv.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the bench session replayed")
    ap.add_argument("--repeat", type=int, default=5, help="timed calls of each kind, alternated")
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/gaitwatch-bench"))
    ap.add_argument("--requests-in-flight", type=int, default=None,
                    help="[influx] requests_in_flight for the sink (default: the config's)")
    a = ap.parse_args(argv)
    files = bench_pipeline.session_files(a.cache_dir, a.minutes * 60.0)
    with tempfile.TemporaryDirectory(prefix="gw-influx-replay-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "influxd").mkdir()
        srv = InfluxServer(tmp / "influxd", auth=False)
        srv.start()
        try:
            cfg = tmp / "influx.toml"
            extra = "" if a.requests_in_flight is None else f"requests_in_flight = {a.requests_in_flight}\n"
            cfg.write_text(f'[influx]\nurl = "{srv.url}"\ndatabase = "bench"\nspool_dir = "{tmp / "spool"}"\n' + extra)
            srv.create_database("bench")

            def call(influx: bool, tag: str) -> tuple[float, float, float]:
                if influx:
                    srv.query("DROP SERIES FROM /.*/", db="bench")
                argv_r = ["replay", *map(str, files), "--out", str(tmp / f"out-{tag}"), "--config", str(cfg)]
                args = build_parser().parse_args(argv_r + (["--influx"] if influx else []))
                c_srv = server_cpu_s(srv)
                c0 = time.process_time()
                t0 = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    cmd_replay.run(args)
                wall = time.perf_counter() - t0
                cpu = time.process_time() - c0
                if influx:
                    steps = srv.count(schema.MEASUREMENT_STEP, schema.FIELD_CONTACT_MS, db="bench")
                    n_csv = sum(1 for _ in open(tmp / f"out-{tag}" / "steps.csv")) - 1
                    assert steps == n_csv, (steps, n_csv)
                return wall, cpu, server_cpu_s(srv) - c_srv

            call(False, "warm0")
            call(True, "warm1")
            res: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
            load0 = os.getloadavg()[0]
            for i in range(a.repeat):
                for influx in (False, True):
                    r = call(influx, f"{i}-{influx}")
                    res[influx].append(r)
                    print(f"{'--influx' if influx else 'plain   '}  wall {r[0]:.3f} s  CPU {r[1]:.3f} s  "
                          f"influxd CPU {r[2]:.2f} s", flush=True)
            plain = statistics.median(w for w, _, _ in res[False])
            with_sink = statistics.median(w for w, _, _ in res[True])
            plain_cpu = statistics.median(c for _, c, _ in res[False])
            sink_cpu = statistics.median(c for _, c, _ in res[True])
            print(f"load average (1 min) before/after: {load0:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
            print(f"replay of {a.minutes:.0f} min, 2 feet (medians of {a.repeat}): {plain:.3f} s without the "
                  f"InfluxDB sink, {with_sink:.3f} s with it: +{with_sink - plain:.3f} s = "
                  f"{100 * (with_sink - plain) / plain:+.1f} % (CPU of this process {plain_cpu:.3f} -> "
                  f"{sink_cpu:.3f} s, influxd {statistics.median(s for _, _, s in res[True]):.2f} s)")
        finally:
            srv.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
