/* SPDX-License-Identifier: Apache-2.0 */
/* zapdb-bench: ZapDB against raw LMDB (no encryption) and SQLCipher, on the
 * same data in the same run.
 *
 * Each engine gets the same N records (16-byte random keys, 100-byte
 * values) in the same order, the same random lookup sequence and the same
 * durability:
 *   batchput    N records, 1,000 per transaction, fsync per commit
 *               (ZAP_SYNC_FULL; LMDB default sync; SQLite synchronous=FULL
 *               in WAL mode, default page cache);
 *   get         random lookups, each its own read (zap_get; an LMDB read
 *               transaction renewed per lookup, as zap_get does inside;
 *               an autocommit SELECT through a prepared statement in
 *               SQLite); each copies the value out. SQLCipher's gets are
 *               measured twice: on the loading connection (default 2 MiB
 *               page cache) and on a second connection with a 1 GiB cache
 *               that holds the whole database ("sqlcipher_cached", its
 *               most favourable setting: SQLCipher decrypts a page on
 *               every cache miss, while LMDB has the whole OS page cache);
 *   durableput  fresh keys, one transaction and one fsync per put.
 * LMDB gets the same map size and environment flags as ZapDB (MDB_NOTLS).
 * The stores use cheap key derivation (Argon2id 1 pass / 8 KiB for ZapDB,
 * a raw key for SQLCipher): the KDF is not what is measured.
 *
 * The engines are opened side by side and the work is interleaved in
 * small slices (one batch, 10,000 lookups, 100 durable puts), each slice
 * timed and added to its engine's total. A busy machine then slows every
 * engine alike, and the ratios stay meaningful.
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

#define ZB_KEY_LEN     16u
#define ZB_VAL_LEN     100u
#define ZB_BATCH       1000u
#define ZB_GET_SLICE   10000u
#define ZB_PUT_SLICE   100u
#define ZB_MAP         (4ull * 1024u * 1024u * 1024u)
#define ZB_MAX_ENGINES 4

typedef struct zb_cfg {
    uint64_t records;
    uint64_t gets;
    uint64_t durable;
    const char *dir;
    const char *only; /* NULL, or run only "zap", "lmdb" or "sqlcipher" */
} zb_cfg;

/* One engine under test: a const vtable (STYLE.md "Providers are const
 * vtables"). Every function dies with a message on failure. */
typedef struct zb_engine {
    const char *name;
    void *(*open)(const zb_cfg *c);
    void (*begin)(void *self);
    void (*put)(void *self, const uint8_t *key, const uint8_t *val);
    void (*commit)(void *self);
    void (*get)(void *self, const uint8_t *key);
    /* Closes and returns the size of the data file in MiB. */
    double (*close)(void *self, const zb_cfg *c);
} zb_engine;

typedef struct zb_run {
    const zb_engine *e;
    void *self;
    double t_batch, t_get, t_durable, file_mb;
} zb_run;

/* The workload shared by every engine. */
typedef struct zb_data {
    uint8_t *keys;   /* records * ZB_KEY_LEN: loaded keys */
    uint8_t *dkeys;  /* durable * ZB_KEY_LEN: fresh keys for durableput */
    uint32_t *order; /* gets indexes into keys */
} zb_data;

static void
zb_die(const char *what, const char *detail)
{
    fprintf(stderr, "zapdb-bench: %s: %s\n", what, detail);
    exit(1);
}

/* splitmix64: a fixed sequence so every run uses the same data (not a
 * secret, so no CSPRNG needed). */
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

/* The value of record i: deterministic, so every engine stores the same. */
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
zb_path(char *out, size_t cap, const zb_cfg *c, const char *name)
{
    if (snprintf(out, cap, "%s/%s", c->dir, name) >= (int)cap)
        zb_die("path", "too long");
}

/* ---- ZapDB --------------------------------------------------------------- */

typedef struct zb_zap {
    zap_db *db;
    zap_txn *txn;
} zb_zap;

static void
zap_check(zap_err e, const char *what)
{
    if (e != ZAP_OK)
        zb_die(what, zap_strerror(e));
}

static void *
zap_e_open(const zb_cfg *c)
{
    static const char pw[] = "bench-password";
    zb_zap *z = calloc(1, sizeof *z);
    char path[4096];
    zap_opts o;

    if (!z)
        zb_die("zap", "out of memory");
    zb_path(path, sizeof path, c, "zap");
    zap_opts_default(&o);
    o.flags = ZAP_CREATE | ZAP_EXCL;
    o.kdf_opslimit = 1;
    o.kdf_memlimit = 8192;
    o.map_size = ZB_MAP;
    o.sync = ZAP_SYNC_FULL;
    zap_check(zap_open(path, &o, pw, sizeof pw - 1, &z->db), "zap_open");
    return z;
}

static void
zap_e_begin(void *self)
{
    zb_zap *z = self;
    zap_check(zap_txn_begin(z->db, 0, &z->txn), "zap_txn_begin");
}

static void
zap_e_put(void *self, const uint8_t *key, const uint8_t *val)
{
    zb_zap *z = self;
    if (z->txn)
        zap_check(
            zap_txn_put(z->txn, "bench", key, ZB_KEY_LEN, val, ZB_VAL_LEN),
            "zap_txn_put");
    else
        zap_check(zap_put(z->db, "bench", key, ZB_KEY_LEN, val, ZB_VAL_LEN),
                  "zap_put");
}

static void
zap_e_commit(void *self)
{
    zb_zap *z = self;
    zap_check(zap_txn_commit(z->txn), "zap_txn_commit");
    z->txn = NULL;
}

static void
zap_e_get(void *self, const uint8_t *key)
{
    zb_zap *z = self;
    uint8_t *val = NULL;
    size_t len = 0;

    zap_check(zap_get(z->db, "bench", key, ZB_KEY_LEN, &val, &len), "zap_get");
    if (len != ZB_VAL_LEN)
        zb_die("zap_get", "wrong value length");
    zap_free(val, len);
}

static double
zap_e_close(void *self, const zb_cfg *c)
{
    zb_zap *z = self;
    char path[4096];

    zap_close(z->db);
    free(z);
    zb_path(path, sizeof path, c, "zap/data.mdb");
    return zb_file_mb(path);
}

static const zb_engine zb_engine_zap = {
    "zap",        zap_e_open, zap_e_begin, zap_e_put,
    zap_e_commit, zap_e_get,  zap_e_close,
};

/* ---- raw LMDB -------------------------------------------------------------
 */

typedef struct zb_lmdb {
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *txn;  /* the open write transaction, if any */
    MDB_txn *rtxn; /* a reset read transaction, renewed per lookup */
    uint8_t copy[ZB_VAL_LEN];
} zb_lmdb;

static void
mdb_check(int e, const char *what)
{
    if (e != MDB_SUCCESS)
        zb_die(what, mdb_strerror(e));
}

static void *
lmdb_e_open(const zb_cfg *c)
{
    zb_lmdb *l = calloc(1, sizeof *l);
    char path[4096];
    MDB_txn *txn;

    if (!l)
        zb_die("lmdb", "out of memory");
    zb_path(path, sizeof path, c, "lmdb");
    if (mkdir(path, 0700) != 0)
        zb_die("mkdir", strerror(errno));
    mdb_check(mdb_env_create(&l->env), "mdb_env_create");
    mdb_check(mdb_env_set_mapsize(l->env, ZB_MAP), "mdb_env_set_mapsize");
    mdb_check(mdb_env_open(l->env, path, MDB_NOTLS, 0600), "mdb_env_open");
    mdb_check(mdb_txn_begin(l->env, NULL, 0, &txn), "mdb_txn_begin");
    mdb_check(mdb_dbi_open(txn, NULL, 0, &l->dbi), "mdb_dbi_open");
    mdb_check(mdb_txn_commit(txn), "mdb_txn_commit");
    mdb_check(mdb_txn_begin(l->env, NULL, MDB_RDONLY, &l->rtxn),
              "mdb_txn_begin");
    mdb_txn_reset(l->rtxn);
    return l;
}

static void
lmdb_e_begin(void *self)
{
    zb_lmdb *l = self;
    mdb_check(mdb_txn_begin(l->env, NULL, 0, &l->txn), "mdb_txn_begin");
}

static void
lmdb_e_put(void *self, const uint8_t *key, const uint8_t *val)
{
    zb_lmdb *l = self;
    MDB_val k = {ZB_KEY_LEN, (void *)key}, v = {ZB_VAL_LEN, (void *)val};
    MDB_txn *txn = l->txn;

    if (!txn)
        mdb_check(mdb_txn_begin(l->env, NULL, 0, &txn), "mdb_txn_begin");
    mdb_check(mdb_put(txn, l->dbi, &k, &v, 0), "mdb_put");
    if (!l->txn)
        mdb_check(mdb_txn_commit(txn), "mdb_txn_commit");
}

static void
lmdb_e_commit(void *self)
{
    zb_lmdb *l = self;
    mdb_check(mdb_txn_commit(l->txn), "mdb_txn_commit");
    l->txn = NULL;
}

static void
lmdb_e_get(void *self, const uint8_t *key)
{
    zb_lmdb *l = self;
    MDB_val k = {ZB_KEY_LEN, (void *)key}, v;

    mdb_check(mdb_txn_renew(l->rtxn), "mdb_txn_renew");
    mdb_check(mdb_get(l->rtxn, l->dbi, &k, &v), "mdb_get");
    if (v.mv_size != ZB_VAL_LEN)
        zb_die("mdb_get", "wrong value length");
    memcpy(l->copy, v.mv_data, ZB_VAL_LEN);
    mdb_txn_reset(l->rtxn);
}

static double
lmdb_e_close(void *self, const zb_cfg *c)
{
    zb_lmdb *l = self;
    char path[4096];

    mdb_txn_abort(l->rtxn);
    mdb_env_close(l->env);
    free(l);
    zb_path(path, sizeof path, c, "lmdb/data.mdb");
    return zb_file_mb(path);
}

static const zb_engine zb_engine_lmdb = {
    "lmdb",        lmdb_e_open, lmdb_e_begin, lmdb_e_put,
    lmdb_e_commit, lmdb_e_get,  lmdb_e_close,
};

/* ---- SQLCipher ------------------------------------------------------------
 */

#ifdef ZB_HAVE_SQLCIPHER
typedef struct zb_sql {
    sqlite3 *db;
    sqlite3_stmt *ins, *sel;
    uint8_t copy[ZB_VAL_LEN];
} zb_sql;

static void
sql_check(sqlite3 *db, int e, int want, const char *what)
{
    if (e != want)
        zb_die(what, db ? sqlite3_errmsg(db) : sqlite3_errstr(e));
}

static void
sql_exec(sqlite3 *db, const char *sql)
{
    sql_check(db, sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, sql);
}

/* The database's raw 256-bit key (x'...': SQLCipher then skips its
 * PBKDF2), shared by both connections; made on first use. */
static uint8_t zb_sql_key[32];
static bool zb_sql_key_set;

/* Open a connection to the benchmark database. `cached`: the second,
 * gets-only connection with a cache that holds the whole database. */
static zb_sql *
sql_connect(const zb_cfg *c, bool cached)
{
    zb_sql *s = calloc(1, sizeof *s);
    char path[4096], pragma[128], hex[65];

    if (!s)
        zb_die("sqlcipher", "out of memory");
    if (!zb_sql_key_set) {
        kc_random(zb_sql_key, sizeof zb_sql_key);
        zb_sql_key_set = true;
    }
    zb_path(path, sizeof path, c, "sqlcipher.db");
    sql_check(NULL, sqlite3_open(path, &s->db), SQLITE_OK, "sqlite3_open");
    kc_hex_encode(zb_sql_key, sizeof zb_sql_key, hex, sizeof hex);
    snprintf(pragma, sizeof pragma, "PRAGMA key = \"x'%s'\"", hex);
    sql_exec(s->db, pragma);
    kc_wipe(pragma, sizeof pragma);
    kc_wipe(hex, sizeof hex);
    sql_exec(s->db, "PRAGMA journal_mode = WAL");
    sql_exec(s->db, "PRAGMA synchronous = FULL");
    if (cached)
        sql_exec(s->db, "PRAGMA cache_size = -1048576");
    else
        sql_exec(s->db,
                 "CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID");
    sql_check(s->db,
              sqlite3_prepare_v2(s->db,
                                 "INSERT OR REPLACE INTO kv VALUES (?, ?)", -1,
                                 &s->ins, NULL),
              SQLITE_OK, "prepare insert");
    sql_check(s->db,
              sqlite3_prepare_v2(s->db, "SELECT v FROM kv WHERE k = ?", -1,
                                 &s->sel, NULL),
              SQLITE_OK, "prepare select");
    return s;
}

static void *
sql_e_open(const zb_cfg *c)
{
    return sql_connect(c, false);
}

static void *
sql_e_open_cached(const zb_cfg *c)
{
    return sql_connect(c, true);
}

static void
sql_e_begin(void *self)
{
    sql_exec(((zb_sql *)self)->db, "BEGIN");
}

static void
sql_e_put(void *self, const uint8_t *key, const uint8_t *val)
{
    zb_sql *s = self;
    sqlite3_bind_blob(s->ins, 1, key, ZB_KEY_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(s->ins, 2, val, ZB_VAL_LEN, SQLITE_STATIC);
    sql_check(s->db, sqlite3_step(s->ins), SQLITE_DONE, "insert");
    sqlite3_reset(s->ins);
}

static void
sql_e_commit(void *self)
{
    sql_exec(((zb_sql *)self)->db, "COMMIT");
}

static void
sql_e_get(void *self, const uint8_t *key)
{
    zb_sql *s = self;
    sqlite3_bind_blob(s->sel, 1, key, ZB_KEY_LEN, SQLITE_STATIC);
    sql_check(s->db, sqlite3_step(s->sel), SQLITE_ROW, "select");
    if (sqlite3_column_bytes(s->sel, 0) != (int)ZB_VAL_LEN)
        zb_die("select", "wrong value length");
    memcpy(s->copy, sqlite3_column_blob(s->sel, 0), ZB_VAL_LEN);
    sqlite3_reset(s->sel);
}

static double
sql_e_close(void *self, const zb_cfg *c)
{
    zb_sql *s = self;
    char path[4096];

    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->sel);
    sql_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(s->db);
    free(s);
    kc_wipe(zb_sql_key, sizeof zb_sql_key);
    zb_path(path, sizeof path, c, "sqlcipher.db");
    return zb_file_mb(path);
}

static double
sql_e_close_cached(void *self, const zb_cfg *c)
{
    zb_sql *s = self;

    (void)c;
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->sel);
    sqlite3_close(s->db);
    free(s);
    return 0;
}

static const zb_engine zb_engine_sqlcipher = {
    "sqlcipher",  sql_e_open, sql_e_begin, sql_e_put,
    sql_e_commit, sql_e_get,  sql_e_close,
};

/* Gets only: no begin/put/commit, so the load and put phases skip it. */
static const zb_engine zb_engine_sqlcipher_cached = {
    "sqlcipher_cached", sql_e_open_cached,  NULL, NULL, NULL,
    sql_e_get,          sql_e_close_cached,
};
#endif

/* ---- driver ----------------------------------------------------------------
 */

static void
phase_batchput(zb_run *runs, size_t n, const zb_data *d, uint64_t records)
{
    uint8_t v[ZB_VAL_LEN];

    for (uint64_t i = 0; i < records; i += ZB_BATCH) {
        uint64_t end = i + ZB_BATCH < records ? i + ZB_BATCH : records;
        for (size_t e = 0; e < n; e++) {
            double t = zb_now();
            if (!runs[e].e->put)
                continue;
            runs[e].e->begin(runs[e].self);
            for (uint64_t j = i; j < end; j++) {
                zb_value(j, v);
                runs[e].e->put(runs[e].self, d->keys + j * ZB_KEY_LEN, v);
            }
            runs[e].e->commit(runs[e].self);
            runs[e].t_batch += zb_now() - t;
        }
    }
}

static void
phase_get(zb_run *runs, size_t n, const zb_data *d, uint64_t gets)
{
    for (uint64_t i = 0; i < gets; i += ZB_GET_SLICE) {
        uint64_t end = i + ZB_GET_SLICE < gets ? i + ZB_GET_SLICE : gets;
        for (size_t e = 0; e < n; e++) {
            double t = zb_now();
            for (uint64_t j = i; j < end; j++)
                runs[e].e->get(runs[e].self,
                               d->keys + (uint64_t)d->order[j] * ZB_KEY_LEN);
            runs[e].t_get += zb_now() - t;
        }
    }
}

static void
phase_durable(zb_run *runs, size_t n, const zb_data *d, uint64_t count)
{
    uint8_t v[ZB_VAL_LEN];

    for (uint64_t i = 0; i < count; i += ZB_PUT_SLICE) {
        uint64_t end = i + ZB_PUT_SLICE < count ? i + ZB_PUT_SLICE : count;
        for (size_t e = 0; e < n; e++) {
            double t = zb_now();
            if (!runs[e].e->put)
                continue;
            for (uint64_t j = i; j < end; j++) {
                zb_value(j, v);
                runs[e].e->put(runs[e].self, d->dkeys + j * ZB_KEY_LEN, v);
            }
            runs[e].t_durable += zb_now() - t;
        }
    }
}

static int
data_init(zb_data *d, const zb_cfg *c)
{
    uint64_t s = 0x5a17db5eedull;

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
usage(FILE *f)
{
    fprintf(f, "Usage: zapdb-bench --dir DIR [--records N] [--gets N] "
               "[--durable N]\n"
               "                   [--only zap|lmdb|sqlcipher]\n"
               "Loads N records (default 1000000) into ZapDB, raw LMDB and "
               "SQLCipher under\nDIR (an empty directory), then prints one "
               "figure a line.\n");
}

static int
parse(int argc, char **argv, zb_cfg *c)
{
    bool gets_set = false;

    memset(c, 0, sizeof *c);
    c->records = 1000000;
    c->durable = 2000;
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

static const zb_run *
find_run(const zb_run *runs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(runs[i].e->name, name) == 0)
            return &runs[i];
    return NULL;
}

static double
rate(uint64_t ops, double secs)
{
    return secs > 0 ? (double)ops / secs : 0;
}

static void
ratios(const zb_run *runs, size_t n, const zb_cfg *c, const char *other)
{
    const zb_run *z = find_run(runs, n, "zap"), *o = find_run(runs, n, other);

    if (!z || !o)
        return;
    printf("zap_get_vs_%s %.2f x\n", other, o->t_get / z->t_get);
    if (!o->e->put)
        return;
    printf("zap_batchput_vs_%s %.2f x\n", other, o->t_batch / z->t_batch);
    if (c->durable)
        printf("zap_durableput_vs_%s %.2f x\n", other,
               o->t_durable / z->t_durable);
}

int
main(int argc, char **argv)
{
    static const zb_engine *const engines[] = {
        &zb_engine_zap,
        &zb_engine_lmdb,
#ifdef ZB_HAVE_SQLCIPHER
        &zb_engine_sqlcipher,
        &zb_engine_sqlcipher_cached,
#endif
    };
    zb_run runs[ZB_MAX_ENGINES];
    zb_data d = {0};
    size_t n = 0;
    zb_cfg c;

    umask(077);
    if (parse(argc, argv, &c) != 0) {
        usage(stderr);
        return 2;
    }
    if (kc_init() != 0 || data_init(&d, &c) != 0)
        zb_die("setup", "out of memory or no entropy");
    setvbuf(stdout, NULL, _IOLBF, 0);
    memset(runs, 0, sizeof runs);
    for (size_t i = 0; i < sizeof engines / sizeof engines[0]; i++) {
        if (c.only && strncmp(engines[i]->name, c.only, strlen(c.only)) != 0)
            continue;
        runs[n].e = engines[i];
        runs[n].self = engines[i]->open(&c);
        n++;
    }
    printf("records %llu count\n", (unsigned long long)c.records);
#ifndef ZB_HAVE_SQLCIPHER
    printf("# sqlcipher: skipped (built without SQLCipher: pkg-config "
           "module sqlcipher not found)\n");
#endif
    phase_batchput(runs, n, &d, c.records);
    phase_get(runs, n, &d, c.gets);
    phase_durable(runs, n, &d, c.durable);
    for (size_t i = 0; i < n; i++) {
        const char *nm = runs[i].e->name;
        runs[i].file_mb = runs[i].e->close(runs[i].self, &c);
        if (runs[i].e->put)
            printf("%s_batchput %.0f ops/s\n", nm,
                   rate(c.records, runs[i].t_batch));
        printf("%s_get %.0f ops/s\n", nm, rate(c.gets, runs[i].t_get));
        if (runs[i].e->put && c.durable)
            printf("%s_durableput %.0f ops/s\n", nm,
                   rate(c.durable, runs[i].t_durable));
        if (runs[i].e->put)
            printf("%s_file %.1f MiB\n", nm, runs[i].file_mb);
    }
    ratios(runs, n, &c, "lmdb");
    ratios(runs, n, &c, "sqlcipher");
    ratios(runs, n, &c, "sqlcipher_cached");
    free(d.keys);
    free(d.dkeys);
    free(d.order);
    return 0;
}
