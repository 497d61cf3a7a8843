"""Raw captures (.gwcap): written with host times, replayed through the same decoder."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_bridge.protocol_stream import PortDecoder
from firmware_bridge.serial_capture import CaptureSource, CaptureWriter, read_capture
from firmware_bridge.serial_emulator import DeviceParams, device_frames, sine_signal
from pipeline.errors import InputError
from pipeline.records import Gap, SampleBlock

FS = 500.0


def host_ns(chunks, seed=0):
    """Jittered read times in ns (the file's resolution)."""
    rng = np.random.default_rng(seed)
    return [int(round((due + 2e-4 + rng.exponential(1e-3)) * 1e9)) for due, _, _ in chunks]


def write(path, chunks, *, lost_after=None):
    w = CaptureWriter(path, meta={"sensor_id": "c1", "format": "binary", "clock_warmup_s": 0.5})
    for k, ((due, data, _), h) in enumerate(zip(chunks, host_ns(chunks))):
        w.chunk(h, data)
        if k == lost_after:
            w.lost(h + 1000)
    w.close()


def test_capture_replays_to_the_items_of_a_direct_decode(tmp_path):
    chunks = list(device_frames(DeviceParams(fs_hz=FS), sine_signal(fs_hz=FS), n_samples=2000))
    write(tmp_path / "a.gwcap", chunks)
    direct = PortDecoder(name="x", sensor_id="c1", host_t0_s=0.0, fmt="binary", clock_warmup_s=0.5)
    want = []
    for (_, data, _), h in zip(chunks, host_ns(chunks)):
        want += direct.feed(data, host_s=h * 1e-9)
    want += direct.flush()
    got = list(CaptureSource(tmp_path / "a.gwcap").items())
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.t0_s == b.t0_s and a.first_index == b.first_index
        np.testing.assert_array_equal(a.acc_ms2, b.acc_ms2)


def test_lost_port_marker_becomes_a_gap(tmp_path):
    chunks = list(device_frames(DeviceParams(fs_hz=FS), sine_signal(fs_hz=FS), n_samples=3000))
    keep = [c for c in chunks if not 2.0 <= c[0] < 2.5]
    k_lost = max(k for k, c in enumerate(keep) if c[0] < 2.0)
    write(tmp_path / "b.gwcap", keep, lost_after=k_lost)
    src = CaptureSource(tmp_path / "b.gwcap")
    items = list(src.items())
    gaps = [i for i in items if isinstance(i, Gap)]
    assert len(gaps) == 1 and src.disconnects == 1
    assert gaps[0].duration_s == pytest.approx(0.5, abs=0.05)
    assert {i.segment for i in items if isinstance(i, SampleBlock)} == {0, 1}


def test_truncated_capture_keeps_whole_records_and_bad_files_are_named(tmp_path):
    chunks = list(device_frames(DeviceParams(fs_hz=FS), sine_signal(fs_hz=FS), n_samples=1000))
    write(tmp_path / "c.gwcap", chunks)
    raw = (tmp_path / "c.gwcap").read_bytes()
    (tmp_path / "cut.gwcap").write_bytes(raw[:-7])
    meta, recs = read_capture(tmp_path / "cut.gwcap")
    assert meta["sensor_id"] == "c1" and len(list(recs)) == len(chunks) - 1
    (tmp_path / "bad.gwcap").write_bytes(b"t_s,ax\n1,2\n")
    with pytest.raises(InputError, match=r"bad.gwcap: not a gaitwatch serial capture"):
        read_capture(tmp_path / "bad.gwcap")
    with pytest.raises(InputError, match="capture file not found"):
        read_capture(tmp_path / "nope.gwcap")
