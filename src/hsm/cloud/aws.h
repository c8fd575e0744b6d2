/* SPDX-License-Identifier: Apache-2.0 */
/* AWS KMS provider (signer and password provider), found by the registry
 * through this header (src/hsm/registry.c, docs/hsm.md). See
 * docs/cloud.md for requests, configuration and errors. */
#ifndef HSM_CLOUD_AWS_H
#define HSM_CLOUD_AWS_H

#include "hsm_int.h"

#define HSM_HAVE_AWS_SIGNER   1
#define HSM_HAVE_AWS_PASSWORD 1
extern const hsm_signer_ops hsm_aws_signer_ops;
extern const hsm_password_ops hsm_aws_password_ops;

#endif
