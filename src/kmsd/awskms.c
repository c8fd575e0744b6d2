/* SPDX-License-Identifier: Apache-2.0 */
/* The AWS KMS-compatible endpoint (docs/awskms.md): POST / with
 * X-Amz-Target: TrentService.<Op>, Content-Type application/x-amz-json-1.1,
 * authenticated with AWS Signature Version 4 (service "kms") against access
 * keys kmsd issues to its identities (table "awskeys"). Each operation maps
 * onto the key engine (keys_int.h) in the caller's organisation; errors are
 * AWS-shaped: HTTP 400 {"__type": "...", "message": "..."}.
 *
 * Field names and error types follow the AWS KMS API Reference. */
#include "keys_int.h"

#include "kc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef KMSD_HAVE_HSM
#include "sigv4.h"
#endif

#define AWS_PT_MAX   4096u
#define AWS_MSG_MAX  4096u
#define AWS_SKEW     300u
#define AWS_AKID_LEN 20u
#define AWS_SK_LEN   40u

typedef struct {
    kms_ctx *c;
    json_t *in;
    char region[64];
} aws_call;

typedef kms_err (*aws_op_fn)(aws_call *a);

/* ---- KeyId, ARNs, key specs -------------------------------------------------
 */

static kms_err
fail(aws_call *a, kms_err rc, const char *type, const char *msg)
{
    a->c->err_type = type;
    a->c->detail = msg;
    return rc;
}

/* KeyId: a key id (name), key ARN, alias name or alias ARN. */
static kms_err
resolve_key(aws_call *a, const char *field, bool required,
            char name[KMS_NAME_MAX + 1])
{
    const char *id, *p;
    char alias[KMS_SEG_MAX + 8];
    size_t n;

    name[0] = '\0';
    if (kms_json_get_str(a->in, field, required, &id, &n) != KMS_OK || !id)
        return required ? fail(a, KMS_EINVAL, "ValidationException",
                               "KeyId is required")
                        : KMS_OK;
    if (n == 0 || n > 2048)
        return fail(a, KMS_EINVAL, "ValidationException", "invalid KeyId");
    if (strncmp(id, "arn:", 4) == 0) {
        /* arn:aws:kms:REGION:ACCOUNT:key/ID: the account is the org */
        const char *acc = id;
        size_t al;
        for (int i = 0; i < 4 && acc; i++)
            acc = strchr(acc, ':') ? strchr(acc, ':') + 1 : NULL;
        al = acc ? strcspn(acc, ":") : 0;
        if (!acc || al != strlen(a->c->who.org) ||
            memcmp(acc, a->c->who.org, al) != 0)
            return fail(a, KMS_ENOTFOUND, "NotFoundException",
                        "the ARN names another account");
        if ((p = strstr(id, ":key/")))
            id = p + 5;
        else if ((p = strstr(id, ":alias/")))
            id = p + 1;
        else
            return fail(a, KMS_ENOTFOUND, "NotFoundException",
                        "invalid key ARN");
    }
    if (strncmp(id, "alias/", 6) == 0) {
        if (strlen(id) >= sizeof alias)
            return fail(a, KMS_ENOTFOUND, "NotFoundException", "no such alias");
        kc_strlcpy(alias, id, sizeof alias);
        if (kms_alias_resolve(a->c, a->c->who.org, alias, name) != KMS_OK)
            return fail(a, KMS_ENOTFOUND, "NotFoundException",
                        "alias not found");
        return KMS_OK;
    }
    if (!kms_valid_ident(id))
        return fail(a, KMS_ENOTFOUND, "NotFoundException", "invalid KeyId");
    kc_strlcpy(name, id, KMS_NAME_MAX + 1);
    return KMS_OK;
}

static json_t *
arn(const aws_call *a, const char *kind, const char *name)
{
    char buf[512];

    snprintf(buf, sizeof buf, "arn:aws:kms:%s:%s:%s/%s", a->region,
             a->c->who.org, kind, name);
    return json_string(buf);
}

static const struct {
    const char *spec, *usage, *alg;
} specs[KMS_KT_COUNT] = {
    [KMS_KT_AES256_GCM] = {"SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT",
                           "SYMMETRIC_DEFAULT"},
    [KMS_KT_CHACHA20_POLY1305] = {"SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT",
                                  "SYMMETRIC_DEFAULT"},
    [KMS_KT_ECDSA_P256] = {"ECC_NIST_P256", "SIGN_VERIFY", "ECDSA_SHA_256"},
    [KMS_KT_ECDSA_SECP256K1] = {"ECC_SECG_P256K1", "SIGN_VERIFY",
                                "ECDSA_SHA_256"},
    [KMS_KT_ED25519] = {"ECC_NIST_EDWARDS25519", "SIGN_VERIFY",
                        "ED25519_SHA_512"},
    [KMS_KT_ML_DSA_44] = {"ML_DSA_44", "SIGN_VERIFY", "ML_DSA_SHAKE_256"},
    [KMS_KT_ML_DSA_65] = {"ML_DSA_65", "SIGN_VERIFY", "ML_DSA_SHAKE_256"},
    [KMS_KT_ML_DSA_87] = {"ML_DSA_87", "SIGN_VERIFY", "ML_DSA_SHAKE_256"},
};

static const char *
aws_state(const json_t *rec)
{
    const char *s = json_string_value(json_object_get(rec, "state"));

    if (s && strcmp(s, "enabled") == 0)
        return "Enabled";
    if (s && strcmp(s, "disabled") == 0)
        return "Disabled";
    if (s && strcmp(s, "pending_import") == 0)
        return "PendingImport";
    return "PendingDeletion";
}

static json_t *
metadata(const aws_call *a, const json_t *rec)
{
    const char *name = json_string_value(json_object_get(rec, "name"));
    int t = kms_key_rec_type(rec);
    int64_t del = json_integer_value(json_object_get(rec, "deletion"));
    json_t *m;

    if (t < 0 || !name)
        return NULL;
    m = json_pack(
        "{s:s,s:s,s:o,s:I,s:b,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[s],s:b}",
        "AWSAccountId", a->c->who.org, "KeyId", name, "Arn",
        arn(a, "key", name), "CreationDate",
        json_integer_value(json_object_get(rec, "created")), "Enabled",
        strcmp(aws_state(rec), "Enabled") == 0, "Description",
        json_string_value(json_object_get(rec, "description")) ?: "",
        "KeyUsage", specs[t].usage, "KeyState", aws_state(rec), "Origin",
        json_object_get(rec, "origin") ? "EXTERNAL" : "AWS_KMS", "KeyManager",
        "CUSTOMER", "KeySpec", specs[t].spec, "CustomerMasterKeySpec",
        specs[t].spec,
        kms_key_type_symmetric((kms_key_type)t) ? "EncryptionAlgorithms"
                                                : "SigningAlgorithms",
        specs[t].alg, "MultiRegion", 0);
    if (m && del)
        json_object_set_new(m, "DeletionDate", json_integer(del));
    return m;
}

/* ---- binary fields ----------------------------------------------------------
 */

static kms_err
blob_in(aws_call *a, const char *field, size_t max, uint8_t **out, size_t *len)
{
    const char *s;
    size_t sl;

    *out = NULL;
    *len = 0;
    if (kms_json_get_str(a->in, field, true, &s, &sl) != KMS_OK)
        return fail(a, KMS_EINVAL, "ValidationException",
                    "a required blob field is missing");
    if (sl > (max / 3 + 1) * 4 + 4 ||
        kc_b64_decode(s, sl, KC_B64_STD, out, len) != 0 || *len > max ||
        *len == 0) {
        kc_free_wipe(*out, *len);
        *out = NULL;
        *len = 0;
        return fail(a, KMS_EINVAL, "ValidationException",
                    "a blob field is not base64 or is not 1 to the "
                    "allowed number of bytes");
    }
    return KMS_OK;
}

static json_t *
blob_out(const uint8_t *p, size_t n)
{
    char *s = kc_b64_encode(p, n, KC_B64_STD);
    json_t *j = s ? json_string(s) : NULL;

    if (s)
        kc_free_wipe(s, strlen(s));
    return j;
}

static kms_err
context_in(aws_call *a, const char *field, const json_t **ctx)
{
    const json_t *o = json_object_get(a->in, field);
    const char *k;
    json_t *v;

    *ctx = NULL;
    if (!o)
        return KMS_OK;
    if (!json_is_object(o))
        return fail(a, KMS_EINVAL, "ValidationException",
                    "EncryptionContext must be a map of strings");
    json_object_foreach((json_t *)o, k, v) if (!json_is_string(v)) return fail(
        a, KMS_EINVAL, "ValidationException",
        "EncryptionContext must be a map of strings");
    *ctx = o;
    return KMS_OK;
}

static kms_err
sym_alg_ok(aws_call *a, const char *field)
{
    const char *alg;

    if (kms_json_get_str(a->in, field, false, &alg, NULL) != KMS_OK ||
        (alg && strcmp(alg, "SYMMETRIC_DEFAULT") != 0))
        return fail(a, KMS_EINVAL, "ValidationException",
                    "EncryptionAlgorithm: SYMMETRIC_DEFAULT");
    return KMS_OK;
}

/* ---- key management ---------------------------------------------------------
 */

static kms_err
parse_tags(aws_call *a, const json_t *arr, json_t **out)
{
    json_t *o = json_object(), *t;
    size_t i;

    *out = NULL;
    if (!o)
        return KMS_ENOMEM;
    if (arr && !json_is_array(arr))
        goto bad;
    json_array_foreach(arr, i, t)
    {
        const char *k = json_string_value(json_object_get(t, "TagKey"));
        json_t *v = json_object_get(t, "TagValue");
        if (!k || !json_is_string(v))
            goto bad;
        json_object_set(o, k, v);
    }
    *out = o;
    return KMS_OK;
bad:
    json_decref(o);
    return fail(a, KMS_EINVAL, "ValidationException",
                "Tags: a list of {TagKey, TagValue}");
}

static int
spec_type(const char *spec)
{
    static const struct {
        const char *spec;
        kms_key_type t;
    } map[] = {
        {"SYMMETRIC_DEFAULT", KMS_KT_AES256_GCM},
        {"ECC_NIST_P256", KMS_KT_ECDSA_P256},
        {"ECC_SECG_P256K1", KMS_KT_ECDSA_SECP256K1},
        {"ECC_NIST_EDWARDS25519", KMS_KT_ED25519},
        {"ML_DSA_44", KMS_KT_ML_DSA_44},
        {"ML_DSA_65", KMS_KT_ML_DSA_65},
        {"ML_DSA_87", KMS_KT_ML_DSA_87},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].spec, spec) == 0)
            return (int)map[i].t;
    return -1;
}

static kms_err
op_create_key(aws_call *a)
{
    const char *spec = NULL, *usage = NULL, *origin = NULL, *desc = NULL;
    uint8_t u[16];
    char id[37];
    kms_key_create_opts o = {0};
    json_t *rec = NULL, *tags = NULL;
    int t;
    kms_err rc;

    if (kms_json_get_str(a->in, "KeySpec", false, &spec, NULL) != KMS_OK ||
        (!spec && kms_json_get_str(a->in, "CustomerMasterKeySpec", false, &spec,
                                   NULL) != KMS_OK) ||
        kms_json_get_str(a->in, "KeyUsage", false, &usage, NULL) != KMS_OK ||
        kms_json_get_str(a->in, "Origin", false, &origin, NULL) != KMS_OK ||
        kms_json_get_str(a->in, "Description", false, &desc, NULL) != KMS_OK)
        return fail(a, KMS_EINVAL, "ValidationException", "invalid field");
    if (origin && strcmp(origin, "AWS_KMS") != 0 &&
        strcmp(origin, "EXTERNAL") != 0)
        return fail(a, KMS_EUNSUPPORTED, "UnsupportedOperationException",
                    "Origin: AWS_KMS or EXTERNAL");
    o.pending_import = origin && strcmp(origin, "EXTERNAL") == 0;
    t = spec_type(spec ? spec : "SYMMETRIC_DEFAULT");
    if (t < 0)
        return fail(a, KMS_EUNSUPPORTED, "UnsupportedOperationException",
                    "unsupported KeySpec");
    if (usage && strcmp(usage, specs[t].usage) != 0)
        return fail(a, KMS_EINVAL, "ValidationException",
                    "KeyUsage does not fit the KeySpec");
    if ((rc = parse_tags(a, json_object_get(a->in, "Tags"), &tags)) != KMS_OK)
        return rc;
    /* a version-4 UUID, as AWS key ids */
    kc_random(u, sizeof u);
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    snprintf(id, sizeof id,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x"
             "%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
             u[11], u[12], u[13], u[14], u[15]);
    o.name = id;
    o.type = kms_key_type_name((kms_key_type)t);
    o.description = desc;
    o.tags = tags;
    rc = kms_key_create(a->c, a->c->who.org, &o, &rec);
    json_decref(tags);
    if (rc != KMS_OK)
        return rc;
    a->c->out = json_pack("{s:o}", "KeyMetadata", metadata(a, rec));
    json_decref(rec);
    return a->c->out ? KMS_OK : KMS_ENOMEM;
}

static kms_err
op_describe_key(aws_call *a)
{
    char name[KMS_NAME_MAX + 1];
    json_t *rec = NULL;
    kms_err rc;

    if ((rc = resolve_key(a, "KeyId", true, name)) != KMS_OK ||
        (rc = kms_key_get(a->c, a->c->who.org, name, KMS_CAP_READ, &rec)) !=
            KMS_OK)
        return rc;
    a->c->out = json_pack("{s:o}", "KeyMetadata", metadata(a, rec));
    json_decref(rec);
    return a->c->out ? KMS_OK : KMS_ENOMEM;
}

static kms_err
op_list_keys(aws_call *a)
{
    json_t *l = NULL, *keys = json_array(), *e;
    size_t i;
    kms_err rc;

    if (!keys)
        return KMS_ENOMEM;
    if ((rc = kms_key_list(a->c, a->c->who.org, &l)) != KMS_OK) {
        json_decref(keys);
        return rc;
    }
    json_array_foreach(l, i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        json_array_append_new(keys, json_pack("{s:s,s:o}", "KeyId", n, "KeyArn",
                                              arn(a, "key", n)));
    }
    json_decref(l);
    a->c->out = json_pack("{s:o,s:b}", "Keys", keys, "Truncated", 0);
    return a->c->out ? KMS_OK : KMS_ENOMEM;
}

static kms_err
simple_update(aws_call *a, kms_key_op op, const kms_key_op_args *args,
              json_t **rec)
{
    char name[KMS_NAME_MAX + 1];
    kms_err rc;

    if ((rc = resolve_key(a, "KeyId", true, name)) != KMS_OK)
        return rc;
    rc = kms_key_update(a->c, a->c->who.org, name, op, args, rec);
    if (!a->c->out && rc == KMS_OK)
        a->c->out = json_object();
    return rc;
}

static kms_err
op_enable_key(aws_call *a)
{
    return simple_update(a, KMS_KEY_ENABLE, NULL, NULL);
}

static kms_err
op_disable_key(aws_call *a)
{
    return simple_update(a, KMS_KEY_DISABLE, NULL, NULL);
}

static kms_err
op_schedule_deletion(aws_call *a)
{
    const json_t *d = json_object_get(a->in, "PendingWindowInDays");
    kms_key_op_args args = {0};
    json_t *rec = NULL;
    kms_err rc;

    args.pending_days = d ? (uint32_t)json_integer_value(d) : 30;
    if (d && (!json_is_integer(d) || json_integer_value(d) < 7 ||
              json_integer_value(d) > 30))
        return fail(a, KMS_EINVAL, "ValidationException",
                    "PendingWindowInDays: 7 to 30");
    a->c->out = json_object();
    if ((rc = simple_update(a, KMS_KEY_SCHEDULE_DELETE, &args, &rec)) != KMS_OK)
        return rc;
    json_object_set_new(
        a->c->out, "KeyId",
        arn(a, "key", json_string_value(json_object_get(rec, "name"))));
    json_object_set(a->c->out, "DeletionDate",
                    json_object_get(rec, "deletion"));
    json_object_set_new(a->c->out, "KeyState", json_string("PendingDeletion"));
    json_object_set_new(a->c->out, "PendingWindowInDays",
                        json_integer(args.pending_days));
    json_decref(rec);
    return KMS_OK;
}

static kms_err
op_cancel_deletion(aws_call *a)
{
    json_t *rec = NULL;
    kms_err rc;

    a->c->out = json_object();
    if ((rc = simple_update(a, KMS_KEY_CANCEL_DELETE, NULL, &rec)) != KMS_OK)
        return rc;
    json_object_set_new(
        a->c->out, "KeyId",
        arn(a, "key", json_string_value(json_object_get(rec, "name"))));
    json_decref(rec);
    return KMS_OK;
}

static kms_err
op_enable_rotation(aws_call *a)
{
    const json_t *d = json_object_get(a->in, "RotationPeriodInDays");
    json_int_t days = d ? json_integer_value(d) : 365;
    kms_key_op_args args = {0};
    json_t *secs;
    kms_err rc;

    if ((d && !json_is_integer(d)) || days < 90 || days > 2560)
        return fail(a, KMS_EINVAL, "ValidationException",
                    "RotationPeriodInDays: 90 to 2560");
    secs = json_integer(days * 86400);
    args.rotation = secs;
    rc = simple_update(a, KMS_KEY_CONFIG, &args, NULL);
    json_decref(secs);
    if (rc == KMS_EUNSUPPORTED)
        a->c->err_type = "UnsupportedOperationException";
    return rc;
}

static kms_err
op_disable_rotation(aws_call *a)
{
    kms_key_op_args args = {0};
    json_t *zero = json_integer(0);
    kms_err rc;

    args.rotation = zero;
    rc = simple_update(a, KMS_KEY_CONFIG, &args, NULL);
    json_decref(zero);
    return rc;
}

static kms_err
op_rotation_status(aws_call *a)
{
    char name[KMS_NAME_MAX + 1];
    json_t *rec = NULL;
    int64_t per;
    kms_err rc;

    if ((rc = resolve_key(a, "KeyId", true, name)) != KMS_OK ||
        (rc = kms_key_get(a->c, a->c->who.org, name, KMS_CAP_READ, &rec)) !=
            KMS_OK)
        return rc;
    per = json_integer_value(json_object_get(rec, "rotation_period"));
    a->c->out = json_pack("{s:b,s:o}", "KeyRotationEnabled", per > 0, "KeyId",
                          arn(a, "key", name));
    if (per > 0) {
        json_object_set_new(a->c->out, "RotationPeriodInDays",
                            json_integer(per / 86400));
        json_object_set_new(
            a->c->out, "NextRotationDate",
            json_integer(json_integer_value(json_object_get(rec, "rotated")) +
                         per));
    }
    json_decref(rec);
    return a->c->out ? KMS_OK : KMS_ENOMEM;
}

static kms_err
op_rotate_now(aws_call *a)
{
    json_t *rec = NULL;
    kms_err rc;
    int t;

    a->c->out = json_object();
    if ((rc = simple_update(a, KMS_KEY_ROTATE, NULL, &rec)) != KMS_OK)
        return rc;
    t = kms_key_rec_type(rec);
    json_object_set_new(
        a->c->out, "KeyId",
        arn(a, "key", json_string_value(json_object_get(rec, "name"))));
    (void)t;
    json_decref(rec);
    return KMS_OK;
}

static kms_err
op_tag(aws_call *a)
{
    kms_key_op_args args = {0};
    json_t *tags = NULL;
    kms_err rc;

    if ((rc = parse_tags(a, json_object_get(a->in, "Tags"), &tags)) != KMS_OK)
        return rc;
    args.tags = tags;
    rc = simple_update(a, KMS_KEY_TAG, &args, NULL);
    json_decref(tags);
    return rc;
}

static kms_err
op_untag(aws_call *a)
{
    kms_key_op_args args = {0};

    args.tags = json_object_get(a->in, "TagKeys");
    if (!json_is_array(args.tags))
        return fail(a, KMS_EINVAL, "ValidationException",
                    "TagKeys: a list of strings");
    return simple_update(a, KMS_KEY_UNTAG, &args, NULL);
}

static kms_err
op_list_tags(aws_call *a)
{
    char name[KMS_NAME_MAX + 1];
    json_t *rec = NULL, *arr = json_array(), *v;
    const char *k;
    kms_err rc;

    if (!arr)
        return KMS_ENOMEM;
    if ((rc = resolve_key(a, "KeyId", true, name)) != KMS_OK ||
        (rc = kms_key_get(a->c, a->c->who.org, name, KMS_CAP_READ, &rec)) !=
            KMS_OK) {
        json_decref(arr);
        return rc;
    }
    json_object_foreach(json_object_get(rec, "tags"), k, v)
    {
        json_array_append_new(
            arr, json_pack("{s:s,s:O}", "TagKey", k, "TagValue", v));
    }
    json_decref(rec);
    a->c->out = json_pack("{s:o,s:b}", "Tags", arr, "Truncated", 0);
    return a->c->out ? KMS_OK : KMS_ENOMEM;
}

/* ---- aliases
 * ------------------------------------------------------------------
 */

static bool
alias_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n <= 6 || n > 256 || strncmp(s, "alias/", 6) != 0 ||
        strncmp(s, "alias/aws/", 10) == 0)
        return false;
    for (size_t i = 6; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '/' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* Create (must not exist), update (must exist) or delete an alias. The
 * caller needs admin on the target key (create, update) or on the key the
 * alias names now (update, delete). */
typedef enum { AL_CREATE, AL_UPDATE, AL_DELETE } alias_act;

static kms_err
alias_write(aws_call *a, alias_act act)
{
    char tab[KMS_TABLE_MAX], target[KMS_NAME_MAX + 1], old[KMS_NAME_MAX + 1],
        res[KMS_NAME_MAX + 8];
    const char *alias = NULL;
    kms_txn txn = {0};
    json_t *rec = NULL;
    kms_err rc;

    if (kms_json_get_str(a->in, "AliasName", true, &alias, NULL) != KMS_OK ||
        !alias_name_ok(alias))
        return fail(a, KMS_EINVAL, "ValidationException",
                    "AliasName: alias/ followed by [A-Za-z0-9/_-]");
    json_object_set_new(a->c->audit, "alias", json_string(alias));
    if (act != AL_DELETE) {
        if ((rc = resolve_key(a, "TargetKeyId", true, target)) != KMS_OK ||
            (rc = kms_key_get(a->c, a->c->who.org, target, KMS_CAP_ADMIN,
                              &rec)) != KMS_OK)
            return rc;
        json_decref(rec);
    }
    rc = kms_alias_resolve(a->c, a->c->who.org, alias, old);
    if (rc != KMS_OK && rc != KMS_ENOTFOUND)
        return rc;
    if (act == AL_CREATE && rc == KMS_OK)
        return fail(a, KMS_EEXIST, "AlreadyExistsException",
                    "the alias exists");
    if (act != AL_CREATE && rc != KMS_OK)
        return fail(a, KMS_ENOTFOUND, "NotFoundException", "no such alias");
    if (act != AL_CREATE) {
        snprintf(res, sizeof res, "keys/%s", old);
        if ((rc = kms_authorize(a->c, a->c->who.org, res, KMS_CAP_ADMIN)) !=
            KMS_OK)
            return rc;
    }
    a->c->detail = NULL;
    snprintf(tab, sizeof tab, "keyalias/%s", a->c->who.org);
    if (kms_txn_begin(a->c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    rc = act == AL_DELETE
             ? kms_st2err(kms_txn_del(&txn, tab, alias, strlen(alias)))
             : kms_st2err(kms_txn_put(&txn, tab, alias, strlen(alias), target,
                                      strlen(target)));
    if (rc == KMS_OK)
        rc = kms_st2err(kms_txn_commit(&txn));
    kms_txn_abort(&txn);
    if (rc == KMS_OK) {
        a->c->store_written = true;
        a->c->out = json_object();
    }
    return rc;
}

static kms_err
op_create_alias(aws_call *a)
{
    return alias_write(a, AL_CREATE);
}

static kms_err
op_update_alias(aws_call *a)
{
    return alias_write(a, AL_UPDATE);
}

static kms_err
op_delete_alias(aws_call *a)
{
    return alias_write(a, AL_DELETE);
}

typedef struct {
    aws_call *a;
    json_t *out;
    const char *only; /* key name filter or NULL */
} alias_list;

static int
alias_one(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    alias_list *l = ctx;
    char an[300], kn[KMS_NAME_MAX + 1];

    if (kl >= sizeof an || vl > KMS_NAME_MAX)
        return 0;
    memcpy(an, k, kl);
    an[kl] = '\0';
    memcpy(kn, v, vl);
    kn[vl] = '\0';
    if (l->only && strcmp(l->only, kn) != 0)
        return 0;
    json_array_append_new(
        l->out, json_pack("{s:s,s:o,s:s}", "AliasName", an, "AliasArn",
                          arn(l->a, "alias", an + 6), "TargetKeyId", kn));
    return 0;
}

static kms_err
op_list_aliases(aws_call *a)
{
    char tab[KMS_TABLE_MAX], name[KMS_NAME_MAX + 1];
    alias_list l = {a, json_array(), NULL};
    kms_txn txn = {0};
    kms_err rc;

    if ((rc = resolve_key(a, "KeyId", false, name)) != KMS_OK ||
        (rc = kms_authorize(a->c, a->c->who.org, "keys", KMS_CAP_LIST)) !=
            KMS_OK) {
        json_decref(l.out);
        return rc;
    }
    l.only = name[0] ? name : NULL;
    snprintf(tab, sizeof tab, "keyalias/%s", a->c->who.org);
    if (!l.out || kms_txn_begin(a->c->srv->store, true, &txn) != KMS_ST_OK) {
        json_decref(l.out);
        return KMS_ESTORE;
    }
    rc = kms_st2err(kms_txn_scan(&txn, tab, NULL, 0, true, alias_one, &l));
    kms_txn_abort(&txn);
    a->c->out = json_pack("{s:o,s:b}", "Aliases", l.out, "Truncated", 0);
    return rc;
}

/* ---- cryptography
 * -------------------------------------------------------------
 */

static kms_err
op_encrypt(aws_call *a)
{
    char name[KMS_NAME_MAX + 1];
    uint8_t *pt = NULL, *blob = NULL;
    size_t pl = 0, bl = 0;
    const json_t *ctx;
    kms_err rc;

    if ((rc = resolve_key(a, "KeyId", true, name)) != KMS_OK ||
        (rc = sym_alg_ok(a, "EncryptionAlgorithm")) != KMS_OK ||
        (rc = context_in(a, "EncryptionContext", &ctx)) != KMS_OK ||
        (rc = blob_in(a, "Plaintext", AWS_PT_MAX, &pt, &pl)) != KMS_OK)
        return rc;
    rc = kms_key_encrypt(a->c, a->c->who.org, name, pt, pl, ctx, &blob, &bl,
                         NULL);
    if (rc == KMS_EUNSUPPORTED)
        a->c->err_type = "InvalidKeyUsageException";
    if (rc == KMS_OK)
        a->c->out = json_pack("{s:o,s:o,s:s}", "CiphertextBlob",
                              blob_out(blob, bl), "KeyId", arn(a, "key", name),
                              "EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
    kc_free_wipe(pt, pl);
    free(blob);
    return rc;
}

static kms_err
decrypt_in(aws_call *a, const char *blob_f, const char *ctx_f,
           const char *key_f, uint8_t **pt, size_t *pl,
           char name[KMS_NAME_MAX + 1])
{
    char want[KMS_NAME_MAX + 1];
    uint8_t *ct = NULL;
    size_t cl = 0;
    const json_t *ctx;
    kms_err rc;

    if ((rc = resolve_key(a, key_f, false, want)) != KMS_OK ||
        (rc = context_in(a, ctx_f, &ctx)) != KMS_OK ||
        (rc = blob_in(a, blob_f, 6144, &ct, &cl)) != KMS_OK)
        return rc;
    rc = kms_key_decrypt(a->c, a->c->who.org, want[0] ? want : NULL, ct, cl,
                         ctx, pt, pl, name, NULL);
    if (rc == KMS_ECIPHER && want[0] &&
        kms_key_blob_name(ct, cl, name) == KMS_OK && strcmp(want, name) != 0)
        a->c->err_type = "IncorrectKeyException";
    else if (rc == KMS_ECIPHER)
        a->c->err_type = "InvalidCiphertextException";
    else if (rc == KMS_EUNSUPPORTED)
        a->c->err_type = "InvalidKeyUsageException";
    kc_free_wipe(ct, cl);
    return rc;
}

static kms_err
op_decrypt(aws_call *a)
{
    char name[KMS_NAME_MAX + 1];
    uint8_t *pt = NULL;
    size_t pl = 0;
    kms_err rc;

    if ((rc = sym_alg_ok(a, "EncryptionAlgorithm")) != KMS_OK ||
        (rc = decrypt_in(a, "CiphertextBlob", "EncryptionContext", "KeyId", &pt,
                         &pl, name)) != KMS_OK)
        return rc;
    a->c->out =
        json_pack("{s:o,s:o,s:s}", "KeyId", arn(a, "key", name), "Plaintext",
                  blob_out(pt, pl), "EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
    kc_free_wipe(pt, pl);
    return a->c->out ? KMS_OK : KMS_ENOMEM;
}

static kms_err
op_reencrypt(aws_call *a)
{
    char src[KMS_NAME_MAX + 1], dst[KMS_NAME_MAX + 1];
    uint8_t *pt = NULL, *blob = NULL;
    size_t pl = 0, bl = 0;
    const json_t *ctx;
    kms_err rc;

    if ((rc = resolve_key(a, "DestinationKeyId", true, dst)) != KMS_OK ||
        (rc = context_in(a, "DestinationEncryptionContext", &ctx)) != KMS_OK ||
        (rc = decrypt_in(a, "CiphertextBlob", "SourceEncryptionContext",
                         "SourceKeyId", &pt, &pl, src)) != KMS_OK)
        return rc;
    rc = kms_key_encrypt(a->c, a->c->who.org, dst, pt, pl, ctx, &blob, &bl,
                         NULL);
    if (rc == KMS_EUNSUPPORTED)
        a->c->err_type = "InvalidKeyUsageException";
    if (rc == KMS_OK)
        a->c->out = json_pack(
            "{s:o,s:o,s:o,s:s,s:s}", "CiphertextBlob", blob_out(blob, bl),
            "SourceKeyId", arn(a, "key", src), "KeyId", arn(a, "key", dst),
            "SourceEncryptionAlgorithm", "SYMMETRIC_DEFAULT",
            "DestinationEncryptionAlgorithm", "SYMMETRIC_DEFAULT");
    kc_free_wipe(pt, pl);
    free(blob);
    return rc;
}

static kms_err
datakey(aws_call *a, bool with_plaintext)
{
    char name[KMS_NAME_MAX + 1];
    const char *spec = NULL;
    const json_t *nb = json_object_get(a->in, "NumberOfBytes"), *ctx;
    json_int_t n = 0;
    uint8_t *dk = NULL, *blob = NULL;
    size_t bl = 0;
    kms_err rc;

    if ((rc = resolve_key(a, "KeyId", true, name)) != KMS_OK ||
        (rc = context_in(a, "EncryptionContext", &ctx)) != KMS_OK)
        return rc;
    if (kms_json_get_str(a->in, "KeySpec", false, &spec, NULL) != KMS_OK)
        return fail(a, KMS_EINVAL, "ValidationException", "invalid KeySpec");
    if (spec && nb)
        return fail(a, KMS_EINVAL, "ValidationException",
                    "give KeySpec or NumberOfBytes, not both");
    if (spec)
        n = strcmp(spec, "AES_256") == 0   ? 32
            : strcmp(spec, "AES_128") == 0 ? 16
                                           : 0;
    else if (nb && json_is_integer(nb))
        n = json_integer_value(nb);
    if (n < 1 || n > 1024)
        return fail(a, KMS_EINVAL, "ValidationException",
                    "KeySpec AES_256/AES_128 or NumberOfBytes 1 to 1024");
    if (!(dk = kc_secure_alloc((size_t)n)))
        return KMS_ENOMEM;
    kc_random(dk, (size_t)n);
    rc = kms_key_encrypt(a->c, a->c->who.org, name, dk, (size_t)n, ctx, &blob,
                         &bl, NULL);
    if (rc == KMS_EUNSUPPORTED)
        a->c->err_type = "InvalidKeyUsageException";
    if (rc == KMS_OK) {
        a->c->out = json_pack("{s:o,s:o}", "CiphertextBlob", blob_out(blob, bl),
                              "KeyId", arn(a, "key", name));
        if (a->c->out && with_plaintext)
            json_object_set_new(a->c->out, "Plaintext",
                                blob_out(dk, (size_t)n));
    }
    kc_secure_free(dk);
    free(blob);
    return rc;
}

static kms_err
op_datakey(aws_call *a)
{
    return datakey(a, true);
}

static kms_err
op_datakey_np(aws_call *a)
{
    return datakey(a, false);
}

static kms_err
op_random(aws_call *a)
{
    const json_t *nb = json_object_get(a->in, "NumberOfBytes");
    json_int_t n = json_integer_value(nb);
    uint8_t buf[1024];
    kms_err rc;

    if (!json_is_integer(nb) || n < 1 || n > 1024)
        return fail(a, KMS_EINVAL, "ValidationException",
                    "NumberOfBytes: 1 to 1024");
    if ((rc = kms_authorize(a->c, a->c->who.org, "random", KMS_CAP_READ)) !=
        KMS_OK)
        return rc;
    kc_random(buf, (size_t)n);
    a->c->out = json_pack("{s:o}", "Plaintext", blob_out(buf, (size_t)n));
    kc_wipe(buf, sizeof buf);
    return a->c->out ? KMS_OK : KMS_ENOMEM;
}

/* SigningAlgorithm and MessageType against the key's type. */
static kms_err
sign_args(aws_call *a, const char *name, kms_sign_mode *mode,
          const char **alg_out)
{
    const char *alg = NULL, *mt = NULL;
    json_t *rec = NULL;
    int t;
    kms_err rc;

    if (kms_json_get_str(a->in, "SigningAlgorithm", true, &alg, NULL) !=
            KMS_OK ||
        kms_json_get_str(a->in, "MessageType", false, &mt, NULL) != KMS_OK)
        return fail(a, KMS_EINVAL, "ValidationException",
                    "SigningAlgorithm is required");
    if ((rc = kms_key_get(a->c, a->c->who.org, name, 0, &rec)) != KMS_OK)
        return rc;
    t = kms_key_rec_type(rec);
    json_decref(rec);
    if (t < 0 || kms_key_type_symmetric((kms_key_type)t) ||
        strcmp(alg, specs[t].alg) != 0)
        return fail(a, KMS_EINVAL, "InvalidKeyUsageException",
                    "the SigningAlgorithm does not fit the key");
    *alg_out = specs[t].alg;
    *mode = KMS_SIGN_RAW;
    if (!mt || strcmp(mt, "RAW") == 0)
        return KMS_OK;
    if ((strcmp(mt, "DIGEST") == 0 &&
         (t == KMS_KT_ECDSA_P256 || t == KMS_KT_ECDSA_SECP256K1)) ||
        (strcmp(mt, "EXTERNAL_MU") == 0 && t >= KMS_KT_ML_DSA_44)) {
        *mode = KMS_SIGN_DIGEST;
        return KMS_OK;
    }
    return fail(a, KMS_EINVAL, "ValidationException",
                "MessageType: RAW, DIGEST (ECDSA) or EXTERNAL_MU (ML-DSA)");
}

static kms_err
op_sign(aws_call *a)
{
    char name[KMS_NAME_MAX + 1];
    uint8_t *m = NULL, *sig = NULL;
    size_t ml = 0, sl = 0;
    const char *alg = NULL;
    kms_sign_mode mode;
    kms_err rc;

    if ((rc = resolve_key(a, "KeyId", true, name)) != KMS_OK ||
        (rc = sign_args(a, name, &mode, &alg)) != KMS_OK ||
        (rc = blob_in(a, "Message", AWS_MSG_MAX, &m, &ml)) != KMS_OK)
        return rc;
    rc = kms_key_sign(a->c, a->c->who.org, name, mode, m, ml, &sig, &sl, NULL);
    if (rc == KMS_EINVAL)
        a->c->err_type = "ValidationException";
    if (rc == KMS_OK)
        a->c->out =
            json_pack("{s:o,s:o,s:s}", "KeyId", arn(a, "key", name),
                      "Signature", blob_out(sig, sl), "SigningAlgorithm", alg);
    kc_free_wipe(m, ml);
    free(sig);
    return rc;
}

static kms_err
op_verify(aws_call *a)
{
    char name[KMS_NAME_MAX + 1];
    uint8_t *m = NULL, *sig = NULL;
    size_t ml = 0, sl = 0;
    const char *alg = NULL;
    kms_sign_mode mode;
    bool valid = false;
    kms_err rc;

    if ((rc = resolve_key(a, "KeyId", true, name)) != KMS_OK ||
        (rc = sign_args(a, name, &mode, &alg)) != KMS_OK ||
        (rc = blob_in(a, "Message", AWS_MSG_MAX, &m, &ml)) != KMS_OK)
        return rc;
    if ((rc = blob_in(a, "Signature", 8192, &sig, &sl)) == KMS_OK)
        rc = kms_key_verify(a->c, a->c->who.org, name, mode, m, ml, sig, sl, 0,
                            &valid);
    if (rc == KMS_EINVAL)
        a->c->err_type = "ValidationException";
    if (rc == KMS_OK && !valid)
        rc = fail(a, KMS_ECIPHER, "KMSInvalidSignatureException",
                  "the signature is not valid");
    if (rc == KMS_OK)
        a->c->out = json_pack("{s:o,s:b,s:s}", "KeyId", arn(a, "key", name),
                              "SignatureValid", 1, "SigningAlgorithm", alg);
    kc_free_wipe(m, ml);
    free(sig);
    return rc;
}

static kms_err
op_public_key(aws_call *a)
{
    char name[KMS_NAME_MAX + 1];
    uint8_t *der = NULL;
    size_t dl = 0;
    json_t *rec = NULL;
    int t;
    kms_err rc;

    if ((rc = resolve_key(a, "KeyId", true, name)) != KMS_OK)
        return rc;
    if ((rc = kms_key_public_der(a->c, a->c->who.org, name, &der, &dl)) !=
        KMS_OK) {
        if (rc == KMS_EUNSUPPORTED)
            a->c->err_type = "UnsupportedOperationException";
        return rc;
    }
    if ((rc = kms_key_get(a->c, a->c->who.org, name, 0, &rec)) == KMS_OK) {
        t = kms_key_rec_type(rec);
        a->c->out = t < 0 ? NULL
                          : json_pack("{s:o,s:o,s:s,s:s,s:s,s:[s]}", "KeyId",
                                      arn(a, "key", name), "PublicKey",
                                      blob_out(der, dl), "KeySpec",
                                      specs[t].spec, "CustomerMasterKeySpec",
                                      specs[t].spec, "KeyUsage", specs[t].usage,
                                      "SigningAlgorithms", specs[t].alg);
        rc = a->c->out ? KMS_OK : KMS_ESTORE;
    }
    json_decref(rec);
    free(der);
    return rc;
}

/* GetParametersForImport: RSAES_OAEP_SHA_256 with RSA_3072 only. */
static kms_err
op_import_params(aws_call *a)
{
    char name[KMS_NAME_MAX + 1], *pem = NULL, *tok = NULL, *b64 = NULL;
    const char *alg = NULL, *spec = NULL;
    json_t *rec = NULL;
    int64_t exp = 0;
    size_t n = 0;
    kms_err rc;

    if ((rc = resolve_key(a, "KeyId", true, name)) != KMS_OK)
        return rc;
    if (kms_json_get_str(a->in, "WrappingAlgorithm", true, &alg, NULL) !=
            KMS_OK ||
        kms_json_get_str(a->in, "WrappingKeySpec", true, &spec, NULL) != KMS_OK)
        return fail(a, KMS_EINVAL, "ValidationException",
                    "WrappingAlgorithm and WrappingKeySpec are required");
    if (strcmp(alg, "RSAES_OAEP_SHA_256") != 0 || strcmp(spec, "RSA_3072") != 0)
        return fail(a, KMS_EUNSUPPORTED, "UnsupportedOperationException",
                    "kmsd wraps with RSAES_OAEP_SHA_256 and RSA_3072 only");
    if ((rc = kms_key_get(a->c, a->c->who.org, name, 0, &rec)) != KMS_OK)
        return rc;
    if (strcmp(aws_state(rec), "PendingImport") != 0) {
        json_decref(rec);
        return fail(a, KMS_EUNSUPPORTED, "UnsupportedOperationException",
                    "the key is not waiting for imported material");
    }
    json_decref(rec);
    if ((rc = kms_key_import_params(a->c, a->c->who.org, name, &pem, &tok,
                                    &exp)) != KMS_OK)
        return rc;
    /* the PEM body, joined, is the base64 of the DER SPKI */
    rc = KMS_ENOMEM;
    if ((b64 = malloc(strlen(pem) + 1))) {
        const char *p = strchr(pem, '\n');
        while (p && *++p && *p != '-') {
            size_t l = strcspn(p, "\n");
            memcpy(b64 + n, p, l);
            n += l;
            p += l;
        }
        b64[n] = '\0';
        a->c->out = json_pack("{s:o,s:s,s:s,s:I}", "KeyId", arn(a, "key", name),
                              "ImportToken", tok, "PublicKey", b64,
                              "ParametersValidTo", (json_int_t)exp);
        rc = a->c->out ? KMS_OK : KMS_ENOMEM;
    }
    free(b64);
    free(pem);
    kc_free_wipe(tok, strlen(tok));
    return rc;
}

static kms_err
op_import_material(aws_call *a)
{
    char name[KMS_NAME_MAX + 1];
    const char *tok = NULL, *model = NULL;
    uint8_t *w = NULL;
    size_t wl = 0;
    kms_key_create_opts o = {0};
    json_t *rec = NULL, *made = NULL;
    kms_err rc;

    if ((rc = resolve_key(a, "KeyId", true, name)) != KMS_OK)
        return rc;
    if (kms_json_get_str(a->in, "ImportToken", true, &tok, NULL) != KMS_OK ||
        kms_json_get_str(a->in, "ExpirationModel", false, &model, NULL) !=
            KMS_OK)
        return fail(a, KMS_EINVAL, "ValidationException",
                    "ImportToken is required");
    if (model && strcmp(model, "KEY_MATERIAL_DOES_NOT_EXPIRE") != 0)
        return fail(a, KMS_EUNSUPPORTED, "UnsupportedOperationException",
                    "ExpirationModel: KEY_MATERIAL_DOES_NOT_EXPIRE");
    if ((rc = kms_key_get(a->c, a->c->who.org, name, 0, &rec)) != KMS_OK)
        return rc;
    o.name = name;
    o.type = json_string_value(json_object_get(rec, "type"));
    if ((rc = blob_in(a, "EncryptedKeyMaterial", 1024, &w, &wl)) == KMS_OK)
        rc = kms_key_import(a->c, a->c->who.org, &o, tok, w, wl, &made);
    if (rc == KMS_EDENIED)
        a->c->err_type = "InvalidImportTokenException";
    else if (rc == KMS_EINVAL && !a->c->err_type)
        a->c->err_type = "IncorrectKeyMaterialException";
    else if (rc == KMS_EEXIST)
        rc = fail(a, KMS_ESTATE, "KMSInvalidStateException",
                  "the key already has key material");
    if (rc == KMS_OK)
        a->c->out = json_object();
    kc_free_wipe(w, wl);
    json_decref(rec);
    json_decref(made);
    return rc;
}

static const struct {
    const char *name;
    aws_op_fn fn;
} ops[] = {
    {"GetParametersForImport", op_import_params},
    {"ImportKeyMaterial", op_import_material},
    {"CreateKey", op_create_key},
    {"DescribeKey", op_describe_key},
    {"ListKeys", op_list_keys},
    {"EnableKey", op_enable_key},
    {"DisableKey", op_disable_key},
    {"ScheduleKeyDeletion", op_schedule_deletion},
    {"CancelKeyDeletion", op_cancel_deletion},
    {"CreateAlias", op_create_alias},
    {"ListAliases", op_list_aliases},
    {"DeleteAlias", op_delete_alias},
    {"UpdateAlias", op_update_alias},
    {"Encrypt", op_encrypt},
    {"Decrypt", op_decrypt},
    {"ReEncrypt", op_reencrypt},
    {"GenerateDataKey", op_datakey},
    {"GenerateDataKeyWithoutPlaintext", op_datakey_np},
    {"GenerateRandom", op_random},
    {"Sign", op_sign},
    {"Verify", op_verify},
    {"GetPublicKey", op_public_key},
    {"EnableKeyRotation", op_enable_rotation},
    {"DisableKeyRotation", op_disable_rotation},
    {"GetKeyRotationStatus", op_rotation_status},
    {"RotateKeyOnDemand", op_rotate_now},
    {"TagResource", op_tag},
    {"UntagResource", op_untag},
    {"ListResourceTags", op_list_tags},
};

/* ---- authentication
 * -----------------------------------------------------------
 */

#ifdef KMSD_HAVE_HSM
typedef struct {
    kms_srv *srv;
    json_t *rec; /* the access key's record once looked up */
} akid_lookup;

static int
lookup_secret(void *ctx, const char *akid, char *secret, size_t cap,
              size_t *len)
{
    akid_lookup *l = ctx;
    kms_txn txn = {0};
    const char *s;
    int ret = -1;

    if (strlen(akid) != AWS_AKID_LEN ||
        kms_txn_begin(l->srv->store, true, &txn) != KMS_ST_OK)
        return -1;
    json_decref(l->rec);
    l->rec = NULL;
    if (kms_json_get(&txn, "awskeys", akid, &l->rec) == KMS_OK &&
        (s = json_string_value(json_object_get(l->rec, "secret"))) &&
        strlen(s) < cap) {
        *len = strlen(s);
        memcpy(secret, s, *len + 1);
        ret = 0;
    }
    kms_txn_abort(&txn);
    return ret;
}

#define AWS_MAX_SIGNED 32

/* Collect the headers the Authorization header says were signed. */
static size_t
signed_headers(const kms_req *req, hsm_sigv4_header *h, char names[][64])
{
    const char *auth = req->header(req->header_ctx, "Authorization");
    const char *p = auth ? strstr(auth, "SignedHeaders=") : NULL;
    size_t n = 0;

    if (!p)
        return 0;
    /* the verifier reads Authorization from the list too */
    h[n].name = "authorization";
    h[n].value = auth;
    n++;
    p += 14;
    while (*p && *p != ',' && *p != ' ' && n <= AWS_MAX_SIGNED) {
        size_t l = strcspn(p, ";, ");
        const char *v;
        if (l == 0 || l >= 64)
            return 0;
        memcpy(names[n - 1], p, l);
        names[n - 1][l] = '\0';
        v = req->header(req->header_ctx, names[n - 1]);
        if (v) {
            h[n].name = names[n - 1];
            h[n].value = v;
            n++;
        }
        p += l;
        if (*p == ';')
            p++;
    }
    return n;
}

static kms_err
authenticate(aws_call *a, const kms_req *req)
{
    kms_ctx *c = a->c;
    hsm_sigv4_header h[AWS_MAX_SIGNED + 1];
    char names[AWS_MAX_SIGNED][64];
    akid_lookup l = {c->srv, NULL};
    hsm_sigv4_request r = {0};
    hsm_sigv4_verify_opts o = {0};
    hsm_sigv4_identity who;
    const char *ident, *org;
    json_t *irec = NULL;
    kms_txn txn = {0};
    hsm_sigv4_err e;
    kms_err rc;

    if (!req->header || !req->header(req->header_ctx, "Authorization"))
        return fail(a, KMS_EAUTH, "MissingAuthenticationTokenException",
                    "the request is not signed");
    r.method = req->method;
    r.path = req->path;
    r.headers = h;
    r.header_count = signed_headers(req, h, names);
    r.body = req->body;
    r.body_len = req->body_len;
    o.lookup = lookup_secret;
    o.lookup_ctx = &l;
    o.service = "kms";
    o.now = (time_t)c->srv->now();
    o.max_skew = AWS_SKEW;
    e = hsm_sigv4_verify(&r, &o, &who);
    switch (e) {
    case HSM_SIGV4_OK:
        break;
    case HSM_SIGV4_EUNKNOWN_KEY:
        rc = fail(a, KMS_EAUTH, "UnrecognizedClientException",
                  "The security token included in the request is invalid.");
        goto out;
    case HSM_SIGV4_ESKEW:
        rc = fail(a, KMS_EAUTH, "InvalidSignatureException",
                  "Signature expired: the request time is outside the "
                  "allowed clock skew (5 minutes).");
        goto out;
    case HSM_SIGV4_ESIGNATURE:
        rc = fail(a, KMS_EAUTH, "InvalidSignatureException",
                  "The request signature we calculated does not match the "
                  "signature you provided.");
        goto out;
    case HSM_SIGV4_ESCOPE:
        rc = fail(a, KMS_EAUTH, "InvalidSignatureException",
                  "Credential should be scoped to the kms service.");
        goto out;
    case HSM_SIGV4_EMISSING:
    case HSM_SIGV4_EMALFORMED:
    default:
        rc = fail(a, KMS_EAUTH, "IncompleteSignatureException",
                  "The request signature is malformed or incomplete.");
        goto out;
    }
    kc_strlcpy(a->region, who.region, sizeof a->region);
    ident = json_string_value(json_object_get(l.rec, "identity"));
    org = json_string_value(json_object_get(l.rec, "org"));
    rc = fail(a, KMS_EAUTH, "UnrecognizedClientException",
              "The security token included in the request is invalid.");
    if (!ident || !org || kms_txn_begin(c->srv->store, true, &txn) != KMS_ST_OK)
        goto out;
    /* the identity must still exist: deleting it revokes its access keys */
    if (kms_json_get(&txn, "identities", ident, &irec) != KMS_OK)
        goto out;
    kc_strlcpy(c->who.org, org, sizeof c->who.org);
    snprintf(c->who.display, sizeof c->who.display, "identity:%s", ident);
    c->who.root = json_is_true(json_object_get(irec, "admin"));
    if (!c->who.root &&
        (rc = kms_load_policies(&txn, org, json_object_get(irec, "policies"),
                                &c->who.policies)) != KMS_OK)
        goto out;
    c->who.authenticated = true;
    c->err_type = NULL;
    c->detail = NULL;
    json_object_set_new(c->audit, "aws_access_key",
                        json_string(who.access_key_id));
    rc = KMS_OK;
out:
    kms_txn_abort(&txn);
    json_decref(irec);
    json_decref(l.rec);
    return rc;
}
#else
static kms_err
authenticate(aws_call *a, const kms_req *req)
{
    (void)req;
    return fail(a, KMS_EUNSUPPORTED, "UnsupportedOperationException",
                "this kmsd was built without libhsm (SigV4)");
}
#endif

/* ---- dispatch
 * -----------------------------------------------------------------
 */

static const char *
default_type(kms_err rc)
{
    switch (rc) {
    case KMS_ENOTFOUND:
        return "NotFoundException";
    case KMS_EDISABLED:
        return "DisabledException";
    case KMS_ESTATE:
        return "KMSInvalidStateException";
    case KMS_ECIPHER:
        return "InvalidCiphertextException";
    case KMS_EUNSUPPORTED:
        return "UnsupportedOperationException";
    case KMS_EDENIED:
        return "AccessDeniedException";
    case KMS_EAUTH:
        return "UnrecognizedClientException";
    case KMS_EEXIST:
        return "AlreadyExistsException";
    case KMS_EJSON:
        return "SerializationException";
    case KMS_EINVAL:
    case KMS_ETOOBIG:
        return "ValidationException";
    default:
        return "KMSInternalException";
    }
}

static kms_err
run(aws_call *a, const kms_req *req, const char **opname)
{
    const char *target, *ct;
    kms_err rc;

    kc_strlcpy(a->region, "us-east-1", sizeof a->region);
    if (!req->method || strcmp(req->method, "POST") != 0 || !req->path ||
        strcmp(req->path, "/") != 0)
        return fail(a, KMS_EINVAL, "UnknownOperationException",
                    "POST / with X-Amz-Target");
    target = req->header ? req->header(req->header_ctx, "X-Amz-Target") : NULL;
    ct = req->header ? req->header(req->header_ctx, "Content-Type") : NULL;
    if (!target || strncmp(target, "TrentService.", 13) != 0)
        return fail(a, KMS_EINVAL, "UnknownOperationException",
                    "X-Amz-Target: TrentService.<Operation>");
    *opname = target + 13;
    if (!ct || strncmp(ct, "application/x-amz-json-1.1", 26) != 0)
        return fail(a, KMS_EJSON, "SerializationException",
                    "Content-Type: application/x-amz-json-1.1");
    if (req->body_too_big || req->body_len > KMS_BODY_MAX)
        return fail(a, KMS_ETOOBIG, "ValidationException",
                    "request body too large");
    if ((rc = authenticate(a, req)) != KMS_OK)
        return rc;
    a->in = json_loadb((const char *)req->body, req->body_len,
                       JSON_REJECT_DUPLICATES, NULL);
    if (!a->in || !json_is_object(a->in))
        return fail(a, KMS_EJSON, "SerializationException",
                    "the body must be a JSON object");
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(ops[i].name, *opname) == 0)
            return ops[i].fn(a);
    return fail(a, KMS_EUNSUPPORTED, "UnsupportedOperationException",
                "kmsd does not implement this operation");
}

void
kms_aws_dispatch(kms_srv *srv, const kms_req *req, kms_resp *resp)
{
    kms_ctx c;
    aws_call a;
    const char *op = "?";
    char route[80];
    kms_err rc;

    memset(&c, 0, sizeof c);
    memset(&a, 0, sizeof a);
    memset(resp, 0, sizeof *resp);
    c.srv = srv;
    c.req = req;
    c.status = 200;
    c.audit = json_object();
    a.c = &c;
    if (!c.audit)
        rc = KMS_ENOMEM;
    else if (srv->audit && !kms_audit_healthy(srv->audit))
        rc = fail(&a, KMS_EAUDIT, "KMSInternalException",
                  "the audit log cannot be written");
    else
        rc = run(&a, req, &op);
    resp->content_type = "application/x-amz-json-1.1";
    if (rc == KMS_OK) {
        resp->status = 200;
        resp->body = c.out ? kms_json_dump(c.out, NULL) : strdup("{}");
    } else {
        const char *type = c.err_type ? c.err_type : default_type(rc);
        json_t *e = json_pack("{s:s,s:s}", "__type", type, "message",
                              c.detail ? c.detail : kms_strerror(rc));
        resp->status = kms_err_status(rc) >= 500 ? 500 : 400;
        resp->body = e ? kms_json_dump(e, NULL) : NULL;
        json_decref(e);
    }
    if (!resp->body) {
        resp->status = 500;
        resp->body = strdup("{\"__type\":\"KMSInternalException\"}");
    }
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    snprintf(
        route, sizeof route, "aws.%.60s",
        strspn(op, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") ==
                strlen(op)
            ? op
            : "?");
    if (rc != KMS_OK && c.err_type)
        json_object_set_new(c.audit, "aws_error", json_string(c.err_type));
    resp->audit = kms_audit_record(&c, route, rc, resp->status);
    resp->store_written = c.store_written;
    resp->route_index = kms_route_count();
    json_decref(a.in);
    json_decref(c.out);
    json_decref(c.audit);
    kms_principal_clear(&c.who);
}

bool
kms_aws_batchable(const kms_req *req)
{
    (void)req;
    return false;
}

void
kms_aws_dispatch_batch(kms_srv *srv, const kms_req *const *reqs,
                       kms_resp *const *resps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kms_aws_dispatch(srv, reqs[i], resps[i]);
}

/* ---- access keys (native API)
 * -------------------------------------------------
 */

/* POST /v1/kms/orgs/{org}/aws-keys {"client_id": ...}: an access key for
 * an identity of the org. Root, "admin" on sys/aws-keys, or the identity
 * itself may ask. The secret is shown once; the store keeps it (encrypted
 * at rest by ZapDB) because SigV4 verification needs it. */
kms_err
kms_h_awskey_create(kms_ctx *c)
{
    static const char az[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const char *cid, *self;
    char akid[AWS_AKID_LEN + 1], secret[AWS_SK_LEN + 1], h[80];
    uint8_t rnd[AWS_SK_LEN];
    json_t *irec = NULL, *rec = NULL;
    kms_txn txn = {0};
    kms_err rc;

    if (kms_json_get_str(c->body, "client_id", true, &cid, NULL) != KMS_OK ||
        !kms_valid_ident(cid)) {
        c->detail = "client_id is required";
        return KMS_EINVAL;
    }
    self = c->who.token
               ? json_string_value(json_object_get(c->who.token, "identity"))
               : NULL;
    if (!(self && strcmp(self, cid) == 0) &&
        (rc = kms_authorize(c, c->param_org, "sys/aws-keys", KMS_CAP_ADMIN)) !=
            KMS_OK)
        return rc;
    if (kms_txn_begin(c->srv->store, false, &txn) != KMS_ST_OK)
        return KMS_ESTORE;
    if ((rc = kms_json_get(&txn, "identities", cid, &irec)) != KMS_OK)
        goto out;
    rc = KMS_ENOTFOUND;
    if (strcmp(json_string_value(json_object_get(irec, "org")) ?: "",
               c->param_org) != 0)
        goto out;
    /* AKID: "AKIA" + 16 of base32; secret: 40 of base64-ish alphabet */
    kc_random(rnd, sizeof rnd);
    memcpy(akid, "AKIA", 4);
    for (size_t i = 4; i < AWS_AKID_LEN; i++)
        akid[i] = az[rnd[i] & 31];
    akid[AWS_AKID_LEN] = '\0';
    kc_random(rnd, sizeof rnd);
    for (size_t i = 0; i < AWS_SK_LEN; i++)
        secret[i] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                [rnd[i] & 63];
    secret[AWS_SK_LEN] = '\0';
    rec = json_pack("{s:s,s:s,s:s,s:I}", "org", c->param_org, "identity", cid,
                    "secret", secret, "created", (json_int_t)c->srv->now());
    rc = KMS_ENOMEM;
    if (!rec)
        goto out;
    if ((rc = kms_json_put(&txn, "awskeys", akid, rec)) != KMS_OK ||
        (rc = kms_st2err(kms_txn_commit(&txn))) != KMS_OK)
        goto out;
    c->store_written = true;
    c->status = 201;
    c->out = json_pack("{s:s,s:s,s:s}", "access_key_id", akid,
                       "secret_access_key", secret, "client_id", cid);
    kms_audit_hmac(c->srv, secret, AWS_SK_LEN, h);
    json_object_set_new(c->audit, "aws_access_key", json_string(akid));
    json_object_set_new(c->audit, "secret_hmac", json_string(h));
    json_object_set_new(c->audit, "client_id", json_string(cid));
out:
    kms_txn_abort(&txn);
    json_decref(irec);
    json_decref(rec);
    kc_wipe(secret, sizeof secret);
    kc_wipe(rnd, sizeof rnd);
    return rc;
}
