"""Research step 3 (issue #19): learned lifting refinements (wr_learnlift: one extra predict and
update of 2 taps each per level and direction, initialised at 0 = CDF 9/7, trained 300 Adam steps
on 2000 clean training frames, batch 32, on rate proxy sum log2(1 + |c|/D) + lam x distortion/D^2
with straight-through rounding, D cycling 0.13 / 0.3 / 0.6), then evaluated with the full context
coder (wr_codec2, adaptive A=32, tables retrained on the new transform), 1000 held-out frames.

Result (2026-12-05; ours/SPERR at 0.03 | 0.05 | 0.1):
  CDF 9/7 (no refinement)       1.438 | 1.511 | 1.649
  learned, lam 10               1.437 | 1.512 | 1.655    (taps |t| <= 0.03)
  learned, lam 30               1.429 | 1.506 | 1.649
i.e. -0.6 .. +0.4%: on these smooth log-domain frames CDF 9/7 leaves nothing a light lifting step
finds. Not recommended for the engine (its programs can carry such steps if a later study finds more).

    python benchmarks/archive/wavelet_research/step3_learned_lifting.py
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wr_codec2 as W2  # noqa: E402
import wr_data  # noqa: E402
import wr_learnlift as LL  # noqa: E402
import wr_sweep as S  # noqa: E402


def main():
    test = wr_data.load("clean")["u"][:1000].astype(np.float64)
    train = wr_data.load("clean_train")["u"][:2000].astype(np.float64)
    cfg = dict(W2.DEFAULT, adapt=32)
    print(S.line("CDF 9/7", S.sweep2("clean", test, train, cfg)), flush=True)
    for lam in (10.0, 30.0):
        t = time.time()
        ex = LL.train(train, levels=3, K=2, lam=lam, iters=300)
        print(S.line(f"learned lifting K2 lam {lam}", S.sweep2("clean", test, train, cfg, extras=ex)), f"{time.time() - t:.0f}s", flush=True)


if __name__ == "__main__":
    main()
