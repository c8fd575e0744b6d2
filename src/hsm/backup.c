/* SPDX-License-Identifier: Apache-2.0 */
/* Key-share backup file (DESIGN.md "Key-share backup file"):
 *
 *   {"version": 1, "salt": b64(32), "nonce": b64(12),
 *    "key_id": hex(SHA-256(key))[:16], "data": b64(ct || tag16),
 *    "count": n}
 *
 * key = scrypt(password, salt, N=32768, r=8, p=1, 32 bytes) (RFC 7914),
 * data = AES-256-GCM(key, nonce, plaintext) without associated data, the
 * 16-byte tag appended. The plaintext is a JSON array of
 *   {"key_id": s, "scheme": u32, "party_index": u32, "threshold": u32,
 *    "total_parties": u32, "public_share": b64, "group_key": b64,
 *    "share": b64}
 * key_id lets restore tell a wrong password (HSM_EAUTH) from a damaged
 * file (HSM_ECORRUPT) before decrypting; it is compared in constant time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "hsm_int.h"
#include "kc.h"
#include "vault_int.h"

#define SCRYPT_N      32768u
#define SCRYPT_R      8u
#define SCRYPT_P      1u
#define SCRYPT_MAXMEM (64u * 1024u * 1024u)
#define SALT_LEN      32u
#define NONCE_LEN     12u
#define TAG_LEN       16u
#define BACKUP_MAX    (256u * 1024u * 1024u) /* bytes of backup file */
#define COUNT_MAX     1000000u

hsm_err
hsm_scrypt(const uint8_t *pw, size_t pw_len, const uint8_t *salt,
           size_t salt_len, uint64_t n, uint64_t r, uint64_t p, uint64_t maxmem,
           uint8_t *out, size_t out_len)
{
    if ((!pw && pw_len) || (!salt && salt_len) || !out)
        return HSM_EINVAL;
    if (EVP_PBE_scrypt(pw_len ? (const char *)pw : "", pw_len,
                       salt_len ? salt : (const uint8_t *)"", salt_len, n, r, p,
                       maxmem, out, out_len) != 1) {
        ERR_clear_error();
        return HSM_ECRYPTO;
    }
    return HSM_OK;
}

/* key and its 16-hex-digit id. */
static hsm_err
backup_key(const uint8_t *pw, size_t pw_len, const uint8_t *salt,
           uint8_t key[32], char key_id[17])
{
    uint8_t h[32];
    char hex[65];
    hsm_err rc;

    rc = hsm_scrypt(pw, pw_len, salt, SALT_LEN, SCRYPT_N, SCRYPT_R, SCRYPT_P,
                    SCRYPT_MAXMEM, key, 32);
    if (rc != HSM_OK)
        return rc;
    if ((rc = hsm_sha256(key, 32, h)) != HSM_OK)
        return rc;
    kc_hex_encode(h, sizeof h, hex, sizeof hex);
    memcpy(key_id, hex, 16);
    key_id[16] = 0;
    return HSM_OK;
}

/* ---- growable buffer in locked memory ------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} sbuf;

static hsm_err
sbuf_add(sbuf *b, const void *s, size_t n)
{
    if (n > BACKUP_MAX || b->len > BACKUP_MAX - n)
        return HSM_ETOOBIG;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        uint8_t *np;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        if (!(np = kc_secure_alloc(ncap)))
            return HSM_ENOMEM;
        if (b->p)
            memcpy(np, b->p, b->len);
        kc_secure_free(b->p);
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return HSM_OK;
}

static hsm_err
sbuf_b64(sbuf *b, const uint8_t *d, size_t n)
{
    char *s = kc_b64_encode(n ? d : (const uint8_t *)"", n, KC_B64_STD);
    hsm_err rc;

    if (!s)
        return HSM_ENOMEM;
    rc = sbuf_add(b, s, strlen(s));
    kc_free_wipe(s, strlen(s));
    return rc;
}

/* Append one share as a JSON object. key ids need no escaping (hsm.h). */
static hsm_err
add_entry(sbuf *b, bool first, const char *id, const hsm_secret *share,
          const hsm_share_meta *m)
{
    char head[HSM_MAX_KEY_ID + 200];
    int n;
    hsm_err rc;

    n = snprintf(head, sizeof head,
                 "%s{\"key_id\":\"%s\",\"scheme\":%u,\"party_index\":%u,"
                 "\"threshold\":%u,\"total_parties\":%u,\"public_share\":\"",
                 first ? "" : ",", id, (unsigned)m->scheme,
                 (unsigned)m->party_index, (unsigned)m->threshold,
                 (unsigned)m->total_parties);
    if (n < 0 || (size_t)n >= sizeof head)
        return HSM_EINTERNAL;
    if ((rc = sbuf_add(b, head, (size_t)n)) != HSM_OK ||
        (rc = sbuf_b64(b, m->public_share, m->public_share_len)) != HSM_OK ||
        (rc = sbuf_add(b, "\",\"group_key\":\"", 15)) != HSM_OK ||
        (rc = sbuf_b64(b, m->group_key, m->group_key_len)) != HSM_OK ||
        (rc = sbuf_add(b, "\",\"share\":\"", 11)) != HSM_OK ||
        (rc = sbuf_b64(b, share->data, share->len)) != HSM_OK ||
        (rc = sbuf_add(b, "\"}", 2)) != HSM_OK)
        return rc;
    return HSM_OK;
}

/* Serialise every share of the vault into `b`. */
static hsm_err
collect(hsm_vault *v, sbuf *b, size_t *count)
{
    char **ids = NULL;
    size_t n = 0;
    hsm_err rc;

    if ((rc = hsm_vault_list(v, &ids, &n)) != HSM_OK)
        return rc;
    if ((rc = sbuf_add(b, "[", 1)) != HSM_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        hsm_secret *share = NULL;
        hsm_share_meta m;
        rc = hsm_vault_load(v, ids[i], &share, &m);
        if (rc == HSM_OK) {
            rc = add_entry(b, i == 0, ids[i], share, &m);
            hsm_share_meta_clear(&m);
        }
        hsm_secret_free(share);
        if (rc != HSM_OK)
            goto out;
    }
    rc = sbuf_add(b, "]", 1);
    *count = n;
out:
    hsm_list_free(ids, n);
    return rc;
}

static char *
b64(const uint8_t *d, size_t n)
{
    return kc_b64_encode(d, n, KC_B64_STD);
}

static hsm_err
write_envelope(const char *path, const uint8_t *salt, const uint8_t *nonce,
               const char *key_id, const uint8_t *data, size_t data_len,
               size_t count)
{
    char *s_salt = b64(salt, SALT_LEN), *s_nonce = b64(nonce, NONCE_LEN);
    char *s_data = b64(data, data_len), *text = NULL;
    json_t *o = NULL;
    hsm_err rc = HSM_ENOMEM;
    int r;

    if (!s_salt || !s_nonce || !s_data)
        goto out;
    o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I}", "version", 1, "salt",
                  s_salt, "nonce", s_nonce, "key_id", key_id, "data", s_data,
                  "count", (json_int_t)count);
    if (!o || !(text = json_dumps(o, JSON_COMPACT)))
        goto out;
    r = kc_write_file_atomic(path, (const uint8_t *)text, strlen(text), 0600);
    rc = r == 0 ? HSM_OK : HSM_EIO;
out:
    free(s_salt);
    free(s_nonce);
    free(s_data);
    free(text);
    json_decref(o);
    return rc;
}

hsm_err
hsm_vault_backup(hsm_vault *v, const char *path, const uint8_t *password,
                 size_t password_len, size_t *count)
{
    uint8_t salt[SALT_LEN], nonce[NONCE_LEN], key[32];
    char key_id[17];
    hsm_secret *pw = NULL;
    uint8_t *data = NULL;
    sbuf pt = {0};
    size_t n = 0;
    hsm_err rc;

    if (count)
        *count = 0;
    if (!v || !path || (password && password_len == 0))
        return HSM_EINVAL;
    if (!password) {
        if ((rc = hsm_vault_password(v, &pw)) != HSM_OK)
            return rc;
        password = pw->data;
        password_len = pw->len;
    }
    if ((rc = collect(v, &pt, &n)) != HSM_OK)
        goto out;
    kc_random(salt, sizeof salt);
    kc_random(nonce, sizeof nonce);
    if ((rc = backup_key(password, password_len, salt, key, key_id)) != HSM_OK)
        goto out;
    rc = HSM_ENOMEM;
    if (!(data = malloc(pt.len + TAG_LEN)))
        goto out;
    rc = hsm_aes_gcm(true, key, nonce, NULL, 0, pt.p, pt.len, data,
                     data + pt.len);
    if (rc != HSM_OK)
        goto out;
    rc = write_envelope(path, salt, nonce, key_id, data, pt.len + TAG_LEN, n);
    if (rc != HSM_OK)
        hsm_diag_set(hsm_vault_diag(v), "cannot write backup %.200s", path);
    else if (count)
        *count = n;
out:
    kc_wipe(key, sizeof key);
    kc_secure_free(pt.p);
    free(data);
    hsm_secret_free(pw);
    return rc;
}

/* ---- parsing ------------------------------------------------------- */

void
hsm_backup_env_clear(hsm_backup_env *env)
{
    if (!env)
        return;
    free(env->salt);
    free(env->nonce);
    free(env->data);
    memset(env, 0, sizeof *env);
}

static int
get_b64(json_t *o, const char *name, uint8_t **out, size_t *len)
{
    json_t *s = json_object_get(o, name);

    if (!json_is_string(s))
        return -1;
    return kc_b64_decode(json_string_value(s), json_string_length(s),
                         KC_B64_STD, out, len);
}

hsm_err
hsm_backup_env_parse(const uint8_t *text, size_t text_len, hsm_backup_env *env)
{
    json_error_t jerr;
    json_t *o, *ver, *cnt, *kid;
    hsm_err rc = HSM_EMALFORMED;

    memset(env, 0, sizeof *env);
    o = json_loadb((const char *)text, text_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o))
        goto out;
    ver = json_object_get(o, "version");
    cnt = json_object_get(o, "count");
    kid = json_object_get(o, "key_id");
    if (!json_is_integer(ver) || json_integer_value(ver) != 1 ||
        !json_is_integer(cnt) || json_integer_value(cnt) < 0 ||
        json_integer_value(cnt) > COUNT_MAX || !json_is_string(kid) ||
        json_string_length(kid) != 16)
        goto out;
    memcpy(env->key_id, json_string_value(kid), 16);
    env->key_id[16] = 0;
    env->count = (uint64_t)json_integer_value(cnt);
    if (get_b64(o, "salt", &env->salt, &env->salt_len) != 0 ||
        env->salt_len != SALT_LEN ||
        get_b64(o, "nonce", &env->nonce, &env->nonce_len) != 0 ||
        env->nonce_len != NONCE_LEN ||
        get_b64(o, "data", &env->data, &env->data_len) != 0 ||
        env->data_len < TAG_LEN + 2)
        goto out;
    rc = HSM_OK;
out:
    json_decref(o);
    if (rc != HSM_OK)
        hsm_backup_env_clear(env);
    return rc;
}

/* ---- restore ------------------------------------------------------- */

static hsm_err
decrypt_env(const hsm_backup_env *env, const uint8_t *pw, size_t pw_len,
            hsm_secret **pt, hsm_diag *diag)
{
    uint8_t key[32];
    char key_id[17];
    size_t ct_len = env->data_len - TAG_LEN;
    hsm_err rc;

    if ((rc = backup_key(pw, pw_len, env->salt, key, key_id)) != HSM_OK)
        return rc;
    if (!kc_ct_eq(key_id, env->key_id, 16)) {
        hsm_diag_set(diag, "wrong backup password");
        rc = HSM_EAUTH;
        goto out;
    }
    if ((rc = hsm_secret_new(ct_len, pt)) != HSM_OK)
        goto out;
    rc = hsm_aes_gcm(false, key, env->nonce, NULL, 0, env->data, ct_len,
                     (*pt)->data, env->data + ct_len);
    if (rc != HSM_OK) {
        hsm_secret_free(*pt);
        *pt = NULL;
        hsm_diag_set(diag, "backup failed authentication (damaged or "
                           "tampered with)");
        rc = HSM_ECORRUPT;
    }
out:
    kc_wipe(key, sizeof key);
    return rc;
}

/* Seal every item, then write them all in one transaction: a restore
 * changes nothing unless all of it applies. */
static hsm_err
store_all(hsm_vault *v, const hsm_backup_item *its, size_t n, bool overwrite)
{
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    uint8_t **recs = calloc(n ? n : 1, sizeof *recs);
    size_t *lens = calloc(n ? n : 1, sizeof *lens), conflict = 0;
    hsm_err rc = HSM_ENOMEM;

    if (!keys || !recs || !lens)
        goto out;
    rc = HSM_OK;
    for (size_t i = 0; i < n && rc == HSM_OK; i++) {
        keys[i] = its[i].key_id;
        rc =
            hsm_vault_seal(v, its[i].key_id, its[i].share->data,
                           its[i].share->len, &its[i].meta, &recs[i], &lens[i]);
    }
    if (rc == HSM_OK)
        rc = hsm_store_put_batch(hsm_vault_store_handle(v), "vault", keys,
                                 (const uint8_t *const *)recs, lens, n,
                                 !overwrite, &conflict);
    if (rc == HSM_EEXIST)
        hsm_diag_set(hsm_vault_diag(v),
                     "key share '%s' already exists (use overwrite)",
                     its[conflict].key_id);
out:
    for (size_t i = 0; recs && i < n; i++)
        free(recs[i]);
    free(recs);
    free(keys);
    free(lens);
    return rc;
}

hsm_err
hsm_vault_restore(hsm_vault *v, const char *path, const uint8_t *password,
                  size_t password_len, bool overwrite, size_t *count)
{
    hsm_backup_env env = {0};
    hsm_backup_item *its = NULL;
    hsm_secret *pw = NULL, *pt = NULL;
    uint8_t *text = NULL;
    size_t text_len = 0, n = 0;
    hsm_err rc;
    int r;

    if (count)
        *count = 0;
    if (!v || !path || (password && password_len == 0))
        return HSM_EINVAL;
    r = kc_read_file(path, BACKUP_MAX, false, &text, &text_len);
    if (r != 0) {
        hsm_diag_set(hsm_vault_diag(v), "cannot read backup %.200s: %s", path,
                     strerror(-r));
        return r == -ENOENT  ? HSM_ENOTFOUND
               : r == -EFBIG ? HSM_ETOOBIG
                             : HSM_EIO;
    }
    if ((rc = hsm_backup_env_parse(text, text_len, &env)) != HSM_OK) {
        hsm_diag_set(hsm_vault_diag(v), "%.200s is not a key-share backup",
                     path);
        goto out;
    }
    if (!password) {
        if ((rc = hsm_vault_password(v, &pw)) != HSM_OK)
            goto out;
        password = pw->data;
        password_len = pw->len;
    }
    rc = decrypt_env(&env, password, password_len, &pt, hsm_vault_diag(v));
    if (rc != HSM_OK)
        goto out;
    if (hsm_backup_list_parse(pt->data, pt->len, &its, &n) != HSM_OK ||
        n != env.count) {
        hsm_diag_set(hsm_vault_diag(v), "backup content is invalid");
        rc = HSM_ECORRUPT;
        goto out;
    }
    rc = store_all(v, its, n, overwrite);
    if (rc == HSM_OK && count)
        *count = n;
out:
    hsm_backup_items_free(its, n);
    hsm_secret_free(pt);
    hsm_secret_free(pw);
    hsm_backup_env_clear(&env);
    free(text);
    return rc;
}
