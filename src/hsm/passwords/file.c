/* SPDX-License-Identifier: Apache-2.0 */
/* Password provider "file": the password from a file only its owner can
 * read (mode 0600 or stricter), one trailing newline stripped. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hsm_int.h"
#include "kc.h"

typedef struct {
    const hsm_config *cfg;
} file_self;

static hsm_err
file_create(const hsm_config *cfg, void **self, hsm_diag *diag)
{
    file_self *f;

    (void)diag;
    if (!(f = calloc(1, sizeof *f)))
        return HSM_ENOMEM;
    f->cfg = cfg;
    *self = f;
    return HSM_OK;
}

/* Path: config "path", else the key id, else MPC_PASSWORD_FILE. */
static hsm_err
file_get(void *self, const char *key_id, hsm_secret **out, hsm_diag *diag)
{
    file_self *f = self;
    const char *path = hsm_config_get_raw(f->cfg, "path");
    char *pw = NULL;
    size_t pw_len = 0;
    int err = 0;
    hsm_err rc;

    if (!path)
        path = key_id;
    if (!path)
        path = hsm_config_get(f->cfg, "path");
    if (!path || !path[0]) {
        hsm_diag_set(diag, "no password file: set config path, the key id "
                           "or MPC_PASSWORD_FILE");
        return HSM_ECONFIG;
    }
    switch (kc_password_get(path, NULL, NULL, &pw, &pw_len, &err)) {
    case KC_PW_OK:
        rc = hsm_secret_from(pw, pw_len, out);
        break;
    case KC_PW_EPERM:
        hsm_diag_set(diag,
                     "password file %.160s has mode %04o; it must not be "
                     "readable by group or others (chmod 600)",
                     path, (unsigned)err & 07777u);
        rc = HSM_EPERM;
        break;
    case KC_PW_EMPTY:
        hsm_diag_set(diag, "password file %.160s is empty", path);
        rc = HSM_EINVAL;
        break;
    case KC_PW_EIO:
        hsm_diag_set(diag, "password file %.160s: %s", path, strerror(err));
        rc = err == ENOENT || err == ENOTDIR ? HSM_ENOTFOUND
             : err == EACCES                 ? HSM_EPERM
                                             : HSM_EIO;
        break;
    case KC_PW_ENOMEM:
        rc = HSM_ENOMEM;
        break;
    default:
        hsm_diag_set(diag, "password file %.160s could not be read", path);
        rc = HSM_EIO;
        break;
    }
    kc_secure_free(pw);
    return rc;
}

static void
file_destroy(void *self)
{
    free(self);
}

const hsm_password_ops hsm_file_password_ops = {
    .name = "file",
    .create = file_create,
    .get = file_get,
    .destroy = file_destroy,
};
