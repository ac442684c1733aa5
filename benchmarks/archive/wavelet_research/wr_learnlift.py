"""Learned lifting refinements (issue #19 item 1, research step 3): after the CDF 9/7 steps of
every level and direction, an extra predict d[i] += sum_k a_k (s[i-k] + s[i+1+k]) and update
s[i] += sum_k b_k (d[i-1-k] + d[i+k]) (k < K, whole-sample symmetric extension; all zero = CDF 9/7),
trained in torch on CPU on rate + lambda x distortion:
  rate proxy  R = sum over detail coefficients of log2(1 + |c| / D)  (per frame, bits-like),
  distortion  D = ||x_hat - x||^2 / D^2 with x_hat from straight-through rounding of every band,
so the taps trade sparsity for the non-orthogonality they add. Evaluated afterwards with the real
context coder (wr_codec2 with retrained tables): see run() output.
"""
from __future__ import annotations

import numpy as np
import torch

import wr_lift as L

torch.set_num_threads(1)
L.fwd1(np.zeros(4))  # sets L.ZS, L.ZD


def _ext_idx(n, idx):
    idx = np.asarray(idx)
    j = np.where(idx < 0, -idx - 1, idx)
    j = np.where(j >= n, 2 * n - 1 - j, j)
    return torch.from_numpy(np.clip(j, 0, n - 1))


def _lift1(x, ex, inverse=False):
    """torch 1D lifting along the last axis; ex = (a taps tensor, b taps tensor) or None."""
    s, d = x[..., 0::2], x[..., 1::2]
    if d.shape[-1] == 0:
        return s, d
    ns, nd = s.shape[-1], d.shape[-1]
    i_d, i_s = np.arange(nd), np.arange(ns)

    def P(s, d, c):
        return d + c * (s[..., _ext_idx(ns, i_d)] + s[..., _ext_idx(ns, i_d + 1)])

    def U(s, d, c):
        return s + c * (d[..., _ext_idx(nd, i_s - 1)] + d[..., _ext_idx(nd, i_s)])

    d = P(s, d, L.ALPHA)
    s = U(s, d, L.BETA)
    d = P(s, d, L.GAMMA)
    s = U(s, d, L.DELTA)
    if ex is not None:
        a, b = ex
        for k in range(len(a)):
            d = d + a[k] * (s[..., _ext_idx(ns, i_d - k)] + s[..., _ext_idx(ns, i_d + 1 + k)])
        for k in range(len(b)):
            s = s + b[k] * (d[..., _ext_idx(nd, i_s - 1 - k)] + d[..., _ext_idx(nd, i_s + k)])
    return s * L.ZS, d * L.ZD


def _inv1(s, d, ex):
    if d.shape[-1] == 0:
        return s
    ns, nd = s.shape[-1], d.shape[-1]
    i_d, i_s = np.arange(nd), np.arange(ns)
    s, d = s / L.ZS, d / L.ZD
    if ex is not None:
        a, b = ex
        for k in reversed(range(len(b))):
            s = s - b[k] * (d[..., _ext_idx(nd, i_s - 1 - k)] + d[..., _ext_idx(nd, i_s + k)])
        for k in reversed(range(len(a))):
            d = d - a[k] * (s[..., _ext_idx(ns, i_d - k)] + s[..., _ext_idx(ns, i_d + 1 + k)])
    s = s - L.DELTA * (d[..., _ext_idx(nd, i_s - 1)] + d[..., _ext_idx(nd, i_s)])
    d = d - L.GAMMA * (s[..., _ext_idx(ns, i_d)] + s[..., _ext_idx(ns, i_d + 1)])
    s = s - L.BETA * (d[..., _ext_idx(nd, i_s - 1)] + d[..., _ext_idx(nd, i_s)])
    d = d - L.ALPHA * (s[..., _ext_idx(ns, i_d)] + s[..., _ext_idx(ns, i_d + 1)])
    x = torch.empty(s.shape[:-1] + (ns + nd,), dtype=s.dtype)
    x[..., 0::2] = s
    x[..., 1::2] = d
    return x


def fwd2(x, levels, extras):
    det = []
    a = x
    for l in range(levels):
        ex = extras[l]
        lo, hi = _lift1(a, ex[0])
        ll, lh = _lift1(lo.transpose(-1, -2), ex[1])
        hl, hh = _lift1(hi.transpose(-1, -2), ex[1])
        det.append((hl.transpose(-1, -2), lh.transpose(-1, -2), hh.transpose(-1, -2)))
        a = ll.transpose(-1, -2)
    return [a] + det[::-1]


def inv2(c, extras):
    a = c[0]
    Lv = len(c) - 1
    for j in range(1, Lv + 1):
        l = Lv - j
        ex = extras[l]
        hl, lh, hh = c[j]
        lo = _inv1(a.transpose(-1, -2), lh.transpose(-1, -2), ex[1]).transpose(-1, -2)
        hi = _inv1(hl.transpose(-1, -2), hh.transpose(-1, -2), ex[1]).transpose(-1, -2)
        a = _inv1(lo, hi, ex[0])
    return a


def train(frames, levels=3, K=2, steps=(0.13, 0.3, 0.6), lam=1.0, iters=300, batch=32, lr=3e-3, shared=False, seed=0,
          log=print):
    """-> extras for wr_lift: [(row (a, b), col (a, b)) per level] as numpy arrays."""
    g = torch.Generator().manual_seed(seed)
    n = 1 if shared else levels
    P = torch.nn.Parameter(torch.zeros(n, 2, 2, K, dtype=torch.float64))  # level, direction, (a, b), taps
    opt = torch.optim.Adam([P], lr)
    X = torch.from_numpy(np.asarray(frames, np.float64))
    X = X - X.mean(dim=(1, 2), keepdim=True)
    for it in range(iters):
        idx = torch.randint(len(X), (batch,), generator=g)
        x = X[idx]
        D = float(steps[it % len(steps)])
        ex = [((P[min(l, n - 1), 0, 0], P[min(l, n - 1), 0, 1]), (P[min(l, n - 1), 1, 0], P[min(l, n - 1), 1, 1]))
              for l in range(levels)]
        c = fwd2(x, levels, ex)
        rate = sum(torch.log2(1 + b.abs() / D).sum() for t in c[1:] for b in t)
        qc = [c[0] + (torch.round(c[0] / D) * D - c[0]).detach()]
        qc += [tuple(b + (torch.round(b / D) * D - b).detach() for b in t) for t in c[1:]]
        xh = inv2(qc, ex)
        dist = ((xh - x) ** 2).sum() / D ** 2
        loss = (rate + lam * dist) / batch
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % 50 == 0 or it == iters - 1:
            log(f"  it {it}: rate {rate.item() / batch:.1f} dist {dist.item() / batch:.1f} taps {np.round(P.detach().numpy().ravel(), 4).tolist()}")
    Pn = P.detach().numpy()
    return [((Pn[min(l, n - 1), 0, 0], Pn[min(l, n - 1), 0, 1]), (Pn[min(l, n - 1), 1, 0], Pn[min(l, n - 1), 1, 1]))
            for l in range(levels)]


if __name__ == "__main__":
    # self-check: torch lifting == numpy lifting, perfect reconstruction with random taps
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 13, 10))
    ex = [((np.array([0.1, -0.02]), np.array([0.05, 0.01])), (np.array([-0.03, 0.02]), np.array([0.02, 0.0])))] * 3
    L.fwd1(np.zeros(4))
    cn = L.fwd2(x, 3, ex)
    ct = fwd2(torch.from_numpy(x), 3, [tuple((torch.from_numpy(a), torch.from_numpy(b)) for a, b in e) for e in ex])
    print("torch vs numpy", max(float(np.abs(ct[j][o].numpy() - cn[j][o]).max()) for j in range(1, 4) for o in range(3)))
    xr = inv2(ct, [tuple((torch.from_numpy(a), torch.from_numpy(b)) for a, b in e) for e in ex])
    print("PR torch", float((xr - torch.from_numpy(x)).abs().max()), "PR numpy", np.abs(L.inv2(cn, ex) - x).max())
