/* xent.c — softmax cross-entropy with hard (class index, -1 = ignore) or soft (distribution)
 * targets, forward/backward. The loss is computed as log-sum-exp minus the target logit rather
 * than -log(prob), so it stays accurate when the target's probability underflows.
 * Row-parallel with OpenMP above OPS_PAR_MIN elements.
 * Deliberately left out: label smoothing (use soft targets), reduction over rows (the caller
 * weights rows through dlosses). */
#include "common/check.h"
#include "ops.h"

void ops_softmax_xent_forward(float *losses, float *probs, const float *logits, const int *targets, int B, int V) {
#pragma omp parallel for if ((size_t)B * V > OPS_PAR_MIN) schedule(static)
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * V;
        float lse = ops_softmax_row(probs + (size_t)b * V, z, V);
        int t = targets[b];
        CHECK(t >= -1 && t < V, "target %d of row %d outside [-1, %d)", t, b, V);
        losses[b] = t < 0 ? 0.0f : lse - z[t];
    }
}

void ops_softmax_xent_backward(float *dlogits, const float *dlosses, const float *probs, const int *targets,
                               int B, int V) {
#pragma omp parallel for if ((size_t)B * V > OPS_PAR_MIN) schedule(static)
    for (int b = 0; b < B; b++) {
        int t = targets[b];
        if (t < 0) continue;
        const float *restrict p = probs + (size_t)b * V;
        float *restrict dz = dlogits + (size_t)b * V;
        float dl = dlosses[b];
        for (int i = 0; i < V; i++) dz[i] += dl * p[i];
        dz[t] -= dl;
    }
}

void ops_softmax_xent_soft_forward(float *losses, float *probs, const float *logits, const float *target, int B, int V) {
#pragma omp parallel for if ((size_t)B * V > OPS_PAR_MIN) schedule(static)
    for (int b = 0; b < B; b++) {
        const float *restrict z = logits + (size_t)b * V, *restrict q = target + (size_t)b * V;
        float lse = ops_softmax_row(probs + (size_t)b * V, z, V);
        float loss = 0.0f;
#pragma omp simd reduction(+ : loss)
        for (int i = 0; i < V; i++) loss += q[i] * (lse - z[i]);
        losses[b] = loss;
    }
}

/* d/dz of sum_v q_v (lse - z_v) is sum(q) * p - q; sum(q) = 1 for a distribution, but keeping it
 * makes the gradient exact for any target row. */
void ops_softmax_xent_soft_backward(float *dlogits, const float *dlosses, const float *probs, const float *target,
                                    int B, int V) {
#pragma omp parallel for if ((size_t)B * V > OPS_PAR_MIN) schedule(static)
    for (int b = 0; b < B; b++) {
        const float *restrict p = probs + (size_t)b * V, *restrict q = target + (size_t)b * V;
        float *restrict dz = dlogits + (size_t)b * V;
        float mass = 0.0f;
#pragma omp simd reduction(+ : mass)
        for (int i = 0; i < V; i++) mass += q[i];
        float dl = dlosses[b];
        for (int i = 0; i < V; i++) dz[i] += dl * (mass * p[i] - q[i]);
    }
}
