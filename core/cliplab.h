/* cliplab.h — the one public header of cliplab for callers of libcliplab.
 *
 * The version and start-up check, and the contrastive losses on plain float arrays (row-major,
 * so other languages can call them through libcliplab.so).
 * Deliberately left out: anything a caller of the library does not need (kernels and internals
 * live in the module headers under core/; the CLI's entry points are in cli/cli.h). No header
 * under core/ includes this one.
 */
#ifndef CLIPLAB_H
#define CLIPLAB_H

/* CLIPLAB_VERSION and cliplab_runtime_init(), the start-up check of the linked OpenBLAS. */
#include "common/runtime.h"

/* The contrastive losses on plain row-major float arrays: value and gradients, dense and tiled. */
#include "losses/losses.h"

#endif
