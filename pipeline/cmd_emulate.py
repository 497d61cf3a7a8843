"""``gaitwatch emulate --serial``: a sensor emulator on a real pseudo-terminal.

    gaitwatch emulate --serial LINK [--recording REC.csv | --placement foot --side right]
                      [--fs-hz 500] [--duration-s 60] [--drift-ppm 0] [--format binary|text] [--no-gyro]

Creates a pty pair, points the symlink ``LINK`` (e.g. ``/tmp/ttyGW0``) at its slave side
and writes what a gaitwatch sensor would send (PROTOCOL.md frames, or CSV text lines) in
real time, so anyone can try ``gaitwatch live --serial LINK`` without hardware. The signal
comes from a recording (its samples in order; gaps are closed up) or from the kinematic
simulator (``pipeline.simulator``). Ctrl-C stops it and removes the link.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.records import PLACEMENTS, SIDES

log = logging.getLogger(__name__)


from pipeline.cli_types import positive_float as _positive


def _ppm(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of ppm, got {text!r}") from None
    if not abs(v) <= 1000:
        raise argparse.ArgumentTypeError(f"expected a drift within +-1000 ppm, got {text!r}")
    return v


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "emulate",
        help="emulate a sensor (serial on a pseudo-terminal, or BLE) to try live mode without hardware",
        description="Write a sensor's stream (PROTOCOL.md frames or CSV text) to a new pseudo-terminal in real "
        "time; LINK becomes a symlink to it. Read it with: gaitwatch live --serial LINK ...",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--serial", type=Path, metavar="LINK",
                       help="path of the symlink to create for the emulated port (e.g. /tmp/ttyGW0)")
    where.add_argument("--ble", metavar="NAME",
                       help="advertise a BLE gaitwatch sensor with this name through a Bluetooth controller "
                            "(Bumble on /dev/vhci; firmware_bridge/ble_emulator.py); read it with "
                            "gaitwatch live --ble NAME")
    p.add_argument("--recording", type=Path, default=None, metavar="REC.csv",
                   help="send this recording's samples (default: simulate a run)")
    p.add_argument("--placement", choices=PLACEMENTS, default="foot", help="simulated sensor placement")
    p.add_argument("--side", choices=SIDES, default="right", help="simulated side")
    p.add_argument("--fs-hz", type=_positive, default=500.0, help="simulated sample rate (default 500)")
    p.add_argument("--duration-s", type=_positive, default=60.0, help="simulated duration (default 60 s)")
    p.add_argument("--drift-ppm", type=_ppm, default=0.0, help="device clock error in ppm (default 0)")
    p.add_argument("--format", choices=("binary", "text"), default="binary", help="what to send (default binary)")
    p.add_argument("--no-gyro", action="store_true", help="accelerometer only")
    return p


def _signal(args: argparse.Namespace):
    from firmware_bridge.serial_emulator import simulator_signal

    if args.recording is None:
        from pipeline.simulator import SimParams

        params = SimParams(placement=args.placement, side=args.side, fs_hz=args.fs_hz,
                           duration_s=args.duration_s)
        sig, n = simulator_signal(params)
        return sig, n, args.fs_hz, not args.no_gyro
    import numpy as np

    from firmware_bridge.recording import Recording
    from pipeline.records import Gap

    rec = Recording(args.recording)
    acc, gyr, gaps = [], [], 0
    for it in rec.items():
        if isinstance(it, Gap):
            gaps += 1
            continue
        acc.append(it.acc_ms2)
        if it.gyr_dps is not None:
            gyr.append(it.gyr_dps)
    if not acc:
        raise ConfigError(f"{args.recording}: the recording has no samples")
    if gaps:
        log.warning("%s: %d gaps closed up (the emulator sends one continuous stream)", args.recording, gaps)
    A = np.concatenate(acc)
    G = np.concatenate(gyr) if gyr and not args.no_gyro else None

    def sig(i0: int, n: int):
        return A[i0:i0 + n], None if G is None else G[i0:i0 + n]

    return sig, len(A), rec.fs_hz, G is not None


def _run_ble(args: argparse.Namespace) -> int:
    """The same emulated sensor over BLE (issue 7): Bumble needs a controller on /dev/vhci."""
    import os
    import tempfile

    from pipeline.errors import DeviceError

    if not os.path.exists("/dev/vhci"):
        raise DeviceError("emulate --ble: no Bluetooth controller here (/dev/vhci not found: load the kernel "
                          "module hci_vhci, or use emulate --serial)")
    from firmware_bridge.ble_emulator import main as ble_main

    recording = args.recording
    if recording is None:  # simulate a run into a temporary recording
        from pipeline.simulator import SimParams, write_recording

        recording = Path(tempfile.mkdtemp(prefix="gw-emu-")) / "emulated.csv"
        write_recording(SimParams(placement=args.placement, side=args.side, fs_hz=args.fs_hz,
                                  duration_s=args.duration_s, with_gyro=not args.no_gyro, stand_s=2.0), recording)
    return ble_main(["--recording", str(recording), "--name", args.ble])


def run(args: argparse.Namespace) -> int:
    if args.ble:
        return _run_ble(args)
    from firmware_bridge.serial_emulator import DeviceParams, PtyPort, device_frames, stream, text_lines

    sig, n, fs_hz, gyro = _signal(args)
    if args.format == "binary":
        chunks = device_frames(DeviceParams(fs_hz=fs_hz, gyro=gyro, drift_ppm=args.drift_ppm), sig, n_samples=n)
    else:
        chunks = text_lines(sig, fs_hz=fs_hz, n_samples=n, gyro=gyro, drift_ppm=args.drift_ppm)
    port = PtyPort(link_path=args.serial, drop_if_full=True)
    print(f"emulating a {args.format} sensor ({fs_hz:g} Hz, {'acc+gyro' if gyro else 'acc only'}, "
          f"{n / fs_hz:.1f} s) on {port.slave_name}, linked as {args.serial}", flush=True)
    if args.format == "text":
        print(f"read it with: gaitwatch live --serial {args.serial} --format text --text-fs-hz {fs_hz:g} "
              f"--placement {args.placement} --side {args.side}", file=sys.stderr, flush=True)
    stop = threading.Event()
    try:
        written = stream(port, chunks, stop=stop)
    except KeyboardInterrupt:
        print("emulator stopped", file=sys.stderr)
        return 0
    finally:
        port.close()
    print(f"sent {written} bytes", flush=True)
    return 0
