"""The error-bounded mode: every decoded element within ``eb`` of the original, in user units.

Per 2D plane the encoder picks the cheapest of four codings (estimated in bits):

0. the autoencoder's reconstruction y plus the residual quantised with step 2 * h
   (``q = rint((x - y) / step)``, decoded as ``y + step * q``),
1. the same residual after a 2D Lorenzo difference (smooth residuals),
2. no prediction: ``x`` itself quantised with the step and Lorenzo differenced,
3. the plane's raw elements (zlib), when no residual coding is smaller.

h is the bound minus two reserves: what the cast to the element type can add
(half an ulp of float32, rounding of integers), and for modes 0 and 1 a guard for a
decoder whose network output differs from the encoder's (another device, another
thread count): ``NET_TOLERANCE * (1 + |z|)`` in the network's output units, mapped to
user units through the transform (``Transform.sensitivity``). The encoder checks every
element against h before it commits to a plane; the decoder makes no decision of its
own: plane modes and steps are stored.
"""

from __future__ import annotations

import numpy as np

from .coding import payload as fmt
from .coding import residual
from .errors import PayloadError

# Tolerated difference between the encoder's and a decoder's network output, relative to
# 1 + |z| (z: the normalised output): about 500 float32 ulps.
NET_TOLERANCE = 2.0 ** -16
# Reserve for float64 rounding in sinh and in y + step * q (64 ulps of the magnitudes).
ROUND = 2.0 ** -46
MODE_AE, MODE_AE_LORENZO, MODE_LORENZO, MODE_RAW = 0, 1, 2, 3
# The codings the encoder may pick from (besides raw), by default; tests and benchmarks
# pass fewer to measure what each one buys.
PREDICTORS = (MODE_AE, MODE_AE_LORENZO, MODE_LORENZO)
BOUND_MODES = ("abs", "rel")


def absolute_bound(error_bound: float, bound_mode: str, x: np.ndarray, valid: np.ndarray) -> float:
    """``rel`` is relative to the value range of the chunk's valid elements (SZ's convention)."""
    if bound_mode == "abs":
        return float(error_bound)
    vals = x[valid]
    if vals.size == 0:
        return 0.0
    with np.errstate(over="ignore"):
        return float(error_bound) * (float(vals.max()) - float(vals.min()))


def _targets(dtype: np.dtype, eb: float, xmax: np.ndarray) -> np.ndarray:
    """Largest allowed |x - v| per plane before the cast to ``dtype`` (may be <= 0)."""
    if dtype.kind == "f":
        fi = np.finfo(dtype)
        return eb - float(fi.eps) * (xmax + eb) - float(fi.smallest_subnormal)
    # rint(v) is within floor(eb) of an integer x when |x - v| < floor(eb) + 1/2.
    t = np.floor(eb) + 0.5 - 1e-6 - ROUND * xmax
    return np.where(xmax < 2.0 ** 52, t, -np.inf)  # float64 holds such integers exactly


def _round_down_f32(v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        s = v.astype(np.float32)
        s = np.where(s.astype(np.float64) > v, np.nextafter(s, np.float32(0)), s)
    return s.astype(np.float32)


def _candidate(x, valid, pred, guard, targets, lorenzo: bool):
    p = x.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        gmax = np.where(valid, guard, 0.0).reshape(p, -1).max(axis=1, initial=0.0)
        half = targets - gmax
        step32 = _round_down_f32(2.0 * half)
        step = step32.astype(np.float64)
        ok = np.isfinite(step) & (step > np.finfo(np.float32).tiny) & np.isfinite(half)
        safe = np.where(ok, step, 1.0)[:, None, None]
        r = np.where(valid, (x - pred) / safe, 0.0)
        q = np.rint(r)
        fits = np.isfinite(q) & (np.abs(q) <= residual.MAX_Q)
        q = np.where(fits, q, 0.0)
        v = pred + safe * q
        err = np.abs(x - v) * (1.0 + 2.0 ** -50)
        good = ~valid | (fits & (err <= half[:, None, None]))
    ok &= good.reshape(p, -1).all(axis=1)
    qi = q.astype(np.int64)
    sym = residual.lorenzo(qi) if lorenzo else qi
    sym = sym.reshape(p, -1)
    scale = residual.fit_scale(sym)
    bits = np.where(ok, residual.cost_bits(sym, scale), np.inf)
    return {"step": step32, "sym": sym, "scale": scale, "bits": bits}


def write_section(out: bytearray, x: np.ndarray, valid: np.ndarray, dtype: np.dtype, eb: float,
                  pred: np.ndarray | None, sens: np.ndarray | None, latent_bytes: int,
                  predictors: tuple[int, ...] = PREDICTORS) -> bool:
    """Append the residual section for planes ``x`` (P, H, W) float64, choosing per plane
    among ``predictors`` and raw; returns whether the planes use the network's prediction
    (else the caller drops the latent section)."""
    p = x.shape[0]
    n = x[0].size if p else 0
    ax = np.where(valid, np.abs(x), 0.0)
    xmax = ax.reshape(p, -1).max(axis=1, initial=0.0)
    targets = _targets(dtype, eb, xmax)
    zero = np.zeros_like(x)
    cands = {MODE_LORENZO: _candidate(x, valid, zero, ROUND * (ax + np.abs(targets)[:, None, None]), targets, True)}
    if pred is not None:
        guard = sens + ROUND * (np.abs(pred) + ax + np.abs(targets)[:, None, None])
        cands[MODE_AE] = _candidate(x, valid, pred, guard, targets, False)
        cands[MODE_AE_LORENZO] = _candidate(x, valid, pred, guard, targets, True)
    order = [m for m in predictors if m in cands] or [MODE_LORENZO]
    le = dtype.newbyteorder("<")
    raw_bits = np.full(p, np.inf)
    best_coded = np.min([cands[m]["bits"] for m in order], axis=0) if p else np.zeros(0)
    for i in np.flatnonzero(best_coded > 0.25 * 8 * n * le.itemsize):  # includes planes no coding can bound
        raw_bits[i] = 8 * len(fmt.deflate(x[i].astype(le).tobytes()))  # exact: x holds the input's values

    def choose(modes):
        table = np.stack([cands[m]["bits"] for m in modes] + [raw_bits]) if p else np.zeros((1, 0))
        pick = np.argmin(table, axis=0)
        return np.array(modes + [MODE_RAW], dtype=np.uint8)[pick], table.min(axis=0).sum() if p else 0.0

    modes, bits = choose(order)
    uses_latents = pred is not None and bool(np.isin(modes, (MODE_AE, MODE_AE_LORENZO)).any())
    if uses_latents and MODE_LORENZO in predictors:
        alt_modes, alt_bits = choose([MODE_LORENZO])
        if alt_bits <= bits + 8 * latent_bytes:
            modes, uses_latents = alt_modes, False
    coded = np.flatnonzero(modes != MODE_RAW)
    steps = np.array([cands[modes[i]]["step"][i] for i in coded], dtype="<f4")
    scales = np.array([cands[modes[i]]["scale"][i] for i in coded], dtype="<f4")
    sym = np.stack([cands[modes[i]]["sym"][i] for i in coded]) if len(coded) else np.zeros((0, n), np.int64)
    words, escapes = residual.encode(sym, scales)
    out += np.array([eb], dtype="<f8").tobytes()
    out += modes.tobytes()
    out += steps.tobytes() + scales.tobytes()
    fmt.put_varint(out, len(escapes))
    out += escapes.astype("<i4").tobytes()
    fmt.put_words(out, words)
    raw = np.flatnonzero(modes == MODE_RAW)
    if len(raw):
        fmt.put_block(out, fmt.deflate(x[raw].astype(le).tobytes()))
    return uses_latents


def read_section(reader: fmt.Reader, p: int, plane: tuple[int, int], dtype: np.dtype, has_latents: bool) -> dict:
    n = plane[0] * plane[1]
    eb = reader.f64()
    modes = reader.array("u1", p)
    if (modes > MODE_RAW).any() or (not has_latents and np.isin(modes, (MODE_AE, MODE_AE_LORENZO)).any()):
        raise PayloadError("corrupted payload: invalid residual plane mode")
    coded = np.flatnonzero(modes != MODE_RAW)
    with np.errstate(invalid="ignore"):  # a forged NaN step is refused just below
        steps = reader.array("<f4", len(coded)).astype(np.float64)
    scales = reader.array("<f4", len(coded))
    if not (np.isfinite(steps).all() and (steps > 0).all()):
        raise PayloadError("corrupted payload: invalid residual step")
    residual.check_scales(scales)
    escapes = reader.array("<i4", reader.varint(len(coded) * n))
    words = fmt.read_words(reader)
    sym = residual.decode(words, scales, n, escapes).reshape((len(coded),) + plane)
    raw_planes = None
    n_raw = p - len(coded)
    if n_raw:
        le = dtype.newbyteorder("<")
        raw_planes = np.frombuffer(fmt.inflate(reader, n_raw * n * le.itemsize, "raw planes"), le)
        raw_planes = raw_planes.reshape((n_raw,) + plane)
    return {"eb": eb, "modes": modes, "coded": coded, "steps": steps, "sym": sym, "raw": raw_planes}


def reconstruct(sec: dict, pred: np.ndarray | None, shape: tuple[int, int, int], dtype: np.dtype) -> np.ndarray:
    """Planes (P, H, W) in ``dtype`` from a read residual section and the prediction."""
    out = np.empty(shape, dtype=dtype.newbyteorder("="))
    modes, coded = sec["modes"], sec["coded"]
    if len(coded):
        cm = modes[coded]
        q = sec["sym"].copy()
        lor = np.isin(cm, (MODE_AE_LORENZO, MODE_LORENZO))
        if lor.any():
            q[lor] = residual.unlorenzo(q[lor])
        base = np.zeros(q.shape) if pred is None else np.where(
            (cm == MODE_LORENZO)[:, None, None], 0.0, pred[coded])
        v = base + sec["steps"][:, None, None] * q
        out[coded] = cast(v, dtype)
    raw = np.flatnonzero(modes == MODE_RAW)
    if len(raw):
        out[raw] = sec["raw"]
    return out


def cast(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float64 -> the element type: integers rounded, everything clipped to its range."""
    dtype = np.dtype(dtype).newbyteorder("=")
    if dtype.kind == "f":
        lim = np.finfo(dtype).max
        return np.clip(np.nan_to_num(x, nan=0.0), -lim, lim).astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.rint(np.nan_to_num(x, nan=0.0)), info.min, info.max).astype(dtype)
