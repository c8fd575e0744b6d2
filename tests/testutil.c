/* SPDX-License-Identifier: Apache-2.0 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_int kt_failures;
static jmp_buf kt_jmp;
static char *kt_dirs[256];
static size_t kt_ndirs;
static char *kt_paths[4096];
static size_t kt_npaths;

void
kt_fail(const char *file, int line, const char *expr)
{
    atomic_fetch_add(&kt_failures, 1);
    fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, expr);
}

void
kt_abort_test(void)
{
    longjmp(kt_jmp, 1);
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void
kt_cleanup(void)
{
    for (size_t i = 0; i < kt_ndirs; i++) {
        if (!getenv("KT_KEEP_TMP"))
            nftw(kt_dirs[i], rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(kt_dirs[i]);
    }
    kt_ndirs = 0;
    for (size_t i = 0; i < kt_npaths; i++)
        free(kt_paths[i]);
    kt_npaths = 0;
}

const char *
kt_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];

    if (!base || !*base)
        base = "/tmp";
    snprintf(tmpl, sizeof tmpl, "%s/kt-XXXXXX", base);
    if (!mkdtemp(tmpl) || kt_ndirs == KT_COUNT(kt_dirs)) {
        fprintf(stderr, "kt_tmpdir: %s\n", strerror(errno));
        abort();
    }
    kt_dirs[kt_ndirs] = strdup(tmpl);
    return kt_dirs[kt_ndirs++];
}

const char *
kt_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (!p)
        abort();
    snprintf(p, n, "%s/%s", dir, name);
    if (kt_npaths < KT_COUNT(kt_paths))
        kt_paths[kt_npaths++] = p;
    return p;
}

uint8_t *
kt_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        if (len)
            *len = (size_t)n;
    }
    return buf;
}

const char *
kt_vectors_dir(void)
{
    const char *d = getenv("KT_VECTORS_DIR");
#ifdef KT_VECTORS_DEFAULT
    if (!d)
        d = KT_VECTORS_DEFAULT;
#endif
    return d ? d : "tests/vectors";
}

int
kt_write_file(const char *path, const void *data, size_t len, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    size_t off = 0;

    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    fchmod(fd, (mode_t)mode);
    return close(fd);
}

uint8_t *
kt_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    uint8_t *out;

    if (n % 2)
        return NULL;
    out = malloc(n / 2 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            free(out);
            return NULL;
        }
        out[i] = (uint8_t)v;
    }
    if (len)
        *len = n / 2;
    return out;
}

/* Runs one case; kept apart from kt_main's loop so that longjmp cannot
 * clobber the loop's locals. Returns true if it passed. */
static bool
kt_run_one(const kt_case *c)
{
    int before = atomic_load(&kt_failures);

    if (setjmp(kt_jmp) == 0)
        c->fn();
    return atomic_load(&kt_failures) == before;
}

int
kt_main(int argc, char **argv, const kt_case *cases, size_t count)
{
    size_t passed = 0, failed = 0;

    atexit(kt_cleanup);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < count; i++) {
        bool selected = argc < 2;
        for (int a = 1; a < argc && !selected; a++)
            selected = strstr(cases[i].name, argv[a]) != NULL;
        if (!selected)
            continue;
        if (kt_run_one(&cases[i])) {
            passed++;
            printf("ok   %s\n", cases[i].name);
        } else {
            failed++;
            printf("FAIL %s\n", cases[i].name);
        }
    }
    printf("%zu passed, %zu failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
