/* SPDX-License-Identifier: MIT */
/*
 * Ed25519 through OpenSSL EVP (one-shot EVP_DigestSign/Verify with a NULL
 * digest, as Ed25519 requires), keys as raw 32-byte values or PEM files, and
 * the signature stage of module loading.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "loader/internal.h"

struct aik_signing_key {
    EVP_PKEY *pkey;
};

uint64_t aik_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int aik_ed25519_verify(const uint8_t pub[AIK_ED25519_KEY_LEN], const void *msg, size_t len,
                       const uint8_t sig[AIK_ED25519_SIG_LEN])
{
    EVP_PKEY *pkey;
    EVP_MD_CTX *ctx;
    int r, ok;

    if (!pub || !sig || (!msg && len))
        return -EINVAL;
    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, AIK_ED25519_KEY_LEN);
    if (!pkey)
        return -EINVAL;
    ctx = EVP_MD_CTX_new();
    if (!ctx) {
        EVP_PKEY_free(pkey);
        return -ENOMEM;
    }
    if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1) {
        r = -EIO;
        goto out;
    }
    /* OpenSSL wants a non-NULL pointer even for an empty message. */
    ok = EVP_DigestVerify(ctx, sig, AIK_ED25519_SIG_LEN, msg ? msg : (const void *)"", len);
    r = ok == 1 ? 0 : -EBADMSG;
out:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return r;
}

int aik_key_id(const uint8_t pub[AIK_ED25519_KEY_LEN], uint8_t ret_id[32])
{
    return aik_sha256_buf(pub, AIK_ED25519_KEY_LEN, ret_id);
}

static int wrap(EVP_PKEY *pkey, aik_signing_key **ret_key)
{
    aik_signing_key *k;

    if (!pkey)
        return -EIO;
    k = calloc(1, sizeof(*k));
    if (!k) {
        EVP_PKEY_free(pkey);
        return -ENOMEM;
    }
    k->pkey = pkey;
    *ret_key = k;
    return 0;
}

int aik_signing_key_generate(aik_signing_key **ret_key)
{
    if (!ret_key)
        return -EINVAL;
    return wrap(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), ret_key);
}

int aik_signing_key_from_seed(const uint8_t seed[32], aik_signing_key **ret_key)
{
    if (!seed || !ret_key)
        return -EINVAL;
    return wrap(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32), ret_key);
}

int aik_signing_key_load(const char *path, aik_signing_key **ret_key, aik_error *err)
{
    char *pem = NULL;
    size_t len;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    int r;

    if (!path || !ret_key)
        return -EINVAL;
    r = aik_read_file(path, 64 * 1024, &pem, &len);
    if (r < 0)
        return aik_fail(err, r, path, "cannot read private key: %s", strerror(-r));
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        r = -ENOMEM;
        goto out;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (!pkey) {
        r = aik_fail(err, -EINVAL, path, "not a PEM private key");
        goto out;
    }
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
        r = aik_fail(err, -EINVAL, path, "not an Ed25519 key");
        goto out;
    }
    r = wrap(pkey, ret_key);
    pkey = NULL;
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    if (pem)
        OPENSSL_cleanse(pem, len);
    free(pem);
    return r;
}

/* PEM-encode through a memory BIO; which selects private or public. */
static int pem_encode(EVP_PKEY *pkey, bool priv, char **ret, size_t *ret_len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p;
    long n;
    int ok;

    if (!bio)
        return -ENOMEM;
    ok = priv ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_PUBKEY(bio, pkey);
    n = BIO_get_mem_data(bio, &p);
    if (ok != 1 || n <= 0) {
        BIO_free(bio);
        return -EIO;
    }
    *ret = malloc((size_t)n);
    if (!*ret) {
        BIO_free(bio);
        return -ENOMEM;
    }
    memcpy(*ret, p, (size_t)n);
    *ret_len = (size_t)n;
    BIO_free(bio);
    return 0;
}

int aik_signing_key_save(const aik_signing_key *key, const char *priv_path, const char *pub_path,
                         aik_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    int r;

    if (!key || !priv_path || !pub_path)
        return -EINVAL;
    r = pem_encode(key->pkey, true, &buf, &len);
    if (r < 0)
        return aik_fail(err, r, priv_path, "cannot encode private key");
    /* 0600 from creation (the temp file is created with this mode), never
     * briefly world-readable. */
    r = aik_write_file_atomic(priv_path, buf, len, 0600);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (r < 0)
        return aik_fail(err, r, priv_path, "cannot write: %s", strerror(-r));
    r = pem_encode(key->pkey, false, &buf, &len);
    if (r < 0)
        return aik_fail(err, r, pub_path, "cannot encode public key");
    r = aik_write_file_atomic(pub_path, buf, len, 0644);
    free(buf);
    if (r < 0)
        return aik_fail(err, r, pub_path, "cannot write: %s", strerror(-r));
    return 0;
}

int aik_signing_key_public(const aik_signing_key *key, uint8_t ret_pub[AIK_ED25519_KEY_LEN])
{
    uint8_t pub[AIK_ED25519_KEY_LEN];
    size_t n = sizeof(pub);

    if (!key || !ret_pub)
        return -EINVAL;
    if (EVP_PKEY_get_raw_public_key(key->pkey, pub, &n) != 1 || n != sizeof(pub))
        return -EIO;
    memcpy(ret_pub, pub, sizeof(pub));
    return 0;
}

int aik_signing_key_sign(const aik_signing_key *key, const void *msg, size_t len,
                         uint8_t ret_sig[AIK_ED25519_SIG_LEN])
{
    EVP_MD_CTX *ctx;
    uint8_t sig[AIK_ED25519_SIG_LEN];
    size_t n = sizeof(sig);
    int r = 0;

    if (!key || !ret_sig || (!msg && len))
        return -EINVAL;
    ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -ENOMEM;
    if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &n, msg ? msg : (const void *)"", len) != 1 || n != sizeof(sig))
        r = -EIO;
    EVP_MD_CTX_free(ctx);
    if (r == 0)
        memcpy(ret_sig, sig, sizeof(sig));
    return r;
}

void aik_signing_key_free(aik_signing_key *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

int aik_public_key_load(const char *path, uint8_t ret_pub[AIK_ED25519_KEY_LEN], aik_error *err)
{
    char *pem = NULL;
    size_t len, n = AIK_ED25519_KEY_LEN;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    uint8_t pub[AIK_ED25519_KEY_LEN];
    int r;

    if (!path || !ret_pub)
        return -EINVAL;
    r = aik_read_file(path, 64 * 1024, &pem, &len);
    if (r < 0)
        return aik_fail(err, r, path, "cannot read public key: %s", strerror(-r));
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        r = -ENOMEM;
        goto out;
    }
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (!pkey) {
        r = aik_fail(err, -EINVAL, path, "not a PEM public key");
        goto out;
    }
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519 ||
        EVP_PKEY_get_raw_public_key(pkey, pub, &n) != 1 || n != sizeof(pub)) {
        r = aik_fail(err, -EINVAL, path, "not an Ed25519 public key");
        goto out;
    }
    memcpy(ret_pub, pub, sizeof(pub));
    r = 0;
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    free(pem);
    return r;
}

int aik_verify_manifest_signature(const aik_trust *t, const aik_manifest *m, const void *bytes,
                                  size_t len, const uint8_t sig[AIK_ED25519_SIG_LEN],
                                  aik_key_role *ret_role, aik_error *err)
{
    char hex[AIK_SHA256_HEX_LEN];
    uint8_t pub[AIK_ED25519_KEY_LEN];
    aik_key_role role;
    int r;

    aik_sha256_hex(m->signer, hex);
    r = aik_trust_find(t, m->signer, &role, pub);
    if (r == -EKEYREVOKED)
        return aik_fail(err, r, "signer", "key %.16s… is revoked", hex);
    if (r < 0)
        return aik_fail(err, -ENOKEY, "signer", "module with unavailable key %.16s… (not in the trust store)", hex);
    r = aik_ed25519_verify(pub, bytes, len, sig);
    if (r == -EBADMSG)
        return aik_fail(err, r, "signature", "Ed25519 signature does not verify with key %.16s…", hex);
    if (r < 0)
        return aik_fail(err, r, "signature", "cannot verify: %s", strerror(-r));
    /* Role rule: evolution keys may only sign what was derived from a
     * verified parent; original artifacts need a root or publisher key. */
    if (m->n_parents > 0 && role != AIK_KEY_ROLE_EVOLUTION)
        return aik_fail(err, -EPERM, "signer",
                        "derived artifact (has parents) signed by a %s key; derived artifacts need an evolution key",
                        aik_key_role_name(role));
    if (m->n_parents == 0 && role == AIK_KEY_ROLE_EVOLUTION)
        return aik_fail(err, -EPERM, "signer",
                        "original artifact (no parents) signed by an evolution key; needs a root or publisher key");
    if (ret_role)
        *ret_role = role;
    return 0;
}

int aik_load_signature(struct load_info *li, aik_error *err)
{
    if (!li->is_signed) {
        if (li->opts.flags & AIK_LOAD_DEVELOPER) {
            li->warnings |= AIK_MODULE_WARN_UNSIGNED;
            snprintf(li->warning_text, sizeof(li->warning_text),
                     "UNSIGNED MODULE '%s' loaded in developer mode: its code and data are not authenticated",
                     li->man.name);
            return 0;
        }
        return aik_fail(err, -ENOKEY, "manifest.sig",
                        "unsigned module (no manifest.sig); enforcing mode refuses it (developer mode accepts it)");
    }
    return aik_verify_manifest_signature(li->opts.trust, &li->man, li->manifest_bytes, li->manifest_len,
                                         li->sig, &li->signer_role, err);
}

int aik_manifest_sign_write(const char *dir, aik_manifest *m, const aik_signing_key *key, uint8_t ret_digest[32],
                            char **ret_json, size_t *ret_len, uint8_t ret_sig[64], aik_error *err)
{
    uint8_t pub[AIK_ED25519_KEY_LEN], sig[AIK_ED25519_SIG_LEN], digest[32];
    aik_manifest *check = NULL;
    char *json = NULL, *path = NULL;
    size_t len = 0;
    int r;

    if (!dir || !m || !key)
        return aik_fail(err, -EINVAL, "sign", "missing argument");
    if ((r = aik_signing_key_public(key, pub)) < 0 || (r = aik_key_id(pub, m->signer)) < 0)
        return aik_fail(err, r, "sign", "cannot derive the key id");
    m->format = AIK_MANIFEST_FORMAT;
    r = aik_manifest_write(m, &json, &len, err);
    if (r < 0)
        return r;
    check = malloc(sizeof(*check));
    if (!check) {
        r = aik_fail(err, -ENOMEM, "sign", "out of memory");
        goto out;
    }
    r = aik_manifest_parse(json, len, check, err);
    if (r < 0)
        goto out;
    r = aik_signing_key_sign(key, json, len, sig);
    if (r < 0) {
        aik_fail(err, r, "sign", "signing failed");
        goto out;
    }
    if (asprintf(&path, "%s/manifest.json", dir) < 0) {
        path = NULL;
        r = aik_fail(err, -ENOMEM, "sign", "out of memory");
        goto out;
    }
    r = aik_write_file_atomic(path, json, len, 0644);
    if (r == 0) {
        free(path);
        path = NULL;
        if (asprintf(&path, "%s/manifest.sig", dir) < 0) {
            path = NULL;
            r = -ENOMEM;
        } else {
            r = aik_write_file_atomic(path, sig, sizeof(sig), 0644);
        }
    }
    if (r < 0) {
        aik_fail(err, r, path ? path : dir, "cannot write the signed manifest");
        goto out;
    }
    aik_sha256_buf(json, len, digest);
    if (ret_digest)
        memcpy(ret_digest, digest, 32);
    if (ret_sig)
        memcpy(ret_sig, sig, sizeof(sig));
    if (ret_json && ret_len) {
        *ret_json = json;
        *ret_len = len;
        json = NULL;
    }
out:
    free(check);
    free(path);
    free(json);
    return r;
}
