"""The proposed engine design (spec Revision 1+) in numpy: integer log-feature linear contexts,
sign contexts, magnitude-category tokens, static or adaptive integer tables.

Per detail coefficient (coding order: coarse to fine; per level HL, LH, HH; raster order):
* integer features x_i (|q| of already decoded coefficients):
  W, N, NW, NE, WW, NN (same band, causal), P (parent: same orientation one level coarser at
  (y>>1, x>>1), clamped to its band), PN (sum of the parent's 4-neighbours' |q|), S (sum of |q| at
  (y, x) in the sibling bands already coded at this level), SN (sum of their 4-neighbours' |q|);
* f_i = LOG[min(x_i, 4095)], LOG[x] = round(16 log2(1 + x)) (a 4096-entry table);
* a = bias_g + sum_i w_g,i f_i with integer weights (units 1/256) per group g = (level from the
  finest, capped at 5; orientation), class c = clamp(floor((a - lo_g) * K / (hi_g - lo_g)), 0, K-1);
* magnitude token t = category(|q|): |q| < 16 itself; else 16 + 2 (floor(log2|q|) - 4) + (the bit
  below the leading one), followed by floor(log2|q|) - 1 raw bits; table T[g][c] (alphabet NTOK);
* sign (q != 0): binary table per (g, sign pattern of W, N, NW, NE, parent, first sibling), 3^6
  patterns (0: zero, 1: +, 2: -), or one raw bit (cfg sign='raw').
LL band: MED prediction residual e of q; token category(|e|) + raw bits + raw sign; class from the
causal gradient activity (|W-NW| + |N-NW| + |NE-N|), 12 classes, own tables.
"""
from __future__ import annotations

import numpy as np

import wr_codec as W0
from wr_codec import shift, parent_of, med_predict

LOGT = np.round(16 * np.log2(1 + np.arange(4096))).astype(np.int64)
NTOK = 16 + 2 * 28
DEFAULT = dict(W0.DEFAULT, K=32, sign="ctx", adapt=0, theta=0.4, lin=None, llcls=12, header_bytes=2.0)
FEATS = ("W", "N", "NW", "NE", "WW", "NN", "P", "PN", "S", "SN")


def category(a):
    a = np.asarray(a, np.int64)
    lg = np.floor(np.log2(np.maximum(a, 1))).astype(np.int64)
    half = (a >> np.maximum(lg - 1, 0)) & 1
    tok = np.where(a < 16, a, 16 + 2 * (lg - 4) + half)
    raw = np.where(a < 16, 0, lg - 1)
    return tok, raw


def group(j, o):
    return min(j, 5) * 3 + o


def band_features(qc):
    """Per detail band in coding order: (j, o, q, dict of integer feature maps, sign maps)."""
    out = []
    for k, j, o, Q in W0.detail_bands(qc):
        A = np.abs(Q)
        f = W0.causal(A)
        S = np.sign(Q)
        sg = [shift(S, 0, 1), shift(S, 1, 0), shift(S, 1, 1), shift(S, 1, -1)]
        if k > 1:
            Pq = qc[k - 1][o]
            PA = np.abs(Pq)
            f["P"] = parent_of(PA, A.shape)
            f["PN"] = parent_of(shift(PA, 0, 1) + shift(PA, 0, -1) + shift(PA, 1, 0) + shift(PA, -1, 0), A.shape)
            sg.append(parent_of(np.sign(Pq), A.shape))
        else:
            f["P"] = f["PN"] = np.zeros_like(A)
            sg.append(np.zeros_like(A))
        s = np.zeros_like(A)
        sn = np.zeros_like(A)
        ssib = np.zeros_like(A)
        for oo in range(o):
            B = _fit(qc[k][oo], A.shape)
            BA = np.abs(B)
            s = s + BA
            sn = sn + shift(BA, 0, 1) + shift(BA, 0, -1) + shift(BA, 1, 0) + shift(BA, -1, 0)
            if oo == 0:
                ssib = np.sign(B)
        f["S"], f["SN"] = s, sn
        sg.append(ssib)
        lp = getattr(qc, "lp", None)
        if lp is not None:
            u = _fit(lp[j], A.shape)
            f["LP"] = np.clip(np.round(8 * u), -16, 80).astype(np.int64) + 16
            f["LSTEP"] = np.full(A.shape, int(round(16 * np.log2(qc.step))) + 128, np.int64)
        out.append((j, o, Q, f, sg))
    return out


def _fit(B, shape):
    if B.shape[-2:] == shape[-2:]:
        return B
    out = np.zeros(B.shape[:-2] + shape[-2:], B.dtype)
    h, w = min(B.shape[-2], shape[-2]), min(B.shape[-1], shape[-1])
    out[..., :h, :w] = B[..., :h, :w]
    return out


def logf(f):
    cols = [LOGT[np.minimum(f[n], 4095)] for n in FEATS]
    cols += [f[n] for n in ("LP", "LSTEP") if n in f]  # integer features used as they are
    return np.stack(cols, -1)


class QC(list):
    """Quantised coefficients plus what a level-by-level decoder also knows: ``lp[j]`` the low-pass
    band LL_j reconstructed from the dequantised coarser levels, the frame mean, the step."""


def with_lowpass(qc, rc, mean, step, extras=None):
    """QC of qc with lp: for each detail level j, the decoder's LL_j (inverse of the dequantised
    LL and levels > j), converted to u units at the band's positions (LL_j / 2^j + mean)."""
    import wr_lift as L

    out = QC(qc)
    Lv = len(qc) - 1
    out.lp, out.step = {}, step
    for k in range(1, Lv + 1):
        j = Lv - k + 1
        part = rc[:k]
        llj = L.inv2(part, extras[-(k - 1):] if (extras is not None and k > 1) else None) if k > 1 else rc[0]
        out.lp[j] = llj / 2.0 ** j + mean
    return out


def fit_linear(train_stacks, K=32):
    """Per group LS fit of log2(1 + |q|) on the integer log features (from (j, o, q, f) of training
    stacks); integer weights (1/256), bias, and bins lo/hi (0.5 / 99.9 percentiles of a)."""
    X, Y = {}, {}
    for bands in train_stacks:
        for j, o, Q, f, sg in bands:
            g = group(j, o)
            F = logf(f)
            F = F.reshape(-1, F.shape[-1])
            X.setdefault(g, []).append(F)
            Y.setdefault(g, []).append(np.log2(1 + np.abs(Q)).reshape(-1))
    lin = {}
    for g in X:
        F = np.concatenate(X[g]).astype(np.float64)
        y = np.concatenate(Y[g])
        A = np.c_[F / 16.0, np.ones(len(F))]
        w = np.linalg.lstsq(A, y, rcond=None)[0]
        wi = np.round(w[:-1] * 256 / 16).astype(np.int64)  # a in units of 1/256 of log2
        bi = int(round(w[-1] * 256))
        a = F.astype(np.int64) @ wi + bi
        lo, hi = np.percentile(a, 0.5), np.percentile(a, 99.9)
        lin[g] = (wi, bi, int(np.floor(lo)), int(np.ceil(hi)) + 1)
    return {"lin": lin, "K": K}


def classes(f, g, model):
    wi, bi, lo, hi = model["lin"][g]
    a = logf(f) @ wi + bi
    K = model["K"]
    return np.clip((a - lo) * K // (hi - lo), 0, K - 1)


def streams(qc, cfg, model):
    """-> {'mag': (keys, toks), 'sign': (keys, bits), 'll': (keys, toks)} as (N, M) arrays in coding
    order, plus raw bits per frame."""
    N = qc[0].shape[0]
    raw = np.zeros(N)
    mk, mt, sk, sb = [], [], [], []
    for j, o, Q, f, sg in band_features(qc):
        g = group(j, o)
        c = classes(f, g, model)
        A = np.abs(Q)
        tok, rb = category(A)
        raw += rb.reshape(N, -1).sum(1)
        mk.append((g * 256 + c).reshape(N, -1))
        mt.append(tok.reshape(N, -1))
        nz = (Q != 0).reshape(N, -1)
        if cfg["sign"] == "raw":
            raw += nz.sum(1)
        else:
            pat = np.zeros_like(Q)
            for s in sg:
                pat = pat * 3 + np.where(s > 0, 1, np.where(s < 0, 2, 0))
            key = (g * 1024 + pat).reshape(N, -1)
            bit = (Q < 0).reshape(N, -1).astype(np.int64)
            # only nonzero positions carry a sign: mark others with key -1 (skipped)
            sk.append(np.where(nz, key, -1))
            sb.append(bit)
    ll = qc[0]
    e = ll - med_predict(ll)
    a = np.abs(e)
    tok, rb = category(a)
    raw += rb.reshape(N, -1).sum(1) + (a != 0).reshape(N, -1).sum(1)
    grad = np.abs(shift(ll, 0, 1) - shift(ll, 1, 1)) + np.abs(shift(ll, 1, 0) - shift(ll, 1, 1)) + np.abs(shift(ll, 1, -1) - shift(ll, 1, 0))
    lc = np.minimum(np.floor(np.log2(1 + grad)).astype(np.int64), cfg["llcls"] - 1)
    out = {"mag": (np.concatenate(mk, 1), np.concatenate(mt, 1)), "ll": (lc.reshape(N, -1), tok.reshape(N, -1))}
    if sk:
        out["sign"] = (np.concatenate(sk, 1), np.concatenate(sb, 1))
    return out, raw


class Tables:
    """Integer frequencies per key (sum 2^prec, each >= 1), trained from counts; a key unseen in
    training uses its group's pooled table (key // 256 for magnitudes)."""

    def __init__(self, alphabet, prec=15, prior=0.5, pool_div=256):
        self.n, self.prec, self.prior, self.div = alphabet, prec, prior, pool_div
        self.counts = {}

    def add(self, keys, toks):
        keys, toks = keys.ravel(), toks.ravel()
        ok = keys >= 0
        keys, toks = keys[ok], toks[ok]
        u, inv = np.unique(keys, return_inverse=True)
        h = np.zeros((len(u), self.n))
        np.add.at(h, (inv, toks), 1)
        for i, k in enumerate(u):
            self.counts[int(k)] = self.counts.get(int(k), 0) + h[i]

    def freeze(self):
        P = 1 << self.prec
        pool = {}
        for k, c in self.counts.items():
            pool[k // self.div] = pool.get(k // self.div, 0) + c
        self.pool = {g: _intfreq(c + self.prior, P) for g, c in pool.items()}
        self.freq = {}
        for k, c in self.counts.items():
            pg = pool[k // self.div] / pool[k // self.div].sum()
            self.freq[k] = _intfreq(c + self.prior + 2 * pg, P)
        self.uniform = _intfreq(np.ones(self.n), P)
        return self

    def table(self, k):
        return self.freq.get(k, self.pool.get(k // self.div, self.uniform))

    def nbytes(self, bytes_per=2):
        # only the used part of each table counts: frequencies up to the last symbol seen + 1
        return sum((int(np.max(np.nonzero(self.counts[k])[0], initial=0)) + 2) * bytes_per for k in self.freq)

    def _lookup(self):
        if getattr(self, "_lk", None) is None:
            ks = np.array(sorted(self.freq), np.int64)
            pools = np.array(sorted(self.pool), np.int64)
            mat = np.stack([self.freq[k] for k in ks] + [self.pool[g] for g in pools] + [self.uniform]).astype(np.float64)
            self._lk = (ks, pools, np.log2(mat / float(1 << self.prec)), mat / float(1 << self.prec))
        return self._lk

    def rows_of(self, keys):
        ks, pools, _, _ = self._lookup()
        i = np.clip(np.searchsorted(ks, keys), 0, len(ks) - 1)
        hit = ks[i] == keys
        g = keys // self.div
        j = np.clip(np.searchsorted(pools, g), 0, len(pools) - 1)
        ghit = pools[j] == g
        return np.where(hit, i, np.where(ghit, len(ks) + j, len(ks) + len(pools)))

    def bits(self, keys, toks, adapt=0):
        """Per frame code length: static tables, or counts adapted per frame from the frozen prior
        (p = (n_k + A p0_k) / (n + A) within each (frame, key), no halving)."""
        N = keys.shape[0]
        _, _, lg, p0 = self._lookup()
        ok = keys >= 0
        rows = np.nonzero(ok)[0]
        k = keys[ok]
        t = toks[ok]
        r = self.rows_of(k)
        if not adapt:
            return np.bincount(rows, -lg[r, t], minlength=N)
        kk = rows.astype(np.int64) * (1 << 40) + k
        nb = W0._cumcount(kk)
        kb = W0._cumcount(kk * 128 + t)
        p = (kb + adapt * p0[r, t]) / (nb + adapt)
        return np.bincount(rows, -np.log2(p), minlength=N)


def _intfreq(p, P):
    p = np.asarray(p, np.float64)
    p = p / p.sum()
    f = np.maximum(1, np.floor(p * (P - len(p)))).astype(np.int64)
    f[np.argmax(f)] += P - f.sum()
    return f


class Model:
    def __init__(self, cfg):
        self.cfg = cfg

    def train(self, frames, steps, extras=None, batch=256):
        stacks = []
        for s in steps:
            for ii, qc, rec in encode_set(frames, self.cfg, s, extras, batch):
                stacks.append(band_features(qc))
        self.ctx = fit_linear(stacks, self.cfg["K"]) if self.cfg.get("lin") is None else self.cfg["lin"]
        del stacks
        self.t = {"mag": Tables(NTOK), "sign": Tables(2, pool_div=1024), "ll": Tables(NTOK, pool_div=10 ** 9)}
        for s in steps:
            for ii, qc, rec in encode_set(frames, self.cfg, s, extras, batch):
                st, raw = streams(qc, self.cfg, self.ctx)
                for name, (k, t) in st.items():
                    self.t[name].add(k, t)
        for t in self.t.values():
            t.freeze()
        return self

    def bits(self, qc):
        st, raw = streams(qc, self.cfg, self.ctx)
        b = raw.copy()
        parts = {"raw": raw}
        for name, (k, t) in st.items():
            A = self.cfg.get("adapt_" + name, self.cfg["adapt"] if name != "ll" else 0)
            x = self.t[name].bits(k, t, A)
            parts[name] = x
            b += x
        return b, parts


def encode_set(frames, cfg, step, extras=None, batch=256):
    groups = {}
    for i, f in enumerate(frames):
        groups.setdefault(np.asarray(f).shape, []).append(i)
    for shape, idx in groups.items():
        for s in range(0, len(idx), batch):
            ii = idx[s:s + batch]
            U = np.stack([W0.fill(np.asarray(frames[i], np.float64)) for i in ii])
            c, qc, rec = W0.analyse(U, cfg, step, extras)
            if cfg.get("lp"):
                qc = lowpass_of(U, qc, cfg, step, extras)
            yield ii, qc, rec


def lowpass_of(U, qc, cfg, step, extras=None):
    mean = U.mean(axis=(1, 2), keepdims=True)
    Lv = len(qc) - 1
    rc = [qc[0] * step * W0.weight(cfg, 0, 0)]
    for k in range(1, Lv + 1):
        j = Lv - k + 1
        rc.append(tuple(W0.dequant(qc[k][o], step * W0.weight(cfg, j, o), cfg["delta"]) for o in range(3)))
    return with_lowpass(qc, rc, mean, step, extras)


def coded_copy(frames, mask_values):
    """Real frames: sentinel pixels (mask_values) are restored exactly by the codec's mask section,
    so the coded copy has them as NaN (filled, counted in the mask bytes) while the metric keeps them."""
    if mask_values is None:
        return frames
    out = []
    for f, mv in zip(frames, mask_values):
        f = np.array(f, np.float64)
        for v in mv:
            f[f == np.float32(v)] = np.nan
        out.append(f)
    return out


def evaluate(frames, model, step, extras=None, per_chunk=64, chunk_header=24, parts_out=None, mask_values=None):
    from saecodec import metrics

    cfg = model.cfg
    n = len(frames)
    refs = frames
    frames = coded_copy(frames, mask_values)
    bits, e2, d2 = np.zeros(n), np.zeros(n), np.zeros(n)
    for ii, qc, rec in encode_set(frames, cfg, step, extras):
        b, parts = model.bits(qc)
        if parts_out is not None:
            for k, v in parts.items():
                parts_out[k] = parts_out.get(k, 0) + v.sum()
        ref = np.stack([np.asarray(refs[i], np.float64) for i in ii])
        coded = np.stack([np.asarray(frames[i], np.float64) for i in ii])
        rec = np.where(np.isnan(coded) & np.isfinite(ref), ref, rec)
        a, d = metrics.offset_free_terms(ref, rec)
        bits[ii], e2[ii], d2[ii] = b, a, d
    raw_bytes = 4 * sum(np.asarray(f).size for f in frames)
    nbytes = bits.sum() / 8 + n * cfg["header_bytes"] + chunk_header * -(-n // per_chunk) + W0.mask_bytes(list(frames), per_chunk)
    agg, med = metrics.offset_free_summary(e2, d2)
    return agg, med, raw_bytes / nbytes, nbytes / n, bits / 8 + cfg["header_bytes"], e2, d2
