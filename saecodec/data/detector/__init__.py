"""Detector-like SAS frames: what beamlines record, not clean centred images.

Codecs trained or judged on ``sas.py``'s clean frames fail on real ones (issue #12). Here
each frame comes from a detector geometry (pixel size, distance, wavelength, exact
2-theta q), the beam anywhere on or off the frame, Poisson counts from ~10 to ~1e6 at the
peak, flat-field and solid-angle factors, beamstop shadows, module gaps, dead and hot
pixels written as NaN or detector sentinels, and reduced frames that went negative after
background subtraction. Frame ``i`` of seed ``s`` depends only on ``(s, i)``.

Modules: ``config`` (what may be drawn, presets), ``geometry`` (q per pixel, masks),
``scattering`` (model parameters, I(q)), ``frames`` (counts and noise, the parallel
driver), ``h5io`` (the HDF5 file).
"""

from .config import (ANISOTROPIC, BEAMSTOP, DEAD, GAP, HELDOUT_MODELS, HOT, PRESETS, TRAIN_MODELS, UINT32_FILL,
                     DetectorConfig, Ranges, preset)
from .frames import DetectorFrames, detector_frame, iter_detector, simulate_detector
from .geometry import q_map
from .h5io import read_q, write_h5

__all__ = ["ANISOTROPIC", "BEAMSTOP", "DEAD", "GAP", "HELDOUT_MODELS", "HOT", "PRESETS", "TRAIN_MODELS",
           "UINT32_FILL", "DetectorConfig", "DetectorFrames", "Ranges", "detector_frame", "iter_detector", "preset",
           "q_map", "read_q", "simulate_detector", "write_h5"]
