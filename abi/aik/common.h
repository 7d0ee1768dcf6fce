/* SPDX-License-Identifier: MIT */
/*
 * aik/common.h — conventions shared by every AIKernel header.
 *
 * Error convention (systemd style): functions return int, 0 or a positive
 * count on success and a negative errno value on failure. Output parameters
 * are named ret_*, come last, and are only written on success. Where a person
 * needs to know what went wrong, a function also takes an aik_error that it
 * fills in on failure: which field / key path / file:line:column, and which
 * check failed. Library code never prints.
 */
#ifndef AIK_COMMON_H
#define AIK_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks a symbol exported from libaik.so (everything else is hidden). */
#if defined(__GNUC__)
#define AIK_EXPORT __attribute__((visibility("default")))
#else
#define AIK_EXPORT
#endif

/* Version of the AIKernel ABI as a whole (module and backend ABIs have their
 * own numbers in aik/module.h and aik/backend.h). */
#define AIK_VERSION_MAJOR 0
#define AIK_VERSION_MINOR 1

/*
 * A failure explained for a person.
 *   code:    the negative errno value the function returned.
 *   where:   what the failure is about: a field ("header.n_layers"), a key
 *            path with position ("model.yaml:12:3: capabilities[0].id"), a
 *            tensor name. Empty when there is nothing more precise to say.
 *   message: which check failed, in words ("exceeds file size 4096").
 * A NULL aik_error pointer is always accepted and means "don't explain".
 */
typedef struct aik_error {
    int code;
    char where[160];
    char message[352];
} aik_error;

/* Clear an error record (code 0, empty strings). Accepts NULL. */
AIK_EXPORT void aik_error_clear(aik_error *err);

/* Format "where: message" (or just "message" when where is empty) into buf.
 * Returns buf. */
AIK_EXPORT const char *aik_error_format(const aik_error *err, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* AIK_COMMON_H */
