"""``gaitwatch live --ble`` end to end with the TEST DOUBLE bleak backend (see test_ble_supervisor.py
for why: no Bluetooth stack on this machine). The command runs in-process (``pipeline.cli.main``)
so the scripted backend can be installed in ``firmware_bridge.ble_cli.BACKENDS``; everything
else — argument handling, BleakClient/BleakScanner façades, supervisor, decoders, engine,
file sink — is the production path. An emulated gaitwatch sensor streams a simulator
recording, drops the link once and comes back; an RSC footpod streams alongside.
The steps must match a replay of the same recording (outside the outage), and replaying the
notification capture of the run must give a byte-identical steps.csv.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge import ble_cli, rsc
from firmware_bridge.ble_decode import KINDS
from firmware_bridge.ble_fake import FakeWorld, Script, ScriptedPeripheral
from firmware_bridge.protocol import pack_notifications
from firmware_bridge.serial_emulator import DeviceParams, device_frames
from pipeline.cli import main

FS = 500.0


def read_steps(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    from firmware_bridge.recording import Recording
    from pipeline.records import SampleBlock
    from pipeline.simulator import SimParams, write_recording

    d = tmp_path_factory.mktemp("rec")
    path = write_recording(SimParams(placement="foot", side="right", fs_hz=FS, duration_s=8.0, sensor_id="rf"),
                           d / "run_rf.csv")
    blocks = [b for b in Recording(path).items() if isinstance(b, SampleBlock)]
    return path, np.concatenate([b.acc_ms2 for b in blocks]), np.concatenate([b.gyr_dps for b in blocks])


def test_live_ble_matches_replay_survives_a_drop_and_its_capture_replays_identically(recording, tmp_path, monkeypatch,
                                                                                      capsys):
    path, acc, gyr = recording
    assert main(["replay", str(path), "--out", str(tmp_path / "replay")]) == 0
    ref = read_steps(tmp_path / "replay" / "steps.csv")
    assert len(ref) >= 8

    frames = [b for _, b, _ in device_frames(DeviceParams(fs_hz=FS), lambda i, n: (acc[i:i + n], gyr[i:i + n]),
                                             n_samples=len(acc))]
    notes = pack_notifications(frames, payload_max=244)
    seconds = len(acc) / FS
    k = KINDS["gaitwatch"]
    drop_at = len(notes) // 2
    sensor = ScriptedPeripheral(name="gw-rf", address="C0:FF:EE:00:00:01", service_uuid=k.service_uuid,
                                notify_uuid=k.notify_uuid, write_uuid=k.write_uuid, notifications=notes,
                                interval_s=seconds / len(notes),
                                script=Script(disconnect_after={drop_at: 1.0}, redeliver_on_reconnect=3))
    kr = KINDS["rsc"]
    pod = ScriptedPeripheral(name="footpod", address="C0:FF:EE:00:00:02", service_uuid=kr.service_uuid,
                             notify_uuid=kr.notify_uuid, write_uuid=None, needs_start=False, interval_s=1.0,
                             notifications=[rsc.encode_rsc_measurement(speed_mps=3.2, cadence_per_min=88,
                                                                       stride_length_m=2.18, total_distance_m=d)
                                            for d in range(0, 90, 10)])
    monkeypatch.setattr(ble_cli, "BACKENDS", FakeWorld([sensor, pod]).backends())

    rc = main(["live", "--ble", "gw-rf", "--ble", "C0:FF:EE:00:00:02", "--placement", "foot", "--side", "right",
               "--side", "left", "--sensor-id", "rf", "--sensor-id", "pod", "--duration-s", str(seconds + 1.0),
               "--ble-scan-timeout-s", "1", "--out", str(tmp_path / "live"), "--ble-capture", str(tmp_path / "cap")])
    out = capsys.readouterr().out
    assert rc == 0 and "ble health" in out and "rf (gw-rf, gaitwatch)" in out
    assert sensor.finished and sensor.connections == 2

    rows = read_steps(tmp_path / "live" / "steps.csv")
    got = [r for r in rows if r["sensor_id"] == "rf"]
    pods = [r for r in rows if r["sensor_id"] == "pod"]
    # the footpod's metrics are rows of the same steps.csv, in their own columns; the speed at
    # the spec's 1/256 m/s resolution (3.2 m/s is sent as 819), 88 strides/min = 176 steps/min
    assert len(pods) == 9 and {r["speed_mps"] for r in pods} == {f"{819 / 256:.6g}"} and float(pods[0]["cadence_spm"]) == 176.0
    assert [float(r["distance_m"]) for r in pods] == list(range(0, 90, 10))

    session = json.loads((tmp_path / "live" / "session.json").read_text())
    h = session["extra"]["ble"]["rf"]
    assert (h["reconnects"], h["gaps"], h["crc_errors"]) == (1, 1, 0) and h["duplicate_frames"] > 0
    assert session["status"] == "complete"

    # steps: those away from the outage match the replay within one sample (clock offset removed)
    ic_ref = np.array([float(r["ic_s"]) for r in ref])
    seg0 = [r for r in got if r["segment"] == "0"]
    seg1 = [r for r in got if r["segment"] == "1"]
    assert len(seg0) >= 3 and len(seg1) >= 2
    ic0 = np.array([float(r["ic_s"]) for r in seg0])
    offset = np.median(ic0 - ic_ref[: len(ic0)])
    assert 0 < offset < 10
    assert np.abs(ic0 - ic_ref[: len(ic0)] - offset).max() <= 1.0 / FS + 1e-3
    for r in seg1:  # after the reconnect: every step is a step of the replay (its own clock fit)
        t = float(r["ic_s"]) - offset
        assert np.min(np.abs(ic_ref - t)) <= 0.02, t
    assert len(got) <= len(ref)  # nothing duplicated by the re-delivery

    # the notification capture replays through the same decoders to the very same file
    caps = sorted((tmp_path / "cap").glob("*.gwcap"))
    assert [c.name for c in caps] == ["pod.gwcap", "rf.gwcap"]
    assert main(["live", "--from-ble-capture", str(tmp_path / "cap" / "rf.gwcap"), "--from-ble-capture",
                 str(tmp_path / "cap" / "pod.gwcap"), "--out", str(tmp_path / "fromcap")]) == 0
    assert (tmp_path / "fromcap" / "steps.csv").read_bytes() == (tmp_path / "live" / "steps.csv").read_bytes()


def test_ble_options_are_checked(tmp_path):
    assert main(["live", "--ble", "a", "--ble", "b", "--ble-kind", "rsc", "--ble-kind", "nus", "--ble-kind", "rsc",
                 "--placement", "foot", "--side", "left", "--out", str(tmp_path)]) == 2
    assert main(["live", "--ble", "a", "--serial", "/dev/null", "--placement", "foot", "--side", "left",
                 "--out", str(tmp_path)]) == 2


def test_scan_lists_supported_devices_first(monkeypatch, capsys):
    kr, k = KINDS["rsc"], KINDS["gaitwatch"]
    devs = [ScriptedPeripheral(name="footpod", address="C0:FF:EE:00:00:02", service_uuid=kr.service_uuid,
                               notify_uuid=kr.notify_uuid, write_uuid=None, notifications=[], interval_s=1, rssi=-70),
            ScriptedPeripheral(name="gw-rf", address="C0:FF:EE:00:00:01", service_uuid=k.service_uuid,
                               notify_uuid=k.notify_uuid, write_uuid=None, notifications=[], interval_s=1, rssi=-50),
            ScriptedPeripheral(name="kettle", address="C0:FF:EE:00:00:03", service_uuid="0000ffe0-0000-1000-8000-00805f9b34fb",
                               notify_uuid="0000ffe1-0000-1000-8000-00805f9b34fb", write_uuid=None, notifications=[],
                               interval_s=1, rssi=-40)]
    monkeypatch.setattr(ble_cli, "BACKENDS", FakeWorld(devs).backends())
    assert main(["scan", "--timeout-s", "0.3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("gw-rf") and "gaitwatch" in lines[1] and "-50" in lines[1]
    assert lines[2].startswith("footpod") and "rsc" in lines[2] and len(lines) == 3  # kettle not listed
    assert main(["scan", "--timeout-s", "0.3", "--all"]) == 0
    assert "kettle" in capsys.readouterr().out


def test_ble_health_becomes_valid_influx_health_points():
    from pipeline import lineprotocol as lp
    from pipeline.records import SessionInfo

    session = SessionInfo("s1", "ann", 1_700_000_000_000_000_000)
    lines: list[str] = []

    class Sink:  # the InfluxSink.write_health signature, encoding with the real line protocol
        def write_health(self, *, t_s, component, values, sensor=""):
            lines.append(lp.health_line(session=session, t_s=t_s, component=component, values=values, sensor=sensor))

    health = {"rf": {"device": "gw-rf", "connected": True, "notifications": 120, "lost_frames": 3,
                     "latency_ms_max": 4.5, "clock_skew_ppm": float("nan"), "kind": "gaitwatch"}}
    ble_cli._health_to_sinks([Sink(), object()], health, t_s=12.0)
    (line,) = lines
    assert line.startswith("gait_health,") and "component=ble" in line and "sensor=rf" in line
    assert "ble_notifications=120" in line and "ble_lost_frames=3" in line and "ble_latency_ms_max=4.5" in line
    assert "clock_skew" not in line and "connected" not in line  # NaN and flags are not numbers to plot
