/* evaluate.h — one evaluation of a model on fixed sets: zero-shot per task (top-1/top-5), linear
 * probes at every image tap and before/after the head, retrieval R@1/R@5 both ways, embedding
 * geometry. Results are a flat list of named metrics so the log, the report and the CLI table
 * treat them alike. Deliberately left out: evaluation during a step (it runs between steps, in
 * eval mode, and is not counted as training images). */
#ifndef CLIPLAB_EVALUATE_H
#define CLIPLAB_EVALUATE_H

#include "train/model.h"

#define METRICS_MAX 128
#define METRIC_NAME_MAX 48

typedef struct {
    int n;
    char names[METRICS_MAX][METRIC_NAME_MAX];
    double values[METRICS_MAX];
} Metrics;

void metrics_set(Metrics *m, const char *name, double value);
/* NaN if absent */
double metrics_get(const Metrics *m, const char *name);

/* Top-1 / top-5 accuracy of scores [n, nc] against labels [n], ties and non-finite scores by
 * the rule of eval/rank.h (constant scores give exactly 1/nc and 5/nc). */
#define ZEROSHOT_TOPK 5
void zeroshot_accuracy(const float *scores, const int *labels, int n, int nc, double *top1, double *top5);

/* with_probe: also fit linear probes; all_tasks: score every zero-shot task (else only
 * cfg.eval.task, for cheap intermediate evaluations of costly scoring rules such as the caption
 * model's, which decodes every image x prompt pair). */
void evaluate_model(Model *m, int with_probe, int all_tasks, Metrics *out);

#endif
