"""``saecodec compress``: a file or store in, a smaller drop-in replacement out.

Chunks are read, padded like HDF5/zarr pad edge chunks, and encoded in parallel
(:mod:`.parallel`); the caller writes each payload as the chunk's stored bytes
(``write_direct_chunk`` for HDF5, the chunk file for Zarr): exactly what the filter or
the zarr codec would have written, without their one-chunk-at-a-time pipelines. The
output is built under a temporary name and renamed when complete.
"""

from __future__ import annotations

import inspect
import json
import os
import time
import warnings
from dataclasses import replace

import numpy as np

from ..errors import LossyCountsWarning, SaecodecError
from ..model_store import DEFAULT_MODEL
from . import headers, inputs, output, sources, zarrio
from .parallel import Pool
from .progress import Progress


SOURCE_LAYOUT = "saecodec_source_layout"  # attribute of a compressed array: the input's chunks, for decompress


def codec_spec(model, options: dict) -> dict:
    """SAECodec keyword arguments (validated by building one), as sent to workers: the model
    as its identity, or its path when given a file (workers may not have it registered)."""
    from ..codec import SAECodec
    from ..options import ALIASES

    if options.get("bound_mode") is not None and options.get("error_bound") is None:
        raise SaecodecError(f"bound mode {options['bound_mode']!r} needs an error bound: give --error-bound "
                            "(e.g. --error-bound 0.01 --bound-mode pwrel keeps every element within 1%)")
    try:
        codec = SAECodec(model, **options)
    except TypeError as e:
        raise SaecodecError(f"unknown codec option: {e}") from None
    spec = {k: v for k, v in codec.get_config().items() if k != "id"}
    # run-time options (device...); an option the config already holds under its other name stays out
    spec.update({k: v for k, v in options.items() if ALIASES.get(k, k) not in spec and k not in spec})
    if os.path.isfile(str(model)):
        spec["model"] = os.path.abspath(str(model))
    return spec


def spec_for(spec: dict, dtype, pure: bool = False) -> dict:
    """The codec options for one array: integer counts without a bound are stored
    losslessly (``error_bound=0``) unless the pure mode is asked for, which keeps no count."""
    if spec.get("error_bound") is None and np.dtype(dtype).kind in "iu" and not pure:
        return {**spec, "error_bound": 0}
    return spec


def _pure_on_counts(plan, specs) -> None:
    for t, spec in zip(plan, specs):
        if spec.get("error_bound") is None and np.dtype(t.dtype).kind in "iu":
            warnings.warn(LossyCountsWarning(
                f"{t.name or 'images'}: {np.dtype(t.dtype).name} counts in the pure mode are lossy: counts, their "
                "totals and I(q) move (check with `saecodec verify`); without --pure they are stored losslessly"))


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


def source_layout(t) -> str:
    """What decompress restores: the input's chunks (null: contiguous), as JSON."""
    return json.dumps({"chunks": list(t.chunks) if t.chunks else None})


def compress(inp, out, *, model=DEFAULT_MODEL, options: dict | None = None, datasets=None, chunks: str | None = None,
             fmt: str | None = None, force: bool = False, scheduler=None, workers: int | None = None,
             progress: bool = True, pure: bool = False) -> output.Summary:
    """``inp`` into ``out`` (docs/guide.md, "Files CLI"). Floats without ``error_bound``
    get the pure mode; integer counts without one are stored losslessly unless ``pure``."""
    out = output.check_paths(inp, out, force)
    kind_out = output.out_kind(out, fmt)
    options = dict(options or {})
    if pure and options.get("error_bound") is not None:
        raise SaecodecError("pure=True is the mode without a bound; it takes no error_bound")
    spec = codec_spec(model, options)
    kind_in, targets = inputs.targets(inp, datasets)
    if not targets:
        raise SaecodecError(f"{inp}: no dataset to compress (numeric, 2 or more dims, frames of 8x8 or more); "
                            "name them with --dataset (external links are not followed: compress the files they point to)")
    if kind_out not in ("hdf5", "zarr2", "zarr3"):
        raise SaecodecError(f"unknown output format {kind_out!r}; use hdf5, zarr2 or zarr3")
    # each target with the output's chunks
    plan = [replace(t, chunks=sources.parse_chunks(chunks, t.shape, np.dtype(t.dtype).itemsize, t.chunks))
            for t in targets]
    specs = [spec_for(spec, t.dtype, pure) for t in plan]
    layouts = {t.name: source_layout(t) for t in targets}
    _pure_on_counts(plan, specs)
    summary = output.Summary(str(out))
    t0 = time.perf_counter()
    with output.staged(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", LossyCountsWarning)  # said once per dataset above, not per codec
        if kind_out == "hdf5":
            by_name = {t.name: filter_kwargs(sp) for t, sp in zip(plan, specs)}
            with output.hdf5_file(inp, kind_in, tmp, plan, lambda a: by_name[a.name]) as made:
                writers = []
                for (t, d), sp in zip(made, specs):
                    d.attrs[SOURCE_LAYOUT] = layouts[t.name]
                    writers.append((t, d.id.write_direct_chunk, d.name.lstrip("/"), sp))
                _encode_all(writers, scheduler, workers, progress, summary)
        else:
            zarr_format = int(kind_out[-1])
            root = output.zarr_root(inp, kind_in, tmp, {t.name for t in plan}, zarr_format, copy_files=True)
            writers = []
            for t, sp in zip(plan, specs):
                name = t.name or output.NEXUS_DATA
                attrs = {**output.source_attrs(inp, kind_in, t.name), SOURCE_LAYOUT: layouts[t.name]}
                if kind_in == "images":
                    attrs.update(headers.zarr_attrs(headers.read_headers(t.frames)))
                a = zarrio.create_array(root, name, t, attrs, **zarrio.codec_kwargs(sp, zarr_format))
                writers.append((t, zarrio.ChunkFiles(tmp, a).write, name, sp))
            _encode_all(writers, scheduler, workers, progress, summary)
    summary.seconds = time.perf_counter() - t0
    return summary


def _encode_all(writers, scheduler, workers, progress, summary):
    """Every chunk of every dataset through the pool; ``writers``: (source, write(offset, payload), name, spec)."""
    total = sum(s.nbytes for s, _, _, _ in writers)
    with Pool(scheduler, workers) as pool, Progress(total, enabled=progress) as bar:
        for source, write, name, spec in writers:
            chunks = source.chunks
            res = output.Result(name, source.shape, source.dtype, chunks, mode=_mode(spec))
            summary.datasets.append(res)
            jobs = ((source, off, chunks, spec) for off in sources.chunk_offsets(source.shape, chunks))
            for (_, off, _, _), (payload, nbytes) in pool.imap_unordered(encode_job, jobs):
                write(off, payload)
                res.raw_bytes += nbytes
                res.stored_bytes += len(payload)
                bar.update(nbytes, len(payload))


def _mode(spec: dict) -> str:
    eb = spec.get("error_bound")
    if eb is None:
        return "pure"
    mode = spec.get("bound_mode") or "abs"
    return "lossless" if mode == "abs" and eb == 0 else f"{mode} {eb:g}"
