"""``saecodec compress / decompress / verify``: whole files and stores (see :mod:`saecodec.files`).

Codec options pass through generically: ``--error-bound``, ``--bound-mode`` (choices from
the codec), ``--mask-value``, and ``--codec-option KEY=VALUE`` for any other keyword of
:class:`saecodec.SAECodec`, so options added to the codec need no change here.
"""

from __future__ import annotations

import ast
import sys

import numpy as np

from .bound import BOUND_MODES
from .errors import SaecodecError
from .files.verify import COUNTS_TOLERANCE, IQ_TOLERANCE
from .model_store import DEFAULT_MODEL


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _numbers(text: str) -> list:
    """``-1``, ``-1,-2``, ``[-1, -2]`` or ``4294967295`` -> a list of numbers."""
    value = _value(text.strip())
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            raise SaecodecError(f"mask values are numbers such as -1 or -1,-2; got {text!r}")
        out.append(item)
    return out


def mask_values(args) -> list | None:
    """Every ``--mask-value`` (repeatable) and ``--mask-values`` list, in order, once each."""
    vals = []
    for text in (getattr(args, "mask_value", None) or []) + (getattr(args, "mask_values", None) or []):
        vals += [v for v in _numbers(text) if v not in vals]
    return vals or None


def codec_options(args) -> dict:
    opts = {}
    for item in args.codec_option or []:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise SaecodecError(f"--codec-option wants KEY=VALUE, got {item!r}")
        opts[key.strip().replace("-", "_")] = _value(val.strip())
    for key in ("error_bound", "bound_mode", "latent_dtype", "device", "level"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    masks = mask_values(args)
    if masks is not None:
        given = [opts.pop(k) for k in ("mask_value", "mask_values") if k in opts]
        for g in given:  # --codec-option mask_values=[...] joins the flags
            masks += [v for v in (g if isinstance(g, (list, tuple)) else [g]) if v not in masks]
        opts["mask_values"] = masks
    return opts


def mask_args(p) -> None:
    p.add_argument("--mask-value", action="append", metavar="V",
                   help="elements equal to V are stored exactly and kept out of the coding (detector gaps); "
                        "repeatable: --mask-value -1 --mask-value -2 for Pilatus gaps and dead pixels")
    p.add_argument("--mask-values", action="append", metavar="V,V,...",
                   help="several at once: --mask-values=-1,-2 (the = keeps a leading minus from reading as a flag)")


def _parallel_args(p):
    p.add_argument("--workers", type=int, default=None, help="threads (default: one per core)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a dask.distributed scheduler (tcp://host:8786); workers read the input by path")


def _io_args(p, what):
    p.add_argument("input", metavar="IN", help=what)
    p.add_argument("output", metavar="OUT", help="an HDF5 file (.h5, .nxs...) or a Zarr store (.zarr)")
    p.add_argument("--format", choices=("hdf5", "zarr2", "zarr3"), default=None,
                   help="output format (default: from OUT's name; .zarr is zarr3)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _parallel_args(p)


def _print_summary(summary, verb):
    for d in summary.datasets:
        ratio = f", {d.mode}, ratio {d.ratio:.2f}x" if verb == "compressed" else ""
        print(f"{d.name}: {'x'.join(map(str, d.shape))} {np.dtype(d.dtype).name}, chunks {d.chunks}{ratio}")
    print(f"{verb} {summary.raw_bytes / 1e6:.1f} MB into {summary.output} in {summary.seconds:.1f} s "
          f"({summary.mb_per_s:.1f} MB/s)")


def _cmd_compress(args) -> int:
    from .files import compress

    if args.pure and (args.error_bound is not None or args.bound_mode is not None):
        raise SaecodecError("--pure is the mode without a bound; drop --error-bound / --bound-mode, or --pure")
    s = compress(args.input, args.output, model=args.model, options=codec_options(args), datasets=args.dataset,
                 chunks=args.chunks, fmt=args.format, force=args.force, scheduler=args.scheduler,
                 workers=args.workers, progress=not args.no_progress, pure=args.pure)
    _print_summary(s, "compressed")
    return 0


def _cmd_decompress(args) -> int:
    from .files import decompress

    s = decompress(args.input, args.output, compression=args.compression, fmt=args.format, force=args.force,
                   scheduler=args.scheduler, workers=args.workers, progress=not args.no_progress,
                   chunks=args.chunks)
    _print_summary(s, "decompressed")
    return 0


def _cmd_verify(args) -> int:
    from .files import verify
    from .files.verify import as_json, failure_lines, markdown

    report = verify(args.original, args.compressed, poni=args.poni, iq_check=not args.no_iq,
                    scheduler=args.scheduler, workers=args.workers, iq_tolerance=args.iq_tolerance,
                    counts_tolerance=args.counts_tolerance, plot=args.plot)
    text = as_json(report) if args.json else markdown(report)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text + "\n")
    else:
        print(text)
    for line in failure_lines(report):
        print(line, file=sys.stderr)
    return 0 if report["ok"] else 1


def register(sub) -> None:
    c = sub.add_parser("compress", help="compress an HDF5/NeXus file, a Zarr store or detector images",
                       description="Compress every frame dataset (NXdetector data by default, or --dataset) "
                                   "and copy everything else unchanged.")
    _io_args(c, "an HDF5/NeXus file, a Zarr store, or detector images (a directory, a glob, a file)")
    c.add_argument("--model", default=DEFAULT_MODEL, help=f"model identity, name or file (default: {DEFAULT_MODEL})")
    c.add_argument("--dataset", action="append", help="dataset or array path to compress (repeatable)")
    c.add_argument("--chunks", default=None, help="chunk shape, e.g. 4,512,512 (default: the input's when "
                                                  "they hold whole frames, else about 4 MiB of frames)")
    c.add_argument("--error-bound", type=float, default=None,
                   help="pointwise bound (default: the pure autoencoder for floats; lossless for integer counts)")
    c.add_argument("--bound-mode", choices=BOUND_MODES, default=None, help="how --error-bound is meant")
    c.add_argument("--pure", action="store_true",
                   help="the pure autoencoder on every dataset, integer counts included (lossy: counts, their "
                        "totals and I(q) move; without it integer datasets are stored losslessly)")
    c.add_argument("--level", type=float, default=None,
                   help="rate level of the pure mode (sas-wavelet: 0 fewest bytes .. 7 best; default the middle)")
    mask_args(c)
    c.add_argument("--latent-dtype", "--weight-dtype", dest="latent_dtype", default=None,
                   help="latent precision (float16, bfloat16, float32)")
    c.add_argument("--device", default=None, help="torch device for the network (cpu, cuda, ...)")
    c.add_argument("--codec-option", action="append", metavar="KEY=VALUE",
                   help="any other SAECodec keyword (repeatable), e.g. --codec-option error_bound=0.5")
    c.set_defaults(func=_cmd_compress)

    d = sub.add_parser("decompress", help="write a plain (or losslessly compressed) copy for tools without the plugin")
    _io_args(d, "an HDF5 file or Zarr store written by saecodec")
    d.add_argument("--compression", default="none", help="HDF5 filter for the decoded data: none, gzip, lzf, "
                                                         "zstd, lz4, bitshuffle (the last three need hdf5plugin)")
    d.add_argument("--chunks", default="source",
                   help="chunks of the output: source (default: the original's, as compress recorded them; "
                        "contiguous if it had none), stored (the compressed file's), or a shape such as 1,512,512")
    d.set_defaults(func=_cmd_decompress)

    v = sub.add_parser("verify", help="ratio, errors, bound, I(q): original against compressed",
                       description="Exit 0: every check passed; 1: a check failed (a bound broken, a masked element "
                                   "changed, or in the pure mode a frame's I(q) or total counts beyond their "
                                   "tolerance), one line per failure on stderr; 2: could not check.")
    v.add_argument("original", metavar="ORIGINAL")
    v.add_argument("compressed", metavar="COMPRESSED")
    v.add_argument("--poni", default=None, help="pyFAI PONI file giving the detector geometry")
    v.add_argument("--no-iq", action="store_true", help="skip the I(q) comparison")
    v.add_argument("--iq-tolerance", type=float, default=IQ_TOLERANCE,
                   help=f"pure mode: largest relative L2 change of a frame's I(q) that passes (default {IQ_TOLERANCE})")
    v.add_argument("--counts-tolerance", type=float, default=COUNTS_TOLERANCE,
                   help="pure mode on integer counts: largest relative change of a frame's total counts that "
                        f"passes (default {COUNTS_TOLERANCE})")
    v.add_argument("--plot", default=None, metavar="OUT.png",
                   help="I(q) original against decoded with error bars, and an error map, of each dataset's "
                        "worst frame")
    v.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    v.add_argument("-o", "--output", default=None, help="write the report to this file")
    _parallel_args(v)
    v.set_defaults(func=_cmd_verify)
