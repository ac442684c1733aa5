"""Chunk <-> payload: the pipeline shared by the numcodecs, zarr v3 and HDF5 codecs.

encode: masked pixels set aside and filled (coding.mask) -> frames (tiling) -> transform
        -> network (models.runtime) -> latent coder: section bytes and the latents the
        decoder will read (coding.latents) -> with an error bound, the residual against
        what the decoder reconstructs from them (bound); without one, the quality gate
        (gate) -> header + sections + checksum; a chunk that would grow is stored raw
        (coding.raw), as is a bounded 64-bit integer chunk that float64 cannot hold.
        The bounded modes run no network unless ``predictor="network"``: masked pixels
        found and the residual stream coded in C on the chunk as it is (the fast path).
decode: the same backwards; needs only the payload and the model.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import bound, gate, tiling
from .coding import latents, quant, raw
from .coding import mask as masks
from .coding import payload as fmt
from .errors import ModelMismatchError, PayloadError, SaecodecError
from .models import runtime
from .models.model import Model
from .options import DEFAULT_MAX_ERROR, CodecOptions

_SUPPORTED = {np.dtype(fmt.DTYPES[c]).newbyteorder("=") for c in fmt.DTYPES}


def check_input(arr) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim < 2:
        raise SaecodecError(
            f"saecodec compresses 2D frames: a chunk needs at least 2 dimensions, got shape {arr.shape}"
        )
    if arr.ndim > fmt.MAX_NDIM:
        raise SaecodecError(f"saecodec stores chunks of at most {fmt.MAX_NDIM} dimensions, got {arr.ndim}")
    if arr.dtype.newbyteorder("=") not in _SUPPORTED:
        raise SaecodecError(
            f"saecodec cannot store dtype {arr.dtype}; use float16/32/64 or (unsigned) integers"
        )
    return arr


def encode_chunk(model: Model, arr, options: CodecOptions | None = None, *, mask=None, device=None,
                 predictors=bound.PREDICTORS, **settings) -> bytes:
    """One chunk -> payload, with the codec's ``options`` or their ``settings`` as keywords.

    ``error_bound`` with ``bound_mode`` (abs, rel, pwrel, poisson: ``saecodec.bound``)
    guarantees its bound for every element; without it the payload is the pure
    autoencoder, under the quality gate ``max_error`` (default ``DEFAULT_MAX_ERROR``; None:
    off). NaN, +-inf, ``mask_values``, ``mask_below`` and ``mask`` pixels (the options'
    and this call's boolean ``mask``) come back exactly.
    ``predictors`` narrows the residual codings the encoder may pick (``bound.MODE_*``).
    """
    with runtime.reproducible():  # the same chunk gives the same bytes, whatever the thread count
        return _encode(model, arr, options, mask, device, predictors, settings)


def _encode(model, arr, options, mask, device, predictors, settings) -> bytes:
    if options is None:
        settings.setdefault("max_error", DEFAULT_MAX_ERROR)
    opts = options if options is not None else CodecOptions.create(model.freeze(), **settings)
    if opts.model != model.freeze():
        raise SaecodecError(f"the codec options name model {opts.model}, not {model.name!r} ({model.identity})")
    arr = check_input(arr)
    fortran = arr.flags.f_contiguous and not arr.flags.c_contiguous
    c = np.ascontiguousarray(arr)
    ext = fmt.EXT_BIG_ENDIAN if c.dtype.str[0] == ">" else 0
    if not c.dtype.isnative:  # everything below sees native values; decode restores the order
        c = c.astype(c.dtype.newbyteorder("="))
    tile = model.tile_for(c.shape)
    coder = latents.coder_for(model, quant.latent_code(opts.latent_dtype), level=opts.level,
                              net=lambda: runtime.HyperNet(model, device))
    head = dict(model_check=fmt.model_check(model.freeze()), dtype=c.dtype, latent_code=coder.value_code,
                shape=tuple(c.shape), tile=tile, ext=ext)
    flags = coder.kind_code | (fmt.FLAG_FORTRAN if fortran else 0)
    if not c.size:
        return _raw_payload(flags, head, c)
    if opts.error_bound is not None and not _runs_network(opts, c):
        return _encode_bounded(c, opts, mask, flags, head)
    masked = masks.find(c, opts, mask)
    if opts.error_bound is not None and _beyond_float64(c, masked):
        return _raw_payload(flags, head, c)  # float64 would round it
    filled = masks.fill(c.reshape(_plane_shape(c.shape)), masked.reshape(_plane_shape(c.shape)))
    z, side = model.transform.forward(tiling.split(filled.reshape(c.shape), tile))
    del filled  # 8 bytes per element, not needed again
    lat = runtime.encode(model, z, tile, device)
    section, seen, seen_side = coder.write(lat, side)

    body, gate_block = bytearray(), b""
    if opts.error_bound is None and opts.max_error is not None:
        head["ext"] |= fmt.EXT_GATE
        gate_block, section = _gate(model, coder, c, masked, z, lat, side, section, seen, seen_side, tile,
                                    opts.max_error, device, predictors)
        if section is None:
            flags |= fmt.FLAG_NO_LATENTS
    if masked.any():
        flags |= fmt.FLAG_MASK
        masks.write(body, c, masked)
    if opts.error_bound is not None:
        flags |= fmt.FLAG_RESIDUAL
        prediction = _reconstruct(model, seen, seen_side, c.shape, tile, device)
        if not _write_residual(body, model, c, masked, opts, prediction, seen_side, tile, len(section), predictors):
            flags |= fmt.FLAG_NO_LATENTS
    header = fmt.Header(flags, **head).pack()
    out = header + gate_block + (b"" if flags & fmt.FLAG_NO_LATENTS else section) + body
    if len(out) > len(header) + raw.OVERHEAD + c.nbytes:  # the lossless chunk is smaller
        return _raw_payload(flags, head, c)
    return fmt.seal(out)


def _runs_network(opts: CodecOptions, c: np.ndarray) -> bool:
    """The bounded modes code against the network only when asked to, where it can serve."""
    return opts.predictor == "network" and (opts.bound_mode in ("abs", "rel")
                                            or (opts.bound_mode == "pwrel" and c.dtype.kind == "f"))


def _encode_bounded(c: np.ndarray, opts: CodecOptions, mask, flags: int, head: dict) -> bytes:
    """The bounded modes without the network: no float64 copy, no boolean mask, all in C."""
    bits, count = masks.find_bits(c, opts, mask)
    mode, eb = bound.stream_mode(opts.bound_mode, opts.error_bound, c, bits)
    if mode == "abs" and c.dtype.kind == "f" and not eb > 0:
        return _raw_payload(flags, head, c)  # lossless floats: nothing to quantise
    out = fmt.Header(flags | fmt.FLAG_NO_LATENTS | fmt.FLAG_RESIDUAL | (fmt.FLAG_MASK if count else 0), **head).pack()
    start = len(out)
    if count:
        masks.write_bits(out, c, bits, count)
    bound.write_stream(out, c, mode, eb, bits)
    if len(out) - start > raw.OVERHEAD + c.nbytes:  # the lossless chunk is smaller
        return _raw_payload(flags, head, c)
    return fmt.seal(out)


def _raw_payload(flags: int, head: dict, c: np.ndarray) -> bytes:
    out = fmt.Header((flags & (fmt.FLAG_FORTRAN | 0b11)) | fmt.FLAG_RAW,
                     **{**head, "ext": head["ext"] & fmt.EXT_BIG_ENDIAN}).pack()
    raw.write(out, c)
    return fmt.seal(out)


def _beyond_float64(c: np.ndarray, masked: np.ndarray) -> bool:
    """A 64-bit integer chunk with values float64 does not hold exactly: the bounded coding
    computes in float64, so such a chunk is stored losslessly."""
    if c.dtype.kind not in "iu" or c.dtype.itemsize < 8 or not c.size:
        return False
    lim = np.array(1 << 53, c.dtype)
    return bool(((c > lim) | (c < -lim if c.dtype.kind == "i" else False))[~masked].any())


def _gate(model, coder, c, masked, z_in, lat, side, section, seen, seen_side, tile, max_error, device, predictors):
    """The quality gate's section, and the latent section to store (None: no frame needs latents)."""
    frames = tiling.split(c, tile)
    valid = gate.valid_frames(masked, c.shape, tile)
    z = runtime.decode(model, seen, tile, device)
    a = gate.assess(model, frames, valid, z_in, z, seen_side, max_error)
    keep = ~a.fallback
    kept = None  # the latent section of the frames that met the target
    if a.fallback.any():
        kept, kept_lat, _ = coder.write(lat[keep], side[keep]) if keep.any() else (b"", seen[keep], None)
        if not np.array_equal(kept_lat, seen[keep]):  # a coder whose frames depend on each other
            kept = None
    block, all_latents = gate.write(a, model, frames, valid, z, seen_side,
                                    None if kept is None else len(section) - len(kept), predictors)
    if all_latents:
        return block, section
    return block, (kept if keep.any() else None)


def _plane_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(number of 2D planes, H, W) of a chunk: the residual's unit, a frame to the user."""
    return (math.prod(shape[:-2]),) + tuple(shape[-2:])


def _reconstruct(model: Model, lat: np.ndarray, side: np.ndarray, shape, tile, device) -> tuple[np.ndarray, np.ndarray]:
    """Latents -> network decoder -> inverse transform: (chunk float64, network output z)."""
    z = runtime.decode(model, lat, tile, device)
    return tiling.join(model.transform.inverse(z, side, tile), shape, tile), z


def _write_residual(out: bytearray, model: Model, c: np.ndarray, masked: np.ndarray, opts: CodecOptions,
                    prediction, side: np.ndarray, tile, latent_bytes: int, predictors) -> bool:
    """The residual section against the decoder's reconstruction; whether it uses it."""
    planes = _plane_shape(c.shape)
    y, z = prediction
    guard = model.transform.sensitivity(z, side, bound.NET_TOLERANCE).reshape((-1,) + tile)
    guard = tiling.join(guard, c.shape, tile).reshape(planes)
    return bound.write_network(out, c.reshape(planes), masked.reshape(planes), opts.bound_mode, opts.error_bound,
                               y.reshape(planes), guard, latent_bytes, predictors)


class _Parts(NamedTuple):
    raw: np.ndarray | None = None  # the lossless chunk
    latents: tuple | None = None  # (latents, side)
    mask: tuple | None = None  # (masked positions as packed bits, their values)
    residual: dict | None = None  # bound.read_section
    gate: gate.Gate | None = None  # the quality gate (pure mode)


def _read_payload(model: Model, buf, device=None, expect: fmt.Expect | None = None) -> tuple[fmt.Header, _Parts]:
    """Header and every section, checked against the container's chunk (``expect``), the model
    and the payload's end; runs no network but a hyperprior coder's (h_s decides y's tables)."""
    reader = fmt.Reader(buf)
    h = fmt.Header.unpack(reader)
    if expect is not None:
        expect.check(h)
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
        planes, ny, nx = tiling.grid(h.shape, h.tile)
        frames = planes * ny * nx
        g = None
        if h.ext & fmt.EXT_GATE:
            if h.flags & fmt.FLAG_RESIDUAL:
                raise PayloadError("corrupted payload: a quality gate in an error-bounded payload")
            g = gate.read(reader, frames, h.tile, h.dtype)
            frames = int(g.latent_frames.sum())
            if has_latents != bool(frames):
                raise PayloadError("corrupted payload: the quality gate and the latent flag disagree")
        elif not has_latents and not h.flags & fmt.FLAG_RESIDUAL:
            raise PayloadError("corrupted payload: neither latents nor residual")
        coder = latents.coder_for(model, h.latent_code, net=lambda: runtime.HyperNet(model, device)) \
            if has_latents else None
        lat = coder.read(reader, frames, h.tile) if has_latents else None
        mask = masks.read_bits(reader, h.shape, h.dtype) if h.flags & fmt.FLAG_MASK else None
        residual = None
        if h.flags & fmt.FLAG_RESIDUAL:
            p, hh, ww = _plane_shape(h.shape)
            residual = bound.read_section(reader, p, (hh, ww), h.dtype, has_latents)
        parts = _Parts(latents=lat, mask=mask, residual=residual, gate=g)
    if reader.remaining():
        raise PayloadError(f"corrupted payload: {reader.remaining()} unexpected trailing bytes")
    return h, parts


def decode_chunk(model: Model, buf, *, device=None, expect: fmt.Expect | None = None) -> np.ndarray:
    """Payload -> chunk; ``expect``: what the container says the chunk is (checked first)."""
    h, parts = _read_payload(model, buf, device, expect)
    if parts.raw is not None:
        return _order(parts.raw, h)
    if parts.gate is not None:
        lat, side = parts.latents if parts.latents is not None else (None, None)
        z = None if lat is None else runtime.decode(model, lat, h.tile, device)
        out = tiling.join(gate.apply(parts.gate, model, z, side, h.tile, h.dtype), h.shape, h.tile)
    else:
        y = None if parts.latents is None else _reconstruct(model, *parts.latents, h.shape, h.tile, device)[0]
        if parts.residual is not None:
            planes = _plane_shape(h.shape)
            skip = parts.mask[0] if parts.mask is not None and parts.residual["version"] >= 3 else None
            out = bound.reconstruct(parts.residual, None if y is None else y.reshape(planes), planes, h.dtype,
                                    mask=skip)
            out = out.reshape(h.shape)
        else:
            out = bound.cast(y, h.dtype)
    if parts.mask is not None:
        out = np.ascontiguousarray(out)
        masks.restore(out, *parts.mask)
    return _order(out, h)


def _order(out: np.ndarray, h: fmt.Header) -> np.ndarray:
    if h.ext & fmt.EXT_BIG_ENDIAN:
        out = out.astype(out.dtype.newbyteorder(">"))
    return np.asfortranarray(out) if h.flags & fmt.FLAG_FORTRAN else out


def plane_modes(model: Model, buf) -> np.ndarray | None:
    """Per 2D plane, the residual coding the encoder chose (``bound.MODE_*``); None without a bound."""
    _, parts = _read_payload(model, buf)
    return None if parts.residual is None else bound.plane_modes(parts.residual)


def payload_stats(buf) -> dict:
    """Frames, the frames the quality gate coded in the bounded mode instead (``fallback_frames``)
    and, for sparse latents, the stored nonzeros (the L1 paper's n / nnz ratio) of a payload."""
    reader = fmt.Reader(buf)
    size = len(reader.buf)
    h = fmt.Header.unpack(reader)
    planes, ny, nx = tiling.grid(h.shape, h.tile)
    frames = coded = planes * ny * nx
    fallbacks = 0
    if h.ext & fmt.EXT_GATE:
        g = gate.read(reader, frames, h.tile, h.dtype)
        fallbacks, coded = int(g.fallback.sum()), int(g.latent_frames.sum())
    has_latents = not h.flags & (fmt.FLAG_RAW | fmt.FLAG_NO_LATENTS)
    nnz = reader.varint() - coded if has_latents and h.latent_kind == fmt.LATENT_SPARSE else None
    return {"frames": frames, "nnz": nnz, "bytes": size, "raw_chunk": bool(h.flags & fmt.FLAG_RAW),
            "latents": has_latents, "latent_frames": coded if has_latents else 0, "fallback_frames": fallbacks,
            "version": int(reader.buf[2])}


def fallback_frames(payload) -> int:
    """How many frames of a chunk the pure mode's quality gate coded in the bounded mode instead
    (0 for payloads without the gate: bounded, lossless, or written before it existed)."""
    reader = fmt.Reader(payload)
    h = fmt.Header.unpack(reader)
    if not h.ext & fmt.EXT_GATE or h.flags & fmt.FLAG_RAW:
        return 0
    return gate.fallback_count(reader)
