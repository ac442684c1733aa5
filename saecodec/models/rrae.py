"""The rank reduction autoencoder family (Mounayer et al.).

The encoder maps a frame to a long latent (size L); in training, the latent matrix of
the batch (L x batch) is replaced by its rank-k truncated SVD, so the latent is bounded
by its rank, not its width. After training, a common basis U_k (L x k) is stored in the
model and a frame is represented by k coefficients c = U_k^T e(x); decoding is
d(U_k c). The codec stores those k numbers per frame (a dense latent).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SaecodecError
from .svd import truncate


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RankReductionAutoencoder(nn.Module):
    family = "rrae"
    latent_kind = "dense"

    def __init__(self, n: int, hidden: list[int] | tuple[int, ...] = (512,), L: int = 64, k: int = 4):
        super().__init__()
        if not 1 <= k <= L:
            raise SaecodecError(f"rank k must be in 1..L={L}, got {k}")
        self.n, self.L, self.k = int(n), int(L), int(k)
        self.hidden = [int(h) for h in hidden]
        self.encoder = mlp([self.n, *self.hidden, self.L])
        self.decoder = mlp([self.L, *self.hidden[::-1], self.n])
        self.register_buffer("basis", torch.zeros(self.L, self.k))

    @property
    def latent_size(self) -> int:
        return self.k

    @property
    def architecture(self) -> dict:
        return {"n": self.n, "hidden": self.hidden, "L": self.L, "k": self.k}

    @classmethod
    def from_architecture(cls, arch: dict) -> "RankReductionAutoencoder":
        return cls(arch["n"], arch.get("hidden", [512]), arch["L"], arch["k"])

    def set_rank(self, k: int) -> None:
        """Change the training rank (adaptive rank); the basis is rebuilt after training."""
        if not 1 <= k <= self.L:
            raise SaecodecError(f"rank k must be in 1..L={self.L}, got {k}")
        self.k = int(k)
        self.basis = torch.zeros(self.L, self.k, device=self.basis.device)

    # -- inference: k coefficients per frame ---------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x) @ self.basis

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        return self.decoder(c @ self.basis.mT)

    # -- training --------------------------------------------------------------------------
    def truncated_latent(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch latent (batch, L) replaced by its rank-k truncation, and the batch's U_k."""
        y = self.encoder(x)
        yk, uk = truncate(y.mT, min(self.k, min(y.shape)))
        return yk.mT, uk

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        if self.training or not self.basis.any():
            yk, _ = self.truncated_latent(x)
            xhat = self.decoder(yk)
            z = yk
        else:
            z = self.encode(x)
            xhat = self.decode(z)
        mse = ((xhat - x) ** 2).sum(dim=-1).mean()
        return mse, {"mse": mse.detach(), "z": z.detach(), "xhat": xhat.detach()}
