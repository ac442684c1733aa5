"""The conv-hyper family and the hyperprior latent kind, through every container.

A tiny model (chans (8, 8), M 8) trained for a few dozen steps in a session fixture; the
drift tests perturb every network output the decoder computes.
"""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
import zarr

from conftest import run_fresh
from saecodec import SAECodec, hdf5
from saecodec.chunk import decode_chunk, encode_chunk
from saecodec.coding import hyperprior
from saecodec.errors import PayloadError, SaecodecError
from saecodec.models import Transform, load_file, runtime
from saecodec.options import CodecOptions
from saecodec.training import ConvHyperConfig, train_conv_hyper
from saecodec.zarr3 import SAEZarrCodec

ARCH = {"chans": [8, 8], "M": 8, "Nh": 8, "k": 5, "hk": 3, "lambdas": [30.0, 300.0, 3000.0]}
SCALE = 1e-3


def rings(n, shape=(48, 48), seed=0):
    """SAS-like frames: a power-law decay with form-factor rings about an off-centre beam."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    cy = rng.uniform(-0.2, 1.2, (n, 1, 1)) * h
    cx = rng.uniform(-0.2, 1.2, (n, 1, 1)) * w
    r = np.hypot(yy - cy, xx - cx) + 1.0
    k = rng.uniform(0.2, 0.8, (n, 1, 1))
    a = 10 ** rng.uniform(1, 4, (n, 1, 1))
    return a * r ** rng.uniform(-3, -1.5, (n, 1, 1)) * (1.2 + np.cos(k * r)) + 1e-2


def u_of(x):
    return np.arcsinh(np.asarray(x, np.float64) / SCALE) / np.log(10)


def frame_rel_l2(x, y):
    """Per frame, the offset-free relative L2 in the model's domain (what the gate bounds)."""
    u, v = u_of(x).reshape(-1, *x.shape[-2:]), u_of(y).reshape(-1, *x.shape[-2:])
    num = ((v - u) ** 2).sum((1, 2))
    den = ((u - u.mean((1, 2), keepdims=True)) ** 2).sum((1, 2))
    return np.sqrt(num / den)


@pytest.fixture(scope="session")
def conv_model(tmp_path_factory):
    torch.manual_seed(0)
    cfg = ConvHyperConfig(steps=150, batch=8, crop=32, lr=1e-2, warmup=10, seed=0, device="cpu", progress=False)
    model, _ = train_conv_hyper(rings(64), arch=ARCH, transform=Transform("asinh", SCALE, True, "mean"),
                                cfg=cfg, name="tiny-conv-hyper")
    d = tmp_path_factory.mktemp("convmodels")
    model.save(d / "tiny-conv-hyper.safetensors")
    return model, d


@pytest.fixture
def conv_path(conv_model, monkeypatch, tmp_path):
    monkeypatch.setenv("SAECODEC_MODEL_PATH", str(conv_model[1]))
    monkeypatch.setenv("SAECODEC_CACHE_DIR", str(tmp_path / "cache"))
    return conv_model[1]


def test_model_file_float16_weights_int32_tables_and_stable_identity(conv_model, tmp_path):
    model, d = conv_model
    from safetensors.numpy import load_file as st_load

    tensors = st_load(str(d / "tiny-conv-hyper.safetensors"))
    assert tensors["tables_y"].dtype == np.int32 and tensors["tables_z"].dtype == np.int32
    assert tensors["g_a.0.weight"].dtype == np.float16
    again = load_file(d / "tiny-conv-hyper.safetensors")
    assert again.identity == model.identity and again.frame_shape is None
    assert again.save(tmp_path / "copy.safetensors") == model.identity  # same bytes
    tables = again.module.entropy_tables()
    assert len(tables["y"]) == tables["scales"][2] and len(tables["z"]) == ARCH["Nh"]
    assert all(c.sum() == 1 << 16 and (c >= 1).all() for _, c in tables["y"] + tables["z"])


@pytest.mark.parametrize("shape", [(3, 37, 53), (256, 256), (2, 2, 9, 70)])
def test_round_trip_any_frame_size(conv_model, shape):
    model, _ = conv_model
    x = rings(int(np.prod(shape[:-2])), shape[-2:], seed=5).reshape(shape).astype(np.float32)
    codec = SAECodec(model, max_error=None)
    payload = codec.encode(x)
    back = codec.decode(payload)
    assert back.shape == x.shape and back.dtype == x.dtype
    assert len(payload) < x.nbytes / 4
    assert np.median(frame_rel_l2(x, back)) < 0.6  # a tiny model trained for seconds: coarse, not garbage


def test_levels_trade_bytes_for_error(conv_model):
    model, _ = conv_model
    x = rings(16, (48, 48), seed=7).astype(np.float32)
    sizes, errors = [], []
    for level in (0, 1, 2):
        codec = SAECodec(model, max_error=None, level=level)
        payload = codec.encode(x)
        sizes.append(len(payload))
        errors.append(np.sqrt((frame_rel_l2(x, codec.decode(payload)) ** 2).mean()))
    assert sizes[0] < sizes[1] < sizes[2]
    assert errors[2] < errors[0]
    default = SAECodec(model, max_error=None).encode(x)
    assert default == SAECodec(model, max_error=None, level=1).encode(x)  # the middle of levels 0..2


def test_level_option_in_config_and_cd_values(conv_model):
    model, _ = conv_model
    codec = SAECodec(model, level=0.7)
    assert codec.level == round(0.7 * 32) / 32
    assert SAECodec.from_config(codec.get_config()).options == codec.options
    sae = hdf5.SAE(model=model.identity, level=1.5)
    assert CodecOptions.from_cd_values(sae.filter_options).options.level == 1.5
    assert CodecOptions.from_cd_values(hdf5.SAE(model=model.identity).filter_options).options.level is None
    assert SAEZarrCodec(model=model.identity, level=2).to_dict()["configuration"]["level"] == 2


def test_bad_levels_and_inputs_are_clear_errors(conv_model, tiny_model):
    model, _ = conv_model
    x = rings(2, (20, 20)).astype(np.float32)
    with pytest.raises(SaecodecError, match="rate levels 0 .. 2"):
        SAECodec(model, level=2.5).encode(x)
    for bad in (-1, float("nan"), "high", 9):
        with pytest.raises(SaecodecError, match="level"):
            SAECodec(model, level=bad)
    with pytest.raises(SaecodecError, match="no rate levels"):
        SAECodec(tiny_model, level=1).encode(np.ones((16, 16), np.float32))
    with pytest.raises(SaecodecError, match="2 dimensions"):
        SAECodec(model).encode(np.ones(10, np.float32))
    payload = bytearray(SAECodec(model, max_error=None).encode(x))
    payload[30] ^= 0x10
    with pytest.raises(PayloadError):
        SAECodec(model).decode(bytes(payload))


def test_nan_and_masks_come_back_exactly(conv_model):
    model, _ = conv_model
    x = rings(2, (33, 40), seed=9).astype(np.float32)
    x[0, 3:6, 4:9] = np.nan
    x[1, 10, :] = -1
    codec = SAECodec(model, mask_values=[-1])
    back = codec.decode(codec.encode(x))
    np.testing.assert_array_equal(np.isnan(back), np.isnan(x))
    assert (back[1, 10] == -1).all()


def _perturbing(monkeypatch, ulps=4, seed=1):
    """Every network output the decoder computes (h_s, g_s) multiplied by 1 + k 2^-23, |k| <= ulps."""
    gen = np.random.default_rng(seed)
    real = runtime.batched

    def batched(fn, x, device, rows=runtime.BATCH):
        outs = real(fn, x, device, rows)
        outs = outs if isinstance(outs, tuple) else (outs,)  # h_s gives (mu, sigma)
        k = [gen.integers(-ulps, ulps + 1, out.shape).astype(np.float32) for out in outs]
        outs = tuple((out * (1 + kk * np.float32(2.0 ** -23))).astype(np.float32) for out, kk in zip(outs, k))
        return outs if len(outs) > 1 else outs[0]

    monkeypatch.setattr(runtime, "batched", batched)


def _recording(monkeypatch):
    seen = []
    real = hyperprior._decode_groups

    def rec(*args):
        out = real(*args)
        seen.append(out.copy())
        return out

    monkeypatch.setattr(hyperprior, "_decode_groups", rec)
    return seen


@pytest.mark.parametrize("shape", [(8, 48, 48), (1, 37, 53)])
def test_decoding_does_not_drift(conv_model, monkeypatch, shape):
    """4-ulp perturbations of every network output at decode: the same symbols (z and y),
    values within float rounding."""
    model, _ = conv_model
    x = rings(shape[0], shape[1:], seed=13).astype(np.float32)
    payload = encode_chunk(model, x, max_error=None, level=1.3)
    with monkeypatch.context() as m:
        plain = _recording(m)
        ref = decode_chunk(model, payload)
    with monkeypatch.context() as m:
        _perturbing(m)
        drifted = _recording(m)
        back = decode_chunk(model, payload)
    assert len(plain) == len(drifted) >= 2 and all(np.array_equal(a, b) for a, b in zip(plain, drifted))
    np.testing.assert_allclose(back, ref, rtol=1e-4)


class _FakeNet:
    """Scales placed on table boundaries (t = k + 1/2 +- 1e-5): the guard's worst case."""

    levels, M, Nh = 3, 2, 1

    def __init__(self, shift=0.0):
        self.shift = shift
        self.module = type("m", (), {"stride": 8})()

    def tables(self):
        from saecodec.models import densities
        return {"z": densities.freeze_factorized(densities.FactorizedDensity(1)),
                "y": densities.freeze_gaussian(), "scales": densities.SCALES}

    def latent_shapes(self, tile):
        h, w = -(-tile[0] // 8), -(-tile[1] // 8)
        return (self.M, h, w), (self.Nh, -(-h // 4), -(-w // 4))

    def gain(self, level):
        return np.ones(self.M, np.float32)

    def analysis(self, yg, tile):
        return np.zeros((len(yg), self.Nh, *self.latent_shapes(tile)[1][1:]), np.float32)

    def synthesis(self, z_hat, tile):
        (M, h, w), _ = self.latent_shapes(tile)
        lo, hi, n = np.log(0.11), np.log(64.0), 64
        t = (np.arange(len(z_hat) * M * h * w) % (n - 1) + 0.5 + np.where(np.arange(len(z_hat) * M * h * w) % 2, 1e-5,
                                                                         -1e-5)).reshape(len(z_hat), M, h, w)
        sigma = np.exp(lo + (t + self.shift) / (n - 1) * (hi - lo))
        return np.zeros_like(sigma, dtype=np.float32), sigma.astype(np.float32)


def test_guard_list_keeps_tables_across_boundary_crossings():
    model = type("M", (), {"identity": None, "name": "fake"})()
    enc = hyperprior.HyperpriorCoder(model, net=_FakeNet())
    y = np.random.default_rng(0).normal(0, 5, (3, 2, 6, 6)).astype(np.float32)
    section, seen, side = enc.write(y, np.zeros((3, 2), np.float32))
    for shift in (2e-5, -2e-5):  # every scale now on the other side of its boundary
        from saecodec.coding.payload import Reader

        dec = hyperprior.HyperpriorCoder(model, net=_FakeNet(shift))
        back, _ = dec.read(Reader(section), 3, (48, 48))
        np.testing.assert_array_equal(back, seen)


@pytest.mark.parametrize("shape", [(12, 64, 64), (1, 320, 320)])
def test_same_bytes_with_one_and_two_threads(conv_model, shape):
    model, _ = conv_model
    x = rings(shape[0], shape[1:], seed=17).astype(np.float32)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = encode_chunk(model, x, max_error=None)
        torch.set_num_threads(2)
        two = encode_chunk(model, x, max_error=None)
    finally:
        torch.set_num_threads(old)
    assert one == two


def test_encoder_networks_do_not_depend_on_the_thread_count(conv_model):
    """oneDNN's convolutions differ in the last bits between 1 and 2 threads on large frames;
    the encoder's (runtime.reproducible) must not, or a rounding decision could flip."""
    module = conv_model[0].module
    x = torch.from_numpy(np.log10(rings(1, (512, 512), seed=43)).astype(np.float32))[:, None]
    outs, old = [], torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.inference_mode(), runtime.reproducible():
                y = module.encode(x)
                mu, sigma = module.hyper_synthesis(torch.round(module.hyper_analysis(y)), y.shape[-2:])
                outs.append((y, mu, sigma, module.decode(y)))
    finally:
        torch.set_num_threads(old)
    assert all(torch.equal(a, b) for a, b in zip(*outs))


def test_quality_gate_holds_with_this_model(conv_model):
    model, _ = conv_model
    x = rings(10, (40, 44), seed=19).astype(np.float32)
    codec = SAECodec(model, max_error=0.1)
    back = codec.decode(codec.encode(x))
    assert frame_rel_l2(x, back).max() <= 0.1 * (1 + 1e-6)


@pytest.mark.parametrize("mode,eb", [("abs", 0.5), ("pwrel", 1e-2)])
def test_error_bound_with_network_predictor_holds(conv_model, mode, eb):
    model, _ = conv_model
    x = rings(4, (37, 53), seed=23).astype(np.float32)
    codec = SAECodec(model, error_bound=eb, bound_mode=mode, predictor="network")
    back = codec.decode(codec.encode(x)).astype(np.float64)
    limit = eb if mode == "abs" else eb * np.abs(x.astype(np.float64))
    assert (np.abs(back - x) <= limit).all()


def test_zarr_v2_and_v3_round_trip(conv_model, conv_path, tmp_path):
    model, _ = conv_model
    x = rings(5, (37, 53), seed=29).astype(np.float32)
    z2 = zarr.create(shape=x.shape, chunks=(2, 37, 53), dtype="f4", store=str(tmp_path / "v2.zarr"), zarr_format=2,
                     compressor=SAECodec(model, level=0.5))
    z2[...] = x
    z3 = zarr.create_array(store=str(tmp_path / "v3.zarr"), shape=x.shape, chunks=(2, 37, 53), dtype="f4",
                           serializer=SAEZarrCodec(model=model.identity, level=0.5), compressors=None)
    z3[...] = x
    out = tmp_path / "back.npz"
    run_fresh(f"""
        import numpy as np, zarr
        a = zarr.open_array({str(tmp_path / "v2.zarr")!r}, mode="r")[...]
        b = zarr.open_array({str(tmp_path / "v3.zarr")!r}, mode="r")[...]
        np.savez({str(out)!r}, a=a, b=b)
        """, {"SAECODEC_MODEL_PATH": str(conv_path)})
    back = np.load(out)
    np.testing.assert_array_equal(back["a"], back["b"])  # one payload, two containers
    np.testing.assert_array_equal(back["a"], z2[...])
    assert np.median(frame_rel_l2(x, back["a"])) < 0.6


def test_hdf5_filter_round_trip(conv_model, conv_path, tmp_path):
    model, _ = conv_model
    x = rings(5, (37, 53), seed=31).astype(np.float32)
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=x, chunks=(2, 37, 53), **hdf5.SAE(model=model.identity, level=2))
    out = tmp_path / "back.npy"
    run_fresh(f"""
        import h5py, numpy as np
        with h5py.File({str(path)!r}, "r") as f:
            np.save({str(out)!r}, f["frames"][...])
        """, {"HDF5_PLUGIN_PATH": str(hdf5.plugin_dir()), "SAECODEC_MODEL_PATH": str(conv_path)})
    back = np.load(out)
    codec = SAECodec(model, level=2)
    np.testing.assert_array_equal(back[:2], codec.decode(codec.encode(x[:2])))
    with h5py.File(path, "r") as f:
        assert f["frames"].id.read_direct_chunk((0, 0, 0))[1] == codec.encode(x[:2])


def test_train_cli_checkpoint_resume_and_use(tmp_path, monkeypatch):
    monkeypatch.setenv("SAECODEC_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "frames.h5"
    with h5py.File(data, "w") as f:
        f["frames"] = rings(12, (24, 24), seed=37)
    ck, out = tmp_path / "ck.pt", tmp_path / "m.safetensors"
    base = [sys.executable, "-m", "saecodec.cli", "train", "--family", "conv-hyper", "--data", str(data),
            "--chans", "4", "--latent-channels", "4", "--hyper-channels", "4", "--lambdas", "100,1000",
            "--crop", "16", "--batch", "4", "--checkpoint", str(ck), "--checkpoint-every", "1", "-o", str(out),
            "--no-register", "--device", "cpu"]
    first = subprocess.run(base + ["--steps", "3"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert torch.load(ck, weights_only=False)["state"]["step"] == 3
    second = subprocess.run(base + ["--steps", "5", "--resume"], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "step" in second.stderr  # the progress bar
    assert torch.load(ck, weights_only=False)["state"]["step"] == 5
    model = load_file(out)
    assert model.family == "conv-hyper" and '"steps": 5' in model.provenance
    x = rings(2, (30, 19), seed=41).astype(np.float32)
    codec = SAECodec(str(out), max_error=None)
    assert codec.decode(codec.encode(x)).shape == x.shape


def test_forged_latent_sections_raise_payload_error_or_decode(conv_model):
    """Mutated latent sections with a valid checksum (what no storage error makes): a
    PayloadError or an array of the chunk's shape, never another exception."""
    from saecodec.coding.payload import seal

    model, _ = conv_model
    x = rings(3, (37, 53), seed=47).astype(np.float32)
    payload = encode_chunk(model, x, max_error=None)
    rng = np.random.default_rng(0)
    for _ in range(200):
        b = bytearray(payload[:-4])
        for _ in range(rng.integers(1, 4)):
            b[rng.integers(17, len(b))] = rng.integers(0, 256)
        if rng.random() < 0.2:
            b = b[:rng.integers(17, len(b))]
        try:
            out = decode_chunk(model, seal(b))
        except PayloadError:
            continue
        assert out.shape == x.shape


def test_log10_variant_reads_log10_arrays(conv_model):
    model, _ = conv_model
    derived = model.for_log10_input()
    assert derived.transform.normalise == "mean" and derived.transform.kind == "linear"
    x = rings(4, (40, 40), seed=53)
    u = np.log10(x).astype(np.float32)
    codec = SAECodec(derived, max_error=None)
    back = codec.decode(codec.encode(u))
    direct = SAECodec(model, max_error=None)
    # log10(x) and asinh(x / 1e-3) / ln 10 differ by a constant per frame where x >> 1e-3
    assert np.abs(back - u).mean() < 2 * np.abs(np.log10(direct.decode(direct.encode(x))) - u).mean() + 0.05


def test_train_from_several_files_with_log10_sets(tmp_path, monkeypatch, capsys):
    """The shipped model's recipe (benchmarks/train_sas_conv_h.py): noiseless simulated sets
    enter as log10(max(I, 1e-6)), the noisy one in the model's asinh domain, one cosine
    schedule whose end and warm-up are options."""
    from saecodec.cli import main
    from saecodec.training.conv_hyper import prepare_frames

    x = rings(3, (16, 16), seed=59)
    x[0, 0, 0] = 0.0
    u = prepare_frames(x, Transform("asinh", SCALE, True, "mean"), np.array([True, False, True]))
    np.testing.assert_allclose(u[0], np.log10(np.maximum(x[0], 1e-6)), rtol=1e-6)
    assert u[0, 0, 0] == np.float32(-6.0)
    np.testing.assert_allclose(u[1], u_of(x[1]), rtol=1e-6)
    monkeypatch.setenv("SAECODEC_CACHE_DIR", str(tmp_path / "cache"))
    files = {}
    for name, n, shape in (("a", 6, (24, 24)), ("b", 4, (24, 24)), ("odd", 2, (20, 24))):
        files[name] = tmp_path / f"{name}.h5"
        with h5py.File(files[name], "w") as f:
            f["frames"] = rings(n, shape, seed=len(name) + n)
    out = tmp_path / "m.safetensors"
    base = ["train", "--family", "conv-hyper", "--chans", "4", "--latent-channels", "4", "--hyper-channels", "4",
            "--lambdas", "100,1000", "--crop", "16", "--batch", "4", "--steps", "3", "--lr-end", "1e-4",
            "--warmup", "2", "--device", "cpu", "--no-register", "-q", "-o", str(out)]
    assert main(base + ["--data", str(files["a"]), "--log10-data", str(files["b"])]) == 0
    record = json.loads(load_file(out).provenance)
    assert record["frames"] == 10 and record["log10_frames"] == 4
    assert record["config"]["lr_end"] == 1e-4 and record["config"]["warmup"] == 2
    assert record["log10_data"] == [str(files["b"])]
    assert main(base + ["--data", str(files["a"]), str(files["odd"])]) == 2
    assert "different shapes" in capsys.readouterr().err
    assert main(["train", "--family", "l1", "--data", str(files["a"]), "--log10-data", str(files["b"])]) == 2
    with pytest.raises(SaecodecError, match="one value per frame"):
        train_conv_hyper(x, arch=ARCH, transform=Transform("asinh", SCALE, True, "mean"),
                         cfg=ConvHyperConfig(steps=1, progress=False), name="t", log10=np.ones(2, bool))
