/* Masked elements without boolean temporaries: find them (non-finite values, sentinel
 * values, values below a threshold), gather their values, scatter them back. Bits are in
 * numpy.packbits order (big-endian within a byte). */
#include <math.h>

#include "fc_codec.h"

/* Find the special elements: returns their count and, when bits != NULL, writes the packed
 * mask ((n+7)/8 bytes). Integer sentinels are compared exactly in the element type (isent:
 * 64-bit patterns, sign-extended for signed types); float sentinels as doubles. */
/* whole bytes of 8 elements with a constant trip count (unrolled, branch-free), then the tail */
#define SCAN_BLOCKS(T, TEST) { \
        const T *x = (const T *)xb; \
        const int64_t nb = n >> 3; \
        for (int64_t q = 0; q < nb; q++) { \
            const T *v8 = x + 8 * q; unsigned b = 0; \
            for (int k = 0; k < 8; k++) { const T v = v8[k]; const unsigned s = (TEST); b |= s << (7 - k); } \
            count += __builtin_popcount(b); \
            if (bits) bits[q] = (uint8_t)b; \
        } \
        if (n & 7) { \
            unsigned b = 0; \
            for (int64_t k = 0; k < (n & 7); k++) { const T v = x[8 * nb + k]; const unsigned s = (TEST); b |= s << (7 - k); } \
            count += __builtin_popcount(b); \
            if (bits) bits[nb] = (uint8_t)b; \
        } }
#define INT_TEST(v) ((use_s & (((v) == sv[0]) | ((v) == sv[1]) | ((v) == sv[2]) | ((v) == sv[3]))) | \
                     (many && any_of(v, sv, ns)) | (use_below & ((double)(v) < below)))
#define SCAN_INT(T) { \
        T sv[64]; \
        for (int k = 0; k < ns; k++) sv[k] = (T)iu[k]; \
        for (int k = ns; k < 4; k++) sv[k] = ns ? sv[0] : (T)0; \
        const unsigned use_s = ns > 0, many = ns > 4; \
        SCAN_BLOCKS(T, INT_TEST(v)) }
#define FLT_TEST(v) ((nonfinite & !isfinite((double)(v))) | (use_s & ((double)(v) == sent[0])) | \
                     (many && any_of_d((double)(v), sent, ns)) | (use_below & ((double)(v) < below)))
#define SCAN_FLT(T) SCAN_BLOCKS(T, FLT_TEST(v))

#define ANY_OF(NAME, T) static inline unsigned NAME(T v, const T *sv, int ns) { \
        unsigned s = 0; for (int t = 0; t < ns; t++) s |= v == sv[t]; return s; }
ANY_OF(any_of_i8, int8_t) ANY_OF(any_of_i16, int16_t) ANY_OF(any_of_i32, int32_t) ANY_OF(any_of_i64, int64_t)
ANY_OF(any_of_u8, uint8_t) ANY_OF(any_of_u16, uint16_t) ANY_OF(any_of_u32, uint32_t) ANY_OF(any_of_u64, uint64_t)
ANY_OF(any_of_d, double)
#define any_of(v, sv, ns) _Generic((v), int8_t: any_of_i8, int16_t: any_of_i16, int32_t: any_of_i32, \
        int64_t: any_of_i64, uint8_t: any_of_u8, uint16_t: any_of_u16, uint32_t: any_of_u32, \
        default: any_of_u64)((v), (sv), (ns))

int64_t fc_scan_special(const void *xb, int dtype, int64_t n, int nonfinite, const double *sent,
                        const int64_t *isent, int ns, double below, int use_below, uint8_t *bits) {
    if (dtype < FC_F32 || dtype > FC_U64 || n < 0 || ns < 0 || ns > 64) return FC_ERR_ARG;
    uint64_t iu[64];
    for (int k = 0; k < ns; k++) iu[k] = (uint64_t)isent[k];
    int64_t count = 0;
    const unsigned use_s = ns > 0, many = ns > 1;
    (void)use_s; (void)many;
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

/* The mask bits of W elements from off, one byte each (the coder's rows); whether any is set. */
int expand_mask(const uint8_t *mask, int64_t off, int64_t W, uint8_t *mrow) {
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
