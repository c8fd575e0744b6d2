/* SPDX-License-Identifier: Apache-2.0 */
/* Tamper-evident audit log.
 *
 * One JSON object per line. Each line ends with the members
 *   "seq":N,"prev":"<hex SHA-256 of the previous line>","hash":"<hex>"
 * where hash = SHA-256 of the line's bytes up to and including the prev
 * member, followed by "}" (that is, the line as it would be without its
 * hash member). The first line's prev is 64 zeros. Editing a line breaks
 * its hash; removing, inserting or reordering lines breaks the next
 * line's prev or seq. Secret values and tokens appear only as HMAC-SHA256
 * under the store's audit key.
 *
 * Writing: requests queue their record; one thread takes every queued
 * record, writes them in one write(), syncs the store if any of them
 * changed it, fdatasync()s the log, then releases the responses (group
 * commit). A failed write or sync marks the log broken: every later
 * request fails with 503 rather than go unaudited. */
#include "kmsd_int.h"

#include "kc.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_MEMBER_LEN 75u /* ,"hash":"<64 hex>"} */
#define LINE_MAX_BYTES  (64u * 1024u)

typedef struct aq_item {
    struct aq_item *next;
    json_t *rec;
    bool sync_store;
    kms_audit_done_fn done;
    void *ctx;
} aq_item;

struct kms_audit {
    int fd;
    bool regular;
    kms_store *store;
    kms_metrics *metrics;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    aq_item *head, **tail;
    bool stop;
    atomic_bool broken;
    /* the store syncer: syncs the store while the audit thread syncs the
     * log, so that a batch waits for one fsync, not two in a row */
    pthread_t syncer;
    pthread_cond_t sync_cv;
    unsigned sync_req, sync_done; /* generations, under mu */
    kms_st_err sync_rc;
    uint64_t seq;
    char prev[65];
};

void
kms_audit_hmac(const kms_srv *srv, const void *data, size_t len, char out[80])
{
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    static const char pfx[] = "hmac-sha256:";

    crypto_auth_hmacsha256_init(&st, srv->audit_key, KMS_AUDIT_KEY_LEN);
    crypto_auth_hmacsha256_update(&st, data, len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, pfx, sizeof pfx - 1);
    kc_hex_encode(mac, sizeof mac, out + sizeof pfx - 1, 80 - (sizeof pfx - 1));
    kc_wipe(&st, sizeof st);
}

static void
sha256_hex(const void *p, size_t n, char out[65])
{
    uint8_t h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(h, p, n);
    kc_hex_encode(h, sizeof h, out, 65);
}

char *
kms_audit_line(json_t *rec, uint64_t seq, const char *prev_hex,
               char hash_hex[65], size_t *len)
{
    char *body, *line = NULL;
    size_t n;

    json_object_del(rec, "seq");
    json_object_del(rec, "prev");
    json_object_del(rec, "hash");
    json_object_set_new(rec, "seq", json_integer((json_int_t)seq));
    json_object_set_new(rec, "prev", json_string(prev_hex));
    body = kms_json_dump(rec, NULL);
    if (!body)
        return NULL;
    n = strlen(body);
    if (n < 2 || body[n - 1] != '}' || n > LINE_MAX_BYTES)
        goto out;
    sha256_hex(body, n, hash_hex);
    line = malloc(n - 1 + HASH_MEMBER_LEN + 1);
    if (!line)
        goto out;
    memcpy(line, body, n - 1);
    snprintf(line + n - 1, HASH_MEMBER_LEN + 1, ",\"hash\":\"%s\"}", hash_hex);
    *len = n - 1 + HASH_MEMBER_LEN;
out:
    free(body);
    return line;
}

/* Check one line (without its "\n") against the expected prev and seq.
 * On success *hash gets the line's hash and *seq its seq. */
static const char *
check_line(const char *line, size_t n, const char *prev, uint64_t want_seq,
           char hash[65], uint64_t *seq)
{
    char calc[65], *body;
    json_t *j;
    const char *why = NULL;
    json_error_t jerr;

    if (n < HASH_MEMBER_LEN + 2 ||
        memcmp(line + n - HASH_MEMBER_LEN, ",\"hash\":\"", 9) != 0 ||
        line[n - 2] != '"' || line[n - 1] != '}')
        return "line has no hash member";
    memcpy(hash, line + n - HASH_MEMBER_LEN + 9, 64);
    hash[64] = '\0';
    if (!(body = malloc(n - HASH_MEMBER_LEN + 2)))
        return "out of memory";
    memcpy(body, line, n - HASH_MEMBER_LEN);
    body[n - HASH_MEMBER_LEN] = '}';
    body[n - HASH_MEMBER_LEN + 1] = '\0';
    sha256_hex(body, n - HASH_MEMBER_LEN + 1, calc);
    j = json_loadb(body, n - HASH_MEMBER_LEN + 1, JSON_REJECT_DUPLICATES,
                   &jerr);
    free(body);
    if (!kc_ct_eq(calc, hash, 64))
        why = "line content does not match its hash (edited)";
    else if (!j || !json_is_string(json_object_get(j, "prev")) ||
             !json_is_integer(json_object_get(j, "seq")))
        why = "line is not a chained audit record";
    else if (strcmp(json_string_value(json_object_get(j, "prev")), prev) != 0)
        why = "chain broken: prev does not match the previous line "
              "(line removed, inserted or reordered)";
    else if ((uint64_t)json_integer_value(json_object_get(j, "seq")) !=
             want_seq)
        why = "sequence number out of order";
    else
        *seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
    json_decref(j);
    return why;
}

int
kms_audit_verify_file(const char *path, uint64_t *lines, uint64_t *bad_line,
                      const char **why)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, prev[65], hash[65];
    size_t cap = 0;
    ssize_t n;
    uint64_t no = 0, seq = 0;
    int rc = 0;

    *lines = 0;
    *bad_line = 0;
    *why = NULL;
    if (!f)
        return -errno;
    memset(prev, '0', 64);
    prev[64] = '\0';
    while ((n = getline(&line, &cap, f)) >= 0) {
        no++;
        if (n == 0 || line[n - 1] != '\n') {
            *why = "last line is incomplete (truncated)";
            rc = 1;
            break;
        }
        line[--n] = '\0';
        if (no == 1) {
            /* a log may start after rotation: take its first seq */
            json_t *j = json_loadb(line, (size_t)n, 0, NULL);
            seq =
                j ? (uint64_t)json_integer_value(json_object_get(j, "seq")) : 0;
            if (j && json_is_string(json_object_get(j, "prev")))
                kc_strlcpy(prev, json_string_value(json_object_get(j, "prev")),
                           sizeof prev);
            json_decref(j);
            if (seq == 0)
                seq = 1;
        } else {
            seq++;
        }
        if ((*why = check_line(line, (size_t)n, prev, seq, hash, &seq))) {
            rc = 1;
            break;
        }
        memcpy(prev, hash, sizeof prev);
    }
    if (rc)
        *bad_line = no;
    *lines = rc ? no - 1 : no;
    free(line);
    fclose(f);
    return rc;
}

/* Continue the chain of an existing log: read its last line. */
static kms_err
load_tail(kms_audit *a, char *detail, size_t cap)
{
    struct stat st;
    char buf[LINE_MAX_BYTES + HASH_MEMBER_LEN + 2], hash[65];
    off_t off;
    ssize_t n;
    char *start, *end;
    uint64_t seq = 0;
    json_t *j;

    memset(a->prev, '0', 64);
    a->prev[64] = '\0';
    a->seq = 0;
    if (fstat(a->fd, &st) != 0)
        return KMS_EAUDIT;
    a->regular = S_ISREG(st.st_mode);
    if (!a->regular || st.st_size == 0)
        return KMS_OK;
    off = st.st_size > (off_t)sizeof buf - 1
              ? st.st_size - (off_t)sizeof buf + 1
              : 0;
    n = pread(a->fd, buf, sizeof buf - 1, off);
    if (n <= 0)
        return KMS_EAUDIT;
    buf[n] = '\0';
    if (buf[n - 1] != '\n') {
        /* A crash (or power loss) in the middle of a batch leaves part of
         * a line. No response waited on it (responses go out only after
         * the whole batch is synced), so it is cut off, and said so. */
        char *nl = memrchr(buf, '\n', (size_t)n);
        off_t keep = nl ? off + (nl - buf) + 1 : off;
        if ((!nl && off > 0) || ftruncate(a->fd, keep) != 0 ||
            fsync(a->fd) != 0) {
            snprintf(detail, cap,
                     "audit log ends with an incomplete line "
                     "that cannot be cut off; run kms audit verify");
            return KMS_EAUDIT;
        }
        snprintf(detail, cap,
                 "cut %lld bytes of an incomplete last audit "
                 "line (left by a crash)",
                 (long long)(st.st_size - keep));
        if (!nl)
            return KMS_OK; /* the file held only that partial line */
        n = nl - buf + 1;
        buf[n] = '\0';
    }
    buf[n - 1] = '\0';
    end = buf + n - 1;
    start = strrchr(buf, '\n');
    start = start ? start + 1 : buf;
    j = json_loadb(start, (size_t)(end - start), 0, NULL);
    if (j) {
        seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
        kc_strlcpy(a->prev, json_string_value(json_object_get(j, "prev")) ?: "",
                   sizeof a->prev);
    }
    json_decref(j);
    if (!j || seq == 0 ||
        check_line(start, (size_t)(end - start), a->prev, seq, hash, &seq)) {
        snprintf(detail, cap,
                 "the audit log's last line is not a valid "
                 "chained record; run kms audit verify");
        return KMS_EAUDIT;
    }
    memcpy(a->prev, hash, sizeof a->prev);
    a->seq = seq;
    return KMS_OK;
}

static bool
write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Write one batch; returns KMS_OK when every line is durable. */
static kms_err
write_batch(kms_audit *a, aq_item *batch)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bool sync_store = false;
    uint64_t seq = a->seq;
    char prev[65];
    unsigned gen = 0;
    bool logged, synced = true;
    kms_err rc = KMS_EAUDIT;

    memcpy(prev, a->prev, sizeof prev);
    if (atomic_load(&a->broken))
        return KMS_EAUDIT;
    for (aq_item *it = batch; it; it = it->next) {
        char hash[65];
        size_t n;
        char *line =
            it->rec ? kms_audit_line(it->rec, seq + 1, prev, hash, &n) : NULL;
        if (!line)
            goto out;
        if (len + n + 1 > cap) {
            size_t ncap = (len + n + 1) * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(line);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        memcpy(buf + len, line, n);
        buf[len + n] = '\n';
        len += n + 1;
        free(line);
        memcpy(prev, hash, sizeof prev);
        seq++;
        sync_store |= it->sync_store;
    }
    if (sync_store && a->store) {
        pthread_mutex_lock(&a->mu);
        gen = ++a->sync_req;
        pthread_cond_broadcast(&a->sync_cv);
        pthread_mutex_unlock(&a->mu);
    }
    logged =
        write_all(a->fd, buf, len) && (!a->regular || fdatasync(a->fd) == 0);
    if (gen) {
        pthread_mutex_lock(&a->mu);
        while (a->sync_done != gen)
            pthread_cond_wait(&a->sync_cv, &a->mu);
        synced = a->sync_rc == KMS_ST_OK;
        pthread_mutex_unlock(&a->mu);
    }
    if (!logged || !synced)
        goto out;
    a->seq = seq;
    memcpy(a->prev, prev, sizeof prev);
    rc = KMS_OK;
out:
    free(buf);
    if (rc != KMS_OK && !atomic_exchange(&a->broken, true))
        fprintf(stderr,
                "{\"level\":\"error\",\"msg\":\"audit log cannot be "
                "written: every request now fails with 503\",\"errno\":%d}\n",
                errno);
    return rc;
}

static void *
syncer_thread(void *arg)
{
    kms_audit *a = arg;

    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (a->sync_req == a->sync_done && !a->stop)
            pthread_cond_wait(&a->sync_cv, &a->mu);
        if (a->sync_req == a->sync_done)
            break; /* stopping, nothing pending */
        unsigned gen = a->sync_req;
        pthread_mutex_unlock(&a->mu);
        kms_st_err rc = a->store->ops->sync(a->store->self);
        pthread_mutex_lock(&a->mu);
        a->sync_rc = rc;
        a->sync_done = gen;
        pthread_cond_broadcast(&a->sync_cv);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

static void *
audit_thread(void *arg)
{
    kms_audit *a = arg;

    for (;;) {
        aq_item *batch;
        size_t count = 0;
        kms_err rc;

        pthread_mutex_lock(&a->mu);
        while (!a->head && !a->stop)
            pthread_cond_wait(&a->cv, &a->mu);
        if (!a->head && a->stop) {
            pthread_mutex_unlock(&a->mu);
            break;
        }
        batch = a->head;
        a->head = NULL;
        a->tail = &a->head;
        pthread_mutex_unlock(&a->mu);

        rc = write_batch(a, batch);
        while (batch) {
            aq_item *next = batch->next;
            count++;
            json_decref(batch->rec);
            if (batch->done)
                batch->done(batch->ctx, rc);
            free(batch);
            batch = next;
        }
        if (a->metrics) {
            atomic_fetch_add(&a->metrics->audit_batches, 1);
            atomic_fetch_add(&a->metrics->audit_lines, count);
        }
    }
    return NULL;
}

kms_err
kms_audit_open(const char *path, kms_store *store, kms_metrics *m,
               kms_audit **out, char *detail, size_t detail_cap)
{
    kms_audit *a = calloc(1, sizeof *a);
    kms_err rc;

    if (!a)
        return KMS_ENOMEM;
    a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (a->fd < 0) {
        snprintf(detail, detail_cap, "cannot open audit log %s: %s", path,
                 strerror(errno));
        free(a);
        return KMS_EAUDIT;
    }
    if ((rc = load_tail(a, detail, detail_cap)) != KMS_OK) {
        close(a->fd);
        free(a);
        return rc;
    }
    a->store = store;
    a->metrics = m;
    a->tail = &a->head;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    pthread_cond_init(&a->sync_cv, NULL);
    if (store && pthread_create(&a->syncer, NULL, syncer_thread, a) != 0) {
        close(a->fd);
        free(a);
        return KMS_EINTERNAL;
    }
    if (pthread_create(&a->thread, NULL, audit_thread, a) != 0) {
        if (store) {
            pthread_mutex_lock(&a->mu);
            a->stop = true;
            pthread_cond_broadcast(&a->sync_cv);
            pthread_mutex_unlock(&a->mu);
            pthread_join(a->syncer, NULL);
        }
        close(a->fd);
        free(a);
        return KMS_EINTERNAL;
    }
    *out = a;
    return KMS_OK;
}

void
kms_audit_submit(kms_audit *a, json_t *rec, bool sync_store,
                 kms_audit_done_fn done, void *ctx)
{
    aq_item *it = calloc(1, sizeof *it);

    if (!it) {
        json_decref(rec);
        if (done)
            done(ctx, KMS_EAUDIT);
        return;
    }
    it->rec = rec;
    it->sync_store = sync_store;
    it->done = done;
    it->ctx = ctx;
    pthread_mutex_lock(&a->mu);
    *a->tail = it;
    a->tail = &it->next;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

bool
kms_audit_healthy(kms_audit *a)
{
    return a && !atomic_load(&a->broken);
}

void
kms_audit_close(kms_audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    if (a->store) {
        pthread_mutex_lock(&a->mu);
        pthread_cond_broadcast(&a->sync_cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->syncer, NULL);
    }
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    pthread_cond_destroy(&a->sync_cv);
    close(a->fd);
    free(a);
}
