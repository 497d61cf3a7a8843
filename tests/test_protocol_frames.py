"""Wire protocol v1: encode/decode, fragmentation, corruption and sequence accounting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.protocol import (
    BLE_MAX_PAYLOAD,
    MAX_ENCODED_FRAME,
    MAX_SAMPLES,
    CommandFrame,
    DeviceInfoFrame,
    FrameDecoder,
    ProtocolError,
    SamplesFrame,
    SensorConfigFrame,
    StatusFrame,
    TextDecoder,
    crc16,
    decode_raw,
    encode_frame,
    encode_raw,
    looks_like_text,
)

i16 = st.integers(-32768, 32767)


@st.composite
def samples_frames(draw, seq=None):
    axes = draw(st.sampled_from([3, 6]))
    n = draw(st.integers(1, MAX_SAMPLES[axes]))
    vals = draw(st.lists(i16, min_size=n * axes, max_size=n * axes))
    return SamplesFrame(
        draw(st.integers(0, 65535)) if seq is None else seq,
        draw(st.integers(0, 2**32 - 1)),
        np.array(vals, dtype=np.int16).reshape(n, axes),
    )


any_frame = st.one_of(
    samples_frames(),
    st.builds(
        DeviceInfoFrame,
        st.integers(0, 65535), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1),
        st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
        st.text(max_size=8),
    ),
    st.builds(
        SensorConfigFrame,
        st.integers(0, 65535), st.integers(0, 2**32 - 1), st.integers(1, 2**32 - 1), st.sampled_from([3, 6]),
        st.integers(0, 65535), st.integers(0, 65535),
        st.floats(width=32, allow_nan=False), st.floats(width=32, allow_nan=False),
    ),
    st.builds(
        StatusFrame,
        st.integers(0, 65535), st.integers(0, 2**32 - 1), st.integers(0, 65535), st.integers(0, 255),
        st.integers(0, 255), st.integers(0, 2**32 - 1), st.integers(-32768, 32767),
    ),
    st.builds(CommandFrame, st.integers(0, 65535), st.integers(0, 2**32 - 1), st.integers(0, 255), st.integers(0, 2**32 - 1)),
)


def make_stream(n_frames: int, *, seed: int = 0, seq0: int = 0) -> list[SamplesFrame]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_frames):
        axes = 6 if k % 3 else 3
        n = int(rng.integers(1, MAX_SAMPLES[axes] + 1))
        raw = rng.integers(-32768, 32768, size=(n, axes)).astype(np.int16)
        raw[0, 0] = 0  # zero bytes inside frames exercise COBS
        out.append(SamplesFrame((seq0 + k) % 65536, (1000 * k) % 2**32, raw))
    return out


def decode_all(chunks, **kw):
    d = FrameDecoder(**kw)
    frames = []
    for c in chunks:
        frames += d.feed(c)
    return frames, d.counters


# ----------------------------------------------------------------------------- round trip
@settings(max_examples=200, deadline=None)
@given(any_frame)
def test_round_trip_every_frame_type(frame):
    wire = encode_frame(frame)
    assert wire[-1] == 0 and 0 not in wire[:-1]
    assert len(wire) <= MAX_ENCODED_FRAME == BLE_MAX_PAYLOAD
    frames, c = decode_all([wire], track_sequence=False)
    assert frames == [frame]
    assert c.frames_ok == 1 and c.resyncs == 0


def test_largest_frames_fit_one_ble_notification():
    for axes, n in MAX_SAMPLES.items():
        big = SamplesFrame(1, 2, np.full((n, axes), -1, dtype=np.int16))  # 0xFF bytes: worst case, no zeros
        assert len(encode_frame(big)) <= 244
        with pytest.raises(ProtocolError, match="holds 1.."):
            encode_frame(SamplesFrame(1, 2, np.zeros((n + 1, axes), dtype=np.int16)))
    assert MAX_SAMPLES == {6: 19, 3: 38}


def test_crc_is_ccitt_false_check_value():
    # the catalogue check value of CRC-16/CCITT-FALSE over "123456789"
    assert crc16(b"123456789") == 0x29B1


def test_decode_raw_rejects_with_clear_messages():
    raw = encode_raw(StatusFrame(1, 2, 3, 4, 5, 6, 7))
    bad = bytearray(raw)
    bad[9] ^= 0x40
    with pytest.raises(ProtocolError, match="CRC mismatch"):
        decode_raw(bytes(bad))
    v2 = bytearray(raw[:-2])
    v2[0] = 2
    v2 = bytes(v2) + crc16(bytes(v2)).to_bytes(2, "little")
    with pytest.raises(ProtocolError, match="version 1 expected, frame says 2"):
        decode_raw(v2)
    with pytest.raises(ProtocolError, match="encode"):
        encode_frame(object())  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="unsigned 16-bit"):
        encode_frame(StatusFrame(70000, 0, 0, 0, 0, 0, 0))


# ----------------------------------------------------------------------------- fragmentation
FRAMES = make_stream(40)
WIRE = b"".join(encode_frame(f) for f in FRAMES)


def test_whole_byte_at_a_time_and_concatenated_give_the_same_frames():
    whole, c1 = decode_all([encode_frame(f) for f in FRAMES])
    bytewise, c2 = decode_all([WIRE[i : i + 1] for i in range(len(WIRE))])
    concat, c3 = decode_all([WIRE])
    assert whole == bytewise == concat == FRAMES
    for c in (c1, c2, c3):
        assert (c.frames_ok, c.resyncs, c.lost_frames, c.duplicate_frames) == (40, 0, 0, 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, len(WIRE)), max_size=60))
def test_random_splits_give_the_same_frames(cuts):
    edges = [0, *sorted(cuts), len(WIRE)]
    frames, c = decode_all([WIRE[a:b] for a, b in zip(edges, edges[1:])])
    assert frames == FRAMES
    assert c.bytes_in == len(WIRE) and c.resyncs == 0


# ----------------------------------------------------------------------------- corruption
@pytest.mark.parametrize("leading_delimiter", [False, True])
@pytest.mark.parametrize("step", [1, 7, 100000])
def test_garbage_between_frames_is_skipped_and_the_next_frame_survives(leading_delimiter, step):
    # Garbage right before a frame, with or without a 0x00 in between (PROTOCOL.md lets a
    # sender put a 0x00 before a frame): every frame survives; each run of garbage between
    # delimiters is one resync.
    pre = b"\x00" if leading_delimiter else b""
    wires = [pre + encode_frame(f) for f in FRAMES[:12]]
    junk = [b"\x13\x37garbage", b"\xff" * 50, b"\x00\x00\x00", b"abc\x00def", b"\x01" * 400, b"\x02\x05"]
    stream = b"half-of-a-frame\x00" + b"".join(junk[k % len(junk)] + w for k, w in enumerate(wires))
    expected_resyncs = 1 + sum(len([p for p in junk[k % len(junk)].split(b"\x00") if p]) for k in range(12))
    frames, c = decode_all([stream[i : i + step] for i in range(0, len(stream), step)])
    assert frames == FRAMES[:12]
    assert c.resyncs == expected_resyncs
    assert c.lost_frames == 0 and c.frames_ok == 12
    assert c.oversize == 2  # the two 400-byte runs (longer than any frame)


def test_flipped_bit_loses_exactly_that_frame():
    wires = [bytearray(encode_frame(f)) for f in FRAMES[:20]]
    hit = [3, 4, 11, 19]
    for k in hit:
        code_positions = _cobs_code_positions(bytes(wires[k]))
        pos = next(p for p in range(5, len(wires[k]) - 1) if p not in code_positions and wires[k][p] not in (0x01,))
        wires[k][pos] ^= 0x01  # never makes a 0x00 (byte was not 0x01), never a code byte
    frames, c = decode_all([bytes(w) for w in wires])
    assert [f.seq for f in frames] == [f.seq for k, f in enumerate(FRAMES[:20]) if k not in hit]
    assert c.crc_errors == 4 and c.resyncs == 4 and c.malformed == 0
    # frames 3 and 4 are adjacent: one jump of 2, then 11 and 19 (19 is last: not yet known lost)
    assert c.lost_frames == 3
    assert frames[3].lost_before == 2 and frames[9].lost_before == 1


def test_truncated_frame_is_dropped_and_the_next_survives():
    wires = [encode_frame(f) for f in FRAMES[:6]]
    stream = wires[0] + wires[1][: len(wires[1]) // 2] + wires[2] + wires[3][:-1] + wires[4] + wires[5]
    frames, c = decode_all([stream])
    # frame 1 cut: its first half lands in front of frame 2 (one chunk); frame 3 without
    # its delimiter lands in front of frame 4. The cut frames are lost, the ones after
    # them are found as the chunk's suffix.
    assert [f.seq for f in frames] == [0, 2, 4, 5]
    assert c.resyncs == 2 and c.lost_frames == 2
    assert c.bytes_discarded == len(wires[1]) // 2 + len(wires[3]) - 1


def test_oversize_run_without_delimiter_is_bounded_and_recovers():
    d = FrameDecoder()
    assert d.feed(encode_frame(FRAMES[0])) == [FRAMES[0]]
    for _ in range(100):  # 10 kB of noise without 0x00 never grows the buffer
        assert d.feed(b"\x55" * 100) == []
        assert len(d._buf) <= MAX_ENCODED_FRAME
    assert d.feed(b"\x00" + encode_frame(FRAMES[1])) == [FRAMES[1]]
    assert d.counters.oversize == 1 and d.counters.resyncs == 1
    assert d.counters.bytes_discarded == 10_000


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.data())
def test_random_corruption_never_loses_an_intact_frame(data):
    frames = FRAMES[:25]
    wires = [bytearray(encode_frame(f)) for f in frames]
    corrupted = set(data.draw(st.sets(st.integers(0, 24), max_size=8)))
    for k in corrupted:
        w = wires[k]
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, len(w) - 2))  # the delimiter itself stays
        if kind == "flip":
            w[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "cut":
            del w[pos : pos + data.draw(st.integers(1, 10))]
            if not w or w[-1] != 0:
                w.append(0)
        else:
            w[pos:pos] = data.draw(st.binary(min_size=1, max_size=8)).replace(b"\x00", b"\x01")
    # a corrupted frame may swallow its right neighbour only if its delimiter vanished;
    # the delimiter is kept, so every frame not corrupted must come out unchanged
    out, c = decode_all([bytes(w) for w in wires])
    got = {f.seq: f for f in out}
    for k, f in enumerate(frames):
        if k not in corrupted:
            assert got.get(f.seq) == f
    assert set(got) <= {f.seq for f in frames}  # no phantom frames
    assert c.frames_ok == len(out) + c.duplicate_frames
    bad = c.crc_errors + c.malformed + c.oversize + c.bad_version
    assert bad >= len(corrupted) - sum(1 for k in corrupted if got.get(frames[k].seq) == frames[k])


def _cobs_code_positions(wire: bytes) -> set[int]:
    pos, out = 0, set()
    while pos < len(wire) - 1:
        out.add(pos)
        pos += wire[pos]
    return out


# ----------------------------------------------------------------------------- sequence
def test_sequence_wrap_around_is_not_a_loss():
    frames = make_stream(20, seq0=65530)
    got, c = decode_all([b"".join(encode_frame(f) for f in frames)])
    assert got == frames and c.lost_frames == 0 and c.restarts == 0
    assert [f.seq for f in got][5:7] == [65535, 0]


def test_duplicates_are_dropped_and_lost_frames_counted_across_wrap():
    frames = make_stream(30, seq0=65520)
    order = list(range(30))
    del order[12:15]  # lost: seq 65532..65534
    order.insert(5, 4)  # BLE re-delivery of frame 4
    order += [27, 28]  # late repeats after a reconnect
    got, c = decode_all([b"".join(encode_frame(frames[k]) for k in order)])
    assert [f.seq for f in got] == [frames[k].seq for k in range(30) if not 12 <= k < 15]
    assert c.duplicate_frames == 3 and c.lost_frames == 3 and c.restarts == 0
    assert got[12].lost_before == 3


def test_device_restart_is_flagged():
    a = make_stream(10, seq0=100)
    b = [SamplesFrame(k, 1000 * k, f.raw) for k, f in enumerate(make_stream(5, seed=1))]
    got, c = decode_all([b"".join(encode_frame(f) for f in a + b)])
    assert len(got) == 15 and c.restarts == 1 and c.lost_frames == 0
    assert got[10].restart and not any(f.restart for f in got[:10] + got[11:])


# ----------------------------------------------------------------------------- text mode
TEXT = (
    b"t_us,ax,ay,az,gx,gy,gz\r\n"
    b"1000,0.0,0.0,1.0,0.0,10.0,0.0\r\n"
    b"2000,0.1,0.0,1.0,0.0,20.0,0.0\r\n"
    b"# comment\n"
    b"3000,0.2,0.0,bad,0.0,30.0,0.0\r\n"
    b"4000,0.3,0.0,1.0\r\n"
    b"5000,0.4,0.0,1.0,0.0,50.0,0.0\n"
)


def text_decode(chunks, **kw):
    d = TextDecoder(**kw)
    rows = []
    for ch in chunks:
        rows += d.feed(ch)
    t = np.concatenate([r.t_us for r in rows])
    acc = np.concatenate([r.acc_ms2 for r in rows])
    gyr = np.concatenate([r.gyr_dps for r in rows])
    return t, acc, gyr, d.counters


def test_text_lines_whole_and_byte_at_a_time():
    for chunks in ([TEXT], [TEXT[i : i + 1] for i in range(len(TEXT))]):
        t, acc, gyr, c = text_decode(chunks, acc_unit="g", gyr_unit="dps")
        assert t.tolist() == [1000, 2000, 5000]
        np.testing.assert_allclose(acc[:, 0], [0.0, 0.1 * 9.80665, 0.4 * 9.80665])
        np.testing.assert_allclose(acc[:, 2], 9.80665)
        np.testing.assert_allclose(gyr[:, 1], [10, 20, 50])
        assert (c.lines_ok, c.bad_lines, c.comment_lines) == (3, 2, 2)


def test_text_units_are_converted():
    t, acc, gyr, _ = text_decode([b"1,1,2,3,180,0,0\n"], acc_unit="ms2", gyr_unit="rads")
    np.testing.assert_allclose(acc[0], [1, 2, 3])
    np.testing.assert_allclose(gyr[0], [180 * 180 / np.pi, 0, 0])
    with pytest.raises(ValueError, match="acc_unit must be one of"):
        TextDecoder(acc_unit="furlongs")


def test_text_overlong_line_is_dropped_and_the_next_survives():
    d = TextDecoder()
    assert d.feed(b"9" * 1000) == []
    rows = d.feed(b"99\n1,0,0,1\n")
    assert rows[0].t_us.tolist() == [1] and d.counters.bad_lines == 1


def test_mode_detection():
    assert looks_like_text(TEXT) is True
    assert looks_like_text(WIRE[:300]) is False
    assert looks_like_text(b"1000,0.0") is None


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, len(TEXT)), max_size=30))
def test_text_random_splits_give_the_same_rows(cuts):
    edges = [0, *sorted(cuts), len(TEXT)]
    t, acc, gyr, c = text_decode([TEXT[a:b] for a, b in zip(edges, edges[1:])])
    t0, acc0, gyr0, c0 = text_decode([TEXT])
    assert t.tolist() == t0.tolist() and np.array_equal(acc, acc0) and np.array_equal(gyr, gyr0)
    assert c.as_dict() == c0.as_dict()


@pytest.mark.parametrize("payload_max", [244, 182, 20])
def test_ble_notifications_carry_the_same_frames(payload_max):
    from firmware_bridge.protocol import pack_notifications

    wires = [encode_frame(f) for f in FRAMES]
    notes = pack_notifications(wires, payload_max=payload_max)
    assert all(1 <= len(n) <= payload_max for n in notes)
    assert b"".join(notes) == b"".join(wires)
    if payload_max == 244:  # every frame fits: none is split, notifications are well filled
        assert all(n.endswith(b"\x00") for n in notes) and len(notes) < len(wires)
    frames, c = decode_all(notes)
    assert frames == FRAMES and c.resyncs == 0
    # a lost notification costs only the frames it touched
    k = len(notes) // 2
    frames, c = decode_all(notes[:k] + notes[k + 1 :])
    touched = {f.seq for f in FRAMES} - {f.seq for f in frames}
    assert 1 <= len(touched) <= len(notes[k]) // min(map(len, wires)) + 2
    assert c.lost_frames == len(touched)
