/* Frequency tables: normalisation, compact serialisation, decode tables, and the
 * clustering of fine context buckets into the contexts a stream uses. Only the
 * decoder-side functions (ftab_read, ftab_slots) must be exact; the encoder-side
 * choices (significant bits kept, clusters) only affect the ratio. */
#include <math.h>

#include "fc_internal.h"

double fc_fast_log2(double x) { /* x > 0; ~1e-6 absolute error, for cost estimates only */
    union { double d; uint64_t u; } v = {x};
    int e = (int)((v.u >> 52) & 0x7ff) - 1023;
    v.u = (v.u & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
    double m = v.d;
    if (m > 1.4142135623730951) { m *= 0.5; e += 1; }
    double t = (m - 1) / (m + 1), t2 = t * t;
    return e + 2.8853900817779268 * t * (1 + t2 * (1.0 / 3 + t2 * (0.2 + t2 * (1.0 / 7 + t2 / 9))));
}

static float XL_TAB[4096];
static int xl_ready;
static double xlog2x(double c) {
    if (c < 4096) {
        if (!__atomic_load_n(&xl_ready, __ATOMIC_ACQUIRE)) { /* idempotent: racing writers store the same values */
            for (int i = 1; i < 4096; i++) XL_TAB[i] = (float)(i * fc_fast_log2(i));
            __atomic_store_n(&xl_ready, 1, __ATOMIC_RELEASE);
        }
        return XL_TAB[(int)c];
    }
    return c * fc_fast_log2(c);
}

static int bitlen(uint32_t v) { return v ? fc_ilog2_32(v) + 1 : 0; }

/* normalise counts to a sum of 2^prec, every used token >= 1 */
static void normalise(const uint32_t *c, int ntok, int prec, uint32_t *f, int *imax_out) {
    uint64_t total = 0;
    int imax = 0;
    for (int t = 0; t < ntok; t++) { total += c[t]; if (c[t] > c[imax]) imax = t; }
    const uint32_t M = 1u << prec;
    int64_t sum = 0;
    for (int t = 0; t < ntok; t++) {
        if (!c[t]) { f[t] = 0; continue; }
        uint64_t v = ((uint64_t)c[t] * M + total / 2) / total;
        f[t] = v ? (uint32_t)v : 1;
        if (t != imax) sum += f[t];
    }
    /* the most frequent token takes the rest; if the others already exceed, shrink them */
    while (sum >= (int64_t)M) {
        int j = -1;
        for (int t = 0; t < ntok; t++) if (t != imax && f[t] > 1 && (j < 0 || f[t] > f[j])) j = t;
        if (j < 0) break; /* cannot happen: ntok <= FC_NTOK < M */
        uint32_t d = (uint32_t)((sum - M + 1 < (int64_t)f[j] - 1) ? sum - M + 1 : f[j] - 1);
        f[j] -= d; sum -= d;
    }
    f[imax] = M - (uint32_t)sum;
    *imax_out = imax;
}

/* keep `m` significant bits of every frequency but imax's (nearest, else down) */
static int quantise_sig(const uint32_t *f, int ntok, int imax, int m, int prec, uint32_t *g, int down) {
    int64_t sum = 0;
    for (int t = 0; t < ntok; t++) {
        if (t == imax || !f[t]) { g[t] = f[t]; continue; }
        int l = bitlen(f[t]);
        int drop = l - m;
        uint32_t v = f[t];
        if (drop > 0) {
            uint32_t q = down ? (v >> drop) : ((v + (1u << (drop - 1))) >> drop);
            v = q << drop;
            if (bitlen(v) > l && !down) { /* rounded up to the next power of two: fine */ }
            if (!v) v = 1;
        }
        g[t] = v; sum += v;
    }
    if (sum >= (int64_t)(1u << prec)) return -1;
    g[imax] = (1u << prec) - (uint32_t)sum;
    return 0;
}

static int table_bits(const uint32_t *g, int ntok, int imax, int m) {
    if (ntok == 1) return 8;
    int bits = 8 + 8 + 4;
    for (int t = 0; t < ntok; t++) {
        if (t == imax) continue;
        int l = bitlen(g[t]);
        bits += 4 + (l > 1 ? (l - 1 < m - 1 ? l - 1 : m - 1) : 0);
    }
    return bits;
}

static double data_bits(const uint32_t *c, const uint32_t *g, int ntok, int prec) {
    double b = 0;
    for (int t = 0; t < ntok; t++) if (c[t]) b += c[t] * (prec - fc_fast_log2(g[t]));
    return b;
}

int ftab_build(const uint32_t *counts, int ntok, int prec, ftab_t *t, bw_t *w) {
    while (ntok > 1 && !counts[ntok - 1]) ntok--;
    uint64_t total = 0;
    for (int i = 0; i < ntok; i++) total += counts[i];
    if (!total) ntok = 1;
    t->ntok = ntok;
    if (ntok == 1) {
        t->freq[0] = (uint16_t)(1u << prec);
        t->start[0] = 0;
        bw_put(w, 0, 8);
        return 8;
    }
    uint32_t f[FC_NTOK], g[FC_NTOK], best[FC_NTOK];
    int imax;
    normalise(counts, ntok, prec, f, &imax);
    static const int cand[] = {2, 3, 4, 5, 6, 8, 12};
    double best_cost = 1e300;
    int best_m = 12;
    for (unsigned i = 0; i < sizeof cand / sizeof cand[0]; i++) {
        int m = cand[i];
        if (quantise_sig(f, ntok, imax, m, prec, g, 0) < 0 && quantise_sig(f, ntok, imax, m, prec, g, 1) < 0) continue;
        double cost = data_bits(counts, g, ntok, prec) + table_bits(g, ntok, imax, m);
        if (cost < best_cost) { best_cost = cost; best_m = m; memcpy(best, g, sizeof(uint32_t) * ntok); }
    }
    if (best_cost >= 1e300) { best_m = 12; memcpy(best, f, sizeof(uint32_t) * ntok); }
    bw_put(w, (uint64_t)(ntok - 1), 8);
    bw_put(w, (uint64_t)imax, 8);
    bw_put(w, (uint64_t)(best_m - 1), 4);
    uint32_t start = 0;
    for (int i = 0; i < ntok; i++) {
        t->freq[i] = (uint16_t)best[i];
        t->rcp[i] = best[i] >= 2 ? UINT64_MAX / best[i] + 1 : 0;
        t->start[i] = (uint16_t)start;
        start += best[i];
        if (i == imax) continue;
        int l = bitlen(best[i]);
        bw_put(w, (uint64_t)l, 4);
        if (l > 1) {
            int nb = l - 1 < best_m - 1 ? l - 1 : best_m - 1;
            bw_put(w, (best[i] >> (l - 1 - nb)) & ((1u << nb) - 1), nb);
        }
    }
    return table_bits(best, ntok, imax, best_m);
}

int ftab_read(br_t *r, int prec, int maxtok, ftab_t *t) {
    int ntok = (int)br_get(r, 8) + 1;
    if (ntok > maxtok) return FC_ERR_CORRUPT;
    t->ntok = ntok;
    const uint32_t M = 1u << prec;
    if (ntok == 1) { t->freq[0] = (uint16_t)M; t->start[0] = 0; return br_overrun(r) ? FC_ERR_CORRUPT : 0; }
    int imax = (int)br_get(r, 8);
    int m = (int)br_get(r, 4) + 1;
    if (imax >= ntok || m > 12) return FC_ERR_CORRUPT;
    uint32_t f[FC_NTOK];
    uint64_t sum = 0;
    for (int i = 0; i < ntok; i++) {
        if (i == imax) { f[i] = 0; continue; }
        int l = (int)br_get(r, 4);
        if (l > prec) return FC_ERR_CORRUPT;
        uint32_t v = 0;
        if (l == 1) v = 1;
        else if (l > 1) {
            int nb = l - 1 < m - 1 ? l - 1 : m - 1;
            v = (1u << (l - 1)) | ((uint32_t)br_get(r, nb) << (l - 1 - nb));
        }
        f[i] = v; sum += v;
    }
    if (br_overrun(r) || sum >= M) return FC_ERR_CORRUPT;
    f[imax] = M - (uint32_t)sum;
    uint32_t start = 0;
    for (int i = 0; i < ntok; i++) { t->freq[i] = (uint16_t)f[i]; t->start[i] = (uint16_t)start; start += f[i]; }
    return 0;
}

void ftab_slots(const ftab_t *t, int prec, uint32_t *slots) {
    for (int i = 0; i < t->ntok; i++) {
        uint32_t f = t->freq[i], s = t->start[i];
        for (uint32_t j = 0; j < f; j++) slots[s + j] = (uint32_t)i | ((f - 1) << 8) | (j << 20);
    }
}

/* clustering ------------------------------------------------------------------------ */
double ftab_cost_estimate(const uint32_t *c, int ntok) {
    double n = 0, s = 0;
    int nz = 0;
    for (int t = 0; t < ntok; t++) if (c[t]) { n += c[t]; s += xlog2x(c[t]); nz++; }
    return xlog2x(n) - s + 20 + 8.0 * nz;
}

int cluster_buckets(const uint32_t *hist, int maxctx, uint8_t *ctxmap, double *bits) {
    int idx[FC_NFINE], nb = 0;
    for (int b = 0; b < FC_NFINE; b++) {
        const uint32_t *h = hist + b * FC_NTOK;
        for (int t = 0; t < FC_NTOK; t++) if (h[t]) { idx[nb++] = b; break; }
    }
    if (nb == 0) { memset(ctxmap, 0, FC_NFINE); *bits = 0; return 1; }
    /* sparse rows: the nonzero tokens of each used bucket */
    static __thread uint8_t nzt[FC_NFINE][FC_NTOK];
    static __thread uint32_t nzc[FC_NFINE][FC_NTOK];
    int nnz[FC_NFINE];
    for (int i = 0; i < nb; i++) {
        const uint32_t *h = hist + idx[i] * FC_NTOK;
        nnz[i] = 0;
        for (int t = 0; t < FC_NTOK; t++) if (h[t]) { nzt[i][nnz[i]] = (uint8_t)t; nzc[i][nnz[i]++] = h[t]; }
    }
    /* segment costs, the merged histogram's entropy updated token by token */
    static __thread double cost[FC_NFINE][FC_NFINE];
    uint32_t merged[FC_NTOK];
    for (int i = 0; i < nb; i++) {
        memset(merged, 0, sizeof merged);
        double n = 0, sxl = 0;
        int nz = 0;
        for (int j = i; j < nb; j++) {
            for (int k = 0; k < nnz[j]; k++) {
                const int t = nzt[j][k];
                const uint32_t c0 = merged[t], c1 = c0 + nzc[j][k];
                sxl += xlog2x(c1) - xlog2x(c0);
                nz += c0 == 0;
                merged[t] = c1;
                n += nzc[j][k];
            }
            cost[i][j] = xlog2x(n) - sxl + 20 + 8.0 * nz;
        }
    }
    int K = maxctx < nb ? maxctx : nb;
    static __thread double D[FC_MAX_CTX + 1][FC_NFINE];
    static __thread int from[FC_MAX_CTX + 1][FC_NFINE];
    for (int j = 0; j < nb; j++) { D[1][j] = cost[0][j]; from[1][j] = 0; }
    int bestk = 1;
    double bestv = D[1][nb - 1];
    for (int k = 2; k <= K; k++) {
        for (int j = 0; j < nb; j++) {
            D[k][j] = 1e300; from[k][j] = -1;
            for (int i = k - 1; i <= j; i++) { /* last segment idx[i..j] */
                double v = D[k - 1][i - 1] + cost[i][j];
                if (v < D[k][j]) { D[k][j] = v; from[k][j] = i; }
            }
        }
        if (D[k][nb - 1] < bestv) { bestv = D[k][nb - 1]; bestk = k; }
    }
    /* backtrack: segment starts in terms of fine buckets */
    int starts[FC_MAX_CTX + 1];
    int j = nb - 1;
    for (int k = bestk; k >= 1; k--) { int i = from[k][j]; starts[k - 1] = i; j = i - 1; }
    int c = 0;
    for (int b = 0; b < FC_NFINE; b++) {
        while (c + 1 < bestk && b >= idx[starts[c + 1]]) c++;
        ctxmap[b] = (uint8_t)c;
    }
    *bits = bestv;
    return bestk;
}
