"""``saecodec compress / decompress / verify``: whole files and stores (see :mod:`saecodec.files`).

Codec options pass through generically: ``--error-bound``, ``--bound-mode`` (choices from
the codec), ``--mask-value``, and ``--codec-option KEY=VALUE`` for any other keyword of
:class:`saecodec.SAECodec`, so options added to the codec need no change here.
"""

from __future__ import annotations

import ast

import numpy as np

from .bound import BOUND_MODES
from .errors import SaecodecError
from .model_store import DEFAULT_MODEL


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def codec_options(args) -> dict:
    opts = {}
    for item in args.codec_option or []:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise SaecodecError(f"--codec-option wants KEY=VALUE, got {item!r}")
        opts[key.strip().replace("-", "_")] = _value(val.strip())
    for key in ("error_bound", "bound_mode", "latent_dtype", "device"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    if args.mask_value is not None:
        opts["mask_value"] = _value(args.mask_value)
    return opts


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
        ratio = f", ratio {d.ratio:.2f}x" if verb == "compressed" else ""
        print(f"{d.name}: {'x'.join(map(str, d.shape))} {np.dtype(d.dtype).name}, chunks {d.chunks}{ratio}")
    print(f"{verb} {summary.raw_bytes / 1e6:.1f} MB into {summary.output} in {summary.seconds:.1f} s "
          f"({summary.mb_per_s:.1f} MB/s)")


def _cmd_compress(args) -> int:
    from .files import compress

    s = compress(args.input, args.output, model=args.model, options=codec_options(args), datasets=args.dataset,
                 chunks=args.chunks, fmt=args.format, force=args.force, scheduler=args.scheduler,
                 workers=args.workers, progress=not args.no_progress)
    _print_summary(s, "compressed")
    return 0


def _cmd_decompress(args) -> int:
    from .files import decompress

    s = decompress(args.input, args.output, compression=args.compression, fmt=args.format, force=args.force,
                   scheduler=args.scheduler, workers=args.workers, progress=not args.no_progress)
    _print_summary(s, "decompressed")
    return 0


def _cmd_verify(args) -> int:
    from .files import verify
    from .files.verify import as_json, markdown

    report = verify(args.original, args.compressed, poni=args.poni, iq_check=not args.no_iq,
                    scheduler=args.scheduler, workers=args.workers)
    text = as_json(report) if args.json else markdown(report)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text + "\n")
    else:
        print(text)
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
    c.add_argument("--error-bound", type=float, default=None, help="pointwise bound (default: pure autoencoder)")
    c.add_argument("--bound-mode", choices=BOUND_MODES, default=None, help="how --error-bound is meant")
    c.add_argument("--mask-value", default=None, help="elements equal to this are stored exactly (detector gaps)")
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
    d.set_defaults(func=_cmd_decompress)

    v = sub.add_parser("verify", help="ratio, errors, bound, I(q): original against compressed")
    v.add_argument("original", metavar="ORIGINAL")
    v.add_argument("compressed", metavar="COMPRESSED")
    v.add_argument("--poni", default=None, help="pyFAI PONI file giving the detector geometry")
    v.add_argument("--no-iq", action="store_true", help="skip the I(q) comparison")
    v.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    v.add_argument("-o", "--output", default=None, help="write the report to this file")
    _parallel_args(v)
    v.set_defaults(func=_cmd_verify)
