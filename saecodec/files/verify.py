"""``saecodec verify ORIGINAL COMPRESSED``: did the compression keep its promises?

Per compressed dataset: ratio (stored bytes from the chunk index or the chunk files),
max and mean absolute error, whether the stated bound holds on every element (every bound
mode: abs, rel per padded chunk, pwrel and poisson per element), whether NaN/inf/masked
elements (as the codec's options mask them) came back exactly, how many frames fell back
to bounded coding (when payloads record it), and the azimuthally averaged I(q) of
original against decompressed (:mod:`.iq`). Chunks are compared in parallel, one chunk in
memory per worker.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .. import iq as core_iq
from ..errors import SaecodecError
from . import inputs, iq, sources, stored
from .parallel import Pool


def fallback_frames(payload: bytes) -> int:
    """Frames of a chunk that the pure mode's quality gate coded in the bounded mode instead."""
    from ..chunk import fallback_frames as count

    return count(payload)


def _abs_bound(spec: dict, x: np.ndarray, valid: np.ndarray) -> float | None:
    """The bound in the array's units for this chunk; None for a mode not checked here."""
    eb, mode = spec.get("error_bound"), spec.get("bound_mode", "abs")
    if eb is None:
        return None
    if mode == "abs":
        return float(eb)
    if mode == "rel":  # the codec's convention: the range of the padded chunk's valid values
        vals = x[valid]
        with np.errstate(over="ignore"):
            return float(eb) * (float(vals.max()) - float(vals.min())) if vals.size else 0.0
    return None


def _pointwise_bound(spec: dict, x: np.ndarray) -> np.ndarray | None:
    """Per element (x: the valid elements as float64), the bound of the pointwise modes as
    ``saecodec.bound`` states them: pwrel eb |x| (zeros stay zero); poisson eb sqrt(max(x, 1))
    on counts (integer-valued x >= 0), anything else exact. None for the other modes."""
    eb, mode = spec.get("error_bound"), spec.get("bound_mode", "abs")
    if eb is None or mode not in ("pwrel", "poisson"):
        return None
    if mode == "pwrel":
        return float(eb) * np.abs(x)
    counts = (x >= 0) & (x == np.rint(x))
    return np.where(counts, float(eb) * np.sqrt(np.maximum(x, 1.0)), 0.0)


def _masked(spec: dict, padded: np.ndarray) -> np.ndarray:
    """The elements the codec stores exactly, found as the codec finds them (NaN/inf, every
    ``mask_values`` sentinel, ``mask_below``, the codec's boolean ``mask``) on the padded chunk."""
    from ..coding import mask
    from ..options import CodecOptions

    return mask.find(np.ascontiguousarray(padded), CodecOptions.from_config(spec))


def compare_job(job) -> dict:
    orig, comp, offset, geo = job
    r = sources.region(offset, comp.shape, comp.chunks)
    x = np.asarray(orig.read(r)).astype(comp.dtype, copy=False)
    payload = comp.payload(offset) if comp.direct else None
    d = comp.decoded(offset)
    spec = comp.spec or {}
    padded = sources.pad(x, comp.chunks, comp.fill)
    pspecial = _masked(spec, padded)
    special = pspecial[tuple(slice(0, n) for n in x.shape)]
    valid = ~special
    same = (x == d) | (np.isnan(x) & np.isnan(d)) if x.dtype.kind == "f" else x == d
    err = np.abs(d[valid].astype(np.float64) - x[valid].astype(np.float64))
    xv = x[valid].astype(np.float64)
    out = {"n": int(err.size), "max": float(err.max()) if err.size else 0.0, "sum": float(err.sum()),
           "sq": float((err ** 2).sum()), "ref_sq": float((xv ** 2).sum()),
           "special_wrong": int((special & ~same).sum()), "violations": None, "bound": None,
           "fallback": fallback_frames(payload) if payload is not None else None}
    eb = _abs_bound(spec, padded.astype(np.float64), ~pspecial)
    tol = _pointwise_bound(spec, xv)
    if eb is not None:
        out["bound"] = eb
        out["violations"] = int((err > eb).sum())
    elif tol is not None:  # pwrel / poisson: each element's own bound; poisson's counts stay integers
        bad = err > tol
        if spec.get("bound_mode") == "poisson":
            dv = d[valid].astype(np.float64)
            bad |= (tol > 0) & (dv != np.rint(dv))
        out["bound"] = float(tol.max()) if tol.size else 0.0
        out["violations"] = int(bad.sum())
    planes_x = x.reshape((-1,) + x.shape[-2:])
    planes_d = d.reshape((-1,) + x.shape[-2:])
    planes_s = special.reshape((-1,) + x.shape[-2:])
    out["offset"], out["lead"] = tuple(offset), x.shape[:-2]
    out["tot_x"] = np.array([a[~s].sum(dtype=np.float64) for a, s in zip(planes_x, planes_s)])
    out["tot_d"] = np.array([a[~s].sum(dtype=np.float64) for a, s in zip(planes_d, planes_s)])
    if geo is not None:
        prof = iq.profiler(geo, x.shape[-2:])
        px = np.array([prof.profile(a, s) for a, s in zip(planes_x, planes_s)])
        pd = np.array([prof.profile(a, s) for a, s in zip(planes_d, planes_s)])
        ok = np.isfinite(px) & np.isfinite(pd)
        out["iq_dev"] = core_iq.profile_rel_l2(px, pd)
        out["iq_sum_x"] = np.where(ok, px, 0).sum(axis=0)
        out["iq_sum_d"] = np.where(ok, pd, 0).sum(axis=0)
    return out


def geometry_for(original, kind: str, comp: stored.Stored, orig_source, poni=None) -> iq.Geometry:
    if poni:
        return iq.Geometry("pyFAI", poni=str(poni))
    # the original's geometry; for images, the one compress wrote from their headers
    where = (original, orig_source.name) if kind == "hdf5" else (comp.path, comp.name) if comp.kind == "hdf5" \
        else None
    if where is not None:
        with inputs.open_hdf5(where[0]) as f:
            geo = iq.nexus_geometry(f, where[1]) or iq.cansas_geometry(f, where[1])
        if geo is not None:
            iq.check_geometry(geo, comp.shape[-2:])
            return geo
    first = np.asarray(orig_source.read(sources.region((0,) * len(comp.shape), comp.shape, comp.chunks)),
                       dtype=np.float64)
    frame = first.reshape((-1,) + first.shape[-2:]).mean(axis=0)
    return iq.radius_geometry(frame)


def _pairs(original, compressed_path):
    comps = stored.compressed(compressed_path)
    if not comps:
        raise SaecodecError(f"{compressed_path}: no saecodec-compressed dataset")
    kind = inputs.input_kind(original)
    if kind == "images":
        if len(comps) != 1:
            raise SaecodecError(f"{compressed_path}: {len(comps)} compressed datasets; an image stack matches one")
        return kind, [(inputs.image_stack(original), comps[0])]
    _, origs = inputs.targets(original, [c.name for c in comps] if kind in ("hdf5", "zarr") else None)
    return kind, list(zip(origs, comps))


IQ_TOLERANCE = 0.05  # the pure mode: largest per-frame I(q) relative L2 that passes
COUNTS_TOLERANCE = 0.01  # the pure mode on integer counts: largest per-frame change of the total


def verify(original, compressed_path, *, poni=None, iq_check: bool = True, scheduler=None,
           workers: int | None = None, iq_tolerance: float = IQ_TOLERANCE,
           counts_tolerance: float = COUNTS_TOLERANCE, plot=None) -> dict:
    """The report (a dict, see :func:`markdown`); ``report["ok"]``: every check passed.

    The pure mode promises no bound, so its datasets are held to what a scientist reads off
    them: each frame's I(q) (relative L2 of the azimuthal average, ``iq_tolerance``) and, on
    integer counts, each frame's total (``counts_tolerance``). ``plot``: a PNG of I(q)
    original against decoded, with error bars, and an error map, of each dataset's worst frame.
    """
    for name, tol in (("iq_tolerance", iq_tolerance), ("counts_tolerance", counts_tolerance)):
        if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
            raise SaecodecError(f"{name} must be a number >= 0, got {tol!r}")
    if poni is not None and not Path(poni).is_file():
        raise SaecodecError(f"{poni}: no such PONI file")
    kind, pairs = _pairs(original, compressed_path)
    report = {"original": str(original), "compressed": str(compressed_path), "datasets": [],
              "iq_tolerance": iq_tolerance, "counts_tolerance": counts_tolerance}
    geos = []
    try:
        with Pool(scheduler, workers) as pool:
            for orig, comp in pairs:
                if tuple(orig.shape) != tuple(comp.shape):
                    raise SaecodecError(f"{comp.name}: shape {comp.shape}, the original's is {orig.shape}")
                geo = geometry_for(original, kind, comp, orig, poni) if iq_check else None
                geos.append(geo)
                report["datasets"].append(_one(pool, orig, comp, geo, iq_tolerance, counts_tolerance))
        report["failed"] = [f"{c['check']} of {d['name']}" for d in report["datasets"] for c in d["checks"]
                            if not c["passed"]]
        report["ok"] = not report["failed"]
        if plot:
            from .verify_plot import plot_report

            report["plot"] = str(plot_report(report, pairs, geos, plot))
    finally:
        sources.close_handles()
    return report


def _check(name: str, value, tolerance, passed: bool, where=None, detail: str = "") -> dict:
    return {"check": name, "value": value, "tolerance": tolerance, "passed": bool(passed), "frame": where,
            "detail": detail}


def _one(pool, orig, comp, geo, iq_tol: float, counts_tol: float) -> dict:
    acc = {"n": 0, "max": 0.0, "sum": 0.0, "sq": 0.0, "ref_sq": 0.0, "special_wrong": 0}
    violations, fallback, bound_max, sx, sd = None, None, None, 0.0, 0.0
    devs, tots = [], []  # (deviation, frame index) per frame
    jobs = ((orig, comp, off, geo) for off in sources.chunk_offsets(comp.shape, comp.chunks))
    for _, res in pool.imap_unordered(compare_job, jobs):
        for k in ("n", "sum", "sq", "ref_sq", "special_wrong"):
            acc[k] += res[k]
        acc["max"] = max(acc["max"], res["max"])
        if res["violations"] is not None:
            violations = (violations or 0) + res["violations"]
            bound_max = max(bound_max or 0.0, res["bound"])
        if res["fallback"] is not None:
            fallback = (fallback or 0) + res["fallback"]
        frames = [tuple(int(o + i) for o, i in zip(res["offset"], np.unravel_index(k, res["lead"])))
                  for k in range(len(res["tot_x"]))]
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(res["tot_d"] - res["tot_x"]) / np.abs(res["tot_x"])
        rel = np.where(res["tot_x"] == res["tot_d"], 0.0, rel)
        tots += zip(rel.tolist(), frames)
        if "iq_dev" in res:
            devs += zip(res["iq_dev"].tolist(), frames)
            sx, sd = sx + res["iq_sum_x"], sd + res["iq_sum_d"]
    raw = int(np.prod(comp.shape)) * np.dtype(comp.dtype).itemsize
    nbytes = stored.stored_bytes(comp)
    spec = comp.spec or {}
    pure = spec.get("error_bound") is None
    counts = np.dtype(comp.dtype).kind in "iu"
    out = {"name": comp.name, "shape": list(comp.shape), "dtype": np.dtype(comp.dtype).name,
           "chunks": list(comp.chunks), "raw_bytes": raw, "stored_bytes": nbytes,
           "ratio": raw / nbytes if nbytes else None, "model": spec.get("model_name") or spec.get("model"),
           "error_bound": spec.get("error_bound"), "bound_mode": None if pure else spec.get("bound_mode", "abs"),
           "max_abs_error": acc["max"], "mean_abs_error": acc["sum"] / max(acc["n"], 1),
           "rel_l2": math.sqrt(acc["sq"] / acc["ref_sq"]) if acc["ref_sq"] else 0.0,
           "bound_holds": None if violations is None else violations == 0, "violations": violations,
           "largest_bound": bound_max, "special_exact": acc["special_wrong"] == 0,
           "special_wrong": acc["special_wrong"], "frames_fell_back": fallback}
    worst_tot = max(tots, key=lambda t: (np.nan_to_num(t[0], nan=np.inf), t[1])) if tots else (0.0, None)
    out["total_change_max"] = worst_tot[0]
    checks = []
    if violations is not None:
        checks.append(_check("bound", violations, 0, violations == 0,
                             detail=f"{violations} elements beyond {out['bound_mode']} {out['error_bound']:g}"))
    checks.append(_check("NaN/inf/masked elements", acc["special_wrong"], 0, acc["special_wrong"] == 0,
                         detail=f"{acc['special_wrong']} changed"))
    if pure and counts and tots:
        checks.append(_check("total counts", worst_tot[0], counts_tol, worst_tot[0] <= counts_tol, worst_tot[1],
                             f"moved by {_pct(worst_tot[0])} (frame {_frame(worst_tot[1])}), "
                             f"tolerance {_pct(counts_tol)}"))
    out["worst_frame"] = worst_tot[1]
    if devs:
        dev = np.array([v for v, _ in devs])
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(sd - sx) / np.abs(sx)
        rel = rel[np.isfinite(rel) & (np.abs(sx) > 0)]
        worst = max(devs, key=lambda t: (t[0], t[1]))
        out["worst_frame"] = worst[1]
        out["iq"] = {"method": geo.describe(), "frames": int(dev.size), "mean_rel_l2": float(dev.mean()),
                     "max_rel_l2": float(dev.max()), "worst_frame": list(worst[1]),
                     "mean_profile_max_rel_dev": float(rel.max()) if rel.size else 0.0}
        if pure:
            checks.append(_check("I(q)", worst[0], iq_tol, worst[0] <= iq_tol, worst[1],
                                 f"relative L2 {_pct(worst[0])} (frame {_frame(worst[1])}), "
                                 f"tolerance {_pct(iq_tol)}"))
    out["checks"] = checks
    return out


def _pct(v) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.3g}%"


def _frame(index) -> str:
    return ",".join(map(str, index)) if index else "?"


def _fmt(v, spec=".3g"):
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "**NO**"
    return format(v, spec) if isinstance(v, float) else str(v)


def markdown(report: dict) -> str:
    lines = [f"# saecodec verify: {report['compressed']} against {report['original']}", "",
             "| dataset | shape | ratio | bound | holds | max abs err | mean abs err | rel L2 | NaN/mask exact "
             "| frames fell back | total change, max | I(q) rel L2 mean / max | I(q) of the mean, max bin dev |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in report["datasets"]:
        bound = "none (pure)" if d["error_bound"] is None else f"{d['bound_mode']} {d['error_bound']:g}"
        q = d.get("iq")
        iqs = f"{q['mean_rel_l2']:.3g} / {q['max_rel_l2']:.3g}" if q else "n/a"
        lines.append(f"| {d['name']} | {'x'.join(map(str, d['shape']))} {d['dtype']} | {_fmt(d['ratio'], '.2f')} "
                     f"| {bound} | {_fmt(d['bound_holds'])} | {_fmt(d['max_abs_error'])} "
                     f"| {_fmt(d['mean_abs_error'])} | {_fmt(d['rel_l2'])} | {_fmt(d['special_exact'])} "
                     f"| {_fmt(d['frames_fell_back'])} | {_pct(d['total_change_max'])} | {iqs} "
                     f"| {_fmt(q['mean_profile_max_rel_dev']) if q else 'n/a'} |")
    lines.append("")
    for d in report["datasets"]:
        if d.get("iq"):
            lines.append(f"- {d['name']}: I(q) by {d['iq']['method']}, {d['iq']['frames']} frames")
        for c in d["checks"]:
            if c["check"] in ("I(q)", "total counts"):
                verdict = "within" if c["passed"] else "**beyond**"
                lines.append(f"- {d['name']}: {c['check']} {c['detail'].replace('tolerance', verdict + ' the tolerance')}")
        if d["bound_holds"] is False:
            lines.append(f"- **{d['name']}: the bound is broken on {d['violations']} elements**")
        if not d["special_exact"]:
            lines.append(f"- **{d['name']}: {d['special_wrong']} NaN/inf/masked elements changed**")
    if report.get("plot"):
        lines.append(f"- plot: {report['plot']}")
    lines.append("\nresult: OK" if report["ok"] else "\nresult: FAILED: " + "; ".join(report["failed"]))
    return "\n".join(lines)


def failure_lines(report: dict) -> list[str]:
    """One line per failed check, for stderr (what failed, by how much, against what)."""
    return [f"verify: {d['name']}: {c['check']} check failed: {c['detail']}" for d in report["datasets"]
            for c in d["checks"] if not c["passed"]]


def as_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=float)
