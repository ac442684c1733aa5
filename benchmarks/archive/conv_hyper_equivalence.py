"""The package's conv-hyper codec against the research prototype it was ported from.

RESEARCH: the research prototype's model/ directory (not in this repository). Same checkpoint, same held-out frames (research data set heldout_a: simulated 64x64
log10 frames, seed 1), one chunk of N frames per level: bytes per frame (every byte of
the payload) and the offset-free log10 relative L2 (aggregated, and the median) of
(a) the research codec (RESEARCH/codec.py, float16 weights via its export.py)
and (b) SAECodec with the converted model's log10-input variant, quality gate off. Then
encode/decode times per 64x64 frame (a chunk of 64) and per 1024x1024 frame, CPU, 1
torch thread (the shared machine's setting), best of --repeat.

  OMP_NUM_THREADS=1 python benchmarks/archive/conv_hyper_equivalence.py RESEARCH/ckpt/a2/last.pt --research RESEARCH \
      [--model saecodec/zoo/sas-conv-h.safetensors] [--n 64] [--levels 0,2.5,5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from common import best_time  # noqa: E402
from saecodec.metrics import offset_free_rel_l2 as rel_l2




def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--research", required=True, help="the research prototype's model/ directory (codec.py, "
                                                       "export.py, data/heldout_a.npz)")
    ap.add_argument("--model", default=None, help="package model file (default: convert the checkpoint)")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--levels", default="0,2.5,5")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--real", action="store_true", help="also the shared real frames at native size")
    ap.add_argument("--mask-values", type=float, nargs="*", default=None,
                    help="real frames: sentinels the package codec masks (the research codec finds them itself)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, args.research)
    import codec as cc  # the research prototype
    import export

    from saecodec import SAECodec
    from saecodec.models import load_file

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from import_conv_hyper import convert

    u = np.load(f"{args.research}/data/heldout_a.npz")["u"][:args.n].astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        export.export(args.checkpoint, f"{tmp}/r.safetensors")
        research = export.load(f"{tmp}/r.safetensors")
    model = load_file(args.model) if args.model else convert(args.checkpoint, "sas-conv-h")
    log10 = model.for_log10_input()
    rows = []
    for lv in [float(v) for v in args.levels.split(",")]:
        blob = cc.encode(research, u, np.full(len(u), lv))
        r_back = cc.decode(research, blob)
        codec = SAECodec(log10, max_error=None, level=lv)
        payload = codec.encode(u)
        p_back = codec.decode(payload)
        (ra, rm), (pa, pm) = rel_l2(u, r_back), rel_l2(u, p_back)
        rows.append({"level": lv, "research_bytes_per_frame": len(blob) / len(u), "research_agg": ra,
                     "research_median": rm, "package_bytes_per_frame": len(payload) / len(u), "package_agg": pa,
                     "package_median": pm, "bytes_ratio": len(payload) / len(blob), "agg_ratio": pa / ra,
                     "max_abs_diff_decoded": float(np.abs(p_back.astype(np.float64) - r_back).max())})
        print(json.dumps(rows[-1]), flush=True)
    real = []
    from saecodec.data import shared

    for f in shared.files(shared.REAL_SAS) if args.real else []:
        intensity = np.load(f)["I"].astype(np.float32)
        ur = (np.arcsinh(intensity.astype(np.float64) / 1e-3) / np.log(10.0)).astype(np.float32)
        blob = cc.encode(research, ur[None], [2.5])
        r_back = cc.decode(research, blob)[0]
        codec = SAECodec(model, max_error=None, level=2.5, mask_values=args.mask_values or None)
        payload = codec.encode(intensity)
        p_back = np.arcsinh(codec.decode(payload).astype(np.float64) / 1e-3) / np.log(10.0)
        ok = np.isfinite(ur)
        d2 = ((ur[ok] - ur[ok].mean()) ** 2).sum()
        real.append((len(blob), len(payload), ((r_back[ok] - ur[ok]) ** 2).sum() / d2,
                     ((p_back[ok] - ur[ok]) ** 2).sum() / d2, bool(np.array_equal(np.isnan(p_back), ~ok))))
    if real:
        rb, pb, re2, pe2, nan_ok = (np.array(c) for c in zip(*real))
        rows.append({"set": "real-sas (39 frames, native size, level 2.5, asinh(I/1e-3))",
                     "research_bytes": int(rb.sum()), "package_bytes": int(pb.sum()), "bytes_ratio": pb.sum() / rb.sum(),
                     "research_median_rel_l2": float(np.median(np.sqrt(re2))),
                     "package_median_rel_l2": float(np.median(np.sqrt(pe2))), "nan_positions_exact": bool(nan_ok.all())})
        print(json.dumps(rows[-1]), flush=True)
    timing = {}
    codec = SAECodec(log10, max_error=None)
    chunk = u[:64]
    t_enc, payload = best_time(lambda: codec.encode(chunk), args.repeat)
    t_dec, _ = best_time(lambda: codec.decode(payload), args.repeat)
    timing["64x64"] = {"encode_ms_per_frame": 1e3 * t_enc / len(chunk), "decode_ms_per_frame": 1e3 * t_dec / len(chunk),
                       "frames_per_chunk": len(chunk)}
    big = np.kron(u[0], np.ones((16, 16), np.float32))
    big = big + np.random.default_rng(0).normal(0, 0.01, big.shape).astype(np.float32)
    t_enc, payload = best_time(lambda: codec.encode(big), max(1, args.repeat - 1))
    t_dec, _ = best_time(lambda: codec.decode(payload), max(1, args.repeat - 1))
    timing["1024x1024"] = {"encode_s": t_enc, "decode_s": t_dec, "bytes": len(payload)}
    print(json.dumps(timing), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "n": len(u), "rows": rows, "timing_1_thread": timing}, f, indent=1)


if __name__ == "__main__":
    main()
