/* SPDX-License-Identifier: Apache-2.0 */
#include "kc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

static pthread_once_t kc_once = PTHREAD_ONCE_INIT;
static int kc_init_rc = -1;

static void
kc_do_init(void)
{
    kc_init_rc = sodium_init() < 0 ? -1 : 0;
}

int
kc_init(void)
{
    pthread_once(&kc_once, kc_do_init);
    return kc_init_rc;
}

void *
kc_secure_alloc(size_t n)
{
    if (kc_init() != 0)
        return NULL;
    return sodium_malloc(n ? n : 1);
}

void
kc_secure_free(void *p)
{
    if (p)
        sodium_free(p);
}

void
kc_wipe(void *p, size_t n)
{
    if (p && n)
        sodium_memzero(p, n);
}

void
kc_free_wipe(void *p, size_t n)
{
    if (!p)
        return;
    sodium_memzero(p, n);
    free(p);
}

bool
kc_ct_eq(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return true;
    return sodium_memcmp(a, b, n) == 0;
}

void
kc_random(void *buf, size_t n)
{
    if (kc_init() != 0)
        abort(); /* no entropy: nothing secure can continue */
    randombytes_buf(buf, n);
}

/* ---- hex and base64 --------------------------------------------------- */

int
kc_hex_encode(const uint8_t *in, size_t in_len, char *out, size_t out_cap)
{
    static const char digits[] = "0123456789abcdef";

    if (in_len > (SIZE_MAX - 1) / 2 || out_cap < in_len * 2 + 1)
        return -1;
    for (size_t i = 0; i < in_len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[in_len * 2] = '\0';
    return 0;
}

static int
hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
kc_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_cap,
              size_t *out_len)
{
    if (hex_len % 2 != 0 || out_cap < hex_len / 2)
        return -1;
    for (size_t i = 0; i < hex_len / 2; i++) {
        int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    if (out_len)
        *out_len = hex_len / 2;
    return 0;
}

char *
kc_b64_encode(const uint8_t *in, size_t in_len, kc_b64_variant v)
{
    int sv = v == KC_B64_URL ? sodium_base64_VARIANT_URLSAFE_NO_PADDING
                             : sodium_base64_VARIANT_ORIGINAL;
    size_t cap;
    char *out;

    if (kc_init() != 0 || in_len > SIZE_MAX / 2)
        return NULL;
    cap = sodium_base64_encoded_len(in_len, sv);
    out = malloc(cap);
    if (!out)
        return NULL;
    sodium_bin2base64(out, cap, in ? in : (const uint8_t *)"", in_len, sv);
    return out;
}

int
kc_b64_decode(const char *in, size_t in_len, kc_b64_variant v, uint8_t **out,
              size_t *out_len)
{
    int sv = sodium_base64_VARIANT_ORIGINAL;
    const char *end = NULL;
    uint8_t *buf;
    size_t cap, n = 0;

    *out = NULL;
    *out_len = 0;
    if (kc_init() != 0)
        return -1;
    if (v == KC_B64_URL) {
        /* Accept padded or unpadded input: drop up to two '=' at the end. */
        sv = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
        for (int i = 0; i < 2 && in_len > 0 && in[in_len - 1] == '='; i++)
            in_len--;
    }
    cap = in_len / 4 * 3 + 3;
    buf = malloc(cap);
    if (!buf)
        return -1;
    if (sodium_base642bin(buf, cap, in, in_len, NULL, &n, &end, sv) != 0 ||
        end != in + in_len) {
        kc_free_wipe(buf, cap);
        return -1;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

/* ---- files ------------------------------------------------------------ */

int
kc_read_fd(int fd, size_t max, bool secure, uint8_t **out, size_t *out_len)
{
    size_t cap = 4096, len = 0;
    uint8_t *buf = NULL;
    int rc = -ENOMEM;

    *out = NULL;
    *out_len = 0;
    if (max > SIZE_MAX - 1)
        return -EINVAL;
    for (;;) {
        if (!buf || len == cap) {
            size_t ncap = buf ? cap * 2 : cap;
            if (ncap > max + 1)
                ncap = max + 1;
            if (buf && ncap <= len) {
                rc = -EFBIG;
                goto out;
            }
            uint8_t *nb = secure ? kc_secure_alloc(ncap + 1) : malloc(ncap + 1);
            if (!nb)
                goto out;
            if (buf) {
                memcpy(nb, buf, len);
                if (secure)
                    kc_secure_free(buf);
                else
                    kc_free_wipe(buf, cap + 1);
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > max) {
            rc = -EFBIG;
            goto out;
        }
    }
    buf[len] = 0;
    *out = buf;
    *out_len = len;
    return 0;
out:
    if (secure)
        kc_secure_free(buf);
    else
        kc_free_wipe(buf, buf ? cap + 1 : 0);
    return rc;
}

int
kc_read_file(const char *path, size_t max, bool secure, uint8_t **out,
             size_t *out_len)
{
    int fd, rc;

    *out = NULL;
    *out_len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    rc = kc_read_fd(fd, max, secure, out, out_len);
    close(fd);
    return rc;
}

static int
fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd, rc = 0;

    if (!slash) {
        dir[0] = '.';
        dir[1] = 0;
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0)
            n = 1;
        if (n >= sizeof dir)
            return -ENAMETOOLONG;
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fsync(fd) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

int
kc_write_file_atomic(const char *path, const uint8_t *data, size_t len,
                     mode_t mode)
{
    char tmp[PATH_MAX];
    uint8_t rnd[8];
    char rhex[17];
    int fd = -1, rc;
    size_t off = 0;

    kc_random(rnd, sizeof rnd);
    kc_hex_encode(rnd, sizeof rnd, rhex, sizeof rhex);
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%s", path, rhex) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out_abort;
        }
        off += (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        rc = -errno;
        goto out_abort;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = -errno;
        goto out_abort;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = -errno;
        goto out_abort;
    }
    return fsync_dir_of(path);
out_abort:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int
kc_rmtree(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- passwords -------------------------------------------------------- */

static kc_pw_status
pw_from_buffer(const char *src, size_t n, char **pw, size_t *pw_len)
{
    char *p;

    if (n > 0 && src[n - 1] == '\n')
        n--;
    if (n > 0 && src[n - 1] == '\r')
        n--;
    if (n == 0)
        return KC_PW_EMPTY;
    p = kc_secure_alloc(n + 1);
    if (!p)
        return KC_PW_ENOMEM;
    memcpy(p, src, n);
    p[n] = 0;
    *pw = p;
    *pw_len = n;
    return KC_PW_OK;
}

static kc_pw_status
pw_from_file(const char *file, char **pw, size_t *pw_len, int *err)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t n = 0;
    kc_pw_status rc;
    int r, fd;

    /* Open first, then check the mode of what was opened (fstat), so the
     * file cannot be swapped between the check and the read. Symlinks are
     * followed on purpose: Kubernetes secret volumes are symlinks. */
    fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (err)
            *err = errno;
        return KC_PW_EIO;
    }
    if (fstat(fd, &st) != 0) {
        if (err)
            *err = errno;
        close(fd);
        return KC_PW_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        if (err)
            *err = EINVAL; /* a directory, FIFO or device is no password file */
        close(fd);
        return KC_PW_EIO;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        if (err)
            *err = (int)(st.st_mode & 07777);
        close(fd);
        return KC_PW_EPERM;
    }
    r = kc_read_fd(fd, 64 * 1024, true, &buf, &n);
    close(fd);
    if (r != 0) {
        if (err)
            *err = -r;
        return KC_PW_EIO;
    }
    rc = pw_from_buffer((const char *)buf, n, pw, pw_len);
    kc_secure_free(buf);
    return rc;
}

/* While echo is off, a SIGINT/SIGTERM/SIGHUP/SIGQUIT must not leave the
 * terminal without echo: a handler restores it (tcsetattr is
 * async-signal-safe) and re-raises the signal with its previous action.
 * This is the one piece of process-global mutable state here; only one
 * prompt runs at a time (prompting is a CLI start-up step). */
static const int tty_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
static volatile sig_atomic_t tty_fd = -1;
static struct termios tty_saved;
static struct sigaction tty_old_actions[4];

static void
tty_restore_on_signal(int sig)
{
    if (tty_fd >= 0)
        tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
    for (size_t i = 0; i < 4; i++)
        if (tty_signals[i] == sig)
            sigaction(sig, &tty_old_actions[i], NULL);
    raise(sig);
}

static void
tty_guard(int fd, const struct termios *saved, bool on)
{
    if (on) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = tty_restore_on_signal;
        sigemptyset(&sa.sa_mask);
        tty_saved = *saved;
        tty_fd = fd;
        for (size_t i = 0; i < 4; i++)
            sigaction(tty_signals[i], &sa, &tty_old_actions[i]);
    } else {
        for (size_t i = 0; i < 4; i++)
            sigaction(tty_signals[i], &tty_old_actions[i], NULL);
        tty_fd = -1;
    }
}

static kc_pw_status
pw_from_tty(const char *prompt, char **pw, size_t *pw_len)
{
    struct termios old, noecho;
    char *buf;
    size_t n = 0;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    kc_pw_status rc;

    if (fd < 0)
        return KC_PW_NONE;
    buf = kc_secure_alloc(1024);
    if (!buf) {
        close(fd);
        return KC_PW_ENOMEM;
    }
    if (tcgetattr(fd, &old) != 0) {
        kc_secure_free(buf);
        close(fd);
        return KC_PW_NONE;
    }
    noecho = old;
    noecho.c_lflag &= ~(tcflag_t)ECHO;
    noecho.c_lflag |= ECHONL;
    /* Echo goes off before the prompt appears, so nothing typed ahead of
     * it is ever shown. */
    tty_guard(fd, &old, true);
    tcsetattr(fd, TCSAFLUSH, &noecho);
    if (write(fd, prompt, strlen(prompt)) < 0) { /* best effort */
    }
    while (n < 1023) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n')
            break;
        buf[n++] = c;
    }
    tcsetattr(fd, TCSAFLUSH, &old);
    tty_guard(fd, &old, false);
    close(fd);
    rc = pw_from_buffer(buf, n, pw, pw_len);
    kc_secure_free(buf);
    return rc;
}

kc_pw_status
kc_password_get(const char *file, const char *env_name, const char *prompt,
                char **pw, size_t *pw_len, int *err)
{
    const char *ev;

    *pw = NULL;
    *pw_len = 0;
    if (err)
        *err = 0;
    if (file)
        return pw_from_file(file, pw, pw_len, err);
    if (env_name && (ev = getenv(env_name)) != NULL)
        return pw_from_buffer(ev, strlen(ev), pw, pw_len);
    if (prompt)
        return pw_from_tty(prompt, pw, pw_len);
    return KC_PW_NONE;
}

/* ---- process hygiene -------------------------------------------------- */

int
kc_harden_process(void)
{
    struct rlimit rl = {0, 0};
    int rc = 0;

    umask(077);
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        rc = -1;
    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        rc = -1;
    return rc;
}

/* ---- strings ---------------------------------------------------------- */

int
kc_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

int
kc_strlcpy(char *dst, const char *src, size_t dst_cap)
{
    size_t n = strlen(src);

    if (dst_cap == 0)
        return -1;
    if (n >= dst_cap) {
        memcpy(dst, src, dst_cap - 1);
        dst[dst_cap - 1] = 0;
        return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}
