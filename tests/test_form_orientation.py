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


def test_half_angle_series_is_libm_to_the_last_bit_or_so():
    """The Taylor series that replaces sin/cos for small per-sample rotations
    (detectors/form/strapdown_kernels.py) is within 2 ulp of libm over its whole range."""
    import math

    from detectors.form.strapdown_kernels import SERIES_MAX_ANGLE2, half_angle_series

    for a in np.concatenate([np.linspace(0.0, math.sqrt(SERIES_MAX_ANGLE2), 20001)[1:], [1e-13, 1e-8, 1e-4]]):
        s, c = half_angle_series((a / 2) ** 2)
        assert abs(s - math.sin(a / 2) / a) <= 2.3e-16 and abs(c - math.cos(a / 2)) <= 2.3e-16, a


def test_kernel_integration_equals_a_plain_libm_loop():
    """Sequential composition with the series equals the same loop with sin/cos (fast and
    slow samples mixed), to rounding."""
    rng = np.random.default_rng(7)
    gyr = rng.normal(0.0, 900.0, (600, 3))
    fs = 500.0
    q = integrate(gyr, fs)
    p = np.array([0.0, 0.0, 0.0, 1.0])
    for k in range(gyr.shape[0] - 1):
        rv = np.radians(0.5 * (gyr[k] + gyr[k + 1])) / fs
        ang = np.linalg.norm(rv)
        d = np.append(rv * np.sin(ang / 2) / ang, np.cos(ang / 2))
        p = qmul(p, d)
        np.testing.assert_allclose(q[k + 1], p, atol=1e-13)
