"""Safe defaults for the beamline user (#21): counts never silently lossy, options that mean
what they say, one-line errors with documented exit codes, readers in other environments,
benchmarks and pictures that show counts as they are.

Integer counts come from the raw Pilatus frames in ../shared/data/raw-counts (int32, -1 gaps,
-2 dead pixels; a crop around the direct beam keeps the tests fast), or, where that directory
is absent (a worktree), simulated Pilatus-like frames (saxs-pilatus preset).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from saecodec import hdf5
from saecodec.cli import main
from saecodec.errors import SaecodecError
from saecodec.files import compress, sources, stored, verify

ROOT = Path(__file__).resolve().parents[1]
RAW = Path(os.environ.get("SAECODEC_SHARED_DATA", ROOT.parent / "shared" / "data")) / "raw-counts"


def need(module):
    if os.environ.get("CI"):
        return __import__(module)
    return pytest.importorskip(module)


REAL = bool(sorted(RAW.glob("*.npz")))


def pilatus(n=2, crop=160):
    """``n`` int32 Pilatus frames cropped to ``crop`` x ``crop`` around the direct beam."""
    files = sorted(RAW.glob("*.npz"))
    if files:
        frames = [np.load(f)["counts"] for f in files[:n]]
    else:
        from saecodec.data import detector as D

        cfg = D.preset("saxs-pilatus", shape=(2 * crop, 2 * crop))
        frames = list(D.simulate_detector(n, seed=1, cfg=cfg, workers=1, progress=False).frames)
    out = []
    for f in frames:
        r, c = np.unravel_index(np.argmax(f), f.shape)
        r0 = int(np.clip(r - crop // 2, 0, f.shape[0] - crop))
        c0 = int(np.clip(c - crop // 2, 0, f.shape[1] - crop))
        out.append(f[r0:r0 + crop, c0:c0 + crop])
    return np.stack(out).astype(np.int32)


def nexus_counts(path, x, chunks=True):
    """A NeXus-like raw file: the counts in an NXdetector (contiguous unless ``chunks``)."""
    with h5py.File(path, "w") as f:
        e = f.create_group("entry")
        e.attrs["NX_class"] = "NXentry"
        det = e.create_group("instrument/detector")
        e["instrument"].attrs["NX_class"] = "NXinstrument"
        det.attrs["NX_class"] = "NXdetector"
        det.create_dataset("data", data=x, chunks=(1,) + x.shape[1:] if chunks else None)


def cli(*args):
    return main([str(a) for a in args])


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("saecodec: error: "), err
    assert "Traceback" not in err
    return lines[0]


# -- 1. integer counts keep their counts by default; verify holds the pure mode to I(q) and totals
def test_integer_counts_are_lossless_by_default_and_pure_only_on_request(tmp_path, capsys):
    x = pilatus()
    src, out, pure = tmp_path / "raw.nxs", tmp_path / "small.nxs", tmp_path / "pure.nxs"
    nexus_counts(src, x)
    assert cli("compress", src, out, "--no-progress") == 0
    said = capsys.readouterr()
    assert ", lossless, ratio" in said.out and "warning" not in said.err
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["entry/instrument/detector/data"][...], x)  # the counts, exactly
    assert stored.compressed(out)[0].spec["error_bound"] == 0
    assert cli("verify", src, out, "--no-iq") == 0
    capsys.readouterr()
    # The pure mode on counts only when asked, with a warning; verify then says which check failed.
    assert cli("compress", src, pure, "--pure", "--no-progress") == 0
    said = capsys.readouterr()
    assert ", pure, ratio" in said.out
    assert said.err.count("saecodec: warning:") == 1 and "int32 counts in the pure mode are lossy" in said.err
    # The real frames' totals move by ~2% with the default wavelet model (~9% with sas-conv-h, the
    # issue's example), beyond the 1% tolerance; simulated frames are kinder to the pure mode, so
    # there the tolerances are tightened to show the check.
    tol = {} if REAL else {"counts_tolerance": 1e-4, "iq_tolerance": 1e-3}
    report = tmp_path / "report.md"
    assert cli("verify", src, pure, "-o", report,
               *[a for k, v in tol.items() for a in (f"--{k.replace('_', '-')}", v)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert any("total counts check failed" in line for line in err) and any("I(q) check failed" in line
                                                                            for line in err), err
    text = report.read_text()
    assert "result: FAILED: total counts of entry/instrument/detector/data; I(q) of" in text
    rep = verify(src, pure, **tol)
    (ds,) = rep["datasets"]
    checks = {c["check"]: c for c in ds["checks"]}
    assert not checks["total counts"]["passed"] and not checks["I(q)"]["passed"]
    assert ds["total_change_max"] == checks["total counts"]["value"] > checks["total counts"]["tolerance"]
    assert checks["total counts"]["tolerance"] == tol.get("counts_tolerance", 0.01)
    assert checks["I(q)"]["tolerance"] == tol.get("iq_tolerance", 0.05)
    loose = verify(src, pure, counts_tolerance=10.0, iq_tolerance=10.0)
    assert loose["ok"] and not loose["failed"]
    with pytest.raises(SaecodecError, match="counts_tolerance"):
        verify(src, pure, counts_tolerance=-1)


def test_the_codec_warns_once_when_its_pure_mode_gets_integers(tiny_model, on_model_path):
    from saecodec.codec import SAECodec
    from saecodec.errors import LossyCountsWarning

    codec = SAECodec(tiny_model.identity)
    with pytest.warns(LossyCountsWarning, match="error_bound=0"):
        codec.encode(np.full((2, 16, 16), 7, np.int32))
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")
        codec.encode(np.full((2, 16, 16), 7, np.int32))  # once per codec
        SAECodec(tiny_model.identity).encode(np.full((2, 16, 16), 7.0, np.float32))  # floats: the pure mode's home
        SAECodec(tiny_model.identity, error_bound=0).encode(np.full((2, 16, 16), 7, np.int32))


# -- 2. repeatable mask values
@pytest.mark.parametrize("flags", [["--mask-value", "-1", "--mask-value", "-2"], ["--mask-values=-1,-2"],
                                   ["--mask-value", "[-1,-2]"], ["--mask-value", "-1", "--codec-option",
                                                                 "mask_values=[-2]"]])
def test_every_mask_value_reaches_the_codec(flags, tmp_path):
    x = pilatus(1, crop=64)
    src, out = tmp_path / "raw.nxs", tmp_path / "small.nxs"
    nexus_counts(src, x)
    assert cli("compress", src, out, "--error-bound", 0.5, "--bound-mode", "poisson", "--no-progress", *flags) == 0
    assert sorted(stored.compressed(out)[0].spec["mask_values"]) == [-2, -1]


# -- 4. a bound mode without a bound
def test_a_bound_mode_without_a_bound_is_refused(tmp_path, capsys):
    src = tmp_path / "raw.nxs"
    nexus_counts(src, pilatus(1, crop=32))
    assert cli("compress", src, tmp_path / "out.nxs", "--bound-mode", "pwrel", "--no-progress") == 2
    assert "needs an error bound" in one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.nxs"]
    with pytest.raises(SaecodecError, match="needs an error bound"):
        compress(src, tmp_path / "out.nxs", options={"bound_mode": "poisson"}, progress=False)


# -- 5. one-line errors, exit codes that tell "could not check" from "check failed", Ctrl-C
def test_errors_are_one_line_with_distinct_exit_codes(tmp_path, capsys):
    x = pilatus(1, crop=48)
    src, out = tmp_path / "raw.nxs", tmp_path / "small.nxs"
    nexus_counts(src, x)
    assert cli("compress", src, out, "--no-progress") == 0
    capsys.readouterr()
    assert cli("verify", src, out, "--poni", tmp_path / "nosuch.poni") == 2
    assert "nosuch.poni: no such PONI file" in one_error_line(capsys.readouterr().err)
    truncated = tmp_path / "truncated.nxs"
    truncated.write_bytes(src.read_bytes()[:3000])
    for args in (("verify", truncated, out), ("verify", src, truncated), ("compress", truncated, tmp_path / "c.h5")):
        assert cli(*args) == 2
        assert f"{truncated}: cannot be read as HDF5" in one_error_line(capsys.readouterr().err)
    tampered = tmp_path / "tampered.nxs"
    nexus_counts(tampered, x + 1)
    assert cli("verify", tampered, out, "--no-iq") == 1  # a check failed: distinct from 2
    assert "bound check failed" in capsys.readouterr().err


def test_ctrl_c_during_compress_is_one_line_and_leaves_nothing(tmp_path):
    src, out = tmp_path / "big.h5", tmp_path / "out.h5"
    with h5py.File(src, "w") as f:  # noise in the pure mode: seconds of work, chunk after chunk
        f["frames"] = np.random.default_rng(0).random((48, 256, 256)).astype(np.float32)
    p = subprocess.Popen([sys.executable, "-m", "saecodec.cli", "compress", str(src), str(out), "--no-progress",
                          "--workers", "1", "--chunks", "1,256,256"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.h5.saecodec-tmp-*")) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert err.strip().splitlines() == ["saecodec: interrupted; no output written"]
    assert sorted(q.name for q in tmp_path.iterdir()) == ["big.h5"]


# -- 6. level messages agree; --level; --version
def test_level_range_is_the_models_everywhere(tmp_path, capsys):
    from saecodec.codec import SAECodec
    from saecodec.coding.hyperprior import check_level

    for level in (9, 7, -1):
        with pytest.raises(SaecodecError) as e:
            SAECodec("sas-conv-h", level=level)
        assert str(e.value) == f"level {level} is outside model 'sas-conv-h''s rate levels 0 .. 5"
        with pytest.raises(SaecodecError) as coder:
            check_level(level, 6, "sas-conv-h")  # what the coder says at a chunk
        assert str(coder.value) == str(e.value)
    src = tmp_path / "frames.h5"
    with h5py.File(src, "w") as f:
        f["frames"] = np.ones((1, 32, 32), np.float32)
    from saecodec import model_store

    top = int(SAECodec(model_store.DEFAULT_MODEL).resolve_model().module.rate_levels) - 1  # the CLI's default model
    assert cli("compress", src, tmp_path / "out.h5", "--level", 9, "--no-progress") == 2
    assert f"rate levels 0 .. {top}" in one_error_line(capsys.readouterr().err)
    assert cli("compress", src, tmp_path / "out.h5", "--level", 0.5, "--no-progress") == 0
    assert stored.compressed(tmp_path / "out.h5")[0].spec["level"] == 0.5
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli("--version")
    assert e.value.code == 0 and capsys.readouterr().out.startswith("saecodec 0.")


# -- 7. a missing model file is a missing file
def test_a_missing_model_file_is_said_to_be_missing(tmp_path, capsys):
    src = tmp_path / "frames.h5"
    with h5py.File(src, "w") as f:
        f["frames"] = np.ones((1, 32, 32), np.float32)
    missing = tmp_path / "nosuch.safetensors"
    assert cli("compress", src, tmp_path / "out.h5", "--model", missing, "--no-progress") == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"model file {missing} not found: no such file" in line and "identity" not in line


# -- 8. a reader in another Python environment
def _foreign_python(tmp_path, with_cffi: bool) -> Path:
    """A directory that gives `python -S` h5py and numpy (and cffi), but no saecodec."""
    import cffi

    d = tmp_path / ("with_cffi" if with_cffi else "bare")
    d.mkdir()
    site = Path(h5py.__file__).parents[1]
    names = ["h5py", "h5py.libs", "numpy", "numpy.libs"]
    if with_cffi:
        names += [Path(cffi.__file__).parent.name] + [p.name for p in site.glob("_cffi_backend*")]
    for n in names:
        if (site / n).exists():
            (d / n).symlink_to(site / n)
    return d


def test_a_python_without_saecodec_gets_one_clear_error(tmp_path):
    path = tmp_path / "counts.h5"
    x = np.arange(2 * 32 * 32, dtype=np.int32).reshape(2, 32, 32)
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=x, chunks=(1, 32, 32), **hdf5.SAE(model="sas-conv-h", error_bound=0))
    for with_cffi in (False, True):
        deps = _foreign_python(tmp_path, with_cffi)
        code = f"""
import sys
sys.path.insert(0, {str(deps)!r})
before = list(sys.path)
import h5py
try:
    h5py.File({str(path)!r}, "r")["x"][...]
    print("READ")
except OSError:
    print("FAILED")
print("SAME PATH" if sys.path == before else "PATH CHANGED")
"""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["HDF5_PLUGIN_PATH"] = str(hdf5.plugin_dir())
        r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, timeout=120,
                           cwd=tmp_path)  # not the repository: its saecodec would be importable from there
        assert r.stdout.split() == ["FAILED", "SAME", "PATH"], (r.stdout, r.stderr)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("saecodec HDF5 filter: error:"), r.stderr
        assert "pip install saecodec" in lines[0]
        assert ("cannot import saecodec and cffi" if not with_cffi else "cannot import saecodec;") in lines[0]


def test_plugin_path_joined_with_hdf5plugins_serves_h5dump_both(tmp_path, capsys):
    hdf5plugin = need("hdf5plugin")
    import shutil

    assert cli("plugin-path", "--with-hdf5plugin") == 0
    joined = capsys.readouterr().out.strip()
    assert joined == f"{hdf5.plugin_dir()}{os.pathsep}{hdf5plugin.PLUGIN_PATH}"
    if not shutil.which("h5dump"):
        pytest.skip("h5dump not installed")
    path = tmp_path / "both.h5"
    x = np.arange(2 * 32 * 32, dtype=np.int32).reshape(2, 32, 32)
    with h5py.File(path, "w") as f:
        f.create_dataset("sae", data=x, chunks=(1, 32, 32), **hdf5.SAE(model="sas-conv-h", error_bound=0))
        f.create_dataset("bs", data=x, chunks=(1, 32, 32), **hdf5plugin.Bitshuffle())
    for plugin_path, ok in ((str(hdf5.plugin_dir()), False), (joined, True)):
        env = {**os.environ, "HDF5_PLUGIN_PATH": plugin_path}
        r = subprocess.run(["h5dump", "-d", "/bs", "-s", "1,0,0", "-c", "1,1,2", str(path)], capture_output=True,
                           text=True, env=env, timeout=120)
        assert (r.returncode == 0 and "1024, 1025" in r.stdout) is ok, r.stdout + r.stderr
    r = subprocess.run(["h5dump", "-d", "/sae", "-s", "1,0,0", "-c", "1,1,2", str(path)], capture_output=True,
                       text=True, env={**os.environ, "HDF5_PLUGIN_PATH": joined}, timeout=120)
    assert r.returncode == 0 and "1024, 1025" in r.stdout, r.stderr


# -- 9. bench on integer counts
def test_bench_keeps_integer_counts_and_masks_and_plots_lossless(tiny_model, on_model_path, tmp_path, capsys):
    need("hdf5plugin"), need("matplotlib")
    from saecodec.bench import report

    x = pilatus(2, crop=48)
    path = tmp_path / "counts.h5"
    with h5py.File(path, "w") as f:
        f["frames"] = x
    out = tmp_path / "out"
    assert cli("bench", "--data", path, "--dataset", "frames", "--models", tiny_model.identity, "--stack", 2,
               "--fit-frames", 0, "--mask-value", -1, "--mask-value", -2, "--out", out, "--tag", "c", "--quiet") == 0
    capsys.readouterr()
    result = json.loads((out / "c.json").read_text())
    assert result["dtype"] == "int32" and result["domain"] == "intensity" and result["mask_values"] == [-1, -2]
    rows = {(r["method"], r["setting"], r["chunking"]): r for r in result["rows"]}
    lossless = rows[("saecodec", "tiny-test lossless", "2 frames")]
    assert lossless["metrics"]["max_abs"] == 0 and lossless["ratio"] > rows[("zstd", "level 3, lossless", "2 frames")][
        "ratio"]
    assert rows[("Bitshuffle+zstd", "lossless", "2 frames")]["metrics"]["max_abs"] == 0
    assert ("saecodec", "tiny-test poisson=0.5", "1 frame") in rows
    assert not any(r["note"] for r in result["rows"])  # nothing failed: no float-only anchor on counts
    # Exact results are drawn (at the plot's edge), not lost to the log scale.
    for xkey, ykey, logx in (("rel_l2_log", "ratio", True), ("bpp", "psnr", False)):
        groups, exact = report.points(result, "2 frames", xkey, ykey, logx)
        drawn = {lab for lab in exact}
        assert {"saecodec lossless (tiny-test)", "Bitshuffle+zstd", "zstd"} <= drawn, drawn
        assert all(np.isfinite(v).all() and (not logx or min(p[0] for p in pts) > 0)
                   for pts in exact.values() for v in pts)


# -- 10. chunks that divide the frame axis; decompress restores the source's
def test_default_chunks_divide_frames_and_decompress_restores_the_source_layout(tmp_path):
    assert sources.default_chunks((4, 619, 487), 4) == (2, 619, 487)  # 3 would fit: a padded last chunk
    assert sources.default_chunks((7, 619, 487), 4) == (1, 619, 487)
    x = pilatus(4, crop=64)
    src, small = tmp_path / "raw.nxs", tmp_path / "small.nxs"
    nexus_counts(src, x, chunks=False)  # contiguous, as many detectors write
    compress(src, small, progress=False, chunks="3,64,64")
    plain, kept = tmp_path / "plain.nxs", tmp_path / "kept.nxs"
    assert cli("decompress", small, plain, "--no-progress") == 0
    assert cli("decompress", small, kept, "--chunks", "stored", "--no-progress") == 0
    with h5py.File(src) as a, h5py.File(plain) as b, h5py.File(kept) as c:
        d = b["entry/instrument/detector/data"]
        assert d.chunks is None and "saecodec_source_layout" not in d.attrs
        np.testing.assert_array_equal(d[...], a["entry/instrument/detector/data"][...])
        assert c["entry/instrument/detector/data"].chunks == (3, 64, 64)
    assert os.path.getsize(plain) <= os.path.getsize(src) * 1.02


# -- 11. detector headers survive
PILATUS_HEADER = """# Detector: PILATUS 300K, 3-0101
# 2026-11-23T10:00:00.000
# Pixel_size 172e-6 m x 172e-6 m
# Silicon sensor, thickness 0.000450 m
# Exposure_time {t} s
# Exposure_period 1.0050000 s
# Count_cutoff 1048500 counts
# Wavelength 1.0332 A
# Detector_distance 2.50000 m
# Beam_xy (30.50, 20.25) pixels
"""


def test_cbf_and_tiff_headers_become_nexus_fields(tmp_path):
    fabio, tifffile = need("fabio"), need("tifffile")
    need("pyFAI")
    from fabio.cbfimage import CbfImage

    x = pilatus(2, crop=64)
    cbf, tif = tmp_path / "cbf", tmp_path / "tif"
    cbf.mkdir(), tif.mkdir()
    for i, frame in enumerate(x):
        header = PILATUS_HEADER.format(t=1.0 + i)
        CbfImage(data=frame, header={"_array_data.header_contents": header,
                                     "_array_data.header_convention": "PILATUS_1.2"}).write(str(cbf / f"f_{i}.cbf"))
        tifffile.imwrite(tif / f"f_{i}.tif", frame, description=header)
    for d in (cbf, tif):
        out = tmp_path / f"{d.name}.nxs"
        assert cli("compress", d, out, "--no-progress") == 0
        with h5py.File(out) as f:
            det, inst = f["entry/instrument/detector"], f["entry/instrument"]
            np.testing.assert_array_equal(det["data"][...], x)
            assert det["distance"][()] == 2.5 and det["distance"].attrs["units"] == "m"
            assert det["x_pixel_size"][()] == pytest.approx(172e-6) and det["beam_center_x"][()] == 30.5
            assert det["beam_center_y"][()] == 20.25 and det["beam_center_y"].attrs["units"] == "pixel"
            np.testing.assert_array_equal(det["count_time"][...], [1.0, 2.0])  # per frame where frames differ
            assert inst["monochromator/wavelength"][()] == pytest.approx(1.0332)
            assert inst["monochromator"].attrs["NX_class"] == "NXmonochromator"
            headers = [json.loads(h) for h in det["headers"].asstr()[...]]
            assert len(headers) == 2 and "Exposure_time 2.0 s" in json.dumps(headers[1]).replace("2.0000000", "2.0")
        rep = verify(d, out)
        assert rep["ok"] and rep["datasets"][0]["iq"]["method"] == "pyFAI (NeXus NXdetector geometry)"
    z = tmp_path / "cbf.zarr"
    compress(cbf, z, progress=False)
    import zarr

    attrs = dict(zarr.open_array(str(z), path="entry/instrument/detector/data", mode="r").attrs)
    assert attrs["detector"]["wavelength"] == {"value": 1.0332, "units": "angstrom"}
    assert len(attrs["detector_headers"]) == 2


def test_edf_header_keys_are_read():
    from saecodec.files.headers import fields_of

    f = fields_of({"SampleDistance": "2.5", "WaveLength": "1.0332e-10", "Center_1": "18.5", "Center_2": "20.25",
                   "PSize_1": "172e-6", "PSize_2": "172e-6", "ExposureTime": "1.0"})
    assert f == pytest.approx({"distance": 2.5, "wavelength": 1.0332, "beam_center_x": 18.5, "beam_center_y": 20.25,
                               "x_pixel_size": 172e-6, "y_pixel_size": 172e-6, "count_time": 1.0})


# -- 12. the picture before deleting originals
def test_verify_plot_draws_iq_with_error_bars_and_an_error_map(tmp_path, capsys):
    need("matplotlib")
    x = pilatus(2, crop=64)
    src, out, png = tmp_path / "raw.nxs", tmp_path / "small.nxs", tmp_path / "check.png"
    nexus_counts(src, x)
    assert cli("compress", src, out, "--error-bound", 1, "--bound-mode", "poisson", "--mask-value", -1,
               "--mask-value", -2, "--no-progress") == 0
    assert cli("verify", src, out, "--plot", png) == 0
    assert f"- plot: {png}" in capsys.readouterr().out
    import matplotlib.image

    img = matplotlib.image.imread(str(png))
    assert img.shape[0] > 300 and img.shape[1] > 1000  # one row: I(q), its change, the error map
    assert cli("verify", src, out, "--plot", tmp_path / "check.txt") == 2
