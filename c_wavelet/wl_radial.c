/* The radial prediction (saecodec/coding/radial.py, docs/wavelet.md "Radial prediction block"):
 * added to a decoded frame. IEEE basic operations and a correctly rounded square root, in the
 * order the doc gives (compiled with -ffp-contract=off), so every machine adds the same bits. */
#include <math.h>

#include "wl.h"

void wl_radial_add(double *z, int64_t H, int64_t W, double cy, double cx, double h, double k0, const double *v,
                   int64_t K) {
    const double top = (double)(K - 2);
    for (int64_t y = 0; y < H; y++) {
        const double dy = (double)y - cy;
        const double dy2 = dy * dy;
        double *row = z + y * W;
        for (int64_t x = 0; x < W; x++) {
            const double dx = (double)x - cx;
            const double r = sqrt(dy2 + dx * dx);
            const double t = r / h - k0;
            double fi = floor(t);
            fi = fi > 0.0 ? fi : 0.0;
            fi = fi < top ? fi : top;
            const int64_t i = (int64_t)fi;
            const double f = t - fi;
            const double p = (1.0 - f) * v[i] + f * v[i + 1];
            row[x] = row[x] + p;
        }
    }
}
