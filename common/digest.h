/* SPDX-License-Identifier: MIT */
/* SHA-256 through OpenSSL libcrypto (EVP), with a streaming interface. */
#ifndef AIK_COMMON_DIGEST_H
#define AIK_COMMON_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define AIK_SHA256_LEN 32
#define AIK_SHA256_HEX_LEN 65 /* 64 hex digits + NUL */

typedef struct aik_sha256 aik_sha256;

/* Streaming SHA-256. aik_sha256_new returns NULL on allocation failure. */
aik_sha256 *aik_sha256_new(void);
int aik_sha256_update(aik_sha256 *h, const void *data, size_t len);
int aik_sha256_final(aik_sha256 *h, uint8_t out[AIK_SHA256_LEN]);
void aik_sha256_free(aik_sha256 *h);

/* One-shot SHA-256 of a buffer. Returns 0 or -ENOMEM/-EIO. */
int aik_sha256_buf(const void *data, size_t len, uint8_t out[AIK_SHA256_LEN]);

/* SHA-256 of everything readable from fd, from offset 0, using pread (the
 * file position is not moved). Returns 0 or -errno. */
int aik_sha256_fd(int fd, uint8_t out[AIK_SHA256_LEN]);

/* Lower-case hex of a digest into out (AIK_SHA256_HEX_LEN bytes). */
void aik_sha256_hex(const uint8_t d[AIK_SHA256_LEN], char out[AIK_SHA256_HEX_LEN]);

/* Parse 64 hex digits. Returns 0 or -EINVAL. */
int aik_sha256_from_hex(const char *hex, uint8_t out[AIK_SHA256_LEN]);

#endif
