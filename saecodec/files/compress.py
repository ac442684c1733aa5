"""``saecodec compress``: a file or store in, a smaller drop-in replacement out.

Chunks are read, padded like HDF5/zarr pad edge chunks, and encoded in parallel
(:mod:`.parallel`); the caller writes each payload as the chunk's stored bytes
(``write_direct_chunk`` for HDF5, the chunk file for Zarr): exactly what the filter or
the zarr codec would have written, without their one-chunk-at-a-time pipelines. The
output is built under a temporary name and renamed when complete.
"""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import replace

import numpy as np

from ..errors import SaecodecError
from ..model_store import DEFAULT_MODEL
from . import inputs, output, sources, zarrio
from .parallel import Pool
from .progress import Progress


def codec_spec(model, options: dict) -> dict:
    """SAECodec keyword arguments (validated by building one), as sent to workers: the model
    as its identity, or its path when given a file (workers may not have it registered)."""
    from ..codec import SAECodec

    try:
        codec = SAECodec(model, **options)
    except TypeError as e:
        raise SaecodecError(f"unknown codec option: {e}") from None
    spec = {k: v for k, v in codec.get_config().items() if k != "id"}
    spec.update({k: v for k, v in options.items() if k not in spec})  # run-time options (device...)
    if os.path.isfile(str(model)):
        spec["model"] = os.path.abspath(str(model))
    return spec


def filter_kwargs(spec: dict):
    """``saecodec.hdf5.SAE`` for these codec options (those the filter stores)."""
    from .. import hdf5

    accepted = inspect.signature(hdf5.SAE).parameters
    return hdf5.SAE(**{k: v for k, v in spec.items() if k in accepted})


def encode_job(job) -> tuple[bytes, int]:
    """Worker side: read one chunk, pad it, encode it. Returns (payload, raw bytes read)."""
    source, offset, chunks, spec = job
    block = np.asarray(source.read(sources.region(offset, source.shape, chunks)))
    block = block.astype(np.dtype(source.dtype), copy=False)
    payload = sources.codec_for(spec).encode(sources.pad(block, chunks, source.fill))
    return bytes(payload), block.nbytes


def compress(inp, out, *, model=DEFAULT_MODEL, options: dict | None = None, datasets=None, chunks: str | None = None,
             fmt: str | None = None, force: bool = False, scheduler=None, workers: int | None = None,
             progress: bool = True) -> output.Summary:
    out = output.check_paths(inp, out, force)
    kind_out = output.out_kind(out, fmt)
    spec = codec_spec(model, dict(options or {}))
    kind_in, targets = inputs.targets(inp, datasets)
    if not targets:
        raise SaecodecError(f"{inp}: no dataset to compress (numeric, 2 or more dims, frames of 8x8 or more); "
                            "name them with --dataset (external links are not followed: compress the files they point to)")
    if kind_out not in ("hdf5", "zarr2", "zarr3"):
        raise SaecodecError(f"unknown output format {kind_out!r}; use hdf5, zarr2 or zarr3")
    # each target with the output's chunks
    plan = [replace(t, chunks=sources.parse_chunks(chunks, t.shape, np.dtype(t.dtype).itemsize, t.chunks))
            for t in targets]
    summary = output.Summary(str(out))
    t0 = time.perf_counter()
    with output.staged(out) as tmp:
        if kind_out == "hdf5":
            with output.hdf5_file(inp, kind_in, tmp, plan, filter_kwargs(spec)) as made:
                writers = [(t, d.id.write_direct_chunk, d.name.lstrip("/")) for t, d in made]
                _encode_all(writers, spec, scheduler, workers, progress, summary)
        else:
            zarr_format = int(kind_out[-1])
            root = output.zarr_root(inp, kind_in, tmp, {t.name for t in plan}, zarr_format, copy_files=True)
            codecs = zarrio.codec_kwargs(spec, zarr_format)
            writers = []
            for t in plan:
                name = t.name or output.NEXUS_DATA
                a = zarrio.create_array(root, name, t, output.source_attrs(inp, kind_in, t.name), **codecs)
                writers.append((t, zarrio.ChunkFiles(tmp, a).write, name))
            _encode_all(writers, spec, scheduler, workers, progress, summary)
    summary.seconds = time.perf_counter() - t0
    return summary


def _encode_all(writers, spec, scheduler, workers, progress, summary):
    """Every chunk of every dataset through the pool; ``writers``: (source, write(offset, payload), name)."""
    total = sum(s.nbytes for s, _, _ in writers)
    with Pool(scheduler, workers) as pool, Progress(total, enabled=progress) as bar:
        for source, write, name in writers:
            chunks = source.chunks
            res = output.Result(name, source.shape, source.dtype, chunks)
            summary.datasets.append(res)
            jobs = ((source, off, chunks, spec) for off in sources.chunk_offsets(source.shape, chunks))
            for (_, off, _, _), (payload, nbytes) in pool.imap_unordered(encode_job, jobs):
                write(off, payload)
                res.raw_bytes += nbytes
                res.stored_bytes += len(payload)
                bar.update(nbytes, len(payload))
