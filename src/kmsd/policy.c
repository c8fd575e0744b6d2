/* SPDX-License-Identifier: Apache-2.0 */
/* Policies: named sets of rules {path glob, capabilities}. Deny by
 * default; a matching rule with "deny" denies whatever else matches; of
 * the remaining matching rules the most specific decide (an exact path
 * beats any glob; then the longer literal prefix; then more literal
 * characters); rules equally specific add up. */
#include "kmsd_int.h"

#include "kc.h"

#include <stdio.h>
#include <string.h>

#define GLOB_MAX 256u
#define SUBJ_MAX 1024u

static const struct {
    const char *name;
    unsigned bit;
} caps[] = {
    {"read", KMS_CAP_READ},       {"create", KMS_CAP_CREATE},
    {"update", KMS_CAP_UPDATE},   {"delete", KMS_CAP_DELETE},
    {"list", KMS_CAP_LIST},       {"encrypt", KMS_CAP_ENCRYPT},
    {"decrypt", KMS_CAP_DECRYPT}, {"sign", KMS_CAP_SIGN},
    {"verify", KMS_CAP_VERIFY},   {"rotate", KMS_CAP_ROTATE},
    {"admin", KMS_CAP_ADMIN},     {"deny", KMS_CAP_DENY},
};

unsigned
kms_cap_parse(const char *name)
{
    for (size_t i = 0; name && i < sizeof caps / sizeof caps[0]; i++)
        if (strcmp(caps[i].name, name) == 0)
            return caps[i].bit;
    return 0;
}

const char *
kms_cap_name(unsigned cap)
{
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        if (caps[i].bit == cap)
            return caps[i].name;
    return "?";
}

bool
kms_valid_glob(const char *p)
{
    size_t n = p ? strlen(p) : 0;

    if (n == 0 || n > GLOB_MAX || p[0] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' ||
              ch == '/' || ch == '*'))
            return false;
        if (ch == '*' && i + 2 < n && p[i + 1] == '*' && p[i + 2] == '*')
            return false; /* "***" is ambiguous */
        if (ch == '/' && i + 1 < n && p[i + 1] == '/')
            return false;
    }
    return true;
}

/* Dynamic programming over (pattern token, subject prefix): linear in
 * |pattern| x |subject|, no backtracking blow-up. Only the first `pl`
 * bytes of the pattern are used. */
static bool
glob_dp(const char *pattern, size_t pl, const char *s)
{
    bool rows[2][SUBJ_MAX + 1];
    size_t sl = strlen(s);
    bool *prev = rows[0], *cur = rows[1];

    if (sl > SUBJ_MAX || pl > GLOB_MAX)
        return false;
    memset(prev, 0, sizeof rows[0]);
    prev[0] = true;
    for (size_t i = 0; i < pl;) {
        bool dstar = pattern[i] == '*' && i + 1 < pl && pattern[i + 1] == '*';
        bool star = pattern[i] == '*';
        char lit = pattern[i];

        cur[0] = (star || dstar) ? prev[0] : false;
        for (size_t j = 1; j <= sl; j++) {
            if (dstar)
                cur[j] = prev[j] || cur[j - 1];
            else if (star)
                cur[j] = prev[j] || (cur[j - 1] && s[j - 1] != '/');
            else
                cur[j] = prev[j - 1] && s[j - 1] == lit;
        }
        i += dstar ? 2 : 1;
        bool *t = prev;
        prev = cur;
        cur = t;
    }
    return prev[sl];
}

bool
kms_glob_match(const char *pattern, const char *s)
{
    size_t pl = strlen(pattern);

    if (glob_dp(pattern, pl, s))
        return true;
    /* a pattern ending in slash-double-star also covers the folder itself */
    return pl > 3 && strcmp(pattern + pl - 3, "/**") == 0 &&
           glob_dp(pattern, pl - 3, s);
}

typedef struct {
    int exact;
    size_t prefix, literals;
} spec_t;

static spec_t
specificity(const char *p)
{
    spec_t s = {1, 0, 0};
    const char *star = strchr(p, '*');

    if (star) {
        s.exact = 0;
        s.prefix = (size_t)(star - p);
    } else {
        s.prefix = strlen(p);
    }
    for (; *p; p++)
        s.literals += *p != '*';
    return s;
}

static int
spec_cmp(spec_t a, spec_t b)
{
    if (a.exact != b.exact)
        return a.exact - b.exact;
    if (a.prefix != b.prefix)
        return a.prefix < b.prefix ? -1 : 1;
    if (a.literals != b.literals)
        return a.literals < b.literals ? -1 : 1;
    return 0;
}

static unsigned
rule_caps(const json_t *rule)
{
    const json_t *arr = json_object_get(rule, "capabilities");
    unsigned bits = 0;
    size_t i;
    json_t *v;

    json_array_foreach(arr, i, v) bits |= kms_cap_parse(json_string_value(v));
    return bits;
}

bool
kms_policy_allows(const json_t *policies, const char *resource, unsigned cap)
{
    spec_t best = {0, 0, 0};
    unsigned best_caps = 0;
    bool any = false;
    size_t i, j;
    json_t *doc, *rule;

    if (!resource || cap == 0)
        return false;
    json_array_foreach(policies, i, doc)
    {
        json_array_foreach(json_object_get(doc, "rules"), j, rule)
        {
            const char *path = json_string_value(json_object_get(rule, "path"));
            unsigned bits;
            spec_t sp;

            if (!path || !kms_glob_match(path, resource))
                continue;
            bits = rule_caps(rule);
            if (bits & KMS_CAP_DENY)
                return false;
            sp = specificity(path);
            if (!any || spec_cmp(sp, best) > 0) {
                best = sp;
                best_caps = bits;
                any = true;
            } else if (spec_cmp(sp, best) == 0) {
                best_caps |= bits;
            }
        }
    }
    return any && (best_caps & cap) == cap;
}

kms_err
kms_policy_validate(const json_t *doc, const char **why)
{
    const json_t *rules = json_object_get(doc, "rules");
    const char *key;
    json_t *rule, *v;
    size_t i, j;

    *why =
        "a policy is {\"rules\": [{\"path\": glob, \"capabilities\": [..]}]}";
    if (!json_is_object(doc) || !json_is_array(rules) ||
        json_array_size(rules) == 0 || json_array_size(rules) > KMS_MAX_RULES)
        return KMS_EINVAL;
    json_object_foreach((json_t *)doc, key, v)
    {
        if (strcmp(key, "rules") != 0 && strcmp(key, "description") != 0)
            return KMS_EINVAL;
        if (strcmp(key, "description") == 0 &&
            (!json_is_string(v) || json_string_length(v) > 256))
            return KMS_EINVAL;
    }
    json_array_foreach(rules, i, rule)
    {
        const json_t *cl = json_object_get(rule, "capabilities");
        if (!json_is_object(rule) || json_object_size(rule) != 2 ||
            !kms_valid_glob(json_string_value(json_object_get(rule, "path"))) ||
            !json_is_array(cl) || json_array_size(cl) == 0 ||
            json_array_size(cl) > 16) {
            *why = "each rule needs a valid path glob and capabilities";
            return KMS_EINVAL;
        }
        json_array_foreach(cl, j, v) if (!kms_cap_parse(json_string_value(v)))
        {
            *why = "unknown capability";
            return KMS_EINVAL;
        }
    }
    *why = NULL;
    return KMS_OK;
}

kms_err
kms_load_policies(kms_txn *txn, const char *org, const json_t *names,
                  json_t **out)
{
    json_t *arr = json_array();
    char key[2 * KMS_NAME_MAX + 2];
    size_t i;
    json_t *n;
    kms_err rc = KMS_OK;

    if (!arr)
        return KMS_ENOMEM;
    json_array_foreach(names, i, n)
    {
        json_t *doc = NULL;
        const char *name = json_string_value(n);
        if (!name || !kms_valid_ident(name))
            continue;
        snprintf(key, sizeof key, "%s/%s", org, name);
        rc = kms_json_get(txn, "policies", key, &doc);
        if (rc == KMS_ENOTFOUND) {
            rc = KMS_OK; /* a deleted policy simply grants nothing */
            continue;
        }
        if (rc != KMS_OK)
            break;
        json_array_append_new(arr, doc);
    }
    if (rc != KMS_OK) {
        json_decref(arr);
        arr = NULL;
    }
    *out = arr;
    return rc;
}

kms_err
kms_authorize(kms_ctx *c, const char *org, const char *resource, unsigned cap)
{
    bool ok;

    if (!c->who.authenticated)
        return KMS_EAUTH;
    json_object_set_new(c->audit, "resource", json_string(resource));
    json_object_set_new(c->audit, "capability", json_string(kms_cap_name(cap)));
    if (c->who.root)
        ok = true;
    else if (!org || strcmp(org, c->who.org) != 0)
        ok = false; /* nothing crosses organisations */
    else
        ok = kms_policy_allows(c->who.policies, resource, cap);
    c->decision = ok ? "allow" : "deny";
    if (!ok)
        c->detail = "permission denied";
    return ok ? KMS_OK : KMS_EDENIED;
}

/* ---- handlers ---------------------------------------------------------- */

static void
policy_key(char *key, size_t cap, const char *org, const char *name)
{
    snprintf(key, cap, "%s/%s", org, name);
}

kms_err
kms_h_policy_write(kms_ctx *c)
{
    char key[2 * KMS_NAME_MAX + 2], res[KMS_NAME_MAX + 16];
    kms_txn txn = {0};
    json_t *doc = NULL, *old = NULL;
    kms_err rc;

    snprintf(res, sizeof res, "sys/policies/%s", c->param_id);
    if ((rc = kms_policy_validate(c->body, &c->detail)) != KMS_OK)
        return rc;
    policy_key(key, sizeof key, c->param_org, c->param_id);
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    if ((rc = kms_org_exists(&txn, c->param_org)) != KMS_OK)
        goto out;
    rc = kms_json_get(&txn, "policies", key, &old);
    if (rc != KMS_OK && rc != KMS_ENOTFOUND)
        goto out;
    if ((rc = kms_authorize(c, c->param_org, res,
                            old ? KMS_CAP_UPDATE : KMS_CAP_CREATE)) != KMS_OK)
        goto out;
    doc = json_deep_copy(c->body);
    if (!doc) {
        rc = KMS_ENOMEM;
        goto out;
    }
    json_object_set_new(doc, "name", json_string(c->param_id));
    json_object_set_new(doc, "updated", json_integer(c->srv->now()));
    if ((rc = kms_json_put(&txn, "policies", key, doc)) != KMS_OK)
        goto out;
    rc = kms_st2err(kms_txn_commit(&txn));
    c->store_written = rc == KMS_OK;
    if (rc == KMS_OK) {
        c->out = json_pack("{s:s,s:b}", "name", c->param_id, "created", !old);
        c->status = old ? 200 : 201;
    }
out:
    kms_txn_abort(&txn);
    json_decref(doc);
    json_decref(old);
    return rc;
}

kms_err
kms_h_policy_read(kms_ctx *c)
{
    char key[2 * KMS_NAME_MAX + 2], res[KMS_NAME_MAX + 16];
    kms_txn txn = {0};
    kms_err rc;

    snprintf(res, sizeof res, "sys/policies/%s", c->param_id);
    if ((rc = kms_authorize(c, c->param_org, res, KMS_CAP_READ)) != KMS_OK)
        return rc;
    policy_key(key, sizeof key, c->param_org, c->param_id);
    if (kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    rc = kms_json_get(&txn, "policies", key, &c->out);
    kms_txn_abort(&txn);
    return rc;
}

typedef struct {
    json_t *names;
    size_t skip;
} list_ctx;

static int
collect_suffix(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v,
               size_t vl)
{
    list_ctx *l = ctx;
    (void)v;
    (void)vl;
    if (kl > l->skip)
        json_array_append_new(
            l->names, json_stringn((const char *)k + l->skip, kl - l->skip));
    return 0;
}

kms_err
kms_h_policy_list(kms_ctx *c)
{
    char prefix[KMS_NAME_MAX + 2];
    list_ctx l;
    kms_txn txn = {0};
    kms_err rc;

    if ((rc = kms_authorize(c, c->param_org, "sys/policies", KMS_CAP_LIST)) !=
        KMS_OK)
        return rc;
    snprintf(prefix, sizeof prefix, "%s/", c->param_org);
    l.names = json_array();
    l.skip = strlen(prefix);
    if (!l.names || kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK) {
        json_decref(l.names);
        return KMS_ESTORE;
    }
    rc = kms_st2err(kms_txn_scan(&txn, "policies", prefix, strlen(prefix),
                                 false, collect_suffix, &l));
    kms_txn_abort(&txn);
    c->out = json_pack("{s:o}", "policies", l.names);
    return rc;
}

kms_err
kms_h_policy_delete(kms_ctx *c)
{
    char key[2 * KMS_NAME_MAX + 2], res[KMS_NAME_MAX + 16];
    kms_txn txn = {0};
    kms_err rc;

    snprintf(res, sizeof res, "sys/policies/%s", c->param_id);
    if ((rc = kms_authorize(c, c->param_org, res, KMS_CAP_DELETE)) != KMS_OK)
        return rc;
    policy_key(key, sizeof key, c->param_org, c->param_id);
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    rc = kms_st2err(kms_txn_del(&txn, "policies", key, strlen(key)));
    if (rc == KMS_OK)
        rc = kms_st2err(kms_txn_commit(&txn));
    kms_txn_abort(&txn);
    c->store_written = rc == KMS_OK;
    if (rc == KMS_OK)
        c->out = json_pack("{s:s}", "deleted", c->param_id);
    return rc;
}
