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

import math

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
_EXP_MASK = np.uint64(0x7FF << 52)
_E8 = np.uint64(100_000_000)
_U32_100 = np.uint32(100)
_PAIRS = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode(), dtype=np.uint8)  # "000102...99"
_HIDDEN = np.uint64(1 << 52)


@njit
def _put_pair(digits, nd, r):
    """Store the two decimal digits of ``r`` (0..99) at ``digits[nd]``, last digit first
    (digits are collected last first); returns the next free index."""
    digits[nd] = _PAIRS[2 * r + 1]
    digits[nd + 1] = _PAIRS[2 * r]
    return nd + 2


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
    # digits, last first; two per division (a 17-digit value: 9 dependent divisions, not 17),
    # and the low 8 digits in 32-bit arithmetic
    nd = 0
    if m >= _E8:
        hi = m // _E8
        lo = np.uint32(m - hi * _E8)
        for _ in range(4):
            q = lo // _U32_100
            r = np.int64(lo - q * _U32_100)
            nd = _put_pair(digits, nd, r)
            lo = q
        m = hi
    while m >= _U100:
        q = m // _U100
        r = np.int64(m - q * _U100)
        nd = _put_pair(digits, nd, r)
        m = q
    if m >= _U10:
        r = np.int64(m)
        nd = _put_pair(digits, nd, r)
    else:
        digits[nd] = np.uint8(48 + np.int64(m))
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
def _write_points(values, shape_of, stamps, sh_head, sh_first, sh_n, f_kind, f_piece, frag, pstart, pend,
                  sh_bytes, emitted):
    """Lines of line protocol, each ``\n``-terminated, for points ``i`` with ``shape_of[i] >= 0``
    (a negative shape: a point made elsewhere, skipped). A point of shape ``s`` is: piece
    ``sh_head[s]`` (series key and a space), then its fields ``f = sh_first[s] ..
    sh_first[s] + sh_n[s] - 1`` joined by ``,``: piece ``f_piece[f]`` (``key=``) and the repr
    of the point's next value if ``f_kind[f]`` is 1, left out (and counted) when that value is
    NaN or infinite; piece ``f_piece[f]`` alone (a string field, always there) if
    ``f_kind[f]`` is 0; then a space and the integer ``stamps[i]``. A point left with no field
    is not written (``emitted[i]`` = 0). ``values``: every numeric value of every point in
    order, finite or not. ``sh_bytes[s]`` bounds the size of a point of shape ``s``.
    Returns (the bytes, values left out, points left empty)."""
    size = 0
    for i in range(shape_of.shape[0]):
        if shape_of[i] >= 0:
            size += sh_bytes[shape_of[i]]
    out = np.empty(size, dtype=np.uint8)
    bits_all = values.view(np.uint64)
    digits = np.empty(24, dtype=np.uint8)
    pos = 0
    v = 0
    dropped = 0
    empty = 0
    for i in range(shape_of.shape[0]):
        s = shape_of[i]
        if s < 0:
            emitted[i] = 0
            continue
        start = pos
        h = sh_head[s]
        for k in range(pstart[h], pend[h]):
            out[pos] = frag[k]
            pos += 1
        body = pos
        f0 = sh_first[s]
        for f in range(f0, f0 + sh_n[s]):
            if f_kind[f] == 1:
                b = bits_all[v]
                v += 1
                if (b & _EXP_MASK) == _EXP_MASK:  # NaN or +/-inf
                    dropped += 1
                    continue
            if pos > body:
                out[pos] = 44  # ','
                pos += 1
            p = f_piece[f]
            for k in range(pstart[p], pend[p]):
                out[pos] = frag[k]
                pos += 1
            if f_kind[f] == 1:
                pos = _write_repr(b, out, pos, digits)
        if pos == body:  # no field left
            pos = start
            emitted[i] = 0
            empty += 1
            continue
        emitted[i] = 1
        out[pos] = 32  # ' '
        pos += 1
        t = stamps[i]
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
    return out[:pos], dropped, empty


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


class Shapes:
    """The literal pieces of point shapes, as :func:`_write_points` reads them: a shape is a
    head piece (series key and a space) and a list of fields, each a ``key=`` piece followed by
    a value (kind 1) or a whole ``key="string"`` piece (kind 0)."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.frag = bytearray()
        self.pstart: list[int] = []
        self.pend: list[int] = []
        self.sh_head: list[int] = []
        self.sh_first: list[int] = []
        self.sh_n: list[int] = []
        self.sh_bytes: list[int] = []
        self.f_kind: list[int] = []
        self.f_piece: list[int] = []
        self._arrays: tuple | None = None

    def __len__(self) -> int:
        return len(self.sh_head)

    def _piece(self, text: str) -> int:
        b = text.encode("utf-8")
        self.pstart.append(len(self.frag))
        self.frag += b
        self.pend.append(len(self.frag))
        return len(self.pstart) - 1

    def add(self, head: str, fields: list[tuple[int, str]]) -> int:
        """Register a shape: ``head`` (with its trailing space), ``(kind, piece)`` per field;
        returns its id."""
        h = self._piece(head)
        self.sh_head.append(h)
        self.sh_first.append(len(self.f_kind))
        self.sh_n.append(len(fields))
        size = self.pend[h] - self.pstart[h] + 22  # + ' ', sign, 19 digits, '\n'
        for kind, text in fields:
            p = self._piece(text)
            self.f_kind.append(kind)
            self.f_piece.append(p)
            size += self.pend[p] - self.pstart[p] + 1 + (25 if kind == 1 else 0)  # ',' + a repr
        self.sh_bytes.append(size)
        self._arrays = None
        return len(self.sh_head) - 1

    @property
    def nbytes(self) -> int:
        return len(self.frag)

    def arrays(self) -> tuple:
        if self._arrays is None:
            i64 = np.int64
            self._arrays = (np.array(self.sh_head, i64), np.array(self.sh_first, i64), np.array(self.sh_n, i64),
                            np.array(self.f_kind, i64), np.array(self.f_piece, i64),
                            np.frombuffer(bytes(self.frag), np.uint8), np.array(self.pstart, i64),
                            np.array(self.pend, i64), np.array(self.sh_bytes, i64))
        return self._arrays


def points(values: list, shape_of: list[int], stamps: list[int], shapes: Shapes) -> tuple[str, int, int, list]:
    """The lines of these points (see :func:`_write_points`), ``\n``-terminated, as one str;
    values left out (NaN/inf); points left empty; per point 1 if written (0: empty, or a
    negative shape). Compiled, unless a timestamp does not fit in int64 or the kernels run as
    Python: then the same with ``repr`` (:func:`points_py`)."""
    if not _PYTHON_ONLY:
        try:
            st = np.fromiter(stamps, np.int64, len(stamps))
        except OverflowError:
            st = None
        if st is not None:
            sh = np.fromiter(shape_of, np.int64, len(shape_of))
            emitted = np.empty(len(shape_of), np.int8)
            head, first, n, kind, piece, frag, pstart, pend, nbytes = shapes.arrays()
            out, dropped, empty = _write_points(np.fromiter(values, np.float64, len(values)), sh, st, head, first, n,
                                                kind, piece, frag, pstart, pend, nbytes, emitted)
            return str(memoryview(out), "utf-8"), int(dropped), int(empty), emitted
    return points_py(values, shape_of, stamps, shapes)


def points_py(values: list, shape_of: list[int], stamps: list[int], shapes: Shapes) -> tuple[str, int, int, list]:
    """:func:`points` in Python, with ``repr`` (any integer timestamp)."""
    frag = bytes(shapes.frag)
    pieces = [frag[a:b].decode("utf-8") for a, b in zip(shapes.pstart, shapes.pend)]
    out: list[str] = []
    emitted: list[int] = []
    v = dropped = empty = 0
    for s, t in zip(shape_of, stamps):
        if s < 0:
            emitted.append(0)
            continue
        f0 = shapes.sh_first[s]
        fields = []
        for f in range(f0, f0 + shapes.sh_n[s]):
            if shapes.f_kind[f] == 1:
                x = float(values[v])
                v += 1
                if not math.isfinite(x):
                    dropped += 1
                    continue
                fields.append(pieces[shapes.f_piece[f]] + repr(x))
            else:
                fields.append(pieces[shapes.f_piece[f]])
        if not fields:
            empty += 1
            emitted.append(0)
            continue
        emitted.append(1)
        out.append(f"{pieces[shapes.sh_head[s]]}{','.join(fields)} {t}\n")
    return "".join(out), dropped, empty, emitted


def warm_up() -> None:
    """Load the compiled kernels now (from numba's cache: ~0.3 s each, once per process)."""
    reprs([0.5])
    shapes = Shapes()
    shapes.add("m ", [(1, "a=")])
    points([0.5], [0], [1], shapes)
