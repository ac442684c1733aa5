"""One coder per latent kind: the latent section of a payload.

A model's ``latent_kind`` picks its coder. ``write`` returns the section's bytes together
with the latents and side info a decoder will read back from them (as CompressAI's latent
codecs return ``y_hat``), so the encoder's residual is measured against exactly what
the decoder reconstructs, without decoding its own bytes. ``read`` is the inverse and
raises :class:`PayloadError` on anything a corrupted payload can hold.

A new latent kind is a class with this interface and one entry in ``CODERS`` (its
``kind_code``: a free value of header flag bits 0-1, docs/format.md). A kind whose coding
runs networks between its symbols (the hyperprior: h_s between z and y) sets
``needs_net`` and is given the pipeline's ``net`` (``models.runtime.HyperNet``) and the
codec's rate ``level``. A kind with its own rate control (the wavelet engine) sets
``rate_control`` and is given ``level`` and ``target_error``.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..errors import SaecodecError
from .dense import DenseCoder
from .hyperprior import HyperpriorCoder
from .payload import Reader
from .sparse import SparseCoder
from .wavelet import WaveletCoder


class LatentCoder(Protocol):
    kind: str  # the models' latent_kind it serves
    kind_code: int  # payload header flag bits 0-1
    value_code: int  # payload header byte 9 (0 where the kind stores no typed values)

    def __init__(self, model, value_code: int): ...

    def write(self, latents: np.ndarray, side: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]: ...

    def read(self, reader: Reader, frames: int, tile: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]: ...


CODERS: dict[str, type] = {c.kind: c for c in (SparseCoder, DenseCoder, HyperpriorCoder, WaveletCoder)}


def coder_for(model, value_code: int, *, net=None, level=None, target_error=None) -> LatentCoder:
    """The coder of ``model``'s latent kind; ``value_code`` is the latent value type
    (``quant.LATENT_DTYPES``) where the kind stores typed values; ``net`` (a callable
    ``() -> HyperNet``, built only for the kinds that need it), ``level`` (the rate
    option; only for kinds with rate levels) and ``target_error`` (only for kinds with
    their own rate control)."""
    cls = CODERS.get(model.latent_kind)
    if cls is None:
        raise SaecodecError(f"latent kind {model.latent_kind!r} has no coder in this saecodec version")
    if getattr(cls, "rate_control", False):
        return cls(model, value_code, level=level, target_error=target_error)
    if target_error is not None:
        raise SaecodecError(f"model {model.name!r} ({model.family}) has no per-frame rate control; drop "
                            "target_error (the wavelet family has it)")
    if getattr(cls, "needs_net", False):
        return cls(model, value_code, net=net() if callable(net) else net, level=level)
    if level is not None:
        raise SaecodecError(f"model {model.name!r} ({model.family}) has no rate levels; drop level=")
    return cls(model, value_code)
