"""Bounded modes with the wavelet prediction against SPERR, SZ3 and SZ2 at the same bound (issue #19).

    OMP_NUM_THREADS=1 nice python benchmarks/wavelet_bounded.py --model MODEL [--out benchmarks/results/wavelet_bounded]

Held-out frames the model never saw, every stored byte counted, through h5py in one process:
* clean: 256 frames of saecodec.data.sas seed 1 (64 x 64), abs on log10(max(I, 1e-6)), pwrel on I;
* noisy: 128 frames of the noisy held-out set (saecodec.bench.rd.noisy_frames), abs on
  u = asinh(I counts_per_unit) / ln 10, NaN filled with the nearest value for every codec
  (the anchors take no NaN; saecodec would keep them exactly).
saecodec codes 64 frames per chunk (the model's log10-input variant on log10 and u values, the
model itself on intensities), with the wavelet prediction (predictor="network": its step from
the bound, the residual or the plain compiled coder per plane) and without it (classical);
anchors code one frame per chunk. pwrel: SZ2's pointwise_relative; SZ3 and SPERR have no
pointwise-relative mode, so they code log2(I) at the absolute bound log2(1 + eb) and 2^y is
returned (the usual workaround; zeros and negatives would need more). Every method's largest
error over every element is reported against its bound (1.0 = at the bound).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def round_trip(values, chunks, kw):
    from saecodec.bench.run import h5_round_trip

    size, back, te, td = h5_round_trip(values, chunks, kw, clock=time.process_time)
    mb = values.nbytes / 1e6
    return values.nbytes / size, back, mb / max(te, 1e-9), mb / max(td, 1e-9)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", default=None)
    ap.add_argument("--clean", type=int, default=256)
    ap.add_argument("--noisy", type=int, default=128)
    args = ap.parse_args()
    import hdf5plugin

    from saecodec import model_store
    from saecodec.bench import rd
    from saecodec.data import sas
    from saecodec.hdf5 import SAE

    model = model_store.load(args.model)
    model_store.remember(model)
    log_model = model_store.remember(model.for_log10_input())
    intens = sas.simulate(args.clean, seed=1, progress=False).frames.astype(np.float32)
    clean = np.log10(np.maximum(intens, 1e-6)).astype(np.float32)
    noisy = np.stack([rd.fill_nearest(u) for u in rd.noisy_frames(args.noisy)]).astype(np.float32)
    stack = lambda v: (min(64, len(v)), *v.shape[1:])  # noqa: E731
    one = lambda v: (1, *v.shape[1:])  # noqa: E731
    rows = []

    def add(set_name, bound, method, values, chunks, kw, check, decode=None):
        ratio, back, enc, dec = round_trip(values, chunks, kw)
        if decode is not None:
            back = decode(back)
        rows.append({"set": set_name, "bound": bound, "method": method, "ratio": ratio, "max_err_over_bound": check(back),
                     "enc_MBps": enc, "dec_MBps": dec})
        r = rows[-1]
        print(f"{set_name:6s} {bound:12s} {method:34s} ratio {ratio:7.2f}  max err / bound {r['max_err_over_bound']:.4f}  "
              f"enc {enc:6.1f} dec {dec:6.1f} MB/s", flush=True)

    for set_name, values in (("clean", clean), ("noisy", noisy)):
        for eb in (1e-2, 1e-3):
            check = lambda b, eb=eb, v=values: float(np.abs(b.astype(np.float64) - v).max() / eb)  # noqa: E731
            label = f"abs {eb:g}"
            add(set_name, label, "SPERR", values, one(values), hdf5plugin.Sperr(absolute=eb), check)
            add(set_name, label, "SZ3", values, one(values), hdf5plugin.SZ3(absolute=eb), check)
            add(set_name, label, "SZ2", values, one(values), hdf5plugin.SZ(absolute=eb), check)
            for pred in ("network", "classical"):
                add(set_name, label, f"saecodec ({'wavelet prediction' if pred == 'network' else 'classical'})",
                    values, stack(values), SAE(model=log_model.identity, error_bound=eb, predictor=pred), check)
    eb = 1e-2
    x = intens.astype(np.float64)
    check = lambda b: float((np.abs(b.astype(np.float64) - x) / np.abs(x)).max() / eb)  # noqa: E731
    add("clean", "pwrel 0.01", "SZ2 pointwise_relative", intens, one(intens), hdf5plugin.SZ(pointwise_relative=eb), check)
    lg = np.log2(intens).astype(np.float32)
    ebl = float(np.log2(1 + eb))
    to_i = lambda b: np.exp2(b.astype(np.float64))  # noqa: E731
    add("clean", "pwrel 0.01", "SZ3 on log2 (abs log2(1+eb))", lg, one(lg), hdf5plugin.SZ3(absolute=ebl), check, to_i)
    add("clean", "pwrel 0.01", "SPERR on log2 (abs log2(1+eb))", lg, one(lg), hdf5plugin.Sperr(absolute=ebl), check,
        to_i)
    for pred in ("network", "classical"):
        add("clean", "pwrel 0.01", f"saecodec ({'wavelet prediction' if pred == 'network' else 'classical'})", intens,
            stack(intens), SAE(model=model.identity, error_bound=eb, bound_mode="pwrel", predictor=pred), check)
    for r in rows:
        ref = {a["method"]: a["ratio"] for a in rows if a["set"] == r["set"] and a["bound"] == r["bound"]}
        for name, key in (("SPERR", "x_SPERR"), ("SZ3", "x_SZ3"), ("SZ2", "x_SZ2")):
            hit = [v for k, v in ref.items() if k.startswith(name)]
            if hit:
                r[key] = r["ratio"] / hit[0]
    report = {"model": args.model, "identity": model.identity, "date": time.strftime("%F %R"), "clean": args.clean,
              "noisy": args.noisy, "rows": rows}
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(report, indent=1))
        lines = [f"# Bounded modes with the wavelet prediction, {report['date']}", "",
                 f"Command: `python benchmarks/wavelet_bounded.py --model {args.model}` (model {model.identity[:12]}); "
                 f"{args.clean} held-out clean 64x64 frames, {args.noisy} noisy held-out 128x128 frames; see the "
                 "script's docstring. Ratios count every stored byte; max err / bound over every element "
                 "(<= 1: the bound holds); MB/s per CPU second through h5py.", "",
                 "| set | bound | method | ratio | x SPERR | x SZ3 | x SZ2 | max err / bound | enc MB/s | dec MB/s |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['set']} | {r['bound']} | {r['method']} | {r['ratio']:.2f} | {r.get('x_SPERR', 0):.3f} | "
                         f"{r.get('x_SZ3', 0):.3f} | {r.get('x_SZ2', 0):.3f} | {r['max_err_over_bound']:.4f} | "
                         f"{r['enc_MBps']:.0f} | {r['dec_MBps']:.0f} |")
        out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
