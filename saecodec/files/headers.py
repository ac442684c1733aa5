"""Detector headers of image files (CBF, TIFF, EDF) kept when ``compress`` turns them into
NeXus or Zarr: exposure, wavelength, distance, pixel size and beam centre become NeXus
fields (so ``verify`` finds the geometry and integrates with pyFAI), and every frame's
whole header is kept as text, so nothing the detector wrote is lost.

Two conventions are read: the Pilatus/Eiger header text (CBF ``_array_data.header_contents``,
TIFF ``ImageDescription``: ``# Wavelength 1.0332 A`` ...) and ESRF EDF keys
(``SampleDistance``, ``WaveLength``, ``Center_1`` ...).
"""

from __future__ import annotations

import json
import re

import numpy as np

# fabio's keys that describe how a file stores its pixels, not the measurement
_LAYOUT_KEYS = {"conversions", "nRows", "nColumns", "nBits", "compression", "compression_type", "stripOffsets",
                "rowsPerStrip", "stripByteCounts", "sampleFormat", "photometricInterpretation", "colormap", "info",
                "Dim_1", "Dim_2", "Size", "DataType", "ByteOrder", "Image", "HeaderID"}
_LAYOUT_PREFIXES = ("X-Binary", "Content-", "EDF_")
_METRES = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "cm": 1e-2}
_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"

# NeXus field: (group, name, units)
FIELDS = {"distance": ("detector", "distance", "m"), "x_pixel_size": ("detector", "x_pixel_size", "m"),
          "y_pixel_size": ("detector", "y_pixel_size", "m"), "beam_center_x": ("detector", "beam_center_x", "pixel"),
          "beam_center_y": ("detector", "beam_center_y", "pixel"), "count_time": ("detector", "count_time", "s"),
          "frame_time": ("detector", "frame_time", "s"), "sensor_thickness": ("detector", "sensor_thickness", "m"),
          "saturation_value": ("detector", "saturation_value", None),
          "description": ("detector", "description", None), "wavelength": ("monochromator", "wavelength", "angstrom")}


def text_of(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def kept(header: dict) -> dict:
    """The header without fabio's storage-layout keys, values as text."""
    return {str(k): text_of(v) for k, v in header.items()
            if k not in _LAYOUT_KEYS and not str(k).startswith(_LAYOUT_PREFIXES)}


def _metres(value: str, unit: str) -> float | None:
    scale = _METRES.get(unit.strip().lower())
    return None if scale is None else float(value) * scale


def pilatus_fields(text: str) -> dict:
    """NeXus fields from Pilatus header text (``# Key value unit`` lines)."""
    out = {}
    for line in text.replace("\r", "\n").split("\n"):
        line = line.strip().lstrip("#").strip()
        if m := re.match(rf"Pixel_size\s+{_NUM}\s*(\w+)\s*x\s*{_NUM}\s*(\w+)", line):
            out["x_pixel_size"], out["y_pixel_size"] = _metres(m[1], m[2]), _metres(m[3], m[4])
        elif m := re.match(rf"Detector_distance\s+{_NUM}\s*(\w+)", line):
            out["distance"] = _metres(m[1], m[2])
        elif m := re.match(rf"Wavelength\s+{_NUM}\s*(A|Å|nm)?", line):
            out["wavelength"] = float(m[1]) * (10.0 if m[2] == "nm" else 1.0)
        elif m := re.match(rf"Beam_xy\s*\(\s*{_NUM}\s*,\s*{_NUM}\s*\)\s*pixels", line):
            out["beam_center_x"], out["beam_center_y"] = float(m[1]), float(m[2])
        elif m := re.match(rf"Exposure_time\s+{_NUM}\s*s", line):
            out["count_time"] = float(m[1])
        elif m := re.match(rf"Exposure_period\s+{_NUM}\s*s", line):
            out["frame_time"] = float(m[1])
        elif m := re.match(rf"Silicon sensor, thickness\s+{_NUM}\s*(\w+)", line):
            out["sensor_thickness"] = _metres(m[1], m[2])
        elif m := re.match(rf"Count_cutoff\s+{_NUM}", line):
            out["saturation_value"] = int(float(m[1]))
        elif m := re.match(r"Detector:\s*(.+)", line):
            out["description"] = m[1].strip()
    return {k: v for k, v in out.items() if v is not None}


def edf_fields(header: dict) -> dict:
    """NeXus fields from ESRF EDF keys (metres, pixels, seconds)."""
    keys = {"SampleDistance": "distance", "PSize_1": "x_pixel_size", "PSize_2": "y_pixel_size",
            "Center_1": "beam_center_x", "Center_2": "beam_center_y", "ExposureTime": "count_time",
            "count_time": "count_time", "WaveLength": "wavelength"}
    out = {}
    for key, field in keys.items():
        try:
            out[field] = float(text_of(header[key]).split()[0])
        except (KeyError, ValueError, IndexError):
            continue
    if "wavelength" in out:
        out["wavelength"] *= 1e10  # metres -> angstrom
    return out


def fields_of(header: dict) -> dict:
    """NeXus fields of one frame's fabio header, whatever the convention."""
    text = header.get("_array_data.header_contents") or header.get("imageDescription") or \
        header.get("ImageDescription") or ""
    out = edf_fields(header)
    out.update(pilatus_fields(text_of(text)))
    return out


def read_headers(frames) -> list[dict]:
    """The fabio header of each (file, frame index), reading headers only where fabio can."""
    from .sources import import_fabio

    fabio = import_fabio()
    out, cache = [], {}
    for fname, k in frames:
        try:
            if k == 0:
                if fname not in cache:
                    cache[fname] = dict(fabio.openheader(fname).header)
                    if not cache[fname]:  # fabio reads some formats' headers (TIFF) only with the image
                        with fabio.open(fname) as img:
                            cache[fname] = dict(img.header)
                out.append(cache[fname])
            else:
                with fabio.open(fname) as img:
                    out.append(dict(img.getframe(k).header))
        except Exception:  # noqa: BLE001 - a header fabio cannot parse is left out, the pixels are not
            out.append({})
    return out


def nexus_values(headers: list[dict]) -> dict:
    """field -> value (one for all frames) or a per-frame list (None where a frame lacks it)."""
    per = [fields_of(h) for h in headers]
    out = {}
    for field in FIELDS:
        vals = [p.get(field) for p in per]
        if all(v is None for v in vals):
            continue
        out[field] = vals[0] if all(v == vals[0] for v in vals) else vals
    return out


def write_nexus(entry, headers: list[dict]) -> None:
    """The fields into ``entry/instrument/{detector,monochromator}`` (NeXus base classes), and
    every frame's header as JSON text in ``detector/headers``."""
    import h5py

    inst = entry["instrument"]
    for field, value in nexus_values(headers).items():
        group, name, units = FIELDS[field]
        if group not in inst:
            inst.create_group(group).attrs["NX_class"] = "NX" + group
        g = inst[group]
        if isinstance(value, list):
            if any(v is None or isinstance(v, str) for v in value):
                value = np.array([json.dumps(v) if not isinstance(v, str) else v for v in value],
                                 dtype=h5py.string_dtype())
            else:
                value = np.asarray(value, dtype=np.float64)
        g[name] = value
        if units:
            g[name].attrs["units"] = units
    texts = [json.dumps(kept(h), sort_keys=True) for h in headers]
    if any(t != "{}" for t in texts):
        det = inst["detector"]
        det["headers"] = np.array(texts, dtype=h5py.string_dtype())
        det["headers"].attrs["description"] = "each frame's detector header as fabio read it (JSON)"


def zarr_attrs(headers: list[dict]) -> dict:
    """The same for a Zarr array's attributes."""
    values = nexus_values(headers)
    out = {}
    if values:
        out["detector"] = {f: {"value": v, "units": FIELDS[f][2]} if FIELDS[f][2] else {"value": v}
                           for f, v in values.items()}
    if any(kept(h) for h in headers):
        out["detector_headers"] = [kept(h) for h in headers]
    return out
