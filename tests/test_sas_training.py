import numpy as np
import pytest
import torch

from saecodec.data import sas
from saecodec.models import SparseL1Autoencoder, apply_selector
from saecodec.training import TrainConfig, fit


def test_simulation_is_reproducible_and_independent_of_workers():
    cfg = sas.SimConfig(shape=(24, 24))
    a = sas.simulate(40, seed=5, cfg=cfg, workers=1, progress=False, block=7)
    b = sas.simulate(40, seed=5, cfg=cfg, workers=2, progress=False, block=13)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.params == b.params and a.models == b.models
    c = sas.simulate(40, seed=6, cfg=cfg, workers=1, progress=False)
    assert not np.array_equal(a.frames, c.frames)


def test_simulated_frames_and_parameters_are_in_range():
    cfg = sas.SimConfig(shape=(32, 32), beamstop=True)
    s = sas.simulate(160, seed=1, cfg=cfg, workers=2, progress=False)
    assert np.isfinite(s.frames).all() and (s.frames > 0).all()
    assert set(s.models) == set(sas.MODELS)
    for p in s.params:
        assert 1e-3 <= p["scale"] <= 1 and 1e-3 <= p["background"] <= 1
        for k, v in p.items():
            if k.endswith("_pd"):
                assert 0 <= v <= cfg.polydispersity and p[k + "_n"] >= 1
    qmax = np.abs(np.concatenate([s.qx, s.qy], axis=1)).max(axis=1)
    assert (qmax >= 0.03 * 0.99).all() and (qmax <= 0.6 * 1.8).all()
    assert (s.qx != 0).all() and (s.qy != 0).all()
    assert s.mask.any(axis=(1, 2)).all()  # every frame has a beamstop
    # background is the floor of every frame: intensities never fall far below it
    bg = np.array([p["background"] for p in s.params])
    assert (s.frames.min(axis=(1, 2)) >= 0.99 * bg).all()


def test_noise_is_poisson_counting():
    cfg = sas.SimConfig(shape=(16, 16), noise=True, flux_range=(10.0, 10.0))
    s = sas.simulate(8, seed=2, cfg=cfg, workers=1, progress=False)
    counts = s.frames.astype(np.float64) * 10.0
    np.testing.assert_allclose(counts, np.rint(counts), atol=1e-3)


def test_structure_selectors():
    z = torch.tensor([[1.0, 4.0, 9.0, 16.0]])
    assert torch.equal(apply_selector("z", z), z)
    assert torch.equal(apply_selector("grad", z), torch.tensor([[3.0, 5.0, 7.0]]))
    assert torch.equal(apply_selector("laplace", z), torch.tensor([[2.0, 2.0]]))


@pytest.mark.parametrize("selector", ["z", "grad", "laplace"])
def test_a_few_steps_lower_the_loss_and_give_exact_zeros(selector):
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(4, 64))
    data = (rng.normal(size=(600, 4)) @ basis).astype(np.float32)
    torch.manual_seed(0)
    module = SparseL1Autoencoder(64, 32, 48, lam=0.05, selector=selector)
    x = torch.from_numpy(data)
    with torch.no_grad():
        before = float(module.loss(x)[0])
    res = fit(module, data, TrainConfig(epochs=15, batch=64, lr=3e-3, device="cpu", progress=False))
    with torch.no_grad():
        after = float(module.loss(x)[0])
        z = module.encode(x)
    assert after < 0.5 * before
    assert (z == 0).any() and (z >= 0).all()
    assert res["val"]["rel_l2"] < 0.6


def test_checkpoint_and_resume(tmp_path):
    data = np.random.default_rng(1).normal(size=(200, 16)).astype(np.float32)
    ck = tmp_path / "ck.pt"
    torch.manual_seed(0)
    m1 = SparseL1Autoencoder(16, 8, 8)
    fit(m1, data, TrainConfig(epochs=4, batch=32, lr=1e-3, device="cpu", progress=False, checkpoint=str(ck)))
    torch.manual_seed(0)
    m2 = SparseL1Autoencoder(16, 8, 8)
    fit(m2, data, TrainConfig(epochs=2, batch=32, lr=1e-3, device="cpu", progress=False,
                              checkpoint=str(tmp_path / "b.pt")))
    r = fit(m2, data, TrainConfig(epochs=4, batch=32, lr=1e-3, device="cpu", progress=False,
                                 checkpoint=str(tmp_path / "b.pt"), resume=True))
    assert len(r["history"]) == 4
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_divergence_is_a_clear_error():
    data = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    data[3, 2] = np.nan
    with pytest.raises(FloatingPointError, match="diverged"):
        fit(SparseL1Autoencoder(16, 8, 8), data, TrainConfig(epochs=1, batch=64, device="cpu", progress=False,
                                                             val_fraction=0.0))
