/* SPDX-License-Identifier: MIT */
/*
 * Packaging a capability adapter as a signed, derived module: the last step
 * of the differential distillation pipeline (docs/distillation.md).
 *
 * The new module is the capability module it derives from (same hooks .so,
 * same name and version) plus:
 *   adapter.alr1          the ALR1 adapter, named by the profile's
 *                         module.adapter with its digest
 *   eval-sidecar.json     the EvalSidecar that passed
 * and a manifest whose parents are the source capability module and the
 * base module, whose training_data names the data digests (replay log,
 * trajectories, eval cases), signed with an evolution key. Nothing is
 * written unless the adapter fits the base and the sidecar names exactly
 * this base, this adapter and these eval cases with decision "pass".
 */
#ifndef AIK_DISTILL_PACKAGE_H
#define AIK_DISTILL_PACKAGE_H

#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"
#include "loader/module.h"
#include "loader/slm.h"

#define AIK_DISTILL_ADAPTER_FILE "adapter.alr1"
#define AIK_DISTILL_SIDECAR_FILE "eval-sidecar.json"

typedef struct aik_distill_data {
    const char *role; /* manifest training_data role: "replay-log", "trajectories", "eval-cases" */
    uint8_t sha256[32];
} aik_distill_data;

typedef struct aik_adapter_module_spec {
    const char *source_dir;          /* the capability module directory it derives from */
    const uint8_t *source_digest;    /* that module's manifest digest (verified by the caller) */
    const uint8_t *base_digest;      /* the base module's manifest digest */
    const aik_slm *base_pkg;         /* the base model the adapter applies to */
    const char *adapter_path;        /* ALR1 file */
    const char *sidecar_path;        /* EvalSidecar JSON */
    const uint8_t *cases_digest;     /* SHA-256 of the eval cases the sidecar must name */
    double min_pass_rate;            /* the decision rule the sidecar must agree with */
    const aik_distill_data *data;    /* lineage data digests (n_data <= AIK_MANIFEST_MAX_DATA - 1) */
    size_t n_data;
    const aik_signing_key *key;      /* evolution key */
    const char *out_dir;             /* created (must not exist) */
    const char *manifest_store;      /* optional: file the signed manifest here for later lineage checks */
} aik_adapter_module_spec;

/* Build, sign and write the module; ret_digest (optional) receives the new
 * manifest's digest. On failure nothing is left at out_dir. */
int aik_adapter_module_build(const aik_adapter_module_spec *spec, uint8_t ret_digest[32], aik_error *err);

/* The profile text with module.adapter set to {file, sha256} (an existing
 * adapter entry is replaced), checked by re-parsing it strictly. Exposed
 * for tests. *ret_text is malloc'ed. */
int aik_profile_with_adapter(const char *text, size_t len, const char *file, const uint8_t sha256[32],
                             char **ret_text, size_t *ret_len, aik_error *err);

#endif
