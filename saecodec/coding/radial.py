"""Radial-profile prediction of scattering frames (the wavelet family's encoder option).

Why: a small-angle scattering frame is mostly I(|q|) around the beam centre. A 1D profile of
the frame in the model's domain, sent as a few dozen knots, predicts the rings that the
wavelet would otherwise pay for at every level; the wavelet then codes what is left. On the
clean simulated held-out frames this is the difference between 1.4-1.6x and 2.0-2.3x SPERR's
ratio (benchmarks/results/wavelet_research.md, spec Revision 5); on noisy or real frames the
residual is the noise, and the encoder's per-frame choice keeps the plain frame.

Everything the decoder computes is IEEE-exact arithmetic (the centre in 1/16 px, a square
root, linear interpolation between the knots in float64, no reductions), so a frame decodes
to the same bits on any machine. The encoder's fit (the centre search, least squares) only
decides what is sent. Layout: docs/wavelet.md, "Radial prediction block".
"""

from __future__ import annotations

import numpy as np

from ..errors import PayloadError
from .payload import Reader, put_varint
from .wavelet_engine import radial_add

SUB = 16  # centre resolution: 1/16 px
LAM_BITS = 0.1155  # encoder's rate-distortion weight: dD/dR of a uniform quantiser, step^2 per bit
RIDGE = 1e-3  # first-difference ridge (relative to the mean Gram diagonal): fills empty knots
_MAX_KNOTS = 1 << 20


# -- decoder (and encoder): the prediction ----------------------------------------------------

def add(frames: np.ndarray, records: list, h16: int, sp: float) -> None:
    """frames (n, H, W) float64 += what the records (cy16, cx16, k0, q; None: no prediction)
    predict: knots of value q sp at radii (k0 + j) h, h = h16 / 16, around the centre (cy16,
    cx16) / 16, linear in the radius between knots (c_wavelet/wl_radial.c: the decoder's and the
    encoder's z_hat alike)."""
    for frame, rec in zip(frames, records):
        if rec is not None:
            cy16, cx16, k0, q = rec
            radial_add(frame, cy16 / SUB, cx16 / SUB, h16 / SUB, float(k0), q * sp)  # exact: multiples of 1/16


def predict(shape: tuple[int, int], records: list, h16: int, sp: float) -> np.ndarray:
    """The predictions (n, H, W) float64 of the records (:func:`add` on zeros)."""
    out = np.zeros((len(records), *shape))
    add(out, records, h16, sp)
    return out


# -- the block --------------------------------------------------------------------------------

def write_block(out: bytearray, frames: list, h16: int, kstep: int) -> None:
    """Per frame None (no prediction) or its record (cy16, cx16, k0, q): a bitmap of the frames
    with one, then (if any) the chunk's knot spacing h16 (a byte) and the step index of the
    knot values (varint; the engine's step grid), then each flagged frame's record."""
    bits = np.array([f is not None for f in frames], np.uint8)
    out += np.packbits(bits, bitorder="little").tobytes()
    used = [f for f in frames if f is not None]
    if not used:
        return
    out.append(h16)
    put_varint(out, kstep)
    for cy16, cx16, k0, q in used:
        put_varint(out, _zz(cy16))
        put_varint(out, _zz(cx16))
        put_varint(out, k0)
        put_varint(out, len(q))
        put_varint(out, _zz(int(q[0])))
        _put_rice(out, np.asarray(q, np.int64))


def read_block(reader: Reader, b: int, shape: tuple[int, int]) -> tuple[list, int, int]:
    """Inverse of write_block: (per frame None or (cy16, cx16, k0, q), h16, kstep)."""
    flags = np.unpackbits(np.frombuffer(reader.take((b + 7) // 8), np.uint8), count=b, bitorder="little")
    out: list = [None] * b
    if not flags.any():
        return out, 0, 0
    h16, kstep = reader.u8(), reader.varint(1 << 16)
    if not h16:
        raise PayloadError("corrupted payload: radial prediction block (knot spacing 0)")
    H, W = shape
    reach = SUB * 4 * (H + W)  # a centre the encoder can send lies within 1.5 frames of it
    for j in np.flatnonzero(flags):
        cy16, cx16 = _unzz(reader.varint()), _unzz(reader.varint())
        k0, K = reader.varint(), reader.varint()
        if abs(cy16) > reach or abs(cx16) > reach or not 2 <= K <= _MAX_KNOTS or k0 > _MAX_KNOTS:
            raise PayloadError("corrupted payload: radial prediction block (centre or knots)")
        q0 = _unzz(reader.varint())
        out[j] = (cy16, cx16, k0, _read_rice(reader, q0, K))
    return out, h16, kstep


def _zz(v):
    """Zigzag (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) of an int or an int64 array."""
    return (v << 1) ^ (v >> 63)


def _unzz(u):
    return (u >> 1) ^ -(u & 1)


def _put_rice(out: bytearray, q: np.ndarray) -> None:
    """q[1:] as differences of the order (1 or 2) with the fewer bits, zigzagged, in a Rice code
    of the best k: a byte (order - 1) << 4 | k, the unary parts' byte count (varint) and bytes,
    then the k-bit remainders."""
    d1 = np.diff(q)
    best = None
    for order, e in ((1, d1), (2, np.concatenate([d1[:1], np.diff(d1)]))):
        u = _zz(e)
        for k in range(16):
            n = int((u >> k).sum()) + (1 + k) * len(u)
            if best is None or n < best[0]:
                best = (n, order, k, u)
    _, order, k, u = best
    out.append((order - 1) << 4 | k)
    hi = u >> k
    zeros = np.cumsum(hi + 1) - 1  # each value: hi ones, then a zero
    bits = np.ones(int(zeros[-1]) + 1 if len(u) else 0, np.uint8)
    bits[zeros] = 0
    unary = np.packbits(bits, bitorder="little").tobytes()
    put_varint(out, len(unary))
    out += unary
    if k:
        rem = ((u[:, None] >> np.arange(k)) & 1).astype(np.uint8).ravel()
        out += np.packbits(rem, bitorder="little").tobytes()


def _read_rice(reader: Reader, q0: int, K: int) -> np.ndarray:
    n = K - 1
    mode = reader.u8()
    order, k = (mode >> 4) + 1, mode & 15
    if order > 2:
        raise PayloadError("corrupted payload: radial prediction block (difference order)")
    size = reader.varint()
    if size > len(reader.buf) - reader.pos:
        raise PayloadError("truncated payload: radial prediction block")
    bits = np.unpackbits(np.frombuffer(reader.take(size), np.uint8), bitorder="little")
    zeros = np.flatnonzero(bits == 0)
    if len(zeros) < n or (n and (int(zeros[n - 1]) + 8) // 8 != size):
        raise PayloadError("corrupted payload: radial prediction block (unary part)")
    hi = np.diff(np.concatenate([[-1], zeros[:n]])) - 1
    u = hi.astype(np.int64) << k
    if k:
        rem = np.unpackbits(np.frombuffer(reader.take((n * k + 7) // 8), np.uint8), count=n * k, bitorder="little")
        u |= (rem.reshape(n, k).astype(np.int64) << np.arange(k)).sum(axis=1)
    e = _unzz(u)
    d1 = e if order == 1 else np.cumsum(e)
    return np.concatenate([[q0], q0 + np.cumsum(d1)]).astype(np.int64)


# -- encoder: the fit ---------------------------------------------------------------------------

def _tent(r: np.ndarray, h: float, k0: np.ndarray, K: int):
    t = r / h - k0[:, None]
    i = np.minimum(np.maximum(np.floor(t), 0), K - 2).astype(np.intp)
    return i, t - i


def _solve(y: np.ndarray, i: np.ndarray, f: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares knot values of M systems (M, n) with a first-difference ridge, and each
    system's residual energy: the tridiagonal normal equations, Thomas' algorithm across M."""
    M = len(y)
    off = (np.arange(M) * K)[:, None]
    a, b = 1.0 - f, f
    idx0, idx1 = (i + off).ravel(), (i + 1 + off).ravel()
    diag = (np.bincount(idx0, (a * a).ravel(), M * K) + np.bincount(idx1, (b * b).ravel(), M * K)).reshape(M, K)
    offd = np.bincount(idx0, (a * b).ravel(), M * K).reshape(M, K)[:, :K - 1]
    rhs = (np.bincount(idx0, (a * y).ravel(), M * K) + np.bincount(idx1, (b * y).ravel(), M * K)).reshape(M, K)
    lam = RIDGE * np.maximum(diag.mean(axis=1), 1.0)
    ridge = np.full((M, K), 2.0)
    ridge[:, 0] = ridge[:, -1] = 1.0
    d = diag + lam[:, None] * ridge + 1e-9
    o = offd - lam[:, None]
    # Thomas: forward sweep, back substitution
    cp = np.empty((M, K - 1))
    dp = np.empty((M, K))
    cp[:, 0] = o[:, 0] / d[:, 0]
    dp[:, 0] = rhs[:, 0] / d[:, 0]
    for k in range(1, K):
        den = d[:, k] - o[:, k - 1] * cp[:, k - 1]
        if k < K - 1:
            cp[:, k] = o[:, k] / den
        dp[:, k] = (rhs[:, k] - o[:, k - 1] * dp[:, k - 1]) / den
    p = np.empty((M, K))
    p[:, -1] = dp[:, -1]
    for k in range(K - 2, -1, -1):
        p[:, k] = dp[:, k] - cp[:, k] * p[:, k + 1]
    # residual energy of the data term: y'y - 2 p'rhs + p'Gp (G tridiagonal: diag, offd)
    sse = ((y * y).sum(axis=1) - 2 * (p * rhs).sum(axis=1) + (diag * p * p).sum(axis=1)
           + 2 * (offd * p[:, :-1] * p[:, 1:]).sum(axis=1))
    return p, sse


def _radii(shape, cy: np.ndarray, cx: np.ndarray, pick: np.ndarray) -> np.ndarray:
    H, W = shape
    yy, xx = np.divmod(pick, W)
    return np.sqrt((yy[None, :] - cy[:, None]) ** 2 + (xx[None, :] - cx[:, None]) ** 2)


def centres(z: np.ndarray, h: float) -> np.ndarray:
    """Per frame (B, H, W) the beam centre (cy16, cx16) that makes the frame most isotropic: the
    centroid of what stands above the frame's median, then a pattern search (1 px down to 1/16
    px) on the residual energy of the profile fit, all frames at once (large frames on a
    sub-grid of about 2k pixels)."""
    B, H, W = z.shape
    stride = max(1, int(np.ceil(np.sqrt(H * W / 2048))))
    pick = (np.arange(0, H, stride)[:, None] * W + np.arange(0, W, stride)[None, :]).ravel()
    y = z.reshape(B, -1)[:, pick]
    yy, xx = np.divmod(pick, W)
    w = np.clip(y - np.median(y, axis=1, keepdims=True), 0, None)
    w = 10.0 ** np.minimum(w, 30) - 1  # intensity-like weights: the beam and the rings around it
    tot = w.sum(axis=1)
    c = np.where(tot[:, None] > 0, np.stack([(w * yy).sum(1), (w * xx).sum(1)], 1) / np.maximum(tot, 1e-300)[:, None],
                 [(H - 1) / 2, (W - 1) / 2])
    c = np.round(np.nan_to_num(c, nan=(H - 1) / 2) * SUB) / SUB
    h = max(h, 1.0)  # the search's knots: coarser is as good for the centre, and cheaper
    K = int(np.ceil(np.hypot(2.5 * H, 2.5 * W) / h)) + 2

    def cost(cc: np.ndarray, yv: np.ndarray) -> np.ndarray:
        r = _radii((H, W), cc[:, 0], cc[:, 1], pick)
        k0 = np.floor(r.min(axis=1) / h)
        kk = min(K, int(np.ceil((r.max() - (k0 * h).min()) / h)) + 2)
        i, f = _tent(r, h, k0, kk)
        return _solve(yv, i, f, kk)[1]

    moves = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], np.float64)
    best = cost(c, y)
    for s in (1.0, 0.5, 0.25, 0.125, 0.0625):
        active = np.arange(B)  # per scale: every frame once, then only the frames that moved
        for _ in range(3):
            n = len(active)
            cand = (c[active, None, :] + s * moves[None, 1:, :]).reshape(-1, 2)
            cand[:, 0] = np.clip(cand[:, 0], -1.5 * H, 2.5 * H)
            cand[:, 1] = np.clip(cand[:, 1], -1.5 * W, 2.5 * W)
            e = cost(cand, np.repeat(y[active], 4, axis=0)).reshape(n, 4)
            j = e.argmin(axis=1)
            better = e[np.arange(n), j] < best[active]
            if not better.any():
                break
            moved = active[better]
            c[moved] = cand.reshape(n, 4, 2)[better, j[better]]
            best[moved] = e[better, j[better]]
            active = moved
    return np.round(c * SUB).astype(np.int64)


def fit(frames: np.ndarray, centres16: np.ndarray, h16: int, sp: float) -> tuple[list, np.ndarray]:
    """The records (cy16, cx16, k0, q) of frames (n, H, W) and their predictions: knot values by
    least squares, quantised to the knot step ``sp``."""
    n, H, W = frames.shape
    if not n:
        return [], np.zeros((0, H, W))
    h = h16 / SUB
    r = _radii((H, W), centres16[:, 0] / SUB, centres16[:, 1] / SUB, np.arange(H * W))
    k0 = np.floor(r.min(axis=1) / h)
    kn = (np.floor(r.max(axis=1) / h) - k0 + 2).astype(np.int64)
    i, f = _tent(r, h, k0, int(kn.max()))
    p, _ = _solve(frames.reshape(n, -1).astype(np.float64), i, f, int(kn.max()))
    q = np.round(p / sp).astype(np.int64)
    records = [(int(c[0]), int(c[1]), int(k), q[j, :kn[j]]) for j, (c, k) in enumerate(zip(centres16, k0))]
    return records, predict((H, W), records, h16, sp)


def record_bytes(record) -> int:
    out = bytearray()
    write_block(out, [record], 1, 0)
    return len(out) - 3  # less the one-frame bitmap and the chunk's two bytes
