"""Bad recordings, one per error case of issue 2, for the reader and the CLI tests.

Each case writes real files into a directory and says where the error must point:
``line`` (1-based file line; None if the error has no line) and ``column`` (a CSV
column or a sidecar key; None if none), plus a regex the message must match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

HEADER = "t_s,acc_x_ms2,acc_y_ms2,acc_z_ms2,gyr_x_dps,gyr_y_dps,gyr_z_dps"
SIDECAR = {"sensor_id": "s1", "placement": "foot", "side": "left"}


def rows(n: int = 50, fs_hz: float = 500.0) -> list[str]:
    """n good data rows (file lines 2..n+1)."""
    out = []
    for i in range(n):
        t = i / fs_hz
        out.append(f"{t!r},{np.sin(t):.5f},{np.cos(t):.5f},9.80665,{10 * t:.4f},1.0,-2.0")
    return out


@dataclass
class Case:
    name: str
    csv: str | None  # file text; None: use the good rows
    line: int | None
    column: str | None
    message: str
    sidecar: dict | str | None = field(default_factory=lambda: dict(SIDECAR))
    args: tuple[str, ...] = ()

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        p = directory / f"{self.name}.csv"
        text = self.csv if self.csv is not None else "\n".join([HEADER, *rows()]) + "\n"
        p.write_text(text, encoding="utf-8")
        if isinstance(self.sidecar, dict):
            (directory / f"{self.name}.json").write_text(json.dumps(self.sidecar, indent=2) + "\n")
        elif isinstance(self.sidecar, str):
            (directory / f"{self.name}.json").write_text(self.sidecar)
        return p

    @property
    def where_file(self) -> str:
        """The file the error must name (the sidecar for sidecar errors)."""
        return f"{self.name}.json" if self.column in ("sensor_id", "placement", "side", "placment", "start_utc") \
            or self.name.startswith("sidecar") else f"{self.name}.csv"


def _csv(header: str, body: list[str]) -> str:
    return "\n".join([header, *body]) + "\n"


def _edit(line: int, new: str, n: int = 50) -> list[str]:
    r = rows(n)
    r[line - 2] = new
    return r


def _nan_rows(first_line: int, count: int) -> list[str]:
    r = rows(200)
    for k in range(count):
        i = first_line - 2 + k
        t = i / 500.0
        r[i] = f"{t!r},,,,,,"
    return r


CASES: list[Case] = [
    Case("missing_column", _csv("t_s,acc_x_ms2,acc_y_ms2", [f"{i / 100},1,2" for i in range(20)]),
         1, "acc_z_ms2", r"missing required column 'acc_z_ms2'"),
    Case("misspelled_column", _csv(HEADER.replace("acc_y_ms2", "acc_y_mss2"), rows()),
         1, "acc_y_mss2", r"did you mean 'acc_y_ms2'"),
    Case("misspelled_time", _csv(HEADER.replace("t_s", "time_s"), rows()),
         1, "t_s", r"missing required column 't_s'; did you mean 'time_s'"),
    Case("unknown_unit", _csv(HEADER.replace("gyr_z_dps", "gyr_z_degs"), rows()),
         1, "gyr_z_degs", r"unknown unit suffix '_degs'.*_dps, _rads"),
    Case("mixed_units", _csv(HEADER.replace("acc_y_ms2", "acc_y_g"), rows()),
         1, "acc_y_g", r"mixed units in acc columns"),
    Case("partial_gyro", _csv(",".join(HEADER.split(",")[:6]), [",".join(r.split(",")[:6]) for r in rows()]),
         1, "gyr_z_dps", r"missing required column 'gyr_z_dps'"),
    Case("non_numeric", _csv(HEADER, _edit(7, "0.01,0.1,abc,9.8,1,1,1")),
         7, "acc_y_ms2", r"expected a number, got 'abc'"),
    Case("non_numeric_time", _csv(HEADER, _edit(30, "0:05,0.1,0.2,9.8,1,1,1")),
         30, "t_s", r"expected a number, got '0:05'"),
    Case("nan_run", _csv(HEADER, _nan_rows(100, 30)),
         100, "acc_x_ms2", r"missing values .* more than \[ingest\]\.gap_fill_max_s=0\.05 s"),
    Case("missing_time_value", _csv(HEADER, _edit(12, ",0.1,0.2,9.8,1,1,1")),
         12, "t_s", r"missing time value"),
    Case("blank_line", _csv(HEADER, _edit(15, "")),
         15, "t_s", r"empty line"),
    Case("infinite_value", _csv(HEADER, _edit(9, "0.014,0.1,0.2,inf,1,1,1")),
         9, "acc_z_ms2", r"not finite"),
    Case("time_backwards", _csv(HEADER, _edit(20, "0.001,0.1,0.2,9.8,1,1,1")),
         20, "t_s", r"time goes backwards: t_s=0.001 after 0.034"),
    Case("time_repeats", _csv(HEADER, _edit(21, "0.036,0.1,0.2,9.8,1,1,1")),
         21, "t_s", r"time repeats"),
    Case("empty_file", "", 1, None, r"empty file"),
    Case("header_only", HEADER + "\n", 2, None, r"no data rows \(header only\)"),
    Case("too_few_rows", _csv(HEADER, rows(4)), 5, None, r"too few rows: 4 data rows, need at least 10"),
    Case("sidecar_missing_side", None, None, "side", r"missing required key 'side'",
         sidecar={"sensor_id": "s1", "placement": "foot"}),
    Case("sidecar_unknown_placement", None, 3, "placement", r"expected one of foot, shank, got 'hip'",
         sidecar={"sensor_id": "s1", "placement": "hip", "side": "left"}),
    Case("sidecar_unknown_side", None, 4, "side", r"expected one of left, right, got 'centre'",
         sidecar={"sensor_id": "s1", "placement": "foot", "side": "centre"}),
    Case("sidecar_misspelled_key", None, 3, "placment", r"unknown key 'placment'; did you mean 'placement'",
         sidecar={"sensor_id": "s1", "placment": "foot", "side": "left"}),
    Case("sidecar_invalid_json", None, 4, None, r"invalid JSON",
         sidecar='{\n  "sensor_id": "s1",\n  "placement": "foot"\n  "side": "left"\n}\n'),
    Case("sidecar_bad_start_utc", None, 5, "start_utc", r"ISO 8601",
         sidecar={**SIDECAR, "start_utc": "yesterday"}),
    Case("sidecar_absent", None, None, None, r"sidecar sidecar_absent\.json not found.*--placement and --side",
         sidecar=None),
]

CASE_IDS = [c.name for c in CASES]


def case_paths(case: Case, directory: Path) -> tuple[Path, Path]:
    """(csv written, file the error must name)."""
    p = case.write(directory)
    named = p.with_suffix(".json") if case.name.startswith("sidecar") and case.sidecar is not None else p
    return p, named


WriteFn = Callable[[Path], Path]
