/* curve.c — when a learning curve reaches a level (see curve.h). */
#include "analysis/curve.h"

#include <math.h>

double images_to_reach(const double *x, const double *y, int n, double target) {
    for (int i = 0; i < n; i++) {
        if (!(y[i] >= target)) continue;
        if (i == 0) return x[0];
        double f = (target - y[i - 1]) / (y[i] - y[i - 1]);
        return x[i - 1] + f * (x[i] - x[i - 1]);
    }
    return NAN;
}
