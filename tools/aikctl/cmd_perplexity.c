/* SPDX-License-Identifier: MIT */
/*
 * aikctl perplexity PKG TEXTFILE: the text is tokenized whole (BOS first when
 * the tokenizer adds one) and cut into consecutive windows of --ctx tokens;
 * every token of a window except its first is predicted from the tokens
 * before it in the same window. PPL = exp(mean negative log-likelihood).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "runtime/generate.h"
#include "tools/aikctl/aikctl.h"

int aikctl_cmd_perplexity(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ctx", required_argument, 0, 'c' }, { "threads", required_argument, 0, 't' },
        { "max-tokens", required_argument, 0, 'm' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    uint32_t ctx = 0, threads = 0;
    size_t max_tokens = 0;
    char *text = NULL;
    size_t text_len = 0, n_ids = 0;
    int32_t *ids = NULL;
    aik_model *m = NULL;
    aik_session *s = NULL;
    aik_error err;
    int c, r, rc = 1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "c:t:m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': ctx = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 't': threads = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'm': max_tokens = strtoull(optarg, NULL, 10); break;
        case 'h':
            printf("usage: aikctl perplexity PKG TEXTFILE [--ctx N] [--threads N] [--max-tokens N]\n");
            return 0;
        default: return 2;
        }
    }
    if (optind + 2 != argc) {
        fprintf(stderr, "usage: aikctl perplexity PKG TEXTFILE [--ctx N] [--threads N] [--max-tokens N]\n");
        return 2;
    }
    r = aik_read_file(argv[optind + 1], 1u << 30, &text, &text_len);
    if (r < 0) {
        aikctl_print_errno(argv[optind + 1], r);
        return 1;
    }
    if (aik_model_open(argv[optind], 0, NULL, &m, &err) < 0) {
        aikctl_print_error(argv[optind], &err);
        goto out;
    }
    if (ctx == 0 || ctx > m->hp.ctx_len)
        ctx = m->hp.ctx_len;
    r = aik_tokenizer_encode_alloc(m->tok, text, text_len, AIK_TOKENIZE_ADD_SPECIAL, &ids, &n_ids);
    if (r < 0) {
        aikctl_print_errno("tokenize", r);
        goto out;
    }
    if (max_tokens && n_ids > max_tokens)
        n_ids = max_tokens;
    if (n_ids < 2) {
        fprintf(stderr, "aikctl perplexity: text too short (%zu tokens)\n", n_ids);
        goto out;
    }
    aik_session_config sc = { .n_threads = threads, .ctx_len = ctx, .batch = ctx };
    if (aik_session_new(m, &sc, &s, &err) < 0) {
        aikctl_print_error("session", &err);
        goto out;
    }
    double nll = 0;
    size_t scored = 0;
    uint32_t V = m->hp.n_vocab;
    for (size_t start = 0; start + 1 < n_ids; start += ctx) {
        size_t n = n_ids - start < ctx ? n_ids - start : ctx;
        const float *lg;
        if (n < 2)
            break;
        aik_session_reset(s);
        if (aik_session_eval(s, ids + start, n, (uint32_t)n, &lg, &err) < 0) {
            aikctl_print_error("eval", &err);
            goto out;
        }
        for (size_t t = 0; t + 1 < n; t++) {
            const float *row = lg + t * V;
            float mx = row[0];
            double sum = 0;
            for (uint32_t v = 1; v < V; v++)
                if (row[v] > mx)
                    mx = row[v];
            for (uint32_t v = 0; v < V; v++)
                sum += exp((double)(row[v] - mx));
            nll += log(sum) + mx - row[ids[start + t + 1]];
            scored++;
        }
        fprintf(stderr, "\r[%zu/%zu] ppl so far %.4f", start + n, n_ids, exp(nll / (double)scored));
    }
    fprintf(stderr, "\n");
    printf("perplexity: %.4f over %zu scored tokens (ctx %u, %zu tokens)\n", exp(nll / (double)scored), scored, ctx,
           n_ids);
    rc = 0;
out:
    free(text);
    free(ids);
    aik_session_free(s);
    aik_model_free(m);
    return rc;
}
