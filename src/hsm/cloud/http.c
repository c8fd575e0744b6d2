/* SPDX-License-Identifier: Apache-2.0 */
/* HTTPS client over libcurl; see http.h for the policy. */
#include "http.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "kc.h"

const char *
hsm_http_strerror(hsm_http_err e)
{
    switch (e) {
#define HSM_HTTP_STR_(name, msg)                                               \
    case name:                                                                 \
        return msg;
        HSM_HTTP_ERRORS(HSM_HTTP_STR_)
#undef HSM_HTTP_STR_
    default:
        return "unknown http error";
    }
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void
curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

bool
hsm_http_host_is_loopback(const char *host)
{
    struct in_addr a4;

    if (!host)
        return false;
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
        strcmp(host, "::1") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return false;
}

bool
hsm_http_host_is_metadata(const char *host)
{
    return host && (strcmp(host, "169.254.169.254") == 0 ||
                    strcasecmp(host, "[fd00:ec2::254]") == 0 ||
                    strcasecmp(host, "metadata.google.internal") == 0);
}

static hsm_http_err
url_part(CURLU *h, CURLUPart what, char *out, size_t cap, bool required)
{
    char *v = NULL;
    CURLUcode rc = curl_url_get(h, what, &v, 0);
    hsm_http_err e = HSM_HTTP_OK;

    out[0] = '\0';
    if (rc != CURLUE_OK) {
        return required ? HSM_HTTP_EURL : HSM_HTTP_OK;
    }
    if (kc_strlcpy(out, v, cap) < 0)
        e = HSM_HTTP_EURL;
    curl_free(v);
    return e;
}

hsm_http_err
hsm_http_url_parse(const char *url, hsm_http_url *u)
{
    CURLU *h;
    char scheme[16], port[16], tmp[8];
    hsm_http_err e = HSM_HTTP_EURL;

    if (!url || !u)
        return HSM_HTTP_EINVAL;
    memset(u, 0, sizeof *u);
    if (strlen(url) > 4096 || !(h = curl_url()))
        return HSM_HTTP_EURL;
    if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto out;
    if (url_part(h, CURLUPART_SCHEME, scheme, sizeof scheme, true) ||
        url_part(h, CURLUPART_HOST, u->host, sizeof u->host, true) ||
        url_part(h, CURLUPART_PORT, port, sizeof port, false) ||
        url_part(h, CURLUPART_PATH, u->path, sizeof u->path, false) ||
        url_part(h, CURLUPART_QUERY, u->query, sizeof u->query, false))
        goto out;
    /* No credentials or fragments in endpoint URLs. */
    if (url_part(h, CURLUPART_USER, tmp, sizeof tmp, false) || tmp[0] ||
        url_part(h, CURLUPART_FRAGMENT, tmp, sizeof tmp, false) || tmp[0])
        goto out;
    if (strcmp(scheme, "https") == 0)
        u->https = true;
    else if (strcmp(scheme, "http") != 0)
        goto out;
    if (!u->host[0])
        goto out;
    if (!u->path[0])
        kc_strlcpy(u->path, "/", sizeof u->path);
    u->loopback = hsm_http_host_is_loopback(u->host);
    if (port[0] && strcmp(port, u->https ? "443" : "80") != 0) {
        if (snprintf(u->authority, sizeof u->authority, "%s:%s", u->host,
                     port) >= (int)sizeof u->authority)
            goto out;
    } else if (kc_strlcpy(u->authority, u->host, sizeof u->authority) < 0) {
        goto out;
    }
    e = HSM_HTTP_OK;
out:
    curl_url_cleanup(h);
    return e;
}

typedef struct {
    hsm_http_response *r;
    size_t max;
    bool too_big;
    bool oom;
} sink;

static size_t
on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    sink *s = ud;
    hsm_http_response *r = s->r;
    size_t n = size * nmemb;

    if (n > s->max || r->body_len > s->max - n) {
        s->too_big = true;
        return 0; /* abort the transfer */
    }
    if (r->body_len + n + 1 > r->cap_) {
        size_t cap = r->cap_ ? r->cap_ : 4096;
        uint8_t *q;

        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (!(q = malloc(cap))) {
            s->oom = true;
            return 0;
        }
        if (r->body) {
            memcpy(q, r->body, r->body_len);
            kc_free_wipe(r->body, r->cap_);
        }
        r->body = q;
        r->cap_ = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = 0;
    return n;
}

static hsm_http_err
map_curl(CURLcode c, const sink *s)
{
    if (s->too_big)
        return HSM_HTTP_ETOOBIG;
    if (s->oom)
        return HSM_HTTP_ENOMEM;
    switch (c) {
    case CURLE_OK:
        return HSM_HTTP_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return HSM_HTTP_EDNS;
    case CURLE_COULDNT_CONNECT:
        return HSM_HTTP_ECONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return HSM_HTTP_ETIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        return HSM_HTTP_ETLS;
    case CURLE_OUT_OF_MEMORY:
        return HSM_HTTP_ENOMEM;
    default:
        return HSM_HTTP_EIO;
    }
}

static void
free_headers(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        kc_wipe(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

/* Header list: the caller's lines, then Expect: (no 100-continue) and an
 * empty Content-Type unless the caller set one (curl would add
 * application/x-www-form-urlencoded to a body). */
static struct curl_slist *
make_headers(const hsm_http_request *req, const hsm_http_url *u)
{
    struct curl_slist *l = NULL, *n;
    bool has_ct = false, has_host = false;
    char host[320];

    for (size_t i = 0; i < req->header_count; i++) {
        if (!req->headers[i] || strpbrk(req->headers[i], "\r\n"))
            goto fail;
        has_ct |= strncasecmp(req->headers[i], "content-type:", 13) == 0;
        has_host |= strncasecmp(req->headers[i], "host:", 5) == 0;
        if (!(n = curl_slist_append(l, req->headers[i])))
            goto fail;
        l = n;
    }
    if (!has_host) {
        /* Send exactly the Host a signature may have covered. */
        snprintf(host, sizeof host, "Host: %s", u->authority);
        if (!(n = curl_slist_append(l, host)))
            goto fail;
        l = n;
    }
    if (!(n = curl_slist_append(l, "Expect:")))
        goto fail;
    l = n;
    if (!has_ct) {
        if (!(n = curl_slist_append(l, "Content-Type:")))
            goto fail;
        l = n;
    }
    return l;
fail:
    free_headers(l);
    return NULL;
}

static void set_detail(char *detail, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_detail(char *detail, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (!detail || !cap)
        return;
    va_start(ap, fmt);
    vsnprintf(detail, cap, fmt, ap);
    va_end(ap);
}

static hsm_http_err
setup(CURL *c, const hsm_http_opts *o, const hsm_http_request *req,
      struct curl_slist *hdrs, sink *s, char *errbuf)
{
    long cto = o && o->connect_timeout_ms > 0 ? o->connect_timeout_ms
                                              : HSM_HTTP_DEFAULT_CONNECT_MS;
    long to =
        o && o->timeout_ms > 0 ? o->timeout_ms : HSM_HTTP_DEFAULT_TIMEOUT_MS;
    CURLcode rc = CURLE_OK;

#define SET(opt, val)                                                          \
    do {                                                                       \
        if (rc == CURLE_OK)                                                    \
            rc = curl_easy_setopt(c, opt, val);                                \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, cto);
    SET(CURLOPT_TIMEOUT_MS, to);
    SET(CURLOPT_HTTPHEADER, hdrs);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, s);
    SET(CURLOPT_PROXY, ""); /* no proxy from the environment */
    if (o && o->ca_bundle && *o->ca_bundle)
        SET(CURLOPT_CAINFO, o->ca_bundle);
    if (strcmp(req->method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else {
        SET(CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (strcmp(req->method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, req->method);
    }
#undef SET
    return rc == CURLE_OK ? HSM_HTTP_OK : HSM_HTTP_EINVAL;
}

hsm_http_err
hsm_http_perform(const hsm_http_opts *opts, const hsm_http_request *req,
                 hsm_http_response *resp, char *detail, size_t detail_cap)
{
    hsm_http_url u;
    CURL *c = NULL;
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE];
    sink s = {0};
    hsm_http_err e;
    CURLcode cc;

    if (detail && detail_cap)
        detail[0] = '\0';
    if (!req || !resp || !req->method || !req->url ||
        (req->header_count && !req->headers) || (req->body_len && !req->body))
        return HSM_HTTP_EINVAL;
    memset(resp, 0, sizeof *resp);
    if ((e = hsm_http_url_parse(req->url, &u)) != HSM_HTTP_OK) {
        set_detail(detail, detail_cap, "malformed URL");
        return e;
    }
    if (!u.https && !u.loopback &&
        !(req->metadata && hsm_http_host_is_metadata(u.host))) {
        set_detail(detail, detail_cap,
                   "refusing plain http:// to %.200s; use https://", u.host);
        return HSM_HTTP_EINSECURE;
    }
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return HSM_HTTP_EIO;
    e = HSM_HTTP_ENOMEM;
    if (!(c = curl_easy_init()) || !(hdrs = make_headers(req, &u)))
        goto out;
    errbuf[0] = '\0';
    s.r = resp;
    s.max = opts && opts->max_response ? opts->max_response
                                       : HSM_HTTP_DEFAULT_MAX_RESPONSE;
    if ((e = setup(c, opts, req, hdrs, &s, errbuf)) != HSM_HTTP_OK)
        goto out;
    cc = curl_easy_perform(c);
    if ((e = map_curl(cc, &s)) != HSM_HTTP_OK) {
        if (e == HSM_HTTP_ETOOBIG)
            set_detail(detail, detail_cap,
                       "response larger than the configured limit");
        else
            set_detail(detail, detail_cap, "%s: %.180s", hsm_http_strerror(e),
                       errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (!resp->body) {
        if (!(resp->body = calloc(1, 1))) {
            e = HSM_HTTP_ENOMEM;
            goto out;
        }
        resp->cap_ = 1;
    }
    e = HSM_HTTP_OK;
out:
    free_headers(hdrs);
    if (c)
        curl_easy_cleanup(c);
    if (e != HSM_HTTP_OK)
        hsm_http_response_free(resp);
    return e;
}

void
hsm_http_response_free(hsm_http_response *resp)
{
    if (!resp)
        return;
    if (resp->body)
        kc_free_wipe(resp->body, resp->cap_);
    memset(resp, 0, sizeof *resp);
}
