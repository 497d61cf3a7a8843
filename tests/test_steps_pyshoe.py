"""Step events on real recordings nobody here made: PyShoe foot IMU with Vicon ground
truth (Wagstaff et al. 2020; ../shared/data/pyshoe_vicon/README.md), read through the real
reader (tests/pyshoe.py converts the files to our format in a tmp dir).

Reference stances are the Vicon foot-flat (zero-velocity) intervals that belong to running:
the README warns that intervals are split or missed in turns of the small Vicon area, so an
interval counts only when the IMU agrees the foot is nearly still (median |gyro| < 150 deg/s,
while the swing exceeds 400 deg/s) and
it sits in a steady running rhythm (its neighbours start 0.55-0.9 s away: the trials'
running strides are 0.72-0.80 s; the first strides out of standing and the turns are not). Foot-flat starts after IC and ends before TO, so every reference stance must
be bracketed by exactly one detected step: IC before it begins, TO after it ends.
"""

from __future__ import annotations

import numpy as np
import pytest
from pyshoe import RUNNING_TRIALS, WALKING_TRIALS, pyshoe_recording, zv_intervals

from firmware_bridge.recording import Recording
from pipeline.engine import Engine
from pipeline.records import SampleBlock, StepRecord


def _detect(trial, tmp_path, shared_data_dir):
    rec = Recording(pyshoe_recording(trial, tmp_path, shared_data_dir))
    eng = Engine([rec.info])
    out, t, gyr = [], [], []
    for item in rec.items():
        out += eng.update(item)
        if isinstance(item, SampleBlock):
            t.append(item.t_s)
            gyr.append(item.gyr_dps)
    out += eng.flush()
    out = [r for r in out if isinstance(r, StepRecord)]
    return out, np.concatenate(t), np.linalg.norm(np.concatenate(gyr), axis=1)


def _reference_stances(zv, t, gyr_norm):
    starts = zv[:, 0]
    keep = []
    for i, (a, b) in enumerate(zv):
        m = (t >= a) & (t <= b)
        still = m.any() and np.median(gyr_norm[m]) < 150.0
        gaps = [abs(starts[j] - a) for j in (i - 1, i + 1) if 0 <= j < len(starts)]
        rhythm = all(0.55 <= g <= 0.9 for g in gaps)
        if still and rhythm:
            keep.append((a, b))
    return np.array(keep)


@pytest.mark.parametrize("trial", RUNNING_TRIALS)
def test_every_running_stance_detected_once(trial, tmp_path, shared_data_dir):
    steps, t, gn = _detect(trial, tmp_path, shared_data_dir)
    ref = _reference_stances(zv_intervals(trial, shared_data_dir), t, gn)
    assert len(ref) >= 10
    ic = np.array([s.step.ic_s for s in steps])
    to = np.array([s.step.to_s for s in steps])
    running = np.array([s.step.activity == "running" for s in steps])
    owners = []
    for a, b in ref:
        hit = np.flatnonzero((ic < a) & (to > b))
        assert hit.size == 1, f"stance {a:.3f}-{b:.3f} s bracketed by {hit.size} steps"
        assert running[hit[0]], f"stance {a:.3f} s labelled {steps[hit[0]].step.activity}"
        owners.append(int(hit[0]))
    assert len(set(owners)) == len(owners)  # no step claims two stances
    # cadence over the same strides: consecutive reference stances owned by consecutive steps
    det_s, ref_s = 0.0, 0.0
    n = 0
    for k in range(1, len(ref)):
        if owners[k] == owners[k - 1] + 1 and 0.55 <= ref[k, 0] - ref[k - 1, 0] <= 1.0:
            det_s += ic[owners[k]] - ic[owners[k - 1]]
            ref_s += ref[k, 0] - ref[k - 1, 0]
            n += 1
    assert n >= 10
    assert abs(120.0 * n / det_s - 120.0 * n / ref_s) <= 1.0


@pytest.mark.parametrize("trial", WALKING_TRIALS)
def test_walking_trial_has_no_running_steps(trial, tmp_path, shared_data_dir):
    steps, _, _ = _detect(trial, tmp_path, shared_data_dir)
    assert len(steps) >= 15  # the walk is found ...
    assert [s.step.ic_s for s in steps if s.step.activity == "running"] == []  # ... as walking
