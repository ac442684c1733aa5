"""Chunk <-> payload: the pipeline shared by the numcodecs, zarr v3 and HDF5 codecs.

encode: masked pixels set aside and filled (coding.mask) -> frames (tiling) -> transform
        -> network (models.runtime) -> latent coder: section bytes and the latents the
        decoder will read (coding.latents) -> with an error bound, the residual against
        what the decoder reconstructs from them (bound); without one, the quality gate
        (gate) -> header + sections + checksum; a chunk that would grow is stored raw
        (coding.raw), as is a bounded 64-bit integer chunk that float64 cannot hold.
        The bounded modes run no network unless ``predictor="network"``: masked pixels
        found and the residual stream coded in C on the chunk as it is (the fast path).
decode: the same backwards; needs only the payload, and the model only when the payload
        runs its network: a bounded or lossless payload without latents or quality gate
        (every payload of the model-free codec, ``model`` None) decodes with numpy and the
        compiled coder alone, so a codec passes its model as a function called on need.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import bound, gate, tiling
from .coding import latents, quant, raw
from .coding import mask as masks
from .coding import payload as fmt
from .errors import ModelMismatchError, PayloadError, SaecodecError
from .models import runtime
from .models.model import Model
from .options import DEFAULT_MAX_ERROR, CodecOptions

_SUPPORTED = {np.dtype(fmt.DTYPES[c]).newbyteorder("=") for c in fmt.DTYPES}


def check_input(arr) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim < 2:
        raise SaecodecError(
            f"saecodec compresses 2D frames: a chunk needs at least 2 dimensions, got shape {arr.shape}"
        )
    if arr.ndim > fmt.MAX_NDIM:
        raise SaecodecError(f"saecodec stores chunks of at most {fmt.MAX_NDIM} dimensions, got {arr.ndim}")
    if arr.dtype.newbyteorder("=") not in _SUPPORTED:
        raise SaecodecError(
            f"saecodec cannot store dtype {arr.dtype}; use float16/32/64 or (unsigned) integers"
        )
    return arr


def encode_chunk(model: Model | None, arr, options: CodecOptions | None = None, *, mask=None, device=None,
                 codings=bound.CODINGS, **settings) -> bytes:
    """One chunk -> payload, with the codec's ``options`` or their ``settings`` as keywords.
    ``model`` None: the model-free codec (the bounded and lossless modes; model check 0,
    the 2D plane as tile).

    ``error_bound`` with ``bound_mode`` (abs, rel, pwrel, poisson: ``saecodec.bound``)
    guarantees its bound for every element; without it the payload is the pure
    autoencoder, under the quality gate ``max_error`` (default ``DEFAULT_MAX_ERROR``; None:
    off). NaN, +-inf, ``mask_values``, ``mask_below`` and ``mask`` pixels (the options'
    and this call's boolean ``mask``) come back exactly.
    ``codings`` narrows the residual codings a plane may use (``bound.MODE_*``).
    """
    with runtime.reproducible():  # the same chunk gives the same bytes, whatever the thread count
        return _encode(model, arr, options, mask, device, codings, settings)


def _encode(model, arr, options, mask, device, codings, settings) -> bytes:
    if options is None:
        settings.setdefault("max_error", DEFAULT_MAX_ERROR)
    identity = None if model is None else model.freeze()
    opts = options if options is not None else CodecOptions.create(identity, **settings)
    if opts.model != identity:
        raise SaecodecError(f"the codec options name model {opts.model}, not "
                            + ("none" if model is None else f"{model.name!r} ({identity})"))
    arr = check_input(arr)
    fortran = arr.flags.f_contiguous and not arr.flags.c_contiguous
    c = np.ascontiguousarray(arr)
    ext = fmt.EXT_BIG_ENDIAN if c.dtype.str[0] == ">" else 0
    if not c.dtype.isnative:  # everything below sees native values; decode restores the order
        c = c.astype(c.dtype.newbyteorder("="))
    head = dict(model_check=fmt.model_check(identity), dtype=c.dtype, latent_code=0, shape=tuple(c.shape),
                tile=tiling.whole(c.shape), ext=ext)
    flags = fmt.FLAG_FORTRAN if fortran else 0
    if model is not None:  # the header names the model's tile and latent kind, as every reader expects
        coder = latents.coder_for(model, quant.latent_code(opts.latent_dtype), level=opts.level,
                                  target_error=opts.target_error, net=lambda: runtime.HyperNet(model, device))
        head.update(latent_code=coder.value_code, tile=model.tile_for(c.shape))
        flags |= coder.kind_code
    if not c.size:
        return _raw_payload(flags, head, c)
    if opts.error_bound is not None and not _runs_network(opts, c):
        return _encode_bounded(c, opts, mask, flags, head)
    tile = head["tile"]
    masked = masks.find(c, opts, mask)
    if opts.error_bound is not None and _beyond_float64(c, masked):
        return _raw_payload(flags, head, c)  # float64 would round it
    filled = masks.fill(c.reshape(_plane_shape(c.shape)), masked.reshape(_plane_shape(c.shape)))
    z, side = model.transform.forward(tiling.split(filled.reshape(c.shape), tile))
    if masked.any() and hasattr(model.module, "fill_masked"):  # a family's own fill, in its domain
        z = model.module.fill_masked(z, tiling.split(masked.reshape(c.shape), tile))
    del filled  # 8 bytes per element, not needed again
    lat = runtime.encode(model, z, tile, device)
    steps = _bound_steps(model, coder, c, masked, opts, tile, side)
    if steps is None:
        return _code_latents(model, c, opts, device, codings, coder, tile, masked, z, side, lat, flags, head)
    out = None
    for k in steps:  # the wavelet prediction's step chosen from the bound: the smallest payload
        coder.frame_steps = k
        p = _code_latents(model, c, opts, device, codings, coder, tile, masked, z, side, lat, flags, dict(head))
        out = p if out is None or len(p) < len(out) else out
    return out


def _bound_steps(model, coder, c: np.ndarray, masked: np.ndarray, opts: CodecOptions, tile, side) -> list | None:
    """The bounded modes with a prediction whose coder sets its own step (the wavelet family),
    no level or target_error given: the candidate steps per frame, from the bound (None: code
    at the coder's own rate). A prediction as fine as the bound leaves a residual of noise to
    code; one much coarser leaves most of the frame to the residual; the research measured
    the best step at 2-2.5x the bound (abs 1e-2) to 5-6x (1e-3) in the model's domain (docs/wavelet.md)."""
    factors = getattr(coder, "BOUND_STEP_FACTORS", None)
    if not factors or opts.error_bound is None or opts.level is not None or opts.target_error is not None:
        return None
    frames = tiling.split(c, tile).astype(np.float64)
    valid = ~tiling.split(masked.reshape(c.shape), tile)
    eb = float(opts.error_bound)
    if opts.bound_mode == "rel":
        eb *= float(np.ptp(frames[valid])) if valid.any() else 0.0
    du = bound_in_model_domain(model.transform, frames, valid, "pwrel" if opts.bound_mode == "pwrel" else "abs", eb)
    du = du / np.abs(np.asarray(side, np.float64)[:, 1])  # the coder's units (per-frame scale)
    if not (np.isfinite(du).all() and (du > 0).all()):
        return None
    return [f * du for f in factors]


def bound_in_model_domain(transform, frames: np.ndarray, valid: np.ndarray, mode: str, eb: float) -> np.ndarray:
    """Per frame (B, h, w), the median over its valid pixels of how far a pointwise bound lets
    a pixel's value move in the model's domain u: to_u(|x| + e) - to_u(|x|), e = eb (abs) or
    eb |x| (pwrel)."""
    out = np.zeros(len(frames))
    with np.errstate(over="ignore", invalid="ignore"):
        for i, (f, v) in enumerate(zip(frames, valid)):
            x = np.abs(f[v])
            if x.size:
                e = eb if mode == "abs" else eb * x
                out[i] = np.median(transform.to_u(x + e) - transform.to_u(x))
    return out


def _code_latents(model, c, opts, device, codings, coder, tile, masked, z, side, lat, flags, head) -> bytes:
    """The payload of a chunk whose frames the model codes: latents, the quality gate or the
    residual, the mask."""
    section, seen, seen_side = coder.write(lat, side)
    gated = opts.error_bound is None and opts.max_error is not None
    z_dec = runtime.decode(model, seen, tile, device) if gated or opts.error_bound is not None else None
    if gated and hasattr(coder, "refine"):  # the target met by finer steps where a frame misses it: no gate
        section, seen, seen_side, z_dec, gated = _refined(model, coder, c, masked, tile, opts, lat, side, z,
                                                          (section, seen, seen_side, z_dec), device)

    body, gate_block = bytearray(), b""
    if gated:
        head["ext"] |= fmt.EXT_GATE
        frames, valid = tiling.split(c, tile), gate.valid_frames(masked, c.shape, tile)
        a = gate.assess(model, frames, valid, z, z_dec, seen_side, opts.max_error)
        section, every = _kept_latents(coder, lat, side, ~a.fallback, section, seen)
        gate_block = gate.write(a, model, frames, valid, every, codings)
        if section is None:
            flags |= fmt.FLAG_NO_LATENTS
    if masked.any():
        flags |= fmt.FLAG_MASK
        masks.write(body, c, masked)
    if opts.error_bound is not None:
        flags |= fmt.FLAG_RESIDUAL
        y = tiling.join(model.transform.inverse(z_dec, seen_side, tile), c.shape, tile)
        if not _write_residual(body, model, c, masked, opts, y, z_dec, seen_side, tile, len(section), codings):
            flags |= fmt.FLAG_NO_LATENTS
    if getattr(coder, "radial_block", False) and not flags & fmt.FLAG_NO_LATENTS:
        head["ext"] |= fmt.EXT_RADIAL  # the latent section starts with its radial prediction block
    header = fmt.Header(flags, **head).pack()
    out = header + gate_block + (b"" if flags & fmt.FLAG_NO_LATENTS else section) + body
    if len(out) > len(header) + raw.OVERHEAD + c.nbytes:  # the lossless chunk is smaller
        return _raw_payload(flags, head, c)
    return fmt.seal(out)


def _refined(model, coder, c, masked, tile, opts, lat, side, z, coded, device) -> tuple:
    """The pure mode of a coder whose decoder reconstructs exactly what its encoder computed (the
    wavelet family) meets ``max_error`` without the quality gate: each frame the gate would send to
    the bounded coding is coded again at a finer step (``coder.refine``), until every frame meets
    the target as the gate measures it (the decoder's cast included). Returns (section, latents,
    side, decoded network output, whether the gate is still needed: a frame that no step helps).
    A coder with ``recode`` (per-frame z_hat) re-codes and re-measures only the missed frames
    and writes the chunk's message once at the end."""
    frames, valid = tiling.split(c, tile), gate.valid_frames(masked, c.shape, tile)
    section, seen, seen_side, z_dec = coded
    if not hasattr(coder, "recode"):
        for attempt in range(8):
            miss = gate.assess(model, frames, valid, z, z_dec, seen_side, opts.max_error).fallback
            if not miss.any():
                return section, seen, seen_side, z_dec, False
            if not coder.refine(miss, attempt):
                break
            section, seen, seen_side = coder.write(lat, side)
            z_dec = runtime.decode(model, seen, tile, device)
        return section, seen, seen_side, z_dec, True
    seen, z_dec = np.array(seen), np.array(z_dec)
    redone = False
    for attempt in range(8):
        miss = gate.assess(model, frames, valid, z, z_dec, seen_side, opts.max_error).fallback
        if not miss.any():
            break
        if not coder.refine(miss, attempt):
            break
        idx = np.flatnonzero(miss)
        seen[idx] = coder.recode(lat, miss)
        z_dec[idx] = runtime.decode(model, seen[idx], tile, device)
        redone = True
    else:
        miss = np.ones(1, bool)  # the last try is not measured here: the gate measures it
    if redone:
        spliced = seen
        section, seen, seen_side = coder.write(lat, side)
        z_dec = runtime.decode(model, seen, tile, device)
        if not np.array_equal(seen, spliced, equal_nan=True):  # never expected: the gate measures the chunk as written
            miss = np.ones(1, bool)
    return section, seen, seen_side, z_dec, bool(miss.any())


def _runs_network(opts: CodecOptions, c: np.ndarray) -> bool:
    """The bounded modes code against the network only when asked to, where it can serve."""
    return opts.predictor == "network" and (opts.bound_mode in ("abs", "rel")
                                            or (opts.bound_mode == "pwrel" and c.dtype.kind == "f"))


def _encode_bounded(c: np.ndarray, opts: CodecOptions, mask, flags: int, head: dict) -> bytes:
    """The bounded modes without the network: no float64 copy, no boolean mask, all in C."""
    bits, count = masks.find_bits(c, opts, mask)
    mode, eb = bound.stream_mode(opts.bound_mode, opts.error_bound, c, bits)
    if mode == "abs" and c.dtype.kind == "f" and not eb > 0:
        return _raw_payload(flags, head, c)  # lossless floats: nothing to quantise
    out = fmt.Header(flags | fmt.FLAG_NO_LATENTS | fmt.FLAG_RESIDUAL | (fmt.FLAG_MASK if count else 0), **head).pack()
    start = len(out)
    if count:
        masks.write_bits(out, c, bits, count)
    bound.write_stream(out, c, mode, eb, bits)
    if len(out) - start > raw.OVERHEAD + c.nbytes:  # the lossless chunk is smaller
        return _raw_payload(flags, head, c)
    return fmt.seal(out)


def _raw_payload(flags: int, head: dict, c: np.ndarray) -> bytes:
    out = fmt.Header((flags & (fmt.FLAG_FORTRAN | 0b11)) | fmt.FLAG_RAW,
                     **{**head, "ext": head["ext"] & fmt.EXT_BIG_ENDIAN}).pack()
    raw.write(out, c)
    return fmt.seal(out)


def _beyond_float64(c: np.ndarray, masked: np.ndarray) -> bool:
    """A 64-bit integer chunk with values float64 does not hold exactly: the bounded coding
    computes in float64, so such a chunk is stored losslessly."""
    if c.dtype.kind not in "iu" or c.dtype.itemsize < 8 or not c.size:
        return False
    lim = np.array(1 << 53, c.dtype)
    return bool(((c > lim) | (c < -lim if c.dtype.kind == "i" else False))[~masked].any())


def _kept_latents(coder, lat, side, keep, section, seen) -> tuple[bytes | None, bool]:
    """The latent section to store once the quality gate kept the frames ``keep``, and whether
    it holds every frame's latents. The fallback frames' latents are dropped (their coding
    does not use the network): a section is one range-coded message, so the kept frames are
    coded anew, the one case where frames are coded twice; a coder whose frames depend on
    each other (the kept frames would read back other latents) keeps every frame's."""
    if keep.all():
        return section, True
    if not keep.any():
        return None, False
    if hasattr(coder, "select"):  # per-frame steps (the wavelet coder): the kept frames' own
        coder.select(keep)
    kept, kept_lat, _ = coder.write(lat[keep], side[keep])
    if not np.array_equal(kept_lat, seen[keep]):
        return section, True
    return kept, False


def _plane_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(number of 2D planes, H, W) of a chunk: the residual's unit, a frame to the user."""
    return (math.prod(shape[:-2]),) + tuple(shape[-2:])


def _reconstruct(model: Model, lat: np.ndarray, side: np.ndarray, shape, tile, device) -> np.ndarray:
    """Latents -> network decoder -> inverse transform: the chunk in float64."""
    z = runtime.decode(model, lat, tile, device)
    return tiling.join(model.transform.inverse(z, side, tile), shape, tile)


def _write_residual(out: bytearray, model: Model, c: np.ndarray, masked: np.ndarray, opts: CodecOptions,
                    y: np.ndarray, z: np.ndarray, side: np.ndarray, tile, latent_bytes: int, codings) -> bool:
    """The residual section against the decoder's reconstruction ``y`` (from the network's
    output ``z``); whether it uses it."""
    planes = _plane_shape(c.shape)
    guard = model.transform.sensitivity(z, side, bound.net_tolerance(model)).reshape((-1,) + tile)
    guard = tiling.join(guard, c.shape, tile).reshape(planes)
    return bound.write_network(out, c.reshape(planes), masked.reshape(planes), opts.bound_mode, opts.error_bound,
                               y.reshape(planes), guard, latent_bytes, codings)


class _Parts(NamedTuple):
    raw: np.ndarray | None = None  # the lossless chunk
    latents: tuple | None = None  # (latents, side)
    mask: tuple | None = None  # (masked positions as packed bits, their values)
    residual: dict | None = None  # bound.read_section
    gate: gate.Gate | None = None  # the quality gate (pure mode)
    final: np.ndarray | None = None  # the frames (B, th, tw) in the element type: a coder decoded them to the end


def needs_network(h: fmt.Header) -> bool:
    """Whether a payload runs the model's network (or its transform: the quality gate's
    fallbacks are coded in its domain): latents, or a quality gate."""
    return not h.flags & fmt.FLAG_RAW and (not h.flags & fmt.FLAG_NO_LATENTS or bool(h.ext & fmt.EXT_GATE))


def _network(model, h: fmt.Header) -> Model:
    """The model a payload that needs one was written with: ``model`` itself, or what the
    codec's function loads; its identity checked against the payload's model check."""
    if model is None:
        raise ModelMismatchError(f"payload was written with a model whose identity starts with "
                                 f"{h.model_check.hex()} and needs its network, but the codec has no model")
    model = model() if callable(model) else model
    if h.model_check != fmt.model_check(model.freeze()):
        raise ModelMismatchError(
            f"payload was written with a model whose identity starts with {h.model_check.hex()}, "
            f"but the codec's model {model.name!r} is {model.identity}"
        )
    return model


def _read_payload(model, buf, device=None, expect: fmt.Expect | None = None
                  ) -> tuple[fmt.Header, _Parts, Model | None]:
    """Header and every section, checked against the container's chunk (``expect``), the
    payload's end and, when the payload needs it, the model (``model``: a Model, None, or a
    function loading it on need); runs no network but a hyperprior coder's (h_s decides y's
    tables). Returns the model it used."""
    reader = fmt.Reader(buf)
    h = fmt.Header.unpack(reader)
    if expect is not None:
        expect.check(h)
    model = _network(model, h) if needs_network(h) else None
    if h.flags & fmt.FLAG_RAW:
        parts = _Parts(raw=raw.read(reader, h.shape, h.dtype))
    else:
        if model is not None and h.tile != model.tile_for(h.shape):
            raise PayloadError(f"corrupted payload: tile {h.tile} differs from the model's {model.tile_for(h.shape)}")
        kind = None if model is None else latents.CODERS.get(model.latent_kind)
        if model is not None and (kind is None or h.latent_kind != kind.kind_code):
            raise PayloadError(f"corrupted payload: latent kind {h.latent_kind} is not the model's {model.latent_kind!r}")
        has_latents = not h.flags & fmt.FLAG_NO_LATENTS
        planes, ny, nx = tiling.grid(h.shape, h.tile)
        frames = planes * ny * nx
        g = None
        if h.ext & fmt.EXT_GATE:
            if h.flags & fmt.FLAG_RESIDUAL:
                raise PayloadError("corrupted payload: a quality gate in an error-bounded payload")
            g = gate.read(reader, frames, h.tile, h.dtype, h.version)
            frames = int(g.latent_frames.sum())
            if has_latents != bool(frames):
                raise PayloadError("corrupted payload: the quality gate and the latent flag disagree")
        elif not has_latents and not h.flags & fmt.FLAG_RESIDUAL:
            raise PayloadError("corrupted payload: neither latents nor residual")
        coder = latents.coder_for(model, h.latent_code, net=lambda: runtime.HyperNet(model, device)) \
            if has_latents else None
        if h.ext & fmt.EXT_RADIAL and not hasattr(coder, "radial_block"):
            raise PayloadError("corrupted payload: a radial prediction block without wavelet latents")
        if hasattr(coder, "radial_block"):
            coder.radial_block = bool(h.ext & fmt.EXT_RADIAL)
        final = None
        if has_latents and g is None and not h.flags & fmt.FLAG_RESIDUAL and hasattr(coder, "read_final"):
            final = coder.read_final(reader, frames, h.tile, h.dtype, model.transform)  # one pass, or None
        lat = coder.read(reader, frames, h.tile) if has_latents and final is None else None
        mask = masks.read_bits(reader, h.shape, h.dtype) if h.flags & fmt.FLAG_MASK else None
        residual = None
        if h.flags & fmt.FLAG_RESIDUAL:
            p, hh, ww = _plane_shape(h.shape)
            residual = bound.read_section(reader, p, (hh, ww), h.dtype, has_latents, h.version)
        parts = _Parts(latents=lat, mask=mask, residual=residual, gate=g, final=final)
    if reader.remaining():
        raise PayloadError(f"corrupted payload: {reader.remaining()} unexpected trailing bytes")
    return h, parts, model


def decode_chunk(model, buf, *, device=None, expect: fmt.Expect | None = None) -> np.ndarray:
    """Payload -> chunk. ``model``: the Model, None (the model-free codec), or a function
    returning the Model, called only for a payload that runs its network; ``expect``: what
    the container says the chunk is (checked before anything is decoded)."""
    h, parts, model = _read_payload(model, buf, device, expect)
    if parts.raw is not None:
        return _order(parts.raw, h)
    if parts.final is not None:
        out = tiling.join(parts.final, h.shape, h.tile)
    elif parts.gate is not None:
        lat, side = parts.latents if parts.latents is not None else (None, None)
        z = None if lat is None else runtime.decode(model, lat, h.tile, device)
        out = tiling.join(gate.apply(parts.gate, model, z, side, h.tile, h.dtype), h.shape, h.tile)
    else:
        y = None if parts.latents is None else _reconstruct(model, *parts.latents, h.shape, h.tile, device)
        if parts.residual is not None:
            planes = _plane_shape(h.shape)
            skip = parts.mask[0] if parts.mask is not None and parts.residual["version"] >= 3 else None
            out = bound.reconstruct(parts.residual, None if y is None else y.reshape(planes), planes, h.dtype,
                                    mask=skip)
            out = out.reshape(h.shape)
        else:
            out = bound.cast(y, h.dtype)
    if parts.mask is not None:
        out = np.ascontiguousarray(out)
        masks.restore(out, *parts.mask)
    return _order(out, h)


def _order(out: np.ndarray, h: fmt.Header) -> np.ndarray:
    if h.ext & fmt.EXT_BIG_ENDIAN:
        out = out.astype(out.dtype.newbyteorder(">"))
    return np.asfortranarray(out) if h.flags & fmt.FLAG_FORTRAN else out


def plane_modes(model, buf) -> np.ndarray | None:
    """Per 2D plane, the residual coding the encoder chose (``bound.MODE_*``); None without a bound."""
    _, parts, _ = _read_payload(model, buf)
    return None if parts.residual is None else bound.plane_modes(parts.residual)


def payload_stats(buf) -> dict:
    """Frames, the frames the quality gate coded in the bounded mode instead (``fallback_frames``)
    and, for sparse latents, the stored nonzeros (the L1 paper's n / nnz ratio) of a payload."""
    reader = fmt.Reader(buf)
    size = len(reader.buf)
    h = fmt.Header.unpack(reader)
    planes, ny, nx = tiling.grid(h.shape, h.tile)
    frames = coded = planes * ny * nx
    fallbacks = 0
    if h.ext & fmt.EXT_GATE:
        g = gate.read(reader, frames, h.tile, h.dtype, h.version)
        fallbacks, coded = int(g.fallback.sum()), int(g.latent_frames.sum())
    has_latents = not h.flags & (fmt.FLAG_RAW | fmt.FLAG_NO_LATENTS)
    nnz = reader.varint() - coded if has_latents and h.latent_kind == fmt.LATENT_SPARSE else None
    return {"frames": frames, "nnz": nnz, "bytes": size, "raw_chunk": bool(h.flags & fmt.FLAG_RAW),
            "latents": has_latents, "latent_frames": coded if has_latents else 0, "fallback_frames": fallbacks,
            "version": h.version}


def fallback_frames(payload) -> int:
    """How many frames of a chunk the pure mode's quality gate coded in the bounded mode instead
    (0 for payloads without the gate: bounded, lossless, or written before it existed)."""
    reader = fmt.Reader(payload)
    h = fmt.Header.unpack(reader)
    if not h.ext & fmt.EXT_GATE or h.flags & fmt.FLAG_RAW:
        return 0
    return gate.fallback_count(reader)
