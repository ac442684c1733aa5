"""Train candidate sparse L1 models for 64x64 SAS frames and pick the shipped default.

Run on a GPU where one is available (it also runs, slowly, on the CPU):

    python benchmarks/archive/train_default.py --out runs/default --train 60000 --epochs 150

Simulates the training set (seed 0) and two held-out sets: seed 1 with the training
configuration, and seed 2 with instrument configurations outside the training range
(larger q_max, larger beam-centre offsets). Each candidate is trained, then measured
through the real codec (honest bytes, chunks of 64 frames) on both held-out sets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from common import codec_eval  # noqa: E402
from saecodec.data import sas
from saecodec.models import Transform
from saecodec.models.runtime import resolve_device
from saecodec.training import TrainConfig, train_l1

CANDIDATES = [
    # (m/n, l/n, lambda, f)
    ("1/16", "1/8", 1e-3, "z"),
    ("1/16", "1/8", 3e-3, "z"),
    ("1/16", "1/8", 1e-2, "z"),
    ("1/16", "1/4", 3e-3, "z"),
    ("1/32", "1/4", 3e-3, "z"),
    ("1/8", "1/8", 1e-2, "z"),
    ("1/4", "1/8", 1e-2, "z"),
    ("1/16", "1/8", 0.1, "z"),
    ("1/16", "1/8", 0.3, "z"),
    ("1/16", "1/8", 1.0, "z"),
    ("1/8", "1/8", 0.3, "z"),
]


def frac(t):
    a, b = t.split("/")
    return float(a) / float(b)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=60000)
    p.add_argument("--heldout", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--candidates", default="all", help="comma-separated indices into CANDIDATES")
    p.add_argument("--transform-scale", type=float, default=1e-3)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device().type

    t0 = time.perf_counter()
    train = sas.simulate(args.train, seed=0, progress=False).frames.astype(np.float64)
    held = sas.simulate(args.heldout, seed=1, progress=False).frames
    unseen_cfg = sas.SimConfig(q_max_range=(0.6, 1.0), center_jitter=0.35)
    unseen = sas.simulate(args.heldout, seed=2, cfg=unseen_cfg, progress=False).frames
    sim_s = time.perf_counter() - t0
    print(f"simulated {args.train}+2x{args.heldout} frames in {sim_s:.1f} s on {torch.get_num_threads()} threads",
          flush=True)

    idx = range(len(CANDIDATES)) if args.candidates == "all" else [int(i) for i in args.candidates.split(",")]
    results = []
    for i in idx:
        m, l, lam, f = CANDIDATES[i]
        name = f"sas64-l1-m{m.replace('/', '_')}-l{l.replace('/', '_')}-lam{lam:g}-{f}"
        cfg = TrainConfig(epochs=args.epochs, batch=args.batch, lr=args.lr, seed=0, device=device,
                          lr_min_fraction=0.01, progress=False)
        t1 = time.perf_counter()
        provenance = json.dumps({
            "data": "saecodec.data.sas.simulate", "train_frames": args.train, "train_seed": 0,
            "config": "SimConfig() defaults", "epochs": args.epochs, "lr": args.lr, "schedule": "cosine to 0.01",
            "batch": args.batch, "arch": [m, l, lam, f], "script": "benchmarks/archive/train_default.py",
        }, sort_keys=True)
        model, res = train_l1(train, m_frac=frac(m), l_frac=frac(l), lam=lam, selector=f,
                              transform=Transform("asinh", args.transform_scale), cfg=cfg, name=name,
                              provenance=provenance)
        train_s = time.perf_counter() - t1
        model.storage_dtype = "float16"
        model.save(out / "tmp.safetensors")  # rounds weights to the stored float16
        ev_held = codec_eval(model, held, device=device)
        ev_unseen = codec_eval(model, unseen, device=device)
        model.metrics = {**model.metrics, "heldout_seed1": ev_held, "unseen_config_seed2": ev_unseen}
        ident = model.save(out / f"{name}.safetensors")
        rec = {"name": name, "identity": ident, "arch": [m, l, lam, f], "train_s": train_s,
               "train_metrics": {k: v for k, v in res["val"].items()}, "heldout": ev_held, "unseen": ev_unseen}
        results.append(rec)
        print(json.dumps(rec), flush=True)
        (out / "results.json").write_text(json.dumps({"sim_s": sim_s, "results": results}, indent=1))
    (out / "tmp.safetensors").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
