/* Round-trip fuzz of encoder + decoder on hostile inputs: random bit patterns (NaN, inf,
 * subnormals, extremes), random bounds from 1e-300 to 1e300, every mode and element type,
 * random masks and shapes, abs streams against a random prediction with a random choice of
 * (prediction, predictor) per plane, float16 values verified as float16, and the mask scan
 * against a scalar reference. Checks the bound on every unmasked element:
 *   lossless: bit-exact; abs: |y - x| <= eb (non-finite x: bit-exact);
 *   pwrel: |y - x| <= eb |x| (non-finite: bit-exact); poisson: |y - x| <= eb sqrt(max(x, 1))
 *   for x >= 0 (others: exact).
 *   gcc -O1 -g -fsanitize=address,undefined -ffp-contract=off -I../../c_fastcode fuzz_roundtrip.c \
 *       ../../c_fastcode/fc_*.c -lm -o roundtrip_asan
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc.h"

static uint64_t rs = 0x243F6A8885A308D3ull;
static uint64_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }
static double urand(void) { return (rnd() >> 11) * 0x1p-53; }
static const int SZ[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8};

static __int128 geti(const void *b, int64_t i, int dt) {
    switch (dt) {
    case FC_I8: return ((const int8_t *)b)[i];
    case FC_I16: return ((const int16_t *)b)[i];
    case FC_I32: return ((const int32_t *)b)[i];
    case FC_I64: return ((const int64_t *)b)[i];
    case FC_U8: return ((const uint8_t *)b)[i];
    case FC_U16: return ((const uint16_t *)b)[i];
    case FC_U32: return ((const uint32_t *)b)[i];
    default: return ((const uint64_t *)b)[i];
    }
}

static double getf(const void *b, int64_t i, int dt) {
    switch (dt) {
    case FC_F32: return ((const float *)b)[i];
    case FC_F64: return ((const double *)b)[i];
    case FC_I8: return ((const int8_t *)b)[i];
    case FC_I16: return ((const int16_t *)b)[i];
    case FC_I32: return ((const int32_t *)b)[i];
    case FC_I64: return (double)((const int64_t *)b)[i];
    case FC_U8: return ((const uint8_t *)b)[i];
    case FC_U16: return ((const uint16_t *)b)[i];
    case FC_U32: return ((const uint32_t *)b)[i];
    default: return (double)((const uint64_t *)b)[i];
    }
}

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    rs ^= (uint64_t)(argc > 2 ? atol(argv[2]) : 1) * 0x9E3779B97F4A7C15ull;
    long fails = 0, encoded = 0, refused = 0;
    for (long it = 0; it < iters; it++) {
        const int dt = (int)(rnd() % 10);
        int mode = (int)(rnd() % 4);
        if (mode == FC_LOSSLESS && dt <= FC_F64) mode = FC_ABS;
        const int64_t P = 1 + (int64_t)(rnd() % 3), H = 1 + (int64_t)(rnd() % 20), W = 1 + (int64_t)(rnd() % 20);
        const int64_t n = P * H * W;
        uint8_t *x = malloc((size_t)n * SZ[dt]);
        const int style = (int)(rnd() % 3);
        for (int64_t i = 0; i < n; i++) {
            uint8_t *p = x + i * SZ[dt];
            if (style == 0) { for (int k = 0; k < SZ[dt]; k++) p[k] = (uint8_t)rnd(); } /* any bit pattern */
            else { /* smooth-ish values of a random scale, sometimes special */
                double v = ldexp(sin(0.3 * (double)(i % W) + 0.2 * (double)(i / W)) + 0.1 * urand(), (int)(rnd() % 120) - 60);
                if (style == 2 && rnd() % 16 == 0) v = (rnd() & 1) ? 0.0 : -v * 1e30;
                if (dt >= FC_I8) v = rint(v * 100);
                switch (dt) {
                case FC_F32: { float f = (float)v; memcpy(p, &f, 4); break; }
                case FC_F64: memcpy(p, &v, 8); break;
                default: { int64_t iv = (int64_t)fmax(fmin(v, 1e18), -1e18); if (dt >= FC_U8) iv = iv < 0 ? -iv : iv;
                           memcpy(p, &iv, (size_t)SZ[dt]); break; }
                }
            }
        }
        uint8_t *mask = NULL;
        if (rnd() % 3 == 0) {
            mask = calloc((size_t)(n + 7) / 8, 1);
            for (int64_t i = 0; i < n; i++) if (rnd() % 5 == 0) mask[i >> 3] |= (uint8_t)(0x80u >> (i & 7));
        }
        double eb = ldexp(urand() + 0.01, (int)(rnd() % 60) - 40);
        if (rnd() % 20 == 0) eb = (rnd() & 1) ? 1e300 * urand() : 1e-300;
        if (mode == FC_PWREL) eb = urand() * (rnd() % 4 == 0 ? 2.0 : 0.3);
        if (mode == FC_POISSON) eb = (rnd() % 4) ? 0.001 + urand() * 4 : ldexp(urand() + 0.01, (int)(rnd() % 30) - 10);
        /* the mask scan against a scalar reference, with two sentinels taken from the data */
        {
            const double s0 = getf(x, (int64_t)(rnd() % (uint64_t)n), dt), s1 = getf(x, 0, dt);
            const int isint = dt >= FC_I8;
            const int64_t is[2] = {isint ? (int64_t)geti(x, (int64_t)(rnd() % (uint64_t)n), dt) : 0,
                                   isint ? (int64_t)geti(x, 0, dt) : 0};
            const double sent[2] = {s0, s1}, below = (rnd() & 1) ? s1 : -INFINITY;
            uint8_t *bits = calloc((size_t)(n + 7) / 8, 1);
            const int ns = (int)(rnd() % 3);
            const int64_t cnt = fc_scan_special(x, dt, n, 1, sent, is, ns, below, isfinite(below), bits);
            int64_t ref = 0;
            for (int64_t i = 0; i < n; i++) {
                const double v = getf(x, i, dt);
                int m = (dt <= FC_F64 && !isfinite(v)) || (isfinite(below) && v < below);
                for (int k = 0; k < ns; k++)
                    m |= !isint ? v == sent[k] : geti(x, i, dt) == (dt >= FC_U8 ? (__int128)(uint64_t)is[k]
                                                                                     : (__int128)is[k]);
                if (dt >= FC_U8 && dt <= FC_U64) { /* unsigned: compare in the type's width */
                    m = (dt <= FC_F64 && !isfinite(v)) || (isfinite(below) && v < below);
                    for (int k = 0; k < ns; k++) {
                        const uint64_t mk = SZ[dt] == 8 ? ~0ull : ((1ull << (8 * SZ[dt])) - 1);
                        m |= (uint64_t)geti(x, i, dt) == ((uint64_t)is[k] & mk);
                    }
                }
                ref += m;
                if (m != ((bits[i >> 3] >> (7 - (i & 7))) & 1)) { if (fails < 20) printf("scan differs at %lld\n", (long long)i); fails++; break; }
            }
            if (cnt != ref && fails < 20) { printf("scan count %lld vs %lld\n", (long long)cnt, (long long)ref); fails++; }
            free(bits);
        }
        /* float32 holding float16 values, verified as float16 */
        const int f16 = dt == FC_F32 && mode != FC_LOSSLESS && rnd() % 4 == 0;
        if (f16) for (int64_t i = 0; i < n; i++) { float f = (float)fc_cast(((float *)x)[i], FC_F16); ((float *)x)[i] = f; }
        /* abs against a prediction: per plane the encoder may code the residual to it */
        double *pred = NULL, *hs = NULL;
        if (mode == FC_ABS && !f16 && rnd() % 3 == 0 && eb < 1e290) {
            pred = malloc(sizeof(double) * (size_t)n);
            hs = malloc(sizeof(double) * (size_t)P);
            const double scale = ldexp(1.0, (int)(rnd() % 40) - 20);
            for (int64_t i = 0; i < n; i++) {
                const double a = getf(x, i, dt);
                pred[i] = (rnd() % 8 == 0 || !isfinite(a)) ? scale * (urand() - 0.5) : a + scale * eb * (urand() - 0.5);
            }
            for (int64_t p = 0; p < P; p++) hs[p] = eb * urand();
        }
        const int allowed = pred ? 1 + (int)(rnd() % 63) : 0;
        uint8_t *s = NULL;
        const int fl = ((rnd() & 1) ? 0 : FC_NO_DITHER) | (f16 ? FC_VERIFY_F16 : 0);
        int64_t len = fc_encode(x, dt, P, H, W, mask, mode, eb, hs, hs, pred, allowed, fl, &s, NULL);
        if (len < 0) { refused++; free(x); free(mask); free(pred); free(hs); continue; }
        encoded++;
        uint8_t *y = malloc((size_t)n * SZ[dt]);
        memset(y, 0, (size_t)n * SZ[dt]);
        int rc = fc_decode(s, (size_t)len, y, dt, P, H, W, mask, pred);
        if (f16) for (int64_t i = 0; i < n && !rc; i++) { float f = (float)fc_cast(((float *)y)[i], FC_F16); ((float *)y)[i] = f; }
        if (rc) { printf("decode of a valid stream failed: dt %d mode %d rc %d line %d\n", dt, mode, rc, fc_last_fail_line()); fails++; }
        for (int64_t i = 0; i < n && !rc; i++) {
            if (mask && ((mask[i >> 3] >> (7 - (i & 7))) & 1)) continue;
            const double a = getf(x, i, dt), b = getf(y, i, dt);
            int exact = !memcmp(x + i * SZ[dt], y + i * SZ[dt], (size_t)SZ[dt]);
            int ok;
            int eff = mode == FC_ABS && dt >= FC_I8 && eb < 1 ? FC_LOSSLESS : mode;
            if (eff == FC_LOSSLESS || !isfinite(a)) ok = exact;
            else if (eff == FC_ABS && dt >= FC_I8) {
                __int128 d = geti(y, i, dt) - geti(x, i, dt);
                if (d < 0) d = -d;
                ok = exact || (double)d <= floor(eb);
            } else if (eff == FC_ABS) ok = exact || fabs(b - a) <= eb;
            else if (eff == FC_PWREL) ok = exact || fabs(b - a) <= eb * fabs(a);
            else ok = exact || (a >= 0 && fabs(b - a) <= eb * sqrt(a < 1 ? 1 : a));
            if (pred && !ok && !exact && dt >= FC_I8) { /* prediction planes: verified before rint */
                __int128 d = geti(y, i, dt) - geti(x, i, dt);
                ok = (double)(d < 0 ? -d : d) <= eb + 0.5;
            } else if (pred && !ok && !exact) /* and before the cast to float: half an ulp */
                ok = fabs(b - a) <= eb + ldexp(fabs(a) + eb, dt == FC_F32 ? -24 : -53) + 1e-45;
            /* pwrel/poisson store integers beyond 2^53 exactly (float64 could not verify them) */
            if ((dt == FC_I64 || dt == FC_U64) && (eff == FC_PWREL || eff == FC_POISSON) && !exact && fabs(a) >= 9007199254740992.0) ok = 0;
            if (!ok) {
                if (fails < 20) printf("bound violated: dt %d mode %d eb %.17g x %.17g y %.17g\n", dt, mode, eb, a, b);
                fails++;
                break;
            }
        }
        free(y); fc_free(s); free(x); free(mask); free(pred); free(hs);
    }
    printf("roundtrip: %ld cases, %ld encoded, %ld refused (bad arguments), %ld failures\n", iters, encoded, refused, fails);
    return fails ? 1 : 0;
}
