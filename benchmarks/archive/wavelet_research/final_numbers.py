"""The recommended design's numbers on the full held-out sets, real engine bytes (PYTHONPATH=/work/wt/wl):
2 context profiles (clean-trained | noisy-trained, per-frame choice, 1 bit/frame), adaptive counts,
RDO 0.08 with theta 0.5, harmonic mask fill; models from engine_measure.py (data cache).
clean 2000 frames (64 per chunk), noisy 512 (64 per chunk), real 39 (one chunk each); ours/X at
equal error (aggregate, and median frame) for X = SPERR, SZ3, ZFP measured in this process.
Writes the markdown table to stdout (copied into benchmarks/results/wavelet_research.md).

    python benchmarks/archive/wavelet_research/final_numbers.py
"""
import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wr_codec as W0  # noqa: E402
import wr_data  # noqa: E402
import wr_engine as E  # noqa: E402
from engine_bounded_ratecontrol import model_of  # noqa: E402

SETS = {"clean": ([0.1, 0.13, 0.2, 0.3, 0.45, 0.7], None), "noisy": ([0.04, 0.06, 0.1, 0.17, 0.28, 0.45], None),
        "real": ([0.03, 0.06, 0.1, 0.17, 0.28, 0.45], "mask_values")}


def main():
    W0.FILL["how"] = "harmonic"
    st = pickle.load(open(wr_data.CACHE / "engine_models.pkl", "rb"))
    mc, mn = model_of(st, "clean"), model_of(st, "noisy")
    print("| set | metric | error | ratio | vs SPERR | vs SZ3 | vs ZFP |\n|---|---|---|---|---|---|---|")
    for name, (steps, mvk) in SETS.items():
        d = wr_data.load(name)
        frames = d["u"] if name == "real" else list(d["u"])
        r = E.sweep(name, mc, frames, steps, mask_values=d.get(mvk) if mvk else None, others=(mn,))
        for key in ("agg", "median"):
            for t in (0.03, 0.05, 0.1):
                ours, ex, v = r[(key, t)]
                print(f"| {name} | {key} | {t} | {ours:.1f}{'*' if ex else ''} | {v['SPERR']:.3f} | {v['SZ3']:.2f} | {v['ZFP']:.2f} |", flush=True)
        print(f"<!-- {name} points (step, agg, median, ratio, B/frame): {[tuple(round(float(x), 4) for x in p) for p in r['points']]} -->", flush=True)


if __name__ == "__main__":
    main()
