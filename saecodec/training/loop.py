"""The training loop of every family: RAdam, minibatches, validation, checkpoint/resume.

Each family's module provides ``loss(x) -> (total, info)`` where ``info`` holds at least
``xhat`` (reconstruction) and ``z`` (latent); the loop reports relative L2 and, for
sparse latents, the mean number of nonzeros of the latent. A :class:`StepHook` sees every
step and may stop the run (the adaptive rank search of ``training.rrae`` is one).
"""

from __future__ import annotations

import math
import os
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import metrics
from ..errors import SaecodecError
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
    """Over a data set of network inputs: the loss, the relative L2 of the reconstruction in
    that (per-frame normalised) domain, and the latent's sparsity."""
    module.eval()
    err = metrics.RelL2()
    loss = nnz = nnz_f = 0.0
    n = len(x)
    for i in range(0, n, batch):
        xb = x[i:i + batch]
        total, info = module.loss(xb)
        err.add(xb, info["xhat"])
        loss += float(total) * len(xb)
        nnz += float((info["z"] != 0).sum())
        nnz_f += float((info.get("fz", info["z"]) != 0).sum())
    module.train()
    return {
        "loss": loss / max(n, 1),
        "rel_l2": err.value,
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


def load_checkpoint(path, map_location="cpu") -> dict:
    """A training checkpoint, read with torch's weights-only unpickler: tensors, numbers,
    strings and containers of them. A checkpoint is a pickle, and a full unpickler runs
    whatever code a crafted file names (``--resume`` on a file from elsewhere)."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise SaecodecError(f"checkpoint {path} holds objects other than tensors and plain data; refusing to "
                            "load it (unpickling them could run code). Checkpoints written by saecodec hold "
                            "none: start the run again without --resume") from None
    if not isinstance(state, dict):
        raise SaecodecError(f"checkpoint {path} is not a saecodec training checkpoint")
    return state


class StepHook(Protocol):
    """What a training run reports to, step by step (the adaptive rank search is one)."""

    def step(self, step: int, loss: float, optimizer) -> bool:
        """After each optimiser step (counted from 1); True ends training."""

    def epoch(self) -> dict:
        """Fields added to the epoch's history record."""

    def end(self) -> None:
        """After the last step, before the final evaluation."""


def fit(module, data: np.ndarray, cfg: TrainConfig, *, desc: str = "train", hook: StepHook | None = None) -> dict:
    """Train ``module`` in place on ``data`` (N, n) float32 with RAdam (learning rate cosine
    decayed to ``lr * lr_min_fraction``); returns the final metrics and the per-epoch history."""
    device, gen, x_tr, x_va = prepare(module, data, cfg)
    opt = torch.optim.RAdam(module.parameters(), lr=cfg.lr)
    steps_per_epoch = max(1, math.ceil(len(x_tr) / cfg.batch))
    total_steps = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cfg.lr_min_fraction + (1 - cfg.lr_min_fraction) * 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / max(total_steps, 1)))
    )
    start, history = 0, []
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    if ckpt and cfg.resume and ckpt.exists():
        state = load_checkpoint(ckpt, device)
        module.load_state_dict(state["module"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start, history = state["epoch"], state["history"]
        gen.set_state(state["gen"])

    step, stop = start * steps_per_epoch, False
    bar = tqdm(range(start, cfg.epochs), desc=desc, disable=not cfg.progress, unit="epoch")
    for epoch in bar:
        perm = torch.randperm(len(x_tr), generator=gen).to(device)
        run_loss, done = 0.0, 0
        for i in range(steps_per_epoch):
            loss, _ = module.loss(x_tr[perm[i * cfg.batch:(i + 1) * cfg.batch]])
            if not torch.isfinite(loss):
                where = "".join(f", {k} {v}" for k, v in (hook.epoch() if hook else {}).items())
                raise FloatingPointError(f"training diverged (loss {float(loss.detach())}) at epoch {epoch + 1}"
                                         f"{where}; lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            value = float(loss.detach())
            run_loss += value
            done += 1
            step += 1
            if hook is not None and hook.step(step, value, opt):
                stop = True
                break
        rec = {"epoch": epoch + 1, **(hook.epoch() if hook else {}), "train_loss": run_loss / done}
        if len(x_va):
            rec.update({f"val_{k}": v for k, v in evaluate(module, x_va).items()})
        history.append(rec)
        bar.set_postfix({k: f"{v:.4g}" for k, v in rec.items() if k in ("k", "train_loss", "val_rel_l2", "val_nnz")})
        if ckpt:
            tmp = ckpt.with_name(ckpt.name + ".tmp")
            torch.save({"module": module.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "epoch": epoch + 1, "history": history, "gen": gen.get_state(),
                        "config": asdict(cfg)}, tmp)
            os.replace(tmp, ckpt)
        if stop:
            break
    if hook is not None:
        hook.end()
    module.to("cpu").eval()
    final = {"train": evaluate(module, x_tr.cpu()), "history": history}
    if len(x_va):
        final["val"] = evaluate(module, x_va.cpu())
    return final
