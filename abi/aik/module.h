/* SPDX-License-Identifier: MIT */
/*
 * aik/module.h — what a module .so exports to the AIKernel loader.
 *
 * A module is a shared object that exports exactly one entry symbol,
 * `aik_module_descriptor` (an aik_module_desc, see below), and carries an ELF
 * note (section ".note.aik.module", owner "AIK") with its ABI version and
 * identity. The loader reads the note with libelf *before* running any code
 * of the module (like the kernel's .modinfo or systemd's .note.package); after
 * dlopen it checks that the in-memory descriptor says the same thing.
 *
 * A module never links against libaik: host functions reach it through the
 * vtables its entry points are handed (e.g. aik_graph_api in aik/graph.h).
 * The loader enforces that with a DT_NEEDED allow-list (docs/module-format.md).
 *
 * Versioning: AIK_MODULE_ABI_MAJOR changes when the descriptor or the note
 * change incompatibly; the loader refuses any other major. Minor versions add
 * fields at the end of structs, and struct_size / ops_size say how much of a
 * struct the module knows, so old modules keep loading.
 *
 * Writing a module (docs/writing-a-module.md):
 *
 *   #include <aik/module.h>
 *   #include <aik/graph.h>
 *   static const aik_arch_ops ops = { sizeof(aik_arch_ops), AIK_GRAPH_ABI_MAJOR, 1, my_build };
 *   AIK_MODULE(AIK_MODULE_ARCHITECTURE, "llama", "1.0.0", &ops, sizeof(ops));
 */
#ifndef AIK_MODULE_H
#define AIK_MODULE_H

#include <stdint.h>

#include "aik/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the module ABI (descriptor + note layout). */
#define AIK_MODULE_ABI_MAJOR 1
#define AIK_MODULE_ABI_MINOR 0

/* The one symbol the loader looks up in a module. */
#define AIK_MODULE_ENTRY_SYMBOL "aik_module_descriptor"

/* ELF note: section name, owner ("name" field of the note) and type. */
#define AIK_MODULE_NOTE_SECTION ".note.aik.module"
#define AIK_MODULE_NOTE_OWNER "AIK"
#define AIK_MODULE_NOTE_TYPE 0x4b494101u /* "\1AIK" little-endian, arbitrary but fixed */

/* Fixed field widths in the note (NUL-terminated, NUL-padded). */
#define AIK_MODULE_NAME_MAX 64    /* bytes including the NUL: names up to 63 chars */
#define AIK_MODULE_VERSION_MAX 32 /* "MAJOR.MINOR.PATCH", bytes including the NUL */

/* Module kinds (append-only; values are stored in notes and manifests). */
typedef enum aik_module_kind {
    AIK_MODULE_ARCHITECTURE = 1, /* builds a model graph; ops = aik_arch_ops (aik/graph.h) */
    AIK_MODULE_CAPABILITY = 2,   /* prompt / post-processing hooks of a capability */
    AIK_MODULE_TOKENIZER = 3,    /* tokenizer implementation */
    AIK_MODULE_BACKEND = 4,      /* compute backend plug-in; ops = aik_backend_ops (aik/backend.h) */
} aik_module_kind;

/*
 * The module descriptor: the object behind AIK_MODULE_ENTRY_SYMBOL.
 *   abi_major, abi_minor: AIK_MODULE_ABI_* the module was compiled with.
 *   struct_size:          sizeof(aik_module_desc) the module was compiled with;
 *                         the host reads only min(struct_size, its own size).
 *   kind:                 an aik_module_kind.
 *   ops_size:             size of the kind-specific ops table in bytes; every
 *                         ops table starts with a uint32_t struct_size that
 *                         must equal ops_size.
 *   name:                 module name, [A-Za-z0-9._-], 1..63 characters.
 *   version:              semantic version "MAJOR.MINOR.PATCH".
 *   ops:                  the kind-specific entry points (never NULL).
 */
typedef struct aik_module_desc {
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t struct_size;
    uint32_t kind;
    uint32_t ops_size;
    const char *name;
    const char *version;
    const void *ops;
} aik_module_desc;

/*
 * Descriptor of the ELF note, as stored after the note header. Integers are
 * in the module's (== the host's) byte order. 104 bytes, 4-byte aligned.
 */
typedef struct aik_module_note_desc {
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t kind;
    char name[AIK_MODULE_NAME_MAX];       /* NUL-terminated, NUL-padded */
    char version[AIK_MODULE_VERSION_MAX]; /* NUL-terminated, NUL-padded */
} aik_module_note_desc;

/* The complete note as laid out in the section (ELF Nhdr + owner + desc). */
typedef struct aik_module_note {
    uint32_t namesz; /* 4: strlen("AIK") + 1 */
    uint32_t descsz; /* sizeof(aik_module_note_desc) */
    uint32_t type;   /* AIK_MODULE_NOTE_TYPE */
    char owner[4];   /* "AIK" */
    aik_module_note_desc desc;
} aik_module_note;

/* Visibility of the entry symbol (modules are built with -fvisibility=hidden). */
#if defined(__GNUC__)
#define AIK_MODULE_EXPORT __attribute__((visibility("default")))
#define AIK_MODULE_NOTE_ATTR __attribute__((section(AIK_MODULE_NOTE_SECTION), used, aligned(4)))
#else
#error "aik/module.h needs a GCC-compatible compiler (section and visibility attributes)"
#endif

/* Compile-time check usable from C11 and C++11 module sources. */
#ifdef __cplusplus
#define AIK_MODULE_STATIC_ASSERT static_assert
#else
#define AIK_MODULE_STATIC_ASSERT _Static_assert
#endif

/*
 * AIK_MODULE(kind, name, version, ops, ops_size) — declare a module.
 *   kind:     an aik_module_kind constant.
 *   name:     string literal, the module name (at most 63 characters).
 *   version:  string literal, "MAJOR.MINOR.PATCH".
 *   ops:      pointer to the kind-specific ops table (static const).
 *   ops_size: sizeof the ops table.
 * Defines the exported descriptor and the ELF note from the same literals, so
 * the two cannot disagree in a correctly built module. Use it once per module,
 * at file scope.
 */
#define AIK_MODULE(kind, name, version, ops, ops_size)                                                  \
    AIK_MODULE_STATIC_ASSERT(sizeof(name) > 1 && sizeof(name) <= AIK_MODULE_NAME_MAX,                   \
                   "AIK_MODULE: name must be 1..63 characters");                                        \
    AIK_MODULE_STATIC_ASSERT(sizeof(version) > 1 && sizeof(version) <= AIK_MODULE_VERSION_MAX,          \
                   "AIK_MODULE: version must be 1..31 characters");                                     \
    AIK_MODULE_NOTE_ATTR static const aik_module_note aik_module_note_ = {                              \
        sizeof(AIK_MODULE_NOTE_OWNER), sizeof(aik_module_note_desc), AIK_MODULE_NOTE_TYPE,              \
        AIK_MODULE_NOTE_OWNER, { AIK_MODULE_ABI_MAJOR, AIK_MODULE_ABI_MINOR, (kind), name, version }    \
    };                                                                                                  \
    AIK_MODULE_EXPORT extern const aik_module_desc aik_module_descriptor;                               \
    const aik_module_desc aik_module_descriptor = {                                                     \
        AIK_MODULE_ABI_MAJOR, AIK_MODULE_ABI_MINOR, sizeof(aik_module_desc), (kind), (ops_size),        \
        name, version, (ops)                                                                            \
    }

#ifdef __cplusplus
}
#endif
#endif /* AIK_MODULE_H */
