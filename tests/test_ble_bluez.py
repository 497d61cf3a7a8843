"""Real Bluetooth stack: ``gaitwatch live --ble`` through BlueZ inside a QEMU guest.

The host kernel here has no Bluetooth (no ``CONFIG_BT``), so the test boots Debian's
kernel (``linux-image-amd64``) with virtme-ng in QEMU (software emulation; ``/dev/kvm`` is
used by virtme-ng only if it works). Inside the guest: ``hci_vhci`` gives
``/dev/vhci``, ``dbus-daemon`` and ``bluetoothd`` (Debian's ``bluez``) run as on a
desktop, and :mod:`firmware_bridge.ble_emulator` puts Bumble virtual controllers on the
vhci: one becomes BlueZ's adapter ``hci0``, the others carry an emulated gaitwatch sensor
(streaming a simulator recording) and an RSC footpod. The project's real ``gaitwatch live
--ble`` then scans, connects, streams, loses the link (the sensor drops it and stays
silent 2 s), rescans, reconnects and resumes — bleak's BlueZ backend over D-Bus, no test
double anywhere. Its steps must match a replay of the same recording (none duplicated),
and its notification capture must replay to the same steps.csv.

Run alone with ``pytest tests/test_ble_bluez.py`` (or ``-k bluez``; ``-k "not bluez"`` leaves it out); skipped (with the reason) where QEMU,
the Debian kernel, bluez, virtme-ng or bumble are missing (``.ci/run`` installs them).
About 2–4 min: the guest runs Python under software emulation.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


REPO = Path(__file__).resolve().parents[1]
FS = 200.0
BIN = Path(sys.executable).parent


def _missing() -> str | None:
    kernels = sorted(glob.glob("/boot/vmlinuz-*"))
    checks = {
        "qemu-system-x86_64 (apt qemu-system-x86)": shutil.which("qemu-system-x86_64"),
        "a Debian kernel in /boot (apt linux-image-amd64)": kernels,
        "bluetoothd (apt bluez)": os.path.exists("/usr/libexec/bluetooth/bluetoothd"),
        "dbus-daemon (apt dbus)": shutil.which("dbus-daemon"),
        "vng (pip virtme-ng)": (BIN / "vng").exists() or shutil.which("vng"),
    }
    try:
        import bumble  # noqa: F401
    except ImportError:
        checks["bumble (pip bumble)"] = False
    missing = [k for k, ok in checks.items() if not ok]
    if os.geteuid() != 0:
        missing.append("root (for hci_vhci in the guest)")
    return ", ".join(missing) or None


GUEST = r"""
set -u
OUT={out}
cd {repo}
export NUMBA_CPU_NAME=generic NUMBA_CACHE_DIR={numba_cache}
modprobe hci_vhci || {{ echo "no hci_vhci in the guest kernel"; exit 3; }}
mkdir -p /run/dbus /var/lib/bluetooth
dbus-daemon --system --fork --nopidfile
/usr/libexec/bluetooth/bluetoothd -n > $OUT/bluetoothd.log 2>&1 &
{py} -m firmware_bridge.ble_emulator --recording {rec} --rsc-name pod-emu --drop-at-s 8 --down-s 2 --linger-s 3 \
    > $OUT/emulator.log 2>&1 &
EMU=$!
for i in $(seq 240); do [ -e /sys/class/bluetooth/hci0 ] && break; sleep 0.5; done
for i in $(seq 60); do timeout 10 bluetoothctl power on 2>&1 | grep -q succeeded && break; sleep 1; done
echo "adapter: $(timeout 10 bluetoothctl show 2>&1 | grep -E 'Controller|Powered' | tr '\n' ' ')"
{py} -X faulthandler -m pipeline.cli -v live --ble gw-emu --ble pod-emu --placement foot --side right --side left \
    --sensor-id rf --sensor-id pod --ble-scan-timeout-s 10 --out $OUT/live --ble-capture $OUT/cap \
    > $OUT/live.out 2> $OUT/live.err &
LIVE=$!
wait $EMU
kill -INT $LIVE
T_INT=$(date +%s)
for i in $(seq 90); do kill -0 $LIVE 2>/dev/null || break; sleep 1; done
kill -0 $LIVE 2>/dev/null && {{ echo "live still running 90 s after SIGINT"; kill -ABRT $LIVE; }}
wait $LIVE
echo "live rc=$? ($(( $(date +%s) - T_INT )) s after SIGINT)"
"""


def read_steps(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.skipif(bool(_missing()), reason=f"real-stack BLE test needs: {_missing()}")
def test_live_ble_through_bluez_in_a_vm(tmp_path):
    from pipeline.cli import main
    from pipeline.simulator import SimParams, write_recording

    work = Path("/tmp") / f"gw-bluez-{os.getpid()}"  # shared with the guest read-write
    shutil.rmtree(work, ignore_errors=True)
    (work / "out").mkdir(parents=True)
    rec = write_recording(SimParams(placement="foot", side="right", fs_hz=FS, duration_s=30.0, sensor_id="rf"),
                          work / "run_rf.csv")
    # the compiled kernels, built here for a generic x86-64 CPU (numba keys its cache by the CPU): the
    # guest's emulated CPU differs from this one, and compiling them under emulation took ~250 s
    numba_cache = work / "numba-cache"
    warm_env = {**os.environ, "NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": str(numba_cache)}
    subprocess.run([sys.executable, "-m", "pipeline.warmup"], cwd=REPO, env=warm_env, check=True, timeout=600)
    (work / "guest.sh").write_text(GUEST.format(out=work / "out", repo=REPO, py=sys.executable, rec=rec,
                                                numba_cache=numba_cache))
    kernel = sorted(glob.glob("/boot/vmlinuz-*"))[-1]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    vng = str(BIN / "vng") if (BIN / "vng").exists() else "vng"
    # -cpu Nehalem: QEMU 7.2's software emulation of the newer vector extensions crashed numpy's
    # SIMD sort (SIGSEGV in argsort) in the guest; Nehalem (SSE4.2) is numpy's baseline
    proc = subprocess.run([vng, "--disable-kvm", "-r", kernel, "--memory", "1G", "--cpus", "2", "--rwdir", str(work),
                           "--qemu-opts=-cpu Nehalem", "--exec", f"sh {work / 'guest.sh'}"],
                          capture_output=True, text=True, env=env, timeout=900)
    out = work / "out"
    shutil.copytree(out, tmp_path / "guest-out")  # the guest's logs stay with pytest's last runs
    logs = {p.name: p.read_text(errors="replace")[-3000:] for p in out.glob("*.*") if p.is_file()}
    assert "live rc=0" in proc.stdout, (proc.stdout[-3000:], proc.stderr[-3000:], logs)

    emu = (out / "emulator.log").read_text()
    assert "dropping the link" in emu and "2 START" in emu, emu  # started, dropped, restarted by gaitwatch
    session = json.loads((out / "live" / "session.json").read_text())
    h = session["extra"]["ble"]["rf"]
    assert h["kind"] == "gaitwatch" and h["reconnects"] == 1 and h["gaps"] == 1, h
    assert h["crc_errors"] == 0 and h["stale_notifications"] == 0
    assert session["extra"]["ble"]["pod"]["records"] >= 5

    assert main(["replay", str(rec), "--out", str(tmp_path / "replay")]) == 0
    ref = read_steps(tmp_path / "replay" / "steps.csv")
    rows = read_steps(out / "live" / "steps.csv")
    got = [r for r in rows if r["sensor_id"] == "rf"]
    assert [r for r in rows if r["sensor_id"] == "pod"]  # footpod metrics in the same file
    seg0 = [r for r in got if r["segment"] == "0"]
    assert len(seg0) >= 3 and [r for r in got if r["segment"] == "1"]
    ic_ref = np.array([float(r["ic_s"]) for r in ref])
    ic0 = np.array([float(r["ic_s"]) for r in seg0])
    offset = np.median(ic0 - ic_ref[: len(ic0)])
    assert np.abs(ic0 - ic_ref[: len(ic0)] - offset).max() <= 2.0 / FS  # same steps, one time base
    # after the reconnect: the same steps (one foot's steps are 0.7 s apart, so 0.1 s is an
    # unambiguous match), none twice. The new segment's start time comes from a fresh clock fit
    # over 2 s of a new connection; in this software-emulated guest, where delivery delays
    # reach seconds, it started 61 ms late in one run and the clock-slip correction (one
    # sample per 0.1 s check) walked it back: by the end it must agree with segment 0's
    # time base to within two samples.
    ic1 = np.array([float(r["ic_s"]) for r in got if r["segment"] == "1"])
    near = np.array([ic_ref[np.argmin(np.abs(ic_ref - (t - offset)))] for t in ic1])
    assert np.abs(ic1 - offset - near).max() <= 0.1
    assert len(set(near)) == len(near) and not set(near) & set(ic_ref[: len(ic0)])
    assert np.abs(ic1 - offset - near)[-5:].max() <= 2.0 / FS

    # the capture of the real-stack run replays to the same file
    assert main(["live", "--from-ble-capture", str(out / "cap" / "rf.gwcap"), "--from-ble-capture",
                 str(out / "cap" / "pod.gwcap"), "--out", str(tmp_path / "fromcap")]) == 0
    assert (tmp_path / "fromcap" / "steps.csv").read_bytes() == (out / "live" / "steps.csv").read_bytes()
    shutil.rmtree(work, ignore_errors=True)
