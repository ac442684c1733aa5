import numpy as np
import torch

from saecodec.models import RankReductionAutoencoder, Transform, load_file
from saecodec.training import TrainConfig, train_rrae


def bumps(n, size=16, seed=0):
    """A Gaussian bump moved on a 2D grid: two parameters, as in the RRAE paper's test."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / (size - 1)
    cx, cy = rng.uniform(0.3, 0.7, (2, n, 1, 1))
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 0.12**2)) + 0.05


def test_rank_reduction_training_gives_k_coefficients(tmp_path):
    cfg = TrainConfig(epochs=80, batch=64, lr=3e-3, seed=0, device="cpu", progress=False)
    model, res = train_rrae(bumps(800), k=2, L=16, hidden=(128, 64), transform=Transform("linear", 1.0,
                                                                                     per_frame=False),
                            cfg=cfg, finetune_steps=200)
    m = model.module
    assert m.basis.shape == (16, 2)
    torch.testing.assert_close(m.basis.T @ m.basis, torch.eye(2), atol=1e-4, rtol=0)
    x = torch.from_numpy(model.transform.forward(bumps(50, seed=1))[0])
    with torch.no_grad():
        c = m.encode(x)
        xhat = m.decode(c)
    assert c.shape == (50, 2)
    rel = float(torch.linalg.norm(xhat - x) / torch.linalg.norm(x))
    assert rel < 0.1, rel  # the paper reaches ~1% at full scale
    assert res["history"][-1]["train_loss"] < res["history"][0]["train_loss"]
    # the model file records the family and the basis, and loads back identically
    path = tmp_path / "rrae.safetensors"
    model.save(path)
    again = load_file(path)
    assert isinstance(again.module, RankReductionAutoencoder) and again.module.k == 2
    torch.testing.assert_close(again.module.basis, m.basis)
    with torch.no_grad():
        torch.testing.assert_close(again.module.decode(again.module.encode(x)), xhat)


def test_training_latent_has_rank_k():
    m = RankReductionAutoencoder(32, [16], L=12, k=3)
    yk, uk = m.truncated_latent(torch.randn(20, 32))
    assert torch.linalg.matrix_rank(yk.detach()) == 3 and uk.shape == (12, 3)
    loss, _ = m.train().loss(torch.randn(20, 32))
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_codec_refuses_dense_latents_until_their_coder_exists():
    import pytest

    from saecodec.codec import SAECodec
    from saecodec.errors import SaecodecError
    from saecodec.models import Model

    model = Model(RankReductionAutoencoder(256, [32], L=8, k=2), (16, 16), Transform(), "rrae-untrained")
    with pytest.raises(SaecodecError, match="dense"):
        SAECodec(model).encode(np.ones((16, 16), np.float32))
