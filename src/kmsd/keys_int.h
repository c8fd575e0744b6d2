/* SPDX-License-Identifier: Apache-2.0 */
/* The named-key engine shared by the native keys API (keys.c) and the AWS
 * KMS-compatible endpoint (awskms.c). See docs/keys.md.
 *
 * Keys live per organisation in table "keys/<org>", one JSON record per key
 * name: type, backend, state, versions (soft key material, public keys),
 * rotation settings, tags. The store (ZapDB) encrypts every record at rest;
 * key material never leaves kmsd except through export of an exportable
 * key. Aliases live in "keyalias/<org>" (alias name -> key name).
 *
 * Every function authorises the caller (kms_authorize() on "keys/<name>"
 * with the capability of the operation) before touching key material, and
 * records the key name and version in c->audit.
 *
 * THREAD SAFETY: as kms_dispatch(): any number of threads; each call opens
 * its own store transaction. */
#ifndef KMSD_KEYS_INT_H
#define KMSD_KEYS_INT_H

#include "kmsd_int.h"

#define KMS_KEY_PT_MAX     65536u /* native encrypt plaintext limit */
#define KMS_KEY_RANDOM_MAX 1024u
#define KMS_KEY_BLOB_MAGIC "kmsc"
#define KMS_KEY_BLOB_FMT   1u
#define KMS_KEY_BATCH_MAX  100u

typedef enum {
    KMS_KT_AES256_GCM = 0,
    KMS_KT_CHACHA20_POLY1305,
    KMS_KT_ECDSA_P256,
    KMS_KT_ECDSA_SECP256K1,
    KMS_KT_ED25519,
    KMS_KT_ML_DSA_44,
    KMS_KT_ML_DSA_65,
    KMS_KT_ML_DSA_87,
    KMS_KT_COUNT
} kms_key_type;

/* Type by native name ("aes256-gcm" ...); -1 if unknown. */
int kms_key_type_parse(const char *name);
const char *kms_key_type_name(kms_key_type t);
bool kms_key_type_symmetric(kms_key_type t);
/* The record's type, or -1 for a damaged record. */
int kms_key_rec_type(const json_t *rec);

typedef struct kms_key_create_opts {
    const char *name;             /* required: kms_valid_ident() */
    const char *type;             /* native type name */
    const char *backend;          /* "soft" (default) or an external backend */
    const char *description;      /* may be NULL */
    const json_t *backend_config; /* object: backend reference, or NULL */
    const json_t *tags;           /* object of strings, or NULL */
    uint64_t rotation_period;     /* seconds, 0: none */
    bool exportable;
    /* Imported material for version 1 (soft keys), or NULL to generate:
     * 32 raw bytes (symmetric), PKCS#8 DER (ECDSA, Ed25519) or the raw
     * FIPS 204 private key (ML-DSA). */
    const uint8_t *material;
    size_t material_len;
    /* Create without material, in state "pending_import" (AWS Origin
     * EXTERNAL); an import of the same type later fills version 1. */
    bool pending_import;
} kms_key_create_opts;

/* Create a key (capability create). *out gets a copy of the record. */
kms_err kms_key_create(kms_ctx *c, const char *org,
                       const kms_key_create_opts *o, json_t **out);
/* The key record by name (capability `cap`, 0: none checked). Keys past
 * their deletion date are gone: KMS_ENOTFOUND. */
kms_err kms_key_get(kms_ctx *c, const char *org, const char *name, unsigned cap,
                    json_t **out);
/* The public description of a record (no key material). */
json_t *kms_key_view(const json_t *rec);

typedef enum {
    KMS_KEY_ENABLE,
    KMS_KEY_DISABLE,
    KMS_KEY_SCHEDULE_DELETE,
    KMS_KEY_CANCEL_DELETE,
    KMS_KEY_ROTATE,
    KMS_KEY_CONFIG, /* rotation period, minimum decryption version */
    KMS_KEY_TAG,
    KMS_KEY_UNTAG,
} kms_key_op;

typedef struct kms_key_op_args {
    uint32_t pending_days;     /* SCHEDULE_DELETE: 7-30 */
    bool immediate;            /* SCHEDULE_DELETE by root: delete now */
    const json_t *rotation;    /* CONFIG: seconds (0 disables) or NULL */
    const json_t *min_decrypt; /* CONFIG: version or NULL */
    const json_t *tags;        /* TAG: object; UNTAG: array of names */
} kms_key_op_args;

/* Change a key's state; *out (optional) gets the new record. */
kms_err kms_key_update(kms_ctx *c, const char *org, const char *name,
                       kms_key_op op, const kms_key_op_args *a, json_t **out);

/* Encrypt with the current version. `aad_ctx` is an object of strings or
 * NULL. *blob is malloc'd (free()). */
kms_err kms_key_encrypt(kms_ctx *c, const char *org, const char *name,
                        const uint8_t *pt, size_t pt_len, const json_t *aad_ctx,
                        uint8_t **blob, size_t *blob_len, uint32_t *version);
/* Decrypt a blob. `name` NULL: the key named in the blob; else the blob
 * must name this key. *pt is malloc'd: kc_free_wipe(*pt, *pt_len).
 * `key_name` (optional, KMS_NAME_MAX+1) gets the key's name. */
kms_err kms_key_decrypt(kms_ctx *c, const char *org, const char *name,
                        const uint8_t *blob, size_t blob_len,
                        const json_t *aad_ctx, uint8_t **pt, size_t *pt_len,
                        char *key_name, uint32_t *version);
/* The key a blob names (no authorisation, no decryption). */
kms_err kms_key_blob_name(const uint8_t *blob, size_t blob_len,
                          char name[KMS_NAME_MAX + 1]);

typedef enum {
    KMS_SIGN_RAW,    /* the message itself */
    KMS_SIGN_DIGEST, /* ECDSA: SHA-256 digest; ML-DSA: external mu */
} kms_sign_mode;

/* Sign with the current version. *sig malloc'd. ECDSA: DER. */
kms_err kms_key_sign(kms_ctx *c, const char *org, const char *name,
                     kms_sign_mode mode, const uint8_t *msg, size_t msg_len,
                     uint8_t **sig, size_t *sig_len, uint32_t *version);
/* Verify with `version` (0: current). */
kms_err kms_key_verify(kms_ctx *c, const char *org, const char *name,
                       kms_sign_mode mode, const uint8_t *msg, size_t msg_len,
                       const uint8_t *sig, size_t sig_len, uint32_t version,
                       bool *valid);
/* DER SubjectPublicKeyInfo of the current version (malloc'd). */
kms_err kms_key_public_der(kms_ctx *c, const char *org, const char *name,
                           uint8_t **der, size_t *der_len);
/* PEM text of a DER SPKI (malloc'd). */
char *kms_pem_public(const uint8_t *der, size_t der_len);

/* Aliases (AWS): "alias/x" -> key name. */
kms_err kms_alias_resolve(kms_ctx *c, const char *org, const char *alias,
                          char name[KMS_NAME_MAX + 1]);

/* Bring your own key, step 1 (capability create on keys/<name>): a fresh
 * RSA-3072 wrapping key and a one-time import token for `name`, valid 24
 * hours. *pem and *token are malloc'd. */
kms_err kms_key_import_params(kms_ctx *c, const char *org, const char *name,
                              char **pem, char **token, int64_t *expires);
/* Step 2: unwrap `wrapped` (RSAES-OAEP, SHA-256, MGF1-SHA-256) with the
 * token's wrapping key and create the key with that material. The token
 * is consumed whether or not the import succeeds. */
kms_err kms_key_import(kms_ctx *c, const char *org,
                       const kms_key_create_opts *o, const char *token,
                       const uint8_t *wrapped, size_t wrapped_len,
                       json_t **out);

/* Remove keys past their deletion date (their material with them) and
 * expired import tokens, in every org; *count gets how many records went.
 * main.c runs it each minute with the token sweep. */
kms_err kms_keys_sweep(kms_srv *srv, size_t *count);

/* All keys of an org the caller may see: array of records (views). */
kms_err kms_key_list(kms_ctx *c, const char *org, json_t **out);

#endif
