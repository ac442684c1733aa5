"""Training the wavelet family: rate levels, context classes, tables, checkpoints, the CLI."""

import json

import h5py
import numpy as np
import pytest

from saecodec.coding.wavelet_engine import Engine, step_index
from saecodec.models import load_file
from saecodec.models.wavelet import wavelet_model
from saecodec.training.wavelet import WaveletTrainConfig, fit_thresholds, model_domain, train_wavelet
from test_wavelet import frames

ARCH = dict(levels=3, nclasses=6, ll_classes=5, rate_levels=3)
TARGETS = (0.08, 0.04, 0.02)


@pytest.fixture(scope="module")
def data():
    return frames(160, (32, 32), seed=20), frames(40, (32, 32), seed=21)


def test_training_beats_the_untrained_tables_and_meets_its_levels(data, tmp_path):
    train, val = data
    m, res = train_wavelet(wavelet_model("t", nsets=2, **ARCH), train,
                           WaveletTrainConfig(targets=TARGETS, progress=False, calib_frames=64), val=val)
    lv = res["levels"]
    assert [round(v["agg_rel_l2"], 2) for v in lv] == pytest.approx(TARGETS, rel=0.35)
    assert lv[0]["bytes_per_frame"] < lv[1]["bytes_per_frame"] < lv[2]["bytes_per_frame"]
    z = model_domain(m, val)
    untrained = Engine(wavelet_model("u", nsets=2, **ARCH).module.engine_params())
    for v in lv:
        k = step_index(v["step"])
        assert len(untrained.encode(z, k)[0]) > 1.2 * v["bytes_per_frame"] * len(z)
    assert (np.diff(m.module.thresholds, axis=1) >= 0).all()
    m.save(tmp_path / "t.safetensors")
    assert json.loads(load_file(tmp_path / "t.safetensors").provenance)["trainer"] == "saecodec.training.wavelet"


def test_checkpoint_resume_gives_the_same_model(data, tmp_path):
    train, val = data
    ck = str(tmp_path / "ck.npz")
    cfg = WaveletTrainConfig(targets=TARGETS, progress=False, calib_frames=64, checkpoint=ck)
    a, _ = train_wavelet(wavelet_model("t", **ARCH), train, cfg, val=val)
    with np.load(ck) as f:  # an interrupted run: the tables stage not done yet
        keep = {k: f[k] for k in f.files if k not in ("freq", "counts")}
    np.savez(ck, **keep)
    cfg.resume = True
    b, _ = train_wavelet(wavelet_model("t", **ARCH), train, cfg, val=val)
    assert a.freeze() == b.freeze()
    with pytest.raises(Exception, match="another configuration"):
        train_wavelet(wavelet_model("t", **{**ARCH, "nclasses": 5}), train, cfg, val=val)


def test_thresholds_split_where_the_statistics_change():
    fine = np.zeros((1, 64, 4), np.int64)
    fine[0, :10] = [1000, 10, 1, 1]  # quiet contexts
    fine[0, 10:20] = [100, 300, 300, 100]  # busy ones
    thr = fit_thresholds(fine, np.arange(1, 64), 3, 100)
    assert thr[0, 0] == 10 and thr.shape == (1, 2)


def test_cli_trains_a_wavelet_model(tmp_path, monkeypatch):
    from saecodec.cli import main

    monkeypatch.setenv("SAECODEC_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f["frames"] = frames(80, (32, 32), seed=22)
    out = tmp_path / "w.safetensors"
    assert main(["train", "--family", "wavelet", "--data", str(path), "--wavelet-levels", "3", "--classes", "4",
                 "--targets", "0.08,0.03", "-o", str(out), "--no-register", "-q",
                 "--checkpoint", str(tmp_path / "ck.npz")]) == 0
    m = load_file(out)
    assert m.family == "wavelet" and m.module.rate_levels == 2 and len(m.metrics["val"]) == 2
    # context profiles from data files of their own (any frame sizes), adaptive counts, RDO
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["frames"] = frames(60, (24, 40), seed=26) * 0.01
    out2 = tmp_path / "p.safetensors"
    assert main(["train", "--family", "wavelet", "--data", str(path), str(tmp_path / "g.h5"),
                 "--profile-of", "0,1", "--adapt", "32,7", "--rdo", "0.08", "--wavelet-levels",
                 "3", "--classes", "4", "--targets", "0.08,0.03", "-o", str(out2), "--no-register", "-q"]) == 0
    m = load_file(out2)
    assert m.module.profiles == 2 and m.module.adapt == {"rate": 32, "smax": 7} and m.module.rdo_lambda == 0.08


def test_groups_deeper_than_the_training_frames_borrow_the_nearest_level(data):
    train, val = data  # 32x32 frames: 2 levels with min_len 8; a 256x256 frame has 5
    m, res = train_wavelet(wavelet_model("t", levels=5, nclasses=6, ll_classes=5, rate_levels=2), train,
                           WaveletTrainConfig(targets=(0.06, 0.03), progress=False, calib_frames=32), val=val)
    g = m.module.groups
    assert res["borrowed"] == {g[2][o]: g[1][o] for o in (1, 2, 3)} | {g[3][o]: g[1][o] for o in (1, 2, 3)} | \
        {g[4][o]: g[1][o] for o in (1, 2, 3)}
    assert np.array_equal(m.module.freq[:, g[4][2]], m.module.freq[:, g[1][2]])
    big = frames(1, (256, 256), seed=23)
    untrained = wavelet_model("u", levels=5, nclasses=6, ll_classes=5, rate_levels=2)
    k = step_index(res["levels"][1]["step"])
    a = Engine(m.module.engine_params()).encode(model_domain(m, big), k)[0]
    b = Engine(untrained.module.engine_params()).encode(model_domain(m, big), k)[0]
    assert len(a) < 0.8 * len(b)


def test_context_profiles_fit_on_their_own_stacks_and_the_encoder_picks_per_frame(data, tmp_path):
    clean, val = data
    rng = np.random.default_rng(24)
    noisy = (frames(120, (32, 32), seed=25) * rng.lognormal(0, 0.5, (120, 32, 32))).astype(np.float32)
    cfg = WaveletTrainConfig(targets=(0.06, 0.03), progress=False, calib_frames=32)
    arch = {**ARCH, "rate_levels": 2}
    with pytest.raises(Exception, match="say which stacks"):
        train_wavelet(wavelet_model("t", profiles=2, **arch), [clean, noisy], cfg, val=val)
    m, res = train_wavelet(wavelet_model("t", profiles=2, **arch), [clean, noisy], cfg, val=val, profiles=[[0], [1]])
    mod = m.module
    assert not np.array_equal(mod.freq, mod.more[0]["freq"]) and len(res["borrowed"]) == 2
    assert json.loads(m.provenance)["profiles"] == [[0], [1]]
    m.save(tmp_path / "p.safetensors")
    m2 = load_file(tmp_path / "p.safetensors")
    assert m2.module.profiles == 2 and np.array_equal(m2.module.more[0]["ctx_w"], mod.more[0]["ctx_w"])
    # each frame is coded by the profile that codes it smaller: never much worse than either alone
    k = step_index(res["levels"][1]["step"])
    both = Engine(mod.engine_params())
    for z in (model_domain(m, val[:8]), model_domain(m, noisy[-8:])):
        size = len(both.encode(z, k)[0])
        alone = [len(Engine(mod.profile(i).engine_params()).encode(z, k)[0]) for i in (0, 1)]
        assert size <= min(alone) + 2
    zc, zn = model_domain(m, val[:8]), model_domain(m, noisy[-8:])
    p0, p1 = (Engine(mod.profile(i).engine_params()) for i in (0, 1))
    assert len(p0.encode(zc, k)[0]) < len(p1.encode(zc, k)[0])
    assert len(p1.encode(zn, k)[0]) < len(p0.encode(zn, k)[0])
