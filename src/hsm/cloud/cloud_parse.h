/* SPDX-License-Identifier: Apache-2.0 */
/* Response parsers of the cloud providers, callable without the network
 * (the providers use them; fuzz/fuzz_cloud_parse.c feeds them arbitrary
 * bytes). Internal, never installed. This header depends on nothing but
 * the C library so that a fuzz target can include it alone.
 *
 * Every parser takes the raw body (`body`, `len`, not NUL-terminated),
 * never crashes on any input, and returns one of the CP_* codes. Outputs
 * are written only on CP_OK. Secret outputs (credentials, tokens,
 * plaintext) are allocated with kc_secure_alloc (release with
 * kc_secure_free) and are NUL-terminated.
 *
 * THREAD SAFETY: reentrant, no state.
 */
#ifndef HSM_CLOUD_PARSE_H
#define HSM_CLOUD_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum {
    CP_OK = 0,
    CP_EJSON = -1,     /* not a JSON object */
    CP_EMISSING = -2,  /* a required field is absent or of the wrong type */
    CP_EENCODING = -3, /* bad base64 / PEM / JWK / number */
    CP_ENOMEM = -4,
    CP_ETOOBIG = -5, /* a field longer than its limit */
};

/* Short text for a CP_* code ("malformed JSON", "missing field" ...). */
const char *hsm_cp_strerror(int rc);

/* AWS JSON 1.1 error body {"__type": "prefix#Type", "message"|"Message"}.
 * `type` gets the type with any "prefix#" removed; `msg` the message
 * ("" when absent), both truncated to their capacity and with control
 * characters replaced. CP_EMISSING without __type. */
int hsm_cp_aws_error(const uint8_t *body, size_t len, char *type,
                     size_t type_cap, char *msg, size_t msg_cap);

/* GCP / Azure error body {"error": {"code": .., "message": .., "status":
 * ..}}; `code` gets status (GCP) or code (Azure) as text. */
int hsm_cp_error_object(const uint8_t *body, size_t len, char *code,
                        size_t code_cap, char *msg, size_t msg_cap);

/* IMDSv2 role credentials {"Code": "Success", "AccessKeyId", "SecretAccess
 * Key", "Token", "Expiration": "YYYY-MM-DDTHH:MM:SSZ"}. */
typedef struct {
    char *access_key_id;     /* secure */
    char *secret_access_key; /* secure */
    char *session_token;     /* secure, may be NULL */
    time_t expiration;       /* 0 when absent */
} hsm_cp_aws_creds;
int hsm_cp_imds_credentials(const uint8_t *body, size_t len,
                            hsm_cp_aws_creds *out);
void hsm_cp_aws_creds_clear(hsm_cp_aws_creds *c);

/* OAuth2 access token responses: GCE metadata {"access_token",
 * "expires_in": n, "token_type"} and Azure managed identity
 * {"access_token", "expires_in": "n" | n, "expires_on": "epoch" | n}.
 * *expires = now + expires_in, else expires_on, else now + 300. */
int hsm_cp_token(const uint8_t *body, size_t len, time_t now, char **token,
                 size_t *token_len, time_t *expires);

/* A base64 (url: base64url, padding optional) string field of a top-level
 * object, decoded. With `secure` the result is in secure memory
 * (kc_secure_free), else malloc'd (free). `max` caps the decoded size. */
int hsm_cp_b64_field(const uint8_t *body, size_t len, const char *field,
                     bool url, bool secure, size_t max, uint8_t **out,
                     size_t *out_len);

/* A boolean field of a top-level object. */
int hsm_cp_bool_field(const uint8_t *body, size_t len, const char *field,
                      bool *out);

/* GCP getPublicKey {"pem": "-----BEGIN PUBLIC KEY-----..."} to DER
 * SubjectPublicKeyInfo (malloc'd). */
int hsm_cp_pem_field_to_spki(const uint8_t *body, size_t len, const char *field,
                             uint8_t **der, size_t *der_len);

/* Azure key bundle {"key": {"kty": "EC", "crv": "P-256", "x", "y"}} to DER
 * SubjectPublicKeyInfo (malloc'd). Only EC P-256. */
int hsm_cp_azure_jwk_to_spki(const uint8_t *body, size_t len, uint8_t **der,
                             size_t *der_len);

/* "2017-05-17T15:09:54Z" (RFC 3339, UTC, optional fraction) to time_t. */
int hsm_cp_parse_rfc3339(const char *s, time_t *t);

#endif
