"""Step-event accuracy on simulated runs and on the PyShoe recordings: prints the table
quoted in the closing note of issue 2.

    .venv/bin/python bench/score_steps.py

Simulated: the matrix of tests/test_steps_accuracy.py (100-1000 Hz, random mountings,
noise, foot/shank, left/right, rearfoot/midfoot/forefoot/slow). Real: PyShoe foot IMU vs
Vicon foot-flat intervals (tests/test_steps_pyshoe.py criteria).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from sim_helpers import run_sim, score  # noqa: E402
from test_steps_accuracy import CASES  # noqa: E402


def main() -> int:
    print(f"{'case':38s} {'true':>5s} {'det':>5s} {'recall':>7s} {'prec':>7s} {'|IC| ms':>8s} {'|TO| ms':>8s} "
          f"{'tol ms':>7s} {'cad err':>8s}")
    tot = [0, 0, 0]
    for p in CASES:
        sim, recs = run_sim(p)
        sc = score(sim, recs)
        tot[0] += sc.n_true
        tot[1] += sc.n_detected
        tot[2] += sc.n_matched
        strides = np.array([r.step.stride_s for r in recs])
        strides = strides[np.isfinite(strides)]
        true_s = np.array([row["stride_s"] for row in sim.truth()])
        cad_err = 120 * strides.size / strides.sum() - 120 * true_s.size / true_s.sum()
        name = f"{p.placement}-{p.side}-{p.fs_hz:g}Hz-strike{p.strike_angle_deg:g}-cad{p.cadence_spm:g}"
        print(f"{name:38s} {sc.n_true:5d} {sc.n_detected:5d} {sc.recall:7.4f} {sc.precision:7.4f} "
              f"{np.median(np.abs(sc.ic_err_ms)):8.2f} {np.median(np.abs(sc.to_err_ms)):8.2f} "
              f"{1000 / p.fs_hz + 2:7.1f} {cad_err:8.3f}")
    print(f"pooled: recall {tot[2] / tot[0]:.4f} precision {tot[2] / tot[1]:.4f} ({tot[2]}/{tot[0]} true, {tot[1]} det)")

    data = ROOT.parent / "shared" / "data"
    if not data.is_dir():
        print("PyShoe: ../shared/data not found")
        return 0
    from pyshoe import RUNNING_TRIALS, WALKING_TRIALS, zv_intervals
    from test_steps_pyshoe import _detect, _reference_stances
    for trial in RUNNING_TRIALS + WALKING_TRIALS:
        steps, t, gn = _detect(trial, Path(tempfile.mkdtemp()), data)
        ic = np.array([s.step.ic_s for s in steps])
        to = np.array([s.step.to_s for s in steps])
        run = sum(s.step.activity == "running" for s in steps)
        if trial in WALKING_TRIALS:
            print(f"{trial}: {len(steps)} steps, {run} labelled running")
            continue
        ref = _reference_stances(zv_intervals(trial, data), t, gn)
        once = sum(((ic < a) & (to > b)).sum() == 1 for a, b in ref)
        print(f"{trial}: {len(ref)} reference stances, {once} bracketed exactly once; {len(steps)} steps "
              f"({run} running)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
