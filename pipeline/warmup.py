"""Load (or, on a machine's first run, compile) every compiled kernel before live data flows.

The kernels (``detectors/_jit.py``) are compiled by numba on their first call and cached on
disk. On a fresh install that first call takes ~15 s; in ``gaitwatch live`` it would land
on the first step of the first sensor and stall the run. :func:`warm_kernels` instead runs
the real engine over a few seconds of simulated running (a left and a right foot and a
shank, acc + gyro and acc-only, in small and large blocks so both the live and the replay
array shapes are seen) before any source is opened. With the cache in place it costs
well under a second. ``python -m pipeline.warmup`` does it ahead of time (``make install``).
"""

from __future__ import annotations

import time

from pipeline.engine import Engine
from pipeline.records import SampleBlock, SensorInfo
from pipeline.simulator import SimParams, Simulator

_DURATION_S = 6.0
_FS_HZ = 208.0  # an unusual rate: the warm-up must not pre-design a run's filters (bench fairness)


def _blocks(sid: str, fs_hz: float, acc, gyr, block_n: int):
    for i in range(0, acc.shape[0], block_n):
        yield SampleBlock(sid, fs_hz, 0.0, i, acc[i:i + block_n], None if gyr is None else gyr[i:i + block_n])


def warm_kernels() -> float:
    """Run the engine once over a short simulated session; returns the seconds it took."""
    from detectors import alignment, steps_kernels
    from firmware_bridge import recording

    t0 = time.perf_counter()
    for module in (recording, alignment, steps_kernels):  # their own argument-type warm-ups
        module.warm_up()
    sensors = [("wl", "foot", "left", True), ("wr", "foot", "right", True), ("ws", "shank", "right", True),
               ("wa", "foot", "left", False)]
    signals = {}
    for sid, placement, side, gyro in sensors:
        _, acc, gyr = Simulator(SimParams(placement=placement, side=side, fs_hz=_FS_HZ, duration_s=_DURATION_S,
                                          stand_s=1.0)).signals()
        signals[sid] = (acc, gyr if gyro else None)
    for block_n in (19, 2000):
        engine = Engine([SensorInfo(sid, placement, side) for sid, placement, side, _ in sensors])
        for sid, (acc, gyr) in signals.items():
            for block in _blocks(sid, _FS_HZ, acc, gyr, block_n):
                engine.update(block)
        engine.flush()
    return time.perf_counter() - t0


def warm_sink_kernels() -> float:
    """Load (or compile) the InfluxDB sink's kernels (line-protocol floats, window aggregates).
    Not part of :func:`warm_kernels`: ``live`` without ``--influx`` does not need them, and the
    sink loads them itself when it is created. Ahead of time here so that no run compiles them:
    on a fresh install the first ``--influx`` run compiled them for ~15 s, two cluster workers at
    once (tests/test_cluster_nats.py, seen in a fresh clone)."""
    from pipeline import lineprotocol_floats, window_aggregates

    t0 = time.perf_counter()
    lineprotocol_floats.warm_up()
    window_aggregates.warm_up()
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"gaitwatch: compiled kernels ready ({warm_kernels() + warm_sink_kernels():.1f} s)")
