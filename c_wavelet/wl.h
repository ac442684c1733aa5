/* wavelet engine: lifting transform, quantiser, context-modelled rANS (docs/wavelet.md).
 *
 * A frame z (H x W float64, C order) is transformed in place by a multi-level separable
 * lifting scheme (CDF 9/7 by default, any program of lifting steps from the model),
 * quantised per subband with a deadzone quantiser, and its integers coded coarse to fine
 * under frozen integer frequency tables chosen by a context (causal neighbours, parent,
 * siblings). Everything the model decides is data in wl_params; the code has no trained
 * constant of its own.
 *
 * Determinism: float64, a fixed operation order, no threads, IEEE basic operations only;
 * compile with -ffp-contract=off. The same stream decodes to the same bits on every
 * machine, and the encoder returns exactly those bits (z_hat) without decoding.
 */
#ifndef WAVELET_H
#define WAVELET_H

#include <stddef.h>
#include <stdint.h>

#define WL_MAX_LEVELS 16
#define WL_MAX_GROUPS 64
#define WL_MAX_CLASSES 64
#define WL_MAX_TOK 128
#define WL_MAX_SETS 16
#define WL_NFEAT 10      /* context features: W, N, NW, NE, WW, NN, P, PN, S, SN */
#define WL_NSIGN 729     /* sign patterns: 3^6 of (W, N, NW, NE, parent, first sibling) */
#define WL_MAX_TAPS 64
#define WL_MAX_OPS 4096
#define WL_MAX_Q (1 << 30) /* |q| < WL_MAX_Q for every quantised value (encoder and decoder) */
#define WL_STEP_ONE 32768  /* step index of the step 1.0; step(k) = 2^((k - 32768) / 256) */

/* lifting operations */
enum { WL_PREDICT = 0, /* d[i] += sum_k taps[k] s[i + off + k] */
       WL_UPDATE = 1,  /* s[i] += sum_k taps[k] d[i + off + k] */
       WL_SCALE_S = 2, /* s[i] *= taps[0] */
       WL_SCALE_D = 3  /* d[i] *= taps[0] */ };

/* errors */
#define WL_ERR_CORRUPT (-1)
#define WL_ERR_NOMEM (-2)
#define WL_ERR_ARG (-3)
#define WL_ERR_RANGE (-4) /* a quantised value beyond WL_MAX_Q: the step is too small */

typedef struct {
    /* transform */
    int32_t levels;             /* at most this many levels */
    int32_t min_len;            /* with level_rule (>= 2) */
    int32_t level_rule;         /* 0: a level runs while the LL's longer side is >= min_len;
                                   1: levels while the coarsest LL keeps both sides >= min_len, at least one */
    int32_t nprog;              /* lifting programs */
    const int32_t *prog_start;  /* nprog + 1: the ops of program p are [prog_start[p], prog_start[p+1]) */
    const int32_t *op_kind;     /* per op: WL_PREDICT, WL_UPDATE, WL_SCALE_S, WL_SCALE_D */
    const int32_t *op_off;      /* per op: offset of the first tap */
    const int32_t *op_ntaps;    /* per op: number of taps (1 for scales) */
    const int32_t *op_tap0;     /* per op: index of its first tap in taps */
    int32_t ntaps_total;
    const double *taps;
    const int32_t *prog_of;     /* [levels][2]: program of (level from the finest, 0 rows / 1 columns) */
    /* bands: index [level from the finest - 1][orientation 0 LL (the top level's), 1 HL, 2 LH, 3 HH] */
    const double *band_w;       /* step multiplier */
    const double *theta;        /* deadzone rounding offset: q = sign(c) floor(|c| / D_b + theta) */
    const double *delta;        /* reconstruction offset: c = sign(q) (|q| - delta) D_b */
    const int32_t *group_of;    /* table group */
    int32_t ll_pred;            /* LL: 0 none, 1 (W + N) >> 1, 2 MED */
    int32_t ll_ctx;             /* LL classes: 0 the context features of its residuals, 1 gradient activity */
    int32_t ll_classes;         /* ll_ctx 1: class min(ilog2(1 + |W-NW| + |N-NW| + |NE-N|), ll_classes - 1) */
    /* contexts, per group: a = bias + sum_i w[i] flut[min(x_i, fmax)],
     * class = lut[min(max(a - a_lo, 0) >> a_shift, amax)] */
    int32_t ngroups, nclasses, ntok, amax, fmax;
    const int32_t *flut;        /* [fmax + 1] feature value of a magnitude (or sum of magnitudes) */
    const int32_t *ctx_w;       /* [G][WL_NFEAT] */
    const int32_t *bias;        /* [G] */
    const int32_t *a_lo;        /* [G] */
    const int32_t *a_shift;     /* [G] */
    const uint8_t *class_lut;   /* [G][amax + 1] */
    /* tokens */
    int32_t tok_mode;           /* 0: min(|v|, ntok - 1), the last an escape to Exp-Golomb order eg_k;
                                   1: hybrid: |v| < tok_direct itself, else (exponent, 1 mantissa bit) + raw bits */
    int32_t tok_direct;         /* tok_mode 1: a power of two, 2..64 */
    const int32_t *eg_k;        /* [G] tok_mode 0 */
    /* signs */
    int32_t sign_ctx;           /* 0: raw bits; 1: detail signs under tables of (group, sign pattern) */
    const uint32_t *sign_freq;  /* [G][WL_NSIGN] frequency of '+' out of 2^prec (sign_ctx 1) */
    /* encoder only */
    double rdo_lambda;          /* > 0: after quantising, 2 passes lower |q| by one where
                                   D + lambda R drops (D in squared steps, R in bits of the frozen set 0) */
    /* zero segments */
    int32_t zero_run;           /* 0 off; else detail rows go in segments of this many values (2..64), each
                                   led by a binary flag "all zero" under zr_freq[g][class of the segment] */
    const uint32_t *zr_freq;    /* [G][nclasses] frequency of "all zero" out of 2^prec */
    /* tables */
    int32_t prec, nsets;        /* frequencies sum to 2^prec (10..16); nsets table sets */
    const uint32_t *freq;       /* [nsets][G][nclasses][ntok], every entry >= 1 */
    int32_t adapt;              /* 0 static tables (rANS); 1 adaptive: binary decisions (below) in a binary range coder */
    int32_t adapt_rate;         /* adaptive: prior strength A (0..254): a decision starts with P(0) from the frozen
                                   table and visit count 1 + round(A x its share of the table), a sign or segment
                                   flag 1 + A; after each bit P(0) moves by its distance to the bit's end >> shift,
                                   shift = round(log2(count)) in 1 .. adapt_smax, and the count grows (to 255) */
    int32_t adapt_smax;         /* adaptive: the slowest rate shift (1..15) */
} wl_params;

typedef struct wl_model wl_model;

/* Validate and prepare (cumulative tables, costs, lookups); 0 or WL_ERR_ARG / WL_ERR_NOMEM.
 * The model owns copies of every array. */
int wl_model_new(const wl_params *p, wl_model **out);
void wl_model_free(wl_model *m);
/* Context profiles: base codes each frame with itself or one of the others (whichever codes it in
 * the fewest bits), a frame's choice stored as log2(n + 1) raw bits (n + 1 a power of two, <= 16).
 * The others must share everything but the context model (weights, classes, tables); base keeps
 * pointers to them: free them after base. */
int wl_model_attach(wl_model *base, wl_model **others, int n);
/* line of the last error (diagnostics) and a short reason for WL_ERR_ARG */
int wl_last_line(void);

/* number of levels for a frame; the bands: per band (level from finest, orientation, y0, x0, h, w) */
int wl_levels(const wl_model *m, int64_t H, int64_t W);
int wl_bands(const wl_model *m, int64_t H, int64_t W, int32_t *out, int maxbands);

/* transform in place (Mallat layout) */
int wl_forward(const wl_model *m, double *x, int64_t H, int64_t W);
int wl_inverse(const wl_model *m, double *x, int64_t H, int64_t W);

/* step of a step index: 2^((k - 32768) / 256), exact table times a power of two */
double wl_step(int32_t k);

/* quantised values of the transformed frame (Mallat layout, int32) */
int wl_quantise(const wl_model *m, const double *z, int64_t H, int64_t W, int32_t step, int32_t *q);

/* Encode B frames with per-frame step indices into one message; zhat (B*H*W) receives the
 * decoder's frames. A step too fine for a frame (a quantised value would reach 2^29) is
 * WL_ERR_RANGE: raise it to wl_min_steps'. *out is malloc'd (free with wl_free); returns its size
 * or a negative error. */
int64_t wl_encode(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W,
                  const int32_t *steps, double *zhat, uint8_t **out);
/* per frame the finest step index the encoder accepts */
int64_t wl_min_steps(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W, int32_t *steps);
/* Decode; returns the bytes consumed (the message is self-delimiting) or a negative error, and
 * each frame's step index in steps[].
 * Never reads outside in[0, n) nor writes outside zhat[0, B*H*W). */
int64_t wl_decode(const wl_model *m, const uint8_t *in, size_t n, int64_t B, int64_t H, int64_t W,
                  int32_t *steps, double *zhat);
/* wl_decode into out: out_kind 0 float64 z_hat; 1 float32 through the linear map of each frame f:
 * u = z * fs[f], u = u + fo[f], y = u * ts, then the nearest float32, clamped to its finite range,
 * NaN 0 (flags: 0, reserved). */
int64_t wl_decode_to(const wl_model *m, const uint8_t *in, size_t n, int64_t B, int64_t H, int64_t W,
                     int32_t *steps, void *out, int out_kind, const double *fs, const double *fo, double ts,
                     int flags);

/* Symbol counts for table training: counts[(f)][G][nclasses][ntok] (f: per frame when per_frame),
 * signs[G][WL_NSIGN][2] (detail signs by pattern), zruns[G][nclasses][2] (segment flags: all
 * zero, not) when zero_run, added to what the arrays hold; raw_bits[0] +=
 * the raw bits (signs coded raw, escape and mantissa bits). */
int wl_stats(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W, const int32_t *steps,
             int per_frame, int64_t *counts, int64_t *signs, int64_t *zruns, int64_t *raw_bits);

/* Context features of the detail coefficients of B frames (for fitting the context weights):
 * per coefficient, in coding order, the WL_NFEAT raw feature values x_i (before flut), |q| and
 * the group. Returns the number written (at most maxn) or a negative error. */
int64_t wl_features(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W, const int32_t *steps,
                    int32_t *feat, int32_t *mag, int32_t *group, int64_t maxn);

/* Rate control: per frame the largest step index in [lo, hi] whose reconstruction has
 * sum (zhat - z)^2 <= target[f]^2 sum (z - mean z)^2 (bisection; lo when none meets it). */
int wl_search_steps(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W,
                    const double *target, int32_t lo, int32_t hi, int32_t *steps);

/* Encoder only: masked pixels (mask[i] != 0) of B frames (H, W) of z set to a smooth fill of the
 * valid ones: nearest valid value, then at most `sweeps` Gauss-Seidel sweeps of the 4-neighbour
 * mean (fewer in a mostly masked frame; wl_fill.c). 0, WL_ERR_ARG or WL_ERR_NOMEM. */
int wl_fill_smooth(float *z, const uint8_t *mask, int64_t B, int64_t H, int64_t W, int32_t sweeps);
/* z (H, W) += the radial prediction of knots v[0 .. K) at radii (k0 + j) h around (cy, cx):
 * r = sqrt(dy^2 + dx^2), t = r / h - k0, i = min(max(floor(t), 0), K - 2), f = t - i,
 * (1 - f) v[i] + f v[i + 1] (wl_radial.c; saecodec/coding/radial.py) */
void wl_radial_add(double *z, int64_t H, int64_t W, double cy, double cx, double h, double k0, const double *v,
                   int64_t K);
void wl_free(void *p);

#endif
