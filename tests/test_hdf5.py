"""The HDF5 filter plugin, through the real HDF5 library (h5py) and the real h5dump."""

import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import blobs, rel_l2, run_fresh
from saecodec import hdf5
from saecodec.codec import SAECodec

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
    sae = hdf5.SAE(model=tiny_model.identity, weight_dtype="bfloat16")
    kw = dict(sae)
    assert kw["compression"] == hdf5.FILTER_ID == 32850
    assert kw["compression_opts"][0] == 2 and kw["compression_opts"][9] == 2
    assert hdf5.words_identity(kw["compression_opts"][1:9]) == tiny_model.identity
    assert hdf5.parse_cd(kw["compression_opts"]) == ({"model": tiny_model.identity, "weight_dtype": "bfloat16"},
                                                    None, None)


@pytest.mark.parametrize("opts", [{"error_bound": 1e-3, "bound_mode": "rel"}, {"mask_value": 2**32 - 1},
                                  {"mask_value": -7}, {"mask_value": -0.5, "error_bound": 0.0}])
def test_cd_values_carry_the_bound_and_mask(tiny_model, on_model_path, opts):
    cd = hdf5.SAE(model=tiny_model.identity, **opts).filter_options
    assert all(0 <= v < 2**32 for v in cd)
    kwargs, _, _ = hdf5.parse_cd(list(cd) + [1, 2, 10, 16])  # what set_local appends
    assert {k: kwargs[k] for k in opts} == opts


def test_layout_1_cd_values_still_read(tiny_model, on_model_path):
    cd = [1, *hdf5.identity_words(tiny_model.identity), 1, 1, 2, 16, 16]
    assert hdf5.parse_cd(cd) == ({"model": tiny_model.identity, "weight_dtype": "float16"}, 1, (16, 16))


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
    assert "saecodec HDF5 filter: error" in proc.stderr


@needs_h5dump
def test_corrupted_chunk_makes_h5dump_fail_cleanly(tiny_model, reader_env, tmp_path):
    path = tmp_path / "d.h5"
    write(path, blobs(4, seed=5).astype(np.float32), (2, 16, 16), tiny_model)
    corrupt(path)
    proc = subprocess.run([H5DUMP, "-d", "frames", str(path)], capture_output=True, text=True,
                          env={**os.environ, **reader_env}, timeout=300)
    assert proc.returncode > 0  # an error exit, not a signal
    assert "saecodec HDF5 filter: error" in proc.stderr


def test_missing_model_is_a_clear_error(tiny_model, reader_env, tmp_path):
    path = tmp_path / "d.h5"
    write(path, blobs(2, seed=6).astype(np.float32), (2, 16, 16), tiny_model)
    env = {**reader_env, "SAECODEC_MODEL_PATH": str(tmp_path / "none"), "SAECODEC_CACHE_DIR": str(tmp_path / "c")}
    proc = run_fresh(f"""
        import h5py
        with h5py.File({str(path)!r}, "r") as f:
            try:
                f["frames"][...]
            except OSError:
                print("RAISED")
        """, env)
    assert "RAISED" in proc.stdout
    assert tiny_model.identity in proc.stderr and "not found" in proc.stderr


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


def test_filter_refuses_1d_datasets(tiny_model, on_model_path, tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as f:
        with pytest.raises(Exception):
            f.create_dataset("x", data=np.ones(100, np.float32), chunks=(10,), **hdf5.SAE(model=tiny_model.identity))
