"""Rate-distortion optimised quantisation (encoder only, no format change): after the deadzone
quantiser, each detail coefficient may move one step toward zero when that saves more rate
(under the model's static tables, in the context its causal neighbours give) than lambda x
the squared error it adds: J = D + lambda R, lambda = lam x D_b^2 (per band). Neighbour effects
are ignored within a pass; passes repeat with updated contexts. Vectorised over a stack.
"""
from __future__ import annotations

import numpy as np

import wr_codec as W0
import wr_codec2 as W2
import wr_lift as L


def token_bits(model, keys, a):
    """Static code length (bits) of magnitude a under magnitude-table keys, raw bits included."""
    tok, raw = W2.category(a)
    tb = model.t["mag"]
    _, _, lg, _ = tb._lookup()
    return -lg[tb.rows_of(keys), tok] + raw


def rdoq(qc, c, model, step, lam, passes=2, sign_bits=1.0, gains=None):
    cfg = model.cfg
    Lv = len(qc) - 1
    qc = [qc[0]] + [tuple(b.copy() for b in t) for t in qc[1:]]
    for _ in range(passes):
        feats = W2.band_features(qc)
        bi = 0
        for k in range(1, Lv + 1):
            j = Lv - k + 1
            for o in range(3):
                _, _, Q, f, sg = feats[bi]
                bi += 1
                D = step * W0.weight(cfg, j, o)
                g = W2.group(j, o)
                cls = W2.classes(f, g, model.ctx)
                keys = g * 256 + cls
                A = np.abs(Q)
                nz = A > 0
                if not nz.any():
                    continue
                x = np.abs(c[k][o]) / D
                r_now = token_bits(model, keys, A) + sign_bits * nz
                r_dn = token_bits(model, keys, np.maximum(A - 1, 0)) + sign_bits * (A > 1)
                d_now = (x - np.where(nz, A - cfg["delta"], 0)) ** 2
                d_dn = (x - np.where(A > 1, A - 1 - cfg["delta"], 0)) ** 2
                gb = 1.0 if gains is None else gains.get((j, o), 1.0)
                J_now = gb * d_now + lam * r_now
                J_dn = gb * d_dn + lam * r_dn
                lower = nz & (J_dn < J_now)
                Qn = np.where(lower, np.sign(Q) * (A - 1), Q)
                qc[k] = tuple(Qn if oo == o else qc[k][oo] for oo in range(3))
    return qc


def analyse_rdoq(U, cfg, step, model, lam, passes=2, extras=None):
    N, H, W = U.shape
    lv = L.levels_for(H, W, cfg["min_size"], cfg["max_levels"])
    mean = U.mean(axis=(1, 2), keepdims=True)
    c = L.fwd2(U - mean, lv, extras)
    _, qc, _ = W0.analyse(U, cfg, step, extras)
    qc = rdoq(qc, c, model, step, lam, passes)
    DLL = step * W0.weight(cfg, 0, 0)
    rc = [qc[0] * DLL]
    for k in range(1, lv + 1):
        j = lv - k + 1
        rc.append(tuple(W0.dequant(qc[k][o], step * W0.weight(cfg, j, o), cfg["delta"]) for o in range(3)))
    rec = L.inv2(rc, extras) + mean
    return c, qc, rec


def evaluate(frames, model, step, lam, passes=2, per_chunk=64, chunk_header=24, extras=None):
    from saecodec import metrics

    cfg = model.cfg
    n = len(frames)
    bits, e2, d2 = np.zeros(n), np.zeros(n), np.zeros(n)
    groups = {}
    for i, f in enumerate(frames):
        groups.setdefault(np.asarray(f).shape, []).append(i)
    for shape, idx in groups.items():
        for s in range(0, len(idx), 256):
            ii = idx[s:s + 256]
            ref = np.stack([np.asarray(frames[i], np.float64) for i in ii])
            U = np.stack([W0.fill(r) for r in ref])
            c, qc, rec = analyse_rdoq(U, cfg, step, model, lam, passes, extras)
            b, _ = model.bits(qc)
            a, d = metrics.offset_free_terms(ref, rec)
            bits[ii], e2[ii], d2[ii] = b, a, d
    raw_bytes = 4 * sum(np.asarray(f).size for f in frames)
    nbytes = bits.sum() / 8 + n * cfg["header_bytes"] + chunk_header * -(-n // per_chunk) + W0.mask_bytes(list(frames), per_chunk)
    agg, med = metrics.offset_free_summary(e2, d2)
    return agg, med, raw_bytes / nbytes, nbytes / n
