/* rank.c — expected top-k credit under random tie-breaking (see rank.h). */
#include "eval/rank.h"

#include <math.h>

#include "common/check.h"

/* Credit of a true entry with `above` strictly higher and `tied` equal other entries. */
static double tie_credit(int above, int tied, int k) {
    int in = k - above;
    if (in <= 0) return 0.0;
    if (in > tied + 1) in = tied + 1;
    return (double)in / (tied + 1);
}

void rank_credits(const float *s, int n, int truth, int k, double *top1, double *topk) {
    CHECK(n > 0 && truth >= 0 && truth < n && k >= 1, "n=%d truth=%d k=%d", n, truth, k);
    *top1 = *topk = 0.0;
    const float t = s[truth];
    if (!isfinite(t)) return;
    int above = 0, tied = 0;
    for (int j = 0; j < n; j++) {
        above += j != truth && (s[j] > t || !isfinite(s[j]));
        tied += j != truth && s[j] == t;
    }
    *top1 = tie_credit(above, tied, 1);
    *topk = tie_credit(above, tied, k);
}

double rank_topk_credit(const float *s, int n, int truth, int k) {
    double top1, topk;
    rank_credits(s, n, truth, k, &top1, &topk);
    return topk;
}
