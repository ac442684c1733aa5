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
CD_VERSION = 1
CD_HEADER = 12
H5Z_FLAG_REVERSE = 0x0100


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


_codecs: dict = {}


def _codec_for(cd) -> "object":
    from .codec import SAECodec
    from .coding import quant

    if len(cd) < 10 or cd[0] != CD_VERSION:
        raise SaecodecError(f"unsupported saecodec cd_values (layout version {cd[0] if cd else None})")
    identity = words_identity(cd[1:9])
    weight_name = quant.WEIGHT_DTYPES.get(int(cd[9]), (None,))[0]
    if weight_name is None:
        raise SaecodecError(f"unknown weight dtype code {cd[9]} in cd_values")
    key = (identity, weight_name)
    if key not in _codecs:
        _codecs[key] = SAECodec(identity, weight_dtype=weight_name)
    return _codecs[key]


def filter_call(flags: int, cd: list[int], data) -> bytes:
    """What the C plugin runs for one chunk: decode (flags has H5Z_FLAG_REVERSE) or encode."""
    codec = _codec_for(cd)
    if flags & H5Z_FLAG_REVERSE:
        arr = codec.decode(bytes(data))
        if len(cd) > CD_HEADER and cd[11]:
            expected = int(np.prod([int(v) for v in cd[CD_HEADER:CD_HEADER + cd[11]]])) * arr.itemsize
            if arr.nbytes != expected:
                raise SaecodecError(f"decoded chunk has {arr.nbytes} bytes, the dataset's chunk {expected}")
        return np.ascontiguousarray(arr).tobytes()
    if len(cd) < CD_HEADER or not cd[11]:
        raise SaecodecError("cd_values lack the chunk shape (set_local did not run)")
    rank = int(cd[11])
    shape = tuple(int(v) for v in cd[CD_HEADER:CD_HEADER + rank])
    dtype = np.dtype(fmt.DTYPES.get(int(cd[10]), "V1"))
    if dtype.kind not in "fiu":
        raise SaecodecError(f"unknown element type code {cd[10]} in cd_values")
    arr = np.frombuffer(data, dtype=dtype)
    if arr.size != int(np.prod(shape)):
        raise SaecodecError(f"chunk of {arr.size} elements does not match the chunk shape {shape}")
    return codec.encode(arr.reshape(shape))
