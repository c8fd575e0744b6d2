/* SPDX-License-Identifier: Apache-2.0 */
/* The route table and kms_dispatch(): match, authenticate, parse the JSON
 * body (duplicate keys rejected), run the handler, shape the response and
 * the audit record. No network here: tests and the fuzzer call it. */
#include "kmsd_int.h"

#include "kc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- errors -------------------------------------------------------------- */

static const struct {
    int status;
    const char *code, *msg;
} err_tab[] = {
#define KMS_X_TAB(name, status, code, msg) {status, code, msg},
    KMS_ERROR_TABLE(KMS_X_TAB)
#undef KMS_X_TAB
};

const char *
kms_strerror(kms_err e)
{
    return (unsigned)e < KMS_ERR_COUNT ? err_tab[e].msg : "unknown error";
}

const char *
kms_errcode(kms_err e)
{
    return (unsigned)e < KMS_ERR_COUNT ? err_tab[e].code : "internal";
}

int
kms_err_status(kms_err e)
{
    return (unsigned)e < KMS_ERR_COUNT ? err_tab[e].status : 500;
}

kms_err
kms_st2err(kms_st_err e)
{
    switch (e) {
    case KMS_ST_OK:
        return KMS_OK;
    case KMS_ST_NOTFOUND:
        return KMS_ENOTFOUND;
    case KMS_ST_NOMEM:
        return KMS_ENOMEM;
    case KMS_ST_INVAL:
    case KMS_ST_IO:
    default:
        return KMS_ESTORE;
    }
}

/* ---- routes -------------------------------------------------------------- */

#define P KMS_ROUTE_PUBLIC
#define B KMS_ROUTE_BODY
#define W KMS_ROUTE_BATCH
static const kms_route routes[] = {
    {"GET", "/v1/kms/health", "health", P, kms_h_health},
    {"GET", "/metrics", "metrics", P, kms_h_metrics},
    {"POST", "/v1/kms/auth/login", "auth.login", P | B, kms_h_login},
    {"GET", "/v1/kms/auth/token", "auth.token.self", 0, kms_h_token_self},
    {"POST", "/v1/kms/auth/token/renew", "auth.token.renew", W,
     kms_h_token_renew},
    {"POST", "/v1/kms/auth/token/revoke", "auth.token.revoke_self", W,
     kms_h_token_revoke_self},
    {"POST", "/v1/kms/sys/admins", "sys.admins.create", B, kms_h_admin_create},
    {"GET", "/v1/kms/orgs", "orgs.list", 0, kms_h_org_list},
    {"POST", "/v1/kms/orgs", "orgs.create", B | W, kms_h_org_create},
    {"GET", "/v1/kms/orgs/:org", "orgs.read", 0, kms_h_org_read},
    {"POST", "/v1/kms/orgs/:org/tokens", "tokens.create", B | W,
     kms_h_token_create},
    {"GET", "/v1/kms/orgs/:org/tokens/:id", "tokens.lookup", 0,
     kms_h_token_lookup},
    {"DELETE", "/v1/kms/orgs/:org/tokens/:id", "tokens.revoke", W,
     kms_h_token_revoke},
    {"GET", "/v1/kms/orgs/:org/policies", "policies.list", 0,
     kms_h_policy_list},
    {"GET", "/v1/kms/orgs/:org/policies/:id", "policies.read", 0,
     kms_h_policy_read},
    {"PUT", "/v1/kms/orgs/:org/policies/:id", "policies.write", B | W,
     kms_h_policy_write},
    {"POST", "/v1/kms/orgs/:org/policies/:id", "policies.write", B | W,
     kms_h_policy_write},
    {"DELETE", "/v1/kms/orgs/:org/policies/:id", "policies.delete", W,
     kms_h_policy_delete},
    {"GET", "/v1/kms/orgs/:org/identities", "identities.list", 0,
     kms_h_identity_list},
    {"POST", "/v1/kms/orgs/:org/identities", "identities.create", B,
     kms_h_identity_create},
    {"GET", "/v1/kms/orgs/:org/identities/:id", "identities.read", 0,
     kms_h_identity_read},
    {"DELETE", "/v1/kms/orgs/:org/identities/:id", "identities.delete", 0,
     kms_h_identity_delete},
    {"GET", "/v1/kms/orgs/:org/secrets/*", "secrets.read", 0, kms_h_secret_get},
    {"POST", "/v1/kms/orgs/:org/secrets/*", "secrets.write", B | W,
     kms_h_secret_post},
    {"DELETE", "/v1/kms/orgs/:org/secrets/*", "secrets.delete", W,
     kms_h_secret_delete},
    {"GET", "/v1/kms/orgs/:org/keys", "keys.list", 0, kms_h_key_list},
    {"POST", "/v1/kms/orgs/:org/keys", "keys.create", B, kms_h_key_create},
    {"GET", "/v1/kms/orgs/:org/keys/:id", "keys.read", 0, kms_h_key_read},
    {"GET", "/v1/kms/orgs/:org/keys/:id/*", "keys.pubkey", 0,
     kms_h_key_get_sub},
    {"POST", "/v1/kms/orgs/:org/keys/:id/*", "keys.action", B,
     kms_h_key_action},
    {"POST", "/v1/kms/orgs/:org/random", "keys.random", B, kms_h_random},
    {"POST", "/v1/kms/orgs/:org/aws-keys", "awskeys.create", B,
     kms_h_awskey_create},
};
#undef P
#undef B
#undef W

size_t
kms_route_count(void)
{
    return sizeof routes / sizeof routes[0];
}

const char *
kms_route_name(size_t i)
{
    return i < kms_route_count() ? routes[i].name : "unknown";
}

/* Segments are separated by single '/'; empty segments never match. */
bool
kms_route_match(const char *pattern, const char *path, char *buf,
                size_t buf_cap, const char **params, size_t *nparams,
                const char **rest)
{
    const char *pp = pattern;
    char *sp;

    *nparams = 0;
    *rest = "";
    if (kc_strlcpy(buf, path, buf_cap) != 0 || buf[0] != '/' ||
        pattern[0] != '/')
        return false;
    sp = buf + 1;
    pp = pattern + 1;
    for (;;) {
        const char *pe = strchr(pp, '/');
        size_t pl = pe ? (size_t)(pe - pp) : strlen(pp);
        char *se;

        if (pl == 1 && pp[0] == '*') {
            size_t n = strlen(sp);
            if (n && (sp[n - 1] == '/' || strstr(sp, "//")))
                return false;
            *rest = sp;
            return true;
        }
        se = strchr(sp, '/');
        if (se)
            *se = '\0';
        if (*sp == '\0')
            return false; /* empty segment */
        if (pp[0] == ':') {
            if (*nparams == 2)
                return false;
            params[(*nparams)++] = sp;
        } else if (strlen(sp) != pl || memcmp(sp, pp, pl) != 0) {
            return false;
        }
        if (!pe) {
            /* pattern done: the path must be done too, unless the next
             * pattern piece is a bare '*' handled above */
            return se == NULL;
        }
        pp = pe + 1;
        if (!se) {
            /* path done: only a trailing '*' may remain */
            if (strcmp(pp, "*") == 0) {
                *rest = "";
                return true;
            }
            return false;
        }
        sp = se + 1;
    }
}

const char *
kms_query(const kms_ctx *c, const char *key)
{
    for (size_t i = 0; i < c->req->query_count; i++)
        if (c->req->query[i].key && strcmp(c->req->query[i].key, key) == 0)
            return c->req->query[i].value ? c->req->query[i].value : "";
    return NULL;
}

/* ---- validation ---------------------------------------------------------- */

bool
kms_valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > KMS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  (i > 0 && (ch == '-' || ch == '_'));
        if (!ok)
            return false;
    }
    return true;
}

static bool
seg_ok(const char *s, size_t n)
{
    if (n == 0 || n > KMS_SEG_MAX)
        return false;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

bool
kms_valid_ident(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n <= KMS_NAME_MAX && seg_ok(s, n);
}

bool
kms_valid_secret_path(const char *s, bool allow_empty)
{
    size_t n = s ? strlen(s) : 0, depth = 0;
    const char *p = s;

    if (n == 0)
        return allow_empty && s;
    if (n > KMS_SPATH_MAX)
        return false;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (!seg_ok(p, l) || ++depth > KMS_SPATH_DEPTH)
            return false;
        if (!e)
            return true;
        p = e + 1;
    }
}

/* A duration: a JSON integer of seconds or a string "90", "30s", "15m",
 * "2h", "7d". */
bool
kms_parse_duration(const json_t *v, uint64_t *secs)
{
    char num[24];
    uint64_t n, mul = 1;
    const char *s;
    size_t l;

    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i <= 0)
            return false;
        *secs = (uint64_t)i;
        return true;
    }
    if (!json_is_string(v))
        return false;
    s = json_string_value(v);
    l = strlen(s);
    if (l == 0 || l >= sizeof num)
        return false;
    switch (s[l - 1]) {
    case 's':
        mul = 1;
        l--;
        break;
    case 'm':
        mul = 60;
        l--;
        break;
    case 'h':
        mul = 3600;
        l--;
        break;
    case 'd':
        mul = 86400;
        l--;
        break;
    default:
        break;
    }
    memcpy(num, s, l);
    num[l] = '\0';
    if (kc_parse_u64(num, &n) != 0 || n == 0 || n > UINT64_MAX / mul ||
        n * mul > (uint64_t)10 * 365 * 86400)
        return false;
    *secs = n * mul;
    return true;
}

void
kms_time_str(int64_t t, char *buf, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (!gmtime_r(&tt, &tm) ||
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        kc_strlcpy(buf, "1970-01-01T00:00:00Z", cap);
}

/* ---- JSON helpers ----------------------------------------------------------
 */

kms_err
kms_json_get_str(const json_t *o, const char *k, bool required,
                 const char **out, size_t *len)
{
    json_t *v = json_object_get(o, k);

    *out = NULL;
    if (len)
        *len = 0;
    if (!v)
        return required ? KMS_EINVAL : KMS_OK;
    if (!json_is_string(v))
        return KMS_EINVAL;
    *out = json_string_value(v);
    if (len)
        *len = json_string_length(v);
    return KMS_OK;
}

json_t *
kms_json_load_rec(kms_store *st, const uint8_t *p, size_t n)
{
    json_t *j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);

    (void)st;
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

kms_err
kms_json_put(kms_txn *txn, const char *table, const char *key,
             const json_t *doc)
{
    char *s = kms_json_dump(doc, NULL);
    kms_err rc;
    size_t n;

    if (!s)
        return KMS_ENOMEM;
    n = strlen(s);
    rc = kms_st2err(kms_txn_put(txn, table, key, strlen(key), s, n));
    kc_free_wipe(s, n);
    return rc;
}

kms_err
kms_json_get(kms_txn *txn, const char *table, const char *key, json_t **out)
{
    uint8_t *v = NULL;
    size_t vl = 0;
    kms_st_err e = kms_txn_get(txn, table, key, strlen(key), &v, &vl);

    *out = NULL;
    if (e != KMS_ST_OK)
        return kms_st2err(e);
    *out = kms_json_load_rec(txn->st, v, vl);
    kms_store_free(txn->st, v, vl);
    return *out ? KMS_OK : KMS_ESTORE;
}

/* ---- dispatch ------------------------------------------------------------ */

void
kms_resp_free(kms_resp *r)
{
    if (!r)
        return;
    kc_free_wipe(r->body, r->body_len);
    json_decref(r->audit);
    memset(r, 0, sizeof *r);
}

static void
now_iso_ms(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    char base[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%.20s.%03dZ", base, (int)(ts.tv_nsec / 1000000) % 1000);
}

json_t *
kms_audit_record(kms_ctx *c, const char *route, kms_err rc, int status)
{
    const kms_req *q = c->req;
    json_t *a = json_object();
    char t[40], h[80];
    const char *decision;

    if (!a)
        return NULL;
    now_iso_ms(t, sizeof t);
    json_object_set_new(a, "time", json_string(t));
    json_object_set_new(
        a, "request_id",
        json_integer((json_int_t)atomic_fetch_add(&c->srv->req_seq, 1)));
    json_object_set_new(a, "remote", json_string(q->remote ? q->remote : ""));
    json_object_set_new(a, "method",
                        json_stringn(q->method ? q->method : "",
                                     q->method ? strnlen(q->method, 16) : 0));
    json_object_set_new(a, "route", json_string(route));
    if (q->path && strlen(q->path) < KMS_URL_MAX) {
        json_t *p =
            json_stringn(q->path, strlen(q->path)); /* NULL if not UTF-8 */
        json_object_set_new(a, "path", p ? p : json_string("(invalid)"));
    }
    json_object_set_new(a, "org",
                        json_string(c->param_org           ? c->param_org
                                    : c->who.authenticated ? c->who.org
                                                           : ""));
    json_object_set_new(
        a, "identity",
        json_string(c->who.authenticated ? c->who.display : "anonymous"));
    if (q->token && *q->token) {
        kms_audit_hmac(c->srv, q->token, strnlen(q->token, 256), h);
        json_object_set_new(a, "token_hmac", json_string(h));
    }
    if (c->decision)
        decision = c->decision;
    else if (rc == KMS_OK)
        decision = "allow";
    else if (rc == KMS_EAUTH || rc == KMS_ELOGIN || rc == KMS_ERATE ||
             rc == KMS_EDENIED)
        decision = "deny";
    else
        decision = "error";
    json_object_set_new(a, "decision", json_string(decision));
    json_object_set_new(a, "status", json_integer(status));
    if (rc != KMS_OK)
        json_object_set_new(a, "error", json_string(kms_errcode(rc)));
    if (c->audit)
        json_object_update(a, c->audit);
    return a;
}

static kms_err
parse_body(kms_ctx *c)
{
    json_error_t jerr;

    if (c->req->body_len == 0) {
        if (c->route->flags & KMS_ROUTE_BODY) {
            c->detail = "a JSON object body is required";
            return KMS_EJSON;
        }
        return KMS_OK;
    }
    c->body = json_loadb((const char *)c->req->body, c->req->body_len,
                         JSON_REJECT_DUPLICATES, &jerr);
    if (!c->body || !json_is_object(c->body)) {
        c->detail = c->body ? "the body must be a JSON object"
                            : "malformed JSON or duplicate keys";
        return KMS_EJSON;
    }
    return KMS_OK;
}

static kms_err
route_and_run(kms_ctx *c, size_t *ri, char *buf)
{
    const char *params[2], *rest;
    size_t np, i;
    bool path_hit = false;
    kms_err rc;

    if (!c->req->path || !c->req->method || strlen(c->req->path) >= KMS_URL_MAX)
        return KMS_ENOROUTE;
    for (i = 0; i < kms_route_count(); i++) {
        if (!kms_route_match(routes[i].pattern, c->req->path, buf, KMS_URL_MAX,
                             params, &np, &rest))
            continue;
        path_hit = true;
        if (strcmp(routes[i].method, c->req->method) == 0)
            break;
    }
    if (i == kms_route_count())
        return path_hit ? KMS_EMETHOD : KMS_ENOROUTE;
    *ri = i;
    c->route = &routes[i];
    if (np >= 1) {
        if (!kms_valid_name(params[0])) {
            c->detail = "invalid organisation name";
            return KMS_EINVAL;
        }
        c->param_org = params[0];
    }
    if (np >= 2) {
        if (!kms_valid_ident(params[1])) {
            c->detail = "invalid name";
            return KMS_EINVAL;
        }
        c->param_id = params[1];
    }
    c->rest = (char *)rest;
    if (c->req->body_too_big || c->req->body_len > KMS_BODY_MAX)
        return KMS_ETOOBIG;
    if (!(c->route->flags & KMS_ROUTE_PUBLIC) &&
        (rc = kms_authenticate(c)) != KMS_OK)
        return rc;
    /* Tenancy: a token of one organisation never reaches another's
     * routes, whatever its policies say. */
    if (c->param_org && c->who.authenticated && !c->who.root &&
        strcmp(c->param_org, c->who.org) != 0) {
        c->decision = "deny";
        c->detail = "the token belongs to another organisation";
        return KMS_EDENIED;
    }
    if ((rc = parse_body(c)) != KMS_OK)
        return rc;
    return c->route->fn(c);
}

static void
render(kms_ctx *c, kms_err rc, kms_resp *resp)
{
    if (rc == KMS_OK && c->text_out) {
        resp->body = c->text_out;
        resp->body_len = c->text_len;
        c->text_out = NULL;
        resp->content_type = "text/plain; version=0.0.4";
        resp->status = c->status;
        return;
    }
    resp->content_type = "application/json";
    if (rc == KMS_OK) {
        resp->status = c->status;
        resp->body = c->out ? kms_json_dump(c->out, NULL) : strdup("{}");
    } else {
        json_t *e =
            json_pack("{s:{s:s,s:s}}", "error", "code", kms_errcode(rc),
                      "message", c->detail ? c->detail : kms_strerror(rc));
        resp->status = kms_err_status(rc);
        resp->body = e ? kms_json_dump(e, NULL) : NULL;
        json_decref(e);
    }
    if (!resp->body) {
        resp->status = 500;
        resp->body = strdup("{\"error\":{\"code\":\"internal\"}}");
    }
    resp->body_len = resp->body ? strlen(resp->body) : 0;
}

void
kms_dispatch(kms_srv *srv, const kms_req *req, kms_resp *resp)
{
    kms_ctx c;
    char *buf = malloc(KMS_URL_MAX);
    size_t ri = kms_route_count();
    kms_err rc;

    memset(&c, 0, sizeof c);
    memset(resp, 0, sizeof *resp);
    c.srv = srv;
    c.req = req;
    c.status = 200;
    c.audit = json_object();
    if (!buf || !c.audit)
        rc = KMS_ENOMEM;
    else if (srv->audit && !kms_audit_healthy(srv->audit))
        rc = KMS_EAUDIT;
    else
        rc = route_and_run(&c, &ri, buf);
    if (rc == KMS_ERATE)
        resp->retry_after = c.retry_after ? c.retry_after : 1;
    render(&c, rc, resp);
    resp->audit = kms_audit_record(&c, kms_route_name(ri), rc, resp->status);
    resp->store_written = c.store_written;
    resp->route_index = ri;
    json_decref(c.body);
    json_decref(c.out);
    json_decref(c.audit);
    kms_principal_clear(&c.who);
    kc_free_wipe(c.text_out, c.text_len);
    free(buf);
}

bool
kms_batchable(const kms_req *req)
{
    char *buf;
    const char *params[2], *rest;
    size_t np;
    bool ok = false;

    if (!req->path || !req->method || strlen(req->path) >= KMS_URL_MAX ||
        req->body_too_big || !(buf = malloc(KMS_URL_MAX)))
        return false;
    for (size_t i = 0; i < kms_route_count() && !ok; i++)
        ok = (routes[i].flags & KMS_ROUTE_BATCH) &&
             strcmp(routes[i].method, req->method) == 0 &&
             kms_route_match(routes[i].pattern, req->path, buf, KMS_URL_MAX,
                             params, &np, &rest);
    free(buf);
    return ok;
}

void
kms_dispatch_batch(kms_srv *srv, const kms_req *const *reqs,
                   kms_resp *const *resps, size_t n)
{
    kms_batch b;
    bool ok;

    if (n > 1 && kms_batch_begin(srv->store, &b) == KMS_ST_OK) {
        for (size_t i = 0; i < n; i++)
            kms_dispatch(srv, reqs[i], resps[i]);
        ok = kms_batch_commit(&b) == KMS_ST_OK;
        if (ok)
            return;
        for (size_t i = 0; i < n; i++)
            kms_resp_free(resps[i]);
    }
    for (size_t i = 0; i < n; i++)
        kms_dispatch(srv, reqs[i], resps[i]);
}

/* ---- health ----------------------------------------------------------------
 */

kms_err
kms_h_health(kms_ctx *c)
{
    c->out =
        json_pack("{s:s,s:s,s:b}", "status", "ok", "version", "0.1.0", "audit",
                  c->srv->audit ? kms_audit_healthy(c->srv->audit) : true);
    return c->out ? KMS_OK : KMS_ENOMEM;
}

kms_err
kms_h_metrics(kms_ctx *c)
{
    c->text_out = kms_metrics_render(c->srv, &c->text_len);
    return c->text_out ? KMS_OK : KMS_ENOMEM;
}
