"""Arrays read chunk by chunk: HDF5/NeXus datasets, Zarr arrays, stacks of detector images.

A source is a small picklable reference (path, name, shape, dtype) whose ``read(region)``
opens the file on first use in whichever process runs it (a thread here or a
dask.distributed worker on a shared file system) and keeps it open for the next chunk;
codecs are kept the same way. The chunk grid (offsets, regions, edge padding) is HDF5's
and zarr's. Which arrays of an input are read: :mod:`.inputs`.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

import numpy as np

from ..errors import SaecodecError

CHUNK_TARGET = 4 << 20  # bytes of a default chunk: a few frames of a megapixel detector
_handles: dict = {}
_lock = threading.Lock()


def _cached(key, opener):
    with _lock:
        if key not in _handles:
            _handles[key] = opener()
        return _handles[key]


def open_h5(path):
    """``path`` opened for reading once per process (a 32 MiB chunk cache)."""
    import h5py

    return _cached(("h5", path), lambda: h5py.File(path, "r", rdcc_nbytes=32 << 20))


def open_zarr(path, name: str):
    """Array ``name`` of the Zarr store ``path``, opened for reading once per process."""
    import zarr

    return _cached(("zarr", path, name), lambda: zarr.open_array(store=path, path=name, mode="r"))


def close_handles() -> None:
    """Close the files this process opened for reading (the next read reopens them)."""
    with _lock:
        for h in _handles.values():
            close = getattr(h, "close", None)
            if close:
                close()
        _handles.clear()


@dataclass(frozen=True)
class Source:
    path: str
    name: str  # the dataset's path inside the file ("" for an image stack)
    shape: tuple
    dtype: str
    chunks: tuple | None = None
    fill: object = 0

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class H5Source(Source):
    def read(self, region):
        return open_h5(self.path)[self.name][region]


@dataclass(frozen=True)
class ZarrSource(Source):
    def read(self, region):
        return open_zarr(self.path, self.name)[region]


@dataclass(frozen=True)
class ImageSource(Source):
    """Frames of detector image files in order; ``frames`` lists (file, frame index)."""

    frames: tuple = field(default=(), repr=False)

    def read(self, region):
        fabio = import_fabio()
        rows = range(*region[0].indices(self.shape[0]))
        out = np.empty((len(rows),) + tuple(self.shape[1:]), dtype=self.dtype)
        for i, n in enumerate(rows):
            fname, k = self.frames[n]
            with fabio.open(fname) as img:
                data = img.data if k == 0 else img.getframe(k).data
            if data.shape != tuple(self.shape[1:]):
                raise SaecodecError(f"{fname}: frame of shape {data.shape}, the stack's frames are {self.shape[1:]}")
            out[i] = data
        return out[(slice(None),) + tuple(region[1:])]


def import_fabio():
    try:
        import fabio
    except ImportError:
        raise SaecodecError("reading detector images needs fabio: pip install 'saecodec[files]'") from None
    return fabio


def default_chunks(shape, itemsize: int, src_chunks=None) -> tuple:
    """The input's chunks when they hold whole frames, else as many frames as fit in 4 MiB,
    chosen to divide the frame axis: no padded last chunk (which costs bytes on every
    copy), one frame per chunk when nothing else divides it."""
    shape = tuple(int(s) for s in shape)
    if src_chunks and tuple(src_chunks[-2:]) == shape[-2:]:
        return tuple(int(c) for c in src_chunks)
    if len(shape) == 2:
        return shape
    n = shape[-3]
    k = max(1, min(n, CHUNK_TARGET // max(1, shape[-1] * shape[-2] * itemsize)))
    k = max(d for d in range(1, k + 1) if n % d == 0) if n else 1
    return (1,) * (len(shape) - 3) + (k,) + shape[-2:]


def parse_chunks(text: str | None, shape, itemsize: int, src_chunks=None) -> tuple:
    if not text or text == "auto":
        return default_chunks(shape, itemsize, src_chunks)
    try:
        chunks = tuple(int(c) for c in text.replace("x", ",").split(","))
    except ValueError:
        raise SaecodecError(f"--chunks wants integers such as 4,512,512, got {text!r}") from None
    if len(chunks) != len(shape) or min(chunks) < 1:
        raise SaecodecError(f"--chunks {text!r} does not fit a dataset of shape {tuple(shape)}")
    return tuple(min(c, max(1, s)) for c, s in zip(chunks, shape))


def chunk_offsets(shape, chunks):
    return itertools.product(*(range(0, max(s, 1), c) for s, c in zip(shape, chunks)))


def region(offset, shape, chunks) -> tuple:
    return tuple(slice(o, min(o + c, s)) for o, c, s in zip(offset, chunks, shape))


def pad(block: np.ndarray, chunks, fill) -> np.ndarray:
    """A partial edge chunk, padded with the fill value as HDF5 and zarr do before filtering."""
    if block.shape == tuple(chunks):
        return np.ascontiguousarray(block)
    out = np.full(chunks, fill if fill is not None else 0, dtype=block.dtype)
    out[tuple(slice(0, s) for s in block.shape)] = block
    return out


def codec_for(spec: dict):
    """One codec per distinct configuration and process (workers keep their model loaded)."""
    from ..codec import SAECodec

    key = tuple(sorted((k, repr(v)) for k, v in spec.items()))
    return _cached(("codec", key), lambda: SAECodec(**spec))
