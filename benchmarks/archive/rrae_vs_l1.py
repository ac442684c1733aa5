"""RRAE (fixed k and adaptive) against the sparse L1 family at equal relative L2, in bytes per frame.

    python benchmarks/archive/rrae_vs_l1.py train --nets /tmp/rvl        # trains every net, saves model files
    python benchmarks/archive/rrae_vs_l1.py table --nets /tmp/rvl        # codec sweep + the equal-error table

Both families trained the same way (same frames, epochs, optimiser, transform) at one
scale, so that the comparison is between families, not between budgets. Every error is
measured on what the codec decodes (quantisation included) and every byte is what it
writes (chunks of 64 frames, headers and per-frame normalisation included).

Equal error: an RRAE net's rate can be moved continuously by its coefficient quantisation
step (``coef_step``), so each net is swept and the family's frontier is the lower envelope
of bytes against relative L2; the L1 family's points are its nets (one per lambda), and
its frontier is interpolated between them (log bytes linear in error). The table gives,
at each L1 net's error, the bytes of each family's frontier there.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from saecodec.models import Transform, load_file
from saecodec.training import TrainConfig, train_l1, train_rrae

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from common import codec_eval  # noqa: E402  the same codec round trip as the default model's selection

STEPS = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64)


def frames(n: int, seed: int, cache: str | None) -> np.ndarray:
    """The first ``n`` frames of ``seed`` (from a `saecodec simulate` file when given: same frames)."""
    if cache and Path(cache).exists():
        import h5py

        with h5py.File(cache) as f:
            if len(f["frames"]) >= n:
                return f["frames"][:n]
    from saecodec.data import sas

    return sas.simulate(n, seed=seed).frames


def nets(args) -> list[dict]:
    out = [{"name": f"rrae-k{k}", "family": "rrae", "k": k} for k in args.ranks]
    if args.adaptive:
        out.append({"name": "rrae-adaptive", "family": "rrae", "k": None})
    out += [{"name": f"l1-lam{lam:g}", "family": "l1", "lam": lam} for lam in args.lams]
    return out


def train(args):
    torch.set_num_threads(args.threads)
    x = frames(args.train, 0, args.train_file)
    transform = Transform("asinh", 1e-3)
    args.nets.mkdir(parents=True, exist_ok=True)
    for spec in nets(args):
        path = args.nets / f"{spec['name']}.safetensors"
        if path.exists():
            continue
        t0 = time.perf_counter()
        cfg = TrainConfig(epochs=args.epochs, batch=args.batch, lr=1e-3, lr_min_fraction=0.01, device=args.device,
                          val_fraction=0.05, progress=True)
        if spec["family"] == "rrae":
            if spec["k"] is None:  # the rank search runs at a constant rate, on its own budget
                cfg = TrainConfig(**{**cfg.__dict__, "lr_min_fraction": 1.0, "epochs": args.adaptive_epochs})
            model, res = train_rrae(x, k=spec["k"], L=args.latent, hidden=tuple(args.hidden), transform=transform,
                                    cfg=cfg, finetune_steps=args.finetune_steps, name=spec["name"],
                                    adaptive_options={"stagnation": args.stagnation})
            info = {"k": model.module.k}
            if spec["k"] is None:
                info["search"] = res["adaptive"]["events"]
        else:
            model, res = train_l1(x, m_frac=args.m_frac, l_frac=args.l_frac, lam=spec["lam"], transform=transform,
                                  cfg=cfg, name=spec["name"])
            info = {}
        model.save(path)
        info["train_seconds"] = round(time.perf_counter() - t0, 1)
        info["setup"] = {"frames": len(x), "epochs": cfg.epochs, "batch": cfg.batch, "threads": args.threads}
        path.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
        print(spec["name"], info, flush=True)


def measure(model, test: np.ndarray, device) -> tuple[float, float]:
    """(relative L2 of the decoded frames in the network's domain, bytes per frame)."""
    m = codec_eval(model, test, device=device)
    return m["rel_l2_t"], m["bytes_per_frame"]


def envelope(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The lower-left frontier of (error, bytes): points no other point beats on both."""
    pts = sorted(points)
    out: list[tuple[float, float]] = []
    for e, b in pts:
        if not out or b < out[-1][1]:
            out.append((e, b))
    return out


def bytes_at(front: list[tuple[float, float]], err: float) -> float | None:
    """Bytes of a frontier at ``err`` (log-linear between its points); None outside its range."""
    if not front or err < front[0][0] - 1e-12:
        return None
    for (e0, b0), (e1, b1) in zip(front, front[1:]):
        if e0 <= err <= e1:
            t = (err - e0) / (e1 - e0) if e1 > e0 else 0.0
            return float(np.exp(np.log(b0) + t * (np.log(b1) - np.log(b0))))
    return front[-1][1] if err >= front[-1][0] else None


def table(args):
    torch.set_num_threads(args.threads)
    test = frames(args.test, 1, args.test_file)
    rows, infos = [], {}
    for spec in nets(args):
        path = args.nets / f"{spec['name']}.safetensors"
        if not path.exists():
            print("missing", path)
            continue
        model = load_file(path)
        infos[spec["name"]] = json.loads(path.with_suffix(".json").read_text())
        if spec["family"] == "rrae":
            for s in STEPS:
                swept = copy.copy(model)
                swept.coding = {**model.coding, "coef_step": s}
                err, nb = measure(swept, test, args.device)
                rows.append({"net": spec["name"], "family": "rrae", "k": model.module.k, "coef_step": s,
                             "rel_l2": err, "bytes_per_frame": nb})
        else:
            err, nb = measure(model, test, args.device)
            rows.append({"net": spec["name"], "family": "l1", "lam": spec["lam"], "rel_l2": err,
                         "bytes_per_frame": nb})
        print(rows[-1], flush=True)
    fam = {
        "L1": envelope([(r["rel_l2"], r["bytes_per_frame"]) for r in rows if r["family"] == "l1"]),
        "RRAE fixed k": envelope([(r["rel_l2"], r["bytes_per_frame"]) for r in rows
                                  if r["family"] == "rrae" and r["net"] != "rrae-adaptive"]),
        "RRAE adaptive": envelope([(r["rel_l2"], r["bytes_per_frame"]) for r in rows if r["net"] == "rrae-adaptive"]),
    }
    targets = sorted({r["rel_l2"] for r in rows if r["family"] == "l1"} | {e for e, _ in fam["RRAE adaptive"][:1]})
    equal = [{"rel_l2": t, **{name: bytes_at(front, t) for name, front in fam.items()}} for t in targets]
    out = {"command": " ".join(["python benchmarks/archive/rrae_vs_l1.py table", *args.argv]),
           "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                      f"{'cuda' if torch.cuda.is_available() else 'no GPU'}",
           "nets": infos, "rows": rows, "frontiers": fam, "equal_error": equal}
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    lines = ["# RRAE against the sparse L1 family at equal relative L2 (simulated SAS, 64x64)", "",
             f"`{out['command']}` after the matching `train` stage; {time.strftime('%Y-%m-%d')}, {out['machine']}.",
             f"Training: the first {args.train} frames of seed 0, {args.epochs} epochs (the rank search: a budget of "
             f"{args.adaptive_epochs} epochs at a constant rate, stagnation {args.stagnation:g}), batch {args.batch}, "
             "RAdam lr 1e-3 cosine-decayed to 1e-5, asinh transform with per-frame normalisation. "
             f"RRAE: MLP 4096 -> {' -> '.join(map(str, args.hidden))} -> L = {args.latent}, "
             f"{args.finetune_steps} decoder fine-tune steps. L1: (m/n, l/n) = ({args.m_frac:g}, {args.l_frac:g}), "
             f"selector z. Test: the first {args.test} frames of seed 1. Relative L2 of the decoded frames in the "
             "network's domain; bytes through the real codec, chunks of 64 frames, all headers counted.", "",
             "## Bytes per frame at equal relative L2", "",
             "At each L1 net's error (and the adaptive net's best), each family's frontier there; '-': the family "
             "does not reach that error.", "",
             "| relative L2 | L1 | RRAE fixed k | RRAE adaptive |", "|---|---|---|---|"]
    for row in equal:
        lines.append(f"| {row['rel_l2']:.3f} | {fmt(row['L1'])} | {fmt(row['RRAE fixed k'])} | "
                     f"{fmt(row['RRAE adaptive'])} |")
    lines += ["", "## Every point", "", "| net | k or lambda | coef_step | relative L2 | bytes/frame |",
              "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['net']} | {r.get('k', r.get('lam'))} | {r.get('coef_step', '-')} | "
                     f"{r['rel_l2']:.4f} | {r['bytes_per_frame']:.1f} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["train", "table"])
    ap.add_argument("--nets", type=Path, required=True, help="folder of the trained model files")
    ap.add_argument("--train", type=int, default=10000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--train-file", help="a `saecodec simulate --seed 0` file holding the training frames")
    ap.add_argument("--test-file", help="a `saecodec simulate --seed 1` file holding the test frames")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--ranks", type=int, nargs="*", default=[4, 8, 16, 32])
    ap.add_argument("--adaptive", action="store_true")
    ap.add_argument("--adaptive-epochs", type=int, default=150, help="budget of the rank search")
    ap.add_argument("--stagnation", type=float, default=0.01, help="rank search (the authors' 1%% by default)")
    ap.add_argument("--latent", type=int, default=64, help="RRAE: L")
    ap.add_argument("--hidden", type=int, nargs="+", default=[512], help="RRAE: hidden widths")
    ap.add_argument("--finetune-steps", type=int, default=500)
    ap.add_argument("--lams", type=float, nargs="*", default=[0.3, 1.0, 3.0])
    ap.add_argument("--m-frac", type=float, default=1 / 8)
    ap.add_argument("--l-frac", type=float, default=1 / 8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "results" / "rrae_vs_l1")
    args = ap.parse_args()
    args.argv = sys.argv[2:]
    train(args) if args.stage == "train" else table(args)


if __name__ == "__main__":
    main()
