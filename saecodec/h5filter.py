"""The Python side of the HDF5 filter plugin: one chunk in, one chunk out.

Imported by the cffi-embedded library inside any HDF5 host, so it must not import
h5py: in a C host such as h5dump that would load a second, different libhdf5.
"""

from __future__ import annotations

import os

import numpy as np

from .coding import payload as fmt
from .errors import SaecodecError

DEFAULT_FILTER_ID = 32850
# cd_values layout 2: [2, identity (8 words), weight code, n_opts, options..., element type
# code, rank, chunk dims...]; the last three are written by the plugin's set_local.
# Layout 1 (no options: [1, identity, weight code, type code, rank, dims]) is still read.
CD_VERSION = 2
N_OPTIONS = 6  # bound kind, bound (float64: 2 words), mask kind, mask value (2 words)
H5Z_FLAG_REVERSE = 0x0100
_BOUND_KINDS = {None: 0, "abs": 1, "rel": 2}


def filter_id() -> int:
    """The filter id: 32850 unless ``SAECODEC_H5_FILTER_ID`` says otherwise (256..65535)."""
    env = os.environ.get("SAECODEC_H5_FILTER_ID", "").strip()
    if env:
        try:
            v = int(env)
        except ValueError:
            v = -1
        if 256 <= v <= 65535:
            return v
    return DEFAULT_FILTER_ID


def identity_words(identity: str) -> tuple[int, ...]:
    raw = bytes.fromhex(identity)
    return tuple(int.from_bytes(raw[i:i + 4], "big") for i in range(0, 32, 4))


def words_identity(words) -> str:
    return b"".join(int(w).to_bytes(4, "big") for w in words).hex()


def _f64_words(v: float) -> tuple[int, int]:
    raw = np.array([v], dtype=">f8").tobytes()
    return int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:], "big")


def _words_f64(hi: int, lo: int) -> float:
    return float(np.frombuffer(int(hi).to_bytes(4, "big") + int(lo).to_bytes(4, "big"), ">f8")[0])


def options_words(error_bound, bound_mode: str, mask_value) -> tuple[int, ...]:
    kind = 0 if error_bound is None else _BOUND_KINDS[bound_mode]
    eb = _f64_words(0.0 if error_bound is None else error_bound)
    if mask_value is None:
        mask = (0, 0, 0)
    elif isinstance(mask_value, int):
        v = int(mask_value) & ((1 << 64) - 1)  # two's complement in 64 bits
        mask = (1, v >> 32, v & 0xFFFFFFFF)
    else:
        mask = (2, *_f64_words(mask_value))
    return (kind, *eb, *mask)


def cd_values(identity: str, weight_code: int, error_bound=None, bound_mode: str = "abs", mask_value=None):
    return (CD_VERSION, *identity_words(identity), weight_code, N_OPTIONS,
            *options_words(error_bound, bound_mode, mask_value))


def parse_cd(cd) -> tuple[dict, int | None, tuple[int, ...] | None]:
    """cd_values -> (codec keyword arguments, element type code, chunk shape); the last two
    are None before set_local ran."""
    from .coding import quant

    cd = [int(v) for v in cd]
    version = cd[0] if cd else None
    if version not in (1, 2) or len(cd) < 10:
        raise SaecodecError(f"unsupported saecodec cd_values (layout version {version})")
    weight_name = quant.WEIGHT_DTYPES.get(cd[9], (None,))[0]
    if weight_name is None:
        raise SaecodecError(f"unknown weight dtype code {cd[9]} in cd_values")
    kwargs = {"model": words_identity(cd[1:9]), "weight_dtype": weight_name}
    base = 10
    if version == 2:
        if len(cd) < 11 or cd[10] < N_OPTIONS or len(cd) < 11 + cd[10]:
            raise SaecodecError("saecodec cd_values: options are missing")
        opts = cd[11:11 + cd[10]]
        base = 11 + cd[10]
        kinds = {v: k for k, v in _BOUND_KINDS.items()}
        if opts[0] not in kinds or opts[3] not in (0, 1, 2):
            raise SaecodecError("saecodec cd_values: unknown bound or mask kind")
        if opts[0]:
            kwargs["error_bound"] = _words_f64(opts[1], opts[2])
            kwargs["bound_mode"] = kinds[opts[0]]
        if opts[3] == 1:
            v = (opts[4] << 32) | opts[5]
            kwargs["mask_value"] = v - (1 << 64) if v >= 1 << 63 else v
        elif opts[3] == 2:
            kwargs["mask_value"] = _words_f64(opts[4], opts[5])
    if len(cd) < base + 2 or not cd[base + 1]:
        return kwargs, None, None
    rank = cd[base + 1]
    shape = tuple(cd[base + 2:base + 2 + rank])
    if len(shape) != rank:
        raise SaecodecError("saecodec cd_values: chunk shape is truncated")
    return kwargs, cd[base], shape


_codecs: dict = {}


def _codec_for(kwargs: dict) -> "object":
    from .codec import SAECodec

    key = tuple(sorted((k, repr(v)) for k, v in kwargs.items()))
    if key not in _codecs:
        _codecs[key] = SAECodec(**kwargs)
    return _codecs[key]


def filter_call(flags: int, cd: list[int], data) -> bytes:
    """What the C plugin runs for one chunk: decode (flags has H5Z_FLAG_REVERSE) or encode."""
    kwargs, type_code, shape = parse_cd(cd)
    codec = _codec_for(kwargs)
    if flags & H5Z_FLAG_REVERSE:
        arr = codec.decode(bytes(data))
        if shape is not None:
            expected = int(np.prod(shape)) * arr.itemsize
            if arr.nbytes != expected:
                raise SaecodecError(f"decoded chunk has {arr.nbytes} bytes, the dataset's chunk {expected}")
        return np.ascontiguousarray(arr).tobytes()
    if shape is None:
        raise SaecodecError("cd_values lack the chunk shape (set_local did not run)")
    dtype = np.dtype(fmt.DTYPES.get(type_code, "V1"))
    if dtype.kind not in "fiu":
        raise SaecodecError(f"unknown element type code {type_code} in cd_values")
    arr = np.frombuffer(data, dtype=dtype)
    if arr.size != int(np.prod(shape)):
        raise SaecodecError(f"chunk of {arr.size} elements does not match the chunk shape {shape}")
    return codec.encode(arr.reshape(shape))
