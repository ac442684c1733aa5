"""The frame sets of the wavelet research (#19), simulated once and cached as .npz.

Held-out sets (evaluation only):
* ``clean``: 2000 clean 64x64 frames, ``sas.simulate(seed=1)`` (default SimConfig), as the rd
  bench gives them: u = log10(max(I, 1e-6)), float32.
* ``noisy``: 512 frames of the ``heldout-mix`` detector preset at its own 128x128 size with peak
  counts 1e2-1e4 (Poisson, off-centre or off-frame beam, module gaps, dead pixels and beamstop
  shadows as NaN, half of them background-subtracted so ~40% of pixels are <= 0), seed 1.
  Metric domain: u = asinh(I / s0) / ln 10 with s0 = 1 / counts_per_unit, the intensity of one
  count on a normal-incidence pixel (frame meta). Below one count a log domain measures
  nothing but Poisson noise, and above ~10 counts u is log10(counts). NaN pixels are left out
  of the metric; anchors get them filled with the nearest finite value (rd.fill_nearest).
* ``real``: the 39 shared real frames at native size, u = asinh(I / 1e-3) / ln 10 (rd.real_frames).

Training sets (never the held-out seeds or presets):
* ``clean_train``: 4000 frames seed 10 (default SimConfig) + 2000 frames seed 11 (q_max 0.02-1,
  centre jitter 0.6), log10(max(I, 1e-6)), as benchmarks/train_sas_conv_h.py's train_a/train_b;
* ``noisy_train``: 1536 frames of ``train-mix`` at 128x128, seed 10, its own counts (10-1e6),
  same u definition as ``noisy``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from saecodec.data.shared import data_dir

CACHE = Path(os.environ.get("WR_DATA", "/tmp/wr/data"))
REAL_ROOT = (data_dir() or Path("../shared/data")) / "real-sas"  # saecodec.data.shared's place


def _asinh_counts(frames, k):
    return (np.arcsinh(frames.astype(np.float64) * k[:, None, None]) / np.log(10)).astype(np.float32)


def _detector(n, seed, name, **over):
    from saecodec.data.detector import preset, simulate_detector

    d = simulate_detector(n, seed=seed, cfg=preset(name, **over), workers=1, progress=False)
    k = np.array([m["counts_per_unit"] for m in d.meta])
    return {"u": _asinh_counts(d.frames, k), "k": k, "flags": d.flags,
            "peak": np.array([m["peak_counts"] for m in d.meta]),
            "subtracted": np.array([m["subtracted"] for m in d.meta])}


def _clean(parts):
    from saecodec.data import sas

    us = []
    for n, seed, kw in parts:
        sim = sas.simulate(n, seed=seed, cfg=sas.SimConfig(**kw), workers=1, progress=False)
        us.append(np.log10(np.maximum(sim.frames, 1e-6)).astype(np.float32))
    return {"u": np.concatenate(us)}


MAKERS = {
    "clean": lambda: _clean([(2000, 1, {})]),
    "clean_train": lambda: _clean([(4000, 10, {}), (2000, 11, {"q_max_range": (0.02, 1.0), "center_jitter": 0.6})]),
    "noisy": lambda: _detector(512, 1, "heldout-mix", counts=(1e2, 1e4)),
    "noisy_train": lambda: _detector(1536, 10, "train-mix"),
}


def load(name: str) -> dict:
    """{'u': (N, H, W) float32 metric-domain frames (NaN = masked), ...}; 'real' -> a list of frames."""
    if name == "real":
        from saecodec.bench.rd import real_frames

        return {"u": [u for _, u, _ in real_frames(REAL_ROOT)], "names": [n for n, _, _ in real_frames(REAL_ROOT)],
                "mask_values": [mv for _, _, mv in real_frames(REAL_ROOT)]}
    p = CACHE / f"{name}.npz"
    if not p.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        d = MAKERS[name]()
        np.savez(p, **d)
    return dict(np.load(p))


if __name__ == "__main__":
    import sys, time

    for name in sys.argv[1:] or list(MAKERS):
        t = time.time()
        d = load(name)
        print(name, d["u"].shape, f"{time.time() - t:.0f} s", flush=True)
