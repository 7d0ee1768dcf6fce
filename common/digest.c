/* SPDX-License-Identifier: MIT */
#include "common/digest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

struct aik_sha256 {
    EVP_MD_CTX *ctx;
};

aik_sha256 *aik_sha256_new(void)
{
    aik_sha256 *h = calloc(1, sizeof(*h));

    if (!h)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        aik_sha256_free(h);
        return NULL;
    }
    return h;
}

int aik_sha256_update(aik_sha256 *h, const void *data, size_t len)
{
    if (!h)
        return -EINVAL;
    return EVP_DigestUpdate(h->ctx, data, len) == 1 ? 0 : -EIO;
}

int aik_sha256_final(aik_sha256 *h, uint8_t out[AIK_SHA256_LEN])
{
    unsigned int n = 0;

    if (!h)
        return -EINVAL;
    if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1 || n != AIK_SHA256_LEN)
        return -EIO;
    return 0;
}

void aik_sha256_free(aik_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

int aik_sha256_buf(const void *data, size_t len, uint8_t out[AIK_SHA256_LEN])
{
    unsigned int n = 0;

    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != AIK_SHA256_LEN)
        return -EIO;
    return 0;
}

int aik_sha256_fd(int fd, uint8_t out[AIK_SHA256_LEN])
{
    enum { CHUNK = 1 << 20 };
    aik_sha256 *h;
    uint8_t *buf;
    off_t off = 0;
    int r = 0;

    h = aik_sha256_new();
    buf = malloc(CHUNK);
    if (!h || !buf) {
        r = -ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n = pread(fd, buf, CHUNK, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            goto out;
        }
        if (n == 0)
            break;
        r = aik_sha256_update(h, buf, (size_t)n);
        if (r < 0)
            goto out;
        off += n;
    }
    r = aik_sha256_final(h, out);
out:
    free(buf);
    aik_sha256_free(h);
    return r;
}

void aik_sha256_hex(const uint8_t d[AIK_SHA256_LEN], char out[AIK_SHA256_HEX_LEN])
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 0; i < AIK_SHA256_LEN; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int aik_sha256_from_hex(const char *hexs, uint8_t out[AIK_SHA256_LEN])
{
    uint8_t tmp[AIK_SHA256_LEN];

    if (!hexs || strlen(hexs) != 64)
        return -EINVAL;
    for (int i = 0; i < AIK_SHA256_LEN; i++) {
        int hi = hexval(hexs[2 * i]), lo = hexval(hexs[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(out, tmp, sizeof(tmp));
    return 0;
}
