"""Bound modes, masks and lossless integers through the codec (issue #14): every element of
every dtype within its bound, masked pixels exact and never seen by the network, options
round-tripped through numcodecs configs, zarr v3 dicts and HDF5 cd_values."""

import os
import subprocess

import h5py
import numpy as np
import pytest
import zarr
from conftest import blobs

from saecodec import bound, chunk, hdf5
from saecodec.codec import SAECodec
from saecodec.coding import payload as fmt
from saecodec.errors import SaecodecError
from saecodec.models import runtime
from saecodec.options import CodecOptions
from saecodec.zarr3 import SAEZarrCodec

FLOATS = [np.float16, np.float32, np.float64]
INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def tolerance(mode, eb, x):
    x = x.astype(np.float64)
    return {"abs": eb, "rel": eb * (np.nanmax(x) - np.nanmin(x)), "pwrel": eb * np.abs(x),
            "poisson": eb * np.sqrt(np.maximum(x, 1))}[mode]


def within(dec, x, mode, eb, exact=None):
    """Every element within its bound; ``exact`` (boolean) elements bit for bit."""
    assert dec.dtype == x.dtype and dec.shape == x.shape
    exact = ~np.isfinite(x.astype(np.float64)) if exact is None else exact
    assert np.array_equal(dec[exact].view(np.uint8), x[exact].view(np.uint8)) if x.dtype.itemsize == 1 else \
        np.array_equal(dec[exact].view(f"u{x.dtype.itemsize}"), x[exact].view(f"u{x.dtype.itemsize}"))
    ok = ~exact
    err = np.abs(dec[ok].astype(np.float64) - x[ok].astype(np.float64))
    tol = tolerance(mode, eb, np.where(exact, np.nan, x.astype(np.float64)))
    tol = tol[ok] if np.ndim(tol) else tol
    assert np.all(err <= tol), (mode, eb, float(np.max(err - tol, initial=0)))


def signed_frames(dtype, seed=0):
    """Log-scaled frames with zeros, negatives, decades of range; NaN and inf for floats."""
    rng = np.random.default_rng(seed)
    x = blobs(3, shape=(20, 23), seed=seed) * rng.choice([-1.0, 1.0], (3, 20, 23))
    x[0, :3, :3] = 0.0
    x = x.astype(dtype)
    x[1, 5, :4] = [np.finfo(dtype).max / 2, -np.finfo(dtype).tiny, 0, np.finfo(dtype).smallest_subnormal]
    x[2, 7, 7], x[2, 8, 8], x[2, 9, 9] = np.nan, np.inf, -np.inf
    return x


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode,bounds", [("abs", (1.0, 1e-3)), ("rel", (1e-2, 1e-5)), ("pwrel", (1e-1, 1e-2, 1e-4))])
def test_float_modes_on_every_element(tiny_model, dtype, mode, bounds):
    x = signed_frames(dtype)
    if mode != "pwrel":
        x[1, 5, 0] = 1e4  # abs/rel on FLT_MAX / 2 would make every bound trivial
    for eb in bounds:
        dec = chunk.decode_chunk(tiny_model, chunk.encode_chunk(tiny_model, x, error_bound=eb, bound_mode=mode))
        within(dec, x, mode, eb)
        if mode == "pwrel":
            fin = np.isfinite(x)
            assert np.array_equal(dec[fin] == 0, x[fin] == 0) and np.array_equal(np.sign(dec[fin]), np.sign(x[fin]))


def extremes(dtype, shape=(2, 11, 13), seed=1):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    x = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    x.reshape(-1)[:6] = np.array([info.min, info.max, 0, 1, info.max - 1, info.min + 1], dtype=object).astype(dtype)
    return x


@pytest.mark.parametrize("dtype", INTS)
def test_integers_lossless_and_abs_with_extremes(tiny_model, dtype):
    x = extremes(dtype)
    for eb in (0.0, 0.99, 1.0, 7.5):
        p = chunk.encode_chunk(tiny_model, x, error_bound=eb)
        dec = chunk.decode_chunk(tiny_model, p)
        assert dec.dtype == x.dtype
        err = np.abs(dec.astype(object) - x.astype(object))
        assert max(err.ravel()) <= int(np.floor(eb))


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint32, np.int64, np.uint64, np.float32, np.float64])
@pytest.mark.parametrize("eb", [0.5, 1.0, 3.0])
def test_poisson_bound_at_several_count_levels(tiny_model, dtype, eb):
    rng = np.random.default_rng(2)
    levels = np.array([0.3, 3, 30, 300, 3e4])[:, None, None]
    x = rng.poisson(levels * np.exp(rng.normal(0, 0.5, (5, 24, 24)))).astype(dtype)
    dec = chunk.decode_chunk(tiny_model, chunk.encode_chunk(tiny_model, x, error_bound=eb, bound_mode="poisson"))
    within(dec, x, "poisson", eb)
    assert np.array_equal(dec, np.rint(dec))  # integers stay integers


def test_poisson_keeps_what_is_no_count_exactly(tiny_model):
    x = np.random.default_rng(3).poisson(50.0, (2, 16, 16)).astype(np.float64)
    x[0, 0, :3] = [-3.0, 2.5, 1e17]
    dec = chunk.decode_chunk(tiny_model, chunk.encode_chunk(tiny_model, x, error_bound=1.0, bound_mode="poisson"))
    assert list(dec[0, 0, :3]) == [-3.0, 2.5, 1e17]
    within(dec, x, "poisson", 1.0)


def test_pilatus_like_counts_lossless_with_gap_sentinels(tiny_model):
    rng = np.random.default_rng(4)
    x = rng.poisson(20, (1, 60, 47)).astype(np.int32)
    x[0, 20:23, :] = -1  # module gaps
    x[0, rng.integers(0, 60, 9), rng.integers(0, 47, 9)] = -2  # dead pixels
    codec = SAECodec(tiny_model, error_bound=0, mask_values=[-1, -2])
    p = codec.encode(x)
    assert np.array_equal(codec.decode(p), x)
    h = fmt.Header.unpack(fmt.Reader(p))
    assert h.flags & fmt.FLAG_NO_LATENTS and h.flags & fmt.FLAG_MASK and not h.flags & fmt.FLAG_RAW
    assert len(p) < x.nbytes / 2


def test_masks_sentinels_threshold_and_boolean(tiny_model):
    x = np.log10(blobs(4, shape=(16, 16), seed=5)).astype(np.float32)
    x[0, 2, :] = -1.0
    x[1, :, 3] = 4e9
    x[2, 5, 5] = -50.0
    frame = np.zeros((16, 16), bool)
    frame[8:11, 8:11] = True  # a beamstop on every frame
    codec = SAECodec(tiny_model, error_bound=1e-3, bound_mode="pwrel", mask_values=[-1.0, 4e9], mask_below=-20,
                     mask=frame)
    masked = (x == -1.0) | (x == np.float32(4e9)) | (x < -20) | frame
    dec = codec.decode(codec.encode(x))
    within(dec, x, "pwrel", 1e-3, exact=masked)
    extra = np.zeros((4, 16, 16), bool)
    extra[3, 0, 0] = True  # this call's own mask, on top of the codec's
    dec = chunk.decode_chunk(tiny_model, chunk.encode_chunk(tiny_model, x, codec.options, mask=extra))
    within(dec, x, "pwrel", 1e-3, exact=masked | extra)


def test_frame_mask_that_does_not_fit_the_chunk_is_a_clear_error(tiny_model):
    codec = SAECodec(tiny_model, error_bound=1e-3, mask=np.zeros((16, 16), bool))
    with pytest.raises(SaecodecError, match=r"chunks must hold whole frames"):
        codec.encode(np.zeros((2, 8, 16), np.float32))
    with pytest.raises(SaecodecError, match="boolean"):
        SAECodec(tiny_model, mask=np.zeros((4, 4)))


def test_masked_pixels_never_reach_the_network(tiny_model, monkeypatch):
    seen = []
    real = runtime.batched

    def spy(fn, z, dev):
        seen.append(z)
        return real(fn, z, dev)

    monkeypatch.setattr(runtime, "batched", spy)
    x = blobs(2, seed=6)
    x[0, :4, :4] = 9e9
    x[1, 6, :] = -7.0
    for mode in ("abs", "pwrel"):
        seen.clear()
        codec = SAECodec(tiny_model, error_bound=1e-2, bound_mode=mode, mask_values=[9e9, -7], predictor="network")
        dec = codec.decode(codec.encode(x))
        within(dec, x, mode, 1e-2, exact=(x == 9e9) | (x == -7))
        assert seen and all(np.abs(z).max() < 1e3 for z in seen)  # normalised frames, no sentinel in them


def test_the_fast_path_never_runs_the_network(tiny_model, monkeypatch):
    monkeypatch.setattr(runtime, "batched", lambda *a: pytest.fail("the network ran"))
    x = np.log10(blobs(3, seed=7))
    for mode in ("abs", "rel", "pwrel", "poisson"):
        p = chunk.encode_chunk(tiny_model, x if mode != "poisson" else np.rint(x * 100), error_bound=0.1,
                               bound_mode=mode)
        assert fmt.Header.unpack(fmt.Reader(p)).flags & fmt.FLAG_NO_LATENTS
        chunk.decode_chunk(tiny_model, p)


def test_pwrel_against_the_network_in_log2_survives_another_devices_rounding():
    """The log-domain pwrel coding (used when the network pays): decoded with a prediction
    perturbed at float32 rounding level, every element stays within eb |x|."""
    rng = np.random.default_rng(8)
    x = (np.exp(rng.normal(0, 3, (4, 24, 24))) * rng.choice([-1, 1], (4, 24, 24))).astype(np.float32)
    x[0, :2] = 0
    masked = np.zeros(x.shape, bool)
    masked[1, 3, :] = True
    y = x.astype(np.float64) * (1 + 0.002 * rng.standard_normal(x.shape))  # a very good network
    sens = 2.0 ** -20 * np.abs(y) + 1e-9  # float32 rounding level
    for eb in (1e-2, 1e-4):
        out = bytearray()
        assert bound.write_network(out, x, masked, "pwrel", eb, y, sens, latent_bytes=0)
        assert out[0] == bound.KIND_LOG
        sec = bound.read_section(fmt.Reader(bytes(out)), 4, (24, 24), x.dtype, True, fmt.VERSION)
        bits = np.packbits(masked.reshape(-1))
        y2 = y + sens * rng.uniform(-1, 1, y.shape)  # another decoder's prediction, within the guard
        dec = bound.reconstruct(sec, y2, x.shape, x.dtype, mask=bits)
        dec[masked] = x[masked]  # what the mask section restores
        within(dec, x, "pwrel", eb, exact=masked)
        assert np.all(dec[~masked & (x == 0)] == 0)


def test_network_modes_choose_per_plane_and_keep_the_bound(tiny_model):
    x = np.log10(blobs(6, seed=9))
    for eb in (1e-2, 1e-3):
        p = chunk.encode_chunk(tiny_model, x, error_bound=eb, predictor="network", codings=(bound.MODE_AE,))
        assert (chunk.plane_modes(tiny_model, p) == bound.MODE_AE).all()
        within(chunk.decode_chunk(tiny_model, p), x, "abs", eb)


def test_big_endian_and_fortran_chunks(tiny_model):
    x = np.log10(blobs(2, seed=10)).astype(">f4")
    dec = chunk.decode_chunk(tiny_model, chunk.encode_chunk(tiny_model, x, error_bound=1e-3, bound_mode="pwrel"))
    assert dec.dtype == x.dtype
    within(dec.astype("<f4"), x.astype("<f4"), "pwrel", 1e-3)
    f = np.asfortranarray(np.random.default_rng(11).poisson(9, (20, 30)).astype(np.uint16))
    dec = chunk.decode_chunk(tiny_model, chunk.encode_chunk(tiny_model, f, error_bound=0.5, bound_mode="poisson"))
    assert dec.flags.f_contiguous
    within(dec, f, "poisson", 0.5)


OPTIONS = [
    {"error_bound": 1e-2, "bound_mode": "pwrel"},
    {"error_bound": 0.5, "bound_mode": "poisson", "mask_values": [-1, -2]},
    {"error_bound": 0, "mask_value": 2**32 - 1},
    {"error_bound": 1e-3, "mask_values": [2**64 - 1, -2**63, -0.5], "mask_below": -1e30},
    {"error_bound": 1e-3, "bound_mode": "rel", "predictor": "network", "mask": np.eye(16, dtype=bool)},
]


@pytest.mark.parametrize("opts", OPTIONS)
def test_options_round_trip_config_zarr_and_cd_values(tiny_model, on_model_path, opts):
    codec = SAECodec(tiny_model.identity, **opts)
    cfg = codec.get_config()
    assert SAECodec.from_config(cfg).options == codec.options
    z = SAEZarrCodec(model=tiny_model.identity, **opts)
    assert SAEZarrCodec.from_dict(z.to_dict()).options == z.options == codec.options
    sae = hdf5.SAE(tiny_model.identity, **opts)
    assert CodecOptions.from_cd_values(sae.filter_options).options == codec.options
    if "mask_value" in opts:
        assert codec.mask_value == opts["mask_value"] and cfg["mask_value"] == opts["mask_value"]


def test_old_readers_still_parse_new_cd_values(tiny_model):
    """An older saecodec reads only the entries it knows: bound (abs), first sentinel."""
    from saecodec import options as opt

    o = CodecOptions(tiny_model.identity, error_bound=0.5, bound_mode="poisson", mask_values=(-2, -1))
    cd = list(o.cd_values())
    words = cd[11:11 + cd[10]]
    assert opt._unpack_bound(words[:3]) == {"error_bound": 0.5, "bound_mode": "abs"}
    assert opt._unpack_mask(words[3:6]) == {"mask_values": (-2,)}


def test_bad_options_are_clear_errors(tiny_model):
    for kwargs, match in (({"bound_mode": "psnr", "error_bound": 1}, "bound_mode"),
                          ({"mask_values": ["x"]}, "mask_value"), ({"mask_below": "low"}, "mask_below"),
                          ({"predictor": "oracle"}, "predictor"), ({"mask_values": list(range(17))}, "at most"),
                          ({"error_bound": 1e9, "bound_mode": "poisson"}, "poisson")):
        with pytest.raises(SaecodecError, match=match):
            SAECodec(tiny_model, **kwargs)


def test_zarr_v3_store_with_masks_and_pwrel(tiny_model, on_model_path, tmp_path):
    x = np.log10(blobs(4, seed=12)).astype(np.float32)
    x[:, 0, :] = -1
    frame = np.zeros((16, 16), bool)
    frame[4:6, 4:6] = True
    codec = SAEZarrCodec(model=tiny_model.identity, error_bound=1e-2, bound_mode="pwrel", mask_values=[-1],
                         mask=frame)
    a = zarr.create_array(str(tmp_path / "s.zarr"), shape=x.shape, chunks=(2, 16, 16), dtype="float32",
                          serializer=codec, compressors=None)
    a[...] = x
    back = zarr.open_array(str(tmp_path / "s.zarr"))[...]
    within(back, x, "pwrel", 1e-2, exact=(x == -1) | frame)


def test_hdf5_pwrel_poisson_lossless_through_h5py_and_h5dump(tiny_model, on_model_path, tmp_path):
    rng = np.random.default_rng(13)
    counts = rng.poisson(30, (4, 16, 16)).astype(np.int32)
    counts[:, 7, :] = -1
    x = np.log10(blobs(4, seed=13)).astype(np.float32)
    frame = np.zeros((16, 16), bool)
    frame[0, :] = True
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("pwrel", data=x, chunks=(2, 16, 16),
                         **hdf5.SAE(tiny_model.identity, error_bound=1e-3, bound_mode="pwrel", mask=frame))
        f.create_dataset("poisson", data=counts, chunks=(2, 16, 16),
                         **hdf5.SAE(tiny_model.identity, error_bound=1.0, bound_mode="poisson", mask_values=[-1]))
        f.create_dataset("frames", data=counts, chunks=(4, 16, 16),
                         **hdf5.SAE(tiny_model.identity, error_bound=0, mask_values=[-1]))
    with h5py.File(path, "r") as f:
        within(f["pwrel"][...], x, "pwrel", 1e-3, exact=np.broadcast_to(frame, x.shape))
        within(f["poisson"][...], counts, "poisson", 1.0, exact=counts == -1)
        assert np.array_equal(f["frames"][...], counts)
    h5dump = __import__("shutil").which("h5dump")
    if h5dump is None and not os.environ.get("CI"):
        pytest.skip("h5dump not installed")
    env = {**os.environ, "HDF5_PLUGIN_PATH": str(hdf5.plugin_dir())}
    proc = subprocess.run([h5dump, "-d", "frames", "-y", "-w", "0", str(path)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    values = [int(v) for v in proc.stdout.split("DATA {", 1)[1].replace("}", " ").replace(",", " ").split()]
    assert np.array_equal(np.array(values).reshape(counts.shape), counts)


def test_bench_bounds_suite_checks_its_anchors(tiny_model, on_model_path):
    """saecodec bench --suite bounds on synthetic frames: pwrel against SZ2/SZ3/SPERR,
    lossless/poisson counts against Bitshuffle; the checks are computed per method."""
    from saecodec.bench import bounds as bb

    rng = np.random.default_rng(14)
    yy, xx = np.mgrid[-20:20, -20:20] * 0.01
    intensity = 100 * np.exp(-(yy**2 + xx**2) / 0.02) * (1 + 0.1 * rng.standard_normal((40, 40))) + 1
    intensity[::7, ::5] = 0.0
    res = bb.real_pwrel(tiny_model.identity, 1e-2, np.float32, 1, [("syn", {"I": intensity, "qx": xx, "qy": yy})])
    row = res["rows"][0]
    assert row["saecodec pwrel"]["within_bound"] and not row["SZ3 relative (range)"]["within_bound"]
    assert res["summary"]["saecodec pwrel"]["frames_within_bound"] == 1
    assert row["saecodec pwrel"]["iq_dev"] <= 0.01
    counts = rng.poisson(20, (48, 40)).astype(np.int32)
    counts[10] = -1
    rows = bb.counts_suite(tiny_model.identity, [("c", counts)], (-1,), stack=False)
    assert rows[0]["saecodec lossless"]["ok"] and rows[0]["saecodec poisson 1"]["ok"]
    assert rows[0]["saecodec lossless"]["ratio"] > rows[0]["Bitshuffle+zstd"]["ratio"]
    assert "pwrel 0.01" in bb.markdown({"versions": {"machine": "m", "cpus": 2}, "date": "d", "real_pwrel": [res],
                                        "raw_counts": rows})


@pytest.mark.parametrize("output,sentinels", [("int32", [-1, -2]), ("uint32", [2**32 - 1])])
def test_poisson_bound_on_simulated_detector_frames_at_several_count_levels(tiny_model, output, sentinels):
    """The done-when of #14 on the detector simulator's count frames (module gaps, dead
    pixels, a beamstop shadow, Poisson noise): peak counts from 10 to 1e6, through the codec
    class with the detector's sentinels masked; every element within eb sqrt(max(x, 1)),
    sentinels exact, counts integer and unbiased on average."""
    from saecodec.data.detector import preset, simulate_detector

    for peak in (10.0, 1e3, 1e6):
        cfg = preset("saxs-pilatus" if output == "int32" else "eiger-1m", shape=(96, 80), module=(40, 80),
                     gap=(5, 0), dead=(1e-3, 1e-3), counts=(peak, peak))
        x = simulate_detector(2, seed=int(peak), cfg=cfg, workers=1, progress=False).frames
        masked = np.isin(x, sentinels)
        assert masked.any() and x[~masked].max() >= peak / 3  # gaps present, the level reached
        for eb in (0.5, 1.0):
            codec = SAECodec(tiny_model, error_bound=eb, bound_mode="poisson", mask_values=sentinels)
            dec = codec.decode(codec.encode(x)).reshape(x.shape)
            within(dec, x, "poisson", eb, exact=masked)
            diff = dec[~masked].astype(np.float64) - x[~masked]
            assert np.abs(diff).max() >= 1 or peak < 100  # lossy where the noise allows it
            assert abs(diff.mean()) < 0.05 * max(1.0, np.sqrt(np.mean(x[~masked].astype(np.float64))))
