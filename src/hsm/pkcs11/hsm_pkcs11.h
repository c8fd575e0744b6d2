/* SPDX-License-Identifier: Apache-2.0 */
/* The pkcs11 signer and password provider, found by the registry
 * (registry.c) through __has_include. See docs/pkcs11.md. */
#ifndef HSM_PKCS11_H
#define HSM_PKCS11_H

#include "hsm_int.h"

#define HSM_HAVE_PKCS11_SIGNER   1
#define HSM_HAVE_PKCS11_PASSWORD 1

extern const hsm_signer_ops hsm_pkcs11_signer_ops;
extern const hsm_password_ops hsm_pkcs11_password_ops;

#endif
