"""Science-level check: refit the generating sasmodels model on original and decoded frames."""

from __future__ import annotations

import numpy as np


def fit_sphere_radius(intensity: np.ndarray, qx: np.ndarray, qy: np.ndarray, params: dict) -> float:
    """Least-squares fit of sasmodels' sphere (radius, scale, background) on log intensity."""
    from sasmodels.direct_model import call_kernel
    from scipy.optimize import least_squares

    from ..data.sas import kernel_model

    QX, QY = np.meshgrid(qx, qy)
    kernel = kernel_model("sphere").make_kernel([QX.ravel(), QY.ravel()])
    target = np.log(np.clip(intensity.ravel().astype(np.float64), 1e-12, None))
    fixed = {k: v for k, v in params.items() if k not in ("radius", "scale", "background")}

    def resid(p):
        r, s, b = np.exp(p)
        model = np.asarray(call_kernel(kernel, {**fixed, "radius": r, "scale": s, "background": b}))
        return np.log(np.clip(model, 1e-12, None)) - target

    p0 = np.log([params["radius"] * 1.1, params["scale"], params["background"]])
    try:
        sol = least_squares(resid, p0, x_scale=1.0, max_nfev=200)
        return float(np.exp(sol.x[0]))
    finally:
        kernel.release()


def radius_changes(data, recon: dict, fit_frames: int) -> dict:
    """Per reconstruction: relative change of the fitted sphere radius on the simulation's
    sphere frames (median, max), against the fit on the original frames."""
    sim = data.sim
    idx = [i for i, m in enumerate(sim.models) if m == "sphere"][:fit_frames]
    if not idx:
        return {}

    def radius(frames, i):
        return fit_sphere_radius(data.intensity(frames[i]), sim.qx[i], sim.qy[i], sim.params[i])

    orig = {i: radius(data.values, i) for i in idx}
    out = {}
    for key, back in recon.items():
        if back.shape != data.values.shape:
            continue
        devs = [abs(radius(back, i) - orig[i]) / orig[i] for i in idx]
        out[key] = {"fit_radius_dev_median": float(np.median(devs)), "fit_radius_dev_max": float(np.max(devs)),
                    "fit_frames": len(idx)}
    return out
