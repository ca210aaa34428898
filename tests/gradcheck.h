/* gradcheck.h — central finite-difference checks of analytic gradients.
 *
 * Test-only (linked into the test binaries, not into libcliplab). For tests and for debugging a
 * whole model: the caller supplies a loss callback that runs the
 * forward at the current parameter values and returns the loss in double; the analytic gradient
 * must already be in the grad buffer. Sampled elements are perturbed in place and restored.
 * An element passes when |numeric - analytic| <= atol + rtol * max(|numeric|, |analytic|).
 * Piecewise-linear models (ReLU) are not differentiable everywhere: when a pre-activation crosses
 * 0 inside the stencil [x-eps, x+eps], the central difference mixes two slopes. With `skip_kinks`,
 * an element that fails is re-examined: if the analytic value matches one of the one-sided slopes
 * (f(x+eps)-f(x))/eps or (f(x)-f(x-eps))/eps to the same tolerance — the slope of the piece x lies
 * on — it is counted in n_kinks instead of n_failed. A wrong gradient matches neither side.
 * Callers should bound n_kinks.
 * Deliberately left out: exhaustive checks (sampling keeps tests fast) and complex-step tricks.
 */
#ifndef CLIPLAB_TESTS_GRADCHECK_H
#define CLIPLAB_TESTS_GRADCHECK_H

#include <stddef.h>

#include "common/rng.h"
#include "common/tensors.h"

typedef double (*GradcheckLossFn)(void *ctx);

typedef struct {
    float eps;   /* perturbation */
    double rtol, atol;
    int samples; /* random elements per tensor (all of them if the tensor is smaller) */
    int skip_kinks;
} GradcheckTol;

typedef struct {
    int n_checked, n_failed, n_kinks;
    int n_flat;       /* tensors whose sampled gradients were all below atol (the check said little) */
    double worst;     /* max over elements of |num - ana| / (atol + rtol * max(|num|, |ana|)); <= 1 passes */
    char worst_name[TENSOR_NAME_MAX];
} GradcheckStats;

/* x [n] perturbed in place; grad [n] its analytic gradient. Failures are printed to stderr. */
void gradcheck_array(GradcheckStats *st, const char *name, float *x, const float *grad, size_t n,
                     GradcheckLossFn loss, void *ctx, const GradcheckTol *tol, Rng *rng);
/* Every tensor of params (value buffer vs grad buffer). */
void gradcheck_tensors(GradcheckStats *st, const Tensors *params, GradcheckLossFn loss, void *ctx,
                       const GradcheckTol *tol, Rng *rng);

/* The usual harness: loss = sum(out * R) for a model run on fixed inputs. */
typedef struct {
    const float *(*forward)(void *model);                 /* -> out [n_out] */
    void (*backward)(void *model, const float *dout);      /* dout [n_out]; parameter grads += */
    void *model;
    size_t n_out;
    float *R; /* [n_out], the caller's buffer */
} GradcheckModel;

double gradcheck_model_loss(void *ctx); /* ctx: GradcheckModel* */
/* Fills R ~ N(0, 1), zeroes the parameter grads, runs forward + backward(R), then checks every
 * tensor of params. */
GradcheckStats gradcheck_model(GradcheckModel *m, Tensors *params, const GradcheckTol *tol, Rng *rng);

#endif
