/* SPDX-License-Identifier: MIT */
/*
 * Replay log: an append-only record of served requests (intent, input,
 * output, the digests of the modules that served it, timings), so a request
 * can be replayed against a candidate model. Byte layout: docs/adapters.md,
 * "Replay log".
 *
 * Each record is self-delimiting and self-checking:
 *   u8 magic[4] "AIKR", u32 body_len (LE), body[body_len], u8 sha256[32]
 * where sha256 covers magic, body_len and body. body:
 *   u64 time_unix_ms, f64 prompt_ms, f64 gen_ms, u32 n_prompt_tokens,
 *   u32 n_gen_tokens, u32 n_digests,
 *   u32 intent_len, intent, u32 input_len, input, u32 output_len, output,
 *   n_digests × 32-byte SHA-256
 * and body_len must equal exactly what those fields take.
 *
 * Files are created with mode 0600 (inputs and outputs may be private). When
 * appending a record would grow the file past max_bytes, the log rotates:
 * path.(k) -> path.(k+1) for k = max_files-1 .. 1, path -> path.1, and a new
 * path is started; path.(max_files) is dropped.
 */
#ifndef AIK_RUNTIME_REPLAY_H
#define AIK_RUNTIME_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"

#define AIK_REPLAY_MAX_BODY (16u << 20) /* bytes of one record's body */
#define AIK_REPLAY_MAX_DIGESTS 256
#define AIK_REPLAY_MAX_FILES 100

typedef struct aik_replay_record {
    uint64_t time_unix_ms;
    const char *intent;
    size_t intent_len;
    const char *input;
    size_t input_len;
    const char *output;
    size_t output_len;
    const uint8_t (*digests)[32]; /* n_digests module digests */
    uint32_t n_digests;
    double prompt_ms, gen_ms;
    uint32_t n_prompt_tokens, n_gen_tokens;
} aik_replay_record;

typedef struct aik_replay_log aik_replay_log;

/* Open (create with 0600, or append to) path. max_bytes: size cap of one
 * file (>= 1024); max_files: rotated files kept (1..AIK_REPLAY_MAX_FILES).
 * An existing file is chmod'ed to 0600. */
int aik_replay_open(const char *path, uint64_t max_bytes, uint32_t max_files, aik_replay_log **ret_log,
                    aik_error *err);

/* Append one record with a single write(2), rotating first when needed.
 * Thread-safe. A record larger than max_bytes is -EFBIG. */
int aik_replay_append(aik_replay_log *log, const aik_replay_record *rec, aik_error *err);

/* Flush to disk (fdatasync). */
int aik_replay_sync(aik_replay_log *log);

/* Close. Accepts NULL. */
void aik_replay_close(aik_replay_log *log);

/* Encode a record (as appended) into a malloc'ed buffer. */
int aik_replay_encode(const aik_replay_record *rec, uint8_t **ret_data, size_t *ret_len, aik_error *err);

/* Called for each good record, in order; pointers are valid during the call
 * only. A non-zero return stops the scan and is returned by it. */
typedef int (*aik_replay_fn)(void *user, uint64_t index, const aik_replay_record *rec);

typedef struct aik_replay_scan_result {
    uint64_t n_good;      /* records that checked out, before any damage */
    bool damaged;         /* a bad record was found; nothing after it is trusted */
    uint64_t bad_offset;  /* byte offset of the first bad record */
    char reason[160];     /* which field / check failed */
} aik_replay_scan_result;

/* Walk a log held in memory. Damage is not an error of the scan: it returns
 * 0 with ret->damaged set and ret->reason naming the check. */
int aik_replay_scan(const void *data, size_t size, aik_replay_fn fn, void *user, aik_replay_scan_result *ret,
                    aik_error *err);

/* Read one log file (at most 1 GiB) and scan it. */
int aik_replay_scan_file(const char *path, aik_replay_fn fn, void *user, aik_replay_scan_result *ret,
                         aik_error *err);

#endif
