"""``gaitwatch cluster status``: gateways, workers, athletes per worker and consumer lag.

    gaitwatch cluster status [--nats URL ...] [--config FILE] [--json]

Reads the KV buckets of :mod:`pipeline.cluster` (units, leases, worker heartbeats) and the
stream: for each unit its gateway, sensors, the worker holding its lease and how many of
its messages the worker has not consumed yet (lag, in messages).
"""

from __future__ import annotations

import argparse
import asyncio
import json

from pipeline.cmd_worker import add_cluster_arguments, settings_from_args


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("cluster", help="show the NATS JetStream cluster's gateways, workers and lag")
    p.add_argument("action", choices=("status",))
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_cluster_arguments(p)
    return p


async def collect(s) -> dict:
    import nats
    from nats.js.errors import NoKeysError

    from pipeline.cluster import ensure_layout, loads

    nc = await nats.connect(**{**s.connect_kw(), "max_reconnect_attempts": 2})
    try:
        js = nc.jetstream(timeout=5)
        kv = await ensure_layout(js, s)

        async def entries(bucket):
            for attempt in range(3):  # keys() can wait forever when an entry expires (TTL) while it is listed
                try:
                    keys = await asyncio.wait_for(kv[bucket].keys(), timeout=5.0)
                    break
                except NoKeysError:
                    return {}
                except asyncio.TimeoutError:
                    if attempt == 2:
                        raise

            out = {}
            for k in keys:
                try:
                    out[k] = loads((await kv[bucket].get(k)).value)
                except Exception:
                    pass
            return out

        units, leases, workers = await entries("units"), await entries("leases"), await entries("workers")
        info = await js.stream_info(s.stream)
        rows = []
        for u, spec in sorted(units.items()):
            holder = (leases.get(u) or {}).get("worker", "")
            consumed = ((workers.get(holder) or {}).get("units") or {}).get(u, {}).get("msgs", 0)
            try:
                total = (await js.stream_info(s.stream, subjects_filter=s.subject(u))).state.subjects or {}
                n_msgs = sum(total.values())
            except Exception:
                n_msgs = None
            rows.append({"unit": u, "gateway": spec.get("gateway", ""), "athlete": spec.get("athlete", ""),
                         "sensors": [x["sensor_id"] for x in spec.get("sensors", [])], "worker": holder,
                         "done": bool(spec.get("done")), "messages": n_msgs,
                         "lag": None if n_msgs is None or spec.get("done") else max(0, n_msgs - consumed)})
        return {"stream": {"name": s.stream, "messages": info.state.messages, "bytes": info.state.bytes,
                           "replicas": info.config.num_replicas,
                           "cluster": getattr(info.cluster, "leader", None) if info.cluster else None},
                "workers": {w: {"units": sorted((v.get("units") or {})), "completed": v.get("completed", 0)}
                            for w, v in workers.items()},
                "gateways": sorted({r["gateway"] for r in rows}),
                "units": rows}
    finally:
        await nc.close()


def format_status(st: dict) -> str:
    s = st["stream"]
    lines = [f"stream {s['name']}: {s['messages']} messages, {s['bytes']} bytes, {s['replicas']} replicas, "
             f"leader {s['cluster']}", f"gateways: {', '.join(st['gateways']) or '-'}", "workers:"]
    for w, v in sorted(st["workers"].items()):
        lines.append(f"  {w}: {len(v['units'])} athletes {v['units']} ({v['completed']} completed)")
    lines.append("athletes: unit gateway sensors worker messages lag")
    for r in st["units"]:
        lines.append(f"  {r['unit']} {r['gateway']} {','.join(r['sensors'])} {r['worker'] or ('done' if r['done'] else '-')} "
                     f"{r['messages']} {'-' if r['lag'] is None else r['lag']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config

    s = settings_from_args(args, load_config(args.config))
    st = asyncio.run(collect(s))
    print(json.dumps(st, indent=2) if args.json else format_status(st))
    return 0
