/* SPDX-License-Identifier: Apache-2.0 */
/* Response parsers of the cloud providers; see cloud_parse.h. */
#include "cloud_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "kc.h"

#define MAX_BODY  ((size_t)4 << 20)
#define MAX_TOKEN ((size_t)16384)

const char *
hsm_cp_strerror(int rc)
{
    switch (rc) {
    case CP_OK:
        return "ok";
    case CP_EJSON:
        return "malformed JSON";
    case CP_EMISSING:
        return "missing field";
    case CP_EENCODING:
        return "bad encoding";
    case CP_ENOMEM:
        return "out of memory";
    case CP_ETOOBIG:
        return "field too large";
    default:
        return "parse error";
    }
}

/* Parse a JSON object; NULL for anything else. The decoder never sees
 * the bytes past `len`. */
static json_t *
load_object(const uint8_t *body, size_t len)
{
    json_t *j;

    if (!body || len == 0 || len > MAX_BODY)
        return NULL;
    j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Copy a string for a diagnostic: truncated, control bytes as '?'. */
static void
copy_text(char *out, size_t cap, const char *s)
{
    size_t i = 0;

    if (!cap)
        return;
    for (; s && s[i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];

        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[i] = '\0';
}

static const char *
str_field(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

int
hsm_cp_aws_error(const uint8_t *body, size_t len, char *type, size_t type_cap,
                 char *msg, size_t msg_cap)
{
    json_t *j = load_object(body, len);
    const char *t, *m, *hash;

    if (!j)
        return CP_EJSON;
    if (!(t = str_field(j, "__type")) || !*t) {
        json_decref(j);
        return CP_EMISSING;
    }
    /* "com.amazonaws.kms#NotFoundException" -> "NotFoundException"; a
     * ":" suffix (seen in REST-JSON) is cut too. */
    if ((hash = strrchr(t, '#')))
        t = hash + 1;
    copy_text(type, type_cap, t);
    if (type_cap && strchr(type, ':'))
        *strchr(type, ':') = '\0';
    if (!(m = str_field(j, "message")))
        m = str_field(j, "Message");
    copy_text(msg, msg_cap, m ? m : "");
    json_decref(j);
    return CP_OK;
}

int
hsm_cp_error_object(const uint8_t *body, size_t len, char *code,
                    size_t code_cap, char *msg, size_t msg_cap)
{
    json_t *j = load_object(body, len), *e, *c;
    const char *m;
    char num[32];

    if (!j)
        return CP_EJSON;
    e = json_object_get(j, "error");
    if (!json_is_object(e)) {
        json_decref(j);
        return CP_EMISSING;
    }
    c = json_object_get(e, "status");
    if (!json_is_string(c))
        c = json_object_get(e, "code");
    if (json_is_string(c)) {
        copy_text(code, code_cap, json_string_value(c));
    } else if (json_is_integer(c)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(c));
        copy_text(code, code_cap, num);
    } else {
        copy_text(code, code_cap, "error");
    }
    m = str_field(e, "message");
    copy_text(msg, msg_cap, m ? m : "");
    json_decref(j);
    return CP_OK;
}

static char *
secure_strdup(const char *s, size_t max, int *rc)
{
    size_t n = strlen(s);
    char *p;

    if (n == 0 || n > max) {
        *rc = n ? CP_ETOOBIG : CP_EMISSING;
        return NULL;
    }
    if (!(p = kc_secure_alloc(n + 1))) {
        *rc = CP_ENOMEM;
        return NULL;
    }
    memcpy(p, s, n + 1);
    return p;
}

int
hsm_cp_parse_rfc3339(const char *s, time_t *t)
{
    struct tm tm;
    const char *p;
    int v[6], n = 0;

    if (!s)
        return CP_EENCODING;
    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &n) != 6 ||
        n != 19)
        return CP_EENCODING;
    p = s + n;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (strcmp(p, "Z") != 0 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 ||
        v[3] > 23 || v[4] > 59 || v[5] > 60 || v[0] < 1970)
        return CP_EENCODING;
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    *t = timegm(&tm);
    return *t == (time_t)-1 ? CP_EENCODING : CP_OK;
}

void
hsm_cp_aws_creds_clear(hsm_cp_aws_creds *c)
{
    if (!c)
        return;
    kc_secure_free(c->access_key_id);
    kc_secure_free(c->secret_access_key);
    kc_secure_free(c->session_token);
    memset(c, 0, sizeof *c);
}

int
hsm_cp_imds_credentials(const uint8_t *body, size_t len, hsm_cp_aws_creds *out)
{
    json_t *j = load_object(body, len);
    hsm_cp_aws_creds c = {0};
    const char *code, *ak, *sk, *tok, *exp;
    int rc = CP_EMISSING;

    if (!j)
        return CP_EJSON;
    code = str_field(j, "Code");
    ak = str_field(j, "AccessKeyId");
    sk = str_field(j, "SecretAccessKey");
    tok = str_field(j, "Token");
    exp = str_field(j, "Expiration");
    if ((code && strcmp(code, "Success") != 0) || !ak || !sk)
        goto out;
    if (!(c.access_key_id = secure_strdup(ak, 128, &rc)) ||
        !(c.secret_access_key = secure_strdup(sk, 256, &rc)) ||
        (tok && !(c.session_token = secure_strdup(tok, MAX_TOKEN, &rc))))
        goto out;
    if (exp && (rc = hsm_cp_parse_rfc3339(exp, &c.expiration)) != CP_OK)
        goto out;
    *out = c;
    memset(&c, 0, sizeof c);
    rc = CP_OK;
out:
    hsm_cp_aws_creds_clear(&c);
    json_decref(j);
    return rc;
}

/* A non-negative integer given as a JSON number or a decimal string. */
static int
number_field(json_t *o, const char *k, uint64_t *v)
{
    json_t *x = json_object_get(o, k);

    if (json_is_integer(x) && json_integer_value(x) >= 0) {
        *v = (uint64_t)json_integer_value(x);
        return CP_OK;
    }
    if (json_is_string(x))
        return kc_parse_u64(json_string_value(x), v) == 0 ? CP_OK
                                                          : CP_EENCODING;
    return x ? CP_EENCODING : CP_EMISSING;
}

int
hsm_cp_token(const uint8_t *body, size_t len, time_t now, char **token,
             size_t *token_len, time_t *expires)
{
    json_t *j = load_object(body, len);
    const char *t;
    uint64_t v;
    int rc = CP_EMISSING, r;
    char *tok = NULL;
    time_t exp = now + 300;

    if (!j)
        return CP_EJSON;
    if (!(t = str_field(j, "access_token")))
        goto out;
    if ((r = number_field(j, "expires_in", &v)) == CP_OK) {
        if (v > 366u * 86400u) {
            rc = CP_EENCODING;
            goto out;
        }
        exp = now + (time_t)v;
    } else if (r == CP_EENCODING) {
        rc = r;
        goto out;
    } else if ((r = number_field(j, "expires_on", &v)) == CP_OK) {
        if (v > (uint64_t)now + 366u * 86400u) {
            rc = CP_EENCODING;
            goto out;
        }
        exp = (time_t)v;
    } else if (r == CP_EENCODING) {
        rc = r;
        goto out;
    }
    if (!(tok = secure_strdup(t, MAX_TOKEN, &rc)))
        goto out;
    for (const char *p = tok; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            kc_secure_free(tok);
            rc = CP_EENCODING; /* it goes into a header line */
            goto out;
        }
    *token = tok;
    *token_len = strlen(tok);
    *expires = exp;
    rc = CP_OK;
out:
    json_decref(j);
    return rc;
}

int
hsm_cp_b64_field(const uint8_t *body, size_t len, const char *field, bool url,
                 bool secure, size_t max, uint8_t **out, size_t *out_len)
{
    json_t *j = load_object(body, len);
    const char *s;
    uint8_t *d = NULL;
    size_t dl = 0, sl;
    int rc = CP_EMISSING;

    if (!j)
        return CP_EJSON;
    if (!(s = str_field(j, field)))
        goto out;
    sl = strlen(s);
    rc = CP_ETOOBIG;
    if (sl / 4 * 3 > max + 3)
        goto out;
    rc = CP_EENCODING;
    if (kc_b64_decode(s, sl, url ? KC_B64_URL : KC_B64_STD, &d, &dl) != 0)
        goto out;
    rc = CP_ETOOBIG;
    if (dl > max)
        goto out;
    rc = CP_EENCODING;
    if (dl == 0)
        goto out;
    if (secure) {
        uint8_t *p = kc_secure_alloc(dl + 1);

        rc = CP_ENOMEM;
        if (!p)
            goto out;
        memcpy(p, d, dl);
        p[dl] = 0;
        *out = p;
    } else {
        *out = d;
        d = NULL;
    }
    *out_len = dl;
    rc = CP_OK;
out:
    if (d)
        kc_free_wipe(d, dl);
    json_decref(j);
    return rc;
}

int
hsm_cp_bool_field(const uint8_t *body, size_t len, const char *field, bool *out)
{
    json_t *j = load_object(body, len), *v;
    int rc = CP_EMISSING;

    if (!j)
        return CP_EJSON;
    v = json_object_get(j, field);
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        rc = CP_OK;
    }
    json_decref(j);
    return rc;
}

static int
pkey_to_spki(EVP_PKEY *pk, uint8_t **der, size_t *der_len)
{
    unsigned char *p = NULL;
    int n = i2d_PUBKEY(pk, &p);

    if (n <= 0)
        return CP_EENCODING;
    if (!(*der = malloc((size_t)n))) {
        OPENSSL_free(p);
        return CP_ENOMEM;
    }
    memcpy(*der, p, (size_t)n);
    *der_len = (size_t)n;
    OPENSSL_free(p);
    return CP_OK;
}

int
hsm_cp_pem_field_to_spki(const uint8_t *body, size_t len, const char *field,
                         uint8_t **der, size_t *der_len)
{
    json_t *j = load_object(body, len);
    const char *pem;
    BIO *bio = NULL;
    EVP_PKEY *pk = NULL;
    int rc = CP_EMISSING;

    if (!j)
        return CP_EJSON;
    if (!(pem = str_field(j, field)))
        goto out;
    rc = CP_EENCODING;
    if (strlen(pem) > 65536 ||
        !(bio = BIO_new_mem_buf(pem, (int)strlen(pem))) ||
        !(pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)))
        goto out;
    rc = pkey_to_spki(pk, der, der_len);
out:
    ERR_clear_error();
    EVP_PKEY_free(pk);
    BIO_free(bio);
    json_decref(j);
    return rc;
}

static int
b64url_coord(json_t *key, const char *k, uint8_t out[32])
{
    const char *s = str_field(key, k);
    uint8_t *d = NULL;
    size_t dl = 0;

    if (!s)
        return CP_EMISSING;
    if (strlen(s) > 64 || kc_b64_decode(s, strlen(s), KC_B64_URL, &d, &dl) ||
        dl != 32) {
        free(d);
        return CP_EENCODING;
    }
    memcpy(out, d, 32);
    free(d);
    return CP_OK;
}

int
hsm_cp_azure_jwk_to_spki(const uint8_t *body, size_t len, uint8_t **der,
                         size_t *der_len)
{
    json_t *j = load_object(body, len), *key;
    const char *kty, *crv;
    uint8_t pt[65];
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    int rc = CP_EMISSING;

    if (!j)
        return CP_EJSON;
    key = json_object_get(j, "key");
    if (!json_is_object(key) || !(kty = str_field(key, "kty")) ||
        !(crv = str_field(key, "crv")))
        goto out;
    rc = CP_EENCODING;
    if ((strcmp(kty, "EC") != 0 && strcmp(kty, "EC-HSM") != 0) ||
        strcmp(crv, "P-256") != 0)
        goto out;
    pt[0] = 0x04;
    if ((rc = b64url_coord(key, "x", pt + 1)) != CP_OK ||
        (rc = b64url_coord(key, "y", pt + 33)) != CP_OK)
        goto out;
    rc = CP_ENOMEM;
    if (!(bld = OSSL_PARAM_BLD_new()) ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                         "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt,
                                          sizeof pt) ||
        !(params = OSSL_PARAM_BLD_to_param(bld)) ||
        !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)))
        goto out;
    /* fromdata checks that the point is on the curve. */
    rc = CP_EENCODING;
    if (EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto out;
    rc = pkey_to_spki(pk, der, der_len);
out:
    ERR_clear_error();
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    json_decref(j);
    return rc;
}
