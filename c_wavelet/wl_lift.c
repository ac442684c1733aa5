/* The lifting transform: programs of lifting steps on whole-sample symmetric extensions.
 *
 * A 1D signal x of length N >= 2 splits into s[i] = x[2i] (ceil(N/2)) and d[i] = x[2i+1]
 * (floor(N/2)); a program's operations then run in order (WL_PREDICT, WL_UPDATE, scales).
 * Indices beyond the ends read the whole-sample symmetric extension of x (x[-p] = x[p],
 * x[N-1+p] = x[N-1-p]), mapped back to s or d by the sample's position 2i or 2i+1; N = 1 is
 * left as it is. Every tap sum is evaluated left to right: acc = t0 v0; acc += t1 v1; ...;
 * then target += acc (forward) or target -= acc (inverse): the rows and the columns paths
 * perform the same operations element by element, so they give the same bits.
 *
 * 2D, level l (from the finest): the top-left h x w region (the previous LL) is transformed
 * along rows (each row: [s | d]) and then along columns (rows of s on top of rows of d); the
 * next LL is its top-left ceil(h/2) x ceil(w/2). The inverse runs the same in reverse order.
 * One kernel lifts both: columns in strips of 64, rows transposed in strips of 32, each
 * operation applied to a whole row of the strip (vectorised).
 */
#include <math.h>

#include "wl_internal.h"

/* position p of x's symmetric extension, N >= 2 */
WL_INLINE int64_t wss(int64_t p, int64_t N) {
    const int64_t P = 2 * N - 2;
    p %= P;
    if (p < 0) p += P;
    return p >= N ? P - p : p;
}
WL_INLINE int64_t ext_s(int64_t e, int64_t N) { return wss(2 * e, N) >> 1; }
WL_INLINE int64_t ext_d(int64_t e, int64_t N) { return (wss(2 * e + 1, N) - 1) >> 1; }

/* --- columns: rows of s (ns x w) and rows of d (nd x w), row stride w -------------------- */
WL_CLONES static void run_op_cols(const wl_model *m, int op, double *s, double *d, int64_t N, int64_t w, double *acc,
                        int inverse) {
    const wl_params *p = &m->p;
    const int kind = p->op_kind[op];
    const double *t = p->taps + p->op_tap0[op];
    const int64_t ns = (N + 1) >> 1, nd = N >> 1;
    if (kind == WL_SCALE_S || kind == WL_SCALE_D) {
        double *v = kind == WL_SCALE_S ? s : d;
        const int64_t n = (kind == WL_SCALE_S ? ns : nd) * w;
        const double f = inverse ? 1.0 / t[0] : t[0];
        for (int64_t i = 0; i < n; i++) v[i] = v[i] * f;
        return;
    }
    const int nt = p->op_ntaps[op];
    const int64_t off = p->op_off[op];
    double *tgt = kind == WL_PREDICT ? d : s;
    const double *src = kind == WL_PREDICT ? s : d;
    const int64_t ntg = kind == WL_PREDICT ? nd : ns;
    for (int64_t i = 0; i < ntg; i++) {
        double *row = tgt + i * w;
        int64_t e0 = i + off;
        const double *r0 = src + (kind == WL_PREDICT ? ext_s(e0, N) : ext_d(e0, N)) * w;
        if (nt == 2) {
            const int64_t e1 = e0 + 1;
            const double *r1 = src + (kind == WL_PREDICT ? ext_s(e1, N) : ext_d(e1, N)) * w;
            const double t0 = t[0], t1 = t[1];
            if (inverse) for (int64_t j = 0; j < w; j++) { double a = t0 * r0[j]; a = a + t1 * r1[j]; row[j] = row[j] - a; }
            else for (int64_t j = 0; j < w; j++) { double a = t0 * r0[j]; a = a + t1 * r1[j]; row[j] = row[j] + a; }
            continue;
        }
        for (int64_t j = 0; j < w; j++) acc[j] = t[0] * r0[j];
        for (int k = 1; k < nt; k++) {
            const int64_t e = e0 + k;
            const double *r = src + (kind == WL_PREDICT ? ext_s(e, N) : ext_d(e, N)) * w;
            const double tk = t[k];
            for (int64_t j = 0; j < w; j++) acc[j] = acc[j] + tk * r[j];
        }
        if (inverse) for (int64_t j = 0; j < w; j++) row[j] = row[j] - acc[j];
        else for (int64_t j = 0; j < w; j++) row[j] = row[j] + acc[j];
    }
}

/* the inverse's first operations when they are scales, at most one per half (CDF 9/7: scale_d, then
 * scale_s): their factors (1 / tap, as run_op_cols computes it; 1 and no multiply when absent), and
 * the operations left for lift_cols (b_left) */
typedef struct { double fs, fd; int s, d, b_left; } head_t;

static head_t inverse_head(const wl_model *m, int prog) {
    const wl_params *p = &m->p;
    head_t h = {1.0, 1.0, 0, 0, p->prog_start[prog + 1]};
    while (h.b_left > p->prog_start[prog]) {
        const int op = h.b_left - 1, k = p->op_kind[op];
        if (k == WL_SCALE_S && !h.s) { h.s = 1; h.fs = 1.0 / p->taps[p->op_tap0[op]]; }
        else if (k == WL_SCALE_D && !h.d) { h.d = 1; h.fd = 1.0 / p->taps[p->op_tap0[op]]; }
        else break;
        h.b_left--;
    }
    return h;
}

/* the program; the inverse from operation b_left - 1 down (its head done by the caller's copy) */
static void lift_cols(const wl_model *m, int prog, double *s, double *d, int64_t N, int64_t w, double *acc,
                      int inverse, int b_left) {
    const int a = m->p.prog_start[prog], b = m->p.prog_start[prog + 1];
    if (!inverse) for (int op = a; op < b; op++) run_op_cols(m, op, s, d, N, w, acc, 0);
    else for (int op = b_left - 1; op >= a; op--) run_op_cols(m, op, s, d, N, w, acc, 1);
}

/* --- levels -------------------------------------------------------------------------------- */
int wl_levels(const wl_model *m, int64_t H, int64_t W) {
    int n = 0;
    int64_t h = H, w = W;
    if (m->p.level_rule == 1) { /* both sides of the coarsest LL >= min_len, at least one level */
        while (n < m->p.levels && ((h + 1) >> 1) >= m->p.min_len && ((w + 1) >> 1) >= m->p.min_len) {
            h = (h + 1) >> 1;
            w = (w + 1) >> 1;
            n++;
        }
        return n > 0 || m->p.levels == 0 ? n : 1;
    }
    while (n < m->p.levels && (h > w ? h : w) >= m->p.min_len && (h > 1 || w > 1)) {
        h = (h + 1) >> 1;
        w = (w + 1) >> 1;
        n++;
    }
    return n;
}

int64_t wl_scratch_size(int64_t H, int64_t W) {
    /* columns: a strip of H x 64 plus one accumulator row; rows: a strip of 32 rows transposed
     * (W x 32) plus one accumulator row */
    return (H > W ? H : W) * 64 + 64 + 8;
}

/* rows in strips of ROW_STRIP rows, transposed so that the columns' vectorised kernel lifts
 * them (each element sees the same operations whichever way it is laid out, so the same bits) */
#define ROW_STRIP 32
WL_CLONES static void rows_level(const wl_model *m, int prog, double *x, int64_t W, int64_t h, int64_t w, double *tmp,
                                 int inverse) {
    if (w < 2) return;
    const int64_t ns = (w + 1) >> 1;
    for (int64_t r0 = 0; r0 < h; r0 += ROW_STRIP) {
        const int64_t R = h - r0 < ROW_STRIP ? h - r0 : ROW_STRIP;
        double *s = tmp, *d = tmp + ns * R, *acc = tmp + w * R;
        double *xs = x + r0 * W;
        if (!inverse) {
            for (int64_t i = 0; i < R; i++) {
                const double *row = xs + i * W;
                for (int64_t j = 0; j < w; j++) ((j & 1) ? d : s)[(j >> 1) * R + i] = row[j];
            }
            lift_cols(m, prog, s, d, w, R, acc, 0, 0);
            for (int64_t i = 0; i < R; i++) {
                double *row = xs + i * W;
                for (int64_t j = 0; j < w; j++) row[j] = tmp[j * R + i]; /* [s | d] */
            }
        } else {
            const head_t hd = inverse_head(m, prog); /* its scales applied in the transposing copy */
            for (int64_t i = 0; i < R; i++) {
                const double *row = xs + i * W;
                if (hd.s) for (int64_t j = 0; j < ns; j++) tmp[j * R + i] = row[j] * hd.fs;
                else for (int64_t j = 0; j < ns; j++) tmp[j * R + i] = row[j];
                if (hd.d) for (int64_t j = ns; j < w; j++) tmp[j * R + i] = row[j] * hd.fd;
                else for (int64_t j = ns; j < w; j++) tmp[j * R + i] = row[j];
            }
            lift_cols(m, prog, s, d, w, R, acc, 1, hd.b_left);
            for (int64_t i = 0; i < R; i++) {
                double *row = xs + i * W;
                for (int64_t j = 0; j < w; j++) row[j] = ((j & 1) ? d : s)[(j >> 1) * R + i];
            }
        }
    }
}

/* columns in strips of COL_STRIP columns, so that a strip's rows stay in cache */
#define COL_STRIP 64
WL_CLONES static void cols_level(const wl_model *m, int prog, double *x, int64_t W, int64_t h, int64_t w, double *tmp,
                       int inverse) {
    if (h < 2) return;
    const int64_t ns = (h + 1) >> 1;
    for (int64_t j0 = 0; j0 < w; j0 += COL_STRIP) {
        const int64_t sw = w - j0 < COL_STRIP ? w - j0 : COL_STRIP;
        double *s = tmp, *d = tmp + ns * sw, *acc = tmp + h * sw;
        double *xs = x + j0;
        if (!inverse) {
            for (int64_t r = 0; r < h; r++)
                memcpy((r & 1 ? d : s) + (r >> 1) * sw, xs + r * W, (size_t)sw * sizeof(double));
            lift_cols(m, prog, s, d, h, sw, acc, 0, 0);
            for (int64_t r = 0; r < h; r++) memcpy(xs + r * W, tmp + r * sw, (size_t)sw * sizeof(double));
        } else {
            const head_t hd = inverse_head(m, prog); /* its scales applied in the copy */
            for (int64_t r = 0; r < h; r++) {
                const int on = r < ns ? hd.s : hd.d;
                const double f = r < ns ? hd.fs : hd.fd, *src = xs + r * W;
                double *dst = tmp + r * sw;
                if (on) for (int64_t j = 0; j < sw; j++) dst[j] = src[j] * f;
                else memcpy(dst, src, (size_t)sw * sizeof(double));
            }
            lift_cols(m, prog, s, d, h, sw, acc, 1, hd.b_left);
            for (int64_t r = 0; r < h; r++)
                memcpy(xs + r * W, (r & 1 ? d : s) + (r >> 1) * sw, (size_t)sw * sizeof(double));
        }
    }
}

void wl_forward_s(const wl_model *m, double *x, int64_t H, int64_t W, double *scratch) {
    const int n = wl_levels(m, H, W);
    int64_t h = H, w = W;
    for (int l = 0; l < n; l++) {
        rows_level(m, m->p.prog_of[2 * l], x, W, h, w, scratch, 0);
        cols_level(m, m->p.prog_of[2 * l + 1], x, W, h, w, scratch, 0);
        h = (h + 1) >> 1;
        w = (w + 1) >> 1;
    }
}

void wl_inverse_s(const wl_model *m, double *x, int64_t H, int64_t W, double *scratch) {
    const int n = wl_levels(m, H, W);
    int64_t hs[WL_MAX_LEVELS + 1], ws[WL_MAX_LEVELS + 1];
    hs[0] = H;
    ws[0] = W;
    for (int l = 0; l < n; l++) { hs[l + 1] = (hs[l] + 1) >> 1; ws[l + 1] = (ws[l] + 1) >> 1; }
    for (int l = n - 1; l >= 0; l--) {
        cols_level(m, m->p.prog_of[2 * l + 1], x, W, hs[l], ws[l], scratch, 1);
        rows_level(m, m->p.prog_of[2 * l], x, W, hs[l], ws[l], scratch, 1);
    }
}

int wl_forward(const wl_model *m, double *x, int64_t H, int64_t W) {
    if (H < 1 || W < 1) WL_FAIL(WL_ERR_ARG);
    double *tmp = malloc((size_t)wl_scratch_size(H, W) * sizeof(double));
    if (!tmp) WL_FAIL(WL_ERR_NOMEM);
    wl_forward_s(m, x, H, W, tmp);
    free(tmp);
    return 0;
}

int wl_inverse(const wl_model *m, double *x, int64_t H, int64_t W) {
    if (H < 1 || W < 1) WL_FAIL(WL_ERR_ARG);
    double *tmp = malloc((size_t)wl_scratch_size(H, W) * sizeof(double));
    if (!tmp) WL_FAIL(WL_ERR_NOMEM);
    wl_inverse_s(m, x, H, W, tmp);
    free(tmp);
    return 0;
}

/* --- band layout ------------------------------------------------------------------------------ */
int wl_layout(const wl_model *m, int64_t H, int64_t W, wl_band *bands) {
    const int n = wl_levels(m, H, W);
    int64_t hs[WL_MAX_LEVELS + 1], ws[WL_MAX_LEVELS + 1];
    hs[0] = H;
    ws[0] = W;
    for (int l = 0; l < n; l++) { hs[l + 1] = (hs[l] + 1) >> 1; ws[l + 1] = (ws[l] + 1) >> 1; }
    const wl_params *p = &m->p;
    int nb = 0;
    /* LL: parameters of orientation 0 at the top level (level n; level 1 when n == 0) */
    const int top = n > 0 ? n : 1;
    const int ix0 = (top - 1) * 4;
    bands[nb++] = (wl_band){top, 0, 0, 0, hs[n], ws[n], -1, -1, -1, p->group_of[ix0], p->band_w[ix0],
                            p->theta[ix0], p->delta[ix0]};
    int prev[4] = {-1, -1, -1, -1}; /* the coarser level's band of each orientation */
    for (int l = n; l >= 1; l--) {
        const int64_t h = hs[l - 1], w = ws[l - 1], h0 = hs[l], w0 = ws[l];
        int here[4] = {-1, -1, -1, -1};
        for (int o = 1; o <= 3; o++) {
            const int64_t y0 = o >= 2 ? h0 : 0, x0 = o & 1 ? w0 : 0;
            const int64_t bh = o >= 2 ? h - h0 : h0, bw = o & 1 ? w - w0 : w0;
            const int ix = (l - 1) * 4 + o;
            wl_band b = {l, o, y0, x0, bh, bw, prev[o], -1, -1, p->group_of[ix], p->band_w[ix], p->theta[ix],
                         p->delta[ix]};
            if (o == 2) b.sib1 = here[1];
            if (o == 3) { b.sib1 = here[1]; b.sib2 = here[2]; }
            here[o] = nb;
            bands[nb++] = b;
        }
        for (int o = 1; o <= 3; o++) prev[o] = here[o];
    }
    return nb;
}

int wl_bands(const wl_model *m, int64_t H, int64_t W, int32_t *out, int maxbands) {
    if (H < 1 || W < 1) WL_FAIL(WL_ERR_ARG);
    wl_band b[WL_MAX_BANDS];
    const int nb = wl_layout(m, H, W, b);
    if (nb > maxbands) WL_FAIL(WL_ERR_ARG);
    for (int i = 0; i < nb; i++) {
        int32_t *o = out + 6 * i;
        o[0] = b[i].level; o[1] = b[i].orient; o[2] = (int32_t)b[i].y0; o[3] = (int32_t)b[i].x0;
        o[4] = (int32_t)b[i].h; o[5] = (int32_t)b[i].w;
    }
    return nb;
}
