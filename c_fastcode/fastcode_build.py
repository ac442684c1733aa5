"""cffi API-mode binding of the fastcode kernels: ``saecodec.coding._fastcode``.

Built by setup.py during ``pip install`` (``make_ffi().distutils_extension()``), like
c_filter/embed_build.py. cffi releases the GIL around every call, so chunks encode and
decode in parallel threads.

``-ffp-contract=off`` is a correctness flag, not a tuning one: reconstructions must be the
same IEEE basic operations on every machine, and gcc contracts a*b+c into an FMA by
default where the target has one (aarch64, x86 with -march=native). No ``-march=native``:
the build must run on any machine of the architecture (wheels, CI).
"""

import os

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = "saecodec.coding._fastcode"
SOURCES = ("fc_quant.c", "fc_choose.c", "fc_encode.c", "fc_decode.c", "fc_tables.c", "fc_mask.c")

CDEF = """
typedef struct {
    int64_t n_fallback; int64_t n_coded; int64_t table_bytes; int64_t rans_bytes;
    int64_t extra_bytes; int64_t fallback_bytes; int32_t n_ctx; int32_t ctx_kind;
    int32_t precision; int32_t predictors[4];
} fc_stats;
int64_t fc_encode(const void *x, int dtype, int64_t P, int64_t H, int64_t W,
                  const uint8_t *mask, int mode, double eb,
                  const double *half_step, const double *eb_verify, const double *pred,
                  int allowed, int flags, uint8_t **out, fc_stats *stats);
int fc_decode(const uint8_t *in, size_t n, void *out, int dtype, int64_t P, int64_t H,
              int64_t W, const uint8_t *mask, const double *pred);
int fc_peek(const uint8_t *in, size_t n, int *mode, int *uses_pred);
int fc_planes(const uint8_t *in, size_t n, int64_t P, uint8_t *predictor, uint8_t *uses_pred);
void fc_free(void *p);
int64_t fc_scan_special(const void *x, int dtype, int64_t n, int nonfinite, const double *sent,
                        const int64_t *isent, int ns, double below, int use_below, uint8_t *bits);
int64_t fc_gather_masked(const void *x, int dtype, int64_t n, const uint8_t *bits, void *vals);
int fc_scatter_masked(void *out, int dtype, int64_t n, const uint8_t *bits, const void *vals, int64_t nvals);
int64_t fc_range(const void *x, int dtype, int64_t n, const uint8_t *mask, double *lo, double *hi);
double fc_exp2(double t);
void fc_exp2_array(const double *t, double *out, int64_t n);
double fc_cast(double v, int dtype);
int fc_last_fail_line(void);
"""

CFLAGS = ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-fast-math", "-Wall", "-Wno-unused-function"]


def make_ffi(module: str = MODULE, extra_cflags=(), src: str = HERE) -> cffi.FFI:
    """``src``: the sources' directory; setup.py passes it relative to itself, as setuptools
    wants, a standalone build (benchmarks, A/B variants) an absolute path."""
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source(module, '#include "fc.h"', sources=[os.path.join(src, f) for f in SOURCES],
                   include_dirs=[src], extra_compile_args=CFLAGS + list(extra_cflags), libraries=["m"])
    return ffi
