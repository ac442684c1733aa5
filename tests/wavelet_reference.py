"""Pure-Python/numpy reference of the wavelet engine (docs/wavelet.md): transform, quantiser,
contexts, rANS and the adaptive range coder, one coefficient at a time.

Slow by design (tests use small frames): it is the executable specification that the C
engine (c_wavelet/, saecodec.coding.wavelet_engine) must match bit for bit, bytes and
reconstructions. Reconstructions use only IEEE basic operations in the documented order.
Parameters: the dict of ``WaveletModule.engine_params()``.
"""

from __future__ import annotations

from decimal import Decimal, getcontext

import numpy as np

STEP_ONE = 32768
RANS_L = 1 << 16
NTERMS = 9
MAX_Q = 1 << 30


def step_table() -> list[float]:
    getcontext().prec = 60
    return [float(str(Decimal(2) ** (Decimal(j) / Decimal(256)))) for j in range(256)]


_STEPS = step_table()


def step(k: int) -> float:
    return float(np.ldexp(_STEPS[k & 255], (k >> 8) - 128))


# -- transform ------------------------------------------------------------------------------
def _wss(p, n):
    period = 2 * n - 2
    p = np.mod(p, period)
    return np.where(p >= n, period - p, p)


def _ops(params, prog):
    a, b = params["prog_start"][prog], params["prog_start"][prog + 1]
    for i in range(a, b):
        t0 = params["op_tap0"][i]
        yield int(params["op_kind"][i]), int(params["op_off"][i]), params["taps"][t0:t0 + params["op_ntaps"][i]]


def _lift(params, prog, s, d, n, inverse):
    """s (..., ns), d (..., nd) along the last axis; returns new arrays."""
    ops = list(_ops(params, prog))
    if inverse:
        ops = ops[::-1]
    ns, nd = (n + 1) // 2, n // 2
    for kind, off, taps in ops:
        if kind >= 2:
            f = 1.0 / taps[0] if inverse else taps[0]  # the inverse multiplies by the rounded reciprocal
            if kind == 2:
                s = s * f
            else:
                d = d * f
            continue
        tgt_n = nd if kind == 0 else ns
        src = s if kind == 0 else d
        i = np.arange(tgt_n)
        acc = None
        for k, t in enumerate(taps):
            e = i + off + k
            idx = _wss(2 * e, n) // 2 if kind == 0 else (_wss(2 * e + 1, n) - 1) // 2
            term = t * src[..., idx]
            acc = term if acc is None else acc + term
        if kind == 0:
            d = d - acc if inverse else d + acc
        else:
            s = s - acc if inverse else s + acc
    return s, d


def levels(params, H, W):
    n, h, w = 0, H, W
    if params["level_rule"] == 1:
        while n < params["levels"] and (h + 1) // 2 >= params["min_len"] and (w + 1) // 2 >= params["min_len"]:
            h, w, n = (h + 1) // 2, (w + 1) // 2, n + 1
        return n if n > 0 or params["levels"] == 0 else 1
    while n < params["levels"] and max(h, w) >= params["min_len"] and (h > 1 or w > 1):
        h, w, n = (h + 1) // 2, (w + 1) // 2, n + 1
    return n


def forward(params, x):
    x = np.array(x, np.float64)
    H, W = x.shape
    h, w = H, W
    for lv in range(levels(params, H, W)):
        pr, pc = params["prog_of"][lv]
        if w >= 2:
            r = x[:h, :w]
            s, d = _lift(params, pr, r[:, 0::2], r[:, 1::2], w, False)
            x[:h, :w] = np.concatenate([s, d], axis=1)
        if h >= 2:
            r = x[:h, :w]
            s, d = _lift(params, pc, r[0::2].T, r[1::2].T, h, False)
            x[:h, :w] = np.concatenate([s.T, d.T], axis=0)
        h, w = (h + 1) // 2, (w + 1) // 2
    return x


def inverse(params, c):
    x = np.array(c, np.float64)
    H, W = x.shape
    dims = [(H, W)]
    for _ in range(levels(params, H, W)):
        dims.append(((dims[-1][0] + 1) // 2, (dims[-1][1] + 1) // 2))
    for lv in range(len(dims) - 2, -1, -1):
        h, w = dims[lv]
        pr, pc = params["prog_of"][lv]
        if h >= 2:
            ns = (h + 1) // 2
            s, d = _lift(params, pc, x[:ns, :w].T, x[ns:h, :w].T, h, True)
            out = np.empty((h, w))
            out[0::2], out[1::2] = s.T, d.T
            x[:h, :w] = out
        if w >= 2:
            ns = (w + 1) // 2
            s, d = _lift(params, pr, x[:h, :ns], x[:h, ns:w], w, True)
            out = np.empty((h, w))
            out[:, 0::2], out[:, 1::2] = s, d
            x[:h, :w] = out
    return x


def bands(params, H, W):
    """[(level, orient, y0, x0, h, w, parent, sib1, sib2)] in coding order."""
    n = levels(params, H, W)
    dims = [(H, W)]
    for _ in range(n):
        dims.append(((dims[-1][0] + 1) // 2, (dims[-1][1] + 1) // 2))
    out = [(max(n, 1), 0, 0, 0, dims[n][0], dims[n][1], -1, -1, -1)]
    prev = {1: -1, 2: -1, 3: -1}
    for lv in range(n, 0, -1):
        (h, w), (h0, w0) = dims[lv - 1], dims[lv]
        here = {}
        for o in (1, 2, 3):
            y0, x0 = (h0 if o >= 2 else 0), (w0 if o & 1 else 0)
            bh, bw = (h - h0 if o >= 2 else h0), (w - w0 if o & 1 else w0)
            sib1 = here.get(1, -1) if o >= 2 else -1
            sib2 = here.get(2, -1) if o == 3 else -1
            here[o] = len(out)
            out.append((lv, o, y0, x0, bh, bw, prev[o], sib1, sib2))
        prev = here
    return out


# -- quantiser and symbols ------------------------------------------------------------------------
def band_par(params, b, name):
    return params[name][b[0] - 1][b[1]]


def min_step(params, bl, c):
    mx = 0.0
    for b in bl:
        bw = band_par(params, b, "band_w")
        for y in range(b[4]):
            for x in range(b[5]):
                mx = max(mx, abs(c[b[2] + y, b[3] + x]) / bw)
    if mx == 0:
        return 0
    lo, hi = 0, 65535
    while lo < hi:
        mid = (lo + hi) // 2
        if mx / step(mid) < 536870912.0:
            hi = mid
        else:
            lo = mid + 1
    return lo


def quantise(params, bl, c, k):
    D = step(k)
    q = np.zeros(c.shape, np.int64)
    for b in bl:
        Db = D * band_par(params, b, "band_w")
        th = band_par(params, b, "theta")
        for y in range(b[4]):
            for x in range(b[5]):
                v = c[b[2] + y, b[3] + x]
                a = int(abs(v) / Db + th)
                q[b[2] + y, b[3] + x] = -a if v < 0 else a
    return q


def dequantise(params, bl, q, k):
    D = step(k)
    c = np.zeros(q.shape, np.float64)
    for b in bl:
        Db = D * band_par(params, b, "band_w")
        de = band_par(params, b, "delta")
        for y in range(b[4]):
            for x in range(b[5]):
                v = int(q[b[2] + y, b[3] + x])
                if v:
                    r = (float(abs(v)) - de) * Db
                    c[b[2] + y, b[3] + x] = -r if v < 0 else r
    return c


def ll_predict(mode, q, y, x):
    if mode == 0 or (y == 0 and x == 0):
        return 0
    w_ = q[y, x - 1] if x > 0 else q[y - 1, x]
    n_ = q[y - 1, x] if y > 0 else w_
    if mode == 1 or x == 0 or y == 0:
        return (int(w_) + int(n_)) >> 1
    nw = int(q[y - 1, x - 1])
    mx, mn = max(w_, n_), min(w_, n_)
    if nw >= mx:
        return int(mn)
    if nw <= mn:
        return int(mx)
    return int(w_) + int(n_) - nw


def _feat(params, x):
    return int(params["flut"][min(int(x), len(params["flut"]) - 1)])


def _inside(b, y, x):
    return 0 <= y < b[4] and 0 <= x < b[5]


def _val(vals, b, y, x):
    """value of band b at (y, x) of that band, 0 outside it"""
    return int(vals[b[2] + y, b[3] + x]) if _inside(b, y, x) else 0


def features(params, bl, bi, q, llr, y, x):
    """The 10 raw features (W, N, NW, NE, WW, NN, P, PN, S, SN) of (y, x) in band bi."""
    b = bl[bi]
    if b[1] == 0:
        def own(yy, xx):
            return abs(int(llr[yy, xx])) if 0 <= yy < b[4] and 0 <= xx < b[5] else 0
    else:
        def own(yy, xx):
            return abs(_val(q, b, yy, xx))
    f = [own(y, x - 1), own(y - 1, x), own(y - 1, x - 1), own(y - 1, x + 1), own(y, x - 2), own(y - 2, x), 0, 0, 0, 0]
    if b[6] >= 0 and bl[b[6]][4] > 0 and bl[b[6]][5] > 0:
        p = bl[b[6]]
        py, px = min(y >> 1, p[4] - 1), min(x >> 1, p[5] - 1)
        f[6] = abs(_val(q, p, py, px))
        f[7] = sum(abs(_val(q, p, py + dy, px + dx)) for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)))
    for si in (b[7], b[8]):
        if si < 0:
            continue
        s = bl[si]
        f[8] += abs(_val(q, s, y, x))
        for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            if _inside(b, y + dy, x + dx):
                f[9] += abs(_val(q, s, y + dy, x + dx))
    return f


def _class_of(params, g, a):
    d = max(a - int(params["a_lo"][g]), 0) >> int(params["a_shift"][g])
    d = min(d, int(params["amax"]))
    amin = int(params["a_lo"][g]) + (d << int(params["a_shift"][g]))
    return int(np.sum(np.asarray(params["thresholds"][g], np.int64) <= amin))


def context_value(params, bl, bi, q, llr, y, x, skip=()):
    """a = bias + sum of the weighted features (without the features in ``skip``)."""
    b = bl[bi]
    g = int(params["group_of"][b[0] - 1][b[1]])
    f = features(params, bl, bi, q, llr, y, x)
    return int(params["bias"][g]) + sum(int(params["ctx_w"][g][i]) * _feat(params, f[i]) for i in range(10)
                                        if i not in skip)


def context(params, bl, bi, q, llr, y, x):
    b = bl[bi]
    g = int(params["group_of"][b[0] - 1][b[1]])
    if b[1] == 0 and params["ll_ctx"] == 1:
        def v(yy, xx):
            return int(q[yy, xx]) if 0 <= yy < b[4] and 0 <= xx < b[5] else 0
        grad = abs(v(y, x - 1) - v(y - 1, x - 1)) + abs(v(y - 1, x) - v(y - 1, x - 1)) + abs(v(y - 1, x + 1) - v(y - 1, x))
        return g, min((1 + grad).bit_length() - 1, int(params["ll_classes"]) - 1)
    return g, _class_of(params, g, context_value(params, bl, bi, q, llr, y, x))


def segment_class(params, bl, bi, q, llr, y, x0, x1):
    """The class of a zero segment: the largest context value without W and WW over [x0, x1),
    plus the W and WW terms of x0."""
    b = bl[bi]
    g = int(params["group_of"][b[0] - 1][b[1]])
    pre = max(context_value(params, bl, bi, q, llr, y, x, skip=(0, 4)) for x in range(x0, x1))
    full0 = context_value(params, bl, bi, q, llr, y, x0)
    own0 = full0 - context_value(params, bl, bi, q, llr, y, x0, skip=(0, 4))
    return g, _class_of(params, g, pre + own0)


def _sc(v):
    return 1 if v > 0 else 2 if v < 0 else 0


def sign_index(params, bl, bi, q, y, x):
    b = bl[bi]
    g = int(params["group_of"][b[0] - 1][b[1]])
    pat = 0
    for yy, xx in ((y, x - 1), (y - 1, x), (y - 1, x - 1), (y - 1, x + 1)):
        pat = pat * 3 + _sc(_val(q, b, yy, xx))
    sp = 0
    if b[6] >= 0 and bl[b[6]][4] > 0 and bl[b[6]][5] > 0:
        p = bl[b[6]]
        sp = _sc(_val(q, p, min(y >> 1, p[4] - 1), min(x >> 1, p[5] - 1)))
    ss = _sc(_val(q, bl[b[7]], y, x)) if b[7] >= 0 else 0
    return g * 729 + (pat * 3 + sp) * 3 + ss


def _cost_tab(params, tab, t):
    S, G, C, T = params["freq"].shape
    return _cost_fix(int(params["freq"][0, tab // C, tab % C, t]), int(params["prec"]))


def rdo_rate(params, tab, a):
    r = _cost_tab(params, tab, token(params, a)) * (1.0 / 65536)
    T = params["freq"].shape[-1]
    if params["tok_mode"] and a >= int(params["tok_direct"]):
        r += (a.bit_length() - 1) - 1
    elif not params["tok_mode"] and a >= T - 1:
        C = params["freq"].shape[2]
        r += sum(n for _, n in eg_ops(a - (T - 1), int(params["eg_k"][tab // C])))
    return r + 1.0 if a else r


def rdo(params, bl, c, q, k):
    """Two passes over the detail bands: classes from the current q, |q| lowered by one where
    D + lambda R drops (docs/wavelet.md)."""
    lam = float(params["rdo_lambda"])
    C = params["freq"].shape[2]
    D = step(k)
    llr = np.zeros((1, 1), np.int64)
    for _ in range(2):
        for bi, b in enumerate(bl):
            if bi == 0 or b[4] <= 0 or b[5] <= 0:
                continue
            cls = {(y, x): context(params, bl, bi, q, llr, y, x)[1] for y in range(b[4]) for x in range(b[5])}
            Db = D * band_par(params, b, "band_w")
            de = band_par(params, b, "delta")
            g = int(params["group_of"][b[0] - 1][b[1]])
            for y in range(b[4]):
                for x in range(b[5]):
                    v = int(q[b[2] + y, b[3] + x])
                    if not v:
                        continue
                    a, tab = abs(v), g * C + cls[y, x]
                    xs = abs(c[b[2] + y, b[3] + x]) / Db
                    e1 = xs - (float(a) - de)
                    e0 = xs - (float(a - 1) - de) if a > 1 else xs
                    j1 = e1 * e1 + lam * rdo_rate(params, tab, a)
                    j0 = e0 * e0 + lam * rdo_rate(params, tab, a - 1)
                    if j0 < j1:
                        q[b[2] + y, b[3] + x] = v + 1 if v < 0 else v - 1
    return q


def symbols(params, z, k):
    """(q, llr, [(group, class, value, sign index or -1) or ("z", table, all zero)], step used) of one frame."""
    H, W = z.shape
    bl = bands(params, H, W)
    c = forward(params, z)
    k = max(k, min_step(params, bl, c))
    q = quantise(params, bl, c, k)
    if params.get("rdo_lambda", 0) > 0:
        q = rdo(params, bl, c, q, k)
    b0 = bl[0]
    llr = np.zeros((b0[4], b0[5]), np.int64)
    for y in range(b0[4]):
        for x in range(b0[5]):
            llr[y, x] = q[y, x] - ll_predict(params["ll_pred"], q, y, x)
    syms = []
    zr = int(params["zero_run"])
    C = params["freq"].shape[2]
    for bi, b in enumerate(bl):
        seg = zr if zr and b[1] else max(b[5], 1)
        for y in range(b[4]):
            for x0 in range(0, b[5], seg):
                x1 = min(x0 + seg, b[5])
                if zr and b[1]:
                    zero = all(q[b[2] + y, b[3] + x] == 0 for x in range(x0, x1))
                    g, cl = segment_class(params, bl, bi, q, llr, y, x0, x1)
                    syms.append(("z", g * C + cl, int(zero)))
                    if zero:
                        continue
                for x in range(x0, x1):
                    g, cl = context(params, bl, bi, q, llr, y, x)
                    v = int(llr[y, x]) if b[1] == 0 else int(q[b[2] + y, b[3] + x])
                    si = sign_index(params, bl, bi, q, y, x) if params["sign_ctx"] and b[1] and v else -1
                    syms.append((g, cl, v, si))
    return q, llr, syms, k


def eg_ops(m, k):
    """Decode-order bit operations [(value, nbits)] of the Exp-Golomb code of m >= 0, order k."""
    u = (m >> k) + 1
    e = u.bit_length() - 1
    nb = e + k
    r = ((u - (1 << e)) << k) | (m & ((1 << k) - 1))
    return [(1, 1)] * e + [(0, 1)] + _chunks(r, nb)


def _chunks(r, nb):
    out = []
    nchunks = (nb + 7) // 8
    for c in range(nchunks):
        ln = nb - 8 * (nchunks - 1) if c == 0 else 8
        lo = 8 * (nchunks - 1 - c)
        out.append(((r >> lo) & ((1 << ln) - 1), ln))
    return out


def token(params, a):
    T = params["freq"].shape[-1]
    if params["tok_mode"] == 0:
        return min(a, T - 1)
    D = int(params["tok_direct"])
    if a < D:
        return a
    e = a.bit_length() - 1
    return D + 2 * (e - (D.bit_length() - 1)) + ((a >> (e - 1)) & 1)


def value_ops(params, g, v, si):
    """Decode-order operations of one value: ('tok', t), ('bits', value, nbits)..., ('sign', neg, index)."""
    a = abs(v)
    t = token(params, a)
    ops = [("tok", t)]
    if params["tok_mode"] == 0:
        esc = params["freq"].shape[-1] - 1
        if a >= esc:
            ops += [("bits", b, n) for b, n in eg_ops(a - esc, int(params["eg_k"][g]))]
    elif a >= int(params["tok_direct"]):
        e = a.bit_length() - 1
        ops += [("bits", b, n) for b, n in _chunks(a & ((1 << (e - 1)) - 1), e - 1)]
    if a:
        ops.append(("sign", int(v < 0), si) if si >= 0 else ("bits", int(v < 0), 1))
    return ops


def present_groups(params, H, W):
    return sorted({int(params["group_of"][b[0] - 1][b[1]]) for b in bands(params, H, W) if b[4] > 0 and b[5] > 0})


def _cost_fix(f, prec):
    """(prec << 16) - log2_fix(f): the C's integer code length (docs/wavelet.md)."""
    e = f.bit_length() - 1
    y = (f << 31) >> e
    r = e << 16
    for b in range(15, -1, -1):
        y = (y * y) >> 31
        if y >= (2 << 31):
            y >>= 1
            r |= 1 << b
    return (prec << 16) - r


def choose_sets(params, syms):
    S, G = params["freq"].shape[:2]
    if S == 1:
        return [0] * G
    cost = np.zeros((S, G), object)
    for g, cl, v, _ in (s for s in syms if s[0] != "z"):
        t = token(params, abs(v))
        for s in range(S):
            cost[s, g] += _cost_fix(int(params["freq"][s, g, cl, t]), int(params["prec"]))
    return [int(min(range(S), key=lambda s: (cost[s, g], s))) for g in range(G)]


# -- rANS ---------------------------------------------------------------------------------------
def rans_encode(ops_forward, prec, x0=RANS_L):
    """ops: decode-order list of (start, freq); returns the 16-bit words (state first); x0:
    the initial state (the decoder's final one)."""
    x = x0
    out = []
    for start, freq in reversed(ops_forward):
        if x >= ((RANS_L >> prec) << 16) * freq:
            out.append(x & 0xFFFF)
            x >>= 16
        x = ((x // freq) << prec) + (x % freq) + start
    out += [x & 0xFFFF, x >> 16]
    return out[::-1]


PB = 15  # adaptive decisions: probabilities in 2^-PB


class RangeEncoder:
    """The adaptive mode's binary range coder (LZMA's): a 32-bit range, a 33-bit low with a cached
    byte and pending 0xFF bytes for the carry; the first byte out (always 0) is not written; 5
    shifts flush it. An operation is a binary decision (total 2^PB: bit = start != 0, P(0) = start
    or freq) or log2(total) direct bits of start."""

    def __init__(self):
        self.low, self.range, self.cache, self.pending, self.first = 0, 0xFFFFFFFF, 0, 1, True
        self.out = bytearray()

    def shift(self):
        if (self.low & 0xFFFFFFFF) < 0xFF000000 or (self.low >> 32):
            carry = self.low >> 32
            byte = self.cache
            while True:
                if not self.first:
                    self.out.append((byte + carry) & 0xFF)
                self.first = False
                byte = 0xFF
                self.pending -= 1
                if not self.pending:
                    break
            self.cache = (self.low >> 24) & 0xFF
        self.pending += 1
        self.low = (self.low << 8) & 0xFFFFFFFF

    def _norm(self):
        while self.range < (1 << 24):
            self.range <<= 8
            self.shift()

    def put(self, start, freq, total):
        if total == 1 << PB:
            p0 = start if start else freq
            bound = (self.range >> PB) * p0
            if start:
                self.low += bound
                self.range -= bound
            else:
                self.range = bound
            self._norm()
            return
        for i in range(total.bit_length() - 2, -1, -1):
            self.range >>= 1
            if (start >> i) & 1:
                self.low += self.range
            self._norm()

    def finish(self):
        for _ in range(5):
            self.shift()
        return bytes(self.out)


def node_state(p0, w):
    """(P(0) clamped to 1 .. 2^PB - 1, visit count 1 + min(w, 254))"""
    return [min(max(int(p0), 1), (1 << PB) - 1), 1 + min(int(w), 254)]


class Adaptive:
    """The decisions of one frame: unary token nodes per (group, class) from the frame's sets, sign
    and zero-segment flags from their frozen frequencies; each moves after a bit (docs/wavelet.md)."""

    def __init__(self, params, sets):
        self.p, self.sets, self.tok, self.bin = params, sets, {}, {}
        smax = int(params["adapt_smax"])
        self.shift_of = [min(max((((2 * d * d).bit_length() - 1) >> 1) if d else 1, 1), smax) for d in range(256)]

    def tok_states(self, g, cl):
        if (g, cl) not in self.tok:
            f = [int(v) for v in self.p["freq"][self.sets[g], g, cl]]
            prec, A = int(self.p["prec"]), int(self.p["adapt_rate"])
            rest, nodes = 1 << prec, []
            for k in range(len(f) - 1):
                nodes.append(node_state(((f[k] << PB) + rest // 2) // rest, (A * rest + (1 << (prec - 1))) >> prec))
                rest -= f[k]
            self.tok[g, cl] = nodes
        return self.tok[g, cl]

    def bin_state(self, key, f0):
        if key not in self.bin:
            prec = int(self.p["prec"])
            self.bin[key] = node_state(((f0 << PB) + (1 << (prec - 1))) >> prec, int(self.p["adapt_rate"]))
        return self.bin[key]

    def code(self, st, bit):
        """the decision's operation, then its update"""
        p0, d = st
        op = (p0 if bit else 0, (1 << PB) - p0 if bit else p0, 1 << PB)
        sh = self.shift_of[d]
        st[0] = p0 - (p0 >> sh) if bit else p0 + (((1 << PB) - p0) >> sh)
        st[1] = min(d + 1, 255)
        return op


def steps_ops(steps):
    """The steps block, decode order: (start, freq, total) with raw totals 2^n."""
    ops = []
    for f, k in enumerate(steps):
        if f:
            same = int(k == steps[f - 1])
            ops.append((same, 1, 2))
            if same:
                continue
        ops += [(k >> 8, 1, 256), (k & 255, 1, 256)]
    return ops


def frame_ops(params, H, W, syms, sets, ad=None):
    """The coder operations (start, freq, total) of one frame in decode order; ad: the adaptive
    decisions (None: the frozen tables)."""
    S = params["freq"].shape[0]
    sb = S.bit_length() - 1
    P = 1 << int(params["prec"])
    ops = [(sets[g], 1, 1 << sb) for g in present_groups(params, H, W)] if sb else []

    def binary(key, f0, b):
        if ad is not None:
            return ad.code(ad.bin_state(key, f0), b)
        return (f0 if b else 0, P - f0 if b else f0, P)

    for sym in syms:
        if sym[0] == "z":
            ops.append(binary(("z", sym[1]), int(params["zr_freq"].flat[sym[1]]), 1 - sym[2]))
            continue
        g, cl, v, si = sym
        for op in value_ops(params, g, v, si):
            if op[0] == "tok":
                if ad is None:
                    f = params["freq"][sets[g], g, cl]
                    ops.append((int(f[:op[1]].sum()), int(f[op[1]]), P))
                else:
                    nodes = ad.tok_states(g, cl)
                    for k in range(min(op[1] + 1, len(nodes))):
                        ops.append(ad.code(nodes[k], int(op[1] > k)))
            elif op[0] == "bits":
                ops.append((op[1], 1, 1 << op[2]))
            else:
                ops.append(binary(("s", op[2]), int(params["sign_freq"].flat[op[2]]), op[1]))
    return ops


def min_steps(params, z):
    return np.array([min_step(params, bands(params, *f.shape), forward(params, f)) for f in z])


def _log2fix(f):
    e = f.bit_length() - 1
    y = (f << 31) >> e
    r = e << 16
    for b in range(15, -1, -1):
        y = (y * y) >> 31
        if y >= (2 << 31):
            y >>= 1
            r |= 1 << b
    return r


def encode(params, z, steps):
    """(bytes of the chunk's message, z_hat, steps): one message for all frames. ``params``: one
    parameter dict, or a list of them (context profiles: each frame coded with the profile of
    the smallest integer code length, ties the lower, its index first as log2(P) raw bits)."""
    profiles = params if isinstance(params, (list, tuple)) else [params]
    params = profiles[0]
    P = len(profiles)
    pbits = P.bit_length() - 1
    B, H, W = z.shape
    prec = int(params["prec"])
    steps = [int(k) for k in steps]
    frames, zh = [], []
    for f in range(B):
        best = None
        for pi, pp in enumerate(profiles):
            q, llr, syms, k = symbols(pp, z[f], steps[f])
            if k != steps[f]:
                raise ValueError("step too fine")
            sets = choose_sets(pp, syms)
            ops = [(pi, 1, P)] if pbits else []
            ops += frame_ops(pp, H, W, syms, sets, Adaptive(pp, sets) if params["adapt"] else None)
            cost = sum(_log2fix(t) - _log2fix(fr) for _, fr, t in ops)
            if best is None or cost < best[0]:
                best = (cost, ops, q)
        frames.append(best[1])
        zh.append(inverse(params, dequantise(params, bands(params, H, W), best[2], steps[f])))
    ops = steps_ops(steps) + [op for fo in frames for op in fo]
    if not params["adapt"]:
        scaled = [(s << (prec - (t.bit_length() - 1)), f << (prec - (t.bit_length() - 1))) for s, f, t in ops]
        words = rans_encode(scaled, prec)
        data = b"".join(int(w).to_bytes(2, "little") for w in words)
    else:
        enc = RangeEncoder()
        for op in ops:
            enc.put(*op)
        data = enc.finish()
    return data, np.array(zh).reshape(z.shape), np.array(steps)
