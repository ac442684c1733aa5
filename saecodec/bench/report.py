"""The bench's outputs: a markdown table, the JSON of every row, two rate-distortion plots."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

import numpy as np


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
           "cpus": os.cpu_count()}
    for pkg in ("saecodec", "torch", "numpy", "h5py", "hdf5plugin", "zarr", "numcodecs", "constriction", "sasmodels"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    try:
        import torch

        out["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001
        out["cuda"] = None
    return out


def _fmt(v, spec=".3g"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def markdown(result: dict, command: str = "") -> str:
    v = result["versions"]
    lines = [
        f"# saecodec bench, {result['date']}",
        "",
        f"Command: `{command}`" if command else "",
        f"Dataset: {result['dataset']} ({result['frame_shape'][0]}x{result['frame_shape'][1]}, "
        f"{result['domain']} values, {result['raw_bytes'] / 1e6:.1f} MB raw {result.get('dtype', 'float32')}"
        + (f", masked {result['mask_values']}" if result.get("mask_values") else "") + ")",
        f"Machine: {v['machine']}, {v['cpus']} CPUs, GPU: {v['cuda'] or 'none'}; "
        + ", ".join(f"{k} {v[k]}" for k in ("python", "saecodec", "torch", "h5py", "hdf5plugin", "constriction",
                                              "sasmodels") if v.get(k)),
        "",
        "Ratio: raw bytes / stored chunk bytes (codec headers included; * = estimate, no container). "
        "max|e| and PSNR in the compressed values' units; rel L2 log: the papers' metric on per-frame "
        "normalised log frames; rel L2 I: in intensity. I(q): max relative deviation of the azimuthal "
        "average where I > 3 x background (median over frames). R fit: median relative change of the "
        "fitted sphere radius. Speeds: MB/s of raw data through h5py, and x SZ3 at the same bound. "
        "saecodec pure: with the quality gate at its default max_error (fell back: frames it coded in the "
        "bounded mode, of all frames), and without it.",
        "",
        "| method | setting | chunks | ratio | ratio+model | bpp | max abs err | PSNR | rel L2 log | rel L2 I "
        "| I(q) dev | R fit dev | enc MB/s | dec MB/s | enc/SZ3 | dec/SZ3 | fell back |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        m = r["metrics"]
        lines.append("| " + " | ".join([
            r["method"], r["setting"], r["chunking"], _fmt(r["ratio"], ".1f") + ("*" if r["estimate"] else ""),
            _fmt(r["ratio_with_model"], ".1f"), _fmt(r["bpp"], ".2f"), _fmt(m.get("max_abs")), _fmt(m.get("psnr"), ".1f"),
            _fmt(m.get("rel_l2_log")), _fmt(m.get("rel_l2_intensity")), _fmt(m.get("iq_dev_median")),
            _fmt(m.get("fit_radius_dev_median")), _fmt(r["enc_mbs"], ".0f"), _fmt(r["dec_mbs"], ".0f"),
            _fmt(r["enc_vs_sz3"], ".2f"), _fmt(r["dec_vs_sz3"], ".2f"), _fallback(r)]) + " |"
            + (f" {r['note']}" if r["note"] else ""))
    return "\n".join(lines) + "\n"


def _fallback(r: dict) -> str:
    if r.get("fallback_frames") is None or "pure" not in r["setting"] or "no gate" in r["setting"]:
        return "-"
    return f"{r['fallback_frames']}/{r['frames_coded']}"


def _label(r: dict) -> str:
    if r["method"] != "saecodec":
        return r["method"]
    s = r["setting"]
    kind = ("pure, no gate" if "no gate" in s else "pure") if " pure" in s else \
        "lossless" if s.endswith(" lossless") else "poisson" if "poisson=" in s else "bounded"
    return f"saecodec {kind} ({s.split()[0]})"


def points(result: dict, cname: str, xkey: str, ykey: str, logx: bool) -> tuple[dict, dict]:
    """(label -> [(x, y)] of lossy results, label -> [(x, y)] of exact ones) in the
    chunking ``cname``. Exact (lossless) results have no finite PSNR and no positive error,
    so they are placed at the plot's edge: on the log error axis a decade left of the smallest
    non-zero error, on the PSNR axis 10 dB above the best finite one."""
    groups: dict = {}
    exact: dict = {}
    for r in result["rows"]:
        if r["chunking"] not in (cname, "per frame") or not r["stored_bytes"]:
            continue
        xv = r[xkey] if xkey in r else r["metrics"].get(xkey)
        yv = r[ykey] if ykey in r else r["metrics"].get(ykey)
        if xv is None or yv is None or np.isnan(xv) or np.isnan(yv):
            continue
        lossless = (logx and xv == 0) or (not logx and np.isinf(yv) and yv > 0)
        if not lossless and (not np.isfinite(xv) or not np.isfinite(yv)):
            continue
        (exact if lossless else groups).setdefault(_label(r), []).append((xv, yv))
    finite = [p for pts in groups.values() for p in pts]
    if logx:
        edge = min([p[0] for p in finite if p[0] > 0] or [1e-3]) / 10
        exact = {lab: [(edge, y) for _, y in v] for lab, v in exact.items()}
    else:
        edge = max([p[1] for p in finite] or [0.0]) + 10
        exact = {lab: [(x, edge) for x, _ in v] for lab, v in exact.items()}
    return groups, exact


def plots(result: dict, prefix) -> list:
    """PSNR against bits per pixel, and ratio against relative L2 (log-log); exact results as
    stars at the edge (:func:`points`), labelled, so that lossless ones do not vanish."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for xkey, ykey, xlabel, ylabel, logx, name in (
            ("bpp", "psnr", "bits per pixel", "PSNR (dB)", False, "psnr_bpp"),
            ("rel_l2_log", "ratio", "relative L2 (log domain, per-frame normalised)", "compression ratio", True,
             "ratio_rel_l2")):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
        chunkings = sorted({r["chunking"] for r in result["rows"] if r["chunking"] != "per frame"})
        for ax, cname in zip(axes, chunkings):
            groups, exact = points(result, cname, xkey, ykey, logx)
            for label, pts in sorted(groups.items()):
                pts.sort()
                ax.plot(*zip(*pts), "o-" if len(pts) > 1 else "s", label=label)
            if exact:
                edge = next(iter(exact.values()))[0][0 if logx else 1]
                if logx:
                    ax.axvline(edge, color="0.6", lw=0.8, ls=":")
                    ax.annotate("exact (0)", (edge, 1), xycoords=("data", "axes fraction"), fontsize=7,
                                ha="left", va="top", rotation=90, color="0.4")
                else:
                    ax.axhline(edge, color="0.6", lw=0.8, ls=":")
                    ax.annotate("exact (PSNR infinite)", (0, edge), xycoords=("axes fraction", "data"), fontsize=7,
                                va="bottom", color="0.4")
                for label, pts in sorted(exact.items()):
                    ax.plot(*zip(*sorted(pts)), "*", ms=11, label=f"{label}, exact")
            ax.set_title(cname)
            ax.set_xlabel(xlabel)
            if logx:
                ax.set_xscale("log")
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(ylabel)
        axes[-1].legend(fontsize=7)
        fig.suptitle(f"{result['dataset']} ({result['domain']})", fontsize=9)
        fig.tight_layout()
        path = f"{prefix}_{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def save(result: dict, outdir, tag: str, command: str, *, to_markdown=None, to_plots=None) -> list:
    """``tag``.json, ``tag``.md and the plots in ``outdir``; ``command``: the command line that ran.
    Other suites pass their own ``to_markdown(result, command)`` and ``to_plots(result, prefix)``."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    result = {**result, "command": command}
    (outdir / f"{tag}.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    (outdir / f"{tag}.md").write_text((to_markdown or markdown)(result, command))
    return [outdir / f"{tag}.json", outdir / f"{tag}.md", *(to_plots or plots)(result, str(outdir / tag))]
