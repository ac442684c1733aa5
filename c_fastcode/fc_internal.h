/* Internal helpers shared by the fastcode sources: bit I/O, varints, rANS, tables. */
#ifndef FC_INTERNAL_H
#define FC_INTERNAL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fc.h"

#define FC_VERSION 1
#define FC_NTOK 136      /* hybrid-uint tokens of a 64-bit zigzag value */
#define FC_NFINE 64      /* fine context buckets */
#ifndef FC_MAX_CTX
#define FC_MAX_CTX 16    /* contexts after clustering */
#endif
#define FC_NCLS_CTX 9    /* pwrel sign/zero classes: context (class W, class N) */
#define RANS_L (1u << 16)

#if defined(__GNUC__)
#define FC_INLINE static inline __attribute__((always_inline))
#define FC_HIDDEN __attribute__((visibility("hidden"))) /* shared by the coder's sources, not exported */
#define FC_LIKELY(x) __builtin_expect(!!(x), 1)
#define FC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define FC_INLINE static inline
#define FC_HIDDEN
#define FC_LIKELY(x) (x)
#define FC_UNLIKELY(x) (x)
#endif

FC_INLINE int fc_ilog2_64(uint64_t v) { return 63 - __builtin_clzll(v); } /* v > 0 */
FC_INLINE int fc_ilog2_32(uint32_t v) { return 31 - __builtin_clz(v); }  /* v > 0 */

/* --- little-endian loads/stores ------------------------------------------------ */
FC_INLINE uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
FC_INLINE void st32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* --- byte writer with capacity (the caller sizes buffers for the worst case) ------- */
typedef struct { uint8_t *buf; size_t pos, cap; int err; } bytes_t;

FC_INLINE void by_put(bytes_t *b, const void *src, size_t n) {
    if (b->pos + n > b->cap) { b->err = 1; return; }
    memcpy(b->buf + b->pos, src, n); b->pos += n;
}
FC_INLINE void by_u8(bytes_t *b, uint8_t v) { by_put(b, &v, 1); }
FC_INLINE void by_varint(bytes_t *b, uint64_t v) {
    do { uint8_t c = v & 0x7f; v >>= 7; if (v) c |= 0x80; by_u8(b, c); } while (v);
}

typedef struct { const uint8_t *buf; size_t pos, len; int err; } rd_t;

FC_INLINE int rd_get(rd_t *r, void *dst, size_t n) {
    if (n > r->len - r->pos) { r->err = 1; memset(dst, 0, n); return -1; }
    memcpy(dst, r->buf + r->pos, n); r->pos += n; return 0;
}
FC_INLINE uint8_t rd_u8(rd_t *r) { uint8_t v = 0; rd_get(r, &v, 1); return v; }
FC_INLINE uint64_t rd_varint(rd_t *r, uint64_t limit) {
    uint64_t v = 0; int shift = 0;
    for (;;) {
        uint8_t c = rd_u8(r);
        if (r->err) return 0;
        if (shift == 63 && (c & 0x7e)) { r->err = 1; return 0; }
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) break;
        shift += 7;
        if (shift > 63) { r->err = 1; return 0; }
    }
    if (v > limit) { r->err = 1; return 0; }
    return v;
}

/* --- bit writer / reader: LSB first, 32-bit little-endian words then a byte tail ---- */
typedef struct { uint8_t *buf; size_t pos, cap; uint64_t acc; int n; int err; } bw_t;

FC_INLINE void bw_put(bw_t *w, uint64_t v, int nb) { /* nb <= 32, v < 2^nb */
    w->acc |= v << w->n; w->n += nb;
    if (w->n >= 32) {
        if (FC_UNLIKELY(w->pos + 4 > w->cap)) { w->err = 1; w->pos = 0; }
        st32(w->buf + w->pos, (uint32_t)w->acc); w->pos += 4; w->acc >>= 32; w->n -= 32;
    }
}
FC_INLINE void bw_put64(bw_t *w, uint64_t v, int nb) { /* nb <= 64 */
    if (nb > 32) { bw_put(w, v & 0xffffffffu, 32); v >>= 32; nb -= 32; }
    bw_put(w, v, nb);
}
FC_INLINE void bw_finish(bw_t *w) {
    while (w->n > 0) {
        if (w->pos + 1 > w->cap) { w->err = 1; return; }
        w->buf[w->pos++] = (uint8_t)w->acc; w->acc >>= 8; w->n -= 8;
    }
    w->n = 0;
}

typedef struct { const uint8_t *p, *end, *buf; uint64_t acc; int n; uint64_t pad; } br_t;

FC_INLINE void br_init(br_t *r, const uint8_t *buf, size_t len) {
    r->buf = r->p = buf; r->end = buf + len; r->acc = 0; r->n = 0; r->pad = 0;
}
FC_INLINE void br_refill_slow(br_t *r) {
    while (r->n <= 56) {
        if (r->p >= r->end) { r->n += 8; r->pad += 8; continue; } /* zeros past the end: see br_overrun */
        r->acc |= (uint64_t)*r->p++ << r->n; r->n += 8;
    }
}
FC_INLINE uint64_t br_get(br_t *r, int nb) { /* nb <= 32 */
    if (r->n < nb) {
        if (FC_LIKELY(r->end - r->p >= 4)) { r->acc |= (uint64_t)ld32(r->p) << r->n; r->p += 4; r->n += 32; }
        else br_refill_slow(r);
    }
    uint64_t v = r->acc & ((1ull << nb) - 1);
    r->acc >>= nb; r->n -= nb;
    return v;
}
/* bits consumed so far */
FC_INLINE uint64_t br_used(const br_t *r) { return 8 * (uint64_t)(r->p - r->buf) + r->pad - (uint64_t)r->n; }
FC_INLINE uint64_t br_len(const br_t *r) { return (uint64_t)(r->end - r->buf); }
FC_INLINE int br_overrun(const br_t *r) { return br_used(r) > 8 * br_len(r); }
FC_INLINE uint64_t br_get64(br_t *r, int nb) {
    if (nb > 32) { uint64_t lo = br_get(r, 32); return lo | (br_get(r, nb - 32) << 32); }
    return br_get(r, nb);
}

/* --- hybrid-uint tokens: 0..15 direct, then (exponent, 1 mantissa bit), rest raw --- */
FC_INLINE int tok_of(uint64_t z, int *nextra, uint64_t *extra) {
    if (z < 16) { *nextra = 0; *extra = 0; return (int)z; }
    int e = fc_ilog2_64(z);
    *nextra = e - 1;
    *extra = z & ((1ull << (e - 1)) - 1);
    return 16 + ((e - 4) << 1) + (int)((z >> (e - 1)) & 1);
}
FC_INLINE int tok_nextra(int t) { return t < 16 ? 0 : ((t - 16) >> 1) + 3; }
FC_INLINE uint64_t tok_value(int t, uint64_t extra) {
    if (t < 16) return (uint64_t)t;
    int e = ((t - 16) >> 1) + 4;
    return (1ull << e) | ((uint64_t)(t & 1) << (e - 1)) | extra;
}
FC_INLINE uint64_t zigzag(uint64_t r) { return (r << 1) ^ (uint64_t)((int64_t)r >> 63); }
FC_INLINE uint64_t unzigzag(uint64_t z) { return (z >> 1) ^ (0 - (z & 1)); }

/* fine context bucket of an activity: half-octaves, 0..63 */
FC_INLINE int fine_bucket(uint32_t a) {
    if (a < 2) return (int)a;
    int l = fc_ilog2_32(a);
    return 2 * l + (int)((a >> (l - 1)) & 1);
}

/* --- frequency tables -------------------------------------------------------------- */
typedef struct {
    int ntok;                 /* tokens 0..ntok-1 */
    uint16_t freq[FC_NTOK];
    uint16_t start[FC_NTOK];
    uint64_t rcp[FC_NTOK];    /* encoder: ceil(2^64 / freq) for freq >= 2 */
} ftab_t;

/* counts -> normalised table (sum 2^prec) and its serialisation into bw; returns bits */
FC_HIDDEN int ftab_build(const uint32_t *counts, int ntok, int prec, ftab_t *t, bw_t *w);
/* parse one table; returns 0 or FC_ERR_CORRUPT */
FC_HIDDEN int ftab_read(br_t *r, int prec, int maxtok, ftab_t *t);
/* decode table: entry = tok | (freq-1) << 8 | bias << 20 per slot */
FC_HIDDEN void ftab_slots(const ftab_t *t, int prec, uint32_t *slots);
/* approximate cost in bits of coding `counts` with its own table, incl. table bits */
FC_HIDDEN double ftab_cost_estimate(const uint32_t *counts, int ntok);
/* cluster fine buckets (hist[FC_NFINE][FC_NTOK]) into <= maxctx contiguous contexts;
 * writes ctxmap[FC_NFINE], returns the number of contexts and the estimated bits */
FC_HIDDEN int cluster_buckets(const uint32_t *hist, int maxctx, uint8_t *ctxmap, double *bits);

FC_HIDDEN double fc_fast_log2(double x);

/* --- rANS (32-bit state, 16-bit words) ------------------------------------------------ */
FC_INLINE void rans_put(uint32_t *x, uint16_t **pp, uint32_t start, uint32_t freq, int prec) {
    uint64_t xm = (uint64_t)freq << (32 - prec);
    if (*x >= xm) { *--(*pp) = (uint16_t)*x; *x >>= 16; }
    *x = ((*x / freq) << prec) + (*x % freq) + start;
}

/* x / f by a 64x64->128 multiply: exact for x < 2^32 and f <= 2^12 (error < 2^-32 < 1/f) */
FC_INLINE void rans_put_rcp(uint32_t *x, uint16_t **pp, const ftab_t *t, int s, int prec) {
    const uint32_t f = t->freq[s];
    uint64_t xm = (uint64_t)f << (32 - prec);
    if (*x >= xm) { *--(*pp) = (uint16_t)*x; *x >>= 16; }
    const uint32_t qq = f == 1 ? *x : (uint32_t)(((unsigned __int128)*x * t->rcp[s]) >> 64);
    *x = (qq << prec) + (*x - qq * f) + t->start[s];
}

#endif
