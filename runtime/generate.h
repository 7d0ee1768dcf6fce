/* SPDX-License-Identifier: MIT */
/*
 * Sessions and streaming generation. A session is one sequence: an executor
 * with its KV cache, a thread pool, a sampler. The model it runs is shared.
 *
 * Prompts longer than the context (documented in docs/generation.md):
 *   AIK_PROMPT_REFUSE (default): a prompt of n tokens needs n + 1 <= ctx_len
 *     (room for at least one generated token), else -E2BIG and nothing runs.
 *   AIK_PROMPT_TRUNCATE: keep the BOS token if the prompt starts with one,
 *     and the LAST ctx_len - reserve - (BOS ? 1 : 0) prompt tokens, where
 *     reserve = min(n_predict, ctx_len / 2); result.n_prompt_dropped says how
 *     many were dropped from the front.
 * Generation that reaches the end of the context stops with
 * AIK_STOP_CONTEXT; the KV cache never overflows.
 */
#ifndef AIK_RUNTIME_GENERATE_H
#define AIK_RUNTIME_GENERATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/model.h"
#include "runtime/sampler.h"
#include "scheduler/cpu_exec.h"
#include "scheduler/split_exec.h"

typedef struct aik_session_config {
    uint32_t n_threads; /* 0: one per online CPU */
    uint32_t ctx_len;   /* 0: the model's */
    uint32_t batch;     /* prompt chunk (tokens per forward pass); 0: 256 */
    bool profile;       /* per-op timing */
    /* Run quantized matmuls on the weights as the file stores them instead
     * of the model's packed copies (kernels/cpu/packed.c), which the first
     * session that wants them makes. For A/B measurements and memory-tight
     * hosts: packing holds a second copy of the q8_0/q4_0 matrices. */
    bool file_layout;
    /* Executor choice. NULL (the default): the session owns a CPU executor
     * (scheduler/cpu_exec.h) over the model's graph. Otherwise the session
     * runs on this split executor (scheduler/split_exec.h: a placement plan
     * across devices, built over m->graph), which it borrows: the caller
     * keeps it alive, frees it, and lets one session at a time use it (a
     * session starts it over, like aik_session_reset). n_threads and
     * profile then do not apply; ctx_len (0: the executor's) must not
     * exceed the executor's and the batch is capped at its max_batch. A
     * device failure the executor recovers from (fallback to the CPU) is
     * not an error: see aik_session_fallback. */
    aik_split_exec *split;
} aik_session_config;

typedef struct aik_session aik_session;

int aik_session_new(const aik_model *m, const aik_session_config *cfg, aik_session **ret_session, aik_error *err);
void aik_session_free(aik_session *s);

/* Feed tokens (chunked by the batch size) and get logits of the last n_out
 * tokens (n_out <= the last chunk's length; 1 for generation). */
int aik_session_eval(aik_session *s, const int32_t *tokens, size_t n, uint32_t n_out, const float **ret_logits,
                     aik_error *err);

/* Start over (empty KV cache). */
void aik_session_reset(aik_session *s);

/* The session's CPU executor; NULL for a session on a split executor. */
aik_cpu_exec *aik_session_exec(aik_session *s);
/* The split executor the session runs on; NULL for a CPU session. */
aik_split_exec *aik_session_split(aik_session *s);
const aik_model *aik_session_model(const aik_session *s);

/* Positions evaluated so far and the context (KV-cache positions), for
 * either executor. */
uint32_t aik_session_n_past(const aik_session *s);
uint32_t aik_session_ctx_len(const aik_session *s);

/* The executor's last device fallback (aik_split_exec_fallback) if it
 * happened while this session ran, else NULL (always NULL on the CPU). */
const aik_error *aik_session_fallback(const aik_session *s);

typedef enum aik_stop_reason {
    AIK_STOP_LENGTH = 0,    /* n_predict tokens generated */
    AIK_STOP_EOS = 1,       /* the model's end-of-sequence token */
    AIK_STOP_TOKEN = 2,     /* one of params.stop_tokens */
    AIK_STOP_STRING = 3,    /* one of params.stop_strings (not included in the text) */
    AIK_STOP_CONTEXT = 4,   /* context full */
    AIK_STOP_CANCELLED = 5, /* cancel flag or callback */
} aik_stop_reason;

const char *aik_stop_reason_name(aik_stop_reason r);

typedef enum aik_prompt_policy {
    AIK_PROMPT_REFUSE = 0,
    AIK_PROMPT_TRUNCATE = 1,
} aik_prompt_policy;

typedef struct aik_generate_params {
    uint32_t n_predict;
    aik_sampler_config sampling;
    const char *const *stop_strings;
    size_t n_stop_strings;
    const int32_t *stop_tokens;
    size_t n_stop_tokens;
    bool ignore_eos;
    unsigned tokenize_flags;        /* AIK_TOKENIZE_*; default AIK_TOKENIZE_ADD_SPECIAL */
    aik_prompt_policy prompt_policy;
    /* Streaming: called with whole UTF-8 characters as soon as they cannot
     * be part of a stop string. Non-zero return cancels. (optional) */
    int (*on_text)(void *user, const char *text, size_t len);
    void *user;
    const atomic_int *cancel;       /* set non-zero from any thread to cancel (optional) */
} aik_generate_params;

/* n_predict 128, default sampling, ADD_SPECIAL, refuse long prompts. */
void aik_generate_params_default(aik_generate_params *p);

typedef struct aik_generate_result {
    char *text;           /* generated text (NUL-terminated), without a matched stop string */
    size_t text_len;
    int32_t *tokens;      /* generated tokens */
    size_t n_tokens;
    uint32_t n_prompt;    /* prompt tokens evaluated */
    uint32_t n_prompt_dropped;
    double prompt_ms;     /* prompt evaluation */
    double gen_ms;        /* generation (excluding the prompt) */
    aik_stop_reason stop;
} aik_generate_result;

/* Tokenize the prompt, evaluate it, generate. The session is reset first. */
int aik_generate(aik_session *s, const char *prompt, size_t prompt_len, const aik_generate_params *p,
                 aik_generate_result *ret_result, aik_error *err);

void aik_generate_result_clear(aik_generate_result *r);

#endif
