/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KMSD_PASSWORD_H
#define KMSD_PASSWORD_H

#include "kmsd_int.h"

/* Get the store password from the configured libhsm password provider
 * (cfg->password_provider, password_key_id, password_config). On KMS_OK
 * *pw is NUL-terminated secure memory (kc_secure_free). `detail` gets a
 * message without secrets on failure. */
kms_err kmsd_password_get(const kms_config *cfg, uint8_t **pw, size_t *pw_len,
                          char *detail, size_t detail_cap);

#endif
