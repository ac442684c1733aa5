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

import numpy as np

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
    if geo is not None:
        prof = iq.profiler(geo, x.shape[-2:])
        planes_x = x.reshape((-1,) + x.shape[-2:])
        planes_d = d.reshape((-1,) + x.shape[-2:])
        planes_s = special.reshape((-1,) + x.shape[-2:])
        px = np.array([prof.profile(a, s) for a, s in zip(planes_x, planes_s)])
        pd = np.array([prof.profile(a, s) for a, s in zip(planes_d, planes_s)])
        ok = np.isfinite(px) & np.isfinite(pd)
        num = np.sqrt(np.where(ok, (pd - px) ** 2, 0).sum(axis=1))
        den = np.sqrt(np.where(ok, px ** 2, 0).sum(axis=1))
        out["iq_dev"] = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
        out["iq_sum_x"] = np.where(ok, px, 0).sum(axis=0)
        out["iq_sum_d"] = np.where(ok, pd, 0).sum(axis=0)
    return out


def geometry_for(original, kind: str, comp: stored.Stored, orig_source, poni=None) -> iq.Geometry:
    if poni:
        return iq.Geometry("pyFAI", poni=str(poni))
    if kind == "hdf5":
        import h5py

        with h5py.File(original, "r") as f:
            geo = iq.nexus_geometry(f, orig_source.name) or iq.cansas_geometry(f, orig_source.name)
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


def verify(original, compressed_path, *, poni=None, iq_check: bool = True, scheduler=None,
           workers: int | None = None) -> dict:
    kind, pairs = _pairs(original, compressed_path)
    report = {"original": str(original), "compressed": str(compressed_path), "datasets": []}
    try:
        with Pool(scheduler, workers) as pool:
            for orig, comp in pairs:
                if tuple(orig.shape) != tuple(comp.shape):
                    raise SaecodecError(f"{comp.name}: shape {comp.shape}, the original's is {orig.shape}")
                geo = geometry_for(original, kind, comp, orig, poni) if iq_check else None
                report["datasets"].append(_one(pool, orig, comp, geo))
    finally:
        sources.close_handles()
    report["ok"] = all(d["bound_holds"] is not False and d["special_exact"] for d in report["datasets"])
    return report


def _one(pool, orig, comp, geo) -> dict:
    acc = {"n": 0, "max": 0.0, "sum": 0.0, "sq": 0.0, "ref_sq": 0.0, "special_wrong": 0}
    violations, fallback, bound_max, devs, sx, sd = None, None, None, [], 0.0, 0.0
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
        if "iq_dev" in res:
            devs.append(res["iq_dev"])
            sx, sd = sx + res["iq_sum_x"], sd + res["iq_sum_d"]
    raw = int(np.prod(comp.shape)) * np.dtype(comp.dtype).itemsize
    nbytes = stored.stored_bytes(comp)
    spec = comp.spec or {}
    out = {"name": comp.name, "shape": list(comp.shape), "dtype": np.dtype(comp.dtype).name,
           "chunks": list(comp.chunks), "raw_bytes": raw, "stored_bytes": nbytes,
           "ratio": raw / nbytes if nbytes else None, "model": spec.get("model_name") or spec.get("model"),
           "error_bound": spec.get("error_bound"), "bound_mode": spec.get("bound_mode") if spec.get("error_bound")
           is not None else None, "max_abs_error": acc["max"], "mean_abs_error": acc["sum"] / max(acc["n"], 1),
           "rel_l2": math.sqrt(acc["sq"] / acc["ref_sq"]) if acc["ref_sq"] else 0.0,
           "bound_holds": None if violations is None else violations == 0, "violations": violations,
           "largest_bound": bound_max, "special_exact": acc["special_wrong"] == 0,
           "special_wrong": acc["special_wrong"], "frames_fell_back": fallback}
    if devs:
        dev = np.concatenate(devs)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(sd - sx) / np.abs(sx)
        rel = rel[np.isfinite(rel) & (np.abs(sx) > 0)]
        out["iq"] = {"method": geo.describe(), "frames": int(dev.size), "mean_rel_l2": float(dev.mean()),
                     "max_rel_l2": float(dev.max()), "mean_profile_max_rel_dev": float(rel.max()) if rel.size else 0.0}
    return out


def _fmt(v, spec=".3g"):
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "**NO**"
    return format(v, spec) if isinstance(v, float) else str(v)


def markdown(report: dict) -> str:
    lines = [f"# saecodec verify: {report['compressed']} against {report['original']}", "",
             "| dataset | shape | ratio | bound | holds | max abs err | mean abs err | rel L2 | NaN/mask exact "
             "| frames fell back | I(q) rel L2 mean / max | I(q) of the mean, max bin dev |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in report["datasets"]:
        bound = "none (pure)" if d["error_bound"] is None else f"{d['bound_mode']} {d['error_bound']:g}"
        q = d.get("iq")
        iqs = f"{q['mean_rel_l2']:.3g} / {q['max_rel_l2']:.3g}" if q else "n/a"
        lines.append(f"| {d['name']} | {'x'.join(map(str, d['shape']))} {d['dtype']} | {_fmt(d['ratio'], '.2f')} "
                     f"| {bound} | {_fmt(d['bound_holds'])} | {_fmt(d['max_abs_error'])} "
                     f"| {_fmt(d['mean_abs_error'])} | {_fmt(d['rel_l2'])} | {_fmt(d['special_exact'])} "
                     f"| {_fmt(d['frames_fell_back'])} | {iqs} "
                     f"| {_fmt(q['mean_profile_max_rel_dev']) if q else 'n/a'} |")
    lines.append("")
    for d in report["datasets"]:
        if d.get("iq"):
            lines.append(f"- {d['name']}: I(q) by {d['iq']['method']}, {d['iq']['frames']} frames")
        if d["bound_holds"] is False:
            lines.append(f"- **{d['name']}: the bound is broken on {d['violations']} elements**")
        if not d["special_exact"]:
            lines.append(f"- **{d['name']}: {d['special_wrong']} NaN/inf/masked elements changed**")
    lines.append(f"\nresult: {'OK' if report['ok'] else 'FAILED'}")
    return "\n".join(lines)


def as_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=float)
