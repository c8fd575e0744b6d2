/* SPDX-License-Identifier: Apache-2.0 */
/* kmsd internals shared across the server's files (never installed).
 *
 * A request travels: server.c (HTTP, MHD) -> kms_dispatch() in router.c
 * (route table, authentication, JSON body) -> one handler in secrets.c,
 * auth.c, policy.c, orgs.c ... -> a response and one audit record, which
 * server.c hands to audit.c and sends once the record is durable.
 * kms_dispatch() needs no network, so unit tests and the fuzzer call it
 * directly.
 *
 * THREAD SAFETY: kms_dispatch() may run in many threads at once on one
 * kms_srv; every shared structure (store, audit, metrics, rate limiter)
 * does its own locking. A kms_ctx belongs to one request.
 */
#ifndef KMSD_INT_H
#define KMSD_INT_H

#include "store.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors: one table, with the HTTP status and the wire code ---------- */
#define KMS_ERROR_TABLE(X)                                                     \
    X(KMS_OK, 200, "ok", "success")                                            \
    X(KMS_EINVAL, 400, "invalid_request", "invalid request")                   \
    X(KMS_EJSON, 400, "invalid_json", "malformed JSON body")                   \
    X(KMS_EAUTH, 401, "unauthenticated", "missing, invalid or expired token")  \
    X(KMS_ELOGIN, 401, "login_failed", "invalid client id or secret")          \
    X(KMS_EDENIED, 403, "permission_denied", "permission denied")              \
    X(KMS_ENOTFOUND, 404, "not_found", "not found")                            \
    X(KMS_EDELETED, 404, "deleted", "secret version is deleted")               \
    X(KMS_EDESTROYED, 404, "destroyed", "secret version is destroyed")         \
    X(KMS_ENOROUTE, 404, "no_route", "no such route")                          \
    X(KMS_EMETHOD, 405, "method_not_allowed", "method not allowed")            \
    X(KMS_ECONFLICT, 409, "cas_mismatch", "check-and-set version mismatch")    \
    X(KMS_EEXIST, 409, "already_exists", "already exists")                     \
    X(KMS_ETOOBIG, 413, "too_large", "request body or value too large")        \
    X(KMS_ERATE, 429, "rate_limited", "too many failed attempts")              \
    X(KMS_ESTORE, 500, "store_error", "storage error")                         \
    X(KMS_ENOMEM, 500, "out_of_memory", "out of memory")                       \
    X(KMS_EINTERNAL, 500, "internal", "internal error")                        \
    X(KMS_EAUDIT, 503, "audit_unavailable", "audit log cannot be written")     \
    X(KMS_EDISABLED, 400, "key_disabled", "the key is disabled")               \
    X(KMS_ESTATE, 400, "invalid_key_state",                                    \
      "the key's state does not allow this operation")                         \
    X(KMS_ECIPHER, 400, "invalid_ciphertext",                                  \
      "invalid ciphertext, or wrong key or encryption context")                \
    X(KMS_EUNSUPPORTED, 400, "unsupported",                                    \
      "operation not supported for this key")

typedef enum {
#define KMS_X_ENUM(name, status, code, msg) name,
    KMS_ERROR_TABLE(KMS_X_ENUM)
#undef KMS_X_ENUM
        KMS_ERR_COUNT
} kms_err;

const char *kms_strerror(kms_err e);
const char *kms_errcode(kms_err e);
int kms_err_status(kms_err e);
kms_err kms_st2err(kms_st_err e);

/* ---- limits ------------------------------------------------------------- */
#define KMS_BODY_MAX      (2u * 1024u * 1024u) /* request body: 413 beyond */
#define KMS_VALUE_MAX     (1024u * 1024u)      /* secret value */
#define KMS_NAME_MAX      64u                  /* org, env, policy names */
#define KMS_SEG_MAX       128u                 /* one path segment */
#define KMS_SPATH_MAX     512u                 /* secret path incl. name */
#define KMS_SPATH_DEPTH   16u
#define KMS_URL_MAX       2048u
#define KMS_QUERY_MAX     16u
#define KMS_TOKEN_LEN     68u /* "kms_" + 64 hex digits */
#define KMS_ID_HEX        64u /* token id: hex SHA-256 of the token */
#define KMS_MAX_POLICIES  32u
#define KMS_MAX_RULES     64u
#define KMS_AUDIT_KEY_LEN 32u

/* ---- configuration (main.c fills it) ------------------------------------ */
typedef struct kms_config {
    const char *listen; /* ADDR:PORT */
    const char *data_dir;
    const char *audit_path;
    const char *tls_cert, *tls_key;
    const char *root_token_file;
    const char *port_file;
    const char *aws_listen, *aws_port_file; /* AWS KMS endpoint, optional */
    const char *password_provider, *password_key_id;
    const char **password_config; /* KEY=VALUE */
    size_t password_config_count;
    bool insecure_http, production, dev, kdf_min, verbose;
    unsigned threads;
    uint32_t max_versions;
    uint64_t default_ttl, max_ttl, login_ttl;
    uint32_t login_max_failures;
    uint64_t login_window;
} kms_config;

/* ---- metrics (metrics.c) ------------------------------------------------ */
#define KMS_METRIC_STATUSES 14
#define KMS_METRIC_BUCKETS  12
#define KMS_METRIC_ROUTES   48
typedef struct kms_metrics {
    atomic_uint_fast64_t req[KMS_METRIC_ROUTES][KMS_METRIC_STATUSES];
    atomic_uint_fast64_t lat_bucket[KMS_METRIC_BUCKETS];
    atomic_uint_fast64_t lat_count, lat_sum_us;
    atomic_uint_fast64_t audit_lines, audit_batches;
} kms_metrics;

/* Count one request: route index (kms_route_count() for "unknown"),
 * HTTP status, latency in microseconds. */
void kms_metrics_observe(kms_metrics *m, size_t route, int status,
                         uint64_t usec);

typedef struct kms_audit kms_audit;
/* Parsed soft asymmetric keys, by hash of their stored material (keys.c):
 * parsing a DER key costs more than signing with it. */
typedef struct kms_pkey_cache kms_pkey_cache;
kms_pkey_cache *kms_pkey_cache_new(void);
void kms_pkey_cache_free(kms_pkey_cache *pc); /* NULL is a no-op */
typedef struct kms_ratelimit kms_ratelimit;

/* ---- the server's shared state ------------------------------------------ */
typedef struct kms_srv {
    kms_store *store;
    kms_audit *audit; /* NULL in unit tests: nothing is written */
    kms_ratelimit *rl;
    kms_pkey_cache *pkcache; /* NULL: keys are parsed on each use */
    uint8_t *audit_key;      /* KMS_AUDIT_KEY_LEN bytes, secure memory */
    kms_metrics metrics;
    uint32_t max_versions;
    uint64_t default_ttl, max_ttl, login_ttl;
    atomic_uint_fast64_t req_seq;
    int64_t (*now)(void); /* seconds; tests may replace it */
} kms_srv;

/* Load or create the store's metadata (audit key). With `root_token`
 * non-NULL, also mint a new root token (KMS_TOKEN_LEN+1 bytes); when
 * `replace_root` an earlier root token made the same way is revoked. */
kms_err kms_srv_init(kms_srv *srv, kms_store *st, uint32_t max_versions,
                     char *root_token, bool replace_root, bool *fresh);
void kms_srv_fini(kms_srv *srv);
/* Install jansson's wiping allocator. Must run before any JSON object is
 * made (kms_srv_init() calls it; main() calls it first thing). */
void kms_json_init(void);
/* Compact JSON text in a malloc'd buffer (free() or kc_free_wipe());
 * NULL on failure. Never use json_dumps(): its buffer belongs to
 * jansson's allocator. */
char *kms_json_dump(const json_t *j, size_t *len);
/* The same with jansson's dump flags (JSON_INDENT(2) ...). */
char *kms_json_dumpf(const json_t *j, size_t flags, size_t *len);
/* true if the store has never minted a root token */
kms_err kms_srv_is_new(kms_srv *srv, bool *is_new);

/* ---- requests and responses --------------------------------------------- */
typedef struct kms_kv {
    const char *key, *value;
} kms_kv;

typedef struct kms_req {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* decoded path, without the query */
    const kms_kv *query; /* decoded query arguments */
    size_t query_count;
    const char *token;  /* bearer token from the headers, or NULL */
    const char *remote; /* client address text, or NULL */
    const uint8_t *body;
    size_t body_len;
    bool body_too_big; /* the server stopped reading past KMS_BODY_MAX */
    /* Any request header by name (case-insensitive), or NULL; for APIs
     * that authenticate whole requests (AWS SigV4). May be NULL. */
    const char *(*header)(void *ctx, const char *name);
    void *header_ctx;
} kms_req;

typedef struct kms_resp {
    int status;
    char *body; /* malloc'd; may hold secrets: kc_free_wipe */
    size_t body_len;
    const char *content_type;
    unsigned retry_after; /* seconds, 0: no header */
    json_t *audit;        /* the audit record (without seq/prev/hash) */
    bool store_written;   /* a write committed: sync before responding */
    size_t route_index;   /* for metrics */
} kms_resp;

void kms_resp_free(kms_resp *r);

/* Handle one request. Never fails: errors become JSON error bodies. */
void kms_dispatch(kms_srv *srv, const kms_req *req, kms_resp *resp);
/* Whether a request may go to kms_dispatch_batch() (cheap writes only:
 * no password hashing). */
bool kms_batchable(const kms_req *req);
/* Handle `n` write requests in one store transaction (one commit, one
 * fsync): each sees the effects of those before it, as if run in order.
 * If a request fails after writing, or the commit fails, every request is
 * run again on its own, so results never mix. */
void kms_dispatch_batch(kms_srv *srv, const kms_req *const *reqs,
                        kms_resp *const *resps, size_t n);

/* ---- per-request context for handlers ------------------------------------ */
typedef struct kms_principal {
    bool authenticated;
    bool root; /* root token or global admin identity */
    char org[KMS_NAME_MAX + 1];
    char id[KMS_ID_HEX + 1]; /* token id */
    char display[160];       /* "root", "token:<id prefix>", "identity:<cid>" */
    json_t *token;           /* the token record */
    json_t *policies;        /* loaded policy documents (array) */
} kms_principal;

struct kms_route;

typedef struct kms_ctx {
    kms_srv *srv;
    const kms_req *req;
    const struct kms_route *route;
    const char *param_org; /* :org, validated */
    const char *param_id;  /* :id (second parameter) */
    char *rest;            /* the '*' remainder ("" if none) */
    kms_principal who;
    json_t *body;         /* parsed JSON object or NULL */
    json_t *out;          /* response document */
    int status;           /* success status (200 unless set) */
    json_t *audit;        /* extra audit fields, added by handlers */
    const char *detail;   /* static text for an error message */
    const char *decision; /* "allow", "deny" or NULL (error) */
    bool store_written;
    unsigned retry_after;
    const char *err_type; /* AWS endpoint: "__type" overriding the default */
    char *text_out;       /* non-JSON response (metrics) */
    size_t text_len;
} kms_ctx;

typedef kms_err (*kms_handler)(kms_ctx *c);

#define KMS_ROUTE_PUBLIC 0x1u /* no token needed */
#define KMS_ROUTE_BODY   0x2u /* needs a JSON object body */
#define KMS_ROUTE_BATCH  0x4u /* a cheap write: may join a write batch */

typedef struct kms_route {
    const char *method;
    const char *pattern; /* segments; ":x" one, "*" the rest */
    const char *name;    /* "secrets.read": metrics and audit */
    unsigned flags;
    kms_handler fn;
} kms_route;

size_t kms_route_count(void);
const char *kms_route_name(size_t i);

/* Match `path` against one pattern; on success fills params (up to 2,
 * pointers into `buf`, a caller buffer of KMS_URL_MAX) and *rest.
 * Exposed for tests. */
bool kms_route_match(const char *pattern, const char *path, char *buf,
                     size_t buf_cap, const char **params, size_t *nparams,
                     const char **rest);

/* Query argument (NULL if absent). */
const char *kms_query(const kms_ctx *c, const char *key);

/* ---- validation (router.c) ---------------------------------------------- */
bool kms_valid_name(const char *s);  /* [a-z0-9][a-z0-9_-]{0,63} (orgs, envs) */
bool kms_valid_ident(const char *s); /* [A-Za-z0-9._-]{1,64}, not . or .. */
bool kms_valid_secret_path(const char *s, bool allow_empty);
bool kms_parse_duration(const json_t *v, uint64_t *secs);
/* RFC 3339 UTC time text of `t` (seconds) into buf (>= 21 bytes). */
void kms_time_str(int64_t t, char *buf, size_t cap);

/* ---- authorisation (policy.c) -------------------------------------------- */
typedef enum {
    KMS_CAP_READ = 1u << 0,
    KMS_CAP_CREATE = 1u << 1,
    KMS_CAP_UPDATE = 1u << 2,
    KMS_CAP_DELETE = 1u << 3,
    KMS_CAP_LIST = 1u << 4,
    KMS_CAP_ENCRYPT = 1u << 5,
    KMS_CAP_DECRYPT = 1u << 6,
    KMS_CAP_SIGN = 1u << 7,
    KMS_CAP_VERIFY = 1u << 8,
    KMS_CAP_ROTATE = 1u << 9,
    KMS_CAP_ADMIN = 1u << 10,
    KMS_CAP_DENY = 1u << 15,
} kms_cap;

unsigned kms_cap_parse(const char *name); /* 0 if unknown */
const char *kms_cap_name(unsigned cap);
/* Glob: '*' matches within one path segment, '**' across segments. */
bool kms_glob_match(const char *pattern, const char *s);
bool kms_valid_glob(const char *pattern);
/* Validate a policy document {"rules":[{"path":..,"capabilities":[..]}]}. */
kms_err kms_policy_validate(const json_t *doc, const char **why);
/* Evaluate policies (array of documents) for `resource` and `cap`:
 * deny by default; any matching rule with "deny" denies; otherwise the
 * most specific matching rules decide. */
bool kms_policy_allows(const json_t *policies, const char *resource,
                       unsigned cap);
/* Check that the caller may do `cap` on `resource` in `org`: root passes,
 * another org or a missing capability gives KMS_EDENIED (and records the
 * decision for the audit line). */
kms_err kms_authorize(kms_ctx *c, const char *org, const char *resource,
                      unsigned cap);
kms_err kms_load_policies(kms_txn *txn, const char *org, const json_t *names,
                          json_t **out);

/* ---- tokens and identities (auth.c) -------------------------------------- */
/* Authenticate c->req->token into c->who. */
kms_err kms_authenticate(kms_ctx *c);
/* Mint a token; writes it (KMS_TOKEN_LEN+1) and its id. */
kms_err kms_token_mint(kms_txn *txn, const char *org, const json_t *policies,
                       bool root, const char *identity, uint64_t ttl,
                       int64_t now, char *token, char *id);
void kms_token_id(const char *token, char id[KMS_ID_HEX + 1]);
/* Delete the tokens of `identity`, or (identity NULL) every token expired
 * at `now`; *count gets how many. */
kms_err kms_tokens_sweep(kms_txn *txn, const char *identity, int64_t now,
                         size_t *count);
/* Sweep expired tokens in their own transaction (main loop, each minute). */
kms_err kms_srv_sweep(kms_srv *srv, size_t *count);
void kms_principal_clear(kms_principal *p);

kms_err kms_ratelimit_new(uint32_t max_failures, uint64_t window,
                          kms_ratelimit **out);
void kms_ratelimit_free(kms_ratelimit *rl);
/* 0 if allowed, else seconds to wait. */
unsigned kms_ratelimit_check(kms_ratelimit *rl, const char *k, int64_t now);
void kms_ratelimit_fail(kms_ratelimit *rl, const char *k, int64_t now);
void kms_ratelimit_reset(kms_ratelimit *rl, const char *k);

/* ---- audit (audit.c) ----------------------------------------------------- */
/* HMAC-SHA256 of `data` under the store's audit key, as "hmac-sha256:<hex>". */
void kms_audit_hmac(const kms_srv *srv, const void *data, size_t len,
                    char out[80]);

typedef void (*kms_audit_done_fn)(void *ctx, kms_err rc);
/* Open (create, append) the log; reads the last line to continue the
 * chain. Starts the group-commit thread. `store` is synced before each
 * batch that holds a write is acknowledged. */
kms_err kms_audit_open(const char *path, kms_store *store, kms_metrics *m,
                       kms_audit **out, char *detail, size_t detail_cap);
/* Drain pending records, stop the thread, close. NULL is a no-op. */
void kms_audit_close(kms_audit *a);
/* Queue `rec` (reference stolen); `done` runs on the audit thread once the
 * line is durable (KMS_OK) or cannot be written (KMS_EAUDIT). */
void kms_audit_submit(kms_audit *a, json_t *rec, bool sync_store,
                      kms_audit_done_fn done, void *ctx);
/* Whether the log is still writable (false after a write failure). */
bool kms_audit_healthy(kms_audit *a);

/* Chain arithmetic, shared with `kms audit verify`. Make one line
 * (without "\n") from a record and the previous hash; `hash_hex` gets the
 * line's hash. Returns a malloc'd line or NULL. */
char *kms_audit_line(json_t *rec, uint64_t seq, const char *prev_hex,
                     char hash_hex[65], size_t *len);
/* Verify a whole log. Returns 0 if intact; else 1 with *bad_line (1-based)
 * and a static reason; -errno if unreadable. */
int kms_audit_verify_file(const char *path, uint64_t *lines, uint64_t *bad_line,
                          const char **why);

/* ---- handlers ----------------------------------------------------------- */
kms_err kms_h_health(kms_ctx *c);
kms_err kms_h_metrics(kms_ctx *c);
kms_err kms_h_login(kms_ctx *c);
kms_err kms_h_token_self(kms_ctx *c);
kms_err kms_h_token_renew(kms_ctx *c);
kms_err kms_h_token_revoke_self(kms_ctx *c);
kms_err kms_h_token_create(kms_ctx *c);
kms_err kms_h_token_lookup(kms_ctx *c);
kms_err kms_h_token_revoke(kms_ctx *c);
kms_err kms_h_identity_create(kms_ctx *c);
kms_err kms_h_identity_list(kms_ctx *c);
kms_err kms_h_identity_read(kms_ctx *c);
kms_err kms_h_identity_delete(kms_ctx *c);
kms_err kms_h_admin_create(kms_ctx *c);
kms_err kms_h_org_create(kms_ctx *c);
kms_err kms_h_org_list(kms_ctx *c);
kms_err kms_h_org_read(kms_ctx *c);
kms_err kms_h_policy_write(kms_ctx *c);
kms_err kms_h_policy_read(kms_ctx *c);
kms_err kms_h_policy_list(kms_ctx *c);
kms_err kms_h_policy_delete(kms_ctx *c);
kms_err kms_h_secret_get(kms_ctx *c);
kms_err kms_h_secret_post(kms_ctx *c);
kms_err kms_h_secret_delete(kms_ctx *c);

kms_err kms_h_key_create(kms_ctx *c);
kms_err kms_h_key_list(kms_ctx *c);
kms_err kms_h_key_read(kms_ctx *c);
kms_err kms_h_key_get_sub(kms_ctx *c);
kms_err kms_h_key_action(kms_ctx *c);
kms_err kms_h_random(kms_ctx *c);
kms_err kms_h_awskey_create(kms_ctx *c);

/* Metrics text (Prometheus exposition format); malloc'd. */
char *kms_metrics_render(kms_srv *srv, size_t *len);

/* Org existence (orgs.c). */
kms_err kms_org_exists(kms_txn *txn, const char *org);

/* The audit record of a handled request (router.c), for other front ends
 * (the AWS endpoint) that build their own kms_ctx. */
json_t *kms_audit_record(kms_ctx *c, const char *route, kms_err rc, int status);

/* The AWS KMS-compatible endpoint (awskms.c): POST / with X-Amz-Target. */
void kms_aws_dispatch(kms_srv *srv, const kms_req *req, kms_resp *resp);
bool kms_aws_batchable(const kms_req *req);
void kms_aws_dispatch_batch(kms_srv *srv, const kms_req *const *reqs,
                            kms_resp *const *resps, size_t n);

/* Small JSON helpers (router.c). */
kms_err kms_json_get_str(const json_t *o, const char *k, bool required,
                         const char **out, size_t *len);
json_t *kms_json_load_rec(kms_store *st, const uint8_t *p, size_t n);
kms_err kms_json_put(kms_txn *txn, const char *table, const char *key,
                     const json_t *doc);
kms_err kms_json_get(kms_txn *txn, const char *table, const char *key,
                     json_t **out);

#endif
