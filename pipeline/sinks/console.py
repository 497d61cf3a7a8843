"""Alerts on the console while a run goes on (``replay`` and ``live``), one line each."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from pipeline.records import Alert, StepRecord


class ConsoleAlertSink:
    """Prints every Alert as ``[mm:ss] SEVERITY rule (sensor): message`` on ``stream``."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stdout

    def write(self, records: Sequence[StepRecord | Alert]) -> None:
        for r in records:
            if isinstance(r, Alert):
                m, s = divmod(max(r.t_s, 0.0), 60.0)
                print(f"[{int(m):02d}:{s:04.1f}] {r.severity.upper():7s} {r.rule} ({r.sensor_id}): {r.message}",
                      file=self.stream, flush=True)

    def close(self, summary=None) -> None:
        pass
