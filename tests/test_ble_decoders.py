"""BLE notification decoders with byte vectors written from the specifications.

RSC Measurement (0x2A53): Bluetooth SIG Running Speed and Cadence Service 1.0 / GATT
Specification Supplement: flags (bit 0 stride length present, bit 1 total distance
present, bit 2 running), u16 speed in 1/256 m/s, u8 cadence in 1/min, u16 stride length in
1/100 m, u32 total distance in 1/10 m, little-endian.
Movesense GSP (https://movesense.com/docs/esw/gatt_sensordata_protocol): notification =
u8 response code (1 result, 2 data), u8 client reference, body; IMU6 body = u32 timestamp
(ms), n acc FloatVector3D, n gyro FloatVector3D (f32 LE).
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from firmware_bridge import movesense as ms
from firmware_bridge import rsc
from firmware_bridge.ble_decode import KINDS, START_COMMAND, kind_of, make_decoder
from firmware_bridge.protocol import Command, CommandFrame, FrameDecoder, pack_notifications
from firmware_bridge.serial_emulator import DeviceParams, device_frames, sine_signal
from pipeline.records import Gap, SampleBlock, SensorInfo

POD = SensorInfo("pod", "foot", "right")


# ----------------------------------------------------------------------------- RSC
def test_rsc_all_fields_present_running():
    # flags 0x07; speed 0x0300 = 768/256 = 3.0 m/s; cadence 0x5A = 90/min;
    # stride 0x00C8 = 200 cm = 2.00 m; distance 0x00003039 = 12345 dm = 1234.5 m
    m = rsc.decode_rsc_measurement(bytes.fromhex("07 0003 5A C800 39300000"))
    assert m == rsc.RscMeasurement(3.0, 90, 2.0, 1234.5, True)


def test_rsc_minimal_walking_and_resolution():
    # flags 0 (walking, no optional fields); speed 0x0181 = 385/256 m/s; cadence 0x78 = 120/min
    m = rsc.decode_rsc_measurement(bytes.fromhex("00 8101 78"))
    assert m.speed_mps == pytest.approx(385 / 256) and m.cadence_per_min == 120
    assert m.stride_length_m is None and m.total_distance_m is None and m.running is False


def test_rsc_distance_without_stride_uses_the_right_offset():
    # flags 0x06: distance follows the cadence directly (no stride field in between)
    m = rsc.decode_rsc_measurement(bytes.fromhex("06 0002 50 0A000000"))
    assert (m.speed_mps, m.cadence_per_min, m.stride_length_m, m.total_distance_m, m.running) == (2.0, 80, None, 1.0, True)


def test_rsc_reserved_trailing_bytes_are_ignored_and_short_values_rejected():
    assert rsc.decode_rsc_measurement(bytes.fromhex("01 0003 5A C800 FFFF")).stride_length_m == 2.0
    with pytest.raises(rsc.RscError, match="need 6 bytes, got 5"):
        rsc.decode_rsc_measurement(bytes.fromhex("01 0003 5A C8"))
    with pytest.raises(rsc.RscError, match="at least 4 bytes"):
        rsc.decode_rsc_measurement(b"\x00\x01")


def test_rsc_encode_decode_round_trip():
    b = rsc.encode_rsc_measurement(speed_mps=3.5, cadence_per_min=88, stride_length_m=2.39, total_distance_m=4321.7)
    assert b == bytes.fromhex("07 8003 58 EF00") + struct.pack("<I", 43217)
    assert rsc.decode_rsc_measurement(b) == rsc.RscMeasurement(3.5, 88, 2.39, 4321.7, True)


@pytest.mark.parametrize("counts, expect_spm", [("own_foot", 180.0), ("both_feet", 90.0)])
def test_rsc_records_carry_the_metrics_and_the_declared_cadence(counts, expect_spm):
    dec = make_decoder("rsc", sensor=POD, name="pod", options={"rsc_cadence_counts": counts})
    (r,) = dec.feed(bytes.fromhex("07 0003 5A C800 39300000"), host_s=12.5)
    assert r.sensor == POD and r.step.ic_s == 12.5 and math.isnan(r.step.to_s) and r.step.activity == "running"
    assert r.step.cadence_spm == pytest.approx(expect_spm)
    assert (r.value("speed_mps"), r.value("stride_length_m"), r.value("distance_m")) == (3.0, 2.0, 1234.5)
    assert math.isnan(r.step.contact_ms)  # a footpod does not report contact time


def test_rsc_auto_cadence_from_speed_and_stride_length():
    # 3.0 m/s with 2.0 m strides = 90 strides/min: a cadence of 90 counts the own foot
    own = rsc.RscRecordBuilder(sensor=POD)
    (r,) = own.update(rsc.RscMeasurement(3.0, 90, 2.0, None, True), t_s=1.0)
    assert own.decided == "own_foot" and r.step.cadence_spm == pytest.approx(180.0)
    # the same run reported as 180 steps/min of both feet
    both = rsc.RscRecordBuilder(sensor=POD)
    (r,) = both.update(rsc.RscMeasurement(3.0, 180, 2.0, None, True), t_s=1.0)
    assert both.decided == "both_feet" and r.step.cadence_spm == pytest.approx(180.0)
    # inconsistent numbers decide nothing; the own-foot reading is used meanwhile
    none = rsc.RscRecordBuilder(sensor=POD)
    none.update(rsc.RscMeasurement(3.0, 130, 2.0, None, True), t_s=1.0)
    assert none.decided is None


def test_rsc_gap_starts_a_new_segment_and_malformed_are_counted():
    dec = make_decoder("rsc", sensor=POD, name="pod")
    assert dec.feed(b"\x07\x00", host_s=0.0) == []
    (a,) = dec.feed(rsc.encode_rsc_measurement(speed_mps=3, cadence_per_min=90), host_s=1.0)
    dec.interrupted()
    (b,) = dec.feed(rsc.encode_rsc_measurement(speed_mps=3, cadence_per_min=90), host_s=5.0)
    assert (a.step.segment, b.step.segment) == (0, 1)
    assert dec.health()["malformed"] == 1 and dec.health()["records"] == 2


# ----------------------------------------------------------------------------- Movesense
def test_movesense_subscribe_command_bytes():
    assert ms.subscribe_command(rate_hz=104, ref=99) == b"\x01\x63Meas/IMU6/104"
    assert ms.unsubscribe_command(ref=99) == b"\x02\x63"
    with pytest.raises(ValueError, match="13, 26, 52, 104, 208, 416"):
        ms.subscribe_command(rate_hz=833)


def test_movesense_imu6_notification_layout():
    # code 2, ref 0x63, timestamp 0x000186A0 = 100000 ms, 2 samples: acc vectors first, then gyro
    acc = [(0.5, -0.25, 9.8125), (1.0, 0.0, -9.8125)]
    gyr = [(10.0, -20.0, 30.5), (0.0, 250.0, -1.5)]
    data = bytes.fromhex("02 63 A0860100") + struct.pack("<6f", *acc[0], *acc[1]) + struct.pack("<6f", *gyr[0], *gyr[1])
    assert len(data) == 6 + 2 * 24
    m = ms.decode_gsp_notification(data)
    assert isinstance(m, ms.Imu6Data) and m.ref == 0x63 and m.timestamp_ms == 100000
    np.testing.assert_array_equal(m.acc_ms2, acc)
    np.testing.assert_array_equal(m.gyr_dps, gyr)
    assert data == ms.encode_imu6_data(timestamp_ms=100000, acc_ms2=np.array(acc), gyr_dps=np.array(gyr), ref=0x63)


def test_movesense_command_result_and_bad_lengths():
    r = ms.decode_gsp_notification(bytes.fromhex("01 63 C900"))
    assert r == ms.CommandResult(0x63, 201)
    with pytest.raises(ms.GspError, match="6 \\+ 24\\*n"):
        ms.decode_gsp_notification(bytes.fromhex("02 63 A0860100") + b"\x00" * 23)
    with pytest.raises(ms.GspError, match="response code 7"):
        ms.decode_gsp_notification(b"\x07\x63\x00\x00")


def _imu6_stream(fs: int, n_notes: int, per_note: int, t0_ms: int = 5000):
    sig = sine_signal(fs_hz=fs)
    out = []
    for k in range(n_notes):
        acc, gyr = sig(k * per_note, per_note)
        ts = t0_ms + int(round(k * per_note * 1000 / fs))
        out.append(ms.encode_imu6_data(timestamp_ms=ts, acc_ms2=acc, gyr_dps=gyr))
    return out, sig


def test_movesense_stream_to_blocks_duplicates_and_gap():
    fs, per = 104, 8
    notes, sig = _imu6_stream(fs, 60, per)
    dec = make_decoder("movesense", sensor=POD, name="ms", options={"movesense_rate_hz": fs, "clock_warmup_s": 0.0})
    items = []
    for k, b in enumerate(notes):
        if k == 30:
            continue  # one lost notification: a gap
        items += dec.feed(b, host_s=10.0 + (k + 1) * per / fs)
        if k == 10:
            items += dec.feed(b, host_s=10.0 + (k + 1) * per / fs + 0.01)  # re-delivered: dropped
    items += dec.flush()
    blocks = [i for i in items if isinstance(i, SampleBlock)]
    gaps = [i for i in items if isinstance(i, Gap)]
    assert len(gaps) == 1 and gaps[0].duration_s == pytest.approx((per + 1) / fs, abs=2e-3)
    assert sum(b.n for b in blocks) == 59 * per
    acc = np.concatenate([b.acc_ms2 for b in blocks])
    want, _ = sig(0, 30 * per)
    np.testing.assert_allclose(acc[: 30 * per], want, atol=ms.ACC_SCALE_MS2 / 2 + 1e-6)
    assert {b.fs_hz for b in blocks} == {104.0}
    h = dec.health()
    assert h["duplicate_frames"] == 1 and h["gaps"] == 1


# ----------------------------------------------------------------------------- gaitwatch / NUS
@pytest.mark.parametrize("payload_max", [20, 244])  # ATT MTU 23 and 247
def test_gaitwatch_notifications_equal_the_serial_byte_stream(payload_max):
    frames = [b for _, b, _ in device_frames(DeviceParams(fs_hz=500), sine_signal(fs_hz=500), n_samples=1500)]
    notes = pack_notifications(frames, payload_max=payload_max)
    assert max(map(len, notes)) <= payload_max
    ble = make_decoder("gaitwatch", sensor=POD, name="gw")
    ser = FrameDecoder()
    serial_frames = ser.feed(b"".join(frames))
    got = []
    for n in notes:
        got += ble.dec.binary.feed(n)
    assert got == serial_frames and ble.dec.binary.counters.frames_ok == len(frames)


def test_start_command_is_a_protocol_command_frame():
    (f,) = FrameDecoder().feed(START_COMMAND)
    assert isinstance(f, CommandFrame) and f.command == Command.START


def test_kinds_are_recognised_from_advertised_services():
    assert kind_of(["6E400001-B5A3-F393-E0A9-E50E24DCCA9E"]).name == "nus"
    assert kind_of(["00001814-0000-1000-8000-00805f9b34fb"]).name == "rsc"
    assert kind_of([KINDS["gaitwatch"].service_uuid]).name == "gaitwatch"
    assert kind_of([], "Movesense 204730000081").name == "movesense"
    assert kind_of(["0000180d-0000-1000-8000-00805f9b34fb"], "HRM") is None
