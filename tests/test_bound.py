"""The error-bounded mode: every element within the bound, masks exact, never larger than raw."""

import numpy as np
import pytest
from conftest import blobs, bumps, perturb_network_decode

from saecodec import bound, chunk
from saecodec.codec import SAECodec
from saecodec.coding import payload as fmt
from saecodec.data import shared
from saecodec.errors import SaecodecError
from saecodec.models import runtime

FILES = shared.files(shared.REAL_SAS)


def chunks(dtype, seed):
    """Simulated-like frames, log-scaled frames with negatives, and plain noise (out of distribution)."""
    rng = np.random.default_rng(seed)
    x = blobs(4, seed=seed)
    yield x.astype(dtype)
    yield np.log10(x).astype(dtype) - 1.0  # zeros crossings and negatives
    yield (rng.standard_normal((3, 16, 16)) * 10 ** rng.uniform(-3, 3)).astype(dtype)
    yield (blobs(2, shape=(23, 37), seed=seed) * rng.choice([-1, 1], (2, 23, 37))).astype(dtype)


def assert_within(dec, x, eb, masked=None):
    assert dec.shape == x.shape and dec.dtype == x.dtype
    ok = np.isfinite(x) if masked is None else ~masked
    err = np.abs(dec[ok].astype(np.float64) - x[ok].astype(np.float64))
    assert err.max(initial=0.0) <= eb, (err.max(), eb)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode,bounds", [("abs", (1.0, 1e-2, 1e-4)), ("rel", (1e-1, 1e-3, 1e-5))])
def test_bound_holds_on_every_element(tiny_model, dtype, mode, bounds):
    for seed in range(3):
        for x in chunks(dtype, seed):
            for eb in bounds:
                payload = chunk.encode_chunk(tiny_model, x, error_bound=eb, bound_mode=mode)
                assert fmt.Header.unpack(fmt.Reader(payload)).flags & (fmt.FLAG_RESIDUAL | fmt.FLAG_RAW)
                dec = chunk.decode_chunk(tiny_model, payload)
                x64 = x.astype(np.float64)
                ebs = eb if mode == "abs" else eb * (x64.max() - x64.min())
                assert_within(dec, x, ebs)


def test_bound_holds_with_masked_pixels(tiny_model):
    rng = np.random.default_rng(5)
    x = blobs(4, seed=5).astype(np.float32)
    x[0, 6:10, 6:10] = np.nan  # a beamstop
    x[1, :, 7] = np.inf  # a detector gap
    x[2, 3, 3] = -np.inf
    x[3, rng.integers(0, 16, 20), rng.integers(0, 16, 20)] = -1.0  # sentinel, passed as mask_value
    user_mask = np.zeros((16, 16), bool)
    user_mask[0, :] = True  # one masked detector row on every frame
    for eb in (None, 0.5, 1e-3):
        payload = chunk.encode_chunk(tiny_model, x, error_bound=eb, mask_value=-1.0, mask=user_mask)
        dec = chunk.decode_chunk(tiny_model, payload)
        masked = ~np.isfinite(x) | (x == -1.0) | user_mask
        np.testing.assert_array_equal(dec[masked], x[masked])  # NaN == NaN here
        assert np.array_equal(np.isnan(dec), np.isnan(x))
        assert np.isfinite(dec[~masked]).all()
        if eb is not None:
            assert_within(dec, x, eb, masked)


def test_masked_pixels_never_reach_the_network(tiny_model, monkeypatch):
    seen = []
    real = runtime.batched
    monkeypatch.setattr(runtime, "batched", lambda fn, x, dev: (seen.append(np.isfinite(x).all()), real(fn, x, dev))[1])
    x = blobs(2, seed=1)
    x[0, :4, :4] = np.nan
    x[1, 5, 5] = 1e308 * 10  # inf
    chunk.decode_chunk(tiny_model, chunk.encode_chunk(tiny_model, x, error_bound=1e-2, predictor="network"))
    assert seen and all(seen)


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.uint32])
@pytest.mark.parametrize("eb", [0, 0.4, 1, 7.5])
def test_integer_frames_within_floor_of_the_bound(tiny_model, dtype, eb):
    x = (blobs(3, seed=2) * 30).astype(dtype)
    if np.dtype(dtype).kind == "i":
        x = x - np.asarray(200, dtype)  # negatives
    dec = chunk.decode_chunk(tiny_model, chunk.encode_chunk(tiny_model, x, error_bound=eb))
    assert dec.dtype == x.dtype
    err = np.abs(dec.astype(np.int64) - x.astype(np.int64))
    assert err.max() <= np.floor(eb)


def test_uint32_gap_sentinel_is_exact(tiny_model):
    x = (blobs(2, seed=3) * 100).astype(np.uint32)
    x[:, :, 8] = 2**32 - 1  # Eiger-style gap pixels
    codec = SAECodec(tiny_model, error_bound=2, mask_value=2**32 - 1)
    dec = codec.decode(codec.encode(x))
    assert (dec[:, :, 8] == 2**32 - 1).all()
    assert np.abs(dec.astype(np.int64) - x.astype(np.int64)).max() <= 2


def test_bound_survives_another_devices_rounding(tiny_model, monkeypatch):
    """Decode with the network's output perturbed at float32 rounding level (CPU vs CUDA,
    other thread counts): the stored steps reserve room for it."""
    x = np.log10(blobs(6, seed=9)).astype(np.float64)
    network = (bound.MODE_AE, bound.MODE_AE_LORENZO)  # the codings with the network's prediction
    for eb in (1.0, 1e-1, 1e-2, 1e-3):
        payload = chunk.encode_chunk(tiny_model, x, error_bound=eb, codings=network, predictor="network")
        assert np.isin(chunk.plane_modes(tiny_model, payload), (bound.MODE_AE, bound.MODE_AE_LORENZO)).sum() >= 4
        with monkeypatch.context() as m:
            perturb_network_decode(m)
            dec = chunk.decode_chunk(tiny_model, payload)
        assert_within(dec, x, eb)


def test_without_the_guard_another_device_could_break_the_bound(tiny_model, monkeypatch):
    """The reserve of the previous test is what makes it pass: without it, the same
    perturbation breaks the bound on some element."""
    x = np.log10(blobs(6, seed=9)).astype(np.float64)
    monkeypatch.setattr(bound, "NET_TOLERANCE", 0.0)
    monkeypatch.setattr(bound, "ROUND", 0.0)
    eb = 1e-6
    payload = chunk.encode_chunk(tiny_model, x, error_bound=eb, codings=(bound.MODE_AE,), predictor="network")
    real = runtime.batched

    def perturbed(fn, z, dev):
        out = real(fn, z, dev)
        return out if fn.__name__ != "decode" else (out * (1 + 2.0 ** -20)).astype(np.float32)

    monkeypatch.setattr(runtime, "batched", perturbed)
    dec = chunk.decode_chunk(tiny_model, payload)
    assert np.abs(dec - x).max() > eb


def test_bound_is_tight_not_just_lossless(tiny_model):
    x = blobs(4, seed=4)
    payload = chunk.encode_chunk(tiny_model, x, error_bound=0.05)
    dec = chunk.decode_chunk(tiny_model, payload)
    err = np.abs(dec - x)
    assert err.max() <= 0.05 and err.max() > 0.02  # it uses the room it is given
    assert len(payload) < x.nbytes / 4


def test_pure_autoencoder_payload_holds_only_latents_without_bound_and_gate(tiny_model):
    payload = chunk.encode_chunk(tiny_model, blobs(2, seed=1), max_error=None)
    h = fmt.Header.unpack(fmt.Reader(payload))
    assert payload[2] == fmt.VERSION and not h.flags & (fmt.FLAG_RESIDUAL | fmt.FLAG_MASK | fmt.FLAG_RAW)
    assert not h.ext


@pytest.mark.parametrize("eb", [None, 1e-6])
def test_never_larger_than_raw(tiny_model, eb):
    rng = np.random.default_rng(0)
    cases = [rng.standard_normal((4, 16, 16)).astype(np.float32),  # white noise: incompressible
             rng.uniform(0, 1e6, (3, 5)).astype(np.float64),  # smaller than one tile
             rng.integers(0, 2**16, (2, 17, 17)).astype(np.uint16)]  # one pixel more than a tile
    for x in cases:
        payload = chunk.encode_chunk(tiny_model, x, error_bound=eb)
        assert len(payload) <= x.nbytes + 32
        dec = chunk.decode_chunk(tiny_model, payload)
        if eb is not None or fmt.Header.unpack(fmt.Reader(payload)).flags & fmt.FLAG_RAW:
            assert np.abs(dec.astype(np.float64) - x).max() <= (eb or 0)


def test_raw_fallback_is_lossless_and_fortran_aware(tiny_model):
    x = np.asfortranarray(np.random.default_rng(1).standard_normal((5, 6)))
    payload = chunk.encode_chunk(tiny_model, x, error_bound=0.0)
    dec = chunk.decode_chunk(tiny_model, payload)
    assert dec.flags.f_contiguous
    np.testing.assert_array_equal(dec, x)
    with pytest.raises(SaecodecError, match="checksum mismatch"):
        chunk.decode_chunk(tiny_model, payload + b"\0")


def test_bad_bounds_and_masks_are_clear_errors(tiny_model):
    for kwargs in ({"error_bound": -1}, {"error_bound": np.nan}, {"error_bound": "x"}, {"bound_mode": "psnr"}):
        with pytest.raises(SaecodecError, match="error_bound|bound_mode"):
            SAECodec(tiny_model, **kwargs)
    with pytest.raises(SaecodecError, match="mask"):
        chunk.encode_chunk(tiny_model, blobs(1), mask=np.zeros((3, 3), bool))
    with pytest.raises(SaecodecError, match="boolean"):
        chunk.encode_chunk(tiny_model, blobs(1), mask=np.zeros((16, 16)))


def test_config_round_trip_with_bound(tiny_model, on_model_path):
    c = SAECodec(tiny_model, error_bound=1e-3, bound_mode="rel", mask_value=-1)
    cfg = c.get_config()
    assert cfg["error_bound"] == 1e-3 and cfg["bound_mode"] == "rel" and cfg["mask_value"] == -1
    c2 = SAECodec.from_config(cfg)
    assert c2.get_config() == cfg
    assert "error_bound=0.001" in repr(c2)


@pytest.mark.skipif(not FILES, reason="the shared real frames are not on this machine")
@pytest.mark.parametrize("eb", [1e-2, 1e-4])
def test_real_frames_within_relative_bound(eb):
    """39 measured frames: odd sizes, zeros, up to 42% negative pixels, NaN holes."""
    codec = SAECodec("sas64-l1", error_bound=eb, bound_mode="rel")
    total = raw = 0
    for path in FILES:
        x = np.load(path)["I"]
        payload = codec.encode(x)
        dec = codec.decode(payload)
        nan = np.isnan(x)
        assert np.array_equal(np.isnan(dec), nan)
        v = x[~nan]
        assert np.abs(dec[~nan] - v).max() <= eb * (v.max() - v.min())
        total += len(payload)
        raw += x.nbytes
    assert total < raw / 2


def test_backwards_compatibility_format_v2(monkeypatch, request):
    """Committed v2 payloads (NaN holes, sentinel, abs and rel bounds) decode within their bound."""
    import json

    here = request.path.parent
    monkeypatch.setenv("SAECODEC_MODEL_PATH", str(here / "fixture" / "models"))
    root = here / "fixture" / "saecodec" / "v2"
    checked = 0
    for cdir in sorted(root.glob("codec.*")):
        codec = SAECodec.from_config(json.loads((cdir / "config.json").read_text()))
        for enc in sorted(cdir.glob("encoded.*.dat")):
            x = np.load(root / enc.name.replace("encoded", "array").replace(".dat", ".npy"))
            dec = codec.decode(enc.read_bytes())
            masked = np.isnan(x) | (x == codec.mask_value if codec.mask_value is not None else False)
            np.testing.assert_array_equal(dec[masked], x[masked])
            v = x[~masked].astype(np.float64)
            eb = codec.error_bound * ((v.max() - v.min()) if codec.bound_mode == "rel" else 1.0)
            assert np.abs(dec[~masked] - v).max() <= eb
            checked += 1
    assert checked == 6


def test_decoding_v2_payloads_fails_only_with_saecodec_errors(tiny_model):
    """A fast fuzz subset over payloads with every v2 section; benchmarks/fuzz_decoder.py runs 100,000."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    x = np.log10(blobs(3, seed=2)).astype(np.float32)
    x[0, :3, :3] = np.nan
    seeds = [chunk.encode_chunk(tiny_model, x, error_bound=1e-2),
             chunk.encode_chunk(tiny_model, x, error_bound=1.0),
             chunk.encode_chunk(tiny_model, np.random.default_rng(0).standard_normal((2, 5, 5)), error_bound=0.0)]
    flags = {fmt.Header.unpack(fmt.Reader(p)).flags for p in seeds}
    assert any(f & fmt.FLAG_MASK for f in flags) and any(f & fmt.FLAG_RAW for f in flags)

    @settings(max_examples=400, deadline=None)
    @given(which=st.integers(0, len(seeds) - 1), cut=st.floats(0, 1), tail=st.binary(max_size=32),
           flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), max_size=4))
    def check(which, cut, tail, flips):
        buf = bytearray(seeds[which])
        for pos, bit in flips:
            buf[int(pos * (len(buf) - 1))] ^= 1 << bit
        buf = bytes(buf[:int(cut * len(buf))]) + tail if cut < 1 else bytes(buf)
        try:
            out = chunk.decode_chunk(tiny_model, buf)
        except SaecodecError:
            return
        assert isinstance(out, np.ndarray) and out.ndim >= 2

    check()


def test_the_encoder_never_decodes_its_own_bytes(tiny_model, rrae_model, monkeypatch):
    """The latent coders hand back what the decoder will see: no range decoding on encode."""
    from saecodec.coding import entropy

    real = entropy.decode
    for model, x in ((tiny_model, blobs(4, seed=3)), (rrae_model[0], bumps(4, seed=3) * 100)):
        monkeypatch.setattr(entropy, "decode", lambda *a, **k: pytest.fail("the encoder range-decoded"))
        payload = chunk.encode_chunk(model, x, error_bound=1e-2, bound_mode="rel", codings=(bound.MODE_AE,),
                                     predictor="network")
        monkeypatch.setattr(entropy, "decode", real)
        assert (chunk.plane_modes(model, payload) == bound.MODE_AE).any()  # the network's prediction served
        assert np.abs(chunk.decode_chunk(model, payload) - x).max() <= 1e-2 * (x.max() - x.min())


def test_options_of_another_model_are_refused(tiny_model, rrae_model):
    from saecodec.options import CodecOptions

    with pytest.raises(SaecodecError, match="options name model"):
        chunk.encode_chunk(tiny_model, blobs(1), CodecOptions(rrae_model[0].identity))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_cast_is_clip_of_nan_to_num(dtype):
    """``cast`` to a float type gives the bits of clip(nan_to_num(x, nan=0), -max, max) (what it
    computed before nan_to_num's passes were dropped for speed): NaN 0, inf to the largest finite
    value, -0.0 and subnormals kept, rounding at the type's edge."""
    rng = np.random.default_rng(3)
    special = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 7e-46, -7e-46, 1.4e-45,
                        3.4028234663852886e38, 3.4028235677973366e38, -3.40282357e38, 1e39, -1e300, 65504.0,
                        65519.99, 65520.0, -65520.0, 2.9e-8, 6e-8])
    lim = np.finfo(dtype).max
    for x in (special, rng.normal(0, 1, 100_000) * 10.0 ** rng.uniform(-50, 50, 100_000),
              np.frombuffer(rng.bytes(8 * 100_000), np.float64)):
        want = np.empty(x.shape, dtype)
        with np.errstate(over="ignore"):
            want[...] = np.clip(np.nan_to_num(x, nan=0.0), -lim, lim)
        assert bound.cast(x, dtype).tobytes() == want.tobytes()
