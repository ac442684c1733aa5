/* The quantisers of the bound modes: their set-up from the bound (shared by encoder and
 * decoder), the encoder's rows (element -> code, verified as the decoder reconstructs it)
 * and the decoder's rows (code -> element). Reconstructions: fc_quant.h. */
#include "fc_codec.h"

/* ------------------------------------------------------------------------------------ */
/* set-up from the bound                                                                  */

int pwrel_cache(quant_t *q) {
    q->x2c = malloc(sizeof(x2cache_t));
    if (!q->x2c) return FC_ERR_NOMEM;
    x2c_init(q->x2c, q->s);
    return 0;
}

void pwrel_params(quant_t *q, double eb) {
    double e = eb < 0.999 ? eb : 0.999;
    double a = log2(1.0 - e), b = log2(1.0 + e);
    q->s = (b - a) * (1.0 - 1e-9);
    q->centre = 0.5 * (a + b);
    q->ebm = eb * (1.0 - 0x1p-40);
}

/* poisson regions up to R: pa[] (first x of each region, one more at the end) and pB[]
 * (first code of each region, one more: the number of codes) */
int poisson_params(quant_t *q, double eb, int64_t R) {
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

int64_t poisson_R(const void *xb, int dt, int64_t n, const uint8_t *mask, double eb) {
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

void quant_free(quant_t *q) {
    free(q->pa); free(q->pB); free(q->step); free(q->vb); free(q->rdirect); free(q->xdirect); free(q->x2c);
    free(q->plane_pred);
    q->pa = q->pB = NULL; q->step = q->vb = NULL; q->rdirect = q->xdirect = NULL; q->x2c = NULL;
    q->plane_pred = NULL;
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

void quant_row(const quant_t *q, const void *xb, int64_t off, int64_t W, int64_t p,
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
/* the row reconstruction                                                                 */

int dequant_row(const quant_t *q, const uint64_t *Q, const uint8_t *Cc, const uint8_t *mrow, void *out,
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

/* ------------------------------------------------------------------------------------ */
/* the reconstructions, for the Python side's checks                                      */

double fc_exp2(double t) { return exp2_det(t); }

void fc_exp2_array(const double *t, double *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = exp2_det(t[i]);
}

double fc_cast(double v, int dtype) { return (dtype < FC_F32 || dtype > FC_F16) ? NAN : cast_f(v, dtype); }
