"""Impact: peak acceleration at initial contact, its loading rate, clipping and braking.

Definitions (all from the gravity-free acceleration, i.e. specific force minus gravity,
expressed in a level frame by :mod:`.orientation`, over ``window_s`` after IC):

* foot sensor, ``impact_g``: the impact peak of the foot's *vertical* deceleration at the
  sensor in g: the first peak after IC (:func:`first_peak`; a later foot-slap peak is not
  the impact). The simulator's ``impact_g`` is that of the heel/contact point; at a midfoot
  sensor the foot's rotation changes it (``sensor_impact_g`` in the simulator's truth).
* shank sensor, ``pta_g``: peak tibial acceleration along the shank's long axis
  (axial PTA, the usual tibial-shock measure: Milner et al. 2006, Med. Sci. Sports Exerc.
  38:323; van den Berghe et al. 2019) with gravity's axial component removed (so standing
  still reads 0, not 1 g), and ``pta_resultant_g``, the peak magnitude of the gravity-free
  acceleration vector.
* ``impact_rate_gps``: average loading rate of that peak, (peak - value at IC) / (time of
  peak - IC), in g/s (the average rate from onset to peak, as the average vertical loading
  rate of force plates; Milner 2006).
* ``braking_g``: peak deceleration along the direction of travel within the window,
  reported as a positive number in g. Travel is the stride's displacement for a foot (the
  foot's own axis is toed out), else the level frame's forward axis.
* ``impact_clipped``: 1 when the accelerometer's range was reached in the window
  (:func:`clipped`: the sensor-frame axes against ``SensorInfo.acc_range_g`` when known,
  else the signal's flat tops in the sensor frame). A clipped peak is never reported: the impact values are NaN with
  reason ``clipped``.

Peaks are refined by a cubic interpolant through the samples around the sampled maximum
(a 12 ms impact rise sampled at 200 Hz is otherwise underestimated by up to ~5 %). The
sample loops are compiled (:mod:`.stance_kernels`; numpy's per-call overhead dominated).
"""

from __future__ import annotations

import math

import numpy as np

from detectors.form import Values, nan_all
from detectors.form import stance_kernels as _pk
from detectors.form.orientation import Attitude, interp

FOOT_NAMES = ("impact_g", "impact_rate_gps", "braking_g", "impact_clipped")
SHANK_NAMES = ("pta_g", "pta_resultant_g", "impact_rate_gps", "braking_g", "impact_clipped")
_NO_AXIS = np.zeros(3)


def _peak(x: np.ndarray, k: int) -> tuple[float, float]:
    """Maximum near sample k refined by the cubic (Catmull-Rom) interpolant through the
    samples on both sides: (fractional index, value). An impact peak is asymmetric (fast
    rise, slower decay), so a parabola through 3 samples is biased at 200 Hz; the cubic
    follows each flank with its own slope (:func:`.stance_kernels.cubic_peak`, 21 points
    per sample interval)."""
    return _pk.cubic_peak(np.asarray(x, dtype=float), int(k))


def first_peak(x: np.ndarray, lo: int, hi: int, *, fraction: float = 0.5) -> int:
    """Index of the impact peak in ``x[lo:hi]``: the first local maximum that reaches
    ``fraction`` of the largest value there. A heel strike's foot slap (the forefoot hitting
    the ground 40-80 ms later) can exceed the impact transient at a midfoot sensor; the
    impact is the first peak (Lieberman et al. 2010)."""
    return _pk.first_peak(np.asarray(x, dtype=float), int(lo), int(hi), float(fraction))


# A saturated axis repeats its limit; a smooth peak does not (even quantised to ~1e-3 g, two
# samples astride a 6 g peak differ by ~0.05 g at 1 kHz). A single saturated sample cannot
# be told from a peak by the signal alone: give acc_range_g for those.
FLAT_TOP_SAMPLES = 2
FLAT_TOP_MIN_G = 1.5  # the smallest accelerometer ranges are 2 g


def clipped(step, acc_range_g: float | None, *, i0: int, i1: int, clip_fraction: float,
            sensor_rotation: np.ndarray | None = None) -> float:
    """1.0 if the accelerometer saturated in ``[i0, i1)``, 0.0 if not, NaN if unknowable.

    With the range known: back in the sensor frame (``sensor_rotation``: sensor -> body, from
    the alignment) any axis at ``clip_fraction * range``; without the rotation, the
    resultant (any clipped axis makes ``|f| >= range``: every clipped step is flagged, and
    some unclipped ones). Without the range, from the signal itself: in the sensor frame a
    saturated axis sits at the same extreme value for ``FLAT_TOP_SAMPLES``
    consecutive samples (a flat top), which a real peak - smooth, and quantised to ~1e-3 g -
    does not do."""
    limit = math.nan if acc_range_g is None else clip_fraction * acc_range_g * step.gravity_ms2
    if acc_range_g is not None and sensor_rotation is None:
        return 1.0 if _pk.max_norm(step.acc_ms2, i0, i1) >= limit else 0.0
    if sensor_rotation is None or i1 - i0 < FLAT_TOP_SAMPLES:
        return math.nan
    # each sensor axis against the range (exact), else the flat tops
    return 1.0 if _pk.clipped_in_sensor_frame(step.acc_ms2, np.asarray(sensor_rotation, dtype=float), i0, i1, limit,
                                              FLAT_TOP_MIN_G * step.gravity_ms2, FLAT_TOP_SAMPLES) else 0.0


def _axial_without_gyro(step, axis_body: np.ndarray, i0: int, i1: int, ic: float, clip_v) -> Values:
    """Accelerometer-only shank: axial PTA along the standing-calibrated shank axis minus 1 g.
    Without a gyroscope gravity's direction at IC is unknown, but the shank is within ~15 deg
    of vertical at contact (shank angles at IC of 0-15 deg: Lieberman et al. 2015), so its
    axial component is g cos(angle) > 0.96 g: subtracting 1 g errs by < 0.04 g (< 1 % of a
    typical 4-10 g PTA). The resultant and braking need the vertical: NaN (no_gyro)."""
    g = step.gravity_ms2
    main = step.acc_ms2 @ np.asarray(axis_body, dtype=float) - g
    k = first_peak(main, i0, i1)
    kp, peak = _peak(main, k)
    dt = (kp - ic) / step.fs_hz
    rate = (peak - interp(main, ic)) / g / dt if dt > 0 else math.nan
    return {"pta_g": (peak / g, ""), "pta_resultant_g": (math.nan, "no_gyro"),
            "impact_rate_gps": (rate, "" if math.isfinite(rate) else "no_rise"),
            "braking_g": (math.nan, "no_gyro"), "impact_clipped": clip_v}


def clip_mode(step, acc_range_g: float | None, *, i0: int, i1: int, clip_fraction: float,
              sensor_rotation: np.ndarray | None = None) -> tuple[int, np.ndarray, float, float]:
    """How :func:`clipped` decides, for a compiled caller
    (:func:`.stance_kernels.foot_stance`): ``(mode, rotation, limit_ms2, min_top_ms2)``, mode
    0 the resultant against the limit, 1 the sensor frame, 2 unknowable (NaN)."""
    limit = math.nan if acc_range_g is None else clip_fraction * acc_range_g * step.gravity_ms2
    if acc_range_g is not None and sensor_rotation is None:
        return 0, _NO_ROTATION, limit, math.nan
    if sensor_rotation is None or i1 - i0 < FLAT_TOP_SAMPLES:
        return 2, _NO_ROTATION, limit, math.nan
    return 1, np.asarray(sensor_rotation, dtype=float), limit, FLAT_TOP_MIN_G * step.gravity_ms2


_NO_ROTATION = np.eye(3)


def window(step, window_s: float) -> tuple[float, int, int]:
    """IC (fractional window index) and the impact window's rows ``[i0, i1)``."""
    ic = step.rel(step.ic_index)
    i0 = max(int(math.floor(ic)), 0)
    i1 = min(int(math.floor(ic + window_s * step.fs_hz)) + 1, step.acc_ms2.shape[0])
    return ic, i0, i1


def clip_value(clip: float) -> tuple[float, str]:
    return clip, "" if math.isfinite(clip) else "acc_range_unknown"


def peak_values(step, placement: str, axis_body, clip_v, ic: float, kp: float, peak: float, at_ic: float,
                res_peak: float, brake: float) -> Values:
    """The impact metrics from :func:`.stance_kernels.impact_peaks`' figures."""
    g = step.gravity_ms2
    out: Values = {}
    if placement == "foot":
        out["impact_g"] = (peak / g, "")
    else:
        out["pta_g"] = (peak / g, "") if axis_body is not None else (math.nan, "no_standing_calibration")
        out["pta_resultant_g"] = (res_peak / g, "")
    dt = (kp - ic) / step.fs_hz
    rate = (peak - at_ic) / g / dt if dt > 0 else math.nan
    out["impact_rate_gps"] = (rate, "" if math.isfinite(rate) else "no_rise")
    out["braking_g"] = (max(brake, 0.0) / g, "")  # deceleration along the travel direction
    out["impact_clipped"] = clip_v
    return out


def unmeasured_values(names: tuple[str, ...], clip_v, reason: str) -> Values:
    """Every impact metric NaN (``reason``: clipped, no attitude, ...) but ``impact_clipped``."""
    out = nan_all(names, reason)
    out["impact_clipped"] = clip_v
    return out


def impact(step, att: Attitude | None, reason: str, *, placement: str, acc_range_g: float | None,
           axis_body: np.ndarray | None = None, window_s: float = 0.05, clip_fraction: float = 0.98,
           sensor_rotation: np.ndarray | None = None, travel_heading_rad: float = math.nan) -> Values:
    """Impact metrics of one step (names per placement, see module doc)."""
    names = FOOT_NAMES if placement == "foot" else SHANK_NAMES
    g = step.gravity_ms2
    ic, i0, i1 = window(step, window_s)
    clip = clipped(step, acc_range_g, i0=i0, i1=i1, clip_fraction=clip_fraction, sensor_rotation=sensor_rotation)
    clip_v = clip_value(clip)
    if clip != 1.0 and att is None and placement == "shank" and axis_body is not None and step.gyr_dps is None:
        return _axial_without_gyro(step, axis_body, i0, i1, ic, clip_v)
    if clip == 1.0 or att is None:
        return unmeasured_values(names, clip_v, "clipped" if clip == 1.0 else reason)
    # level-frame gravity-free acceleration and its peaks in one compiled pass (detectors/_jit.py)
    h = travel_heading_rad if math.isfinite(travel_heading_rad) else 0.0
    mode = 0 if placement == "foot" else (2 if axis_body is None else 1)
    axis = _NO_AXIS if axis_body is None else np.asarray(axis_body, dtype=float)
    kp, peak, at_ic, res_peak, brake = _pk.impact_peaks(att.matrices, step.acc_ms2, g, i0, i1, ic, math.cos(h),
                                                        math.sin(h), axis, mode)
    return peak_values(step, placement, axis_body, clip_v, ic, kp, peak, at_ic, res_peak, brake)
