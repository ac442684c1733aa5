"""``saecodec bench --suite rd``: rate-distortion curves of the pure mode against SPERR, SZ3 and ZFP.

Codecs are compared at equal error (TEAM.md): each anchor is swept over its bound and its
ratio interpolated, log-log, at our error; ours is interpolated the same way over the rate
levels. Points outside a curve are extrapolated from its end segment and marked. Every codec
sees the same float32 arrays, in one process, through h5py: anchors at their best chunking
(one frame per chunk), saecodec at 64 frames per chunk on the simulated stack and one chunk
per real frame. Speeds are MB/s of raw data per CPU second of this process and, to compare
across machines, ratios to SZ3 at the nearest error (pure) or the same bound (bounded).

Real frames: u = asinh(I / 1e-3) / ln 10 (``datasets.LOG_OF_INTENSITY``), log10(I) + 3.3 where
I >> 1e-3 (the offset-free metric removes the constant), defined for I <= 0, as the research
did (model/data.py real_frames). NaN pixels stay NaN for saecodec (restored exactly) and are
filled with the nearest finite value for the anchors, which take no NaN; the metric leaves
them out. The EQSANS sentinel -100 stays a value for every codec and in the metric; saecodec
is told it (``mask_values``), as a user would.
"""

from __future__ import annotations

import time

import numpy as np

from .. import metrics
from .datasets import LOG_OF_INTENSITY
from .run import h5_round_trip

TARGETS = (0.03, 0.05, 0.1)
ANCHOR_BOUNDS = {"SPERR": [float(b) for b in np.geomspace(0.03, 1.5, 10)],
                 "SZ3": [float(b) for b in np.geomspace(0.015, 1.0, 10)],
                 "ZFP": [2.0 ** k for k in range(-4, 5)]}  # ZFP's accuracy acts in powers of 2
ABS_BOUNDS = (1e-2, 1e-3)
SENTINEL = -100.0


def _filter(codec: str, eb: float) -> dict:
    import hdf5plugin

    return dict({"SPERR": lambda: hdf5plugin.Sperr(absolute=eb), "SZ3": lambda: hdf5plugin.SZ3(absolute=eb),
                 "ZFP": lambda: hdf5plugin.Zfp(accuracy=eb)}[codec]())


def real_frames(directory=None) -> list[tuple[str, np.ndarray, list]]:
    """(name, u float32 with NaN kept, saecodec's mask_values) per shared real frame
    (``saecodec.data.shared``; ``directory``: another set's)."""
    from ..data import shared

    out = []
    for name, d in shared.real_sas(directory):
        i = np.asarray(d["I"], np.float64)
        u = LOG_OF_INTENSITY.to_u(i).astype(np.float32)
        out.append((name, u, [float(v) for v in np.unique(u[i == SENTINEL])]))
    return out


def noisy_frames(n: int = 512, seed: int = 1, progress: bool = False) -> np.ndarray:
    """The noisy held-out set (issue #19): ``simulate_detector(n, seed, preset("heldout-mix",
    counts=(1e2, 1e4)))`` at the preset's 128x128 (Poisson, beam off-centre or off-frame, gaps,
    dead pixels and beamstop shadows as NaN, half background-subtracted), in the metric domain
    u = asinh(I / s0) / ln 10 with s0 = 1 / counts_per_unit of each frame (one count on a
    normal-incidence pixel: below it the intensity is Poisson noise, above ~10 counts u is
    log10 of the counts). float32, NaN kept."""
    from ..data.detector import preset, simulate_detector

    d = simulate_detector(n, seed=seed, cfg=preset("heldout-mix", counts=(1e2, 1e4)), workers=1, progress=progress)
    k = np.array([m["counts_per_unit"] for m in d.meta], np.float64)
    return (np.arcsinh(d.frames.astype(np.float64) * k[:, None, None]) / np.log(10)).astype(np.float32)


def fill_nearest(a: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(a)
    if not bad.any():
        return a
    from scipy import ndimage

    return a[tuple(ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True))]


def _measure(parts: list, kw_of, chunk_of, stats=None) -> dict:
    """Round-trip every (values, reference, saecodec keywords) of ``parts``; one point."""
    size = raw = 0
    te = td = 0.0
    e2, d2 = [], []
    for values, ref, extra in parts:
        s, back, a, b = h5_round_trip(values, chunk_of(values), dict(kw_of(**extra)), stats, time.process_time)
        size, raw, te, td = size + s, raw + values.nbytes, te + a, td + b
        t = metrics.offset_free_terms(ref, back)
        e2.append(t[0])
        d2.append(t[1])
    agg, med = metrics.offset_free_summary(np.concatenate(e2), np.concatenate(d2))
    return {"bytes": size, "ratio": raw / size, "agg": agg, "median": med,
            "enc_MBps": raw / 1e6 / max(te, 1e-9), "dec_MBps": raw / 1e6 / max(td, 1e-9)}


def _sets(sim: np.ndarray | None, real: list | None, stack: int, noisy: np.ndarray | None = None) -> dict:
    """{set: (anchor parts, saecodec parts, anchor chunk shape of values, saecodec chunk shape of values)}."""
    out = {}
    if sim is not None:
        out["sim"] = ([(sim, sim, {})], [(sim, sim, {})], (lambda v: (1, *v.shape[1:])),
                      (lambda v: (min(stack, len(v)), *v.shape[1:])))
    if noisy is not None:  # NaN: filled for the anchors, kept (restored exactly) by saecodec, out of the metric
        filled = np.stack([fill_nearest(u) for u in noisy])
        out["noisy"] = ([(filled, noisy, {})], [(noisy, noisy, {})], (lambda v: (1, *v.shape[1:])),
                        (lambda v: (min(stack, len(v)), *v.shape[1:])))
    if real:
        out["real"] = ([(fill_nearest(u)[None], u[None], {}) for _, u, _ in real],
                       [(u[None], u[None], {"mask_values": mv} if mv else {}) for _, u, mv in real],
                       (lambda v: v.shape), (lambda v: v.shape))
    return out


def run(models: list, sim: np.ndarray | None, real: list | None, stack: int = 64, anchor_bounds=None,
        progress: bool = True, noisy: np.ndarray | None = None) -> dict:
    """Every curve and the comparisons. ``models``: Model objects remembered in this process
    (log10-input variants where they read intensities); ``sim``: (N, h, w) float32 log10 frames;
    ``noisy``: the noisy held-out set (``noisy_frames``) in its metric domain."""
    from tqdm.auto import tqdm

    from ..hdf5 import SAE

    anchor_bounds = anchor_bounds or ANCHOR_BOUNDS
    result = {"sets": {}, "targets": list(TARGETS)}
    for set_name, (a_parts, s_parts, a_chunk, s_chunk) in _sets(sim, real, stack, noisy).items():
        jobs = [("anchor", c, eb, lambda c=c, eb=eb, **_: _filter(c, eb)) for c in anchor_bounds for eb in anchor_bounds[c]]
        jobs += [("anchor", c, eb, lambda c=c, eb=eb, **_: _filter(c, eb)) for c in ("SPERR", "SZ3") for eb in ABS_BOUNDS
                 if eb not in anchor_bounds.get(c, ())]
        for m in models:
            levels = list(range(int(rate_levels(m)))) or [None]
            for lv in levels:
                for gate in ("off", "default"):
                    g = {"max_error": None} if gate == "off" else {}
                    jobs.append(("pure", m.name, (lv, gate), lambda m=m, lv=lv, g=g, **kw: SAE(
                        model=m.identity, level=lv, **g, **kw)))
            if levels != [None]:  # the bounded modes, with the network's prediction or the classical one
                for eb in ABS_BOUNDS:
                    for pred in ("network", "classical"):
                        jobs.append(("bounded", m.name, (eb, pred), lambda m=m, eb=eb, pred=pred, **kw: SAE(
                            model=m.identity, error_bound=eb, predictor=pred, **kw)))
        rows = []
        for kind, name, setting, kw in tqdm(jobs, desc=f"rd {set_name}", unit="run", disable=not progress):
            stats = [] if kind != "anchor" else None
            p = _measure(a_parts if kind == "anchor" else s_parts, kw, a_chunk if kind == "anchor" else s_chunk, stats)
            row = {"kind": kind, "method": name, **p}
            if kind == "anchor":
                row["bound"] = setting
                row["sweep"] = setting in anchor_bounds.get(name, ())
            elif kind == "pure":
                row["level"], row["gate"] = setting
                row["fallback_frames"] = sum(s["fallback_frames"] for s in stats)
                row["frames"] = sum(s["frames"] for s in stats)
            else:  # frames of the chunks that kept the network's prediction (the encoder picks per chunk)
                row["bound"], row["predictor"] = setting
                row["network_frames"] = sum(s["latent_frames"] for s in stats)
                row["frames"] = sum(s["frames"] for s in stats)
            rows.append(row)
        _speed_vs_sz3(rows)
        result["sets"][set_name] = {"rows": rows, "compare": compare(rows, models),
                                    "bounded": bounded(rows)}
    from .report import versions

    result.update(versions=versions(), date=time.strftime("%Y-%m-%d %H:%M"),
                  frames={"sim": None if sim is None else list(sim.shape), "real": len(real or []),
                          "noisy": None if noisy is None else list(noisy.shape)})
    return result


def rate_levels(model) -> int:
    """The model's rate levels (0: none): conv-hyper's ``levels``, the wavelet family's
    ``rate_levels`` (its ``levels`` are the transform's)."""
    return int(getattr(model.module, "rate_levels", getattr(model.module, "levels", 0)) or 0)


def curve(points: list[tuple[float, float]]) -> np.ndarray:
    """(error, ratio) points -> the Pareto front, ascending error (a point stays only if it
    beats the ratio of every lower-error point)."""
    out = []
    for e, r in sorted(points):
        if e > 0 and np.isfinite(r) and not (out and r <= out[-1][1]):
            out.append((e, r))
    return np.array(out).reshape(-1, 2)


def ratio_at(c: np.ndarray, err: float) -> tuple[float, bool]:
    """log(ratio) interpolated linearly in log(error); (ratio, extrapolated) beyond the ends."""
    if len(c) == 0:
        return float("nan"), True
    if len(c) == 1:
        return (float(c[0, 1]), False) if np.isclose(c[0, 0], err) else (float("nan"), True)
    le, lr, x = np.log(c[:, 0]), np.log(c[:, 1]), np.log(err)
    if le[0] <= x <= le[-1]:
        return float(np.exp(np.interp(x, le, lr))), False
    i = 0 if x < le[0] else len(le) - 2
    return float(np.exp(lr[i] + (lr[i + 1] - lr[i]) / (le[i + 1] - le[i]) * (x - le[i]))), True


def _anchor_curve(rows, codec, key):
    return curve([(r[key], r["ratio"]) for r in rows if r["kind"] == "anchor" and r["method"] == codec and r["sweep"]])


def compare(rows: list, models: list) -> list[dict]:
    """ours / anchor at each target error (ours interpolated over its levels), and at each of our
    own points; '*'-worthy extrapolations flagged."""
    out = []
    for m in models:
        for gate in ("off", "default"):
            pts = [r for r in rows if r["kind"] == "pure" and r["method"] == m.name and r["gate"] == gate]
            for key in ("agg", "median"):
                ours_c = curve([(r[key], r["ratio"]) for r in pts])
                cases = [("target", t, *ratio_at(ours_c, t)) for t in TARGETS] + \
                        [("level", r[key], r["ratio"], False) for r in pts]
                for where, err, ours, ex in cases:
                    row = {"model": m.name, "gate": gate, "metric": key, "at": where, "err": float(err),
                           "ours": ours, "ours_extrap": ex}
                    for c in ANCHOR_BOUNDS:
                        theirs, ex2 = ratio_at(_anchor_curve(rows, c, key), err)
                        row[c], row[f"{c}_extrap"], row[f"x_{c}"] = theirs, ex2, ours / theirs
                    out.append(row)
    return out


def bounded(rows: list) -> list[dict]:
    """Our bounded rows against SPERR and SZ3 at the same absolute bound."""
    out = []
    for r in rows:
        if r["kind"] != "bounded":
            continue
        row = dict(r)
        for c in ("SPERR", "SZ3"):
            a = next((x for x in rows if x["kind"] == "anchor" and x["method"] == c and x["bound"] == r["bound"]), None)
            if a is not None:
                row[c], row[f"x_{c}"] = a["ratio"], r["ratio"] / a["ratio"]
        out.append(row)
    return out


def _speed_vs_sz3(rows: list) -> None:
    sz3 = [r for r in rows if r["kind"] == "anchor" and r["method"] == "SZ3"]
    for r in rows:
        if r["kind"] == "bounded":
            ref = next((a for a in sz3 if a["bound"] == r["bound"]), None)
        else:  # pure and anchors: SZ3's point nearest in aggregate error
            ref = min(sz3, key=lambda a: abs(np.log(a["agg"] / r["agg"])), default=None) if r["agg"] > 0 else None
        if ref is not None:
            r["enc_vs_SZ3"], r["dec_vs_SZ3"] = r["enc_MBps"] / ref["enc_MBps"], r["dec_MBps"] / ref["dec_MBps"]
