/* SPDX-License-Identifier: Apache-2.0 */
/* kms secret get|set|ls|history|rm|undelete|destroy */
#include "cli.h"

#include "kc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "/v1/kms/orgs/<org>/secrets/<path><suffix>", each segment escaped. */
static char *
secret_url(const char *org, const char *path, const char *suffix)
{
    char *eorg = cli_escape(org), *out = NULL;
    size_t cap = 64 + strlen(org) * 3 + strlen(path) * 3 + strlen(suffix);
    size_t len;
    const char *p = path;

    if (!eorg || !(out = malloc(cap)))
        goto out;
    len = (size_t)snprintf(out, cap, "/v1/kms/orgs/%s/secrets", eorg);
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char seg[512], *es;
        if (n >= sizeof seg) {
            free(out);
            out = NULL;
            goto out;
        }
        memcpy(seg, p, n);
        seg[n] = '\0';
        if (!(es = cli_escape(seg))) {
            free(out);
            out = NULL;
            goto out;
        }
        len += (size_t)snprintf(out + len, cap - len, "/%s", es);
        free(es);
        p = e ? e + 1 : p + n;
    }
    snprintf(out + len, cap - len, "%s", suffix);
out:
    free(eorg);
    return out;
}

static char *
query(const kms_cli *c, const char *extra)
{
    char *env = cli_escape(c->env), *q;
    size_t cap = strlen(env ? env : "") + (extra ? strlen(extra) : 0) + 64;

    if (!env || !(q = malloc(cap))) {
        free(env);
        return NULL;
    }
    snprintf(q, cap, "env=%s%s%s", env, extra ? "&" : "", extra ? extra : "");
    free(env);
    return q;
}

static int
versions_body(const char *list, json_t **out)
{
    json_t *arr = json_array();
    const char *p = list;

    while (p && *p) {
        char num[24];
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        uint64_t v;
        if (n == 0 || n >= sizeof num)
            goto bad;
        memcpy(num, p, n);
        num[n] = '\0';
        if (kc_parse_u64(num, &v) != 0 || v == 0 || v > INT64_MAX)
            goto bad;
        json_array_append_new(arr, json_integer((json_int_t)v));
        p = comma ? comma + 1 : NULL;
    }
    if (json_array_size(arr) == 0)
        goto bad;
    *out = json_pack("{s:o}", "versions", arr);
    return *out ? 0 : -1;
bad:
    json_decref(arr);
    return -1;
}

/* The value from --file or stdin, as a JSON string (UTF-8 text). */
static json_t *
read_value(const kms_cli *c)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    json_t *v;
    int e;

    if (!c->file && isatty(STDIN_FILENO)) {
        /* typed at a terminal: one line, not echoed */
        char *pw = NULL;
        size_t pl = 0;
        if (kc_password_get(NULL, NULL, "Secret value: ", &pw, &pl, NULL) !=
            KC_PW_OK) {
            fprintf(stderr, "kms: no value given\n");
            return NULL;
        }
        v = json_stringn(pw, pl);
        kc_secure_free(pw);
        return v;
    }
    e = c->file ? kc_read_file(c->file, 1024 * 1024, true, &buf, &n)
                : kc_read_fd(STDIN_FILENO, 1024 * 1024, true, &buf, &n);
    if (e != 0) {
        fprintf(stderr, "kms: cannot read the value (%s); at most 1 MiB\n",
                c->file ? c->file : "stdin");
        return NULL;
    }
    v = json_stringn((const char *)buf, n);
    kc_secure_free(buf);
    if (!v)
        fprintf(stderr,
                "kms: the value must be UTF-8 text (base64 binary data)\n");
    return v;
}

int
cmd_secret(kms_cli *c)
{
    const char *sub = c->npos > 1 ? c->pos[1] : NULL;
    const char *path = c->npos > 2 ? c->pos[2] : "";
    const char *org = cli_org(c);
    const char *method = "GET", *suffix = "";
    char extra[128] = "", *url = NULL, *q = NULL;
    json_t *body = NULL, *resp = NULL;
    long status;
    int rc = KMS_EXIT_USAGE;

    if (!sub || !org || !c->env)
        goto out;
    if (strcmp(sub, "ls") != 0 && !*path)
        goto out;
    if (strcmp(sub, "get") == 0) {
        if (c->version)
            snprintf(extra, sizeof extra, "version=%.20s", c->version);
    } else if (strcmp(sub, "set") == 0) {
        json_t *v = read_value(c);
        uint64_t cas;
        if (!v) {
            rc = KMS_EXIT_ERROR;
            goto out;
        }
        body = json_pack("{s:o}", "value", v);
        if (c->cas) {
            if (kc_parse_u64(c->cas, &cas) != 0 || cas > INT64_MAX)
                goto out;
            json_object_set_new(body, "cas", json_integer((json_int_t)cas));
        }
        method = "POST";
    } else if (strcmp(sub, "ls") == 0) {
        snprintf(extra, sizeof extra, "list=true%s",
                 c->recursive ? "&recursive=true" : "");
    } else if (strcmp(sub, "history") == 0) {
        snprintf(extra, sizeof extra, "history=true");
    } else if (strcmp(sub, "rm") == 0) {
        method = "DELETE";
        if (c->versions)
            snprintf(extra, sizeof extra, "versions=%.100s", c->versions);
    } else if (strcmp(sub, "undelete") == 0 || strcmp(sub, "destroy") == 0) {
        if (!c->versions || versions_body(c->versions, &body) != 0)
            goto out;
        method = "POST";
        suffix = strcmp(sub, "undelete") == 0 ? ":undelete" : ":destroy";
    } else {
        goto out;
    }
    rc = KMS_EXIT_ERROR;
    if (!(url = secret_url(org, path, suffix)) ||
        !(q = query(c, extra[0] ? extra : NULL)))
        goto out;
    if ((rc = cli_http(c, method, url, q, body, true, &status, &resp)) != 0)
        goto out;
    if ((rc = cli_status_exit(status, resp)) != KMS_EXIT_OK)
        goto out;
    if (strcmp(sub, "get") == 0 && c->raw && !c->json) {
        const json_t *v = json_object_get(resp, "value");
        if (json_is_string(v)) /* the exact bytes, NULs included */
            fwrite(json_string_value(v), 1, json_string_length(v), stdout);
    } else if (strcmp(sub, "ls") == 0 && !c->json) {
        size_t i;
        json_t *k;
        json_array_foreach(json_object_get(resp, "keys"), i, k)
            puts(json_string_value(k));
    } else
        cli_print(c, resp);
out:
    free(url);
    free(q);
    json_decref(body);
    json_decref(resp);
    return rc;
}
