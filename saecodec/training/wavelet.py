"""Training the wavelet family: rate levels, context classes and frozen tables from frames.

Nothing here runs a network: every stage is counting in the C engine (``Engine.stats``) over
the training frames, in the model's domain exactly as the codec sees them
(``Transform.forward``), then integer tables. Stages, each checkpointed:

1. rate levels: per target error (coarse to fine), the median over sample frames of the
   largest step meeting it (``Engine.search``);
2. contexts: the weights and bias of each group's context value, fitted by least squares
   of log2(1 + |q|) on the features (``fit_weights``), its range (the 0.5 and 99.9
   percentiles) in equal bins, then (``fit_classes``) symbol counts over 64 fine bins of
   that range and per group the contiguous partition into the model's classes with the
   least code length (dynamic programming) gives the thresholds;
3. tables: counts at every rate level; with several table sets, a k-means in code length
   over frames (each frame and group goes to the set that codes it in the fewest bits, as
   the encoder will choose), then frequencies summing to 2^prec with a prior; the sign
   tables from the signs counted by pattern;
4. measurement: real bytes and errors through the engine on held-out frames.

The learned lifting steps and any other trained piece enter as model parameters set
before stage 1 (``model.module``); the recipe goes in the model's provenance.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..coding import wavelet_engine as we
from ..errors import SaecodecError
from ..models.wavelet import normalise_counts

FINE = 64  # fine context buckets of stage 2


@dataclass
class WaveletTrainConfig:
    targets: tuple = (0.10, 0.07, 0.05, 0.035, 0.025, 0.017)  # rate levels 0 (fewest bytes) .. L-1
    calib_frames: int = 256
    fit_weights: bool = True
    fit_samples: int = 400_000  # coefficients for the least-squares fit of the context weights
    fit_classes: bool = True
    set_iters: int = 6
    prior: float = 2.0  # pseudo-counts of the group's distribution added to each table
    batch: int = 256
    val_frames: int = 256
    seed: int = 0
    checkpoint: str | None = None
    resume: bool = False
    progress: bool = True
    extra: dict = field(default_factory=dict)


def model_domain(model, frames: np.ndarray, log10=None) -> np.ndarray:
    """Frames (B, H, W) -> what the engine codes (B, H, W): the model's ``Transform.forward``,
    or log10(max(I, 1e-6)) for the frames flagged ``log10`` (research training sets); ``log10``
    "u": the frames are already in the metric domain (a set measured in its own units, such as
    asinh of counts), taken as they are (less their mean when the transform removes it)."""
    b, h, w = frames.shape
    bad = ~np.isfinite(np.asarray(frames))
    frames = _filled(np.asarray(frames))
    if isinstance(log10, str):
        if log10 != "u":
            raise SaecodecError(f"unknown frame domain {log10!r}")
        z = np.asarray(frames, np.float64).copy()
        if model.transform.per_frame:
            z -= z.mean(axis=(1, 2), keepdims=True)
    else:
        z, side = model.transform.forward(frames)
        z = z.reshape(b, h, w).astype(np.float64)
        if log10 is not None and np.any(log10):
            u = np.log10(np.maximum(frames[log10].astype(np.float64), 1e-6))
            if model.transform.per_frame:
                u = u - u.mean(axis=(1, 2), keepdims=True)
            z[log10] = u
    if bad.any() and hasattr(model.module, "fill_masked"):  # the family's own fill, as the codec runs it
        rows = np.flatnonzero(bad.reshape(b, -1).any(axis=1))
        filled = model.module.fill_masked(z[rows].astype(np.float32), bad[rows])
        z[rows] = np.where(bad[rows], filled, z[rows])
    return z


def _filled(frames: np.ndarray) -> np.ndarray:
    """Non-finite pixels replaced by their frame's median finite value, as the codec fills masked
    pixels before the transform (coding.mask.fill; the family's own fill follows in model_domain)."""
    bad = ~np.isfinite(frames)
    if not bad.any():
        return frames
    out = np.array(frames, np.float64)
    for i in np.flatnonzero(bad.reshape(len(out), -1).any(axis=1)):
        ok = ~bad[i]
        out[i][bad[i]] = np.median(out[i][ok]) if ok.any() else 0.0
    return out


def _batches(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


class _Progress:
    def __init__(self, total: int, desc: str, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="frame", leave=False)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Checkpoint:
    """Stage results in one .npz (atomic replace); ``resume`` reads what is there."""

    def __init__(self, path: str | None, resume: bool, config: dict):
        self.path = Path(path) if path else None
        self.state: dict = {}
        if self.path and resume and self.path.exists():
            with np.load(self.path, allow_pickle=False) as f:
                self.state = {k: f[k] for k in f.files}
            saved = json.loads(str(self.state.pop("config", "{}")))
            if saved and saved != json.loads(json.dumps(config)):
                raise SaecodecError(f"checkpoint {self.path} was written with another configuration; "
                                    "start without --resume or give the same options")
        self.config = config

    def save(self, **values) -> None:
        self.state.update(values)
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(tmp, config=json.dumps(self.config), **self.state)
        os.replace(tmp, self.path)


def _levels(eng, z, targets, n, rng) -> np.ndarray:
    idx = rng.choice(len(z), size=min(n, len(z)), replace=False)
    out = []
    for t in targets:
        steps = eng.search(z[idx], t, 0, we.STEP_MAX)
        out.append(int(np.round(np.median(steps))))
    return np.array(out)


def _code_length(counts: np.ndarray) -> float:
    """Bits of coding the rows of ``counts`` (..., T) each with its own ideal table."""
    c = counts.astype(np.float64)
    tot = c.sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(-(c * np.where(c > 0, np.log2(c / tot), 0.0)).sum())


def fit_thresholds(fine: np.ndarray, fine_edges, nclasses: int, amax: int, skip=()) -> np.ndarray:
    """(G, FINE, T) counts over fine buckets -> (G, nclasses - 1) thresholds: per group the
    contiguous partition of the buckets with the least total code length (fine_edges: one
    array for every group, or a dict of each group's)."""
    G = fine.shape[0]
    out = np.full((G, nclasses - 1), 1 << 30, np.int32)
    for g in range(G):
        if g in skip:
            continue
        edges = fine_edges[g] if isinstance(fine_edges, dict) else fine_edges
        h = fine[g].astype(np.float64)
        used = np.flatnonzero(h.sum(1) > 0)
        if len(used) <= 1:
            continue
        lo, hi = used[0], used[-1] + 1
        h = h[lo:hi]
        n = len(h)
        cum = np.concatenate([np.zeros((1, h.shape[1])), np.cumsum(h, 0)])

        def cost(a, b):  # buckets [a, b) as one class
            return _code_length(cum[b] - cum[a])

        k_max = min(nclasses, n)
        best = np.full((k_max + 1, n + 1), np.inf)
        arg = np.zeros((k_max + 1, n + 1), np.int64)
        best[0, 0] = 0.0
        costs = {(a, b): cost(a, b) for a in range(n) for b in range(a + 1, n + 1)}
        for k in range(1, k_max + 1):
            for b in range(1, n + 1):
                for a in range(k - 1, b):
                    v = best[k - 1, a] + costs[(a, b)]
                    if v < best[k, b]:
                        best[k, b], arg[k, b] = v, a
        k = int(np.argmin(best[1:, n])) + 1
        cuts, b = [], n
        while k > 0:
            a = arg[k, b]
            if a > 0:
                cuts.append(a)
            b, k = a, k - 1
        # a class starts at fine bucket lo + cut: its lowest context value is that bucket's edge
        thr = sorted(int(edges[lo + c - 1]) for c in cuts)
        out[g, :len(thr)] = thr
    return out


def _bins(lo: int, hi: int, n: int, amax: int) -> tuple[np.ndarray, int]:
    """n equal bins of [lo, hi): the n - 1 inner edges, and the shift that fits the range in amax + 1 entries."""
    hi = max(hi, lo + n)
    edges = lo + -(-np.arange(1, n) * (hi - lo) // n)
    shift = 0
    while (hi - lo) >> shift > amax:
        shift += 1
    return edges.astype(np.int64), shift


def fit_weights(eng, module, zs, steps, cfg, rng) -> dict:
    """Per detail group: integer weights (1/16 log2 per feature unit) and bias (1/256 log2) of the
    least-squares fit of log2(1 + |q|) on the features, and the 0.5 / 99.9 percentiles of a."""
    feats, mags, grps = [], [], []
    for z in zs:  # enough frames of each stack for fit_samples coefficients over all rate levels
        n = min(len(z), -(-cfg.fit_samples // (z[0].size * len(steps))) + 1)
        idx = np.sort(rng.choice(len(z), size=n, replace=False))
        for k in steps:
            f, m, g = eng.features(z[idx], k)
            feats.append(f), mags.append(m), grps.append(g)
    f, m, g = np.concatenate(feats), np.concatenate(mags), np.concatenate(grps)
    if len(m) > cfg.fit_samples:
        sel = rng.choice(len(m), cfg.fit_samples, replace=False)
        f, m, g = f[sel], m[sel], g[sel]
    F = module.flut[np.minimum(f, module.fmax)].astype(np.float64)
    y = np.log2(1.0 + m)
    out = {"ctx_w": module.ctx_w.copy(), "bias": module.bias.copy(), "range": {}}
    for grp in np.unique(g):
        sel = g == grp
        A = np.c_[F[sel] / 16.0, np.ones(sel.sum())]
        coef = np.linalg.lstsq(A, y[sel], rcond=None)[0]
        w = np.round(coef[:-1] * 16).astype(np.int64)
        bias = int(round(coef[-1] * 256))
        out["ctx_w"][grp] = np.clip(w, -4096, 4096)
        out["bias"][grp] = bias
        a = F[sel].astype(np.int64) @ out["ctx_w"][grp].astype(np.int64) + bias
        out["range"][int(grp)] = (int(np.floor(np.percentile(a, 0.5))), int(np.ceil(np.percentile(a, 99.9))) + 1)
    return out


def set_bins(module, ranges: dict, n: int) -> None:
    """Equal bins of each fitted group's range as its classes (a_lo, a_shift, thresholds)."""
    for grp, (lo, hi) in ranges.items():
        edges, shift = _bins(lo, hi, n, module.amax)
        module.a_lo[grp], module.a_shift[grp] = lo, shift
        module.thresholds[grp] = 1 << 30  # none
        module.thresholds[grp, :len(edges)] = edges[:module.nclasses - 1]


def _fine_engine(module, ranges: dict):
    """The model's engine with FINE classes: equal bins of each group's fitted range (stage 2),
    or log-spaced context values where no range was fitted."""
    import copy

    fine = copy.deepcopy(module)
    fine.nclasses = FINE
    G, T = module.ngroups, module.ntok
    fine.thresholds = np.full((G, FINE - 1), 1 << 30, np.int32)
    edges = {}
    for g in range(G):
        if g in ranges:
            e, shift = _bins(*ranges[g], FINE, module.amax)
            fine.a_lo[g], fine.a_shift[g] = ranges[g][0], shift
        else:
            e = np.unique(np.round(np.geomspace(1, max(2, int(module.thresholds[g].max(initial=2)) if
                                                           module.thresholds[g].max(initial=0) < 1 << 29 else 4096),
                                                200)).astype(np.int64))
            e = np.unique(e[np.linspace(0, len(e) - 1, FINE - 1).round().astype(int)])
            fine.a_lo[g], fine.a_shift[g] = 0, 0
            while int(e.max()) >> fine.a_shift[g] > module.amax:
                fine.a_shift[g] += 1
        fine.thresholds[g, :len(e)] = e
        edges[g] = e
    fine.freq = np.tile(normalise_counts(np.ones(T), module.prec), (1, G, FINE, 1)).astype(np.int32)
    fine.zr_freq = np.full((G, FINE), 1 << (module.prec - 1), np.int32)
    fine.nsets = 1
    return we.Engine(fine.engine_params()), edges


def _tables(counts: np.ndarray, prior: float, prec: int) -> np.ndarray:
    """(S, G, C, T) counts -> frequencies: each table gets ``prior`` pseudo-counts spread as its
    group's distribution (so rare contexts lean on their group), then normalised."""
    group = counts.sum(axis=2, keepdims=True).astype(np.float64) + 1.0
    group /= group.sum(-1, keepdims=True)
    c = counts + prior * group
    out = np.zeros(counts.shape, np.int64)
    for idx in np.ndindex(counts.shape[:-1]):
        out[idx] = normalise_counts(c[idx], prec)
    return out


def borrow_untrained(module, seen: np.ndarray) -> dict:
    """Groups no training frame reached (levels deeper than the training frames have: 1024x1024
    frames from 64x64 training data) take every parameter of the nearest trained level's group
    of the same orientation. Returns {group: donor}."""
    out = {}
    rows = module.groups
    for lv, row in enumerate(rows):
        for o in range(4):
            g = row[o]
            if seen[g] > 0 or g in out:
                continue
            donors = sorted((abs(lv2 - lv), lv2) for lv2, r in enumerate(rows) if seen[r[o]] > 0)
            if not donors:
                continue
            d = rows[donors[0][1]][o]
            out[g] = d
            for name in ("ctx_w", "bias", "a_lo", "a_shift", "thresholds", "eg_k", "sign_freq", "zr_freq"):
                getattr(module, name)[g] = getattr(module, name)[d]
            module.freq[:, g] = module.freq[:, d]
    return {int(k): int(v) for k, v in out.items()}


def _binary_tables(counts: np.ndarray, prior: float, prec: int) -> np.ndarray:
    """(G, K, 2) counts of a binary symbol per (group, context) -> the frequency of symbol 0 out
    of 2^prec, each context leaning on its group's share with ``prior`` pseudo-counts, within
    [1, 2^prec - 1] (the sign tables: '+'; the zero-segment tables: 'all zero')."""
    P = 1 << prec
    group = (counts.sum(axis=1, keepdims=True) + 1.0)
    share = group[..., 0] / group.sum(-1)
    p0 = (counts[..., 0] + prior * share) / (counts.sum(-1) + prior)
    return np.clip(np.round(p0 * P), 1, P - 1).astype(np.int32)


def train_wavelet(model, frames, cfg: WaveletTrainConfig, log10=None, val=None, provenance: dict | None = None,
                  profiles=None):
    """Fit ``model`` (a wavelet-family Model, architecture fixed) on ``frames`` (N, H, W), or a
    list of such stacks (any sizes); returns (model, result). ``log10``: per stack None (the
    model's transform), a boolean per frame (log10 of the intensity) or "u" (already in the
    metric domain); ``val``: held-out frames in the model's input (else the last
    ``cfg.val_frames`` of the first stack are held out). ``profiles``: with a model of P
    context profiles, P lists of stack indices, the stacks each profile's context model is
    fitted on (the rate levels use every stack); one profile fits on every stack."""
    mod = model.module
    stacks = frames if isinstance(frames, (list, tuple)) else [frames]
    flags = log10 if isinstance(log10, (list, tuple)) else [log10] * len(stacks)
    zs = [model_domain(model, np.asarray(s), f if f is None or isinstance(f, str) else np.asarray(f, bool))
          for s, f in zip(stacks, flags)]
    if profiles is None:
        if mod.profiles > 1:
            raise SaecodecError(f"the model has {mod.profiles} context profiles: say which stacks train each")
        profiles = [list(range(len(zs)))]
    profiles = [[int(j) for j in grp] for grp in profiles]
    if len(profiles) != mod.profiles or any(not grp or not all(0 <= j < len(zs) for j in grp) for grp in profiles):
        raise SaecodecError(f"profiles: {mod.profiles} non-empty lists of stack indices (0 .. {len(zs) - 1})")
    if val is None:
        nv = min(cfg.val_frames, len(zs[0]) // 5)
        val, zs[0] = zs[0][len(zs[0]) - nv:], zs[0][:len(zs[0]) - nv]
    else:
        val = model_domain(model, np.asarray(val))
    total = sum(len(z) for z in zs)
    if not total:
        raise SaecodecError("no training frames")
    config = {"cfg": {k: v for k, v in asdict(cfg).items() if k not in ("checkpoint", "resume", "progress")},
              "arch": mod.architecture, "frames": [list(z.shape) for z in zs]}
    if mod.profiles > 1:
        config["profiles"] = profiles
    ck = _Checkpoint(cfg.checkpoint, cfg.resume, config)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    eng = we.Engine(mod.engine_params())

    # 1. rate levels (shared by the profiles)
    if "level_steps" not in ck.state:
        if len(cfg.targets) != mod.rate_levels:
            raise SaecodecError(f"{len(cfg.targets)} target errors for {mod.rate_levels} rate levels")
        per = [_levels(eng, z, sorted(cfg.targets, reverse=True), max(1, cfg.calib_frames * len(z) // total), rng)
               for z in zs]
        w = np.array([len(z) for z in zs], np.float64)
        ck.save(level_steps=np.round(np.average(np.array(per), axis=0, weights=w)).astype(np.int64))
    steps = np.asarray(ck.state["level_steps"], np.int64)
    mod.level_steps = np.array([we.step(int(k)) for k in steps])

    # 2-3. each profile's context model and tables on its stacks
    borrowed, symbols = [], 0
    for i, grp in enumerate(profiles):
        single = mod.profile(i)
        prefix = f"p{i}_" if mod.profiles > 1 else ""
        b, n = _fit_profile(single, [zs[j] for j in grp], steps, cfg, ck, prefix, rng,
                            f" [profile {i}]" if mod.profiles > 1 else "")
        mod.set_profile(i, single)
        borrowed.append(b)
        symbols += n

    # 4. measurement on held-out frames
    eng = we.Engine(mod.engine_params())
    levels = []
    for lv, k in enumerate(steps):
        data, zhat, _ = eng.encode(val, k) if len(val) else (b"", val, None)
        d = val - val.mean(axis=(1, 2), keepdims=True)
        e2 = ((zhat - val) ** 2).sum(axis=(1, 2))
        d2 = (d ** 2).sum(axis=(1, 2))
        levels.append({"level": lv, "step": float(we.step(int(k))), "bytes_per_frame": len(data) / max(1, len(val)),
                       "agg_rel_l2": float(np.sqrt(e2.sum() / max(d2.sum(), 1e-300))),
                       "median_rel_l2": float(np.median(np.sqrt(e2 / np.maximum(d2, 1e-300)))) if len(val) else 0.0})
    result = {"levels": levels, "train_frames": int(total), "val_frames": int(len(val)),
              "borrowed": borrowed[0] if mod.profiles == 1 else borrowed,
              "seconds": round(time.perf_counter() - t0, 1), "symbols": int(symbols)}
    model.metrics = {"val": levels}
    model.provenance = json.dumps({**(provenance or {}), "trainer": "saecodec.training.wavelet",
                                   "config": config["cfg"], "train_frames": int(total),
                                   **({"profiles": profiles} if mod.profiles > 1 else {})}, sort_keys=True)
    model.identity = None
    return model, result


def _fit_profile(mod, zs, steps, cfg, ck, prefix, rng, tag):
    """Stages 2-3 for one context profile (``mod``: a one-profile module, fitted in place) on
    the stacks ``zs``; checkpoint keys carry ``prefix``. Returns (borrowed groups, symbols)."""
    total = sum(len(z) for z in zs)
    state = {k[len(prefix):]: v for k, v in ck.state.items() if k.startswith(prefix)} if prefix else ck.state

    def save(**values):
        ck.save(**{prefix + k: v for k, v in values.items()})
        state.update(values)

    def count_pass(engine, shape, desc, per_frame_fn=None):
        acc = np.zeros(shape, np.int64)
        bar = _Progress(total * len(steps), desc + tag, cfg.progress)
        for z in zs:
            for sl in _batches(len(z), cfg.batch):
                for k in steps:
                    if per_frame_fn is None:
                        c = engine.stats(z[sl], k)[0]
                        acc += c
                    else:
                        c = engine.stats(z[sl], k, per_frame=True)[0]
                        per_frame_fn(acc, c)
                    bar.update(sl.stop - sl.start)
        bar.close()
        return acc

    # 2. contexts
    eng = we.Engine(mod.engine_params())
    ll_group = {int(mod.groups[lv][0]) for lv in range(len(mod.groups))} if mod.ll_ctx == "grad" else set()
    if cfg.fit_weights and "ctx_w" not in state:
        fit = fit_weights(eng, mod, zs, steps, cfg, rng)
        ranges = np.array([[g, *fit["range"][g]] for g in sorted(fit["range"])], np.int64).reshape(-1, 3)
        save(ctx_w=fit["ctx_w"], bias=fit["bias"], ranges=ranges)
    ranges = {}
    if "ctx_w" in state:
        mod.ctx_w = np.asarray(state["ctx_w"], np.int32)
        mod.bias = np.asarray(state["bias"], np.int32)
        ranges = {int(g): (int(lo), int(hi)) for g, lo, hi in state["ranges"]}
        set_bins(mod, ranges, mod.nclasses)
    if cfg.fit_classes and "thresholds" not in state:
        fe, edges = _fine_engine(mod, ranges)
        fine = count_pass(fe, (mod.ngroups, FINE, mod.ntok), "contexts")
        thr = fit_thresholds(fine, edges, mod.nclasses, mod.amax, skip=ll_group)
        for g in ll_group:
            thr[g] = mod.thresholds[g]
        save(thresholds=thr)
    if "thresholds" in state:
        mod.thresholds = np.asarray(state["thresholds"], np.int32)
    eng = we.Engine(mod.engine_params())
    S, G, C, T = mod.freq.shape

    def binary_counts(engine):
        """Sign counts by pattern and zero-segment flag counts over every frame and rate level."""
        signs, zruns = np.zeros((G, we.NSIGN, 2), np.int64), np.zeros((G, C, 2), np.int64)
        if mod.signs == "context" or mod.zero_run:
            for z in zs:
                for sl in _batches(len(z), cfg.batch):
                    for k in steps:
                        _, sg, zr, _ = engine.stats(z[sl], k)
                        signs += sg
                        zruns += zr
        return signs, zruns

    def tables(engine, desc):
        counts = count_pass(engine, (G, C, T), desc)[None] if S == 1 else \
            _table_sets(engine, count_pass, (S, G, C, T), cfg, mod.prec)
        signs, zruns = binary_counts(engine)
        save(freq=_tables(counts, cfg.prior, mod.prec), counts=counts,
             sign_freq=_binary_tables(signs, cfg.prior, mod.prec), zr_freq=_binary_tables(zruns, cfg.prior, mod.prec))

    # 3. tables (and table sets)
    if "freq" not in state:
        tables(eng, "tables")
        if mod.rdo_lambda > 0 and not cfg.extra.get("rdo_refit_done"):
            # the encoder's RDO weighs rates with these tables: count again with them, once
            mod.freq, mod.sign_freq, mod.zr_freq = (np.asarray(state[k], np.int32) for k in ("freq", "sign_freq",
                                                                                             "zr_freq"))
            tables(we.Engine(mod.engine_params()), "tables (RDO)")
    mod.freq = np.asarray(state["freq"], np.int32)
    mod.sign_freq = np.asarray(state["sign_freq"], np.int32)
    mod.zr_freq = np.asarray(state["zr_freq"], np.int32)
    counts = np.asarray(state["counts"])
    return borrow_untrained(mod, counts.sum(axis=(0, 2, 3))), int(counts.sum())


def _table_sets(eng, count_pass, shape, cfg, prec):
    """k-means in code length: S tables per group, each frame (and rate level) coded by the set
    that costs it least, as the encoder chooses."""
    S, G, C, T = shape
    # start: the group's frames split by their share of zero tokens (a rate/texture proxy)
    zero_share = []

    def collect_share(acc, c):
        tot = c.sum(axis=(2, 3)).astype(np.float64)
        zero_share.append(c[..., 0].sum(axis=2) / np.maximum(tot, 1))  # (B, G)

    count_pass(eng, (1,), "table sets: start", collect_share)
    share = np.concatenate(zero_share)  # (N * levels, G) in pass order
    edges = np.quantile(share, np.linspace(0, 1, S + 1)[1:-1], axis=0)  # (S-1, G)

    def assign_start(i0, c):
        s = (share[i0:i0 + len(c)][:, None, :] > edges[None]).sum(1)  # (B, G)
        return s

    counts = np.zeros(shape, np.int64)
    pos = [0]

    def acc_start(acc, c):
        s = assign_start(pos[0], c)
        pos[0] += len(c)
        for g in range(G):
            np.add.at(counts[:, g], s[:, g], c[:, g])

    count_pass(eng, (1,), "table sets: init", acc_start)
    for it in range(cfg.set_iters):
        tab = _tables(counts, cfg.prior, prec).astype(np.float64)
        cost = -np.log2(tab / float(1 << prec))  # (S, G, C, T)
        new = np.zeros(shape, np.int64)
        moved = [0]

        def acc(acc_, c):
            bits = np.einsum("bgct,sgct->bgs", c.astype(np.float64), cost)
            s = bits.argmin(-1)
            for g in range(G):
                np.add.at(new[:, g], s[:, g], c[:, g])

        count_pass(eng, (1,), f"table sets: pass {it + 1}", acc)
        if np.array_equal(new, counts):
            break
        counts = new
    return counts
