"""The error-bounded and lossless modes: every decoded element within its bound, in user units.

Bound modes (``BOUND_MODES``), for every element that is not masked:

* ``abs``: |decoded - x| <= eb; on integer chunks eb < 1 is lossless.
* ``rel``: abs with eb times the value range of the chunk's valid elements (SZ's convention).
* ``pwrel``: |decoded - x| <= eb |x|: zeros stay zero, signs are kept, negatives allowed.
* ``poisson``: |decoded - x| <= eb sqrt(max(x, 1)) for counts (integer-valued x >= 0;
  anything else is kept exactly); integers stay integers, the bins are dithered so that
  averages carry no bias (I(q) error bars grow by sqrt(1 + eb^2 / 3)).

The residual section (format 3) is a compiled-coder stream (``coding.fast``, docs/fastcode.md)
of the chunk in its own element type: it carries the mode, its parameters, a stencil per
plane, and, for planes coded against the network's reconstruction y, a bit saying so. Such
planes are verified against the bound minus two reserves: what the cast to the element
type can add, and a guard for a decoder whose network output differs from the encoder's
(another device or thread count): ``NET_TOLERANCE * (1 + |z|)`` in the network's output
units, mapped to user units by ``Transform.sensitivity``. pwrel against the network codes
log2|x| (``coding.logpwrel``). Format 2 sections are read by ``coding.residual``.
"""

from __future__ import annotations

import numpy as np

from .coding import fast, logpwrel, residual
from .coding import payload as fmt
from .errors import PayloadError

# Tolerated difference between the encoder's and a decoder's network output, relative to
# 1 + |z| (z: the normalised output): about 500 float32 ulps.
NET_TOLERANCE = 2.0 ** -16


def net_tolerance(model) -> float:
    """NET_TOLERANCE, or 0 for a model whose decoder gives the same bits everywhere (the
    wavelet family: float64 in C with a fixed operation order, ``module.deterministic``)."""
    return 0.0 if getattr(model.module, "deterministic", False) else NET_TOLERANCE

# Reserve for float64 rounding in sinh and in y + e (64 ulps of the magnitudes).
ROUND = 2.0 ** -46
MODE_AE, MODE_AE_LORENZO, MODE_LORENZO = residual.MODE_AE, residual.MODE_AE_LORENZO, residual.MODE_LORENZO
# The codings a plane may use, by default: the network's prediction as it is (AE) or with a
# stencil on the residual (AE_LORENZO), or the plane alone (LORENZO: a stencil on the plane,
# ``coding.fast.STENCILS``). Tests and benchmarks pass fewer to measure what each one buys.
# (Not the codec option ``predictor``, which says whether the network may serve at all.)
CODINGS = (MODE_AE, MODE_AE_LORENZO, MODE_LORENZO)
BOUND_MODES = ("abs", "rel", "pwrel", "poisson")
KIND_DIRECT, KIND_LOG = 0, 1  # the section holds one stream of the chunk / pwrel in log2 (coding.logpwrel)
POISSON_MIN_EB = 2.0 ** -12 * 1.0000001  # below, no count moves: ints are stored losslessly
CAST_SLICE = 1 << 16  # elements per step of ``cast``


def stream_mode(bound_mode: str, error_bound: float, c: np.ndarray, bits) -> tuple[str, float]:
    """The compiled coder's mode and bound for a chunk (in its own type) and its mask bits."""
    eb = float(error_bound)
    ints = c.dtype.kind in "iu"
    if bound_mode == "rel":
        lo, hi, count = fast.value_range(c, bits)
        with np.errstate(over="ignore"):
            eb = eb * (hi - lo) if count else 0.0
        bound_mode = "abs"
    if bound_mode == "poisson" and not eb >= POISSON_MIN_EB:
        bound_mode = "abs"  # T(x) = floor(eb sqrt(x)) is 0 for every count a chunk can hold
    if bound_mode == "poisson":
        return "poisson", min(eb, 2.0 ** 20 * 0.999)
    if bound_mode == "abs":
        return ("lossless", 0.0) if ints and eb < 1 else ("abs", eb if np.isfinite(eb) else 1e299)
    return bound_mode, eb


def write_stream(out: bytearray, c: np.ndarray, mode: str, eb: float, bits=None) -> None:
    """The residual section of a chunk coded without the network (the fast path)."""
    out.append(KIND_DIRECT)
    fmt.put_block(out, fast.encode(c, mode, eb, mask=bits))


def _targets(dtype: np.dtype, eb: float, xmax: np.ndarray) -> np.ndarray:
    """Largest allowed |x - v| per plane before the cast to ``dtype`` (may be <= 0)."""
    if dtype.kind == "f":
        fi = np.finfo(dtype)
        return eb - float(fi.eps) * (xmax + eb) - float(fi.smallest_subnormal)
    # rint(v) is within floor(eb) of an integer x when |x - v| < floor(eb) + 1/2.
    t = np.floor(eb) + 0.5 - 1e-6 - ROUND * xmax
    return np.where(xmax < 2.0 ** 52, t, -np.inf)  # float64 holds such integers exactly


def net_bounds(dtype: np.dtype, eb: float, x: np.ndarray, valid: np.ndarray, pred: np.ndarray,
               sens: np.ndarray) -> np.ndarray:
    """Per plane (P, H, W): the bound left for base + e before the cast, after the cast's
    reserve and the guard for another decoder's prediction (<= 0: the plane cannot use it)."""
    p = x.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        ax = np.where(valid, np.abs(x), 0.0)
        xmax = ax.reshape(p, -1).max(axis=1, initial=0.0)
        targets = _targets(np.dtype(dtype), eb, xmax)
        guard = sens + ROUND * (np.abs(pred) + ax + np.abs(targets)[:, None, None])
        gmax = np.where(valid, guard, 0.0).reshape(p, -1).max(axis=1, initial=0.0)
        h = targets - gmax
    return np.where(np.isfinite(h), h, 0.0)


def allowed_bits(codings) -> int:
    bits = (fast.ALLOW_PLAIN if MODE_LORENZO in codings else 0) | (0x08 if MODE_AE in codings else 0)
    return bits | (0x30 if MODE_AE_LORENZO in codings else 0) or fast.ALLOW_PLAIN


def write_section(out: bytearray, x: np.ndarray, valid: np.ndarray, dtype: np.dtype, eb: float,
                  pred: np.ndarray | None, sens: np.ndarray | None, latent_bytes: int | None,
                  codings: tuple[int, ...] = CODINGS, mask=None) -> bool:
    """Append the residual section for planes ``x`` (P, H, W) holding values of ``dtype``:
    |decoded - x| <= eb where ``valid``. Per plane against ``pred`` (with guard ``sens``)
    or alone, as ``codings`` allow; returns whether some plane uses ``pred`` (else the
    caller drops the latents). The prediction is kept only if it saves more than the
    ``latent_bytes`` it costs (None: the latents are stored anyway). ``mask``: packed bits of
    elements not to code at all (the decoder passes the same to :func:`reconstruct`)."""
    x = np.ascontiguousarray(x).astype(np.dtype(dtype).newbyteorder("="), copy=False)
    allowed = allowed_bits(codings)
    uses = False
    if pred is None or not allowed & fast.ALLOW_PRED:
        stream = fast.encode(x, "abs", eb, mask=mask, allowed=allowed & fast.ALLOW_PLAIN or fast.ALLOW_PLAIN)
    else:
        xv = np.where(valid, x, 0) if x.dtype.kind == "f" else x
        h = net_bounds(x.dtype, eb, xv.astype(np.float64, copy=False), valid, pred, sens)
        stream = fast.encode(x, "abs", eb, mask=mask, pred=pred, half_step=h, eb_verify=h, allowed=allowed)
        uses = fast.uses_pred(stream)
        if uses and allowed & fast.ALLOW_PLAIN and latent_bytes is not None:
            plain = fast.encode(x, "abs", eb, mask=mask, allowed=allowed & fast.ALLOW_PLAIN)
            if len(plain) <= len(stream) + latent_bytes:
                stream, uses = plain, False
    out.append(KIND_DIRECT)
    fmt.put_block(out, stream)
    return uses


def write_network(out: bytearray, x: np.ndarray, masked: np.ndarray, bound_mode: str, error_bound: float,
                  y: np.ndarray, sens: np.ndarray, latent_bytes: int, codings=CODINGS) -> bool:
    """The residual section of planes ``x`` (P, H, W, own type) coded against the network's
    reconstruction ``y`` where that pays, masked elements skipped; whether it uses ``y``."""
    x = x if x.dtype.isnative else x.astype(x.dtype.newbyteorder("="))
    bits = np.packbits(masked.reshape(-1)) if masked.any() else None
    if bound_mode == "pwrel":
        allowed = allowed_bits(codings)
        body = logpwrel.encode(x, masked, error_bound, y, sens, allowed, bits) if allowed & fast.ALLOW_PRED else None
        plain = fast.encode(x, "pwrel", error_bound, mask=bits)
        if body is None or len(plain) <= len(body) + latent_bytes:
            out.append(KIND_DIRECT)
            fmt.put_block(out, plain)
            return False
        out.append(KIND_LOG)
        out += body
        return True
    mode, eb = stream_mode(bound_mode, error_bound, x, bits)  # rel -> abs; eb < 1 on integers: 0
    return write_section(out, x, ~masked, x.dtype, eb, y, sens, latent_bytes, codings, mask=bits)


def read_section(reader: fmt.Reader, p: int, plane: tuple[int, int], dtype: np.dtype, has_latents: bool,
                 version: int) -> dict:
    """A residual section of a payload of format ``version`` (``Header.version``): format 3
    streams, or format 2 (``coding.residual``)."""
    if version < 3:
        return residual.read_v2(reader, p, plane, dtype, has_latents)
    kind = reader.u8()
    if kind == KIND_LOG:
        sec = logpwrel.read(reader)
    elif kind == KIND_DIRECT:
        sec = {"stream": reader.take(reader.varint(reader.remaining()))}
    else:
        raise PayloadError(f"corrupted payload: unknown residual section kind {kind}")
    sec.update(version=version, kind=kind, planes=p)
    if not has_latents and any(fast.uses_pred(s) for s in logpwrel.streams(sec)):
        raise PayloadError("corrupted payload: the residual needs the network but the payload has no latents")
    return sec


def plane_modes(sec: dict) -> np.ndarray:
    """Per plane, the coding a read section uses (``MODE_*``; format 3: Lorenzo stands for any
    stencil on the plane itself, AE_LORENZO for any on the residual to the network's)."""
    if sec["version"] < 3:
        return sec["modes"]
    pk, on = fast.plane_choices(sec.get("log", sec.get("stream")), sec["planes"])
    return np.where(on, np.where(pk == 0, MODE_AE, MODE_AE_LORENZO), MODE_LORENZO).astype(np.uint8)


def reconstruct(sec: dict, pred: np.ndarray | None, shape: tuple[int, int, int], dtype: np.dtype,
                mask=None, out: np.ndarray | None = None) -> np.ndarray:
    """Planes (P, H, W) in ``dtype`` from a read residual section and the prediction;
    elements under ``mask`` (packed bits) are left as ``out`` has them."""
    dtype = np.dtype(dtype).newbyteorder("=")
    if sec["version"] < 3:
        return residual.reconstruct_v2(sec, pred, shape, dtype, cast)
    if sec["kind"] == KIND_LOG:
        return logpwrel.reconstruct(sec, pred, shape, dtype, mask, out)
    if out is None:
        out = np.empty(shape, dtype) if mask is None else np.zeros(shape, dtype)
    return fast.decode(sec["stream"], shape, dtype, mask=mask, pred=pred, out=out.reshape(shape))


def cast(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float64 -> the element type: integers rounded, everything clipped to its range (a slice
    at a time: a large frame's float64 temporaries stay small)."""
    dtype = np.dtype(dtype).newbyteorder("=")
    x = np.asarray(x)
    out = np.empty(x.shape, dtype)
    src, dst = x.reshape(-1), out.reshape(-1)
    if dtype.kind == "f":
        # clip(nan_to_num(x, nan=0), -lim, lim) without nan_to_num's passes (it cost more than sinh):
        # the clip sends +-inf to +-lim and writes the element type; NaN (kept by the clip) then 0
        lim = np.finfo(dtype).max
        with np.errstate(invalid="ignore"):
            for a in range(0, src.size, CAST_SLICE):
                d = dst[a:a + CAST_SLICE]
                np.clip(src[a:a + CAST_SLICE], -lim, lim, out=d)
                np.copyto(d, 0, where=d != d)
        return out
    info = np.iinfo(dtype)
    for a in range(0, src.size, CAST_SLICE):
        dst[a:a + CAST_SLICE] = np.clip(np.rint(np.nan_to_num(src[a:a + CAST_SLICE], nan=0.0)), info.min, info.max)
    return out
