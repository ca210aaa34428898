/* runtime.c — process-wide checks done once at start-up (see runtime.h). */
#include "common/runtime.h"

#include <stdio.h>
#include <stdlib.h>

/* From OpenBLAS: 0 = sequential, 1 = pthreads, 2 = OpenMP. Declared here rather than through
 * cblas.h because Debian's cblas.h comes from the pthread flavour's -dev package. */
int openblas_get_parallel(void);

void cliplab_runtime_init(void) {
    if (openblas_get_parallel() != 2) {
        fprintf(stderr, "cliplab: the linked OpenBLAS is not its OpenMP build (openblas_get_parallel() = %d); "
                        "install libopenblas0-openmp and rebuild\n", openblas_get_parallel());
        exit(2);
    }
}
