"""``saecodec compress / decompress / verify`` on real HDF5/NeXus files, Zarr stores and TIFF
stacks (tiny model, small files), read back by h5py in a fresh process, h5dump and zarr."""

import json
import os
import shutil
import subprocess
import threading
import time

import h5py
import numpy as np
import pytest
import zarr

from conftest import blobs, run_fresh
from saecodec import hdf5
from saecodec.cli import main
from saecodec.codec import SAECodec
from saecodec.errors import SaecodecError
from saecodec.files import compress, decompress, fallback_frames, verify
from saecodec.files import inputs, sources, stored
from saecodec.files.parallel import Pool

EB = 0.05


def need(module):
    """The optional dependencies of saecodec[files] (in the test extra): required under CI."""
    if os.environ.get("CI"):
        return __import__(module)
    return pytest.importorskip(module)


SHAPE = (6, 40, 37)
CHUNKS = (4, 40, 37)  # two chunks along the stack, the second one partial


def nexus(path, x):
    """A NeXus-style run: frames in an NXdetector with geometry, a hard-linked NXdata, soft and
    external links, other datasets with their own filters, attributes of several types."""
    with h5py.File(path, "w", track_order=True) as f:
        f.attrs["NX_class"] = "NXroot"
        f.attrs["file_name"] = np.bytes_(b"run.nxs")
        f.attrs["creator"] = "test"
        e = f.create_group("entry")
        e.attrs["NX_class"] = "NXentry"
        e["title"] = "run 1"
        e["start_time"] = np.bytes_(b"2026-11-23T10:00:00")
        inst = e.create_group("instrument")
        inst.attrs["NX_class"] = "NXinstrument"
        det = inst.create_group("detector")
        det.attrs["NX_class"] = "NXdetector"
        d = det.create_dataset("data", data=x, chunks=(1,) + x.shape[1:], compression="gzip")
        d.attrs["units"] = "counts"
        d.attrs["signal"] = np.int32(1)
        d.attrs["axes"] = np.array([b"frame", b"y", b"x"])
        for key, val, unit in (("distance", 2.5, "m"), ("x_pixel_size", 172.0, "um"), ("y_pixel_size", 172e-6, "m"),
                               ("beam_center_x", 18.0, "pixel"), ("beam_center_y", 20.0, "pixel")):
            det[key] = val
            det[key].attrs["units"] = unit
        det.create_dataset("pixel_mask", data=(np.arange(40 * 37).reshape(40, 37) % 97 == 0).astype("u4"),
                           compression="gzip", shuffle=True)
        mono = inst.create_group("monochromator")
        mono.attrs["NX_class"] = "NXmonochromator"
        mono["wavelength"] = 1.0
        mono["wavelength"].attrs["units"] = "angstrom"
        nd = e.create_group("data")
        nd.attrs["NX_class"] = "NXdata"
        nd.attrs["signal"] = "data"
        nd["data"] = d  # hard link: one dataset, two names
        nd["alias"] = h5py.SoftLink("/entry/instrument/detector/data")
        e["elsewhere"] = h5py.ExternalLink("other.h5", "/x")
        e.create_dataset("monitor", data=np.arange(len(x), dtype="f8"), chunks=(4,), compression="lzf",
                         fillvalue=-1.0, maxshape=(None,))
        e["orientation"] = np.eye(3)
        e.attrs.create("empty", h5py.Empty("f4"))
        f["calibration"] = np.arange(3.0)  # after "entry": the root's creation order is not the names' order


def frames(n=SHAPE[0], seed=3):
    return blobs(n, shape=SHAPE[1:], seed=seed).astype(np.float32)


def cli(*args):
    return main([str(a) for a in args])


LAYOUT = "saecodec_source_layout"  # compress records the input's chunks there (decompress restores them)


def same_attrs(a, b, ignore=()):
    ka, kb = sorted(set(a.attrs) - set(ignore)), sorted(set(b.attrs) - set(ignore))
    assert ka == kb, (a.name, ka, kb)
    for k in ka:
        ta, tb = a.attrs.get_id(k).get_type(), b.attrs.get_id(k).get_type()
        assert ta == tb, (a.name, k)
        va, vb = a.attrs[k], b.attrs[k]
        if isinstance(va, h5py.Empty):
            assert isinstance(vb, h5py.Empty)
        else:
            np.testing.assert_array_equal(va, vb)


def same_tree(src, dst, frames_ids):
    """Every object but the compressed frames identical: links, attributes, data, storage."""
    same_attrs(src, dst)

    def walk(a, b):
        assert list(a) == list(b), a.name  # same members, same order
        for name in a:
            la, lb = a.get(name, getlink=True), b.get(name, getlink=True)
            assert type(la) is type(lb), f"{a.name}/{name}"
            if isinstance(la, h5py.SoftLink):
                assert la.path == lb.path
                continue
            if isinstance(la, h5py.ExternalLink):
                assert (la.filename, la.path) == (lb.filename, lb.path)
                continue
            oa, ob = a[name], b[name]
            same_attrs(oa, ob, {LAYOUT} if oa.id in frames_ids else ())
            if isinstance(oa, h5py.Group):
                walk(oa, ob)
            elif oa.id not in frames_ids:
                assert oa.dtype == ob.dtype and oa.shape == ob.shape
                assert (oa.chunks, oa.compression, oa.compression_opts, oa.shuffle, oa.maxshape) == \
                       (ob.chunks, ob.compression, ob.compression_opts, ob.shuffle, ob.maxshape)
                assert oa.fillvalue == ob.fillvalue
                np.testing.assert_array_equal(oa[()], ob[()])

    walk(src, dst)


@pytest.fixture
def reader_env(on_model_path):
    return {"HDF5_PLUGIN_PATH": str(hdf5.plugin_dir()), "SAECODEC_MODEL_PATH": str(on_model_path),
            "SAECODEC_CACHE_DIR": os.environ["SAECODEC_CACHE_DIR"]}


def test_nexus_file_compressed_as_a_drop_in_replacement(tiny_model, reader_env, tmp_path):
    need("pyFAI")
    x = frames()
    src, out = tmp_path / "run.nxs", tmp_path / "small.nxs"
    nexus(src, x)
    assert cli("compress", src, out, "--model", tiny_model.identity, "--error-bound", EB, "--chunks",
               ",".join(map(str, CHUNKS)), "--workers", 2, "--no-progress") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.nxs", "small.nxs"]  # no temporary left
    with h5py.File(src) as a, h5py.File(out) as b:
        d = b["entry/instrument/detector/data"]
        assert d.id == b["entry/data/data"].id  # still one dataset under two names
        assert d.chunks == CHUNKS
        plist = d.id.get_create_plist()
        assert [plist.get_filter(i)[0] for i in range(plist.get_nfilters())] == [hdf5.FILTER_ID]
        same_tree(a, b, {a["entry/data/data"].id})
        same_attrs(a["entry/data/data"], d, {LAYOUT})
        assert json.loads(d.attrs[LAYOUT]) == {"chunks": [1, 40, 37]}  # the input's, for decompress
        assert os.path.getsize(out) < os.path.getsize(src) / 2
    # The stored chunks are exactly what the HDF5 filter writes, edge chunk padding included.
    ref = tmp_path / "filter.h5"
    with h5py.File(ref, "w") as f:
        f.create_dataset("x", data=x, chunks=CHUNKS, **hdf5.SAE(model=tiny_model.identity, error_bound=EB))
    with h5py.File(ref) as f, h5py.File(out) as g:
        for off in [(0, 0, 0), (4, 0, 0)]:
            assert f["x"].id.read_direct_chunk(off)[1] == g["entry/data/data"].id.read_direct_chunk(off)[1]
    # The original reader code, in a process that never imports saecodec.
    back = tmp_path / "back.npy"
    run_fresh(f"""
        import sys, h5py, numpy as np
        with h5py.File({str(out)!r}, "r") as f:
            det = f["entry/instrument/detector"]
            assert det.attrs["NX_class"] == "NXdetector" and det["distance"][()] == 2.5
            np.save({str(back)!r}, f[f["entry/data"].attrs["signal"].join(["entry/data/", ""])][...])
        """, reader_env)
    assert np.abs(np.load(back) - x).max() <= EB
    if shutil.which("h5dump"):
        dump = subprocess.run(["h5dump", "-d", "/entry/data/data", "-s", "5,0,0", "-c", "1,1,3", str(out)],
                              capture_output=True, text=True, env={**os.environ, **reader_env}, timeout=300)
        assert dump.returncode == 0, dump.stderr
        vals = [float(v) for v in dump.stdout.split("(5,0,0):")[1].split("}")[0].replace(",", " ").split()]
        assert np.abs(np.array(vals) - x[5, 0, :3]).max() <= EB + 1e-4
    # verify: JSON report, bound holds, I(q) by pyFAI from the NXdetector geometry.
    report = tmp_path / "report.json"
    assert cli("verify", src, out, "--json", "-o", report, "--workers", 2) == 0
    rep = json.loads(report.read_text())
    (ds,) = rep["datasets"]
    assert ds["bound_holds"] is True and ds["violations"] == 0 and ds["max_abs_error"] <= EB
    assert ds["error_bound"] == EB and ds["bound_mode"] == "abs" and ds["special_exact"]
    with h5py.File(out) as g:
        stored = sum(g["entry/data/data"].id.get_chunk_info(i).size for i in range(2))
    assert ds["stored_bytes"] == stored and ds["ratio"] == pytest.approx(x.nbytes / stored)
    assert ds["iq"]["method"].startswith("pyFAI (NeXus") and ds["iq"]["frames"] == 6
    assert ds["iq"]["max_rel_l2"] < 0.05
    assert ds["frames_fell_back"] == 0  # bounded payloads have no quality gate


def test_verify_reports_a_broken_bound(tiny_model, on_model_path, tmp_path, capsys):
    x = frames()
    src, out, other = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    for p, data in ((src, x), (other, x + np.where(np.arange(x.size).reshape(x.shape) == 77, 1.0, 0.0))):
        with h5py.File(p, "w") as f:
            f["frames"] = data.astype(np.float32)
    compress(src, out, model=tiny_model.identity, options={"error_bound": EB}, progress=False)
    assert cli("verify", other, out) == 1
    text = capsys.readouterr().out
    assert "**NO**" in text and "broken on 1 elements" in text and "pixel-radius" in text
    assert "| 0 |" in text  # frames fell back: none, bounded payloads have no quality gate


def test_rel_bound_checked_per_padded_chunk(tiny_model, on_model_path, tmp_path):
    x = frames()
    x[4:] *= 30  # the partial edge chunk has another range than the first
    src, out = tmp_path / "a.h5", tmp_path / "b.zarr"
    with h5py.File(src, "w") as f:
        f["frames"] = x
    compress(src, out, model=tiny_model.identity, options={"error_bound": 1e-3, "bound_mode": "rel"},
             chunks="4,40,37", progress=False)
    rep = verify(src, out, iq_check=False)
    (ds,) = rep["datasets"]
    assert ds["bound_holds"] and rep["ok"] and ds["bound_mode"] == "rel"
    per_chunk = [1e-3 * (float(x[:4].max()) - float(x[:4].min())), 1e-3 * float(x[4:].max())]  # edge: fill 0
    assert ds["largest_bound"] == pytest.approx(max(per_chunk), rel=1e-9)


def test_verify_checks_pwrel_and_poisson_per_element(tiny_model, on_model_path, tmp_path, capsys):
    """pwrel (HDF5, bound read from cd_values) and poisson (Zarr, from the codec config) pass on
    the compressed data and fail on a tampered copy of the original: a value moved by 3% of
    itself, a zero that is no longer zero, a count moved by 2.5 sqrt(x)."""
    x = frames() * 100 - 20  # signed, a few exact zeros
    x[0, 0, :5] = 0.0
    counts = np.random.default_rng(5).poisson(np.linspace(0.5, 2000, SHAPE[2]), SHAPE).astype(np.int32)
    counts[:, 7, :] = -1  # a module gap
    counts[:, 9, 3] = -2  # dead pixels
    src, tampered = tmp_path / "a.h5", tmp_path / "t.h5"
    for p in (src, tampered):
        with h5py.File(p, "w") as f:
            f["frames"], f["counts"] = x, counts
    with h5py.File(tampered, "a") as f:
        y, c = x.copy(), counts.copy()
        i = np.unravel_index(np.argmax(np.abs(x)), x.shape)
        y[i] *= 1.03  # decoded within 1% of x, so at least 2% of x from y
        y[0, 0, 2] = 1e-3  # decoded 0 stays 0, so |d - y| = 1e-3 > eb * 1e-3
        j = np.unravel_index(np.argmax(counts), counts.shape)
        c[j] += int(2.5 * np.sqrt(counts[j]))
        f["frames"][...], f["counts"][...] = y, c
    h5out, zout = tmp_path / "p.h5", tmp_path / "q.zarr"
    assert cli("compress", src, h5out, "--model", tiny_model.identity, "--dataset", "frames", "--error-bound", 0.01,
               "--bound-mode", "pwrel", "--no-progress") == 0
    assert cli("compress", src, zout, "--model", tiny_model.identity, "--dataset", "counts", "--error-bound", 1,
               "--bound-mode", "poisson", "--codec-option", "mask_values=[-1,-2]", "--no-progress") == 0
    for out, mode in ((h5out, "pwrel"), (zout, "poisson")):
        rep = verify(src, out, iq_check=False)
        (ds,) = rep["datasets"]
        assert rep["ok"] and ds["bound_holds"] and ds["violations"] == 0 and ds["special_exact"], ds
        assert ds["bound_mode"] == mode and ds["max_abs_error"] > 0  # lossy, not lossless
        bad = verify(tampered, out, iq_check=False)
        assert not bad["ok"] and bad["datasets"][0]["violations"] == (2 if mode == "pwrel" else 1)
    assert cli("verify", tampered, zout, "--no-iq") == 1
    text = capsys.readouterr().out
    assert "poisson 1" in text and "broken on 1 elements" in text


def test_tiff_stack_to_hdf5_and_zarr(tiny_model, on_model_path, tmp_path):
    tifffile = need("tifffile")
    need("fabio"), need("pyFAI")
    x = (frames(5) * 10).astype(np.uint16)
    d = tmp_path / "tiffs"
    d.mkdir()
    for i, frame in enumerate(x):
        tifffile.imwrite(d / f"img_{i:03d}.tif", frame)
    out = tmp_path / "stack.h5"
    assert cli("compress", d, out, "--model", tiny_model.identity, "--error-bound", 2, "--no-progress",
               "--latent-dtype", "bfloat16", "--codec-option", "mask_value=0") == 0
    spec = stored.compressed(out)[0].spec  # the options reached the filter's cd_values
    assert spec["mask_value"] == 0 and spec["error_bound"] == 2
    assert spec.get("latent_dtype", spec.get("weight_dtype")) == "bfloat16"
    with h5py.File(out) as f:
        data = f["entry/instrument/detector/data"]
        assert data.dtype == np.uint16 and data.shape == x.shape
        assert np.abs(data[...].astype(int) - x).max() <= 2
        assert f["entry/data/data"].shape == x.shape and f["entry/data"].attrs["signal"] == "data"
        assert len(f["entry/instrument/detector/source_files"]) == 5
    rep = verify(d, out)
    assert rep["ok"] and rep["datasets"][0]["iq"]["method"].startswith("pixel-radius")
    # With a PONI file, pyFAI integrates.
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    poni = tmp_path / "det.poni"
    AzimuthalIntegrator(dist=1.0, poni1=0.003, poni2=0.003, pixel1=1.72e-4, pixel2=1.72e-4, wavelength=1e-10).save(
        str(poni))
    rep = verify(str(d / "img_*.tif"), out, poni=poni)
    assert rep["ok"] and rep["datasets"][0]["iq"]["method"] == f"pyFAI (PONI {poni})"
    z = tmp_path / "stack.zarr"
    compress(d, z, model=tiny_model.identity, options={"error_bound": 2}, progress=False)
    a = zarr.open_array(str(z), path="entry/instrument/detector/data", mode="r")
    assert np.abs(a[...].astype(int) - x).max() <= 2


def test_zarr_store_in_and_out(tiny_model, on_model_path, tmp_path):
    x = frames()
    src = tmp_path / "in.zarr"
    g = zarr.open_group(str(src), mode="w", zarr_format=2)
    g.attrs["experiment"] = {"id": 7}
    a = g.create_array("scan/frames", shape=x.shape, chunks=(2, 40, 37), dtype="f4")
    a[...] = x
    a.attrs["units"] = "counts"
    g.create_array("scan/time", shape=(6,), dtype="f8")[...] = np.arange(6.0)
    for fmt in ("zarr2", "zarr3"):
        out = tmp_path / f"out_{fmt}.zarr"
        compress(src, out, model=tiny_model.identity, options={"error_bound": EB}, chunks="4,40,37", fmt=fmt,
                 progress=False)
        r = zarr.open_group(str(out), mode="r")
        assert r.metadata.zarr_format == int(fmt[-1])
        assert dict(r.attrs) == {"experiment": {"id": 7}}
        np.testing.assert_array_equal(r["scan/time"][...], np.arange(6.0))
        assert dict(r["scan/frames"].attrs) == {"units": "counts", LAYOUT: '{"chunks": [2, 40, 37]}'}
        back = zarr.open_array(str(out), path="scan/frames", mode="r")[...]
        assert np.abs(back - x).max() <= EB
        assert verify(src, out, iq_check=False)["ok"]
    # The chunk files hold what zarr itself writes through the codec (edge chunk padded alike).
    ref = zarr.create_array(store=str(tmp_path / "ref.zarr"), shape=x.shape, chunks=(4, 40, 37), dtype="f4",
                            serializer=__import__("saecodec").SAEZarrCodec(model=tiny_model.identity, error_bound=EB),
                            compressors=None)
    ref[...] = x
    for key in ("c/0/0/0", "c/1/0/0"):
        assert (tmp_path / "ref.zarr" / key).read_bytes() == (tmp_path / "out_zarr3.zarr/scan/frames" / key).read_bytes()
    # HDF5 out of a Zarr store.
    h5 = tmp_path / "from_zarr.h5"
    compress(src, h5, model=tiny_model.identity, options={"error_bound": EB}, progress=False)
    with h5py.File(h5) as f:
        assert np.abs(f["scan/frames"][...] - x).max() <= EB
        np.testing.assert_array_equal(f["scan/time"][...], np.arange(6.0))


def test_nxcansas_signal_and_q_map(tiny_model, on_model_path, tmp_path):
    qy, qx = np.meshgrid(np.linspace(-0.1, 0.1, 40), np.linspace(-0.1, 0.1, 37), indexing="ij")
    intensity = (1.0 / (1e-3 + qx ** 2 + qy ** 2)).astype("f8")
    src, out = tmp_path / "reduced.h5", tmp_path / "small.h5"
    with h5py.File(src, "w") as f:
        sd = f.create_group("sasentry01/sasdata01")
        f["sasentry01"].attrs.update({"NX_class": "NXentry", "canSAS_class": "SASentry"})
        sd.attrs.update({"NX_class": "NXdata", "canSAS_class": "SASdata", "signal": "I", "I_axes": "Q,Q"})
        sd["I"], sd["Qx"], sd["Qy"] = intensity, qx, qy
        sd["Idev"] = np.sqrt(intensity)
    compress(src, out, model=tiny_model.identity, options={"error_bound": 1.0}, progress=False)
    with h5py.File(out) as f:
        plists = {n: f["sasentry01/sasdata01"][n].id.get_create_plist() for n in ("I", "Qx", "Qy", "Idev")}
        assert {n: [p.get_filter(i)[0] for i in range(p.get_nfilters())] for n, p in plists.items()} == {
            "I": [hdf5.FILTER_ID], "Qx": [], "Qy": [], "Idev": []}  # only the NXdata signal
        np.testing.assert_array_equal(f["sasentry01/sasdata01/Qx"][...], qx)
        assert f["sasentry01/sasdata01/Idev"].id.get_create_plist().get_nfilters() == 0
    rep = verify(src, out)
    assert rep["ok"] and rep["datasets"][0]["iq"]["method"].startswith("binned stored q")


def test_decompress_back_to_plain_hdf5_and_zarr(tiny_model, on_model_path, tmp_path):
    x = frames()
    src, small = tmp_path / "run.nxs", tmp_path / "small.nxs"
    nexus(src, x)
    compress(src, small, model=tiny_model.identity, options={"error_bound": EB}, chunks="4,40,37", progress=False)
    plain = tmp_path / "plain.nxs"
    assert cli("decompress", small, plain, "--compression", "gzip", "--no-progress") == 0
    with h5py.File(small) as s, h5py.File(plain) as p:
        d = p["entry/instrument/detector/data"]
        assert d.compression == "gzip" and d.chunks == (1, 40, 37)  # the original's, not the compressed file's
        np.testing.assert_array_equal(d[...], s["entry/instrument/detector/data"][...])
        assert d.id == p["entry/data/data"].id
        same_tree(s, p, {s["entry/data/data"].id})
    z = tmp_path / "plain.zarr"
    decompress(small, z, progress=False)
    np.testing.assert_array_equal(zarr.open_array(str(z), path="entry/data/data", mode="r")[...], p_read(plain))


def p_read(path):
    with h5py.File(path) as f:
        return f["entry/data/data"][...]


def test_output_safety_and_clear_errors(tiny_model, on_model_path, tmp_path, capsys, monkeypatch):
    x = frames()
    src, out = tmp_path / "a.h5", tmp_path / "b.h5"
    with h5py.File(src, "w") as f:
        f["frames"] = x
        f["label"] = "not an image"
    out.write_bytes(b"precious")
    assert cli("compress", src, out, "--model", tiny_model.identity) == 2
    assert "exists; use --force" in capsys.readouterr().err and out.read_bytes() == b"precious"
    for args, msg in [(("compress", tmp_path / "nope.h5", tmp_path / "c.h5"), "no such file"),
                      (("compress", src, tmp_path / "c.h5", "--dataset", "missing"), "no dataset 'missing'"),
                      (("compress", src, tmp_path / "c.h5", "--dataset", "label"), "numeric arrays"),
                      (("compress", src, tmp_path / "c.h5", "--chunks", "a,b"), "--chunks"),
                      (("compress", src, tmp_path / "c.h5", "--codec-option", "nonsense=1"), "unknown codec option"),
                      (("compress", src, tmp_path / "c.h5", "--error-bound", "-1"), "error_bound"),
                      (("compress", src, tmp_path / "c.txt"), "--format"),
                      (("verify", src, src), "no saecodec-compressed dataset")]:
        assert cli(*args, "--model", tiny_model.identity) == 2 if args[0] == "compress" else cli(*args) == 2
        assert msg in capsys.readouterr().err, msg
    # A failure in the middle leaves the old output untouched and no temporary file.
    calls = []

    def failing(spec):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("disk on fire")
        return SAECodec(**spec)

    monkeypatch.setattr(sources, "codec_for", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        compress(src, out, model=tiny_model.identity, chunks="1,40,37", force=True, workers=1, progress=False)
    assert out.read_bytes() == b"precious" and sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.h5"]


def test_pool_keeps_a_bounded_window():
    live, peak, lock = [0], [0], threading.Lock()
    produced = []

    def items():
        for i in range(40):
            produced.append(i)
            yield i

    def work(i):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.002)
        with lock:
            live[0] -= 1
        return i * i

    with Pool(workers=2) as pool:
        got = {}
        for i, r in pool.imap_unordered(work, items()):
            got[i] = r
            assert len(produced) - len(got) <= 4  # never more than 2 per worker read ahead
    assert got == {i: i * i for i in range(40)} and peak[0] <= 2


def test_dask_distributed_scheduler(tiny_model, on_model_path, tmp_path):
    need("distributed")
    from distributed import Client, LocalCluster

    x = frames()
    src, a, b = tmp_path / "a.h5", tmp_path / "threads.h5", tmp_path / "dask.h5"
    with h5py.File(src, "w") as f:
        f["frames"] = x
    compress(src, a, model=tiny_model.identity, options={"error_bound": EB}, chunks="2,40,37", progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        compress(src, b, model=tiny_model.identity, options={"error_bound": EB}, chunks="2,40,37",
                 scheduler=client, progress=False)
        assert verify(src, b, scheduler=client, iq_check=False)["ok"]
    with h5py.File(a) as f, h5py.File(b) as g:
        for off in [(0, 0, 0), (2, 0, 0), (4, 0, 0)]:
            assert f["frames"].id.read_direct_chunk(off)[1] == g["frames"].id.read_direct_chunk(off)[1]


def test_fallback_frames_counts_what_the_gate_chose(tiny_model, on_model_path):
    from saecodec.chunk import payload_stats

    pure = SAECodec(tiny_model.identity).encode(frames(2))
    assert fallback_frames(pure) == payload_stats(pure)["fallback_frames"]
    assert fallback_frames(SAECodec(tiny_model.identity, error_bound=EB).encode(frames(2))) == 0  # no gate


def test_default_selection_and_chunks(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["stack"] = np.zeros((10, 64, 48), "f4")
        f["matrix"] = np.eye(3)
        f["names"] = np.array([b"a", b"b"])
        f.create_dataset("mask", data=np.zeros((64, 48), "u1"))
    kind, targets = inputs.targets(tmp_path / "a.h5")
    assert kind == "hdf5" and sorted(t.name for t in targets) == ["mask", "stack"]
    assert sources.default_chunks((1000, 1024, 1024), 4) == (1, 1024, 1024)
    assert sources.default_chunks((1000, 256, 256), 4) == (10, 256, 256)  # 16 fit; 10 divides 1000
    assert sources.default_chunks((1000, 256, 256), 4, (1, 256, 256)) == (1, 256, 256)
    with pytest.raises(SaecodecError, match="does not fit"):
        sources.parse_chunks("1,2", (3, 4, 5), 4)


def test_externally_linked_frames_are_not_followed(tmp_path):
    """An Eiger-style master file links its frames from data files: compress those instead."""
    with h5py.File(tmp_path / "data_000001.h5", "w") as f:
        f["entry/data/data"] = np.zeros((4, 32, 32), "f4")
    with h5py.File(tmp_path / "master.h5", "w") as f:
        det = f.create_group("entry/instrument/detector")
        det.attrs["NX_class"] = "NXdetector"
        det["data"] = h5py.ExternalLink("data_000001.h5", "/entry/data/data")
    assert inputs.hdf5_targets(tmp_path / "master.h5") == []
    with pytest.raises(SaecodecError, match="external link"):
        inputs.hdf5_targets(tmp_path / "master.h5", ["entry/instrument/detector/data"])
    with pytest.raises(SaecodecError, match="external links are not followed"):
        compress(tmp_path / "master.h5", tmp_path / "out.h5", progress=False)
