"""Where on clean frames the wavelet coder wins or loses against SPERR, frame by frame: per frame,
our bytes and SPERR's at equal per-frame error 0.05 (each interpolated log-log over its own sweep),
grouped by the frame's sasmodels model. Engine bytes (PYTHONPATH=/work/wt/wl; clean profile).

    python benchmarks/archive/wavelet_research/perframe_clean.py
"""
import os
import pickle
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wr_data  # noqa: E402
from engine_bounded_ratecontrol import model_of  # noqa: E402
from saecodec import metrics  # noqa: E402
from saecodec.bench.rd import _filter  # noqa: E402
from saecodec.bench.run import h5_round_trip  # noqa: E402
from saecodec.data import sas  # noqa: E402


def main(n=600):
    from saecodec.coding import wavelet_engine as we

    models = sas.simulate(n, seed=1, progress=False).models
    U = wr_data.load("clean")["u"][:n]
    st = pickle.load(open(wr_data.CACHE / "engine_models.pkl", "rb"))
    eng = we.Engine(model_of(st, "clean").module.engine_params())
    ours = []
    for s in (0.1, 0.2, 0.3, 0.45, 0.7, 1.0):
        e, b = [], []
        for i in range(n):
            z = U[i:i + 1].astype(np.float64)
            data, zhat, _ = eng.encode(z, we.step_index(s))
            a, d = metrics.offset_free_terms(z, zhat)
            e.append(np.sqrt(a[0] / d[0]))
            b.append(len(data))
        ours.append((np.array(e), np.array(b)))
    sp = []
    for eb in np.geomspace(0.02, 1.5, 12):
        e, b = [], []
        for i in range(n):
            size, back, _, _ = h5_round_trip(U[i:i + 1], (1, 64, 64), _filter("SPERR", float(eb)))
            a, d = metrics.offset_free_terms(U[i:i + 1], back)
            e.append(np.sqrt(a[0] / d[0]))
            b.append(size)
        sp.append((np.array(e), np.array(b)))

    def at(curves, i, err):
        pts = sorted((c[0][i], c[1][i]) for c in curves)
        return np.exp(np.interp(np.log(err), np.log([p[0] for p in pts]), np.log([p[1] for p in pts])))

    ratio = np.array([at(sp, i, 0.05) / at(ours, i, 0.05) for i in range(n)])
    ebytes = np.array([at(ours, i, 0.05) for i in range(n)])
    names = np.array(models)
    print(f"all: median SPERR/ours bytes {np.median(ratio):.3f}; bytes-weighted {np.sum(ratio * ebytes) / ebytes.sum():.3f}")
    for m in sorted(set(models)):
        k = names == m
        print(f"{m:22s} n {k.sum():3d}  median {np.median(ratio[k]):.3f}  p10 {np.percentile(ratio[k], 10):.3f}  "
              f"our bytes/frame at 0.05 {np.median(ebytes[k]):.0f}", flush=True)


if __name__ == "__main__":
    main()
