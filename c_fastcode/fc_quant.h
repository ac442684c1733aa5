/* Quantisers (encoder) and their reconstructions (decoder, exact and deterministic).
 *
 * Every reconstruction uses only IEEE basic operations (+ - * / sqrt floor rint ldexp),
 * so the encoder's verification computes exactly what any decoder will. */
#ifndef FC_QUANT_H
#define FC_QUANT_H

#include <float.h>
#include <math.h>

#include "fc_internal.h"

#define FC_MAX_ABS_Q 1125899906842624.0 /* 2^50: |q| beyond is stored exactly */
#define FC_POIS_KMAX 70000              /* table bins (eb >= 2^-12 keeps far below) */

enum { ST_OK = 0, ST_FALLBACK = 1, ST_MASKED = 2, ST_ZERO = 3 };

typedef struct {
    int mode, dtype, isfloat, intabs, uses_pred;
    int vdt; /* the type the encoder verifies in: dtype, or FC_F16 for float16 held as float32 */
    double eb;
    /* FC_ABS on floats / with a prediction: per plane */
    double *step, *vb;
    const double *pred;
    uint8_t *plane_pred; /* per plane: 1 when it codes the residual to pred */
    /* FC_ABS on integers: bins of 2T+1 integers */
    uint64_t T;
    /* FC_PWREL */
    double s, centre, ebm;
    int uniform_cls; /* 0 mixed, 1 all positive, 2 all negative, 3 all zero */
    int dither;      /* integer bins: per-element offsets (else bins centred at fixed points) */
    /* FC_POISSON: regions r of constant tolerance T(x) = r, x in [pa[r-r0], pa[r-r0+1]),
     * bins of 2r+1 integers, codes pB[r-r0] .. pB[r-r0+1]-1 */
    int64_t r0, R;
    int64_t *pa, *pB;
    uint32_t *rdirect; /* code -> r - r0 for codes < ndirect */
    int64_t ndirect;
    uint32_t *xdirect; /* encoder: x -> r - r0 for x < nxdirect */
    int64_t nxdirect;
    struct x2cache *x2c; /* pwrel: cached 2^(k s) */
} quant_t;

FC_INLINE int dt_size(int dt) {
    static const int sz[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8};
    return sz[dt];
}
FC_INLINE int dt_signed(int dt) { return dt >= FC_I8 && dt <= FC_I64; }

static const double DT_MIN[] = {0, 0, -128.0, -32768.0, -2147483648.0, -9223372036854775808.0, 0, 0, 0, 0};
static const double DT_MAX[] = {0, 0, 127.0, 32767.0, 2147483647.0, 9223372036854774784.0,
                                255.0, 65535.0, 4294967295.0, 18446744073709549568.0};

/* a float32 value rounded to float16 (to nearest, ties to even; overflow to inf), as numpy's
 * astype(float16) does; exact in float64: the scaling is by powers of two */
FC_INLINE double f16_round(double f) {
    const double a = fabs(f);
    if (!(a <= FLT_MAX)) return f;
    int e;
    frexp(a, &e); /* a = m 2^e, m in [0.5, 1): the leading bit has weight 2^(e-1) */
    int sh = e - 1 - 10;
    if (sh < -24) sh = -24; /* float16 subnormals: spacing 2^-24 */
    double r = ldexp(rint(ldexp(a, -sh)), sh);
    if (r > 65504.0) r = INFINITY;
    return copysign(r, f);
}

/* the element type's value of a float64 reconstruction (saecodec.bound.cast) */
FC_INLINE double cast_f(double v, int dt) {
    if (v != v) v = 0.0;
    if (dt == FC_F16) {
        if (v > FLT_MAX) v = FLT_MAX; else if (v < -FLT_MAX) v = -FLT_MAX;
        return f16_round((double)(float)v);
    }
    if (dt == FC_F32) {
        if (v > FLT_MAX) v = FLT_MAX; else if (v < -FLT_MAX) v = -FLT_MAX;
        return (double)(float)v;
    }
    if (dt == FC_F64) {
        if (v > DBL_MAX) v = DBL_MAX; else if (v < -DBL_MAX) v = -DBL_MAX;
        return v;
    }
    v = rint(v);
    if (v < DT_MIN[dt]) v = DT_MIN[dt]; else if (v > DT_MAX[dt]) v = DT_MAX[dt];
    return v;
}

/* store a float64 that cast_f already produced */
FC_INLINE void store_f(void *base, int64_t i, int dt, double v) {
    switch (dt) {
    case FC_F32: ((float *)base)[i] = (float)v; break;
    case FC_F64: ((double *)base)[i] = v; break;
    case FC_I8: ((int8_t *)base)[i] = (int8_t)v; break;
    case FC_I16: ((int16_t *)base)[i] = (int16_t)v; break;
    case FC_I32: ((int32_t *)base)[i] = (int32_t)v; break;
    case FC_I64: ((int64_t *)base)[i] = (int64_t)v; break;
    case FC_U8: ((uint8_t *)base)[i] = (uint8_t)v; break;
    case FC_U16: ((uint16_t *)base)[i] = (uint16_t)v; break;
    case FC_U32: ((uint32_t *)base)[i] = (uint32_t)v; break;
    default: ((uint64_t *)base)[i] = (uint64_t)v; break;
    }
}

/* integer element as a 64-bit pattern (sign-extended for signed types) */
FC_INLINE uint64_t load_u(const void *base, int64_t i, int dt) {
    switch (dt) {
    case FC_I8: return (uint64_t)(int64_t)((const int8_t *)base)[i];
    case FC_I16: return (uint64_t)(int64_t)((const int16_t *)base)[i];
    case FC_I32: return (uint64_t)(int64_t)((const int32_t *)base)[i];
    case FC_I64: return (uint64_t)((const int64_t *)base)[i];
    case FC_U8: return ((const uint8_t *)base)[i];
    case FC_U16: return ((const uint16_t *)base)[i];
    case FC_U32: return ((const uint32_t *)base)[i];
    default: return ((const uint64_t *)base)[i];
    }
}
FC_INLINE void store_u(void *base, int64_t i, int dt, uint64_t v) {
    switch (dt) {
    case FC_I8: case FC_U8: ((uint8_t *)base)[i] = (uint8_t)v; break;
    case FC_I16: case FC_U16: ((uint16_t *)base)[i] = (uint16_t)v; break;
    case FC_I32: case FC_U32: ((uint32_t *)base)[i] = (uint32_t)v; break;
    default: ((uint64_t *)base)[i] = v; break;
    }
}
FC_INLINE double load_f(const void *base, int64_t i, int dt) {
    switch (dt) {
    case FC_F32: return ((const float *)base)[i];
    case FC_F64: return ((const double *)base)[i];
    case FC_I64: return (double)((const int64_t *)base)[i];
    case FC_U64: return (double)((const uint64_t *)base)[i];
    default: return dt_signed(dt) ? (double)(int64_t)load_u(base, i, dt) : (double)load_u(base, i, dt);
    }
}
/* |integer element| < 2^53: exactly representable as float64 */
FC_INLINE int int_exact(const void *base, int64_t i, int dt) {
    if (dt == FC_I64) { int64_t v = ((const int64_t *)base)[i]; return v > -(1ll << 53) && v < (1ll << 53); }
    if (dt == FC_U64) return ((const uint64_t *)base)[i] < (1ull << 53);
    return 1;
}

/* --- pwrel ------------------------------------------------------------------------- */
static const double EXP2_C[12] = {1.0, 0.6931471805599453, 0.2402265069591007, 0.055504108664821576,
                                  0.009618129107628477, 0.0013333558146428441, 0.00015403530393381606,
                                  1.5252733804059838e-05, 1.3215486790144305e-06, 1.0178086009239696e-07,
                                  7.054911620801121e-09, 4.44553827187081e-10};

FC_INLINE double exp2_det(double t) {
    if (!(t > -1100.0)) return 0.0;
    if (t > 1100.0) return INFINITY;
    double n = floor(t + 0.5);
    double f = t - n;
    double p = EXP2_C[11];
    for (int k = 10; k >= 0; k--) p = p * f + EXP2_C[k];
    /* ldexp(p, n): times an exact power of two (one rounding, the same result) when 2^n is a
     * double; the libm call only below 2^-1074 */
    const int ni = (int)n;
    if (ni >= -1022 && ni <= 1023) {
        union { uint64_t u; double d; } s = {(uint64_t)(ni + 1023) << 52};
        return p * s.d;
    }
    if (ni >= -1074 && ni < -1022) {
        union { uint64_t u; double d; } s = {1ull << (ni + 1074)};
        return p * s.d;
    }
    return ldexp(p, ni);
}

/* 2^(k s) for integer codes k: a direct-mapped cache (a chunk uses a few hundred codes) */
#define X2C_SIZE 2048
typedef struct x2cache { int64_t key[X2C_SIZE]; double val[X2C_SIZE]; } x2cache_t;

static void x2c_init(x2cache_t *c, double s) {
    (void)s; /* exp2_det(INT64_MIN s) = 0 for every s > 0: the empty slots are exact too */
    for (int i = 0; i < X2C_SIZE; i++) { c->key[i] = INT64_MIN; c->val[i] = 0.0; }
}
FC_INLINE double exp2_code(x2cache_t *c, int64_t k, double s) {
    const uint32_t h = (uint32_t)k & (X2C_SIZE - 1);
    if (FC_LIKELY(c->key[h] == k)) return c->val[h];
    const double v = exp2_det((double)k * s);
    c->key[h] = k;
    c->val[h] = v;
    return v;
}

/* --- integer bins with subtractive dither (poisson, abs on integers) ---------------- */
/* A bin of w = 2T+1 integers is shifted by a pseudo-random offset o in [0, w) that depends
 * only on the element's index: the error x^ - x is then uniform on [-T, T] whatever the data,
 * so averages over many elements (I(q)) carry no bias. */
FC_INLINE uint64_t fc_mix(uint64_t z) { /* splitmix64 */
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
FC_INLINE int64_t fc_dither(int64_t i, int64_t w) { /* in [0, w), w < 2^32 */
    return w <= 1 ? 0 : (int64_t)(((fc_mix((uint64_t)i) >> 32) * (uint64_t)w) >> 32);
}
/* the offset of element i's bins: dithered, or (w-1)/2 for every element */
#define BIN_OFFSET(q, i, w) ((q)->dither ? fc_dither((i), (w)) : ((w) - 1) / 2)

/* poisson: T(x) = floor(eb sqrt(max(x, 1)) (1 - 2^-40)), x >= 0 */
FC_INLINE double pois_tol(double eb, double x) { return eb * sqrt(x < 1.0 ? 1.0 : x) * (1.0 - 0x1p-40); }
FC_INLINE int64_t pois_T(double eb, int64_t x) { return (int64_t)floor(pois_tol(eb, (double)x)); }

/* code k of element i -> value (every k maps somewhere: fallback positions hold any code);
 * |value| < 2^59: pa < 2^53, k is capped 2^40 past the last code, w < 2^17 */
FC_INLINE int64_t pois_value_i(const quant_t *q, int64_t k, int64_t i) {
    const int64_t nr = q->R - q->r0 + 1, ktot = q->pB[nr];
    if (k < 0) return 0;
    if (k > ktot + ((int64_t)1 << 40)) k = ktot + ((int64_t)1 << 40);
    int64_t ri;
    if (k < q->ndirect) ri = q->rdirect[k];
    else if (k >= ktot) ri = nr - 1;
    else { /* last region with pB <= k */
        int64_t lo = 0, hi = nr - 1;
        while (lo < hi) { const int64_t mid = (lo + hi + 1) >> 1; if (q->pB[mid] <= k) lo = mid; else hi = mid - 1; }
        ri = lo;
    }
    const int64_t r = q->r0 + ri, w = 2 * r + 1;
    return q->pa[ri] - BIN_OFFSET(q, i, w) + (k - q->pB[ri]) * w + r;
}

#endif
