"""Per-frame choice between the network (sas-conv-h, log10 variant) and the compiled bounded
coder at no more than the network's per-frame error: how much ratio would it add?

Single-frame chunks for both (every byte of each payload counted). Frames: saecodec bench's
held-out set (sas.simulate seed 1, log10), first N. For each frame and level: the network's
payload and error; the compiled coder's smallest payload (bisection on the abs bound) whose
error is no larger; the hybrid keeps the smaller. An estimate of what an encoder-side choice
would add (the payload format already carries such frames: the quality gate's fallback).

    OMP_NUM_THREADS=1 python benchmarks/archive/hybrid_choice.py 2000 > benchmarks/results/hybrid_choice.txt
"""
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
from saecodec import model_store
from saecodec.codec import SAECodec
from saecodec.bench.datasets import simulated_dataset
from saecodec.metrics import offset_free_terms, offset_free_summary

N = int(sys.argv[1]) if len(sys.argv) > 1 else 400
u = simulated_dataset(N, 1, "log", progress=False).values
m = model_store.remember(model_store.load("sas-conv-h").for_log10_input())
raw = u[0].nbytes
out = {}
for level in (1.0, 2.0, 3.0, 4.0, 5.0):
    c = SAECodec(m, max_error=None, level=level)
    nb, e2, d2 = np.zeros(N), np.zeros(N), np.zeros(N)
    t = time.time()
    for i in range(N):
        p = c.encode(u[i]); nb[i] = len(p)
        a, b = offset_free_terms(u[i][None], c.decode(p)[None]); e2[i], d2[i] = a[0], b[0]
    # bounded: smallest bytes with err2 <= network's, bisection on log eb
    cb = np.zeros(N)
    eb_hi_0 = 1.0
    for i in range(N):
        lo, hi = -6.0, np.log10(eb_hi_0)
        best = None
        for _ in range(12):
            mid = 0.5 * (lo + hi)
            bc = SAECodec(m, error_bound=10 ** mid)
            p = bc.encode(u[i]); a, _ = offset_free_terms(u[i][None], bc.decode(p)[None])
            if a[0] <= e2[i]:
                best = len(p); lo = mid
            else:
                hi = mid
        cb[i] = best if best is not None else np.inf
    hyb = np.minimum(nb, cb)
    agg, med = offset_free_summary(e2, d2)
    out[level] = dict(net_ratio=N * raw / nb.sum(), hybrid_ratio=N * raw / hyb.sum(), bounded_only=N * raw / cb.sum(),
                      agg=agg, median=med, frac_bounded=float((cb < nb).mean()))
    print(f"level {level}:", {k: round(float(v), 4) for k, v in out[level].items()}, f"{time.time() - t:.0f}s", flush=True)
