"""``saecodec decompress``: back to plain (or gzip/lzf/zstd...) HDF5 or Zarr, for tools
that cannot load the plugin. Raw chunks are read by the caller and decoded in parallel;
every other object is copied as ``compress`` copies it.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np

from ..errors import SaecodecError
from . import inputs, output, sources, stored, zarrio
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


def _layout(s: stored.Stored) -> dict:
    """What compress recorded about the input's layout ({} for files written otherwise)."""
    from .compress import SOURCE_LAYOUT

    if s.kind == "hdf5":
        attrs = sources.open_h5(s.path)[s.name].attrs
    else:
        attrs = sources.open_zarr(s.path, s.name).attrs
    try:
        value = attrs.get(SOURCE_LAYOUT)
        value = value.decode() if isinstance(value, bytes) else value
        return json.loads(value) if isinstance(value, str) else {}
    except ValueError:
        return {}


def _out_chunks(s: stored.Stored, how: str, kind_out: str, compression: str):
    """The output's chunks: ``how`` is source (the input's, as compress recorded them, None
    for contiguous), stored (the compressed array's) or a shape such as 1,512,512."""
    if how == "stored":
        return s.chunks
    if how not in ("source", None, ""):
        return sources.parse_chunks(how, s.shape, np.dtype(s.dtype).itemsize)
    layout = _layout(s)
    if "chunks" not in layout:
        return s.chunks
    chunks = layout["chunks"]
    if chunks is None:  # contiguous: only plain HDF5 of fixed size can be
        fixed = s.kind != "hdf5" or sources.open_h5(s.path)[s.name].maxshape == tuple(s.shape)
        if kind_out != "hdf5" or compression != "none" or not fixed:
            return s.chunks
        return None
    chunks = tuple(int(c) for c in chunks)
    return chunks if len(chunks) == len(s.shape) else s.chunks


def decompress(inp, out, *, compression: str = "none", fmt: str | None = None, force: bool = False,
               scheduler=None, workers: int | None = None, progress: bool = True,
               chunks: str | None = "source") -> output.Summary:
    """A plain copy of ``inp``; ``chunks``: see :func:`_out_chunks` (default: the original's)."""
    from .compress import SOURCE_LAYOUT

    out = output.check_paths(inp, out, force)
    kind_out = output.out_kind(out, fmt)
    comps = stored.compressed(inp)
    if not comps:
        raise SaecodecError(f"{inp}: no saecodec-compressed dataset to decompress")
    if compression not in H5_LOSSLESS:
        raise SaecodecError(f"--compression must be one of {', '.join(H5_LOSSLESS)}")
    kind_in = inputs.input_kind(inp)
    try:
        outs = [replace(s, chunks=_out_chunks(s, chunks, kind_out, compression)) for s in comps]
    finally:
        sources.close_handles()
    by_name = {o.name: s for o, s in zip(outs, comps)}
    summary = output.Summary(str(out))
    t0 = time.perf_counter()
    with output.staged(out) as tmp:
        if kind_out == "hdf5":
            with output.hdf5_file(inp, kind_in, tmp, outs,
                                  lambda a: _h5_filter(compression) if a.chunks else {}) as made:
                for _, d in made:
                    if SOURCE_LAYOUT in d.attrs:
                        del d.attrs[SOURCE_LAYOUT]
                _decode_all([(by_name[o.name], d.__setitem__, o.name) for o, d in made], scheduler, workers,
                            progress, summary)
        else:
            root = output.zarr_root(inp, kind_in, tmp, {s.name for s in comps}, int(kind_out[-1]))
            writers = []
            for o in outs:
                attrs = {k: v for k, v in output.source_attrs(inp, kind_in, o.name).items() if k != SOURCE_LAYOUT}
                writers.append((by_name[o.name], zarrio.create_array(root, o.name, o, attrs).__setitem__, o.name))
            _decode_all(writers, scheduler, workers, progress, summary)
    summary.seconds = time.perf_counter() - t0
    return summary


def _decode_all(pairs, scheduler, workers, progress, summary):
    """``pairs``: (stored array, writer(region, block), name)."""
    total = sum(s.nbytes for s, _, _ in pairs)
    with Pool(scheduler, workers) as pool, Progress(total, enabled=progress, desc="decompress") as bar:
        for s, write, name in pairs:
            res = output.Result(name, s.shape, s.dtype, s.chunks)
            summary.datasets.append(res)
            jobs = ((s, off) for off in sources.chunk_offsets(s.shape, s.chunks))
            for (_, off), block in pool.imap_unordered(decode_job, jobs):
                write(sources.region(off, s.shape, s.chunks), block)
                res.raw_bytes += block.nbytes
                res.stored_bytes += block.nbytes
                bar.update(block.nbytes, block.nbytes)
