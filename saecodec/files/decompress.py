"""``saecodec decompress``: back to plain (or gzip/lzf/zstd...) HDF5 or Zarr, for tools
that cannot load the plugin. Raw chunks are read by the caller and decoded in parallel;
every other object is copied as ``compress`` copies it.
"""

from __future__ import annotations

import os
import time

import numpy as np

from ..errors import SaecodecError
from .compress import Result, Summary, check_paths, remove, replace
from . import sources, stored, zarrio
from .parallel import Pool
from .progress import Progress

H5_LOSSLESS = ("none", "gzip", "lzf", "zstd", "lz4", "bitshuffle")


def decode_job(job):
    s, offset = job
    return s.decoded(offset)


def _h5_filter(name: str) -> dict:
    if name == "none":
        return {}
    if name in ("gzip", "lzf"):
        return {"compression": name}
    try:
        import hdf5plugin
    except ImportError:
        raise SaecodecError(f"--compression {name} needs hdf5plugin: pip install hdf5plugin") from None
    return dict({"zstd": hdf5plugin.Zstd, "lz4": hdf5plugin.LZ4, "bitshuffle": hdf5plugin.Bitshuffle}[name]())


def decompress(inp, out, *, compression: str = "none", fmt: str | None = None, force: bool = False,
               scheduler=None, workers: int | None = None, progress: bool = True) -> Summary:
    out = check_paths(inp, out, force)
    kind_out = sources.out_kind(out, fmt)
    comps = stored.compressed(inp)
    if not comps:
        raise SaecodecError(f"{inp}: no saecodec-compressed dataset to decompress")
    if compression not in H5_LOSSLESS:
        raise SaecodecError(f"--compression must be one of {', '.join(H5_LOSSLESS)}")
    kind_in = sources.input_kind(inp)
    tmp = out.with_name(f".{out.name}.saecodec-tmp-{os.getpid()}")
    remove(tmp)
    summary = Summary(str(out))
    t0 = time.perf_counter()
    try:
        if kind_out == "hdf5":
            _to_hdf5(inp, kind_in, tmp, comps, compression, scheduler, workers, progress, summary)
        else:
            _to_zarr(inp, kind_in, tmp, comps, int(kind_out[-1]), scheduler, workers, progress, summary)
        replace(tmp, out)
    except BaseException:
        remove(tmp)
        raise
    finally:
        sources.close_handles()
    summary.seconds = time.perf_counter() - t0
    return summary


def _decode_all(pairs, scheduler, workers, progress, summary):
    """``pairs``: (stored array, writer(region, block), name)."""
    total = sum(s.nbytes for s, _, _ in pairs)
    with Pool(scheduler, workers) as pool, Progress(total, enabled=progress, desc="decompress") as bar:
        for s, write, name in pairs:
            res = Result(name, s.shape, s.dtype, s.chunks)
            summary.datasets.append(res)
            jobs = ((s, off) for off in sources.chunk_offsets(s.shape, s.chunks))
            for (_, off), block in pool.imap_unordered(decode_job, jobs):
                write(sources.region(off, s.shape, s.chunks), block)
                res.raw_bytes += block.nbytes
                res.stored_bytes += block.nbytes
                bar.update(block.nbytes, block.nbytes)


def _to_hdf5(inp, kind_in, tmp, comps, compression, scheduler, workers, progress, summary):
    import h5py

    from . import h5copy

    filt = _h5_filter(compression)
    made = []

    def make(original, group, name, s):
        extra = {} if original is None else {"maxshape": original.maxshape, "track_order": h5copy.tracked(original)}
        d = group.create_dataset(name, shape=s.shape, dtype=np.dtype(s.dtype), chunks=s.chunks, fillvalue=s.fill,
                                 **filt, **extra)
        made.append((s, d))
        return d

    with h5py.File(tmp, "w") as dst:
        if kind_in == "hdf5":
            with h5py.File(inp, "r") as src:
                by_id = {src[s.name].id: s for s in comps}

                def make_from(o, group, name):
                    d = make(o, group, name, by_id[o.id])
                    h5copy.copy_attrs(o, d)
                    return d

                h5copy.copy_tree(src, dst, set(by_id), make_from)
        else:
            import zarr

            zarrio.zarr_to_h5(zarr.open(store=str(inp), mode="r"), dst, {s.name for s in comps})
            for s in comps:
                parent, _, leaf = s.name.rpartition("/")
                d = make(None, dst.require_group(parent) if parent else dst, leaf, s)
                for k, v in zarr.open_array(store=str(inp), path=s.name, mode="r").attrs.items():
                    d.attrs[k] = zarrio.h5_value(v)
        pairs = [(s, d.__setitem__, s.name) for s, d in made]
        _decode_all(pairs, scheduler, workers, progress, summary)


def _to_zarr(inp, kind_in, tmp, comps, zarr_format, scheduler, workers, progress, summary):
    import zarr

    names = {s.name for s in comps}
    root = zarr.open_group(store=str(tmp), mode="w", zarr_format=zarr_format)
    if kind_in == "hdf5":
        import h5py

        with h5py.File(inp, "r") as src:
            zarrio.h5_to_zarr(src, root, names, zarr_format)
            attrs = {s.name: dict(src[s.name].attrs) for s in comps}
    else:
        src_root = zarr.open(store=str(inp), mode="r")
        attrs = {s.name: dict(zarr.open_array(store=str(inp), path=s.name, mode="r").attrs) for s in comps}
        if isinstance(src_root, zarr.Group):
            root.attrs.update(dict(src_root.attrs))
            for name, node in src_root.members(max_depth=None):
                if isinstance(node, zarr.Group):
                    zarrio.create_group(root, name, dict(node.attrs))
                elif name not in names:
                    a = root.create_array(name, shape=node.shape, chunks=node.chunks, dtype=node.dtype,
                                          fill_value=node.fill_value)
                    zarrio.copy_array_data(node, a)
                    a.attrs.update(dict(node.attrs))
    pairs = []
    for s in comps:
        parent, _, leaf = s.name.rpartition("/")
        g = zarrio.create_group(root, parent) if parent else root
        a = g.create_array(leaf, shape=s.shape, chunks=s.chunks, dtype=s.dtype, fill_value=s.fill)
        a.attrs.update({k: zarrio.json_value(v) for k, v in attrs[s.name].items()})
        pairs.append((s, a.__setitem__, s.name))
    _decode_all(pairs, scheduler, workers, progress, summary)
