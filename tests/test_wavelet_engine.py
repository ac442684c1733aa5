"""The wavelet engine (c_wavelet/): lifting transform, quantiser, contexts, entropy coders.

The C must equal the pure-Python reference (tests/wavelet_reference.py) bit for bit, and
the transform must be PyWavelets' bior4.4 where the two are comparable.
"""

import threading

import numpy as np
import pytest
import pywt

import wavelet_reference as ref
from saecodec.coding.wavelet_engine import Engine, step, step_index
from saecodec.errors import PayloadError, SaecodecError
from saecodec.models.wavelet import WaveletModule, geometric_table, normalise_counts


def engine(**kw):
    mod = WaveletModule(**kw)
    p = mod.engine_params()
    for s in range(mod.nsets):  # distinct table sets, so that the choice matters
        p["freq"][s] = geometric_table(mod.ntok, mod.prec, 0.15 + 0.2 * s)
    if mod.signs == "context":  # signs that depend on their pattern
        p["sign_freq"] = (np.arange(p["sign_freq"].size).reshape(p["sign_freq"].shape) * 37 % 30000 + 1000).astype(
            np.uint32)
    if mod.zero_run:
        p["zr_freq"] = (np.arange(p["zr_freq"].size).reshape(p["zr_freq"].shape) * 53 % 30000 + 1500).astype(np.uint32)
    return Engine(p), p


OLD = dict(tokens="escape", ntok=18, signs="raw", ll_ctx="features", level_rule=0, levels=4, nclasses=16)


def smooth(rng, shape, scale=0.1):
    return np.cumsum(np.cumsum(rng.normal(size=shape), -2), -1) * scale


@pytest.fixture(scope="module")
def cdf():
    return engine(**OLD)[0]


# -- transform -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 1), (1, 7), (5, 1), (2, 3), (3, 2), (9, 13), (64, 64),
                                   (65, 33), (1, 1000), (130, 7), (127, 255), (1024, 1024)])
def test_perfect_reconstruction(cdf, shape):
    x = smooth(np.random.default_rng(0), shape) + 3.0
    c = cdf.forward(x)
    r = cdf.inverse(c)
    assert np.abs(r - x).max() <= 1e-13 * max(1.0, np.abs(x).max())
    if x.size > 1 and cdf.levels(*shape):
        assert not np.allclose(c, x)  # it did transform


def test_perfect_reconstruction_4096(cdf):
    x = np.random.default_rng(1).normal(size=(4096, 4096)).astype(np.float64)
    c = cdf.forward(x)
    x -= cdf.inverse(c)
    assert np.abs(x).max() < 1e-13 * 5
    assert cdf.levels(4096, 4096) == 4


def _sym_periodic(x, axis):
    """The whole-sample symmetric extension of x along axis, one period (2N - 2)."""
    n = x.shape[axis]
    idx = np.concatenate([np.arange(n), np.arange(n - 2, 0, -1)])
    return np.take(x, idx, axis=axis)


@pytest.mark.parametrize("n", [2, 3, 8, 9, 16, 31])
def test_one_level_is_pywt_bior44_on_the_symmetric_extension(n):
    e, _ = engine(levels=1, min_len=2, level_rule=0)
    x = np.random.default_rng(n).normal(size=n)
    c = e.forward(x[None])[0]
    ns = (n + 1) // 2
    ca, cd = pywt.dwt(_sym_periodic(x, 0), "bior4.4", mode="periodization")
    assert np.abs(c[:ns] - ca[:ns]).max() < 1e-11
    assert np.abs(c[ns:] + cd[:n - ns]).max() < 1e-11  # pywt's high band is -d


@pytest.mark.parametrize("hw", [(33, 33), (17, 65)])
def test_three_levels_are_pywt_wavedec2(hw):
    """Sizes 2^3 k + 1 keep every level's low band whole-sample symmetric, so pywt's periodic
    transform of the symmetric extension is this transform (HL: -pywt's cV, LH: -cH, HH: cD)."""
    e, _ = engine(levels=3, min_len=2, level_rule=0)
    x = np.random.default_rng(5).normal(size=hw)
    c = e.forward(x)
    y = _sym_periodic(_sym_periodic(x, 0), 1)
    coeffs = pywt.wavedec2(y, "bior4.4", mode="periodization", level=3)
    bands = e.bands(*hw)
    assert tuple(bands[0, 4:]) == (5, 5) if hw == (33, 33) else True
    lv0, o0, y0, x0, h, w = bands[0]
    assert np.abs(c[:h, :w] - coeffs[0][:h, :w]).max() < 1e-10
    for lv, o, y0, x0, h, w in bands[1:]:
        ch, cv, cdd = coeffs[4 - lv]
        theirs = {1: -cv, 2: -ch, 3: cdd}[o]
        assert np.abs(c[y0:y0 + h, x0:x0 + w] - theirs[:h, :w]).max() < 1e-10, (lv, o)


def test_transform_is_the_reference_bit_for_bit():
    e, p = engine(levels=4, min_len=4, level_rule=0)
    rng = np.random.default_rng(7)
    for shape in [(16, 16), (9, 13), (1, 30), (30, 1), (37, 70)]:
        x = smooth(rng, shape)
        c = e.forward(x)
        assert np.array_equal(c, ref.forward(p, x))
        assert np.array_equal(e.inverse(c), ref.inverse(p, c))


def test_learned_lifting_steps_are_parameters():
    """Extra predict/update steps with any offset and tap count: invertible, and exactly the reference."""
    from saecodec.models.wavelet import cdf97_program

    extra = [("predict", -1, [0.01, -0.02, 0.03]), ("update", -2, [0.005, 0.0, 0.0, -0.004]), ("predict", 0, [0.1])]
    ops, taps = cdf97_program(extra)
    mod = WaveletModule(levels=3, min_len=4, level_rule=0, programs=[cdf97_program()[0], ops],
                        prog_of=[[1, 0], [0, 1], [1, 1]])
    mod.taps = np.concatenate([cdf97_program()[1], taps])
    p = mod.engine_params()
    e = Engine(p)
    x = smooth(np.random.default_rng(8), (23, 41))
    c = e.forward(x)
    assert np.array_equal(c, ref.forward(p, x))
    assert np.abs(e.inverse(c) - x).max() < 1e-12
    assert not np.array_equal(c, engine(levels=3, min_len=4, level_rule=0)[0].forward(x))


def test_level_rules():
    e, _ = engine(levels=4, min_len=8, level_rule=0)  # while the longer side >= min_len
    assert [e.levels(*s) for s in [(64, 64), (8, 8), (7, 7), (1, 64), (1024, 3), (4, 4)]] == [4, 1, 0, 4, 4, 0]
    b = e.bands(1, 64)  # rows only: the bands of the columns are empty
    assert (b[b[:, 1] >= 2][:, 4] == 0).all() and (b[b[:, 1] == 1][:, 4] == 1).all()
    e, _ = engine(levels=6, min_len=8, level_rule=1)  # the coarsest LL keeps both sides >= min_len, >= 1 level
    assert [e.levels(*s) for s in [(64, 64), (128, 128), (1024, 1024), (8, 8), (1, 64), (17, 16)]] == [3, 4, 6, 1, 1, 1]


# -- coder -----------------------------------------------------------------------------------
CODERS = [dict(), dict(nsets=4), dict(adapt={"rate": 5, "smax": 4}),
          dict(adapt={"rate": 32, "smax": 7}, nsets=2), OLD,
          dict(OLD, nsets=2, ll_pred="avg", ntok=6, nclasses=5, levels=3, min_len=4),
          dict(OLD, ll_pred="none", ntok=3, nclasses=1, levels=2, min_len=2, adapt={"rate": 0, "smax": 1}),
          dict(tok_direct=4, ntok=64, ll_classes=3, nclasses=7, level_rule=1, min_len=3),
          dict(zero_run=4, nsets=2, rdo_lambda=0.08), dict(OLD, zero_run=3, adapt={"rate": 254, "smax": 15}),
          dict(OLD, rdo_lambda=0.3)]


@pytest.mark.parametrize("kw", CODERS)
def test_c_coder_is_the_reference_bit_for_bit(kw):
    e, p = engine(**kw)
    p["eg_k"][:] = np.arange(len(p["eg_k"])) % 3
    rng = np.random.default_rng(10)
    p["ctx_w"] = rng.integers(-3, 6, p["ctx_w"].shape).astype(np.int32)  # negative weights, a bias, shifts
    p["bias"] = rng.integers(-50, 50, p["bias"].shape).astype(np.int32)
    p["a_lo"] = rng.integers(-40, 10, p["a_lo"].shape).astype(np.int32)
    p["a_shift"] = rng.integers(0, 3, p["a_shift"].shape).astype(np.int32)
    e = Engine(p)
    rng = np.random.default_rng(11)
    for B, H, W in [(3, 16, 16), (1, 9, 13), (1, 1, 7), (2, 20, 3), (1, 1, 1)]:
        z = smooth(rng, (B, H, W))
        z[0, 0, 0] += 40.0  # a spike: escapes with Exp-Golomb remainders
        for k in (step_index(0.002), step_index(0.1), step_index(3.0), [step_index(0.1), step_index(0.3), step_index(0.3)]):
            k = (k * B)[:B] if isinstance(k, list) else [k] * B
            k = np.maximum(k, ref.min_steps(p, z))  # the encoder refuses steps too fine
            rb, rz, rk = ref.encode(p, z, k)
            cb, cz, ck = e.encode(z, k)
            assert cb == rb, (B, H, W, k)
            assert np.array_equal(cz, rz) and np.array_equal(ck, rk)
            dz, dk, used = e.decode(cb + b"\x01\x02", (B, H, W))
            assert used == len(cb) and np.array_equal(dz, cz) and np.array_equal(dk, ck)


@pytest.mark.parametrize("kw", CODERS[:3])
def test_round_trip_and_error_follow_the_step(kw):
    e, _ = engine(**kw)
    z = smooth(np.random.default_rng(12), (3, 64, 64))
    z -= z.mean(axis=(1, 2), keepdims=True)
    errs, sizes = [], []
    for d in (0.003, 0.03, 0.3):
        data, zhat, used = e.encode(z, step_index(d))
        dz, dk, n = e.decode(data, z.shape)
        assert n == len(data) and np.array_equal(dz, zhat) and np.array_equal(dk, used)
        assert np.abs(zhat - z).max() <= 2 * d * 2 ** 4  # coarse: the step times the LL's gain
        errs.append(np.linalg.norm(zhat - z))
        sizes.append(len(data))
    assert errs[0] < errs[1] < errs[2] and sizes[0] > sizes[1] > sizes[2]


def test_deterministic_across_threads():
    e, _ = engine(nsets=2)
    z = smooth(np.random.default_rng(13), (4, 96, 80))
    one = e.encode(z, step_index(0.02))
    results = [None] * 4

    def work(i):
        results[i] = e.encode(z, step_index(0.02))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for data, zhat, _ in results:
        assert data == one[0] and zhat.tobytes() == one[1].tobytes()


def test_too_fine_steps_are_raised_and_nonfinite_values_refused(cdf):
    z = np.zeros((2, 16, 16))
    z[0] = 1e12
    z[0, 3, 3] = -1e12
    data, zhat, used = cdf.encode(z, 0)
    assert used[0] > 0 and used[1] == 0  # only the frame that needs it
    assert np.array_equal(cdf.decode(data, z.shape)[0], zhat)
    assert np.abs(zhat[0] - z[0]).max() < 1e12 * 2 ** -20
    for bad in (np.nan, np.inf):
        z[1, 2, 2] = bad
        with pytest.raises(SaecodecError, match="cannot quantise"):
            cdf.encode(z, 30000)


def test_stats_count_every_coefficient():
    e, p = engine(nsets=2, zero_run=0)
    z = smooth(np.random.default_rng(14), (3, 20, 31))
    counts, signs, zr, raw = e.stats(z, step_index(0.05))
    assert counts.sum() == z.size and counts.shape == (e.ngroups, e.nclasses, e.ntok)
    per, signs2, zr2, raw2 = e.stats(z, step_index(0.05), per_frame=True)
    assert per.shape == (3,) + counts.shape and np.array_equal(per.sum(0), counts) and raw2 == raw
    syms = [s for f in z for s in ref.symbols(p, f, step_index(0.05))[2]]
    assert signs.sum() == sum(1 for g, cl, v, si in syms if si >= 0) > 0 and zr.sum() == 0
    assert np.array_equal(signs2, signs)
    for g, cl, v, si in syms[:200]:
        if si >= 0:
            assert signs[si // 729, si % 729, int(v < 0)] > 0
    feat, mag, grp = e.features(z, step_index(0.05))
    b0 = e.bands(20, 31)[0]
    assert len(mag) == z.size - 3 * b0[4] * b0[5] and (feat >= 0).all() and grp.min() >= 1


def test_search_finds_the_largest_step_meeting_the_target():
    e, _ = engine()
    z = smooth(np.random.default_rng(15), (3, 48, 40))
    z -= z.mean(axis=(1, 2), keepdims=True)
    lo, hi = step_index(1e-4), step_index(10.0)
    for target in (0.01, 0.05):
        steps = e.search(z, target, lo, hi)
        for f in range(3):
            _, zhat, _ = e.encode(z[f:f + 1], steps[f])
            err = np.linalg.norm(zhat - z[f]) / np.linalg.norm(z[f] - z[f].mean())
            _, zn, _ = e.encode(z[f:f + 1], steps[f] + 1)
            errn = np.linalg.norm(zn - z[f]) / np.linalg.norm(z[f] - z[f].mean())
            assert err <= target < errn
    assert (e.search(z, 10.0, lo, hi) == hi).all()


def test_steps_are_the_exact_powers_of_two(cdf):
    assert step(32768) == 1.0 and step(32768 + 256) == 2.0 and step(32768 - 512) == 0.25
    assert all(ref.step(k) == step(k) for k in range(0, 65536, 61))
    assert step_index(0.01) == round(32768 + 256 * np.log2(0.01))


def test_bad_parameters_are_refused():
    for change in (lambda p: p["freq"].__setitem__((0, 0, 0, 0), p["freq"][0, 0, 0, 0] + 1),  # sum != 2^prec
                   lambda p: p["taps"].__setitem__(8, 0.0),  # a zero scale (scale_s) is not invertible
                   lambda p: p["sign_freq"].__setitem__((0, 0), 0),  # a sign that cannot be coded
                   lambda p: p["ctx_w"].__setitem__((0, 0), 1 << 24),  # context sums beyond int32
                   lambda p: p.__setitem__("tok_direct", 12)):  # not a power of two
        p = WaveletModule().engine_params()
        change(p)
        with pytest.raises(SaecodecError, match="rejected"):
            Engine(p)
    p = WaveletModule().engine_params()
    del p["flut"]
    with pytest.raises(SaecodecError, match="missing"):
        Engine(p)


def test_normalised_tables_sum_and_floor():
    for counts in ([0, 0, 0], [1e9, 1, 0, 0, 5], np.arange(40) ** 3):
        f = normalise_counts(counts, 12)
        assert f.sum() == 4096 and f.min() >= 1


@pytest.mark.parametrize("kw", CODERS[:3])
def test_corrupted_streams_are_errors_never_crashes(kw):
    e, _ = engine(**kw)
    rng = np.random.default_rng(16)
    z = smooth(rng, (2, 24, 20))
    data, zhat, used = e.encode(z, step_index(0.01))
    bad = 0
    for i in range(400):
        b = bytearray(data)
        how = i % 4
        if how == 0:
            b[rng.integers(len(b))] ^= 1 << int(rng.integers(8))
        elif how == 1:
            b = b[:rng.integers(len(b))]
        elif how == 2:
            b[rng.integers(len(b))] = rng.integers(256)
        else:
            b = bytearray(rng.integers(0, 256, rng.integers(0, 64), dtype=np.uint8).tobytes())
        try:
            out, _, n = e.decode(bytes(b), z.shape)
            assert np.isfinite(out).all() and n <= len(b)
        except PayloadError:
            bad += 1
    assert bad > 300


def test_zero_segments_skip_zero_runs_and_are_counted():
    e, p = engine(zero_run=8)
    z = smooth(np.random.default_rng(17), (2, 40, 48))
    counts, _, zr, _ = e.stats(z, step_index(0.2))
    syms = [s for f in z for s in ref.symbols(p, f, step_index(0.2))[2]]
    flags = [s for s in syms if s[0] == "z"]
    assert zr.sum() == len(flags) and zr[..., 0].sum() == sum(s[2] for s in flags) > 0
    assert counts.sum() == len(syms) - len(flags) < z.size  # zero segments code no values


@pytest.mark.parametrize("kw", [dict(rdo_lambda=0.08), dict(OLD, adapt={"rate": 32, "smax": 7}, rdo_lambda=0.2)])
def test_context_profiles_choose_per_frame_as_the_reference(kw):
    """Two profiles (other weights, classes and tables): each frame is coded with the cheaper one;
    C == reference bit for bit, and the decoder follows the stored choice."""
    e0, p0 = engine(**kw)
    p1 = dict(p0)
    rng = np.random.default_rng(21)
    p1["ctx_w"] = rng.integers(0, 5, p0["ctx_w"].shape).astype(np.int32)
    p1["freq"] = np.ascontiguousarray(p0["freq"][..., ::-1])  # another table per class
    p1["sign_freq"] = np.ascontiguousarray(p0["sign_freq"][:, ::-1])
    e = Engine([p0, p1])
    z = smooth(rng, (3, 20, 24))
    z[1] = rng.normal(size=(20, 24)) * 3  # a frame that prefers the other tables
    k = np.maximum([step_index(0.05)] * 3, ref.min_steps(p0, z))
    rb, rz, _ = ref.encode([p0, p1], z, k)
    cb, cz, _ = e.encode(z, k)
    assert cb == rb and np.array_equal(cz, rz)
    dz, dk, used = e.decode(cb, z.shape)
    assert used == len(cb) and np.array_equal(dz, cz)
    single = e0.encode(z, k)[0]
    assert len(cb) <= len(single) + 3  # no worse than profile 0 alone but for the choice bits
    with pytest.raises(SaecodecError, match="profiles"):
        Engine([p0, p1, p1])  # 3 is not a power of two


def test_smooth_fill_keeps_valid_pixels_and_fills_harmonically():
    """The encoder's mask fill: valid pixels untouched, masked ones a smooth continuation (within
    the valid values' range, by the maximum principle; a linear ramp is harmonic, so it is
    restored), frames without valid pixels left alone, and the same bits on every call."""
    from saecodec.coding.wavelet_engine import fill_smooth

    yy, xx = np.mgrid[:24, :20]
    ramp = (0.1 * xx + 0.05 * yy).astype(np.float32)
    z = np.stack([ramp, np.random.default_rng(0).normal(size=(24, 20)).astype(np.float32), ramp])
    m = np.zeros(z.shape, bool)
    m[0, 8:14, 6:12] = True  # a hole inside the ramp
    m[1, :, :5] = True  # an edge strip
    m[2] = True  # nothing valid
    out = fill_smooth(np.where(m, np.float32(7.0), z), m, 2000)
    np.testing.assert_array_equal(out[~m], z[~m])
    np.testing.assert_allclose(out[0], ramp, atol=1e-4)
    assert (out[1][m[1]] >= z[1][~m[1]].min()).all() and (out[1][m[1]] <= z[1][~m[1]].max()).all()
    np.testing.assert_array_equal(out[2], 7.0)
    np.testing.assert_array_equal(out, fill_smooth(np.where(m, np.float32(7.0), z), m, 2000))
    with pytest.raises(SaecodecError):
        fill_smooth(z, m[:, :5], 4)
