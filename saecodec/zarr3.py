"""The zarr v3 array -> bytes codec, registered as ``"saecodec"`` under ``zarr.codecs``.

Pass it as ``serializer=``: it replaces zarr's ``bytes`` codec, since it needs the
chunk's shape and dtype, not a flat byte string.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration

from .codec import SAECodec
from .errors import SaecodecError

NAME = "saecodec"


@dataclass(frozen=True)
class SAEZarrCodec(ArrayBytesCodec):
    """``SAEZarrCodec(model=..., weight_dtype="float16", model_name=None, device=None)``."""

    is_fixed_size = False

    model: str
    weight_dtype: str
    model_name: str | None

    def __init__(self, *, model, weight_dtype: str = "float16", model_name: str | None = None, device=None):
        inner = SAECodec(model, weight_dtype=weight_dtype, device=device, model_name=model_name)
        object.__setattr__(self, "model", inner.model)
        object.__setattr__(self, "weight_dtype", inner.weight_dtype)
        object.__setattr__(self, "model_name", inner.model_name)
        object.__setattr__(self, "_inner", inner)

    @classmethod
    def from_dict(cls, data):
        _, config = parse_named_configuration(data, NAME)
        return cls(**config)

    def to_dict(self):
        config = {"model": self.model, "weight_dtype": self.weight_dtype}
        if self.model_name:
            config["model_name"] = self.model_name
        return {"name": NAME, "configuration": config}

    def validate(self, *, shape, dtype, chunk_grid):
        if len(shape) < 2:
            raise SaecodecError(
                f"saecodec compresses 2D frames: the array needs at least 2 dimensions, got shape {shape}"
            )
        native = np.dtype(dtype.to_native_dtype())
        if native.kind not in "fiu" or native.itemsize > 8:
            raise SaecodecError(f"saecodec cannot store dtype {native}")

    async def _encode_single(self, chunk_array, chunk_spec):
        arr = chunk_array.as_numpy_array()
        data = await asyncio.to_thread(self._inner.encode, arr)
        return chunk_spec.prototype.buffer.from_bytes(data)

    async def _decode_single(self, chunk_bytes, chunk_spec):
        raw = chunk_bytes.as_numpy_array()
        arr = await asyncio.to_thread(self._inner.decode, raw)
        arr = arr.astype(chunk_spec.dtype.to_native_dtype(), copy=False).reshape(chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(arr)

    def compute_encoded_size(self, input_byte_length, chunk_spec):
        raise NotImplementedError("saecodec payloads have a data-dependent size")
