"""The benchmark harness: metrics against hand-computed values, and a tiny end-to-end run."""

import json
import math

import h5py
import numpy as np
import pytest
from conftest import blobs

from saecodec import bench
from saecodec.cli import main


def test_value_metrics_by_hand():
    x = np.array([[0.0, 1.0], [2.0, 4.0]])
    y = np.array([[0.0, 1.5], [2.0, 3.0]])
    m = bench.value_metrics(x, y)
    rmse = math.sqrt((0.25 + 1.0) / 4)
    assert m["max_abs"] == 1.0
    assert m["nrmse"] == pytest.approx(rmse / 4)
    assert m["psnr"] == pytest.approx(20 * math.log10(4 / rmse))
    assert m["rel_l2"] == pytest.approx(math.sqrt(1.25) / math.sqrt(21))
    assert bench.value_metrics(x, x)["psnr"] == float("inf")


def test_log_rel_l2_by_hand():
    ux = np.array([[[1.0, 3.0]]])  # one frame, mean 2, deviations -1, +1
    uy = np.array([[[1.0, 4.0]]])
    assert bench.log_rel_l2(ux, uy) == pytest.approx(1 / math.sqrt(2))


def test_radial_profile_and_iq_deviation_by_hand():
    q = np.array([[[1.0, 1.0], [10.0, 10.0]]])
    x = np.array([[[2.0, 4.0], [1.0, 1.0]]])
    p = bench.radial_profiles(x, q, bins=2)
    assert p[0, 0] == pytest.approx(3.0) and p[0, 1] == pytest.approx(1.0)
    y = np.array([[[3.0, 3.6], [5.0, 5.0]]])  # first bin mean 3.3 (10% off); second bin is background
    d = bench.iq_deviation(x, y, q, background=np.array([0.5]))
    assert d["iq_dev_median"] == pytest.approx(0.1)  # bin 2 (1.0 > 3 * 0.5 is false) is ignored
    d = bench.iq_deviation(x, y, q, background=np.array([0.2]))
    assert d["iq_dev_median"] == pytest.approx(4.0)


def test_dct_baseline_reaches_its_target():
    u = np.log10(blobs(6, seed=1))
    for target in (0.3, 0.05):
        rec, nbytes = bench.dct_baseline(u, target)
        got = bench.log_rel_l2(u, rec)
        assert got <= target * 1.05 and got > target * 0.5
        assert 0 < nbytes < u.size * 4


def test_pca_baseline_reaches_its_target():
    u = np.log10(blobs(200, seed=1))
    rec, nbytes, k, basis = bench.pca_baseline(u[:100], u[100:], 0.1)
    assert bench.log_rel_l2(u[100:], rec) <= 0.1 + 1e-9
    assert nbytes == 100 * (2 * k + 8) and basis == 2 * k * 256


def test_bench_end_to_end_on_a_tiny_stack(tiny_model, on_model_path, tmp_path):
    x = blobs(12, seed=5).astype(np.float32)
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as f:
        f["entry/frames"] = x
    rc = main(["bench", "--data", str(path), "--dataset", "entry/frames", "--domain", "intensity", "--models",
               tiny_model.identity, "--bounds", "0.5", "--stack", "4", "--fit-frames", "0", "--pca-train", "0",
               "--out", str(tmp_path / "out"), "--tag", "t", "--quiet"])
    assert rc == 0
    result = json.loads((tmp_path / "out" / "t.json").read_text())
    rows = {(r["method"], r["setting"], r["chunking"]): r for r in result["rows"]}
    bounded = rows[("saecodec", "tiny-test abs=0.5", "4 frames")]
    assert bounded["metrics"]["max_abs"] <= 0.5
    assert bounded["stored_bytes"] > 0 and bounded["ratio"] == pytest.approx(x.nbytes / bounded["stored_bytes"])
    assert rows[("zstd", "level 3, lossless", "1 frame")]["metrics"]["max_abs"] == 0
    assert rows[("SZ3", "abs=0.5", "1 frame")]["metrics"]["max_abs"] <= 0.5 * (1 + 1e-6)
    assert {"DCT 8x8", "PCA", "ZFP", "SPERR"} <= {r["method"] for r in result["rows"]}
    md = (tmp_path / "out" / "t.md").read_text()
    assert "| saecodec | tiny-test pure | 1 frame |" in md and result["versions"]["h5py"]
    assert (tmp_path / "out" / "t_psnr_bpp.png").stat().st_size > 1000


def test_sphere_fit_recovers_the_simulated_radius():
    from saecodec.data import sas

    cfg = sas.SimConfig(models=("sphere",))
    intensity, info = sas.simulate_one(3, 0, cfg)
    r = bench.fit_sphere_radius(intensity, info["qx"], info["qy"], info["params"])
    assert r == pytest.approx(info["params"]["radius"], rel=1e-3)
