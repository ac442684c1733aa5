"""Compressed arrays in a file or store: which they are, their codec, their raw chunks.

``payload(offset)`` returns a chunk's stored bytes (HDF5 ``read_direct_chunk``, or the
Zarr chunk file), so decoding and checking run in parallel outside HDF5's one-chunk
filter pipeline; ``None`` for a chunk never written (it reads as the fill value).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SaecodecError
from . import inputs, sources


@dataclass(frozen=True)
class Stored(sources.Source):
    kind: str = "hdf5"
    spec: dict | None = None  # codec keyword arguments
    direct: bool = True  # the saecodec filter is the only one: raw chunks are payloads

    def payload(self, offset) -> bytes | None:
        if self.kind == "hdf5":
            d = sources.open_h5(self.path)[self.name]
            try:
                mask, data = d.id.read_direct_chunk(tuple(offset))
            except (KeyError, RuntimeError, OSError, ValueError):
                return None
            if mask:
                raise SaecodecError(f"{self.path}:{self.name} chunk {offset}: stored unfiltered (filter mask {mask})")
            return bytes(data)
        p = Path(self.path) / self.name / self._key(offset)
        return p.read_bytes() if p.exists() else None

    def _key(self, offset) -> str:
        a = sources.open_zarr(self.path, self.name)
        return a.metadata.encode_chunk_key(tuple(o // c for o, c in zip(offset, self.chunks)))

    def decoded(self, offset) -> np.ndarray:
        """The chunk at ``offset`` decoded and cropped to the array's extent."""
        r = sources.region(offset, self.shape, self.chunks)
        if not self.direct:
            return self.read(r)
        data = self.payload(offset)
        shape = tuple(s.stop - s.start for s in r)
        if data is None:
            return np.full(shape, self.fill, dtype=self.dtype)
        arr = sources.codec_for(self.spec).decode(data)
        arr = np.asarray(arr).reshape(self.chunks) if arr.size == int(np.prod(self.chunks)) else arr
        return arr[tuple(slice(0, s) for s in shape)].astype(self.dtype, copy=False)

    def read(self, region):
        if self.kind == "hdf5":
            return sources.open_h5(self.path)[self.name][region]
        return sources.open_zarr(self.path, self.name)[region]


def cd_config(cd) -> dict:
    """The codec keywords stored in a dataset's cd_values (the element type and chunk shape
    that the plugin appends are dropped)."""
    from ..options import CodecOptions

    return CodecOptions.from_cd_values(cd).options.to_config()


def _h5_codec(dset):
    from .. import hdf5

    plist = dset.id.get_create_plist()
    filters = [plist.get_filter(i) for i in range(plist.get_nfilters())]
    for code, _flags, cd, _name in filters:
        if code == hdf5.FILTER_ID:
            return cd_config(cd), len(filters) == 1
    return None, False


def _zarr_codec(a):
    meta = a.metadata
    if getattr(meta, "zarr_format", 3) == 2:
        comp = meta.compressor
        cfg = comp.get_config() if comp is not None else {}
        if cfg.get("id") == "saecodec":
            cfg = {k: v for k, v in cfg.items() if k != "id"}
            return cfg, not meta.filters
        return None, False
    for c in meta.codecs:
        d = c.to_dict()
        if d.get("name") == "saecodec":
            return dict(d.get("configuration", {})), len(meta.codecs) == 1
    return None, False


def compressed(path) -> list[Stored]:
    kind = inputs.input_kind(path)
    out = []
    if kind == "hdf5":
        import h5py

        with inputs.open_hdf5(path) as f:
            seen = set()

            def visit(name, obj):
                if isinstance(obj, h5py.Dataset) and obj.chunks and obj.id not in seen:
                    seen.add(obj.id)
                    spec, direct = _h5_codec(obj)
                    if spec is not None:
                        fill = obj.fillvalue
                        out.append(Stored(str(path), name, tuple(obj.shape), obj.dtype.str, tuple(obj.chunks),
                                          fill.item() if hasattr(fill, "item") else fill, "hdf5", spec, direct))

            f.visititems(visit)
    elif kind == "zarr":
        import zarr

        node = zarr.open(store=str(path), mode="r")
        arrays = [("", node)] if isinstance(node, zarr.Array) else [
            (k, v) for k, v in node.members(max_depth=None) if isinstance(v, zarr.Array)]
        for name, a in arrays:
            spec, direct = _zarr_codec(a)
            if spec is not None:
                fill = a.fill_value
                out.append(Stored(str(path), name, tuple(a.shape), np.dtype(a.dtype).str, tuple(a.chunks),
                                  fill.item() if hasattr(fill, "item") else fill, "zarr", spec, direct))
    else:
        raise SaecodecError(f"{path}: compressed data are HDF5 files or Zarr stores")
    return out


def stored_bytes(s: Stored) -> int:
    """Bytes of the chunks as stored (HDF5's chunk index; Zarr's chunk files)."""
    if s.kind == "hdf5":
        import h5py

        with h5py.File(s.path, "r") as f:
            d = f[s.name]
            total = [0]
            if hasattr(d.id, "chunk_iter"):
                d.id.chunk_iter(lambda info: total.__setitem__(0, total[0] + info.size))
                return total[0]
            return sum(d.id.get_chunk_info(i).size for i in range(d.id.get_num_chunks()))
    from .zarrio import store_bytes

    meta_files = {"zarr.json", ".zarray", ".zattrs"}
    p = Path(s.path) / s.name
    return store_bytes(s.path, s.name) - sum((p / m).stat().st_size for m in meta_files if (p / m).exists())
