/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the zapdb subcommands: error lines, exit statuses,
 * passwords, opening the store, keys from the command line, progress. */
#include "zt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kc.h"

void
zt_err(const zt_args *a, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line, whatever names the message quotes. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    fprintf(stderr, "zapdb: %s: %s\n", a->cmd, msg);
}

int
zt_exit_for(zap_err err)
{
    switch (err) {
    case ZAP_OK:
        return ZT_EXIT_OK;
    case ZAP_ENOTFOUND:
    case ZAP_ENOSTORE:
        return ZT_EXIT_NOTFOUND;
    case ZAP_EAUTH:
        return ZT_EXIT_AUTH;
    case ZAP_ECORRUPT:
        return ZT_EXIT_CORRUPT;
    default:
        return ZT_EXIT_ERR;
    }
}

int
zt_zap_err(const zt_args *a, zap_db *db, zap_err err, const char *what)
{
    const char *detail = db ? zap_last_error_detail(db) : "";

    if (detail && *detail)
        zt_err(a, "%s: %s (%s)", what, zap_strerror(err), detail);
    else
        zt_err(a, "%s: %s", what, zap_strerror(err));
    return zt_exit_for(err);
}

static int
pw_report(const zt_args *a, kc_pw_status st, const char *file,
          const char *env_name, int e)
{
    switch (st) {
    case KC_PW_OK:
        return ZT_EXIT_OK;
    case KC_PW_NONE:
        zt_err(a,
               "no password: give --password-file FILE, set %s or run on "
               "a terminal",
               env_name);
        return ZT_EXIT_USAGE;
    case KC_PW_EMPTY:
        zt_err(a, "the password is empty");
        return ZT_EXIT_ERR;
    case KC_PW_EIO:
        zt_err(a, "cannot read password file %s: %s", file, strerror(e));
        return ZT_EXIT_ERR;
    case KC_PW_EPERM:
        zt_err(a,
               "password file %s has mode %04o: it must not be readable "
               "by group or others (chmod 600 it)",
               file, (unsigned)e);
        return ZT_EXIT_ERR;
    case KC_PW_ENOMEM:
        zt_err(a, "out of memory");
        return ZT_EXIT_ERR;
    default:
        zt_err(a, "cannot get the password");
        return ZT_EXIT_ERR;
    }
}

int
zt_password(const zt_args *a, const char *file, const char *env_name,
            const char *prompt, bool confirm, char **pw, size_t *pw_len)
{
    char *again = NULL;
    size_t again_len = 0;
    kc_pw_status st;
    int e = 0, rc;

    *pw = NULL;
    *pw_len = 0;
    st = kc_password_get(file, env_name, prompt, pw, pw_len, &e);
    if ((rc = pw_report(a, st, file, env_name, e)) != ZT_EXIT_OK)
        goto out;
    /* Only a typed password is asked again, to catch typing mistakes. */
    if (confirm && !file && !getenv(env_name)) {
        st = kc_password_get(NULL, NULL, "Repeat the password: ", &again,
                             &again_len, &e);
        if ((rc = pw_report(a, st, NULL, env_name, e)) != ZT_EXIT_OK)
            goto out;
        if (again_len != *pw_len || !kc_ct_eq(again, *pw, *pw_len)) {
            zt_err(a, "the two passwords differ");
            rc = ZT_EXIT_ERR;
            goto out;
        }
    }
    rc = ZT_EXIT_OK;
out:
    kc_secure_free(again);
    if (rc != ZT_EXIT_OK) {
        kc_secure_free(*pw);
        *pw = NULL;
        *pw_len = 0;
    }
    return rc;
}

void
zt_opts(const zt_args *a, unsigned flags, zap_opts *opts)
{
    zap_opts_default(opts);
    opts->flags = flags;
    if (a->have_sync)
        opts->sync = a->sync;
    if (a->have_kdf_ops)
        opts->kdf_opslimit = a->kdf_ops;
    if (a->have_kdf_mem)
        opts->kdf_memlimit = (size_t)a->kdf_mem;
}

int
zt_open(const zt_args *a, unsigned flags, zap_db **db)
{
    char *pw = NULL;
    size_t pw_len = 0;
    zap_opts opts;
    zap_err err;
    int rc;

    *db = NULL;
    rc = zt_password(a, a->password_file, "ZAPDB_PASSWORD", "Password: ", false,
                     &pw, &pw_len);
    if (rc != ZT_EXIT_OK)
        return rc;
    zt_opts(a, flags, &opts);
    err = zap_open(a->pos[0], &opts, pw, pw_len, db);
    kc_secure_free(pw);
    if (err != ZAP_OK) {
        *db = NULL;
        if (err == ZAP_ENOSTORE) {
            zt_err(a, "no store at %s", a->pos[0]);
            return ZT_EXIT_NOTFOUND;
        }
        return zt_zap_err(a, NULL, err, "cannot open the store");
    }
    return ZT_EXIT_OK;
}

int
zt_record_key(const zt_args *a, size_t idx, uint8_t **key, size_t *key_len)
{
    const char *src;
    size_t n;

    *key = NULL;
    *key_len = 0;
    if (a->key_hex && a->pos_count > idx) {
        zt_err(a, "give KEY or --key-hex, not both");
        return ZT_EXIT_USAGE;
    }
    if (!a->key_hex && a->pos_count <= idx) {
        zt_err(a, "missing KEY (or --key-hex HEX)");
        return ZT_EXIT_USAGE;
    }
    src = a->key_hex ? a->key_hex : a->pos[idx];
    n = strlen(src);
    if (a->key_hex)
        n /= 2;
    if (n == 0) {
        zt_err(a, "the key is empty");
        return ZT_EXIT_USAGE;
    }
    if (n > ZAP_MAX_KEY) {
        zt_err(a, "the key is longer than %u bytes", ZAP_MAX_KEY);
        return ZT_EXIT_USAGE;
    }
    if (!(*key = malloc(n))) {
        zt_err(a, "out of memory");
        return ZT_EXIT_ERR;
    }
    if (a->key_hex) {
        if (kc_hex_decode(src, strlen(src), *key, n, key_len) != 0) {
            free(*key);
            *key = NULL;
            zt_err(a, "--key-hex needs hex digits, an even number of them");
            return ZT_EXIT_USAGE;
        }
    } else {
        memcpy(*key, src, n);
        *key_len = n;
    }
    return ZT_EXIT_OK;
}

int
zt_check_bucket(const zt_args *a, const char *bucket)
{
    size_t n = strlen(bucket);

    if (n == 0 || n > ZAP_MAX_BUCKET) {
        zt_err(a, "a bucket name has 1 to %u bytes", ZAP_MAX_BUCKET);
        return ZT_EXIT_USAGE;
    }
    return ZT_EXIT_OK;
}

int
zt_put_name(const uint8_t *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    bool text = len > 0 && !(len >= 4 && memcmp(p, "hex:", 4) == 0);

    for (size_t i = 0; text && i < len; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            text = false;
    if (text)
        return fwrite(p, 1, len, stdout) == len ? 0 : -1;
    if (fputs("hex:", stdout) == EOF)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (putchar(digits[p[i] >> 4]) == EOF ||
            putchar(digits[p[i] & 15]) == EOF)
            return -1;
    return 0;
}

int
zt_print_name(const uint8_t *p, size_t len)
{
    if (zt_put_name(p, len) != 0)
        return -1;
    return putchar('\n') == EOF ? -1 : 0;
}

int
zt_write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

void
zt_progress_init(zt_progress *p, const char *cmd)
{
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->tty = isatty(STDERR_FILENO) == 1;
    p->last_pct = -1;
}

int
zt_progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    zt_progress *p = ctx;

    if (!p->tty)
        return 0;
    if (total > 0) {
        int pct = (int)(done >= total ? 100 : done * 100 / total);
        if (pct == p->last_pct)
            return 0;
        p->last_pct = pct;
        fprintf(stderr, "\rzapdb: %s: %3d%% (%llu of %llu records)", p->cmd,
                pct, (unsigned long long)done, (unsigned long long)total);
    } else {
        if (p->shown && done - p->last_done < 1000)
            return 0;
        p->last_done = done;
        fprintf(stderr, "\rzapdb: %s: %llu records", p->cmd,
                (unsigned long long)done);
    }
    p->shown = true;
    return 0;
}

void
zt_progress_end(zt_progress *p)
{
    if (p->tty && p->shown)
        fputc('\n', stderr);
    p->shown = false;
}
