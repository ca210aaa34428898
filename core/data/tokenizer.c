/* tokenizer.c — word-level tokenizer (see tokenizer.h).
 * Deliberately left out: growing the vocabulary after finalize (it is closed by design). */
#include "data/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "common/check.h"

static const char *const SPECIAL_NAMES[TOKENIZER_N_SPECIAL] = {"<pad>", "<bos>", "<eos>", "<unk>"};

static int is_word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

int tokenizer_next_word(const char **p, char *word) {
    const char *s = *p;
    while (*s && !is_word_char(*s)) s++;
    if (!*s) {
        *p = s;
        return 0;
    }
    int n = 0;
    while (is_word_char(*s) || (*s == '-' && is_word_char(s[1]) && n > 0)) {
        if (n < TOKENIZER_WORD_MAX - 1) word[n++] = lower(*s);
        s++;
    }
    word[n] = '\0';
    *p = s;
    return 1;
}

int tokenizer_count_words(const char *text) {
    char w[TOKENIZER_WORD_MAX];
    int n = 0;
    while (tokenizer_next_word(&text, w)) n++;
    return n;
}

void tokenizer_init(Tokenizer *t) {
    memset(t, 0, sizeof *t);
    t->cap_words = 256;
    t->words = mallocCheck(sizeof *t->words * (size_t)t->cap_words);
    t->content = mallocCheck((size_t)t->cap_words);
    for (int i = 0; i < TOKENIZER_N_SPECIAL; i++) {
        strcpy(t->words[i], SPECIAL_NAMES[i]);
        t->content[i] = 0;
    }
    t->n_words = TOKENIZER_N_SPECIAL;
}

void tokenizer_add_text(Tokenizer *t, const char *text, int content) {
    CHECK(!t->finalized, "tokenizer_add_text after finalize");
    char w[TOKENIZER_WORD_MAX];
    while (tokenizer_next_word(&text, w)) {
        if (t->n_words == t->cap_words) {
            t->cap_words *= 2;
            t->words = reallocCheck(t->words, sizeof *t->words * (size_t)t->cap_words);
            t->content = reallocCheck(t->content, (size_t)t->cap_words);
        }
        strcpy(t->words[t->n_words], w);
        t->content[t->n_words] = content != 0;
        t->n_words++;
    }
}

static uint32_t hash_word(const char *w) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *w; w++) h = (h ^ (uint8_t)*w) * 16777619u;
    return h;
}

typedef struct {
    char word[TOKENIZER_WORD_MAX];
    uint8_t content;
} WordEntry;

static int cmp_entry(const void *a, const void *b) { return strcmp(((const WordEntry *)a)->word, ((const WordEntry *)b)->word); }

void tokenizer_finalize(Tokenizer *t) {
    CHECK(!t->finalized, "tokenizer finalized twice");
    /* Sort the added words (not the specials), then merge duplicates OR-ing the content flag, so
     * ids depend only on the set of words. */
    int n_added = t->n_words - TOKENIZER_N_SPECIAL;
    WordEntry *e = mallocCheck(sizeof *e * (size_t)(n_added > 0 ? n_added : 1));
    for (int i = 0; i < n_added; i++) {
        memcpy(e[i].word, t->words[TOKENIZER_N_SPECIAL + i], TOKENIZER_WORD_MAX);
        e[i].content = t->content[TOKENIZER_N_SPECIAL + i];
    }
    qsort(e, (size_t)n_added, sizeof *e, cmp_entry);
    int n = TOKENIZER_N_SPECIAL;
    for (int i = 0; i < n_added; i++) {
        if (n > TOKENIZER_N_SPECIAL && !strcmp(t->words[n - 1], e[i].word)) {
            t->content[n - 1] |= e[i].content;
            continue;
        }
        memcpy(t->words[n], e[i].word, TOKENIZER_WORD_MAX);
        t->content[n] = e[i].content;
        n++;
    }
    free(e);
    t->n_words = n;
    int cap = 16;
    while (cap < 2 * n) cap *= 2;
    t->table = mallocCheck(sizeof *t->table * (size_t)cap);
    t->table_mask = cap - 1;
    for (int i = 0; i < cap; i++) t->table[i] = -1;
    for (int id = TOKENIZER_N_SPECIAL; id < n; id++) {
        uint32_t h = hash_word(t->words[id]) & (uint32_t)t->table_mask;
        while (t->table[h] >= 0) h = (h + 1) & (uint32_t)t->table_mask;
        t->table[h] = id;
    }
    t->finalized = 1;
}

void tokenizer_free(Tokenizer *t) {
    free(t->words);
    free(t->content);
    free(t->table);
    memset(t, 0, sizeof *t);
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->n_words; }

int tokenizer_lookup(const Tokenizer *t, const char *word) {
    CHECK(t->finalized, "tokenizer used before finalize");
    uint32_t h = hash_word(word) & (uint32_t)t->table_mask;
    while (t->table[h] >= 0) {
        if (!strcmp(t->words[t->table[h]], word)) return t->table[h];
        h = (h + 1) & (uint32_t)t->table_mask;
    }
    return TOKEN_UNK;
}

const char *tokenizer_word(const Tokenizer *t, int id) {
    CHECK(id >= 0 && id < t->n_words, "token id %d out of range [0, %d)", id, t->n_words);
    return t->words[id];
}

int tokenizer_is_content(const Tokenizer *t, int id) { return id >= 0 && id < t->n_words && t->content[id]; }

int tokenizer_encode(const Tokenizer *t, const char *text, int *tokens, int T) {
    CHECK(T >= 3, "context length %d < 3", T);
    char w[TOKENIZER_WORD_MAX];
    int n = 0;
    tokens[n++] = TOKEN_BOS;
    while (n < T - 1 && tokenizer_next_word(&text, w)) tokens[n++] = tokenizer_lookup(t, w);
    tokens[n++] = TOKEN_EOS;
    for (int i = n; i < T; i++) tokens[i] = TOKEN_PAD;
    return n;
}

int tokenizer_decode(const Tokenizer *t, const int *tokens, int n, char *out, int cap) {
    CHECK(cap > 0, "empty output buffer");
    int len = 0;
    out[0] = '\0';
    for (int i = 0; i < n && tokens[i] != TOKEN_EOS; i++) {
        if (tokens[i] == TOKEN_PAD || tokens[i] == TOKEN_BOS) continue;
        const char *w = tokenizer_word(t, tokens[i]);
        int wl = (int)strlen(w);
        if (len + wl + 2 > cap) break;
        if (len) out[len++] = ' ';
        memcpy(out + len, w, (size_t)wl + 1);
        len += wl;
    }
    return len;
}

int tokenizer_bow(const Tokenizer *t, const int *tokens, int n, float *bow) {
    memset(bow, 0, sizeof *bow * (size_t)t->n_words);
    int k = 0;
    for (int i = 0; i < n; i++) {
        int id = tokens[i];
        if (!tokenizer_is_content(t, id) || bow[id] != 0.0f) continue;
        bow[id] = 1.0f;
        k++;
    }
    if (k == 0) return 0;
    float m = 1.0f / (float)k;
    for (int i = 0; i < n; i++)
        if (bow[tokens[i]] != 0.0f) bow[tokens[i]] = m;
    return k;
}
