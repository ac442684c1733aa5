"""Chunk <-> payload: the pipeline shared by the numcodecs, zarr v3 and HDF5 codecs.

encode: chunk -> frames (tiling) -> transform -> network (one batched pass) -> latents
        -> entropy coding -> payload.   decode runs the same steps backwards and needs
only the payload and the model.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from . import tiling
from .coding import payload as fmt
from .coding import dense, quant, sparse
from .errors import ModelMismatchError, PayloadError, SaecodecError
from .models.modelfile import Model

# Frames per forward pass: bounds memory for huge chunks while keeping batches large.
BATCH = 8192
_SUPPORTED = {np.dtype(fmt.DTYPES[c]).newbyteorder("=") for c in fmt.DTYPES}
_modules: dict[tuple[str, str], torch.nn.Module] = {}
_modules_lock = threading.Lock()


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _module_on(model: Model, device: torch.device) -> torch.nn.Module:
    if device.type == "cpu":
        return model.module
    key = (model.identity or str(id(model)), str(device))
    with _modules_lock:
        if key not in _modules:
            import copy

            _modules[key] = copy.deepcopy(model.module).to(device).eval()
        return _modules[key]


def _batched(fn, x: np.ndarray, device: torch.device) -> np.ndarray:
    outs = []
    with torch.inference_mode():
        for i in range(0, max(len(x), 1), BATCH):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + BATCH])).to(device)
            outs.append(fn(xb).float().cpu().numpy())
    return np.concatenate(outs) if outs else x


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
    if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.isfinite(arr).sum())
        raise SaecodecError(
            f"chunk has {bad} NaN or infinite values, which this codec version cannot store; "
            "replace them (e.g. with np.nan_to_num) before compressing"
        )
    return arr


def encode_chunk(model: Model, arr, *, weight_dtype: str = "float16", device=None) -> bytes:
    arr = check_input(arr)
    if model.latent_kind not in fmt.LATENT_KINDS:
        raise SaecodecError(f"latent kind {model.latent_kind!r} has no coder in this saecodec version")
    dev = resolve_device(device)
    code = quant.weight_code(weight_dtype)
    tile = tuple(model.frame_shape)
    fortran = arr.flags.f_contiguous and not arr.flags.c_contiguous
    frames = tiling.split(np.ascontiguousarray(arr), tile)
    b = frames.shape[0]
    z, side = model.transform.forward(frames)
    latents = _batched(_module_on(model, dev).encode, z, dev) if b else np.zeros((0, model.module.latent_size), np.float32)
    kind = fmt.LATENT_KINDS[model.latent_kind]
    header = fmt.Header(
        flags=kind | (fmt.FLAG_FORTRAN if fortran else 0),
        model_check=fmt.model_check(model.ensure_identity()),
        dtype=arr.dtype,
        latent_code=code if kind == fmt.LATENT_SPARSE else 0,
        shape=tuple(arr.shape),
        tile=tile,
    )
    out = header.pack()
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


def read_header(buf) -> fmt.Header:
    return fmt.Header.unpack(fmt.Reader(buf))


def payload_stats(buf) -> dict:
    """Frames and stored latent nonzeros of a sparse payload, for the paper's n / nnz ratio."""
    reader = fmt.Reader(buf)
    h = fmt.Header.unpack(reader)
    planes, ny, nx = tiling.grid(h.shape, h.tile)
    frames = planes * ny * nx
    nnz = reader.varint() - frames if h.latent_kind == fmt.LATENT_SPARSE else None  # dense: k per frame
    return {"frames": frames, "nnz": nnz, "bytes": len(reader.buf)}


def decode_chunk(model: Model, buf, *, device=None) -> np.ndarray:
    reader = fmt.Reader(buf)
    h = fmt.Header.unpack(reader)
    if h.model_check != fmt.model_check(model.ensure_identity()):
        raise ModelMismatchError(
            f"payload was written with a model whose identity starts with {h.model_check.hex()}, "
            f"but the codec's model {model.name!r} is {model.identity}"
        )
    if h.tile != tuple(model.frame_shape):
        raise PayloadError(f"corrupted payload: tile {h.tile} differs from the model's frame {model.frame_shape}")
    if h.latent_kind != fmt.LATENT_KINDS.get(model.latent_kind):
        raise PayloadError(f"corrupted payload: latent kind {h.latent_kind} is not the model's {model.latent_kind!r}")
    planes, ny, nx = tiling.grid(h.shape, h.tile)
    b = planes * ny * nx
    lsize = model.module.latent_size
    sparse_kind = h.latent_kind == fmt.LATENT_SPARSE
    if sparse_kind and h.latent_code not in quant.WEIGHT_DTYPES:
        raise PayloadError(f"corrupted payload: unknown weight dtype code {h.latent_code}")
    n_symbols = reader.varint(b * (lsize + 1)) if sparse_kind else 0
    words = reader.array("<u4", reader.varint(reader.remaining() // 4))
    side = reader.array("<f4", 2 * b).reshape(b, 2)
    if not np.isfinite(side).all():
        raise PayloadError("corrupted payload: non-finite frame normalisation")
    if not sparse_kind:
        _check_end(reader)
        return _finish(model, dense.decode(words, b, lsize, model.coding), side, h, device)
    nnz = n_symbols - b
    if nnz < 0:
        raise PayloadError("corrupted payload: fewer latent symbols than frames")
    values = quant.from_bytes(reader.take(nnz * quant.itemsize(h.latent_code)), nnz, h.latent_code)
    _check_end(reader)
    if not np.isfinite(values).all():
        raise PayloadError("corrupted payload: non-finite latent values")
    gm = sparse.gap_model(lsize, model.coding["gap_sigma"], model.coding["gap_floor"])
    symbols = sparse.decode_symbols(words, n_symbols, gm)
    rows, cols = sparse.symbols_to_positions(symbols, b, lsize)
    latents = np.zeros((b, lsize), dtype=np.float32)
    latents[rows, cols] = values
    return _finish(model, latents, side, h, device)


def _check_end(reader: fmt.Reader) -> None:
    if reader.remaining():
        raise PayloadError(f"corrupted payload: {reader.remaining()} unexpected trailing bytes")


def _finish(model: Model, latents: np.ndarray, side: np.ndarray, h: fmt.Header, device) -> np.ndarray:
    """Latents -> network decoder -> inverse transform -> chunk in its dtype and order."""
    b = len(latents)
    dev = resolve_device(device)
    module = _module_on(model, dev)
    z = _batched(module.decode, latents, dev) if b else np.zeros((0, int(np.prod(h.tile))), np.float32)
    frames = model.transform.inverse(z, side, h.tile)
    out = _to_dtype(tiling.join(frames, h.shape, h.tile), h.dtype)
    if h.flags & fmt.FLAG_FORTRAN:
        out = np.asfortranarray(out)
    return out


def _to_dtype(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    dtype = np.dtype(dtype).newbyteorder("=")
    if dtype.kind == "f":
        lim = np.finfo(dtype).max
        return np.clip(np.nan_to_num(x, nan=0.0), -lim, lim).astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.rint(np.nan_to_num(x, nan=0.0)), info.min, info.max).astype(dtype)
