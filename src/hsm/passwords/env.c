/* SPDX-License-Identifier: Apache-2.0 */
/* Password provider "env": the password from an environment variable.
 * Development only (kmsd refuses it with --production): environment
 * variables leak through /proc/<pid>/environ and child processes. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm_int.h"

static const char *const default_vars[] = {"MPC_PASSWORD", "LUX_MPC_PASSWORD",
                                           "ZAPDB_PASSWORD"};

static pthread_once_t warn_once = PTHREAD_ONCE_INIT;

static void
warn_dev(void)
{
    fputs("hsm: warning: the 'env' password provider is for development "
          "only; use file, aws, gcp, azure or pkcs11 in production\n",
          stderr);
}

typedef struct {
    const hsm_config *cfg;
} env_self;

static hsm_err
env_create(const hsm_config *cfg, void **self, hsm_diag *diag)
{
    env_self *e;
    const char *v = hsm_config_get_raw(cfg, "env_var");

    (void)diag;
    if (v && (!v[0] || strchr(v, '='))) {
        hsm_diag_set(diag, "env_var must be a variable name");
        return HSM_ECONFIG;
    }
    if (!(e = calloc(1, sizeof *e)))
        return HSM_ENOMEM;
    e->cfg = cfg;
    *self = e;
    pthread_once(&warn_once, warn_dev);
    return HSM_OK;
}

/* key_id, when given, names the variable; else config env_var; else the
 * first set of MPC_PASSWORD, LUX_MPC_PASSWORD, ZAPDB_PASSWORD. */
static hsm_err
env_get(void *self, const char *key_id, hsm_secret **out, hsm_diag *diag)
{
    env_self *e = self;
    const char *name = key_id ? key_id : hsm_config_get_raw(e->cfg, "env_var");
    const char *v = NULL;

    if (name) {
        v = getenv(name);
        if (!v) {
            hsm_diag_set(diag, "environment variable %.64s is not set", name);
            return HSM_ENOTFOUND;
        }
    } else {
        for (size_t i = 0; i < 3 && !v; i++) {
            v = getenv(default_vars[i]);
            name = default_vars[i];
        }
        if (!v) {
            hsm_diag_set(diag, "none of MPC_PASSWORD, LUX_MPC_PASSWORD, "
                               "ZAPDB_PASSWORD is set");
            return HSM_ENOTFOUND;
        }
    }
    if (!v[0]) {
        hsm_diag_set(diag, "environment variable %.64s is empty", name);
        return HSM_EINVAL;
    }
    return hsm_secret_from(v, strlen(v), out);
}

static void
env_destroy(void *self)
{
    free(self);
}

const hsm_password_ops hsm_env_password_ops = {
    .name = "env",
    .create = env_create,
    .get = env_get,
    .destroy = env_destroy,
};
