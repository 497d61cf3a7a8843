"""``gaitwatch scan``: nearby BLE devices that gaitwatch can read (name, address, RSSI, kind).

    gaitwatch scan [--timeout-s 5] [--all]

Supported devices (``firmware_bridge.ble_decode.KINDS``): gaitwatch IMUs (private service),
boards with the Nordic UART Service, Running Speed and Cadence footpods (0x1814) and
Movesense sensors. ``--all`` also lists devices that are none of these. Use a name or an
address from the list with ``gaitwatch live --ble``.
"""

from __future__ import annotations

import argparse

from pipeline.errors import DeviceError


from pipeline.cli_types import positive_float as _positive


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("scan", help="list nearby BLE sensors gaitwatch can read",
                              description="Scan for BLE devices and list the supported ones (name, address, "
                              "RSSI, kind), to use with `gaitwatch live --ble NAME_OR_ADDRESS`.")
    p.add_argument("--timeout-s", type=_positive, default=5.0, metavar="S", help="scan time (default 5 s)")
    p.add_argument("--all", action="store_true", help="also list devices gaitwatch cannot read")
    return p


def format_found(found, *, show_all: bool) -> str:
    rows = [f for f in found if show_all or f.kind]
    if not rows:
        return "no supported BLE devices found" + ("" if show_all else " (--all lists every device seen)")
    w = max(4, *(len(f.name) for f in rows))
    lines = [f"{'name':<{w}}  {'address':<17}  {'rssi':>5}  kind"]
    for f in rows:
        lines.append(f"{f.name or '?':<{w}}  {f.address:<17}  {f.rssi:>5}  {f.kind or '-'} ({f.what})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from firmware_bridge import ble_cli
    from firmware_bridge.ble_source import scan

    backend = ble_cli.BACKENDS[1] if ble_cli.BACKENDS else None
    try:
        found = scan(timeout_s=args.timeout_s, backend=backend)
    except Exception as exc:  # bleak raises backend-specific errors (no adapter, no D-Bus, BlueZ off)
        if exc.__class__.__module__.startswith(("bleak", "dbus_fast")) or isinstance(exc, (OSError, FileNotFoundError)):
            raise DeviceError(f"cannot scan for BLE devices: {exc or type(exc).__name__} "
                              "(is a Bluetooth adapter present and bluetoothd running?)") from None
        raise
    print(format_found(found, show_all=args.all))
    return 0
