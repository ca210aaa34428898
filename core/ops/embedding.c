/* embedding.c — token embedding lookup plus learned positions, forward/backward.
 * The forward is parallel over (b, t) rows above OPS_PAR_MIN elements. The backward stays serial:
 * repeated token ids scatter into the same dwte row, and it is O(B*T*C), small beside the matmuls.
 * Deliberately left out: sinusoidal positions, padding-id skipping (PAD is an ordinary row). */
#include <string.h>

#include "common/check.h"
#include "ops.h"

void ops_embedding_forward(float *out, const int *ids, const float *wte, const float *wpe, int B, int T, int C, int V) {
#pragma omp parallel for if ((size_t)B * T * C > OPS_PAR_MIN) schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        int id = ids[bt];
        CHECK(id >= 0 && id < V, "token id %d at position %d outside [0, %d)", id, bt, V);
        const float *restrict e = wte + (size_t)id * C;
        float *restrict o = out + (size_t)bt * C;
        if (!wpe) {
            memcpy(o, e, (size_t)C * sizeof *o);
            continue;
        }
        const float *restrict p = wpe + (size_t)(bt % T) * C;
        for (int i = 0; i < C; i++) o[i] = e[i] + p[i];
    }
}

void ops_embedding_backward(float *dwte, float *dwpe, const float *dout, const int *ids, int B, int T, int C, int V) {
    for (int bt = 0; bt < B * T; bt++) {
        const float *restrict d = dout + (size_t)bt * C;
        if (dwte) {
            CHECK(ids[bt] >= 0 && ids[bt] < V, "token id %d at position %d outside [0, %d)", ids[bt], bt, V);
            float *restrict g = dwte + (size_t)ids[bt] * C;
            for (int i = 0; i < C; i++) g[i] += d[i];
        }
        if (dwpe) {
            float *restrict g = dwpe + (size_t)(bt % T) * C;
            for (int i = 0; i < C; i++) g[i] += d[i];
        }
    }
}
