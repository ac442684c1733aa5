"""What the bench compresses: a stack of frames, as intensities or as their log10."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SaecodecError
from ..models.transforms import Transform

# The log domain of intensity data: asinh(I / 1e-3) / ln 10, log10-like above 1e-3, defined at 0 and below.
LOG_OF_INTENSITY = Transform("asinh", 1e-3)
LOG_FLOOR = 1e-6


@dataclass
class Dataset:
    values: np.ndarray  # what is compressed (N, h, w): float32, or integer counts in their own type
    domain: str  # "intensity" or "log"
    name: str
    q: np.ndarray | None = None  # (N, h, w) |q| per pixel, None: pixel radius
    background: np.ndarray | None = None
    sim: object = None  # the Simulation, for fits

    def intensity(self, v: np.ndarray) -> np.ndarray:
        return 10.0 ** v.astype(np.float64) if self.domain == "log" else v.astype(np.float64)

    def log(self, v: np.ndarray) -> np.ndarray:
        if self.domain == "log":
            return v.astype(np.float64)
        return LOG_OF_INTENSITY.to_u(v)

    def from_log(self, u: np.ndarray) -> np.ndarray:
        return u.astype(np.float32) if self.domain == "log" else LOG_OF_INTENSITY.from_u(u).astype(np.float32)


def to_domain(intensity: np.ndarray, domain: str) -> np.ndarray:
    if domain == "log":
        return np.log10(np.maximum(intensity, LOG_FLOOR)).astype(np.float32)
    return intensity.astype(np.float32)


def simulated_dataset(n: int, seed: int, domain: str, progress: bool = True) -> Dataset:
    from ..data import sas

    sim = sas.simulate(n, seed=seed, progress=progress)
    q = np.hypot(sim.qx[:, None, :], sim.qy[:, :, None])
    bg = np.array([p["background"] for p in sim.params]) if sim.params else None
    return Dataset(to_domain(sim.frames, domain), domain, f"simulated held-out, seed {seed}, {n} frames", q, bg, sim)


def file_dataset(path: str, dataset: str, domain: str | None, limit: int | None) -> Dataset:
    """Frames of an HDF5 file. Integer counts stay integers in their own type (``domain``
    None or "intensity"): a detector's counts are what the codec stores, not float32 copies
    of them. ``domain`` None: "intensity" for integers, "log" for floats."""
    import h5py

    with h5py.File(path, "r") as f:
        if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
            raise SaecodecError(f"{path}: no dataset {dataset!r}; name it with --dataset")
        d = f[dataset]
        if d.ndim < 2 or d.dtype.kind not in "fiu":
            raise SaecodecError(f"{path}:{dataset} is {d.dtype} of shape {d.shape}; bench needs a stack of 2D frames")
        x = d[:limit] if d.ndim > 2 else d[...][None]
    x = x.reshape((-1,) + x.shape[-2:])
    counts = x.dtype.kind in "iu"
    domain = domain or ("intensity" if counts else "log")
    values = x if counts and domain == "intensity" else to_domain(x, domain)
    return Dataset(values, domain, f"{path}:{dataset}, {len(x)} frames" + (f", {x.dtype} counts" if counts else ""))
