"""Sweep a design over steps, interpolate its ratio at the targets, compare with the anchors."""
from __future__ import annotations

import wr_anchor as A
import wr_codec as W
from saecodec.bench.rd import TARGETS, curve, ratio_at

STEPS = {"clean": [0.12, 0.2, 0.3, 0.45, 0.7], "noisy": [0.1, 0.17, 0.28, 0.45, 0.7], "real": [0.06, 0.1, 0.17, 0.28, 0.45, 0.7]}


def compare(set_name, pts):
    """{"points": pts, (metric, target): (our ratio, extrapolated, {anchor: ours / anchor})} from
    points (step, aggregate error, median error, ratio, bytes per frame)."""
    out = {"points": pts}
    for key, col in (("agg", 1), ("median", 2)):
        c = curve([(p[col], p[3]) for p in pts])
        for t in TARGETS:
            ours, ex = ratio_at(c, t)
            out[(key, t)] = (ours, ex, {k: ours / A.anchor_ratio(set_name, k, t, key) for k in A.BOUNDS})
    return out


def sweep(set_name, test, train, cfg, steps=None, per_step_tables=True, tables=None, extras=None, per_chunk=None,
          verbose=False):
    steps = steps or STEPS[set_name]
    per_chunk = per_chunk or (1 if set_name == "real" else 64)
    pts = []
    if tables is None and not per_step_tables:
        tables = W.train_tables(train, cfg, steps)
    for s in steps:
        tb = tables if tables is not None else W.train_tables(train, cfg, [s])
        agg, med, r, bpf, *_ = W.evaluate(test, cfg, s, tb, extras, per_chunk=per_chunk)
        pts.append((s, agg, med, r, bpf))
        if verbose:
            print(f"  step {s}: agg {agg:.4f} med {med:.4f} ratio {r:.1f}", flush=True)
    return compare(set_name, pts)


def line(name, res, key="agg"):
    s = " | ".join(f"{t}: {res[(key, t)][0]:.1f}x {res[(key, t)][2]['SPERR']:.3f}{'*' if res[(key, t)][1] else ''}"
                   for t in TARGETS)
    return f"{name:40s} [{key}] {s}"


def sweep2(set_name, test, train, cfg, steps=None, model=None, extras=None, per_chunk=None, verbose=False,
           train_steps=None, mask_values=None):
    """sweep for wr_codec2 designs: one model (tables pooled over the training steps)."""
    import wr_codec2 as W2

    steps = steps or STEPS[set_name]
    per_chunk = per_chunk or (1 if set_name == "real" else 64)
    model = model or W2.Model(cfg).train(train, train_steps or steps, extras)
    pts = []
    for s in steps:
        agg, med, r, bpf, *_ = W2.evaluate(test, model, s, extras, per_chunk=per_chunk, mask_values=mask_values)
        pts.append((s, agg, med, r, bpf))
        if verbose:
            print(f"  step {s}: agg {agg:.4f} med {med:.4f} ratio {r:.1f}", flush=True)
    return dict(compare(set_name, pts), model=model)
