"""Format 2 residual sections, read-only: per-plane Laplace models, range coded (constriction).

Payloads written before format 3 keep decoding through this module; nothing writes it
any more (format 3 residual sections are fastcode streams, ``saecodec.bound``). Per 2D
plane the v2 encoder chose one of: the network's reconstruction y plus the residual
quantised with a stored step (mode 0), the same after a 2D Lorenzo difference (1), the
plane itself quantised and Lorenzo-differenced (2), or the raw elements (3, zlib). Symbols
of magnitude >= ``ESCAPE`` were coded as +-ESCAPE with their values stored as int32.
"""

from __future__ import annotations

import constriction
import numpy as np

from ..errors import PayloadError
from . import entropy
from . import payload as fmt

ESCAPE = 1 << 12
MIN_SCALE = 0.01
MAX_SCALE = float(1 << 20)
MODE_AE, MODE_AE_LORENZO, MODE_LORENZO, MODE_RAW = 0, 1, 2, 3


def unlorenzo(d: np.ndarray) -> np.ndarray:
    """Undo ``d[i,j] = q[i,j] - q[i-1,j] - q[i,j-1] + q[i-1,j-1]`` on (P, H, W) integers."""
    return np.cumsum(np.cumsum(d, axis=1), axis=2)


def _family():
    return constriction.stream.model.QuantizedLaplace(-ESCAPE, ESCAPE)


def _decode(words: np.ndarray, scales: np.ndarray, n: int, escapes: np.ndarray) -> np.ndarray:
    p = len(scales)
    if p * n == 0:
        return np.zeros((p, n), np.int64)
    sym = entropy.decode(words, _family(), np.zeros(p * n), np.repeat(scales.astype(np.float64), n),
                         what="residual").astype(np.int64)
    big = np.abs(sym) >= ESCAPE
    if int(big.sum()) != len(escapes):
        raise PayloadError("corrupted payload: residual escapes do not match the stored values")
    if len(escapes):
        esc = escapes.astype(np.int64)
        if (np.abs(esc) < ESCAPE).any() or (np.sign(esc) != np.sign(sym[big])).any():
            raise PayloadError("corrupted payload: invalid residual escape value")
        sym[big] = esc
    return sym.reshape(p, n)


def read_v2(reader: fmt.Reader, p: int, plane: tuple[int, int], dtype: np.dtype, has_latents: bool) -> dict:
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
    if not (np.isfinite(scales).all() and (scales >= MIN_SCALE).all() and (scales <= MAX_SCALE).all()):
        raise PayloadError("corrupted payload: invalid residual model scale")
    escapes = reader.array("<i4", reader.varint(len(coded) * n))
    words = fmt.read_words(reader)
    sym = _decode(words, scales, n, escapes).reshape((len(coded),) + plane)
    raw_planes = None
    n_raw = p - len(coded)
    if n_raw:
        le = dtype.newbyteorder("<")
        raw_planes = np.frombuffer(fmt.inflate(reader, n_raw * n * le.itemsize, "raw planes"), le)
        raw_planes = raw_planes.reshape((n_raw,) + plane)
    return {"version": 2, "eb": eb, "modes": modes, "coded": coded, "steps": steps, "sym": sym, "raw": raw_planes}


def reconstruct_v2(sec: dict, pred: np.ndarray | None, shape: tuple[int, int, int], dtype: np.dtype, cast) -> np.ndarray:
    """Planes (P, H, W) in ``dtype`` from a v2 section and the network's prediction."""
    out = np.empty(shape, dtype=dtype.newbyteorder("="))
    modes, coded = sec["modes"], sec["coded"]
    if len(coded):
        cm = modes[coded]
        q = sec["sym"].copy()
        lor = np.isin(cm, (MODE_AE_LORENZO, MODE_LORENZO))
        if lor.any():
            q[lor] = unlorenzo(q[lor])
        base = np.zeros(q.shape) if pred is None else np.where((cm == MODE_LORENZO)[:, None, None], 0.0, pred[coded])
        out[coded] = cast(base + sec["steps"][:, None, None] * q, dtype)
    raw = np.flatnonzero(modes == MODE_RAW)
    if len(raw):
        out[raw] = sec["raw"]
    return out
