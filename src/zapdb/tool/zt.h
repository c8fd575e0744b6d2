/* SPDX-License-Identifier: Apache-2.0 */
/* zt: internals of the `zapdb` command-line tool (never installed).
 *
 * Each subcommand is one zt_cmd_* function taking the parsed arguments and
 * returning the process exit status (ZT_EXIT_*). Errors are reported by the
 * subcommand itself with zt_err()/zt_zap_err(), one line on stderr of the
 * form "zapdb: <subcommand>: <what>". Values and passwords never travel in
 * argv; keys and bucket names do (they are names, not secrets).
 *
 * THREAD SAFETY: single-threaded program; nothing here is thread-safe. */
#ifndef ZT_H
#define ZT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zapdb/zapdb.h>

/* Exit statuses (docs/zapdb-cli.md). */
enum {
    ZT_EXIT_OK = 0,
    ZT_EXIT_ERR = 1,      /* any other error */
    ZT_EXIT_USAGE = 2,    /* bad command line */
    ZT_EXIT_NOTFOUND = 3, /* no such store, bucket or key */
    ZT_EXIT_AUTH = 4,     /* wrong password */
    ZT_EXIT_CORRUPT = 5,  /* corrupt or tampered store or backup */
};

/* Option bits: which options a subcommand accepts. */
#define ZT_OPT_PWFILE 0x001u /* --password-file F */
#define ZT_OPT_SYNC   0x002u /* --sync full|meta|none */
#define ZT_OPT_IN     0x004u /* --in F */
#define ZT_OPT_OUT    0x008u /* --out F */
#define ZT_OPT_KEYHEX 0x010u /* --key-hex HEX */
#define ZT_OPT_PREFIX 0x020u /* --prefix P, --prefix-hex HEX */
#define ZT_OPT_NEWPW  0x040u /* --new-password-file F */
#define ZT_OPT_KDF    0x080u /* --kdf-ops N, --kdf-mem BYTES */
#define ZT_OPT_JSON   0x100u /* --json */

#define ZT_MAX_POS 3

/* The parsed command line of one subcommand. Strings point into argv. */
typedef struct zt_args {
    const char *cmd;             /* subcommand name, for messages */
    const char *pos[ZT_MAX_POS]; /* positional arguments */
    size_t pos_count;
    const char *password_file;
    const char *new_password_file;
    const char *in_file;
    const char *out_file;
    const char *key_hex;
    const char *prefix;     /* --prefix (text) */
    const char *prefix_hex; /* --prefix-hex */
    bool json;
    bool have_sync;
    zap_sync_mode sync;
    bool have_kdf_ops, have_kdf_mem;
    uint64_t kdf_ops;
    uint64_t kdf_mem;
} zt_args;

/* One line on stderr: "zapdb: <cmd>: <formatted message>". */
void zt_err(const zt_args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Report a library error (with the handle's diagnostic when `db` is given
 * and has one) prefixed by `what`, and return the matching exit status. */
int zt_zap_err(const zt_args *a, zap_db *db, zap_err err, const char *what);
/* Exit status for a library error code. */
int zt_exit_for(zap_err err);

/* The operator's password: --password-file, else $ZAPDB_PASSWORD, else a
 * no-echo prompt on the terminal (asked twice when `confirm`). On success
 * *pw is in secure memory (kc_secure_free). Returns an exit status and
 * has reported any error. */
int zt_password(const zt_args *a, const char *file, const char *env_name,
                const char *prompt, bool confirm, char **pw, size_t *pw_len);

/* Store options from the command line (sync mode, KDF cost). */
void zt_opts(const zt_args *a, unsigned flags, zap_opts *opts);

/* Open the store in pos[0] with the operator's password; returns an exit
 * status and has reported any error. */
int zt_open(const zt_args *a, unsigned flags, zap_db **db);

/* The record key: --key-hex, else positional `pos[idx]` as text. Decoded
 * keys are allocated into *key (free()); returns an exit status. */
int zt_record_key(const zt_args *a, size_t idx, uint8_t **key, size_t *key_len);
/* Checks a bucket name's length; returns an exit status. */
int zt_check_bucket(const zt_args *a, const char *bucket);

/* Print a key or name on one line: as text when every byte is printable
 * ASCII (and it does not itself start with "hex:"), else "hex:<digits>". */
int zt_print_name(const uint8_t *p, size_t len);
/* The same without the newline. Both return 0 or -1 (write error). */
int zt_put_name(const uint8_t *p, size_t len);

/* Write all of `len` bytes to `fd`; 0 or -errno. */
int zt_write_all(int fd, const uint8_t *p, size_t len);

/* Progress shown on stderr only when it is a terminal. */
typedef struct zt_progress {
    const char *cmd;
    bool tty;
    bool shown;
    int last_pct;
    uint64_t last_done;
} zt_progress;
void zt_progress_init(zt_progress *p, const char *cmd);
int zt_progress_cb(void *ctx, uint64_t done, uint64_t total);
void zt_progress_end(zt_progress *p);

/* Subcommands. */
int zt_cmd_init(const zt_args *a);
int zt_cmd_put(const zt_args *a);
int zt_cmd_get(const zt_args *a);
int zt_cmd_del(const zt_args *a);
int zt_cmd_ls(const zt_args *a);
int zt_cmd_passwd(const zt_args *a);
int zt_cmd_rekey(const zt_args *a);
int zt_cmd_verify(const zt_args *a);
int zt_cmd_backup(const zt_args *a);
int zt_cmd_restore(const zt_args *a);
int zt_cmd_stats(const zt_args *a);

#endif
