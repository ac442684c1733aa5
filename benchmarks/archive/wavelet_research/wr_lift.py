"""CDF 9/7 lifting with whole-sample symmetric extension, any length, vectorised over a stack.

This is the transform the engine spec (notes/wavelet-spec.md) asks for; the research prototypes
use it so that what is measured is what the C engine will do. Conventions:
* 1D: s = x[0::2] (ceil(n/2)), d = x[1::2] (floor(n/2)); four lifting steps (alpha, beta, gamma,
  delta of JPEG 2000); then s *= ZS, d *= ZD with ZS, ZD chosen so that the low band's DC gain and
  the high band's Nyquist gain are sqrt(2) (the bior4.4 normalisation: near-orthonormal subbands).
* extension (whole-sample symmetric, x[-1] = x[1], x[n] = x[n-2]) in the polyphase domain:
  predict uses s[i], s[i+1] with s[len(s)] := s[len(s)-1] when n is even; update uses d[i-1], d[i]
  with d[-1] := d[0] and d[len(d)] := d[len(d)-1] when n is odd. n = 1: identity.
* 2D, one level: rows (last axis) then columns; bands LL, then (HL: high along x, LH: high along y, HH).
* Mallat: coeffs = [LL_L, (HL, LH, HH)_L, ..., (HL, LH, HH)_1] (coarsest first, like pywt).
* optional learned refinement per (level, axis): after the CDF steps and before scaling,
  d[i] += sum_k a_k (s[i-k] + s[i+1+k]) and s[i] += sum_k b_k (d[i-1-k] + d[i+k]), k = 0..K-1,
  symmetric extension; all taps zero = plain CDF 9/7.
"""
from __future__ import annotations

import numpy as np

ALPHA, BETA, GAMMA, DELTA = -1.586134342059924, -0.052980118572961, 0.882911075530934, 0.443506852043971


def _ext(a, idx):
    """a[..., idx] with whole-sample symmetric extension of the polyphase sequence."""
    n = a.shape[-1]
    idx = np.asarray(idx)
    # reflect about the ends as the interleaved signal does: index -1 -> 0 and n -> n-1 for the
    # sequences used here (one-step reach); deeper reach (learned taps) reflects further
    j = np.where(idx < 0, -idx - 1, idx)
    j = np.where(j >= n, 2 * n - 1 - j, j)
    return a[..., np.clip(j, 0, n - 1)]


def _predict(s, d, c):  # d[i] += c (s[i] + s[i+1])
    m = d.shape[-1]
    i = np.arange(m)
    return d + c * (s[..., i] + _ext(s, i + 1))


def _update(s, d, c):  # s[i] += c (d[i-1] + d[i])
    m = s.shape[-1]
    i = np.arange(m)
    return s + c * (_ext(d, i - 1) + _ext(d, i))


def _predict_inv(s, d, c):
    return _predict(s, d, -c)


def _update_inv(s, d, c):
    return _update(s, d, -c)


def _gains():
    x = np.ones(64)
    s, d = _lift1(x, None, None)
    gs = s[8]
    x = (-1.0) ** np.arange(64)
    s, d = _lift1(x, None, None)
    gd = abs(d[8])
    return np.sqrt(2) / gs, np.sqrt(2) / gd


def _lift1(x, extra, _unused):
    s, d = x[..., 0::2], x[..., 1::2]
    if d.shape[-1] == 0:
        return s, d
    d = _predict(s, d, ALPHA)
    s = _update(s, d, BETA)
    d = _predict(s, d, GAMMA)
    s = _update(s, d, DELTA)
    if extra is not None:
        a, b = extra
        m = d.shape[-1]
        i = np.arange(m)
        for k, ak in enumerate(a):
            d = d + ak * (_ext(s, i - k) + _ext(s, i + 1 + k))
        i = np.arange(s.shape[-1])
        for k, bk in enumerate(b):
            s = s + bk * (_ext(d, i - 1 - k) + _ext(d, i + k))
    return s, d


ZS, ZD = None, None


def fwd1(x, extra=None):
    global ZS, ZD
    if ZS is None:
        ZS, ZD = 1.0, 1.0
        ZS, ZD = _gains()
    s, d = _lift1(x, extra, None)
    if d.shape[-1] == 0:
        return s, d
    return s * ZS, d * ZD


def inv1(s, d, extra=None):
    n = s.shape[-1] + d.shape[-1]
    if d.shape[-1] == 0:
        return s.copy()
    s, d = s / ZS, d / ZD
    if extra is not None:
        a, b = extra
        i = np.arange(s.shape[-1])
        for k, bk in enumerate(b):
            s = s - bk * (_ext(d, i - 1 - k) + _ext(d, i + k))
        i = np.arange(d.shape[-1])
        for k, ak in enumerate(a):
            d = d - ak * (_ext(s, i - k) + _ext(s, i + 1 + k))
    s = _update_inv(s, d, DELTA)
    d = _predict_inv(s, d, GAMMA)
    s = _update_inv(s, d, BETA)
    d = _predict_inv(s, d, ALPHA)
    x = np.empty(s.shape[:-1] + (n,), dtype=np.result_type(s, d))
    x[..., 0::2] = s
    x[..., 1::2] = d
    return x


def levels_for(h, w, min_size=8, max_levels=6):
    """Levels while the coarsest LL keeps both sides >= min_size (and at least one level)."""
    L = 0
    while L < max_levels and -(-h // 2 ** (L + 1)) >= min_size and -(-w // 2 ** (L + 1)) >= min_size:
        L += 1
    return max(L, 1)


def fwd2(x, levels, extras=None):
    """x (..., H, W) -> [LL, (HL, LH, HH)_L, ..., (HL, LH, HH)_1]; extras[l] = (row extra, col extra)."""
    det = []
    a = x
    for l in range(levels):
        ex = extras[l] if extras is not None else (None, None)
        lo, hi = fwd1(a, ex[0])  # along x
        ll, lh = fwd1(np.swapaxes(lo, -1, -2), ex[1])  # along y
        hl, hh = fwd1(np.swapaxes(hi, -1, -2), ex[1])
        ll, lh, hl, hh = (np.swapaxes(t, -1, -2) for t in (ll, lh, hl, hh))
        det.append((hl, lh, hh))
        a = ll
    return [a] + det[::-1]


def inv2(c, extras=None):
    a = c[0]
    L = len(c) - 1
    for j in range(1, L + 1):
        l = L - j
        ex = extras[l] if extras is not None else (None, None)
        hl, lh, hh = c[j]
        lo = np.swapaxes(inv1(np.swapaxes(a, -1, -2), np.swapaxes(lh, -1, -2), ex[1]), -1, -2)
        hi = np.swapaxes(inv1(np.swapaxes(hl, -1, -2), np.swapaxes(hh, -1, -2), ex[1]), -1, -2)
        a = inv1(lo, hi, ex[0])
    return a


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    for h, w in [(64, 64), (68, 68), (80, 80), (192, 191), (7, 5), (1, 9), (2, 3)]:
        x = rng.standard_normal((3, h, w))
        L = levels_for(h, w, 1)
        c = fwd2(x, L)
        y = inv2(c)
        print(h, w, L, np.abs(y - x).max(), "ZS, ZD", ZS, ZD)
    # synthesis gains (energy of a unit coefficient in each band), 64x64, 4 levels
    c = fwd2(np.zeros((64, 64)), 4)
    for j in range(1, 5):
        g = []
        for o in range(3):
            cc = [t.copy() if not isinstance(t, tuple) else tuple(u.copy() for u in t) for t in c]
            b = cc[j][o]
            b[b.shape[0] // 2, b.shape[1] // 2] = 1
            g.append((inv2(cc) ** 2).sum())
        print("level", 5 - j, np.round(g, 3))
    cc = [t.copy() if not isinstance(t, tuple) else tuple(u.copy() for u in t) for t in c]
    cc[0][2, 2] = 1
    print("LL", (inv2(cc) ** 2).sum())
