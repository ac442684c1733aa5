"""The shipped conv-hyper model's recipe, with the package only, in one command (issue #12 item 5).

sas-conv-h was trained by the research scripts (the research prototype's model/: a chain s3_hyper 2000
steps -> a2 7500 steps at lr 1e-3 -> a2b 3500 steps at lr 3e-4, ~2350 CPU-s) and converted
(benchmarks/archive/import_conv_hyper.py; the package codec matches the research codec,
benchmarks/archive/conv_hyper_equivalence.py). This script is the same recipe as one package run:

1. data: the research sets simulated with saecodec.data.sas, same seeds and settings,
   written as the package trains from them (HDF5 of intensities, sas.write_h5):
   train_a 40000 frames seed 10 (default SimConfig), train_b 20000 seed 11 (q_max 0.02-1,
   centre jitter 0.6), both trained on as log10(max(I, 1e-6)) as in the research; train_c
   12000 seed 13 (Poisson noise, flux 3-1e5, the flat background subtracted with a +-10%
   error from half the frames), trained on in the model's asinh(I/1e-3)/ln10 domain;
2. training: training.conv_hyper (what `saecodec train --family conv-hyper` runs), the same
   architecture and loss, one cosine schedule (lr 1e-3 -> 2e-5, warm-up 200) in place of the
   research chain, batch 16, crops 64, dihedral augmentation; checkpoint every 250 steps,
   --resume continues it; CUDA when available (--device); tables frozen, float16 weights,
   the recipe in the provenance;
3. measurement: the result and the shipped sas-conv-h through SAECodec (log10-input
   variant, gate off, chunks of 64) on 256 held-out frames (sas.simulate seed 1, log10) at
   levels 0, 2.5, 5: bytes per frame (every payload byte) and the offset-free log10 relative
   L2 (aggregated, and the median), as conv_hyper_equivalence.py measures.

    nice -n 10 python benchmarks/train_sas_conv_h.py --out runs/sas-conv-h [--resume] [--device cuda]
    python benchmarks/train_sas_conv_h.py --out /tmp/q --quick      # smoke: small sets, 30 steps

The same recipe from the CLI (after step 1; the frames come in another order, so not the same
run): saecodec train --family conv-hyper --data train_c.h5 --log10-data train_a.h5 train_b.h5
--steps 11000 --lr 1e-3 --lr-end 2e-5 --checkpoint ck.pt [--resume] -o sas-conv-h.safetensors

Cost (measured on the shared 2-core machine, benchmarks/README.md): 0.171 CPU-s per step with
1 torch thread, so 11000 steps take ~31 min of one core; simulation ~780 frames/s (~95 s).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import torch

import saecodec
from saecodec import SAECodec
from saecodec.data import sas
from saecodec.models import Transform, load_file
from saecodec.training import ConvHyperConfig, train_conv_hyper

ARCH = {"chans": [48, 96], "M": 128, "Nh": 64, "k": 5, "hk": 3, "lambdas": [100, 250, 600, 1500, 3600, 9000]}
# name: (frames, seed, SimConfig kwargs, domain) -- the research prototype's model/data.py SETS
SETS = {
    "train_a": (40000, 10, {}, "log10"),
    "train_b": (20000, 11, {"q_max_range": (0.02, 1.0), "center_jitter": 0.6}, "log10"),
    "train_c": (12000, 13, {"q_max_range": (0.02, 1.0), "center_jitter": 0.6, "noise": True,
                            "flux_range": (3.0, 1e5)}, "asinh"),
}
HELDOUT = (256, 1)
LEVELS = (0.0, 2.5, 5.0)
SHIPPED = Path(saecodec.__file__).parent / "zoo" / "sas-conv-h.safetensors"


def make_set(path: Path, name: str, n: int, seed: int, kwargs: dict) -> float:
    """Simulate one training set into ``path``; returns the wall seconds (0 if it was there)."""
    if path.exists():
        with h5py.File(path, "r") as f:
            if f["frames"].shape[0] == n and f.attrs.get("recipe_set") == name:
                return 0.0
    t = time.perf_counter()
    sim = sas.simulate(n, seed=seed, cfg=sas.SimConfig(**kwargs), progress=False)
    if kwargs.get("noise"):
        # a reduction subtracts the flat background it estimated (+-10%) from half the frames
        rng = np.random.default_rng(seed)
        bg = np.array([p["background"] for p in sim.params]) * rng.uniform(0.9, 1.1, n)
        frames = sim.frames.astype(np.float64) - bg[:, None, None] * rng.uniform(0, 1, n)[:, None, None].round()
        sim = replace(sim, frames=frames.astype(np.float32))
    tmp = path.with_name(path.name + ".tmp")
    sas.write_h5(sim, tmp)
    with h5py.File(tmp, "a") as f:
        f.attrs["recipe_set"] = name
    os.replace(tmp, path)
    return time.perf_counter() - t


def log10_frames(x):
    return np.log10(np.maximum(np.asarray(x, np.float64), 1e-6)).astype(np.float32)


def measure(model, u: np.ndarray) -> list[dict]:
    """Bytes per frame and offset-free log10 relative L2 through SAECodec, chunks of 64."""
    log10 = model.for_log10_input()
    rows = []
    for lv in LEVELS:
        codec = SAECodec(log10, max_error=None, level=lv)
        nbytes, back = 0, np.empty_like(u)
        for i in range(0, len(u), 64):
            payload = codec.encode(u[i:i + 64])
            nbytes += len(payload)
            back[i:i + 64] = codec.decode(payload)
        a, b = u.reshape(len(u), -1).astype(np.float64), back.reshape(len(u), -1).astype(np.float64)
        e2, d2 = ((b - a) ** 2).sum(1), ((a - a.mean(1, keepdims=True)) ** 2).sum(1)
        rows.append({"level": lv, "bytes_per_frame": nbytes / len(u), "rel_l2": float(np.sqrt(e2.sum() / d2.sum())),
                     "median_rel_l2": float(np.median(np.sqrt(e2 / d2)))})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for the data sets, checkpoint, model and results")
    ap.add_argument("--steps", type=int, default=11000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-end", type=float, default=2e-5)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the 2-core target)")
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA if available)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    ap.add_argument("--checkpoint-every", type=int, default=250)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1/250 of each set, 30 steps")
    ap.add_argument("--skip-eval", action="store_true", help="train only (a timing run)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps = 30 if args.quick and args.steps == 11000 else args.steps
    scale = 250 if args.quick else 1

    sim_s, parts, flags, data = 0.0, [], [], {}
    for name, (n, seed, kwargs, domain) in SETS.items():
        n = max(n // scale, 16)
        path = out / f"{name}.h5"
        sim_s += make_set(path, name, n, seed, kwargs)
        parts.append(sas.read_h5(path))
        flags.append(np.full(n, domain == "log10"))
        data[name] = {"frames": n, "seed": seed, "SimConfig": {k: list(v) if isinstance(v, tuple) else v
                                                                for k, v in kwargs.items()}, "domain": domain}
    print(f"data: {sum(map(len, parts))} frames, simulated in {sim_s:.0f} s (wall)", flush=True)

    cfg = ConvHyperConfig(steps=steps, batch=16, crop=64, lr=args.lr, lr_end=args.lr_end, warmup=args.warmup,
                          seed=0, device=args.device, checkpoint=str(out / "checkpoint.pt"), resume=args.resume,
                          checkpoint_every=args.checkpoint_every, progress=True)
    recipe = (f"benchmarks/train_sas_conv_h.py: package re-run of the research recipe of sas-conv-h (s3_hyper -> a2 "
              f"-> a2b, ~13000 steps, ~2350 CPU-s) as one schedule: {steps} steps, Adam lr {args.lr:g} (warm-up "
              f"{args.warmup}) cosine to {args.lr_end:g}, batch 16, crops 64, dihedral augmentation, levels uniform "
              f"in [0, 5], loss bits + lambda(level) * SSE per pixel; data simulated with saecodec.data.sas: "
              f"train_a/train_b in log10(max(I, 1e-6)), train_c (noisy, background-subtracted) in asinh(I/1e-3)/ln10")
    t0 = time.perf_counter()
    model, result = train_conv_hyper(np.concatenate(parts), arch=ARCH,
                                     transform=Transform("asinh", 1e-3, True, "mean"), cfg=cfg, name="sas-conv-h",
                                     log10=np.concatenate(flags),
                                     provenance={"recipe": recipe, "data": data, "threads": args.threads,
                                                 "device": str(cfg.device or "auto"),
                                                 "command": "python benchmarks/train_sas_conv_h.py"})
    rec = result["record"]
    path = out / "sas-conv-h.safetensors"
    model.save(path)
    size = path.stat().st_size
    print(f"trained {rec['steps']} steps: {rec['cpu_s']} CPU-s, {rec['wall_s']} s wall in the loop (summed over "
          f"resumes; this call {time.perf_counter() - t0:.0f} s with setup); model {path} {size / 1e6:.2f} MB",
          flush=True)
    summary = {"steps": rec["steps"], "cpu_s": rec["cpu_s"], "wall_s": rec["wall_s"], "threads": args.threads,
               "cpu_s_per_step": rec["cpu_s"] / max(rec["steps"], 1), "model_bytes": size,
               "val_estimated": result["val"], "simulation_wall_s": round(sim_s, 1)}
    if not args.skip_eval:
        held = log10_frames(sas.simulate(HELDOUT[0], seed=HELDOUT[1], progress=False).frames)
        summary["heldout"] = {"this_run": measure(model, held), "shipped_sas_conv_h": measure(load_file(SHIPPED), held)}
        print(f"{HELDOUT[0]} held-out frames (seed {HELDOUT[1]}, log10), SAECodec, gate off:")
        print(f"{'level':>6} {'this run B/frame':>17} {'rel L2':>8} {'median':>8} | {'shipped B/frame':>16} "
              f"{'rel L2':>8} {'median':>8}")
        for a, b in zip(summary["heldout"]["this_run"], summary["heldout"]["shipped_sas_conv_h"]):
            print(f"{a['level']:6.1f} {a['bytes_per_frame']:17.1f} {a['rel_l2']:8.4f} {a['median_rel_l2']:8.4f} | "
                  f"{b['bytes_per_frame']:16.1f} {b['rel_l2']:8.4f} {b['median_rel_l2']:8.4f}")
    (out / "result.json").write_text(json.dumps(summary, indent=1))
    if size > 4 * 2 ** 20:
        raise SystemExit(f"model file {size} bytes is over the 4 MB budget")


if __name__ == "__main__":
    main()
