/* SPDX-License-Identifier: Apache-2.0 */
/* Zymbit signer (HTTP JSON API of the local Zymbit agent), found by the
 * registry through this header. See docs/cloud.md. */
#ifndef HSM_CLOUD_ZYMBIT_H
#define HSM_CLOUD_ZYMBIT_H

#include "hsm_int.h"

#define HSM_HAVE_ZYMBIT_SIGNER 1
extern const hsm_signer_ops hsm_zymbit_signer_ops;

#endif
