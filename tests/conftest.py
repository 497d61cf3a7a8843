"""Shared pytest setup for the gaitwatch test suite.

* ``tests/`` is put on ``sys.path`` so test modules can import helper modules that live
  beside them (``tests/pyshoe.py``, ``tests/<area>_fixtures.py``); pytest runs with
  ``--import-mode=importlib``, which does not do that by itself.
* ``write_recording`` writes a recording in the replay format (fixtures/README.md) into a
  tmp dir: real files, read back by the real reader and the real CLI.
* ``run_cli`` runs the installed ``gaitwatch`` command line in a subprocess
  (``python -m pipeline.cli`` with this interpreter, so the test venv is used).
* ``shared_data_dir`` is ``../shared/data`` relative to the repository; tests that need it
  are skipped with a clear message only when that folder is absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
SHARED_DATA_DIR = (REPO_ROOT / ".." / "shared" / "data").resolve()

if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


def _fmt(v: float) -> str:
    return "" if np.isnan(v) else repr(float(v))


def write_recording_files(
    directory: Path,
    name: str,
    *,
    t_s: np.ndarray,
    acc: np.ndarray,
    gyr: np.ndarray | None = None,
    acc_unit: str = "ms2",
    gyr_unit: str = "dps",
    sidecar: dict | None | str = "default",
    extra_columns: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write ``directory/name.csv`` (+ ``name.json`` unless ``sidecar`` is None).

    ``acc``/``gyr`` are written as given, in the units named by ``acc_unit``/``gyr_unit``.
    Floats are written with ``repr`` (shortest round-trip form), NaN as an empty cell.
    ``sidecar="default"`` writes {sensor_id: name, placement: foot, side: left}; a dict is
    written as JSON; a str is written verbatim (to test invalid JSON).
    """
    directory.mkdir(parents=True, exist_ok=True)
    cols = ["t_s"] + [f"acc_{a}_{acc_unit}" for a in "xyz"]
    data = [np.asarray(t_s, float)] + [np.asarray(acc, float)[:, i] for i in range(3)]
    if gyr is not None:
        cols += [f"gyr_{a}_{gyr_unit}" for a in "xyz"]
        data += [np.asarray(gyr, float)[:, i] for i in range(3)]
    for k, v in (extra_columns or {}).items():
        cols.append(k)
        data.append(np.asarray(v, float))
    csv_path = directory / f"{name}.csv"
    with open(csv_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(",".join(cols) + "\n")
        for row in zip(*data):
            f.write(",".join(_fmt(v) for v in row) + "\n")
    if sidecar == "default":
        sidecar = {"sensor_id": name, "placement": "foot", "side": "left"}
    if isinstance(sidecar, dict):
        (directory / f"{name}.json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    elif isinstance(sidecar, str):
        (directory / f"{name}.json").write_text(sidecar, encoding="utf-8")
    return csv_path


def synthetic_signals(n: int, *, fs_hz: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform time axis and smooth, distinct test signals (not gait: for I/O tests only)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs_hz
    phase = rng.uniform(0, 2 * np.pi, 6)
    acc = np.stack([np.sin(2 * np.pi * (1.0 + i) * t + phase[i]) for i in range(3)], axis=1)
    acc[:, 2] += 9.80665
    gyr = np.stack([100 * np.cos(2 * np.pi * (0.5 + i) * t + phase[3 + i]) for i in range(3)], axis=1)
    return t, acc, gyr


@pytest.fixture
def write_recording(tmp_path):
    """``write_recording(name, t_s=..., acc=..., ...)`` -> path of the CSV in a tmp dir."""

    def _write(name: str = "rec", directory: Path | None = None, **kw) -> Path:
        return write_recording_files(directory or tmp_path, name, **kw)

    return _write


def cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the gaitwatch command line in a subprocess, capturing text output."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def run_cli():
    return cli


@pytest.fixture
def shared_data_dir() -> Path:
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA_DIR} (expected ../shared/data beside the repo)")
    return SHARED_DATA_DIR
