"""A device emulator on a real pseudo-terminal: what a gaitwatch sensor would send on USB serial.

:class:`PtyPort` owns a real pty pair (``os.openpty``): the emulator writes to the master,
and anything that opens the slave path with pyserial sees a serial port. With ``link_path``
the port also appears under a fixed name (like udev's ``/dev/serial/by-id/...`` links), so
an unplug (:meth:`PtyPort.unplug`, both ends closed, the path vanishes) and a replug (a new
pty, the link re-pointed) look to the reader exactly like a USB device coming and going.

:func:`device_frames` produces the byte stream of the protocol (PROTOCOL.md) for a given
signal, with a device clock that may drift (``drift_ppm``) and start anywhere (to test
wrap-around of the 32-bit µs timestamp and the 16-bit sequence number);
:func:`text_lines` the plain-text CSV mode. :func:`stream` writes either in real time.
"""

from __future__ import annotations

import math
import os
import threading
import time
import tty
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_bridge.protocol import (
    MAX_SAMPLES,
    T_US_MOD,
    DeviceInfoFrame,
    SamplesFrame,
    SensorConfigFrame,
    StatusFrame,
    encode_frame,
)

G_MS2 = 9.80665

#: signal(first_sample_index, n) -> (acc_ms2 (n,3), gyr_dps (n,3) or None)
Signal = Callable[[int, int], tuple[np.ndarray, np.ndarray | None]]


def sine_signal(*, fs_hz: float, cadence_spm: float = 170.0, gyro: bool = True) -> Signal:
    """A smooth periodic stand-in for a running foot (for transport tests, not for gait truth)."""
    f = cadence_spm / 120.0  # stride frequency of one foot

    def sig(i0: int, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        t = (i0 + np.arange(n)) / fs_hz
        ph = 2 * np.pi * f * t
        acc = np.column_stack([3.0 * np.sin(ph), 1.0 * np.cos(2 * ph), G_MS2 + 8.0 * np.sin(ph + 0.3)])
        gyr = np.column_stack([20 * np.sin(ph), 300.0 * np.sin(ph + 1.0), 15 * np.cos(ph)]) if gyro else None
        return acc, gyr

    return sig


def simulator_signal(params) -> tuple[Signal, int]:
    """Samples of ``pipeline.simulator`` (the lead's kinematic simulator) as a Signal.

    ``params``: a ``pipeline.simulator.SimParams``. Returns the signal and its sample count.
    """
    from pipeline.simulator import Simulator

    _, acc, gyr = Simulator(params).signals()
    acc = np.asarray(acc)
    gyr = None if gyr is None or not getattr(params, "with_gyro", True) else np.asarray(gyr)

    def sig(i0: int, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        return acc[i0 : i0 + n], None if gyr is None else gyr[i0 : i0 + n]

    return sig, len(acc)


@dataclass(frozen=True)
class DeviceParams:
    """The emulated device. ``drift_ppm`` > 0: its clock runs fast against the host's."""

    fs_hz: float = 1000.0
    gyro: bool = True
    samples_per_frame: int | None = None  # default: as many as fit (19 / 38)
    acc_range_g: int = 16
    gyr_range_dps: int = 2000
    drift_ppm: float = 0.0
    t0_us: int = 0  # device clock at the first sample (mod 2^32)
    seq0: int = 0
    info_every_s: float = 1.0  # device info + sensor config repeated this often
    status_every_s: float = 1.0
    device_id: int = 0x6761_6974_7761_7463
    name: str = "gaitwatch-emu"

    @property
    def axes(self) -> int:
        return 6 if self.gyro else 3

    @property
    def acc_scale_ms2(self) -> float:
        return float(np.float32(self.acc_range_g * G_MS2 / 32768.0))

    @property
    def gyr_scale_dps(self) -> float:
        return float(np.float32(self.gyr_range_dps / 32768.0)) if self.gyro else 0.0


def quantize(x: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(np.round(np.asarray(x) / scale), -32768, 32767).astype(np.int16)


def device_frames(dev: DeviceParams, signal: Signal, *, n_samples: int) -> Iterator[tuple[float, bytes, object]]:
    """Yields ``(due_s, bytes, frame)`` in send order; ``due_s`` is the true (host) time,
    from the first sample, at which the device sends it (its last sample acquired)."""
    fs = dev.fs_hz
    spf = dev.samples_per_frame or MAX_SAMPLES[dev.axes]
    rate = 1.0 + dev.drift_ppm * 1e-6  # device seconds per host second
    seq = dev.seq0 % 65536
    next_info = next_status = 0.0

    def dev_us(i: float) -> int:  # device clock at sample i (device timebase: exact 1/fs)
        return (dev.t0_us + int(round(i * 1e6 / fs))) % T_US_MOD

    i = 0
    while i < n_samples:
        n = min(spf, n_samples - i)
        due = (i + n - 1) / fs / rate
        t_dev_s = (i + n - 1) / fs
        if t_dev_s >= next_info:
            for f in (
                DeviceInfoFrame(seq, dev_us(i + n - 1), dev.device_id, (1, 0, 0), dev.name),
                SensorConfigFrame(
                    (seq + 1) % 65536, dev_us(i + n - 1), int(round(fs * 1000)), dev.axes,
                    dev.acc_range_g, dev.gyr_range_dps if dev.gyro else 0, dev.acc_scale_ms2, dev.gyr_scale_dps,
                ),
            ):
                yield due, encode_frame(f), f
            seq = (seq + 2) % 65536
            next_info += dev.info_every_s
        acc, gyr = signal(i, n)
        raw = quantize(acc, dev.acc_scale_ms2)
        if dev.gyro:
            raw = np.hstack([raw, quantize(gyr, dev.gyr_scale_dps)])
        f = SamplesFrame(seq, dev_us(i), raw)
        yield due, encode_frame(f), f
        seq = (seq + 1) % 65536
        if t_dev_s >= next_status:
            f = StatusFrame(seq, dev_us(i + n - 1), 3900, 87, 0, 0, 3150)
            yield due, encode_frame(f), f
            seq = (seq + 1) % 65536
            next_status += dev.status_every_s
        i += n


def text_lines(
    signal: Signal, *, fs_hz: float, n_samples: int, t0_us: int = 0, gyro: bool = True, drift_ppm: float = 0.0
) -> Iterator[tuple[float, bytes, int]]:
    """Plain-text mode: ``t_us,ax,ay,az[,gx,gy,gz]`` in g and deg/s, one line per sample."""
    rate = 1.0 + drift_ppm * 1e-6
    chunk = 100
    for i0 in range(0, n_samples, chunk):
        n = min(chunk, n_samples - i0)
        acc, gyr = signal(i0, n)
        for k in range(n):
            i = i0 + k
            t_us = (t0_us + int(round(i * 1e6 / fs_hz))) % T_US_MOD
            a = acc[k] / G_MS2
            vals = [f"{a[0]:.5f}", f"{a[1]:.5f}", f"{a[2]:.5f}"]
            if gyro:
                vals += [f"{v:.3f}" for v in gyr[k]]
            yield i / fs_hz / rate, (f"{t_us}," + ",".join(vals) + "\r\n").encode(), i


class PtyPort:
    """A real pty pair; pyserial opens :attr:`path` (the slave, or ``link_path`` if given)."""

    def __init__(self, *, link_path: str | Path | None = None, drop_if_full: bool = False):
        self.link_path = Path(link_path) if link_path is not None else None
        self.drop_if_full = drop_if_full  # like a USB device with no host reading: data is lost
        self.dropped_bytes = 0
        self.master: int | None = None
        self._slave: int | None = None
        self.slave_name = ""
        self.plug()

    @property
    def path(self) -> str:
        return str(self.link_path) if self.link_path is not None else self.slave_name

    def plug(self) -> None:
        """Create the pty (raw mode, so the line discipline passes bytes unchanged)."""
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        self.master, self._slave = master, slave
        if self.drop_if_full:
            os.set_blocking(master, False)
        self.slave_name = os.ttyname(slave)
        if self.link_path is not None:
            tmp = self.link_path.with_name(self.link_path.name + ".new")
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            os.symlink(self.slave_name, tmp)
            os.replace(tmp, self.link_path)

    def unplug(self) -> None:
        """Both ends closed: a reader gets an I/O error and the path vanishes."""
        if self.link_path is not None and self.link_path.is_symlink():
            self.link_path.unlink()
        for fd in (self.master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self._slave = None

    close = unplug

    def write(self, data: bytes) -> None:
        if self.master is None:
            raise OSError("pty is unplugged")
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                self.dropped_bytes += len(view)
                return
            view = view[n:]

    def read_available(self) -> bytes:
        """Bytes the host wrote to the device (commands), without blocking."""
        import select

        if self.master is None:
            return b""
        out = b""
        while select.select([self.master], [], [], 0)[0]:
            chunk = os.read(self.master, 4096)
            if not chunk:
                break
            out += chunk
        return out

    def __enter__(self) -> "PtyPort":
        return self

    def __exit__(self, *exc) -> None:
        self.unplug()


def stream(
    port: PtyPort,
    chunks: Iterable[tuple[float, bytes, object]],
    *,
    speed: float = 1.0,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    start_s: float | None = None,
) -> int:
    """Write each chunk at its due time (``due_s / speed`` after ``start_s``, default: now).
    Returns bytes written.

    Chunks due at the same moment are written together (one USB transfer). Streaming a
    later part of the same device with the first part's ``start_s`` keeps the device and
    host clocks consistent across an unplug.
    """
    t_start = clock() if start_s is None else start_s
    written = 0
    batch = bytearray()
    batch_due = -math.inf
    for due, data, _ in chunks:
        if stop is not None and stop.is_set():
            break
        if batch and due > batch_due:
            port.write(bytes(batch))
            written += len(batch)
            batch.clear()
        if not batch:
            wait = t_start + due / speed - clock()
            if wait > 0:
                if stop is not None:
                    if stop.wait(wait):
                        break
                else:
                    time.sleep(wait)
            batch_due = due
        batch += data
    if batch and not (stop is not None and stop.is_set()):
        port.write(bytes(batch))
        written += len(batch)
    return written
