"""Speed, ratio and peak memory of the bounded and lossless modes against SZ3 (issue #14 item 5).

    OMP_NUM_THREADS=1 nice python benchmarks/bounds_speed.py [--repeat 3] [--only sim64,log1k,counts1k,pilatus,memory]

Everything runs through h5py into in-memory HDF5 files in one process: saecodec through its
real HDF5 plugin (C shim, embedded Python, the filter's Python side; the classical predictor
path, which runs no network), SZ3/SZ2/SPERR/Bitshuffle/Blosc through hdf5plugin. Methods are
interleaved and the best of --repeat kept. Speeds are MB/s of raw data per CPU second of this
process (time.process_time; all codecs single-threaded): on this shared 2-core machine
wall-clock times of identical runs differ 2x, CPU times a few percent. Compare speeds only as
ratios to SZ3 in the same run.

Data (generated once into ~/.cache/saecodec/bench-data): sim64 = 512 simulated 64x64 frames
(saecodec.data.sas, seed 1) as log10(max(I, 1e-6)) float32; log1k = 4 noiseless simulated
1024x1024 log10 float32 frames; counts1k = 8 simulated 1024x1024 uint32 count frames (median
1 / 10 / 100 / 1000 counts, Poisson noise, 2**32-1 module gaps and dead pixels); pilatus = the
4 raw Pilatus frames (../shared/data/raw-counts). Peak memory: one 32 MiB chunk encoded and
decoded in a fresh process, VmHWM (reset just before the call) minus VmRSS before, over the
chunk's bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("SAECODEC_BENCH_DATA", Path.home() / ".cache" / "saecodec" / "bench-data"))
GAP = 2**32 - 1


def sim64() -> np.ndarray:
    p = CACHE / "sim64.npy"
    if not p.exists():
        from saecodec.data import sas

        frames = sas.simulate(512, seed=1, progress=False).frames
        np.save(p, np.log10(np.maximum(frames, 1e-6)).astype(np.float32))
    return np.load(p)


def big_frames() -> tuple[np.ndarray, np.ndarray]:
    """(log1k, counts1k)"""
    p1, p2 = CACHE / "log1k.npy", CACHE / "counts1k.npy"
    if not p2.exists():
        from saecodec.data import sas

        cfg = sas.SimConfig(shape=(1024, 1024), models=("sphere", "cylinder", "core_shell_sphere", "ellipsoid"),
                            pd_points=5, q_max_range=(0.05, 0.4))
        sim = sas.simulate(8, seed=5, cfg=cfg, progress=False)
        rng = np.random.default_rng(0)
        out = []
        for i, f in enumerate(sim.frames):
            lam = np.clip(f.astype(np.float64), 0, None) * [1, 10, 100, 1000][i % 4] / max(np.median(f), 1e-12)
            c = np.minimum(rng.poisson(lam), GAP - 2).astype(np.uint32)
            c[340:350], c[680:690], c[:, 511:513] = GAP, GAP, GAP  # module gaps
            dead = rng.integers(0, 1024, size=(20, 2))
            c[dead[:, 0], dead[:, 1]] = GAP
            out.append(c)
        np.save(p2, np.stack(out))
        np.save(p1, np.log10(np.maximum(sim.frames[:4], 1e-6)).astype(np.float32))
    return np.load(p1), np.load(p2)


def table(title: str, values: np.ndarray, res: dict, anchor: str, checks: dict) -> dict:
    a = res[anchor]
    rows = []
    for lab, r in res.items():
        rows.append({"method": lab, "ratio": r["ratio"], "enc_MBps": r["enc_MBps"], "dec_MBps": r["dec_MBps"],
                     "enc_vs_anchor": r["enc_MBps"] / a["enc_MBps"], "dec_vs_anchor": r["dec_MBps"] / a["dec_MBps"],
                     "ok": checks[lab](r["back"]) if lab in checks else None})
    return {"title": title, "anchor": anchor, "raw_MB": values.nbytes / 1e6, "rows": rows}


def abs_ok(x, eb):
    return lambda b: bool(np.abs(b.astype(np.float64) - x.astype(np.float64)).max() <= eb)


def poisson_ok(x, eb, masked):
    def f(b):
        xv, yv = x[~masked].astype(np.float64), b[~masked].astype(np.float64)
        return bool(np.all(np.abs(yv - xv) <= eb * np.sqrt(np.maximum(xv, 1))) and np.array_equal(b[masked], x[masked]))
    return f


def case_sim64(model, repeat):
    import hdf5plugin

    from saecodec.bench.bounds import run_methods
    from saecodec.hdf5 import SAE

    x = sim64()
    out = []
    for frames in (64, 1):
        for eb in (1e-2, 1e-3, 1e-4):
            methods = [("SZ3", hdf5plugin.SZ3(absolute=eb)), ("SPERR", hdf5plugin.Sperr(absolute=eb)),
                       ("SZ2", hdf5plugin.SZ(absolute=eb)), ("saecodec abs", SAE(model, error_bound=eb))]
            v = x if frames == 64 else x[:128]
            res = run_methods(v, (frames, 64, 64), methods, repeat)
            out.append(table(f"sim64 log10 float32, {len(v)} frames, {frames} per chunk, abs {eb:g}", v, res, "SZ3",
                             {lab: abs_ok(v, eb) for lab in res if lab != "SPERR"}))
    methods = [("Bitshuffle+LZ4", hdf5plugin.Bitshuffle()), ("Bitshuffle+zstd", hdf5plugin.Bitshuffle(cname="zstd"))]
    res = run_methods(x, (64, 64, 64), methods, repeat)
    out.append(table("sim64, 64 per chunk: lossless references", x, res, "Bitshuffle+LZ4", {}))
    return out


def case_log1k(model, repeat):
    import hdf5plugin

    from saecodec.bench.bounds import run_methods
    from saecodec.hdf5 import SAE

    x, _ = big_frames()
    out = []
    for eb in (1e-2, 1e-4):
        methods = [("SZ3", hdf5plugin.SZ3(absolute=eb)), ("SPERR", hdf5plugin.Sperr(absolute=eb)),
                   ("saecodec abs", SAE(model, error_bound=eb)),
                   ("saecodec pwrel 1e-2", SAE(model, error_bound=1e-2, bound_mode="pwrel"))]
        res = run_methods(x, (1, 1024, 1024), methods, repeat)
        out.append(table(f"1024x1024 noiseless log10 float32, 4 frames, 1 per chunk, abs {eb:g}", x, res, "SZ3",
                         {"SZ3": abs_ok(x, eb), "saecodec abs": abs_ok(x, eb)}))
    return out


def case_counts(model, repeat, frames, sentinels, title):
    from saecodec.bench.bounds import counts_methods, run_methods

    x = frames
    masked = np.isin(x, sentinels)
    res = run_methods(x, (1,) + x.shape[1:], counts_methods(model, list(sentinels)), repeat)
    checks = {"saecodec lossless": lambda b: bool(np.array_equal(b, x)),
              "saecodec poisson 0.5": poisson_ok(x, 0.5, masked), "saecodec poisson 1": poisson_ok(x, 1.0, masked)}
    return [table(title, x, res, "SZ3 abs 0.5", checks)]


MEMORY = r'''
import json, sys
import numpy as np
sys.path.insert(0, {bench!r})
from bounds_speed import big_frames
from saecodec import chunk, model_store
model = model_store.load({model!r})
log1k, counts1k = big_frames()
if {case!r} == "log":
    x = np.ascontiguousarray(np.concatenate([log1k, log1k[:, ::-1]]))  # 8 x 1024 x 1024 float32 = 32 MiB
    kw = dict(error_bound={eb!r}, bound_mode={mode!r})
else:
    x = counts1k  # 8 x 1024 x 1024 uint32 = 32 MiB
    kw = dict(error_bound={eb!r}, bound_mode={mode!r}, mask_values=[2**32 - 1])
payload = chunk.encode_chunk(model, x, **kw)
chunk.decode_chunk(model, payload)
import gc; gc.collect()
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")
before = status("VmRSS")
out = chunk.encode_chunk(model, x, **kw) if {what!r} == "enc" else chunk.decode_chunk(model, payload)
print(json.dumps({{"chunk": x.nbytes, "peak": status("VmHWM") - before}}))
'''


def case_memory(model):
    rows = []
    for case, mode, eb in (("log", "abs", 1e-2), ("log", "abs", 1e-4), ("log", "pwrel", 1e-2),
                           ("counts", "abs", 0), ("counts", "poisson", 0.5)):
        res = {}
        for what in ("enc", "dec"):
            code = MEMORY.format(bench=str(Path(__file__).parent), model=model, case=case, mode=mode, eb=eb, what=what)
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
            if proc.returncode:
                raise RuntimeError(proc.stderr)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            res[what] = r["peak"] / r["chunk"]
        rows.append({"chunk": "8x1024x1024 float32 log10" if case == "log" else "8x1024x1024 uint32 counts",
                     "mode": f"{mode} {eb:g}" if eb else "lossless", "encode_peak_over_chunk": res["enc"],
                     "decode_peak_over_chunk": res["dec"]})
    return rows


def markdown(result: dict) -> str:
    lines = [f"# Bounded and lossless modes vs SZ3, {result['date']}", "", f"Command: `{result['command']}`", "",
             "MB/s per CPU second through h5py, one process, interleaved, best of the repeats; x anchor = this "
             "method's speed over the anchor's (SZ3 at the same bound) in the same run.", ""]
    for t in result["tables"]:
        lines += [f"### {t['title']}", "", f"| method | ratio | enc MB/s | dec MB/s | enc x {t['anchor']} | "
                  f"dec x {t['anchor']} | bound holds |", "|---|---|---|---|---|---|---|"]
        for r in t["rows"]:
            lines.append(f"| {r['method']} | {r['ratio']:.2f} | {r['enc_MBps']:.0f} | {r['dec_MBps']:.0f} | "
                         f"{r['enc_vs_anchor']:.2f} | {r['dec_vs_anchor']:.2f} | {'-' if r['ok'] is None else r['ok']} |")
        lines.append("")
    if result.get("memory"):
        lines += ["### Peak memory of one 32 MiB chunk (fresh process)", "",
                  "| chunk | mode | encode peak / chunk | decode peak / chunk |", "|---|---|---|---|"]
        for r in result["memory"]:
            lines.append(f"| {r['chunk']} | {r['mode']} | {r['encode_peak_over_chunk']:.2f} | "
                         f"{r['decode_peak_over_chunk']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--model", default="sas64-l1")
    ap.add_argument("--only", default="sim64,log1k,counts1k,pilatus,memory")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bounds_speed")
    args = ap.parse_args(argv)
    CACHE.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    from saecodec.data.shared import raw_counts

    tables = []
    if "sim64" in only:
        tables += case_sim64(args.model, args.repeat)
    if "log1k" in only:
        tables += case_log1k(args.model, args.repeat)
    if "counts1k" in only:
        tables += case_counts(args.model, args.repeat, big_frames()[1], (GAP,),
                              "simulated 1024x1024 uint32 counts, 8 frames (median 1-1000 counts), 1 per chunk")
    if "pilatus" in only:
        for name, f in raw_counts():
            tables += case_counts(args.model, args.repeat, f[None], (-1, -2), f"raw Pilatus {name} (619x487 int32)")
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "command": "python " + " ".join([sys.argv[0]] + sys.argv[1:]),
              "tables": tables, "memory": case_memory(args.model) if "memory" in only else None}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float))
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
