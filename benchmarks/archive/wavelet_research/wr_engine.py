"""Real bytes from the engine (the `wl` helper's c_wavelet, PYTHONPATH=/work/wt/wl): train a
wavelet model with saecodec.training.wavelet on the research training sets, then encode the
held-out sets at a sweep of steps and compare with the anchors at equal error.

Bytes per frame = the engine's stream bytes (step index inside the rANS state) + the payload's
per-chunk header (CHUNK_HEADER bytes per chunk of 64 frames; one chunk per real frame) + masks.
"""
from __future__ import annotations

import numpy as np

import wr_codec as W0
from wr_sweep import compare

CHUNK_HEADER = 24


def identity_model(name="wr", **arch):
    from saecodec.models.transforms import Transform
    from saecodec.models.wavelet import wavelet_model

    return wavelet_model(name, transform=Transform("linear", 1.0, per_frame=False, normalise="mean"), **arch)


def train(frames_list, arch=None, cfg=None, val=None, theta=None):
    from saecodec.training.wavelet import WaveletTrainConfig, train_wavelet

    m = identity_model(**(arch or {}))
    if theta is not None:
        m.module.theta[:, 1:] = theta
    filled = [np.stack([W0.fill(np.asarray(f, np.float64)) for f in fr]).astype(np.float32) for fr in frames_list]
    c = WaveletTrainConfig(progress=False, **(cfg or {}))
    m, res = train_wavelet(m, filled, c, val=val)
    return m, res


def evaluate(model, frames, step_idx, per_chunk=64, engine=None, mask_values=None, others=()):
    """(agg, median, ratio, bytes/frame, (e2, d2, bytes per frame)) of one step index (or per-frame
    array) on a list/stack of frames. ``mask_values``: per frame sentinel values the codec restores
    exactly (coded as masked). ``others``: more models; each frame is then coded by whichever model
    (``model`` or one of ``others``) gives it the fewest bytes, as a per-frame profile choice would
    (+1 bit per frame per choice counted; sizes of single frames taken relative to the chunk)."""
    from saecodec import metrics
    from saecodec.coding import wavelet_engine as we
    import wr_codec2 as W2

    engs = [engine or we.Engine(model.module.engine_params())] + [we.Engine(m.module.engine_params()) for m in others]
    refs = frames
    coded = W2.coded_copy(frames, mask_values)
    groups = {}
    for i, f in enumerate(frames):
        groups.setdefault(np.asarray(f).shape, []).append(i)
    n = len(frames)
    e2, d2, nb = np.zeros(n), np.zeros(n), np.zeros(n)
    for shape, idx in groups.items():
        for s in range(0, len(idx), per_chunk):
            ii = idx[s:s + per_chunk]
            ref = np.stack([np.asarray(refs[i], np.float64) for i in ii])
            cod = np.stack([np.asarray(coded[i], np.float64) for i in ii])
            U = np.stack([W0.fill(r) for r in cod])
            k = step_idx[ii] if np.ndim(step_idx) else step_idx
            data, zhat, _ = engs[0].encode(U, k)
            total = len(data)
            if len(engs) > 1:
                sizes = np.array([[len(e.encode(U[j:j + 1], k if np.ndim(k) == 0 else k[j:j + 1])[0]) for j in range(len(ii))]
                                  for e in engs])
                best = sizes.argmin(0)
                total += -(sizes[0] - sizes[best, np.arange(len(ii))]).sum() + len(ii) * np.log2(len(engs)) / 8
                for j in range(len(ii)):
                    if best[j]:
                        zhat[j] = engs[best[j]].encode(U[j:j + 1], k if np.ndim(k) == 0 else k[j:j + 1])[1][0]
            zhat = np.where(np.isnan(cod) & np.isfinite(ref), ref, zhat)
            a, d = metrics.offset_free_terms(ref, zhat)
            e2[ii], d2[ii] = a, d
            nb[ii] = (total + CHUNK_HEADER + W0.mask_bytes([cod[j] for j in range(len(ii))], len(ii))) / len(ii)
    raw = 4 * sum(np.asarray(f).size for f in frames)
    agg, med = metrics.offset_free_summary(e2, d2)
    return agg, med, raw / nb.sum(), nb.mean(), (e2, d2, nb)


def sweep(set_name, model, frames, steps, per_chunk=None, verbose=False, mask_values=None, others=()):
    from saecodec.coding import wavelet_engine as we

    per_chunk = per_chunk or (1 if set_name == "real" else 64)
    eng = we.Engine(model.module.engine_params())
    pts = []
    for s in steps:
        agg, med, r, bpf, _ = evaluate(model, frames, we.step_index(s), per_chunk, eng, mask_values, others)
        pts.append((s, agg, med, r, bpf))
        if verbose:
            print(f"  step {s}: agg {agg:.4f} med {med:.4f} ratio {r:.1f} B/f {bpf:.1f}", flush=True)
    return compare(set_name, pts)
