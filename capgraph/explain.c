/* SPDX-License-Identifier: MIT */
/* Explanations of a resolution: a list of {subject, verdict, reason}. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capgraph/capgraph.h"

#define EXPLAIN_MAX_ENTRIES 4096 /* a bound on what a huge graph can make us store */

struct aik_explanation {
    aik_explain_entry *v;
    size_t n, cap;
};

int aik_explanation_new(aik_explanation **ret_expl)
{
    aik_explanation *e;
    if (!ret_expl)
        return -EINVAL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    *ret_expl = e;
    return 0;
}

void aik_explanation_clear(aik_explanation *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++) {
        free(e->v[i].subject);
        free(e->v[i].reason);
    }
    e->n = 0;
}

void aik_explanation_free(aik_explanation *e)
{
    if (!e)
        return;
    aik_explanation_clear(e);
    free(e->v);
    free(e);
}

size_t aik_explanation_count(const aik_explanation *e)
{
    return e ? e->n : 0;
}

const aik_explain_entry *aik_explanation_get(const aik_explanation *e, size_t i)
{
    return e && i < e->n ? &e->v[i] : NULL;
}

int aik_explanation_add(aik_explanation *e, const char *subject, aik_verdict v, const char *fmt, ...)
{
    aik_explain_entry ent = { NULL, v, NULL };
    va_list ap;
    int r;

    if (!e)
        return 0;
    if (e->n >= EXPLAIN_MAX_ENTRIES)
        return 0; /* keep the first ones; the rest would not help a person */
    if (e->n == e->cap) {
        size_t ncap = e->cap ? e->cap * 2 : 16;
        aik_explain_entry *nv = realloc(e->v, ncap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        e->v = nv;
        e->cap = ncap;
    }
    ent.subject = strdup(subject ? subject : "");
    va_start(ap, fmt);
    r = vasprintf(&ent.reason, fmt, ap);
    va_end(ap);
    if (r < 0)
        ent.reason = NULL;
    if (!ent.subject || !ent.reason) {
        free(ent.subject);
        free(ent.reason);
        return -ENOMEM;
    }
    e->v[e->n++] = ent;
    return 0;
}

const char *aik_verdict_name(aik_verdict v)
{
    switch (v) {
    case AIK_VERDICT_CHOSEN: return "chosen";
    case AIK_VERDICT_REJECTED: return "rejected";
    case AIK_VERDICT_MATCHED: return "matched";
    case AIK_VERDICT_NOTE: return "note";
    }
    return "?";
}

int aik_explanation_format(const aik_explanation *e, char **ret_text)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    if (!ret_text)
        return -EINVAL;
    f = open_memstream(&buf, &len);
    if (!f)
        return -ENOMEM;
    for (size_t i = 0; e && i < e->n; i++)
        fprintf(f, "  %-9s %s: %s\n", aik_verdict_name(e->v[i].verdict), e->v[i].subject, e->v[i].reason);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return -ENOMEM;
    }
    *ret_text = buf;
    return 0;
}
