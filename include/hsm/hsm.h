/* SPDX-License-Identifier: Apache-2.0 */
/* libhsm: one C API through which the system gets passwords and signatures.
 *
 *   hsm_password_provider  get a password (for ZapDB, the vault ...) from
 *                          env, file, aws, gcp, azure or pkcs11
 *   hsm_signer             sign/verify with local (ECDSA P-256), mldsa,
 *                          aws, gcp, azure, zymbit or pkcs11 keys
 *   hsm_manager            one password provider + one signer from one config
 *   hsm_store              where providers keep persistent data (ZapDB)
 *   hsm_config             key/value configuration with environment fallbacks
 *
 * See vault.h (key-share vault) and threshold.h (attesting signer and
 * threshold interfaces). docs/hsm.md has the formats and provider list.
 *
 * THREAD SAFETY
 *   hsm_signer, hsm_password_provider, hsm_manager and hsm_store handles
 *   may be used from any number of threads at once (every provider is
 *   thread-safe). An hsm_config is not synchronised: do not modify one
 *   while another thread reads it (constructors copy what they need, so a
 *   config may be freed or changed once the constructor returned).
 *   The per-object diagnostic (hsm_*_last_error) is shared by the threads
 *   using the object: it reports the most recent failure on that object,
 *   returned in a per-thread buffer valid until the next *_last_error call
 *   in that thread.
 *
 * OWNERSHIP
 *   Buffers returned through `uint8_t **out, size_t *out_len` pairs (and
 *   `char **`) are allocated for the caller, who releases them with
 *   hsm_free(). Secrets (passwords, key shares) are returned as hsm_secret
 *   objects in locked memory, released with hsm_secret_free() (wipes).
 *   Input buffers are borrowed for the duration of the call only.
 *
 * KEY IDS
 *   A signer or vault key id is 1 to HSM_MAX_KEY_ID bytes of printable
 *   ASCII (0x21-0x7e) except '"' and '\\' (HSM_EINVAL otherwise). A NULL
 *   key id passed to a signer means the signer's configured default
 *   (config key "key_id"). A password provider's key id is provider
 *   specific (a file path for "file", a variable name for "env", a KMS key
 *   for the clouds), at most 4096 bytes.
 */
#ifndef HSM_HSM_H
#define HSM_HSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HSM_MAX_KEY_ID  255u
#define HSM_MAX_MESSAGE (64u * 1024u * 1024u) /* largest message to sign */
#define HSM_DETAIL_MAX  256u /* diagnostic strings, including the NUL */

/* ---- errors ------------------------------------------------------------ */

/* One table of errors and messages; hsm_strerror() never returns NULL.
 * A failed verification is NOT an error: verify returns HSM_OK with
 * *valid == false. */
#define HSM_ERROR_TABLE(X)                                                     \
    X(HSM_OK, "success")                                                       \
    X(HSM_EINVAL, "invalid argument")                                          \
    X(HSM_EUNKNOWN, "unknown provider")                                        \
    X(HSM_ENOTBUILT, "provider is not built in this version")                  \
    X(HSM_ENOTFOUND, "not found")                                              \
    X(HSM_EAUTH, "authentication failed (wrong password or PIN)")              \
    X(HSM_ECRYPTO, "cryptographic operation failed")                           \
    X(HSM_EIO, "I/O error")                                                    \
    X(HSM_EPERM, "permission denied (file mode)")                              \
    X(HSM_ENETWORK, "network error")                                           \
    X(HSM_ETIMEOUT, "timed out")                                               \
    X(HSM_EREMOTE, "remote service returned an error")                         \
    X(HSM_EMALFORMED, "malformed data or response")                            \
    X(HSM_ENOMEM, "out of memory")                                             \
    X(HSM_EEXIST, "already exists")                                            \
    X(HSM_ETOOBIG, "too big")                                                  \
    X(HSM_ECORRUPT, "data is corrupt or has been tampered with")               \
    X(HSM_EUNSUPPORTED, "operation not supported by this provider")            \
    X(HSM_ECONFIG, "missing or invalid configuration")                         \
    X(HSM_EINTERNAL, "internal error")

typedef enum {
#define HSM_X_ENUM(name, msg) name,
    HSM_ERROR_TABLE(HSM_X_ENUM)
#undef HSM_X_ENUM
        HSM_ERR_COUNT
} hsm_err;

/* Static message for an error code; unknown codes give "unknown error". */
const char *hsm_strerror(hsm_err err);

/* Release a non-secret buffer the library returned. NULL is a no-op. */
void hsm_free(void *p);
/* Release an array of strings returned by a list function. */
void hsm_list_free(char **list, size_t count);

/* ---- algorithms ------------------------------------------------------- */

/* What each algorithm's sign() signs, and the signature encoding:
 *
 *   ECDSA_P256_SHA256      sign(msg): ECDSA over SHA-256(msg);
 *                          sign_digest(d): ECDSA over the 32-byte d.
 *                          Signature: DER ECDSA-Sig-Value (SEQUENCE of two
 *                          INTEGERs, RFC 3279 2.2.3), whatever the backend
 *                          returns (raw r||s is converted).
 *   ECDSA_SECP256K1_SHA256 the same on secp256k1.
 *   ED25519                sign(msg): pure Ed25519 (RFC 8032) over msg;
 *                          64-byte signature. No sign_digest.
 *   RSA_PSS_SHA256         sign(msg): RSASSA-PSS, SHA-256, MGF1-SHA-256,
 *                          salt length 32, over SHA-256(msg);
 *                          sign_digest(d) over the 32-byte d.
 *   RSA_PKCS1_SHA256       RSASSA-PKCS1-v1_5 with SHA-256, likewise.
 *   ML_DSA_44/65/87        sign(msg): ML-DSA.Sign (FIPS 204 Algorithm 2,
 *                          hedged, empty context) over msg itself; the raw
 *                          FIPS 204 signature (2420/3309/4627 bytes).
 *                          No sign_digest.
 *
 * Public keys (hsm_signer_public_key) are DER SubjectPublicKeyInfo for every
 * algorithm. For ML-DSA the SPKI's AlgorithmIdentifier is id-ml-dsa-44/65/87
 * (2.16.840.1.101.3.4.3.17/18/19, no parameters) and its BIT STRING holds
 * the raw FIPS 204 public key (1312/1952/2592 bytes), as in RFC 9881. */
typedef enum {
    HSM_ALG_NONE = 0,
    HSM_ALG_ECDSA_P256_SHA256,
    HSM_ALG_ECDSA_SECP256K1_SHA256,
    HSM_ALG_ED25519,
    HSM_ALG_RSA_PSS_SHA256,
    HSM_ALG_RSA_PKCS1_SHA256,
    HSM_ALG_ML_DSA_44,
    HSM_ALG_ML_DSA_65,
    HSM_ALG_ML_DSA_87,
} hsm_alg;

/* "ECDSA_P256_SHA256", "ED25519", "ML_DSA_65" ...; "NONE" for unknown. */
const char *hsm_alg_name(hsm_alg alg);
/* Parse a name (case-insensitive; also "ES256", "P256", "ML-DSA-65",
 * "MLDSA65"). Returns HSM_OK or HSM_EINVAL. */
hsm_err hsm_alg_from_name(const char *name, hsm_alg *alg);

/* ---- configuration ---------------------------------------------------- */

typedef struct hsm_config hsm_config;

hsm_err hsm_config_new(hsm_config **out);
/* Set `key` to a copy of `value` (NULL removes the key). Keys are
 * case-sensitive, 1-64 bytes; values at most 4096 bytes.
 * Returns HSM_OK, HSM_EINVAL, HSM_ETOOBIG, HSM_ENOMEM. */
hsm_err hsm_config_set(hsm_config *cfg, const char *key, const char *value);
/* Parse "key=value" (the value may contain '='). */
hsm_err hsm_config_set_kv(hsm_config *cfg, const char *kv);
/* The value of `key`: the one set explicitly, else its environment
 * fallback (docs/hsm.md, DESIGN.md), else its built-in default, else NULL.
 * `cfg` may be NULL (environment and defaults only). The pointer stays
 * valid until the key is changed, the config freed or the environment
 * modified. Fallbacks:
 *   key_id      MPC_HSM_KEY_ID
 *   region      AWS_REGION, AWS_DEFAULT_REGION, "us-east-1"
 *   endpoint    AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL
 *   project_id  GCP_PROJECT_ID          location   GCP_KMS_LOCATION, "global"
 *   key_ring    GCP_KMS_KEYRING         crypto_key GCP_KMS_KEY
 *   vault_url   AZURE_VAULT_URL         key_name   AZURE_KEY_NAME
 *   key_version AZURE_KEY_VERSION
 *   path        MPC_PASSWORD_FILE
 *   api_addr    MPC_HSM_ZYMBIT_API, "http://localhost:6789"
 *   module      PKCS11_MODULE           token_label PKCS11_TOKEN_LABEL
 *   (env_var has no fallback: the env provider then tries MPC_PASSWORD,
 *   LUX_MPC_PASSWORD, ZAPDB_PASSWORD in that order.) */
const char *hsm_config_get(const hsm_config *cfg, const char *key);
/* Only the explicitly set value (no fallback), or NULL. */
const char *hsm_config_get_raw(const hsm_config *cfg, const char *key);
/* Number of explicitly set keys, and the i-th (in insertion order). */
size_t hsm_config_count(const hsm_config *cfg);
hsm_err hsm_config_entry(const hsm_config *cfg, size_t i, const char **key,
                         const char **value);
/* Deep copy (NULL copies to an empty config). */
hsm_err hsm_config_copy(const hsm_config *cfg, hsm_config **out);
/* Free; values are wiped (a config may carry a PIN). NULL is a no-op. */
void hsm_config_free(hsm_config *cfg);

/* ---- secrets ---------------------------------------------------------- */

/* A secret in locked, guarded memory: `len` bytes at `data`, followed by a
 * NUL byte that is not counted (so a password can be used as a C string).
 * Released with hsm_secret_free(), which wipes it. */
typedef struct hsm_secret {
    uint8_t *data;
    size_t len;
} hsm_secret;

/* New secret of `len` bytes (zeroed), or a copy of `src` (len bytes). */
hsm_err hsm_secret_new(size_t len, hsm_secret **out);
hsm_err hsm_secret_from(const void *src, size_t len, hsm_secret **out);
/* Wipe and free; NULL is a no-op. */
void hsm_secret_free(hsm_secret *s);

/* ---- persistent storage for providers ---------------------------------- */

/* A store is a set of namespaces (a provider uses its own: "signer.local",
 * "signer.mldsa", "vault" ...), each mapping string keys to byte values.
 * Backed by a ZapDB store (ZapDB bucket "<bucket>.<namespace>") or by
 * process memory. A store must outlive every signer, vault or manager
 * created with it. */
typedef struct hsm_store hsm_store;
struct zap_db;

/* Wrap an open ZapDB handle (borrowed: the caller closes it after freeing
 * the store). `bucket` (1-64 bytes, NULL for "hsm") prefixes bucket names. */
hsm_err hsm_store_from_zapdb(struct zap_db *db, const char *bucket,
                             hsm_store **out);
/* Open (creating it when `create`) the ZapDB store in directory `dir`
 * with `password`; the store owns the database and closes it when freed.
 * kdf_opslimit/kdf_memlimit: cost for a new store (0: ZapDB defaults).
 * Returns HSM_EAUTH for a wrong password, HSM_ENOTFOUND when there is no
 * store and !create, HSM_ECORRUPT, HSM_EIO. */
hsm_err hsm_store_open(const char *dir, const uint8_t *password,
                       size_t password_len, bool create, uint64_t kdf_opslimit,
                       size_t kdf_memlimit, hsm_store **out);
/* A store in process memory (lost at exit; for tests and development). */
hsm_err hsm_store_new_memory(hsm_store **out);
void hsm_store_free(hsm_store *st);

/* Values may be secret: they are returned in locked memory. HSM_ENOTFOUND
 * when absent. */
hsm_err hsm_store_get(hsm_store *st, const char *ns, const char *key,
                      hsm_secret **val);
/* Insert or replace. */
hsm_err hsm_store_put(hsm_store *st, const char *ns, const char *key,
                      const uint8_t *val, size_t val_len);
/* Insert only if absent, atomically (HSM_EEXIST otherwise). */
hsm_err hsm_store_put_new(hsm_store *st, const char *ns, const char *key,
                          const uint8_t *val, size_t val_len);
/* Delete; HSM_ENOTFOUND if absent. */
hsm_err hsm_store_del(hsm_store *st, const char *ns, const char *key);
/* The keys of a namespace, sorted bytewise (empty list if none); release
 * with hsm_list_free(). */
hsm_err hsm_store_list(hsm_store *st, const char *ns, char ***keys,
                       size_t *count);

/* ---- signers ----------------------------------------------------------- */

typedef struct hsm_signer hsm_signer;

/* Signer provider names (after trimming blanks and folding case):
 * "" and "local", "mldsa" ("pq", "post-quantum"), "aws", "gcp", "azure",
 * "zymbit", "pkcs11". Returns HSM_EUNKNOWN for an unknown name (the detail
 * lists the valid names), HSM_ENOTBUILT for a provider not compiled in,
 * HSM_ECONFIG for missing configuration, or the provider's error.
 * `config` may be NULL (environment only); it is copied. `store` may be
 * NULL (keys of local/mldsa then live in memory only). `detail` (may be
 * NULL) receives a diagnostic on failure, never secret. */
hsm_err hsm_signer_new_ex(const char *name, const hsm_config *config,
                          hsm_store *store, hsm_signer **out, char *detail,
                          size_t detail_cap);
hsm_err hsm_signer_new(const char *name, const hsm_config *config,
                       hsm_signer **out);
void hsm_signer_free(hsm_signer *s);

/* Canonical provider name ("local", "mldsa" ...), never NULL. */
const char *hsm_signer_provider(const hsm_signer *s);
/* The algorithm this signer's keys use. */
hsm_alg hsm_signer_algorithm(const hsm_signer *s);

/* Sign `msg` (0 to HSM_MAX_MESSAGE bytes) with key `key_id` (NULL: the
 * configured key_id); see hsm_alg for what is signed and the encoding.
 * *sig is released with hsm_free(). Returns HSM_OK, HSM_EINVAL,
 * HSM_ETOOBIG, HSM_ENOTFOUND (no such key, for providers that do not
 * create keys), HSM_ECRYPTO, network/remote errors. */
hsm_err hsm_signer_sign(hsm_signer *s, const char *key_id, const uint8_t *msg,
                        size_t msg_len, uint8_t **sig, size_t *sig_len);
/* Sign a precomputed 32-byte SHA-256 digest (ECDSA and RSA algorithms
 * only; HSM_EUNSUPPORTED otherwise). */
hsm_err hsm_signer_sign_digest(hsm_signer *s, const char *key_id,
                               const uint8_t *digest, size_t digest_len,
                               uint8_t **sig, size_t *sig_len);
/* Verify: HSM_OK with *valid set (false for a bad or malformed signature),
 * HSM_ENOTFOUND for an unknown key (never creates one). */
hsm_err hsm_signer_verify(hsm_signer *s, const char *key_id, const uint8_t *msg,
                          size_t msg_len, const uint8_t *sig, size_t sig_len,
                          bool *valid);
hsm_err hsm_signer_verify_digest(hsm_signer *s, const char *key_id,
                                 const uint8_t *digest, size_t digest_len,
                                 const uint8_t *sig, size_t sig_len,
                                 bool *valid);
/* Public key as DER SubjectPublicKeyInfo (HSM_ENOTFOUND if the key does
 * not exist; local/mldsa do not create keys here). */
hsm_err hsm_signer_public_key(hsm_signer *s, const char *key_id, uint8_t **der,
                              size_t *der_len);
/* Most recent failure's diagnostic on this signer ("" if none), copied
 * into a per-thread buffer valid until the next *_last_error call in the
 * same thread. With several threads failing at once it reports one of
 * the failures. */
const char *hsm_signer_last_error(const hsm_signer *s);

/* ---- password providers ------------------------------------------------ */

typedef struct hsm_password_provider hsm_password_provider;

/* Password provider names: "" and "env", "file", "aws", "gcp", "azure",
 * "pkcs11". Errors as for hsm_signer_new_ex(). */
hsm_err hsm_password_provider_new_ex(const char *name, const hsm_config *config,
                                     hsm_password_provider **out, char *detail,
                                     size_t detail_cap);
hsm_err hsm_password_provider_new(const char *name, const hsm_config *config,
                                  hsm_password_provider **out);
void hsm_password_provider_free(hsm_password_provider *p);
const char *hsm_password_provider_name(const hsm_password_provider *p);

/* Get the password for `key_id` (meaning depends on the provider: for
 * "file" a path, for "env" a variable name, for "aws" a KMS key id; NULL
 * uses the configuration).
 * Returns HSM_OK, HSM_ENOTFOUND (variable unset, file missing),
 * HSM_EPERM (file readable by group/others), HSM_EINVAL (empty password),
 * HSM_EAUTH, network/remote errors. */
hsm_err hsm_password_get(hsm_password_provider *p, const char *key_id,
                         hsm_secret **out);
const char *hsm_password_provider_last_error(const hsm_password_provider *p);

/* ---- manager ----------------------------------------------------------- */

/* A manager holds one password provider and one signer built from one
 * config (copied, never modified). Keys it reads:
 *   password_provider  provider name (default "" = env)
 *   password_key_id    key id for get_password (default: key_id)
 *   signer             signer name (default "" = local)
 *   signer_key_id      default key for sign/verify (default: key_id)
 * Every other key is passed to both providers; "password.<k>" and
 * "signer.<k>" set <k> for that provider only (overriding the shared one).
 * Errors as for the two constructors. */
typedef struct hsm_manager hsm_manager;

hsm_err hsm_manager_new(const hsm_config *config, hsm_store *store,
                        hsm_manager **out, char *detail, size_t detail_cap);
void hsm_manager_free(hsm_manager *m);
hsm_err hsm_manager_get_password(hsm_manager *m, hsm_secret **out);
hsm_err hsm_manager_sign(hsm_manager *m, const uint8_t *msg, size_t msg_len,
                         uint8_t **sig, size_t *sig_len);
hsm_err hsm_manager_sign_with_key(hsm_manager *m, const char *key_id,
                                  const uint8_t *msg, size_t msg_len,
                                  uint8_t **sig, size_t *sig_len);
hsm_err hsm_manager_verify(hsm_manager *m, const uint8_t *msg, size_t msg_len,
                           const uint8_t *sig, size_t sig_len, bool *valid);
hsm_err hsm_manager_verify_with_key(hsm_manager *m, const char *key_id,
                                    const uint8_t *msg, size_t msg_len,
                                    const uint8_t *sig, size_t sig_len,
                                    bool *valid);
/* Borrowed handles (valid until hsm_manager_free). */
hsm_signer *hsm_manager_signer(hsm_manager *m);
hsm_password_provider *hsm_manager_password_provider(hsm_manager *m);

/* ---- encodings ---------------------------------------------------------- */

/* Largest DER ECDSA signature for a field of `n` bytes (n <= 66). */
#define HSM_ECDSA_DER_MAX(n) (2u * ((n) + 3u) + 3u)

/* Raw r||s (each exactly `raw_len`/2 bytes, big-endian, as PKCS#11 and
 * Azure return them) to DER. raw_len must be even, 2..132. Returns HSM_OK,
 * HSM_EINVAL (bad length, r or s zero), HSM_ETOOBIG (der_cap too small). */
hsm_err hsm_ecdsa_raw_to_der(const uint8_t *raw, size_t raw_len, uint8_t *der,
                             size_t der_cap, size_t *der_len);
/* Strict DER (minimal lengths, minimal positive INTEGERs, no trailing
 * bytes) to raw r||s with each half `field_len` bytes (32 for P-256);
 * raw_cap >= 2*field_len. HSM_EMALFORMED for bad DER or an integer
 * longer than field_len. */
hsm_err hsm_ecdsa_der_to_raw(const uint8_t *der, size_t der_len,
                             size_t field_len, uint8_t *raw, size_t raw_cap,
                             size_t *raw_len);

/* DER SubjectPublicKeyInfo <-> PEM ("-----BEGIN PUBLIC KEY-----", base64
 * lines of 64). *pem is NUL-terminated, released with hsm_free(). */
hsm_err hsm_pubkey_der_to_pem(const uint8_t *der, size_t der_len, char **pem);
hsm_err hsm_pubkey_pem_to_der(const char *pem, size_t pem_len, uint8_t **der,
                              size_t *der_len);

/* Verify a signature against a DER SubjectPublicKeyInfo without any
 * provider (ECDSA P-256/secp256k1, Ed25519, RSA; ML-DSA when built with
 * the ML-DSA primitive, else HSM_EUNSUPPORTED). *valid as for verify. */
hsm_err hsm_verify_with_public_key(hsm_alg alg, const uint8_t *spki,
                                   size_t spki_len, const uint8_t *msg,
                                   size_t msg_len, const uint8_t *sig,
                                   size_t sig_len, bool *valid);

#ifdef __cplusplus
}
#endif
#endif
