/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the replay-log reader: scan the input, touch every byte of
 * every record it vouches for, and re-encode each good record, which must
 * reproduce its bytes exactly (the reader accepts nothing the writer would
 * not write).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "runtime/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct walk {
    const uint8_t *data;
    size_t off;
} walk;

static volatile uint8_t sink;

static int visit(void *user, uint64_t index, const aik_replay_record *rec)
{
    walk *w = user;
    uint8_t *enc = NULL, acc = 0;
    size_t len = 0;

    (void)index;
    for (size_t i = 0; i < rec->input_len; i++)
        acc ^= (uint8_t)rec->input[i];
    for (size_t i = 0; i < rec->output_len; i++)
        acc ^= (uint8_t)rec->output[i];
    for (size_t i = 0; i < rec->intent_len; i++)
        acc ^= (uint8_t)rec->intent[i];
    for (uint32_t i = 0; i < rec->n_digests; i++)
        acc ^= rec->digests[i][31];
    sink = acc;
    if (aik_replay_encode(rec, &enc, &len, NULL) != 0 || memcmp(enc, w->data + w->off, len) != 0)
        __builtin_trap();
    w->off += len;
    free(enc);
    return 0;
}

static void scan(const uint8_t *data, size_t size)
{
    aik_replay_scan_result res;
    walk w = { data, 0 };

    if (aik_replay_scan(data, size, visit, &w, &res, NULL) != 0)
        __builtin_trap();
    if (res.damaged ? (res.bad_offset != w.off || res.reason[0] == '\0') : w.off != size)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy;
    size_t off = 0;

    scan(data, size);
    /* Mutations rarely keep the checksums: re-seal every record whose frame
     * fits in a copy, so the field checks behind the checksum get fuzzed. */
    copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    while (off + 8 <= size && memcmp(copy + off, "AIKR", 4) == 0) {
        uint64_t body = (uint64_t)copy[off + 4] | (uint64_t)copy[off + 5] << 8 | (uint64_t)copy[off + 6] << 16 |
                        (uint64_t)copy[off + 7] << 24;
        if (body > size || off + 8 + body + 32 > size)
            break;
        aik_sha256_buf(copy + off, (size_t)(8 + body), copy + off + 8 + body);
        off += 8 + body + 32;
    }
    scan(copy, size);
    free(copy);
    return 0;
}
