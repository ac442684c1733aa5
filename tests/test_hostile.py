"""Hostile and damaged files (#22): no silent wrong data, no memory disclosure, no bombs.

Each test builds the file or payload an attacker (or a damaged copy) would hand a reader
and reads it through the real reader: h5py and h5dump with the plugin, zarr v2 and v3,
numcodecs. ``benchmarks/hostile_files.py`` runs the same attacks in bulk.
"""

import os
import sys

import numpy as np
import pytest
import torch

from conftest import blobs
from saecodec.errors import SaecodecError


# -- 8: training checkpoints cannot run code ------------------------------------------------
class _Evil:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_resume_from_a_malicious_checkpoint_runs_nothing(tmp_path):
    from saecodec.models.l1 import SparseL1Autoencoder
    from saecodec.training import TrainConfig, fit

    marker, ck = tmp_path / "pwned", tmp_path / "ck.pt"
    torch.save({"module": _Evil(marker), "epoch": 1}, ck)
    data = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    with pytest.raises(SaecodecError, match="refusing to load"):
        fit(SparseL1Autoencoder(16, 8, 8), data, TrainConfig(epochs=2, batch=32, device="cpu", progress=False,
                                                             checkpoint=str(ck), resume=True))
    assert not marker.exists()


def test_conv_hyper_resume_from_a_malicious_checkpoint_runs_nothing(tmp_path):
    from saecodec.models import Transform
    from saecodec.training import ConvHyperConfig, train_conv_hyper

    marker, ck = tmp_path / "pwned", tmp_path / "ck.pt"
    torch.save({"arch": _Evil(marker)}, ck)
    cfg = ConvHyperConfig(steps=2, batch=2, crop=16, device="cpu", progress=False, checkpoint=str(ck), resume=True)
    with pytest.raises(SaecodecError, match="refusing to load"):
        train_conv_hyper(blobs(8, (16, 16)).astype(np.float32), arch=dict(chans=(4,), M=4, Nh=4, lambdas=(100, 1000)),
                         transform=Transform("asinh", 1.0, True, "mean"), cfg=cfg, name="evil")
    assert not marker.exists()


# -- 7: models resolve by identity from the model store; no file is opened or quoted -------
SECRET = b"root:x:0:0:TOPSECRET\n"


def test_a_stored_config_never_opens_a_file_path(tmp_path, tiny_model, on_model_path):
    import zarr

    from saecodec import SAECodec

    secret = tmp_path / "passwd"
    secret.write_bytes(SECRET * 100)
    quoted = (str(int.from_bytes(SECRET[:8], "little")), "TOPSECRET", "root:x")
    for model in (str(secret), str(tmp_path / "x.safetensors"), "../passwd"):
        with pytest.raises(SaecodecError, match="not by a file path") as e:
            SAECodec.from_config({"id": "saecodec", "model": model})
        assert not any(q in str(e.value) for q in quoted)
    z = zarr.create(shape=(2, 16, 16), chunks=(1, 16, 16), dtype="f4", store=str(tmp_path / "a.zarr"),
                    zarr_format=2, compressor=SAECodec("tiny-test", max_error=None))
    z[...] = blobs(2).astype("f4")
    meta = tmp_path / "a.zarr" / ".zarray"
    meta.write_text(meta.read_text().replace('"model": "', f'"model": "{secret}", "x": "'))
    with pytest.raises(Exception) as e:
        zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[...]
    assert not any(q in str(e.value) for q in quoted)


def test_model_file_errors_quote_no_bytes_of_the_file(tmp_path):
    from saecodec.model_store import identify
    from saecodec.modelfile import read_metadata

    for content in (SECRET * 100, b"\x10\x00\x00\x00\x00\x00\x00\x00\x80TOPSECRET\xff\xfe" * 4,
                    b"\x0c\x00\x00\x00\x00\x00\x00\x00[\"TOPSECRET\"]"):
        f = tmp_path / "m.safetensors"
        f.write_bytes(content)
        for call in (lambda: read_metadata(f), lambda: identify(str(f))):
            with pytest.raises(SaecodecError) as e:
                call()
            msg = str(e.value).replace(str(f), "<file>")  # pytest's directory names hold numbers too
            assert "TOPSECRET" not in msg and str(int.from_bytes(content[:8], "little")) not in msg
            assert "\\x" not in msg and "0x80" not in msg


def test_a_crafted_architecture_is_refused_before_any_module_is_built(tmp_path, tiny_model):
    """A small file whose JSON asks for a 1.1 GB network: refused by the shape check against
    the stored tensors, in a process that never grows by that much."""
    import json
    import subprocess

    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    data = tiny_model.to_bytes()
    meta = tiny_model.metadata()
    meta["architecture"] = {**meta["architecture"], "m": 32768}
    meta["frame_shape"] = [64, 64]
    meta["architecture"]["n"] = 4096
    from saecodec.modelfile import METADATA_KEY, canonical_json

    crafted = tmp_path / "crafted.safetensors"
    crafted.write_bytes(st_save(st_load(data), metadata={METADATA_KEY: canonical_json(meta)}))
    assert crafted.stat().st_size < 1_000_000
    code = f"""
import resource, sys
from saecodec.models.model import load_file
import torch
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_file({str(crafted)!r})
except Exception as e:
    print(type(e).__name__, str(e)[-200:])
print("grew", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "SaecodecError" in out and "do not match" in out, out
    assert int(out.split("grew")[-1]) < 200, out  # MB; building it would take 1100


def test_a_model_given_by_path_does_not_shadow_the_zoo_model_of_its_name(tmp_path, tiny_model):
    import dataclasses

    from saecodec import SAECodec, model_store

    zoo = model_store.find("sas64-l1")
    impostor = dataclasses.replace(tiny_model, name="sas64-l1", identity=None, path=None)
    path = tmp_path / "impostor.safetensors"
    ident = impostor.save(path)
    assert SAECodec(str(path)).model == ident  # the user's file, given in code, is used as given
    assert SAECodec("sas64-l1").model == zoo.identity
    assert model_store.find("sas64-l1").identity == zoo.identity
    assert model_store.identify_stored("sas64-l1") == (zoo.identity, "sas64-l1")


# -- 6: a zlib bomb in the config's mask ---------------------------------------------------
def _zlib_zeros(nbytes: int) -> bytes:
    """zlib of ``nbytes`` zero bytes, made without holding them."""
    import zlib

    c, block = zlib.compressobj(9), bytes(1 << 20)
    out = b"".join(c.compress(block) for _ in range(nbytes >> 20))
    return out + c.flush()


def test_a_mask_bomb_inflates_no_further_than_its_stated_shape():
    import base64
    import tracemalloc

    from saecodec.coding.mask import FrameMask

    bomb = {"shape": [4096, 4096], "bits": base64.b64encode(_zlib_zeros(256 << 20)).decode()}  # 256 MiB
    tracemalloc.start()
    try:
        with pytest.raises(SaecodecError, match="wrong size"):
            FrameMask.of(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * (4096 * 4096 // 8) + (4 << 20), peak  # the stated 2 MiB, not 256
    with pytest.raises(SaecodecError, match="more than"):
        FrameMask.of({"shape": [1 << 20, 1 << 20], "bits": ""})


# -- 9: configs of a newer saecodec, and bad encoder options, still read ------------------------
BAD_OPTIONS = [{"newer_option": 3}, {"bound_mode": "bogus", "error_bound": 1}, {"level": -3}, {"predictor": "x"},
               {"latent_dtype": "float8"}, {"error_bound": "abc"}, {"mask_values": list(range(40))},
               {"max_error": -1}, {"mask_below": "nan"}, {"mask": {"shape": [3], "bits": "!!"}},
               {"model_name": {"a": 1}}]


# The model-free codec (model None) has no options without a bound: a reader keeps the stored
# bound where it reads, else lossless stands in (the codec refuses to write either way).
WRITERS = {"tiny-test": {"max_error": None}, None: {"error_bound": 0.01, "bound_mode": "pwrel"}}


@pytest.mark.parametrize("model", list(WRITERS))
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_unknown_and_invalid_encoder_options_do_not_make_an_array_unreadable(tiny_model, on_model_path, tmp_path,
                                                                              zarr_format, model):
    import json

    import zarr

    from saecodec import SAECodec, SAEZarrCodec

    x = blobs(2).astype("f4") + 1
    path = tmp_path / "a.zarr"
    if zarr_format == 2:
        z = zarr.create(shape=x.shape, chunks=(1, 16, 16), dtype="f4", store=str(path), zarr_format=2,
                        compressor=SAECodec(model, **WRITERS[model]))
    else:
        z = zarr.create_array(store=str(path), shape=x.shape, chunks=(1, 16, 16), dtype="f4", compressors=None,
                              serializer=SAEZarrCodec(model=model, **WRITERS[model]))
    z[...] = x
    ref = zarr.open_array(str(path), mode="r")[...]
    meta = path / (".zarray" if zarr_format == 2 else "zarr.json")
    clean = json.loads(meta.read_text())
    for bad in BAD_OPTIONS:
        doc = json.loads(json.dumps(clean))
        config = doc["compressor"] if zarr_format == 2 else doc["codecs"][0]["configuration"]
        config.update(bad)
        meta.write_text(json.dumps(doc))
        with pytest.warns(UserWarning, match="decoding needs only the model"):
            back = zarr.open_array(str(path), mode="r")[...]
        np.testing.assert_array_equal(back, ref)
        with pytest.warns(UserWarning):
            a = zarr.open_array(str(path), mode="r+")
        with pytest.raises(Exception, match="cannot be used to write"):
            a[0] = x[0]
        stored = a.metadata.to_dict()
        stored = stored["compressor"] if zarr_format == 2 else stored["codecs"][0]["configuration"]
        assert all(stored[k] == v for k, v in bad.items())  # kept as it was, never rewritten


@pytest.mark.parametrize("model", list(WRITERS))
def test_hdf5_filter_reads_cd_values_with_bad_encoder_options(tiny_model, on_model_path, model):
    from saecodec import SAECodec
    from saecodec.hdf5 import SAE
    from saecodec.plugin.filter import H5Z_FLAG_REVERSE, filter_call

    x = blobs(1).astype("f4") + 1
    payload = SAECodec(model, **WRITERS[model]).encode(x)
    cd = list(SAE(model=model, **WRITERS[model]).filter_options) + [1, 3, 1, 16, 16]
    end = 11 + cd[10]  # the option words end with the predictor's and the level's, then target_error's 3
    for at, word in ((9, 77), (11, 9), (end - 5, 9), (end - 4, 7 << 20), (end - 3, 5)):
        bad = list(cd)
        bad[at] = word
        back = np.frombuffer(filter_call(H5Z_FLAG_REVERSE, bad, payload), "f4")
        np.testing.assert_array_equal(back.reshape(x.shape), SAECodec(model, **WRITERS[model]).decode(payload))
        with pytest.raises(SaecodecError, match="newer saecodec"):
            filter_call(0, bad, x.tobytes())


# -- 1: the HDF5 filter refuses a payload that is not the dataset's chunk ---------------------
def _h5_with_foreign_chunks(path, model, payloads: dict):
    """One dataset per (dtype, chunks) key, written by the filter; then each dataset's first
    chunk replaced by the payload given for it (write_direct_chunk: bytes as they are)."""
    import h5py

    from saecodec import hdf5

    with h5py.File(path, "w") as f:
        for (dtype, chunks), payload in payloads.items():
            name = f"{dtype}_{'x'.join(map(str, chunks))}"
            f.create_dataset(name, data=np.full((2,) + chunks[1:], 3, dtype), chunks=chunks,
                             **hdf5.SAE(model=model, error_bound=0.01))
            f[name].id.write_direct_chunk((0,) * len(chunks), payload)


def _h5dump(path, name, env):
    import shutil
    import subprocess

    h5dump = shutil.which("h5dump")
    if h5dump is None:
        pytest.skip("h5dump not installed")
    return subprocess.run([h5dump, "-d", name, str(path)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


# The model-free codec (model None, #20) reads through the same checks as a codec with a model.
BOTH = pytest.mark.parametrize("model", ["tiny-test", None])


@BOTH
def test_hdf5_refuses_payloads_of_another_type_or_shape(tiny_model, on_model_path, tmp_path, model):
    import h5py

    from saecodec import SAECodec, hdf5

    codec = SAECodec(model, error_bound=0.01)
    f32 = codec.encode(blobs(1).astype("f4"))  # a (1, 16, 16) float32 chunk with a valid CRC
    cases = {("f8", (1, 16, 16)): f32,  # smaller type: h5py handed back uninitialised memory
             ("i4", (1, 16, 16)): f32,  # same size: reinterpreted
             ("f4", (1, 8, 32)): f32,  # same element count: re-laid out
             ("f4", (2, 16, 16)): f32}  # fewer elements
    path = tmp_path / "foreign.h5"
    _h5_with_foreign_chunks(path, model, cases)
    env = {"HDF5_PLUGIN_PATH": str(hdf5.plugin_dir()), "SAECODEC_MODEL_PATH": os.environ["SAECODEC_MODEL_PATH"]}
    with h5py.File(path, "r") as f:
        for name in f:
            with pytest.raises(OSError):
                f[name][...]
    for name in ("f8_1x16x16", "i4_1x16x16"):
        out = _h5dump(path, name, env)
        assert out.returncode > 0 and "the container's chunk" in out.stderr, out.stderr[-500:]


def test_hdf5_filter_never_returns_a_short_buffer(tiny_model, on_model_path):
    """The Python side checks the payload against cd_values' type and shape before decoding."""
    from saecodec import SAECodec
    from saecodec.hdf5 import SAE
    from saecodec.plugin.filter import H5Z_FLAG_REVERSE, filter_call

    payload = SAECodec("tiny-test", error_bound=0.01).encode(blobs(1).astype("f4"))
    cd = list(SAE(model="tiny-test", error_bound=0.01).filter_options)
    assert len(filter_call(H5Z_FLAG_REVERSE, cd + [1, 3, 1, 16, 16], payload)) == 1024
    for tail in ([2, 3, 1, 16, 16], [10, 3, 1, 16, 16], [1, 3, 1, 8, 32], [1, 3, 2, 16, 16]):
        with pytest.raises(SaecodecError, match="container's chunk"):
            filter_call(H5Z_FLAG_REVERSE, cd + tail, payload)
    with pytest.raises(SaecodecError, match="set_local"):
        filter_call(H5Z_FLAG_REVERSE, cd, payload)


# -- 2: zarr v3 checks the chunk spec, numcodecs checks out ---------------------------------
@pytest.mark.parametrize("edit", [{"data_type": "int32"}, {"data_type": "uint32"}, {"data_type": "float16"},
                                  {"data_type": "uint8"}, {"data_type": "float64"}, "chunks"])
def test_zarr_v3_refuses_a_payload_that_disagrees_with_the_array(tiny_model, on_model_path, tmp_path, edit):
    import json

    import zarr

    from saecodec import SAEZarrCodec

    path = tmp_path / "a.zarr"
    z = zarr.create_array(store=str(path), shape=(2, 16, 16), chunks=(1, 16, 16), dtype="f4", compressors=None,
                          serializer=SAEZarrCodec(model="tiny-test", error_bound=0.01), fill_value=0)
    z[...] = blobs(2).astype("f4")
    meta = json.loads((path / "zarr.json").read_text())
    if edit == "chunks":
        meta["chunk_grid"]["configuration"]["chunk_shape"] = [1, 8, 32]
    else:
        meta.update(edit)
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match="container's chunk"):
        zarr.open_array(str(path), mode="r")[...]


@BOTH
def test_numcodecs_decode_checks_out(tiny_model, on_model_path, model):
    from saecodec import SAECodec

    codec = SAECodec(model, error_bound=0.01)
    x = blobs(1).astype("f4")
    payload = codec.encode(x)
    ref = codec.decode(payload)
    for out in (np.empty((1, 16, 16), "f4"), np.empty(256, "f4"), bytearray(1024), np.empty((1, 16, 16), ">f4")):
        back = codec.decode(payload, out=out)
        np.testing.assert_array_equal(np.frombuffer(back, ref.dtype).reshape(ref.shape) if isinstance(out, bytearray)
                                      else np.asarray(back).reshape(ref.shape), ref)
    for out in (np.empty((1, 16, 16), "i4"), np.empty((1, 16, 16), "f8"), np.empty((1, 8, 32), "f4"),
                np.empty(255, "f4"), bytearray(1020), np.empty((2, 16, 16), "f4")):
        with pytest.raises(SaecodecError, match="container"):
            codec.decode(payload, out=out)


# -- 5: payload bombs are compared with the container's chunk before anything is allocated ---
def _peak(fn) -> int:
    """Peak bytes numpy and Python allocate while ``fn`` runs (tracemalloc sees both)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    except Exception:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@BOTH
def test_payload_bombs_are_refused_before_allocating(tiny_model, on_model_path, tmp_path, model):
    import h5py
    import zarr

    import hostile_payloads as hp
    from saecodec import SAECodec, SAEZarrCodec

    bomb = hp.stream_bomb(SAECodec, model, (1, 16384, 16384))  # 512 MiB of uint16 in ~60 bytes
    assert len(bomb) < 80
    codec = SAECodec(model, error_bound=0)
    with pytest.raises(SaecodecError, match="container's chunk"):
        codec.decode(bomb, out=np.empty((1, 16, 16), "u2"))
    assert _peak(lambda: codec.decode(bomb, out=np.empty((1, 16, 16), "u2"))) < 1 << 20
    path = tmp_path / "b.h5"
    _h5_with_foreign_chunks(path, model, {("u2", (1, 16, 16)): bomb})

    def h5read():
        with h5py.File(path, "r") as f:
            f["u2_1x16x16"][...]
    with pytest.raises(OSError):
        h5read()
    assert _peak(h5read) < 1 << 20
    zpath = tmp_path / "b.zarr"
    z = zarr.create_array(store=str(zpath), shape=(4, 16, 16), chunks=(1, 16, 16), dtype="u2", compressors=None,
                          serializer=SAEZarrCodec(model=model, error_bound=0), fill_value=0)
    z[...] = 1
    for i in range(4):
        (zpath / "c" / str(i) / "0" / "0").write_bytes(bomb)
    with pytest.raises(Exception, match="container's chunk"):
        zarr.open_array(str(zpath), mode="r")[...]
    assert _peak(lambda: zarr.open_array(str(zpath), mode="r")[...]) < 4 << 20


def test_a_hyperprior_payload_cannot_claim_more_latents_than_its_message_codes():
    import hostile_payloads as hp
    from saecodec import SAECodec

    codec = SAECodec("sas-conv-h", max_error=None)
    small = codec.encode(np.full((1, 64, 64), 5.0, "f4"))
    bomb = hp.reshape(small, (1, 4096, 4096), tile=(4096, 4096))  # 16 Mpixel from a 57-byte payload
    with pytest.raises(SaecodecError, match="latents claimed"):
        codec.decode(bomb)
    assert _peak(lambda: codec.decode(bomb)) < 8 << 20



# -- 3: files saecodec writes checksum their metadata, and HDF5 1.10 reads them ---------------
def test_compress_and_decompress_write_checksummed_metadata_that_hdf5_1_10_reads(tiny_model, on_model_path,
                                                                                tmp_path):
    import h5py

    from saecodec import hdf5
    from saecodec.files import compress, decompress

    src = tmp_path / "in.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("frames", data=blobs(4).astype("f4"), chunks=(2, 16, 16))
    env = {"HDF5_PLUGIN_PATH": str(hdf5.plugin_dir()), "SAECODEC_MODEL_PATH": os.environ["SAECODEC_MODEL_PATH"]}
    compress(src, tmp_path / "c.h5", model="tiny-test", options={"error_bound": 0.01}, progress=False)
    decompress(tmp_path / "c.h5", tmp_path / "d.h5", progress=False)
    for name in ("c.h5", "d.h5"):
        raw = (tmp_path / name).read_bytes()
        assert raw[:8] == b"\x89HDF\r\n\x1a\n" and raw[8] == 3, name  # superblock v3: checksummed, HDF5 1.10
        out = _h5dump(tmp_path / name, "frames", env)
        assert out.returncode == 0 and "DATA {" in out.stdout, out.stderr[-500:]


# -- 11: what h5dump 1.10 does with a subset of a corrupted chunk, and the README says so ------
def test_readme_says_what_h5dump_does_with_a_subset_of_a_corrupted_chunk(tiny_model, on_model_path, tmp_path):
    import re
    from pathlib import Path

    import h5py

    from saecodec import hdf5

    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=blobs(2).astype("f4"), chunks=(1, 16, 16),
                         **hdf5.SAE(model="tiny-test", error_bound=0.01))
        info = f["frames"].id.get_chunk_info(0)
    raw = bytearray(path.read_bytes())
    raw[info.byte_offset + info.size // 2] ^= 1
    path.write_bytes(bytes(raw))
    env = {"HDF5_PLUGIN_PATH": str(hdf5.plugin_dir()), "SAECODEC_MODEL_PATH": os.environ["SAECODEC_MODEL_PATH"]}
    full = _h5dump(path, "frames", env)
    assert full.returncode > 0 and "checksum mismatch" in full.stderr
    import shutil
    import subprocess

    sub = subprocess.run([shutil.which("h5dump"), "-d", "frames", "-s", "0,0,0", "-c", "1,2,2", str(path)],
                         capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    version = subprocess.run([shutil.which("h5dump"), "--version"], capture_output=True, text=True).stdout
    if "1.10." in version:  # the behaviour the README warns of
        assert sub.returncode == 0 and re.search(r"DATA \{\s*\}", sub.stdout)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "`-s`/`-c`" in readme and "empty `DATA {}`" in readme


# -- 4: a valid chunk at another position ---------------------------------------------------
def test_a_chunk_at_another_position_is_caught_where_its_shape_differs_and_documented_where_not(
        tiny_model, on_model_path, tmp_path):
    from pathlib import Path

    import h5py

    x = blobs(4).astype("f4")
    path = tmp_path / "p.h5"
    from saecodec import hdf5

    with h5py.File(path, "w") as f:
        f.create_dataset("a", data=x, chunks=(1, 16, 16), **hdf5.SAE(model="tiny-test", error_bound=0.01))
        f.create_dataset("b", data=x, chunks=(2, 16, 16), **hdf5.SAE(model="tiny-test", error_bound=0.01))
        first = f["a"].id.read_direct_chunk((0, 0, 0))[1]
        f["a"].id.write_direct_chunk((1, 0, 0), first)  # same shape: HDF5 tells no position
        f["b"].id.write_direct_chunk((2, 0, 0), first)  # another shape: refused
    with h5py.File(path, "r") as f:
        a = f["a"][...]
        np.testing.assert_array_equal(a[1], a[0])
        with pytest.raises(OSError):
            f["b"][...]
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split()).lower()
    assert "no container tells a codec *where* a chunk sits" in readme


# -- 10: memory of the default model ----------------------------------------------------------
@pytest.mark.parametrize("reference", [True, False])
def test_conv_networks_in_row_bands(reference):
    """Each network of sas-conv-h over row bands (the receptive field as overlap, bands on
    the stride) equals the whole frame bit for bit with the encoder's reference kernels, so
    payloads keep their bytes; with oneDNN, which decoders run, within float32 rounding (it
    picks its kernels by shape: batch 2 of 203-pixel-wide frames differed by an ulp)."""
    import contextlib

    from saecodec import SAECodec
    from saecodec.models import runtime

    m = SAECodec("sas-conv-h").resolve_model().module
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.normal(0, 1, (2, 1, 600, 203)).astype("f4"))

    def same(a, b):
        if reference:
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)

    with torch.inference_mode(), (runtime.reproducible() if reference else contextlib.nullcontext()):
        y = m.encode(x)
        z = torch.round(m.hyper_analysis(y))
        for band in (20_000, 60_000):
            same(m.encode(x, band), y)
            same(m.hyper_analysis(y, band), m.hyper_analysis(y))
            same(m.decode(y, band), m.decode(y))
        for band in (200_000, 300_000):  # h_s: bands of at least 8 rows of z (19 here)
            for a, b in zip(m.hyper_synthesis(z, y.shape[-2:], band), m.hyper_synthesis(z, y.shape[-2:])):
                same(a, b)


MEMORY = r"""
import sys, ctypes, numpy as np, torch
torch.set_num_threads(1)
from saecodec import SAECodec
n = 1024
yy, xx = np.mgrid[:n, :n] / n
x = (1e4 * np.exp(-((yy - .45) ** 2 + (xx - .55) ** 2) * 40) + 10
     + np.random.default_rng(0).poisson(5, (n, n))).astype("f4")[None]
del yy, xx
codec = SAECodec("sas-conv-h")
codec.decode(codec.encode(x[:, :64, :64]))
def peak(fn):
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    now = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")][0]
    open("/proc/self/clear_refs", "w").write("5")
    out = fn()
    hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
    return out, (hwm - now) * 1024 / x.size
p, enc = peak(lambda: codec.encode(x))
_, dec = peak(lambda: codec.decode(p))
print(enc, dec)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_default_model_memory_per_pixel_of_a_1024x1024_frame():
    """Peak resident memory of one encode and one decode, above the process's before it:
    517 and 246 B per pixel before row bands (the same frame; 4096x4096: 56 and 36 now)."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", MEMORY], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    enc, dec = map(float, out.stdout.split())
    assert enc < 160 and dec < 110, (enc, dec)
