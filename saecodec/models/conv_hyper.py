"""The conv-hyper family: a fully convolutional transform codec with a mean-scale hyperprior.

Why convolutional: a detector frame of any size (64x64 to 1024x1024, beam anywhere) is
one frame, not tiles a dense network would see as centred frames. The analysis g_a has
``len(chans) + 1`` stride-2 stages; frames are padded (edge values repeated) to a
multiple of the stride and the output cropped back. The latent y is scaled by a learned
gain per rate level before rounding (variable rate from one network, Cui et al. 2021), and
a hyper-analysis h_a / hyper-synthesis h_s predicts each latent's mean and scale
(Minnen et al. 2018), with the hyper-latent z under a factorized density.

The layer names are those of the research prototype (its model/nets.py), so its
checkpoints load as they are. Frozen integer tables (``freeze_tables``) are int32 buffers
of the module, stored in the model file next to the float weights; the architecture
records their layout.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SaecodecError
from . import densities
from .runtime import is_reproducible, release

DEFAULT_LAMBDAS = (100.0, 250.0, 600.0, 1500.0, 3600.0, 9000.0)
HYPER_STRIDE = 4


def _reference(x) -> bool:
    """The thread-count-independent convolutions (``runtime.reproducible``), CPU inference only."""
    return x.device.type == "cpu" and not torch.is_grad_enabled() and is_reproducible()


class _Conv2d(nn.Conv2d):
    def forward(self, x):
        if _reference(x):
            return torch.ops.aten.thnn_conv2d(x, self.weight, list(self.kernel_size), self.bias, list(self.stride),
                                              list(self.padding))
        return super().forward(x)


class _ConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x):
        if _reference(x):
            return torch.ops.aten.slow_conv_transpose2d(x, self.weight, list(self.kernel_size), self.bias,
                                                        list(self.stride), list(self.padding),
                                                        list(self.output_padding), list(self.dilation))
        return super().forward(x)


class GDN(nn.Module):
    """Simplified GDN (Johnston et al. 2019): x / (beta + gamma |x|); inverse: multiply."""

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(0.1 * torch.eye(channels))

    def forward(self, x):
        w, b = self.gamma.abs()[:, :, None, None], self.beta.abs() + 1e-6
        if _reference(x):
            norm = torch.ops.aten.thnn_conv2d(x.abs(), w, [1, 1], b, [1, 1], [0, 0])
        else:
            norm = F.conv2d(x.abs(), w, b)
        return x * norm if self.inverse else x / norm


def _act(kind: str, channels: int, inverse: bool = False) -> nn.Module:
    return GDN(channels, inverse) if kind == "gdn" else nn.LeakyReLU(0.1)


def _conv(i, o, k, s=2):
    return _Conv2d(i, o, k, stride=s, padding=k // 2)


def _deconv(i, o, k, s=2):
    return _ConvTranspose2d(i, o, k, stride=s, padding=k // 2, output_padding=s - 1)


def _geometry(net: nn.Sequential) -> tuple[int, Fraction]:
    """(halo, factor) of a chain of convolutions: how many input rows above and below a band an
    output row can depend on (its receptive field, plus one), and output rows per input row."""
    halo, jump = Fraction(0), Fraction(1)  # jump: input rows per row entering the current layer
    for layer in net:
        if isinstance(layer, nn.ConvTranspose2d):
            k, st = layer.kernel_size[0], layer.stride[0]
            halo += Fraction(-(-(k // 2) // st)) * jump  # output row r sees inputs r/st +- ceil((k//2)/st)
            jump /= st
        elif isinstance(layer, nn.Conv2d):
            k, st = layer.kernel_size[0], layer.stride[0]
            halo += (k // 2) * jump
            jump *= st
    return math.ceil(halo) + 1, 1 / jump


def _bands(net: nn.Sequential, x, rows: int | None):
    """``net(x)`` over row bands of ``rows`` input rows, each widened by the chain's receptive
    field above and below and cropped to its own output rows, written into one output.

    Why: a conv network's activations take hundreds of bytes per pixel (sas-conv-h's analysis
    ~360 B); one band at a time bounds them by the band. Each output row sees exactly the
    inputs, zero padding and stride phase it sees in the whole frame (bands of a
    down-sampling chain start on its stride), so with the encoder's reference kernels every
    output value is the same, bit for bit, and payloads keep their bytes
    (tests/test_hostile.py). oneDNN, which decoders run, picks its kernels by shape, so a
    band can differ from the whole frame by float32 rounding (the decoders' tolerance); the
    analysis networks, which only encoders run, take bands only with the reference kernels.
    """
    H = x.shape[-2]
    if rows is None or rows >= H:
        return net(x)
    halo, factor = _geometry(net)
    down = max(1, int(1 / factor))
    halo, rows = -(-halo // down) * down, max(down, rows // down * down)
    out = None
    for a in range(0, H, rows):
        b = min(H, a + rows)
        s, e = max(0, a - halo), min(H, b + halo)
        y = net(x[..., s:e, :])
        lo, hi = int((a - s) * factor), int((b - s) * factor)
        if out is None:
            out = y.new_empty(y.shape[:-2] + (int(H * factor), y.shape[-1]))
        out[..., int(a * factor):int(a * factor) + hi - lo, :] = y[..., lo:hi, :]
        del y
        release()  # the next band's allocations reuse nothing freed on the heap otherwise
    return out



# Input rows of a band at least: oneDNN (the decoders' kernels) picks other algorithms for thin
# inputs, whose float results differ by an ulp (measured: sas-conv-h's h_s at 1-4 rows).
MIN_BAND_ROWS = 8


def band_rows(band_pixels: int | None, x, pixels_per_row: int) -> int | None:
    """Input rows of a band of about ``band_pixels`` frame pixels, for an input whose one row
    (all frames of the batch) stands for ``pixels_per_row`` frame pixels."""
    if band_pixels is None:
        return None
    return max(MIN_BAND_ROWS, int(band_pixels) // max(1, pixels_per_row * x.shape[0]))


def round_ste(x):
    """Rounding with a straight-through gradient."""
    return x + (torch.round(x) - x).detach()


class ConvHyperprior(nn.Module):
    family = "conv-hyper"
    latent_kind = "hyperprior"
    takes_bands = True  # its networks take ``band_pixels`` (models/runtime.py)

    def __init__(self, chans=(48, 96), M: int = 128, k: int = 5, Nh: int = 64, hk: int = 3,
                 lambdas=DEFAULT_LAMBDAS, act: str = "gdn", tables: dict | None = None):
        super().__init__()
        chans, lambdas = tuple(int(c) for c in chans), tuple(float(v) for v in lambdas)
        if not chans or min(chans) < 1 or M < 1 or Nh < 1 or k < 1 or k % 2 == 0:
            raise SaecodecError(f"conv-hyper: bad architecture chans={chans} M={M} Nh={Nh} k={k} (odd k)")
        if hk not in (3, 5) or act not in ("gdn", "relu") or not lambdas or min(lambdas) <= 0:
            raise SaecodecError(f"conv-hyper: hk must be 3 or 5, act gdn or relu, lambdas positive; got "
                                f"hk={hk} act={act!r} lambdas={lambdas}")
        self.chans, self.M, self.k, self.Nh, self.hk, self.lambdas, self.act = chans, int(M), int(k), int(Nh), \
            int(hk), lambdas, act
        ga, gs, cin = [], [], 1
        for c in chans:
            ga += [_conv(cin, c, k), _act(act, c)]
            cin = c
        self.g_a = nn.Sequential(*ga, _conv(cin, M, k))
        cin = M
        for c in reversed(chans):
            gs += [_deconv(cin, c, k), _act(act, c, inverse=True)]
            cin = c
        self.g_s = nn.Sequential(*gs, _deconv(cin, 1, k))
        lg = 0.5 * np.log(np.asarray(lambdas) / np.median(lambdas))  # gain ~ sqrt(lambda)
        self.log_gain = nn.Parameter(torch.tensor(lg, dtype=torch.float32)[:, None].repeat(1, M))
        self.h_a = nn.Sequential(_conv(M, Nh, 3, 1), nn.LeakyReLU(0.1), _conv(Nh, Nh, 5), nn.LeakyReLU(0.1),
                                 _conv(Nh, Nh, 5))
        if hk == 5:
            self.h_s = nn.Sequential(_deconv(Nh, M, 5), nn.LeakyReLU(0.1), _deconv(M, M * 3 // 2, 5),
                                     nn.LeakyReLU(0.1), _conv(M * 3 // 2, 2 * M, 3, 1))
        else:
            self.h_s = nn.Sequential(_deconv(Nh, 2 * Nh, 3), nn.LeakyReLU(0.1), _deconv(2 * Nh, M * 3 // 2, 3),
                                     nn.LeakyReLU(0.1), _conv(M * 3 // 2, 2 * M, 1, 1))
        self.z_density = densities.FactorizedDensity(Nh)
        self.tables = tables or {}
        sizes = {w: sum(self.tables.get(w, {}).get("size", [])) for w in ("z", "y")}
        self.register_buffer("tables_z", torch.zeros(sizes["z"], dtype=torch.int32))
        self.register_buffer("tables_y", torch.zeros(sizes["y"], dtype=torch.int32))

    # -- what the model file and the codec read ------------------------------------------
    @property
    def architecture(self) -> dict:
        return {"chans": list(self.chans), "M": self.M, "k": self.k, "Nh": self.Nh, "hk": self.hk,
                "lambdas": list(self.lambdas), "act": self.act, "tables": self.tables}

    @classmethod
    def from_architecture(cls, arch: dict) -> "ConvHyperprior":
        return cls(arch["chans"], arch["M"], arch.get("k", 5), arch.get("Nh", 64), arch.get("hk", 3),
                   arch.get("lambdas", DEFAULT_LAMBDAS), arch.get("act", "gdn"), arch.get("tables"))

    @property
    def latent_size(self) -> int:
        return self.M

    @property
    def levels(self) -> int:
        return len(self.lambdas)

    @property
    def stride(self) -> int:
        return 2 ** (len(self.chans) + 1)

    @property
    def frozen(self) -> bool:
        return bool(self.tables)

    def latent_shapes(self, tile) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(M, h, w) of y and (Nh, hz, wz) of z for a frame of shape ``tile``."""
        h, w = (-(-int(t) // self.stride) for t in tile)
        return (self.M, h, w), (self.Nh, -(-h // HYPER_STRIDE), -(-w // HYPER_STRIDE))

    def entropy_tables(self) -> dict:
        """{"z": [(kmin, counts)] per channel, "y": [(kmin, counts)] per scale, "scales": (min, max, n)}."""
        if not self.frozen:
            raise SaecodecError("this conv-hyper network has no frozen entropy tables (freeze_tables() after "
                                "training)")
        out = {"scales": tuple(self.tables["scales"])}
        for which, flat in (("z", self.tables_z), ("y", self.tables_y)):
            counts = flat.cpu().numpy().astype(np.int64)
            bounds = np.cumsum([0] + list(self.tables[which]["size"]))
            out[which] = [(int(km), counts[a:b]) for km, a, b in zip(self.tables[which]["kmin"], bounds[:-1],
                                                                     bounds[1:])]
        return out

    @torch.no_grad()
    def freeze_tables(self, scales=densities.SCALES) -> None:
        """Integer tables from the trained densities (the step after training, CompressAI's update())."""
        tabs = {"z": densities.freeze_factorized(self.z_density), "y": densities.freeze_gaussian(scales)}
        self.tables = {"scales": [float(scales[0]), float(scales[1]), int(scales[2])]}
        for which, t in tabs.items():
            self.tables[which] = {"kmin": [km for km, _ in t], "size": [len(c) for _, c in t]}
            setattr(self, f"tables_{which}", torch.from_numpy(np.concatenate([c for _, c in t]).astype(np.int32)))

    # -- the networks -------------------------------------------------------------------
    def pad(self, x):
        """(B, 1, H, W) -> padded to a multiple of the stride by repeating the edges."""
        s = self.stride
        ph, pw = (-x.shape[-2]) % s, (-x.shape[-1]) % s
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    def encode(self, x, band_pixels: int | None = None):
        """Frames (B, 1, H, W) -> y (B, M, h, w), before the level's gain; ``band_pixels``: at
        most about that many frame pixels through the network at once (:func:`_bands`)."""
        x = self.pad(x)
        band_pixels = band_pixels if _reference(x) else None  # oneDNN's analysis differs by band
        return _bands(self.g_a, x, band_rows(band_pixels, x, x.shape[-1]))

    def decode(self, y, band_pixels: int | None = None):
        """y_hat / gain (B, M, h, w) -> frames (B, 1, h * stride, w * stride) (the caller crops)."""
        s = self.stride
        return _bands(self.g_s, y, band_rows(band_pixels, y, y.shape[-1] * s * s))

    def gain(self, level) -> torch.Tensor:
        """level (B,) in [0, L - 1] -> gains (B, M): log-linear between the trained levels."""
        L = self.log_gain.shape[0]
        level = torch.as_tensor(level, dtype=torch.float32, device=self.log_gain.device).clamp(0, L - 1)
        i0 = level.floor().long().clamp(max=max(L - 2, 0))
        a = (level - i0.float())[:, None]
        lg = self.log_gain[i0] * (1 - a) + self.log_gain[(i0 + 1).clamp(max=L - 1)] * a
        return torch.exp(lg)

    def hyper_analysis(self, yg, band_pixels: int | None = None):
        """Gained y (B, M, h, w) -> z (B, Nh, hz, wz); y zero-padded to a multiple of 4."""
        ph, pw = (-yg.shape[-2]) % HYPER_STRIDE, (-yg.shape[-1]) % HYPER_STRIDE
        y = F.pad(yg, (0, pw, 0, ph)) if ph or pw else yg
        band_pixels = band_pixels if _reference(y) else None  # as g_a: the encoder's kernels only
        return _bands(self.h_a, y, band_rows(band_pixels, y, y.shape[-1] * self.stride ** 2))

    def hyper_synthesis(self, z_hat, hw, band_pixels: int | None = None):
        """z_hat -> (mu, sigma) of the gained y, each (B, M, h, w): views of one tensor."""
        s = self.stride * HYPER_STRIDE
        p = _bands(self.h_s, z_hat, band_rows(band_pixels, z_hat, z_hat.shape[-1] * s * s))[:, :, :hw[0], :hw[1]]
        mu, s = p.chunk(2, dim=1)
        # softplus on this very view (its vectorised and scalar paths differ by an ulp, so the
        # layout it sees is part of the result), + 1e-3 in place
        return mu, F.softplus(s).add_(1e-3)

    def forward(self, x, level):
        """Training pass: x (B, 1, H, W) mean-free, H and W multiples of the stride; level (B,).
        Returns the reconstruction and the estimated bits per frame (uniform noise for y and z)."""
        g = self.gain(level)[:, :, None, None]
        y = self.g_a(x) * g
        z = self.hyper_analysis(y)
        bits_z = -torch.log2(self.z_density.likelihood(z + torch.empty_like(z).uniform_(-0.5, 0.5))).sum((1, 2, 3))
        mu, sigma = self.hyper_synthesis(round_ste(z), y.shape[-2:])
        lik = densities.gaussian_likelihood(y + torch.empty_like(y).uniform_(-0.5, 0.5), mu, sigma)
        bits = -torch.log2(lik).sum((1, 2, 3)) + bits_z
        y_hat = round_ste(y - mu) + mu
        return self.g_s(y_hat / g), bits


def lambda_of(lambdas, level: np.ndarray) -> np.ndarray:
    """lambda(level): log-linear between the trained levels (the rate-distortion weight)."""
    lg = np.log(np.asarray(lambdas, np.float64))
    i0 = np.clip(np.floor(level), 0, max(len(lg) - 2, 0)).astype(int)
    a = level - i0
    return np.exp(lg[i0] * (1 - a) + lg[np.minimum(i0 + 1, len(lg) - 1)] * a)
