/* SPDX-License-Identifier: Apache-2.0 */
/* libzapdb tests: operations (password change, rekey, verify, backup and
 * restore), tampering seen through raw LMDB, plaintext scans, crash safety
 * under SIGKILL and concurrency. */
#include "zt.h"

#include "kc.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define B(s) (const uint8_t *)(s), strlen(s)
#define P(s) (s), strlen(s)

/* ---- helpers ---------------------------------------------------------- */

static bool
get_equals(zap_db *db, const char *bucket, const char *key, const char *want)
{
    uint8_t *v = NULL;
    size_t n = 0;
    bool ok;

    if (zap_get(db, bucket, B(key), &v, &n) != ZAP_OK)
        return false;
    ok = n == strlen(want) && memcmp(v, want, n) == 0;
    zap_free(v, n);
    return ok;
}

static void
fill_store(zap_db *db, int records, size_t val_len)
{
    zap_txn *t = NULL;
    char key[32], *val = malloc(val_len + 1);

    REQUIRE(val);
    REQUIRE(zap_txn_begin(db, 0, &t) == ZAP_OK);
    for (int i = 0; i < records; i++) {
        snprintf(key, sizeof key, "key-%04d", i);
        memset(val, 'a' + i % 26, val_len);
        snprintf(val, val_len + 1, "value-%04d", i);
        val[strlen(val)] = '.';
        val[val_len] = '\0';
        REQUIRE(zap_txn_put(t, i % 2 ? "odd" : "even", B(key),
                            (const uint8_t *)val, val_len) == ZAP_OK);
    }
    REQUIRE(zap_txn_commit(t) == ZAP_OK);
    free(val);
}

/* 1 if every record written by fill_store() reads back right, 0 if any
 * is missing or wrong; counts ZAP_ECORRUPT answers in *corrupt. */
static bool
check_store(zap_db *db, int records, size_t val_len, int *corrupt)
{
    char key[32], *want = malloc(val_len + 1);
    bool all = true;

    if (!want)
        return false;
    for (int i = 0; i < records; i++) {
        uint8_t *v = NULL;
        size_t n = 0;
        zap_err rc;
        snprintf(key, sizeof key, "key-%04d", i);
        memset(want, 'a' + i % 26, val_len);
        snprintf(want, val_len + 1, "value-%04d", i);
        want[strlen(want)] = '.';
        rc = zap_get(db, i % 2 ? "odd" : "even", B(key), &v, &n);
        if (rc == ZAP_ECORRUPT && corrupt)
            (*corrupt)++;
        if (rc == ZAP_OK) {
            /* Never a wrong value: a good answer is the right one. */
            CHECK(n == val_len && memcmp(v, want, n) == 0);
            zap_free(v, n);
        } else {
            all = false;
        }
    }
    free(want);
    return all;
}

static MDB_env *
raw_env(const char *dir, unsigned flags, MDB_dbi *records)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;

    REQUIRE(mdb_env_create(&env) == 0);
    REQUIRE(mdb_env_set_maxdbs(env, 4) == 0);
    REQUIRE(mdb_env_set_mapsize(env, (size_t)256 << 20) == 0);
    REQUIRE(mdb_env_open(env, dir, flags, 0600) == 0);
    REQUIRE(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0);
    REQUIRE(mdb_dbi_open(txn, "zapdb.records", 0, records) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    return env;
}

/* With raw LMDB: mode 0 flips the last byte (the value's tag) of the
 * nth record in storage order; mode 1 overwrites record `nth` with a copy
 * of record `nth_src` (a valid ciphertext, but of another slot). */
static void
raw_mutate(const char *dir, size_t nth, int mode, size_t nth_src)
{
    MDB_dbi dbi;
    MDB_env *env = raw_env(dir, 0, &dbi);
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    MDB_val k, v, nv = {0, NULL};
    uint8_t kbuf[24], *src = NULL, *dst = NULL;
    size_t i = 0, src_len = 0, dst_len = 0;
    int rc;

    REQUIRE(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    REQUIRE(mdb_cursor_open(txn, dbi, &c) == 0);
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT), i++) {
        if (i == nth_src) {
            src = malloc(v.mv_size);
            REQUIRE(src);
            memcpy(src, v.mv_data, v.mv_size);
            src_len = v.mv_size;
        }
        if (i == nth) {
            REQUIRE(k.mv_size == sizeof kbuf);
            memcpy(kbuf, k.mv_data, sizeof kbuf);
            dst = malloc(v.mv_size);
            REQUIRE(dst);
            memcpy(dst, v.mv_data, v.mv_size);
            dst_len = v.mv_size;
        }
    }
    mdb_cursor_close(c);
    REQUIRE(src && dst);
    if (mode == 0) {
        dst[dst_len - 1] ^= 0x80;
        nv.mv_data = dst;
        nv.mv_size = dst_len;
    } else {
        nv.mv_data = src;
        nv.mv_size = src_len;
    }
    k.mv_data = kbuf;
    k.mv_size = sizeof kbuf;
    REQUIRE(mdb_put(txn, dbi, &k, &nv, 0) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    free(src);
    free(dst);
}

/* BLAKE2b over every raw record (key and ciphertext), in storage order. */
static void
raw_digest(const char *dir, uint8_t out[32])
{
    MDB_dbi dbi;
    MDB_env *env = raw_env(dir, MDB_RDONLY, &dbi);
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    MDB_val k, v;
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, 32);
    REQUIRE(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0);
    REQUIRE(mdb_cursor_open(txn, dbi, &c) == 0);
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        crypto_generichash_update(&st, k.mv_data, k.mv_size);
        crypto_generichash_update(&st, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    crypto_generichash_final(&st, out, 32);
}

/* ---- password and key changes ---------------------------------------- */

static void
test_passwd_change_old_fails_new_works(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_db *db = zt_create(dir);
    zap_opts o = zt_opts(0);

    fill_store(db, 20, 64);
    CHECK_EQ(zap_change_password(db, "", 0, NULL), ZAP_EINVAL);
    CHECK_EQ(zap_change_key(db, zt_raw_key(1)), ZAP_EINVAL);
    o.kdf_opslimit = 2;
    REQUIRE(zap_change_password(db, P("new-password"), &o) == ZAP_OK);
    /* The handle keeps working after the change. */
    CHECK(check_store(db, 20, 64, NULL));
    REQUIRE(zap_put(db, "even", B("after"), B("change")) == ZAP_OK);
    zap_close(db);
    CHECK(zt_reopen(dir, ZT_PASSWORD) == NULL);
    db = zt_reopen(dir, "new-password");
    REQUIRE(db);
    CHECK(check_store(db, 20, 64, NULL));
    CHECK(get_equals(db, "even", "after", "change"));
    zap_stats st;
    REQUIRE(zap_get_stats(db, &st) == ZAP_OK);
    CHECK_EQ(st.kdf_opslimit, 2);
    CHECK_EQ(st.dek_generation, 1); /* DEK untouched */
    CHECK_EQ(zap_verify(db, NULL, NULL, NULL, NULL, NULL), ZAP_OK);
    zap_close(db);
}

static void
test_passwd_change_key_raw_store_rewraps(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_opts o = zt_opts(ZAP_CREATE);
    zap_db *db = NULL;

    REQUIRE(zap_open_key(dir, &o, zt_raw_key(1), &db) == ZAP_OK);
    fill_store(db, 10, 32);
    CHECK_EQ(zap_change_password(db, P("pw"), NULL), ZAP_EINVAL);
    REQUIRE(zap_change_key(db, zt_raw_key(2)) == ZAP_OK);
    zap_close(db);
    db = NULL;
    o.flags = 0;
    CHECK_EQ(zap_open_key(dir, &o, zt_raw_key(1), &db), ZAP_EAUTH);
    REQUIRE(zap_open_key(dir, &o, zt_raw_key(2), &db) == ZAP_OK);
    CHECK(check_store(db, 10, 32, NULL));
    zap_close(db);
}

/* ---- rekey ------------------------------------------------------------ */

static int
progress_count(void *ctx, uint64_t done, uint64_t total)
{
    uint64_t *last = ctx;
    CHECK(total == 0 || done <= total);
    *last = done;
    return 0;
}

static int
progress_cancel(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx, (void)done, (void)total;
    return 1;
}

static void
test_rekey_new_generation_all_records_readable(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_db *db = zt_create(dir);
    zap_stats st;
    uint64_t last = 0;
    uint8_t before[32], after[32];

    fill_store(db, 600, 100);
    REQUIRE(zap_bucket_create(db, "empty") == ZAP_OK);
    REQUIRE(zap_rekey(db, progress_count, &last) == ZAP_OK);
    CHECK_EQ(last, 603); /* 600 records + 3 bucket records */
    REQUIRE(zap_get_stats(db, &st) == ZAP_OK);
    CHECK_EQ(st.dek_generation, 2);
    CHECK(check_store(db, 600, 100, NULL));
    REQUIRE(zap_rekey(db, NULL, NULL) == ZAP_OK);
    REQUIRE(zap_get_stats(db, &st) == ZAP_OK);
    CHECK_EQ(st.dek_generation, 3);
    CHECK_EQ(st.buckets, 3);
    zap_close(db);
    /* Cancelling leaves every record exactly as it was. */
    raw_digest(dir, before);
    db = zt_reopen(dir, ZT_PASSWORD);
    REQUIRE(db);
    CHECK_EQ(zap_rekey(db, progress_cancel, NULL), ZAP_EBUSY);
    REQUIRE(zap_get_stats(db, &st) == ZAP_OK);
    CHECK_EQ(st.dek_generation, 3);
    CHECK(check_store(db, 600, 100, NULL));
    zap_close(db);
    raw_digest(dir, after);
    CHECK_MEM(before, after, 32);
}

/* Run `fn(dir)` in a child process with its own handle; true if it
 * exited 0. */
static bool
in_child(const char *dir, int (*fn)(const char *))
{
    int status = 0;
    pid_t pid = fork();

    REQUIRE(pid >= 0);
    if (pid == 0)
        _exit(fn(dir));
    REQUIRE(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int
child_rekey_and_put(const char *dir)
{
    zap_db *db = zt_reopen(dir, ZT_PASSWORD);
    int rc = 0;

    if (!db)
        return 10;
    if (!get_equals(db, "even", "parent", "before"))
        rc = 11;
    else if (zap_rekey(db, NULL, NULL) != ZAP_OK)
        rc = 12;
    else if (zap_put(db, "even", B("new"), B("gen2")) != ZAP_OK)
        rc = 13;
    zap_close(db);
    return rc;
}

static int
child_reads_parent_write(const char *dir)
{
    zap_db *db = zt_reopen(dir, ZT_PASSWORD);
    int rc = 0;

    if (!db)
        return 10;
    if (!get_equals(db, "odd", "from-parent", "x"))
        rc = 11;
    else if (zap_verify(db, NULL, NULL, NULL, NULL, NULL) != ZAP_OK)
        rc = 12;
    zap_close(db);
    return rc;
}

/* Another process rekeys and writes while this one keeps its handle open:
 * this handle learns the new generation from the header and both processes
 * read each other's records. */
static void
test_rekey_by_other_process_seen_by_open_handle(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_db *a = zt_create(dir);
    zap_txn *snap = NULL;
    zap_stats st;

    fill_store(a, 50, 40);
    REQUIRE(zap_put(a, "even", B("parent"), B("before")) == ZAP_OK);
    /* A second handle in this process is refused (LMDB lock rule). */
    CHECK(zt_reopen(dir, ZT_PASSWORD) == NULL);
    REQUIRE(zap_txn_begin(a, ZAP_TXN_RDONLY, &snap) == ZAP_OK);
    REQUIRE(in_child(dir, child_rekey_and_put));
    /* The old snapshot still reads the old generation. */
    uint8_t *v = NULL;
    size_t n = 0;
    CHECK_EQ(zap_txn_get(snap, "even", B("new"), &v, &n), ZAP_ENOTFOUND);
    zap_txn_abort(snap);
    CHECK(check_store(a, 50, 40, NULL));
    CHECK(get_equals(a, "even", "new", "gen2"));
    REQUIRE(zap_get_stats(a, &st) == ZAP_OK);
    CHECK_EQ(st.dek_generation, 2);
    REQUIRE(zap_put(a, "odd", B("from-parent"), B("x")) == ZAP_OK);
    CHECK(in_child(dir, child_reads_parent_write));
    CHECK_EQ(zap_verify(a, NULL, NULL, NULL, NULL, NULL), ZAP_OK);
    zap_close(a);
    /* Closed: this process may open it again. */
    a = zt_reopen(dir, ZT_PASSWORD);
    CHECK(a != NULL);
    zap_close(a);
}

/* ---- tampering -------------------------------------------------------- */

typedef struct bad_list {
    int count;
    char bucket[8][32];
    uint64_t pos[8];
} bad_list;

static void
on_bad(void *ctx, const char *bucket, uint64_t position, zap_err err)
{
    bad_list *l = ctx;

    CHECK_EQ(err, ZAP_ECORRUPT);
    if (l->count < 8) {
        snprintf(l->bucket[l->count], sizeof l->bucket[0], "%s",
                 bucket ? bucket : "(null)");
        l->pos[l->count] = position;
    }
    l->count++;
}

static void
test_verify_tampered_record_reported_by_bucket(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_db *db = zt_create(dir);
    zap_verify_report rep;
    bad_list bad = {0};
    uint64_t last = 0;
    int corrupt = 0;

    fill_store(db, 40, 50);
    CHECK_EQ(zap_verify(db, on_bad, &bad, progress_count, &last, &rep), ZAP_OK);
    CHECK_EQ(rep.records, 40);
    CHECK_EQ(rep.buckets, 2);
    CHECK_EQ(rep.bad, 0);
    CHECK_EQ(bad.count, 0);
    CHECK_EQ(last, 42);
    zap_close(db);
    raw_mutate(dir, 7, 0, 0);
    db = zt_reopen(dir, ZT_PASSWORD);
    REQUIRE(db);
    CHECK_EQ(zap_verify(db, on_bad, &bad, NULL, NULL, &rep), ZAP_ECORRUPT);
    CHECK_EQ(rep.records, 40);
    CHECK_EQ(rep.bad, 1);
    REQUIRE(bad.count == 1);
    CHECK(strcmp(bad.bucket[0], "even") == 0 ||
          strcmp(bad.bucket[0], "odd") == 0);
    CHECK(bad.pos[0] < 20);
    CHECK(!check_store(db, 40, 50, &corrupt));
    CHECK_EQ(corrupt, 1);
    /* The diagnostic names the bucket, never key or value. */
    const char *d = zap_last_error_detail(db);
    CHECK(strstr(d, "failed authentication") != NULL);
    CHECK(strstr(d, "value-") == NULL && strstr(d, "key-") == NULL);
    zap_close(db);
}

static void *
detail_thread(void *arg)
{
    const char *d = zap_last_error_detail(arg);
    return (void *)(uintptr_t)(d[0] == '\0');
}

static void
test_error_detail_is_per_thread_and_handle(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_db *db = zt_create(dir), *other = NULL;
    uint8_t *v = NULL;
    size_t n = 0;
    pthread_t th;
    void *res = NULL;

    CHECK(strcmp(zap_last_error_detail(NULL), "") == 0);
    REQUIRE(zap_put(db, "secret-bucket", B("secret-key"), B("secret-val")) ==
            ZAP_OK);
    zap_close(db);
    raw_mutate(dir, 0, 0, 0);
    db = zt_reopen(dir, ZT_PASSWORD);
    other = zt_create(NULL);
    REQUIRE(db && other);
    CHECK(strcmp(zap_last_error_detail(db), "") == 0);
    CHECK_EQ(zap_get(db, "secret-bucket", B("secret-key"), &v, &n),
             ZAP_ECORRUPT);
    CHECK(v == NULL);
    const char *d = zap_last_error_detail(db);
    CHECK(strstr(d, "secret-bucket") != NULL);
    CHECK(strstr(d, "secret-key") == NULL && strstr(d, "secret-val") == NULL);
    CHECK(strcmp(zap_last_error_detail(other), "") == 0);
    REQUIRE(pthread_create(&th, NULL, detail_thread, db) == 0);
    pthread_join(th, &res);
    CHECK(res == (void *)1);
    zap_close(db);
    zap_close(other);
}

static void
test_record_copied_to_other_slot_detected(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_db *db = zt_create(dir);
    int corrupt = 0;
    bad_list bad = {0};

    fill_store(db, 10, 30);
    zap_close(db);
    /* A valid ciphertext of record 2 pasted over record 5's slot. */
    raw_mutate(dir, 5, 1, 2);
    db = zt_reopen(dir, ZT_PASSWORD);
    REQUIRE(db);
    CHECK(!check_store(db, 10, 30, &corrupt));
    CHECK_EQ(corrupt, 1);
    CHECK_EQ(zap_verify(db, on_bad, &bad, NULL, NULL, NULL), ZAP_ECORRUPT);
    CHECK_EQ(bad.count, 1);
    zap_close(db);
}

typedef struct span {
    size_t off, len;
} span;

/* Where the raw LMDB environment mapped `path` in this process (LMDB keeps
 * stale copies of moved nodes in the free space of pages, so searching the
 * file for a value's bytes could find a dead copy; the map gives the live
 * one). */
static const uint8_t *
map_base(const char *path)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    unsigned long start = 0, off = 1;

    REQUIRE(f);
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n > strlen(path) && strcmp(line + n - strlen(path), path) == 0 &&
            sscanf(line, "%lx-%*x %*s %lx", &start, &off) == 2)
            break;
        start = 0;
    }
    fclose(f);
    REQUIRE(start && off == 0);
    return (const uint8_t *)start;
}

/* File offsets of every live record value and of the header value. */
static size_t
payload_spans(const char *dir, span *out, size_t cap, span *hdr)
{
    MDB_dbi dbi, meta;
    MDB_env *env = raw_env(dir, MDB_RDONLY, &dbi);
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    MDB_val k, v;
    const uint8_t *base = map_base(kt_path(dir, "data.mdb"));
    size_t n = 0;
    int rc;

    REQUIRE(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0);
    REQUIRE(mdb_dbi_open(txn, "zapdb.meta", 0, &meta) == 0);
    k.mv_size = 6;
    k.mv_data = "header";
    REQUIRE(mdb_get(txn, meta, &k, &v) == 0);
    hdr->off = (size_t)((const uint8_t *)v.mv_data - base);
    hdr->len = v.mv_size;
    REQUIRE(mdb_cursor_open(txn, dbi, &c) == 0);
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && n < cap;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        out[n].off = (size_t)((const uint8_t *)v.mv_data - base);
        out[n].len = v.mv_size;
        n++;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

static void
test_bitflip_in_data_file_detected(void)
{
    const char *src = kt_path(kt_tmpdir(), "s");
    zap_db *db = zt_create(src);
    span spans[64], hdr;
    size_t n, file_len = 0;
    uint8_t *orig;
    const char *base;
    int detected = 0;

    fill_store(db, 30, 300);
    zap_close(db);
    orig = kt_read_all(kt_path(src, "data.mdb"), &file_len);
    REQUIRE(orig);
    base = kt_tmpdir();
    n = payload_spans(src, spans, 64, &hdr);
    REQUIRE(n == 30);
    for (int round = 0; round < 80; round++) {
        char dir[4096];
        bool in_header = round % 10 == 9;
        const span *s = in_header ? &hdr : &spans[randombytes_uniform(n)];
        size_t off = s->off + randombytes_uniform((uint32_t)s->len);
        uint8_t bit = (uint8_t)(1u << randombytes_uniform(8));
        int corrupt = 0;
        zap_db *t = NULL;

        REQUIRE(off < file_len);
        snprintf(dir, sizeof dir, "%s/round-%d", base, round);
        REQUIRE(mkdir(dir, 0700) == 0);
        orig[off] ^= bit;
        REQUIRE(kt_write_file(kt_path(dir, "data.mdb"), orig, file_len, 0600) ==
                0);
        orig[off] ^= bit;
        t = zt_reopen(dir, ZT_PASSWORD);
        if (in_header) {
            /* A damaged header never opens. */
            CHECK(t == NULL);
            zap_close(t);
            detected++;
            kc_rmtree(dir);
            continue;
        }
        REQUIRE(t);
        /* Exactly the damaged record fails, every other one reads right. */
        CHECK(!check_store(t, 30, 300, &corrupt));
        CHECK_EQ(corrupt, 1);
        CHECK_EQ(zap_verify(t, NULL, NULL, NULL, NULL, NULL), ZAP_ECORRUPT);
        detected += corrupt == 1;
        zap_close(t);
        kc_rmtree(dir);
    }
    CHECK_EQ(detected, 80);
    free(orig);
}

static void
test_truncated_data_file_fails_cleanly(void)
{
    const char *src = kt_path(kt_tmpdir(), "s");
    zap_db *db = zt_create(src);
    size_t len = 0;
    uint8_t *orig;
    const size_t cuts[] = {0, 100, 4096, 8192, 12288};

    fill_store(db, 200, 200);
    zap_close(db);
    orig = kt_read_all(kt_path(src, "data.mdb"), &len);
    REQUIRE(orig && len > 40000);
    for (size_t i = 0; i < KT_COUNT(cuts) + 1; i++) {
        const char *dir = kt_path(src, "cut");
        size_t cut = i < KT_COUNT(cuts) ? cuts[i] : len / 2;
        zap_db *t = NULL;
        REQUIRE(mkdir(dir, 0700) == 0);
        REQUIRE(kt_write_file(kt_path(dir, "data.mdb"), orig, cut, 0600) == 0);
        zap_opts o = zt_opts(0);
        zap_err rc = zap_open(dir, &o, P(ZT_PASSWORD), &t);
        CHECK(rc != ZAP_OK);
        CHECK(t == NULL);
        kc_rmtree(dir);
    }
    free(orig);
}

/* ---- no plaintext on disk --------------------------------------------- */

static void
test_no_plaintext_markers_on_disk(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    const char *bk = kt_path(kt_tmpdir(), "backup.zbk");
    static const char *markers[] = {"MARKERBUCKETq7f3a", "MARKERKEYz19c2",
                                    "MARKERVALUEw88d1", "MARKERSMALLv5"};
    zap_db *db = zt_create(dir);
    char big[4096];
    const char *files[] = {"data.mdb", "lock.mdb"};

    for (size_t i = 0; i + 16 < sizeof big; i += 16)
        memcpy(big + i, "MARKERVALUEw88d1", 16);
    REQUIRE(zap_put(db, markers[0], B(markers[1]), (const uint8_t *)big,
                    sizeof big) == ZAP_OK);
    REQUIRE(zap_put(db, markers[0], B("k2"), B(markers[3])) == ZAP_OK);
    REQUIRE(zap_put(db, "b", B(markers[3]), B("x")) == ZAP_OK);
    REQUIRE(zap_bucket_create(db, "MARKERSMALLv5-bucket") == ZAP_OK);
    REQUIRE(zap_rekey(db, NULL, NULL) == ZAP_OK);
    REQUIRE(zap_change_password(db, P("MARKERPASSWORDx1"), NULL) == ZAP_OK);
    REQUIRE(zap_backup(db, bk, NULL, NULL) == ZAP_OK);
    zap_close(db);
    for (size_t f = 0; f < 3; f++) {
        size_t n = 0;
        uint8_t *d = kt_read_all(f < 2 ? kt_path(dir, files[f]) : bk, &n);
        REQUIRE(d && n > 0);
        for (size_t m = 0; m < KT_COUNT(markers); m++)
            CHECK(!zt_contains(d, n, markers[m], strlen(markers[m])));
        CHECK(!zt_contains(d, n, "MARKER", 6));
        CHECK(!zt_contains(d, n, ZT_PASSWORD, strlen(ZT_PASSWORD)));
        free(d);
    }
}

/* ---- backup and restore ----------------------------------------------- */

static void
test_backup_restore_roundtrip_same_content(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    const char *bk = kt_path(kt_tmpdir(), "b.zbk");
    const char *dst = kt_path(kt_tmpdir(), "restored");
    zap_db *db = zt_create(dir);
    zap_opts o = zt_opts(0);
    uint8_t *big = malloc(3u << 20), *v = NULL;
    size_t n = 0;
    char **names = NULL;
    size_t count = 0;
    uint64_t last = 0;
    struct stat sb;

    REQUIRE(big);
    fill_store(db, 300, 50);
    for (size_t i = 0; i < (3u << 20); i++)
        big[i] = (uint8_t)(i * 31 + 7);
    REQUIRE(zap_put(db, "big", B("3mib"), big, 3u << 20) == ZAP_OK);
    REQUIRE(zap_put(db, "big", B("empty"), NULL, 0) == ZAP_OK);
    REQUIRE(zap_bucket_create(db, "no-records") == ZAP_OK);
    REQUIRE(zap_backup(db, bk, progress_count, &last) == ZAP_OK);
    CHECK_EQ(last, 302);
    REQUIRE(stat(bk, &sb) == 0);
    CHECK_EQ(sb.st_mode & 0777, 0600);
    zap_close(db);
    last = 0;
    REQUIRE(zap_restore(bk, dst, &o, P(ZT_PASSWORD), progress_count, &last) ==
            ZAP_OK);
    CHECK_EQ(last, 302);
    db = zt_reopen(dst, ZT_PASSWORD);
    REQUIRE(db);
    CHECK(check_store(db, 300, 50, NULL));
    REQUIRE(zap_get(db, "big", B("3mib"), &v, &n) == ZAP_OK);
    CHECK(n == (3u << 20) && memcmp(v, big, n) == 0);
    zap_free(v, n);
    REQUIRE(zap_get(db, "big", B("empty"), &v, &n) == ZAP_OK);
    CHECK_EQ(n, 0);
    zap_free(v, n);
    REQUIRE(zap_bucket_list(db, &names, &count) == ZAP_OK);
    CHECK_EQ(count, 4);
    zap_list_free(names, count);
    CHECK_EQ(zap_verify(db, NULL, NULL, NULL, NULL, NULL), ZAP_OK);
    zap_close(db);
    /* Restoring over a non-empty directory is refused. */
    CHECK_EQ(zap_restore(bk, dst, &o, P(ZT_PASSWORD), NULL, NULL), ZAP_EEXIST);
    CHECK_EQ(zap_restore(kt_path(dir, "missing"), kt_path(dir, "x"), &o,
                         P(ZT_PASSWORD), NULL, NULL),
             ZAP_ENOSTORE);
    free(big);
}

static void
test_restore_wrong_password_eauth_nothing_created(void)
{
    const char *bk = kt_path(kt_tmpdir(), "b.zbk");
    const char *dst = kt_path(kt_tmpdir(), "restored");
    zap_db *db = zt_create(NULL);
    zap_opts o = zt_opts(0);
    struct stat sb;

    fill_store(db, 5, 10);
    REQUIRE(zap_backup(db, bk, NULL, NULL) == ZAP_OK);
    zap_close(db);
    CHECK_EQ(zap_restore(bk, dst, &o, P("wrong"), NULL, NULL), ZAP_EAUTH);
    CHECK(stat(dst, &sb) != 0 && errno == ENOENT);
    CHECK_EQ(zap_restore_key(bk, dst, &o, zt_raw_key(3), NULL, NULL),
             ZAP_EAUTH);
    CHECK(stat(dst, &sb) != 0);
    CHECK_EQ(zap_restore(bk, dst, &o, "", 0, NULL, NULL), ZAP_EINVAL);
}

static void
test_restore_raw_key_backup_roundtrip(void)
{
    const char *bk = kt_path(kt_tmpdir(), "b.zbk");
    const char *dst = kt_path(kt_tmpdir(), "restored");
    zap_opts o = zt_opts(ZAP_CREATE);
    zap_db *db = NULL;

    REQUIRE(zap_open_key(kt_path(kt_tmpdir(), "s"), &o, zt_raw_key(9), &db) ==
            ZAP_OK);
    fill_store(db, 12, 12);
    REQUIRE(zap_backup(db, bk, NULL, NULL) == ZAP_OK);
    zap_close(db);
    db = NULL;
    CHECK_EQ(zap_restore(bk, dst, &o, P("pw"), NULL, NULL), ZAP_EAUTH);
    CHECK_EQ(zap_restore_key(bk, dst, &o, zt_raw_key(8), NULL, NULL),
             ZAP_EAUTH);
    REQUIRE(zap_restore_key(bk, dst, &o, zt_raw_key(9), NULL, NULL) == ZAP_OK);
    o.flags = 0;
    REQUIRE(zap_open_key(dst, &o, zt_raw_key(9), &db) == ZAP_OK);
    CHECK(check_store(db, 12, 12, NULL));
    zap_close(db);
}

static void
test_restore_tampered_or_truncated_backup_ecorrupt(void)
{
    const char *bk = kt_path(kt_tmpdir(), "b.zbk");
    const char *bad = kt_path(kt_tmpdir(), "bad.zbk");
    const char *dst = kt_path(kt_tmpdir(), "r");
    zap_db *db = zt_create(NULL);
    zap_opts o = zt_opts(0);
    uint8_t *d;
    size_t n = 0;
    struct stat sb;

    fill_store(db, 40, 100);
    REQUIRE(zap_backup(db, bk, NULL, NULL) == ZAP_OK);
    zap_close(db);
    d = kt_read_all(bk, &n);
    REQUIRE(d && n > 2000);
    /* Truncations at many lengths, including just before the end. Each
     * failed restore removes `dst`, so the next one can reuse it. */
    for (int i = 0; i < 24; i++) {
        size_t cut = i < 20 ? (size_t)randombytes_uniform((uint32_t)n)
                            : n - (size_t)(i - 19);
        REQUIRE(kt_write_file(bad, d, cut, 0600) == 0);
        zap_err rc = zap_restore(bad, dst, &o, P(ZT_PASSWORD), NULL, NULL);
        CHECK(rc == ZAP_ECORRUPT || (cut < 200 && rc == ZAP_EAUTH));
        CHECK(stat(dst, &sb) != 0); /* removed */
    }
    /* Bit flips past the header: each one is caught. */
    for (int i = 0; i < 24; i++) {
        size_t off = 104 + randombytes_uniform((uint32_t)(n - 104));
        d[off] ^= 0x10;
        REQUIRE(kt_write_file(bad, d, n, 0600) == 0);
        d[off] ^= 0x10;
        zap_err rc = zap_restore(bad, dst, &o, P(ZT_PASSWORD), NULL, NULL);
        CHECK(rc == ZAP_ECORRUPT || rc == ZAP_EAUTH);
        CHECK(stat(dst, &sb) != 0);
    }
    /* Trailing garbage after the final message. */
    {
        uint8_t *ext = malloc(n + 1);
        REQUIRE(ext);
        memcpy(ext, d, n);
        ext[n] = 0;
        REQUIRE(kt_write_file(bad, ext, n + 1, 0600) == 0);
        CHECK_EQ(zap_restore(bad, dst, &o, P(ZT_PASSWORD), NULL, NULL),
                 ZAP_ECORRUPT);
        free(ext);
    }
    /* Absurd KDF cost in the header is refused before any work. */
    {
        uint8_t save = d[23];
        d[23] = 0x7f;
        REQUIRE(kt_write_file(bad, d, n, 0600) == 0);
        CHECK_EQ(zap_restore(bad, dst, &o, P(ZT_PASSWORD), NULL, NULL),
                 ZAP_ECORRUPT);
        d[23] = save;
    }
    free(d);
}

/* The fuzz corpus carries one real backup (fuzz/corpus/zapdb_backup).
 * With ZT_WRITE_SEED=1 this test regenerates it; it always checks that
 * the committed file restores with "fuzz-password", which also pins the
 * backup format. */
static void
test_backup_committed_seed_restores(void)
{
    const char *seed =
        ZT_SOURCE_DIR "/fuzz/corpus/zapdb_backup/real_backup.zbk";
    const char *dst = kt_path(kt_tmpdir(), "r");
    zap_opts o = zt_opts(ZAP_CREATE);
    zap_db *db = NULL;
    uint64_t c = 0;
    zap_txn *t = NULL;

    if (getenv("ZT_WRITE_SEED")) {
        REQUIRE(zap_open(kt_path(kt_tmpdir(), "s"), &o, P("fuzz-password"),
                         &db) == ZAP_OK);
        REQUIRE(zap_put(db, "alpha", B("k1"), B("v1")) == ZAP_OK);
        REQUIRE(zap_put(db, "alpha", B("k2"), NULL, 0) == ZAP_OK);
        REQUIRE(zap_put(db, "beta", B("k\0x"), B("binary")) == ZAP_OK);
        REQUIRE(zap_bucket_create(db, "gamma") == ZAP_OK);
        REQUIRE(zap_backup(db, seed, NULL, NULL) == ZAP_OK);
        zap_close(db);
        db = NULL;
    }
    REQUIRE(zap_restore(seed, dst, &o, P("fuzz-password"), NULL, NULL) ==
            ZAP_OK);
    db = zt_reopen(dst, "fuzz-password");
    REQUIRE(db);
    CHECK(get_equals(db, "alpha", "k1", "v1"));
    CHECK(get_equals(db, "alpha", "k2", ""));
    CHECK(get_equals(db, "beta", "k", "binary"));
    REQUIRE(zap_txn_begin(db, ZAP_TXN_RDONLY, &t) == ZAP_OK);
    CHECK_EQ(zap_txn_count(t, "gamma", &c), ZAP_OK);
    CHECK_EQ(c, 0);
    zap_txn_abort(t);
    zap_close(db);
}

/* ---- crash safety ----------------------------------------------------- */

#define CRASH_BUCKETS 3
#define CRASH_READY   UINT64_MAX /* "store open": the clock starts now */

static void
crash_writer(const char *dir, uint64_t next, int wfd)
{
    const uint64_t ready = CRASH_READY;
    zap_opts o = zt_opts(ZAP_CREATE);
    zap_db *db = NULL;
    char bucket[16], key[32], val[600];

    o.sync = ZAP_SYNC_META;
    if (zap_open(dir, &o, P(ZT_PASSWORD), &db) != ZAP_OK)
        _exit(2);
    if (write(wfd, &ready, sizeof ready) != sizeof ready)
        _exit(6);
    for (;; next++) {
        zap_txn *t = NULL;
        if (zap_txn_begin(db, 0, &t) != ZAP_OK)
            _exit(3);
        for (int b = 0; b < CRASH_BUCKETS; b++) {
            snprintf(bucket, sizeof bucket, "crash-%d", b);
            snprintf(key, sizeof key, "txn-%llu", (unsigned long long)next);
            memset(val, 'v', sizeof val);
            snprintf(val, sizeof val, "%llu/%d", (unsigned long long)next, b);
            if (zap_txn_put(t, bucket, B(key), (const uint8_t *)val,
                            sizeof val) != ZAP_OK)
                _exit(4);
        }
        if (zap_txn_commit(t) != ZAP_OK)
            _exit(5);
        if (write(wfd, &next, sizeof next) != sizeof next)
            _exit(6);
    }
}

static void
crash_rekeyer(const char *dir, int wfd)
{
    const uint64_t ready = CRASH_READY;
    zap_opts o = zt_opts(0);
    zap_db *db = NULL;
    uint64_t n = 0;

    o.sync = ZAP_SYNC_META;
    if (zap_open(dir, &o, P(ZT_PASSWORD), &db) != ZAP_OK)
        _exit(2);
    if (write(wfd, &ready, sizeof ready) != sizeof ready)
        _exit(6);
    for (;; n++) {
        if (zap_rekey(db, NULL, NULL) != ZAP_OK)
            _exit(3);
        if (write(wfd, &n, sizeof n) != sizeof n)
            _exit(6);
    }
}

/* Fork a child running the writer or the rekeyer; once it reports its
 * store open, let it work for a random 1..max_ms, SIGKILL it, and return
 * the highest value it acknowledged (or `none`). */
static uint64_t
run_and_kill(const char *dir, uint64_t next, bool rekey, unsigned max_ms,
             uint64_t none, int *acks)
{
    int fds[2];
    pid_t pid;
    uint64_t v, best = none;
    struct timespec ts;
    unsigned ms = 1 + randombytes_uniform(max_ms);
    int status = 0;

    REQUIRE(pipe(fds) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (rekey)
            crash_rekeyer(dir, fds[1]);
        else
            crash_writer(dir, next, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    CHECK(read(fds[0], &v, sizeof v) == sizeof v && v == CRASH_READY);
    ts.tv_sec = 0;
    ts.tv_nsec = (long)ms * 1000000L;
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status)); /* it was still working, not failing */
    while (read(fds[0], &v, sizeof v) == sizeof v) {
        CHECK(v != CRASH_READY);
        best = v;
        (*acks)++;
    }
    close(fds[0]);
    return best;
}

static void
test_crash_sigkill_during_commits_keeps_acked_txns(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    uint64_t acked = 0, next = 1;
    int acks = 0;
    zap_db *db;
    char bucket[16], key[32], val[600];
    uint64_t counts[CRASH_BUCKETS];
    zap_txn *t = NULL;

    for (int cycle = 0; cycle < 60; cycle++) {
        uint64_t got = run_and_kill(dir, next, false, 40, 0, &acks);
        if (got) {
            acked = got > acked ? got : acked;
            next = acked + 1;
        }
    }
    CHECK(acks > 0);
    db = zt_reopen(dir, ZT_PASSWORD);
    REQUIRE(db);
    /* Every acknowledged transaction is there, whole. */
    for (uint64_t i = 1; i <= acked; i++)
        for (int b = 0; b < CRASH_BUCKETS; b++) {
            snprintf(bucket, sizeof bucket, "crash-%d", b);
            snprintf(key, sizeof key, "txn-%llu", (unsigned long long)i);
            memset(val, 'v', sizeof val);
            snprintf(val, sizeof val, "%llu/%d", (unsigned long long)i, b);
            uint8_t *v = NULL;
            size_t n = 0;
            REQUIRE(zap_get(db, bucket, B(key), &v, &n) == ZAP_OK);
            CHECK(n == sizeof val && memcmp(v, val, n) == 0);
            zap_free(v, n);
        }
    /* Nothing half-applied: each bucket holds the same transactions. */
    REQUIRE(zap_txn_begin(db, ZAP_TXN_RDONLY, &t) == ZAP_OK);
    for (int b = 0; b < CRASH_BUCKETS; b++) {
        snprintf(bucket, sizeof bucket, "crash-%d", b);
        REQUIRE(zap_txn_count(t, bucket, &counts[b]) == ZAP_OK);
        CHECK_EQ(counts[b], counts[0]);
    }
    CHECK(counts[0] == acked || counts[0] == acked + 1);
    zap_txn_abort(t);
    CHECK_EQ(zap_verify(db, NULL, NULL, NULL, NULL, NULL), ZAP_OK);
    zap_close(db);
}

static void
test_crash_sigkill_during_rekey_store_readable(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_db *db = zt_create(dir);
    int acks = 0;
    zap_stats st;
    uint64_t gen_before = 1;

    fill_store(db, 300, 200);
    zap_close(db);
    for (int cycle = 0; cycle < 25; cycle++) {
        run_and_kill(dir, 0, true, 60, 0, &acks);
        db = zt_reopen(dir, ZT_PASSWORD);
        REQUIRE(db);
        CHECK(check_store(db, 300, 200, NULL));
        REQUIRE(zap_get_stats(db, &st) == ZAP_OK);
        CHECK(st.dek_generation >= gen_before);
        gen_before = st.dek_generation;
        zap_close(db);
    }
    CHECK(acks > 0); /* some rotations completed, others were cut */
    db = zt_reopen(dir, ZT_PASSWORD);
    REQUIRE(db);
    CHECK_EQ(zap_verify(db, NULL, NULL, NULL, NULL, NULL), ZAP_OK);
    REQUIRE(zap_get_stats(db, &st) == ZAP_OK);
    CHECK(st.dek_generation >= 2);
    zap_close(db);
}

/* ---- concurrency ------------------------------------------------------ */

#define CONC_KEYS 8

typedef struct conc {
    zap_db *db;
    atomic_bool stop;
    atomic_long reads;
} conc;

static void *
conc_reader(void *arg)
{
    conc *c = arg;
    char key[16];

    while (!atomic_load(&c->stop)) {
        zap_txn *t = NULL;
        long first = -1;
        if (zap_txn_begin(c->db, ZAP_TXN_RDONLY, &t) != ZAP_OK) {
            CHECK(0);
            break;
        }
        for (int i = 0; i < CONC_KEYS; i++) {
            uint8_t *v = NULL;
            size_t n = 0;
            snprintf(key, sizeof key, "k%d", i);
            zap_err rc = zap_txn_get(t, "conc", B(key), &v, &n);
            CHECK(rc == ZAP_OK);
            if (rc != ZAP_OK)
                continue;
            char buf[32] = {0};
            memcpy(buf, v, n < 31 ? n : 31);
            zap_free(v, n);
            long val = strtol(buf, NULL, 10);
            if (first < 0)
                first = val;
            CHECK_EQ(val, first); /* one snapshot: one generation */
        }
        zap_txn_abort(t);
        /* Single-operation reads through the pooled transactions. */
        uint8_t *v = NULL;
        size_t n = 0;
        CHECK_EQ(zap_get(c->db, "conc", B("k0"), &v, &n), ZAP_OK);
        zap_free(v, n);
        atomic_fetch_add(&c->reads, 1);
    }
    return NULL;
}

static void
test_concurrency_readers_consistent_during_writes(void)
{
    conc c;
    pthread_t th[3];
    char key[16], val[32];

    c.db = zt_create(NULL);
    atomic_init(&c.stop, false);
    atomic_init(&c.reads, 0);
    for (long gen = 0; gen < 400; gen++) {
        zap_txn *t = NULL;
        REQUIRE(zap_txn_begin(c.db, 0, &t) == ZAP_OK);
        for (int i = 0; i < CONC_KEYS; i++) {
            snprintf(key, sizeof key, "k%d", i);
            snprintf(val, sizeof val, "%ld", gen);
            REQUIRE(zap_txn_put(t, "conc", B(key), B(val)) == ZAP_OK);
        }
        REQUIRE(zap_txn_commit(t) == ZAP_OK);
        if (gen == 0)
            for (int r = 0; r < 3; r++)
                REQUIRE(pthread_create(&th[r], NULL, conc_reader, &c) == 0);
        if (gen == 200)
            REQUIRE(zap_rekey(c.db, NULL, NULL) == ZAP_OK);
    }
    atomic_store(&c.stop, true);
    for (int r = 0; r < 3; r++)
        pthread_join(th[r], NULL);
    CHECK(atomic_load(&c.reads) > 0);
    zap_close(c.db);
}

typedef struct writer_arg {
    zap_db *db;
    int id;
    int done;
} writer_arg;

/* Each transaction writes the same generation number under three keys. */
static void *
conc_writer(void *arg)
{
    writer_arg *w = arg;
    char key[16], val[32];

    for (int gen = 1; gen <= 60; gen++) {
        zap_txn *t = NULL;
        if (zap_txn_begin(w->db, 0, &t) != ZAP_OK)
            break;
        for (int i = 0; i < 3; i++) {
            snprintf(key, sizeof key, "w%d-k%d", w->id, i);
            snprintf(val, sizeof val, "%d", gen);
            CHECK_EQ(zap_txn_put(t, "w", B(key), B(val)), ZAP_OK);
        }
        if (zap_txn_commit(t) != ZAP_OK)
            break;
        w->done = gen;
    }
    return NULL;
}

/* Two writer threads on one handle take turns (one writer at a time). */
static void
test_concurrency_two_writer_threads_serialized(void)
{
    zap_db *db = zt_create(NULL);
    writer_arg w[2] = {{db, 0, 0}, {db, 1, 0}};
    pthread_t th[2];

    for (int i = 0; i < 2; i++)
        REQUIRE(pthread_create(&th[i], NULL, conc_writer, &w[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(w[i].done, 60);
        for (int k = 0; k < 3; k++) {
            char key[16];
            snprintf(key, sizeof key, "w%d-k%d", i, k);
            CHECK(get_equals(db, "w", key, "60"));
        }
    }
    zap_close(db);
}

static void *
backup_writer(void *arg)
{
    writer_arg *w = arg;
    char key[16], val[32];

    for (int gen = 1; gen <= 150; gen++) {
        zap_txn *t = NULL;
        if (zap_txn_begin(w->db, 0, &t) != ZAP_OK)
            break;
        for (int i = 0; i < 3; i++) {
            snprintf(key, sizeof key, "k%d", i);
            snprintf(val, sizeof val, "%d", gen);
            if (zap_txn_put(t, i == 1 ? "b1" : "b2", B(key), B(val)) != ZAP_OK)
                break;
        }
        if (zap_txn_commit(t) != ZAP_OK)
            break;
        w->done = gen;
    }
    return NULL;
}

/* A backup taken while a writer commits holds one consistent snapshot:
 * the three keys of each transaction carry the same number. */
static void
test_backup_during_writes_is_consistent_snapshot(void)
{
    const char *bk = kt_path(kt_tmpdir(), "b.zbk");
    const char *dst = kt_path(kt_tmpdir(), "r");
    zap_db *db = zt_create(NULL);
    writer_arg w = {db, 0, 0};
    zap_opts o = zt_opts(0);
    pthread_t th;
    char want[32];

    fill_store(db, 200, 100);
    REQUIRE(pthread_create(&th, NULL, backup_writer, &w) == 0);
    for (int i = 0; i < 3; i++)
        REQUIRE(zap_backup(db, bk, NULL, NULL) == ZAP_OK);
    pthread_join(th, NULL);
    CHECK_EQ(w.done, 150);
    zap_close(db);
    REQUIRE(zap_restore(bk, dst, &o, P(ZT_PASSWORD), NULL, NULL) == ZAP_OK);
    db = zt_reopen(dst, ZT_PASSWORD);
    REQUIRE(db);
    CHECK(check_store(db, 200, 100, NULL));
    uint8_t *v = NULL;
    size_t n = 0;
    if (zap_get(db, "b2", B("k0"), &v, &n) == ZAP_OK) {
        REQUIRE(n < sizeof want);
        memcpy(want, v, n);
        want[n] = '\0';
        zap_free(v, n);
        CHECK(get_equals(db, "b1", "k1", want));
        CHECK(get_equals(db, "b2", "k2", want));
    } else {
        /* Snapshot before the first transaction: none of its keys. */
        bool ex = true;
        CHECK_EQ(zap_exists(db, "b1", B("k1"), &ex), ZAP_OK);
        CHECK(!ex);
    }
    zap_close(db);
}

/* ---- map full --------------------------------------------------------- */

static void
test_map_full_efull_nothing_applied(void)
{
    const char *dir = kt_path(kt_tmpdir(), "s");
    zap_opts o = zt_opts(ZAP_CREATE);
    zap_db *db = NULL;
    zap_txn *t = NULL;
    uint8_t *big = calloc(1, 64 * 1024);
    zap_err rc = ZAP_OK;
    char key[16];
    int i;

    REQUIRE(big);
    o.map_size = 1u << 20;
    REQUIRE(zap_open(dir, &o, P(ZT_PASSWORD), &db) == ZAP_OK);
    REQUIRE(zap_put(db, "b", B("first"), B("kept")) == ZAP_OK);
    REQUIRE(zap_txn_begin(db, 0, &t) == ZAP_OK);
    for (i = 0; i < 64 && rc == ZAP_OK; i++) {
        snprintf(key, sizeof key, "big-%d", i);
        rc = zap_txn_put(t, "b", B(key), big, 64 * 1024);
    }
    CHECK_EQ(rc, ZAP_EFULL);
    CHECK_EQ(zap_txn_commit(t), ZAP_EFULL);
    CHECK(get_equals(db, "b", "first", "kept"));
    bool ex = true;
    CHECK_EQ(zap_exists(db, "b", B("big-0"), &ex), ZAP_OK);
    CHECK(!ex);
    CHECK_EQ(zap_put(db, "b", B("small"), B("fits")), ZAP_OK);
    zap_close(db);
    free(big);
}

const kt_case zt_ops_cases[] = {
    KT_CASE(test_passwd_change_old_fails_new_works),
    KT_CASE(test_passwd_change_key_raw_store_rewraps),
    KT_CASE(test_rekey_new_generation_all_records_readable),
    KT_CASE(test_rekey_by_other_process_seen_by_open_handle),
    KT_CASE(test_verify_tampered_record_reported_by_bucket),
    KT_CASE(test_error_detail_is_per_thread_and_handle),
    KT_CASE(test_record_copied_to_other_slot_detected),
    KT_CASE(test_bitflip_in_data_file_detected),
    KT_CASE(test_truncated_data_file_fails_cleanly),
    KT_CASE(test_no_plaintext_markers_on_disk),
    KT_CASE(test_backup_restore_roundtrip_same_content),
    KT_CASE(test_restore_wrong_password_eauth_nothing_created),
    KT_CASE(test_restore_raw_key_backup_roundtrip),
    KT_CASE(test_restore_tampered_or_truncated_backup_ecorrupt),
    KT_CASE(test_backup_committed_seed_restores),
    KT_CASE(test_crash_sigkill_during_commits_keeps_acked_txns),
    KT_CASE(test_crash_sigkill_during_rekey_store_readable),
    KT_CASE(test_concurrency_readers_consistent_during_writes),
    KT_CASE(test_concurrency_two_writer_threads_serialized),
    KT_CASE(test_backup_during_writes_is_consistent_snapshot),
    KT_CASE(test_map_full_efull_nothing_applied),
};
const size_t zt_ops_count = KT_COUNT(zt_ops_cases);
