"""``saecodec verify --plot OUT.png``: what a scientist looks at before deleting originals.

One row per compressed dataset, for its worst frame (largest I(q) change, else largest
change of the total): I(q) of the original with its error bars against the decoded; their
difference in units of those error bars; and the map of the decoded frame's error (integer
counts: in units of each pixel's counting noise sqrt(max(x, 1)); other data: in the data's
units), masked pixels grey.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SaecodecError
from . import iq


def _frame_pair(orig, comp, index):
    """The original and decoded 2D frame at leading ``index`` (a tuple)."""
    index = tuple(index or (0,) * (len(comp.shape) - 2))
    region = tuple(slice(i, i + 1) for i in index) + (slice(None), slice(None))
    x = np.asarray(orig.read(region)).astype(comp.dtype, copy=False).reshape(comp.shape[-2:])
    offset = tuple((i // c) * c for i, c in zip(index, comp.chunks)) + (0, 0)
    block = comp.decoded(offset)
    d = block[tuple(i - o for i, o in zip(index, offset))]
    return x, np.asarray(d).reshape(comp.shape[-2:]), index


MAX_ROWS = 8  # datasets drawn, one row each


def _badness(row) -> tuple:
    d = row[0]
    return (sum(not c["passed"] for c in d["checks"]), (d.get("iq") or {}).get("max_rel_l2", 0.0),
            d.get("total_change_max") or 0.0)


def plot_report(report: dict, pairs, geos, path) -> Path:
    try:
        import matplotlib
    except ImportError:
        raise SaecodecError("--plot needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import SymLogNorm
    from matplotlib.ticker import NullFormatter

    from .verify import _masked

    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise SaecodecError(f"--plot {path}: give a .png, .pdf or .svg file name")
    rows = list(zip(report["datasets"], pairs, geos))
    shown = sorted(rows, key=_badness, reverse=True)[:MAX_ROWS] if len(rows) > MAX_ROWS else rows
    note = f" ({len(shown)} of {len(rows)} datasets: the failed and the most changed)" if len(shown) < len(rows) else ""
    rows = shown
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, 4.3 * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.15, 1, 1]})
    for (d, (orig, comp), geo), ax in zip(rows, axes):
        x, y, index = _frame_pair(orig, comp, d.get("worst_frame"))
        invalid = _masked(comp.spec or {}, x[None])[0]
        geo = geo if geo is not None else iq.radius_geometry(np.where(invalid, np.nan, x.astype(np.float64)))
        prof = iq.Profiler(geo, x.shape)
        px, ex = prof.stats(x, invalid, errors=True)
        py, _ = prof.stats(y, invalid)
        q, qlabel = prof.q_axis()
        title = f"{d['name']}, frame {','.join(map(str, index)) or '0'}"
        ok = np.isfinite(px) & np.isfinite(py)
        logy = (px[ok] > 0).mean() > 0.8 if ok.any() else False
        if logy:  # intensities over decades: a log axis, bins with no positive mean left out
            ok &= (px > 0) & (py > 0)
        a = ax[0]
        a.errorbar(q[ok], px[ok], yerr=None if ex is None else np.nan_to_num(ex[ok]), fmt="o", ms=3, lw=0.8,
                   capsize=1.5, color="k", label="original (error bars: " +
                   ("Poisson" if x.dtype.kind in "iu" else "std. error of the ring mean") + ")")
        a.plot(q[ok], py[ok], "-", color="tab:red", lw=1.4, label="decoded")
        if logy:
            a.set_yscale("log")
        if np.all(q[ok] > 0):
            a.set_xscale("log")
        a.set_xlabel(qlabel)
        a.set_ylabel("I(q)")
        a.set_title(title, fontsize=9)
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
        b = ax[1]
        sig = ex if ex is not None else np.full_like(px, np.nan)
        good = ok & np.isfinite(sig) & (sig > 0)
        b.axhspan(-1, 1, color="0.85", label="within 1 error bar")
        b.plot(q[good], (py[good] - px[good]) / sig[good], "o-", ms=3, lw=0.8, color="tab:red")
        b.axhline(0, color="k", lw=0.6)
        b.set_yscale("symlog", linthresh=1)  # within one error bar: linear; beyond: decades
        if np.all(q[ok] > 0):
            b.set_xscale("log")
        b.set_xlabel(qlabel)
        b.set_ylabel("(decoded - original) / error bar")
        iqc = next((c for c in d["checks"] if c["check"] == "I(q)"), None)
        dev = d.get("iq", {}).get("max_rel_l2")
        b.set_title(f"I(q) change: rel L2 {dev:.3g}" if dev is not None else "I(q) change", fontsize=9)
        if iqc is not None:
            b.set_title(f"I(q) change: rel L2 {iqc['value']:.3g} ({'within' if iqc['passed'] else 'BEYOND'} "
                        f"tolerance {iqc['tolerance']:g})", fontsize=9)
        b.legend(fontsize=7)
        b.grid(alpha=0.3)
        c = ax[2]
        err = y.astype(np.float64) - x.astype(np.float64)
        if x.dtype.kind in "iu":
            err = err / np.sqrt(np.maximum(x.astype(np.float64), 1.0))
            label = "(decoded - original) / sqrt(max(original, 1))"
        else:
            label = "decoded - original"
        err = np.where(invalid, np.nan, err)
        fin = np.abs(err[np.isfinite(err)])
        fin = fin[fin > 0]  # the scale of the errors there are, not of the exact pixels
        lim = float(fin.max()) if fin.size else 1.0
        # symmetric log colours: the beam's large errors and the background's small ones both show
        norm = SymLogNorm(linthresh=float(np.percentile(fin, 50)) if fin.size else 1.0, vmin=-lim, vmax=lim)
        cmap = plt.get_cmap("RdBu_r").copy()
        cmap.set_bad("0.6")
        im = c.imshow(err, cmap=cmap, norm=norm, interpolation="nearest")
        fig.colorbar(im, ax=c, fraction=0.046, pad=0.04).set_label(label, fontsize=8)
        mode = "pure" if d["error_bound"] is None else f"{d['bound_mode']} {d['error_bound']:g}"
        c.set_title(f"error map ({mode}; max |error| {d['max_abs_error']:.3g}; grey: masked)", fontsize=9)
        c.set_xticks([])
        c.set_yticks([])
    fig.suptitle(f"saecodec verify: {report['compressed']} against {report['original']}: "
                 f"{'OK' if report.get('ok', not report.get('failed')) else 'FAILED'}{note}", fontsize=10)
    for a in axes[:, :2].ravel():  # a log axis over one decade labels its minor ticks on top of each other
        a.xaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))  # room for the title
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
