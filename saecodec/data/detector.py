"""Detector-like SAS frames: what beamlines record, not clean centred images.

Codecs trained or judged on ``sas.py``'s clean frames fail on real ones (issue #12). Here
each frame comes from a detector geometry (pixel size, distance, wavelength, exact
2-theta q), the beam anywhere on or off the frame, Poisson counts from ~10 to ~1e6 at the
peak, flat-field and solid-angle factors, beamstop shadows, module gaps, dead and hot
pixels written as NaN or detector sentinels, and reduced frames that went negative after
background subtraction. Frame ``i`` of seed ``s`` depends only on ``(s, i)``.

I(q) dominates the cost. Isotropic and orientationally averaged models are evaluated once
per frame as a 1D profile (logarithmic grid near the beam, half a pixel fine beyond, or a
Gaussian in ln q for dq/q resolution) and interpolated log-log onto the pixels; aligned
particles use the 2D kernel on a grid coarse enough for a fixed evaluation budget,
interpolated bilinearly in log I.
"""

from __future__ import annotations

import json
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from itertools import islice

import numpy as np

from ..errors import SaecodecError
# sas sets SAS_OPENCL=none before sasmodels loads; _kernel_model has no public name yet.
from .sas import MODELS as SAS_MODELS, SimConfig, _kernel_model, _logu, sample_parameters

GAP, DEAD, HOT, BEAMSTOP = 1, 2, 4, 8  # bits of DetectorFrames.flags
UINT32_FILL = 2**32 - 1
ANISOTROPIC = frozenset({"cylinder", "core_shell_cylinder", "ellipsoid", "parallelepiped",
                         "core_shell_ellipsoid", "hollow_cylinder"})
TRAIN_MODELS = SAS_MODELS + (
    "sphere@stickyhardsphere", "core_shell_sphere@hardsphere", "fractal", "guinier_porod", "mass_surface_fractal",
    "broad_peak", "lamellar_stack_paracrystal", "poly_gauss_coil", "correlation_length", "flexible_cylinder",
    "fuzzy_sphere")
HELDOUT_MODELS = ("sphere@hayter_msa", "core_shell_ellipsoid", "hollow_cylinder", "teubner_strey", "vesicle",
                  "mass_fractal")
Ranges = tuple  # (lo, hi) or ((lo, hi), (lo, hi), ...): one pair picked at random, then a value in it


@dataclass(frozen=True)
class DetectorConfig:
    shape: tuple[int, int] = (128, 128)
    pixel_size: Ranges = (1e-4, 1e-2)  # m, square pixels, log-uniform
    wavelength: Ranges = (0.6, 12.0)  # Angstrom
    distance: Ranges = (1.0, 10.0)  # m; used only when q_max is empty
    q_max: Ranges = ((0.015, 0.6),)  # 1/A at the frame corner farthest from the beam; sets the distance
    center: Ranges = ((0.25, 0.75), (0.1, 0.9))  # beam position per axis, fraction of the frame
    models: tuple[str, ...] = TRAIN_MODELS
    oriented: float = 0.7  # P(an anisotropic particle is aligned: 2D kernel), else orientational average
    orientation_spread: tuple[float, float] = (0.0, 20.0)  # degrees of theta/phi spread of aligned particles
    polydispersity: float = 0.3
    pd_points: int = 15
    pd_types: tuple[str, ...] = ("gaussian", "schulz", "lognormal")
    mixture: float = 0.3  # P(a second population)
    mixture_models: tuple[str, ...] = ("power_law", "guinier_porod", "sphere", "poly_gauss_coil")
    mixture_weight: tuple[float, float] = (1e-3, 0.5)  # its peak relative to the first one's
    resolution: tuple[float, float] = (0.02, 0.1)  # Gaussian dq/q
    resolution_prob: float = 0.5
    intensity: Ranges = (0.3, 3e5)  # peak intensity, 1/cm
    counts: Ranges = (10.0, 1e6)  # peak counts of the scattering (direct beam apart)
    background: Ranges = (1e-6, 0.1)  # flat background / peak intensity
    efficiency: float = 0.02  # per-pixel flat-field spread
    noise: bool = True
    output: str = "float"  # float (1/cm, NaN where flagged) | int32 (-1 gap, -2 dead) | uint32 (2**32-1)
    subtract: float = 0.5  # P(a float frame is background-subtracted: negatives appear)
    beamstop: float = 0.8
    beamstop_radius: tuple[float, float] = (0.02, 0.08)  # fraction of the smaller frame side
    beamstop_rect: float = 0.3
    beamstop_arm: float = 0.4
    beamstop_transmission: tuple[float, float] = (1e-4, 1e-2)  # integer output: shadow counts
    direct_beam: tuple[float, float] = (10.0, 1e3)  # integer output without beamstop: beam peak / peak counts
    module: tuple[int, int] = (0, 0)  # module rows, columns (0: no gaps along that axis)
    gap: tuple[int, int] = (0, 0)  # gap rows, columns after each module
    gaps: float = 0.0  # P(the frame has module gaps)
    dead: tuple[float, float] = (0.0, 0.0)  # fraction of dead pixels (log-uniform when lo > 0)
    hot: tuple[float, float] = (0.0, 0.0)
    min_decades: float = 1.5  # scenes whose noise-free I spans less are drawn again
    oriented_budget: float = 4e6  # 2D kernel evaluations per aligned component


def _pick(rng, ranges, log=True) -> float:
    if np.ndim(ranges) == 2:
        ranges = ranges[rng.integers(len(ranges))]
    lo, hi = ranges
    if log and lo > 0:
        return _logu(rng, lo, hi)
    return float(rng.uniform(lo, hi))


def _pixels(rows, cols, geom):
    """qx, qy, |q| (1/A, exact 2-theta, never 0) and cos(2-theta) at pixel indices.

    |q| = 4 pi / wavelength sin(theta) with sin(theta) = r / sqrt(2 R (R + L)), R = sqrt(r^2 + L^2):
    the same as sin(atan(r / L) / 2), without its rounding at small angles.
    """
    cy, cx = geom["center"]
    p, dist = geom["pixel_size"], geom["distance"]
    y = ((np.asarray(rows, float) - cy) * p)[:, None]
    x = ((np.asarray(cols, float) - cx) * p)[None, :]
    x = np.where((x == 0) & (y == 0), 1e-6 * p, x)
    big_r = np.sqrt(x * x + y * y + dist * dist)
    k = 4 * np.pi / geom["wavelength"] / np.sqrt(2 * big_r * (big_r + dist))
    qx, qy = k * x, k * y
    return qx, qy, np.hypot(qx, qy), dist / big_r


def q_map(shape, center, pixel_size, distance, wavelength):
    """(qx, qy) maps (1/A) of a frame, as stored in each frame's metadata and the HDF5 file."""
    geom = dict(center=center, pixel_size=pixel_size, distance=distance, wavelength=wavelength)
    return _pixels(np.arange(shape[0]), np.arange(shape[1]), geom)[:2]


def _geometry(rng, cfg):
    h, w = cfg.shape
    p, lam = _pick(rng, cfg.pixel_size), _pick(rng, cfg.wavelength)
    cy, cx = _pick(rng, cfg.center, log=False) * (h - 1), _pick(rng, cfg.center, log=False) * (w - 1)
    if len(cfg.q_max):
        r = p * max(np.hypot(cy - y, cx - x) for y in (0, h - 1) for x in (0, w - 1))
        two_theta = min(2 * np.arcsin(min(_pick(rng, cfg.q_max) * lam / (4 * np.pi), 0.99)), np.radians(60))
        dist = float(r / np.tan(two_theta))
    else:
        dist = _pick(rng, cfg.distance)
    return {"center": [float(cy), float(cx)], "pixel_size": p, "distance": dist, "wavelength": lam}


def _contrast(rng):
    a = float(rng.uniform(-1, 7))
    return a, a + float(rng.choice([-1, 1]) * rng.uniform(0.5, 6))


def _params(model, rng, cfg, oriented) -> dict:
    """Physical parameters (Angstrom, 1e-6/A^2); models of sas.py come from its sampler."""
    simcfg = SimConfig(polydispersity=cfg.polydispersity, pd_points=cfg.pd_points)
    u, lu = rng.uniform, (lambda lo, hi: _logu(rng, lo, hi))
    if model in SAS_MODELS:
        p = sample_parameters(model, rng, simcfg)
    elif "@" in model:  # interacting spheres: form factor times a structure factor
        p = sample_parameters(model.split("@")[0], rng, simcfg)
        p.update(radius_effective=(p["radius"] + p.get("thickness", 0)) * u(1, 1.3), radius_effective_mode=0,
                 volfraction=u(0.01, 0.3))
        if model.endswith("@stickyhardsphere"):
            p.update(perturb=u(0.01, 0.1), stickiness=lu(0.05, 1))
        elif model.endswith("@hayter_msa"):
            p.update(charge=u(5, 40), temperature=298.0, concentration_salt=lu(1e-4, 0.1), dielectconst=78.0)
    else:
        sld, solv = _contrast(rng)
        table = {
            "fractal": lambda: dict(volfraction=0.05, radius=lu(5, 50), fractal_dim=u(1.6, 3), cor_length=lu(100, 5000),
                                    sld_block=sld, sld_solvent=solv),
            "guinier_porod": lambda: dict(rg=lu(10, 500), s=u(0, 2), porod_exp=u(2, 4.5)),
            "power_law": lambda: dict(power=u(1.5, 4.5)),
            "mass_surface_fractal": lambda: dict(fractal_dim_mass=u(1.5, 3), fractal_dim_surf=u(2, 3),
                                                 rg_cluster=lu(500, 1e4), rg_primary=lu(10, 200)),
            "mass_fractal": lambda: dict(radius=lu(5, 100), fractal_dim_mass=u(1.5, 3), cutoff_length=lu(100, 5000)),
            "broad_peak": lambda: dict(porod_scale=lu(1e-7, 1e-4), porod_exp=u(2, 4), peak_scale=lu(1, 100),
                                       correlation_length=lu(10, 200), peak_pos=lu(0.01, 0.3), width_exp=u(1, 3),
                                       shape_exp=u(1, 3)),
            "lamellar_stack_paracrystal": lambda: dict(thickness=(t := lu(10, 60)), Nlayers=int(rng.integers(3, 40)),
                                                       d_spacing=t * u(1.5, 5), sigma_d=u(0, 0.2), sld=sld,
                                                       sld_solvent=solv),
            "poly_gauss_coil": lambda: dict(i_zero=1.0, rg=lu(20, 300), polydispersity=u(1, 3)),
            "correlation_length": lambda: dict(lorentz_scale=1.0, porod_scale=lu(1e-7, 1e-4), cor_length=lu(10, 300),
                                               porod_exp=u(2, 4), lorentz_exp=u(1.5, 3)),
            "flexible_cylinder": lambda: dict(length=(n := lu(200, 5000)), kuhn_length=n * u(0.05, 0.5),
                                              radius=lu(10, 50), sld=sld, sld_solvent=solv),
            "fuzzy_sphere": lambda: dict(radius=(r := lu(20, 500)), fuzziness=r * u(0.02, 0.2), sld=sld,
                                         sld_solvent=solv, radius_pd=u(0, cfg.polydispersity)),
            "core_shell_ellipsoid": lambda: dict(radius_equat_core=lu(10, 200), x_core=lu(0.3, 3),
                                                 thick_shell=lu(5, 50), x_polar_shell=u(0.5, 2), sld_core=sld,
                                                 sld_shell=float(u(-1, 7)), sld_solvent=solv),
            "hollow_cylinder": lambda: dict(radius=lu(10, 150), thickness=lu(5, 50), length=lu(40, 2000), sld=sld,
                                            sld_solvent=solv),
            "vesicle": lambda: dict(radius=lu(50, 1000), thickness=lu(20, 80), volfraction=0.05, sld=sld,
                                    sld_solvent=solv, radius_pd=u(0, cfg.polydispersity)),
            "teubner_strey": lambda: dict(volfraction_a=u(0.2, 0.8), sld_a=sld, sld_b=solv, d=(d := lu(50, 500)),
                                          xi=d * u(0.2, 1)),
        }
        if model not in table:
            known = sorted(set(TRAIN_MODELS + HELDOUT_MODELS + ("power_law",)))
            raise SaecodecError(f"no parameter sampler for model {model!r}; known: {known}")
        p = table[model]()
    if oriented:
        p.update({"theta": u(0, 180), "phi": u(-180, 180)})
        if rng.random() < 0.5:  # partial alignment: 9x9 orientations (5x5 shows discrete streaks)
            for k in ("theta", "phi"):
                p.update({f"{k}_pd": u(*cfg.orientation_spread), f"{k}_pd_n": 9})
    spread = p.get("theta_pd_n", 1) > 1
    for k in [k for k in p if k.endswith("_pd") and k[:-3] not in ("theta", "phi")]:
        p[f"{k}_n"] = (min(cfg.pd_points, 7) if spread else cfg.pd_points) if p[k] > 0 else 1
        p[f"{k}_type"] = str(cfg.pd_types[rng.integers(len(cfg.pd_types))])
    p.update(scale=1.0, background=0.0)
    return p


def _eval(model, params, qs):
    from sasmodels.direct_model import call_kernel

    kernel = _kernel_model(model).make_kernel(qs)
    try:
        out = np.asarray(call_kernel(kernel, params), dtype=np.float64)
    finally:
        kernel.release()
    if not (np.isfinite(out).all() and out.min() >= 0 and out.max() > 0):
        raise _Redraw(model)
    return out


class _Redraw(Exception):
    pass


def _profile(model, params, q, dq, sigma, cap):
    """I at the pixels' |q| from a 1D grid of at most ``cap`` points (see the module doc)."""
    lo, hi = dq / 2, max(float(q.max()), dq)
    if sigma > 0:
        step = max(sigma / 4, (np.log(hi / lo) + 8 * sigma) / cap)
        m, n = int(np.ceil(4 * sigma / step)), int(np.ceil(np.log(hi / lo) / step)) + 1
        u = np.log(lo) + step * np.arange(-m, n + m)
        g = np.exp(-0.5 * (step * np.arange(-m, m + 1) / sigma) ** 2)
        logi = np.log(np.maximum(np.convolve(_eval(model, params, [np.exp(u)]), g / g.sum(), "valid"), 1e-300))
        u = u[m:m + n]
    else:
        qc = min(hi, 25 * dq)  # 2% log steps reach half a pixel at 25 pixels from the beam
        lin = np.linspace(qc, hi, int(min(2 * (hi - qc) / dq, cap / 2)) + 2)[1:]
        u = np.log(np.concatenate([np.geomspace(lo, qc, max(2, int(np.log(qc / lo) / 0.02) + 1)), lin]))
        logi = np.log(np.maximum(_eval(model, params, [np.exp(u)]), 1e-300))
    return np.exp(np.interp(np.log(np.maximum(q, lo)), u, logi))


def _interp_matrix(n, knots):
    j = np.clip(np.searchsorted(knots, np.arange(n), "right") - 1, 0, len(knots) - 2)
    t = (np.arange(n) - knots[j]) / (knots[j + 1] - knots[j])
    out = np.zeros((n, len(knots)))
    out[np.arange(n), j] = 1 - t
    out[np.arange(n), j + 1] += t
    return out


def _oriented(model, params, shape, geom, budget):
    h, w = shape
    npd = np.prod([v for k, v in params.items() if k.endswith("_pd_n")] or [1])
    s = max(1, int(np.ceil(np.sqrt(h * w * npd / budget))))
    ry, rx = np.unique(np.r_[np.arange(0, h, s), h - 1]), np.unique(np.r_[np.arange(0, w, s), w - 1])
    qx, qy = _pixels(ry, rx, geom)[:2]
    out = _eval(model, params, [qx.ravel(), qy.ravel()]).reshape(len(ry), len(rx))
    if s == 1:
        return out
    logi = np.log(np.maximum(out, 1e-300))
    return np.exp(_interp_matrix(h, ry) @ logi @ _interp_matrix(w, rx).T)


def _masks(rng, cfg, center):
    h, w = cfg.shape
    yy, xx = np.ogrid[:h, :w]
    flags = np.zeros((h, w), np.uint8)
    if rng.random() < cfg.gaps:
        (mh, mw), (gh, gw) = cfg.module, cfg.gap
        flags |= np.uint8(GAP) * (((yy % (mh + gh) >= mh) if mh else False) | ((xx % (mw + gw) >= mw) if mw else False))
    for bit, frac in ((DEAD, cfg.dead), (HOT, cfg.hot)):
        if frac[1] > 0:
            flags[rng.random((h, w)) < _pick(rng, frac)] |= bit
    stop = np.zeros((h, w), bool)
    if rng.random() < cfg.beamstop:
        r = rng.uniform(*cfg.beamstop_radius) * min(h, w)
        dy, dx = yy - center[0] - 0.1 * r * rng.normal(), xx - center[1] - 0.1 * r * rng.normal()
        stop = (np.maximum(abs(dy), abs(dx)) <= r) if rng.random() < cfg.beamstop_rect else (dy**2 + dx**2 <= r * r)
        if rng.random() < cfg.beamstop_arm:
            a, half = rng.uniform(0, 2 * np.pi), r * rng.uniform(0.25, 0.6)
            stop = stop | ((dx * np.cos(a) + dy * np.sin(a) >= 0) & (abs(dy * np.cos(a) - dx * np.sin(a)) <= half))
        flags[stop] |= BEAMSTOP
    return flags, stop


def _components(rng, cfg, geom, q, dq, sigma, vis, fallback):
    """Noise-free I (max 1 on visible pixels) of one or two populations, and their description."""
    comps, total = [], np.zeros(cfg.shape)
    for k in range(2 if rng.random() < cfg.mixture and not fallback else 1):
        models = cfg.mixture_models if k else ("sphere",) if fallback else cfg.models
        model = str(models[rng.integers(len(models))])
        oriented = model in ANISOTROPIC and bool(rng.random() < cfg.oriented)
        params = _params(model, rng, cfg, oriented)
        weight = 1.0 if k == 0 else _logu(rng, *cfg.mixture_weight)
        i_c = (_oriented(model, params, cfg.shape, geom, cfg.oriented_budget) if oriented else
               _profile(model, params, q, dq, sigma, 800 if model in ANISOTROPIC else 4000))
        total += weight * i_c / i_c[vis].max()
        comps.append({"model": model, "params": params, "oriented": oriented, "weight": weight})
    return comps, total / total[vis].max()


def _scene(rng, cfg):
    """Geometry, masks and noise-free I, drawn again while I is invalid or spans < min_decades."""
    h, w = cfg.shape
    for attempt in range(12):
        geom = _geometry(rng, cfg)
        pix = _pixels(np.arange(h), np.arange(w), geom)
        dq = 2 * np.pi / geom["wavelength"] * geom["pixel_size"] / geom["distance"]
        sigma = float(rng.uniform(*cfg.resolution)) if rng.random() < cfg.resolution_prob else 0.0
        flags, stop = _masks(rng, cfg, geom["center"])
        vis = flags == 0 if (flags == 0).any() else np.ones((h, w), bool)
        try:
            comps, total = _components(rng, cfg, geom, pix[2], dq, sigma, vis, fallback=attempt == 11)
        except _Redraw:  # a sticky or charged structure factor outside its valid range
            continue
        if attempt == 11 or total[vis].min() * 10**cfg.min_decades <= 1:
            return geom, pix, sigma, flags, stop, vis, comps, total


def detector_frame(seed: int, index: int, cfg: DetectorConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """Frame ``index`` of ``seed``: values (cfg.output dtype), mask bit flags (uint8), metadata."""
    rng = np.random.default_rng([seed, index])
    h, w = cfg.shape
    geom, (qx, qy, q, cos2t), sigma, flags, stop, vis, comps, total = _scene(rng, cfg)
    peak_i, peak_c = _pick(rng, cfg.intensity), _pick(rng, cfg.counts)
    intensity = total * (peak_i / total[vis].max())
    bkg = peak_i * _pick(rng, cfg.background)
    gain = cos2t**3 * (np.clip(1 + cfg.efficiency * rng.standard_normal((h, w)), 0.5, 1.5) if cfg.efficiency else 1)
    k_counts = peak_c / (intensity * gain)[vis].max()  # counts per (1/cm) on a normal-incidence pixel
    mu = k_counts * gain * (intensity + bkg)
    meta = {"model": "+".join(c["model"] for c in comps), "components": comps, **geom,
            "q_min": float(q.min()), "q_max": float(q.max()), "resolution": sigma, "peak_intensity": peak_i,
            "peak_counts": peak_c, "counts_per_unit": float(k_counts), "background": bkg, "subtracted": False}
    if cfg.output == "float":
        meta["subtracted"] = bool(rng.random() < cfg.subtract)
        if not cfg.noise:
            out = intensity + (0 if meta["subtracted"] else bkg)
        else:
            out = rng.poisson(mu) / (k_counts * gain)
            if meta["subtracted"]:
                t = rng.uniform(0.5, 2.0)
                out -= rng.poisson(k_counts * gain * bkg * t) / (t * k_counts * gain)
        out = out.astype(np.float32)
        out[flags != 0] = np.nan
        return out, flags, meta
    mu[stop] *= _logu(rng, *cfg.beamstop_transmission)
    if not stop.any() and cfg.direct_beam[1] > 0:
        meta["direct_beam"] = peak_c * _logu(rng, *cfg.direct_beam)
        s2 = 2 * rng.uniform(0.7, 2.5) ** 2
        yy, xx = np.ogrid[:h, :w]
        mu += meta["direct_beam"] * np.exp(-((yy - geom["center"][0]) ** 2 + (xx - geom["center"][1]) ** 2) / s2)
    top = np.iinfo(cfg.output).max - 1
    counts = rng.poisson(np.minimum(mu, top)) if cfg.noise else np.rint(np.minimum(mu, top))
    hot = (flags & HOT) != 0
    counts[hot] = rng.integers(10**5, 10**7, int(hot.sum()))
    out = np.minimum(counts, top).astype(cfg.output)
    if cfg.output == "int32":
        out[(flags & GAP) != 0] = -1
        out[(flags & DEAD) != 0] = -2
    else:
        out[(flags & (GAP | DEAD)) != 0] = UINT32_FILL
    return out, flags, meta


def _work(args):
    seed, start, stop, cfg = args
    return [detector_frame(seed, i, cfg) for i in range(start, stop)]


def _config(cfg) -> DetectorConfig:
    cfg = preset(cfg) if isinstance(cfg, str) else (cfg or DetectorConfig())
    if cfg.output not in ("float", "int32", "uint32"):
        raise SaecodecError(f"DetectorConfig.output must be float, int32 or uint32, not {cfg.output!r}")
    if min(cfg.shape) < 2 or len(cfg.shape) != 2:
        raise SaecodecError(f"DetectorConfig.shape must be two sizes of at least 2, not {cfg.shape}")
    return cfg


def iter_detector(n: int, seed: int = 0, cfg=None, workers: int | None = None, progress: bool = True):
    """Yield ``(frame, flags, meta)`` for frames 0..n-1 in order, with a bounded number in flight."""
    from tqdm.auto import tqdm

    cfg = _config(cfg)
    workers = workers or os.cpu_count() or 1
    for name in set(cfg.models) | set(cfg.mixture_models if cfg.mixture > 0 else ()) | {"sphere"}:
        _kernel_model(name)  # compiled once, before the workers fork
    block = max(1, min(16, 2**21 // (cfg.shape[0] * cfg.shape[1])))
    jobs = [(seed, s, min(s + block, n), cfg) for s in range(0, n, block)]
    with tqdm(total=n, desc="simulate", unit="frame", disable=not progress) as bar:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                for item in _work(job):
                    bar.update()
                    yield item
            return
        import multiprocessing as mp

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            jobs_left = iter(jobs)
            pending = deque(pool.submit(_work, job) for job in islice(jobs_left, 2 * workers))
            while pending:
                done = pending.popleft().result()
                for job in islice(jobs_left, 1):
                    pending.append(pool.submit(_work, job))
                for item in done:
                    bar.update()
                    yield item


@dataclass
class DetectorFrames:
    frames: np.ndarray  # (N, h, w) float32, int32 or uint32
    flags: np.ndarray  # (N, h, w) uint8: GAP | DEAD | HOT | BEAMSTOP
    meta: list = field(default_factory=list)  # per frame: model, components, geometry, counts level, ...
    config: DetectorConfig = field(default_factory=DetectorConfig)
    seed: int = 0

    @property
    def mask(self) -> np.ndarray:
        """True where a pixel is not a valid measurement (NaN or sentinel, hot, beamstop shadow)."""
        return self.flags != 0

    def q(self, i: int):
        m = self.meta[i]
        return q_map(self.frames.shape[1:], m["center"], m["pixel_size"], m["distance"], m["wavelength"])


def simulate_detector(n: int, seed: int = 0, cfg=None, workers: int | None = None,
                      progress: bool = True) -> DetectorFrames:
    """``n`` frames of ``cfg`` (a DetectorConfig or a preset name) with ``workers`` processes."""
    cfg = _config(cfg)
    out = DetectorFrames(np.empty((n, *cfg.shape), np.dtype(cfg.output if cfg.output != "float" else "float32")),
                         np.empty((n, *cfg.shape), np.uint8), [None] * n, cfg, seed)
    for i, (frame, flags, meta) in enumerate(iter_detector(n, seed, cfg, workers, progress)):
        out.frames[i], out.flags[i], out.meta[i] = frame, flags, meta
    return out


def write_h5(path, data: DetectorFrames | None = None, *, n: int = 0, seed: int = 0, cfg=None,
             workers: int | None = None, progress: bool = True, dataset: str = "frames") -> None:
    """Frames (dataset ``frames``, read by ``sas.read_h5``), mask bits and per-frame geometry.

    Pass ``data`` from simulate_detector, or ``n, seed, cfg`` to stream frames to disk
    without holding them all in memory (1024x1024 sets).
    """
    import h5py

    if data is not None:
        n, seed, cfg = len(data.frames), data.seed, data.config
        items = zip(data.frames, data.flags, data.meta)
    else:
        cfg = _config(cfg)
        items = iter_detector(n, seed, cfg, workers, progress)
    dtype = "float32" if cfg.output == "float" else cfg.output
    str_t = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        d = f.create_dataset(dataset, (n, *cfg.shape), dtype, chunks=(1, *cfg.shape) if n else None)
        d.attrs["units"] = "1/cm" if cfg.output == "float" else "counts"
        d.attrs["fill"] = {"float": "NaN", "int32": "-1 gap, -2 dead",
                           "uint32": f"{UINT32_FILL} gap or dead"}[cfg.output]
        m = f.create_dataset("mask", (n, *cfg.shape), "uint8", chunks=(1, *cfg.shape) if n else None,
                             compression="gzip" if n else None)
        m.attrs["bits"] = json.dumps({"gap": GAP, "dead": DEAD, "hot": HOT, "beamstop": BEAMSTOP})
        geo = {k: f.create_dataset(k, (n, 2) if k == "beam_center" else (n,), "float64")
               for k in ("beam_center", "pixel_size", "distance", "wavelength")}
        f["beam_center"].attrs["units"] = "pixels (row, column), may lie off the frame"
        f["pixel_size"].attrs["units"], f["distance"].attrs["units"], f["wavelength"].attrs["units"] = "m", "m", "A"
        models, metas = [], []
        for i, (frame, flags, meta) in enumerate(items):
            d[i], m[i] = frame, flags
            geo["beam_center"][i] = meta["center"]
            for k in ("pixel_size", "distance", "wavelength"):
                geo[k][i] = meta[k]
            models.append(meta["model"])
            metas.append(json.dumps(meta, sort_keys=True))
        f.create_dataset("model", data=np.array(models, dtype=object), dtype=str_t)
        f.create_dataset("meta", data=np.array(metas, dtype=object), dtype=str_t)
        f.attrs.update(seed=seed, generator="saecodec.data.detector", config=json.dumps(asdict(cfg), sort_keys=True),
                       q="|q| = 4 pi / wavelength sin(atan(r / distance) / 2), r from beam_center; (qx, qy) along it")


def read_q(path, i: int):
    """(qx, qy) maps of frame ``i`` of a file written by write_h5, from its stored geometry."""
    import h5py

    with h5py.File(path, "r") as f:
        return q_map(f["mask"].shape[1:], f["beam_center"][i], float(f["pixel_size"][i]),
                     float(f["distance"][i]), float(f["wavelength"][i]))


_SANS = dict(pixel_size=(4e-3, 1e-2), wavelength=(4.5, 12.0), distance=(1.0, 20.0), q_max=(),
             center=((0.3, 0.7),), resolution=(0.03, 0.12), resolution_prob=0.9, counts=(30.0, 1e6),
             dead=(0.0, 1e-3))
_RAW = dict(q_max=(), wavelength=(0.6, 1.6), resolution_prob=0.0, beamstop=0.5, beamstop_arm=0.8, gaps=1.0,
            direct_beam=(30.0, 3e4),
            center=((0.2, 0.8), (0.0, 1.0)), dead=(1e-5, 1e-4), hot=(1e-6, 1e-5), subtract=0.0)
PRESETS = {
    **{f"sans-reduced-{s}": DetectorConfig(shape=(s, s), **_SANS) for s in (64, 80, 128, 192)},
    "saxs-pilatus": DetectorConfig(shape=(619, 487), pixel_size=(172e-6, 172e-6), distance=(0.8, 7.0),
                                   output="int32", module=(195, 487), gap=(17, 7), **_RAW),
    "eiger-1m": DetectorConfig(shape=(1024, 1024), pixel_size=(75e-6, 75e-6), distance=(0.5, 5.0),
                               output="uint32", module=(512, 1030), gap=(38, 10), **_RAW),
    "train-mix": DetectorConfig(gaps=0.2, module=(48, 64), gap=(3, 2), dead=(0.0, 1e-3)),
    "heldout-mix": DetectorConfig(models=HELDOUT_MODELS, mixture_models=("mass_fractal", "vesicle"),
                                  wavelength=(0.6, 6.0), q_max=((0.005, 0.015), (0.6, 1.0)),
                                  center=((-0.15, 0.1), (0.9, 1.15)), gaps=0.2, module=(40, 56), gap=(4, 3),
                                  dead=(0.0, 1e-3), beamstop_rect=0.6),
}
PRESETS["mixed"] = PRESETS["train-mix"]


def preset(name: str, **overrides) -> DetectorConfig:
    """A named DetectorConfig, e.g. ``preset("train-mix", shape=(64, 64))``; see PRESETS."""
    if name not in PRESETS:
        raise SaecodecError(f"unknown detector preset {name!r}; known: {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)
