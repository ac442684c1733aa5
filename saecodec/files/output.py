"""Outputs built as ``compress`` and ``decompress`` build them: under a temporary name,
renamed when complete, with every object of the input copied except the arrays being
(de)compressed, which are created empty for the caller to fill chunk by chunk.

An array is anything with ``name, shape, dtype, chunks, fill`` (:class:`sources.Source`):
its chunks and fill value are the output's.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SaecodecError
from . import sources, zarrio

NEXUS_DATA = "entry/instrument/detector/data"
# HDF5 files are written in the 1.10 format: every piece of metadata carries a checksum
# (superblock v3, object headers v2, the fixed/extensible array and v2 B-tree chunk indices),
# so a damaged index is an error, where the earliest format's v1 B-trees read a flipped key as
# fill values; HDF5 1.10 (Debian's h5dump) and every h5py >= 3 read it.
LIBVER = ("v110", "v110")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".nx5", ".nx", ".cxi", ".h5ad")


@dataclass
class Result:
    name: str
    shape: tuple
    dtype: str
    chunks: tuple
    raw_bytes: int = 0
    stored_bytes: int = 0
    mode: str = ""  # how it was coded (compress): pure, lossless, poisson 0.5...

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


def exists(path) -> bool:
    return os.path.lexists(path)


def out_kind(path, fmt: str | None) -> str:
    """``fmt``, else the format the output's name says (``.zarr`` is zarr3)."""
    if fmt:
        return fmt
    s = str(path).rstrip("/").lower()
    if s.endswith(".zarr"):
        return "zarr3"
    if s.endswith(HDF5_SUFFIXES):
        return "hdf5"
    raise SaecodecError(f"{path}: cannot tell the output format from the name; use --format hdf5|zarr2|zarr3")


def check_paths(inp, out, force: bool) -> Path:
    if not exists(inp) and not any(ch in str(inp) for ch in "*?["):
        raise SaecodecError(f"{inp}: no such file or directory")
    out = Path(out)
    if exists(out):
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
    elif exists(path):
        path.unlink()


@contextmanager
def staged(out: Path):
    """A temporary name beside ``out``, renamed to ``out`` when the block completes and
    removed when it fails or is interrupted: no half output under the output's name."""
    tmp = out.with_name(f".{out.name}.saecodec-tmp-{os.getpid()}")
    remove(tmp)
    try:
        yield tmp
        replace(tmp, out)
    except BaseException:
        remove(tmp)
        raise
    finally:
        sources.close_handles()


@contextmanager
def hdf5_file(inp, kind_in: str, tmp: Path, arrays, filters):
    """``[(array, its empty h5py dataset)]`` of the open output HDF5 file, created with
    ``filters`` (h5py create_dataset keywords, or a function of the array giving them) and
    the input's attributes, maxshape and attribute order. An array whose ``chunks`` is None
    is created contiguous (decompress restoring a contiguous original)."""
    import h5py

    from . import h5copy

    made = []

    def make(original, group, name, a):
        extra = {} if original is None else {"maxshape": original.maxshape, "track_order": h5copy.tracked(original)}
        if a.chunks is None:
            extra.pop("maxshape", None)
        d = group.create_dataset(name, shape=a.shape, dtype=np.dtype(a.dtype), chunks=a.chunks, fillvalue=a.fill,
                                 **(filters(a) if callable(filters) else filters), **extra)
        made.append((a, d))
        return d

    if kind_in == "hdf5":
        with h5py.File(inp, "r") as src:
            by_id = {src[a.name].id: a for a in arrays}

            def make_from(original, group, name):
                d = make(original, group, name, by_id[original.id])
                h5copy.copy_attrs(original, d)
                return d

            with h5py.File(tmp, "w", track_order=h5copy.root_track_order(src), libver=LIBVER) as dst:
                h5copy.copy_tree(src, dst, set(by_id), make_from)
                yield made
        return
    with h5py.File(tmp, "w", libver=LIBVER) as dst:
        if kind_in == "zarr":
            import zarr

            zarrio.zarr_to_h5(zarr.open(store=str(inp), mode="r"), dst, {a.name for a in arrays})
            for a in arrays:
                parent, _, leaf = a.name.rpartition("/")
                d = make(None, dst.require_group(parent) if parent else dst, leaf, a)
                for k, v in source_attrs(inp, kind_in, a.name).items():
                    d.attrs[k] = zarrio.h5_value(v)
        else:
            (a,) = arrays
            _nexus_skeleton(dst, a)
            make(None, dst[NEXUS_DATA.rpartition("/")[0]], "data", a)
        yield made


def _nexus_skeleton(dst, source) -> None:
    """NXentry/NXinstrument/NXdetector around a stack of detector images, with their headers
    (:mod:`.headers`), and NXdata linking to it."""
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
    from .headers import read_headers, write_nexus

    write_nexus(entry, read_headers(source.frames))


def zarr_root(inp, kind_in: str, tmp: Path, skip: set, zarr_format: int, copy_files: bool = False):
    """The output Zarr group at ``tmp`` with every object of the input except the arrays in
    ``skip``; ``copy_files``: a Zarr group of the same format is copied file by file."""
    import zarr

    src_root = zarr.open(store=str(inp), mode="r") if kind_in == "zarr" else None
    if copy_files and isinstance(src_root, zarr.Group) and src_root.metadata.zarr_format == zarr_format:
        zarrio.copy_zarr_store(inp, tmp, skip)
        return zarr.open_group(store=str(tmp), mode="r+")
    root = zarr.open_group(store=str(tmp), mode="w", zarr_format=zarr_format)
    if kind_in == "hdf5":
        import h5py

        with h5py.File(inp, "r") as src:
            zarrio.h5_to_zarr(src, root, skip, zarr_format)
    elif isinstance(src_root, zarr.Group):
        zarrio.zarr_to_zarr(src_root, root, skip)
    return root


def source_attrs(inp, kind_in: str, name: str) -> dict:
    """The attributes of array ``name`` of the input (none for detector images)."""
    if kind_in == "hdf5":
        import h5py

        with h5py.File(inp, "r") as f:
            return dict(f[name].attrs)
    if kind_in == "zarr":
        import zarr

        return dict(zarr.open_array(store=str(inp), path=name, mode="r").attrs)
    return {}
