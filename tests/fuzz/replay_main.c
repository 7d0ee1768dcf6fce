/* SPDX-License-Identifier: MIT */
/*
 * Driver for fuzz targets when libFuzzer is not available (gcc builds, the
 * fuzz-smoke suite). It feeds every file of the given corpus directories to
 * LLVMFuzzerTestOneInput, then a fixed number of deterministic mutations of
 * them (bit flips, byte overwrites with boundary values, truncations,
 * insertions, 32/64-bit field smashing). It is no substitute for coverage
 * guidance, but it runs on every build and catches crashes on the paths the
 * seeds reach. Usage: fuzz_X [-iterations=N] [-seed=S] DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint8_t *data;
    size_t size;
} blob;

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static int load_dir(const char *dir, blob **items, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d) {
        fprintf(stderr, "fuzz: cannot open corpus %s\n", dir);
        return -1;
    }
    while ((de = readdir(d))) {
        char path[4096];
        FILE *f;
        long len;
        blob b;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        f = fopen(path, "rb");
        if (!f)
            continue;
        if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
            fclose(f);
            continue;
        }
        b.size = (size_t)len;
        b.data = malloc(b.size ? b.size : 1);
        if (!b.data || fread(b.data, 1, b.size, f) != b.size) {
            free(b.data);
            fclose(f);
            continue;
        }
        fclose(f);
        *items = realloc(*items, (*n + 1) * sizeof(blob));
        (*items)[(*n)++] = b;
    }
    closedir(d);
    return 0;
}

static void mutate(uint8_t *buf, size_t *size, size_t cap)
{
    static const uint64_t smash[] = { 0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000u,
                                      0xffffffffu, 0xffffffffffffffffull, 0x8000000000000000ull };
    int rounds = 1 + (int)(rng() % 4);

    for (int r = 0; r < rounds; r++) {
        size_t pos = *size ? (size_t)(rng() % *size) : 0;
        switch (rng() % 6) {
        case 0: /* bit flip */
            if (*size)
                buf[pos] ^= (uint8_t)(1u << (rng() % 8));
            break;
        case 1: /* byte overwrite */
            if (*size)
                buf[pos] = (uint8_t)smash[rng() % 5];
            break;
        case 2: /* 32/64-bit field smash, aligned like header fields */
            pos &= ~(size_t)3;
            if (pos + 8 <= *size) {
                uint64_t v = smash[rng() % (sizeof(smash) / sizeof(smash[0]))];
                memcpy(buf + pos, &v, (rng() & 1) ? 8 : 4);
            }
            break;
        case 3: /* truncate */
            *size = pos;
            break;
        case 4: /* insert a byte */
            if (*size < cap) {
                memmove(buf + pos + 1, buf + pos, *size - pos);
                buf[pos] = (uint8_t)rng();
                (*size)++;
            }
            break;
        case 5: /* random byte */
            if (*size)
                buf[pos] = (uint8_t)rng();
            break;
        }
    }
}

int main(int argc, char **argv)
{
    blob *items = NULL;
    size_t n = 0;
    long iterations = 2000;

    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-iterations=", 12) == 0)
            iterations = atol(argv[i] + 12);
        else if (strncmp(argv[i], "-seed=", 6) == 0)
            rng_state = strtoull(argv[i] + 6, NULL, 0) | 1;
        else if (argv[i][0] != '-' && load_dir(argv[i], &items, &n) < 0)
            return 1;
    }
    for (size_t i = 0; i < n; i++)
        LLVMFuzzerTestOneInput(items[i].data, items[i].size);
    LLVMFuzzerTestOneInput(NULL, 0);
    for (long it = 0; it < iterations; it++) {
        const blob *src = n ? &items[rng() % n] : NULL;
        size_t size = src ? src->size : 0, cap = size + 64;
        uint8_t *buf = malloc(cap);
        if (!buf)
            return 1;
        if (src && size)
            memcpy(buf, src->data, size);
        mutate(buf, &size, cap);
        LLVMFuzzerTestOneInput(buf, size);
        free(buf);
    }
    printf("fuzz: %zu corpus files, %ld mutations, no crash\n", n, iterations);
    for (size_t i = 0; i < n; i++)
        free(items[i].data);
    free(items);
    return 0;
}
