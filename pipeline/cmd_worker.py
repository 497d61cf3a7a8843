"""``gaitwatch worker``: consume gateway frames from NATS JetStream, run the engine and sinks of ``live``.

    gaitwatch worker [--nats URL ...] [--worker-id ID] [--out DIR] [--influx ...] [--config FILE]
                     [--stream NAME --subject-prefix P --kv-prefix P --lease-ttl-s S --poll-s S]

Runs until Ctrl-C / SIGTERM (its athletes are then released at once to the other workers).
Outputs per athlete in ``DIR/<session>/<athlete>/`` (steps.csv, session.json, alerts.csv).
How units are leased, ordered and taken over: :mod:`pipeline.worker`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
from pathlib import Path


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nats", action="append", default=None, metavar="URL",
                   help="NATS server URL (repeat for the cluster's nodes; default: config [cluster].urls)")
    p.add_argument("--stream", default=None, help="JetStream stream name (default: [cluster].stream)")
    p.add_argument("--subject-prefix", default=None, help="subject prefix (default: [cluster].subject_prefix)")
    p.add_argument("--kv-prefix", default=None, help="KV bucket prefix (default: [cluster].kv_prefix)")
    p.add_argument("--replicas", type=int, default=None, help="stream/KV replicas (default: [cluster].replicas)")
    p.add_argument("--lease-ttl-s", type=float, default=None, help="worker lease TTL (default: [cluster].lease_ttl_s)")
    p.add_argument("--poll-s", type=float, default=None, help="lease renewal / work poll period")
    p.add_argument("--checkpoint-s", type=float, default=None,
                   help="worker: hand records to the sinks and store the takeover point this often")
    p.add_argument("--resume-preroll-s", type=float, default=None,
                   help="worker: a taken-over athlete is re-read from this many seconds before its last output")
    p.add_argument("--config", type=Path, default=None, metavar="FILE", help="TOML config over the defaults")


def settings_from_args(args: argparse.Namespace, config):
    from pipeline.cluster import ClusterSettings

    return ClusterSettings.from_config(config, urls=args.nats, stream=args.stream, subject_prefix=args.subject_prefix,
                                       kv_prefix=args.kv_prefix, replicas=args.replicas,
                                       lease_ttl_s=args.lease_ttl_s, poll_s=args.poll_s,
                                       checkpoint_s=getattr(args, "checkpoint_s", None),
                                       resume_preroll_s=getattr(args, "resume_preroll_s", None))


def add_parser(subparsers) -> argparse.ArgumentParser:
    from pipeline.sinks import add_sink_arguments

    p = subparsers.add_parser("worker", help="run the engine on frames from a NATS JetStream cluster",
                              description="Consume sensor frames published by gateways on a NATS JetStream "
                              "cluster; each athlete is processed by exactly one worker at a time.")
    add_cluster_arguments(p)
    p.add_argument("--worker-id", default=None, help="unique worker name (default: host-pid)")
    add_sink_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.worker import Worker

    from pipeline.sinks.influx import section_from_args
    from pipeline.warmup import warm_kernels, warm_sink_kernels

    config = load_config(args.config)
    s = settings_from_args(args, config)
    # compiled kernels loaded (on a fresh install: compiled) before the first unit is claimed
    # (pipeline/warmup.py). Compiled inside a unit's run instead, two workers on 2 busy cores
    # were both still compiling 30 s in (stack dumps), their leases lapsed and units moved
    warm_kernels()
    if section_from_args(args, config) is not None:
        warm_sink_kernels()
    worker = Worker(s, out_dir=args.out, config=config, sink_args=args, worker_id=args.worker_id)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    asyncio.run(worker.run(stop))
    print(f"worker {worker.worker_id}: {len(worker.completed)} athlete sessions completed")
    return 0
