/* The encoder: each plane's codes (fc_quant.c) under its stencil (fc_choose.c), residual
 * tokens in fine context buckets, contexts clustered and their tables, rANS, and the stream
 * (docs/fastcode.md). Every element is verified as the decoder (fc_decode.c) reconstructs
 * it; those that miss the bound go to the exact fallback list. */
#include "fc_codec.h"

typedef struct {
    uint8_t *tok, *bres, *bval, *csym;
    int64_t nval, ncls;
    uint32_t *hres, *hval;
    uint32_t chist[FC_NCLS_CTX][3];
    bw_t extra;
    int64_t *fb;
    int64_t nfb, fbcap;
} encbuf_t;

static int cmp_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int push_fb(encbuf_t *e, int64_t i) {
    if (e->nfb == e->fbcap) {
        int64_t cap = e->fbcap ? 2 * e->fbcap : 1024;
        int64_t *p = realloc(e->fb, (size_t)cap * sizeof(int64_t));
        if (!p) return FC_ERR_NOMEM;
        e->fb = p; e->fbcap = cap;
    }
    e->fb[e->nfb++] = i;
    return 0;
}

/* One row of pass 1: residual tokens, fine context buckets, histograms, raw low bits.
 * pk: 0 none, 1 Lorenzo, 2 (W+N)/2, 3 W (first row). Mirrors dec_row_body. */
FC_INLINE void enc_row_body(encbuf_t *e, const int pk, const int has_cls, const int want_val, int64_t W,
                            const uint64_t *Qp, uint64_t *Qc, const uint32_t *Mp, uint32_t *Mc, const uint32_t *Vp,
                            uint32_t *Vc, const uint8_t *Cp, uint8_t *Cc, const uint8_t *st, const uint8_t *cls) {
    int64_t nval = e->nval, ncls = e->ncls;
    uint8_t *const tokb = e->tok, *const bres = e->bres, *const bval = e->bval, *const csym = e->csym;
    uint32_t *const hres = e->hres, *const hval = e->hval;
    bw_t bw = e->extra;
    uint64_t qW = (pk == 1 || pk == 2) ? Qp[0] : 0, qNW = qW;
    uint32_t mW = 0, mNW = 0, mN = Mp[1];
    uint32_t vW = 0, vNW = 0, vN = want_val ? Vp[1] : 0;
    int cW = 0;
    for (int64_t j = 0; j < W; j++) {
        const uint64_t qN = (pk == 1 || pk == 2) ? Qp[j] : 0;
        const uint64_t pr = stencil(pk, qW, qN, qNW);
        const uint32_t mNE = Mp[j + 2];
        const uint32_t vNE = want_val ? Vp[j + 2] : 0;
        const uint8_t s = st[j];
        uint64_t q = pr;
        uint32_t m = 0;
        int c = 0;
        if (s != ST_MASKED) {
            c = 1;
            if (has_cls) {
                c = cls[j];
                const int cc = cW * 3 + Cp[j + 1];
                csym[ncls++] = (uint8_t)(c | (cc << 2));
                e->chist[cc][c]++;
            }
            if (c) {
                q = s == ST_FALLBACK ? pr : Qc[j];
                const uint64_t z = zigzag(q - pr);
                int nx;
                uint64_t ex;
                const int t = tok_of(z, &nx, &ex);
                const int br = fine_bucket(2 * mW + mN + ((mNW + mNE) >> 1));
                tokb[nval] = (uint8_t)t;
                bres[nval] = (uint8_t)br;
                hres[br * FC_NTOK + t]++;
                if (want_val) {
                    const int bv = fine_bucket(vW + vN + ((vNW + vNE) >> 1));
                    bval[nval] = (uint8_t)bv;
                    hval[bv * FC_NTOK + t]++;
                }
                nval++;
                if (nx) bw_put64(&bw, ex, nx);
                m = z < MAG_SAT ? (uint32_t)z : MAG_SAT;
            }
        }
        Qc[j] = q;
        Mc[j + 1] = m;
        if (has_cls) Cc[j + 1] = (uint8_t)c;
        uint32_t v = 0;
        if (want_val) { v = sat_abs(q, VAL_SAT); Vc[j + 1] = v; }
        qNW = qN; qW = q;
        mNW = mN; mN = mNE; mW = m;
        vNW = vN; vN = vNE; vW = v;
        cW = c;
    }
    e->nval = nval;
    e->ncls = ncls;
    e->extra = bw;
}

static void enc_row(encbuf_t *e, int pk, int has_cls, int want_val, int64_t y, int64_t W, uint64_t *Qp, uint64_t *Qc,
                    uint32_t *Mp, uint32_t *Mc, uint32_t *Vp, uint32_t *Vc, uint8_t *Cp, uint8_t *Cc,
                    const uint8_t *st, const uint8_t *cls) {
    if (y == 0 && pk) pk = 3;
#define ENC_PK(HC, WV) \
        switch (pk) { \
        case 0: enc_row_body(e, 0, HC, WV, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, st, cls); return; \
        case 1: enc_row_body(e, 1, HC, WV, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, st, cls); return; \
        case 2: enc_row_body(e, 2, HC, WV, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, st, cls); return; \
        default: enc_row_body(e, 3, HC, WV, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, st, cls); return; }
    if (!has_cls && !want_val) { ENC_PK(0, 0) }
    if (has_cls && !want_val) { ENC_PK(1, 0) }
    if (!has_cls && want_val) { ENC_PK(0, 1) }
    ENC_PK(1, 1)
#undef ENC_PK
}

/* FC_ABS on floats (or with a prediction): SZ-style. The predictor works on the decoder's
 * reconstruction e (residual to the base = network prediction or 0) and the code is
 * k = rint((x - base - pe) / step); e = pe + step * k. No quantisation noise enters the
 * predictor where k = 0, which is what keeps smooth fields cheap. All in float64 with IEEE
 * basic operations; the decoder repeats them exactly. */
typedef struct {
    const double *xr, *base, *Rp;
    double *Rc;
    const uint32_t *Mp;
    uint32_t *Mc;
    const uint8_t *mrow;
    int64_t off;
    double step, vb;
    double rW, rNW;
    uint32_t mW, mNW, mN;
    int pk;
    int precast; /* verify base + e before the cast (planes coded against the caller's prediction) */
} elane_t;

FC_INLINE void lane_start(const int pk, elane_t *L) {
    L->rW = L->rNW = (pk == 1 || pk == 2) ? L->Rp[0] : 0.0;
    L->mW = L->mNW = 0;
    L->mN = L->Mp[1];
}

FC_INLINE void enc_sz_elem(encbuf_t *e, int64_t *nval, bw_t *bw, const int dt, elane_t *L, int64_t j,
                           uint8_t lanebit, int *err) {
    const double step = L->step, vb = L->vb;
    const int pk = L->pk;
    const double rN = (pk == 1 || pk == 2) ? L->Rp[j] : 0.0;
    const double pe = stencil_f(pk, L->rW, rN, L->rNW);
    const uint32_t mNE = L->Mp[j + 2];
    double eh = pe;
    uint32_t m = 0;
    if (!L->mrow[j]) {
        const double x = L->xr[j], b0 = L->base ? L->base[j] : 0.0;
        const double t = ((x - b0) - pe) / step;
        double k = 0.0;
        int ok = 0;
        if (fabs(t) <= FC_MAX_ABS_Q) {
            k = rint(t);
            const double v = b0 + (pe + step * k);
            ok = fabs((L->precast ? v : cast_f(v, dt)) - x) <= vb;
            if (FC_UNLIKELY(!ok)) {
                for (int a = -1; a <= 1 && !ok; a += 2) {
                    const double v2 = b0 + (pe + step * (k + a));
                    if (fabs((L->precast ? v2 : cast_f(v2, dt)) - x) <= vb) { k += a; ok = 1; }
                }
            }
        }
        if (FC_UNLIKELY(!ok) && push_fb(e, L->off + j)) *err = 1;
        const uint64_t z = zigzag((uint64_t)(int64_t)k);
        int nx;
        uint64_t ex;
        const int t2 = tok_of(z, &nx, &ex);
        const int br = fine_bucket(2 * L->mW + L->mN + ((L->mNW + mNE) >> 1));
        e->tok[*nval] = (uint8_t)t2;
        e->bres[*nval] = (uint8_t)(br | lanebit);
        e->hres[br * FC_NTOK + t2]++;
        (*nval)++;
        if (nx) bw_put64(bw, ex, nx);
        eh = pe + step * k;
        m = z < MAG_SAT ? (uint32_t)z : MAG_SAT;
    }
    L->Rc[j] = eh;
    L->Mc[j + 1] = m;
    L->rNW = rN; L->rW = eh;
    L->mNW = L->mN; L->mN = mNE; L->mW = m;
}

/* FC_ABS on floats (or with a prediction): SZ-style. The predictor works on the decoder's
 * reconstruction e (residual to the base = network prediction or 0) and the code is
 * k = rint((x - base - pe) / step); e = pe + step * k. No quantisation noise enters the
 * predictor where k = 0, which keeps smooth fields cheap. All in float64 with IEEE basic
 * operations; the decoder repeats them exactly. Two lanes (the upper and lower half of the
 * plane's rows) alternate element by element, each with its own rANS state, so that the
 * decoder runs two independent dependency chains. */
FC_INLINE void enc_rows_sz_body(encbuf_t *e, const int dt, const int two, int64_t W, elane_t A,
                                elane_t B, int *err) {
    int64_t nval = e->nval;
    bw_t bw = e->extra;
    lane_start(A.pk, &A);
    if (two) lane_start(B.pk, &B);
    for (int64_t j = 0; j < W; j++) {
        enc_sz_elem(e, &nval, &bw, dt, &A, j, 0, err);
        if (two) enc_sz_elem(e, &nval, &bw, dt, &B, j, 0x80, err);
    }
    e->nval = nval;
    e->extra = bw;
}

/* dt: the type the elements are verified in (FC_F16 for float16 held as float32) */
static int enc_rows_sz(encbuf_t *e, int dt, int64_t r, int two, int64_t W, elane_t *A, elane_t *B) {
    int err = 0;
    elane_t a = *A, b = *B;
    if (r == 0 && a.pk) a.pk = 3;
    if (r == 0 && b.pk) b.pk = 3;
#define ENC_SZ(TW) \
    if (dt == FC_F16) enc_rows_sz_body(e, FC_F16, TW, W, a, b, &err); \
    else if (dt == FC_F32) enc_rows_sz_body(e, FC_F32, TW, W, a, b, &err); \
    else if (dt == FC_F64) enc_rows_sz_body(e, FC_F64, TW, W, a, b, &err); \
    else enc_rows_sz_body(e, dt, TW, W, a, b, &err);
    if (two) { ENC_SZ(1) } else { ENC_SZ(0) }
#undef ENC_SZ
    return err ? FC_ERR_NOMEM : 0;
}

static void load_row_f(const void *xb, int dt, int64_t off, int64_t W, double *xr) {
    if (dt == FC_F32) { const float *x = (const float *)xb + off; for (int64_t j = 0; j < W; j++) xr[j] = x[j]; }
    else if (dt == FC_F64) memcpy(xr, (const double *)xb + off, sizeof(double) * (size_t)W);
    else /* a 64-bit integer float64 cannot hold exactly becomes NaN: it fails verification, stored exactly */
        for (int64_t j = 0; j < W; j++) xr[j] = int_exact(xb, off + j, dt) ? load_f(xb, off + j, dt) : NAN;
}

static double plane_absmax(const void *xb, int dt, int64_t i0, int64_t n, const uint8_t *mask) {
    double xmax = 0;
    if (!mask && dt == FC_F32) {
        const float *x = (const float *)xb + i0;
        float m = 0;
        for (int64_t i = 0; i < n; i++) { const float a = fabsf(x[i]); m = (a > m && a <= FLT_MAX) ? a : m; }
        return m;
    }
    for (int64_t i = i0; i < i0 + n; i++) {
        if (mask && ((mask[i >> 3] >> (7 - (i & 7))) & 1)) continue;
        const double a = fabs(load_f(xb, i, dt));
        if (a > xmax && a <= DBL_MAX) xmax = a;
    }
    return xmax;
}

static int precision_for(int64_t nsym) { (void)nsym; return FC_PREC; }

static float round_down_f32(double v) {
    float f = (float)v;
    if ((double)f > v) f = nextafterf(f, 0.0f);
    return f;
}

/* ------------------------------------------------------------------------------------ */
/* fc_encode in phases: quantiser, buffers, the planes (pass 1: tokens, contexts, raw     */
/* bits, fallbacks), tables, rANS (backwards), the stream                                 */

typedef struct {
    const void *xb;
    const uint8_t *mask;
    const double *pred;
    int dtype, allowed;
    int64_t P, H, W, n;
    int sz;       /* abs on floats (or with a prediction): SZ-style lanes */
    int want_val; /* value-magnitude contexts are a candidate */
    int has_cls;  /* pwrel with mixed signs/zeros: class symbols */
    quant_t q;
    double *step2, *vb2; /* abs floats: per plane without the prediction, then with it */
    encbuf_t e;
    uint64_t *Qp, *Qc;
    double *rowsd;
    uint32_t *rows32, *lanebuf32;
    uint8_t *rows8, *mrow2, *preds;
    int64_t npk[4]; /* planes per stencil, and planes coded against the prediction */
} enc_t;

typedef struct {
    uint8_t ctxmap[FC_NFINE];
    int nctx, kind, prec;
    ftab_t *tabs;
    uint8_t *tbuf;
    bw_t tw;
    uint16_t *words;
    const uint16_t *wp; /* the rANS words, wp[0 .. nwords) */
    size_t nwords;
} entropy_t;

/* The quantiser for the call's mode and bound: integer abs with a bound below 1 becomes
 * lossless; abs on floats gets each plane's step and verification bound, without and
 * (with a prediction) with the caller's half steps. */
static int enc_quantiser(enc_t *c, int mode, double eb, const double *half_step, const double *eb_verify,
                         int flags) {
    quant_t *q = &c->q;
    const int dtype = c->dtype, isfloat = dtype == FC_F32 || dtype == FC_F64;
    const int64_t P = c->P, H = c->H, W = c->W;
    q->mode = mode; q->dtype = dtype; q->isfloat = isfloat; q->eb = eb; q->pred = c->pred; q->uses_pred = 0;
    q->vdt = (flags & FC_VERIFY_F16) ? FC_F16 : dtype;
    q->dither = !(flags & FC_NO_DITHER);
    q->uniform_cls = 1;
    int rc;
    if (mode == FC_ABS && !isfloat && !c->pred) {
        if (eb < 1) { mode = q->mode = FC_LOSSLESS; }
        else { q->intabs = 1; q->T = eb >= 4.6e18 ? (uint64_t)4.6e18 : (uint64_t)floor(eb); }
    }
    if (mode == FC_PWREL) { pwrel_params(q, eb); if ((rc = pwrel_cache(q))) return rc; }
    if (mode == FC_POISSON) {
        if (!(eb > 0x1p-12 && eb < 0x1p20)) return FC_ERR_ARG;
        if ((rc = poisson_params(q, eb, poisson_R(c->xb, dtype, c->n, c->mask, eb)))) return rc;
    }
    if (mode != FC_ABS || q->intabs) c->allowed &= FC_ALLOW_PLAIN;
    if (mode == FC_ABS && !q->intabs) {
        q->step = malloc(sizeof(double) * (size_t)(P ? P : 1));
        q->vb = malloc(sizeof(double) * (size_t)(P ? P : 1));
        c->step2 = malloc(sizeof(double) * (size_t)(2 * P + 1));
        c->vb2 = malloc(sizeof(double) * (size_t)(2 * P + 1));
        if (!q->step || !q->vb || !c->step2 || !c->vb2) return FC_ERR_NOMEM;
        for (int64_t p = 0; p < P; p++) {
            for (int on = 0; on < 2; on++) {
                double h, vb;
                if (on && !c->pred) { h = vb = 0.0; }
                else if (on) { h = half_step[p]; vb = eb_verify[p]; }
                else { /* float rounding reserve of the element type (saecodec.bound._targets) */
                    const double xmax = plane_absmax(c->xb, dtype, p * H * W, H * W, c->mask);
                    if (q->vdt == FC_F16) h = eb - 0x1p-10 * (xmax + eb) - 0x1p-24;
                    else if (dtype == FC_F32) h = eb - 0x1p-23 * (xmax + eb) - 0x1p-149;
                    else if (dtype == FC_F64) h = eb - 0x1p-52 * (xmax + eb) - 0x1p-1074;
                    else h = floor(eb) + 0.5 - 1e-6 - 0x1p-46 * xmax;
                    vb = dtype == FC_F64 ? eb * (1 - 0x1p-50) : eb;
                }
                float s = round_down_f32(2.0 * h);
                c->step2[on * P + p] = (h > 0 && s > FLT_MIN && isfinite(s)) ? (double)s : 0.0;
                c->vb2[on * P + p] = vb;
            }
            q->step[p] = c->step2[p];
            q->vb[p] = c->vb2[p];
        }
        if (c->pred) {
            q->plane_pred = calloc((size_t)(P ? P : 1), 1);
            if (!q->plane_pred) return FC_ERR_NOMEM;
        }
    }
    c->sz = mode == FC_ABS && !q->intabs;
    c->want_val = mode == FC_LOSSLESS || mode == FC_POISSON || q->intabs;
    return 0;
}

static int enc_buffers(enc_t *c) {
    const int64_t W = c->W, n = c->n, P = c->P;
    encbuf_t *e = &c->e;
    c->rowsd = malloc(sizeof(double) * (size_t)W * 6);
    c->lanebuf32 = calloc((size_t)(W + 2) * 4, sizeof(uint32_t));
    c->mrow2 = malloc((size_t)W + 8);
    c->Qp = malloc(sizeof(uint64_t) * (size_t)W);
    c->Qc = malloc(sizeof(uint64_t) * (size_t)W);
    c->rows32 = calloc((size_t)(W + 2) * 4, sizeof(uint32_t));
    c->rows8 = calloc((size_t)(W + 2) * 6, 1);
    c->preds = malloc((size_t)(P ? P : 1));
    e->tok = malloc((size_t)(n ? n : 1));
    e->bres = malloc((size_t)(n ? n : 1));
    e->bval = c->want_val ? malloc((size_t)(n ? n : 1)) : NULL;
    e->csym = c->q.mode == FC_PWREL ? malloc((size_t)(n ? n : 1)) : NULL;
    e->hres = calloc(FC_NFINE * FC_NTOK, sizeof(uint32_t));
    e->hval = calloc(FC_NFINE * FC_NTOK, sizeof(uint32_t));
    size_t extra_cap = (size_t)n * 8 + 64;
    e->extra.buf = malloc(extra_cap);
    e->extra.cap = extra_cap;
    if (!c->rowsd || !c->lanebuf32 || !c->mrow2 || !c->Qp || !c->Qc || !c->rows32 || !c->rows8 || !c->preds ||
        !e->tok || !e->bres || (c->want_val && !e->bval) || (c->q.mode == FC_PWREL && !e->csym) || !e->hres ||
        !e->hval || !e->extra.buf)
        return FC_ERR_NOMEM;
    return 0;
}

/* pwrel: are the classes (zero, positive, negative) uniform? One pass over the signs. */
static void enc_classes(enc_t *c) {
    if (c->q.mode != FC_PWREL) return;
    int seen[3] = {0, 0, 0};
    for (int64_t i = 0; i < c->n; i++) {
        if (c->mask && ((c->mask[i >> 3] >> (7 - (i & 7))) & 1)) continue;
        double x = load_f(c->xb, i, c->dtype);
        seen[x == 0 ? 0 : (x < 0 ? 2 : 1)] = 1; /* NaN counts as positive (fallback) */
    }
    int kinds = seen[0] + seen[1] + seen[2];
    c->q.uniform_cls = kinds > 1 ? 0 : seen[2] ? 2 : seen[0] ? 3 : 1;
}

/* Pass 1 for abs on floats: two lanes = a pair of planes in lockstep, or the upper and
 * lower half of a last, unpaired plane. */
static int enc_planes_sz(enc_t *c) {
    quant_t *q = &c->q;
    const int64_t P = c->P, H = c->H, W = c->W;
    double *Rp = c->rowsd, *Rc = c->rowsd + W, *Rp2 = c->rowsd + 2 * W, *Rc2 = c->rowsd + 3 * W;
    double *xr = c->rowsd + 4 * W, *xr2 = c->rowsd + 5 * W;
    uint32_t *rows32 = c->rows32, *lanebuf32 = c->lanebuf32;
    uint8_t *st = c->rows8 + 2 * (W + 2), *cls = c->rows8 + 3 * (W + 2);
    uint8_t *mrow = c->rows8 + 4 * (W + 2), *st2 = c->rows8 + 5 * (W + 2), *mrow2 = c->mrow2;
    int rc;
    for (int64_t p = 0; p < P;) {
        const int pair = p + 1 < P;
        const int kA = choose_plane(q, c->xb, c->mask, p, P, H, W, c->allowed, c->step2, c->vb2, c->Qp, c->Qc, st,
                                    st2, cls, mrow);
        const int kB = pair ? choose_plane(q, c->xb, c->mask, p + 1, P, H, W, c->allowed, c->step2, c->vb2, c->Qp,
                                           c->Qc, st, st2, cls, mrow)
                            : kA;
        const int pk = kA % 3, pkB = kB % 3;
        c->preds[p] = (uint8_t)pk;
        c->npk[pk]++;
        if (kA >= 3) { q->plane_pred[p] = 1; q->uses_pred = 1; c->npk[3]++; }
        if (pair) {
            c->preds[p + 1] = (uint8_t)pkB;
            c->npk[pkB]++;
            if (kB >= 3) { q->plane_pred[p + 1] = 1; q->uses_pred = 1; c->npk[3]++; }
        }
        memset(rows32, 0, sizeof(uint32_t) * (size_t)(W + 2) * 4);
        memset(lanebuf32, 0, sizeof(uint32_t) * (size_t)(W + 2) * 4);
        const int64_t hA = pair ? H : H >= FC_SPLIT_ROWS ? (H + 1) / 2 : H, hB = pair ? H : H - hA;
        const int64_t baseA = p * H * W, baseB = pair ? (p + 1) * H * W : (p * H + hA) * W;
        const int onA = kA >= 3, onB = kB >= 3;
        elane_t A = {xr, NULL, Rp, Rc, rows32, rows32 + (W + 2), mrow, 0, q->step[p], q->vb[p], 0, 0, 0, 0, 0, pk, onA};
        elane_t B = {xr2, NULL, Rp2, Rc2, lanebuf32, lanebuf32 + (W + 2), mrow2, 0,
                     q->step[pair ? p + 1 : p], q->vb[pair ? p + 1 : p], 0, 0, 0, 0, 0, pkB, onB};
        for (int64_t r = 0; r < hA; r++) {
            const int two = r < hB;
            A.off = baseA + r * W;
            expand_mask(c->mask, A.off, W, mrow);
            load_row_f(c->xb, c->dtype, A.off, W, xr);
            A.base = onA ? c->pred + A.off : NULL;
            if (two) {
                B.off = baseB + r * W;
                expand_mask(c->mask, B.off, W, mrow2);
                load_row_f(c->xb, c->dtype, B.off, W, xr2);
                B.base = onB ? c->pred + B.off : NULL;
            }
            if ((rc = enc_rows_sz(&c->e, q->vdt, r, two, W, &A, &B))) return rc;
            double *td = (double *)A.Rp; A.Rp = A.Rc; A.Rc = td;
            uint32_t *t32 = (uint32_t *)A.Mp; A.Mp = A.Mc; A.Mc = t32; A.Mc[0] = 0;
            td = (double *)B.Rp; B.Rp = B.Rc; B.Rc = td;
            t32 = (uint32_t *)B.Mp; B.Mp = B.Mc; B.Mc = t32; B.Mc[0] = 0;
        }
        p += pair ? 2 : 1;
    }
    return 0;
}

/* Pass 1 for the integer codes (lossless, integer abs, pwrel, poisson): row by row. */
static int enc_planes_codes(enc_t *c) {
    quant_t *q = &c->q;
    const int64_t P = c->P, H = c->H, W = c->W;
    uint64_t *Qp = c->Qp, *Qc = c->Qc;
    uint32_t *rows32 = c->rows32;
    uint32_t *Mp = rows32, *Mc = rows32 + (W + 2), *Vp = rows32 + 2 * (W + 2), *Vc = rows32 + 3 * (W + 2);
    uint8_t *rows8 = c->rows8;
    uint8_t *Cp = rows8, *Cc = rows8 + (W + 2), *st = rows8 + 2 * (W + 2), *cls = rows8 + 3 * (W + 2);
    uint8_t *mrow = rows8 + 4 * (W + 2), *st2 = rows8 + 5 * (W + 2);
    int rc = 0;
    for (int64_t p = 0; p < P; p++) {
        const int pk = choose_plane(q, c->xb, c->mask, p, P, H, W, c->allowed, NULL, NULL, Qp, Qc, st, st2, cls, mrow);
        c->preds[p] = (uint8_t)pk;
        c->npk[pk]++;
        memset(rows32, 0, sizeof(uint32_t) * (size_t)(W + 2) * 4);
        memset(Cp, 0, (size_t)(W + 2) * 2);
        for (int64_t y = 0; y < H; y++) {
            const int64_t off = (p * H + y) * W;
            expand_mask(c->mask, off, W, mrow);
            quant_row(q, c->xb, off, W, p, mrow, Qc, st, cls);
            for (int64_t j = 0; j < W; j++)
                if (st[j] == ST_FALLBACK && (rc = push_fb(&c->e, off + j))) goto done;
            if (q->uniform_cls == 3) /* all zero: no value symbols */
                for (int64_t j = 0; j < W; j++) if (st[j] == ST_ZERO) st[j] = ST_MASKED;
            enc_row(&c->e, pk, c->has_cls, c->want_val, y, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, st, cls);
            uint64_t *tq = Qp; Qp = Qc; Qc = tq;
            uint32_t *t32 = Mp; Mp = Mc; Mc = t32;
            t32 = Vp; Vp = Vc; Vc = t32;
            uint8_t *t8 = Cp; Cp = Cc; Cc = t8;
            Mc[0] = 0; Vc[0] = 0; Cc[0] = 0;
        }
    }
done:
    c->Qp = Qp; c->Qc = Qc; /* swapped: the buffers stay owned */
    return rc;
}

/* Contexts (fine buckets clustered, on residual or value magnitudes, whichever is cheaper)
 * and their frequency tables, serialised. */
static int enc_tables(enc_t *c, entropy_t *t) {
    encbuf_t *e = &c->e;
    double bits_res = 0, bits_val = 1e300;
    t->kind = 0;
    t->nctx = cluster_buckets(e->hres, FC_MAX_CTX, t->ctxmap, &bits_res);
    if (c->want_val) {
        uint8_t map2[FC_NFINE];
        int n2 = cluster_buckets(e->hval, FC_MAX_CTX, map2, &bits_val);
        if (bits_val < bits_res) { t->kind = 1; t->nctx = n2; memcpy(t->ctxmap, map2, FC_NFINE); }
    }
    const int nctx = t->nctx;
    t->prec = precision_for(e->nval + e->ncls);
    t->tabs = calloc((size_t)(nctx + FC_NCLS_CTX), sizeof(ftab_t));
    size_t tcap = (size_t)(nctx + FC_NCLS_CTX) * (FC_NTOK * 20 + 64) / 8 + 64;
    t->tbuf = malloc(tcap);
    if (!t->tabs || !t->tbuf) return FC_ERR_NOMEM;
    t->tw = (bw_t){t->tbuf, 0, tcap, 0, 0, 0};
    uint32_t cnt[FC_NTOK];
    const uint32_t *h = t->kind ? e->hval : e->hres;
    for (int k = 0; k < nctx; k++) {
        memset(cnt, 0, sizeof cnt);
        for (int b = 0; b < FC_NFINE; b++)
            if (t->ctxmap[b] == k) for (int s = 0; s < FC_NTOK; s++) cnt[s] += h[b * FC_NTOK + s];
        ftab_build(cnt, FC_NTOK, t->prec, &t->tabs[k], &t->tw);
    }
    if (c->has_cls)
        for (int k = 0; k < FC_NCLS_CTX; k++) ftab_build(e->chist[k], 3, t->prec, &t->tabs[nctx + k], &t->tw);
    bw_finish(&t->tw);
    return 0;
}

/* rANS, backwards: one state (two for the abs-float lanes), its final states first. */
static int enc_rans(const enc_t *c, entropy_t *t) {
    const encbuf_t *e = &c->e;
    const int prec = t->prec, nctx = t->nctx;
    size_t wcap = (size_t)(e->nval + e->ncls) + 6;
    t->words = malloc(wcap * sizeof(uint16_t));
    if (!t->words) return FC_ERR_NOMEM;
    uint16_t *wp = t->words + wcap;
    uint32_t xs = RANS_L, xs2 = RANS_L; /* lane B's state (abs floats) */
    const uint8_t *bsel = t->kind ? e->bval : e->bres;
    if (c->has_cls) {
        int64_t v = e->nval;
        for (int64_t k = e->ncls - 1; k >= 0; k--) {
            const int cl = e->csym[k] & 3, cc = e->csym[k] >> 2;
            if (cl) {
                v--;
                const ftab_t *tab = &t->tabs[t->ctxmap[bsel[v]]];
                rans_put_rcp(&xs, &wp, tab, e->tok[v], prec);
            }
            const ftab_t *tab = &t->tabs[nctx + cc];
            rans_put_rcp(&xs, &wp, tab, cl, prec);
        }
    } else if (c->sz) {
        for (int64_t v = e->nval - 1; v >= 0; v--) {
            const ftab_t *tab = &t->tabs[t->ctxmap[e->bres[v] & 63]];
            rans_put_rcp(e->bres[v] & 0x80 ? &xs2 : &xs, &wp, tab, e->tok[v], prec);
        }
    } else {
        for (int64_t v = e->nval - 1; v >= 0; v--) {
            const ftab_t *tab = &t->tabs[t->ctxmap[bsel[v]]];
            rans_put_rcp(&xs, &wp, tab, e->tok[v], prec);
        }
    }
    *--wp = (uint16_t)(xs2 & 0xffff);
    *--wp = (uint16_t)(xs2 >> 16);
    *--wp = (uint16_t)(xs & 0xffff);
    *--wp = (uint16_t)(xs >> 16);
    t->wp = wp;
    t->nwords = (size_t)(t->words + wcap - wp);
    return 0;
}

/* The stream (docs/fastcode.md): header, mode parameters, stencils, planes on the
 * prediction, contexts, tables, rANS words, raw bits, fallbacks. */
static int enc_assemble(enc_t *c, const entropy_t *t, uint8_t **out, size_t *size, fc_stats *stats) {
    const quant_t *q = &c->q;
    encbuf_t *e = &c->e;
    const int64_t P = c->P, H = c->H, W = c->W;
    const int mode = q->mode, esz = dt_size(c->dtype), nctx = t->nctx;
    const size_t nwords = t->nwords;
    size_t cap = 128 + (size_t)P * 4 + (size_t)P / 4 + (size_t)P / 8 + 2 + FC_NFINE + t->tw.pos + 2 * nwords +
                 e->extra.pos + (size_t)e->nfb * (10 + esz) + 64;
    uint8_t *res = malloc(cap);
    if (!res) return FC_ERR_NOMEM;
    bytes_t o = {res, 0, cap, 0};
    by_u8(&o, FC_VERSION);
    by_u8(&o, (uint8_t)mode);
    by_u8(&o, (uint8_t)(t->kind | (q->uniform_cls << 1) | (q->uses_pred ? 8 : 0) | (q->intabs ? 16 : 0) |
                        (q->dither ? 32 : 0)));
    by_u8(&o, (uint8_t)t->prec);
    by_u8(&o, (uint8_t)c->dtype);
    by_varint(&o, (uint64_t)P); by_varint(&o, (uint64_t)H); by_varint(&o, (uint64_t)W);
    if (mode == FC_ABS && q->intabs) by_varint(&o, q->T);
    else if (mode == FC_ABS) {
        int uniform = 1;
        for (int64_t p = 1; p < P; p++) if (q->step[p] != q->step[0]) uniform = 0;
        by_u8(&o, (uint8_t)uniform);
        for (int64_t p = 0; p < (uniform ? (P ? 1 : 0) : P); p++) { float s = (float)q->step[p]; by_put(&o, &s, 4); }
    } else if (mode == FC_PWREL) by_put(&o, &q->s, 8);
    else if (mode == FC_POISSON) { by_put(&o, &q->eb, 8); by_varint(&o, (uint64_t)(q->R - q->r0)); }
    for (int64_t p = 0; p < P; p += 4) {
        uint8_t b = 0;
        for (int k = 0; k < 4 && p + k < P; k++) b |= (uint8_t)(c->preds[p + k] << (2 * k));
        by_u8(&o, b);
    }
    for (int64_t p = 0; q->uses_pred && p < P; p += 8) { /* planes coded against the prediction */
        uint8_t b = 0;
        for (int k = 0; k < 8 && p + k < P; k++) b |= (uint8_t)(q->plane_pred[p + k] << k);
        by_u8(&o, b);
    }
    by_u8(&o, (uint8_t)nctx);
    for (int k = 1; k < nctx; k++) { int b = 0; while (t->ctxmap[b] < k) b++; by_u8(&o, (uint8_t)b); }
    by_varint(&o, t->tw.pos); by_put(&o, t->tbuf, t->tw.pos);
    size_t table_end = o.pos;
    by_varint(&o, nwords);
    for (size_t k = 0; k < nwords; k++) { uint16_t wv = t->wp[k]; by_put(&o, &wv, 2); }
    size_t rans_end = o.pos;
    by_varint(&o, e->extra.pos); by_put(&o, e->extra.buf, e->extra.pos);
    size_t extra_end = o.pos;
    if (e->nfb > 1) qsort(e->fb, (size_t)e->nfb, sizeof(int64_t), cmp_i64); /* lanes push out of order */
    by_varint(&o, (uint64_t)e->nfb);
    for (int64_t k = 0; k < e->nfb; k++) by_varint(&o, (uint64_t)(e->fb[k] - (k ? e->fb[k - 1] + 1 : 0)));
    for (int64_t k = 0; k < e->nfb; k++) by_put(&o, (const uint8_t *)c->xb + e->fb[k] * esz, (size_t)esz);
    if (o.err) { free(res); return FC_ERR_NOMEM; }
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->n_fallback = e->nfb; stats->n_coded = e->nval; stats->table_bytes = (int64_t)table_end;
        stats->rans_bytes = (int64_t)(rans_end - table_end); stats->extra_bytes = (int64_t)(extra_end - rans_end);
        stats->fallback_bytes = (int64_t)(o.pos - extra_end); stats->n_ctx = nctx; stats->ctx_kind = t->kind;
        stats->precision = t->prec;
        for (int k = 0; k < 4; k++) stats->predictors[k] = (int32_t)c->npk[k];
    }
    *out = res;
    *size = o.pos;
    return 0;
}

int64_t fc_encode(const void *xb, int dtype, int64_t P, int64_t H, int64_t W, const uint8_t *mask, int mode,
                  double eb, const double *half_step, const double *eb_verify, const double *pred, int allowed,
                  int flags, uint8_t **out, fc_stats *stats) {
    *out = NULL;
    if (check_shape(dtype, P, H, W)) return FC_ERR_ARG;
    const int isfloat = dtype == FC_F32 || dtype == FC_F64;
    if (mode < FC_LOSSLESS || mode > FC_POISSON) return FC_ERR_ARG;
    if (mode == FC_LOSSLESS && isfloat) return FC_ERR_ARG;
    if (mode != FC_LOSSLESS && !(eb >= 0 && eb < 1e300)) return FC_ERR_ARG;
    if (pred && (mode != FC_ABS || !half_step || !eb_verify)) return FC_ERR_ARG;
    if ((flags & ~(FC_NO_DITHER | FC_VERIFY_F16)) || ((flags & FC_VERIFY_F16) && dtype != FC_F32)) return FC_ERR_ARG;
    if (allowed < 0 || allowed > FC_ALLOW_ALL) return FC_ERR_ARG;
    if (!allowed) allowed = FC_ALLOW_ALL;
    if (!pred) allowed &= FC_ALLOW_PLAIN;
    if (!allowed) return FC_ERR_ARG;
    enc_t c;
    memset(&c, 0, sizeof c);
    c.xb = xb; c.mask = mask; c.pred = pred; c.dtype = dtype; c.allowed = allowed;
    c.P = P; c.H = H; c.W = W; c.n = P * H * W;
    entropy_t t;
    memset(&t, 0, sizeof t);
    size_t size = 0;
    int rc;
    if ((rc = enc_quantiser(&c, mode, eb, half_step, eb_verify, flags))) goto done;
    if ((rc = enc_buffers(&c))) goto done;
    enc_classes(&c);
    c.has_cls = c.q.mode == FC_PWREL && c.q.uniform_cls == 0;
    if ((rc = c.sz ? enc_planes_sz(&c) : enc_planes_codes(&c))) goto done;
    bw_finish(&c.e.extra);
    if (c.e.extra.err) { rc = FC_ERR_NOMEM; goto done; }
    if ((rc = enc_tables(&c, &t)) || (rc = enc_rans(&c, &t)) || (rc = enc_assemble(&c, &t, out, &size, stats)))
        goto done;
done:
    free(t.tabs); free(t.tbuf); free(t.words);
    free(c.rowsd); free(c.lanebuf32); free(c.mrow2);
    free(c.Qp); free(c.Qc); free(c.rows32); free(c.rows8); free(c.preds); free(c.e.tok); free(c.e.bres);
    free(c.e.bval); free(c.e.csym); free(c.e.hres); free(c.e.hval); free(c.e.extra.buf); free(c.e.fb);
    free(c.step2); free(c.vb2);
    quant_free(&c.q);
    return rc ? rc : (int64_t)size;
}

void fc_free(void *p) { free(p); }
