import constriction
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saecodec.coding import entropy, latents, quant, sparse
from saecodec.coding import payload as fmt
from saecodec.errors import PayloadError, SaecodecError


class _Lat:
    """What a latent coder reads from a model: its latent kind, size and coding parameters."""

    def __init__(self, kind, size, coding):
        self.latent_kind, self.coding = kind, coding
        self.module = type("Net", (), {"latent_size": size})()


@settings(max_examples=60, deadline=None)
@given(b=st.integers(0, 12), l=st.integers(1, 300), density=st.floats(0, 1), seed=st.integers(0, 2**31),
       code=st.sampled_from(sorted(quant.LATENT_DTYPES)))
def test_sparse_coder_bytes_read_back_as_what_write_returned(b, l, density, seed, code):
    rng = np.random.default_rng(seed)
    lat = np.where(rng.random((b, l)) < density, rng.random((b, l)) + 0.1, 0.0).astype(np.float32)
    side = rng.normal(size=(b, 2)).astype(np.float32)
    coder = latents.coder_for(_Lat("sparse", l, {"gap_sigma": l / 3, "gap_floor": 1e-6}), code)
    data, seen, seen_side = coder.write(lat, side)
    np.testing.assert_array_equal(seen, quant.quantize(lat, code))  # what the decoder will see
    reader = fmt.Reader(data)
    back, back_side = coder.read(reader, b, (1, 1))
    assert reader.remaining() == 0
    np.testing.assert_array_equal(back, seen)
    np.testing.assert_array_equal(back_side, seen_side)


@settings(max_examples=40, deadline=None)
@given(b=st.integers(0, 12), k=st.integers(1, 8), seed=st.integers(0, 2**31))
def test_dense_coder_bytes_read_back_as_what_write_returned(b, k, seed):
    rng = np.random.default_rng(seed)
    coding = {"coef_mean": rng.normal(size=k).tolist(), "coef_std": rng.uniform(0.1, 3, k).tolist(), "coef_step": 0.05}
    coeffs = (np.asarray(coding["coef_mean"]) + rng.normal(size=(b, k)) * 3).astype(np.float32)
    side = rng.normal(size=(b, 2)).astype(np.float32)
    coder = latents.coder_for(_Lat("dense", k, coding), 0)
    data, seen, _ = coder.write(coeffs, side)
    step = 0.05 * np.asarray(coding["coef_std"])
    assert np.all(np.abs(seen - coeffs) <= step / 2 + 1e-5)  # quantised to the step
    back, back_side = coder.read(fmt.Reader(data), b, (1, 1))
    np.testing.assert_array_equal(back, seen)
    np.testing.assert_array_equal(back_side, side)


def test_a_latent_kind_without_a_coder_is_refused():
    with pytest.raises(SaecodecError, match="no coder"):
        latents.coder_for(_Lat("maps", 4, {}), 0)


def test_whole_chunk_is_one_message_close_to_entropy():
    l, b = 512, 200
    rng = np.random.default_rng(0)
    lat = np.where(rng.random((b, l)) < 0.05, 1.0, 0.0).astype(np.float32)
    symbols, _ = sparse.latents_to_symbols(lat)
    model = sparse.gap_model(l, l / 3, 1e-6)
    words = entropy.encode(symbols, model)
    np.testing.assert_array_equal(entropy.decode(words, model, len(symbols), what="gap"), symbols)
    family = constriction.stream.model.QuantizedGaussian(-8, 8)
    with pytest.raises(PayloadError, match="corrupted payload: gap decoding failed"):  # constriction's own error
        entropy.decode(words, family, np.zeros(3), np.ones(2), what="gap")
    s = np.arange(l + 1)
    p = np.exp(-0.5 * (s / (l / 3)) ** 2) + 1e-6
    p /= p.sum()
    info_bits = -np.log2(p[symbols]).sum()
    assert 32 * len(words) <= info_bits + 64  # one message: at most ~a word of overhead


def test_symbols_with_wrong_frame_count_are_rejected():
    with pytest.raises(PayloadError):
        sparse.symbols_to_positions(np.array([3, 0, 2]), 1, 10)
    with pytest.raises(PayloadError):
        sparse.symbols_to_positions(np.array([11, 0]), 1, 10)


@pytest.mark.parametrize("code", sorted(quant.LATENT_DTYPES))
def test_quantisation_matches_stored_bytes(code):
    v = np.random.default_rng(1).lognormal(0, 2, 1000).astype(np.float32)
    q = quant.quantize(v, code)
    np.testing.assert_array_equal(quant.from_bytes(quant.to_bytes(v, code), len(v), code), q)
    assert np.max(np.abs(q - v) / v) < {1: 1e-3, 2: 4e-3, 3: 1e-7}[code]


@given(st.integers(0, 2**62))
def test_varint(value):
    out = bytearray()
    fmt.put_varint(out, value)
    assert fmt.Reader(bytes(out)).varint() == value


def test_negative_varint_is_a_payload_error():
    with pytest.raises(PayloadError, match="non-negative"):
        fmt.put_varint(bytearray(), -1)


def test_header_round_trip_and_truncation():
    h = fmt.Header(fmt.FLAG_FORTRAN, b"\x01\x02\x03\x04", np.dtype("<f8"), 1, (3, 100, 70), (64, 64))
    raw = fmt.seal(h.pack())
    assert fmt.Header.unpack(fmt.Reader(raw)) == h
    # fixed part, extended flags, three dims and the tile (one varint byte each), checksum
    assert len(raw) == 11 + 1 + 3 + 2 + fmt.CHECKSUM_BYTES
    for n in range(len(raw)):
        with pytest.raises(PayloadError):
            fmt.Header.unpack(fmt.Reader(raw[:n]))


def test_huge_claimed_shape_is_refused():
    h = bytearray(b"SE\x01\x00\x00\x00\x00\x00\x01\x01\x02")
    fmt.put_varint(h, 1 << 20)
    fmt.put_varint(h, 1 << 20)
    with pytest.raises(PayloadError, match="limit"):
        fmt.Header.unpack(fmt.Reader(bytes(h)))


def test_a_missing_compiled_extension_fails_at_first_use_naming_the_fix(monkeypatch):
    """A failed C build leaves the package importable: the extension's stand-in raises one clear
    error at first use (saecodec.coding.compiled, for the compiled coder and the wavelet engine)."""
    import sys

    from saecodec.coding import compiled
    from saecodec.errors import SaecodecError

    monkeypatch.setitem(sys.modules, "saecodec.coding._wavelet", None)  # import fails
    ffi, lib = compiled.extension("_wavelet", "wavelet engine")
    with pytest.raises(SaecodecError, match=r"wavelet engine \(saecodec.coding._wavelet\) is not built .*pip install"):
        lib.wl_step(0)
    assert callable(compiled.extension("_fastcode", "compiled coder")[1].fc_encode)  # the real one
