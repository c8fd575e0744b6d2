/* SPDX-License-Identifier: Apache-2.0 */
/* `hsm pkcs11 keygen|list|wrap`: see pkcs11_cli.h and docs/pkcs11.md.
 * The PIN never comes from argv: it comes from the configured libhsm
 * password provider (pin_provider / pin_key_id). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kc.h"
#include "pkcs11_cli.h"
#include "pkcs11_int.h"

#define CLI_OK       0
#define CLI_FAIL     1
#define CLI_USAGE    2
#define CLI_NOTFOUND 3
#define CLI_AUTH     4
#define CLI_CORRUPT  5

typedef struct {
    const char *type, *label, *id, *usage, *key;
} cli_opts;

static const char usage_text[] =
    "usage: hsm pkcs11 <command> --config key=value ... [options]\n"
    "  keygen --type ec-p256|ed25519|rsa-2048|rsa-3072|rsa-4096|aes-128|"
    "aes-256\n"
    "         --label NAME [--id HEX] [--usage sign|decrypt]\n"
    "  list\n"
    "  wrap --key REF      (reads the secret from stdin, prints base64)\n"
    "config keys: module, token_label | token_serial, pin_provider, "
    "pin_key_id, pin.<k>\n";

static int
usage(const char *why)
{
    if (why)
        fprintf(stderr, "hsm: pkcs11: %s\n", why);
    fputs(usage_text, stderr);
    return CLI_USAGE;
}

/* Parse options after the subcommand into `o` and `cfg`. */
static int
parse_opts(int argc, char **argv, cli_opts *o, hsm_config *cfg)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **dst = NULL;

        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if (!v || hsm_config_set_kv(cfg, v) != HSM_OK)
                return usage("--config needs key=value");
            i++;
            continue;
        }
        if (strcmp(a, "--type") == 0)
            dst = &o->type;
        else if (strcmp(a, "--label") == 0)
            dst = &o->label;
        else if (strcmp(a, "--id") == 0)
            dst = &o->id;
        else if (strcmp(a, "--usage") == 0)
            dst = &o->usage;
        else if (strcmp(a, "--key") == 0)
            dst = &o->key;
        if (!dst || !v) {
            fprintf(stderr, "hsm: pkcs11: bad option %.64s\n", a);
            return usage(NULL);
        }
        *dst = v;
        i++;
    }
    return CLI_OK;
}

/* The hsm tool's exit codes (src/hsm/tool/hsm.c): 0 ok, 1 error,
 * 2 usage, 3 not found, 4 wrong password/PIN, 5 corrupt/tampered. */
static int
exit_code(hsm_err rc)
{
    switch (rc) {
    case HSM_OK:
        return CLI_OK;
    case HSM_ENOTFOUND:
        return CLI_NOTFOUND;
    case HSM_EAUTH:
        return CLI_AUTH;
    case HSM_ECORRUPT:
        return CLI_CORRUPT;
    default:
        return CLI_FAIL;
    }
}

/* One line on stderr, "hsm: pkcs11 <cmd>: <what>" like the tool's own. */
static int
report(const char *cmd, hsm_err rc, const char *msg)
{
    if (strncmp(msg, "pkcs11: ", 8) == 0)
        msg += 8;
    fprintf(stderr, "hsm: pkcs11 %s: %s\n", cmd,
            msg[0] ? msg : hsm_strerror(rc));
    return exit_code(rc);
}

static int
report_p11(const char *cmd, ck_rv_t rv, const p11_diag *d)
{
    return report(cmd, p11_hsm_err(rv), d->msg);
}

static int
keyspec_from_opts(const cli_opts *o, p11_keyspec *ks, uint8_t *id,
                  size_t id_cap)
{
    static const struct {
        const char *name;
        p11_key_kind kind;
        unsigned long bits;
    } types[] = {
        {"ec-p256", P11_KEY_EC_P256, 0}, {"ed25519", P11_KEY_ED25519, 0},
        {"rsa-2048", P11_KEY_RSA, 2048}, {"rsa-3072", P11_KEY_RSA, 3072},
        {"rsa-4096", P11_KEY_RSA, 4096}, {"aes-128", P11_KEY_AES, 128},
        {"aes-256", P11_KEY_AES, 256},
    };
    size_t i;

    if (!o->type || !o->label)
        return usage("keygen needs --type and --label");
    for (i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(o->type, types[i].name) == 0)
            break;
    if (i == sizeof types / sizeof types[0])
        return usage("unknown --type");
    if (o->usage && strcmp(o->usage, "sign") != 0 &&
        strcmp(o->usage, "decrypt") != 0)
        return usage("--usage is sign or decrypt");
    memset(ks, 0, sizeof *ks);
    ks->kind = types[i].kind;
    ks->bits = types[i].bits;
    ks->decrypt = o->usage && strcmp(o->usage, "decrypt") == 0;
    ks->label = o->label;
    ks->id = id;
    if (o->id) {
        if (kc_hex_decode(o->id, strlen(o->id), id, id_cap, &ks->id_len) != 0 ||
            ks->id_len == 0)
            return usage("--id must be 1-64 bytes of hex");
    } else {
        /* A random CKA_ID ties the key pair together and survives labels
         * being reused by other applications. */
        ks->id_len = 8;
        kc_random(id, ks->id_len);
    }
    return CLI_OK;
}

static int
cmd_keygen(p11_token *t, const cli_opts *o)
{
    uint8_t id[P11_ID_MAX];
    char hex[2 * P11_ID_MAX + 1];
    p11_keyspec ks;
    p11_diag d = {""};
    ck_rv_t rv;
    int rc;

    if ((rc = keyspec_from_opts(o, &ks, id, sizeof id)) != CLI_OK)
        return rc;
    if ((rv = p11_keygen(t, &ks, &d)) != CKR_OK)
        return report_p11("keygen", rv, &d);
    kc_hex_encode(ks.id, ks.id_len, hex, sizeof hex);
    printf("generated %s label=%s id=%s (key id \"id:%s\")\n", o->type,
           ks.label, hex, hex);
    return CLI_OK;
}

static const char *
type_name(ck_key_type_t type)
{
    switch (type) {
    case CKK_EC:
        return "ec";
    case CKK_EC_EDWARDS:
        return "ed25519";
    case CKK_RSA:
        return "rsa";
    case CKK_AES:
        return "aes";
    default:
        return "other";
    }
}

/* Labels come from the token: print only printable ASCII, so a label
 * cannot carry terminal escape sequences. */
static void
printable(const char *in, char *out, size_t cap)
{
    size_t i;

    for (i = 0; in[i] && i + 1 < cap; i++)
        out[i] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
    out[i] = '\0';
}

static int
cmd_list(p11_token *t)
{
    p11_keyinfo *keys = NULL;
    size_t count = 0;
    char hex[2 * P11_ID_MAX + 1], label[P11_LABEL_MAX + 1];
    p11_diag d = {""};
    ck_rv_t rv;

    if ((rv = p11_list_keys(t, &keys, &count, &d)) != CKR_OK)
        return report_p11("list", rv, &d);
    printf("%-8s %-8s %5s %-18s %s\n", "class", "type", "bits", "id", "label");
    for (size_t i = 0; i < count; i++) {
        const p11_keyinfo *k = &keys[i];

        kc_hex_encode(k->id, k->id_len, hex, sizeof hex);
        printable(k->label, label, sizeof label);
        printf("%-8s %-8s %5lu %-18s %s%s\n",
               k->cls == CKO_SECRET_KEY ? "secret" : "private",
               type_name(k->type), k->bits, hex, label,
               k->extractable ? " (EXTRACTABLE)" : "");
    }
    free(keys);
    return CLI_OK;
}

static int
cmd_wrap(p11_token *t, const cli_opts *o)
{
    uint8_t *secret = NULL, *blob = NULL;
    size_t secret_len = 0, blob_len = 0;
    char *b64 = NULL;
    p11_diag d = {""};
    ck_rv_t rv;
    int rc = CLI_FAIL;

    if (!o->key)
        return usage("wrap needs --key");
    if (kc_read_fd(STDIN_FILENO, 4096, true, &secret, &secret_len) != 0)
        return report("wrap", HSM_EIO, "cannot read the secret from stdin");
    /* One trailing newline is not part of the secret (echo, here-docs). */
    if (secret_len > 0 && secret[secret_len - 1] == '\n')
        secret_len--;
    if (secret_len == 0) {
        rc = report("wrap", HSM_EINVAL, "empty secret on stdin");
        goto out;
    }
    rv = p11_wrap_secret(t, o->key, secret, secret_len, &blob, &blob_len, &d);
    if (rv != CKR_OK) {
        rc = report_p11("wrap", rv, &d);
        goto out;
    }
    if (!(b64 = kc_b64_encode(blob, blob_len, KC_B64_STD)))
        goto out;
    printf("%s\n", b64);
    rc = CLI_OK;
out:
    free(b64);
    free(blob);
    kc_secure_free(secret);
    return rc;
}

int
hsm_pkcs11_cli(int argc, char **argv)
{
    cli_opts o = {NULL, NULL, NULL, NULL, NULL};
    hsm_config *cfg = NULL;
    p11_token *t = NULL;
    hsm_diag diag;
    const char *cmd;
    hsm_err err;
    int rc;

    if (argc < 2 || !argv || !argv[1])
        return usage("missing command");
    cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "keygen") != 0 && strcmp(cmd, "list") != 0 &&
        strcmp(cmd, "wrap") != 0)
        return usage("unknown command");
    if (kc_init() != 0 || hsm_config_new(&cfg) != HSM_OK)
        return CLI_FAIL;
    hsm_diag_init(&diag);
    if ((rc = parse_opts(argc, argv, &o, cfg)) != CLI_OK)
        goto out;
    if ((err = p11_open_from_config(cfg, &t, &diag)) != HSM_OK) {
        char msg[HSM_DETAIL_MAX];

        hsm_diag_get(&diag, msg, sizeof msg);
        rc = report(cmd, err, msg);
        goto out;
    }
    if (strcmp(cmd, "keygen") == 0)
        rc = cmd_keygen(t, &o);
    else if (strcmp(cmd, "list") == 0)
        rc = cmd_list(t);
    else
        rc = cmd_wrap(t, &o);
out:
    p11_token_close(t);
    hsm_diag_destroy(&diag);
    hsm_config_free(cfg);
    fflush(stdout);
    return rc;
}
