"""A foot step's stance metrics - impact, strike, pronation - from one compiled pass.

The same metrics as :func:`.impact.impact` (foot), :func:`.strike.strike` and
:func:`.pronation.pronation` for a step with a stance attitude, and the same floats: the
same kernels run, in one call (:func:`.stance_kernels.foot_stance`) instead of five kernel
calls through four Python functions (impact, clipped, strike, pronation). A foot step's metric chain costs ~40 us in a replay: ~16 us
of kernel compute, the rest Python (building its ~16 records, finding its stride, the
groups). This saves ~1.5 us a step warm (4 fewer kernel dispatches and their wrappers;
measured, bench/README.md "Round 6"). ``pipeline.metrics`` shares one pass between the
three groups; ``tests/test_form_foot_stance.py`` checks it bit for bit against the
functions it replaced.
"""

from __future__ import annotations

import math

from detectors.form import Values
from detectors.form import impact as _impact
from detectors.form import stance_kernels as _pk
from detectors.form.orientation import Attitude
from detectors.form.pronation import eversion_values
from detectors.form.strike import angle_values


def foot_stance(step, att: Attitude, *, want_impact: bool, acc_range_g: float | None, window_s: float,
                clip_fraction: float, sensor_rotation, travel_heading_rad: float, side: str,
                rearfoot_min_deg: float, forefoot_max_deg: float) -> tuple[Values | None, Values, Values]:
    """(impact, strike, pronation) Values of a foot step with attitude ``att``; impact is None
    unless ``want_impact`` (the impact group's own checks come first)."""
    ic, i0, i1 = _impact.window(step, window_s)
    mode, rotation, limit, min_top = _impact.clip_mode(step, acc_range_g, i0=i0, i1=i1, clip_fraction=clip_fraction,
                                                       sensor_rotation=sensor_rotation)
    h = travel_heading_rad if math.isfinite(travel_heading_rad) else 0.0
    to = step.rel(step.to_index)
    clip, kp, peak, at_ic, res_peak, brake, angle, excursion, rate, n_rates = _pk.foot_stance(
        att.matrices, step.acc_ms2, step.gravity_ms2, want_impact, i0, i1, ic, math.cos(h), math.sin(h),
        _impact._NO_AXIS, mode, rotation, limit, min_top, _impact.FLAT_TOP_SAMPLES, att.anchor,
        1.0 if side == "left" else -1.0, int(math.ceil(ic)), int(math.floor(to)), 1.0 / step.fs_hz)
    imp = None
    if want_impact:
        clip_v = _impact.clip_value(clip)
        imp = (_impact.unmeasured_values(_impact.FOOT_NAMES, clip_v, "clipped") if clip == 1.0 else
               _impact.peak_values(step, "foot", None, clip_v, ic, kp, peak, at_ic, res_peak, brake))
    return (imp, angle_values(angle, rearfoot_min_deg=rearfoot_min_deg, forefoot_max_deg=forefoot_max_deg),
            eversion_values(excursion, rate, n_rates))
