/* SPDX-License-Identifier: MIT */
/*
 * manifest.json: strict JSON (jansson) with a fixed schema. Everything in it
 * is untrusted until the signature over its exact bytes has verified, and
 * even then it is only data: every value is checked here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/digest.h"
#include "common/error.h"
#include "loader/internal.h"

static const char *const kind_names[] = {
    [AIK_MODULE_ARCHITECTURE] = "architecture",
    [AIK_MODULE_CAPABILITY] = "capability",
    [AIK_MODULE_TOKENIZER] = "tokenizer",
    [AIK_MODULE_BACKEND] = "backend",
};

const char *aik_module_kind_label(uint32_t kind)
{
    if (kind < sizeof(kind_names) / sizeof(kind_names[0]) && kind_names[kind])
        return kind_names[kind];
    return "?";
}

int aik_module_kind_parse(const char *name, uint32_t *ret_kind)
{
    if (!name)
        return -EINVAL;
    for (uint32_t k = 0; k < sizeof(kind_names) / sizeof(kind_names[0]); k++)
        if (kind_names[k] && strcmp(kind_names[k], name) == 0) {
            *ret_kind = k;
            return 0;
        }
    return -EINVAL;
}

int aik_modver_parse(const char *s, aik_modver *ret_v)
{
    uint32_t part[3] = { 0, 0, 0 };
    const char *p = s;

    if (!s)
        return -EINVAL;
    for (int i = 0; i < 3; i++) {
        uint64_t v = 0;
        const char *start = p;

        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (uint64_t)(*p - '0');
            if (v > UINT32_MAX)
                return -EINVAL;
            p++;
        }
        /* no empty parts, no leading zeros (semver 2.0.0 §2) */
        if (p == start || (p - start > 1 && *start == '0'))
            return -EINVAL;
        part[i] = (uint32_t)v;
        if (i < 2) {
            if (*p != '.')
                return -EINVAL;
            p++;
        }
    }
    if (*p != '\0') /* pre-release / build metadata are not used by AIKernel */
        return -EINVAL;
    ret_v->major = part[0];
    ret_v->minor = part[1];
    ret_v->patch = part[2];
    return 0;
}

int aik_modver_cmp(const aik_modver *a, const aik_modver *b)
{
    if (a->major != b->major)
        return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->patch != b->patch)
        return a->patch < b->patch ? -1 : 1;
    return 0;
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static bool valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);

    /* A leading '.' would allow "." and ".." (and hidden files). */
    if (n == 0 || n >= max || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return false;
    return true;
}

bool aik_valid_module_name(const char *s)
{
    return valid_name(s, AIK_MODULE_NAME_MAX);
}

bool aik_valid_file_name(const char *s)
{
    return valid_name(s, AIK_MANIFEST_FILE_MAX);
}

/* The string value of a JSON node, or a typed error naming the key. */
static int get_string(json_t *v, const char *where, const char **ret, aik_error *err)
{
    if (!json_is_string(v))
        return aik_fail(err, -EINVAL, where, "must be a string");
    *ret = json_string_value(v);
    return 0;
}

static int get_digest(json_t *v, const char *where, uint8_t out[32], aik_error *err)
{
    const char *s = NULL;
    int r = get_string(v, where, &s, err);

    if (r < 0 || !s)
        return r < 0 ? r : -EINVAL;
    /* Lower-case only so that one digest has exactly one spelling. */
    for (const char *p = s; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            return aik_fail(err, -EINVAL, where, "must be 64 lower-case hex digits");
    if (aik_sha256_from_hex(s, out) < 0)
        return aik_fail(err, -EINVAL, where, "must be 64 lower-case hex digits");
    return 0;
}

/* {"file": "...", "sha256": "..."} with nothing else. */
static int parse_file_ref(json_t *obj, const char *where, aik_manifest_file *out, aik_error *err)
{
    const char *key;
    json_t *val;
    bool have_file = false, have_hash = false;
    char sub[160];
    int r;

    if (!json_is_object(obj))
        return aik_fail(err, -EINVAL, where, "must be an object {file, sha256}");
    json_object_foreach(obj, key, val) {
        if (strcmp(key, "file") == 0) {
            const char *s = NULL;
            snprintf(sub, sizeof(sub), "%s.file", where);
            r = get_string(val, sub, &s, err);
            if (r < 0)
                return r;
            if (!aik_valid_file_name(s))
                return aik_fail(err, -EINVAL, sub,
                                "must be a plain file name of 1..127 characters [A-Za-z0-9._-], not starting with '.'");
            snprintf(out->file, sizeof(out->file), "%s", s);
            have_file = true;
        } else if (strcmp(key, "sha256") == 0) {
            snprintf(sub, sizeof(sub), "%s.sha256", where);
            r = get_digest(val, sub, out->sha256, err);
            if (r < 0)
                return r;
            have_hash = true;
        } else {
            snprintf(sub, sizeof(sub), "%s.%s", where, key);
            return aik_fail(err, -EINVAL, sub, "unknown key");
        }
    }
    if (!have_file)
        return aik_fail(err, -EINVAL, where, "missing key \"file\"");
    if (!have_hash)
        return aik_fail(err, -EINVAL, where, "missing key \"sha256\"");
    return 0;
}

enum {
    K_FORMAT = 1u << 0,
    K_NAME = 1u << 1,
    K_VERSION = 1u << 2,
    K_KIND = 1u << 3,
    K_OBJECT = 1u << 4,
    K_PAYLOADS = 1u << 5,
    K_PROFILE = 1u << 6,
    K_PARENTS = 1u << 7,
    K_SIGNER = 1u << 8,
    K_DATA = 1u << 9,
    K_REQUIRED = K_FORMAT | K_NAME | K_VERSION | K_KIND | K_OBJECT | K_SIGNER,
};

static bool valid_role(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= AIK_MANIFEST_ROLE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* "training_data": [ { "role": "trajectories", "sha256": "<hex>" }, ... ] */
static int parse_data(json_t *val, aik_manifest *m, aik_error *err)
{
    char where[160];
    size_t i;
    json_t *item;
    int r;

    if (!json_is_array(val))
        return aik_fail(err, -EINVAL, "training_data", "must be an array");
    if (json_array_size(val) > AIK_MANIFEST_MAX_DATA)
        return aik_fail(err, -E2BIG, "training_data", "has %zu entries, at most %d allowed", json_array_size(val),
                        AIK_MANIFEST_MAX_DATA);
    json_array_foreach(val, i, item) {
        const char *k, *role = NULL;
        json_t *v;
        bool have_hash = false;

        snprintf(where, sizeof(where), "training_data[%zu]", i);
        if (!json_is_object(item))
            return aik_fail(err, -EINVAL, where, "must be an object {role, sha256}");
        json_object_foreach(item, k, v) {
            if (strcmp(k, "role") == 0) {
                snprintf(where, sizeof(where), "training_data[%zu].role", i);
                r = get_string(v, where, &role, err);
                if (r < 0)
                    return r;
                if (!valid_role(role))
                    return aik_fail(err, -EINVAL, where, "must be 1..31 characters [a-z0-9-]");
                snprintf(m->data[i].role, sizeof(m->data[i].role), "%s", role);
            } else if (strcmp(k, "sha256") == 0) {
                snprintf(where, sizeof(where), "training_data[%zu].sha256", i);
                r = get_digest(v, where, m->data[i].sha256, err);
                if (r < 0)
                    return r;
                have_hash = true;
            } else {
                snprintf(where, sizeof(where), "training_data[%zu].%.40s", i, k);
                return aik_fail(err, -EINVAL, where, "unknown key");
            }
        }
        snprintf(where, sizeof(where), "training_data[%zu]", i);
        if (!role)
            return aik_fail(err, -EINVAL, where, "missing key \"role\"");
        if (!have_hash)
            return aik_fail(err, -EINVAL, where, "missing key \"sha256\"");
    }
    m->n_data = (uint32_t)json_array_size(val);
    return 0;
}

static int parse_root(json_t *root, aik_manifest *m, aik_error *err)
{
    const char *key;
    json_t *val;
    unsigned seen = 0;
    char where[160];
    int r;

    if (!json_is_object(root))
        return aik_fail(err, -EINVAL, "manifest", "top level must be an object");
    json_object_foreach(root, key, val) {
        const char *s = NULL;

        if (strcmp(key, "format") == 0) {
            if (!json_is_integer(val))
                return aik_fail(err, -EINVAL, "format", "must be an integer");
            if (json_integer_value(val) != AIK_MANIFEST_FORMAT)
                return aik_fail(err, -EPROTONOSUPPORT, "format", "is %lld, this loader reads format %d",
                                (long long)json_integer_value(val), AIK_MANIFEST_FORMAT);
            m->format = AIK_MANIFEST_FORMAT;
            seen |= K_FORMAT;
        } else if (strcmp(key, "name") == 0) {
            r = get_string(val, "name", &s, err);
            if (r < 0)
                return r;
            if (!aik_valid_module_name(s))
                return aik_fail(err, -EINVAL, "name", "must be 1..63 characters [A-Za-z0-9._-], not starting with '.'");
            snprintf(m->name, sizeof(m->name), "%s", s);
            seen |= K_NAME;
        } else if (strcmp(key, "version") == 0) {
            r = get_string(val, "version", &s, err);
            if (r < 0)
                return r;
            if (strlen(s) >= AIK_MODULE_VERSION_MAX || aik_modver_parse(s, &m->semver) < 0)
                return aik_fail(err, -EINVAL, "version", "must be MAJOR.MINOR.PATCH (decimal, no leading zeros)");
            snprintf(m->version, sizeof(m->version), "%s", s);
            seen |= K_VERSION;
        } else if (strcmp(key, "kind") == 0) {
            r = get_string(val, "kind", &s, err);
            if (r < 0)
                return r;
            if (aik_module_kind_parse(s, &m->kind) < 0)
                return aik_fail(err, -EINVAL, "kind", "unknown kind \"%.40s\" (architecture, capability, tokenizer, backend)", s);
            seen |= K_KIND;
        } else if (strcmp(key, "object") == 0) {
            r = parse_file_ref(val, "object", &m->object, err);
            if (r < 0)
                return r;
            seen |= K_OBJECT;
        } else if (strcmp(key, "payloads") == 0) {
            size_t i;
            json_t *item;

            if (!json_is_array(val))
                return aik_fail(err, -EINVAL, "payloads", "must be an array");
            if (json_array_size(val) > AIK_MANIFEST_MAX_PAYLOADS)
                return aik_fail(err, -E2BIG, "payloads", "has %zu entries, at most %d allowed",
                                json_array_size(val), AIK_MANIFEST_MAX_PAYLOADS);
            json_array_foreach(val, i, item) {
                snprintf(where, sizeof(where), "payloads[%zu]", i);
                r = parse_file_ref(item, where, &m->payloads[i], err);
                if (r < 0)
                    return r;
            }
            m->n_payloads = (uint32_t)json_array_size(val);
            seen |= K_PAYLOADS;
        } else if (strcmp(key, "profile") == 0) {
            r = parse_file_ref(val, "profile", &m->profile, err);
            if (r < 0)
                return r;
            m->has_profile = true;
            seen |= K_PROFILE;
        } else if (strcmp(key, "parents") == 0) {
            size_t i;
            json_t *item;

            if (!json_is_array(val))
                return aik_fail(err, -EINVAL, "parents", "must be an array");
            if (json_array_size(val) > AIK_MANIFEST_MAX_PARENTS)
                return aik_fail(err, -E2BIG, "parents", "has %zu entries, at most %d allowed",
                                json_array_size(val), AIK_MANIFEST_MAX_PARENTS);
            json_array_foreach(val, i, item) {
                snprintf(where, sizeof(where), "parents[%zu]", i);
                r = get_digest(item, where, m->parents[i], err);
                if (r < 0)
                    return r;
                for (size_t j = 0; j < i; j++)
                    if (memcmp(m->parents[j], m->parents[i], 32) == 0)
                        return aik_fail(err, -EINVAL, where, "duplicate of parents[%zu]", j);
            }
            m->n_parents = (uint32_t)json_array_size(val);
            seen |= K_PARENTS;
        } else if (strcmp(key, "training_data") == 0) {
            r = parse_data(val, m, err);
            if (r < 0)
                return r;
            seen |= K_DATA;
        } else if (strcmp(key, "signer") == 0) {
            r = get_digest(val, "signer", m->signer, err);
            if (r < 0)
                return r;
            seen |= K_SIGNER;
        } else {
            char k[64];
            snprintf(k, sizeof(k), "%.60s", key);
            return aik_fail(err, -EINVAL, k, "unknown key");
        }
    }
    if ((seen & K_REQUIRED) != K_REQUIRED) {
        static const struct { unsigned bit; const char *name; } req[] = {
            { K_FORMAT, "format" }, { K_NAME, "name" }, { K_VERSION, "version" },
            { K_KIND, "kind" },     { K_OBJECT, "object" }, { K_SIGNER, "signer" },
        };
        for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++)
            if (!(seen & req[i].bit))
                return aik_fail(err, -EINVAL, req[i].name, "missing required key");
    }
    /* Each file is verified and opened once; two references to one name
     * would make "which digest applies" ambiguous. */
    for (uint32_t i = 0; i < m->n_payloads; i++) {
        snprintf(where, sizeof(where), "payloads[%u].file", i);
        if (strcmp(m->payloads[i].file, m->object.file) == 0 ||
            (m->has_profile && strcmp(m->payloads[i].file, m->profile.file) == 0))
            return aik_fail(err, -EINVAL, where, "names a file already used by another entry");
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(m->payloads[i].file, m->payloads[j].file) == 0)
                return aik_fail(err, -EINVAL, where, "duplicate of payloads[%u].file", j);
    }
    if (m->has_profile && strcmp(m->profile.file, m->object.file) == 0)
        return aik_fail(err, -EINVAL, "profile.file", "names the object file");
    if (strcmp(m->object.file, "manifest.json") == 0 || strcmp(m->object.file, "manifest.sig") == 0)
        return aik_fail(err, -EINVAL, "object.file", "must not name the manifest or its signature");
    return 0;
}

int aik_manifest_parse(const void *data, size_t len, aik_manifest *ret_m, aik_error *err)
{
    json_error_t jerr;
    json_t *root;
    aik_manifest *m;
    int r;

    if (!data && len)
        return aik_fail(err, -EINVAL, "manifest", "no data");
    if (!ret_m)
        return -EINVAL;
    if (len > AIK_MANIFEST_MAX_SIZE)
        return aik_fail(err, -EFBIG, "manifest", "is %zu bytes, limit %u", len, AIK_MANIFEST_MAX_SIZE);
    /* JSON_REJECT_DUPLICATES: a signed manifest must have one meaning.
     * The EOF check (default) rejects trailing bytes; embedded NULs in
     * strings are rejected because JSON_ALLOW_NUL is not given. */
    root = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char where[64];
        snprintf(where, sizeof(where), "manifest.json:%d:%d", jerr.line, jerr.column);
        return aik_fail(err, -EINVAL, where, "invalid JSON: %s", jerr.text);
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        json_decref(root);
        return -ENOMEM;
    }
    r = parse_root(root, m, err);
    json_decref(root);
    if (r == 0)
        *ret_m = *m;
    free(m);
    return r;
}

static json_t *file_ref(const aik_manifest_file *f)
{
    char hex[AIK_SHA256_HEX_LEN];

    aik_sha256_hex(f->sha256, hex);
    return json_pack("{s:s, s:s}", "file", f->file, "sha256", hex);
}

int aik_manifest_write(const aik_manifest *m, char **ret_data, size_t *ret_len, aik_error *err)
{
    char hex[AIK_SHA256_HEX_LEN];
    json_t *root = NULL, *arr;
    char *text = NULL, *out;
    size_t n;
    int r = -ENOMEM;

    if (!m || !ret_data || !ret_len)
        return -EINVAL;
    if (!aik_valid_module_name(m->name))
        return aik_fail(err, -EINVAL, "name", "invalid module name");
    if (aik_module_kind_label(m->kind)[0] == '?')
        return aik_fail(err, -EINVAL, "kind", "unknown kind %u", m->kind);
    if (m->n_payloads > AIK_MANIFEST_MAX_PAYLOADS || m->n_parents > AIK_MANIFEST_MAX_PARENTS ||
        m->n_data > AIK_MANIFEST_MAX_DATA)
        return aik_fail(err, -E2BIG, "manifest", "too many payloads, parents or data entries");
    for (uint32_t i = 0; i < m->n_data; i++)
        if (!valid_role(m->data[i].role))
            return aik_fail(err, -EINVAL, "training_data", "invalid role \"%.40s\"", m->data[i].role);

    root = json_object();
    if (!root)
        goto out;
    aik_sha256_hex(m->signer, hex);
    if (json_object_set_new(root, "format", json_integer(AIK_MANIFEST_FORMAT)) < 0 ||
        json_object_set_new(root, "name", json_string(m->name)) < 0 ||
        json_object_set_new(root, "version", json_string(m->version)) < 0 ||
        json_object_set_new(root, "kind", json_string(aik_module_kind_label(m->kind))) < 0 ||
        json_object_set_new(root, "object", file_ref(&m->object)) < 0)
        goto out;
    arr = json_array();
    if (!arr || json_object_set_new(root, "payloads", arr) < 0)
        goto out;
    for (uint32_t i = 0; i < m->n_payloads; i++)
        if (json_array_append_new(arr, file_ref(&m->payloads[i])) < 0)
            goto out;
    if (m->has_profile && json_object_set_new(root, "profile", file_ref(&m->profile)) < 0)
        goto out;
    arr = json_array();
    if (!arr || json_object_set_new(root, "parents", arr) < 0)
        goto out;
    for (uint32_t i = 0; i < m->n_parents; i++) {
        aik_sha256_hex(m->parents[i], hex);
        if (json_array_append_new(arr, json_string(hex)) < 0)
            goto out;
    }
    if (m->n_data) {
        /* Written only when present, so manifests without it keep their bytes. */
        arr = json_array();
        if (!arr || json_object_set_new(root, "training_data", arr) < 0)
            goto out;
        for (uint32_t i = 0; i < m->n_data; i++) {
            aik_sha256_hex(m->data[i].sha256, hex);
            if (json_array_append_new(arr, json_pack("{s:s, s:s}", "role", m->data[i].role, "sha256", hex)) < 0)
                goto out;
        }
    }
    aik_sha256_hex(m->signer, hex);
    if (json_object_set_new(root, "signer", json_string(hex)) < 0)
        goto out;
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        goto out;
    n = strlen(text);
    out = malloc(n + 2);
    if (!out)
        goto out;
    memcpy(out, text, n);
    out[n++] = '\n';
    out[n] = '\0';
    *ret_data = out;
    *ret_len = n;
    r = 0;
out:
    free(text);
    json_decref(root);
    return r;
}
