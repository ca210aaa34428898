/* rank.h — the one tie rule of every ranked evaluation (zero-shot, retrieval, linear probe).
 *
 * A row of scores ranks its entries; one entry is the true one. With `above` entries scoring
 * strictly higher than the true one and `tied` OTHER entries scoring exactly as much, the true
 * entry's position under uniformly random tie-breaking is uniform on above+1 .. above+tied+1, so
 * its expected top-k credit is  clamp(k - above, 0, tied + 1) / (tied + 1):  a k-way tie on the
 * true class earns 1/k of a top-1 hit, constant scores earn exactly chance (k / n_entries), and
 * the rule is neither optimistic (ties as hits) nor pessimistic (ties as misses).
 * Non-finite scores (NaN, ±inf) are a miss: a non-finite true score earns 0, and a non-finite
 * competitor ranks above the true entry, so a broken model never scores by accident.
 * Credits are in [0, 1], so an accuracy averaged over n rows has a standard error of at most
 * sqrt(p (1 - p) / n), the binomial one that the report prints.
 * Deliberately left out: weighting by class frequency (every task's classes are balanced).
 */
#ifndef CLIPLAB_EVAL_RANK_H
#define CLIPLAB_EVAL_RANK_H

/* Expected top-k credit of entry `truth` of scores s [n] (k >= 1), by the rule above. */
double rank_topk_credit(const float *s, int n, int truth, int k);

/* The same for top-1 and top-k at once, in one pass over the row (the common case). */
void rank_credits(const float *s, int n, int truth, int k, double *top1, double *topk);

#endif
