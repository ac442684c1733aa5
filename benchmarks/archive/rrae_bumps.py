"""The RRAE paper's synthetic test: a Gaussian bump moved on a 2D grid (2 parameters).

    python benchmarks/archive/rrae_bumps.py [--steps 40000 --batch 64 --stagnation 0.01]

400 training frames with centres on a 20 x 20 grid, 200 test frames with random centres;
the adaptive rank search (the authors' schedule: window 20, patience 500; stagnation as
given, the authors' 1% by default) starts at k_max = L = 16 and should stop at k = 2.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from saecodec.models import Transform
from saecodec.training import TrainConfig, train_rrae


def bump_frames(cx, cy, size=24, width=0.12):
    yy, xx = np.mgrid[:size, :size] / (size - 1)
    cx = np.asarray(cx).reshape(-1, 1, 1)
    cy = np.asarray(cy).reshape(-1, 1, 1)
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * width**2)) + 0.05


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=40000, help="training budget in steps")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--stagnation", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--finetune-steps", type=int, default=5000)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args()
    c = np.linspace(0.3, 0.7, 20)
    gx, gy = np.meshgrid(c, c)
    train = bump_frames(gx.ravel(), gy.ravel())
    rng = np.random.default_rng(1)
    test = bump_frames(rng.uniform(0.3, 0.7, 200), rng.uniform(0.3, 0.7, 200))
    t0 = time.perf_counter()
    per_epoch = -(-int(len(train) * 0.9) // args.batch)
    cfg = TrainConfig(epochs=-(-args.steps // per_epoch), batch=args.batch, lr=args.lr, seed=args.seed, device=None,
                      progress=False, val_fraction=0.1)
    model, res = train_rrae(train, k=None, L=16, hidden=(128, 64), transform=Transform("linear", 1.0, per_frame=False),
                            cfg=cfg, finetune_steps=args.finetune_steps, adaptive_options={"stagnation": args.stagnation})
    x = torch.from_numpy(model.transform.forward(test)[0])
    with torch.no_grad():
        xhat = model.module.decode(model.module.encode(x))
    err = float(torch.linalg.norm(xhat - x) / torch.linalg.norm(x))
    out = {"k_found": model.module.k, "test_rel_l2": err, "train_rel_l2": res["final"]["rel_l2"],
           "ideal_loss": res["adaptive"]["ideal_loss"], "events": res["adaptive"]["events"],
           "schedule": res["adaptive"]["schedule"], "seconds": time.perf_counter() - t0, "args": vars(args)}
    print(json.dumps(out, indent=1))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "rrae_bumps.json").write_text(json.dumps(out, indent=1))
    lines = ["# RRAE synthetic test: Gaussian bump on a 2D grid", "",
             f"`python benchmarks/archive/rrae_bumps.py --steps {args.steps} --batch {args.batch} --lr {args.lr:g} "
             f"--stagnation {args.stagnation:g} --seed {args.seed} --finetune-steps {args.finetune_steps}`: 400 training frames (20x20 grid of "
             "centres; 40 of them held out for validation), 200 random test frames, 24x24 pixels, L = 16, "
             f"RAdam, the authors' rank schedule ({res['adaptive']['schedule']}), "
             f"{args.finetune_steps} decoder fine-tune steps; {out['seconds']:.0f} s on {platform.machine()} "
             f"({'cuda' if torch.cuda.is_available() else 'CPU'}), {time.strftime('%Y-%m-%d')}.", "",
             f"**k found: {model.module.k}**, test relative L2 {err:.4f} (paper: k = 2, about 1%); ideal loss "
             f"(at k_max) {res['adaptive']['ideal_loss']:.4g}, {res['adaptive']['steps']} steps.", "",
             "| step | event | k | loss |", "|---|---|---|---|"]
    lines += [f"| {e['step']} | {e['event']} | {e['k']} | {'-' if e['loss'] is None else format(e['loss'], '.4g')} |"
              for e in res["adaptive"]["events"]]
    (Path(args.out) / "rrae_bumps.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
