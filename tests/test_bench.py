"""The benchmark harness: baselines reach their targets, fits recover the truth, a tiny end-to-end run."""

import json
import shlex
import sys

import h5py
import numpy as np
import pytest
from conftest import blobs

from saecodec.bench import baselines, fits
from saecodec.metrics import offset_free_rel_l2
from saecodec.cli import main


def test_dct_baseline_reaches_its_target():
    u = np.log10(blobs(6, seed=1))
    for target in (0.3, 0.05):
        rec, nbytes = baselines.dct_baseline(u, target)
        got = offset_free_rel_l2(u, rec)[0]
        assert got <= target * 1.05 and got > target * 0.5
        assert 0 < nbytes < u.size * 4


def test_pca_baseline_reaches_its_target():
    u = np.log10(blobs(200, seed=1))
    rec, nbytes, k, basis = baselines.pca_baseline(u[:100], u[100:], 0.1)
    assert offset_free_rel_l2(u[100:], rec)[0] <= 0.1 + 1e-9
    assert nbytes == 100 * (2 * k + 8) and basis == 2 * k * 256


def test_bench_end_to_end_on_a_tiny_stack(tiny_model, on_model_path, tmp_path, monkeypatch, capsys):
    x = blobs(12, seed=5).astype(np.float32)
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as f:
        f["entry/frames"] = x
    argv = ["bench", "--data", str(path), "--dataset", "entry/frames", "--domain", "intensity", "--models",
            tiny_model.identity, "--bounds", "0.5", "--stack", "4", "--fit-frames", "0", "--pca-train", "0",
            "--out", str(tmp_path / "out"), "--tag", "t", "--quiet"]
    monkeypatch.setattr(sys, "argv", ["saecodec", *argv])  # as the console script runs it
    assert main() == 0
    # The command line printed and saved is the one that ran, so the results can be reproduced.
    command = "saecodec " + shlex.join(argv)
    assert f"Command: `{command}`" in capsys.readouterr().out
    result = json.loads((tmp_path / "out" / "t.json").read_text())
    assert result["command"] == command
    assert f"Command: `{command}`" in (tmp_path / "out" / "t.md").read_text()
    rows = {(r["method"], r["setting"], r["chunking"]): r for r in result["rows"]}
    bounded = rows[("saecodec", "tiny-test abs=0.5", "4 frames")]
    assert bounded["metrics"]["max_abs"] <= 0.5
    assert bounded["stored_bytes"] > 0 and bounded["ratio"] == pytest.approx(x.nbytes / bounded["stored_bytes"])
    assert rows[("zstd", "level 3, lossless", "1 frame")]["metrics"]["max_abs"] == 0
    assert rows[("SZ3", "abs=0.5", "1 frame")]["metrics"]["max_abs"] <= 0.5 * (1 + 1e-6)
    assert {"DCT 8x8", "PCA", "ZFP", "SPERR"} <= {r["method"] for r in result["rows"]}
    md = (tmp_path / "out" / "t.md").read_text()
    assert "| saecodec | tiny-test pure | 1 frame |" in md and result["versions"]["h5py"]
    gated, plain = rows[("saecodec", "tiny-test pure", "4 frames")], rows[("saecodec", "tiny-test pure, no gate", "4 frames")]
    assert gated["frames_coded"] == 12 and 0 <= gated["fallback_frames"] <= 12 and plain["fallback_frames"] == 0
    assert f"| {gated['fallback_frames']}/12 |" in md
    assert (tmp_path / "out" / "t_psnr_bpp.png").stat().st_size > 1000


def test_sphere_fit_recovers_the_simulated_radius():
    from saecodec.data import sas

    cfg = sas.SimConfig(models=("sphere",))
    intensity, info = sas.simulate_one(3, 0, cfg)
    r = fits.fit_sphere_radius(intensity, info["qx"], info["qy"], info["params"])
    assert r == pytest.approx(info["params"]["radius"], rel=1e-3)


def test_bench_on_data_that_is_not_a_stack_of_frames_is_a_clear_error(tmp_path, capsys):
    with h5py.File(tmp_path / "line.h5", "w") as f:
        f["x"] = np.arange(10.0)
    assert main(["bench", "--data", str(tmp_path / "line.h5"), "--dataset", "x", "--quiet"]) == 2
    assert "bench needs a stack of 2D frames" in capsys.readouterr().err
