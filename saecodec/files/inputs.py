"""Which arrays of an input get compressed: its kind (HDF5/NeXus, Zarr, detector images)
and, by default, the frames a facility file holds (NXdetector data, else NXdata signals,
else every numeric array of frames).
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from ..errors import SaecodecError
from .sources import H5Source, ImageSource, Source, ZarrSource, import_fabio

IMAGE_SUFFIXES = (".tif", ".tiff", ".cbf", ".edf", ".edf.gz", ".cbf.gz", ".img", ".mccd")
MIN_FRAME = 8  # smaller trailing dims (3x3 matrices...) are not images


def input_kind(path) -> str:
    p = Path(path)
    s = str(path)
    if any(ch in s for ch in "*?["):
        return "images"
    if not p.exists():
        raise SaecodecError(f"{path}: no such file or directory")
    if p.is_dir():
        if any((p / m).exists() for m in (".zgroup", ".zarray", "zarr.json")):
            return "zarr"
        if image_files(p):
            return "images"
        raise SaecodecError(f"{path}: a directory that is neither a Zarr store nor holds detector images")
    import h5py

    if h5py.is_hdf5(s):
        return "hdf5"
    if s.lower().endswith(IMAGE_SUFFIXES):
        return "images"
    raise SaecodecError(f"{path}: not an HDF5 file, a Zarr store or a detector image ({', '.join(IMAGE_SUFFIXES)})")


def open_hdf5(path):
    """``path`` opened read-only, or a clear error naming it (truncated, not HDF5, no permission)."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise SaecodecError(f"{path}: cannot be read as HDF5 ({' '.join(str(e).split())})") from None


def image_files(path) -> list[str]:
    s = str(path)
    if any(ch in s for ch in "*?["):
        files = glob.glob(s)
    elif Path(s).is_dir():
        files = [str(p) for p in Path(s).iterdir() if p.is_file()]
    else:
        files = [s]
    return sorted(f for f in files if f.lower().endswith(IMAGE_SUFFIXES))


def _numeric(dtype) -> bool:
    return np.dtype(dtype).kind in "fiu"


def _frames(shape) -> bool:
    return len(shape) >= 2 and min(shape[-2:]) >= MIN_FRAME and int(np.prod(shape)) > 0


def _nx_class(obj) -> str:
    v = obj.attrs.get("NX_class", b"")
    return (v.decode() if isinstance(v, bytes) else str(v))


def hdf5_targets(path, names=None) -> list[H5Source]:
    """``names``, or every NXdetector's ``data``, else every NXdata's signal, else every
    numeric dataset of 2 or more dims with frames of at least 8x8. Hard links to one
    dataset give one target (the first name h5py visits)."""
    import h5py

    with open_hdf5(path) as f:
        if names:
            found = []
            for n in names:
                obj = f.get(n)
                if not isinstance(obj, h5py.Dataset):
                    raise SaecodecError(f"{path}: no dataset {n!r}")
                if obj.file.filename != f.filename:
                    raise SaecodecError(f"{path}:{n} is an external link to {obj.file.filename}; compress that file")
                if not _numeric(obj.dtype) or obj.ndim < 2:
                    raise SaecodecError(f"{path}:{n}: saecodec compresses numeric arrays of 2 or more dims, "
                                        f"this one is {obj.dtype} {obj.shape}")
                found.append(obj)
        else:
            visited: dict = {}
            f.visititems(lambda n, o: visited.setdefault(o.id, (n, o)) and None)
            groups = [o for n, o in visited.values() if isinstance(o, h5py.Group)]
            found = [g["data"] for g in groups if _nx_class(g) == "NXdetector"
                     and isinstance(g.get("data", getlink=True), h5py.HardLink) and isinstance(g["data"], h5py.Dataset)]
            if not found:
                for g in groups:
                    sig = g.attrs.get("signal") if _nx_class(g) == "NXdata" else None
                    sig = sig.decode() if isinstance(sig, bytes) else sig
                    if isinstance(sig, str) and isinstance(g.get(sig, getlink=True), h5py.HardLink) and \
                            isinstance(g[sig], h5py.Dataset):
                        found.append(g[sig])
            if not found:
                found = [o for n, o in visited.values() if isinstance(o, h5py.Dataset)]
            found = [d for d in found if _numeric(d.dtype) and _frames(d.shape)]
        out, seen = [], set()
        for d in found:
            if d.id in seen:
                continue
            seen.add(d.id)
            fill = d.fillvalue
            out.append(H5Source(str(path), d.name.lstrip("/"), tuple(d.shape), d.dtype.str, d.chunks,
                                fill.item() if hasattr(fill, "item") else fill))
        return out


def zarr_targets(path, names=None) -> list[ZarrSource]:
    import zarr

    node = zarr.open(store=str(path), mode="r")
    if isinstance(node, zarr.Array):
        arrays = {"": node}
    else:
        arrays = {k: v for k, v in node.members(max_depth=None) if isinstance(v, zarr.Array)}
    if names:
        missing = [n for n in names if n.strip("/") not in arrays]
        if missing:
            raise SaecodecError(f"{path}: no array {missing[0]!r} (arrays: {', '.join(sorted(arrays)) or 'none'})")
        picked = {n.strip("/"): arrays[n.strip("/")] for n in names}
        bad = [n for n, a in picked.items() if not _numeric(a.dtype) or a.ndim < 2]
        if bad:
            raise SaecodecError(f"{path}:{bad[0]}: saecodec compresses numeric arrays of 2 or more dims")
    else:
        picked = {n: a for n, a in arrays.items() if _numeric(a.dtype) and _frames(a.shape)}
    return [ZarrSource(str(path), n, tuple(a.shape), np.dtype(a.dtype).str, tuple(a.chunks),
                       a.fill_value.item() if hasattr(a.fill_value, "item") else a.fill_value)
            for n, a in sorted(picked.items())]


def image_stack(path) -> ImageSource:
    fabio = import_fabio()

    files = image_files(path)
    if not files:
        raise SaecodecError(f"{path}: no detector images ({', '.join(IMAGE_SUFFIXES)})")
    frames, shape, dtype = [], None, None
    for fname in files:
        try:
            with fabio.open(fname) as img:
                n = max(1, int(getattr(img, "nframes", 1) or 1))
                s, dt = img.data.shape, img.data.dtype
        except Exception as e:  # noqa: BLE001 - fabio raises many kinds
            raise SaecodecError(f"{fname}: cannot read the image ({e})") from None
        if shape is None:
            shape, dtype = s, dt
        elif (s, dt) != (shape, dtype):
            raise SaecodecError(f"{fname}: {dt} frame of shape {s}; {files[0]} is {dtype} {shape}")
        frames += [(fname, k) for k in range(n)]
    if not _numeric(dtype) or len(shape) != 2:
        raise SaecodecError(f"{files[0]}: saecodec compresses numeric 2D frames, got {dtype} {shape}")
    return ImageSource(str(path), "", (len(frames),) + tuple(shape), np.dtype(dtype).str, None, 0, tuple(frames))


def targets(path, names=None) -> tuple[str, list[Source]]:
    kind = input_kind(path)
    if kind == "hdf5":
        return kind, hdf5_targets(path, names)
    if kind == "zarr":
        return kind, zarr_targets(path, names)
    if names:
        raise SaecodecError("--dataset applies to HDF5 and Zarr inputs, not to images")
    return kind, [image_stack(path)]
