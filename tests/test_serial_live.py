"""End to end through a real pty: an emulated sensor writes the master side, the real
``gaitwatch live --serial`` process reads the slave path, and its steps match a replay
of the same recording."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.serial_emulator import DeviceParams, PtyPort, device_frames, stream

GAITWATCH = [sys.executable, "-m", "pipeline.cli"]
FS = 500.0


def gaitwatch(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([*GAITWATCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_until_opened(proc: subprocess.Popen, slave_name: str, timeout_s: float = 20.0) -> None:
    """Block until ``proc`` holds the pty slave open (read from /proc: no guessing with sleeps)."""
    deadline = time.monotonic() + timeout_s
    fd_dir = Path(f"/proc/{proc.pid}/fd")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gaitwatch live exited early: {proc.communicate()}")
        try:
            if any(os.readlink(fd) == slave_name for fd in fd_dir.iterdir()):
                return
        except (FileNotFoundError, PermissionError, OSError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"gaitwatch live did not open {slave_name} within {timeout_s} s")


def read_steps(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    from firmware_bridge.recording import Recording
    from pipeline.records import SampleBlock
    from pipeline.simulator import SimParams, write_recording

    d = tmp_path_factory.mktemp("rec")
    path = write_recording(SimParams(placement="foot", side="right", fs_hz=FS, duration_s=9.0,
                                     sensor_id="rf"), d / "run_rf.csv")
    blocks = [b for b in Recording(path).items() if isinstance(b, SampleBlock)]
    acc = np.concatenate([b.acc_ms2 for b in blocks])
    gyr = np.concatenate([b.gyr_dps for b in blocks])
    return path, acc, gyr


def test_live_steps_match_a_replay_of_the_same_recording(recording, tmp_path):
    path, acc, gyr = recording
    replay = gaitwatch("replay", str(path), "--out", str(tmp_path / "replay"))
    out, err = replay.communicate(timeout=120)
    assert replay.returncode == 0, err
    ref = read_steps(tmp_path / "replay" / "steps.csv")
    assert len(ref) >= 8

    def sig(i0: int, n: int):
        return acc[i0:i0 + n], gyr[i0:i0 + n]

    with PtyPort(link_path=tmp_path / "ttyGW") as port:
        live = gaitwatch("live", "--serial", port.path, "--placement", "foot", "--side", "right",
                         "--sensor-id", "rf", "--out", str(tmp_path / "live"), "--capture", str(tmp_path / "cap"))
        wait_until_opened(live, port.slave_name)
        stream(port, device_frames(DeviceParams(fs_hz=FS), sig, n_samples=len(acc)))
        time.sleep(0.5)
        live.send_signal(signal.SIGINT)  # the normal way to end a live run
        out, err = live.communicate(timeout=60)
    assert live.returncode == 0, err
    assert "serial health" in out and "rf (" in out
    got = read_steps(tmp_path / "live" / "steps.csv")
    assert len(got) == len(ref), (len(got), len(ref))
    ic_live = np.array([float(r["ic_s"]) for r in got])
    ic_ref = np.array([float(r["ic_s"]) for r in ref])
    offset = np.median(ic_live - ic_ref)  # live time 0 = start of the command
    assert 0 < offset < 20
    # same steps to within one sample: int16 quantisation and clock mapping are all that differ
    assert np.abs(ic_live - ic_ref - offset).max() <= 1.0 / FS + 1e-3
    for a, b in zip(got, ref):
        assert abs(float(a["contact_ms"]) - float(b["contact_ms"])) <= 2e3 / FS + 0.1  # IC and TO one sample each
        assert a["activity"] == b["activity"] and a["segment"] == b["segment"] == "0"
    session = json.loads((tmp_path / "live" / "session.json").read_text())
    health = session["extra"]["serial"]["rf"]
    assert session["status"] == "complete" and session["extra"]["ended_by"] == "ctrl-c"
    assert health["lost_frames"] == 0 and health["crc_errors"] == 0 and health["gaps"] == 0
    assert health["device_samples"] == len(acc) and abs(health["clock_skew_ppm"]) < 200
    # a slip (one sample repeated/dropped) only corrects a start-time error of > 0.75 sample
    assert health["clock_slips"] <= 1 and health["samples"] - health["device_samples"] in (-1, 0, 1)

    # the capture of that run replays through the same decoder to the very same steps
    rep = gaitwatch("live", "--from-capture", str(tmp_path / "cap" / "rf.gwcap"), "--placement", "foot",
                    "--side", "right", "--out", str(tmp_path / "fromcap"))
    out, err = rep.communicate(timeout=120)
    assert rep.returncode == 0, err
    assert (tmp_path / "fromcap" / "steps.csv").read_bytes() == (tmp_path / "live" / "steps.csv").read_bytes()
    again = json.loads((tmp_path / "fromcap" / "session.json").read_text())["extra"]["serial"]["rf"]
    for k in ("frames_ok", "samples", "device_samples", "clock_slips", "gaps", "resyncs"):
        assert again[k] == health[k], k
    # and `gaitwatch replay FILE.gwcap` is that same path
    rep = gaitwatch("replay", str(tmp_path / "cap" / "rf.gwcap"), "--placement", "foot", "--side", "right",
                    "--out", str(tmp_path / "replaycap"))
    out, err = rep.communicate(timeout=120)
    assert rep.returncode == 0, err
    assert (tmp_path / "replaycap" / "steps.csv").read_bytes() == (tmp_path / "live" / "steps.csv").read_bytes()


def test_text_mode_with_the_emulate_command(tmp_path):
    link = tmp_path / "ttyTXT"
    emu = gaitwatch("emulate", "--serial", str(link), "--format", "text", "--fs-hz", "200",
                    "--duration-s", "30", "--placement", "foot", "--side", "left")
    try:
        deadline = time.monotonic() + 20
        while not link.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        live = gaitwatch("live", "--serial", str(link), "--placement", "foot", "--side", "left",
                         "--text-fs-hz", "200", "--duration-s", "7", "--out", str(tmp_path / "out"))
        out, err = live.communicate(timeout=60)
    finally:
        emu.send_signal(signal.SIGINT)
        emu.communicate(timeout=20)
    assert live.returncode == 0, err
    session = json.loads((tmp_path / "out" / "session.json").read_text())
    h = session["extra"]["serial"]["serial-ttyTXT"]
    assert h["format"] == "text" and h["bad_lines"] <= 1  # the first line may be cut
    assert session["extra"]["ended_by"] == "duration"
    assert session["sensors"][0]["steps"] >= 3
    assert 160 < session["sensors"][0]["running"]["cadence_spm_median"] < 180  # simulator: 170


def test_missing_port_is_one_clear_line_and_exit_2(tmp_path):
    p = gaitwatch("live", "--serial", str(tmp_path / "ttyNONE"), "--placement", "foot", "--side", "left",
                  "--duration-s", "1", "--out", str(tmp_path / "o"))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gaitwatch: error: cannot open serial port")
    assert "ttyNONE" in lines[0]


def test_per_port_options_are_checked(tmp_path):
    p = gaitwatch("live", "--serial", "/dev/null", "--serial", "/dev/zero", "--placement", "foot",
                  "--side", "left", "--side", "right", "--side", "left", "--out", str(tmp_path / "o"))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2
    assert "expected --side once or 2 times (once per --serial), got 3" in err


def test_capture_command_records_what_the_port_delivered(tmp_path):
    from firmware_bridge.serial_capture import CaptureSource
    from firmware_bridge.serial_emulator import sine_signal

    chunks = list(device_frames(DeviceParams(fs_hz=FS), sine_signal(fs_hz=FS), n_samples=int(FS * 2.5)))
    with PtyPort() as port:
        cap = gaitwatch("capture", "--serial", port.path, "--out", str(tmp_path / "x.gwcap"), "--sensor-id", "x")
        wait_until_opened(cap, port.slave_name)
        stream(port, chunks)
        time.sleep(0.3)
        cap.send_signal(signal.SIGINT)
        out, err = cap.communicate(timeout=30)
    assert cap.returncode == 0, err
    assert "x (" in out and "wrote" in out
    src = CaptureSource(tmp_path / "x.gwcap")
    n = sum(i.n for i in src.items() if hasattr(i, "n"))
    assert src.sensor_id == "x" and n == int(FS * 2.5)
    h = src.health()
    assert h["frames_ok"] == len(chunks) and h["lost_frames"] == 0 and h["resyncs"] == 0


def test_per_port_options_map_to_sensors():
    import argparse

    from pipeline.cmd_live import sensors_for
    from pipeline.errors import ConfigError

    def ns(**kw):
        base = dict(serial=["/dev/ttyACM0", "/dev/ttyACM1"], placement=["foot"], side=["left", "right"],
                    sensor_id=None, athlete="ann", from_capture=[])
        base.update(kw)
        return argparse.Namespace(**base)

    s = sensors_for(ns())
    assert [(x.sensor_id, x.placement, x.side, x.athlete) for x in s] == [
        ("serial-ttyACM0", "foot", "left", "ann"), ("serial-ttyACM1", "foot", "right", "ann")]
    s = sensors_for(ns(sensor_id=["L", "R"], placement=["foot", "shank"]))
    assert [(x.sensor_id, x.placement) for x in s] == [("L", "foot"), ("R", "shank")]
    with pytest.raises(ConfigError, match="--sensor-id must be given once per --serial port"):
        sensors_for(ns(sensor_id=["same"]))
    with pytest.raises(ConfigError, match="--side is required"):
        sensors_for(ns(side=None))
    with pytest.raises(ConfigError, match="at least one sensor"):
        sensors_for(ns(serial=[]))
