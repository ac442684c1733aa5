"""Research step 1, rate-distortion optimised quantisation (wr_rdoq: encoder only; lower |q| by one
when table bits saved x lambda D_b^2 exceed the squared error added; 2 passes; lambda = 0.08 D_b^2).

Result (2026-12-05; ours/SPERR at 0.03 | 0.05 | 0.1, prototype, adaptive counts A=32):
clean (1000 frames, tables from 2000 training frames):
  theta 0.4, no RDO          1.438 | 1.511 | 1.649
  theta 0.5 + RDO 0.08       1.457 | 1.535 | 1.697   <- chosen
  theta 0.5 + RDO 0.15/0.25  1.439 / 1.392 | 1.514 / 1.468 | 1.674 / 1.616
  theta 0.4 + RDO 0.08       1.445 | 1.526 | 1.691
noisy (256 held-out frames, model trained on 768 train-mix frames, harmonic mask fill):
  theta 0.4, no RDO          1.096 | 1.121 | 1.179
  theta 0.45                 1.104 | 1.127 | 1.174
  theta 0.5 + RDO 0.05/0.08/0.12  1.108/1.110/1.110 | 1.132/1.136/1.136 | 1.185/1.197/1.202
The engine (wl) implements this as model field rdo_lambda; its real bytes agree (engine_measure.py).

    python benchmarks/archive/wavelet_research/step1_rdoq.py
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wr_anchor as A  # noqa: E402
import wr_codec as W0  # noqa: E402
import wr_codec2 as W2  # noqa: E402
import wr_data  # noqa: E402
import wr_rdoq as R  # noqa: E402
import wr_sweep as S  # noqa: E402
from saecodec.bench.rd import curve, ratio_at  # noqa: E402


def run(set_name, test, model, steps, theta, lam):
    model.cfg = dict(model.cfg, theta=theta)
    pts = []
    for s in steps:
        agg, med, r, bpf = R.evaluate(test, model, s, lam) if lam else W2.evaluate(test, model, s)[:4]
        pts.append((agg, r))
    c = curve(pts)
    return " | ".join(f"{t}: {ratio_at(c, t)[0] / A.anchor_ratio(set_name, 'SPERR', t):.3f}" for t in (0.03, 0.05, 0.1))


def main():
    test = wr_data.load("clean")["u"][:1000].astype(np.float64)
    train = wr_data.load("clean_train")["u"][:2000].astype(np.float64)
    for theta in (0.5, 0.4):
        m = W2.Model(dict(W2.DEFAULT, adapt=32, theta=theta)).train(train, S.STEPS["clean"])
        for lam in (0.0, 0.08, 0.15, 0.25):
            t = time.time()
            print(f"clean theta {theta} lam {lam}:", run("clean", test, m, S.STEPS["clean"], theta, lam), f"{time.time() - t:.0f}s", flush=True)
    W0.FILL["how"] = "harmonic"
    noisy = list(wr_data.load("noisy")["u"][:256])
    m = W2.Model(dict(W2.DEFAULT, adapt=32)).train(wr_data.load("noisy_train")["u"][:768], [0.1, 0.2, 0.4])
    for theta, lam in [(0.4, 0), (0.45, 0), (0.5, 0.05), (0.5, 0.08), (0.5, 0.12)]:
        print(f"noisy theta {theta} lam {lam}:", run("noisy", noisy, m, [0.06, 0.1, 0.17, 0.28], theta, lam), flush=True)


if __name__ == "__main__":
    main()
