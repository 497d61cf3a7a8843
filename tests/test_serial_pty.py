"""The live serial source on a REAL pty pair: the emulator writes the master side, pyserial
reads the slave path in the source's worker thread. Item level (SampleBlocks and Gaps)."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest

from firmware_bridge.protocol import SamplesFrame
from firmware_bridge.serial_emulator import (
    DeviceParams,
    PtyPort,
    device_frames,
    quantize,
    sine_signal,
    stream,
    text_lines,
)
from firmware_bridge.serial_source import LiveItems, SerialSource
from pipeline.errors import DeviceError
from pipeline.records import Gap, SampleBlock

FS = 500.0


def make_source(path: str, q: queue.Queue, **kw) -> SerialSource:
    kw.setdefault("reopen_interval_s", 0.05)
    kw.setdefault("clock_warmup_s", 0.5)
    return SerialSource(port=path, sensor_id="pty", out=q, host_t0_s=time.monotonic(), **kw)


# For the tests of framing (bytes -> every sample, in order): no clock slips. A slip is the
# assembler dropping or repeating one sample when the nominal sample times drift from the
# fitted device clock by > 0.75 periods (tests/test_protocol_stream.py and test_serial_live.py
# cover it). On a loaded machine the fit's offset can still improve by a millisecond or two
# after the 0.5-s warm-up (a read delayed at the start), and the assembler then rightly drops
# one sample to follow it: host scheduling, not framing. (Seen once in a full-suite run while
# benchmarks loaded both cores: 599 of 600 samples and no gap; a slip is the only path that
# removes a sample without a gap. Not reproduced in 12 runs beside 3 busy processes.)
NO_SLIPS = {"slip_threshold_samples": 1e6}


def play(port: PtyPort, chunks, *, speed: float = 1.0) -> threading.Thread:
    th = threading.Thread(target=stream, args=(port, chunks), kwargs={"speed": speed}, daemon=True)
    th.start()
    return th


def collect(src: SerialSource, q: queue.Queue, *, until) -> list:
    items = []
    for it in LiveItems([src], q, duration_s=10.0):
        items.append(it)
        if until(items):
            break
    src.stop()
    while not q.empty():
        items.append(q.get_nowait())
    return items


def n_samples(items) -> int:
    return sum(i.n for i in items if isinstance(i, SampleBlock))


def test_binary_stream_through_a_real_pty():
    dev = DeviceParams(fs_hz=FS)
    sig = sine_signal(fs_hz=FS)
    chunks = list(device_frames(dev, sig, n_samples=int(FS * 1.5)))
    total = sum(c[2].n for c in chunks if isinstance(c[2], SamplesFrame))
    q: queue.Queue = queue.Queue()
    with PtyPort() as port:
        src = make_source(port.path, q, **NO_SLIPS)
        src.open_once()  # opened before the device talks (pyserial flushes input on open)
        src.start()
        play(port, chunks, speed=1.0)
        items = collect(src, q, until=lambda its: n_samples(its) >= total)
    assert n_samples(items) == total
    blocks = [i for i in items if isinstance(i, SampleBlock)]
    assert not any(isinstance(i, Gap) for i in items) and {b.segment for b in blocks} == {0}
    assert [b.first_index for b in blocks] == list(np.cumsum([0] + [b.n for b in blocks[:-1]]))
    acc = np.concatenate([b.acc_ms2 for b in blocks])
    np.testing.assert_array_equal(acc, quantize(sig(0, total)[0], dev.acc_scale_ms2) * dev.acc_scale_ms2)
    h = src.health()
    assert h["format"] == "binary" and h["crc_errors"] == 0 and h["lost_frames"] == 0 and h["resyncs"] == 0
    assert h["frames_ok"] == len(chunks) and h["device_name"] == dev.name


def test_garbage_on_the_line_is_counted_and_every_frame_arrives():
    dev = DeviceParams(fs_hz=FS)
    chunks = list(device_frames(dev, sine_signal(fs_hz=FS), n_samples=int(FS * 1.5)))
    noisy = []
    for k, (due, data, f) in enumerate(chunks):
        noisy.append((due, (b"\xaa\x55noise" if k % 5 == 2 else b"") + data, f))
    total = sum(c[2].n for c in chunks if isinstance(c[2], SamplesFrame))
    q: queue.Queue = queue.Queue()
    with PtyPort() as port:
        src = make_source(port.path, q, **NO_SLIPS)
        src.open_once()
        src.start()
        play(port, noisy, speed=1.0)
        items = collect(src, q, until=lambda its: n_samples(its) >= total)
    h = src.health()
    assert n_samples(items) == total
    assert h["resyncs"] == len(chunks[2::5]) and h["lost_frames"] == 0 and h["frames_ok"] == len(chunks)


def test_hot_unplug_is_reported_reopened_and_marked_as_a_gap(tmp_path):
    dev = DeviceParams(fs_hz=FS)
    chunks = list(device_frames(dev, sine_signal(fs_hz=FS), n_samples=int(FS * 3.0)))
    before = [c for c in chunks if c[0] < 1.2]
    after = [c for c in chunks if c[0] >= 2.0]  # the device kept running meanwhile
    n_after = sum(c[2].n for c in after if isinstance(c[2], SamplesFrame))
    q: queue.Queue = queue.Queue()
    port = PtyPort(link_path=tmp_path / "ttyGW0")
    src = make_source(port.path, q)
    src.open_once()
    src.start()
    t_start = time.monotonic()
    stream(port, before, start_s=t_start)
    time.sleep(0.1)
    port.unplug()  # USB cable pulled: reader gets an I/O error, the path vanishes
    deadline = time.monotonic() + 3
    while src.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not src.connected and not (tmp_path / "ttyGW0").exists()
    time.sleep(0.3)  # reopen attempts fail meanwhile
    port.plug()  # it comes back (new pty behind the same name)
    while not src.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert src.connected
    th = threading.Thread(target=stream, args=(port, after), kwargs={"start_s": t_start}, daemon=True)
    th.start()
    items = collect(src, q, until=lambda its: any(isinstance(i, SampleBlock) and i.segment == 1 for i in its)
                    and n_samples([i for i in its if isinstance(i, SampleBlock) and i.segment == 1]) >= n_after)
    th.join()
    port.close()
    gaps = [i for i in items if isinstance(i, Gap)]
    blocks = [i for i in items if isinstance(i, SampleBlock)]
    assert len(gaps) == 1 and {b.segment for b in blocks} == {0, 1}
    k = items.index(gaps[0])
    assert all(isinstance(i, SampleBlock) and i.segment == 0 for i in items[:k])
    assert all(i.segment == 1 for i in items[k + 1 :])
    seg1 = [b for b in blocks if b.segment == 1]
    assert seg1[0].first_index == 0 and sum(b.n for b in seg1) == n_after
    assert gaps[0].duration_s == pytest.approx(0.8, abs=0.02)  # samples 1.2 .. 2.0 s are missing
    h = src.health()
    assert h["disconnects"] == 1 and h["opens"] == 2 and h["interruptions"] == 1


def test_text_mode_is_detected_and_decoded():
    sig = sine_signal(fs_hz=200.0)
    lines = list(text_lines(sig, fs_hz=200.0, n_samples=400, t0_us=77))
    q: queue.Queue = queue.Queue()
    with PtyPort() as port:
        src = make_source(port.path, q, fmt="auto", text_fs_hz=200.0, text_acc_unit="g", text_gyr_unit="dps")
        src.open_once()
        src.start()
        play(port, lines, speed=1.0)
        items = collect(src, q, until=lambda its: n_samples(its) >= 400)
    blocks = [i for i in items if isinstance(i, SampleBlock)]
    assert src.fmt == "text" and n_samples(items) == 400 and {b.fs_hz for b in blocks} == {200.0}
    acc = np.concatenate([b.acc_ms2 for b in blocks])
    np.testing.assert_allclose(acc, sig(0, 400)[0], atol=1e-4)
    assert src.health()["bad_lines"] == 0


def test_a_port_that_does_not_exist_fails_with_a_clear_error(tmp_path):
    src = make_source(str(tmp_path / "ttyNOPE"), queue.Queue())
    with pytest.raises(DeviceError, match=r"cannot open serial port .*ttyNOPE"):
        src.open_once()


def test_text_without_declared_rate_is_refused():
    with pytest.raises(ValueError, match="text_fs_hz"):
        make_source("/dev/null", queue.Queue(), fmt="text")


def test_two_sensors_share_one_host_time_base():
    # two devices whose clocks have nothing in common (one about to wrap, one drifting)
    # sample the same moment: their first samples map to the same session time
    devs = [DeviceParams(fs_hz=FS, t0_us=2**32 - 700_000, seq0=65000),
            DeviceParams(fs_hz=FS, t0_us=12_345, drift_ppm=300.0, device_id=7, name="other")]
    sig = sine_signal(fs_hz=FS)
    q: queue.Queue = queue.Queue()
    ports = [PtyPort(), PtyPort()]
    t0 = time.monotonic()
    srcs = [SerialSource(port=p.path, sensor_id=f"s{k}", out=q, host_t0_s=t0, clock_warmup_s=0.5)
            for k, p in enumerate(ports)]
    for s in srcs:
        s.open_once()
        s.start()
    chunks = [list(device_frames(d, sig, n_samples=int(FS * 1.5))) for d in devs]
    start = time.monotonic() + 0.05
    ths = [threading.Thread(target=stream, args=(p, c), kwargs={"start_s": start}) for p, c in zip(ports, chunks)]
    for th in ths:
        th.start()
    items = []
    for it in LiveItems(srcs, q, duration_s=10.0):
        items.append(it)
        got = {i.sensor_id for i in items if isinstance(i, SampleBlock)}
        if got == {"s0", "s1"}:
            break
    for th in ths:
        th.join()
    for p in ports:
        p.close()
    first = {}
    for i in items:
        if isinstance(i, SampleBlock) and i.sensor_id not in first:
            first[i.sensor_id] = i.t0_s
    assert set(first) == {"s0", "s1"}
    assert abs(first["s0"] - first["s1"]) < 1e-3
    assert abs(first["s0"] - (start - t0)) < 5e-3  # and both are where the session clock says


def test_text_board_without_declared_rate_stops_the_run_with_a_clear_error():
    lines = list(text_lines(sine_signal(fs_hz=100.0), fs_hz=100.0, n_samples=100))
    q: queue.Queue = queue.Queue()
    with PtyPort() as port:
        src = make_source(port.path, q, fmt="auto")
        src.open_once()
        src.start()
        stop = threading.Event()
        th = threading.Thread(target=stream, args=(port, lines), kwargs={"stop": stop}, daemon=True)
        th.start()
        with pytest.raises(DeviceError, match=r"sends CSV text; give its sample rate with --text-fs-hz"):
            for _ in LiveItems([src], q, duration_s=5.0):
                pass
        stop.set()
        th.join()


def test_random_fragmentation_on_the_wire_loses_nothing():
    # the same bytes written in random pieces (1..300 bytes, some a single byte) at their
    # due times: reads see partial and concatenated frames
    dev = DeviceParams(fs_hz=FS)
    chunks = list(device_frames(dev, sine_signal(fs_hz=FS), n_samples=int(FS * 1.2)))
    wire = b"".join(c[1] for c in chunks)
    ends = np.cumsum([len(c[1]) for c in chunks])
    dues = [c[0] for c in chunks]
    rng = np.random.default_rng(11)
    pieces, pos, last_k, j = [], 0, -1, 0
    while pos < len(wire):
        n = int(rng.choice([1, 1, 2, 7, 50, 300]))
        # a piece goes out when its last byte exists (never before the device made it);
        # pieces of the same moment are spaced by 20 µs so each is its own write
        k = min(int(np.searchsorted(ends, min(pos + n, len(wire)) - 1, side="right")), len(dues) - 1)
        j = j + 1 if k == last_k else 0
        pieces.append((dues[k] + 2e-5 * j, wire[pos:pos + n], None))
        pos, last_k = pos + n, k
    total = sum(c[2].n for c in chunks if isinstance(c[2], SamplesFrame))
    q: queue.Queue = queue.Queue()
    with PtyPort() as port:
        src = make_source(port.path, q, **NO_SLIPS)
        src.open_once()
        src.start()
        th = play(port, pieces)
        items = collect(src, q, until=lambda its: n_samples(its) >= total)
        th.join()
    h = src.health()
    assert n_samples(items) == total and not any(isinstance(i, Gap) for i in items)
    assert h["frames_ok"] == len(chunks) and h["resyncs"] == 0 and h["lost_frames"] == 0
