/* Quantiser, contexts and entropy coding of the wavelet engine (docs/wavelet.md).
 *
 * Per frame: forward transform, per band q = sign(c) floor(|c| / D_b + theta_b), the LL band
 * coded as the residual to an integer predictor of q (none, (W + N) >> 1, MED), the detail
 * bands coarse to fine (HL, LH, HH per level). Each value v gets a context class from what
 * the decoder already has: a = bias + sum of weighted features (a lookup of magnitudes or
 * sums of magnitudes: W N NW NE WW NN in its band, the parent and its neighbourhood, the
 * siblings at the same position and their neighbourhoods), or for the LL band the gradient
 * activity of its neighbours; a token (escape + Exp-Golomb, or hybrid exponent/mantissa
 * with raw bits) under the table of (group, class) from the frame's table set; a sign (a raw
 * bit, or under a table of the signs around it). Static tables: rANS (32-bit state, 16-bit
 * words, one message per chunk); adaptive: tokens as binary decisions (unary), every decision under
 * an adaptive probability, in a binary range coder (LZMA's).
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
    free(m->prof);
    free(m);
}

/* everything but the context model must be the same for profiles of one model */
static int same_shared(const wl_model *a, const wl_model *b) {
    const wl_params *p = &a->p, *q = &b->p;
    const int L = p->levels > 0 ? p->levels : 1;
#define EQ(f) (p->f == q->f)
#define EQA(f, n, t) (!memcmp(p->f, q->f, (size_t)(n) * sizeof(t)))
    if (!(EQ(levels) && EQ(min_len) && EQ(level_rule) && EQ(nprog) && EQ(ntaps_total) && EQ(ll_pred) && EQ(ll_ctx) &&
          EQ(ll_classes) && EQ(ngroups) && EQ(nclasses) && EQ(ntok) && EQ(amax) && EQ(fmax) && EQ(tok_mode) &&
          EQ(tok_direct) && EQ(sign_ctx) && EQ(zero_run) && EQ(prec) && EQ(nsets) && EQ(adapt) && EQ(adapt_rate) &&
          EQ(adapt_smax) && EQ(rdo_lambda)))
        return 0;
    const int nops = p->prog_start[p->nprog];
    return EQA(prog_start, p->nprog + 1, int32_t) && EQA(op_kind, nops, int32_t) && EQA(op_off, nops, int32_t) &&
           EQA(op_ntaps, nops, int32_t) && EQA(op_tap0, nops, int32_t) && EQA(taps, p->ntaps_total, double) &&
           EQA(prog_of, 2 * L, int32_t) && EQA(band_w, 4 * L, double) && EQA(theta, 4 * L, double) &&
           EQA(delta, 4 * L, double) && EQA(group_of, 4 * L, int32_t) && EQA(flut, p->fmax + 1, int32_t);
#undef EQ
#undef EQA
}

int wl_model_attach(wl_model *base, wl_model **others, int n) {
    const int np = n + 1;
    if (n < 1 || np > 16 || (np & (np - 1)) || base->prof) WL_FAIL(WL_ERR_ARG);
    for (int i = 0; i < n; i++) if (!others[i] || others[i]->prof || !same_shared(base, others[i])) WL_FAIL(WL_ERR_ARG);
    base->prof = malloc((size_t)np * sizeof(wl_model *));
    if (!base->prof) WL_FAIL(WL_ERR_NOMEM);
    base->prof[0] = base;
    for (int i = 0; i < n; i++) base->prof[i + 1] = others[i];
    base->nprof = np;
    return 0;
}

WL_INLINE int nprof_of(const wl_model *m) { return m->prof ? m->nprof : 1; }
WL_INLINE const wl_model *prof_of(const wl_model *m, int i) { return m->prof ? m->prof[i] : m; }

#define CHECK(c) do { if (!(c)) { wl_fail_line = __LINE__; wl_model_free(m); return WL_ERR_ARG; } } while (0)
#define OWN(dst, src, n, type) do { (dst) = own(m, (src), (size_t)(n) * sizeof(type)); \
    if (!(dst)) { wl_model_free(m); WL_FAIL(WL_ERR_NOMEM); } } while (0)

WL_INLINE int ilog2_64(uint64_t v) { return 63 - __builtin_clzll(v); }

/* tokens needed by tok_mode 1 for every |v| < 2^31 */
static int hybrid_tokens(int direct) {
    const int ld = ilog2_64((uint64_t)direct);
    return direct + 2 * (31 - ld);
}

/* a binary decision's state: P(0) in 2^-WL_PB, clamped to 1 .. 2^WL_PB - 1, and its visit count 1 + w
 * (at most 255) */
WL_INLINE uint32_t node_state(uint64_t p0, uint64_t w) {
    const uint64_t top = (1u << WL_PB) - 1, d = 1 + (w < 254 ? w : 254);
    return (uint32_t)(p0 < 1 ? 1 : p0 > top ? top : p0) | (uint32_t)(d << 16);
}

int wl_model_new(const wl_params *p, wl_model **out) {
    *out = NULL;
    wl_model *m = calloc(1, sizeof *m);
    if (!m) WL_FAIL(WL_ERR_NOMEM);
    m->p = *p;
    CHECK(p->levels >= 0 && p->levels <= WL_MAX_LEVELS && p->min_len >= 2);
    CHECK(p->level_rule == 0 || p->level_rule == 1);
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
    CHECK(p->fmax >= 0 && p->fmax <= 65535);
    CHECK(p->ll_pred >= 0 && p->ll_pred <= 2 && p->ll_ctx >= 0 && p->ll_ctx <= 1);
    if (p->ll_ctx == 1) CHECK(p->ll_classes >= 1 && p->ll_classes <= p->nclasses);
    CHECK(p->tok_mode == 0 || p->tok_mode == 1);
    if (p->tok_mode == 1) CHECK(p->tok_direct >= 2 && p->tok_direct <= 64 && !(p->tok_direct & (p->tok_direct - 1)) &&
                                p->ntok >= hybrid_tokens(p->tok_direct));
    CHECK(p->sign_ctx == 0 || p->sign_ctx == 1);
    for (int i = 0; i < 4 * L; i++) {
        CHECK(p->group_of[i] >= 0 && p->group_of[i] < p->ngroups);
        CHECK(isfinite(p->band_w[i]) && p->band_w[i] > 0 && p->band_w[i] < 1e6);
        CHECK(p->theta[i] >= 0 && p->theta[i] <= 1 && p->delta[i] >= 0 && p->delta[i] < 1);
    }
    const int G = p->ngroups, C = p->nclasses, T = p->ntok;
    int32_t fmaxv = 0;
    for (int i = 0; i <= p->fmax; i++) { CHECK(p->flut[i] >= 0 && p->flut[i] <= 65535); if (p->flut[i] > fmaxv) fmaxv = p->flut[i]; }
    for (int g = 0; g < G; g++) {
        int64_t span = p->bias[g] < 0 ? -(int64_t)p->bias[g] : p->bias[g];
        for (int t = 0; t < WL_NFEAT; t++) {
            const int64_t wv = p->ctx_w[g * WL_NFEAT + t];
            span += (wv < 0 ? -wv : wv) * fmaxv;
        }
        CHECK(span < (1 << 30) && p->a_lo[g] > -(1 << 30) && p->a_lo[g] < (1 << 30)); /* int32 sums */
        CHECK(p->a_shift[g] >= 0 && p->a_shift[g] <= 24);
        if (p->tok_mode == 0) CHECK(p->eg_k[g] >= 0 && p->eg_k[g] <= 20);
        for (int a = 0; a <= p->amax; a++) CHECK(p->class_lut[(int64_t)g * (p->amax + 1) + a] < C);
        if (p->sign_ctx)
            for (int k = 0; k < WL_NSIGN; k++) {
                const uint32_t f = p->sign_freq[g * WL_NSIGN + k];
                CHECK(f >= 1 && f < (1u << p->prec));
            }
    }
    CHECK(p->rdo_lambda >= 0 && p->rdo_lambda < 1e6);
    CHECK(p->zero_run == 0 || (p->zero_run >= 2 && p->zero_run <= 64));
    if (p->zero_run)
        for (int64_t i = 0; i < (int64_t)G * C; i++) CHECK(p->zr_freq[i] >= 1 && p->zr_freq[i] < (1u << p->prec));
    CHECK(p->prec >= 10 && p->prec <= 16 && p->nsets >= 1 && p->nsets <= WL_MAX_SETS);
    CHECK((p->nsets & (p->nsets - 1)) == 0);
    CHECK(p->adapt == 0 || p->adapt == 1);
    if (p->adapt) CHECK(p->adapt_rate >= 0 && p->adapt_rate <= 254 && p->adapt_smax >= 1 && p->adapt_smax <= 15);
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
    OWN(i32, p->ctx_w, G * WL_NFEAT, int32_t); q->ctx_w = i32;
    OWN(i32, p->bias, G, int32_t); q->bias = i32;
    OWN(i32, p->a_lo, G, int32_t); q->a_lo = i32;
    OWN(i32, p->a_shift, G, int32_t); q->a_shift = i32;
    OWN(i32, p->flut, p->fmax + 1, int32_t); q->flut = i32;
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
    if (p->sign_ctx) { OWN(u32, p->sign_freq, (int64_t)G * WL_NSIGN, uint32_t); q->sign_freq = u32; }
    else q->sign_freq = NULL;
    if (p->zero_run) { OWN(u32, p->zr_freq, (int64_t)G * C, uint32_t); q->zr_freq = u32; }
    else q->zr_freq = NULL;
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
    if (q->adapt) { /* the binary decisions' starting states (docs/wavelet.md "Adaptive") */
        for (int d = 0; d < 256; d++) {
            const uint64_t v = 2ull * (uint64_t)d * (uint64_t)d; /* round(log2 d) = floor(log2(2 d^2)) / 2 */
            int sh = d ? (ilog2_64(v) >> 1) : 1;
            m->shift_of[d] = (uint8_t)(sh < 1 ? 1 : sh > q->adapt_smax ? q->adapt_smax : sh);
        }
        OWN(m->init_node, NULL, ntab * (T - 1), uint32_t);
        for (int64_t i = 0; i < ntab; i++) {
            uint64_t rest = 1ull << q->prec; /* S_k: the frequencies of tokens >= k */
            for (int t = 0; t < T - 1; t++) {
                const uint64_t f = q->freq[i * T + t];
                m->init_node[i * (T - 1) + t] = node_state(((f << WL_PB) + rest / 2) / rest,
                                                           (q->adapt_rate * rest + (1ull << (q->prec - 1))) >> q->prec);
                rest -= f;
            }
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

WL_CLONES static void dequantise_frame(const wl_band *bands, int nb, const int32_t *q, int64_t W, double D, double *c) {
    for (int bi = 0; bi < nb; bi++) {
        const wl_band *b = &bands[bi];
        const double Db = band_step(b, D), de = b->delta;
        for (int64_t y = 0; y < b->h; y++) {
            const int32_t *qr = q + (b->y0 + y) * W + b->x0;
            double *cr = c + (b->y0 + y) * W + b->x0;
            for (int64_t x = 0; x < b->w; x++) { /* branch-free: vectorises */
                const int32_t v = qr[x];
                const int32_t a = v < 0 ? -v : v; /* |v| < 2^30 */
                const double r = ((double)a - de) * Db;
                const double rz = a ? r : 0.0;
                cr[x] = v < 0 ? -rz : rz;
            }
        }
    }
}

/* --- contexts ------------------------------------------------------------------------------- */
/* Own-band values live in a padded buffer as (feature << 2) | sign code (0 zero, 1 +, 2 -): two
 * rows on top, two columns on the left and one on the right hold the feature of 0, so W, WW,
 * N, NN, NW and NE read "zero" outside the band without a test. Everything outside the band
 * (bias, parent, parent neighbourhood, siblings) is summed once per band into opre. */
WL_INLINE int32_t feat_of(const wl_params *p, int64_t x) { return p->flut[x < p->fmax ? x : p->fmax]; }
WL_INLINE int32_t sign_code(int64_t v) { return v > 0 ? 1 : v < 0 ? 2 : 0; }
WL_INLINE int32_t packed(const wl_params *p, int64_t v) { return (feat_of(p, v < 0 ? -v : v) << 2) | sign_code(v); }

typedef struct {
    int32_t *pad;                 /* (H + 2) x (W + 3) */
    int32_t *opre;                /* band-sized: bias + outside features */
    int32_t *nsum;                /* parent band's 4-neighbour sums (band-sized) */
    int32_t *acc_s, *acc_sn;      /* sibling sums (band-sized) */
    int32_t *pre;                 /* one row */
    int32_t *smax;                /* one row: the zero segments' largest pre (decoder) */
    uint8_t *cls;                 /* band-sized classes (the encoder's RDO) */
} ctxbuf_t;

typedef struct {
    const wl_params *p;
    int32_t w[WL_NFEAT];
    int32_t a_lo, a_shift, amax;
    const uint8_t *lut;
    int32_t *pad, *opre;
    int64_t ps, bw;
    int grad;                     /* LL band with gradient classes */
    /* signs: parent and first sibling in q (band origins, clamped parent offsets) */
    const int32_t *par, *sib;
    int64_t ph, pw, sh, sw, W;
} ctx_t;

WL_INLINE int64_t iabs(int64_t v) { return v < 0 ? -v : v; }

WL_INLINE int32_t cmag(int32_t v, int32_t fmax) { /* min(|v|, fmax), |v| < 2^31 */
    const int32_t a = v < 0 ? -v : v;
    return a < fmax ? a : fmax;
}

/* 4-neighbour sum of min(|b|, fmax) over an h x w array (row stride W; zero outside), into out:
 * the features only see min(sum, fmax), and min(sum of min(a_i, F), F) = min(sum a_i, F), so
 * the terms are clamped first and the sums stay small */
WL_CLONES static void neighbour_sums(const int32_t *b, int64_t W, int64_t h, int64_t w, int32_t fmax, int32_t *out) {
    if (w <= 0) return;
    for (int64_t y = 0; y < h; y++) {
        const int32_t *r = b + y * W;
        int32_t *o = out + y * w;
        if (w == 1) o[0] = 0;
        else {
            o[0] = cmag(r[1], fmax);
            for (int64_t x = 1; x + 1 < w; x++) o[x] = cmag(r[x - 1], fmax) + cmag(r[x + 1], fmax);
            o[w - 1] = cmag(r[w - 2], fmax);
        }
        if (y > 0) { const int32_t *u = r - W; for (int64_t x = 0; x < w; x++) o[x] += cmag(u[x], fmax); }
        if (y + 1 < h) { const int32_t *dn = r + W; for (int64_t x = 0; x < w; x++) o[x] += cmag(dn[x], fmax); }
    }
}

/* Set up band bi: weights, padding, and opre (bias + the parent and sibling features). */
WL_CLONES static void ctx_setup(const wl_model *m, const wl_band *bands, int bi, const int32_t *q, int64_t W, ctxbuf_t *cb,
                      ctx_t *cx) {
    const wl_band *b = &bands[bi];
    const wl_params *p = &m->p;
    const int g = b->group;
    cx->p = p;
    for (int i = 0; i < WL_NFEAT; i++) cx->w[i] = p->ctx_w[g * WL_NFEAT + i];
    cx->a_lo = p->a_lo[g];
    cx->a_shift = p->a_shift[g];
    cx->amax = p->amax;
    cx->lut = p->class_lut + (int64_t)g * (p->amax + 1);
    cx->ps = b->w + 3;
    cx->bw = b->w;
    cx->W = W;
    cx->pad = cb->pad;
    cx->opre = cb->opre;
    cx->grad = b->orient == 0 && p->ll_ctx == 1;
    const int32_t z = feat_of(p, 0) << 2;
    for (int64_t i = 0; i < 2 * cx->ps; i++) cx->pad[i] = z;
    for (int64_t y = 0; y < b->h; y++) {
        int32_t *r = cx->pad + (y + 2) * cx->ps;
        r[0] = r[1] = r[b->w + 2] = z;
    }
    const int64_t n = b->h * b->w, bw = b->w;
    const int32_t f0 = feat_of(p, 0);
    const wl_band *pb = b->parent >= 0 ? &bands[b->parent] : NULL;
    const int has_p = pb && pb->h > 0 && pb->w > 0;
    cx->par = has_p ? q + pb->y0 * W + pb->x0 : NULL;
    cx->ph = has_p ? pb->h : 0;
    cx->pw = has_p ? pb->w : 0;
    const wl_band *s1 = b->sib1 >= 0 ? &bands[b->sib1] : NULL;
    const int has_s = s1 && s1->h > 0 && s1->w > 0;
    cx->sib = has_s ? q + s1->y0 * W + s1->x0 : NULL;
    cx->sh = has_s ? s1->h : 0;
    cx->sw = has_s ? s1->w : 0;
    if (cx->grad) return;
    int32_t base = p->bias[g];
    if (!has_p) base += (cx->w[6] + cx->w[7]) * f0;
    const int nsib = (b->sib1 >= 0) + (b->sib2 >= 0);
    if (!nsib) base += (cx->w[8] + cx->w[9]) * f0;
    if (has_p) {
        /* the parent's two terms once per parent value, then spread over its 2 x 2 children */
        int32_t *pf = cb->acc_s;
        neighbour_sums(cx->par, W, pb->h, pb->w, p->fmax, cb->nsum);
        const int32_t *fl = p->flut, fm = p->fmax, w6 = cx->w[6], w7 = cx->w[7];
        for (int64_t py = 0; py < pb->h; py++) {
            const int32_t *pq = cx->par + py * W, *ns = cb->nsum + py * pb->w;
            int32_t *o = pf + py * pb->w;
            for (int64_t px = 0; px < pb->w; px++) /* int32 lookups: vectorised gathers */
                o[px] = base + w6 * fl[cmag(pq[px], fm)] + w7 * fl[ns[px] < fm ? ns[px] : fm];
        }
        const int64_t xe = 2 * pb->w < bw ? 2 * pb->w : bw;
        for (int64_t y = 0; y < b->h; y++) {
            int32_t *o = cx->opre + y * bw;
            if ((y & 1) && (y >> 1) < pb->h) { memcpy(o, o - bw, (size_t)bw * sizeof(int32_t)); continue; }
            const int32_t *pr = pf + ((y >> 1) < pb->h ? (y >> 1) : pb->h - 1) * pb->w;
            for (int64_t px = 0; px < (xe >> 1); px++) { o[2 * px] = pr[px]; o[2 * px + 1] = pr[px]; }
            if (xe & 1) o[xe - 1] = pr[(xe - 1) >> 1];
            for (int64_t x = xe; x < bw; x++) o[x] = pr[pb->w - 1];
        }
    } else {
        for (int64_t i = 0; i < n; i++) cx->opre[i] = base;
    }
    if (nsib) {
        /* S: the siblings' magnitudes on this band's grid (zero outside them); SN: its 4-neighbour sums */
        int32_t *S = cb->acc_s, *SN = cb->acc_sn;
        memset(S, 0, (size_t)n * sizeof(int32_t));
        const int32_t idx[2] = {b->sib1, b->sib2};
        for (int k = 0; k < 2; k++) {
            if (idx[k] < 0) continue;
            const wl_band *o = &bands[idx[k]];
            const int32_t *ob = q + o->y0 * W + o->x0;
            const int64_t hh = o->h < b->h ? o->h : b->h, ww = o->w < bw ? o->w : bw;
            for (int64_t y = 0; y < hh; y++)
                for (int64_t x = 0; x < ww; x++) S[y * bw + x] += cmag(ob[y * W + x], p->fmax); /* see neighbour_sums */
        }
        neighbour_sums(S, bw, b->h, bw, p->fmax, SN);
        const int32_t *fl = p->flut, fm = p->fmax, w8 = cx->w[8], w9 = cx->w[9];
        int32_t *op = cx->opre;
        for (int64_t i = 0; i < n; i++) op[i] += w8 * fl[S[i] < fm ? S[i] : fm] + w9 * fl[SN[i] < fm ? SN[i] : fm];
    }
}

/* the context sum of row y without its W and WW terms, into pre[0..w) */
WL_CLONES static void ctx_row(const ctx_t *cx, int64_t y, int32_t *pre) {
    const int32_t *p = cx->pad + (y + 2) * cx->ps + 2;
    const int32_t *n1 = p - cx->ps, *n2 = p - 2 * cx->ps, *o = cx->opre + y * cx->bw;
    const int32_t w1 = cx->w[1], w2 = cx->w[2], w3 = cx->w[3], w5 = cx->w[5];
    for (int64_t x = 0; x < cx->bw; x++)
        pre[x] = o[x] + w1 * (n1[x] >> 2) + w2 * (n1[x - 1] >> 2) + w3 * (n1[x + 1] >> 2) + w5 * (n2[x] >> 2);
}

/* the class of (y, x) from its row's pre[x] and the W, WW features already in the pad */
WL_INLINE int ctx_class(const ctx_t *cx, const int32_t *prow, int32_t pre) {
    int32_t a = pre + cx->w[0] * (prow[-1] >> 2) + cx->w[4] * (prow[-2] >> 2) - cx->a_lo;
    a = a < 0 ? 0 : a >> cx->a_shift;
    return cx->lut[a > cx->amax ? cx->amax : a];
}

/* the largest pre of each segment [k seg, (k + 1) seg) of a row of w values, into smax[k] */
WL_CLONES static void seg_maxima(const int32_t *pre, int64_t w, int64_t seg, int32_t *smax) {
    for (int64_t x0 = 0, k = 0; x0 < w; x0 += seg, k++) {
        const int64_t x1 = x0 + seg < w ? x0 + seg : w;
        int32_t mx = pre[x0];
        for (int64_t x = x0 + 1; x < x1; x++) mx = pre[x] > mx ? pre[x] : mx;
        smax[k] = mx;
    }
}

/* the class of a zero segment [x0, x1) of a row: its largest pre plus the first value's W, WW terms */
WL_INLINE int seg_class(const ctx_t *cx, const int32_t *prow, const int32_t *pre, int64_t x0, int64_t x1) {
    int32_t mx = pre[x0];
    for (int64_t x = x0 + 1; x < x1; x++) mx = pre[x] > mx ? pre[x] : mx;
    return ctx_class(cx, prow + x0, mx);
}

/* LL gradient class from q (zero outside the band) */
WL_INLINE int ll_grad_class(const wl_params *p, const int32_t *q, int64_t W, int64_t bw, int64_t y, int64_t x) {
    const int64_t w_ = x > 0 ? q[y * W + x - 1] : 0, n_ = y > 0 ? q[(y - 1) * W + x] : 0;
    const int64_t nw = x > 0 && y > 0 ? q[(y - 1) * W + x - 1] : 0, ne = y > 0 && x + 1 < bw ? q[(y - 1) * W + x + 1] : 0;
    const uint64_t gsum = (uint64_t)(iabs(w_ - nw) + iabs(n_ - nw) + iabs(ne - n_));
    const int c = ilog2_64(1 + gsum);
    return c < p->ll_classes - 1 ? c : p->ll_classes - 1;
}

/* sign table index of a detail value at (y, x): group * 729 + pattern of (W, N, NW, NE, P, S1) */
WL_INLINE int sign_index(const ctx_t *cx, int g, const int32_t *prow, int64_t y, int64_t x) {
    const int64_t ps = cx->ps;
    int pat = (prow[-1] & 3);
    pat = pat * 3 + (prow[-ps] & 3);
    pat = pat * 3 + (prow[-ps - 1] & 3);
    pat = pat * 3 + (prow[-ps + 1] & 3);
    int sp = 0, ss = 0;
    if (cx->par) {
        const int64_t py = (y >> 1) < cx->ph ? (y >> 1) : cx->ph - 1, px = (x >> 1) < cx->pw ? (x >> 1) : cx->pw - 1;
        sp = sign_code(cx->par[py * cx->W + px]);
    }
    if (cx->sib && y < cx->sh && x < cx->sw) ss = sign_code(cx->sib[y * cx->W + x]);
    return g * WL_NSIGN + (pat * 3 + sp) * 3 + ss;
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

/* --- tokens ---------------------------------------------------------------------------------- */
/* EG-k of m: unary e (e ones, one zero), then e + k bits r; u = (m >> k) + 1, e = ilog2(u) */
WL_INLINE void eg_split(int64_t m, int k, int *e, int *nb, uint64_t *r) {
    const uint64_t u = ((uint64_t)m >> k) + 1;
    *e = ilog2_64(u);
    *nb = *e + k;
    *r = ((u - (1ull << *e)) << k) | ((uint64_t)m & ((1ull << k) - 1));
}

/* one coder operation: a symbol (start, freq) out of total (raw bits: total 2^n) */
typedef struct { uint32_t start, freq, total; } op_t;
#define MAX_VALUE_OPS 48

/* The operations of one value in decode order: token, raw bits (escape / mantissa), sign.
 * tok_cum: the token table's cumulative frequencies (NULL: adaptive, the token op's start/freq
 * are filled by the caller); sidx: sign table index or -1 for a raw sign. Returns the count and
 * the token in *tok. */
static int value_ops(const wl_model *m, int64_t v, int k, const uint32_t *tok_cum, int sidx, op_t *ops, int *tok) {
    const wl_params *p = &m->p;
    const uint32_t P = 1u << p->prec;
    const int64_t a = iabs(v);
    int n = 0, t;
    uint64_t raw = 0;
    int nraw = 0, unary = -1;
    if (p->tok_mode == 0) {
        const int esc = p->ntok - 1;
        t = (int)(a < esc ? a : esc);
        if (a >= esc) { eg_split(a - esc, k, &unary, &nraw, &raw); }
    } else {
        const int D = p->tok_direct, ld = ilog2_64((uint64_t)D);
        if (a < D) t = (int)a;
        else {
            const int e = ilog2_64((uint64_t)a);
            t = D + 2 * (e - ld) + (int)((a >> (e - 1)) & 1);
            nraw = e - 1;
            raw = (uint64_t)a & ((1ull << (e - 1)) - 1);
        }
    }
    *tok = t;
    ops[n++] = tok_cum ? (op_t){tok_cum[t], tok_cum[t + 1] - tok_cum[t], P} : (op_t){0, 0, 0};
    for (int i = 0; i < unary; i++) ops[n++] = (op_t){1, 1, 2};
    if (unary >= 0) ops[n++] = (op_t){0, 1, 2};
    const int nch = (nraw + 7) / 8;
    for (int c = 0; c < nch; c++) {
        const int len = c == 0 ? nraw - 8 * (nch - 1) : 8, lo = 8 * (nch - 1 - c);
        ops[n++] = (op_t){(uint32_t)((raw >> lo) & ((1ull << len) - 1)), 1, 1u << len};
    }
    if (a) {
        if (sidx < 0) ops[n++] = (op_t){v < 0, 1, 2};
        else {
            const uint32_t fp = p->sign_freq[sidx];
            ops[n++] = v < 0 ? (op_t){fp, P - fp, P} : (op_t){0, fp, P};
        }
    }
    return n;
}

/* --- symbols of a frame (encoder side) --------------------------------------------------------- */
typedef struct {
    uint16_t *tab;   /* g * C + class; ZFLAG: a zero-segment flag (sgn: its table, val: 1 all zero) */
    int32_t *val;    /* the value coded (LL: residual) */
    int32_t *sgn;    /* sign table index, -1: raw */
    int64_t n, ops;  /* symbols, coder operations (upper bound of 16-bit words) */
} syms_t;
#define ZFLAG 0xFFFF

/* LL residuals into llr (h x w of the LL band) from q */
static void ll_residuals(const wl_model *m, const wl_band *b, const int32_t *q, int64_t W, int32_t *llr) {
    for (int64_t y = 0; y < b->h; y++)
        for (int64_t x = 0; x < b->w; x++)
            llr[y * b->w + x] = (int32_t)(q[y * W + x] - ll_predict(m->p.ll_pred, q, W, y, x));
}

WL_INLINE int nops_of(const wl_model *m, int64_t v, int k) {
    op_t ops[MAX_VALUE_OPS];
    int t;
    return value_ops(m, v, k, NULL, -1, ops, &t);
}

static void collect(const wl_model *m, const wl_band *bands, int nb, const int32_t *q, int64_t W,
                    const int32_t *llr, ctxbuf_t *cb, syms_t *s) {
    const wl_params *p = &m->p;
    const int C = p->nclasses;
    int64_t n = 0, ops = 0;
    for (int bi = 0; bi < nb; bi++) {
        const wl_band *b = &bands[bi];
        ctx_t cx;
        ctx_setup(m, bands, bi, q, W, cb, &cx);
        const int g = b->group, k = p->eg_k[g];
        const int32_t *src = b->orient == 0 ? llr : q + b->y0 * W + b->x0;
        const int64_t st = b->orient == 0 ? b->w : W;
        for (int64_t y = 0; y < b->h; y++) {
            int32_t *r = cx.pad + (y + 2) * cx.ps + 2;
            for (int64_t x = 0; x < b->w; x++) r[x] = packed(p, src[y * st + x]);
        }
        const uint16_t t0 = (uint16_t)(g * C);
        const int signs = p->sign_ctx && b->orient != 0;
        const int64_t seg = p->zero_run && b->orient != 0 ? p->zero_run : b->w;
        for (int64_t y = 0; y < b->h; y++) {
            const int32_t *prow = cx.pad + (y + 2) * cx.ps + 2;
            if (!cx.grad) ctx_row(&cx, y, cb->pre);
            for (int64_t x0 = 0; x0 < b->w; x0 += seg) {
                const int64_t x1 = x0 + seg < b->w ? x0 + seg : b->w;
                if (p->zero_run && b->orient != 0) {
                    int zero = 1;
                    for (int64_t x = x0; x < x1; x++) zero &= src[y * st + x] == 0;
                    s->tab[n] = ZFLAG;
                    s->sgn[n] = g * C + seg_class(&cx, prow, cb->pre, x0, x1);
                    s->val[n++] = zero;
                    ops++;
                    if (zero) continue;
                }
                for (int64_t x = x0; x < x1; x++) {
                    const int32_t v = src[y * st + x];
                    const int cl = cx.grad ? ll_grad_class(p, q, W, b->w, y, x) : ctx_class(&cx, prow + x, cb->pre[x]);
                    s->tab[n] = (uint16_t)(t0 + cl);
                    s->sgn[n] = signs && v ? sign_index(&cx, g, prow + x, y, x) : -1;
                    s->val[n++] = v;
                    ops += v ? nops_of(m, v, k) : 1;
                }
            }
        }
    }
    s->n = n;
    s->ops = ops;
}

/* the token of a magnitude */
WL_INLINE int token_of(const wl_params *p, int64_t a) {
    if (p->tok_mode == 0) return (int)(a < p->ntok - 1 ? a : p->ntok - 1);
    const int D = p->tok_direct;
    if (a < D) return (int)a;
    const int e = ilog2_64((uint64_t)a), ld = ilog2_64((uint64_t)D);
    return D + 2 * (e - ld) + (int)((a >> (e - 1)) & 1);
}

/* the groups present in a frame, ascending */
static int frame_groups(const wl_model *m, const wl_band *bands, int nb, int *groups) {
    uint8_t seen[WL_MAX_GROUPS] = {0};
    for (int i = 0; i < nb; i++) if (bands[i].h > 0 && bands[i].w > 0) seen[bands[i].group] = 1;
    int n = 0;
    for (int g = 0; g < m->p.ngroups; g++) if (seen[g]) groups[n++] = g;
    return n;
}

WL_INLINE int set_bits(const wl_model *m) { return m->p.nsets > 1 ? __builtin_ctz((unsigned)m->p.nsets) : 0; }

/* per group the table set with the fewest (integer) code-length units; ties: the lower set */
static void choose_sets(const wl_model *m, const syms_t *s, int *set_of) {
    const wl_params *p = &m->p;
    const int S = p->nsets, T = p->ntok, C = p->nclasses;
    for (int g = 0; g < p->ngroups; g++) set_of[g] = 0;
    if (S == 1) return;
    enum { MAXG = WL_MAX_GROUPS };
    uint64_t cost[WL_MAX_SETS * WL_MAX_GROUPS];
    memset(cost, 0, sizeof cost);
    for (int64_t i = 0; i < s->n; i++) {
        if (s->tab[i] == ZFLAG) continue;
        const int tab = s->tab[i], g = tab / C;
        const int t = token_of(p, iabs(s->val[i]));
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

/* --- adaptive: binary decisions in a binary range coder (LZMA's: 32-bit range, a 33-bit low with a
 * cached byte for the carry) ------------------------------------------------------------------------ */
#define BR_TOP (1u << 24)
typedef struct {
    uint64_t low;
    uint32_t range;
    uint8_t cache;
    int64_t pending;
    int first, err;
    uint8_t *buf;
    size_t pos, cap;
} rc_enc;

static void rc_init(rc_enc *e, uint8_t *buf, size_t cap) {
    memset(e, 0, sizeof *e);
    e->range = 0xFFFFFFFFu;
    e->pending = 1;
    e->first = 1; /* the first byte out is always 0 (low < 2^32 at the start): not written */
    e->buf = buf;
    e->cap = cap;
}

WL_INLINE void rc_out(rc_enc *e, uint8_t v) {
    if (e->pos >= e->cap) e->err = 1; else e->buf[e->pos++] = v;
}

static void rc_shift(rc_enc *e) {
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        const uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t out = e->cache;
        do {
            if (!e->first) rc_out(e, (uint8_t)(out + carry));
            e->first = 0;
            out = 0xFF;
        } while (--e->pending != 0);
        e->cache = (uint8_t)((uint32_t)e->low >> 24);
    }
    e->pending++;
    e->low = (uint32_t)((uint32_t)e->low << 8);
}

/* an operation: a binary decision (total 2^WL_PB: bit = start != 0, P(0) = start or freq), or
 * log2(total) direct bits of start (total <= 256) */
WL_INLINE void rc_put(rc_enc *e, uint32_t start, uint32_t freq, uint32_t total) {
    if (total == (1u << WL_PB)) {
        const uint32_t p0 = start ? start : freq, bound = (e->range >> WL_PB) * p0;
        if (start) { e->low += bound; e->range -= bound; } else e->range = bound;
        while (e->range < BR_TOP) { e->range <<= 8; rc_shift(e); }
        return;
    }
    for (int i = ilog2_64(total) - 1; i >= 0; i--) {
        e->range >>= 1;
        if ((start >> i) & 1) e->low += e->range;
        while (e->range < BR_TOP) { e->range <<= 8; rc_shift(e); }
    }
}

static void rc_flush(rc_enc *e) { for (int i = 0; i < 5; i++) rc_shift(e); }

typedef struct { uint32_t code, range; const uint8_t *p, *end; int err; } rc_dec;

WL_INLINE uint8_t rc_byte(rc_dec *d) {
    if (d->p >= d->end) { d->err = 1; return 0; }
    return *d->p++;
}

static void rc_dec_init(rc_dec *d, const uint8_t *p, const uint8_t *end) {
    d->code = 0; d->range = 0xFFFFFFFFu; d->p = p; d->end = end; d->err = 0;
    for (int i = 0; i < 4; i++) d->code = (d->code << 8) | rc_byte(d);
    if (d->code == 0xFFFFFFFFu) d->err = 1; /* code < range always */
}

/* a decision's state: P(0) in 2^-WL_PB (1 .. 2^WL_PB - 1) and a visit count d (<= 255) that sets its
 * rate: after a bit, P(0) moves by (target - P(0)) >> shift_of[d] toward 2^WL_PB (bit 0) or 0 (bit 1) */
WL_INLINE uint32_t st_update(const uint8_t *shift_of, uint32_t s, int bit) {
    const uint32_t p0 = s & 0xFFFF, d = s >> 16, sh = shift_of[d];
    const uint32_t np = bit ? p0 - (p0 >> sh) : p0 + (((1u << WL_PB) - p0) >> sh);
    return np | ((d + (d < 255)) << 16);
}

WL_INLINE int rc_get_bit(rc_dec *r, uint32_t *st, const uint8_t *shift_of) {
    const uint32_t s = *st, bound = (r->range >> WL_PB) * (s & 0xFFFF);
    int bit;
    if (r->code < bound) { r->range = bound; bit = 0; }
    else { r->code -= bound; r->range -= bound; bit = 1; }
    *st = st_update(shift_of, s, bit);
    while (r->range < BR_TOP) { r->range <<= 8; r->code = (r->code << 8) | rc_byte(r); }
    return bit;
}

WL_INLINE uint32_t rc_get_bits(rc_dec *r, int nb) {
    uint32_t v = 0;
    for (int i = 0; i < nb; i++) {
        r->range >>= 1;
        const int bit = r->code >= r->range;
        if (bit) r->code -= r->range;
        v = (v << 1) | (uint32_t)bit;
        while (r->range < BR_TOP) { r->range <<= 8; r->code = (r->code << 8) | rc_byte(r); }
    }
    return v;
}

/* --- adaptive states ------------------------------------------------------------------------------- *
 * Per frame, every token table (group, class) of the frame's set starts as the model's decisions
 * (unary: node k decides t == k (0) or t > k (1), P(0) = f_k / S_k, S_k the frequencies of the tokens
 * >= k, visit count 1 + round(rate S_k / 2^prec)); sign and zero-segment tables start at their frozen
 * P(0) with count 1 + rate. Set up lazily: a stamp says which frame last touched a table. */
typedef struct {
    uint32_t *node;                /* tokens: [G*C][T]: the frame that set the table up, then its T-1 states */
    uint32_t *bst;                 /* binary: [G*WL_NSIGN + G*C][2]: the frame that set it up, its state */
    uint32_t gen;
    const int *set_of;
    int slot;
} adapt_t;

/* --- per-thread buffers ------------------------------------------------------------------------ *
 * A call's work buffers (slot 0) and adaptive counts (slot 1 + profile) come from blocks each thread
 * keeps between calls (up to WL_KEEP_BYTES each; bigger ones are freed after the call): no allocation,
 * and no fresh zero pages to fault in, per chunk. Freed when the thread exits. */
#include <pthread.h>
#define WL_SLOTS 17
#define WL_KEEP_BYTES ((size_t)64 << 20)
typedef struct { void *p; size_t cap; int fresh; } slot_t;
static __thread slot_t tls_slots[WL_SLOTS];
static __thread uint32_t tls_gen; /* the adaptive states' frames, counted per thread */
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_key_ok;

static void tls_destroy(void *unused) {
    (void)unused;
    for (int i = 0; i < WL_SLOTS; i++) { free(tls_slots[i].p); tls_slots[i].p = NULL; tls_slots[i].cap = 0; }
}
static void tls_make_key(void) { tls_key_ok = pthread_key_create(&tls_key, tls_destroy) == 0; }

static void *slot_get(int i, size_t bytes) {
    slot_t *s = &tls_slots[i];
    if (s->cap < bytes) {
        free(s->p);
        s->cap = 0;
        s->p = malloc(bytes);
        if (!s->p) return NULL;
        s->cap = bytes;
        s->fresh = 1;
        pthread_once(&tls_once, tls_make_key);
        if (tls_key_ok) pthread_setspecific(tls_key, (void *)1); /* the destructor runs at thread exit */
    }
    return s->p;
}

static void slot_done(int i) {
    slot_t *s = &tls_slots[i];
    if (s->cap > WL_KEEP_BYTES) { free(s->p); s->p = NULL; s->cap = 0; }
}

/* carve n items of size sz at 64-byte alignment from *at */
static void *carve(uint8_t **at, size_t n, size_t sz) {
    void *p = *at;
    *at += (n * sz + 63) & ~(size_t)63;
    return p;
}

static void adapt_free(adapt_t *a) {
    if (a->node) slot_done(1 + a->slot);
    memset(a, 0, sizeof *a);
}

/* A frame's stamp for the adaptive states: bit 31 set (states stay below 2^24, so a state left in a
 * block by a call with another layout never reads as the stamp), a new value for every frame this
 * thread codes; after 2^31 frames the blocks' stamps are cleared and the count starts again. */
static uint32_t next_gen(void) {
    if (++tls_gen >= 0x7FFFFFFFu) {
        tls_gen = 1;
        for (int i = 1; i < WL_SLOTS; i++) tls_slots[i].fresh = 1;
    }
    return 0x80000000u | tls_gen;
}

/* prof: the profile index (each has its own block) */
static int adapt_alloc(const wl_model *m, adapt_t *a, int prof) {
    memset(a, 0, sizeof *a);
    const size_t ntab = (size_t)m->tab_stride, T = (size_t)m->p.ntok,
                 nbin = (size_t)m->p.ngroups * (WL_NSIGN + (size_t)m->p.nclasses);
    const size_t bytes = ((ntab * T * 4 + 63) & ~(size_t)63) + ((2 * nbin * 4 + 63) & ~(size_t)63);
    uint8_t *at = slot_get(1 + prof, bytes);
    if (!at) return -1;
    a->slot = prof;
    a->node = carve(&at, ntab * T, 4);
    a->bst = carve(&at, 2 * nbin, 4);
    if (tls_slots[1 + prof].fresh) { /* new memory: no stamp of a frame to come may be in it */
        memset(tls_slots[1 + prof].p, 0, bytes);
        tls_slots[1 + prof].fresh = 0;
    }
    return 0;
}

/* the decision states of token table tab (g * C + class) in this frame */
WL_INLINE uint32_t *tok_states(const wl_model *m, adapt_t *a, int64_t tab) {
    const int64_t n = m->p.ntok - 1;
    uint32_t *st = a->node + tab * (n + 1);
    if (WL_UNLIKELY(st[0] != a->gen)) {
        const int64_t i = (int64_t)a->set_of[tab / m->p.nclasses] * m->tab_stride + tab;
        memcpy(st + 1, m->init_node + i * n, (size_t)n * sizeof(uint32_t));
        st[0] = a->gen;
    }
    return st + 1;
}

/* binary table bi (signs: g * 729 + pattern; zero segments: G * 729 + g * C + class), frozen
 * frequency f0 of symbol 0 (out of 2^prec): its state in this frame */
WL_INLINE uint32_t *bin_state(const wl_model *m, adapt_t *a, int64_t bi, uint32_t f0) {
    uint32_t *st = a->bst + 2 * bi;
    if (WL_UNLIKELY(st[0] != a->gen)) {
        const int prec = m->p.prec;
        st[1] = node_state((((uint64_t)f0 << WL_PB) + (1ull << (prec - 1))) >> prec, (uint64_t)m->p.adapt_rate);
        st[0] = a->gen;
    }
    return st + 1;
}

/* --- frame buffers ------------------------------------------------------------------------------ */
typedef struct {
    double *c, *scratch;
    int32_t *q, *llr, *q0, *qbest;  /* q0: the plain quantiser's values, qbest: the kept profile's */
    uint16_t *tab;
    int32_t *val, *sgn;
    ctxbuf_t cb;
} work_t;

static void work_free(work_t *w) {
    if (w->q) slot_done(0);
    memset(w, 0, sizeof *w);
}

static int work_alloc(work_t *w, int64_t H, int64_t W, int syms) {
    memset(w, 0, sizeof *w);
    const size_t n = (size_t)(H * W), a = 64;
#define SZ(k, s) ((((size_t)(k) * (s)) + a - 1) & ~(a - 1))
    size_t bytes = SZ(n, 8) + SZ(wl_scratch_size(H, W), 8) + 2 * SZ(n, 4) + SZ((H + 2) * (W + 3), 4) + 4 * SZ(n, 4) +
                   2 * SZ(W, 4) + SZ(n, 1);
    if (syms) bytes += 2 * SZ(n, 4) + SZ(2 * n, 2) + 2 * SZ(2 * n, 4);
#undef SZ
    uint8_t *at = slot_get(0, bytes);
    if (!at) return -1;
    w->c = carve(&at, n, 8);
    w->scratch = carve(&at, (size_t)wl_scratch_size(H, W), 8);
    w->q = carve(&at, n, 4);
    w->llr = carve(&at, n, 4);
    if (syms) {
        w->q0 = carve(&at, n, 4);
        w->qbest = carve(&at, n, 4);
        w->tab = carve(&at, 2 * n, 2); /* values and zero-segment flags */
        w->val = carve(&at, 2 * n, 4);
        w->sgn = carve(&at, 2 * n, 4);
    }
    w->cb.pad = carve(&at, (size_t)((H + 2) * (W + 3)), 4);
    w->cb.opre = carve(&at, n, 4);
    w->cb.nsum = carve(&at, n, 4);
    w->cb.acc_s = carve(&at, n, 4);
    w->cb.acc_sn = carve(&at, n, 4);
    w->cb.pre = carve(&at, (size_t)W, 4);
    w->cb.smax = carve(&at, (size_t)W, 4);
    w->cb.cls = carve(&at, n, 1);
    return 0;
}

static int check_dims(int64_t B, int64_t H, int64_t W) {
    return B >= 0 && H >= 1 && W >= 1 && H <= (1 << 30) && W <= (1 << 30) && H * W <= ((int64_t)1 << 30);
}

/* --- rate-distortion optimised quantisation (encoder only) -------------------------------------- *
 * Two passes over the detail bands in coding order: with every value's class computed from the
 * current q (changes within a band do not feed back into that band's classes in the same pass),
 * |q| drops by one where (x - (a - delta))^2 + lambda R(a) is smaller for a = |q| - 1 than for |q|
 * (x = |c| / D_b; a = 0: x^2; R: the frozen set 0 table's code length of the token, its raw bits
 * and one bit of sign). The decoder is unchanged: it reads whatever q the encoder kept. */
WL_INLINE double rdo_rate(const wl_model *m, int64_t tab, int64_t a) {
    const wl_params *p = &m->p;
    double r = m->cost[tab * p->ntok + token_of(p, a)] * (1.0 / 65536);
    if (a >= (p->tok_mode ? p->tok_direct : p->ntok - 1)) {
        if (p->tok_mode) r += ilog2_64((uint64_t)a) - 1;
        else { int e, nb; uint64_t rr; eg_split(a - (p->ntok - 1), p->eg_k[tab / p->nclasses], &e, &nb, &rr); r += e + 1 + nb; }
    }
    return a ? r + 1.0 : r;
}

static void rdo_quantise(const wl_model *m, const wl_band *bands, int nb, const double *c, int64_t W, double D,
                         int32_t *q, ctxbuf_t *cb, uint8_t *cls) {
    const wl_params *p = &m->p;
    const double lam = p->rdo_lambda;
    for (int pass = 0; pass < 2; pass++)
        for (int bi = 1; bi < nb; bi++) {
            const wl_band *b = &bands[bi];
            if (b->h <= 0 || b->w <= 0) continue;
            ctx_t cx;
            ctx_setup(m, bands, bi, q, W, cb, &cx);
            int32_t *qb = q + b->y0 * W + b->x0;
            for (int64_t y = 0; y < b->h; y++) {
                int32_t *r = cx.pad + (y + 2) * cx.ps + 2;
                for (int64_t x = 0; x < b->w; x++) r[x] = packed(p, qb[y * W + x]);
            }
            for (int64_t y = 0; y < b->h; y++) { /* every class first */
                const int32_t *prow = cx.pad + (y + 2) * cx.ps + 2;
                ctx_row(&cx, y, cb->pre);
                for (int64_t x = 0; x < b->w; x++) cls[y * b->w + x] = (uint8_t)ctx_class(&cx, prow + x, cb->pre[x]);
            }
            const double Db = band_step(b, D), de = b->delta;
            const int64_t tab0 = (int64_t)b->group * p->nclasses;
            for (int64_t y = 0; y < b->h; y++) {
                int32_t *qr = qb + y * W;
                const double *cr = c + (b->y0 + y) * W + b->x0;
                for (int64_t x = 0; x < b->w; x++) {
                    const int32_t v = qr[x];
                    if (!v) continue;
                    const int64_t a = v < 0 ? -(int64_t)v : v, tab = tab0 + cls[y * b->w + x];
                    const double xs = fabs(cr[x]) / Db;
                    const double e1 = xs - ((double)a - de), e0 = a > 1 ? xs - ((double)(a - 1) - de) : xs;
                    const double j1 = e1 * e1 + lam * rdo_rate(m, tab, a), j0 = e0 * e0 + lam * rdo_rate(m, tab, a - 1);
                    if (j0 < j1) qr[x] = v < 0 ? v + 1 : v - 1;
                }
            }
        }
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

/* transform + quantise + the decoder's frame; returns 0 or an error. A step too fine for the
 * frame (a value would reach 2^29 steps) is raised to the finest that is not when ``raise``, else
 * it is WL_ERR_RANGE (the encoder: its caller raises the steps it stores, wl_min_steps). */
static int analyse(const wl_model *m, const double *z, int64_t H, int64_t W, int32_t *step, const wl_band *bands,
                   int nb, work_t *w, double *zhat, int raise) {
    const int64_t n = H * W;
    memcpy(w->c, z, (size_t)n * sizeof(double));
    wl_forward_s(m, w->c, H, W, w->scratch);
    const int32_t k0 = min_step(bands, nb, w->c, W);
    if (k0 < 0 || (!raise && *step < k0)) WL_FAIL(WL_ERR_RANGE);
    if (*step < k0) *step = k0;
    const double D = wl_step(*step);
    int rc = quantise_frame(bands, nb, w->c, W, D, w->q);
    if (rc) return rc;
    if (m->p.rdo_lambda > 0) rdo_quantise(m, bands, nb, w->c, W, D, w->q, &w->cb, w->cb.cls);
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

/* --- the operations of a chunk ---------------------------------------------------------------------- */
typedef struct { op_t *v; size_t n, cap; int err; } opvec_t;

WL_INLINE void op_push(opvec_t *o, uint32_t start, uint32_t freq, uint32_t total) {
    if (WL_UNLIKELY(o->n >= o->cap)) {
        size_t nc = o->cap ? 2 * o->cap : 1024;
        op_t *nv = realloc(o->v, nc * sizeof(op_t));
        if (!nv) { o->err = 1; return; }
        o->v = nv;
        o->cap = nc;
    }
    o->v[o->n++] = (op_t){start, freq, total};
}

/* the step indices of a chunk, in decode order: the first as two 8-bit raw symbols, then per frame
 * a raw bit (1: the same step as the frame before) and, when 0, two 8-bit raw symbols */
static void steps_ops(const int32_t *steps, int64_t B, opvec_t *o) {
    for (int64_t f = 0; f < B; f++) {
        if (f) {
            const int same = steps[f] == steps[f - 1];
            op_push(o, (uint32_t)same, 1, 2);
            if (same) continue;
        }
        op_push(o, (uint32_t)steps[f] >> 8, 1, 256);
        op_push(o, (uint32_t)steps[f] & 255, 1, 256);
    }
}

/* The operations of one frame in decode order: its table sets, then every symbol. a: adaptive
 * states (NULL: the frozen tables, rANS); adaptive: binary decisions (total 2^WL_PB, start != 0 for
 * a 1, P(0) = start or freq) and direct bits. */
static void frame_ops(const wl_model *m, const syms_t *s, const int *set_of, const int *groups, int ng, int sb,
                      adapt_t *a, opvec_t *o) {
    const wl_params *p = &m->p;
    const int C = p->nclasses, T = p->ntok;
    const uint32_t P = 1u << p->prec, PB = 1u << WL_PB;
    for (int i = 0; i < ng && sb; i++) op_push(o, (uint32_t)set_of[groups[i]], 1, 1u << sb);
    op_t vops[MAX_VALUE_OPS];
    for (int64_t i = 0; i < s->n; i++) {
        if (s->tab[i] == ZFLAG) { /* symbol 0: all zero */
            const int b = !s->val[i];
            const uint32_t f0 = p->zr_freq[s->sgn[i]];
            if (a) {
                uint32_t *st = bin_state(m, a, (int64_t)p->ngroups * WL_NSIGN + s->sgn[i], f0);
                const uint32_t p0 = *st & 0xFFFF;
                op_push(o, b ? p0 : 0, b ? PB - p0 : p0, PB);
                *st = st_update(m->shift_of, *st, b);
            } else op_push(o, b ? f0 : 0, b ? P - f0 : f0, P);
            continue;
        }
        const int tab = s->tab[i], g = tab / C;
        int tok;
        const uint32_t *cum = a ? NULL : m->cum + ((int64_t)set_of[g] * m->tab_stride + tab) * (T + 1);
        const int n = value_ops(m, s->val[i], p->eg_k[g], cum, s->sgn[i], vops, &tok);
        if (!a) {
            for (int j = 0; j < n; j++) op_push(o, vops[j].start, vops[j].freq, vops[j].total);
            continue;
        }
        uint32_t *st = tok_states(m, a, tab); /* the token: decisions t > k for k = 0 .. min(t, T - 2) */
        for (int k = 0; k < T - 1 && k <= tok; k++) {
            const int b = tok > k;
            const uint32_t p0 = st[k] & 0xFFFF;
            op_push(o, b ? p0 : 0, b ? PB - p0 : p0, PB);
            st[k] = st_update(m->shift_of, st[k], b);
        }
        for (int j = 1; j < n; j++) {
            if (j == n - 1 && s->val[i] && s->sgn[i] >= 0) { /* the sign, last */
                const int b = s->val[i] < 0;
                uint32_t *ss = bin_state(m, a, s->sgn[i], p->sign_freq[s->sgn[i]]);
                const uint32_t p0 = *ss & 0xFFFF;
                op_push(o, b ? p0 : 0, b ? PB - p0 : p0, PB);
                *ss = st_update(m->shift_of, *ss, b);
            } else op_push(o, vops[j].start, vops[j].freq, vops[j].total);
        }
    }
}

/* rANS of ops[j], last first, into the decreasing word pointer */
static void rans_ops(const wl_model *m, uint32_t *x, uint16_t **pp, const op_t *ops, size_t n) {
    const int prec = m->p.prec;
    for (size_t j = n; j-- > 0;) { /* raw bits (total 2^len) scaled to 2^prec */
        const int sh = prec - ilog2_64(ops[j].total);
        rans_put(x, pp, ops[j].start << sh, ops[j].freq << sh, prec);
    }
}

/* the code length of operations, in 1/65536 bits (integer: the same choice on every machine) */
static uint64_t ops_cost(const op_t *v, size_t n) {
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++) c += log2_fix(v[i].total) - log2_fix(v[i].freq);
    return c;
}

/* One frame of the encoder: the transform and the plain quantiser once, then per context profile
 * its RDO, symbols and coder operations; the profile with the fewest bits is kept (ties: the
 * lower), its operations appended to o (led by its index when there are several), its frame in
 * zhat. ad: adaptive counts per profile (NULL: the frozen tables). */
static int encode_frame(const wl_model *m, const double *z, int64_t H, int64_t W, int32_t step, const wl_band *bands,
                        int nb, const int *groups, int ng, work_t *w, adapt_t *ad, uint32_t gen, opvec_t *trial,
                        opvec_t *o, double *zhat) {
    const int np = nprof_of(m), pbits = np > 1 ? __builtin_ctz((unsigned)np) : 0;
    const int64_t n = H * W;
    memcpy(w->c, z, (size_t)n * sizeof(double));
    wl_forward_s(m, w->c, H, W, w->scratch);
    const int32_t k0 = min_step(bands, nb, w->c, W);
    if (k0 < 0 || step < k0) WL_FAIL(WL_ERR_RANGE);
    const double D = wl_step(step);
    int rc = quantise_frame(bands, nb, w->c, W, D, w->q0);
    if (rc) return rc;
    uint64_t best = UINT64_MAX;
    const size_t start = o->n;
    for (int pi = 0; pi < np; pi++) {
        const wl_model *mp = prof_of(m, pi);
        memcpy(w->q, w->q0, (size_t)n * sizeof(int32_t));
        if (mp->p.rdo_lambda > 0) rdo_quantise(mp, bands, nb, w->c, W, D, w->q, &w->cb, w->cb.cls);
        ll_residuals(mp, &bands[0], w->q, W, w->llr);
        syms_t s = {w->tab, w->val, w->sgn, 0, 0};
        collect(mp, bands, nb, w->q, W, w->llr, &w->cb, &s);
        int set_of[WL_MAX_GROUPS];
        choose_sets(mp, &s, set_of);
        adapt_t *a = ad ? &ad[pi] : NULL;
        if (a) { a->gen = gen; a->set_of = set_of; }
        opvec_t *dst = np > 1 ? trial : o;
        if (np > 1) { trial->n = 0; op_push(trial, (uint32_t)pi, 1, 1u << pbits); }
        frame_ops(mp, &s, set_of, groups, ng, set_bits(mp), a, dst);
        if (dst->err) WL_FAIL(WL_ERR_NOMEM);
        if (np == 1) { memcpy(w->qbest, w->q, (size_t)n * sizeof(int32_t)); break; }
        const uint64_t cost = ops_cost(trial->v, trial->n);
        if (cost < best) {
            best = cost;
            o->n = start;
            for (size_t j = 0; j < trial->n; j++) op_push(o, trial->v[j].start, trial->v[j].freq, trial->v[j].total);
            if (o->err) WL_FAIL(WL_ERR_NOMEM);
            memcpy(w->qbest, w->q, (size_t)n * sizeof(int32_t));
        }
    }
    if (zhat) {
        dequantise_frame(bands, nb, w->qbest, W, D, zhat);
        wl_inverse_s(m, zhat, H, W, w->scratch);
    }
    return 0;
}

int64_t wl_min_steps(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W, int32_t *steps) {
    if (!check_dims(B, H, W)) WL_FAIL(WL_ERR_ARG);
    wl_band bands[WL_MAX_BANDS];
    const int nb = wl_layout(m, H, W, bands);
    work_t w;
    if (work_alloc(&w, H, W, 0)) WL_FAIL(WL_ERR_NOMEM);
    int rc = 0;
    for (int64_t f = 0; f < B && !rc; f++) {
        memcpy(w.c, z + f * H * W, (size_t)(H * W) * sizeof(double));
        wl_forward_s(m, w.c, H, W, w.scratch);
        steps[f] = min_step(bands, nb, w.c, W);
        if (steps[f] < 0) { rc = WL_ERR_RANGE; wl_fail_line = __LINE__; }
    }
    work_free(&w);
    return rc;
}

int64_t wl_encode(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W, const int32_t *steps,
                  double *zhat, uint8_t **out) {
    *out = NULL;
    if (!check_dims(B, H, W)) WL_FAIL(WL_ERR_ARG);
    for (int64_t f = 0; f < B; f++) if (steps[f] < 0 || steps[f] > 65535) WL_FAIL(WL_ERR_ARG);
    const wl_params *p = &m->p;
    wl_band bands[WL_MAX_BANDS];
    const int nb = wl_layout(m, H, W, bands);
    int groups[WL_MAX_GROUPS];
    const int ng = frame_groups(m, bands, nb, groups);
    work_t w;
    if (work_alloc(&w, H, W, 1)) WL_FAIL(WL_ERR_NOMEM);
    opvec_t o = {0}, trial = {0};
    uint8_t *buf = NULL;
    size_t cap = 0, pos = 0;
    int rc = 0;
    if (!p->adapt) {
        /* rANS codes backwards: frames last to first, then the steps; each frame's words are kept in
         * decode order and the blocks put together at the end */
        uint32_t x = RANS_L;
        uint16_t *words = NULL, *tmp = NULL;
        size_t wn = 0, wcap = 0, tcap = 0;
        int64_t *block = malloc((size_t)(B + 1) * sizeof(int64_t)); /* start of each block in words */
        if (!block) { work_free(&w); WL_FAIL(WL_ERR_NOMEM); }
        for (int64_t f = B; f >= 0 && !rc; f--) {
            o.n = 0;
            if (f == B) { block[B] = 0; continue; }
            if (f == 0) steps_ops(steps, B, &o); /* decode order: the steps, then frame 0 */
            rc = encode_frame(m, z + f * H * W, H, W, steps[f], bands, nb, groups, ng, &w, NULL, 0, &trial, &o,
                              zhat + f * H * W);
            if (rc) break;
            if (o.n + 2 > tcap) {
                free(tmp);
                tcap = o.n + 2;
                tmp = malloc(tcap * sizeof(uint16_t));
                if (!tmp) { rc = WL_ERR_NOMEM; break; }
            }
            uint16_t *end = tmp + tcap, *ptr = end;
            rans_ops(m, &x, &ptr, o.v, o.n);
            const size_t k = (size_t)(end - ptr);
            if (wn + k > wcap) {
                wcap = 2 * (wn + k) + 64;
                uint16_t *nw = realloc(words, wcap * sizeof(uint16_t));
                if (!nw) { rc = WL_ERR_NOMEM; break; }
                words = nw;
            }
            if (k) memcpy(words + wn, ptr, k * sizeof(uint16_t));
            block[f] = (int64_t)wn;
            wn += k;
        }
        if (!rc) {
            /* decode order: the state, then frame 0's block (with the steps), frame 1's, ... */
            cap = 2 * (wn + 2);
            buf = malloc(cap);
            if (!buf) rc = WL_ERR_NOMEM;
            else {
                const uint16_t st[2] = {(uint16_t)(x >> 16), (uint16_t)x};
                for (int i = 0; i < 2; i++) { buf[pos++] = (uint8_t)st[i]; buf[pos++] = (uint8_t)(st[i] >> 8); }
                for (int64_t f = 0; f < B; f++) {
                    const int64_t s0 = block[f], s1 = f == 0 ? (int64_t)wn : block[f - 1];
                    for (int64_t i = s0; i < s1; i++) { buf[pos++] = (uint8_t)words[i]; buf[pos++] = (uint8_t)(words[i] >> 8); }
                }
            }
        }
        free(block);
        free(words);
        free(tmp);
    } else {
        adapt_t ad[16];
        memset(ad, 0, sizeof ad);
        const int np = nprof_of(m);
        for (int i = 0; i < np && !rc; i++) if (adapt_alloc(prof_of(m, i), &ad[i], i)) rc = WL_ERR_NOMEM;
        rc_enc e;
        steps_ops(steps, B, &o);
        cap = 5 * o.n + 4096;
        buf = rc || o.err ? NULL : malloc(cap);
        if (!buf) {
            for (int i = 0; i < np; i++) adapt_free(&ad[i]);
            free(o.v); free(trial.v); work_free(&w);
            WL_FAIL(WL_ERR_NOMEM);
        }
        rc_init(&e, buf, cap);
        for (size_t j = 0; j < o.n; j++) rc_put(&e, o.v[j].start, o.v[j].freq, o.v[j].total);
        for (int64_t f = 0; f < B && !rc; f++) {
            o.n = 0;
            rc = encode_frame(m, z + f * H * W, H, W, steps[f], bands, nb, groups, ng, &w, ad, next_gen(), &trial,
                              &o, zhat + f * H * W);
            if (rc) break;
            /* an operation shifts at most twice (the range stays >= 2^9 after a decision, >= 2^16 after
             * 8 direct bits), each shift writing its byte and the pending ones */
            const size_t need = e.pos + (size_t)e.pending + 5 * o.n + 32;
            if (need > e.cap) {
                size_t nc = e.cap;
                while (nc < need) nc *= 2;
                uint8_t *nbuf = realloc(e.buf, nc);
                if (!nbuf) { rc = WL_ERR_NOMEM; break; }
                e.buf = nbuf;
                e.cap = nc;
            }
            for (size_t j = 0; j < o.n; j++) rc_put(&e, o.v[j].start, o.v[j].freq, o.v[j].total);
        }
        if (!rc) {
            const size_t need = e.pos + (size_t)e.pending + 32;
            if (need > e.cap) {
                uint8_t *nbuf = realloc(e.buf, need);
                if (!nbuf) rc = WL_ERR_NOMEM; else { e.buf = nbuf; e.cap = need; }
            }
            if (!rc) rc_flush(&e);
            if (!rc && e.err) { rc = WL_ERR_NOMEM; wl_fail_line = __LINE__; }
        }
        buf = e.buf;
        pos = e.pos;
        for (int i = 0; i < np; i++) adapt_free(&ad[i]);
    }
    free(o.v);
    free(trial.v);
    work_free(&w);
    if (rc) { free(buf); return rc; }
    if (!buf) { buf = malloc(1); if (!buf) WL_FAIL(WL_ERR_NOMEM); }
    *out = buf;
    return (int64_t)pos;
}

/* --- decoder ------------------------------------------------------------------------------------ */
typedef struct {
    uint32_t x; const uint8_t *p, *end; /* rANS */
    rc_dec rc;                          /* range coder */
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
    int t;
    if (m->p.ntok >= 5) {
        /* the small tokens, the common ones, without a branch to mispredict */
        t = (cum[1] <= s) + (cum[2] <= s) + (cum[3] <= s) + (cum[4] <= s);
        if (WL_UNLIKELY(t == 4)) {
            t = m->slot[(tabi << WL_SLOT_BITS) + (s >> (prec - WL_SLOT_BITS))];
            if (t < 4) t = 4;
            while (cum[t + 1] <= s) t++;
        }
    } else {
        t = m->slot[(tabi << WL_SLOT_BITS) + (s >> (prec - WL_SLOT_BITS))];
        while (cum[t + 1] <= s) t++;
    }
    d->x = (cum[t + 1] - cum[t]) * (d->x >> prec) + s - cum[t];
    rans_renorm(d);
    return t;
}

/* a binary symbol of frequencies (f0, 2^prec - f0) */
WL_INLINE int rans_get_bin(dec_t *d, uint32_t f0, int prec) {
    const uint32_t s = d->x & ((1u << prec) - 1);
    const int bit = s >= f0;
    d->x = bit ? ((1u << prec) - f0) * (d->x >> prec) + s - f0 : f0 * (d->x >> prec) + s;
    rans_renorm(d);
    return bit;
}

WL_INLINE uint32_t get_bits(const wl_model *m, dec_t *d, int nb, int adaptive) {
    return adaptive ? rc_get_bits(&d->rc, nb) : rans_get_bits(d, nb, m->p.prec);
}

/* a binary symbol with frozen frequency f0 of symbol 0, table bi when adaptive */
WL_INLINE int get_bin(const wl_model *m, dec_t *d, uint32_t f0, int64_t bi, int adaptive) {
    if (!adaptive) return rans_get_bin(d, f0, m->p.prec);
    return rc_get_bit(&d->rc, bin_state(m, &d->a, bi, f0), m->shift_of);
}

WL_INLINE int get_tok(const wl_model *m, dec_t *d, int64_t tab, int set, int adaptive) {
    if (!adaptive) return rans_get_tok(m, d, (int64_t)set * m->tab_stride + tab);
    uint32_t *st = tok_states(m, &d->a, tab);
    const int last = m->p.ntok - 1;
    int t = 0;
    while (t < last && rc_get_bit(&d->rc, &st[t], m->shift_of)) t++;
    return t;
}

/* a value's magnitude from its token (and raw bits); -1: corrupt */
WL_INLINE int64_t get_magnitude(const wl_model *m, dec_t *d, int t, int k, int adaptive) {
    const wl_params *p = &m->p;
    if (p->tok_mode == 0) {
        const int esc = p->ntok - 1;
        if (t < esc) return t;
        int e = 0;
        while (get_bits(m, d, 1, adaptive)) if (++e > 31) return -1;
        const int nb = e + k, nch = (nb + 7) / 8;
        uint64_t r = 0;
        for (int c = 0; c < nch; c++) {
            const int len = c == 0 ? nb - 8 * (nch - 1) : 8;
            r = (r << len) | get_bits(m, d, len, adaptive);
        }
        const uint64_t u = (1ull << e) + (r >> k);
        const int64_t a = (int64_t)((((u - 1) << k) | (r & ((1ull << k) - 1))) + (uint64_t)esc);
        return a >= 2 * (int64_t)WL_MAX_Q ? -1 : a;
    }
    const int D = p->tok_direct;
    if (t < D) return t;
    const int e = (t - D) / 2 + ilog2_64((uint64_t)D);
    if (e > 30) return -1;
    const int nb = e - 1, nch = (nb + 7) / 8;
    uint64_t r = 0;
    for (int c = 0; c < nch; c++) {
        const int len = c == 0 ? nb - 8 * (nch - 1) : 8;
        r = (r << len) | get_bits(m, d, len, adaptive);
    }
    return (int64_t)((1ull << e) | ((uint64_t)((t - D) & 1) << (e - 1)) | r);
}

WL_INLINE int get_sign(const wl_model *m, dec_t *d, int sidx, int adaptive) {
    if (sidx < 0) return (int)get_bits(m, d, 1, adaptive);
    return get_bin(m, d, m->p.sign_freq[sidx], sidx, adaptive);
}

/* The frame's quantised values into w->q and, dequantised as dequantise_frame does (the same
 * operations), its coefficients into c at step D. */
WL_INLINE int decode_symbols(const wl_model *m, const wl_band *bands, int nb, int64_t W, const int *set_of,
                             work_t *w, dec_t *d, int adaptive, double *c, double D) {
    const wl_params *p = &m->p;
    const int C = p->nclasses;
    int32_t *pre = w->cb.pre;
    const int64_t zbase = (int64_t)p->ngroups * WL_NSIGN;
    for (int bi = 0; bi < nb; bi++) {
        const wl_band *b = &bands[bi];
        ctx_t cx;
        ctx_setup(m, bands, bi, w->q, W, &w->cb, &cx);
        const int g = b->group, k = p->eg_k[g], set = set_of[g];
        const int64_t tab0 = (int64_t)g * C;
        int32_t *qb = w->q + b->y0 * W + b->x0;
        double *cb = c + b->y0 * W + b->x0;
        const double Db = band_step(b, D), de = b->delta;
        const int signs = p->sign_ctx && b->orient != 0;
        const int zr = p->zero_run && b->orient != 0;
        const int64_t seg = zr ? p->zero_run : b->w;
        const int32_t z0 = feat_of(p, 0) << 2;
        for (int64_t y = 0; y < b->h; y++) {
            int32_t *prow = cx.pad + (y + 2) * cx.ps + 2;
            int32_t *qr = qb + y * W;
            double *cr = cb + y * W;
            if (!cx.grad) ctx_row(&cx, y, pre);
            if (zr) seg_maxima(pre, b->w, seg, w->cb.smax);
            for (int64_t x0 = 0; x0 < b->w; x0 += seg) {
                const int64_t x1 = x0 + seg < b->w ? x0 + seg : b->w;
                if (zr) { /* seg_class */
                    const int64_t zi = g * C + ctx_class(&cx, prow + x0, w->cb.smax[x0 / seg]);
                    if (!get_bin(m, d, p->zr_freq[zi], zbase + zi, adaptive)) {
                        for (int64_t x = x0; x < x1; x++) { prow[x] = z0; qr[x] = 0; cr[x] = 0.0; }
                        continue;
                    }
                }
                for (int64_t x = x0; x < x1; x++) {
                    const int cl = cx.grad ? ll_grad_class(p, w->q, W, b->w, y, x) : ctx_class(&cx, prow + x, pre[x]);
                    const int t = get_tok(m, d, tab0 + cl, set, adaptive);
                    int64_t v = get_magnitude(m, d, t, k, adaptive);
                    if (v < 0) WL_FAIL(WL_ERR_CORRUPT);
                    if (v && get_sign(m, d, signs ? sign_index(&cx, g, prow + x, y, x) : -1, adaptive)) v = -v;
                    prow[x] = packed(p, v);
                    if (b->orient == 0) v += ll_predict(p->ll_pred, w->q, W, y, x);
                    if (v >= WL_MAX_Q || v <= -(int64_t)WL_MAX_Q) WL_FAIL(WL_ERR_CORRUPT);
                    qr[x] = (int32_t)v;
                    const int64_t av = v < 0 ? -v : v;
                    const double r = ((double)av - de) * Db, rz = av ? r : 0.0;
                    cr[x] = v < 0 ? -rz : rz;
                }
            }
            if (d->err || d->rc.err) WL_FAIL(WL_ERR_CORRUPT);
        }
    }
    return 0;
}

static int decode_static(const wl_model *m, const wl_band *b, int nb, int64_t W, const int *s, work_t *w, dec_t *d,
                         double *c, double D) {
    return decode_symbols(m, b, nb, W, s, w, d, 0, c, D);
}
static int decode_adaptive(const wl_model *m, const wl_band *b, int nb, int64_t W, const int *s, work_t *w, dec_t *d,
                           double *c, double D) {
    return decode_symbols(m, b, nb, W, s, w, d, 1, c, D);
}

/* a decoded frame (float64) to float32 through a linear map: u = z * fs + fo (two roundings),
 * y = u * ts, then the float32 nearest y, beyond float32's range its largest finite value of y's
 * sign, NaN 0: Transform.inverse, the linear from_u and bound.cast, operation for operation */
WL_CLONES static void frame_out_f32(const double *z, int64_t n, float *out, double fs, double fo, double ts) {
    const float big = 3.4028234663852886e38f;
    for (int64_t i = 0; i < n; i++) {
        double u = z[i] * fs;
        u = u + fo;
        u = u * ts;
        float v = (float)u;
        v = v > big ? big : v;
        v = v < -big ? -big : v;
        out[i] = v == v ? v : 0.0f;
    }
}

int64_t wl_decode(const wl_model *m, const uint8_t *in, size_t n, int64_t B, int64_t H, int64_t W,
                  int32_t *steps, double *zhat) {
    return wl_decode_to(m, in, n, B, H, W, steps, zhat, 0, NULL, NULL, 1.0, 0);
}

int64_t wl_decode_to(const wl_model *m, const uint8_t *in, size_t n, int64_t B, int64_t H, int64_t W,
                     int32_t *steps, void *out, int out_kind, const double *fs, const double *fo, double ts,
                     int flags) {
    if (!check_dims(B, H, W) || out_kind < 0 || out_kind > 1 || (out_kind == 1 && (!fs || !fo))) WL_FAIL(WL_ERR_ARG);
    const wl_params *p = &m->p;
    wl_band bands[WL_MAX_BANDS];
    const int nb = wl_layout(m, H, W, bands);
    int groups[WL_MAX_GROUPS];
    const int ng = frame_groups(m, bands, nb, groups), sb = set_bits(m);
    work_t w;
    if (work_alloc(&w, H, W, 0)) WL_FAIL(WL_ERR_NOMEM);
    dec_t d;
    memset(&d, 0, sizeof d);
    const int adaptive = p->adapt, np = nprof_of(m), pbits = np > 1 ? __builtin_ctz((unsigned)np) : 0;
    adapt_t ad[16];
    memset(ad, 0, sizeof ad);
    int rc = 0;
    if (adaptive) { /* a frame uses one profile's states, set up afresh: the profiles share one block */
        if (adapt_alloc(m, &ad[0], 0)) { work_free(&w); WL_FAIL(WL_ERR_NOMEM); }
        for (int i = 1; i < np; i++) ad[i] = ad[0];
        rc_dec_init(&d.rc, in, in + n);
    } else {
        d.p = in;
        d.end = in + n;
        d.x = rd_word(&d) << 16;
        d.x |= rd_word(&d);
        if (d.err || d.x < RANS_L) { rc = WL_ERR_CORRUPT; wl_fail_line = __LINE__; }
    }
    /* the steps block */
    for (int64_t f = 0; f < B && !rc; f++) {
        if (f && get_bits(m, &d, 1, adaptive)) { steps[f] = steps[f - 1]; continue; }
        steps[f] = (int32_t)(get_bits(m, &d, 8, adaptive) << 8);
        steps[f] |= (int32_t)get_bits(m, &d, 8, adaptive);
    }
    if (!rc && (d.err || d.rc.err)) { rc = WL_ERR_CORRUPT; wl_fail_line = __LINE__; }
    for (int64_t f = 0; f < B && !rc; f++) {
        const int pi = pbits ? (int)get_bits(m, &d, pbits, adaptive) : 0;
        const wl_model *mp = prof_of(m, pi);
        int set_of[WL_MAX_GROUPS] = {0};
        for (int i = 0; i < ng && sb; i++) set_of[groups[i]] = (int)get_bits(m, &d, sb, adaptive);
        if (adaptive) { d.a = ad[pi]; d.a.gen = next_gen(); d.a.set_of = set_of; }
        double *zh = out_kind == 0 ? (double *)out + f * H * W : w.c;
        const double D = wl_step(steps[f]);
        rc = adaptive ? decode_adaptive(mp, bands, nb, W, set_of, &w, &d, zh, D)
                      : decode_static(mp, bands, nb, W, set_of, &w, &d, zh, D);
        if (adaptive) ad[pi] = d.a;
        if (rc) break;
        wl_inverse_s(m, zh, H, W, w.scratch);
        if (out_kind == 1)
            frame_out_f32(zh, H * W, (float *)out + f * H * W, fs[f], fo[f], ts);
    }
    int64_t used = 0;
    if (!rc) {
        if (adaptive) { /* the encoder flushed its low end exactly: what is left must be 0 */
            if (d.rc.err || d.rc.code != 0) { rc = WL_ERR_CORRUPT; wl_fail_line = __LINE__; }
            used = (int64_t)(d.rc.p - in);
        } else {
            if (d.err || d.x != RANS_L) { rc = WL_ERR_CORRUPT; wl_fail_line = __LINE__; }
            used = (int64_t)(d.p - in);
        }
    }
    adapt_free(&ad[0]);
    work_free(&w);
    return rc ? rc : used;
}

/* --- training counts, features, quantised values, rate control ------------------------------------ */
int wl_stats(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W, const int32_t *steps,
             int per_frame, int64_t *counts, int64_t *signs, int64_t *zruns, int64_t *raw_bits) {
    if (!check_dims(B, H, W)) WL_FAIL(WL_ERR_ARG);
    const wl_params *p = &m->p;
    wl_band bands[WL_MAX_BANDS];
    const int nb = wl_layout(m, H, W, bands);
    work_t w;
    if (work_alloc(&w, H, W, 1)) WL_FAIL(WL_ERR_NOMEM);
    const int T = p->ntok, C = p->nclasses;
    const int64_t per = m->tab_stride * T;
    int rc = 0;
    op_t ops[MAX_VALUE_OPS];
    for (int64_t f = 0; f < B; f++) {
        if (steps[f] < 0 || steps[f] > 65535) { rc = WL_ERR_ARG; break; }
        int32_t step = steps[f];
        rc = analyse(m, z + f * H * W, H, W, &step, bands, nb, &w, NULL, 1);
        if (rc) break;
        syms_t s = {w.tab, w.val, w.sgn, 0, 0};
        collect(m, bands, nb, w.q, W, w.llr, &w.cb, &s);
        int64_t *cf = counts + (per_frame ? f * per : 0);
        for (int64_t i = 0; i < s.n; i++) {
            const int64_t v = s.val[i];
            if (s.tab[i] == ZFLAG) {
                if (zruns) zruns[(int64_t)s.sgn[i] * 2 + !v]++;
                continue;
            }
            int tok;
            const int nop = value_ops(m, v, p->eg_k[s.tab[i] / C], NULL, -1, ops, &tok);
            cf[(int64_t)s.tab[i] * T + tok]++;
            if (v && s.sgn[i] >= 0 && signs) signs[(int64_t)s.sgn[i] * 2 + (v < 0)]++;
            if (raw_bits) {
                int64_t bits = 0;
                for (int j = 1; j < nop; j++) bits += ilog2_64(ops[j].total);
                if (v && s.sgn[i] >= 0) bits -= 1; /* the sign goes to the sign tables */
                raw_bits[0] += bits;
            }
        }
    }
    work_free(&w);
    return rc;
}

int64_t wl_features(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W, const int32_t *steps,
                    int32_t *feat, int32_t *mag, int32_t *group, int64_t maxn) {
    if (!check_dims(B, H, W)) WL_FAIL(WL_ERR_ARG);
    wl_band bands[WL_MAX_BANDS];
    const int nb = wl_layout(m, H, W, bands);
    work_t w;
    if (work_alloc(&w, H, W, 0)) WL_FAIL(WL_ERR_NOMEM);
    int64_t n = 0;
    int rc = 0;
    for (int64_t f = 0; f < B && !rc; f++) {
        int32_t step = steps[f];
        if (step < 0 || step > 65535) { rc = WL_ERR_ARG; break; }
        rc = analyse(m, z + f * H * W, H, W, &step, bands, nb, &w, NULL, 1);
        if (rc) break;
        for (int bi = 1; bi < nb; bi++) {
            const wl_band *b = &bands[bi];
            const int32_t *qb = w.q + b->y0 * W + b->x0;
            const wl_band *pb = b->parent >= 0 && bands[b->parent].h > 0 && bands[b->parent].w > 0 ? &bands[b->parent] : NULL;
            if (pb) neighbour_sums(w.q + pb->y0 * W + pb->x0, W, pb->h, pb->w, INT32_MAX / 4, w.cb.nsum);
            for (int64_t y = 0; y < b->h && n < maxn; y++)
                for (int64_t x = 0; x < b->w && n < maxn; x++, n++) {
                    int64_t v[WL_NFEAT] = {0};
                    v[0] = x >= 1 ? iabs(qb[y * W + x - 1]) : 0;
                    v[1] = y >= 1 ? iabs(qb[(y - 1) * W + x]) : 0;
                    v[2] = x >= 1 && y >= 1 ? iabs(qb[(y - 1) * W + x - 1]) : 0;
                    v[3] = y >= 1 && x + 1 < b->w ? iabs(qb[(y - 1) * W + x + 1]) : 0;
                    v[4] = x >= 2 ? iabs(qb[y * W + x - 2]) : 0;
                    v[5] = y >= 2 ? iabs(qb[(y - 2) * W + x]) : 0;
                    if (pb) {
                        const int64_t py = (y >> 1) < pb->h ? (y >> 1) : pb->h - 1, px = (x >> 1) < pb->w ? (x >> 1) : pb->w - 1;
                        v[6] = iabs(w.q[(pb->y0 + py) * W + pb->x0 + px]);
                        v[7] = w.cb.nsum[py * pb->w + px];
                    }
                    const int32_t sib[2] = {b->sib1, b->sib2};
                    for (int k = 0; k < 2; k++) {
                        if (sib[k] < 0) continue;
                        const wl_band *o = &bands[sib[k]];
                        const int32_t *ob = w.q + o->y0 * W + o->x0;
                        const int64_t dy[5] = {0, 0, 0, -1, 1}, dx[5] = {0, -1, 1, 0, 0};
                        for (int j = 0; j < 5; j++) {
                            const int64_t yy = y + dy[j], xx = x + dx[j];
                            if (yy < 0 || xx < 0 || yy >= o->h || xx >= o->w || yy >= b->h || xx >= b->w) continue;
                            v[j ? 9 : 8] += iabs(ob[yy * W + xx]);
                        }
                    }
                    for (int i = 0; i < WL_NFEAT; i++) feat[n * WL_NFEAT + i] = (int32_t)(v[i] < INT32_MAX ? v[i] : INT32_MAX);
                    mag[n] = (int32_t)iabs(qb[y * W + x]);
                    group[n] = b->group;
                }
        }
    }
    work_free(&w);
    return rc ? rc : n;
}

int wl_quantise(const wl_model *m, const double *z, int64_t H, int64_t W, int32_t step, int32_t *q) {
    if (!check_dims(1, H, W) || step < 0 || step > 65535) WL_FAIL(WL_ERR_ARG);
    wl_band bands[WL_MAX_BANDS];
    const int nb = wl_layout(m, H, W, bands);
    work_t w;
    if (work_alloc(&w, H, W, 0)) WL_FAIL(WL_ERR_NOMEM);
    int rc = analyse(m, z, H, W, &step, bands, nb, &w, NULL, 1);
    if (!rc) memcpy(q, w.q, (size_t)(H * W) * sizeof(int32_t));
    work_free(&w);
    return rc;
}

/* sum of squared differences of the reconstruction at a step (coefficients c given) */
static int sse_at(const wl_model *m, const wl_band *bands, int nb, const double *c, const double *z, int64_t H,
                  int64_t W, int32_t step, int rdo, work_t *w, double *y, double *sse) {
    const double D = wl_step(step);
    int rc = quantise_frame(bands, nb, c, W, D, w->q);
    if (rc) return rc;
    if (rdo) rdo_quantise(m, bands, nb, c, W, D, w->q, &w->cb, w->cb.cls);
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
        /* bisection on the plain quantiser (the RDO is 2 context passes per try), then, with RDO,
         * finer steps until the RDO'd frame meets the target too (RDO only adds error) */
        const int rdo = m->p.rdo_lambda > 0;
        const int32_t k_lo = a;
        rc = sse_at(m, bands, nb, w.c, zf, H, W, b, 0, &w, y, &s);
        if (rc) break;
        if (s <= limit) a = b;
        /* invariant: b fails; a passes or is the finest step allowed (returned when nothing passes) */
        while (b - a > 1) {
            const int32_t mid = a + (b - a) / 2;
            rc = sse_at(m, bands, nb, w.c, zf, H, W, mid, 0, &w, y, &s);
            if (rc) break;
            if (s <= limit) a = mid; else b = mid;
        }
        while (!rc && rdo && a > k_lo) { /* every profile's RDO: the encoder may keep any of them */
            int ok = 1;
            for (int pi = 0; pi < nprof_of(m) && ok && !rc; pi++) {
                rc = sse_at(prof_of(m, pi), bands, nb, w.c, zf, H, W, a, 1, &w, y, &s);
                ok = s <= limit;
            }
            if (rc || ok) break;
            a = a - 8 > k_lo ? a - 8 : k_lo; /* 1/32 octave finer */
        }
        steps[f] = a;
    }
    free(y);
    work_free(&w);
    return rc;
}
