"""The numcodecs codec: ``SAECodec``, codec_id ``"saecodec"``.

Registered under the ``numcodecs.codecs`` entry point, so a Zarr (format 2) store
written with it reads back in a process that never imports saecodec. Its config
records the model's identity (SHA-256 of the model file) and name; the model itself is
resolved through :mod:`saecodec.model_store` on first use.
"""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from . import bound, chunk, model_store
from .coding import quant
from .errors import SaecodecError
from .models.model import Model


class SAECodec(Codec):
    """Learned lossy codec for stacks of 2D detector frames.

    Parameters
    ----------
    model : str or Model
        Identity (64 hex digits), identity prefix, name or file path of a model, or a
        loaded :class:`saecodec.models.Model`.
    weight_dtype : {"float16", "bfloat16", "float32"}
        Storage type of the latent values of sparse (L1) models. Dense (RRAE) models
        quantise their coefficients with the step recorded in the model file instead.
    device : str, optional
        Torch device for the network ("cpu", "cuda", "cuda:1"). Default: CUDA when
        available, else CPU. A run-time choice, not part of the config: payloads decode
        on any device.
    model_name : str, optional
        Human-readable name recorded next to the identity, for error messages.
    error_bound : float, optional
        Guarantee ``|decoded - original| <= error_bound`` for every element (in the
        array's units, whatever domain the model works in). Default: no bound, the pure
        autoencoder of the papers.
    bound_mode : {"abs", "rel"}
        ``"rel"``: the bound is ``error_bound * (max - min)`` of each chunk's valid values
        (SZ's convention); ``"abs"``: ``error_bound`` itself.
    mask_value : number, optional
        Elements equal to this value (detector gaps, e.g. 2**32 - 1 on uint32 frames) are
        stored exactly and hidden from the network, as NaN and +-inf always are.
    """

    codec_id = "saecodec"

    def __init__(self, model, weight_dtype: str = "float16", device=None, model_name: str | None = None,
                 error_bound: float | None = None, bound_mode: str = "abs", mask_value=None):
        quant.weight_code(weight_dtype)  # validates
        self.weight_dtype = str(weight_dtype)
        self.error_bound, self.bound_mode = bound.check_bound(error_bound, bound_mode)
        if mask_value is not None and not isinstance(mask_value, (int, float, np.integer, np.floating)):
            raise SaecodecError(f"mask_value must be a number, got {mask_value!r}")
        if mask_value is not None and not np.isfinite(float(mask_value)):
            mask_value = None  # NaN and +-inf are always stored exactly
        self.mask_value = None if mask_value is None else (
            int(mask_value) if float(mask_value).is_integer() else float(mask_value))
        self.device = device
        self._model: Model | None = None
        if isinstance(model, Model):
            model_store.remember(model)
            self._model = model
            self.model = model.identity
            self.model_name = model_name or model.name
        elif model_store.is_identity(str(model).lower()):
            self.model = str(model).lower()
            self._model = model_store.loaded(self.model)
            self.model_name = model_name or (self._model.name if self._model else None)
        elif isinstance(model, str) or hasattr(model, "__fspath__"):
            self._model = model_store.load(model, name=model_name)
            self.model = self._model.identity
            self.model_name = model_name or self._model.name
        else:
            raise SaecodecError(f"model must be an identity, name, path or Model, got {type(model).__name__}")

    def resolve_model(self) -> Model:
        """The model, loaded on first use so that opening a store never needs it."""
        if self._model is None:
            self._model = model_store.load(self.model, name=self.model_name)
        return self._model

    def encode(self, buf):
        arr = buf if isinstance(buf, np.ndarray) else ensure_contiguous_ndarray(buf)
        return chunk.encode_chunk(self.resolve_model(), arr, weight_dtype=self.weight_dtype, device=self.device,
                                  error_bound=self.error_bound, bound_mode=self.bound_mode,
                                  mask_value=self.mask_value)

    def decode(self, buf, out=None):
        if isinstance(buf, np.ndarray) and buf.dtype != np.uint8:
            buf = buf.view(np.uint8).reshape(-1) if buf.flags.c_contiguous else buf.tobytes()
        data = ensure_contiguous_ndarray(buf)
        dec = chunk.decode_chunk(self.resolve_model(), data, device=self.device)
        if out is not None:
            return ndarray_copy(dec, out)
        return dec

    def get_config(self):
        config = {"id": self.codec_id, "model": self.model, "weight_dtype": self.weight_dtype}
        if self.model_name:
            config["model_name"] = self.model_name
        if self.error_bound is not None:
            config["error_bound"] = self.error_bound
            config["bound_mode"] = self.bound_mode
        if self.mask_value is not None:
            config["mask_value"] = self.mask_value
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("id", None)
        return cls(**config)

    def __repr__(self):
        args = [f"model={self.model!r}", f"weight_dtype={self.weight_dtype!r}"]
        if self.model_name:
            args.append(f"model_name={self.model_name!r}")
        if self.error_bound is not None:
            args += [f"error_bound={self.error_bound!r}", f"bound_mode={self.bound_mode!r}"]
        if self.mask_value is not None:
            args.append(f"mask_value={self.mask_value!r}")
        return f"{type(self).__name__}({', '.join(args)})"
