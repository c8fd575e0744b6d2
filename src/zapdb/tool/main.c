/* SPDX-License-Identifier: Apache-2.0 */
/* zapdb: command-line front end to libzapdb. This file holds the
 * subcommand table, the option parser and the help texts; the commands
 * themselves live in cmd_records.c and cmd_store.c. */
#include "zt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc.h"

#define ZT_VERSION "0.1.0"

#define ZT_KDF_OPS_MAX 64u
#define ZT_KDF_MEM_MIN 8192u
#define ZT_KDF_MEM_MAX (4ull * 1024u * 1024u * 1024u)

typedef struct zt_cmd {
    const char *name;
    int (*fn)(const zt_args *a);
    unsigned opts;  /* ZT_OPT_* accepted */
    size_t min_pos; /* positional arguments, fewest and most */
    size_t max_pos;
    const char *synopsis;
    const char *summary;
    const char *details;
} zt_cmd;

typedef struct zt_optdef {
    const char *name;
    unsigned bit;
    const char *metavar; /* NULL: a flag without value */
    const char *help;
} zt_optdef;

#define ZT_OPEN (ZT_OPT_PWFILE | ZT_OPT_SYNC)

static const zt_cmd zt_cmds[] = {
    {"init", zt_cmd_init, ZT_OPEN | ZT_OPT_KDF, 1, 1, "init DIR",
     "create a new empty store",
     "Creates DIR (mode 0700) and a new store in it, protected by the\n"
     "password. Fails if DIR already holds a store. On a terminal the\n"
     "password is asked twice.\n"},
    {"put", zt_cmd_put, ZT_OPEN | ZT_OPT_IN | ZT_OPT_KEYHEX, 2, 3,
     "put DIR BUCKET (KEY | --key-hex HEX) [--in FILE]",
     "store a value read from stdin or FILE",
     "Stores the value read from standard input (or from FILE with --in)\n"
     "under KEY in BUCKET, replacing any previous value. The bucket is\n"
     "created if needed. Values never come from the command line.\n"},
    {"get", zt_cmd_get, ZT_OPEN | ZT_OPT_OUT | ZT_OPT_KEYHEX, 2, 3,
     "get DIR BUCKET (KEY | --key-hex HEX) [--out FILE]",
     "write a value to stdout or FILE",
     "Writes the raw value of KEY in BUCKET to standard output, or with\n"
     "--out to FILE (created with mode 0600, written atomically).\n"
     "Exits 3 if the bucket or key does not exist.\n"},
    {"del", zt_cmd_del, ZT_OPEN | ZT_OPT_KEYHEX, 2, 3,
     "del DIR BUCKET (KEY | --key-hex HEX)", "delete a key",
     "Deletes KEY from BUCKET. Exits 3 if it does not exist.\n"},
    {"ls", zt_cmd_ls, ZT_OPEN | ZT_OPT_PREFIX, 1, 2,
     "ls DIR [BUCKET] [--prefix P | --prefix-hex HEX]",
     "list buckets, or the keys of a bucket",
     "Without BUCKET, prints the bucket names; with BUCKET, its keys in\n"
     "bytewise order, optionally only those starting with a prefix. One\n"
     "name per line; a name with bytes that are not printable ASCII (or\n"
     "that starts with \"hex:\") is printed as \"hex:\" and its hex digits.\n"},
    {"passwd", zt_cmd_passwd, ZT_OPEN | ZT_OPT_NEWPW | ZT_OPT_KDF, 1, 1,
     "passwd DIR [--new-password-file FILE]", "change the password",
     "Re-wraps the store's data keys under the new password (read from\n"
     "--new-password-file, else $ZAPDB_NEW_PASSWORD, else asked twice on\n"
     "the terminal). Records are not rewritten. --kdf-ops/--kdf-mem set a\n"
     "new KDF cost (default: keep the current one).\n"},
    {"rekey", zt_cmd_rekey, ZT_OPEN, 1, 1, "rekey DIR",
     "rotate the data key and re-encrypt every record",
     "Generates a new data-encryption key and re-encrypts every record\n"
     "with it. Crash-safe; other writers wait while it runs.\n"},
    {"verify", zt_cmd_verify, ZT_OPEN, 1, 1, "verify DIR",
     "authenticate every record",
     "Decrypts and authenticates every record. Prints each bad record as\n"
     "\"bucket <name> position <n>: <error>\" and a summary line. Exits 5\n"
     "if any record is bad. Never prints record contents.\n"},
    {"backup", zt_cmd_backup, ZT_OPEN, 2, 2, "backup DIR FILE",
     "write a consistent encrypted backup",
     "Writes a consistent snapshot of the store to FILE (mode 0600,\n"
     "atomically), encrypted under the store's current password.\n"},
    {"restore", zt_cmd_restore, ZT_OPEN, 2, 2, "restore FILE DIR",
     "restore a backup into a new store",
     "Creates a new store in DIR (which must not exist or be empty) from\n"
     "the backup FILE, using the password the backup was made with. Exits\n"
     "4 for a wrong password, 5 for a damaged or truncated file.\n"},
    {"stats", zt_cmd_stats, ZT_OPEN | ZT_OPT_JSON, 1, 1, "stats DIR [--json]",
     "print store statistics",
     "Prints record and bucket counts, file and map sizes, B+tree depth,\n"
     "data-key generation, format version and KDF parameters, one\n"
     "\"name value\" pair a line, or one JSON object with --json.\n"},
};

static const zt_optdef zt_optdefs[] = {
    {"--password-file", ZT_OPT_PWFILE, "FILE",
     "read the password from FILE (must not be readable by group/others)"},
    {"--sync", ZT_OPT_SYNC, "MODE",
     "durability of commits: full (default), meta or none"},
    {"--in", ZT_OPT_IN, "FILE", "read the value from FILE instead of stdin"},
    {"--out", ZT_OPT_OUT, "FILE",
     "write the value to FILE (mode 0600, atomic) instead of stdout"},
    {"--key-hex", ZT_OPT_KEYHEX, "HEX", "give the key as hex (binary keys)"},
    {"--prefix", ZT_OPT_PREFIX, "P", "list only keys starting with P"},
    {"--prefix-hex", ZT_OPT_PREFIX, "HEX", "the prefix as hex"},
    {"--new-password-file", ZT_OPT_NEWPW, "FILE",
     "read the new password from FILE"},
    {"--kdf-ops", ZT_OPT_KDF, "N", "Argon2id passes (default 3)"},
    {"--kdf-mem", ZT_OPT_KDF, "BYTES", "Argon2id memory (default 64 MiB)"},
    {"--json", ZT_OPT_JSON, NULL, "print JSON"},
};

static void
usage_tool(FILE *f)
{
    fprintf(f, "Usage: zapdb <command> [arguments] [options]\n\n"
               "An encrypted key-value store on the command line.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < sizeof zt_cmds / sizeof zt_cmds[0]; i++)
        fprintf(f, "  %-8s %s\n", zt_cmds[i].name, zt_cmds[i].summary);
    fprintf(f, "\n"
               "The password comes from --password-file FILE, else the\n"
               "ZAPDB_PASSWORD environment variable (development only), else\n"
               "a prompt on the terminal.\n"
               "Exit status: 0 ok, 1 error, 2 usage, 3 not found, 4 wrong\n"
               "password, 5 corrupt or tampered.\n"
               "Run \"zapdb <command> --help\" for a command's options.\n");
}

static void
usage_cmd(FILE *f, const zt_cmd *c)
{
    fprintf(f, "Usage: zapdb %s [options]\n\n%s\nOptions:\n", c->synopsis,
            c->details);
    for (size_t i = 0; i < sizeof zt_optdefs / sizeof zt_optdefs[0]; i++) {
        const zt_optdef *o = &zt_optdefs[i];
        char left[64];
        if (!(o->bit & c->opts))
            continue;
        snprintf(left, sizeof left, "%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(f, "  %-26s %s\n", left, o->help);
    }
    fprintf(f, "  %-26s %s\n", "--help", "show this help");
}

static const zt_cmd *
find_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof zt_cmds / sizeof zt_cmds[0]; i++)
        if (strcmp(zt_cmds[i].name, name) == 0)
            return &zt_cmds[i];
    return NULL;
}

static const zt_optdef *
find_opt(const char *name, size_t name_len)
{
    for (size_t i = 0; i < sizeof zt_optdefs / sizeof zt_optdefs[0]; i++) {
        const char *n = zt_optdefs[i].name;
        if (strlen(n) == name_len && memcmp(n, name, name_len) == 0)
            return &zt_optdefs[i];
    }
    return NULL;
}

static bool
set_once(const zt_args *a, const char **slot, const char *name, const char *val)
{
    if (*slot) {
        zt_err(a, "option %s given twice", name);
        return false;
    }
    *slot = val;
    return true;
}

/* Store one option's value. Returns false (after reporting) if invalid. */
static bool
apply_opt(zt_args *a, const zt_optdef *o, const char *val)
{
    const char *n = o->name;

    if (strcmp(n, "--password-file") == 0)
        return set_once(a, &a->password_file, n, val);
    if (strcmp(n, "--new-password-file") == 0)
        return set_once(a, &a->new_password_file, n, val);
    if (strcmp(n, "--in") == 0)
        return set_once(a, &a->in_file, n, val);
    if (strcmp(n, "--out") == 0)
        return set_once(a, &a->out_file, n, val);
    if (strcmp(n, "--key-hex") == 0)
        return set_once(a, &a->key_hex, n, val);
    if (strcmp(n, "--prefix") == 0 || strcmp(n, "--prefix-hex") == 0) {
        if (a->prefix || a->prefix_hex) {
            zt_err(a, "give one --prefix or --prefix-hex");
            return false;
        }
        return set_once(a, n[8] ? &a->prefix_hex : &a->prefix, n, val);
    }
    if (strcmp(n, "--json") == 0) {
        a->json = true;
        return true;
    }
    if (strcmp(n, "--sync") == 0) {
        a->have_sync = true;
        if (strcmp(val, "full") == 0)
            a->sync = ZAP_SYNC_FULL;
        else if (strcmp(val, "meta") == 0)
            a->sync = ZAP_SYNC_META;
        else if (strcmp(val, "none") == 0)
            a->sync = ZAP_SYNC_NONE;
        else {
            zt_err(a, "--sync must be full, meta or none, not \"%s\"", val);
            return false;
        }
        return true;
    }
    if (strcmp(n, "--kdf-ops") == 0 || strcmp(n, "--kdf-mem") == 0) {
        bool ops = n[6] == 'o';
        uint64_t v;
        if (kc_parse_u64(val, &v) != 0 || v == 0) {
            zt_err(a, "%s needs a positive whole number, not \"%s\"", n, val);
            return false;
        }
        /* The limits zap_opts documents (include/zapdb/zapdb.h). */
        if (ops && v > ZT_KDF_OPS_MAX) {
            zt_err(a, "--kdf-ops must be 1 to %u", ZT_KDF_OPS_MAX);
            return false;
        }
        if (!ops &&
            (v < ZT_KDF_MEM_MIN || v > ZT_KDF_MEM_MAX || v > SIZE_MAX)) {
            zt_err(a, "--kdf-mem must be %u to %llu bytes", ZT_KDF_MEM_MIN,
                   (unsigned long long)ZT_KDF_MEM_MAX);
            return false;
        }
        *(ops ? &a->kdf_ops : &a->kdf_mem) = v;
        *(ops ? &a->have_kdf_ops : &a->have_kdf_mem) = true;
        return true;
    }
    zt_err(a, "internal error: unhandled option %s", n);
    return false;
}

/* Parse argv[first..argc). Returns -1 on a usage error (reported), 1 if
 * --help was asked for, 0 otherwise. */
static int
parse_args(const zt_cmd *c, int argc, char **argv, int first, zt_args *a)
{
    bool opts_done = false;

    for (int i = first; i < argc; i++) {
        const char *arg = argv[i], *val = NULL, *eq;
        const zt_optdef *o;
        size_t name_len;

        if (!opts_done &&
            (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0))
            return 1;
        if (!opts_done && strcmp(arg, "--") == 0) {
            opts_done = true;
            continue;
        }
        if (opts_done || arg[0] != '-' || arg[1] == '\0') {
            if (a->pos_count >= c->max_pos) {
                zt_err(a, "too many arguments (see zapdb %s --help)", c->name);
                return -1;
            }
            a->pos[a->pos_count++] = arg;
            continue;
        }
        eq = strchr(arg, '=');
        name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        o = find_opt(arg, name_len);
        if (!o || !(o->bit & c->opts)) {
            zt_err(a, "unknown option %.*s (see zapdb %s --help)",
                   (int)(name_len > 64 ? 64 : name_len), arg, c->name);
            return -1;
        }
        if (o->metavar) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                zt_err(a, "option %s needs a value", o->name);
                return -1;
            }
        } else if (eq) {
            zt_err(a, "option %s takes no value", o->name);
            return -1;
        }
        if (!apply_opt(a, o, val))
            return -1;
    }
    if (a->pos_count < c->min_pos) {
        zt_err(a, "missing arguments (usage: zapdb %s)", c->synopsis);
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    zt_args a;
    const zt_cmd *c;
    int r;

    memset(&a, 0, sizeof a);
    if (kc_harden_process() != 0 || kc_init() != 0) {
        fprintf(stderr,
                "zapdb: cannot harden the process or start libsodium\n");
        return ZT_EXIT_ERR;
    }
    if (argc < 2) {
        fprintf(stderr, "zapdb: no command given (see zapdb --help)\n");
        return ZT_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage_tool(stdout);
        return ZT_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("zapdb %s\n", ZT_VERSION);
        return ZT_EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc < 3) {
            usage_tool(stdout);
            return ZT_EXIT_OK;
        }
        if (!(c = find_cmd(argv[2]))) {
            fprintf(stderr, "zapdb: help: unknown command \"%.64s\"\n",
                    argv[2]);
            return ZT_EXIT_USAGE;
        }
        usage_cmd(stdout, c);
        return ZT_EXIT_OK;
    }
    if (!(c = find_cmd(argv[1]))) {
        fprintf(stderr, "zapdb: unknown command \"%.64s\" (see zapdb --help)\n",
                argv[1]);
        return ZT_EXIT_USAGE;
    }
    a.cmd = c->name;
    r = parse_args(c, argc, argv, 2, &a);
    if (r == 1) {
        usage_cmd(stdout, c);
        return ZT_EXIT_OK;
    }
    if (r < 0)
        return ZT_EXIT_USAGE;
    r = c->fn(&a);
    if (fflush(stdout) != 0 && r == ZT_EXIT_OK) {
        zt_err(&a, "cannot write to standard output");
        r = ZT_EXIT_ERR;
    }
    return r;
}
