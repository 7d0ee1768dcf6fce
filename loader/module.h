/* SPDX-License-Identifier: MIT */
/*
 * The verified module loader (host side; module authors see aik/module.h).
 *
 * A module is a directory:
 *   manifest.json   what the module is and the SHA-256 of every file it uses
 *   manifest.sig    detached Ed25519 signature over manifest.json's exact bytes
 *   <object>.so     the code (named in the manifest)
 *   <payload>...    zero or more payloads (.slm packages), named in the manifest
 *   <profile>       optional semantic/execution profile (YAML), named in the manifest
 * Format: docs/module-format.md.
 *
 * Loading is staged, like the kernel's load_module():
 *
 *   aik_module_open()           open every file once (O_NOFOLLOW|O_CLOEXEC),
 *                               hash from that descriptor, parse the manifest,
 *                               verify signature, signer role, revocation,
 *                               rollback and lineage. Nothing is executed.
 *   aik_module_profile()        the verified profile bytes: the caller decodes
 *                               them (capgraph/) into an aik_exec_profile, then
 *   aik_module_check_profile()  checks it against the host;
 *   aik_module_activate()       inspects the ELF (libelf), dlopens the verified
 *                               bytes, checks the descriptor against the note,
 *                               maps the payloads.
 *
 * Nothing verified is re-opened by path: the .so is read once into memory,
 * hashed, ELF-checked, copied into a sealed memfd and dlopened through
 * /proc/self/fd, so the bytes that run are the bytes that were verified even
 * if the file is replaced or rewritten in place. Payloads are hashed from
 * their descriptor and mapped from the same descriptor.
 */
#ifndef AIK_LOADER_MODULE_H
#define AIK_LOADER_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"
#include "aik/module.h"
#include "loader/exec_profile.h"

/* ---- Semantic versions (MAJOR.MINOR.PATCH, decimal, no leading zeros) ---- */

typedef struct aik_modver {
    uint32_t major, minor, patch;
} aik_modver;

/* Parse "1.2.3". Returns 0 or -EINVAL. */
int aik_modver_parse(const char *s, aik_modver *ret_v);
/* <0, 0, >0 like strcmp. */
int aik_modver_cmp(const aik_modver *a, const aik_modver *b);

/* ---- Manifest (manifest.c) ---- */

#define AIK_MANIFEST_FORMAT 1
#define AIK_MANIFEST_MAX_SIZE (64u * 1024u) /* bytes of manifest.json */
#define AIK_MANIFEST_MAX_PAYLOADS 16
#define AIK_MANIFEST_MAX_PARENTS 8
#define AIK_MANIFEST_FILE_MAX 128 /* bytes of a file name including the NUL */
#define AIK_MANIFEST_MAX_DATA 8
#define AIK_MANIFEST_ROLE_MAX 32  /* bytes of a data role including the NUL */

typedef struct aik_manifest_file {
    char file[AIK_MANIFEST_FILE_MAX]; /* plain file name inside the module directory */
    uint8_t sha256[32];
} aik_manifest_file;

typedef struct aik_manifest {
    uint32_t format;                     /* AIK_MANIFEST_FORMAT */
    char name[AIK_MODULE_NAME_MAX];
    char version[AIK_MODULE_VERSION_MAX];
    aik_modver semver;                   /* version, parsed */
    uint32_t kind;                       /* aik_module_kind */
    aik_manifest_file object;            /* the .so */
    uint32_t n_payloads;
    aik_manifest_file payloads[AIK_MANIFEST_MAX_PAYLOADS];
    bool has_profile;
    aik_manifest_file profile;
    uint32_t n_parents;
    uint8_t parents[AIK_MANIFEST_MAX_PARENTS][32]; /* SHA-256 of each parent's manifest.json */
    /* Lineage of a derived artifact beyond its parents: the data it was made
     * from ("replay-log", "trajectories", "eval-cases", ...) by digest. The
     * files are not part of the module; the digests let an auditor match
     * the artifact to the exact data. */
    uint32_t n_data;
    struct {
        char role[AIK_MANIFEST_ROLE_MAX]; /* [a-z0-9-], 1..31 characters */
        uint8_t sha256[32];
    } data[AIK_MANIFEST_MAX_DATA];
    uint8_t signer[32];                  /* key id: SHA-256 of the raw Ed25519 public key */
} aik_manifest;

/* Parse manifest bytes strictly: size cap, no duplicate or unknown keys, every
 * type and value checked (names, hex digests, versions, file names without
 * '/' or leading '.'). On failure err->where names the key ("payloads[1].sha256"). */
int aik_manifest_parse(const void *data, size_t len, aik_manifest *ret_m, aik_error *err);

/* Serialize (deterministic key order, 2-space indent, trailing newline) into
 * a malloc'ed buffer. Returns 0 or -errno. */
int aik_manifest_write(const aik_manifest *m, char **ret_data, size_t *ret_len, aik_error *err);

/* Module names: 1..63 of [A-Za-z0-9._-], not starting with '.'. File names
 * in a manifest: the same rule with up to 127 characters (so never a path). */
bool aik_valid_module_name(const char *s);
bool aik_valid_file_name(const char *s);

/* Sign a manifest: set m->signer from key, serialize, re-parse what was
 * written (never sign what the loader would reject), sign, and write
 * dir/manifest.json and dir/manifest.sig atomically. ret_digest (optional)
 * receives the manifest digest; ret_json/ret_len (optional, both or
 * neither) the exact bytes (malloc'ed) and ret_sig the signature, e.g. for
 * aik_manifest_store_put. */
struct aik_signing_key;
int aik_manifest_sign_write(const char *dir, aik_manifest *m, const struct aik_signing_key *key,
                            uint8_t ret_digest[32], char **ret_json, size_t *ret_len, uint8_t ret_sig[64],
                            aik_error *err);

/* Name of a kind ("architecture") and back. */
const char *aik_module_kind_label(uint32_t kind);
int aik_module_kind_parse(const char *name, uint32_t *ret_kind);

/* ---- Ed25519 (signature.c; OpenSSL EVP one-shot, NULL digest) ---- */

#define AIK_ED25519_KEY_LEN 32
#define AIK_ED25519_SIG_LEN 64

/* Verify sig over msg with a raw public key. 0, -EBADMSG (does not verify),
 * -EINVAL (not a valid key), -ENOMEM. */
int aik_ed25519_verify(const uint8_t pub[AIK_ED25519_KEY_LEN], const void *msg, size_t len,
                       const uint8_t sig[AIK_ED25519_SIG_LEN]);

/* Key id = SHA-256 of the raw public key. */
int aik_key_id(const uint8_t pub[AIK_ED25519_KEY_LEN], uint8_t ret_id[32]);

typedef struct aik_signing_key aik_signing_key;

int aik_signing_key_generate(aik_signing_key **ret_key);
int aik_signing_key_from_seed(const uint8_t seed[32], aik_signing_key **ret_key);
/* Load a PKCS#8 PEM private key (refused unless it is Ed25519). */
int aik_signing_key_load(const char *path, aik_signing_key **ret_key, aik_error *err);
/* Write private PEM (mode 0600) and public PEM (0644), both atomically. */
int aik_signing_key_save(const aik_signing_key *key, const char *priv_path, const char *pub_path,
                         aik_error *err);
int aik_signing_key_public(const aik_signing_key *key, uint8_t ret_pub[AIK_ED25519_KEY_LEN]);
int aik_signing_key_sign(const aik_signing_key *key, const void *msg, size_t len,
                         uint8_t ret_sig[AIK_ED25519_SIG_LEN]);
void aik_signing_key_free(aik_signing_key *key);

/* Load a PEM public key file (SubjectPublicKeyInfo, Ed25519 only). */
int aik_public_key_load(const char *path, uint8_t ret_pub[AIK_ED25519_KEY_LEN], aik_error *err);

/* ---- Trust store (trust.c) ----
 * Directory layout:
 *   keys/{root,publisher,evolution}/NAME.pub  PEM public keys, role by folder
 *   revoked            one hex key id per line, '#' comments
 *   versions/<name>    highest version seen of module <name> (atomic updates)
 *   manifests/         verified manifests by digest, for lineage:
 *                      <sha256-hex>.json + <sha256-hex>.sig
 */
typedef enum aik_key_role {
    AIK_KEY_ROLE_ROOT = 1,      /* may sign original artifacts */
    AIK_KEY_ROLE_PUBLISHER = 2, /* may sign original artifacts */
    AIK_KEY_ROLE_EVOLUTION = 3, /* may sign derived artifacts only */
} aik_key_role;

#define AIK_TRUST_MAX_KEYS 256

typedef struct aik_trust aik_trust;

/* Open a trust store directory (missing sub-directories are empty). */
int aik_trust_open(const char *dir, aik_trust **ret_trust, aik_error *err);
/* An empty in-memory store (no directory: versions are not recorded). */
int aik_trust_new(aik_trust **ret_trust);
void aik_trust_free(aik_trust *t);
int aik_trust_add_key(aik_trust *t, const uint8_t pub[AIK_ED25519_KEY_LEN], aik_key_role role);
int aik_trust_revoke(aik_trust *t, const uint8_t key_id[32]);
/* Look a key up by id: 0 with role and raw key, -ENOKEY (unknown) or
 * -EKEYREVOKED. ret_* may be NULL. */
int aik_trust_find(const aik_trust *t, const uint8_t key_id[32], aik_key_role *ret_role,
                   uint8_t ret_pub[AIK_ED25519_KEY_LEN]);
/* Highest version recorded for a module: 0, or -ENOENT when none. */
int aik_trust_highest_version(const aik_trust *t, const char *name, aik_modver *ret_v);
/* Raise the record to v if v is higher (atomic file replace). No-op for an
 * in-memory store. */
int aik_trust_record_version(aik_trust *t, const char *name, const aik_modver *v, aik_error *err);
/* The trust store's manifests/ directory, or NULL for an in-memory store. */
const char *aik_trust_manifest_dir(const aik_trust *t);
const char *aik_key_role_name(aik_key_role role);

/* Copy a manifest and its signature into a manifest store directory as
 * <digest>.json / <digest>.sig (atomic), so derived modules can name it as a
 * parent. ret_digest may be NULL. */
int aik_manifest_store_put(const char *store_dir, const void *manifest, size_t len,
                           const uint8_t sig[AIK_ED25519_SIG_LEN], uint8_t ret_digest[32],
                           aik_error *err);

/* ---- Loading (module.c) ---- */

enum {
    AIK_LOAD_DEVELOPER = 1u << 0,      /* accept unsigned modules, with a warning */
    AIK_LOAD_ALLOW_ROLLBACK = 1u << 1, /* governance rollback: older versions allowed */
    AIK_LOAD_NO_RECORD = 1u << 2,      /* do not raise the highest-seen version on activation */
    AIK_LOAD_KEEP_GOING = 1u << 3,     /* run every check even after one failed (aikctl verify) */
};

/* Warnings a load accepted (aik_module_warnings). */
enum {
    AIK_MODULE_WARN_UNSIGNED = 1u << 0, /* developer mode let an unsigned module through */
    AIK_MODULE_WARN_ROLLBACK = 1u << 1, /* an older version was allowed by governance */
};

#define AIK_LINEAGE_MAX_DEPTH 16

/* Called once per check with its name ("signature", "object.sha256", ...),
 * 0 or the error, and the explanation (NULL on success). */
typedef void (*aik_module_check_fn)(void *userdata, const char *check, int result,
                                    const aik_error *err);

typedef struct aik_load_options {
    uint32_t flags;                    /* AIK_LOAD_* */
    aik_trust *trust;                  /* required */
    const char *const *manifest_dirs;  /* extra manifest stores searched for parents (after the trust store's) */
    size_t n_manifest_dirs;
    aik_module_check_fn on_check;      /* optional */
    void *userdata;
} aik_load_options;

typedef struct aik_module aik_module;

/* Stage 1: open, hash and verify a module directory. Nothing of the module
 * runs. opts is copied; trust must outlive the module (activation records
 * the version in it); manifest_dirs, on_check and userdata are used only
 * during this call. On failure err->where starts with dir. */
int aik_module_open(const char *dir, const aik_load_options *opts, aik_module **ret_module,
                    aik_error *err);

/* The verified manifest, its exact bytes and digest. */
const aik_manifest *aik_module_manifest(const aik_module *m);
const uint8_t *aik_module_manifest_digest(const aik_module *m);
/* AIK_MODULE_WARN_* accepted so far, and a sentence for each (for the CLI to
 * print loudly). */
uint32_t aik_module_warnings(const aik_module *m);
const char *aik_module_warning_text(const aik_module *m);
/* Verified profile bytes (NUL-terminated), or NULL/0 when the manifest has none. */
const char *aik_module_profile(const aik_module *m, size_t *ret_len);
/* Bytes hashed and nanoseconds spent hashing during open. */
void aik_module_hash_stats(const aik_module *m, uint64_t *ret_bytes, uint64_t *ret_ns);

/* Stage 2: check the decoded execution profile against the host. Required
 * before activation when the manifest lists a profile. */
int aik_module_check_profile(aik_module *m, const aik_exec_profile *profile,
                             const aik_host_info *host, aik_error *err);

/* ELF inspection of the verified image (done by activate; callable alone,
 * e.g. by aikctl verify). Fills the note on success. */
int aik_module_check_elf(aik_module *m, aik_module_note_desc *ret_note, aik_error *err);

/* Stage 3: ELF inspection, dlopen, descriptor == note, payload mapping,
 * highest-version record. */
int aik_module_activate(aik_module *m, aik_error *err);

/* After activation: the module's descriptor and payloads. */
const aik_module_desc *aik_module_descriptor_of(const aik_module *m);
uint32_t aik_module_payload_count(const aik_module *m);
/* Mapped bytes of payload i (read-only). Returns 0 or -EINVAL. */
int aik_module_payload(const aik_module *m, uint32_t i, const void **ret_data, uint64_t *ret_size);
/* Payloads named *.slm are opened with aik_slm_open_fd (structure validated)
 * from the verified descriptor; this returns that package, or NULL. */
struct aik_slm;
const struct aik_slm *aik_module_payload_slm(const aik_module *m, uint32_t i);

/* dlclose, unmap, close. Accepts NULL. */
void aik_module_close(aik_module *m);

/* ---- ELF inspection (elfcheck.c) ---- */

/* Read the AIK note from an ELF image without running anything. Checks the
 * note's framing and NUL-termination, not the ABI version. */
int aik_elf_read_note(const void *image, size_t len, aik_module_note_desc *ret_note, aik_error *err);

/* Full pre-dlopen inspection: class/machine == host, ET_DYN, note present
 * and ABI major == AIK_MODULE_ABI_MAJOR, entry symbol exported (defined,
 * global, default visibility), PT_GNU_STACK present without PF_X, no
 * TEXTREL, DT_NEEDED within the allow-list for the note's kind. */
int aik_elf_check(const void *image, size_t len, aik_module_note_desc *ret_note, aik_error *err);

/* True if a DT_NEEDED entry is allowed for a module of this kind. */
bool aik_elf_needed_allowed(const char *soname, uint32_t kind);

#endif
