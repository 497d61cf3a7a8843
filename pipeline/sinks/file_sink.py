"""The embedded default sink: ``DIR/steps.csv`` and ``DIR/session.json`` (issue 2, "Replay").

``steps.csv`` has one row per StepRecord. Columns, in this order::

    sensor_id, side, placement, athlete, segment, activity,
    ic_s, to_s, contact_ms, flight_ms, cadence_spm, <metric columns...>

then one column per ``Metric.name`` found in ``StepRecord.metrics``: the union of names
over the run, in first-seen order (a step without that metric has an empty cell). A
metric whose name equals a fixed column (e.g. a measured ``flight_ms``) replaces that
column's value instead of adding a column.

Times are on the recording's own ``t_s`` axis. Fixed formatting so the file is
byte-identical across runs and block sizes: ``ic_s``/``to_s`` 6 decimals (µs),
``contact_ms``/``flight_ms``/``cadence_spm`` 3 decimals, metrics ``%.6g``; NaN is an empty
cell. Steps of different sensors arrive interleaved, so rows are kept (as formatted
strings, not the samples) and written sorted by (``ic_s``, sensor order as given,
segment) at ``close``; ``close`` runs also after a failure or Ctrl-C, so a partial run
still leaves its steps. Memory does not grow with the length of the run: every
``SPILL_ROWS`` rows are sorted and appended as a run to one anonymous temporary file, and
``close`` merges the runs (an external merge sort; ties keep arrival order, as a stable
sort would) while streaming ``steps.csv`` out. Both files are written to a temporary name
and renamed, so a reader never sees half a file.

``session.json`` is :meth:`pipeline.summary.SessionSummary.to_dict` (NaN as ``null``).

``alerts.csv`` has one row per Alert (fired, or cleared with severity ``info``) in the
order the engine raised them: ``t_s, rule, severity, sensor_id, athlete, value,
threshold, message``; it has its header even when no alert was raised.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import pickle
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from pipeline.errors import SinkError
from pipeline.records import Alert, SensorInfo, SessionInfo, StepRecord

BASE_COLUMNS = ("sensor_id", "side", "placement", "athlete", "segment", "activity",
                "ic_s", "to_s", "contact_ms", "flight_ms", "cadence_spm")
_FLOAT_FMT = {"ic_s": ".6f", "to_s": ".6f", "contact_ms": ".3f", "flight_ms": ".3f", "cadence_spm": ".3f"}
METRIC_FMT = ".6g"
ALERT_HEADER = "t_s,rule,severity,sensor_id,athlete,value,threshold,message"
SPILL_ROWS = 1024  # rows held in memory before a sorted run goes to the temporary file (~2 KB each)


def _fmt(v: float, spec: str) -> str:
    v = float(v)
    if not math.isfinite(v):
        return ""
    s = format(v, spec)
    return "0" + s[2:] if s.startswith("-0") and float(s) == 0 else s  # no "-0.000"


def _csv_field(s: str) -> str:
    if "," in s or '"' in s or "\n" in s or "\r" in s:
        return '"' + s.replace('"', '""') + '"'
    return s


class FileSink:
    """Writes ``steps.csv`` and ``session.json`` into ``out_dir`` (created if needed)."""

    def __init__(self, out_dir: str | Path, *, session: SessionInfo, sensors: Sequence[SensorInfo]):
        self.out_dir = Path(out_dir)
        self.session = session
        self._order = {s.sensor_id: i for i, s in enumerate(sensors)}
        self._rows: list[tuple[tuple, dict[str, str]]] = []  # since the last spill
        self._spill_file = None  # anonymous temporary file holding the spilled runs
        self._runs: list[tuple[int, int]] = []  # byte ranges of sorted runs of pickled (key, row)
        self._metric_cols: dict[str, None] = {}  # ordered set
        self._alerts: list[str] = []
        self._closed = False
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"{self.out_dir}: cannot create output directory: {exc.strerror}") from None
        if not os.access(self.out_dir, os.W_OK):
            raise SinkError(f"{self.out_dir}: output directory is not writable")

    @property
    def steps_path(self) -> Path:
        return self.out_dir / "steps.csv"

    @property
    def session_path(self) -> Path:
        return self.out_dir / "session.json"

    @property
    def alerts_path(self) -> Path:
        return self.out_dir / "alerts.csv"

    def write(self, records: Sequence[StepRecord | Alert]) -> None:
        if self._closed:
            raise SinkError("file sink: write after close")
        for r in records:
            if isinstance(r, Alert):
                self._alerts.append(",".join(_csv_field(x) for x in (
                    _fmt(r.t_s, ".6f"), r.rule, r.severity, r.sensor_id, r.athlete,
                    _fmt(r.value, ".4f"), _fmt(r.threshold, ".4f"), r.message)))
                continue
            st, info = r.step, r.sensor
            row = {
                "sensor_id": info.sensor_id, "side": info.side, "placement": info.placement,
                "athlete": info.athlete, "segment": str(st.segment), "activity": st.activity,
                "ic_s": _fmt(st.ic_s, ".6f"), "to_s": _fmt(st.to_s, ".6f"),
                "contact_ms": _fmt(st.contact_ms, ".3f"), "flight_ms": _fmt(st.flight_ms, ".3f"),
                "cadence_spm": _fmt(st.cadence_spm, ".3f"),
            }
            for m in r.metrics:
                if m.name in _FLOAT_FMT:
                    row[m.name] = _fmt(m.value, _FLOAT_FMT[m.name])
                elif m.name in BASE_COLUMNS:
                    continue  # text columns are not metrics
                else:
                    self._metric_cols.setdefault(m.name, None)
                    row[m.name] = _fmt(m.value, METRIC_FMT)
            key = (st.ic_s, self._order.get(info.sensor_id, len(self._order)), info.sensor_id, st.segment, st.ic_index)
            self._rows.append((key, row))
            if len(self._rows) >= SPILL_ROWS:
                self._spill()

    def _spill(self) -> None:
        """Sort the rows in memory and append them as a new run to the temporary file."""
        try:
            if self._spill_file is None:
                self._spill_file = tempfile.TemporaryFile()
            f = self._spill_file
            f.seek(0, os.SEEK_END)
            start = f.tell()
            for kr in sorted(self._rows, key=lambda kr: kr[0]):
                pickle.dump(kr, f, protocol=pickle.HIGHEST_PROTOCOL)  # one self-contained pickle per row
            self._runs.append((start, f.tell()))
        except OSError as exc:
            raise SinkError(f"file sink: cannot spill rows to a temporary file: {exc.strerror}") from None
        self._rows = []

    def _read_run(self, start: int, end: int) -> Iterator[tuple[tuple, dict[str, str]]]:
        f = self._spill_file
        pos = start
        while pos < end:
            f.seek(pos)  # the runs share one file: each reader keeps its own position
            kr = pickle.load(f)
            pos = f.tell()
            yield kr

    def _sorted_rows(self) -> Iterator[tuple[tuple, dict[str, str]]]:
        """All rows by key; equal keys in arrival order (runs are merged oldest first)."""
        runs = [self._read_run(a, b) for a, b in self._runs] + [iter(sorted(self._rows, key=lambda kr: kr[0]))]
        return heapq.merge(*runs, key=lambda kr: kr[0])

    def _steps_lines(self, cols: list[str]) -> Iterator[str]:
        yield ",".join(cols) + "\n"
        for _, row in self._sorted_rows():
            yield ",".join(_csv_field(row.get(c, "")) for c in cols) + "\n"

    def _atomic_write(self, path: Path, text: str | Iterator[str]) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                if isinstance(text, str):
                    f.write(text)
                else:
                    f.writelines(text)
            os.replace(tmp, path)
        except OSError as exc:
            raise SinkError(f"{path}: cannot write: {exc.strerror}") from None

    def close(self, summary=None) -> None:
        if self._closed:
            return
        self._closed = True
        cols = list(BASE_COLUMNS) + list(self._metric_cols)
        try:
            self._atomic_write(self.steps_path, self._steps_lines(cols))
        finally:
            if self._spill_file is not None:
                self._spill_file.close()
            self._spill_file, self._runs, self._rows = None, [], []
        # alerts in the order they were raised (the engine's order: deterministic)
        self._atomic_write(self.alerts_path, "\n".join([ALERT_HEADER] + self._alerts) + "\n")
        if summary is not None:
            text = json.dumps(summary.to_dict(), indent=2, allow_nan=False) + "\n"
            self._atomic_write(self.session_path, text)
