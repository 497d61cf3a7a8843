"""The session median of a short list of values, in plain Python.

:func:`pipeline.median.median_of_finite` takes a short run's median with numpy: ~8 numpy
calls (``asarray``, ``isfinite``, divide, ``clip``, ``rint``, ``astype``, ``sort``, ...),
~8 us per median warm and several times that right after a garbage collection, whatever
the length. A 19-s recording has ~17 values per metric and ~20 medians per sensor (the form
metrics) plus six step quantities: there, Python's own arithmetic on the list is ~3x
faster (measured crossover ~60 values; :data:`FEW` is below it). Longer lists keep numpy.

:func:`median_of_few` gives exactly ``median_of_finite``'s result - the same bins, the same
middle-element rule, the same floats (``tests/test_median_few.py`` checks it bit for bit):

* finite values only (``x - x == 0.0`` is false exactly for NaN and +-inf);
* bin ``rint(x / resolution)`` with the quotient clamped to +-2**60: Python's ``/`` on floats
  is the same IEEE division as numpy's (an overflow gives +-inf, clamped like ``np.clip``),
  and ``round`` of a float rounds half to even like ``np.rint``, exactly, to an int;
* the middle element(s) of the sorted bins, ``lo * res`` or ``0.5 * (lo + hi) * res`` with
  the same Python ints as ``median_of_finite``.
"""

from __future__ import annotations

import math

from pipeline.median import median_of_finite

FEW = 48  # at most this many values: Python; more: numpy (median_of_finite)
_MAX_BIN = float(2**60)  # pipeline.median's clamp


def median_of_few(values, resolution: float) -> tuple[int, float]:
    """``(count, median)`` exactly as :func:`pipeline.median.median_of_finite` (see module
    doc); ``values`` a sequence of real numbers."""
    if len(values) > FEW:
        return median_of_finite(values, resolution)
    res = float(resolution)
    bins = []
    append = bins.append
    for x in values:
        if type(x) is not float:
            x = float(x)  # as np.asarray(values, dtype=np.float64)
        if x - x == 0.0:  # finite
            q = x / res
            if q > _MAX_BIN:
                q = _MAX_BIN
            elif q < -_MAX_BIN:
                q = -_MAX_BIN
            append(round(q))
    n = len(bins)
    if not n:
        return 0, math.nan
    bins.sort()
    lo, hi = bins[(n - 1) // 2], bins[n // 2]
    if lo == hi:
        return n, lo * res
    return n, 0.5 * (lo + hi) * res
