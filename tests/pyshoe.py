"""Adapter: PyShoe Vicon trials (../shared/data/pyshoe_vicon) -> gaitwatch recording format.

The PyShoe files (Wagstaff, Peretroukhin & Kelly, "Robust Data-Driven Zero-Velocity
Detection for Foot-Mounted Inertial Navigation", IEEE Sensors J. 2020; see the folder's
README.md) have columns ``time_s, ax, ay, az`` (m/s², gravity included) and ``gx, gy, gz``
(rad/s) from one IMU on top of the right shoe, ~200 Hz with slightly irregular timestamps.
They are NOT in our format; this module writes an equivalent recording

    t_s, acc_x_ms2, acc_y_ms2, acc_z_ms2, gyr_x_rads, gyr_y_rads, gyr_z_rads

plus the sidecar {sensor_id, placement: foot, side: right} into a directory of the
caller's choice (a tmp dir: the data must not be copied into the repository). Values are
copied unchanged (the sensor axes stay as recorded: the pipeline finds the orientation).

Use from a test::

    from pyshoe import pyshoe_recording, zv_intervals, TRIALS
    csv = pyshoe_recording("2017-11-27-11-13-41_running", tmp_path, shared_data_dir)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

RUNNING_TRIALS = (
    "2017-11-27-11-13-41_running",
    "2017-11-27-11-24-07_running",
    "2017-12-15-18-03-05_running",
)
WALKING_TRIALS = ("2017-11-22-11-22-03_walking",)
TRIALS = RUNNING_TRIALS + WALKING_TRIALS

_SRC = ["time_s", "ax", "ay", "az", "gx", "gy", "gz"]
_DST = ["t_s", "acc_x_ms2", "acc_y_ms2", "acc_z_ms2", "gyr_x_rads", "gyr_y_rads", "gyr_z_rads"]


def pyshoe_dir(shared_data_dir: Path) -> Path:
    return Path(shared_data_dir) / "pyshoe_vicon"


def pyshoe_recording(trial: str, out_dir: Path, shared_data_dir: Path, *, sensor_id: str | None = None) -> Path:
    """Write ``out_dir/<trial>.csv`` + ``.json`` in the recording format; return the CSV path."""
    if trial not in TRIALS:
        raise ValueError(f"unknown PyShoe trial {trial!r}; known: {TRIALS}")
    src = pyshoe_dir(shared_data_dir) / f"{trial}.csv"
    df = pd.read_csv(src, usecols=_SRC, engine="c")[_SRC]
    df.columns = _DST
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{trial}.csv"
    # The source has 5 decimals; %.6f loses nothing and keeps the file small.
    df.to_csv(csv_path, index=False, float_format="%.6f", lineterminator="\n")
    sidecar = {"sensor_id": sensor_id or "pyshoe_right_foot", "placement": "foot", "side": "right",
               "athlete": "pyshoe"}
    csv_path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    return csv_path


def zv_intervals(trial: str, shared_data_dir: Path) -> np.ndarray:
    """Vicon zero-velocity (foot-flat) intervals of a trial: array (n, 2) of [start_s, end_s]."""
    df = pd.read_csv(pyshoe_dir(shared_data_dir) / f"{trial}_zv_intervals.csv")
    return df[["zv_start_s", "zv_end_s"]].to_numpy(dtype=float)


def reference_cadence_spm(trial: str, shared_data_dir: Path) -> float:
    """Step cadence from the trial's summary.csv (2 x the median stride rate of the right foot)."""
    s = pd.read_csv(pyshoe_dir(shared_data_dir) / "summary.csv").set_index("file")
    return float(s.loc[trial, "cadence_spm_from_zv"])
