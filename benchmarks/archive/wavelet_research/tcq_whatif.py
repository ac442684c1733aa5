"""What-if: entropy-coded trellis-coded quantisation (8 states, magnitude TCQ with zero in both unions,
union A0 = {0, 2, 4, ..} D, A1 = {0, 1, 3, 5, ..} D, branch bit = index parity, Viterbi with cost
(x - r)^2 + lam rate(i)) vs the deadzone scalar quantiser (theta 0.4), on the finest-level bands of
real frames; ideal code lengths with the same simple context (W neighbour class, and the union for
TCQ) plus sign bits; bits per coefficient compared at equal MSE.
(wr_tcq.py is an earlier variant whose union/trellis gives no gain; kept as the negative control.)
On a memoryless Gaussian the classic TCQ (gaussian() below: 8-state Marcellin-Fischer trellis on
the expanded alphabet, H(i | union)) gains 0.18 bit/sample at 2-4 bits/sample (1.08 dB).

Result (2026-12-05), bits/coef at equal MSE, TCQ vs scalar:
  noisy (24 frames, 128x128), lam 0:   +3.0% / +2.5% / +0.9%   at MSE 5e-4 / 1.8e-3 / 5.7e-3
  noisy, lam 0.1:                     +3.7% / +3.4% / +2.7%
  clean (200 frames), lam 0:          -2.7% / -3.4% / -4.0%   (low rate: TCQ loses)
  clean, lam 0.1:                     +2.0% / +2.0% / +2.8%
(the fourth point of each row lies outside the scalar curve and is not a comparison). About what
RDO of the scalar quantiser already gives (+1.3-3%), at the cost of a Viterbi per band: not recommended.

    python benchmarks/archive/wavelet_research/tcq_whatif.py
"""
import sys, numpy as np
import os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wr_data, wr_lift as L, wr_codec as W0
W0.FILL["how"] = "harmonic"
TR = {0: ((0, 0), (1, 1)), 1: ((0, 2), (1, 3)), 2: ((1, 4), (0, 5)), 3: ((1, 6), (0, 7)),
      4: ((1, 0), (0, 1)), 5: ((1, 2), (0, 3)), 6: ((0, 4), (1, 5)), 7: ((0, 6), (1, 7))}
UNION = np.array([0, 1, 0, 1, 0, 1, 0, 1])
def mag_of(i, u):  # reconstruction magnitude in steps
    return np.where(u == 0, 2 * i, np.maximum(2 * i - 1, 0))
def best_i(a, u, b):
    # nearest index with parity b in union u to magnitude a (in steps)
    if u == 0: base = np.floor(a / 2)
    else: base = np.floor((a + 1) / 2)
    best, bd = None, None
    for c in (base - 2, base - 1, base, base + 1, base + 2):
        c = np.maximum(c, 0).astype(np.int64)
        c = np.where(c % 2 == b, c, c + 1)
        d = (a - mag_of(c, u)) ** 2
        if best is None: best, bd = c, d
        else:
            t = d < bd; best, bd = np.where(t, c, best), np.where(t, d, bd)
    return best, bd
def tcq(x, lam):
    """x (N, n) coefficient / step; returns index, union, reconstruction (in steps)"""
    N, n = x.shape; a = np.abs(x)
    cost = np.full((N, 8), 1e300); cost[:, 0] = 0
    bs = np.zeros((n, N, 8), np.int8); bi = np.zeros((n, N, 8), np.int64)
    for t in range(n):
        new = np.full((N, 8), 1e300); ni = np.zeros((N, 8), np.int64); nf = np.zeros((N, 8), np.int8)
        for s in range(8):
            u = UNION[s]
            for b, s2 in TR[s]:
                i, d = best_i(a[:, t], u, b)
                r = np.where(i == 0, 0.3, 2.0 + 1.5 * np.log2(1 + i))
                tot = cost[:, s] + d + lam * r
                tk = tot < new[:, s2]
                new[:, s2] = np.where(tk, tot, new[:, s2]); ni[:, s2] = np.where(tk, i, ni[:, s2]); nf[:, s2] = np.where(tk, s, nf[:, s2])
        cost = new; bs[t], bi[t] = nf, ni
    s = cost.argmin(1); rows = np.arange(N); out = np.zeros((N, n), np.int64); un = np.zeros((N, n), np.int64)
    for t in range(n - 1, -1, -1):
        out[:, t] = bi[t][rows, s]; s = bs[t][rows, s].astype(np.int64); un[:, t] = UNION[s]
    return out, un, np.sign(x) * mag_of(out, un)
def cent(sym, ctx):
    k = ctx * 1000 + np.minimum(sym, 999)
    v, c = np.unique(k, return_counts=True)
    tot = {}
    for kk, cc in zip(v, c): tot[kk // 1000] = tot.get(kk // 1000, 0) + cc
    return -sum(cc * np.log2(cc / tot[kk // 1000]) for kk, cc in zip(v, c))
def nbr_ctx(m):
    W = np.zeros_like(m); W[:, 1:] = m[:, :-1]
    return np.minimum(np.floor(np.log2(1 + W)).astype(int), 5)
# classic TCQ (Marcellin-Fischer): expanded alphabet j*D, subsets D_k = {j = k mod 4}
TR = {0: ((0, 0), (2, 1)), 1: ((1, 2), (3, 3)), 2: ((2, 4), (0, 5)), 3: ((3, 6), (1, 7)),
      4: ((2, 0), (0, 1)), 5: ((3, 2), (1, 3)), 6: ((0, 4), (2, 5)), 7: ((1, 6), (3, 7))}
def nearest_in_subset(x, D, k):
    # j = k mod 4 nearest to x/D
    j = np.round((x / D - k) / 4) * 4 + k
    return j
def tcq_classic(x, D):
    N, n = x.shape
    cost = np.full((N, 8), 1e300); cost[:, 0] = 0
    bs = np.zeros((n, N, 8), np.int8); bj = np.zeros((n, N, 8))
    for t in range(n):
        new = np.full((N, 8), 1e300); nj = np.zeros((N, 8)); nf = np.zeros((N, 8), np.int8)
        for s in range(8):
            for k, s2 in TR[s]:
                j = nearest_in_subset(x[:, t], D, k)
                tot = cost[:, s] + (x[:, t] - j * D) ** 2
                take = tot < new[:, s2]
                new[:, s2] = np.where(take, tot, new[:, s2]); nj[:, s2] = np.where(take, j, nj[:, s2]); nf[:, s2] = np.where(take, s, nf[:, s2])
        cost = new; bs[t], bj[t] = nf, nj
    s = cost.argmin(1); rows = np.arange(N); out = np.zeros((N, n)); st = np.zeros((N, n), np.int64)
    for t in range(n - 1, -1, -1):
        out[:, t] = bj[t][rows, s]; s = bs[t][rows, s].astype(np.int64); st[:, t] = s
    return out, st
def ent_classic(sym):
    v, c = np.unique(sym, return_counts=True); p = c / c.sum(); return -(p * np.log2(p)).sum()
def gaussian():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3000))
    for D in (0.15, 0.3, 0.6):
        j, st = tcq_classic(x, D)
        mse = ((j * D - x) ** 2).mean()
        # union index: A0 (even states) points j even -> i = j/2; A1: j odd -> i = (j-1)/2 ; entropy conditioned on union
        u = st % 2
        i = np.where(u == 0, j / 2, (j - 1) / 2)
        H = (ent_classic(i[u == 0]) * (u == 0).mean() + ent_classic(i[u == 1]) * (u == 1).mean())
        Ds = np.sqrt(12 * mse); qs = np.round(x / Ds); Hs = ent_classic(qs); mses = ((qs * Ds - x) ** 2).mean()
        print(f"D {D}: TCQ mse {mse:.5f} H(i|union) {H:.3f} | scalar mse {mses:.5f} H {Hs:.3f} | gain {Hs - H:.3f} bit")


gaussian()
for name, frames in (("noisy", wr_data.load('noisy')['u'][:24]), ("clean", wr_data.load('clean')['u'][:200])):
    U = np.stack([W0.fill(f.astype(np.float64)) for f in frames])
    c = L.fwd2(U - U.mean(axis=(1, 2), keepdims=True), L.levels_for(*U.shape[1:], 8))
    X = np.concatenate([c[-1][o].reshape(len(U), -1) for o in range(3)], 1)  # finest level
    n = X.size
    res = {}
    for D in (0.05, 0.1, 0.2, 0.4):
        x = X / D
        q = np.sign(x) * np.floor(np.abs(x) + 0.4)
        mse_s = ((q - x) ** 2).mean() * D * D
        bits_s = (cent(np.abs(q).astype(int), nbr_ctx(np.abs(q))) + (q != 0).sum()) / n
        res.setdefault("s", []).append((mse_s, bits_s))
        for lam in (0.0, 0.1):
            i, u, r = tcq(x, lam)
            mse_t = ((r - x) ** 2).mean() * D * D
            bits_t = (cent(i, u * 10 + nbr_ctx(np.abs(r))) + (i != 0).sum()) / n
            res.setdefault(f"t{lam}", []).append((mse_t, bits_t))
    # compare bits at equal mse by log interpolation
    s = sorted(res["s"])
    for key in ("t0.0", "t0.1"):
        out = []
        for mse, b in sorted(res[key]):
            bs = np.interp(np.log(mse), np.log([p[0] for p in s]), [p[1] for p in s])
            out.append(f"mse {mse:.2e}: TCQ {b:.3f} vs scalar {bs:.3f} bits/coef ({(bs - b) / bs * 100:+.1f}%)")
        print(name, key, " | ".join(out), flush=True)
