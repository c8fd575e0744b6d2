/* SPDX-License-Identifier: Apache-2.0 */
/* AWS Signature Version 4, from the AWS General Reference ("Create a
 * canonical request", "Create a string to sign", "Calculate the
 * signature"). See sigv4.h for the contract. */
#include "sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "kc.h"

#define ALGORITHM    "AWS4-HMAC-SHA256"
#define MAX_SECRET   256
#define MAX_HEADERS  256
#define DEFAULT_SKEW 300

const char *
hsm_sigv4_strerror(hsm_sigv4_err e)
{
    switch (e) {
#define HSM_SIGV4_STR_(name, msg)                                              \
    case name:                                                                 \
        return msg;
        HSM_SIGV4_ERRORS(HSM_SIGV4_STR_)
#undef HSM_SIGV4_STR_
    default:
        return "unknown sigv4 error";
    }
}

/* ---- a small growable string; wiped on free (may hold the token) ------ */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void
sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n > SIZE_MAX / 2 - b->len - 1) {
        b->oom = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *q;

        while (cap < b->len + n + 1)
            cap *= 2;
        q = malloc(cap);
        if (!q) {
            b->oom = true;
            return;
        }
        if (b->p) {
            memcpy(q, b->p, b->len);
            kc_free_wipe(b->p, b->cap);
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sb_puts(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void
sb_putc(sbuf *b, char c)
{
    sb_put(b, &c, 1);
}

static void
sb_free(sbuf *b)
{
    if (b->p)
        kc_free_wipe(b->p, b->cap);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Hand the buffer over (NUL-terminated); NULL on earlier OOM. */
static char *
sb_take(sbuf *b)
{
    char *p;

    if (b->oom || !b->p) {
        sb_free(b);
        return NULL;
    }
    p = b->p;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

/* ---- encodings --------------------------------------------------------- */

static bool
unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
           c == '~';
}

/* SigV4 URI encoding: every byte but the unreserved ones as %XX (upper
 * case hex); '/' kept when keep_slash. */
static void
uri_encode(sbuf *b, const char *s, size_t n, bool keep_slash)
{
    static const char hx[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (unreserved(c) || (keep_slash && c == '/')) {
            sb_putc(b, (char)c);
        } else {
            char e[3] = {'%', hx[c >> 4], hx[c & 15]};
            sb_put(b, e, 3);
        }
    }
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into a new buffer; -1 on a malformed escape. */
static int
pct_decode(const char *s, size_t n, char **out, size_t *out_len)
{
    char *d = malloc(n + 1);
    size_t j = 0;

    if (!d)
        return -2;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi, lo;

            if (i + 2 >= n) {
                free(d);
                return -1;
            }
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) {
                free(d);
                return -1;
            }
            d[j++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            d[j++] = s[i];
        }
    }
    d[j] = '\0';
    *out = d;
    *out_len = j;
    return 0;
}

void
hsm_sigv4_sha256_hex(const uint8_t *data, size_t len, char hex[65])
{
    uint8_t md[32];

    SHA256(data ? data : (const uint8_t *)"", len, md);
    kc_hex_encode(md, sizeof md, hex, 65);
}

int
hsm_sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;

    if (!gmtime_r(&t, &tm))
        return -1;
    return strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) == 16 ? 0 : -1;
}

int
hsm_sigv4_parse_amz_date(const char *s, time_t *t)
{
    struct tm tm;
    int v[6];
    static const int pos[6] = {0, 4, 6, 9, 11, 13};
    static const int wid[6] = {4, 2, 2, 2, 2, 2};

    if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return -1;
    for (int k = 0; k < 6; k++) {
        v[k] = 0;
        for (int i = 0; i < wid[k]; i++) {
            char c = s[pos[k] + i];

            if (c < '0' || c > '9')
                return -1;
            v[k] = v[k] * 10 + (c - '0');
        }
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
        v[4] > 59 || v[5] > 60)
        return -1;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    *t = timegm(&tm);
    return *t == (time_t)-1 ? -1 : 0;
}

/* ---- canonical URI and query (AWS "Create a canonical request") ------- */

/* Returns -1 for a path too deep to normalise (refused as malformed). */
static int
canonical_uri(sbuf *b, const char *path, unsigned flags)
{
    const char *segs[512];
    size_t lens[512], n = 0, plen;

    if (!path || !*path) {
        sb_putc(b, '/');
        return 0;
    }
    plen = strlen(path);
    if (flags & HSM_SIGV4_S3_PATH) {
        sb_put(b, path, plen);
        return 0;
    }
    /* Normalise: drop empty and "." segments, ".." removes the previous
     * one (RFC 3986 section 5.2.4), then encode each byte once more. */
    for (const char *s = path; *s;) {
        const char *e = strchr(s, '/');
        size_t l = e ? (size_t)(e - s) : strlen(s);

        if (l == 0 || (l == 1 && s[0] == '.')) {
            /* skip */
        } else if (l == 2 && s[0] == '.' && s[1] == '.') {
            if (n > 0)
                n--;
        } else if (n == sizeof segs / sizeof segs[0]) {
            return -1;
        } else {
            segs[n] = s;
            lens[n++] = l;
        }
        s += l;
        if (*s == '/')
            s++;
    }
    sb_putc(b, '/');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_putc(b, '/');
        uri_encode(b, segs[i], lens[i], false);
    }
    if (n > 0 && path[plen - 1] == '/')
        sb_putc(b, '/');
    return 0;
}

typedef struct {
    char *kv; /* "enc(name)\0enc(value)\0" */
    size_t name_len;
} qparam;

static int
qparam_cmp(const void *a, const void *b)
{
    const qparam *x = a, *y = b;
    int c = strcmp(x->kv, y->kv);

    if (c)
        return c;
    return strcmp(x->kv + x->name_len + 1, y->kv + y->name_len + 1);
}

static hsm_sigv4_err
encode_part(const char *s, size_t n, sbuf *out)
{
    char *d = NULL;
    size_t dl = 0;
    int r = pct_decode(s, n, &d, &dl);

    if (r == -2)
        return HSM_SIGV4_ENOMEM;
    if (r < 0)
        return HSM_SIGV4_EMALFORMED;
    uri_encode(out, d, dl, false);
    free(d);
    return HSM_SIGV4_OK;
}

static hsm_sigv4_err
canonical_query(sbuf *b, const char *query)
{
    qparam *ps = NULL;
    size_t n = 0, cap = 0;
    hsm_sigv4_err rc = HSM_SIGV4_OK;

    if (!query || !*query)
        return HSM_SIGV4_OK;
    for (const char *s = query; *s;) {
        const char *e = strchr(s, '&');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        const char *eq = memchr(s, '=', l);
        size_t nl = eq ? (size_t)(eq - s) : l;
        sbuf kv = {0};

        if (l > 0) {
            if (n == cap) {
                qparam *q;

                cap = cap ? cap * 2 : 16;
                q = realloc(ps, cap * sizeof *ps);
                if (!q) {
                    rc = HSM_SIGV4_ENOMEM;
                    goto out;
                }
                ps = q;
            }
            if ((rc = encode_part(s, nl, &kv)) != HSM_SIGV4_OK)
                goto out_kv;
            ps[n].name_len = kv.len;
            sb_putc(&kv, '\0');
            if (eq &&
                (rc = encode_part(eq + 1, l - nl - 1, &kv)) != HSM_SIGV4_OK)
                goto out_kv;
            sb_putc(&kv, '\0');
            if (!(ps[n].kv = sb_take(&kv))) {
                rc = HSM_SIGV4_ENOMEM;
                goto out;
            }
            n++;
        }
        s += l;
        if (*s == '&')
            s++;
        continue;
    out_kv:
        sb_free(&kv);
        goto out;
    }
    qsort(ps, n, sizeof *ps, qparam_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_putc(b, '&');
        sb_puts(b, ps[i].kv);
        sb_putc(b, '=');
        sb_puts(b, ps[i].kv + ps[i].name_len + 1);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(ps[i].kv);
    free(ps);
    return rc;
}

/* ---- canonical headers ------------------------------------------------- */

/* Headers the AWS SDKs never sign: a proxy or the HTTP stack may change
 * them on the way. */
static const char *const unsignable[] = {
    "authorization",
    "cache-control",
    "connection",
    "expect",
    "from",
    "keep-alive",
    "max-forwards",
    "pragma",
    "referer",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
};

static bool
is_unsignable(const char *lname)
{
    for (size_t i = 0; i < sizeof unsignable / sizeof unsignable[0]; i++)
        if (strcmp(lname, unsignable[i]) == 0)
            return true;
    return false;
}

static bool
token_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

/* Lower-case copy of a header name into `out`; -1 if not an RFC 7230
 * token or too long. */
static int
lower_name(const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);

    if (n == 0 || n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!token_char((unsigned char)name[i]))
            return -1;
        out[i] = (char)tolower((unsigned char)name[i]);
    }
    out[n] = '\0';
    return 0;
}

typedef struct {
    char name[128];
    const char *value;
    size_t order;
} chdr;

static int
chdr_cmp(const void *a, const void *b)
{
    const chdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Trim and fold runs of blanks to one space; -1 on control bytes. */
static int
put_value(sbuf *b, const char *v)
{
    bool pending_space = false, any = false;

    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == ' ' || *p == '\t') {
            pending_space = any;
            continue;
        }
        if (*p < 0x20 || *p == 0x7f)
            return -1;
        if (pending_space)
            sb_putc(b, ' ');
        pending_space = false;
        any = true;
        sb_putc(b, (char)*p);
    }
    return 0;
}

/* Build the canonical request from `sel` (the headers to sign). Fills
 * `creq` and `signed_headers`. */
static hsm_sigv4_err
build_canonical(const char *method, const char *path, const char *query,
                const hsm_sigv4_header *sel, size_t sel_count,
                const char *payload_hash, unsigned flags, sbuf *creq,
                sbuf *signed_headers)
{
    chdr *h = NULL;
    hsm_sigv4_err rc = HSM_SIGV4_OK;

    if (sel_count == 0 || sel_count > MAX_HEADERS)
        return HSM_SIGV4_EMALFORMED;
    if (!(h = calloc(sel_count, sizeof *h)))
        return HSM_SIGV4_ENOMEM;
    for (size_t i = 0; i < sel_count; i++) {
        if (lower_name(sel[i].name, h[i].name, sizeof h[i].name) < 0 ||
            !sel[i].value) {
            rc = HSM_SIGV4_EMALFORMED;
            goto out;
        }
        h[i].value = sel[i].value;
        h[i].order = i;
    }
    qsort(h, sel_count, sizeof *h, chdr_cmp);

    sb_puts(creq, method);
    sb_putc(creq, '\n');
    if (canonical_uri(creq, path, flags) < 0) {
        rc = HSM_SIGV4_EMALFORMED;
        goto out;
    }
    sb_putc(creq, '\n');
    if ((rc = canonical_query(creq, query)) != HSM_SIGV4_OK)
        goto out;
    sb_putc(creq, '\n');
    for (size_t i = 0; i < sel_count; i++) {
        bool first = i == 0 || strcmp(h[i].name, h[i - 1].name) != 0;

        if (first) {
            if (i) {
                sb_putc(creq, '\n');
                sb_putc(signed_headers, ';');
            }
            sb_puts(creq, h[i].name);
            sb_putc(creq, ':');
            sb_puts(signed_headers, h[i].name);
        } else {
            sb_putc(creq, ',');
        }
        if (put_value(creq, h[i].value) < 0) {
            rc = HSM_SIGV4_EMALFORMED;
            goto out;
        }
    }
    sb_putc(creq, '\n');
    sb_putc(creq, '\n');
    sb_puts(creq, signed_headers->p ? signed_headers->p : "");
    sb_putc(creq, '\n');
    sb_puts(creq, payload_hash);
    if (creq->oom || signed_headers->oom)
        rc = HSM_SIGV4_ENOMEM;
out:
    free(h);
    return rc;
}

/* ---- key derivation and signature -------------------------------------- */

static int
hmac(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
     uint8_t out[32])
{
    unsigned int md_len = 0;

    if (!HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &md_len) ||
        md_len != 32)
        return -1;
    return 0;
}

int
hsm_sigv4_signing_key(const char *secret_access_key, const char *date8,
                      const char *region, const char *service, uint8_t key[32])
{
    uint8_t k[MAX_SECRET + 4];
    uint8_t t[32];
    size_t n;
    int rc = -1;

    if (!secret_access_key || !date8 || !region || !service)
        return -1;
    n = strlen(secret_access_key);
    if (n == 0 || n > MAX_SECRET)
        return -1;
    memcpy(k, "AWS4", 4);
    memcpy(k + 4, secret_access_key, n);
    if (hmac(k, n + 4, date8, strlen(date8), t) < 0 ||
        hmac(t, 32, region, strlen(region), t) < 0 ||
        hmac(t, 32, service, strlen(service), t) < 0 ||
        hmac(t, 32, "aws4_request", 12, key) < 0)
        goto out;
    rc = 0;
out:
    kc_wipe(k, sizeof k);
    kc_wipe(t, sizeof t);
    return rc;
}

int
hsm_sigv4_signature_from_sts(const uint8_t key[32], const char *sts,
                             size_t sts_len, char sig_hex[65])
{
    uint8_t mac[32];

    if (hmac(key, 32, sts, sts_len, mac) < 0)
        return -1;
    return kc_hex_encode(mac, sizeof mac, sig_hex, 65);
}

/* String to sign and signature for a finished canonical request. */
static hsm_sigv4_err
finish(const char *creq, size_t creq_len, const char *amz_date,
       const char *scope, const char *secret, const char *region,
       const char *service, sbuf *sts, char sig[65])
{
    char h[65], date8[9];
    uint8_t key[32];
    hsm_sigv4_err rc = HSM_SIGV4_ENOMEM;

    hsm_sigv4_sha256_hex((const uint8_t *)creq, creq_len, h);
    sb_puts(sts, ALGORITHM "\n");
    sb_puts(sts, amz_date);
    sb_putc(sts, '\n');
    sb_puts(sts, scope);
    sb_putc(sts, '\n');
    sb_puts(sts, h);
    if (sts->oom)
        goto out;
    memcpy(date8, amz_date, 8);
    date8[8] = '\0';
    rc = HSM_SIGV4_EINVAL;
    if (hsm_sigv4_signing_key(secret, date8, region, service, key) < 0 ||
        hsm_sigv4_signature_from_sts(key, sts->p, sts->len, sig) < 0)
        goto out;
    rc = HSM_SIGV4_OK;
out:
    kc_wipe(key, sizeof key);
    return rc;
}

static bool
scope_part_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!(isalnum(c) || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* ---- signing ----------------------------------------------------------- */

static bool
has_header(const hsm_sigv4_request *req, const char *lname)
{
    for (size_t i = 0; i < req->header_count; i++)
        if (req->headers[i].name &&
            strcasecmp(req->headers[i].name, lname) == 0)
            return true;
    return false;
}

static hsm_sigv4_err
check_sign_args(const hsm_sigv4_request *req, const hsm_sigv4_params *p)
{
    if (!req || !p || !req->method || !*req->method || !p->access_key_id ||
        !p->secret_access_key || !scope_part_ok(p->region, 63) ||
        !scope_part_ok(p->service, 63) ||
        !scope_part_ok(p->access_key_id, 128) ||
        (req->header_count && !req->headers) || (req->body_len && !req->body) ||
        req->header_count > MAX_HEADERS - 3)
        return HSM_SIGV4_EINVAL;
    if (!has_header(req, "host") || has_header(req, "x-amz-date") ||
        has_header(req, "authorization") ||
        (p->session_token && has_header(req, "x-amz-security-token")) ||
        ((p->flags & HSM_SIGV4_ADD_CONTENT_SHA256) &&
         has_header(req, "x-amz-content-sha256")))
        return HSM_SIGV4_EINVAL;
    if (p->session_token && !*p->session_token)
        return HSM_SIGV4_EINVAL;
    return HSM_SIGV4_OK;
}

/* "<YYYYMMDD>/<region>/<service>/aws4_request" */
static hsm_sigv4_err
make_scope(sbuf *scope, const char *date, const char *region,
           const char *service)
{
    sb_put(scope, date, 8);
    sb_putc(scope, '/');
    sb_puts(scope, region);
    sb_putc(scope, '/');
    sb_puts(scope, service);
    sb_puts(scope, "/aws4_request");
    return scope->oom ? HSM_SIGV4_ENOMEM : HSM_SIGV4_OK;
}

/* The headers to sign: the request's own minus the unsignable ones, plus
 * those the signer adds (also listed in out->add). `sel` has room for
 * header_count + 3 entries. */
static hsm_sigv4_err
select_for_signing(const hsm_sigv4_request *req, const hsm_sigv4_params *p,
                   const char *phash, hsm_sigv4_result *out,
                   hsm_sigv4_header *sel, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < req->header_count; i++) {
        char ln[128];

        if (!req->headers[i].name || !req->headers[i].value ||
            lower_name(req->headers[i].name, ln, sizeof ln) < 0)
            return HSM_SIGV4_EMALFORMED;
        if (!is_unsignable(ln))
            sel[(*n)++] = req->headers[i];
    }
    out->add[out->add_count++] =
        (hsm_sigv4_header){"X-Amz-Date", out->amz_date};
    sel[(*n)++] = out->add[0];
    if (p->session_token) {
        if (!(out->token_ = strdup(p->session_token)))
            return HSM_SIGV4_ENOMEM;
        out->add[out->add_count++] =
            (hsm_sigv4_header){"X-Amz-Security-Token", out->token_};
        if (!(p->flags & HSM_SIGV4_TOKEN_UNSIGNED))
            sel[(*n)++] = out->add[out->add_count - 1];
    }
    if (p->flags & HSM_SIGV4_ADD_CONTENT_SHA256) {
        memcpy(out->content_sha256_, phash, sizeof out->content_sha256_);
        out->add[out->add_count++] =
            (hsm_sigv4_header){"X-Amz-Content-Sha256", out->content_sha256_};
        sel[(*n)++] = out->add[out->add_count - 1];
    }
    return HSM_SIGV4_OK;
}

static char *
make_authz(const char *akid, const char *scope, const char *signed_headers,
           const char *sig)
{
    sbuf a = {0};

    sb_puts(&a, ALGORITHM " Credential=");
    sb_puts(&a, akid);
    sb_putc(&a, '/');
    sb_puts(&a, scope);
    sb_puts(&a, ", SignedHeaders=");
    sb_puts(&a, signed_headers);
    sb_puts(&a, ", Signature=");
    sb_puts(&a, sig);
    return sb_take(&a);
}

hsm_sigv4_err
hsm_sigv4_sign(const hsm_sigv4_request *req, const hsm_sigv4_params *p,
               hsm_sigv4_result *out)
{
    hsm_sigv4_header *sel = NULL;
    size_t n = 0;
    sbuf creq = {0}, sh = {0}, sts = {0}, scope = {0};
    char phash[65];
    hsm_sigv4_err rc;

    if (!out)
        return HSM_SIGV4_EINVAL;
    memset(out, 0, sizeof *out);
    if ((rc = check_sign_args(req, p)) != HSM_SIGV4_OK)
        return rc;
    rc = HSM_SIGV4_EINVAL;
    if (hsm_sigv4_amz_date(p->time, out->amz_date) < 0)
        goto out;
    if (req->payload_hash) {
        if (kc_strlcpy(phash, req->payload_hash, sizeof phash) < 0)
            goto out;
    } else {
        hsm_sigv4_sha256_hex(req->body, req->body_len, phash);
    }
    rc = HSM_SIGV4_ENOMEM;
    if (!(sel = calloc(req->header_count + 3, sizeof *sel)))
        goto out;
    if ((rc = select_for_signing(req, p, phash, out, sel, &n)) !=
            HSM_SIGV4_OK ||
        (rc = build_canonical(req->method, req->path, req->query, sel, n, phash,
                              p->flags, &creq, &sh)) != HSM_SIGV4_OK ||
        (rc = make_scope(&scope, out->amz_date, p->region, p->service)) !=
            HSM_SIGV4_OK ||
        (rc = finish(creq.p, creq.len, out->amz_date, scope.p,
                     p->secret_access_key, p->region, p->service, &sts,
                     out->signature)) != HSM_SIGV4_OK)
        goto out;
    rc = HSM_SIGV4_ENOMEM;
    if (!(out->authorization =
              make_authz(p->access_key_id, scope.p, sh.p, out->signature)) ||
        !(out->canonical_request = sb_take(&creq)) ||
        !(out->string_to_sign = sb_take(&sts)))
        goto out;
    rc = HSM_SIGV4_OK;
out:
    free(sel);
    sb_free(&creq);
    sb_free(&sh);
    sb_free(&sts);
    sb_free(&scope);
    if (rc != HSM_SIGV4_OK)
        hsm_sigv4_result_free(out);
    return rc;
}

static void
free_str(char **p)
{
    if (*p)
        kc_free_wipe(*p, strlen(*p));
    *p = NULL;
}

void
hsm_sigv4_result_free(hsm_sigv4_result *r)
{
    if (!r)
        return;
    free_str(&r->canonical_request);
    free_str(&r->string_to_sign);
    free_str(&r->authorization);
    free_str(&r->token_);
    kc_wipe(r, sizeof *r);
}

/* ---- verification ------------------------------------------------------ */

typedef struct {
    char akid[129];
    char date8[9];
    char region[64];
    char service[64];
    char signed_headers[2048];
    char signature[65];
} authz_parts;

/* Copy s[0..n) into out (cap bytes) if it fits. */
static int
copy_part(const char *s, size_t n, char *out, size_t cap)
{
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* Expect `key` at *s, return the value up to the next ',' (or the end). */
static int
take_field(const char **s, const char *key, const char **v, size_t *vl)
{
    size_t kl = strlen(key);
    const char *e;

    if (strncmp(*s, key, kl) != 0)
        return -1;
    *s += kl;
    e = strchr(*s, ',');
    *v = *s;
    *vl = e ? (size_t)(e - *s) : strlen(*s);
    *s += *vl;
    if (**s == ',') {
        (*s)++;
        while (**s == ' ')
            (*s)++;
        if (!**s)
            return -1;
    }
    return 0;
}

static int
parse_credential(const char *v, size_t vl, authz_parts *a)
{
    const char *parts[5];
    size_t lens[5], k = 0;
    const char *s = v, *end = v + vl;

    while (k < 5) {
        const char *e = memchr(s, '/', (size_t)(end - s));

        parts[k] = s;
        lens[k] = e ? (size_t)(e - s) : (size_t)(end - s);
        k++;
        if (!e)
            break;
        s = e + 1;
    }
    if (k != 5 || parts[4] + lens[4] != end || lens[1] != 8 || lens[4] != 12 ||
        memcmp(parts[4], "aws4_request", 12) != 0)
        return -1;
    if (copy_part(parts[0], lens[0], a->akid, sizeof a->akid) < 0 ||
        copy_part(parts[1], lens[1], a->date8, sizeof a->date8) < 0 ||
        copy_part(parts[2], lens[2], a->region, sizeof a->region) < 0 ||
        copy_part(parts[3], lens[3], a->service, sizeof a->service) < 0)
        return -1;
    for (size_t i = 0; i < 8; i++)
        if (a->date8[i] < '0' || a->date8[i] > '9')
            return -1;
    if (!scope_part_ok(a->akid, 128) || !scope_part_ok(a->region, 63) ||
        !scope_part_ok(a->service, 63))
        return -1;
    return 0;
}

/* Signed header list: lower-case tokens, strictly increasing, with host. */
static int
check_signed_list(const char *list, bool *has_host, bool *has_date,
                  bool *has_token)
{
    const char *prev = NULL;
    size_t prev_len = 0;

    *has_host = *has_date = *has_token = false;
    for (const char *s = list;;) {
        const char *e = strchr(s, ';');
        size_t l = e ? (size_t)(e - s) : strlen(s);

        if (l == 0 || l > 127)
            return -1;
        for (size_t i = 0; i < l; i++)
            if (!token_char((unsigned char)s[i]) ||
                isupper((unsigned char)s[i]))
                return -1;
        if (prev) {
            size_t m = prev_len < l ? prev_len : l;
            int c = memcmp(prev, s, m);

            if (c > 0 || (c == 0 && prev_len >= l))
                return -1;
        }
        *has_host |= l == 4 && memcmp(s, "host", 4) == 0;
        *has_date |= l == 10 && memcmp(s, "x-amz-date", 10) == 0;
        *has_token |= l == 20 && memcmp(s, "x-amz-security-token", 20) == 0;
        prev = s;
        prev_len = l;
        if (!e)
            break;
        s = e + 1;
    }
    return 0;
}

static hsm_sigv4_err
parse_authz(const char *h, authz_parts *a)
{
    const char *s = h, *v;
    size_t vl;

    if (strncmp(s, ALGORITHM " ", sizeof ALGORITHM) != 0)
        return HSM_SIGV4_EMALFORMED;
    s += sizeof ALGORITHM;
    while (*s == ' ')
        s++;
    if (take_field(&s, "Credential=", &v, &vl) < 0 ||
        parse_credential(v, vl, a) < 0)
        return HSM_SIGV4_EMALFORMED;
    if (take_field(&s, "SignedHeaders=", &v, &vl) < 0 ||
        copy_part(v, vl, a->signed_headers, sizeof a->signed_headers) < 0)
        return HSM_SIGV4_EMALFORMED;
    if (take_field(&s, "Signature=", &v, &vl) < 0 || *s || vl != 64 ||
        copy_part(v, vl, a->signature, sizeof a->signature) < 0)
        return HSM_SIGV4_EMALFORMED;
    for (size_t i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)a->signature[i]) ||
            isupper((unsigned char)a->signature[i]))
            return HSM_SIGV4_EMALFORMED;
    return HSM_SIGV4_OK;
}

/* The single value of header `lname`; EMISSING if absent, EMALFORMED if
 * repeated. */
static hsm_sigv4_err
single_header(const hsm_sigv4_request *req, const char *lname,
              const char **value)
{
    *value = NULL;
    for (size_t i = 0; i < req->header_count; i++) {
        if (!req->headers[i].name || !req->headers[i].value)
            return HSM_SIGV4_EMALFORMED;
        if (strcasecmp(req->headers[i].name, lname) != 0)
            continue;
        if (*value)
            return HSM_SIGV4_EMALFORMED;
        *value = req->headers[i].value;
    }
    return *value ? HSM_SIGV4_OK : HSM_SIGV4_EMISSING;
}

/* Copy of a header value without the optional white space around it
 * (RFC 7230 section 3.2), into out (cap bytes); -1 if it does not fit. */
static int
trim_copy(const char *v, char *out, size_t cap)
{
    size_t n;

    while (*v == ' ' || *v == '\t')
        v++;
    n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= cap)
        return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

/* Select the request headers named in the signed list. */
static hsm_sigv4_err
select_signed(const hsm_sigv4_request *req, const char *list,
              hsm_sigv4_header **sel, size_t *n)
{
    *n = 0;
    if (!(*sel =
              calloc(req->header_count ? req->header_count : 1, sizeof **sel)))
        return HSM_SIGV4_ENOMEM;
    for (const char *s = list;;) {
        const char *e = strchr(s, ';');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        bool found = false;

        for (size_t i = 0; i < req->header_count; i++) {
            const char *nm = req->headers[i].name;

            if (strlen(nm) == l && strncasecmp(nm, s, l) == 0) {
                (*sel)[(*n)++] = req->headers[i];
                found = true;
            }
        }
        /* A signed header that is not in the request cannot match. */
        if (!found)
            return HSM_SIGV4_ESIGNATURE;
        if (!e)
            break;
        s = e + 1;
    }
    return HSM_SIGV4_OK;
}

static hsm_sigv4_err
check_time_and_scope(const authz_parts *a, const char *amz_date,
                     const hsm_sigv4_verify_opts *o)
{
    time_t t;
    unsigned skew = o->max_skew ? o->max_skew : DEFAULT_SKEW;
    double d;

    if (hsm_sigv4_parse_amz_date(amz_date, &t) < 0)
        return HSM_SIGV4_EMALFORMED;
    d = difftime(o->now, t);
    if (d > (double)skew || d < -(double)skew)
        return HSM_SIGV4_ESKEW;
    if (memcmp(a->date8, amz_date, 8) != 0 ||
        strcmp(a->service, o->service) != 0 ||
        (o->region && strcmp(a->region, o->region) != 0))
        return HSM_SIGV4_ESCOPE;
    return HSM_SIGV4_OK;
}

/* Everything that needs no secret: the two headers, the Authorization
 * fields, the signed-header list, the time and the scope. */
static hsm_sigv4_err
verify_prelude(const hsm_sigv4_request *req, const hsm_sigv4_verify_opts *o,
               authz_parts *a, char *amz_date, size_t amz_date_cap,
               bool *has_token)
{
    const char *authz_raw, *date_raw;
    char authz[4096];
    bool has_host, has_date;
    hsm_sigv4_err rc;

    if ((rc = single_header(req, "authorization", &authz_raw)) !=
            HSM_SIGV4_OK ||
        (rc = single_header(req, "x-amz-date", &date_raw)) != HSM_SIGV4_OK)
        return rc;
    if (trim_copy(authz_raw, authz, sizeof authz) < 0 ||
        trim_copy(date_raw, amz_date, amz_date_cap) < 0)
        return HSM_SIGV4_EMALFORMED;
    if ((rc = parse_authz(authz, a)) != HSM_SIGV4_OK)
        return rc;
    if (check_signed_list(a->signed_headers, &has_host, &has_date, has_token) <
            0 ||
        !has_host || !has_date)
        return HSM_SIGV4_EMALFORMED;
    return check_time_and_scope(a, amz_date, o);
}

/* The payload hash to sign (phash, 65 bytes). X-Amz-Content-Sha256 is the
 * client's claim about the body: when sent, it must be the hash of the
 * body we received. */
static hsm_sigv4_err
verify_payload(const hsm_sigv4_request *req, char *phash)
{
    const char *csha = NULL;

    if (req->payload_hash) {
        if (kc_strlcpy(phash, req->payload_hash, 65) < 0)
            return HSM_SIGV4_EINVAL;
    } else {
        hsm_sigv4_sha256_hex(req->body, req->body_len, phash);
    }
    if (single_header(req, "x-amz-content-sha256", &csha) ==
        HSM_SIGV4_EMALFORMED)
        return HSM_SIGV4_EMALFORMED;
    if (csha && (strlen(csha) != strlen(phash) ||
                 !kc_ct_eq(csha, phash, strlen(phash))))
        return HSM_SIGV4_ESIGNATURE;
    return HSM_SIGV4_OK;
}

hsm_sigv4_err
hsm_sigv4_verify(const hsm_sigv4_request *req, const hsm_sigv4_verify_opts *o,
                 hsm_sigv4_identity *who)
{
    authz_parts a;
    char amz_date[32], secret[MAX_SECRET + 1], phash[65], sig[65];
    size_t secret_len = 0, n = 0;
    hsm_sigv4_header *sel = NULL;
    sbuf creq = {0}, sh = {0}, sts = {0}, scope = {0};
    bool has_token = false;
    hsm_sigv4_err rc;

    if (!req || !o || !o->lookup || !o->service || !req->method ||
        (req->header_count && !req->headers) || (req->body_len && !req->body))
        return HSM_SIGV4_EINVAL;
    memset(&a, 0, sizeof a);
    memset(secret, 0, sizeof secret);
    if ((rc = verify_prelude(req, o, &a, amz_date, sizeof amz_date,
                             &has_token)) != HSM_SIGV4_OK)
        goto out;
    rc = HSM_SIGV4_EUNKNOWN_KEY;
    if (o->lookup(o->lookup_ctx, a.akid, secret, sizeof secret, &secret_len) !=
            0 ||
        secret_len == 0 || secret_len >= sizeof secret)
        goto out;
    secret[secret_len] = '\0';
    if ((rc = verify_payload(req, phash)) != HSM_SIGV4_OK ||
        (rc = select_signed(req, a.signed_headers, &sel, &n)) != HSM_SIGV4_OK ||
        (rc = build_canonical(req->method, req->path, req->query, sel, n, phash,
                              o->flags, &creq, &sh)) != HSM_SIGV4_OK ||
        (rc = make_scope(&scope, a.date8, a.region, a.service)) !=
            HSM_SIGV4_OK ||
        (rc = finish(creq.p, creq.len, amz_date, scope.p, secret, a.region,
                     a.service, &sts, sig)) != HSM_SIGV4_OK)
        goto out;
    rc = kc_ct_eq(sig, a.signature, 64) ? HSM_SIGV4_OK : HSM_SIGV4_ESIGNATURE;
    if (rc == HSM_SIGV4_OK && who) {
        memset(who, 0, sizeof *who);
        kc_strlcpy(who->access_key_id, a.akid, sizeof who->access_key_id);
        kc_strlcpy(who->region, a.region, sizeof who->region);
        kc_strlcpy(who->service, a.service, sizeof who->service);
        who->signed_session_token = has_token;
    }
out:
    kc_wipe(secret, sizeof secret);
    free(sel);
    sb_free(&creq);
    sb_free(&sh);
    sb_free(&sts);
    sb_free(&scope);
    return rc;
}
