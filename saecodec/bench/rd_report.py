"""The rd suite's outputs: markdown tables, the JSON of every point, two ratio-vs-error plots."""

from __future__ import annotations

from . import report
from .rd import ANCHOR_BOUNDS, curve
from .report import _fmt

ANCHORS = tuple(ANCHOR_BOUNDS)
SET_TITLES = {"sim": "simulated held-out frames (log10)", "real": "real frames, native size (asinh/ln10)",
              "noisy": "noisy held-out detector frames, 128x128 (asinh of counts / ln10)"}


def _x(row, c):
    mark = "*" if row["ours_extrap"] or row[f"{c}_extrap"] else ""
    return _fmt(row[f"x_{c}"], ".2f") + mark


def markdown(result: dict, command: str = "") -> str:
    v = result["versions"]
    lines = [f"# saecodec bench --suite rd, {result['date']}", "",
             f"Command: `{command}`" if command else "", "",
             f"Data: simulated {result['frames']['sim']} (frames, h, w), real frames: {result['frames']['real']}, "
             f"noisy frames: {result['frames'].get('noisy')}. "
             f"Machine: {v['machine']}, {v['cpus']} CPUs; " + ", ".join(
                 f"{k} {v[k]}" for k in ("saecodec", "torch", "h5py", "hdf5plugin") if v.get(k)), "",
             "Error: offset-free log10 relative L2 (`saecodec.metrics`), aggregate over the set and median over "
             "frames. ours/X: our ratio over X's at equal error, both interpolated log-log on the curves "
             "(ours over its rate levels, X over its bound sweep); * = extrapolated beyond a curve's end. "
             "Anchors one frame per chunk; saecodec 64 frames per chunk (sim, noisy), one chunk per real frame. "
             "Ratios count every stored byte (HDF5 chunk bytes). Speeds: MB/s of raw data per CPU second, and x "
             "SZ3 at its sweep point nearest in aggregate error (pure, anchors) or at the same bound (bounded). "
             "Fell back: frames the quality gate coded bounded, of the frames coded, which include the fill "
             "frames HDF5 pads a partial last chunk with.", ""]
    for set_name, s in result["sets"].items():
        lines += [f"## {SET_TITLES.get(set_name, set_name)}", "",
                  "### At equal error", "",
                  "| model | gate | metric | error | ours | " + " | ".join(f"{c} | ours/{c}" for c in ANCHORS) + " |",
                  "|---" * (5 + 2 * len(ANCHORS)) + "|"]
        for r in s["compare"]:
            if r["at"] != "target" or r["ours"] != r["ours"]:
                continue
            lines.append(f"| {r['model']} | {r['gate']} | {r['metric']} | {r['err']:g} | "
                         f"{_fmt(r['ours'], '.1f')}{'*' if r['ours_extrap'] else ''} | "
                         + " | ".join(f"{_fmt(r[c], '.1f')} | {_x(r, c)}" for c in ANCHORS) + " |")
        lines += ["", "### Our points (each anchor at our error)", "",
                  "| model | level | gate | ratio | agg | median | fell back | enc MB/s | dec MB/s | enc/SZ3 | "
                  "dec/SZ3 | ours/SPERR agg | ours/SZ3 agg | ours/ZFP agg |", "|---" * 14 + "|"]
        at_pt = {(r["model"], r["gate"], r["err"]): r for r in s["compare"] if r["at"] == "level" and r["metric"] == "agg"}
        for r in s["rows"]:
            if r["kind"] != "pure":
                continue
            c = at_pt.get((r["method"], r["gate"], r["agg"]), {})
            lines.append(f"| {r['method']} | {_fmt(r['level'], 'g')} | {r['gate']} | {r['ratio']:.1f} | "
                         f"{r['agg']:.4f} | {r['median']:.4f} | "
                         + (f"{r['fallback_frames']}/{r['frames']}" if r["gate"] != "off" else "-")
                         + f" | {r['enc_MBps']:.2f} | {r['dec_MBps']:.2f} | {_fmt(r.get('enc_vs_SZ3'), '.3f')} | "
                         f"{_fmt(r.get('dec_vs_SZ3'), '.3f')} | "
                         + " | ".join(_fmt(c.get(f"x_{a}"), ".2f") + ("*" if c.get(f"{a}_extrap") else "")
                                      for a in ANCHORS) + " |")
        lines += ["", "### Bounded (absolute bound in log10, vs SPERR and SZ3 at the same bound; network chosen: frames "
                  "of the chunks that kept the network's prediction)", "",
                  "| model | abs | predictor | network chosen | ratio | agg | median | SPERR | ours/SPERR | SZ3 | "
                  "ours/SZ3 | enc/SZ3 | dec/SZ3 |", "|---" * 13 + "|"]
        for r in s["bounded"]:
            lines.append(f"| {r['method']} | {r['bound']:g} | {r['predictor']} | {r['network_frames']}/{r['frames']} | {r['ratio']:.1f} | {r['agg']:.4f} | "
                         f"{r['median']:.4f} | {_fmt(r.get('SPERR'), '.1f')} | {_fmt(r.get('x_SPERR'), '.2f')} | "
                         f"{_fmt(r.get('SZ3'), '.1f')} | {_fmt(r.get('x_SZ3'), '.2f')} | "
                         f"{_fmt(r.get('enc_vs_SZ3'), '.3f')} | {_fmt(r.get('dec_vs_SZ3'), '.3f')} |")
        lines += ["", "### Anchor sweeps", "", "| codec | bound | ratio | agg | median | enc MB/s | dec MB/s |",
                  "|---" * 7 + "|"]
        for r in s["rows"]:
            if r["kind"] == "anchor":
                lines.append(f"| {r['method']} | {r['bound']:.4g} | {r['ratio']:.1f} | {r['agg']:.4f} | "
                             f"{r['median']:.4f} | {r['enc_MBps']:.1f} | {r['dec_MBps']:.1f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def plots(result: dict, prefix: str) -> list[str]:
    """One figure per error statistic (aggregate, median), a panel per data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for key in ("agg", "median"):
        sets = list(result["sets"].items())
        fig, axes = plt.subplots(1, len(sets), figsize=(5.6 * len(sets), 4.4), squeeze=False)
        for ax, (set_name, s) in zip(axes[0], sets):
            rows = [r for r in s["rows"] if r[key] > 0]
            for c in ANCHORS:
                pts = curve([(r[key], r["ratio"]) for r in rows if r["kind"] == "anchor" and r["method"] == c
                             and r["sweep"]])
                ax.plot(pts[:, 0], pts[:, 1], "o--", ms=3, label=c)
            for m in dict.fromkeys(r["method"] for r in rows if r["kind"] == "pure"):
                for gate, style in (("off", "s-"), ("default", "^:")):
                    pts = sorted((r[key], r["ratio"]) for r in rows if r["kind"] == "pure" and r["method"] == m
                                 and r["gate"] == gate)
                    ax.plot(*zip(*pts), style, ms=5, label=f"{m} pure, gate {gate}")
            for t in result["targets"]:
                ax.axvline(t, color="0.8", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(f"offset-free log10 rel L2 ({'aggregate' if key == 'agg' else 'median over frames'})")
            ax.set_ylabel("compression ratio")
            ax.set_title(SET_TITLES.get(set_name, set_name), fontsize=9)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = f"{prefix}_{key}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def save(result: dict, outdir, tag: str, command: str) -> list:
    return report.save(result, outdir, f"rd_{tag}", command, to_markdown=markdown, to_plots=plots)
