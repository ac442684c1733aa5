"""``saecodec simulate``: random 2D SAS frames with sasmodels, for training and tests."""

from __future__ import annotations

import time


def cmd_simulate(args) -> int:
    from .data import sas

    cfg = sas.SimConfig(shape=(args.size, args.size), noise=args.noise, beamstop=args.beamstop,
                        q_max_range=(args.q_min_max, args.q_max_max))
    t0 = time.perf_counter()
    sim = sas.simulate(args.n, seed=args.seed, cfg=cfg, workers=args.workers, progress=not args.quiet)
    dt = time.perf_counter() - t0
    sas.write_h5(sim, args.output)
    print(f"simulated {args.n} frames of {args.size}x{args.size} in {dt:.1f} s "
          f"({1e3 * dt / max(args.n, 1):.2f} ms/frame) -> {args.output}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("simulate", help="simulate random 2D SAS frames with sasmodels into an HDF5 file")
    s.add_argument("-n", type=int, default=1000, help="number of frames (default 1000)")
    s.add_argument("-o", "--output", default="sas-frames.h5")
    s.add_argument("--size", type=int, default=64, help="frame side in pixels (default 64)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    s.add_argument("--noise", action="store_true", help="Poisson counting noise")
    s.add_argument("--beamstop", action="store_true", help="store a circular beamstop mask")
    s.add_argument("--q-min-max", type=float, default=0.03, help="smallest detector q_max (1/A)")
    s.add_argument("--q-max-max", type=float, default=0.6, help="largest detector q_max (1/A)")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_simulate)
