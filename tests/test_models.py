import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from saecodec import models, registry
from saecodec.errors import ModelMismatchError, ModelNotFoundError, SaecodecError
from saecodec.models import Model, SparseL1Autoencoder, Transform, load, read_metadata


def test_identity_is_sha256_of_file_and_deterministic(tiny_model, tmp_path):
    a = tiny_model.save(tmp_path / "a.safetensors")
    b = tiny_model.save(tmp_path / "b.safetensors")
    data = (tmp_path / "a.safetensors").read_bytes()
    assert a == b == hashlib.sha256(data).hexdigest()
    assert data == (tmp_path / "b.safetensors").read_bytes()


def test_identity_same_in_another_process(tiny_model, tmp_path):
    path = tmp_path / "m.safetensors"
    ident = tiny_model.save(path)
    code = (
        "import sys; from saecodec.models import load_file; m = load_file(sys.argv[1]); "
        "print(m.save(sys.argv[2]))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "again.safetensors")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ident


def test_metadata_records_what_a_reader_needs(tiny_model, model_dir):
    meta = read_metadata(model_dir / "tiny-test.safetensors")
    assert meta["family"] == "l1"
    assert meta["frame_shape"] == [16, 16]
    assert meta["architecture"]["n"] == 256 and meta["architecture"]["selector"] == "z"
    assert meta["transform"] == {"kind": "asinh", "scale": 0.1, "per_frame": True}
    assert meta["dtype"] == "float32" and meta["format_version"] == 1
    assert meta["coding"]["gap_sigma"] == pytest.approx(128 / 3)


def test_load_by_path_identity_prefix_and_name(tiny_model, on_model_path):
    path = on_model_path / "tiny-test.safetensors"
    by_path = models.load_file(path)
    assert by_path.identity == tiny_model.identity
    for key in (tiny_model.identity, tiny_model.identity[:12], "tiny-test", str(path)):
        m = load(key)
        assert m.identity == tiny_model.identity
    x = torch.randn(3, 256)
    with torch.no_grad():
        assert torch.equal(by_path.module.encode(x), tiny_model.module.encode(x))


def test_missing_model_error_names_identity_name_and_places(on_model_path):
    ident = "ab" * 32
    with pytest.raises(ModelNotFoundError) as err:
        load(ident, name="sas64-nonexistent")
    msg = str(err.value)
    assert ident in msg and "sas64-nonexistent" in msg
    assert str(on_model_path) in msg and "user cache" in msg and "package" in msg
    assert isinstance(err.value, ValueError)


def test_changed_file_is_a_mismatch(tiny_model, tmp_path, monkeypatch):
    d = tmp_path / "m"
    ident = tiny_model.save(d / "x.safetensors")
    monkeypatch.setenv("SAECODEC_MODEL_PATH", str(d))
    with pytest.raises(ModelMismatchError):
        registry.verify(d / "x.safetensors", "0" * 64)
    assert registry.find(ident).identity == ident


def test_not_a_model_file(tmp_path):
    p = tmp_path / "junk.safetensors"
    p.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}       ")
    with pytest.raises(SaecodecError):
        read_metadata(p)


def test_sparse_latent_has_exact_zeros(tiny_model):
    z, _ = tiny_model.transform.forward(np.random.default_rng(1).uniform(0, 10, (8, 16, 16)))
    with torch.no_grad():
        lat = tiny_model.module.encode(torch.from_numpy(z))
    assert (lat == 0).any() and (lat >= 0).all()


def test_bad_architecture_and_frame_shape():
    with pytest.raises(SaecodecError):
        SparseL1Autoencoder(16, 8, 8, selector="nope")
    with pytest.raises(SaecodecError):
        Model(SparseL1Autoencoder(16, 8, 8), (5, 5), Transform(), "bad")
    with pytest.raises(SaecodecError):
        Transform(kind="log", scale=1.0)


def test_transform_is_defined_on_all_reals():
    t = Transform("asinh", 0.5)
    x = np.array([[[-1e4, -1.0, 0.0], [1e-6, 3.0, 1e9]]])
    z, side = t.forward(x)
    back = t.inverse(z, side, (2, 3))
    np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-6)
