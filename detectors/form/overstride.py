"""Overstriding (shank sensor): shank sagittal angle at initial contact.

``shank_angle_ic_deg``: inclination of the shank's long axis from the vertical at IC in
the sagittal plane, positive when the ankle is ahead of the knee (landing with the foot
in front of the knee: the overstriding cue; Heiderscheit et al. 2011, Med. Sci. Sports
Exerc. 43:296 - a 5-10 % step-rate increase reduces it; Lieberman et al. 2015 report
shank angles at IC of about 0-15 deg).

Two things are needed and neither is visible in a single stance of a shank IMU:

1. **The vertical at IC.** The shank is never still while running, so its tilt comes
   from a whole stride: over one stride from IC to IC the body returns to the same
   velocity, so the mean of the specific force rotated into the IC frame (gyro integrated
   over that stride only) is gravity (the "stride-average" levelling used for
   treadmill-free running IMUs; Bergamini et al. 2012 use the same periodicity to bound
   drift). Error: speed change over the stride / stride time (0.1 m/s per stride gives
   < 1 deg).
2. **The shank's long axis in the sensor frame.** A strapped sensor may sit in any
   orientation, and no running motion defines the tibia's axis, so it is taken from a
   **quiet standing** period (``StandingCalibration``: the first ``min_still_s`` of
   stillness, e.g. before the run starts): the tibia is close to vertical when standing
   upright (the usual static calibration of IMU segment angles; e.g. Seel et al. 2014 and
   the static trials of tibial-angle studies). Without one the angle and the axial PTA are
   NaN with reason ``no_standing_calibration`` (the resultant PTA does not need it).
"""

from __future__ import annotations

import math

import numpy as np

from detectors.form import Values, nan_all
from detectors.form.orientation import Attitude
from pipeline.records import SampleBlock

NAMES = ("shank_angle_ic_deg",)
STILL_GYR_DPS = 10.0  # standing: only sway and sensor noise
STILL_ACC_DEV_MS2 = 0.5  # | |f| - g | while standing
STILL_ACC_STEP_MS2 = 1.0  # accelerometer only: |f[k] - f[k-1]| while standing (noise ~0.3; running breaks |f| ~ g within a stride)


def shank_stance_attitude(step, stride) -> tuple[Attitude | None, str]:
    """Level-frame attitude over the step window, levelled by the stride-mean specific force."""
    if step.gyr_dps is None:
        return None, "no_gyro"
    if stride is None:
        return None, "no_previous_stride" if not math.isfinite(step.prev_ic_s) else "stride_not_buffered"
    fs = stride.fs_hz
    pic, ic = stride.rel(stride.prev_ic_index), stride.rel(step.ic_index)
    k_ic = int(round(ic))
    up = stride.up_at(k_ic, start=int(math.ceil(pic)), gravity_ms2=step.gravity_ms2)
    if up is None:
        return None, "stride_not_periodic"
    w0 = step.window_start_index - stride.start_index
    m = stride.level_mats(k_ic, up, w0, w0 + step.acc_ms2.shape[0])
    return Attitude(matrices=m, anchor=k_ic - w0, fs_hz=fs), ""


def shank_angle(step, att: Attitude | None, reason: str, *, axis_body: np.ndarray | None) -> Values:
    if att is None:
        return nan_all(NAMES, reason)
    if axis_body is None:
        return nan_all(NAMES, "no_standing_calibration")
    return {"shank_angle_ic_deg": (att.axis_pitch_at_deg(axis_body, step.rel(step.ic_index)), "")}


class StandingCalibration:
    """The sensor's up direction (body frame) during the first quiet standing period.

    Streaming over body-frame blocks; sums run sample by sample (``np.cumsum`` with the
    carried total), so the result is bit-identical for any block split.
    """

    def __init__(self, *, min_still_s: float = 1.0):
        if not min_still_s > 0:
            raise ValueError(f"min_still_s must be > 0, got {min_still_s}")
        self.min_still_s = min_still_s
        self.axis_body: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self.axis_body = None
        self._sum = np.zeros(3)
        self._count = 0
        self._next = None  # expected next segment index
        self._last = None  # last sample of the previous block (accelerometer-only stillness)

    def update(self, block: SampleBlock) -> None:
        if self.axis_body is not None:
            return
        if self._next is not None and block.first_index != self._next:
            self._sum, self._count, self._last = np.zeros(3), 0, None
        self._next = block.end_index
        need = int(math.ceil(self.min_still_s * block.fs_hz))
        g = 9.80665
        still = np.abs(np.linalg.norm(block.acc_ms2, axis=1) - g) < STILL_ACC_DEV_MS2
        if block.gyr_dps is not None:
            still &= np.linalg.norm(block.gyr_dps, axis=1) < STILL_GYR_DPS
        else:  # accelerometer only: no sample-to-sample change beyond sensor noise and sway
            prev = np.vstack([block.acc_ms2[:1] if self._last is None else self._last[None, :], block.acc_ms2[:-1]])
            still &= np.linalg.norm(block.acc_ms2 - prev, axis=1) < STILL_ACC_STEP_MS2
            self._last = block.acc_ms2[-1].copy()
        for run_start, run_end in _runs(still):
            if run_start > 0:  # stillness broken before this run
                self._sum, self._count = np.zeros(3), 0
            take = min(run_end - run_start, need - self._count)
            part = block.acc_ms2[run_start:run_start + take]
            self._sum = np.cumsum(np.vstack([self._sum, part]), axis=0)[-1]
            self._count += take
            if self._count >= need:
                self.axis_body = self._sum / np.linalg.norm(self._sum)
                return
            if run_end < block.n:
                self._sum, self._count = np.zeros(3), 0
        if not still.any():
            self._sum, self._count = np.zeros(3), 0


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))
