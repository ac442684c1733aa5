"""Where each pixel sits in q, and which pixels a detector cannot measure.

q is exact 2-theta from pixel size, sample distance and wavelength (not the small-angle
approximation): wide-angle corners of a SAXS frame are where the approximation fails.
"""

from __future__ import annotations

import numpy as np

from .config import BEAMSTOP, DEAD, GAP, HOT, pick


def pixels(rows, cols, geom):
    """qx, qy, |q| (1/A, exact 2-theta, never 0) and cos(2-theta) at pixel indices.

    |q| = 4 pi / wavelength sin(theta) with sin(theta) = r / sqrt(2 R (R + L)), R = sqrt(r^2 + L^2):
    the same as sin(atan(r / L) / 2), without its rounding at small angles.
    """
    cy, cx = geom["center"]
    p, dist = geom["pixel_size"], geom["distance"]
    y = ((np.asarray(rows, float) - cy) * p)[:, None]
    x = ((np.asarray(cols, float) - cx) * p)[None, :]
    x = np.where((x == 0) & (y == 0), 1e-6 * p, x)
    big_r = np.sqrt(x * x + y * y + dist * dist)
    k = 4 * np.pi / geom["wavelength"] / np.sqrt(2 * big_r * (big_r + dist))
    qx, qy = k * x, k * y
    return qx, qy, np.hypot(qx, qy), dist / big_r


def q_map(shape, center, pixel_size, distance, wavelength):
    """(qx, qy) maps (1/A) of a frame, as stored in each frame's metadata and the HDF5 file."""
    geom = dict(center=center, pixel_size=pixel_size, distance=distance, wavelength=wavelength)
    return pixels(np.arange(shape[0]), np.arange(shape[1]), geom)[:2]


def sample_geometry(rng, cfg) -> dict:
    """Pixel size, wavelength, beam centre and distance; with ``cfg.q_max`` the distance follows
    from the q wanted at the farthest corner, so small and large frames span the same q."""
    h, w = cfg.shape
    p, lam = pick(rng, cfg.pixel_size), pick(rng, cfg.wavelength)
    cy, cx = pick(rng, cfg.center, log=False) * (h - 1), pick(rng, cfg.center, log=False) * (w - 1)
    if len(cfg.q_max):
        r = p * max(np.hypot(cy - y, cx - x) for y in (0, h - 1) for x in (0, w - 1))
        two_theta = min(2 * np.arcsin(min(pick(rng, cfg.q_max) * lam / (4 * np.pi), 0.99)), np.radians(60))
        dist = float(r / np.tan(two_theta))
    else:
        dist = pick(rng, cfg.distance)
    return {"center": [float(cy), float(cx)], "pixel_size": p, "distance": dist, "wavelength": lam}


def sample_masks(rng, cfg, center):
    """Mask bit flags (uint8) and the beamstop's shadow (bool) of one frame."""
    h, w = cfg.shape
    yy, xx = np.ogrid[:h, :w]
    flags = np.zeros((h, w), np.uint8)
    if rng.random() < cfg.gaps:
        (mh, mw), (gh, gw) = cfg.module, cfg.gap
        flags |= np.uint8(GAP) * (((yy % (mh + gh) >= mh) if mh else False) | ((xx % (mw + gw) >= mw) if mw else False))
    for bit, frac in ((DEAD, cfg.dead), (HOT, cfg.hot)):
        if frac[1] > 0:
            flags[rng.random((h, w)) < pick(rng, frac)] |= bit
    stop = np.zeros((h, w), bool)
    if rng.random() < cfg.beamstop:
        r = rng.uniform(*cfg.beamstop_radius) * min(h, w)
        dy, dx = yy - center[0] - 0.1 * r * rng.normal(), xx - center[1] - 0.1 * r * rng.normal()
        stop = (np.maximum(abs(dy), abs(dx)) <= r) if rng.random() < cfg.beamstop_rect else (dy**2 + dx**2 <= r * r)
        if rng.random() < cfg.beamstop_arm:
            a, half = rng.uniform(0, 2 * np.pi), r * rng.uniform(0.25, 0.6)
            stop = stop | ((dx * np.cos(a) + dy * np.sin(a) >= 0) & (abs(dy * np.cos(a) - dx * np.sin(a)) <= half))
        flags[stop] |= BEAMSTOP
    return flags, stop
