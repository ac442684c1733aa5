import numpy as np
import pytest
import torch

from conftest import bumps, rel_l2

from saecodec.errors import SaecodecError
from saecodec.models import RankReductionAutoencoder, Transform, load_file
from saecodec.training import TrainConfig, train_rrae


def test_rank_reduction_training_gives_k_coefficients(tmp_path):
    cfg = TrainConfig(epochs=80, batch=64, lr=3e-3, seed=0, device="cpu", progress=False)
    model, res = train_rrae(bumps(800), k=2, L=16, hidden=(128, 64), transform=Transform("linear", 1.0,
                                                                                     per_frame=False),
                            cfg=cfg, finetune_steps=200)
    m = model.module
    assert m.basis.shape == (16, 2)
    torch.testing.assert_close(m.basis.T @ m.basis, torch.eye(2), atol=1e-4, rtol=0)
    x = torch.from_numpy(model.transform.forward(bumps(50, seed=1))[0])
    with torch.no_grad():
        c = m.encode(x)
        xhat = m.decode(c)
    assert c.shape == (50, 2)
    rel = float(torch.linalg.norm(xhat - x) / torch.linalg.norm(x))
    assert rel < 0.1, rel  # the paper reaches ~1% at full scale
    assert res["history"][-1]["train_loss"] < res["history"][0]["train_loss"]
    # the model file records the family and the basis, and loads back identically
    path = tmp_path / "rrae.safetensors"
    model.save(path)
    again = load_file(path)
    assert isinstance(again.module, RankReductionAutoencoder) and again.module.k == 2
    torch.testing.assert_close(again.module.basis, m.basis)
    with torch.no_grad():
        torch.testing.assert_close(again.module.decode(again.module.encode(x)), xhat)


def test_training_latent_has_rank_k():
    m = RankReductionAutoencoder(32, [16], L=12, k=3)
    yk, uk = m.truncated_latent(torch.randn(20, 32))
    assert torch.linalg.matrix_rank(yk.detach()) == 3 and uk.shape == (12, 3)
    loss, _ = m.train().loss(torch.randn(20, 32))
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_codec_refuses_a_dense_model_without_coding_parameters():
    from saecodec.codec import SAECodec
    from saecodec.errors import SaecodecError
    from saecodec.models import Model

    model = Model(RankReductionAutoencoder(256, [32], L=8, k=2), (16, 16), Transform(), "rrae-untrained")
    with pytest.raises(SaecodecError, match="coding parameter"):
        SAECodec(model).encode(np.ones((16, 16), np.float32))


def test_rrae_model_through_the_codec_zarr_and_hdf5(rrae_model, tmp_path, monkeypatch):
    import h5py
    import zarr

    from saecodec import hdf5
    from saecodec.codec import SAECodec
    from saecodec.coding import payload as fmt
    from saecodec.zarr3 import SAEZarrCodec

    model, d = rrae_model
    monkeypatch.setenv("SAECODEC_MODEL_PATH", str(d))
    x = (bumps(12, seed=5) * 100).astype(np.float32)
    codec = SAECodec(model.identity)
    enc = codec.encode(x)
    assert fmt.Header.unpack(fmt.Reader(enc)).latent_kind == fmt.LATENT_DENSE
    # 12 frames x 2 coefficients, 8 bytes of normalisation and 8 of value range per frame, a ~17-byte header,
    # the gate's few bytes and the checksum
    assert len(enc) < 17 + 12 * (8 + 8 + 2 * 2) + 8 + 4
    back = codec.decode(enc)
    assert back.shape == x.shape and rel_l2(back, x) < 0.1

    z = zarr.create_array(store=str(tmp_path / "r.zarr"), shape=x.shape, chunks=(4, 16, 16), dtype="f4",
                          serializer=SAEZarrCodec(model=model.identity), compressors=None)
    z[...] = x
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "r.zarr"), mode="r")[:4], codec.decode(
        codec.encode(x[:4])))

    with h5py.File(tmp_path / "r.h5", "w") as f:
        f.create_dataset("x", data=x, chunks=(4, 16, 16), **hdf5.SAE(model=model.identity))
    with h5py.File(tmp_path / "r.h5", "r") as f:
        np.testing.assert_array_equal(f["x"][...], np.concatenate([codec.decode(codec.encode(x[i:i + 4]))
                                                                   for i in range(0, 12, 4)]))


def test_dense_payload_rejects_corruption(rrae_model, monkeypatch):
    from saecodec.codec import SAECodec
    from saecodec.errors import SaecodecError

    model, d = rrae_model
    monkeypatch.setenv("SAECODEC_MODEL_PATH", str(d))
    codec = SAECodec(model.identity)
    enc = codec.encode((bumps(3, seed=2) * 100).astype(np.float32))
    for broken in (enc[:-1], enc + b"\x00", enc[:12]):
        with pytest.raises(SaecodecError):
            codec.decode(broken)


def test_rank_schedule_follows_the_authors_tracker():
    """Stagnate at k_max, lower k at each step below the ideal loss, step back after a
    rank stagnates above it, stop when the restored rank stagnates again."""
    from saecodec.training.rrae import RankSchedule

    plan = RankSchedule(6, window=4, stagnation=0.01, patience=5)
    assert [plan.update(10 * 0.9**i) for i in range(30)] == [None] * 30
    assert plan.phase == "stagnate"  # a loss still falling 10% a step does not stagnate
    phases = []
    for _ in range(12):  # flat: both window means equal from the 8th step, 5 such steps
        plan.update(1.0)
        phases.append(plan.phase)
    assert phases == ["stagnate"] * 11 + ["search"] and plan.ideal == pytest.approx(1.0)
    assert plan.update(1.0) is None  # not below the ideal loss: no tolerance
    assert [plan.update(0.9) for _ in range(2)] == ["lower", "lower"] and plan.k == 4
    actions = [plan.update(1.5) for _ in range(12)]  # stagnates above the ideal loss at k = 4
    assert actions == [None] * 11 + ["restore"] and plan.k == 5 and plan.phase == "final"
    assert [plan.update(1.5) for _ in range(5)] == [None] * 4 + ["stop"] and plan.phase == "done"

    swinging = RankSchedule(4, window=4, stagnation=0.01, patience=3)
    for v in [1.0, 1.3] * 10:  # a loss that swings 30% around a flat level has stagnated
        swinging.update(v)
    assert swinging.phase != "stagnate" and swinging.ideal == pytest.approx(1.15)

    floor = RankSchedule(2, k_min=2, window=2, stagnation=0.5, patience=2)
    for v in (1.0,) * 5:
        floor.update(v)
    assert floor.phase == "search" and floor.update(0.5) is None and floor.phase == "final" and floor.k == 2
    lenient = RankSchedule(3, window=2, stagnation=0.5, patience=2, tolerance=0.1)
    for v in (1.0,) * 5:
        lenient.update(v)
    assert lenient.phase == "search" and lenient.update(1.05) == "lower" and lenient.update(1.15) is None
    with pytest.raises(SaecodecError):
        RankSchedule(3, k_min=4)
    with pytest.raises(SaecodecError):
        RankSchedule(3, tolerance=-0.1)


def test_adaptive_rank_search_finds_the_two_parameters_of_the_bump():
    from saecodec.training.rrae import adapt_rank

    size = 16
    yy, xx = np.mgrid[:size, :size] / (size - 1)
    c = np.linspace(0.3, 0.7, 15)
    cx, cy = (v.reshape(-1, 1, 1) for v in np.meshgrid(c, c))
    data = (np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 0.12**2)) + 0.05).reshape(len(cx), -1)
    torch.manual_seed(0)
    m = RankReductionAutoencoder(size * size, [128, 64], L=12, k=12)
    # small batches of 225 frames: the minibatch loss is noisy, so stagnation is read at 10%
    res = adapt_rank(m, data.astype(np.float32), TrainConfig(epochs=300, batch=64, lr=3e-3, device="cpu",
                                                             progress=False), window=20, stagnation=0.1, patience=50)
    ev = res["events"]
    assert ev[0]["event"] == "stagnated" and ev[0]["k"] == 12 and ev[-1]["event"] in ("stopped", "budget")
    k = 12
    for e in ev[1:]:
        if e["event"] == "lowered":
            assert e["k"] == k - 1
        elif e["event"] in ("stepped back", "budget"):
            assert e["k"] == k + 1
        k = e["k"]
    assert res["k"] == m.k == k and m.basis.shape == (12, m.k)
    assert 2 <= res["k"] <= 3  # two parameters; k = 1 cannot get back to the loss of k_max
    assert any(e["event"] == "lowered" and e["k"] == res["k"] - 1 for e in ev)


def test_a_rank_search_that_never_stagnates_keeps_k_max_and_saves(tmp_path):
    cfg = TrainConfig(epochs=2, batch=64, lr=1e-3, device="cpu", progress=False)
    with pytest.warns(UserWarning, match="did not stagnate"):
        model, res = train_rrae(bumps(200), k=None, L=8, hidden=(32,), cfg=cfg, finetune_steps=2,
                                transform=Transform("linear", 1.0, per_frame=False))
    assert model.module.k == 8 and model.metrics["rank_search"]["ideal_loss"] is None
    model.save(tmp_path / "m.safetensors")
    assert load_file(tmp_path / "m.safetensors").metrics["rank_search"]["events"] == []


def test_convolutional_variant_trains_and_serves_the_codec(tmp_path, monkeypatch):
    """The paper's convolutional architecture (appendix C) as an option: same file, same codec."""
    from saecodec import chunk

    cfg = TrainConfig(epochs=30, batch=64, lr=2e-3, seed=0, device="cpu", progress=False)
    model, res = train_rrae(bumps(400), k=2, L=16, hidden=(64,), conv={"enc": [8, 16], "dec": [16, 8]},
                            transform=Transform("linear", 1.0, per_frame=False), cfg=cfg, finetune_steps=50)
    m = model.module
    assert m.architecture["conv"] == {"frame": [16, 16], "enc": [8, 16], "dec": [16, 8]}
    assert any(isinstance(layer, torch.nn.Conv2d) for layer in m.encoder.modules())
    assert res["history"][-1]["train_loss"] < res["history"][0]["train_loss"]
    path = tmp_path / "conv.safetensors"
    model.save(path)
    again = load_file(path)
    x = bumps(5, seed=3)
    with torch.no_grad():
        z = torch.from_numpy(again.transform.forward(x)[0])
        torch.testing.assert_close(again.module.decode(again.module.encode(z)), m.decode(m.encode(z)))
    payload = chunk.encode_chunk(again, x, error_bound=1e-3)
    assert np.abs(chunk.decode_chunk(again, payload) - x).max() <= 1e-3
    assert rel_l2(chunk.decode_chunk(again, chunk.encode_chunk(again, x)), x) < 0.5
    with pytest.raises(SaecodecError, match="divisible"):
        RankReductionAutoencoder(15 * 15, [8], L=4, k=2, conv={"frame": [15, 15]})
