"""Every method on one dataset, through h5py's filter pipeline, in one process.

Every real codec runs into an in-memory HDF5 file, so all pay the same overhead and the
stored bytes are the chunks' bytes (each codec's per-chunk headers included). Speeds are
MB/s of raw data and, to compare across machines, ratios to SZ3's speed in the same run.
"""

from __future__ import annotations

import io
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import iq, metrics
from ..errors import LossyCountsWarning
from .baselines import dct_baseline, pca_baseline
from .datasets import Dataset
from .fits import radius_changes
from .report import versions


@dataclass
class Row:
    method: str
    setting: str
    chunking: str
    stored_bytes: int
    ratio: float
    bpp: float
    metrics: dict = field(default_factory=dict)
    enc_mbs: float | None = None
    dec_mbs: float | None = None
    enc_vs_sz3: float | None = None
    dec_vs_sz3: float | None = None
    ratio_with_model: float | None = None
    estimate: bool = False
    note: str = ""
    fallback_frames: int | None = None  # saecodec pure: frames the quality gate coded bounded
    frames_coded: int | None = None


@dataclass
class _Reference:
    """The original frames in every form the errors are measured in."""

    data: Dataset
    log: np.ndarray
    intensity: np.ndarray
    q: np.ndarray
    background: np.ndarray

    @classmethod
    def of(cls, data: Dataset) -> "_Reference":
        x = data.values
        inten = data.intensity(x)
        q = data.q if data.q is not None else iq.pixel_q(inten)
        bg = data.background if data.background is not None else iq.background_of(inten)
        return cls(data, data.log(x), inten, q, bg)

    def row(self, method, setting, chunking, size, back, t_enc=None, t_dec=None) -> Row:
        x, raw = self.data.values, self.data.values.nbytes
        met = metrics.value_metrics(x, back)
        met["rel_l2_log"] = metrics.offset_free_rel_l2(self.log, self.data.log(back))[0]
        met["rel_l2_intensity"] = metrics.rel_l2(self.intensity, self.data.intensity(back))
        dev = iq.max_rel_deviation(self.intensity, self.data.intensity(back), self.q, self.background)
        dev = dev[np.isfinite(dev)]
        met.update({"iq_dev_median": float(np.median(dev)) if dev.size else float("nan"),
                    "iq_dev_p95": float(np.percentile(dev, 95)) if dev.size else float("nan")})
        return Row(method, setting, chunking, size, raw / size if size else float("nan"), 8 * size / x.size, met,
                   raw / 1e6 / t_enc if t_enc else None, raw / 1e6 / t_dec if t_dec else None)


def h5_round_trip(values: np.ndarray, chunks: tuple, filter_kwargs: dict, stats=None,
                  clock=time.perf_counter) -> tuple[int, np.ndarray, float, float]:
    """Write and read ``values`` through h5py's filter pipeline: stored bytes, the data read
    back, encode and decode seconds (``clock``: wall, or ``time.process_time`` for CPU seconds).
    ``stats``: a list that receives each chunk's ``chunk.payload_stats`` (saecodec only)."""
    import h5py

    bio = io.BytesIO()
    t0 = clock()
    with h5py.File(bio, "w") as f:
        f.create_dataset("x", data=values, chunks=chunks, **filter_kwargs)
    t_enc = clock() - t0
    with h5py.File(bio, "r") as f:
        d = f["x"]
        t0 = clock()
        back = d[...]
        t_dec = clock() - t0
        size = int(d.id.get_storage_size())
        if stats is not None:
            from ..chunk import payload_stats

            for i in range(d.id.get_num_chunks()):
                stats.append(payload_stats(d.id.read_direct_chunk(d.id.get_chunk_info(i).chunk_offset)[1]))
    return size, back, t_enc, t_dec


def _jobs(models: list, bounds: list[float], chunkings: dict, counts: bool = False, mask_values=None) -> list[tuple]:
    """(method, setting, chunking name, chunk shape, h5py filter keywords, model or None).
    ``counts``: integer data, where the modes that keep counts (lossless, poisson) and what
    detectors write today (Bitshuffle with LZ4 or zstd) are the comparison."""
    import hdf5plugin

    from ..hdf5 import SAE

    masks = {"mask_values": list(mask_values)} if mask_values else {}
    jobs = []
    for cname, ch in chunkings.items():
        for m in models:
            jobs.append(("saecodec", f"{m.name} pure", cname, ch, SAE(model=m.identity, **masks), m))  # the gate on
            jobs.append(("saecodec", f"{m.name} pure, no gate", cname, ch,
                         SAE(model=m.identity, max_error=None, **masks), m))
            if counts:
                jobs.append(("saecodec", f"{m.name} lossless", cname, ch, SAE(model=m.identity, error_bound=0, **masks), m))
                for eb in (0.5, 1.0):
                    jobs.append(("saecodec", f"{m.name} poisson={eb:g}", cname, ch,
                                 SAE(model=m.identity, error_bound=eb, bound_mode="poisson", **masks), m))
            for eb in bounds:
                jobs.append(("saecodec", f"{m.name} abs={eb:g}", cname, ch,
                             SAE(model=m.identity, error_bound=eb, **masks), m))
        for eb in bounds:
            jobs.append(("SZ3", f"abs={eb:g}", cname, ch, hdf5plugin.SZ3(absolute=eb), None))
            if counts:  # ZFP's accuracy mode and SPERR take floats only (on int32 they fail, SPERR crashes)
                continue
            jobs.append(("ZFP", f"accuracy={eb:g}", cname, ch, hdf5plugin.Zfp(accuracy=eb), None))
            jobs.append(("SPERR", f"abs={eb:g}", cname, ch, hdf5plugin.Sperr(absolute=eb), None))
        if counts:
            jobs.append(("SZ3", "abs=0.5 (lossless on integers)", cname, ch, hdf5plugin.SZ3(absolute=0.5), None))
        jobs.append(("zstd", "level 3, lossless", cname, ch, hdf5plugin.Zstd(clevel=3), None))
        if counts:
            jobs.append(("Bitshuffle+LZ4", "lossless", cname, ch, hdf5plugin.Bitshuffle(), None))
            jobs.append(("Bitshuffle+zstd", "lossless", cname, ch, hdf5plugin.Bitshuffle(cname="zstd"), None))
    return jobs


def run(data: Dataset, models: list, bounds: list[float], stack: int = 64, fit_frames: int = 16,
        pca_train: np.ndarray | None = None, progress: bool = True, baselines: bool = True,
        mask_values=None) -> dict:
    """All methods on ``data``; ``models`` are Model objects remembered in this process
    (``model_store.remember``), so that the HDF5 filter finds them by identity. Integer
    counts add the lossless and poisson modes and Bitshuffle; DCT and PCA (float estimates)
    are left out for them. ``mask_values``: sentinels saecodec stores exactly."""
    x = data.values
    n, h, w = x.shape
    ref = _Reference.of(data)
    chunkings = {"1 frame": (1, h, w), f"{min(stack, n)} frames": (min(stack, n), h, w)}
    model_bytes = {m.identity: len(m.to_bytes()) for m in models}  # what a reader must also hold
    counts = x.dtype.kind in "iu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LossyCountsWarning)  # the pure mode on counts is measured on purpose
        rows, recon = _run_jobs(ref, _jobs(models, bounds, chunkings, counts, mask_values), model_bytes, progress)
    _speed_ratios(rows)
    if baselines and not counts:
        rows += _baseline_rows(ref, models, rows, recon, pca_train)
    fits = radius_changes(data, recon, fit_frames) if data.sim is not None and fit_frames else {}
    for r in rows:
        r.metrics.update(fits.get((r.method, r.setting, r.chunking), {}))
    return {"rows": [asdict(r) for r in rows], "dataset": data.name, "domain": data.domain, "frames": n,
            "frame_shape": [h, w], "raw_bytes": x.nbytes, "dtype": x.dtype.name,
            "mask_values": list(mask_values) if mask_values else [], "versions": versions(),
            "date": time.strftime("%Y-%m-%d %H:%M")}


def _run_jobs(ref: _Reference, jobs: list, model_bytes: dict, progress: bool) -> tuple[list, dict]:
    """Each job through h5py: its row and its reconstruction."""
    from tqdm.auto import tqdm

    x = ref.data.values
    rows: list[Row] = []
    recon: dict[tuple, np.ndarray] = {}
    for method, setting, cname, ch, kw, model in tqdm(jobs, desc="bench", unit="run", disable=not progress):
        stats = [] if model is not None else None
        try:
            size, back, te, td = h5_round_trip(x, ch, dict(kw), stats)
        except Exception as e:  # noqa: BLE001 - a baseline that fails is reported, not fatal
            rows.append(Row(method, setting, cname, 0, float("nan"), float("nan"), note=f"failed: {e}"))
            continue
        r = ref.row(method, setting, cname, size, back, te, td)
        if model is not None:
            r.ratio_with_model = x.nbytes / (size + model_bytes[model.identity])
            r.fallback_frames = sum(s["fallback_frames"] for s in stats)
            r.frames_coded = sum(s["frames"] for s in stats)
        rows.append(r)
        recon[(method, setting, cname)] = back
    return rows, recon


def _baseline_rows(ref: _Reference, models: list, rows: list[Row], recon: dict, pca_train) -> list[Row]:
    """DCT and PCA at each model's pure error (the L1 paper's comparison)."""
    out = []
    log_x, data = ref.log, ref.data
    for m in models:
        pure = next((r for r in rows if r.method == "saecodec" and r.setting == f"{m.name} pure"), None)
        if pure is None or "rel_l2_log" not in pure.metrics:
            continue
        target = pure.metrics["rel_l2_log"]
        rec, nbytes = dct_baseline(log_x, target)
        out.append(_estimate(ref, "DCT 8x8", f"matching {m.name} (rel L2 {target:.3f})", nbytes, data.from_log(rec),
                             recon))
        train = data.log(pca_train) if pca_train is not None else log_x[: max(len(log_x) // 2, 1)]
        rec, nbytes, k, basis = pca_baseline(train, log_x, target)
        row = _estimate(ref, "PCA", f"k={k}, matching {m.name}", nbytes, data.from_log(rec), recon)
        row.ratio_with_model = data.values.nbytes / (nbytes + basis)
        out.append(row)
    return out


def _estimate(ref: _Reference, method: str, setting: str, nbytes: float, back: np.ndarray, recon: dict) -> Row:
    r = ref.row(method, setting, "per frame", int(round(nbytes)), back)
    r.estimate = True
    recon[(method, setting, "per frame")] = back
    return r


def _speed_ratios(rows: list[Row]) -> None:
    """Speed relative to SZ3 in the same chunking at the same bound (pure: SZ3's loosest bound)."""
    for r in rows:
        if r.enc_mbs is None or r.method == "SZ3":
            continue
        eb = r.setting.split("=")[-1] if "=" in r.setting else None
        sz = [s for s in rows if s.method == "SZ3" and s.chunking == r.chunking and s.enc_mbs]
        best = next((s for s in sz if eb and s.setting == f"abs={eb}"), sz[0] if sz else None)
        if best is not None:
            r.enc_vs_sz3 = r.enc_mbs / best.enc_mbs
            r.dec_vs_sz3 = r.dec_mbs / best.dec_mbs
