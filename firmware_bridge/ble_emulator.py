"""BLE device emulator with Bumble: an emulated gaitwatch sensor and an RSC footpod.

    python -m firmware_bridge.ble_emulator --recording RUN.csv [--name gw-emu] [--rsc-name pod-emu]
        [--transport vhci] [--drop-at-s S --down-s S] [--linger-s S]

Bumble (https://google.github.io/bumble) runs virtual controllers on one in-process link:
one is given to the host's Bluetooth stack through ``--transport`` (``vhci``: the Linux
kernel's virtual HCI ``/dev/vhci``, module ``hci_vhci``; BlueZ then sees a new adapter
``hciN``), the others carry Bumble devices that advertise and serve GATT like real
sensors. With BlueZ running, ``gaitwatch scan`` / ``gaitwatch live --ble gw-emu`` then talk
to them through the real stack (D-Bus, bluetoothd, the kernel's HCI/L2CAP/ATT). It needs
a machine where ``/dev/vhci`` exists (root, ``modprobe hci_vhci``) — e.g. the QEMU guest of
``tests/test_ble_bluez.py``; ordinary containers without ``CONFIG_BT`` cannot.

The gaitwatch sensor plays a recording (CSV readable by ``gaitwatch replay``) in real
time as PROTOCOL.md frames, packed into notifications of ATT MTU − 3 bytes of the
connection, from the first START command on. Its clock runs on whether a host is
connected or not; frames due while no host listens are lost (the device has no buffer),
so a link drop shows as a gap. ``--drop-at-s`` / ``--down-s``: at that device time the
sensor drops the link itself and stays silent (no advertising) for that long, like a
runner's sensor out of range. The footpod sends an RSC Measurement every second.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import numpy as np

from firmware_bridge import rsc
from firmware_bridge.ble_decode import GAITWATCH_NOTIFY_UUID, GAITWATCH_SERVICE_UUID, GAITWATCH_WRITE_UUID
from firmware_bridge.protocol import pack_notifications
from firmware_bridge.serial_emulator import DeviceParams, device_frames

log = logging.getLogger(__name__)


def _adv(name: str, service_uuid: str) -> bytes:
    from bumble.core import UUID, AdvertisingData

    uu = UUID(service_uuid)
    kind = (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS if len(uu.to_bytes()) == 2
            else AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS)
    return bytes(AdvertisingData([(AdvertisingData.FLAGS, bytes([0x06])),
                                  (AdvertisingData.COMPLETE_LOCAL_NAME, name.encode()), (kind, uu.to_bytes())]))


def _device(name: str, address: str, link):
    from bumble.controller import Controller
    from bumble.device import Device
    from bumble.hci import Address
    from bumble.host import Host
    from bumble.transport.common import AsyncPipeSink

    ctrl = Controller(name, link=link)
    return Device(name, address=Address(address), host=Host(ctrl, AsyncPipeSink(ctrl)))


class GaitwatchSensor:
    def __init__(self, link, *, name: str, address: str, acc: np.ndarray, gyr: np.ndarray, fs_hz: float,
                 drop_at_s: float | None = None, down_s: float = 2.0):
        from bumble.gatt import Characteristic, CharacteristicValue, Service

        self.dev = _device(name, address, link)
        self.name = name
        self.acc, self.gyr, self.fs_hz = acc, gyr, fs_hz
        self.drop_at_s, self.down_s = drop_at_s, down_s
        self.started = asyncio.Event()
        self.connection = None
        self.sent_notifications = 0
        self.lost_frames = 0
        self.starts = 0
        self.notify = Characteristic(GAITWATCH_NOTIFY_UUID, Characteristic.Properties.NOTIFY,
                                     Characteristic.READABLE, b"")
        write = Characteristic(GAITWATCH_WRITE_UUID,
                               Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
                               Characteristic.WRITEABLE, CharacteristicValue(write=self._on_write))
        self.dev.add_service(Service(GAITWATCH_SERVICE_UUID, [self.notify, write]))
        self.dev.on("connection", self._on_connection)

    def _on_connection(self, connection) -> None:
        self.connection = connection
        connection.on("disconnection", lambda reason: self._on_disconnection(connection))
        print(f"EMU {self.name}: connected", flush=True)

    def _on_disconnection(self, connection) -> None:
        if self.connection is connection:
            self.connection = None
        print(f"EMU {self.name}: disconnected", flush=True)
        asyncio.get_running_loop().create_task(self._advertise_after(0.0 if self._dropping is None else self._dropping))

    _dropping: float | None = None

    def _on_write(self, connection, value) -> None:
        from firmware_bridge.protocol import Command, CommandFrame, FrameDecoder

        for f in FrameDecoder(track_sequence=False).feed(bytes(value)):
            if isinstance(f, CommandFrame) and f.command == Command.START:
                self.starts += 1
                print(f"EMU {self.name}: START ({self.starts})", flush=True)
                self.started.set()

    async def _advertise_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        self._dropping = None
        await self.dev.start_advertising(advertising_data=_adv(self.name, GAITWATCH_SERVICE_UUID))

    async def run(self) -> None:
        await self.dev.power_on()
        await self.dev.start_advertising(advertising_data=_adv(self.name, GAITWATCH_SERVICE_UUID))
        await self.started.wait()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        pending: list[bytes] = []
        dropped = False
        acc, gyr = self.acc, self.gyr
        for due_s, data, _ in device_frames(DeviceParams(fs_hz=self.fs_hz), lambda i, n: (acc[i:i + n], gyr[i:i + n]),
                                            n_samples=len(acc)):
            now = loop.time() - t0
            if due_s > now:
                await self._send(pending)
                pending = []
                await asyncio.sleep(due_s - now)
            if self.drop_at_s is not None and not dropped and due_s >= self.drop_at_s and self.connection:
                dropped = True
                self._dropping = self.down_s
                print(f"EMU {self.name}: dropping the link for {self.down_s} s", flush=True)
                await self.connection.disconnect()
            if self.connection is None:
                self.lost_frames += 1
                continue
            pending.append(data)
        await self._send(pending)
        print(f"EMU {self.name}: recording done, {self.sent_notifications} notifications, "
              f"{self.lost_frames} frames lost while disconnected, {self.starts} START", flush=True)

    async def _send(self, frames: list[bytes]) -> None:
        c = self.connection
        if not frames or c is None:
            return
        for note in pack_notifications(frames, payload_max=c.att_mtu - 3):
            try:
                await self.dev.notify_subscriber(c, self.notify, note)
                self.sent_notifications += 1
            except Exception as exc:  # noqa: BLE001 - the link went away mid-burst
                print(f"EMU {self.name}: notify failed: {exc}", flush=True)
                return


class RscPod:
    def __init__(self, link, *, name: str, address: str, speed_mps: float = 3.2, cadence_per_min: int = 88,
                 stride_length_m: float = 2.18):
        from bumble.gatt import Characteristic, Service

        self.dev = _device(name, address, link)
        self.name = name
        self.meas = Characteristic(rsc.RSC_MEASUREMENT_UUID, Characteristic.Properties.NOTIFY,
                                   Characteristic.READABLE, b"")
        self.dev.add_service(Service(rsc.RSC_SERVICE_UUID, [self.meas]))
        self.dev.on("connection", lambda c: print(f"EMU {name}: connected", flush=True))
        self.kw = dict(speed_mps=speed_mps, cadence_per_min=cadence_per_min, stride_length_m=stride_length_m)

    async def run(self, *, seconds: float) -> None:
        await self.dev.power_on()
        await self.dev.start_advertising(advertising_data=_adv(self.name, rsc.RSC_SERVICE_UUID), auto_restart=True)
        dist = 0.0
        for _ in range(int(seconds)):
            await asyncio.sleep(1.0)
            dist += self.kw["speed_mps"]
            await self.dev.notify_subscribers(self.meas, rsc.encode_rsc_measurement(total_distance_m=dist, **self.kw))


async def main_async(a: argparse.Namespace) -> None:
    # Import and build everything first: once /dev/vhci is open the kernel sends HCI_Reset
    # and gives the controller 10 s to answer, which slow (emulated) machines need whole.
    import bumble.controller
    import bumble.device  # noqa: F401
    import bumble.gatt  # noqa: F401
    from bumble.link import LocalLink
    from bumble.transport import open_transport

    from firmware_bridge.recording import Recording
    from pipeline.records import SampleBlock

    blocks = [b for b in Recording(a.recording).items() if isinstance(b, SampleBlock)]
    acc = np.concatenate([b.acc_ms2 for b in blocks])
    gyr = np.concatenate([b.gyr_dps for b in blocks])
    fs = blocks[0].fs_hz
    link = LocalLink()
    sensor = GaitwatchSensor(link, name=a.name, address="F0:F1:F2:F3:F4:01", acc=acc, gyr=gyr, fs_hz=fs,
                             drop_at_s=a.drop_at_s, down_s=a.down_s)
    pod = RscPod(link, name=a.rsc_name, address="F0:F1:F2:F3:F4:02") if a.rsc_name else None
    transport = await open_transport(a.transport)
    bumble.controller.Controller("host-stack", host_source=transport.source, host_sink=transport.sink, link=link)
    tasks = [asyncio.create_task(sensor.run())]
    if pod is not None:
        tasks.append(asyncio.create_task(pod.run(seconds=len(acc) / fs + a.linger_s + 600)))
    print("EMU advertising", flush=True)
    await tasks[0]
    await asyncio.sleep(a.linger_s)
    for t in tasks[1:]:
        t.cancel()
    await transport.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Bumble BLE emulator of a gaitwatch sensor (and an RSC footpod)")
    p.add_argument("--recording", required=True, help="CSV recording to stream (as gaitwatch replay reads it)")
    p.add_argument("--name", default="gw-emu")
    p.add_argument("--rsc-name", default=None, help="also emulate an RSC footpod with this name")
    p.add_argument("--transport", default="vhci", help="Bumble transport to the host stack (default vhci)")
    p.add_argument("--drop-at-s", type=float, default=None, help="drop the link at this device time")
    p.add_argument("--down-s", type=float, default=2.0, help="stay silent this long after the drop")
    p.add_argument("--linger-s", type=float, default=5.0, help="stay up this long after the recording")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async(a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
