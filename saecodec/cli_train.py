"""``saecodec train``: a model of any family from frames in an HDF5 file."""

from __future__ import annotations

import json

import numpy as np


def _frac(text: str) -> float:
    if "/" in text:
        a, b = text.split("/")
        return float(a) / float(b)
    return float(text)


_FAMILY_DEFAULTS = {"conv-hyper": {"batch": 16, "lr": 1e-3}, None: {"batch": 512, "lr": 1e-4}}


def _conv_hyper(args, frames, log10):
    """The conv-hyper family: rate-distortion training on crops (training.conv_hyper)."""
    from .models import Transform
    from .training import ConvHyperConfig, train_conv_hyper

    arch = {"chans": [int(c) for c in args.chans.split(",") if c.strip()], "M": args.latent_channels,
            "Nh": args.hyper_channels, "k": args.kernel, "hk": args.hyper_kernel,
            "lambdas": [float(v) for v in args.lambdas.split(",") if v.strip()]}
    cfg = ConvHyperConfig(steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr, lr_end=args.lr_end,
                          warmup=args.warmup, seed=args.seed,
                          device=args.device, checkpoint=args.checkpoint, resume=args.resume,
                          checkpoint_every=args.checkpoint_every, progress=not args.quiet)
    name = args.name or "conv-hyper"
    transform = Transform("asinh", args.transform_scale, True, "mean")
    model, result = train_conv_hyper(frames, arch=arch, transform=transform, cfg=cfg, name=name,
                                     provenance={"data": [str(d) for d in args.data], "dataset": args.dataset,
                                                 "log10_data": [str(d) for d in args.log10_data],
                                                 "command": "saecodec train --family conv-hyper"},
                                     log10=log10)
    return model, result["val"]


def _wavelet(args, frames, log10):
    """The wavelet family: rate levels, context classes and tables counted in C (training.wavelet)."""
    from .errors import SaecodecError
    from .models import Transform
    from .models.wavelet import wavelet_model
    from .training.wavelet import WaveletTrainConfig, train_wavelet

    targets = tuple(float(v) for v in args.targets.split(",") if v.strip())
    adapt = None
    if args.adapt:
        values = [int(v) for v in args.adapt.split(",")]
        if len(values) not in (1, 2):
            raise SaecodecError("--adapt: 'rate' or 'rate,smax' (the shipped model: 32,7)")
        adapt = dict(zip(("rate", "smax"), values))
    profiles = None
    if args.profile_of:
        of = [int(v) for v in args.profile_of.split(",")]
        if len(of) != len(frames):
            raise SaecodecError(f"--profile-of: one profile per data file ({len(frames)}), got {len(of)}")
        profiles = [[j for j, p in enumerate(of) if p == i] for i in range(max(of) + 1)]
    model = wavelet_model(args.name or "wavelet", Transform("asinh", args.transform_scale, False, "mean"),
                          levels=args.wavelet_levels, min_len=args.min_len, nclasses=args.classes,
                          ll_classes=min(12, args.classes), nsets=args.sets, ll_pred=args.ll_pred, adapt=adapt,
                          rate_levels=len(targets), rdo_lambda=args.rdo, profiles=len(profiles or [0]))
    if args.rdo > 0:
        model.module.theta[:, 1:] = 0.5  # the deadzone that goes with RDO (research Revision 1)
    cfg = WaveletTrainConfig(targets=targets, seed=args.seed, checkpoint=args.checkpoint, resume=args.resume,
                             progress=not args.quiet)
    model, result = train_wavelet(model, frames, cfg, log10=log10, profiles=profiles,
                                  provenance={"data": [str(d) for d in args.data], "dataset": args.dataset,
                                              "log10_data": [str(d) for d in args.log10_data],
                                              "command": "saecodec train --family wavelet"})
    return model, result


def cmd_train(args) -> int:
    from .cli_models import save_model
    from .data.sas import read_h5
    from .models import Transform
    from .errors import SaecodecError
    from .training import TrainConfig, train_l1, train_rrae

    for key, value in _FAMILY_DEFAULTS.get(args.family, _FAMILY_DEFAULTS[None]).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.log10_data and args.family not in ("conv-hyper", "wavelet"):
        raise SaecodecError("--log10-data is for --family conv-hyper or wavelet")
    parts = [read_h5(p, args.dataset, args.limit) for p in [*args.data, *args.log10_data]]
    if len({p.shape[1:] for p in parts}) > 1 and args.family != "wavelet":
        raise SaecodecError(f"data files have frames of different shapes: {[p.shape[1:] for p in parts]}")
    if args.family == "wavelet":  # one stack per data file (any frame sizes)
        stacks = [p.astype(np.float64) for p in parts]
        model, result = _wavelet(args, stacks, [np.full(len(p), j >= len(args.data)) for j, p in enumerate(parts)])
        save_model(model, args.output, not args.no_register, json.dumps(result["levels"], indent=1))
        return 0
    frames = np.concatenate(parts).astype(np.float64)
    if args.family == "conv-hyper":
        n_asinh = sum(len(p) for p in parts[:len(args.data)])
        model, val = _conv_hyper(args, frames, np.arange(len(frames)) >= n_asinh)
        model.storage_dtype = args.storage_dtype or "float16"
        save_model(model, args.output, not args.no_register, json.dumps(val, indent=1))
        return 0
    cfg = TrainConfig(epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed, device=args.device,
                      checkpoint=args.checkpoint, resume=args.resume, lr_min_fraction=args.lr_min_fraction,
                      progress=not args.quiet)
    name = args.name or f"{args.family}-{frames.shape[1]}x{frames.shape[2]}"
    transform = Transform("asinh", args.transform_scale)
    data = str(args.data[0]) if len(args.data) == 1 else [str(d) for d in args.data]
    record = {"data": data, "frames": int(len(frames)), "seed": args.seed, "epochs": args.epochs,
              "batch": args.batch, "lr": args.lr, "family": args.family}
    if args.family == "l1":
        m_frac, l_frac, lam, selector = args.arch.split(",")
        provenance = json.dumps({**record, "arch": args.arch})
        model, result = train_l1(frames, m_frac=_frac(m_frac), l_frac=_frac(l_frac), lam=float(lam),
                                 selector=selector.strip(), transform=transform, cfg=cfg, name=name,
                                 provenance=provenance)
    else:
        if (args.rank is None) == (not args.adaptive):
            raise SaecodecError("--family rrae needs exactly one of --rank K or --adaptive")
        if args.adaptive and args.checkpoint:
            raise SaecodecError("--adaptive cannot checkpoint or resume (the rank search is one run); "
                                "drop --checkpoint")
        hidden = [int(h) for h in args.hidden.split(",") if h.strip()]
        provenance = json.dumps({**record, "L": args.latent, "hidden": hidden, "rank": args.rank,
                                 "adaptive": args.adaptive, "finetune_steps": args.finetune_steps,
                                 "coef_step": args.coef_step, "rank_stagnation": args.rank_stagnation,
                                 "rank_patience": args.rank_patience, "rank_tolerance": args.rank_tolerance,
                                 "conv": args.conv})
        conv = None
        if args.conv:
            enc, _, dec = args.conv.partition("/")
            conv = {"enc": [int(c) for c in enc.split(",") if c.strip()],
                    "dec": [int(c) for c in dec.split(",") if c.strip()]}
        model, result = train_rrae(frames, k=args.rank, L=args.latent, hidden=hidden, conv=conv,
                                   transform=transform, cfg=cfg,
                                   finetune_steps=args.finetune_steps, coef_step=args.coef_step, name=name,
                                   provenance=provenance,
                                   adaptive_options={"stagnation": args.rank_stagnation, "patience": args.rank_patience,
                                                     "tolerance": args.rank_tolerance})
    model.storage_dtype = args.storage_dtype or "float32"
    save_model(model, args.output, not args.no_register, json.dumps(model.metrics, indent=1))
    return 0


def register(sub) -> None:
    t = sub.add_parser("train", help="train a model on frames from an HDF5 file")
    t.add_argument("--family", default="l1", choices=["l1", "rrae", "conv-hyper", "wavelet"],
                   help="l1: sparse L1 autoencoder; rrae: rank reduction autoencoder; conv-hyper: convolutional "
                        "codec with a hyperprior, any frame size, rate levels; wavelet: lifting wavelet with "
                        "trained context tables, coded in C, any frame size, rate levels and target_error")
    t.add_argument("--data", required=True, nargs="+", help="HDF5 file(s) of frames (N, h, w), concatenated")
    t.add_argument("--log10-data", nargs="+", default=[],
                   help="conv-hyper: more HDF5 files of intensities, trained on as log10(max(I, 1e-6)) rather than "
                        "the asinh transform (the research recipe's domain for its noiseless simulated sets)")
    t.add_argument("--dataset", default="frames")
    t.add_argument("--limit", type=int, default=None, help="use only the first N frames (of each file)")
    t.add_argument("--arch", default="1/16,1/8,1e-3,z",
                   help="L1 architecture 'm/n,l/n,lambda,f' with f in z|grad|laplace (default 1/16,1/8,1e-3,z)")
    t.add_argument("--rank", type=int, default=None, help="rrae: fixed rank k")
    t.add_argument("--adaptive", action="store_true", help="rrae: search the rank, from k_max = min(L, batch)")
    t.add_argument("--latent", type=int, default=64, help="rrae: latent length L (default 64)")
    t.add_argument("--hidden", default="512", help="rrae: hidden layer widths, comma-separated (default 512)")
    t.add_argument("--conv", nargs="?", const="32,64/256,128,32,8", default=None,
                   help="rrae: the convolutional variant, channels down/up (default 32,64/256,128,32,8; "
                        "each 3x3 convolution halves the frame)")
    t.add_argument("--finetune-steps", type=int, default=200, help="rrae: decoder fine-tune steps on U_k")
    t.add_argument("--coef-step", type=float, default=0.05,
                   help="rrae: quantisation step of the stored coefficients, as a fraction of each one's spread "
                        "(default 0.05)")
    t.add_argument("--rank-stagnation", type=float, default=0.01,
                   help="rrae --adaptive: a step stagnates when the mean loss of the last 20 steps is within this "
                        "fraction of the mean of the 20 before (default 0.01, the authors' threshold)")
    t.add_argument("--rank-patience", type=int, default=500,
                   help="rrae --adaptive: stagnating steps that end training at k_max, and that make a rank "
                        "fail (default 500, the authors')")
    t.add_argument("--rank-tolerance", type=float, default=0.0,
                   help="rrae --adaptive: lower k when a step's loss is below (1 + this) * the loss at k_max "
                        "(default 0, the authors')")
    t.add_argument("--chans", default="48,96", help="conv-hyper: channels of the stride-2 stages but the last "
                   "(default 48,96: three stages, stride 8)")
    t.add_argument("--latent-channels", type=int, default=128, help="conv-hyper: channels of y (default 128)")
    t.add_argument("--hyper-channels", type=int, default=64, help="conv-hyper: channels of z (default 64)")
    t.add_argument("--kernel", type=int, default=5, help="conv-hyper: kernel of the main transforms (default 5)")
    t.add_argument("--hyper-kernel", type=int, default=3, choices=[3, 5], help="conv-hyper: h_s kernel (default 3)")
    t.add_argument("--lambdas", default="100,250,600,1500,3600,9000",
                   help="conv-hyper: rate-distortion weight of each rate level (bits per squared log10 error; "
                        "default 100,250,600,1500,3600,9000)")
    t.add_argument("--steps", type=int, default=20000, help="conv-hyper: optimiser steps (default 20000)")
    t.add_argument("--crop", type=int, default=64, help="conv-hyper: training crop size (default 64)")
    t.add_argument("--checkpoint-every", type=int, default=500, help="conv-hyper: steps between checkpoints")
    w = t.add_argument_group("wavelet family")
    w.add_argument("--wavelet-levels", type=int, default=6, help="wavelet: at most this many levels (default 6)")
    w.add_argument("--min-len", type=int, default=8, help="wavelet: levels while both sides of the coarsest low "
                   "band stay at least this (default 8)")
    w.add_argument("--classes", type=int, default=32, help="wavelet: context classes per table group (default 32)")
    w.add_argument("--sets", type=int, default=1, help="wavelet: table sets the encoder chooses from per frame "
                   "and group (power of two, default 1)")
    w.add_argument("--adapt", default=None, help="wavelet: adaptive decisions 'rate[,smax]' (prior strength "
                   "and slowest rate shift; the shipped model 32,7; default: static tables)")
    w.add_argument("--profile-of", default=None, help="wavelet: context profiles, the profile (0, 1, ...) each data "
                   "file (--data files, then --log10-data files) trains; the encoder picks one per frame (count a "
                   "power of two; default: one profile of every file)")
    w.add_argument("--rdo", type=float, default=0.0, help="wavelet: rate-distortion optimised quantisation lambda "
                   "(0: off; the shipped model 0.08)")
    w.add_argument("--ll-pred", default="med", choices=["none", "avg", "med"], help="wavelet: LL predictor")
    w.add_argument("--targets", default="0.1,0.07,0.05,0.035,0.025,0.017",
                   help="wavelet: offset-free rel L2 of each rate level, coarse to fine (default "
                        "0.1,0.07,0.05,0.035,0.025,0.017)")
    t.add_argument("--epochs", type=int, default=50)
    t.add_argument("--batch", type=int, default=None, help="default 512 (conv-hyper: 16)")
    t.add_argument("--lr", type=float, default=None, help="default 1e-4 (conv-hyper: 1e-3, cosine to 2e-5)")
    t.add_argument("--lr-end", type=float, default=2e-5, help="conv-hyper: cosine end of the learning rate")
    t.add_argument("--warmup", type=int, default=200, help="conv-hyper: linear warm-up steps (default 200)")
    t.add_argument("--lr-min-fraction", type=float, default=1.0,
                   help="cosine-decay the learning rate to lr * this (default 1: constant, as in the paper)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA if available)")
    t.add_argument("--transform-scale", type=float, default=1e-3,
                   help="asinh scale: intensities far above it are coded in log10 (default 1e-3)")
    t.add_argument("--storage-dtype", default=None, choices=["float32", "float16"],
                   help="weights in the file (default float32; conv-hyper: float16)")
    t.add_argument("--checkpoint", default=None, help="checkpoint file, written every epoch (conv-hyper: every "
                   "--checkpoint-every steps)")
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    t.add_argument("--name", default=None)
    t.add_argument("-o", "--output", default=None, help="model file (default NAME.safetensors)")
    t.add_argument("--no-register", action="store_true", help="do not copy the model into the user cache")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=cmd_train)
