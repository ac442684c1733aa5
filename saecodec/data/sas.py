"""Random 2D small-angle scattering frames simulated with sasmodels.

Each frame draws a scattering model, its parameters and an instrument configuration:

* models: sphere, core_shell_sphere, cylinder, core_shell_cylinder, ellipsoid,
  parallelepiped (theta, phi and psi), lamellar and sphere@hardsphere (a structure-
  factor product); sizes log-uniform, random contrasts, size polydispersity;
* instrument: the detector spans |q| up to ``q_max`` (log-uniform in ``q_max_range``,
  default 0.03-0.6 1/A: SANS from long to short detector distances), square pixels,
  beam centre offset by up to ``center_jitter`` of the half-width;
* scale log-uniform in 1e-3..1 and a flat background log-uniform in 1e-3..1 cm^-1;
* optional Poisson counting noise and a circular beamstop mask.

Frames are reproducible: frame ``i`` of seed ``s`` depends only on ``(s, i)``, not on
the number of worker processes.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

os.environ.setdefault("SAS_OPENCL", "none")
# gcc-built kernels run about twice as fast as the bundled tinycc ones, and tinycc
# fails where its C runtime is incomplete.
if shutil.which("cc"):
    os.environ.setdefault("SAS_COMPILER", "unix")

MODELS = ("sphere", "core_shell_sphere", "cylinder", "core_shell_cylinder", "ellipsoid",
          "parallelepiped", "lamellar", "sphere@hardsphere")


@dataclass
class SimConfig:
    shape: tuple[int, int] = (64, 64)
    models: tuple[str, ...] = MODELS
    q_max_range: tuple[float, float] = (0.03, 0.6)
    center_jitter: float = 0.25
    polydispersity: float = 0.3  # largest relative width of the size distribution
    pd_points: int = 15
    noise: bool = False
    flux_range: tuple[float, float] = (1e3, 1e6)  # counts per (cm^-1) per pixel, log-uniform
    beamstop: bool = False
    beamstop_radius: tuple[float, float] = (0.02, 0.08)  # fraction of the detector width


def log_uniform(rng, lo, hi) -> float:
    """A value between ``lo`` and ``hi`` > 0, uniform in its logarithm (sizes, fluxes, scales)."""
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _sld(rng):
    return float(rng.uniform(-1, 7))


def _contrast_pair(rng):
    a = _sld(rng)
    b = a + float(rng.choice([-1, 1]) * rng.uniform(0.5, 6))
    return a, b


def _orientation(rng, psi=False):
    out = {"theta": float(rng.uniform(0, 180)), "phi": float(rng.uniform(-180, 180))}
    if psi:
        out["psi"] = float(rng.uniform(-180, 180))
    return out


def _pd(rng, cfg: SimConfig, *names):
    out = {}
    for n in names:
        width = float(rng.uniform(0, cfg.polydispersity)) if rng.random() < 0.7 else 0.0
        out[f"{n}_pd"] = width
        out[f"{n}_pd_n"] = cfg.pd_points if width > 0 else 1
    return out


def sample_parameters(model: str, rng, cfg: SimConfig) -> dict:
    """Physical parameters for one frame of ``model`` (sizes in Angstrom, SLDs in 1e-6/A^2)."""
    if model == "sphere":
        sld, solv = _contrast_pair(rng)
        p = {"radius": log_uniform(rng, 10, 600), "sld": sld, "sld_solvent": solv, **_pd(rng, cfg, "radius")}
    elif model == "core_shell_sphere":
        core, solv = _contrast_pair(rng)
        p = {"radius": log_uniform(rng, 10, 400), "thickness": log_uniform(rng, 5, 100), "sld_core": core,
             "sld_shell": _sld(rng), "sld_solvent": solv, **_pd(rng, cfg, "radius")}
    elif model == "cylinder":
        sld, solv = _contrast_pair(rng)
        p = {"radius": log_uniform(rng, 10, 200), "length": log_uniform(rng, 40, 2000), "sld": sld, "sld_solvent": solv,
             **_orientation(rng), **_pd(rng, cfg, "radius")}
    elif model == "core_shell_cylinder":
        core, solv = _contrast_pair(rng)
        p = {"radius": log_uniform(rng, 10, 150), "thickness": log_uniform(rng, 5, 60),
             "length": log_uniform(rng, 40, 1500), "sld_core": core, "sld_shell": _sld(rng), "sld_solvent": solv,
             **_orientation(rng), **_pd(rng, cfg, "radius")}
    elif model == "ellipsoid":
        sld, solv = _contrast_pair(rng)
        p = {"radius_polar": log_uniform(rng, 10, 600), "radius_equatorial": log_uniform(rng, 10, 400), "sld": sld,
             "sld_solvent": solv, **_orientation(rng), **_pd(rng, cfg, "radius_equatorial")}
    elif model == "parallelepiped":
        sld, solv = _contrast_pair(rng)
        p = {"length_a": log_uniform(rng, 10, 200), "length_b": log_uniform(rng, 20, 400),
             "length_c": log_uniform(rng, 40, 1000), "sld": sld, "sld_solvent": solv, **_orientation(rng, psi=True)}
    elif model == "lamellar":
        sld, solv = _contrast_pair(rng)
        p = {"thickness": log_uniform(rng, 10, 300), "sld": sld, "sld_solvent": solv, **_pd(rng, cfg, "thickness")}
    elif model == "sphere@hardsphere":
        sld, solv = _contrast_pair(rng)
        r = log_uniform(rng, 10, 400)
        p = {"radius": r, "sld": sld, "sld_solvent": solv, "volfraction": float(rng.uniform(0.01, 0.45)),
             "radius_effective": r * float(rng.uniform(1.0, 1.5)), "radius_effective_mode": 0,
             **_pd(rng, cfg, "radius")}
    else:
        raise ValueError(f"no parameter sampler for sasmodels model {model!r}; known: {MODELS}")
    p["scale"] = log_uniform(rng, 1e-3, 1.0)
    p["background"] = log_uniform(rng, 1e-3, 1.0)
    return p


def detector_grid(rng, cfg: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """1D qx and qy axes of the detector (1/A), never containing q = 0 exactly."""
    h, w = cfg.shape
    q_max = log_uniform(rng, *cfg.q_max_range)
    dq = q_max / (max(h, w) / 2)
    cy = (h - 1) / 2 + rng.uniform(-1, 1) * cfg.center_jitter * h / 2
    cx = (w - 1) / 2 + rng.uniform(-1, 1) * cfg.center_jitter * w / 2
    qy = (np.arange(h) - cy) * dq
    qx = (np.arange(w) - cx) * dq
    for q in (qx, qy):
        q[np.abs(q) < 1e-3 * dq] = 1e-3 * dq
    return qx, qy


_KERNELS: dict = {}


def kernel_model(name: str):
    """sasmodels' compiled model ``name`` (double precision), loaded once per process."""
    if name not in _KERNELS:
        from sasmodels.core import load_model

        _KERNELS[name] = load_model(name, dtype="double")
    return _KERNELS[name]


def simulate_one(seed: int, index: int, cfg: SimConfig) -> tuple[np.ndarray, dict]:
    """Frame ``index`` of ``seed``: intensities (h, w) float64 and its description."""
    from sasmodels.direct_model import call_kernel

    rng = np.random.default_rng([seed, index])
    model = str(cfg.models[rng.integers(len(cfg.models))])
    params = sample_parameters(model, rng, cfg)
    qx, qy = detector_grid(rng, cfg)
    QX, QY = np.meshgrid(qx, qy)
    kernel = kernel_model(model).make_kernel([QX.ravel(), QY.ravel()])
    try:
        intensity = np.asarray(call_kernel(kernel, params), dtype=np.float64).reshape(cfg.shape)
    finally:
        kernel.release()
    info = {"model": model, "params": params, "q_max": float(np.abs(np.concatenate([qx, qy])).max())}
    if cfg.noise:
        flux = log_uniform(rng, *cfg.flux_range)
        intensity = rng.poisson(np.clip(intensity, 0, None) * flux) / flux
        info["flux"] = flux
    mask = np.zeros(cfg.shape, dtype=bool)
    if cfg.beamstop:
        r = rng.uniform(*cfg.beamstop_radius) * cfg.shape[1]
        iy, ix = np.argmin(np.abs(qy)), np.argmin(np.abs(qx))
        yy, xx = np.mgrid[:cfg.shape[0], :cfg.shape[1]]
        mask = (yy - iy) ** 2 + (xx - ix) ** 2 <= r * r
    return intensity, {**info, "qx": qx, "qy": qy, "mask": mask}


def _work(args):
    seed, start, stop, cfg = args
    return [simulate_one(seed, i, cfg) for i in range(start, stop)]


@dataclass
class Simulation:
    frames: np.ndarray  # (N, h, w) float32
    qx: np.ndarray  # (N, w)
    qy: np.ndarray  # (N, h)
    mask: np.ndarray  # (N, h, w) bool
    models: list = field(default_factory=list)
    params: list = field(default_factory=list)
    config: SimConfig = field(default_factory=SimConfig)
    seed: int = 0


def simulate(n: int, seed: int = 0, cfg: SimConfig | None = None, workers: int | None = None,
             progress: bool = True, block: int = 64) -> Simulation:
    """Simulate ``n`` frames with all cores (``workers`` processes)."""
    from tqdm.auto import tqdm

    cfg = cfg or SimConfig()
    workers = workers or os.cpu_count() or 1
    for name in set(cfg.models):  # compile each model once, before the workers fork
        kernel_model(name)
    jobs = [(seed, s, min(s + block, n), cfg) for s in range(0, n, block)]
    results = []
    with tqdm(total=n, desc="simulate", unit="frame", disable=not progress) as bar:
        if workers == 1 or len(jobs) == 1:
            for job in jobs:
                results.append(_work(job))
                bar.update(job[2] - job[1])
        else:
            import multiprocessing as mp

            ctx = mp.get_context("fork")
            with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                for job, res in zip(jobs, pool.map(_work, jobs)):
                    results.append(res)
                    bar.update(job[2] - job[1])
    flat = [r for chunk in results for r in chunk]
    h, w = cfg.shape
    sim = Simulation(
        frames=np.stack([f for f, _ in flat]).astype(np.float32) if flat else np.zeros((0, h, w), np.float32),
        qx=np.stack([i["qx"] for _, i in flat]) if flat else np.zeros((0, w)),
        qy=np.stack([i["qy"] for _, i in flat]) if flat else np.zeros((0, h)),
        mask=np.stack([i["mask"] for _, i in flat]) if flat else np.zeros((0, h, w), bool),
        models=[i["model"] for _, i in flat],
        params=[i["params"] for _, i in flat],
        config=cfg,
        seed=seed,
    )
    return sim


def write_h5(sim: Simulation, path, *, dataset: str = "frames") -> None:
    """Frames as float32 (N, h, w) plus each frame's q axes, mask, model and parameters."""
    import h5py

    with h5py.File(path, "w") as f:
        d = f.create_dataset(dataset, data=sim.frames, chunks=(1,) + sim.frames.shape[1:] if len(sim.frames) else None)
        d.attrs["units"] = "1/cm"
        f.create_dataset("qx", data=sim.qx)
        f.create_dataset("qy", data=sim.qy)
        f.create_dataset("mask", data=sim.mask)
        str_t = h5py.string_dtype()
        f.create_dataset("model", data=np.array(sim.models, dtype=object), dtype=str_t)
        f.create_dataset("params", data=np.array([json.dumps(p, sort_keys=True) for p in sim.params], dtype=object),
                         dtype=str_t)
        f.attrs["seed"] = sim.seed
        f.attrs["generator"] = "saecodec.data.sas"
        f.attrs["config"] = json.dumps(asdict(sim.config), sort_keys=True)


def read_h5(path, dataset: str = "frames", limit: int | None = None) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as f:
        d = f[dataset]
        return d[: limit if limit is not None else len(d)]
