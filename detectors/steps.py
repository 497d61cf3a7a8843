"""Streaming step events: initial contact (IC) and toe-off (TO) per foot or shank sensor.

Input is body-frame blocks from :mod:`detectors.alignment` (x forward, y left, z up), so
the sagittal angular rate, positive while the leg swings forward, is ``-gyr_dps[:, 1]``.

Gyroscope method (foot and shank), after Falbriard et al. 2018 (Front. Physiol. 9:610,
"Accurate estimation of running temporal parameters using foot-worn inertial sensors")
for the foot and Aminian et al. 2002 (J. Biomech. 35:689) for the shank:

1. A stride is segmented by the leg's **swing lobes**: the sagittal rate rises through
   ``swing_threshold_dps`` and stays above it for ``swing_confirm_s`` when the next swing
   starts (impact vibrations cross it only briefly).
2. **TO** is the last prominent minimum of the sagittal rate before that swing (push-off
   for the foot, the fastest backward shank rotation for the shank; a heel strike's
   foot-slap minimum comes earlier), located on the raw rate and refined by a parabola
   through three samples. It must be deep compared with the runner's recent push-offs
   (``PUSH_RELATIVE_DEPTH``), which rejects the heel drop after a forefoot landing.
3. **IC** is the impact: the largest rise of the upward (body z) specific force within an
   impact rise time (10 ms) between the previous mid-swing peak and ``min_contact_s``
   before TO, refined to the onset of the impact by intersecting the pre-impact and
   impact slopes (accelerometer onset, as in Purcell et al. 2006, Sports Eng. 9:123;
   Falbriard 2018 use the gyro minimum for IC, the accelerometer sharpens it). A window
   without an impact of at least ``impact_jerk_min_gps``, or whose biggest impact comes
   after TO, is not a step; the window stays open.

Accelerometer-only method: IC at impact onsets: the first upward rise above a threshold
(absolute, and relative to the last impacts), the biggest rise within 80 ms of it, a
refractory period of ``min_stride_s`` (the same onset refinement); TO is unknown (NaN), so
contact time is NaN.

Look-ahead: a step is emitted when the next swing starts, i.e. ``contact + the time from
TO until the rate reaches swing_threshold_dps, + swing_confirm_s`` after its IC: about
350-380 ms at 170 steps/min (tests/test_steps_streaming.py measures it). Accelerometer-only
steps are emitted about 100 ms after IC.

Activity: a step is *running* when the foot has a flight phase, i.e. its duty factor
contact/stride is below ``running_max_duty`` (0.5 by definition of running, Novacheck
1998, Gait Posture 7:77; 0.55 leaves room for event timing noise, walking is above 0.58),
and its contact is shorter than ``running_max_contact_s``
(0.5 s: running contacts are 0.15-0.4 s, walking stances 0.55-0.8 s; this also guards
the duty factor when a step was missed and the stride looks twice as long). Accelerometer-only steps: running when the step
rate is at least ``running_min_cadence_spm``.

Memory is bounded by ``buffer_s`` seconds of samples per sensor.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import signal

from detectors.contract import require
from detectors.steps_kernels import impact_onset_at, sosfilt_1d, try_step_at, upward_crossings
from pipeline.records import SampleBlock, Step

G_MS2 = 9.80665
# An impact transient rises to its peak in ~10 ms (foot: Lieberman et al. 2010, Nature
# 463:531; tibial shock: Milner et al. 2006, Med. Sci. Sports Exerc. 38:323); impacts are
# found as the largest change of the acceleration within this time.
IMPACT_RISE_S = 0.010
ONSET_FRACTION = 0.6
# A second loading (heel drop after a forefoot contact, double impacts) follows the first
# contact within ~30-80 ms; the first rise at least this fraction of the biggest is IC.
SECOND_LOADING_S = 0.08
FIRST_CONTACT_FRACTION = 0.6
# A stance window whose biggest acceleration jump comes after the candidate TO is rejected.
LATE_IMPACT_RATIO = 3.0
# A push-off (TO) minimum is at least this fraction of the runner's typical push-off depth.
PUSH_RELATIVE_DEPTH = 0.4


def rise_amplitude(up_ms2: np.ndarray, rise_n: int) -> np.ndarray:
    """``up[n + rise_n] - up[n]``: how much the upward specific force rises within one
    impact rise time. At IC the ground stops the falling foot and pushes it up: impacts
    raise it by several g within ~10 ms, while swing, roll-over and push-off change it
    far more slowly (and the decay after the impact peak is a fall, not a rise)."""
    return up_ms2[rise_n:] - up_ms2[:-rise_n]


def impact_onset(up_ms2: np.ndarray, lo: int, hi: int, *, rise_n: int) -> tuple[int, float, float] | None:
    """Onset of the biggest impact whose rise starts in samples [lo, hi) of ``up_ms2``
    (the body-frame vertical specific force).

    Returns (sample index, fraction of a sample after it, rise in m/s² within ``rise_n``
    samples) or None; index and fraction are separate so that adding a buffer offset to
    the index is exact (chunk invariance to the bit). The biggest rise within ``rise_n``
    samples (:func:`rise_amplitude`) is taken back to the first rise at least
    FIRST_CONTACT_FRACTION of it within SECOND_LOADING_S before (the first contact: the
    biggest one is then a second loading, a heel drop after a forefoot strike), then up to
    that rise's own peak. The onset is the first step of that rise reaching ONSET_FRACTION
    of its largest step, refined to a fraction of a sample where the straight line through
    the two samples before it meets the line through the two samples after it (exact for a
    ramp). Compiled (``detectors.steps_kernels.impact_onset_at``).
    """
    lo = max(lo, 3)
    hi = min(hi, up_ms2.shape[0] - rise_n - 3)
    if hi - lo < 1:
        return None
    back_n = int(round(SECOND_LOADING_S * rise_n / IMPACT_RISE_S))
    n, frac, rise = impact_onset_at(up_ms2, lo, hi, rise_n, back_n, FIRST_CONTACT_FRACTION, ONSET_FRACTION)
    return None if n < 0 else (n, frac, rise)


@functools.lru_cache(maxsize=16)
def _butter_sos_cached(order: int, wn: float) -> np.ndarray:
    return signal.butter(order, wn, output="sos")


def _butter_sos(order: int, wn: float) -> np.ndarray:
    """scipy's Butterworth design, once per (order, normalised cut-off) and process: ~3 ms
    per design, otherwise a fixed cost of every detector (each gets its own copy)."""
    return _butter_sos_cached(order, wn).copy()


@functools.lru_cache(maxsize=16)
def _sosfilt_zi_cached(order: int, wn: float) -> np.ndarray:
    zi = signal.sosfilt_zi(_butter_sos_cached(order, wn))
    zi.flags.writeable = False  # shared: callers multiply it (a new array), never write it
    return zi


def _sosfilt_zi(order: int, wn: float) -> np.ndarray:
    """``signal.sosfilt_zi(_butter_sos(order, wn))``, once per design and process (a
    deterministic function of the design: the same array): ~40 us of scipy per segment and
    sensor otherwise, a fixed cost of every run. Read-only; ``* x0`` makes the state."""
    return _sosfilt_zi_cached(order, wn)


def _median(xs: list[float]) -> float:
    """``float(np.median(xs))`` for a short list of floats, without numpy's per-call overhead
    (same arithmetic: the middle value, or the two middle values' sum halved)."""
    s = sorted(xs)
    n = len(s)
    return float(s[n // 2]) if n % 2 else float((s[n // 2 - 1] + s[n // 2]) / 2.0)


def _percentile(x: np.ndarray, q: float) -> float:
    """``float(np.percentile(x, q))`` of a 1-d float64 array: numpy's default method
    ('linear', Hyndman & Fan 1996, Am. Stat. 50:361, definition 7) with numpy's own
    arithmetic step by step (virtual index ``(n - 1) * (q / 100)``, its floor and the
    fraction ``gamma``, the last value from the top index on, NaN when there is one, and
    ``_lerp``: ``a + (b - a) * gamma``, or ``b - (b - a) * (1 - gamma)`` from 0.5 on) on a
    sorted copy, instead of ~25 numpy calls of ``np.percentile``'s general path (300 values:
    ~31 -> ~4 us, or ~290 -> ~90 us as the first call after a GC; a fixed cost of every
    segment's ``_init_depth``). Only the
    sign of a zero result may differ (sort and partition order -0.0 and 0.0 freely)."""
    n = x.shape[0]
    if n == 0 or not 0.0 <= q <= 100.0:
        return float(np.percentile(x, q))  # numpy's error
    s = np.sort(x)
    last = float(s[-1])
    if last != last:
        return last  # a NaN sorts last: numpy returns it
    virtual = (n - 1) * (q / 100)
    if virtual >= n - 1:  # numpy: both neighbours the last value, index -1 (so gamma = virtual + 1)
        prev, a, b = -1, last, last
    else:
        prev = math.floor(virtual)
        a, b = float(s[prev]), float(s[prev + 1])
    gamma = virtual - prev
    d = b - a  # inf - inf: NaN, as numpy
    return b - d * (1 - gamma) if gamma >= 0.5 else a + d * gamma


class _Buffer:
    """The last samples of one segment (bounded), indexed by segment sample index.

    Storage is preallocated and appended in place (amortised O(block) per block, not a
    copy of the whole buffer per block: live blocks are ~20 samples); ``acc``, ``gyr`` and
    ``extra[name]`` are views of the live part, valid until the next ``append``/``trim``.
    """

    def __init__(self, max_n: int):
        self.max_n = max_n
        self.start = 0
        self._n = 0  # live samples
        self._off = 0  # row of the storage holding sample ``start``
        self._store: dict[str, np.ndarray] = {}  # "acc", "gyr" (if any) and the extra columns
        self._has_gyr = False

    def _view(self, key: str) -> np.ndarray:
        return self._store[key][self._off:self._off + self._n]

    @property
    def acc(self) -> np.ndarray:
        return self._view("acc") if "acc" in self._store else np.empty((0, 3))

    @property
    def gyr(self) -> np.ndarray | None:
        return self._view("gyr") if self._has_gyr else None

    @property
    def extra(self) -> dict[str, np.ndarray]:
        return {k: self._view(k) for k in self._store if k not in ("acc", "gyr")}

    def column(self, key: str) -> np.ndarray:
        """The live part of one extra column (cheaper than ``extra[key]``)."""
        return self._view(key)

    @property
    def has_gyr(self) -> bool:
        return self._has_gyr

    def row(self, index: int) -> int:
        """Storage row of segment sample ``index`` (for :meth:`stored`)."""
        return self._off + index - self.start

    def stored(self, key: str) -> np.ndarray:
        """The whole storage of ``acc``, ``gyr`` or an extra column, indexed by :meth:`row`:
        one slice of it copies a window without first making a view of the live part."""
        return self._store[key]

    def append(self, block: SampleBlock, **extra: np.ndarray) -> None:
        if self._n == 0:
            self.start = block.first_index
            self._off = 0
        elif block.first_index != self.start + self._n:
            raise ValueError(
                f"non-contiguous block: expected index {self.start + self._n}, got {block.first_index}")
        cols = {"acc": block.acc_ms2}
        if block.gyr_dps is not None:
            cols["gyr"] = block.gyr_dps
            self._has_gyr = True
        if extra:
            cols.update(extra)
        k = block.n
        need = self._off + self._n + k
        cap = next(iter(self._store.values())).shape[0] if self._store else 0
        known = cols.keys() <= self._store.keys()
        if need > cap or not known:
            if self._n + k <= cap // 2 and known:
                new_cap = cap  # enough room once the live part is moved to the front
            else:
                new_cap = max(2 * (self._n + k), self.max_n + k, 64)
            for key in set(self._store) | set(cols):
                old = self._store.get(key)
                src = cols[key] if key in cols else old
                arr = np.empty((new_cap,) + src.shape[1:], dtype=np.float64)
                if old is not None and self._n:
                    arr[:self._n] = old[self._off:self._off + self._n]
                self._store[key] = arr
            self._off = 0
        end = self._off + self._n
        for key, v in cols.items():
            self._store[key][end:end + k] = v
        self._n += k

    @property
    def end(self) -> int:
        return self.start + self._n

    def trim(self, keep_from: int) -> None:
        keep_from = max(keep_from, self.end - self.max_n)
        cut = keep_from - self.start
        if cut <= 0:
            return
        cut = min(cut, self._n)
        self._off += cut
        self._n -= cut
        self.start = keep_from


class _StepDetectorBase:
    def __init__(self, *, fs_hz: float, min_contact_s: float, max_contact_s: float, min_stride_s: float,
                 max_stride_s: float, impact_jerk_min_gps: float, buffer_s: float, pre_ic_s: float,
                 post_to_s: float, running_max_duty: float, running_max_contact_s: float,
                 running_min_cadence_spm: float):
        require(fs_hz >= 50.0, f"fs_hz must be >= 50 Hz for step events, got {fs_hz}")
        require(0 < min_contact_s < max_contact_s, "need 0 < min_contact_s < max_contact_s")
        require(0 < min_stride_s < max_stride_s, "need 0 < min_stride_s < max_stride_s")
        require(buffer_s >= max_stride_s + max_contact_s + pre_ic_s + 0.1,
                "buffer_s must hold a stride, a contact and the pre-IC window")
        require(impact_jerk_min_gps > 0, "impact_jerk_min_gps must be > 0")
        self.fs_hz = fs_hz
        self.min_contact_s, self.max_contact_s = min_contact_s, max_contact_s
        self.min_stride_s, self.max_stride_s = min_stride_s, max_stride_s
        self.impact_jerk_min_gps = impact_jerk_min_gps
        self.buffer_s, self.pre_ic_s, self.post_to_s = buffer_s, pre_ic_s, post_to_s
        self.running_max_duty = running_max_duty
        self.running_max_contact_s = running_max_contact_s
        self.running_min_cadence_spm = running_min_cadence_spm
        self._rise_n = max(1, int(round(IMPACT_RISE_S * fs_hz)))
        self._back_n = int(round(SECOND_LOADING_S * self._rise_n / IMPACT_RISE_S))  # as impact_onset
        self.reset()

    def reset(self) -> None:
        self._buf = _Buffer(int(math.ceil(self.buffer_s * self.fs_hz)))
        self._segment = 0
        self._t0_s = 0.0
        self._prev_ic: float | None = None  # segment index of the last emitted IC

    def flush(self) -> list[Step]:
        return []

    def _time(self, idx: float) -> float:
        return self._t0_s + idx / self.fs_hz

    def _make_step(self, ic: float, to: float) -> Step:
        b = self._buf
        fs, t0 = self.fs_hz, self._t0_s
        prev = self._prev_ic
        prev_ic_s = math.nan
        if prev is not None and (ic - prev) / fs <= self.max_stride_s:
            prev_ic_s = t0 + prev / fs  # self._time, inlined (one step at a time adds up)
        ic_s = t0 + ic / fs
        to_s = t0 + to / fs if not math.isnan(to) else math.nan
        stride_s = ic_s - prev_ic_s
        contact_s = to_s - ic_s
        if not math.isnan(contact_s):
            running = contact_s < self.running_max_contact_s and (
                math.isnan(stride_s) or contact_s / stride_s < self.running_max_duty)
        else:
            running = (not math.isnan(stride_s)) and 120.0 / stride_s >= self.running_min_cadence_spm
        w0 = max(int(math.floor(ic - self.pre_ic_s * fs)), b.start)
        end_ref = ic if math.isnan(to) else to
        w1 = min(int(math.ceil(end_ref + self.post_to_s * fs)) + 1, b.end)
        self._prev_ic = ic
        r0, r1 = b.row(w0), b.row(w1)  # the window's storage rows (inside the live part)
        return Step(
            sensor_id=self._sensor_id, segment=self._segment, fs_hz=fs, ic_index=ic, to_index=to,
            ic_s=ic_s, to_s=to_s, prev_ic_s=prev_ic_s, activity="running" if running else "walking",
            window_start_index=w0, acc_ms2=b.stored("acc")[r0:r1].copy(),
            gyr_dps=b.stored("gyr")[r0:r1].copy() if b.has_gyr else None,
        )

    def _start_block(self, block: SampleBlock) -> None:
        if block.frame != "body":
            raise ValueError("step detection needs body-frame blocks (run detectors.alignment first)")
        self._sensor_id = block.sensor_id
        self._segment = block.segment
        self._t0_s = block.t0_s


class GyroStepDetector(_StepDetectorBase):
    """IC/TO from the sagittal angular rate and the impact (foot or shank); see module doc."""

    def __init__(self, *, fs_hz: float, swing_threshold_dps: float = 30.0, swing_confirm_s: float = 0.02,
                 push_threshold_dps: float = 100.0, init_s: float = 1.5,
                 lowpass_hz: float = 20.0, min_contact_s: float = 0.08, max_contact_s: float = 1.0,
                 min_stride_s: float = 0.4, max_stride_s: float = 2.5, impact_jerk_min_gps: float = 40.0,
                 buffer_s: float = 4.0, pre_ic_s: float = 0.1, post_to_s: float = 0.05,
                 running_max_duty: float = 0.55, running_max_contact_s: float = 0.5,
                 running_min_cadence_spm: float = 140.0):
        require(swing_threshold_dps > 0 and push_threshold_dps > 0, "thresholds must be > 0 dps")
        require(0 < lowpass_hz < fs_hz / 2, f"lowpass_hz must be in (0, fs/2), got {lowpass_hz}")
        self.swing_threshold_dps = swing_threshold_dps
        self.swing_confirm_s = swing_confirm_s
        require(init_s > 0, "init_s must be > 0")
        self.init_s = init_s
        self._confirm_n = max(1, int(round(swing_confirm_s * fs_hz)))
        self.push_threshold_dps = push_threshold_dps
        self.lowpass_hz = lowpass_hz
        self._sos = _butter_sos(2, lowpass_hz / (fs_hz / 2))
        self._zi_unit = _sosfilt_zi(2, lowpass_hz / (fs_hz / 2))  # signal.sosfilt_zi(self._sos)
        # the low-pass lags the raw rate; the raw minimum is searched this far back
        self._delay_n = int(math.ceil(1.5 / (2 * math.pi * lowpass_hz) * 2 * fs_hz))
        super().__init__(fs_hz=fs_hz, min_contact_s=min_contact_s, max_contact_s=max_contact_s,
                         min_stride_s=min_stride_s, max_stride_s=max_stride_s,
                         impact_jerk_min_gps=impact_jerk_min_gps, buffer_s=buffer_s, pre_ic_s=pre_ic_s,
                         post_to_s=post_to_s, running_max_duty=running_max_duty,
                         running_max_contact_s=running_max_contact_s,
                         running_min_cadence_spm=running_min_cadence_spm)

    def reset(self) -> None:
        super().reset()
        self._zi: np.ndarray | None = None
        self._last_w = math.inf  # no crossing at the first sample of a segment
        self._win_start: int | None = None  # index where the current stance window opens
        self._pending: list[int] = []  # swing-start candidates awaiting confirmation
        self._seg_first: int | None = None
        self._ref_depth_dps: float | None = None  # typical push-off rate (positive)
        self._depths: list[float] = []
        self._init_n = int(round(self.init_s * self.fs_hz))

    def update(self, block: SampleBlock) -> list[Step]:
        if block.gyr_dps is None:
            raise ValueError("GyroStepDetector needs gyr_dps; use AccStepDetector for accelerometer-only data")
        self._start_block(block)
        w = -block.gyr_dps[:, 1]
        if self._zi is None:
            self._zi = self._zi_unit * w[0]  # signal.sosfilt_zi(self._sos) * w[0], the zi cached
        wf, self._zi = sosfilt_1d(self._sos, w, self._zi)  # scipy's sosfilt, compiled without its wrapper
        b = self._buf
        if self._win_start is None:
            self._win_start = block.first_index
            self._seg_first = block.first_index
        b.append(block, w=w, wf=wf)
        thr = self.swing_threshold_dps
        ups = upward_crossings(w, self._last_w, thr)  # compiled: ~6 numpy calls per live block
        self._last_w = float(w[-1])
        self._pending += [block.first_index + int(c) for c in ups]
        out: list[Step] = []
        # a swing start is confirmed when the rate stays above the threshold for
        # swing_confirm_s (impact vibrations cross it only briefly)
        if self._ref_depth_dps is None and b.end - self._seg_first >= self._init_n:
            self._init_depth()
        if self._ref_depth_dps is not None:
            out += self._confirm(b.end)
        keep = self._win_start if self._win_start is not None else b.end
        if self._ref_depth_dps is None:
            keep = min(keep, self._seg_first)
        if self._pending:
            keep = min(keep, self._pending[0])
        # keep pre_ic_s before the window too, so step windows never depend on the split
        b.trim(min(keep, b.end) - int(self.pre_ic_s * self.fs_hz) - 2)
        return out

    def _init_depth(self) -> None:
        """Reference push-off depth from the first ``init_s`` of the segment: the deepest
        backward rates of a stride are push-off (and a heel strike's foot slap)."""
        b = self._buf
        wf = b.column("wf")[self._seg_first - b.start:self._seg_first - b.start + self._init_n]
        self._ref_depth_dps = max(-_percentile(wf, 1.0), self.push_threshold_dps)  # -np.percentile(wf, 1.0)

    def _confirm(self, end: int) -> list[Step]:
        """Swing starts are confirmed when the rate stays above the threshold for
        swing_confirm_s (impact vibrations cross it only briefly)."""
        b = self._buf
        out: list[Step] = []
        all_w = b.column("w")
        while self._pending and self._pending[0] + self._confirm_n <= end:
            c = self._pending.pop(0)
            seg = all_w[c - b.start:c - b.start + self._confirm_n]
            if seg.min() >= self.swing_threshold_dps:
                st = self._try_step(c)
                if st is not None:
                    out.append(st)
        return out

    def flush(self) -> list[Step]:
        """End of stream: confirm what can be confirmed, then accept a last push-off whose
        minimum is already behind (the rate rose again) although the swing did not start."""
        b = self._buf
        if b.acc.shape[0] == 0:
            return []
        out: list[Step] = []
        if self._ref_depth_dps is None:
            self._init_n = b.end - self._seg_first
            self._init_depth()
            out += self._confirm(b.end)
        self._pending = []
        last = self._try_step(b.end - 1)
        if last is not None and (not out or last.ic_s > out[-1].ic_s):
            out.append(last)
        return out

    def _try_step(self, c: int) -> Step | None:
        b = self._buf
        fs = self.fs_hz
        ws = max(self._win_start, b.start, c - int((self.max_stride_s + self.max_contact_s) * fs))
        # TO: the last prominent minimum before the swing starts at c (push-off; a heel
        # strike's foot-slap minimum comes earlier, shallow wiggles are not prominent). It is
        # deep compared with this runner's recent push-offs (a forefoot strike's
        # terminal-swing rotation before the heel drop is not).
        thr = max(self.push_threshold_dps, PUSH_RELATIVE_DEPTH * self._ref_depth_dps)
        # IC: the impact between the previous mid-swing (the peak of the swing lobe, as in
        # Falbriard's mid-swing to mid-swing cycles; when it is no real swing, the window's
        # start) and min_contact_s before TO; searching from mid-swing keeps the lift-off of
        # the previous step out of the window. No impact, or a much bigger rise after TO (the
        # real impact comes after this "toe-off": it was the terminal-swing rotation before a
        # forefoot landing, and c the heel drop): not a step, the window stays open.
        # All of it in one compiled call (detectors/steps_kernels.py try_step_at spells out
        # each step; per-call numpy/scipy and then Python overhead dominated it).
        w = b.column("w")
        k_to, to, n, frac = try_step_at(
            w, b.column("wf"), b.acc[:, 2], b.start, ws - b.start, c - b.start, thr, 0.5 * thr, self._delay_n,
            max(3.0 * self.swing_threshold_dps, 0.3 * self._ref_depth_dps), self.min_contact_s * fs,
            self.max_contact_s * fs, self._rise_n, self._back_n, FIRST_CONTACT_FRACTION, ONSET_FRACTION,
            self._rise_n / fs, G_MS2, self.impact_jerk_min_gps, LATE_IMPACT_RATIO)
        if n < 0:
            return None
        step = self._make_step((b.start + n) + frac, to)
        self._win_start = c
        self._depths = (self._depths + [float(-w[k_to])])[-8:]
        self._ref_depth_dps = _median(self._depths)
        return step


class AccStepDetector(_StepDetectorBase):
    """IC from impact onsets only (accelerometer-only streams); TO and contact are NaN."""

    def __init__(self, *, fs_hz: float, min_stride_s: float = 0.4, max_stride_s: float = 2.5,
                 impact_jerk_min_gps: float = 40.0, relative_threshold: float = 0.4,
                 buffer_s: float = 4.0, pre_ic_s: float = 0.1, post_to_s: float = 0.05,
                 running_min_cadence_spm: float = 140.0, min_contact_s: float = 0.08,
                 max_contact_s: float = 1.0, running_max_duty: float = 0.55,
                 running_max_contact_s: float = 0.5):
        require(0 < relative_threshold < 1, "relative_threshold must be in (0, 1)")
        self.relative_threshold = relative_threshold
        super().__init__(fs_hz=fs_hz, min_contact_s=min_contact_s, max_contact_s=max_contact_s,
                         min_stride_s=min_stride_s, max_stride_s=max_stride_s,
                         impact_jerk_min_gps=impact_jerk_min_gps, buffer_s=buffer_s, pre_ic_s=pre_ic_s,
                         post_to_s=post_to_s, running_max_duty=running_max_duty,
                         running_max_contact_s=running_max_contact_s,
                         running_min_cadence_spm=running_min_cadence_spm)

    def reset(self) -> None:
        super().reset()
        self._scan_from: int | None = None
        self._recent: list[float] = []  # jumps of the last accepted impacts (m/s² per sample)

    def update(self, block: SampleBlock) -> list[Step]:
        self._start_block(block)
        self._buf.append(block)
        if self._scan_from is None:
            self._scan_from = self._buf.start + 2
        return self._scan(final=False)

    def flush(self) -> list[Step]:
        if self._scan_from is None:
            return []
        return self._scan(final=True)

    def _scan(self, *, final: bool) -> list[Step]:
        """Impacts in time order: the first rise above the threshold, then the biggest rise
        within one refractory period (``min_stride_s``) after it."""
        b = self._buf
        out: list[Step] = []
        fs = self.fs_hz
        ref = int(self.min_stride_s * fs)
        peak_n = int(round(SECOND_LOADING_S * fs))
        while True:
            lo, hi = self._scan_from, b.end - self._rise_n - 3
            if hi - lo < 1:
                break
            d = rise_amplitude(b.acc[lo - b.start:hi - b.start + self._rise_n, 2], self._rise_n)
            thr = self.impact_jerk_min_gps * G_MS2 * self._rise_n / fs
            if self._recent:
                thr = max(thr, self.relative_threshold * _median(self._recent))
            cand = np.flatnonzero(d >= thr)
            if cand.size == 0:
                self._scan_from = hi
                break
            k = int(cand[0])
            if k + peak_n > d.size and not final:
                self._scan_from = lo + k
                break  # wait for the whole rise
            k = k + int(np.argmax(d[k:k + peak_n]))
            n = lo + k
            found = impact_onset(b.acc[:, 2], n - b.start, n - b.start + 1, rise_n=self._rise_n)
            if found is not None:
                self._recent = (self._recent + [found[2]])[-8:]
                out.append(self._make_step((b.start + found[0]) + found[1], math.nan))
            self._scan_from = n + ref
        b.trim(self._scan_from - int(self.pre_ic_s * fs) - 3)
        return out


STEP_DETECTORS = {
    "gyro": GyroStepDetector,
    "acc": AccStepDetector,
}


def make_step_detector(name: str, *, placement: str, fs_hz: float, has_gyro: bool):
    """Registry lookup (config ``[detectors] steps``); "auto" picks gyro when present."""
    if name == "auto":
        name = "gyro" if has_gyro else "acc"
    try:
        cls = STEP_DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown step detector {name!r}; known: auto, {', '.join(STEP_DETECTORS)}") from None
    if cls is GyroStepDetector and not has_gyro:
        raise ValueError("step detector 'gyro' needs a gyroscope; this stream is accelerometer-only")
    return cls(fs_hz=fs_hz)
