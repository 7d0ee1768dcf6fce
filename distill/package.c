/* SPDX-License-Identifier: MIT */
/* A capability adapter as a signed derived module (distill/package.h). */
#include "distill/package.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capgraph/profile.h"
#include "common/atomic_file.h"
#include "common/digest.h"
#include "common/error.h"
#include "loader/adapter.h"
#include "runtime/eval.h"

#define PROFILE_MAX (1u << 20)
#define OBJECT_MAX (256u << 20)

static size_t indent_of(const char *line, size_t len)
{
    size_t n = 0;
    while (n < len && line[n] == ' ')
        n++;
    return n;
}

static bool blank_or_comment(const char *line, size_t len)
{
    size_t i = indent_of(line, len);
    return i == len || line[i] == '#';
}

/* The profile is edited as text, not re-emitted from a YAML tree, so the
 * author's comments and layout survive; the strict parser then checks that
 * the edit means exactly what it should. */
int aik_profile_with_adapter(const char *text, size_t len, const char *file, const uint8_t sha256[32],
                             char **ret_text, size_t *ret_len, aik_error *err)
{
    size_t starts[8192], n_lines = 0, pos = 0;
    size_t mod = SIZE_MAX, end, child = 0, drop_from = SIZE_MAX, drop_to = SIZE_MAX, insert_at;
    aik_profile *before = NULL, *after = NULL;
    char hex[AIK_SHA256_HEX_LEN], *out = NULL;
    size_t out_len = 0;
    int r;

    if (!text || !file || !sha256 || !ret_text || !ret_len)
        return aik_fail(err, -EINVAL, "profile", "missing argument");
    r = aik_profile_parse("profile", text, len, &before, err);
    if (r < 0)
        return r;
    if (before->kind != AIK_MODULE_CAPABILITY) {
        r = aik_fail(err, -EINVAL, "module.kind", "only capability modules carry an adapter");
        goto out;
    }
    while (pos < len) {
        if (n_lines == sizeof(starts) / sizeof(starts[0])) {
            r = aik_fail(err, -E2BIG, "profile", "more than %zu lines", n_lines);
            goto out;
        }
        starts[n_lines++] = pos;
        const char *nl = memchr(text + pos, '\n', len - pos);
        pos = nl ? (size_t)(nl - text) + 1 : len;
    }
#define LINE(i) (text + starts[i])
#define LINE_LEN(i) (((i) + 1 < n_lines ? starts[(i) + 1] : len) - starts[i])
    for (size_t i = 0; i < n_lines && mod == SIZE_MAX; i++)
        if (LINE_LEN(i) >= 7 && memcmp(LINE(i), "module:", 7) == 0 && blank_or_comment(LINE(i) + 7, LINE_LEN(i) - 7 - (LINE(i)[LINE_LEN(i) - 1] == '\n')))
            mod = i;
    if (mod == SIZE_MAX) {
        r = aik_fail(err, -EINVAL, "module", "the profile's module mapping must be written in block style");
        goto out;
    }
    /* The block: following lines that are indented, blank or comments. */
    end = mod + 1;
    while (end < n_lines && (LINE(end)[0] == ' ' || blank_or_comment(LINE(end), LINE_LEN(end))))
        end++;
    for (size_t i = mod + 1; i < end; i++)
        if (!blank_or_comment(LINE(i), LINE_LEN(i))) {
            child = indent_of(LINE(i), LINE_LEN(i));
            break;
        }
    if (child == 0) {
        r = aik_fail(err, -EINVAL, "module", "empty module mapping");
        goto out;
    }
    /* An existing adapter entry (a re-distilled capability) is replaced. */
    for (size_t i = mod + 1; i < end; i++) {
        if (indent_of(LINE(i), LINE_LEN(i)) == child && LINE_LEN(i) >= child + 8 &&
            memcmp(LINE(i) + child, "adapter:", 8) == 0) {
            drop_from = i;
            drop_to = i + 1;
            while (drop_to < end && (blank_or_comment(LINE(drop_to), LINE_LEN(drop_to)) ||
                                     indent_of(LINE(drop_to), LINE_LEN(drop_to)) > child))
                drop_to++;
        }
    }
    insert_at = end;
    while (insert_at > mod + 1 && blank_or_comment(LINE(insert_at - 1), LINE_LEN(insert_at - 1)))
        insert_at--;
    aik_sha256_hex(sha256, hex);
    /* the original, a newline, and "adapter:", "file:", "sha256:" lines at
     * indents child, 2·child, 2·child: 5·child + the file name + 90 bytes */
    out = malloc(len + 1 + 5 * child + strlen(file) + 96);
    if (!out) {
        r = aik_fail(err, -ENOMEM, "profile", "out of memory");
        goto out;
    }
    for (size_t i = 0; i <= n_lines; i++) {
        if (i == insert_at) {
            if (out_len && out[out_len - 1] != '\n')
                out[out_len++] = '\n';
            out_len += (size_t)sprintf(out + out_len, "%*sadapter:\n%*sfile: %s\n%*ssha256: %s\n", (int)child, "",
                                       (int)(2 * child), "", file, (int)(2 * child), "", hex);
        }
        if (i == n_lines)
            break;
        if (i >= drop_from && i < drop_to)
            continue;
        memcpy(out + out_len, LINE(i), LINE_LEN(i));
        out_len += LINE_LEN(i);
    }
#undef LINE
#undef LINE_LEN
    out[out_len] = '\0';
    r = aik_profile_parse("profile (with adapter)", out, out_len, &after, err);
    if (r < 0)
        goto out;
    if (!after->has_adapter || strcmp(after->adapter.file, file) != 0 || !after->adapter.has_sha256 ||
        memcmp(after->adapter.sha256, sha256, 32) != 0 || strcmp(after->name, before->name) != 0 ||
        aik_semver_cmp(&after->version, &before->version) != 0 || after->n_provides != before->n_provides) {
        r = aik_fail(err, -EPROTO, "module.adapter", "the edited profile does not say what was meant");
        goto out;
    }
    *ret_text = out;
    *ret_len = out_len;
    out = NULL;
    r = 0;
out:
    free(out);
    aik_profile_free(before);
    aik_profile_free(after);
    return r;
}

static int copy_file(const char *from, const char *to, size_t max, aik_error *err)
{
    char *data = NULL;
    size_t len = 0;
    int r = aik_read_file(from, max, &data, &len);

    if (r < 0)
        return aik_fail(err, r, from, "cannot read");
    r = aik_write_file_atomic(to, data, len, 0644);
    free(data);
    if (r < 0)
        return aik_fail(err, r, to, "cannot write");
    return 0;
}

static int digest_path(const char *path, uint8_t out[32], aik_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int r = fd < 0 ? -errno : aik_sha256_fd(fd, out);
    if (fd >= 0)
        close(fd);
    return r < 0 ? aik_fail(err, r, path, "cannot hash") : 0;
}

static void remove_tree(const char *dir, const aik_manifest *m)
{
    const char *names[] = { "manifest.json", "manifest.sig", AIK_DISTILL_ADAPTER_FILE, AIK_DISTILL_SIDECAR_FILE,
                            "profile.yaml", m ? m->object.file : NULL };
    char *p;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i] && asprintf(&p, "%s/%s", dir, names[i]) >= 0) {
            unlink(p);
            free(p);
        }
    rmdir(dir);
}

int aik_adapter_module_build(const aik_adapter_module_spec *sp, uint8_t ret_digest[32], aik_error *err)
{
    aik_adapter *a = NULL;
    aik_manifest *src = NULL, *m = NULL;
    aik_eval_sidecar sc;
    char *mjson = NULL, *sjson = NULL, *ptext = NULL, *newprof = NULL, *tmp = NULL, *p = NULL, *q = NULL;
    size_t mlen = 0, slen = 0, plen = 0, nplen = 0, json_len = 0;
    uint8_t adapter_digest[32], digest[32], sig[64], model_digest[32];
    char *json = NULL;
    bool made_tmp = false;
    int r;

    if (!sp || !sp->source_dir || !sp->source_digest || !sp->base_digest || !sp->base_pkg || !sp->adapter_path ||
        !sp->sidecar_path || !sp->cases_digest || !sp->key || !sp->out_dir || sp->n_data >= AIK_MANIFEST_MAX_DATA)
        return aik_fail(err, -EINVAL, "adapter module", "missing argument");
    /* 1. The adapter fits the base (the seed's validate_adapter_against_model). */
    r = aik_adapter_load(sp->adapter_path, &a, adapter_digest, err);
    if (r < 0)
        goto out;
    if (a->kind != AIK_ADAPTER_LOWRANK) {
        r = aik_fail(err, -ENOTSUP, sp->adapter_path, "only ALR1 adapters are served unmerged");
        goto out;
    }
    r = aik_adapter_validate(a, sp->base_pkg, err);
    if (r < 0)
        goto out;
    /* 2. The sidecar names exactly these artifacts and passed. */
    r = aik_read_file(sp->sidecar_path, AIK_EVAL_MAX_SIDECAR_SIZE, &sjson, &slen);
    if (r < 0) {
        aik_fail(err, r, sp->sidecar_path, "cannot read the eval sidecar");
        goto out;
    }
    r = aik_eval_sidecar_parse(sjson, slen, &sc, err);
    if (r == 0) {
        memcpy(model_digest, sp->base_pkg->hdr.model_checksum, 32);
        r = aik_eval_sidecar_check(&sc, model_digest, adapter_digest, sp->cases_digest, sp->min_pass_rate, err);
    }
    if (r < 0) {
        aik_error_prefix(err, sp->sidecar_path);
        goto out;
    }
    if (!sc.pass) {
        r = aik_fail(err, -EPERM, sp->sidecar_path, "the evaluation decided \"fail\" (%llu passed, %llu failed)",
                     (unsigned long long)sc.cases_passed, (unsigned long long)sc.cases_failed);
        goto out;
    }
    /* 3. The source module: its manifest names the object and profile. */
    m = calloc(1, sizeof(*m));
    src = calloc(1, sizeof(*src));
    if (!m || !src) {
        r = aik_fail(err, -ENOMEM, "adapter module", "out of memory");
        goto out;
    }
    if (asprintf(&p, "%s/manifest.json", sp->source_dir) < 0) {
        p = NULL;
        r = -ENOMEM;
        goto out;
    }
    r = aik_read_file(p, AIK_MANIFEST_MAX_SIZE, &mjson, &mlen);
    if (r < 0) {
        aik_fail(err, r, p, "cannot read the source module's manifest");
        goto out;
    }
    aik_sha256_buf(mjson, mlen, digest);
    if (memcmp(digest, sp->source_digest, 32) != 0) {
        r = aik_fail(err, -EBADMSG, p, "is not the verified source manifest (it changed)");
        goto out;
    }
    r = aik_manifest_parse(mjson, mlen, src, err);
    if (r < 0)
        goto out;
    if (src->kind != AIK_MODULE_CAPABILITY || !src->has_profile) {
        r = aik_fail(err, -EINVAL, sp->source_dir, "is not a capability module with a profile");
        goto out;
    }
    free(p);
    if (asprintf(&p, "%s/%s", sp->source_dir, src->profile.file) < 0) {
        p = NULL;
        r = -ENOMEM;
        goto out;
    }
    r = aik_read_file(p, PROFILE_MAX, &ptext, &plen);
    if (r < 0) {
        aik_fail(err, r, p, "cannot read the source profile");
        goto out;
    }
    aik_sha256_buf(ptext, plen, digest);
    if (memcmp(digest, src->profile.sha256, 32) != 0) {
        r = aik_fail(err, -EBADMSG, p, "does not match the source manifest");
        goto out;
    }
    r = aik_profile_with_adapter(ptext, plen, AIK_DISTILL_ADAPTER_FILE, adapter_digest, &newprof, &nplen, err);
    if (r < 0)
        goto out;
    /* 4. Assemble in a temporary directory, then rename: all or nothing. */
    if (access(sp->out_dir, F_OK) == 0) {
        r = aik_fail(err, -EEXIST, sp->out_dir, "already exists");
        goto out;
    }
    if (asprintf(&tmp, "%s.tmp", sp->out_dir) < 0) {
        tmp = NULL;
        r = -ENOMEM;
        goto out;
    }
    remove_tree(tmp, src);
    if (mkdir(tmp, 0755) < 0) {
        r = aik_fail(err, -errno, tmp, "cannot create");
        goto out;
    }
    made_tmp = true;
    free(p);
    free(q);
    q = NULL;
    if (asprintf(&p, "%s/%s", sp->source_dir, src->object.file) < 0 ||
        asprintf(&q, "%s/%s", tmp, src->object.file) < 0) {
        r = -ENOMEM;
        goto out;
    }
    r = copy_file(p, q, OBJECT_MAX, err);
    if (r < 0)
        goto out;
    r = digest_path(q, digest, err);
    if (r < 0)
        goto out;
    if (memcmp(digest, src->object.sha256, 32) != 0) {
        r = aik_fail(err, -EBADMSG, p, "does not match the source manifest");
        goto out;
    }
    free(q);
    if (asprintf(&q, "%s/%s", tmp, AIK_DISTILL_ADAPTER_FILE) < 0) {
        q = NULL;
        r = -ENOMEM;
        goto out;
    }
    if ((r = copy_file(sp->adapter_path, q, (size_t)AIK_ADAPTER_MAX_FILE_SIZE, err)) < 0)
        goto out;
    /* The copy must be the adapter that was validated and evaluated. */
    if ((r = digest_path(q, digest, err)) < 0)
        goto out;
    if (memcmp(digest, adapter_digest, 32) != 0) {
        r = aik_fail(err, -EBADMSG, sp->adapter_path, "changed while it was packaged");
        goto out;
    }
    free(q);
    if (asprintf(&q, "%s/%s", tmp, AIK_DISTILL_SIDECAR_FILE) < 0) {
        q = NULL;
        r = -ENOMEM;
        goto out;
    }
    if ((r = aik_write_file_atomic(q, sjson, slen, 0644)) < 0) {
        aik_fail(err, r, q, "cannot write");
        goto out;
    }
    free(q);
    if (asprintf(&q, "%s/profile.yaml", tmp) < 0) {
        q = NULL;
        r = -ENOMEM;
        goto out;
    }
    if ((r = aik_write_file_atomic(q, newprof, nplen, 0644)) < 0) {
        aik_fail(err, r, q, "cannot write");
        goto out;
    }
    /* 5. The derived manifest: same identity, new files, lineage. */
    snprintf(m->name, sizeof(m->name), "%s", src->name);
    snprintf(m->version, sizeof(m->version), "%s", src->version);
    m->semver = src->semver;
    m->kind = src->kind;
    m->object = src->object;
    m->n_payloads = 2;
    snprintf(m->payloads[0].file, sizeof(m->payloads[0].file), "%s", AIK_DISTILL_ADAPTER_FILE);
    memcpy(m->payloads[0].sha256, adapter_digest, 32);
    snprintf(m->payloads[1].file, sizeof(m->payloads[1].file), "%s", AIK_DISTILL_SIDECAR_FILE);
    aik_sha256_buf(sjson, slen, m->payloads[1].sha256);
    m->has_profile = true;
    snprintf(m->profile.file, sizeof(m->profile.file), "profile.yaml");
    aik_sha256_buf(newprof, nplen, m->profile.sha256);
    m->n_parents = 2;
    memcpy(m->parents[0], sp->source_digest, 32);
    memcpy(m->parents[1], sp->base_digest, 32);
    for (size_t i = 0; i < sp->n_data; i++) {
        snprintf(m->data[i].role, sizeof(m->data[i].role), "%s", sp->data[i].role);
        memcpy(m->data[i].sha256, sp->data[i].sha256, 32);
    }
    snprintf(m->data[sp->n_data].role, sizeof(m->data[0].role), "eval-cases");
    memcpy(m->data[sp->n_data].sha256, sp->cases_digest, 32);
    m->n_data = (uint32_t)sp->n_data + 1;
    r = aik_manifest_sign_write(tmp, m, sp->key, digest, &json, &json_len, sig, err);
    if (r < 0)
        goto out;
    if (sp->manifest_store) {
        r = aik_manifest_store_put(sp->manifest_store, json, json_len, sig, NULL, err);
        if (r < 0)
            goto out;
    }
    if (rename(tmp, sp->out_dir) < 0) {
        r = aik_fail(err, -errno, sp->out_dir, "cannot move the module into place");
        goto out;
    }
    made_tmp = false;
    if (ret_digest)
        memcpy(ret_digest, digest, 32);
    r = 0;
out:
    if (made_tmp)
        remove_tree(tmp, src);
    aik_adapter_free(a);
    free(m);
    free(src);
    free(mjson);
    free(sjson);
    free(ptext);
    free(newprof);
    free(tmp);
    free(p);
    free(q);
    free(json);
    return r;
}
