"""Numpy prototype of the wavelet coder: transform, quantiser, contexts and rate estimates.

Everything is vectorised over a stack of equal-sized frames (N, H, W); the rate is the ideal
code length (-log2 p under integer frequency tables, as rANS would charge within ~0.1%) plus
raw sign / escape bits and the per-frame header. Tables are trained on training frames only.
Design knobs live in a dict ``cfg`` (see DEFAULT) so the step scripts can ablate them.
"""
from __future__ import annotations

import zlib

import numpy as np

import wr_lift as L

DEFAULT = dict(
    min_size=8, max_levels=6,      # levels: while the coarsest LL keeps both sides >= min_size
    weights=None,                  # per band step weights {(j, o): w}, j = level from finest (1..), o 0..2; LL: (0, 0)
    theta=0.5, delta=0.0,          # deadzone rounding offset and reconstruction offset (in steps)
    esc=18,                        # magnitude tokens 0..esc-1, esc = escape (Exp-Golomb 0 of |q| - esc)
    ctx="probe",                   # context function name (CONTEXTS)
    ncls=16,                       # number of classes
    groups="level_orient",         # table grouping
    ll="dpcm",                     # LL coding: 'dpcm' (MED predictor, own table)
    header_bytes=2.0,              # per frame: step index + mean code (the mean is part of the LL)
    prec=15,                       # integer table precision (bits)
    adapt=0,                       # 0: static tables; A > 0: counts adapted from the static prior of weight A
    sign="raw",
    fill="nearest",
)


# ---------------------------------------------------------------- transform + quantiser
def bands_of(c):
    """[(j, o, array)] for detail bands in coding order (coarse to fine, HL, LH, HH); j from finest."""
    Lv = len(c) - 1
    out = []
    for k in range(1, Lv + 1):
        j = Lv - k + 1
        for o in range(3):
            out.append((j, o, c[k][o]))
    return out


def weight(cfg, j, o):
    w = cfg["weights"]
    if w is None:
        return 1.0
    if callable(w):
        return w(j, o)
    return w.get((j, o), w.get((min(j, max(k[0] for k in w)), o), 1.0))


def quant(x, D, theta):
    return (np.sign(x) * np.floor(np.abs(x) / D + theta)).astype(np.int64)


def dequant(q, D, delta):
    return np.sign(q) * np.maximum(np.abs(q) - delta, 0) * D * (q != 0)


def analyse(U, cfg, step, extras=None):
    """U (N, H, W) filled frames (float64), mean removed -> (coeffs, q-bands, recon)."""
    N, H, W = U.shape
    lv = L.levels_for(H, W, cfg["min_size"], cfg["max_levels"])
    mean = U.mean(axis=(1, 2), keepdims=True)
    c = L.fwd2(U - mean, lv, extras)
    qc, rc = [], []
    DLL = step * weight(cfg, 0, 0)
    qll = np.rint(c[0] / DLL).astype(np.int64)  # LL: plain rounding (DPCM coded)
    qc.append(qll)
    rc.append(qll * DLL)
    for k in range(1, lv + 1):
        j = lv - k + 1
        qs, rs = [], []
        for o in range(3):
            D = step * weight(cfg, j, o)
            q = quant(c[k][o], D, cfg["theta"])
            qs.append(q)
            rs.append(dequant(q, D, cfg["delta"]))
        qc.append(tuple(qs))
        rc.append(tuple(rs))
    rec = L.inv2(rc, extras) + mean
    return c, qc, rec


# ---------------------------------------------------------------- contexts
def shift(a, dy, dx):
    """a[..., y - dy, x - dx] with zeros outside (dy, dx >= 0 look up/left; negative dx looks right)."""
    out = np.zeros_like(a)
    h, w = a.shape[-2:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = a[..., ys, xs]
    return out


def parent_of(P, shape):
    h, w = shape[-2:]
    iy = np.minimum(np.arange(h) >> 1, P.shape[-2] - 1)
    ix = np.minimum(np.arange(w) >> 1, P.shape[-1] - 1)
    return P[..., iy[:, None], ix[None, :]]


def detail_bands(qc):
    """(k, j, o, band) in coding order: k indexes qc (1 = coarsest details), j the level from the finest."""
    Lv = len(qc) - 1
    for k in range(1, Lv + 1):
        for o in range(3):
            yield k, Lv - k + 1, o, qc[k][o]


def causal(A):
    """The six causal neighbour maps of a band (zeros outside): W, N, NW, NE, WW, NN."""
    return {"W": shift(A, 0, 1), "N": shift(A, 1, 0), "NW": shift(A, 1, 1), "NE": shift(A, 1, -1),
            "WW": shift(A, 0, 2), "NN": shift(A, 2, 0)}


def features(qc):
    """Per detail band (coding order): dict of |q| neighbour maps the context functions use."""
    out = []
    for k, j, o, Q in detail_bands(qc):
        A = np.abs(Q).astype(np.float64)
        f = {"j": j, "o": o, "q": Q, **causal(A)}
        if k > 1:
            P = np.abs(qc[k - 1][o]).astype(np.float64)
            f["P"] = parent_of(P, A.shape)
            # parent's neighbourhood (3x3 mean), all known
            Pn = (P + shift(P, 0, 1) + shift(P, 0, -1) + shift(P, 1, 0) + shift(P, -1, 0)) / 5
            f["Pn"] = parent_of(Pn, A.shape)
        else:
            f["P"] = np.zeros_like(A)
            f["Pn"] = np.zeros_like(A)
        # siblings coded earlier at this level (whole band known): same position and 4-neighbours
        sib = np.zeros_like(A)
        for oo in range(o):
            S = np.abs(qc[k][oo]).astype(np.float64)
            if S.shape != A.shape:  # odd sizes: crop/pad to this band's shape
                S2 = np.zeros_like(A)
                hh, ww = min(S.shape[-2], A.shape[-2]), min(S.shape[-1], A.shape[-1])
                S2[..., :hh, :ww] = S[..., :hh, :ww]
                S = S2
            sib += S + 0.5 * (shift(S, 0, 1) + shift(S, 0, -1) + shift(S, 1, 0) + shift(S, -1, 0)) / 2
        f["S"] = sib / max(o, 1)
        f["nS"] = o
        out.append(f)
    return out


def ctx_probe(f, ncls):
    m = f["W"] + f["N"] + 0.5 * f["NW"] + 2 * f["P"]
    return np.minimum(np.floor(np.log2(1 + m) * 2).astype(np.int64), ncls - 1)


def ctx_rich(f, ncls, w=(1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 1.0, 0.5, 0.6)):
    m = (w[0] * f["W"] + w[1] * f["N"] + w[2] * f["NW"] + w[3] * f["NE"] + w[4] * f["WW"] + w[5] * f["NN"]
         + w[6] * f["P"] + w[7] * f["Pn"] + w[8] * f["S"])
    return np.minimum(np.floor(np.log2(1 + 2 * m) * ncls / 8).astype(np.int64), ncls - 1)


CONTEXTS = {"probe": ctx_probe, "rich": ctx_rich}


def group_of(cfg, j, o):
    if cfg["groups"] == "level_orient":
        return min(j, 5) * 3 + o
    if cfg["groups"] == "level":
        return min(j, 5) * 3 + (o == 2)
    return 0


# ---------------------------------------------------------------- symbols
def symbols(qc, cfg):
    """Detail symbols of a stack in coding order: (group, class, token) (N, M) arrays, the raw
    bits per frame (signs, escapes), and LL tokens."""
    ctxf = CONTEXTS[cfg["ctx"]] if isinstance(cfg["ctx"], str) else cfg["ctx"]
    G, C, T = [], [], []
    N = qc[0].shape[0]
    raw = np.zeros(N)
    esc = cfg["esc"]
    for f in features(qc):
        Q = f["q"]
        a = np.abs(Q).reshape(N, -1)
        cls = ctxf(f, cfg["ncls"]).reshape(N, -1)
        g = np.full_like(cls, group_of(cfg, f["j"], f["o"]))
        t = np.minimum(a, esc)
        G.append(g), C.append(cls), T.append(t)
        raw += (a > 0).sum(axis=1)  # signs
        big = a >= esc
        r = np.where(big, a - esc, 0)
        raw += (big * (2 * np.floor(np.log2(r + 1)) + 1)).sum(axis=1)  # Exp-Golomb 0
    # LL: MED-predicted residuals of q (raster order), token = min(|e|, esc) with its own table
    ll = qc[0]
    e = ll - med_predict(ll)
    a = np.abs(e).reshape(N, -1)
    raw += (a > 0).sum(axis=1)
    big = a >= esc
    raw += (big * (2 * np.floor(np.log2(np.where(big, a - esc, 0) + 1)) + 1)).sum(axis=1)
    # LL class: magnitude of the local gradient (W-NW, N-NW) in 4 classes
    grad = np.abs(shift(ll, 0, 1) - shift(ll, 1, 1)) + np.abs(shift(ll, 1, 0) - shift(ll, 1, 1))
    lcls = np.minimum(np.floor(np.log2(1 + grad.reshape(N, -1))).astype(np.int64), 7)
    G.append(np.full_like(lcls, 99)), C.append(lcls), T.append(np.minimum(a, esc))
    return np.concatenate(G, 1), np.concatenate(C, 1), np.concatenate(T, 1), raw


def med_predict(x):
    """MED (LOCO-I) prediction from W, N, NW (zero outside; first row/column: the one neighbour)."""
    Wn, Nn, NW = shift(x, 0, 1), shift(x, 1, 0), shift(x, 1, 1)
    p = np.where(NW >= np.maximum(Wn, Nn), np.minimum(Wn, Nn), np.where(NW <= np.minimum(Wn, Nn), np.maximum(Wn, Nn), Wn + Nn - NW))
    p[..., 0, :] = Wn[..., 0, :]
    p[..., :, 0] = Nn[..., :, 0]
    p[..., 0, 0] = 0
    return p


# ---------------------------------------------------------------- tables and rate
class Tables:
    """Integer frequency tables per (group, class) over tokens 0..esc, trained from counts."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.counts = {}

    def add(self, G, C, T):
        esc = self.cfg["esc"]
        key = (G * 64 + C).ravel()
        for k in np.unique(key):
            sel = key == k
            self.counts.setdefault(int(k), np.zeros(esc + 1))
            self.counts[int(k)] += np.bincount(T.ravel()[sel], minlength=esc + 1)

    def freeze(self, prior=0.5):
        """-> dict key -> integer freqs summing to 2^prec, each >= 1; unseen contexts use the group pool."""
        P = 1 << self.cfg["prec"]
        self.freq = {}
        pool = {}
        for k, c in self.counts.items():
            pool.setdefault(k // 64, np.zeros_like(c))
            pool[k // 64] += c
        self.pool = {g: self._int(c + prior, P) for g, c in pool.items()}
        for k, c in self.counts.items():
            # shrink sparse contexts toward their group's pooled distribution
            pg = pool[k // 64] / pool[k // 64].sum()
            n = c.sum()
            self.freq[k] = self._int(c + prior + 4 * pg, P)
        return self

    @staticmethod
    def _int(p, P):
        p = p / p.sum()
        f = np.maximum(1, np.floor(p * (P - len(p)))).astype(np.int64)
        f[np.argmax(f)] += P - f.sum()
        return f

    def table(self, k):
        if k in self.freq:
            return self.freq[k]
        return self.pool.get(k // 64, np.full(self.cfg["esc"] + 1, (1 << self.cfg["prec"]) // (self.cfg["esc"] + 1)))

    def bits(self, G, C, T):
        """Per frame ideal code length (bits) of the symbols under the frozen tables (static)
        or adapted counts (cfg['adapt'] = A: p = (n_k + A p0_k) / (n + A) per frame and context)."""
        N = G.shape[0]
        key = G * 64 + C
        P = float(1 << self.cfg["prec"])
        out = np.zeros(N)
        A = self.cfg["adapt"]
        for k in np.unique(key):
            sel = key == k
            f = self.table(int(k)).astype(np.float64) / P
            if not A:
                out += np.where(sel, -np.log2(f[T]), 0).sum(axis=1)
                continue
            # adaptive: count occurrences before each symbol within (frame, key) and (frame, key, token)
            rows, cols = np.nonzero(sel)
            t = T[rows, cols]
            n_before = _cumcount(rows)
            k_before = _cumcount(rows * 64 + t)
            p = (k_before + A * f[t]) / (n_before + A)
            np.add.at(out, rows, -np.log2(p))
        return out


def _cumcount(keys):
    """For each element (in order), how many earlier elements share its key."""
    order = np.argsort(keys, kind="stable")
    ks = keys[order]
    start = np.r_[0, np.nonzero(np.diff(ks))[0] + 1]
    run = np.arange(len(ks)) - np.repeat(start, np.diff(np.r_[start, len(ks)]))
    out = np.empty_like(run)
    out[order] = run
    return out


# ---------------------------------------------------------------- driver
FILL = {"how": "nearest"}


def fill(u, how=None):
    """Masked (NaN) pixels get values before the transform (the mask section restores them):
    'nearest' (rd.fill_nearest) or 'harmonic' (nearest, then Jacobi iterations of the 4-neighbour
    mean on the masked pixels: smooth across gaps and beamstops, fewer detail coefficients)."""
    from saecodec.bench.rd import fill_nearest

    how = how or FILL["how"]
    bad = ~np.isfinite(u)
    out = fill_nearest(u)
    if how == "nearest" or not bad.any():
        return out
    for _ in range(FILL.get("iters", 200)):
        p = np.pad(out, 1, mode="edge")
        avg = (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]) / 4
        out = np.where(bad, avg, out)
    return out


def encode_set(frames, cfg, step, extras=None, batch=256):
    """frames: list/array of (H, W) metric-domain frames (NaN masked). Yields per equal-shape stack:
    (indices, qc, rec, G, C, T, raw bits)."""
    groups = {}
    for i, f in enumerate(frames):
        groups.setdefault(f.shape, []).append(i)
    for shape, idx in groups.items():
        for s in range(0, len(idx), batch):
            ii = idx[s:s + batch]
            U = np.stack([fill(np.asarray(frames[i], np.float64)) for i in ii])
            c, qc, rec = analyse(U, cfg, step, extras)
            G, C, T, raw = symbols(qc, cfg)
            yield ii, qc, rec, G, C, T, raw


def train_tables(frames, cfg, steps):
    tb = Tables(cfg)
    for step in steps:
        for ii, qc, rec, G, C, T, raw in encode_set(frames, cfg, step):
            tb.add(G, C, T)
    return tb.freeze()


def mask_bytes(frames, per_chunk):
    """Bytes of the package's mask section (zlib of packed NaN positions, zlib of their values)
    for chunks of ``per_chunk`` frames; 0 for a chunk without NaN."""
    out = 0
    for s in range(0, len(frames), per_chunk):
        ch = np.stack(frames[s:s + per_chunk]) if not isinstance(frames, np.ndarray) else frames[s:s + per_chunk]
        m = ~np.isfinite(ch)
        if m.any():
            out += len(zlib.compress(np.packbits(m.ravel()).tobytes(), 9)) + len(zlib.compress(ch[m].tobytes(), 9)) + 4
    return out


def evaluate(frames, cfg, step, tables, extras=None, per_chunk=64, chunk_header=24):
    """(aggregate err, median err, ratio, bytes per frame) over the set, every byte counted: symbols,
    raw bits, per-frame header, per-chunk header, masks."""
    from saecodec import metrics

    n = len(frames)
    bits = np.zeros(n)
    e2 = np.zeros(n)
    d2 = np.zeros(n)
    raw_bytes = 0
    for ii, qc, rec, G, C, T, raw in encode_set(frames, cfg, step, extras):
        b = tables.bits(G, C, T) + raw
        ref = np.stack([np.asarray(frames[i], np.float64) for i in ii])
        a, d = metrics.offset_free_terms(ref, rec)
        bits[ii], e2[ii], d2[ii] = b, a, d
    sizes = [np.asarray(f).size for f in frames]
    raw_bytes = 4 * sum(sizes)
    nbytes = bits.sum() / 8 + n * cfg["header_bytes"] + chunk_header * -(-n // per_chunk) + mask_bytes(list(frames), per_chunk)
    agg, med = metrics.offset_free_summary(e2, d2)
    return agg, med, raw_bytes / nbytes, nbytes / n, bits / 8 + cfg["header_bytes"], e2, d2
