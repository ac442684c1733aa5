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


def _first(group, names):
    for n in names:
        if n in group:
            return group[n]
    raise KeyError(names[0])


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
    w = np.where(np.isfinite(frame), np.clip(frame.astype(np.float64), 0, None), 0.0)
    total = w.sum()
    if total <= 0:
        centre = ((frame.shape[0] - 1) / 2, (frame.shape[1] - 1) / 2)
    else:
        yy, xx = np.indices(frame.shape)
        centre = (float((yy * w).sum() / total), float((xx * w).sum() / total))
    return Geometry("radius", centre=centre)


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
        if geo.method == "qmap":
            q = geo.q
        else:
            yy, xx = np.indices(self.shape)
            q = np.hypot(yy - geo.centre[0], xx - geo.centre[1])
        finite = np.isfinite(q)
        if geo.method == "radius":
            edges = np.arange(0, np.ceil(q.max()) + 2)
        else:
            edges = np.linspace(q[finite].min(), q[finite].max(), geo.npt + 1)
        self.idx = np.clip(np.digitize(np.where(finite, q, edges[0]), edges) - 1, 0, len(edges) - 2).ravel()
        self.base = (~finite).ravel()
        self.nbins = len(edges) - 1

    def profile(self, frame: np.ndarray, invalid: np.ndarray) -> np.ndarray:
        bad = invalid if self.geo.mask is None else invalid | self.geo.mask
        if self.geo.method == "pyFAI":
            data = np.where(bad, 0, frame).astype(np.float32)
            with self.lock:  # pyFAI's engines are shared state
                res = self.ai.integrate1d(data, self.geo.npt, mask=bad.astype(np.int8), unit="q_nm^-1",
                                          correctSolidAngle=False, method=("bbox", "histogram", "cython"))
            return np.asarray(res.intensity, dtype=np.float64)
        ok = ~(bad.ravel() | self.base)
        vals = frame.astype(np.float64).ravel()
        s = np.bincount(self.idx[ok], weights=vals[ok], minlength=self.nbins)
        n = np.bincount(self.idx[ok], minlength=self.nbins)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, s / np.maximum(n, 1), np.nan)


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
