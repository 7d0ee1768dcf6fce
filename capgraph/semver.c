/* SPDX-License-Identifier: MIT */
#include "capgraph/semver.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"

/* One numeric part: digits only, no leading zero (semver 2.0.0 §2), fits
 * in uint32. Advances *p. */
static int parse_num(const char **p, uint32_t *ret, const char *what, aik_error *err)
{
    const char *s = *p;
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return aik_fail(err, -EINVAL, NULL, "%s version: expected a number", what);
    if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
        return aik_fail(err, -EINVAL, NULL, "%s version: leading zero", what);
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return aik_fail(err, -EINVAL, NULL, "%s version: number too large", what);
        s++;
    }
    *p = s;
    *ret = (uint32_t)v;
    return 0;
}

static bool ident_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* Dot-separated identifiers [0-9A-Za-z-]+; returns the length consumed or -1. */
static int parse_idents(const char *s)
{
    int n = 0, seg = 0;
    for (;; n++) {
        if (ident_char(s[n])) {
            seg++;
            continue;
        }
        if (s[n] == '.' && seg > 0) {
            seg = 0;
            continue;
        }
        break;
    }
    return seg > 0 ? n : -1;
}

/* Parses [major[.minor[.patch]]][-pre][+build]; *ret_parts is how many
 * numeric parts were present (1..3); "x"/"*" parts are not allowed here. */
static int parse_partial(const char *text, const char **ret_end, aik_semver *v, int *ret_parts, aik_error *err)
{
    const char *p = text;
    uint32_t *parts[3] = { &v->major, &v->minor, &v->patch };
    static const char *const names[3] = { "major", "minor", "patch" };
    int n = 0, r;

    memset(v, 0, sizeof(*v));
    for (n = 0; n < 3; n++) {
        r = parse_num(&p, parts[n], names[n], err);
        if (r < 0)
            return r;
        if (*p != '.')
            break;
        if (n == 2)
            return aik_fail(err, -EINVAL, NULL, "more than three version numbers");
        p++;
    }
    if (n == 3)
        n = 2;
    if (*p == '-') {
        int len = parse_idents(p + 1);
        if (len < 0)
            return aik_fail(err, -EINVAL, NULL, "pre-release tag: expected [0-9A-Za-z-] identifiers");
        if ((size_t)len >= sizeof(v->pre))
            return aik_fail(err, -EINVAL, NULL, "pre-release tag longer than %zu bytes", sizeof(v->pre) - 1);
        memcpy(v->pre, p + 1, (size_t)len);
        v->pre[len] = '\0';
        p += 1 + len;
    }
    if (*p == '+') {
        int len = parse_idents(p + 1);
        if (len < 0)
            return aik_fail(err, -EINVAL, NULL, "build metadata: expected [0-9A-Za-z-] identifiers");
        p += 1 + len;
    }
    *ret_end = p;
    *ret_parts = n + 1;
    return 0;
}

int aik_semver_parse(const char *text, aik_semver *ret_v, aik_error *err)
{
    aik_semver v;
    const char *end;
    int parts, r;

    if (!text || !ret_v)
        return -EINVAL;
    if (strlen(text) > AIK_SEMVER_TEXT_MAX)
        return aik_fail(err, -EINVAL, NULL, "version longer than %d bytes", AIK_SEMVER_TEXT_MAX);
    r = parse_partial(text, &end, &v, &parts, err);
    if (r < 0)
        return r;
    if (*end)
        return aik_fail(err, -EINVAL, NULL, "'%s': unexpected '%c' in version", text, *end);
    if (parts != 3)
        return aik_fail(err, -EINVAL, NULL, "'%s': a version needs MAJOR.MINOR.PATCH", text);
    *ret_v = v;
    return 0;
}

/* Pre-release precedence (semver §11): numeric identifiers compare
 * numerically and sort before alphanumeric ones; a shorter list that is a
 * prefix sorts first; no tag sorts after any tag. */
static int pre_cmp(const char *a, const char *b)
{
    if (!*a || !*b)
        return (*a == 0 && *b == 0) ? 0 : (*a == 0 ? 1 : -1);
    while (*a && *b) {
        size_t la = strcspn(a, "."), lb = strcspn(b, ".");
        bool na = la == strspn(a, "0123456789"), nb = lb == strspn(b, "0123456789");
        int c;
        if (na && nb) {
            c = la != lb ? (la < lb ? -1 : 1) : memcmp(a, b, la);
        } else if (na != nb) {
            c = na ? -1 : 1;
        } else {
            c = memcmp(a, b, la < lb ? la : lb);
            if (c == 0 && la != lb)
                c = la < lb ? -1 : 1;
        }
        if (c)
            return c < 0 ? -1 : 1;
        a += la + (a[la] == '.');
        b += lb + (b[lb] == '.');
    }
    return (*a != 0) - (*b != 0);
}

int aik_semver_cmp(const aik_semver *a, const aik_semver *b)
{
    if (a->major != b->major)
        return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->patch != b->patch)
        return a->patch < b->patch ? -1 : 1;
    return pre_cmp(a->pre, b->pre);
}

const char *aik_semver_format(const aik_semver *v, char *buf, size_t len)
{
    snprintf(buf, len, "%u.%u.%u%s%s", v->major, v->minor, v->patch, v->pre[0] ? "-" : "", v->pre);
    return buf;
}

static int add_cmp(aik_semver_range *r, aik_semver_op op, const aik_semver *v, aik_error *err)
{
    if (r->n >= AIK_SEMVER_RANGE_MAX)
        return aik_fail(err, -EINVAL, NULL, "more than %d comparators in a range", AIK_SEMVER_RANGE_MAX);
    r->c[r->n].op = op;
    r->c[r->n].v = *v;
    r->n++;
    return 0;
}

/* Upper bound that bumps part `idx` (0 major, 1 minor, 2 patch). */
static int bump(const aik_semver *lo, int idx, aik_semver *hi, aik_error *err)
{
    memset(hi, 0, sizeof(*hi));
    hi->major = lo->major;
    if (idx >= 1)
        hi->minor = lo->minor;
    if (idx >= 2)
        hi->patch = lo->patch;
    uint32_t *p = idx == 0 ? &hi->major : idx == 1 ? &hi->minor : &hi->patch;
    if (*p == UINT32_MAX)
        return aik_fail(err, -EINVAL, NULL, "version number too large for a range");
    (*p)++;
    return 0;
}

int aik_semver_range_parse(const char *text, aik_semver_range *ret_r, aik_error *err)
{
    aik_semver_range r;
    const char *p = text;
    int ret;

    if (!text || !ret_r)
        return -EINVAL;
    if (strlen(text) > AIK_SEMVER_TEXT_MAX)
        return aik_fail(err, -EINVAL, NULL, "range longer than %d bytes", AIK_SEMVER_TEXT_MAX);
    memset(&r, 0, sizeof(r));
    while (*p == ' ')
        p++;
    if (!*p)
        return aik_fail(err, -EINVAL, NULL, "empty version range");
    if (p[0] == '*' && p[strspn(p + 1, " ") + 1] == '\0') {
        *ret_r = r;
        return 0;
    }
    while (*p) {
        aik_semver v, hi;
        const char *end;
        int parts;
        char kind = 0; /* '^', '~', '=', or 0 for a bare version */
        aik_semver_op op = AIK_SEMVER_EQ;

        if (*p == '^' || *p == '~' || *p == '=') {
            kind = *p++;
        } else if (*p == '>' || *p == '<') {
            bool gt = *p == '>';
            p++;
            if (*p == '=') {
                op = gt ? AIK_SEMVER_GE : AIK_SEMVER_LE;
                p++;
            } else {
                op = gt ? AIK_SEMVER_GT : AIK_SEMVER_LT;
            }
            kind = '<';
        }
        ret = parse_partial(p, &end, &v, &parts, err);
        if (ret < 0)
            return ret;
        if (*end && *end != ' ')
            return aik_fail(err, -EINVAL, NULL, "'%s': unexpected '%c' in version range", text, *end);
        p = end;
        while (*p == ' ')
            p++;

        switch (kind) {
        case '<':
            ret = add_cmp(&r, op, &v, err);
            break;
        case '^': {
            /* Bump the left-most non-zero part among those given. */
            int idx = 0;
            if (v.major == 0 && parts >= 2) {
                idx = 1;
                if (v.minor == 0 && parts >= 3)
                    idx = 2;
            }
            ret = add_cmp(&r, AIK_SEMVER_GE, &v, err);
            if (ret == 0)
                ret = bump(&v, idx, &hi, err);
            if (ret == 0)
                ret = add_cmp(&r, AIK_SEMVER_LT, &hi, err);
            break;
        }
        case '~':
            ret = add_cmp(&r, AIK_SEMVER_GE, &v, err);
            if (ret == 0)
                ret = bump(&v, parts >= 2 ? 1 : 0, &hi, err);
            if (ret == 0)
                ret = add_cmp(&r, AIK_SEMVER_LT, &hi, err);
            break;
        default:
            /* "=1.2.3" / "1.2.3": exact; "1.2" / "1": any 1.2.x / 1.x.x. */
            if (parts == 3) {
                ret = add_cmp(&r, AIK_SEMVER_EQ, &v, err);
            } else {
                ret = add_cmp(&r, AIK_SEMVER_GE, &v, err);
                if (ret == 0)
                    ret = bump(&v, parts - 1, &hi, err);
                if (ret == 0)
                    ret = add_cmp(&r, AIK_SEMVER_LT, &hi, err);
            }
            break;
        }
        if (ret < 0)
            return ret;
    }
    *ret_r = r;
    return 0;
}

bool aik_semver_range_match(const aik_semver_range *r, const aik_semver *v)
{
    bool pre_ok = v->pre[0] == '\0';

    for (uint32_t i = 0; i < r->n; i++) {
        const aik_semver *c = &r->c[i].v;
        int k = aik_semver_cmp(v, c);
        bool ok;
        switch (r->c[i].op) {
        case AIK_SEMVER_EQ: ok = k == 0; break;
        case AIK_SEMVER_GT: ok = k > 0; break;
        case AIK_SEMVER_GE: ok = k >= 0; break;
        case AIK_SEMVER_LT: ok = k < 0; break;
        default: ok = k <= 0; break;
        }
        if (!ok)
            return false;
        if (c->pre[0] && c->major == v->major && c->minor == v->minor && c->patch == v->patch)
            pre_ok = true;
    }
    return pre_ok;
}
