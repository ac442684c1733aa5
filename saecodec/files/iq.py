"""Azimuthally averaged I(q) of a frame, for checking that the physics survived.

Three ways, best first: pyFAI's integrator when the geometry is known (a PONI file, or a
NeXus NXdetector with distance, pixel sizes, beam centre and a wavelength), the stored
q of each pixel (NXcanSAS ``Qx``/``Qy`` or ``Q``) binned, or, with nothing known, the
average over 1-pixel rings around the intensity-weighted centre of the original.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .. import iq as core
from ..errors import SaecodecError

NPT = 100
_UNITS = {"m": 1.0, "metre": 1.0, "meter": 1.0, "cm": 1e-2, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "micron": 1e-6,
          "micrometer": 1e-6, "micrometre": 1e-6, "nm": 1e-9, "a": 1e-10, "å": 1e-10, "angstrom": 1e-10,
          "angstroms": 1e-10}


@dataclass(frozen=True, eq=False)
class Geometry:
    method: str  # "pyFAI", "qmap" or "radius"
    params: dict | None = None  # AzimuthalIntegrator keywords (pyFAI)
    poni: str | None = None  # a PONI file (pyFAI)
    q: np.ndarray | None = None  # q per pixel (qmap)
    centre: tuple | None = None  # (row, col) (radius)
    mask: np.ndarray | None = None  # detector pixels to ignore (True = ignore)
    npt: int = NPT

    def describe(self) -> str:
        if self.method == "pyFAI":
            return f"pyFAI ({'PONI ' + self.poni if self.poni else 'NeXus NXdetector geometry'})"
        if self.method == "qmap":
            return "binned stored q (NXcanSAS)"
        return f"pixel-radius average around ({self.centre[0]:.1f}, {self.centre[1]:.1f})"


def _metres(ds) -> float:
    units = ds.attrs.get("units", b"m")
    units = (units.decode() if isinstance(units, bytes) else str(units)).strip().lower()
    if units not in _UNITS:
        raise KeyError(units)
    return float(np.asarray(ds[()]).ravel()[0]) * _UNITS[units]


def nexus_geometry(f, dataset: str) -> Geometry | None:
    """pyFAI parameters from the NXdetector holding ``dataset`` (or the entry's NXdetector)."""
    import h5py

    def nx(o):
        v = o.attrs.get("NX_class", b"")
        return v.decode() if isinstance(v, bytes) else str(v)

    obj = f[dataset]
    entry = f[obj.name.strip("/").split("/")[0]]
    if not isinstance(entry, h5py.Group):
        return None
    dets = [obj.parent] if nx(obj.parent) == "NXdetector" else []
    entry.visititems(lambda n, o: dets.append(o) if isinstance(o, h5py.Group) and nx(o) == "NXdetector"
                             else None)
    for det in dets:
        try:
            dist = _metres(det["distance"])
            px, py = _metres(det["x_pixel_size"]), _metres(det["y_pixel_size"])
            centre = []
            for key, size in (("beam_center_y", py), ("beam_center_x", px)):
                u = det[key].attrs.get("units", b"pixel")
                u = (u.decode() if isinstance(u, bytes) else str(u)).lower()
                v = float(np.asarray(det[key][()]).ravel()[0])
                centre.append(v * size if u.startswith("pixel") else _metres(det[key]))
            wl = None
            for n, o in _walk(entry):
                if n.split("/")[-1] in ("wavelength", "incident_wavelength") and isinstance(o, h5py.Dataset):
                    wl = _metres(o)
                    break
            if wl is None:
                continue
        except (KeyError, ValueError, TypeError):
            continue
        mask = None
        if "pixel_mask" in det and det["pixel_mask"].shape == obj.shape[-2:]:
            mask = np.asarray(det["pixel_mask"][()]) != 0
        return Geometry("pyFAI", params={"dist": dist, "poni1": centre[0], "poni2": centre[1], "pixel1": py,
                                         "pixel2": px, "wavelength": wl}, mask=mask)
    return None


def _walk(group):
    out = []
    group.visititems(lambda n, o: out.append((n, o)) and None)
    return out


def cansas_geometry(f, dataset: str) -> Geometry | None:
    g = f[dataset].parent
    frame = f[dataset].shape[-2:]
    if "Qx" in g and "Qy" in g and g["Qx"].shape[-2:] == frame and g["Qy"].shape[-2:] == frame:
        q = np.hypot(np.asarray(g["Qx"][()], float).reshape(frame), np.asarray(g["Qy"][()], float).reshape(frame))
        return Geometry("qmap", q=q)
    if "Q" in g:
        q = np.asarray(g["Q"][()], float)
        if q.shape == frame:
            return Geometry("qmap", q=q)
        if q.shape == (2,) + frame:
            return Geometry("qmap", q=np.hypot(q[0], q[1]))
    return None


def radius_geometry(frame: np.ndarray) -> Geometry:
    """1-pixel rings around the frame's beam centre (:func:`saecodec.iq.beam_centre`)."""
    return Geometry("radius", centre=core.beam_centre(frame))


class Profiler:
    """One per geometry and process: I(q) of frames with per-frame invalid pixels."""

    def __init__(self, geo: Geometry, shape):
        self.geo = geo
        self.shape = tuple(shape)
        self.lock = threading.Lock()
        if geo.method == "pyFAI":
            try:
                import pyFAI
                from pyFAI.integrator.azimuthal import AzimuthalIntegrator
            except ImportError:
                raise SaecodecError("I(q) with a known geometry needs pyFAI: pip install 'saecodec[files]' "
                                    "(or --no-iq)") from None

            self.ai = pyFAI.load(geo.poni) if geo.poni else AzimuthalIntegrator(**geo.params)
            return
        q = geo.q if geo.method == "qmap" else core.pixel_radius(self.shape, geo.centre)
        idx, self.nbins = core.bin_index(q, geo.npt, "pixel" if geo.method == "radius" else "linear")
        self.idx = idx.ravel()
        self.base = (~np.isfinite(q)).ravel()

    def profile(self, frame: np.ndarray, invalid: np.ndarray) -> np.ndarray:
        return self.stats(frame, invalid)[0]

    def stats(self, frame: np.ndarray, invalid: np.ndarray, errors: bool = False):
        """(I(q), its error bars or None): Poisson errors for integer counts, the standard
        error of the ring's mean for other data."""
        bad = invalid if self.geo.mask is None else invalid | self.geo.mask
        counts = np.asarray(frame).dtype.kind in "iu"
        if self.geo.method == "pyFAI":
            data = np.where(bad, 0, frame).astype(np.float32)
            extra = {"error_model": "poisson" if counts else "azimuthal"} if errors else {}
            with self.lock:  # pyFAI's engines are shared state
                res = self.ai.integrate1d(data, self.geo.npt, mask=bad.astype(np.int8), unit="q_nm^-1",
                                          correctSolidAngle=False, method=("bbox", "histogram", "cython"), **extra)
            sigma = np.asarray(res.sigma, dtype=np.float64) if errors and res.sigma is not None else None
            return np.asarray(res.intensity, dtype=np.float64), sigma
        ok = ~(bad.ravel() | self.base)
        n, s, ss = core.bin_sums(frame, self.idx, self.nbins, ok)
        mean = core.mean_profile(n, s)
        if not errors:
            return mean, None
        return mean, core.poisson_error(n, s) if counts else core.standard_error(n, s, ss)

    def q_axis(self) -> tuple[np.ndarray, str]:
        """Bin centres and their unit, for plots."""
        if self.geo.method == "pyFAI":
            res = self.ai.integrate1d(np.ones(self.shape, np.float32), self.geo.npt, unit="q_nm^-1",
                                      correctSolidAngle=False, method=("bbox", "histogram", "cython"))
            return np.asarray(res.radial), "q (nm$^{-1}$)"
        if self.geo.method == "qmap":
            q = self.geo.q[np.isfinite(self.geo.q)]
            edges = np.linspace(q.min(), q.max(), self.nbins + 1)
            return (edges[:-1] + edges[1:]) / 2, "|q| (stored units)"
        return np.arange(self.nbins) + 0.5, "radius (pixels)"


_profilers: dict = {}
_lock = threading.Lock()


def profiler(geo: Geometry, shape) -> Profiler:
    key = (id(geo), tuple(shape))
    with _lock:
        if key not in _profilers:
            if len(_profilers) > 16:
                _profilers.clear()
            _profilers[key] = (geo, Profiler(geo, shape))  # geo kept alive: its id stays unique
        return _profilers[key][1]


def check_geometry(geo: Geometry, frame_shape) -> None:
    if geo.mask is not None and geo.mask.shape != tuple(frame_shape):
        raise SaecodecError(f"the detector mask is {geo.mask.shape}, frames are {tuple(frame_shape)}")
    if geo.q is not None and geo.q.shape != tuple(frame_shape):
        raise SaecodecError(f"the q map is {geo.q.shape}, frames are {tuple(frame_shape)}")
