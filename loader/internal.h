/* SPDX-License-Identifier: MIT */
/*
 * Private to the module loader: the state carried through the load stages
 * (like struct load_info in the kernel's kernel/module/internal.h). Each
 * stage lives in its own file and receives the load_info.
 */
#ifndef AIK_LOADER_INTERNAL_H
#define AIK_LOADER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "loader/module.h"

#define AIK_MODULE_OBJECT_MAX (256ull << 20) /* cap on a module .so */
#define AIK_MODULE_PROFILE_MAX (1u << 20)    /* cap on a profile file */

enum load_state {
    LOAD_VERIFIED = 1,   /* stage 1 done */
    LOAD_ACTIVE = 2,     /* dlopened */
};

struct load_info {
    char *dir;                /* copy, for messages only; never re-opened */
    int dirfd;
    aik_load_options opts;

    /* manifest.json and manifest.sig, read once */
    char *manifest_bytes;
    size_t manifest_len;
    uint8_t manifest_digest[32];
    aik_manifest man;
    bool is_signed;
    uint8_t sig[AIK_ED25519_SIG_LEN];
    aik_key_role signer_role;

    /* the object: read once into memory, hashed, inspected, then copied to a
     * sealed memfd for dlopen */
    int so_fd;
    uint8_t *so_image;
    size_t so_len;

    /* payloads: hashed from their descriptors, mapped from the same ones */
    int payload_fd[AIK_MANIFEST_MAX_PAYLOADS];
    uint64_t payload_size[AIK_MANIFEST_MAX_PAYLOADS];

    /* profile bytes (NUL-terminated) */
    char *profile;
    size_t profile_len;

    uint64_t bytes_hashed;
    uint64_t hash_ns;
    uint32_t warnings;
    char warning_text[512];
    int first_error;        /* with AIK_LOAD_KEEP_GOING */
    aik_error first_err;
};

/* Stages (each returns 0 or -errno with err filled). */
int aik_load_signature(struct load_info *li, aik_error *err);   /* signature.c: signature + signer role */
int aik_load_rollback(struct load_info *li, aik_error *err);    /* trust.c */
int aik_load_lineage(struct load_info *li, aik_error *err);     /* lineage.c */

/* Verify a detached signature of manifest bytes against the trust store and
 * the role rule (parents => evolution key; none => root or publisher).
 * Shared by the module itself and by every ancestor in its lineage. */
int aik_verify_manifest_signature(const aik_trust *t, const aik_manifest *m, const void *bytes,
                                  size_t len, const uint8_t sig[AIK_ED25519_SIG_LEN],
                                  aik_key_role *ret_role, aik_error *err);

/* Monotonic clock in nanoseconds. */
uint64_t aik_now_ns(void);


#endif
