"""The HDF5 filter plugin, through the real HDF5 library (h5py) and the real h5dump."""

import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace

import h5py
import numpy as np
import pytest

from conftest import blobs, rel_l2, run_fresh
from saecodec import hdf5
from saecodec.codec import SAECodec
from saecodec.errors import SaecodecError
from saecodec.options import DEFAULT_MAX_ERROR, CodecOptions

H5DUMP = shutil.which("h5dump")
needs_h5dump = pytest.mark.skipif(
    H5DUMP is None and not os.environ.get("CI"),
    reason="h5dump not installed (apt-get install hdf5-tools); required under CI",
)


@pytest.fixture
def reader_env(on_model_path):
    """What a reader that never imports saecodec sets: the plugin path (and where models are)."""
    return {"HDF5_PLUGIN_PATH": str(hdf5.plugin_dir()), "SAECODEC_MODEL_PATH": str(on_model_path),
            "SAECODEC_CACHE_DIR": os.environ["SAECODEC_CACHE_DIR"]}


def write(path, x, chunks, model, name="frames"):
    with h5py.File(path, "w") as f:
        f.create_dataset(name, data=x, chunks=chunks, **hdf5.SAE(model=model.identity))


def test_plugin_is_built_and_registered():
    assert hdf5.plugin_file().exists()
    assert hdf5.register()
    assert h5py.h5z.filter_avail(hdf5.FILTER_ID)
    out = subprocess.run([sys.executable, "-m", "saecodec.cli", "plugin-path"], capture_output=True, text=True)
    assert out.stdout.strip() == str(hdf5.plugin_dir())


def test_helper_is_a_mapping_of_h5py_keywords(tiny_model, on_model_path):
    sae = hdf5.SAE(model=tiny_model.identity, weight_dtype="bfloat16")  # the option's old name
    kw = dict(sae)
    assert kw["compression"] == hdf5.FILTER_ID == 32850
    cd = kw["compression_opts"]
    assert cd[0] == 2 and cd[9] == 2 and cd[10] == len(cd) - 11
    assert b"".join(int(w).to_bytes(4, "big") for w in cd[1:9]).hex() == tiny_model.identity
    assert CodecOptions.from_cd_values(cd) == (CodecOptions(tiny_model.identity, latent_dtype="bfloat16",
                                                            model_name="tiny-test", max_error=DEFAULT_MAX_ERROR),
                                               None, None, 0)


@pytest.mark.parametrize("opts", [{"error_bound": 1e-3, "bound_mode": "rel"}, {"mask_value": 2**32 - 1},
                                  {"mask_value": -7}, {"mask_value": -0.5, "error_bound": 0.0}])
def test_cd_values_carry_the_bound_and_mask(tiny_model, on_model_path, opts):
    sae = hdf5.SAE(model=tiny_model.identity, **opts)
    cd = sae.filter_options
    assert all(0 <= v < 2**32 for v in cd)
    back = CodecOptions.from_cd_values(list(cd) + [1, 2, 10, 16])  # what set_local appends
    assert back.dtype_code == 1 and back.shape == (10, 16)
    assert back.options == sae.options
    assert {k: getattr(back.options, k) for k in opts} == opts


def test_layout_1_cd_values_still_read(tiny_model, on_model_path):
    words = [int.from_bytes(bytes.fromhex(tiny_model.identity)[i:i + 4], "big") for i in range(0, 32, 4)]
    cd = [1, *words, 1, 1, 2, 16, 16]
    assert CodecOptions.from_cd_values(cd) == (CodecOptions(tiny_model.identity), 1, (16, 16), 0)


def test_options_of_a_newer_saecodec_read_but_never_write(tiny_model, on_model_path):
    """Layout 2 appends options: fewer words take defaults; more words (a newer writer's
    options) decode, and encoding refuses rather than ignore them."""
    from saecodec.plugin.filter import filter_call

    codec = SAECodec(tiny_model.identity, error_bound=0.5)
    cd = list(codec.options.cd_values())
    shorter = cd[:10] + [3] + cd[11:14]  # only the bound entry, as a writer with one option wrote it
    assert CodecOptions.from_cd_values(shorter).options == replace(codec.options, model_name=None, max_error=None)
    newer = cd[:10] + [cd[10] + 2] + cd[11:] + [7, 7]
    back = CodecOptions.from_cd_values(newer + [1, 3, 2, 16, 16])
    assert back.unknown_words == 2 and back.options.error_bound == 0.5
    x = blobs(2, seed=3).astype(np.float32)
    payload = codec.encode(x)
    np.testing.assert_array_equal(np.frombuffer(filter_call(0x0100, newer + [1, 3, 2, 16, 16], payload),
                                                np.float32).reshape(x.shape), codec.decode(payload))
    with pytest.raises(SaecodecError, match="newer saecodec"):
        filter_call(0, newer + [1, 3, 2, 16, 16], x.tobytes())


def test_packing_cd_values_loads_no_network(tiny_model, on_model_path):
    """As hdf5plugin's filter classes: configuring a dataset by model name needs no torch."""
    proc = run_fresh("""
        import sys
        import saecodec.hdf5
        cd = dict(saecodec.hdf5.SAE(model="tiny-test", error_bound=0.1))["compression_opts"]
        assert "torch" not in sys.modules, "torch imported"
        print("WORDS", len(cd))
        """, {"SAECODEC_MODEL_PATH": str(on_model_path)})
    # 11 + bound, mask, gate (3 words each), the name "tiny-test" (1 + 3), then options_bounds' entries:
    # bound mode 1, mask values 1 (none), mask below 3, mask 1 (none), predictor 1, level 1; target_error 3
    assert "WORDS 35" in proc.stdout


def test_filter_read_back_from_the_dataset(tiny_model, on_model_path, tmp_path):
    """As hdf5plugin's tests: the filter stored in the dataset, after set_local, is ours with
    our cd_values plus the element type, rank and chunk shape."""
    sae = hdf5.SAE(model=tiny_model.identity, error_bound=1e-2, mask_value=-1)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.create_dataset("x", data=blobs(4, seed=1).astype(np.uint16), chunks=(2, 16, 16), **sae)
    with h5py.File(tmp_path / "d.h5", "r") as f:
        plist = f["x"].id.get_create_plist()
        assert plist.get_nfilters() == 1
        fid, _, cd, name = plist.get_filter(0)
    assert fid == hdf5.FILTER_ID and b"saecodec" in name
    assert tuple(cd) == tuple(sae.filter_options) + (5, 3, 2, 16, 16)  # uint16, rank 3, chunk dims
    back = CodecOptions.from_cd_values(cd)
    assert back.options == sae.options and back.dtype_code == 5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_h5py_round_trip_in_fresh_process_without_import(tiny_model, reader_env, tmp_path, dtype):
    x = blobs(10, shape=(40, 37), seed=21).astype(dtype)
    path = tmp_path / "d.h5"
    write(path, x, (4, 40, 37), tiny_model)  # several frames per chunk, 3 chunks, a partial last one
    out = tmp_path / "back.npy"
    run_fresh(f"""
        import sys, h5py, numpy as np
        assert "saecodec" not in sys.modules  # the reader never imports it; the plugin does
        with h5py.File({str(path)!r}, "r") as f:
            np.save({str(out)!r}, f["frames"][...])
        """, reader_env)
    back = np.load(out)
    assert back.dtype == x.dtype and back.shape == x.shape
    assert rel_l2(back, x) < 0.5
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["frames"][...], back)


def test_chunk_bytes_are_the_numcodecs_payload(tiny_model, on_model_path, tmp_path):
    x = blobs(6, seed=3).astype(np.float32)
    path = tmp_path / "d.h5"
    write(path, x, (3, 16, 16), tiny_model)
    codec = SAECodec(tiny_model.identity)
    with h5py.File(path, "r") as f:
        d = f["frames"]
        for i, start in enumerate((0, 3)):
            _, raw = d.id.read_direct_chunk((start, 0, 0))
            assert raw == codec.encode(x[start:start + 3])


def h5dump_values(path, number_format, reader_env) -> np.ndarray:
    """The numbers h5dump prints for the dataset "frames", with the plugin on its path."""
    proc = subprocess.run([H5DUMP, "-d", "frames", "-y", "-m", number_format, str(path)], capture_output=True,
                          text=True, env={**os.environ, **reader_env}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = proc.stdout.split("DATA {", 1)[1]
    return np.array([float(v) for v in re.findall(r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|inf|nan)", data)])


@needs_h5dump
def test_h5dump_prints_what_h5py_decodes(tiny_model, reader_env, tmp_path):
    x = blobs(5, seed=4).astype(np.float64)
    path = tmp_path / "d.h5"
    write(path, x, (2, 16, 16), tiny_model)
    with h5py.File(path, "r") as f:
        expected = f["frames"][...]
    values = h5dump_values(path, "%.17g", reader_env)
    assert values.size == expected.size
    np.testing.assert_allclose(values.reshape(expected.shape), expected, rtol=1e-12)


def test_error_bound_and_nan_through_h5py_and_h5dump(tiny_model, reader_env, tmp_path):
    """Written by h5py with a bound and NaN holes; read in a fresh process and by h5dump."""
    x = np.log10(blobs(6, seed=8)).astype(np.float32)
    x[1, 4:8, 4:8] = np.nan
    path = tmp_path / "b.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=x, chunks=(3, 16, 16), **hdf5.SAE(model=tiny_model.identity, error_bound=1e-3))
    out = tmp_path / "back.npy"
    run_fresh(f"""
        import h5py, numpy as np
        with h5py.File({str(path)!r}, "r") as f:
            np.save({str(out)!r}, f["frames"][...])
        """, reader_env)
    back = np.load(out)
    nan = np.isnan(x)
    assert np.array_equal(np.isnan(back), nan)
    assert np.abs(back[~nan] - x[~nan]).max() <= 1e-3
    if H5DUMP:
        values = h5dump_values(path, "%.9g", reader_env)
        np.testing.assert_array_equal(values.reshape(x.shape).astype(np.float32), back)


def corrupt(path):
    with h5py.File(path, "r+") as f:
        d = f["frames"]
        _, raw = d.id.read_direct_chunk((0, 0, 0))
        broken = bytearray(raw)
        for i in range(20, len(broken), 7):
            broken[i] ^= 0x5A
        d.id.write_direct_chunk((0, 0, 0), bytes(broken[: len(broken) - 3]))


def test_corrupted_chunk_makes_h5py_raise_not_crash(tiny_model, reader_env, tmp_path):
    path = tmp_path / "d.h5"
    write(path, blobs(4, seed=5).astype(np.float32), (2, 16, 16), tiny_model)
    corrupt(path)
    proc = run_fresh(f"""
        import h5py
        with h5py.File({str(path)!r}, "r") as f:
            try:
                f["frames"][...]
            except OSError as e:
                print("RAISED", e)
            print("second chunk ok", f["frames"][2:4].shape)
        """, reader_env)
    assert "RAISED" in proc.stdout and "second chunk ok (2, 16, 16)" in proc.stdout
    assert "saecodec HDF5 filter: error: PayloadError: checksum mismatch" in proc.stderr


@needs_h5dump
def test_corrupted_chunk_makes_h5dump_fail_cleanly(tiny_model, reader_env, tmp_path):
    path = tmp_path / "d.h5"
    write(path, blobs(4, seed=5).astype(np.float32), (2, 16, 16), tiny_model)
    corrupt(path)
    proc = subprocess.run([H5DUMP, "-d", "frames", str(path)], capture_output=True, text=True,
                          env={**os.environ, **reader_env}, timeout=300)
    assert proc.returncode > 0  # an error exit, not a signal
    assert "saecodec HDF5 filter: error: PayloadError: checksum mismatch" in proc.stderr


def test_threads_reading_through_the_filter(tiny_model, on_model_path, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    x = blobs(16, seed=8).astype(np.float32)
    path = tmp_path / "d.h5"
    write(path, x, (1, 16, 16), tiny_model)

    def read(i):
        with h5py.File(path, "r") as f:
            return f["frames"][i]

    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(read, range(16)))
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(np.stack(parts), f["frames"][...])


def test_filter_refuses_1d_datasets(tiny_model, on_model_path, tmp_path, capfd):
    """The plugin's set_local refuses: HDF5 fails the call (h5py: ValueError), the plugin says why."""
    with h5py.File(tmp_path / "d.h5", "w") as f:
        with pytest.raises(ValueError, match="user callback"):
            f.create_dataset("x", data=np.ones(100, np.float32), chunks=(10,), **hdf5.SAE(model=tiny_model.identity))
    assert "needs a chunked dataset of at least 2 dimensions" in capfd.readouterr().err


def test_a_bad_filter_id_in_the_environment_is_said_not_ignored(monkeypatch):
    from saecodec.plugin.filter import DEFAULT_FILTER_ID, filter_id

    monkeypatch.setenv("SAECODEC_H5_FILTER_ID", "70000")
    with pytest.warns(UserWarning, match="ignoring SAECODEC_H5_FILTER_ID=70000"):
        assert filter_id() == DEFAULT_FILTER_ID
    monkeypatch.setenv("SAECODEC_H5_FILTER_ID", "300")
    assert filter_id() == 300
