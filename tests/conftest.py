import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from saecodec.models import Transform
from saecodec.training import TrainConfig, train_l1

FRAME = (16, 16)


def blobs(n, shape=FRAME, seed=0):
    """Positive 2D Gaussian peaks over a flat background, spanning three decades."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    cy = rng.uniform(0.25 * h, 0.75 * h, (n, 1, 1))
    cx = rng.uniform(0.25 * w, 0.75 * w, (n, 1, 1))
    s = rng.uniform(0.1, 0.25, (n, 1, 1)) * min(h, w)
    a = 10 ** rng.uniform(0, 3, (n, 1, 1))
    return a * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s**2)) + 0.1


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_model(model_dir):
    """A 16x16 sparse L1 autoencoder trained for a few seconds, saved in ``model_dir``."""
    cfg = TrainConfig(epochs=30, batch=128, lr=3e-3, seed=0, device="cpu", progress=False)
    model, _ = train_l1(blobs(3000), m_frac=0.5, l_frac=0.5, lam=0.1, selector="z",
                        transform=Transform("asinh", 0.1), cfg=cfg, name="tiny-test")
    model.save(model_dir / "tiny-test.safetensors")
    return model


def bumps(n, size=16, seed=0):
    """A Gaussian bump moved on a 2D grid: two parameters, as in the RRAE paper's test."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / (size - 1)
    cx, cy = rng.uniform(0.3, 0.7, (2, n, 1, 1))
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 0.12**2)) + 0.05


@pytest.fixture(scope="session")
def rrae_model(tmp_path_factory):
    """A 16x16 rank reduction autoencoder (k = 2) trained on bumps, saved in its own directory."""
    from saecodec.training import train_rrae

    cfg = TrainConfig(epochs=80, batch=64, lr=3e-3, seed=0, device="cpu", progress=False)
    model, _ = train_rrae(bumps(800) * 100, k=2, L=16, hidden=(128, 64), transform=Transform("asinh", 1.0),
                          cfg=cfg, finetune_steps=200, name="rrae-bumps")
    d = tmp_path_factory.mktemp("rrae")
    model.save(d / "rrae-bumps.safetensors")
    return model, d


@pytest.fixture
def on_model_path(monkeypatch, model_dir, tmp_path):
    """Makes the session's models findable through SAECODEC_MODEL_PATH, with an empty user cache."""
    monkeypatch.setenv("SAECODEC_MODEL_PATH", str(model_dir))
    monkeypatch.setenv("SAECODEC_CACHE_DIR", str(tmp_path / "cache"))
    return model_dir


def run_fresh(code: str, env_extra: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """Run Python code in a new interpreter; fails the test with its stderr if it fails."""
    env = dict(os.environ)
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def rel_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def perturb_network_decode(monkeypatch, ulps=16, seed=0):
    """Make every network decoder output differ by up to ``ulps`` float32 ulps, as another
    device or thread count may: what the bounds and the gate must survive."""
    from saecodec.models import runtime

    real, rng = runtime.batched, np.random.default_rng(seed)

    def perturbed(fn, z, dev):
        out = real(fn, z, dev)
        if fn.__name__ != "decode":
            return out
        ulp = np.spacing(np.abs(out).astype(np.float32)).astype(np.float64)
        return (out + ulp * rng.integers(-ulps, ulps + 1, out.shape)).astype(np.float32)

    monkeypatch.setattr(runtime, "batched", perturbed)

