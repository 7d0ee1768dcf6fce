/* SPDX-License-Identifier: MIT */
/* Internal helpers to fill an aik_error (see aik/common.h). */
#ifndef AIK_COMMON_ERROR_H
#define AIK_COMMON_ERROR_H

#include "aik/common.h"

/* Record a failure in err (may be NULL) and return code, so that callers can
 * write `return aik_fail(err, -EINVAL, "header.n_layers", "is %u, must be > 0", n);`.
 * where may be NULL. code must be negative. */
int aik_fail(aik_error *err, int code, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefix err->where with "prefix: " (used when an error bubbles up through a
 * layer that knows more context, e.g. the file name). Accepts NULL. */
void aik_error_prefix(aik_error *err, const char *prefix);

#endif
