"""Real bytes from the wavelet engine (helper wl's c_wavelet; run with PYTHONPATH=/work/wt/wl):
train_wavelet on the research training sets (min_len 8; theta 0.5 with RDO), encode the held-out
sets through Engine.encode at a sweep of steps (one message per 64-frame chunk, + 24 B per chunk
for the payload header, masks as coding/mask.py, NaN filled harmonically), compare with the anchors.

Result (2026-12-05, engine 6712620 + its working tree; ours/SPERR at aggregate 0.03 | 0.05 | 0.1):
clean, model from clean sets only:
  static + RDO 0.08             1.430 | 1.490 | 1.613
  adaptive (inc 1024), no RDO   1.433 | 1.494 | 1.614
  adaptive + RDO 0.08           1.451 | 1.517 | 1.655
  adaptive + RDO 0.05 / 0.12    1.447 / 1.448 | 1.509 / 1.514 | 1.635 / 1.655
  (see ENGINE_KNOBS below for inc 2048 / 512 and theta 0.45)
profiles (adaptive + RDO; clean / noisy[:256] / real agg / real median):
  clean-only model   1.451 1.517 1.655 / 1.058 1.072 1.120 / 1.127 1.158 1.188 / 1.071 1.105 1.142
  noisy-only model   1.258 1.325 1.479 / 1.112 1.137 1.194 / 1.172 1.202 1.225 / 1.124 1.160 1.189
  mixed model        1.414 1.482 1.628 / 1.095 1.118 1.172 / 1.164 1.193 1.216 / 1.111 1.146 1.184
  2 profiles (per-frame best of clean-only | noisy-only, +1 bit/frame)
                     1.451 1.516 1.653 / 1.112 1.137 1.193 / 1.174 1.203 1.230 / 1.125 1.162 1.182

    python benchmarks/archive/wavelet_research/engine_measure.py [knobs]
"""
import os
import pickle
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wr_codec as W0  # noqa: E402
import wr_data  # noqa: E402
import wr_engine as E  # noqa: E402
import wr_sweep as S  # noqa: E402

AD = {"shift": 0, "inc": 1 << 10, "limit": 1 << 30, "binary": 1}
NS = [0.06, 0.1, 0.17, 0.28]
RS = [0.03, 0.06, 0.1, 0.17, 0.28, 0.45]


def knobs(ctest, ctrain):
    for name, lam, inc, theta, adapt in [("static rdo", 0.08, 1024, 0.5, False), ("adapt", 0.0, 1024, 0.4, True),
                                         ("adapt rdo", 0.08, 1024, 0.5, True), ("lam .05", 0.05, 1024, 0.5, True),
                                         ("lam .12", 0.12, 1024, 0.5, True), ("inc 2048", 0.08, 2048, 0.5, True),
                                         ("inc 512", 0.08, 512, 0.5, True), ("theta .45", 0.08, 1024, 0.45, True)]:
        t = time.time()
        arch = dict(min_len=8, rdo_lambda=lam, adapt=dict(AD, inc=inc) if adapt else None)
        m, _ = E.train([ctrain[:4000], ctrain[4000:]], arch=arch, val=ctest[:32], theta=theta)
        print(S.line("clean-only " + name, E.sweep("clean", m, ctest, S.STEPS["clean"])), f"{time.time() - t:.0f}s", flush=True)


def profiles(ctest, ctrain):
    W0.FILL["how"] = "harmonic"
    ntest = wr_data.load("noisy")["u"][:256]
    real = wr_data.load("real")
    nfill = np.stack([W0.fill(f.astype(np.float64)) for f in wr_data.load("noisy_train")["u"]]).astype(np.float32)
    arch = dict(min_len=8, rdo_lambda=0.08, adapt=AD)
    M = {"clean": E.train([ctrain[:4000], ctrain[4000:]], arch=arch, val=ctest[:32], theta=0.5)[0],
         "noisy": E.train([nfill], arch=arch, val=nfill[:16], theta=0.5)[0],
         "mixed": E.train([ctrain[:4000], ctrain[4000:], nfill], arch=arch, val=ctest[:32], theta=0.5)[0]}
    with open(wr_data.CACHE / "engine_models.pkl", "wb") as f:
        pickle.dump({k: (m.module.state_dict(), m.module.architecture) for k, m in M.items()}, f)
    for name, model, others in [("clean-only", M["clean"], ()), ("noisy-only", M["noisy"], ()), ("mixed", M["mixed"], ()),
                                ("2 profiles", M["clean"], (M["noisy"],))]:
        print(S.line(f"clean / {name}", E.sweep("clean", model, ctest, S.STEPS["clean"], others=others)), flush=True)
        print(S.line(f"noisy / {name}", E.sweep("noisy", model, ntest, NS, others=others)), flush=True)
        r = E.sweep("real", model, real["u"], RS, mask_values=real["mask_values"], others=others)
        print(S.line(f"real / {name}", r), S.line("", r, "median"), flush=True)


if __name__ == "__main__":
    ctest = wr_data.load("clean")["u"][:1000]
    ctrain = wr_data.load("clean_train")["u"]
    (knobs if sys.argv[1:] == ["knobs"] else profiles)(ctest, ctrain)
