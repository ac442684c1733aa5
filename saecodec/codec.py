"""The numcodecs codec: ``SAECodec``, codec_id ``"saecodec"``.

Registered under the ``numcodecs.codecs`` entry point, so a Zarr (format 2) store
written with it reads back in a process that never imports saecodec. Its config
records the model's identity (SHA-256 of the model file) and name; the network itself is
loaded through :mod:`saecodec.model_store` when a chunk needs it: never for the bounded
and lossless payloads, which decode without torch. ``model=None`` is the model-free
codec: those modes only, written and read without torch or a model file.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ensure_ndarray_like, ndarray_copy

from . import chunk, model_store
from .coding import payload as fmt
from .errors import LossyCountsWarning, SaecodecError
from .models import runtime
from .models.model import Model
from . import options as opts
from .options import ALIASES, CODEC_ID, OPTION_NAMES, CodecOptions


class SAECodec(Codec):
    """Learned lossy codec for stacks of 2D detector frames.

    Parameters
    ----------
    model : str, Model or None
        Identity (64 hex digits), identity prefix, name or file path of a model, or a
        :class:`saecodec.models.Model`. None (the default): no model, the bounded and
        lossless modes only (``error_bound`` required; pure mode, ``predictor="network"``
        and ``level`` refused); needs neither torch nor a model file, to write or to read.
    latent_dtype : {"float16", "bfloat16", "float32"}
        Storage type of the latent values of sparse (L1) models; ``weight_dtype`` is its
        old name and still accepted. Dense (RRAE) models quantise their coefficients with
        the step recorded in the model file instead.
    device : str, optional
        Torch device for the network ("cpu", "cuda", "cuda:1"). Default: CUDA when
        available, else CPU. A run-time choice, not part of the config: payloads decode
        on any device. A device this machine lacks is refused here.
    model_name : str, optional
        Human-readable name recorded next to the identity, for error messages.
    error_bound : float, optional
        Guarantee ``|decoded - original| <= error_bound`` for every element (in the
        array's units, whatever domain the model works in). Default: no bound, the pure
        autoencoder of the papers.
    bound_mode : {"abs", "rel", "pwrel", "poisson"}
        What ``error_bound`` bounds, for every element (docs/guide.md, "Error bounds"):
        ``"abs"`` (default): ``|d - x| <= error_bound``; on integers a bound below 1 is
        lossless (exact for every value, 64-bit extremes included).
        ``"rel"``: ``error_bound * (max - min)`` of each chunk's valid values (SZ's convention).
        ``"pwrel"``: ``|d - x| <= error_bound * |x|``, pointwise relative: zeros stay zero,
        signs are kept, negative values allowed.
        ``"poisson"``: ``|d - x| <= error_bound * sqrt(max(x, 1))``, a fraction of each
        count's Poisson noise; integers stay integers, bins are dithered so averages such
        as I(q) stay unbiased (error bars grow by sqrt(1 + eb^2 / 3)); values that are no
        counts (negative, fractional) are kept exactly.
    mask_value : number, optional
        One sentinel, the old name of ``mask_values``.
    mask_values : sequence of numbers, optional
        Elements equal to one of these (Pilatus gaps -1 and dead pixels -2, Eiger 2**32 - 1)
        are stored exactly and hidden from the network and the bounded coder, as NaN and
        +-inf always are.
    mask_below : number, optional
        Elements below this value are stored exactly and hidden likewise.
    mask : boolean array, optional
        A detector mask (True: masked) applied to every chunk it broadcasts to: a 2D frame
        mask needs chunks of whole frames, e.g. ``chunks=(n, H, W)``; a chunk it does not fit
        is a clear error. Stored in the config and cd_values (compressed).
    predictor : {"classical", "network"}
        What the bounded modes predict each element from: ``"classical"`` (default) its
        neighbours in the plane (Lorenzo, (W+N)/2 or none, per plane; no network runs: the
        speed of SZ3 or better), or ``"network"``: the model's reconstruction, per plane
        where it pays, the latents dropped where they cost more than they save (abs, rel,
        and pwrel on floats; poisson and lossless integers are always classical).
    max_error : float or None
        The pure mode's quality gate (default 0.25): a frame (tile) whose reconstruction
        misses this relative L2 in the model's transformed domain (against the frame's
        deviation from its mean) is coded with a bound that meets it; every frame is
        clipped to its value range. None (or inf) turns it off. Ignored with ``error_bound``.
    level : float, optional
        The rate of models trained with several rate levels (the wavelet and conv-hyper
        families): 0 (fewest bytes) .. L - 1 (best quality; ``sas-wavelet``: 0 .. 7,
        ``sas-conv-h``: 0 .. 5), continuous, kept in steps of 1/32. Default: the model's
        middle level ((L - 1) / 2: 3.5 and 2.5). A model without levels refuses it.

    Every parameter but ``model`` is a keyword; ``SAEZarrCodec`` and ``hdf5.SAE`` take the
    same ones (``saecodec.options.signature``). The options are checked once into
    :attr:`options` (a frozen :class:`saecodec.options.CodecOptions`); ``codec.error_bound``
    etc. read them.
    """

    codec_id = CODEC_ID

    def __init__(self, model=None, *, device=None, **options):
        self.options = opts.new(model, options)
        if self.options.model is not None:
            runtime.check_device(device)
        self.device = device
        self._model: Model | None = model if isinstance(model, Model) else model_store.loaded(self.options.model)

    __init__.__signature__ = opts.signature(inspect.Parameter("device", inspect.Parameter.KEYWORD_ONLY, default=None))

    @classmethod
    def from_options(cls, options: CodecOptions, device=None) -> "SAECodec":
        if options.model is not None:
            runtime.check_device(device)
        codec = cls.__new__(cls)
        codec.options, codec.device, codec._model = options, device, model_store.loaded(options.model)
        return codec

    def __getattr__(self, name):  # codec.model, codec.error_bound, ...: the options' fields
        options = self.__dict__.get("options")
        if options is None or ALIASES.get(name, name) not in OPTION_NAMES:
            raise AttributeError(name)
        return getattr(options, name if hasattr(CodecOptions, name) else ALIASES.get(name, name))

    def resolve_model(self) -> Model:
        """The network, loaded on first need so that opening a store, and reading chunks
        that run no network, never needs it (nor torch)."""
        if self._model is None:
            if self.options.model is None:
                raise SaecodecError("this codec has no model (model=None)")
            self._model = model_store.load(self.options.model, name=self.options.model_name)
        return self._model

    def encode(self, buf):
        if self.__dict__.get("_refused"):
            raise SaecodecError(f"this codec's stored config cannot be used to write: {self._refused}; it was "
                                "written by another saecodec version or damaged (reading works)")
        arr = buf if isinstance(buf, np.ndarray) else ensure_contiguous_ndarray(buf)
        if self.options.error_bound is None and arr.dtype.kind in "iu" and not self.__dict__.get("_warned_counts"):
            self.__dict__["_warned_counts"] = True  # once per codec: its chunks all say the same
            warnings.warn(LossyCountsWarning(
                f"the pure mode is lossy on {arr.dtype} data: integer counts come back rounded, their totals and "
                "I(q) moved; error_bound=0 (lossless) or bound_mode='poisson' keeps the counts"), stacklevel=2)
        model = None if self.options.model is None else self.resolve_model()
        return chunk.encode_chunk(model, arr, self.options, device=self.device)

    def decode(self, buf, out=None, *, shape=None, dtype=None):
        """Payload -> chunk. ``shape`` and ``dtype`` are the container's chunk (zarr v3's chunk
        spec, HDF5's cd_values), and ``out`` (numcodecs) says the same: a payload that holds
        another chunk (another dtype, shape or size, or a bomb's claim) is refused before
        anything is decoded. Without them, only the payload's own limits apply."""
        if isinstance(buf, np.ndarray) and buf.dtype != np.uint8:
            buf = buf.view(np.uint8).reshape(-1) if buf.flags.c_contiguous else buf.tobytes()
        # bytes and flat uint8 arrays (what the HDF5 filter passes) are read as they are
        data = buf if type(buf) is bytes or (type(buf) is np.ndarray and buf.ndim == 1 and buf.dtype == np.uint8
                                             and buf.flags.c_contiguous) else ensure_contiguous_ndarray(buf)
        target = None if out is None else ensure_ndarray_like(out)
        expect = _expect(shape, dtype, target)
        model = None if self.options.model is None else self._model if self._model is not None else self.resolve_model
        dec = chunk.decode_chunk(model, data, device=self.device, expect=expect)
        if target is None:
            return dec
        if target.dtype != np.uint8 and target.dtype != dec.dtype:
            dec = dec.astype(target.dtype)  # the same element type in another byte order: values, not bytes
        return ndarray_copy(dec, out)

    def get_config(self):
        stored = self.__dict__.get("_stored")
        return {"id": self.codec_id, **(stored if stored is not None else self.options.to_config())}

    @classmethod
    def from_config(cls, config):
        """From a stored config: its model by identity (or a name written by hand), resolved in
        the model store only, a file path in a config refused (``model_store.identify_stored``);
        no ``model`` (or ``"model": null``): the model-free codec. A config this saecodec cannot
        write with (a newer one's key, a bad encoder option) still reads, with a warning."""
        config = dict(config)
        stored = {k: v for k, v in config.items() if k != "id"}
        name = config.get("model_name")
        if config.get("model") is not None:
            config["model"], config["model_name"] = model_store.identify_stored(
                config["model"], name if isinstance(name, str) else None)
        options, refused = CodecOptions.for_reading(config)
        if refused is None and not isinstance(name, (str, type(None))):
            refused = f"model_name must be a string, got {type(name).__name__}"
        codec = cls.from_options(options)
        if refused is not None:
            warnings.warn(f"saecodec: {refused}. The data reads (decoding needs only the model); writing with "
                          "this config is refused", stacklevel=2)
            codec._stored, codec._refused = stored, refused  # written back as it was, never re-encoded
        return codec

    def __repr__(self):
        return f"{type(self).__name__}({self.options.repr_args()})"


def _expect(shape, dtype, out) -> fmt.Expect | None:
    """The container's chunk: as given, or as a numcodecs ``out`` holds it (bytes: their count;
    a typed array: its element type, and its shape, or its size when flat)."""
    if out is not None:
        if out.dtype == np.uint8:
            return fmt.Expect(shape, dtype, out.nbytes)
        if out.dtype.kind not in "fiu":
            raise SaecodecError(f"cannot decode into an array of dtype {out.dtype}")
        return fmt.Expect(out.shape if out.ndim > 1 else shape, out.dtype, out.nbytes if out.ndim <= 1 else None)
    return None if shape is None and dtype is None else fmt.Expect(shape, dtype)
