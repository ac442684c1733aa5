"""Training the rank reduction autoencoder: truncated-SVD training, common basis, decoder fine-tune."""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import SaecodecError
from ..models import Model, RankReductionAutoencoder, Transform
from ..models.runtime import resolve_device
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
               cfg: TrainConfig | None = None, finetune_steps: int = 200, coef_step: float = 0.05, name: str = "rrae",
               provenance: str = "", adaptive_options: dict | None = None) -> tuple[Model, dict]:
    """frames (N, h, w) -> trained RRAE :class:`Model` with its common basis, and metrics.

    ``conv`` selects the convolutional variant (``RankReductionAutoencoder``; its
    ``frame`` is filled in from the frames). ``k=None`` searches the rank from k_max =
    min(L, batch) (:func:`adapt_rank`; :class:`RankSchedule` options in
    ``adaptive_options``). ``coef_step`` is the quantisation step of the stored
    coefficients, as a fraction of each coefficient's spread over the training set (0.05:
    on SAS, 0.01 costs a quarter more bytes for under 0.1% less error,
    benchmarks/results/rrae_vs_l1.md).
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
    if adaptive:
        search = result["adaptive"]
        metrics["rank_search"] = {"schedule": search["schedule"], "steps": search["steps"],
                                  "ideal_loss": round(search["ideal_loss"], 6)
                                  if math.isfinite(search["ideal_loss"]) else None,  # None: never stagnated
                                  "events": [[e["step"], e["event"], e["k"]] for e in search["events"]]}
    model = Model(module, frame_shape, transform, name, coding=coding, provenance=provenance, metrics=metrics)
    return model, result


class RankSchedule:
    """The authors' rank schedule (``RRAE_gen_Tracker`` in their code, JadM133/RRAEs), fed one
    training-step loss at a time.

    Phase 1 trains at k_max until the loss stagnates: ``patience`` steps (counted, not
    necessarily in a row) at which the mean of the last ``window`` losses is within
    ``stagnation`` (relative) of the mean of the ``window`` before; that mean becomes the
    ideal loss. Phase 2 lowers k by one as soon as ``patience_conv`` steps in a row get below
    the ideal loss; when the loss instead stagnates above it for ``patience`` steps, the
    search steps back to the last rank that got below it and phase 3 trains on there until
    the loss stagnates again. "Below" means below ideal * (1 + ``tolerance``); the authors
    use no tolerance (0): a rank is kept only if training brings it back to the loss of
    k_max. ``update`` returns "lower", "restore", "stop" or None.

    Defaults are the authors'. One change: they compare each step's loss with the running
    mean, which never stagnates on our losses (they swing 5-20% from step to step even in
    full batch, see benchmarks/results/rrae_bumps.md); comparing two consecutive window
    means reads the trend, not the swing.
    """

    def __init__(self, k: int, *, k_min: int = 1, window: int = 20, stagnation: float = 0.01,
                 patience: int = 500, patience_conv: int = 1, tolerance: float = 0.0):
        if not 1 <= k_min <= k or window < 1 or patience < 1 or patience_conv < 1 or not stagnation > 0 \
                or not tolerance >= 0:
            raise SaecodecError("rank schedule: need 1 <= k_min <= k, window, patience, patience_conv >= 1, "
                                "stagnation > 0 and tolerance >= 0")
        self.k, self.k_max, self.k_min, self.window, self.stagnation = k, k, k_min, window, stagnation
        self.patience, self.patience_conv, self.tolerance = patience, patience_conv, tolerance
        self.phase = "stagnate"  # -> "search" -> "final" -> "done"
        self.ideal = math.inf
        self._recent: list[float] = []
        self._stagnant = self._below = 0

    def _stagnating(self, loss: float) -> bool:
        self._recent = (self._recent + [loss])[-2 * self.window:]
        if len(self._recent) < 2 * self.window:
            return False
        before, now = self._mean(self._recent[:self.window]), self._mean(self._recent[self.window:])
        return abs(now - before) < self.stagnation * abs(before)

    @staticmethod
    def _mean(values: list[float]) -> float:
        return sum(values) / len(values)

    def update(self, loss: float) -> str | None:
        stagnating = self._stagnating(loss)
        if self.phase == "stagnate":
            self._stagnant += stagnating
            if self._stagnant >= self.patience:
                self.ideal = self._mean(self._recent[-self.window:])
                self.phase, self._stagnant = "search", 0
            return None
        if self.phase == "search":
            if loss < self.ideal * (1 + self.tolerance):
                self._below += 1
                if self._below < self.patience_conv:
                    return None
                self._below = self._stagnant = 0
                if self.k == self.k_min:
                    self.phase = "final"
                    return None
                self.k -= 1
                return "lower"
            self._below = 0
            self._stagnant += stagnating
            if self._stagnant >= self.patience:
                self.phase, self._stagnant = "final", 0
                if self.k == self.k_max:  # k_max itself never got back below its own mean
                    return None
                self.k += 1
                return "restore"
            return None
        if self.phase == "final":
            self._stagnant += stagnating
            if self._stagnant >= self.patience:
                self.phase = "done"
                return "stop"
        return None


def adapt_rank(module: RankReductionAutoencoder, z: np.ndarray, cfg: TrainConfig, **schedule) -> dict:
    """Train from k_max = ``module.k`` while :class:`RankSchedule` (options in ``schedule``,
    defaults from the authors' code) lowers the rank; at most ``cfg.epochs`` epochs in all.

    The learning rate is constant (``cfg.lr``): the schedule reads stagnation off the loss.
    A rank the schedule gives up on is replaced by the weights and optimiser state saved
    when the rank above it was accepted. If the budget runs out mid-search, the last
    accepted rank is kept (with a warning). Returns k, the ideal loss, the events and the
    per-epoch history.
    """
    search = _RankSearch(module, RankSchedule(module.k, **schedule), cfg.epochs)
    result = fit(module, z, dataclasses.replace(cfg, lr_min_fraction=1.0, checkpoint=None, resume=False),
                 desc="train rrae (rank search)", hook=search)
    plan = search.plan
    return {"k": module.k, "ideal_loss": plan.ideal, "events": search.events, "history": result["history"],
            "steps": search.steps,
            "schedule": {"k_max": plan.k_max, "k_min": plan.k_min, "window": plan.window,
                         "stagnation": plan.stagnation, "patience": plan.patience,
                         "patience_conv": plan.patience_conv, "tolerance": plan.tolerance}}


class _RankSearch:
    """The training loop's hook that carries out the schedule's decisions on the module."""

    def __init__(self, module: RankReductionAutoencoder, plan: RankSchedule, epochs: int):
        self.module, self.plan, self.epochs = module, plan, epochs
        self.events: list[dict] = []
        self.saved = None  # (k, module state, optimiser state) of the last accepted rank
        self.steps = 0

    def step(self, step: int, loss: float, optimizer) -> bool:
        self.steps = step
        before = self.plan.phase
        action = self.plan.update(loss)
        if before == "stagnate" and self.plan.phase == "search":
            self.events.append({"step": step, "event": "stagnated", "k": self.module.k, "loss": self.plan.ideal})
        if action == "lower":
            self.saved = (self.module.k, copy.deepcopy(self.module.state_dict()), copy.deepcopy(optimizer.state_dict()))
            self.module.set_rank(self.plan.k)
            self.events.append({"step": step, "event": "lowered", "k": self.plan.k, "loss": loss})
        elif action == "restore":
            k, state, opt_state = self.saved
            self.module.set_rank(k)
            self.module.load_state_dict(state)
            optimizer.load_state_dict(opt_state)
            self.events.append({"step": step, "event": "stepped back", "k": k, "loss": loss})
        elif action == "stop":
            self.events.append({"step": step, "event": "stopped", "k": self.module.k, "loss": loss})
        return self.plan.phase == "done"

    def epoch(self) -> dict:
        return {"k": self.module.k}

    def end(self) -> None:
        if self.plan.phase == "stagnate":
            warnings.warn(f"rank search: the loss did not stagnate at k_max = {self.module.k} within {self.epochs} epochs; "
                          "keeping k_max (train longer, or loosen stagnation/patience)", stacklevel=4)
        elif self.plan.phase == "search" and self.saved is not None:
            k, state, _ = self.saved
            self.module.set_rank(k)
            self.module.load_state_dict(state)
            warnings.warn(f"rank search: the budget of {self.epochs} epochs ran out while trying k = {self.plan.k}; "
                          f"keeping the last accepted rank k = {k}", stacklevel=4)
            self.events.append({"step": self.steps, "event": "budget", "k": k, "loss": None})
