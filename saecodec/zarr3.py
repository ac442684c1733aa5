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
from .coding.payload import MAX_NDIM
from .errors import SaecodecError
from .options import CODEC_ID, CodecOptions


@dataclass(frozen=True)
class SAEZarrCodec(ArrayBytesCodec):
    """The zarr v3 codec of :class:`saecodec.SAECodec`: ``SAEZarrCodec(model=None, *, device=None,
    **options)`` with the same options (``help()`` lists them; ``saecodec.options.signature``).
    Equal when the options are; the device is a run-time choice."""

    is_fixed_size = False

    options: CodecOptions

    def __init__(self, model=None, *, device=None, **options):
        self._wrap(SAECodec(model, device=device, **options))

    __init__.__signature__ = SAECodec.__init__.__signature__

    def _wrap(self, inner: SAECodec) -> None:
        object.__setattr__(self, "options", inner.options)
        object.__setattr__(self, "_inner", inner)

    def __getattr__(self, name):  # codec.model, codec.error_bound, ...: the options' fields
        inner = self.__dict__.get("_inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    @classmethod
    def from_dict(cls, data):
        _, config = parse_named_configuration(data, CODEC_ID)
        codec = cls.__new__(cls)
        codec._wrap(SAECodec.from_config(config))
        return codec

    def to_dict(self):
        config = self._inner.get_config()  # a stored config a reader could not use is kept as it was
        return {"name": CODEC_ID, "configuration": {k: v for k, v in config.items() if k != "id"}}

    def validate(self, *, shape, dtype, chunk_grid):
        if len(shape) < 2:
            raise SaecodecError(
                f"saecodec compresses 2D frames: the array needs at least 2 dimensions, got shape {shape}"
            )
        if len(shape) > MAX_NDIM:
            raise SaecodecError(f"saecodec stores chunks of at most {MAX_NDIM} dimensions, the array has {len(shape)}")
        native = np.dtype(dtype.to_native_dtype())
        if native.kind not in "fiu" or native.itemsize > 8:
            raise SaecodecError(f"saecodec cannot store dtype {native}")

    async def _encode_single(self, chunk_array, chunk_spec):
        arr = chunk_array.as_numpy_array()
        data = await asyncio.to_thread(self._inner.encode, arr)
        return chunk_spec.prototype.buffer.from_bytes(data)

    async def _decode_single(self, chunk_bytes, chunk_spec):
        raw = chunk_bytes.as_numpy_array()
        native = chunk_spec.dtype.to_native_dtype()
        # zarr says which chunk it wants: a payload of another shape or type is refused unread
        arr = await asyncio.to_thread(self._inner.decode, raw, shape=tuple(chunk_spec.shape), dtype=native)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(arr.astype(native, copy=False))

    def compute_encoded_size(self, input_byte_length, chunk_spec):
        raise NotImplementedError("saecodec payloads have a data-dependent size")
