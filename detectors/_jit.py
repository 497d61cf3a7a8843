"""Compiled per-sample / per-step kernels: numba's ``njit`` with its on-disk cache.

Why compiled code at all: a step's work (a few hundred samples) is too small for numpy to
amortise its per-call overhead (~1-5 us per ufunc call, hundreds of calls per step), and
several pieces are inherently sequential (quaternion integration, state machines). The
measured profile (bench/README.md) put ~80 % of the pipeline's time in that overhead.
numba (a well-kept LLVM JIT for numpy code) compiles plain loops over the same arrays;
results are deterministic, so replay stays byte-identical for any block size.

``njit`` caches the machine code beside the module (``__pycache__``; numba falls back to a
per-user cache directory when that is read-only), so only the very first run on a machine
pays the compile time. ``NUMBA_DISABLE_JIT=1`` runs the same kernels as plain Python (for
debugging them).
"""

from __future__ import annotations

import numba


def njit(fn):
    """``numba.njit`` with the on-disk cache, IEEE-exact arithmetic (no fastmath)."""
    return numba.njit(cache=True, fastmath=False)(fn)
