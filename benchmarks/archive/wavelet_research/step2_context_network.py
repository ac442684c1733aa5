"""Research step 2 (issue #19): a small context network vs trained tables, in bits.

Per detail coefficient, 19 causal features (log2(1 + |q|) of W, N, NW, NE, WW, NN, parent, parent's
neighbourhood, earlier siblings; level, orientation; signs of W, N, NW, NE, parent, first sibling;
log2 step), from the rich-context prototype at steps 0.15/0.3/0.6 (clean) or 0.06/0.12/0.25 (noisy).
Training samples from training frames only (clean: 25% of 2000 frames; noisy: 10% of 400 train-mix
frames), tested on held-out frames (clean 500, noisy 64). Charged as cross-entropy of magnitude
tokens min(|q|, 18) and of signs; B/frame averaged over the three steps.

Result (2026-12-05), clean:
  magnitude tokens: rich tables 109.5 | linear LS context K=32 tables 103.6 (K=64 102.8) |
    2D local x parent 12x8 103.9 | linear x logistic-P(0) 32x4 103.2 |
    MLP -> one scalar -> 32/64 bins -> tables: h=16 103.8/102.3, h=32 102.5/101.1 (no better than LS) |
    MLP softmax: h=8 104.1 (~340 MAC/coef), h=16 102.1 (~690), 2x16 101.9 (~940), 2x32 99.2 (~2400),
    2x48 (6 epochs) 96.3 (~4500 MAC/coef)
  signs: raw 26.7 | sign-pattern tables (W, N) 24.4, (+parent) 23.8, (+sibling) 23.1, (+NW, NE) 21.4 |
    MLP 2x48 20.5; small MLPs 22.1-25.0
  75% of the coefficients have all-zero magnitude features (a network could skip them).
noisy: magnitude tokens rich 4527, linear K32 4492, K64 4490, MLP 2x48 4457 B/frame (-0.8%);
  signs raw 1251, patterns 1251, MLP 1247: the noise leaves nothing to model.
Conclusion: under the decode-speed target (>= 0.3x SZ3 needs <~ 200-400 MAC per coefficient) a
network buys nothing over the integer linear context + tables; the full-size MLP buys 4-7% of
magnitude bits on clean frames only. Adaptive counts (free) give ~7% of the same bits.

    python benchmarks/archive/wavelet_research/step2_context_network.py clean|noisy
"""
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wr_codec as W  # noqa: E402
import wr_data  # noqa: E402

torch.set_num_threads(1)
ESC = 18
SETUP = {"clean": ("clean", 500, "clean_train", 2000, 0.25, [0.15, 0.3, 0.6]),
         "noisy": ("noisy", 64, "noisy_train", 400, 0.1, [0.06, 0.12, 0.25])}
CFG = dict(W.DEFAULT, ctx="rich", theta=0.4)
sh = W.shift


def feats(qc):
    rows = []
    Lv = len(qc) - 1
    for f in W.features(qc):
        Q = f["q"]
        S = np.sign(Q)
        sgn = [sh(S, 0, 1), sh(S, 1, 0), sh(S, 1, 1), sh(S, 1, -1)]
        k = Lv - f["j"] + 1
        Ps = W.parent_of(np.sign(qc[k - 1][f["o"]]), Q.shape) if k > 1 else np.zeros_like(Q)
        sib = np.zeros(Q.shape)
        if f["o"] > 0 and qc[k][0].shape == Q.shape:
            sib = np.sign(qc[k][0])
        X = np.stack([np.log2(1 + f[n]) for n in ("W", "N", "NW", "NE", "WW", "NN", "P", "Pn", "S")]
                     + [np.full(Q.shape, f["j"]), np.full(Q.shape, f["o"]), np.full(Q.shape, float(f["o"] > 0))]
                     + [s.astype(float) for s in sgn] + [Ps.astype(float), sib], -1)
        rows.append((X.reshape(-1, X.shape[-1]), Q.reshape(-1), W.group_of(CFG, f["j"], f["o"]),
                     W.ctx_rich(f, CFG["ncls"]).reshape(-1)))
    return rows


def collect(frames, steps, sub, seed=0):
    rng = np.random.default_rng(seed)
    out = {k: [] for k in "XQGC"}
    for s in steps:
        for ii, qc, rec, *_ in W.encode_set(frames, CFG, s):
            for X, Q, g, c in feats(qc):
                m = rng.random(len(Q)) < sub
                out["X"].append(np.c_[X, np.full(len(X), np.log2(s))][m])
                out["Q"].append(Q[m])
                out["G"].append(np.full(m.sum(), g))
                out["C"].append(c[m])
    return [np.concatenate(out[k]).astype(np.float32 if k == "X" else np.int64) for k in "XQGC"]


def tab_bits(ktr, ttr, kte, tte, K, norm, prior=0.5):
    bits = 0.0
    for k in np.unique(kte):
        h = np.bincount(ttr[ktr == k], minlength=K) + prior
        bits += -np.log2((h / h.sum())[tte[kte == k]]).sum()
    return bits / norm


def bins(v, K, lo, hi):
    return np.clip(np.floor((v - lo) / (hi - lo) * K), 0, K - 1).astype(np.int64)


def mlp(Xtr, Qtr, Gtr, Xte, Qte, Gte, h, layers, norm, epochs=3):
    Ttr, Tte = np.minimum(np.abs(Qtr), ESC), np.minimum(np.abs(Qte), ESC)
    emb = torch.nn.Embedding(20, 4)
    mods = [torch.nn.Linear(Xtr.shape[1] + 4, h), torch.nn.ReLU()]
    for _ in range(layers - 1):
        mods += [torch.nn.Linear(h, h), torch.nn.ReLU()]
    net = torch.nn.Sequential(*mods, torch.nn.Linear(h, ESC + 2))
    opt = torch.optim.Adam(list(net.parameters()) + list(emb.parameters()), 3e-3)
    X, G = torch.from_numpy(Xtr), torch.from_numpy(np.minimum(Gtr, 19))
    T, S, NZ = torch.from_numpy(Ttr), torch.from_numpy((Qtr > 0).astype(np.float32)), torch.from_numpy(Qtr != 0)
    for _ in range(epochs):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 4096):
            b = perm[i:i + 4096]
            o = net(torch.cat([X[b], emb(G[b])], 1))
            m = NZ[b]
            loss = torch.nn.functional.cross_entropy(o[:, :ESC + 1], T[b], reduction="sum") + \
                torch.nn.functional.binary_cross_entropy_with_logits(o[:, ESC + 1][m], S[b][m], reduction="sum")
            opt.zero_grad()
            (loss / len(b)).backward()
            opt.step()
    with torch.no_grad():
        o = net(torch.cat([torch.from_numpy(Xte), emb(torch.from_numpy(np.minimum(Gte, 19)))], 1))
        bm = torch.nn.functional.cross_entropy(o[:, :ESC + 1], torch.from_numpy(Tte), reduction="sum").item()
        m = torch.from_numpy(Qte != 0)
        bs = torch.nn.functional.binary_cross_entropy_with_logits(o[:, ESC + 1][m], torch.from_numpy((Qte > 0).astype(np.float32))[m],
                                                                  reduction="sum").item()
    macs = (Xtr.shape[1] + 4) * h + (layers - 1) * h * h + h * (ESC + 2)
    return bm / np.log(2) / norm, bs / np.log(2) / norm, macs


def main(which):
    test_name, nte, train_name, ntr, sub, steps = SETUP[which]
    path = wr_data.CACHE / f"ctxsamples_{which}.npz"
    if not path.exists():
        Xtr, Qtr, Gtr, Ctr = collect(wr_data.load(train_name)["u"][:ntr].astype(np.float64), steps, sub)
        Xte, Qte, Gte, Cte = collect(wr_data.load(test_name)["u"][:nte].astype(np.float64), steps, 1.0)
        np.savez(path, Xtr=Xtr, Qtr=Qtr, Gtr=Gtr, Ctr=Ctr, Xte=Xte, Qte=Qte, Gte=Gte, Cte=Cte)
    d = np.load(path)
    Xtr, Qtr, Gtr, Ctr, Xte, Qte, Gte, Cte = [d[k] for k in ("Xtr", "Qtr", "Gtr", "Ctr", "Xte", "Qte", "Gte", "Cte")]
    norm = nte * len(steps) * 8
    Ttr, Tte = np.minimum(np.abs(Qtr), ESC), np.minimum(np.abs(Qte), ESC)
    print("magnitude tokens, rich tables:", round(tab_bits(Gtr * 64 + Ctr, Ttr, Gte * 64 + Cte, Tte, ESC + 1, norm), 1))
    lf = [0, 1, 2, 3, 4, 5, 6, 7, 8, 18]
    y = np.log2(1 + np.abs(Qtr)).astype(np.float64)
    ptr, pte = np.zeros(len(Qtr)), np.zeros(len(Qte))
    for g in np.unique(Gtr):
        m, mt = Gtr == g, Gte == g
        w = np.linalg.lstsq(np.c_[Xtr[m][:, lf], np.ones(m.sum())], y[m], rcond=None)[0]
        ptr[m] = np.c_[Xtr[m][:, lf], np.ones(m.sum())] @ w
        pte[mt] = np.c_[Xte[mt][:, lf], np.ones(mt.sum())] @ w
    lo, hi = np.percentile(ptr, 0.5), np.percentile(ptr, 99.9)
    for K in (32, 64):
        print(f"magnitude tokens, linear LS context K={K}:",
              round(tab_bits(Gtr * 128 + bins(ptr, K, lo, hi), Ttr, Gte * 128 + bins(pte, K, lo, hi), Tte, ESC + 1, norm), 1))
    nz_tr, nz_te = Qtr != 0, Qte != 0
    print("signs raw:", round(nz_te.sum() / norm, 1))
    for cols in ([12, 13], [12, 13, 16], [12, 13, 16, 17], [12, 13, 14, 15, 16, 17]):
        def key(X, G):
            k = G.astype(np.int64)
            for c in cols:
                k = k * 3 + (X[:, c].astype(np.int64) + 1)
            return k
        print("signs, pattern tables", cols, round(tab_bits(key(Xtr, Gtr)[nz_tr], (Qtr > 0).astype(int)[nz_tr], key(Xte, Gte)[nz_te],
                                                           (Qte > 0).astype(int)[nz_te], 2, norm), 1), flush=True)
    print("fraction of coefficients with all-zero magnitude features:", round(float((Xte[:, :9].sum(1) == 0).mean()), 3))
    rng = np.random.default_rng(0)
    sel = rng.random(len(Qtr)) < 0.5
    for h, layers in ((8, 1), (16, 1), (16, 2), (32, 2), (48, 2)):
        t = time.time()
        bm, bs, macs = mlp(Xtr[sel], Qtr[sel], Gtr[sel], Xte, Qte, Gte, h, layers, norm)
        print(f"MLP softmax {layers}x{h}: magnitude {bm:.1f}, signs {bs:.1f} B/frame, ~{macs} MAC/coef ({time.time() - t:.0f}s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "clean")
