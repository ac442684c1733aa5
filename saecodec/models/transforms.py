"""Input transforms between detector intensities and what the network sees.

SAS intensities span many decades and, after background subtraction, include zeros
and negative values. ``asinh(x / scale)`` behaves like ``log10`` for ``|x| >> scale``
and is linear near zero, so it is defined on all reals and loses no sign. Each frame is
then normalised by its own mean and standard deviation (two float32 numbers stored in
the payload) so that the network only has to learn the *shape* of a frame, not its
absolute level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SaecodecError

_LN10 = np.log(10.0)
# sinh overflows float64 near 710; asinh/ln10 of float64 max is ~308.6.
_U_LIMIT = 308.0


@dataclass(frozen=True)
class Transform:
    """``u = asinh(x / scale) / ln(10)``, then per-frame ``(u - mean) / std``.

    ``kind`` is ``"asinh"`` (the default) or ``"linear"`` (``u = x / scale``).
    ``normalise`` ``"mean"`` subtracts the frame's mean only (side scale 1): a network
    trained with a rate-distortion loss in absolute log10 units (conv-hyper) must see
    frames in those units, not rescaled to unit deviation.
    """

    kind: str = "asinh"
    scale: float = 1.0
    per_frame: bool = True
    normalise: str = "std"

    def __post_init__(self):
        if self.kind not in ("asinh", "linear"):
            raise SaecodecError(f"unknown transform kind {self.kind!r}; expected 'asinh' or 'linear'")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise SaecodecError(f"transform scale must be a positive finite number, got {self.scale!r}")
        if self.normalise not in ("std", "mean"):
            raise SaecodecError(f"transform normalise must be 'std' or 'mean', got {self.normalise!r}")

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "scale": float(self.scale), "per_frame": bool(self.per_frame)}
        if self.normalise != "std":  # files written before it keep their bytes
            out["normalise"] = self.normalise
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Transform":
        return cls(kind=d.get("kind", "asinh"), scale=float(d.get("scale", 1.0)),
                   per_frame=bool(d.get("per_frame", True)), normalise=d.get("normalise", "std"))

    # -- intensity <-> transformed domain (no normalisation) ---------------------------
    # to_u, from_u and inverse compute in one float64 array of their own, in place: the same
    # values as the expressions in their comments, without a temporary per operation (large
    # frames: 8 bytes per pixel each)
    def to_u(self, x: np.ndarray) -> np.ndarray:
        u = np.array(x, dtype=np.float64)
        if self.kind == "asinh":  # asinh(x / scale) / ln 10
            np.divide(u, self.scale, out=u)
            np.arcsinh(u, out=u)
            return np.divide(u, _LN10, out=u)
        return np.divide(u, self.scale, out=u)  # x / scale

    def from_u(self, u: np.ndarray, *, out: bool = False) -> np.ndarray:
        """``out``: ``u`` is a float64 array of the caller's to compute in."""
        u = u if out else np.array(u, dtype=np.float64)
        if self.kind == "asinh":  # scale * sinh(clip(u) * ln 10)
            np.clip(u, -_U_LIMIT, _U_LIMIT, out=u)
            np.multiply(u, _LN10, out=u)
            np.sinh(u, out=u)
        return np.multiply(u, self.scale, out=u)  # linear: u * scale

    # -- frames -> network input, with the side information to undo it ----------------
    def forward(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """frames (B, h, w) -> network input (B, h*w) float32 and side info (B, 2) float32."""
        b = frames.shape[0]
        u = self.to_u(frames).reshape(b, int(np.prod(frames.shape[1:])))
        side = np.zeros((b, 2), dtype=np.float32)
        if self.per_frame:
            side[:, 0] = u.mean(axis=1)
            std = u.std(axis=1) if self.normalise == "std" else np.ones(b)
            side[:, 1] = np.where(std > 1e-12, std, 1.0)
            # Normalise with the float32 values the decoder will see (in place: u is ours).
            z = np.subtract(u, side[:, :1].astype(np.float64), out=u)
            z = np.divide(z, side[:, 1:].astype(np.float64), out=z)
        else:
            side[:, 1] = 1.0
            z = u
        return z.astype(np.float32), side

    def sensitivity(self, z: np.ndarray, side: np.ndarray, tol: float) -> np.ndarray:
        """Bound on |inverse(z') - inverse(z)| per element when |z' - z| <= tol * (1 + |z|).

        The error-bounded mode reserves this much of the bound for a decoder whose network
        output differs from the encoder's (other device, other thread count). For asinh,
        |sinh(a + h) - sinh(a)| <= h cosh(|a| + h) with a = u ln 10 and h = d ln 10.
        """
        z = np.asarray(z, dtype=np.float64)
        std = np.abs(np.asarray(side, dtype=np.float64)[:, 1:2])
        d = tol * (1.0 + np.abs(z)) * std
        if self.kind == "linear":
            return self.scale * d
        u = np.abs(z * std + np.asarray(side, dtype=np.float64)[:, 0:1])
        h = d * _LN10
        with np.errstate(over="ignore", invalid="ignore"):
            out = self.scale * h * np.cosh(np.minimum(u, _U_LIMIT) * _LN10 + h)
        return np.where(np.isfinite(out), out, np.inf)

    def inverse(self, z: np.ndarray, side: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
        """network output (B, h*w) and side info -> intensities (B, h, w) float64."""
        side = np.asarray(side, dtype=np.float64)
        u = np.array(z, dtype=np.float64)  # z * scale + offset
        np.multiply(u, side[:, 1:2], out=u)
        np.add(u, side[:, 0:1], out=u)
        return self.from_u(u, out=True).reshape((u.shape[0],) + tuple(frame_shape))
