/* SPDX-License-Identifier: Apache-2.0 */
/* Azure Key Vault provider (signer and password provider), found by the
 * registry through this header. See docs/cloud.md. */
#ifndef HSM_CLOUD_AZURE_H
#define HSM_CLOUD_AZURE_H

#include "hsm_int.h"

#define HSM_HAVE_AZURE_SIGNER   1
#define HSM_HAVE_AZURE_PASSWORD 1
extern const hsm_signer_ops hsm_azure_signer_ops;
extern const hsm_password_ops hsm_azure_password_ops;

#endif
