"""What the sample scatters: model parameters drawn per frame, and I(q) on the pixels.

Isotropic and orientationally averaged models are evaluated once per frame as a 1D
profile (logarithmic grid near the beam, half a pixel fine beyond, or a Gaussian in ln q
for dq/q resolution) and interpolated log-log onto the pixels: I(q) dominates the cost.
Aligned particles use the 2D kernel on a grid coarse enough for a fixed evaluation
budget, interpolated bilinearly in log I.
"""

from __future__ import annotations

import numpy as np

from ...errors import SaecodecError
# sas sets SAS_OPENCL=none before sasmodels loads.
from ..sas import MODELS as SAS_MODELS, SimConfig, kernel_model, log_uniform, sample_parameters
from .config import ANISOTROPIC, HELDOUT_MODELS, TRAIN_MODELS
from .geometry import pixels


def contrast(rng):
    """Particle and solvent SLDs (1e-6/A^2) at least 0.5 apart."""
    a = float(rng.uniform(-1, 7))
    return a, a + float(rng.choice([-1, 1]) * rng.uniform(0.5, 6))


def sample_params(model, rng, cfg, oriented) -> dict:
    """Physical parameters (Angstrom, 1e-6/A^2); models of sas.py come from its sampler."""
    simcfg = SimConfig(polydispersity=cfg.polydispersity, pd_points=cfg.pd_points)
    u, lu = rng.uniform, (lambda lo, hi: log_uniform(rng, lo, hi))
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
        sld, solv = contrast(rng)
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


def evaluate(model, params, qs):
    """sasmodels' I at ``qs`` ([q] or [qx, qy]); Redraw when it is not a valid intensity."""
    from sasmodels.direct_model import call_kernel

    kernel = kernel_model(model).make_kernel(qs)
    try:
        out = np.asarray(call_kernel(kernel, params), dtype=np.float64)
    finally:
        kernel.release()
    if not (np.isfinite(out).all() and out.min() >= 0 and out.max() > 0):
        raise Redraw(model)
    return out


class Redraw(Exception):
    """A model's I(q) is not finite and positive for these parameters: the scene is drawn again."""


def profile(model, params, q, dq, sigma, cap):
    """I at the pixels' |q| from a 1D grid of at most ``cap`` points (see the module doc)."""
    lo, hi = dq / 2, max(float(q.max()), dq)
    if sigma > 0:
        step = max(sigma / 4, (np.log(hi / lo) + 8 * sigma) / cap)
        m, n = int(np.ceil(4 * sigma / step)), int(np.ceil(np.log(hi / lo) / step)) + 1
        u = np.log(lo) + step * np.arange(-m, n + m)
        g = np.exp(-0.5 * (step * np.arange(-m, m + 1) / sigma) ** 2)
        logi = np.log(np.maximum(np.convolve(evaluate(model, params, [np.exp(u)]), g / g.sum(), "valid"), 1e-300))
        u = u[m:m + n]
    else:
        qc = min(hi, 25 * dq)  # 2% log steps reach half a pixel at 25 pixels from the beam
        lin = np.linspace(qc, hi, int(min(2 * (hi - qc) / dq, cap / 2)) + 2)[1:]
        u = np.log(np.concatenate([np.geomspace(lo, qc, max(2, int(np.log(qc / lo) / 0.02) + 1)), lin]))
        logi = np.log(np.maximum(evaluate(model, params, [np.exp(u)]), 1e-300))
    return np.exp(np.interp(np.log(np.maximum(q, lo)), u, logi))


def _interp_matrix(n, knots):
    j = np.clip(np.searchsorted(knots, np.arange(n), "right") - 1, 0, len(knots) - 2)
    t = (np.arange(n) - knots[j]) / (knots[j + 1] - knots[j])
    out = np.zeros((n, len(knots)))
    out[np.arange(n), j] = 1 - t
    out[np.arange(n), j + 1] += t
    return out


def aligned(model, params, shape, geom, budget):
    """I of aligned particles: the 2D kernel on a pixel grid coarse enough for about ``budget`` evaluations."""
    h, w = shape
    npd = np.prod([v for k, v in params.items() if k.endswith("_pd_n")] or [1])
    s = max(1, int(np.ceil(np.sqrt(h * w * npd / budget))))
    ry, rx = np.unique(np.r_[np.arange(0, h, s), h - 1]), np.unique(np.r_[np.arange(0, w, s), w - 1])
    qx, qy = pixels(ry, rx, geom)[:2]
    out = evaluate(model, params, [qx.ravel(), qy.ravel()]).reshape(len(ry), len(rx))
    if s == 1:
        return out
    logi = np.log(np.maximum(out, 1e-300))
    return np.exp(_interp_matrix(h, ry) @ logi @ _interp_matrix(w, rx).T)


def components(rng, cfg, geom, q, dq, sigma, vis, fallback):
    """Noise-free I (max 1 on visible pixels) of one or two populations, and their description."""
    comps, total = [], np.zeros(cfg.shape)
    for k in range(2 if rng.random() < cfg.mixture and not fallback else 1):
        models = cfg.mixture_models if k else ("sphere",) if fallback else cfg.models
        model = str(models[rng.integers(len(models))])
        oriented = model in ANISOTROPIC and bool(rng.random() < cfg.oriented)
        params = sample_params(model, rng, cfg, oriented)
        weight = 1.0 if k == 0 else log_uniform(rng, *cfg.mixture_weight)
        i_c = (aligned(model, params, cfg.shape, geom, cfg.oriented_budget) if oriented else
               profile(model, params, q, dq, sigma, 800 if model in ANISOTROPIC else 4000))
        total += weight * i_c / i_c[vis].max()
        comps.append({"model": model, "params": params, "oriented": oriented, "weight": weight})
    return comps, total / total[vis].max()
