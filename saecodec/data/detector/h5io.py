"""Detector frames in HDF5: values, mask bits and each frame's geometry and description.

``frames`` is what ``sas.read_h5`` reads; ``read_q`` rebuilds a frame's q maps from the
stored geometry, so files stay small and q stays exact.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np

from ...errors import SaecodecError
from .config import BEAMSTOP, DEAD, GAP, HOT, UINT32_FILL, resolve
from .frames import DetectorFrames, iter_detector
from .geometry import q_map


def write_h5(path, data: DetectorFrames | None = None, *, n: int = 0, seed: int = 0, cfg=None,
             workers: int | None = None, progress: bool = True, dataset: str = "frames",
             mask_value: float | None = None) -> None:
    """Frames (dataset ``frames``, read by ``sas.read_h5``), mask bits and per-frame geometry.

    Pass ``data`` from simulate_detector, or ``n, seed, cfg`` to stream frames to disk
    without holding them all in memory (1024x1024 sets). ``mask_value``: float frames
    hold it instead of NaN where masked, for readers and codecs that want a sentinel.
    """
    import h5py

    if data is not None:
        n, seed, cfg = len(data.frames), data.seed, data.config
        items = zip(data.frames, data.flags, data.meta)
    else:
        cfg = resolve(cfg)
        items = iter_detector(n, seed, cfg, workers, progress)
    dtype = "float32" if cfg.output == "float" else cfg.output
    if mask_value is not None and cfg.output != "float":
        raise SaecodecError(f"mask_value applies to float frames; {cfg.output} frames carry sentinels")
    str_t = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        d = f.create_dataset(dataset, (n, *cfg.shape), dtype, chunks=(1, *cfg.shape) if n else None)
        d.attrs["units"] = "1/cm" if cfg.output == "float" else "counts"
        d.attrs["fill"] = {"float": "NaN" if mask_value is None else f"{mask_value!r} where mask != 0",
                           "int32": "-1 gap, -2 dead", "uint32": f"{UINT32_FILL} gap or dead"}[cfg.output]
        m = f.create_dataset("mask", (n, *cfg.shape), "uint8", chunks=(1, *cfg.shape) if n else None,
                             compression="gzip" if n else None)
        m.attrs["bits"] = json.dumps({"gap": GAP, "dead": DEAD, "hot": HOT, "beamstop": BEAMSTOP})
        geo = {k: f.create_dataset(k, (n, 2) if k == "beam_center" else (n,), "float64")
               for k in ("beam_center", "pixel_size", "distance", "wavelength")}
        f["beam_center"].attrs["units"] = "pixels (row, column), may lie off the frame"
        f["pixel_size"].attrs["units"], f["distance"].attrs["units"], f["wavelength"].attrs["units"] = "m", "m", "A"
        models, metas = [], []
        for i, (frame, flags, meta) in enumerate(items):
            if mask_value is not None:
                frame = np.where(flags != 0, np.float32(mask_value), frame)
            d[i], m[i] = frame, flags
            geo["beam_center"][i] = meta["center"]
            for k in ("pixel_size", "distance", "wavelength"):
                geo[k][i] = meta[k]
            models.append(meta["model"])
            metas.append(json.dumps(meta, sort_keys=True))
        f.create_dataset("model", data=np.array(models, dtype=object), dtype=str_t)
        f.create_dataset("meta", data=np.array(metas, dtype=object), dtype=str_t)
        f.attrs.update(seed=seed, generator="saecodec.data.detector", config=json.dumps(asdict(cfg), sort_keys=True),
                       q="|q| = 4 pi / wavelength sin(atan(r / distance) / 2), r from beam_center; (qx, qy) along it")


def read_q(path, i: int):
    """(qx, qy) maps of frame ``i`` of a file written by write_h5, from its stored geometry."""
    import h5py

    with h5py.File(path, "r") as f:
        return q_map(f["mask"].shape[1:], f["beam_center"][i], float(f["pixel_size"][i]),
                     float(f["distance"][i]), float(f["wavelength"][i]))
