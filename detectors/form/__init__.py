"""Form detectors: per-step running-form metrics (issue 3).

Each module holds one concept and exposes pure functions of a :class:`pipeline.records.Step`
(body-frame windows, x forward, y left, z up) plus the sensor's :class:`SensorInfo`:

* :mod:`.orientation` - drift-controlled stance orientation (gyro integrated over one step
  window only, levelled by gravity at foot-flat; reset every stance),
* :mod:`.impact` - impact peak, loading rate, clipping, braking,
* :mod:`.strike` - foot strike angle and pattern,
* :mod:`.overstride` - shank angle at initial contact,
* :mod:`.pronation` - eversion excursion and velocity,
* :mod:`.stride_length` - zero-velocity-aided stride length, speed, foot progression and
  swing height (needs the samples between two steps: a small streaming buffer),
* :mod:`.foot_stance` - a foot step's impact, strike and pronation from one compiled pass
  (what the three modules above compute, shared by their metric groups),
* :mod:`.asymmetry` - left/right symmetry indices over a rolling window (streaming),
* :mod:`.strapdown_kernels`, :mod:`.stance_kernels` - the per-sample loops behind them,
  compiled with numba (a step's few hundred samples are too few for numpy's per-call
  overhead; :mod:`detectors._jit`).

Every function returns ``{metric_name: (value, reason)}``: ``value`` is NaN exactly when
``reason`` (a short snake_case word) says why the metric cannot be measured on this step.
``pipeline.metrics`` turns them into :class:`pipeline.records.Metric` records.
"""

from __future__ import annotations

import math

NAN = math.nan

Values = dict[str, tuple[float, str]]


def nan_all(names: tuple[str, ...], reason: str) -> Values:
    """Every metric of ``names`` NaN for the same ``reason``."""
    return {n: (NAN, reason) for n in names}
