/* Internal declarations shared by the wavelet engine's sources. */
#ifndef WL_INTERNAL_H
#define WL_INTERNAL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wl.h"

#if defined(__GNUC__)
#define WL_INLINE static inline __attribute__((always_inline))
#define WL_LIKELY(x) __builtin_expect(!!(x), 1)
#define WL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define WL_INLINE static inline
#define WL_LIKELY(x) (x)
#define WL_UNLIKELY(x) (x)
#endif

/* Hot float loops are compiled twice, for AVX2 and for the baseline, and picked at load time:
 * the same IEEE operations per element either way (no FMA: -ffp-contract=off), so every
 * machine decodes the same bits. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(WL_NO_CLONES)
#define WL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define WL_CLONES
#endif

#define WL_SLOT_BITS 6 /* coarse decode lookup: the first symbol of each of 2^6 slots */
#define RANS_L (1u << 16)
#define WL_PB 15 /* adaptive decisions: probabilities in 2^-WL_PB */

struct wl_model {
    wl_params p;                /* arrays point into the model's own copies below */
    struct wl_model **prof;     /* context profiles (prof[0] is this model), nprof of them; NULL: one */
    int nprof;
    void *blocks[32];           /* owned allocations */
    int nblocks;
    uint32_t *cum;              /* [S][G][C][ntok + 1] cumulative frequencies */
    uint8_t *slot;              /* [S][G][C][2^WL_SLOT_BITS] first symbol whose range meets the slot */
    uint32_t *cost;             /* [S][G][C][ntok] code length in 1/65536 bits (for the set choice) */
    int64_t tab_stride;         /* tables per set: G * nclasses */
    uint32_t *init_node;        /* adaptive: [S][G][C][ntok - 1] each frame's starting token decisions (wl_code.c) */
    uint8_t shift_of[256];      /* adaptive: a decision's rate shift by its visit count */
};

extern __thread int wl_fail_line;
#define WL_FAIL(code) do { wl_fail_line = __LINE__; return (code); } while (0)

/* one frame's band layout */
typedef struct {
    int32_t level, orient;      /* level from the finest (1..), orientation 0 LL 1 HL 2 LH 3 HH */
    int64_t y0, x0, h, w;
    int32_t parent, sib1, sib2; /* band indices (-1: none) */
    int32_t group;
    double bw, theta, delta;
} wl_band;

/* bands of an H x W frame in coding order (LL, then levels coarse to fine, HL LH HH); returns count */
int wl_layout(const wl_model *m, int64_t H, int64_t W, wl_band *bands);
#define WL_MAX_BANDS (1 + 3 * WL_MAX_LEVELS)

/* transform with a caller's scratch (at least 2 * max(H, W) + ... see wl_scratch_size) */
int64_t wl_scratch_size(int64_t H, int64_t W);
void wl_forward_s(const wl_model *m, double *x, int64_t H, int64_t W, double *scratch);
void wl_inverse_s(const wl_model *m, double *x, int64_t H, int64_t W, double *scratch);

#endif
