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
sort would) while streaming ``steps.csv`` out; alert lines past ``SPILL_ROWS`` wait in a
second temporary file. Both files are written to a temporary name
and renamed, so a reader never sees half a file.

``session.json`` is :meth:`pipeline.summary.SessionSummary.to_dict` (NaN as ``null``).

``alerts.csv`` has one row per Alert (fired, or cleared with severity ``info``) in the
order the engine raised them: ``t_s, rule, severity, sensor_id, athlete, value,
threshold, message``; it has its header even when no alert was raised.
"""

from __future__ import annotations

import heapq
import json
import os
import pickle
import tempfile
import re
from collections.abc import Callable, Iterator, Sequence
from json.encoder import encode_basestring_ascii as _json_str
from operator import itemgetter
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
    if type(v) is not float:
        v = float(v)
    if v - v != 0.0:  # NaN or infinite
        return ""
    s = format(v, spec)
    return "0" + s[2:] if s[0] == "-" and s.startswith("-0") and float(s) == 0 else s  # no "-0.000"


def _csv_field(s: str) -> str:
    if "," in s or '"' in s or "\n" in s or "\r" in s:
        return '"' + s.replace('"', '""') + '"'
    return s


# Where each metric name goes in a row's cells (after the 4 sensor columns, which are one
# pre-joined string per sensor): the fixed float columns by position and format.
_FIXED = {name: (i, spec) for i, name in enumerate(BASE_COLUMNS[4:]) if (spec := _FLOAT_FMT.get(name))}
_FIXED_CELLS = len(BASE_COLUMNS) - 4
_SKIP = -1  # a text column's name used as a metric: not a metric
_NEG_ZERO = re.compile(r"(?<![^,])-(?=0(?:\.0*)?(?:,|$))")  # the sign of a cell that reads as zero
RUN_CHUNK = 32  # rows per pickle in a spilled run: the merge holds 32 rows (~10 KB) per run


class FileSink:
    """Writes ``steps.csv`` and ``session.json`` into ``out_dir`` (created if needed).

    A row is formatted once, when it arrives, as one CSV line without its trailing empty
    metric cells (columns only ever get added at the end), so ``close`` only pads and merges.
    """

    def __init__(self, out_dir: str | Path, *, session: SessionInfo, sensors: Sequence[SensorInfo]):
        self.out_dir = Path(out_dir)
        self.session = session
        self._order = {s.sensor_id: i for i, s in enumerate(sensors)}
        self._rows: list[tuple[tuple, str, int]] = []  # (sort key, line, cells in it) since the last spill
        self._spill_file = None  # anonymous temporary file holding the spilled runs
        self._runs: list[tuple[int, int]] = []  # byte ranges of sorted runs of pickled chunks of rows
        self._metric_cols: dict[str, None] = {}  # ordered set
        self._cell_of: dict[str, tuple[int, str]] = {}  # metric name -> (cell index, format), or _SKIP
        self._plans: dict[tuple[str, ...], tuple] = {}  # metric names of a row -> its format (_plan)
        self._prefix: dict[str, tuple[SensorInfo, str]] = {}  # id -> sensor, its 4 columns quoted and joined
        self._text: dict[str, str] = {}  # quoted text cells (activity)
        self._alerts: list[str] = []  # since the last spill of alert lines
        self._alert_file = None  # anonymous temporary file with the older alert lines (text)
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

    def _cell(self, name: str) -> tuple[int, str]:
        """Cell index and format of metric ``name`` (a new name is a new column at the end)."""
        if name in _FIXED:
            got = _FIXED[name]
        elif name in BASE_COLUMNS:
            got = (_SKIP, "")  # text columns are not metrics
        else:
            self._metric_cols[name] = None
            got = (_FIXED_CELLS + len(self._metric_cols) - 1, METRIC_FMT)
        self._cell_of[name] = got
        return got

    def _plan(self, names: tuple[str, ...]) -> tuple[str, Callable, int]:
        """How a row whose metrics have these names (in this order) is formatted: a
        %-template of its numeric cells (from ``ic_s`` on; the cells a metric does not set
        are empty), which of (ic_s, to_s, contact_ms, flight_ms, cadence_spm, *metric
        values) goes into each %-field, and the number of cells. A sensor's metrics come in
        the same order every step, so this is made once per sensor; registering the names
        here adds new columns in the order the cell-by-cell formatting did."""
        src: dict[int, tuple[int, str]] = {i: (k, spec) for k, (i, spec) in enumerate(_FIXED.values())}
        for j, name in enumerate(names):
            where = self._cell_of.get(name)
            if where is None:
                where = self._cell(name)
            i, spec = where
            if i != _SKIP:
                src[i] = (len(_FIXED) + j, spec)  # the last metric of a name wins
        ncells = _FIXED_CELLS + len(self._metric_cols)
        first = min(i for i, _ in _FIXED.values())  # cells before it (segment, activity) are text
        parts, order = [], []
        for i in range(first, ncells):
            if i in src:
                k, spec = src[i]
                parts.append("%" + spec)
                order.append(k)
            else:
                parts.append("")
        plan = (",".join(parts), itemgetter(*order), ncells)
        if len(self._plans) > 64:  # bounded: a source with ever-changing metric sets
            self._plans.clear()
        self._plans[names] = plan
        return plan

    def write(self, records: Sequence[StepRecord | Alert]) -> None:
        if self._closed:
            raise SinkError("file sink: write after close")
        for r in records:
            if isinstance(r, Alert):
                self._write_alert(r)
                continue
            st, info = r.step, r.sensor
            got = self._prefix.get(info.sensor_id)  # by id: hashing the SensorInfo is a Python call
            if got is not None and got[0] is info:
                prefix = got[1]
            else:
                prefix = ",".join(_csv_field(x) for x in (info.sensor_id, info.side, info.placement, info.athlete))
                self._prefix[info.sensor_id] = (info, prefix)
            act = self._text.get(st.activity)
            if act is None:
                act = self._text[st.activity] = _csv_field(st.activity)
            ms = r.metrics
            names = tuple([m.name for m in ms])
            plan = self._plans.get(names)
            if plan is None:
                plan = self._plan(names)
            template, pick, ncells = plan
            # all numeric cells in one %-format (same text as format(v, spec) per value)
            text = template % pick((st.ic_s, st.to_s, st.contact_ms, st.flight_ms, st.cadence_spm,
                                    *[m.value for m in ms]))
            if "n" in text:  # "nan", "inf", "-inf": an empty cell (no other numeric cell has an n)
                text = text.replace("nan", "")
                if "inf" in text:
                    text = text.replace("-inf", "").replace("inf", "")
            if "-0," in text or "-0.000" in text or text.endswith("-0"):  # maybe a negative zero
                text = _NEG_ZERO.sub("", text)  # no "-0", "-0.000": as _fmt
            key = (st.ic_s, self._order.get(info.sensor_id, len(self._order)), info.sensor_id, st.segment, st.ic_index)
            self._rows.append((key, prefix + "," + str(st.segment) + "," + act + "," + text, ncells))
            if len(self._rows) >= SPILL_ROWS:
                self._spill()

    def _write_alert(self, r: Alert) -> None:
        self._alerts.append(",".join(_csv_field(x) for x in (
            _fmt(r.t_s, ".6f"), r.rule, r.severity, r.sensor_id, r.athlete,
            _fmt(r.value, ".4f"), _fmt(r.threshold, ".4f"), r.message)))
        if len(self._alerts) >= SPILL_ROWS:  # alerts are few; still, memory must not grow with the run
            try:
                if self._alert_file is None:
                    self._alert_file = tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n")
                self._alert_file.write("".join(a + "\n" for a in self._alerts))
            except OSError as exc:
                raise SinkError(f"file sink: cannot spill alerts to a temporary file: {exc.strerror}") from None
            self._alerts = []

    def _spill(self) -> None:
        """Sort the rows in memory and append them as a new run to the temporary file."""
        try:
            if self._spill_file is None:
                self._spill_file = tempfile.TemporaryFile()
            f = self._spill_file
            f.seek(0, os.SEEK_END)
            start = f.tell()
            rows = sorted(self._rows, key=_by_key)
            for i in range(0, len(rows), RUN_CHUNK):  # self-contained pickles of RUN_CHUNK rows
                pickle.dump(rows[i:i + RUN_CHUNK], f, protocol=pickle.HIGHEST_PROTOCOL)
            self._runs.append((start, f.tell()))
        except OSError as exc:
            raise SinkError(f"file sink: cannot spill rows to a temporary file: {exc.strerror}") from None
        self._rows = []

    def _read_run(self, start: int, end: int) -> Iterator[tuple[tuple, str, int]]:
        f = self._spill_file
        pos = start
        while pos < end:
            f.seek(pos)  # the runs share one file: each reader keeps its own position
            chunk = pickle.load(f)
            pos = f.tell()
            yield from chunk

    def _sorted_rows(self) -> Iterator[tuple[tuple, str, int]]:
        """All rows by key; equal keys in arrival order (runs are merged oldest first)."""
        runs = [self._read_run(a, b) for a, b in self._runs] + [iter(sorted(self._rows, key=_by_key))]
        return heapq.merge(*runs, key=_by_key)

    def _steps_lines(self, cols: list[str]) -> Iterator[str]:
        yield ",".join(cols) + "\n"
        n = len(cols) - 4  # cells after the sensor's 4 columns
        pads = ["," * k + "\n" for k in range(n + 1)]  # the empty metric cells a row lacks
        for _, line, cells in self._sorted_rows():
            yield line + pads[n - cells]

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

    def _alert_lines(self) -> Iterator[str]:
        yield ALERT_HEADER + "\n"
        f, self._alert_file = self._alert_file, None
        if f is not None:
            with f:
                f.seek(0)
                yield from f
        for a in self._alerts:
            yield a + "\n"

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
        self._atomic_write(self.alerts_path, self._alert_lines())
        if summary is not None:
            text = json_indented(summary.to_dict()) + "\n"
            self._atomic_write(self.session_path, text)


def _by_key(row: tuple) -> tuple:
    return row[0]


class _NotPlain(Exception):
    pass


_FLOAT_REPR, _INT_REPR, _INF = float.__repr__, int.__repr__, float("inf")


def _json_into(o, out: list[str], nl: str) -> None:
    t = type(o)
    if t is str:
        out.append(_json_str(o))
    elif t is float:
        if o != o or o == _INF or o == -_INF:
            raise _NotPlain  # json.dumps raises its own error for it
        out.append(_FLOAT_REPR(o))
    elif t is dict:
        if not o:
            out.append("{}")
            return
        inner = nl + "  "
        sep = "{" + inner
        for k, v in o.items():
            if type(k) is not str:
                raise _NotPlain
            out.append(sep + _json_str(k) + ": ")
            _json_into(v, out, inner)
            sep = "," + inner
        out.append(nl + "}")
    elif t is list or t is tuple:
        if not o:
            out.append("[]")
            return
        inner = nl + "  "
        sep = "[" + inner
        for v in o:
            out.append(sep)
            _json_into(v, out, inner)
            sep = "," + inner
        out.append(nl + "]")
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif t is int:
        out.append(_INT_REPR(o))
    else:
        raise _NotPlain


def json_indented(obj) -> str:
    """``json.dumps(obj, indent=2, allow_nan=False)``, the same text, ~2-3x faster for a tree
    of dicts (str keys), lists, str, int, finite float, bool and None: with ``indent`` the
    json module has no C encoder, and session.json (~5-15 KB) took 0.2-0.6 ms of every
    replay. Anything else (NaN, other types, non-str keys) goes to ``json.dumps`` itself, so
    its errors are unchanged (tests/test_sinks_file_json.py)."""
    out: list[str] = []
    try:
        _json_into(obj, out, "\n")
    except _NotPlain:
        return json.dumps(obj, indent=2, allow_nan=False)
    return "".join(out)
