/* SPDX-License-Identifier: MIT */
#include "common/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fsync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    int dfd, r = 0;

    if (!copy)
        return -ENOMEM;
    dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (dfd < 0)
        return -errno;
    if (fsync(dfd) < 0)
        r = -errno;
    close(dfd);
    return r;
}

int aik_atomic_file_open(aik_atomic_file *f, const char *path, mode_t mode)
{
    size_t n;

    memset(f, 0, sizeof(*f));
    f->fd = -1;
    f->path = strdup(path);
    n = strlen(path) + 16;
    f->tmp_path = malloc(n);
    if (!f->path || !f->tmp_path) {
        aik_atomic_file_abort(f);
        return -ENOMEM;
    }
    snprintf(f->tmp_path, n, "%s.tmpXXXXXX", path);
    f->fd = mkostemp(f->tmp_path, O_CLOEXEC);
    if (f->fd < 0) {
        int r = -errno;
        free(f->tmp_path);
        f->tmp_path = NULL; /* nothing was created */
        aik_atomic_file_abort(f);
        return r;
    }
    if (fchmod(f->fd, mode) < 0) {
        int r = -errno;
        aik_atomic_file_abort(f);
        return r;
    }
    return 0;
}

int aik_atomic_file_write(aik_atomic_file *f, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t w = write(f->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
        f->written += (uint64_t)w;
    }
    return 0;
}

int aik_atomic_file_commit(aik_atomic_file *f)
{
    int r = 0;

    if (fsync(f->fd) < 0)
        r = -errno;
    if (close(f->fd) < 0 && r == 0)
        r = -errno;
    f->fd = -1;
    if (r == 0 && rename(f->tmp_path, f->path) < 0)
        r = -errno;
    if (r < 0) {
        aik_atomic_file_abort(f);
        return r;
    }
    free(f->tmp_path);
    f->tmp_path = NULL;
    r = fsync_parent_dir(f->path);
    aik_atomic_file_abort(f);
    return r;
}

void aik_atomic_file_abort(aik_atomic_file *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (f->tmp_path)
        unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->path);
    f->tmp_path = NULL;
    f->path = NULL;
}

int aik_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    aik_atomic_file f;
    int r = aik_atomic_file_open(&f, path, mode);

    if (r < 0)
        return r;
    r = aik_atomic_file_write(&f, data, len);
    if (r < 0) {
        aik_atomic_file_abort(&f);
        return r;
    }
    return aik_atomic_file_commit(&f);
}

int aik_read_fd(int fd, size_t max_len, char **ret_data, size_t *ret_len)
{
    struct stat st;
    char *buf;
    size_t got = 0;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    if ((uint64_t)st.st_size > max_len)
        return -EFBIG;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return -ENOMEM;
    while (got < (size_t)st.st_size) {
        ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return -errno;
        }
        if (n == 0)
            break; /* file shrank under us: return what is there */
        got += (size_t)n;
    }
    buf[got] = '\0';
    *ret_data = buf;
    *ret_len = got;
    return 0;
}

int aik_read_file(const char *path, size_t max_len, char **ret_data, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int r;

    if (fd < 0)
        return -errno;
    r = aik_read_fd(fd, max_len, ret_data, ret_len);
    close(fd);
    return r;
}
