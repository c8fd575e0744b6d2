/* SPDX-License-Identifier: Apache-2.0 */
/* GCP Cloud KMS provider (signer and password provider), found by the
 * registry through this header. See docs/cloud.md. */
#ifndef HSM_CLOUD_GCP_H
#define HSM_CLOUD_GCP_H

#include "hsm_int.h"

#define HSM_HAVE_GCP_SIGNER   1
#define HSM_HAVE_GCP_PASSWORD 1
extern const hsm_signer_ops hsm_gcp_signer_ops;
extern const hsm_password_ops hsm_gcp_password_ops;

#endif
