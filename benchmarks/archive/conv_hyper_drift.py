"""Drift check of a shipped conv-hyper model (the test suite does the same on a tiny one).

For chunks of held-out simulated frames (64 per chunk, levels 0 .. L-1) and the shared real
frames at their native sizes: (1) decoding with every network output multiplied by
1 + k 2^-23 (k random in -4..4) gives the same z and y symbols; (2) encoding with 1 and 2
torch threads gives the same bytes; (3) how many latents the guard list flags.

  OMP_NUM_THREADS=2 python benchmarks/archive/conv_hyper_drift.py sas-conv-h --heldout RESEARCH/data/heldout_a.npz [--n 256]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from saecodec import model_store
from saecodec.chunk import decode_chunk, encode_chunk
from saecodec.coding import hyperprior
from saecodec.data import shared
from saecodec.models import runtime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--heldout", required=True, help="the research data set heldout_a.npz (its 'u': log10 frames)")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--ulps", type=int, default=4)
    args = ap.parse_args()
    model = model_store.load(args.model)
    log10 = model.for_log10_input()
    u = np.load(args.heldout)["u"][:args.n].astype(np.float32)
    L = model.module.levels
    chunks = [(log10, u[i:i + 64], (i // 64) % L) for i in range(0, len(u), 64)]
    big = np.kron(u[0], np.ones((16, 16), np.float32))  # a 1024x1024 frame (oneDNN differs there)
    chunks.append((log10, big + np.random.default_rng(0).normal(0, 0.01, big.shape).astype(np.float32), 2.5))
    for f in shared.files(shared.REAL_SAS)[:8]:
        chunks.append((model, np.load(f)["I"].astype(np.float32), (L - 1) / 2))
    gen = np.random.default_rng(1)
    real_batched, real_groups, real_tables = runtime.batched, hyperprior._decode_groups, hyperprior._tables
    same_sym = same_bytes = True
    flagged = total = 0

    def perturbed(fn, x, device, rows=runtime.BATCH):
        outs = real_batched(fn, x, device, rows)
        outs = outs if isinstance(outs, tuple) else (outs,)  # h_s gives (mu, sigma)
        outs = tuple((o * (1 + gen.integers(-args.ulps, args.ulps + 1, o.shape).astype(np.float32)
                           * np.float32(2.0 ** -23))).astype(np.float32) for o in outs)
        return outs if len(outs) > 1 else outs[0]

    for m, x, level in chunks:
        torch.set_num_threads(1)
        one = encode_chunk(m, x, max_error=None, level=level)
        torch.set_num_threads(2)
        two = encode_chunk(m, x, max_error=None, level=level)
        same_bytes &= one == two
        runs = []
        for batched in (real_batched, perturbed):
            got = []

            def rec(*a):
                out = real_groups(*a)
                got.append(out.copy())
                return out

            def tables(sigma, scales):
                nonlocal flagged, total
                i, near, upper = real_tables(sigma, scales)
                if batched is real_batched:
                    flagged, total = flagged + len(near), total + i.size
                return i, near, upper

            runtime.batched, hyperprior._decode_groups, hyperprior._tables = batched, rec, tables
            try:
                decode_chunk(m, two)
            finally:
                runtime.batched, hyperprior._decode_groups = real_batched, real_groups
                hyperprior._tables = real_tables
            runs.append(got)
        same_sym &= all(np.array_equal(a, b) for a, b in zip(*runs))
        print(f"{x.shape} level {level}: {len(two)} bytes, symbols same: {same_sym}, bytes same: {same_bytes}",
              flush=True)
    print(f"symbols unchanged under {args.ulps}-ulp perturbation of every network output: {same_sym}")
    print(f"same bytes with 1 and 2 torch threads: {same_bytes}")
    print(f"guard list: {flagged} of {total} latents ({flagged / max(total, 1):.2e})")


if __name__ == "__main__":
    main()
