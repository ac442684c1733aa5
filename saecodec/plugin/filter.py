"""The Python half of the HDF5 filter plugin: what ``libh5saecodec.so`` runs for one chunk.

Called through the cffi-embedded library inside any HDF5 host (h5py, h5dump, a C
program), so it must not import h5py: in a C host that would load a second, different
libhdf5. Writers configure datasets with :func:`saecodec.hdf5.SAE`.
"""

from __future__ import annotations

import math
import os
import threading
import warnings

import numpy as np

from ..coding import payload as fmt
from ..errors import SaecodecError
from ..options import CodecOptions

DEFAULT_FILTER_ID = 32850
H5Z_FLAG_REVERSE = 0x0100
_codecs: dict = {}  # CodecOptions -> SAECodec
_parsed: dict = {}  # tuple(cd_values) -> CdValues
_codecs_lock = threading.Lock()


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
        warnings.warn(f"saecodec: ignoring SAECODEC_H5_FILTER_ID={env} (not in 256..65535); "
                      f"using {DEFAULT_FILTER_ID}", stacklevel=2)
    return DEFAULT_FILTER_ID


def _codec_for(options: CodecOptions):
    codec = _codecs.get(options)  # every chunk after a dataset's first: no import, no lock
    if codec is not None:
        return codec
    from ..codec import SAECodec  # numcodecs: on the first chunk, not when HDF5 scans plugins

    with _codecs_lock:
        if options not in _codecs:
            _codecs[options] = SAECodec.from_options(options)
        return _codecs[options]


def _parse(cd: list[int]):
    """cd_values -> options, element type, chunk shape: parsed once per distinct cd_values
    (a dataset's chunks all share them; parsing costs more than decoding a small chunk)."""
    key = tuple(cd)
    parsed = _parsed.get(key)
    if parsed is None:
        parsed = CodecOptions.from_cd_values(cd)
        with _codecs_lock:
            if len(_parsed) >= 256:
                _parsed.clear()
            _parsed[key] = parsed
    return parsed


def filter_call(flags: int, cd: list[int], data) -> bytes:
    """One chunk: decode (``flags`` has H5Z_FLAG_REVERSE) or encode."""
    options, type_code, shape, unknown = _parse(cd)
    codec = _codec_for(options)
    if shape is None:
        raise SaecodecError("cd_values lack the chunk's type and shape (set_local did not run)")
    dtype = np.dtype(fmt.DTYPES.get(type_code, "V1"))
    if dtype.kind not in "fiu":
        raise SaecodecError(f"unknown element type code {type_code} in cd_values")
    if flags & H5Z_FLAG_REVERSE:
        # HDF5 copies the whole chunk out of what a filter returns, whatever its size: the
        # payload must be this dataset's chunk (checked before decoding) and fill it exactly
        arr = codec.decode(np.frombuffer(data, np.uint8), shape=shape, dtype=dtype)
        arr = np.ascontiguousarray(arr, dtype=dtype)  # little-endian, as set_local requires
        if arr.shape != shape or arr.nbytes != math.prod(shape) * dtype.itemsize:
            raise SaecodecError(f"decoded chunk {arr.dtype} {arr.shape} is not the dataset's {dtype} {shape}")
        return memoryview(arr).cast("B")  # the caller copies it into HDF5's buffer
    if unknown:
        raise SaecodecError("the dataset's filter options were written by a newer saecodec: this one reads the "
                            "dataset but cannot write to it; upgrade saecodec")
    arr = np.frombuffer(data, dtype=dtype)
    if arr.size != math.prod(shape):
        raise SaecodecError(f"chunk of {arr.size} elements does not match the chunk shape {shape}")
    return codec.encode(arr.reshape(shape))
