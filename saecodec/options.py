"""The codec's options: checked once, frozen, and written the same way to every container.

One :class:`CodecOptions` serves the numcodecs config (Zarr format 2), the zarr v3 codec
dict and the HDF5 filter's cd_values, and needs neither torch nor the model's weights.
The options steer the encoder only: a payload decodes with the model alone.

Adding an option:

1. a field with a default that means "off", i.e. what a config without it meant;
2. its check in ``__post_init__``;
3. its cd_values words: a new entry at the end of ``_CD_OPTIONS`` (never reorder them);
4. its line in ``SAECodec``'s docstring.

``SAECodec``, ``SAEZarrCodec`` and ``hdf5.SAE`` take the options as keywords through one
signature built from the fields (:func:`signature`, :func:`new`): ``help()`` shows every
option by name, and a new field is a new keyword of all three.

The bounded modes' and the masks' options keep their checks and cd_values words in
``options_bounds.py``.

Configs and cd_values written before it keep reading (absent fields take their default).
cd_values written after it still decode with an older saecodec, which refuses to encode
with options it does not know (``CdValues.unknown_words``).
"""

from __future__ import annotations

import inspect
import math
import struct
from dataclasses import MISSING, dataclass, fields
from typing import NamedTuple


from . import bound
from . import options_bounds as ob
from .coding import quant
from .coding.mask import FrameMask
from .errors import SaecodecError
from .modelfile import is_identity

CODEC_ID = "saecodec"  # numcodecs codec_id and zarr v3 codec name
ALIASES = {"weight_dtype": "latent_dtype", "mask_value": "mask_values"}  # old name -> field
_BOUND_KINDS = {None: 0, "abs": 1, "rel": 2}  # pwrel and poisson write 1 here: see options_bounds
# The quality gate's target for new codecs (SAECodec, SAEZarrCodec, hdf5.SAE, encode_chunk);
# a stored config or cd_values without ``max_error`` means no gate, as it did when written.
DEFAULT_MAX_ERROR = 0.25
MODEL_NAME_BYTES = 64  # the model name in cd_values (UTF-8, cut at a character boundary)


@dataclass(frozen=True)
class CodecOptions:
    """``model``: the model's identity (64 hex digits); ``latent_dtype``: storage type of
    sparse latent values; ``model_name``: recorded for error messages; ``error_bound`` and
    ``bound_mode``: the pointwise bound (None: the pure autoencoder; ``bound.BOUND_MODES``);
    ``mask_values`` (old name ``mask_value``), ``mask_below`` and ``mask``: sentinels, a
    threshold and a boolean mask (``coding.mask.FrameMask``) of pixels stored exactly and
    hidden from the network and the bounded coder; ``max_error``: the pure mode's quality
    gate (``saecodec.gate``), None: off; ``predictor``: what the bounded modes code
    against, ``"classical"`` (the plane's own neighbours: fast) or ``"network"`` (the
    model's reconstruction, per plane where it pays); ``level``: the rate level of a model
    with rate levels; ``target_error``: per frame the largest quantiser step whose
    offset-free relative L2 in the model's domain is at most this (models with per-frame
    rate control: the wavelet family), None: off (``level`` decides).

    ``model`` None: the model-free codec (docs/seams.md, section 1): the bounded and
    lossless modes only, whose payloads any reader decodes with numpy and the compiled
    coder; a codec without a model has nothing to run the pure mode, a network predictor
    or a rate level with, so those are refused here rather than at the first chunk."""

    model: str | None
    latent_dtype: str = "float16"
    model_name: str | None = None
    error_bound: float | None = None
    bound_mode: str = "abs"
    mask_values: tuple = ()
    max_error: float | None = None
    mask_below: float | None = None
    mask: FrameMask | None = None
    predictor: str = "classical"
    level: float | None = None
    target_error: float | None = None

    def __post_init__(self):
        if self.model is not None and not is_identity(self.model):
            raise SaecodecError(f"model identity must be 64 lowercase hex digits (or None: no model), "
                                f"got {self.model!r}")
        quant.latent_code(self.latent_dtype)  # raises for unknown names
        self._set("latent_dtype", str(self.latent_dtype))
        self._set("model_name", self.model_name or None)
        if self.bound_mode not in bound.BOUND_MODES:
            raise SaecodecError(f"bound_mode must be one of {bound.BOUND_MODES}, got {self.bound_mode!r}")
        if self.error_bound is None:
            self._set("bound_mode", "abs")  # no bound, no mode
        else:
            try:
                eb = float(self.error_bound)
            except (TypeError, ValueError):
                raise SaecodecError(f"error_bound must be a number, got {self.error_bound!r}") from None
            if not (math.isfinite(eb) and eb >= 0):
                raise SaecodecError(f"error_bound must be finite and >= 0, got {self.error_bound!r}")
            self._set("error_bound", eb)
        ob.check_bound(self.bound_mode, self.error_bound)
        self._set("mask_values", ob.mask_values(self.mask_values))
        self._set("max_error", _max_error(self.max_error))
        self._set("mask_below", ob.mask_below(self.mask_below))
        self._set("mask", FrameMask.of(self.mask))
        self._set("predictor", ob.predictor(self.predictor))
        self._set("level", ob.level(self.level))
        self._set("target_error", _target_error(self.target_error))
        if self.model is None:
            self._check_model_free()

    def _check_model_free(self):
        if self.error_bound is None:
            raise SaecodecError("saecodec without a model codes the bounded and lossless modes only: give "
                                f"error_bound (0: lossless) with bound_mode one of {bound.BOUND_MODES}, or a model "
                                "for the pure mode")
        if self.predictor != "classical":
            raise SaecodecError(f"predictor={self.predictor!r} predicts from a model's network: give a model, or "
                                "leave predictor unset (classical: the plane's own neighbours)")
        if self.level is not None:
            raise SaecodecError("level is the rate of a model with rate levels: give such a model, or drop level")
        if self.target_error is not None:
            raise SaecodecError("target_error sets the steps of a model with per-frame rate control (the wavelet "
                                "family): give such a model, or drop target_error")
        self._set("max_error", None)  # the quality gate is the pure mode's; a bound replaces it

    @property
    def mask_value(self):
        """The old single-sentinel option: the sentinel (None without one; several: the tuple)."""
        v = self.mask_values
        return None if not v else v[0] if len(v) == 1 else v

    def _set(self, name, value):
        object.__setattr__(self, name, value)

    @classmethod
    def create(cls, model: str | None = None, **settings) -> "CodecOptions":
        """From keywords as users give them: ``None`` means the default, old names
        (``weight_dtype``) are accepted, unknown names refused."""
        given = {}
        for key, value in settings.items():
            name = ALIASES.get(key, key)
            if name not in OPTION_NAMES or name == "model":
                raise SaecodecError(f"unknown codec option {key!r}; known: {sorted(OPTION_NAMES - {'model'})}")
            if value is None:
                continue
            if name in given and given[name] != value:
                raise SaecodecError(f"{key!r} and {name!r} name one option; got {value!r} and {given[name]!r}")
            given[name] = value
        return cls(model=model, **given)

    # -- numcodecs config and zarr v3 dict -----------------------------------------------
    def to_config(self) -> dict:
        """The stored configuration (without numcodecs' ``id``): the identity and every
        option that is set; ``bound_mode`` goes with ``error_bound``. Without a model there
        is no ``model`` key (an older saecodec then says the config names no model)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if (f.name in ("model", "latent_dtype") and self.model is not None) or (
                    value is not None and value != f.default) or (
                    f.name == "bound_mode" and self.error_bound is not None):
                out[f.name] = value
        if len(self.mask_values) == 1:  # the name older readers know
            out["mask_value"] = out.pop("mask_values")[0]
        elif self.mask_values:
            out["mask_values"] = list(self.mask_values)
        if self.mask is not None:
            out["mask"] = self.mask.to_config()
        return out

    @classmethod
    def from_config(cls, config: dict) -> "CodecOptions":
        """Inverse of :meth:`to_config` (numcodecs' ``id`` ignored; old names read; no
        ``model``, or ``"model": null``: the model-free codec)."""
        config = {k: v for k, v in dict(config).items() if k != "id"}
        return cls.create(**config)

    @classmethod
    def for_reading(cls, config: dict) -> tuple["CodecOptions", str | None]:
        """A stored config as a reader takes it: :meth:`from_config`, or, when that refuses the
        config (a key of a newer saecodec, an encoder option out of range), the model alone and
        why: decoding needs only the model, as cd_values with unknown words already read."""
        try:
            return cls.from_config(config), None
        except SaecodecError as e:
            if config.get("model") is None and config.get("error_bound") is None:
                raise  # neither a model nor a bound: no codec ever wrote this config
            return cls.reading_only(config.get("model"), config.get("model_name"), config), str(e)

    @classmethod
    def reading_only(cls, model: str | None, model_name=None, settings: dict | None = None) -> "CodecOptions":
        """The options a reader keeps from stored ones it cannot use: the model alone, which is
        all decoding needs (each payload carries its own mode and bound). The model-free codec
        has no options without a bound, so its stored bound (and mode) passes through where it
        reads, else lossless stands in; either way such a codec refuses to write."""
        name = model_name if isinstance(model_name, str) else None
        if model is not None:
            return cls(model=model, model_name=name)
        settings = settings or {}
        bound_given = {"error_bound": settings.get("error_bound"), "bound_mode": settings.get("bound_mode") or "abs"}
        for kept in (bound_given, {"error_bound": bound_given["error_bound"]}):
            try:
                return cls(model=None, model_name=name, **kept)
            except (SaecodecError, TypeError, ValueError):
                pass
        return cls(model=None, model_name=name, error_bound=0.0)

    def to_zarr(self) -> dict:
        return {"name": CODEC_ID, "configuration": self.to_config()}

    def repr_args(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.to_config().items())

    # -- HDF5 cd_values ------------------------------------------------------------------
    def cd_values(self) -> tuple[int, ...]:
        """cd_values layout 2, before set_local appends the element type code, the chunk's
        rank and its dims: [2, identity (8 words; all 0: no model), latent dtype code, n, n option words]."""
        words = [w for _, pack, _ in _CD_OPTIONS for w in pack(self)]
        return (CD_VERSION, *_identity_words(self.model), quant.latent_code(self.latent_dtype), len(words), *words)

    @classmethod
    def from_cd_values(cls, cd) -> "CdValues":
        """cd_values (layout 1 or 2) -> options, and the chunk's element type code and shape
        when set_local has run (else None)."""
        cd = [int(v) for v in cd]
        version = cd[0] if cd else None
        if version not in (1, 2) or len(cd) < 10 or any(not 0 <= v < 1 << 32 for v in cd):
            raise SaecodecError(f"unsupported saecodec cd_values (layout version {version})")
        settings = {"model": _words_identity(cd[1:9])}
        base, unknown = 10, int(cd[9] not in quant.LATENT_DTYPES)  # the payload says its own latent type
        if not unknown:
            settings["latent_dtype"] = quant.LATENT_DTYPES[cd[9]][0]
        if version == 2:
            if len(cd) < 11 or len(cd) < 11 + cd[10]:
                raise SaecodecError("saecodec cd_values: options are missing")
            words, base = cd[11:11 + cd[10]], 11 + cd[10]
            read = dict(settings)
            try:
                for size, _, unpack in _CD_OPTIONS:
                    size = size(words) if callable(size) else size
                    if not words or len(words) < size:
                        break
                    read.update(unpack(words[:size]))
                    words = words[size:]
                unknown += len(words)
                options = cls(**read)
            except (SaecodecError, IndexError, ValueError, OverflowError):  # encoder options: readers need none
                options, unknown = cls.reading_only(settings["model"], None, read), max(1, len(words))
        else:
            options = cls(**settings)
        if len(cd) < base + 2 or not cd[base + 1]:
            return CdValues(options, None, None, unknown)
        rank = cd[base + 1]
        shape = tuple(cd[base + 2:base + 2 + rank])
        if len(shape) != rank:
            raise SaecodecError("saecodec cd_values: chunk shape is truncated")
        return CdValues(options, cd[base], shape, unknown)


class CdValues(NamedTuple):
    options: CodecOptions
    dtype_code: int | None  # the chunk's element type (docs/format.md), written by set_local
    shape: tuple[int, ...] | None  # the chunk's shape, written by set_local
    unknown_words: int  # option words of a newer saecodec: readable, not writable


CD_VERSION = 2
OPTION_NAMES = frozenset(f.name for f in fields(CodecOptions))


def _parameters() -> list[inspect.Parameter]:
    """The codec constructors' parameters: ``model`` (positional), then every other field and
    the old names as keywords, with the defaults a new codec takes."""
    kw = inspect.Parameter.KEYWORD_ONLY
    out = [inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
    for f in fields(CodecOptions):
        if f.name != "model":
            default = DEFAULT_MAX_ERROR if f.name == "max_error" else f.default
            out.append(inspect.Parameter(f.name, kw, default=None if default is MISSING or default == () else default))
    return out + [inspect.Parameter(old, kw, default=None) for old in ALIASES]


OPTION_PARAMETERS = _parameters()


def signature(*run_time: inspect.Parameter) -> inspect.Signature:
    """``(self, model=None, *, <run-time keywords>, <every option>)``: the one signature of
    ``SAECodec``, ``SAEZarrCodec`` and ``hdf5.SAE``, whose ``__init__`` take ``**options``."""
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Signature([self, OPTION_PARAMETERS[0], *run_time, *OPTION_PARAMETERS[1:]])


def new(model=None, options: dict | None = None) -> CodecOptions:
    """A new codec's options from its constructor's arguments: ``model`` (a Model, identity,
    identity prefix, name or path, identified without loading a network; None: the
    model-free codec) and the keywords of :func:`signature`. ``max_error`` is
    DEFAULT_MAX_ERROR unless given (None: no gate), as for every new codec; ``None`` elsewhere
    means the option's default."""
    from . import model_store

    settings = dict(options or {})
    name = settings.pop("model_name", None)
    identity, name = (None, None) if model is None else model_store.identify(model, name)
    level = settings.get("level")
    if identity is not None and level is not None and (levels := model_store.rate_levels(identity)) is not None:
        from .coding.hyperprior import check_level

        check_level(level, levels, name or identity[:12])  # the model's range, before the format's
    settings.setdefault("max_error", DEFAULT_MAX_ERROR)
    return CodecOptions.create(identity, model_name=name, **settings)


def _max_error(value):
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SaecodecError(f"max_error must be a number, got {value!r}") from None
    if v == math.inf:
        return None  # no frame misses an infinite target
    if not (math.isfinite(v) and v > 0):
        raise SaecodecError(f"max_error must be > 0 (None or inf: no quality gate; error_bound=0 for lossless), "
                            f"got {value!r}")
    return v


def _target_error(value):
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SaecodecError(f"target_error must be a number, got {value!r}") from None
    if not (math.isfinite(v) and 0 < v <= 10):
        raise SaecodecError(f"target_error is a relative L2 error: > 0 and at most 10, got {value!r}")
    return v


def _identity_words(identity: str | None) -> tuple[int, ...]:
    if identity is None:
        return (0,) * 8  # no SHA-256 is all zeros
    raw = bytes.fromhex(identity)
    return tuple(int.from_bytes(raw[i:i + 4], "big") for i in range(0, 32, 4))


def _words_identity(words) -> str | None:
    if not any(words):
        return None
    return b"".join(int(w).to_bytes(4, "big") for w in words).hex()


def _f64_words(v: float) -> tuple[int, int]:
    return struct.unpack(">II", struct.pack(">d", float(v)))


def _words_f64(hi: int, lo: int) -> float:
    return struct.unpack(">d", struct.pack(">II", hi, lo))[0]


def _pack_bound(o: CodecOptions):
    return (_BOUND_KINDS.get(None if o.error_bound is None else o.bound_mode, 1),
            *_f64_words(0.0 if o.error_bound is None else o.error_bound))


def _unpack_bound(w) -> dict:
    kinds = {v: k for k, v in _BOUND_KINDS.items()}
    if w[0] not in kinds:
        raise SaecodecError(f"saecodec cd_values: unknown bound kind {w[0]}")
    return {} if not w[0] else {"error_bound": _words_f64(w[1], w[2]), "bound_mode": kinds[w[0]]}


def _pack_mask(o: CodecOptions):
    """The first sentinel (all of them: options_bounds' mask values entry)."""
    return ob.value_words(o.mask_values[0] if o.mask_values else None)


def _unpack_mask(w) -> dict:
    v = ob.words_value(w)
    return {} if v is None else {"mask_values": (v,)}


def _pack_gate(o: CodecOptions):
    return (0, 0, 0) if o.max_error is None else (1, *_f64_words(o.max_error))


def _unpack_gate(w) -> dict:
    if w[0] not in (0, 1):
        raise SaecodecError(f"saecodec cd_values: unknown quality gate kind {w[0]}")
    return {"max_error": _words_f64(w[1], w[2])} if w[0] else {}


def _name_bytes(name: str | None) -> bytes:
    raw = (name or "").encode("utf-8")[:MODEL_NAME_BYTES]
    return raw.decode("utf-8", errors="ignore").encode("utf-8")  # no cut character


def _pack_name(o: CodecOptions):
    """The model name for error messages: its byte count, then the bytes in big-endian words."""
    raw = _name_bytes(o.model_name)
    padded = raw + b"\0" * (-len(raw) % 4)
    return (len(raw), *(int.from_bytes(padded[i:i + 4], "big") for i in range(0, len(padded), 4)))


def _name_words(w) -> int:
    return 1 + (min(w[0], MODEL_NAME_BYTES) + 3) // 4 if w else 1


def _unpack_name(w) -> dict:
    if w[0] > MODEL_NAME_BYTES:
        raise SaecodecError(f"saecodec cd_values: model name of {w[0]} bytes")
    raw = b"".join(int(v).to_bytes(4, "big") for v in w[1:])[:w[0]]
    return {"model_name": raw.decode("utf-8", errors="replace")} if raw else {}


def _pack_target(o: CodecOptions):
    return (0, 0, 0) if o.target_error is None else (1, *_f64_words(o.target_error))


def _unpack_target(w) -> dict:
    if w[0] not in (0, 1):
        raise SaecodecError(f"saecodec cd_values: unknown target_error kind {w[0]}")
    return {"target_error": _words_f64(w[1], w[2])} if w[0] else {}


# The options block of cd_values layout 2: (words, pack, unpack), appended in this order;
# words is a count, or a function of the remaining words for an entry that says its length.
_CD_OPTIONS = [(3, _pack_bound, _unpack_bound), (3, _pack_mask, _unpack_mask), (3, _pack_gate, _unpack_gate),
               (_name_words, _pack_name, _unpack_name), *ob.CD_ENTRIES, (3, _pack_target, _unpack_target)]
