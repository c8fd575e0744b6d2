/* SPDX-License-Identifier: Apache-2.0 */
/* p11: libhsm's internal PKCS#11 layer (never installed).
 *
 * A thin, self-contained layer over the PKCS#11 v2.40/3.0 C API (p11-kit's
 * standard header, in its "GNU" naming so that no lower-case compatibility
 * macros leak into the including file):
 *
 *   p11_module   one loaded module (dlopen + C_GetFunctionList +
 *                C_Initialize with CKF_OS_LOCKING_OK), shared by every user
 *                of the same file (reference counted; C_Finalize on the last
 *                release).
 *   p11_token    one token, found by label or serial (never by slot number
 *                alone), logged in as CKU_USER, with a pool of up to
 *                P11_POOL_MAX sessions opened on demand.
 *   key operations (p11_keys.c): find by label or CKA_ID, sign, decrypt,
 *                generate, list, export the public key as DER SPKI.
 *
 * ERRORS
 *   Every function returns a ck_rv_t: a PKCS#11 CKR_* code from the module,
 *   or one of the P11R_* codes below for failures outside the module (they
 *   live in the vendor-defined range). When `d` is non-NULL, a failure
 *   fills it with a message naming the PKCS#11 function and code, e.g.
 *   "pkcs11: C_Login: CKR_PIN_INCORRECT (wrong PIN)". Messages never hold a
 *   PIN or key material. p11_rv_class() sorts a code into the categories
 *   callers act on; p11_rv_name() and the message text come from one table
 *   in p11.c.
 *
 * THREAD SAFETY
 *   p11_module_acquire/release may be called from any thread. A p11_token
 *   may be used by any number of threads at once: each operation takes a
 *   session from the token's pool for its duration, so up to P11_POOL_MAX
 *   operations run in parallel and further callers wait for a session.
 *   p11_token_close() must not race with operations on the same token.
 *
 * SESSIONS
 *   An operation that fails because its session is gone
 *   (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED,
 *   CKR_TOKEN_NOT_PRESENT) or because the token forgot the login
 *   (CKR_USER_NOT_LOGGED_IN) is retried once on a fresh session (the token
 *   is looked up again by label/serial and logged in again); a second
 *   failure is reported.
 */
#ifndef HSM_P11_H
#define HSM_P11_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef CRYPTOKI_GNU
#define CRYPTOKI_GNU 1
#endif
#include <p11-kit/pkcs11.h>

/* The GNU naming drops CK_TRUE/CK_FALSE. */
#ifndef CK_TRUE
#define CK_TRUE  1
#define CK_FALSE 0
#endif

#define P11_POOL_MAX  8u   /* sessions per token */
#define P11_LABEL_MAX 128u /* longest CKA_LABEL we create or print */
#define P11_ID_MAX    64u  /* longest CKA_ID in bytes */
#define P11_DIAG_MAX  256u
#define P11_MAX_DATA  (64u * 1024u * 1024u) /* cap on messages/blobs */

/* Codes for failures outside the module (vendor-defined range, so they can
 * never collide with a real CKR_*). */
#define P11R_BASE             (CKR_VENDOR_DEFINED | 0x4b4d0000UL)
#define P11R_MODULE_LOAD      (P11R_BASE + 1) /* dlopen failed */
#define P11R_MODULE_SYMBOL    (P11R_BASE + 2) /* no C_GetFunctionList */
#define P11R_MODULE_PATH      (P11R_BASE + 3) /* not an absolute path */
#define P11R_TOKEN_NOT_FOUND  (P11R_BASE + 4)
#define P11R_TOKEN_AMBIGUOUS  (P11R_BASE + 5)
#define P11R_KEY_NOT_FOUND    (P11R_BASE + 6)
#define P11R_KEY_AMBIGUOUS    (P11R_BASE + 7)
#define P11R_KEY_EXISTS       (P11R_BASE + 8)
#define P11R_BAD_INPUT        (P11R_BASE + 9)
#define P11R_UNSUPPORTED_KEY  (P11R_BASE + 10)
#define P11R_UNSUPPORTED_MECH (P11R_BASE + 11)
#define P11R_ENCODING         (P11R_BASE + 12) /* OpenSSL encode/decode */
#define P11R_BAD_BLOB         (P11R_BASE + 13) /* malformed wrapped blob */
#define P11R_DECRYPT_FAILED   (P11R_BASE + 14) /* bad tag/padding */

/* What a caller does about a code. */
typedef enum {
    P11_C_OK = 0,
    P11_C_AUTH,        /* wrong/locked/expired PIN */
    P11_C_NOT_FOUND,   /* token or key not found */
    P11_C_EXISTS,      /* key with that label/id exists */
    P11_C_SESSION,     /* session/login lost: retried once */
    P11_C_UNSUPPORTED, /* mechanism, key type or function not available */
    P11_C_INVALID,     /* bad argument or input */
    P11_C_BAD_SIG,     /* signature invalid (not an error for verify) */
    P11_C_DECRYPT,     /* ciphertext rejected (tampered or wrong key) */
    P11_C_CONFIG,      /* module cannot be loaded, ambiguous token/key */
    P11_C_NOMEM,
    P11_C_DEVICE, /* anything else the token reported */
} p11_class;

typedef struct {
    char msg[P11_DIAG_MAX];
} p11_diag;

/* "CKR_PIN_INCORRECT", "P11R_KEY_NOT_FOUND", or "CKR_0x%08lx" style
 * "unknown" for codes outside the table (never NULL). */
const char *p11_rv_name(ck_rv_t rv);
p11_class p11_rv_class(ck_rv_t rv);
/* Fill `d` (may be NULL) with "pkcs11: <fn>: <NAME> (<hint>)[: <detail>]".
 * `detail` is a printf format for non-secret context (a label, a path).
 * Returns rv, so that `return p11_fail(d, "C_Login", rv, NULL);` works. */
ck_rv_t p11_fail(p11_diag *d, const char *fn, ck_rv_t rv, const char *detail,
                 ...) __attribute__((format(printf, 4, 5)));

/* ---- modules ------------------------------------------------------------ */

typedef struct p11_module p11_module;

/* Load (or share the already loaded) module at absolute path `path`.
 * Returns CKR_OK, P11R_MODULE_PATH, P11R_MODULE_LOAD, P11R_MODULE_SYMBOL,
 * CKR_HOST_MEMORY, or C_Initialize's failure. */
ck_rv_t p11_module_acquire(const char *path, p11_module **out, p11_diag *d);
/* Drop one reference; the last one runs C_Finalize (when we initialised the
 * module). NULL is a no-op. */
void p11_module_release(p11_module *m);
/* The module's function list (borrowed, valid while referenced). */
struct ck_function_list *p11_module_functions(const p11_module *m);

/* ---- tokens ------------------------------------------------------------- */

typedef struct p11_token p11_token;

/* Which token: by label (<= 32 bytes) and/or serial (<= 16 bytes); at
 * least one must be given. When both are, both must match. */
typedef struct {
    const char *label;
    const char *serial;
} p11_token_sel;

/* Find the token, open one session and log in as CKU_USER with the PIN
 * (copied into locked memory, kept for re-login, wiped on close).
 * Takes a reference on `m`. Returns CKR_OK, P11R_TOKEN_NOT_FOUND,
 * P11R_TOKEN_AMBIGUOUS, CKR_PIN_INCORRECT and other C_Login codes, ... */
ck_rv_t p11_token_open(p11_module *m, const p11_token_sel *sel,
                       const uint8_t *pin, size_t pin_len, p11_token **out,
                       p11_diag *d);
/* Close every session, wipe the PIN, release the module. NULL no-op. */
void p11_token_close(p11_token *t);
struct ck_function_list *p11_token_functions(const p11_token *t);
ck_slot_id_t p11_token_slot(p11_token *t);
/* Does the token list mechanism `mech` (from C_GetMechanismList at open)? */
bool p11_token_has_mech(const p11_token *t, ck_mechanism_type_t mech);
/* Sessions currently open (idle + in use); for tests and diagnostics. */
size_t p11_token_session_count(p11_token *t);

/* Run `op` on a pooled, logged-in session, retrying once on a fresh
 * session as described under SESSIONS. `fn` names the PKCS#11 function
 * for messages about getting a session. `op` must fill `d` itself on
 * failure and must be safe to run twice. */
typedef ck_rv_t (*p11_op_fn)(p11_token *t, ck_session_handle_t s, void *ctx,
                             p11_diag *d);
ck_rv_t p11_token_run(p11_token *t, p11_op_fn op, void *ctx, p11_diag *d);

/* ---- keys (p11_keys.c) -------------------------------------------------- */

/* A key reference: "label:NAME" (CKA_LABEL), "id:HEX" (CKA_ID), or a bare
 * string, which matches CKA_LABEL and, when no label matches and the string
 * is hex, CKA_ID. */
typedef enum {
    P11_KEY_EC_P256 = 1,
    P11_KEY_ED25519,
    P11_KEY_RSA,
    P11_KEY_AES,
} p11_key_kind;

typedef struct {
    p11_key_kind kind;
    unsigned long bits; /* RSA: 2048..8192; AES: 128/256; else 0 */
    bool decrypt;       /* RSA: decrypt (OAEP) instead of sign */
    const char *label;  /* required, 1..P11_LABEL_MAX bytes */
    const uint8_t *id;  /* required, 1..P11_ID_MAX bytes */
    size_t id_len;
} p11_keyspec;

/* Generate a key (pair) on the token: CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE true, CKA_EXTRACTABLE false. P11R_KEY_EXISTS if a key with
 * the same label or id exists; P11R_UNSUPPORTED_MECH if the token lacks the
 * generation mechanism. */
ck_rv_t p11_keygen(p11_token *t, const p11_keyspec *spec, p11_diag *d);

typedef struct {
    char label[P11_LABEL_MAX + 1];
    uint8_t id[P11_ID_MAX];
    size_t id_len;
    ck_object_class_t cls; /* CKO_PRIVATE_KEY or CKO_SECRET_KEY */
    ck_key_type_t type;
    unsigned long bits; /* RSA modulus / AES key size when known */
    bool sensitive, extractable;
} p11_keyinfo;

/* Private and secret keys on the token (up to 4096). *keys is released
 * with free(). */
ck_rv_t p11_list_keys(p11_token *t, p11_keyinfo **keys, size_t *count,
                      p11_diag *d);

/* Public key of private key `ref` as DER SubjectPublicKeyInfo (malloc'd,
 * released with free()). Read from the matching CKO_PUBLIC_KEY object
 * (same CKA_ID, else same label), or from the private key's
 * CKA_PUBLIC_KEY_INFO / RSA modulus and exponent. *type receives the key
 * type (CKK_EC, CKK_EC_EDWARDS, CKK_RSA). */
ck_rv_t p11_public_key(p11_token *t, const char *ref, uint8_t **der,
                       size_t *der_len, ck_key_type_t *type, p11_diag *d);

/* Sign with private key `ref`, choosing the mechanism by its key type:
 *   CKK_EC          CKM_ECDSA over `data` (the caller's 32-byte digest);
 *                   the token's raw r||s is returned unchanged;
 *   CKK_EC_EDWARDS  CKM_EDDSA over `data` (the whole message);
 *   CKK_RSA         CKM_RSA_PKCS_PSS (SHA-256, MGF1-SHA-256, salt 32) over
 *                   `data` (a 32-byte SHA-256 digest).
 * `want` (P11_ANY_KEY = any; note CKK_RSA is 0) rejects a key of another
 * type with P11R_UNSUPPORTED_KEY. *sig is malloc'd (free()). */
#define P11_ANY_KEY ((ck_key_type_t)CK_UNAVAILABLE_INFORMATION)
ck_rv_t p11_sign(p11_token *t, const char *ref, ck_key_type_t want,
                 const uint8_t *data, size_t data_len, uint8_t **sig,
                 size_t *sig_len, ck_key_type_t *type, p11_diag *d);

/* The type of private key `ref` (CKK_EC, CKK_EC_EDWARDS, CKK_RSA). */
ck_rv_t p11_key_type(p11_token *t, const char *ref, ck_key_type_t *type,
                     p11_diag *d);

/* Decrypt a wrapped secret with key `ref`:
 *   RSA private key  CKM_RSA_PKCS_OAEP, SHA-256, MGF1-SHA-256, no label;
 *   AES secret key   CKM_AES_GCM, blob = nonce(12) || ciphertext || tag(16),
 *                    no associated data.
 * The plaintext goes straight into kc_secure_alloc memory (*out, with a NUL
 * after *out_len bytes; release with kc_secure_free()). A tampered blob
 * gives a P11_C_DECRYPT code. */
ck_rv_t p11_unwrap_secret(p11_token *t, const char *ref, const uint8_t *blob,
                          size_t blob_len, uint8_t **out, size_t *out_len,
                          p11_diag *d);
/* The inverse, on the token (RSA: the public key object; AES: a random
 * nonce). *blob is malloc'd (free()). */
ck_rv_t p11_wrap_secret(p11_token *t, const char *ref, const uint8_t *secret,
                        size_t secret_len, uint8_t **blob, size_t *blob_len,
                        p11_diag *d);

#define P11_GCM_NONCE_LEN 12u
#define P11_GCM_TAG_LEN   16u

#endif
