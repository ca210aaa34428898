/* curve.h — reading a learning curve (a metric sampled at increasing images processed): when it
 * reaches a level. Used by the trainer for a run's images_to_target and by the efficiency
 * analysis for the Fig. 2 ratios.
 * Deliberately left out: smoothing (curves are used as logged, between evaluations linear). */
#ifndef CLIPLAB_CURVE_H
#define CLIPLAB_CURVE_H

/* Images at which series y (sampled at x, ascending) first reaches target, linearly interpolated
 * between evaluations; NaN if it never does. */
double images_to_reach(const double *x, const double *y, int n, double target);

#endif
