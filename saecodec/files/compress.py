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
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SaecodecError
from . import sources, zarrio
from .parallel import Pool
from .progress import Progress

NEXUS_DATA = "entry/instrument/detector/data"


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


@dataclass
class Result:
    name: str
    shape: tuple
    dtype: str
    chunks: tuple
    raw_bytes: int = 0
    stored_bytes: int = 0

    @property
    def ratio(self) -> float:
        return self.raw_bytes / self.stored_bytes if self.stored_bytes else float("nan")


@dataclass
class Summary:
    output: str
    datasets: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def raw_bytes(self) -> int:
        return sum(d.raw_bytes for d in self.datasets)

    @property
    def stored_bytes(self) -> int:
        return sum(d.stored_bytes for d in self.datasets)

    @property
    def mb_per_s(self) -> float:
        return self.raw_bytes / 1e6 / self.seconds if self.seconds else float("nan")


def check_paths(inp, out, force: bool) -> Path:
    if not sources.exists(inp) and not any(ch in str(inp) for ch in "*?["):
        raise SaecodecError(f"{inp}: no such file or directory")
    out = Path(out)
    if sources.exists(out):
        if not force:
            raise SaecodecError(f"{out} exists; use --force to replace it")
        if out.resolve() == Path(str(inp)).resolve():
            raise SaecodecError("the output would replace the input")
    if not out.parent.exists():
        raise SaecodecError(f"{out.parent}: no such directory")
    return out


def replace(tmp: Path, out: Path) -> None:
    if out.is_dir() and not out.is_symlink():
        shutil.rmtree(out)
    os.replace(tmp, out)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif sources.exists(path):
        path.unlink()


def compress(inp, out, *, model="sas64-l1", options: dict | None = None, datasets=None, chunks: str | None = None,
             fmt: str | None = None, force: bool = False, scheduler=None, workers: int | None = None,
             progress: bool = True) -> Summary:
    out = check_paths(inp, out, force)
    kind_out = sources.out_kind(out, fmt)
    spec = codec_spec(model, dict(options or {}))
    kind_in, targets = sources.targets(inp, datasets)
    if not targets:
        raise SaecodecError(f"{inp}: no dataset to compress (numeric, 2 or more dims, frames of 8x8 or more); "
                            "name them with --dataset (external links are not followed: compress the files they point to)")
    plan = [(t, sources.parse_chunks(chunks, t.shape, np.dtype(t.dtype).itemsize, t.chunks)) for t in targets]
    tmp = out.with_name(f".{out.name}.saecodec-tmp-{os.getpid()}")
    remove(tmp)
    summary = Summary(str(out))
    t0 = time.perf_counter()
    try:
        if kind_out == "hdf5":
            _to_hdf5(inp, kind_in, tmp, plan, spec, scheduler, workers, progress, summary)
        elif kind_out in ("zarr2", "zarr3"):
            _to_zarr(inp, kind_in, tmp, plan, spec, int(kind_out[-1]), scheduler, workers, progress, summary)
        else:
            raise SaecodecError(f"unknown output format {kind_out!r}; use hdf5, zarr2 or zarr3")
        replace(tmp, out)
    except BaseException:
        remove(tmp)
        raise
    finally:
        sources.close_handles()
    summary.seconds = time.perf_counter() - t0
    return summary


def _encode_all(plan_writers, spec, scheduler, workers, progress, summary):
    """Every chunk of every dataset through the pool; ``plan_writers``: (source, chunks, write, name)."""
    total = sum(s.nbytes for s, _, _, _ in plan_writers)
    with Pool(scheduler, workers) as pool, Progress(total, enabled=progress) as bar:
        for source, chunks, write, name in plan_writers:
            res = Result(name, source.shape, source.dtype, chunks)
            summary.datasets.append(res)
            jobs = ((source, off, chunks, spec) for off in sources.chunk_offsets(source.shape, chunks))
            for (_, off, _, _), (payload, nbytes) in pool.imap_unordered(encode_job, jobs):
                write(off, payload)
                res.raw_bytes += nbytes
                res.stored_bytes += len(payload)
                bar.update(nbytes, len(payload))


def _to_hdf5(inp, kind_in, tmp, plan, spec, scheduler, workers, progress, summary):
    import h5py

    from . import h5copy

    sae = filter_kwargs(spec)
    created = []

    def make(original, group, name, chunks, source):
        """The compressed dataset; ``original``: the input's h5py dataset (maxshape, order), or None."""
        extra = {} if original is None else {"maxshape": original.maxshape, "track_order": h5copy.tracked(original)}
        d = group.create_dataset(name, shape=source.shape, dtype=np.dtype(source.dtype), chunks=chunks,
                                 fillvalue=source.fill, **sae, **extra)
        created.append((source, chunks, d))
        return d

    if kind_in == "hdf5":
        with h5py.File(inp, "r") as src:
            by_id = {src[t.name].id: (t, c) for t, c in plan}

            def make_from(s, group, name):
                t, c = by_id[s.id]
                d = make(s, group, name, c, t)
                h5copy.copy_attrs(s, d)
                return d

            with h5py.File(tmp, "w", track_order=h5copy.root_track_order(src)) as dst:
                h5copy.copy_tree(src, dst, set(by_id), make_from)
                _run_h5(created, spec, scheduler, workers, progress, summary)
        return
    with h5py.File(tmp, "w") as dst:
        if kind_in == "zarr":
            import zarr

            zarrio.zarr_to_h5(zarr.open(store=str(inp), mode="r"), dst, {t.name for t, _ in plan})
            for t, c in plan:
                parent, _, leaf = t.name.rpartition("/")
                d = make(None, dst.require_group(parent) if parent else dst, leaf, c, t)
                for k, v in zarr.open_array(store=str(inp), path=t.name, mode="r").attrs.items():
                    d.attrs[k] = zarrio.h5_value(v)
        else:
            (t, c), = plan
            _nexus_skeleton(dst, t)
            make(None, dst[NEXUS_DATA.rpartition("/")[0]], "data", c, t)
        _run_h5(created, spec, scheduler, workers, progress, summary)


def _nexus_skeleton(dst, source) -> None:
    import h5py

    entry = dst.create_group("entry")
    entry.attrs["NX_class"] = "NXentry"
    dst.attrs["default"] = "entry"
    entry.attrs["default"] = "data"
    entry.create_group("instrument").attrs["NX_class"] = "NXinstrument"
    det = entry.create_group("instrument/detector")
    det.attrs["NX_class"] = "NXdetector"
    det["source_files"] = np.array(sorted({f for f, _ in source.frames}), dtype=h5py.string_dtype())
    data = entry.create_group("data")
    data.attrs.update({"NX_class": "NXdata", "signal": "data"})
    data["data"] = h5py.SoftLink("/" + NEXUS_DATA)


def _run_h5(created, spec, scheduler, workers, progress, summary):
    writers = [(s, c, d.id.write_direct_chunk, d.name.lstrip("/")) for s, c, d in created]
    _encode_all(writers, spec, scheduler, workers, progress, summary)


def _to_zarr(inp, kind_in, tmp, plan, spec, zarr_format, scheduler, workers, progress, summary):
    import zarr

    names = {t.name for t, _ in plan}
    same = False
    if kind_in == "zarr":
        src_root = zarr.open(store=str(inp), mode="r")
        same = src_root.metadata.zarr_format == zarr_format and isinstance(src_root, zarr.Group)
    if same:
        zarrio.copy_zarr_store(inp, tmp, names)
        root = zarr.open_group(store=str(tmp), mode="r+")
    else:
        root = zarr.open_group(store=str(tmp), mode="w", zarr_format=zarr_format)
        if kind_in == "hdf5":
            import h5py

            with h5py.File(inp, "r") as src:
                zarrio.h5_to_zarr(src, root, names, zarr_format)
        elif kind_in == "zarr" and isinstance(src_root, zarr.Group):
            for k, v in src_root.attrs.items():
                root.attrs[k] = v
            for name, node in src_root.members(max_depth=None):
                if isinstance(node, zarr.Group):
                    zarrio.create_group(root, name, dict(node.attrs))
                elif name not in names:
                    a = root.create_array(name, shape=node.shape, chunks=node.chunks, dtype=node.dtype,
                                          fill_value=node.fill_value)
                    zarrio.copy_array_data(node, a)
                    a.attrs.update(dict(node.attrs))
    writers = []
    for t, c in plan:
        attrs = _source_attrs(inp, kind_in, t)
        name = t.name or NEXUS_DATA
        a = zarrio.create_compressed(root, name, t.shape, t.dtype, c, t.fill, spec, zarr_format, attrs)
        writers.append((t, c, zarrio.ChunkFiles(tmp, a).write, name))
    _encode_all(writers, spec, scheduler, workers, progress, summary)


def _source_attrs(inp, kind_in, t) -> dict:
    if kind_in == "hdf5":
        import h5py

        with h5py.File(inp, "r") as f:
            return dict(f[t.name].attrs)
    if kind_in == "zarr":
        import zarr

        return dict(zarr.open_array(store=str(inp), path=t.name, mode="r").attrs)
    return {}
