"""Training the rank reduction autoencoder: truncated-SVD training, common basis, decoder fine-tune."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..chunk import resolve_device
from ..models import Model, RankReductionAutoencoder, Transform
from ..models.svd import stable_svd
from .loop import TrainConfig, evaluate, fit


@torch.no_grad()
def common_basis(module: RankReductionAutoencoder, data: np.ndarray, batch: int, device) -> torch.Tensor:
    """Concatenate the training batches' U_k, then keep the k leading left singular vectors."""
    module.to(device).eval()
    bases = []
    for i in range(0, len(data), batch):
        xb = torch.from_numpy(np.ascontiguousarray(data[i:i + batch], dtype=np.float32)).to(device)
        if len(xb) >= module.k:
            bases.append(module.truncated_latent(xb)[1])
    u, _, _ = stable_svd(torch.cat(bases, dim=1))  # with its LAPACK fallback
    return u[:, :module.k].contiguous()


def finetune_decoder(module: RankReductionAutoencoder, data: np.ndarray, steps: int, batch: int, lr: float,
                     device, seed: int = 0, progress: bool = True) -> list[float]:
    """Encoder frozen, decoder trained through the projection onto U_k."""
    module.to(device).train()
    for p in module.encoder.parameters():
        p.requires_grad_(False)
    opt = torch.optim.RAdam(module.decoder.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).to(device)
    losses = []
    for _ in tqdm(range(steps), desc="fine-tune decoder", disable=not progress, unit="step"):
        idx = torch.randint(0, len(x_all), (min(batch, len(x_all)),), generator=gen).to(device)
        xb = x_all[idx]
        loss = ((module.decode(module.encode(xb)) - xb) ** 2).sum(dim=-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    for p in module.encoder.parameters():
        p.requires_grad_(True)
    module.to("cpu").eval()
    return losses


def train_rrae(frames: np.ndarray, *, k: int | None, L: int = 64, hidden=(512,), conv: dict | None = None,
               transform: Transform | None = None,
               cfg: TrainConfig | None = None, finetune_steps: int = 200, coef_step: float = 0.01, name: str = "rrae",
               provenance: str = "", adaptive_options: dict | None = None) -> tuple[Model, dict]:
    """frames (N, h, w) -> trained RRAE :class:`Model` with its common basis, and metrics.

    ``conv`` selects the convolutional variant (``RankReductionAutoencoder``; its
    ``frame`` is filled in from the frames). ``k=None`` searches the rank (:func:`adapt_rank`, options in ``adaptive_options``),
    starting from k_max = min(L, batch). ``coef_step`` is the quantisation step of the
    stored coefficients, as a fraction of each coefficient's spread over the training set.
    """
    cfg = cfg or TrainConfig()
    transform = transform or Transform()
    torch.manual_seed(cfg.seed)
    frame_shape = tuple(frames.shape[-2:])
    adaptive = k is None
    if adaptive:
        k = min(L, cfg.batch)
    if conv is not None:
        conv = {**conv, "frame": list(frame_shape)}
    module = RankReductionAutoencoder(int(np.prod(frame_shape)), list(hidden), L, k, conv)
    z, _ = transform.forward(np.asarray(frames))
    if adaptive:
        result = {"adaptive": adapt_rank(module, z, cfg, **(adaptive_options or {}))}
        result["history"] = result["adaptive"]["history"]
    else:
        result = fit(module, z, cfg, desc=f"train rrae {name}")
    device = resolve_device(cfg.device)
    module.basis = common_basis(module, z, cfg.batch, device)
    result["finetune_losses"] = finetune_decoder(module, z, finetune_steps, cfg.batch, cfg.lr, device, cfg.seed,
                                                 cfg.progress)
    with torch.no_grad():
        coeffs = module.encode(torch.from_numpy(z)).double()
    coding = {"coef_mean": [round(float(v), 9) for v in coeffs.mean(0)],
              "coef_std": [round(float(v), 9) for v in coeffs.std(0)], "coef_step": coef_step}
    final = evaluate(module, torch.from_numpy(z))
    result["final"] = final
    metrics = {"rel_l2": round(final["rel_l2"], 6), "k": module.k, "adaptive": adaptive,
               "finetune_steps": finetune_steps}
    model = Model(module, frame_shape, transform, name, coding=coding, provenance=provenance, metrics=metrics)
    return model, result


def adapt_rank(module: RankReductionAutoencoder, z: np.ndarray, cfg: TrainConfig, *, epochs_per_rank: int = 10,
               tol: float = 1.0, k_min: int = 1, shrink: float = 0.25) -> dict:
    """The adaptive rank search (aRRAE): train at k_max (``cfg.epochs``, long enough to stagnate),
    then lower k while the loss stays within ``tol`` (relative) of the loss at k_max (the paper's
    "loss at stagnation": a noisy running minimum stopped the search too early on the bump test); when a step fails, retry with steps of 1, and when a
    step of 1 fails, go back to the last accepted rank and stop.

    Steps start at ``shrink * k`` (at least 1) so that a large k_max = min(L, batch) is left
    quickly. Returns the history of (k, loss, accepted).
    """
    import copy

    opt = torch.optim.RAdam(module.parameters(), lr=cfg.lr)  # shared by all ranks

    def run(epochs):
        r = fit(module, z, TrainConfig(**{**cfg.__dict__, "epochs": epochs, "checkpoint": None, "resume": False}),
                desc=f"train rrae k={module.k}", optimizer=opt)
        return r.get("val", r["train"])["loss"]

    reference = run(cfg.epochs)
    history = [{"k": module.k, "loss": reference, "accepted": True}]
    best_k, best_state = module.k, copy.deepcopy(module.state_dict())
    fine = False
    while best_k > k_min:
        step = 1 if fine else max(1, int(best_k * shrink))
        k = max(k_min, best_k - step)
        module.set_rank(k)
        loss = run(epochs_per_rank)
        ok = loss <= reference * (1 + tol)
        history.append({"k": k, "loss": loss, "accepted": ok})
        if ok:
            best_k, best_state = k, copy.deepcopy(module.state_dict())
            continue
        module.set_rank(best_k)
        module.load_state_dict(best_state)
        if step == 1:
            break
        fine = True
    module.set_rank(best_k)
    module.load_state_dict(best_state)
    return {"k": best_k, "reference_loss": reference, "history": history}
