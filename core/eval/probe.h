/* probe.h — linear probe: multinomial logistic regression with L2 on frozen features.
 *
 * probe_fit_eval is the whole protocol (standardise, pick λ on the validation split, retrain on
 * train+val, report test accuracy); the pieces below it are exposed so tests can check the loss
 * gradient and reproduce the λ selection. All arrays are row-major float; labels are int in
 * [0, n_classes). Inconsistent shapes or out-of-range labels are programmer errors (CHECK).
 */
#ifndef CLIPLAB_EVAL_PROBE_H
#define CLIPLAB_EVAL_PROBE_H

/* The λ grid, ascending. Ties in validation accuracy go to the larger λ (the simpler model). */
#define PROBE_N_LAMBDAS 5
extern const float PROBE_LAMBDAS[PROBE_N_LAMBDAS];
#define PROBE_MAX_ITER 200

typedef struct {
    float test_acc; /* test accuracy of the model retrained on train+val with the chosen λ */
    float val_acc;  /* validation accuracy of the train-only model at the chosen λ */
    float lambda;   /* chosen L2 strength (one of PROBE_LAMBDAS) */
    int iters[PROBE_N_LAMBDAS]; /* L-BFGS iterations of each λ's fit on train, in grid order */
    int refit_iters;            /* ... and of the refit on train+val */
} ProbeResult;

/* train_x [n_train, d], train_y [n_train]; val_x [n_val, d], val_y [n_val]; test_x [n_test, d],
 * test_y [n_test]. Deterministic: no randomness; the λ grid is fitted as a path, largest first from
 * zero, each next λ from the previous solution, and the refit starts from the chosen λ's solution
 * passed through probe_restandardize. */
ProbeResult probe_fit_eval(const float *train_x, const int *train_y, int n_train, const float *val_x,
                           const int *val_y, int n_val, const float *test_x, const int *test_y, int n_test,
                           int d, int n_classes);

/* Per-feature standardisation statistics of x [n, d]: mean [d], inv_std [d] (1 for a constant
 * feature, which then standardises to 0). */
void probe_standardize_fit(float *mean, float *inv_std, const float *x, int n, int d);
/* out [n, d] = (x - mean) * inv_std; out may alias x. */
void probe_standardize_apply(float *out, const float *x, const float *mean, const float *inv_std, int n, int d);

/* Rewrites params [(d+1)*n_classes] of a model on features standardised by (mean_from, inv_std_from)
 * into those of the same function of the raw features standardised by (mean_to, inv_std_to). */
void probe_restandardize(float *params, const float *mean_from, const float *inv_std_from, const float *mean_to,
                         const float *inv_std_to, int d, int n_classes);

/* Number of floats in a parameter vector: W [d, n_classes] followed by b [n_classes]. */
long probe_n_params(int d, int n_classes);

/* Regularised loss  mean_i CE(softmax(x_i W + b), y_i) + (λ/2)‖W‖²  (bias not regularised).
 * Returns the loss; grad [(d+1)*n_classes] (may be NULL) ACCUMULATES its gradient.
 * Scratch: logits [n, n_classes] (left holding dL/dlogits when grad is given), row_loss [n].
 * params [(d+1)*n_classes]; x [n, d]; y [n]. */
double probe_loss_grad(float *grad, float *logits, double *row_loss, const float *params, const float *x,
                       const int *y, int n, int d, int n_classes, float lambda);

/* Minimises probe_loss_grad by L-BFGS starting from params (in/out, [(d+1)*n_classes]); x should be
 * standardised. Returns the number of iterations taken (<= max_iter). */
int probe_train(float *params, const float *x, const int *y, int n, int d, int n_classes, float lambda,
                int max_iter);

/* Accuracy of params on x [n, d] against y [n]: the mean top-1 credit of eval/rank.h, so a k-way
 * tie for the highest logit that includes the true class counts 1/k. */
float probe_accuracy(const float *params, const float *x, const int *y, int n, int d, int n_classes);

#endif
