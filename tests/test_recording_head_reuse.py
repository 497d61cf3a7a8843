"""The reader parses the head's rows once (issue 9: a fixed cost of short recordings):
``Recording._plain_head`` parses the first FS_ESTIMATE_ROWS rows with all the columns
``_chunks`` uses, for the rate estimate, and ``_chunks`` starts after them instead of parsing
them again. Items, stats, errors and the rate must be the same as with the head parsed
twice (the replaced code: ``NoReuse``) and as pandas alone, whatever the file's length
around the head, line endings, chunk size, a line that is not plain before or after the
head, and when the file changes between opening and reading."""

from __future__ import annotations

import os

import pytest

from firmware_bridge import recording
from firmware_bridge.recording import FS_ESTIMATE_ROWS, Recording
from test_recording_plain_parser import HEADER, PandasOnly, _items, _same_as_pandas, _write


def _irregular_rows(n, fs, seed, *, jitter=0.3):
    """Irregular times, widths of 1-6 decimals: all plain (no integer "-0", which the plain
    parser leaves to pandas and which would make every head fall back)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(1 - jitter, 1 + jitter, n)) / fs
    vals = rng.normal(0, 50, (n, 6))
    return [f"{t[i]:.{int(rng.integers(3, 8))}f}," + ",".join(f"{x:.{int(rng.integers(1, 7))}f}" for x in vals[i])
            for i in range(n)]


class NoReuse(Recording):
    """Every row parsed by _chunks itself (the head's rows again), as before the change."""

    def _chunks(self):
        self._head_rows = None
        yield from super()._chunks()


def _check(path, pandas=False, **kw):
    fast = Recording(path, **kw)
    ref = NoReuse(path, **kw)
    assert repr(fast.fs_hz) == repr(ref.fs_hz) == repr(PandasOnly(path, **kw).fs_hz)
    got, want = _items(fast), _items(ref)
    assert got[0] == want[0] and repr(got[1]) == repr(want[1])
    assert fast._head_rows is None  # used once: a second pass reads everything itself
    again = _items(fast)
    assert again[0] == want[0]
    if pandas:
        _same_as_pandas(path, **kw)
    return fast


@pytest.mark.parametrize("n", [FS_ESTIMATE_ROWS - 1, FS_ESTIMATE_ROWS, FS_ESTIMATE_ROWS + 1, 5000])
@pytest.mark.parametrize("newline,final_newline", [("\n", True), ("\r\n", True), ("\n", False)])
@pytest.mark.parametrize("chunk_rows", [7, FS_ESTIMATE_ROWS, FS_ESTIMATE_ROWS + 1, 65536])
def test_items_same_as_parsing_the_head_twice(tmp_path, n, newline, final_newline, chunk_rows):
    p = _write(tmp_path, "r", HEADER, _irregular_rows(n, 200.0, n), newline=newline, final_newline=final_newline)
    rec = Recording(p, chunk_rows=chunk_rows)
    assert (rec._head_rows is not None) == (n >= FS_ESTIMATE_ROWS)  # a full head is kept
    _check(p, pandas=chunk_rows == 65536, chunk_rows=chunk_rows, block_s=0.5)


def test_head_is_reused_when_it_can_be(tmp_path, monkeypatch):
    p = _write(tmp_path, "r", HEADER, _irregular_rows(3800, 200.0, 1))
    rec = Recording(p, block_s=10.0)
    assert rec._head_rows is not None and rec._head_rows[0].shape == (FS_ESTIMATE_ROWS, 7)
    parsed = []
    kernel = recording._parse_plain_lines

    def counting(buf, pos, end, n_fields, out_col, out, row0, pow10):
        got = kernel(buf, pos, end, n_fields, out_col, out, row0, pow10)
        parsed.append(got[0])
        return got

    monkeypatch.setattr(recording, "_parse_plain_lines", counting)
    list(rec.items())
    assert sum(parsed) == 3800 - FS_ESTIMATE_ROWS  # the rest only


@pytest.mark.parametrize("where", [5, 1999, 2000, 2500])
@pytest.mark.parametrize("what", ["semicolon", "nan_acc", "text_gyr", "blank"])
def test_a_line_that_is_not_plain_anywhere(tmp_path, where, what):
    rows = _irregular_rows(3000, 200.0, where)
    f = rows[where].split(",")
    if what == "semicolon":
        rows[where] = rows[where].replace(",", ";", 1)
    elif what == "nan_acc":
        rows[where] = ",".join([f[0], "nan", *f[2:]])
    elif what == "text_gyr":
        rows[where] = ",".join([*f[:5], "x", f[6]])
    else:
        rows[where] = ""
    p = _write(tmp_path, "b", HEADER, rows)
    try:
        _check(p, pandas=True, gap_fill_max_s=1.0)
    except Exception as exc:  # an error at open: the same as pandas alone
        from pipeline.errors import InputError

        assert isinstance(exc, InputError)
        with pytest.raises(InputError) as ref:
            PandasOnly(p, gap_fill_max_s=1.0)
        assert str(ref.value) == str(exc)


@pytest.mark.parametrize("change", ["rewritten", "appended", "replaced"])
def test_file_changed_after_open_is_read_as_it_is_then(tmp_path, change):
    p = _write(tmp_path, "c", HEADER, _irregular_rows(3000, 200.0, 3))
    rec = Recording(p, block_s=1.0)
    assert rec._head_rows is not None
    rows = _irregular_rows(3000, 200.0, 4)
    if change == "rewritten":  # same size, other values
        st = os.stat(p)
        _write(tmp_path, "c", HEADER, _irregular_rows(3000, 200.0, 3)[:1] + rows[1:])
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
    elif change == "appended":
        with open(p, "a") as f:
            f.write("\n".join(_irregular_rows(10, 200.0, 5)[:0]) + "30.0,1,2,3,4,5,6\n")
    else:
        tmp = tmp_path / "new.csv"
        tmp.write_text("\n".join([HEADER, *rows]) + "\n")
        os.replace(tmp, p)
    fresh = NoReuse(p, block_s=1.0)
    fresh.fs_hz, fresh.block_n = rec.fs_hz, rec.block_n  # the rate measured at open, as rec keeps it
    assert _items(rec)[0] == _items(fresh)[0]
