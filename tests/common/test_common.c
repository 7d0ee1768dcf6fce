/* SPDX-License-Identifier: MIT */
/* Unit tests for common/: error records, dtype table, SHA-256, atomic files. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "common/atomic_file.h"
#include "common/checked.h"
#include "common/digest.h"
#include "common/error.h"
#include "aik/tensor.h"
#include "testutil.h"

START_TEST(test_error_format)
{
    aik_error e;
    char buf[600];

    aik_error_clear(&e);
    ck_assert_int_eq(aik_fail(&e, -EINVAL, "header.n_layers", "is %u, must be > 0", 0u), -EINVAL);
    ck_assert_int_eq(e.code, -EINVAL);
    ck_assert_str_eq(aik_error_format(&e, buf, sizeof(buf)), "header.n_layers: is 0, must be > 0");
    aik_error_prefix(&e, "model.slm");
    ck_assert_str_eq(e.where, "model.slm: header.n_layers");
    ck_assert_int_eq(aik_fail(NULL, -EIO, NULL, "x"), -EIO); /* NULL record is fine */
}
END_TEST

START_TEST(test_dtype_sizes)
{
    uint64_t b;

    ck_assert_int_eq(aik_dtype_bytes(AIK_DTYPE_F32, 10, &b), 0);
    ck_assert_uint_eq(b, 40);
    ck_assert_int_eq(aik_dtype_bytes(AIK_DTYPE_Q8_0, 64, &b), 0);
    ck_assert_uint_eq(b, 68);
    ck_assert_int_eq(aik_dtype_bytes(AIK_DTYPE_Q4_0, 64, &b), 0);
    ck_assert_uint_eq(b, 36);
    ck_assert_int_eq(aik_dtype_bytes(AIK_DTYPE_Q4_0, 33, &b), -EINVAL);
    ck_assert_int_eq(aik_dtype_bytes((aik_dtype)99, 32, &b), -EINVAL);
    ck_assert_int_eq(aik_dtype_bytes(AIK_DTYPE_F32, UINT64_MAX / 2, &b), -EOVERFLOW);
    for (int t = 0; t < AIK_DTYPE_COUNT; t++) {
        aik_dtype back;
        ck_assert_int_eq(aik_dtype_from_name(aik_dtype_name((aik_dtype)t), &back), 0);
        ck_assert_int_eq(back, t);
    }
    ck_assert_str_eq(aik_dtype_name((aik_dtype)77), "?");
}
END_TEST

START_TEST(test_checked)
{
    uint64_t r;
    ck_assert(aik_range_ok(0, 10, 10));
    ck_assert(!aik_range_ok(1, 10, 10));
    ck_assert(!aik_range_ok(UINT64_MAX, 2, UINT64_MAX));
    ck_assert(!aik_align_up(65, 64, &r));
    ck_assert_uint_eq(r, 128);
    ck_assert(aik_align_up(UINT64_MAX - 3, 64, &r));
}
END_TEST

START_TEST(test_sha256_known_answer)
{
    /* FIPS 180-2 example "abc". */
    uint8_t d[32];
    char hex[AIK_SHA256_HEX_LEN];
    uint8_t back[32];

    ck_assert_int_eq(aik_sha256_buf("abc", 3, d), 0);
    aik_sha256_hex(d, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_int_eq(aik_sha256_from_hex(hex, back), 0);
    ck_assert_mem_eq(back, d, 32);
    ck_assert_int_eq(aik_sha256_from_hex("zz", back), -EINVAL);
}
END_TEST

START_TEST(test_atomic_write_and_read)
{
    char *dir = aik_test_tmpdir();
    char *path, *data = NULL;
    size_t len = 0;
    struct stat st;
    uint8_t d1[32], d2[32];
    int fd;

    ck_assert_ptr_nonnull(dir);
    ck_assert_int_ge(asprintf(&path, "%s/f.bin", dir), 0);
    ck_assert_int_eq(aik_write_file_atomic(path, "hello", 5, 0600), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(aik_read_file(path, 100, &data, &len), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq(data, "hello");
    free(data);
    ck_assert_int_eq(aik_read_file(path, 4, &data, &len), -EFBIG);

    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(aik_sha256_fd(fd, d1), 0);
    close(fd);
    ck_assert_int_eq(aik_sha256_buf("hello", 5, d2), 0);
    ck_assert_mem_eq(d1, d2, 32);

    /* An aborted write leaves the old file untouched and no temp file. */
    {
        aik_atomic_file f;
        ck_assert_int_eq(aik_atomic_file_open(&f, path, 0600), 0);
        ck_assert_int_eq(aik_atomic_file_write(&f, "XXXXXXXX", 8), 0);
        aik_atomic_file_abort(&f);
    }
    ck_assert_int_eq(aik_read_file(path, 100, &data, &len), 0);
    ck_assert_str_eq(data, "hello");
    free(data);
    ck_assert_int_eq(aik_read_file("/nonexistent/x", 100, &data, &len), -ENOENT);
    aik_test_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_error_format);
    tcase_add_test(tc, test_dtype_sizes);
    tcase_add_test(tc, test_checked);
    tcase_add_test(tc, test_sha256_known_answer);
    tcase_add_test(tc, test_atomic_write_and_read);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
