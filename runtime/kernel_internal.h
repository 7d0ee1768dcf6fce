/* SPDX-License-Identifier: MIT */
/*
 * What the distillation pipeline and aikctl need from a kernel beyond the
 * host API: the verified modules behind a capability, borrowed (held
 * resident) so a pipeline trains and evaluates on exactly what the kernel
 * serves. Not part of the public ABI.
 */
#ifndef AIK_RUNTIME_KERNEL_INTERNAL_H
#define AIK_RUNTIME_KERNEL_INTERNAL_H

#include <stddef.h>

#include "aik/capability.h"
#include "aik/kernel.h"
#include "runtime/model.h"
#include "scheduler/cpu_exec.h"

typedef struct aik_kernel_capability {
    char capability[64];            /* the capability the intent resolved to */
    const aik_model *base;          /* base model (shared, immutable) */
    char base_digest[65];           /* manifest digest of the base module, hex */
    const char *base_dir;           /* its module directory */
    const aik_capability_ops *cap;  /* NULL when the base serves the capability itself */
    char cap_digest[65];            /* manifest digest of the capability module ("" when cap is NULL) */
    const char *cap_dir;            /* its module directory (NULL when cap is NULL) */
    const aik_lora_ref *lora;       /* the module's adapter, validated against base (n_lora = 0: none) */
    size_t n_lora;
    char adapter_digest[65];        /* "" when none */
    void *priv;
} aik_kernel_capability;

/* Resolve intent and load (verify, activate) the modules that serve it, as
 * aik_submit does; they stay resident until the release. */
int aik_kernel_capability_acquire(aik_kernel *k, const char *intent, aik_kernel_capability *ret_capability,
                                  aik_error *err);

/* Give the modules back. Accepts a zeroed struct. */
void aik_kernel_capability_release(aik_kernel *k, aik_kernel_capability *c);

/* The capability an intent resolves to (no module is loaded). */
int aik_kernel_resolve_capability(aik_kernel *k, const char *intent, char ret_capability[64], aik_error *err);

#endif
