"""`gaitwatch emulate --ble NAME`: the BLE emulator (firmware_bridge/ble_emulator.py, run for
real inside the QEMU guest by tests/test_ble_bluez.py) from the CLI."""

import os

import pytest


def test_without_a_controller_it_says_so_in_one_line(run_cli):
    if os.path.exists("/dev/vhci"):
        pytest.skip("this machine has a Bluetooth controller: the emulator itself is tested in test_ble_bluez.py")
    p = run_cli("emulate", "--ble", "gw-test", "--duration-s", "2")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "gaitwatch: error: emulate --ble: no Bluetooth controller here (/dev/vhci not found: load the kernel "
        "module hci_vhci, or use emulate --serial)"]


def test_serial_or_ble_is_required(run_cli):
    p = run_cli("emulate")
    assert p.returncode == 2 and "one of the arguments --serial --ble is required" in p.stderr
