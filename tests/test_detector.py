"""Detector-like simulated frames: reproducible, physically placed, masked as detectors mask."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from saecodec.data import detector as D
from saecodec.data.detector import geometry, scattering
from saecodec.data.sas import read_h5
from saecodec.errors import SaecodecError

FEW = dict(models=("sphere", "cylinder", "guinier_porod"), mixture_models=("power_law",))
SMALL = D.DetectorConfig(shape=(24, 40), gaps=1.0, module=(10, 16), gap=(2, 3), dead=(0.01, 0.02), hot=(0.005, 0.01),
                         oriented=1.0, mixture=0.5, **FEW)


def test_same_frames_for_any_worker_count_and_seed_matters():
    one = D.simulate_detector(6, seed=3, cfg=SMALL, workers=1, progress=False)
    two = D.simulate_detector(6, seed=3, cfg=SMALL, workers=2, progress=False)
    np.testing.assert_array_equal(one.frames, two.frames)
    np.testing.assert_array_equal(one.flags, two.flags)
    assert json.dumps(one.meta, sort_keys=True) == json.dumps(two.meta, sort_keys=True)
    # frame i depends on (seed, i) only: a shorter run is a prefix
    head = D.simulate_detector(2, seed=3, cfg=SMALL, workers=1, progress=False)
    np.testing.assert_array_equal(head.frames, one.frames[:2])
    other = D.simulate_detector(2, seed=4, cfg=SMALL, workers=1, progress=False)
    assert not np.array_equal(np.nan_to_num(other.frames), np.nan_to_num(one.frames[:2]))


def test_q_map_is_exact_two_theta_by_hand():
    geom = dict(center=(-3.5, 10.25), pixel_size=172e-6, distance=0.02, wavelength=1.54)
    qx, qy = D.q_map((20, 30), **geom)
    for i, j in ((0, 0), (19, 29), (7, 10)):
        y, x = (i + 3.5) * 172e-6, (j - 10.25) * 172e-6
        r = math.hypot(x, y)
        q = 4 * math.pi / 1.54 * math.sin(math.atan(r / 0.02) / 2)
        assert math.hypot(qx[i, j], qy[i, j]) == pytest.approx(q, rel=1e-12)
        assert math.atan2(qy[i, j], qx[i, j]) == pytest.approx(math.atan2(y, x), abs=1e-12)
    small_angle = 2 * math.pi / 1.54 * math.hypot(29 - 10.25, 19 + 3.5) * 172e-6 / 0.02
    assert math.hypot(qx[19, 29], qy[19, 29]) < 0.99 * small_angle  # wide angle: not the approximation
    qx, qy = D.q_map((5, 5), center=(2.0, 2.0), pixel_size=1e-3, distance=1.0, wavelength=5.0)
    assert np.hypot(qx, qy).min() > 0  # the beam hits a pixel centre: still no q = 0


def test_int32_sentinels_counts_and_mask():
    cfg = replace(SMALL, output="int32", beamstop=1.0)
    sim = D.simulate_detector(4, seed=1, cfg=cfg, workers=1, progress=False)
    f, flags = sim.frames, sim.flags
    assert f.dtype == np.int32 and sim.mask.dtype == bool
    gap, dead = (flags & D.GAP) != 0, (flags & D.DEAD) != 0
    assert gap.any() and dead.any() and ((flags & D.HOT) != 0).any() and ((flags & D.BEAMSTOP) != 0).any()
    assert (f[dead] == -2).all() and (f[gap & ~dead] == -1).all()
    assert (f[~(gap | dead)] >= 0).all()
    assert np.array_equal(sim.mask, flags != 0)
    rows = gap[0].all(axis=1)
    assert np.flatnonzero(rows).tolist() == [10, 11, 22, 23]  # module of 10 rows, then 2 gap rows


def test_uint32_and_float_fill():
    u = D.simulate_detector(2, seed=2, cfg=replace(SMALL, output="uint32"), workers=1,
                            progress=False)
    assert u.frames.dtype == np.uint32
    bad = (u.flags & (D.GAP | D.DEAD)) != 0
    assert bad.any() and (u.frames[bad] == 2**32 - 1).all() and (u.frames[~bad] < 2**32 - 1).all()
    f = D.simulate_detector(6, seed=2, cfg=replace(SMALL, subtract=1.0), workers=1,
                            progress=False)
    assert f.frames.dtype == np.float32
    np.testing.assert_array_equal(np.isfinite(f.frames), ~f.mask)  # NaN exactly where masked, no inf
    assert (f.frames[~f.mask] < 0).any()  # background-subtracted: negatives are part of the data


def test_poisson_statistics_on_a_flat_frame():
    # background 1000x the peak scattering: ~1000 counts everywhere, flat to 0.1%
    cfg = D.DetectorConfig(shape=(64, 64), output="int32", counts=(1.0, 1.0), background=(1e3, 1e3), efficiency=0.0,
                           beamstop=0.0, direct_beam=(0.0, 0.0), q_max=((0.01, 0.02),), **FEW)
    sim = D.simulate_detector(2, seed=5, cfg=cfg, workers=1, progress=False)
    for frame, meta in zip(sim.frames, sim.meta):
        c = frame.astype(float)
        assert c.mean() == pytest.approx(1000 * meta["peak_counts"] * 1.0, rel=0.02)
        assert c.var(ddof=1) / c.mean() == pytest.approx(1.0, abs=0.12)


def test_profile_interpolation_matches_the_direct_kernel():
    geom = dict(center=[5.0, -8.0], pixel_size=1e-3, distance=2.0, wavelength=6.0)
    _, _, q, _ = geometry.pixels(np.arange(48), np.arange(40), geom)
    dq = 2 * np.pi / 6.0 * 1e-3 / 2.0
    params = dict(radius=150.0, radius_pd=0.1, radius_pd_n=15, scale=1.0, background=0.0)
    fast = scattering.profile("sphere", params, q, dq, 0.0, 4000)
    exact = scattering.evaluate("sphere", params, [q.ravel()]).reshape(q.shape)
    rel = np.abs(fast / exact - 1)
    assert np.median(rel) < 1e-3 and rel.max() < 0.02
    params = dict(radius=30.0, length=400.0, theta=60.0, phi=20.0, radius_pd=0.1, radius_pd_n=15)
    coarse = scattering.aligned("cylinder", params, q.shape, geom, budget=12000.0)  # every second pixel
    full = scattering.aligned("cylinder", params, q.shape, geom, budget=1e9)
    assert not np.array_equal(coarse, full) and np.median(np.abs(np.log(coarse / full))) < 0.01


def test_presets_sizes_and_held_out_settings():
    pil = D.simulate_detector(1, seed=0, cfg=D.preset("saxs-pilatus", **FEW), workers=1, progress=False)
    assert pil.frames.shape == (1, 619, 487) and pil.frames.dtype == np.int32
    eig = D.simulate_detector(1, seed=0, cfg=D.preset("eiger-1m", **FEW), workers=1, progress=False)
    assert eig.frames.shape == (1, 1024, 1024) and eig.frames.dtype == np.uint32
    train, held = D.preset("train-mix"), D.preset("heldout-mix")
    assert not set(train.models + train.mixture_models) & set(held.models + held.mixture_models)
    sims = {n: D.simulate_detector(6, seed=7, cfg=D.preset(n, **FEW, shape=(32, 32)), workers=1, progress=False)
            for n in ("train-mix", "heldout-mix")}
    for m in sims["train-mix"].meta:
        assert 0.015 * 0.999 <= m["q_max"] <= 0.6 * 1.001
        assert all(0.1 * 31 <= c <= 0.9 * 31 for c in m["center"])
    for m in sims["heldout-mix"].meta:
        assert not 0.015 < m["q_max"] < 0.6
        assert all(c < 0.1 * 31 or c > 0.9 * 31 for c in m["center"])
    with pytest.raises(SaecodecError, match="unknown detector preset"):
        D.preset("nope")
    with pytest.raises(SaecodecError, match="output"):
        D.simulate_detector(1, cfg=D.DetectorConfig(output="float16"), progress=False)


def test_hdf5_round_trip_keeps_frames_and_geometry(tmp_path):
    sim = D.simulate_detector(3, seed=8, cfg=SMALL, workers=1, progress=False)
    D.write_h5(tmp_path / "a.h5", sim)
    np.testing.assert_array_equal(read_h5(tmp_path / "a.h5"), sim.frames)
    qx, qy = D.read_q(tmp_path / "a.h5", 2)
    ex, ey = sim.q(2)
    np.testing.assert_array_equal(qx, ex)
    np.testing.assert_array_equal(qy, ey)
    D.write_h5(tmp_path / "b.h5", n=3, seed=8, cfg=SMALL, workers=1, progress=False)  # streamed
    np.testing.assert_array_equal(read_h5(tmp_path / "b.h5"), sim.frames)
    import h5py

    with h5py.File(tmp_path / "b.h5") as f:
        np.testing.assert_array_equal(f["mask"][:], sim.flags)
        assert json.loads(f["meta"][1])["model"] == sim.meta[1]["model"]


def test_every_listed_model_has_a_parameter_sampler():
    cfg = D.DetectorConfig()
    names = set(D.TRAIN_MODELS + D.HELDOUT_MODELS + cfg.mixture_models + D.preset("heldout-mix").mixture_models)
    for i, name in enumerate(sorted(names)):
        p = scattering.sample_params(name, np.random.default_rng(i), cfg, oriented=name in D.ANISOTROPIC)
        assert p["scale"] == 1.0 and p["background"] == 0.0
        assert all(p[k + "_n"] >= 1 for k in p if k.endswith("_pd"))
    with pytest.raises(SaecodecError, match="no parameter sampler"):
        scattering.sample_params("not_a_model", np.random.default_rng(0), cfg, oriented=False)
