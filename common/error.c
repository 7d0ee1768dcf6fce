/* SPDX-License-Identifier: MIT */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

AIK_EXPORT void aik_error_clear(aik_error *err)
{
    if (!err)
        return;
    err->code = 0;
    err->where[0] = '\0';
    err->message[0] = '\0';
}

AIK_EXPORT const char *aik_error_format(const aik_error *err, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    if (!err) {
        buf[0] = '\0';
        return buf;
    }
    if (err->where[0])
        snprintf(buf, len, "%s: %s", err->where, err->message);
    else
        snprintf(buf, len, "%s", err->message);
    return buf;
}

int aik_fail(aik_error *err, int code, const char *where, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        snprintf(err->where, sizeof(err->where), "%s", where ? where : "");
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return code;
}

void aik_error_prefix(aik_error *err, const char *prefix)
{
    char tmp[sizeof(err->where)];

    if (!err || !prefix || !prefix[0])
        return;
    if (err->where[0])
        snprintf(tmp, sizeof(tmp), "%s: %s", prefix, err->where);
    else
        snprintf(tmp, sizeof(tmp), "%s", prefix);
    memcpy(err->where, tmp, sizeof(tmp));
}
