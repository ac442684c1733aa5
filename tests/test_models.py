import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from saecodec import model_store, models
from saecodec.errors import ModelMismatchError, ModelNotFoundError, SaecodecError
from saecodec.model_store import load
from saecodec.modelfile import read_metadata
from saecodec.models import Model, SparseL1Autoencoder, Transform


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
        model_store.verify(d / "x.safetensors", "0" * 64)
    assert model_store.find(ident).identity == ident


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


def test_to_bytes_changes_nothing_and_freeze_rounds_to_the_file():
    torch.manual_seed(0)
    m = Model(SparseL1Autoencoder(16, 8, 8), (4, 4), Transform(), "f16", storage_dtype="float16")
    before = {k: v.clone() for k, v in m.module.state_dict().items()}
    data = m.to_bytes()
    assert m.identity is None
    assert all(torch.equal(before[k], v) for k, v in m.module.state_dict().items())
    ident = m.freeze()
    assert ident == hashlib.sha256(data).hexdigest() and m.freeze() == ident
    rounded = {k: v.to(torch.float16).to(torch.float32) for k, v in before.items()}
    assert all(torch.equal(rounded[k], v) for k, v in m.module.state_dict().items())
    assert any(not torch.equal(before[k], rounded[k]) for k in before)


def test_device_copies_are_cached_and_the_oldest_evicted():
    from saecodec.models import runtime

    mods = [SparseL1Autoencoder(16, 8, 8) for _ in range(runtime.MAX_COPIES + 1)]
    cpu = torch.device("cpu")
    assert runtime.module_on(mods[0], cpu) is mods[0]  # the CPU runs the module itself
    meta = torch.device("meta")  # a device without memory: copies cost nothing here
    first = runtime.module_on(mods[0], meta)
    assert first is not mods[0] and next(first.parameters()).device.type == "meta"
    assert runtime.module_on(mods[0], meta) is first
    for m in mods[1:]:
        runtime.module_on(m, meta)
    assert runtime.module_on(mods[0], meta) is not first  # evicted, copied again
    assert len(runtime._copies) <= runtime.MAX_COPIES


class _WholeFrames(torch.nn.Module):
    """A fully convolutional toy: any frame size, a latent map at half resolution."""

    family, latent_kind = "test-conv", "map"

    def __init__(self):
        super().__init__()
        self.down = torch.nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.up = torch.nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1)

    def encode(self, x):
        assert x.ndim == 4  # whole frames arrive as images
        return self.down(x)

    def decode(self, y):
        return self.up(y)


def test_a_model_without_frame_shape_takes_whole_frames():
    from saecodec.models import runtime

    m = Model(_WholeFrames(), None, Transform(), "whole")
    assert m.tile_for((3, 20, 37)) == (20, 37) and m.tile_for((8, 8)) == (8, 8)
    z = np.random.default_rng(0).standard_normal((3, 20 * 37)).astype(np.float32)
    lat = runtime.encode(m, z, (20, 37), "cpu")
    assert lat.shape == (3, 2, 10, 19)
    out = runtime.decode(m, lat, (20, 37), "cpu")  # the 20 x 38 output image is cropped to the frame
    assert out.shape == (3, 20 * 37) and np.isfinite(out).all()
