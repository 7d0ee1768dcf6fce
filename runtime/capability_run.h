/* SPDX-License-Identifier: MIT */
/*
 * One answer of a capability: input → the capability's prompt → generation
 * on a session (with the capability's adapter, when the caller set one on
 * the session's executor) → the capability's post-processing.
 *
 * The kernel serves requests with it, eval runs cases with it and the
 * distillation pipeline records teacher trajectories with it, so a case,
 * a trajectory and a served request see exactly the same prompt, stop
 * strings, sampling defaults and answer clean-up.
 */
#ifndef AIK_RUNTIME_CAPABILITY_RUN_H
#define AIK_RUNTIME_CAPABILITY_RUN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/capability.h"
#include "aik/common.h"
#include "runtime/generate.h"

#define AIK_CAPABILITY_PROMPT_MAX 4096
/* Greedy decoding of small models loops; this penalty on the last 64
 * tokens keeps answers moving (the kernel's default). */
#define AIK_CAPABILITY_REPEAT_PENALTY 1.3f
#define AIK_CAPABILITY_DEFAULT_TOKENS 128

typedef struct aik_capability_run_options {
    uint32_t max_tokens;  /* 0: the capability's budget, else AIK_CAPABILITY_DEFAULT_TOKENS */
    float temperature;    /* <= 0: greedy */
    uint64_t seed;
    float repeat_penalty; /* 0: AIK_CAPABILITY_REPEAT_PENALTY; 1: off */
    int (*on_text)(void *user, const char *text, size_t len); /* streaming (optional) */
    void *user;
    const atomic_int *cancel; /* (optional) */
} aik_capability_run_options;

/* Build the prompt for input (cap NULL: the input is the prompt), generate
 * on s and post-process. ret_result->text is the answer; ret_completion
 * (optional) receives the raw completion before post-processing (malloc'ed,
 * NUL-terminated): what a trajectory records and a student learns. Errors:
 * -EINVAL when the capability refuses the input, -E2BIG when the prompt
 * does not fit (prompt buffer or context), others from generation. */
int aik_capability_run(aik_session *s, const aik_capability_ops *cap, const char *input, size_t input_len,
                       const aik_capability_run_options *opt, aik_generate_result *ret_result,
                       char **ret_completion, aik_error *err);

/* The prompt alone (what a student is trained on before the completion). */
int aik_capability_prompt(const aik_capability_ops *cap, const char *input, size_t input_len, char *buf,
                          size_t cap_bytes, size_t *ret_len, aik_error *err);

#endif
