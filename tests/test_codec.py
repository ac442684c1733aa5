import array

import numcodecs
import numpy as np
import pytest
from numcodecs.tests import common as nc_common

from conftest import blobs, rel_l2
from saecodec.codec import SAECodec
from saecodec.options import DEFAULT_MAX_ERROR
from saecodec.coding import payload as fmt
from saecodec.errors import ModelMismatchError, PayloadError, SaecodecError
from saecodec.models import Model, SparseL1Autoencoder, Transform

# The tiny test model reconstructs held-out blobs to within this relative L2.
TOL = 0.25


@pytest.fixture
def codec(tiny_model, on_model_path):
    return SAECodec(tiny_model)


def held_out(n=6, dtype=np.float32, shape=(16, 16)):
    return blobs(n, shape=shape, seed=99).astype(dtype)


def test_round_trip_is_close_and_small(codec):
    x = held_out(20)
    enc = codec.encode(x)
    dec = codec.decode(enc)
    assert dec.shape == x.shape and dec.dtype == x.dtype
    assert rel_l2(dec, x) < TOL
    assert len(enc) < x.nbytes / 4


def test_lossy_encode_decode_from_any_buffer(codec):
    """numcodecs' check_encode_decode, adapted to a lossy codec that needs the chunk's shape."""
    x = held_out(4)
    enc = codec.encode(x)
    ref = codec.decode(enc)
    assert rel_l2(ref, x) < TOL
    raw = bytes(enc)
    for buf in (raw, bytearray(raw), array.array("b", raw), np.frombuffer(raw, dtype="u1"), memoryview(raw)):
        np.testing.assert_array_equal(codec.decode(buf), ref)
    out = np.empty_like(x)
    codec.decode(raw, out=out)
    np.testing.assert_array_equal(out, ref)
    out = bytearray(x.nbytes)
    codec.decode(raw, out=out)
    np.testing.assert_array_equal(np.frombuffer(out, dtype=x.dtype).reshape(x.shape), ref)
    # encoding is deterministic
    assert codec.encode(x) == enc


def test_config_round_trip_keeps_identity(codec, tiny_model):
    nc_common.check_config(codec)
    cfg = codec.get_config()
    assert cfg == {"id": "saecodec", "model": tiny_model.identity, "latent_dtype": "float16", "model_name": "tiny-test",
                   "max_error": DEFAULT_MAX_ERROR}
    again = numcodecs.get_codec(cfg)
    assert isinstance(again, SAECodec) and again.model == tiny_model.identity
    old = {**cfg, "weight_dtype": cfg.pop("latent_dtype")}  # configs stored before the rename
    assert numcodecs.get_codec(old) == codec and numcodecs.get_codec(old).weight_dtype == "float16"
    with pytest.warns(UserWarning, match="unknown codec option 'colour'"):  # a newer saecodec's: read (#22)
        newer = numcodecs.get_codec({**cfg, "colour": 1})
    assert newer.model == tiny_model.identity and newer.get_config() == {**cfg, "colour": 1}
    with pytest.raises(SaecodecError, match="cannot be used to write"):
        newer.encode(np.ones((16, 16), "f4"))


def test_repr(codec, tiny_model, monkeypatch):
    monkeypatch.setattr(nc_common, "SAECodec", SAECodec, raising=False)  # check_repr evaluates in its module
    nc_common.check_repr(f"SAECodec(model='{tiny_model.identity}', latent_dtype='float16', model_name='tiny-test', "
                         f"max_error={DEFAULT_MAX_ERROR})")
    assert repr(codec).startswith("SAECodec(model='")


def test_backwards_compatibility_format_v1(monkeypatch, request):
    """Payloads committed under tests/fixture decode, with the committed model file, as before."""
    here = request.path.parent
    monkeypatch.chdir(here)
    monkeypatch.setenv("SAECODEC_MODEL_PATH", str(here / "fixture" / "models"))
    from make_fixtures import v1_arrays, v1_codecs
    from saecodec.models import load_file

    model = load_file(here / "fixture" / "models" / "fixture-16.safetensors")
    arrays, codecs = v1_arrays(), v1_codecs(model.identity)
    nc_common.check_backwards_compatibility("saecodec", arrays, codecs, precision=[-3, -3], prefix="v1")
    # And the exact decoded values of format v1 stay what they were when committed.
    for j in range(len(codecs)):
        for i in range(len(arrays)):
            enc = (here / "fixture/saecodec/v1" / f"codec.{j:02d}" / f"encoded.{i:02d}.dat").read_bytes()
            expected = np.load(here / "fixture/saecodec/v1" / f"codec.{j:02d}" / f"decoded.{i:02d}.npy")
            np.testing.assert_allclose(codecs[j].decode(enc), expected, rtol=2e-4, atol=1e-6)
            assert rel_l2(codecs[j].decode(enc), arrays[i]) < 0.5


@pytest.mark.parametrize("shape", [(16, 16), (3, 16, 16), (2, 2, 16, 16), (30, 41), (68, 68), (1, 5, 7), (2, 0, 16)])
def test_any_leading_dims_and_frame_size(codec, shape):
    rng = np.random.default_rng(3)
    x = (rng.uniform(0.5, 2.0, shape) * 10).astype(np.float32)
    dec = codec.decode(codec.encode(x))
    assert dec.shape == x.shape and dec.dtype == x.dtype
    if x.size:
        assert np.isfinite(dec).all()


def test_tiles_partial_frames(codec):
    big = blobs(1, shape=(40, 40), seed=5)[0]
    x = big[:37, :23].astype(np.float64)
    dec = codec.decode(codec.encode(x))
    assert dec.shape == (37, 23) and dec.dtype == np.float64
    assert rel_l2(dec, x) < 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.uint16, np.int32, np.uint8])
def test_dtypes_come_back(codec, dtype):
    x = held_out(3, np.float64)
    if np.dtype(dtype).kind in "iu":  # detector counts: integers within the type's range
        x = np.rint(x * min(1.0, 250.0 / x.max()))
    x = x.astype(dtype)
    dec = codec.decode(codec.encode(x))
    assert dec.dtype == x.dtype and dec.shape == x.shape
    # Rounded counts are further from the smooth training frames than floats are.
    assert rel_l2(dec, x) < (TOL if np.dtype(dtype).kind == "f" else 0.5)


def test_fortran_order_chunk(codec):
    x = np.asfortranarray(held_out(3))
    dec = codec.decode(codec.encode(x))
    assert dec.flags.f_contiguous
    assert rel_l2(dec, x) < TOL


@pytest.mark.parametrize("bad", [np.zeros(10, np.float32), np.float32(3.0), np.zeros((4, 4), complex),
                                 np.zeros((4, 4), bool), np.array([["a"]])])
def test_wrong_shape_or_dtype_is_a_clear_error(codec, bad):
    with pytest.raises(SaecodecError, match="2D frames|dtype"):
        codec.encode(bad)


def test_nan_and_inf_come_back_exactly(codec):
    x = held_out(2)
    x[0, 3, 3] = np.nan
    x[1, 0, :] = np.inf
    dec = codec.decode(codec.encode(x))
    assert np.isnan(dec[0, 3, 3]) and (dec[1, 0, :] == np.inf).all()
    assert np.isfinite(dec).sum() == np.isfinite(x).sum()


def test_weight_dtypes(tiny_model, on_model_path):
    x = held_out(8)
    sizes = {}
    for wd in ("float16", "bfloat16", "float32"):
        c = SAECodec(tiny_model, latent_dtype=wd)
        enc = c.encode(x)
        sizes[wd] = len(enc)
        assert rel_l2(c.decode(enc), x) < TOL
    assert sizes["float16"] == sizes["bfloat16"] < sizes["float32"]
    with pytest.raises(SaecodecError, match="weight_dtype"):
        SAECodec(tiny_model, weight_dtype="int4")
    assert SAECodec(tiny_model, weight_dtype="float32").latent_dtype == "float32"  # the old name
    with pytest.raises(SaecodecError, match="name one option"):
        SAECodec(tiny_model, latent_dtype="float16", weight_dtype="float32")


def test_payload_of_other_model_fails_loudly(codec, tiny_model):
    other = Model(SparseL1Autoencoder(256, 32, 64), (16, 16), Transform("asinh", 0.1), "other")
    enc = SAECodec(other).encode(held_out(2))
    with pytest.raises(ModelMismatchError, match="tiny-test"):
        codec.decode(enc)


def test_header_is_small_and_checked(codec, tiny_model):
    enc = codec.encode(held_out(1))
    h = fmt.Header.unpack(fmt.Reader(enc))
    assert h.shape == (1, 16, 16) and h.tile == (16, 16)
    assert h.model_check == bytes.fromhex(tiny_model.identity)[:4]
    assert len(h.pack()) <= 17 and h.ext == fmt.EXT_GATE  # and a 4-byte checksum at the end
    for broken in (enc[:5], enc[:-1], b"XX" + enc[2:], enc[:2] + b"\x09" + enc[3:], enc + b"\x00"):
        with pytest.raises(PayloadError):
            codec.decode(broken)


def test_unknown_model_identity_fails_on_use_not_on_open(on_model_path):
    c = SAECodec("cd" * 32, model_name="gone")
    assert c.get_config()["model"] == "cd" * 32
    with pytest.raises(SaecodecError, match="gone"):  # the model is loaded for the first chunk that needs it
        c.encode(np.ones((2, 16, 16), np.float32))


def test_payload_stats_count_the_stored_nonzeros(codec, tiny_model):
    import torch

    from saecodec.chunk import payload_stats

    x = held_out(5)
    z, _ = tiny_model.transform.forward(x)
    with torch.no_grad():
        lat = tiny_model.module.encode(torch.from_numpy(z)).numpy()
    nnz = int((np.float16(lat) != 0).sum())
    enc = codec.encode(x)
    assert payload_stats(enc) == {"frames": 5, "nnz": nnz, "bytes": len(enc), "raw_chunk": False, "latents": True,
                                  "latent_frames": 5, "fallback_frames": 0, "version": fmt.VERSION}


def test_decoder_never_fails_other_than_with_a_saecodec_error(codec):
    """A fast fuzz subset: truncated, bit-flipped and random payloads."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    good = codec.encode(held_out(3))

    @settings(max_examples=300, deadline=None)
    @given(cut=st.integers(0, len(good)), flips=st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 7)),
                                                         max_size=4), tail=st.binary(max_size=64))
    def check(cut, flips, tail):
        buf = bytearray(good)
        for i, bit in flips:
            buf[i] ^= 1 << bit
        buf = bytes(buf[:cut]) + tail
        try:
            out = codec.decode(buf)
        except SaecodecError:
            return
        assert isinstance(out, np.ndarray) and out.ndim >= 2

    check()


def test_a_config_written_by_hand_may_name_the_model(tiny_model, on_model_path):
    codec = numcodecs.get_codec({"id": "saecodec", "model": "tiny-test", "error_bound": 0.5})
    assert codec.model == tiny_model.identity and codec.model_name == "tiny-test" and codec.error_bound == 0.5
    with pytest.raises(SaecodecError, match="without a model codes the bounded and lossless modes only"):
        numcodecs.get_codec({"id": "saecodec"})
    for config in ({"id": "saecodec", "error_bound": 0}, {"id": "saecodec", "model": None, "error_bound": 0}):
        assert numcodecs.get_codec(config).options.model is None  # the model-free codec
