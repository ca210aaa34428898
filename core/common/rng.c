/* rng.c — splitmix64-based generators (see rng.h). */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rng_hash(uint64_t seed, uint64_t index) {
    return splitmix64_mix(splitmix64_mix(seed + 0x9e3779b97f4a7c15ULL) ^ (index * 0xd1b54a32d192ed03ULL + 1));
}

void rng_init(Rng *rng, uint64_t seed) { rng->state = splitmix64_mix(seed ^ 0x2545f4914f6cdd1dULL); }

uint64_t rng_u64(Rng *rng) {
    rng->state += 0x9e3779b97f4a7c15ULL;
    return splitmix64_mix(rng->state);
}

uint32_t rng_below(Rng *rng, uint32_t n) { return (uint32_t)(((rng_u64(rng) >> 32) * (uint64_t)n) >> 32); }

float rng_uniform(Rng *rng) { return (float)(rng_u64(rng) >> 40) * (1.0f / 16777216.0f); }

float rng_normal(Rng *rng) {
    /* Box-Muller; u1 in (0, 1] so the log is finite. */
    double u1 = ((double)(rng_u64(rng) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(rng_u64(rng) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

void rng_fill_normal(Rng *rng, float *out, long n, float std) {
    for (long i = 0; i < n; i++) out[i] = std * rng_normal(rng);
}

void rng_fill_uniform(Rng *rng, float *out, long n, float lo, float hi) {
    for (long i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng_uniform(rng);
}
