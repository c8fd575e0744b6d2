/* SPDX-License-Identifier: Apache-2.0 */
/* zapdb-bench: ZapDB against raw LMDB (no encryption) and SQLCipher, on the
 * same data in the same run.
 *
 * Each engine gets the same N records (16-byte random keys, 100-byte
 * values) in the same order, the same random lookup sequence and the same
 * durability:
 *   batchput    N records, 1,000 per transaction, fsync per commit
 *               (ZAP_SYNC_FULL; LMDB default sync; SQLite synchronous=FULL
 *               in WAL mode, 1 GiB page cache);
 *   get         random lookups, each its own read (zap_get; LMDB read
 *               transaction renewed per lookup, as zap_get does inside;
 *               SQLite autocommit SELECT through a prepared statement);
 *               each copies the value out;
 *   durableput  fresh keys, one transaction and one fsync per put.
 * LMDB gets the same map size and environment flags as ZapDB (MDB_NOTLS).
 * The stores use cheap key derivation (Argon2id 1 pass / 8 KiB for ZapDB,
 * a raw key for SQLCipher): the KDF is not what is measured.
 *
 * Output: one figure a line, "name value unit", then the ratios. */
#include <errno.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zapdb/zapdb.h>

#include "kc.h"

#ifdef ZB_HAVE_SQLCIPHER
#include <sqlite3.h>
#endif

#define ZB_KEY_LEN 16u
#define ZB_VAL_LEN 100u
#define ZB_BATCH   1000u
#define ZB_MAP     (4ull * 1024u * 1024u * 1024u)

typedef struct zb_cfg {
    uint64_t records;
    uint64_t gets;
    uint64_t durable;
    const char *dir;
    const char *only; /* NULL, or run only "zap", "lmdb" or "sqlcipher" */
} zb_cfg;

/* The workload shared by every engine. */
typedef struct zb_data {
    uint8_t *keys;   /* records * ZB_KEY_LEN: loaded keys */
    uint8_t *dkeys;  /* durable * ZB_KEY_LEN: fresh keys for durableput */
    uint32_t *order; /* gets indexes into keys */
    uint64_t records, gets, durable;
} zb_data;

typedef struct zb_result {
    double batchput, get, durableput; /* ops/s */
    double file_mb;
    bool ran;
} zb_result;

/* splitmix64: a fixed, documented sequence so every run uses the same
 * data (not a secret, so no CSPRNG needed). */
static uint64_t
zb_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void
zb_fill(uint8_t *p, size_t n, uint64_t *s)
{
    while (n > 0) {
        uint64_t v = zb_next(s);
        size_t k = n < 8 ? n : 8;
        memcpy(p, &v, k);
        p += k;
        n -= k;
    }
}

/* The value of key number i: deterministic, so reads can be checked. */
static void
zb_value(uint64_t i, uint8_t v[ZB_VAL_LEN])
{
    uint64_t s = i * 0x2545f4914f6cdd1dull + 1;
    zb_fill(v, ZB_VAL_LEN, &s);
}

static double
zb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
zb_file_mb(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size / (1024.0 * 1024.0) : 0;
}

static void
zb_die(const char *what, const char *detail)
{
    fprintf(stderr, "zapdb-bench: %s: %s\n", what, detail);
    exit(1);
}

static int
zb_data_init(zb_data *d, const zb_cfg *c)
{
    uint64_t s = 0x5a17db5eedull;

    if (c->records > UINT32_MAX || c->records == 0)
        return -1;
    d->records = c->records;
    d->gets = c->gets;
    d->durable = c->durable;
    d->keys = malloc(c->records * ZB_KEY_LEN);
    d->dkeys = malloc((c->durable ? c->durable : 1) * ZB_KEY_LEN);
    d->order = malloc((c->gets ? c->gets : 1) * sizeof *d->order);
    if (!d->keys || !d->dkeys || !d->order)
        return -1;
    zb_fill(d->keys, c->records * ZB_KEY_LEN, &s);
    zb_fill(d->dkeys, c->durable * ZB_KEY_LEN, &s);
    for (uint64_t i = 0; i < c->gets; i++)
        d->order[i] = (uint32_t)(zb_next(&s) % c->records);
    return 0;
}

static void
zb_data_free(zb_data *d)
{
    free(d->keys);
    free(d->dkeys);
    free(d->order);
}

/* ---- ZapDB -------------------------------------------------------------- */

static void
zb_zap_check(zap_err e, const char *what)
{
    if (e != ZAP_OK)
        zb_die(what, zap_strerror(e));
}

static void
bench_zap(const zb_cfg *c, const zb_data *d, zb_result *r)
{
    static const char pw[] = "bench-password";
    char path[4096];
    uint8_t v[ZB_VAL_LEN];
    zap_opts o;
    zap_db *db = NULL;
    double t;

    snprintf(path, sizeof path, "%s/zap", c->dir);
    zap_opts_default(&o);
    o.flags = ZAP_CREATE | ZAP_EXCL;
    o.kdf_opslimit = 1;
    o.kdf_memlimit = 8192;
    o.map_size = ZB_MAP;
    o.sync = ZAP_SYNC_FULL;
    zb_zap_check(zap_open(path, &o, pw, sizeof pw - 1, &db), "zap_open");

    t = zb_now();
    for (uint64_t i = 0; i < d->records;) {
        zap_txn *txn;
        zb_zap_check(zap_txn_begin(db, 0, &txn), "zap_txn_begin");
        for (uint64_t j = 0; j < ZB_BATCH && i < d->records; j++, i++) {
            zb_value(i, v);
            zb_zap_check(zap_txn_put(txn, "bench", d->keys + i * ZB_KEY_LEN,
                                     ZB_KEY_LEN, v, ZB_VAL_LEN),
                         "zap_txn_put");
        }
        zb_zap_check(zap_txn_commit(txn), "zap_txn_commit");
    }
    r->batchput = (double)d->records / (zb_now() - t);

    t = zb_now();
    for (uint64_t i = 0; i < d->gets; i++) {
        uint8_t *val = NULL;
        size_t len = 0;
        zb_zap_check(zap_get(db, "bench", d->keys + d->order[i] * ZB_KEY_LEN,
                             ZB_KEY_LEN, &val, &len),
                     "zap_get");
        if (len != ZB_VAL_LEN)
            zb_die("zap_get", "wrong value length");
        zap_free(val, len);
    }
    r->get = (double)d->gets / (zb_now() - t);

    t = zb_now();
    for (uint64_t i = 0; i < d->durable; i++) {
        zb_value(i, v);
        zb_zap_check(zap_put(db, "bench", d->dkeys + i * ZB_KEY_LEN, ZB_KEY_LEN,
                             v, ZB_VAL_LEN),
                     "zap_put");
    }
    r->durableput = d->durable ? (double)d->durable / (zb_now() - t) : 0;
    zap_close(db);
    snprintf(path, sizeof path, "%s/zap/data.mdb", c->dir);
    r->file_mb = zb_file_mb(path);
    r->ran = true;
}

/* ---- raw LMDB ------------------------------------------------------------ */

static void
zb_mdb_check(int e, const char *what)
{
    if (e != MDB_SUCCESS)
        zb_die(what, mdb_strerror(e));
}

static void
bench_lmdb(const zb_cfg *c, const zb_data *d, zb_result *r)
{
    char path[4096];
    uint8_t v[ZB_VAL_LEN], copy[ZB_VAL_LEN];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    double t;

    snprintf(path, sizeof path, "%s/lmdb", c->dir);
    if (mkdir(path, 0700) != 0)
        zb_die("mkdir", strerror(errno));
    zb_mdb_check(mdb_env_create(&env), "mdb_env_create");
    zb_mdb_check(mdb_env_set_mapsize(env, ZB_MAP), "mdb_env_set_mapsize");
    zb_mdb_check(mdb_env_open(env, path, MDB_NOTLS, 0600), "mdb_env_open");
    zb_mdb_check(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
    zb_mdb_check(mdb_dbi_open(txn, NULL, 0, &dbi), "mdb_dbi_open");
    zb_mdb_check(mdb_txn_commit(txn), "mdb_txn_commit");

    t = zb_now();
    for (uint64_t i = 0; i < d->records;) {
        zb_mdb_check(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
        for (uint64_t j = 0; j < ZB_BATCH && i < d->records; j++, i++) {
            MDB_val k = {ZB_KEY_LEN, d->keys + i * ZB_KEY_LEN};
            MDB_val dv = {ZB_VAL_LEN, v};
            zb_value(i, v);
            zb_mdb_check(mdb_put(txn, dbi, &k, &dv, 0), "mdb_put");
        }
        zb_mdb_check(mdb_txn_commit(txn), "mdb_txn_commit");
    }
    r->batchput = (double)d->records / (zb_now() - t);

    /* One read transaction, reset and renewed around each lookup. */
    zb_mdb_check(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "mdb_txn_begin");
    mdb_txn_reset(txn);
    t = zb_now();
    for (uint64_t i = 0; i < d->gets; i++) {
        MDB_val k = {ZB_KEY_LEN, d->keys + d->order[i] * ZB_KEY_LEN}, dv;
        zb_mdb_check(mdb_txn_renew(txn), "mdb_txn_renew");
        zb_mdb_check(mdb_get(txn, dbi, &k, &dv), "mdb_get");
        if (dv.mv_size != ZB_VAL_LEN)
            zb_die("mdb_get", "wrong value length");
        memcpy(copy, dv.mv_data, ZB_VAL_LEN);
        mdb_txn_reset(txn);
    }
    r->get = (double)d->gets / (zb_now() - t);
    mdb_txn_abort(txn);

    t = zb_now();
    for (uint64_t i = 0; i < d->durable; i++) {
        MDB_val k = {ZB_KEY_LEN, d->dkeys + i * ZB_KEY_LEN};
        MDB_val dv = {ZB_VAL_LEN, v};
        zb_value(i, v);
        zb_mdb_check(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
        zb_mdb_check(mdb_put(txn, dbi, &k, &dv, 0), "mdb_put");
        zb_mdb_check(mdb_txn_commit(txn), "mdb_txn_commit");
    }
    r->durableput = d->durable ? (double)d->durable / (zb_now() - t) : 0;
    mdb_env_close(env);
    snprintf(path, sizeof path, "%s/lmdb/data.mdb", c->dir);
    r->file_mb = zb_file_mb(path);
    r->ran = true;
    kc_wipe(copy, sizeof copy);
}

/* ---- SQLCipher ------------------------------------------------------------
 */

#ifdef ZB_HAVE_SQLCIPHER
static void
zb_sql_check(sqlite3 *db, int e, int want, const char *what)
{
    if (e != want)
        zb_die(what, db ? sqlite3_errmsg(db) : sqlite3_errstr(e));
}

static void
zb_exec(sqlite3 *db, const char *sql)
{
    zb_sql_check(db, sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, sql);
}

static void
bench_sqlcipher(const zb_cfg *c, const zb_data *d, zb_result *r)
{
    char path[4096], pragma[128], hex[65];
    uint8_t v[ZB_VAL_LEN], copy[ZB_VAL_LEN], key[32];
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL, *sel = NULL;
    double t;

    snprintf(path, sizeof path, "%s/sqlcipher.db", c->dir);
    zb_sql_check(NULL, sqlite3_open(path, &db), SQLITE_OK, "sqlite3_open");
    /* A raw 256-bit key (x'...'): SQLCipher skips its PBKDF2. */
    kc_random(key, sizeof key);
    kc_hex_encode(key, sizeof key, hex, sizeof hex);
    snprintf(pragma, sizeof pragma, "PRAGMA key = \"x'%s'\"", hex);
    zb_exec(db, pragma);
    kc_wipe(pragma, sizeof pragma);
    kc_wipe(hex, sizeof hex);
    kc_wipe(key, sizeof key);
    zb_exec(db, "PRAGMA journal_mode = WAL");
    zb_exec(db, "PRAGMA synchronous = FULL");
    /* A page cache that holds the whole database: SQLCipher decrypts a
     * page on every cache miss, and LMDB gets the whole OS page cache, so
     * this is SQLCipher's most favourable setting (the default 2 MiB
     * cache makes it several times slower at a million records). */
    zb_exec(db, "PRAGMA cache_size = -1048576");
    zb_exec(db, "CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID");
    zb_sql_check(db,
                 sqlite3_prepare_v2(db,
                                    "INSERT OR REPLACE INTO kv VALUES (?, ?)",
                                    -1, &ins, NULL),
                 SQLITE_OK, "prepare insert");
    zb_sql_check(
        db,
        sqlite3_prepare_v2(db, "SELECT v FROM kv WHERE k = ?", -1, &sel, NULL),
        SQLITE_OK, "prepare select");

    t = zb_now();
    for (uint64_t i = 0; i < d->records;) {
        zb_exec(db, "BEGIN");
        for (uint64_t j = 0; j < ZB_BATCH && i < d->records; j++, i++) {
            zb_value(i, v);
            sqlite3_bind_blob(ins, 1, d->keys + i * ZB_KEY_LEN, ZB_KEY_LEN,
                              SQLITE_STATIC);
            sqlite3_bind_blob(ins, 2, v, ZB_VAL_LEN, SQLITE_STATIC);
            zb_sql_check(db, sqlite3_step(ins), SQLITE_DONE, "insert");
            sqlite3_reset(ins);
        }
        zb_exec(db, "COMMIT");
    }
    r->batchput = (double)d->records / (zb_now() - t);

    t = zb_now();
    for (uint64_t i = 0; i < d->gets; i++) {
        sqlite3_bind_blob(sel, 1, d->keys + d->order[i] * ZB_KEY_LEN,
                          ZB_KEY_LEN, SQLITE_STATIC);
        zb_sql_check(db, sqlite3_step(sel), SQLITE_ROW, "select");
        if (sqlite3_column_bytes(sel, 0) != (int)ZB_VAL_LEN)
            zb_die("select", "wrong value length");
        memcpy(copy, sqlite3_column_blob(sel, 0), ZB_VAL_LEN);
        sqlite3_reset(sel);
    }
    r->get = (double)d->gets / (zb_now() - t);

    t = zb_now();
    for (uint64_t i = 0; i < d->durable; i++) {
        zb_value(i, v);
        sqlite3_bind_blob(ins, 1, d->dkeys + i * ZB_KEY_LEN, ZB_KEY_LEN,
                          SQLITE_STATIC);
        sqlite3_bind_blob(ins, 2, v, ZB_VAL_LEN, SQLITE_STATIC);
        zb_sql_check(db, sqlite3_step(ins), SQLITE_DONE, "insert");
        sqlite3_reset(ins);
    }
    r->durableput = d->durable ? (double)d->durable / (zb_now() - t) : 0;
    sqlite3_finalize(ins);
    sqlite3_finalize(sel);
    zb_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(db);
    r->file_mb = zb_file_mb(path);
    r->ran = true;
    kc_wipe(copy, sizeof copy);
}
#endif

/* ---- main ------------------------------------------------------------------
 */

static void
usage(FILE *f)
{
    fprintf(f, "Usage: zapdb-bench --dir DIR [--records N] [--gets N] "
               "[--durable N]\n"
               "                   [--only zap|lmdb|sqlcipher]\n"
               "Loads N records (default 1000000) into ZapDB, raw LMDB and "
               "SQLCipher under\nDIR (must exist and be empty of earlier "
               "runs), then prints one figure a line.\n");
}

static int
parse(int argc, char **argv, zb_cfg *c)
{
    bool gets_set = false;

    c->records = 1000000;
    c->gets = 1000000;
    c->durable = 2000;
    c->dir = NULL;
    c->only = NULL;
    for (int i = 1; i < argc; i++) {
        uint64_t *slot = NULL;
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc)
            return -1;
        if (strcmp(argv[i], "--dir") == 0) {
            c->dir = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--only") == 0) {
            c->only = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--records") == 0)
            slot = &c->records;
        else if (strcmp(argv[i], "--gets") == 0) {
            slot = &c->gets;
            gets_set = true;
        } else if (strcmp(argv[i], "--durable") == 0)
            slot = &c->durable;
        else
            return -1;
        if (kc_parse_u64(argv[++i], slot) != 0)
            return -1;
    }
    if (!gets_set)
        c->gets = c->records;
    if (c->only && strcmp(c->only, "zap") != 0 &&
        strcmp(c->only, "lmdb") != 0 && strcmp(c->only, "sqlcipher") != 0)
        return -1;
    if (!c->dir || c->records == 0 || c->records > UINT32_MAX ||
        c->gets > (1ull << 32) || c->durable > 10000000)
        return -1;
    return 0;
}

static bool
want(const zb_cfg *c, const char *engine)
{
    return !c->only || strcmp(c->only, engine) == 0;
}

static void
ratio(const char *name, double a, double b)
{
    if (b > 0)
        printf("%s %.2f x\n", name, a / b);
}

int
main(int argc, char **argv)
{
    zb_result zap = {0}, lmdb = {0}, sqlc = {0};
    zb_data d = {0};
    zb_cfg c;

    umask(077);
    if (parse(argc, argv, &c) != 0) {
        usage(stderr);
        return 2;
    }
    if (kc_init() != 0 || zb_data_init(&d, &c) != 0)
        zb_die("setup", "out of memory or no entropy");
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("records %llu count\n", (unsigned long long)c.records);

    if (want(&c, "zap")) {
        bench_zap(&c, &d, &zap);
        printf("zap_batchput %.0f ops/s\nzap_get %.0f ops/s\n"
               "zap_durableput %.0f ops/s\nzap_file %.1f MiB\n",
               zap.batchput, zap.get, zap.durableput, zap.file_mb);
    }
    if (want(&c, "lmdb")) {
        bench_lmdb(&c, &d, &lmdb);
        printf("lmdb_batchput %.0f ops/s\nlmdb_get %.0f ops/s\n"
               "lmdb_durableput %.0f ops/s\nlmdb_file %.1f MiB\n",
               lmdb.batchput, lmdb.get, lmdb.durableput, lmdb.file_mb);
    }
#ifdef ZB_HAVE_SQLCIPHER
    if (want(&c, "sqlcipher")) {
        bench_sqlcipher(&c, &d, &sqlc);
        printf("sqlcipher_batchput %.0f ops/s\nsqlcipher_get %.0f ops/s\n"
               "sqlcipher_durableput %.0f ops/s\nsqlcipher_file %.1f MiB\n",
               sqlc.batchput, sqlc.get, sqlc.durableput, sqlc.file_mb);
    }
#else
    printf("# sqlcipher: skipped (built without SQLCipher: pkg-config "
           "module sqlcipher not found)\n");
#endif
    if (zap.ran && lmdb.ran) {
        ratio("zap_get_vs_lmdb", zap.get, lmdb.get);
        ratio("zap_batchput_vs_lmdb", zap.batchput, lmdb.batchput);
        ratio("zap_durableput_vs_lmdb", zap.durableput, lmdb.durableput);
    }
    if (zap.ran && sqlc.ran) {
        ratio("zap_get_vs_sqlcipher", zap.get, sqlc.get);
        ratio("zap_batchput_vs_sqlcipher", zap.batchput, sqlc.batchput);
        ratio("zap_durableput_vs_sqlcipher", zap.durableput, sqlc.durableput);
    }
    zb_data_free(&d);
    return 0;
}
