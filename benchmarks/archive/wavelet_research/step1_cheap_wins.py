"""Research step 1 (issue #19): the cheap, known wins on top of the probe, measured with the numpy
prototype (wr_codec: symmetric CDF 9/7, deadzone quantiser, static tables per subband x class,
charged as ideal code length + 2 B per frame + 24 B per 64-frame chunk) on 1000 held-out clean
64x64 frames (sas.simulate seed 1), tables trained on 2000 frames of seeds 10/11. Prints ours/SPERR
at equal aggregate error 0.03 | 0.05 | 0.1 (SPERR measured in this process, wr_anchor).

Result (2026-12-05, shared 2-core machine):
  issue probe itself (periodic bior4.4, LEV=4), run here   0.035: 56x = ~1.13x SPERR
  'probe' contexts, symmetric, theta 0.5, 3 levels, per-step tables 1.238 | 1.291 | 1.405
  same, tables pooled over the steps                               1.233 | 1.288 | 1.391
  4 levels                                                         1.219 | 1.271 | 1.391
  theta 0.4                                                        1.255 | 1.322 | 1.472
  'rich' context (+NE, WW, NN, parent 3x3, siblings)               1.293 | 1.356 | 1.490
  rich + theta 0.4 (pooled tables)                                 1.302 | 1.384 | 1.538
  band weights LL x0.7 / x1.4                                      1.297 / 1.291 | 1.379 / 1.368 | 1.539 / 1.497
  finest x1.2 / x0.85, HH x1.2, coarse x0.85                       all within -1 .. +0.2%
  theta 0.45 / 0.35, delta 0.05                                    within -1.5 .. +0.3%
LL band (ll.py part): MED, planar, (W+N)/2 and a 6-tap LS predictor within 1% of each other; the
8x8 LL of a 64x64 frame costs 23-35 B/frame, the 4x4 LL of 4 levels 9-13 B (but the extra 4x4
detail level costs the difference back).

    python benchmarks/archive/wavelet_research/step1_cheap_wins.py        (~10 min on an idle core)
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wr_codec as W  # noqa: E402
import wr_data  # noqa: E402
import wr_sweep as S  # noqa: E402


def wf(ll=1.0, j1=1.0, hh=1.0, coarse=1.0):
    def f(j, o):
        if j == 0:
            return ll
        return {1: j1}.get(j, coarse if j > 2 else 1.0) * (hh if o == 2 else 1.0)
    return f


def main():
    test = wr_data.load("clean")["u"][:1000].astype(np.float64)
    train = wr_data.load("clean_train")["u"][:2000].astype(np.float64)
    base = dict(W.DEFAULT)
    rich = dict(base, ctx="rich", theta=0.4)
    runs = [("probe ctx, theta .5, L3, per-step tables", base, True), ("same, pooled tables", base, False),
            ("L4", dict(base, min_size=4), True), ("theta .4", dict(base, theta=0.4), True),
            ("rich ctx", dict(base, ctx="rich"), True), ("rich ctx + theta .4", rich, False),
            ("LL x0.7", dict(rich, weights=wf(ll=0.7)), False), ("LL x1.4", dict(rich, weights=wf(ll=1.4)), False),
            ("finest x1.2", dict(rich, weights=wf(j1=1.2)), False), ("HH x1.2", dict(rich, weights=wf(hh=1.2)), False),
            ("theta .45", dict(rich, theta=0.45), False), ("delta .05", dict(rich, delta=0.05), False)]
    for name, cfg, pst in runs:
        t = time.time()
        r = S.sweep("clean", test, train, cfg, per_step_tables=pst)
        print(S.line(name, r), f"{time.time() - t:.0f}s", flush=True)


if __name__ == "__main__":
    main()
