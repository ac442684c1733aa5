/* What the coder's sources share beyond fc_internal.h (bit I/O, varints, rANS, frequency
 * tables) and fc_quant.h (element types, exact reconstructions): the stream's limits, the
 * quantiser's set-up and rows (fc_quant.c), each plane's stencil choice (fc_choose.c) and
 * mask rows (fc_mask.c). The encoder is fc_encode.c, the decoder fc_decode.c. */
#ifndef FC_CODEC_H
#define FC_CODEC_H

#include "fc_internal.h"
#include "fc_quant.h"

#define MAG_SAT (1u << 29)
/* an unpaired plane of at least this many rows is split into two lanes (upper/lower half);
 * smaller ones stay one lane: the lower half's first row costs ~3% on 64-row planes */
#define FC_SPLIT_ROWS 128
#define VAL_SAT (1u << 30)
#define MAX_ELEMENTS (1ll << 31)
/* one precision for every stream: a compile-time shift in the decoder's hot loop */
#define FC_PREC 11
/* poisson: at most this many regions above the first */
#define FC_POIS_RMAX 65535

/* A plane's stencil: the prediction of a code from its west, north and north-west neighbours
 * (pk: 0 none, 1 Lorenzo, 2 (W+N)/2, 3 W, the first row of a predicted plane). The encoder
 * and the decoder run this same arithmetic; stencil_f on the abs-float lanes' reconstructions. */
FC_INLINE uint64_t stencil(const int pk, uint64_t qW, uint64_t qN, uint64_t qNW) {
    if (pk == 0) return 0;
    if (pk == 3) return qW;
    if (pk == 1) return qW + qN - qNW;
    return (uint64_t)(((int64_t)qW >> 1) + ((int64_t)qN >> 1) + (int64_t)(qW & qN & 1));
}
FC_INLINE double stencil_f(const int pk, double rW, double rN, double rNW) {
    if (pk == 0) return 0.0;
    if (pk == 3) return rW;
    if (pk == 1) return (rW + rN) - rNW;
    return (rW + rN) * 0.5;
}

FC_INLINE uint32_t sat_abs(uint64_t q, uint32_t cap) {
    uint64_t a = (int64_t)q < 0 ? (uint64_t)0 - q : q;
    return a < cap ? (uint32_t)a : cap;
}

FC_INLINE int check_shape(int dtype, int64_t P, int64_t H, int64_t W) {
    if (dtype < FC_F32 || dtype > FC_U64) return FC_ERR_ARG;
    if (P < 0 || H < 1 || W < 1 || H > MAX_ELEMENTS || W > MAX_ELEMENTS) return FC_ERR_ARG;
    if (P > 0 && H * W > MAX_ELEMENTS / P) return FC_ERR_ARG;
    return 0;
}

/* fc_quant.c: the quantiser of each bound mode, shared by encoder and decoder */
FC_HIDDEN int pwrel_cache(quant_t *q);
FC_HIDDEN void pwrel_params(quant_t *q, double eb);
FC_HIDDEN int poisson_params(quant_t *q, double eb, int64_t R);
FC_HIDDEN int64_t poisson_R(const void *xb, int dt, int64_t n, const uint8_t *mask, double eb);
FC_HIDDEN void quant_free(quant_t *q);
/* one row of elements -> codes Q, status st (ST_*), pwrel class cls */
FC_HIDDEN void quant_row(const quant_t *q, const void *xb, int64_t off, int64_t W, int64_t p,
                         const uint8_t *mrow, uint64_t *Q, uint8_t *st, uint8_t *cls);
/* codes of one row -> elements of the output (masked elements untouched) */
FC_HIDDEN int dequant_row(const quant_t *q, const uint64_t *Q, const uint8_t *Cc, const uint8_t *mrow, void *out,
                          int64_t off, int64_t W, int64_t p, int has_mask);

/* fc_mask.c: the mask bits of W elements from off as bytes; whether any is set */
FC_HIDDEN int expand_mask(const uint8_t *mask, int64_t off, int64_t W, uint8_t *mrow);

/* fc_choose.c: plane p's choice k (stencil k % 3, on the residual to the prediction when
 * k >= 3); sets q->step[p] and q->vb[p] for it */
FC_HIDDEN int choose_plane(quant_t *q, const void *xb, const uint8_t *mask, int64_t p, int64_t P, int64_t H,
                           int64_t W, int allowed, const double *step2, const double *vb2, uint64_t *Qa,
                           uint64_t *Qb, uint8_t *st, uint8_t *st2, uint8_t *cls, uint8_t *mrow);

#endif
