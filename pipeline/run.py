"""The one run loop shared by replay and live sources.

``run_session`` feeds every item (``SampleBlock`` / ``Gap``) to the engine, hands the
finished StepRecords to every sink, flushes the engine at the end of the stream, builds
the session summary and closes the sinks with it. Nothing computed is lost on failure:
the sinks are closed in ``finally`` with a summary whose ``status`` says ``"failed"``
(and the error) or ``"interrupted"`` (Ctrl-C), and the exception is re-raised. In both
cases the engine is flushed first, so steps still pending in the detectors (computed from
the valid samples before the fault) are written too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pipeline.records import Alert, Gap, SampleBlock, SessionInfo, StepRecord
from pipeline.sinks import Sink
from pipeline.summary import SessionSummary, SummaryBuilder

log = logging.getLogger(__name__)

SourceStats = Callable[[], Mapping[str, Any]]


def run_session(
    items: Iterable[SampleBlock | Gap],
    engine,
    sinks: Sequence[Sink],
    *,
    session: SessionInfo,
    source_stats: SourceStats | None = None,
    progress: Callable[[SampleBlock | Gap], None] | None = None,
    extra: dict[str, Any] | None = None,
) -> SessionSummary:
    """Run ``items`` through ``engine`` into ``sinks``; return the session summary.

    ``engine``: a :class:`pipeline.engine.Engine` (``update``, ``flush``, ``counters``,
    ``sensors``). ``source_stats()``: per-sensor reader statistics, called at the end
    (e.g. ``{sensor_id: RecordingStats}``). ``progress(item)`` is called after each item.
    """
    builder = SummaryBuilder(session, list(engine.sensors.values()))

    def deliver(records: list[StepRecord | Alert]) -> None:
        if not records:
            return
        builder.add(records)
        for sink in sinks:
            sink.write(records)

    status, error = "failed", ""
    summary: SessionSummary | None = None
    try:
        for item in items:
            deliver(engine.update(item))
            if progress is not None:
                progress(item)
        deliver(engine.flush())
        status = "complete"
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            status = "interrupted"
        else:
            error = " ".join(str(exc).split()) or type(exc).__name__
        try:  # steps still pending in the detectors were computed from valid samples: keep them
            deliver(engine.flush())
        except Exception as flush_exc:  # the run is being abandoned; keep what we have
            log.warning("flush after %s failed: %s", status, flush_exc)
        raise
    finally:
        summary = builder.build(
            counters=engine.counters(),
            sources=source_stats() if source_stats is not None else None,
            status=status, error=error, extra=extra,
        )
        _close_all(sinks, summary, primary_failed=status != "complete")
    return summary


def _close_all(sinks: Sequence[Sink], summary: SessionSummary, *, primary_failed: bool) -> None:
    """Close every sink; if one fails, still close the others, then raise the first error
    (unless the run itself already failed: then only log it, the run's error wins)."""
    first: BaseException | None = None
    for sink in sinks:
        try:
            sink.close(summary)
        except Exception as exc:
            log.error("closing %s failed: %s", type(sink).__name__, exc)
            if first is None:
                first = exc
    if first is not None and not primary_failed:
        raise first
