"""Shared test vectors: the C99 reference encoder (compiled here with the system cc) and the
Python codec must agree byte for byte, so firmware and host can never drift apart."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.protocol import (
    MAX_SAMPLES,
    DeviceInfoFrame,
    FrameDecoder,
    SamplesFrame,
    SensorConfigFrame,
    StatusFrame,
    encode_frame,
)

C_DIR = Path(__file__).resolve().parents[1] / "firmware_bridge" / "c"
CC = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (install gcc: .ci/run does)")
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror"]


def _build(tmp: Path, main: str, *extra: str) -> Path:
    exe = tmp / Path(main).stem
    subprocess.run([CC, *CFLAGS, "-o", str(exe), str(C_DIR / main), str(C_DIR / "gaitwatch_frame.c"), *extra],
                   check=True, capture_output=True)
    return exe


@pytest.fixture(scope="module")
def vectors_exe(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("c"), "vectors.c")


def random_frames(seed: int, n: int) -> list:
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        seq, t_us = int(rng.integers(0, 65536)), int(rng.integers(0, 2**32))
        kind = k % 5
        if kind in (0, 1):
            axes = 6 if kind == 0 else 3
            ns = int(rng.integers(1, MAX_SAMPLES[axes] + 1))
            raw = rng.integers(-32768, 32768, size=(ns, axes)).astype(np.int16)
            raw[rng.random(raw.shape) < 0.2] = 0
            if k % 7 == 0:
                raw[:] = [-32768, 32767, 0, -1, 1, 256][:axes]
            frames.append(SamplesFrame(seq, t_us, raw))
        elif kind == 2:
            frames.append(SensorConfigFrame(
                seq, t_us, int(rng.integers(1, 2**32)), int(rng.choice([3, 6])), int(rng.integers(0, 65536)),
                int(rng.integers(0, 65536)),
                float(np.float32(rng.uniform(1e-5, 1e-1))), float(np.float32(rng.uniform(0, 1))),
            ))
        elif kind == 3:
            frames.append(StatusFrame(seq, t_us, int(rng.integers(0, 65536)), int(rng.integers(0, 256)),
                                      int(rng.integers(0, 256)), int(rng.integers(0, 2**32)), int(rng.integers(-32768, 32768))))
        else:
            name = "".join(rng.choice(list("abcXYZ019_-"), size=int(rng.integers(1, 33))))
            frames.append(DeviceInfoFrame(seq, t_us, int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2)),
                                          tuple(int(v) for v in rng.integers(0, 256, 3)), name))
    return frames


def to_vector_line(f) -> str:
    if isinstance(f, SamplesFrame):
        return f"S {f.seq} {f.t_us} {f.axes} {f.n} " + " ".join(str(int(v)) for v in f.raw.ravel())
    if isinstance(f, SensorConfigFrame):
        # %.9g round-trips a float32 exactly through scanf("%f")
        return (f"C {f.seq} {f.t_us} {f.fs_mhz} {f.axes} {f.acc_range_g} {f.gyr_range_dps} "
                f"{f.acc_scale_ms2:.9g} {f.gyr_scale_dps:.9g}")
    if isinstance(f, StatusFrame):
        return (f"B {f.seq} {f.t_us} {f.battery_mv} {f.battery_pct} {f.flags} {f.dropped_samples} "
                f"{f.temperature_cdeg}")
    return f"I {f.seq} {f.t_us} {f.device_id} {f.fw_version[0]} {f.fw_version[1]} {f.fw_version[2]} {f.name}"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_c_encoder_output_decodes_exactly_and_matches_python_bytes(vectors_exe, seed):
    frames = random_frames(seed, 150)
    text = "\n".join(to_vector_line(f) for f in frames) + "\n"
    wire = subprocess.run([str(vectors_exe)], input=text.encode(), capture_output=True, check=True).stdout
    # byte for byte, frame by frame
    assert wire == b"".join(encode_frame(f) for f in frames)
    dec = FrameDecoder(track_sequence=False)
    got = dec.feed(wire)
    assert got == frames
    assert dec.counters.frames_ok == 150 and dec.counters.resyncs == 0


def test_c_encoder_rejects_what_the_spec_forbids(vectors_exe):
    for line in ("S 1 2 6 20 " + " ".join(["1"] * 120), "S 1 2 4 1 1 2 3 4", "C 1 2 0 6 1 1 1 1",
                 "I 1 2 3 1 1 1 " + "x" * 33):
        r = subprocess.run([str(vectors_exe)], input=line.encode() + b"\n", capture_output=True)
        assert r.returncode == 2 and r.stdout == b"", line


def test_example_sketch_builds_and_streams_decodable_frames(tmp_path):
    exe = _build(tmp_path, "example_sketch.c", "-lm")
    wire = subprocess.run([str(exe)], capture_output=True, check=True).stdout
    dec = FrameDecoder()
    frames = dec.feed(wire)
    samples = [f for f in frames if isinstance(f, SamplesFrame)]
    assert dec.counters.resyncs == 0 and dec.counters.lost_frames == 0
    assert sum(f.n for f in samples) == 3000 // 19 * 19
    t = np.concatenate([f.t_us + 1000 * np.arange(f.n) for f in samples])
    assert np.array_equal(t, 1000 * np.arange(len(t)))  # contiguous 1 kHz timestamps
    az = np.concatenate([f.raw[:, 2] for f in samples]).astype(float)
    expect = np.trunc(2048 + 1024 * np.sin(2 * np.pi * 1.4 * np.arange(len(t)) / 1000.0))
    np.testing.assert_allclose(az, expect, atol=1)
    cfg = next(f for f in frames if isinstance(f, SensorConfigFrame))
    assert cfg.fs_hz == 1000.0 and abs(cfg.acc_scale_ms2 - 9.80665 / 2048) < 1e-9
