"""Whole-pipeline benchmark (issue 2 "Speed", issue 9 "Benchmarks"): prints a table.

    .venv/bin/python bench/bench_pipeline.py                       # offline 10 + 60 min, live
    .venv/bin/python bench/bench_pipeline.py --minutes 10,60,180   # issue 9's memory series
    .venv/bin/python bench/bench_pipeline.py --parts offline --minutes 0.1 --live-s 3  # smoke

Nothing is written into the repository (recordings are cached under ``--cache-dir``,
default ``/tmp/gaitwatch-bench``; outputs go to a temp dir) unless ``--markdown FILE``
asks for the table as Markdown too.

**Recordings.** A simulated 2-sensor session (left and right foot, 500 Hz, acc + gyro,
arbitrary mounting, sensor noise; the ``gaitwatch simulate --session demo`` feet at
500 Hz) is written once with :func:`pipeline.simulator.write_recording` (chunked) for the
longest duration asked; shorter sessions are the first N minutes of it (the first rows of
the same files, cut at ``t_s``). The generation time is printed: it is the simulator's,
not the pipeline's.

**Offline** (``--parts offline``). Each run is a fresh ``python`` subprocess pinned to one
core (``os.sched_setaffinity``) that calls ``pipeline.cmd_replay.run`` exactly as
``gaitwatch replay A.csv B.csv --out DIR`` does (reader -> replay merge -> engine ->
file sink, the one run loop ``pipeline.run.run_session``). It reports the wall time of
that call (imports and interpreter start excluded; they are a fixed ~1 s) and its CPU
time; the parent reads the child's peak resident memory from ``os.wait4`` (the child's
own ``ru_maxrss``, i.e. ``getrusage(RUSAGE_CHILDREN)`` for that one child).
Throughput = session duration / wall time ("x real time", one core).

**Live** (``--parts live``). N sensors at 500 Hz, each delivering blocks of
``--live-block-n`` samples (19 = one 6-axis protocol frame = one BLE notification at ATT
MTU 247, firmware_bridge/PROTOCOL.md) at the moment the block's last sample is measured,
sensors phase-shifted against each other. Items are released in real time by the replay
pacer (``firmware_bridge.replay.pace``, speed 1) into ``pipeline.run.run_session`` with
a sink that timestamps every record it is handed. Latency of a step = time it is handed
to the sinks - time the block holding the last sample of its look-ahead arrived (the
block whose ``engine.update`` emitted it), so queueing behind other sensors counts.
Steps of the first ``--live-warmup-s`` (alignment warm-up, a one-off per sensor) are
reported separately. Capacity: the engine's CPU time per sensor-second with those
blocks, unpaced, on one core: ``sensors sustained = 1 / (CPU s per sensor-second)``.
Memory per live sensor: peak RSS of a child running 1 vs ``--mem-sensors`` sensors.

**gaitmap** (``--parts gaitmap``): ``bench/gaitmap_worker.py`` in gaitmap's own venv, timed warm
in its process (CSV -> events in memory, median of ``--gaitmap-repeat`` calls). gaitwatch is
timed at two scopes: (a) the replay command as above (a fresh process's first call, CSV ->
output files) and (b) gaitmap's scope: ``pipeline.cmd_replay.replay_in_memory`` (the same
reader, engine and run loop, a memory sink) warm in its process, median of the same number
of calls, its events checked equal to (a)'s steps.csv.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FS_HZ = 500.0
CADENCE_SPM = 170.0
# (name, side, sensor mounting xyz Euler deg, noise seed): the feet of `simulate --session demo`
SENSORS = (("left_foot", "left", (5.0, -20.0, 95.0), 11), ("right_foot", "right", (-170.0, 10.0, -80.0), 12))
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "gaitwatch-bench"


# ------------------------------------------------------------------ recordings
def sim_params(name: str, side: str, mount, seed: int, duration_s: float):
    from pipeline.simulator import SimParams

    return SimParams(placement="foot", side=side, sensor_id=f"bench_{name}", athlete="bench", fs_hz=FS_HZ,
                     duration_s=duration_s, acc_noise_ms2=0.15, gyr_noise_dps=1.0, mount_euler_deg=mount,
                     seed=seed, cadence_spm=CADENCE_SPM, phase_s=60.0 / CADENCE_SPM if side == "left" else 0.0)


def _master_dir(cache: Path, duration_s: float) -> Path:
    return cache / f"sim_{FS_HZ:g}hz_{duration_s:g}s"


def _generate_one(args: tuple[str, str, float]) -> float:
    name, out_dir, duration_s = args
    from pipeline.simulator import write_recording

    _, side, mount, seed = next(s for s in SENSORS if s[0] == name)
    t = time.perf_counter()
    write_recording(sim_params(name, side, mount, seed, duration_s), Path(out_dir) / f"bench_{name}.csv")
    return time.perf_counter() - t


def ensure_master(cache: Path, duration_s: float, *, jobs: int, log) -> Path:
    """The cached full-length recordings (generated once; a ``complete`` marker guards them)."""
    for d in sorted(cache.glob(f"sim_{FS_HZ:g}hz_*s")):
        if (d / "complete").is_file() and float(d.name.rsplit("_", 1)[1][:-1]) >= duration_s:
            return d
    d = _master_dir(cache, duration_s)
    d.mkdir(parents=True, exist_ok=True)
    log(f"generating a {duration_s / 60:g}-min 2-sensor 500 Hz session in {d} ({jobs} process(es)) ...")
    t = time.perf_counter()
    work = [(name, str(d), duration_s) for name, *_ in SENSORS]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs) as ex:
            per = list(ex.map(_generate_one, work))
    else:
        per = [_generate_one(w) for w in work]
    wall = time.perf_counter() - t
    (d / "complete").write_text(json.dumps({"duration_s": duration_s, "gen_s_per_sensor": per}) + "\n")
    log(f"  generated in {wall:.1f} s wall ({', '.join(f'{x:.1f}' for x in per)} s per sensor file: "
        f"{sum(per) / (len(per) * duration_s / 60):.2f} s per sensor-minute)")
    return d


def session_files(cache: Path, duration_s: float, *, jobs: int = 1, log=print) -> list[Path]:
    """Paths of a 2-sensor session of ``duration_s`` (a prefix of the cached master)."""
    master = ensure_master(cache, duration_s, jobs=jobs, log=log)
    mdur = float(master.name.rsplit("_", 1)[1][:-1])
    if mdur == duration_s:
        return [master / f"bench_{n}.csv" for n, *_ in SENSORS]
    d = cache / f"{master.name}_first{duration_s:g}s"
    out = [d / f"bench_{n}.csv" for n, *_ in SENSORS]
    if (d / "complete").is_file():
        return out
    d.mkdir(parents=True, exist_ok=True)
    for (n, *_), dst in zip(SENSORS, out):
        src = master / f"bench_{n}.csv"
        with src.open("rb") as fi, dst.open("wb") as fo:
            fo.write(fi.readline())
            for line in fi:
                if float(line.split(b",", 1)[0]) >= duration_s:
                    break
                fo.write(line)
        shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    (d / "complete").write_text("prefix\n")
    return out


# ------------------------------------------------------------------ offline (child side)
def pin_one_core() -> int:
    """Pin this process to one CPU (the last one it may use); return it."""
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[-1]
    os.sched_setaffinity(0, {cpu})
    return cpu


def _import_replay_modules() -> None:
    """Every module a replay imports, including those ``cmd_replay.run`` imports inside the
    call (the console and history sinks; the ``utf-8-sig`` codec the reader opens files with):
    imports are a per-process cost, excluded from the timed call like the interpreter start."""
    import codecs

    from pipeline import cli, cmd_replay  # noqa: F401
    import pipeline.engine, pipeline.run, pipeline.sinks.file_sink, firmware_bridge.replay  # noqa: F401,E401
    import pipeline.sinks.console, pipeline.sinks.history_sink, pipeline.sinks.memory_sink  # noqa: F401,E401

    codecs.lookup("utf-8-sig")


def child_events(paths: list[str], config: str | None, repeat: int) -> dict:
    """gaitwatch at gaitmap's scope, in this (fresh, pinned) process: CSV -> step events in
    memory, ``pipeline.cmd_replay.replay_in_memory`` (the replay's reader, engine and run loop
    with a memory sink; no files). Called ``1 + repeat`` times like the gaitmap worker: the
    first call (cold: per-process caches such as filter designs, first-call paths) and the
    median CPU time of the warm calls; the events of the last call."""
    pin_one_core()
    _import_replay_modules()
    from pipeline.cmd_replay import replay_in_memory
    from pipeline.config import load_config
    from pipeline.records import StepRecord
    from pipeline.warmup import warm_kernels

    warm_kernels()  # loading the compiled kernels is a per-process cost, as in child_replay
    import gc

    cpus, records = [], []
    for _ in range(1 + repeat):
        records = None  # the previous call's output is not kept alive while timing the next
        gc.collect()  # each call starts with an empty GC (gaitmap_worker does the same)
        c0 = time.process_time()
        records, _ = replay_in_memory(paths, config=load_config(config))
        cpus.append(time.process_time() - c0)
    steps = [r.step for r in records if isinstance(r, StepRecord)]
    return {"cold_cpu_s": cpus[0], "warm_cpu_s": statistics.median(cpus[1:]), "warm_cpu_min_s": min(cpus[1:]),
            "warm_cpu_all_s": cpus[1:], "ic_s": sorted(st.ic_s for st in steps),
            "to_s": sorted(st.to_s for st in steps if st.to_s == st.to_s)}


def child_replay(argv: list[str], out_dir: str) -> dict:
    """One ``gaitwatch replay ARGV --out OUT_DIR`` in this process, timed (run in a fresh subprocess)."""
    cpu = pin_one_core()
    _import_replay_modules()  # imports are not timed
    from pipeline import cli, cmd_replay

    from pipeline.warmup import warm_kernels

    # like the imports, loading the compiled kernels from numba's on-disk cache is a one-off
    # per process (~0.3-0.5 s, reported as warm_s), not part of the throughput
    w0 = time.perf_counter()
    warm_kernels()
    warm_s = time.perf_counter() - w0
    args = cli.build_parser().parse_args(["replay", *argv, "--out", out_dir])
    t0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = cmd_replay.run(args)
    wall, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    with open(Path(out_dir) / "steps.csv", encoding="utf-8") as f:
        steps = sum(1 for _ in f) - 1
    return {"rc": rc, "wall_s": wall, "cpu_s": cpu_s, "steps": steps, "cpu": cpu, "warm_s": warm_s}


def run_child(argv: list[str]) -> tuple[dict, float]:
    """Run ``bench_pipeline.py _child ...`` in a fresh interpreter; (its JSON, peak RSS MiB)."""
    p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *argv], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=str(ROOT))
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({p.returncode}): {err.decode(errors='replace')[-2000:]}")
    return json.loads(out.decode().strip().splitlines()[-1]), ru.ru_maxrss / 1024.0


def metrics_off_config(tmp: Path) -> Path | None:
    """A --config turning the per-step form metrics off (``[metrics] enabled = []``): the
    event pipeline alone (reader, alignment, steps, file sink); None if there is no such key."""
    from pipeline.config import load_config

    try:
        load_config(None).section("metrics")["enabled"]
    except Exception:
        return None
    p = tmp / "metrics_off.toml"
    p.write_text("[metrics]\nenabled = []\n", encoding="utf-8")
    return p


def bench_offline(cache: Path, minutes: list[float], *, repeat: int, jobs: int, log, events_only: bool) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="gw-bench-cfg-") as cfg_dir:
        configs = [("full", None)]
        off = metrics_off_config(Path(cfg_dir)) if events_only else None
        if off is not None:
            configs.append(("events only", off))
        for m in minutes:
            paths = session_files(cache, m * 60.0, jobs=jobs, log=log)
            for label, cfg in configs:
                runs = []
                for _ in range(repeat):
                    with tempfile.TemporaryDirectory(prefix="gw-bench-out-") as out:
                        extra = ["--config", str(cfg)] if cfg is not None else []
                        res, rss = run_child(["_replay", out, *map(str, paths), *extra])
                    res["rss_mib"] = rss
                    runs.append(res)
                    log(f"  {m:g} min ({label}): {res['wall_s']:.2f} s wall, {res['cpu_s']:.2f} s CPU, "
                        f"{m * 60 / res['wall_s']:.0f}x real time, peak RSS {rss:.0f} MiB, {res['steps']} steps")
                best = min(runs, key=lambda r: r["wall_s"])
                rows.append({
                    "minutes": m, "pipeline": label, "rows": 2 * int(m * 60 * FS_HZ), "steps": best["steps"],
                    "wall_s": best["wall_s"], "median_wall_s": statistics.median(r["wall_s"] for r in runs),
                    "cpu_s": best["cpu_s"], "x_realtime": m * 60 / best["wall_s"],
                    "x_realtime_cpu": m * 60 / best["cpu_s"],
                    "x_realtime_median": m * 60 / statistics.median(r["wall_s"] for r in runs),
                    "peak_rss_mib": max(r["rss_mib"] for r in runs), "repeat": repeat,
                    "warm_s": best["warm_s"],
                })
    return rows


# ------------------------------------------------------------------ live
def _live_source(n_sensors: int, duration_s: float, block_n: int, base_s: float = 60.0):
    """Per-sensor SampleBlock streams: one simulated foot recording (signals in memory) shared by
    all sensors, each starting at its own offset (phase-shifted), cut into ``block_n`` blocks."""
    import numpy as np

    from pipeline.records import SampleBlock, SensorInfo
    from pipeline.simulator import Simulator

    name, side, mount, seed = SENSORS[1]
    base_s = max(base_s, duration_s + 5.0)
    _, acc, gyr = Simulator(sim_params(name, side, mount, seed, base_s)).signals(0.0, base_s)
    n_total = int(duration_s * FS_HZ)
    infos = [SensorInfo(sensor_id=f"s{i:03d}", placement="foot", side=SIDES_[i % 2], athlete=f"a{i // 2}")
             for i in range(n_sensors)]
    shift_n = int(round(FS_HZ * 0.353))  # about one step / n: the sensors do not step in unison

    def stream(i: int):
        off = (i * shift_n // max(n_sensors, 1)) % block_n + (i * 7919) % int(FS_HZ)
        for k in range(0, n_total - block_n + 1, block_n):
            yield SampleBlock(sensor_id=infos[i].sensor_id, fs_hz=FS_HZ, t0_s=0.0 + (off % block_n) / FS_HZ,
                              first_index=k, acc_ms2=np.ascontiguousarray(acc[off + k:off + k + block_n]),
                              gyr_dps=np.ascontiguousarray(gyr[off + k:off + k + block_n]))

    return infos, [stream(i) for i in range(n_sensors)]


SIDES_ = ("left", "right")


class _StampSink:
    """Records, for every StepRecord handed over, now - due time of the item being processed."""

    def __init__(self, clock_due, cpu_start):
        self.clock_due = clock_due
        self.cpu_start = cpu_start
        self.lat: list[tuple[float, float, float]] = []  # (ic_s, latency s, CPU s of the item's update)

    def write(self, records) -> None:
        now, cpu = time.monotonic(), time.thread_time()
        due = self.clock_due()
        if math.isnan(due):
            return
        for r in records:
            if hasattr(r, "step"):  # StepRecords (alerts ride along)
                self.lat.append((r.step.ic_s, now - due, cpu - self.cpu_start()))

    def close(self, summary) -> None:
        pass


def live_latency(n_sensors: int, duration_s: float, block_n: int, warmup_s: float) -> dict:
    """Paced real-time run of ``n_sensors`` through pace() + run_session (this process)."""
    from firmware_bridge.replay import item_end_s, item_start_s, merge_items, pace
    from pipeline.engine import Engine
    from pipeline.records import SessionInfo
    from pipeline.run import run_session

    infos, streams = _live_source(n_sensors, duration_s, block_n)
    state = {"due": math.nan, "wall0": None, "t0": None, "cpu": math.nan}

    def clock_due() -> float:
        return state["due"]

    def cpu_start() -> float:
        return state["cpu"]

    def tagged(items):
        for it in items:
            if state["wall0"] is None:
                state["wall0"], state["t0"] = time.monotonic(), item_start_s(it)
            state["due"] = state["wall0"] + (item_end_s(it) - state["t0"])
            state["cpu"] = time.thread_time()
            yield it
        state["due"] = math.nan  # end of stream: steps from flush() have no look-ahead: not counted

    sink = _StampSink(clock_due, cpu_start)
    engine = Engine(infos)
    # pace() releases each block when its last sample has been measured (speed 1); tagged()
    # notes that instant for the block being processed. Both use time.monotonic.
    items = merge_items(streams)
    paced = pace(tagged(items), speed=1.0)
    c0 = time.process_time()
    t0 = time.monotonic()
    run_session(paced, engine, [sink], session=SessionInfo(session_id="live", athlete="", start_wall_ns=0))
    wall = time.monotonic() - t0
    cpu = time.process_time() - c0
    steady = [lat for ic, lat, _ in sink.lat if ic >= warmup_s]
    warm = [lat for ic, lat, _ in sink.lat if ic < warmup_s]
    upd = [c for ic, _, c in sink.lat if ic >= warmup_s]
    return {"sensors": n_sensors, "steps": len(steady), "p50_ms": _pct(steady, 50) * 1e3,
            "update_cpu_p99_ms": _pct(upd, 99) * 1e3,
            "p99_ms": _pct(steady, 99) * 1e3, "max_ms": max(steady, default=math.nan) * 1e3,
            "warmup_max_ms": max(warm, default=math.nan) * 1e3, "cpu_fraction": cpu / wall}


def _pct(xs, q):
    import numpy as np

    return float(np.percentile(xs, q)) if xs else math.nan


def live_capacity(n_sensors: int, duration_s: float, block_n: int, warmup_s: float,
                  config_path: Path | None = None) -> dict:
    """Unpaced: CPU seconds per sensor-second of signal in steady state (after warm-up)."""
    from firmware_bridge.replay import merge_items
    from pipeline.config import load_config
    from pipeline.engine import Engine

    infos, streams = _live_source(n_sensors, duration_s, block_n)
    engine = Engine(infos, config=load_config(config_path))
    cpu_warm = None
    t_warm = None
    from firmware_bridge.replay import item_end_s

    for it in merge_items(streams):
        if cpu_warm is None and item_end_s(it) >= warmup_s:
            cpu_warm, t_warm = time.process_time(), item_end_s(it)
        engine.update(it)
    cpu = time.process_time() - cpu_warm
    sensor_s = n_sensors * (duration_s - t_warm)
    return {"cpu_per_sensor_s": cpu / sensor_s, "sensors_per_core": sensor_s / cpu}


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child_live_mem(n_sensors: int, duration_s: float, block_n: int) -> dict:
    """Resident memory an engine with ``n_sensors`` live sensors adds (VmRSS after - before)."""
    import gc

    from firmware_bridge.replay import merge_items
    from pipeline.engine import Engine

    infos, streams = _live_source(n_sensors, duration_s, block_n, base_s=duration_s + 5.0)
    gc.collect()
    before = _rss_kib()
    engine = Engine(infos)
    steps = 0
    for it in merge_items(streams):
        steps += len(engine.update(it))
    gc.collect()
    return {"steps": steps, "rss_added_kib": _rss_kib() - before}


# ------------------------------------------------------------------ gaitmap side by side
GAITMAP_PY = Path(os.environ.get("GAITMAP_PYTHON", str(Path(tempfile.gettempdir()) / "gaitmap-venv/bin/python")))
MATCH_TOL_S = 0.25  # one event per contact; the same foot's contacts are >= 0.4 s apart at any cadence


def match(ref, est, tol_s: float = MATCH_TOL_S) -> dict:
    """One-to-one matching of event times (nearest first, within ``tol_s``): median |est - ref|
    (ms) and median signed difference, matched count, and events only in ref / only in est."""
    import numpy as np

    ref, est = np.sort(np.asarray(ref, float)), np.sort(np.asarray(est, float))
    pairs = sorted(((abs(e - r), i, j) for i, r in enumerate(ref)
                    for j in range(np.searchsorted(est, r - tol_s), np.searchsorted(est, r + tol_s, "right"))
                    for e in (est[j],)), key=lambda x: x[0])
    used_r, used_e, d = set(), set(), []
    for _, i, j in pairs:
        if i in used_r or j in used_e:
            continue
        used_r.add(i)
        used_e.add(j)
        d.append(est[j] - ref[i])
    d = np.asarray(d)
    return {"matched": int(d.size), "only_ref": int(ref.size - d.size), "only_est": int(est.size - d.size),
            "mad_ms": float(np.median(np.abs(d)) * 1e3) if d.size else math.nan,
            "bias_ms": float(np.median(d) * 1e3) if d.size else math.nan}


def zv_agreement(zv, ic, to) -> dict:
    """PyShoe Vicon foot-flat intervals [a, b]: foot-flat starts after IC and ends before TO, so a
    contact is right when an IC lies in [a - 0.25 s, a] and a TO in [b, b + 0.25 s]. Intervals
    out of the trial's rhythm (split or missed in the Vicon area's turns, as its README warns:
    a neighbour's start not 0.75-1.25 median strides away) are left out."""
    import numpy as np

    ic, to = np.sort(np.asarray(ic, float)), np.sort(np.asarray(to, float))
    starts = zv[:, 0]
    stride = float(np.median(np.diff(starts)))
    keep = [k for k in range(len(zv)) if all(0.75 * stride <= abs(starts[j] - starts[k]) <= 1.25 * stride
                                              for j in (k - 1, k + 1) if 0 <= j < len(zv))]
    ic_ok, to_ok, lead, lag = 0, 0, [], []
    for k in keep:
        a, b = zv[k]
        c = ic[(ic <= a) & (ic >= a - MATCH_TOL_S)]
        t = to[(to >= b) & (to <= b + MATCH_TOL_S)]
        if c.size:
            ic_ok += 1
            lead.append(a - c.max())
        if t.size:
            to_ok += 1
            lag.append(t.min() - b)
    return {"intervals": len(keep), "ic_before": ic_ok, "to_after": to_ok,
            "ic_lead_ms": float(np.median(lead) * 1e3) if lead else math.nan,
            "to_lag_ms": float(np.median(lag) * 1e3) if lag else math.nan}


def gaitwatch_events(path: Path, config: Path | None = None) -> tuple[list[float], list[float], float]:
    """``gaitwatch replay`` of one recording in a fresh pinned process: (IC s, TO s, CPU s)."""
    import csv

    with tempfile.TemporaryDirectory(prefix="gw-bench-gm-") as out:
        res, _ = run_child(["_replay", out, str(path), *(["--config", str(config)] if config else [])])
        with open(Path(out) / "steps.csv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    ic = [float(r["ic_s"]) for r in rows]
    to = [float(r["to_s"]) for r in rows if r["to_s"]]
    return ic, to, res["cpu_s"]


def gaitwatch_events_warm(path: Path, config: Path | None, repeat: int, cli_events: tuple[list, list]) -> dict:
    """gaitwatch at gaitmap's scope (``child_events`` in a fresh pinned process); its events
    must be the replay command's (``cli_events``, read back from steps.csv) to the microsecond."""
    res, _ = run_child(["_events", str(repeat), str(path), *(["--config", str(config)] if config else [])])
    for mem, fil in zip((res["ic_s"], res["to_s"]), cli_events):
        if [f"{x:.6f}" for x in mem] != [f"{x:.6f}" for x in sorted(fil)]:
            raise AssertionError(f"{path.name}: in-memory events differ from steps.csv")
    return res


def bench_gaitmap(cache: Path, *, sim_minutes: float, shared_data: Path, jobs: int, log, repeat: int = 5) -> dict:
    """gaitmap (its own venv) and gaitwatch on the same foot recordings; agreement and time."""
    import numpy as np
    import pandas as pd

    if not GAITMAP_PY.exists():
        raise SystemExit(f"gaitmap venv not found at {GAITMAP_PY} (see bench/README.md: python3 -m venv "
                         f"/tmp/gaitmap-venv && /tmp/gaitmap-venv/bin/pip install gaitmap gaitmap-mad; or set GAITMAP_PYTHON)")
    recs: list[tuple[str, Path, object]] = []  # (kind, csv, truth)
    sim_paths = session_files(cache, sim_minutes * 60.0, jobs=jobs, log=log)
    master = ensure_master(cache, sim_minutes * 60.0, jobs=jobs, log=log)
    for (n, *_), pth in zip(SENSORS, sim_paths):
        tr = pd.read_csv(master / f"bench_{n}_truth.csv")
        tr = tr[(tr["ic_s"] >= 0) & (tr["to_s"] <= sim_minutes * 60.0)]
        recs.append(("sim", pth, tr))
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-pyshoe-"))
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        from pyshoe import TRIALS, pyshoe_recording, zv_intervals

        if (shared_data / "pyshoe_vicon").is_dir():
            for trial in TRIALS:
                recs.append(("pyshoe", pyshoe_recording(trial, tmp, shared_data), zv_intervals(trial, shared_data)))
        else:
            log(f"PyShoe data not found in {shared_data}: simulated session only")
        cpu = sorted(os.sched_getaffinity(0))[-1]
        out_json = tmp / "gaitmap.json"
        log(f"gaitmap ({GAITMAP_PY}) on {len(recs)} recordings ...")
        p = subprocess.run([str(GAITMAP_PY), "-W", "ignore", str(Path(__file__).with_name("gaitmap_worker.py")),
                            "--repeat", str(repeat), str(out_json), *[str(r[1]) for r in recs]],
                           capture_output=True, text=True,
                           preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
        if p.returncode != 0:
            raise RuntimeError(f"gaitmap worker failed: {p.stderr[-3000:]}")
        gm = json.loads(out_json.read_text())
        rows = []
        for kind, pth, truth in recs:
            g = gm["recordings"][str(pth)]
            ic, to, wall = gaitwatch_events(pth)
            off = metrics_off_config(tmp)
            ic_e, to_e, wall_e = gaitwatch_events(pth, off) if off is not None else (ic, to, math.nan)
            assert (ic_e, to_e) == (ic, to), "steps must not depend on the form metrics"
            # (b) gaitmap's scope: same process, warm calls, CSV -> events in memory, same engine path
            warm = gaitwatch_events_warm(pth, None, repeat, (ic, to))
            warm_e = gaitwatch_events_warm(pth, off, repeat, (ic, to)) if off is not None else None
            row = {"kind": kind, "name": pth.stem, "seconds": g["samples"] / g["fs_hz"], "fs_hz": g["fs_hz"],
                   "gw_s": wall, "gw_events_s": wall_e, "gm_cold_s": g["cold_cpu_s"], "gm_warm_s": g["warm_cpu_s"],
                   "gm_warm_min_s": g.get("warm_cpu_min_s", g["warm_cpu_s"]), "gm_warm_all_s": g.get("warm_cpu_all_s"),
                   "gm_cold_wall_s": g["cold_s"], "gm_warm_wall_s": g["warm_s"],
                   "gw_mem_warm_s": warm["warm_cpu_s"], "gw_mem_warm_min_s": warm["warm_cpu_min_s"],
                   "gw_mem_cold_s": warm["cold_cpu_s"], "gw_mem_warm_all_s": warm["warm_cpu_all_s"],
                   "gw_mem_ev_warm_s": warm_e["warm_cpu_s"] if warm_e else math.nan,
                   "gw_mem_ev_warm_min_s": warm_e["warm_cpu_min_s"] if warm_e else math.nan,
                   "repeat": repeat,
                   "gm_default_strides": g["strides_default_max_cost"], "gw_steps": len(ic), "variants": {}}
            for vname, v in g["variants"].items():
                r = {"strides": v["strides"], "ic_vs_gw": match(ic, v["ic_s"]), "to_vs_gw": match(to, v["to_s"])}
                if kind == "sim":
                    r["ic_vs_truth"] = match(truth["ic_s"], v["ic_s"])
                    r["to_vs_truth"] = match(truth["to_s"], v["to_s"])
                else:
                    r["zv"] = zv_agreement(truth, v["ic_s"], v["to_s"])
                row["variants"][vname] = r
            if kind == "sim":
                row["gw_ic_vs_truth"] = match(truth["ic_s"], ic)
                row["gw_to_vs_truth"] = match(truth["to_s"], to)
            else:
                row["gw_zv"] = zv_agreement(truth, ic, to)
            rows.append(row)
            log(f"  {pth.name}: gaitwatch CLI {wall:.4f} s CPU, in memory warm {warm['warm_cpu_s']:.4f} s; "
                f"gaitmap {g['warm_cpu_s']:.4f} s CPU warm")
        return {"gaitmap_version": gm["gaitmap_version"], "rows": rows}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def format_gaitmap(res: dict, variant: str) -> list[str]:
    f = lambda m: f"{m['mad_ms']:6.1f} {m['bias_ms']:+7.1f} {m['only_ref']:4d} {m['only_est']:4d}"  # noqa: E731
    lines = ["", f"gaitmap {res['gaitmap_version']} ({variant}: BarthDtw + {variant.split('+')[0]} events) vs "
             "gaitwatch on the same foot recordings, one core each, CPU seconds (the machine is shared)",
             "(a) gaitwatch's replay command: a fresh process's first call, CSV -> steps.csv, alerts.csv, session.json "
             "(imports and kernel load excluded): all metrics (cli_s), events only (cli_ev_s)",
             f"(b) same scope as gaitmap: CSV -> events in memory, same process, median of "
             f"{res['rows'][0].get('repeat', 1)} warm calls: gaitwatch (replay_in_memory: the replay's reader, engine "
             "and run loop, memory sink) all metrics (mem_s), events only (mem_ev_s); gaitmap warm (gm_warm_s), its "
             "first call incl. numba JIT (gm_cold_s)",
             "ratios = gm_warm_s / gaitwatch's",
             f"{'recording':<30} {'signal_s':>8} {'cli_s':>7} {'cli_ev_s':>8} {'mem_s':>7} {'mem_ev_s':>8} "
             f"{'gm_warm_s':>9} {'gm_cold_s':>9} {'(a)cli':>6} {'cli_ev':>6} {'(b)mem':>6} {'mem_ev':>6} "
             f"{'gw_steps':>8} {'gm_strides':>10} {'gm_default':>10}"]
    tot = dict.fromkeys(("gw_s", "gw_events_s", "gw_mem_warm_s", "gw_mem_ev_warm_s", "gm_warm_s"), 0.0)
    for r in res["rows"]:
        v = r["variants"][variant]
        for k in tot:
            tot[k] += r.get(k, math.nan)
        gm = r["gm_warm_s"]
        mem, mem_ev = r.get("gw_mem_warm_s", math.nan), r.get("gw_mem_ev_warm_s", math.nan)
        lines.append(f"{r['name'][:30]:<30} {r['seconds']:>8.1f} {r['gw_s']:>7.4f} {r['gw_events_s']:>8.4f} "
                     f"{mem:>7.4f} {mem_ev:>8.4f} {gm:>9.4f} {r['gm_cold_s']:>9.4f} {gm / r['gw_s']:>6.1f} "
                     f"{gm / r['gw_events_s']:>6.1f} {gm / mem:>6.1f} {gm / mem_ev:>6.1f} {r['gw_steps']:>8d} "
                     f"{v['strides']:>10d} {r['gm_default_strides']:>10d}")
    gm = tot["gm_warm_s"]
    lines.append(f"{'total':<30} {'':>8} {tot['gw_s']:>7.4f} {tot['gw_events_s']:>8.4f} {tot['gw_mem_warm_s']:>7.4f} "
                 f"{tot['gw_mem_ev_warm_s']:>8.4f} {gm:>9.4f} {'':>9} {gm / tot['gw_s']:>6.1f} "
                 f"{gm / tot['gw_events_s']:>6.1f} {gm / tot['gw_mem_warm_s']:>6.1f} {gm / tot['gw_mem_ev_warm_s']:>6.1f}")
    lines += ["", "agreement (events matched one-to-one within 250 ms): median |diff| ms, median signed diff ms, "
              "only in reference, only in the other",
              f"{'recording':<32} {'event':<5} {'gaitmap vs gaitwatch (ref)':>27} {'gaitwatch vs truth':>27} "
              f"{'gaitmap vs truth':>27}"]
    for r in res["rows"]:
        v = r["variants"][variant]
        if r["kind"] == "sim":
            for ev in ("ic", "to"):
                lines.append(f"{r['name'][:32]:<32} {ev.upper():<5} {f(v[f'{ev}_vs_gw']):>27} "
                             f"{f(r[f'gw_{ev}_vs_truth']):>27} {f(v[f'{ev}_vs_truth']):>27}")
    pys = [r for r in res["rows"] if r["kind"] == "pyshoe"]
    if pys:
        lines += ["", "PyShoe (Vicon foot-flat [a, b]): intervals with an IC in [a-250 ms, a] / a TO in [b, b+250 ms], "
                  "median IC lead and TO lag (ms)",
                  f"{'recording':<32} {'n':>4} {'gaitwatch IC/TO ok':>18} {'lead/lag':>13} "
                  f"{'gaitmap IC/TO ok':>17} {'lead/lag':>13} {'IC gm-vs-gw':>27} {'TO gm-vs-gw':>27}"]
        for r in pys:
            v = r["variants"][variant]
            a, b = r["gw_zv"], v["zv"]
            lines.append(f"{r['name'][:32]:<32} {a['intervals']:>4d} {a['ic_before']:>8d}/{a['to_after']:<9d} "
                         f"{a['ic_lead_ms']:>6.0f}/{a['to_lag_ms']:<6.0f} {b['ic_before']:>7d}/{b['to_after']:<9d} "
                         f"{b['ic_lead_ms']:>6.0f}/{b['to_lag_ms']:<6.0f} {f(v['ic_vs_gw']):>27} {f(v['to_vs_gw']):>27}")
    return lines


# ------------------------------------------------------------------ table
def format_table(machine: dict, offline: list[dict], live: list[dict], capacity: dict | None,
                 mem: dict | None, gaitmap: dict | None = None) -> str:
    lines = [f"machine: {machine['cpu_model']}, nproc {machine['nproc']}, Python {machine['python']}, "
             f"numpy {machine['numpy']}, pandas {machine['pandas']}; load average at start "
             f"{machine['loadavg_start']:.2f}, at end {machine.get('loadavg_end', math.nan):.2f} (a shared machine "
             "inflates wall times: compare cpu_s)"]
    if offline:
        lines += ["", "offline: gaitwatch replay, 2 foot sensors x 500 Hz x 6 axes -> steps.csv, one core "
                  "(x_realtime = session length / wall time; x_rt_cpu = / CPU time; warm_s = one-off load of the "
                  "compiled kernels before the timed run, like the imports)",
                  f"{'minutes':>8} {'pipeline':<12} {'samples':>10} {'steps':>7} {'wall_s':>8} {'cpu_s':>8} "
                  f"{'x_realtime':>11} {'x_rt_cpu':>9} {'x_rt_median':>11} {'peak_rss_MiB':>13} {'warm_s':>7}"]
        for r in offline:
            lines.append(f"{r['minutes']:>8g} {r['pipeline']:<12} {r['rows']:>10d} {r['steps']:>7d} {r['wall_s']:>8.2f} "
                         f"{r['cpu_s']:>8.2f} {r['x_realtime']:>11.0f} {r['x_realtime_cpu']:>9.0f} "
                         f"{r['x_realtime_median']:>11.0f} {r['peak_rss_mib']:>13.1f} {r.get('warm_s', math.nan):>7.2f}")
    if live:
        lines += ["", f"live: 500 Hz sensors, blocks of {live[0]['block_n']} samples in real time, "
                  "latency = look-ahead's last sample arrives -> record handed to the sinks",
                  "(upd_cpu_p99 = p99 of the CPU time of the update that emitted the step: the part that is ours)",
                  f"{'sensors':>8} {'steps':>6} {'p50_ms':>8} {'p99_ms':>8} {'max_ms':>8} {'upd_cpu_p99':>12} "
                  f"{'warmup_max_ms':>14} {'cpu_busy':>9}"]
        for r in live:
            lines.append(f"{r['sensors']:>8d} {r['steps']:>6d} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                         f"{r['max_ms']:>8.2f} {r['update_cpu_p99_ms']:>12.2f} {r['warmup_max_ms']:>14.1f} "
                         f"{r['cpu_fraction']:>9.1%}")
    if capacity:
        lines += ["", f"live capacity (unpaced, {capacity['sensors']} sensors, one core, steady state): "
                  f"{capacity['cpu_per_sensor_s'] * 1e3:.2f} ms CPU per sensor-second -> "
                  f"{capacity['sensors_per_core']:.0f} sensors of 500 Hz per core in real time"
                  + (f" (form metrics off: {capacity['events_only_cpu_per_sensor_s'] * 1e3:.2f} ms -> "
                     f"{capacity['events_only_sensors_per_core']:.0f})" if "events_only_sensors_per_core" in capacity
                     else "")]
    if mem:
        lines.append(f"live memory: the engine adds {mem['added_1_kib']} KiB resident with 1 sensor, "
                     f"{mem['added_n_kib']} KiB with {mem['n']} -> {mem['per_sensor_kib']:.0f} KiB per additional "
                     f"sensor (peak RSS of the whole process {mem['rss_1']:.0f} / {mem['rss_n']:.0f} MiB)")
    if gaitmap:
        for variant in gaitmap["rows"][0]["variants"]:
            lines += format_gaitmap(gaitmap, variant)
    return "\n".join(lines)


def machine_info() -> dict:
    import numpy
    import pandas

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": sys.version.split()[0],
            "numpy": numpy.__version__, "pandas": pandas.__version__, "loadavg_start": os.getloadavg()[0]}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_replay":
        print(json.dumps(child_replay(argv[2:], argv[1])))
        return 0
    if argv and argv[0] == "_events":
        rest = argv[2:]
        cfg = rest[rest.index("--config") + 1] if "--config" in rest else None
        paths = [x for i, x in enumerate(rest) if x != "--config" and (i == 0 or rest[i - 1] != "--config")]
        print(json.dumps(child_events(paths, cfg, int(argv[1]))))
        return 0
    if argv and argv[0] == "_livemem":
        pin_one_core()
        print(json.dumps(child_live_mem(int(argv[1]), float(argv[2]), int(argv[3]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="offline,live,gaitmap",
                    help="comma list of: offline, live, gaitmap (default: all three)")
    ap.add_argument("--minutes", default="10,60", help="offline session lengths in minutes (default 10,60)")
    ap.add_argument("--repeat", type=int, default=1, help="offline runs per length (best and median shown)")
    ap.add_argument("--no-events-only", action="store_true",
                    help="skip the offline runs with the form metrics off ([metrics] enabled = [])")
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"recording cache (default {DEFAULT_CACHE})")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="processes generating recordings (one per sensor file)")
    ap.add_argument("--live-sensors", default="1,8,32", help="sensor counts for the latency runs")
    ap.add_argument("--live-s", type=float, default=30.0, help="seconds of real time per latency run")
    ap.add_argument("--live-warmup-s", type=float, default=8.0, help="steps before this are the warm-up")
    ap.add_argument("--live-block-n", type=int, default=19, help="samples per block (19 = one BLE notification)")
    ap.add_argument("--capacity-sensors", type=int, default=32, help="sensors in the unpaced capacity run")
    ap.add_argument("--mem-sensors", type=int, default=65, help="sensors in the live memory run (vs 1)")
    ap.add_argument("--gaitmap-sim-min", type=float, default=5.0,
                    help="minutes of the simulated session given to gaitmap and gaitwatch (default 5)")
    ap.add_argument("--gaitmap-repeat", type=int, default=5,
                    help="warm calls per recording for gaitmap and in-memory gaitwatch (median reported; default 5)")
    ap.add_argument("--shared-data", type=Path, default=ROOT.parent / "shared" / "data",
                    help="folder holding pyshoe_vicon/ (default ../shared/data)")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    ap.add_argument("--json", type=Path, default=None, help="also write all figures as JSON to this file")
    a = ap.parse_args(argv)
    parts = {p.strip() for p in a.parts.split(",") if p.strip()}
    unknown = parts - {"offline", "live", "gaitmap"}
    if unknown:
        ap.error(f"unknown part(s) {sorted(unknown)}; known: offline, live, gaitmap")
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    machine = machine_info()
    offline, live, capacity, mem, gm = [], [], None, None, None
    if "offline" in parts:
        minutes = [float(x) for x in a.minutes.split(",") if x.strip()]
        ensure_master(a.cache_dir, max(minutes) * 60.0, jobs=a.jobs, log=log)
        offline = bench_offline(a.cache_dir, minutes, repeat=a.repeat, jobs=a.jobs, log=log,
                                events_only=not a.no_events_only)
    if "live" in parts:
        pin_one_core()
        for n in [int(x) for x in a.live_sensors.split(",") if x.strip()]:
            r = live_latency(n, a.live_s, a.live_block_n, a.live_warmup_s)
            r["block_n"] = a.live_block_n
            live.append(r)
            log(f"  live {n} sensors: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms ({r['steps']} steps)")
        capacity = live_capacity(a.capacity_sensors, max(a.live_s, a.live_warmup_s + 10.0), a.live_block_n,
                                 a.live_warmup_s)
        capacity["sensors"] = a.capacity_sensors
        with tempfile.TemporaryDirectory(prefix="gw-bench-cfg-") as cfg_dir:
            off = metrics_off_config(Path(cfg_dir))
            if off is not None:
                ev = live_capacity(a.capacity_sensors, max(a.live_s, a.live_warmup_s + 10.0), a.live_block_n,
                                   a.live_warmup_s, config_path=off)
                capacity["events_only_sensors_per_core"] = ev["sensors_per_core"]
                capacity["events_only_cpu_per_sensor_s"] = ev["cpu_per_sensor_s"]
        mem_s = max(a.live_s, a.live_warmup_s + 5.0)
        r1, rss1 = run_child(["_livemem", "1", str(mem_s), str(a.live_block_n)])
        rn, rssn = run_child(["_livemem", str(a.mem_sensors), str(mem_s), str(a.live_block_n)])
        mem = {"rss_1": rss1, "rss_n": rssn, "n": a.mem_sensors, "added_1_kib": r1["rss_added_kib"],
               "added_n_kib": rn["rss_added_kib"],
               "per_sensor_kib": (rn["rss_added_kib"] - r1["rss_added_kib"]) / (a.mem_sensors - 1)}
    if "gaitmap" in parts:
        gm = bench_gaitmap(a.cache_dir, sim_minutes=a.gaitmap_sim_min, shared_data=a.shared_data, jobs=a.jobs, log=log,
                           repeat=a.gaitmap_repeat)
    machine["loadavg_end"] = os.getloadavg()[0]
    table = format_table(machine, offline, live, capacity, mem, gm)
    print(table)
    if a.markdown is not None:
        a.markdown.write_text("```\n" + table + "\n```\n", encoding="utf-8")
    if a.json is not None:
        a.json.write_text(json.dumps({"machine": machine, "offline": offline, "live": live, "capacity": capacity,
                                      "memory": mem, "gaitmap": gm}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
