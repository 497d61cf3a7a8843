"""The BLE supervisor through bleak's real BleakClient/BleakScanner façades and a TEST DOUBLE backend.

TEST DOUBLE, and why: the machine these tests run on has no Bluetooth stack (the kernel has
no CONFIG_BT, so no hci_vhci and no adapter for bluetoothd), so the backend below bleak —
BlueZ over D-Bus — is replaced by :mod:`firmware_bridge.ble_fake` (a ``BaseBleakClient`` /
``BaseBleakScanner`` subclass passed with ``backend=``, as bleak documents). The real
``BleakClient``, ``BleakScanner.find_device_by_filter``, our supervisor, its queue, the
decoders and the engine run unchanged, with real bytes and real asyncio timing. Nothing
here says anything about BlueZ itself.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from firmware_bridge import rsc
from firmware_bridge.ble_decode import KINDS
from firmware_bridge.ble_fake import FakeWorld, Script, ScriptedPeripheral
from firmware_bridge.ble_source import BleSession, BleTarget
from firmware_bridge.protocol import FrameDecoder, SamplesFrame, pack_notifications
from firmware_bridge.serial_emulator import DeviceParams, device_frames, sine_signal
from pipeline.records import Gap, SampleBlock, SensorInfo, StepRecord

LF = SensorInfo("lf", "foot", "left")
POD = SensorInfo("pod", "foot", "right")


def gaitwatch_peripheral(*, fs_hz=500, seconds=3.0, payload_max=244, script=None, name="gw-left",
                         address="AA:00:00:00:00:01"):
    frames = [b for _, b, _ in device_frames(DeviceParams(fs_hz=fs_hz), sine_signal(fs_hz=fs_hz),
                                             n_samples=int(fs_hz * seconds))]
    notes = pack_notifications(frames, payload_max=payload_max)
    k = KINDS["gaitwatch"]
    p = ScriptedPeripheral(name=name, address=address, service_uuid=k.service_uuid, notify_uuid=k.notify_uuid,
                           write_uuid=k.write_uuid, notifications=notes, interval_s=seconds / len(notes),
                           mtu=payload_max + 3, script=script)
    return p, notes


def rsc_pod(*, n=8, interval_s=0.5):
    k = KINDS["rsc"]
    notes = [rsc.encode_rsc_measurement(speed_mps=3.0, cadence_per_min=90, stride_length_m=2.0,
                                        total_distance_m=10.0 * i) for i in range(n)]
    return ScriptedPeripheral(name="footpod", address="AA:00:00:00:00:02", service_uuid=k.service_uuid,
                              notify_uuid=k.notify_uuid, write_uuid=None, notifications=notes,
                              interval_s=interval_s, needs_start=False)


def run_session(world, targets, *, seconds, **kw):
    client, scanner = world.backends()
    kw = {"scan_timeout_s": 1.0, "backoff_initial_s": 0.1, "backoff_max_s": 0.4, "options": {"clock_warmup_s": 0.5},
          **kw}
    s = BleSession(targets, host_t0_s=time.monotonic(), client_backend=client, scanner_backend=scanner, **kw).start()
    items = list(s.items(duration_s=seconds))
    return s, items


def samples_frames(notes):
    dec = FrameDecoder()
    return [f for n in notes for f in dec.feed(n) if isinstance(f, SamplesFrame)]


@pytest.mark.parametrize("payload_max", [20, 244])  # ATT MTU 23 and 247
def test_normal_stream_arrives_whole(payload_max):
    p, notes = gaitwatch_peripheral(payload_max=payload_max)
    world = FakeWorld([p])
    s, items = run_session(world, [BleTarget("gw-left", LF)], seconds=3.8)
    h = s.health()["lf"]
    assert p.finished and p.writes[0] == KINDS["gaitwatch"].start_command({})  # START after connecting
    assert h["notifications"] == len(notes) and h["connects"] == 1 and h["disconnects"] == 0
    assert (h["lost_frames"], h["duplicate_frames"], h["crc_errors"], h["gaps"]) == (0, 0, 0, 0)
    blocks = [i for i in items if isinstance(i, SampleBlock)]
    assert not [i for i in items if isinstance(i, Gap)]
    assert h["device_samples"] == 1500 and {b.segment for b in blocks} == {0}
    # handed out: the same, give or take one sample per clock-drift correction (how many
    # corrections a loaded machine's arrival jitter causes is the clock fit's business, tested
    # in test_clock_drift.py; here every sample must be accounted for)
    assert abs(sum(b.n for b in blocks) - 1500) <= h["clock_slips"]
    sent = np.vstack([f.raw for f in samples_frames(notes)])
    got = np.vstack([b.acc_ms2 for b in blocks]) / DeviceParams().acc_scale_ms2
    np.testing.assert_allclose(got[:50], sent[:50, :3], atol=1e-6)  # the very samples sent, in order
    assert h["latency_ms_max"] < 500  # enqueue -> decode while the engine is idle


def test_dropped_and_duplicated_notifications_are_counted_exactly():
    p, notes = gaitwatch_peripheral(script=Script(drop={40, 41, 70}, duplicate={10, 50, 51}))
    per_note = [samples_frames([n]) for n in notes]  # MTU 247: whole frames per notification
    s, items = run_session(FakeWorld([p]), [BleTarget("gw-left", LF)], seconds=3.8)
    h = s.health()["lf"]
    all_frames = FrameDecoder().feed(b"".join(notes))
    frames_in = {k: len(FrameDecoder().feed(notes[k])) for k in (10, 40, 41, 50, 51, 70)}
    assert len(notes) > 75
    assert h["duplicate_frames"] == frames_in[10] + frames_in[50] + frames_in[51]
    assert h["lost_frames"] == frames_in[40] + frames_in[41] + frames_in[70]
    assert h["frames_ok"] - h["duplicate_frames"] == len(all_frames) - h["lost_frames"]
    lost_samples = sum(f.n for k in (40, 41, 70) for f in per_note[k])
    got = sum(i.n for i in items if isinstance(i, SampleBlock))
    assert h["device_samples"] == 1500 - lost_samples  # every kept sample once, none twice
    assert abs(got - h["device_samples"]) <= h["clock_slips"]
    runs_with_samples = sum(1 for run in ((40, 41), (70,)) if any(per_note[k] for k in run))
    assert h["gaps"] == len([i for i in items if isinstance(i, Gap)]) == runs_with_samples >= 1


def test_peer_disconnect_reconnects_and_the_other_sensor_keeps_running():
    script = Script(disconnect_after={40: 0.8}, redeliver_on_reconnect=4)
    p, notes = gaitwatch_peripheral(seconds=4.0, script=script)
    pod = rsc_pod(n=10, interval_s=0.4)
    world = FakeWorld([p, pod])
    s, items = run_session(world, [BleTarget("gw-left", LF), BleTarget("footpod", POD)], seconds=5.5)
    h, hp = s.health()["lf"], s.health()["pod"]
    assert (h["connects"], h["reconnects"], h["disconnects"]) == (2, 1, 1)
    assert len(p.writes) == 2  # the start command was sent again after the reconnect
    redelivered = sum(len(FrameDecoder().feed(notes[k])) for k in range(37, 41))
    assert h["duplicate_frames"] == redelivered  # dropped by sequence number
    assert h["stale_notifications"] == 0
    # bleak #2002: the old client was disconnected, so only the new one is subscribed
    assert len(p.callbacks) <= 1
    gaps = [i for i in items if isinstance(i, Gap)]
    assert len(gaps) == 1 and 0.6 < gaps[0].duration_s < 1.2
    blocks = [i for i in items if isinstance(i, SampleBlock)]
    assert {b.segment for b in blocks} == {0, 1}
    # the footpod's records kept coming during the outage
    pod_t = [i.step.ic_s for i in items if isinstance(i, StepRecord)]
    assert p.finished and hp["records"] == len(pod_t) == 10 and hp["reconnects"] == 0
    assert any(gaps[0].last_t_s < t < gaps[0].next_t_s for t in pod_t)
    assert world.max_concurrent_connects == 1  # one connect at a time (BlueZ)


def test_absent_device_is_rescanned_with_bounded_backoff():
    p, _ = gaitwatch_peripheral(seconds=1.0)
    p.advertising = False
    world = FakeWorld([p])
    client, scanner = world.backends()
    s = BleSession([BleTarget("gw-left", LF)], host_t0_s=time.monotonic(), client_backend=client,
                   scanner_backend=scanner, scan_timeout_s=0.2, backoff_initial_s=0.1, backoff_max_s=0.4).start()
    items = list(s.items(duration_s=3.5))
    # each attempt: a 0.2 s scan, then a wait of 0.1, 0.2, 0.4, 0.4 ... s (doubling, capped)
    h = s.health()["lf"]
    assert items == []
    assert h["connects"] == 0 and h["scan_misses"] >= 5  # never advertised in this test
    assert world.scans == h["scan_misses"]
    assert world.scans <= 3.5 / 0.2 / 1.5  # the backoff keeps it from scanning back to back


def test_device_that_comes_into_range_late_is_found():
    p, _ = gaitwatch_peripheral(seconds=1.0)
    p.advertising = False
    world = FakeWorld([p])
    client, scanner = world.backends()
    s = BleSession([BleTarget("AA:00:00:00:00:01", LF)], host_t0_s=time.monotonic(), client_backend=client,
                   scanner_backend=scanner, scan_timeout_s=0.2, backoff_initial_s=0.1, backoff_max_s=0.4).start()
    import threading

    threading.Timer(1.0, lambda: setattr(p, "advertising", True)).start()
    items = list(s.items(duration_s=3.5))
    h = s.health()["lf"]
    assert h["connects"] == 1 and h["scan_misses"] >= 2  # found by address after it appeared
    assert s.health()["lf"]["device_samples"] == 500 and items


def test_the_double_reproduces_bleak_2002_when_the_old_client_is_not_disconnected():
    """Guards the test above: without ``disconnect()`` of the old client, every notification
    arrives twice after a reconnect (bleak issue #2002), so ``len(p.callbacks) <= 1`` and the
    exact duplicate counts there could fail."""
    import asyncio

    from bleak import BleakClient, BleakScanner

    p, notes = gaitwatch_peripheral(seconds=1.0, script=Script(disconnect_after={5: 0.2}, skip_while_down=False))
    client_cls, scanner_cls = FakeWorld([p]).backends()
    got: list[bytes] = []

    async def naive() -> None:
        for _ in range(2):  # connect, lose the link, connect again: never disconnect()
            while True:
                d = await BleakScanner.find_device_by_filter(lambda d, a: d.name == "gw-left", timeout=1.0,
                                                             backend=scanner_cls)
                if d is not None:
                    break
            c = BleakClient(d, backend=client_cls)
            await c.connect()
            await c.start_notify(KINDS["gaitwatch"].notify_uuid, lambda ch, b: got.append(bytes(b)))
            await c.write_gatt_char(KINDS["gaitwatch"].write_uuid, b"\x01", response=True)
            await asyncio.sleep(0.5)

    asyncio.run(naive())
    after = got[6:]
    assert len(p.callbacks) == 2 and len(after) >= 4 and after[0] == after[1]  # each one twice


def test_movesense_is_subscribed_and_streams_imu6_blocks():
    from firmware_bridge import movesense as ms

    fs, per, n = 104, 8, 40
    sig = sine_signal(fs_hz=fs)
    notes = [ms.encode_imu6_data(timestamp_ms=1000 + round(k * per * 1000 / fs), acc_ms2=sig(k * per, per)[0],
                                 gyr_dps=sig(k * per, per)[1]) for k in range(n)]
    k = KINDS["movesense"]
    p = ScriptedPeripheral(name="Movesense 204730000081", address="AA:00:00:00:00:05", service_uuid=k.service_uuid,
                           notify_uuid=k.notify_uuid, write_uuid=k.write_uuid, notifications=notes,
                           interval_s=per / fs)
    s, items = run_session(FakeWorld([p]), [BleTarget("Movesense 204730000081", LF)], seconds=n * per / fs + 1.0,
                           options={"movesense_rate_hz": fs, "clock_warmup_s": 0.5})
    assert p.writes == [b"\x01\x63Meas/IMU6/104"]  # GSP SUBSCRIBE, client reference 99
    h = s.health()["lf"]
    assert h["kind"] == "movesense" and h["device_samples"] == n * per and h["gaps"] == 0
    blocks = [i for i in items if isinstance(i, SampleBlock)]
    assert {b.fs_hz for b in blocks} == {104.0} and all(b.gyr_dps is not None for b in blocks)


def test_ctrl_c_with_a_slow_handler_ends_items_while_no_link_delivers():
    """Regression (CI hang in the BlueZ VM test): a SIGINT handler that outlasts the 50 ms poll
    while nothing arrives must still end ``items()``. CPython 3.11's ``SimpleQueue.get(timeout)``
    then waits for the next put() forever; with every sensor out of range that never came."""
    import os
    import signal
    import threading

    p, _ = gaitwatch_peripheral(seconds=1.0)
    p.advertising = False  # out of range: nothing is ever queued
    client, scanner = FakeWorld([p]).backends()
    s = BleSession([BleTarget("gw-left", LF)], host_t0_s=time.monotonic(), client_backend=client,
                   scanner_backend=scanner, scan_timeout_s=0.2, backoff_initial_s=0.1, backoff_max_s=0.4).start()
    stop = threading.Event()

    def on_sigint(signum, frame):
        time.sleep(0.2)  # as slow as logging was under emulation: longer than the poll
        stop.set()

    rescue = threading.Timer(10.0, lambda: s.raw.put((0, time.monotonic(), None)))  # unblocks the old bug
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        rescue.start()
        t0 = time.monotonic()
        list(s.items(stop=stop))
        took_s = time.monotonic() - t0
    finally:
        rescue.cancel()
        signal.signal(signal.SIGINT, previous)
    assert stop.is_set() and took_s < 3.0, took_s  # 0.5 s + the handler + one poll; the bug waited 10 s
    assert not s.alive
