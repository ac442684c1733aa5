"""Zarr stores on disk, written with saecodec and read back in a fresh interpreter."""

import numpy as np
import pytest
import zarr

from conftest import blobs, rel_l2, run_fresh
from saecodec.codec import SAECodec
from saecodec.options import DEFAULT_MAX_ERROR
from saecodec.errors import SaecodecError
from saecodec.zarr3 import SAEZarrCodec

READ_BACK = """
import sys
import numpy as np
import zarr
assert "saecodec" not in sys.modules
a = zarr.open_array({path!r}, mode="r")
np.save({out!r}, a[...])
print(type(a.metadata).__name__)
"""


def stack(n=7, shape=(40, 40)):
    return blobs(n, shape=shape, seed=11).astype(np.float32)


def test_zarr_v2_round_trip_in_fresh_process(tiny_model, on_model_path, tmp_path):
    x = stack()
    path = str(tmp_path / "v2.zarr")
    z = zarr.create(shape=x.shape, chunks=(3, 40, 40), dtype="f4", store=path, zarr_format=2,
                    compressor=SAECodec(tiny_model))
    z[...] = x
    meta = (tmp_path / "v2.zarr" / ".zarray").read_text()
    assert tiny_model.identity in meta and '"saecodec"' in meta
    out = str(tmp_path / "back.npy")
    proc = run_fresh(READ_BACK.format(path=path, out=out), {"SAECODEC_MODEL_PATH": str(on_model_path)})
    assert "V2" in proc.stdout
    back = np.load(out)
    assert back.shape == x.shape and back.dtype == x.dtype
    assert rel_l2(back, x) < 0.3
    np.testing.assert_array_equal(back, zarr.open_array(path, mode="r")[...])


def test_zarr_v3_round_trip_in_fresh_process(tiny_model, on_model_path, tmp_path):
    x = stack().astype(np.float64)
    path = str(tmp_path / "v3.zarr")
    z = zarr.create_array(store=path, shape=x.shape, chunks=(2, 40, 40), dtype="f8",
                          serializer=SAEZarrCodec(model=tiny_model.identity), compressors=None)
    z[...] = x
    meta = (tmp_path / "v3.zarr" / "zarr.json").read_text()
    assert tiny_model.identity in meta
    out = str(tmp_path / "back.npy")
    proc = run_fresh(READ_BACK.format(path=path, out=out), {"SAECODEC_MODEL_PATH": str(on_model_path)})
    assert "V3" in proc.stdout
    back = np.load(out)
    assert back.dtype == np.float64 and rel_l2(back, x) < 0.3


def test_zarr_partial_chunks_and_odd_frames(tiny_model, on_model_path, tmp_path):
    x = blobs(5, shape=(37, 29), seed=3).astype(np.float32)
    z = zarr.create_array(store=str(tmp_path / "odd.zarr"), shape=x.shape, chunks=(2, 20, 16), dtype="f4",
                          serializer=SAEZarrCodec(model=tiny_model.identity), compressors=None)
    z[...] = x
    back = zarr.open_array(str(tmp_path / "odd.zarr"), mode="r")[...]
    assert back.shape == x.shape and rel_l2(back, x) < 0.5


def test_zarr_v3_refuses_1d_arrays_at_creation(tiny_model, on_model_path, tmp_path):
    with pytest.raises(SaecodecError, match="at least 2 dimensions"):
        zarr.create_array(store=str(tmp_path / "bad.zarr"), shape=(100,), chunks=(10,), dtype="f4",
                          serializer=SAEZarrCodec(model=tiny_model.identity), compressors=None)


def test_zarr_v3_codec_dict_round_trip(tiny_model, on_model_path):
    c = SAEZarrCodec(model=tiny_model.identity, latent_dtype="bfloat16")
    d = c.to_dict()
    assert d == {"name": "saecodec", "configuration": {"model": tiny_model.identity, "latent_dtype": "bfloat16",
                                                      "model_name": "tiny-test", "max_error": DEFAULT_MAX_ERROR}}
    assert SAEZarrCodec.from_dict(d) == c and c.latent_dtype == "bfloat16"
    conf = d["configuration"]
    old = {"name": "saecodec", "configuration": {**conf, "weight_dtype": conf.pop("latent_dtype")}}
    assert SAEZarrCodec.from_dict(old) == c  # stores written before the rename


def test_missing_model_in_fresh_reader_is_loud(tiny_model, on_model_path, tmp_path):
    x = stack(2)
    path = str(tmp_path / "v2.zarr")
    z = zarr.create(shape=x.shape, chunks=x.shape, dtype="f4", store=path, zarr_format=2,
                    compressor=SAECodec(tiny_model))
    z[...] = x
    code = f"""
import zarr
try:
    zarr.open_array({path!r}, mode="r")[...]
except ValueError as e:
    print("ERROR:", e)
"""
    proc = run_fresh(code, {"SAECODEC_MODEL_PATH": str(tmp_path / "nowhere"),
                            "SAECODEC_CACHE_DIR": str(tmp_path / "empty")})
    assert "ERROR:" in proc.stdout and tiny_model.identity in proc.stdout and "tiny-test" in proc.stdout
