"""The compiled float formatter (pipeline/lineprotocol_floats.py) writes exactly ``repr``.

Its output goes into every step and window point, so it is compared with CPython's own
``repr`` over the cases where shortest-digit algorithms differ if they are wrong: powers of
two and ten, subnormals, the largest/smallest doubles, integers, short decimals, halfway
cases, the switch to exponent notation (1e16, 1e-5), and random bit patterns.
"""

from __future__ import annotations

import math
import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.lineprotocol_floats import reprs


def check(values):
    got = reprs(values)
    want = [repr(float(v)) for v in values]
    bad = [(v, g, w) for v, g, w in zip(values, got, want) if g != w]
    assert len(got) == len(want) and not bad, bad[:10]


def test_edge_values():
    vals = [0.0, -0.0, 1.0, -1.0, 3.0, 0.1, 0.2, 0.3, 2 / 3, 4.35, 100.0, 1e15, 1e16, 1e17, 9999999999999998.0,
            1e-4, 1e-5, 1.5e-5, 0.00012345, 5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
            1.7976931348623157e308, 9007199254740993.0, 123456789012345678.0, 1e22, 1e23, 1e300, -2.5e17]
    vals += [2.0**e for e in range(-1074, 1024)] + [-(2.0**e) for e in range(-60, 60)]
    vals += [10.0**e for e in range(-323, 309)]
    vals += [k * 10.0**e for k in (1, 2, 5, 9, 25, 123, 999, 4503599627370497) for e in range(-25, 25)]
    vals += [float(i) for i in range(-2000, 2000)] + [i / 64 for i in range(-4000, 4000)]
    vals += [(2 * i + 1) / 2**53 for i in range(1000)]  # halfway-ish small fractions
    check(vals)


def test_random_bit_patterns_and_decimals():
    rng = random.Random(20261126)
    vals = []
    while len(vals) < 200_000:
        v = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isfinite(v):
            vals.append(v)
    vals += [rng.uniform(-1e5, 1e5) for _ in range(50_000)]
    vals += [round(rng.uniform(0, 1000), rng.randint(0, 8)) for _ in range(50_000)]
    vals += [float(f"{rng.randint(1, 10**rng.randint(1, 17))}e{rng.randint(-30, 30)}") for _ in range(50_000)]
    check(vals)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=50))
def test_any_finite_floats(values):
    check(values)


def test_empty_and_numpy_input():
    import numpy as np

    assert reprs([]) == []
    assert reprs(np.array([1.5, -0.0])) == ["1.5", "-0.0"]
