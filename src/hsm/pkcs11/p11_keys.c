/* SPDX-License-Identifier: Apache-2.0 */
/* p11 key operations: lookup by label or CKA_ID, sign, wrap/unwrap,
 * generation, listing and public key export. See p11.h. */
#include "p11.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "kc.h"
#include "p11_oaep.h"

/* DER OIDs for CKA_EC_PARAMS (RFC 5480 secp256r1, RFC 8410 id-Ed25519). */
static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                   0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};

static const unsigned char p11_true = CK_TRUE;
static const unsigned char p11_false = CK_FALSE;

#define ATTR(t, p, n)                                                          \
    {                                                                          \
        (t), (void *)(p), (n)                                                  \
    }
#define ATTR_BOOL(t, b)                                                        \
    ATTR((t), (b) ? &p11_true : &p11_false, sizeof(unsigned char))

/* ---- key references --------------------------------------------------- */

typedef struct {
    const char *label; /* NULL: not by label */
    size_t label_len;
    uint8_t id[P11_ID_MAX];
    size_t id_len; /* 0: not by id */
} keyref;

static ck_rv_t
keyref_parse(const char *ref, keyref *k, p11_diag *d)
{
    size_t n;

    memset(k, 0, sizeof *k);
    if (!ref || !*ref)
        return p11_fail(d, "key", P11R_BAD_INPUT, "no key id given");
    if (strncmp(ref, "id:", 3) == 0) {
        n = strlen(ref + 3);
        if (n == 0 ||
            kc_hex_decode(ref + 3, n, k->id, sizeof k->id, &k->id_len) != 0)
            return p11_fail(d, "key", P11R_BAD_INPUT,
                            "\"id:\" needs 1-%u bytes of hex", P11_ID_MAX);
        return CKR_OK;
    }
    if (strncmp(ref, "label:", 6) == 0)
        ref += 6;
    else {
        /* A bare string is a label, or failing that a hex CKA_ID. */
        n = strlen(ref);
        if (kc_hex_decode(ref, n, k->id, sizeof k->id, &k->id_len) != 0)
            k->id_len = 0;
    }
    k->label = ref;
    k->label_len = strlen(ref);
    if (k->label_len == 0 || k->label_len > P11_LABEL_MAX)
        return p11_fail(d, "key", P11R_BAD_INPUT, "label of 1-%u bytes",
                        P11_LABEL_MAX);
    return CKR_OK;
}

/* Up to `cap` objects of class `cls` whose attribute `type` equals
 * val/len; *n is how many were found (at most cap). */
static ck_rv_t
find_objects(p11_token *t, ck_session_handle_t s, ck_object_class_t cls,
             ck_attribute_type_t type, const void *val, size_t len,
             ck_object_handle_t *objs, unsigned long cap, unsigned long *n,
             p11_diag *d)
{
    struct ck_function_list *f = p11_token_functions(t);
    struct ck_attribute tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR(type, val, len),
    };
    ck_rv_t rv, rv2;

    *n = 0;
    rv = f->C_FindObjectsInit(s, tmpl, 2);
    if (rv != CKR_OK)
        return p11_fail(d, "C_FindObjectsInit", rv, NULL);
    rv = f->C_FindObjects(s, objs, cap, n);
    rv2 = f->C_FindObjectsFinal(s);
    if (rv != CKR_OK)
        return p11_fail(d, "C_FindObjects", rv, NULL);
    if (rv2 != CKR_OK)
        return p11_fail(d, "C_FindObjectsFinal", rv2, NULL);
    return CKR_OK;
}

/* Find exactly one object of class `cls` matching the reference. */
static ck_rv_t
find_key(p11_token *t, ck_session_handle_t s, const keyref *k,
         ck_object_class_t cls, ck_object_handle_t *obj, p11_diag *d)
{
    ck_object_handle_t objs[2];
    unsigned long n = 0;
    ck_rv_t rv;

    if (k->label) {
        rv = find_objects(t, s, cls, CKA_LABEL, k->label, k->label_len, objs, 2,
                          &n, d);
        if (rv != CKR_OK)
            return rv;
    }
    if (n == 0 && k->id_len) {
        rv = find_objects(t, s, cls, CKA_ID, k->id, k->id_len, objs, 2, &n, d);
        if (rv != CKR_OK)
            return rv;
    }
    if (n == 0)
        return P11R_KEY_NOT_FOUND;
    if (n > 1)
        return P11R_KEY_AMBIGUOUS;
    *obj = objs[0];
    return CKR_OK;
}

static const char *
class_name(ck_object_class_t cls)
{
    switch (cls) {
    case CKO_PRIVATE_KEY:
        return "private key";
    case CKO_PUBLIC_KEY:
        return "public key";
    case CKO_SECRET_KEY:
        return "secret key";
    default:
        return "object";
    }
}

static bool
session_logged_in(p11_token *t, ck_session_handle_t s)
{
    struct ck_session_info si;

    if (p11_token_functions(t)->C_GetSessionInfo(s, &si) != CKR_OK)
        return true; /* cannot tell: keep the "not found" verdict */
    return si.state == CKS_RO_USER_FUNCTIONS ||
           si.state == CKS_RW_USER_FUNCTIONS;
}

/* Try each class in turn; the first class with a match wins. */
static ck_rv_t
find_key_any(p11_token *t, ck_session_handle_t s, const char *ref,
             const ck_object_class_t *classes, size_t ncls,
             ck_object_handle_t *obj, ck_object_class_t *found, p11_diag *d)
{
    keyref k;
    ck_rv_t rv;

    if ((rv = keyref_parse(ref, &k, d)) != CKR_OK)
        return rv;
    for (size_t i = 0; i < ncls; i++) {
        rv = find_key(t, s, &k, classes[i], obj, d);
        if (rv == CKR_OK) {
            if (found)
                *found = classes[i];
            return CKR_OK;
        }
        if (rv == P11R_KEY_AMBIGUOUS)
            return p11_fail(d, "C_FindObjects", rv, "%s \"%s\"",
                            class_name(classes[i]), ref);
        if (rv != P11R_KEY_NOT_FOUND)
            return rv;
    }
    /* Private objects are invisible, not an error, to a session that lost
     * its login (someone called C_Logout): report that as the session
     * problem it is, so that the pool logs in again and retries. */
    if (!session_logged_in(t, s))
        return p11_fail(d, "C_FindObjects", CKR_USER_NOT_LOGGED_IN, NULL);
    return p11_fail(d, "C_FindObjects", P11R_KEY_NOT_FOUND, "\"%s\"", ref);
}

/* ---- attributes ---------------------------------------------------------- */

static ck_rv_t
get_ulong(p11_token *t, ck_session_handle_t s, ck_object_handle_t o,
          ck_attribute_type_t type, unsigned long *v, p11_diag *d)
{
    struct ck_attribute a = ATTR(type, v, sizeof *v);
    ck_rv_t rv = p11_token_functions(t)->C_GetAttributeValue(s, o, &a, 1);

    if (rv != CKR_OK)
        return p11_fail(d, "C_GetAttributeValue", rv, NULL);
    return CKR_OK;
}

static bool
get_bool(p11_token *t, ck_session_handle_t s, ck_object_handle_t o,
         ck_attribute_type_t type)
{
    unsigned char b = CK_FALSE;
    struct ck_attribute a = ATTR(type, &b, sizeof b);

    return p11_token_functions(t)->C_GetAttributeValue(s, o, &a, 1) == CKR_OK &&
           b == CK_TRUE;
}

/* A variable-length attribute into a new buffer (free()); one spare NUL. */
static ck_rv_t
get_bytes(p11_token *t, ck_session_handle_t s, ck_object_handle_t o,
          ck_attribute_type_t type, uint8_t **buf, size_t *len, p11_diag *d)
{
    struct ck_function_list *f = p11_token_functions(t);
    struct ck_attribute a = ATTR(type, NULL, 0);
    ck_rv_t rv;

    *buf = NULL;
    *len = 0;
    rv = f->C_GetAttributeValue(s, o, &a, 1);
    if (rv != CKR_OK)
        return p11_fail(d, "C_GetAttributeValue", rv, NULL);
    if (a.value_len == CK_UNAVAILABLE_INFORMATION || a.value_len > 65536)
        return p11_fail(d, "C_GetAttributeValue", CKR_ATTRIBUTE_SENSITIVE,
                        NULL);
    if (!(a.value = calloc(1, a.value_len + 1)))
        return p11_fail(d, "C_GetAttributeValue", CKR_HOST_MEMORY, NULL);
    rv = f->C_GetAttributeValue(s, o, &a, 1);
    if (rv != CKR_OK) {
        free(a.value);
        return p11_fail(d, "C_GetAttributeValue", rv, NULL);
    }
    *buf = a.value;
    *len = a.value_len;
    return CKR_OK;
}

/* ---- signing ---------------------------------------------------------------
 */

typedef struct {
    const char *ref;
    ck_key_type_t want;
    const uint8_t *data;
    size_t data_len;
    uint8_t *sig;
    size_t sig_len;
    ck_key_type_t type;
} sign_ctx;

static ck_rv_t
mech_for_sign(p11_token *t, ck_key_type_t type, size_t data_len,
              struct ck_mechanism *m, struct ck_rsa_pkcs_pss_params *pss,
              p11_diag *d)
{
    memset(m, 0, sizeof *m);
    switch (type) {
    case CKK_EC:
        m->mechanism = CKM_ECDSA;
        break;
    case CKK_EC_EDWARDS:
        m->mechanism = CKM_EDDSA;
        break;
    case CKK_RSA:
        if (data_len != 32)
            return p11_fail(d, "C_SignInit", P11R_BAD_INPUT,
                            "RSA-PSS signs a 32-byte SHA-256 digest");
        /* RFC 8017 section 9.1 with SHA-256, MGF1-SHA-256, 32-byte salt. */
        pss->hash_alg = CKM_SHA256;
        pss->mgf = CKG_MGF1_SHA256;
        pss->s_len = 32;
        m->mechanism = CKM_RSA_PKCS_PSS;
        m->parameter = pss;
        m->parameter_len = sizeof *pss;
        break;
    default:
        return p11_fail(d, "C_SignInit", P11R_UNSUPPORTED_KEY, "key type 0x%lx",
                        type);
    }
    if (!p11_token_has_mech(t, m->mechanism))
        return p11_fail(d, "C_GetMechanismList", P11R_UNSUPPORTED_MECH,
                        "mechanism 0x%lx", m->mechanism);
    return CKR_OK;
}

static ck_rv_t
sign_op(p11_token *t, ck_session_handle_t s, void *arg, p11_diag *d)
{
    static const ck_object_class_t cls[] = {CKO_PRIVATE_KEY};
    struct ck_function_list *f = p11_token_functions(t);
    sign_ctx *c = arg;
    struct ck_rsa_pkcs_pss_params pss;
    struct ck_mechanism mech;
    ck_object_handle_t key;
    unsigned long type, n = 0;
    uint8_t *sig = NULL;
    ck_rv_t rv;

    if ((rv = find_key_any(t, s, c->ref, cls, 1, &key, NULL, d)) != CKR_OK ||
        (rv = get_ulong(t, s, key, CKA_KEY_TYPE, &type, d)) != CKR_OK)
        return rv;
    if (c->want != P11_ANY_KEY && type != c->want)
        return p11_fail(d, "C_SignInit", P11R_UNSUPPORTED_KEY,
                        "\"%s\" has key type 0x%lx, expected 0x%lx", c->ref,
                        type, c->want);
    if ((rv = mech_for_sign(t, type, c->data_len, &mech, &pss, d)) != CKR_OK)
        return rv;
    if ((rv = f->C_SignInit(s, &mech, key)) != CKR_OK)
        return p11_fail(d, "C_SignInit", rv, NULL);
    rv = f->C_Sign(s, (uint8_t *)c->data, c->data_len, NULL, &n);
    if (rv == CKR_OK && (n == 0 || n > 4096))
        rv = CKR_GENERAL_ERROR;
    if (rv == CKR_OK && !(sig = malloc(n)))
        rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK)
        rv = f->C_Sign(s, (uint8_t *)c->data, c->data_len, sig, &n);
    if (rv != CKR_OK) {
        /* The pool closes a session whose operation failed, so an
         * operation left active here cannot leak into the next caller. */
        free(sig);
        return p11_fail(d, "C_Sign", rv, NULL);
    }
    c->sig = sig;
    c->sig_len = n;
    c->type = type;
    return CKR_OK;
}

ck_rv_t
p11_sign(p11_token *t, const char *ref, ck_key_type_t want, const uint8_t *data,
         size_t data_len, uint8_t **sig, size_t *sig_len, ck_key_type_t *type,
         p11_diag *d)
{
    sign_ctx c = {ref, want, data, data_len, NULL, 0, 0};
    ck_rv_t rv;

    if (!t || !sig || !sig_len || (!data && data_len) ||
        data_len > P11_MAX_DATA)
        return p11_fail(d, "C_Sign", CKR_ARGUMENTS_BAD, NULL);
    *sig = NULL;
    *sig_len = 0;
    rv = p11_token_run(t, sign_op, &c, d);
    if (rv != CKR_OK)
        return rv;
    *sig = c.sig;
    *sig_len = c.sig_len;
    if (type)
        *type = c.type;
    return CKR_OK;
}

typedef struct {
    const char *ref;
    ck_key_type_t type;
} type_ctx;

static ck_rv_t
type_op(p11_token *t, ck_session_handle_t s, void *arg, p11_diag *d)
{
    static const ck_object_class_t cls[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    type_ctx *c = arg;
    ck_object_handle_t key;
    unsigned long type;
    ck_rv_t rv;

    if ((rv = find_key_any(t, s, c->ref, cls, 2, &key, NULL, d)) != CKR_OK ||
        (rv = get_ulong(t, s, key, CKA_KEY_TYPE, &type, d)) != CKR_OK)
        return rv;
    c->type = type;
    return CKR_OK;
}

ck_rv_t
p11_key_type(p11_token *t, const char *ref, ck_key_type_t *type, p11_diag *d)
{
    type_ctx c = {ref, 0};
    ck_rv_t rv;

    if (!t || !type)
        return p11_fail(d, "key", CKR_ARGUMENTS_BAD, NULL);
    if ((rv = p11_token_run(t, type_op, &c, d)) == CKR_OK)
        *type = c.type;
    return rv;
}

/* ---- public keys ----------------------------------------------------------
 */

/* CKA_EC_POINT is a DER OCTET STRING (PKCS#11 v2.40 section 2.3.3); some
 * tokens return the bare point. Returns the point inside `buf`. */
static const uint8_t *
ec_point_unwrap(const uint8_t *buf, size_t len, size_t *point_len)
{
    const unsigned char *p = buf;
    ASN1_OCTET_STRING *os;

    if (len > 2 && buf[0] == 0x04 &&
        (os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len)) != NULL) {
        size_t n = (size_t)ASN1_STRING_length(os);
        bool whole = (size_t)(p - buf) == len && n > 0 && n < len;

        ASN1_OCTET_STRING_free(os);
        if (whole) {
            *point_len = n;
            return buf + (len - n);
        }
    }
    *point_len = len;
    return buf;
}

static ck_rv_t
spki_from_pkey(EVP_PKEY *pk, uint8_t **der, size_t *der_len, p11_diag *d)
{
    unsigned char *p;
    int n = pk ? i2d_PUBKEY(pk, NULL) : -1;

    if (n <= 0)
        return p11_fail(d, "public key", P11R_ENCODING, NULL);
    if (!(*der = malloc((size_t)n)))
        return p11_fail(d, "public key", CKR_HOST_MEMORY, NULL);
    p = *der;
    if (i2d_PUBKEY(pk, &p) != n) {
        free(*der);
        *der = NULL;
        return p11_fail(d, "public key", P11R_ENCODING, NULL);
    }
    *der_len = (size_t)n;
    return CKR_OK;
}

static ck_rv_t
spki_ec(const uint8_t *params, size_t params_len, const uint8_t *pt,
        size_t pt_len, uint8_t **der, size_t *der_len, p11_diag *d)
{
    const unsigned char *p = params;
    ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &p, (long)params_len);
    int nid = oid ? OBJ_obj2nid(oid) : NID_undef;
    const char *group = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    OSSL_PARAM prm[3];
    ck_rv_t rv;

    ASN1_OBJECT_free(oid);
    if (!group) {
        rv = p11_fail(d, "public key", P11R_UNSUPPORTED_KEY,
                      "CKA_EC_PARAMS is not a named curve");
        goto out;
    }
    prm[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                              (char *)group, 0);
    prm[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                               (void *)pt, pt_len);
    prm[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, prm) <= 0) {
        rv = p11_fail(d, "public key", P11R_ENCODING, "bad EC point");
        goto out;
    }
    rv = spki_from_pkey(pk, der, der_len, d);
out:
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

static ck_rv_t
spki_rsa(const uint8_t *mod, size_t mod_len, const uint8_t *exp, size_t exp_len,
         uint8_t **der, size_t *der_len, p11_diag *d)
{
    BIGNUM *n = BN_bin2bn(mod, (int)mod_len, NULL);
    BIGNUM *e = BN_bin2bn(exp, (int)exp_len, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *prm = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    ck_rv_t rv;

    if (!n || !e || !bld || !OSSL_PARAM_BLD_push_BN(bld, "n", n) ||
        !OSSL_PARAM_BLD_push_BN(bld, "e", e) ||
        !(prm = OSSL_PARAM_BLD_to_param(bld)) ||
        !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) ||
        EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, prm) <= 0) {
        rv = p11_fail(d, "public key", P11R_ENCODING, "bad RSA key");
        goto out;
    }
    rv = spki_from_pkey(pk, der, der_len, d);
out:
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(prm);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return rv;
}

/* SPKI from a public key object (or a private key's public attributes). */
static ck_rv_t
spki_from_object(p11_token *t, ck_session_handle_t s, ck_object_handle_t o,
                 ck_key_type_t type, uint8_t **der, size_t *der_len,
                 p11_diag *d)
{
    uint8_t *a = NULL, *b = NULL;
    size_t a_len = 0, b_len = 0, pt_len;
    const uint8_t *pt;
    EVP_PKEY *pk = NULL;
    ck_rv_t rv;

    switch (type) {
    case CKK_EC:
    case CKK_EC_EDWARDS:
        if ((rv = get_bytes(t, s, o, CKA_EC_PARAMS, &a, &a_len, d)) ||
            (rv = get_bytes(t, s, o, CKA_EC_POINT, &b, &b_len, d)))
            goto out;
        pt = ec_point_unwrap(b, b_len, &pt_len);
        if (type == CKK_EC) {
            rv = spki_ec(a, a_len, pt, pt_len, der, der_len, d);
            goto out;
        }
        pk = pt_len == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
                                                        pt, pt_len)
                          : NULL;
        rv = pk ? spki_from_pkey(pk, der, der_len, d)
                : p11_fail(d, "public key", P11R_UNSUPPORTED_KEY,
                           "only Ed25519 Edwards keys are supported");
        break;
    case CKK_RSA:
        if ((rv = get_bytes(t, s, o, CKA_MODULUS, &a, &a_len, d)) ||
            (rv = get_bytes(t, s, o, CKA_PUBLIC_EXPONENT, &b, &b_len, d)))
            goto out;
        rv = spki_rsa(a, a_len, b, b_len, der, der_len, d);
        break;
    default:
        rv = p11_fail(d, "public key", P11R_UNSUPPORTED_KEY, "key type 0x%lx",
                      type);
        break;
    }
out:
    EVP_PKEY_free(pk);
    free(a);
    free(b);
    return rv;
}

typedef struct {
    const char *ref;
    uint8_t *der;
    size_t der_len;
    ck_key_type_t type;
} pub_ctx;

/* The public key object that belongs to private key `priv`: same CKA_ID
 * (PKCS#11 section 4.4: the ID links the objects of a pair), else same
 * label. */
static ck_rv_t
find_pub_of(p11_token *t, ck_session_handle_t s, ck_object_handle_t priv,
            ck_object_handle_t *pub, p11_diag *d)
{
    uint8_t *v = NULL;
    size_t len = 0;
    unsigned long n = 0;
    ck_rv_t rv;

    rv = CKR_OK;
    if (get_bytes(t, s, priv, CKA_ID, &v, &len, NULL) == CKR_OK && len > 0) {
        rv = find_objects(t, s, CKO_PUBLIC_KEY, CKA_ID, v, len, pub, 1, &n, d);
    } else {
        free(v);
        v = NULL;
        if (get_bytes(t, s, priv, CKA_LABEL, &v, &len, NULL) == CKR_OK &&
            len > 0)
            rv = find_objects(t, s, CKO_PUBLIC_KEY, CKA_LABEL, v, len, pub, 1,
                              &n, d);
    }
    free(v);
    if (rv == CKR_OK && n == 0)
        rv = P11R_KEY_NOT_FOUND;
    return rv;
}

static ck_rv_t
pub_op(p11_token *t, ck_session_handle_t s, void *arg, p11_diag *d)
{
    static const ck_object_class_t cls[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    pub_ctx *c = arg;
    ck_object_handle_t key, pub;
    ck_object_class_t found;
    unsigned long type;
    uint8_t *info = NULL;
    size_t info_len = 0;
    const unsigned char *p;
    EVP_PKEY *pk;
    ck_rv_t rv;

    if ((rv = find_key_any(t, s, c->ref, cls, 2, &key, &found, d)) != CKR_OK ||
        (rv = get_ulong(t, s, key, CKA_KEY_TYPE, &type, d)) != CKR_OK)
        return rv;
    c->type = type;
    if (found == CKO_PUBLIC_KEY)
        return spki_from_object(t, s, key, type, &c->der, &c->der_len, d);
    rv = find_pub_of(t, s, key, &pub, d);
    if (rv == CKR_OK)
        return spki_from_object(t, s, pub, type, &c->der, &c->der_len, d);
    if (rv != P11R_KEY_NOT_FOUND)
        return rv;
    /* No public object: PKCS#11 3.0 CKA_PUBLIC_KEY_INFO, or (RSA) the
     * private key's own public attributes. */
    if (get_bytes(t, s, key, CKA_PUBLIC_KEY_INFO, &info, &info_len, NULL) ==
            CKR_OK &&
        info_len > 0) {
        p = info;
        pk = d2i_PUBKEY(NULL, &p, (long)info_len);
        rv = pk ? spki_from_pkey(pk, &c->der, &c->der_len, d)
                : p11_fail(d, "public key", P11R_ENCODING,
                           "CKA_PUBLIC_KEY_INFO");
        EVP_PKEY_free(pk);
        free(info);
        return rv;
    }
    free(info);
    if (type == CKK_RSA)
        return spki_from_object(t, s, key, type, &c->der, &c->der_len, d);
    return p11_fail(d, "C_FindObjects", P11R_KEY_NOT_FOUND,
                    "no public key object for \"%s\"", c->ref);
}

ck_rv_t
p11_public_key(p11_token *t, const char *ref, uint8_t **der, size_t *der_len,
               ck_key_type_t *type, p11_diag *d)
{
    pub_ctx c = {ref, NULL, 0, 0};
    ck_rv_t rv;

    if (!t || !der || !der_len)
        return p11_fail(d, "public key", CKR_ARGUMENTS_BAD, NULL);
    *der = NULL;
    *der_len = 0;
    if ((rv = p11_token_run(t, pub_op, &c, d)) != CKR_OK) {
        free(c.der);
        return rv;
    }
    *der = c.der;
    *der_len = c.der_len;
    if (type)
        *type = c.type;
    return CKR_OK;
}

/* ---- wrapped secrets -------------------------------------------------------
 */

typedef struct {
    const char *ref;
    const uint8_t *in;
    size_t in_len;
    uint8_t *out; /* unwrap: kc_secure_alloc; wrap: malloc */
    size_t out_len;
} wrap_ctx;

static void
oaep_params(struct ck_rsa_pkcs_oaep_params *o)
{
    /* RFC 8017 section 7.1 with SHA-256 and MGF1-SHA-256, empty label. */
    memset(o, 0, sizeof *o);
    o->hash_alg = CKM_SHA256;
    o->mgf = CKG_MGF1_SHA256;
    o->source = CKZ_DATA_SPECIFIED;
}

static void
gcm_params(struct ck_gcm_params *g, const uint8_t *nonce)
{
    memset(g, 0, sizeof *g);
    g->iv_ptr = (uint8_t *)nonce;
    g->iv_len = P11_GCM_NONCE_LEN;
    g->iv_bits = P11_GCM_NONCE_LEN * 8;
    g->tag_bits = P11_GCM_TAG_LEN * 8;
}

/* C_Decrypt into locked memory of `cap` bytes. The plaintext never
 * touches ordinary memory. A failure of the decryption proper is reported
 * as P11R_DECRYPT_FAILED with the token's code in the text: tokens differ
 * in what they return for a bad tag or padding (SoftHSM2 says
 * CKR_GENERAL_ERROR for a GCM tag mismatch). */
static ck_rv_t
decrypt_locked(p11_token *t, ck_session_handle_t s, const uint8_t *ct,
               size_t ct_len, size_t cap, uint8_t **out, size_t *out_len,
               p11_diag *d)
{
    unsigned long n = cap;
    uint8_t *pt = kc_secure_alloc(cap + 1);
    ck_rv_t rv;

    if (!pt)
        return p11_fail(d, "C_Decrypt", CKR_HOST_MEMORY, NULL);
    rv = p11_token_functions(t)->C_Decrypt(s, (uint8_t *)ct, ct_len, pt, &n);
    if (rv != CKR_OK || n > cap) {
        kc_secure_free(pt);
        switch (p11_rv_class(rv)) {
        case P11_C_SESSION:
        case P11_C_NOMEM:
            return p11_fail(d, "C_Decrypt", rv, NULL);
        default:
            return p11_fail(d, "C_Decrypt", P11R_DECRYPT_FAILED, "%s",
                            p11_rv_name(rv));
        }
    }
    pt[n] = 0;
    *out = pt;
    *out_len = n;
    return CKR_OK;
}

/* RSA-OAEP with SHA-256 on the token; when the token refuses those
 * parameters (SoftHSM2 2.6 only has SHA-1 OAEP), the raw RSA operation on
 * the token and OAEP decoding on the host (p11_oaep.c). */
static ck_rv_t
unwrap_rsa(p11_token *t, ck_session_handle_t s, ck_object_handle_t key,
           wrap_ctx *c, p11_diag *d)
{
    struct ck_function_list *f = p11_token_functions(t);
    struct ck_rsa_pkcs_oaep_params oaep;
    struct ck_mechanism m = {CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep};
    uint8_t *em = NULL, *mod = NULL, *pt = NULL;
    size_t em_len = 0, mod_len = 0, pt_len = 0;
    ck_rv_t rv;

    oaep_params(&oaep);
    rv = f->C_DecryptInit(s, &m, key);
    if (rv == CKR_OK)
        return decrypt_locked(t, s, c->in, c->in_len, c->in_len, &c->out,
                              &c->out_len, d);
    if ((rv != CKR_ARGUMENTS_BAD && rv != CKR_MECHANISM_PARAM_INVALID &&
         rv != CKR_MECHANISM_INVALID) ||
        !p11_token_has_mech(t, CKM_RSA_X_509))
        return p11_fail(d, "C_DecryptInit", rv, "RSA-OAEP SHA-256");
    if ((rv = get_bytes(t, s, key, CKA_MODULUS, &mod, &mod_len, d)) != CKR_OK)
        return rv;
    free(mod);
    if (c->in_len != mod_len)
        return p11_fail(d, "C_Decrypt", P11R_BAD_BLOB,
                        "RSA blob must be %zu bytes", mod_len);
    m = (struct ck_mechanism){CKM_RSA_X_509, NULL, 0};
    if ((rv = f->C_DecryptInit(s, &m, key)) != CKR_OK)
        return p11_fail(d, "C_DecryptInit", rv, "CKM_RSA_X_509");
    if ((rv = decrypt_locked(t, s, c->in, c->in_len, mod_len, &em, &em_len,
                             d)) != CKR_OK)
        return rv;
    if (!(pt = kc_secure_alloc(mod_len + 1))) {
        rv = p11_fail(d, "C_Decrypt", CKR_HOST_MEMORY, NULL);
    } else if (p11_oaep_sha256_decode(em, em_len, mod_len, pt, mod_len,
                                      &pt_len) != 0) {
        kc_secure_free(pt);
        rv = p11_fail(d, "C_Decrypt", P11R_DECRYPT_FAILED, "OAEP decoding");
    } else {
        pt[pt_len] = 0;
        c->out = pt;
        c->out_len = pt_len;
    }
    kc_secure_free(em);
    return rv;
}

static ck_rv_t
unwrap_aes(p11_token *t, ck_session_handle_t s, ck_object_handle_t key,
           wrap_ctx *c, p11_diag *d)
{
    struct ck_gcm_params gcm;
    struct ck_mechanism m = {CKM_AES_GCM, &gcm, sizeof gcm};
    size_t ct_len = c->in_len - P11_GCM_NONCE_LEN;
    ck_rv_t rv;

    if (c->in_len < P11_GCM_NONCE_LEN + P11_GCM_TAG_LEN + 1)
        return p11_fail(d, "C_Decrypt", P11R_BAD_BLOB,
                        "AES-GCM blob shorter than nonce and tag");
    gcm_params(&gcm, c->in);
    if ((rv = p11_token_functions(t)->C_DecryptInit(s, &m, key)) != CKR_OK)
        return p11_fail(d, "C_DecryptInit", rv, "AES-GCM");
    return decrypt_locked(t, s, c->in + P11_GCM_NONCE_LEN, ct_len, ct_len,
                          &c->out, &c->out_len, d);
}

static ck_rv_t
unwrap_op(p11_token *t, ck_session_handle_t s, void *arg, p11_diag *d)
{
    static const ck_object_class_t cls[] = {CKO_PRIVATE_KEY, CKO_SECRET_KEY};
    wrap_ctx *c = arg;
    ck_object_handle_t key;
    unsigned long type;
    ck_rv_t rv;

    if ((rv = find_key_any(t, s, c->ref, cls, 2, &key, NULL, d)) != CKR_OK ||
        (rv = get_ulong(t, s, key, CKA_KEY_TYPE, &type, d)) != CKR_OK)
        return rv;
    if (type == CKK_RSA)
        return unwrap_rsa(t, s, key, c, d);
    if (type == CKK_AES)
        return unwrap_aes(t, s, key, c, d);
    return p11_fail(d, "C_DecryptInit", P11R_UNSUPPORTED_KEY,
                    "unwrap needs an RSA or AES key");
}

ck_rv_t
p11_unwrap_secret(p11_token *t, const char *ref, const uint8_t *blob,
                  size_t blob_len, uint8_t **out, size_t *out_len, p11_diag *d)
{
    wrap_ctx c = {ref, blob, blob_len, NULL, 0};
    ck_rv_t rv;

    if (!t || !out || !out_len || (!blob && blob_len))
        return p11_fail(d, "C_Decrypt", CKR_ARGUMENTS_BAD, NULL);
    *out = NULL;
    *out_len = 0;
    if (blob_len == 0 || blob_len > 65536)
        return p11_fail(d, "C_Decrypt", P11R_BAD_BLOB, "length %zu", blob_len);
    if ((rv = p11_token_run(t, unwrap_op, &c, d)) != CKR_OK)
        return rv;
    *out = c.out;
    *out_len = c.out_len;
    return CKR_OK;
}

/* RSA: OAEP with the exported public key (no login needed in principle,
 * and identical to what an operator does with `openssl pkeyutl`). */
static ck_rv_t
wrap_rsa(const uint8_t *spki, size_t spki_len, wrap_ctx *c, p11_diag *d)
{
    const unsigned char *p = spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki_len);
    EVP_PKEY_CTX *ctx = pk ? EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL) : NULL;
    size_t n = 0;
    ck_rv_t rv = P11R_ENCODING;

    if (!ctx || EVP_PKEY_encrypt_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0 ||
        EVP_PKEY_encrypt(ctx, NULL, &n, c->in, c->in_len) <= 0)
        goto out;
    if (!(c->out = malloc(n))) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    if (EVP_PKEY_encrypt(ctx, c->out, &n, c->in, c->in_len) <= 0) {
        free(c->out);
        c->out = NULL;
        rv = P11R_BAD_INPUT; /* too long for OAEP with this modulus */
        goto out;
    }
    c->out_len = n;
    rv = CKR_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return rv == CKR_OK ? rv : p11_fail(d, "RSA-OAEP encrypt", rv, NULL);
}

static ck_rv_t
wrap_aes_op(p11_token *t, ck_session_handle_t s, void *arg, p11_diag *d)
{
    static const ck_object_class_t cls[] = {CKO_SECRET_KEY};
    struct ck_function_list *f = p11_token_functions(t);
    wrap_ctx *c = arg;
    struct ck_gcm_params gcm;
    struct ck_mechanism m;
    ck_object_handle_t key;
    unsigned long n;
    size_t cap = P11_GCM_NONCE_LEN + c->in_len + P11_GCM_TAG_LEN;
    uint8_t *blob;
    ck_rv_t rv;

    if ((rv = find_key_any(t, s, c->ref, cls, 1, &key, NULL, d)) != CKR_OK)
        return rv;
    if (!(blob = malloc(cap)))
        return p11_fail(d, "C_Encrypt", CKR_HOST_MEMORY, NULL);
    /* A random 96-bit nonce per blob (NIST SP 800-38D section 8.2.2). */
    kc_random(blob, P11_GCM_NONCE_LEN);
    gcm_params(&gcm, blob);
    m = (struct ck_mechanism){CKM_AES_GCM, &gcm, sizeof gcm};
    n = cap - P11_GCM_NONCE_LEN;
    if ((rv = f->C_EncryptInit(s, &m, key)) != CKR_OK)
        rv = p11_fail(d, "C_EncryptInit", rv, NULL);
    else if ((rv = f->C_Encrypt(s, (uint8_t *)c->in, c->in_len,
                                blob + P11_GCM_NONCE_LEN, &n)) != CKR_OK)
        rv = p11_fail(d, "C_Encrypt", rv, NULL);
    else if (n != c->in_len + P11_GCM_TAG_LEN)
        rv = p11_fail(d, "C_Encrypt", CKR_GENERAL_ERROR, "unexpected length");
    if (rv != CKR_OK) {
        free(blob);
        return rv;
    }
    c->out = blob;
    c->out_len = cap;
    return CKR_OK;
}

ck_rv_t
p11_wrap_secret(p11_token *t, const char *ref, const uint8_t *secret,
                size_t secret_len, uint8_t **blob, size_t *blob_len,
                p11_diag *d)
{
    wrap_ctx c = {ref, secret, secret_len, NULL, 0};
    ck_key_type_t type = 0;
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    ck_rv_t rv;

    if (!t || !blob || !blob_len || !secret || secret_len == 0 ||
        secret_len > 4096)
        return p11_fail(d, "wrap", CKR_ARGUMENTS_BAD, NULL);
    *blob = NULL;
    *blob_len = 0;
    rv = p11_key_type(t, ref, &type, NULL);
    if (rv == CKR_OK && type == CKK_RSA) {
        if ((rv = p11_public_key(t, ref, &spki, &spki_len, NULL, d)) == CKR_OK)
            rv = wrap_rsa(spki, spki_len, &c, d);
        free(spki);
    } else {
        /* Not a private/public key: a secret (AES) key, or nothing. */
        rv = p11_token_run(t, wrap_aes_op, &c, d);
    }
    if (rv == CKR_OK) {
        *blob = c.out;
        *blob_len = c.out_len;
    }
    return rv;
}

/* ---- key generation --------------------------------------------------------
 */

typedef struct {
    const p11_keyspec *spec;
} gen_ctx;

static ck_rv_t
gen_check_free(p11_token *t, ck_session_handle_t s, const p11_keyspec *k,
               p11_diag *d)
{
    static const ck_object_class_t cls[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY,
                                            CKO_SECRET_KEY};
    ck_object_handle_t o;
    unsigned long n;
    ck_rv_t rv;

    for (size_t i = 0; i < sizeof cls / sizeof cls[0]; i++) {
        rv = find_objects(t, s, cls[i], CKA_LABEL, k->label, strlen(k->label),
                          &o, 1, &n, d);
        if (rv == CKR_OK && n == 0)
            rv = find_objects(t, s, cls[i], CKA_ID, k->id, k->id_len, &o, 1, &n,
                              d);
        if (rv != CKR_OK)
            return rv;
        if (n > 0)
            return p11_fail(d, "C_FindObjects", P11R_KEY_EXISTS, "label \"%s\"",
                            k->label);
    }
    return CKR_OK;
}

static ck_rv_t
gen_secret(p11_token *t, ck_session_handle_t s, const p11_keyspec *k,
           p11_diag *d)
{
    static const ck_object_class_t cls = CKO_SECRET_KEY;
    static const ck_key_type_t type = CKK_AES;
    struct ck_mechanism m = {CKM_AES_KEY_GEN, NULL, 0};
    unsigned long len = k->bits / 8;
    ck_object_handle_t key;
    struct ck_attribute tmpl[] = {
        ATTR(CKA_CLASS, &cls, sizeof cls),
        ATTR(CKA_KEY_TYPE, &type, sizeof type),
        ATTR(CKA_VALUE_LEN, &len, sizeof len),
        ATTR(CKA_LABEL, k->label, strlen(k->label)),
        ATTR(CKA_ID, k->id, k->id_len),
        ATTR_BOOL(CKA_TOKEN, true),
        ATTR_BOOL(CKA_PRIVATE, true),
        ATTR_BOOL(CKA_SENSITIVE, true),
        ATTR_BOOL(CKA_EXTRACTABLE, false),
        ATTR_BOOL(CKA_ENCRYPT, true),
        ATTR_BOOL(CKA_DECRYPT, true),
    };
    ck_rv_t rv;

    if (k->bits != 128 && k->bits != 256)
        return p11_fail(d, "C_GenerateKey", P11R_BAD_INPUT,
                        "AES keys are 128 or 256 bits");
    rv = p11_token_functions(t)->C_GenerateKey(
        s, &m, tmpl, sizeof tmpl / sizeof tmpl[0], &key);
    return rv == CKR_OK ? rv : p11_fail(d, "C_GenerateKey", rv, NULL);
}

static ck_rv_t
gen_pair(p11_token *t, ck_session_handle_t s, const p11_keyspec *k, p11_diag *d)
{
    static const uint8_t f4[] = {0x01, 0x00, 0x01};
    struct ck_mechanism m = {0, NULL, 0};
    unsigned long bits = k->bits;
    ck_object_handle_t pub, priv;
    bool sign = !(k->kind == P11_KEY_RSA && k->decrypt);
    struct ck_attribute pt[6] = {
        ATTR(CKA_LABEL, k->label, strlen(k->label)),
        ATTR(CKA_ID, k->id, k->id_len),
        ATTR_BOOL(CKA_TOKEN, true),
        ATTR_BOOL(sign ? CKA_VERIFY : CKA_ENCRYPT, true),
    };
    struct ck_attribute vt[] = {
        ATTR(CKA_LABEL, k->label, strlen(k->label)),
        ATTR(CKA_ID, k->id, k->id_len),
        ATTR_BOOL(CKA_TOKEN, true),
        ATTR_BOOL(CKA_PRIVATE, true),
        ATTR_BOOL(CKA_SENSITIVE, true),
        ATTR_BOOL(CKA_EXTRACTABLE, false),
        ATTR_BOOL(sign ? CKA_SIGN : CKA_DECRYPT, true),
    };
    unsigned long npt = 4;
    ck_rv_t rv;

    switch (k->kind) {
    case P11_KEY_EC_P256:
        m.mechanism = CKM_EC_KEY_PAIR_GEN;
        pt[npt++] =
            (struct ck_attribute)ATTR(CKA_EC_PARAMS, oid_p256, sizeof oid_p256);
        break;
    case P11_KEY_ED25519:
        m.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
        pt[npt++] = (struct ck_attribute)ATTR(CKA_EC_PARAMS, oid_ed25519,
                                              sizeof oid_ed25519);
        break;
    case P11_KEY_RSA:
        if (bits < 2048 || bits > 8192 || bits % 8)
            return p11_fail(d, "C_GenerateKeyPair", P11R_BAD_INPUT,
                            "RSA keys are 2048 to 8192 bits");
        m.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
        pt[npt++] =
            (struct ck_attribute)ATTR(CKA_MODULUS_BITS, &bits, sizeof bits);
        pt[npt++] =
            (struct ck_attribute)ATTR(CKA_PUBLIC_EXPONENT, f4, sizeof f4);
        break;
    default:
        return p11_fail(d, "C_GenerateKeyPair", P11R_BAD_INPUT, "key kind");
    }
    if (!p11_token_has_mech(t, m.mechanism))
        return p11_fail(d, "C_GetMechanismList", P11R_UNSUPPORTED_MECH,
                        "mechanism 0x%lx", m.mechanism);
    rv = p11_token_functions(t)->C_GenerateKeyPair(
        s, &m, pt, npt, vt, sizeof vt / sizeof vt[0], &pub, &priv);
    return rv == CKR_OK ? rv : p11_fail(d, "C_GenerateKeyPair", rv, NULL);
}

static ck_rv_t
gen_op(p11_token *t, ck_session_handle_t s, void *arg, p11_diag *d)
{
    const p11_keyspec *k = ((gen_ctx *)arg)->spec;
    ck_rv_t rv;

    if ((rv = gen_check_free(t, s, k, d)) != CKR_OK)
        return rv;
    if (k->kind == P11_KEY_AES)
        return gen_secret(t, s, k, d);
    return gen_pair(t, s, k, d);
}

ck_rv_t
p11_keygen(p11_token *t, const p11_keyspec *spec, p11_diag *d)
{
    gen_ctx c = {spec};
    size_t n;

    if (!t || !spec || !spec->label || !spec->id)
        return p11_fail(d, "keygen", CKR_ARGUMENTS_BAD, NULL);
    n = strlen(spec->label);
    if (n == 0 || n > P11_LABEL_MAX || spec->id_len == 0 ||
        spec->id_len > P11_ID_MAX)
        return p11_fail(d, "keygen", P11R_BAD_INPUT,
                        "label of 1-%u bytes and id of 1-%u bytes",
                        P11_LABEL_MAX, P11_ID_MAX);
    /* "label:" and "id:" prefixes would make the key hard to address. */
    if (strncmp(spec->label, "id:", 3) == 0 ||
        strncmp(spec->label, "label:", 6) == 0)
        return p11_fail(d, "keygen", P11R_BAD_INPUT,
                        "label must not start with \"id:\" or \"label:\"");
    return p11_token_run(t, gen_op, &c, d);
}

/* ---- listing ---------------------------------------------------------------
 */

typedef struct {
    p11_keyinfo *keys;
    size_t count;
} list_ctx;

#define P11_LIST_MAX 4096u

static void
describe(p11_token *t, ck_session_handle_t s, ck_object_handle_t o,
         ck_object_class_t cls, p11_keyinfo *k)
{
    uint8_t *v = NULL;
    size_t len = 0;
    unsigned long ul = 0;

    memset(k, 0, sizeof *k);
    k->cls = cls;
    if (get_bytes(t, s, o, CKA_LABEL, &v, &len, NULL) == CKR_OK) {
        len = len > P11_LABEL_MAX ? P11_LABEL_MAX : len;
        memcpy(k->label, v, len);
        free(v);
    }
    if (get_bytes(t, s, o, CKA_ID, &v, &len, NULL) == CKR_OK) {
        k->id_len = len > P11_ID_MAX ? P11_ID_MAX : len;
        memcpy(k->id, v, k->id_len);
        free(v);
    }
    if (get_ulong(t, s, o, CKA_KEY_TYPE, &ul, NULL) == CKR_OK)
        k->type = ul;
    k->sensitive = get_bool(t, s, o, CKA_SENSITIVE);
    k->extractable = get_bool(t, s, o, CKA_EXTRACTABLE);
    if (k->type == CKK_AES &&
        get_ulong(t, s, o, CKA_VALUE_LEN, &ul, NULL) == CKR_OK)
        k->bits = ul * 8;
    if (k->type == CKK_RSA &&
        get_bytes(t, s, o, CKA_MODULUS, &v, &len, NULL) == CKR_OK) {
        k->bits = len * 8;
        free(v);
    }
}

static ck_rv_t
list_class(p11_token *t, ck_session_handle_t s, ck_object_class_t cls,
           list_ctx *c, p11_diag *d)
{
    struct ck_function_list *f = p11_token_functions(t);
    struct ck_attribute tmpl[] = {ATTR(CKA_CLASS, &cls, sizeof cls)};
    ck_object_handle_t objs[64];
    unsigned long n;
    p11_keyinfo *grown;
    ck_rv_t rv;

    if ((rv = f->C_FindObjectsInit(s, tmpl, 1)) != CKR_OK)
        return p11_fail(d, "C_FindObjectsInit", rv, NULL);
    do {
        if ((rv = f->C_FindObjects(s, objs, 64, &n)) != CKR_OK) {
            p11_fail(d, "C_FindObjects", rv, NULL);
            break;
        }
        if (c->count + n > P11_LIST_MAX)
            n = P11_LIST_MAX - c->count;
        grown = realloc(c->keys, (c->count + n + 1) * sizeof *grown);
        if (!grown) {
            rv = p11_fail(d, "C_FindObjects", CKR_HOST_MEMORY, NULL);
            break;
        }
        c->keys = grown;
        /* Attributes may be read while a search is active (PKCS#11 5.8). */
        for (unsigned long i = 0; i < n; i++)
            describe(t, s, objs[i], cls, &c->keys[c->count++]);
    } while (n == 64 && c->count < P11_LIST_MAX);
    (void)f->C_FindObjectsFinal(s);
    return rv;
}

static ck_rv_t
list_op(p11_token *t, ck_session_handle_t s, void *arg, p11_diag *d)
{
    list_ctx *c = arg;
    ck_rv_t rv;

    free(c->keys); /* a retried attempt starts over */
    c->keys = NULL;
    c->count = 0;
    if ((rv = list_class(t, s, CKO_PRIVATE_KEY, c, d)) != CKR_OK)
        return rv;
    return list_class(t, s, CKO_SECRET_KEY, c, d);
}

ck_rv_t
p11_list_keys(p11_token *t, p11_keyinfo **keys, size_t *count, p11_diag *d)
{
    list_ctx c = {NULL, 0};
    ck_rv_t rv;

    if (!t || !keys || !count)
        return p11_fail(d, "list", CKR_ARGUMENTS_BAD, NULL);
    *keys = NULL;
    *count = 0;
    if ((rv = p11_token_run(t, list_op, &c, d)) != CKR_OK) {
        free(c.keys);
        return rv;
    }
    *keys = c.keys;
    *count = c.count;
    return CKR_OK;
}
