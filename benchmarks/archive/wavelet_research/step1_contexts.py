"""Research step 1, contexts and adaptation, with wr_codec2 (the design the engine implements:
integer log-feature linear context -> 32 classes, hybrid tokens, 3^6 sign patterns, LL MED +
gradient classes; tables pooled over the steps). 1000 held-out clean 64x64 frames, tables from
2000 training frames; ours/SPERR at 0.03 | 0.05 | 0.1 (ideal code length + 2 B/frame + 24 B/chunk).

Result (2026-12-05):
  linear context K=32, raw signs          1.362 | 1.425 | 1.539
  + sign contexts                          1.412 | 1.475 | 1.580   (tables 35 kB)
  + adaptive counts, magnitudes only A=32  1.432 | 1.504 | 1.641
  + adaptive signs only                    1.418 | 1.482 | 1.587
  + adaptive both (A=32)                   1.438 | 1.511 | 1.649
  + adaptive LL too                        1.438 | 1.511 | 1.651
  K=48 (adaptive both)                     1.440 | 1.514 | 1.659
  4 levels (min 4)                         1.435 | 1.511 | 1.659
Bit budget at step 0.3 (error 0.061, 155 B/frame): magnitudes 102.5, signs 21.2, LL 21.7,
raw bits 7.1, header 2.4 B/frame.

    python benchmarks/archive/wavelet_research/step1_contexts.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wr_codec2 as W2  # noqa: E402
import wr_data  # noqa: E402
import wr_sweep as S  # noqa: E402


def main():
    test = wr_data.load("clean")["u"][:1000].astype(np.float64)
    train = wr_data.load("clean_train")["u"][:2000].astype(np.float64)
    m = W2.Model(dict(W2.DEFAULT, sign="raw")).train(train, S.STEPS["clean"])
    print(S.line("linear K32, raw signs", S.sweep2("clean", test, train, m.cfg, model=m)), flush=True)
    m = W2.Model(dict(W2.DEFAULT)).train(train, S.STEPS["clean"])
    for name, over in [("sign contexts, static", {}), ("adapt magnitudes", dict(adapt_mag=32, adapt_sign=0)),
                       ("adapt signs", dict(adapt_mag=0, adapt_sign=32)), ("adapt both", dict(adapt=32)),
                       ("adapt both + LL", dict(adapt=32, adapt_ll=16))]:
        m.cfg = dict(W2.DEFAULT, **over)
        print(S.line(name, S.sweep2("clean", test, train, m.cfg, model=m)), flush=True)
    for name, cfg in [("K48", dict(W2.DEFAULT, adapt=32, K=48)), ("4 levels", dict(W2.DEFAULT, adapt=32, min_size=4))]:
        print(S.line(name, S.sweep2("clean", test, train, cfg)), flush=True)
    parts = {}
    m = W2.Model(dict(W2.DEFAULT, adapt=32)).train(train, S.STEPS["clean"])
    agg, med, r, bpf, *_ = W2.evaluate(test, m, 0.3, parts_out=parts)
    print(f"step 0.3: err {agg:.4f}, {bpf:.1f} B/frame:", {k: round(v / len(test) / 8, 1) for k, v in parts.items()})


if __name__ == "__main__":
    main()
