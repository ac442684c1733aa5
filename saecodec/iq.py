"""Azimuthal averages I(q) and how far a decoded frame moved them: the one home of the
radial profile, the beam centre and the I(q) deviations that ``saecodec verify``, the bench
suites and the benchmark scripts report (numpy only; pyFAI's integrator, used by verify
when the geometry is known, lives in :mod:`saecodec.files.iq`).

Why several deviations: each answers another question. :func:`profile_rel_l2` (verify)
is one number per frame, weighted like the profile itself; :func:`max_rel_deviation`
(bench) is the worst bin where there is signal; :func:`sigma_deviation` (counting data)
is the change of each bin in units of its own Poisson error, the scale a scientist judges
a count rate by.
"""

from __future__ import annotations

import numpy as np

SIGNAL_OVER_BACKGROUND = 3.0  # bins counted as signal: I(q) above 3 x background
BACKGROUND_PERCENTILE = 5  # background of a frame without one given: its 5th percentile


def beam_centre(frame: np.ndarray, valid: np.ndarray | None = None) -> tuple[float, float]:
    """(row, col) of the intensity-weighted centre of what stands above the frame's median:
    the direct beam and the scattering around it, not the flat background (which would pull
    the centre to the middle of the detector). The middle of the frame when nothing does."""
    f = np.asarray(frame, dtype=np.float64)
    ok = np.isfinite(f) if valid is None else (np.asarray(valid, bool) & np.isfinite(f))
    h, w = f.shape
    if not ok.any():
        return (h - 1) / 2, (w - 1) / 2
    wgt = np.where(ok, np.clip(f - np.median(f[ok]), 0, None), 0.0)
    total = wgt.sum()
    if not total > 0:
        return (h - 1) / 2, (w - 1) / 2
    yy, xx = np.indices(f.shape)
    return float((yy * wgt).sum() / total), float((xx * wgt).sum() / total)


def pixel_radius(shape, centre) -> np.ndarray:
    """Distance of each pixel from ``centre`` in pixels: |q| up to a constant, for frames
    without a geometry."""
    yy, xx = np.indices(tuple(shape))
    return np.hypot(yy - centre[0], xx - centre[1])


def pixel_q(frames: np.ndarray) -> np.ndarray:
    """|q| stand-in for frames (N, h, w) without q axes: the pixel radius around each
    frame's :func:`beam_centre`, plus half a pixel so that log-spaced bins start above 0."""
    return np.stack([pixel_radius(f.shape, beam_centre(f)) + 0.5 for f in np.asarray(frames)])


def bin_index(q: np.ndarray, bins: int | None = None, spacing: str = "log") -> tuple[np.ndarray, int]:
    """(bin of each element of ``q``, number of bins). ``spacing``: ``"log"`` (``bins``
    geometric bins over the upper three decades of q), ``"linear"`` (``bins`` equal bins from
    min to max) or ``"pixel"`` (1-pixel rings: q is a radius in pixels). Non-finite q go to
    bin 0; callers mask them."""
    q = np.asarray(q, dtype=np.float64)
    fin = np.isfinite(q)
    if not fin.any():
        return np.zeros(q.shape, np.intp), 1
    lo, hi = float(q[fin].min()), float(q[fin].max())
    if spacing == "pixel":
        edges = np.arange(0, np.ceil(hi) + 2)
    elif spacing == "linear":
        edges = np.linspace(lo, hi, bins + 1)
    elif spacing == "log":
        edges = np.geomspace(max(lo, hi * 1e-3, np.finfo(float).tiny), hi * (1 + 1e-9), bins + 1)
    else:
        raise ValueError(f"unknown bin spacing {spacing!r}")
    n = len(edges) - 1
    idx = np.clip(np.searchsorted(edges, np.where(fin, q, edges[0]), side="right") - 1, 0, n - 1)
    return idx, n


def bin_sums(values: np.ndarray, idx: np.ndarray, nbins: int, valid: np.ndarray | None = None):
    """Per bin: (pixels, sum, sum of squares) of the finite, valid ``values``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    ok = np.isfinite(v) if valid is None else (np.asarray(valid, bool).ravel() & np.isfinite(v))
    i = np.asarray(idx).ravel()[ok]
    v = v[ok]
    return (np.bincount(i, minlength=nbins).astype(np.float64), np.bincount(i, v, nbins),
            np.bincount(i, v * v, nbins))


def mean_profile(n: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The azimuthal average from :func:`bin_sums`; NaN where a bin has no pixel."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def radial_profiles(frames: np.ndarray, q: np.ndarray, bins: int = 24) -> np.ndarray:
    """I(q) (N, bins) of frames (N, h, w) on log-spaced |q| bins of each frame; NaN for empty bins."""
    out = np.full((len(frames), bins), np.nan)
    for i, (f, qi) in enumerate(zip(frames, q)):
        idx, nb = bin_index(qi, bins, "log")
        n, s, _ = bin_sums(f, idx, nb)
        out[i] = mean_profile(n, s)
    return out


# -- deviations -----------------------------------------------------------------------
def profile_rel_l2(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Per profile (last axis: bins), ||py - px|| / ||px|| over the bins both have; 0 for
    an all-zero original."""
    px, py = np.atleast_2d(px), np.atleast_2d(py)
    ok = np.isfinite(px) & np.isfinite(py)
    num = np.sqrt(np.where(ok, (py - px) ** 2, 0).sum(axis=-1))
    den = np.sqrt(np.where(ok, px ** 2, 0).sum(axis=-1))
    return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def background_of(frames: np.ndarray) -> np.ndarray:
    """Per frame (N, h, w), the 5th percentile of its finite values."""
    flat = np.asarray(frames, dtype=np.float64).reshape(len(frames), -1)
    return np.nanpercentile(np.where(np.isfinite(flat), flat, np.nan), BACKGROUND_PERCENTILE, axis=1)


def max_rel_deviation(x: np.ndarray, y: np.ndarray, q: np.ndarray, background: np.ndarray | None = None,
                      bins: int = 24) -> np.ndarray:
    """Per frame (N, h, w), the largest |I_y(q) - I_x(q)| / |I_x(q)| over the log-spaced bins
    where I_x(q) > 3 x background (default: :func:`background_of` x); NaN for a frame with no
    such bin. Pixels not finite in ``x`` are left out of both profiles."""
    x = np.asarray(x, dtype=np.float64)
    y = np.where(np.isfinite(x), np.asarray(y, dtype=np.float64), np.nan)
    bg = background_of(x) if background is None else np.asarray(background, dtype=np.float64)
    px, py = radial_profiles(x, q, bins), radial_profiles(y, q, bins)
    signal = (px > SIGNAL_OVER_BACKGROUND * bg[:, None]) & (px != 0) & np.isfinite(px)
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = np.where(signal, np.abs(py - px) / np.where(signal, np.abs(px), 1.0), -np.inf)
    worst = dev.max(axis=1)
    return np.where(np.isfinite(worst), worst, np.nan)


def sigma_deviation(n: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """For counting data, per bin with counts: |mean_y - mean_x| in units of the bin mean's
    Poisson error sqrt(sum x) / n, from :func:`bin_sums` of the original and the decoded."""
    ok = (n > 0) & (sx > 0)
    return np.abs(sy[ok] - sx[ok]) / np.sqrt(sx[ok])


def poisson_error(n: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The Poisson error of each bin's mean count, sqrt(sum) / n (NaN for empty bins)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.sqrt(np.clip(s, 0, None)) / np.maximum(n, 1), np.nan)


def standard_error(n: np.ndarray, s: np.ndarray, ss: np.ndarray) -> np.ndarray:
    """The standard error of each bin's mean from the spread of its pixels, std / sqrt(n)
    (for data that are no counts; NaN for bins of fewer than 2 pixels)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / np.maximum(n, 1)
        var = np.clip(ss / np.maximum(n, 1) - mean ** 2, 0, None) * n / np.maximum(n - 1, 1)
        return np.where(n > 1, np.sqrt(var / np.maximum(n, 1)), np.nan)
