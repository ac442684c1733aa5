"""Regenerate the committed format v1, v2 and v3 fixtures (run only when the format changes on purpose).

    python tests/make_fixtures.py

Writes tests/fixture/models/fixture-16.safetensors, then lets numcodecs'
check_backwards_compatibility write arrays, configs and payloads (only those missing), and
stores the decoded values next to them so that later versions must decode v1 and v3
payloads to the same numbers. v1 and v2 payloads can no longer be written (this saecodec
writes v3): their files are kept as they are.
"""

import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from conftest import blobs  # noqa: E402
from numcodecs.tests.common import check_backwards_compatibility  # noqa: E402

from saecodec.codec import SAECodec  # noqa: E402
from saecodec.models import Transform, load_file  # noqa: E402
from saecodec.training import TrainConfig, train_l1  # noqa: E402


def main():
    models_dir = HERE / "fixture" / "models"
    path = models_dir / "fixture-16.safetensors"
    if not path.exists():
        cfg = TrainConfig(epochs=30, batch=128, lr=3e-3, seed=1, device="cpu")
        model, _ = train_l1(blobs(3000, seed=1), m_frac=0.5, l_frac=0.5, lam=0.1,
                            transform=Transform("asinh", 0.1), cfg=cfg, name="fixture-16",
                            provenance="tests/make_fixtures.py: 3000 Gaussian blobs 16x16, seed 1")
        model.save(path)
    write_fixtures("v1", v1_arrays, v1_codecs, precision=[-3, -3], decoded=True)


def write_fixtures(prefix, arrays_of, codecs_of, precision, decoded):
    """numcodecs' fixtures of one format version (only those missing), and with ``decoded``
    the values this saecodec decodes them to, which later versions must reproduce."""
    model = load_file(HERE / "fixture" / "models" / "fixture-16.safetensors")
    os.environ["SAECODEC_MODEL_PATH"] = str(HERE / "fixture" / "models")
    os.chdir(HERE)
    arrays, codecs = arrays_of(), codecs_of(model.identity)
    check_backwards_compatibility("saecodec", arrays, codecs, precision=precision, prefix=prefix)
    for j, codec in enumerate(codecs if decoded else ()):
        for i in range(len(arrays)):
            d = HERE / "fixture/saecodec" / prefix / f"codec.{j:02d}"
            out = d / f"decoded.{i:02d}.npy"
            if not out.exists():
                np.save(out, codec.decode((d / f"encoded.{i:02d}.dat").read_bytes()))


def v1_arrays():
    """Format v1: the pure autoencoder, float32 and float64 chunks, one of them tiled with edges."""
    return [blobs(3, seed=7).astype(np.float32), blobs(2, shape=(20, 37), seed=8).astype(np.float64)]


def v1_codecs(identity):
    """As configured when v1 was written: before the quality gate (max_error) existed."""
    return [SAECodec(identity, model_name="fixture-16", max_error=None),
            SAECodec(identity, latent_dtype="float32", model_name="fixture-16", max_error=None)]


def v2_arrays():
    """Format v2: NaN holes and a sentinel column, decoded under error bounds."""
    a = np.log10(blobs(3, seed=9)).astype(np.float32)
    a[0, 5:9, 5:9] = np.nan
    b = blobs(2, shape=(20, 37), seed=10)
    b[:, :, 3] = -1.0
    return [a, b]


def v2_codecs(identity):
    return [SAECodec(identity, model_name="fixture-16", error_bound=1e-2, max_error=None),
            SAECodec(identity, model_name="fixture-16", error_bound=0.05, mask_value=-1, max_error=None),
            SAECodec(identity, model_name="fixture-16", error_bound=1e-3, bound_mode="rel", max_error=None)]


def main_v2():
    write_fixtures("v2", v2_arrays, v2_codecs, precision=[-1, -1, -1], decoded=False)


def v3_arrays():
    """Format v3 (checksum, quality gate): frames the model knows with a NaN hole, and
    Poisson counts it does not (the gate falls back), 20x37 planes (edge tiles)."""
    a = blobs(3, seed=12).astype(np.float32)
    a[1, 2:5, 3:9] = np.nan
    rng = np.random.default_rng(13)
    b = rng.poisson(rng.uniform(2, 300, (3, 1, 1)) * np.ones((3, 20, 37))).astype(np.int32)
    b[:, 4, :] = -1
    return [a, b]


def v3_codecs(identity):
    return [SAECodec(identity, model_name="fixture-16"),  # the quality gate at its default
            SAECodec(identity, model_name="fixture-16", latent_dtype="float32", max_error=0.05, mask_value=-1),
            SAECodec(identity, model_name="fixture-16", error_bound=0.5, mask_value=-1)]


def main_v3():
    write_fixtures("v3", v3_arrays, v3_codecs, precision=[-30, -30, -30], decoded=True)

if __name__ == "__main__":
    main()
    main_v2()
    main_v3()
