/* evaluate.h — one evaluation of a model on fixed sets: zero-shot per task (top-1/top-5), linear
 * probes at every image tap and before/after the head, retrieval R@1/R@5 both ways, embedding
 * geometry. Results are a flat list of named metrics so the log, the report and the CLI table
 * treat them alike. Deliberately left out: evaluation during a step (it runs between steps, in
 * eval mode, and is not counted as training images). */
#ifndef CLIPLAB_EVALUATE_H
#define CLIPLAB_EVALUATE_H

#include "common/comm.h"
#include "model/model.h"

#define METRICS_MAX 128
#define METRIC_NAME_MAX 48

typedef struct {
    int n;
    char names[METRICS_MAX][METRIC_NAME_MAX];
    double values[METRICS_MAX];
    long counts[METRICS_MAX];   /* evaluation items the value rests on (images, queries); 0 unknown */
    double chance[METRICS_MAX]; /* value of a random ranking, for accuracies; NaN otherwise */
} Metrics;

/* Sets (or replaces) a metric. count: images or queries it averages over; chance: NaN unless
 * the metric is an accuracy in [0, 1], whose evaluation-only standard error is then at most
 * sqrt(p (1 - p) / count) (eval/rank.h). */
void metrics_set(Metrics *m, const char *name, double value, long count, double chance);
/* NaN if absent */
double metrics_get(const Metrics *m, const char *name);
/* Index of a metric, or -1. */
int metrics_find(const Metrics *m, const char *name);

/* Standard errors above chance a run's best accuracy must reach to count as having left chance:
 * one-sided, and the best of up to ~20 evaluations, hence 3 rather than 2. */
#define CHANCE_Z 3.0
/* 1 if the best of values [n] exceeds chance by more than CHANCE_Z binomial standard errors of an
 * accuracy over count items at p = chance; 0 otherwise (also when no value is finite). */
int metrics_left_chance(const double *values, int n, long count, double chance);

/* Top-1 / top-5 accuracy of scores [n, nc] against labels [n], ties and non-finite scores by
 * the rule of eval/rank.h (constant scores give exactly 1/nc and 5/nc). */
#define ZEROSHOT_TOPK 5
void zeroshot_accuracy(const float *scores, const int *labels, int n, int nc, double *top1, double *top5);

/* What one evaluation computes besides cfg.eval.task's zero-shot scores (a bit set). */
enum {
    EVAL_PROBE = 1,     /* linear probes (thousands of images, five fits per feature set) */
    EVAL_ALL_TASKS = 2, /* every zero-shot task, else only cfg.eval.task */
    EVAL_RETRIEVAL = 4  /* retrieval and the joint space's geometry (objectives with text embeddings) */
};
/* One evaluation of the parts in `parts`. A part left out keeps its metrics, as NaN with the same
 * names, counts and chance, so every evaluation of a run yields the same metric list: a run's
 * intermediate evaluations compute only what its curves read (cfg.eval.task) and its final one
 * the rest (costly scoring rules such as the caption model's, ~1 s of one core per 512 images x
 * 400 sentences, are why). comm: the ranks that share the evaluation (a collective: every rank
 * calls it), each computing the features of its share of the images; rank 0 alone computes the
 * metrics from the gathered features, bitwise as it would alone (out is empty on the others).
 * comm_serial(): one process. */
void evaluate_model(Model *m, int parts, const Comm *comm, Metrics *out);

#endif
