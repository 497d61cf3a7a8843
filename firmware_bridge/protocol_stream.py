"""Decoded frames -> the engine's items (``SampleBlock`` and ``Gap``), sans-I/O.

One :class:`BlockAssembler` per device. It is fed decoded frames (binary mode) or
:class:`~firmware_bridge.protocol.TextSamples` (text mode) together with the host time at
which their bytes were read, and hands out finished items with :meth:`drain`.

Time (see ``pipeline/records.py``, "Time base"): the device's sample counter is the clock.
Within a segment sample ``i`` is at ``t0_s + i / fs_hz``; ``t0_s`` is the device time of
the segment's first sample mapped to the session's host time base by the drift-aware
:class:`~firmware_bridge.clock.ClockMap` (never the arrival time of its bytes). A segment
ends, and a :class:`Gap` is emitted, when the device timestamps are not contiguous (a
lost samples frame, a device-side FIFO overflow, a reconnect, a reboot); a sequence jump
with contiguous timestamps means only non-sample frames were lost and does not break the
segment. The first ``clock_warmup_s`` of a segment after a (re)start of the clock is held
back until the clock fit has seen that much device time, so ``t0_s`` does not carry the
delay of a single first packet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from firmware_bridge.clock import ClockMap
from firmware_bridge.protocol import (
    T_US_MOD,
    DeviceInfoFrame,
    Frame,
    FrameDecoder,
    SamplesFrame,
    SensorConfigFrame,
    StatusFrame,
    TextDecoder,
    TextSamples,
    looks_like_text,
)
from pipeline.errors import DeviceError
from pipeline.records import Gap, SampleBlock

log = logging.getLogger(__name__)


@dataclass
class AssemblerCounters:
    samples: int = 0  # handed out (after clock slips)
    device_samples: int = 0  # received and accepted from the device
    blocks: int = 0
    segments: int = 0
    gaps: int = 0
    gap_s: float = 0.0
    samples_without_config: int = 0  # dropped: no sensor-config frame seen yet
    axes_mismatch: int = 0  # dropped: frame axes differ from the config
    duplicate_samples: int = 0  # text mode: repeated timestamps
    restarts: int = 0
    interruptions: int = 0  # port closed / link lost
    config_changes: int = 0
    max_timing_error_ms: float = 0.0  # text mode: stated minus nominal sample time
    first_t_s: float = float("nan")  # session time of the first / last sample handed out
    last_t_s: float = float("nan")
    clock_slips: int = 0  # samples repeated/dropped to follow the device's drift
    max_clock_error_ms: float = 0.0  # nominal minus mapped sample time, before a slip


class BlockAssembler:
    """Frames of one device -> SampleBlocks (frame="sensor") and Gaps on the session time base.

    ``host_t0_s``: host time (same clock as the ``host_s`` given to :meth:`frame`) of
    session time 0. Text mode needs ``text_fs_hz`` (declared sample rate).
    """

    def __init__(
        self,
        *,
        sensor_id: str,
        host_t0_s: float,
        clock: ClockMap | None = None,
        clock_warmup_s: float = 1.0,
        text_fs_hz: float | None = None,
        slip_threshold_samples: float = 0.75,
        slip_check_s: float = 0.1,
    ):
        if not sensor_id:
            raise ValueError("sensor_id must be a non-empty string")
        if not clock_warmup_s >= 0:
            raise ValueError(f"clock_warmup_s must be >= 0, got {clock_warmup_s!r}")
        if text_fs_hz is not None and not text_fs_hz > 0:
            raise ValueError(f"text_fs_hz must be positive, got {text_fs_hz!r}")
        self.sensor_id = sensor_id
        self.host_t0_s = float(host_t0_s)
        self.clock = clock if clock is not None else ClockMap()
        self.clock_warmup_s = float(clock_warmup_s)
        self.text_fs_hz = text_fs_hz
        if not slip_threshold_samples >= 0.5:
            raise ValueError(f"slip_threshold_samples must be >= 0.5, got {slip_threshold_samples!r}")
        self.slip_threshold_samples = float(slip_threshold_samples)
        self.slip_check_s = float(slip_check_s)
        self._slip_checked_n = 0
        self.counters = AssemblerCounters()
        self.config: SensorConfigFrame | None = None
        self.device_info: DeviceInfoFrame | None = None
        self.status: StatusFrame | None = None
        self._out: list[SampleBlock | Gap] = []
        self._last_raw_t: int | None = None
        self._t_ext = 0
        self._segment = -1
        self._seg_open = False
        self._seg_t0_us = 0  # device time (extended µs) of the segment's sample 0
        self._seg_n = 0
        self._seg_dev_n = 0
        self._seg_t0_s: float | None = None
        self._seg_fs = 0.0
        self._pending_acc: list[np.ndarray] = []
        self._pending_gyr: list[np.ndarray | None] = []
        self._pending_first = 0
        self._pending_gyr_none = True
        self._gap_last_t_s: float | None = None
        self._text_last_t: int | None = None

    # ------------------------------------------------------------------ time helpers
    def _unwrap(self, t_us: int) -> int:
        if self._last_raw_t is None:
            self._t_ext = int(t_us)
        else:
            d = (t_us - self._last_raw_t + T_US_MOD // 2) % T_US_MOD - T_US_MOD // 2
            self._t_ext += d
        self._last_raw_t = int(t_us)
        return self._t_ext

    # ------------------------------------------------------------------ inputs
    def frame(self, frame: Frame, *, host_s: float) -> None:
        """One decoded binary frame, read by the host at ``host_s``."""
        if frame.restart:
            self._restart()
        if isinstance(frame, SamplesFrame):
            self._samples_frame(frame, host_s)
            return
        self.clock.observe(device_s=self._unwrap(frame.t_us) * 1e-6, host_s=host_s)
        if isinstance(frame, SensorConfigFrame):
            c = self.config
            if c is not None and (c.fs_mhz, c.axes, c.acc_scale_ms2, c.gyr_scale_dps) != (
                frame.fs_mhz, frame.axes, frame.acc_scale_ms2, frame.gyr_scale_dps
            ):
                self.counters.config_changes += 1
                self._close_segment()
            self.config = frame
        elif isinstance(frame, DeviceInfoFrame):
            self.device_info = frame
        elif isinstance(frame, StatusFrame):
            self.status = frame

    def _samples_frame(self, f: SamplesFrame, host_s: float) -> None:
        cfg = self.config
        t_first = self._unwrap(f.t_us)
        if cfg is None:
            self.counters.samples_without_config += f.n
            return
        if f.axes != cfg.axes:
            self.counters.axes_mismatch += f.n
            return
        fs = cfg.fs_hz
        self.clock.observe(device_s=(t_first + (f.n - 1) * 1e6 / fs) * 1e-6, host_s=host_s)
        raw = f.raw.astype(np.float64)
        acc = raw[:, :3] * cfg.acc_scale_ms2
        gyr = raw[:, 3:6] * cfg.gyr_scale_dps if f.axes == 6 else None
        self._append(t_first, fs, acc, gyr)

    def text(self, rows: TextSamples, *, host_s: float) -> None:
        """Decoded CSV lines (text mode), read by the host at ``host_s``."""
        fs = self.text_fs_hz
        if fs is None:
            raise ValueError("text mode needs the declared sample rate: BlockAssembler(text_fs_hz=...)")
        period_us = 1e6 / fs
        t = np.array([self._unwrap(int(v) % T_US_MOD) for v in rows.t_us], dtype=np.int64)
        self.clock.observe(device_s=float(t[-1]) * 1e-6, host_s=host_s)
        prev = self._text_last_t
        start = 0
        for i in range(len(t)):
            dt = None if prev is None else int(t[i] - prev)
            if dt is not None and dt <= 0:
                if dt < -1_000_000:  # board restarted its clock
                    self._append_text(t, rows, start, i, fs)
                    self._restart(reset_unwrap=False)
                    self.clock.observe(device_s=float(t[-1]) * 1e-6, host_s=host_s)
                    start = i
                else:  # repeated or out-of-order line
                    self._append_text(t, rows, start, i, fs)
                    self.counters.duplicate_samples += 1
                    start = i + 1
                    continue
            elif dt is not None and dt > 1.5 * period_us:
                self._append_text(t, rows, start, i, fs)
                self._close_segment()
                start = i
            prev = int(t[i])
        self._append_text(t, rows, start, len(t), fs)
        self._text_last_t = prev

    def _append_text(self, t: np.ndarray, rows: TextSamples, i0: int, i1: int, fs: float) -> None:
        if i1 <= i0:
            return
        gyr = rows.gyr_dps[i0:i1] if rows.gyr_dps is not None else None
        self._append(int(t[i0]), fs, rows.acc_ms2[i0:i1], gyr, contiguous_by_caller=True)
        err_ms = abs(float(t[i1 - 1]) - (self._seg_t0_us + (self._seg_dev_n - 1) * 1e6 / fs)) * 1e-3
        self.counters.max_timing_error_ms = max(self.counters.max_timing_error_ms, err_ms)

    def interrupted(self) -> None:
        """The byte stream stopped (port vanished, link lost): the next samples start a new segment.

        The clock fit starts afresh too: a new connection may have another delay floor
        (another USB port or hub, another BLE connection interval), and a step in the floor
        inside the window would tilt the fitted drift.
        """
        self.counters.interruptions += 1
        self._close_segment()
        self.clock.reset()

    # ------------------------------------------------------------------ segments
    def _restart(self, *, reset_unwrap: bool = True) -> None:
        self.counters.restarts += 1
        self._close_segment()
        self.clock.reset()
        if reset_unwrap:  # binary: called before the new frame's time is unwrapped
            self._last_raw_t = None

    def _append(self, t_first: int, fs: float, acc: np.ndarray, gyr: np.ndarray | None, *, contiguous_by_caller: bool = False) -> None:
        if self._seg_open:
            period_us = 1e6 / fs
            expected = self._seg_t0_us + self._seg_dev_n * period_us
            form_changed = fs != self._seg_fs or (gyr is None) != (self._pending_gyr_none)
            if form_changed or (not contiguous_by_caller and abs(t_first - expected) > 0.5 * period_us):
                self._close_segment()
        if not self._seg_open:
            self._segment += 1
            self.counters.segments += 1
            self._seg_open = True
            self._seg_t0_us = t_first
            self._seg_n = 0  # samples handed out (after slips)
            self._seg_dev_n = 0  # samples the device sent
            self._seg_t0_s = None
            self._seg_fs = fs
            self._pending_first = 0
            self._slip_checked_n = 0
            self._pending_gyr_none = gyr is None
        self._seg_dev_n += acc.shape[0]
        self.counters.device_samples += acc.shape[0]
        if self._seg_t0_s is not None and self._seg_n - self._slip_checked_n >= fs * self.slip_check_s:
            acc, gyr = self._slip(t_first, fs, acc, gyr)
        n = acc.shape[0]
        self._pending_acc.append(acc)
        self._pending_gyr.append(gyr)
        self._seg_n += n
        self.counters.samples += n

    def _slip(self, t_first: int, fs: float, acc: np.ndarray, gyr: np.ndarray | None):
        """Keep the nominal sample times on the host time base despite clock drift.

        Within a segment sample ``i`` is at ``t0_s + i / fs_hz`` (records.py), but the
        device's crystal runs off by up to ~100 ppm, so the nominal times walk away from the
        true ones (0.36 s per hour). When the nominal time of this frame's first sample is
        more than ``slip_threshold_samples`` periods off its mapped device time, one sample
        is repeated (device slow) or dropped (device fast), as audio resamplers without
        interpolation do: the time error stays within that bound and no sample value is
        altered. Counted in ``clock_slips``.
        """
        self._slip_checked_n = self._seg_n
        mapped = self.clock.to_host(t_first * 1e-6) - self.host_t0_s
        err_s = (self._seg_t0_s + self._seg_n / fs) - mapped
        c = self.counters
        c.max_clock_error_ms = max(c.max_clock_error_ms, abs(err_s) * 1e3)
        thr = self.slip_threshold_samples / fs
        if err_s < -thr:
            acc = np.concatenate([acc[:1], acc])
            gyr = None if gyr is None else np.concatenate([gyr[:1], gyr])
            c.clock_slips += 1
        elif err_s > thr and acc.shape[0] > 1:
            acc = acc[1:]
            gyr = None if gyr is None else gyr[1:]
            c.clock_slips += 1
        return acc, gyr

    def _fix_t0(self, force: bool) -> bool:
        if self._seg_t0_s is None:
            if not force and self.clock.span_s < self.clock_warmup_s:
                return False
            self._seg_t0_s = self.clock.to_host(self._seg_t0_us * 1e-6) - self.host_t0_s
            if self._gap_last_t_s is not None:
                last = self._gap_last_t_s
                nxt = max(self._seg_t0_s, last)
                self._out.append(Gap(self.sensor_id, last, nxt))
                self.counters.gaps += 1
                self.counters.gap_s += nxt - last
                self._gap_last_t_s = None
        return True

    def _emit_pending(self, force: bool) -> None:
        if not self._seg_open or not self._pending_acc or not self._fix_t0(force):
            return
        acc = np.concatenate(self._pending_acc) if len(self._pending_acc) > 1 else self._pending_acc[0]
        gyr = None
        if not self._pending_gyr_none:
            gyr = np.concatenate(self._pending_gyr) if len(self._pending_gyr) > 1 else self._pending_gyr[0]
        block = SampleBlock(
            sensor_id=self.sensor_id,
            fs_hz=self._seg_fs,
            t0_s=self._seg_t0_s,
            first_index=self._pending_first,
            acc_ms2=acc,
            gyr_dps=gyr,
            segment=self._segment,
            frame="sensor",
        )
        self._out.append(block)
        c = self.counters
        c.blocks += 1
        if c.first_t_s != c.first_t_s:  # NaN: first block
            c.first_t_s = float(block.time_s(block.first_index))
        c.last_t_s = float(block.time_s(block.end_index - 1))
        self._pending_first += block.n
        self._pending_acc.clear()
        self._pending_gyr.clear()

    def _close_segment(self) -> None:
        if not self._seg_open:
            return
        self._emit_pending(force=True)
        if self._seg_n > 0 and self._seg_t0_s is not None:
            self._gap_last_t_s = self._seg_t0_s + (self._seg_n - 1) / self._seg_fs
        self._seg_open = False

    # ------------------------------------------------------------------ outputs
    def drain(self) -> list[SampleBlock | Gap]:
        """Finished items since the last call (samples of one read become one block)."""
        self._emit_pending(force=False)
        out, self._out = self._out, []
        return out

    def flush(self) -> list[SampleBlock | Gap]:
        """End of stream: everything still held, even before the clock has warmed up."""
        self._emit_pending(force=True)
        out, self._out = self._out, []
        return out

    @property
    def segment(self) -> int:
        return self._segment

    def health(self) -> dict[str, float | int | str]:
        h: dict[str, float | int | str] = dict(self.counters.__dict__)
        h["clock_skew_ppm"] = self.clock.skew_ppm
        if self.status is not None:
            h["battery_pct"] = self.status.battery_pct
            h["device_dropped_samples"] = self.status.dropped_samples
        if self.device_info is not None:
            h["device_name"] = self.device_info.name
        return h


FORMATS = ("auto", "binary", "text")
AUTO_DETECT_MAX_BYTES = 1024
NOTHING_DECODED_WARN_BYTES = 4096


class PortDecoder:
    """All bytes of one port -> items: mode detection, binary or text decoder, assembler.

    Sans-I/O: the live serial source, capture replay and tests feed it the same way, so a
    capture replays exactly as it was decoded live. ``fmt`` is ``binary``, ``text`` or
    ``auto`` (decided from the first bytes: binary frames contain 0x00, text never does).
    """

    def __init__(
        self,
        *,
        name: str,
        sensor_id: str,
        host_t0_s: float,
        fmt: str = "auto",
        text_fs_hz: float | None = None,
        text_acc_unit: str = "g",
        text_gyr_unit: str = "dps",
        clock_warmup_s: float = 2.0,
        clock_window_s: float = 60.0,
        slip_threshold_samples: float = 0.75,
    ):
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
        if fmt == "text" and not text_fs_hz:
            raise ValueError("text mode needs the board's sample rate (text_fs_hz)")
        self.name = name
        self.fmt = fmt
        self.text_fs_hz = text_fs_hz
        self.binary = FrameDecoder()
        self.text = TextDecoder(acc_unit=text_acc_unit, gyr_unit=text_gyr_unit)
        self.assembler = BlockAssembler(
            sensor_id=sensor_id,
            host_t0_s=host_t0_s,
            clock=ClockMap(window_s=clock_window_s),
            clock_warmup_s=clock_warmup_s,
            text_fs_hz=text_fs_hz,
            slip_threshold_samples=slip_threshold_samples,
        )
        self._detect_buf = b""
        self._warned = False

    def feed(self, data: bytes, *, host_s: float) -> list[SampleBlock | Gap]:
        """Bytes read at host time ``host_s`` -> finished items."""
        if self.fmt == "auto":
            self._detect_buf += data
            guess = looks_like_text(self._detect_buf)
            if guess is None and len(self._detect_buf) < AUTO_DETECT_MAX_BYTES:
                return []
            self.fmt = "text" if guess else "binary"
            if self.fmt == "text" and not self.text_fs_hz:
                raise DeviceError(f"{self.name}: the board sends CSV text; give its sample rate with --text-fs-hz")
            data, self._detect_buf = self._detect_buf, b""
        a = self.assembler
        if self.fmt == "binary":
            for frame in self.binary.feed(data):
                a.frame(frame, host_s=host_s)
            ok, seen = self.binary.counters.frames_ok, self.binary.counters.bytes_in
        else:
            for rows in self.text.feed(data):
                a.text(rows, host_s=host_s)
            ok, seen = self.text.counters.lines_ok, self.text.counters.bytes_in
        if not ok and seen >= NOTHING_DECODED_WARN_BYTES and not self._warned:
            self._warned = True
            log.warning("%s: %d bytes in %s mode and nothing decodes: wrong --baud, --format or device?",
                        self.name, seen, self.fmt)
        return a.drain()

    def interrupted(self) -> list[SampleBlock | Gap]:
        """The byte stream broke (port lost): partial data dropped, next samples after a Gap."""
        self.binary.reset_stream()
        self.text.reset_stream()
        self.assembler.interrupted()
        return self.assembler.drain()

    def flush(self) -> list[SampleBlock | Gap]:
        return self.assembler.flush()

    def health(self) -> dict[str, float | int | str]:
        h: dict[str, float | int | str] = {"format": self.fmt}
        h.update(self.binary.counters.as_dict() if self.fmt != "text" else self.text.counters.as_dict())
        h.update(self.assembler.health())
        return h
