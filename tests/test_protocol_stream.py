"""Frames -> SampleBlocks and Gaps: uniform segments, gaps on lost samples, duplicates, wrap,
restarts, drift, text mode. Sans-I/O (the pty tests are in test_serial_*.py)."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_bridge.protocol import FrameDecoder, SamplesFrame, StatusFrame, TextDecoder
from firmware_bridge.protocol_stream import BlockAssembler
from firmware_bridge.serial_emulator import DeviceParams, device_frames, quantize, sine_signal, text_lines
from pipeline.records import Gap, SampleBlock

FS = 500.0


def assemble(chunks, *, drop=lambda k, f: False, dup=lambda k, f: False, delay_s=3e-4, seed=0,
             warmup_s=1.0, host_t0_s=0.0, flush=True):
    """Emulator chunks -> decoder -> assembler; host time = due + delay (random jitter)."""
    rng = np.random.default_rng(seed)
    dec = FrameDecoder()
    asm = BlockAssembler(sensor_id="s1", host_t0_s=host_t0_s, clock_warmup_s=warmup_s)
    items = []
    for k, (due, data, frame) in enumerate(chunks):
        if drop(k, frame):
            continue
        host = due + delay_s + rng.exponential(1e-3)
        for f in dec.feed(data * (2 if dup(k, frame) else 1)):
            asm.frame(f, host_s=host)
        items += asm.drain()
    if flush:
        items += asm.flush()
    return items, asm, dec


def blocks_of(items):
    return [i for i in items if isinstance(i, SampleBlock)]


def check_uniform_segments(items):
    """first_index contiguous within a segment, restarting at 0 after each Gap."""
    seg, nxt, t0 = None, 0, None
    for it in items:
        if isinstance(it, Gap):
            seg = None
            continue
        if it.segment != seg:
            assert seg is None or it.segment == seg + 1
            assert it.first_index == 0, "a new segment starts at index 0"
            seg, nxt, t0 = it.segment, 0, it.t0_s
        assert it.first_index == nxt and it.t0_s == t0 and it.frame == "sensor"
        nxt = it.end_index


def test_clean_stream_is_one_uniform_segment_with_exact_values():
    dev = DeviceParams(fs_hz=FS)
    sig = sine_signal(fs_hz=FS)
    items, asm, dec = assemble(device_frames(dev, sig, n_samples=5000))
    blocks = blocks_of(items)
    assert not any(isinstance(i, Gap) for i in items)
    check_uniform_segments(items)
    assert {b.segment for b in blocks} == {0} and sum(b.n for b in blocks) == 5000
    acc = np.concatenate([b.acc_ms2 for b in blocks])
    gyr = np.concatenate([b.gyr_dps for b in blocks])
    a_true, g_true = sig(0, 5000)
    np.testing.assert_array_equal(acc, quantize(a_true, dev.acc_scale_ms2) * dev.acc_scale_ms2)
    np.testing.assert_array_equal(gyr, quantize(g_true, dev.gyr_scale_dps) * dev.gyr_scale_dps)
    assert np.abs(acc - a_true).max() <= dev.acc_scale_ms2  # units: m/s², deg/s
    assert blocks[0].fs_hz == FS
    assert 0 <= blocks[0].t0_s < 1e-3  # true time 0, plus the minimum delay
    assert asm.counters.samples == 5000 and dec.counters.lost_frames == 0


def test_nothing_is_emitted_before_the_clock_has_warmed_up():
    chunks = list(device_frames(DeviceParams(fs_hz=FS), sine_signal(fs_hz=FS), n_samples=int(FS * 3)))
    items, asm, _ = assemble([c for c in chunks if c[0] < 0.5], flush=False)
    assert items == []  # 0.5 s < clock_warmup_s = 1 s: held back
    items, _, _ = assemble([c for c in chunks if c[0] < 0.5], flush=True)
    assert sum(b.n for b in blocks_of(items)) > 0.45 * FS  # flush hands over what was held


@pytest.mark.parametrize("drift_ppm", [-100.0, 100.0])
def test_segment_start_times_within_1ms_under_drift(drift_ppm):
    dev = DeviceParams(fs_hz=FS, drift_ppm=drift_ppm, t0_us=123_456_789)
    chunks = list(device_frames(dev, sine_signal(fs_hz=FS), n_samples=int(FS * 120)))
    lost_at = int(FS * 100) // 19  # a samples frame lost after 100 s
    sample_frames = [k for k, c in enumerate(chunks) if isinstance(c[2], SamplesFrame)]
    victim = sample_frames[lost_at]
    items, asm, _ = assemble(chunks, drop=lambda k, f: k == victim, seed=2)
    check_uniform_segments(items)
    gaps = [i for i in items if isinstance(i, Gap)]
    assert len(gaps) == 1
    b2 = next(b for b in blocks_of(items) if b.segment == 1)
    f = chunks[victim][2]
    i_first = round(((f.t_us - dev.t0_us) * 1e-6) * FS) + f.n  # device sample index after the loss
    true_t0 = i_first / FS / (1 + drift_ppm * 1e-6)  # host time of that sample
    assert abs(b2.t0_s - true_t0) < 1e-3
    assert abs(gaps[0].next_t_s - true_t0) < 1e-3
    # the segment end 100 s in: nominal times followed the drift (10 ms by now) by
    # repeating/dropping single samples, so it is within 0.75 sample + map error of truth
    true_last = (i_first - f.n - 1) / FS / (1 + drift_ppm * 1e-6)
    assert abs(gaps[0].last_t_s - true_last) < 0.75 / FS + 1e-3
    assert gaps[0].duration_s == pytest.approx((f.n + 1) / FS, abs=0.75 / FS + 1e-3)
    assert 4 <= asm.counters.clock_slips <= 8  # ~100 ppm * 120 s * 500 Hz = 6 samples
    last = blocks_of(items)[-1]
    true_end = round((chunks[-1][2].t_us - dev.t0_us) * 1e-6 * FS + chunks[-1][2].n - 1) / FS / (1 + drift_ppm * 1e-6)
    assert abs(last.t_s[-1] - true_end) < 0.75 / FS + 1e-3
    assert abs(asm.clock.skew_ppm + drift_ppm) < 20


def test_lost_samples_frame_makes_a_gap_and_a_new_segment():
    chunks = list(device_frames(DeviceParams(fs_hz=FS), sine_signal(fs_hz=FS), n_samples=4000))
    sample_k = [k for k, c in enumerate(chunks) if isinstance(c[2], SamplesFrame)]
    lost = {sample_k[60], sample_k[61], sample_k[150]}
    items, asm, dec = assemble(chunks, drop=lambda k, f: k in lost)
    check_uniform_segments(items)
    gaps = [i for i in items if isinstance(i, Gap)]
    assert len(gaps) == 2 and asm.counters.segments == 3 and dec.counters.lost_frames == 3
    n_lost = sum(chunks[k][2].n for k in lost)
    assert sum(b.n for b in blocks_of(items)) == 4000 - n_lost
    # each item is before the gap that follows it
    for g in gaps:
        k = items.index(g)
        assert items[k - 1].t_s[-1] == pytest.approx(g.last_t_s) and items[k + 1].t0_s == g.next_t_s


def test_lost_status_frame_alone_does_not_break_the_segment():
    chunks = list(device_frames(DeviceParams(fs_hz=FS), sine_signal(fs_hz=FS), n_samples=3000))
    status_k = [k for k, c in enumerate(chunks) if isinstance(c[2], StatusFrame)]
    items, asm, dec = assemble(chunks, drop=lambda k, f: k == status_k[2])
    assert dec.counters.lost_frames == 1
    assert not any(isinstance(i, Gap) for i in items) and asm.counters.segments == 1


def test_duplicates_are_dropped_and_do_not_change_the_samples():
    chunks = list(device_frames(DeviceParams(fs_hz=FS), sine_signal(fs_hz=FS), n_samples=3000))
    clean, _, _ = assemble(chunks)
    dupd, asm, dec = assemble(chunks, dup=lambda k, f: k % 4 == 1)
    assert dec.counters.duplicate_frames == len(chunks[1::4])
    assert not any(isinstance(i, Gap) for i in dupd)
    np.testing.assert_array_equal(np.concatenate([b.acc_ms2 for b in blocks_of(clean)]),
                                  np.concatenate([b.acc_ms2 for b in blocks_of(dupd)]))


def test_sequence_and_timestamp_wrap_inside_one_segment():
    # seq wraps after ~30 frames, the 32-bit µs clock 2 s in
    dev = DeviceParams(fs_hz=FS, seq0=65500, t0_us=2**32 - 2_000_000)
    items, asm, dec = assemble(device_frames(dev, sine_signal(fs_hz=FS), n_samples=3000))
    assert asm.counters.segments == 1 and not any(isinstance(i, Gap) for i in items)
    assert dec.counters.lost_frames == 0 and dec.counters.restarts == 0
    assert sum(b.n for b in blocks_of(items)) == 3000


def test_device_restart_resets_the_clock_and_starts_a_segment():
    sig = sine_signal(fs_hz=FS)
    a = [(due, d, f) for due, d, f in device_frames(DeviceParams(fs_hz=FS, seq0=4000, t0_us=9_000_000), sig, n_samples=1500)]
    b = [(due + 3.5, d, f) for due, d, f in device_frames(DeviceParams(fs_hz=FS), sig, n_samples=1500)]
    items, asm, dec = assemble(a + b)
    check_uniform_segments(items)
    gaps = [i for i in items if isinstance(i, Gap)]
    assert dec.counters.restarts == 1 and asm.counters.restarts == 1 and len(gaps) == 1
    b2 = next(x for x in blocks_of(items) if x.segment == 1)
    assert abs(b2.t0_s - 3.5) < 1e-3  # mapped with the fresh clock
    assert sum(x.n for x in blocks_of(items)) == 3000


def test_samples_before_the_first_config_are_dropped_and_counted():
    chunks = list(device_frames(DeviceParams(fs_hz=FS, info_every_s=100.0), sine_signal(fs_hz=FS), n_samples=2000))
    items, asm, _ = assemble(chunks[2:])  # joined after the info + config frames
    assert blocks_of(items) == [] and asm.counters.samples_without_config == 2000


def test_any_split_of_the_bytes_gives_the_same_blocks():
    chunks = list(device_frames(DeviceParams(fs_hz=FS), sine_signal(fs_hz=FS), n_samples=2000))
    wire = b"".join(c[1] for c in chunks)
    rng = np.random.default_rng(1)
    out = []
    for cuts in (np.arange(0, len(wire), 1), np.sort(rng.integers(0, len(wire), 50))):
        edges = [0, *cuts.tolist(), len(wire)]
        dec, asm, items = FrameDecoder(), BlockAssembler(sensor_id="s1", host_t0_s=0.0), []
        for a, b in zip(edges, edges[1:]):
            for f in dec.feed(wire[a:b]):
                asm.frame(f, host_s=f.t_us * 1e-6 + 0.001)  # same host time per frame
            items += asm.drain()
        items += asm.flush()
        out.append(items)
    a, b = (np.concatenate([x.acc_ms2 for x in blocks_of(o)]) for o in out)
    np.testing.assert_array_equal(a, b)
    assert blocks_of(out[0])[0].t0_s == blocks_of(out[1])[0].t0_s


def test_text_mode_gaps_and_duplicates():
    sig = sine_signal(fs_hz=100.0, gyro=True)
    lines = list(text_lines(sig, fs_hz=100.0, n_samples=600, t0_us=5_000_000))
    del lines[300:310]  # 10 samples missing
    lines.insert(100, lines[99])  # a repeated line
    dec = TextDecoder(acc_unit="g", gyr_unit="dps")
    asm = BlockAssembler(sensor_id="t", host_t0_s=0.0, text_fs_hz=100.0)
    items = []
    for due, data, _ in lines:
        for rows in dec.feed(data):
            asm.text(rows, host_s=due + 0.002)
        items += asm.drain()
    items += asm.flush()
    check_uniform_segments(items)
    gaps = [i for i in items if isinstance(i, Gap)]
    assert len(gaps) == 1 and gaps[0].duration_s == pytest.approx(0.11, abs=2e-3)
    assert asm.counters.duplicate_samples == 1
    blocks = blocks_of(items)
    assert sum(b.n for b in blocks) == 590
    a_true, _ = sig(0, 600)
    acc = np.concatenate([b.acc_ms2 for b in blocks])
    np.testing.assert_allclose(acc, np.delete(a_true, range(300, 310), axis=0), atol=1e-4)
    assert blocks[0].gyr_dps is not None and abs(blocks[0].t0_s) < 3e-3


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_CHUNKS = list(device_frames(DeviceParams(fs_hz=FS, seq0=65500), sine_signal(fs_hz=FS), n_samples=3000))
_SAMPLE_K = [k for k, c in enumerate(_CHUNKS) if isinstance(c[2], SamplesFrame)]


@settings(max_examples=40, deadline=None)
@given(st.sets(st.sampled_from(_SAMPLE_K[1:]), max_size=12), st.sets(st.integers(0, len(_CHUNKS) - 1), max_size=12))
def test_any_pattern_of_lost_and_repeated_frames_gives_uniform_segments(lost, dups):
    items, asm, dec = assemble(_CHUNKS, drop=lambda k, f: k in lost, dup=lambda k, f: k in dups)
    check_uniform_segments(items)
    kept = [k for k in _SAMPLE_K if k not in lost]
    # every kept sample arrives exactly once (no drift here: no clock slips)
    assert asm.counters.clock_slips == 0
    assert sum(b.n for b in blocks_of(items)) == sum(_CHUNKS[k][2].n for k in kept)
    # one gap per run of lost sample frames with kept ones after it
    runs = sum(1 for i, k in enumerate(_SAMPLE_K) if k in lost and (i == 0 or _SAMPLE_K[i - 1] not in lost)
               and any(j > k for j in kept))
    assert sum(isinstance(i, Gap) for i in items) == runs == asm.counters.segments - 1
    assert dec.counters.duplicate_frames == len(dups - lost)


def test_a_port_where_nothing_decodes_is_reported_once(caplog):
    from firmware_bridge.protocol_stream import PortDecoder

    rng = np.random.default_rng(3)
    dec = PortDecoder(name="serial /dev/ttyX", sensor_id="x", host_t0_s=0.0, fmt="auto")
    with caplog.at_level("WARNING"):
        for k in range(20):  # 921600 baud read at 115200: bytes with zeros, no valid frame
            assert dec.feed(rng.integers(0, 256, 512, dtype=np.uint8).tobytes(), host_s=k * 0.01) == []
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "nothing decodes: wrong --baud, --format or device?" in msgs[0]
    assert dec.fmt == "binary" and dec.health()["resyncs"] > 10


_TEXT = b"".join(d for _, d, _ in text_lines(sine_signal(fs_hz=100.0), fs_hz=100.0, n_samples=400, t0_us=2**32 - 1_000_000))
_TEXT = _TEXT.replace(b"\r\n", b"\n", 50)  # mixed line ends
_TEXT_LINES = _TEXT.split(b"\n")
_TEXT = b"\n".join(_TEXT_LINES[:150] + _TEXT_LINES[160:]) + b"\n"  # 10 samples missing: one gap


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, len(_TEXT)), max_size=40))
def test_text_mode_samples_and_gaps_do_not_depend_on_how_the_bytes_arrive(cuts):
    edges = [0, *sorted(cuts), len(_TEXT)]
    dec = TextDecoder(acc_unit="g", gyr_unit="dps")
    asm = BlockAssembler(sensor_id="t", host_t0_s=0.0, text_fs_hz=100.0, clock_warmup_s=0.0)
    items = []
    for a, b in zip(edges, edges[1:]):
        for rows in dec.feed(_TEXT[a:b]):
            # the board's µs clock wraps 1 s in; the host's does not
            asm.text(rows, host_s=float((rows.t_us[-1] - (2**32 - 1_000_000)) % 2**32) * 1e-6 + 0.003)
        items += asm.drain()
    items += asm.flush()
    check_uniform_segments(items)
    assert sum(b.n for b in blocks_of(items)) == 390
    assert sum(isinstance(i, Gap) for i in items) == 1
