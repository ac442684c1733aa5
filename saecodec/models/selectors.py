"""Structure selectors f of the sparse L1 autoencoder: the penalty is ||f(z)||_1.

``z`` penalises the latent itself (plain sparsity), ``grad`` its forward difference
z[i+1] - z[i] (piecewise-constant latents), ``laplace`` its second difference
z[i+2] - 2 z[i+1] + z[i] (piecewise-linear latents), as in the L1 paper.
"""

from __future__ import annotations

import torch

from ..errors import SaecodecError

SELECTORS = ("z", "grad", "laplace")


def apply_selector(name: str, z: torch.Tensor) -> torch.Tensor:
    """f(z) along the last dimension."""
    if name == "z":
        return z
    if name == "grad":
        return z[..., 1:] - z[..., :-1]
    if name == "laplace":
        return z[..., 2:] - 2.0 * z[..., 1:-1] + z[..., :-2]
    raise SaecodecError(f"unknown structure selector {name!r}; expected one of {SELECTORS}")


def l1_penalty(name: str, z: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||f(z)||_1."""
    return apply_selector(name, z).abs().sum(dim=-1).mean()
