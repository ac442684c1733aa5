"""A family-agnostic training loop: RAdam, minibatches, validation, checkpoint/resume.

Each family's module provides ``loss(x) -> (total, info)`` where ``info`` holds at least
``xhat`` (reconstruction) and ``z`` (latent); the loop reports relative L2 and, for
sparse latents, the mean number of nonzeros of the latent.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..models.runtime import resolve_device


@dataclass
class TrainConfig:
    epochs: int = 50
    batch: int = 512
    lr: float = 1e-4
    val_fraction: float = 0.1
    seed: int = 0
    device: str | None = None
    lr_min_fraction: float = 1.0  # cosine decay of the learning rate down to lr * this (1 = constant)
    checkpoint: str | None = None
    resume: bool = False
    progress: bool = True


def split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction)) if n > 1 else 0
    return perm[n_val:], perm[:n_val]


@torch.no_grad()
def evaluate(module, x: torch.Tensor, batch: int = 4096) -> dict:
    """Relative L2 (the papers' metric), loss and latent sparsity over a data set."""
    module.eval()
    err2 = ref2 = loss = 0.0
    nnz = nnz_f = 0.0
    n = len(x)
    for i in range(0, n, batch):
        xb = x[i:i + batch]
        total, info = module.loss(xb)
        err2 += float(((info["xhat"] - xb) ** 2).sum())
        ref2 += float((xb ** 2).sum())
        loss += float(total) * len(xb)
        nnz += float((info["z"] != 0).sum())
        nnz_f += float((info.get("fz", info["z"]) != 0).sum())
    module.train()
    return {
        "loss": loss / max(n, 1),
        "rel_l2": math.sqrt(err2 / ref2) if ref2 > 0 else 0.0,
        "nnz": nnz / max(n, 1),  # nonzeros of the latent z: what the codec stores
        "nnz_f": nnz_f / max(n, 1),  # nonzeros of f(z): the L1 paper's compression ratio is n / this
    }


def prepare(module, data: np.ndarray, cfg: TrainConfig):
    """Seeded start of a training run: device, minibatch generator, training and validation
    tensors on the device, module there in training mode."""
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    tr_idx, va_idx = split(len(data), cfg.val_fraction, cfg.seed)
    x_tr = torch.from_numpy(np.ascontiguousarray(data[tr_idx], dtype=np.float32)).to(device)
    x_va = torch.from_numpy(np.ascontiguousarray(data[va_idx], dtype=np.float32)).to(device)
    module.to(device).train()
    return device, gen, x_tr, x_va


def fit(module, data: np.ndarray, cfg: TrainConfig, *, desc: str = "train", optimizer=None) -> dict:
    """Train ``module`` in place on ``data`` (N, n) float32; returns metrics and history.

    ``optimizer`` continues training with an existing optimizer (its moment estimates),
    as the adaptive rank search does between ranks: a fresh RAdam starts with
    un-rectified steps that can throw a trained network far off.
    """
    device, gen, x_tr, x_va = prepare(module, data, cfg)
    opt = optimizer or torch.optim.RAdam(module.parameters(), lr=cfg.lr)
    steps_per_epoch = max(1, math.ceil(len(x_tr) / cfg.batch))
    total_steps = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cfg.lr_min_fraction + (1 - cfg.lr_min_fraction) * 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / max(total_steps, 1)))
    )
    start, history = 0, []
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    if ckpt and cfg.resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        module.load_state_dict(state["module"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start, history = state["epoch"], state["history"]
        gen.set_state(state["gen"])

    bar = tqdm(range(start, cfg.epochs), desc=desc, disable=not cfg.progress, unit="epoch")
    for epoch in bar:
        perm = torch.randperm(len(x_tr), generator=gen).to(device)
        run_loss = 0.0
        for i in range(steps_per_epoch):
            xb = x_tr[perm[i * cfg.batch:(i + 1) * cfg.batch]]
            loss, _ = module.loss(xb)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training diverged (loss {float(loss.detach())}) at epoch {epoch + 1}; lower the learning rate"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            run_loss += float(loss.detach())
        rec = {"epoch": epoch + 1, "train_loss": run_loss / steps_per_epoch}
        if len(x_va):
            rec.update({f"val_{k}": v for k, v in evaluate(module, x_va).items()})
        history.append(rec)
        bar.set_postfix({k: f"{v:.4g}" for k, v in rec.items() if k in ("train_loss", "val_rel_l2", "val_nnz")})
        if ckpt:
            tmp = ckpt.with_name(ckpt.name + ".tmp")
            torch.save({"module": module.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "epoch": epoch + 1, "history": history, "gen": gen.get_state(),
                        "config": asdict(cfg)}, tmp)
            os.replace(tmp, ckpt)
    module.to("cpu").eval()
    final = {"train": evaluate(module, x_tr.cpu()), "history": history}
    if len(x_va):
        final["val"] = evaluate(module, x_va.cpu())
    return final
