/* SPDX-License-Identifier: MIT */
/*
 * aik/capability.h — entry points of a capability module (the `ops` of a
 * module descriptor of kind AIK_MODULE_CAPABILITY).
 *
 * A capability turns a request's input into a prompt for its base model and
 * the model's completion into the answer. It runs no model code itself: the
 * kernel generates with the base model between the two hooks (and applies
 * the capability's adapter when its profile names one).
 */
#ifndef AIK_CAPABILITY_H
#define AIK_CAPABILITY_H

#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aik_capability_ops {
    uint32_t struct_size;   /* sizeof(aik_capability_ops) the module was built with */
    const char *capability; /* capability id it implements, e.g. "lexicon.define" */

    /* Write the prompt for input (len bytes, not NUL-terminated) into buf
     * (cap bytes) and set *ret_len. Returns 0, -EINVAL for input the
     * capability cannot serve (the kernel reports it), -ENOSPC when cap is
     * too small. Must not keep pointers. */
    int (*build_prompt)(const char *input, size_t len, char *buf, size_t cap, size_t *ret_len);

    /* Strings that end the answer (NULL-terminated array), or NULL. */
    const char *const *stop_strings;

    /* Turn the completion (text, len bytes, NUL-terminated, writable) into
     * the answer in place and set *ret_len. (optional: NULL keeps it as is)
     * input is the request's input, for answers that quote it. */
    int (*postprocess)(const char *input, size_t input_len, char *text, size_t len, size_t *ret_len);

    uint32_t max_tokens;    /* generation budget for one answer (0: the kernel's default) */
} aik_capability_ops;

#ifdef __cplusplus
}
#endif
#endif /* AIK_CAPABILITY_H */
