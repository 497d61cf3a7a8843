"""Compiled kernels on a read-only installation (a read-only container or VM image).

CI's BLE test runs gaitwatch in a QEMU guest whose view of the checkout and of ``$HOME`` is
read-only; numba then refused to decorate the kernels at import ("cannot cache function ...:
no locator available") and ``gaitwatch live`` died. These tests make the same situation
for real with a private mount namespace (``unshare -m``; root): the source tree and the home
directory are bind-mounted read-only, and gaitwatch must still import, run its kernels, and
cache them in the per-user temporary directory so the second start does not recompile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROBE = r"""
import json
from pipeline import lineprotocol_floats as lf
k = lf._umul128
k(3, 5)
print(json.dumps({"hits": sum(k.stats.cache_hits.values()), "misses": sum(k.stats.cache_misses.values()),
                  "cache_dir": __import__("numba").config.CACHE_DIR}))
"""


def _can_unshare() -> str | None:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "needs root and unshare(1) to make a read-only mount namespace"
    r = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    return None if r.returncode == 0 else f"mount namespaces not permitted here: {r.stderr.strip()}"


def _run_readonly(tmp: Path, home: Path, readonly_tmp: bool) -> subprocess.CompletedProcess:
    # nothing writable: every directory tempfile.gettempdir() would try is read-only too
    ro = [REPO, home] + ([tmp, Path("/tmp"), Path("/var/tmp")] if readonly_tmp else [])
    mounts = " && ".join(f"mount --bind {p} {p} && mount -o remount,ro,bind {p}" for p in ro if p.exists())
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(HOME=str(home), TMPDIR=str(tmp), XDG_CACHE_HOME=str(home / ".cache"), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(["unshare", "-m", "sh", "-c", f"{mounts} && cd {REPO} && exec {sys.executable} -c '{PROBE}'"],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def home_tmp(tmp_path):
    """An empty home directory and TMPDIR for the probe (made read-only inside the namespace)."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    return home, tmp


@pytest.mark.skipif(bool(_can_unshare()), reason=str(_can_unshare()))
def test_kernels_cache_in_temp_dir_when_tree_and_home_are_read_only(home_tmp):
    import json

    home, tmp = home_tmp
    first = _run_readonly(tmp, home, readonly_tmp=False)
    assert first.returncode == 0, first.stderr[-3000:]
    r1 = json.loads(first.stdout.strip().splitlines()[-1])
    assert r1["cache_dir"].startswith(str(tmp)), r1
    assert list(Path(r1["cache_dir"]).rglob("*.nbi")), "no kernel cache index written"
    second = _run_readonly(tmp, home, readonly_tmp=False)
    assert second.returncode == 0, second.stderr[-3000:]
    r2 = json.loads(second.stdout.strip().splitlines()[-1])
    assert r2["hits"] >= 1 and r2["misses"] == 0, r2  # loaded from the cache, not recompiled


@pytest.mark.skipif(bool(_can_unshare()), reason=str(_can_unshare()))
def test_kernels_still_run_when_nothing_is_writable(home_tmp):
    home, tmp = home_tmp
    r = _run_readonly(tmp, home, readonly_tmp=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("compiled on every start") == 1, r.stderr  # warned once, not per kernel


SINK_PROBE = r"""
import json
from numba.core.registry import CPUDispatcher
from pipeline import lineprotocol_floats, window_aggregates
for m in (lineprotocol_floats, window_aggregates):
    m.warm_up()
ks = [k for m in (lineprotocol_floats, window_aggregates) for k in vars(m).values() if isinstance(k, CPUDispatcher)]
print(json.dumps({"kernels": len(ks), "hits": sum(sum(k.stats.cache_hits.values()) for k in ks),
                  "misses": sum(sum(k.stats.cache_misses.values()) for k in ks)}))
"""


def test_install_warmup_leaves_nothing_for_the_influx_sink_to_compile(tmp_path):
    """``make install`` runs ``python -m pipeline.warmup``: afterwards the InfluxDB sink's kernels
    load from the cache. (They were compiled by the first ``--influx`` run instead: two cluster
    workers compiling at once stalled a fresh clone's cluster test for a minute.)"""
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")  # empty: as on a fresh install
    r = subprocess.run([sys.executable, "-m", "pipeline.warmup"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    probe = subprocess.run([sys.executable, "-c", SINK_PROBE], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    got = json.loads(probe.stdout.strip().splitlines()[-1])
    assert got["kernels"] >= 5 and got["hits"] >= 1 and got["misses"] == 0, got  # (kernels called by kernels: no hits of their own)
