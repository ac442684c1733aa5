"""Pure-Python reference decoder of a fastcode stream (docs/fastcode.md), one element at a time.

Slow by design (tests use small chunks): it is the executable specification that the C
decoder (saecodec.coding.fast, c_fastcode/) must match bit for bit. Reconstructions use
only IEEE basic operations, as in C.
"""

from __future__ import annotations

import math

import numpy as np

NTOK, NFINE, PREC = 136, 64, 11
MAG_SAT, VAL_SAT = 1 << 29, 1 << 30
M64 = (1 << 64) - 1
DTYPES = ["f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"]
EXP2_C = [1.0, 0.6931471805599453, 0.2402265069591007, 0.055504108664821576, 0.009618129107628477,
          0.0013333558146428441, 0.00015403530393381606, 1.5252733804059838e-05, 1.3215486790144305e-06,
          1.0178086009239696e-07, 7.054911620801121e-09, 4.44553827187081e-10]


def exp2_det(t):
    """2^t from a fixed polynomial and ldexp: the same operations as fc_exp2 in C."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        n = np.floor(t + 0.5)
        f = t - n
        p = np.full_like(t, EXP2_C[11])
        for c in EXP2_C[10::-1]:
            p = p * f + c
        ok = t > -1100.0
        big = t > 1100.0
        r = np.ldexp(p, np.where(ok & ~big, n, 0).astype(np.int64))
    return np.where(big, np.inf, np.where(ok, r, 0.0))


class Bytes:
    def __init__(self, b):
        self.b, self.pos = bytes(b), 0

    def u8(self):
        if self.pos >= len(self.b):
            raise ValueError("truncated")
        self.pos += 1
        return self.b[self.pos - 1]

    def take(self, n):
        if self.pos + n > len(self.b):
            raise ValueError("truncated")
        self.pos += n
        return self.b[self.pos - n:self.pos]

    def varint(self):
        v = shift = 0
        while True:
            c = self.u8()
            v |= (c & 0x7F) << shift
            if not c & 0x80:
                return v
            shift += 7


class Bits:
    """LSB-first bit reader."""

    def __init__(self, b):
        self.v, self.n, self.pos = int.from_bytes(bytes(b), "little"), 8 * len(b), 0

    def get(self, nb):
        out = (self.v >> self.pos) & ((1 << nb) - 1)
        self.pos += nb
        if self.pos > self.n:
            raise ValueError("bits overrun")
        return out


def read_table(bits, maxtok):
    ntok = bits.get(8) + 1
    if ntok > maxtok:
        raise ValueError("table")
    if ntok == 1:
        return [1 << PREC]
    imax, m = bits.get(8), bits.get(4) + 1
    f = [0] * ntok
    for t in range(ntok):
        if t == imax:
            continue
        L = bits.get(4)
        if L == 1:
            f[t] = 1
        elif L > 1:
            nb = min(L - 1, m - 1)
            f[t] = (1 << (L - 1)) | (bits.get(nb) << (L - 1 - nb))
    f[imax] = (1 << PREC) - sum(f)
    if f[imax] < 1:
        raise ValueError("table sum")
    return f


def fine_bucket(a):
    if a < 2:
        return a
    l = a.bit_length() - 1
    return 2 * l + ((a >> (l - 1)) & 1)


def signed(u):
    return u - (1 << 64) if u >> 63 else u


def sat_abs(q, cap):
    a = -signed(q) if signed(q) < 0 else q
    return min(a, cap)


def tok_value(t, extra):
    if t < 16:
        return t
    e = ((t - 16) >> 1) + 4
    return (1 << e) | ((t & 1) << (e - 1)) | extra


def cast(v, dt):
    v = 0.0 if v != v else v
    dt = np.dtype(dt)
    if dt.kind == "f":
        lim = float(np.finfo(dt).max)
        return np.array(min(max(v, -lim), lim)).astype(dt)
    info = np.iinfo(dt)
    lo, hi = float(info.min), float(np.nextafter(float(info.max) + 1, 0)) if dt.itemsize == 8 else float(info.max)
    return np.array(min(max(np.rint(v), lo), hi)).astype(dt)


def mix(z):
    """splitmix64"""
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def dither(i, w):
    return 0 if w <= 1 else ((mix(i) >> 32) * w) >> 32


def pois_T(eb, x):
    return int(math.floor(eb * math.sqrt(1.0 if x < 1 else float(x)) * (1.0 - 2.0 ** -40)))


def poisson_regions(eb, R):
    r0 = pois_T(eb, 0)
    nr = R - r0 + 1
    pa = [0]
    for ri in range(1, nr + 1):
        r = r0 + ri
        g = math.ceil(float(r) / eb * (float(r) / eb))
        x = int(g) if g < 4e18 else int(4e18)
        if x <= pa[-1]:
            x = pa[-1] + 1
        n = 0
        while x - 1 > pa[-1] and pois_T(eb, x - 1) >= r and n < 64:
            x, n = x - 1, n + 1
        n = 0
        while pois_T(eb, x) < r and n < 64:
            x, n = x + 1, n + 1
        pa.append(x)
    pB = [0]
    for ri in range(nr):
        r = r0 + ri
        pB.append(pB[-1] + (pa[ri + 1] - pa[ri] - 1 + 2 * r) // (2 * r + 1) + 1)
    return r0, pa, pB


def offset(i, w, dith):
    return dither(i, w) if dith else (w - 1) // 2


def poisson_value(r0, pa, pB, k, i, dith=True):
    nr = len(pa) - 1
    if k < 0:
        return 0
    k = min(k, pB[nr] + (1 << 40))
    ri = nr - 1 if k >= pB[nr] else max(x for x in range(nr) if pB[x] <= k)
    r = r0 + ri
    w = 2 * r + 1
    return pa[ri] - offset(i, w, dith) + (k - pB[ri]) * w + r


def decode(buf, shape, dtype, mask=None, pred=None):
    dt = np.dtype(dtype)
    P, H, W = int(np.prod(shape[:-2])), shape[-2], shape[-1]
    r = Bytes(buf)
    if r.u8() != 1:
        raise ValueError("version")
    mode, flags, prec, sdt = r.u8(), r.u8(), r.u8(), r.u8()
    assert prec == PREC and DTYPES[sdt] == dt.str[1:]
    kind, ucls, uses_pred, intabs = flags & 1, (flags >> 1) & 3, (flags >> 3) & 1, (flags >> 4) & 1
    dith = (flags >> 5) & 1
    assert (r.varint(), r.varint(), r.varint()) == (P, H, W)
    if mode == 1 and intabs:
        T = r.varint()
    elif mode == 1:
        uniform = r.u8()
        steps = [float(np.frombuffer(r.take(4), "<f4")[0])]
        steps = steps * P if uniform else steps + [float(np.frombuffer(r.take(4), "<f4")[0]) for _ in range(P - 1)]
    elif mode == 2:
        s = float(np.frombuffer(r.take(8), "<f8")[0])
    elif mode == 3:
        peb = float(np.frombuffer(r.take(8), "<f8")[0])
        pr0, pa, pB = poisson_regions(peb, pois_T(peb, 0) + r.varint())
    preds = []
    for p in range(0, P, 4):
        b = r.u8()
        preds += [(b >> (2 * k)) & 3 for k in range(4) if p + k < P]
    on = [False] * P  # planes coded against the prediction
    if uses_pred:
        for p in range(0, P, 8):
            b = r.u8()
            for k in range(8):
                if p + k < P:
                    on[p + k] = bool((b >> k) & 1)
                elif (b >> k) & 1:
                    raise ValueError("plane bits")
        if not any(on):
            raise ValueError("no plane uses the prediction")
    nctx = r.u8()
    bounds = [r.u8() for _ in range(nctx - 1)]
    ctxmap = [sum(b >= x for x in bounds) for b in range(NFINE)]
    has_cls = mode == 2 and ucls == 0
    tb = Bits(r.take(r.varint()))
    tabs = [read_table(tb, NTOK) for _ in range(nctx)] + ([read_table(tb, 3) for _ in range(9)] if has_cls else [])
    starts = [np.concatenate([[0], np.cumsum(f)]).tolist() for f in tabs]
    nw = r.varint()
    words = np.frombuffer(r.take(2 * nw), "<u2").tolist()
    xs, wi = [(words[0] << 16) | words[1], (words[2] << 16) | words[3]], 4  # two lanes' states
    ex = Bits(r.take(r.varint()))
    want_val = mode in (0, 3) or (mode == 1 and intabs)

    def rans(tab, lane=0):
        nonlocal wi
        f, st = tabs[tab], starts[tab]
        x = xs[lane]
        slot = x & ((1 << PREC) - 1)
        t = next(i for i in range(len(f)) if st[i] <= slot < st[i + 1])
        x = f[t] * (x >> PREC) + slot - st[t]
        if x < (1 << 16):
            x = (x << 16) | words[wi]
            wi += 1
        xs[lane] = x
        return t

    flat_mask = np.zeros(P * H * W, bool) if mask is None else np.asarray(mask, bool).reshape(-1)
    out = np.zeros(P * H * W, dt)
    if mode == 1 and not intabs:  # reconstruction-domain prediction (SZ-style), two lanes
        basev = pred.reshape(-1) if uses_pred else None
        p = 0
        while p < P:
            pair = p + 1 < P
            hA = H if pair else ((H + 1) // 2 if H >= 128 else H)  # FC_SPLIT_ROWS
            hB = H if pair else H - hA
            lanes = [{"pk": preds[p], "base": p * H * W, "Rp": [0.0] * W, "Mp": [0] * (W + 2)},
                     {"pk": preds[p + 1] if pair else preds[p], "base": (p + 1) * H * W if pair else (p * H + hA) * W,
                      "Rp": [0.0] * W, "Mp": [0] * (W + 2)}]
            for rr in range(hA):
                active = [0, 1] if rr < hB else [0]
                for L in active:
                    lanes[L]["Rc"], lanes[L]["Mc"] = [0.0] * W, [0] * (W + 2)
                for j in range(W):
                    for L in active:
                        ln = lanes[L]
                        pk = ln["pk"] if (rr > 0 or ln["pk"] == 0) else 3
                        Rp, Rc, Mp, Mc = ln["Rp"], ln["Rc"], ln["Mp"], ln["Mc"]
                        i = ln["base"] + rr * W + j
                        rW = Rc[j - 1] if j else (Rp[0] if pk in (1, 2) else 0.0)
                        rNW = Rp[j - 1] if j else (Rp[0] if pk in (1, 2) else 0.0)
                        rN = Rp[j] if pk in (1, 2) else 0.0
                        pe = 0.0 if pk == 0 else rW if pk == 3 else (rW + rN) - rNW if pk == 1 else (rW + rN) * 0.5
                        eh, m = pe, 0
                        if not flat_mask[i]:
                            a = 2 * Mc[j] + Mp[j + 1] + ((Mp[j] + Mp[j + 2]) >> 1)
                            t = rans(ctxmap[fine_bucket(a)], L)
                            z = tok_value(t, ex.get(((t - 16) >> 1) + 3) if t >= 16 else 0)
                            k = signed((z >> 1) ^ (-(z & 1) & M64))
                            eh = pe + steps[p + L if pair else p] * float(k)
                            m = min(z, MAG_SAT)
                            plane = i // (H * W)
                            out[i] = cast((float(basev[i]) if on[plane] else 0.0) + eh, dt)
                        Rc[j], Mc[j + 1] = eh, m
                for L in active:
                    lanes[L]["Rp"], lanes[L]["Mp"] = lanes[L]["Rc"], lanes[L]["Mc"]
            p += 2 if pair else 1
        P = 0  # the generic loop below has nothing left to do
    for p in range(P):
        Qp, Mp, Vp, Cp = [0] * W, [0] * (W + 2), [0] * (W + 2), [0] * (W + 2)
        for y in range(H):
            pk = preds[p] if (y > 0 or preds[p] == 0) else 3
            Qc, Mc, Vc, Cc = [0] * W, [0] * (W + 2), [0] * (W + 2), [0] * (W + 2)
            for j in range(W):
                i = (p * H + y) * W + j
                if pk == 0:
                    pr = 0
                elif pk == 3:
                    pr = Qc[j - 1] if j else 0
                elif j == 0:
                    pr = Qp[0]
                elif pk == 1:
                    pr = (Qc[j - 1] + Qp[j] - Qp[j - 1]) & M64
                else:
                    w, n = signed(Qc[j - 1]), signed(Qp[j])
                    pr = ((w >> 1) + (n >> 1) + (Qc[j - 1] & Qp[j] & 1)) & M64
                q, m, c = pr, 0, 1
                if flat_mask[i]:
                    c = 0
                else:
                    if has_cls:
                        c = rans(nctx + Cc[j] * 3 + Cp[j + 1])
                    if c:
                        a = (Vc[j] + Vp[j + 1] + ((Vp[j] + Vp[j + 2]) >> 1)) if kind else \
                            (2 * Mc[j] + Mp[j + 1] + ((Mp[j] + Mp[j + 2]) >> 1))
                        t = rans(ctxmap[fine_bucket(a)])
                        z = tok_value(t, ex.get(((t - 16) >> 1) + 3) if t >= 16 else 0)
                        q = (pr + ((z >> 1) ^ (-(z & 1) & M64))) & M64
                        m = min(z, MAG_SAT)
                Qc[j], Mc[j + 1], Cc[j + 1] = q, m, c
                if want_val:
                    Vc[j + 1] = sat_abs(q, VAL_SAT)
                if flat_mask[i]:
                    continue
                k = signed(q)
                if mode == 0:
                    out.view(np.uint8).reshape(-1, dt.itemsize)[i] = np.frombuffer(
                        (q & ((1 << (8 * dt.itemsize)) - 1)).to_bytes(dt.itemsize, "little"), np.uint8)
                elif mode == 1 and intabs:
                    info = np.iinfo(dt)
                    w = 2 * T + 1
                    v = k * w - (offset(i, w, dith) if w < 1 << 32 else T) + T
                    out[i] = min(max(v, int(info.min)), int(info.max))
                elif mode == 1:
                    base = float(pred.reshape(-1)[i]) if uses_pred else 0.0
                    out[i] = cast(base + steps[p] * float(k), dt)
                elif mode == 2:
                    cl = ucls if ucls else c
                    v = float(exp2_det(float(k) * s)) if cl in (1, 2) else 0.0
                    out[i] = cast(-v if cl == 2 else v, dt)
                else:
                    v = poisson_value(pr0, pa, pB, k, i, dith)
                    if dt.kind == "f":
                        out[i] = min(max(v, 0), 1 << 53)
                    else:
                        info = np.iinfo(dt)
                        out[i] = min(max(v, int(info.min)), int(info.max))
            Qp, Mp, Vp, Cp = Qc, Mc, Vc, Cc
    assert xs == [1 << 16, 1 << 16] and wi == len(words), "rANS end state"
    nfb = r.varint()
    idx, prev = [], -1
    for _ in range(nfb):
        prev = prev + 1 + r.varint()
        idx.append(prev)
    vals = np.frombuffer(r.take(nfb * dt.itemsize), dt.newbyteorder("<"))
    out[idx] = vals
    assert r.pos == len(r.b)
    return out.reshape(shape)
