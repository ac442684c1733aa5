import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saecodec.coding import payload as fmt
from saecodec.coding import quant, sparse
from saecodec.errors import PayloadError


@settings(max_examples=60, deadline=None)
@given(b=st.integers(0, 12), l=st.integers(1, 300), density=st.floats(0, 1), seed=st.integers(0, 2**31))
def test_gap_symbols_round_trip(b, l, density, seed):
    rng = np.random.default_rng(seed)
    lat = np.where(rng.random((b, l)) < density, rng.random((b, l)) + 0.1, 0.0).astype(np.float32)
    symbols, values = sparse.latents_to_symbols(lat)
    assert len(symbols) == np.count_nonzero(lat) + b and (symbols == 0).sum() == b
    model = sparse.gap_model(l, l / 3, 1e-6)
    words = sparse.encode_symbols(symbols, model)
    decoded = sparse.decode_symbols(words, len(symbols), model)
    np.testing.assert_array_equal(decoded, symbols)
    rows, cols = sparse.symbols_to_positions(decoded, b, l)
    back = np.zeros_like(lat)
    back[rows, cols] = values
    np.testing.assert_array_equal(back, lat)


def test_whole_chunk_is_one_message_close_to_entropy():
    l, b = 512, 200
    rng = np.random.default_rng(0)
    lat = np.where(rng.random((b, l)) < 0.05, 1.0, 0.0).astype(np.float32)
    symbols, _ = sparse.latents_to_symbols(lat)
    model = sparse.gap_model(l, l / 3, 1e-6)
    words = sparse.encode_symbols(symbols, model)
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


def test_header_round_trip_and_truncation():
    h = fmt.Header(fmt.FLAG_FORTRAN, b"\x01\x02\x03\x04", np.dtype("<f8"), 1, (3, 100, 70), (64, 64))
    raw = bytes(h.pack())
    assert fmt.Header.unpack(fmt.Reader(raw)) == h
    assert len(raw) == 11 + 3 + 2  # fixed part, three dims and the tile (one varint byte each)
    for n in range(len(raw)):
        with pytest.raises(PayloadError):
            fmt.Header.unpack(fmt.Reader(raw[:n]))


def test_huge_claimed_shape_is_refused():
    h = bytearray(b"SE\x01\x00\x00\x00\x00\x00\x01\x01\x02")
    fmt.put_varint(h, 1 << 20)
    fmt.put_varint(h, 1 << 20)
    with pytest.raises(PayloadError, match="limit"):
        fmt.Header.unpack(fmt.Reader(bytes(h)))
