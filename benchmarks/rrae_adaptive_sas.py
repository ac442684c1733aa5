"""The adaptive rank search on simulated SAS frames (CPU-sized), bytes through the real codec.

    python benchmarks/rrae_adaptive_sas.py --train 6000 --test 1000 --tols 0.05 0.2

Training frames: seed 0; test frames: seed 1 (held out). Prints and writes
benchmarks/results/rrae_adaptive_sas.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from saecodec import chunk
from saecodec.data import sas
from saecodec.metrics import frame_metrics
from saecodec.models import Transform
from saecodec.training import TrainConfig, train_rrae


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=6000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--tols", type=float, nargs="+", default=[0.05, 0.2])
    ap.add_argument("--latent", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=120, help="epochs at k_max, to reach stagnation")
    ap.add_argument("--epochs-per-rank", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rrae_adaptive_sas.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    train = sas.simulate(args.train, seed=0).frames
    test = sas.simulate(args.test, seed=1).frames
    out = {"command": vars(args) | {"out": str(args.out)}, "runs": {}}
    for tol in args.tols:
        t = time.time()
        cfg = TrainConfig(epochs=args.epochs, batch=256, lr=1e-3, device=args.device, progress=True, seed=0)
        model, res = train_rrae(train, k=None, L=args.latent, hidden=(args.hidden,), transform=Transform("asinh", 1e-3),
                                cfg=cfg, finetune_steps=300,
                                adaptive_options={"epochs_per_rank": args.epochs_per_rank, "tol": tol})
        total, rec = 0, []
        for i in range(0, len(test), 64):
            p = chunk.encode_chunk(model, test[i:i + 64], device=args.device)
            total += len(p)
            rec.append(chunk.decode_chunk(model, p, device=args.device))
        met = frame_metrics(test, np.concatenate(rec), model.transform)
        out["runs"][str(tol)] = {
            "k": model.module.k,
            "search": [(h["k"], round(h["loss"], 1), h["accepted"]) for h in res["adaptive"]["history"]],
            "bytes_per_frame": total / len(test), "rel_l2_t": met["rel_l2_t"], "seconds": round(time.time() - t)}
        print(tol, out["runs"][str(tol)], flush=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
