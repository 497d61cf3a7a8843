"""Fixed per-run costs of the step detector (issue 9, short recordings): the filter's initial
state ``signal.sosfilt_zi`` is computed once per design and process instead of once per
segment and sensor. It must be the same array as scipy's for the detector's own design, and
shared read-only (a detector's state is a new array); the detector's steps are the same as
with ``sosfilt_zi`` recomputed (the replaced code, via monkeypatch) for any block split."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from detectors.steps import GyroStepDetector, _butter_sos, _sosfilt_zi
from pipeline.records import SampleBlock
from pipeline.simulator import SimParams, Simulator


@pytest.mark.parametrize("fs_hz", [100.0, 200.0, 400.0, 500.0, 1000.0, 1234.5])
@pytest.mark.parametrize("lowpass_hz", [5.0, 20.0, 31.0])
def test_cached_zi_is_scipys(fs_hz, lowpass_hz):
    wn = lowpass_hz / (fs_hz / 2)
    zi = _sosfilt_zi(2, wn)
    assert zi is _sosfilt_zi(2, wn) and not zi.flags.writeable
    assert np.array_equal(zi, signal.sosfilt_zi(_butter_sos(2, wn)))
    det = GyroStepDetector(fs_hz=fs_hz, lowpass_hz=lowpass_hz)
    assert np.array_equal(det._zi_unit, signal.sosfilt_zi(det._sos))
    x0 = -37.25
    assert np.array_equal(det._zi_unit * x0, signal.sosfilt_zi(det._sos) * x0)


def _blocks(acc, gyr, fs, n):
    for i in range(0, acc.shape[0], n):
        yield SampleBlock(sensor_id="s", fs_hz=fs, t0_s=0.0, first_index=i, acc_ms2=acc[i:i + n],
                          gyr_dps=gyr[i:i + n], segment=0, frame="body")


def _run(acc, gyr, fs, n, cls=GyroStepDetector):
    det = cls(fs_hz=fs)
    out = []
    for b in _blocks(acc, gyr, fs, n):
        out += det.update(b)
    out += det.flush()
    det.reset()  # a second segment starts from a new state
    for b in _blocks(acc, gyr, fs, n):
        out += det.update(b)
    return [(s.ic_index, s.to_index, s.ic_s, s.to_s, s.acc_ms2.tobytes()) for s in out + det.flush()]


@pytest.mark.parametrize("n", [7, 200, 100000])
def test_steps_same_as_with_zi_recomputed(n):
    p = SimParams(placement="foot", side="left", fs_hz=500.0, duration_s=8.0, seed=3)
    _, acc, gyr = Simulator(p).signals()  # sensor frame = body frame for this check's purpose
    got = _run(acc, gyr, 500.0, n)
    assert len(got) > 5

    class Recompute(GyroStepDetector):
        def update(self, block):
            if self._zi is None:
                self._zi_unit = signal.sosfilt_zi(self._sos)  # what the replaced code computed here
            return super().update(block)

    assert _run(acc, gyr, 500.0, n, Recompute) == got
