"""The simulator's signals are physically consistent with its ground truth."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pipeline.simulator import G_MS2, SimParams, Simulator, write_recording


@pytest.mark.parametrize("placement", ["foot", "shank"])
def test_to_is_the_sagittal_rate_minimum(placement):
    p = SimParams(placement=placement, fs_hz=1000, duration_s=4)
    sim = Simulator(p)
    t, _, gyr = sim.signals()
    sag = -gyr[:, 1]  # body y is left: swing-forward rotation is negative about it
    for row in sim.truth():
        k = int(round(row["to_s"] * 1000))
        lo = k - 40
        assert abs(lo + int(np.argmin(sag[lo:k + 40])) - k) <= 1


def test_impact_onset_is_at_ic_and_peak_matches():
    p = SimParams(placement="shank", fs_hz=1000, duration_s=3, impact_g=8.0)
    sim = Simulator(p)
    t, acc, _ = sim.signals()
    for row in sim.truth():
        k = int(round(row["ic_s"] * 1000))
        before = np.abs(np.diff(acc[k - 20:k - 1, 2])).max()
        after = np.abs(np.diff(acc[k:k + 10, 2])).max()
        assert after > 3 * before  # the impact starts at IC, not before
        # the pulse adds about impact_g on top of the pre-impact vertical level
        assert 6.0 * G_MS2 < acc[k:k + 40, 2].max() - acc[k - 2, 2] < 10.0 * G_MS2


def test_foot_flat_reads_gravity_and_no_rotation():
    sim = Simulator(SimParams(placement="foot", fs_hz=500, duration_s=3, pronation_deg=0.0))
    t, acc, gyr = sim.signals()
    row = sim.truth()[1]
    mid = (t > row["ic_s"] + 0.09) & (t < row["ic_s"] + 0.13)  # foot-flat part of stance
    assert np.allclose(np.linalg.norm(acc[mid], axis=1), G_MS2, atol=0.05)
    assert np.abs(gyr[mid]).max() < 0.5


def test_mounting_rotates_the_frame_only():
    a = Simulator(SimParams(duration_s=2)).signals()
    b = Simulator(SimParams(duration_s=2, mount_euler_deg=(30.0, -60.0, 100.0))).signals()
    m = Rotation.from_euler("xyz", (30.0, -60.0, 100.0), degrees=True)
    assert np.allclose(m.apply(b[1]), a[1], atol=1e-9)
    assert np.allclose(m.apply(b[2]), a[2], atol=1e-9)


def test_left_and_right_mirror_pronation_and_toe_out():
    r = Simulator(SimParams(side="right", duration_s=2)).signals()
    l = Simulator(SimParams(side="left", duration_s=2)).signals()
    assert np.allclose(r[2][:, 1], l[2][:, 1], atol=1e-6)  # sagittal motion is the same
    assert np.allclose(r[2][:, 0], -l[2][:, 0], atol=1e-6)  # roll mirrored


def test_chunks_and_noise_are_reproducible():
    p = SimParams(duration_s=3, acc_noise_ms2=0.3, gyr_noise_dps=2.0, seed=4)
    sim = Simulator(p)
    whole = sim.signals()
    parts = [sim.signals(0.0, 1.3), sim.signals(1.3, 3.0)]
    for i in range(3):
        assert np.array_equal(np.concatenate([parts[0][i], parts[1][i]]), whole[i])


def test_clipping_and_drift():
    p = SimParams(duration_s=20, acc_range_g=4.0, drift={"cadence_spm": 0.1})
    sim = Simulator(p)
    _, acc, _ = sim.signals()
    assert np.abs(acc).max() <= 4.0 * G_MS2 + 1e-9
    truth = sim.truth()
    assert truth[0]["cadence_spm"] == pytest.approx(170.0, rel=0.01)
    assert truth[-1]["cadence_spm"] == pytest.approx(187.0, rel=0.01)


def test_write_recording_with_drops(tmp_path):
    p = SimParams(duration_s=4, fs_hz=200, drop_fraction=0.02)
    path = write_recording(p, tmp_path / "x.csv")
    rows = path.read_text().splitlines()
    assert rows[0].startswith("t_s,acc_x_ms2")
    n = len(rows) - 1
    assert 0.95 * 800 < n < 800  # about 2 % of 800 samples dropped
    assert (tmp_path / "x.json").exists() and (tmp_path / "x_truth.csv").exists()


def test_invalid_parameters_are_refused():
    with pytest.raises(ValueError, match="placement"):
        SimParams(placement="hip")
    with pytest.raises(ValueError, match="contact_ms"):
        SimParams(cadence_spm=170, contact_ms=900)
    with pytest.raises(ValueError, match="drift"):
        SimParams(drift={"colour": 1.0})
