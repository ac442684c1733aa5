"""``saecodec bench --suite rd``: the equal-error interpolation, and the suite end to end on a
few frames with a tiny conv-hyper model (levels, gate, bounded predictors, real-frame masks)."""

import json
import sys

import h5py
import numpy as np
import pytest
import torch
from conftest import blobs

from saecodec import model_store
from saecodec.bench import rd, rd_report
from saecodec.cli import main
from saecodec.models.transforms import Transform

SMALL_BOUNDS = {"SPERR": [0.05, 0.2, 0.8], "SZ3": [0.02, 0.1, 0.5], "ZFP": [0.25, 1.0, 4.0]}


def test_ratio_at_interpolates_log_log_and_flags_extrapolation():
    err = np.array([0.01, 0.02, 0.08])
    c = rd.curve(list(zip(err, 300.0 * err ** 0.5)) + [(0.04, 1.0)])  # (0.04, 1.0) is dominated: dropped
    assert c.shape == (3, 2)
    for e, extrap in ((0.03, False), (0.005, True), (0.2, True)):
        r, ex = rd.ratio_at(c, e)
        assert ex is extrap and r == pytest.approx(300.0 * e ** 0.5)  # a power law is a line in log-log
    assert rd.ratio_at(c[:1], 0.01) == (pytest.approx(c[0, 1]), False)
    assert np.isnan(rd.ratio_at(c[:1], 0.02)[0])


@pytest.fixture(scope="module")
def hyper(tmp_path_factory):
    """A tiny conv-hyper model with two rate levels, saved; returns its log10-input variant and the directory."""
    from saecodec.training import ConvHyperConfig, train_conv_hyper

    torch.manual_seed(0)
    arch = {"chans": [8, 8], "M": 8, "Nh": 8, "k": 5, "hk": 3, "lambdas": [30.0, 3000.0]}
    cfg = ConvHyperConfig(steps=20, batch=4, crop=16, lr=1e-2, warmup=5, seed=0, device="cpu", progress=False)
    model, _ = train_conv_hyper(blobs(32, (24, 24)), arch=arch, transform=Transform("asinh", 1e-3, True, "mean"),
                                cfg=cfg, name="tiny-rd")
    d = tmp_path_factory.mktemp("rdmodels")
    model.save(d / "tiny-rd.safetensors")
    return model_store.remember(model.for_log10_input()), d


def _fake_real(root, seed=0):
    rng = np.random.default_rng(seed)
    for k, shape in enumerate(((24, 24), (20, 28))):
        i = blobs(1, shape, seed=seed + k)[0] + rng.normal(0, 0.05, shape)  # some I <= 0
        i[0, :3] = np.nan
        i[-1, -2:] = rd.SENTINEL
        np.savez(root / f"f{k}.npz", I=i)


def test_rd_suite_on_a_few_frames(hyper, tmp_path):
    hyper = hyper[0]
    _fake_real(tmp_path)
    real = rd.real_frames(tmp_path)
    assert [len(mv) for _, _, mv in real] == [1, 1] and all(np.isnan(u[0, :3]).all() for _, u, _ in real)
    sim = np.log10(blobs(8, (24, 24), seed=3)).astype(np.float32)
    result = rd.run([hyper], sim, real, stack=4, anchor_bounds=SMALL_BOUNDS, progress=False)
    for set_name, raw in (("sim", sim.nbytes), ("real", sum(u.nbytes for _, u, _ in real))):
        s = result["sets"][set_name]
        pure = [r for r in s["rows"] if r["kind"] == "pure"]
        assert [(r["level"], r["gate"]) for r in pure] == [(0, "off"), (0, "default"), (1, "off"), (1, "default")]
        assert all(r["ratio"] == pytest.approx(raw / r["bytes"]) for r in s["rows"])
        assert all(r["fallback_frames"] == 0 for r in pure if r["gate"] == "off")
        assert all(r["frames"] == (8 if set_name == "sim" else 2) for r in pure)
        assert pure[2]["ratio"] < pure[0]["ratio"] and pure[2]["agg"] < pure[0]["agg"]  # level 1: more bytes
        sz3 = sorted((r["bound"], r["agg"], r["ratio"]) for r in s["rows"] if r["method"] == "SZ3")
        assert [a for _, a, _ in sz3] == sorted(a for _, a, _ in sz3)  # looser bound, larger error, higher ratio
        assert [q for _, _, q in sz3] == sorted(q for _, _, q in sz3)
        for row in s["compare"]:
            for c in ("SPERR", "SZ3", "ZFP"):
                assert row[f"x_{c}"] == pytest.approx(row["ours"] / row[c], nan_ok=True)
        b = s["bounded"]
        assert {(r["bound"], r["predictor"]) for r in b} == {(e, p) for e in rd.ABS_BOUNDS
                                                              for p in ("network", "classical")}
        for r in b:
            sp = next(a for a in s["rows"] if a["method"] == "SPERR" and a["bound"] == r["bound"])
            assert r["x_SPERR"] == pytest.approx(r["ratio"] / sp["ratio"]) and r["enc_vs_SZ3"] > 0
            assert r["frames"] == pure[0]["frames"] and 0 <= r["network_frames"] <= r["frames"]
    files = rd_report.save(result, tmp_path / "out", "t", "saecodec bench --suite rd")
    md = (tmp_path / "out" / "rd_t.md").read_text()
    assert "| tiny-rd-log10 | 0 | off |" in md and "### Bounded" in md
    assert all(f.stat().st_size > 1000 for f in map(type(tmp_path), files))
    assert json.loads((tmp_path / "out" / "rd_t.json").read_text())["command"] == "saecodec bench --suite rd"


def test_rd_suite_from_the_command_line(hyper, tmp_path, monkeypatch, capsys):
    """The CLI: a model with levels (read through its log10 variant) and the shipped sas64-l1 (one point)."""
    monkeypatch.setenv("SAECODEC_MODEL_PATH", str(hyper[1]))
    monkeypatch.setenv("SAECODEC_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as f:
        f["frames"] = np.log10(blobs(4, (64, 64), seed=5)).astype(np.float32)
    monkeypatch.setattr(rd, "ANCHOR_BOUNDS", SMALL_BOUNDS)
    argv = ["saecodec", "bench", "--suite", "rd", "--data", str(path), "--no-real", "--noisy", "0", "--models", "tiny-rd",
            "sas64-l1", "--stack", "4", "--out", str(tmp_path / "out"), "--tag", "c", "--quiet"]
    monkeypatch.setattr(sys, "argv", argv)
    assert main() == 0
    result = json.loads((tmp_path / "out" / "rd_c.json").read_text())
    assert list(result["sets"]) == ["sim"] and result["frames"]["sim"] == [4, 64, 64]
    pure = [(r["method"], r["level"], r["gate"]) for r in result["sets"]["sim"]["rows"] if r["kind"] == "pure"]
    assert pure == [("tiny-rd-log10", lv, g) for lv in (0, 1) for g in ("off", "default")] + \
        [("sas64-l1-log10", None, "off"), ("sas64-l1-log10", None, "default")]
    assert {r["method"] for r in result["sets"]["sim"]["bounded"]} == {"tiny-rd-log10"}
    assert "### At equal error" in capsys.readouterr().out


def test_rd_suite_measures_the_wavelet_family_on_the_noisy_set(tmp_path):
    """The noisy held-out set (NaN kept by saecodec, filled for the anchors, out of the metric) and a
    wavelet model over its rate levels, read through its log10-input variant."""
    from saecodec import model_store
    from saecodec.models.wavelet import wavelet_model

    noisy = rd.noisy_frames(4)
    assert noisy.shape == (4, 128, 128) and np.isnan(noisy).any() and np.isfinite(noisy).any()
    m = wavelet_model("wl-rd", levels=3, rate_levels=2)
    m = model_store.remember(m.for_log10_input())
    assert m.transform.kind == "linear" and not m.transform.per_frame
    sim = np.log10(blobs(5, (24, 24), seed=3)).astype(np.float32)  # another shape beside it
    result = rd.run([m], sim, None, stack=4, anchor_bounds=SMALL_BOUNDS, progress=False, noisy=noisy)
    assert result["sets"]["sim"]["rows"][0]["bytes"] > 0
    s = result["sets"]["noisy"]
    pure = [r for r in s["rows"] if r["kind"] == "pure"]
    assert [(r["level"], r["gate"]) for r in pure] == [(0, "off"), (0, "default"), (1, "off"), (1, "default")]
    assert pure[2]["agg"] < pure[0]["agg"] and all(np.isfinite(r["agg"]) for r in s["rows"])
    assert result["frames"]["noisy"] == [4, 128, 128]
    assert "noisy held-out" in rd_report.markdown(result)
