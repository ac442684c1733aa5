"""Frames from scenes: counts, noise, fill values; simulated in parallel, in order.

Frame ``i`` of seed ``s`` depends only on ``(s, i)`` (its own generator), never on the
number of workers or on which frames are asked for.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from ..sas import kernel_model, log_uniform
from .config import DEAD, GAP, HOT, UINT32_FILL, DetectorConfig, pick, resolve
from .geometry import pixels, q_map, sample_geometry, sample_masks
from .scattering import Redraw, components


def _scene(rng, cfg):
    """Geometry, masks and noise-free I, drawn again while I is invalid or spans < min_decades."""
    h, w = cfg.shape
    for attempt in range(12):
        geom = sample_geometry(rng, cfg)
        pix = pixels(np.arange(h), np.arange(w), geom)
        dq = 2 * np.pi / geom["wavelength"] * geom["pixel_size"] / geom["distance"]
        sigma = float(rng.uniform(*cfg.resolution)) if rng.random() < cfg.resolution_prob else 0.0
        flags, stop = sample_masks(rng, cfg, geom["center"])
        vis = flags == 0 if (flags == 0).any() else np.ones((h, w), bool)
        try:
            comps, total = components(rng, cfg, geom, pix[2], dq, sigma, vis, fallback=attempt == 11)
        except Redraw:  # a sticky or charged structure factor outside its valid range
            continue
        if attempt == 11 or total[vis].min() * 10**cfg.min_decades <= 1:
            return geom, pix, sigma, flags, stop, vis, comps, total


def detector_frame(seed: int, index: int, cfg: DetectorConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """Frame ``index`` of ``seed``: values (cfg.output dtype), mask bit flags (uint8), metadata."""
    rng = np.random.default_rng([seed, index])
    h, w = cfg.shape
    geom, (qx, qy, q, cos2t), sigma, flags, stop, vis, comps, total = _scene(rng, cfg)
    peak_i, peak_c = pick(rng, cfg.intensity), pick(rng, cfg.counts)
    intensity = total * (peak_i / total[vis].max())
    bkg = peak_i * pick(rng, cfg.background)
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
    mu[stop] *= log_uniform(rng, *cfg.beamstop_transmission)
    if not stop.any() and cfg.direct_beam[1] > 0:
        meta["direct_beam"] = peak_c * log_uniform(rng, *cfg.direct_beam)
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


def iter_detector(n: int, seed: int = 0, cfg=None, workers: int | None = None, progress: bool = True):
    """Yield ``(frame, flags, meta)`` for frames 0..n-1 in order, with a bounded number in flight."""
    from tqdm.auto import tqdm

    cfg = resolve(cfg)
    workers = workers or os.cpu_count() or 1
    for name in set(cfg.models) | set(cfg.mixture_models if cfg.mixture > 0 else ()) | {"sphere"}:
        kernel_model(name)  # compiled once, before the workers fork
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
    cfg = resolve(cfg)
    out = DetectorFrames(np.empty((n, *cfg.shape), np.dtype(cfg.output if cfg.output != "float" else "float32")),
                         np.empty((n, *cfg.shape), np.uint8), [None] * n, cfg, seed)
    for i, (frame, flags, meta) in enumerate(iter_detector(n, seed, cfg, workers, progress)):
        out.frames[i], out.flags[i], out.meta[i] = frame, flags, meta
    return out
