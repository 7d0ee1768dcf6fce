/* SPDX-License-Identifier: MIT */
/*
 * aikctl keygen [--out PREFIX] [--force]: a new Ed25519 signing key.
 * Writes PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (PEM), prints the
 * key id (SHA-256 of the raw public key) that manifests name as "signer".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/digest.h"
#include "loader/module.h"
#include "tools/aikctl/aikctl.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: aikctl keygen [--out PREFIX] [--force]\n"
               "  writes PREFIX.key (private, 0600) and PREFIX.pub; PREFIX defaults to 'aik-signing'\n"
               "  install PREFIX.pub in a trust store under keys/{root,publisher,evolution}/\n");
}

int aikctl_cmd_keygen(int argc, char **argv)
{
    const char *prefix = "aik-signing";
    bool force = false;
    char *priv = NULL, *pub = NULL;
    aik_signing_key *k = NULL;
    uint8_t raw[32], id[32];
    char hex[AIK_SHA256_HEX_LEN];
    aik_error err;
    int r, rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            prefix = argv[++i];
        else if (strcmp(argv[i], "--force") == 0)
            force = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (asprintf(&priv, "%s.key", prefix) < 0 || asprintf(&pub, "%s.pub", prefix) < 0) {
        aikctl_print_errno("keygen", -ENOMEM);
        return 1;
    }
    if (!force && access(priv, F_OK) == 0) {
        fprintf(stderr, "aikctl: keygen: %s exists (use --force to replace it)\n", priv);
        goto out;
    }
    r = aik_signing_key_generate(&k);
    if (r < 0) {
        aikctl_print_errno("keygen", r);
        goto out;
    }
    aik_error_clear(&err);
    r = aik_signing_key_save(k, priv, pub, &err);
    if (r < 0) {
        aikctl_print_error("keygen", &err);
        goto out;
    }
    if (aik_signing_key_public(k, raw) < 0 || aik_key_id(raw, id) < 0) {
        aikctl_print_errno("keygen", -EIO);
        goto out;
    }
    aik_sha256_hex(id, hex);
    printf("private key: %s\npublic key:  %s\nkey id:      %s\n", priv, pub, hex);
    rc = 0;
out:
    aik_signing_key_free(k);
    free(priv);
    free(pub);
    return rc;
}
