"""The model-free codec (``model=None``), and readers and model-free writers without torch
(docs/seams.md, section 1).

Each child process gets a ``sitecustomize`` that puts a meta-path hook in front of every
import: ``import torch`` (or any ``torch.*``) raises and is written to a log. The hook runs
in Python children and in the interpreter the HDF5 plugin embeds into h5dump alike, so an
empty log after writing and reading through h5py, h5dump and zarr is the proof that no
path imported torch, caught or not.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import zarr

from conftest import blobs
from saecodec import chunk, hdf5
from saecodec.codec import SAECodec
from saecodec.coding import payload as fmt
from saecodec.errors import ModelMismatchError, SaecodecError
from saecodec.options import CodecOptions
from saecodec.zarr3 import SAEZarrCodec

H5DUMP = shutil.which("h5dump")

BLOCK = '''
import os, sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            with open(os.environ["SAECODEC_TORCH_LOG"], "a") as f:
                f.write(f"{os.getpid()} {sys.argv[:1]} {name}\\n")
            raise ImportError(f"import of {name} blocked: this process must run without torch")

sys.meta_path.insert(0, _NoTorch())
'''


@pytest.fixture
def no_torch(tmp_path):
    """Environment of a child without torch and without any model file, and its import log."""
    site = tmp_path / "no-torch-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK)
    (tmp_path / "no-models").mkdir()
    log = tmp_path / "torch-imports.log"
    path = [str(site)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "SAECODEC_TORCH_LOG": str(log),
           "HDF5_PLUGIN_PATH": str(hdf5.plugin_dir()), "SAECODEC_MODEL_PATH": str(tmp_path / "no-models"),
           "SAECODEC_CACHE_DIR": str(tmp_path / "no-models")}
    return env, log


def child(code: str, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def h5dump(path, dataset, env, number_format="%.9g") -> np.ndarray:
    proc = subprocess.run([H5DUMP, "-d", dataset, "-y", "-m", number_format, str(path)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = proc.stdout.split("DATA {", 1)[1]
    return np.array([float(v) for v in re.findall(r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|inf|nan)", data)])


@pytest.mark.parametrize("make", [SAECodec, lambda **kw: SAEZarrCodec(**kw), hdf5.SAE])
def test_what_needs_a_model_is_refused_when_the_codec_is_made(make):
    for opts, why in ((dict(), "bounded and lossless modes only"),
                      (dict(error_bound=0.1, predictor="network"), "predictor='network'"),
                      (dict(error_bound=0.1, level=1), "level")):
        with pytest.raises(SaecodecError, match=why):
            make(model=None, **opts)
    make(model=None, error_bound=0.1, max_error=0.1)  # the gate is the pure mode's: ignored with a bound


def test_no_model_in_config_cd_values_and_payload():
    codec = SAECodec(error_bound=2, bound_mode="poisson", mask_values=[-1])
    assert codec.get_config() == {"id": "saecodec", "error_bound": 2.0, "bound_mode": "poisson", "mask_value": -1}
    assert SAECodec.from_config(codec.get_config()) == codec
    assert eval(repr(codec), {"SAECodec": SAECodec}) == codec
    cd = hdf5.SAE(error_bound=2, bound_mode="poisson", mask_values=[-1]).filter_options
    assert cd[1:9] == (0,) * 8
    assert CodecOptions.from_cd_values(cd).options == codec.options
    x = np.random.default_rng(0).poisson(20, (3, 30, 41)).astype(np.int16)
    x[1, 2] = -1
    enc = codec.encode(x)
    h = fmt.Header.unpack(fmt.Reader(enc))
    assert h.model_check == bytes(4) and h.tile == (30, 41) and h.flags & fmt.FLAG_NO_LATENTS
    d = codec.decode(enc)
    assert (d[x == -1] == -1).all()
    assert (np.abs(d.astype(float) - x)[x != -1] <= 2 * np.sqrt(np.maximum(x[x != -1], 1))).all()


def test_bounded_payloads_decode_with_or_without_the_model(tiny_model):
    """A chunk that runs no network decodes whatever model the reader has, or none; one
    that runs the network needs its model."""
    x = np.log10(blobs(3, seed=2)).astype(np.float32)
    with_model = SAECodec(tiny_model, error_bound=1e-3)
    free = SAECodec(error_bound=1e-3)
    a, b = with_model.encode(x), free.encode(x)
    assert fmt.Header.unpack(fmt.Reader(a)).model_check == bytes.fromhex(tiny_model.identity)[:4]
    for codec in (with_model, free):
        for enc in (a, b):
            assert np.abs(codec.decode(enc) - x).max() <= 1e-3
    with pytest.raises(ModelMismatchError, match="the codec has no model"):
        free.decode(SAECodec(tiny_model).encode(x))
    with pytest.raises(ModelMismatchError, match="the codec has no model"):
        chunk.decode_chunk(None, SAECodec(tiny_model).encode(x))


def test_the_hook_blocks_torch(no_torch):
    env, log = no_torch
    proc = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "blocked" in proc.stderr
    assert "torch" in log.read_text()


def modes():
    """(name, array, options): lossless counts with a sentinel, Poisson counts, pwrel floats
    with zeros and negatives."""
    rng = np.random.default_rng(3)
    counts = rng.poisson(rng.uniform(0.2, 80, (1, 48, 64)), (4, 48, 64)).astype(np.uint32)
    counts[:, 20, :] = 2**32 - 1  # a Pilatus-style gap row, kept exactly by the lossless mode
    floats = (np.exp(rng.normal(0, 3, (4, 48, 64))) * rng.choice([-1, 1], (4, 48, 64))).astype(np.float32)
    floats[0, :3] = 0
    return [("lossless", counts, dict(error_bound=0)),
            ("poisson", counts.clip(0, 60000).astype(np.uint16), dict(error_bound=0.5, bound_mode="poisson")),
            ("pwrel", floats, dict(error_bound=1e-2, bound_mode="pwrel"))]


def check(name, x, d, opts):
    assert d.dtype == x.dtype and d.shape == x.shape
    xf, df = x.astype(np.float64), d.astype(np.float64)
    if name == "lossless":
        assert np.array_equal(d, x)
    elif name == "poisson":
        assert (np.abs(df - xf) <= opts["error_bound"] * np.sqrt(np.maximum(xf, 1))).all()
    else:
        assert (np.abs(df - xf) <= opts["error_bound"] * np.abs(xf)).all()


def test_model_free_codec_writes_and_reads_without_torch(no_torch, tmp_path):
    """saecodec(model=None) writes lossless, poisson and pwrel data through h5py, zarr v2
    and zarr v3 without torch; readers that never import saecodec (h5py and zarr in a fresh
    process, h5dump) read it back, again without torch."""
    env, log = no_torch
    out = tmp_path / "data"
    out.mkdir()
    np.savez(out / "orig.npz", **{name: x for name, x, _ in modes()})
    child(f"""
        import sys, numpy as np, h5py, zarr
        from saecodec import SAECodec, SAEZarrCodec, hdf5
        out = {str(out)!r}
        orig = np.load(out + "/orig.npz")
        modes = [(name, orig[name], opts) for name, opts in {[(n, o) for n, _, o in modes()]!r}]
        with h5py.File(out + "/m.h5", "w") as f:
            for name, x, opts in modes:
                f.create_dataset(name, data=x, chunks=(2, 48, 64), **hdf5.SAE(**opts))
        for name, x, opts in modes:
            z = zarr.create(shape=x.shape, chunks=(2, 48, 64), dtype=x.dtype, store=f"{{out}}/{{name}}.v2.zarr",
                            zarr_format=2, compressor=SAECodec(**opts))
            z[...] = x
            z = zarr.create_array(store=f"{{out}}/{{name}}.v3.zarr", shape=x.shape, chunks=(2, 48, 64), dtype=x.dtype,
                                  serializer=SAEZarrCodec(**opts), compressors=None)
            z[...] = x
        assert "torch" not in sys.modules
        """, env)
    child(f"""
        import sys, numpy as np, h5py, zarr
        out = {str(out)!r}
        back = {{}}
        with h5py.File(out + "/m.h5", "r") as f:
            for name in ("lossless", "poisson", "pwrel"):
                back[name + ".h5"] = f[name][...]
                back[name + ".v2"] = zarr.open_array(f"{{out}}/{{name}}.v2.zarr", mode="r")[...]
                back[name + ".v3"] = zarr.open_array(f"{{out}}/{{name}}.v3.zarr", mode="r")[...]
        np.savez(out + "/back.npz", **back)
        assert "torch" not in sys.modules
        """, env)
    back = np.load(out / "back.npz")
    for name, x, opts in modes():
        for where in ("h5", "v2", "v3"):
            check(name, x, back[f"{name}.{where}"], opts)
        if H5DUMP:
            values = h5dump(out / "m.h5", name, env, "%.9g" if x.dtype.kind == "f" else "%d")
            np.testing.assert_array_equal(values.reshape(x.shape).astype(x.dtype), back[f"{name}.h5"])
    assert not log.exists(), log.read_text()
    assert SAECodec.from_config(SAECodec(**modes()[0][2]).get_config()).options.model is None


def test_bounded_chunks_of_a_model_read_without_torch_or_its_file(tiny_model, on_model_path, no_torch, tmp_path):
    """Bounded and lossless chunks written by a codec with a model run no network: readers
    without torch and without the model file decode them (h5py, h5dump, zarr); a pure
    chunk of the same model needs both and says so."""
    env, log = no_torch
    x = np.log10(blobs(4, seed=5)).astype(np.float32)
    counts = np.random.default_rng(1).poisson(30, (4, 16, 16)).astype(np.int32)
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("lossless", data=counts, chunks=(2, 16, 16),
                         **hdf5.SAE(model=tiny_model.identity, error_bound=0))
        f.create_dataset("pwrel", data=x, chunks=(2, 16, 16),
                         **hdf5.SAE(model=tiny_model.identity, error_bound=1e-3, bound_mode="pwrel"))
    z = zarr.create(shape=x.shape, chunks=(2, 16, 16), dtype=x.dtype, store=str(tmp_path / "abs.zarr"), zarr_format=2,
                    compressor=SAECodec(tiny_model, error_bound=1e-3))
    z[...] = x
    pure = SAECodec(tiny_model).encode(x)
    (tmp_path / "pure.bin").write_bytes(pure)
    out = tmp_path / "back.npz"
    child(f"""
        import sys, numpy as np, h5py, zarr
        with h5py.File({str(path)!r}, "r") as f:
            back = {{"lossless": f["lossless"][...], "pwrel": f["pwrel"][...]}}
        back["abs"] = zarr.open_array({str(tmp_path / "abs.zarr")!r}, mode="r")[...]
        np.savez({str(out)!r}, **back)
        assert "torch" not in sys.modules
        """, env)
    back = np.load(out)
    assert np.array_equal(back["lossless"], counts)
    assert (np.abs(back["pwrel"].astype(np.float64) - x) <= 1e-3 * np.abs(x.astype(np.float64))).all()
    assert np.abs(back["abs"] - x).max() <= 1e-3
    if H5DUMP:
        assert np.array_equal(h5dump(path, "lossless", env, "%d").reshape(counts.shape), counts)
    assert not log.exists(), log.read_text()
    # the pure chunk needs the network: with the model file but no torch, a clear error
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from saecodec import SAECodec
        codec = SAECodec.from_config({SAECodec(tiny_model).get_config()!r})
        codec.decode(open({str(tmp_path / "pure.bin")!r}, "rb").read())
        """)], capture_output=True, text=True, env={**env, "SAECODEC_MODEL_PATH": str(on_model_path)}, timeout=300)
    assert proc.returncode != 0 and "saecodec[learned]" in proc.stderr, proc.stderr
