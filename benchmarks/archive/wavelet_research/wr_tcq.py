"""A first, failed TCQ variant (negative control for tcq_whatif.py): its union layout and trellis give
no gain (first-order entropy of union indices at equal MSE on a Gaussian: -0.002 / -0.045 bit).

Trellis: 8 states, state s uses union A0 (s < 4: reconstruction 2 i D) or A1 (s >= 4: 0 and
sign(i) (2|i| - 1) D); the coded value is the union index i (contexts and tables as for scalar
q); the branch bit b = i mod 2 and the next state is NEXT[s][b]. The decoder tracks the state
(reset to 0 at each band) and needs nothing else. The encoder runs a Viterbi per band in raster
order with cost (c - r)^2 + lam D^2 rate(i), rate(i) ~ 0 for i = 0 else 1 + 2 log2(1 + |i|).
"""
from __future__ import annotations

import numpy as np

import wr_codec as W0
import wr_lift as L

NEXT = np.array([[0, 1], [2, 3], [4, 5], [6, 7], [0, 1], [2, 3], [4, 5], [6, 7]])
# Ungerboeck-style: states 0..3 -> union A0, 4..7 -> A1; from s the next is 2 (s mod 4) + b
NEXT = np.array([[(2 * (s % 4) + b) % 8 for b in (0, 1)] for s in range(8)])
UNION = np.array([0, 1, 0, 1, 0, 1, 0, 1])  # alternate unions so that the states' successors mix


def recon(i, u, D):
    i = np.asarray(i)
    return np.where(u == 0, 2 * i * D, np.sign(i) * np.maximum(2 * np.abs(i) - 1, 0) * D)


def candidates(c, u, D, b):
    """Best index with parity b in union u for values c (nearest reconstruction)."""
    x = c / D
    if u == 0:  # r = 2 i D: i near x / 2 with parity b
        base = np.floor(x / 2)
        cands = [base - 1, base, base + 1, base + 2]
    else:  # r = sign(i)(2|i|-1) D
        m = np.floor((np.abs(x) + 1) / 2)
        cands = [np.sign(x) * (m - 1), np.sign(x) * m, np.sign(x) * (m + 1), np.zeros_like(x)]
    best_i = None
    best_d = None
    for ci in cands:
        ci = ci.astype(np.int64)
        ci = np.where((np.abs(ci) % 2) == b, ci, ci + np.where(ci >= 0, 1, -1) * 0 + 1)  # fix parity
        ci = np.where((np.abs(ci) % 2) == b, ci, ci - 2)
        d = (c - recon(ci, u, D)) ** 2
        if best_i is None:
            best_i, best_d = ci, d
        else:
            take = d < best_d
            best_i, best_d = np.where(take, ci, best_i), np.where(take, d, best_d)
    return best_i, best_d


def rate(i):
    a = np.abs(i)
    return np.where(a == 0, 0.0, 1.0 + 2 * np.log2(1 + a))


def tcq_band(C, D, lam):
    """C (N, h, w) -> indices (N, h, w) and reconstruction, Viterbi over raster order per frame."""
    N = C.shape[0]
    x = C.reshape(N, -1)
    n = x.shape[1]
    INF = 1e300
    cost = np.full((N, 8), INF)
    cost[:, 0] = 0.0
    back_state = np.zeros((n, N, 8), np.int8)
    back_idx = np.zeros((n, N, 8), np.int64)
    for t in range(n):
        ct = x[:, t]
        new = np.full((N, 8), INF)
        ns_idx = np.zeros((N, 8), np.int64)
        ns_from = np.zeros((N, 8), np.int8)
        for s in range(8):
            u = UNION[s]
            for b in (0, 1):
                i, d = candidates(ct, u, D, b)
                tot = cost[:, s] + d + lam * D * D * rate(i)
                s2 = NEXT[s][b]
                take = tot < new[:, s2]
                new[:, s2] = np.where(take, tot, new[:, s2])
                ns_idx[:, s2] = np.where(take, i, ns_idx[:, s2])
                ns_from[:, s2] = np.where(take, s, ns_from[:, s2])
        cost = new
        back_state[t], back_idx[t] = ns_from, ns_idx
    s = cost.argmin(1)
    out = np.zeros((N, n), np.int64)
    rows = np.arange(N)
    for t in range(n - 1, -1, -1):
        out[:, t] = back_idx[t][rows, s]
        s = back_state[t][rows, s].astype(np.int64)
    # reconstruction by replaying the decoder
    rec = np.zeros((N, n))
    st = np.zeros(N, np.int64)
    for t in range(n):
        u = UNION[st]
        rec[:, t] = np.where(u == 0, 2 * out[:, t] * D, np.sign(out[:, t]) * np.maximum(2 * np.abs(out[:, t]) - 1, 0) * D)
        st = NEXT[st, np.abs(out[:, t]) % 2]
    return out.reshape(C.shape), rec.reshape(C.shape)


def analyse(U, cfg, step, lam=0.0, extras=None, tcq_levels=None):
    """Like wr_codec.analyse with TCQ on the detail bands (of levels j in tcq_levels, all if None)."""
    N, H, W = U.shape
    lv = L.levels_for(H, W, cfg["min_size"], cfg["max_levels"])
    mean = U.mean(axis=(1, 2), keepdims=True)
    c = L.fwd2(U - mean, lv, extras)
    _, qc, _ = W0.analyse(U, cfg, step, extras)
    rc = [qc[0] * step]
    for k in range(1, lv + 1):
        j = lv - k + 1
        qs, rs = [], []
        for o in range(3):
            if tcq_levels is None or j in tcq_levels:
                q, r = tcq_band(c[k][o], step, lam)
            else:
                q, r = qc[k][o], W0.dequant(qc[k][o], step, cfg["delta"])
            qs.append(q)
            rs.append(r)
        qc[k] = tuple(qs)
        rc.append(tuple(rs))
    rec = L.inv2(rc, extras) + mean
    return c, qc, rec
