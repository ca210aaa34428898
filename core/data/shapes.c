/* shapes.c — the procedural shapes world (see shapes.h): scene sampling with the compositional
 * hold-out, anti-aliased rendering, the caption grammar, zero-shot tasks, and its DatasetOps.
 *
 * Rendering: each object's inside test is evaluated on the pixel-corner grid of its bounding
 * box; pixels whose four corners agree are fully in or out, the others (the edges) are
 * supersampled 4x4 — anti-aliasing at ~1 inside test per pixel. (A feature thinner than a pixel
 * between corners would be missed; the thinnest, the ring's band, is > 1.5 px at R >= 32.)
 * Captions: canonical "a photo of a red circle, a blue square and a green star." at
 * caption_noise 0; every variation (template, synonyms, attribute order, extra attributes,
 * partial mention, fillers) is taken with a probability proportional to caption_noise.
 * Deliberately left out: rotation and overlap between objects (objects sit in distinct regions).
 */
#include "data/shapes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "data/dataset_impl.h"

enum { CIRCLE, SQUARE, TRIANGLE, STAR, CROSS, HEART, DIAMOND, HEXAGON, RING, CRESCENT };

static SynList SHAPE_SYN[SHAPES_N_SHAPES] = {
    {"circle", "disc", "disk"}, {"square", "box", "block"}, {"triangle", "wedge"}, {"star"},
    {"cross", "plus"}, {"heart"}, {"diamond", "rhombus", "lozenge"}, {"hexagon", "hex"},
    {"ring", "donut", "hoop"}, {"crescent", "moon"},
};
static SynList COLOUR_SYN[SHAPES_N_COLOURS] = {
    {"red", "crimson", "scarlet"}, {"orange", "tangerine", "amber"}, {"yellow", "golden", "lemon"},
    {"green", "emerald", "lime"},  {"cyan", "turquoise", "aqua"},    {"blue", "azure", "cobalt"},
    {"purple", "violet", "lilac"}, {"pink", "rose", "magenta"},      {"brown", "chocolate", "tan"},
    {"white", "ivory", "snowy"},
};
static const float COLOUR_RGB[SHAPES_N_COLOURS][3] = {
    {0.86f, 0.10f, 0.10f}, {0.97f, 0.55f, 0.08f}, {0.96f, 0.90f, 0.12f}, {0.12f, 0.68f, 0.18f},
    {0.10f, 0.82f, 0.86f}, {0.12f, 0.26f, 0.92f}, {0.55f, 0.18f, 0.76f}, {0.98f, 0.52f, 0.74f},
    {0.48f, 0.28f, 0.10f}, {0.98f, 0.98f, 0.98f},
};
static SynList SIZE_SYN[SHAPES_N_SIZES] = {{"small", "little", "tiny"}, {"large", "big", "huge"}};
static SynList TEXTURE_SYN[SHAPES_N_TEXTURES] = {{"plain", "solid"}, {"striped", "stripy"}, {"dotted", "spotted"}};
static SynList POSITION_SYN[SHAPES_N_POSITIONS] = {
    {"top left", "upper left", "top left corner"},       {"top right", "upper right", "top right corner"},
    {"bottom left", "lower left", "bottom left corner"}, {"bottom right", "lower right", "bottom right corner"},
    {"center", "middle", "centre"},
};
static SynList COUNT_SYN[SHAPES_MAX_OBJECTS] = {{"one", "1"}, {"two", "2"}, {"three", "3"}};
/* Region centres as fractions of R, in SHAPES_POSITION_NAMES order. */
static const float REGION_XY[SHAPES_N_POSITIONS][2] = {{0.27f, 0.27f}, {0.73f, 0.27f}, {0.27f, 0.73f}, {0.73f, 0.73f}, {0.5f, 0.5f}};

const char *const SHAPES_SHAPE_NAMES[SHAPES_N_SHAPES] = {"circle", "square", "triangle", "star", "cross",
                                                         "heart", "diamond", "hexagon", "ring", "crescent"};
const char *const SHAPES_COLOUR_NAMES[SHAPES_N_COLOURS] = {"red", "orange", "yellow", "green", "cyan",
                                                           "blue", "purple", "pink", "brown", "white"};
const char *const SHAPES_SIZE_NAMES[SHAPES_N_SIZES] = {"small", "large"};
const char *const SHAPES_POSITION_NAMES[SHAPES_N_POSITIONS] = {"top left", "top right", "bottom left", "bottom right", "center"};
const char *const SHAPES_TEXTURE_NAMES[SHAPES_N_TEXTURES] = {"plain", "striped", "dotted"};

/* Caption templates: "{o}" is the object list, "{n}" the number of objects. Template 0 is the
 * canonical one. */
static const char *const TEMPLATES[] = {
    "a photo of {o}.", "an image of {o}.", "a picture of {o}.", "{o}.", "{o} on a grey background.",
    "a drawing of {o}.", "a rendering of {o}.", "there is {o}.", "here we see {o}.", "this image shows {o}.",
    "a simple illustration of {o}.", "clipart of {o}.", "{o}, flat icon.", "stock photo of {o}.",
    "look at {o}!", "i made {o}.", "my drawing of {o}.", "{n} objects including {o}.", "{n} shapes: {o}.",
    "a grey card with {o}.", "a close up of {o}.", "the picture contains {o}.", "can you see {o}?",
    "an abstract composition with {o}.", "wallpaper with {o}.", "{o} lol", "a low resolution photo of {o}.",
    "a cropped photo of {o}.", "a flat design of {o}.", "vector art of {o}.", "a thumbnail of {o}.",
    "a blurry photo of {o}.", "a photo with {n} things: {o}.", "geometry practice: {o}.", "kids toys, {o}.",
    "{n} items, among them {o}.",
};
#define N_TEMPLATES (int)(sizeof TEMPLATES / sizeof TEMPLATES[0])
static const char *const PREFIXES[] = {"wow", "omg", "new post:", "today:", "untitled:", "free download:", "hd", "pic:", "found this:"};
static const char *const SUFFIXES[] = {"lol", "4k", "hd", "free download", "#art", "#geometry", "stock", "png",
                                       "high quality", "cute", "so cool", "nice", "awesome", "original", "2019", "for kids"};
static const char *const JOINERS[] = {" and ", ", ", " with ", " next to ", " as well as ", " beside "};
static const char *const COLOUR_AFTER[] = {"that is", "which is", "painted"}; /* "a circle that is red" */
static const char *const PLACES[] = {"in the", "at the"};

/* Zero-shot prompt templates per kind of task. */
static const char *const PROMPTS_OBJECT[] = {"a photo of a {}.", "a drawing of a {}.", "an image of a {}.",
                                             "a {} on a grey background.", "a picture of a {}."};
static const char *const PROMPTS_COLOUR[] = {"a photo of a {} shape.", "a drawing of a {} object.",
                                             "an image of something {}.", "a {} thing on a grey background."};
static const char *const PROMPTS_COUNT[] = {"a photo of {}.", "an image of {}.", "a picture with {}.", "{} on a grey background."};
static const char *const COUNT_CLASSES[SHAPES_MAX_OBJECTS] = {"one object", "two objects", "three objects"};
static const char *const PROMPTS_POSITION[] = {"a photo of a shape in the {}.", "an object at the {}.",
                                               "a drawing with a shape in the {}.", "something in the {} of the image."};

static int find_syn(SynList *lists, int n, const char *word) {
    for (int i = 0; i < n; i++)
        for (int k = 0; k < syn_count(lists[i]); k++)
            if (!strcmp(lists[i][k], word)) return i;
    return -1;
}

int shapes_word_colour(const char *word) { return find_syn(COLOUR_SYN, SHAPES_N_COLOURS, word); }
int shapes_word_shape(const char *word) { return find_syn(SHAPE_SYN, SHAPES_N_SHAPES, word); }
int shapes_word_is_modifier(const char *word) {
    return find_syn(SIZE_SYN, SHAPES_N_SIZES, word) >= 0 || find_syn(TEXTURE_SYN, SHAPES_N_TEXTURES, word) >= 0 ||
           !strcmp(word, "coloured");
}

static int name_index(const char *const *names, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return i;
    return -1;
}

int shapes_world_init(ShapesWorld *w, const DataConfig *cfg, Err *err) {
    memset(w, 0, sizeof *w);
    if (cfg->max_objects < 1 || cfg->max_objects > SHAPES_MAX_OBJECTS)
        return err_set(err, "data.max_objects %d out of range [1, %d]", cfg->max_objects, SHAPES_MAX_OBJECTS);
    if (cfg->n_holdout < 0 || cfg->n_holdout > 16) return err_set(err, "data.holdout: %d pairs, at most 16", cfg->n_holdout);
    w->R = cfg->image_size;
    w->max_objects = cfg->max_objects;
    w->caption_noise = cfg->caption_noise;
    w->seed = cfg->seed;
    for (int i = 0; i < cfg->n_holdout; i++) {
        int c = name_index(SHAPES_COLOUR_NAMES, SHAPES_N_COLOURS, cfg->holdout[i][0]);
        int s = name_index(SHAPES_SHAPE_NAMES, SHAPES_N_SHAPES, cfg->holdout[i][1]);
        if (c < 0)
            return err_set(err, "data.holdout[%d]: unknown colour '%s' (valid: red, orange, yellow, green, cyan, blue, purple, pink, brown, white)",
                           i, cfg->holdout[i][0]);
        if (s < 0)
            return err_set(err, "data.holdout[%d]: unknown shape '%s' (valid: circle, square, triangle, star, cross, heart, diamond, hexagon, ring, crescent)",
                           i, cfg->holdout[i][1]);
        w->held_out[c][s] = 1;
    }
    /* Every colour and every shape must stay visible in training with some partner. */
    for (int c = 0; c < SHAPES_N_COLOURS; c++) {
        int seen = 0;
        for (int s = 0; s < SHAPES_N_SHAPES; s++) seen += !w->held_out[c][s];
        if (!seen) return err_set(err, "data.holdout: colour '%s' is held out with every shape", SHAPES_COLOUR_NAMES[c]);
    }
    for (int s = 0; s < SHAPES_N_SHAPES; s++) {
        int seen = 0;
        for (int c = 0; c < SHAPES_N_COLOURS; c++) seen += !w->held_out[c][s];
        if (!seen) return err_set(err, "data.holdout: shape '%s' is held out with every colour", SHAPES_SHAPE_NAMES[s]);
    }
    return 0;
}

void shapes_training_rngs(const ShapesWorld *w, uint64_t index, Rng *scene_rng, Rng *caption_rng) {
    /* Separate generators, so the image of sample i does not depend on caption_noise. */
    rng_init(scene_rng, rng_hash(w->seed, index));
    rng_init(caption_rng, rng_hash(w->seed ^ CAPTION_SALT, index));
}

static float clamp01(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }

void shapes_scene_sample(ShapesScene *s, const ShapesWorld *w, Rng *rng, const ShapesConstraint *c) {
    const ShapesConstraint free_c = {-1, -1, -1, -1};
    if (!c) c = &free_c;
    int n = c->n_objects > 0 ? c->n_objects : 1 + (int)rng_below(rng, (uint32_t)w->max_objects);
    CHECK(n <= w->max_objects && (c->position < 0 || n == 1), "bad shapes constraint");
    s->n_objects = n;
    int regions[4] = {0, 1, 2, 3};
    for (int i = 3; i > 0; i--) {
        int j = (int)rng_below(rng, (uint32_t)i + 1), t = regions[i];
        regions[i] = regions[j];
        regions[j] = t;
    }
    if (n == 1) regions[0] = c->position >= 0 ? c->position : (int)rng_below(rng, SHAPES_N_POSITIONS);
    float grey = 0.35f + 0.25f * rng_uniform(rng);
    for (int ch = 0; ch < 3; ch++) s->bg[ch] = grey + 0.08f * (rng_uniform(rng) - 0.5f);
    s->noise = 0.02f + 0.03f * rng_uniform(rng);
    float R = (float)w->R;
    for (int i = 0; i < n; i++) {
        ShapesObject *o = &s->obj[i];
        int guard = 0;
        do {
            o->colour = c->colour >= 0 ? c->colour : (int)rng_below(rng, SHAPES_N_COLOURS);
            o->shape = c->shape >= 0 ? c->shape : (int)rng_below(rng, SHAPES_N_SHAPES);
            CHECK(++guard < 100000, "no seen (colour, shape) pair fits the constraint");
        } while (w->held_out[o->colour][o->shape] && !(c->colour >= 0 && c->shape >= 0));
        o->size = (int)rng_below(rng, SHAPES_N_SIZES);
        o->texture = rng_uniform(rng) < 0.6f ? 0 : 1 + (int)rng_below(rng, SHAPES_N_TEXTURES - 1);
        o->position = regions[i];
        o->radius = R * (o->size ? 0.19f + 0.04f * rng_uniform(rng) : 0.12f + 0.03f * rng_uniform(rng));
        o->cx = R * (REGION_XY[o->position][0] + 0.1f * (rng_uniform(rng) - 0.5f));
        o->cy = R * (REGION_XY[o->position][1] + 0.1f * (rng_uniform(rng) - 0.5f));
        for (int ch = 0; ch < 3; ch++) o->rgb[ch] = clamp01(COLOUR_RGB[o->colour][ch] + 0.1f * (rng_uniform(rng) - 0.5f));
    }
}

/* ---- rendering ---- */

#define STAR_INNER 0.45f
/* Star vertices k = 0..9 at angle k*pi/5 from "up", radius 1 (even k) or STAR_INNER (odd k). */
static const float STAR_X[10] = {0.0000000f, 0.2645034f, 0.9510565f, 0.4279754f, 0.5877853f,
                                 0.0000000f, -0.5877853f, -0.4279754f, -0.9510565f, -0.2645034f};
static const float STAR_Y[10] = {-1.0000000f, -0.3640576f, -0.3090170f, 0.1390576f, 0.8090170f,
                                 0.4500000f, 0.8090170f, 0.1390576f, -0.3090170f, -0.3640576f};

int shapes_inside(int shape, float u, float v) {
    float au = fabsf(u), av = fabsf(v), r2 = u * u + v * v;
    switch (shape) {
    case CIRCLE: return r2 <= 1.0f;
    case SQUARE: return au <= 0.85f && av <= 0.85f;
    case TRIANGLE: return v <= 0.75f && v >= -0.95f && au <= 0.95f * (v + 0.95f) / 1.7f;
    case STAR: {
        /* even-odd crossing test against the 10 vertices (tips at radius 1, inner corners at
         * STAR_INNER, first tip up): no trigonometry in the per-pixel path */
        if (r2 > 1.0f) return 0;
        int in = 0;
        for (int i = 0, j = 9; i < 10; j = i++)
            if ((STAR_Y[i] > v) != (STAR_Y[j] > v) &&
                u < (STAR_X[j] - STAR_X[i]) * (v - STAR_Y[i]) / (STAR_Y[j] - STAR_Y[i]) + STAR_X[i])
                in = !in;
        return in;
    }
    case CROSS: return (au <= 0.3f && av <= 0.9f) || (av <= 0.3f && au <= 0.9f);
    case HEART: {
        float x = u * 1.2f, y = -v * 1.2f + 0.25f, q = x * x + y * y - 1.0f;
        return q * q * q - x * x * y * y * y <= 0.0f;
    }
    case DIAMOND: return au / 0.8f + av <= 1.0f;
    case HEXAGON: return au <= 0.8660254f && av + au * 0.57735027f <= 1.0f;
    case RING: return r2 <= 1.0f && r2 >= 0.55f * 0.55f;
    case CRESCENT: {
        float du = u - 0.45f, dv = v + 0.25f;
        return r2 <= 1.0f && du * du + dv * dv > 0.8f * 0.8f;
    }
    default: CHECK(0, "unknown shape %d", shape); return 0;
    }
}

/* Brightness factor of the texture at local (u, v). */
static float texture_factor(int texture, float u, float v) {
    if (texture == 1) return ((int)floorf((u + v) * 1.6f + 8.0f) & 1) ? 0.5f : 1.0f;
    if (texture == 2) {
        float fu = u * 1.7f - roundf(u * 1.7f), fv = v * 1.7f - roundf(v * 1.7f);
        return fu * fu + fv * fv < 0.07f ? 0.45f : 1.0f;
    }
    return 1.0f;
}

#define CORNER_MAX 72 /* bounding box side + 1 at R = 64 */

static void draw_object(float *img, int R, const ShapesObject *o) {
    float r = o->radius, inv = 1.0f / r;
    int x0 = (int)floorf(o->cx - r) - 1, x1 = (int)ceilf(o->cx + r) + 1;
    int y0 = (int)floorf(o->cy - r) - 1, y1 = (int)ceilf(o->cy + r) + 1;
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > R ? R : x1;
    y1 = y1 > R ? R : y1;
    int w = x1 - x0, h = y1 - y0;
    if (w <= 0 || h <= 0) return;
    CHECK(w < CORNER_MAX && h < CORNER_MAX, "object box %dx%d too large", w, h);
    uint8_t corner[CORNER_MAX * CORNER_MAX];
    for (int j = 0; j <= h; j++)
        for (int i = 0; i <= w; i++)
            corner[j * (w + 1) + i] = (uint8_t)shapes_inside(o->shape, ((float)(x0 + i) - o->cx) * inv, ((float)(y0 + j) - o->cy) * inv);
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++) {
            int sum = corner[j * (w + 1) + i] + corner[j * (w + 1) + i + 1] + corner[(j + 1) * (w + 1) + i] +
                      corner[(j + 1) * (w + 1) + i + 1];
            if (sum == 0) continue;
            float px = (float)(x0 + i), py = (float)(y0 + j);
            float uc = (px + 0.5f - o->cx) * inv, vc = (py + 0.5f - o->cy) * inv;
            float cov = 1.0f;
            if (sum < 4) {
                int hits = 0;
                for (int sy = 0; sy < 4; sy++)
                    for (int sx = 0; sx < 4; sx++)
                        hits += shapes_inside(o->shape, (px + (sx + 0.5f) * 0.25f - o->cx) * inv, (py + (sy + 0.5f) * 0.25f - o->cy) * inv);
                cov = (float)hits * (1.0f / 16.0f);
            }
            float f = texture_factor(o->texture, uc, vc);
            float *p = img + ((size_t)(y0 + j) * R + (x0 + i)) * 3;
            for (int ch = 0; ch < 3; ch++) p[ch] += cov * (f * o->rgb[ch] - p[ch]);
        }
}

void shapes_render(float *image, const ShapesScene *s, int R, Rng *rng) {
    int n = R * R * 3;
    for (int p = 0; p < R * R; p++)
        for (int ch = 0; ch < 3; ch++) image[p * 3 + ch] = s->bg[ch];
    for (int i = 0; i < s->n_objects; i++) draw_object(image, R, &s->obj[i]);
    /* Uniform noise in [-noise, noise], 8 values per 64-bit draw (a normal per value would cost
     * more than the whole rendering). */
    float scale = 2.0f * s->noise / 255.0f;
    for (int j = 0; j < n; j += 8) {
        uint64_t bits = rng_u64(rng);
        for (int k = 0; k < 8 && j + k < n; k++, bits >>= 8)
            image[j + k] = clamp01(image[j + k] + scale * ((float)(bits & 0xff) - 127.5f));
    }
}

/* ---- captions ---- */

static void add_object_phrase(TextBuf *b, const ShapesObject *o, float p, Rng *rng) {
    const char *colour = syn_pick(COLOUR_SYN[o->colour], p, rng), *shape = syn_pick(SHAPE_SYN[o->shape], p, rng);
    const char *mods[4];
    int nm = 0;
    if (chance(rng, 0.35f * p)) mods[nm++] = syn_pick(SIZE_SYN[o->size], p, rng);
    if ((o->texture != 0 && chance(rng, 0.35f * p)) || chance(rng, 0.05f * p)) mods[nm++] = syn_pick(TEXTURE_SYN[o->texture], p, rng);
    int colour_after = chance(rng, 0.15f * p);
    if (!colour_after) {
        /* canonical order: size, texture, colour, shape; sometimes the colour moves forward */
        int at = chance(rng, 0.4f * p) ? (int)rng_below(rng, (uint32_t)nm + 1) : nm;
        for (int k = nm; k > at; k--) mods[k] = mods[k - 1];
        mods[at] = colour;
        nm++;
    }
    text_add(b, chance(rng, 0.1f * p) ? "one" : "a");
    for (int k = 0; k < nm; k++) {
        text_add(b, " ");
        text_add(b, mods[k]);
        if (mods[k] == colour && chance(rng, 0.1f * p)) text_add(b, " coloured");
    }
    text_add(b, " ");
    text_add(b, shape);
    if (colour_after) {
        text_add(b, " ");
        text_add(b, COLOUR_AFTER[rng_below(rng, N_OF(COLOUR_AFTER))]);
        text_add(b, " ");
        text_add(b, colour);
    }
    if (chance(rng, 0.25f * p)) {
        text_add(b, " ");
        text_add(b, PLACES[rng_below(rng, N_OF(PLACES))]);
        text_add(b, " ");
        text_add(b, syn_pick(POSITION_SYN[o->position], p, rng));
    }
}

/* tmpl filled with the phrases of objects order[0..m) of s and their count. */
static void add_template(TextBuf *b, const char *tmpl, const ShapesScene *s, const int *order, int m, float p, Rng *rng) {
    int fancy_joins = chance(rng, p);
    for (const char *t = tmpl; *t; t++) {
        if (t[0] == '{' && t[1] == 'o' && t[2] == '}') {
            for (int i = 0; i < m; i++) {
                if (i > 0) text_add(b, fancy_joins ? JOINERS[rng_below(rng, N_OF(JOINERS))] : (i == m - 1 ? " and " : ", "));
                add_object_phrase(b, &s->obj[order[i]], p, rng);
            }
            t += 2;
        } else if (t[0] == '{' && t[1] == 'n' && t[2] == '}') {
            text_add(b, syn_pick(COUNT_SYN[s->n_objects - 1], p, rng));
            t += 2;
        } else {
            char one[2] = {*t, '\0'};
            text_add(b, one);
        }
    }
}

void shapes_caption(char *out, int cap, const ShapesScene *s, float p, Rng *rng) {
    TextBuf b;
    text_init(&b, out, cap);
    int order[SHAPES_MAX_OBJECTS], m = s->n_objects;
    for (int i = 0; i < m; i++) order[i] = i;
    if (chance(rng, p))
        for (int i = m - 1; i > 0; i--) {
            int j = (int)rng_below(rng, (uint32_t)i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    if (m > 1 && chance(rng, 0.35f * p)) m = 1 + (int)rng_below(rng, (uint32_t)m - 1); /* partial mention */
    const char *tmpl = TEMPLATES[chance(rng, p) ? rng_below(rng, N_TEMPLATES) : 0];
    if (chance(rng, 0.3f * p)) {
        text_add(&b, PREFIXES[rng_below(rng, N_OF(PREFIXES))]);
        text_add(&b, " ");
    }
    add_template(&b, tmpl, s, order, m, p, rng);
    if (chance(rng, 0.3f * p)) {
        text_add(&b, " ");
        text_add(&b, SUFFIXES[rng_below(rng, N_OF(SUFFIXES))]);
    }
    text_fix_articles(&b);
}

void shapes_object_sentence(char *out, int cap, int template_index, int colour, int shape) {
    CHECK(template_index >= 0 && template_index < N_TEMPLATES, "caption template %d", template_index);
    ShapesScene s = {.n_objects = 1};
    s.obj[0].colour = colour;
    s.obj[0].shape = shape;
    const int order[1] = {0};
    Rng rng; /* drawn from, but every chance() at noise 0 is false */
    rng_init(&rng, 0);
    TextBuf b;
    text_init(&b, out, cap);
    add_template(&b, TEMPLATES[template_index], &s, order, 1, 0.0f, &rng);
    text_fix_articles(&b);
}

/* ---- DatasetOps ---- */

static int shapes_open(Dataset *ds, Err *err) {
    ShapesWorld *w = mallocCheck(sizeof *w);
    if (shapes_world_init(w, &ds->cfg, err)) {
        free(w);
        return -1;
    }
    ds->impl = w;
    return 0;
}

static void shapes_close(Dataset *ds) { free(ds->impl); }

static void shapes_sample(const Dataset *ds, uint64_t index, float *image, char *caption, int cap) {
    const ShapesWorld *w = ds->impl;
    Rng scene_rng, caption_rng;
    shapes_training_rngs(w, index, &scene_rng, &caption_rng);
    ShapesScene s;
    shapes_scene_sample(&s, w, &scene_rng, NULL);
    shapes_render(image, &s, w->R, &scene_rng);
    shapes_caption(caption, cap, &s, w->caption_noise, &caption_rng);
}

/* Eval streams: tasks at their task id, pair sets at EVAL_PAIRS_STREAM + which. */
static void shapes_eval_sample(const Dataset *ds, uint64_t which, uint64_t k, float *image, char *caption, int cap) {
    const ShapesWorld *w = ds->impl;
    Rng rng;
    rng_init(&rng, rng_hash(data_eval_seed(&ds->cfg, EVAL_PAIRS_STREAM + which), k));
    ShapesScene s;
    shapes_scene_sample(&s, w, &rng, NULL);
    shapes_render(image, &s, w->R, &rng);
    shapes_caption(caption, cap, &s, w->caption_noise, &rng);
}

enum { TASK_CS_SEEN, TASK_CS_HELDOUT, TASK_SHAPE, TASK_COLOUR, TASK_COUNT, TASK_POSITION };

/* What a task's image set is drawn from: which pairs, how many object counts. */
typedef struct {
    const int *seen, *held;
    int n_seen, n_held, n_counts;
} TaskPools;

/* Label of image k of a task (classes balanced round-robin) and the constraint that realises it. */
static int task_label(int task, int k, const TaskPools *pools, ShapesConstraint *c) {
    *c = (ShapesConstraint){1, -1, -1, -1};
    switch (task) {
    case TASK_CS_SEEN:
    case TASK_CS_HELDOUT: {
        int label = task == TASK_CS_SEEN ? pools->seen[k % pools->n_seen] : pools->held[k % pools->n_held];
        c->colour = label / SHAPES_N_SHAPES;
        c->shape = label % SHAPES_N_SHAPES;
        return label;
    }
    case TASK_SHAPE: return c->shape = k % SHAPES_N_SHAPES;
    case TASK_COLOUR: return c->colour = k % SHAPES_N_COLOURS;
    case TASK_POSITION: return c->position = k % SHAPES_N_POSITIONS;
    case TASK_COUNT: c->n_objects = 1 + k % pools->n_counts; return c->n_objects - 1;
    default: CHECK(0, "unknown shapes task %d", task); return 0;
    }
}

static void fill_task(Dataset *ds, ZeroShotTask *t, int task, const TaskPools *pools) {
    const ShapesWorld *w = ds->impl;
    size_t stride = (size_t)w->R * w->R * 3;
#pragma omp parallel for schedule(dynamic, 8)
    for (int k = 0; k < t->n_images; k++) {
        ShapesConstraint c;
        t->labels[k] = task_label(task, k, pools, &c);
        Rng rng;
        rng_init(&rng, rng_hash(data_eval_seed(&ds->cfg, (uint64_t)task), (uint64_t)k));
        ShapesScene s;
        shapes_scene_sample(&s, w, &rng, &c);
        shapes_render(t->images + (size_t)k * stride, &s, w->R, &rng);
        data_normalize_image(ds, t->images + (size_t)k * stride);
    }
}

/* The caption LM's sentences for a task over colour and/or shape: each class with every value of
 * the attribute it does not name, in each of the first SHAPES_GEN_TEMPLATES caption templates
 * (template 0 is the only one at caption_noise 0). */
static void set_grammar_sentences(Dataset *ds, ZeroShotTask *t, int task) {
    enum { NC = SHAPES_N_COLOURS, NS = SHAPES_N_SHAPES };
    data_task_gen_begin(ds, t, SHAPES_GEN_TEMPLATES * NC * NS);
    int k = 0;
    for (int tm = 0; tm < SHAPES_GEN_TEMPLATES; tm++)
        for (int c = 0; c < NC; c++)
            for (int s = 0; s < NS; s++) {
                char text[CAPTION_MAX];
                shapes_object_sentence(text, sizeof text, tm, c, s);
                int cls = task == TASK_SHAPE ? s : task == TASK_COLOUR ? c : c * NS + s;
                data_task_gen_set(ds, t, k++, text, cls);
            }
}

static void shapes_build_tasks(Dataset *ds) {
    const ShapesWorld *w = ds->impl;
    int n = ds->cfg.eval_images;
    enum { NP = SHAPES_N_COLOURS * SHAPES_N_SHAPES };
    char pair_names[NP][48];
    const char *pair_ptrs[NP];
    int seen[NP], held[NP], n_seen = 0, n_held = 0;
    for (int c = 0; c < SHAPES_N_COLOURS; c++)
        for (int s = 0; s < SHAPES_N_SHAPES; s++) {
            int id = c * SHAPES_N_SHAPES + s;
            snprintf(pair_names[id], sizeof pair_names[id], "%s %s", SHAPES_COLOUR_NAMES[c], SHAPES_SHAPE_NAMES[s]);
            pair_ptrs[id] = pair_names[id];
            if (w->held_out[c][s]) held[n_held++] = id;
            else seen[n_seen++] = id;
        }
    const TaskPools pools = {seen, held, n_seen, n_held, w->max_objects};
    ZeroShotTask *t = data_task_add(ds, "colour_shape_seen", n, NP, pair_ptrs, PROMPTS_OBJECT, N_OF(PROMPTS_OBJECT));
    fill_task(ds, t, TASK_CS_SEEN, &pools);
    set_grammar_sentences(ds, t, TASK_CS_SEEN);
    if (n_held > 0) {
        t = data_task_add(ds, "colour_shape_heldout", n, NP, pair_ptrs, PROMPTS_OBJECT, N_OF(PROMPTS_OBJECT));
        fill_task(ds, t, TASK_CS_HELDOUT, &pools);
        set_grammar_sentences(ds, t, TASK_CS_HELDOUT);
    }
    t = data_task_add(ds, "shape", n, SHAPES_N_SHAPES, SHAPES_SHAPE_NAMES, PROMPTS_OBJECT, N_OF(PROMPTS_OBJECT));
    fill_task(ds, t, TASK_SHAPE, &pools);
    set_grammar_sentences(ds, t, TASK_SHAPE);
    t = data_task_add(ds, "colour", n, SHAPES_N_COLOURS, SHAPES_COLOUR_NAMES, PROMPTS_COLOUR, N_OF(PROMPTS_COLOUR));
    fill_task(ds, t, TASK_COLOUR, &pools);
    set_grammar_sentences(ds, t, TASK_COLOUR);
    if (w->max_objects > 1) {
        t = data_task_add(ds, "count", n, w->max_objects, COUNT_CLASSES, PROMPTS_COUNT, N_OF(PROMPTS_COUNT));
        fill_task(ds, t, TASK_COUNT, &pools);
    }
    t = data_task_add(ds, "position", n, SHAPES_N_POSITIONS, SHAPES_POSITION_NAMES, PROMPTS_POSITION, N_OF(PROMPTS_POSITION));
    fill_task(ds, t, TASK_POSITION, &pools);
}

static void print_counts(FILE *out, const char *what, const char *const *names, const long *counts, int n) {
    fprintf(out, "%-9s", what);
    for (int i = 0; i < n; i++) fprintf(out, " %s %ld%s", names[i], counts[i], i + 1 < n ? "," : "\n");
}

static void shapes_stats(const Dataset *ds, FILE *out, int n_samples) {
    const ShapesWorld *w = ds->impl;
    long colour[SHAPES_N_COLOURS] = {0}, shape[SHAPES_N_SHAPES] = {0}, size[SHAPES_N_SIZES] = {0};
    long pos[SHAPES_N_POSITIONS] = {0}, tex[SHAPES_N_TEXTURES] = {0}, count[SHAPES_MAX_OBJECTS] = {0}, leaks = 0;
    for (int i = 0; i < n_samples; i++) {
        Rng sr, cr;
        shapes_training_rngs(w, (uint64_t)i, &sr, &cr);
        ShapesScene s;
        shapes_scene_sample(&s, w, &sr, NULL);
        count[s.n_objects - 1]++;
        for (int k = 0; k < s.n_objects; k++) {
            const ShapesObject *o = &s.obj[k];
            colour[o->colour]++, shape[o->shape]++, size[o->size]++, pos[o->position]++, tex[o->texture]++;
            leaks += w->held_out[o->colour][o->shape];
        }
    }
    fprintf(out, "class balance over %d training scenes (objects per value):\n", n_samples);
    print_counts(out, "objects", (const char *const[]){"1", "2", "3"}, count, w->max_objects);
    print_counts(out, "colour", SHAPES_COLOUR_NAMES, colour, SHAPES_N_COLOURS);
    print_counts(out, "shape", SHAPES_SHAPE_NAMES, shape, SHAPES_N_SHAPES);
    print_counts(out, "size", SHAPES_SIZE_NAMES, size, SHAPES_N_SIZES);
    print_counts(out, "position", SHAPES_POSITION_NAMES, pos, SHAPES_N_POSITIONS);
    print_counts(out, "texture", SHAPES_TEXTURE_NAMES, tex, SHAPES_N_TEXTURES);
    fprintf(out, "hold-out (never in training):");
    for (int i = 0; i < ds->cfg.n_holdout; i++) fprintf(out, " %s %s%s", ds->cfg.holdout[i][0], ds->cfg.holdout[i][1], i + 1 < ds->cfg.n_holdout ? "," : "");
    fprintf(out, "%s; held-out objects found in training: %ld\n", ds->cfg.n_holdout ? "" : " none", leaks);
}

static void shapes_grammar_words(Tokenizer *t) {
    syn_add_words(t, SHAPE_SYN, SHAPES_N_SHAPES);
    syn_add_words(t, COLOUR_SYN, SHAPES_N_COLOURS);
    syn_add_words(t, SIZE_SYN, SHAPES_N_SIZES);
    syn_add_words(t, TEXTURE_SYN, SHAPES_N_TEXTURES);
    syn_add_words(t, POSITION_SYN, SHAPES_N_POSITIONS);
    syn_add_words(t, COUNT_SYN, SHAPES_MAX_OBJECTS);
    text_add_words(t, TEMPLATES, N_TEMPLATES, 0);
    text_add_words(t, PREFIXES, N_OF(PREFIXES), 0);
    text_add_words(t, SUFFIXES, N_OF(SUFFIXES), 0);
    text_add_words(t, JOINERS, N_OF(JOINERS), 0);
    text_add_words(t, COLOUR_AFTER, N_OF(COLOUR_AFTER), 0);
    text_add_words(t, PLACES, N_OF(PLACES), 0);
    text_add_words(t, PROMPTS_OBJECT, N_OF(PROMPTS_OBJECT), 0);
    text_add_words(t, PROMPTS_COLOUR, N_OF(PROMPTS_COLOUR), 0);
    text_add_words(t, PROMPTS_COUNT, N_OF(PROMPTS_COUNT), 0);
    text_add_words(t, COUNT_CLASSES, SHAPES_MAX_OBJECTS, 0);
    text_add_words(t, PROMPTS_POSITION, N_OF(PROMPTS_POSITION), 0);
    tokenizer_add_text(t, "an coloured", 0); /* from the article fix and a phrase variant */
}

const DatasetOps SHAPES_OPS = {
    .name = "shapes",
    .open = shapes_open,
    .close = shapes_close,
    .sample = shapes_sample,
    .eval_sample = shapes_eval_sample,
    .build_tasks = shapes_build_tasks,
    .stats = shapes_stats,
    .grammar_words = shapes_grammar_words,
};
