/* retrieval.h — image↔text retrieval recall on paired embeddings.
 *
 * Pair i (image row i, text row i) is the only correct match. R@k is the mean expected top-k
 * credit of the true match under the tie rule of eval/rank.h: a k-way tie earns 1/k of a hit at
 * R@1, and a query whose row holds a non-finite score earns nothing.
 * Scores are plain dot products, i.e. cosine for the L2-normalised rows this is meant for.
 */
#ifndef CLIPLAB_EVAL_RETRIEVAL_H
#define CLIPLAB_EVAL_RETRIEVAL_H

#define RETRIEVAL_TOPK 5

typedef struct {
    float i2t_r1, i2t_r5; /* image query, text candidates */
    float t2i_r1, t2i_r5; /* text query, image candidates */
} RetrievalResult;

/* img [N, D], txt [N, D]. The similarity is computed a block of query rows at a time (at most
 * ~2M floats held), never as the full N x N matrix. */
RetrievalResult retrieval_eval(const float *img, const float *txt, int N, int D);

/* Same, with an explicit number of query rows per block (>= 1); retrieval_eval picks it from N.
 * Exposed so tests can check that the blocking does not change the result. */
RetrievalResult retrieval_eval_blocked(const float *img, const float *txt, int N, int D, int block_rows);

#endif
