"""``saecodec bench``: saecodec against SZ3, ZFP, SPERR, zstd, an 8x8 DCT and PCA, in one process.

Every real codec runs through h5py's filter pipeline into an in-memory HDF5 file, so
all pay the same overhead and the stored bytes are the chunks' bytes (each codec's
per-chunk headers included). The DCT and PCA baselines of the L1 paper are computed,
not containers: their bytes are entropy estimates, marked as such. Speeds are MB/s of
raw data and, to compare across machines, ratios to SZ3's speed in the same run.
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .models.transforms import Transform

# The log domain of intensity data: asinh(I / 1e-3) / ln 10, log10-like above 1e-3, defined at 0 and below.
LOG_OF_INTENSITY = Transform("asinh", 1e-3)


# -- metrics --------------------------------------------------------------------------
def value_metrics(x: np.ndarray, y: np.ndarray) -> dict:
    """Errors of ``y`` against ``x`` over the finite elements of ``x``, in x's units.

    psnr: 20 log10(value range / RMSE); nrmse: RMSE / value range; rel_l2: ||y - x|| / ||x||.
    """
    ok = np.isfinite(x)
    xv = x[ok].astype(np.float64)
    yv = y[ok].astype(np.float64)
    err = yv - xv
    rmse = float(np.sqrt(np.mean(err**2))) if err.size else 0.0
    rng = float(xv.max() - xv.min()) if xv.size else 0.0
    return {
        "psnr": float("inf") if rmse == 0 else 20 * math.log10(rng / rmse) if rng > 0 else float("nan"),
        "nrmse": rmse / rng if rng > 0 else float("nan"),
        "max_abs": float(np.abs(err).max(initial=0.0)),
        "rel_l2": float(np.linalg.norm(err) / np.linalg.norm(xv)) if xv.size else 0.0,
    }


def log_rel_l2(ux: np.ndarray, uy: np.ndarray) -> float:
    """The papers' metric on log-domain frames (N, h, w): ||uy - ux|| / ||ux - per-frame mean||."""
    n = len(ux)
    ux = ux.reshape(n, -1).astype(np.float64)
    uy = uy.reshape(n, -1).astype(np.float64)
    ok = np.isfinite(ux) & np.isfinite(uy)
    mean = np.nanmean(np.where(ok, ux, np.nan), axis=1, keepdims=True)
    dev = np.where(ok, ux - mean, 0.0)
    return float(np.linalg.norm(np.where(ok, uy - ux, 0.0)) / max(np.linalg.norm(dev), 1e-300))


def radial_profiles(frames: np.ndarray, q: np.ndarray, bins: int = 24) -> np.ndarray:
    """Azimuthal averages I(q) (N, bins) on log-spaced |q| bins per frame; NaN for empty bins."""
    n = len(frames)
    out = np.full((n, bins), np.nan)
    for i in range(n):
        qi = q[i].ravel()
        lo, hi = qi.min(), qi.max()
        edges = np.geomspace(max(lo, hi * 1e-3), hi * (1 + 1e-9), bins + 1)
        idx = np.clip(np.searchsorted(edges, qi, side="right") - 1, 0, bins - 1)
        v = frames[i].ravel().astype(np.float64)
        ok = np.isfinite(v)
        s = np.bincount(idx[ok], v[ok], bins)
        c = np.bincount(idx[ok], minlength=bins)
        out[i] = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    return out


def iq_deviation(x: np.ndarray, y: np.ndarray, q: np.ndarray, background: np.ndarray) -> dict:
    """Max relative deviation of I(q) per frame where I(q) > 3 x background: median and p95 over frames."""
    px, py = radial_profiles(x, q), radial_profiles(y, q)
    signal = px > 3 * background[:, None]
    dev = np.where(signal, np.abs(py - px) / np.where(signal, np.abs(px), 1.0), np.nan)
    per_frame = np.nanmax(np.where(np.isnan(dev), -np.inf, dev), axis=1)
    per_frame = per_frame[np.isfinite(per_frame)]
    if not per_frame.size:
        return {"iq_dev_median": float("nan"), "iq_dev_p95": float("nan")}
    return {"iq_dev_median": float(np.median(per_frame)), "iq_dev_p95": float(np.percentile(per_frame, 95))}


def pixel_q(frames: np.ndarray) -> np.ndarray:
    """|q| stand-in for frames without q axes: distance in pixels from the intensity-weighted centre."""
    n, h, w = frames.shape
    yy, xx = np.mgrid[:h, :w]
    out = np.empty(frames.shape)
    for i in range(n):
        f = np.nan_to_num(frames[i].astype(np.float64), nan=0.0)
        wgt = np.clip(f - np.median(f), 0, None)
        s = wgt.sum()
        cy, cx = ((yy * wgt).sum() / s, (xx * wgt).sum() / s) if s > 0 else ((h - 1) / 2, (w - 1) / 2)
        out[i] = np.hypot(yy - cy, xx - cx) + 0.5
    return out


# -- fits of the generating model ---------------------------------------------------------
def fit_sphere_radius(intensity: np.ndarray, qx: np.ndarray, qy: np.ndarray, params: dict) -> float:
    """Least-squares fit of sasmodels' sphere (radius, scale, background) on log intensity."""
    from scipy.optimize import least_squares

    from .data.sas import _kernel_model

    QX, QY = np.meshgrid(qx, qy)
    kernel = _kernel_model("sphere").make_kernel([QX.ravel(), QY.ravel()])
    from sasmodels.direct_model import call_kernel

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


# -- codecs through h5py -------------------------------------------------------------------
@dataclass
class Row:
    method: str
    setting: str
    chunking: str
    stored_bytes: int
    ratio: float
    bpp: float
    metrics: dict = field(default_factory=dict)
    enc_mbs: float | None = None
    dec_mbs: float | None = None
    enc_vs_sz3: float | None = None
    dec_vs_sz3: float | None = None
    ratio_with_model: float | None = None
    estimate: bool = False
    note: str = ""


def h5_round_trip(values: np.ndarray, chunks: tuple, filter_kwargs: dict) -> tuple[int, np.ndarray, float, float]:
    import h5py

    bio = io.BytesIO()
    t0 = time.perf_counter()
    with h5py.File(bio, "w") as f:
        f.create_dataset("x", data=values, chunks=chunks, **filter_kwargs)
    t_enc = time.perf_counter() - t0
    with h5py.File(bio, "r") as f:
        d = f["x"]
        t0 = time.perf_counter()
        back = d[...]
        t_dec = time.perf_counter() - t0
        size = int(d.id.get_storage_size())
    return size, back, t_enc, t_dec


def dct_baseline(u: np.ndarray, target: float, block: int = 8) -> tuple[np.ndarray, float]:
    """8x8 windowed DCT of the log frames minus their means, keeping the largest
    coefficients (one global threshold) until the papers' relative L2 reaches ``target``.
    Returns (reconstruction, estimated bytes: float16 values + positions at their entropy
    + 8 bytes of normalisation per frame)."""
    from scipy.fft import dctn, idctn

    n, h, w = u.shape
    hb, wb = -(-h // block) * block, -(-w // block) * block
    mean = u.reshape(n, -1).mean(axis=1)[:, None, None]
    # Deviations from the frame mean, not divided by the frame's spread: the orthonormal DCT
    # then preserves exactly the norm that the papers' aggregate relative L2 measures.
    z = np.pad(u - mean, ((0, 0), (0, hb - h), (0, wb - w)), mode="edge")
    blocks = z.reshape(n, hb // block, block, wb // block, block)
    c = dctn(blocks, axes=(2, 4), norm="ortho")
    mags = np.sort(np.abs(c).ravel())
    dropped = np.concatenate([[0.0], np.cumsum(mags**2)])  # dropped[k]: energy of the k smallest
    budget = target**2 * float(((z[:, :h, :w]) ** 2).sum())
    k = int(np.searchsorted(dropped, budget, side="right")) - 1  # drop the k smallest, keep the rest
    kept = np.where(np.abs(c) >= mags[k], c, 0.0).astype(np.float16).astype(np.float64) if k < mags.size \
        else np.zeros_like(c)
    rec = idctn(kept, axes=(2, 4), norm="ortho").reshape(n, hb, wb)[:, :h, :w] + mean
    nnz = int((kept != 0).sum())
    total = c.size
    p = nnz / total
    h2 = 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    return rec, nnz * 2 + total * h2 / 8 + 8 * n


def pca_baseline(u_train: np.ndarray, u: np.ndarray, target: float) -> tuple[np.ndarray, float, int, int]:
    """Truncated SVD of normalised log frames (the optimal linear autoencoder), smallest k
    reaching ``target``. Returns (reconstruction, bytes (k float16 + 8 per frame), k, basis bytes)."""
    def norm(a):
        a = a.reshape(len(a), -1).astype(np.float64)
        m, s = a.mean(axis=1, keepdims=True), a.std(axis=1, keepdims=True) + 1e-12
        return (a - m) / s, m, s

    zt, _, _ = norm(u_train)
    _, _, vt = np.linalg.svd(zt, full_matrices=False)
    z, m, s = norm(u)
    coef = z @ vt.T
    denom = np.linalg.norm(z * s)  # the papers' aggregate metric weighs frames by their spread

    def err(k):
        rec = coef[:, :k].astype(np.float16).astype(np.float64) @ vt[:k]
        return np.linalg.norm((rec - z) * s) / denom

    lo, hi = 1, vt.shape[0]  # smallest k with err(k) <= target (err falls with k)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if err(mid) <= target else (mid + 1, hi)
    k_best = lo
    rec = coef[:, :k_best].astype(np.float16).astype(np.float64) @ vt[:k_best]
    out = (rec * s + m).reshape(u.shape)
    return out, len(u) * (2 * k_best + 8), k_best, 2 * k_best * vt.shape[1]


@dataclass
class Dataset:
    values: np.ndarray  # what is compressed (N, h, w) float32
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


LOG_FLOOR = 1e-6


def to_domain(intensity: np.ndarray, domain: str) -> np.ndarray:
    if domain == "log":
        return np.log10(np.maximum(intensity, LOG_FLOOR)).astype(np.float32)
    return intensity.astype(np.float32)


def simulated_dataset(n: int, seed: int, domain: str, progress: bool = True) -> Dataset:
    from .data import sas

    sim = sas.simulate(n, seed=seed, progress=progress)
    q = np.hypot(sim.qx[:, None, :], sim.qy[:, :, None])
    bg = np.array([p["background"] for p in sim.params]) if sim.params else None
    return Dataset(to_domain(sim.frames, domain), domain, f"simulated held-out, seed {seed}, {n} frames", q, bg, sim)


def file_dataset(path: str, dataset: str, domain: str, limit: int | None) -> Dataset:
    import h5py

    with h5py.File(path, "r") as f:
        d = f[dataset]
        if d.ndim < 2:
            raise ValueError(f"{path}:{dataset} has shape {d.shape}; bench needs a stack of 2D frames")
        x = d[:limit] if d.ndim > 2 else d[...][None]
    x = x.reshape((-1,) + x.shape[-2:])
    return Dataset(to_domain(x, domain), domain, f"{path}:{dataset}, {len(x)} frames")


def log_model(model):
    """A copy of an intensity model that reads log10 frames: the same network with an
    identity transform (per-frame normalisation removes asinh's constant offset)."""
    import dataclasses

    return dataclasses.replace(model, transform=Transform("linear", 1.0, model.transform.per_frame),
                               name=f"{model.name}-log", identity=None, path=None,
                               provenance=f"{model.provenance} | log10-input variant made by saecodec bench")


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
           "cpus": os.cpu_count()}
    for pkg in ("saecodec", "torch", "numpy", "h5py", "hdf5plugin", "zarr", "numcodecs", "constriction", "sasmodels"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    try:
        import torch

        out["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001
        out["cuda"] = None
    return out


def run(data: Dataset, models: list, bounds: list[float], stack: int = 64, fit_frames: int = 16,
        pca_train: np.ndarray | None = None, progress: bool = True, baselines: bool = True) -> dict:
    """All methods on ``data``; ``models`` are loaded Model objects (their files registered)."""
    import hdf5plugin
    from tqdm.auto import tqdm

    from . import hdf5 as sae_h5
    from .model_store import remember

    x = data.values
    n, h, w = x.shape
    raw = x.nbytes
    chunkings = {"1 frame": (1, h, w), f"{min(stack, n)} frames": (min(stack, n), h, w)}
    log_x = data.log(x)
    inten_x = data.intensity(x)
    q = data.q if data.q is not None else pixel_q(inten_x)
    background = data.background if data.background is not None else np.nanpercentile(
        inten_x.reshape(n, -1), 5, axis=1)

    jobs = []
    for cname, ch in chunkings.items():
        for m in models:
            jobs.append(("saecodec", f"{m.name} pure", cname, ch, {"model": m}))
            for eb in bounds:
                jobs.append(("saecodec", f"{m.name} abs={eb:g}", cname, ch, {"model": m, "error_bound": eb}))
        for eb in bounds:
            jobs.append(("SZ3", f"abs={eb:g}", cname, ch, hdf5plugin.SZ3(absolute=eb)))
            jobs.append(("ZFP", f"accuracy={eb:g}", cname, ch, hdf5plugin.Zfp(accuracy=eb)))
            jobs.append(("SPERR", f"abs={eb:g}", cname, ch, hdf5plugin.Sperr(absolute=eb)))
        jobs.append(("zstd", "level 3, lossless", cname, ch, hdf5plugin.Zstd(clevel=3)))

    rows: list[Row] = []
    recon: dict[tuple, np.ndarray] = {}
    for method, setting, cname, ch, kw in tqdm(jobs, desc="bench", unit="run", disable=not progress):
        if method == "saecodec":
            m = kw.pop("model")
            remember(m)
            kw = dict(sae_h5.SAE(model=m.identity, **kw))
        try:
            size, back, te, td = h5_round_trip(x, ch, dict(kw))
        except Exception as e:  # noqa: BLE001 - a baseline that fails is reported, not fatal
            rows.append(Row(method, setting, cname, 0, float("nan"), float("nan"), note=f"failed: {e}"))
            continue
        r = _row(method, setting, cname, size, raw, x, back, log_x, data, te, td)
        r.metrics.update(iq_deviation(inten_x, data.intensity(back), q, background))
        if method == "saecodec":
            mfile = next(mm for mm in models if setting.startswith(mm.name + " "))
            r.ratio_with_model = raw / (size + len(mfile.to_bytes()))
        rows.append(r)
        recon[(method, setting, cname)] = back

    _speed_ratios(rows)
    if baselines:
        for m in models:
            pure = next((r for r in rows if r.method == "saecodec" and r.setting == f"{m.name} pure"), None)
            if pure is None or "rel_l2_log" not in pure.metrics:
                continue
            target = pure.metrics["rel_l2_log"]
            rec, nbytes = dct_baseline(log_x, target)
            row = _estimate_row("DCT 8x8", f"matching {m.name} (rel L2 {target:.3f})", nbytes, raw,
                                x, _from_log(rec, data), log_x, data, inten_x, q, background)
            rows.append(row)
            recon[(row.method, row.setting, row.chunking)] = _from_log(rec, data)
            train = pca_train if pca_train is not None else log_x[: max(n // 2, 1)]
            rec, nbytes, k, basis = pca_baseline(data.log(train) if pca_train is not None else train, log_x, target)
            row = _estimate_row("PCA", f"k={k}, matching {m.name}", nbytes, raw, x, _from_log(rec, data),
                                log_x, data, inten_x, q, background)
            row.ratio_with_model = raw / (nbytes + basis)
            rows.append(row)
            recon[(row.method, row.setting, row.chunking)] = _from_log(rec, data)
    fits = _fits(data, recon, fit_frames) if data.sim is not None and fit_frames else {}
    for r in rows:
        key = (r.method, r.setting, r.chunking)
        if key in fits:
            r.metrics.update(fits[key])
    return {"rows": [asdict(r) for r in rows], "dataset": data.name, "domain": data.domain, "frames": n,
            "frame_shape": [h, w], "raw_bytes": raw, "versions": versions(),
            "date": time.strftime("%Y-%m-%d %H:%M")}


def _from_log(u: np.ndarray, data: Dataset) -> np.ndarray:
    if data.domain == "log":
        return u.astype(np.float32)
    return LOG_OF_INTENSITY.from_u(u).astype(np.float32)


def _row(method, setting, cname, size, raw, x, back, log_x, data, te, td) -> Row:
    met = value_metrics(x, back)
    met["rel_l2_log"] = log_rel_l2(log_x, data.log(back))
    ix, iy = data.intensity(x), data.intensity(back)
    met["rel_l2_intensity"] = value_metrics(ix, iy)["rel_l2"]
    return Row(method, setting, cname, size, raw / size if size else float("nan"),
               8 * size / x.size, met, raw / 1e6 / te, raw / 1e6 / td)


def _estimate_row(method, setting, nbytes, raw, x, back, log_x, data, inten_x, q, background) -> Row:
    r = _row(method, setting, "per frame", int(round(nbytes)), raw, x, back, log_x, data, float("inf"), float("inf"))
    r.enc_mbs = r.dec_mbs = None
    r.estimate = True
    r.metrics.update(iq_deviation(inten_x, data.intensity(back), q, background))
    return r


def _speed_ratios(rows: list[Row]) -> None:
    """Speed relative to SZ3 in the same chunking at the same bound (pure: SZ3's loosest bound)."""
    for r in rows:
        if r.enc_mbs is None or r.method == "SZ3":
            continue
        eb = r.setting.split("=")[-1] if "=" in r.setting else None
        sz = [s for s in rows if s.method == "SZ3" and s.chunking == r.chunking and s.enc_mbs]
        ref = next((s for s in sz if eb and s.setting == f"abs={eb}"), sz[0] if sz else None)
        if ref is not None:
            r.enc_vs_sz3 = r.enc_mbs / ref.enc_mbs
            r.dec_vs_sz3 = r.dec_mbs / ref.dec_mbs


def _fits(data: Dataset, recon: dict, fit_frames: int) -> dict:
    """Fitted sphere radius on original vs decompressed frames (sphere frames of the simulation)."""
    sim = data.sim
    idx = [i for i, m in enumerate(sim.models) if m == "sphere"][:fit_frames]
    if not idx:
        return {}
    orig = {i: fit_sphere_radius(data.intensity(data.values[i]), sim.qx[i], sim.qy[i], sim.params[i]) for i in idx}
    out = {}
    for key, back in recon.items():
        if back.shape != data.values.shape:
            continue
        devs = [abs(fit_sphere_radius(data.intensity(back[i]), sim.qx[i], sim.qy[i], sim.params[i]) - orig[i]) / orig[i]
                for i in idx]
        out[key] = {"fit_radius_dev_median": float(np.median(devs)), "fit_radius_dev_max": float(np.max(devs)),
                    "fit_frames": len(idx)}
    return out


# -- report ---------------------------------------------------------------------------------
def _fmt(v, spec=".3g"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def markdown(result: dict, command: str = "") -> str:
    v = result["versions"]
    lines = [
        f"# saecodec bench, {result['date']}",
        "",
        f"Command: `{command}`" if command else "",
        f"Dataset: {result['dataset']} ({result['frame_shape'][0]}x{result['frame_shape'][1]}, "
        f"{result['domain']} values, {result['raw_bytes'] / 1e6:.1f} MB raw float32)",
        f"Machine: {v['machine']}, {v['cpus']} CPUs, GPU: {v['cuda'] or 'none'}; "
        + ", ".join(f"{k} {v[k]}" for k in ("python", "saecodec", "torch", "h5py", "hdf5plugin", "constriction",
                                              "sasmodels") if v.get(k)),
        "",
        "Ratio: raw bytes / stored chunk bytes (codec headers included; * = estimate, no container). "
        "max|e| and PSNR in the compressed values' units; rel L2 log: the papers' metric on per-frame "
        "normalised log frames; rel L2 I: in intensity. I(q): max relative deviation of the azimuthal "
        "average where I > 3 x background (median over frames). R fit: median relative change of the "
        "fitted sphere radius. Speeds: MB/s of raw data through h5py, and x SZ3 at the same bound.",
        "",
        "| method | setting | chunks | ratio | ratio+model | bpp | max abs err | PSNR | rel L2 log | rel L2 I "
        "| I(q) dev | R fit dev | enc MB/s | dec MB/s | enc/SZ3 | dec/SZ3 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        m = r["metrics"]
        lines.append("| " + " | ".join([
            r["method"], r["setting"], r["chunking"], _fmt(r["ratio"], ".1f") + ("*" if r["estimate"] else ""),
            _fmt(r["ratio_with_model"], ".1f"), _fmt(r["bpp"], ".2f"), _fmt(m.get("max_abs")), _fmt(m.get("psnr"), ".1f"),
            _fmt(m.get("rel_l2_log")), _fmt(m.get("rel_l2_intensity")), _fmt(m.get("iq_dev_median")),
            _fmt(m.get("fit_radius_dev_median")), _fmt(r["enc_mbs"], ".0f"), _fmt(r["dec_mbs"], ".0f"),
            _fmt(r["enc_vs_sz3"], ".2f"), _fmt(r["dec_vs_sz3"], ".2f")]) + " |" + (f" {r['note']}" if r["note"] else ""))
    return "\n".join(lines) + "\n"


def plots(result: dict, prefix) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for xkey, ykey, xlabel, ylabel, logx, name in (
            ("bpp", "psnr", "bits per pixel", "PSNR (dB)", False, "psnr_bpp"),
            ("rel_l2_log", "ratio", "relative L2 (log domain, per-frame normalised)", "compression ratio", True,
             "ratio_rel_l2")):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
        chunkings = sorted({r["chunking"] for r in result["rows"] if r["chunking"] != "per frame"})
        for ax, cname in zip(axes, chunkings):
            groups: dict = {}
            for r in result["rows"]:
                if r["chunking"] not in (cname, "per frame") or not r["stored_bytes"]:
                    continue
                label = r["method"] if r["method"] != "saecodec" else "saecodec " + (
                    "pure" if r["setting"].endswith("pure") else "bounded") + f" ({r['setting'].split()[0]})"
                xv = r[xkey] if xkey in r else r["metrics"].get(xkey)
                yv = r[ykey] if ykey in r else r["metrics"].get(ykey)
                if xv is None or yv is None or not np.isfinite(xv) or not np.isfinite(yv):
                    continue
                groups.setdefault(label, []).append((xv, yv))
            for label, pts in sorted(groups.items()):
                pts.sort()
                ax.plot(*zip(*pts), "o-" if len(pts) > 1 else "s", label=label)
            ax.set_title(cname)
            ax.set_xlabel(xlabel)
            if logx:
                ax.set_xscale("log")
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(ylabel)
        axes[-1].legend(fontsize=7)
        fig.suptitle(f"{result['dataset']} ({result['domain']})", fontsize=9)
        fig.tight_layout()
        path = f"{prefix}_{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def save(result: dict, outdir, tag: str, command: str) -> list:
    from pathlib import Path

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    result = {**result, "command": command}
    (outdir / f"{tag}.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    (outdir / f"{tag}.md").write_text(markdown(result, command))
    return [outdir / f"{tag}.json", outdir / f"{tag}.md", *plots(result, str(outdir / tag))]
