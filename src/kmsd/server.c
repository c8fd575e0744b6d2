/* SPDX-License-Identifier: Apache-2.0 */
/* libmicrohttpd glue. Each request: headers and body are gathered (the
 * body is capped: beyond KMS_BODY_MAX the rest is discarded and the
 * request answered 413), kms_dispatch() runs in the MHD worker thread,
 * then the connection is suspended while the audit thread makes the
 * request's line durable; the audit thread resumes it and the response
 * goes out. A request whose audit line cannot be written gets 503. */
#include "server.h"

#include "kc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WRITE_BATCH_MAX 256

typedef struct conn_state conn_state;

/* Cheap writes go to one thread that runs them in batches, one store
 * transaction (and one fsync) per batch. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    conn_state *head, **tail;
    bool stop, started;
} write_queue;

const kms_api kms_api_v1 = {kms_dispatch, kms_batchable, kms_dispatch_batch};
const kms_api kms_api_aws = {kms_aws_dispatch, kms_aws_batchable,
                             kms_aws_dispatch_batch};

struct kms_server {
    struct MHD_Daemon *d;
    kms_srv *srv;
    const kms_api *api;
    bool verbose;
    atomic_int inflight;
    write_queue wq;
};

typedef struct {
    kms_kv kv[KMS_QUERY_MAX];
    size_t count;
    bool overflow;
} query_set;

struct conn_state {
    conn_state *next; /* write queue link */
    kms_server *s;
    struct MHD_Connection *conn;
    kms_req req;
    query_set q;
    char remote[64];
    uint8_t *body;
    size_t body_len, body_cap;
    bool too_big, dispatched;
    atomic_bool audited;
    kms_err audit_rc;
    struct timespec t0;
    kms_resp resp;
};

typedef struct {
    char *buf;
    size_t len;
} resp_buf;

static void
free_resp_buf(void *cls)
{
    resp_buf *rb = cls;

    kc_free_wipe(rb->buf, rb->len);
    free(rb);
}

bool
kms_parse_listen(const char *s, struct sockaddr_storage *ss, size_t *ss_len,
                 bool *loopback)
{
    char host[64];
    const char *colon;
    uint64_t port;
    size_t hl;

    memset(ss, 0, sizeof *ss);
    if (!s || !(colon = strrchr(s, ':')) || kc_parse_u64(colon + 1, &port) ||
        port > 65535)
        return false;
    hl = (size_t)(colon - s);
    if (hl >= sizeof host || hl == 0)
        return false;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (host[0] == '[') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (hl < 3 || host[hl - 1] != ']')
            return false;
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return false;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *ss_len = sizeof *a6;
        *loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
        return true;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        return false;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *ss_len = sizeof *a4;
    *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    return true;
}

static enum MHD_Result
collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
            const char *value)
{
    query_set *q = cls;

    (void)kind;
    if (q->count == KMS_QUERY_MAX) {
        q->overflow = true;
        return MHD_NO;
    }
    q->kv[q->count].key = key;
    q->kv[q->count].value = value;
    q->count++;
    return MHD_YES;
}

static const char *
header_of(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

static const char *
bearer(struct MHD_Connection *conn)
{
    const char *h =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (h && strncasecmp(h, "Bearer ", 7) == 0)
        return h + 7;
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-KMS-Token");
}

static void
remote_addr(struct MHD_Connection *conn, char *buf, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    buf[0] = '\0';
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf,
                  (socklen_t)cap);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
                  (socklen_t)cap);
}

static void
audit_done(void *ctx, kms_err rc)
{
    conn_state *cs = ctx;

    cs->audit_rc = rc;
    atomic_store(&cs->audited, true);
    MHD_resume_connection(cs->conn);
}

static void
set_error(kms_resp *r, kms_err e)
{
    char buf[160];
    int n = snprintf(buf, sizeof buf,
                     "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                     kms_errcode(e), kms_strerror(e));

    kc_free_wipe(r->body, r->body_len);
    r->body = strdup(buf);
    r->body_len = r->body ? (size_t)n : 0;
    r->status = kms_err_status(e);
    r->content_type = "application/json";
}

static enum MHD_Result
send_response(conn_state *cs)
{
    kms_resp *r = &cs->resp;
    resp_buf *rb = malloc(sizeof *rb);
    struct MHD_Response *mr;
    struct timespec t1;
    enum MHD_Result ret;
    uint64_t usec;
    char ra[16];

    if (cs->audit_rc != KMS_OK)
        set_error(r, KMS_EAUDIT);
    if (!rb || !r->body) {
        free(rb);
        return MHD_NO;
    }
    rb->buf = r->body;
    rb->len = r->body_len;
    r->body = NULL;
    r->body_len = 0;
    mr = MHD_create_response_from_buffer_with_free_callback_cls(
        rb->len, rb->buf, free_resp_buf, rb);
    if (!mr) {
        free_resp_buf(rb);
        return MHD_NO;
    }
    MHD_add_response_header(mr, "Content-Type", r->content_type);
    MHD_add_response_header(mr, "Cache-Control", "no-store");
    MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
    if (r->retry_after) {
        snprintf(ra, sizeof ra, "%u", r->retry_after);
        MHD_add_response_header(mr, "Retry-After", ra);
    }
    ret = MHD_queue_response(cs->conn, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    usec = (uint64_t)((t1.tv_sec - cs->t0.tv_sec) * 1000000LL +
                      (t1.tv_nsec - cs->t0.tv_nsec) / 1000);
    kms_metrics_observe(&cs->s->srv->metrics, r->route_index, r->status, usec);
    if (cs->s
            ->verbose) /* route names and statuses only: no paths, no secrets */
        fprintf(stderr,
                "{\"level\":\"debug\",\"msg\":\"request\",\"route\":\"%s\","
                "\"status\":%d,\"usec\":%llu}\n",
                kms_route_name(r->route_index), r->status,
                (unsigned long long)usec);
    return ret;
}

/* Fill cs->req; every pointer stays valid until the request completes. */
static void
build_request(conn_state *cs, const char *url, const char *method)
{
    kms_req *req = &cs->req;

    MHD_get_connection_values(cs->conn, MHD_GET_ARGUMENT_KIND, collect_arg,
                              &cs->q);
    remote_addr(cs->conn, cs->remote, sizeof cs->remote);
    memset(req, 0, sizeof *req);
    req->method = method;
    req->path = url;
    req->query = cs->q.kv;
    req->query_count = cs->q.count;
    req->token = bearer(cs->conn);
    req->remote = cs->remote;
    req->body = cs->body;
    req->body_len = cs->body_len;
    req->body_too_big = cs->too_big;
    req->header = header_of;
    req->header_ctx = cs->conn;
    if (cs->q.overflow)
        req->path = "/\x01too-many-query-arguments"; /* routes nowhere: 404 */
}

static void
drop_body(conn_state *cs)
{
    kc_free_wipe(cs->body, cs->body_cap);
    cs->body = NULL;
    cs->body_len = cs->body_cap = 0;
    cs->req.body = NULL;
    cs->req.body_len = 0;
}

/* The response is ready: hand its audit record to the audit thread, which
 * resumes the (suspended) connection once the line is durable. */
static void
to_audit(conn_state *cs)
{
    json_t *rec = cs->resp.audit;
    bool written = cs->resp.store_written;

    /* Once submitted, cs belongs to the audit thread and then to MHD (it
     * may be freed before kms_audit_submit() returns): touch it no more. */
    cs->resp.audit = NULL;
    kms_audit_submit(cs->s->srv->audit, rec, written, audit_done, cs);
}

static void *
writer_thread(void *arg)
{
    kms_server *s = arg;
    write_queue *q = &s->wq;
    const kms_req *reqs[WRITE_BATCH_MAX];
    kms_resp *resps[WRITE_BATCH_MAX];
    conn_state *batch[WRITE_BATCH_MAX];

    for (;;) {
        size_t n = 0;

        pthread_mutex_lock(&q->mu);
        while (!q->head && !q->stop)
            pthread_cond_wait(&q->cv, &q->mu);
        if (!q->head) {
            pthread_mutex_unlock(&q->mu);
            break;
        }
        while (q->head && n < WRITE_BATCH_MAX) {
            batch[n++] = q->head;
            q->head = q->head->next;
        }
        if (!q->head)
            q->tail = &q->head;
        pthread_mutex_unlock(&q->mu);

        for (size_t i = 0; i < n; i++) {
            reqs[i] = &batch[i]->req;
            resps[i] = &batch[i]->resp;
        }
        s->api->dispatch_batch(s->srv, reqs, resps, n);
        for (size_t i = 0; i < n; i++) {
            drop_body(batch[i]);
            to_audit(batch[i]);
        }
    }
    return NULL;
}

static void
enqueue_write(conn_state *cs)
{
    write_queue *q = &cs->s->wq;

    cs->next = NULL;
    pthread_mutex_lock(&q->mu);
    *q->tail = cs;
    q->tail = &cs->next;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static bool
append_body(conn_state *cs, const char *data, size_t n)
{
    size_t need;

    if (cs->too_big)
        return true;
    if (n > KMS_BODY_MAX || cs->body_len > KMS_BODY_MAX - n) {
        cs->too_big = true;
        kc_free_wipe(cs->body, cs->body_cap);
        cs->body = NULL;
        cs->body_len = cs->body_cap = 0;
        return true;
    }
    need = cs->body_len + n;
    if (need > cs->body_cap) {
        size_t ncap = cs->body_cap ? cs->body_cap : 1024;
        uint8_t *nb;
        while (ncap < need)
            ncap *= 2;
        if (ncap > KMS_BODY_MAX)
            ncap = KMS_BODY_MAX;
        /* grow by copy so that the old buffer can be wiped */
        if (!(nb = malloc(ncap)))
            return false;
        if (cs->body_len)
            memcpy(nb, cs->body, cs->body_len);
        kc_free_wipe(cs->body, cs->body_cap);
        cs->body = nb;
        cs->body_cap = ncap;
    }
    memcpy(cs->body + cs->body_len, data, n);
    cs->body_len = need;
    return true;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
           const char *method, const char *version, const char *upload_data,
           size_t *upload_data_size, void **con_cls)
{
    kms_server *s = cls;
    conn_state *cs = *con_cls;

    (void)version;
    if (!cs) {
        const char *cl;
        uint64_t n;
        if (!(cs = calloc(1, sizeof *cs)))
            return MHD_NO;
        cs->s = s;
        cs->conn = conn;
        clock_gettime(CLOCK_MONOTONIC, &cs->t0);
        atomic_fetch_add(&s->inflight, 1);
        *con_cls = cs;
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!cl || kc_parse_u64(cl, &n) != 0 || n <= KMS_BODY_MAX)
            return MHD_YES;
        /* Declared too large: answer 413 (audited) without reading the
         * body; libmicrohttpd then closes the connection. */
        cs->too_big = true;
        cs->dispatched = true;
        build_request(cs, url, method);
        s->api->dispatch(s->srv, &cs->req, &cs->resp);
        if (!s->srv->audit) {
            cs->audit_rc = KMS_OK;
            return send_response(cs);
        }
        MHD_suspend_connection(conn);
        to_audit(cs);
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!cs->dispatched && !append_body(cs, upload_data, *upload_data_size))
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!cs->dispatched) {
        cs->dispatched = true;
        build_request(cs, url, method);
        if (!s->srv->audit) {
            s->api->dispatch(s->srv, &cs->req, &cs->resp);
            drop_body(cs);
            cs->audit_rc = KMS_OK;
            return send_response(cs);
        }
        /* Suspend first: the connection is resumed (by the audit thread)
         * only after this, once its audit line is durable. */
        MHD_suspend_connection(conn);
        if (s->api->batchable(&cs->req)) {
            enqueue_write(cs);
        } else {
            s->api->dispatch(s->srv, &cs->req, &cs->resp);
            drop_body(cs);
            to_audit(cs);
        }
        return MHD_YES;
    }
    if (!atomic_load(&cs->audited))
        return MHD_YES;
    return send_response(cs);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    kms_server *s = cls;
    conn_state *cs = *con_cls;

    (void)conn;
    (void)toe;
    if (!cs)
        return;
    kc_free_wipe(cs->body, cs->body_cap);
    kms_resp_free(&cs->resp);
    free(cs);
    *con_cls = NULL;
    atomic_fetch_sub(&s->inflight, 1);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    kms_server *s = cls;
    char msg[512];

    if (!s->verbose)
        return;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\r\n\"\\")] = '\0';
    fprintf(stderr, "{\"level\":\"debug\",\"msg\":\"mhd: %s\"}\n", msg);
}

kms_err
kms_server_start(kms_srv *srv, const kms_api *api, const struct sockaddr *addr,
                 unsigned threads, const char *tls_cert, const char *tls_key,
                 bool verbose, kms_server **out, uint16_t *port, char *detail,
                 size_t detail_cap)
{
    kms_server *s = calloc(1, sizeof *s);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *di;

    if (!s)
        return KMS_ENOMEM;
    pthread_mutex_init(&s->wq.mu, NULL);
    pthread_cond_init(&s->wq.cv, NULL);
    s->wq.tail = &s->wq.head;
    s->srv = srv;
    s->api = api ? api : &kms_api_v1;
    s->verbose = verbose;
    if (addr->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (tls_cert) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(detail, detail_cap, "libmicrohttpd was built without TLS");
            free(s);
            return KMS_EINVAL;
        }
        flags |= MHD_USE_TLS;
    }
    if (threads == 0)
        threads = 1;
    if (tls_cert)
        s->d = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, addr,
            MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED,
            on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
            MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_EXTERNAL_LOGGER,
            mhd_log, s, MHD_OPTION_HTTPS_MEM_CERT, tls_cert,
            MHD_OPTION_HTTPS_MEM_KEY, tls_key, MHD_OPTION_END);
    else
        s->d = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, addr,
            MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED,
            on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
            MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_EXTERNAL_LOGGER,
            mhd_log, s, MHD_OPTION_END);
    if (!s->d) {
        snprintf(detail, detail_cap,
                 "cannot start the HTTP listener (address in use, bad "
                 "certificate or key?)");
        free(s);
        return KMS_EINVAL;
    }
    di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    if (pthread_create(&s->wq.thread, NULL, writer_thread, s) != 0) {
        MHD_stop_daemon(s->d);
        free(s);
        return KMS_EINTERNAL;
    }
    s->wq.started = true;
    *port = di ? di->port : 0;
    *out = s;
    return KMS_OK;
}

void
kms_server_stop(kms_server *s, unsigned drain_ms)
{
    MHD_socket lsock;

    if (!s)
        return;
    lsock = MHD_quiesce_daemon(s->d);
    for (unsigned waited = 0;
         atomic_load(&s->inflight) > 0 && waited < drain_ms; waited += 10) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->d);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    if (s->wq.started) {
        pthread_mutex_lock(&s->wq.mu);
        s->wq.stop = true;
        pthread_cond_signal(&s->wq.cv);
        pthread_mutex_unlock(&s->wq.mu);
        pthread_join(s->wq.thread, NULL);
    }
    free(s);
}
