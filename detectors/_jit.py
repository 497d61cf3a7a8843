"""Compiled per-sample / per-step kernels: numba's ``njit`` with its on-disk cache.

Why compiled code at all: a step's work (a few hundred samples) is too small for numpy to
amortise its per-call overhead (~1-5 us per ufunc call, hundreds of calls per step), and
several pieces are inherently sequential (quaternion integration, state machines). The
measured profile (bench/README.md) put ~80 % of the pipeline's time in that overhead.
numba (a well-kept LLVM JIT for numpy code) compiles plain loops over the same arrays;
results are deterministic, so replay stays byte-identical for any block size.

``njit`` caches the machine code beside the module (``__pycache__``), or in the user's
cache directory (``~/.cache/numba``) when the source tree is read-only, so only the very
first run on a machine pays the compile time. Where both are read-only (a read-only
container or VM image with a read-only home) numba refuses to decorate at all ("cannot
cache function ...: no locator available"); gaitwatch then caches in a per-user directory
under the system temporary directory (``NUMBA_CACHE_DIR`` overrides all of this), and
compiles without a cache only if even that is not writable. ``NUMBA_DISABLE_JIT=1`` runs
the same kernels as plain Python (for debugging them).
"""

from __future__ import annotations

import logging
import os
import tempfile

import numba

log = logging.getLogger(__name__)
_warned = False  # the no-cache warning is given once per process


def fallback_cache_dir() -> str | None:
    """Per-user kernel cache under the temporary directory (used when no other is writable);
    None when there is no writable temporary directory either."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    try:
        return os.path.join(tempfile.gettempdir(), f"gaitwatch-numba-cache-{uid}")
    except OSError:  # FileNotFoundError: "No usable temporary directory found"
        return None


def _no_locator(exc: RuntimeError) -> bool:
    return "no locator available" in str(exc)


def njit(fn):
    """``numba.njit`` with the on-disk cache, IEEE-exact arithmetic (no fastmath)."""
    try:
        return numba.njit(cache=True, fastmath=False)(fn)
    except RuntimeError as exc:
        if not _no_locator(exc):
            raise
    fallback = None if numba.config.CACHE_DIR else fallback_cache_dir()
    if fallback:
        numba.config.CACHE_DIR = fallback
        log.info("compiled-kernel cache: the source tree and user cache are read-only; using %s",
                 numba.config.CACHE_DIR)
        try:
            return numba.njit(cache=True, fastmath=False)(fn)
        except RuntimeError as exc:
            if not _no_locator(exc):
                raise
    global _warned
    if not _warned:
        _warned = True
        log.warning("compiled-kernel cache: no writable cache directory (tried %s); kernels are "
                    "compiled on every start", numba.config.CACHE_DIR or "the temporary directory")
    return numba.njit(cache=False, fastmath=False)(fn)
