/* tokenizer.h — word-level tokenizer over a closed vocabulary.
 *
 * The vocabulary is built from text fragments (the caption grammars' word lists), sorted, so it is
 * the same whatever order the fragments arrive in. Words are lower-case runs of [a-z0-9] (a '-'
 * between two such characters stays inside the word: "t-shirt"); all other characters separate
 * words and are dropped. Ids: the four specials first, then the words in strcmp order.
 * Each word carries a "content" flag (attribute / class words, as opposed to fillers and function
 * words): the bag-of-words view keeps only content words.
 * Deliberately left out: sub-word units (the grammars are closed, so every word is known), casing.
 */
#ifndef CLIPLAB_DATA_TOKENIZER_H
#define CLIPLAB_DATA_TOKENIZER_H

#include <stdint.h>

#define TOKEN_PAD 0
#define TOKEN_BOS 1
#define TOKEN_EOS 2 /* also the EOT feature position of the text transformer */
#define TOKEN_UNK 3
#define TOKENIZER_N_SPECIAL 4
#define TOKENIZER_WORD_MAX 32 /* longer words are cut to 31 characters (and are then unknown) */

typedef struct {
    int n_words; /* vocabulary size V, specials included */
    int cap_words;
    char (*words)[TOKENIZER_WORD_MAX]; /* [cap_words] */
    uint8_t *content;                  /* [cap_words] 1 = content word */
    int *table;                        /* open-addressing hash: word -> id, -1 empty */
    int table_mask;
    int finalized;
} Tokenizer;

void tokenizer_init(Tokenizer *t);
/* Adds every word of `text` (before tokenizer_finalize); content != 0 marks them content words
 * (a word added both ways is content). */
void tokenizer_add_text(Tokenizer *t, const char *text, int content);
void tokenizer_finalize(Tokenizer *t);
void tokenizer_free(Tokenizer *t);

int tokenizer_vocab_size(const Tokenizer *t);
int tokenizer_lookup(const Tokenizer *t, const char *word); /* id, or TOKEN_UNK */
const char *tokenizer_word(const Tokenizer *t, int id);     /* "<pad>" "<bos>" "<eos>" "<unk>" for specials */
int tokenizer_is_content(const Tokenizer *t, int id);

/* Next word of *p into word[TOKENIZER_WORD_MAX] (lower-cased); advances *p; 0 at the end. */
int tokenizer_next_word(const char **p, char *word);
int tokenizer_count_words(const char *text);

/* tokens [T]: BOS w1 .. wk EOS PAD..., k = min(words, T-2) (truncation keeps EOS last).
 * Returns the length k+2. T >= 3. */
int tokenizer_encode(const Tokenizer *t, const char *text, int *tokens, int T);
/* Words of tokens[0..n) up to the first EOS, specials other than UNK skipped, joined by single
 * spaces into out[cap]. Returns the string length. */
int tokenizer_decode(const Tokenizer *t, const int *tokens, int n, char *out, int cap);
/* bow [V]: 1/K on each of the K distinct content words of tokens[0..n), 0 elsewhere.
 * Returns K (0 leaves the row all zero). */
int tokenizer_bow(const Tokenizer *t, const int *tokens, int n, float *bow);

#endif
