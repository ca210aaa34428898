/* shapes.h — the procedural shapes world: attributes, scenes, rendering, captions.
 *
 * Exposed (beyond SHAPES_OPS) for tests and statistics: a scene is the attribute metadata of one
 * sample, so tests can check the hold-out on objects and captions separately.
 * Deliberately left out: rotation, occlusion reasoning, perspective.
 */
#ifndef CLIPLAB_DATA_SHAPES_H
#define CLIPLAB_DATA_SHAPES_H

#include <stdint.h>

#include "common/rng.h"
#include "data/data.h"

enum { SHAPES_N_SHAPES = 10, SHAPES_N_COLOURS = 10, SHAPES_N_SIZES = 2, SHAPES_N_POSITIONS = 5, SHAPES_N_TEXTURES = 3 };
#define SHAPES_MAX_OBJECTS 3
#define SHAPES_POSITION_CENTER 4 /* only single-object scenes use the center region */

/* Canonical names (the first synonym). */
extern const char *const SHAPES_SHAPE_NAMES[SHAPES_N_SHAPES];
extern const char *const SHAPES_COLOUR_NAMES[SHAPES_N_COLOURS];
extern const char *const SHAPES_SIZE_NAMES[SHAPES_N_SIZES];
extern const char *const SHAPES_POSITION_NAMES[SHAPES_N_POSITIONS];
extern const char *const SHAPES_TEXTURE_NAMES[SHAPES_N_TEXTURES];

typedef struct {
    int shape, colour, size, position, texture;
    float cx, cy, radius; /* pixels */
    float rgb[3];
} ShapesObject;

typedef struct {
    int n_objects;
    ShapesObject obj[SHAPES_MAX_OBJECTS];
    float bg[3];
    float noise; /* amplitude of the uniform per-pixel noise */
} ShapesScene;

typedef struct {
    int R, max_objects;
    float caption_noise;
    uint64_t seed;
    uint8_t held_out[SHAPES_N_COLOURS][SHAPES_N_SHAPES];
} ShapesWorld;

/* Attributes a scene must have; -1 = free. A (colour, shape) pair left (partly) free is drawn
 * among the seen pairs only; fixing both allows a held-out pair (zero-shot sets). */
typedef struct {
    int n_objects, colour, shape, position;
} ShapesConstraint;

/* Checks the shapes part of cfg (max_objects, hold-out names); 0 or -1 with err. */
int shapes_world_init(ShapesWorld *w, const DataConfig *cfg, Err *err);
void shapes_scene_sample(ShapesScene *s, const ShapesWorld *w, Rng *rng, const ShapesConstraint *c);
/* Training sample `index`: its scene (drawn from rng, which is left ready for shapes_render) and
 * its caption generator. */
void shapes_training_rngs(const ShapesWorld *w, uint64_t index, Rng *scene_rng, Rng *caption_rng);
/* image [R, R, 3] in [0, 1]; noise drawn from rng. */
void shapes_render(float *image, const ShapesScene *s, int R, Rng *rng);
/* Inside test of shape in its unit frame (u right, v down, radius 1). */
int shapes_inside(int shape, float u, float v);
/* Caption of the scene at caption noise level `noise` into out[cap]. */
void shapes_caption(char *out, int cap, const ShapesScene *s, float noise, Rng *rng);

/* The caption grammar's sentence for a one-object image of (colour, shape) in caption template
 * template_index at caption_noise 0 ("a photo of a red circle."): what the caption LM is scored on. */
void shapes_object_sentence(char *out, int cap, int template_index, int colour, int shape);
/* Caption templates the zero-shot sentences of the caption LM use (the first ones of the grammar). */
#define SHAPES_GEN_TEMPLATES 4

/* Attribute of a caption word (any synonym), or -1: for tests and statistics. */
int shapes_word_colour(const char *word);
int shapes_word_shape(const char *word);
/* Words that may stand between a colour and its shape in one object phrase (size, texture, ...). */
int shapes_word_is_modifier(const char *word);

#endif
