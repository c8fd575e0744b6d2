/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus metrics: requests by route and status, a latency histogram,
 * audit group-commit counters and the store's size. Lock-free counters. */
#include "kmsd_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int statuses[KMS_METRIC_STATUSES] = {
    200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 429, 500, 503, 0};
static const double buckets[KMS_METRIC_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 0};

static size_t
status_index(int status)
{
    for (size_t i = 0; i + 1 < KMS_METRIC_STATUSES; i++)
        if (statuses[i] == status)
            return i;
    return KMS_METRIC_STATUSES - 1; /* "other" */
}

void
kms_metrics_observe(kms_metrics *m, size_t route, int status, uint64_t usec)
{
    size_t b;

    if (route >= KMS_METRIC_ROUTES)
        route = KMS_METRIC_ROUTES - 1;
    atomic_fetch_add(&m->req[route][status_index(status)], 1);
    for (b = 0; b + 1 < KMS_METRIC_BUCKETS; b++)
        if ((double)usec / 1e6 <= buckets[b])
            break;
    atomic_fetch_add(&m->lat_bucket[b], 1);
    atomic_fetch_add(&m->lat_count, 1);
    atomic_fetch_add(&m->lat_sum_us, usec);
}

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void
sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

char *
kms_metrics_render(kms_srv *srv, size_t *len)
{
    kms_metrics *m = &srv->metrics;
    sbuf b = {malloc(8192), 0, 8192, false};
    uint64_t cum = 0, size = 0;
    size_t nroutes = kms_route_count() + 1;

    if (!b.p)
        return NULL;
    b.p[0] = '\0';
    sb_printf(&b, "# HELP kmsd_requests_total Requests by route and status.\n"
                  "# TYPE kmsd_requests_total counter\n");
    for (size_t r = 0; r < nroutes && r < KMS_METRIC_ROUTES; r++) {
        for (size_t s = 0; s < KMS_METRIC_STATUSES; s++) {
            uint64_t v = atomic_load(&m->req[r][s]);
            if (!v)
                continue;
            if (statuses[s])
                sb_printf(
                    &b,
                    "kmsd_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                    kms_route_name(r), statuses[s], (unsigned long long)v);
            else
                sb_printf(
                    &b,
                    "kmsd_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                    kms_route_name(r), (unsigned long long)v);
        }
    }
    sb_printf(&b, "# HELP kmsd_request_duration_seconds Request latency, "
                  "including the audit group commit.\n"
                  "# TYPE kmsd_request_duration_seconds histogram\n");
    for (size_t i = 0; i < KMS_METRIC_BUCKETS; i++) {
        cum += atomic_load(&m->lat_bucket[i]);
        if (i + 1 < KMS_METRIC_BUCKETS)
            sb_printf(&b,
                      "kmsd_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                      buckets[i], (unsigned long long)cum);
        else
            sb_printf(
                &b, "kmsd_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
    }
    sb_printf(&b, "kmsd_request_duration_seconds_sum %.6f\n",
              (double)atomic_load(&m->lat_sum_us) / 1e6);
    sb_printf(&b, "kmsd_request_duration_seconds_count %llu\n",
              (unsigned long long)atomic_load(&m->lat_count));
    sb_printf(&b,
              "# TYPE kmsd_audit_lines_total counter\n"
              "kmsd_audit_lines_total %llu\n"
              "# TYPE kmsd_audit_batches_total counter\n"
              "kmsd_audit_batches_total %llu\n",
              (unsigned long long)atomic_load(&m->audit_lines),
              (unsigned long long)atomic_load(&m->audit_batches));
    if (srv->store &&
        srv->store->ops->size(srv->store->self, &size) == KMS_ST_OK)
        sb_printf(&b,
                  "# HELP kmsd_store_bytes Size of the store's data file.\n"
                  "# TYPE kmsd_store_bytes gauge\nkmsd_store_bytes %llu\n",
                  (unsigned long long)size);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
