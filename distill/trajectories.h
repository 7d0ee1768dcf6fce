/* SPDX-License-Identifier: MIT */
/*
 * Teacher trajectories: what a teacher answered for a capability's inputs,
 * the training targets of differential distillation (docs/distillation.md).
 *
 * File format: JSON Lines, one object per line with exactly these keys:
 *   "capability"  capability id the trajectory belongs to ("lexicon.define")
 *   "input"       the request input (what the capability's prompt is built from)
 *   "output"      the teacher's completion after that prompt, before the
 *                 capability's post-processing (what a student must learn
 *                 to produce)
 *   "source"      where the output came from: "teacher:<64 hex>" (the
 *                 teacher package's model checksum) or "curated:<label>"
 *                 (a reference dataset, e.g. "curated:wordnet-3.0")
 * Strings are non-empty, valid UTF-8 without NUL, input at most 4096 bytes, output
 * at most 16384; unknown or duplicate keys, blank lines and trailing bytes
 * are errors naming "line N: key". At most 1,000,000 lines, 256 MiB.
 */
#ifndef AIK_DISTILL_TRAJECTORIES_H
#define AIK_DISTILL_TRAJECTORIES_H

#include <stddef.h>
#include <stdint.h>

#include "aik/capability.h"
#include "aik/common.h"
#include "runtime/model.h"

#define AIK_TRAJ_MAX_FILE_SIZE (256u << 20)
#define AIK_TRAJ_MAX_LINES 1000000u
#define AIK_TRAJ_MAX_INPUT 4096u
#define AIK_TRAJ_MAX_OUTPUT 16384u

typedef struct aik_trajectory {
    char *capability;
    char *input;
    char *output;
    char *source;
} aik_trajectory;

typedef struct aik_trajectories {
    size_t n, cap;
    aik_trajectory *v;
} aik_trajectories;

/* Parse a file held in memory, appending to set (which may hold earlier
 * files' trajectories). On failure set is unchanged. */
int aik_trajectories_parse(aik_trajectories *set, const char *data, size_t len, aik_error *err);

/* Read (at most AIK_TRAJ_MAX_FILE_SIZE) and parse; ret_sha256 (optional)
 * receives the file's digest. */
int aik_trajectories_load(aik_trajectories *set, const char *path, uint8_t ret_sha256[32], aik_error *err);

/* Append one (copied; the same limits as the parser). */
int aik_trajectories_add(aik_trajectories *set, const char *capability, const char *input, const char *output,
                         const char *source, aik_error *err);

/* The set as JSON Lines (malloc'ed, deterministic key order). */
int aik_trajectories_to_jsonl(const aik_trajectories *set, char **ret_data, size_t *ret_len, aik_error *err);

/* Free the entries (the struct itself is the caller's). Accepts NULL. */
void aik_trajectories_clear(aik_trajectories *set);

typedef struct aik_teacher_stats {
    size_t generated;  /* trajectories added */
    size_t refused;    /* inputs the capability refused or whose prompt did not fit */
    size_t unusable;   /* answers that were empty, not UTF-8 or too long (not added) */
} aik_teacher_stats;

/* Run a teacher package over inputs for one capability, as the kernel
 * would serve them (cap's prompt and stop strings, greedy), and append a
 * trajectory per input with source "teacher:<model checksum>". cap may be
 * NULL for the base capability (the input is the prompt). */
int aik_trajectories_from_teacher(aik_trajectories *set, const aik_model *teacher, const aik_capability_ops *cap,
                                  const char *capability, const char *const *inputs, size_t n_inputs,
                                  uint32_t n_threads, aik_teacher_stats *ret_stats, aik_error *err);

#endif
