/* SPDX-License-Identifier: Apache-2.0 */
/* Tokens and machine identities.
 *
 * A token is "kms_" followed by 64 hex digits (256 random bits). The store
 * keeps only its SHA-256 (the token id, also the "accessor" the API shows),
 * so a copy of the store yields no usable token; a 256-bit random secret
 * needs no slow hash. Identity client secrets are hashed with Argon2id
 * (crypto_pwhash_str) and logins are rate-limited per identity and per
 * client address. */
#include "kmsd_int.h"

#include "kc.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_PREFIX "kcs_"
#define CLIENT_PREFIX "kid_"
#define PWHASH_OPS    2u
#define PWHASH_MEM    (16u * 1024u * 1024u)

void
kms_principal_clear(kms_principal *p)
{
    json_decref(p->token);
    json_decref(p->policies);
    memset(p, 0, sizeof *p);
}

void
kms_token_id(const char *token, char id[KMS_ID_HEX + 1])
{
    uint8_t h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(h, (const uint8_t *)token, strlen(token));
    kc_hex_encode(h, sizeof h, id, KMS_ID_HEX + 1);
}

static bool
token_format_ok(const char *t)
{
    if (strnlen(t, KMS_TOKEN_LEN + 1) != KMS_TOKEN_LEN ||
        memcmp(t, "kms_", 4) != 0)
        return false;
    for (size_t i = 4; i < KMS_TOKEN_LEN; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
            return false;
    return true;
}

static void
random_hex(const char *prefix, size_t nbytes, char *out, size_t cap)
{
    uint8_t r[32];
    size_t pl = strlen(prefix);

    kc_random(r, nbytes);
    memcpy(out, prefix, pl);
    kc_hex_encode(r, nbytes, out + pl, cap - pl);
    kc_wipe(r, sizeof r);
}

kms_err
kms_token_mint(kms_txn *txn, const char *org, const json_t *policies, bool root,
               const char *identity, uint64_t ttl, int64_t now, char *token,
               char *id)
{
    json_t *rec;
    json_t *pol = policies ? json_deep_copy(policies) : json_array();
    kms_err rc;

    random_hex("kms_", 32, token, KMS_TOKEN_LEN + 1);
    kms_token_id(token, id);
    rec = json_pack("{s:s,s:o,s:b,s:s?,s:I,s:I,s:I,s:b}", "org", org ? org : "",
                    "policies", pol, "root", root, "identity", identity,
                    "created", (json_int_t)now, "expires",
                    (json_int_t)(ttl ? now + (int64_t)ttl : 0), "ttl",
                    (json_int_t)ttl, "renewable", ttl != 0);
    if (!rec)
        return KMS_ENOMEM;
    rc = kms_json_put(txn, "tokens", id, rec);
    json_decref(rec);
    return rc;
}

kms_err
kms_authenticate(kms_ctx *c)
{
    const char *tok = c->req->token;
    kms_txn txn = {0};
    json_t *rec = NULL;
    int64_t exp;
    const char *ident;
    kms_err rc;

    c->detail = "missing, invalid or expired token";
    if (!tok || !token_format_ok(tok))
        return KMS_EAUTH;
    kms_token_id(tok, c->who.id);
    if (kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    rc = kms_json_get(&txn, "tokens", c->who.id, &rec);
    if (rc == KMS_ENOTFOUND)
        rc = KMS_EAUTH;
    if (rc != KMS_OK)
        goto out;
    exp = json_integer_value(json_object_get(rec, "expires"));
    if (exp && c->srv->now() >= exp) {
        rc = KMS_EAUTH;
        goto out;
    }
    c->who.root = json_is_true(json_object_get(rec, "root"));
    kc_strlcpy(c->who.org, json_string_value(json_object_get(rec, "org")) ?: "",
               sizeof c->who.org);
    ident = json_string_value(json_object_get(rec, "identity"));
    if (ident)
        snprintf(c->who.display, sizeof c->who.display, "identity:%s", ident);
    else if (c->who.root)
        snprintf(c->who.display, sizeof c->who.display, "root:%.16s",
                 c->who.id);
    else
        snprintf(c->who.display, sizeof c->who.display, "token:%.16s",
                 c->who.id);
    if (!c->who.root && (rc = kms_load_policies(
                             &txn, c->who.org, json_object_get(rec, "policies"),
                             &c->who.policies)) != KMS_OK)
        goto out;
    c->who.token = rec;
    rec = NULL;
    c->who.authenticated = true;
    c->detail = NULL;
out:
    kms_txn_abort(&txn);
    json_decref(rec);
    return rc;
}

/* The caller may hand out `policies` only if it holds each of them, unless
 * it is root or has "admin" on `admin_res`. */
static kms_err
check_policy_names(kms_ctx *c, const json_t *policies, const char *admin_res)
{
    const json_t *mine = json_object_get(c->who.token, "policies");
    size_t i, j;
    json_t *p, *m;

    if (!json_is_array(policies) ||
        json_array_size(policies) > KMS_MAX_POLICIES) {
        c->detail = "policies must be an array of names";
        return KMS_EINVAL;
    }
    json_array_foreach(policies, i,
                       p) if (!kms_valid_ident(json_string_value(p)))
    {
        c->detail = "invalid policy name";
        return KMS_EINVAL;
    }
    if (c->who.root ||
        kms_policy_allows(c->who.policies, admin_res, KMS_CAP_ADMIN))
        return KMS_OK;
    json_array_foreach(policies, i, p)
    {
        bool held = false;
        json_array_foreach(mine, j, m) held |= json_equal(p, m);
        if (!held) {
            c->decision = "deny";
            c->detail = "cannot grant a policy the caller does not hold";
            return KMS_EDENIED;
        }
    }
    return KMS_OK;
}

static uint64_t
pick_ttl(kms_ctx *c, const json_t *v, uint64_t dflt, kms_err *rc)
{
    uint64_t ttl = dflt;

    *rc = KMS_OK;
    if (v && !kms_parse_duration(v, &ttl)) {
        c->detail = "ttl: seconds or a duration like \"30m\"";
        *rc = KMS_EINVAL;
    }
    if (ttl > c->srv->max_ttl)
        ttl = c->srv->max_ttl;
    return ttl;
}

static json_t *
token_view(const char *id, const json_t *rec)
{
    char t[32];
    int64_t exp = json_integer_value(json_object_get(rec, "expires"));
    json_t *o =
        json_pack("{s:s,s:O,s:O,s:O,s:O,s:O}", "accessor", id, "org",
                  json_object_get(rec, "org"), "policies",
                  json_object_get(rec, "policies") ?: json_null(), "root",
                  json_object_get(rec, "root") ?: json_false(), "ttl",
                  json_object_get(rec, "ttl") ?: json_null(), "renewable",
                  json_object_get(rec, "renewable") ?: json_false());
    if (!o)
        return NULL;
    if (json_object_get(rec, "identity"))
        json_object_set(o, "identity", json_object_get(rec, "identity"));
    if (exp) {
        kms_time_str(exp, t, sizeof t);
        json_object_set_new(o, "expires_at", json_string(t));
    } else {
        json_object_set_new(o, "expires_at", json_null());
    }
    return o;
}

kms_err
kms_h_token_create(kms_ctx *c)
{
    char token[KMS_TOKEN_LEN + 1], id[KMS_ID_HEX + 1], h[80];
    const json_t *pol = json_object_get(c->body, "policies");
    kms_txn txn = {0};
    uint64_t ttl;
    json_t *rec = NULL;
    kms_err rc;

    if ((rc = kms_authorize(c, c->param_org, "sys/tokens", KMS_CAP_CREATE)) !=
        KMS_OK)
        return rc;
    if ((rc = check_policy_names(c, pol, "sys/tokens")) != KMS_OK)
        return rc;
    ttl =
        pick_ttl(c, json_object_get(c->body, "ttl"), c->srv->default_ttl, &rc);
    if (rc != KMS_OK)
        return rc;
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    if ((rc = kms_org_exists(&txn, c->param_org)) != KMS_OK ||
        (rc = kms_token_mint(&txn, c->param_org, pol, false, NULL, ttl,
                             c->srv->now(), token, id)) != KMS_OK)
        goto out;
    if ((rc = kms_json_get(&txn, "tokens", id, &rec)) != KMS_OK)
        goto out;
    if ((rc = kms_st2err(kms_txn_commit(&txn))) != KMS_OK)
        goto out;
    c->store_written = true;
    c->status = 201;
    c->out = token_view(id, rec);
    if (c->out)
        json_object_set_new(c->out, "token", json_string(token));
    kms_audit_hmac(c->srv, token, strlen(token), h);
    json_object_set_new(c->audit, "new_token_hmac", json_string(h));
out:
    kms_txn_abort(&txn);
    json_decref(rec);
    kc_wipe(token, sizeof token);
    return rc;
}

kms_err
kms_h_token_self(kms_ctx *c)
{
    c->decision = "allow";
    c->out = token_view(c->who.id, c->who.token);
    return c->out ? KMS_OK : KMS_ENOMEM;
}

kms_err
kms_h_token_renew(kms_ctx *c)
{
    kms_txn txn = {0};
    json_t *rec = NULL;
    uint64_t ttl;
    int64_t now = c->srv->now();
    kms_err rc;

    c->decision = "allow";
    if (!json_is_true(json_object_get(c->who.token, "renewable"))) {
        c->detail = "token is not renewable";
        return KMS_EINVAL;
    }
    ttl = pick_ttl(
        c, json_object_get(c->body, "ttl"),
        (uint64_t)json_integer_value(json_object_get(c->who.token, "ttl")),
        &rc);
    if (rc != KMS_OK)
        return rc;
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    if ((rc = kms_json_get(&txn, "tokens", c->who.id, &rec)) != KMS_OK)
        goto out;
    json_object_set_new(rec, "expires",
                        json_integer((json_int_t)(now + (int64_t)ttl)));
    json_object_set_new(rec, "ttl", json_integer((json_int_t)ttl));
    if ((rc = kms_json_put(&txn, "tokens", c->who.id, rec)) != KMS_OK)
        goto out;
    if ((rc = kms_st2err(kms_txn_commit(&txn))) != KMS_OK)
        goto out;
    c->store_written = true;
    c->out = token_view(c->who.id, rec);
out:
    kms_txn_abort(&txn);
    json_decref(rec);
    return rc;
}

static int
find_admin(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    bool *found = ctx;
    json_t *j = json_loadb((const char *)v, vl, 0, NULL);

    (void)k;
    (void)kl;
    *found = json_is_true(json_object_get(j, "admin"));
    json_decref(j);
    return *found;
}

kms_err
kms_h_token_revoke_self(kms_ctx *c)
{
    kms_txn txn = {0};
    bool admin_exists = false;
    kms_err rc;

    c->decision = "allow";
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    if (c->who.root &&
        !json_is_string(json_object_get(c->who.token, "identity"))) {
        rc = kms_st2err(kms_txn_scan(&txn, "identities", NULL, 0, true,
                                     find_admin, &admin_exists));
        if (rc != KMS_OK)
            goto out;
        if (!admin_exists) {
            c->decision = "deny";
            c->detail =
                "create an admin identity before revoking the root token";
            rc = KMS_EDENIED;
            goto out;
        }
    }
    rc = kms_st2err(kms_txn_del(&txn, "tokens", c->who.id, strlen(c->who.id)));
    if (rc == KMS_OK)
        rc = kms_st2err(kms_txn_commit(&txn));
    c->store_written = rc == KMS_OK;
    if (rc == KMS_OK)
        c->out = json_pack("{s:s}", "revoked", c->who.id);
out:
    kms_txn_abort(&txn);
    return rc;
}

/* Load the record `c->param_id` of `table` ("tokens", "identities") and
 * check it belongs to the route's org: a record of another org is simply
 * not found, so nothing crosses orgs. */
static kms_err
rec_in_org(kms_ctx *c, kms_txn *txn, const char *table, json_t **rec)
{
    kms_err rc = kms_json_get(txn, table, c->param_id, rec);

    if (rc == KMS_OK &&
        strcmp(json_string_value(json_object_get(*rec, "org")) ?: "",
               c->param_org) != 0) {
        json_decref(*rec);
        *rec = NULL;
        rc = KMS_ENOTFOUND;
    }
    return rc;
}

/* GET of one token or identity: policy `sys_path` read, then its view. */
static kms_err
read_in_org(kms_ctx *c, const char *table, const char *sys_path,
            json_t *(*view)(const char *id, const json_t *rec))
{
    kms_txn txn = {0};
    json_t *rec = NULL;
    kms_err rc;

    if ((rc = kms_authorize(c, c->param_org, sys_path, KMS_CAP_READ)) !=
        KMS_OK)
        return rc;
    if (kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    rc = rec_in_org(c, &txn, table, &rec);
    kms_txn_abort(&txn);
    if (rc == KMS_OK)
        c->out = view(c->param_id, rec);
    json_decref(rec);
    return rc;
}

kms_err
kms_h_token_lookup(kms_ctx *c)
{
    return read_in_org(c, "tokens", "sys/tokens", token_view);
}

kms_err
kms_h_token_revoke(kms_ctx *c)
{
    kms_txn txn = {0};
    json_t *rec = NULL;
    kms_err rc;

    if ((rc = kms_authorize(c, c->param_org, "sys/tokens", KMS_CAP_DELETE)) !=
        KMS_OK)
        return rc;
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    if ((rc = rec_in_org(c, &txn, "tokens", &rec)) != KMS_OK)
        goto out;
    rc = kms_st2err(
        kms_txn_del(&txn, "tokens", c->param_id, strlen(c->param_id)));
    if (rc == KMS_OK)
        rc = kms_st2err(kms_txn_commit(&txn));
    c->store_written = rc == KMS_OK;
    if (rc == KMS_OK)
        c->out = json_pack("{s:s}", "revoked", c->param_id);
out:
    kms_txn_abort(&txn);
    json_decref(rec);
    return rc;
}

/* ---- token clean-up
 * ---------------------------------------------------------- */

typedef struct {
    const char *identity;
    int64_t now;
    json_t *ids;
} sweep_ctx;

static int
sweep_pick(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    sweep_ctx *s = ctx;
    json_t *rec = json_loadb((const char *)v, vl, 0, NULL);
    int64_t exp = json_integer_value(json_object_get(rec, "expires"));
    const char *ident = json_string_value(json_object_get(rec, "identity"));

    if (rec && (s->identity ? ident && strcmp(ident, s->identity) == 0
                            : exp && exp <= s->now))
        json_array_append_new(s->ids, json_stringn((const char *)k, kl));
    json_decref(rec);
    return 0;
}

kms_err
kms_tokens_sweep(kms_txn *txn, const char *identity, int64_t now, size_t *count)
{
    sweep_ctx s = {identity, now, json_array()};
    size_t i;
    json_t *id;
    kms_err rc;

    *count = 0;
    if (!s.ids)
        return KMS_ENOMEM;
    rc = kms_st2err(kms_txn_scan(txn, "tokens", NULL, 0, true, sweep_pick, &s));
    json_array_foreach(s.ids, i, id)
    {
        if (rc != KMS_OK)
            break;
        rc = kms_st2err(kms_txn_del(txn, "tokens", json_string_value(id),
                                    json_string_length(id)));
        (*count)++;
    }
    json_decref(s.ids);
    return rc;
}

/* ---- identities -------------------------------------------------------------
 */

static kms_err
identity_new(kms_ctx *c, const char *org, bool admin)
{
    char cid[4 + 32 + 1], secret[4 + 64 + 1], hash[crypto_pwhash_STRBYTES],
        h[80];
    const char *name;
    const json_t *pol = json_object_get(c->body, "policies");
    json_t *rec = NULL, *empty = json_array();
    kms_txn txn = {0};
    uint64_t ttl;
    kms_err rc;

    if (kms_json_get_str(c->body, "name", true, &name, NULL) != KMS_OK ||
        !kms_valid_ident(name)) {
        c->detail = "name: 1-64 of [A-Za-z0-9._-]";
        rc = KMS_EINVAL;
        goto out;
    }
    if (!pol)
        pol = empty;
    if (!admin && (rc = check_policy_names(c, pol, "sys/identities")) != KMS_OK)
        goto out;
    ttl = pick_ttl(c, json_object_get(c->body, "token_ttl"), c->srv->login_ttl,
                   &rc);
    if (rc != KMS_OK)
        goto out;
    random_hex(CLIENT_PREFIX, 16, cid, sizeof cid);
    random_hex(SECRET_PREFIX, 32, secret, sizeof secret);
    if (crypto_pwhash_str(hash, secret, strlen(secret), PWHASH_OPS,
                          PWHASH_MEM) != 0) {
        rc = KMS_ENOMEM;
        goto out;
    }
    rec =
        json_pack("{s:s,s:s,s:O,s:I,s:b,s:s,s:I}", "org", org, "name", name,
                  "policies", pol, "token_ttl", (json_int_t)ttl, "admin", admin,
                  "secret_hash", hash, "created", (json_int_t)c->srv->now());
    if (!rec) {
        rc = KMS_ENOMEM;
        goto out;
    }
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK) {
        rc = KMS_ESTORE;
        goto out;
    }
    if ((!admin && (rc = kms_org_exists(&txn, org)) != KMS_OK) ||
        (rc = kms_json_put(&txn, "identities", cid, rec)) != KMS_OK ||
        (rc = kms_st2err(kms_txn_commit(&txn))) != KMS_OK)
        goto out;
    c->store_written = true;
    c->status = 201;
    c->out = json_pack("{s:s,s:s,s:s,s:s,s:O,s:b}", "client_id", cid,
                       "client_secret", secret, "name", name, "org", org,
                       "policies", pol, "admin", admin);
    kms_audit_hmac(c->srv, secret, strlen(secret), h);
    json_object_set_new(c->audit, "client_id", json_string(cid));
    json_object_set_new(c->audit, "client_secret_hmac", json_string(h));
out:
    kms_txn_abort(&txn);
    json_decref(rec);
    json_decref(empty);
    kc_wipe(secret, sizeof secret);
    kc_wipe(hash, sizeof hash);
    return rc;
}

kms_err
kms_h_identity_create(kms_ctx *c)
{
    kms_err rc =
        kms_authorize(c, c->param_org, "sys/identities", KMS_CAP_CREATE);
    return rc == KMS_OK ? identity_new(c, c->param_org, false) : rc;
}

kms_err
kms_h_admin_create(kms_ctx *c)
{
    if (!c->who.root) {
        c->decision = "deny";
        c->detail = "only a root or admin token creates admin identities";
        return KMS_EDENIED;
    }
    c->decision = "allow";
    return identity_new(c, "", true);
}

static json_t *
identity_view(const char *cid, const json_t *rec)
{
    return json_pack("{s:s,s:O,s:O,s:O,s:O}", "client_id", cid, "name",
                     json_object_get(rec, "name"), "org",
                     json_object_get(rec, "org"), "policies",
                     json_object_get(rec, "policies"), "token_ttl",
                     json_object_get(rec, "token_ttl"));
}

typedef struct {
    const char *org;
    json_t *out;
} ident_list;

static int
collect_ident(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v,
              size_t vl)
{
    ident_list *l = ctx;
    json_t *rec = json_loadb((const char *)v, vl, 0, NULL);
    char cid[64];

    if (rec && kl < sizeof cid &&
        strcmp(json_string_value(json_object_get(rec, "org")) ?: "", l->org) ==
            0) {
        memcpy(cid, k, kl);
        cid[kl] = '\0';
        json_array_append_new(l->out, identity_view(cid, rec));
    }
    json_decref(rec);
    return 0;
}

kms_err
kms_h_identity_list(kms_ctx *c)
{
    ident_list l = {c->param_org, NULL};
    kms_txn txn = {0};
    kms_err rc;

    if ((rc = kms_authorize(c, c->param_org, "sys/identities", KMS_CAP_LIST)) !=
        KMS_OK)
        return rc;
    if (!(l.out = json_array()))
        return KMS_ENOMEM;
    if (kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK) {
        json_decref(l.out);
        return KMS_ESTORE;
    }
    rc = kms_st2err(
        kms_txn_scan(&txn, "identities", NULL, 0, true, collect_ident, &l));
    kms_txn_abort(&txn);
    c->out = json_pack("{s:o}", "identities", l.out);
    return rc;
}

kms_err
kms_h_identity_read(kms_ctx *c)
{
    return read_in_org(c, "identities", "sys/identities", identity_view);
}

kms_err
kms_h_identity_delete(kms_ctx *c)
{
    kms_txn txn = {0};
    json_t *rec = NULL;
    size_t revoked = 0;
    kms_err rc;

    if ((rc = kms_authorize(c, c->param_org, "sys/identities",
                            KMS_CAP_DELETE)) != KMS_OK)
        return rc;
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    if ((rc = rec_in_org(c, &txn, "identities", &rec)) != KMS_OK)
        goto out;
    rc = kms_st2err(
        kms_txn_del(&txn, "identities", c->param_id, strlen(c->param_id)));
    /* the identity's tokens go with it */
    if (rc == KMS_OK)
        rc = kms_tokens_sweep(&txn, c->param_id, 0, &revoked);
    if (rc == KMS_OK)
        rc = kms_st2err(kms_txn_commit(&txn));
    c->store_written = rc == KMS_OK;
    if (rc == KMS_OK)
        c->out = json_pack("{s:s,s:I}", "deleted", c->param_id,
                           "tokens_revoked", (json_int_t)revoked);
out:
    kms_txn_abort(&txn);
    json_decref(rec);
    return rc;
}

/* ---- login ------------------------------------------------------------------
 */

static char dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void
make_dummy(void)
{
    uint8_t r[16];
    kc_random(r, sizeof r);
    if (crypto_pwhash_str(dummy_hash, (const char *)r, sizeof r, PWHASH_OPS,
                          PWHASH_MEM) != 0)
        dummy_hash[0] = '\0';
}

/* Look the identity up and check its secret (rate-limited). On KMS_OK
 * *rec is the identity record. */
static kms_err
login_verify(kms_ctx *c, const char *cid, const char *secret, size_t slen,
             int64_t now, json_t **rec)
{
    char idkey[160], ipkey[160];
    kms_txn txn = {0};
    const char *hash;
    unsigned wait1, wait2;
    bool ok;
    kms_err rc;

    *rec = NULL;
    snprintf(idkey, sizeof idkey, "id:%s", cid);
    snprintf(ipkey, sizeof ipkey, "ip:%s",
             c->req->remote ? c->req->remote : "");
    wait1 = kms_ratelimit_check(c->srv->rl, idkey, now);
    wait2 = kms_ratelimit_check(c->srv->rl, ipkey, now);
    if (wait1 || wait2) {
        c->retry_after = wait1 > wait2 ? wait1 : wait2;
        return KMS_ERATE;
    }
    pthread_once(&dummy_once, make_dummy);
    if (kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    rc = kms_valid_ident(cid) ? kms_json_get(&txn, "identities", cid, rec)
                              : KMS_ENOTFOUND;
    kms_txn_abort(&txn);
    if (rc != KMS_OK && rc != KMS_ENOTFOUND)
        return rc;
    /* Unknown ids are checked against a dummy hash, so timing does not
     * tell which client ids exist. */
    hash =
        *rec ? json_string_value(json_object_get(*rec, "secret_hash")) : NULL;
    ok =
        crypto_pwhash_str_verify(hash ? hash : dummy_hash, secret, slen) == 0 &&
        *rec && hash;
    if (!ok) {
        kms_ratelimit_fail(c->srv->rl, idkey, now);
        kms_ratelimit_fail(c->srv->rl, ipkey, now);
        json_decref(*rec);
        *rec = NULL;
        return KMS_ELOGIN;
    }
    kms_ratelimit_reset(c->srv->rl, idkey);
    return KMS_OK;
}

kms_err
kms_h_login(kms_ctx *c)
{
    char token[KMS_TOKEN_LEN + 1], id[KMS_ID_HEX + 1], h[80];
    const char *cid, *secret;
    size_t slen;
    kms_txn txn = {0};
    json_t *rec = NULL, *again = NULL;
    int64_t now = c->srv->now();
    kms_err rc;

    if (kms_json_get_str(c->body, "client_id", true, &cid, NULL) != KMS_OK ||
        kms_json_get_str(c->body, "client_secret", true, &secret, &slen) !=
            KMS_OK ||
        strlen(cid) > 64 || slen > 256) {
        c->detail = "client_id and client_secret are required";
        return KMS_EINVAL;
    }
    json_object_set_new(c->audit, "client_id", json_string(cid));
    if ((rc = login_verify(c, cid, secret, slen, now, &rec)) != KMS_OK)
        return rc;
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK) {
        rc = KMS_ESTORE;
        goto out;
    }
    /* the identity may have been deleted while its secret was checked */
    if ((rc = kms_json_get(&txn, "identities", cid, &again)) != KMS_OK) {
        rc = rc == KMS_ENOTFOUND ? KMS_ELOGIN : rc;
        goto out;
    }
    rc = kms_token_mint(
        &txn, json_string_value(json_object_get(rec, "org")),
        json_object_get(rec, "policies"),
        json_is_true(json_object_get(rec, "admin")), cid,
        (uint64_t)json_integer_value(json_object_get(rec, "token_ttl")), now,
        token, id);
    if (rc == KMS_OK)
        rc = kms_st2err(kms_txn_commit(&txn));
    if (rc != KMS_OK)
        goto out;
    c->store_written = true;
    c->decision = "allow";
    c->out = json_pack("{s:s,s:s,s:O,s:O,s:O}", "token", token, "accessor", id,
                       "org", json_object_get(rec, "org"), "policies",
                       json_object_get(rec, "policies"), "ttl",
                       json_object_get(rec, "token_ttl"));
    kms_audit_hmac(c->srv, token, strlen(token), h);
    json_object_set_new(c->audit, "new_token_hmac", json_string(h));
out:
    kms_txn_abort(&txn);
    json_decref(rec);
    json_decref(again);
    kc_wipe(token, sizeof token);
    return rc;
}

/* ---- login rate limiter
 * ------------------------------------------------------ */

#define RL_SLOTS 4096u

typedef struct {
    char key[128];
    uint32_t failures;
    int64_t window_start, blocked_until;
} rl_slot;

struct kms_ratelimit {
    pthread_mutex_t mu;
    uint32_t max_failures;
    uint64_t window;
    uint8_t seed[crypto_shorthash_KEYBYTES];
    rl_slot slots[RL_SLOTS];
};

kms_err
kms_ratelimit_new(uint32_t max_failures, uint64_t window, kms_ratelimit **out)
{
    kms_ratelimit *rl = calloc(1, sizeof *rl);

    if (!rl)
        return KMS_ENOMEM;
    pthread_mutex_init(&rl->mu, NULL);
    rl->max_failures = max_failures ? max_failures : 5;
    rl->window = window ? window : 60;
    kc_random(rl->seed, sizeof rl->seed);
    *out = rl;
    return KMS_OK;
}

void
kms_ratelimit_free(kms_ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

#define RL_PROBE 8u

/* Keyed hash (SipHash) picks a neighbourhood of RL_PROBE slots, so clients
 * cannot aim collisions. A new key takes a free slot there, else the one
 * whose window is oldest among those not locked out: flooding the table
 * with other names cannot lift a lockout that is in force. */
static rl_slot *
rl_slot_for(kms_ratelimit *rl, const char *k, bool claim, int64_t now)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v;
    rl_slot *victim = NULL, *locked = NULL;

    crypto_shorthash(h, (const uint8_t *)k, strlen(k), rl->seed);
    memcpy(&v, h, sizeof v);
    for (unsigned i = 0; i < RL_PROBE; i++) {
        rl_slot *s = &rl->slots[(v + i) % RL_SLOTS];
        if (strcmp(s->key, k) == 0)
            return s;
        if (!claim)
            continue;
        if (s->key[0] && s->blocked_until > now) {
            if (!locked || s->blocked_until < locked->blocked_until)
                locked = s; /* all locked: the soonest to expire */
        } else if (!victim || !s->key[0] ||
                   (victim->key[0] && s->window_start < victim->window_start)) {
            victim = s;
        }
    }
    if (!victim)
        victim = locked;
    if (victim) {
        memset(victim, 0, sizeof *victim);
        kc_strlcpy(victim->key, k, sizeof victim->key);
    }
    return victim;
}

unsigned
kms_ratelimit_check(kms_ratelimit *rl, const char *k, int64_t now)
{
    unsigned wait = 0;
    rl_slot *s;

    if (!rl)
        return 0;
    pthread_mutex_lock(&rl->mu);
    s = rl_slot_for(rl, k, false, now);
    if (s && s->blocked_until > now)
        wait = (unsigned)(s->blocked_until - now);
    pthread_mutex_unlock(&rl->mu);
    return wait;
}

void
kms_ratelimit_fail(kms_ratelimit *rl, const char *k, int64_t now)
{
    rl_slot *s;

    if (!rl)
        return;
    pthread_mutex_lock(&rl->mu);
    s = rl_slot_for(rl, k, true, now);
    if (now - s->window_start >= (int64_t)rl->window) {
        s->window_start = now;
        s->failures = 0;
    }
    if (++s->failures >= rl->max_failures) {
        s->blocked_until = now + (int64_t)rl->window;
        s->failures = 0;
        s->window_start = now;
    }
    pthread_mutex_unlock(&rl->mu);
}

void
kms_ratelimit_reset(kms_ratelimit *rl, const char *k)
{
    rl_slot *s;

    if (!rl)
        return;
    pthread_mutex_lock(&rl->mu);
    s = rl_slot_for(rl, k, false, 0);
    if (s)
        memset(s, 0, sizeof *s);
    pthread_mutex_unlock(&rl->mu);
}
