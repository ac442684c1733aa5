"""cffi API-mode binding of the wavelet engine: ``saecodec.coding._wavelet``.

Built by setup.py during ``pip install`` beside ``saecodec.coding._fastcode`` (same flags,
same reasons: ``-ffp-contract=off`` keeps every reconstruction the same IEEE basic
operations on every machine; no ``-march=native``). cffi releases the GIL around every
call, so chunks code in parallel threads; a frame is never split across threads.
"""

import os

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = "saecodec.coding._wavelet"
SOURCES = ("wl_lift.c", "wl_code.c", "wl_fill.c", "wl_radial.c")

CDEF = """
typedef struct {
    int32_t levels; int32_t min_len; int32_t level_rule; int32_t nprog;
    const int32_t *prog_start; const int32_t *op_kind; const int32_t *op_off; const int32_t *op_ntaps;
    const int32_t *op_tap0; int32_t ntaps_total; const double *taps; const int32_t *prog_of;
    const double *band_w; const double *theta; const double *delta; const int32_t *group_of;
    int32_t ll_pred; int32_t ll_ctx; int32_t ll_classes;
    int32_t ngroups, nclasses, ntok, amax, fmax;
    const int32_t *flut; const int32_t *ctx_w; const int32_t *bias; const int32_t *a_lo; const int32_t *a_shift;
    const uint8_t *class_lut;
    int32_t tok_mode; int32_t tok_direct; const int32_t *eg_k;
    int32_t sign_ctx; const uint32_t *sign_freq;
    double rdo_lambda;
    int32_t zero_run; const uint32_t *zr_freq;
    int32_t prec, nsets; const uint32_t *freq;
    int32_t adapt; int32_t adapt_rate; int32_t adapt_smax;
} wl_params;
typedef struct wl_model wl_model;
int wl_model_new(const wl_params *p, wl_model **out);
void wl_model_free(wl_model *m);
int wl_model_attach(wl_model *base, wl_model **others, int n);
int wl_last_line(void);
int wl_levels(const wl_model *m, int64_t H, int64_t W);
int wl_bands(const wl_model *m, int64_t H, int64_t W, int32_t *out, int maxbands);
int wl_forward(const wl_model *m, double *x, int64_t H, int64_t W);
int wl_inverse(const wl_model *m, double *x, int64_t H, int64_t W);
double wl_step(int32_t k);
int wl_quantise(const wl_model *m, const double *z, int64_t H, int64_t W, int32_t step, int32_t *q);
int64_t wl_encode(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W,
                  const int32_t *steps, double *zhat, uint8_t **out);
int64_t wl_min_steps(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W, int32_t *steps);
int64_t wl_decode(const wl_model *m, const uint8_t *in, size_t n, int64_t B, int64_t H, int64_t W,
                  int32_t *steps, double *zhat);
int64_t wl_decode_to(const wl_model *m, const uint8_t *in, size_t n, int64_t B, int64_t H, int64_t W,
                     int32_t *steps, void *out, int out_kind, const double *fs, const double *fo, double ts,
                     int flags);
int wl_stats(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W, const int32_t *steps,
             int per_frame, int64_t *counts, int64_t *signs, int64_t *zruns, int64_t *raw_bits);
int64_t wl_features(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W, const int32_t *steps,
                    int32_t *feat, int32_t *mag, int32_t *group, int64_t maxn);
int wl_search_steps(const wl_model *m, const double *z, int64_t B, int64_t H, int64_t W,
                    const double *target, int32_t lo, int32_t hi, int32_t *steps);
int wl_fill_smooth(float *z, const uint8_t *mask, int64_t B, int64_t H, int64_t W, int32_t sweeps);
void wl_radial_add(double *z, int64_t H, int64_t W, double cy, double cx, double h, double k0, const double *v,
                   int64_t K);
void wl_free(void *p);
"""

CFLAGS = ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-fast-math", "-Wall", "-Wno-unused-function"]


def make_ffi(module: str = MODULE, extra_cflags=(), src: str = HERE) -> cffi.FFI:
    """``src``: the sources' directory; setup.py passes it relative to itself, as setuptools
    wants, a standalone build (benchmarks, sanitizer builds) an absolute path."""
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source(module, '#include "wl.h"', sources=[os.path.join(src, f) for f in SOURCES],
                   include_dirs=[src], extra_compile_args=CFLAGS + list(extra_cflags), libraries=["m", "pthread"])
    return ffi
