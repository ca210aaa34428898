/* gradcheck.c — sampled central-difference gradient checks (see gradcheck.h). */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void gradcheck_array(GradcheckStats *st, const char *name, float *x, const float *grad, size_t n,
                     GradcheckLossFn loss, void *ctx, const GradcheckTol *tol, Rng *rng) {
    int k = (size_t)tol->samples < n ? tol->samples : (int)n;
    double biggest = 0.0;
    for (int s = 0; s < k; s++) {
        size_t i = (size_t)tol->samples < n ? (size_t)rng_below(rng, (uint32_t)n) : (size_t)s;
        float saved = x[i], up = saved + tol->eps, down = saved - tol->eps;
        x[i] = up;
        double lp = loss(ctx);
        x[i] = down;
        double lm = loss(ctx);
        x[i] = saved;
        /* divide by the steps actually taken in fp32, not the nominal eps */
        double num = (lp - lm) / ((double)up - (double)down);
        double ana = grad[i];
        double scale = fmax(fabs(num), fabs(ana));
        if (scale > biggest) biggest = scale;
        double ratio = fabs(num - ana) / (tol->atol + tol->rtol * scale);
        if (ratio > 1.0 && tol->skip_kinks) {
            double l0 = loss(ctx);
            double right = (lp - l0) / ((double)up - saved), left = (l0 - lm) / ((double)saved - down);
            if (fabs(right - ana) <= tol->atol + tol->rtol * fmax(fabs(right), fabs(ana)) ||
                fabs(left - ana) <= tol->atol + tol->rtol * fmax(fabs(left), fabs(ana))) {
                st->n_kinks++;
                continue;
            }
        }
        st->n_checked++;
        if (ratio > st->worst) {
            st->worst = ratio;
            snprintf(st->worst_name, sizeof st->worst_name, "%s", name);
        }
        if (ratio > 1.0) {
            st->n_failed++;
            fprintf(stderr, "gradcheck: %s[%zu]: numeric %.6g analytic %.6g\n", name, i, num, ana);
        }
    }
    if (biggest < tol->atol) st->n_flat++;
}

void gradcheck_tensors(GradcheckStats *st, const Tensors *params, GradcheckLossFn loss, void *ctx,
                       const GradcheckTol *tol, Rng *rng) {
    for (int t = 0; t < params->n; t++)
        gradcheck_array(st, params->info[t].name, tensors_ptr(params, TBUF_VALUE, t),
                        tensors_ptr(params, TBUF_GRAD, t), params->info[t].count, loss, ctx, tol, rng);
}

double gradcheck_model_loss(void *ctx) {
    GradcheckModel *m = ctx;
    const float *out = m->forward(m->model);
    double s = 0.0;
    for (size_t i = 0; i < m->n_out; i++) s += (double)out[i] * m->R[i];
    return s;
}

GradcheckStats gradcheck_model(GradcheckModel *m, Tensors *params, const GradcheckTol *tol, Rng *rng) {
    rng_fill_normal(rng, m->R, (long)m->n_out, 1.0f);
    tensors_zero(params, TBUF_GRAD);
    m->forward(m->model);
    m->backward(m->model, m->R);
    GradcheckStats st = {0};
    gradcheck_tensors(&st, params, gradcheck_model_loss, m, tol, rng);
    return st;
}
