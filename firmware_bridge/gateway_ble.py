"""BLE sensors on a gateway: the ``live --ble`` session, forwarding every notification (issue 10).

``gaitwatch gateway --ble NAME`` connects, supervises and reconnects the devices with the very
:class:`~firmware_bridge.ble_source.BleSession` of ``gaitwatch live --ble`` (same scan, one
connect at a time, reconnect with backoff, stale notifications dropped, same options). Each
notification the session takes from its queue is handled exactly as ``live`` handles it
(counters, ``--ble-capture``, the decoder for the gateway's own health figures) and, with the
same session-time receive stamp (ns) the decoder and the capture get, forwarded to the
:class:`~firmware_bridge.gateway.Gateway` as one record of a v2 batch; a lost link is a
lost-link record (the worker's decoder calls ``interrupted()``: a ``Gap``, detectors reset).
The worker builds the decoder ``live`` uses for that device kind
(:func:`firmware_bridge.ble_decode.make_decoder`) and feeds it the records in order with the
same times, so it decodes what ``live --ble`` (and ``live --from-ble-capture`` of the
gateway's ``--ble-capture``) decodes.
"""

from __future__ import annotations

from firmware_bridge.ble_source import BleSession


class GatewayBleSession(BleSession):
    """A :class:`BleSession` that also hands every queued notification to ``gateway``."""

    def __init__(self, targets, *, gateway, **kw):
        super().__init__(targets, **kw)
        self.gateway = gateway
        self.forwarded = 0

    def handle(self, idx: int, host_s: float, data: bytes | None):
        items = super().handle(idx, host_s, data)
        link = self.links[idx]
        ns = int(round((host_s - self.host_t0_s) * 1e9))  # the stamp BleSession.handle decodes and captures
        self.gateway.notification(link.target.sensor.sensor_id, ns, data, kind=link.kind)
        self.forwarded += 1
        return items


def ble_decoder_spec(query: str, kind: str | None, options: dict) -> dict:
    """What a worker needs to build the device's decoder (stored in the unit's sensor spec)."""
    return {"transport": "ble", "device": query, "kind": kind, **options}
