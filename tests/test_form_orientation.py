"""The hand-written quaternion pieces of detectors/form/orientation.py against scipy."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from detectors.form.orientation import attitude, integrate, level_matrix, qmul, quat_matrices


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 700), st.floats(50.0, 1000.0), st.integers(0, 2**32 - 1))
def test_integration_equals_a_sample_loop_of_scipy_rotations(n, fs_hz, seed):
    gyr = np.random.default_rng(seed).normal(0.0, 400.0, (n, 3))
    q = integrate(gyr, fs_hz)
    r = Rotation.identity()
    ref = [r.as_quat()]
    for k in range(n - 1):
        r = r * Rotation.from_rotvec(np.radians(0.5 * (gyr[k] + gyr[k + 1])) / fs_hz)
        ref.append(r.as_quat())
    ref = np.array(ref)
    same_sign = np.sign(np.sum(q * ref, axis=1))[:, None]
    np.testing.assert_allclose(q, ref * same_sign, atol=1e-9)
    np.testing.assert_allclose(quat_matrices(q), Rotation.from_quat(q).as_matrix(), atol=1e-12)


def test_qmul_and_level_matrix():
    a, b = Rotation.random(50, random_state=1), Rotation.random(50, random_state=2)
    np.testing.assert_allclose(np.abs(np.sum(qmul(a.as_quat(), b.as_quat()) * (a * b).as_quat(), axis=1)), 1.0,
                               atol=1e-12)
    for up in ([0.1, -0.3, 9.7], [5.0, 1.0, 0.2], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0]):
        m = level_matrix(np.array(up))
        np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(m @ (np.array(up) / np.linalg.norm(up)), [0.0, 0.0, 1.0], atol=1e-12)


def test_attitude_recovers_a_known_rotation():
    """Pitch toe-up 20 deg at a constant rate about body -y from level: the level-frame
    pitch at the end is 20 deg and the roll stays 0."""
    fs = 500.0
    n = 101
    gyr = np.zeros((n, 3))
    gyr[:, 1] = -20.0 / ((n - 1) / fs)  # toe-up is a rotation about -y (y points left)
    att = attitude(gyr, fs, anchor=0, up_body=np.array([0.0, 0.0, 9.81]))
    assert abs(att.pitch_deg()[-1] - 20.0) < 1e-9 and np.abs(att.roll_deg()).max() < 1e-9
