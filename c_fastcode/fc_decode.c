/* The decoder: the stream's header, tables and rANS words (docs/fastcode.md), each
 * plane's codes under its stencil, their reconstruction (fc_quant.c), the fallbacks. It
 * repeats the encoder's (fc_encode.c) arithmetic exactly and decides nothing of its own;
 * anything a damaged stream can hold is FC_ERR_CORRUPT, never a read outside the input. */
#include "fc_codec.h"

static __thread int fc_fail_line;
int fc_last_fail_line(void) { return fc_fail_line; }
#define FAIL do { fc_fail_line = __LINE__; goto done; } while (0)

typedef struct {
    const uint8_t *w, *wend;
    uint32_t x;
    int err;
} rdec_t;

typedef struct {
    rdec_t rd;
    br_t br;
    const uint8_t *tok8;     /* per table 2^prec slots -> token */
    const uint32_t *finfo;   /* per table FC_NTOK entries: freq | start << 16 */
    uint32_t cb8[FC_NFINE];  /* fine bucket -> table offset in tok8 */
    uint32_t cbi[FC_NFINE];  /* fine bucket -> table offset in finfo */
    uint32_t x2;             /* the second lane's rANS state (abs floats) */
    int prec, nctx;
} dec_t;

/* one rANS symbol from table `tab` (never reads outside the word buffer) */
#define RANS_DEC(TOKOFF, INFOOFF, OUT) do { \
        const uint32_t slot_ = x & pmask; \
        const int t_ = tok8[(TOKOFF) + slot_]; \
        const uint32_t fi_ = finfo[(INFOOFF) + t_]; \
        x = (fi_ & 0xffff) * (x >> prec) + slot_ - (fi_ >> 16); \
        if (x < RANS_L) { \
            if (FC_LIKELY(wend - wp >= 2)) { uint16_t v_; memcpy(&v_, wp, 2); wp += 2; x = (x << 16) | v_; } \
            else { err = 1; x = (x << 16) | 1; } \
        } \
        OUT = t_; } while (0)

/* One row. pk: 0 none, 1 Lorenzo, 2 (W+N)/2, 3 W (first row of a predicted plane).
 * Neighbours roll through registers; the rANS state and bit reader live in locals. */
FC_INLINE void dec_row_body(dec_t *d, const int pk, const int has_cls, const int want_val, const int kind,
                            const int has_mask, int64_t W, const uint64_t *Qp, uint64_t *Qc, const uint32_t *Mp,
                            uint32_t *Mc, const uint32_t *Vp, uint32_t *Vc, const uint8_t *Cp, uint8_t *Cc,
                            const uint8_t *mrow) {
    const int prec = FC_PREC;
    const uint32_t pmask = (1u << prec) - 1;
    const uint8_t *const tok8 = d->tok8;
    const uint32_t *const finfo = d->finfo, *const cb8 = d->cb8, *const cbi = d->cbi;
    const uint32_t c8 = (uint32_t)d->nctx << prec, ci = (uint32_t)d->nctx * FC_NTOK;
    uint32_t x = d->rd.x;
    const uint8_t *wp = d->rd.w, *const wend = d->rd.wend;
    int err = 0;
    br_t br = d->br;
    uint64_t qW = (pk == 1 || pk == 2) ? Qp[0] : 0, qNW = qW;
    uint32_t mW = 0, mNW = 0, mN = Mp[1];
    uint32_t vW = 0, vNW = 0, vN = want_val ? Vp[1] : 0;
    int cW = 0;
    for (int64_t j = 0; j < W; j++) {
        const uint64_t qN = (pk == 1 || pk == 2) ? Qp[j] : 0;
        const uint64_t pr = stencil(pk, qW, qN, qNW);
        const uint32_t mNE = Mp[j + 2];
        const uint32_t vNE = want_val ? Vp[j + 2] : 0;
        uint64_t q = pr;
        uint32_t m = 0;
        int c = 0;
        if (!(has_mask && mrow[j])) {
            c = 1;
            if (has_cls) {
                const uint32_t cc = (uint32_t)(cW * 3 + Cp[j + 1]);
                RANS_DEC(c8 + (cc << prec), ci + cc * FC_NTOK, c);
                if (c > 2) { err = 1; c = 0; }
            }
            if (c) {
                const uint32_t a = kind ? vW + vN + ((vNW + vNE) >> 1) : 2 * mW + mN + ((mNW + mNE) >> 1);
                const int b = fine_bucket(a);
                int t;
                RANS_DEC(cb8[b], cbi[b], t);
                uint64_t z = (uint64_t)t;
                if (t >= 16) z = tok_value(t, br_get64(&br, tok_nextra(t)));
                q = pr + unzigzag(z);
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
    d->rd.x = x;
    d->rd.w = wp;
    d->rd.err |= err;
    d->br = br;
}

typedef struct {
    const double *base, *Rp;
    double *Rc;
    const uint32_t *Mp;
    uint32_t *Mc;
    const uint8_t *mrow;
    void *out;   /* element 0 of the row */
    double step;
    double rW, rNW;
    uint32_t mW, mNW, mN;
    uint32_t x;  /* this lane's rANS state */
    int pk;
} dlane_t;

FC_INLINE void dlane_start(const int pk, dlane_t *L) {
    L->rW = L->rNW = (pk == 1 || pk == 2) ? L->Rp[0] : 0.0;
    L->mW = L->mNW = 0;
    L->mN = L->Mp[1];
}

FC_INLINE void dec_sz_elem(const uint8_t *tok8, const uint32_t *finfo, const uint32_t *cb8, const uint32_t *cbi,
                           const uint8_t **wpp, const uint8_t *wend, int *errp, br_t *br, const int dt,
                           const int has_mask, dlane_t *L, int64_t j) {
    const int pk = L->pk;
    const int prec = FC_PREC;
    const double step = L->step;
    const uint32_t pmask = (1u << prec) - 1;
    const double rN = (pk == 1 || pk == 2) ? L->Rp[j] : 0.0;
    const double pe = stencil_f(pk, L->rW, rN, L->rNW);
    const uint32_t mNE = L->Mp[j + 2];
    double eh = pe;
    uint32_t m = 0;
    if (!(has_mask && L->mrow[j])) {
        const int b = fine_bucket(2 * L->mW + L->mN + ((L->mNW + mNE) >> 1));
        uint32_t x = L->x;
        const uint8_t *wp = *wpp;
        int err = 0, t;
        RANS_DEC(cb8[b], cbi[b], t);
        L->x = x;
        *wpp = wp;
        *errp |= err;
        uint64_t z = (uint64_t)t;
        if (t >= 16) z = tok_value(t, br_get64(br, tok_nextra(t)));
        eh = pe + step * (double)(int64_t)unzigzag(z);
        m = z < MAG_SAT ? (uint32_t)z : MAG_SAT;
        double v = (L->base ? L->base[j] : 0.0) + eh;
        /* cast_f without its NaN test (branch-free clamps): equal for every finite v; a NaN
         * can only arise where the encoder stored the element as a fallback */
        if (dt == FC_F32) {
            v = v > FLT_MAX ? FLT_MAX : v;
            v = v < -FLT_MAX ? -FLT_MAX : v;
            ((float *)L->out)[j] = (float)v;
        } else if (dt == FC_F64) {
            v = v > DBL_MAX ? DBL_MAX : v;
            v = v < -DBL_MAX ? -DBL_MAX : v;
            ((double *)L->out)[j] = v;
        } else store_f(L->out, j, dt, cast_f(v, dt));
    }
    L->Rc[j] = eh;
    L->Mc[j + 1] = m;
    L->rNW = rN; L->rW = eh;
    L->mNW = L->mN; L->mN = mNE; L->mW = m;
}

/* FC_ABS on floats: the decoder side of enc_rows_sz_body (two lanes, two rANS states) */
FC_INLINE void dec_rows_sz_body(dec_t *d, const int dt, const int has_mask, const int two, int64_t W,
                                dlane_t *Ap, dlane_t *Bp) {
    const uint8_t *const tok8 = d->tok8;
    const uint32_t *const finfo = d->finfo, *const cb8 = d->cb8, *const cbi = d->cbi;
    const uint8_t *wp = d->rd.w, *const wend = d->rd.wend;
    int err = 0;
    br_t br = d->br;
    dlane_t A = *Ap, B = *Bp;
    A.x = d->rd.x;
    B.x = d->x2;
    dlane_start(A.pk, &A);
    if (two) dlane_start(B.pk, &B);
    for (int64_t j = 0; j < W; j++) {
        dec_sz_elem(tok8, finfo, cb8, cbi, &wp, wend, &err, &br, dt, has_mask, &A, j);
        if (two) dec_sz_elem(tok8, finfo, cb8, cbi, &wp, wend, &err, &br, dt, has_mask, &B, j);
    }
    d->rd.x = A.x;
    d->x2 = B.x;
    d->rd.w = wp;
    d->rd.err |= err;
    d->br = br;
}

static void dec_rows_sz(dec_t *d, int dt, int has_mask, int two, int64_t r, int64_t W, dlane_t *A, dlane_t *B) {
    dlane_t a = *A, b = *B;
    if (r == 0 && a.pk) a.pk = 3;
    if (r == 0 && b.pk) b.pk = 3;
#define DEC_SZ_DT(HM, TW) \
    if (dt == FC_F32) dec_rows_sz_body(d, FC_F32, HM, TW, W, &a, &b); \
    else if (dt == FC_F64) dec_rows_sz_body(d, FC_F64, HM, TW, W, &a, &b); \
    else dec_rows_sz_body(d, dt, HM, TW, W, &a, &b);
#define DEC_SZ_TW(HM) if (two) { DEC_SZ_DT(HM, 1) } else { DEC_SZ_DT(HM, 0) }
    if (has_mask) { DEC_SZ_TW(1) } else { DEC_SZ_TW(0) }
#undef DEC_SZ_TW
#undef DEC_SZ_DT
}

static void dec_row(dec_t *d, int pk, int has_cls, int want_val, int kind, int64_t y, int64_t W, uint64_t *Qp,
                    uint64_t *Qc, uint32_t *Mp, uint32_t *Mc, uint32_t *Vp, uint32_t *Vc, uint8_t *Cp, uint8_t *Cc,
                    const uint8_t *mrow, int has_mask) {
    if (y == 0 && pk) pk = 3;
#define DEC_PK(HC, WV, K, HM) \
        switch (pk) { \
        case 0: dec_row_body(d, 0, HC, WV, K, HM, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, mrow); return; \
        case 1: dec_row_body(d, 1, HC, WV, K, HM, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, mrow); return; \
        case 2: dec_row_body(d, 2, HC, WV, K, HM, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, mrow); return; \
        default: dec_row_body(d, 3, HC, WV, K, HM, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, mrow); return; }
#define DEC_CASE(HC, WV, K) \
    if (has_cls == HC && want_val == WV && kind == K) { \
        if (has_mask) { DEC_PK(HC, WV, K, 1) } else { DEC_PK(HC, WV, K, 0) } }
    DEC_CASE(0, 0, 0) DEC_CASE(1, 0, 0) DEC_CASE(0, 1, 0) DEC_CASE(0, 1, 1)
#undef DEC_CASE
#undef DEC_PK
    d->rd.err = 1;
}

int fc_peek(const uint8_t *in, size_t n, int *mode, int *uses_pred) {
    if (n < 5 || in[0] != FC_VERSION || in[1] > FC_POISSON) return FC_ERR_CORRUPT;
    *mode = in[1];
    *uses_pred = (in[2] >> 3) & 1;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* fc_decode in phases: header and quantiser, stencils, contexts, tables and rANS state,  */
/* the planes, the fallbacks; every count checked against the input's size                */

/* The header and the mode's parameters -> the quantiser; kind: value-magnitude contexts. */
static int dec_quantiser(rd_t *r, quant_t *q, int dtype, int64_t P, int64_t H, int64_t W, const double *pred,
                         int *kind) {
    const int isfloat = dtype == FC_F32 || dtype == FC_F64;
    int rc = FC_ERR_CORRUPT;
    if (rd_u8(r) != FC_VERSION) FAIL;
    const int mode = rd_u8(r);
    const int flags = rd_u8(r);
    const int prec = rd_u8(r);
    const int sdt = rd_u8(r);
    if (r->err || mode > FC_POISSON || (flags & ~0x3f) || prec != FC_PREC || sdt != dtype) FAIL;
    *kind = flags & 1;
    q->uniform_cls = (flags >> 1) & 3;
    q->uses_pred = (flags >> 3) & 1;
    q->intabs = (flags >> 4) & 1;
    q->dither = (flags >> 5) & 1;
    q->mode = mode; q->dtype = dtype; q->isfloat = isfloat;
    if ((uint64_t)P != rd_varint(r, UINT64_MAX) || (uint64_t)H != rd_varint(r, UINT64_MAX) ||
        (uint64_t)W != rd_varint(r, UINT64_MAX) || r->err) FAIL;
    if (q->uses_pred && (!pred || mode != FC_ABS)) { rc = pred ? FC_ERR_CORRUPT : FC_ERR_ARG; FAIL; }
    q->pred = q->uses_pred ? pred : NULL;
    if (mode == FC_LOSSLESS && isfloat) FAIL;
    if ((mode != FC_PWREL && q->uniform_cls != 1) || (mode == FC_PWREL && q->uniform_cls == 3 && *kind)) FAIL;
    if (q->intabs && (mode != FC_ABS || isfloat || q->uses_pred)) FAIL;
    if (*kind && !(mode == FC_LOSSLESS || mode == FC_POISSON || q->intabs)) FAIL;
    if (mode == FC_ABS && q->intabs) {
        q->T = rd_varint(r, (uint64_t)4.6e18);
        if (q->T < 1) FAIL;
    } else if (mode == FC_ABS) {
        int uniform = rd_u8(r);
        if (uniform > 1) FAIL;
        q->step = malloc(sizeof(double) * (size_t)(P ? P : 1));
        if (!q->step) { rc = FC_ERR_NOMEM; FAIL; }
        for (int64_t p = 0; p < P; p++) {
            float s = 0;
            if (!uniform || p == 0) rd_get(r, &s, 4);
            q->step[p] = (!uniform || p == 0) ? (double)s : q->step[0];
            if (!(q->step[p] >= 0) || !isfinite(q->step[p])) FAIL;
        }
    } else if (mode == FC_PWREL) {
        rd_get(r, &q->s, 8);
        if (!(q->s > 0 && q->s < 64)) FAIL;
        if (pwrel_cache(q)) { rc = FC_ERR_NOMEM; FAIL; }
    } else if (mode == FC_POISSON) {
        double eb = 0;
        rd_get(r, &eb, 8);
        const uint64_t dr = rd_varint(r, FC_POIS_RMAX);
        if (r->err || !(eb > 0x1p-12 && eb < 0x1p20)) FAIL;
        int prc = poisson_params(q, eb, pois_T(eb, 0) + (int64_t)dr);
        if (prc) { rc = prc; FAIL; }
    }
    if (r->err) FAIL;
    rc = 0;
done:
    return rc;
}

/* Each plane's stencil (2 bits) and, with a prediction, whether it codes the residual to it. */
static int dec_stencils(rd_t *r, quant_t *q, int64_t P, uint8_t *preds) {
    int rc = FC_ERR_CORRUPT;
    for (int64_t p = 0; p < P; p += 4) {
        uint8_t b = rd_u8(r);
        for (int k = 0; k < 4; k++) {
            int pk = (b >> (2 * k)) & 3;
            if (p + k < P) { if (pk > 2) FAIL; preds[p + k] = (uint8_t)pk; }
            else if (pk) FAIL;
        }
    }
    if (q->uses_pred) { /* which planes are coded against the prediction: at least one */
        q->plane_pred = calloc((size_t)(P ? P : 1), 1);
        if (!q->plane_pred) { rc = FC_ERR_NOMEM; FAIL; }
        int any = 0;
        for (int64_t p = 0; p < P; p += 8) {
            const uint8_t b = rd_u8(r);
            for (int k = 0; k < 8; k++) {
                const int on = (b >> k) & 1;
                if (p + k < P) { q->plane_pred[p + k] = (uint8_t)on; any |= on; }
                else if (on) FAIL;
            }
        }
        if (r->err || !any) FAIL;
    }
    rc = 0;
done:
    return rc;
}

/* The contexts: their number and the first fine bucket of each after the first. */
static int dec_contexts(rd_t *r, int *nctx_out, uint8_t *ctxmap) {
    int rc = FC_ERR_CORRUPT;
    const int nctx = rd_u8(r);
    if (r->err || nctx < 1 || nctx > FC_MAX_CTX) FAIL;
    int prev = 0, c = 0;
    int bounds[FC_MAX_CTX];
    for (int k = 1; k < nctx; k++) {
        int b = rd_u8(r);
        if (b <= prev || b >= FC_NFINE) FAIL;
        bounds[k - 1] = b; prev = b;
    }
    for (int b = 0; b < FC_NFINE; b++) {
        while (c + 1 < nctx && b >= bounds[c]) c++;
        ctxmap[b] = (uint8_t)c;
    }
    *nctx_out = nctx;
    rc = 0;
done:
    return rc;
}

/* The frequency tables (as decode tables in d), the rANS words and states, the raw bits. */
static int dec_entropy(rd_t *r, const uint8_t *in, size_t nin, int ntabs, int nctx, const uint8_t *ctxmap,
                       dec_t *d, uint8_t **tok8_out, uint32_t **finfo_out) {
    const int prec = FC_PREC;
    int rc = FC_ERR_CORRUPT;
    uint64_t tlen = rd_varint(r, nin);
    if (r->err || tlen > nin - r->pos) FAIL;
    br_t tb;
    br_init(&tb, in + r->pos, (size_t)tlen);
    r->pos += (size_t)tlen;
    uint8_t *tok8 = *tok8_out = malloc((size_t)ntabs << prec);
    uint32_t *finfo = *finfo_out = calloc((size_t)ntabs * FC_NTOK, sizeof(uint32_t));
    if (!tok8 || !finfo) { rc = FC_ERR_NOMEM; FAIL; }
    ftab_t t;
    for (int c = 0; c < ntabs; c++) {
        if (ftab_read(&tb, prec, c < nctx ? FC_NTOK : 3, &t)) FAIL;
        for (int k = 0; k < t.ntok; k++) {
            memset(tok8 + ((size_t)c << prec) + t.start[k], k, t.freq[k]);
            finfo[(size_t)c * FC_NTOK + k] = t.freq[k] | ((uint32_t)t.start[k] << 16);
        }
    }
    if (br_overrun(&tb) || (br_used(&tb) + 7) / 8 != tlen) FAIL;
    uint64_t nw = rd_varint(r, nin / 2);
    if (r->err || nw < 4 || 2 * nw > nin - r->pos) FAIL;
    const uint8_t *w = in + r->pos;
    r->pos += (size_t)(2 * nw);
    uint16_t a, b, a2, b2;
    memcpy(&a, w, 2); memcpy(&b, w + 2, 2); memcpy(&a2, w + 4, 2); memcpy(&b2, w + 6, 2);
    d->rd.x = ((uint32_t)a << 16) | b;
    d->x2 = ((uint32_t)a2 << 16) | b2;
    d->rd.w = w + 8; d->rd.wend = w + 2 * nw;
    if (d->rd.x < RANS_L || d->x2 < RANS_L) FAIL;
    uint64_t ne = rd_varint(r, nin);
    if (r->err || ne > nin - r->pos) FAIL;
    br_init(&d->br, in + r->pos, (size_t)ne);
    r->pos += (size_t)ne;
    d->tok8 = tok8; d->finfo = finfo; d->prec = prec; d->nctx = nctx;
    for (int k = 0; k < FC_NFINE; k++) { d->cb8[k] = (uint32_t)ctxmap[k] << prec; d->cbi[k] = (uint32_t)ctxmap[k] * FC_NTOK; }
    rc = 0;
done:
    return rc;
}

/* Row buffers of the planes' passes: codes, reconstructions, neighbour magnitudes, masks. */
typedef struct {
    uint64_t *Qp, *Qc;
    double *Rp;
    uint32_t *rows32;
    uint8_t *rows8;
} drows_t;

/* abs on floats: plane pairs (or halves of a last plane) in two lanes, straight into out */
static int dec_planes_sz(dec_t *d, const quant_t *q, const uint8_t *preds, const uint8_t *mask, void *out,
                         int dtype, int64_t P, int64_t H, int64_t W, drows_t *b) {
    int rc = FC_ERR_CORRUPT;
    double *Rp = b->Rp, *Rc = b->Rp + W, *Rp2 = b->Rp + 2 * W, *Rc2 = b->Rp + 3 * W;
    uint32_t *rows32 = b->rows32;
    uint8_t *mrow = b->rows8 + 2 * (W + 2), *mrow2 = b->rows8 + (size_t)(W + 2) * 3;
    for (int64_t p = 0; p < P;) {
        const int pair = p + 1 < P;
        const int pk = preds[p], pkB = pair ? preds[p + 1] : pk;
        memset(rows32, 0, sizeof(uint32_t) * (size_t)(W + 2) * 4);
        const int64_t hA = pair ? H : H >= FC_SPLIT_ROWS ? (H + 1) / 2 : H, hB = pair ? H : H - hA;
        const int64_t baseA = p * H * W, baseB = pair ? (p + 1) * H * W : (p * H + hA) * W;
        uint32_t *m32 = rows32; /* lane A: rows 0-1, lane B: rows 2-3 (the V rows, unused by abs floats) */
        dlane_t A = {NULL, Rp, Rc, m32, m32 + (W + 2), mrow, NULL, q->step[p], 0, 0, 0, 0, 0, 0, pk};
        dlane_t B = {NULL, Rp2, Rc2, m32 + 2 * (W + 2), m32 + 3 * (W + 2), mrow2, NULL, q->step[pair ? p + 1 : p],
                     0, 0, 0, 0, 0, 0, pkB};
        for (int64_t r = 0; r < hA; r++) {
            const int two = r < hB;
            const int64_t offA = baseA + r * W, offB = baseB + r * W;
            int hm = expand_mask(mask, offA, W, mrow);
            A.base = q->pred && q->plane_pred[p] ? q->pred + offA : NULL;
            A.out = (uint8_t *)out + offA * dt_size(dtype);
            if (two) {
                hm |= expand_mask(mask, offB, W, mrow2);
                B.base = q->pred && q->plane_pred[pair ? p + 1 : p] ? q->pred + offB : NULL;
                B.out = (uint8_t *)out + offB * dt_size(dtype);
            }
            dec_rows_sz(d, dtype, hm, two, r, W, &A, &B);
            if (d->rd.err || br_overrun(&d->br)) FAIL;
            double *td = (double *)A.Rp; A.Rp = A.Rc; A.Rc = td;
            uint32_t *t32 = (uint32_t *)A.Mp; A.Mp = A.Mc; A.Mc = t32; A.Mc[0] = 0;
            td = (double *)B.Rp; B.Rp = B.Rc; B.Rc = td;
            t32 = (uint32_t *)B.Mp; B.Mp = B.Mc; B.Mc = t32; B.Mc[0] = 0;
        }
        p += pair ? 2 : 1;
    }
    rc = 0;
done:
    return rc;
}

/* the integer codes (lossless, integer abs, pwrel, poisson): row by row, then dequant_row */
static int dec_planes_codes(dec_t *d, const quant_t *q, const uint8_t *preds, const uint8_t *mask, void *out,
                            int dtype, int64_t P, int64_t H, int64_t W, int has_cls, int want_val, int kind,
                            drows_t *b) {
    int rc = FC_ERR_CORRUPT;
    uint64_t *Qp = b->Qp, *Qc = b->Qc;
    uint32_t *rows32 = b->rows32;
    uint32_t *Mp = rows32, *Mc = rows32 + (W + 2), *Vp = rows32 + 2 * (W + 2), *Vc = rows32 + 3 * (W + 2);
    uint8_t *Cp = b->rows8, *Cc = b->rows8 + (W + 2), *mrow = b->rows8 + 2 * (W + 2);
    for (int64_t p = 0; p < P; p++) {
        const int pk = preds[p];
        memset(rows32, 0, sizeof(uint32_t) * (size_t)(W + 2) * 4);
        memset(Cp, 0, (size_t)(W + 2) * 2);
        for (int64_t y = 0; y < H; y++) {
            const int64_t off = (p * H + y) * W;
            const int has_mask = expand_mask(mask, off, W, mrow);
            if (q->uniform_cls == 3) { /* all zero */
                for (int64_t j = 0; j < W; j++) if (!mrow[j]) store_f(out, off + j, dtype, 0.0);
                continue;
            }
            dec_row(d, pk, has_cls, want_val, kind, y, W, Qp, Qc, Mp, Mc, Vp, Vc, Cp, Cc, mrow, has_mask);
            if (d->rd.err || br_overrun(&d->br)) FAIL;
            if ((rc = dequant_row(q, Qc, Cc, mrow, out, off, W, p, has_mask))) FAIL;
            rc = FC_ERR_CORRUPT;
            uint64_t *tq = Qp; Qp = Qc; Qc = tq;
            uint32_t *t32 = Mp; Mp = Mc; Mc = t32;
            t32 = Vp; Vp = Vc; Vc = t32;
            uint8_t *t8 = Cp; Cp = Cc; Cc = t8;
            Mc[0] = 0; Vc[0] = 0; Cc[0] = 0;
        }
    }
    rc = 0;
done:
    b->Qp = Qp; b->Qc = Qc; /* swapped: the buffers stay owned */
    return rc;
}

/* The fallback list: gaps between the positions, then the elements' bytes. */
static int dec_fallbacks(rd_t *r, const uint8_t *in, size_t nin, const uint8_t *mask, void *out, int dtype,
                         int64_t n) {
    int rc = FC_ERR_CORRUPT;
    const int esz = dt_size(dtype);
    int64_t *idx = NULL;
    uint64_t nfb = rd_varint(r, (uint64_t)n);
    if (r->err) FAIL;
    int64_t prev = -1;
    if (nfb) {
        idx = malloc(sizeof(int64_t) * (size_t)nfb);
        if (!idx) { rc = FC_ERR_NOMEM; FAIL; }
    }
    for (uint64_t k = 0; k < nfb; k++) {
        uint64_t dlt = rd_varint(r, (uint64_t)n);
        int64_t i = prev + 1 + (int64_t)dlt;
        if (r->err || i >= n || (mask && ((mask[i >> 3] >> (7 - (i & 7))) & 1))) FAIL;
        idx[k] = i; prev = i;
    }
    if (nfb * (uint64_t)esz > nin - r->pos) FAIL;
    for (uint64_t k = 0; k < nfb; k++) memcpy((uint8_t *)out + idx[k] * esz, in + r->pos + k * esz, (size_t)esz);
    r->pos += (size_t)(nfb * esz);
    rc = 0;
done:
    free(idx);
    return rc;
}

int fc_decode(const uint8_t *in, size_t nin, void *out, int dtype, int64_t P, int64_t H, int64_t W,
              const uint8_t *mask, const double *pred) {
    if (check_shape(dtype, P, H, W)) return FC_ERR_ARG;
    rd_t r = {in, 0, nin, 0};
    quant_t q;
    memset(&q, 0, sizeof q);
    int rc = FC_ERR_CORRUPT, kind = 0, nctx = 0;
    uint32_t *finfo = NULL;
    uint8_t *tok8 = NULL, *preds = NULL;
    drows_t b = {NULL, NULL, NULL, NULL, NULL};
    uint8_t ctxmap[FC_NFINE];
    dec_t d;
    memset(&d, 0, sizeof d);

    if ((rc = dec_quantiser(&r, &q, dtype, P, H, W, pred, &kind))) goto done;
    preds = malloc((size_t)(P ? P : 1));
    if (!preds) { rc = FC_ERR_NOMEM; goto done; }
    if ((rc = dec_stencils(&r, &q, P, preds)) || (rc = dec_contexts(&r, &nctx, ctxmap))) goto done;
    const int has_cls = q.mode == FC_PWREL && q.uniform_cls == 0;
    const int ntabs = nctx + (has_cls ? FC_NCLS_CTX : 0);
    if ((rc = dec_entropy(&r, in, nin, ntabs, nctx, ctxmap, &d, &tok8, &finfo))) goto done;
    const int want_val = q.mode == FC_LOSSLESS || q.mode == FC_POISSON || q.intabs;

    b.Qp = malloc(sizeof(uint64_t) * (size_t)W);
    b.Qc = malloc(sizeof(uint64_t) * (size_t)W);
    b.Rp = malloc(sizeof(double) * (size_t)W * 4);
    b.rows32 = calloc((size_t)(W + 2) * 4, sizeof(uint32_t));
    b.rows8 = calloc((size_t)(W + 2) * 3 + (size_t)W + 8, 1);
    if (!b.Qp || !b.Qc || !b.Rp || !b.rows32 || !b.rows8) { rc = FC_ERR_NOMEM; goto done; }
    if (q.mode == FC_ABS && !q.intabs) rc = dec_planes_sz(&d, &q, preds, mask, out, dtype, P, H, W, &b);
    else rc = dec_planes_codes(&d, &q, preds, mask, out, dtype, P, H, W, has_cls, want_val, kind, &b);
    if (rc) goto done;
    rc = FC_ERR_CORRUPT;
    /* the stream must end exactly where the encoder stopped */
    if (d.rd.x != RANS_L || d.x2 != RANS_L || d.rd.w != d.rd.wend) FAIL;
    if ((br_used(&d.br) + 7) / 8 != br_len(&d.br)) FAIL;
    if ((rc = dec_fallbacks(&r, in, nin, mask, out, dtype, P * H * W))) goto done;
    rc = FC_ERR_CORRUPT;
    if (r.pos != nin) FAIL;
    rc = 0;
done:
    free(tok8); free(finfo); free(b.rows32); free(b.Rp); free(b.Qp); free(b.Qc); free(b.rows8); free(preds);
    quant_free(&q);
    return rc;
}

/* Per plane: its stencil and whether it codes the residual to the prediction (the Python
 * side's plane_choices), from the header alone. */
int fc_planes(const uint8_t *in, size_t n, int64_t P, uint8_t *predictor, uint8_t *uses_pred) {
    rd_t r = {in, 0, n, 0};
    if (P < 0 || rd_u8(&r) != FC_VERSION) return FC_ERR_CORRUPT;
    const int mode = rd_u8(&r), flags = rd_u8(&r);
    rd_u8(&r);
    const int dt = rd_u8(&r);
    if (r.err || mode > FC_POISSON || dt > FC_U64 || rd_varint(&r, UINT64_MAX) != (uint64_t)P) return FC_ERR_CORRUPT;
    rd_varint(&r, UINT64_MAX);
    rd_varint(&r, UINT64_MAX);
    if (mode == FC_ABS && ((flags >> 4) & 1)) rd_varint(&r, UINT64_MAX);
    else if (mode == FC_ABS) { const int uniform = rd_u8(&r); r.pos += (size_t)(uniform ? (P ? 4 : 0) : 4 * P); }
    else if (mode == FC_PWREL) r.pos += 8;
    else if (mode == FC_POISSON) { r.pos += 8; rd_varint(&r, UINT64_MAX); }
    if (r.err || r.pos > n) return FC_ERR_CORRUPT;
    for (int64_t p = 0; p < P; p += 4) {
        const uint8_t b = rd_u8(&r);
        for (int k = 0; k < 4 && p + k < P; k++) predictor[p + k] = (b >> (2 * k)) & 3;
    }
    for (int64_t p = 0; p < P; p += 8) {
        const uint8_t b = (flags >> 3) & 1 ? rd_u8(&r) : 0;
        for (int k = 0; k < 8 && p + k < P; k++) uses_pred[p + k] = (b >> k) & 1;
    }
    return r.err ? FC_ERR_CORRUPT : 0;
}
