"""``saecodec bench``: the benchmark command (see :mod:`saecodec.bench`)."""

from __future__ import annotations

import sys


def register(sub) -> None:
    b = sub.add_parser("bench", help="compare saecodec with SZ3, ZFP, SPERR, zstd, DCT and PCA on a stack of frames")
    b.add_argument("--data", help="HDF5 file with a stack of 2D frames (default: simulate held-out frames)")
    b.add_argument("--dataset", default="frames", help="dataset path inside --data (default: frames)")
    b.add_argument("--limit", type=int, help="use only the first N frames of --data")
    b.add_argument("--frames", type=int, default=2000, help="frames to simulate when no --data (default 2000)")
    b.add_argument("--seed", type=int, default=1, help="simulation seed; training used 0 (default 1)")
    b.add_argument("--domain", choices=("log", "intensity"), default=None,
                   help="compress log10(I) (default for floats; bounds in decades; intensity models run as their "
                        "log10-input variant, `saecodec models derive MODEL --input log10`) or the intensities "
                        "themselves (default for integer counts, kept in their integer type)")
    b.add_argument("--models", nargs="+", help="saecodec models (name, identity or file; default: the default "
                   "model; rd suite: it, the conv hyperprior sas-conv-h and the L1 paper's sas64-l1)")
    b.add_argument("--bounds", nargs="+", type=float, default=None,
                   help="absolute error bounds, in the compressed values' units (default 1e-2 1e-3 1e-4; integer "
                        "counts: 1 4, next to lossless and poisson 0.5 / 1)")
    from .cli_files import mask_args

    mask_args(b)
    b.add_argument("--stack", type=int, default=64, help="frames per chunk of the stacked chunking (default 64)")
    b.add_argument("--fit-frames", type=int, default=16, help="sphere frames refitted per method (0: none)")
    b.add_argument("--pca-train", type=int, default=2000,
                   help="simulated training frames (seed 0) for the PCA basis (default 2000; 0: first half of the data)")
    b.add_argument("--no-baselines", action="store_true", help="skip the DCT and PCA baselines")
    b.add_argument("--out", default="benchmarks/results", help="output directory (default benchmarks/results)")
    b.add_argument("--tag", default="bench", help="file name stem of the outputs (default bench)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.add_argument("--suite", choices=("models", "bounds", "rd"), default="models",
                   help="models (default): the models and SZ3/ZFP/SPERR/zstd at absolute bounds on --data or "
                        "simulated frames; bounds: pwrel on the real frames against SZ2/SZ3/SPERR with the I(q) "
                        "check, lossless and poisson on the raw Pilatus frames against Bitshuffle+LZ4/zstd "
                        "(SAECODEC_DATA or ../shared/data: saecodec.data.shared); rd: the pure mode over its rate levels against "
                        "SPERR/SZ3/ZFP swept over their bounds at equal error, on the simulated (or --data) frames "
                        "and the real frames (saecodec.bench.rd; outputs rd_TAG.*)")
    b.add_argument("--no-real", action="store_true", help="rd suite: skip the shared real frames")
    b.add_argument("--noisy", type=int, default=512, help="rd suite: frames of the noisy held-out set "
                   "(detector preset heldout-mix, 1e2-1e4 peak counts, 128x128, seed 1; 0: skip; default 512)")
    b.add_argument("--repeat", type=int, default=1, help="bounds suite: best of N interleaved runs (default 1)")
    b.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    from . import model_store
    from .bench import datasets, report, run
    from .cli_files import mask_values
    from .errors import SaecodecError

    progress = not args.quiet
    if args.models is None:
        args.models = [model_store.DEFAULT_MODEL] + (["sas-conv-h", "sas64-l1"] if args.suite == "rd" else [])
    if args.suite == "bounds":
        from .bench import bounds

        result = bounds.run(args.models[0], repeat=args.repeat, eb=(args.bounds or [1e-2])[0])
        return _emit(bounds.markdown(result, args.command_line), bounds.save(result, args.out, args.tag,
                                                                             args.command_line))
    if args.data:
        data = datasets.file_dataset(args.data, args.dataset, args.domain, args.limit)
    else:
        data = datasets.simulated_dataset(args.frames, args.seed, args.domain or "log", progress)
    counts = data.values.dtype.kind in "iu"
    if args.bounds is None:
        args.bounds = [1.0, 4.0] if counts else [1e-2, 1e-3, 1e-4]
    models = []
    for name in args.models:
        m = model_store.load(name)
        if m.frame_shape is not None and tuple(m.frame_shape) != data.values.shape[1:] and \
                min(data.values.shape[1:]) < min(m.frame_shape):  # a whole-frame model takes any size
            raise SaecodecError(f"model {m.name} takes {m.frame_shape} frames; the data's are {data.values.shape[1:]}")
        if (data.domain == "log" or args.suite == "rd") and m.transform.kind == "asinh":  # `saecodec models derive`
            m = model_store.remember(m.for_log10_input())
            print(f"bench: {m.name} ({m.identity}) = `saecodec models derive {name} --input log10`", file=sys.stderr)
        models.append(m)
    if args.suite == "rd":
        return _rd(args, data, models, progress)
    pca_train = None
    if args.pca_train and not args.data and not args.no_baselines:
        from .data import sas

        pca_train = datasets.to_domain(sas.simulate(args.pca_train, seed=0, progress=progress).frames, data.domain)
    result = run.run(data, models, args.bounds, stack=args.stack, fit_frames=args.fit_frames, pca_train=pca_train,
                     progress=progress, baselines=not args.no_baselines, mask_values=mask_values(args))
    return _emit(report.markdown(result, args.command_line), report.save(result, args.out, args.tag,
                                                                         args.command_line))


def _emit(markdown: str, files) -> int:
    """The table on stdout, the files written on stderr."""
    print(markdown)
    for f in files:
        print(f"wrote {f}", file=sys.stderr)
    return 0


def _rd(args, data, models, progress) -> int:
    """The rd suite: every codec on the log-domain frames (--domain intensity: their asinh log)."""
    from .bench import rd, rd_report

    real = None if args.no_real else rd.real_frames()
    values = data.log(data.values).astype("float32")
    noisy = rd.noisy_frames(args.noisy, progress=progress) if args.noisy else None
    result = rd.run(models, values, real, stack=args.stack, progress=progress, noisy=noisy)
    result["dataset"] = data.name
    return _emit(rd_report.markdown(result, args.command_line), rd_report.save(result, args.out, args.tag,
                                                                               args.command_line))
