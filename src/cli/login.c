/* SPDX-License-Identifier: Apache-2.0 */
/* kms login, kms status */
#include "cli.h"

#include "kc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p of the token file's directory, mode 0700. */
static int
make_parent(const char *path)
{
    char dir[4096];
    char *slash;

    if (kc_strlcpy(dir, path, sizeof dir) != 0)
        return -1;
    slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(dir, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int
cmd_login(kms_cli *c)
{
    uint8_t *sec = NULL;
    size_t n = 0;
    json_t *body = NULL, *resp = NULL;
    char path[4096];
    const char *tok;
    long status;
    int rc = KMS_EXIT_USAGE, e;

    if (!c->client_id)
        return rc;
    if (!c->secret_file && isatty(STDIN_FILENO))
        e = kc_password_get(NULL, NULL, "Client secret: ", (char **)&sec, &n,
                            NULL) == KC_PW_OK
                ? 0
                : -1;
    else
        e = c->secret_file ? kc_read_file(c->secret_file, 4096, true, &sec, &n)
                           : kc_read_fd(STDIN_FILENO, 4096, true, &sec, &n);
    if (e != 0) {
        fprintf(stderr, "kms: cannot read the client secret\n");
        return KMS_EXIT_ERROR;
    }
    while (n && (sec[n - 1] == '\n' || sec[n - 1] == '\r'))
        sec[--n] = 0;
    body = json_pack("{s:s,s:s%}", "client_id", c->client_id, "client_secret",
                     (const char *)sec, n);
    kc_secure_free(sec);
    if (!body)
        return KMS_EXIT_ERROR;
    if ((rc = cli_http(c, "POST", "/v1/kms/auth/login", NULL, body, false,
                       &status, &resp)) != 0 ||
        (rc = cli_status_exit(status, resp)) != KMS_EXIT_OK)
        goto out;
    tok = json_string_value(json_object_get(resp, "token"));
    rc = KMS_EXIT_ERROR;
    if (!tok || cli_token_path(path, sizeof path) != 0 ||
        make_parent(path) != 0 ||
        kc_write_file_atomic(path, (const uint8_t *)tok, strlen(tok), 0600) !=
            0) {
        fprintf(stderr, "kms: cannot write the token file\n");
        goto out;
    }
    json_object_del(resp, "token"); /* never printed */
    json_object_set_new(resp, "token_file", json_string(path));
    cli_print(c, resp);
    rc = KMS_EXIT_OK;
out:
    json_decref(body);
    json_decref(resp);
    return rc;
}

int
cmd_status(kms_cli *c)
{
    json_t *resp = NULL;
    long status;
    int rc;

    if ((rc = cli_http(c, "GET", "/v1/kms/health", NULL, NULL, false, &status,
                       &resp)) == 0 &&
        (rc = cli_status_exit(status, resp)) == KMS_EXIT_OK)
        cli_print(c, resp);
    json_decref(resp);
    return rc;
}
