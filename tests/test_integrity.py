"""Issue #13: no silent wrong data. The v3 payload's checksum, the pure mode's quality gate,
and the data bugs (zarr v2 big-endian, 64-bit integers, chunk rank, empty chunks, devices,
mask values, the missing model's name)."""

import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import zarr

from conftest import blobs, perturb_network_decode, run_fresh
from saecodec import chunk, hdf5
from saecodec.codec import SAECodec
from saecodec.coding import payload as fmt
from saecodec.data import shared
from saecodec.errors import PayloadError, SaecodecError
from saecodec.options import DEFAULT_MAX_ERROR, CodecOptions
from saecodec.zarr3 import SAEZarrCodec

REAL_FILES = shared.files(shared.REAL_SAS)


# -- checksum ---------------------------------------------------------------------------
def test_every_corrupted_byte_is_a_checksum_error(tiny_model):
    x = np.log10(blobs(3, seed=2)).astype(np.float32)
    x[0, :2, :2] = np.nan
    for payload in (chunk.encode_chunk(tiny_model, x), chunk.encode_chunk(tiny_model, x, error_bound=1e-2)):
        assert payload[2] == fmt.VERSION
        for i in range(len(payload)):
            for bad in (payload[i] ^ 0x01, payload[i] ^ 0x80, (payload[i] + 77) % 256):
                broken = payload[:i] + bytes([bad]) + payload[i + 1:]
                with pytest.raises(PayloadError, match="checksum|version|magic"):
                    chunk.decode_chunk(tiny_model, broken)
        with pytest.raises(PayloadError, match="checksum mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}; "
                                               "the chunk is corrupted"):
            chunk.decode_chunk(tiny_model, payload[:40] + bytes([payload[40] ^ 4]) + payload[41:])


def test_a_version_byte_flipped_to_an_old_version_is_caught(tiny_model):
    payload = chunk.encode_chunk(tiny_model, blobs(2, seed=1))
    for old in (1, 2):
        with pytest.raises(PayloadError, match="version byte reads"):
            chunk.decode_chunk(tiny_model, payload[:2] + bytes([old]) + payload[3:])


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_corrupted_zarr_chunk_is_an_error_not_data(tiny_model, on_model_path, tmp_path, zarr_format):
    x = blobs(4, seed=3).astype(np.float32)
    path = str(tmp_path / "c.zarr")
    if zarr_format == 2:
        z = zarr.create(shape=x.shape, chunks=(2, 16, 16), dtype="f4", store=path, zarr_format=2,
                        compressor=SAECodec(tiny_model.identity))
    else:
        z = zarr.create_array(store=path, shape=x.shape, chunks=(2, 16, 16), dtype="f4",
                              serializer=SAEZarrCodec(model=tiny_model.identity), compressors=None)
    z[...] = x
    files = sorted(p for p in Path(path).rglob("*") if p.is_file() and p.name[0] != "." and p.name != "zarr.json")
    assert len(files) == 2
    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 0x10
    files[0].write_bytes(bytes(data))
    with pytest.raises(PayloadError, match="checksum mismatch"):
        zarr.open_array(path, mode="r")[...]
    assert zarr.open_array(path, mode="r")[2:].shape == (2, 16, 16)  # the other chunk reads


def test_extended_flags_of_a_newer_writer_are_refused_clearly(tiny_model):
    payload = chunk.encode_chunk(tiny_model, blobs(2, seed=1), max_error=None)
    body = bytearray(payload[:-fmt.CHECKSUM_BYTES])
    assert body[4] == 0  # the extended flags varint
    body[4] = 1 << 6
    with pytest.raises(PayloadError, match="newer saecodec"):
        chunk.decode_chunk(tiny_model, fmt.seal(body))


# -- quality gate -----------------------------------------------------------------------
def frame_errors(model, x, d):
    """Per 2D plane: relative L2 in the model's transformed domain over finite pixels, and
    whether every decoded pixel lies in the plane's range."""
    planes_x = x.reshape((-1,) + x.shape[-2:]).astype(np.float64)
    planes_d = d.reshape((-1,) + x.shape[-2:]).astype(np.float64)
    errs, inside = [], []
    for a, b in zip(planes_x, planes_d):
        v = np.isfinite(a)
        u, ud = model.transform.to_u(a[v]), model.transform.to_u(b[v])
        errs.append(np.linalg.norm(ud - u) / max(np.linalg.norm(u - u.mean()), 1e-300))
        inside.append(bool(v.any()) and a[v].min() <= b[v].min() and b[v].max() <= a[v].max())
    return np.array(errs), np.array(inside)


def ood_frames():
    """What the 16x16 blob model never saw: counts, noise with negatives and NaN holes, a
    wide uint16 range; 40x37 planes (edge tiles)."""
    rng = np.random.default_rng(4)
    counts = rng.poisson(rng.uniform(1, 300, (3, 1, 1)) * np.ones((3, 40, 37))).astype(np.int32)
    noisy = (rng.standard_normal((3, 40, 37)) * 5 + np.linspace(-3, 50, 37)).astype(np.float32)
    noisy[0, 5:9, 5:30] = np.nan
    wide = (10 ** rng.uniform(0, 4.5, (2, 40, 37))).astype(np.uint16)
    return counts, noisy, wide


@pytest.mark.parametrize("max_error", [DEFAULT_MAX_ERROR, 0.05])
def test_gate_holds_every_frame_to_its_target_and_range(tiny_model, max_error):
    for x in ood_frames():
        plain = chunk.decode_chunk(tiny_model, chunk.encode_chunk(tiny_model, x, max_error=None))
        payload = chunk.encode_chunk(tiny_model, x, max_error=max_error)
        d = chunk.decode_chunk(tiny_model, payload)
        assert d.dtype == x.dtype and np.array_equal(np.isnan(d), np.isnan(x)) if x.dtype.kind == "f" else True
        errs, inside = frame_errors(tiny_model, x, d)
        assert (errs <= max_error * (1 + 1e-9)).all(), errs
        assert inside.all()
        assert chunk.fallback_frames(payload) > 0
        assert chunk.payload_stats(payload)["fallback_frames"] == chunk.fallback_frames(payload)
        before, _ = frame_errors(tiny_model, x, plain)
        assert (before > max_error).any()  # the gate had something to do


def test_gate_changes_nothing_where_the_network_meets_the_target(tiny_model):
    x = blobs(8, seed=3).astype(np.float32)
    gated = chunk.encode_chunk(tiny_model, x, max_error=0.9)
    plain = chunk.encode_chunk(tiny_model, x, max_error=None)
    assert chunk.fallback_frames(gated) == 0 and chunk.fallback_frames(plain) == 0
    d, p = chunk.decode_chunk(tiny_model, gated), chunk.decode_chunk(tiny_model, plain)
    inside = (d >= x.min(axis=(1, 2), keepdims=True)) & (d <= x.max(axis=(1, 2), keepdims=True))
    assert inside.all()
    np.testing.assert_array_equal(d, np.clip(p, x.min(axis=(1, 2), keepdims=True), x.max(axis=(1, 2), keepdims=True)))
    assert len(gated) <= len(plain) + 8 * len(x) + 8  # the ranges and a few bytes


def test_gate_survives_another_devices_rounding(tiny_model, monkeypatch):
    x = ood_frames()[1]
    payload = chunk.encode_chunk(tiny_model, x, max_error=0.05)
    perturb_network_decode(monkeypatch)
    errs, inside = frame_errors(tiny_model, x, chunk.decode_chunk(tiny_model, payload))
    assert (errs <= 0.05).all() and inside.all()


def test_gate_frames_that_need_exact_storage(tiny_model):
    """A float frame whose values differ by an ulp leaves no room below its target: stored exactly."""
    x = np.full((2, 16, 16), 1000.0, np.float32)
    x[0, 3, 4] = np.nextafter(np.float32(1000.0), np.float32(2000.0))
    x[1] = 7.0  # constant: the range alone makes it exact
    payload = chunk.encode_chunk(tiny_model, x)
    np.testing.assert_array_equal(chunk.decode_chunk(tiny_model, payload), x)


def test_gate_option_everywhere(tiny_model, on_model_path):
    assert SAECodec(tiny_model.identity).max_error == DEFAULT_MAX_ERROR
    assert SAECodec(tiny_model.identity, max_error=None).max_error is None
    assert SAECodec(tiny_model.identity, max_error=float("inf")).max_error is None
    assert SAEZarrCodec(model=tiny_model.identity, max_error=0.1).max_error == 0.1
    assert hdf5.SAE(tiny_model.identity, max_error=0.1).options.max_error == 0.1
    for bad in (0, -1, "x", float("nan")):
        with pytest.raises(SaecodecError, match="max_error"):
            SAECodec(tiny_model.identity, max_error=bad)
    back = CodecOptions.from_cd_values(hdf5.SAE(tiny_model.identity, max_error=0.125).filter_options)
    assert back.options.max_error == 0.125
    old = {"id": "saecodec", "model": tiny_model.identity}  # a config written before the gate: no gate
    assert SAECodec.from_config(old).max_error is None


@pytest.mark.skipif(not REAL_FILES, reason="the shared real frames are not on this machine")
def test_default_gate_on_the_real_frames():
    codec = SAECodec("sas64-l1")
    model = codec.resolve_model()
    fell = 0
    for path in REAL_FILES:
        x = np.load(path)["I"]
        payload = codec.encode(x)
        errs, inside = frame_errors(model, x, codec.decode(payload))
        assert errs[0] <= DEFAULT_MAX_ERROR and inside[0], path.name
        fell += chunk.fallback_frames(payload)
    assert fell > 0


def test_default_gate_on_1024x1024_count_frames():
    from saecodec.data.detector import simulate_detector

    x = simulate_detector(1, seed=3, cfg="eiger-1m", workers=1, progress=False).frames
    gaps = x == np.iinfo(np.uint32).max
    codec = SAECodec("sas64-l1", mask_value=int(np.iinfo(np.uint32).max))
    model = codec.resolve_model()
    d = codec.decode(codec.encode(x))
    np.testing.assert_array_equal(d[gaps], x[gaps])
    xv = np.where(gaps, np.nan, x.astype(np.float64))
    errs, inside = frame_errors(model, xv, np.where(gaps, np.nan, d.astype(np.float64)))
    assert (errs <= DEFAULT_MAX_ERROR).all() and inside.all()


# -- bugs 3, 4, 5 ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [">f4", ">f8", ">u4", "<f4"])
def test_zarr_v2_big_endian_reads_back_its_values(tiny_model, on_model_path, tmp_path, dtype):
    x = (blobs(3, shape=(20, 16), seed=5) * 3).astype(dtype)
    if x.dtype.kind == "f":
        x[1, 2:4, 5] = np.nan  # masked pixels of a big-endian chunk come back exactly too
    path = str(tmp_path / "be.zarr")
    z = zarr.create(shape=x.shape, chunks=(2, 20, 16), dtype=dtype, store=path, zarr_format=2,
                    compressor=SAECodec(tiny_model.identity, error_bound=0.5))
    z[...] = x
    back = zarr.open_array(path, mode="r")[...]
    assert back.dtype == np.dtype(dtype)
    assert np.array_equal(np.isnan(back.astype(np.float64)), np.isnan(x.astype(np.float64)))
    assert np.nanmax(np.abs(back.astype(np.float64) - x.astype(np.float64))) <= 0.5


@pytest.mark.parametrize("dtype,value", [(np.uint64, 2**64 - 2), (np.int64, 2**63 - 1), (np.int64, -2**63),
                                         (np.int64, 2**53 + 1), (np.uint64, 2**53 + 1)])
@pytest.mark.parametrize("eb", [0.0, 0.5, 3.0])
def test_64_bit_integers_beyond_2_53_stay_within_the_bound(tiny_model, dtype, value, eb):
    x = (blobs(2, seed=1) * 10).astype(dtype)
    x[1, 3, 4] = value
    x[0, 0, 0] = value // 3
    d = chunk.decode_chunk(tiny_model, chunk.encode_chunk(tiny_model, x, error_bound=eb))
    assert d.dtype == x.dtype
    diff = np.array([abs(int(a) - int(b)) for a, b in zip(d.ravel(), x.ravel())])
    assert diff.max() <= int(eb)


def test_17_dimensional_chunks_are_refused_at_encode(tiny_model, on_model_path, tmp_path):
    x = np.ones((1,) * 15 + (16, 16), np.float32)
    with pytest.raises(SaecodecError, match="at most 16 dimensions"):
        chunk.encode_chunk(tiny_model, x)
    with pytest.raises(SaecodecError, match="at most 16 dimensions"):
        SAECodec(tiny_model.identity).encode(x)
    with pytest.raises(SaecodecError, match="at most 16 dimensions"):
        zarr.create_array(store=str(tmp_path / "r.zarr"), shape=x.shape, chunks=x.shape, dtype="f4",
                          serializer=SAEZarrCodec(model=tiny_model.identity), compressors=None)
    sixteen = np.ones((1,) * 14 + (16, 16), np.float32)
    assert chunk.decode_chunk(tiny_model, chunk.encode_chunk(tiny_model, sixteen)).shape == sixteen.shape


@pytest.mark.parametrize("shape", [(0, 16, 16), (3, 0, 16), (0, 0)])
@pytest.mark.parametrize("eb", [None, 0.1])
def test_empty_chunks(tiny_model, shape, eb):
    x = np.zeros(shape, np.float32)
    d = chunk.decode_chunk(tiny_model, chunk.encode_chunk(tiny_model, x, error_bound=eb))
    assert d.shape == shape and d.dtype == x.dtype


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_refused_when_the_codec_is_made(tiny_model, on_model_path):
    for make in (lambda: SAECodec(tiny_model.identity, device="cuda"),
                 lambda: SAEZarrCodec(model=tiny_model.identity, device="cuda:0"),
                 lambda: SAECodec.from_options(CodecOptions(tiny_model.identity), device="cuda")):
        with pytest.raises(SaecodecError, match="CUDA is not available"):
            make()
    with pytest.raises(SaecodecError, match="not a torch device"):
        SAECodec(tiny_model.identity, device="gpu7")


def test_mask_values_that_fit_no_integer_are_refused_not_wrapped(tiny_model, on_model_path):
    for bad in (2**64 + 5, 2**64, -2**63 - 1, True):
        with pytest.raises(SaecodecError, match="mask_value"):
            hdf5.SAE(tiny_model.identity, mask_value=bad)
    for good in (2**64 - 1, 2**63, -2**63, -1, 2**32 - 1, 1e300, -0.5):
        back = CodecOptions.from_cd_values(hdf5.SAE(tiny_model.identity, mask_value=good).filter_options)
        assert back.options.mask_value == good and type(back.options.mask_value) is type(good)
    x = np.full((2, 16, 16), 5, np.uint64)
    x[0, 2, 2] = 2**64 - 1
    codec = SAECodec(tiny_model.identity, mask_value=2**64 - 1, error_bound=0)
    np.testing.assert_array_equal(codec.decode(codec.encode(x)), x)


# -- the missing model's name, through h5py and h5dump ----------------------------------
def test_model_name_travels_in_cd_values(tiny_model, on_model_path):
    for name in ("tiny-test", "", "é" * 40, "x" * 100):
        opts = CodecOptions(tiny_model.identity, model_name=name or None)
        back = CodecOptions.from_cd_values(opts.cd_values()).options
        assert back.model_name == (name.encode()[:64].decode("utf-8", "ignore") or None)
        assert back.model == tiny_model.identity


def test_missing_model_error_names_the_model_in_h5py_and_h5dump(tiny_model, on_model_path, tmp_path):
    import shutil

    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=blobs(2, seed=6).astype(np.float32), chunks=(2, 16, 16),
                         **hdf5.SAE(model=tiny_model.identity))
    env = {"HDF5_PLUGIN_PATH": str(hdf5.plugin_dir()), "SAECODEC_MODEL_PATH": str(tmp_path / "none"),
           "SAECODEC_CACHE_DIR": str(tmp_path / "c")}
    proc = run_fresh(f"""
        import h5py
        with h5py.File({str(path)!r}, "r") as f:
            try:
                f["frames"][...]
            except OSError:
                print("RAISED")
        """, env)
    assert "RAISED" in proc.stdout
    assert "tiny-test" in proc.stderr and tiny_model.identity in proc.stderr and "saecodec models add" in proc.stderr
    h5dump = shutil.which("h5dump")
    if h5dump is None:
        pytest.skip("h5dump not installed")
    out = subprocess.run([h5dump, "-d", "frames", str(path)], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=300)
    assert out.returncode > 0
    assert "tiny-test" in out.stderr and tiny_model.identity in out.stderr


# -- committed v3 fixtures --------------------------------------------------------------
def test_backwards_compatibility_format_v3(monkeypatch, request):
    """Committed v3 payloads (the gate with and without fallback frames, a NaN hole, a
    sentinel, a bound) decode to the committed values: bit for bit where no network runs
    (bounded chunks, fallback frames), within float32 rounding where it does (another
    CPU's kernels may round differently)."""
    import json

    from make_fixtures import v3_arrays, v3_codecs
    from numcodecs.tests import common as nc_common

    from saecodec.models import load_file

    here = request.path.parent
    monkeypatch.chdir(here)
    monkeypatch.setenv("SAECODEC_MODEL_PATH", str(here / "fixture" / "models"))
    model = load_file(here / "fixture" / "models" / "fixture-16.safetensors")
    arrays, codecs = v3_arrays(), v3_codecs(model.identity)
    nc_common.check_backwards_compatibility("saecodec", arrays, codecs, precision=[-30] * 3, prefix="v3")
    root = here / "fixture" / "saecodec" / "v3"
    exact = network = 0
    for j, codec in enumerate(codecs):
        assert codec == SAECodec.from_config(json.loads((root / f"codec.{j:02d}" / "config.json").read_text()))
        for i, x in enumerate(arrays):
            payload = (root / f"codec.{j:02d}" / f"encoded.{i:02d}.dat").read_bytes()
            assert payload[2] == 3
            expected = np.load(root / f"codec.{j:02d}" / f"decoded.{i:02d}.npy")
            d = codec.decode(payload)
            assert d.dtype == x.dtype and d.shape == x.shape
            masked = np.isnan(x) | (x == -1)
            np.testing.assert_array_equal(d[masked], x[masked])
            if chunk.payload_stats(payload)["latent_frames"] == 0:
                np.testing.assert_array_equal(d, expected)
                exact += 1
            else:
                np.testing.assert_allclose(d, expected, rtol=1e-4, atol=1e-6)
                network += 1
            planes, dp, mp = (a.reshape((-1,) + x.shape[-2:]) for a in (x, d, masked))
            for a, b, m in zip(planes, dp, mp):  # every decoded pixel inside its plane's range
                if codec.error_bound is None:
                    assert a[~m].min() <= b[~m].min() and b[~m].max() <= a[~m].max()
            if codec.error_bound is not None:
                assert np.abs(d[~masked].astype(np.float64) - x[~masked]).max() <= codec.error_bound
    assert exact >= 3 and network >= 2
    assert sum(chunk.fallback_frames((root / f"codec.{j:02d}" / f"encoded.{i:02d}.dat").read_bytes())
               for j in range(2) for i in range(2)) > 0
