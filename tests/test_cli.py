import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from conftest import blobs
from saecodec.cli import main


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "saecodec.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_models_list_add_show(tiny_model, model_dir, on_model_path, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SAECODEC_MODEL_PATH")
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "sas64-l1" in out and "package" in out and "tiny-test" not in out
    assert main(["models", "add", str(model_dir / "tiny-test.safetensors")]) == 0
    assert "tiny-test" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    assert "tiny-test" in capsys.readouterr().out
    assert main(["models", "show", tiny_model.identity[:10]]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["identity"] == tiny_model.identity and meta["source"] == "user cache"


def test_models_show_missing_is_an_error(on_model_path, capsys):
    assert main(["models", "show", "no-such-model"]) == 2
    assert "not found" in capsys.readouterr().err


def test_simulate_train_demo_end_to_end(tmp_path, on_model_path):
    data = tmp_path / "sim.h5"
    r = cli("simulate", "-n", "300", "--size", "32", "--seed", "3", "-o", str(data), "-q", "--workers", "2")
    assert r.returncode == 0, r.stderr
    with h5py.File(data) as f:
        assert f["frames"].shape == (300, 32, 32) and f["frames"].dtype == np.float32
        assert len(f["params"]) == 300 and f["qx"].shape == (300, 32)
    model = tmp_path / "m.safetensors"
    r = cli("train", "--data", str(data), "--arch", "1/8,1/8,0.3,z", "--epochs", "3", "--lr", "1e-3", "--batch",
            "64", "--device", "cpu", "-o", str(model), "--name", "cli-test", "-q")
    assert r.returncode == 0, r.stderr
    assert "registered" in r.stdout and model.exists()
    r = cli("demo", "--model", str(model), "--frames", "40", "--chunk", "8", "--out", str(tmp_path / "d.zarr"), "-q")
    assert r.returncode == 0, r.stderr
    ratio = float(r.stdout.split("ratio ")[1].split("x")[0])
    assert ratio > 1.0 and "rel L2" in r.stdout
    assert "of 40 frames missed max_error 0.25" in r.stdout  # the quality gate's report



def test_simulate_detector_presets_from_the_command_line(tmp_path, capsys):
    """The CLI streams exactly the frames of simulate_detector, with its overrides, sentinels and mask value."""
    from saecodec.data import detector as D

    few = "sphere,guinier_porod"
    counts = tmp_path / "counts.h5"
    assert main(["simulate", "-n", "3", "--preset", "saxs-pilatus", "--shape", "40,36", "--counts", "50,500",
                 "--models", few, "--seed", "4", "--workers", "1", "-q", "-o", str(counts)]) == 0
    assert "40x36 int32 (saxs-pilatus" in capsys.readouterr().out
    cfg = D.preset("saxs-pilatus", shape=(40, 36), counts=(50.0, 500.0), models=tuple(few.split(",")),
                   mixture_models=tuple(few.split(",")))
    ref = D.simulate_detector(3, seed=4, cfg=cfg, workers=1, progress=False)
    with h5py.File(counts) as f:
        np.testing.assert_array_equal(f["frames"][...], ref.frames)
        flags = f["mask"][...]
        assert f["frames"].dtype == np.int32 and (f["frames"][...][(flags & D.GAP) != 0] == -1).all()
        assert all(50 <= json.loads(m)["peak_counts"] <= 500 for m in f["meta"][...])
    assert [p.name for p in tmp_path.iterdir()] == ["counts.h5"]  # no temporary file left

    floats = tmp_path / "floats.h5"
    assert main(["simulate", "-n", "2", "--preset", "train-mix", "--size", "24", "--models", few, "--mask-value=-1e30",
                 "--workers", "1", "-q", "-o", str(floats)]) == 0
    ref = D.simulate_detector(2, cfg=D.preset("train-mix", shape=(24, 24), models=tuple(few.split(",")),
                                              mixture_models=tuple(few.split(","))), workers=1, progress=False)
    with h5py.File(floats) as f:
        x, masked = f["frames"][...], f["mask"][...] != 0
    assert masked.any() and (x[masked] == np.float32(-1e30)).all() and np.isfinite(x).all()
    np.testing.assert_array_equal(x[~masked], ref.frames[~ref.mask])

    capsys.readouterr()
    bad = [["--preset", "saxs-pilatus", "--mask-value", "-1"], ["--size", "16", "--counts", "10"],
           ["--preset", "train-mix", "--models", "sphere,no_such_model"], ["--preset", "train-mix", "--shape", "8,x"]]
    for args in bad:
        assert main(["simulate", "-n", "1", "-q", "-o", str(tmp_path / "bad.h5"), *args]) == 2
        assert "saecodec: error:" in capsys.readouterr().err
    assert not (tmp_path / "bad.h5").exists()

def test_train_unknown_family_is_refused(tmp_path):
    r = cli("train", "--family", "vae", "--data", str(tmp_path / "x.h5"))
    assert r.returncode != 0 and "invalid choice" in r.stderr


def test_train_rrae_from_the_command_line(tmp_path, on_model_path, capsys):
    """In this process (the subprocess test above covers the entry point): every option of the family."""
    data = tmp_path / "sim.h5"
    assert main(["simulate", "-n", "200", "--size", "16", "-o", str(data), "-q", "--workers", "1"]) == 0
    assert main(["train", "--family", "rrae", "--data", str(data), "--epochs", "2"]) == 2
    assert "--rank K or --adaptive" in capsys.readouterr().err
    model = tmp_path / "r.safetensors"
    assert main(["train", "--family", "rrae", "--rank", "3", "--latent", "8", "--hidden", "32", "--data", str(data),
                 "--epochs", "2", "--batch", "32", "--finetune-steps", "5", "--device", "cpu", "-o", str(model),
                 "-q"]) == 0
    from saecodec.models import load_file

    m = load_file(model)
    assert m.family == "rrae" and m.module.k == 3 and len(m.coding["coef_std"]) == 3
    conv = tmp_path / "c.safetensors"
    assert main(["train", "--family", "rrae", "--rank", "2", "--latent", "8", "--hidden", "16", "--conv", "4,8/8,4",
                 "--data", str(data), "--epochs", "1", "--batch", "32", "--finetune-steps", "2", "--device", "cpu",
                 "-o", str(conv), "-q"]) == 0
    assert load_file(conv).module.architecture["conv"] == {"frame": [16, 16], "enc": [4, 8], "dec": [8, 4]}
    adaptive = tmp_path / "a.safetensors"
    assert main(["train", "--family", "rrae", "--adaptive", "--latent", "6", "--hidden", "16", "--data", str(data),
                 "--epochs", "20", "--batch", "32", "--rank-stagnation", "0.5", "--rank-patience", "3",
                 "--finetune-steps", "2", "--device", "cpu", "-o", str(adaptive), "-q"]) == 0
    a = load_file(adaptive)
    search = a.metrics["rank_search"]
    assert search["schedule"]["k_max"] == 6 and search["schedule"]["patience"] == 3
    assert search["events"][0][1] == "stagnated" and a.module.k == search["events"][-1][2] < 6
    capsys.readouterr()
    assert main(["train", "--family", "rrae", "--adaptive", "--data", str(data), "--checkpoint",
                 str(tmp_path / "c.pt")]) == 2
    assert "--adaptive cannot checkpoint" in capsys.readouterr().err


def test_demo_with_a_dense_latent_model(rrae_model, tmp_path, capsys):
    """An RRAE model stores k coefficients per frame, not sparse nonzeros: the demo reports them."""
    model, d = rrae_model
    rc = main(["demo", "--model", str(d / "rrae-bumps.safetensors"), "--frames", "16", "--chunk", "8",
               "--out", str(tmp_path / "d.zarr"), "-q"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "2 coefficients per frame" in out and "nonzero" not in out
    assert float(out.split("ratio ")[1].split("x")[0]) > 1.0


def test_models_derive_log10_input(tiny_model, model_dir, on_model_path, tmp_path, capsys):
    """The log10-input variant the bench measures is a model file any user can write."""
    from saecodec.chunk import decode_chunk, encode_chunk
    from saecodec.metrics import offset_free_rel_l2
    from saecodec.models import load_file

    out = tmp_path / "log.safetensors"
    assert main(["models", "derive", "tiny-test", "--input", "log10", "-o", str(out), "--no-register"]) == 0
    derived = load_file(out)
    assert derived.name == "tiny-test-log10" and derived.transform.kind == "linear"
    assert derived.identity == tiny_model.for_log10_input().freeze() != tiny_model.identity  # reproducible
    for a, b in zip(derived.module.state_dict().values(), tiny_model.module.state_dict().values()):
        assert torch.equal(a, b)
    x = blobs(8, seed=4) + 100.0  # well above the asinh scale: log10 and asinh agree up to an offset
    u = np.log10(x)
    err_derived = offset_free_rel_l2(u, decode_chunk(derived, encode_chunk(derived, u)))[0]
    err_intensity = offset_free_rel_l2(u, np.log10(decode_chunk(tiny_model, encode_chunk(tiny_model, x))))[0]
    assert err_derived == pytest.approx(err_intensity, rel=0.05)  # the same network on the same frames
