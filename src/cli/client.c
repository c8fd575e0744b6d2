/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP through libcurl, token loading, output formatting. */
#include "cli.h"

#include "kc.h"
#include "kmsd_int.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESP_MAX (8u * 1024u * 1024u)

typedef struct {
    char *p;
    size_t len, cap;
    bool overflow;
} rbuf;

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    rbuf *b = ud;
    size_t n = size * nmemb;

    if (n > RESP_MAX - b->len) {
        b->overflow = true;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t ncap = (b->len + n + 1) * 2;
        char *np = malloc(ncap);
        if (!np)
            return 0;
        if (b->len)
            memcpy(np, b->p, b->len);
        kc_free_wipe(b->p, b->cap); /* responses may carry secrets */
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, ptr, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

int
cli_token_path(char *buf, size_t cap)
{
    const char *f = getenv("KMS_TOKEN_FILE"), *home = getenv("HOME");
    int n;

    if (f && *f)
        return kc_strlcpy(buf, f, cap);
    if (!home || !*home)
        return -1;
    n = snprintf(buf, cap, "%s/.config/kms/token", home);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Token into secure memory: KMS_TOKEN, else the token file. */
static char *
load_token(void)
{
    const char *env = getenv("KMS_TOKEN");
    char path[4096];
    uint8_t *t = NULL;
    size_t n = 0;

    if (env && *env) {
        size_t l = strnlen(env, 256);
        char *s = kc_secure_alloc(l + 1);
        if (s) {
            memcpy(s, env, l);
            s[l] = '\0';
        }
        return s;
    }
    if (cli_token_path(path, sizeof path) != 0 ||
        kc_read_file(path, 1024, true, &t, &n) != 0)
        return NULL;
    while (n && (t[n - 1] == '\n' || t[n - 1] == '\r'))
        t[--n] = '\0';
    return (char *)t;
}

int
cli_http(kms_cli *c, const char *method, const char *path, const char *query,
         const json_t *body, bool auth, long *status, json_t **out)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char *url = NULL, *tok = NULL, *hdr = NULL, *payload = NULL;
    size_t url_len, hdr_len = 0, payload_len = 0;
    rbuf rb = {0};
    CURLcode cc;
    int rc = KMS_EXIT_ERROR;

    *out = NULL;
    *status = 0;
    if (!h)
        return KMS_EXIT_ERROR;
    url_len =
        strlen(c->addr) + strlen(path) + (query ? strlen(query) + 1 : 0) + 1;
    if (!(url = malloc(url_len)))
        goto out;
    snprintf(url, url_len, "%s%s%s%s", c->addr, path, query ? "?" : "",
             query ? query : "");
    if (auth) {
        if (!(tok = load_token())) {
            fprintf(stderr, "kms: no token: set KMS_TOKEN or run kms login\n");
            rc = KMS_EXIT_DENIED;
            goto out;
        }
        hdr_len = strlen(tok) + 32;
        if (!(hdr = kc_secure_alloc(hdr_len)))
            goto out;
        snprintf(hdr, hdr_len, "Authorization: Bearer %s", tok);
        hdrs = curl_slist_append(hdrs, hdr);
    }
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (body) {
        payload = kms_json_dump(body, NULL);
        if (!payload)
            goto out;
        payload_len = strlen(payload);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)payload_len);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &rb);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (c->cacert)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        fprintf(stderr, "kms: cannot reach %s: %s\n", c->addr,
                curl_easy_strerror(cc));
        rc = KMS_EXIT_UNAVAIL;
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (rb.len)
        *out = json_loadb(rb.p, rb.len, 0, NULL);
    rc = 0;
out:
    /* curl_slist_append() copied the header: wipe that copy too */
    for (struct curl_slist *l = hdrs; l; l = l->next)
        kc_wipe(l->data, strlen(l->data));
    curl_slist_free_all(hdrs);
    if (hdr)
        kc_secure_free(hdr);
    kc_secure_free(tok);
    if (payload) {
        kc_wipe(payload, payload_len);
        free(payload);
    }
    kc_free_wipe(rb.p, rb.cap);
    free(url);
    curl_easy_cleanup(h);
    return rc;
}

int
cli_status_exit(long status, const json_t *resp)
{
    const json_t *e = json_object_get(resp, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *code = json_string_value(json_object_get(e, "code"));

    if (status >= 200 && status < 300)
        return KMS_EXIT_OK;
    fprintf(stderr, "kms: %ld %s%s%s\n", status, code ? code : "error",
            msg ? ": " : "", msg ? msg : "");
    switch (status) {
    case 404:
        return KMS_EXIT_NOTFOUND;
    case 401:
    case 403:
        return KMS_EXIT_DENIED;
    case 409:
        return KMS_EXIT_CONFLICT;
    case 429:
        return KMS_EXIT_RATE;
    case 503:
        return KMS_EXIT_UNAVAIL;
    default:
        return KMS_EXIT_ERROR;
    }
}

char *
cli_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0), *r;

    if (!e)
        return NULL;
    r = strdup(e);
    curl_free(e);
    return r;
}

const char *
cli_org(const kms_cli *c)
{
    const char *o = c->org ? c->org : getenv("KMS_ORG");

    if (!o || !*o)
        fprintf(stderr, "kms: give --org ORG or set KMS_ORG\n");
    return o && *o ? o : NULL;
}

static void
print_scalar(const json_t *v)
{
    size_t i;
    json_t *x;

    switch (json_typeof(v)) {
    case JSON_STRING:
        fputs(json_string_value(v), stdout);
        break;
    case JSON_INTEGER:
        printf("%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        printf("%g", json_real_value(v));
        break;
    case JSON_TRUE:
        fputs("true", stdout);
        break;
    case JSON_FALSE:
        fputs("false", stdout);
        break;
    case JSON_NULL:
        fputs("-", stdout);
        break;
    case JSON_ARRAY:
        json_array_foreach(v, i, x)
        {
            if (i)
                fputs(", ", stdout);
            print_scalar(x);
        }
        break;
    case JSON_OBJECT:
    default:
        fputs("{...}", stdout);
        break;
    }
}

/* An array of objects as columns (keys of the first object). */
static void
print_rows(const json_t *arr)
{
    const json_t *first = json_array_get(arr, 0);
    const char *k;
    json_t *v, *row;
    size_t i;

    json_object_foreach((json_t *)first, k, v) printf("%-22s", k);
    putchar('\n');
    json_array_foreach(arr, i, row)
    {
        json_object_foreach((json_t *)first, k, v)
        {
            const json_t *cell = json_object_get(row, k);
            char tmp[256];
            if (json_is_string(cell))
                snprintf(tmp, sizeof tmp, "%s", json_string_value(cell));
            else if (json_is_integer(cell))
                snprintf(tmp, sizeof tmp, "%lld",
                         (long long)json_integer_value(cell));
            else if (json_is_boolean(cell))
                snprintf(tmp, sizeof tmp, "%s",
                         json_is_true(cell) ? "true" : "false");
            else
                snprintf(tmp, sizeof tmp, "-");
            printf("%-22s", tmp);
        }
        putchar('\n');
    }
}

void
cli_print(const kms_cli *c, const json_t *j)
{
    const char *k;
    json_t *v;

    if (!j)
        return;
    if (c->json) {
        size_t n = 0;
        char *s = kms_json_dumpf(j, JSON_INDENT(2), &n);
        if (s) {
            puts(s);
            kc_free_wipe(s, n);
        }
        return;
    }
    json_object_foreach((json_t *)j, k, v)
    {
        if (json_is_array(v) && json_array_size(v) &&
            json_is_object(json_array_get(v, 0)))
            continue;
        printf("%-16s ", k);
        print_scalar(v);
        putchar('\n');
    }
    json_object_foreach((json_t *)j, k, v)
    {
        if (json_is_array(v) && json_array_size(v) &&
            json_is_object(json_array_get(v, 0))) {
            printf("\n%s:\n", k);
            print_rows(v);
        }
    }
}
