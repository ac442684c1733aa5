/* Each plane's stencil (none, 2D Lorenzo, (W+N)/2; docs/fastcode.md calls it the plane's
 * predictor) and, for abs streams with the caller's prediction, whether the plane codes its
 * residual to that prediction: the cheapest choice on a sample of rows. Only the ratio
 * depends on these choices; the stream records them. */
#include "fc_codec.h"

FC_INLINE uint64_t predict(int pk, const uint64_t *Qp, const uint64_t *Qc, int64_t j, int64_t y) {
    if (pk == 0) return 0;
    if (y == 0) return j ? Qc[j - 1] : 0;
    if (j == 0) return Qp[0];
    return stencil(pk, Qc[j - 1], Qp[j], Qp[j - 1]);
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
int choose_plane(quant_t *q, const void *xb, const uint8_t *mask, int64_t p, int64_t P, int64_t H,
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
