/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the WordNet reader (capgraph/wordnet.c), whose files come
 * from disk and are parsed as untrusted: the input is split at "\n%%\n"
 * into index.noun, data.noun, index.verb, data.verb, noun.exc, verb.exc and
 * a last section of space-separated words, each of which is expanded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capgraph/wordnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *user, const char *lemma, float weight)
{
    size_t *n = user;
    *n += strlen(lemma) + (weight > 0);
    return *n > 100000 ? -1 : 0; /* also exercises the callback's stop */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    const char *sec[7] = { NULL };
    size_t len[7] = { 0 };
    aik_wordnet_buffers b;
    aik_wordnet *wn = NULL;
    aik_error err;
    int n = 0;

    while (n < 7) {
        const char *sep = NULL;
        for (const char *q = p; q + 4 <= end; q++)
            if (memcmp(q, "\n%%\n", 4) == 0) {
                sep = q;
                break;
            }
        sec[n] = p;
        len[n] = (size_t)((sep ? sep : end) - p);
        n++;
        if (!sep)
            break;
        p = sep + 4;
    }
    memset(&b, 0, sizeof(b));
    b.index[0] = sec[0], b.index_len[0] = len[0];
    b.data[0] = sec[1], b.data_len[0] = len[1];
    b.index[1] = sec[2], b.index_len[1] = len[2];
    b.data[1] = sec[3], b.data_len[1] = len[3];
    b.exc[0] = sec[4], b.exc_len[0] = len[4];
    b.exc[1] = sec[5], b.exc_len[1] = len[5];
    if (aik_wordnet_from_buffers(&b, &wn, &err) < 0)
        return 0;
    if (sec[6]) {
        char words[256];
        size_t l = len[6] < sizeof(words) - 1 ? len[6] : sizeof(words) - 1;
        char *save = NULL;
        int k = 0;
        memcpy(words, sec[6], l);
        words[l] = '\0';
        for (char *w = strtok_r(words, " \n", &save); w && k < 8; w = strtok_r(NULL, " \n", &save), k++) {
            size_t total = 0;
            aik_wordnet_expand(wn, w, sink, &total);
        }
    }
    aik_wordnet_close(wn);
    return 0;
}
