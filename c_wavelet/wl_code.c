/* Quantiser, contexts and entropy coding of the wavelet engine (docs/wavelet.md).
 *
 * Per frame: forward transform, per band q = sign(c) floor(|c| / D_b + theta_b), the LL band
 * coded as the residual to an integer predictor of q (none, (W + N) >> 1, MED), the detail
 * bands coarse to fine (HL, LH, HH per level). Each value v gets a context class from the
 * magnitudes of what the decoder already has (causal neighbours W N NW NE WW NN in its band,
 * the parent, the siblings at the same position), a token min(|v|, ESC) coded under the table
 * of (group, class) from the frame's table set, an Exp-Golomb remainder for tokens at ESC,
 * and a sign bit. Static tables: rANS (32-bit state, 16-bit words, one message per frame);
 * adaptive counts: a range coder (LZMA's carry scheme) with the counts updated per symbol.
 * The encoder's z_hat is the decoder's inverse transform of the same dequantised values.
 */
#include <math.h>
#include <stdio.h>

#include "wl_internal.h"
#include "wl_steps.h"

__thread int wl_fail_line;
int wl_last_line(void) { return wl_fail_line; }

void wl_free(void *p) { free(p); }

double wl_step(int32_t k) {
    if (k < 0) k = 0;
    if (k > 65535) k = 65535;
    return ldexp(wl_step_mant[k & 255], (k >> 8) - 128);
}

/* --- deterministic fixed-point log2 (the set choice must not depend on libm) ------------ */
/* log2(f) * 2^16 for 1 <= f < 2^32: integer part from the bit length, 16 fractional bits by
 * repeated squaring of the mantissa in Q31 */
static uint32_t log2_fix(uint32_t f) {
    int e = 31 - __builtin_clz(f);
    uint64_t y = ((uint64_t)f << 31) >> e; /* Q31 in [1, 2) */
    uint32_t r = (uint32_t)e << 16;
    for (int b = 15; b >= 0; b--) {
        y = (y * y) >> 31;
        if (y >= (2ull << 31)) { y >>= 1; r |= 1u << b; }
    }
    return r;
}

/* --- model ------------------------------------------------------------------------------- */
static void *own(wl_model *m, const void *src, size_t bytes) {
    if (m->nblocks >= (int)(sizeof m->blocks / sizeof m->blocks[0])) return NULL;
    void *p = malloc(bytes ? bytes : 1);
    if (!p) return NULL;
    if (src) memcpy(p, src, bytes);
    m->blocks[m->nblocks++] = p;
    return p;
}

void wl_model_free(wl_model *m) {
    if (!m) return;
    for (int i = 0; i < m->nblocks; i++) free(m->blocks[i]);
    free(m);
}

#define CHECK(c) do { if (!(c)) { wl_fail_line = __LINE__; wl_model_free(m); return WL_ERR_ARG; } } while (0)
#define OWN(dst, src, n, type) do { (dst) = own(m, (src), (size_t)(n) * sizeof(type)); \
    if (!(dst)) { wl_model_free(m); WL_FAIL(WL_ERR_NOMEM); } } while (0)

int wl_model_new(const wl_params *p, wl_model **out) {
    *out = NULL;
    wl_model *m = calloc(1, sizeof *m);
    if (!m) WL_FAIL(WL_ERR_NOMEM);
    m->p = *p;
    CHECK(p->levels >= 0 && p->levels <= WL_MAX_LEVELS && p->min_len >= 2);
    CHECK(p->nprog >= 1 && p->nprog <= 4 * WL_MAX_LEVELS && p->ntaps_total >= 0);
    CHECK(p->prog_start && p->op_kind && p->op_off && p->op_ntaps && p->op_tap0 && p->prog_of);
    CHECK(p->prog_start[0] == 0 && p->prog_start[p->nprog] <= WL_MAX_OPS);
    for (int i = 0; i < p->nprog; i++) CHECK(p->prog_start[i + 1] >= p->prog_start[i]);
    const int nops = p->prog_start[p->nprog];
    for (int i = 0; i < nops; i++) {
        const int k = p->op_kind[i], nt = p->op_ntaps[i], t0 = p->op_tap0[i];
        CHECK(k >= WL_PREDICT && k <= WL_SCALE_D);
        CHECK(nt >= 1 && nt <= WL_MAX_TAPS && t0 >= 0 && t0 + nt <= p->ntaps_total);
        CHECK(p->op_off[i] >= -WL_MAX_TAPS && p->op_off[i] <= WL_MAX_TAPS);
        if (k >= WL_SCALE_S) CHECK(nt == 1 && isfinite(p->taps[t0]) && fabs(p->taps[t0]) > 1e-6 &&
                                   fabs(p->taps[t0]) < 1e6);
        for (int j = 0; j < nt; j++) CHECK(isfinite(p->taps[t0 + j]) && fabs(p->taps[t0 + j]) < 1e6);
    }
    const int L = p->levels > 0 ? p->levels : 1;
    for (int i = 0; i < 2 * p->levels; i++) CHECK(p->prog_of[i] >= 0 && p->prog_of[i] < p->nprog);
    CHECK(p->ngroups >= 1 && p->ngroups <= WL_MAX_GROUPS && p->nclasses >= 1 && p->nclasses <= WL_MAX_CLASSES);
    CHECK(p->ntok >= 2 && p->ntok <= WL_MAX_TOK && p->amax >= 0 && p->amax <= 65535);
    CHECK(p->ll_pred >= 0 && p->ll_pred <= 2 && p->sign_ctx == 0);
    for (int i = 0; i < 4 * L; i++) {
        CHECK(p->group_of[i] >= 0 && p->group_of[i] < p->ngroups);
        CHECK(isfinite(p->band_w[i]) && p->band_w[i] > 0 && p->band_w[i] < 1e6);
        CHECK(p->theta[i] >= 0 && p->theta[i] <= 1 && p->delta[i] >= 0 && p->delta[i] < 1);
    }
    const int G = p->ngroups, C = p->nclasses, T = p->ntok;
    for (int g = 0; g < G; g++) {
        CHECK(p->cap[g] >= 0 && p->cap[g] <= (1 << 20) && p->eg_k[g] >= 0 && p->eg_k[g] <= 20);
        for (int t = 0; t < WL_NTERMS; t++) CHECK(p->ctx_w[g * WL_NTERMS + t] >= 0 && p->ctx_w[g * WL_NTERMS + t] <= 65536);
        for (int a = 0; a <= p->amax; a++) CHECK(p->class_lut[(int64_t)g * (p->amax + 1) + a] < C);
    }
    CHECK(p->prec >= 10 && p->prec <= 16 && p->nsets >= 1 && p->nsets <= WL_MAX_SETS);
    CHECK((p->nsets & (p->nsets - 1)) == 0);
    CHECK(p->adapt == 0 || p->adapt == 1);
    if (p->adapt) CHECK(p->adapt_shift >= 0 && p->adapt_shift <= 16 && p->adapt_inc >= 1 && p->adapt_inc <= 4096 &&
                        p->adapt_limit >= 2 * T && p->adapt_limit <= 65536 - p->adapt_inc);
    const int64_t ntab = (int64_t)p->nsets * G * C;
    for (int64_t i = 0; i < ntab; i++) {
        uint64_t sum = 0;
        for (int t = 0; t < T; t++) { CHECK(p->freq[i * T + t] >= 1); sum += p->freq[i * T + t]; }
        CHECK(sum == (1ull << p->prec));
    }
    /* copies */
    wl_params *q = &m->p;
    int32_t *i32;
    OWN(i32, p->prog_start, p->nprog + 1, int32_t); q->prog_start = i32;
    OWN(i32, p->op_kind, nops, int32_t); q->op_kind = i32;
    OWN(i32, p->op_off, nops, int32_t); q->op_off = i32;
    OWN(i32, p->op_ntaps, nops, int32_t); q->op_ntaps = i32;
    OWN(i32, p->op_tap0, nops, int32_t); q->op_tap0 = i32;
    OWN(i32, p->prog_of, 2 * L, int32_t); q->prog_of = i32;
    OWN(i32, p->group_of, 4 * L, int32_t); q->group_of = i32;
    OWN(i32, p->ctx_w, G * WL_NTERMS, int32_t); q->ctx_w = i32;
    OWN(i32, p->cap, G, int32_t); q->cap = i32;
    OWN(i32, p->eg_k, G, int32_t); q->eg_k = i32;
    double *f64;
    OWN(f64, p->taps, p->ntaps_total, double); q->taps = f64;
    OWN(f64, p->band_w, 4 * L, double); q->band_w = f64;
    OWN(f64, p->theta, 4 * L, double); q->theta = f64;
    OWN(f64, p->delta, 4 * L, double); q->delta = f64;
    uint8_t *u8;
    OWN(u8, p->class_lut, (int64_t)G * (p->amax + 1), uint8_t); q->class_lut = u8;
    uint32_t *u32;
    OWN(u32, p->freq, ntab * T, uint32_t); q->freq = u32;
    m->tab_stride = (int64_t)G * C;
    OWN(m->cum, NULL, ntab * (T + 1), uint32_t);
    OWN(m->slot, NULL, ntab << WL_SLOT_BITS, uint8_t);
    OWN(m->cost, NULL, ntab * T, uint32_t);
    for (int64_t i = 0; i < ntab; i++) {
        uint32_t *cu = m->cum + i * (T + 1);
        cu[0] = 0;
        for (int t = 0; t < T; t++) cu[t + 1] = cu[t] + q->freq[i * T + t];
        for (int t = 0; t < T; t++)
            m->cost[i * T + t] = ((uint32_t)q->prec << 16) - log2_fix(q->freq[i * T + t]);
        const int sh = q->prec - WL_SLOT_BITS;
        int t = 0;
        for (int s = 0; s < (1 << WL_SLOT_BITS); s++) {
            while (cu[t + 1] <= ((uint32_t)s << sh)) t++;
            m->slot[(i << WL_SLOT_BITS) + s] = (uint8_t)t;
        }
    }
    *out = m;
    return 0;
}

/* --- quantiser ------------------------------------------------------------------------------ */
WL_INLINE double band_step(const wl_band *b, double D) { return D * b->bw; }

static int quantise_frame(const wl_band *bands, int nb, const double *c, int64_t W, double D, int32_t *q) {
    for (int bi = 0; bi < nb; bi++) {
        const wl_band *b = &bands[bi];
        const double Db = band_step(b, D), th = b->theta;
        for (int64_t y = 0; y < b->h; y++) {
            const double *cr = c + (b->y0 + y) * W + b->x0;
            int32_t *qr = q + (b->y0 + y) * W + b->x0;
            for (int64_t x = 0; x < b->w; x++) {
                const double a = fabs(cr[x]) / Db + th;
                if (!(a < (double)WL_MAX_Q)) WL_FAIL(WL_ERR_RANGE);
                const int32_t qa = (int32_t)a;
                qr[x] = cr[x] < 0 ? -qa : qa;
            }
        }
    }
    return 0;
}

static void dequantise_frame(const wl_band *bands, int nb, const int32_t *q, int64_t W, double D, double *c) {
    for (int bi = 0; bi < nb; bi++) {
        const wl_band *b = &bands[bi];
        const double Db = band_step(b, D), de = b->delta;
        for (int64_t y = 0; y < b->h; y++) {
            const int32_t *qr = q + (b->y0 + y) * W + b->x0;
            double *cr = c + (b->y0 + y) * W + b->x0;
            for (int64_t x = 0; x < b->w; x++) {
                const int32_t v = qr[x];
                if (v == 0) { cr[x] = 0.0; continue; }
                const double r = ((double)(v < 0 ? -(int64_t)v : v) - de) * Db;
                cr[x] = v < 0 ? -r : r;
            }
        }
    }
}

/* --- contexts ------------------------------------------------------------------------------- */
WL_INLINE int64_t mag(int32_t v, int64_t cap) {
    int64_t a = v < 0 ? -(int64_t)v : v;
    return a < cap ? a : cap;
}

/* values of a band: base pointer and row stride */
typedef struct { const int32_t *base; int64_t stride, h, w; } view_t;

WL_INLINE int32_t at(const view_t *v, int64_t y, int64_t x) {
    if (v->h <= 0 || v->w <= 0) return 0;
    if (y >= v->h) y = v->h - 1;
    if (x >= v->w) x = v->w - 1;
    return v->base[y * v->stride + x];
}

typedef struct {
    const int32_t *w; int64_t cap; const uint8_t *lut; int64_t amax; int has_p, has_s1, has_s2;
    view_t self, par, s1, s2;
} ctx_t;

WL_INLINE int ctx_class(const ctx_t *cx, int64_t y, int64_t x) {
    const int32_t *w = cx->w;
    const int32_t *r = cx->self.base + y * cx->self.stride;
    const int64_t cap = cx->cap, bw = cx->self.w, st = cx->self.stride;
    int64_t a = 0;
    if (x >= 1) a += w[0] * mag(r[x - 1], cap);
    if (y >= 1) {
        const int32_t *n = r - st;
        a += w[1] * mag(n[x], cap);
        if (x >= 1) a += w[2] * mag(n[x - 1], cap);
        if (x + 1 < bw) a += w[3] * mag(n[x + 1], cap);
    }
    if (x >= 2) a += w[4] * mag(r[x - 2], cap);
    if (y >= 2) a += w[5] * mag(r[x - 2 * st], cap);
    if (cx->has_p) a += w[6] * mag(at(&cx->par, y >> 1, x >> 1), cap);
    if (cx->has_s1) a += w[7] * mag(at(&cx->s1, y, x), cap);
    if (cx->has_s2) a += w[8] * mag(at(&cx->s2, y, x), cap);
    return cx->lut[a < cx->amax ? a : cx->amax];
}

static void ctx_setup(const wl_model *m, const wl_band *bands, int bi, const int32_t *q, int64_t W,
                      const int32_t *llr, ctx_t *cx) {
    const wl_band *b = &bands[bi];
    const wl_params *p = &m->p;
    const int g = b->group;
    cx->w = p->ctx_w + g * WL_NTERMS;
    cx->cap = p->cap[g];
    cx->lut = p->class_lut + (int64_t)g * (p->amax + 1);
    cx->amax = p->amax;
    if (b->orient == 0) cx->self = (view_t){llr, b->w, b->h, b->w};
    else cx->self = (view_t){q + b->y0 * W + b->x0, W, b->h, b->w};
    const int32_t idx[3] = {b->parent, b->sib1, b->sib2};
    view_t *vs[3] = {&cx->par, &cx->s1, &cx->s2};
    int *has[3] = {&cx->has_p, &cx->has_s1, &cx->has_s2};
    for (int k = 0; k < 3; k++) {
        *has[k] = 0;
        *vs[k] = (view_t){q, W, 0, 0};
        if (idx[k] >= 0) {
            const wl_band *o = &bands[idx[k]];
            *vs[k] = (view_t){q + o->y0 * W + o->x0, W, o->h, o->w};
            *has[k] = o->h > 0 && o->w > 0 && cx->w[6 + k] != 0;
        }
    }
}

/* LL prediction from the already known q of the LL band */
WL_INLINE int64_t ll_predict(int mode, const int32_t *q, int64_t W, int64_t y, int64_t x) {
    if (mode == 0 || (y == 0 && x == 0)) return 0;
    const int64_t w_ = x > 0 ? q[y * W + x - 1] : q[(y - 1) * W + x];
    const int64_t n_ = y > 0 ? q[(y - 1) * W + x] : w_;
    if (mode == 1 || x == 0 || y == 0) return (w_ + n_) >> 1;
    const int64_t nw = q[(y - 1) * W + x - 1];
    const int64_t mx = w_ > n_ ? w_ : n_, mn = w_ > n_ ? n_ : w_;
    if (nw >= mx) return mn;
    if (nw <= mn) return mx;
    return w_ + n_ - nw;
}

/* --- symbols of a frame (encoder side) --------------------------------------------------------- */
typedef struct {
    uint16_t *tab;   /* g * C + class */
    int32_t *val;    /* the value coded (LL: residual) */
    int64_t n, ops;  /* symbols, coder operations (upper bound of 16-bit words) */
} syms_t;

WL_INLINE int ilog2_64(uint64_t v) { return 63 - __builtin_clzll(v); }

/* EG-k of m: unary e (e ones, one zero), then e + k bits r; u = (m >> k) + 1, e = ilog2(u) */
WL_INLINE void eg_split(int64_t m, int k, int *e, int *nb, uint64_t *r) {
    const uint64_t u = ((uint64_t)m >> k) + 1;
    *e = ilog2_64(u);
    *nb = *e + k;
    *r = ((u - (1ull << *e)) << k) | ((uint64_t)m & ((1ull << k) - 1));
}

static int64_t value_ops(int64_t v, int esc, int k) {
    const int64_t a = v < 0 ? -v : v;
    int64_t ops = 1 + (a != 0);
    if (a >= esc) {
        int e, nb; uint64_t r;
        eg_split(a - esc, k, &e, &nb, &r);
        ops += e + 1 + (nb + 7) / 8;
    }
    return ops;
}

/* LL residuals into llr (h x w of the LL band) from q */
static void ll_residuals(const wl_model *m, const wl_band *b, const int32_t *q, int64_t W, int32_t *llr) {
    for (int64_t y = 0; y < b->h; y++)
        for (int64_t x = 0; x < b->w; x++)
            llr[y * b->w + x] = (int32_t)(q[y * W + x] - ll_predict(m->p.ll_pred, q, W, y, x));
}

static void collect(const wl_model *m, const wl_band *bands, int nb, const int32_t *q, int64_t W,
                    const int32_t *llr, syms_t *s) {
    const wl_params *p = &m->p;
    const int C = p->nclasses, esc = p->ntok - 1;
    int64_t n = 0, ops = 0;
    for (int bi = 0; bi < nb; bi++) {
        const wl_band *b = &bands[bi];
        ctx_t cx;
        ctx_setup(m, bands, bi, q, W, llr, &cx);
        const int k = p->eg_k[b->group];
        for (int64_t y = 0; y < b->h; y++)
            for (int64_t x = 0; x < b->w; x++) {
                const int32_t v = cx.self.base[y * cx.self.stride + x];
                s->tab[n] = (uint16_t)(b->group * C + ctx_class(&cx, y, x));
                s->val[n++] = v;
                ops += value_ops(v, esc, k);
            }
    }
    s->n = n;
    s->ops = ops;
}

/* the groups present in a frame, ascending, and the bits of a set choice */
static int frame_groups(const wl_model *m, const wl_band *bands, int nb, int *groups) {
    uint8_t seen[WL_MAX_GROUPS] = {0};
    for (int i = 0; i < nb; i++) if (bands[i].h > 0 && bands[i].w > 0) seen[bands[i].group] = 1;
    int n = 0;
    for (int g = 0; g < m->p.ngroups; g++) if (seen[g]) groups[n++] = g;
    return n;
}

WL_INLINE int set_bits(const wl_model *m) { return m->p.nsets > 1 ? __builtin_ctz((unsigned)m->p.nsets) : 0; }

static void choose_sets(const wl_model *m, const syms_t *s, int *set_of) {
    const wl_params *p = &m->p;
    const int S = p->nsets, T = p->ntok, C = p->nclasses;
    for (int g = 0; g < p->ngroups; g++) set_of[g] = 0;
    if (S == 1) return;
    static const int MAXG = WL_MAX_GROUPS;
    uint64_t cost[WL_MAX_SETS * WL_MAX_GROUPS];
    memset(cost, 0, sizeof cost);
    for (int64_t i = 0; i < s->n; i++) {
        const int tab = s->tab[i], g = tab / C;
        const int32_t v = s->val[i];
        const int64_t a = v < 0 ? -(int64_t)v : v;
        const int t = a < T - 1 ? (int)a : T - 1;
        for (int k = 0; k < S; k++) cost[k * MAXG + g] += m->cost[((int64_t)k * m->tab_stride + tab) * T + t];
    }
    for (int g = 0; g < p->ngroups; g++) {
        int best = 0;
        for (int k = 1; k < S; k++) if (cost[k * MAXG + g] < cost[best * MAXG + g]) best = k;
        set_of[g] = best;
    }
}

/* --- rANS (static tables) ---------------------------------------------------------------------- */
WL_INLINE void rans_put(uint32_t *x, uint16_t **pp, uint32_t start, uint32_t freq, int prec) {
    const uint32_t xm = ((RANS_L >> prec) << 16) * freq;
    if (*x >= xm) { *--(*pp) = (uint16_t)*x; *x >>= 16; }
    *x = ((*x / freq) << prec) + (*x % freq) + start;
}
WL_INLINE void rans_bits(uint32_t *x, uint16_t **pp, uint64_t v, int nb, int prec) {
    rans_put(x, pp, (uint32_t)v << (prec - nb), 1u << (prec - nb), prec);
}

/* one value, in reverse decode order: sign, EG bits (last chunk first), unary, token */
static void rans_value(const wl_model *m, uint32_t *x, uint16_t **pp, const uint32_t *cum, int32_t v, int k) {
    const int prec = m->p.prec, esc = m->p.ntok - 1;
    const int64_t a = v < 0 ? -(int64_t)v : v;
    if (a) rans_bits(x, pp, v < 0, 1, prec);
    int t = (int)(a < esc ? a : esc);
    if (a >= esc) {
        int e, nb; uint64_t r;
        eg_split(a - esc, k, &e, &nb, &r);
        /* chunks from the most significant: first chunk nb - 8 * floor((nb - 1) / 8) bits */
        int nchunks = (nb + 7) / 8;
        for (int c = nchunks - 1; c >= 0; c--) {
            const int lo = 8 * (nchunks - 1 - c);          /* low bit of chunk c (0 = first read) */
            const int len = c == 0 ? nb - 8 * (nchunks - 1) : 8;
            rans_bits(x, pp, (r >> lo) & ((1ull << len) - 1), len, prec);
        }
        rans_bits(x, pp, 0, 1, prec);
        for (int i = 0; i < e; i++) rans_bits(x, pp, 1, 1, prec);
    }
    rans_put(x, pp, cum[t], cum[t + 1] - cum[t], prec);
}

/* --- range coder (adaptive counts) -------------------------------------------------------------- */
typedef struct { uint64_t low; uint32_t range; uint8_t cache; uint64_t csize; uint8_t *buf; size_t pos, cap; int err; } rc_enc;

static void rc_shift(rc_enc *e) {
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        const uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t t = e->cache;
        do {
            if (e->pos >= e->cap) { e->err = 1; } else e->buf[e->pos++] = (uint8_t)(t + carry);
            t = 0xFF;
        } while (--e->csize);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->csize++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}
WL_INLINE void rc_put(rc_enc *e, uint32_t start, uint32_t freq, uint32_t total) {
    const uint32_t r = e->range / total;
    e->low += (uint64_t)r * start;
    e->range = r * freq;
    while (e->range < (1u << 24)) { e->range <<= 8; rc_shift(e); }
}

typedef struct { uint32_t code, range; const uint8_t *p, *end; int err; } rc_dec;

WL_INLINE uint8_t rc_byte(rc_dec *d) {
    if (d->p >= d->end) { d->err = 1; return 0; }
    return *d->p++;
}

/* adaptive counts of one frame: [S-chosen tables][ntok] initialised from the frozen tables */
typedef struct { uint32_t *cnt; uint32_t *tot; } adapt_t;

static int adapt_init(const wl_model *m, const int *set_of, adapt_t *a) {
    const wl_params *p = &m->p;
    const int64_t ntab = m->tab_stride, T = p->ntok;
    a->cnt = malloc((size_t)(ntab * T) * sizeof(uint32_t));
    a->tot = malloc((size_t)ntab * sizeof(uint32_t));
    if (!a->cnt || !a->tot) { free(a->cnt); free(a->tot); return -1; }
    for (int64_t i = 0; i < ntab; i++) {
        const int g = (int)(i / p->nclasses);
        const uint32_t *f = p->freq + ((int64_t)set_of[g] * ntab + i) * T;
        uint32_t tot = 0;
        for (int t = 0; t < T; t++) {
            uint32_t c = f[t] >> p->adapt_shift;
            a->cnt[i * T + t] = c ? c : 1;
            tot += a->cnt[i * T + t];
        }
        a->tot[i] = tot;
    }
    /* initial totals above the limit are halved like any other */
    for (int64_t i = 0; i < ntab; i++)
        while (a->tot[i] > (uint32_t)p->adapt_limit) {
            uint32_t tot = 0;
            for (int t = 0; t < T; t++) { uint32_t *c = &a->cnt[i * T + t]; *c = (*c + 1) >> 1; tot += *c; }
            a->tot[i] = tot;
        }
    return 0;
}

WL_INLINE void adapt_update(const wl_model *m, adapt_t *a, int64_t tab, int t) {
    const int T = m->p.ntok;
    uint32_t *c = a->cnt + tab * T;
    c[t] += (uint32_t)m->p.adapt_inc;
    a->tot[tab] += (uint32_t)m->p.adapt_inc;
    if (a->tot[tab] > (uint32_t)m->p.adapt_limit) {
        uint32_t tot = 0;
        for (int i = 0; i < T; i++) { c[i] = (c[i] + 1) >> 1; tot += c[i]; }
        a->tot[tab] = tot;
    }
}

static void rc_value(const wl_model *m, rc_enc *e, adapt_t *a, int64_t tab, int32_t v, int k) {
    const int T = m->p.ntok, esc = T - 1;
    const int64_t av = v < 0 ? -(int64_t)v : v;
    const int t = (int)(av < esc ? av : esc);
    const uint32_t *c = a->cnt + tab * T;
    uint32_t start = 0;
    for (int i = 0; i < t; i++) start += c[i];
    rc_put(e, start, c[t], a->tot[tab]);
    adapt_update(m, a, tab, t);
    if (av >= esc) {
        int ee, nb; uint64_t r;
        eg_split(av - esc, k, &ee, &nb, &r);
        for (int i = 0; i < ee; i++) rc_put(e, 1, 1, 2);
        rc_put(e, 0, 1, 2);
        const int nchunks = (nb + 7) / 8;
        for (int c2 = 0; c2 < nchunks; c2++) {
            const int len = c2 == 0 ? nb - 8 * (nchunks - 1) : 8;
            const int lo = 8 * (nchunks - 1 - c2);
            rc_put(e, (uint32_t)((r >> lo) & ((1ull << len) - 1)), 1, 1u << len);
        }
    }
    if (av) rc_put(e, v < 0, 1, 2);
}

/* --- frame buffers ------------------------------------------------------------------------------ */
typedef struct {
    double *c, *scratch;
    int32_t *q, *llr;
    uint16_t *tab;
    int32_t *val;
} work_t;

static void work_free(work_t *w) {
    free(w->c); free(w->scratch); free(w->q); free(w->llr); free(w->tab); free(w->val);
    memset(w, 0, sizeof *w);
}

static int work_alloc(work_t *w, int64_t H, int64_t W, int syms) {
    memset(w, 0, sizeof *w);
    const size_t n = (size_t)(H * W);
    w->c = malloc(n * sizeof(double));
    w->scratch = malloc((size_t)wl_scratch_size(H, W) * sizeof(double));
    w->q = malloc(n * sizeof(int32_t));
    w->llr = malloc(n * sizeof(int32_t));
    if (syms) { w->tab = malloc(n * sizeof(uint16_t)); w->val = malloc(n * sizeof(int32_t)); }
    if (!w->c || !w->scratch || !w->q || !w->llr || (syms && (!w->tab || !w->val))) { work_free(w); return -1; }
    return 0;
}

static int check_dims(int64_t B, int64_t H, int64_t W) {
    return B >= 0 && H >= 1 && W >= 1 && H <= (1 << 30) && W <= (1 << 30) && H * W <= ((int64_t)1 << 30);
}

/* The smallest step index whose quantised values all stay below 2^29 (room to spare under
 * WL_MAX_Q for the division's rounding and theta), from the transformed frame c. */
static int32_t min_step(const wl_band *bands, int nb, const double *c, int64_t W) {
    double mx = 0;
    for (int bi = 0; bi < nb; bi++) {
        const wl_band *b = &bands[bi];
        for (int64_t y = 0; y < b->h; y++) {
            const double *cr = c + (b->y0 + y) * W + b->x0;
            for (int64_t x = 0; x < b->w; x++) {
                const double v = fabs(cr[x]) / b->bw;
                if (!(v <= mx)) mx = v; /* NaN propagates */
            }
        }
    }
    if (mx == 0) return 0;
    if (!(mx / wl_step(65535) < 536870912.0)) return -1;
    int32_t lo = 0, hi = 65535; /* hi passes */
    while (lo < hi) {
        const int32_t mid = lo + (hi - lo) / 2;
        if (mx / wl_step(mid) < 536870912.0) hi = mid; else lo = mid + 1;
    }
    return lo;
}

/* transform + quantise (the step raised to the frame's smallest codable one: *step is updated)
 * + the decoder's frame; returns 0 or an error */
static int analyse(const wl_model *m, const double *z, int64_t H, int64_t W, int32_t *step, const wl_band *bands,
                   int nb, work_t *w, double *zhat) {
    const int64_t n = H * W;
    memcpy(w->c, z, (size_t)n * sizeof(double));
    wl_forward_s(m, w->c, H, W, w->scratch);
    const int32_t k0 = min_step(bands, nb, w->c, W);
    if (k0 < 0) WL_FAIL(WL_ERR_RANGE);
    if (*step < k0) *step = k0;
    const double D = wl_step(*step);
    int rc = quantise_frame(bands, nb, w->c, W, D, w->q);
    if (rc) return rc;
    if (zhat) {
        dequantise_frame(bands, nb, w->q, W, D, zhat);
        wl_inverse_s(m, zhat, H, W, w->scratch);
    }
    ll_residuals(m, &bands[0], w->q, W, w->llr);
    return 0;
}

static int grow(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 256;
    while (nc < need) nc *= 2;
    uint8_t *nb = realloc(*buf, nc);
    if (!nb) return -1;
    *buf = nb;
    *cap = nc;
    return 0;
}

int64_t wl_encode(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W, int32_t *steps,
                  double *zhat, uint8_t **out) {
    *out = NULL;
    if (!check_dims(B, H, W)) WL_FAIL(WL_ERR_ARG);
    for (int64_t f = 0; f < B; f++) if (steps[f] < 0 || steps[f] > 65535) WL_FAIL(WL_ERR_ARG);
    const wl_params *p = &m->p;
    wl_band bands[WL_MAX_BANDS];
    const int nb = wl_layout(m, H, W, bands);
    int groups[WL_MAX_GROUPS];
    const int ng = frame_groups(m, bands, nb, groups), sb = set_bits(m);
    work_t w;
    if (work_alloc(&w, H, W, 1)) WL_FAIL(WL_ERR_NOMEM);
    uint8_t *buf = NULL;
    size_t cap = 0, pos = 0;
    uint16_t *words = NULL;
    size_t wcap = 0;
    int rc = 0;
    for (int64_t f = 0; f < B && !rc; f++) {
        const double *zf = z + f * H * W;
        double *zh = zhat + f * H * W;
        rc = analyse(m, zf, H, W, &steps[f], bands, nb, &w, zh);
        if (rc) break;
        syms_t s = {w.tab, w.val, 0, 0};
        collect(m, bands, nb, w.q, W, w.llr, &s);
        int set_of[WL_MAX_GROUPS];
        choose_sets(m, &s, set_of);
        if (!p->adapt) {
            const size_t need = (size_t)(s.ops + ng + 4);
            if (need > wcap) {
                free(words);
                wcap = need;
                words = malloc(wcap * sizeof(uint16_t));
                if (!words) { rc = WL_ERR_NOMEM; break; }
            }
            uint16_t *end = words + wcap, *ptr = end;
            uint32_t x = RANS_L + (uint32_t)steps[f]; /* the decoder's final state: the frame's step */
            const int T = p->ntok;
            for (int64_t i = s.n - 1; i >= 0; i--) {
                const int tab = s.tab[i], g = tab / p->nclasses;
                const uint32_t *cum = m->cum + ((int64_t)set_of[g] * m->tab_stride + tab) * (T + 1);
                rans_value(m, &x, &ptr, cum, s.val[i], p->eg_k[g]);
            }
            for (int i = ng - 1; i >= 0 && sb; i--) rans_bits(&x, &ptr, (uint64_t)set_of[groups[i]], sb, p->prec);
            *--ptr = (uint16_t)x;
            *--ptr = (uint16_t)(x >> 16);
            const size_t nw = (size_t)(end - ptr);
            if (grow(&buf, &cap, pos + 2 * nw)) { rc = WL_ERR_NOMEM; break; }
            for (size_t i = 0; i < nw; i++) { buf[pos++] = (uint8_t)ptr[i]; buf[pos++] = (uint8_t)(ptr[i] >> 8); }
        } else {
            adapt_t a;
            if (adapt_init(m, set_of, &a)) { rc = WL_ERR_NOMEM; break; }
            /* each operation shifts out at most 2 bytes (range >= 2^24 before, total <= 2^16) */
            const size_t need = (size_t)(2 * (s.ops + ng + 2) + 16);
            uint8_t *tmp = malloc(need);
            if (!tmp) { free(a.cnt); free(a.tot); rc = WL_ERR_NOMEM; break; }
            rc_enc e = {0, 0xFFFFFFFFu, 0, 1, tmp, 0, need, 0};
            rc_put(&e, (uint32_t)steps[f] >> 8, 1, 256);
            rc_put(&e, (uint32_t)steps[f] & 255, 1, 256);
            for (int i = 0; i < ng && sb; i++) rc_put(&e, (uint32_t)set_of[groups[i]], 1, 1u << sb);
            for (int64_t i = 0; i < s.n; i++) {
                const int tab = s.tab[i];
                rc_value(m, &e, &a, tab, s.val[i], p->eg_k[tab / p->nclasses]);
            }
            for (int i = 0; i < 5; i++) rc_shift(&e);
            free(a.cnt); free(a.tot);
            if (e.err) { free(tmp); rc = WL_ERR_NOMEM; wl_fail_line = __LINE__; break; }
            if (grow(&buf, &cap, pos + e.pos)) { free(tmp); rc = WL_ERR_NOMEM; break; }
            memcpy(buf + pos, tmp, e.pos);
            pos += e.pos;
            free(tmp);
        }
    }
    free(words);
    work_free(&w);
    if (rc) { free(buf); return rc; }
    if (!buf) { buf = malloc(1); if (!buf) WL_FAIL(WL_ERR_NOMEM); }
    *out = buf;
    return (int64_t)pos;
}

/* --- decoder ------------------------------------------------------------------------------------ */
typedef struct {
    /* rANS */
    uint32_t x; const uint8_t *p, *end;
    /* range coder */
    rc_dec rc;
    adapt_t a;
    int err;
} dec_t;

WL_INLINE uint32_t rd_word(dec_t *d) {
    if (WL_UNLIKELY(d->end - d->p < 2)) { d->err = 1; return 0; }
    const uint32_t v = (uint32_t)d->p[0] | ((uint32_t)d->p[1] << 8);
    d->p += 2;
    return v;
}

WL_INLINE void rans_renorm(dec_t *d) {
    if (d->x < RANS_L) d->x = (d->x << 16) | rd_word(d);
}

WL_INLINE uint32_t rans_get_bits(dec_t *d, int nb, int prec) {
    const uint32_t s = d->x & ((1u << prec) - 1);
    const uint32_t v = s >> (prec - nb);
    d->x = (d->x >> prec) * (1u << (prec - nb)) + s - (v << (prec - nb));
    rans_renorm(d);
    return v;
}

WL_INLINE int rans_get_tok(const wl_model *m, dec_t *d, int64_t tabi) {
    const int prec = m->p.prec;
    const uint32_t s = d->x & ((1u << prec) - 1);
    const uint32_t *cum = m->cum + tabi * (m->p.ntok + 1);
    int t = m->slot[(tabi << WL_SLOT_BITS) + (s >> (prec - WL_SLOT_BITS))];
    while (cum[t + 1] <= s) t++;
    d->x = (cum[t + 1] - cum[t]) * (d->x >> prec) + s - cum[t];
    rans_renorm(d);
    return t;
}

WL_INLINE void rc_norm(rc_dec *r) {
    while (r->range < (1u << 24)) { r->code = (r->code << 8) | rc_byte(r); r->range <<= 8; }
}
WL_INLINE uint32_t rc_get_freq(rc_dec *r, uint32_t total, uint32_t *rr) {
    *rr = r->range / total;
    uint32_t v = r->code / *rr;
    if (v >= total) { r->err = 1; v = total - 1; }
    return v;
}
WL_INLINE void rc_take(rc_dec *r, uint32_t rr, uint32_t start, uint32_t freq) {
    r->code -= rr * start;
    r->range = rr * freq;
    rc_norm(r);
}
WL_INLINE uint32_t rc_get_bits(rc_dec *r, int nb) {
    uint32_t rr;
    const uint32_t v = rc_get_freq(r, 1u << nb, &rr);
    rc_take(r, rr, v, 1);
    return v;
}

WL_INLINE uint32_t get_bits(const wl_model *m, dec_t *d, int nb, int adaptive) {
    return adaptive ? rc_get_bits(&d->rc, nb) : rans_get_bits(d, nb, m->p.prec);
}

WL_INLINE int get_tok(const wl_model *m, dec_t *d, int64_t tab, int set, int adaptive) {
    if (!adaptive) return rans_get_tok(m, d, (int64_t)set * m->tab_stride + tab);
    const int T = m->p.ntok;
    const uint32_t *c = d->a.cnt + tab * T;
    uint32_t rr;
    const uint32_t v = rc_get_freq(&d->rc, d->a.tot[tab], &rr);
    uint32_t start = 0;
    int t = 0;
    while (t < T - 1 && start + c[t] <= v) start += c[t++];
    if (start + c[t] <= v) d->rc.err = 1;
    rc_take(&d->rc, rr, start, c[t]);
    adapt_update(m, &d->a, tab, t);
    return t;
}

/* one value: token, EG remainder, sign; returns 0 or -1 (corrupt) */
WL_INLINE int get_value(const wl_model *m, dec_t *d, int64_t tab, int set, int k, int adaptive, int64_t *out) {
    const int esc = m->p.ntok - 1;
    int64_t a = get_tok(m, d, tab, set, adaptive);
    if (a == esc) {
        int e = 0;
        while (get_bits(m, d, 1, adaptive)) if (++e > 31) return -1;
        const int nb = e + k;
        uint64_t r = 0;
        const int nchunks = (nb + 7) / 8;
        for (int c = 0; c < nchunks; c++) {
            const int len = c == 0 ? nb - 8 * (nchunks - 1) : 8;
            r = (r << len) | get_bits(m, d, len, adaptive);
        }
        const uint64_t u = (1ull << e) + (r >> k);
        a = (int64_t)((((u - 1) << k) | (r & ((1ull << k) - 1))) + (uint64_t)esc);
        if (a >= 2 * (int64_t)WL_MAX_Q) return -1;
    }
    if (a && get_bits(m, d, 1, adaptive)) a = -a;
    *out = a;
    return 0;
}

WL_INLINE int decode_symbols(const wl_model *m, const wl_band *bands, int nb, int64_t W, const int *set_of,
                             work_t *w, dec_t *d, int adaptive) {
    const wl_params *p = &m->p;
    const int C = p->nclasses;
    for (int bi = 0; bi < nb; bi++) {
        const wl_band *b = &bands[bi];
        ctx_t cx;
        ctx_setup(m, bands, bi, w->q, W, w->llr, &cx);
        const int g = b->group, k = p->eg_k[g], set = set_of[g];
        const int64_t tab0 = (int64_t)g * C;
        for (int64_t y = 0; y < b->h; y++) {
            for (int64_t x = 0; x < b->w; x++) {
                const int cl = ctx_class(&cx, y, x);
                int64_t v;
                if (get_value(m, d, tab0 + cl, set, k, adaptive, &v)) WL_FAIL(WL_ERR_CORRUPT);
                if (b->orient == 0) {
                    w->llr[y * b->w + x] = (int32_t)v;
                    v += ll_predict(p->ll_pred, w->q, W, y, x);
                }
                if (v >= WL_MAX_Q || v <= -(int64_t)WL_MAX_Q) WL_FAIL(WL_ERR_CORRUPT);
                w->q[(b->y0 + y) * W + b->x0 + x] = (int32_t)v;
            }
            if (d->err || d->rc.err) WL_FAIL(WL_ERR_CORRUPT);
        }
    }
    return 0;
}

static int decode_static(const wl_model *m, const wl_band *b, int nb, int64_t W, const int *s, work_t *w, dec_t *d) {
    return decode_symbols(m, b, nb, W, s, w, d, 0);
}
static int decode_adaptive(const wl_model *m, const wl_band *b, int nb, int64_t W, const int *s, work_t *w, dec_t *d) {
    return decode_symbols(m, b, nb, W, s, w, d, 1);
}

int64_t wl_decode(const wl_model *m, const uint8_t *in, size_t n, int64_t B, int64_t H, int64_t W,
                  int32_t *steps, double *zhat) {
    if (!check_dims(B, H, W)) WL_FAIL(WL_ERR_ARG);
    const wl_params *p = &m->p;
    wl_band bands[WL_MAX_BANDS];
    const int nb = wl_layout(m, H, W, bands);
    int groups[WL_MAX_GROUPS];
    const int ng = frame_groups(m, bands, nb, groups), sb = set_bits(m);
    work_t w;
    if (work_alloc(&w, H, W, 0)) WL_FAIL(WL_ERR_NOMEM);
    size_t pos = 0;
    int rc = 0;
    for (int64_t f = 0; f < B && !rc; f++) {
        /* a message ends where its decoder stops reading: no length is stored */
        dec_t d;
        memset(&d, 0, sizeof d);
        int set_of[WL_MAX_GROUPS] = {0};
        if (!p->adapt) {
            d.p = in + pos;
            d.end = in + n;
            d.x = rd_word(&d) << 16;
            d.x |= rd_word(&d);
            if (d.err || d.x < RANS_L) { rc = WL_ERR_CORRUPT; wl_fail_line = __LINE__; break; }
            for (int i = 0; i < ng && sb; i++) set_of[groups[i]] = (int)rans_get_bits(&d, sb, p->prec);
            rc = decode_static(m, bands, nb, W, set_of, &w, &d);
            if (!rc && (d.err || d.x < RANS_L || d.x - RANS_L > 65535)) { rc = WL_ERR_CORRUPT; wl_fail_line = __LINE__; }
            steps[f] = (int32_t)(d.x - RANS_L);
            pos = (size_t)(d.p - in);
        } else {
            d.rc = (rc_dec){0, 0xFFFFFFFFu, in + pos, in + n, 0};
            if (rc_byte(&d.rc) != 0) { rc = WL_ERR_CORRUPT; wl_fail_line = __LINE__; break; }
            for (int i = 0; i < 4; i++) d.rc.code = (d.rc.code << 8) | rc_byte(&d.rc);
            steps[f] = (int32_t)(rc_get_bits(&d.rc, 8) << 8);
            steps[f] |= (int32_t)rc_get_bits(&d.rc, 8);
            for (int i = 0; i < ng && sb; i++) set_of[groups[i]] = (int)rc_get_bits(&d.rc, sb);
            if (adapt_init(m, set_of, &d.a)) { rc = WL_ERR_NOMEM; break; }
            rc = decode_adaptive(m, bands, nb, W, set_of, &w, &d);
            free(d.a.cnt); free(d.a.tot);
            if (!rc && d.rc.err) { rc = WL_ERR_CORRUPT; wl_fail_line = __LINE__; }
            pos = (size_t)(d.rc.p - in);
        }
        if (rc) break;
        double *zh = zhat + f * H * W;
        dequantise_frame(bands, nb, w.q, W, wl_step(steps[f]), zh);
        wl_inverse_s(m, zh, H, W, w.scratch);
    }
    work_free(&w);
    if (rc) return rc;
    return (int64_t)pos;
}

/* --- training counts, quantised values, rate control ---------------------------------------------- */
int wl_stats(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W, const int32_t *steps,
             int per_frame, int64_t *counts, int64_t *raw_bits) {
    if (!check_dims(B, H, W)) WL_FAIL(WL_ERR_ARG);
    const wl_params *p = &m->p;
    wl_band bands[WL_MAX_BANDS];
    const int nb = wl_layout(m, H, W, bands);
    work_t w;
    if (work_alloc(&w, H, W, 1)) WL_FAIL(WL_ERR_NOMEM);
    const int T = p->ntok, esc = T - 1;
    const int64_t per = m->tab_stride * T;
    int rc = 0;
    for (int64_t f = 0; f < B; f++) {
        if (steps[f] < 0 || steps[f] > 65535) { rc = WL_ERR_ARG; break; }
        int32_t step = steps[f];
        rc = analyse(m, z + f * H * W, H, W, &step, bands, nb, &w, NULL);
        if (rc) break;
        syms_t s = {w.tab, w.val, 0, 0};
        collect(m, bands, nb, w.q, W, w.llr, &s);
        int64_t *cf = counts + (per_frame ? f * per : 0);
        for (int64_t i = 0; i < s.n; i++) {
            const int64_t a = s.val[i] < 0 ? -(int64_t)s.val[i] : s.val[i];
            const int t = (int)(a < esc ? a : esc);
            cf[(int64_t)s.tab[i] * T + t]++;
            if (raw_bits) {
                int64_t bits = a != 0;
                if (a >= esc) {
                    int e, nbits; uint64_t r;
                    eg_split(a - esc, p->eg_k[s.tab[i] / p->nclasses], &e, &nbits, &r);
                    bits += e + 1 + nbits;
                }
                raw_bits[0] += bits;
            }
        }
    }
    work_free(&w);
    return rc;
}

int wl_quantise(const wl_model *m, const double *z, int64_t H, int64_t W, int32_t step, int32_t *q) {
    if (!check_dims(1, H, W) || step < 0 || step > 65535) WL_FAIL(WL_ERR_ARG);
    wl_band bands[WL_MAX_BANDS];
    const int nb = wl_layout(m, H, W, bands);
    work_t w;
    if (work_alloc(&w, H, W, 0)) WL_FAIL(WL_ERR_NOMEM);
    int rc = analyse(m, z, H, W, &step, bands, nb, &w, NULL);
    if (!rc) memcpy(q, w.q, (size_t)(H * W) * sizeof(int32_t));
    work_free(&w);
    return rc;
}

/* sum of squared differences of the reconstruction at a step (coefficients c given) */
static int sse_at(const wl_model *m, const wl_band *bands, int nb, const double *c, const double *z, int64_t H,
                  int64_t W, int32_t step, work_t *w, double *y, double *sse) {
    const double D = wl_step(step);
    int rc = quantise_frame(bands, nb, c, W, D, w->q);
    if (rc) return rc;
    dequantise_frame(bands, nb, w->q, W, D, y);
    wl_inverse_s(m, y, H, W, w->scratch);
    double s = 0;
    for (int64_t i = 0; i < H * W; i++) { const double e = y[i] - z[i]; s += e * e; }
    *sse = s;
    return 0;
}

int wl_search_steps(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W, const double *target,
                    int32_t lo, int32_t hi, int32_t *steps) {
    if (!check_dims(B, H, W) || lo < 0 || hi > 65535 || lo > hi) WL_FAIL(WL_ERR_ARG);
    wl_band bands[WL_MAX_BANDS];
    const int nb = wl_layout(m, H, W, bands);
    work_t w;
    if (work_alloc(&w, H, W, 0)) WL_FAIL(WL_ERR_NOMEM);
    double *y = malloc((size_t)(H * W) * sizeof(double));
    if (!y) { work_free(&w); WL_FAIL(WL_ERR_NOMEM); }
    const int64_t n = H * W;
    int rc = 0;
    for (int64_t f = 0; f < B && !rc; f++) {
        const double *zf = z + f * n;
        double mean = 0;
        for (int64_t i = 0; i < n; i++) mean += zf[i];
        mean /= (double)n;
        double energy = 0;
        for (int64_t i = 0; i < n; i++) { const double e = zf[i] - mean; energy += e * e; }
        const double limit = target[f] * target[f] * energy;
        memcpy(w.c, zf, (size_t)n * sizeof(double));
        wl_forward_s(m, w.c, H, W, w.scratch);
        const int32_t k0 = min_step(bands, nb, w.c, W);
        if (k0 < 0) { rc = WL_ERR_RANGE; wl_fail_line = __LINE__; break; }
        int32_t a = lo > k0 ? lo : k0, b = hi > a ? hi : a;
        double s;
        rc = sse_at(m, bands, nb, w.c, zf, H, W, b, &w, y, &s);
        if (rc) break;
        if (s <= limit) { steps[f] = b; continue; }
        /* invariant: b fails; a passes or is the finest step allowed (returned when nothing passes) */
        while (b - a > 1) {
            const int32_t mid = a + (b - a) / 2;
            rc = sse_at(m, bands, nb, w.c, zf, H, W, mid, &w, y, &s);
            if (rc) break;
            if (s <= limit) a = mid; else b = mid;
        }
        steps[f] = a;
    }
    free(y);
    work_free(&w);
    return rc;
}
