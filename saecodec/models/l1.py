"""The sparse L1 autoencoder family (Chung, Archibald, Atzberger, Solomon).

Fully connected and symmetric, n -> m -> l -> m -> n, with ReLU between layers. The
latent is the output of a ReLU, so at inference its zeros are exact zeros and the
compressed form of a frame is the list of its nonzero entries. l may exceed n
(overcomplete): sparsity, not width, bounds the rate.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SaecodecError
from .selectors import SELECTORS, apply_selector, l1_penalty


class SparseL1Autoencoder(nn.Module):
    family = "l1"
    latent_kind = "sparse"

    def __init__(self, n: int, m: int, l: int, lam: float = 0.0, selector: str = "z"):
        super().__init__()
        if min(n, m, l) < 1:
            raise SaecodecError(f"layer sizes must be positive, got n={n}, m={m}, l={l}")
        if selector not in SELECTORS:
            raise SaecodecError(f"unknown structure selector {selector!r}; expected one of {SELECTORS}")
        self.n, self.m, self.l = int(n), int(m), int(l)
        self.lam = float(lam)
        self.selector = selector
        self.encoder = nn.Sequential(nn.Linear(n, m), nn.ReLU(), nn.Linear(m, l), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(l, m), nn.ReLU(), nn.Linear(m, n))

    @property
    def latent_size(self) -> int:
        return self.l

    @property
    def architecture(self) -> dict:
        return {"n": self.n, "m": self.m, "l": self.l, "lambda": self.lam, "selector": self.selector}

    @classmethod
    def from_architecture(cls, arch: dict) -> "SparseL1Autoencoder":
        return cls(arch["n"], arch["m"], arch["l"], arch.get("lambda", 0.0), arch.get("selector", "z"))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The paper's objective: mean ||d(e(x)) - x||^2 + lambda * ||f(e(x))||_1."""
        xhat, z = self(x)
        mse = ((xhat - x) ** 2).sum(dim=-1).mean()
        pen = l1_penalty(self.selector, z)
        total = mse + self.lam * pen
        info = {"mse": mse.detach(), "l1": pen.detach(), "z": z.detach(), "xhat": xhat.detach(),
                "fz": apply_selector(self.selector, z.detach())}
        return total, info
