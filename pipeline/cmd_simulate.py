"""``gaitwatch simulate``: write simulated recordings with their ground truth.

    gaitwatch simulate OUT_DIR [--name NAME] [--placement foot|shank] [--side left|right]
                       [--cadence-spm 170] [--duration-s 30] [--fs-hz 500] ... [--drift P=REL]
    gaitwatch simulate OUT_DIR --session demo|heel|forefoot [--duration-s 20] [--fs-hz 200]

Every :class:`pipeline.simulator.SimParams` field is an option (``--mount-euler-deg 10,80,-30``
for tuples). ``--session`` writes a whole session on one time base: ``demo`` (left foot,
right foot, right shank), ``heel`` (a rearfoot striker's two feet) and ``forefoot``.
Each recording is ``NAME.csv`` + ``NAME.json`` (sidecar) + ``NAME_truth.csv`` (per-step
ground truth) + ``NAME_params.json`` (the parameters, for reproducing it).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.simulator import DRIFTABLE, SimParams, write_recording

_SKIP = {"drift", "sensor_id"}


def _fields():
    return [f for f in dataclasses.fields(SimParams) if f.name not in _SKIP]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "simulate", help="write simulated recordings with ground truth",
        description="Kinematic IMU simulator (pipeline/simulator.py): recordings in the replay format "
        "plus per-step ground truth.")
    p.add_argument("out_dir", type=Path, help="directory for the files")
    p.add_argument("--name", default=None, help="file name stem (default: <placement>_<side>)")
    p.add_argument("--session", choices=sorted(SESSIONS), default=None,
                   help="write a whole multi-sensor session instead of one recording")
    defaults = SimParams()
    for f in _fields():
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        p.add_argument(flag, dest=f.name, default=None, metavar=type(value).__name__.upper()
                       if not isinstance(value, tuple) else "X,Y,Z",
                       help=f"default {value}")
    p.add_argument("--drift", action="append", default=[], metavar="PARAM=REL",
                   help=f"linear drift to the end of the run (relative; angles in degrees): {', '.join(DRIFTABLE)}")
    return p


def _parse(args) -> dict:
    defaults = SimParams()
    out = {}
    for f in _fields():
        raw = getattr(args, f.name)
        if raw is None:
            continue
        ref = getattr(defaults, f.name)
        try:
            if isinstance(ref, bool):
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                out[f.name] = raw.lower() in ("true", "1", "yes")
            elif isinstance(ref, tuple):
                vals = tuple(float(x) for x in raw.split(","))
                if len(vals) != 3:
                    raise ValueError
                out[f.name] = vals
            elif isinstance(ref, (int, float)) and not isinstance(ref, bool):
                out[f.name] = type(ref)(float(raw)) if isinstance(ref, float) else int(raw)
            elif ref is None:
                out[f.name] = float(raw)
            else:
                out[f.name] = raw
        except ValueError:
            raise ConfigError(f"--{f.name.replace('_', '-')}: cannot read {raw!r} as {type(ref).__name__}") from None
    drift = {}
    for item in args.drift:
        key, sep, val = item.partition("=")
        try:
            drift[key] = float(val)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--drift: expected PARAM=REL, got {item!r}")
    if drift:
        out["drift"] = drift
    return out


def _session(kind: str, base: dict) -> list[tuple[str, SimParams]]:
    """Sensors of one session on one time base (left foot half a stride after the right)."""
    common = dict(duration_s=22.0, stand_s=2.0, fs_hz=200.0, acc_noise_ms2=0.15, gyr_noise_dps=1.0, athlete=f"sim-{kind}")
    common.update(SESSIONS[kind])
    common.update(base)
    half = 60.0 / common.get("cadence_spm", SimParams().cadence_spm)
    out = []
    sensors = [("left_foot", "foot", "left", (5.0, -20.0, 95.0), 11),
               ("right_foot", "foot", "right", (-170.0, 10.0, -80.0), 12)]
    if kind == "demo":
        sensors.append(("right_shank", "shank", "right", (90.0, 0.0, 30.0), 13))
    for name, placement, side, mount, seed in sensors:
        p = dict(common, placement=placement, side=side, mount_euler_deg=mount, seed=seed,
                 phase_s=half if side == "left" else 0.0)
        out.append((f"{kind}_{name}", SimParams(**p)))
    return out


SESSIONS: dict[str, dict] = {
    "demo": {"variability": 1.0},
    "heel": {"strike_angle_deg": 18.0, "impact_g": 9.0, "cadence_spm": 158.0, "contact_ms": 270.0},
    "forefoot": {"strike_angle_deg": -9.0, "impact_g": 4.0, "cadence_spm": 178.0, "contact_ms": 210.0},
}


def run(args) -> int:
    params = _parse(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        if args.session:
            jobs = _session(args.session, params)
        else:
            sp = SimParams(**params)
            jobs = [(args.name or f"{sp.placement}_{sp.side}", sp)]
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"simulate: {exc}") from None
    for name, sp in jobs:
        sp = dataclasses.replace(sp, sensor_id=name)
        path = write_recording(sp, args.out_dir / f"{name}.csv")
        print(f"wrote {path} ({sp.duration_s:g} s, {sp.fs_hz:g} Hz, {sp.placement} {sp.side})", file=sys.stdout)
    return 0
