/* retrieval.h — image↔text retrieval recall on paired embeddings.
 *
 * Pair i (image row i, text row i) is the only correct match. The rank of the true match among
 * all N candidates is the number of OTHER candidates whose score is >= its score: ties are broken
 * pessimistically (a candidate scoring exactly as much as the true match counts as ranked above
 * it), and a NaN score counts against the query. R@k = fraction of queries with rank < k.
 * Scores are plain dot products, i.e. cosine for the L2-normalised rows this is meant for.
 */
#ifndef CLIPLAB_EVAL_RETRIEVAL_H
#define CLIPLAB_EVAL_RETRIEVAL_H

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
