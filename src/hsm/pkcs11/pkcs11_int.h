/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the pkcs11 signer, password provider and CLI (internal).
 *
 * Configuration keys (each also read by the CLI's --config):
 *   module         absolute path of the PKCS#11 module (PKCS11_MODULE)
 *   token_label    token label (PKCS11_TOKEN_LABEL)
 *   token_serial   token serial number (PKCS11_TOKEN_SERIAL)
 *   pin_provider   libhsm password provider that yields the user PIN
 *                  ("file", "env", "aws", ...; never "pkcs11")
 *   pin_key_id     key id for that provider (for "file": the PIN file)
 *   pin.<k>        configuration key <k> for the PIN provider only
 */
#ifndef HSM_PKCS11_INT_H
#define HSM_PKCS11_INT_H

#include "hsm_int.h"
#include "p11.h"

/* The one mapping from PKCS#11 (and p11 layer) codes to hsm_err. */
hsm_err p11_hsm_err(ck_rv_t rv);
/* Copy the p11 message into `diag` and return p11_hsm_err(rv). */
hsm_err p11_report(hsm_diag *diag, ck_rv_t rv, const p11_diag *d);

/* Load the module, find the token, get the PIN from the PIN provider and
 * log in; the PIN is wiped before returning. */
hsm_err p11_open_from_config(const hsm_config *cfg, p11_token **tok,
                             hsm_diag *diag);

/* hsm_alg for a key type (HSM_ALG_NONE if none fits). */
hsm_alg p11_alg_of_type(ck_key_type_t type);

#endif
