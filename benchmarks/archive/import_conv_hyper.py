"""Convert a research conv-hyper checkpoint (the research prototype's model/train.py) into a package model file.

The research network's layer names are the package's (saecodec.models.conv_hyper), so the
state dict loads as it is; the entropy tables are frozen here (integer counts from the
trained densities) and the weights stored as float16. The recipe goes into the provenance.

  python benchmarks/archive/import_conv_hyper.py RESEARCH/ckpt/a2/last.pt \
      saecodec/zoo/sas-conv-h.safetensors --name sas-conv-h

Transform: asinh(x / 1e-3) / ln 10 with the frame's mean subtracted, the domain of the
research's real and noisy training frames; for intensities far above 1e-3 that is log10
up to a constant the mean removes (the simulated training frames were log10).
``saecodec models derive sas-conv-h --input log10`` gives the variant for log10 arrays.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from saecodec.errors import SaecodecError
from saecodec.models import Model, Transform
from saecodec.models.conv_hyper import ConvHyperprior

RECIPE = ("research run {name}: 3 stride-2 stages (chans {chans}, M {M}, Nh {Nh}, hyper kernel {hk}, GDN), "
          "mean-scale hyperprior, gain levels with lambdas {lambdas}; loss bits + lambda(level) * SSE in log10 "
          "units, levels uniform in [0, L-1]; Adam lr {lr} (warm-up {warm}) cosine to {lr_end}, batch {batch}, "
          "crops {crop}, dihedral augmentation, 1 torch thread on 2 shared CPU cores; data {data} "
          "(/work/research/model/data.py: train_a 40k simulated 64x64 log10 frames seed 10, train_b 20k with "
          "q_max 0.02-1 and centre jitter 0.6 seed 11, train_c 12k Poisson-noisy background-subtracted frames "
          "in asinh(I/1e-3)/ln10 seed 13); {lineage}")


def convert(ckpt_path: str, name: str, scale: float = 1e-3, lineage: str | None = None) -> Model:
    """The model file's Model; ``lineage``: where the run started (default: its --init, if any)."""
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    a = ck["arch"]
    if a.get("prior", "hyper") != "hyper" or a.get("head_k", 0) or a.get("res_blocks", 0):
        raise SaecodecError(f"{ckpt_path}: only the plain mean-scale hyperprior converts (arch {a})")
    module = ConvHyperprior(a["chans"], a["M"], a.get("k", 5), a.get("Nh", 64), a.get("hk", 5),
                            a["lambdas"], a.get("act", "gdn"))
    missing, unexpected = module.load_state_dict(ck["model"], strict=False)
    if unexpected or set(missing) != {"tables_y", "tables_z"}:
        raise SaecodecError(f"{ckpt_path}: state dict does not match (missing {missing}, unexpected {unexpected})")
    module.eval()
    module.freeze_tables()
    args, state = ck.get("args", {}), ck.get("state", {})
    recipe = RECIPE.format(name=args.get("name", "?"), chans=list(a["chans"]), M=a["M"], Nh=a.get("Nh", 64),
                           hk=a.get("hk", 5), lambdas=list(a["lambdas"]), lr=args.get("lr"),
                           warm=args.get("warm"), lr_end=args.get("lr_end"), batch=args.get("batch"),
                           crop=args.get("crop"), data=args.get("data"),
                           lineage=lineage or (f"started from {args['init']}" if args.get("init") else "from scratch"))
    provenance = {"recipe": recipe, "checkpoint": os.path.abspath(ckpt_path), "step": state.get("step"),
                  "cpu_s_this_run": round(state.get("cpu", 0.0)), "wall_s_this_run": round(state.get("wall", 0.0)),
                  "train_args": args, "converter": "benchmarks/archive/import_conv_hyper.py",
                  "tables": "frozen by ConvHyperprior.freeze_tables (16-bit counts, 64 log-spaced scales "
                            "0.11..64, tail 1e-7)"}
    return Model(module, None, Transform("asinh", scale, True, "mean"), name,
                 provenance=json.dumps(provenance, sort_keys=True, default=str), storage_dtype="float16")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("output")
    ap.add_argument("--name", default="sas-conv-h")
    ap.add_argument("--metrics", default=None, help="JSON file of measured metrics to record in the model file")
    ap.add_argument("--lineage", default=None, help="where the run started, for the recipe (default: its --init)")
    args = ap.parse_args()
    model = convert(args.checkpoint, args.name, lineage=args.lineage)
    if args.metrics:
        model.metrics = json.loads(Path(args.metrics).read_text())
    ident = model.save(args.output)
    print(f"{args.output}: {os.path.getsize(args.output)} bytes, identity {ident}")


if __name__ == "__main__":
    main()
