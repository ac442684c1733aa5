"""Hyperprior latents (the conv-hyper family): integer tables decide the coding, never floats.

Why this shape: a mean-scale hyperprior codes y under a Gaussian whose scale comes out of
a network (h_s). A decoder on another device or thread count computes that scale a few
float32 ulps away from the encoder's, and a probability that differs by one ulp breaks a
range decoder. So:

* the symbols are integers, round(y - mu) and round(z); the decoder never re-decides one;
* z is coded under per-channel integer tables; y under one of a fixed set of integer
  tables, chosen by the scale's table coordinate t (index floor(t + 1/2));
* every latent whose t lies within GUARD of a table boundary is flagged in the message
  (a Bernoulli(2^-12) flag per latent, and one bit for the side the encoder used), so a
  decoder whose t differs by less than GUARD picks the same tables; 4-ulp perturbations
  of every network output move t by about 2e-5 (GUARD is 1.2e-4);
* mu only enters y_hat = symbol + mu, a continuous value: its drift is the decoder's
  float rounding, not a different symbol.

The networks between the symbols (h_a, h_s, the gains) are run by the pipeline's
``net`` (``models.runtime.HyperNet``); this module imports no model code. The whole
chunk is one constriction message: z, then the guard flags, then y.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import constriction
import numpy as np

from ..errors import PayloadError, SaecodecError
from .payload import LATENT_HYPER, Reader, put_varint, put_words, read_words

GUARD = 2.0 ** -13  # in table-coordinate units
FLAG_P = 2.0 ** -12  # probability of the guard flag in the range coder
LEVEL_Q = 32  # the level is stored as one byte, level * LEVEL_Q
MAX_ESCAPE = 1 << 40  # an escape beyond this is a corrupted payload
_SCALES_STORED = 1  # section flag: per-frame scales follow the offsets

_models: OrderedDict = OrderedDict()  # identity -> constriction models of its tables
_models_lock = threading.Lock()


class HyperpriorCoder:
    """Latent section: level byte, flags, side info, escapes, the message."""

    kind, kind_code = "hyperprior", LATENT_HYPER
    value_code = 0  # no stored value type: symbols are integers
    needs_net = True

    def __init__(self, model, value_code: int = 0, *, net=None, level=None):
        if net is None:
            raise SaecodecError("the hyperprior coder needs the model's networks (net=)")
        self.net = net
        self.levels = int(net.levels)
        self.level_q = None if level is None else _level_q(level, self.levels, model.name)
        self.z_tables, self.y_tables, self.scales = _prepared(model, net)

    # -- encoder --------------------------------------------------------------------------
    def write(self, latents: np.ndarray, side: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
        """y before the gain (B, M, h, w) -> (section, y_hat / gain as the decoder reads it, side)."""
        lq = self.level_q if self.level_q is not None else _default_q(self.levels)
        g = self.net.gain(lq / LEVEL_Q)[None, :, None, None]
        tile = _tile_of(latents, self.net)
        yg = np.multiply(latents.astype(np.float32, copy=False), g)
        enc = constriction.stream.queue.RangeEncoder()
        escapes = []
        z_hat = np.rint(self.net.analysis(yg, tile)) if len(yg) else np.zeros((0,), np.float32)
        if len(yg):
            zi = z_hat.astype(np.int64)
            _code_groups(enc, _channel_groups(zi.shape), self.z_tables, zi.ravel(), escapes)
            mu, sigma = self.net.synthesis(z_hat.astype(np.float32), tile)
            idx, flagged, upper = _tables(sigma, self.scales)
            del sigma
            _write_guard(enc, idx.size, flagged, upper)
            _code_y(enc, idx, yg.reshape(-1), mu.reshape(-1), self.y_tables, escapes)  # yg becomes y_hat
        y_hat = yg
        out = bytearray([lq])
        _put_side(out, side)
        esc = bytearray()
        for e in escapes:
            put_varint(esc, e)
        put_varint(out, len(esc))
        out += esc
        put_words(out, enc.get_compressed())
        return bytes(out), np.divide(y_hat, g, out=y_hat), side

    # -- decoder --------------------------------------------------------------------------
    def read(self, reader: Reader, frames: int, tile: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        lq = reader.u8()
        if lq > (self.levels - 1) * LEVEL_Q:
            raise PayloadError(f"corrupted payload: level {lq / LEVEL_Q} beyond the model's {self.levels - 1}")
        side = _read_side(reader, frames)
        esc = reader.sub()
        words = read_words(reader)
        yshape, zshape = self.net.latent_shapes(tile)
        check_message(frames * math.prod(yshape), len(words))
        g = self.net.gain(lq / LEVEL_Q)[None, :, None, None]
        if frames == 0:
            return np.zeros((0, *yshape), np.float32), side
        try:
            dec = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(words, dtype=np.uint32))
            zi = _decode_groups(dec, _channel_groups((frames, *zshape)), self.z_tables, esc)
            z_hat = zi.reshape(frames, *zshape).astype(np.float32)
            mu, sigma = self.net.synthesis(z_hat, tile)
            idx, _, _ = _tables(sigma, self.scales)
            _read_guard(dec, idx, sigma.reshape(-1), self.scales)
            del sigma
            y_hat = np.empty(mu.shape, np.float32)
            _decode_y(dec, idx, mu.reshape(-1), y_hat.reshape(-1), self.y_tables, esc)
        except PayloadError:
            raise
        except Exception as e:  # constriction raises plain exceptions on invalid data
            raise PayloadError(f"corrupted payload: hyperprior latent decoding failed ({e})") from None
        if esc.remaining():
            raise PayloadError("corrupted payload: unused escape bytes in the latent section")
        return np.divide(y_hat, g, out=y_hat), side


# Every y latent has a guard flag coded under Bernoulli(FLAG_P): at least this many bits even
# when every symbol is certain, so a message of W words holds at most (32 W + slack) / FLAG_BITS
# latents. Constant frames, the cheapest legitimate ones, take 68-220x more (measured with
# sas-conv-h, levels 0 and 5, 64x64 to 1024x1024); a payload claiming more is refused before
# anything of that size is allocated.
FLAG_BITS = -math.log2(1 - FLAG_P)
MESSAGE_SLACK_BITS = 64


def check_message(latents: int, words: int) -> None:
    if latents * FLAG_BITS > 32 * words + MESSAGE_SLACK_BITS:
        raise PayloadError(f"corrupted payload: {latents} latents claimed, more than a message of {words} words "
                           "can code")


def check_level(level, levels: int, name: str) -> float:
    """``level`` as a number within the model's rate levels 0 .. ``levels`` - 1: the one
    place that states the valid range (the codec checks it when made, the coder per chunk)."""
    try:
        v = float(level)
    except (TypeError, ValueError):
        raise SaecodecError(f"level must be a number, got {level!r}") from None
    if not 0 <= v <= levels - 1:
        raise SaecodecError(f"level {v:g} is outside model {name!r}'s rate levels 0 .. {levels - 1}")
    return v


def _level_q(level, levels: int, name: str) -> int:
    return int(round(check_level(level, levels, name) * LEVEL_Q))


def _default_q(levels: int) -> int:
    """The middle of the trained levels (``options.level`` None)."""
    return int((levels - 1) * LEVEL_Q // 2)


def _tile_of(y: np.ndarray, net) -> tuple[int, int]:
    """A frame shape with y's latent shape (the nets only need the batch size per pass)."""
    s = net.module.stride
    return y.shape[-2] * s, y.shape[-1] * s


def _put_side(out: bytearray, side: np.ndarray) -> None:
    """Per-frame offsets, and scales only when some frame's is not 1 (mean-only transforms)."""
    side = np.asarray(side, np.float32)
    scales = bool(len(side)) and not np.all(side[:, 1] == 1.0)
    out.append(_SCALES_STORED if scales else 0)
    out += side[:, 0].astype("<f4").tobytes()
    if scales:
        out += side[:, 1].astype("<f4").tobytes()


def _read_side(reader: Reader, frames: int) -> np.ndarray:
    flags = reader.u8()
    if flags & ~_SCALES_STORED:
        raise PayloadError(f"corrupted payload: unknown latent section flags {flags}")
    side = np.ones((frames, 2), np.float32)
    side[:, 0] = reader.array("<f4", frames)
    if flags & _SCALES_STORED:
        side[:, 1] = reader.array("<f4", frames)
    if not np.isfinite(side).all():
        raise PayloadError("corrupted payload: non-finite frame normalisation")
    return side


# -- tables ------------------------------------------------------------------------------
def _prepared(model, net):
    """(z tables, y tables, scales): per table (kmin, K, constriction model), cached per model."""
    key = model.identity or id(model)
    with _models_lock:
        hit = _models.get(key)
        if hit is not None:
            _models.move_to_end(key)
            return hit
    t = net.tables()

    def cats(tables):
        out = []
        for kmin, counts in tables:
            c = np.asarray(counts, np.float64)
            if len(c) < 2 or (c < 1).any():
                raise SaecodecError(f"model {model.name!r}: a frozen entropy table is invalid")
            out.append((int(kmin), len(c), constriction.stream.model.Categorical(c / c.sum(), perfect=False)))
        return out

    lo, hi, n = t["scales"]
    prepared = (cats(t["z"]), cats(t["y"]), (float(np.log(lo)), float(np.log(hi)), int(n)))
    if len(prepared[1]) != prepared[2][2]:
        raise SaecodecError(f"model {model.name!r}: {len(prepared[1])} Gaussian tables for {n} scales")
    with _models_lock:
        _models[key] = prepared
        while len(_models) > 8:
            _models.popitem(last=False)
    return prepared


def _coordinate(sigma: np.ndarray, scales) -> np.ndarray:
    """Continuous table coordinate t of each scale (float64); the table is floor(t + 1/2)."""
    lo, hi, n = scales
    return (np.log(np.maximum(sigma.astype(np.float64), 1e-30)) - lo) / (hi - lo) * (n - 1)


# The per-latent steps below run over slices of this many latents: a large frame's float64
# temporaries (t, symbols, positions) then take a few MB, not tens of bytes per latent (each
# step is elementwise, or keeps the coding order, so the bytes are those of one pass).
SLICE = 1 << 16


def _slices(n: int):
    return ((a, min(n, a + SLICE)) for a in range(0, n, SLICE))


def _tables(sigma: np.ndarray, scales) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(table index floor(t + 1/2) clipped, per latent in C order, as small integers; the
    positions within GUARD of a boundary; for those, 1 where the index is above floor(t))."""
    n = scales[2]
    flat = sigma.reshape(-1)
    idx = np.empty(flat.size, np.uint8 if n <= 256 else np.int32)
    flagged, upper = [], []
    for a, b in _slices(flat.size):
        t = _coordinate(flat[a:b], scales)
        i = np.clip(np.floor(t + 0.5), 0, n - 1)
        idx[a:b] = i
        unsafe = np.clip(np.floor(t - GUARD + 0.5), 0, n - 1) != np.clip(np.floor(t + GUARD + 0.5), 0, n - 1)
        pos = np.flatnonzero(unsafe)
        flagged.append(pos + a)
        upper.append((i[pos] > np.floor(t[pos])).astype(np.int32))
    return idx, np.concatenate(flagged), np.concatenate(upper)


def _write_guard(enc, size: int, flagged: np.ndarray, upper: np.ndarray) -> None:
    """A flag per latent (Bernoulli FLAG_P): near a boundary; per flagged latent one bit: the
    encoder used the table above the boundary (1) or below (0)."""
    flag = constriction.stream.model.Bernoulli(FLAG_P, perfect=False)
    for a, b in _slices(size):
        flags = np.zeros(b - a, np.int32)
        flags[flagged[(flagged >= a) & (flagged < b)] - a] = 1
        enc.encode(flags, flag)
    if len(flagged):
        enc.encode(upper, constriction.stream.model.Bernoulli(0.5, perfect=False))


def _read_guard(dec, idx: np.ndarray, sigma: np.ndarray, scales) -> None:
    flag = constriction.stream.model.Bernoulli(FLAG_P, perfect=False)
    pos = np.concatenate([np.flatnonzero(dec.decode(flag, b - a)) + a for a, b in _slices(idx.size)] or [[]])
    pos = pos.astype(np.int64)
    if len(pos):
        upper = dec.decode(constriction.stream.model.Bernoulli(0.5, perfect=False), len(pos))
        t = _coordinate(sigma[pos], scales)
        idx[pos] = np.clip(np.floor(t) + upper, 0, scales[2] - 1)


def _groups(idx: np.ndarray):
    """(table, slice start, positions) in coding order: tables ascending, C order within one."""
    present = np.flatnonzero(np.bincount(idx, minlength=1))
    for tid in present:
        for a, b in _slices(idx.size):
            pos = np.flatnonzero(idx[a:b] == tid)
            if len(pos):
                yield int(tid), pos + a


def _code_y(enc, idx, yg, mu, tables, escapes: list) -> None:
    """Every y symbol round(yg - mu) under its table, in coding order; ``yg`` is overwritten
    with y_hat = symbol + mu (each position is read once, before it is written)."""
    for tid, pos in _groups(idx):
        m = mu[pos].astype(np.float64)
        sym = np.rint(yg[pos].astype(np.float64) - m).astype(np.int64)
        _code_groups(enc, ((tid, slice(None)),), tables, sym, escapes)
        yg[pos] = (sym + m).astype(np.float32)


def _decode_y(dec, idx, mu, y_hat, tables, esc: Reader) -> None:
    for tid, pos in _groups(idx):
        sym = _decode_groups(dec, ((tid, np.arange(len(pos))),), tables, esc)
        y_hat[pos] = (sym + mu[pos].astype(np.float64)).astype(np.float32)


# -- groups of symbols sharing a table ---------------------------------------------------
def _channel_groups(shape) -> list[tuple[int, np.ndarray]]:
    b, c, h, w = shape
    ar = np.arange(b * c * h * w).reshape(b, c, h, w)
    return [(ch, ar[:, ch].ravel()) for ch in range(c)]


def _code_groups(enc, groups, tables, symbols: np.ndarray, escapes: list) -> None:
    """Each group under its table; a symbol at or beyond an edge codes the edge and its excess."""
    for tid, pos in groups:
        kmin, K, cat = tables[tid]
        s = symbols[pos] - kmin
        edge = (s <= 0) | (s >= K - 1)
        if edge.any():
            e = s[edge]
            escapes.extend(np.where(e <= 0, -e, e - (K - 1)).tolist())
        enc.encode(np.clip(s, 0, K - 1).astype(np.int32), cat)


def _decode_groups(dec, groups, tables, esc: Reader) -> np.ndarray:
    size = sum(len(p) for _, p in groups)
    out = np.zeros(size, np.int64)
    for tid, pos in groups:
        kmin, K, cat = tables[tid]
        s = dec.decode(cat, len(pos)).astype(np.int64)
        for j in np.flatnonzero((s == 0) | (s == K - 1)):
            e = esc.varint(limit=MAX_ESCAPE)
            s[j] = -e if s[j] == 0 else s[j] + e
        out[pos] = s + kmin
    return out
