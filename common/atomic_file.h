/* SPDX-License-Identifier: MIT */
/*
 * Crash-safe file replacement: write to a temporary file in the target's
 * directory, fsync it, rename it over the target, fsync the directory.
 * Readers see either the old file or the complete new one, never a torn one.
 */
#ifndef AIK_COMMON_ATOMIC_FILE_H
#define AIK_COMMON_ATOMIC_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct aik_atomic_file {
    int fd;              /* write here (or with aik_atomic_file_write) */
    uint64_t written;    /* bytes appended through aik_atomic_file_write */
    char *path;          /* final path */
    char *tmp_path;      /* temporary path in the same directory */
} aik_atomic_file;

/* Create the temporary file with the given mode. Returns 0 or -errno. */
int aik_atomic_file_open(aik_atomic_file *f, const char *path, mode_t mode);

/* Append len bytes (loops over short writes). Returns 0 or -errno. */
int aik_atomic_file_write(aik_atomic_file *f, const void *data, size_t len);

/* fsync, rename into place, fsync the directory. Returns 0 or -errno; on
 * failure the temporary file is removed and the target is untouched. */
int aik_atomic_file_commit(aik_atomic_file *f);

/* Drop the temporary file (after a failure or instead of commit). Safe to call
 * after commit and on a zeroed struct. */
void aik_atomic_file_abort(aik_atomic_file *f);

/* Write a whole buffer atomically. */
int aik_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Read a whole regular file (at most max_len bytes, else -EFBIG) into a
 * malloc'ed, NUL-terminated buffer. Opens with O_NOFOLLOW|O_CLOEXEC. */
int aik_read_file(const char *path, size_t max_len, char **ret_data, size_t *ret_len);

/* Same, from an open descriptor, using pread from offset 0. */
int aik_read_fd(int fd, size_t max_len, char **ret_data, size_t *ret_len);

#endif
