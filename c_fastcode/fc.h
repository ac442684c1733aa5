/* fastcode: error-bounded and lossless coding of stacks of 2D planes.
 *
 * One call codes a chunk of P planes of H x W elements into one self-contained
 * stream: each element becomes an integer code Q (quantiser of the bound mode),
 * Q is predicted from its causal neighbours in the plane (none, 2D Lorenzo or
 * (W+N)/2, chosen per plane), and the residuals are coded with rANS under static
 * per-chunk frequency tables selected by a context (log-bucketed neighbour residual
 * or value magnitudes). The encoder verifies every element exactly as the decoder
 * will reconstruct it (after the cast to the element type) and stores the elements
 * that miss the bound in an exact fallback list; the decoder makes no decision of
 * its own. Masked elements (a packed bit mask, numpy.packbits order) are not coded
 * at all: the caller stores them.
 *
 * Compile with -ffp-contract=off: the reconstruction uses only IEEE basic
 * operations, and must not be fused into FMAs on some machines and not others.
 */
#ifndef FASTCODE_H
#define FASTCODE_H

#include <stddef.h>
#include <stdint.h>

/* element types */
enum { FC_F32 = 0, FC_F64 = 1, FC_I8 = 2, FC_I16 = 3, FC_I32 = 4, FC_I64 = 5,
       FC_U8 = 6, FC_U16 = 7, FC_U32 = 8, FC_U64 = 9 };

/* bound modes */
enum { FC_LOSSLESS = 0, /* integers only: bit-exact */
       FC_ABS = 1,      /* |d - x| <= eb */
       FC_PWREL = 2,    /* |d - x| <= eb |x|, zeros stay zero, signs kept */
       FC_POISSON = 3   /* |d - x| <= eb sqrt(max(x, 1)), integer-valued x >= 0 */ };

/* encoder flags */
#define FC_NO_DITHER 1   /* integer bins (poisson, abs on integers) centred at fixed points, not dithered */
#define FC_VERIFY_F16 2  /* float32 input holding float16 values: verify after the decoder's float32
                            result is rounded to float16 (the caller casts the decoded chunk) */

/* choices of predictor per plane (the `allowed` mask of fc_encode): bit k = predictor k
 * (0 none, 1 Lorenzo, 2 (W+N)/2) on the plane itself, bit 3 + k = predictor k on the
 * residual to the caller's prediction */
#define FC_ALLOW_PLAIN 0x07
#define FC_ALLOW_PRED 0x38
#define FC_ALLOW_ALL 0x3f

/* errors (negative return values) */
#define FC_ERR_CORRUPT (-1)
#define FC_ERR_NOMEM (-2)
#define FC_ERR_ARG (-3)

typedef struct {
    int64_t n_fallback;  /* elements stored exactly because no code met the bound */
    int64_t n_coded;     /* value symbols */
    int64_t table_bytes; /* header + frequency tables */
    int64_t rans_bytes;
    int64_t extra_bytes; /* raw low bits */
    int64_t fallback_bytes;
    int32_t n_ctx;
    int32_t ctx_kind;
    int32_t precision;
    int32_t predictors[4]; /* planes per predictor */
} fc_stats;

/* Encode. x: P*H*W elements of dtype, C order. mask: packed bits over the chunk or NULL.
 * eb: the bound. abs on floats (and every plane that does not use pred): the step and a
 *   float32/float64 rounding reserve are computed here from eb, and every element is
 *   verified after the cast to the element type.
 * pred: FC_ABS only, NULL or P*H*W float64 prediction the decoder will have (up to the
 *   caller's guard). Planes coded against it use half_step[p] (half the quantisation step)
 *   and eb_verify[p], and are verified BEFORE the cast: |base + e - x| <= eb_verify[p],
 *   so that the caller can reserve room for the cast and for another decoder's pred.
 * allowed: FC_ALLOW_* bits, the (prediction, predictor) pairs a plane may use; each plane
 *   takes the cheapest on a sample of its rows. 0 means FC_ALLOW_ALL.
 * flags: FC_NO_DITHER, FC_VERIFY_F16.
 * On success *out is malloc'd (free with fc_free) and its size returned. */
int64_t fc_encode(const void *x, int dtype, int64_t P, int64_t H, int64_t W,
                  const uint8_t *mask, int mode, double eb,
                  const double *half_step, const double *eb_verify, const double *pred,
                  int allowed, int flags, uint8_t **out, fc_stats *stats);

/* Decode into out (P*H*W elements of dtype; masked elements are left untouched).
 * pred: the same prediction as the encoder's when the stream uses one.
 * Returns 0 or a negative error. Never reads outside in[0, n) nor writes outside out. */
int fc_decode(const uint8_t *in, size_t n, void *out, int dtype, int64_t P, int64_t H,
              int64_t W, const uint8_t *mask, const double *pred);

/* Header fields of a stream (mode, whether it needs pred), for the caller's checks. */
int fc_peek(const uint8_t *in, size_t n, int *mode, int *uses_pred);

/* Per plane: predictor (0 none, 1 Lorenzo, 2 (W+N)/2) and whether it codes the residual
 * to the caller's prediction (0/1). Returns 0 or a negative error. */
int fc_planes(const uint8_t *in, size_t n, int64_t P, uint8_t *predictor, uint8_t *uses_pred);

void fc_free(void *p);

/* masks without boolean temporaries (fc_mask.c) */
int64_t fc_scan_special(const void *x, int dtype, int64_t n, int nonfinite, const double *sent,
                        const int64_t *isent, int ns, double below, int use_below, uint8_t *bits);
int64_t fc_gather_masked(const void *x, int dtype, int64_t n, const uint8_t *bits, void *vals);
int fc_scatter_masked(void *out, int dtype, int64_t n, const uint8_t *bits, const void *vals, int64_t nvals);

/* The deterministic 2^t used by pwrel decoding (exported for the reference tests), and
 * elementwise over an array. */
double fc_exp2(double t);
void fc_exp2_array(const double *t, double *out, int64_t n);

/* A float64 reconstruction as the decoder stores it in dtype (FC_F16 = 10: float32, then
 * rounded to float16 as numpy does), returned as float64 (for the tests). */
#define FC_F16 10
double fc_cast(double v, int dtype);

/* Min and max of the unmasked finite elements (as float64); returns their count. */
int64_t fc_range(const void *x, int dtype, int64_t n, const uint8_t *mask, double *lo, double *hi);

/* line of the last decode failure in this thread (diagnostics) */
int fc_last_fail_line(void);

#endif
