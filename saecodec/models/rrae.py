"""The rank reduction autoencoder family (Mounayer et al.).

The encoder maps a frame to a long latent (size L); in training, the latent matrix of
the batch (L x batch) is replaced by its rank-k truncated SVD, so the latent is bounded
by its rank, not its width. After training, a common basis U_k (L x k) is stored in the
model and a frame is represented by k coefficients c = U_k^T e(x); decoding is
d(U_k c). The codec stores those k numbers per frame (a dense latent).

Encoder and decoder are MLPs, or (``conv=...``) the paper's convolutional variant (its
appendix C; the authors' code uses 3x3 convolutions with stride 2 and padding 1, widths
[32, 64] down and [256, 128, 32, 8] up): convolutions down to a feature map, an MLP to
the latent and back, transposed convolutions up to the frame.
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


class ConvEncoder(nn.Module):
    """(B, h*w) -> strided 3x3 convolutions -> flatten -> MLP -> (B, out)."""

    def __init__(self, frame: tuple[int, int], channels: list[int], hidden: list[int], out: int):
        super().__init__()
        self.frame = tuple(frame)
        layers: list[nn.Module] = []
        c_in = 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.ReLU()]
            c_in = c
        self.convs = nn.Sequential(*layers)
        d = 2 ** len(channels)
        self.mlp = mlp([c_in * (frame[0] // d) * (frame[1] // d), *hidden, out])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convs(x.reshape(-1, 1, *self.frame))
        return self.mlp(y.flatten(1))


class ConvDecoder(nn.Module):
    """(B, L) -> MLP -> feature map -> transposed 3x3 convolutions (stride 2) -> (B, h*w)."""

    def __init__(self, frame: tuple[int, int], channels: list[int], hidden: list[int], latent: int):
        super().__init__()
        self.frame = tuple(frame)
        d = 2 ** len(channels)
        self.base = (channels[0], frame[0] // d, frame[1] // d)
        self.mlp = nn.Sequential(mlp([latent, *hidden, channels[0] * self.base[1] * self.base[2]]), nn.ReLU())
        layers: list[nn.Module] = []
        for i, c in enumerate(channels):
            c_out = channels[i + 1] if i + 1 < len(channels) else 1
            layers.append(nn.ConvTranspose2d(c, c_out, 3, stride=2, padding=1, output_padding=1))
            if i + 1 < len(channels):
                layers.append(nn.ReLU())
        self.convs = nn.Sequential(*layers)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        y = self.mlp(c).reshape(-1, *self.base)
        return self.convs(y).flatten(1)


class RankReductionAutoencoder(nn.Module):
    family = "rrae"
    latent_kind = "dense"

    def __init__(self, n: int, hidden: list[int] | tuple[int, ...] = (512,), L: int = 64, k: int = 4,
                 conv: dict | None = None):
        """``conv``: ``{"frame": [h, w], "enc": [32, 64], "dec": [256, 128, 32, 8]}`` for the
        convolutional variant (h and w divisible by 2**len of each channel list); None: MLPs."""
        super().__init__()
        if not 1 <= k <= L:
            raise SaecodecError(f"rank k must be in 1..L={L}, got {k}")
        self.n, self.L, self.k = int(n), int(L), int(k)
        self.hidden = [int(h) for h in hidden]
        self.conv = None
        if conv is None:
            self.encoder = mlp([self.n, *self.hidden, self.L])
            self.decoder = mlp([self.L, *self.hidden[::-1], self.n])
        else:
            frame = tuple(int(v) for v in conv["frame"])
            enc, dec = [int(c) for c in conv.get("enc", [32, 64])], [int(c) for c in conv.get("dec", [256, 128, 32, 8])]
            if frame[0] * frame[1] != self.n or not enc or not dec or any(
                    f % 2 ** len(ch) for f in frame for ch in (enc, dec)):
                raise SaecodecError(f"conv RRAE: frame {frame} must have n={n} pixels and sides divisible by "
                                    f"2**{max(len(enc), len(dec))} (one halving per convolution)")
            self.conv = {"frame": list(frame), "enc": enc, "dec": dec}
            self.encoder = ConvEncoder(frame, enc, self.hidden, self.L)
            self.decoder = ConvDecoder(frame, dec, self.hidden[::-1], self.L)
        self.register_buffer("basis", torch.zeros(self.L, self.k))

    @property
    def latent_size(self) -> int:
        return self.k

    @property
    def architecture(self) -> dict:
        arch = {"n": self.n, "hidden": self.hidden, "L": self.L, "k": self.k}
        if self.conv is not None:
            arch["conv"] = self.conv
        return arch

    @classmethod
    def from_architecture(cls, arch: dict) -> "RankReductionAutoencoder":
        return cls(arch["n"], arch.get("hidden", [512]), arch["L"], arch["k"], arch.get("conv"))

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
