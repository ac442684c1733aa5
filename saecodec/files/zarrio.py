"""Zarr output (formats 2 and 3) and conversions between Zarr and HDF5 metadata.

A compressed array's chunk files are written directly: each holds exactly the payload
the codec returns (zarr v2 with ``compressor=SAECodec``, zarr v3 with
``serializer=SAEZarrCodec`` and no byte codecs), so workers anywhere can encode and the
caller only writes bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from .sources import chunk_offsets, region


def json_value(v):
    """An HDF5 attribute value as JSON (bytes decoded, arrays as lists)."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        return [json_value(x) for x in v.tolist()] if v.dtype.kind in "OSU" else v.tolist()
    if isinstance(v, np.generic):
        return json_value(v.item())
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    return v if isinstance(v, (str, int, float, bool, type(None), dict)) else str(v)


def h5_value(v):
    """A JSON attribute value for HDF5: strings and numbers as they are, lists as arrays
    when uniform, anything else as its JSON text."""
    if isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return np.array(v, dtype=object)
    if isinstance(v, list) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return np.asarray(v)
    return json.dumps(v)


def create_group(root, name: str, attrs: dict | None = None):
    g = root.require_group(name) if name else root
    if attrs:
        g.attrs.update({k: json_value(v) for k, v in attrs.items()})
    return g


def codec_kwargs(spec: dict, zarr_format: int) -> dict:
    """``create_array`` keywords that make saecodec an array's only codec: its chunk files are payloads."""
    from ..codec import SAECodec
    from ..zarr3 import SAEZarrCodec

    if zarr_format == 2:
        return {"compressors": SAECodec(**spec), "filters": None}
    return {"serializer": SAEZarrCodec(**spec), "compressors": None}


def create_array(root, name: str, like, attrs=None, **codecs):
    """Array ``name`` with the shape, dtype, chunks and fill of ``like`` (a source), its parent
    groups, ``attrs`` and ``codecs`` (zarr's defaults when none)."""
    parent, _, leaf = name.rpartition("/")
    g = create_group(root, parent) if parent else root
    a = g.create_array(leaf, shape=like.shape, chunks=like.chunks, dtype=like.dtype, fill_value=like.fill, **codecs)
    if attrs:
        a.attrs.update({k: json_value(v) for k, v in attrs.items()})
    return a


class ChunkFiles:
    """Writes payloads as the chunk files of one array of a local Zarr store."""

    def __init__(self, store_dir, array):
        self.dir = Path(store_dir) / array.path
        self.meta = array.metadata
        self.chunks = tuple(array.chunks)

    def write(self, offset, payload: bytes) -> None:
        key = self.meta.encode_chunk_key(tuple(o // c for o, c in zip(offset, self.chunks)))
        p = self.dir / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(payload)

    def read(self, offset) -> bytes | None:
        p = self.dir / self.meta.encode_chunk_key(tuple(o // c for o, c in zip(offset, self.chunks)))
        return p.read_bytes() if p.exists() else None


def copy_array_data(src, dst) -> None:
    """Slab by slab along the source's chunks, never the whole array."""
    chunks = getattr(src, "chunks", None) or src.shape
    if not src.shape:
        dst[...] = src[...]
        return
    step = (chunks[0],) + tuple(src.shape[1:])
    for off in chunk_offsets(src.shape, step):
        r = region(off, src.shape, step)
        dst[r] = src[r]


def zarr_to_zarr(src_root, root, skip: set) -> None:
    """Groups, attributes and arrays of a Zarr group into another (of either format), except ``skip``."""
    import zarr

    root.attrs.update(dict(src_root.attrs))
    for name, node in src_root.members(max_depth=None):
        if isinstance(node, zarr.Group):
            create_group(root, name, dict(node.attrs))
        elif name not in skip:
            a = root.create_array(name, shape=node.shape, chunks=node.chunks, dtype=node.dtype,
                                  fill_value=node.fill_value)
            copy_array_data(node, a)
            a.attrs.update(dict(node.attrs))


def h5_to_zarr(h5file, root, skip: set, zarr_format: int) -> None:
    """Groups, attributes and numeric or string datasets of an HDF5 file (links dereferenced
    as copies are impossible in Zarr: soft and external links are reported and skipped)."""
    import h5py

    root.attrs.update({k: json_value(v) for k, v in h5file.attrs.items()})

    def visit(name, link):
        if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
            print(f"saecodec: warning: link {name} not copied (Zarr has no links)", file=sys.stderr)
            return
        obj = h5file[name]
        if isinstance(obj, h5py.Group):
            create_group(root, name, dict(obj.attrs))
        elif isinstance(obj, h5py.Dataset) and name not in skip:
            if obj.dtype.kind in "fiub":
                a = root.create_array(name, shape=obj.shape, chunks=obj.chunks or obj.shape, dtype=obj.dtype)
                copy_array_data(obj, a)
            elif h5py.check_string_dtype(obj.dtype) is not None:
                data = obj.asstr()[...]
                a = root.create_array(name, shape=np.shape(data), dtype=str)
                a[...] = np.asarray(data, dtype=str)
            else:
                print(f"saecodec: warning: dataset {name} ({obj.dtype}) not copied to Zarr", file=sys.stderr)
                return
            a.attrs.update({k: json_value(v) for k, v in obj.attrs.items()})

    # Collect first, copy after: copying inside HDF5's visit callback runs zarr's I/O threads
    # while the callback holds HDF5's lock, which could hang (seen under pytest's capture).
    links = []
    if hasattr(h5file, "visititems_links"):
        h5file.visititems_links(lambda n, link: links.append((n, link)))
    else:
        h5file.visititems(lambda n, o: links.append((n, h5py.HardLink())))
    for name, link in links:
        visit(name, link)


def zarr_to_h5(zroot, h5file, skip: set) -> None:
    import zarr

    for k, v in zroot.attrs.items():
        h5file.attrs[k] = h5_value(v)
    for name, node in zroot.members(max_depth=None):
        if isinstance(node, zarr.Group):
            g = h5file.require_group(name)
            for k, v in node.attrs.items():
                g.attrs[k] = h5_value(v)
        elif name not in skip:
            d = h5file.create_dataset(name, shape=node.shape, dtype=np.dtype(node.dtype) if np.dtype(node.dtype).kind
                                      != "T" else h5_str(), chunks=tuple(node.chunks) if node.ndim else None)
            copy_array_data(node, d)
            for k, v in node.attrs.items():
                d.attrs[k] = h5_value(v)


def h5_str():
    import h5py

    return h5py.string_dtype()


def copy_zarr_store(src, dst, skip: set) -> None:
    """A Zarr store copied file by file, except the arrays in ``skip`` (same format only)."""
    src = Path(src)
    skipped = {src / s for s in skip}

    def ignore(d, names):
        return [n for n in names if Path(d) / n in skipped]

    shutil.copytree(src, dst, ignore=ignore, symlinks=True)


def store_bytes(store_dir, array_path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(Path(store_dir) / array_path):
        total += sum(os.path.getsize(Path(dirpath) / f) for f in files)
    return total
