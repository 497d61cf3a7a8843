"""Pronation (foot sensor): eversion excursion and peak eversion velocity in stance.

Eversion is the foot's roll about its long axis in the level frame of its own foot-flat
(:mod:`.orientation`), signed so that eversion (the lateral edge rising, the foot rolling
inwards) is positive for both feet: the left foot's lateral side is +y, the right foot's
-y. ``pronation_excursion_deg`` is the maximum eversion between IC and TO minus the
eversion at IC; ``pronation_velocity_dps`` the maximum eversion rate between IC and the eversion maximum
(rearfoot eversion excursion and velocity as in Clarke et al. 1983 and the inertial
measure of Koldenhoven et al. 2018, J. Biomech. 80:164).
"""

from __future__ import annotations

import math

from detectors.form import Values, nan_all
from detectors.form import stance_kernels as _pk
from detectors.form.orientation import Attitude

NAMES = ("pronation_excursion_deg", "pronation_velocity_dps")


def pronation(step, att: Attitude | None, reason: str, *, side: str) -> Values:
    if att is None:
        return nan_all(NAMES, reason)
    ic, to = step.rel(step.ic_index), step.rel(step.to_index)
    # eversion series, excursion and rate in one compiled pass (detectors/_jit.py)
    excursion, rate, n_rates = _pk.eversion(att.matrices, 1.0 if side == "left" else -1.0, ic, int(math.ceil(ic)),
                                            int(math.floor(to)), 1.0 / step.fs_hz)
    return eversion_values(excursion, rate, n_rates)


def eversion_values(excursion: float, rate: float, n_rates: int) -> Values:
    """The pronation metrics from :func:`.stance_kernels.eversion`'s figures (the velocity
    while the foot everts: IC up to the eversion maximum; NaN when there is no rate)."""
    return {"pronation_excursion_deg": (excursion, ""),
            "pronation_velocity_dps": (rate, "" if n_rates else "no_eversion")}
