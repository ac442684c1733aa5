"""Anchor curves (SPERR, SZ3, ZFP via hdf5plugin) on the research sets, measured in this process
the way saecodec/bench/rd.py does: metric-domain float32 frames, NaN filled with the nearest
finite value (rd.fill_nearest), one frame per chunk, bytes = HDF5 storage size, error = offset-free
rel L2 (aggregate and median frame) over the finite pixels of the reference. Cached as JSON.

    python benchmarks/archive/wavelet_research/wr_anchor.py clean noisy real
"""
from __future__ import annotations

import json
import sys

import numpy as np

from saecodec import metrics
from saecodec.bench.rd import ANCHOR_BOUNDS, _filter, curve, fill_nearest, ratio_at
from saecodec.bench.run import h5_round_trip

from wr_data import CACHE, load

BOUNDS = {"SPERR": [float(b) for b in np.geomspace(0.01, 1.5, 14)],
          "SZ3": [float(b) for b in np.geomspace(0.005, 1.0, 14)],
          "ZFP": ANCHOR_BOUNDS["ZFP"]}


def frames_of(d):
    u = d["u"]
    return list(u) if isinstance(u, list) else [u[i] for i in range(len(u))]


def measure(frames, codec, eb):
    size = raw = 0
    e2, d2, per = [], [], []
    groups = {}
    for i, f in enumerate(frames):  # equal shapes in one dataset, one frame per chunk
        groups.setdefault(f.shape, []).append(i)
    for shape, idx in groups.items():
        ref = np.stack([frames[i] for i in idx]).astype(np.float32)
        vals = np.stack([fill_nearest(r) for r in ref]).astype(np.float32)
        s, back, _, _ = h5_round_trip(vals, (1,) + shape, _filter(codec, eb))
        size += s
        raw += vals.nbytes
        a, b = metrics.offset_free_terms(ref, back)
        e2.append(a)
        d2.append(b)
    agg, med = metrics.offset_free_summary(np.concatenate(e2), np.concatenate(d2))
    return {"bound": eb, "bytes": size, "ratio": raw / size, "agg": agg, "median": med}


def anchors(name: str) -> dict:
    p = CACHE / f"anchors_{name}.json"
    if p.exists():
        return json.loads(p.read_text())
    frames = frames_of(load(name))
    out = {c: [measure(frames, c, eb) for eb in bounds] for c, bounds in BOUNDS.items()}
    p.write_text(json.dumps(out))
    return out


def anchor_ratio(name: str, codec: str, err: float, key: str = "agg") -> float:
    a = anchors(name)[codec]
    return ratio_at(curve([(r[key], r["ratio"]) for r in a]), err)[0]


def vs(name: str, err: float, ratio: float, key: str = "agg") -> dict:
    """ours/anchor at our error for each anchor."""
    return {c: ratio / anchor_ratio(name, c, err, key) for c in BOUNDS}


if __name__ == "__main__":
    for name in sys.argv[1:]:
        a = anchors(name)
        for c, rows in a.items():
            print(name, c, " ".join(f"{r['agg']:.4f}:{r['ratio']:.1f}" for r in rows))
        for t in (0.03, 0.05, 0.1):
            print(name, t, {c: round(anchor_ratio(name, c, t), 2) for c in BOUNDS},
                  "median", {c: round(anchor_ratio(name, c, t, "median"), 2) for c in BOUNDS})
