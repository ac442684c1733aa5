"""The trends of the L1 paper's Table 1, at reduced scale, on simulated 64x64 SAS frames.

    python benchmarks/archive/paper_table1.py --out benchmarks/results --train 20000 --epochs 100

Hourglass (1/4, 1/8, 0) against sparse (1/4, 1/8, lambda, z), (1/4, 1/8, lambda, grad) and
an overcomplete (1/4, 1, lambda, z), each sparse one over a small lambda sweep so that one
can be picked at the hourglass's error. Relative L2 is measured in the network's domain
(per-frame normalised asinh intensities), on the training set and on held-out frames
(seed 1). CR is reported both ways: the paper's n / nnz(f(z)) and honest bytes written by
the codec (headers included, chunks of 64 frames, float16 weights).
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
from saecodec.training import TrainConfig, evaluate, train_l1

ROWS = [
    ("hourglass", 0.25, 0.125, [0.0], "z"),
    ("sparse z", 0.25, 0.125, [0.03, 0.1, 0.3, 1.0], "z"),
    ("sparse grad", 0.25, 0.125, [0.03, 0.1, 0.3], "grad"),
    ("overcomplete z", 0.25, 1.0, [0.1, 0.3, 1.0], "z"),
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--train", type=int, default=20000)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device().type
    train = sas.simulate(args.train, seed=0, progress=False).frames
    test = sas.simulate(args.test, seed=1, progress=False).frames
    transform = Transform("asinh", 1e-3)
    z_test = torch.from_numpy(transform.forward(test)[0])
    rows = []
    for label, m, l, lams, f in ROWS:
        for lam in lams:
            t0 = time.perf_counter()
            cfg = TrainConfig(epochs=args.epochs, batch=512, lr=args.lr, device=device, lr_min_fraction=0.01,
                              progress=False, val_fraction=0.0)
            model, res = train_l1(train, m_frac=m, l_frac=l, lam=lam, selector=f, transform=transform, cfg=cfg,
                                  name=f"table1-{label}-{lam:g}")
            te = evaluate(model.module, z_test)
            n = model.module.n
            nbytes = codec_bytes(model, test, device="cpu")
            row = {
                "net": label, "arch": f"({m:g}, {l:g}, {lam:g}, {f})", "l": model.module.l,
                "rel_l2_train": res["train"]["rel_l2"], "rel_l2_test": te["rel_l2"],
                "nnz_z": te["nnz"], "nnz_fz": te["nnz_f"], "cr_paper": n / max(te["nnz_f"], 1e-9),
                "cr_dense_n_over_l": n / model.module.l,
                "bytes_per_frame": nbytes / len(test), "cr_bytes": test.nbytes / nbytes,
                "train_s": time.perf_counter() - t0,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            (out / "paper_table1.json").write_text(json.dumps({"args": vars(args), "device": device, "rows": rows},
                                                             indent=1))
    write_markdown(rows, vars(args), device, out / "paper_table1.md")


def write_markdown(rows, args, device, path):
    lines = [
        "# L1 paper Table 1 trends, reduced scale",
        "",
        f"Simulated 64x64 SAS frames: {args['train']} training (seed 0), {args['test']} test (seed 1); "
        f"{args['epochs']} epochs, RAdam lr {args['lr']} cosine-decayed, batch 512, on {device}. "
        "Relative L2 in the network's domain (per-frame normalised asinh intensities). "
        "CR (paper) = n / nnz(f(z)); CR (bytes) = raw float32 bytes / bytes the codec wrote (chunks of 64 frames, "
        "float16 weights, headers included).",
        "",
        "| net | (m/n, l/n, lambda, f) | rel L2 train | rel L2 test | nnz(z) | nnz(f(z)) | CR paper | CR bytes | bytes/frame |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['net']} | {r['arch']} | {r['rel_l2_train']:.4f} | {r['rel_l2_test']:.4f} | "
                     f"{r['nnz_z']:.1f} | {r['nnz_fz']:.1f} | {r['cr_paper']:.1f} | {r['cr_bytes']:.1f} | "
                     f"{r['bytes_per_frame']:.0f} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
