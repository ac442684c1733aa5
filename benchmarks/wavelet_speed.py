"""Speed of the wavelet family against SZ3 in the same process (issue #19 item 6).

    OMP_NUM_THREADS=1 nice python benchmarks/wavelet_speed.py --model MODEL [--repeat 5] [--out DIR]

Everything goes through h5py into in-memory HDF5 files (saecodec through its real HDF5 plugin,
SZ3 through hdf5plugin), methods interleaved, best of --repeat, CPU seconds of this process
(time.process_time; every codec single-threaded): on this shared 2-core machine wall times
of identical runs differ 2x, CPU times a few percent. Compare only the ratios to SZ3.

Data (bounds_speed.py's cache): 64x64 log10 frames (512, saecodec.data.sas seed 1) as stacks
(64 frames per chunk) and as single-frame chunks; 128x128 log10 frames (64, seed 3, one per
chunk); 1024x1024 log10 frames (4, one per chunk). saecodec runs MODEL's log10-input variant
(linear transform, same tables) in the pure mode at level 2.5 with the default max_error (met
by finer steps where a frame misses it: no gate section) and without it, and with
target_error 0.03; the same frames as intensities (10^values) through MODEL itself (asinh:
numpy's sinh at decode) give the detector reader's path. SZ3 runs at the absolute bound
whose offset-free rel L2 is nearest ours (from a sweep), so both code the same quality.
Also the engine alone (C calls, no container) for the profile. Decoded bits with 1 and 2
threads are compared (chunks decoded in a 2-thread pool against one by one).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bounds_speed import CACHE, big_frames, sim64  # noqa: E402

SZ3_BOUNDS = [float(b) for b in np.geomspace(0.005, 1.0, 16)]


def sim128() -> np.ndarray:
    p = CACHE / "sim128.npy"
    if not p.exists():
        from saecodec.data import sas

        frames = sas.simulate(64, seed=3, cfg=sas.SimConfig(shape=(128, 128)), progress=False).frames
        np.save(p, np.log10(np.maximum(frames, 1e-6)).astype(np.float32))
    return np.load(p)


def log10_variant(model):
    """The same tables with an identity (linear) transform: arrays that hold log10 values."""
    import dataclasses

    from saecodec.models import Transform

    return dataclasses.replace(model, transform=Transform("linear", 1.0, per_frame=False, normalise="mean"),
                               name=model.name + "-log10", identity=None, path=None)


def agg_err(ref: np.ndarray, back: np.ndarray) -> float:
    from saecodec import metrics

    a, d = metrics.offset_free_terms(ref.reshape(-1, *ref.shape[-2:]), back.reshape(-1, *ref.shape[-2:]))
    return metrics.offset_free_summary(a, d)[0]


def round_trip(values, chunks, kw, repeat):
    from saecodec.bench.run import h5_round_trip

    best_e = best_d = np.inf
    for _ in range(repeat):
        size, back, te, td = h5_round_trip(values, chunks, kw, clock=time.process_time)
        best_e, best_d = min(best_e, te), min(best_d, td)
    mb = values.nbytes / 1e6
    return {"ratio": values.nbytes / size, "enc_MBps": mb / best_e, "dec_MBps": mb / best_d,
            "err": agg_err(values, back), "back": back}


def engine_alone(model, values, repeat):
    from saecodec.coding.wavelet_engine import Engine, step_index

    eng = Engine(model.module.engine_params())
    z = values.reshape(-1, *values.shape[-2:]).astype(np.float64)
    k = step_index(model.module.step_of_level(2.5))
    te = td = np.inf
    for _ in range(repeat):
        t = time.process_time()
        data, _, _ = eng.encode(z, k)
        te = min(te, time.process_time() - t)
        t = time.process_time()
        eng.decode(data, z.shape)
        td = min(td, time.process_time() - t)
    mb = values.nbytes / 1e6
    return {"enc_MBps": mb / te, "dec_MBps": mb / td}


def threads_identical(codec, values, chunk_frames) -> bool:
    chunks = [values[i:i + chunk_frames] for i in range(0, len(values), chunk_frames)]
    payloads = [codec.encode(c) for c in chunks]
    one = [codec.decode(p) for p in payloads]
    with ThreadPoolExecutor(2) as ex:
        two = list(ex.map(codec.decode, payloads))
        same_bytes = list(ex.map(codec.encode, chunks)) == payloads
    return same_bytes and all(a.tobytes() == b.tobytes() for a, b in zip(one, two))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=None)
    ap.add_argument("--only", default="stack64,single64,f128,f1024")
    args = ap.parse_args()
    import hdf5plugin

    from saecodec import SAECodec, model_store
    from saecodec.hdf5 import SAE

    base = model_store.load(args.model)
    model_store.remember(base)
    model = log10_variant(base)
    model_store.remember(model)
    s64 = sim64()
    sets = {"stack64": ("64x64, 64 frames per chunk", s64, (64, 64, 64)),
            "single64": ("64x64, one frame per chunk", s64[:128], (1, 64, 64)),
            "f128": ("128x128, one frame per chunk", sim128(), (1, 128, 128)),
            "f1024": ("1024x1024, one frame per chunk", big_frames()[0], (1, 1024, 1024))}
    report = {"model": args.model, "identity": model.identity, "repeat": args.repeat, "date": time.strftime("%F %R"),
              "tables": []}
    for key in args.only.split(","):
        title, values, chunks = sets[key]
        rows = {}
        ours = {"saecodec level 2.5": SAE(model=model.identity, level=2.5),
                "saecodec level 2.5, no gate": SAE(model=model.identity, level=2.5, max_error=None),
                "saecodec target_error 0.03, no gate": SAE(model=model.identity, target_error=0.03, max_error=None)}
        for name, kw in ours.items():
            rows[name] = round_trip(values, chunks, kw, args.repeat)
        # the same frames as intensities through the model itself (asinh: numpy's sinh at decode)
        inten = np.power(10.0, values.astype(np.float64)).astype(np.float32)
        r = round_trip(inten, chunks, SAE(model=base.identity, level=2.5), args.repeat)
        r["err"] = agg_err(values, np.log10(np.maximum(r.pop("back"), 1e-30)))
        rows["saecodec level 2.5, intensities (asinh)"] = r
        # SZ3 at the bound nearest our level-2.5 error
        target = rows["saecodec level 2.5, no gate"]["err"]
        sweep = [(abs(np.log(round_trip(values, chunks, hdf5plugin.SZ3(absolute=eb), 1)["err"] / target)), eb)
                 for eb in SZ3_BOUNDS]
        eb = min(sweep)[1]
        rows[f"SZ3 abs {eb:.3g}"] = anchor = round_trip(values, chunks, hdf5plugin.SZ3(absolute=eb), args.repeat)
        rows["engine alone (C)"] = engine_alone(model, values, args.repeat)
        for r in rows.values():
            r.pop("back", None)
        for r in rows.values():
            r["enc_vs_SZ3"] = r["enc_MBps"] / anchor["enc_MBps"]
            r["dec_vs_SZ3"] = r["dec_MBps"] / anchor["dec_MBps"]
        same = threads_identical(SAECodec(model, level=2.5), values, chunks[0])
        report["tables"].append({"title": title, "raw_MB": values.nbytes / 1e6, "rows": rows,
                                 "threads_1_2_identical": same})
        print(f"\n{title} ({values.nbytes / 1e6:.1f} MB); 1 vs 2 threads bit-identical: {same}")
        for name, r in rows.items():
            print(f"  {name:38s} ratio {r.get('ratio', float('nan')):7.1f} err {r.get('err', float('nan')):.4f} "
                  f"enc {r['enc_MBps']:7.1f} MB/s ({r['enc_vs_SZ3']:.2f}x SZ3)  dec {r['dec_MBps']:7.1f} MB/s "
                  f"({r['dec_vs_SZ3']:.2f}x SZ3)", flush=True)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(report, indent=1))
        lines = [f"# Wavelet family speed vs SZ3, {report['date']}", "",
                 f"Command: `python benchmarks/wavelet_speed.py --model {args.model} --repeat {args.repeat}`", "",
                 "MB/s of raw float32 per CPU second through h5py (engine alone: C calls), best of the repeats; "
                 "x SZ3 = over SZ3 at the bound of nearest error in the same run.", ""]
        for t in report["tables"]:
            lines += [f"### {t['title']} ({t['raw_MB']:.1f} MB); decoded bits identical with 1 and 2 threads: "
                      f"{t['threads_1_2_identical']}", "",
                      "| method | ratio | rel L2 | enc MB/s | dec MB/s | enc x SZ3 | dec x SZ3 |", "|---|---|---|---|---|---|---|"]
            for name, r in t["rows"].items():
                lines.append(f"| {name} | {r.get('ratio', float('nan')):.1f} | {r.get('err', float('nan')):.4f} | "
                             f"{r['enc_MBps']:.0f} | {r['dec_MBps']:.0f} | {r['enc_vs_SZ3']:.2f} | "
                             f"{r['dec_vs_SZ3']:.2f} |")
            lines.append("")
        out.with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
