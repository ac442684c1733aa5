"""RRAE (fixed k and adaptive) against the sparse L1 family on simulated SAS, in bytes per frame.

    python benchmarks/archive/rrae_sas.py --train 30000 --epochs 150

Same data and metric as benchmarks/paper_table1.py (seed 0 training, seed 1 test, relative
L2 in the per-frame normalised asinh domain), bytes through the real codec (chunks of 64).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from common import codec_bytes  # noqa: E402
from saecodec.data import sas
from saecodec.models import Transform
from saecodec.models.runtime import resolve_device
from saecodec.training import TrainConfig, evaluate, train_rrae


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train", type=int, default=30000)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--ranks", default="8,16,32,64")
    p.add_argument("--adaptive", action="store_true")
    p.add_argument("--latent", type=int, default=128, help="L")
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args()
    device = resolve_device().type
    train = sas.simulate(args.train, seed=0, progress=False).frames
    test = sas.simulate(args.test, seed=1, progress=False).frames
    transform = Transform("asinh", 1e-3)
    z_test = torch.from_numpy(transform.forward(test)[0])
    runs = [int(k) for k in args.ranks.split(",") if k] + ([None] if args.adaptive else [])
    rows = []
    for k in runs:
        t0 = time.perf_counter()
        cfg = TrainConfig(epochs=args.epochs, batch=512, lr=1e-3, device=device, lr_min_fraction=0.01,
                          progress=False, val_fraction=0.05)
        model, _ = train_rrae(train, k=k, L=args.latent, hidden=(1024, 256), transform=transform, cfg=cfg,
                              finetune_steps=2000, name=f"rrae-k{k}")
        te = evaluate(model.module, z_test)
        nbytes = codec_bytes(model, test, device=device)
        row = {"k": model.module.k, "adaptive": k is None, "rel_l2_test": te["rel_l2"],
               "bytes_per_frame": nbytes / len(test), "cr_bytes": test.nbytes / nbytes,
               "seconds": time.perf_counter() - t0}
        rows.append(row)
        print(json.dumps(row), flush=True)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "rrae_sas.json").write_text(json.dumps({"args": vars(args), "device": device,
                                                                 "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
