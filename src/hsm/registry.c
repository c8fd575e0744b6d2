/* SPDX-License-Identifier: Apache-2.0 */
/* Provider registry: one const table of names for signers and one for
 * password providers (STYLE.md "Providers are const vtables").
 *
 * ADDING A PROVIDER (also in docs/hsm.md)
 *   1. Put the implementation in src/hsm/<dir>/<file>.c (the CMake glob
 *      compiles src/hsm/{passwords,signers,cloud,pkcs11}/\*.c).
 *   2. Write its internal header at the path listed below. It includes
 *      "hsm_int.h", declares the vtables and defines one HSM_HAVE_* macro
 *      per vtable it provides:
 *
 *        header                 macro                     symbol
 *        cloud/aws.h            HSM_HAVE_AWS_SIGNER       hsm_aws_signer_ops
 *                               HSM_HAVE_AWS_PASSWORD     hsm_aws_password_ops
 *        cloud/gcp.h            HSM_HAVE_GCP_SIGNER       hsm_gcp_signer_ops
 *                               HSM_HAVE_GCP_PASSWORD     hsm_gcp_password_ops
 *        cloud/azure.h          HSM_HAVE_AZURE_SIGNER     hsm_azure_signer_ops
 *                               HSM_HAVE_AZURE_PASSWORD hsm_azure_password_ops
 *        cloud/zymbit.h         HSM_HAVE_ZYMBIT_SIGNER    hsm_zymbit_signer_ops
 *        pkcs11/hsm_pkcs11.h    HSM_HAVE_PKCS11_SIGNER    hsm_pkcs11_signer_ops
 *                               HSM_HAVE_PKCS11_PASSWORD
 * hsm_pkcs11_password_ops signers/mldsa.h        HSM_HAVE_MLDSA_SIGNER
 * hsm_mldsa_signer_ops
 *
 *      e.g. cloud/aws.h:
 *        #include "hsm_int.h"
 *        #define HSM_HAVE_AWS_SIGNER 1
 *        extern const hsm_signer_ops hsm_aws_signer_ops;
 *
 *   3. Nothing else: this file picks the header up with __has_include. A
 *      name whose header (or macro) is absent stays valid but its factory
 *      returns HSM_ENOTBUILT ("provider 'aws' is not built in this
 *      version").
 *   A new provider NAME (not in the tables below) needs one line in a table
 *   here plus its header line.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "hsm_int.h"
#include "kc.h"

#if __has_include("cloud/aws.h")
#include "cloud/aws.h"
#endif
#if __has_include("cloud/gcp.h")
#include "cloud/gcp.h"
#endif
#if __has_include("cloud/azure.h")
#include "cloud/azure.h"
#endif
#if __has_include("cloud/zymbit.h")
#include "cloud/zymbit.h"
#endif
#if __has_include("pkcs11/hsm_pkcs11.h")
#include "pkcs11/hsm_pkcs11.h"
#endif
#if __has_include("signers/mldsa.h")
#include "signers/mldsa.h"
#endif

#ifdef HSM_HAVE_AWS_SIGNER
#define AWS_SIGNER (&hsm_aws_signer_ops)
#else
#define AWS_SIGNER NULL
#endif
#ifdef HSM_HAVE_AWS_PASSWORD
#define AWS_PASSWORD (&hsm_aws_password_ops)
#else
#define AWS_PASSWORD NULL
#endif
#ifdef HSM_HAVE_GCP_SIGNER
#define GCP_SIGNER (&hsm_gcp_signer_ops)
#else
#define GCP_SIGNER NULL
#endif
#ifdef HSM_HAVE_GCP_PASSWORD
#define GCP_PASSWORD (&hsm_gcp_password_ops)
#else
#define GCP_PASSWORD NULL
#endif
#ifdef HSM_HAVE_AZURE_SIGNER
#define AZURE_SIGNER (&hsm_azure_signer_ops)
#else
#define AZURE_SIGNER NULL
#endif
#ifdef HSM_HAVE_AZURE_PASSWORD
#define AZURE_PASSWORD (&hsm_azure_password_ops)
#else
#define AZURE_PASSWORD NULL
#endif
#ifdef HSM_HAVE_ZYMBIT_SIGNER
#define ZYMBIT_SIGNER (&hsm_zymbit_signer_ops)
#else
#define ZYMBIT_SIGNER NULL
#endif
#ifdef HSM_HAVE_PKCS11_SIGNER
#define PKCS11_SIGNER (&hsm_pkcs11_signer_ops)
#else
#define PKCS11_SIGNER NULL
#endif
#ifdef HSM_HAVE_PKCS11_PASSWORD
#define PKCS11_PASSWORD (&hsm_pkcs11_password_ops)
#else
#define PKCS11_PASSWORD NULL
#endif
#ifdef HSM_HAVE_MLDSA_SIGNER
#define MLDSA_SIGNER (&hsm_mldsa_signer_ops)
#else
#define MLDSA_SIGNER NULL
#endif

typedef struct {
    const char *name;
    const hsm_signer_ops *ops;
} signer_entry;

typedef struct {
    const char *name;
    const hsm_password_ops *ops;
} password_entry;

static const signer_entry signer_table[] = {
    {"local", &hsm_local_signer_ops},
    {"mldsa", MLDSA_SIGNER},
    {"aws", AWS_SIGNER},
    {"gcp", GCP_SIGNER},
    {"azure", AZURE_SIGNER},
    {"zymbit", ZYMBIT_SIGNER},
    {"pkcs11", PKCS11_SIGNER},
};

static const password_entry password_table[] = {
    {"env", &hsm_env_password_ops}, {"file", &hsm_file_password_ops},
    {"aws", AWS_PASSWORD},          {"gcp", GCP_PASSWORD},
    {"azure", AZURE_PASSWORD},      {"pkcs11", PKCS11_PASSWORD},
};

/* Aliases, applied after trimming and case folding. */
static const struct {
    const char *alias;
    const char *name;
} alias_table[] = {
    {"pq", "mldsa"},
    {"post-quantum", "mldsa"},
};

#define SIGNER_NAMES                                                           \
    "local, mldsa (pq, post-quantum), aws, gcp, azure, zymbit, pkcs11"
#define PASSWORD_NAMES "env, file, aws, gcp, azure, pkcs11"

const char *
hsm_registry_signer_names(void)
{
    return SIGNER_NAMES;
}

const char *
hsm_registry_password_names(void)
{
    return PASSWORD_NAMES;
}

hsm_err
hsm_name_normalise(const char *name, char *out, size_t cap)
{
    size_t start = 0, end, n;

    if (!out || cap == 0)
        return HSM_EINVAL;
    out[0] = 0;
    if (!name)
        return HSM_OK;
    end = strlen(name);
    while (start < end && isspace((unsigned char)name[start]))
        start++;
    while (end > start && isspace((unsigned char)name[end - 1]))
        end--;
    n = end - start;
    if (n >= cap)
        return HSM_EINVAL;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)name[start + i]);
    out[n] = 0;
    for (size_t i = 0; i < sizeof alias_table / sizeof alias_table[0]; i++) {
        if (strcmp(out, alias_table[i].alias) == 0)
            return kc_strlcpy(out, alias_table[i].name, cap) == 0 ? HSM_OK
                                                                  : HSM_EINVAL;
    }
    return HSM_OK;
}

hsm_err
hsm_registry_signer(const char *name, const hsm_signer_ops **ops,
                    hsm_diag *diag)
{
    char norm[64];

    *ops = NULL;
    if (hsm_name_normalise(name, norm, sizeof norm) != HSM_OK) {
        hsm_diag_set(diag, "unknown signer provider; valid names: %s",
                     SIGNER_NAMES);
        return HSM_EUNKNOWN;
    }
    if (norm[0] == 0) {
        *ops = &hsm_local_signer_ops;
        return HSM_OK;
    }
    for (size_t i = 0; i < sizeof signer_table / sizeof signer_table[0]; i++) {
        if (strcmp(norm, signer_table[i].name) != 0)
            continue;
        if (!signer_table[i].ops) {
            hsm_diag_set(diag,
                         "signer provider '%s' is not built in this version",
                         signer_table[i].name);
            return HSM_ENOTBUILT;
        }
        *ops = signer_table[i].ops;
        return HSM_OK;
    }
    hsm_diag_set(diag, "unknown signer provider '%.40s'; valid names: %s", norm,
                 SIGNER_NAMES);
    return HSM_EUNKNOWN;
}

hsm_err
hsm_registry_password(const char *name, const hsm_password_ops **ops,
                      hsm_diag *diag)
{
    char norm[64];

    *ops = NULL;
    if (hsm_name_normalise(name, norm, sizeof norm) != HSM_OK) {
        hsm_diag_set(diag, "unknown password provider; valid names: %s",
                     PASSWORD_NAMES);
        return HSM_EUNKNOWN;
    }
    if (norm[0] == 0) {
        *ops = &hsm_env_password_ops;
        return HSM_OK;
    }
    for (size_t i = 0; i < sizeof password_table / sizeof password_table[0];
         i++) {
        if (strcmp(norm, password_table[i].name) != 0)
            continue;
        if (!password_table[i].ops) {
            hsm_diag_set(diag,
                         "password provider '%s' is not built in this version",
                         password_table[i].name);
            return HSM_ENOTBUILT;
        }
        *ops = password_table[i].ops;
        return HSM_OK;
    }
    hsm_diag_set(diag, "unknown password provider '%.40s'; valid names: %s",
                 norm, PASSWORD_NAMES);
    return HSM_EUNKNOWN;
}
