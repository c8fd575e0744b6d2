/* SPDX-License-Identifier: Apache-2.0 */
/* kms: the command-line client of kmsd. One file per command group,
 * dispatched from a const table in main.c. The token comes from KMS_TOKEN
 * or a 0600 token file, never from argv; secret values come from stdin or
 * a file.
 *
 * Exit codes (docs/kmsd.md): */
#ifndef KMS_CLI_H
#define KMS_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum {
    KMS_EXIT_OK = 0,
    KMS_EXIT_ERROR = 1,    /* any other failure */
    KMS_EXIT_USAGE = 2,    /* bad command line */
    KMS_EXIT_NOTFOUND = 3, /* 404 */
    KMS_EXIT_DENIED = 4,   /* 401 or 403: no token, bad token, no permission */
    KMS_EXIT_CONFLICT = 5, /* 409: check-and-set mismatch, already exists */
    KMS_EXIT_TAMPERED = 6, /* audit verify found a bad line */
    KMS_EXIT_UNAVAIL = 7,  /* cannot reach kmsd, or 503 */
    KMS_EXIT_RATE = 8,     /* 429 */
};

#define CLI_MAX_POS      8
#define CLI_MAX_POLICIES 32

/* Every option any command takes; each command uses what it needs. */
typedef struct kms_cli {
    const char *addr;
    const char *cacert;
    bool json;
    const char *org, *env, *file, *ttl, *client_id, *secret_file, *name;
    const char *version, *versions, *cas;
    const char *policies[CLI_MAX_POLICIES];
    size_t npolicies;
    bool recursive, raw, self;
    /* kms key */
    const char *type, *backend, *sig_file, *days, *rotation;
    const char *contexts[CLI_MAX_POLICIES]; /* K=V */
    size_t ncontexts;
    bool digest, exportable, immediate, no_plaintext;
    const char *pos[CLI_MAX_POS];
    size_t npos;
} kms_cli;

/* Perform a request: `path` already escaped, `query` "a=b&c=d" or NULL,
 * `body` may be NULL. With `auth`, the token is sent. On a transport
 * success returns 0 and sets *status and *out (the parsed JSON body, or
 * NULL). Returns an exit code on failure (message printed). */
int cli_http(kms_cli *c, const char *method, const char *path,
             const char *query, const json_t *body, bool auth, long *status,
             json_t **out);
/* Map an HTTP status to an exit code, printing the server's error. */
int cli_status_exit(long status, const json_t *resp);
/* Print a response: JSON with --json, else a table. */
void cli_print(const kms_cli *c, const json_t *j);
/* URL-escape one component into a malloc'd string (NULL on failure). */
char *cli_escape(const char *s);
/* The organisation: --org or KMS_ORG; prints usage error when missing. */
const char *cli_org(const kms_cli *c);
/* Default token file path into buf (KMS_TOKEN_FILE or ~/.config/kms/token). */
int cli_token_path(char *buf, size_t cap);

int cmd_login(kms_cli *c);
int cmd_status(kms_cli *c);
int cmd_secret(kms_cli *c);
int cmd_token(kms_cli *c);
int cmd_policy(kms_cli *c);
int cmd_org(kms_cli *c);
int cmd_identity(kms_cli *c);
int cmd_audit(kms_cli *c);
int cmd_key(kms_cli *c);
int cmd_aws_key(kms_cli *c);

#endif
