/* SPDX-License-Identifier: Apache-2.0 */
/* zapdb init, passwd, rekey, verify, backup, restore, stats: the
 * store-level subcommands. */
#include "zt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kc.h"

int
zt_cmd_init(const zt_args *a)
{
    char *pw = NULL;
    size_t pw_len = 0;
    zap_db *db = NULL;
    zap_opts opts;
    zap_err err;
    int rc;

    rc = zt_password(a, a->password_file, "ZAPDB_PASSWORD",
                     "New store password: ", true, &pw, &pw_len);
    if (rc != ZT_EXIT_OK)
        goto out;
    zt_opts(a, ZAP_CREATE | ZAP_EXCL, &opts);
    err = zap_open(a->pos[0], &opts, pw, pw_len, &db);
    if (err == ZAP_EEXIST) {
        zt_err(a, "a store already exists in %s", a->pos[0]);
        rc = ZT_EXIT_ERR;
        goto out;
    }
    if (err == ZAP_ENOSTORE) {
        db = NULL;
        zt_err(a,
               "cannot create a store at %s: no such parent directory, or "
               "not writable",
               a->pos[0]);
        rc = ZT_EXIT_ERR;
        goto out;
    }
    if (err != ZAP_OK) {
        db = NULL;
        rc = zt_zap_err(a, NULL, err, "cannot create the store");
        goto out;
    }
    rc = ZT_EXIT_OK;
out:
    zap_close(db);
    kc_secure_free(pw);
    return rc;
}

int
zt_cmd_passwd(const zt_args *a)
{
    char *npw = NULL;
    size_t npw_len = 0;
    zap_db *db = NULL;
    zap_opts opts;
    zap_stats st;
    zap_err err;
    int rc;

    /* The new password first: a bad file is refused before any KDF runs. */
    rc = zt_password(a, a->new_password_file, "ZAPDB_NEW_PASSWORD",
                     "New password: ", true, &npw, &npw_len);
    if (rc != ZT_EXIT_OK || (rc = zt_open(a, 0, &db)) != ZT_EXIT_OK)
        goto out;
    if (a->have_kdf_ops || a->have_kdf_mem) {
        /* A cost given in part keeps the other part from the store. */
        if ((err = zap_get_stats(db, &st)) != ZAP_OK) {
            rc = zt_zap_err(a, db, err, "cannot read the KDF cost");
            goto out;
        }
        zt_opts(a, 0, &opts);
        if (!a->have_kdf_ops)
            opts.kdf_opslimit = st.kdf_opslimit;
        if (!a->have_kdf_mem)
            opts.kdf_memlimit = (size_t)st.kdf_memlimit;
    }
    err = zap_change_password(
        db, npw, npw_len, a->have_kdf_ops || a->have_kdf_mem ? &opts : NULL);
    if (err != ZAP_OK) {
        rc = zt_zap_err(a, db, err, "cannot change the password");
        goto out;
    }
    rc = ZT_EXIT_OK;
out:
    zap_close(db);
    kc_secure_free(npw);
    return rc;
}

int
zt_cmd_rekey(const zt_args *a)
{
    zap_db *db = NULL;
    zt_progress p;
    zap_err err;
    int rc;

    if ((rc = zt_open(a, 0, &db)) != ZT_EXIT_OK)
        goto out;
    zt_progress_init(&p, a->cmd);
    err = zap_rekey(db, zt_progress_cb, &p);
    zt_progress_end(&p);
    if (err != ZAP_OK) {
        rc = zt_zap_err(a, db, err, "cannot rotate the data key");
        goto out;
    }
    rc = ZT_EXIT_OK;
out:
    zap_close(db);
    return rc;
}

typedef struct verify_ctx {
    zt_progress *p;
    uint64_t printed;
} verify_ctx;

static void
verify_bad(void *ctx, const char *bucket, uint64_t position, zap_err err)
{
    verify_ctx *v = ctx;

    /* Keep the progress line and the report apart on a terminal. */
    zt_progress_end(v->p);
    fputs("bucket ", stdout);
    if (bucket)
        zt_put_name((const uint8_t *)bucket, strlen(bucket));
    else
        fputs("(unreadable bucket record)", stdout);
    printf(" position %llu: %s\n", (unsigned long long)position,
           zap_strerror(err));
    v->printed++;
}

int
zt_cmd_verify(const zt_args *a)
{
    zap_verify_report rep;
    verify_ctx v;
    zap_db *db = NULL;
    zt_progress p;
    zap_err err;
    int rc;

    memset(&rep, 0, sizeof rep);
    if ((rc = zt_open(a, ZAP_RDONLY, &db)) != ZT_EXIT_OK)
        goto out;
    zt_progress_init(&p, a->cmd);
    v.p = &p;
    v.printed = 0;
    err = zap_verify(db, verify_bad, &v, zt_progress_cb, &p, &rep);
    zt_progress_end(&p);
    printf("verified %llu records in %llu buckets: %llu bad\n",
           (unsigned long long)rep.records, (unsigned long long)rep.buckets,
           (unsigned long long)rep.bad);
    if (err == ZAP_ECORRUPT && rep.bad > 0) {
        zt_err(a, "%llu of %llu records failed authentication",
               (unsigned long long)rep.bad, (unsigned long long)rep.records);
        rc = ZT_EXIT_CORRUPT;
        goto out;
    }
    if (err != ZAP_OK) {
        rc = zt_zap_err(a, db, err, "verification failed");
        goto out;
    }
    rc = ZT_EXIT_OK;
out:
    zap_close(db);
    return rc;
}

int
zt_cmd_backup(const zt_args *a)
{
    zap_db *db = NULL;
    zt_progress p;
    zap_err err;
    int rc;

    if ((rc = zt_open(a, ZAP_RDONLY, &db)) != ZT_EXIT_OK)
        goto out;
    zt_progress_init(&p, a->cmd);
    err = zap_backup(db, a->pos[1], zt_progress_cb, &p);
    zt_progress_end(&p);
    if (err == ZAP_ENOSTORE || err == ZAP_ENOTFOUND) {
        zt_err(a, "cannot write %s: no such directory", a->pos[1]);
        rc = ZT_EXIT_NOTFOUND;
        goto out;
    }
    if (err != ZAP_OK) {
        rc = zt_zap_err(a, db, err, "cannot write the backup");
        goto out;
    }
    rc = ZT_EXIT_OK;
out:
    zap_close(db);
    return rc;
}

int
zt_cmd_restore(const zt_args *a)
{
    char *pw = NULL;
    size_t pw_len = 0;
    struct stat st;
    zap_opts opts;
    zt_progress p;
    zap_err err;
    int rc;

    if (stat(a->pos[0], &st) != 0 || !S_ISREG(st.st_mode)) {
        zt_err(a, "no backup file at %s", a->pos[0]);
        rc = ZT_EXIT_NOTFOUND;
        goto out;
    }
    rc = zt_password(a, a->password_file, "ZAPDB_PASSWORD",
                     "Backup password: ", false, &pw, &pw_len);
    if (rc != ZT_EXIT_OK)
        goto out;
    zt_opts(a, 0, &opts);
    zt_progress_init(&p, a->cmd);
    err = zap_restore(a->pos[0], a->pos[1], &opts, pw, pw_len, zt_progress_cb,
                      &p);
    zt_progress_end(&p);
    if (err == ZAP_EEXIST) {
        zt_err(a, "%s already exists and is not empty", a->pos[1]);
        rc = ZT_EXIT_ERR;
        goto out;
    }
    if (err != ZAP_OK) {
        rc = zt_zap_err(a, NULL, err, "cannot restore the backup");
        goto out;
    }
    rc = ZT_EXIT_OK;
out:
    kc_secure_free(pw);
    return rc;
}

/* The KDF's name, as printable lower-case letters and digits only. */
static void
kdf_name(const zap_stats *st, char *out, size_t out_cap)
{
    size_t j = 0;

    for (size_t i = 0; i < sizeof st->kdf && st->kdf[i] && j + 1 < out_cap;
         i++) {
        char c = st->kdf[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
            out[j++] = c;
    }
    out[j] = 0;
}

#define FMT_TEXT                                                               \
    "records %llu\nbuckets %llu\nfile_bytes %llu\nmap_bytes %llu\n"            \
    "page_size %llu\ntree_depth %llu\ndek_generation %llu\n"                   \
    "format_version %u\nkdf %s\nkdf_opslimit %llu\nkdf_memlimit %llu\n"
#define FMT_JSON                                                               \
    "{\"records\": %llu, \"buckets\": %llu, \"file_bytes\": %llu, "            \
    "\"map_bytes\": %llu, \"page_size\": %llu, \"tree_depth\": %llu, "         \
    "\"dek_generation\": %llu, \"format_version\": %u, \"kdf\": \"%s\", "      \
    "\"kdf_opslimit\": %llu, \"kdf_memlimit\": %llu}\n"

int
zt_cmd_stats(const zt_args *a)
{
    zap_db *db = NULL;
    zap_stats st;
    char kdf[sizeof st.kdf + 1];
    zap_err err;
    int rc;

    if ((rc = zt_open(a, ZAP_RDONLY, &db)) != ZT_EXIT_OK)
        goto out;
    memset(&st, 0, sizeof st);
    if ((err = zap_get_stats(db, &st)) != ZAP_OK) {
        rc = zt_zap_err(a, db, err, "cannot read the statistics");
        goto out;
    }
    kdf_name(&st, kdf, sizeof kdf);
    printf(a->json ? FMT_JSON : FMT_TEXT, (unsigned long long)st.records,
           (unsigned long long)st.buckets, (unsigned long long)st.file_bytes,
           (unsigned long long)st.map_bytes, (unsigned long long)st.page_size,
           (unsigned long long)st.tree_depth,
           (unsigned long long)st.dek_generation, (unsigned)st.format_version,
           kdf, (unsigned long long)st.kdf_opslimit,
           (unsigned long long)st.kdf_memlimit);
    rc = ZT_EXIT_OK;
out:
    zap_close(db);
    return rc;
}
