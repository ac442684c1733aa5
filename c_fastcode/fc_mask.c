/* Masked elements without boolean temporaries: find them (non-finite values, sentinel
 * values, values below a threshold), gather their values, scatter them back. Bits are in
 * numpy.packbits order (big-endian within a byte). */
#include <math.h>

#include "fc_internal.h"
#include "fc_quant.h"

/* Find the special elements: returns their count and, when bits != NULL, writes the packed
 * mask ((n+7)/8 bytes). Integer sentinels are compared exactly in the element type (isent:
 * 64-bit patterns, sign-extended for signed types); float sentinels as doubles. */
#define SCAN_INT(T) { \
        const T *x = (const T *)xb; T sv[64]; \
        for (int k = 0; k < ns; k++) sv[k] = (T)iu[k]; \
        for (int64_t i0 = 0; i0 < n; i0 += 8) { \
            unsigned b = 0; \
            const int64_t m = n - i0 < 8 ? n - i0 : 8; \
            for (int64_t k = 0; k < m; k++) { \
                const T v = x[i0 + k]; unsigned s = 0; \
                for (int t = 0; t < ns; t++) s |= v == sv[t]; \
                if (use_below) s |= (double)v < below; \
                b |= s << (7 - k); count += s; \
            } \
            if (bits) bits[i0 >> 3] = (uint8_t)b; \
        } }
#define SCAN_FLT(T) { \
        const T *x = (const T *)xb; \
        for (int64_t i0 = 0; i0 < n; i0 += 8) { \
            unsigned b = 0; \
            const int64_t m = n - i0 < 8 ? n - i0 : 8; \
            for (int64_t k = 0; k < m; k++) { \
                const double v = (double)x[i0 + k]; unsigned s = nonfinite && !isfinite(v); \
                for (int t = 0; t < ns; t++) s |= v == sent[t]; \
                if (use_below) s |= v < below; \
                b |= s << (7 - k); count += s; \
            } \
            if (bits) bits[i0 >> 3] = (uint8_t)b; \
        } }

int64_t fc_scan_special(const void *xb, int dtype, int64_t n, int nonfinite, const double *sent,
                        const int64_t *isent, int ns, double below, int use_below, uint8_t *bits) {
    if (dtype < FC_F32 || dtype > FC_U64 || n < 0 || ns < 0 || ns > 64) return FC_ERR_ARG;
    uint64_t iu[64];
    for (int k = 0; k < ns; k++) iu[k] = (uint64_t)isent[k];
    int64_t count = 0;
    switch (dtype) {
    case FC_F32: SCAN_FLT(float) break;
    case FC_F64: SCAN_FLT(double) break;
    case FC_I8: SCAN_INT(int8_t) break;
    case FC_I16: SCAN_INT(int16_t) break;
    case FC_I32: SCAN_INT(int32_t) break;
    case FC_I64: SCAN_INT(int64_t) break;
    case FC_U8: SCAN_INT(uint8_t) break;
    case FC_U16: SCAN_INT(uint16_t) break;
    case FC_U32: SCAN_INT(uint32_t) break;
    default: SCAN_INT(uint64_t) break;
    }
    return count;
}
#undef SCAN_INT
#undef SCAN_FLT

/* masked elements' values, in order, into vals (count * itemsize bytes) */
int64_t fc_gather_masked(const void *xb, int dtype, int64_t n, const uint8_t *bits, void *vals) {
    if (dtype < FC_F32 || dtype > FC_U64) return FC_ERR_ARG;
    const int sz = dt_size(dtype);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i += 8) {
        uint8_t b = bits[i >> 3];
        if (!b) continue;
        for (int64_t j = i; j < i + 8 && j < n; j++)
            if ((b >> (7 - (j & 7))) & 1) { memcpy((uint8_t *)vals + k * sz, (const uint8_t *)xb + j * sz, (size_t)sz); k++; }
    }
    return k;
}

/* write the stored values back; nvals must equal the number of set bits */
int fc_scatter_masked(void *out, int dtype, int64_t n, const uint8_t *bits, const void *vals, int64_t nvals) {
    if (dtype < FC_F32 || dtype > FC_U64) return FC_ERR_ARG;
    const int sz = dt_size(dtype);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i += 8) {
        uint8_t b = bits[i >> 3];
        if (!b) continue;
        for (int64_t j = i; j < i + 8 && j < n; j++)
            if ((b >> (7 - (j & 7))) & 1) {
                if (k >= nvals) return FC_ERR_CORRUPT;
                memcpy((uint8_t *)out + j * sz, (const uint8_t *)vals + k * sz, (size_t)sz);
                k++;
            }
    }
    if (n % 8 && (bits[n >> 3] & (0xffu >> (n & 7)))) return FC_ERR_CORRUPT; /* padding bits set */
    return k == nvals ? 0 : FC_ERR_CORRUPT;
}

int64_t fc_range(const void *xb, int dtype, int64_t n, const uint8_t *mask, double *lo, double *hi) {
    if (dtype < FC_F32 || dtype > FC_U64 || n < 0) return FC_ERR_ARG;
    double a = INFINITY, b = -INFINITY;
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        if (mask && ((mask[i >> 3] >> (7 - (i & 7))) & 1)) continue;
        const double v = load_f(xb, i, dtype);
        if (!isfinite(v)) continue;
        a = v < a ? v : a;
        b = v > b ? v : b;
        count++;
    }
    *lo = a;
    *hi = b;
    return count;
}
