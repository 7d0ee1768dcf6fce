/* SPDX-License-Identifier: MIT */
/* Append-only, checksummed, rotating replay log (see runtime/replay.h). */
#include "runtime/replay.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/checked.h"
#include "common/digest.h"
#include "common/error.h"

#define REC_MAGIC "AIKR"
#define REC_FIXED 48 /* fixed part of a body: 8 + 8 + 8 + 4 + 4 + 4 + 3 × 4 string lengths */

struct aik_replay_log {
    pthread_mutex_t lock;
    char *path;
    int fd;
    uint64_t size;
    uint64_t max_bytes;
    uint32_t max_files;
};

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

int aik_replay_encode(const aik_replay_record *rec, uint8_t **ret_data, size_t *ret_len, aik_error *err)
{
    uint64_t body = REC_FIXED, t;
    uint8_t *buf, *p;
    uint64_t bits;
    int r;

    if (!rec || !ret_data || !ret_len)
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    if ((rec->intent_len && !rec->intent) || (rec->input_len && !rec->input) ||
        (rec->output_len && !rec->output) || (rec->n_digests && !rec->digests))
        return aik_fail(err, -EINVAL, "record", "a length is set without its data");
    if (rec->n_digests > AIK_REPLAY_MAX_DIGESTS)
        return aik_fail(err, -E2BIG, "record.n_digests", "is %u, limit %d", rec->n_digests,
                        AIK_REPLAY_MAX_DIGESTS);
    if (aik_add_overflow(body, rec->intent_len, &body) || aik_add_overflow(body, rec->input_len, &body) ||
        aik_add_overflow(body, rec->output_len, &body) ||
        aik_add_overflow(body, (uint64_t)rec->n_digests * 32, &body) || body > AIK_REPLAY_MAX_BODY)
        return aik_fail(err, -EFBIG, "record", "body exceeds %u bytes", AIK_REPLAY_MAX_BODY);
    t = 8 + body + 32;
    buf = malloc((size_t)t);
    if (!buf)
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    memcpy(buf, REC_MAGIC, 4);
    wr32(buf + 4, (uint32_t)body);
    p = buf + 8;
    wr64(p, rec->time_unix_ms);
    memcpy(&bits, &rec->prompt_ms, 8);
    wr64(p + 8, bits);
    memcpy(&bits, &rec->gen_ms, 8);
    wr64(p + 16, bits);
    wr32(p + 24, rec->n_prompt_tokens);
    wr32(p + 28, rec->n_gen_tokens);
    wr32(p + 32, rec->n_digests);
    p += 36;
    wr32(p, (uint32_t)rec->intent_len);
    if (rec->intent_len)
        memcpy(p + 4, rec->intent, rec->intent_len);
    p += 4 + rec->intent_len;
    wr32(p, (uint32_t)rec->input_len);
    if (rec->input_len)
        memcpy(p + 4, rec->input, rec->input_len);
    p += 4 + rec->input_len;
    wr32(p, (uint32_t)rec->output_len);
    if (rec->output_len)
        memcpy(p + 4, rec->output, rec->output_len);
    p += 4 + rec->output_len;
    if (rec->n_digests)
        memcpy(p, rec->digests, (size_t)rec->n_digests * 32);
    p += (size_t)rec->n_digests * 32;
    r = aik_sha256_buf(buf, (size_t)(8 + body), p);
    if (r < 0) {
        free(buf);
        return aik_fail(err, r, NULL, "cannot hash");
    }
    *ret_data = buf;
    *ret_len = (size_t)t;
    return 0;
}

/* Decode one length-prefixed string of the body at *off. */
static bool take_str(const uint8_t *b, uint64_t len, uint64_t *off, const char **ret, size_t *ret_len)
{
    uint32_t n;
    if (!aik_range_ok(*off, 4, len))
        return false;
    n = rd32(b + *off);
    *off += 4;
    if (!aik_range_ok(*off, n, len))
        return false;
    *ret = (const char *)(b + *off);
    *ret_len = n;
    *off += n;
    return true;
}

int aik_replay_scan(const void *data, size_t size, aik_replay_fn fn, void *user, aik_replay_scan_result *ret,
                    aik_error *err)
{
    const uint8_t *d = data;
    aik_replay_scan_result res;
    uint64_t off = 0;

    if ((!data && size) || !ret)
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    memset(&res, 0, sizeof(res));
#define DAMAGED(...)                                                                                         \
    do {                                                                                                   \
        res.damaged = true;                                                                                \
        res.bad_offset = off;                                                                              \
        snprintf(res.reason, sizeof(res.reason), __VA_ARGS__);                                             \
        goto done;                                                                                         \
    } while (0)
    while (off < size) {
        aik_replay_record rec;
        uint8_t digest[32];
        uint64_t body_len, total, b;
        const uint8_t *body;

        memset(&rec, 0, sizeof(rec));
        if (!aik_range_ok(off, 8, size))
            DAMAGED("record[%llu]: truncated record header", (unsigned long long)res.n_good);
        if (memcmp(d + off, REC_MAGIC, 4) != 0)
            DAMAGED("record[%llu].magic: not AIKR", (unsigned long long)res.n_good);
        body_len = rd32(d + off + 4);
        if (body_len < REC_FIXED || body_len > AIK_REPLAY_MAX_BODY)
            DAMAGED("record[%llu].body_len: %llu not in %d..%u", (unsigned long long)res.n_good,
                    (unsigned long long)body_len, REC_FIXED, AIK_REPLAY_MAX_BODY);
        total = 8 + body_len + 32;
        if (!aik_range_ok(off, total, size))
            DAMAGED("record[%llu]: truncated (needs %llu bytes, %llu left)", (unsigned long long)res.n_good,
                    (unsigned long long)total, (unsigned long long)(size - off));
        if (aik_sha256_buf(d + off, (size_t)(8 + body_len), digest) < 0)
            return aik_fail(err, -ENOMEM, NULL, "cannot hash");
        if (memcmp(digest, d + off + 8 + body_len, 32) != 0)
            DAMAGED("record[%llu].sha256: does not match", (unsigned long long)res.n_good);
        /* The checksum only proves the writer wrote these bytes; the fields
         * are still checked against body_len (a buggy writer, a forged log). */
        body = d + off + 8;
        rec.time_unix_ms = rd64(body);
        {
            uint64_t bits = rd64(body + 8);
            memcpy(&rec.prompt_ms, &bits, 8);
            bits = rd64(body + 16);
            memcpy(&rec.gen_ms, &bits, 8);
        }
        rec.n_prompt_tokens = rd32(body + 24);
        rec.n_gen_tokens = rd32(body + 28);
        rec.n_digests = rd32(body + 32);
        b = 36;
        if (!take_str(body, body_len, &b, &rec.intent, &rec.intent_len) ||
            !take_str(body, body_len, &b, &rec.input, &rec.input_len) ||
            !take_str(body, body_len, &b, &rec.output, &rec.output_len))
            DAMAGED("record[%llu]: a string length runs past body_len", (unsigned long long)res.n_good);
        if (rec.n_digests > AIK_REPLAY_MAX_DIGESTS || body_len - b != (uint64_t)rec.n_digests * 32)
            DAMAGED("record[%llu].n_digests: %u digests do not fill the %llu bytes left", (unsigned long long)res.n_good,
                    rec.n_digests, (unsigned long long)(body_len - b));
        rec.digests = rec.n_digests ? (const uint8_t(*)[32])(body + b) : NULL;
        if (fn) {
            int r = fn(user, res.n_good, &rec);
            if (r != 0) {
                res.n_good++;
                *ret = res;
                return r;
            }
        }
        res.n_good++;
        off += total;
    }
done:
#undef DAMAGED
    *ret = res;
    return 0;
}

int aik_replay_scan_file(const char *path, aik_replay_fn fn, void *user, aik_replay_scan_result *ret,
                         aik_error *err)
{
    char *data = NULL;
    size_t len = 0;
    int r = aik_read_file(path, (size_t)1 << 30, &data, &len);

    if (r < 0)
        return aik_fail(err, r, path, "cannot read: %s", strerror(-r));
    r = aik_replay_scan(data, len, fn, user, ret, err);
    free(data);
    return r;
}

static int open_log(aik_replay_log *log, aik_error *err)
{
    struct stat st;
    int fd = open(log->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0)
        return aik_fail(err, -errno, log->path, "cannot open: %s", strerror(errno));
    /* An existing log may have been created with a wider mode. */
    if (fchmod(fd, 0600) < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return aik_fail(err, -e, log->path, "cannot chmod/stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return aik_fail(err, -EINVAL, log->path, "not a regular file");
    }
    log->fd = fd;
    log->size = (uint64_t)st.st_size;
    return 0;
}

int aik_replay_open(const char *path, uint64_t max_bytes, uint32_t max_files, aik_replay_log **ret_log,
                    aik_error *err)
{
    aik_replay_log *log;
    int r;

    if (!path || !ret_log)
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    if (max_bytes < 1024)
        return aik_fail(err, -EINVAL, "max_bytes", "is %llu, must be >= 1024", (unsigned long long)max_bytes);
    if (max_files < 1 || max_files > AIK_REPLAY_MAX_FILES)
        return aik_fail(err, -EINVAL, "max_files", "is %u, must be 1..%d", max_files, AIK_REPLAY_MAX_FILES);
    log = calloc(1, sizeof(*log));
    if (!log || !(log->path = strdup(path))) {
        free(log);
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    }
    log->max_bytes = max_bytes;
    log->max_files = max_files;
    r = open_log(log, err);
    if (r < 0) {
        free(log->path);
        free(log);
        return r;
    }
    pthread_mutex_init(&log->lock, NULL);
    *ret_log = log;
    return 0;
}

static int rotate(aik_replay_log *log, aik_error *err)
{
    char *from = NULL, *to = NULL;
    int r = 0;

    if (fsync(log->fd) < 0)
        r = -errno;
    close(log->fd);
    log->fd = -1;
    if (r < 0)
        return aik_fail(err, r, log->path, "fsync before rotation: %s", strerror(-r));
    for (uint32_t k = log->max_files; k >= 1; k--) {
        if (k == 1) {
            if (asprintf(&to, "%s.1", log->path) < 0) {
                to = NULL;
                r = -ENOMEM;
                break;
            }
            if (rename(log->path, to) < 0 && errno != ENOENT)
                r = -errno;
        } else {
            if (asprintf(&from, "%s.%u", log->path, k - 1) < 0 || asprintf(&to, "%s.%u", log->path, k) < 0) {
                r = -ENOMEM;
                break;
            }
            /* rename over path.(max_files) drops the oldest. */
            if (rename(from, to) < 0 && errno != ENOENT)
                r = -errno;
        }
        free(from);
        free(to);
        from = to = NULL;
        if (r < 0)
            break;
    }
    free(from);
    free(to);
    if (r < 0) {
        /* Keep logging into whatever file path names now. */
        aik_error e2;
        open_log(log, &e2);
        return aik_fail(err, r, log->path, "rotation failed: %s", strerror(-r));
    }
    return open_log(log, err);
}

int aik_replay_append(aik_replay_log *log, const aik_replay_record *rec, aik_error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    ssize_t w;
    int r;

    if (!log)
        return aik_fail(err, -EINVAL, NULL, "no log");
    r = aik_replay_encode(rec, &buf, &len, err);
    if (r < 0)
        return r;
    if (len > log->max_bytes) {
        free(buf);
        return aik_fail(err, -EFBIG, "record", "%zu bytes exceed the log's cap of %llu", len,
                        (unsigned long long)log->max_bytes);
    }
    pthread_mutex_lock(&log->lock);
    if (log->fd < 0 && (r = open_log(log, err)) < 0)
        goto out;
    if (log->size > 0 && log->size + len > log->max_bytes && (r = rotate(log, err)) < 0)
        goto out;
    /* One write so that concurrent readers and a crash see either nothing or
     * a prefix of this record (which the scanner reports as truncation). */
    w = write(log->fd, buf, len);
    if (w < 0) {
        r = aik_fail(err, -errno, log->path, "write: %s", strerror(errno));
        goto out;
    }
    log->size += (uint64_t)w;
    if ((size_t)w != len)
        r = aik_fail(err, -EIO, log->path, "short write (%zd of %zu bytes)", w, len);
out:
    pthread_mutex_unlock(&log->lock);
    free(buf);
    return r;
}

int aik_replay_sync(aik_replay_log *log)
{
    int r = 0;
    if (!log)
        return -EINVAL;
    pthread_mutex_lock(&log->lock);
    if (log->fd >= 0 && fdatasync(log->fd) < 0)
        r = -errno;
    pthread_mutex_unlock(&log->lock);
    return r;
}

void aik_replay_close(aik_replay_log *log)
{
    if (!log)
        return;
    if (log->fd >= 0)
        close(log->fd);
    pthread_mutex_destroy(&log->lock);
    free(log->path);
    free(log);
}
