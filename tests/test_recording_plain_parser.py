"""The compiled parser for plain CSV lines (firmware_bridge.recording._parse_plain_lines)
gives exactly what pandas gives: the same float64 bits for every number it accepts, and,
through its hand-over to pandas at the first line it does not accept, the same items, stats
and errors for whole recordings of any content."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.recording import Recording
from pipeline.errors import InputError
from pipeline.records import Gap


class PandasOnly(Recording):
    """The reader as it was: every chunk from pandas, and the sample rate from pandas' head."""

    def _chunks(self):
        yield from self._read_csv(chunksize=self.chunk_rows)

    def _plain_head(self):
        return None


def _items(rec: Recording):
    out = []
    try:
        for it in rec.items():
            if isinstance(it, Gap):
                out.append(("gap", it.last_t_s, it.next_t_s))
            else:
                out.append((it.first_index, it.segment, it.t0_s, it.acc_ms2.tobytes(),
                            None if it.gyr_dps is None else it.gyr_dps.tobytes()))
    except InputError as exc:
        out.append(("error", str(exc)))
    return out, rec.stats


def _same_as_pandas(path, **kw):
    try:
        fast = Recording(path, **kw)
    except InputError as exc:
        with pytest.raises(InputError) as ref:
            PandasOnly(path, **kw)
        assert str(ref.value) == str(exc)
        return
    got = _items(fast)
    ref = _items(PandasOnly(path, **kw))
    assert got[0] == ref[0]
    assert repr(got[1]) == repr(ref[1])


# every way a number can be written; most are plain, the rest hand over to pandas
_number = st.one_of(
    st.floats(-2000.0, 2000.0, allow_nan=False).map(lambda x: f"{x:.6f}"),
    st.floats(-2000.0, 2000.0, allow_nan=False).map(lambda x: f"{x:.5f}"),
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**17, 10**17).map(str),
    st.sampled_from(["0", "-0", "-0.0", "0.000", "-0.000000", "007.50", "1.", ".5", "1e3", "-2.5E-3", " 1.5",
                     "1.5 ", "+1.5", "", "nan", "NaN", "inf", "abc", '"1.5"', "1,5", "0.1234567890123456789",
                     "123456789012345.6", "9007199254740993", "1.00000000000000000000001"]),
)


@settings(max_examples=400, deadline=None)
@given(values=st.lists(_number, min_size=1, max_size=200))
def test_values_are_bit_identical_to_pandas(tmp_path_factory, values):
    from firmware_bridge.recording import _POW10, _parse_plain_lines

    d = tmp_path_factory.mktemp("v")
    lines = [f"{v}" for v in values]
    text = "x\n" + "\n".join(lines) + "\n"
    (d / "v.csv").write_text(text)
    buf = np.frombuffer(text.encode(), dtype=np.uint8)
    start = text.index("\n") + 1
    out = np.empty((len(values), 1))
    rows, _, status = _parse_plain_lines(buf, start, buf.size, 1, np.array([0]), out, 0, _POW10)
    if rows == 0:
        return
    ref = pd.read_csv(d / "v.csv", header=None, skiprows=1, nrows=rows, engine="c",
                      skip_blank_lines=False)[0]
    assert pd.api.types.is_numeric_dtype(ref.dtype)
    assert out[:rows, 0].tobytes() == ref.to_numpy(dtype=np.float64).tobytes()


def _write(d, name, header, rows, *, newline="\n", final_newline=True):
    p = d / f"{name}.csv"
    text = newline.join([header] + rows) + (newline if final_newline else "")
    p.write_bytes(text.encode("utf-8"))
    p.with_suffix(".json").write_text(json.dumps({"sensor_id": name, "placement": "foot", "side": "left"}))
    return p


def _clean_rows(n, fs=200.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    acc = rng.normal(0, 20, (n, 3))
    gyr = rng.normal(0, 300, (n, 3))
    return [f"{t[i]:.6f}," + ",".join(f"{x:.5f}" for x in (*acc[i], *gyr[i])) for i in range(n)]


HEADER = "t_s,acc_x_ms2,acc_y_ms2,acc_z_ms2,gyr_x_dps,gyr_y_dps,gyr_z_dps"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(12, 400), where=st.floats(0.0, 1.0), cell=st.integers(0, 6), bad=_number,
       newline=st.sampled_from(["\n", "\r\n"]), final_newline=st.booleans(), chunk_rows=st.sampled_from([1, 7, 64, 100_000]),
       extra=st.sampled_from(["", "blank", "short", "long", "back"]))
def test_any_file_gives_the_items_and_errors_pandas_gives(tmp_path_factory, n, where, cell, bad, newline,
                                                          final_newline, chunk_rows, extra):
    d = tmp_path_factory.mktemp("r")
    rows = _clean_rows(n)
    k = min(int(where * n), n - 1)
    fields = rows[k].split(",")
    fields[cell] = bad
    rows[k] = ",".join(fields)
    if extra == "blank":
        rows.insert(k, "")
    elif extra == "short":
        rows[k] = ",".join(fields[:5])
    elif extra == "long":
        rows[k] = rows[k] + ",1.0"
    elif extra == "back" and k > 2:
        rows[k], rows[k - 1] = rows[k - 1], rows[k]
    p = _write(d, "r", HEADER, rows, newline=newline, final_newline=final_newline)
    _same_as_pandas(p, chunk_rows=chunk_rows, block_s=0.1)


def test_extra_columns_units_and_order(tmp_path):
    rows = _clean_rows(300, seed=3)
    g_rows = []
    for i, r in enumerate(rows):
        f = r.split(",")
        g_rows.append(",".join([f"note {i % 3}", f[0], *(f"{float(x) / 9.80665:.7f}" for x in f[1:4]),
                                *(f"{float(x) / 57.29:.7f}" for x in f[4:])]))
    p = _write(tmp_path, "g", "note,t_s,acc_x_g,acc_y_g,acc_z_g,gyr_x_rads,gyr_y_rads,gyr_z_rads", g_rows)
    for chunk_rows in (1, 50, 100_000):
        _same_as_pandas(p, chunk_rows=chunk_rows)
    # reordered columns, accelerometer only
    rows = [",".join([r.split(",")[2], r.split(",")[0], r.split(",")[1], r.split(",")[3]]) for r in _clean_rows(50)]
    _same_as_pandas(_write(tmp_path, "o", "acc_y_ms2,t_s,acc_x_ms2,acc_z_ms2", rows))


def test_non_ascii_and_quotes_go_to_pandas(tmp_path):
    rows = _clean_rows(100)
    rows[40] = rows[40] + ',"a, quoted"'
    rows[60] = rows[60] + ",é"
    p = _write(tmp_path, "q", HEADER + ",comment", [r + ",x" if i not in (40, 60) else r for i, r in enumerate(rows)])
    _same_as_pandas(p)
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())  # a byte order mark before the header
    _same_as_pandas(p)


def test_mantissa_and_decimal_limits(tmp_path):
    # 15-16 significant digits: the largest exact mantissas, and one digit more
    vals = ["9007199254740.991", "900719925474.0991", "0.0000000000000000000001", "0.00000000000000000000001",
            "1234567890123456", "-0.0000", "-0", "12345678901234567"]
    rows = []
    for i, v in enumerate(vals * 3):
        rows.append(f"{i / 100:.6f},{v},1.0,2.0,3.0,4.0,5.0")
    _same_as_pandas(_write(tmp_path, "m", HEADER, rows))
    assert math.copysign(1.0, -0.0) == -1.0


# ---- the sample-rate estimate from the head (Recording._plain_head, issue 9: a fixed per-run cost)

def _irregular_rows(n, fs, seed, *, jitter=0.3):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(1 - jitter, 1 + jitter, n)) / fs
    vals = rng.normal(0, 50, (n, 6))
    return [f"{t[i]:.{int(rng.integers(3, 8))}f}," + ",".join(f"{x:.{int(rng.integers(0, 7))}f}" for x in vals[i])
            for i in range(n)]


@pytest.mark.parametrize("n,fs,seed", [(10, 200.0, 0), (11, 100.0, 1), (1999, 200.0, 2), (2000, 500.0, 3),
                                       (2001, 200.0, 4), (5000, 500.0, 5), (9000, 1000.0, 6)])
@pytest.mark.parametrize("newline,final_newline", [("\n", True), ("\r\n", True), ("\n", False)])
def test_rate_from_the_plain_head_equals_pandas(tmp_path, n, fs, seed, newline, final_newline):
    """Heads of any length (several 64 KiB reads for 9000 rows), irregular times and widths."""
    p = _write(tmp_path, "h", HEADER, _irregular_rows(n, fs, seed), newline=newline, final_newline=final_newline)
    fast, ref = Recording(p), PandasOnly(p)
    assert fast._plain_head() is not None
    assert fast.fs_hz == ref.fs_hz and repr(fast.fs_hz) == repr(ref.fs_hz)


@pytest.mark.parametrize("case", ["bad_after_head", "bad_in_head", "blank_in_head", "quoted_header",
                                  "long_line", "few_rows", "header_only", "not_increasing", "int_times",
                                  "text_in_unused_column"])
def test_rate_or_error_from_the_head_equals_pandas(tmp_path, case):
    rows = _irregular_rows(3000, 200.0, 7)
    header = HEADER
    if case == "bad_after_head":
        rows[2500] = rows[2500].replace(",", ";", 1)  # past the 2000 head rows: the plain head is used
    elif case == "bad_in_head":
        rows[700] = rows[700] + ",1.0"
    elif case == "blank_in_head":
        rows.insert(5, "")
    elif case == "quoted_header":
        header = '"t_s",' + HEADER.split(",", 1)[1]
    elif case == "long_line":
        rows[100] = rows[100] + "," + "x" * 70_000
        header = HEADER + ",note"
        rows = [r + ",n" if i != 100 else r for i, r in enumerate(rows)]
    elif case == "few_rows":
        rows = rows[:9]
    elif case == "header_only":
        rows = []
    elif case == "not_increasing":
        rows = [r.split(",", 1)[0] and "1.0," + r.split(",", 1)[1] for r in rows[:50]]
    elif case == "int_times":
        rows = [f"{i}," + r.split(",", 1)[1] for i, r in enumerate(rows)]
    elif case == "text_in_unused_column":
        header = HEADER + ",note"
        rows = [r + f",lap {i % 4}" for i, r in enumerate(rows)]
    p = _write(tmp_path, "e", header, rows)
    try:
        ref = PandasOnly(p)
    except InputError as exc:
        with pytest.raises(InputError) as got:
            Recording(p)
        assert str(got.value) == str(exc)
        return
    fast = Recording(p)
    assert repr(fast.fs_hz) == repr(ref.fs_hz)
    expect_plain = case in ("bad_after_head", "int_times", "text_in_unused_column")
    assert (fast._plain_head() is not None) == expect_plain
    if case in ("bad_after_head", "text_in_unused_column"):
        _same_as_pandas(p)


@pytest.mark.parametrize("final_newline", [True, False])
@pytest.mark.parametrize("chunk_rows", [1, 3, 100_000])
def test_shortest_plain_lines_fill_the_file_sized_buffers(tmp_path, final_newline, chunk_rows):
    """_chunks sizes its buffer and row block by the file (not 4 MiB for a small recording):
    lines of 1-digit values and an empty unused field are the densest plain lines, the case
    where the row bound is tight; the items still equal pandas'."""
    rows = [f"{i},{i % 10},{(i * 7) % 10},{(i * 3) % 10}," for i in range(40)]
    p = _write(tmp_path, "dense", "t_s,acc_x_ms2,acc_y_ms2,acc_z_ms2,note", rows, final_newline=final_newline)
    _same_as_pandas(p, chunk_rows=chunk_rows, block_s=0.05)
    chunks = list(Recording(p, chunk_rows=chunk_rows)._chunks())
    assert all(isinstance(c, np.ndarray) for c in chunks) and sum(len(c) for c in chunks) == 40
