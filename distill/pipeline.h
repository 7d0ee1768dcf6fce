/* SPDX-License-Identifier: MIT */
/*
 * Differential distillation of one capability (docs/distillation.md):
 *
 *   1. inputs   requests for the capability from verified replay logs (a
 *               damaged log contributes only its records before the damage)
 *               and curated inputs (one per line);
 *   2. targets  teacher trajectories: loaded from files and/or produced by
 *               running a teacher package over the inputs;
 *   3. train    a LoRA over the frozen base module the kernel serves the
 *               capability with, on prompt + teacher completion + EOS;
 *   4. evaluate the capability as served (prompt hooks, adapter unmerged)
 *               on its eval cases, with the base alone as the baseline,
 *               and write the EvalSidecar;
 *   5. package  only when the decision is "pass" and the adapter is not
 *               worse than the base: a signed derived module
 *               (distill/package.h) whose manifest names its lineage.
 *
 * Everything runs on verified modules borrowed from a kernel, so the
 * adapter is trained and evaluated on exactly what will serve it.
 */
#ifndef AIK_DISTILL_PIPELINE_H
#define AIK_DISTILL_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"
#include "aik/kernel.h"
#include "distill/package.h"
#include "loader/module.h"
#include "runtime/kernel_internal.h"
#include "runtime/model.h"

#define AIK_DISTILL_MAX_FILES 4

typedef struct aik_distill_config {
    const char *capability;               /* capability id (or an intent that resolves to one) */
    aik_kernel *kernel;                   /* serves the base and the capability module */
    const char *replay_logs[AIK_DISTILL_MAX_FILES]; size_t n_replay_logs;
    const char *inputs_file;              /* curated inputs, one per line (optional) */
    const char *trajectory_files[AIK_DISTILL_MAX_FILES]; size_t n_trajectory_files;
    const aik_model *teacher;             /* run over the inputs (optional) */
    const char *cases_file;               /* eval cases (required) */
    double min_pass_rate;                 /* decision rule (0..1] */
    /* training */
    uint32_t steps, rank, seq_len, batch;
    float alpha, lr;
    const char *const *targets;           /* LoRA targets ("attn_q.weight", ...); NULL: the trainer's q/k/v/o */
    size_t n_targets;
    uint64_t seed;
    uint32_t n_threads;
    /* outputs */
    const char *work_dir;                 /* trajectories.jsonl, adapter.alr1, eval-sidecar.json (created if missing) */
    const char *out_module;               /* the signed module directory (only written on pass) */
    const aik_signing_key *key;           /* evolution key */
    const char *manifest_store;           /* optional: file the new manifest (lineage of later derivations) */
    const char *evaluator_id;             /* sidecar evaluator_id (default "aikctl-distill") */
    /* progress (optional): called after each training step */
    void (*on_step)(void *user, uint32_t step, uint32_t steps, double loss);
    void *user;
} aik_distill_config;

/* steps 300, rank 8, alpha 16, seq_len 64, batch 8, lr 2e-3, seed 1,
 * min_pass_rate 0.5. */
void aik_distill_config_default(aik_distill_config *cfg);

typedef struct aik_distill_report {
    char capability[64];
    uint64_t replay_records, replay_used;  /* records read / resolving to the capability */
    bool replay_damaged;                   /* a log had a bad record (later records ignored) */
    size_t inputs;                         /* distinct inputs from replay + curated */
    size_t trajectories;                   /* training examples (loaded + teacher) */
    size_t teacher_generated, teacher_refused;
    size_t train_examples, heldout_examples;
    double heldout_loss_before, heldout_loss_after; /* mean CE per token on held-out trajectories */
    double train_seconds;
    uint64_t base_passed, base_failed;     /* eval without the adapter */
    uint64_t adapter_passed, adapter_failed;
    bool pass;                             /* sidecar decision */
    bool packaged;                         /* the module was written */
    char reason[256];                      /* why it was not packaged ("" when it was) */
    char adapter_digest[65], module_digest[65];
} aik_distill_report;

/* Run the pipeline. Returns 0 when it ran to a decision (packaged or not:
 * see report->packaged and report->reason), a negative errno on errors. */
int aik_distill_run(const aik_distill_config *cfg, aik_distill_report *ret_report, aik_error *err);

/* Step 5 alone, for a capability borrowed from a kernel: package an adapter
 * that was already evaluated (its sidecar in hand) as the signed derived
 * module of kc's capability module (distill/package.h). */
int aik_distill_package(const aik_kernel_capability *kc, const char *adapter_path, const char *sidecar_path,
                        const uint8_t cases_digest[32], double min_pass_rate, const aik_distill_data *data,
                        size_t n_data, const aik_signing_key *key, const char *out_dir, const char *manifest_store,
                        uint8_t ret_digest[32], aik_error *err);

#endif
