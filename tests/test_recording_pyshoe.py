"""Real recordings nobody here made: PyShoe Vicon trials (Wagstaff et al. 2020; see
../shared/data/pyshoe_vicon/README.md), converted by tests/pyshoe.py into our format and
read by the real reader and the real CLI. (Step accuracy on them is tested with the detector.)"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pyshoe import RUNNING_TRIALS, TRIALS, pyshoe_dir, pyshoe_recording

from firmware_bridge.recording import Recording
from pipeline.records import SampleBlock


@pytest.mark.parametrize("trial", TRIALS)
def test_pyshoe_trial_reads_as_one_200hz_segment(trial, tmp_path, shared_data_dir):
    raw = pd.read_csv(pyshoe_dir(shared_data_dir) / f"{trial}.csv")
    rec = Recording(pyshoe_recording(trial, tmp_path, shared_data_dir))
    assert (rec.info.placement, rec.info.side, rec.has_gyro) == ("foot", "right", True)
    assert rec.columns.gyr_unit == "rads"
    blocks = [b for b in rec.items() if isinstance(b, SampleBlock)]
    st = rec.stats
    assert st.complete and st.rows == len(raw) and st.gaps == 0 and st.segments == 1
    assert rec.fs_hz == pytest.approx(200.0, abs=0.5)
    summary = pd.read_csv(pyshoe_dir(shared_data_dir) / "summary.csv").set_index("file")
    if trial in summary.index:
        assert st.effective_fs_hz == pytest.approx(summary.loc[trial, "fs_hz"], abs=0.15)
    assert st.duration_s == pytest.approx(raw["time_s"].iloc[-1] - raw["time_s"].iloc[0])
    # samples are the raw rows linearly interpolated onto the grid, gyro converted to deg/s
    t = np.concatenate([b.t_s for b in blocks])
    gyr = np.concatenate([b.gyr_dps for b in blocks])
    acc = np.concatenate([b.acc_ms2 for b in blocks])
    assert len(t) == st.samples and np.allclose(np.diff(t), 1 / rec.fs_hz)
    ts = raw["time_s"].to_numpy()
    np.testing.assert_allclose(gyr[:, 0], np.degrees(np.interp(t, ts, raw["gx"].to_numpy())), atol=1e-3)
    np.testing.assert_allclose(acc[:, 2], np.interp(t, ts, raw["az"].to_numpy()), atol=1e-5)
    assert np.abs(gyr).max() > 500  # running/walking swing: hundreds of deg/s (rad/s were converted)


def test_adapter_sidecar_and_columns(tmp_path, shared_data_dir):
    p = pyshoe_recording(RUNNING_TRIALS[0], tmp_path, shared_data_dir)
    assert p.read_text().splitlines()[0] == "t_s,acc_x_ms2,acc_y_ms2,acc_z_ms2,gyr_x_rads,gyr_y_rads,gyr_z_rads"
    sc = json.loads(p.with_suffix(".json").read_text())
    assert (sc["placement"], sc["side"]) == ("foot", "right")


def test_replay_cli_runs_on_a_pyshoe_trial(tmp_path, shared_data_dir, run_cli):
    p = pyshoe_recording(RUNNING_TRIALS[0], tmp_path / "in", shared_data_dir)
    proc = run_cli("replay", p, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    d = json.loads((tmp_path / "out" / "session.json").read_text())
    assert d["status"] == "complete" and d["sensors"][0]["rows"] == 3767
    assert d["sensors"][0]["steps"] > 0
