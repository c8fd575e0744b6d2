/* SPDX-License-Identifier: Apache-2.0 */
/* kms key ... (named keys, docs/keys.md) and kms aws-key create
 * (docs/awskms.md). Plaintexts and messages come from stdin or --file,
 * never from argv; decrypted plaintext goes to stdout as raw bytes. */
#include "cli.h"

#include "kc.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_INPUT_MAX (64u * 1024u)

static char *
key_url(const char *org, const char *name, const char *action)
{
    char *eo = cli_escape(org), *en = name ? cli_escape(name) : NULL, *u;
    size_t cap = 64 + strlen(eo ? eo : "") + (en ? strlen(en) : 0) +
                 (action ? strlen(action) : 0);

    u = eo && (!name || en) ? malloc(cap) : NULL;
    if (u)
        snprintf(u, cap, "/v1/kms/orgs/%s/keys%s%s%s%s", eo, en ? "/" : "",
                 en ? en : "", action ? "/" : "", action ? action : "");
    free(eo);
    free(en);
    return u;
}

/* --file or stdin, base64 into a JSON string (wiped when freed). */
static json_t *
read_b64(const char *file)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    char *s;
    json_t *j;
    int e = file ? kc_read_file(file, KEY_INPUT_MAX, true, &buf, &n)
                 : kc_read_fd(STDIN_FILENO, KEY_INPUT_MAX, true, &buf, &n);

    if (e != 0) {
        fprintf(stderr, "kms: cannot read the input (%s); at most 64 KiB\n",
                file ? file : "stdin");
        return NULL;
    }
    s = kc_b64_encode(buf, n, KC_B64_STD);
    kc_secure_free(buf);
    j = s ? json_string(s) : NULL;
    if (s)
        kc_free_wipe(s, strlen(s));
    return j;
}

/* A file holding base64 text (ciphertext, signature), trimmed. */
static json_t *
read_text_b64(const char *file)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    json_t *j;
    int e = file ? kc_read_file(file, 4 * KEY_INPUT_MAX, false, &buf, &n)
                 : kc_read_fd(STDIN_FILENO, 4 * KEY_INPUT_MAX, false, &buf, &n);

    if (e != 0) {
        fprintf(stderr, "kms: cannot read %s\n", file ? file : "stdin");
        return NULL;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    j = json_stringn((const char *)buf, n);
    free(buf);
    return j;
}

static json_t *
context_json(const kms_cli *c)
{
    json_t *o = json_object();

    for (size_t i = 0; o && i < c->ncontexts; i++) {
        const char *eq = strchr(c->contexts[i], '=');
        char k[256];
        size_t kl = (size_t)(eq - c->contexts[i]);
        if (kl == 0 || kl >= sizeof k) {
            json_decref(o);
            return NULL;
        }
        memcpy(k, c->contexts[i], kl);
        k[kl] = '\0';
        json_object_set_new(o, k, json_string(eq + 1));
    }
    return o;
}

static int
call(kms_cli *c, const char *method, const char *url, json_t *body,
     json_t **resp)
{
    long status = 0;
    int rc;

    *resp = NULL;
    if (!url)
        return KMS_EXIT_ERROR;
    if ((rc = cli_http(c, method, url, NULL, body, true, &status, resp)) != 0)
        return rc;
    return cli_status_exit(status, *resp);
}

/* Print one base64 field raw (decoded) or as text. */
static int
print_field(const json_t *resp, const char *k, bool decode)
{
    const char *s = json_string_value(json_object_get(resp, k));
    uint8_t *b = NULL;
    size_t n = 0;

    if (!s)
        return KMS_EXIT_ERROR;
    if (!decode) {
        printf("%s\n", s);
        return KMS_EXIT_OK;
    }
    if (kc_b64_decode(s, strlen(s), KC_B64_STD, &b, &n) != 0)
        return KMS_EXIT_ERROR;
    fwrite(b, 1, n, stdout);
    kc_free_wipe(b, n);
    return KMS_EXIT_OK;
}

static int
key_create(kms_cli *c, const char *org, const char *name)
{
    json_t *body, *resp = NULL;
    char *url = key_url(org, NULL, NULL);
    int rc;

    if (!c->type) {
        free(url);
        return KMS_EXIT_USAGE;
    }
    body = json_pack("{s:s,s:s,s:s*,s:b,s:s*}", "name", name, "type", c->type,
                     "backend", c->backend, "exportable", c->exportable,
                     "rotation_period", c->rotation);
    rc = call(c, "POST", url, body, &resp);
    if (rc == KMS_EXIT_OK)
        cli_print(c, resp);
    json_decref(body);
    json_decref(resp);
    free(url);
    return rc;
}

static int
key_crypto(kms_cli *c, const char *org, const char *name, const char *op)
{
    json_t *body = json_object(), *resp = NULL, *in = NULL, *ctx;
    char *url = key_url(org, name, op);
    int rc = KMS_EXIT_ERROR;

    if (!body || !(ctx = context_json(c)))
        goto out;
    json_object_set_new(body, "context", ctx);
    if (strcmp(op, "encrypt") == 0) {
        if (!(in = read_b64(c->file)))
            goto out;
        json_object_set(body, "plaintext", in);
    } else if (strcmp(op, "decrypt") == 0) {
        if (!(in = read_text_b64(c->file)))
            goto out;
        json_object_set(body, "ciphertext", in);
    } else if (strcmp(op, "sign") == 0 || strcmp(op, "verify") == 0) {
        if (!(in = read_b64(c->file)))
            goto out;
        json_object_set(body, c->digest ? "digest" : "message", in);
        if (strcmp(op, "verify") == 0) {
            json_t *s;
            if (!c->sig_file || !(s = read_text_b64(c->sig_file))) {
                rc = KMS_EXIT_USAGE;
                goto out;
            }
            json_object_set_new(body, "signature", s);
        }
    } else if (strcmp(op, "datakey") == 0) {
        json_object_set_new(body, "plaintext", json_boolean(!c->no_plaintext));
    }
    if ((rc = call(c, "POST", url, body, &resp)) != KMS_EXIT_OK)
        goto out;
    if (c->json || strcmp(op, "datakey") == 0)
        cli_print(c, resp);
    else if (strcmp(op, "encrypt") == 0)
        rc = print_field(resp, "ciphertext", false);
    else if (strcmp(op, "decrypt") == 0)
        rc = print_field(resp, "plaintext", true);
    else if (strcmp(op, "sign") == 0)
        rc = print_field(resp, "signature", false);
    else {
        bool ok = json_is_true(json_object_get(resp, "valid"));
        printf("%s\n", ok ? "valid" : "invalid");
        rc = ok ? KMS_EXIT_OK : KMS_EXIT_ERROR;
    }
out:
    json_decref(body);
    json_decref(resp);
    json_decref(in);
    free(url);
    return rc;
}

static int
key_state(kms_cli *c, const char *org, const char *name, const char *op)
{
    json_t *body = json_object(), *resp = NULL;
    char *url = key_url(org, name, op);
    uint64_t d;
    int rc;

    if (c->days) {
        if (kc_parse_u64(c->days, &d) != 0 || d > 365) {
            json_decref(body);
            free(url);
            return KMS_EXIT_USAGE;
        }
        json_object_set_new(body, "pending_days", json_integer((json_int_t)d));
    }
    if (c->immediate)
        json_object_set_new(body, "immediate", json_true());
    rc = call(c, "POST", url, body, &resp);
    if (rc == KMS_EXIT_OK)
        cli_print(c, resp);
    json_decref(body);
    json_decref(resp);
    free(url);
    return rc;
}

static int
key_get(kms_cli *c, const char *org, const char *name, const char *sub)
{
    json_t *resp = NULL;
    char *url = key_url(org, name, sub);
    int rc = call(c, "GET", url, NULL, &resp);

    if (rc == KMS_EXIT_OK) {
        if (sub && !c->json)
            rc = print_field(resp, "pem", false);
        else
            cli_print(c, resp);
    }
    json_decref(resp);
    free(url);
    return rc;
}

static int
key_random(kms_cli *c, const char *org, const char *n)
{
    char *eo = cli_escape(org), url[256];
    json_t *body = NULL, *resp = NULL;
    uint64_t v;
    int rc = KMS_EXIT_USAGE;

    if (!eo || kc_parse_u64(n, &v) != 0 || v == 0 || v > 1024)
        goto out;
    snprintf(url, sizeof url, "/v1/kms/orgs/%s/random", eo);
    body = json_pack("{s:I}", "bytes", (json_int_t)v);
    if ((rc = call(c, "POST", url, body, &resp)) == KMS_EXIT_OK)
        rc = print_field(resp, "random", false);
out:
    free(eo);
    json_decref(body);
    json_decref(resp);
    return rc;
}

/* RSAES-OAEP (SHA-256, MGF1-SHA-256) of `m` under a PEM public key;
 * base64 of the result (malloc'd) or NULL. */
static char *
oaep_wrap(const char *pem, const uint8_t *m, size_t ml)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    EVP_PKEY_CTX *pc = pk ? EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL) : NULL;
    uint8_t *out = NULL;
    size_t ol = 0;
    char *b = NULL;

    if (pc && EVP_PKEY_encrypt_init(pc) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) == 1 &&
        EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) == 1 &&
        EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) == 1 &&
        EVP_PKEY_encrypt(pc, NULL, &ol, m, ml) == 1 && (out = malloc(ol)) &&
        EVP_PKEY_encrypt(pc, out, &ol, m, ml) == 1)
        b = kc_b64_encode(out, ol, KC_B64_STD);
    free(out);
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(pk);
    BIO_free(bio);
    return b;
}

/* kms key import NAME --type T [--file F] [--exportable]: the material
 * (raw 32 bytes, PKCS#8 DER or a raw ML-DSA private key) is wrapped here
 * with kmsd's import key and never leaves this process in clear. */
static int
key_import(kms_cli *c, const char *org, const char *name)
{
    char *u1 = key_url(org, name, "import-params"),
         *u2 = key_url(org, name, "import"), *w = NULL;
    json_t *empty = json_object(), *params = NULL, *body = NULL, *resp = NULL;
    const char *pem, *tok;
    uint8_t *m = NULL;
    size_t ml = 0;
    int rc = KMS_EXIT_USAGE;

    if (!c->type)
        goto out;
    rc = KMS_EXIT_ERROR;
    if ((c->file ? kc_read_file(c->file, KEY_INPUT_MAX, true, &m, &ml)
                 : kc_read_fd(0, KEY_INPUT_MAX, true, &m, &ml)) != 0) {
        fprintf(stderr, "kms: cannot read the key material\n");
        goto out;
    }
    if ((rc = call(c, "POST", u1, empty, &params)) != KMS_EXIT_OK)
        goto out;
    rc = KMS_EXIT_ERROR;
    pem = json_string_value(json_object_get(params, "wrapping_public_key"));
    tok = json_string_value(json_object_get(params, "import_token"));
    if (!pem || !tok || !(w = oaep_wrap(pem, m, ml))) {
        fprintf(stderr, "kms: cannot wrap the key material\n");
        goto out;
    }
    body = json_pack("{s:s,s:s,s:s,s:b}", "type", c->type, "import_token", tok,
                     "wrapped_material", w, "exportable", c->exportable);
    if ((rc = call(c, "POST", u2, body, &resp)) == KMS_EXIT_OK)
        cli_print(c, resp);
out:
    kc_secure_free(m);
    free(w);
    free(u1);
    free(u2);
    json_decref(empty);
    json_decref(params);
    json_decref(body);
    json_decref(resp);
    return rc;
}

int
cmd_key(kms_cli *c)
{
    static const char *const crypto[] = {"encrypt", "decrypt", "sign", "verify",
                                         "datakey"};
    static const char *const state[] = {"enable", "disable", "rotate", "delete",
                                        "cancel-delete"};
    const char *org = cli_org(c), *sub, *name;

    if (!org || c->npos < 2)
        return KMS_EXIT_USAGE;
    sub = c->pos[1];
    name = c->npos > 2 ? c->pos[2] : NULL;
    if (strcmp(sub, "ls") == 0)
        return key_get(c, org, NULL, NULL);
    if (!name)
        return KMS_EXIT_USAGE;
    if (strcmp(sub, "random") == 0)
        return key_random(c, org, name);
    if (strcmp(sub, "create") == 0)
        return key_create(c, org, name);
    if (strcmp(sub, "import") == 0)
        return key_import(c, org, name);
    if (strcmp(sub, "describe") == 0)
        return key_get(c, org, name, NULL);
    if (strcmp(sub, "pubkey") == 0)
        return key_get(c, org, name, "pubkey");
    for (size_t i = 0; i < sizeof crypto / sizeof crypto[0]; i++)
        if (strcmp(sub, crypto[i]) == 0)
            return key_crypto(c, org, name, sub);
    for (size_t i = 0; i < sizeof state / sizeof state[0]; i++)
        if (strcmp(sub, state[i]) == 0)
            return key_state(c, org, name, sub);
    return KMS_EXIT_USAGE;
}

/* kms aws-key create --client-id ID: prints lines a shell can source. */
int
cmd_aws_key(kms_cli *c)
{
    const char *org = cli_org(c);
    char *eo, url[256];
    json_t *body, *resp = NULL;
    int rc;

    if (!org || c->npos != 2 || strcmp(c->pos[1], "create") != 0 ||
        !c->client_id)
        return KMS_EXIT_USAGE;
    if (!(eo = cli_escape(org)))
        return KMS_EXIT_ERROR;
    snprintf(url, sizeof url, "/v1/kms/orgs/%s/aws-keys", eo);
    free(eo);
    body = json_pack("{s:s}", "client_id", c->client_id);
    rc = call(c, "POST", url, body, &resp);
    if (rc == KMS_EXIT_OK) {
        const char *a =
            json_string_value(json_object_get(resp, "access_key_id"));
        const char *s =
            json_string_value(json_object_get(resp, "secret_access_key"));
        if (a && s)
            printf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", a, s);
        else
            rc = KMS_EXIT_ERROR;
    }
    json_decref(body);
    json_decref(resp);
    return rc;
}
