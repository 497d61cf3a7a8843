"""Session medians in bounded memory: a fixed-resolution histogram per quantity.

The session summary reports the median of every per-step quantity over a whole run
(``session.json``, the console table). Keeping every value for an exact median makes memory
grow with the length of the recording (one float per step and quantity: ~30 MB for a 3-hour
two-foot run). :class:`BinnedMedian` keeps counts per bin of width ``resolution`` instead:

* every finite value ``x`` is counted in bin ``k = round(x / resolution)`` (bins centred on
  multiples of the resolution);
* the median is taken over the bin centres ``k * resolution`` with the usual rule (middle
  element, or the mean of the two middle elements for an even count).

Rounding is monotone, so the middle elements of the rounded values are the rounded middle
elements: the result differs from the exact median of the values by at most
``resolution / 2`` (for values with ``|x| < 2**52 * resolution``). It does not depend on the
order of the values, so it is chunk-invariant and deterministic.

Memory is bounded by the *spread* of the quantity, never by the number of steps: counts
live in pages of :data:`PAGE_BINS` bins (numpy ``int64``), created only where values fall
(a contact time spread over 100 ms at 0.01 ms is 10,000 bins = 10 pages = 80 KB; a wild
outlier costs one page). New values wait in a list of at most :data:`FOLD_EVERY` floats
and are folded into the pages with one numpy pass, so adding a value is a list append.

:data:`RESOLUTION` gives the bin width per unit, ~100x finer than what the figures are
read at (the console prints cadence to 0.1 spm and times to 1 ms; the accuracy targets are
0.5 spm and ~1-2 ms; angles are measured to ~1 deg, impacts to ~0.1 g).
"""

from __future__ import annotations

import math

import numpy as np

PAGE_BINS = 1024
FOLD_EVERY = 256
_MAX_BIN = float(2**60)
_SPAN_PAGES = 8  # values spanning fewer pages are counted with one bincount (the common case)  # clamp: absurd values land in the extreme bins instead of overflowing int64

# bin width (the stated resolution of a session median) per unit
RESOLUTION: dict[str, float] = {
    "ms": 0.01, "spm": 0.01,  # contact/flight time, cadence
    "deg": 0.01, "deg/s": 0.1, "g": 0.001, "g/s": 0.1, "m": 0.001, "m/s": 0.001, "%": 0.01,
    "code": 1.0, "bool": 1.0,  # integers: exact
}
DEFAULT_RESOLUTION = 0.001  # a unit not in the table


def resolution_of(unit: str) -> float:
    return RESOLUTION.get(unit, DEFAULT_RESOLUTION)


class BinnedMedian:
    """Median of a stream of floats to within ``resolution / 2``, in bounded memory.

    ``add(x)`` ignores NaN and infinities (``count`` is the number of finite values);
    ``median()`` is NaN when there is none.
    """

    __slots__ = ("resolution", "_pending", "_pages", "_folded")

    def __init__(self, resolution: float):
        if not (math.isfinite(resolution) and resolution > 0):
            raise ValueError(f"resolution must be a positive number, got {resolution!r}")
        self.resolution = float(resolution)
        self._pending: list[float] = []
        self._pages: dict[int, np.ndarray] = {}  # page number -> counts of its PAGE_BINS bins
        self._folded = 0

    def add(self, x: float) -> None:
        if x - x == 0.0:  # finite (NaN and +-inf give NaN)
            self._pending.append(x)
            if len(self._pending) >= FOLD_EVERY:
                self._fold()

    def extend(self, values) -> None:
        """Add many values at once (non-finite ones ignored): one numpy pass."""
        a = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(a)
        self._fold_array(a if finite.all() else a[finite])

    @property
    def count(self) -> int:
        return self._folded + len(self._pending)

    def _fold(self) -> None:
        if self._pending:
            self._fold_array(np.asarray(self._pending, dtype=np.float64))
            self._pending = []

    def _fold_array(self, a: np.ndarray) -> None:
        if not a.size:
            return
        with np.errstate(over="ignore"):  # |x| > 1.8e308 * resolution becomes inf: clamped just below
            x = a / self.resolution
        lo, hi = x.min(), x.max()
        if not -_MAX_BIN <= lo <= hi <= _MAX_BIN:
            x = np.clip(x, -_MAX_BIN, _MAX_BIN)
            lo, hi = min(max(lo, -_MAX_BIN), _MAX_BIN), min(max(hi, -_MAX_BIN), _MAX_BIN)
        k = np.rint(x).astype(np.int64)
        # rounding is monotone: the extreme bins are those of the extreme values
        first, last = int(np.rint(lo)) // PAGE_BINS, int(np.rint(hi)) // PAGE_BINS
        if last - first < _SPAN_PAGES:  # the usual case: one bincount over the few pages spanned
            counts = np.bincount(k - first * PAGE_BINS, minlength=(last - first + 1) * PAGE_BINS)
            for i, c in enumerate(counts.reshape(-1, PAGE_BINS)):
                have = self._pages.get(first + i)
                if have is not None:
                    have += c
                elif c.any():  # pages only where values fall
                    self._pages[first + i] = c.copy()
        else:  # spread out (outliers): per page
            page = k // PAGE_BINS
            for p in np.unique(page).tolist():
                sel = k[page == p] - p * PAGE_BINS
                counts = self._pages.get(p)
                if counts is None:
                    counts = self._pages[p] = np.zeros(PAGE_BINS, dtype=np.int64)
                counts += np.bincount(sel, minlength=PAGE_BINS)
        self._folded += a.size

    def _bin_at(self, rank: int) -> int:
        """Bin number of the value of 0-based rank ``rank`` in sorted order."""
        seen = 0
        for p in sorted(self._pages):
            counts = self._pages[p]
            total = int(counts.sum())
            if rank < seen + total:
                i = int(np.searchsorted(np.cumsum(counts), rank - seen, side="right"))
                return p * PAGE_BINS + i
            seen += total
        raise IndexError(rank)

    def median(self) -> float:
        self._fold()
        n = self._folded
        if n == 0:
            return math.nan
        lo, hi = self._bin_at((n - 1) // 2), self._bin_at(n // 2)
        if lo == hi:
            return lo * self.resolution
        return 0.5 * (lo + hi) * self.resolution

    def nbytes(self) -> int:
        """Memory held by the counts (for tests and the docs)."""
        return sum(c.nbytes for c in self._pages.values()) + 8 * len(self._pending)


FEW = 128  # median_of_finite: at most this many values in plain Python, more with numpy


def median_of_finite(values, resolution: float) -> tuple[int, float]:
    """``(count, median)`` of a :class:`BinnedMedian` of ``resolution`` that got exactly
    ``values`` (non-finite ones ignored) - the same bins (``rint(x / resolution)``, clamped to
    +-2**60), the same middle-element rule, the same floats - from the values' sorted bins
    directly instead of folding them into 1024-bin pages and scanning those. For a short run
    (a few dozen values per median, ~20 medians per sensor) the pages are most of the cost.
    ``tests/test_median_short.py`` checks it against BinnedMedian.

    Up to :data:`FEW` values it runs in plain Python (:func:`_median_of_few`): numpy's ~8
    calls cost ~8 us per median warm, several times that right after a garbage collection,
    whatever the length; sorting 17 values in Python and binning the middle one or two is
    ~1.5 us (measured crossover ~200 values). ``tests/test_median_few.py`` checks the two
    paths bit for bit against each other."""
    if len(values) <= FEW:
        return _median_of_few(values, resolution)
    return _median_of_many(values, resolution)


def _bin(x: float, res: float) -> int:
    q = x / res  # Python's float division is IEEE's, as numpy's; overflow gives +-inf, clamped
    if q > _MAX_BIN:
        q = _MAX_BIN
    elif q < -_MAX_BIN:
        q = -_MAX_BIN
    return round(q)  # half to even, like np.rint, exactly, to an int


def _median_of_few(values, resolution: float) -> tuple[int, float]:
    """:func:`median_of_finite` in plain Python. The bin is a monotone (non-decreasing)
    function of the value (IEEE division by a positive number, the clamp and round-half-even
    all preserve order), so the middle bins of the sorted bins are the bins of the middle
    values: the finite values are sorted and only those one or two are binned."""
    res = float(resolution)
    finite = [x for x in map(float, values) if x - x == 0.0]  # float(): as np.asarray(values, dtype=np.float64)
    n = len(finite)
    if not n:
        return 0, math.nan
    finite.sort()
    lo, hi = _bin(finite[(n - 1) // 2], res), _bin(finite[n // 2], res)
    if lo == hi:
        return n, lo * res
    return n, 0.5 * (lo + hi) * res


def _median_of_many(values, resolution: float) -> tuple[int, float]:
    """:func:`median_of_finite` with numpy (any length)."""
    a = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        a = a[finite]
    if not a.size:
        return 0, math.nan
    with np.errstate(over="ignore"):
        x = a / float(resolution)
    k = np.sort(np.rint(np.clip(x, -_MAX_BIN, _MAX_BIN)).astype(np.int64))
    lo, hi = int(k[(k.size - 1) // 2]), int(k[k.size // 2])
    res = float(resolution)
    if lo == hi:
        return int(a.size), lo * res
    return int(a.size), 0.5 * (lo + hi) * res
