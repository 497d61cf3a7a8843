"""A sink that keeps everything in memory (for tests and notebooks)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.records import StepRecord


class MemorySink:
    """Collects every StepRecord in arrival order; ``summary`` is set by ``close``."""

    def __init__(self) -> None:
        self.records: list[StepRecord] = []
        self.batches = 0
        self.summary = None
        self.closed = False

    def write(self, records: Sequence[StepRecord]) -> None:
        if self.closed:
            raise RuntimeError("MemorySink.write after close")
        self.records.extend(records)
        self.batches += 1

    def close(self, summary=None) -> None:
        if self.closed:
            raise RuntimeError("MemorySink closed twice")
        self.summary = summary
        self.closed = True
