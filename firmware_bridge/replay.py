"""Replay several recordings of one session as one time-ordered item stream.

All recordings of a session share one time base (their own ``t_s`` axes). The items of
each recording (``SampleBlock`` / ``Gap``, already in order) are merged by start time:
a block by the time of its first sample, a gap by ``last_t_s``; ties go to the sensor
listed first, so the merged order is deterministic. Memory: one pending item per
recording (``heapq.merge``).

``speed=None`` yields as fast as the consumer takes items. ``speed=X`` paces the stream
against the monotonic clock at X times real time: an item is released when the wall
time since the start reaches (item end time - session start time) / X, where a block's
end time is that of its last sample (the moment a live sensor would have delivered it).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from firmware_bridge.recording import Recording
from pipeline.records import Gap, SampleBlock

Item = SampleBlock | Gap


def item_start_s(item: Item) -> float:
    """Session time at which an item starts (merge key)."""
    if isinstance(item, Gap):
        return item.last_t_s
    return float(item.time_s(item.first_index))


def item_end_s(item: Item) -> float:
    """Session time at which a live source would have finished delivering the item."""
    if isinstance(item, Gap):
        return item.last_t_s
    return float(item.time_s(item.end_index - 1))


def merge_items(streams: Sequence[Iterable[Item]]) -> Iterator[Item]:
    """Merge per-sensor item streams (each in time order) by start time, ties by stream order."""

    def keyed(order: int, items: Iterable[Item]):
        for seq, it in enumerate(items):
            yield (item_start_s(it), order, seq), it

    for _, it in heapq.merge(*(keyed(i, s) for i, s in enumerate(streams)), key=lambda kv: kv[0]):
        yield it


def pace(items: Iterable[Item], *, speed: float | None, clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> Iterator[Item]:
    """Release items no faster than ``speed`` times real time (``None``: no pacing)."""
    if speed is None:
        yield from items
        return
    if not (speed > 0):
        raise ValueError(f"speed must be > 0 (times real time), got {speed!r}")
    wall0 = None
    t0 = None
    for it in items:
        end = item_end_s(it)
        if wall0 is None:
            wall0, t0 = clock(), item_start_s(it)
        due = wall0 + (end - t0) / speed
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        yield it


def replay(recordings: Sequence[Recording], *, speed: float | None = None,
           clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Iterator[Item]:
    """The merged, optionally paced item stream of several recordings of one session."""
    return pace(merge_items([r.items() for r in recordings]), speed=speed, clock=clock, sleep=sleep)
