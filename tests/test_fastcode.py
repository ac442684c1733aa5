"""The compiled coder (saecodec.coding.fast): every bound holds on every element, lossless
is bit-exact (int64/uint64 extremes included), the C decoder reproduces the pure-Python
reference (fastcode_reference.py) bit for bit, and bad streams raise PayloadError."""

import numpy as np
import pytest

import fastcode_reference as reference
from saecodec.coding import fast as fc
from saecodec.errors import PayloadError, SaecodecError

INT_TYPES = ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"]
SHAPES = [(1, 1), (1, 7), (7, 1), (2, 3, 5), (3, 16, 16), (1, 33, 65)]


def rng(seed=0):
    return np.random.default_rng(seed)


def only(pk, with_pred=False):
    """The ``allowed`` bits that force predictor ``pk`` (None: the encoder chooses)."""
    if pk is None:
        return fc.ALLOW_ALL
    k = fc.STENCILS.index(pk)
    return (1 << k) | ((8 << k) if with_pred else 0)


def smooth(shape, seed=0, scale=3.0):
    r = rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, shape[-2]), np.linspace(0, 1, shape[-1]), indexing="ij")
    base = scale * np.sin(3 * xx + 2 * yy) * np.cos(5 * yy)
    return (base + 0.01 * r.standard_normal(shape)).astype(np.float64)


def extremes(dt):
    info = np.iinfo(dt)
    r = rng(1)
    ends = np.array([int(info.min), int(info.max), 0, 1, int(info.max) - 1, int(info.min) + 1], dtype=object).astype(dt)
    vals = np.concatenate([ends, r.integers(info.min, info.max, size=200, dtype=dt, endpoint=True)])
    assert vals.dtype == np.dtype(dt) and vals.max() == info.max and vals.min() == info.min
    return vals


@pytest.mark.parametrize("dt", INT_TYPES)
@pytest.mark.parametrize("pred", [None, "none", "lorenzo", "avg"])
def test_lossless_bit_exact_with_extremes(dt, pred):
    v = extremes(dt)
    x = np.resize(v, (2, 13, 17)).astype(dt)
    x[1] = np.sort(x[1].ravel()).reshape(13, 17)  # a smooth-ish plane too
    b = fc.encode(x, "lossless", allowed=only(pred))
    y = fc.decode(b, x.shape, x.dtype)
    assert y.dtype == x.dtype and (y == x).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_lossless_masked_elements_untouched_and_rest_exact(shape):
    x = rng(2).poisson(3.0, size=shape).astype(np.int32)
    m = rng(3).random(shape) < 0.2
    x[m] = -1
    b = fc.encode(x, "lossless", mask=m)
    out = np.full(shape, 12345, np.int32)
    fc.decode(b, shape, np.int32, mask=m, out=out)
    assert (out[~m] == x[~m]).all() and (out[m] == 12345).all()


@pytest.mark.parametrize("dt", ["f4", "f8"])
@pytest.mark.parametrize("eb", [1e-1, 1e-3, 1e-6, 1e-9])
def test_abs_bound_float(dt, eb):
    x = smooth((3, 40, 50), seed=4).astype(dt)
    x[0, 0, :5] = [1e30, -1e30, 3e38 if dt == "f4" else 1e300, 1e-40, -0.0]
    b, st = fc.encode(x, "abs", eb, stats=True)
    y = fc.decode(b, x.shape, x.dtype)
    assert np.all(np.abs(y.astype(np.float64) - x.astype(np.float64)) <= eb)


def test_abs_float_nan_inf_without_mask_are_stored_exactly():
    x = smooth((1, 20, 20)).astype(np.float32)
    x[0, 3, 4], x[0, 5, 6], x[0, 7, 8] = np.nan, np.inf, -np.inf
    b, st = fc.encode(x, "abs", 1e-3, stats=True)
    y = fc.decode(b, x.shape, x.dtype)
    assert st["n_fallback"] == 3
    assert np.array_equal(y.view(np.uint32)[~np.isfinite(x)], x.view(np.uint32)[~np.isfinite(x)])
    fin = np.isfinite(x)
    assert np.all(np.abs(y[fin].astype(np.float64) - x[fin]) <= 1e-3)


def test_abs_with_prediction_and_per_plane_steps():
    x = smooth((4, 30, 30), seed=5)
    pred = x + 0.05 * rng(6).standard_normal(x.shape)
    eb = np.array([1e-2, 1e-3, 1e-4, 2e-2])
    b = fc.encode(x.astype(np.float32), "abs", 0.0, pred=pred, half_step=eb * 0.999, eb_verify=eb)
    y = fc.decode(b, x.shape, np.float32, pred=pred)
    err = np.abs(y.astype(np.float64) - x.astype(np.float32)).reshape(4, -1).max(axis=1)
    assert np.all(err <= eb)
    with pytest.raises(fc.PayloadError):
        fc.decode(b, x.shape, np.float32)  # the stream needs the prediction


@pytest.mark.parametrize("dt", INT_TYPES)
@pytest.mark.parametrize("eb", [1, 2.5, 100])
def test_abs_integers_round_to_integers_within_floor_eb(dt, eb):
    x = np.resize(extremes(dt), (3, 11, 9)).astype(dt)
    b = fc.encode(x, "abs", eb)
    y = fc.decode(b, x.shape, x.dtype)
    d = np.abs(y.astype(object) - x.astype(object))
    assert max(d.ravel()) <= int(np.floor(eb))


@pytest.mark.parametrize("dt", ["f4", "f8"])
@pytest.mark.parametrize("eb", [1e-1, 1e-2, 1e-4])
def test_pwrel_bound_zeros_signs(dt, eb):
    r = rng(7)
    x = (np.exp(r.normal(0, 5, size=(2, 37, 41))) * np.sign(r.normal(size=(2, 37, 41)))).astype(dt)
    x[r.random(x.shape) < 0.1] = 0
    x[0, 0, :4] = [np.finfo(dt).max, np.finfo(dt).tiny, np.finfo(dt).smallest_subnormal, -np.finfo(dt).max]
    b = fc.encode(x, "pwrel", eb)
    y = fc.decode(b, x.shape, x.dtype)
    xv, yv = x.astype(np.float64), y.astype(np.float64)
    assert np.all(np.abs(yv - xv) <= eb * np.abs(xv))
    assert np.all((y == 0) == (x == 0)) and np.all(np.sign(y) == np.sign(x))


@pytest.mark.parametrize("kind", ["positive", "negative", "zero"])
def test_pwrel_uniform_classes(kind):
    x = np.exp(rng(8).normal(size=(1, 20, 30))).astype(np.float32)
    x = {"positive": x, "negative": -x, "zero": 0 * x}[kind]
    y = fc.decode(fc.encode(x, "pwrel", 1e-2), x.shape, x.dtype)
    assert np.all(np.abs(y.astype(np.float64) - x) <= 1e-2 * np.abs(x.astype(np.float64)))


def test_pwrel_integers():
    x = rng(9).integers(-100000, 100000, size=(2, 20, 20)).astype(np.int32)
    y = fc.decode(fc.encode(x, "pwrel", 1e-2), x.shape, x.dtype)
    assert np.all(np.abs(y.astype(np.float64) - x) <= 1e-2 * np.abs(x.astype(np.float64)))


@pytest.mark.parametrize("dt", ["u2", "u4", "i4", "u8", "i8", "f4", "f8"])
@pytest.mark.parametrize("eb", [0.1, 0.5, 1.0, 3.0])
def test_poisson_bound_integers_come_back_integers(dt, eb):
    r = rng(10)
    lam = np.exp(r.uniform(-3, 12, size=(2, 30, 40)))
    x = r.poisson(lam).astype(dt)
    if np.dtype(dt).itemsize >= 4:
        x[0, 0, :3] = [np.iinfo(np.uint32).max - 2 if dt in ("u4", "u8", "i8", "f8") else 2**31 - 2, 0, 1]
    b = fc.encode(x, "poisson", eb)
    y = fc.decode(b, x.shape, x.dtype)
    xv, yv = x.astype(np.float64), y.astype(np.float64)
    assert np.all(np.abs(yv - xv) <= eb * np.sqrt(np.maximum(xv, 1)))
    assert np.all(yv == np.rint(yv))


def test_poisson_negative_and_fractional_values_are_kept_exactly():
    x = np.array([[[-3.0, 2.5, 7.0, 1e17]]])
    b, st = fc.encode(x, "poisson", 0.5, stats=True)
    y = fc.decode(b, x.shape, x.dtype)
    assert y[0, 0, 0] == -3.0 and y[0, 0, 3] == 1e17 and abs(y[0, 0, 1] - 2.5) <= 0.5
    assert st["n_fallback"] >= 2


def test_exp2_is_the_reference_bit_for_bit():
    t = np.concatenate([np.linspace(-1100, 1100, 100001), rng(11).normal(0, 300, 100000), [0.5, -0.5, 1e-300]])
    c = fc.exp2(t)
    assert np.array_equal(c.view(np.uint64), reference.exp2_det(t).view(np.uint64))


@pytest.mark.parametrize("case", ["abs", "abs3", "abstall", "abspred", "pwrel", "poisson", "lossless", "absint", "masked"])
def test_c_decoder_equals_python_reference(case):
    r = rng(12)
    m = pred = None
    if case == "abs":
        x, mode, eb = smooth((2, 9, 11)).astype(np.float32), "abs", 1e-3
    elif case == "abs3":  # a plane pair and a plane split in row halves, masked elements
        x, mode, eb = smooth((3, 9, 11)).astype(np.float64), "abs", 1e-6
        m = r.random(x.shape) < 0.2
    elif case == "abstall":  # an unpaired plane split into two row halves (>= 128 rows)
        x, mode, eb = smooth((1, 130, 3)).astype(np.float32), "abs", 1e-4
    elif case == "abspred":
        x, mode, eb = smooth((3, 7, 10)).astype(np.float32), "abs", 1e-3
        pred = x + 0.01 * r.standard_normal(x.shape)
    elif case == "pwrel":
        x, mode, eb = (np.exp(r.normal(0, 3, (2, 9, 11))) * np.sign(r.normal(size=(2, 9, 11)))).astype(np.float64), "pwrel", 1e-2
        x[0, 1, 1] = 0
    elif case == "poisson":
        x, mode, eb = r.poisson(np.exp(r.uniform(0, 9, (2, 9, 11)))).astype(np.uint32), "poisson", 0.5
    elif case == "lossless":
        x, mode, eb = np.resize(extremes("i8"), (2, 9, 11)), "lossless", 0
    elif case == "absint":
        x, mode, eb = r.integers(-1000, 1000, (2, 9, 11)).astype(np.int16), "abs", 3
    else:
        x, mode, eb = r.poisson(5, (2, 9, 11)).astype(np.int32), "lossless", 0
        m = r.random(x.shape) < 0.3
    for pk in (None, "none", "lorenzo", "avg"):
        kw = dict(pred=pred, half_step=np.full(x.shape[0], eb * 0.99), eb_verify=np.full(x.shape[0], eb)) if pred is not None else {}
        b = fc.encode(x, mode, eb, mask=m, allowed=only(pk, pred is not None), **kw)
        y = fc.decode(b, x.shape, x.dtype, mask=m, pred=pred, out=np.zeros(x.shape, x.dtype))
        ref = reference.decode(b, x.shape, x.dtype, mask=m, pred=pred)
        assert np.array_equal(y.view(np.uint8), ref.view(np.uint8))


def test_deterministic_bytes():
    x = smooth((3, 20, 20)).astype(np.float32)
    assert fc.encode(x, "abs", 1e-3) == fc.encode(x.copy(), "abs", 1e-3)


def test_corrupted_streams_raise():
    x = smooth((2, 30, 30)).astype(np.float32)
    b = fc.encode(x, "abs", 1e-3)
    r = rng(13)
    raised = 0
    for _ in range(300):
        bb = bytearray(b)
        for _ in range(r.integers(1, 4)):
            i = r.integers(len(bb))
            bb[i] ^= 1 << r.integers(8)
        try:
            fc.decode(bytes(bb), x.shape, x.dtype)
        except fc.PayloadError:
            raised += 1
    assert raised > 200  # most flips are caught; none crash (the fuzz harness checks more)
    for cut in (0, 1, 5, len(b) // 2, len(b) - 1):
        with pytest.raises(fc.PayloadError):
            fc.decode(b[:cut], x.shape, x.dtype)
    with pytest.raises(fc.PayloadError):
        fc.decode(b + b"\0", x.shape, x.dtype)
    with pytest.raises(fc.PayloadError):
        fc.decode(b, (2, 30, 31), x.dtype)
    with pytest.raises(fc.PayloadError):
        fc.decode(b, x.shape, np.float64)


def test_fallback_positions_may_hold_any_code():
    """Regression (found by fuzz/fuzz_roundtrip.c): a fallback element's code is the prediction,
    which for poisson can be negative and for integer abs out of the type's range; the decoder
    maps every code deterministically and the fallback value overwrites it."""
    x = np.array([[[1000, 0], [0, -7]]], np.int32)  # -7 is no count: stored exactly; its code is the
    y = fc.decode(fc.encode(x, "poisson", 0.5, allowed=only("lorenzo")), x.shape, x.dtype)  # prediction 0+0-code(1000) < 0
    assert y[0, 1, 1] == -7 and abs(int(y[0, 0, 0]) - 1000) <= 0.5 * np.sqrt(1000)
    big = np.full((1, 5, 5), np.iinfo(np.int64).max, np.int64)
    big[0, ::2] = np.iinfo(np.int64).min
    y = fc.decode(fc.encode(big, "abs", 5.0), big.shape, big.dtype)
    assert (np.abs(y.astype(object) - big.astype(object)) <= 5).all()


@pytest.mark.parametrize("mode,eb", [("poisson", 0.5), ("poisson", 1.0), ("abs", 2)])
def test_dithered_integer_bins_are_unbiased(mode, eb):
    """Averages over many pixels (I(q)) must not drift: with dither the mean error is pure
    noise (|mean| < 5 sigma of the mean); fixed bin centres are biased on skewed counts."""
    x = rng(17).poisson(3.0, (1, 300, 300)).astype(np.int32)
    tol = eb * np.sqrt(np.maximum(x, 1)) if mode == "poisson" else np.floor(eb)
    for dither in (True, False):
        y = fc.decode(fc.encode(x, mode, eb, dither=dither), x.shape, x.dtype)
        err = (y - x).astype(np.float64)
        assert np.all(np.abs(err) <= tol)
        sigma_mean = np.sqrt(np.mean(tol ** 2) / 3 / x.size)
        if dither:
            assert abs(err.mean()) < 5 * sigma_mean
        else:
            assert abs(err.mean()) > 5 * sigma_mean


def test_c_decoder_equals_reference_without_dither():
    r = rng(18)
    x = r.poisson(np.exp(r.uniform(0, 9, (2, 9, 11)))).astype(np.uint32)
    for mode, eb in (("poisson", 0.7), ("abs", 3)):
        b = fc.encode(x, mode, eb, dither=False)
        y = fc.decode(b, x.shape, x.dtype)
        assert np.array_equal(y, reference.decode(b, x.shape, x.dtype))


def test_planes_choose_the_prediction_only_where_it_pays():
    """Per plane the encoder codes the residual to the caller's prediction or the plane
    itself; the decoder follows the stored choice (and equals the reference)."""
    x = smooth((4, 24, 20), seed=19)
    pred = x.copy()
    pred[1] += rng(20).standard_normal(x[1].shape)  # a useless prediction on plane 1
    pred[3] = 0.0  # and none on plane 3
    eb = 1e-3
    b = fc.encode(x, "abs", eb, pred=pred, half_step=np.full(4, eb * 0.99), eb_verify=np.full(4, eb))
    pk, on = fc.plane_choices(b, 4)
    assert on.tolist() == [True, False, True, False] and fc.uses_pred(b)
    y = fc.decode(b, x.shape, x.dtype, pred=pred)
    assert np.abs(y - x).max() <= eb
    assert np.array_equal(y, reference.decode(b, x.shape, x.dtype, pred=pred))
    # no plane uses it: the stream does not need it
    b = fc.encode(x, "abs", eb, pred=pred, half_step=np.full(4, eb), eb_verify=np.full(4, eb), allowed=fc.ALLOW_PLAIN)
    assert not fc.uses_pred(b) and np.abs(fc.decode(b, x.shape, x.dtype) - x).max() <= eb


def test_prediction_planes_are_verified_before_the_cast():
    """eb_verify bounds base + e itself, so a caller can reserve room for another decoder."""
    x = smooth((2, 30, 30), seed=21).astype(np.float32)
    pred = x.astype(np.float64) + 1e-3 * rng(22).standard_normal(x.shape)
    vb = np.array([1e-4, 1e-4])
    b = fc.encode(x, "abs", 1.0, pred=pred, half_step=vb, eb_verify=vb, allowed=fc.ALLOW_PRED)
    y = fc.decode(b, x.shape, x.dtype, pred=pred)
    assert np.abs(y.astype(np.float64) - x).max() <= 1e-4 + np.spacing(np.float32(np.abs(x).max()))


def test_float16_values_are_verified_as_float16():
    r = rng(23)
    x = (np.exp(r.normal(0, 3, (2, 20, 30)).clip(-16, 11)) * r.choice([-1, 1], (2, 20, 30))).astype(np.float16)
    x[0, 0, :4] = [65504, -65504, 6e-8, 0]
    for mode, eb in (("abs", 1e-2), ("abs", 5.0), ("pwrel", 1e-2), ("pwrel", 1e-3)):
        y = fc.decode(fc.encode(x, mode, eb), x.shape, x.dtype)
        assert y.dtype == np.float16
        tol = eb * (np.abs(x.astype(np.float64)) if mode == "pwrel" else 1.0)
        assert np.all(np.abs(y.astype(np.float64) - x.astype(np.float64)) <= tol)
    counts = r.poisson(50, (1, 40, 40)).astype(np.float16)
    y = fc.decode(fc.encode(counts, "poisson", 1.0), counts.shape, counts.dtype)
    assert np.all(np.abs(y.astype(np.float64) - counts) <= np.sqrt(np.maximum(counts.astype(np.float64), 1)))


def test_float16_rounding_is_numpys():
    r = rng(24)
    bits = r.integers(0, 2 ** 32, 20000, dtype=np.uint64).astype(np.uint32)
    v = bits.view(np.float32)
    v = np.concatenate([v[np.isfinite(v)], np.float32([65504, 65519, 65520, 6e-8, 2.98e-8, 2.99e-8, -0.0, 1e-45]),
                        (r.uniform(-7e4, 7e4, 5000)).astype(np.float32), r.normal(0, 1e-5, 5000).astype(np.float32)])
    c = np.array([fc.lib.fc_cast(float(a), 10) for a in v])
    with np.errstate(over="ignore"):  # above 65504: inf, in both
        assert np.array_equal(c.astype(np.float16).view(np.uint16), v.astype(np.float16).view(np.uint16))


def test_masks_sentinels_and_ranges():
    x = rng(25).poisson(3.0, (2, 9, 11)).astype(np.uint32)
    x[0, 2] = 2 ** 32 - 1
    x[1, 3, 4] = 7
    bits, n = fc.special(x, [2 ** 32 - 1, 7, -1, 2.5])  # -1 and 2.5 are no uint32: they match nothing
    m = np.unpackbits(bits, count=x.size).reshape(x.shape).astype(bool)
    assert n == m.sum() and np.array_equal(m, (x == 2 ** 32 - 1) | (x == 7))
    bits, n = fc.special(x, below=1)
    assert n == (x < 1).sum()
    f = np.array([[1.0, np.nan, -np.inf], [4.0, -1.0, 2.0]])
    bits, n = fc.special(f, [-1.0])
    assert n == 3
    lo, hi, count = fc.value_range(f, bits)
    assert (lo, hi, count) == (1.0, 4.0, 3)
    out = np.zeros_like(f)
    fc.scatter(out, bits, fc.gather(f, bits, n))
    assert np.isnan(out[0, 1]) and out[0, 2] == -np.inf and out[1, 1] == -1 and out[0, 0] == 0
    with pytest.raises(PayloadError):
        fc.scatter(out, bits, fc.gather(f, bits, n)[:2])


def test_bad_arguments_are_saecodec_errors():
    x = smooth((1, 5, 5))
    with pytest.raises(SaecodecError):
        fc.encode(x, "lossless")  # lossless is for integers
    with pytest.raises(SaecodecError):
        fc.encode(x, "pwrel", -1.0)
    with pytest.raises(SaecodecError):
        fc.encode(x, "poisson", 1e9)
    with pytest.raises(SaecodecError):
        fc.encode(x, "median")
