"""The pure mode's quality gate: no frame decodes beyond a stated error, or outside its range.

The pure autoencoder has no pointwise guarantee, and out of its training distribution it
can return garbage (pixels far outside the frame's values). The encoder knows the
original, so per frame (a tile of a tiled model, a whole 2D plane of a whole-frame model)
it measures what the decoder will return, in the model's transformed domain u
(``Transform.to_u``: asinh or linear), over the frame's valid pixels: the relative L2
``||u_dec - u|| / ||u - mean(u)||`` (the project's offset-free metric). A frame that misses
``max_error`` falls back to the error-bounded coding (``bound.write_section``) of u,
without the network (it missed there; its latents are dropped), under a pointwise bound:
``|du| <= h`` with ``h = max_error * RMS(u - mean(u))`` on every pixel gives a relative L2
of at most ``max_error``. A quantiser's errors have an RMS well below its bound (h / sqrt(3)
for uniform errors), so the encoder first codes with 1.5 h, decodes that, and keeps it for
the frames whose decoded relative L2 meets the target; the others get the safe h. Tiles
suffice for a plane: the tiles' deviations from their own means sum to at most the
plane's deviation from its mean.

Every decoded frame is clipped to its valid values' [min, max] (stored in the element
type), which never moves a value away from the original. Reserves (float32 rounding of a
decoder's network, the cast to the element type) are taken before deciding and coding,
so the target holds on another device too. Section layout: docs/format.md.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import bound, tiling
from .coding import payload as fmt
from .errors import PayloadError

# Relative slack for float64 sums and products.
MARGIN = 2.0 ** -20
_ROUND = 2.0 ** -40
# The first, verified try codes a fallback frame with this multiple of its nominal bound.
FIRST_TRY = 1.5


class Assessment(NamedTuple):
    fallback: np.ndarray  # (B,) bool: frames that miss the target
    h: np.ndarray  # (B,) float64 safe pointwise bound in u of the fallback frames (0: store exactly)
    h_try: np.ndarray  # (B,) the first, verified try's bound
    target: np.ndarray  # (B,) max_error x the frame's deviation from its mean, in u
    lo: np.ndarray  # (B,) per frame min of the valid values, element type
    hi: np.ndarray  # (B,) per frame max


def valid_frames(masked: np.ndarray, shape: tuple[int, ...], tile: tuple[int, int]) -> np.ndarray:
    """(B, th, tw) bool: the frames' pixels that are in the chunk (not edge padding) and not masked."""
    th, tw = tile
    planes, ny, nx = tiling.grid(shape, tile)
    inside = np.zeros((ny * th, nx * tw), bool)
    inside[:shape[-2], :shape[-1]] = True
    inside = inside.reshape(ny, th, nx, tw).transpose(0, 2, 1, 3).reshape(1, ny * nx, th, tw)
    unmasked = tiling.split(~masked.reshape(shape), tile).reshape(planes, ny * nx, th, tw)
    return (unmasked & inside).reshape(-1, th, tw)


def _ranges(frames: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame min and max of the valid elements, in their own type (exact for 64-bit integers)."""
    dt = frames.dtype
    big, small = (np.iinfo(dt).max, np.iinfo(dt).min) if dt.kind in "iu" else (np.inf, -np.inf)
    b = len(frames)
    lo = np.where(valid, frames, big).reshape(b, -1).min(axis=1, initial=big)
    hi = np.where(valid, frames, small).reshape(b, -1).max(axis=1, initial=small)
    empty = ~valid.reshape(b, -1).any(axis=1)
    lo[empty] = 0
    hi[empty] = 0
    return lo.astype(dt), hi.astype(dt)


def clip(frames: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.clip(frames, lo[:, None, None], hi[:, None, None])


def _net_u(z: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Network output -> u (before the inverse of ``to_u``), as ``Transform.inverse`` computes
    it: z * scale + offset, in a new float64 array."""
    side = np.asarray(side, dtype=np.float64)
    u = np.array(z, dtype=np.float64)
    np.multiply(u, side[:, 1:2], out=u)
    return np.add(u, side[:, 0:1], out=u)


def _cast_reserve(transform, dtype: np.dtype, umax: np.ndarray) -> np.ndarray:
    """Per frame: what the cast of a value to a float element type can move it, in u."""
    fi = np.finfo(dtype)
    return 2.0 * float(fi.eps) * (1.0 + umax) + float(fi.smallest_subnormal) / transform.scale


def _rounding_steps(tr, y, decoded, z, side, v, tol=bound.NET_TOLERANCE) -> np.ndarray:
    """Per pixel (B, n): the step in u to the next integer where the decoder's y lies so near
    k + 1/2 (within another decoder's network tolerance) that it may round the other way;
    0 elsewhere and on invalid pixels. Elementwise, a slice of a frame at a time."""
    b = len(y)
    y, decoded, out = y.reshape(b, -1), decoded.reshape(b, -1), np.empty((b, y[0].size))
    for i in range(b):
        for a in range(0, y.shape[1], bound.CAST_SLICE):
            s = slice(a, a + bound.CAST_SLICE)
            yi = y[i, s]
            near = np.abs(yi - np.floor(yi) - 0.5) <= tr.sensitivity(z[i:i + 1, s], side[i:i + 1], tol)[0]
            d = decoded[i, s].astype(np.float64)
            step = np.maximum(np.abs(tr.to_u(d + 1) - tr.to_u(d)), np.abs(tr.to_u(d) - tr.to_u(d - 1)))
            out[i, s] = np.where(near, step, 0.0) * v[i, s]
    return out


def _sq(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Per row, the sum of a * b (a * a): squared norms without temporaries."""
    return np.einsum("ij,ij->i", a, a if b is None else b)


def assess(model, frames: np.ndarray, valid: np.ndarray, z_in: np.ndarray, z: np.ndarray, side: np.ndarray,
           max_error: float) -> Assessment:
    """Which frames (B, th, tw), in their element type, miss ``max_error`` when decoded from
    the network output ``z`` (B, th*tw) and ``side`` (``z_in``: the network's input), and the
    bound each fallback is coded to.

    A frame passes when ||u_dec - u|| + ||guard|| <= max_error ||u - mean(u)|| over its valid
    pixels, where the guard bounds, per pixel, how far another decoder's u_dec may be (its
    network output within ``bound.NET_TOLERANCE``, its cast), and u, taken from the
    network's float32 input, may be from the exact u. Norms of sums are bounded by sums of
    norms (||1 + |z||| <= sqrt(n) + ||z||), which needs no per-pixel guard array.
    """
    tr, dtype = model.transform, frames.dtype
    b = len(frames)
    lo, hi = _ranges(frames, valid)
    # Every per-pixel array is one float64 array computed in place, and the valid mask
    # multiplies as booleans (x * True == x * 1.0): the values of the plain expressions in
    # the comments, with two or three arrays of a large frame alive at once, not a dozen.
    v = valid.reshape(b, -1)
    nv = np.count_nonzero(v, axis=1).astype(np.float64)  # vf.sum(axis=1)
    sd = np.abs(side[:, 1].astype(np.float64))
    u = _net_u(z_in, side)
    np.multiply(u, v, out=u)  # u * vf: exact to 2**-24 |z_in| std (``own`` below)
    umax = np.maximum(u.max(axis=1, initial=0.0), -u.min(axis=1, initial=0.0))  # |u|.max()
    one = np.sqrt(nv)
    own = 2.0 ** -23 * sd * (one + np.sqrt(_sq(z_in.astype(np.float64))))
    tol = bound.net_tolerance(model)
    slack = (tol * sd * (one + np.sqrt(_sq(z.astype(np.float64)))) + own
             + _ROUND * (one + np.sqrt(_sq(u))))
    with np.errstate(over="ignore", invalid="ignore"):
        mean = u.sum(axis=1) / np.maximum(nv, 1)
        centred = np.subtract(u, mean[:, None])
        dev = np.sqrt(_sq(np.multiply(centred, v, out=centred)))  # (u - mean) * vf
        del centred
    if dtype.kind == "f" and umax.max(initial=0.0) < 300:
        # the decoder's cast moves a value by a float rounding (the reserve); clipping x to
        # [lo, hi] is clipping u to [u(lo), u(hi)]
        ud = _net_u(z, side)
        np.clip(ud, tr.to_u(lo.astype(np.float64))[:, None], tr.to_u(hi.astype(np.float64))[:, None], out=ud)
        slack = slack + _cast_reserve(tr, dtype, umax) * one
    else:  # the decoder's own path; another decoder may round a value near k + 1/2 the other way
        y = tr.inverse(z, side, frames.shape[1:])
        decoded = bound.cast(y, dtype)
        np.clip(decoded, lo[:, None, None], hi[:, None, None], out=decoded)
        with np.errstate(over="ignore", invalid="ignore"):
            if dtype.kind == "f":
                slack = slack + _cast_reserve(tr, dtype, umax) * one
            else:
                slack = slack + np.sqrt(_sq(_rounding_steps(tr, y, decoded, z, side, v, tol)))
            del y
            ud = tr.to_u(decoded).reshape(b, -1)
            del decoded
    with np.errstate(over="ignore", invalid="ignore"):
        dev = np.maximum(dev - own, 0.0)
        diff = np.multiply(np.subtract(ud, u, out=ud), v, out=ud)  # (ud - u) * vf
        err = np.sqrt(_sq(diff))
        target = max_error * dev * (1.0 - MARGIN)
        fallback = (dev > 0) & ~(err + slack <= target)  # NaN and inf fall back
        h = np.where(fallback, target / np.sqrt(np.maximum(nv, 1)), 0.0)
    # The coding's own bound: room for the cast to the element type (floats), or half of h
    # for integers (rounding to the nearest integer at most doubles a deviation in u that
    # is at least half an integer step there). Too little room: the frame is stored exactly.
    if dtype.kind == "f":
        h_code = h - _cast_reserve(tr, dtype, umax) - _ROUND * (1.0 + umax)
        room = h_code > 0.5 * h
    else:
        h_code = 0.5 * h - _ROUND * (1.0 + umax)
        room = h_code > 0
    h_code = np.where(fallback & room & np.isfinite(h_code), h_code, 0.0)
    return Assessment(fallback, h_code, np.where(h_code > 0, FIRST_TRY * h, 0.0), target, lo, hi)


def write(a: Assessment, model, frames: np.ndarray, valid: np.ndarray, all_latents: bool,
          codings=bound.CODINGS) -> bytes:
    """The gate section. ``all_latents``: every frame keeps its latents (else only the frames
    that met the target have latents: the fallback codings do not use the network)."""
    out = bytearray()
    idx = np.flatnonzero(a.fallback)
    coded, exact = idx[a.h[idx] > 0], idx[a.h[idx] == 0]
    body, h = _code(a, model, frames, valid, coded, codings) if len(coded) else (b"", np.zeros(0))
    fmt.put_varint(out, len(idx))
    out.append(1 if all_latents else 0)
    le = frames.dtype.newbyteorder("<")
    out += np.stack([a.lo, a.hi], axis=1).astype(le).tobytes()
    for g in np.diff(idx, prepend=-1) - 1:
        fmt.put_varint(out, int(g))
    hs = np.zeros(len(idx))
    hs[np.isin(idx, coded)] = h
    out += hs.astype("<f8").tobytes()
    out += body
    if len(exact):
        fmt.put_block(out, fmt.deflate(frames[exact].astype(le).tobytes()))
    block = bytearray()
    fmt.put_block(block, bytes(out))
    return bytes(block)


def _code(a: Assessment, model, frames, valid, coded, codings) -> tuple[bytes, np.ndarray]:
    """The residual section of the fallback frames ``coded`` in units of their h, and the h:
    the first try's where its decoded frame meets the target, the safe h elsewhere."""
    with np.errstate(invalid="ignore", over="ignore"):
        u = np.where(valid[coded], model.transform.to_u(frames[coded]), 0.0)
    h = a.h_try[coded]
    for _ in range(2):
        body = _residual(u, valid[coded], h, codings)
        ok = _meets(body, model, u, valid[coded], h, a.target[coded], a.lo[coded], a.hi[coded], frames.dtype)
        if ok.all():
            return body, h
        h = np.where(ok, h, a.h[coded])
    h = a.h[coded]  # pointwise safe: no decoding needed
    return _residual(u, valid[coded], h, codings), h


def _residual(u, valid, h, codings) -> bytes:
    body = bytearray()
    hb = h[:, None, None]
    bound.write_section(body, np.where(valid, u / hb, 0.0), valid, np.dtype(np.float64), 1.0, None, None, 0,
                        codings)
    return bytes(body)


def _decoded(body, model, n: int, tile, h, lo, hi, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Fallback frames as a decoder returns them (element type, clipped), and before the cast."""
    sec = bound.read_section(fmt.Reader(body), n, tuple(tile), np.dtype(np.float64), False, fmt.VERSION)
    un = bound.reconstruct(sec, None, (n,) + tuple(tile), np.dtype(np.float64))
    y = model.transform.from_u(un * h[:, None, None])
    return clip(bound.cast(y, dtype), lo, hi), y


def _meets(body, model, u, valid, h, target, lo, hi, dtype) -> np.ndarray:
    """Whether each coded frame, decoded, meets its target, with room for another machine's
    rounding (libm's sinh, the cast)."""
    tr = model.transform
    n = len(u)
    decoded, y = _decoded(body, model, n, u.shape[1:], h, lo, hi, dtype)
    vf = valid.reshape(n, -1).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        ud = tr.to_u(decoded).reshape(n, -1)
        err = np.sqrt(_sq((ud - u.reshape(n, -1)) * vf))
        umax = np.abs(u).reshape(n, -1).max(axis=1, initial=0.0)
        one = np.sqrt(vf.sum(axis=1))
        slack = _ROUND * (one + np.sqrt(_sq(u.reshape(n, -1))))
        if np.dtype(dtype).kind == "f":
            slack = slack + _cast_reserve(tr, np.dtype(dtype), umax) * one
        else:  # a value within rounding of k + 1/2 may round the other way elsewhere
            near = np.abs(y - np.floor(y) - 0.5) <= 2.0 ** -30 * (1.0 + np.abs(y))
            d = decoded.astype(np.float64)
            step = np.maximum(np.abs(tr.to_u(d + 1) - tr.to_u(d)), np.abs(tr.to_u(d) - tr.to_u(d - 1)))
            slack = slack + np.sqrt(_sq(np.where(near, step, 0.0).reshape(n, -1) * vf))
        return err + slack <= target


class Gate(NamedTuple):
    fallback: np.ndarray  # (B,) bool
    latents: bool  # every frame has latents (else only the others)
    lo: np.ndarray
    hi: np.ndarray
    h: np.ndarray  # (F,) per fallback frame, 0: stored exactly
    residual: dict | None  # bound.read_section of the coded fallback frames
    exact: np.ndarray | None  # (E, th, tw) the exact frames

    @property
    def latent_frames(self) -> np.ndarray:
        return np.ones(len(self.fallback), bool) if self.latents else ~self.fallback


def read(reader: fmt.Reader, frames: int, tile: tuple[int, int], dtype: np.dtype, version: int) -> Gate:
    """The gate section of a payload of format ``version`` (``Header.version``)."""
    r = reader.sub()
    count = r.varint(frames)
    latents = r.u8()
    if latents > 1 or (count == 0 and not latents):
        raise PayloadError("corrupted payload: invalid quality gate header")
    le = np.dtype(dtype).newbyteorder("<")
    ranges = r.array(le, 2 * frames).reshape(frames, 2).astype(le.newbyteorder("="))
    lo, hi = ranges[:, 0], ranges[:, 1]
    if not (lo <= hi).all():  # also refuses NaN
        raise PayloadError("corrupted payload: invalid frame value range")
    idx = np.cumsum([r.varint(frames) + 1 for _ in range(count)], dtype=np.int64) - 1
    if count and idx[-1] >= frames:
        raise PayloadError("corrupted payload: quality gate frame index out of range")
    fallback = np.zeros(frames, bool)
    fallback[idx] = True
    h = r.array("<f8", count).astype(np.float64)
    if not (np.isfinite(h).all() and (h >= 0).all()):
        raise PayloadError("corrupted payload: invalid quality gate bound")
    n_coded, n_exact = int((h > 0).sum()), int((h == 0).sum())
    residual = bound.read_section(r, n_coded, tile, np.dtype(np.float64), bool(latents), version) if n_coded else None
    exact = None
    if n_exact:
        size = n_exact * tile[0] * tile[1] * le.itemsize
        exact = np.frombuffer(fmt.inflate(r, size, "exact frames"), le).reshape((n_exact,) + tuple(tile))
    if r.remaining():
        raise PayloadError("corrupted payload: trailing bytes in the quality gate section")
    return Gate(fallback, bool(latents), lo, hi, h, residual, exact)


def apply(g: Gate, model, z: np.ndarray | None, side: np.ndarray | None, tile: tuple[int, int],
          dtype: np.dtype) -> np.ndarray:
    """Decoded frames (B, th, tw) in ``dtype``: the network's where it met the target, the
    fallback codings elsewhere, every frame clipped to its range. ``z`` and ``side``: the
    network output of the frames that have latents (``g.latent_frames``)."""
    dtype = np.dtype(dtype).newbyteorder("=")
    b = len(g.fallback)
    has = np.flatnonzero(g.latent_frames)
    if len(has) == b:  # the common case: the decoded frames are the output (no second copy)
        out = bound.cast(model.transform.inverse(z, side, tile), dtype)
    else:
        out = np.zeros((b,) + tuple(tile), dtype)
        if len(has):
            out[has] = bound.cast(model.transform.inverse(z, side, tile), dtype)
    idx = np.flatnonzero(g.fallback)
    coded, exact = idx[g.h > 0], idx[g.h == 0]
    if len(coded):
        h = g.h[g.h > 0][:, None, None]
        pred = None
        if g.latents:  # every frame has latents: row i of z is frame i
            pred = _net_u(z[coded], side[coded]).reshape((len(coded),) + tuple(tile)) / h
        un = bound.reconstruct(g.residual, pred, (len(coded),) + tuple(tile), np.dtype(np.float64))
        out[coded] = bound.cast(model.transform.from_u(un * h), dtype)
    if len(exact):
        out[exact] = g.exact
    return np.clip(out, g.lo[:, None, None], g.hi[:, None, None], out=out)


def fallback_count(reader: fmt.Reader) -> int:
    """The number of fallback frames, from a reader at the gate section (nothing else parsed)."""
    return reader.sub().varint()
