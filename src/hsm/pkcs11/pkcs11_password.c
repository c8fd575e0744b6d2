/* SPDX-License-Identifier: Apache-2.0 */
/* Password provider "pkcs11": the ZapDB password, wrapped for a key on a
 * PKCS#11 token, unwrapped on the token the way cloud providers unwrap it
 * with a KMS. The wrapped password comes from config "encrypted_password"
 * or ZAPDB_ENCRYPTED_PASSWORD (base64); the key from the key id (config
 * key_id / MPC_HSM_KEY_ID):
 *   RSA private key  RSA-OAEP, SHA-256, MGF1-SHA-256, empty label
 *   AES secret key   AES-256-GCM, blob = nonce(12) || ciphertext || tag(16)
 * See docs/pkcs11.md. */
#include <stdlib.h>
#include <string.h>

#include "hsm_pkcs11.h"
#include "kc.h"
#include "pkcs11_int.h"

#define P11_BLOB_B64_MAX 8192u

typedef struct {
    const hsm_config *cfg;
    p11_token *tok;
} p11_password;

static hsm_err
password_create(const hsm_config *cfg, void **self, hsm_diag *diag)
{
    p11_password *p = calloc(1, sizeof *p);
    hsm_err rc;

    if (!p)
        return HSM_ENOMEM;
    p->cfg = cfg;
    if ((rc = p11_open_from_config(cfg, &p->tok, diag)) != HSM_OK) {
        free(p);
        return rc;
    }
    *self = p;
    return HSM_OK;
}

static hsm_err
load_blob(const hsm_config *cfg, uint8_t **blob, size_t *blob_len,
          hsm_diag *diag)
{
    const char *b64 = hsm_config_get_raw(cfg, "encrypted_password");
    size_t n;

    if (!b64)
        b64 = getenv("ZAPDB_ENCRYPTED_PASSWORD");
    if (!b64 || !*b64) {
        hsm_diag_set(diag, "pkcs11: no wrapped password: set config "
                           "encrypted_password or ZAPDB_ENCRYPTED_PASSWORD");
        return HSM_ECONFIG;
    }
    n = strlen(b64);
    if (n > P11_BLOB_B64_MAX) {
        hsm_diag_set(diag, "pkcs11: wrapped password over %u characters",
                     P11_BLOB_B64_MAX);
        return HSM_ETOOBIG;
    }
    if (kc_b64_decode(b64, n, KC_B64_STD, blob, blob_len) != 0) {
        hsm_diag_set(diag, "pkcs11: wrapped password is not valid base64");
        return HSM_EMALFORMED;
    }
    return HSM_OK;
}

static hsm_err
password_get(void *self, const char *key_id, hsm_secret **out, hsm_diag *diag)
{
    p11_password *p = self;
    const char *kid = key_id ? key_id : hsm_config_get(p->cfg, "key_id");
    uint8_t *blob = NULL, *pt = NULL;
    size_t blob_len = 0, pt_len = 0;
    p11_diag d = {""};
    ck_rv_t rv;
    hsm_err rc;

    if (!kid || !*kid) {
        hsm_diag_set(diag, "pkcs11: no key id for the wrapping key (config "
                           "key_id or MPC_HSM_KEY_ID)");
        return HSM_ECONFIG;
    }
    if ((rc = load_blob(p->cfg, &blob, &blob_len, diag)) != HSM_OK)
        return rc;
    rv = p11_unwrap_secret(p->tok, kid, blob, blob_len, &pt, &pt_len, &d);
    if ((rc = p11_report(diag, rv, &d)) != HSM_OK)
        goto out;
    if (pt_len == 0) {
        hsm_diag_set(diag, "pkcs11: the unwrapped password is empty");
        rc = HSM_EINVAL;
        goto out;
    }
    rc = hsm_secret_from(pt, pt_len, out);
out:
    kc_secure_free(pt);
    free(blob);
    return rc;
}

static void
password_destroy(void *self)
{
    p11_password *p = self;

    if (!p)
        return;
    p11_token_close(p->tok);
    free(p);
}

const hsm_password_ops hsm_pkcs11_password_ops = {
    .name = "pkcs11",
    .create = password_create,
    .get = password_get,
    .destroy = password_destroy,
};
