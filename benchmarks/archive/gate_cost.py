"""What the pure mode's quality gate costs: ratio, frames that fall back, per-frame errors,
speed, at several ``max_error``, on held-out simulated frames and on the real frames.

    nice -n 10 python benchmarks/archive/gate_cost.py --frames 2000

Held-out frames: ``saecodec.data.sas.simulate(n, seed=1)`` (the bench's data), 64x64, as
intensities through ``sas64-l1`` and as log10 values through its log10-input variant (the
bench's domain), in chunks of 64 frames. Real frames: ``saecodec.data.shared`` (skipped
when absent), one chunk per frame. Detector frames: ``simulate_detector(n, cfg="eiger-1m")``
1024x1024 uint32 counts with gaps at 2**32-1 (``mask_values``), one chunk per frame. Errors: the relative L2 per 2D frame in the model's
transformed domain u over finite pixels (``||u_dec - u|| / ||u - mean(u)||``). Speeds are
comparable within one run only (a shared machine). Writes benchmarks/results/gate_cost.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def frame_errors(tr, x: np.ndarray, d: np.ndarray, sentinel=None) -> tuple[list, bool]:
    """Per 2D frame over its finite pixels (not ``sentinel``): rel L2 in u; and whether every
    decoded pixel lies in its frame's range (sentinels must come back exactly)."""
    errs, inside = [], True
    for a, b in zip(x.reshape((-1,) + x.shape[-2:]), d.reshape((-1,) + x.shape[-2:])):
        v = np.isfinite(a)
        if sentinel is not None:
            v &= a != sentinel
            inside &= bool(np.array_equal(a[~v], b[~v]))
        u, ud = tr.to_u(a[v].astype(np.float64)), tr.to_u(b[v].astype(np.float64))
        errs.append(float(np.linalg.norm(ud - u) / max(np.linalg.norm(u - u.mean()), 1e-300)))
        inside &= bool(b[v].min() >= a[v].min() and b[v].max() <= a[v].max())
    return errs, inside


def measure(model, chunks: list, gates: list, mask_value=None) -> dict:
    from saecodec import chunk

    raw = sum(c.nbytes for c in chunks)
    out = {}
    for g in gates:
        size = fell = frames = 0
        t_enc = t_dec = 0.0
        errs, inside = [], True
        for c in chunks:
            t = time.perf_counter()
            p = chunk.encode_chunk(model, c, max_error=g, mask_values=() if mask_value is None else (mask_value,))
            t_enc += time.perf_counter() - t
            t = time.perf_counter()
            d = chunk.decode_chunk(model, p)
            t_dec += time.perf_counter() - t
            size += len(p)
            fell += chunk.fallback_frames(p)
            frames += chunk.payload_stats(p)["frames"]
            e, ok = frame_errors(model.transform, c, d, mask_value)
            errs += e
            inside &= ok
        errs = np.array(errs)
        out[str(g)] = {"ratio": raw / size, "bytes": size, "fell_back": fell, "frames": frames,
                       "max_rel_l2": float(errs.max()), "median_rel_l2": float(np.median(errs)),
                       "in_range": inside, "enc_MBps": raw / 1e6 / t_enc, "dec_MBps": raw / 1e6 / t_dec}
        print(g, json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out[str(g)].items()}),
              flush=True)
    return out


def markdown(res: dict) -> str:
    lines = [f"# Cost of the quality gate ({res['date']})", "", f"Command: `{res['command']}`", "",
             "Model sas64-l1. Ratio counts every byte of the payloads; fell back: frames (tiles) coded in the "
             "bounded mode; rel L2 per 2D frame in the model's transformed domain over its valid pixels (the gate "
             "checks each 64x64 tile, which bounds the frame's too); in range: every decoded pixel within its "
             "frame's [min, max] and sentinels exact; speeds of this run only.", "",
             "| frames | max_error | ratio | fell back | max rel L2 | median rel L2 | in range | enc MB/s | dec MB/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, rows in res["sets"].items():
        for g, r in rows.items():
            lines.append(f"| {name} | {g} | {r['ratio']:.1f} | {r['fell_back']}/{r['frames']} | "
                         f"{r['max_rel_l2']:.3f} | {r['median_rel_l2']:.3f} | {'yes' if r['in_range'] else 'no'} | "
                         f"{r['enc_MBps']:.0f} | {r['dec_MBps']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--max-errors", nargs="+", default=["none", "0.5", "0.25", "0.1"])
    ap.add_argument("--count-frames", type=int, default=4,
                    help="simulated 1024x1024 Eiger count frames (uint32, gaps 2**32-1), one chunk each")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gate_cost")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from saecodec import model_store
    from saecodec.bench.datasets import to_domain
    from saecodec.data import sas

    gates = [None if g.lower() == "none" else float(g) for g in args.max_errors]
    model = model_store.load("sas64-l1")
    log_model = model.for_log10_input()
    sim = sas.simulate(args.frames, seed=1, progress=False).frames.astype(np.float32)
    sets = {}
    print("held-out simulated, intensities", flush=True)
    sets[f"{args.frames} held-out simulated, intensities"] = measure(
        model, [sim[i:i + 64] for i in range(0, len(sim), 64)], gates)
    print("held-out simulated, log10", flush=True)
    sets[f"{args.frames} held-out simulated, log10"] = measure(
        log_model, [to_domain(sim[i:i + 64], "log") for i in range(0, len(sim), 64)], gates)
    from saecodec.data import shared

    files = shared.files(shared.REAL_SAS)
    if files:
        print("real", flush=True)
        sets[f"{len(files)} real frames"] = measure(model, [np.load(p)["I"] for p in files], gates)
    if args.count_frames:
        from saecodec.data.detector import simulate_detector

        print("1024x1024 counts", flush=True)
        gap = int(np.iinfo(np.uint32).max)
        counts = simulate_detector(args.count_frames, seed=3, cfg="eiger-1m", workers=1, progress=False).frames
        assert counts.dtype == np.uint32 and counts.shape[1:] == (1024, 1024), (counts.dtype, counts.shape)
        sets[f"{args.count_frames} simulated 1024x1024 Eiger count frames (uint32, gaps)"] = measure(
            model, [c for c in counts], gates, mask_value=gap)
    res = {"command": "python benchmarks/archive/gate_cost.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M"), "sets": sets}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
