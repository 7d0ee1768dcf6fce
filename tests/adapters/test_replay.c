/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the replay log (runtime/replay.c): round trip, mode 0600,
 * rotation, damage detection (every truncation, every flipped byte), limits.
 * `test_replay --write-corpus DIR` writes the fuzz seed corpus.
 */
#include <errno.h>
#include <sys/stat.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "runtime/replay.h"
#include "testutil.h"

static char *g_dir;

static void setup(void)
{
    g_dir = aik_test_tmpdir();
    ck_assert_ptr_nonnull(g_dir);
}

static void teardown(void)
{
    aik_test_rmtree(g_dir);
    free(g_dir);
}

static const uint8_t g_digests[2][32] = { { 1, 2, 3 }, { 0xff, 0xee } };

static void fill(aik_replay_record *r, int i, char *input, size_t cap)
{
    memset(r, 0, sizeof(*r));
    snprintf(input, cap, "input number %d", i);
    r->time_unix_ms = 1700000000000ull + (uint64_t)i;
    r->intent = "define";
    r->intent_len = 6;
    r->input = input;
    r->input_len = strlen(input);
    r->output = i % 2 ? "odd output" : "";
    r->output_len = i % 2 ? 10 : 0;
    r->digests = g_digests;
    r->n_digests = (uint32_t)(i % 3);
    r->prompt_ms = 1.5 * i;
    r->gen_ms = 2.25;
    r->n_prompt_tokens = (uint32_t)i;
    r->n_gen_tokens = 7;
}

typedef struct seen {
    int n;
    int first;
} seen;

static int check_rec(void *user, uint64_t index, const aik_replay_record *rec)
{
    seen *s = user;
    char want[64];
    int i = s->first + (int)index;

    snprintf(want, sizeof(want), "input number %d", i);
    ck_assert_uint_eq(rec->time_unix_ms, 1700000000000ull + (uint64_t)i);
    ck_assert_uint_eq(rec->input_len, strlen(want));
    ck_assert_mem_eq(rec->input, want, rec->input_len);
    ck_assert_uint_eq(rec->intent_len, 6);
    ck_assert_mem_eq(rec->intent, "define", 6);
    ck_assert_uint_eq(rec->output_len, i % 2 ? 10u : 0u);
    ck_assert_uint_eq(rec->n_digests, (uint32_t)(i % 3));
    if (rec->n_digests)
        ck_assert_mem_eq(rec->digests, g_digests, 32u * rec->n_digests);
    ck_assert(rec->prompt_ms == 1.5 * i);
    ck_assert(rec->gen_ms == 2.25);
    ck_assert_uint_eq(rec->n_prompt_tokens, (uint32_t)i);
    s->n++;
    return 0;
}

START_TEST(test_roundtrip_and_mode)
{
    char path[600], in[64];
    aik_replay_log *log = NULL;
    aik_replay_record r;
    aik_replay_scan_result res;
    aik_error err;
    struct stat st;
    seen s = { 0, 0 };

    snprintf(path, sizeof(path), "%s/replay.log", g_dir);
    ck_assert_int_eq(aik_replay_open(path, 1 << 20, 3, &log, &err), 0);
    for (int i = 0; i < 20; i++) {
        fill(&r, i, in, sizeof(in));
        ck_assert_int_eq(aik_replay_append(log, &r, &err), 0);
    }
    ck_assert_int_eq(aik_replay_sync(log), 0);
    aik_replay_close(log);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(aik_replay_scan_file(path, check_rec, &s, &res, &err), 0);
    ck_assert(!res.damaged);
    ck_assert_uint_eq(res.n_good, 20);
    ck_assert_int_eq(s.n, 20);

    /* Reopening appends; an existing file with a wide mode is narrowed. */
    ck_assert_int_eq(chmod(path, 0644), 0);
    ck_assert_int_eq(aik_replay_open(path, 1 << 20, 3, &log, &err), 0);
    fill(&r, 20, in, sizeof(in));
    ck_assert_int_eq(aik_replay_append(log, &r, &err), 0);
    aik_replay_close(log);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    s.n = 0;
    ck_assert_int_eq(aik_replay_scan_file(path, check_rec, &s, &res, &err), 0);
    ck_assert_uint_eq(res.n_good, 21);
}
END_TEST

START_TEST(test_rotation)
{
    char path[600], p1[640], p2[640], p3[640], in[64];
    aik_replay_log *log = NULL;
    aik_replay_record r;
    aik_replay_scan_result res;
    aik_error err;
    struct stat st;
    uint64_t total = 0;
    seen s;

    snprintf(path, sizeof(path), "%s/rot.log", g_dir);
    snprintf(p1, sizeof(p1), "%s.1", path);
    snprintf(p2, sizeof(p2), "%s.2", path);
    snprintf(p3, sizeof(p3), "%s.3", path);
    ck_assert_int_eq(aik_replay_open(path, 1024, 2, &log, &err), 0);
    for (int i = 0; i < 100; i++) {
        fill(&r, i, in, sizeof(in));
        ck_assert_int_eq(aik_replay_append(log, &r, &err), 0);
    }
    aik_replay_close(log);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_le((uint64_t)st.st_size, 1024);
    ck_assert_int_eq(stat(p1, &st), 0);
    ck_assert_uint_le((uint64_t)st.st_size, 1024);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(p2, &st), 0);
    ck_assert_int_eq(stat(p3, &st), -1); /* max_files = 2: the oldest was dropped */
    /* The three files hold the newest records in order, oldest in .2. */
    s.n = 0;
    ck_assert_int_eq(aik_replay_scan_file(p2, NULL, NULL, &res, &err), 0);
    ck_assert(!res.damaged);
    total += res.n_good;
    s.first = 100 - (int)total;
    ck_assert_int_eq(aik_replay_scan_file(p1, NULL, NULL, &res, &err), 0);
    total += res.n_good;
    ck_assert_int_eq(aik_replay_scan_file(path, NULL, NULL, &res, &err), 0);
    s.first = 100 - (int)res.n_good;
    ck_assert_int_eq(aik_replay_scan_file(path, check_rec, &s, &res, &err), 0);
    total += res.n_good;
    ck_assert_uint_gt(total, 3);
    ck_assert_uint_lt(total, 100);
}
END_TEST

static uint8_t *three_records(size_t *ret_len, size_t off[4])
{
    uint8_t *buf = NULL, *one;
    size_t len = 0, n;
    char in[64];
    aik_replay_record r;
    aik_error err;

    for (int i = 0; i < 3; i++) {
        fill(&r, i + 1, in, sizeof(in));
        ck_assert_int_eq(aik_replay_encode(&r, &one, &n, &err), 0);
        buf = realloc(buf, len + n);
        memcpy(buf + len, one, n);
        off[i] = len;
        len += n;
        free(one);
    }
    off[3] = len;
    *ret_len = len;
    return buf;
}

START_TEST(test_truncation_every_length)
{
    size_t len, off[4];
    uint8_t *buf = three_records(&len, off);
    aik_replay_scan_result res;
    aik_error err;

    for (size_t n = 0; n <= len; n++) {
        uint8_t *t = malloc(n ? n : 1);
        uint64_t whole = 0;
        memcpy(t, buf, n);
        for (int i = 0; i < 3; i++)
            whole += off[i + 1] <= n;
        ck_assert_int_eq(aik_replay_scan(t, n, NULL, NULL, &res, &err), 0);
        ck_assert_uint_eq(res.n_good, whole);
        /* Damaged exactly when n cuts a record. */
        ck_assert_int_eq(res.damaged, n != off[0] && n != off[1] && n != off[2] && n != off[3]);
        if (res.damaged) {
            ck_assert_uint_eq(res.bad_offset, off[whole]);
            ck_assert(res.reason[0] != '\0');
        }
        free(t);
    }
    free(buf);
}
END_TEST

START_TEST(test_every_flipped_byte_detected)
{
    size_t len, off[4];
    uint8_t *buf = three_records(&len, off);
    aik_replay_scan_result res;
    aik_error err;

    for (size_t i = 0; i < len; i++) {
        int rec = i >= off[2] ? 2 : i >= off[1] ? 1 : 0;
        buf[i] ^= 0x41;
        ck_assert_int_eq(aik_replay_scan(buf, len, NULL, NULL, &res, &err), 0);
        ck_assert_msg(res.damaged, "flip at %zu not detected", i);
        /* Records before the damaged one are still trusted, nothing after. */
        ck_assert_uint_eq(res.n_good, (uint64_t)rec);
        ck_assert_uint_eq(res.bad_offset, off[rec]);
        buf[i] ^= 0x41;
    }
    ck_assert_int_eq(aik_replay_scan(buf, len, NULL, NULL, &res, &err), 0);
    ck_assert(!res.damaged);
    ck_assert_uint_eq(res.n_good, 3);
    free(buf);
}
END_TEST

/* Fields behind a valid checksum are still checked against body_len. */
START_TEST(test_fields_behind_checksum)
{
    size_t len, off[4];
    struct {
        size_t at; /* offset in the body of record 1 */
        uint32_t value;
        const char *reason;
    } cases[] = {
        { 36, 0xffffff, "string length" },      /* intent_len */
        { 36, 1000, "string length" },          /* intent_len past the body */
        { 32, 3, "n_digests" },                 /* more digests than bytes */
        { 32, 0, "n_digests" },                 /* bytes left over */
        { 32, AIK_REPLAY_MAX_DIGESTS + 1, "n_digests" },
    };
    aik_replay_scan_result res;
    aik_error err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *buf = three_records(&len, off);
        uint8_t *rec = buf + off[1];
        uint32_t body = (uint32_t)rec[4] | (uint32_t)rec[5] << 8 | (uint32_t)rec[6] << 16 | (uint32_t)rec[7] << 24;
        for (int b = 0; b < 4; b++)
            rec[8 + cases[i].at + (size_t)b] = (uint8_t)(cases[i].value >> (8 * b));
        ck_assert_int_eq(aik_sha256_buf(rec, 8 + body, rec + 8 + body), 0);
        ck_assert_int_eq(aik_replay_scan(buf, len, NULL, NULL, &res, &err), 0);
        ck_assert(res.damaged);
        ck_assert_uint_eq(res.n_good, 1);
        ck_assert_uint_eq(res.bad_offset, off[1]);
        ck_assert_msg(strstr(res.reason, cases[i].reason) != NULL, "case %zu: %s", i, res.reason);
        free(buf);
    }
}
END_TEST

static int stop_at_two(void *user, uint64_t index, const aik_replay_record *rec)
{
    (void)user;
    (void)rec;
    return index == 1 ? 42 : 0;
}

START_TEST(test_limits_and_args)
{
    char path[600], in[64];
    aik_replay_log *log = NULL;
    aik_replay_record r;
    aik_replay_scan_result res;
    aik_error err;
    size_t len, off[4];
    uint8_t *buf;
    static char big[2048];

    snprintf(path, sizeof(path), "%s/lim.log", g_dir);
    ck_assert_int_eq(aik_replay_open(path, 100, 2, &log, &err), -EINVAL);
    ck_assert_str_eq(err.where, "max_bytes");
    ck_assert_int_eq(aik_replay_open(path, 4096, 0, &log, &err), -EINVAL);
    ck_assert_str_eq(err.where, "max_files");
    ck_assert_int_eq(aik_replay_open(path, 1024, 1, &log, &err), 0);
    fill(&r, 1, in, sizeof(in));
    memset(big, 'x', sizeof(big));
    r.output = big;
    r.output_len = sizeof(big);
    ck_assert_int_eq(aik_replay_append(log, &r, &err), -EFBIG);
    r.output = NULL;
    ck_assert_int_eq(aik_replay_append(log, &r, &err), -EINVAL);
    fill(&r, 1, in, sizeof(in));
    r.n_digests = AIK_REPLAY_MAX_DIGESTS + 1;
    ck_assert_int_eq(aik_replay_append(log, &r, &err), -E2BIG);
    aik_replay_close(log);
    aik_replay_close(NULL);

    buf = three_records(&len, off);
    ck_assert_int_eq(aik_replay_scan(buf, len, stop_at_two, NULL, &res, &err), 42);
    /* A body_len that claims more than the limit is damage, not an allocation. */
    buf[off[1] + 4] = 0xff;
    buf[off[1] + 5] = 0xff;
    buf[off[1] + 6] = 0xff;
    buf[off[1] + 7] = 0x7f;
    ck_assert_int_eq(aik_replay_scan(buf, len, NULL, NULL, &res, &err), 0);
    ck_assert(res.damaged);
    ck_assert(strstr(res.reason, "body_len") != NULL);
    ck_assert_uint_eq(res.n_good, 1);
    free(buf);
}
END_TEST

/* No ck_assert here: it reports to a test runner that is not there. */
static int write_corpus(const char *dir)
{
    uint8_t *buf = NULL, *one, *g;
    size_t len = 0, n, off[4] = { 0 };
    char path[600], in[64];
    aik_replay_record r;
    int rc = 0;

    for (int i = 0; i < 3; i++) {
        fill(&r, i + 1, in, sizeof(in));
        if (aik_replay_encode(&r, &one, &n, NULL) < 0 || !(g = realloc(buf, len + n))) {
            free(buf);
            return 1;
        }
        buf = g;
        memcpy(buf + len, one, n);
        free(one);
        off[i] = len;
        len += n;
    }
    off[3] = len;
    snprintf(path, sizeof(path), "%s/three.bin", dir);
    rc |= aik_write_file_atomic(path, buf, len, 0644);
    snprintf(path, sizeof(path), "%s/one.bin", dir);
    rc |= aik_write_file_atomic(path, buf, off[1], 0644);
    snprintf(path, sizeof(path), "%s/torn.bin", dir);
    rc |= aik_write_file_atomic(path, buf, off[2] - 5, 0644);
    free(buf);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    Suite *s;
    TCase *tc;

    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
        return write_corpus(argv[2]);
    s = suite_create("replay");
    tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_roundtrip_and_mode);
    tcase_add_test(tc, test_rotation);
    tcase_add_test(tc, test_truncation_every_length);
    tcase_add_test(tc, test_every_flipped_byte_detected);
    tcase_add_test(tc, test_fields_behind_checksum);
    tcase_add_test(tc, test_limits_and_args);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
