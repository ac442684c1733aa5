"""``saecodec decompress``: back to plain (or gzip/lzf/zstd...) HDF5 or Zarr, for tools
that cannot load the plugin. Raw chunks are read by the caller and decoded in parallel;
every other object is copied as ``compress`` copies it.
"""

from __future__ import annotations

import time

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


def decompress(inp, out, *, compression: str = "none", fmt: str | None = None, force: bool = False,
               scheduler=None, workers: int | None = None, progress: bool = True) -> output.Summary:
    out = output.check_paths(inp, out, force)
    kind_out = output.out_kind(out, fmt)
    comps = stored.compressed(inp)
    if not comps:
        raise SaecodecError(f"{inp}: no saecodec-compressed dataset to decompress")
    if compression not in H5_LOSSLESS:
        raise SaecodecError(f"--compression must be one of {', '.join(H5_LOSSLESS)}")
    kind_in = inputs.input_kind(inp)
    summary = output.Summary(str(out))
    t0 = time.perf_counter()
    with output.staged(out) as tmp:
        if kind_out == "hdf5":
            with output.hdf5_file(inp, kind_in, tmp, comps, _h5_filter(compression)) as made:
                _decode_all([(s, d.__setitem__, s.name) for s, d in made], scheduler, workers, progress, summary)
        else:
            root = output.zarr_root(inp, kind_in, tmp, {s.name for s in comps}, int(kind_out[-1]))
            writers = [(s, zarrio.create_array(root, s.name, s, output.source_attrs(inp, kind_in, s.name)).__setitem__,
                        s.name) for s in comps]
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
