/* SPDX-License-Identifier: Apache-2.0 */
/* Key-share vault (include/hsm/vault.h): AES-256-GCM records in the
 * store's "vault" namespace, keyed by HKDF-SHA256 of the password (RFC 5869)
 * with a per-key-id salt. Record layout (all integers u32 big-endian):
 *
 *   "HSV1" | scheme | party_index | threshold | total_parties |
 *   pub_len | public_share | gk_len | group_key | nonce(12) |
 *   ciphertext(share) | tag(16)
 *
 * The associated data is key_id || 0x00 || everything before the nonce, so
 * the metadata cannot be altered and a record cannot be moved to another
 * id undetected. Backup/restore is in backup.c. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "hsm_int.h"
#include "kc.h"
#include "vault_int.h"

#define NS        "vault"
#define MAGIC     "HSV1"
#define NONCE_LEN 12u
#define TAG_LEN   16u

struct hsm_vault {
    hsm_store *store;
    hsm_password_provider *pw;
    char *pw_key_id;
    unsigned ttl;
    pthread_mutex_t mu; /* guards password and fetched */
    hsm_secret *password;
    struct timespec fetched;
    hsm_diag diag;
};

static const char *const scheme_names[] = {"unknown", "frost", "cmp", "bls",
                                           "ringtail"};

const char *
hsm_scheme_name(uint32_t scheme)
{
    if (scheme < sizeof scheme_names / sizeof scheme_names[0])
        return scheme_names[scheme];
    return "unknown";
}

hsm_err
hsm_scheme_from_name(const char *name, uint32_t *scheme)
{
    uint64_t v;

    if (!name || !scheme)
        return HSM_EINVAL;
    for (uint32_t i = 1; i < sizeof scheme_names / sizeof scheme_names[0];
         i++) {
        if (strcasecmp(name, scheme_names[i]) == 0) {
            *scheme = i;
            return HSM_OK;
        }
    }
    if (kc_parse_u64(name, &v) == 0 && v > 0 && v <= UINT32_MAX) {
        *scheme = (uint32_t)v;
        return HSM_OK;
    }
    return HSM_EINVAL;
}

void
hsm_share_meta_clear(hsm_share_meta *meta)
{
    if (!meta)
        return;
    free(meta->public_share);
    free(meta->group_key);
    memset(meta, 0, sizeof *meta);
}

hsm_err
hsm_vault_new(hsm_store *store, hsm_password_provider *pw,
              const char *password_key_id, unsigned password_ttl_seconds,
              hsm_vault **out)
{
    hsm_vault *v;

    if (!store || !pw || !out)
        return HSM_EINVAL;
    *out = NULL;
    if (!(v = calloc(1, sizeof *v)))
        return HSM_ENOMEM;
    if (password_key_id && !(v->pw_key_id = strdup(password_key_id))) {
        free(v);
        return HSM_ENOMEM;
    }
    v->store = store;
    v->pw = pw;
    v->ttl = password_ttl_seconds;
    pthread_mutex_init(&v->mu, NULL);
    hsm_diag_init(&v->diag);
    *out = v;
    return HSM_OK;
}

void
hsm_vault_forget_password(hsm_vault *v)
{
    if (!v)
        return;
    pthread_mutex_lock(&v->mu);
    hsm_secret_free(v->password);
    v->password = NULL;
    pthread_mutex_unlock(&v->mu);
}

void
hsm_vault_free(hsm_vault *v)
{
    if (!v)
        return;
    hsm_secret_free(v->password);
    free(v->pw_key_id);
    pthread_mutex_destroy(&v->mu);
    hsm_diag_destroy(&v->diag);
    free(v);
}

const char *
hsm_vault_last_error(const hsm_vault *v)
{
    return v ? hsm_diag_snapshot(&v->diag) : "";
}

hsm_diag *
hsm_vault_diag(hsm_vault *v)
{
    return &v->diag;
}

hsm_store *
hsm_vault_store_handle(hsm_vault *v)
{
    return v->store;
}

/* Copy of the password, fetching it when absent or expired. */
hsm_err
hsm_vault_password(hsm_vault *v, hsm_secret **out)
{
    struct timespec now;
    hsm_err rc = HSM_OK;

    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&v->mu);
    if (v->password && v->ttl &&
        now.tv_sec - v->fetched.tv_sec >= (time_t)v->ttl) {
        hsm_secret_free(v->password);
        v->password = NULL;
    }
    if (!v->password) {
        rc = hsm_password_get(v->pw, v->pw_key_id, &v->password);
        if (rc != HSM_OK)
            hsm_diag_set(&v->diag, "vault password: %s",
                         hsm_password_provider_last_error(v->pw));
        v->fetched = now;
    }
    if (rc == HSM_OK)
        rc = hsm_secret_from(v->password->data, v->password->len, out);
    pthread_mutex_unlock(&v->mu);
    return rc;
}

/* HKDF-SHA256(ikm = password, salt = SHA-256("hsm-vault-" || key_id),
 * info = "hsm-key-share-vault-v1"), 32 bytes. */
static hsm_err
derive_key(hsm_vault *v, const char *key_id, uint8_t key[32])
{
    static const char info[] = "hsm-key-share-vault-v1";
    EVP_PKEY_CTX *ctx = NULL;
    hsm_secret *pw = NULL;
    EVP_MD_CTX *md = NULL;
    uint8_t salt[32];
    size_t klen = 32;
    hsm_err rc;

    if ((rc = hsm_vault_password(v, &pw)) != HSM_OK)
        return rc;
    rc = HSM_ECRYPTO;
    if (!(md = EVP_MD_CTX_new()) ||
        EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, "hsm-vault-", 10) != 1 ||
        EVP_DigestUpdate(md, key_id, strlen(key_id)) != 1 ||
        EVP_DigestFinal_ex(md, salt, NULL) != 1)
        goto out;
    if (!(ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL)) ||
        EVP_PKEY_derive_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) != 1 ||
        EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, sizeof salt) != 1 ||
        EVP_PKEY_CTX_set1_hkdf_key(ctx, pw->data, (int)pw->len) != 1 ||
        EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info,
                                    (int)(sizeof info - 1)) != 1 ||
        EVP_PKEY_derive(ctx, key, &klen) != 1 || klen != 32) {
        rc = hsm_openssl_fail(&v->diag, "HKDF");
        goto out;
    }
    rc = HSM_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_MD_CTX_free(md);
    hsm_secret_free(pw);
    return rc;
}

hsm_err
hsm_aes_gcm(bool enc, const uint8_t key[32], const uint8_t nonce[12],
            const uint8_t *aad, size_t aad_len, const uint8_t *in,
            size_t in_len, uint8_t *out, uint8_t tag[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    hsm_err rc = HSM_ECRYPTO;

    if (!c || in_len > INT_MAX || aad_len > INT_MAX)
        goto out;
    if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce,
                          enc ? 1 : 0) != 1 ||
        (aad_len && EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) != 1) ||
        (in_len && EVP_CipherUpdate(c, out, &n, in, (int)in_len) != 1))
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(c, out + n, &fin) != 1) {
        rc = HSM_ECORRUPT; /* tag mismatch (decrypt) */
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
        goto out;
    rc = HSM_OK;
out:
    EVP_CIPHER_CTX_free(c);
    ERR_clear_error();
    return rc;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t
get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

hsm_err
hsm_share_meta_check(const hsm_share_meta *m)
{
    if (!m || m->total_parties == 0 || m->threshold == 0 ||
        m->threshold > m->total_parties ||
        m->public_share_len > HSM_VAULT_MAX_PUBLIC ||
        m->group_key_len > HSM_VAULT_MAX_PUBLIC ||
        (!m->public_share && m->public_share_len) ||
        (!m->group_key && m->group_key_len))
        return HSM_EINVAL;
    return HSM_OK;
}

/* Associated data: key_id || 0 || header. */
static uint8_t *
make_aad(const char *key_id, const uint8_t *hdr, size_t hdr_len,
         size_t *aad_len)
{
    size_t kl = strlen(key_id);
    uint8_t *a = malloc(kl + 1 + hdr_len);

    if (!a)
        return NULL;
    memcpy(a, key_id, kl);
    a[kl] = 0;
    memcpy(a + kl + 1, hdr, hdr_len);
    *aad_len = kl + 1 + hdr_len;
    return a;
}

/* Header (magic and metadata) of a record; returns its length. */
static size_t
put_header(uint8_t *rec, const hsm_share_meta *meta)
{
    memcpy(rec, MAGIC, 4);
    put_u32(rec + 4, meta->scheme);
    put_u32(rec + 8, meta->party_index);
    put_u32(rec + 12, meta->threshold);
    put_u32(rec + 16, meta->total_parties);
    put_u32(rec + 20, (uint32_t)meta->public_share_len);
    if (meta->public_share_len)
        memcpy(rec + 24, meta->public_share, meta->public_share_len);
    put_u32(rec + 24 + meta->public_share_len, (uint32_t)meta->group_key_len);
    if (meta->group_key_len)
        memcpy(rec + 28 + meta->public_share_len, meta->group_key,
               meta->group_key_len);
    return 28 + meta->public_share_len + meta->group_key_len;
}

hsm_err
hsm_vault_seal(hsm_vault *v, const char *key_id, const uint8_t *share,
               size_t share_len, const hsm_share_meta *meta, uint8_t **out,
               size_t *out_len)
{
    uint8_t key[32];
    uint8_t *rec = NULL, *aad = NULL;
    size_t hdr_len, rec_len, aad_len = 0;
    hsm_err rc;

    *out = NULL;
    *out_len = 0;
    if (!hsm_key_id_valid(key_id) || !share || share_len == 0)
        return HSM_EINVAL;
    if (share_len > HSM_VAULT_MAX_SHARE)
        return HSM_ETOOBIG;
    if ((rc = hsm_share_meta_check(meta)) != HSM_OK)
        return rc;
    rec_len = 28 + meta->public_share_len + meta->group_key_len + NONCE_LEN +
              share_len + TAG_LEN;
    if (!(rec = malloc(rec_len)))
        return HSM_ENOMEM;
    hdr_len = put_header(rec, meta);
    kc_random(rec + hdr_len, NONCE_LEN);
    rc = HSM_ENOMEM;
    if (!(aad = make_aad(key_id, rec, hdr_len, &aad_len)))
        goto out;
    if ((rc = derive_key(v, key_id, key)) != HSM_OK)
        goto out;
    rc = hsm_aes_gcm(true, key, rec + hdr_len, aad, aad_len, share, share_len,
                     rec + hdr_len + NONCE_LEN,
                     rec + hdr_len + NONCE_LEN + share_len);
    if (rc != HSM_OK)
        goto out;
    *out = rec;
    *out_len = rec_len;
    rec = NULL;
out:
    kc_wipe(key, sizeof key);
    free(aad);
    free(rec);
    return rc;
}

hsm_err
hsm_vault_store(hsm_vault *v, const char *key_id, const uint8_t *share,
                size_t share_len, const hsm_share_meta *meta, bool overwrite)
{
    uint8_t *rec = NULL;
    size_t rec_len = 0;
    hsm_err rc;

    if (!v)
        return HSM_EINVAL;
    rc = hsm_vault_seal(v, key_id, share, share_len, meta, &rec, &rec_len);
    if (rc != HSM_OK)
        return rc;
    rc = overwrite ? hsm_store_put(v->store, NS, key_id, rec, rec_len)
                   : hsm_store_put_new(v->store, NS, key_id, rec, rec_len);
    if (rc == HSM_EEXIST)
        hsm_diag_set(&v->diag, "key share '%s' already exists", key_id);
    free(rec);
    return rc;
}

/* Split a record; pointers into rec. */
static hsm_err
parse_record(const uint8_t *rec, size_t n, hsm_share_meta *m, size_t *hdr_len)
{
    size_t pl, gl, o;

    memset(m, 0, sizeof *m);
    if (n < 28 || memcmp(rec, MAGIC, 4) != 0)
        return HSM_ECORRUPT;
    m->scheme = get_u32(rec + 4);
    m->party_index = get_u32(rec + 8);
    m->threshold = get_u32(rec + 12);
    m->total_parties = get_u32(rec + 16);
    pl = get_u32(rec + 20);
    if (pl > HSM_VAULT_MAX_PUBLIC || n - 24 < pl + 4)
        return HSM_ECORRUPT;
    o = 24 + pl;
    gl = get_u32(rec + o);
    o += 4;
    if (gl > HSM_VAULT_MAX_PUBLIC || n - o < gl + NONCE_LEN + 1 + TAG_LEN)
        return HSM_ECORRUPT;
    m->public_share = (uint8_t *)(uintptr_t)(rec + 24);
    m->public_share_len = pl;
    m->group_key = (uint8_t *)(uintptr_t)(rec + 24 + pl + 4);
    m->group_key_len = gl;
    *hdr_len = o + gl;
    return HSM_OK;
}

static hsm_err
dup_meta(const hsm_share_meta *in, hsm_share_meta *out)
{
    *out = *in;
    out->public_share = NULL;
    out->group_key = NULL;
    if (!(out->public_share = malloc(in->public_share_len + 1)) ||
        !(out->group_key = malloc(in->group_key_len + 1))) {
        hsm_share_meta_clear(out);
        return HSM_ENOMEM;
    }
    if (in->public_share_len)
        memcpy(out->public_share, in->public_share, in->public_share_len);
    if (in->group_key_len)
        memcpy(out->group_key, in->group_key, in->group_key_len);
    return HSM_OK;
}

hsm_err
hsm_vault_load(hsm_vault *v, const char *key_id, hsm_secret **share,
               hsm_share_meta *meta)
{
    hsm_secret *rec = NULL, *pt = NULL;
    hsm_share_meta m;
    uint8_t key[32], *aad = NULL;
    size_t hdr_len = 0, aad_len = 0, ct_len;
    hsm_err rc;

    if (share)
        *share = NULL;
    if (meta)
        memset(meta, 0, sizeof *meta);
    if (!v || !hsm_key_id_valid(key_id) || (!share && !meta))
        return HSM_EINVAL;
    rc = hsm_store_get(v->store, NS, key_id, &rec);
    if (rc == HSM_ENOTFOUND)
        hsm_diag_set(&v->diag, "no key share '%s'", key_id);
    if (rc != HSM_OK)
        return rc;
    if ((rc = parse_record(rec->data, rec->len, &m, &hdr_len)) != HSM_OK) {
        hsm_diag_set(&v->diag, "key share '%s' is damaged", key_id);
        goto out;
    }
    ct_len = rec->len - hdr_len - NONCE_LEN - TAG_LEN;
    rc = HSM_ENOMEM;
    if (!(aad = make_aad(key_id, rec->data, hdr_len, &aad_len)))
        goto out;
    if ((rc = hsm_secret_new(ct_len, &pt)) != HSM_OK)
        goto out;
    if ((rc = derive_key(v, key_id, key)) != HSM_OK)
        goto out;
    rc = hsm_aes_gcm(false, key, rec->data + hdr_len, aad, aad_len,
                     rec->data + hdr_len + NONCE_LEN, ct_len, pt->data,
                     rec->data + hdr_len + NONCE_LEN + ct_len);
    if (rc != HSM_OK) {
        hsm_diag_set(&v->diag,
                     "key share '%s' failed authentication (tampered, or "
                     "wrong vault password)",
                     key_id);
        rc = HSM_ECORRUPT;
        goto out;
    }
    if (meta && (rc = dup_meta(&m, meta)) != HSM_OK)
        goto out;
    if (share) {
        *share = pt;
        pt = NULL;
    }
out:
    kc_wipe(key, sizeof key);
    free(aad);
    hsm_secret_free(pt);
    hsm_secret_free(rec);
    return rc;
}

hsm_err
hsm_vault_metadata(hsm_vault *v, const char *key_id, hsm_share_meta *meta)
{
    if (!meta)
        return HSM_EINVAL;
    return hsm_vault_load(v, key_id, NULL, meta);
}

hsm_err
hsm_vault_delete(hsm_vault *v, const char *key_id)
{
    hsm_err rc;

    if (!v || !hsm_key_id_valid(key_id))
        return HSM_EINVAL;
    rc = hsm_store_del(v->store, NS, key_id);
    if (rc == HSM_ENOTFOUND)
        hsm_diag_set(&v->diag, "no key share '%s'", key_id);
    return rc;
}

hsm_err
hsm_vault_list(hsm_vault *v, char ***ids, size_t *count)
{
    if (!v)
        return HSM_EINVAL;
    return hsm_store_list(v->store, NS, ids, count);
}
