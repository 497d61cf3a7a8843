"""Device time -> host time: a drift-aware lower-envelope fit over a sliding window.

Every received frame gives one pair (device time ``d`` at which the device sent it, host
time ``h`` at which the host read it). The host sees it later by the transport delay, which
is never negative and has a hard floor (USB frame, BLE connection interval) but a long
upper tail (OS scheduling, retransmissions). So the offset ``o = h - d`` lies *above* the
line ``o = a + b·d`` of the true offset (plus the minimum delay), and the best estimate of
that line is the lower envelope of the points, not a least-squares fit through them:

    minimise  Σ (o_i - a - b·d_i)   subject to  o_i >= a + b·d_i  for all i,

whose solution is the edge of the lower convex hull of the points that spans the mean of
``d`` (S. B. Moon, P. Skelly, D. Towsley, "Estimation and removal of clock skew from
network delay measurements", IEEE INFOCOM 1999). ``b`` is the clock skew (device drift, e.g.
±100 ppm for a cheap crystal), which a fixed offset would turn into an error growing by
0.36 s per hour.

Arrival times alone are never used as sample times: they only feed this fit. To keep cost
and memory bounded, the window keeps one point per ``bin_s`` of device time (the one with
the smallest offset, which is the only one the lower envelope can use) and forgets points
older than ``window_s``. The skew is fitted only once the points span ``min_skew_span_s``
(10 s); before that the map is offset-only (``b = 0``). Over a short span the slope of the
envelope is set by the delay jitter of a few bins, not by the clock: on a link with no skew
at all (the scripted BLE backend, exact device times) a 2-s fit gave slopes near the
1000-ppm bound and 3 one-sample slips in 8 s, while a real crystal's <= 100 ppm drift
adds at most 1 ms over 10 s (half a sample at 500 Hz). The mapping has a constant bias equal to the minimum transport
delay (the same for every sensor on the same kind of link), so sensors of a session share
one host time base.
"""

from __future__ import annotations

import math
from collections import deque


class ClockMap:
    """Maps device seconds to host seconds; ``observe`` pairs, ``to_host`` converts.

    Parameters (keyword-only): ``window_s`` sliding window of device time, ``bin_s`` width
    of the per-bin minimum, ``max_skew_ppm`` bound on the fitted drift (a fit outside it is
    clamped), ``min_skew_span_s`` device time the points must span before a drift is fitted
    (offset only before; see the module docstring).
    """

    def __init__(self, *, window_s: float = 60.0, bin_s: float = 0.25, max_skew_ppm: float = 1000.0,
                 min_skew_span_s: float = 10.0):
        if not (window_s > 0 and bin_s > 0 and bin_s < window_s):
            raise ValueError(f"need 0 < bin_s < window_s, got bin_s={bin_s!r} window_s={window_s!r}")
        if not max_skew_ppm >= 0:
            raise ValueError(f"max_skew_ppm must be >= 0, got {max_skew_ppm!r}")
        self.window_s = float(window_s)
        self.bin_s = float(bin_s)
        self.max_skew_ppm = float(max_skew_ppm)
        if not min_skew_span_s >= 0:
            raise ValueError(f"min_skew_span_s must be >= 0, got {min_skew_span_s!r}")
        self.min_skew_span_s = float(min_skew_span_s)
        self.reset()

    def reset(self) -> None:
        """Forget everything (the device restarted: its clock began again)."""
        self._ref: float | None = None  # device time origin (precision)
        self._bins: deque[list[float]] = deque()  # [bin index, d - ref, o]
        self._fit: tuple[float, float] | None = None  # (a, b): o = a + b * (d - ref)
        self._d_first = self._d_last = 0.0
        self.observations = 0

    # ------------------------------------------------------------------ input
    def observe(self, *, device_s: float, host_s: float) -> None:
        """One pair: the device sent at ``device_s`` (its clock), the host read it at ``host_s``."""
        if self._ref is None:
            self._ref = device_s
        d = device_s - self._ref
        o = host_s - device_s
        k = math.floor(d / self.bin_s)
        if self.observations == 0:
            self._d_first = self._d_last = d
        self._d_first, self._d_last = min(self._d_first, d), max(self._d_last, d)
        self.observations += 1
        bins = self._bins
        if bins and bins[-1][0] == k:
            if o < bins[-1][2]:
                bins[-1][1], bins[-1][2] = d, o
                self._fit = None
            return
        if bins and k < bins[-1][0]:
            # device time went back (out-of-order frame): fold into the bin it belongs to
            for b in bins:
                if b[0] == k:
                    if o < b[2]:
                        b[1], b[2] = d, o
                        self._fit = None
                    return
            return
        bins.append([k, d, o])
        while bins and bins[0][1] < d - self.window_s:
            bins.popleft()
        self._fit = None

    # ------------------------------------------------------------------ output
    @property
    def span_s(self) -> float:
        """Device time observed since the last reset, at most the window (0 with one point)."""
        return min(self._d_last - self._d_first, self.window_s)

    @property
    def ready(self) -> bool:
        return bool(self._bins)

    @property
    def skew_ppm(self) -> float:
        """Fitted drift: host seconds gained per device second, in ppm (NaN before data)."""
        if not self._bins:
            return float("nan")
        return self._solve()[1] * 1e6

    def to_host(self, device_s: float) -> float:
        """Host time (same clock as ``host_s``) of device time ``device_s``."""
        if self._ref is None:
            raise RuntimeError("ClockMap.to_host called before any observe()")
        a, b = self._solve()
        d = device_s - self._ref
        return device_s + a + b * d

    def _solve(self) -> tuple[float, float]:
        if self._fit is None:
            max_b = self.max_skew_ppm * 1e-6 if self.span_s >= self.min_skew_span_s else 0.0
            self._fit = _lower_envelope_fit([(p[1], p[2]) for p in self._bins], max_b)
        return self._fit


def _lower_envelope_fit(pts: list[tuple[float, float]], max_b: float) -> tuple[float, float]:
    """(a, b) of the line under all points minimising the summed gap (Moon et al. 1999)."""
    if len(pts) == 1:
        return pts[0][1], 0.0
    hull: list[tuple[float, float]] = []  # lower hull, monotone chain (points sorted by d)
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) <= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    dmean = sum(p[0] for p in pts) / len(pts)
    b = 0.0
    for (x1, y1), (x2, y2) in zip(hull, hull[1:]):
        if x2 >= dmean:
            b = (y2 - y1) / (x2 - x1)
            break
    b = min(max(b, -max_b), max_b)
    a = min(y - b * x for x, y in pts)  # the line touches the lowest point for that slope
    return a, b
