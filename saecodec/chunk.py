"""Chunk <-> payload: the pipeline shared by the numcodecs, zarr v3 and HDF5 codecs.

encode: masked pixels set aside and filled (coding.mask) -> frames (tiling) -> transform
        -> network (models.runtime) -> latent coder: section bytes and the latents the
        decoder will read (coding.latents) -> with an error bound, the residual against
        what the decoder reconstructs from them (bound) -> header + sections; a chunk that
        would grow is stored raw (coding.raw).
decode: the same backwards; needs only the payload and the model.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import bound, tiling
from .coding import latents, quant, raw
from .coding import mask as masks
from .coding import payload as fmt
from .errors import ModelMismatchError, PayloadError, SaecodecError
from .models import runtime
from .models.model import Model
from .options import CodecOptions

_SUPPORTED = {np.dtype(fmt.DTYPES[c]).newbyteorder("=") for c in fmt.DTYPES}


def check_input(arr) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim < 2:
        raise SaecodecError(
            f"saecodec compresses 2D frames: a chunk needs at least 2 dimensions, got shape {arr.shape}"
        )
    if arr.dtype.newbyteorder("=") not in _SUPPORTED:
        raise SaecodecError(
            f"saecodec cannot store dtype {arr.dtype}; use float16/32/64 or (unsigned) integers"
        )
    return arr


def encode_chunk(model: Model, arr, options: CodecOptions | None = None, *, mask=None, device=None,
                 predictors=bound.PREDICTORS, **settings) -> bytes:
    """One chunk -> payload, with the codec's ``options`` or their ``settings`` as keywords.

    ``error_bound`` (abs, or rel to the chunk's value range) guarantees
    |decoded - arr| <= bound for every element; without it the payload is the pure
    autoencoder. NaN, +-inf, ``mask_value`` and ``mask`` pixels come back exactly.
    ``predictors`` narrows the residual codings the encoder may pick (``bound.MODE_*``).
    """
    opts = options if options is not None else CodecOptions.create(model.freeze(), **settings)
    if opts.model != model.freeze():
        raise SaecodecError(f"the codec options name model {opts.model}, not {model.name!r} ({model.identity})")
    arr = check_input(arr)
    fortran = arr.flags.f_contiguous and not arr.flags.c_contiguous
    c = np.ascontiguousarray(arr)
    tile = model.tile_for(c.shape)
    masked = masks.find(c, opts, mask)
    filled = masks.fill(c.reshape(_plane_shape(c.shape)), masked.reshape(_plane_shape(c.shape)))
    coder = latents.coder_for(model, quant.latent_code(opts.latent_dtype))
    z, side = model.transform.forward(tiling.split(filled.reshape(c.shape), tile))
    section, seen, seen_side = coder.write(runtime.encode(model, z, tile, device), side)

    flags = coder.kind_code | (fmt.FLAG_FORTRAN if fortran else 0)
    body = bytearray()
    if masked.any():
        flags |= fmt.FLAG_MASK
        masks.write(body, c, masked)
    if opts.error_bound is not None:
        flags |= fmt.FLAG_RESIDUAL
        prediction = _reconstruct(model, seen, seen_side, c.shape, tile, device)
        if not _write_residual(body, model, c, masked, opts, prediction, seen_side, tile, len(section), predictors):
            flags |= fmt.FLAG_NO_LATENTS
    head = dict(model_check=fmt.model_check(model.freeze()), dtype=c.dtype, latent_code=coder.value_code,
                shape=tuple(c.shape), tile=tile)
    header = fmt.Header(flags, **head).pack()
    out = header + (b"" if flags & fmt.FLAG_NO_LATENTS else section) + body
    if len(out) > len(header) + raw.OVERHEAD + c.nbytes:  # the lossless chunk is smaller
        out = fmt.Header((flags & (fmt.FLAG_FORTRAN | 0b11)) | fmt.FLAG_RAW, **head).pack()
        raw.write(out, c)
    return bytes(out)


def _plane_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(number of 2D planes, H, W) of a chunk: the residual's unit, a frame to the user."""
    return (int(np.prod(shape[:-2], dtype=np.int64)),) + tuple(shape[-2:])


def _reconstruct(model: Model, lat: np.ndarray, side: np.ndarray, shape, tile, device) -> tuple[np.ndarray, np.ndarray]:
    """Latents -> network decoder -> inverse transform: (chunk float64, network output z)."""
    z = runtime.decode(model, lat, tile, device)
    return tiling.join(model.transform.inverse(z, side, tile), shape, tile), z


def _write_residual(out: bytearray, model: Model, c: np.ndarray, masked: np.ndarray, opts: CodecOptions,
                    prediction, side: np.ndarray, tile, latent_bytes: int, predictors) -> bool:
    """The residual section against the decoder's reconstruction; whether it uses it."""
    planes = _plane_shape(c.shape)
    x = c.reshape(planes).astype(np.float64)
    valid = ~masked.reshape(planes)
    eb = bound.absolute_bound(opts.error_bound, opts.bound_mode, x, valid)
    y, z = prediction
    guard = model.transform.sensitivity(z, side, bound.NET_TOLERANCE).reshape((-1,) + tile)
    guard = tiling.join(guard, c.shape, tile).reshape(planes)
    return bound.write_section(out, np.where(valid, x, 0.0), valid, c.dtype, eb, y.reshape(planes), guard,
                               latent_bytes, predictors)


class _Parts(NamedTuple):
    raw: np.ndarray | None = None  # the lossless chunk
    latents: tuple | None = None  # (latents, side)
    mask: tuple | None = None  # (masked positions, their values)
    residual: dict | None = None  # bound.read_section


def _read_payload(model: Model, buf) -> tuple[fmt.Header, _Parts]:
    """Header and every section, checked against the model and the payload's end; runs no network."""
    reader = fmt.Reader(buf)
    h = fmt.Header.unpack(reader)
    if h.model_check != fmt.model_check(model.freeze()):
        raise ModelMismatchError(
            f"payload was written with a model whose identity starts with {h.model_check.hex()}, "
            f"but the codec's model {model.name!r} is {model.identity}"
        )
    if h.flags & fmt.FLAG_RAW:
        parts = _Parts(raw=raw.read(reader, h.shape, h.dtype))
    else:
        if h.tile != model.tile_for(h.shape):
            raise PayloadError(f"corrupted payload: tile {h.tile} differs from the model's {model.tile_for(h.shape)}")
        kind = latents.CODERS.get(model.latent_kind)
        if kind is None or h.latent_kind != kind.kind_code:
            raise PayloadError(f"corrupted payload: latent kind {h.latent_kind} is not the model's {model.latent_kind!r}")
        has_latents = not h.flags & fmt.FLAG_NO_LATENTS
        if not has_latents and not h.flags & fmt.FLAG_RESIDUAL:
            raise PayloadError("corrupted payload: neither latents nor residual")
        planes, ny, nx = tiling.grid(h.shape, h.tile)
        lat = latents.coder_for(model, h.latent_code).read(reader, planes * ny * nx, h.tile) if has_latents else None
        mask = masks.read(reader, h.shape, h.dtype) if h.flags & fmt.FLAG_MASK else None
        residual = None
        if h.flags & fmt.FLAG_RESIDUAL:
            p, hh, ww = _plane_shape(h.shape)
            residual = bound.read_section(reader, p, (hh, ww), h.dtype, has_latents)
        parts = _Parts(latents=lat, mask=mask, residual=residual)
    if reader.remaining():
        raise PayloadError(f"corrupted payload: {reader.remaining()} unexpected trailing bytes")
    return h, parts


def decode_chunk(model: Model, buf, *, device=None) -> np.ndarray:
    h, parts = _read_payload(model, buf)
    if parts.raw is not None:
        return _order(parts.raw, h)
    y = None if parts.latents is None else _reconstruct(model, *parts.latents, h.shape, h.tile, device)[0]
    if parts.residual is not None:
        planes = _plane_shape(h.shape)
        out = bound.reconstruct(parts.residual, None if y is None else y.reshape(planes), planes, h.dtype)
        out = out.reshape(h.shape)
    else:
        out = bound.cast(y, h.dtype)
    if parts.mask is not None:
        masked, values = parts.mask
        out[masked] = values
    return _order(out, h)


def _order(out: np.ndarray, h: fmt.Header) -> np.ndarray:
    return np.asfortranarray(out) if h.flags & fmt.FLAG_FORTRAN else out


def plane_modes(model: Model, buf) -> np.ndarray | None:
    """Per 2D plane, the residual coding the encoder chose (``bound.MODE_*``); None without a bound."""
    _, parts = _read_payload(model, buf)
    return None if parts.residual is None else parts.residual["modes"]


def payload_stats(buf) -> dict:
    """Frames and, for sparse latents, the stored nonzeros (the L1 paper's n / nnz ratio) of a payload."""
    reader = fmt.Reader(buf)
    h = fmt.Header.unpack(reader)
    planes, ny, nx = tiling.grid(h.shape, h.tile)
    frames = planes * ny * nx
    has_latents = not h.flags & (fmt.FLAG_RAW | fmt.FLAG_NO_LATENTS)
    nnz = reader.varint() - frames if has_latents and h.latent_kind == fmt.LATENT_SPARSE else None
    return {"frames": frames, "nnz": nnz, "bytes": len(reader.buf), "raw_chunk": bool(h.flags & fmt.FLAG_RAW),
            "latents": has_latents}
