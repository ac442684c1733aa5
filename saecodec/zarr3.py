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
    """``SAEZarrCodec(model=..., weight_dtype="float16", model_name=None, device=None,
    error_bound=None, bound_mode="abs", mask_value=None)``: see :class:`saecodec.SAECodec`."""

    is_fixed_size = False

    model: str
    weight_dtype: str
    model_name: str | None
    error_bound: float | None
    bound_mode: str
    mask_value: float | int | None

    def __init__(self, *, model, weight_dtype: str = "float16", model_name: str | None = None, device=None,
                 error_bound: float | None = None, bound_mode: str = "abs", mask_value=None):
        inner = SAECodec(model, weight_dtype=weight_dtype, device=device, model_name=model_name,
                         error_bound=error_bound, bound_mode=bound_mode, mask_value=mask_value)
        for name in ("model", "weight_dtype", "model_name", "error_bound", "bound_mode", "mask_value"):
            object.__setattr__(self, name, getattr(inner, name))
        object.__setattr__(self, "_inner", inner)

    @classmethod
    def from_dict(cls, data):
        _, config = parse_named_configuration(data, NAME)
        return cls(**config)

    def to_dict(self):
        config = self._inner.get_config()
        config.pop("id")
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
