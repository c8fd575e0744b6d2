/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP(S) front end on libmicrohttpd: a thread pool with epoll, request
 * bodies capped at KMS_BODY_MAX, and responses held back (connection
 * suspended) until their audit line is durable. */
#ifndef KMSD_SERVER_H
#define KMSD_SERVER_H

#include "kmsd_int.h"

#include <sys/socket.h>

typedef struct kms_server kms_server;

/* The API a listener serves: kmsd's own (kms_api_v1); a later listener
 * (the AWS KMS-compatible endpoint) brings its own router. */
typedef struct kms_api {
    void (*dispatch)(kms_srv *srv, const kms_req *req, kms_resp *resp);
    bool (*batchable)(const kms_req *req);
    void (*dispatch_batch)(kms_srv *srv, const kms_req *const *reqs,
                           kms_resp *const *resps, size_t n);
} kms_api;

extern const kms_api kms_api_v1;
extern const kms_api kms_api_aws; /* the AWS KMS-compatible endpoint */

/* Parse "ADDR:PORT" / "[V6]:PORT" (numeric addresses only). */
bool kms_parse_listen(const char *s, struct sockaddr_storage *ss,
                      size_t *ss_len, bool *loopback);

/* Start listening. `tls_cert`/`tls_key` are PEM text (NULL for plain
 * HTTP); the key buffer may be wiped once this returns. */
kms_err kms_server_start(kms_srv *srv, const kms_api *api,
                         const struct sockaddr *addr, unsigned threads,
                         const char *tls_cert, const char *tls_key,
                         bool verbose, kms_server **out, uint16_t *port,
                         char *detail, size_t detail_cap);
/* Stop accepting, let in-flight requests finish (up to `drain_ms`), stop. */
void kms_server_stop(kms_server *s, unsigned drain_ms);

#endif
