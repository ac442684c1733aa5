"""The wavelet family: a lifting wavelet transform with a learned entropy model, coded in C.

Why: on 2 CPU cores a fixed CDF 9/7 wavelet with trained context tables already beats the
deep convolutional transform (issue #19's probe): learning pays in the entropy model and
in light lifting steps that start from a good wavelet, and a compiled transform decodes at
classical-codec speed.

The family holds no torch network. Its "network" is the identity on the transformed
frames; the latent coder (``coding/wavelet.py``) does the lifting, quantisation and
context coding in C (c_wavelet/) and returns the frames the decoder will reconstruct
(docs/seams.md, section 3). Everything the engine decides is data here: the lifting
programs (CDF 9/7 plus optional learned steps), per-band step weights and deadzone
offsets, the context weights, caps and class thresholds, the frozen integer frequency
tables (one or more table sets), the adaptive-count parameters and the rate levels. The
model file is ``safetensors.numpy``: float64 and int32 arrays kept exactly.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import SaecodecError

# JPEG 2000's irreversible CDF 9/7 lifting factors; the scales make the subbands those of
# PyWavelets' bior4.4 up to the high band's sign (near-orthonormal: the low band's DC gain
# and the high band's Nyquist gain are sqrt(2)), so one step D costs about the same pixel MSE
# in every band; the sign is the research prototypes' (benchmarks/wavelet_research).
CDF97 = {"alpha": -1.586134342059924, "beta": -0.052980118572961, "gamma": 0.882911075530934,
         "delta": 0.443506852043971, "K": 1.230174104914001}
OP_NAMES = ("predict", "update", "scale_s", "scale_d")
NTERMS = 9  # W, N, NW, NE, WW, NN, parent, sibling 1, sibling 2
LL_PREDICTORS = ("none", "avg", "med")
MAX_FILE_BYTES = 4 << 20


def cdf97_program(extra=()) -> tuple[list, list]:
    """(ops, taps) of CDF 9/7: ops are [name, offset, ntaps]; ``extra`` appends learned steps
    as (name, offset, taps) after the scaling."""
    a = CDF97
    k = a["K"]
    ops = [("predict", 0, [a["alpha"]] * 2), ("update", -1, [a["beta"]] * 2), ("predict", 0, [a["gamma"]] * 2),
           ("update", -1, [a["delta"]] * 2), ("scale_s", 0, [math.sqrt(2.0) / k]), ("scale_d", 0, [k / math.sqrt(2.0)])]
    ops += [(n, int(o), [float(t) for t in taps]) for n, o, taps in extra]
    return [[n, o, len(t)] for n, o, t in ops], [t for _, _, taps in ops for t in taps]


def _default_groups(levels: int) -> list:
    """Group 0 for the LL band; one group per (level from the finest, capped at 5; orientation)."""
    L = max(levels, 1)
    return [[0] + [1 + 3 * (min(lv, 4)) + o for o in range(3)] for lv in range(L)]


def log_features(fmax: int = 4095) -> np.ndarray:
    """The default feature table: round(16 log2(1 + x)), x = 0 .. fmax."""
    return np.round(16 * np.log2(1 + np.arange(fmax + 1))).astype(np.int32)


TOKENS = ("escape", "hybrid")
SIGNS = ("raw", "context")
LL_CONTEXTS = ("features", "grad")


ADAPT = {"rate": 32, "smax": 7}  # the adaptive decisions' default (measured: docs/wavelet.md "Adaptive")
FILL_SWEEPS = 32  # the harmonic fill of masked pixels (research Revision 3 item 3; 20 give all its gain)


def hybrid_tokens(direct: int) -> int:
    """Tokens the hybrid scheme needs for every |v| < 2^31."""
    return direct + 2 * (31 - int(np.log2(direct)))


class WaveletModule:
    """The family's parameters (numpy); ``encode``/``decode`` are the identity on frames."""

    family = "wavelet"
    latent_kind = "wavelet"
    uses_torch = False
    deterministic = True  # every decoder reconstructs the encoder's z_hat bit for bit (no network guard)
    codes_offset = True  # each frame's level is coded (the LL band): a domain shifted by a constant is fine

    ARCH_KEYS = ("levels", "min_len", "level_rule", "programs", "prog_of", "groups", "nclasses", "ntok", "amax",
                 "fmax", "prec", "nsets", "ll_pred", "ll_ctx", "ll_classes", "tokens", "tok_direct", "signs",
                 "zero_run", "rdo_lambda", "adapt", "rate_levels")

    def __init__(self, levels: int = 6, min_len: int = 8, level_rule: int = 1, programs=None, prog_of=None,
                 groups=None, nclasses: int = 32, ntok: int = 72, amax: int = 4095, fmax: int = 4095, prec: int = 15,
                 nsets: int = 1, ll_pred: str = "med", ll_ctx: str = "grad", ll_classes: int = 12,
                 tokens: str = "hybrid", tok_direct: int = 16, signs: str = "context", zero_run: int = 16,
                 rdo_lambda: float = 0.0, adapt: dict | None = None, rate_levels: int = 6, profiles: int = 1,
                 fill_sweeps: int = FILL_SWEEPS, radial: dict | None = None):
        if not 0 <= int(levels) <= 16 or int(min_len) < 2 or int(level_rule) not in (0, 1):
            raise SaecodecError(f"wavelet: levels must be 0..16, min_len >= 2, level_rule 0 or 1; got {levels}, "
                                f"{min_len}, {level_rule}")
        self.levels, self.min_len, self.level_rule = int(levels), int(min_len), int(level_rule)
        L = max(self.levels, 1)
        if programs is None:
            programs = [cdf97_program()[0]]
        self.programs = [[[str(n), int(o), int(t)] for n, o, t in prog] for prog in programs]
        for prog in self.programs:
            for n, _, t in prog:
                if n not in OP_NAMES or t < 1:
                    raise SaecodecError(f"wavelet: bad lifting operation {n!r} with {t} taps")
        self.prog_of = [[int(a), int(b)] for a, b in (prog_of or [[0, 0]] * L)]
        self.groups = [[int(g) for g in row] for row in (groups or _default_groups(self.levels))]
        if len(self.prog_of) != L or len(self.groups) != L or any(len(r) != 4 for r in self.groups):
            raise SaecodecError(f"wavelet: prog_of and groups need {L} rows (groups: 4 columns)")
        self.ngroups = 1 + max(g for row in self.groups for g in row)
        self.nclasses, self.ntok, self.amax, self.fmax, self.prec = (int(nclasses), int(ntok), int(amax), int(fmax),
                                                                     int(prec))
        self.nsets, self.rate_levels = int(nsets), int(rate_levels)
        # the engine's limits (c_wavelet/wl.h), checked before any array is made (a model file's
        # architecture decides the arrays' sizes)
        if (min(g for row in self.groups for g in row) < 0 or self.ngroups > 64 or not 1 <= self.nclasses <= 64
                or not 2 <= self.ntok <= 128 or not 0 <= self.amax <= 65535 or not 0 <= self.fmax <= 65535
                or not 10 <= self.prec <= 16 or self.nsets not in (1, 2, 4, 8, 16) or not 1 <= self.rate_levels <= 1024
                or sum(t for prog in self.programs for _, _, t in prog) > 4096 or len(self.programs) > 64):
            raise SaecodecError("wavelet: architecture beyond the engine's limits (groups <= 64, classes 1..64, tokens "
                                "2..128, amax and fmax <= 65535, prec 10..16, sets 1..16, <= 4096 lifting taps)")
        for name, value, allowed in (("ll_pred", ll_pred, LL_PREDICTORS), ("ll_ctx", ll_ctx, LL_CONTEXTS),
                                     ("tokens", tokens, TOKENS), ("signs", signs, SIGNS)):
            if value not in allowed:
                raise SaecodecError(f"wavelet: {name} must be one of {allowed}, got {value!r}")
        self.ll_pred, self.ll_ctx, self.ll_classes = ll_pred, ll_ctx, int(ll_classes)
        if ll_ctx == "grad" and not 1 <= self.ll_classes <= self.nclasses:
            raise SaecodecError(f"wavelet: ll_classes must be 1 .. nclasses ({self.nclasses}), got {ll_classes}")
        self.tokens, self.tok_direct, self.signs = tokens, int(tok_direct), signs
        self.zero_run = int(zero_run)
        self.rdo_lambda = float(rdo_lambda)  # encoder only: rate-distortion optimised quantisation (0: off)
        if not 0 <= self.rdo_lambda < 1e6:
            raise SaecodecError(f"wavelet: rdo_lambda must be >= 0, got {rdo_lambda}")
        if self.zero_run and not 2 <= self.zero_run <= 64:
            raise SaecodecError(f"wavelet: zero_run must be 0 (off) or 2..64, got {zero_run}")
        if tokens == "hybrid" and self.ntok < hybrid_tokens(self.tok_direct):
            raise SaecodecError(f"wavelet: hybrid tokens with direct {tok_direct} need ntok >= "
                                f"{hybrid_tokens(self.tok_direct)}")
        # adaptive decisions (docs/wavelet.md "Adaptive"): {"rate": prior strength A, "smax": the
        # slowest rate shift}; A = 32 is the research's p = (n_k + A p0_k) / (n + A)
        if adapt is not None and (set(adapt) - {"rate", "smax"} or not 0 <= int(adapt.get("rate", ADAPT["rate"])) <= 254
                                  or not 1 <= int(adapt.get("smax", ADAPT["smax"])) <= 15):
            raise SaecodecError(f"wavelet: adapt takes rate (0..254) and smax (1..15), got {adapt} (a model of an "
                                "earlier engine: retrain it)")
        self.adapt = None if adapt is None else {k: int(adapt.get(k, v)) for k, v in ADAPT.items()}
        if self.rate_levels < 1:
            raise SaecodecError("wavelet: at least one rate level")
        self.profiles = int(profiles)
        if self.profiles not in (1, 2, 4, 8, 16):
            raise SaecodecError(f"wavelet: profiles must be 1, 2, 4, 8 or 16, got {profiles}")
        # encoder only: masked pixels filled smoothly (nearest valid value, then this many
        # Gauss-Seidel sweeps of the 4-neighbour mean; 0: the package's plane-median fill)
        # encoder only: each frame may be predicted by a radial profile around its beam centre
        # (coding/radial.py): knots every h16 / 16 px, values quantised at the step / 2^cfac
        if radial is not None and (set(radial) - {"h16", "cfac"} or not 1 <= int(radial.get("h16", 0)) <= 255
                                   or not 0 <= int(radial.get("cfac", -1)) <= 8):
            raise SaecodecError(f"wavelet: radial takes h16 (1..255) and cfac (0..8), got {radial}")
        self.radial = None if radial is None else {"h16": int(radial["h16"]), "cfac": int(radial["cfac"])}
        self.fill_sweeps = int(fill_sweeps)
        if not 0 <= self.fill_sweeps <= 100_000:
            raise SaecodecError(f"wavelet: fill_sweeps must be 0 .. 100000, got {fill_sweeps}")
        self._defaults()
        # context profiles 1 .. P-1 (profile 0 is this module's own arrays): {attribute: array}
        self.more = [{a: getattr(self, a).copy() for a in self.PROFILE_ATTRS} for _ in range(self.profiles - 1)]

    # -- parameters ------------------------------------------------------------------------------
    def _defaults(self) -> None:
        """Plain CDF 9/7 taps, unit band weights, a deadzone quantiser, generic contexts on log
        features and geometric tables: a working (untrained) model of this architecture."""
        L, G, C, T = max(self.levels, 1), self.ngroups, self.nclasses, self.ntok
        ntaps = sum(t for prog in self.programs for _, _, t in prog)
        taps = []
        for prog in self.programs:
            default_ops, default_taps = cdf97_program()
            if [op[:3] for op in prog[:len(default_ops)]] == default_ops:
                taps += default_taps + [0.0] * (sum(t for _, _, t in prog) - len(default_taps))
            else:
                taps += [0.0] * sum(t for _, _, t in prog)
        self.taps = np.asarray(taps, np.float64)
        assert len(self.taps) == ntaps
        self.band_w = np.ones((L, 4), np.float64)
        self.theta = np.full((L, 4), 0.4, np.float64)
        self.theta[:, 0] = 0.5
        self.delta = np.zeros((L, 4), np.float64)
        self.flut = log_features(self.fmax)
        self.ctx_w = np.tile(np.array([2, 2, 1, 1, 1, 1, 2, 1, 1, 1], np.int32), (G, 1))
        self.bias = np.zeros(G, np.int32)
        self.a_lo = np.zeros(G, np.int32)
        self.a_shift = np.zeros(G, np.int32)
        edges = np.unique(np.round(np.geomspace(4, 2500, C)).astype(np.int32))[:C - 1]
        self.thresholds = np.full((G, C - 1), 1 << 30, np.int32)
        self.thresholds[:, :len(edges)] = edges
        self.eg_k = np.zeros(G, np.int32)
        self.freq = np.tile(geometric_table(T, self.prec, 0.5), (self.nsets, G, C, 1)).astype(np.int32)
        self.sign_freq = np.full((G, 729), 1 << (self.prec - 1), np.int32)
        self.zr_freq = np.full((G, C), 1 << (self.prec - 1), np.int32)
        self.level_steps = np.geomspace(0.25, 0.01, self.rate_levels)

    # tensor name -> attribute; the context model's (PROFILE_ATTRS) exist once per profile: profile
    # i >= 1 under "profile<i>.<name>"
    TENSORS = {"lift.taps": "taps", "band.w": "band_w", "band.theta": "theta", "band.delta": "delta",
               "ctx.flut": "flut", "ctx.w": "ctx_w", "ctx.bias": "bias", "ctx.a_lo": "a_lo", "ctx.a_shift": "a_shift",
               "ctx.thresholds": "thresholds", "ctx.eg_k": "eg_k", "tables.freq": "freq", "tables.sign": "sign_freq",
               "tables.zero_run": "zr_freq", "rate.steps": "level_steps"}
    PROFILE_ATTRS = ("ctx_w", "bias", "a_lo", "a_shift", "thresholds", "eg_k", "freq", "sign_freq", "zr_freq")

    def state_dict(self) -> dict:
        out = {k: getattr(self, a) for k, a in self.TENSORS.items()}
        names = {a: k for k, a in self.TENSORS.items()}
        for i, prof in enumerate(self.more, 1):
            out.update({f"profile{i}.{names[a]}": v for a, v in prof.items()})
        return out

    def load_state_dict(self, state: dict) -> None:
        mine = self.state_dict()
        if set(state) != set(mine):
            raise SaecodecError(f"wavelet: tensors differ from the architecture's ({sorted(set(state) ^ set(mine))})")
        new = {}
        for k, v in state.items():
            v = np.asarray(v)
            if v.shape != mine[k].shape or v.dtype.kind != mine[k].dtype.kind:
                raise SaecodecError(f"wavelet: tensor {k} is {v.dtype}{list(v.shape)}, the architecture needs "
                                    f"{mine[k].dtype}{list(mine[k].shape)}")
            new[k] = np.array(v, dtype=mine[k].dtype)
        for k, a in self.TENSORS.items():
            setattr(self, a, new[k])
        for i, prof in enumerate(self.more, 1):
            for k, a in self.TENSORS.items():
                if a in prof:
                    prof[a] = new[f"profile{i}.{k}"]

    def profile(self, i: int) -> "WaveletModule":
        """Profile i as a module of its own (one profile; the shared arrays are this module's)."""
        arch = {k: v for k, v in self.architecture.items() if k != "profiles"}
        single = WaveletModule(**arch)
        for a in self.TENSORS.values():
            setattr(single, a, getattr(self, a))
        if i:
            for a, v in self.more[i - 1].items():
                setattr(single, a, v)
        return single

    def set_profile(self, i: int, single: "WaveletModule") -> None:
        """Take a one-profile module's context model as profile i."""
        arrays = {a: getattr(single, a) for a in self.PROFILE_ATTRS}
        if i:
            self.more[i - 1] = arrays
        else:
            for a, v in arrays.items():
                setattr(self, a, v)

    @property
    def architecture(self) -> dict:
        arch = {k: getattr(self, k) for k in self.ARCH_KEYS}
        if self.profiles > 1:  # files of one profile keep their metadata (and identity)
            arch["profiles"] = self.profiles
        if self.fill_sweeps != FILL_SWEEPS:
            arch["fill_sweeps"] = self.fill_sweeps
        if self.radial is not None:
            arch["radial"] = self.radial
        return arch

    @classmethod
    def from_architecture(cls, arch: dict) -> "WaveletModule":
        if set(arch) - set(cls.ARCH_KEYS) - {"profiles", "fill_sweeps", "radial"}:
            raise SaecodecError(f"wavelet: unknown architecture keys {sorted(set(arch) - set(cls.ARCH_KEYS))} "
                                "(a newer saecodec?)")
        return cls(**arch)

    def fill_masked(self, z: np.ndarray, masked: np.ndarray) -> np.ndarray:
        """Encoder only (the chunk pipeline's family hook): the network input ``z`` (B, h*w)
        with its ``masked`` pixels (B, h, w) refilled smoothly in the model's domain; the mask
        block restores them exactly, so only their cost matters (research Revision 3 item 3)."""
        if not self.fill_sweeps or not masked.any():
            return z
        from ..coding.wavelet_engine import fill_smooth

        return fill_smooth(z.reshape(masked.shape), masked, self.fill_sweeps).reshape(z.shape)

    def engine_params(self):
        """The engine's parameters (coding.wavelet_engine.PARAMS): a dict, or one per profile."""
        if self.profiles > 1:
            return [self.profile(i).engine_params() for i in range(self.profiles)]
        kinds = {n: i for i, n in enumerate(OP_NAMES)}
        ops = [op for prog in self.programs for op in prog]
        starts = np.cumsum([0] + [len(p) for p in self.programs]).astype(np.int32)
        ntaps = np.array([t for _, _, t in ops], np.int32)
        adapt = self.adapt or ADAPT
        return {
            "levels": self.levels, "min_len": self.min_len, "level_rule": self.level_rule, "prog_start": starts,
            "op_kind": np.array([kinds[n] for n, _, _ in ops], np.int32),
            "op_off": np.array([o for _, o, _ in ops], np.int32), "op_ntaps": ntaps,
            "op_tap0": np.concatenate([[0], np.cumsum(ntaps)[:-1]]).astype(np.int32), "taps": self.taps,
            "prog_of": np.array(self.prog_of, np.int32), "band_w": self.band_w, "theta": self.theta,
            "delta": self.delta, "group_of": np.array(self.groups, np.int32),
            "ll_pred": LL_PREDICTORS.index(self.ll_pred), "ll_ctx": LL_CONTEXTS.index(self.ll_ctx),
            "ll_classes": self.ll_classes, "flut": self.flut, "ctx_w": self.ctx_w, "bias": self.bias,
            "a_lo": self.a_lo, "a_shift": self.a_shift, "thresholds": self.thresholds, "amax": self.amax,
            "tok_mode": TOKENS.index(self.tokens), "tok_direct": self.tok_direct, "eg_k": self.eg_k,
            "sign_ctx": SIGNS.index(self.signs), "sign_freq": self.sign_freq.astype(np.uint32),
            "zero_run": self.zero_run, "zr_freq": self.zr_freq.astype(np.uint32), "rdo_lambda": self.rdo_lambda,
            "prec": self.prec,
            "freq": self.freq.astype(np.uint32), "adapt": int(self.adapt is not None),
            "adapt_rate": adapt["rate"], "adapt_smax": adapt["smax"]}

    def step_of_level(self, level: float) -> float:
        """The quantiser step of a (continuous) rate level: log-linear between the trained levels."""
        s = np.log(self.level_steps)
        lv = float(np.clip(level, 0, len(s) - 1))
        i = min(int(lv), len(s) - 2) if len(s) > 1 else 0
        return float(np.exp(s[i] + (lv - i) * (s[i + 1] - s[i]))) if len(s) > 1 else float(np.exp(s[0]))

    # -- the "network": identity on the transformed frames ------------------------------------------
    def encode(self, z: np.ndarray, tile) -> np.ndarray:
        return np.asarray(z).reshape(len(z), *tile)

    def decode(self, latents: np.ndarray, tile) -> np.ndarray:
        return np.asarray(latents, np.float64).reshape(len(latents), -1)


def geometric_table(ntok: int, prec: int, ratio: float) -> np.ndarray:
    """Frequencies (sum 2^prec, each >= 1) of p(t) ~ ratio^t: a neutral table before training."""
    p = ratio ** np.arange(ntok, dtype=np.float64)
    return normalise_counts(p, prec)


def normalise_counts(counts, prec: int) -> np.ndarray:
    """Counts -> integer frequencies summing to 2^prec with every entry >= 1 (largest-remainder,
    then the surplus or deficit taken from the largest entries): a table rANS can use."""
    c = np.asarray(counts, np.float64)
    total = 1 << prec
    n = len(c)
    if n > total:
        raise SaecodecError(f"{n} symbols do not fit a table of 2^{prec}")
    c = np.maximum(c, 0)
    if c.sum() <= 0:
        c = np.ones(n)
    f = np.maximum(1, np.floor(c / c.sum() * (total - n) + 1)).astype(np.int64)
    diff = total - int(f.sum())
    order = np.argsort(-c, kind="stable")
    i = 0
    while diff != 0:
        j = order[i % n]
        if diff > 0:
            f[j] += 1
            diff -= 1
        elif f[j] > 1:
            f[j] -= 1
            diff += 1
        i += 1
    return f


def wavelet_model(name: str, transform=None, *, provenance: str = "", metrics: dict | None = None, **arch):
    """A :class:`Model` of this family (whole frames of any size). The default transform is
    asinh with scale 1e-3 (log10 for intensities well above it, defined on all reals) and no
    per-frame normalisation: the LL band codes each frame's mean in fewer bytes than a
    stored float32 offset."""
    from .model import Model
    from .transforms import Transform

    tr = transform if transform is not None else Transform("asinh", 1e-3, per_frame=False, normalise="mean")
    return Model(module=WaveletModule(**arch), frame_shape=None, transform=tr, name=name, provenance=provenance,
                 metrics=metrics or {})
