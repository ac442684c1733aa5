"""pwrel against the network's prediction: log2|x| under an absolute bound, signs apart.

|d - x| <= eb |x| holds when |log2|d| - log2|x|| <= log2(1 + eb'), where eb' is eb less
what the float64 log2/exp2 and the cast to the element type can add. The section holds
the signs (-1, 0, +1) as a lossless int8 stream, and log2|x| of the nonzero elements as a
float64 abs stream whose planes are coded against P = log2(max(|y|, floor)) (y: the
network's reconstruction) or alone, as the compiled coder finds cheaper. The guard for a
decoder whose y differs is the abs mode's, carried through log2: sens / (max(|y|, floor)
ln 2). |d| = exp2(L) with the compiled coder's deterministic polynomial, so every decoder
computes the same bits. Float chunks whose nonzero values are all normal numbers only;
the caller uses the plain pwrel stream for the others and whenever that is smaller.

Section (after the kind byte): float64 floor, block(sign stream), block(log stream).
"""

from __future__ import annotations

import numpy as np

from ..errors import PayloadError
from . import fast
from . import payload as fmt

_LN2 = float(np.log(2.0))
_LOG_ROUND = 2.0 ** -40  # float64 log2 of x (encoder) or of |y| (decoder): a few ulps of |log2|
_CAST = {"e": 2.0 ** -10, "f": 2.0 ** -23, "d": 2.0 ** -40}  # relative rounding of the cast, with room
MIN_EB = 2.0 ** -20


def log_bound(eb: float, dtype: np.dtype) -> float:
    """The bound on |log2|d| - log2|x|| that keeps |d - x| <= eb |x| after the cast (<= 0: none)."""
    eff = eb * (1.0 - 2.0 ** -20) - _CAST.get(np.dtype(dtype).char, 1.0)
    return float(np.log2(1.0 + eff)) if eff >= MIN_EB else 0.0


def _base(y: np.ndarray, floor: float) -> np.ndarray:
    return np.log2(np.maximum(np.abs(y), floor))


def encode(c: np.ndarray, masked: np.ndarray, eb: float, y: np.ndarray, sens: np.ndarray, allowed: int,
           bits) -> bytes | None:
    """The section body for planes ``c`` (P, H, W), or None where this coding cannot serve
    (integers, subnormal values, a bound too tight, or no plane uses the network)."""
    if c.dtype.kind != "f" or not 0 < eb < 1:
        return None
    vb = log_bound(eb, c.dtype)
    x = c.astype(np.float64)
    ax = np.abs(x)
    nz = ~masked & (x != 0)
    if vb <= 0 or (nz & (ax < np.finfo(c.dtype).tiny)).any() or not nz.any():
        return None
    signs = np.where(masked, 0, np.sign(np.where(nz, x, 0.0))).astype(np.int8)
    sign_stream = fast.encode(signs, "lossless", mask=bits)
    L = np.where(nz, np.log2(np.where(nz, ax, 1.0)), 0.0)
    smin = float(np.min(sens[nz])) if np.isfinite(sens[nz]).any() else np.inf
    if not np.isfinite(smin):
        return None
    floor = max(float(np.finfo(c.dtype).tiny), 4.0 * smin / (vb * _LN2))
    ay = np.maximum(np.abs(y), floor)
    base = np.log2(ay)
    p = x.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        guard = sens / (ay * _LN2) + _LOG_ROUND * (1.0 + np.abs(base)) + 2.0 ** -46 * (np.abs(L) + vb)
        gmax = np.where(nz, guard, 0.0).reshape(p, -1).max(axis=1, initial=0.0)
        lmax = np.where(nz, np.abs(L), 0.0).reshape(p, -1).max(axis=1, initial=0.0)
        h = vb - 2.0 ** -52 * (lmax + vb) - gmax
    h = np.where(np.isfinite(h), h, 0.0)
    log_stream = fast.encode(L, "abs", vb, mask=np.packbits(~nz), pred=base, half_step=h, eb_verify=h,
                             allowed=allowed)
    if not fast.uses_pred(log_stream):
        return None
    out = bytearray(np.float64(floor).astype("<f8").tobytes())
    fmt.put_block(out, sign_stream)
    fmt.put_block(out, log_stream)
    return bytes(out)


def read(reader: fmt.Reader) -> dict:
    floor = reader.f64()
    if not (np.isfinite(floor) and floor > 0):
        raise PayloadError("corrupted payload: invalid pwrel floor")
    signs = reader.take(reader.varint(reader.remaining()))
    log = reader.take(reader.varint(reader.remaining()))
    return {"floor": floor, "signs": signs, "log": log}


def streams(sec: dict) -> list:
    return [sec["signs"], sec["log"]] if "log" in sec else [sec["stream"]]


def reconstruct(sec: dict, pred, shape, dtype: np.dtype, mask=None, out=None) -> np.ndarray:
    if dtype.kind != "f":
        raise PayloadError("corrupted payload: a log-domain pwrel section for an integer chunk")
    signs = fast.decode(sec["signs"], shape, np.int8, mask=mask, out=np.zeros(shape, np.int8))
    if (np.abs(signs.astype(np.int16)) > 1).any():
        raise PayloadError("corrupted payload: invalid signs in the pwrel section")
    zero = np.packbits(signs.reshape(-1) == 0)
    lbits = zero if mask is None else zero | np.asarray(mask, np.uint8)
    base = None if pred is None else _base(pred, sec["floor"])
    L = fast.decode(sec["log"], shape, np.float64, mask=lbits, pred=base, out=np.zeros(shape))
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.nan_to_num(signs * fast.exp2(L), nan=0.0)
    lim = np.finfo(dtype).max
    res = np.clip(d, -lim, lim).astype(dtype)
    if out is not None:
        out.reshape(shape)[...] = res
        return out.reshape(shape)
    return res
