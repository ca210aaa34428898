/* test_common.c — rng determinism and distribution, Err formatting, runtime BLAS check. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cliplab.h"
#include "common/check.h"
#include "common/rng.h"
#include "common/tensors.h"

int openblas_get_parallel(void);

static void test_rng_hash_is_deterministic_and_mixes(void **state) {
    (void)state;
    assert_true(rng_hash(1, 5) == rng_hash(1, 5));
    assert_true(rng_hash(1, 5) != rng_hash(1, 6));
    assert_true(rng_hash(1, 5) != rng_hash(2, 5));
}

static void test_rng_uniform_and_normal_moments(void **state) {
    (void)state;
    Rng r;
    rng_init(&r, 42);
    double su = 0, sn = 0, sn2 = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        float u = rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        su += u;
        float z = rng_normal(&r);
        sn += z;
        sn2 += (double)z * z;
    }
    assert_true(fabs(su / n - 0.5) < 0.005);
    assert_true(fabs(sn / n) < 0.01);
    assert_true(fabs(sn2 / n - 1.0) < 0.02);
    for (int i = 0; i < 1000; i++) assert_true(rng_below(&r, 7) < 7);
}

static void test_err_set_formats_and_returns_minus_one(void **state) {
    (void)state;
    Err e;
    assert_int_equal(err_set(&e, "%s:%d:%d: bad", "a.yaml", 3, 5), -1);
    assert_string_equal(e.msg, "a.yaml:3:5: bad");
    assert_int_equal(err_set(NULL, "dropped"), -1);
}

static void test_openblas_is_openmp_build(void **state) {
    (void)state;
    assert_int_equal(openblas_get_parallel(), 2);
}

static void test_tensors_carve_one_allocation_and_bind(void **state) {
    (void)state;
    Tensors t;
    tensors_init(&t, 4);
    float *w = NULL, *dw = NULL, *b = NULL, *db = NULL;
    tensors_add2(&t, "layer.weight", 3, 5, 0, &w, &dw);
    tensors_add1(&t, "layer.bias", 3, TENSOR_NO_DECAY, &b, &db);
    tensors_alloc(&t);
    assert_ptr_equal(w, t.buf[TBUF_VALUE]);
    assert_ptr_equal(dw, t.buf[TBUF_GRAD]);
    assert_true(b >= w + 15 && b < t.buf[TBUF_VALUE] + t.total); /* after the weight, inside one block */
    assert_true(((uintptr_t)b % 64) == 0);
    assert_int_equal(tensors_find(&t, "layer.bias"), 1);
    assert_int_equal(tensors_find(&t, "nope"), -1);
    assert_ptr_equal(tensors_ptr(&t, TBUF_ADAM_V, 1), t.buf[TBUF_ADAM_V] + (b - w));
    for (int i = 0; i < 3; i++) db[i] = 1.0f;
    tensors_zero(&t, TBUF_GRAD);
    for (int i = 0; i < 3; i++) assert_true(db[i] == 0.0f);
    tensors_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_hash_is_deterministic_and_mixes),
        cmocka_unit_test(test_rng_uniform_and_normal_moments),
        cmocka_unit_test(test_err_set_formats_and_returns_minus_one),
        cmocka_unit_test(test_openblas_is_openmp_build),
        cmocka_unit_test(test_tensors_carve_one_allocation_and_bind),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
