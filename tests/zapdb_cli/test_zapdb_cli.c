/* SPDX-License-Identifier: Apache-2.0 */
/* End-to-end tests of the `zapdb` tool: every subcommand is run as a
 * child process (the built binary, ZAPDB_BIN) with its stdin, stdout,
 * stderr and environment controlled, and its exit status and output
 * checked. Children start a new session (setsid), so they have no
 * controlling terminal and can never block on a password prompt. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <zapdb/zapdb.h>

#include "testutil.h"

#ifndef ZAPDB_BIN
#error "ZAPDB_BIN must name the zapdb binary"
#endif

#define PW  "correct horse battery staple"
#define KDF "--kdf-ops", "1", "--kdf-mem", "8192"

/* The last run's results; replaced by the next run. */
typedef struct run_res {
    int status; /* exit status, or 128 + signal number */
    uint8_t *out;
    size_t out_len;
    char *err;
    size_t err_len;
} run_res;

static run_res R;
static const char *io_dir;

static void
run_clear(void)
{
    free(R.out);
    free(R.err);
    memset(&R, 0, sizeof R);
}

static const char *
io_path(const char *name)
{
    if (!io_dir)
        io_dir = kt_tmpdir();
    return kt_path(io_dir, name);
}

/* In the child: make sanitizer failures exit with a status the tool
 * never uses, keeping any options already set. */
static void
sanitizer_exitcode(const char *var)
{
    const char *old = getenv(var);
    char buf[1024];

    snprintf(buf, sizeof buf, "%s%sexitcode=86", old ? old : "",
             old && *old ? ":" : "");
    setenv(var, buf, 1);
}

/* Run zapdb with `args` (NULL-terminated), stdin from `in` (in_len
 * bytes), ZAPDB_PASSWORD set to `env_pw` (NULL: unset). Returns the exit
 * status (also in R.status). */
static int
run_v(const void *in, size_t in_len, const char *env_pw,
      const char *const *args)
{
    const char *in_p = io_path("stdin"), *out_p = io_path("stdout"),
               *err_p = io_path("stderr");
    const char *argv[32];
    size_t n = 0;
    pid_t pid;
    int st;

    run_clear();
    argv[n++] = "zapdb";
    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    if (kt_write_file(in_p, in ? in : "", in ? in_len : 0, 0600) != 0)
        return R.status = -1;
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return R.status = -1;
    if (pid == 0) {
        int fi = open(in_p, O_RDONLY),
            fo = open(out_p, O_WRONLY | O_CREAT | O_TRUNC, 0600),
            fe = open(err_p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fi < 0 || fo < 0 || fe < 0 || setsid() < 0 || dup2(fi, 0) < 0 ||
            dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(126);
        unsetenv("ZAPDB_PASSWORD");
        unsetenv("ZAPDB_NEW_PASSWORD");
        if (env_pw)
            setenv("ZAPDB_PASSWORD", env_pw, 1);
        /* A sanitizer report must not pass for an expected exit status. */
        sanitizer_exitcode("ASAN_OPTIONS");
        sanitizer_exitcode("UBSAN_OPTIONS");
        execv(ZAPDB_BIN, (char *const *)argv);
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return R.status = -1;
    R.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    R.out = kt_read_all(out_p, &R.out_len);
    R.err = (char *)kt_read_all(err_p, &R.err_len);
    if (R.err &&
        (strstr(R.err, "Sanitizer") || strstr(R.err, "runtime error:")))
        kt_fail(__FILE__, __LINE__, R.err);
    if (R.status != 0 && getenv("KT_VERBOSE"))
        fprintf(stderr, "    [exit %d] %s", R.status, R.err ? R.err : "");
    return R.status;
}

#define RUN_IN(in, in_len, ...)                                                \
    run_v((in), (in_len), NULL, (const char *const[]){__VA_ARGS__, NULL})
#define RUN_ENV(env, ...)                                                      \
    run_v(NULL, 0, (env), (const char *const[]){__VA_ARGS__, NULL})
#define RUN(...) RUN_IN(NULL, 0, __VA_ARGS__)

/* stderr holds exactly one line, starting with `prefix`. */
static bool
err_is_one_line(const char *prefix)
{
    size_t pl = strlen(prefix);
    if (!R.err || R.err_len <= pl || memcmp(R.err, prefix, pl) != 0)
        return false;
    char *nl = memchr(R.err, '\n', R.err_len);
    return nl && (size_t)(nl - R.err) == R.err_len - 1;
}

static bool
err_has(const char *s)
{
    return R.err && strstr(R.err, s) != NULL;
}

static bool
out_is(const void *p, size_t len)
{
    return R.out && R.out_len == len && memcmp(R.out, p, len) == 0;
}

static bool
out_has(const char *s)
{
    return R.out && memmem(R.out, R.out_len, s, strlen(s)) != NULL;
}

/* A fresh store in a fresh directory, with a 0600 password file. */
typedef struct fx {
    const char *dir;
    const char *store;
    const char *pw;
} fx;

static void
fx_init(fx *f)
{
    f->dir = kt_tmpdir();
    f->store = kt_path(f->dir, "store");
    f->pw = kt_path(f->dir, "pw");
    REQUIRE(kt_write_file(f->pw, PW "\n", strlen(PW) + 1, 0600) == 0);
    REQUIRE(RUN("init", f->store, "--password-file", f->pw, KDF) == 0);
    CHECK_EQ(R.err_len, 0);
}

static int
fx_put(const fx *f, const char *bucket, const char *key, const void *v,
       size_t v_len)
{
    return RUN_IN(v, v_len, "put", f->store, bucket, key, "--password-file",
                  f->pw);
}

static int
fx_get(const fx *f, const char *bucket, const char *key)
{
    return RUN("get", f->store, bucket, key, "--password-file", f->pw);
}

/* ---- help and usage --------------------------------------------------- */

static void
test_cli_help_every_subcommand_exits0(void)
{
    static const char *const cmds[] = {"init",   "put",     "get",   "del",
                                       "ls",     "passwd",  "rekey", "verify",
                                       "backup", "restore", "stats"};
    char want[64];

    CHECK_EQ(RUN("--help"), 0);
    CHECK(R.out && strncmp((char *)R.out, "Usage: zapdb", 12) == 0);
    for (size_t i = 0; i < KT_COUNT(cmds); i++)
        CHECK(out_has(cmds[i]));
    for (size_t i = 0; i < KT_COUNT(cmds); i++) {
        snprintf(want, sizeof want, "Usage: zapdb %s", cmds[i]);
        CHECK_EQ(RUN(cmds[i], "--help"), 0);
        CHECK(R.out && strncmp((char *)R.out, want, strlen(want)) == 0);
        CHECK_EQ(R.err_len, 0);
        CHECK_EQ(RUN("help", cmds[i]), 0);
        CHECK(R.out && strncmp((char *)R.out, want, strlen(want)) == 0);
    }
    /* --help wins even with other arguments present. */
    CHECK_EQ(RUN("get", "/nonexistent", "b", "--help"), 0);
    CHECK(out_has("--out FILE"));
}

static void
test_cli_no_arguments_exits2(void)
{
    CHECK_EQ(RUN("help", "frobnicate"), 2);
    CHECK_EQ(run_v(NULL, 0, NULL, (const char *const[]){NULL}), 2);
    CHECK(err_is_one_line("zapdb: no command given"));
    CHECK_EQ(R.out_len, 0);
}

static void
test_cli_unknown_subcommand_exits2(void)
{
    CHECK_EQ(RUN("frobnicate", "x"), 2);
    CHECK(err_is_one_line("zapdb: unknown command"));
}

static void
test_cli_bad_command_lines_exit2(void)
{
    fx f;
    fx_init(&f);
    /* unknown option, option not for this subcommand, missing value */
    CHECK_EQ(RUN("get", f.store, "b", "k", "--bogus"), 2);
    CHECK(err_is_one_line("zapdb: get: unknown option --bogus"));
    CHECK_EQ(RUN("get", f.store, "b", "k", "--in", "x"), 2);
    CHECK(err_is_one_line("zapdb: get: unknown option --in"));
    CHECK_EQ(RUN("get", f.store, "b", "k", "--password-file"), 2);
    CHECK(err_is_one_line("zapdb: get: option --password-file needs a value"));
    /* missing and extra positionals: a value on argv is refused */
    CHECK_EQ(RUN("get", f.store), 2);
    CHECK(err_is_one_line("zapdb: get: missing arguments"));
    CHECK_EQ(
        RUN("put", f.store, "b", "k", "the-value", "--password-file", f.pw), 2);
    CHECK(err_is_one_line("zapdb: put: too many arguments"));
    CHECK_EQ(RUN("put", f.store, "b", "--password-file", f.pw), 2);
    CHECK(err_is_one_line("zapdb: put: missing KEY"));
    /* bad option values */
    CHECK_EQ(RUN("get", f.store, "b", "k", "--sync", "sometimes"), 2);
    CHECK(err_is_one_line("zapdb: get: --sync must be"));
    CHECK_EQ(RUN("init", kt_path(f.dir, "s2"), "--kdf-ops", "0"), 2);
    CHECK_EQ(RUN("init", kt_path(f.dir, "s2"), "--kdf-mem", "12k"), 2);
    CHECK_EQ(RUN("init", kt_path(f.dir, "s2"), "--kdf-ops", "-1"), 2);
    CHECK_EQ(RUN("init", kt_path(f.dir, "s2"), "--kdf-mem", "8191"), 2);
    CHECK(err_is_one_line("zapdb: init: --kdf-mem must be 8192 to"));
    CHECK_EQ(RUN("init", kt_path(f.dir, "s2"), "--kdf-mem", "4294967297"), 2);
    CHECK_EQ(RUN("init", kt_path(f.dir, "s2"), "--kdf-ops", "65"), 2);
    CHECK(err_is_one_line("zapdb: init: --kdf-ops must be 1 to 64"));
    CHECK_EQ(RUN("get", f.store, "b", "k", "--password-file", f.pw,
                 "--password-file", f.pw),
             2);
    CHECK(err_is_one_line("zapdb: get: option --password-file given twice"));
    CHECK_EQ(RUN("stats", f.store, "--json=yes"), 2);
    CHECK_EQ(RUN("ls", f.store, "--prefix", "a", "--password-file", f.pw), 2);
    /* no store was created by the refused init */
    CHECK(access(kt_path(f.dir, "s2"), F_OK) != 0);
}

/* ---- put / get / del -------------------------------------------------- */

static void
test_cli_put_stdin_get_stdout_roundtrips_binary(void)
{
    uint8_t v[512];
    fx f;

    fx_init(&f);
    for (size_t i = 0; i < sizeof v; i++)
        v[i] = (uint8_t)(i * 7 + (i >> 8));
    CHECK_EQ(fx_put(&f, "bkt", "alpha", v, sizeof v), 0);
    CHECK_EQ(R.out_len, 0);
    CHECK_EQ(R.err_len, 0);
    CHECK_EQ(fx_get(&f, "bkt", "alpha"), 0);
    CHECK(out_is(v, sizeof v));
    /* replace */
    CHECK_EQ(fx_put(&f, "bkt", "alpha", "v2\n", 3), 0);
    CHECK_EQ(fx_get(&f, "bkt", "alpha"), 0);
    CHECK(out_is("v2\n", 3));
}

static void
test_cli_put_in_get_out_roundtrips_mode0600(void)
{
    const char *in_p, *out_p;
    uint8_t *got;
    size_t got_len = 0;
    struct stat st;
    fx f;

    fx_init(&f);
    in_p = kt_path(f.dir, "value.in");
    out_p = kt_path(f.dir, "value.out");
    REQUIRE(kt_write_file(in_p, "file-value\0with-nul", 19, 0600) == 0);
    /* an existing readable file is replaced by a 0600 one */
    REQUIRE(kt_write_file(out_p, "old", 3, 0644) == 0);
    CHECK_EQ(
        RUN("put", f.store, "b", "k", "--in", in_p, "--password-file", f.pw),
        0);
    CHECK_EQ(
        RUN("get", f.store, "b", "k", "--out", out_p, "--password-file", f.pw),
        0);
    CHECK_EQ(R.out_len, 0);
    got = kt_read_all(out_p, &got_len);
    REQUIRE(got);
    CHECK(got_len == 19 && memcmp(got, "file-value\0with-nul", 19) == 0);
    free(got);
    REQUIRE(stat(out_p, &st) == 0);
    CHECK_EQ(st.st_mode & 07777, 0600);
    /* --in naming a missing file fails without touching the store */
    CHECK_EQ(RUN("put", f.store, "b", "k", "--in", kt_path(f.dir, "nope"),
                 "--password-file", f.pw),
             1);
    CHECK(err_is_one_line("zapdb: put: cannot read the value from"));
    CHECK_EQ(fx_get(&f, "b", "k"), 0);
    CHECK(out_is("file-value\0with-nul", 19));
}

static void
test_cli_put_empty_value_roundtrips(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(fx_put(&f, "b", "empty", NULL, 0), 0);
    CHECK_EQ(fx_get(&f, "b", "empty"), 0);
    CHECK_EQ(R.out_len, 0);
    CHECK_EQ(R.err_len, 0);
}

static void
test_cli_key_hex_binary_key_roundtrips(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(RUN_IN("bin", 3, "put", f.store, "b", "--key-hex", "00ff10",
                    "--password-file", f.pw),
             0);
    CHECK_EQ(RUN("get", f.store, "b", "--key-hex", "00FF10", "--password-file",
                 f.pw),
             0);
    CHECK(out_is("bin", 3));
    /* a text key equals its hex spelling */
    CHECK_EQ(fx_put(&f, "b", "AB", "text", 4), 0);
    CHECK_EQ(
        RUN("get", f.store, "b", "--key-hex", "4142", "--password-file", f.pw),
        0);
    CHECK(out_is("text", 4));
    CHECK_EQ(RUN("ls", f.store, "b", "--password-file", f.pw), 0);
    CHECK(out_is("hex:00ff10\nAB\n", 14));
    CHECK_EQ(RUN("del", f.store, "b", "--key-hex", "00ff10", "--password-file",
                 f.pw),
             0);
    CHECK_EQ(RUN("get", f.store, "b", "--key-hex", "00ff10", "--password-file",
                 f.pw),
             3);
}

static void
test_cli_key_hex_invalid_exits2(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(
        RUN("get", f.store, "b", "--key-hex", "abc", "--password-file", f.pw),
        2);
    CHECK(err_is_one_line("zapdb: get: --key-hex needs hex digits"));
    CHECK_EQ(
        RUN("get", f.store, "b", "--key-hex", "zz", "--password-file", f.pw),
        2);
    CHECK_EQ(RUN("get", f.store, "b", "--key-hex", "", "--password-file", f.pw),
             2);
    CHECK(err_is_one_line("zapdb: get: the key is empty"));
    CHECK_EQ(RUN("get", f.store, "b", "k", "--key-hex", "00", "--password-file",
                 f.pw),
             2);
    CHECK(err_is_one_line("zapdb: get: give KEY or --key-hex, not both"));
}

static void
test_cli_oversize_names_and_values_rejected(void)
{
    char *big;
    const char *in_p;
    fx f;

    fx_init(&f);
    big = malloc(ZAP_MAX_KEY + 2);
    REQUIRE(big);
    memset(big, 'k', ZAP_MAX_KEY + 1);
    big[ZAP_MAX_KEY + 1] = 0;
    CHECK_EQ(fx_put(&f, "b", big, "v", 1), 2);
    CHECK(err_is_one_line("zapdb: put: the key is longer than"));
    big[256] = 0; /* a 256-byte bucket name; the limit is 255 */
    CHECK_EQ(fx_put(&f, big, "k", "v", 1), 2);
    CHECK(err_is_one_line("zapdb: put: a bucket name has 1 to 255 bytes"));
    big[255] = 0;
    CHECK_EQ(fx_put(&f, big, "k", "v", 1), 0);
    CHECK_EQ(fx_put(&f, "", "k", "v", 1), 2);
    free(big);
    /* a value one byte over the limit */
    in_p = kt_path(f.dir, "big.in");
    REQUIRE(kt_write_file(in_p, "", 0, 0600) == 0);
    REQUIRE(truncate(in_p, (off_t)ZAP_MAX_VALUE + 1) == 0);
    CHECK_EQ(
        RUN("put", f.store, "b", "huge", "--in", in_p, "--password-file", f.pw),
        1);
    CHECK(err_is_one_line("zapdb: put: the value is larger than"));
    unlink(in_p);
    CHECK_EQ(fx_get(&f, "b", "huge"), 3);
}

static void
test_cli_missing_things_exit3(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(fx_put(&f, "b", "k", "v", 1), 0);
    CHECK_EQ(fx_get(&f, "b", "other"), 3);
    CHECK(err_is_one_line("zapdb: get: no such key in bucket b"));
    CHECK_EQ(fx_get(&f, "nobucket", "k"), 3);
    CHECK_EQ(RUN("del", f.store, "b", "other", "--password-file", f.pw), 3);
    CHECK(err_is_one_line("zapdb: del: no such key"));
    CHECK_EQ(RUN("ls", f.store, "nobucket", "--password-file", f.pw), 3);
    CHECK(err_is_one_line("zapdb: ls: no bucket nobucket"));
    CHECK_EQ(RUN("get", kt_path(f.dir, "nostore"), "b", "k", "--password-file",
                 f.pw),
             3);
    CHECK(err_is_one_line("zapdb: get: no store at"));
    CHECK_EQ(RUN("verify", kt_path(f.dir, "nostore"), "--password-file", f.pw),
             3);
}

static void
test_cli_del_removes_only_that_key(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(fx_put(&f, "b", "k1", "1", 1), 0);
    CHECK_EQ(fx_put(&f, "b", "k2", "2", 1), 0);
    CHECK_EQ(RUN("del", f.store, "b", "k1", "--password-file", f.pw), 0);
    CHECK_EQ(fx_get(&f, "b", "k1"), 3);
    CHECK_EQ(fx_get(&f, "b", "k2"), 0);
    CHECK(out_is("2", 1));
}

/* ---- ls ---------------------------------------------------------------- */

static void
test_cli_ls_buckets_and_prefix_sorted(void)
{
    static const char *const keys[] = {"user/bob", "app/x",   "user/alice",
                                       "user",     "users/z", "hex:tricky"};
    fx f;

    fx_init(&f);
    for (size_t i = 0; i < KT_COUNT(keys); i++)
        CHECK_EQ(fx_put(&f, "main", keys[i], "v", 1), 0);
    CHECK_EQ(fx_put(&f, "zeta", "k", "v", 1), 0);
    CHECK_EQ(fx_put(&f, "alpha", "k", "v", 1), 0);
    CHECK_EQ(RUN("ls", f.store, "--password-file", f.pw), 0);
    CHECK(out_is("alpha\nmain\nzeta\n", 16));
    CHECK_EQ(RUN("ls", f.store, "main", "--password-file", f.pw), 0);
    const char *all = "app/x\nhex:6865783a747269636b79\nuser\nuser/alice\n"
                      "user/bob\nusers/z\n";
    CHECK(out_is(all, strlen(all)));
    CHECK_EQ(RUN("ls", f.store, "main", "--prefix", "user/", "--password-file",
                 f.pw),
             0);
    CHECK(out_is("user/alice\nuser/bob\n", 20));
    CHECK_EQ(RUN("ls", f.store, "main", "--prefix-hex", "7573",
                 "--password-file", f.pw),
             0);
    const char *us = "user\nuser/alice\nuser/bob\nusers/z\n";
    CHECK(out_is(us, strlen(us)));
    CHECK_EQ(RUN("ls", f.store, "main", "--prefix", "nothing",
                 "--password-file", f.pw),
             0);
    CHECK_EQ(R.out_len, 0);
    CHECK_EQ(RUN("ls", f.store, "main", "--prefix-hex", "7", "--password-file",
                 f.pw),
             2);
}

/* ---- passwords -------------------------------------------------------- */

static void
test_cli_wrong_password_exits4(void)
{
    const char *bad;
    fx f;

    fx_init(&f);
    CHECK_EQ(fx_put(&f, "b", "k", "v", 1), 0);
    bad = kt_path(f.dir, "badpw");
    REQUIRE(kt_write_file(bad, "Correct horse battery staple", 28, 0600) == 0);
    CHECK_EQ(RUN("get", f.store, "b", "k", "--password-file", bad), 4);
    CHECK(err_is_one_line("zapdb: get: cannot open the store: wrong password"));
    CHECK_EQ(R.out_len, 0);
    CHECK_EQ(RUN_IN("x", 1, "put", f.store, "b", "k", "--password-file", bad),
             4);
    CHECK_EQ(RUN("verify", f.store, "--password-file", bad), 4);
    CHECK_EQ(RUN_ENV("wrong", "stats", f.store), 4);
    /* nothing changed */
    CHECK_EQ(fx_get(&f, "b", "k"), 0);
    CHECK(out_is("v", 1));
}

static void
test_cli_password_file_mode0644_refused(void)
{
    const char *loose;
    fx f;

    fx_init(&f);
    loose = kt_path(f.dir, "loose");
    REQUIRE(kt_write_file(loose, PW, strlen(PW), 0644) == 0);
    CHECK_EQ(RUN("ls", f.store, "--password-file", loose), 1);
    CHECK(err_is_one_line("zapdb: ls: password file"));
    CHECK(err_has("mode 0644"));
    CHECK_EQ(RUN("init", kt_path(f.dir, "s2"), "--password-file", loose, KDF),
             1);
    CHECK(err_has("mode 0644"));
    CHECK(access(kt_path(f.dir, "s2"), F_OK) != 0);
    REQUIRE(chmod(loose, 0640) == 0);
    CHECK_EQ(RUN("ls", f.store, "--password-file", loose), 1);
    CHECK(err_has("mode 0640"));
    REQUIRE(chmod(loose, 0400) == 0);
    CHECK_EQ(RUN("ls", f.store, "--password-file", loose), 0);
}

static void
test_cli_password_sources_env_missing_empty(void)
{
    const char *empty;
    fx f;

    fx_init(&f);
    CHECK_EQ(fx_put(&f, "b", "k", "v", 1), 0);
    CHECK_EQ(RUN_ENV(PW, "get", f.store, "b", "k"), 0);
    CHECK(out_is("v", 1));
    /* the file wins over the environment */
    CHECK_EQ(
        RUN_ENV("wrong", "get", f.store, "b", "k", "--password-file", f.pw), 0);
    /* no file, no variable, no terminal */
    CHECK_EQ(RUN("get", f.store, "b", "k"), 2);
    CHECK(err_is_one_line("zapdb: get: no password"));
    empty = kt_path(f.dir, "empty");
    REQUIRE(kt_write_file(empty, "\n", 1, 0600) == 0);
    CHECK_EQ(RUN("get", f.store, "b", "k", "--password-file", empty), 1);
    CHECK(err_is_one_line("zapdb: get: the password is empty"));
    CHECK_EQ(RUN("get", f.store, "b", "k", "--password-file",
                 kt_path(f.dir, "nofile")),
             1);
    CHECK(err_is_one_line("zapdb: get: cannot read password file"));
}

static void
test_cli_init_existing_store_refused(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(fx_put(&f, "b", "k", "v", 1), 0);
    CHECK_EQ(RUN("init", f.store, "--password-file", f.pw, KDF), 1);
    CHECK(err_is_one_line("zapdb: init: a store already exists"));
    CHECK_EQ(RUN("init", kt_path(f.dir, "no/such/parent"), "--password-file",
                 f.pw, KDF),
             1);
    CHECK(err_is_one_line("zapdb: init: cannot create a store at"));
    CHECK_EQ(fx_get(&f, "b", "k"), 0);
    CHECK(out_is("v", 1));
}

static void
test_cli_passwd_old_fails_new_works(void)
{
    const char *npw, *loose;
    fx f;

    fx_init(&f);
    CHECK_EQ(fx_put(&f, "b", "k", "kept", 4), 0);
    npw = kt_path(f.dir, "newpw");
    loose = kt_path(f.dir, "loose");
    REQUIRE(kt_write_file(npw, "a new password\n", 15, 0600) == 0);
    REQUIRE(kt_write_file(loose, "a new password\n", 15, 0604) == 0);
    /* a loose new-password file is refused and nothing changes */
    CHECK_EQ(RUN("passwd", f.store, "--password-file", f.pw,
                 "--new-password-file", loose),
             1);
    CHECK(err_has("mode 0604"));
    CHECK_EQ(fx_get(&f, "b", "k"), 0);
    /* no new password source */
    CHECK_EQ(RUN("passwd", f.store, "--password-file", f.pw), 2);
    CHECK_EQ(RUN("passwd", f.store, "--password-file", f.pw,
                 "--new-password-file", npw, "--kdf-ops", "2"),
             0);
    CHECK_EQ(fx_get(&f, "b", "k"), 4);
    CHECK_EQ(RUN("get", f.store, "b", "k", "--password-file", npw), 0);
    CHECK(out_is("kept", 4));
    CHECK_EQ(RUN("stats", f.store, "--password-file", npw), 0);
    CHECK(out_has("kdf_opslimit 2\n"));
    CHECK(out_has("kdf_memlimit 8192\n"));
}

/* ---- rekey, verify, tampering ---------------------------------------- */

static void
test_cli_rekey_keeps_data_new_generation(void)
{
    char key[16];
    json_t *j;
    json_int_t gen0;
    fx f;

    fx_init(&f);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        CHECK_EQ(fx_put(&f, i % 2 ? "odd" : "even", key, key, strlen(key)), 0);
    }
    CHECK_EQ(RUN("stats", f.store, "--json", "--password-file", f.pw), 0);
    j = json_loadb((const char *)R.out, R.out_len, 0, NULL);
    REQUIRE(j);
    gen0 = json_integer_value(json_object_get(j, "dek_generation"));
    json_decref(j);
    CHECK_EQ(RUN("rekey", f.store, "--password-file", f.pw), 0);
    CHECK_EQ(R.err_len, 0); /* no progress when stderr is not a terminal */
    CHECK_EQ(RUN("stats", f.store, "--json", "--password-file", f.pw), 0);
    j = json_loadb((const char *)R.out, R.out_len, 0, NULL);
    REQUIRE(j);
    CHECK_EQ(json_integer_value(json_object_get(j, "dek_generation")),
             gen0 + 1);
    json_decref(j);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        CHECK_EQ(fx_get(&f, i % 2 ? "odd" : "even", key), 0);
        CHECK(out_is(key, strlen(key)));
    }
    CHECK_EQ(RUN("verify", f.store, "--password-file", f.pw), 0);
    CHECK(out_is("verified 20 records in 2 buckets: 0 bad\n", 40));
    CHECK_EQ(RUN("rekey", f.store, "--password-file", kt_path(f.dir, "nofile")),
             1);
}

/* Index of the middle of the longest run of 4 KiB pages in `buf` that look
 * like ciphertext (almost no zero bytes); -1 if none. */
static long
find_ciphertext(const uint8_t *buf, size_t len)
{
    size_t best_start = 0, best_n = 0, run_start = 0, run_n = 0;

    for (size_t p = 0; p + 4096 <= len; p += 4096) {
        size_t zeros = 0;
        for (size_t i = 64; i < 4096; i++)
            zeros += buf[p + i] == 0;
        if (zeros < 64) {
            if (run_n++ == 0)
                run_start = p;
            if (run_n > best_n) {
                best_n = run_n;
                best_start = run_start;
            }
        } else {
            run_n = 0;
        }
    }
    if (best_n < 2)
        return -1;
    return (long)(best_start + best_n * 4096 / 2);
}

/* The largest regular file in `dir` (the LMDB data file). */
static const char *
largest_file(const char *dir)
{
    const char *best = NULL;
    off_t best_size = -1;
    struct dirent *de;
    struct stat st;
    DIR *d = opendir(dir);

    if (!d)
        return NULL;
    while ((de = readdir(d)) != NULL) {
        const char *p = kt_path(dir, de->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
            st.st_size > best_size) {
            best = p;
            best_size = st.st_size;
        }
    }
    closedir(d);
    return best;
}

static void
test_cli_tampered_record_verify_exits5_names_bucket(void)
{
    uint8_t *big, *file;
    const char *data;
    size_t file_len = 0;
    long at;
    fx f;

    fx_init(&f);
    CHECK_EQ(fx_put(&f, "good", "k", "fine", 4), 0);
    big = calloc(1, 20000); /* ciphertext of zeros is still random-looking */
    REQUIRE(big);
    CHECK_EQ(fx_put(&f, "victim", "big", big, 20000), 0);
    free(big);
    CHECK_EQ(RUN("verify", f.store, "--password-file", f.pw), 0);
    data = largest_file(f.store);
    REQUIRE(data);
    file = kt_read_all(data, &file_len);
    REQUIRE(file);
    at = find_ciphertext(file, file_len);
    if (at < 0)
        free(file);
    REQUIRE(at >= 0);
    file[at] ^= 0x01;
    file[at + 1] ^= 0x80;
    CHECK(kt_write_file(data, file, file_len, 0600) == 0);
    free(file);
    CHECK_EQ(RUN("verify", f.store, "--password-file", f.pw), 5);
    CHECK(out_has("bucket victim position 0: "));
    CHECK(!out_has("bucket good"));
    CHECK(out_has("verified 2 records in 2 buckets: 1 bad\n"));
    CHECK(
        err_is_one_line("zapdb: verify: 1 of 2 records failed authentication"));
    CHECK_EQ(fx_get(&f, "victim", "big"), 5);
    CHECK(
        err_is_one_line("zapdb: get: cannot read the value: store is corrupt"));
    CHECK_EQ(R.out_len, 0);
    CHECK_EQ(fx_get(&f, "good", "k"), 0);
    CHECK(out_is("fine", 4));
}

static bool
tree_contains(const char *dir, const char *needle)
{
    bool found = false;
    struct dirent *de;
    DIR *d = opendir(dir);

    if (!d)
        return false;
    while (!found && (de = readdir(d)) != NULL) {
        size_t n = 0;
        const char *p = kt_path(dir, de->d_name);
        uint8_t *buf;
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        buf = kt_read_all(p, &n);
        if (buf && memmem(buf, n, needle, strlen(needle)))
            found = true;
        free(buf);
    }
    closedir(d);
    return found;
}

static void
test_cli_store_files_hold_no_plaintext(void)
{
    const char *bk;
    fx f;

    fx_init(&f);
    CHECK_EQ(
        fx_put(&f, "BucketMarker", "KeyMarker-91", "ValueMarker-1234567", 19),
        0);
    CHECK_EQ(fx_get(&f, "BucketMarker", "KeyMarker-91"), 0);
    CHECK(out_is("ValueMarker-1234567", 19));
    CHECK(!tree_contains(f.store, "ValueMarker"));
    CHECK(!tree_contains(f.store, "KeyMarker"));
    CHECK(!tree_contains(f.store, "BucketMarker"));
    CHECK(!tree_contains(f.store, PW));
    bk = kt_path(f.dir, "bk");
    REQUIRE(mkdir(bk, 0700) == 0);
    CHECK_EQ(
        RUN("backup", f.store, kt_path(bk, "b.zbk"), "--password-file", f.pw),
        0);
    CHECK(!tree_contains(bk, "ValueMarker"));
    CHECK(!tree_contains(bk, "KeyMarker"));
    CHECK_EQ(RUN("verify", f.store, "--password-file", f.pw), 0);
    CHECK(!out_has("Marker"));
}

/* ---- backup / restore ------------------------------------------------- */

static void
test_cli_backup_restore_roundtrips(void)
{
    const char *bk, *dst;
    struct stat st;
    fx f;

    fx_init(&f);
    CHECK_EQ(fx_put(&f, "b1", "k1", "one", 3), 0);
    CHECK_EQ(fx_put(&f, "b2", "k2", "two", 3), 0);
    bk = kt_path(f.dir, "store.backup");
    dst = kt_path(f.dir, "restored");
    CHECK_EQ(RUN("backup", f.store, bk, "--password-file", f.pw), 0);
    CHECK_EQ(R.err_len, 0);
    REQUIRE(stat(bk, &st) == 0);
    CHECK_EQ(st.st_mode & 07777, 0600);
    CHECK_EQ(RUN("backup", f.store, kt_path(f.dir, "nodir/b"),
                 "--password-file", f.pw),
             3);
    CHECK(err_is_one_line("zapdb: backup: cannot write"));
    /* later changes to the source do not reach the restored copy */
    CHECK_EQ(fx_put(&f, "b1", "k1", "changed", 7), 0);
    CHECK_EQ(RUN("restore", bk, dst, "--password-file", f.pw), 0);
    CHECK_EQ(RUN("get", dst, "b1", "k1", "--password-file", f.pw), 0);
    CHECK(out_is("one", 3));
    CHECK_EQ(RUN("get", dst, "b2", "k2", "--password-file", f.pw), 0);
    CHECK(out_is("two", 3));
    CHECK_EQ(RUN("ls", dst, "--password-file", f.pw), 0);
    CHECK(out_is("b1\nb2\n", 6));
    CHECK_EQ(RUN("verify", dst, "--password-file", f.pw), 0);
    /* restoring over a store that exists is refused */
    CHECK_EQ(RUN("restore", bk, dst, "--password-file", f.pw), 1);
    CHECK(err_is_one_line("zapdb: restore: "));
    CHECK_EQ(RUN("get", dst, "b1", "k1", "--password-file", f.pw), 0);
    CHECK(out_is("one", 3));
}

static void
test_cli_restore_bad_backups_rejected(void)
{
    const char *bk, *cut, *flip, *wrong;
    uint8_t *buf;
    size_t len = 0;
    fx f;

    fx_init(&f);
    CHECK_EQ(fx_put(&f, "b", "k", "secret value", 12), 0);
    bk = kt_path(f.dir, "bk");
    CHECK_EQ(RUN("backup", f.store, bk, "--password-file", f.pw), 0);
    buf = kt_read_all(bk, &len);
    REQUIRE(buf && len > 64);
    /* truncated */
    cut = kt_path(f.dir, "cut");
    CHECK(kt_write_file(cut, buf, len - 7, 0600) == 0);
    CHECK_EQ(RUN("restore", cut, kt_path(f.dir, "r1"), "--password-file", f.pw),
             5);
    CHECK(err_is_one_line(
        "zapdb: restore: cannot restore the backup: store is corrupt"));
    CHECK(access(kt_path(f.dir, "r1"), F_OK) != 0); /* removed */
    /* one byte flipped near the end (inside the records) */
    flip = kt_path(f.dir, "flip");
    buf[len - 20] ^= 0x40;
    CHECK(kt_write_file(flip, buf, len, 0600) == 0);
    free(buf);
    CHECK_EQ(
        RUN("restore", flip, kt_path(f.dir, "r2"), "--password-file", f.pw), 5);
    /* empty file */
    CHECK(kt_write_file(cut, "", 0, 0600) == 0);
    CHECK_EQ(RUN("restore", cut, kt_path(f.dir, "r3"), "--password-file", f.pw),
             5);
    /* no such file */
    CHECK_EQ(RUN("restore", kt_path(f.dir, "nofile"), kt_path(f.dir, "r0"),
                 "--password-file", f.pw),
             3);
    CHECK(err_is_one_line("zapdb: restore: no backup file at"));
    /* wrong password */
    wrong = kt_path(f.dir, "wrong");
    REQUIRE(kt_write_file(wrong, "not it", 6, 0600) == 0);
    CHECK_EQ(RUN("restore", bk, kt_path(f.dir, "r4"), "--password-file", wrong),
             4);
    /* the good one still restores */
    CHECK_EQ(RUN("restore", bk, kt_path(f.dir, "r5"), "--password-file", f.pw),
             0);
    CHECK_EQ(
        RUN("get", kt_path(f.dir, "r5"), "b", "k", "--password-file", f.pw), 0);
    CHECK(out_is("secret value", 12));
}

/* ---- stats and options ------------------------------------------------ */

static void
test_cli_stats_text_and_json_agree(void)
{
    json_t *j;
    fx f;

    fx_init(&f);
    CHECK_EQ(fx_put(&f, "b1", "k1", "1", 1), 0);
    CHECK_EQ(fx_put(&f, "b1", "k2", "2", 1), 0);
    CHECK_EQ(fx_put(&f, "b2", "k1", "3", 1), 0);
    CHECK_EQ(RUN("stats", f.store, "--password-file", f.pw), 0);
    CHECK(out_has("records 3\n"));
    CHECK(out_has("buckets 2\n"));
    CHECK(out_has("kdf argon2id\n"));
    CHECK(out_has("kdf_opslimit 1\n"));
    CHECK(out_has("kdf_memlimit 8192\n"));
    CHECK_EQ(RUN("stats", f.store, "--json", "--password-file", f.pw), 0);
    j = json_loadb((const char *)R.out, R.out_len, 0, NULL);
    REQUIRE(j);
    CHECK_EQ(json_integer_value(json_object_get(j, "records")), 3);
    CHECK_EQ(json_integer_value(json_object_get(j, "buckets")), 2);
    CHECK(json_integer_value(json_object_get(j, "file_bytes")) > 0);
    CHECK(json_is_string(json_object_get(j, "kdf")));
    json_decref(j);
}

static void
test_cli_sync_modes_accepted(void)
{
    fx f;
    fx_init(&f);
    CHECK_EQ(RUN_IN("n", 1, "put", f.store, "b", "n", "--sync", "none",
                    "--password-file", f.pw),
             0);
    CHECK_EQ(RUN_IN("m", 1, "put", f.store, "b", "m", "--sync=meta",
                    "--password-file", f.pw),
             0);
    CHECK_EQ(RUN_IN("f", 1, "put", f.store, "b", "f", "--sync", "full",
                    "--password-file", f.pw),
             0);
    CHECK_EQ(RUN("ls", f.store, "b", "--password-file", f.pw), 0);
    CHECK(out_is("f\nm\nn\n", 6));
    /* "--" lets a key start with a dash */
    CHECK_EQ(RUN_IN("d", 1, "put", f.store, "--password-file", f.pw, "--", "b",
                    "-dash"),
             0);
    CHECK_EQ(RUN("get", f.store, "--password-file", f.pw, "--", "b", "-dash"),
             0);
    CHECK(out_is("d", 1));
}

/* ---- a terminal: prompts and progress ---------------------------------- */

/* Run zapdb with a pseudo-terminal as its controlling terminal and its
 * stderr (stdin and stdout as in run_v, stdin empty). Each time the
 * terminal shows another "assword: " prompt, the next of `answers` is
 * typed. Everything the terminal showed lands in `tty` (NUL-terminated).
 * Returns the exit status, -1 on a harness failure or after 30 s. */
static int
run_pty(const char *const *answers, size_t n_answers, char *tty, size_t cap,
        const char *const *args)
{
    const char *in_p = io_path("stdin"), *out_p = io_path("stdout");
    const char *argv[32];
    size_t n = 0, len = 0, answered = 0;
    time_t deadline = time(NULL) + 30;
    int m, st = 0, status = -1;
    bool exited = false;
    pid_t pid;

    run_clear();
    tty[0] = 0;
    argv[n++] = "zapdb";
    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    if (kt_write_file(in_p, "", 0, 0600) != 0)
        return -1;
    m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0 || !ptsname(m)) {
        if (m >= 0)
            close(m);
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(m);
        return -1;
    }
    if (pid == 0) {
        /* A new session's first terminal becomes its controlling one. */
        int fi, fo, ft;
        if (setsid() < 0 || (ft = open(ptsname(m), O_RDWR)) < 0)
            _exit(126);
        fi = open(in_p, O_RDONLY);
        fo = open(out_p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fi < 0 || fo < 0 || dup2(fi, 0) < 0 || dup2(fo, 1) < 0 ||
            dup2(ft, 2) < 0)
            _exit(126);
        close(m);
        unsetenv("ZAPDB_PASSWORD");
        unsetenv("ZAPDB_NEW_PASSWORD");
        sanitizer_exitcode("ASAN_OPTIONS");
        sanitizer_exitcode("UBSAN_OPTIONS");
        execv(ZAPDB_BIN, (char *const *)argv);
        _exit(127);
    }
    while (time(NULL) < deadline) {
        struct pollfd pfd = {m, POLLIN, 0};
        if (poll(&pfd, 1, 10) > 0) {
            ssize_t r = len + 1 < cap ? read(m, tty + len, cap - 1 - len) : 0;
            if (r <= 0 && exited)
                break; /* EIO: the terminal's last user has gone */
            if (r > 0) {
                len += (size_t)r;
                tty[len] = 0;
            }
        } else if (exited) {
            break;
        }
        /* Answer each new prompt once, after the tool has turned echo
         * off: kc_password_get() shows the prompt first and then flushes
         * pending input when it switches echo off (TCSAFLUSH). */
        size_t prompts = 0;
        struct termios tio;
        for (const char *p = tty; (p = strstr(p, "assword: ")) != NULL; p++)
            prompts++;
        if (answered < prompts && answered < n_answers &&
            tcgetattr(m, &tio) == 0 && !(tio.c_lflag & ECHO)) {
            const char *ans = answers[answered++];
            if (write(m, ans, strlen(ans)) < 0 || write(m, "\n", 1) < 0)
                break;
        }
        if (!exited && waitpid(pid, &st, WNOHANG) == pid) {
            exited = true;
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
    }
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    close(m);
    R.status = status;
    R.out = kt_read_all(out_p, &R.out_len);
    if (strstr(tty, "Sanitizer") || strstr(tty, "runtime error:"))
        kt_fail(__FILE__, __LINE__, tty);
    return status;
}

#define RUN_PTY(answers, tty, ...)                                             \
    run_pty((answers), KT_COUNT(answers), (tty), sizeof(tty),                  \
            (const char *const[]){__VA_ARGS__, NULL})

static void
test_cli_terminal_prompt_init_twice_then_open(void)
{
    static const char *const same[] = {"typed secret", "typed secret"};
    static const char *const differ[] = {"typed secret", "typed secreT"};
    static const char *const right[] = {"typed secret"};
    static const char *const wrong[] = {"typed secreT"};
    const char *dir = kt_tmpdir(), *store = kt_path(dir, "s");
    char tty[8192];

    CHECK_EQ(RUN_PTY(differ, tty, "init", store, KDF), 1);
    CHECK(strstr(tty, "New store password: ") != NULL);
    CHECK(strstr(tty, "Repeat the password: ") != NULL);
    CHECK(strstr(tty, "zapdb: init: the two passwords differ") != NULL);
    CHECK(strstr(tty, "typed") == NULL); /* no echo */
    CHECK(access(store, F_OK) != 0);
    CHECK_EQ(RUN_PTY(same, tty, "init", store, KDF), 0);
    CHECK(strstr(tty, "typed") == NULL);
    CHECK_EQ(run_v("tv", 2, "typed secret",
                   (const char *const[]){"put", store, "b", "k", NULL}),
             0);
    CHECK_EQ(RUN_PTY(right, tty, "get", store, "b", "k"), 0);
    CHECK(strstr(tty, "Password: ") != NULL);
    CHECK(out_is("tv", 2));
    CHECK_EQ(RUN_PTY(wrong, tty, "get", store, "b", "k"), 4);
    CHECK(strstr(tty, "zapdb: get: cannot open the store: wrong password") !=
          NULL);
    CHECK_EQ(R.out_len, 0);
}

static void
test_cli_terminal_progress_shown_only_on_tty(void)
{
    static const char *const none[] = {""};
    char tty[16384];
    fx f;

    fx_init(&f);
    for (int i = 0; i < 5; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        CHECK_EQ(fx_put(&f, "b", key, "v", 1), 0);
    }
    CHECK_EQ(RUN_PTY(none, tty, "verify", f.store, "--password-file", f.pw), 0);
    CHECK(strstr(tty, "zapdb: verify: 100% (") != NULL);
    CHECK(out_has("verified 5 records in 1 buckets: 0 bad"));
    CHECK_EQ(RUN_PTY(none, tty, "rekey", f.store, "--password-file", f.pw), 0);
    CHECK(strstr(tty, "zapdb: rekey: ") != NULL);
    /* the same commands with stderr not a terminal: silent */
    CHECK_EQ(RUN("verify", f.store, "--password-file", f.pw), 0);
    CHECK_EQ(R.err_len, 0);
    CHECK_EQ(
        RUN("backup", f.store, kt_path(f.dir, "bk"), "--password-file", f.pw),
        0);
    CHECK_EQ(R.err_len, 0);
}

static const kt_case cases[] = {
    KT_CASE(test_cli_help_every_subcommand_exits0),
    KT_CASE(test_cli_no_arguments_exits2),
    KT_CASE(test_cli_unknown_subcommand_exits2),
    KT_CASE(test_cli_bad_command_lines_exit2),
    KT_CASE(test_cli_put_stdin_get_stdout_roundtrips_binary),
    KT_CASE(test_cli_put_in_get_out_roundtrips_mode0600),
    KT_CASE(test_cli_put_empty_value_roundtrips),
    KT_CASE(test_cli_key_hex_binary_key_roundtrips),
    KT_CASE(test_cli_key_hex_invalid_exits2),
    KT_CASE(test_cli_oversize_names_and_values_rejected),
    KT_CASE(test_cli_missing_things_exit3),
    KT_CASE(test_cli_del_removes_only_that_key),
    KT_CASE(test_cli_ls_buckets_and_prefix_sorted),
    KT_CASE(test_cli_wrong_password_exits4),
    KT_CASE(test_cli_password_file_mode0644_refused),
    KT_CASE(test_cli_password_sources_env_missing_empty),
    KT_CASE(test_cli_init_existing_store_refused),
    KT_CASE(test_cli_passwd_old_fails_new_works),
    KT_CASE(test_cli_rekey_keeps_data_new_generation),
    KT_CASE(test_cli_tampered_record_verify_exits5_names_bucket),
    KT_CASE(test_cli_store_files_hold_no_plaintext),
    KT_CASE(test_cli_backup_restore_roundtrips),
    KT_CASE(test_cli_restore_bad_backups_rejected),
    KT_CASE(test_cli_stats_text_and_json_agree),
    KT_CASE(test_cli_sync_modes_accepted),
    KT_CASE(test_cli_terminal_prompt_init_twice_then_open),
    KT_CASE(test_cli_terminal_progress_shown_only_on_tty),
};

int
main(int argc, char **argv)
{
    int rc;

    signal(SIGPIPE, SIG_IGN);
    rc = kt_main(argc, argv, cases, KT_COUNT(cases));
    run_clear();
    return rc;
}
