"""InfluxDB write throughput: the raw ceiling vs gaitwatch's sink, on one machine, one run.

    .venv/bin/python bench/bench_influx.py [--sim-s 300] [--extra-metrics 8] [--repeat 5]

1. Starts a real ``influxd`` (Debian's 1.6.7; tests/influx_fixtures.py) on a free loopback port.
2. Replays a simulated 2-sensor run of ``--sim-s`` seconds through the real engine (no sinks,
   after a 10-s warm-up replay) and times it: the replay time (wall, like the sink's time).
   Its records are tiled in time to one hour (a 1-hour, 2-sensor session);
   ``--extra-metrics`` metrics per step stand in for the per-step metric set (impact, strike
   angle, ...), so lines are as wide as in a full run.
3. Raw ceiling: the same session's steps pre-built as line protocol, POSTed to ``/write`` in
   batches of 5,000 lines over one keep-alive connection (points/s).
4. gaitwatch's sink (v1 transport, default [influx] config, spool in a temp dir) writing
   the session's records in the chunks the replay delivers them, from creating the sink
   (start check, spool directory) until close() returns with every point acknowledged
   (points/s; windows, health and summary points included, as they are extra lines too).
5. Same for the v2 transport (influxdb-client batching WriteApi) through the tests'
   compatibility front (a Python proxy, so this figure is a lower bound).

Each round runs raw, v1, raw, v2, raw; a sink run is compared with the mean time of the raw
runs just before and after it, so load from other work that comes and goes within seconds
hits both sides alike (the CPUs may be shared); the median of ``--repeat`` rounds is reported,
with every round's ratio, the load average and the CPU seconds influxd used for each side.

Prints: both rates, their ratio (target >= 70 %), and the time to write the 1-hour
session vs the replay time of that hour (target < 10 %), extrapolated from the measured
``--sim-s`` replay (replay time is linear in signal length). Also: a ``--sim-s`` replay with
the sink attached (created, fed by the engine, closed when every point is acknowledged) vs
the same replay without it.

Also: the sink's own lines (steps + windows + health + summary, captured from one untimed
sink run) posted pre-built the same way, to separate what the server pays for heavier points
(a 10-s window line has ~83 fields) from what the sink itself costs.

Definitions (unchanged by the round-4 work; the bench only gained the CPU lines and the
"< 10 % needs" line at the end of its output):

* raw ceiling = 10,200 / t, where t is the wall time from the first POST to the last 204 of
  the 1-hour session's 10,200 step lines (lp.record_lines, ms precision, 31 fields and
  ~930 bytes per line, built before timing) sent to ``/write`` in bodies of 5,000 lines over
  one keep-alive connection;
* sink rate = points written (steps + 10-s windows + health [+ summary]: 11,239 on the hour)
  / wall time from creating the v1 sink (default [influx] config, fresh spool directory)
  until close() returns with every point acknowledged, the records handed over in the
  replay's call sizes (~2 per write());
* ratio of a round = sink rate / mean of the raw rates just before and after it; a run
  reports the median of ``--repeat`` rounds and every round's ratio;
* replay time of the hour = wall time of one replay of the ``--sim-s`` 2-sensor simulation
  through the engine (no sinks, after a 10-s warm-up replay) x 3600 / sim-s; the 1-hour figure
  is the sink's wall time of the median round / that replay time. Since round 5: the fastest
  of the 5 replays (engine + memory sink) timed for the "sink attached" line, and the median
  of the rounds' v1 wall times (a single replay swung by tens of percent: 0.20-0.28 s for
  300 s on a quiet machine, which moved the percentage by a third);
* since round 5 the sink runs with the default ``requests_in_flight = 2``; each round also
  times it with ``requests_in_flight = 1`` (the A/B, against its own raw runs) and posts the
  pre-built step lines over 2 connections at once (4 bodies; "raw with 2 in flight"), which
  the raw ceiling's definition (one connection) leaves out;
* CPU lines (added in round 4, because wall times swing +-30 % with the other sessions'
  load): CPU seconds of influxd (/proc) + of this process per point, per side, and their
  ratio per round -- the ratio the two would reach if they shared one core with nothing else.

Round 4 (2026-11-26, 2 CPUs shared with the lead and two other helpers). Changes: NaN/inf
left out by the compiled writer from per-shape field pieces (no per-point finiteness mask,
``compress`` and template in Python; windows on the same path); write() encodes 32 records
at a time (the replay hands over ~2 per call); a step's contact/flight/cadence inline;
spool chunks of batch_size // 5 joined into requests of up to batch_size, so the next
request is ready when the server answers; accepted spool files deleted lazily and batches
sent from memory (no file I/O in the sender between two requests, each syscall being a GIL
hand-over that waits up to 5 ms behind the encoder); target.json fsync'd only with the
first durable batch. Line protocol unchanged (tests/test_lineprotocol*.py), spool tests green.

* gaitwatch's CPU for the hour's 11,239 points, sink with a null transport, fastest of 5,
  alternated with the tree before (b31db08), 3 times: 0.164-0.171 s before, 0.137-0.141 s
  after (14.6 -> 12.3 us per point; load ~3). Per step point: encoder 9.3 -> 7.5 us (Python
  3.5 us, compiled writer 2.2 us of which Ryu 1.6 us, the rest numpy/str glue), window
  aggregation (pipeline/window_aggregates.py) ~2.5 us, spool writes ~0.8 us. In the timed
  bench runs: 0.19-0.23 s before, 0.15 s after.
* Server idle between the requests of one run, summed (the hour, real influxd, sends
  timed in the sink): 16-39 ms before (4 runs), 3-25 ms after (8 runs); first request
  11-46 ms after creating the sink (9 runs; one 77 ms with a 68-ms creation), before 24-73 ms.
* Ratio, 3 runs each of 7 rounds, the two trees alternated run by run (load 3.1-3.8 on 2
  CPUs before/after every run; ``--sim-s 300 --repeat 7``):
  before (b31db08): medians 68 %, 69 %, 68 %; all 21 rounds 37-107 %, median 68 %, 8 of 21
  >= 70 %. After (a48165b): medians 68 %, 63 %, 86 %; all 21 rounds 40-118 %, median 70 %,
  11 of 21 >= 70 %. CPU-time ratio after: medians 63 %, 62 %, 81 % (rounds 42-106 %): raw
  23-26 us per point (influxd + poster), sink 37.5-39.8 us (gaitwatch 13.3-14.0 us, influxd
  the rest). v2 through the Python test front: medians 58-69 % (lower bound).
  Later, at load 1.1-2.2: after 3 runs of 9 rounds (``--repeat 9``), medians 74 %, 87 %,
  80 % (rounds 41-178 %); the tree before, alternated once with the last of them at load
  1.5-1.8: median 79 % (56-98 %) vs 80 % (41-103 %). gaitwatch's CPU in the timed runs:
  0.18-0.23 s before, 0.14-0.15 s after; the ratio's change is below the noise.
  So the >= 70 % target is met at the median when the load average is ~2 or less, before
  and after alike, and in about half of the rounds at load ~3+: not reliably. Why: at load ~3
  on 2 CPUs wall time follows the sum of the CPU both sides need (e.g. 0.15 s gaitwatch +
  0.25 s influxd = 0.40 s wall), and the sink's points also cost influxd ~5-10 % more
  CPU per point than the raw step lines (a window line has 83 fields). Reaching 70 % with
  no spare core needs gaitwatch below ~9-10 us of CPU per point (13-14 us in these runs,
  12.3 us alone), 25-35 % less again: its Python per step (reading ~30 values and ~24
  metric names, ~3.5 us) and the window aggregation (~2.5 us) alone are ~6 us. With a
  core free for the encoder the server is the bottleneck and the sink can run at the speed
  of its own lines pre-built (presumably the rounds at 84-118 %).
* 1-hour, 2-sensor session (11,239 points): written in 10.4-21.2 % of its replay time after
  (median rounds of 6 runs; before 15.3-20.4 %, 4 runs). Replay of the hour: 2.4-4.6 s wall
  (2.4-2.9 s CPU; the quieter the machine the shorter), so < 10 % needs 11,239 points in
  0.24-0.40 s = 28,000-46,400 points/s, against a raw ceiling of 12,000-48,100 points/s
  (medians 24,000-41,000) in the same runs. influxd alone spends 0.28-0.37 s of CPU on the
  sink's 11,239 lines posted pre-built (25-33 us per point, medians of the runs): 7-14 %
  of the replay time before any client work (11.5-11.7 % in the quiet runs). Not
  reachable on this machine with influxd 1.6.7 sharing its 2 CPUs (the best median round
  touched 10.4 %, in a loaded run whose replay was slow). What it needs: influxd on cores
  of its own -- at 25-33 us of CPU per point one free core gives ~30,000-40,000 points/s,
  about the need with nothing to spare, so two cores for influxd (InfluxDB 1.x handles
  concurrent write requests in parallel; the sink would then need 2 requests in flight --
  neither measured here, where no core is free) plus one for gaitwatch's encoder (12 us per
  point = 0.14 s per hour, 3.5-5.5 % of the replay time); or a server spending well under
  20 us of CPU per point.

Round 5 (2026-11-26, 09:16-09:18 UTC, the machine otherwise quiet: load 0.6-1.2 on 2 CPUs; two
runs of ``--sim-s 300 --repeat 9``). Change: the sink sends up to ``[influx] requests_in_flight``
requests at once (default 2; f0accd6). Why: influxd 1.6 parses and stores concurrent write
requests on separate cores -- the hour's pre-built step lines over 2 connections took 0.15 s
and 0.17 s (medians of the two runs: 66,400 and 59,600 points/s; rounds 37,000-82,000)
against 0.24-0.25 s over one.

* Ratio, v1 sink (2 in flight) vs the raw ceiling (one connection, as defined above): medians
  100 % and 96 %; every one of the 18 rounds >= 72 % (72-137 %). The same sink with one
  request at a time, alternated in the same rounds: medians 86 % and 88 %, rounds 62-107 %,
  3 of 18 below 70 %. v2 through the Python test front: medians 71 % and 74 %.
* 1-hour session (11,239 points) written in 0.27 s (second run: the median of its rounds;
  the first run's median round also 0.27 s) = 13.6 % of the hour's replay time, 2.03 s (the
  fastest of 5 replays of 300 s, 0.169 s; rounds 11.3-19.2 %). Not < 10 %. Why, in CPU: influxd spends 0.29-0.31 s on these points
  and gaitwatch 0.14-0.18 s (13-14 us per point), 0.43-0.49 s on 2 cores, so even with both
  cores busy all the time the floor is 0.22-0.25 s = 11-12 % of 2.03 s; the pre-built lines
  alone over 2 connections take 0.15-0.17 s (7.4-8.4 %). < 10 % needs a core for gaitwatch
  beside influxd's two, or a server spending well under ~20 us of CPU per point (influxd
  1.6.7 spends 26-28).
* Inside a real replay (what ``gaitwatch replay --influx`` costs a user;
  ``bench/bench_influx_replay.py``: the 1-hour bench session, 2 feet, all metrics, replayed
  in-process with and without ``--influx``, alternated, medians of 5): three runs at 09:21-09:23
  UTC (load 0.6-1.4): +20.3 %, +28.4 % (1.62-1.72 s -> 1.94-2.20 s), and +19.5 % with
  ``--requests-in-flight 1``. The process's own CPU grows by as much (+0.35-0.51 s): the
  encoder on the replay's thread (~0.14 s), the sender threads (~0.06 s) and, by elimination,
  the replay itself running slower beside a busy influxd on the other core. Not < 10 % either.

Earlier rounds (same definitions): the encoder went from 33.5 to 15.7 us per point (1a38de2
vs 9f07c70), medians ~43 % -> ~70 %; 5,000-line requests (edd5037) measured no faster than
1,000-line ones (influxd's CPU per point is the same for 200- and 5,000-line requests);
runs then: medians 53-77 %, 1-hour 16.5-22.5 % of a 2.6-3 s replay.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from influx_fixtures import InfluxServer, V2CompatFront  # noqa: E402

from pipeline import lineprotocol as lp  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.records import Metric, SessionInfo, StepRecord  # noqa: E402
from pipeline.sinks.influx import sink_from_config  # noqa: E402


def simulate_and_replay(sim_s: float, tmp: Path):
    from firmware_bridge.recording import Recording
    from firmware_bridge.replay import replay
    from pipeline import simulator as sim
    from pipeline.engine import Engine
    from pipeline.run import run_session
    from pipeline.sinks.memory_sink import MemorySink

    session = SessionInfo("bench", "bench", 1_764_000_000_000_000_000)
    for duration_s in (10.0, sim_s):  # the first (10 s) only warms up imports and compiled kernels
        sim.write_recording(sim.SimParams(side="left", duration_s=duration_s, sensor_id="lf"), tmp / "lf.csv")
        sim.write_recording(sim.SimParams(side="right", duration_s=duration_s, sensor_id="rf", phase_s=0.35),
                            tmp / "rf.csv")
        recs = [Recording(tmp / "lf.csv"), Recording(tmp / "rf.csv")]
        mem = MemorySink()
        calls: list[int] = []
        orig = mem.write

        def counting(records, calls=calls, orig=orig):
            calls.append(len(records))
            orig(records)

        mem.write = counting
        c0 = time.process_time()
        t0 = time.perf_counter()
        run_session(replay(recs), Engine([r.info for r in recs]), [mem], session=session,
                    source_stats=lambda: {r.info.sensor_id: r.stats for r in recs})
        replay_s = time.perf_counter() - t0
        replay_cpu_s = time.process_time() - c0
    chunk = max(1, round(sum(calls) / max(1, len(calls))))
    return session, list(mem.records), replay_s, replay_cpu_s, chunk


def replay_once(tmp: Path, session, make_sinks) -> float:
    """Wall seconds to create the sinks and replay tmp/lf.csv + tmp/rf.csv through the engine
    into them, including their close() (the InfluxDB sink's: until every point is acknowledged)."""
    from firmware_bridge.recording import Recording
    from firmware_bridge.replay import replay
    from pipeline.engine import Engine
    from pipeline.run import run_session

    recs = [Recording(tmp / "lf.csv"), Recording(tmp / "rf.csv")]
    t0 = time.perf_counter()
    sinks = make_sinks()
    run_session(replay(recs), Engine([r.info for r in recs]), list(sinks), session=session,
                source_stats=lambda: {r.info.sensor_id: r.stats for r in recs})
    return time.perf_counter() - t0  # (run_session closes the sinks)


def hour_of(records, sim_s: float, extra_metrics: int):
    out = []
    k = 0
    while k * sim_s < 3600.0:
        for r in records:
            ic = r.step.ic_s + k * sim_s
            if ic >= 3600.0:
                continue
            step = replace(r.step, ic_s=ic, to_s=r.step.to_s + k * sim_s,
                           prev_ic_s=r.step.prev_ic_s + k * sim_s)
            metrics = r.metrics + tuple(
                Metric(f"metric_{j}", 1.0 + 0.001 * (len(out) % 997) + j, "", ic, r.sensor.sensor_id)
                for j in range(extra_metrics)
            )
            out.append(StepRecord(r.sensor, step, metrics))
        k += 1
    out.sort(key=lambda r: r.step.ic_s)
    return out


def raw_ceiling(srv: InfluxServer, db: str, lines: list[str], batch: int = 5000, connections: int = 1) -> float:
    """Seconds to POST these pre-built lines in batches of ``batch`` over one connection, or
    over ``connections`` (each sending every n-th body, one thread each) (the CPU seconds
    this process spent posting them go to ``RAW_CPU``)."""
    import base64

    auth = "Basic " + base64.b64encode(f"{srv.user}:{srv.password}".encode()).decode()
    conns = [http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=60) for _ in range(connections)]
    bodies = ["\n".join(lines[i:i + batch]).encode() for i in range(0, len(lines), batch)]

    def post(conn, mine):
        for body in mine:
            conn.request("POST", f"/write?db={db}&precision=ms", body=body, headers={"Authorization": auth})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 204, resp.status

    c0 = time.process_time()
    t0 = time.perf_counter()
    if connections == 1:
        post(conns[0], bodies)
    else:
        threads = [threading.Thread(target=post, args=(c, bodies[k::connections])) for k, c in enumerate(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    dt = time.perf_counter() - t0
    RAW_CPU.append(time.process_time() - c0)
    for c in conns:
        c.close()
    return dt


RAW_CPU: list[float] = []


def server_cpu_s(srv: InfluxServer) -> float:
    """CPU seconds influxd has used so far (user + system, from /proc)."""
    fields = Path(f"/proc/{srv.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sink_rate(section: dict, session, records, chunk: int) -> tuple[float, float, int, float]:
    """(points/s, wall s, points, CPU s of this process) from the first write() to close()."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    sink = sink_from_config(section, session=session, sensors=[])
    for i in range(0, len(records), chunk):
        sink.write(records[i:i + chunk])
    stats = sink.close(None)
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    assert sink.spool.depth_points == 0 and stats.lines_rejected == 0
    return stats.points_written / dt, dt, stats.points_written, cpu


def capture_sink_lines(srv: InfluxServer, base: dict, session, records, chunk: int, tmp: Path) -> list[str]:
    """The exact lines the v1 sink sends for these records (one untimed run, bodies kept)."""
    srv.create_database("capture")
    sec = dict(base, transport="v1", database="capture", url=srv.url, spool_dir=str(tmp / "spool-capture"))
    sink = sink_from_config(sec, session=session, sensors=[])
    bodies: list[bytes] = []
    send = sink.transport.send

    def keep(body: bytes) -> None:
        bodies.append(body)
        send(body)

    sink.transport.send = keep
    for i in range(0, len(records), chunk):
        sink.write(records[i:i + chunk])
    sink.close(None)
    return [ln for ln in b"".join(bodies).decode("utf-8").split("\n") if ln]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim-s", type=float, default=300.0, help="seconds of simulated 2-sensor signal to replay")
    ap.add_argument("--extra-metrics", type=int, default=8, help="metrics per step added to the engine's")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds (median reported)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    (tmp / "influxd").mkdir()
    srv = InfluxServer(tmp / "influxd")
    srv.start()
    front = V2CompatFront(srv)
    try:
        session, records, replay_s, replay_cpu_s, chunk = simulate_and_replay(args.sim_s, tmp)
        hour = hour_of(records, args.sim_s, args.extra_metrics)
        lines = lp.record_lines(hour, session=session, precision="ms")
        print(f"replay of {args.sim_s:.0f} s x 2 sensors through the engine: {replay_s:.2f} s wall, "
              f"{replay_cpu_s:.2f} s CPU ({len(records)} steps, ~{chunk} records per write call)")
        fields_per_line = sorted(len(ln.split(" ")[1].split(",")) for ln in lines)[len(lines) // 2]
        print(f"1-hour session: {len(hour)} step records, {len(lines)} step lines, "
              f"{fields_per_line} fields per step line (median), {sum(map(len, lines)) / len(lines):.0f} bytes")

        base = load_config().section("influx")
        base.update(username=srv.user, password=srv.password, close_timeout_s=120.0)
        load0 = os.getloadavg()[0]

        # The sink inside a real replay (what `gaitwatch replay --influx` does): the engine's
        # records go to the sink as they come; its worker sends while the engine runs.
        from pipeline.sinks.memory_sink import MemorySink

        plain, with_sink = [], []
        for i in range(5):
            plain.append(replay_once(tmp, session, lambda: [MemorySink()]))
            db = f"replay_{i}"
            srv.create_database(db)
            sec = dict(base, transport="v1", database=db, url=srv.url, spool_dir=str(tmp / f"spool-{db}"))
            with_sink.append(replay_once(tmp, session, lambda: [MemorySink(), sink_from_config(
                sec, session=session, sensors=[])]))
            assert srv.count("gait_step", "contact_ms", db=f"replay_{i}") == len(records)
        # Fastest of 5 alternated runs each: one replay is a fraction of a second, shorter than
        # the bursts of other load, so medians swing by tens of percent.
        plain_s, sink_s = min(plain), min(with_sink)
        print(f"replay of {args.sim_s:.0f} s with the InfluxDB sink (v1) attached, until every point is "
              f"acknowledged: {sink_s:.2f} s vs {plain_s:.2f} s without (fastest of 5, alternated): "
              f"{100 * (sink_s - plain_s) / plain_s:+.0f} %")
        # Rounds of raw, v1, raw, v2, raw: each sink run is compared with the mean of the raw
        # runs just before and after it (the CPUs are shared with other work, whose load
        # comes and goes within seconds); the median round is reported.
        def raw_run(tag: str) -> tuple[float, float, float]:
            db = f"raw_{tag}"
            srv.create_database(db)
            c = server_cpu_s(srv)
            t = raw_ceiling(srv, db, lines)
            return t, server_cpu_s(srv) - c, RAW_CPU[-1]

        # The sink's own lines (steps + 10-s windows + health + summary) as pre-built bodies:
        # a window line carries ~83 fields, so these points cost influxd more than step lines.
        own_lines = capture_sink_lines(srv, base, session, hour, chunk, tmp)
        own = []

        # Each sink variant is followed by a raw run; a variant is compared with the mean of
        # the raw runs just before and after it. v1 = the default config (requests_in_flight
        # = 2); v1x1 = the same with one request at a time (as before round 5), for the A/B.
        variants = (("v1", {}), ("v1x1", {"requests_in_flight": 1}), ("v2", {}))
        rounds = []
        raw2 = []
        for i in range(args.repeat):
            db = f"own_{i}"
            srv.create_database(db)
            c = server_cpu_s(srv)
            own.append((raw_ceiling(srv, db, own_lines), server_cpu_s(srv) - c))
            raws = [raw_run(f"{i}_0")]
            res = {}
            for name, over in variants:
                transport = name[:2]
                db = f"{name}_{i}"
                srv.create_database(db)
                sec = dict(base, transport=transport, database=db, bucket=db, spool_dir=str(tmp / f"spool-{db}"),
                           url=srv.url if transport == "v1" else front.url, **over)
                if transport == "v2":
                    sec.update(token=front.token, username="", password="")
                c = server_cpu_s(srv)
                res[name] = (*sink_rate(sec, session, hour, chunk), server_cpu_s(srv) - c)
                got = srv.count("gait_step", "contact_ms", db=db)
                assert got == len(hour), (got, len(hour))
                raws.append(raw_run(f"{i}_{len(raws)}"))
            ceil = {name: 2 * len(lines) / (raws[k][0] + raws[k + 1][0]) for k, (name, _) in enumerate(variants)}
            ratio = {name: res[name][0] / ceil[name] for name, _ in variants}
            rounds.append((ratio["v1"], ceil["v1"], ratio["v2"], raws, res, ratio["v1x1"]))
            db = f"raw2_{i}"
            srv.create_database(db)
            raw2.append(raw_ceiling(srv, db, lines, batch=(len(lines) + 3) // 4, connections=2))
            print(f"round {i + 1}: raw {', '.join(f'{len(lines) / t:6.0f}' for t, _, _ in raws)} points/s; "
                  f"sink v1 {res['v1'][0]:6.0f} = {100 * ratio['v1']:3.0f} % of the raw runs around it, "
                  f"one request at a time {res['v1x1'][0]:6.0f} = {100 * ratio['v1x1']:3.0f} %, "
                  f"v2 {res['v2'][0]:6.0f} = {100 * ratio['v2']:3.0f} %; raw with 2 in flight "
                  f"{len(lines) / raw2[-1]:6.0f}")
        v1_ratios = sorted(r[0] for r in rounds)
        v2_ratios = sorted(r[2] for r in rounds)
        x1_ratios = sorted(r[5] for r in rounds)
        _, ceil_v1, _, raws, res, _ = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]

        # The replay time of the hour: the fastest of the 5 plain replays above (a single
        # replay swings by tens of percent with other load; the fastest is the strictest
        # denominator for the < 10 % target), extrapolated linearly to 3600 s.
        hour_replay_s = plain_s * 3600.0 / args.sim_s
        print(f"load average (1 min) before/after the timed runs: {load0:.2f} / {os.getloadavg()[0]:.2f} "
              f"on {os.cpu_count()} CPUs; median round:")
        v1_rate, v1_s, v1_pts, v1_cpu, v1_srv = res["v1"]
        raw_srv = sum(c for _, c, _ in raws) / len(raws)
        print(f"raw ceiling  (pre-built lines, 5000/batch, /write): {ceil_v1:10.0f} points/s "
              f"(influxd CPU {raw_srv:.2f} s for {len(lines)} points)")
        print(f"gaitwatch sink v1 (encode + spool + /write)       : {v1_rate:10.0f} points/s "
              f"= {100 * v1_rate / ceil_v1:.0f} % of the ceiling (gaitwatch's own CPU: {v1_cpu:.2f} s, "
              f"influxd CPU {v1_srv:.2f} s, in {v1_s:.2f} s wall for {v1_pts} points)")
        print(f"   v1 ratio of every round, sorted: {', '.join(f'{100 * r:.0f} %' for r in v1_ratios)}")
        x1_s = sorted(r[4]["v1x1"][1] for r in rounds)
        print(f"   one request at a time (requests_in_flight = 1), every round: "
              f"{', '.join(f'{100 * r:.0f} %' for r in x1_ratios)}; 1 hour in {x1_s[len(x1_s) // 2]:.2f} s (median)")
        raw2_s = sorted(raw2)[len(raw2) // 2]
        print(f"   raw with 2 requests in flight (4 bodies of {(len(lines) + 3) // 4}, 2 connections): "
              f"{len(lines) / raw2_s:.0f} points/s (median), 1 hour in {raw2_s:.2f} s")
        own_rates = sorted(len(own_lines) / t for t, _ in own)
        own_rate = own_rates[len(own_rates) // 2]
        print(f"   the sink's own {len(own_lines)} lines pre-built, 5000/batch: {own_rate:10.0f} points/s (median; "
              f"influxd CPU {sorted(c for _, c in own)[len(own) // 2]:.2f} s): the sink's points cost the server "
              f"more than step lines (windows); sink v1 = {100 * v1_rate / own_rate:.0f} % of that")
        v2_rate = sorted(r[4]["v2"][0] for r in rounds)[len(rounds) // 2]
        print(f"gaitwatch sink v2 (influxdb-client via test front): {v2_rate:10.0f} points/s (median) "
              f"= median {100 * v2_ratios[len(v2_ratios) // 2]:.0f} % (the front is a Python proxy: lower bound)")
        v1_walls = sorted(r[4]["v1"][1] for r in rounds)
        hour_s = v1_walls[len(v1_walls) // 2]
        print(f"1-hour 2-sensor session ({v1_pts} points incl. windows/health): written in {hour_s:.2f} s (median "
              f"of the rounds) = {100 * hour_s / hour_replay_s:.1f} % of its replay time ({hour_replay_s:.2f} s: the "
              f"fastest of 5 replays of {args.sim_s:.0f} s, {plain_s:.3f} s, x {3600 / args.sim_s:.0f}) and "
              f"{100 * hour_s / 3600:.3f} % of its duration; every round: "
              f"{', '.join(f'{100 * w / hour_replay_s:.1f} %' for w in v1_walls)}")
        # The same comparison in CPU seconds (no parallelism: as if influxd and the client
        # shared one core with nothing else): less sensitive to other load than wall time.
        def per_pt(xs):
            xs = sorted(xs)
            return xs[len(xs) // 2]
        raw_cpu_pt = per_pt((c + p) / len(lines) for r in rounds for _, c, p in r[3])
        sink_cpu_pt = per_pt((r[4]["v1"][3] + r[4]["v1"][4]) / r[4]["v1"][2] for r in rounds)
        cpu_ratios = sorted(sum(c + p for _, c, p in r[3]) / len(r[3]) / len(lines)
                            / ((r[4]["v1"][3] + r[4]["v1"][4]) / r[4]["v1"][2]) for r in rounds)
        gw_pt = per_pt(r[4]["v1"][3] / r[4]["v1"][2] for r in rounds)
        print(f"CPU per point (influxd + this process), medians: raw {1e6 * raw_cpu_pt:.1f} us, sink v1 "
              f"{1e6 * sink_cpu_pt:.1f} us (of which gaitwatch {1e6 * gw_pt:.1f} us): CPU-time ratio "
              f"{', '.join(f'{100 * r:.0f} %' for r in cpu_ratios)} (rounds, sorted)")
        # What < 10 % of the replay time asks for, against what this machine gives.
        need = v1_pts / (0.1 * hour_replay_s)
        raw_rates = sorted(len(lines) / t for r in rounds for t, _, _ in r[3])
        own_srv = sorted(c for _, c in own)[len(own) // 2]
        print(f"< 10 % of the replay time needs {v1_pts} points in {0.1 * hour_replay_s:.2f} s = {need:.0f} points/s; "
              f"raw ceiling here {raw_rates[0]:.0f}-{raw_rates[-1]:.0f} points/s (median "
              f"{raw_rates[len(raw_rates) // 2]:.0f}); influxd alone spends {own_srv:.2f} s CPU on the sink's "
              f"{len(own_lines)} lines pre-built (median) = {100 * own_srv / hour_replay_s:.1f} % of the replay time; "
              f"the replay itself: {hour_replay_s * replay_cpu_s / replay_s:.2f} s CPU per hour (first replay's CPU/wall)")
    finally:
        front.close()
        srv.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
