"""``saecodec bench``: the benchmark command (see :mod:`saecodec.bench`)."""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path


def register(sub) -> None:
    b = sub.add_parser("bench", help="compare saecodec with SZ3, ZFP, SPERR, zstd, DCT and PCA on a stack of frames")
    b.add_argument("--data", help="HDF5 file with a stack of 2D frames (default: simulate held-out frames)")
    b.add_argument("--dataset", default="frames", help="dataset path inside --data (default: frames)")
    b.add_argument("--limit", type=int, help="use only the first N frames of --data")
    b.add_argument("--frames", type=int, default=2000, help="frames to simulate when no --data (default 2000)")
    b.add_argument("--seed", type=int, default=1, help="simulation seed; training used 0 (default 1)")
    b.add_argument("--domain", choices=("log", "intensity"), default="log",
                   help="compress log10(I) (default; bounds in decades) or the intensities themselves")
    b.add_argument("--models", nargs="+", default=["sas64-l1"], help="saecodec models (name, identity or file)")
    b.add_argument("--bounds", nargs="+", type=float, default=[1e-2, 1e-3, 1e-4],
                   help="absolute error bounds, in the compressed values' units (default 1e-2 1e-3 1e-4)")
    b.add_argument("--stack", type=int, default=64, help="frames per chunk of the stacked chunking (default 64)")
    b.add_argument("--fit-frames", type=int, default=16, help="sphere frames refitted per method (0: none)")
    b.add_argument("--pca-train", type=int, default=2000,
                   help="simulated training frames (seed 0) for the PCA basis (default 2000; 0: first half of the data)")
    b.add_argument("--no-baselines", action="store_true", help="skip the DCT and PCA baselines")
    b.add_argument("--out", default="benchmarks/results", help="output directory (default benchmarks/results)")
    b.add_argument("--tag", default="bench", help="file name stem of the outputs (default bench)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    from . import bench
    from .errors import SaecodecError
    from .model_store import load, remember

    progress = not args.quiet
    if args.data:
        data = bench.file_dataset(args.data, args.dataset, args.domain, args.limit)
    else:
        data = bench.simulated_dataset(args.frames, args.seed, args.domain, progress)
    models = []
    tmp = tempfile.TemporaryDirectory(prefix="saecodec-bench-")
    for name in args.models:
        m = load(name)
        if tuple(m.frame_shape) != data.values.shape[1:] and min(data.values.shape[1:]) < min(m.frame_shape):
            raise SaecodecError(f"model {m.name} takes {m.frame_shape} frames; the data's are {data.values.shape[1:]}")
        if args.domain == "log" and m.transform.kind == "asinh":
            m = bench.log_model(m)
            m.save(Path(tmp.name) / f"{m.name}.safetensors")
            print(f"bench: {m.name} = the network of {name} on log10 frames, identity {m.identity}", file=sys.stderr)
        remember(m)
        models.append(m)
    os.environ["SAECODEC_MODEL_PATH"] = os.pathsep.join(
        [tmp.name] + [p for p in os.environ.get("SAECODEC_MODEL_PATH", "").split(os.pathsep) if p])
    pca_train = None
    if args.pca_train and not args.data and not args.no_baselines:
        from .data import sas

        pca_train = bench.to_domain(sas.simulate(args.pca_train, seed=0, progress=progress).frames, args.domain)
    result = bench.run(data, models, args.bounds, stack=args.stack, fit_frames=args.fit_frames,
                       pca_train=pca_train, progress=progress, baselines=not args.no_baselines)
    command = "saecodec " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["bench"] else "saecodec bench"
    files = bench.save(result, args.out, args.tag, command if command.startswith("saecodec bench") else "saecodec bench")
    print(bench.markdown(result, command))
    for f in files:
        print(f"wrote {f}", file=sys.stderr)
    tmp.cleanup()
    return 0
