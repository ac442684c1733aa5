"""Entropy models of the conv-hyper family: trainable densities and their frozen integer tables.

Training needs differentiable likelihoods (Balle et al. 2018's factorized density for the
hyper-latent z, a Gaussian of predicted mean and scale for y). Decoding must not: once a
model is frozen only integer count tables decide the coding, so two machines whose float
arithmetic differs in the last bits still agree on every probability. The tables live in
the model file as int32 tensors; nothing here runs when a payload is decoded.

A table covers the symbols kmin .. kmin + K - 1; its two edge symbols double as escapes
(the excess is stored beside the message), so any integer can be coded.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LIK_MIN = 1e-9  # likelihood floor in training (bits stay finite)
SCALE_MIN = 0.11  # the Gaussian's scale floor in training = the first table's scale
PREC_BITS = 16  # every table sums to 2**PREC_BITS
TAIL = 1e-7  # probability mass left outside a table (coded through the escapes)
# The fixed scale table of the Gaussian conditional: log-spaced (min, max, count).
SCALES = (0.11, 64.0, 64)


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient still pushes x up from below the bound."""

    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return torch.clamp_min(x, bound)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ((x >= ctx.bound) | (g < 0)), None


def lower_bound(x, bound):
    return _LowerBound.apply(x, bound)


class FactorizedDensity(nn.Module):
    """Per-channel non-parametric cumulative (Balle's "EntropyBottleneck")."""

    def __init__(self, channels: int, filters=(3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        self.C = channels
        f = (1,) + tuple(filters) + (1,)
        scale = init_scale ** (1 / (len(f) - 1))
        self.matrices, self.biases, self.factors = nn.ParameterList(), nn.ParameterList(), nn.ParameterList()
        for i in range(len(f) - 1):
            init = math.log(math.expm1(1 / scale / f[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, f[i + 1], f[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, f[i + 1], 1) - 0.5))
            if i < len(f) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, f[i + 1], 1)))

    def logits_cdf(self, v, params=None):
        """v (C, 1, K) -> logits of the CDF; ``params``: the parameters in another dtype."""
        p = params or dict(self.named_parameters())
        x = v
        for i in range(len(self.matrices)):
            x = torch.matmul(F.softplus(p[f"matrices.{i}"]), x) + p[f"biases.{i}"]
            if i < len(self.factors):
                x = x + torch.tanh(p[f"factors.{i}"]) * torch.tanh(x)
        return x

    def likelihood(self, y):
        """y (B, C, H, W) -> the probability of its unit bin, same shape."""
        b, c, h, w = y.shape
        v = y.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lo, up = self.logits_cdf(v - 0.5), self.logits_cdf(v + 0.5)
        s = -torch.sign(lo + up).detach()  # evaluate in the tail where sigmoid is accurate
        lik = lower_bound(torch.abs(torch.sigmoid(s * up) - torch.sigmoid(s * lo)), LIK_MIN)
        return lik.reshape(c, b, h, w).permute(1, 0, 2, 3)

    @torch.no_grad()
    def cdf(self, points: np.ndarray) -> np.ndarray:
        """CDF (C, K) in float64 at ``points`` (K,)."""
        v = torch.from_numpy(np.tile(np.asarray(points, np.float64)[None, None, :], (self.C, 1, 1)))
        params = {n: p.detach().double().cpu() for n, p in self.named_parameters()}
        return torch.sigmoid(self.logits_cdf(v, params)[:, 0, :]).numpy()


def gaussian_likelihood(y, mu, sigma):
    """Probability of y's unit bin under N(mu, sigma) (training)."""
    sigma = lower_bound(sigma, SCALE_MIN)
    v = torch.abs(y - mu)
    up = 0.5 * torch.erfc(-((0.5 - v) / sigma) / math.sqrt(2))
    lo = 0.5 * torch.erfc(-((-0.5 - v) / sigma) / math.sqrt(2))
    return lower_bound(up - lo, LIK_MIN)


# -- freezing ---------------------------------------------------------------------------
def to_counts(pmf: np.ndarray, prec: int = PREC_BITS) -> np.ndarray:
    """float pmf (K,) -> integer counts summing to 2**prec, every symbol >= 1 (deterministic)."""
    total, k = 1 << prec, len(pmf)
    p = np.maximum(np.asarray(pmf, np.float64), 0)
    p = p / p.sum()
    scaled = p * (total - k)
    c = np.floor(scaled).astype(np.int64) + 1
    order = np.argsort(-(scaled - np.floor(scaled)), kind="stable")
    c[order[:total - int(c.sum())]] += 1
    return c


def _table(edges_cdf: np.ndarray, kmin: int) -> tuple[int, np.ndarray]:
    """Bin probabilities from the CDF at the bin edges, the tails folded into the edge symbols."""
    pmf = np.diff(edges_cdf)
    pmf[0] += edges_cdf[0]
    pmf[-1] += 1 - edges_cdf[-1]
    return kmin, to_counts(pmf)


def freeze_factorized(dens: FactorizedDensity, span: int = 4096) -> list[tuple[int, np.ndarray]]:
    """One (kmin, counts) per channel over the integers z_hat = round(z) takes."""
    grid = np.arange(-span, span + 1, dtype=np.float64) / 16.0
    cdf = dens.cdf(grid)
    tables = []
    for c in range(dens.C):
        lo = grid[max(np.searchsorted(cdf[c], TAIL) - 1, 0)]
        hi = grid[min(np.searchsorted(cdf[c], 1 - TAIL) + 1, len(grid) - 1)]
        kmin, kmax = int(np.floor(lo)) - 1, int(np.ceil(hi)) + 1
        edges = np.arange(kmin, kmax + 2, dtype=np.float64) - 0.5
        tables.append(_table(dens.cdf(edges)[c], kmin))
    return tables


def scale_table(scales=SCALES) -> np.ndarray:
    lo, hi, n = scales
    return np.exp(np.linspace(np.log(lo), np.log(hi), int(n)))


def freeze_gaussian(scales=SCALES) -> list[tuple[int, np.ndarray]]:
    """One (kmin, counts) per scale-table entry: a zero-mean Gaussian over unit bins."""
    tables = []
    for s in scale_table(scales):
        kmax = int(math.ceil(-s * float(torch.special.ndtri(torch.tensor(TAIL, dtype=torch.float64))))) + 1
        edges = torch.arange(-kmax, kmax + 2, dtype=torch.float64) - 0.5
        tables.append(_table(torch.special.ndtr(edges / s).numpy(), -kmax))
    return tables
