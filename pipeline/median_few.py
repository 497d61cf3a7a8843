"""The session median of a short list of values, in plain Python.

:func:`pipeline.median.median_of_finite` takes a short run's median with numpy: ~8 numpy
calls (``asarray``, ``isfinite``, divide, ``clip``, ``rint``, ``astype``, ``sort``, ...),
~8 us per median warm and several times that right after a garbage collection, whatever
the length. A 19-s recording has ~17 values per metric and ~20 medians per sensor (the form
metrics) plus six step quantities: there, sorting the list in Python and binning its one or
two middle values is ~5x faster (17 values: ~1.5 vs ~8 us warm; measured crossover ~200
values, :data:`FEW` is below it). Longer lists keep numpy.

:func:`median_of_few` gives exactly ``median_of_finite``'s result - the same bins, the same
middle-element rule, the same floats (``tests/test_median_few.py`` checks it bit for bit):

* finite values only (``x - x == 0.0`` is false exactly for NaN and +-inf);
* bin ``rint(x / resolution)`` with the quotient clamped to +-2**60: Python's ``/`` on floats
  is the same IEEE division as numpy's (an overflow gives +-inf, clamped like ``np.clip``),
  and ``round`` of a float rounds half to even like ``np.rint``, exactly, to an int;
* the middle element(s) of the sorted bins, ``lo * res`` or ``0.5 * (lo + hi) * res`` with
  the same Python ints as ``median_of_finite``. The bin is a monotone function of the value
  (IEEE division by a positive number, the clamp and round-half-even all preserve order), so
  the middle bins are the bins of the middle values: the finite values are sorted and only
  those two are binned.
"""

from __future__ import annotations

import math

from pipeline.median import median_of_finite

FEW = 128  # at most this many values: Python; more: numpy (median_of_finite)
_MAX_BIN = float(2**60)  # pipeline.median's clamp


def _bin(x: float, res: float) -> int:
    q = x / res
    if q > _MAX_BIN:
        q = _MAX_BIN
    elif q < -_MAX_BIN:
        q = -_MAX_BIN
    return round(q)


def median_of_few(values, resolution: float) -> tuple[int, float]:
    """``(count, median)`` exactly as :func:`pipeline.median.median_of_finite` (see module
    doc); ``values`` a sequence of real numbers."""
    if len(values) > FEW:
        return median_of_finite(values, resolution)
    res = float(resolution)
    finite = [x for x in map(float, values) if x - x == 0.0]  # float(): as np.asarray(values, dtype=np.float64)
    n = len(finite)
    if not n:
        return 0, math.nan
    # the bin is a monotone (non-decreasing) function of the value, so the middle bins of
    # the sorted bins are the bins of the middle values: only those two are computed
    finite.sort()
    lo, hi = _bin(finite[(n - 1) // 2], res), _bin(finite[n // 2], res)
    if lo == hi:
        return n, lo * res
    return n, 0.5 * (lo + hi) * res
