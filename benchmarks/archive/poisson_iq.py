"""What the counting-noise bound (bound_mode="poisson") does to I(q) and its error bars.

    python benchmarks/archive/poisson_iq.py

On simulated 1024x1024 uint32 count frames (median 1, 10, 100 and 1000 counts; Poisson
noise; 2**32-1 gaps, see benchmarks/bounds_speed.py) and the raw Pilatus frames (-1/-2
masked), for eb 0.5 and 1, with and without the dithered bins: every element's bound is
checked; per pixel the added error variance over the Poisson variance, mean((y - x)^2) /
mean(max(x, 1)); per azimuthal bin (48 log-spaced radius bins around the intensity-weighted
centre, valid pixels only) the change of the bin mean in units of its counting error,
|I_y - I_x| / sigma_I with sigma_I = sqrt(sum x) / n, median and max over bins; and the
ratio. Uniform errors on [-T, T] with T = floor(eb sqrt(x)) add at most eb^2 / 3 of the
Poisson variance, so the error bars of I(q) grow by at most sqrt(1 + eb^2 / 3).
Writes benchmarks/results/poisson_iq.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/bounds_speed.py


def bins_dev(x: np.ndarray, y: np.ndarray, valid: np.ndarray, nb: int = 48) -> np.ndarray:
    """|I_y - I_x| / sigma_I per log-spaced radius bin around the beam (saecodec.iq)."""
    from saecodec import iq

    q = iq.pixel_q(np.where(valid, x, 0).astype(np.float64)[None])[0]
    idx, n_bins = iq.bin_index(np.where(valid, q, np.nan), nb, "log")
    n, sx, _ = iq.bin_sums(x, idx, n_bins, valid)
    _, sy, _ = iq.bin_sums(y, idx, n_bins, valid)
    return iq.sigma_deviation(n, sx, sy)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="sas64-l1")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "poisson_iq")
    args = ap.parse_args(argv)
    from bounds_speed import GAP, big_frames

    from saecodec import model_store
    from saecodec.data.shared import raw_counts
    from saecodec.coding import fast

    model = model_store.load(args.model)
    counts = big_frames()[1]
    frames = [(f"sim 1024x1024, median {int(np.median(c[c != GAP]))} counts", c, (GAP,)) for c in counts[:4]]
    frames += [(f"Pilatus {name[-14:-5]}", f, (-1, -2)) for name, f in raw_counts()]
    rows = []
    from saecodec import chunk

    for name, f, sentinels in frames:
        valid = ~np.isin(f, sentinels)
        lossless = len(chunk.encode_chunk(model, f, error_bound=0, mask_values=sentinels))
        for eb in (0.5, 1.0):
            for dither in (True, False):
                if dither:
                    p = chunk.encode_chunk(model, f, error_bound=eb, bound_mode="poisson", mask_values=sentinels)
                    y = chunk.decode_chunk(model, p)
                    size = len(p)
                else:  # fixed bin centres, for comparison only (not a codec option)
                    bits = np.packbits(~valid)
                    s = fast.encode(f[None], "poisson", eb, mask=bits, dither=False)
                    y = fast.decode(s, (1,) + f.shape, f.dtype, mask=bits, out=f[None].copy())[0]
                    size = len(s)
                xv, yv = f[valid].astype(np.float64), y[valid].astype(np.float64)
                assert np.all(np.abs(yv - xv) <= eb * np.sqrt(np.maximum(xv, 1))) and np.array_equal(y[~valid], f[~valid])
                assert np.array_equal(yv, np.rint(yv))
                d = bins_dev(f, y, valid)
                rows.append({"frame": name, "eb": eb, "dither": dither, "ratio": f.nbytes / size,
                             "lossless_ratio": f.nbytes / lossless,
                             "added_var_over_poisson": float(np.mean((yv - xv) ** 2) / np.mean(np.maximum(xv, 1))),
                             "iq_dev_sigma_median": float(np.median(d)), "iq_dev_sigma_max": float(d.max()),
                             "mean_error": float(np.mean(yv - xv))})
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = ["# The counting-noise bound: ratio and what it does to I(q)", "",
             "Command: `python benchmarks/archive/poisson_iq.py`. Every element within eb sqrt(max(x, 1)), integers "
             "stay integers (checked). I(q) deviation in units of the bin mean's counting error.", "",
             "| frame | eb | bins | ratio (lossless) | added var / Poisson var | I(q) dev median / max (sigma_I) | "
             "mean error |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['frame']} | {r['eb']} | {'dithered' if r['dither'] else 'fixed centres'} | "
                     f"{r['ratio']:.2f} ({r['lossless_ratio']:.2f}) | {r['added_var_over_poisson']:.3f} | "
                     f"{r['iq_dev_sigma_median']:.2f} / {r['iq_dev_sigma_max']:.2f} | {r['mean_error']:+.4f} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
