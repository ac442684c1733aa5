/* Fuzz the fastcode decoder: valid streams of every mode, mutated (bit flips, byte
 * overwrites, truncation, extension, block copies), and random bytes behind a valid
 * header. The decoder must return 0 or a negative error, never read or write outside
 * its buffers (run under ASan/UBSan or valgrind) and never hang (SIGALRM per case).
 *
 *   gcc -O1 -g -fsanitize=address,undefined -ffp-contract=off -I../../c_fastcode fuzz_decode.c \
 *       ../../c_fastcode/fc_*.c -lm -o fuzz_asan
 *   ./fuzz_asan 200000 1
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fc.h"

static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }
static double urand(void) { return (rnd() >> 11) * 0x1p-53; }

typedef struct {
    const char *name;
    int dtype, mode;
    double eb;
    int64_t P, H, W;
    int with_mask, with_pred;
    uint8_t *stream;
    int64_t len;
    uint8_t *mask;
    double *pred;
} base_t;

static const int SZ[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8};

static void fill(base_t *b, void *x) {
    int64_t n = b->P * b->H * b->W;
    for (int64_t i = 0; i < n; i++) {
        int64_t j = i % b->W, y = (i / b->W) % b->H;
        double s = 3 * sin(0.2 * j + 0.1 * y) + 0.01 * (urand() - 0.5);
        switch (b->dtype) {
        case FC_F32: ((float *)x)[i] = (float)(b->mode == FC_PWREL ? (urand() < 0.1 ? 0 : (urand() < 0.3 ? -1 : 1) * exp(4 * s)) : s); break;
        case FC_F64: ((double *)x)[i] = b->mode == FC_PWREL ? (urand() < 0.1 ? 0 : (urand() < 0.3 ? -1 : 1) * exp(4 * s)) : s; break;
        case FC_I16: ((int16_t *)x)[i] = (int16_t)(1000 * s); break;
        case FC_I32: ((int32_t *)x)[i] = (int32_t)floor(exp(2 + s)); break;
        case FC_I64: ((int64_t *)x)[i] = (int64_t)rnd(); break;
        case FC_U32: ((uint32_t *)x)[i] = (uint32_t)floor(exp(3 + 2 * s)); break;
        default: ((uint8_t *)x)[i] = (uint8_t)rnd(); break;
        }
    }
}

static void on_alarm(int sig) { (void)sig; fprintf(stderr, "HANG: a decode took more than 10 s\n"); _exit(3); }

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 100000;
    rs ^= (uint64_t)(argc > 2 ? atol(argv[2]) : 1) * 0x9E3779B97F4A7C15ull;
    signal(SIGALRM, on_alarm);
    base_t bases[] = {
        {"abs f32", FC_F32, FC_ABS, 1e-3, 3, 17, 23, 0, 0},
        {"abs f32 pred", FC_F32, FC_ABS, 1e-3, 2, 16, 16, 0, 1},
        {"abs f64 masked", FC_F64, FC_ABS, 1e-6, 2, 9, 31, 1, 0},
        {"pwrel f32", FC_F32, FC_PWREL, 1e-2, 2, 19, 21, 0, 0},
        {"pwrel f64 masked", FC_F64, FC_PWREL, 1e-3, 1, 30, 30, 1, 0},
        {"poisson u32", FC_U32, FC_POISSON, 0.5, 2, 20, 20, 1, 0},
        {"poisson i32", FC_I32, FC_POISSON, 2.0, 1, 33, 7, 0, 0},
        {"lossless i64", FC_I64, FC_LOSSLESS, 0, 2, 8, 9, 0, 0},
        {"lossless u32 masked", FC_U32, FC_LOSSLESS, 0, 1, 25, 25, 1, 0},
        {"absint i16", FC_I16, FC_ABS, 3, 2, 12, 12, 0, 0},
    };
    const int nb = sizeof bases / sizeof bases[0];
    for (int k = 0; k < nb; k++) {
        base_t *b = &bases[k];
        int64_t n = b->P * b->H * b->W;
        void *x = malloc((size_t)n * SZ[b->dtype]);
        fill(b, x);
        if (b->with_mask) {
            b->mask = calloc((size_t)(n + 7) / 8, 1);
            for (int64_t i = 0; i < n; i++) if (urand() < 0.15) b->mask[i >> 3] |= (uint8_t)(0x80u >> (i & 7));
        }
        if (b->with_pred) {
            b->pred = malloc(sizeof(double) * (size_t)n);
            for (int64_t i = 0; i < n; i++) b->pred[i] = 3 * sin(0.2 * (i % b->W)) + 0.1 * urand();
        }
        double hs[64], ev[64];
        for (int k = 0; k < 64; k++) { hs[k] = 0.99 * b->eb; ev[k] = b->eb; }
        b->len = fc_encode(x, b->dtype, b->P, b->H, b->W, b->mask, b->mode, b->eb, b->pred ? hs : NULL,
                           b->pred ? ev : NULL, b->pred, 0, 0, &b->stream, NULL);
        if (b->len <= 0) { fprintf(stderr, "encode failed for %s: %lld\n", b->name, (long long)b->len); return 2; }
        void *out = malloc((size_t)n * SZ[b->dtype]);
        int rc = fc_decode(b->stream, (size_t)b->len, out, b->dtype, b->P, b->H, b->W, b->mask, b->pred);
        if (rc) { fprintf(stderr, "clean decode failed for %s: %d (line %d)\n", b->name, rc, fc_last_fail_line()); return 2; }
        free(out);
        free(x);
    }
    long ok = 0, err = 0;
    for (long it = 0; it < iters; it++) {
        base_t *b = &bases[rnd() % nb];
        int64_t n = b->P * b->H * b->W;
        int64_t len = b->len;
        int op = (int)(rnd() % 6);
        int64_t cap = len + 64;
        uint8_t *s = malloc((size_t)cap);
        memcpy(s, b->stream, (size_t)len);
        if (op == 0) { /* bit flips */
            int k = 1 + (int)(rnd() % 4);
            while (k--) { int64_t i = (int64_t)(rnd() % (uint64_t)len); s[i] ^= (uint8_t)(1u << (rnd() % 8)); }
        } else if (op == 1) { /* byte overwrites */
            int k = 1 + (int)(rnd() % 8);
            while (k--) s[rnd() % (uint64_t)len] = (uint8_t)rnd();
        } else if (op == 2) { /* truncation */
            len = (int64_t)(rnd() % (uint64_t)len);
        } else if (op == 3) { /* extension with junk */
            int64_t add = 1 + (int64_t)(rnd() % 60);
            for (int64_t i = 0; i < add; i++) s[len + i] = (uint8_t)rnd();
            len += add;
        } else if (op == 4) { /* random bytes after the header */
            for (int64_t i = 8 + (int64_t)(rnd() % 24); i < len; i++) s[i] = (uint8_t)rnd();
        } else { /* copy a block inside the stream */
            int64_t a = (int64_t)(rnd() % (uint64_t)len), c = (int64_t)(rnd() % (uint64_t)len);
            int64_t m = (int64_t)(rnd() % 32);
            if (a + m > len) m = len - a;
            if (c + m > len) m = len - c;
            memmove(s + c, s + a, (size_t)m);
        }
        /* exact-size buffers so that ASan sees any overrun */
        uint8_t *in = malloc((size_t)(len ? len : 1));
        memcpy(in, s, (size_t)len);
        void *out = malloc((size_t)n * SZ[b->dtype]);
        uint8_t *mask = b->mask;
        uint8_t *rmask = NULL;
        if (rnd() % 8 == 0) { /* a mask unlike the encoder's */
            rmask = malloc((size_t)(n + 7) / 8);
            for (int64_t i = 0; i < (n + 7) / 8; i++) rmask[i] = (uint8_t)(rnd() & rnd());
            mask = rmask;
        }
        alarm(10);
        int rc = fc_decode(in, (size_t)len, out, b->dtype, b->P, b->H, b->W, mask, b->pred);
        alarm(0);
        if (rc == 0) ok++; else if (rc < 0) err++; else { fprintf(stderr, "bad return %d\n", rc); return 2; }
        free(rmask); free(out); free(in); free(s);
    }
    printf("fuzz: %ld cases, %ld decoded without error, %ld rejected, 0 crashes, 0 hangs\n", iters, ok, err);
    for (int k = 0; k < nb; k++) { fc_free(bases[k].stream); free(bases[k].mask); free(bases[k].pred); }
    return 0;
}
