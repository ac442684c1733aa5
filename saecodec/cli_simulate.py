"""``saecodec simulate``: random 2D SAS frames into an HDF5 file, for training and tests.

Without ``--preset``: the clean centred frames of :mod:`saecodec.data.sas`. With one: the
detector simulator (:mod:`saecodec.data.detector`: geometry, counts, masks, sentinels),
streamed to the file frame by frame so that a run of 1024x1024 frames needs the memory
of a few frames only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .errors import SaecodecError

OUTPUT_TYPES = ("float", "int32", "uint32")


def _pair(text: str, what: str, kind=float) -> tuple:
    """``A`` or ``A,B`` (also ``AxB``) as the pair (A, A) or (A, B)."""
    try:
        vals = tuple(kind(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise SaecodecError(f"{what} wants one or two numbers (A or A,B), got {text!r}") from None
    if len(vals) not in (1, 2):
        raise SaecodecError(f"{what} wants one or two numbers (A or A,B), got {text!r}")
    return vals * (3 - len(vals))


def _models(text: str) -> tuple[str, ...]:
    """Model names checked before any frame is written (an unknown one would stop the run midway)."""
    import numpy as np

    from .data.detector import DetectorConfig
    from .data.detector.scattering import sample_params
    from .data.sas import kernel_model

    names = tuple(m.strip() for m in text.split(",") if m.strip())
    for name in names:
        try:
            sample_params(name, np.random.default_rng(0), DetectorConfig(), oriented=False)
        except (SaecodecError, ValueError) as e:
            raise SaecodecError(f"--models: {e}") from None
        try:
            kernel_model(name)  # compiled now, as the simulation would
        except Exception as e:  # noqa: BLE001 - sasmodels raises many kinds for a name it lacks
            raise SaecodecError(f"--models: sasmodels has no model {name!r} ({type(e).__name__}: {e})") from None
    if not names:
        raise SaecodecError("--models wants sasmodels model names, e.g. sphere,cylinder")
    return names


def detector_config(args):
    """The preset named by ``--preset`` with the command line's overrides."""
    from .data.detector import preset

    if args.q_min_max is not None or args.q_max_max is not None:
        raise SaecodecError("--q-min-max/--q-max-max set the plain simulator's q range; a --preset's geometry "
                            "sets q (exact 2-theta from pixel size, distance and wavelength)")
    if args.shape and args.size:
        raise SaecodecError("give --size or --shape, not both")
    over = {}
    if args.shape or args.size:
        over["shape"] = _pair(args.shape, "--shape", int) if args.shape else (args.size, args.size)
        if min(over["shape"]) < 2:
            raise SaecodecError(f"frames must be at least 2x2, not {over['shape']}")
    if args.counts:
        over["counts"] = _pair(args.counts, "--counts")
        if not 0 < over["counts"][0] <= over["counts"][1]:
            raise SaecodecError(f"--counts wants 0 < LO <= HI, got {args.counts!r}")
    if args.output_type:
        over["output"] = args.output_type
    if args.noise is not None:
        over["noise"] = args.noise
    if args.beamstop is not None:
        over["beamstop"] = 1.0 if args.beamstop else 0.0
    if args.models:
        over["models"] = over["mixture_models"] = _models(args.models)
    cfg = preset(args.preset, **over)
    if args.mask_value is not None and cfg.output != "float":
        raise SaecodecError(f"--mask-value applies to float frames; {cfg.output} frames carry the detector's "
                            "sentinels (int32: -1 gap, -2 dead; uint32: 2**32-1)")
    return cfg


def _simulate_detector(args) -> str:
    from .data.detector import write_h5

    cfg = detector_config(args)
    out = Path(args.output)
    tmp = out.with_name(f".{out.name}.saecodec-tmp-{os.getpid()}")
    try:  # frames are streamed: an interrupted run must not leave a short file under the output's name
        write_h5(tmp, n=args.n, seed=args.seed, cfg=cfg, workers=args.workers, progress=not args.quiet,
                 mask_value=args.mask_value)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    fill = {"int32": "-1 gap, -2 dead", "uint32": "2**32-1"}.get(
        cfg.output, "NaN" if args.mask_value is None else repr(args.mask_value))
    return f"{cfg.shape[0]}x{cfg.shape[1]} {cfg.output} ({args.preset}, masked: {fill})"


def _simulate_plain(args) -> str:
    from .data import sas

    if args.shape or args.counts or args.output_type or args.mask_value is not None or args.models:
        raise SaecodecError("--shape, --counts, --output-type, --mask-value and --models need a --preset "
                            "(the detector simulator)")
    size = args.size or 64
    cfg = sas.SimConfig(shape=(size, size), noise=bool(args.noise), beamstop=bool(args.beamstop),
                        q_max_range=(0.03 if args.q_min_max is None else args.q_min_max,
                                     0.6 if args.q_max_max is None else args.q_max_max))
    sim = sas.simulate(args.n, seed=args.seed, cfg=cfg, workers=args.workers, progress=not args.quiet)
    sas.write_h5(sim, args.output)
    return f"{size}x{size}"


def cmd_simulate(args) -> int:
    if args.n < 0:
        raise SaecodecError(f"-n must be 0 or more, not {args.n}")
    t0 = time.perf_counter()
    what = _simulate_detector(args) if args.preset else _simulate_plain(args)
    dt = time.perf_counter() - t0
    print(f"simulated {args.n} frames of {what} in {dt:.1f} s ({1e3 * dt / max(args.n, 1):.2f} ms/frame) "
          f"-> {args.output}")
    return 0


def register(sub) -> None:
    import argparse

    from .data.detector import PRESETS

    s = sub.add_parser("simulate", help="simulate random 2D SAS frames with sasmodels into an HDF5 file",
                       description="Clean centred frames by default; --preset draws detector-like frames "
                                   "(geometry, Poisson counts, beamstop, module gaps, dead/hot pixels).")
    s.add_argument("-n", type=int, default=1000, help="number of frames (default 1000)")
    s.add_argument("-o", "--output", default="sas-frames.h5")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.add_argument("--preset", choices=sorted(PRESETS), default=None, metavar="NAME",
                   help="detector-like frames of this kind: " + ", ".join(sorted(PRESETS)) +
                        " (train-mix and heldout-mix draw disjoint models and geometries)")
    s.add_argument("--models", default=None, metavar="A,B,...",
                   help="draw only these sasmodels models, for every population (--preset only)")
    s.add_argument("--size", type=int, default=None, help="square frames of this side (default 64, or the preset's)")
    s.add_argument("--shape", default=None, metavar="H,W", help="frame shape (--preset only), e.g. 619,487")
    s.add_argument("--noise", action=argparse.BooleanOptionalAction, default=None,
                   help="Poisson counting noise (default: off, on with --preset)")
    s.add_argument("--beamstop", action=argparse.BooleanOptionalAction, default=None,
                   help="a beamstop on every frame (default: none; with --preset, the preset's probability)")
    s.add_argument("--counts", default=None, metavar="LO[,HI]",
                   help="peak counts of the scattering, log-uniform in LO..HI (--preset only)")
    s.add_argument("--output-type", choices=OUTPUT_TYPES, default=None,
                   help="float intensities (masked: NaN), or int32 (-1 gap, -2 dead) or uint32 (2**32-1) counts "
                        "(--preset only; default: the preset's)")
    s.add_argument("--mask-value", type=float, default=None,
                   help="float frames: masked pixels hold this value instead of NaN, e.g. --mask-value=-1e30 (valid pixels can "
                        "be 0 or negative after background subtraction; the mask dataset stays exact; --preset only)")
    s.add_argument("--q-min-max", type=float, default=None, help="smallest detector q_max (1/A, default 0.03)")
    s.add_argument("--q-max-max", type=float, default=None, help="largest detector q_max (1/A, default 0.6)")
    s.set_defaults(func=cmd_simulate)
