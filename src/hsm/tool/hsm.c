/* SPDX-License-Identifier: Apache-2.0 */
/* hsm: command-line front end to libhsm.
 *
 *   hsm sign|verify|pubkey      signers (local, mldsa, aws, ...)
 *   hsm password                password providers (env, file, aws, ...)
 *   hsm vault store|load|list|delete|backup|restore
 *   hsm pkcs11 ...              when built with the PKCS#11 CLI hook
 *
 * Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 wrong password,
 * 5 corrupt/tampered, 6 invalid signature. Errors are one line on stderr:
 * "hsm: <cmd>: <what>". Secrets never go to argv: passwords come from
 * files, the environment, a terminal prompt or a provider. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hsm/hsm.h>
#include <hsm/vault.h>

#include "kc.h"

#if __has_include("pkcs11/pkcs11_cli.h")
#include "pkcs11/pkcs11_cli.h"
#endif

enum {
    EXIT_USAGE = 2,
    EXIT_NOTFOUND = 3,
    EXIT_AUTH = 4,
    EXIT_CORRUPT = 5,
    EXIT_INVALID = 6,
};

/* Options; each command lists the ones it accepts. */
enum {
    O_PROVIDER = 1u << 0,
    O_KEYID = 1u << 1,
    O_CONFIG = 1u << 2,
    O_STORE = 1u << 3,
    O_IN = 1u << 4,
    O_OUT = 1u << 5,
    O_SIG = 1u << 6,
    O_META = 1u << 7,
    O_OVERWRITE = 1u << 8,
    O_BACKUP_PW = 1u << 9,
};
#define O_COMMON (O_PROVIDER | O_KEYID | O_CONFIG | O_STORE)

typedef struct {
    const char *cmd; /* for messages: "sign", "vault store" ... */
    const char *provider;
    const char *key_id;
    hsm_config *config;
    const char *store_dir;
    const char *password_file;
    uint64_t kdf_ops;
    uint64_t kdf_mem;
    const char *in;
    const char *out;
    const char *signature;
    const char *scheme;
    const char *party_index;
    const char *threshold;
    const char *total;
    const char *public_share;
    const char *group_key;
    const char *backup_pw_file;
    bool overwrite;
    int argc; /* positional arguments left */
    char **argv;
} opts;

typedef struct {
    const char *name;
    int (*fn)(opts *o);
    unsigned allowed;
    int npos; /* positional arguments required */
    const char *usage;
    const char *help;
} command;

/* ---- messages and exit codes --------------------------------------- */

static void fail_msg(const opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
fail_msg(const opts *o, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "hsm: %s: ", o->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int
exit_code(hsm_err rc)
{
    switch (rc) {
    case HSM_OK:
        return 0;
    case HSM_ENOTFOUND:
        return EXIT_NOTFOUND;
    case HSM_EAUTH:
        return EXIT_AUTH;
    case HSM_ECORRUPT:
        return EXIT_CORRUPT;
    default:
        return 1;
    }
}

/* Report an error with the object's diagnostic (never secret). */
static int
fail(const opts *o, hsm_err rc, const char *detail)
{
    if (detail && detail[0])
        fail_msg(o, "%s: %s", hsm_strerror(rc), detail);
    else
        fail_msg(o, "%s", hsm_strerror(rc));
    return exit_code(rc);
}

/* ---- input and output ---------------------------------------------- */

static int
read_input(const opts *o, const char *path, bool secure, size_t max,
           uint8_t **buf, size_t *len)
{
    int r = path && strcmp(path, "-") != 0
                ? kc_read_file(path, max, secure, buf, len)
                : kc_read_fd(STDIN_FILENO, max, secure, buf, len);

    if (r == 0)
        return 0;
    if (r == -EFBIG)
        fail_msg(o, "input is larger than %zu bytes", max);
    else
        fail_msg(o, "cannot read %s: %s", path ? path : "standard input",
                 strerror(-r));
    return r == -ENOENT ? EXIT_NOTFOUND : 1;
}

static int
write_output(const opts *o, const char *path, const void *data, size_t len)
{
    const uint8_t *p = data;

    if (path && strcmp(path, "-") != 0) {
        int r = kc_write_file_atomic(path, data, len, 0600);
        if (r != 0) {
            fail_msg(o, "cannot write %s: %s", path, strerror(-r));
            return 1;
        }
        return 0;
    }
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fail_msg(o, "cannot write standard output: %s", strerror(errno));
            return 1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Secrets go only to a pipe or a redirection chosen by the caller: never
 * to a terminal (screen, scrollback) and never to a file of ours (no
 * plaintext secret on disk), so the commands that print them have no
 * --out. */
static int
refuse_tty(const opts *o, const char *what)
{
    if (isatty(STDOUT_FILENO)) {
        fail_msg(o,
                 "refusing to print %s to a terminal (pipe it to the "
                 "program that needs it)",
                 what);
        return 1;
    }
    return 0;
}

/* ---- store --------------------------------------------------------- */

/* Open (creating) the ZapDB store of --store, or none. Its password comes
 * from --password-file, else HSM_STORE_PASSWORD, else a terminal prompt. */
static int
open_store(const opts *o, hsm_store **st)
{
    char *pw = NULL;
    size_t pw_len = 0;
    int err = 0;
    hsm_err rc;

    *st = NULL;
    if (!o->store_dir)
        return 0;
    switch (kc_password_get(o->password_file, "HSM_STORE_PASSWORD",
                            "hsm store password: ", &pw, &pw_len, &err)) {
    case KC_PW_OK:
        break;
    case KC_PW_EPERM:
        fail_msg(o,
                 "password file %s has mode %04o; it must not be readable "
                 "by group or others (chmod 600)",
                 o->password_file, (unsigned)err & 07777u);
        return 1;
    case KC_PW_EIO:
        fail_msg(o, "cannot read password file %s: %s", o->password_file,
                 strerror(err));
        return err == ENOENT ? EXIT_NOTFOUND : 1;
    case KC_PW_EMPTY:
        fail_msg(o, "the store password is empty");
        return 1;
    default:
        fail_msg(o, "no store password: use --password-file");
        return EXIT_USAGE;
    }
    rc = hsm_store_open(o->store_dir, (const uint8_t *)pw, pw_len, true,
                        o->kdf_ops, (size_t)o->kdf_mem, st);
    kc_secure_free(pw);
    if (rc == HSM_EAUTH) {
        fail_msg(o, "wrong password for store %s", o->store_dir);
        return EXIT_AUTH;
    }
    if (rc != HSM_OK)
        return fail(o, rc, o->store_dir);
    return 0;
}

/* ---- signers ------------------------------------------------------- */

static int
make_signer(const opts *o, hsm_store **st, hsm_signer **s)
{
    char detail[HSM_DETAIL_MAX];
    hsm_err rc;
    int ec;

    *s = NULL;
    if ((ec = open_store(o, st)) != 0)
        return ec;
    rc = hsm_signer_new_ex(o->provider, o->config, *st, s, detail,
                           sizeof detail);
    if (rc != HSM_OK)
        return fail(o, rc, detail);
    if (!*st && (strcmp(hsm_signer_provider(*s), "local") == 0 ||
                 strcmp(hsm_signer_provider(*s), "mldsa") == 0))
        fprintf(stderr,
                "hsm: %s: warning: no --store, the key lives only "
                "in this process\n",
                o->cmd);
    return 0;
}

static int
cmd_sign(opts *o)
{
    hsm_store *st = NULL;
    hsm_signer *s = NULL;
    uint8_t *msg = NULL, *sig = NULL;
    size_t msg_len = 0, sig_len = 0;
    hsm_err rc;
    int ec;

    if ((ec = make_signer(o, &st, &s)) != 0)
        goto out;
    if ((ec = read_input(o, o->in, false, HSM_MAX_MESSAGE, &msg, &msg_len)))
        goto out;
    rc = hsm_signer_sign(s, o->key_id, msg, msg_len, &sig, &sig_len);
    if (rc != HSM_OK) {
        ec = fail(o, rc, hsm_signer_last_error(s));
        goto out;
    }
    ec = write_output(o, o->out, sig, sig_len);
out:
    free(msg);
    hsm_free(sig);
    hsm_signer_free(s);
    hsm_store_free(st);
    return ec;
}

static int
cmd_verify(opts *o)
{
    hsm_store *st = NULL;
    hsm_signer *s = NULL;
    uint8_t *msg = NULL, *sig = NULL;
    size_t msg_len = 0, sig_len = 0;
    bool valid = false;
    hsm_err rc;
    int ec;

    if (!o->signature) {
        fail_msg(o, "--signature FILE is required");
        return EXIT_USAGE;
    }
    if ((ec = make_signer(o, &st, &s)) != 0)
        goto out;
    if ((ec = read_input(o, o->signature, false, 1024 * 1024, &sig,
                         &sig_len)) != 0 ||
        (ec = read_input(o, o->in, false, HSM_MAX_MESSAGE, &msg, &msg_len)))
        goto out;
    rc = hsm_signer_verify(s, o->key_id, msg, msg_len, sig, sig_len, &valid);
    if (rc != HSM_OK) {
        ec = fail(o, rc, hsm_signer_last_error(s));
        goto out;
    }
    if (!valid) {
        fail_msg(o, "signature is not valid");
        ec = EXIT_INVALID;
        goto out;
    }
    ec = 0;
out:
    free(msg);
    free(sig);
    hsm_signer_free(s);
    hsm_store_free(st);
    return ec;
}

static int
cmd_pubkey(opts *o)
{
    hsm_store *st = NULL;
    hsm_signer *s = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    char *pem = NULL;
    hsm_err rc;
    int ec;

    if ((ec = make_signer(o, &st, &s)) != 0)
        goto out;
    rc = hsm_signer_public_key(s, o->key_id, &der, &der_len);
    if (rc == HSM_OK)
        rc = hsm_pubkey_der_to_pem(der, der_len, &pem);
    if (rc != HSM_OK) {
        ec = fail(o, rc, hsm_signer_last_error(s));
        goto out;
    }
    ec = write_output(o, o->out, pem, strlen(pem));
out:
    hsm_free(pem);
    hsm_free(der);
    hsm_signer_free(s);
    hsm_store_free(st);
    return ec;
}

/* ---- passwords ----------------------------------------------------- */

static int
make_password(const opts *o, hsm_password_provider **p)
{
    char detail[HSM_DETAIL_MAX];
    hsm_err rc;

    rc = hsm_password_provider_new_ex(o->provider, o->config, p, detail,
                                      sizeof detail);
    return rc == HSM_OK ? 0 : fail(o, rc, detail);
}

static int
cmd_password(opts *o)
{
    hsm_password_provider *p = NULL;
    hsm_secret *pw = NULL;
    hsm_err rc;
    int ec;

    if ((ec = refuse_tty(o, "a password")) != 0)
        return ec;
    if ((ec = make_password(o, &p)) != 0)
        return ec;
    rc = hsm_password_get(p, o->key_id, &pw);
    if (rc != HSM_OK)
        ec = fail(o, rc, hsm_password_provider_last_error(p));
    else
        ec = write_output(o, NULL, pw->data, pw->len);
    hsm_secret_free(pw);
    hsm_password_provider_free(p);
    return ec;
}

/* ---- vault --------------------------------------------------------- */

typedef struct {
    hsm_store *st;
    hsm_password_provider *pw;
    hsm_vault *v;
} vault_ctx;

static void
vault_close(vault_ctx *c)
{
    hsm_vault_free(c->v);
    hsm_password_provider_free(c->pw);
    hsm_store_free(c->st);
}

/* The vault lives in --store; its password comes from the password
 * provider --provider (default env) with --key-id. */
static int
vault_open(const opts *o, vault_ctx *c)
{
    hsm_err rc;
    int ec;

    memset(c, 0, sizeof *c);
    if (!o->store_dir) {
        fail_msg(o, "--store DIR is required");
        return EXIT_USAGE;
    }
    if ((ec = open_store(o, &c->st)) != 0 || (ec = make_password(o, &c->pw)))
        return ec;
    rc = hsm_vault_new(c->st, c->pw, o->key_id, 0, &c->v);
    return rc == HSM_OK ? 0 : fail(o, rc, NULL);
}

static int
parse_u32(const opts *o, const char *name, const char *s, uint32_t def,
          uint32_t *out)
{
    uint64_t v;

    if (!s) {
        *out = def;
        return 0;
    }
    if (kc_parse_u64(s, &v) != 0 || v > UINT32_MAX) {
        fail_msg(o, "%s must be a number", name);
        return EXIT_USAGE;
    }
    *out = (uint32_t)v;
    return 0;
}

static int
parse_hex(const opts *o, const char *name, const char *s, uint8_t **out,
          size_t *len)
{
    size_t n = s ? strlen(s) : 0;

    *out = NULL;
    *len = 0;
    if (!s)
        return 0;
    if (n > 2 * HSM_VAULT_MAX_PUBLIC || !(*out = malloc(n / 2 + 1)) ||
        kc_hex_decode(s, n, *out, n / 2 + 1, len) != 0) {
        fail_msg(o, "%s must be hex", name);
        return EXIT_USAGE;
    }
    return 0;
}

static int
cmd_vault_store(opts *o)
{
    hsm_share_meta m = {0};
    vault_ctx c = {0};
    uint8_t *share = NULL;
    size_t share_len = 0;
    hsm_err rc;
    int ec;

    if (!o->scheme) {
        fail_msg(o, "--scheme is required (frost, cmp, bls, ringtail or a "
                    "number)");
        return EXIT_USAGE;
    }
    if (hsm_scheme_from_name(o->scheme, &m.scheme) != HSM_OK) {
        fail_msg(o, "unknown scheme '%s'", o->scheme);
        return EXIT_USAGE;
    }
    if ((ec = parse_u32(o, "--party-index", o->party_index, 0,
                        &m.party_index)) ||
        (ec = parse_u32(o, "--threshold", o->threshold, 1, &m.threshold)) ||
        (ec = parse_u32(o, "--total", o->total, 1, &m.total_parties)) ||
        (ec = parse_hex(o, "--public-share", o->public_share, &m.public_share,
                        &m.public_share_len)) ||
        (ec = parse_hex(o, "--group-key", o->group_key, &m.group_key,
                        &m.group_key_len)))
        goto out;
    if ((!o->in || strcmp(o->in, "-") == 0) && isatty(STDIN_FILENO)) {
        fail_msg(o, "refusing to read a key share from a terminal (it would "
                    "echo): pipe it in or use --in");
        ec = 1;
        goto out;
    }
    if ((ec = read_input(o, o->in, true, HSM_VAULT_MAX_SHARE, &share,
                         &share_len)) != 0)
        goto out;
    if ((ec = vault_open(o, &c)) != 0)
        goto out;
    rc = hsm_vault_store(c.v, o->argv[0], share, share_len, &m, o->overwrite);
    ec = rc == HSM_OK ? 0 : fail(o, rc, hsm_vault_last_error(c.v));
    if (rc == HSM_EEXIST)
        ec = 1;
out:
    kc_secure_free(share);
    hsm_share_meta_clear(&m);
    vault_close(&c);
    return ec;
}

static int
cmd_vault_load(opts *o)
{
    vault_ctx c = {0};
    hsm_secret *share = NULL;
    hsm_err rc;
    int ec;

    if ((ec = refuse_tty(o, "a key share")) != 0 ||
        (ec = vault_open(o, &c)) != 0)
        goto out;
    rc = hsm_vault_load(c.v, o->argv[0], &share, NULL);
    if (rc != HSM_OK) {
        ec = fail(o, rc, hsm_vault_last_error(c.v));
        goto out;
    }
    ec = write_output(o, NULL, share->data, share->len);
out:
    hsm_secret_free(share);
    vault_close(&c);
    return ec;
}

static int
cmd_vault_list(opts *o)
{
    vault_ctx c = {0};
    char **ids = NULL;
    size_t n = 0;
    hsm_err rc;
    int ec;

    if ((ec = vault_open(o, &c)) != 0)
        goto out;
    if ((rc = hsm_vault_list(c.v, &ids, &n)) != HSM_OK) {
        ec = fail(o, rc, hsm_vault_last_error(c.v));
        goto out;
    }
    /* id, scheme, party index, threshold, total (tab-separated) */
    for (size_t i = 0; i < n; i++) {
        hsm_share_meta m;
        rc = hsm_vault_metadata(c.v, ids[i], &m);
        if (rc != HSM_OK) {
            ec = fail(o, rc, hsm_vault_last_error(c.v));
            goto out;
        }
        printf("%s\t%s\t%u\t%u\t%u\n", ids[i], hsm_scheme_name(m.scheme),
               (unsigned)m.party_index, (unsigned)m.threshold,
               (unsigned)m.total_parties);
        hsm_share_meta_clear(&m);
    }
    ec = fflush(stdout) == 0 ? 0 : 1;
out:
    hsm_list_free(ids, n);
    vault_close(&c);
    return ec;
}

static int
cmd_vault_delete(opts *o)
{
    vault_ctx c = {0};
    hsm_err rc;
    int ec;

    if ((ec = vault_open(o, &c)) == 0) {
        rc = hsm_vault_delete(c.v, o->argv[0]);
        ec = rc == HSM_OK ? 0 : fail(o, rc, hsm_vault_last_error(c.v));
    }
    vault_close(&c);
    return ec;
}

/* The backup password: --backup-password-file, else the vault's own. */
static int
backup_password(const opts *o, char **pw, size_t *pw_len)
{
    int err = 0;

    *pw = NULL;
    *pw_len = 0;
    if (!o->backup_pw_file)
        return 0;
    switch (kc_password_get(o->backup_pw_file, NULL, NULL, pw, pw_len, &err)) {
    case KC_PW_OK:
        return 0;
    case KC_PW_EPERM:
        fail_msg(o,
                 "password file %s has mode %04o; it must not be readable "
                 "by group or others (chmod 600)",
                 o->backup_pw_file, (unsigned)err & 07777u);
        return 1;
    case KC_PW_EMPTY:
        fail_msg(o, "backup password file %s is empty", o->backup_pw_file);
        return 1;
    default:
        fail_msg(o, "cannot read backup password file %s: %s",
                 o->backup_pw_file, strerror(err));
        return err == ENOENT ? EXIT_NOTFOUND : 1;
    }
}

static int
cmd_vault_backup_restore(opts *o, bool restore)
{
    vault_ctx c = {0};
    char *pw = NULL;
    size_t pw_len = 0, count = 0;
    hsm_err rc;
    int ec;

    if ((ec = backup_password(o, &pw, &pw_len)) != 0 ||
        (ec = vault_open(o, &c)) != 0)
        goto out;
    if (restore)
        rc = hsm_vault_restore(c.v, o->argv[0], (const uint8_t *)pw, pw_len,
                               o->overwrite, &count);
    else
        rc = hsm_vault_backup(c.v, o->argv[0], (const uint8_t *)pw, pw_len,
                              &count);
    if (rc != HSM_OK) {
        ec = fail(o, rc, hsm_vault_last_error(c.v));
        goto out;
    }
    fprintf(stderr, "hsm: %s: %zu key share%s\n", o->cmd, count,
            count == 1 ? "" : "s");
out:
    kc_secure_free(pw);
    vault_close(&c);
    return ec;
}

static int
cmd_vault_backup(opts *o)
{
    return cmd_vault_backup_restore(o, false);
}

static int
cmd_vault_restore(opts *o)
{
    return cmd_vault_backup_restore(o, true);
}

/* ---- command tables ------------------------------------------------ */

static const command commands[] = {
    {"sign", cmd_sign, O_COMMON | O_IN | O_OUT, 0,
     "hsm sign [--provider NAME] [--key-id ID] [--in FILE] [--out FILE]",
     "Sign the message (stdin or --in); the raw signature goes to stdout or "
     "--out."},
    {"verify", cmd_verify, O_COMMON | O_IN | O_SIG, 0,
     "hsm verify --signature FILE [--provider NAME] [--key-id ID] [--in FILE]",
     "Verify a signature over the message; exit 0 if valid, 6 if not."},
    {"pubkey", cmd_pubkey, O_COMMON | O_OUT, 0,
     "hsm pubkey [--provider NAME] [--key-id ID] [--out FILE]",
     "Print the public key (PEM SubjectPublicKeyInfo)."},
    {"password", cmd_password, O_PROVIDER | O_KEYID | O_CONFIG, 0,
     "hsm password [--provider NAME] [--key-id ID]",
     "Print a password to a pipe (never to a terminal or a file)."},
};

static const command vault_commands[] = {
    {"store", cmd_vault_store, O_COMMON | O_IN | O_META | O_OVERWRITE, 1,
     "hsm vault store ID --store DIR --scheme S [--party-index N] "
     "[--threshold T] [--total N] [--public-share HEX] [--group-key HEX] "
     "[--overwrite] [--in FILE]",
     "Encrypt and keep the key share read from stdin (or --in)."},
    {"load", cmd_vault_load, O_COMMON, 1, "hsm vault load ID --store DIR",
     "Decrypt a key share to a pipe (never to a terminal or a file)."},
    {"list", cmd_vault_list, O_COMMON, 0, "hsm vault list --store DIR",
     "List shares: id, scheme, party index, threshold, total (tab-separated)."},
    {"delete", cmd_vault_delete, O_COMMON, 1, "hsm vault delete ID --store DIR",
     "Delete a key share."},
    {"backup", cmd_vault_backup, O_COMMON | O_BACKUP_PW, 1,
     "hsm vault backup FILE --store DIR [--backup-password-file F]",
     "Write every share to an encrypted backup file (mode 0600)."},
    {"restore", cmd_vault_restore, O_COMMON | O_BACKUP_PW | O_OVERWRITE, 1,
     "hsm vault restore FILE --store DIR [--backup-password-file F] "
     "[--overwrite]",
     "Restore the shares of a backup file."},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])
#define NVAULT    (sizeof vault_commands / sizeof vault_commands[0])

static void
print_common_help(FILE *f)
{
    fputs("Common options:\n"
          "  --provider NAME      signer (local, mldsa, aws, gcp, azure, "
          "zymbit, pkcs11)\n"
          "                       or password provider (env, file, aws, gcp, "
          "azure, pkcs11)\n"
          "  --key-id ID          key id (vault: the password's key id)\n"
          "  --config KEY=VALUE   provider configuration (repeatable)\n"
          "  --store DIR          ZapDB store for local/ML-DSA keys and the "
          "vault (created\n"
          "                       if missing)\n"
          "  --password-file F    the store's password (else "
          "HSM_STORE_PASSWORD, else a prompt)\n"
          "  --help               this help\n"
          "Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 wrong "
          "password,\n"
          "5 corrupt/tampered, 6 invalid signature.\n",
          f);
}

static void
print_usage(FILE *f)
{
    fputs("usage: hsm <command> [options]\n\nCommands:\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %s\n      %s\n", commands[i].usage, commands[i].help);
    for (size_t i = 0; i < NVAULT; i++)
        fprintf(f, "  %s\n      %s\n", vault_commands[i].usage,
                vault_commands[i].help);
#ifdef HSM_HAVE_PKCS11_CLI
    fputs("  hsm pkcs11 ...\n      PKCS#11 token commands (hsm pkcs11 "
          "--help).\n",
          f);
#endif
    fputc('\n', f);
    print_common_help(f);
}

enum {
    L_PROVIDER = 256,
    L_KEYID,
    L_CONFIG,
    L_STORE,
    L_PWFILE,
    L_IN,
    L_OUT,
    L_SIG,
    L_SCHEME,
    L_PARTY,
    L_THRESHOLD,
    L_TOTAL,
    L_PUB,
    L_GK,
    L_OVERWRITE,
    L_BACKUP_PW,
    L_KDF_OPS,
    L_KDF_MEM,
    L_HELP,
};

static const struct option long_opts[] = {
    {"provider", required_argument, NULL, L_PROVIDER},
    {"key-id", required_argument, NULL, L_KEYID},
    {"config", required_argument, NULL, L_CONFIG},
    {"store", required_argument, NULL, L_STORE},
    {"password-file", required_argument, NULL, L_PWFILE},
    {"store-kdf-opslimit", required_argument, NULL, L_KDF_OPS},
    {"store-kdf-memlimit", required_argument, NULL, L_KDF_MEM},
    {"in", required_argument, NULL, L_IN},
    {"out", required_argument, NULL, L_OUT},
    {"signature", required_argument, NULL, L_SIG},
    {"scheme", required_argument, NULL, L_SCHEME},
    {"party-index", required_argument, NULL, L_PARTY},
    {"threshold", required_argument, NULL, L_THRESHOLD},
    {"total", required_argument, NULL, L_TOTAL},
    {"public-share", required_argument, NULL, L_PUB},
    {"group-key", required_argument, NULL, L_GK},
    {"overwrite", no_argument, NULL, L_OVERWRITE},
    {"backup-password-file", required_argument, NULL, L_BACKUP_PW},
    {"help", no_argument, NULL, L_HELP},
    {NULL, 0, NULL, 0},
};

/* Which command flag an option needs (0: always allowed). */
static unsigned
opt_flag(int c)
{
    switch (c) {
    case L_PROVIDER:
        return O_PROVIDER;
    case L_KEYID:
        return O_KEYID;
    case L_CONFIG:
        return O_CONFIG;
    case L_STORE:
    case L_PWFILE:
    case L_KDF_OPS:
    case L_KDF_MEM:
        return O_STORE;
    case L_IN:
        return O_IN;
    case L_OUT:
        return O_OUT;
    case L_SIG:
        return O_SIG;
    case L_SCHEME:
    case L_PARTY:
    case L_THRESHOLD:
    case L_TOTAL:
    case L_PUB:
    case L_GK:
        return O_META;
    case L_OVERWRITE:
        return O_OVERWRITE;
    case L_BACKUP_PW:
        return O_BACKUP_PW;
    default:
        return 0;
    }
}

static int
set_opt(opts *o, int c, const char *arg)
{
    switch (c) {
    case L_PROVIDER:
        o->provider = arg;
        break;
    case L_KEYID:
        o->key_id = arg;
        break;
    case L_CONFIG:
        if (hsm_config_set_kv(o->config, arg) != HSM_OK) {
            fail_msg(o, "--config wants KEY=VALUE");
            return EXIT_USAGE;
        }
        break;
    case L_STORE:
        o->store_dir = arg;
        break;
    case L_PWFILE:
        o->password_file = arg;
        break;
    case L_KDF_OPS:
    case L_KDF_MEM:
        if (kc_parse_u64(arg, c == L_KDF_OPS ? &o->kdf_ops : &o->kdf_mem)) {
            fail_msg(o, "KDF limits must be numbers");
            return EXIT_USAGE;
        }
        break;
    case L_IN:
        o->in = arg;
        break;
    case L_OUT:
        o->out = arg;
        break;
    case L_SIG:
        o->signature = arg;
        break;
    case L_SCHEME:
        o->scheme = arg;
        break;
    case L_PARTY:
        o->party_index = arg;
        break;
    case L_THRESHOLD:
        o->threshold = arg;
        break;
    case L_TOTAL:
        o->total = arg;
        break;
    case L_PUB:
        o->public_share = arg;
        break;
    case L_GK:
        o->group_key = arg;
        break;
    case L_OVERWRITE:
        o->overwrite = true;
        break;
    case L_BACKUP_PW:
        o->backup_pw_file = arg;
        break;
    default:
        return EXIT_USAGE;
    }
    return 0;
}

/* Parse argv (argv[0] is the command word) and run the command. */
static int
run(const command *cmd, const char *label, int argc, char **argv)
{
    opts o = {0};
    int c, li = -1, ec = 0;

    o.cmd = label;
    if (hsm_config_new(&o.config) != HSM_OK) {
        fail_msg(&o, "out of memory");
        return 1;
    }
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", long_opts, &li)) != -1) {
        if (c == L_HELP) {
            printf("usage: %s\n%s\n\n", cmd->usage, cmd->help);
            print_common_help(stdout);
            goto out;
        }
        if (c == '?' || c == ':' || (opt_flag(c) & cmd->allowed) == 0) {
            if (c == '?' || c == ':' || li < 0)
                fail_msg(&o, "unknown option '%s' (see hsm %s --help)",
                         argv[optind - 1], label);
            else
                fail_msg(&o,
                         "option '--%s' does not apply here (see hsm %s "
                         "--help)",
                         long_opts[li].name, label);
            ec = EXIT_USAGE;
            goto out;
        }
        if ((ec = set_opt(&o, c, optarg)) != 0)
            goto out;
        li = -1;
    }
    o.argc = argc - optind;
    o.argv = argv + optind;
    if (o.argc != cmd->npos) {
        fail_msg(&o, "usage: %s", cmd->usage);
        ec = EXIT_USAGE;
        goto out;
    }
    ec = cmd->fn(&o);
out:
    hsm_config_free(o.config);
    return ec;
}

static const command *
find(const command *tab, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(tab[i].name, name) == 0)
            return &tab[i];
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    const command *cmd;
    char label[32];

    kc_harden_process();
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        print_usage(stdout);
        return 0;
    }
#ifdef HSM_HAVE_PKCS11_CLI
    if (strcmp(argv[1], "pkcs11") == 0)
        return hsm_pkcs11_cli(argc - 1, argv + 1);
#endif
    if (strcmp(argv[1], "vault") == 0) {
        if (argc < 3 || strcmp(argv[2], "--help") == 0) {
            print_usage(argc < 3 ? stderr : stdout);
            return argc < 3 ? EXIT_USAGE : 0;
        }
        cmd = find(vault_commands, NVAULT, argv[2]);
        if (!cmd) {
            fprintf(stderr,
                    "hsm: vault: unknown command '%s' (see hsm "
                    "--help)\n",
                    argv[2]);
            return EXIT_USAGE;
        }
        snprintf(label, sizeof label, "vault %s", cmd->name);
        return run(cmd, label, argc - 2, argv + 2);
    }
    cmd = find(commands, NCOMMANDS, argv[1]);
    if (!cmd) {
        fprintf(stderr, "hsm: unknown command '%s' (see hsm --help)\n",
                argv[1]);
        return EXIT_USAGE;
    }
    return run(cmd, cmd->name, argc - 1, argv + 1);
}
