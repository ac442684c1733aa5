"""Chunk <-> payload: the pipeline shared by the numcodecs, zarr v3 and HDF5 codecs.

encode: chunk -> masked pixels set aside -> frames (tiling) -> transform -> network (one
        batched pass) -> latents -> entropy coding -> payload; with an error bound, the
        residual against the decoder's own reconstruction follows (:mod:`saecodec.bound`).
decode runs the same steps backwards and needs only the payload and the model.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from . import bound, tiling
from .coding import payload as fmt
from .coding import dense, quant, sparse
from .coding import mask as masks
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


def special_pixels(arr: np.ndarray, mask=None, mask_value=None) -> np.ndarray:
    """Pixels stored exactly and kept from the network: non-finite, ``== mask_value``, or in ``mask``."""
    special = ~np.isfinite(arr) if arr.dtype.kind == "f" else np.zeros(arr.shape, bool)
    if mask_value is not None and not (isinstance(mask_value, float) and np.isnan(mask_value)):  # NaN: already
        special |= arr == mask_value
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype != bool:
            raise SaecodecError(f"mask must be a boolean array, got dtype {m.dtype}")
        try:
            special |= np.broadcast_to(m, arr.shape)
        except ValueError:
            raise SaecodecError(f"mask of shape {m.shape} does not broadcast to the chunk's {arr.shape}") from None
    return special


def _fill(planes: np.ndarray, special: np.ndarray) -> np.ndarray:
    """Masked pixels -> their plane's median valid value, so the network never sees them."""
    out = planes.astype(np.float64)
    if special.any():
        with warnings.catch_warnings():  # an all-masked plane: "All-NaN slice", filled with 0 below
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(np.where(special, np.nan, out).reshape(len(out), -1), axis=1)
        med = np.where(np.isfinite(med), med, 0.0)
        out = np.where(special, med[:, None, None], out)
    return out


def encode_chunk(model: Model, arr, options: CodecOptions | None = None, *, mask=None, device=None,
                 predictors=bound.PREDICTORS, **settings) -> bytes:
    """One chunk -> payload, with the codec's ``options`` or their ``settings`` as keywords.

    ``error_bound`` (abs, or rel to the chunk's value range) guarantees
    |decoded - arr| <= bound for every element; without it the payload is the pure
    autoencoder. NaN, +-inf, ``mask_value`` and ``mask`` pixels come back exactly.
    ``predictors`` narrows the residual codings the encoder may pick (``bound.MODE_*``).
    """
    opts = options if options is not None else CodecOptions.create(model.freeze(), **settings)
    arr = check_input(arr)
    eb, bound_mode = opts.error_bound, opts.bound_mode
    if model.latent_kind not in fmt.LATENT_KINDS:
        raise SaecodecError(f"latent kind {model.latent_kind!r} has no coder in this saecodec version")
    code = quant.latent_code(opts.latent_dtype)
    fortran = arr.flags.f_contiguous and not arr.flags.c_contiguous and arr.ndim > 1
    c = np.ascontiguousarray(arr)
    tile = model.tile_for(c.shape)
    special = special_pixels(c, mask, opts.mask_value)
    plane_shape = _plane_shape(c.shape)
    planes = _fill(c.reshape(plane_shape), special.reshape(plane_shape))
    kind = fmt.LATENT_KINDS[model.latent_kind]
    header = fmt.Header(
        flags=kind | (fmt.FLAG_FORTRAN if fortran else 0),
        model_check=fmt.model_check(model.freeze()),
        dtype=c.dtype,
        latent_code=code if kind == fmt.LATENT_SPARSE else 0,
        shape=tuple(c.shape),
        tile=tile,
    )
    latent_section = _encode_latents(model, planes.reshape(c.shape), tile, kind, code, device)
    flags = header.flags
    sections = bytearray()
    if special.any():
        flags |= fmt.FLAG_MASK
        masks.write(sections, c, special)
    if eb is not None:
        flags |= fmt.FLAG_RESIDUAL
        x = c.reshape(plane_shape).astype(np.float64)
        valid = ~special.reshape(plane_shape)
        eb_abs = bound.absolute_bound(eb, bound_mode, x, valid)
        pred, sens = _prediction(model, latent_section, header, device)
        pred, sens = pred.reshape(plane_shape), sens.reshape(plane_shape)
        x = np.where(valid, x, 0.0)
        if not bound.write_section(sections, x, valid, c.dtype, eb_abs, pred, sens, len(latent_section), predictors):
            flags |= fmt.FLAG_NO_LATENTS
    head = dataclasses.replace(header, flags=flags).pack()
    out = head + (latent_section if not flags & fmt.FLAG_NO_LATENTS else b"") + sections
    if len(out) > len(head) + 1 + 5 + c.nbytes:  # a raw copy (method byte, block length) is smaller
        return _raw_payload(header, c)
    return bytes(out)


def _plane_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(number of 2D planes, H, W) of a chunk: the residual's unit, a frame to the user."""
    return (int(np.prod(shape[:-2], dtype=np.int64)),) + tuple(shape[-2:])


def _raw_payload(header: fmt.Header, c: np.ndarray) -> bytes:
    """The lossless fallback: the chunk's elements, deflated when that is smaller."""
    flags = (header.flags & fmt.FLAG_FORTRAN) | header.latent_kind | fmt.FLAG_RAW
    out = dataclasses.replace(header, flags=flags).pack()
    data = c.astype(c.dtype.newbyteorder("<"), copy=False).tobytes()
    packed = fmt.deflate(data)
    if len(packed) < len(data):
        out.append(1)
        fmt.put_block(out, packed)
    else:
        out.append(0)
        fmt.put_block(out, data)
    return bytes(out)


def _encode_latents(model: Model, filled: np.ndarray, tile, kind: int, code: int, dev) -> bytes:
    """The latent section: coded latents and per-frame normalisation (format v1's body)."""
    frames = tiling.split(filled, tile)
    b = frames.shape[0]
    z, side = model.transform.forward(frames)
    latents = runtime.encode(model, z, tile, dev)
    out = bytearray()
    if kind == fmt.LATENT_SPARSE:
        latents = quant.quantize(np.maximum(latents, 0.0), code)
        symbols, values = sparse.latents_to_symbols(latents)
        gm = sparse.gap_model(model.module.latent_size, model.coding["gap_sigma"], model.coding["gap_floor"])
        words = sparse.encode_symbols(symbols, gm)
        fmt.put_varint(out, len(symbols))
        tail = quant.to_bytes(values, code)
    else:
        ints, _ = dense.quantize(latents.astype(np.float64), model.coding)
        words = dense.encode(ints, model.coding)
        tail = b""
    fmt.put_varint(out, len(words))
    out += words.astype("<u4").tobytes()
    out += fmt.pack_f32(side)
    out += tail
    return bytes(out)


def _prediction(model: Model, latent_section: bytes, h: fmt.Header, dev):
    """What the decoder will reconstruct, read back from the coded latents, and its guard."""
    latents, side = _read_latents(fmt.Reader(latent_section), model, h)
    y, z = _network(model, latents, side, h, dev)
    sens = tiling.join(model.transform.sensitivity(z, side, bound.NET_TOLERANCE).reshape((-1,) + h.tile),
                       h.shape, h.tile)
    return y, sens


def read_header(buf) -> fmt.Header:
    return fmt.Header.unpack(fmt.Reader(buf))


def payload_stats(buf) -> dict:
    """Frames and stored latent nonzeros of a sparse payload, for the paper's n / nnz ratio."""
    reader = fmt.Reader(buf)
    h = fmt.Header.unpack(reader)
    planes, ny, nx = tiling.grid(h.shape, h.tile)
    frames = planes * ny * nx
    has_latents = not h.flags & (fmt.FLAG_RAW | fmt.FLAG_NO_LATENTS)
    nnz = reader.varint() - frames if has_latents and h.latent_kind == fmt.LATENT_SPARSE else None
    return {"frames": frames, "nnz": nnz, "bytes": len(reader.buf), "raw_chunk": bool(h.flags & fmt.FLAG_RAW),
            "latents": has_latents}


def plane_modes(model: Model, buf) -> np.ndarray | None:
    """Per 2D plane, the residual coding the encoder chose (``bound.MODE_*``); None without a bound."""
    h, parts = _read_payload(model, buf)
    return None if parts.get("residual") is None else parts["residual"]["modes"]


def _read_payload(model: Model, buf) -> tuple[fmt.Header, dict]:
    """Header and every section, checked against the model and the payload's end; runs no network.

    parts: "raw" (the lossless chunk) or "latents" ((latents, side) or None), "mask"
    ((positions, values) or None), "residual" (``bound.read_section`` or None).
    """
    reader = fmt.Reader(buf)
    h = fmt.Header.unpack(reader)
    if h.model_check != fmt.model_check(model.freeze()):
        raise ModelMismatchError(
            f"payload was written with a model whose identity starts with {h.model_check.hex()}, "
            f"but the codec's model {model.name!r} is {model.identity}"
        )
    if h.flags & fmt.FLAG_RAW:
        parts = {"raw": _read_raw(reader, h)}
        _check_end(reader)
        return h, parts
    if h.tile != model.tile_for(h.shape):
        raise PayloadError(f"corrupted payload: tile {h.tile} differs from the model's frame {model.tile_for(h.shape)}")
    if h.latent_kind != fmt.LATENT_KINDS.get(model.latent_kind):
        raise PayloadError(f"corrupted payload: latent kind {h.latent_kind} is not the model's {model.latent_kind!r}")
    has_latents = not h.flags & fmt.FLAG_NO_LATENTS
    if not has_latents and not h.flags & fmt.FLAG_RESIDUAL:
        raise PayloadError("corrupted payload: neither latents nor residual")
    parts = {"latents": _read_latents(reader, model, h) if has_latents else None, "mask": None, "residual": None}
    if h.flags & fmt.FLAG_MASK:
        parts["mask"] = masks.read(reader, h.shape, h.dtype)
    if h.flags & fmt.FLAG_RESIDUAL:
        p, hh, ww = _plane_shape(h.shape)
        parts["residual"] = bound.read_section(reader, p, (hh, ww), h.dtype, has_latents)
    _check_end(reader)
    return h, parts


def _check_end(reader: fmt.Reader) -> None:
    if reader.remaining():
        raise PayloadError(f"corrupted payload: {reader.remaining()} unexpected trailing bytes")


def decode_chunk(model: Model, buf, *, device=None) -> np.ndarray:
    h, parts = _read_payload(model, buf)
    if "raw" in parts:
        return _order(parts["raw"], h)
    latents, sec = parts["latents"], parts["residual"]
    y = _network(model, *latents, h, device)[0] if latents is not None else None
    if sec is not None:
        plane_shape = _plane_shape(h.shape)
        out = bound.reconstruct(sec, None if y is None else y.reshape(plane_shape), plane_shape, h.dtype)
        out = out.reshape(h.shape)
    else:
        out = bound.cast(y, h.dtype)
    if parts["mask"] is not None:
        special, values = parts["mask"]
        out[special] = values
    return _order(out, h)


def _order(out: np.ndarray, h: fmt.Header) -> np.ndarray:
    return np.asfortranarray(out) if h.flags & fmt.FLAG_FORTRAN else out


def _read_raw(reader: fmt.Reader, h: fmt.Header) -> np.ndarray:
    le = h.dtype.newbyteorder("<")
    n = int(np.prod(h.shape, dtype=np.int64)) * le.itemsize
    method = reader.u8()
    if method == 1:
        data = fmt.inflate(reader, n, "raw chunk")
    elif method == 0:
        data = reader.take(reader.varint(n))
        if len(data) != n:
            raise PayloadError("corrupted payload: raw chunk has the wrong size")
    else:
        raise PayloadError(f"corrupted payload: unknown raw chunk method {method}")
    return np.frombuffer(data, le).astype(le.newbyteorder("="), copy=True).reshape(h.shape)


def _read_latents(reader: fmt.Reader, model: Model, h: fmt.Header) -> tuple[np.ndarray, np.ndarray]:
    """The latent section -> (latents (B, l) float32, per-frame normalisation (B, 2))."""
    planes, ny, nx = tiling.grid(h.shape, h.tile)
    b = planes * ny * nx
    lsize = model.module.latent_size
    sparse_kind = h.latent_kind == fmt.LATENT_SPARSE
    if sparse_kind and h.latent_code not in quant.LATENT_DTYPES:
        raise PayloadError(f"corrupted payload: unknown weight dtype code {h.latent_code}")
    n_symbols = reader.varint(b * (lsize + 1)) if sparse_kind else 0
    words = reader.array("<u4", reader.varint(reader.remaining() // 4))
    side = reader.array("<f4", 2 * b).reshape(b, 2)
    if not np.isfinite(side).all():
        raise PayloadError("corrupted payload: non-finite frame normalisation")
    if not sparse_kind:
        return dense.decode(words, b, lsize, model.coding), side
    nnz = n_symbols - b
    if nnz < 0:
        raise PayloadError("corrupted payload: fewer latent symbols than frames")
    values = quant.from_bytes(reader.take(nnz * quant.itemsize(h.latent_code)), nnz, h.latent_code)
    if not np.isfinite(values).all():
        raise PayloadError("corrupted payload: non-finite latent values")
    gm = sparse.gap_model(lsize, model.coding["gap_sigma"], model.coding["gap_floor"])
    symbols = sparse.decode_symbols(words, n_symbols, gm)
    rows, cols = sparse.symbols_to_positions(symbols, b, lsize)
    latents = np.zeros((b, lsize), dtype=np.float32)
    latents[rows, cols] = values
    return latents, side


def _network(model: Model, latents: np.ndarray, side: np.ndarray, h: fmt.Header, device) -> tuple[np.ndarray, np.ndarray]:
    """Latents -> network decoder -> inverse transform: (chunk float64, network output z)."""
    z = runtime.decode(model, latents, h.tile, device)
    frames = model.transform.inverse(z, side, h.tile)
    return tiling.join(frames, h.shape, h.tile), z
