"""numpy calls into the wavelet engine (c_wavelet/, ``saecodec.coding._wavelet``).

An :class:`Engine` is one prepared model of the engine: the lifting programs, quantiser
parameters, context weights and frozen tables, given as a dict of numpy arrays (the wavelet
family's ``engine_params()``; the keys are ``PARAMS``). It validates them once in C and
holds the prepared tables; every call after that is one C call on whole arrays (cffi
releases the GIL). Stream layout and semantics: docs/wavelet.md.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from ..errors import PayloadError, SaecodecError
from .compiled import extension

ffi, lib = extension("_wavelet", "wavelet engine")  # a failed C build: other modes still work

STEP_ONE = 32768  # the step index of the step 1.0: step(k) = 2^((k - STEP_ONE) / 256)
STEP_MAX = 65535
STEPS_PER_OCTAVE = 256
NFEAT = 10  # context features: W, N, NW, NE, WW, NN, P (parent), PN (its neighbours), S (siblings), SN
NSIGN = 729  # sign patterns: 3^6 of (W, N, NW, NE, parent, first sibling)
OPS = {"predict": 0, "update": 1, "scale_s": 2, "scale_d": 3}
_CORRUPT, _NOMEM, _ARG, _RANGE = -1, -2, -3, -4
MAX_BANDS = 1 + 3 * 16

# name -> (dtype, ndim or None for a scalar)
PARAMS = {
    "levels": (np.int32, None), "min_len": (np.int32, None), "level_rule": (np.int32, None),
    "prog_start": (np.int32, 1), "op_kind": (np.int32, 1), "op_off": (np.int32, 1), "op_ntaps": (np.int32, 1),
    "op_tap0": (np.int32, 1), "taps": (np.float64, 1), "prog_of": (np.int32, 2),
    "band_w": (np.float64, 2), "theta": (np.float64, 2), "delta": (np.float64, 2), "group_of": (np.int32, 2),
    "ll_pred": (np.int32, None), "ll_ctx": (np.int32, None), "ll_classes": (np.int32, None),
    "flut": (np.int32, 1), "ctx_w": (np.int32, 2), "bias": (np.int32, 1), "a_lo": (np.int32, 1),
    "a_shift": (np.int32, 1), "thresholds": (np.int32, 2), "amax": (np.int32, None),
    "tok_mode": (np.int32, None), "tok_direct": (np.int32, None), "eg_k": (np.int32, 1),
    "sign_ctx": (np.int32, None), "sign_freq": (np.uint32, 2),
    "zero_run": (np.int32, None), "zr_freq": (np.uint32, 2), "rdo_lambda": (np.float64, None),
    "prec": (np.int32, None), "freq": (np.uint32, 4),
    "adapt": (np.int32, None), "adapt_rate": (np.int32, None), "adapt_smax": (np.int32, None),
}


def step(k) -> np.ndarray | float:
    """The quantiser step of step index k (exactly the C table's value)."""
    if np.ndim(k):
        return np.array([lib.wl_step(int(v)) for v in np.ravel(k)]).reshape(np.shape(k))
    return lib.wl_step(int(k))


def step_index(d: float) -> int:
    """The nearest step index of a step d > 0 (clipped to the index range)."""
    return int(np.clip(np.rint(STEP_ONE + STEPS_PER_OCTAVE * np.log2(d)), 0, STEP_MAX))


def class_lut(thresholds: np.ndarray, a_lo: np.ndarray, a_shift: np.ndarray, amax: int) -> np.ndarray:
    """(G, amax + 1) uint8: entry i holds the class of context values a with
    max(a - a_lo, 0) >> a_shift = i: the number of the group's thresholds <= a (a threshold
    t counts for the entry when t <= a_lo + (i << a_shift), the entry's smallest a)."""
    i = np.arange(amax + 1, dtype=np.int64)
    out = []
    for t, lo, sh in zip(thresholds, a_lo, a_shift):
        a = int(lo) + (i << int(sh))
        out.append(np.searchsorted(np.sort(np.asarray(t, np.int64)), a, side="right"))
    return np.stack(out).astype(np.uint8)


def check_params(params: dict) -> dict:
    """The parameters as arrays of the engine's types and shapes; SaecodecError when one is missing."""
    out = {}
    for name, (dt, nd) in PARAMS.items():
        if name not in params:
            raise SaecodecError(f"wavelet engine parameter {name!r} is missing")
        v = np.asarray(params[name])
        if nd is None:
            if v.ndim:
                raise SaecodecError(f"wavelet engine parameter {name!r} must be a scalar")
            out[name] = float(v) if dt == np.float64 else int(v)
        else:
            if v.ndim != nd:
                raise SaecodecError(f"wavelet engine parameter {name!r} must have {nd} dimensions, got {v.shape}")
            out[name] = np.ascontiguousarray(v, dtype=dt)
    L = max(1, out["levels"])
    for name, cols in (("prog_of", 2), ("band_w", 4), ("theta", 4), ("delta", 4), ("group_of", 4)):
        if out[name].shape != (L, cols):
            raise SaecodecError(f"wavelet engine parameter {name!r} must have shape {(L, cols)}, got {out[name].shape}")
    S, G, C, T = out["freq"].shape
    if out["ctx_w"].shape != (G, NFEAT) or any(out[k].shape != (G,) for k in ("bias", "a_lo", "a_shift", "eg_k")) \
            or out["thresholds"].shape[0] != G or out["thresholds"].shape[1] > 255 \
            or (out["sign_ctx"] and out["sign_freq"].shape != (G, NSIGN)) \
            or (out["zero_run"] and out["zr_freq"].shape != (G, C)):
        raise SaecodecError("wavelet engine parameters: context arrays do not match the tables' groups")
    return out


class Engine:
    """A prepared engine model (validated in C once). ``params``: one parameter dict, or a list
    of them, one per context profile (everything but the context model shared): the encoder
    codes each frame with the profile that takes the fewest bits."""

    def __init__(self, params):
        if isinstance(params, (list, tuple)):
            profiles = [Engine(q) for q in params]
            self.__dict__.update({k: v for k, v in profiles[0].__dict__.items()})
            self.profiles = profiles  # the handles the base points to: alive as long as this engine
            if len(profiles) > 1:
                others = ffi.new("wl_model *[]", [e._m for e in profiles[1:]])
                rc = lib.wl_model_attach(profiles[0]._m, others, len(profiles) - 1)
                if rc:
                    raise SaecodecError("wavelet context profiles must share everything but the context model, "
                                        f"and be 2, 4, 8 or 16 (error {rc}, c_wavelet line {lib.wl_last_line()})")
            return
        p = check_params(params)
        self.params = p
        S, G, C, T = p["freq"].shape
        self.nsets, self.ngroups, self.nclasses, self.ntok = S, G, C, T
        lut = class_lut(p["thresholds"], p["a_lo"], p["a_shift"], p["amax"])
        keep = {k: v for k, v in p.items() if isinstance(v, np.ndarray)}
        keep["class_lut"] = lut
        self._arrays = keep  # alive while the C call copies them
        c = ffi.new("wl_params *")
        for name in ("levels", "min_len", "level_rule", "ll_pred", "ll_ctx", "ll_classes", "amax", "tok_mode",
                     "tok_direct", "sign_ctx", "zero_run", "prec", "adapt", "adapt_rate", "adapt_smax"):
            setattr(c, name, p[name])
        c.nprog = len(p["prog_start"]) - 1
        for name in ("prog_start", "op_kind", "op_off", "op_ntaps", "op_tap0", "prog_of", "group_of", "ctx_w",
                     "bias", "a_lo", "a_shift", "flut", "eg_k"):
            setattr(c, name, ffi.cast("const int32_t *", ffi.from_buffer(keep[name])))
        for name in ("taps", "band_w", "theta", "delta"):
            setattr(c, name, ffi.cast("const double *", ffi.from_buffer(keep[name])))
        c.ntaps_total = len(p["taps"])
        c.fmax = len(p["flut"]) - 1
        c.class_lut = ffi.cast("const uint8_t *", ffi.from_buffer(lut))
        c.freq = ffi.cast("const uint32_t *", ffi.from_buffer(keep["freq"]))
        sf = np.ascontiguousarray(keep["sign_freq"] if p["sign_ctx"] else np.zeros((G, NSIGN), np.uint32))
        keep["sign_freq"] = sf
        c.sign_freq = ffi.cast("const uint32_t *", ffi.from_buffer(sf))
        zf = np.ascontiguousarray(keep["zr_freq"] if p["zero_run"] else np.zeros((G, C), np.uint32))
        keep["zr_freq"] = zf
        c.zr_freq = ffi.cast("const uint32_t *", ffi.from_buffer(zf))
        c.ngroups, c.nclasses, c.ntok, c.nsets = G, C, T, S
        c.rdo_lambda = p["rdo_lambda"]
        handle = ffi.new("wl_model **")
        rc = lib.wl_model_new(c, handle)
        if rc:
            raise SaecodecError(f"wavelet engine parameters rejected (error {rc}, check at c_wavelet/wl_code.c "
                                f"line {lib.wl_last_line()})")
        self._m = ffi.gc(handle[0], lib.wl_model_free)
        del self._arrays

    # -- transform ----------------------------------------------------------------------------
    def levels(self, H: int, W: int) -> int:
        return int(lib.wl_levels(self._m, H, W))

    def bands(self, H: int, W: int) -> np.ndarray:
        """(n, 6) int32: level (from the finest), orientation (0 LL, 1 HL, 2 LH, 3 HH), y0, x0, h, w; coding order."""
        out = np.zeros((MAX_BANDS, 6), np.int32)
        n = lib.wl_bands(self._m, H, W, ffi.cast("int32_t *", ffi.from_buffer(out)), MAX_BANDS)
        self._check(n)
        return out[:n]

    def forward(self, x: np.ndarray) -> np.ndarray:
        c = np.array(x, dtype=np.float64, order="C", copy=True)
        self._check(lib.wl_forward(self._m, _dp(c), *c.shape))
        return c

    def inverse(self, c: np.ndarray) -> np.ndarray:
        x = np.array(c, dtype=np.float64, order="C", copy=True)
        self._check(lib.wl_inverse(self._m, _dp(x), *x.shape))
        return x

    def quantise(self, z: np.ndarray, k: int) -> np.ndarray:
        z = np.ascontiguousarray(z, dtype=np.float64)
        q = np.zeros(z.shape, np.int32)
        self._check(lib.wl_quantise(self._m, _dp(z), *z.shape, int(k), ffi.cast("int32_t *", ffi.from_buffer(q))))
        return q

    # -- coding --------------------------------------------------------------------------------
    def encode(self, z: np.ndarray, steps) -> tuple[bytes, np.ndarray, np.ndarray]:
        """Frames (B, H, W) at step indices (B,) -> (bytes, z_hat (B, H, W) float64, the steps
        used: a step too fine for a frame's values is raised to the finest that is not)."""
        z = np.ascontiguousarray(z, dtype=np.float64)
        B, H, W = z.shape
        st = _steps(steps, B)
        zhat = np.empty_like(z)
        out = ffi.new("uint8_t **")
        n = lib.wl_encode(self._m, _dp(z), B, H, W, ffi.cast("const int32_t *", ffi.from_buffer(st)), _dp(zhat), out)
        if n == _RANGE:  # rare: values far beyond the steps (raw intensities at a fine step)
            st = np.maximum(st, self.min_steps(z))
            n = lib.wl_encode(self._m, _dp(z), B, H, W, ffi.cast("const int32_t *", ffi.from_buffer(st)), _dp(zhat),
                              out)
        self._check(n)
        try:
            data = bytes(ffi.buffer(out[0], n))
        finally:
            lib.wl_free(out[0])
        return data, zhat, st

    def min_steps(self, z: np.ndarray) -> np.ndarray:
        """Per frame the finest step index whose quantised values stay below 2^29."""
        z = np.ascontiguousarray(z, dtype=np.float64)
        B, H, W = z.shape
        out = np.zeros(B, np.int32)
        self._check(lib.wl_min_steps(self._m, _dp(z), B, H, W, ffi.cast("int32_t *", ffi.from_buffer(out))))
        return out

    def decode(self, buf, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, int]:
        """(z_hat (B, H, W), the frames' step indices, bytes consumed) of the chunk's message at the
        start of ``buf``."""
        B, H, W = shape
        st = np.zeros(B, np.int32)
        zhat = np.empty((B, H, W), np.float64)
        mv = memoryview(buf).cast("B")
        src = ffi.from_buffer(mv) if len(mv) else ffi.new("uint8_t[1]")
        n = lib.wl_decode(self._m, ffi.cast("const uint8_t *", src), len(mv), B, H, W,
                          ffi.cast("int32_t *", ffi.from_buffer(st)), _dp(zhat))
        if n == _CORRUPT:
            raise PayloadError(f"corrupted payload: the wavelet section does not decode (c_wavelet line "
                               f"{lib.wl_last_line()})")
        self._check(n)
        return zhat, st, int(n)

    def decode_f32(self, buf, shape: tuple[int, int, int], fs: np.ndarray, fo: np.ndarray, ts: float, out=None):
        """(frames (B, H, W) float32, bytes consumed) of the chunk's message at the start of ``buf``,
        through the linear map of each frame f: u = z fs[f] + fo[f] (1 and 0 when None), times ts, the
        float32 nearest, clamped to its finite range, NaN 0: Transform.inverse, a linear transform's
        from_u and bound.cast in one pass per frame, the same operations, the same bits."""
        B, H, W = shape
        st = np.empty(B, np.int32)
        out = np.empty((B, H, W), np.float32) if out is None else out
        if fs is None:  # no per-frame scale or offset (the shipped models)
            fs, fo = _unit(B)
        else:
            fs = np.ascontiguousarray(fs, np.float64)
            fo = np.ascontiguousarray(fo, np.float64)
        src = ffi.from_buffer(buf) if len(buf) else ffi.new("uint8_t[1]")
        n = lib.wl_decode_to(self._m, src, len(buf), B, H, W, ffi.from_buffer("int32_t[]", st),
                             ffi.from_buffer(out), 1, _dp(fs), _dp(fo), float(ts), 0)
        if n == _CORRUPT:
            raise PayloadError(f"corrupted payload: the wavelet section does not decode (c_wavelet line "
                               f"{lib.wl_last_line()})")
        self._check(n)
        return out, int(n)

    def stats(self, z: np.ndarray, steps, per_frame: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Token counts ([B,] G, C, T: the tables are S-independent), detail sign counts by
        pattern (G, NSIGN, 2: +, -), zero-segment flags (G, C, 2: all zero, not) and the raw bits
        (escape / mantissa bits, raw signs) of frames."""
        z = np.ascontiguousarray(z, dtype=np.float64)
        B, H, W = z.shape
        st = _steps(steps, B)
        shape = ((B,) if per_frame else ()) + (self.ngroups, self.nclasses, self.ntok)
        counts = np.zeros(shape, np.int64)
        signs = np.zeros((self.ngroups, NSIGN, 2), np.int64)
        zruns = np.zeros((self.ngroups, self.nclasses, 2), np.int64)
        raw = np.zeros(1, np.int64)
        self._check(lib.wl_stats(self._m, _dp(z), B, H, W, ffi.cast("const int32_t *", ffi.from_buffer(st)),
                                 int(per_frame), ffi.cast("int64_t *", ffi.from_buffer(counts)),
                                 ffi.cast("int64_t *", ffi.from_buffer(signs)),
                                 ffi.cast("int64_t *", ffi.from_buffer(zruns)),
                                 ffi.cast("int64_t *", ffi.from_buffer(raw))))
        return counts, signs, zruns, int(raw[0])

    def features(self, z: np.ndarray, steps, maxn: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per detail coefficient (coding order): the NFEAT raw context features (before the
        feature table), |q| and the group; for fitting the context weights."""
        z = np.ascontiguousarray(z, dtype=np.float64)
        B, H, W = z.shape
        st = _steps(steps, B)
        n = B * H * W if maxn is None else int(maxn)
        feat = np.zeros((n, NFEAT), np.int32)
        mag = np.zeros(n, np.int32)
        grp = np.zeros(n, np.int32)
        got = lib.wl_features(self._m, _dp(z), B, H, W, ffi.cast("const int32_t *", ffi.from_buffer(st)),
                              ffi.cast("int32_t *", ffi.from_buffer(feat)), ffi.cast("int32_t *", ffi.from_buffer(mag)),
                              ffi.cast("int32_t *", ffi.from_buffer(grp)), n)
        self._check(got)
        return feat[:got], mag[:got], grp[:got]

    def search(self, z: np.ndarray, target, lo: int, hi: int) -> np.ndarray:
        """Per frame the largest step index in [lo, hi] whose rel L2 ||z_hat - z|| / ||z - mean z|| <= target."""
        z = np.ascontiguousarray(z, dtype=np.float64)
        B, H, W = z.shape
        t = np.ascontiguousarray(np.broadcast_to(np.asarray(target, np.float64), (B,)))
        out = np.zeros(B, np.int32)
        self._check(lib.wl_search_steps(self._m, _dp(z), B, H, W, ffi.cast("const double *", ffi.from_buffer(t)),
                                        int(lo), int(hi), ffi.cast("int32_t *", ffi.from_buffer(out))))
        return out

    @staticmethod
    def _check(rc) -> None:
        if rc >= 0:
            return
        line = lib.wl_last_line()
        if rc == _NOMEM:
            raise MemoryError("the wavelet engine ran out of memory")
        if rc == _RANGE:
            raise SaecodecError("the wavelet engine cannot quantise these values: a frame's values are beyond "
                                f"2^29 steps at the coarsest step (c_wavelet line {line})")
        raise SaecodecError(f"wavelet engine error {rc} (c_wavelet line {line})")


def fill_smooth(z: np.ndarray, masked: np.ndarray, sweeps: int) -> np.ndarray:
    """Encoder only: frames ``z`` (B, H, W) float32 with their ``masked`` pixels (B, H, W bool)
    set to a smooth fill of the valid ones (nearest valid value, then ``sweeps`` Gauss-Seidel
    sweeps of the 4-neighbour mean; c_wavelet/wl_fill.c). Returns a new array."""
    out = np.array(z, dtype=np.float32, order="C", copy=True)
    m = np.ascontiguousarray(masked, dtype=np.uint8)
    if out.ndim != 3 or m.shape != out.shape:
        raise SaecodecError(f"fill_smooth: frames {out.shape} and mask {m.shape} must be (B, H, W) alike")
    if out.size:
        Engine._check(lib.wl_fill_smooth(ffi.cast("float *", ffi.from_buffer(out)), ffi.from_buffer("uint8_t[]", m),
                                         *out.shape, int(sweeps)))
    return out


def radial_add(z: np.ndarray, cy: float, cx: float, h: float, k0: float, v: np.ndarray) -> None:
    """z (H, W) float64, C-contiguous, += the radial prediction of knots v (c_wavelet/wl_radial.c)."""
    v = np.ascontiguousarray(v, np.float64)
    if z.dtype != np.float64 or not z.flags.c_contiguous or z.ndim != 2 or len(v) < 2:
        raise SaecodecError("radial_add: a C-contiguous float64 frame and at least 2 knots")
    lib.wl_radial_add(ffi.cast("double *", ffi.from_buffer(z)), *z.shape, float(cy), float(cx), float(h), float(k0),
                      ffi.cast("const double *", ffi.from_buffer(v)), len(v))


_UNIT: dict = {}


def _unit(b: int) -> tuple[np.ndarray, np.ndarray]:
    """(ones, zeros) of b frames, kept (read-only) for the next chunk of as many."""
    hit = _UNIT.get(b)
    if hit is None:
        hit = (np.ones(b), np.zeros(b))
        for a in hit:
            a.setflags(write=False)
        if len(_UNIT) < 64:
            _UNIT[b] = hit
    return hit


def _dp(a: np.ndarray):
    return ffi.cast("double *", ffi.from_buffer(a))


def _steps(steps, B: int) -> np.ndarray:
    st = np.array(np.broadcast_to(np.asarray(steps, np.int64), (B,)), dtype=np.int32, copy=True)
    if len(st) and (st.min() < 0 or st.max() > STEP_MAX):
        raise SaecodecError(f"wavelet step indices must lie in 0 .. {STEP_MAX}")
    return st


_engines: OrderedDict = OrderedDict()
_lock = threading.Lock()


def engine_for(key, params_fn) -> Engine:
    """The prepared engine of a model (``key``: its identity), built once per process."""
    with _lock:
        hit = _engines.get(key)
        if hit is not None:
            _engines.move_to_end(key)
            return hit
    eng = Engine(params_fn())
    with _lock:
        _engines[key] = eng
        while len(_engines) > 8:
            _engines.popitem(last=False)
    return eng
