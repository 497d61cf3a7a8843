"""Run simulated recordings through the real engine (in memory) and score them."""

from __future__ import annotations

import numpy as np

from pipeline.engine import Engine
from pipeline.records import SampleBlock, SensorInfo, StepRecord
from pipeline.scoring import EventScore, match_events
from pipeline.simulator import SimParams, Simulator


def blocks(t, acc, gyr, fs_hz, sizes):
    """Split arrays into SampleBlocks of the given sizes (cycled)."""
    i, k = 0, 0
    while i < t.size:
        n = int(sizes[k % len(sizes)])
        k += 1
        yield SampleBlock("s", fs_hz, 0.0, i, acc[i:i + n], None if gyr is None else gyr[i:i + n])
        i += n


def run_sim(p: SimParams, *, block_sizes=(None,), engine: Engine | None = None):
    sim = Simulator(p)
    t, acc, gyr = sim.signals()
    if not p.with_gyro:
        gyr = None
    eng = engine or Engine([SensorInfo("s", p.placement, p.side)])
    sizes = [int(p.fs_hz) if b is None else b for b in block_sizes]
    recs: list[StepRecord] = []
    for b in blocks(t, acc, gyr, p.fs_hz, sizes):
        recs += eng.update(b)
    recs += eng.flush()
    return sim, [r for r in recs if isinstance(r, StepRecord)]  # alerts are tested elsewhere


def score(sim: Simulator, recs) -> EventScore:
    tr = sim.truth()
    return match_events([r["ic_s"] for r in tr], [r["to_s"] for r in tr],
                        [r.step.ic_s for r in recs], [r.step.to_s for r in recs])


def step_tuples(recs):
    return [(r.step.ic_s, r.step.to_s, r.step.prev_ic_s, r.step.activity, r.step.segment) for r in recs]
