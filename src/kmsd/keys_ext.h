/* SPDX-License-Identifier: Apache-2.0 */
/* Keys held outside kmsd (keys_ext.c): backends pkcs11, aws, gcp, azure
 * through libhsm's signers. The key record keeps the backend's
 * configuration ("backend_config", references only) and, per version,
 * "ref" (the backend's key id) and for tokens "pub" (DER SPKI, base64). */
#ifndef KMSD_KEYS_EXT_H
#define KMSD_KEYS_EXT_H

#include "keys_int.h"

/* Whether `backend` names an external backend this build knows. */
bool kms_key_ext_backend(const char *backend);
/* Check the configuration (opens the signer) and fill the first version;
 * for pkcs11, also proves the key exists and stores its public key. */
kms_err kms_key_ext_create(kms_ctx *c, const char *backend, kms_key_type t,
                           const json_t *cfg, json_t *ver);
/* Sign through the backend; *sig malloc'd (ECDSA: DER). */
kms_err kms_key_ext_sign(kms_ctx *c, const json_t *rec, kms_sign_mode mode,
                         const uint8_t *msg, size_t msg_len, uint8_t **sig,
                         size_t *sig_len);
/* The backend's public key (DER SPKI, malloc'd). */
kms_err kms_key_ext_public(kms_ctx *c, const json_t *rec, uint8_t **der,
                           size_t *der_len);

#endif
