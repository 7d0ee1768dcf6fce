/* SPDX-License-Identifier: MIT */
/* State shared by graph.c and resolve.c. */
#ifndef AIK_CAPGRAPH_INTERNAL_H
#define AIK_CAPGRAPH_INTERNAL_H

#include <pthread.h>

#include "capgraph/capgraph.h"
#include "capgraph/wordnet.h"

struct aik_capgraph {
    aik_profile **mods;     /* sorted: name ascending, then version descending */
    size_t n, cap;

    pthread_mutex_t lock;   /* guards everything below (lazy state) */
    char *wordnet_dir;      /* NULL: disabled */
    aik_wordnet *wn;
    int wn_state;           /* 0: not tried, 1: open, < 0: failed with wn_err */
    aik_error wn_err;
    bool has_embedder;
    aik_embedder embedder;
    aik_textmatch *tm;      /* free-text index over all phrasings, built lazily */
};

/* "name@1.2.3" into buf. */
const char *capgraph_module_label(const aik_profile *p, char *buf, size_t len);

#endif
