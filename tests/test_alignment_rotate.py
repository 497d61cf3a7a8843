"""The compiled sensor->body rotation equals the numpy expression it replaced, bit for bit,
for contiguous, strided and read-only blocks of any length (chunk invariance rests on it)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.alignment import _rotate


def _numpy_rotate(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.empty_like(v)
    for i in range(3):
        out[:, i] = m[i, 0] * v[:, 0] + m[i, 1] * v[:, 1] + m[i, 2] * v[:, 2]
    return out


@pytest.mark.parametrize("n", [0, 1, 19, 63, 64, 500, 20_000])
@pytest.mark.parametrize("seed", range(3))
def test_rotate_is_bit_identical_to_numpy(n, seed):
    rng = np.random.default_rng(seed)
    m = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    v = rng.normal(size=(2 * n, 3)) * 10.0 ** rng.uniform(-3, 4)
    for block in (v[:n], v[::2], v[:n].copy()):
        block.flags.writeable = False
        got = _rotate(m, block)
        assert got.shape == (block.shape[0], 3)
        assert np.array_equal(got, _numpy_rotate(m, block))
    # any split gives the same samples
    parts = np.concatenate([_rotate(m, v[a:b]) for a, b in ((0, min(7, n)), (min(7, n), n), (n, 2 * n))])
    assert np.array_equal(parts, _rotate(m, v))
