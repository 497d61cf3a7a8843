"""Many floats -> their Python ``repr`` strings at once, compiled (the line-protocol encoder's
hot spot).

Why: a step point carries ~30 full-precision floats, and CPython's ``repr`` of such a float
(David Gay's dtoa, shortest round trip, with big-integer arithmetic for 16-17 digit values)
costs 0.3-0.8 us -- more than half of the sink's CPU per point, which the InfluxDB server
sharing the CPUs then lacks. This is Ryu (Ulf Adams, "Ryū: fast float-to-string conversion",
PLDI 2018, https://github.com/ulfjack/ryu, ``d2s.c``), which finds the same digits -- the
shortest decimal that reads back to the same double, the closest one if several, ties to
even -- with 64x128-bit multiplications, compiled with numba (see detectors/_jit.py), and
written in ``repr``'s layout (``'1.5'``, ``'3.0'``, ``'1e+16'``, ``'1.5e-05'``, ``'-0.0'``).
tests/test_lineprotocol_floats.py checks it against ``repr`` (Hypothesis, random bit
patterns, powers of 2 and 10, subnormals, integers).

:func:`reprs` is the entry point: a sequence of finite floats -> list of strings.
"""

from __future__ import annotations

import numba
import numpy as np

from detectors._jit import njit

_POW5_INV_BITCOUNT = 125
_POW5_BITCOUNT = 125


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Ryu's DOUBLE_POW5_INV_SPLIT / DOUBLE_POW5_SPLIT (low, high 64-bit words), from exact ints."""
    inv = np.zeros((342, 2), dtype=np.uint64)
    for q in range(342):
        bits = ((q * 1217359) >> 19) + 1  # pow5bits(q)
        v = (1 << (bits - 1 + _POW5_INV_BITCOUNT)) // 5**q + 1
        inv[q] = (v & (2**64 - 1), v >> 64)
    pow5 = np.zeros((326, 2), dtype=np.uint64)
    for i in range(326):
        p = 5**i
        n = p.bit_length()
        v = p >> (n - _POW5_BITCOUNT) if n >= _POW5_BITCOUNT else p << (_POW5_BITCOUNT - n)
        pow5[i] = (v & (2**64 - 1), v >> 64)
    return inv, pow5


_INV_SPLIT, _SPLIT = _tables()

_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U4 = np.uint64(4)
_U5 = np.uint64(5)
_U10 = np.uint64(10)
_U50 = np.uint64(50)
_U100 = np.uint64(100)
_MANT_MASK = np.uint64((1 << 52) - 1)
_HIDDEN = np.uint64(1 << 52)


@njit
def _umul128(a, b):
    """The 128-bit product of two uint64: (low, high)."""
    a_lo = a & _M32
    a_hi = a >> _S32
    b_lo = b & _M32
    b_hi = b >> _S32
    b00 = a_lo * b_lo
    b01 = a_lo * b_hi
    b10 = a_hi * b_lo
    b11 = a_hi * b_hi
    mid1 = b10 + (b00 >> _S32)
    mid2 = b01 + (mid1 & _M32)
    hi = b11 + (mid1 >> _S32) + (mid2 >> _S32)
    lo = (mid2 << _S32) | (b00 & _M32)
    return lo, hi


@njit
def _mul_shift64(m, mul_lo, mul_hi, j):
    """(m * mul) >> j for a 128-bit mul, 64 < j < 128."""
    _, high0 = _umul128(m, mul_lo)
    low1, high1 = _umul128(m, mul_hi)
    s = high0 + low1
    if s < high0:
        high1 += _U1
    dist = np.uint64(j - 64)
    return (high1 << (np.uint64(64) - dist)) | (s >> dist)


@njit
def _mul_shift_all64(m2, mm_shift, mul_lo, mul_hi, j):
    """Ryu's mulShiftAll64: the scaled value and its upper/lower bounds, (vr, vp, vm)."""
    return (_mul_shift64(_U4 * m2, mul_lo, mul_hi, j), _mul_shift64(_U4 * m2 + _U2, mul_lo, mul_hi, j),
            _mul_shift64(_U4 * m2 - _U1 - mm_shift, mul_lo, mul_hi, j))


@njit
def _pow5_factor(v):
    count = 0
    while v % _U5 == _U0:
        v = v // _U5
        count += 1
    return count


@njit
def _d2d(bits):
    """Ryu's d2d: the shortest decimal (digits, exponent) of a positive finite double."""
    ieee_m = bits & _MANT_MASK
    ieee_e = np.int64((bits >> np.uint64(52)) & np.uint64(0x7FF))
    if ieee_e == 0:
        e2 = 1 - 1023 - 52 - 2
        m2 = ieee_m
    else:
        e2 = ieee_e - 1023 - 52 - 2
        m2 = _HIDDEN | ieee_m
    accept_bounds = (m2 & _U1) == _U0
    mv = _U4 * m2
    mm_shift = _U1 if (ieee_m != _U0 or ieee_e <= 1) else _U0
    vm_trailing = False
    vr_trailing = False
    if e2 >= 0:
        q = ((e2 * 78913) >> 18) - (1 if e2 > 3 else 0)  # log10Pow2(e2) - (e2 > 3)
        e10 = q
        k = _POW5_INV_BITCOUNT + (((q * 1217359) >> 19) + 1) - 1
        i = -e2 + q + k
        lo = _INV_SPLIT[q, 0]
        hi = _INV_SPLIT[q, 1]
        vr, vp, vm = _mul_shift_all64(m2, mm_shift, lo, hi, i)
        if q <= 21:
            if mv % _U5 == _U0:
                vr_trailing = _pow5_factor(mv) >= q
            elif accept_bounds:
                vm_trailing = _pow5_factor(mv - _U1 - mm_shift) >= q
            elif _pow5_factor(mv + _U2) >= q:
                vp -= _U1
    else:
        q = (((-e2) * 732923) >> 20) - (1 if -e2 > 1 else 0)  # log10Pow5(-e2) - (-e2 > 1)
        e10 = q + e2
        i = -e2 - q
        k = (((i * 1217359) >> 19) + 1) - _POW5_BITCOUNT
        j = q - k
        lo = _SPLIT[i, 0]
        hi = _SPLIT[i, 1]
        vr, vp, vm = _mul_shift_all64(m2, mm_shift, lo, hi, j)
        if q <= 1:
            vr_trailing = True
            if accept_bounds:
                vm_trailing = mm_shift == _U1
            else:
                vp -= _U1
        elif q < 63:
            vr_trailing = (mv & ((_U1 << np.uint64(q)) - _U1)) == _U0
    removed = 0
    last_removed = _U0
    if vm_trailing or vr_trailing:
        while vp // _U10 > vm // _U10:
            vm_trailing = vm_trailing and (vm % _U10 == _U0)
            vr_trailing = vr_trailing and (last_removed == _U0)
            last_removed = vr % _U10
            vr = vr // _U10
            vp = vp // _U10
            vm = vm // _U10
            removed += 1
        if vm_trailing:
            while vm % _U10 == _U0:
                vr_trailing = vr_trailing and (last_removed == _U0)
                last_removed = vr % _U10
                vr = vr // _U10
                vp = vp // _U10
                vm = vm // _U10
                removed += 1
        if vr_trailing and last_removed == _U5 and vr % _U2 == _U0:
            last_removed = np.uint64(4)  # exactly .5: round to even
        up = (vr == vm and (not accept_bounds or not vm_trailing)) or last_removed >= _U5
        output = vr + (_U1 if up else _U0)
    else:
        round_up = False
        if vp // _U100 > vm // _U100:
            round_up = vr % _U100 >= _U50
            vr = vr // _U100
            vp = vp // _U100
            vm = vm // _U100
            removed += 2
        while vp // _U10 > vm // _U10:
            round_up = vr % _U10 >= _U5
            vr = vr // _U10
            vp = vp // _U10
            vm = vm // _U10
            removed += 1
        output = vr + (_U1 if (vr == vm or round_up) else _U0)
    return output, e10 + removed


@njit
def _write_repr(bits, out, pos, digits):
    """Write repr() of the finite double with these bits at ``out[pos:]``; returns the new pos."""
    if bits >> np.uint64(63):
        out[pos] = 45  # '-'
        pos += 1
    bits &= np.uint64(0x7FFFFFFFFFFFFFFF)
    if bits == _U0:
        out[pos] = 48  # '0.0'
        out[pos + 1] = 46
        out[pos + 2] = 48
        return pos + 3
    m, e = _d2d(bits)
    nd = 0
    while m > _U0:
        digits[nd] = np.uint8(48 + np.int64(m % _U10))
        m = m // _U10
        nd += 1
    # digits[nd-1] is the leading digit; the value is 0.D * 10**decpt
    decpt = nd + e
    if -4 < decpt <= 16:
        if decpt <= 0:
            out[pos] = 48
            out[pos + 1] = 46
            pos += 2
            for _ in range(-decpt):
                out[pos] = 48
                pos += 1
            for d in range(nd - 1, -1, -1):
                out[pos] = digits[d]
                pos += 1
        elif decpt >= nd:
            for d in range(nd - 1, -1, -1):
                out[pos] = digits[d]
                pos += 1
            for _ in range(decpt - nd):
                out[pos] = 48
                pos += 1
            out[pos] = 46
            out[pos + 1] = 48
            pos += 2
        else:
            for d in range(nd - 1, -1, -1):
                out[pos] = digits[d]
                pos += 1
                if d == nd - decpt:
                    out[pos] = 46
                    pos += 1
    else:
        out[pos] = digits[nd - 1]
        pos += 1
        if nd > 1:
            out[pos] = 46
            pos += 1
            for d in range(nd - 2, -1, -1):
                out[pos] = digits[d]
                pos += 1
        x = decpt - 1
        out[pos] = 101  # 'e'
        out[pos + 1] = 45 if x < 0 else 43
        pos += 2
        if x < 0:
            x = -x
        if x >= 100:
            out[pos] = 48 + x // 100
            pos += 1
        out[pos] = 48 + (x // 10) % 10
        out[pos + 1] = 48 + x % 10
        pos += 2
    return pos


@njit
def _format_into(values, out):
    """Write repr(v) of each value followed by ``,`` into ``out``; returns the length used."""
    bits_all = values.view(np.uint64)
    digits = np.empty(20, dtype=np.uint8)
    pos = 0
    for n in range(values.shape[0]):
        pos = _write_repr(bits_all[n], out, pos, digits)
        out[pos] = 44  # ','
        pos += 1
    return pos


@njit
def _write_lines(values, counts, firsts, stamps, frag, pstart, pend, out):
    """Lines of line protocol into ``out``, each ``\n``-terminated: line ``l`` is piece
    ``firsts[l]``, value, piece ``firsts[l] + 1``, value, ... (``counts[l]`` values), the
    last piece, the integer ``stamps[l]``. Pieces are ``frag[pstart[p]:pend[p]]`` (UTF-8).
    Returns the length used."""
    bits_all = values.view(np.uint64)
    digits = np.empty(20, dtype=np.uint8)
    pos = 0
    v = 0
    for line in range(counts.shape[0]):
        p = firsts[line]
        for j in range(counts[line] + 1):
            for k in range(pstart[p + j], pend[p + j]):
                out[pos] = frag[k]
                pos += 1
            if j < counts[line]:
                pos = _write_repr(bits_all[v], out, pos, digits)
                v += 1
        t = stamps[line]
        if t < 0:
            out[pos] = 45
            pos += 1
            t = -t
        nd = 0
        while True:
            digits[nd] = np.uint8(48 + t % 10)
            t = t // 10
            nd += 1
            if t == 0:
                break
        for d in range(nd - 1, -1, -1):
            out[pos] = digits[d]
            pos += 1
        out[pos] = 10  # '\n'
        pos += 1
    return pos


_PYTHON_ONLY = bool(numba.config.DISABLE_JIT)  # (debugging the kernels as Python: repr instead)


def reprs(values) -> list[str]:
    """``[repr(float(v)) for v in values]`` for finite values, computed in one compiled call."""
    n = len(values)
    if not n:
        return []
    arr = np.fromiter(values, np.float64, n)
    if _PYTHON_ONLY:
        return [repr(v) for v in arr.tolist()]
    out = np.empty(25 * n, dtype=np.uint8)  # sign + 17 digits + '.' + 'e-308' + ','
    used = _format_into(arr, out)
    return out[: used - 1].tobytes().decode("ascii").split(",")


def lines(values, counts, firsts, stamps, frag, pstart, pend, size: int) -> list[str] | None:
    """Lines from pieces and values (see :func:`_write_lines`); ``size`` bounds the output
    (pieces + 25 per value + 21 per line). None if a timestamp does not fit in int64 or the
    kernels run as Python (the caller then formats with ``repr``)."""
    if _PYTHON_ONLY:
        return None
    try:
        st = np.fromiter(stamps, np.int64, len(stamps))
    except OverflowError:
        return None
    out = np.empty(size, dtype=np.uint8)
    used = _write_lines(np.fromiter(values, np.float64, len(values)), np.fromiter(counts, np.int64, len(counts)),
                        np.fromiter(firsts, np.int64, len(firsts)), st, frag, pstart, pend, out)
    return out[: used - 1].tobytes().decode("utf-8").split("\n")


def warm_up() -> None:
    """Load the compiled kernels now (from numba's cache: ~0.3 s each, once per process)."""
    reprs([0.5])
    frag = np.frombuffer(b"a=", np.uint8)
    lines([0.5], [1], [0], [1], frag, np.array([0, 2], np.int64), np.array([2, 2], np.int64), 64)
