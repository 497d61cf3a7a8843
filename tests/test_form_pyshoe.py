"""Form metrics on real recordings nobody here made: PyShoe foot IMU with Vicon ground truth
(Wagstaff et al. 2020; ../shared/data/pyshoe_vicon/README.md), read through the real reader.

Stride length reference: the horizontal Vicon displacement of the foot between two
consecutive foot-flat (zero-velocity) intervals - the foot is still during each, so its mean
Vicon position there is where it stood. A detected step owns the interval that starts
within its contact (IC - 20 ms to TO); its ``stride_length_m`` is compared with the distance
from the previous step's interval. Issue 3 asks for a median error within 5 %.

The runs are in a ~3x3 m Vicon area with tight turns, and the gyroscope saturates near
550 deg/s in swing (README), which loses some rotation in the strapdown integration: the
errors measured here (median |error| 1.6 %, 2.5 %, 3.6 % for the three running trials,
0.9 % walking) include both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyshoe import RUNNING_TRIALS, TRIALS, WALKING_TRIALS, pyshoe_dir, pyshoe_recording, zv_intervals

from firmware_bridge.recording import Recording
from pipeline.engine import Engine
from pipeline.records import StepRecord


def _steps(trial, tmp_path, shared_data_dir):
    rec = Recording(pyshoe_recording(trial, tmp_path, shared_data_dir))
    eng = Engine([rec.info])
    out = []
    for item in rec.items():
        out += eng.update(item)
    out += eng.flush()
    return [r for r in out if isinstance(r, StepRecord)]


def stride_errors(trial, tmp_path, shared_data_dir):
    steps = _steps(trial, tmp_path, shared_data_dir)
    df = pd.read_csv(pyshoe_dir(shared_data_dir) / f"{trial}.csv", usecols=["time_s", "vicon_x_m", "vicon_y_m"])
    t, xy = df["time_s"].to_numpy(), df[["vicon_x_m", "vicon_y_m"]].to_numpy()
    zv = zv_intervals(trial, shared_data_dir)

    def stance_xy(st):
        own = [(a, b) for a, b in zv if st.ic_s - 0.02 <= a <= st.to_s]
        if len(own) != 1:
            return None
        a, b = own[0]
        return xy[(t >= a) & (t <= b)].mean(axis=0)

    errs, prev = [], None
    for r in steps:
        here = stance_xy(r.step)
        length = r.value("stride_length_m")
        consecutive = prev is not None and abs(r.step.ic_s - prev[1] - r.step.stride_s) < 1e-6
        if here is not None and consecutive and prev[0] is not None and np.isfinite(length):
            errs.append(length / np.linalg.norm(here - prev[0]) - 1.0)
        prev = (here, r.step.ic_s)
    return steps, np.array(errs)


@pytest.mark.parametrize("trial", TRIALS)
def test_stride_length_within_5_percent_median_against_vicon(trial, tmp_path, shared_data_dir):
    steps, e = stride_errors(trial, tmp_path, shared_data_dir)
    assert len(e) >= 5, f"only {len(e)} strides matched a Vicon foot-flat pair"
    assert np.median(np.abs(e)) <= 0.05, np.round(e, 3)
    assert np.percentile(np.abs(e), 90) <= 0.10, np.round(e, 3)


@pytest.mark.parametrize("trial", RUNNING_TRIALS + WALKING_TRIALS)
def test_real_foot_metrics_are_physiological(trial, tmp_path, shared_data_dir):
    """No truth for angles here: check every metric is measured on most steps and lies in the
    range reported for runners (strike angle -20..35 deg, Altman & Davis 2012; foot
    progression -10..25 deg; eversion excursion 0..25 deg; speed 0.5..7 m/s; swing height
    0.03..0.4 m; forward foot velocity at contact -0.5..2.5 m/s) - catches sign and frame
    errors that only real data shows."""
    steps = _steps(trial, tmp_path, shared_data_dir)
    ranges = {"strike_angle_deg": (-20, 35), "foot_progression_deg": (-10, 25),
              "pronation_excursion_deg": (0, 25), "speed_mps": (0.5, 7.0), "swing_height_m": (0.03, 0.4),
              "impact_g": (0.3, 15), "landing_velocity_mps": (-0.5, 2.5)}
    for name, (lo, hi) in ranges.items():
        v = np.array([r.value(name) for r in steps])
        assert np.isfinite(v).mean() >= 0.7, (name, v)
        med = np.nanmedian(v)
        assert lo <= med <= hi, (name, med)
    assert all(np.isnan(r.value("pta_g")) for r in steps)  # a foot sensor has no shank metrics


if __name__ == "__main__":  # python tests/test_form_pyshoe.py: the measured stride-length errors
    import tempfile
    from pathlib import Path

    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    with tempfile.TemporaryDirectory() as tmp:
        for trial in TRIALS:
            _, e = stride_errors(trial, Path(tmp), shared)
            print(f"{trial}: {len(e)} strides, median error {100 * np.median(e):+.1f} %, "
                  f"median |error| {100 * np.median(np.abs(e)):.1f} %, 90th pct |error| {100 * np.percentile(np.abs(e), 90):.1f} %")
