"""Foot strike angle and pattern (foot sensor).

``strike_angle_deg``: the foot's pitch at initial contact relative to its flat-stance
orientation, toe-up positive: the gyroscope is integrated from foot-flat back to IC
(:mod:`.orientation`) and the angle is the change of inclination of the foot's long axis,
as in Falbriard et al. 2020 (Front. Sports Act. Living 2:558019; 2.0 +/- 5.9 deg against
motion capture on 26 runners) and Shiang et al. 2016.

``strike_pattern_code``: +1 rearfoot, 0 midfoot, -1 forefoot from the strike angle with
the thresholds of Altman & Davis 2012 (Gait Posture 35:298: sagittal foot angle at IC
> 8 deg rearfoot, < -1.6 deg forefoot), configurable.
"""

from __future__ import annotations

import math

from detectors.form import Values, nan_all
from detectors.form.orientation import Attitude

NAMES = ("strike_angle_deg", "strike_pattern_code")


def pattern_code(angle_deg: float, *, rearfoot_min_deg: float, forefoot_max_deg: float) -> float:
    """+1 rearfoot (angle > rearfoot_min_deg), -1 forefoot (< forefoot_max_deg), else 0."""
    if not math.isfinite(angle_deg):
        return math.nan
    if angle_deg > rearfoot_min_deg:
        return 1.0
    if angle_deg < forefoot_max_deg:
        return -1.0
    return 0.0


def strike(step, att: Attitude | None, reason: str, *, rearfoot_min_deg: float = 8.0,
           forefoot_max_deg: float = -1.6) -> Values:
    if att is None:
        return nan_all(NAMES, reason)
    angle = att.pitch_at_deg(step.rel(step.ic_index)) - att.pitch_at_deg(att.anchor)
    return angle_values(angle, rearfoot_min_deg=rearfoot_min_deg, forefoot_max_deg=forefoot_max_deg)


def angle_values(angle: float, *, rearfoot_min_deg: float, forefoot_max_deg: float) -> Values:
    """The strike metrics of a measured strike angle (deg)."""
    return {"strike_angle_deg": (angle, ""),
            "strike_pattern_code": (pattern_code(angle, rearfoot_min_deg=rearfoot_min_deg,
                                                 forefoot_max_deg=forefoot_max_deg), "")}
