"""What a detector simulation may draw: ranges, model lists, mask bits and named presets.

Held-out presets use models, geometries and beam positions that ``train-mix`` never
draws, so an evaluation on them measures generalisation, not memory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...errors import SaecodecError
from ..sas import MODELS as SAS_MODELS, log_uniform

GAP, DEAD, HOT, BEAMSTOP = 1, 2, 4, 8  # bits of DetectorFrames.flags
UINT32_FILL = 2**32 - 1
ANISOTROPIC = frozenset({"cylinder", "core_shell_cylinder", "ellipsoid", "parallelepiped",
                         "core_shell_ellipsoid", "hollow_cylinder"})
TRAIN_MODELS = SAS_MODELS + (
    "sphere@stickyhardsphere", "core_shell_sphere@hardsphere", "fractal", "guinier_porod", "mass_surface_fractal",
    "broad_peak", "lamellar_stack_paracrystal", "poly_gauss_coil", "correlation_length", "flexible_cylinder",
    "fuzzy_sphere")
HELDOUT_MODELS = ("sphere@hayter_msa", "core_shell_ellipsoid", "hollow_cylinder", "teubner_strey", "vesicle",
                  "mass_fractal")
OUTPUTS = ("float", "int32", "uint32")
Ranges = tuple  # (lo, hi) or ((lo, hi), (lo, hi), ...): one pair picked at random, then a value in it


@dataclass(frozen=True)
class DetectorConfig:
    shape: tuple[int, int] = (128, 128)
    pixel_size: Ranges = (1e-4, 1e-2)  # m, square pixels, log-uniform
    wavelength: Ranges = (0.6, 12.0)  # Angstrom
    distance: Ranges = (1.0, 10.0)  # m; used only when q_max is empty
    q_max: Ranges = ((0.015, 0.6),)  # 1/A at the frame corner farthest from the beam; sets the distance
    center: Ranges = ((0.25, 0.75), (0.1, 0.9))  # beam position per axis, fraction of the frame
    models: tuple[str, ...] = TRAIN_MODELS
    oriented: float = 0.7  # P(an anisotropic particle is aligned: 2D kernel), else orientational average
    orientation_spread: tuple[float, float] = (0.0, 20.0)  # degrees of theta/phi spread of aligned particles
    polydispersity: float = 0.3
    pd_points: int = 15
    pd_types: tuple[str, ...] = ("gaussian", "schulz", "lognormal")
    mixture: float = 0.3  # P(a second population)
    mixture_models: tuple[str, ...] = ("power_law", "guinier_porod", "sphere", "poly_gauss_coil")
    mixture_weight: tuple[float, float] = (1e-3, 0.5)  # its peak relative to the first one's
    resolution: tuple[float, float] = (0.02, 0.1)  # Gaussian dq/q
    resolution_prob: float = 0.5
    intensity: Ranges = (0.3, 3e5)  # peak intensity, 1/cm
    counts: Ranges = (10.0, 1e6)  # peak counts of the scattering (direct beam apart)
    background: Ranges = (1e-6, 0.1)  # flat background / peak intensity
    efficiency: float = 0.02  # per-pixel flat-field spread
    noise: bool = True
    output: str = "float"  # float (1/cm, NaN where flagged) | int32 (-1 gap, -2 dead) | uint32 (2**32-1)
    subtract: float = 0.5  # P(a float frame is background-subtracted: negatives appear)
    beamstop: float = 0.8
    beamstop_radius: tuple[float, float] = (0.02, 0.08)  # fraction of the smaller frame side
    beamstop_rect: float = 0.3
    beamstop_arm: float = 0.4
    beamstop_transmission: tuple[float, float] = (1e-4, 1e-2)  # integer output: shadow counts
    direct_beam: tuple[float, float] = (10.0, 1e3)  # integer output without beamstop: beam peak / peak counts
    module: tuple[int, int] = (0, 0)  # module rows, columns (0: no gaps along that axis)
    gap: tuple[int, int] = (0, 0)  # gap rows, columns after each module
    gaps: float = 0.0  # P(the frame has module gaps)
    dead: tuple[float, float] = (0.0, 0.0)  # fraction of dead pixels (log-uniform when lo > 0)
    hot: tuple[float, float] = (0.0, 0.0)
    min_decades: float = 1.5  # scenes whose noise-free I spans less are drawn again
    oriented_budget: float = 4e6  # 2D kernel evaluations per aligned component


def pick(rng, ranges, log=True) -> float:
    """A value of ``ranges`` (see ``Ranges``): log-uniform when ``log`` and the range is positive."""
    if np.ndim(ranges) == 2:
        ranges = ranges[rng.integers(len(ranges))]
    lo, hi = ranges
    if log and lo > 0:
        return log_uniform(rng, lo, hi)
    return float(rng.uniform(lo, hi))


_SANS = dict(pixel_size=(4e-3, 1e-2), wavelength=(4.5, 12.0), distance=(1.0, 20.0), q_max=(),
             center=((0.3, 0.7),), resolution=(0.03, 0.12), resolution_prob=0.9, counts=(30.0, 1e6),
             dead=(0.0, 1e-3))
_RAW = dict(q_max=(), wavelength=(0.6, 1.6), resolution_prob=0.0, beamstop=0.5, beamstop_arm=0.8, gaps=1.0,
            direct_beam=(30.0, 3e4),
            center=((0.2, 0.8), (0.0, 1.0)), dead=(1e-5, 1e-4), hot=(1e-6, 1e-5), subtract=0.0)
PRESETS = {
    **{f"sans-reduced-{s}": DetectorConfig(shape=(s, s), **_SANS) for s in (64, 80, 128, 192)},
    "saxs-pilatus": DetectorConfig(shape=(619, 487), pixel_size=(172e-6, 172e-6), distance=(0.8, 7.0),
                                   output="int32", module=(195, 487), gap=(17, 7), **_RAW),
    "eiger-1m": DetectorConfig(shape=(1024, 1024), pixel_size=(75e-6, 75e-6), distance=(0.5, 5.0),
                               output="uint32", module=(512, 1030), gap=(38, 10), **_RAW),
    "train-mix": DetectorConfig(gaps=0.2, module=(48, 64), gap=(3, 2), dead=(0.0, 1e-3)),
    "heldout-mix": DetectorConfig(models=HELDOUT_MODELS, mixture_models=("mass_fractal", "vesicle"),
                                  wavelength=(0.6, 6.0), q_max=((0.005, 0.015), (0.6, 1.0)),
                                  center=((-0.15, 0.1), (0.9, 1.15)), gaps=0.2, module=(40, 56), gap=(4, 3),
                                  dead=(0.0, 1e-3), beamstop_rect=0.6),
}
PRESETS["mixed"] = PRESETS["train-mix"]


def preset(name: str, **overrides) -> DetectorConfig:
    """A named DetectorConfig, e.g. ``preset("train-mix", shape=(64, 64))``; see PRESETS."""
    if name not in PRESETS:
        raise SaecodecError(f"unknown detector preset {name!r}; known: {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def resolve(cfg) -> DetectorConfig:
    """``cfg`` as a checked DetectorConfig: a preset name, a config, or None for the default."""
    cfg = preset(cfg) if isinstance(cfg, str) else (cfg or DetectorConfig())
    if cfg.output not in OUTPUTS:
        raise SaecodecError(f"DetectorConfig.output must be float, int32 or uint32, not {cfg.output!r}")
    if min(cfg.shape) < 2 or len(cfg.shape) != 2:
        raise SaecodecError(f"DetectorConfig.shape must be two sizes of at least 2, not {cfg.shape}")
    return cfg
