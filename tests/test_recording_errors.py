"""Every bad-input case of issue 2 raises InputError naming file, line and column (reader API)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from recording_fixtures import CASE_IDS, CASES, HEADER, case_paths, rows

from firmware_bridge.recording import Recording
from pipeline.errors import InputError


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_bad_input_names_file_line_and_column(case, tmp_path):
    csv_path, named = case_paths(case, tmp_path)
    with pytest.raises(InputError) as ei:
        rec = Recording(csv_path)
        for _ in rec.items():
            pass
    e = ei.value
    assert e.path == str(named)
    assert e.line == case.line
    assert e.column == case.column
    assert re.search(case.message, str(e)), str(e)
    assert "\n" not in str(e)
    where = str(named) + (f":{case.line}" if case.line is not None else "")
    assert str(e).startswith(where)


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 100000])
def test_line_numbers_are_exact_across_chunks(tmp_path, chunk_rows):
    body = rows(500)
    body[333 - 2] = "0.5,1,2,3,4,5,x6"
    p = tmp_path / "deep.csv"
    p.write_text("\n".join([HEADER, *body]) + "\n")
    (tmp_path / "deep.json").write_text('{"sensor_id": "d", "placement": "foot", "side": "left"}')
    with pytest.raises(InputError) as ei:
        list(Recording(p, chunk_rows=chunk_rows).items())
    assert (ei.value.line, ei.value.column) == (333, "gyr_z_dps")


@pytest.mark.parametrize("chunk_rows", [1, 5, 100000])
def test_nan_run_spanning_chunks_is_found_at_its_first_line(tmp_path, chunk_rows):
    body = rows(300)
    for line in range(150, 180):  # 30 rows = 0.06 s at 500 Hz > 0.05 s
        i = line - 2
        body[i] = f"{i / 500.0!r},0.1,,9.8,1,1,1"
    p = tmp_path / "nan.csv"
    p.write_text("\n".join([HEADER, *body]) + "\n")
    (tmp_path / "nan.json").write_text('{"sensor_id": "d", "placement": "foot", "side": "left"}')
    with pytest.raises(InputError) as ei:
        list(Recording(p, chunk_rows=chunk_rows).items())
    assert (ei.value.line, ei.value.column) == (150, "acc_y_ms2")
    # a shorter run (20 rows = 0.042 s) is bridged, whatever the chunking
    for line in range(170, 180):
        i = line - 2
        body[i] = f"{i / 500.0!r},0.1,0.2,9.8,1,1,1"
    p.write_text("\n".join([HEADER, *body]) + "\n")
    rec = Recording(p, chunk_rows=chunk_rows)
    n = sum(b.n for b in rec.items() if hasattr(b, "n"))
    assert n == 300 and rec.stats.nan_rows == 20 and rec.stats.filled_samples == 20


def test_leading_and_trailing_nan_rows_within_the_limit_are_dropped(tmp_path):
    body = rows(100)
    for i in (0, 1, 98, 99):
        body[i] = f"{i / 500.0!r},,,,,,"
    p = tmp_path / "edge.csv"
    p.write_text("\n".join([HEADER, *body]) + "\n")
    (tmp_path / "edge.json").write_text('{"sensor_id": "d", "placement": "foot", "side": "left"}')
    rec = Recording(p)
    bl = [b for b in rec.items() if hasattr(b, "n")]
    assert bl[0].t0_s == 2 / 500.0 and sum(b.n for b in bl) == 96 and rec.stats.nan_rows == 4


def test_not_a_text_file(tmp_path):
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\xff\xfe\x00\x01" * 10)
    with pytest.raises(InputError, match="not a UTF-8 text file"):
        Recording(p, placement="foot", side="left")


def test_flags_are_validated(tmp_path):
    p = tmp_path / "ok.csv"
    p.write_text("\n".join([HEADER, *rows()]) + "\n")
    with pytest.raises(InputError, match="placement must be one of"):
        Recording(p, placement="hip", side="left")
    assert np.isfinite(Recording(p, placement="foot", side="left").fs_hz)


def test_earliest_fault_in_a_chunk_is_reported_and_rows_before_it_are_yielded(tmp_path):
    body = rows(3000)
    body[2500 - 2] = "4.996,1,abc,3,4,5,6"  # non-numeric at line 2500
    body[2000 - 2] = "0.5,1,2,3,4,5,6"  # time goes backwards at line 2000 (earlier: this one is reported)
    p = tmp_path / "two.csv"
    p.write_text("\n".join([HEADER, *body]) + "\n")
    (tmp_path / "two.json").write_text('{"sensor_id": "d", "placement": "foot", "side": "left"}')
    rec = Recording(p, block_s=0.5)  # one 65536-row chunk holds the whole file
    got = []
    with pytest.raises(InputError) as ei:
        for it in rec.items():
            got.append(it)
    assert (ei.value.line, ei.value.column) == (2000, "t_s") and "goes backwards" in str(ei.value)
    # every row before line 2000 was resampled and handed on (lines 2..1999 = 1998 samples)
    assert sum(b.n for b in got) == 1998
    assert rec.stats.rows == 1998 and not rec.stats.complete
