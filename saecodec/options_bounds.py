"""The bounded modes', the masks' and the rate level's codec options: their checks and cd_values words.

The other half of ``options.py``'s seam for ``bound_mode`` pwrel/poisson, ``mask_values``,
``mask_below``, ``mask`` and ``predictor``; kept apart to keep options.py small. The
cd_values entries are appended after options.py's own (never reordered):

* bound mode: 1 word, 0 = as the bound entry says, 3 pwrel, 4 poisson (the bound entry
  says "abs" for these, so that an older saecodec still parses it: it decodes such
  datasets, and refuses to write them because of the words it does not know);
* mask values: 1 count word, then 3 words per sentinel (kind, two 32-bit halves: as the
  mask entry, which keeps the first sentinel for older readers);
* mask below: 3 words (kind 0 none / 1 float64);
* mask: 1 word n, then n words (rank, dims, zlib byte count, zlib of the packed bits);
* predictor: 1 word, 0 classical, 1 network;
* level (the rate level of conv-hyper models): 1 word, 0 the model's default, else
  1 + level x 32.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from .coding.mask import MAX_MASK_VALUES, FrameMask
from .errors import SaecodecError

BOUND_CODES = {"pwrel": 3, "poisson": 4}
PREDICTORS = ("classical", "network")
MASK_NONE, MASK_INT, MASK_FLOAT, MASK_UINT = 0, 1, 2, 3
LEVEL_STEPS = 32  # a rate level is stored in 1/32 steps (one payload byte)
LEVEL_MAX = 255 / LEVEL_STEPS


def mask_value(value):
    """One sentinel: a 64-bit integer (signed or unsigned) or a finite float; NaN/inf: None
    (non-finite values are always masked)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SaecodecError(f"mask_value must be a number, got {value!r}")
    if isinstance(value, (int, np.integer)):
        if not -(1 << 63) <= int(value) < 1 << 64:
            raise SaecodecError(f"mask_value {value} is no 64-bit integer: no element type saecodec stores can "
                                "hold it")
        return int(value)
    as_float = float(value)
    if not math.isfinite(as_float):
        return None
    return int(as_float) if as_float.is_integer() and abs(as_float) < 2.0 ** 63 else as_float


def mask_values(values) -> tuple:
    """Sentinels as a sorted tuple without repeats (one number is accepted too)."""
    if values is None:
        return ()
    if isinstance(values, (str, bytes)) or not np.iterable(values):
        values = (values,)
    out = []
    for v in values:
        m = mask_value(v)
        if m is not None and m not in out:
            out.append(m)
    if len(out) > MAX_MASK_VALUES:
        raise SaecodecError(f"at most {MAX_MASK_VALUES} mask values, got {len(out)}")
    return tuple(sorted(out, key=lambda v: (isinstance(v, float), v)))


def mask_below(value):
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SaecodecError(f"mask_below must be a number, got {value!r}") from None
    if math.isnan(v):
        raise SaecodecError("mask_below must be a number, got NaN")
    return v


def predictor(value) -> str:
    if value not in PREDICTORS:
        raise SaecodecError(f"predictor must be one of {PREDICTORS}, got {value!r}")
    return value


def check_bound(bound_mode: str, error_bound: float | None) -> None:
    if error_bound is None:
        return
    if bound_mode == "poisson" and error_bound > 1e6:
        raise SaecodecError(f"a poisson bound is a fraction of the counting noise; got {error_bound} (at most 1e6)")


def _f64_words(v: float) -> tuple[int, int]:
    return struct.unpack(">II", struct.pack(">d", float(v)))


def _words_f64(hi: int, lo: int) -> float:
    return struct.unpack(">d", struct.pack(">II", hi, lo))[0]


def value_words(v) -> tuple[int, int, int]:
    if v is None:
        return MASK_NONE, 0, 0
    if isinstance(v, int):
        u = v & ((1 << 64) - 1)  # two's complement in 64 bits, or unsigned above 2**63 - 1
        return MASK_UINT if v >= 1 << 63 else MASK_INT, u >> 32, u & 0xFFFFFFFF
    return (MASK_FLOAT, *_f64_words(v))


def words_value(w):
    u = (w[1] << 32) | w[2]
    if w[0] == MASK_INT:
        return u - (1 << 64) if u >= 1 << 63 else u
    if w[0] == MASK_UINT:
        return u
    if w[0] == MASK_FLOAT:
        return _words_f64(w[1], w[2])
    if w[0] != MASK_NONE:
        raise SaecodecError(f"saecodec cd_values: unknown mask kind {w[0]}")
    return None


def _pack_mode(o):
    return (BOUND_CODES.get(o.bound_mode, 0) if o.error_bound is not None else 0,)


def _unpack_mode(w) -> dict:
    modes = {v: k for k, v in BOUND_CODES.items()}
    if w[0] and w[0] not in modes:
        raise SaecodecError(f"saecodec cd_values: unknown bound mode {w[0]}")
    return {"bound_mode": modes[w[0]]} if w[0] else {}


def _pack_values(o):
    return (len(o.mask_values), *(x for v in o.mask_values for x in value_words(v)))


def _unpack_values(w) -> dict:
    vals = [words_value(w[1 + 3 * i:4 + 3 * i]) for i in range(w[0])]
    return {"mask_values": tuple(v for v in vals if v is not None)}


def _pack_below(o):
    return (0, 0, 0) if o.mask_below is None else (1, *_f64_words(o.mask_below))


def _unpack_below(w) -> dict:
    if w[0] not in (0, 1):
        raise SaecodecError(f"saecodec cd_values: unknown mask_below kind {w[0]}")
    return {"mask_below": _words_f64(w[1], w[2])} if w[0] else {}


def _pack_frame_mask(o):
    return (0,) if o.mask is None else o.mask.words()


def _unpack_frame_mask(w) -> dict:
    return {"mask": FrameMask.from_words(w)} if w[0] else {}


def _pack_predictor(o):
    return (PREDICTORS.index(o.predictor),)


def _unpack_predictor(w) -> dict:
    if w[0] >= len(PREDICTORS):
        raise SaecodecError(f"saecodec cd_values: unknown predictor {w[0]}")
    return {"predictor": PREDICTORS[w[0]]}


def level(value):
    """A rate level >= 0 in the payload's steps of 1/32 (the model checks its own range)."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SaecodecError(f"level must be a number, got {value!r}") from None
    if not (math.isfinite(v) and 0 <= v <= LEVEL_MAX):
        raise SaecodecError(f"level must be between 0 and {LEVEL_MAX} (the model's levels 0 .. L - 1), got {value!r}")
    return round(v * LEVEL_STEPS) / LEVEL_STEPS


def _pack_level(o):
    return (0,) if o.level is None else (1 + int(round(o.level * LEVEL_STEPS)),)


def _unpack_level(w) -> dict:
    if w[0] > 1 + LEVEL_MAX * LEVEL_STEPS:
        raise SaecodecError(f"saecodec cd_values: level word {w[0]} out of range")
    return {"level": (w[0] - 1) / LEVEL_STEPS} if w[0] else {}


CD_ENTRIES = [(1, _pack_mode, _unpack_mode),
              (lambda w: 1 + 3 * w[0] if w else 1, _pack_values, _unpack_values),
              (3, _pack_below, _unpack_below),
              (lambda w: 1 + w[0] if w else 1, _pack_frame_mask, _unpack_frame_mask),
              (1, _pack_predictor, _unpack_predictor),
              (1, _pack_level, _unpack_level)]
