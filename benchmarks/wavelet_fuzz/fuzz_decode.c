/* Fuzz the wavelet engine's decoder: valid streams (static tables with 4 table sets, and
 * adaptive binary decisions; hybrid tokens with sign contexts, zero segments and
 * RDO, and escape tokens with raw signs) of
 * frames of random shapes, mutated (bit flips, byte overwrites,
 * truncation, extension, block copies) or replaced by random bytes. The decoder must return
 * the bytes consumed or a negative error, never read or write outside its buffers (run
 * under ASan/UBSan) and never hang (SIGALRM per case); the encoder's round trip is checked
 * on every valid stream.
 *
 *   gcc -O1 -g -fsanitize=address,undefined -ffp-contract=off -I../../c_wavelet fuzz_decode.c \
 *       ../../c_wavelet/wl_lift.c ../../c_wavelet/wl_code.c -lm -lpthread -o fuzz_asan
 *   ./fuzz_asan 100000 1
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wl.h"

static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }
static double urand(void) { return (rnd() >> 11) * 0x1p-53; }

#define L 4
#define G (1 + 3 * L)
#define C 8
#define T 72
#define AMAX 255
#define FMAX 4095
#define S 4

/* adapt: 0 static, 1 adaptive; variant: 0 research-like (hybrid tokens, sign contexts, LL gradient
 * classes, level rule 1), 1 escape tokens, raw signs, LL features, level rule 0 */
static wl_model *make_model(int adapt, int variant) {
    static int32_t prog_start[2] = {0, 6}, kind[6] = {0, 1, 0, 1, 2, 3}, off[6] = {0, -1, 0, -1, 0, 0},
                   ntaps[6] = {2, 2, 2, 2, 1, 1}, tap0[6] = {0, 2, 4, 6, 8, 9}, prog_of[2 * L], group_of[4 * L],
                   ctx_w[G * WL_NFEAT], bias[G], a_lo[G], a_shift[G], eg_k[G], flut[FMAX + 1];
    static double taps[10], band_w[4 * L], theta[4 * L], delta[4 * L];
    static uint8_t lut[G * (AMAX + 1)];
    static uint32_t freq[S * G * C * T], sign_freq[G * WL_NSIGN], zr_freq[G * C];
    const double a = -1.586134342059924, b = -0.052980118572961, c = 0.882911075530934, d = 0.443506852043971,
                 K = 1.230174104914001;
    double t[10] = {a, a, b, b, c, c, d, d, sqrt(2.0) / K, K / sqrt(2.0)};
    memcpy(taps, t, sizeof t);
    for (int l = 0; l < L; l++) {
        prog_of[2 * l] = prog_of[2 * l + 1] = 0;
        for (int o = 0; o < 4; o++) {
            group_of[4 * l + o] = o ? 1 + 3 * l + o - 1 : 0;
            band_w[4 * l + o] = 1.0 + 0.1 * o;
            theta[4 * l + o] = o ? 0.4 : 0.5;
            delta[4 * l + o] = o ? 0.1 : 0.0;
        }
    }
    for (int x = 0; x <= FMAX; x++) flut[x] = (int32_t)lround(16 * log2(1.0 + x));
    for (int g = 0; g < G; g++) {
        eg_k[g] = g % 3;
        bias[g] = (g % 5) * 7 - 10;
        a_lo[g] = -20;
        a_shift[g] = g % 3;
        for (int i = 0; i < WL_NFEAT; i++) ctx_w[g * WL_NFEAT + i] = (i + g) % 4 - 1;
        for (int x = 0; x <= AMAX; x++) { int cl = 0; while (cl < C - 1 && (2 << cl) <= x) cl++; lut[g * (AMAX + 1) + x] = cl; }
        for (int k = 0; k < WL_NSIGN; k++) sign_freq[g * WL_NSIGN + k] = 1000 + (k * 37 + g) % 30000;
        for (int k = 0; k < C; k++) zr_freq[g * C + k] = 2000 + (k * 4001 + g * 17) % 28000;
    }
    const int ntok = variant ? 18 : T;
    for (int s = 0; s < S; s++)
        for (int i = 0; i < G * C; i++) {
            uint32_t *f = freq + ((int64_t)s * G * C + i) * ntok, sum = 0;
            double r = 0.2 + 0.15 * s + 0.02 * (i % C);
            for (int k = 0; k < ntok; k++) { f[k] = 1 + (uint32_t)(30000.0 * (1 - r) * pow(r, k)); sum += f[k]; }
            f[0] += (1u << 15) - sum; /* sum below 2^15 by construction */
        }
    wl_params p = {L, variant ? 8 : 4, variant ? 0 : 1, 1, prog_start, kind, off, ntaps, tap0, 10, taps, prog_of,
                   band_w, theta, delta, group_of, 2, variant ? 0 : 1, 5,
                   G, C, ntok, AMAX, FMAX, flut, ctx_w, bias, a_lo, a_shift, lut,
                   variant ? 0 : 1, 16, eg_k, variant ? 0 : 1, sign_freq, variant ? 0.0 : 0.08, variant ? 0 : 8,
                   zr_freq, 15, S, freq, adapt, variant ? 5 : 32, variant ? 4 : 7};
    wl_model *m;
    if (wl_model_new(&p, &m)) { fprintf(stderr, "model rejected at line %d\n", wl_last_line()); exit(2); }
    return m;
}

static void on_alarm(int sig) { (void)sig; fprintf(stderr, "HANG\n"); _exit(3); }

int main(int argc, char **argv) {
    long cases = argc > 1 ? atol(argv[1]) : 10000;
    rs ^= argc > 2 ? (uint64_t)atol(argv[2]) * 0x9E3779B97F4A7C15ull : 0;
    signal(SIGALRM, on_alarm);
    wl_model *models[4] = {make_model(0, 0), make_model(1, 0), make_model(0, 1), make_model(1, 1)};
    long ok = 0, err = 0;
    for (long i = 0; i < cases; i++) {
        wl_model *m = models[i & 3];
        int64_t B = 1 + rnd() % 3, H = 1 + rnd() % 40, W = 1 + rnd() % 40;
        int64_t n = B * H * W;
        double *z = malloc(n * sizeof(double)), *zh = malloc(n * sizeof(double)), *zd = malloc(n * sizeof(double));
        int32_t steps[3];
        for (int f = 0; f < B; f++) steps[f] = 32768 - 2048 + (int32_t)(rnd() % 3000);
        double acc = 0;
        for (int64_t j = 0; j < n; j++) { acc = 0.9 * acc + (urand() - 0.5); z[j] = acc + (rnd() % 50 == 0 ? 30 * urand() : 0); }
        uint8_t *buf;
        int32_t mins[3];
        if (wl_min_steps(m, z, B, H, W, mins)) { fprintf(stderr, "min steps failed\n"); return 1; }
        for (int f = 0; f < B; f++) if (steps[f] < mins[f]) steps[f] = mins[f];
        if (B > 1 && rnd() % 2) steps[1] = steps[0]; /* the steps block's 'same step' flag */
        int64_t len = wl_encode(m, z, B, H, W, steps, zh, &buf);
        if (len < 0) { fprintf(stderr, "encode failed %lld line %d\n", (long long)len, wl_last_line()); return 1; }
        alarm(5);
        int32_t dsteps[3];
        if (wl_decode(m, buf, len, B, H, W, dsteps, zd) != len || memcmp(zd, zh, n * sizeof(double)) ||
            memcmp(dsteps, steps, B * sizeof(int32_t))) {
            fprintf(stderr, "round trip failed at case %ld\n", i); return 1;
        }
        /* mutate */
        int64_t mlen = len + (rnd() % 4 == 0 ? (int64_t)(rnd() % 16) : 0);
        uint8_t *mb = malloc(mlen ? mlen : 1);
        memcpy(mb, buf, len);
        for (int64_t j = len; j < mlen; j++) mb[j] = (uint8_t)rnd();
        switch (rnd() % 5) {
        case 0: for (int k = 0, nf = 1 + rnd() % 4; k < nf && len; k++) mb[rnd() % len] ^= 1 << (rnd() % 8); break;
        case 1: if (len) mb[rnd() % len] = (uint8_t)rnd(); break;
        case 2: mlen = len ? (int64_t)(rnd() % len) : 0; break;
        case 3: if (len > 8) { int64_t a = rnd() % (len - 4), b2 = rnd() % (len - 4); memcpy(mb + a, buf + b2, 4); } break;
        default: for (int64_t j = 0; j < mlen; j++) mb[j] = (uint8_t)rnd(); break;
        }
        int64_t r = wl_decode(m, mb, mlen, B, H, W, dsteps, zd);
        alarm(0);
        if (r >= 0) {
            if (r > mlen) { fprintf(stderr, "consumed beyond the input\n"); return 1; }
            for (int64_t j = 0; j < n; j++) if (!isfinite(zd[j])) { fprintf(stderr, "non-finite output\n"); return 1; }
            ok++;
        } else err++;
        free(mb); wl_free(buf); free(z); free(zh); free(zd);
    }
    printf("%ld cases: %ld decoded, %ld errors, 0 crashes\n", cases, ok, err);
    for (int k = 0; k < 4; k++) wl_model_free(models[k]);
    return 0;
}
