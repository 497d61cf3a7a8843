"""Recording files (the replay input): one CSV per sensor plus a ``NAME.json`` sidecar.

The format is specified in ``fixtures/README.md`` (issue 2, "Recording format"). In short:

* header row; ``t_s`` seconds, strictly increasing (irregular spacing allowed);
  ``acc_{x,y,z}_ms2`` or ``acc_{x,y,z}_g`` (required, gravity included);
  ``gyr_{x,y,z}_dps`` or ``gyr_{x,y,z}_rads`` (optional); other columns are ignored unless
  they look like a misspelling of a valid column;
* sidecar keys ``sensor_id``, ``placement`` (foot|shank), ``side`` (left|right); optional
  ``athlete``, ``acc_range_g``, ``gyr_range_dps``, ``start_utc`` (ISO 8601, wall time of
  ``t_s == 0``).

:class:`Recording` reads a file as a *stream*, in chunks of rows: memory does not grow with
the length of the file. Plain lines (numbers such as ``-12.345678``, nothing else) are parsed
by a compiled loop that gives pandas' values bit for bit; from the first line that is not
plain, ``pandas.read_csv`` (C engine) reads the rest, so every kind of malformed input is
reported the same way (``Recording._chunks``). It validates every row and
yields the engine's items (``pipeline.records``):

* :class:`SampleBlock` in the sensor frame, acc in m/s² (``_g`` × 9.80665), gyro in deg/s
  (``_rads`` × 180/π), ``gyr_dps=None`` without gyro columns;
* :class:`Gap` where a hole in ``t_s`` is longer than ``[ingest].gap_fill_max_s``.

Resampling. The samples are put on a uniform grid ``t0_s + i / fs_hz`` by linear
interpolation between the two raw rows around each grid time (``fs_hz`` = 1 / median
Δt of the first 2000 rows, rounded to 9 significant digits). Holes longer than 1.5
sample periods but no longer than ``gap_fill_max_s`` are bridged by the same
interpolation and counted (``filled_samples``); longer holes end the segment: a ``Gap``
is yielded and a new segment starts at the next row (``segment + 1``, index 0, its own
``t0_s``). A grid time is only interpolated once both raw rows around it have been read,
and times are computed from integer indices, so the emitted samples are bit-identical
whatever the reader's chunk size and whatever ``block_s`` (blocks start at multiples of
``round(block_s * fs_hz)`` samples within a segment).

Missing values. A row with an empty or NaN value in a signal column is dropped and the
hole it leaves is treated like missing rows *if* the hole is no longer than
``gap_fill_max_s`` (so an isolated NaN is interpolated and counted as a filled sample);
a longer NaN run is an error (it is a broken recording, not a pause). A missing ``t_s``
is always an error.

Every problem raises :class:`pipeline.errors.InputError` naming file, line and column.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detectors._jit import njit
from pipeline.errors import InputError
from pipeline.records import PLACEMENTS, SIDES, Gap, SampleBlock, SensorInfo

STANDARD_GRAVITY_MS2 = 9.80665
ACC_UNITS: dict[str, float] = {"ms2": 1.0, "g": STANDARD_GRAVITY_MS2}
GYR_UNITS: dict[str, float] = {"dps": 1.0, "rads": 180.0 / math.pi}
AXES = ("x", "y", "z")
VALID_COLUMNS: tuple[str, ...] = (
    ("t_s",)
    + tuple(f"acc_{a}_{u}" for u in ACC_UNITS for a in AXES)
    + tuple(f"gyr_{a}_{u}" for u in GYR_UNITS for a in AXES)
)
MIN_ROWS = 10  # fewer data rows than this cannot give a sample rate or a step
FS_ESTIMATE_ROWS = 2000  # fs_hz = 1 / median dt of this many first rows
DEFAULT_CHUNK_ROWS = 65536
FILL_THRESHOLD_PERIODS = 1.5  # a hole longer than this many periods counts as filled
MISSPELLING_CUTOFF = 0.8  # difflib ratio from which an unknown column counts as a typo

SIDECAR_REQUIRED = ("sensor_id", "placement", "side")
SIDECAR_OPTIONAL = ("athlete", "acc_range_g", "gyr_range_dps", "start_utc")

_SIGNAL_RE = re.compile(r"^(acc|gyr)_([xyz])_(\w+)$")


# ----------------------------------------------------------------------------- sidecar


def _key_line(text: str, key: str) -> int | None:
    """Line (1-based) of ``"key":`` in a JSON text, for error messages."""
    m = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def sidecar_path(csv_path: Path) -> Path:
    return Path(csv_path).with_suffix(".json")


def read_sidecar(path: Path) -> dict[str, Any]:
    """Read and validate a sidecar; returns only known keys (values type-checked).

    Unknown keys are ignored unless they look like a misspelling of a known key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read sidecar: {exc.strerror}", path=str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg} (char {exc.colno})", path=str(path), line=exc.lineno) from None
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object with keys {SIDECAR_REQUIRED}, got {type(data).__name__}",
                         path=str(path), line=1)
    known = SIDECAR_REQUIRED + SIDECAR_OPTIONAL
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=MISSPELLING_CUTOFF)
            if close:
                raise InputError(f"unknown key {key!r}; did you mean {close[0]!r}?", path=str(path),
                                 line=_key_line(text, key), column=key)
    out: dict[str, Any] = {}
    for key in known:
        if key not in data:
            continue
        v = data[key]

        def bad(expected: str) -> InputError:  # the key's line is only looked up for an error (a regex per key)
            return InputError(f"expected {expected}, got {v!r}", path=str(path), line=_key_line(text, key),
                              column=key)

        if key in ("sensor_id", "athlete"):
            if not isinstance(v, str) or (key == "sensor_id" and not v.strip()):
                raise bad("a non-empty string" if key == "sensor_id" else "a string")
            out[key] = v.strip()
        elif key == "placement":
            if v not in PLACEMENTS:
                raise bad("one of " + ", ".join(PLACEMENTS))
            out[key] = v
        elif key == "side":
            if v not in SIDES:
                raise bad("one of " + ", ".join(SIDES))
            out[key] = v
        elif key in ("acc_range_g", "gyr_range_dps"):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
                raise bad("a positive number")
            out[key] = float(v)
        elif key == "start_utc":
            out[key] = parse_start_utc(v, path=str(path), line=_key_line(text, key))
    return out


def parse_start_utc(value: Any, *, path: str = "", line: int | None = None) -> int:
    """ISO 8601 time -> ns since the epoch (a time without zone is taken as UTC)."""
    if not isinstance(value, str):
        raise InputError(f"expected an ISO 8601 time such as 2026-05-01T07:30:00Z, got {value!r}",
                         path=path, line=line, column="start_utc")
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"expected an ISO 8601 time such as 2026-05-01T07:30:00Z, got {value!r}",
                         path=path, line=line, column="start_utc") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


# ----------------------------------------------------------------------------- header


@dataclass(frozen=True)
class Columns:
    """Where the signals are in the CSV (0-based positions) and their units."""

    names: tuple[str, ...]  # the header as written (stripped)
    t_pos: int
    acc_pos: tuple[int, int, int]
    acc_unit: str
    gyr_pos: tuple[int, int, int] | None
    gyr_unit: str | None

    @property
    def signal_names(self) -> tuple[str, ...]:
        pos = self.acc_pos + (self.gyr_pos or ())
        return tuple(self.names[p] for p in pos)

    @property
    def used_positions(self) -> list[int]:
        return [self.t_pos, *self.acc_pos, *(self.gyr_pos or ())]


def parse_header(names: list[str], *, path: str) -> Columns:
    """Validate a header row (line 1) and locate the signal columns."""

    def err(message: str, column: str | None = None) -> InputError:
        return InputError(message, path=path, line=1, column=column)

    names = [n.strip() for n in names]
    seen: set[str] = set()
    for n in names:
        if n in seen and n:
            raise err("duplicate column", n)
        seen.add(n)
    found: dict[str, dict[str, tuple[int, str]]] = {"acc": {}, "gyr": {}}
    for pos, n in enumerate(names):
        if n in VALID_COLUMNS:
            if n != "t_s":
                kind, axis, unit = _SIGNAL_RE.match(n).groups()
                found[kind][axis + ":" + unit] = (pos, unit)
            continue
        m = _SIGNAL_RE.match(n)
        if m:
            kind, axis, unit = m.groups()
            units = ACC_UNITS if kind == "acc" else GYR_UNITS
            close = difflib.get_close_matches(n, [f"{kind}_{axis}_{u}" for u in units], n=1, cutoff=0.0)
            raise err(f"unknown unit suffix '_{unit}' (expected one of " + ", ".join("_" + u for u in units)
                      + f"); did you mean {close[0]!r}?", n)
        close = difflib.get_close_matches(n.lower(), VALID_COLUMNS, n=1, cutoff=MISSPELLING_CUTOFF)
        if close and close[0] not in names:
            raise err(f"unknown column; did you mean {close[0]!r}?", n)

    def missing(want: str) -> InputError:
        close = difflib.get_close_matches(want, [n for n in names if n not in VALID_COLUMNS], n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r} (rename it)?" if close else f"; header has {', '.join(names)}"
        return err(f"missing required column {want!r}{hint}", want)

    if "t_s" not in names:
        raise missing("t_s")
    t_pos = names.index("t_s")

    def locate(kind: str, units: dict[str, float], required: bool):
        have = found[kind]
        if not have:
            if required:
                raise missing(f"{kind}_x_{next(iter(units))}")
            return None, None
        unit_set = sorted({u for (_, u) in have.values()}, key=list(units).index)
        if len(unit_set) > 1:
            cols = sorted((names[p] for p, _ in have.values()), key=names.index)
            odd = next(c for c in cols if not c.endswith("_" + cols[0].rsplit("_", 1)[1]))
            raise err(f"mixed units in {kind} columns: {', '.join(cols)} (use one unit for all three axes)", odd)
        unit = unit_set[0]
        pos = []
        for a in AXES:
            key = f"{a}:{unit}"
            if key not in have:
                raise missing(f"{kind}_{a}_{unit}")
            pos.append(have[key][0])
        return tuple(pos), unit

    acc_pos, acc_unit = locate("acc", ACC_UNITS, True)
    gyr_pos, gyr_unit = locate("gyr", GYR_UNITS, False)
    return Columns(tuple(names), t_pos, acc_pos, acc_unit, gyr_pos, gyr_unit)


# ----------------------------------------------------------------------------- stats


@dataclass
class RecordingStats:
    """What the reader saw and did (reported in the session summary)."""

    rows: int = 0  # data rows read (including dropped NaN rows)
    nan_rows: int = 0  # rows dropped for a missing signal value (then interpolated)
    samples: int = 0  # uniform-grid samples emitted
    filled_samples: int = 0  # samples interpolated inside bridged holes (<= gap_fill_max_s)
    filled_holes: int = 0
    gaps: int = 0  # holes > gap_fill_max_s: segment ends, detectors reset
    gap_s: float = 0.0
    segments: int = 0
    first_t_s: float = math.nan
    last_t_s: float = math.nan
    fs_hz: float = math.nan  # the uniform grid rate
    complete: bool = False  # True once the whole file was read

    @property
    def duration_s(self) -> float:
        return self.last_t_s - self.first_t_s

    @property
    def effective_fs_hz(self) -> float:
        """Rows with data per second of the recording's span: (rows - nan_rows - 1) / duration."""
        valid = self.rows - self.nan_rows
        if valid < 2 or not self.duration_s > 0:
            return math.nan
        return (valid - 1) / self.duration_s


# ----------------------------------------------------------------------------- resampler


_POW10 = np.array([10.0 ** k for k in range(23)])  # exact doubles up to 1e22
_MANTISSA_LIMIT = (1 << 53) // 10  # one more digit keeps the integer exact in a double


@njit
def _mantissa_too_long(buf, start, stop):
    """True when the digits of ``buf[start:stop]`` (a ``.`` skipped) reach ``_MANTISSA_LIMIT``
    before their last digit (the mantissa would not stay exact in a double)."""
    m = 0
    for k in range(start, stop):
        c = buf[k]
        if c == 46:
            continue
        if m >= _MANTISSA_LIMIT:
            return True
        m = m * 10 + (c - 48)
    return False


def _file_id(f) -> tuple[int, int, int, int]:
    """(size, mtime_ns, inode, device) of an open file: the same file, unchanged."""
    st = os.fstat(f.fileno())
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev


@njit
def _parse_plain_lines(buf, pos, end, n_fields, out_col, out, row0, pow10):
    """Parse the lines of ``buf[pos:end]`` (bytes) into ``out[row0:]`` while they are *plain*.

    A plain line has exactly ``n_fields`` comma-separated fields and ends with ``\n`` or
    ``\r\n``; a used field (``out_col[f] >= 0``, its column in ``out``) is ``-?digits`` or
    ``-?digits.digits`` with a mantissa below 2**53 and at most 22 decimals (not an integer
    minus zero), an unused one printable ASCII without ``"``. Such a number is
    ``mantissa / 10**decimals`` with both exact in a double: one correctly rounded
    division, the value every correct decimal parser returns (pandas' C parser included:
    fast_float's exact "Clinger" path; an integer column that pandas reads as int64 has the
    same values). Anything else (quotes, blanks, NaN, exponents, more digits, other
    bytes) stops the parse before that line, for pandas to read it and report it.

    Only complete lines are parsed: they end at or before the last ``\n`` of the range,
    which therefore stops every scan (no bounds check per byte). The digits before and
    after the point are accumulated separately (two short dependency chains) and joined
    as ``int * 10**decimals + frac``, exact below 10**15; longer numbers are checked
    against the 2**53 limit digit by digit (``_mantissa_too_long``).

    Returns ``(rows, pos, status)``: rows parsed into ``out[row0:row0 + rows]``, the offset
    after the last parsed line, and 0 = no complete line left, 1 = stopped at a line
    that is not plain, 2 = ``out`` is full. Compiled (why: detectors/_jit.py).
    """
    rows = 0
    cap = out.shape[0]
    last = end - 1  # the last line break: every scan below stops there at the latest
    while last >= pos and buf[last] != 10:
        last -= 1
    while True:
        if row0 + rows >= cap:
            return rows, pos, 2
        if pos > last:
            return rows, pos, 0
        i = pos
        r = row0 + rows
        for f in range(n_fields):
            col = out_col[f]
            if col >= 0:
                neg = buf[i] == 45  # '-'
                if neg:
                    i += 1
                start = i
                m = 0
                d = np.int64(buf[i]) - 48
                while 0 <= d <= 9:
                    m = m * 10 + d
                    i += 1
                    d = np.int64(buf[i]) - 48
                nd = i - start
                if nd == 0:
                    return rows, pos, 1
                dec = 0
                if d == -2:  # '.'
                    i += 1
                    frac = 0
                    d = np.int64(buf[i]) - 48
                    while 0 <= d <= 9:
                        frac = frac * 10 + d
                        i += 1
                        d = np.int64(buf[i]) - 48
                    dec = i - (start + nd + 1)
                    if dec == 0:
                        return rows, pos, 1
                    if nd + dec <= 15:
                        m = m * np.int64(pow10[dec]) + frac
                    else:
                        if dec > 22 or _mantissa_too_long(buf, start, i):
                            return rows, pos, 1
                        m = 0
                        for k in range(start, i):
                            if buf[k] != 46:
                                m = m * 10 + (np.int64(buf[k]) - 48)
                else:
                    if nd > 15 and _mantissa_too_long(buf, start, i):
                        return rows, pos, 1
                    if neg and m == 0:
                        return rows, pos, 1  # "-0": pandas' int64 column would give +0.0
                x = m / pow10[dec]
                out[r, col] = -x if neg else x
            else:
                c = buf[i]
                while c != 44 and c != 10 and c != 13:
                    if c < 32 or c > 126 or c == 34:
                        return rows, pos, 1
                    i += 1
                    c = buf[i]
            if f < n_fields - 1:
                if buf[i] != 44:  # ','
                    return rows, pos, 1
                i += 1
        # the line ends here: "\n" or "\r\n"
        if buf[i] == 13:
            i += 1
        if buf[i] != 10:
            return rows, pos, 1
        rows += 1
        pos = i + 1


@njit
def _clean_rows(t, v, last_t):
    """True when every row is plain data: t finite and strictly increasing (also after
    ``last_t``, unless NaN), every value finite. Only then may a chunk skip the detailed
    validation (which finds and names the first fault). Compiled (why: detectors/_jit.py):
    one pass instead of ~10 numpy passes per chunk."""
    prev = last_t
    for r in range(t.shape[0]):
        x = t[r]
        if not (x - x == 0.0):  # NaN or inf
            return False
        if not (prev != prev) and not (x > prev):
            return False
        prev = x
        for c in range(v.shape[1]):
            y = v[r, c]
            if not (y - y == 0.0):
                return False
    return True


@njit
def _interpolate_grid(T, V, t0, fs, i0, i1, bound, inclusive, acc, gyr, off):
    """Linear interpolation of rows (T ascending, V) at grid times ``t0 + i / fs`` for
    i in [i0, i1) while the time is below ``bound`` (``<=`` if ``inclusive``), written to
    ``acc[off + j]`` (V's first 3 columns) and ``gyr[off + j]`` (the next 3, if any).
    Returns how many were written.

    The same operations as ``k = clip(searchsorted(T, g, 'right') - 1, 0, len(T) - 2)``,
    ``w = clip((g - T[k]) / (T[k+1] - T[k]), 0, 1)``, ``V[k] + w * (V[k+1] - V[k])`` computed
    as ``(V[k+1] - V[k]) * w + V[k]``, so every sample is bit-identical whatever the chunk
    and block split. Compiled (why: detectors/_jit.py): one pass, no temporaries.
    """
    n_t = T.shape[0]
    n_c = V.shape[1]
    last = n_t - 2  # k stays within [0, n_t - 2]: the clipped searchsorted index
    k = 0
    j = 0
    for i in range(i0, i1):
        g = t0 + i / fs
        if inclusive:
            if not (g <= bound):
                break
        elif not (g < bound):
            break
        while k < last and T[k + 1] <= g:
            k += 1
        w = (g - T[k]) / (T[k + 1] - T[k])
        if w < 0.0:
            w = 0.0
        if w > 1.0:
            w = 1.0
        r = off + j
        for c in range(3):
            a = V[k, c]
            acc[r, c] = (V[k + 1, c] - a) * w + a
        if n_c == 6:  # the gyro: a fixed trip count unrolls (a loop to n_c cost ~40 % more)
            for c in range(3):
                a = V[k, c + 3]
                gyr[r, c] = (V[k + 1, c + 3] - a) * w + a
        else:
            for c in range(3, n_c):
                gyr[r, c - 3] = (V[k + 1, c] - V[k, c]) * w + V[k, c]
        j += 1
    return j


def warm_up() -> None:
    """Compile the reader's kernels or load them from numba's cache, for the argument
    types the reader passes, before a run needs them (~1-3 s on a cold cache)."""
    line = np.frombuffer(bytearray(b"0.5,1.0,2.0\n1.5,1.0,2.0\n"), dtype=np.uint8)
    rows = np.empty((2, 3))  # t_s, then the signals: column views, as _chunks yields them
    _parse_plain_lines(line, 0, line.size, 3, np.array([0, 1, 2], dtype=np.int64), rows, 0, _POW10)
    _clean_rows(rows[:, 0], rows[:, 1:], math.nan)
    _clean_rows(rows[:, 0], rows[:, 1:][:, :0], math.nan)  # a parsed chunk's zero signal columns (typed 'C')
    t = np.zeros(2)
    t.flags.writeable = False  # pandas' columns (after the first line that is not plain)
    _clean_rows(t, np.zeros((2, 2)), math.nan)
    T, V = np.array([0.0, 1.0]), np.zeros((2, 6))
    acc = np.empty((2, 3))
    _interpolate_grid(T, V, 0.0, 1.0, 0, 2, 1.0, True, acc, acc, 0)


class _Resampler:
    """Raw (t, values) rows in order -> uniform-grid SampleBlocks and Gaps.

    Keeps only the last raw row and less than one block of output between calls.
    """

    def __init__(self, *, sensor_id: str, fs_hz: float, gap_fill_max_s: float, block_n: int,
                 n_acc: int, stats: RecordingStats):
        self.sensor_id, self.fs_hz, self.gap_fill_max_s = sensor_id, fs_hz, gap_fill_max_s
        self.block_n, self.n_acc, self.stats = block_n, n_acc, stats
        self._end_tol_s = 1e-6 / fs_hz
        self._prev_t: np.ndarray | None = None  # last raw row, shape (1,)
        self._prev_v: np.ndarray | None = None  # shape (1, c)
        # the row before it, if in the same segment: a segment that ends on the carried row
        # is then interpolated from the same two rows as when no chunk boundary is there
        self._before_t: np.ndarray | None = None
        self._before_v: np.ndarray | None = None
        self._segment = -1
        self._t0 = math.nan
        self._next_i = 0  # next grid index to emit in this segment
        # emitted but not yet blocked samples (acc, gyr: views of the last output arrays)
        self._left: tuple[np.ndarray, np.ndarray] | None = None
        self._buf_first = 0  # segment index of the first of them

    # -- output
    def _start_segment(self, t0: float) -> None:
        self._segment += 1
        self.stats.segments += 1
        self._t0 = float(t0)
        self._next_i = 0
        self._left = None
        self._buf_first = 0

    def _emit(self, T: np.ndarray, V: np.ndarray, *, end_of_segment: bool) -> list[SampleBlock]:
        """Interpolate every pending grid time covered by rows T (ascending) and block them.

        The samples go straight into new acc/gyr arrays behind the samples left over from
        the previous call; the blocks are read-only views of consecutive rows of them (no
        per-block copies).
        """
        limit = float(T[-1])
        if len(T) == 1 and self._before_t is not None and T[0] == self._prev_t[0]:
            T, V = np.concatenate([self._before_t, T]), np.concatenate([self._before_v, V])
        i_hi = max(int(math.floor((limit - self._t0) * self.fs_hz)) + 2, self._next_i)
        n_left = 0 if self._left is None else self._left[0].shape[0]
        n_max = i_hi - self._next_i
        has_gyr = V.shape[1] > self.n_acc
        acc = np.empty((n_left + n_max, 3))
        gyr = np.empty((n_left + n_max, 3) if has_gyr else (0, 3))
        if n_left:
            acc[:n_left] = self._left[0]
            if has_gyr:
                gyr[:n_left] = self._left[1]
        bound = limit + self._end_tol_s if end_of_segment else limit
        if len(T) == 1:  # one row: every grid time in it gets its values
            g = self._t0 + np.arange(self._next_i, i_hi, dtype=np.int64) / self.fs_hz
            n_new = int(np.count_nonzero(g <= bound if end_of_segment else g < bound))
            acc[n_left:n_left + n_new] = V[0, :3]
            if has_gyr:
                gyr[n_left:n_left + n_new] = V[0, 3:]
        else:
            n_new = _interpolate_grid(T, V, self._t0, self.fs_hz, self._next_i, i_hi, bound, end_of_segment,
                                      acc, gyr, n_left)
        self._next_i += n_new
        self.stats.samples += n_new
        return self._blocks(acc[:n_left + n_new], gyr[:n_left + n_new] if has_gyr else None, final=end_of_segment)

    def _blocks(self, acc: np.ndarray, gyr: np.ndarray | None, *, final: bool) -> list[SampleBlock]:
        out = []
        n, start, block_n = acc.shape[0], 0, self.block_n
        while n - start >= block_n or (final and n - start > 0):
            stop = min(start + block_n, n)
            out.append(SampleBlock(sensor_id=self.sensor_id, fs_hz=self.fs_hz, t0_s=self._t0,
                                   first_index=self._buf_first + start, acc_ms2=acc[start:stop],
                                   gyr_dps=None if gyr is None else gyr[start:stop], segment=self._segment,
                                   frame="sensor"))
            start = stop
        self._left = (acc[start:], None if gyr is None else gyr[start:])
        self._buf_first += start
        return out

    # -- input
    def feed(self, t: np.ndarray, v: np.ndarray) -> list[SampleBlock | Gap]:
        """Rows (validated: finite, strictly increasing after the previous call)."""
        if len(t) == 0:
            return []
        if self._prev_t is None:
            self._start_segment(t[0])
            T, V = np.ascontiguousarray(t), np.ascontiguousarray(v)  # as the concatenations below: one kernel type
        else:
            T, V = np.concatenate([self._prev_t, t]), np.concatenate([self._prev_v, v])
        out: list[SampleBlock | Gap] = []
        dt = np.diff(T)
        fill = (dt > FILL_THRESHOLD_PERIODS / self.fs_hz) & (dt <= self.gap_fill_max_s)
        if fill.any():
            self.stats.filled_holes += int(fill.sum())
            self.stats.filled_samples += int(np.maximum(np.rint(dt[fill] * self.fs_hz) - 1, 0).sum())
        splits = np.flatnonzero(dt > self.gap_fill_max_s)
        a = 0
        for s in splits:  # rows a..s end a segment, s+1 starts the next
            out += self._emit(T[a: s + 1], V[a: s + 1], end_of_segment=True)
            gap = Gap(sensor_id=self.sensor_id, last_t_s=float(T[s]), next_t_s=float(T[s + 1]))
            self.stats.gaps += 1
            self.stats.gap_s += gap.duration_s
            out.append(gap)
            self._start_segment(T[s + 1])
            a = s + 1
        out += self._emit(T[a:], V[a:], end_of_segment=False)
        if len(T) - 2 >= a:
            self._before_t, self._before_v = T[-2:-1].copy(), V[-2:-1].copy()
        else:
            self._before_t = self._before_v = None
        self._prev_t, self._prev_v = T[-1:].copy(), V[-1:].copy()
        return out

    def finish(self) -> list[SampleBlock | Gap]:
        if self._prev_t is None:
            return []
        return self._emit(self._prev_t, self._prev_v, end_of_segment=True)


# ----------------------------------------------------------------------------- recording


class Recording:
    """One sensor's recording: validated header and sidecar, streaming ``items()``.

    Parameters (keyword-only): ``placement``/``side``/``athlete`` override the sidecar
    (which may then be absent when both placement and side are given; ``sensor_id`` is
    then the file name without ``.csv``); ``gap_fill_max_s`` and ``block_s`` as in the
    ``[ingest]`` config section; ``chunk_rows`` is the reader's chunk size (it changes
    nothing in the output, only memory and speed).
    """

    def __init__(self, path: str | Path, *, placement: str | None = None, side: str | None = None,
                 athlete: str | None = None, gap_fill_max_s: float = 0.05, block_s: float = 1.0,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS):
        self.path = Path(path)
        if not (gap_fill_max_s >= 0):
            raise ValueError(f"gap_fill_max_s must be >= 0, got {gap_fill_max_s!r}")
        if not (block_s > 0):
            raise ValueError(f"block_s must be > 0, got {block_s!r}")
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows!r}")
        self.gap_fill_max_s, self.block_s, self.chunk_rows = float(gap_fill_max_s), float(block_s), int(chunk_rows)
        p = str(self.path)
        if not self.path.is_file():
            raise InputError("recording file not found (expected a CSV file)", path=p)
        self.info, self.start_utc_ns = self._sensor_info(placement, side, athlete)
        # wall time of t_s == 0: the sidecar's start_utc, else (approximately) the file's mtime
        self.start_wall_ns = self.start_utc_ns if self.start_utc_ns is not None else self.path.stat().st_mtime_ns
        self.columns = self._read_header()
        self.fs_hz = self._estimate_fs()
        self.block_n = max(1, int(round(self.block_s * self.fs_hz)))
        self.stats = RecordingStats(fs_hz=self.fs_hz)

    @property
    def has_gyro(self) -> bool:
        return self.columns.gyr_pos is not None

    def __repr__(self) -> str:
        return f"Recording({str(self.path)!r}, sensor_id={self.info.sensor_id!r}, fs_hz={self.fs_hz})"

    def last_t_s_hint(self) -> float:
        """``t_s`` of the file's last row, read from its tail (for a progress total); NaN if unknown."""
        try:
            with open(self.path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - 4096))
                tail = f.read().decode("utf-8", "replace").splitlines()
            for line in reversed(tail[1:] if size > 4096 else tail):
                fields = next(csv.reader([line]), [])
                if len(fields) > self.columns.t_pos:
                    try:
                        return float(fields[self.columns.t_pos])
                    except ValueError:
                        return math.nan
        except OSError:
            pass
        return math.nan

    # -- construction helpers
    def _sensor_info(self, placement, side, athlete) -> tuple[SensorInfo, int | None]:
        sc_path = sidecar_path(self.path)
        if sc_path.is_file():
            sc = read_sidecar(sc_path)
        elif placement is not None and side is not None:
            sc = {"sensor_id": self.path.stem}
        else:
            raise InputError(f"sidecar {sc_path.name} not found: write it (keys sensor_id, placement, side) "
                             "or give --placement and --side", path=str(self.path))
        if placement is not None:
            sc["placement"] = placement
        if side is not None:
            sc["side"] = side
        if athlete is not None:
            sc["athlete"] = athlete
        for key in SIDECAR_REQUIRED:
            if key not in sc:
                hint = "" if key == "sensor_id" else f" (or give --{key})"
                raise InputError(f"missing required key {key!r}{hint}", path=str(sc_path), column=key)
        try:
            info = SensorInfo(sensor_id=sc["sensor_id"], placement=sc["placement"], side=sc["side"],
                              athlete=sc.get("athlete", ""), acc_range_g=sc.get("acc_range_g"),
                              gyr_range_dps=sc.get("gyr_range_dps"))
        except ValueError as exc:  # an invalid override from the command line
            raise InputError(str(exc), path=str(sc_path)) from None
        return info, sc.get("start_utc")

    def _read_header(self) -> Columns:
        p = str(self.path)
        try:
            with open(self.path, encoding="utf-8-sig", newline="") as f:
                first = f.readline()
        except UnicodeDecodeError:
            raise InputError("not a UTF-8 text file (expected a CSV recording)", path=p, line=1) from None
        if not first.strip():
            raise InputError("empty file: expected a header row such as t_s,acc_x_ms2,acc_y_ms2,acc_z_ms2",
                             path=p, line=1)
        names = next(csv.reader([first]))
        return parse_header(names, path=p)

    def _read_csv(self, **kw) -> Any:
        return pd.read_csv(self.path, header=None, skiprows=1, usecols=self.columns.used_positions,
                           engine="c", skip_blank_lines=False, encoding="utf-8-sig", **kw)

    def _chunks(self) -> Iterator[np.ndarray | pd.DataFrame]:
        """The data rows in order, in chunks of at most ``chunk_rows``: arrays (n, 1 + signals)
        of ``t_s`` and the signal columns while the lines are plain numbers (parsed by a
        compiled loop, ~3x faster than pandas, same values: see ``_parse_plain_lines``),
        then, from the first line that is not, pandas DataFrames (``_read_csv``), whose
        parser and the validation behind it name every kind of problem. pandas then starts
        from the top and skips the rows already parsed: every row, value and error is the
        same as with pandas alone.
        """
        n_fields = len(self.columns.names)
        out_col, n_used = self._out_cols()
        head, self._head_rows = getattr(self, "_head_rows", None), None  # used once
        rows_done = 0
        with open(self.path, "rb") as f:
            header = f.readline()
            plain_header = header.endswith(b"\n") and b'"' not in header and b"\r" not in header[:-2]
            if plain_header:
                size = max(1 << 16, min(self.chunk_rows, DEFAULT_CHUNK_ROWS) * 64)  # bytes, ~1 chunk of lines
                # no larger than the rest of the file (+ room for a final line break) and no more
                # rows than it can hold (a plain line has >= 1 byte per field and per used field):
                # a 4 MiB buffer for a 300 KB recording can cost milliseconds of page faults (numpy
                # asks for huge pages from 4 MiB). The output does not depend on either size.
                left = max(0, os.fstat(f.fileno()).st_size - len(header))
                size = min(size, left + 2)
                chunk_rows = min(self.chunk_rows, left // (n_fields + n_used) + 1)
                buf = np.empty(size, dtype=np.uint8)
                view = memoryview(buf)
                n_buf, pos, eof = 0, 0, False
                # the head's rows parsed by _plain_head (the same kernel and columns), when this is
                # still the same file and they fit in the first chunk: the first chunk is then
                # those rows and the parse goes on after them - the same chunks as without
                if not (head is not None and head[2] == _file_id(f) and head[0].shape == (FS_ESTIMATE_ROWS, n_used)
                        and FS_ESTIMATE_ROWS < chunk_rows):
                    head = None
                else:
                    f.seek(head[1])
                while True:
                    out = np.empty((chunk_rows, n_used))
                    rows = 0
                    if head is not None:
                        out[:FS_ESTIMATE_ROWS] = head[0]
                        rows, head = FS_ESTIMATE_ROWS, None
                    while True:
                        got, pos, status = _parse_plain_lines(buf, pos, n_buf, n_fields, out_col, out, rows, _POW10)
                        rows += got
                        if status != 0 or eof:
                            break
                        # keep the incomplete last line, read more behind it
                        tail = n_buf - pos
                        if tail == size:  # a line longer than the buffer: let pandas have it
                            status = 1
                            break
                        buf[:tail] = buf[pos:n_buf]
                        k = f.readinto(view[tail:])
                        n_buf, pos = tail + k, 0
                        if k == 0:
                            eof = True
                            if tail:  # a last line without a line break
                                if n_buf == size:
                                    status = 1
                                    break
                                buf[n_buf] = 10
                                n_buf += 1
                    if rows:
                        rows_done += rows
                        yield out[:rows]
                    if status == 1 or (eof and status == 0 and pos < n_buf):
                        break  # a line that is not plain: pandas from here
                    if eof and status == 0:
                        return
        skip = rows_done
        for chunk in self._read_csv(chunksize=self.chunk_rows):
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            yield chunk.iloc[skip:] if skip else chunk
            skip = 0

    def _out_cols(self) -> tuple[np.ndarray, int]:
        """The plain-line kernel's field -> column map of ``_chunks`` (t_s, acc, gyr) and the
        number of columns."""
        cols = self.columns
        out_col = np.full(len(cols.names), -1, dtype=np.int64)
        for k, pos in enumerate([cols.t_pos, *cols.acc_pos, *(cols.gyr_pos or ())]):
            out_col[pos] = k
        return out_col, int((out_col >= 0).sum())

    def _plain_head(self) -> np.ndarray | None:
        """``t_s`` of the first ``FS_ESTIMATE_ROWS`` data rows as ``_chunks`` parses plain lines
        (array (n, 1); the same values as pandas'), or None when one of them is not
        a plain line or there are fewer than ``MIN_ROWS``: pandas then reads the head and
        reports what it finds, as it always did. ~0.2 ms instead of ~1.7 ms for
        ``pandas.read_csv`` of the head: a fixed cost of every run, large for short recordings.

        The head is parsed with all of ``_chunks``' columns first; when that gives the full
        ``FS_ESTIMATE_ROWS`` rows they are kept (``_head_rows``) and ``_chunks`` starts
        after them instead of parsing them again (~0.15 ms of a 19-s PyShoe replay). When a
        used field of the head is not plain, only ``t_s`` is parsed, as before."""
        self._head_rows = None
        out_col, n_used = self._out_cols()
        got = self._parse_head(out_col, n_used)
        if got is not None and got[2] is not None:
            self._head_rows = got  # (rows, offset after them, file identity)
            return got[0][:, :1]
        if got is not None and got[0].shape[0] < FS_ESTIMATE_ROWS:
            return got[0][:, :1]  # the whole file is plain and shorter than the head
        only_t = np.full(len(self.columns.names), -1, dtype=np.int64)
        only_t[self.columns.t_pos] = 0  # only t_s: the other fields are only checked for plain text
        got = self._parse_head(only_t, 1)
        return None if got is None else got[0]

    def _parse_head(self, out_col: np.ndarray, n_used: int):
        """``(rows, end, ident)``: the first ``FS_ESTIMATE_ROWS`` data rows parsed with
        ``out_col``, the file offset after them and the file's identity (``_file_id``) when
        the head is full (else ``end`` and ``ident`` are None: the file ended before), or
        None (a line that is not plain, fewer than ``MIN_ROWS`` rows)."""
        n_fields = len(self.columns.names)
        out = np.empty((FS_ESTIMATE_ROWS, n_used))
        size = 1 << 16
        buf = np.empty(size, dtype=np.uint8)  # writable, C-contiguous: the kernel's type in _chunks
        rows, tail = 0, b""
        with open(self.path, "rb") as f:
            header = f.readline()
            if not (header.endswith(b"\n") and b'"' not in header and b"\r" not in header[:-2]):
                return None  # as _chunks: pandas reads what follows such a header
            ident = _file_id(f)
            base = len(header)  # file offset of data[0]
            while True:
                more = f.read(size - len(tail) - 1)
                data = tail + more
                if not more and data and not data.endswith(b"\n"):
                    data += b"\n"  # a last line without a line break
                n = len(data)
                buf[:n] = np.frombuffer(data, dtype=np.uint8)
                got, pos, status = _parse_plain_lines(buf, 0, n, n_fields, out_col, out, rows, _POW10)
                rows += got
                if status == 2:  # FS_ESTIMATE_ROWS rows
                    return out, min(base + pos, ident[0]), ident
                if status == 1 or (not more and pos < n) or (pos == 0 and n == size - 1):
                    return None  # a line that is not plain (or longer than the buffer)
                if not more:
                    break  # end of file
                tail = data[pos:]
                base += pos
        return (out[:rows], None, None) if rows >= MIN_ROWS else None

    def _estimate_fs(self) -> float:
        p = str(self.path)
        head = self._plain_head()
        if head is not None:
            dt = np.diff(head[:, 0])  # plain numbers: finite by construction
            dt = dt[dt > 0]
            if len(dt):
                return float(f"{1.0 / float(np.median(dt)):.9g}")
        try:
            head = self._read_csv(nrows=FS_ESTIMATE_ROWS)
        except pd.errors.EmptyDataError:
            raise InputError("no data rows (header only)", path=p, line=2) from None
        except (pd.errors.ParserError, ValueError) as exc:
            raise InputError(_parser_message(exc), path=p) from None
        n = len(head)
        if n == 0:
            raise InputError("no data rows (header only)", path=p, line=2)
        if n < MIN_ROWS:
            raise InputError(f"too few rows: {n} data rows, need at least {MIN_ROWS}", path=p, line=n + 1)
        t = pd.to_numeric(head[self.columns.t_pos], errors="coerce").to_numpy(dtype=np.float64)
        dt = np.diff(t[np.isfinite(t)])
        dt = dt[dt > 0]
        if len(dt) == 0:
            raise InputError("t_s does not increase in the first rows", path=p, line=3, column="t_s")
        return float(f"{1.0 / float(np.median(dt)):.9g}")

    def _check_nan_runs(self, t, v, nanmask, line0, carry, last_good_t, sig_names):
        """Raise if a run of rows with missing values spans more than gap_fill_max_s.

        A run's span is from the last good row before it (or its own first row at the
        start of the file) to the next good row (or the last row read so far).
        ``carry`` = (first line, column, start t) of a run still open at the previous
        chunk's end; returns the run still open at this chunk's end (or None).
        """
        p, n = str(self.path), len(t)

        def check(run, end_t):
            if end_t - run[2] > self.gap_fill_max_s:
                raise InputError(f"missing values (NaN or empty) for {end_t - run[2]:.3g} s from this line on, "
                                 f"more than [ingest].gap_fill_max_s={self.gap_fill_max_s:g} s",
                                 path=p, line=run[0], column=run[1])

        if carry is not None and not nanmask[0]:
            check(carry, float(t[0]))
            carry = None
        d = np.diff(np.concatenate([[0], nanmask.astype(np.int8), [0]]))
        for s, e in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
            if s == 0 and carry is not None:
                run = carry
            else:
                col = sig_names[int(np.flatnonzero(np.isnan(v[s]))[0])]
                start_t = float(t[s - 1]) if s > 0 else (last_good_t if not math.isnan(last_good_t) else float(t[0]))
                run = (line0 + int(s), col, start_t)
            if e < n:
                check(run, float(t[e]))
                carry = None
            else:
                check(run, float(t[n - 1]))
                carry = run
        return carry

    # -- streaming
    def items(self) -> Iterator[SampleBlock | Gap]:
        """Validate and yield SampleBlocks and Gaps in time order (one pass over the file).

        On a fault the rows before it are still processed (their blocks are yielded), then
        the InputError of the *earliest* faulty row is raised.
        """
        p = str(self.path)
        cols = self.columns
        stats = self.stats = RecordingStats(fs_hz=self.fs_hz)
        scale = np.array([ACC_UNITS[cols.acc_unit]] * 3 + ([GYR_UNITS[cols.gyr_unit]] * 3 if cols.gyr_pos else []))
        scaled = bool((scale != 1.0).any())
        rs = _Resampler(sensor_id=self.info.sensor_id, fs_hz=self.fs_hz, gap_fill_max_s=self.gap_fill_max_s,
                        block_n=self.block_n, n_acc=3, stats=stats)
        state = _ReadState()
        line0 = 2  # file line of the chunk's first row
        try:
            for chunk in self._chunks():
                n = len(chunk)
                fault: InputError | None = None
                while True:  # shrink to the valid prefix before the earliest fault
                    try:
                        t, v, new_state = self._validate(chunk[:n] if isinstance(chunk, np.ndarray) else
                                                         chunk.iloc[:n] if n < len(chunk) else chunk, line0, state)
                        break
                    except InputError as exc:
                        fault = exc
                        r = exc.line - line0 if exc.line is not None else 0
                        n = r if 0 <= r < n else 0
                state = new_state
                if n:
                    stats.rows += n
                    stats.nan_rows += new_state.nan_rows_added
                    if math.isnan(stats.first_t_s):
                        stats.first_t_s = new_state.first_t
                    stats.last_t_s = state.last_t
                    if len(t):
                        yield from rs.feed(t, v * scale if scaled else v)  # x * 1.0 == x: skip it
                if fault is not None:
                    yield from rs.finish()  # the valid samples before the fault, to the last one
                    raise fault
                line0 += n
        except pd.errors.ParserError as exc:
            raise InputError(_parser_message(exc), path=p) from None
        except (UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise InputError(f"unreadable CSV: {exc}", path=p) from None
        if stats.rows - stats.nan_rows < MIN_ROWS:
            raise InputError(f"too few rows with data: {stats.rows - stats.nan_rows}, need at least {MIN_ROWS}",
                             path=p, line=line0 - 1)
        yield from rs.finish()
        stats.complete = True

    def _validate(self, chunk: pd.DataFrame, line0: int, state: "_ReadState"):
        """Check one chunk (no side effects); return (t, values of complete rows, new state).

        Raises the InputError of the first fault found (not necessarily the earliest row:
        the caller retries on the prefix before it until a prefix is clean).
        """
        p = str(self.path)
        cols = self.columns
        sig_pos = list(cols.acc_pos) + list(cols.gyr_pos or ())
        sig_names = cols.signal_names
        n = len(chunk)
        if n == 0:
            return np.empty(0), np.empty((0, len(sig_pos))), _ReadState(
                last_t=state.last_t, last_good_t=state.last_good_t, nan_run=state.nan_run)
        plain = isinstance(chunk, np.ndarray)
        if plain:  # parsed plain lines: t_s, then the signals
            t, v = chunk[:, 0], chunk[:, 1:]
        else:
            t = _numeric(chunk[cols.t_pos], path=p, line0=line0, column="t_s")
            v = np.empty((n, len(sig_pos)), dtype=np.float64)
            for j, pos in enumerate(sig_pos):
                v[:, j] = _numeric(chunk[pos], path=p, line0=line0, column=sig_names[j])
        # the usual case: nothing to find (a plain number is finite by construction: only t_s
        # needs its check, the signals are handed over as zero columns)
        if state.nan_run is None and _clean_rows(t, v[:, :0] if plain else v, state.last_t):
            return t, v, _ReadState(last_t=float(t[-1]), last_good_t=float(t[-1]), first_t=float(t[0]))
        bad_t = np.flatnonzero(~np.isfinite(t))
        if len(bad_t):
            r = int(bad_t[0])
            what = "empty line" if np.isnan(v[r]).all() and np.isnan(t[r]) else \
                ("missing time value" if np.isnan(t[r]) else f"time is not finite ({t[r]})")
            raise InputError(f"{what}: every row needs a t_s", path=p, line=line0 + r, column="t_s")
        inf = np.isinf(v)
        if inf.any():
            r, j = np.argwhere(inf)[0]
            raise InputError(f"value is not finite ({v[r, j]})", path=p, line=line0 + int(r), column=sig_names[j])
        tt = np.concatenate([[state.last_t], t]) if not math.isnan(state.last_t) else t
        offset = len(tt) - len(t)
        back = np.flatnonzero(np.diff(tt) <= 0)
        if len(back):
            k = int(back[0])
            prev, cur = float(tt[k]), float(tt[k + 1])
            word = "repeats" if cur == prev else "goes backwards"
            raise InputError(f"time {word}: t_s={cur!r} after {prev!r} (t_s must increase strictly)",
                             path=p, line=line0 + k + 1 - offset, column="t_s")
        new = _ReadState(last_t=float(t[-1]), last_good_t=state.last_good_t, nan_run=state.nan_run,
                         first_t=float(t[0]))
        # rows with a missing signal value: dropped; the hole is bounded like a hole in time
        nanmask = np.isnan(v).any(axis=1)
        if nanmask.any() or state.nan_run is not None:
            new.nan_run = self._check_nan_runs(t, v, nanmask, line0, state.nan_run, state.last_good_t, sig_names)
            new.nan_rows_added = int(nanmask.sum())
            good = ~nanmask
            if good.any():
                new.last_good_t = float(t[good][-1])
            return t[good], v[good], new
        new.last_good_t = new.last_t
        return t, v, new


@dataclass
class _ReadState:
    """What the validation of one chunk needs from the rows before it."""

    last_t: float = math.nan  # t_s of the last row
    last_good_t: float = math.nan  # t_s of the last row with all values
    nan_run: tuple[int, str, float] | None = None  # open run of missing values: (first line, column, start t)
    first_t: float = math.nan  # t_s of this chunk's first row
    nan_rows_added: int = 0


def _parser_message(exc: Exception) -> str:
    msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    msg = msg.replace("Error tokenizing data. C error: ", "")
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
    if m:
        return f"line {m.group(2)}: expected {m.group(1)} fields, saw {m.group(3)}"
    return f"malformed CSV: {msg}"


def _numeric(col: pd.Series, *, path: str, line0: int, column: str) -> np.ndarray:
    """A chunk column as float64; a non-numeric cell raises naming its line."""
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    num = pd.to_numeric(col, errors="coerce")
    bad = num.isna() & col.notna() & (col.astype(str).str.strip() != "")
    if bad.any():
        r = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"expected a number, got {str(col.iloc[r])!r}", path=path, line=line0 + r, column=column)
    return num.to_numpy(dtype=np.float64, na_value=np.nan)


def open_recordings(paths, *, config, placement: str | None = None, side: str | None = None,
                    athlete: str | None = None, block_s: float | None = None) -> list[Recording]:
    """Open several recordings with the ``[ingest]`` settings of ``config`` (all validated first)."""
    ingest = config.section("ingest")
    return [
        Recording(p, placement=placement, side=side, athlete=athlete,
                  gap_fill_max_s=ingest["gap_fill_max_s"],
                  block_s=ingest["block_s"] if block_s is None else block_s)
        for p in paths
    ]
