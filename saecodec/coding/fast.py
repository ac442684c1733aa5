"""The compiled coder of the bounded and lossless modes (c_fastcode/; stream: docs/fastcode.md).

One call codes a whole chunk in C: quantiser of the bound mode, a stencil per plane
(``STENCILS``; docs/fastcode.md calls it the plane's predictor), context-modelled rANS,
and an exact list of the elements no code could bound; the encoder verifies every element
with the decoder's own arithmetic, so the bound holds by construction. cffi releases the
GIL during the calls, so chunks code in parallel threads. The pure-Python decoder in
tests/fastcode_reference.py is the executable specification.

Arrays are taken in their own dtype (no float64 copy of the chunk); float16 is coded as
float32 and verified as the float16 it will be cast back to. Masks are packed bits
(``numpy.packbits`` of the chunk in C order): masked elements are neither coded nor
written, the caller stores them.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import PayloadError, SaecodecError
from .compiled import extension
from .payload import ELEMENT_TYPES

ffi, lib = extension("_fastcode", "compiled coder")  # a failed C build: other modes still work

DTYPES = {np.dtype(name[1:]): fc for name, _, fc in ELEMENT_TYPES if fc is not None}  # native dtype -> FC_*
F16, F32 = np.dtype("f2"), np.dtype("f4")
MODES = {"lossless": 0, "abs": 1, "pwrel": 2, "poisson": 3}
# A plane's stencil, what the stream calls its predictor (c_fastcode/): none, 2D Lorenzo, (W + N) / 2
STENCILS = ("none", "lorenzo", "avg")
# ``allowed`` bits: stencil k on the plane itself (bit k) or on its residual to ``pred`` (bit 3 + k)
ALLOW_PLAIN, ALLOW_PRED, ALLOW_ALL = 0x07, 0x38, 0x3F
NO_DITHER, VERIFY_F16 = 1, 2
STREAM_VERSION = 1  # FC_VERSION: a stream's first byte (docs/fastcode.md)
_CORRUPT, _NOMEM, _ARG = -1, -2, -3


def _code(dtype: np.dtype) -> int:
    code = _CODES.get(dtype)  # the common call: a native dtype object seen before
    if code is not None:
        return code
    dt = np.dtype(dtype).newbyteorder("=")
    if dt == F16:
        dt = F32
    if dt not in DTYPES:
        raise SaecodecError(f"the bounded coder cannot store dtype {dtype}")
    return DTYPES[dt]


_CODES = {**DTYPES, F16: DTYPES[F32]}


def planes_of(shape) -> tuple[int, int, int]:
    """(P, H, W): the chunk as P planes of H x W (the last two dimensions)."""
    if len(shape) < 2:
        raise SaecodecError(f"a chunk needs at least 2 dimensions, got {tuple(shape)}")
    return math.prod(int(d) for d in shape[:-2]), int(shape[-2]), int(shape[-1])


def _bits(mask, n: int):
    """A mask as packed bits (kept alive by the caller) and its cffi pointer."""
    if mask is None:
        return None, ffi.NULL
    m = np.asarray(mask)
    if m.dtype == bool:
        if m.size != n:
            raise SaecodecError(f"mask of {m.size} elements for a chunk of {n}")
        m = np.packbits(m.reshape(-1))
    elif m.dtype != np.uint8 or m.size != (n + 7) // 8:
        raise SaecodecError("mask must be boolean or numpy.packbits of the chunk")
    m = np.ascontiguousarray(m)
    return m, ffi.from_buffer("uint8_t[]", m)


def _f64(a, n: int, what: str):
    if a is None:
        return None, ffi.NULL
    a = np.ascontiguousarray(a, dtype=np.float64).reshape(-1)
    if a.size != n:
        raise SaecodecError(f"{what} has {a.size} values, expected {n}")
    return a, ffi.from_buffer("double[]", a)


def encode(x: np.ndarray, mode: str = "abs", eb: float = 0.0, *, mask=None, pred=None, half_step=None,
           eb_verify=None, allowed: int = ALLOW_ALL, dither: bool = True, stats: bool = False):
    """One chunk -> stream. ``mode``: lossless (integers), abs (|d - x| <= eb), pwrel
    (<= eb |x|), poisson (<= eb sqrt(max(x, 1)), integer-valued x >= 0). With ``pred``
    (abs only), planes may code the residual to it with ``half_step``/``eb_verify`` per
    plane, verified before the cast (the caller reserves room for it)."""
    x = np.asarray(x)
    flags = 0 if dither else NO_DITHER
    if x.dtype.newbyteorder("=") == F16:
        x, flags = x.astype(F32), flags | VERIFY_F16
    x = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("="))
    P, H, W = planes_of(x.shape)
    if mode not in MODES:
        raise SaecodecError(f"unknown bound mode {mode!r}")
    keep = [_bits(mask, x.size), _f64(pred, x.size, "pred"), _f64(half_step, P, "half_step"),
            _f64(eb_verify, P, "eb_verify")]
    (_, mptr), (_, pptr), (_, hptr), (_, vptr) = keep
    out = ffi.new("uint8_t **")
    st = ffi.new("fc_stats *")
    n = lib.fc_encode(ffi.from_buffer(x), _code(x.dtype), P, H, W, mptr, MODES[mode], float(eb), hptr, vptr, pptr,
                      int(allowed), flags, out, st)
    if n == _NOMEM:
        raise MemoryError("the bounded coder ran out of memory")
    if n < 0:
        raise SaecodecError(f"the bounded coder refused mode {mode!r} with bound {eb!r} on {x.dtype} {x.shape}")
    try:
        data = bytes(ffi.buffer(out[0], n))
    finally:
        lib.fc_free(out[0])
    if not stats:
        return data
    s = {k: getattr(st, k) for k in ("n_fallback", "n_coded", "table_bytes", "rans_bytes", "extra_bytes",
                                     "fallback_bytes", "n_ctx", "ctx_kind")}
    s["stencils"], s["planes_with_pred"] = list(st.predictors)[:3], st.predictors[3]  # planes per stencil
    return data, s


def decode(buf, shape, dtype, *, mask=None, pred=None, out: np.ndarray | None = None) -> np.ndarray:
    """Stream -> the chunk (masked elements of ``out`` are left as they are)."""
    dt = np.dtype(dtype)
    if not dt.isnative:
        dt = dt.newbyteorder("=")
    shape = tuple(int(s) for s in shape)
    P, H, W = planes_of(shape)
    n = P * H * W
    if out is None:
        out = np.empty(shape, dt)
    elif out.dtype != dt or out.shape != shape or not out.flags.c_contiguous:
        raise SaecodecError("out must be a C-contiguous array of the chunk's shape and dtype")
    target = out.astype(F32) if dt == F16 else out
    mbits, mptr = _bits(mask, n) if mask is not None else (None, ffi.NULL)  # kept alive through the call
    pbuf, pptr = _f64(pred, n, "pred") if pred is not None else (None, ffi.NULL)
    mv = memoryview(buf).cast("B")
    rc = lib.fc_decode(ffi.from_buffer(mv), len(mv), ffi.from_buffer(target, require_writable=True), _code(dt),
                       P, H, W, mptr, pptr)
    if rc == _NOMEM:
        raise MemoryError("the bounded coder ran out of memory")
    if rc:
        raise PayloadError("corrupted payload: the residual stream does not decode"
                           + (" (it needs the network's prediction)" if rc == _ARG and pred is None else ""))
    if target is not out:
        with np.errstate(over="ignore"):  # only a damaged stream holds values float16 cannot
            out[...] = target.astype(F16)
    return out


def uses_pred(buf) -> bool:
    """Whether a stream needs the caller's prediction (the network's reconstruction)."""
    mv = memoryview(buf).cast("B")  # fc_peek's test, without two cffi allocations per chunk
    if len(mv) < 5 or mv[0] != STREAM_VERSION or mv[1] > MODES["poisson"]:
        raise PayloadError("corrupted payload: not a residual stream")
    return bool((mv[2] >> 3) & 1)


def plane_choices(buf, planes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per plane: the stencil (index into STENCILS) and whether it codes the residual to the prediction."""
    pk, on = np.zeros(planes, np.uint8), np.zeros(planes, np.uint8)
    mv = memoryview(buf).cast("B")
    if lib.fc_planes(ffi.from_buffer(mv), len(mv), planes, ffi.from_buffer(pk, require_writable=True),
                     ffi.from_buffer(on, require_writable=True)):
        raise PayloadError("corrupted payload: residual stream header")
    return pk, on.astype(bool)


def _scan_view(arr: np.ndarray) -> np.ndarray:
    return arr.astype(F32) if arr.dtype == F16 else arr


def special(arr: np.ndarray, values=(), below=None, nonfinite: bool = True) -> tuple[np.ndarray | None, int]:
    """Packed bits of the elements that are non-finite, equal to one of ``values`` or below
    ``below``, and their count (None, 0 when there are none). One pass in C; a sentinel the
    element type cannot hold matches nothing."""
    a = np.ascontiguousarray(_scan_view(arr))
    dt = a.dtype
    if dt.kind in "iu":
        vals = [v for v in (_as_int(v, dt) for v in values) if v is not None]
        isent = [v - (1 << 64) if v >= 1 << 63 else v for v in vals]  # 64-bit patterns
    else:
        vals, isent = [float(v) for v in values], [0] * len(values)
    if len(vals) > 64:
        raise SaecodecError("at most 64 mask values")
    bits = np.empty((a.size + 7) // 8, np.uint8)
    count = lib.fc_scan_special(ffi.from_buffer(a), _code(dt), a.size, bool(nonfinite and dt.kind == "f"),
                                ffi.new("double[]", [float(v) for v in vals] or [0.0]),
                                ffi.new("int64_t[]", isent or [0]), len(vals),
                                float(below if below is not None else 0.0), below is not None,
                                ffi.from_buffer("uint8_t[]", bits))
    return (bits, int(count)) if count > 0 else (None, 0)


def _as_int(v, dt: np.dtype) -> int | None:
    """A sentinel as a value of the integer type ``dt`` (None if it holds no such value)."""
    try:
        iv = int(v)
    except (OverflowError, ValueError):
        return None
    info = np.iinfo(dt)
    return iv if iv == v and info.min <= iv <= info.max else None


def _raw_view(arr: np.ndarray) -> np.ndarray:
    """Same bytes as an integer type: gather and scatter only copy elements."""
    return arr.view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[arr.dtype.itemsize])


def gather(arr: np.ndarray, bits: np.ndarray, count: int) -> np.ndarray:
    """The masked elements' values in C order."""
    a = np.ascontiguousarray(arr)
    vals = np.empty(count, a.dtype)
    raw = _raw_view(a)
    got = lib.fc_gather_masked(ffi.from_buffer(raw), _code(raw.dtype), a.size, ffi.from_buffer("uint8_t[]", bits),
                               ffi.from_buffer(vals, require_writable=True))
    if got != count:
        raise SaecodecError("mask bits and count disagree")
    return vals


def scatter(out: np.ndarray, bits: np.ndarray, values: np.ndarray) -> None:
    """Put the stored values back at the masked positions (of a C-contiguous ``out``)."""
    raw = _raw_view(out)
    vals = np.ascontiguousarray(values, dtype=out.dtype)
    if lib.fc_scatter_masked(ffi.from_buffer(raw, require_writable=True), _code(raw.dtype), out.size,
                             ffi.from_buffer("uint8_t[]", bits), ffi.from_buffer(vals), vals.size):
        raise PayloadError("corrupted payload: mask positions do not match their values")


def value_range(arr: np.ndarray, bits=None) -> tuple[float, float, int]:
    """Min, max (float64) and count of the finite elements outside the mask."""
    a = np.ascontiguousarray(_scan_view(arr))
    lo, hi = ffi.new("double *"), ffi.new("double *")
    mbits, mptr = _bits(bits, a.size)
    count = lib.fc_range(ffi.from_buffer(a), _code(a.dtype), a.size, mptr, lo, hi)
    return lo[0], hi[0], int(count)


def exp2(t: np.ndarray) -> np.ndarray:
    """2^t with the decoder's deterministic polynomial (identical bits on every machine)."""
    t = np.ascontiguousarray(t, dtype=np.float64)
    out = np.empty_like(t)
    lib.fc_exp2_array(ffi.from_buffer("double[]", t), ffi.from_buffer("double[]", out, require_writable=True), t.size)
    return out
