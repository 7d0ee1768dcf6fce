/* SPDX-License-Identifier: MIT */
/*
 * Eval cases and eval sidecars (docs/adapters.md, "Eval sidecars").
 *
 * Eval cases are JSON Lines: one object per line, keys
 *   "input"    (string, required)   text given to the model
 *   "expected" (string, required)   what the output is matched against
 *   "match"    (string, required)   "exact" | "contains" | "not-contains" | "regex"
 *                                   (regex: PCRE2, matched anywhere in the output)
 *   "intent"   (string, optional)   label of the capability the case exercises
 *   "prompt"   (string, optional)   text put before the input (the model sees
 *                                   prompt + input)
 * Unknown keys, wrong types, duplicate keys, blank lines, anything after the
 * object on a line and an invalid regex are errors naming line:key.
 *
 * An EvalSidecar names the exact artifacts a result belongs to, with the
 * seed's fields and nothing else:
 *   model_digest, adapter_digest (or null), source_kind, evaluator_id,
 *   eval_cases_digest, evaluation_scope, cases_passed, cases_failed,
 *   decision ("pass" | "fail"), generated_at_utc (YYYY-MM-DDTHH:MM:SSZ).
 */
#ifndef AIK_RUNTIME_EVAL_H
#define AIK_RUNTIME_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/capability.h"
#include "aik/common.h"
#include "runtime/model.h"

#define AIK_EVAL_MAX_FILE_SIZE (64u << 20)
#define AIK_EVAL_MAX_CASES 100000u
#define AIK_EVAL_MAX_SIDECAR_SIZE (64u << 10)

typedef enum aik_eval_match {
    AIK_EVAL_MATCH_EXACT = 0,
    AIK_EVAL_MATCH_CONTAINS = 1,
    AIK_EVAL_MATCH_NOT_CONTAINS = 2,
    AIK_EVAL_MATCH_REGEX = 3,
} aik_eval_match;

/* "exact", "contains", "not-contains", "regex" or "?". */
const char *aik_eval_match_name(aik_eval_match m);

typedef struct aik_eval_case {
    char *input;
    char *expected;
    aik_eval_match match;
    char *intent; /* NULL when absent */
    char *prompt; /* NULL when absent */
    uint32_t line; /* 1-based line in the cases file */
    void *regex;   /* compiled pattern (pcre2_code) for AIK_EVAL_MATCH_REGEX */
} aik_eval_case;

typedef struct aik_eval_cases {
    size_t n;
    aik_eval_case *cases;
    uint8_t digest[32]; /* SHA-256 of the cases file bytes */
} aik_eval_cases;

/* Parse a cases file held in memory. err->where is "line N" or "line N: key".
 * Returns 0, -EINVAL, -E2BIG (too many cases / too large), -ENOMEM. */
int aik_eval_cases_parse(const char *data, size_t len, aik_eval_cases **ret_cases, aik_error *err);

/* Read (at most AIK_EVAL_MAX_FILE_SIZE bytes) and parse. */
int aik_eval_cases_load(const char *path, aik_eval_cases **ret_cases, aik_error *err);

/* Free. Accepts NULL. */
void aik_eval_cases_free(aik_eval_cases *c);

/* Does output (len bytes) satisfy the case? */
bool aik_eval_case_passes(const aik_eval_case *c, const char *output, size_t len);

typedef struct aik_eval_config {
    uint32_t n_predict; /* tokens per case; 0: 64 (the capability's budget when cap is set) */
    uint32_t n_threads; /* 0: one per online CPU */
    /* Evaluate a capability as the kernel serves it (optional): each case's
     * input goes through cap's prompt, stop strings and post-processing
     * (runtime/capability_run.h), with the kernel's sampling defaults, and
     * lora (n_lora pairs, unmerged) is applied to the model. Cases with a
     * "prompt" key are refused in this mode: the capability makes the
     * prompt. An input the capability refuses fails its case. */
    const aik_capability_ops *cap;
    const struct aik_lora_ref *lora;
    size_t n_lora;
} aik_eval_config;

typedef struct aik_eval_outcome {
    uint64_t passed, failed;
    bool *case_passed; /* n entries (malloc'ed, caller frees) */
    char **outputs;    /* n generated texts (malloc'ed each, caller frees with aik_eval_outcome_clear) */
    size_t n;
} aik_eval_outcome;

/* Run every case greedily (temperature 0) through one session of m and match
 * the generated text (or the capability's answer, see aik_eval_config). A case whose prompt does not fit the context counts as
 * failed (its output is empty); other generation errors abort the run. */
int aik_eval_run(const aik_model *m, const aik_eval_cases *cases, const aik_eval_config *cfg,
                 aik_eval_outcome *ret_outcome, aik_error *err);

void aik_eval_outcome_clear(aik_eval_outcome *o);

/* ---- Sidecar ---- */

typedef struct aik_eval_sidecar {
    char model_digest[65];      /* hex SHA-256 (the package's model checksum) */
    bool has_adapter;
    char adapter_digest[65];    /* hex SHA-256 of the adapter file when has_adapter */
    char source_kind[64];       /* "package" or "adapter:<dense|sparse|lowrank>" (free text, non-empty) */
    char evaluator_id[128];
    char eval_cases_digest[65];
    char evaluation_scope[128];
    uint64_t cases_passed, cases_failed;
    bool pass;                  /* decision */
    char generated_at_utc[32];  /* YYYY-MM-DDTHH:MM:SSZ */
} aik_eval_sidecar;

/* pass when there were cases and passed / (passed + failed) >= min_pass_rate
 * (1.0: all must pass). */
bool aik_eval_decide(uint64_t passed, uint64_t failed, double min_pass_rate);

/* Current UTC time as YYYY-MM-DDTHH:MM:SSZ. */
void aik_eval_utc_now(char out[32]);

/* Serialize to JSON text (malloc'ed, NUL-terminated), keys in the seed's
 * order. */
int aik_eval_sidecar_to_json(const aik_eval_sidecar *s, char **ret_json, aik_error *err);

/* Serialize and write atomically (mode 0644). */
int aik_eval_sidecar_write(const aik_eval_sidecar *s, const char *path, aik_error *err);

/* Parse strictly: exactly the ten keys with the right types, hex digests of
 * 64 lower-case digits, decision "pass"/"fail", timestamp format. */
int aik_eval_sidecar_parse(const char *json, size_t len, aik_eval_sidecar *ret_sidecar, aik_error *err);

/* Check a sidecar against the artifacts in hand: the model checksum, the
 * adapter file digest (NULL when no adapter: the sidecar must say null) and
 * the cases file digest. A sidecar naming any other digest is -EBADMSG with
 * err->where the field. Also rejects a decision inconsistent with the counts
 * when min_pass_rate >= 0 (pass with cases_failed > 0 at rate 1.0, etc.). */
int aik_eval_sidecar_check(const aik_eval_sidecar *s, const uint8_t model_digest[32],
                           const uint8_t *adapter_digest, const uint8_t cases_digest[32], double min_pass_rate,
                           aik_error *err);

#endif
