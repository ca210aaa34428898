/* config.h — the resolved configuration of one experiment, as the training code reads it.
 *
 * Plain C with fixed-size arrays, so a Config can be copied, stored per sweep run and compared
 * without ownership rules. The sections that plug-ins read are the plug-ins' own types (HeadConfig,
 * TextTowerConfig, ObjectiveConfig, ...): a plug-in receives its section, never the whole Config.
 * Every field is filled by core/spec/spec.c from its one schema table (defaults, YAML files,
 * command-line overrides); the meaning, default and range of each field is in that table and
 * printed by `cliplab help-spec`.
 *
 * Enum-valued keys are kept as their names (e.g. loss.kind = "siglip"): the registries of heads,
 * objectives, losses, text towers and datasets look entries up by name, and the spec loader has
 * already checked the name against that same registry (the schema holds no copy of the names).
 * Deliberately left out: cross-key checks that need a built model (a tap naming a stage that does
 * not exist, text width not divisible by heads) — the model builder reports those.
 */
#ifndef CLIPLAB_CONFIG_H
#define CLIPLAB_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "objectives/objective.h"

#define CONFIG_NAME_MAX 64     /* experiment name, task name (with the NUL) */
#define CONFIG_ENUM_MAX 24     /* enum value names */
#define CONFIG_PATH_MAX 256    /* data.fmnist_dir */
#define CONFIG_HOLDOUT_MAX 16  /* entries of data.holdout */
#define CONFIG_HOLDOUT_LEN 40  /* one "colour shape" pair */
#define CONFIG_WIDTHS_MAX IMAGE_TOWER_MAX_STAGES

typedef struct {
    char name[CONFIG_NAME_MAX];
    int seed;
    struct {
        char dataset[CONFIG_ENUM_MAX]; /* a dataset (data/dataset.c registry) */
        int image_size;
        double caption_noise;
        int max_objects;
        int n_holdout;
        char holdout[CONFIG_HOLDOUT_MAX][CONFIG_HOLDOUT_LEN]; /* "colour shape" */
        char fmnist_dir[CONFIG_PATH_MAX];
        int context; /* tokens per caption, including BOS/EOT */
        int eval_images;
    } data;
    ModelConfig model;         /* objectives/objective.h: the towers', heads' sections */
    ObjectiveConfig objective; /* objectives/objective.h */
    LossSection loss;          /* objectives/objective.h */
    struct {
        int64_t images;
        int batch_size;
        double lr;
        double weight_decay;
        int64_t warmup_images;
        char schedule[CONFIG_ENUM_MAX]; /* schedule_kind_name: cosine | constant | wsd */
        double decay_fraction;          /* wsd: final fraction of the budget spent decaying */
        double beta1;
        double beta2;
        double eps;
        double grad_clip; /* 0 = off */
        int threads;      /* 0 = all cores */
        int64_t checkpoint_every_images; /* 0 = only at the end */
    } train;
    struct {
        int64_t every_images;
        bool probe;
        bool probe_all_taps; /* false: probe only the tapped stage and the post-head embedding */
        int probe_images; /* the probe's own set: 4/9 train, 1/9 validation, 4/9 test */
        bool all_tasks; /* false: evaluations score only `task` */
        int retrieval_n;
        double target_top1;
        char task[CONFIG_NAME_MAX];
        char probe_task[CONFIG_NAME_MAX];
        bool validation; /* score the validation evaluation sets, never the reported test sets */
    } eval;
} Config;

#endif
