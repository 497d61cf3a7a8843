"""The travel-sign vote calls scipy's compiled rotation backend directly (``_BackendRotations``,
issue 9: ~50 us of the public API's dispatch per stride on short recordings) instead of the
public ``Rotation`` API (``_PublicRotations``, the code it replaced). Every value the vote uses
must be the same bits: checked on random inputs, including the hard cases of
``align_vectors`` (gravity already along +z, along -z, tiny and huge vectors), and
``_norm3`` against ``np.linalg.norm``; the travel sign and the whole estimate with either."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from detectors import alignment
from detectors.alignment import _BackendRotations, _norm3, _PublicRotations, _rotations, _Z_UP


def _backend():
    rot = _rotations()
    if not isinstance(rot, _BackendRotations):  # a scipy without the compiled backend: nothing to compare
        pytest.skip("scipy's Rotation does not use _rotation_cy here: the public API is used")
    return rot


def _gravity_like(rng, n):
    g = rng.normal(size=(n, 3)) * rng.choice([1e-3, 1.0, 9.8, 1e3], size=(n, 1))
    special = np.array([[0.0, 0.0, 9.8], [0.0, 0.0, -9.8], [1e-12, 0.0, 9.8], [0.0, -1e-9, -9.8],
                        [9.8, 0.0, 0.0], [3.0, -4.0, 0.0]])
    return np.vstack([special, g])


@pytest.mark.parametrize("seed", range(3))
def test_backend_calls_are_the_public_api_bit_for_bit(seed):
    rot, pub = _backend(), _PublicRotations()
    rng = np.random.default_rng(seed)
    for g in _gravity_like(rng, 3000):
        r = pub.align_vectors(_Z_UP, g)
        q = rot.align_vectors(_Z_UP, g)
        assert np.array_equal(q, r._quat, equal_nan=True)
        assert np.array_equal(rot.matrix(q), pub.matrix(r), equal_nan=True)
        v = rng.normal(size=3)
        v /= np.linalg.norm(v)
        assert np.array_equal(rot.apply_inverse(q, v), pub.apply_inverse(r, v), equal_nan=True)
    assert np.array_equal(_Z_UP, [[0.0, 0.0, 1.0]])  # never modified
    for n in (1, 2, 7, 80, 401):
        rv = rng.normal(size=(n, 3)) * rng.choice([1e-6, 0.01, 0.5, 4.0])
        assert np.array_equal(rot.rotvec_matrices(rv), pub.rotvec_matrices(rv))
        view = np.radians(rng.normal(size=(n, 3)) * 300.0)[:, :] * (1.0 / 200.0)
        assert np.array_equal(rot.rotvec_matrices(view), Rotation.from_rotvec(view).as_matrix())


@pytest.mark.parametrize("seed", range(3))
def test_norm3_is_np_linalg_norm(seed):
    rng = np.random.default_rng(seed)
    for v in rng.normal(size=(20000, 3)) * rng.choice([1e-200, 1e-3, 1.0, 1e150], size=(20000, 1)):
        assert _norm3(v) == np.linalg.norm(v)
    for v in (np.zeros(3), np.array([np.inf, 0.0, 1.0]), np.array([np.nan, 1.0, 2.0])):
        assert np.array_equal(_norm3(v), np.linalg.norm(v), equal_nan=True)


@pytest.mark.parametrize("placement,side,fs_hz,cadence,seed", [
    ("foot", "left", 200.0, 170.0, 0), ("foot", "right", 500.0, 180.0, 1), ("foot", "left", 100.0, 110.0, 2),
    ("shank", "right", 200.0, 170.0, 3)])
def test_travel_sign_and_estimate_same_with_the_public_api(monkeypatch, placement, side, fs_hz, cadence, seed):
    from test_alignment_estimate import _reference_travel_sign, _sim

    _backend()
    acc, gyr = _sim(placement, side, fs_hz, cadence, seed)
    wn = np.linalg.norm(gyr, axis=1)
    still = (wn < alignment.QUIET_GYR_DPS) & (np.abs(np.linalg.norm(acc, axis=1) - alignment.G_MS2) < 2.0)
    w = gyr[wn > alignment.ACTIVE_GYR_DPS]
    ml = np.linalg.eigh(w.T @ w)[1][:, -1]
    fast = [alignment._travel_sign(acc, gyr, still, m, fs_hz=fs_hz) for m in (ml, -ml)]
    est = alignment.estimate_rotation(acc, gyr, placement=placement, fs_hz=fs_hz)
    monkeypatch.setattr(alignment, "_rotations", lambda: _PublicRotations())
    assert fast == [alignment._travel_sign(acc, gyr, still, m, fs_hz=fs_hz) for m in (ml, -ml)]
    assert fast == [_reference_travel_sign(acc, gyr, still, m, fs_hz=fs_hz) for m in (ml, -ml)]
    pub = alignment.estimate_rotation(acc, gyr, placement=placement, fs_hz=fs_hz)
    assert est[1] is pub[1] and np.array_equal(est[0], pub[0])
