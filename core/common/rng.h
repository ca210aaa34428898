/* rng.h — small, fast, reproducible random numbers.
 *
 * Two styles, both deterministic across platforms and thread counts:
 *  - rng_hash(seed, index): a stateless 64-bit mix (splitmix64 finalizer). Use it to derive the
 *    generator of sample i of a stream from (seed, i), so the sample does not depend on access
 *    order, batch size or threads.
 *  - Rng: a tiny sequential generator (splitmix64 state stepping), one per consumer; its whole
 *    state is one uint64_t, so it checkpoints trivially.
 * Deliberately left out: cryptographic quality, jump-ahead.
 */
#ifndef CLIPLAB_RNG_H
#define CLIPLAB_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t state;
} Rng;

uint64_t rng_hash(uint64_t seed, uint64_t index);
void rng_init(Rng *rng, uint64_t seed);
uint64_t rng_u64(Rng *rng);
uint32_t rng_below(Rng *rng, uint32_t n); /* uniform in [0, n), n > 0 */
float rng_uniform(Rng *rng);              /* uniform in [0, 1) */
float rng_normal(Rng *rng);               /* standard normal (Box-Muller) */
void rng_fill_normal(Rng *rng, float *out, long n, float std);
void rng_fill_uniform(Rng *rng, float *out, long n, float lo, float hi);

#endif
