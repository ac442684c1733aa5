/* fastcode encoder and decoder (see fc.h and FORMAT.md). */
#include <stdio.h>

#include "fc_internal.h"
#include "fc_quant.h"

#define MAG_SAT (1u << 29)
/* an unpaired plane of at least this many rows is split into two lanes (upper/lower half);
 * smaller ones stay one lane: the lower half's first row costs ~3% on 64-row planes */
#define FC_SPLIT_ROWS 128
#define VAL_SAT (1u << 30)
#define MAX_ELEMENTS (1ll << 31)

static __thread int fc_fail_line;
int fc_last_fail_line(void) { return fc_fail_line; }
#define FAIL do { fc_fail_line = __LINE__; goto done; } while (0)

/* ------------------------------------------------------------------------------------ */
/* quantiser set-up shared by encoder and decoder                                         */

static int pwrel_cache(quant_t *q) {
    q->x2c = malloc(sizeof(x2cache_t));
    if (!q->x2c) return FC_ERR_NOMEM;
    x2c_init(q->x2c, q->s);
    return 0;
}

static void pwrel_params(quant_t *q, double eb) {
    double e = eb < 0.999 ? eb : 0.999;
    double a = log2(1.0 - e), b = log2(1.0 + e);
    q->s = (b - a) * (1.0 - 1e-9);
    q->centre = 0.5 * (a + b);
    q->ebm = eb * (1.0 - 0x1p-40);
}

/* poisson regions up to R: pa[] (first x of each region, one more at the end) and pB[]
 * (first code of each region, one more: the number of codes) */
#define FC_POIS_RMAX 65535
static int poisson_params(quant_t *q, double eb, int64_t R) {
    q->eb = eb;
    q->r0 = pois_T(eb, 0);
    if (R < q->r0) R = q->r0;
    if (R - q->r0 > FC_POIS_RMAX) return FC_ERR_ARG;
    q->R = R;
    const int64_t nr = R - q->r0 + 1;
    q->pa = malloc(sizeof(int64_t) * (size_t)(nr + 1));
    q->pB = malloc(sizeof(int64_t) * (size_t)(nr + 1));
    if (!q->pa || !q->pB) return FC_ERR_NOMEM;
    q->pa[0] = 0;
    for (int64_t ri = 1; ri <= nr; ri++) { /* smallest x with T(x) >= r */
        const int64_t r = q->r0 + ri;
        double g = ceil((double)r / eb * ((double)r / eb));
        int64_t x = g < 4e18 ? (int64_t)g : (int64_t)4e18;
        if (x <= q->pa[ri - 1]) x = q->pa[ri - 1] + 1;
        for (int n = 0; x - 1 > q->pa[ri - 1] && pois_T(eb, x - 1) >= r && n < 64; n++) x--;
        for (int n = 0; pois_T(eb, x) < r && n < 64; n++) x++;
        q->pa[ri] = x;
    }
    q->pB[0] = 0;
    for (int64_t ri = 0; ri < nr; ri++) {
        const int64_t r = q->r0 + ri, w = 2 * r + 1;
        q->pB[ri + 1] = q->pB[ri] + (q->pa[ri + 1] - q->pa[ri] - 1 + 2 * r) / w + 1;
    }
    q->nxdirect = q->pa[nr] < 4096 ? q->pa[nr] : 4096;
    q->xdirect = malloc(sizeof(uint32_t) * (size_t)(q->nxdirect + 1));
    if (!q->xdirect) return FC_ERR_NOMEM;
    for (int64_t ri = 0, x = 0; x < q->nxdirect; x++) {
        while (ri + 1 < nr && q->pa[ri + 1] <= x) ri++;
        q->xdirect[x] = (uint32_t)ri;
    }
    q->ndirect = q->pB[nr] < 4096 ? q->pB[nr] : 4096;
    q->rdirect = malloc(sizeof(uint32_t) * (size_t)(q->ndirect + 1));
    if (!q->rdirect) return FC_ERR_NOMEM;
    for (int64_t ri = 0, k = 0; k < q->ndirect; k++) {
        while (ri + 1 < nr && q->pB[ri + 1] <= k) ri++;
        q->rdirect[k] = (uint32_t)ri;
    }
    return 0;
}

/* the largest region an element of the chunk needs (valid, integer-valued, 0 <= x < 2^52) */
FC_INLINE double poisson_xmax(const void *xb, const int dt, int64_t n, const uint8_t *mask) {
    double xmax = 0;
    for (int64_t i = 0; i < n; i++) {
        if (mask && ((mask[i >> 3] >> (7 - (i & 7))) & 1)) continue;
        const double x = load_f(xb, i, dt);
        if (x > xmax && x < 4503599627370496.0) xmax = x;
    }
    return xmax;
}

static int64_t poisson_R(const void *xb, int dt, int64_t n, const uint8_t *mask, double eb) {
    double xmax; /* one loop per element type: no dtype switch per element */
    switch (dt) {
#define XMAX_DT(D) case D: xmax = mask ? poisson_xmax(xb, D, n, mask) : poisson_xmax(xb, D, n, NULL); break;
    XMAX_DT(FC_F32) XMAX_DT(FC_F64) XMAX_DT(FC_I8) XMAX_DT(FC_I16) XMAX_DT(FC_I32) XMAX_DT(FC_I64)
    XMAX_DT(FC_U8) XMAX_DT(FC_U16) XMAX_DT(FC_U32)
    default: xmax = poisson_xmax(xb, dt, n, mask); break;
#undef XMAX_DT
    }
    int64_t R = pois_T(eb, (int64_t)xmax);
    const int64_t r0 = pois_T(eb, 0);
    return R - r0 > FC_POIS_RMAX ? r0 + FC_POIS_RMAX : R;
}

static void quant_free(quant_t *q) {
    free(q->pa); free(q->pB); free(q->step); free(q->vb); free(q->rdirect); free(q->xdirect); free(q->x2c);
    free(q->plane_pred);
    q->pa = q->pB = NULL; q->step = q->vb = NULL; q->rdirect = q->xdirect = NULL; q->x2c = NULL;
    q->plane_pred = NULL;
}

static float round_down_f32(double v) {
    float f = (float)v;
    if ((double)f > v) f = nextafterf(f, 0.0f);
    return f;
}

/* ------------------------------------------------------------------------------------ */
/* the row quantiser: codes Q, status (ok / fallback / masked / zero), pwrel class        */

static void int_range(int dt, __int128 *lo, __int128 *hi) {
    switch (dt) {
    case FC_I8: *lo = INT8_MIN; *hi = INT8_MAX; break;
    case FC_I16: *lo = INT16_MIN; *hi = INT16_MAX; break;
    case FC_I32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    case FC_I64: *lo = INT64_MIN; *hi = INT64_MAX; break;
    case FC_U8: *lo = 0; *hi = UINT8_MAX; break;
    case FC_U16: *lo = 0; *hi = UINT16_MAX; break;
    case FC_U32: *lo = 0; *hi = UINT32_MAX; break;
    default: *lo = 0; *hi = UINT64_MAX; break;
    }
}


/* FC_ABS on float32/float64 without prediction: the hot case, kept branch-light */
FC_INLINE void quant_row_absf(const quant_t *q, const int dt, const int cdt, const void *xb, int64_t off, int64_t W,
                              int64_t p, const uint8_t *mrow, uint64_t *Q, uint8_t *st) {
    const double step = q->step[p], vb = q->vb[p];
    const double inv = step > 0 ? 1.0 / step : 0.0;
    for (int64_t j = 0; j < W; j++) {
        const double x = dt == FC_F32 ? (double)((const float *)xb)[off + j] : ((const double *)xb)[off + j];
        const double t = x * inv;
        const double k = rint(t);
        const int good = fabs(t) <= FC_MAX_ABS_Q && step > 0;
        const double v = cast_f(step * k, cdt);
        Q[j] = good ? (uint64_t)(int64_t)k : 0;
        st[j] = mrow[j] ? ST_MASKED : (good && fabs(v - x) <= vb) ? ST_OK : ST_FALLBACK;
        if (FC_UNLIKELY(st[j] == ST_FALLBACK) && good) { /* float rounding at a bin edge: a neighbour bin */
            for (int a = -1; a <= 1; a += 2) {
                const double v2 = cast_f(step * (k + a), cdt);
                if (fabs(v2 - x) <= vb) { Q[j] = (uint64_t)(int64_t)(k + a); st[j] = ST_OK; break; }
            }
        }
    }
}

/* FC_POISSON with the element type known at compile time: the generic loop's arithmetic,
 * without a dtype switch per element (load, range test and cast fold to one type). */
FC_INLINE void quant_row_pois(const quant_t *q, const int dt, const void *xb, int64_t off, int64_t W,
                              const uint8_t *mrow, uint64_t *Q, uint8_t *st, uint8_t *cls) {
    const int64_t rlast = q->R - q->r0;
    const double xend = (double)q->pa[rlast + 1];
    for (int64_t j = 0; j < W; j++) {
        const int64_t i = off + j;
        Q[j] = 0;
        if (mrow[j]) { st[j] = ST_MASKED; cls[j] = 0; continue; }
        st[j] = ST_OK; cls[j] = 1;
        if (!q->isfloat && !int_exact(xb, i, dt)) { st[j] = ST_FALLBACK; continue; }
        const double x = load_f(xb, i, dt);
        if (!(x >= 0) || x != floor(x) || !(x < xend)) { st[j] = ST_FALLBACK; continue; }
        const int64_t xi = (int64_t)x;
        const int64_t ri = xi < q->nxdirect ? q->xdirect[xi] : pois_T(q->eb, xi) - q->r0;
        if (ri < 0 || ri > rlast || xi < q->pa[ri] || xi >= q->pa[ri + 1]) { st[j] = ST_FALLBACK; continue; }
        const int64_t r = q->r0 + ri, w = 2 * r + 1, o = BIN_OFFSET(q, i, w);
        const int64_t kl = (int64_t)floor((double)(xi - q->pa[ri] + o) / (double)w);
        const double v = (double)(q->pa[ri] - o + kl * w + r);
        if (!(cast_f(v, dt) == v)) { st[j] = ST_FALLBACK; continue; }
        Q[j] = (uint64_t)(q->pB[ri] + kl);
    }
}

static void quant_row(const quant_t *q, const void *xb, int64_t off, int64_t W, int64_t p,
                      const uint8_t *mrow, uint64_t *Q, uint8_t *st, uint8_t *cls) {
    const int dt = q->dtype;
    if (q->mode == FC_POISSON && q->vdt == dt) {
#define POIS_DT(D) case D: quant_row_pois(q, D, xb, off, W, mrow, Q, st, cls); return;
        switch (dt) {
        POIS_DT(FC_F32) POIS_DT(FC_F64) POIS_DT(FC_I8) POIS_DT(FC_I16) POIS_DT(FC_I32) POIS_DT(FC_I64)
        POIS_DT(FC_U8) POIS_DT(FC_U16) POIS_DT(FC_U32) POIS_DT(FC_U64)
        default: break;
        }
#undef POIS_DT
    }
    if (q->mode == FC_LOSSLESS) {
#define LOAD_LOOP(T) { const T *x = (const T *)xb + off; \
            for (int64_t j = 0; j < W; j++) { Q[j] = (uint64_t)x[j]; st[j] = mrow[j] ? ST_MASKED : ST_OK; } }
        switch (dt) {
        case FC_I8: LOAD_LOOP(int8_t) break;
        case FC_I16: LOAD_LOOP(int16_t) break;
        case FC_I32: LOAD_LOOP(int32_t) break;
        case FC_I64: LOAD_LOOP(int64_t) break;
        case FC_U8: LOAD_LOOP(uint8_t) break;
        case FC_U16: LOAD_LOOP(uint16_t) break;
        case FC_U32: LOAD_LOOP(uint32_t) break;
        default: LOAD_LOOP(uint64_t) break;
        }
#undef LOAD_LOOP
        return;
    }
    if (q->mode == FC_ABS && !q->intabs && !q->pred) {
        if (dt == FC_F32 && q->vdt == FC_F16) { quant_row_absf(q, FC_F32, FC_F16, xb, off, W, p, mrow, Q, st); return; }
        if (dt == FC_F32) { quant_row_absf(q, FC_F32, FC_F32, xb, off, W, p, mrow, Q, st); return; }
        if (dt == FC_F64) { quant_row_absf(q, FC_F64, FC_F64, xb, off, W, p, mrow, Q, st); return; }
    }
    for (int64_t j = 0; j < W; j++) {
        const int64_t i = off + j;
        if (mrow[j]) { st[j] = ST_MASKED; cls[j] = 0; Q[j] = 0; continue; }
        st[j] = ST_OK; cls[j] = 1; Q[j] = 0;
        switch (q->mode) {
        case FC_LOSSLESS:
            Q[j] = load_u(xb, i, dt);
            break;
        case FC_ABS:
            if (q->intabs) {
                __int128 x = dt_signed(dt) ? (__int128)(int64_t)load_u(xb, i, dt) : (__int128)load_u(xb, i, dt);
                __int128 w = 2 * (__int128)q->T + 1;
                const __int128 o = w < ((__int128)1 << 32) ? BIN_OFFSET(q, i, (int64_t)w) : (__int128)q->T;
                __int128 num = x + o;
                __int128 k = num / w;
                if (num % w != 0 && num < 0) k -= 1;
                __int128 r = k * w - o + (__int128)q->T;
                __int128 d = r - x, lo, hi;
                if (d < 0) d = -d;
                int_range(dt, &lo, &hi);
                if (r < lo || r > hi || d > (__int128)q->T) { st[j] = ST_FALLBACK; break; }
                Q[j] = (uint64_t)(int64_t)k;
            } else {
                if (!q->isfloat && !int_exact(xb, i, dt)) { st[j] = ST_FALLBACK; break; }
                const double x = load_f(xb, i, dt);
                const double pr = q->pred ? q->pred[i] : 0.0;
                const double step = q->step[p], vb = q->vb[p];
                if (!(step > 0)) { st[j] = ST_FALLBACK; break; }
                double t = (x - pr) / step;
                if (!(fabs(t) <= FC_MAX_ABS_Q)) { st[j] = ST_FALLBACK; break; }
                double k = rint(t);
                int ok = 0;
                for (int a = 0; a < 3 && !ok; a++) {
                    double kk = k + (a == 0 ? 0.0 : a == 1 ? -1.0 : 1.0);
                    double v = cast_f(pr + step * kk, q->vdt);
                    if (fabs(v - x) <= vb) { k = kk; ok = 1; }
                }
                if (!ok) { st[j] = ST_FALLBACK; break; }
                Q[j] = (uint64_t)(int64_t)k;
            }
            break;
        case FC_PWREL: {
            if (!q->isfloat && !int_exact(xb, i, dt)) { st[j] = ST_FALLBACK; break; }
            const double x = load_f(xb, i, dt);
            if (x == 0.0) { st[j] = ST_ZERO; cls[j] = 0; break; }
            if (x != x || isinf(x)) { st[j] = ST_FALLBACK; cls[j] = 1; break; }
            const double ax = fabs(x), sg = x < 0 ? -1.0 : 1.0;
            cls[j] = x < 0 ? 2 : 1;
            double k = rint((log2(ax) + q->centre) / q->s);
            int ok = 0;
            for (int a = 0; a < 3 && !ok; a++) {
                double kk = k + (a == 0 ? 0.0 : a == 1 ? -1.0 : 1.0);
                double v = cast_f(sg * exp2_code(q->x2c, (int64_t)kk, q->s), q->vdt);
                if (fabs(v - x) <= q->ebm * ax && v != 0.0) { k = kk; ok = 1; }
            }
            if (!ok) { st[j] = ST_FALLBACK; break; }
            Q[j] = (uint64_t)(int64_t)k;
            break;
        }
        default: { /* FC_POISSON: dithered integer bins of the element's region */
            if (!q->isfloat && !int_exact(xb, i, dt)) { st[j] = ST_FALLBACK; break; }
            const double x = load_f(xb, i, dt);
            if (!(x >= 0) || x != floor(x) || !(x < (double)q->pa[q->R - q->r0 + 1])) { st[j] = ST_FALLBACK; break; }
            const int64_t xi = (int64_t)x;
            const int64_t ri = xi < q->nxdirect ? q->xdirect[xi] : pois_T(q->eb, xi) - q->r0;
            if (ri < 0 || ri > q->R - q->r0 || xi < q->pa[ri] || xi >= q->pa[ri + 1]) { st[j] = ST_FALLBACK; break; }
            const int64_t r = q->r0 + ri, w = 2 * r + 1, o = BIN_OFFSET(q, i, w); /* T(x) >= r here */
            /* quotient of integers < 2^53 by one float64 division: exact after floor */
            const int64_t kl = (int64_t)floor((double)(xi - q->pa[ri] + o) / (double)w);
            /* the bin's centre is within r = T(x) of x by construction; only the type's range can fail */
            const double v = (double)(q->pa[ri] - o + kl * w + r);
            if (!(cast_f(v, q->vdt) == v)) { st[j] = ST_FALLBACK; break; }
            Q[j] = (uint64_t)(q->pB[ri] + kl);
            break;
        }
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* prediction and contexts                                                                */

FC_INLINE uint64_t predict(int pk, const uint64_t *Qp, const uint64_t *Qc, int64_t j, int64_t y) {
    if (pk == 0) return 0;
    if (y == 0) return j ? Qc[j - 1] : 0;
    if (j == 0) return Qp[0];
    const uint64_t w = Qc[j - 1], n = Qp[j], nw = Qp[j - 1];
    if (pk == 1) return w + n - nw;
    return (uint64_t)(((int64_t)w >> 1) + ((int64_t)n >> 1) + (int64_t)(w & n & 1));
}

FC_INLINE uint32_t sat_abs(uint64_t q, uint32_t cap) {
    uint64_t a = (int64_t)q < 0 ? (uint64_t)0 - q : q;
    return a < cap ? (uint32_t)a : cap;
}

static int expand_mask(const uint8_t *mask, int64_t off, int64_t W, uint8_t *mrow) {
    if (!mask) { memset(mrow, 0, (size_t)W); return 0; }
    int64_t j = 0;
    uint8_t any = 0;
    for (; j < W && ((off + j) & 7); j++) { /* up to the next byte boundary */
        const int64_t i = off + j;
        mrow[j] = (mask[i >> 3] >> (7 - (i & 7))) & 1;
        any |= mrow[j];
    }
    for (; j + 8 <= W; j += 8) { /* whole bytes */
        const uint8_t b = mask[(off + j) >> 3];
        any |= b;
        if (!b) { memset(mrow + j, 0, 8); continue; }
        for (int k = 0; k < 8; k++) mrow[j + k] = (b >> (7 - k)) & 1;
    }
    for (; j < W; j++) {
        const int64_t i = off + j;
        mrow[j] = (mask[i >> 3] >> (7 - (i & 7))) & 1;
        any |= mrow[j];
    }
    return any != 0;
}

/* Estimated bits of a plane under each predictor (0 none, 1 Lorenzo, 2 (W+N)/2) with the
 * quantiser as q is set: residual bit lengths on a sample of rows, plus what a fallback
 * costs (the element's bytes and its index). */
static void plane_costs(const quant_t *q, const void *xb, const uint8_t *mask, int64_t p, int64_t H, int64_t W,
                        uint64_t *Qa, uint64_t *Qb, uint8_t *st, uint8_t *st2, uint8_t *cls, uint8_t *mrow,
                        double cost[3]) {
    const int64_t stride = H <= 24 ? 1 : H / 12;
    const double fb_bits = 8.0 * dt_size(q->dtype) + 8.0;
    cost[0] = cost[1] = cost[2] = 0.0;
    for (int64_t y = 1; y < H; y += stride) {
        int64_t off = (p * H + y - 1) * W;
        expand_mask(mask, off, W, mrow);
        quant_row(q, xb, off, W, p, mrow, Qa, st2, cls);
        expand_mask(mask, off + W, W, mrow);
        quant_row(q, xb, off + W, W, p, mrow, Qb, st, cls);
        double nfb = 0;
        for (int64_t j = 0; j < W; j++) nfb += st[j] == ST_FALLBACK;
        for (int pk = 0; pk < 3; pk++) cost[pk] += nfb * fb_bits;
        for (int64_t j = 1; j < W; j++) {
            if (st[j] || st[j - 1] || st2[j] || st2[j - 1]) continue;
            for (int pk = 0; pk < 3; pk++) {
                uint64_t z = zigzag(Qb[j] - predict(pk, Qa, Qb, j, 1));
                cost[pk] += z ? fc_ilog2_64(z) + 1 : 0;
            }
        }
    }
}

/* The cheapest allowed choice k (predictor k % 3, on the residual to pred when k >= 3);
 * Lorenzo on the plane itself unless another saves 0.5%. */
static int pick_choice(const double c[6], int allowed) {
    static const int order[6] = {1, 2, 0, 4, 5, 3};
    int best = -1;
    for (int i = 0; i < 6; i++) {
        const int k = order[i];
        if ((allowed >> k) & 1 && (best < 0 || c[k] < c[best] * 0.995)) best = k;
    }
    return best;
}

/* Choose plane p's predictor and, for abs streams with a prediction, whether it codes the
 * residual to it; sets q->step[p] and q->vb[p] for that choice. step2/vb2: P entries for
 * planes without the prediction, then P with it. */
static int choose_plane(quant_t *q, const void *xb, const uint8_t *mask, int64_t p, int64_t P, int64_t H,
                        int64_t W, int allowed, const double *step2, const double *vb2, uint64_t *Qa, uint64_t *Qb,
                        uint8_t *st, uint8_t *st2, uint8_t *cls, uint8_t *mrow) {
    double c[6] = {0, 0, 0, 0, 0, 0};
    const double *pred = q->pred;
    if (__builtin_popcount((unsigned)allowed) > 1) {
        for (int on = 0; on < 2; on++) {
            if (!(allowed & (on ? FC_ALLOW_PRED : FC_ALLOW_PLAIN))) continue;
            q->pred = on ? pred : NULL;
            if (step2) { q->step[p] = step2[on * P + p]; q->vb[p] = vb2[on * P + p]; }
            plane_costs(q, xb, mask, p, H, W, Qa, Qb, st, st2, cls, mrow, c + 3 * on);
        }
        q->pred = pred;
    }
    const int k = pick_choice(c, allowed);
    if (step2) { q->step[p] = step2[(k >= 3) * P + p]; q->vb[p] = vb2[(k >= 3) * P + p]; }
    return k;
}

/* ------------------------------------------------------------------------------------ */
/* encoder                                                                              */

typedef struct {
    uint8_t *tok, *bres, *bval, *csym;
    int64_t nval, ncls;
    uint32_t *hres, *hval;
    uint32_t chist[FC_NCLS_CTX][3];
    bw_t extra;
    int64_t *fb;
    int64_t nfb, fbcap;
} encbuf_t;

static int cmp_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int push_fb(encbuf_t *e, int64_t i) {
    if (e->nfb == e->fbcap) {
        int64_t cap = e->fbcap ? 2 * e->fbcap : 1024;
        int64_t *p = realloc(e->fb, (size_t)cap * sizeof(int64_t));
        if (!p) return FC_ERR_NOMEM;
        e->fb = p; e->fbcap = cap;
    }
    e->fb[e->nfb++] = i;
    return 0;
}

/* One row of pass 1: residual tokens, fine context buckets, histograms, raw low bits.
 * pk: 0 none, 1 Lorenzo, 2 (W+N)/2, 3 W (first row). Mirrors dec_row_body. */
FC_INLINE void enc_row_body(encbuf_t *e, const int pk, const int has_cls, const int want_val, int64_t W,
                            const uint64_t *Qp, uint64_t *Qc, const uint32_t *Mp, uint32_t *Mc, const uint32_t *Vp,
                            uint32_t *Vc, const uint8_t *Cp, uint8_t *Cc, const uint8_t *st, const uint8_t *cls) {
    int64_t nval = e->nval, ncls = e->ncls;
    uint8_t *const tokb = e->tok, *const bres = e->bres, *const bval = e->bval, *const csym = e->csym;
    uint32_t *const hres = e->hres, *const hval = e->hval;
    bw_t bw = e->extra;
    uint64_t qW = (pk == 1 || pk == 2) ? Qp[0] : 0, qNW = qW;
    uint32_t mW = 0, mNW = 0, mN = Mp[1];
    uint32_t vW = 0, vNW = 0, vN = want_val ? Vp[1] : 0;
    int cW = 0;
    for (int64_t j = 0; j < W; j++) {
        const uint64_t qN = (pk == 1 || pk == 2) ? Qp[j] : 0;
        uint64_t pr;
        if (pk == 0) pr = 0;
        else if (pk == 3) pr = qW;
        else if (pk == 1) pr = qW + qN - qNW;
        else pr = (uint64_t)(((int64_t)qW >> 1) + ((int64_t)qN >> 1) + (int64_t)(qW & qN & 1));
        const uint32_t mNE = Mp[j + 2];
        const uint32_t vNE = want_val ? Vp[j + 2] : 0;
        const uint8_t s = st[j];
        uint64_t q = pr;
        uint32_t m = 0;
        int c = 0;
        if (s != ST_MASKED) {
            c = 1;
            if (has_cls) {
                c = cls[j];
                const int cc = cW * 3 + Cp[j + 1];
                csym[ncls++] = (uint8_t)(c | (cc << 2));
                e->chist[cc][c]++;
            }
            if (c) {
                q = s == ST_FALLBACK ? pr : Qc[j];
                const uint64_t z = zigzag(q - pr);
                int nx;
                uint64_t ex;
                const int t = tok_of(z, &nx, &ex);
                const int br = fine_bucket(2 * mW + mN + ((mNW + mNE) >> 1));
                tokb[nval] = (uint8_t)t;
                bres[nval] = (uint8_t)br;
                hres[br * FC_NTOK + t]++;
                if (want_val) {
                    const int bv = fine_bucket(vW + vN + ((vNW + vNE) >> 1));
                    bval[nval] = (uint8_t)bv;
                    hval[bv * FC_NTOK + t]++;
                }
                nval++;
                if (nx) bw_put64(&bw, ex, nx);
                m = z < MAG_SAT ? (uint32_t)z : MAG_SAT;
            }
        }
        Qc[j] = q;
        Mc[j + 1] = m;
        if (has_cls) Cc[j + 1] = (uint8_t)c;
        uint32_t v = 0;
        if (want_val) { v = sat_abs(q, VAL_SAT); Vc[j + 1] = v; }
        qNW = qN; qW = q;
        mNW = mN; mN = mNE; mW = m;
        vNW = vN; vN = vNE; vW = v;
        cW = c;
    }
    e->nval = nval;
    e->ncls = ncls;
    e->extra = bw;
}

static void enc_row(encbuf_t *e, int pk, int has_cls, int want_val, int64_t y, int64_t W, uint64_t *Qp, uint64_t *Qc,
                    uint32_t *Mp, uint32_t *Mc, uint32_t *Vp, uint32_t *Vc, uint8_t *Cp, uint8_t *Cc,
                    const uint8_t *st, const uint8_t *cls) {
    if (y == 0 && pk) pk = 3;
#define ENC_PK(HC, WV) \
        switch (pk) { \
        case 0: enc_row_body(e, 0, HC, WV, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, st, cls); return; \
        case 1: enc_row_body(e, 1, HC, WV, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, st, cls); return; \
        case 2: enc_row_body(e, 2, HC, WV, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, st, cls); return; \
        default: enc_row_body(e, 3, HC, WV, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, st, cls); return; }
    if (!has_cls && !want_val) { ENC_PK(0, 0) }
    if (has_cls && !want_val) { ENC_PK(1, 0) }
    if (!has_cls && want_val) { ENC_PK(0, 1) }
    ENC_PK(1, 1)
#undef ENC_PK
}

/* one precision for every stream: a compile-time shift in the decoder's hot loop */
#define FC_PREC 11
/* FC_ABS on floats (or with a prediction): SZ-style. The predictor works on the decoder's
 * reconstruction e (residual to the base = network prediction or 0) and the code is
 * k = rint((x - base - pe) / step); e = pe + step * k. No quantisation noise enters the
 * predictor where k = 0, which is what keeps smooth fields cheap. All in float64 with IEEE
 * basic operations; the decoder repeats them exactly. */
typedef struct {
    const double *xr, *base, *Rp;
    double *Rc;
    const uint32_t *Mp;
    uint32_t *Mc;
    const uint8_t *mrow;
    int64_t off;
    double step, vb;
    double rW, rNW;
    uint32_t mW, mNW, mN;
    int pk;
    int precast; /* verify base + e before the cast (planes coded against the caller's prediction) */
} elane_t;

FC_INLINE void lane_start(const int pk, elane_t *L) {
    L->rW = L->rNW = (pk == 1 || pk == 2) ? L->Rp[0] : 0.0;
    L->mW = L->mNW = 0;
    L->mN = L->Mp[1];
}

FC_INLINE void enc_sz_elem(encbuf_t *e, int64_t *nval, bw_t *bw, const int dt, elane_t *L, int64_t j,
                           uint8_t lanebit, int *err) {
    const double step = L->step, vb = L->vb;
    const int pk = L->pk;
    const double rN = (pk == 1 || pk == 2) ? L->Rp[j] : 0.0;
    double pe;
    if (pk == 0) pe = 0.0;
    else if (pk == 3) pe = L->rW;
    else if (pk == 1) pe = (L->rW + rN) - L->rNW;
    else pe = (L->rW + rN) * 0.5;
    const uint32_t mNE = L->Mp[j + 2];
    double eh = pe;
    uint32_t m = 0;
    if (!L->mrow[j]) {
        const double x = L->xr[j], b0 = L->base ? L->base[j] : 0.0;
        const double t = ((x - b0) - pe) / step;
        double k = 0.0;
        int ok = 0;
        if (fabs(t) <= FC_MAX_ABS_Q) {
            k = rint(t);
            const double v = b0 + (pe + step * k);
            ok = fabs((L->precast ? v : cast_f(v, dt)) - x) <= vb;
            if (FC_UNLIKELY(!ok)) {
                for (int a = -1; a <= 1 && !ok; a += 2) {
                    const double v2 = b0 + (pe + step * (k + a));
                    if (fabs((L->precast ? v2 : cast_f(v2, dt)) - x) <= vb) { k += a; ok = 1; }
                }
            }
        }
        if (FC_UNLIKELY(!ok) && push_fb(e, L->off + j)) *err = 1;
        const uint64_t z = zigzag((uint64_t)(int64_t)k);
        int nx;
        uint64_t ex;
        const int t2 = tok_of(z, &nx, &ex);
        const int br = fine_bucket(2 * L->mW + L->mN + ((L->mNW + mNE) >> 1));
        e->tok[*nval] = (uint8_t)t2;
        e->bres[*nval] = (uint8_t)(br | lanebit);
        e->hres[br * FC_NTOK + t2]++;
        (*nval)++;
        if (nx) bw_put64(bw, ex, nx);
        eh = pe + step * k;
        m = z < MAG_SAT ? (uint32_t)z : MAG_SAT;
    }
    L->Rc[j] = eh;
    L->Mc[j + 1] = m;
    L->rNW = rN; L->rW = eh;
    L->mNW = L->mN; L->mN = mNE; L->mW = m;
}

/* FC_ABS on floats (or with a prediction): SZ-style. The predictor works on the decoder's
 * reconstruction e (residual to the base = network prediction or 0) and the code is
 * k = rint((x - base - pe) / step); e = pe + step * k. No quantisation noise enters the
 * predictor where k = 0, which keeps smooth fields cheap. All in float64 with IEEE basic
 * operations; the decoder repeats them exactly. Two lanes (the upper and lower half of the
 * plane's rows) alternate element by element, each with its own rANS state, so that the
 * decoder runs two independent dependency chains. */
FC_INLINE void enc_rows_sz_body(encbuf_t *e, const int dt, const int two, int64_t W, elane_t A,
                                elane_t B, int *err) {
    int64_t nval = e->nval;
    bw_t bw = e->extra;
    lane_start(A.pk, &A);
    if (two) lane_start(B.pk, &B);
    for (int64_t j = 0; j < W; j++) {
        enc_sz_elem(e, &nval, &bw, dt, &A, j, 0, err);
        if (two) enc_sz_elem(e, &nval, &bw, dt, &B, j, 0x80, err);
    }
    e->nval = nval;
    e->extra = bw;
}

/* dt: the type the elements are verified in (FC_F16 for float16 held as float32) */
static int enc_rows_sz(encbuf_t *e, int dt, int64_t r, int two, int64_t W, elane_t *A, elane_t *B) {
    int err = 0;
    elane_t a = *A, b = *B;
    if (r == 0 && a.pk) a.pk = 3;
    if (r == 0 && b.pk) b.pk = 3;
#define ENC_SZ(TW) \
    if (dt == FC_F16) enc_rows_sz_body(e, FC_F16, TW, W, a, b, &err); \
    else if (dt == FC_F32) enc_rows_sz_body(e, FC_F32, TW, W, a, b, &err); \
    else if (dt == FC_F64) enc_rows_sz_body(e, FC_F64, TW, W, a, b, &err); \
    else enc_rows_sz_body(e, dt, TW, W, a, b, &err);
    if (two) { ENC_SZ(1) } else { ENC_SZ(0) }
#undef ENC_SZ
    return err ? FC_ERR_NOMEM : 0;
}

static void load_row_f(const void *xb, int dt, int64_t off, int64_t W, double *xr) {
    if (dt == FC_F32) { const float *x = (const float *)xb + off; for (int64_t j = 0; j < W; j++) xr[j] = x[j]; }
    else if (dt == FC_F64) memcpy(xr, (const double *)xb + off, sizeof(double) * (size_t)W);
    else /* a 64-bit integer float64 cannot hold exactly becomes NaN: it fails verification, stored exactly */
        for (int64_t j = 0; j < W; j++) xr[j] = int_exact(xb, off + j, dt) ? load_f(xb, off + j, dt) : NAN;
}

static double plane_absmax(const void *xb, int dt, int64_t i0, int64_t n, const uint8_t *mask) {
    double xmax = 0;
    if (!mask && dt == FC_F32) {
        const float *x = (const float *)xb + i0;
        float m = 0;
        for (int64_t i = 0; i < n; i++) { const float a = fabsf(x[i]); m = (a > m && a <= FLT_MAX) ? a : m; }
        return m;
    }
    for (int64_t i = i0; i < i0 + n; i++) {
        if (mask && ((mask[i >> 3] >> (7 - (i & 7))) & 1)) continue;
        const double a = fabs(load_f(xb, i, dt));
        if (a > xmax && a <= DBL_MAX) xmax = a;
    }
    return xmax;
}

static int precision_for(int64_t nsym) { (void)nsym; return FC_PREC; }

static int check_shape(int dtype, int64_t P, int64_t H, int64_t W) {
    if (dtype < FC_F32 || dtype > FC_U64) return FC_ERR_ARG;
    if (P < 0 || H < 1 || W < 1 || H > MAX_ELEMENTS || W > MAX_ELEMENTS) return FC_ERR_ARG;
    if (P > 0 && H * W > MAX_ELEMENTS / P) return FC_ERR_ARG;
    return 0;
}

int64_t fc_encode(const void *xb, int dtype, int64_t P, int64_t H, int64_t W, const uint8_t *mask, int mode,
                  double eb, const double *half_step, const double *eb_verify, const double *pred, int allowed,
                  int flags, uint8_t **out, fc_stats *stats) {
    *out = NULL;
    int64_t size = 0;
    if (check_shape(dtype, P, H, W)) return FC_ERR_ARG;
    const int isfloat = dtype == FC_F32 || dtype == FC_F64;
    if (mode < FC_LOSSLESS || mode > FC_POISSON) return FC_ERR_ARG;
    if (mode == FC_LOSSLESS && isfloat) return FC_ERR_ARG;
    if (mode != FC_LOSSLESS && !(eb >= 0 && eb < 1e300)) return FC_ERR_ARG;
    if (pred && (mode != FC_ABS || !half_step || !eb_verify)) return FC_ERR_ARG;
    if ((flags & ~(FC_NO_DITHER | FC_VERIFY_F16)) || ((flags & FC_VERIFY_F16) && dtype != FC_F32)) return FC_ERR_ARG;
    if (allowed < 0 || allowed > FC_ALLOW_ALL) return FC_ERR_ARG;
    if (!allowed) allowed = FC_ALLOW_ALL;
    if (!pred) allowed &= FC_ALLOW_PLAIN;
    if (!allowed) return FC_ERR_ARG;
    const int64_t n = P * H * W;
    quant_t q;
    memset(&q, 0, sizeof q);
    q.mode = mode; q.dtype = dtype; q.isfloat = isfloat; q.eb = eb; q.pred = pred; q.uses_pred = 0;
    q.vdt = (flags & FC_VERIFY_F16) ? FC_F16 : dtype;
    q.dither = !(flags & FC_NO_DITHER);
    q.uniform_cls = 1;
    double *step2 = NULL, *vb2 = NULL;
    int rc = 0;
    encbuf_t e;
    memset(&e, 0, sizeof e);
    uint64_t *Qp = NULL, *Qc = NULL;
    double *Rp = NULL, *Rc = NULL, *xr = NULL, *Rp2 = NULL, *Rc2 = NULL, *xr2 = NULL, *rowsd = NULL;
    uint32_t *rows32 = NULL, *lanebuf32 = NULL;
    uint8_t *mrow2 = NULL;
    uint8_t *rows8 = NULL, *preds = NULL, *res = NULL;
    uint16_t *words = NULL;
    if (mode == FC_ABS && !isfloat && !pred) {
        if (eb < 1) { mode = q.mode = FC_LOSSLESS; }
        else { q.intabs = 1; q.T = eb >= 4.6e18 ? (uint64_t)4.6e18 : (uint64_t)floor(eb); }
    }
    if (mode == FC_PWREL) { pwrel_params(&q, eb); if ((rc = pwrel_cache(&q))) goto done; }
    if (mode == FC_POISSON) {
        if (!(eb > 0x1p-12 && eb < 0x1p20)) return FC_ERR_ARG;
        if ((rc = poisson_params(&q, eb, poisson_R(xb, dtype, n, mask, eb)))) goto done;
    }
    if (mode != FC_ABS || q.intabs) allowed &= FC_ALLOW_PLAIN;
    if (mode == FC_ABS && !q.intabs) {
        q.step = malloc(sizeof(double) * (size_t)(P ? P : 1));
        q.vb = malloc(sizeof(double) * (size_t)(P ? P : 1));
        step2 = malloc(sizeof(double) * (size_t)(2 * P + 1));
        vb2 = malloc(sizeof(double) * (size_t)(2 * P + 1));
        if (!q.step || !q.vb || !step2 || !vb2) { rc = FC_ERR_NOMEM; goto done; }
        for (int64_t p = 0; p < P; p++) {
            for (int on = 0; on < 2; on++) {
                double h, vb;
                if (on && !pred) { h = vb = 0.0; }
                else if (on) { h = half_step[p]; vb = eb_verify[p]; }
                else { /* float rounding reserve of the element type (saecodec.bound._targets) */
                    const double xmax = plane_absmax(xb, dtype, p * H * W, H * W, mask);
                    if (q.vdt == FC_F16) h = eb - 0x1p-10 * (xmax + eb) - 0x1p-24;
                    else if (dtype == FC_F32) h = eb - 0x1p-23 * (xmax + eb) - 0x1p-149;
                    else if (dtype == FC_F64) h = eb - 0x1p-52 * (xmax + eb) - 0x1p-1074;
                    else h = floor(eb) + 0.5 - 1e-6 - 0x1p-46 * xmax;
                    vb = dtype == FC_F64 ? eb * (1 - 0x1p-50) : eb;
                }
                float s = round_down_f32(2.0 * h);
                step2[on * P + p] = (h > 0 && s > FLT_MIN && isfinite(s)) ? (double)s : 0.0;
                vb2[on * P + p] = vb;
            }
            q.step[p] = step2[p];
            q.vb[p] = vb2[p];
        }
        if (pred) {
            q.plane_pred = calloc((size_t)(P ? P : 1), 1);
            if (!q.plane_pred) { rc = FC_ERR_NOMEM; goto done; }
        }
    }
    const int has_cls_possible = mode == FC_PWREL;
    const int want_val = mode == FC_LOSSLESS || mode == FC_POISSON || q.intabs;

    /* buffers */
    const int sz = mode == FC_ABS && !q.intabs;
    rowsd = malloc(sizeof(double) * (size_t)W * 6);
    lanebuf32 = calloc((size_t)(W + 2) * 4, sizeof(uint32_t));
    mrow2 = malloc((size_t)W + 8);
    if (!rowsd || !lanebuf32 || !mrow2) { rc = FC_ERR_NOMEM; goto done; }
    Rp = rowsd; Rc = rowsd + W; Rp2 = rowsd + 2 * W; Rc2 = rowsd + 3 * W; xr = rowsd + 4 * W; xr2 = rowsd + 5 * W;
    Qp = malloc(sizeof(uint64_t) * (size_t)W);
    Qc = malloc(sizeof(uint64_t) * (size_t)W);
    rows32 = calloc((size_t)(W + 2) * 4, sizeof(uint32_t));
    rows8 = calloc((size_t)(W + 2) * 6, 1);
    preds = malloc((size_t)(P ? P : 1));
    e.tok = malloc((size_t)(n ? n : 1));
    e.bres = malloc((size_t)(n ? n : 1));
    e.bval = want_val ? malloc((size_t)(n ? n : 1)) : NULL;
    e.csym = has_cls_possible ? malloc((size_t)(n ? n : 1)) : NULL;
    e.hres = calloc(FC_NFINE * FC_NTOK, sizeof(uint32_t));
    e.hval = calloc(FC_NFINE * FC_NTOK, sizeof(uint32_t));
    size_t extra_cap = (size_t)n * 8 + 64;
    e.extra.buf = malloc(extra_cap);
    e.extra.cap = extra_cap;
    if (!Qp || !Qc || !rows32 || !rows8 || !preds || !e.tok || !e.bres || (want_val && !e.bval) ||
        (has_cls_possible && !e.csym) || !e.hres || !e.hval || !e.extra.buf) { rc = FC_ERR_NOMEM; goto done; }
    uint32_t *Mp = rows32, *Mc = rows32 + (W + 2), *Vp = rows32 + 2 * (W + 2), *Vc = rows32 + 3 * (W + 2);
    uint8_t *Cp = rows8, *Cc = rows8 + (W + 2), *st = rows8 + 2 * (W + 2), *cls = rows8 + 3 * (W + 2);
    uint8_t *mrow = rows8 + 4 * (W + 2), *st2 = rows8 + 5 * (W + 2);

    /* pwrel: are classes uniform? (one pass over signs) */
    if (mode == FC_PWREL) {
        int seen[3] = {0, 0, 0};
        for (int64_t i = 0; i < n; i++) {
            if (mask && ((mask[i >> 3] >> (7 - (i & 7))) & 1)) continue;
            double x = load_f(xb, i, dtype);
            seen[x == 0 ? 0 : (x < 0 ? 2 : 1)] = 1; /* NaN counts as positive (fallback) */
        }
        int kinds = seen[0] + seen[1] + seen[2];
        q.uniform_cls = kinds > 1 ? 0 : seen[2] ? 2 : seen[0] ? 3 : 1;
    }
    const int has_cls = mode == FC_PWREL && q.uniform_cls == 0;
    int64_t npk[4] = {0, 0, 0, 0};

    for (int64_t p = 0; sz && p < P;) {
        /* abs floats: two lanes = a pair of planes in lockstep (one predictor for both), or the
         * upper and lower half of a last, unpaired plane */
        const int pair = p + 1 < P;
        const int kA = choose_plane(&q, xb, mask, p, P, H, W, allowed, step2, vb2, Qp, Qc, st, st2, cls, mrow);
        const int kB = pair ? choose_plane(&q, xb, mask, p + 1, P, H, W, allowed, step2, vb2, Qp, Qc, st, st2, cls, mrow)
                            : kA;
        const int pk = kA % 3, pkB = kB % 3;
        preds[p] = (uint8_t)pk;
        npk[pk]++;
        if (kA >= 3) { q.plane_pred[p] = 1; q.uses_pred = 1; npk[3]++; }
        if (pair) {
            preds[p + 1] = (uint8_t)pkB;
            npk[pkB]++;
            if (kB >= 3) { q.plane_pred[p + 1] = 1; q.uses_pred = 1; npk[3]++; }
        }
        memset(rows32, 0, sizeof(uint32_t) * (size_t)(W + 2) * 4);
        memset(lanebuf32, 0, sizeof(uint32_t) * (size_t)(W + 2) * 4);
        const int64_t hA = pair ? H : H >= FC_SPLIT_ROWS ? (H + 1) / 2 : H, hB = pair ? H : H - hA;
        const int64_t baseA = p * H * W, baseB = pair ? (p + 1) * H * W : (p * H + hA) * W;
        const int onA = kA >= 3, onB = kB >= 3;
        elane_t A = {xr, NULL, Rp, Rc, rows32, rows32 + (W + 2), mrow, 0, q.step[p], q.vb[p], 0, 0, 0, 0, 0, pk, onA};
        elane_t B = {xr2, NULL, Rp2, Rc2, lanebuf32, lanebuf32 + (W + 2), mrow2, 0,
                     q.step[pair ? p + 1 : p], q.vb[pair ? p + 1 : p], 0, 0, 0, 0, 0, pkB, onB};
        for (int64_t r = 0; r < hA; r++) {
            const int two = r < hB;
            A.off = baseA + r * W;
            expand_mask(mask, A.off, W, mrow);
            load_row_f(xb, dtype, A.off, W, xr);
            A.base = onA ? pred + A.off : NULL;
            if (two) {
                B.off = baseB + r * W;
                expand_mask(mask, B.off, W, mrow2);
                load_row_f(xb, dtype, B.off, W, xr2);
                B.base = onB ? pred + B.off : NULL;
            }
            if ((rc = enc_rows_sz(&e, q.vdt, r, two, W, &A, &B))) goto done;
            double *td = (double *)A.Rp; A.Rp = A.Rc; A.Rc = td;
            uint32_t *t32 = (uint32_t *)A.Mp; A.Mp = A.Mc; A.Mc = t32; A.Mc[0] = 0;
            td = (double *)B.Rp; B.Rp = B.Rc; B.Rc = td;
            t32 = (uint32_t *)B.Mp; B.Mp = B.Mc; B.Mc = t32; B.Mc[0] = 0;
        }
        p += pair ? 2 : 1;
    }
    for (int64_t p = 0; !sz && p < P; p++) {
        const int pk = choose_plane(&q, xb, mask, p, P, H, W, allowed, NULL, NULL, Qp, Qc, st, st2, cls, mrow);
        preds[p] = (uint8_t)pk;
        npk[pk]++;
        memset(rows32, 0, sizeof(uint32_t) * (size_t)(W + 2) * 4);
        memset(Cp, 0, (size_t)(W + 2) * 2);
        for (int64_t y = 0; y < H; y++) {
            const int64_t off = (p * H + y) * W;
            expand_mask(mask, off, W, mrow);
            quant_row(&q, xb, off, W, p, mrow, Qc, st, cls);
            for (int64_t j = 0; j < W; j++)
                if (st[j] == ST_FALLBACK && (rc = push_fb(&e, off + j))) goto done;
            if (q.uniform_cls == 3) /* all zero: no value symbols */
                for (int64_t j = 0; j < W; j++) if (st[j] == ST_ZERO) st[j] = ST_MASKED;
            enc_row(&e, pk, has_cls, want_val, y, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, st, cls);
            uint64_t *tq = Qp; Qp = Qc; Qc = tq;
            uint32_t *t32 = Mp; Mp = Mc; Mc = t32;
            t32 = Vp; Vp = Vc; Vc = t32;
            uint8_t *t8 = Cp; Cp = Cc; Cc = t8;
            Mc[0] = 0; Vc[0] = 0; Cc[0] = 0;
        }
    }
    bw_finish(&e.extra);
    if (e.extra.err) { rc = FC_ERR_NOMEM; goto done; }

    /* contexts and tables */
    uint8_t ctxmap[FC_NFINE];
    double bits_res = 0, bits_val = 1e300;
    int kind = 0;
    int nctx = cluster_buckets(e.hres, FC_MAX_CTX, ctxmap, &bits_res);
    if (want_val) {
        uint8_t map2[FC_NFINE];
        int n2 = cluster_buckets(e.hval, FC_MAX_CTX, map2, &bits_val);
        if (bits_val < bits_res) { kind = 1; nctx = n2; memcpy(ctxmap, map2, FC_NFINE); }
    }
    const int prec = precision_for(e.nval + e.ncls);
    ftab_t *tabs = calloc((size_t)(nctx + FC_NCLS_CTX), sizeof(ftab_t));
    size_t tcap = (size_t)(nctx + FC_NCLS_CTX) * (FC_NTOK * 20 + 64) / 8 + 64;
    uint8_t *tbuf = malloc(tcap);
    if (!tabs || !tbuf) { free(tabs); free(tbuf); rc = FC_ERR_NOMEM; goto done; }
    bw_t tw = {tbuf, 0, tcap, 0, 0, 0};
    {
        uint32_t cnt[FC_NTOK];
        const uint32_t *h = kind ? e.hval : e.hres;
        for (int c = 0; c < nctx; c++) {
            memset(cnt, 0, sizeof cnt);
            for (int b = 0; b < FC_NFINE; b++)
                if (ctxmap[b] == c) for (int t = 0; t < FC_NTOK; t++) cnt[t] += h[b * FC_NTOK + t];
            ftab_build(cnt, FC_NTOK, prec, &tabs[c], &tw);
        }
        if (has_cls)
            for (int c = 0; c < FC_NCLS_CTX; c++) ftab_build(e.chist[c], 3, prec, &tabs[nctx + c], &tw);
    }
    bw_finish(&tw);

    /* rANS, backwards */
    size_t wcap = (size_t)(e.nval + e.ncls) + 6;
    words = malloc(wcap * sizeof(uint16_t));
    if (!words) { free(tabs); free(tbuf); rc = FC_ERR_NOMEM; goto done; }
    uint16_t *wp = words + wcap;
    uint32_t xs = RANS_L, xs2 = RANS_L; /* lane B's state (abs floats) */
    const uint8_t *bsel = kind ? e.bval : e.bres;
    if (has_cls) {
        int64_t v = e.nval;
        for (int64_t k = e.ncls - 1; k >= 0; k--) {
            const int c = e.csym[k] & 3, cc = e.csym[k] >> 2;
            if (c) {
                v--;
                const ftab_t *t = &tabs[ctxmap[bsel[v]]];
                rans_put_rcp(&xs, &wp, t, e.tok[v], prec);
            }
            const ftab_t *t = &tabs[nctx + cc];
            rans_put_rcp(&xs, &wp, t, c, prec);
        }
    } else if (sz) {
        for (int64_t v = e.nval - 1; v >= 0; v--) {
            const ftab_t *t = &tabs[ctxmap[e.bres[v] & 63]];
            rans_put_rcp(e.bres[v] & 0x80 ? &xs2 : &xs, &wp, t, e.tok[v], prec);
        }
    } else {
        for (int64_t v = e.nval - 1; v >= 0; v--) {
            const ftab_t *t = &tabs[ctxmap[bsel[v]]];
            rans_put_rcp(&xs, &wp, t, e.tok[v], prec);
        }
    }
    *--wp = (uint16_t)(xs2 & 0xffff);
    *--wp = (uint16_t)(xs2 >> 16);
    *--wp = (uint16_t)(xs & 0xffff);
    *--wp = (uint16_t)(xs >> 16);
    const size_t nwords = (size_t)(words + wcap - wp);

    /* assemble */
    const int esz = dt_size(dtype);
    size_t cap = 128 + (size_t)P * 4 + (size_t)P / 4 + (size_t)P / 8 + 2 + FC_NFINE + tw.pos + 2 * nwords + e.extra.pos +
                 (size_t)e.nfb * (10 + esz) + 64;
    res = malloc(cap);
    if (!res) { free(tabs); free(tbuf); rc = FC_ERR_NOMEM; goto done; }
    bytes_t o = {res, 0, cap, 0};
    by_u8(&o, FC_VERSION);
    by_u8(&o, (uint8_t)mode);
    by_u8(&o, (uint8_t)(kind | (q.uniform_cls << 1) | (q.uses_pred ? 8 : 0) | (q.intabs ? 16 : 0) | (q.dither ? 32 : 0)));
    by_u8(&o, (uint8_t)prec);
    by_u8(&o, (uint8_t)dtype);
    by_varint(&o, (uint64_t)P); by_varint(&o, (uint64_t)H); by_varint(&o, (uint64_t)W);
    if (mode == FC_ABS && q.intabs) by_varint(&o, q.T);
    else if (mode == FC_ABS) {
        int uniform = 1;
        for (int64_t p = 1; p < P; p++) if (q.step[p] != q.step[0]) uniform = 0;
        by_u8(&o, (uint8_t)uniform);
        for (int64_t p = 0; p < (uniform ? (P ? 1 : 0) : P); p++) { float s = (float)q.step[p]; by_put(&o, &s, 4); }
    } else if (mode == FC_PWREL) by_put(&o, &q.s, 8);
    else if (mode == FC_POISSON) { by_put(&o, &q.eb, 8); by_varint(&o, (uint64_t)(q.R - q.r0)); }
    for (int64_t p = 0; p < P; p += 4) {
        uint8_t b = 0;
        for (int k = 0; k < 4 && p + k < P; k++) b |= (uint8_t)(preds[p + k] << (2 * k));
        by_u8(&o, b);
    }
    for (int64_t p = 0; q.uses_pred && p < P; p += 8) { /* planes coded against the prediction */
        uint8_t b = 0;
        for (int k = 0; k < 8 && p + k < P; k++) b |= (uint8_t)(q.plane_pred[p + k] << k);
        by_u8(&o, b);
    }
    by_u8(&o, (uint8_t)nctx);
    for (int c = 1; c < nctx; c++) { int b = 0; while (ctxmap[b] < c) b++; by_u8(&o, (uint8_t)b); }
    by_varint(&o, tw.pos); by_put(&o, tbuf, tw.pos);
    size_t table_end = o.pos;
    by_varint(&o, nwords);
    for (size_t k = 0; k < nwords; k++) { uint16_t wv = wp[k]; by_put(&o, &wv, 2); }
    size_t rans_end = o.pos;
    by_varint(&o, e.extra.pos); by_put(&o, e.extra.buf, e.extra.pos);
    size_t extra_end = o.pos;
    if (e.nfb > 1) qsort(e.fb, (size_t)e.nfb, sizeof(int64_t), cmp_i64); /* lanes push out of order */
    by_varint(&o, (uint64_t)e.nfb);
    for (int64_t k = 0; k < e.nfb; k++) by_varint(&o, (uint64_t)(e.fb[k] - (k ? e.fb[k - 1] + 1 : 0)));
    for (int64_t k = 0; k < e.nfb; k++) by_put(&o, (const uint8_t *)xb + e.fb[k] * esz, (size_t)esz);
    free(tabs); free(tbuf);
    if (o.err) { rc = FC_ERR_NOMEM; goto done; }
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->n_fallback = e.nfb; stats->n_coded = e.nval; stats->table_bytes = (int64_t)table_end;
        stats->rans_bytes = (int64_t)(rans_end - table_end); stats->extra_bytes = (int64_t)(extra_end - rans_end);
        stats->fallback_bytes = (int64_t)(o.pos - extra_end); stats->n_ctx = nctx; stats->ctx_kind = kind;
        stats->precision = prec;
        for (int k = 0; k < 4; k++) stats->predictors[k] = (int32_t)npk[k];
    }
    *out = res;
    res = NULL;
    rc = 0;
    size = (int64_t)o.pos;
done:
    free(rowsd); free(lanebuf32); free(mrow2);
    (void)Rp2; (void)Rc2; (void)xr2;
    free(Qp); free(Qc); free(rows32); free(rows8); free(preds); free(e.tok); free(e.bres); free(e.bval);
    free(e.csym); free(e.hres); free(e.hval); free(e.extra.buf); free(e.fb); free(words); free(res);
    free(step2); free(vb2);
    quant_free(&q);
    return rc ? rc : size;
}

/* ------------------------------------------------------------------------------------ */
/* decoder                                                                              */

typedef struct {
    const uint8_t *w, *wend;
    uint32_t x;
    int err;
} rdec_t;

typedef struct {
    rdec_t rd;
    br_t br;
    const uint8_t *tok8;     /* per table 2^prec slots -> token */
    const uint32_t *finfo;   /* per table FC_NTOK entries: freq | start << 16 */
    uint32_t cb8[FC_NFINE];  /* fine bucket -> table offset in tok8 */
    uint32_t cbi[FC_NFINE];  /* fine bucket -> table offset in finfo */
    uint32_t x2;             /* the second lane's rANS state (abs floats) */
    int prec, nctx;
} dec_t;

/* one rANS symbol from table `tab` (never reads outside the word buffer) */
#define RANS_DEC(TOKOFF, INFOOFF, OUT) do { \
        const uint32_t slot_ = x & pmask; \
        const int t_ = tok8[(TOKOFF) + slot_]; \
        const uint32_t fi_ = finfo[(INFOOFF) + t_]; \
        x = (fi_ & 0xffff) * (x >> prec) + slot_ - (fi_ >> 16); \
        if (x < RANS_L) { \
            if (FC_LIKELY(wend - wp >= 2)) { uint16_t v_; memcpy(&v_, wp, 2); wp += 2; x = (x << 16) | v_; } \
            else { err = 1; x = (x << 16) | 1; } \
        } \
        OUT = t_; } while (0)

/* One row. pk: 0 none, 1 Lorenzo, 2 (W+N)/2, 3 W (first row of a predicted plane).
 * Neighbours roll through registers; the rANS state and bit reader live in locals. */
FC_INLINE void dec_row_body(dec_t *d, const int pk, const int has_cls, const int want_val, const int kind,
                            const int has_mask, int64_t W, const uint64_t *Qp, uint64_t *Qc, const uint32_t *Mp,
                            uint32_t *Mc, const uint32_t *Vp, uint32_t *Vc, const uint8_t *Cp, uint8_t *Cc,
                            const uint8_t *mrow) {
    const int prec = FC_PREC;
    const uint32_t pmask = (1u << prec) - 1;
    const uint8_t *const tok8 = d->tok8;
    const uint32_t *const finfo = d->finfo, *const cb8 = d->cb8, *const cbi = d->cbi;
    const uint32_t c8 = (uint32_t)d->nctx << prec, ci = (uint32_t)d->nctx * FC_NTOK;
    uint32_t x = d->rd.x;
    const uint8_t *wp = d->rd.w, *const wend = d->rd.wend;
    int err = 0;
    br_t br = d->br;
    uint64_t qW = (pk == 1 || pk == 2) ? Qp[0] : 0, qNW = qW;
    uint32_t mW = 0, mNW = 0, mN = Mp[1];
    uint32_t vW = 0, vNW = 0, vN = want_val ? Vp[1] : 0;
    int cW = 0;
    for (int64_t j = 0; j < W; j++) {
        const uint64_t qN = (pk == 1 || pk == 2) ? Qp[j] : 0;
        uint64_t pr;
        if (pk == 0) pr = 0;
        else if (pk == 3) pr = qW;
        else if (pk == 1) pr = qW + qN - qNW;
        else pr = (uint64_t)(((int64_t)qW >> 1) + ((int64_t)qN >> 1) + (int64_t)(qW & qN & 1));
        const uint32_t mNE = Mp[j + 2];
        const uint32_t vNE = want_val ? Vp[j + 2] : 0;
        uint64_t q = pr;
        uint32_t m = 0;
        int c = 0;
        if (!(has_mask && mrow[j])) {
            c = 1;
            if (has_cls) {
                const uint32_t cc = (uint32_t)(cW * 3 + Cp[j + 1]);
                RANS_DEC(c8 + (cc << prec), ci + cc * FC_NTOK, c);
                if (c > 2) { err = 1; c = 0; }
            }
            if (c) {
                const uint32_t a = kind ? vW + vN + ((vNW + vNE) >> 1) : 2 * mW + mN + ((mNW + mNE) >> 1);
                const int b = fine_bucket(a);
                int t;
                RANS_DEC(cb8[b], cbi[b], t);
                uint64_t z = (uint64_t)t;
                if (t >= 16) z = tok_value(t, br_get64(&br, tok_nextra(t)));
                q = pr + unzigzag(z);
                m = z < MAG_SAT ? (uint32_t)z : MAG_SAT;
            }
        }
        Qc[j] = q;
        Mc[j + 1] = m;
        if (has_cls) Cc[j + 1] = (uint8_t)c;
        uint32_t v = 0;
        if (want_val) { v = sat_abs(q, VAL_SAT); Vc[j + 1] = v; }
        qNW = qN; qW = q;
        mNW = mN; mN = mNE; mW = m;
        vNW = vN; vN = vNE; vW = v;
        cW = c;
    }
    d->rd.x = x;
    d->rd.w = wp;
    d->rd.err |= err;
    d->br = br;
}

typedef struct {
    const double *base, *Rp;
    double *Rc;
    const uint32_t *Mp;
    uint32_t *Mc;
    const uint8_t *mrow;
    void *out;   /* element 0 of the row */
    double step;
    double rW, rNW;
    uint32_t mW, mNW, mN;
    uint32_t x;  /* this lane's rANS state */
    int pk;
} dlane_t;

FC_INLINE void dlane_start(const int pk, dlane_t *L) {
    L->rW = L->rNW = (pk == 1 || pk == 2) ? L->Rp[0] : 0.0;
    L->mW = L->mNW = 0;
    L->mN = L->Mp[1];
}

FC_INLINE void dec_sz_elem(const uint8_t *tok8, const uint32_t *finfo, const uint32_t *cb8, const uint32_t *cbi,
                           const uint8_t **wpp, const uint8_t *wend, int *errp, br_t *br, const int dt,
                           const int has_mask, dlane_t *L, int64_t j) {
    const int pk = L->pk;
    const int prec = FC_PREC;
    const double step = L->step;
    const uint32_t pmask = (1u << prec) - 1;
    const double rN = (pk == 1 || pk == 2) ? L->Rp[j] : 0.0;
    double pe;
    if (pk == 0) pe = 0.0;
    else if (pk == 3) pe = L->rW;
    else if (pk == 1) pe = (L->rW + rN) - L->rNW;
    else pe = (L->rW + rN) * 0.5;
    const uint32_t mNE = L->Mp[j + 2];
    double eh = pe;
    uint32_t m = 0;
    if (!(has_mask && L->mrow[j])) {
        const int b = fine_bucket(2 * L->mW + L->mN + ((L->mNW + mNE) >> 1));
        uint32_t x = L->x;
        const uint8_t *wp = *wpp;
        int err = 0, t;
        RANS_DEC(cb8[b], cbi[b], t);
        L->x = x;
        *wpp = wp;
        *errp |= err;
        uint64_t z = (uint64_t)t;
        if (t >= 16) z = tok_value(t, br_get64(br, tok_nextra(t)));
        eh = pe + step * (double)(int64_t)unzigzag(z);
        m = z < MAG_SAT ? (uint32_t)z : MAG_SAT;
        double v = (L->base ? L->base[j] : 0.0) + eh;
        /* cast_f without its NaN test (branch-free clamps): equal for every finite v; a NaN
         * can only arise where the encoder stored the element as a fallback */
        if (dt == FC_F32) {
            v = v > FLT_MAX ? FLT_MAX : v;
            v = v < -FLT_MAX ? -FLT_MAX : v;
            ((float *)L->out)[j] = (float)v;
        } else if (dt == FC_F64) {
            v = v > DBL_MAX ? DBL_MAX : v;
            v = v < -DBL_MAX ? -DBL_MAX : v;
            ((double *)L->out)[j] = v;
        } else store_f(L->out, j, dt, cast_f(v, dt));
    }
    L->Rc[j] = eh;
    L->Mc[j + 1] = m;
    L->rNW = rN; L->rW = eh;
    L->mNW = L->mN; L->mN = mNE; L->mW = m;
}

/* FC_ABS on floats: the decoder side of enc_rows_sz_body (two lanes, two rANS states) */
FC_INLINE void dec_rows_sz_body(dec_t *d, const int dt, const int has_mask, const int two, int64_t W,
                                dlane_t *Ap, dlane_t *Bp) {
    const uint8_t *const tok8 = d->tok8;
    const uint32_t *const finfo = d->finfo, *const cb8 = d->cb8, *const cbi = d->cbi;
    const uint8_t *wp = d->rd.w, *const wend = d->rd.wend;
    int err = 0;
    br_t br = d->br;
    dlane_t A = *Ap, B = *Bp;
    A.x = d->rd.x;
    B.x = d->x2;
    dlane_start(A.pk, &A);
    if (two) dlane_start(B.pk, &B);
    for (int64_t j = 0; j < W; j++) {
        dec_sz_elem(tok8, finfo, cb8, cbi, &wp, wend, &err, &br, dt, has_mask, &A, j);
        if (two) dec_sz_elem(tok8, finfo, cb8, cbi, &wp, wend, &err, &br, dt, has_mask, &B, j);
    }
    d->rd.x = A.x;
    d->x2 = B.x;
    d->rd.w = wp;
    d->rd.err |= err;
    d->br = br;
}

static void dec_rows_sz(dec_t *d, int dt, int has_mask, int two, int64_t r, int64_t W, dlane_t *A, dlane_t *B) {
    dlane_t a = *A, b = *B;
    if (r == 0 && a.pk) a.pk = 3;
    if (r == 0 && b.pk) b.pk = 3;
#define DEC_SZ_DT(HM, TW) \
    if (dt == FC_F32) dec_rows_sz_body(d, FC_F32, HM, TW, W, &a, &b); \
    else if (dt == FC_F64) dec_rows_sz_body(d, FC_F64, HM, TW, W, &a, &b); \
    else dec_rows_sz_body(d, dt, HM, TW, W, &a, &b);
#define DEC_SZ_TW(HM) if (two) { DEC_SZ_DT(HM, 1) } else { DEC_SZ_DT(HM, 0) }
    if (has_mask) { DEC_SZ_TW(1) } else { DEC_SZ_TW(0) }
#undef DEC_SZ_TW
#undef DEC_SZ_DT
}

static void dec_row(dec_t *d, int pk, int has_cls, int want_val, int kind, int64_t y, int64_t W, uint64_t *Qp,
                    uint64_t *Qc, uint32_t *Mp, uint32_t *Mc, uint32_t *Vp, uint32_t *Vc, uint8_t *Cp, uint8_t *Cc,
                    const uint8_t *mrow, int has_mask) {
    if (y == 0 && pk) pk = 3;
#define DEC_PK(HC, WV, K, HM) \
        switch (pk) { \
        case 0: dec_row_body(d, 0, HC, WV, K, HM, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, mrow); return; \
        case 1: dec_row_body(d, 1, HC, WV, K, HM, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, mrow); return; \
        case 2: dec_row_body(d, 2, HC, WV, K, HM, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, mrow); return; \
        default: dec_row_body(d, 3, HC, WV, K, HM, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, mrow); return; }
#define DEC_CASE(HC, WV, K) \
    if (has_cls == HC && want_val == WV && kind == K) { \
        if (has_mask) { DEC_PK(HC, WV, K, 1) } else { DEC_PK(HC, WV, K, 0) } }
    DEC_CASE(0, 0, 0) DEC_CASE(1, 0, 0) DEC_CASE(0, 1, 0) DEC_CASE(0, 1, 1)
#undef DEC_CASE
#undef DEC_PK
    d->rd.err = 1;
}

/* codes of one row -> elements of the output (masked elements untouched) */
static int dequant_row(const quant_t *q, const uint64_t *Q, const uint8_t *Cc, const uint8_t *mrow, void *out,
                       int64_t off, int64_t W, int64_t p, int has_mask) {
    const int dt = q->dtype;
    switch (q->mode) {
    case FC_LOSSLESS:
#define STORE_LOOP(T) { T *o = (T *)out + off; \
            if (has_mask) { for (int64_t j = 0; j < W; j++) if (!mrow[j]) o[j] = (T)Q[j]; } \
            else { for (int64_t j = 0; j < W; j++) o[j] = (T)Q[j]; } }
        switch (dt) {
        case FC_I8: case FC_U8: STORE_LOOP(uint8_t) break;
        case FC_I16: case FC_U16: STORE_LOOP(uint16_t) break;
        case FC_I32: case FC_U32: STORE_LOOP(uint32_t) break;
        default: STORE_LOOP(uint64_t) break;
        }
#undef STORE_LOOP
        return 0;
    case FC_ABS:
        if (q->intabs) {
            const __int128 w = 2 * (__int128)q->T + 1;
            __int128 lo, hi;
            int_range(dt, &lo, &hi);
            for (int64_t j = 0; j < W; j++) {
                if (mrow[j]) continue;
                const __int128 o = w < ((__int128)1 << 32) ? BIN_OFFSET(q, off + j, (int64_t)w) : (__int128)q->T;
                __int128 r = (__int128)(int64_t)Q[j] * w - o + (__int128)q->T; /* |k| < 2^63, w < 2^63 */
                r = r < lo ? lo : r > hi ? hi : r;     /* fallback positions may hold any code */
                store_u(out, off + j, dt, (uint64_t)r);
            }
        } else {
            const double step = q->step[p];
            if (dt == FC_F32 && !q->pred && !has_mask) {
                float *o = (float *)out + off;
                for (int64_t j = 0; j < W; j++) {
                    double v = step * (double)(int64_t)Q[j];
                    v = v < -FLT_MAX ? -FLT_MAX : v;
                    v = v > FLT_MAX ? FLT_MAX : v;
                    o[j] = (float)v;
                }
            } else if (dt == FC_F64 && !q->pred && !has_mask) {
                double *o = (double *)out + off;
                for (int64_t j = 0; j < W; j++) {
                    double v = step * (double)(int64_t)Q[j];
                    v = v < -DBL_MAX ? -DBL_MAX : v;
                    v = v > DBL_MAX ? DBL_MAX : v;
                    o[j] = v;
                }
            } else {
                for (int64_t j = 0; j < W; j++) {
                    if (mrow[j]) continue;
                    const double pr = q->pred ? q->pred[off + j] : 0.0;
                    store_f(out, off + j, dt, cast_f(pr + step * (double)(int64_t)Q[j], dt));
                }
            }
        }
        return 0;
    case FC_PWREL:
        for (int64_t j = 0; j < W; j++) {
            if (mrow[j]) continue;
            const int c = q->uniform_cls ? q->uniform_cls : Cc[j + 1];
            double v = 0.0;
            if (c == 1 || c == 2) {
                v = exp2_code(q->x2c, (int64_t)Q[j], q->s);
                if (c == 2) v = -v;
            }
            if (dt == FC_F32) ((float *)out)[off + j] = (float)cast_f(v, FC_F32);
            else if (dt == FC_F64) ((double *)out)[off + j] = cast_f(v, FC_F64);
            else store_f(out, off + j, dt, cast_f(v, dt));
        }
        return 0;
    default: {
        __int128 lo128, hi128;
        if (dt == FC_F32 || dt == FC_F64) { lo128 = 0; hi128 = (__int128)1 << 53; } else int_range(dt, &lo128, &hi128);
        const int64_t lo = (int64_t)lo128, hi = hi128 > INT64_MAX ? INT64_MAX : (int64_t)hi128;
#define POIS_LOOP(T) { T *o = (T *)out + off; \
            for (int64_t j = 0; j < W; j++) { \
                if (has_mask && mrow[j]) continue; \
                int64_t v = pois_value_i(q, (int64_t)Q[j], off + j); \
                v = v < lo ? lo : v > hi ? hi : v; \
                o[j] = (T)v; } }
        switch (dt) {
        case FC_F32: POIS_LOOP(float) break;
        case FC_F64: POIS_LOOP(double) break;
        case FC_I8: POIS_LOOP(int8_t) break;
        case FC_I16: POIS_LOOP(int16_t) break;
        case FC_I32: POIS_LOOP(int32_t) break;
        case FC_I64: POIS_LOOP(int64_t) break;
        case FC_U8: POIS_LOOP(uint8_t) break;
        case FC_U16: POIS_LOOP(uint16_t) break;
        case FC_U32: POIS_LOOP(uint32_t) break;
        default: POIS_LOOP(uint64_t) break;
        }
#undef POIS_LOOP
        return 0;
    }
    }
}

int fc_peek(const uint8_t *in, size_t n, int *mode, int *uses_pred) {
    if (n < 5 || in[0] != FC_VERSION || in[1] > FC_POISSON) return FC_ERR_CORRUPT;
    *mode = in[1];
    *uses_pred = (in[2] >> 3) & 1;
    return 0;
}

int fc_decode(const uint8_t *in, size_t nin, void *out, int dtype, int64_t P, int64_t H, int64_t W,
              const uint8_t *mask, const double *pred) {
    if (check_shape(dtype, P, H, W)) return FC_ERR_ARG;
    const int isfloat = dtype == FC_F32 || dtype == FC_F64;
    rd_t r = {in, 0, nin, 0};
    quant_t q;
    memset(&q, 0, sizeof q);
    int rc = FC_ERR_CORRUPT;
    uint32_t *finfo = NULL, *rows32 = NULL;
    uint8_t *tok8 = NULL;
    double *Rp = NULL;
    uint64_t *Qp = NULL, *Qc = NULL;
    uint8_t *rows8 = NULL, *preds = NULL;

    if (rd_u8(&r) != FC_VERSION) FAIL;
    const int mode = rd_u8(&r);
    const int flags = rd_u8(&r);
    const int prec = rd_u8(&r);
    const int sdt = rd_u8(&r);
    if (r.err || mode > FC_POISSON || (flags & ~0x3f) || prec != FC_PREC || sdt != dtype) FAIL;
    const int kind = flags & 1;
    q.uniform_cls = (flags >> 1) & 3;
    q.uses_pred = (flags >> 3) & 1;
    q.intabs = (flags >> 4) & 1;
    q.dither = (flags >> 5) & 1;
    q.mode = mode; q.dtype = dtype; q.isfloat = isfloat;
    if ((uint64_t)P != rd_varint(&r, UINT64_MAX) || (uint64_t)H != rd_varint(&r, UINT64_MAX) ||
        (uint64_t)W != rd_varint(&r, UINT64_MAX) || r.err) FAIL;
    if (q.uses_pred && (!pred || mode != FC_ABS)) { rc = pred ? FC_ERR_CORRUPT : FC_ERR_ARG; FAIL; }
    q.pred = q.uses_pred ? pred : NULL;
    if (mode == FC_LOSSLESS && isfloat) FAIL;
    if ((mode != FC_PWREL && q.uniform_cls != 1) || (mode == FC_PWREL && q.uniform_cls == 3 && kind)) FAIL;
    if (q.intabs && (mode != FC_ABS || isfloat || q.uses_pred)) FAIL;
    if (kind && !(mode == FC_LOSSLESS || mode == FC_POISSON || q.intabs)) FAIL;
    if (mode == FC_ABS && q.intabs) {
        q.T = rd_varint(&r, (uint64_t)4.6e18);
        if (q.T < 1) FAIL;
    } else if (mode == FC_ABS) {
        int uniform = rd_u8(&r);
        if (uniform > 1) FAIL;
        q.step = malloc(sizeof(double) * (size_t)(P ? P : 1));
        if (!q.step) { rc = FC_ERR_NOMEM; FAIL; }
        for (int64_t p = 0; p < P; p++) {
            float s = 0;
            if (!uniform || p == 0) rd_get(&r, &s, 4);
            q.step[p] = (!uniform || p == 0) ? (double)s : q.step[0];
            if (!(q.step[p] >= 0) || !isfinite(q.step[p])) FAIL;
        }
    } else if (mode == FC_PWREL) {
        rd_get(&r, &q.s, 8);
        if (!(q.s > 0 && q.s < 64)) FAIL;
        if (pwrel_cache(&q)) { rc = FC_ERR_NOMEM; FAIL; }
    } else if (mode == FC_POISSON) {
        double eb = 0;
        rd_get(&r, &eb, 8);
        const uint64_t dr = rd_varint(&r, FC_POIS_RMAX);
        if (r.err || !(eb > 0x1p-12 && eb < 0x1p20)) FAIL;
        int prc = poisson_params(&q, eb, pois_T(eb, 0) + (int64_t)dr);
        if (prc) { rc = prc; FAIL; }
    }
    if (r.err) FAIL;
    preds = malloc((size_t)(P ? P : 1));
    if (!preds) { rc = FC_ERR_NOMEM; FAIL; }
    for (int64_t p = 0; p < P; p += 4) {
        uint8_t b = rd_u8(&r);
        for (int k = 0; k < 4; k++) {
            int pk = (b >> (2 * k)) & 3;
            if (p + k < P) { if (pk > 2) FAIL; preds[p + k] = (uint8_t)pk; }
            else if (pk) FAIL;
        }
    }
    if (q.uses_pred) { /* which planes are coded against the prediction: at least one */
        q.plane_pred = calloc((size_t)(P ? P : 1), 1);
        if (!q.plane_pred) { rc = FC_ERR_NOMEM; FAIL; }
        int any = 0;
        for (int64_t p = 0; p < P; p += 8) {
            const uint8_t b = rd_u8(&r);
            for (int k = 0; k < 8; k++) {
                const int on = (b >> k) & 1;
                if (p + k < P) { q.plane_pred[p + k] = (uint8_t)on; any |= on; }
                else if (on) FAIL;
            }
        }
        if (r.err || !any) FAIL;
    }
    const int nctx = rd_u8(&r);
    if (r.err || nctx < 1 || nctx > FC_MAX_CTX) FAIL;
    uint8_t ctxmap[FC_NFINE];
    {
        int prev = 0, c = 0;
        int bounds[FC_MAX_CTX];
        for (int k = 1; k < nctx; k++) {
            int b = rd_u8(&r);
            if (b <= prev || b >= FC_NFINE) FAIL;
            bounds[k - 1] = b; prev = b;
        }
        for (int b = 0; b < FC_NFINE; b++) {
            while (c + 1 < nctx && b >= bounds[c]) c++;
            ctxmap[b] = (uint8_t)c;
        }
    }
    const int has_cls = mode == FC_PWREL && q.uniform_cls == 0;
    const int ntabs = nctx + (has_cls ? FC_NCLS_CTX : 0);
    {
        uint64_t tlen = rd_varint(&r, nin);
        if (r.err || tlen > nin - r.pos) FAIL;
        br_t tb;
        br_init(&tb, in + r.pos, (size_t)tlen);
        r.pos += (size_t)tlen;
        tok8 = malloc((size_t)ntabs << prec);
        finfo = calloc((size_t)ntabs * FC_NTOK, sizeof(uint32_t));
        if (!tok8 || !finfo) { rc = FC_ERR_NOMEM; FAIL; }
        ftab_t t;
        for (int c = 0; c < ntabs; c++) {
            if (ftab_read(&tb, prec, c < nctx ? FC_NTOK : 3, &t)) FAIL;
            for (int k = 0; k < t.ntok; k++) {
                memset(tok8 + ((size_t)c << prec) + t.start[k], k, t.freq[k]);
                finfo[(size_t)c * FC_NTOK + k] = t.freq[k] | ((uint32_t)t.start[k] << 16);
            }
        }
        if (br_overrun(&tb) || (br_used(&tb) + 7) / 8 != tlen) FAIL;
    }
    dec_t d;
    memset(&d, 0, sizeof d);
    {
        uint64_t nw = rd_varint(&r, nin / 2);
        if (r.err || nw < 4 || 2 * nw > nin - r.pos) FAIL;
        const uint8_t *w = in + r.pos;
        r.pos += (size_t)(2 * nw);
        uint16_t a, b, a2, b2;
        memcpy(&a, w, 2); memcpy(&b, w + 2, 2); memcpy(&a2, w + 4, 2); memcpy(&b2, w + 6, 2);
        d.rd.x = ((uint32_t)a << 16) | b;
        d.x2 = ((uint32_t)a2 << 16) | b2;
        d.rd.w = w + 8; d.rd.wend = w + 2 * nw;
        if (d.rd.x < RANS_L || d.x2 < RANS_L) FAIL;
        uint64_t ne = rd_varint(&r, nin);
        if (r.err || ne > nin - r.pos) FAIL;
        br_init(&d.br, in + r.pos, (size_t)ne);
        r.pos += (size_t)ne;
    }
    d.tok8 = tok8; d.finfo = finfo; d.prec = prec; d.nctx = nctx;
    for (int b = 0; b < FC_NFINE; b++) { d.cb8[b] = (uint32_t)ctxmap[b] << prec; d.cbi[b] = (uint32_t)ctxmap[b] * FC_NTOK; }
    const int want_val = mode == FC_LOSSLESS || mode == FC_POISSON || q.intabs;

    Qp = malloc(sizeof(uint64_t) * (size_t)W);
    Qc = malloc(sizeof(uint64_t) * (size_t)W);
    Rp = malloc(sizeof(double) * (size_t)W * 4);
    rows32 = calloc((size_t)(W + 2) * 4, sizeof(uint32_t));
    rows8 = calloc((size_t)(W + 2) * 3 + (size_t)W + 8, 1);
    if (!Qp || !Qc || !Rp || !rows32 || !rows8) { rc = FC_ERR_NOMEM; FAIL; }
    double *Rc = Rp + W, *Rp2 = Rp + 2 * W, *Rc2 = Rp + 3 * W;
    uint8_t *mrow2 = rows8 + (size_t)(W + 2) * 3;
    const int sz = mode == FC_ABS && !q.intabs;
    uint32_t *Mp = rows32, *Mc = rows32 + (W + 2), *Vp = rows32 + 2 * (W + 2), *Vc = rows32 + 3 * (W + 2);
    uint8_t *Cp = rows8, *Cc = rows8 + (W + 2), *mrow = rows8 + 2 * (W + 2);
    for (int64_t p = 0; sz && p < P;) {
        const int pair = p + 1 < P;
        const int pk = preds[p], pkB = pair ? preds[p + 1] : pk;
        memset(rows32, 0, sizeof(uint32_t) * (size_t)(W + 2) * 4);
        const int64_t hA = pair ? H : H >= FC_SPLIT_ROWS ? (H + 1) / 2 : H, hB = pair ? H : H - hA;
        const int64_t baseA = p * H * W, baseB = pair ? (p + 1) * H * W : (p * H + hA) * W;
        uint32_t *m32 = rows32; /* lane A: rows 0-1, lane B: rows 2-3 (the V rows, unused by abs floats) */
        dlane_t A = {NULL, Rp, Rc, m32, m32 + (W + 2), mrow, NULL, q.step[p], 0, 0, 0, 0, 0, 0, pk};
        dlane_t B = {NULL, Rp2, Rc2, m32 + 2 * (W + 2), m32 + 3 * (W + 2), mrow2, NULL, q.step[pair ? p + 1 : p],
                     0, 0, 0, 0, 0, 0, pkB};
        for (int64_t r = 0; r < hA; r++) {
            const int two = r < hB;
            const int64_t offA = baseA + r * W, offB = baseB + r * W;
            int hm = expand_mask(mask, offA, W, mrow);
            A.base = q.pred && q.plane_pred[p] ? q.pred + offA : NULL;
            A.out = (uint8_t *)out + offA * dt_size(dtype);
            if (two) {
                hm |= expand_mask(mask, offB, W, mrow2);
                B.base = q.pred && q.plane_pred[pair ? p + 1 : p] ? q.pred + offB : NULL;
                B.out = (uint8_t *)out + offB * dt_size(dtype);
            }
            dec_rows_sz(&d, dtype, hm, two, r, W, &A, &B);
            if (d.rd.err || br_overrun(&d.br)) FAIL;
            double *td = (double *)A.Rp; A.Rp = A.Rc; A.Rc = td;
            uint32_t *t32 = (uint32_t *)A.Mp; A.Mp = A.Mc; A.Mc = t32; A.Mc[0] = 0;
            td = (double *)B.Rp; B.Rp = B.Rc; B.Rc = td;
            t32 = (uint32_t *)B.Mp; B.Mp = B.Mc; B.Mc = t32; B.Mc[0] = 0;
        }
        p += pair ? 2 : 1;
    }
    for (int64_t p = 0; p < P; p++) {
        const int pk = preds[p];
        memset(rows32, 0, sizeof(uint32_t) * (size_t)(W + 2) * 4);
        memset(Cp, 0, (size_t)(W + 2) * 2);
        if (sz) continue; /* abs floats: decoded plane pairs below */
        for (int64_t y = 0; y < H; y++) {
            const int64_t off = (p * H + y) * W;
            const int has_mask = expand_mask(mask, off, W, mrow);
            if (q.uniform_cls == 3) { /* all zero */
                for (int64_t j = 0; j < W; j++) if (!mrow[j]) store_f(out, off + j, dtype, 0.0);
                continue;
            }
            dec_row(&d, pk, has_cls, want_val, kind, y, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, mrow, has_mask);
            if (d.rd.err || br_overrun(&d.br)) FAIL;
            if ((rc = dequant_row(&q, Qc, Cc, mrow, out, off, W, p, has_mask))) FAIL;
            rc = FC_ERR_CORRUPT;
            uint64_t *tq = Qp; Qp = Qc; Qc = tq;
            uint32_t *t32 = Mp; Mp = Mc; Mc = t32;
            t32 = Vp; Vp = Vc; Vc = t32;
            uint8_t *t8 = Cp; Cp = Cc; Cc = t8;
            Mc[0] = 0; Vc[0] = 0; Cc[0] = 0;
        }
    }
    /* the stream must end exactly where the encoder stopped */
    if (d.rd.x != RANS_L || d.x2 != RANS_L || d.rd.w != d.rd.wend) FAIL;
    if ((br_used(&d.br) + 7) / 8 != br_len(&d.br)) FAIL;
    {
        const int64_t n = P * H * W;
        const int esz = dt_size(dtype);
        uint64_t nfb = rd_varint(&r, (uint64_t)n);
        if (r.err) FAIL;
        int64_t prev = -1;
        int64_t *idx = NULL;
        if (nfb) {
            idx = malloc(sizeof(int64_t) * (size_t)nfb);
            if (!idx) { rc = FC_ERR_NOMEM; FAIL; }
        }
        for (uint64_t k = 0; k < nfb; k++) {
            uint64_t dlt = rd_varint(&r, (uint64_t)n);
            int64_t i = prev + 1 + (int64_t)dlt;
            if (r.err || i >= n || (mask && ((mask[i >> 3] >> (7 - (i & 7))) & 1))) { free(idx); FAIL; }
            idx[k] = i; prev = i;
        }
        if (nfb * (uint64_t)esz > nin - r.pos) { free(idx); FAIL; }
        for (uint64_t k = 0; k < nfb; k++) memcpy((uint8_t *)out + idx[k] * esz, in + r.pos + k * esz, (size_t)esz);
        r.pos += (size_t)(nfb * esz);
        free(idx);
    }
    if (r.pos != nin) FAIL;
    rc = 0;
done:
    free(tok8); free(finfo); free(rows32); free(Rp); free(Qp); free(Qc); free(rows8); free(preds);
    quant_free(&q);
    return rc;
}

int fc_planes(const uint8_t *in, size_t n, int64_t P, uint8_t *predictor, uint8_t *uses_pred) {
    rd_t r = {in, 0, n, 0};
    if (P < 0 || rd_u8(&r) != FC_VERSION) return FC_ERR_CORRUPT;
    const int mode = rd_u8(&r), flags = rd_u8(&r);
    rd_u8(&r);
    const int dt = rd_u8(&r);
    if (r.err || mode > FC_POISSON || dt > FC_U64 || rd_varint(&r, UINT64_MAX) != (uint64_t)P) return FC_ERR_CORRUPT;
    rd_varint(&r, UINT64_MAX);
    rd_varint(&r, UINT64_MAX);
    if (mode == FC_ABS && ((flags >> 4) & 1)) rd_varint(&r, UINT64_MAX);
    else if (mode == FC_ABS) { const int uniform = rd_u8(&r); r.pos += (size_t)(uniform ? (P ? 4 : 0) : 4 * P); }
    else if (mode == FC_PWREL) r.pos += 8;
    else if (mode == FC_POISSON) { r.pos += 8; rd_varint(&r, UINT64_MAX); }
    if (r.err || r.pos > n) return FC_ERR_CORRUPT;
    for (int64_t p = 0; p < P; p += 4) {
        const uint8_t b = rd_u8(&r);
        for (int k = 0; k < 4 && p + k < P; k++) predictor[p + k] = (b >> (2 * k)) & 3;
    }
    for (int64_t p = 0; p < P; p += 8) {
        const uint8_t b = (flags >> 3) & 1 ? rd_u8(&r) : 0;
        for (int k = 0; k < 8 && p + k < P; k++) uses_pred[p + k] = (b >> k) & 1;
    }
    return r.err ? FC_ERR_CORRUPT : 0;
}

void fc_free(void *p) { free(p); }

double fc_exp2(double t) { return exp2_det(t); }

void fc_exp2_array(const double *t, double *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = exp2_det(t[i]);
}

double fc_cast(double v, int dtype) { return (dtype < FC_F32 || dtype > FC_F16) ? NAN : cast_f(v, dtype); }
