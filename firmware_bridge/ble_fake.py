"""TEST DOUBLE: a scripted bleak backend (no radio, no BlueZ) for tests and benchmarks.

Why it exists: this project's CI machines (and the sandbox it was written in) have no
Bluetooth stack — the host kernel is built without ``CONFIG_BT``, so there is no
``hci_vhci`` / ``/dev/vhci`` and ``bluetoothd`` has no adapter. To still exercise the real
``bleak.BleakClient`` / ``bleak.BleakScanner`` façades and our supervisor, this module
implements bleak's *backend* interfaces (``BaseBleakClient``, ``BaseBleakScanner``) and
passes them with ``backend=``, as bleak documents for custom backends. Everything above the
backend — ``BleakClient.start_notify``'s callback wrapping, characteristic resolution by
UUID, ``find_device_by_filter``'s advertisement loop, our reconnect supervisor, queue,
decoders and engine — is the production code.

What it does NOT prove: anything about BlueZ, D-Bus, the kernel or a radio (connection
intervals, real MTU exchange, BlueZ's own caching). Those need the real-stack test.

:class:`ScriptedPeripheral` plays a device: it advertises a name and service UUIDs and,
once connected and started (write of a start command, or subscription for devices without
one), sends its list of notification payloads at a fixed interval in real asyncio time.
Its ``script`` can drop or duplicate notifications, drop the link after notification
``k`` (and stay out of range for a while), and re-deliver the last notifications after a
reconnect. Like BlueZ in bleak issue #2002, it keeps notifying the callbacks of a client
that was never disconnected, so a supervisor that forgets ``disconnect()`` sees every
notification twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError


@dataclass
class Script:
    drop: set[int] = field(default_factory=set)  # notification indices never sent
    duplicate: set[int] = field(default_factory=set)  # sent twice
    disconnect_after: dict[int, float] = field(default_factory=dict)  # k -> seconds out of range
    skip_while_down: bool = True  # the device kept sampling: what fell in the outage is lost
    redeliver_on_reconnect: int = 0  # last n notifications sent again after a reconnect


class ScriptedPeripheral:
    def __init__(self, *, name: str, address: str, service_uuid: str, notify_uuid: str, write_uuid: str | None,
                 notifications: list[bytes], interval_s: float, needs_start: bool = True, rssi: int = -60,
                 mtu: int = 247, script: Script | None = None):
        self.name, self.address, self.rssi, self.mtu = name, address, rssi, mtu
        self.service_uuid, self.notify_uuid, self.write_uuid = service_uuid, notify_uuid, write_uuid
        self.notifications = list(notifications)
        self.interval_s = float(interval_s)
        self.needs_start = needs_start
        self.script = script or Script()
        self.advertising = True
        self.connected_clients: list["FakeBleakClient"] = []
        self.callbacks: list[Callable[[bytearray], None]] = []  # kept after a peer drop, as BlueZ may
        self.pos = 0
        self.sent = 0
        self.writes: list[bytes] = []
        self.connections = 0
        self._task: asyncio.Task | None = None
        self._handled_disconnects: set[int] = set()
        self._resend: list[int] = []

    # -- GATT
    def services(self) -> BleakGATTServiceCollection:
        coll = BleakGATTServiceCollection()
        svc = BleakGATTService(None, 1, self.service_uuid)
        coll.add_service(svc)
        notify = BleakGATTCharacteristic(None, 2, self.notify_uuid, ["notify"], lambda: self.mtu - 3, svc)
        coll.add_characteristic(notify)
        if self.write_uuid:
            write = BleakGATTCharacteristic(None, 4, self.write_uuid, ["write", "write-without-response"],
                                            lambda: self.mtu - 3, svc)
            coll.add_characteristic(write)
        return coll

    def _start_streaming(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._stream())

    def on_write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._start_streaming()

    def on_subscribe(self, callback) -> None:
        self.callbacks.append(callback)
        if not self.needs_start:
            self._start_streaming()

    async def _stream(self) -> None:
        loop = asyncio.get_running_loop()
        t_next = loop.time()
        resend, self._resend = self._resend, []
        for k in resend:  # the device re-sends what it is unsure arrived (duplicates for the host)
            for cb in list(self.callbacks):
                cb(bytearray(self.notifications[k]))
            self.sent += 1
        while self.pos < len(self.notifications) and self.connected_clients:
            k = self.pos
            self.pos += 1
            if k not in self.script.drop:
                for _ in range(2 if k in self.script.duplicate else 1):
                    for cb in list(self.callbacks):
                        cb(bytearray(self.notifications[k]))
                    self.sent += 1
            down = self.script.disconnect_after.get(k)
            if down is not None and k not in self._handled_disconnects:
                self._handled_disconnects.add(k)
                n = self.script.redeliver_on_reconnect
                self._resend = [j for j in range(max(0, k + 1 - n), k + 1) if j not in self.script.drop]
                self._peer_disconnect()
                if self.script.skip_while_down:
                    self.pos += int(round(down / self.interval_s))
                loop.call_later(down, self._advertise_again)
                return
            t_next += self.interval_s
            delay = t_next - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif k % 64 == 63:
                await asyncio.sleep(0)

    def _peer_disconnect(self) -> None:
        self.advertising = False
        for c in list(self.connected_clients):
            c._peer_dropped()
        self.connected_clients.clear()

    def _advertise_again(self) -> None:
        self.advertising = True

    @property
    def finished(self) -> bool:
        return self.pos >= len(self.notifications)


class FakeWorld:
    """The peripherals in range. ``backends()`` gives the (client, scanner) classes for bleak."""

    def __init__(self, peripherals: list[ScriptedPeripheral] | None = None, *, adv_delay_s: float = 0.05):
        self.peripherals = list(peripherals or [])
        self.adv_delay_s = adv_delay_s
        self.scans = 0
        self.connect_attempts = 0
        self.concurrent_connects = 0
        self.max_concurrent_connects = 0

    def by_address(self, address: str) -> ScriptedPeripheral | None:
        for p in self.peripherals:
            if p.address.lower() == address.lower():
                return p
        return None

    def backends(self) -> tuple[type[BaseBleakClient], type[BaseBleakScanner]]:
        world = self

        class Client(FakeBleakClient):
            pass

        class Scanner(FakeBleakScanner):
            pass

        Client.world = world
        Scanner.world = world
        return Client, Scanner


class FakeBleakClient(BaseBleakClient):
    """TEST DOUBLE of a bleak backend client, driven by a :class:`ScriptedPeripheral`."""

    world: FakeWorld

    def __init__(self, address_or_ble_device, **kwargs: Any):
        super().__init__(address_or_ble_device, disconnected_callback=kwargs.get("disconnected_callback"),
                         timeout=kwargs.get("timeout", 10.0))
        self._connected = False
        self._peripheral: ScriptedPeripheral | None = None
        self._callbacks: list = []

    @property
    def name(self) -> str:
        return self._peripheral.name if self._peripheral else self.address

    @property
    def mtu_size(self) -> int:
        return self._peripheral.mtu if self._peripheral else 23

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        w = self.world
        w.connect_attempts += 1
        w.concurrent_connects += 1
        w.max_concurrent_connects = max(w.max_concurrent_connects, w.concurrent_connects)
        try:
            await asyncio.sleep(0.02)  # connection establishment + service discovery take time
            p = w.by_address(self.address)
            if p is None or not p.advertising:
                raise BleakError(f"Device with address {self.address} was not found")
            self._peripheral = p
            p.connections += 1
            p.connected_clients.append(self)
            self.services = p.services()
            self._connected = True
        finally:
            w.concurrent_connects -= 1

    async def disconnect(self) -> None:
        p = self._peripheral
        if p is not None:
            for cb in self._callbacks:
                if cb in p.callbacks:
                    p.callbacks.remove(cb)
            if self in p.connected_clients:
                p.connected_clients.remove(self)
        self._callbacks.clear()
        self._connected = False

    def _peer_dropped(self) -> None:
        self._connected = False
        cb = self._disconnected_callback
        if cb is not None:
            asyncio.get_running_loop().call_soon(cb)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    async def unpair(self) -> None:
        raise NotImplementedError

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def read_gatt_char(self, characteristic, **kwargs: Any) -> bytearray:
        raise BleakError("not readable in the fake")

    async def read_gatt_descriptor(self, descriptor, **kwargs: Any) -> bytearray:
        raise BleakError("not readable in the fake")

    async def write_gatt_char(self, characteristic, data, response: bool) -> None:
        if not self._connected:
            raise BleakError("Not connected")
        self._peripheral.on_write(bytes(data))

    async def write_gatt_descriptor(self, descriptor, data) -> None:
        raise BleakError("not writable in the fake")

    async def start_notify(self, characteristic, callback, **kwargs: Any) -> None:
        if not self._connected:
            raise BleakError("Not connected")
        self._callbacks.append(callback)
        self._peripheral.on_subscribe(callback)

    async def stop_notify(self, characteristic) -> None:
        p = self._peripheral
        for cb in self._callbacks:
            if p is not None and cb in p.callbacks:
                p.callbacks.remove(cb)
        self._callbacks.clear()


class FakeBleakScanner(BaseBleakScanner):
    """TEST DOUBLE of a bleak backend scanner: reports the advertising peripherals."""

    world: FakeWorld

    def __init__(self, detection_callback=None, service_uuids=None, scanning_mode: str = "active", **kwargs: Any):
        super().__init__(detection_callback, service_uuids)
        self._handle: asyncio.TimerHandle | None = None
        self._running = False

    async def start(self) -> None:
        self.world.scans += 1
        self.seen_devices = {}
        self._running = True
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self.world.adv_delay_s, self._advertise)

    def _advertise(self) -> None:
        if not self._running:
            return
        for p in self.world.peripherals:
            if not p.advertising or p.connected_clients:
                continue
            adv = AdvertisementData(local_name=p.name, manufacturer_data={}, service_data={},
                                    service_uuids=[p.service_uuid], tx_power=None, rssi=p.rssi, platform_data=())
            if not self.is_allowed_uuid(adv.service_uuids):
                continue
            dev = self.create_or_update_device(p.address, p.address, p.name, p, adv)
            self.call_detection_callbacks(dev, adv)
        self._handle = asyncio.get_running_loop().call_later(self.world.adv_delay_s, self._advertise)

    async def stop(self) -> None:
        self._running = False
        if self._handle is not None:
            self._handle.cancel()
