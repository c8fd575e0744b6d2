/* SPDX-License-Identifier: Apache-2.0 */
/* kmsd: start-up, flags, signals and shutdown. See docs/kmsd.md. */
#include "keys_int.h"
#include "kmsd_int.h"
#include "password.h"
#include "server.h"

#include "kc.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_PW_CONFIG 32

/* Structured log line on stderr; never given secrets. */
static void
logj(const char *level, const char *msg, json_t *fields)
{
    char t[32];
    json_t *o = json_object();
    char *s;

    kms_time_str((int64_t)time(NULL), t, sizeof t);
    json_object_set_new(o, "time", json_string(t));
    json_object_set_new(o, "level", json_string(level));
    json_object_set_new(o, "msg", json_string(msg));
    if (fields)
        json_object_update(o, fields);
    json_decref(fields);
    s = kms_json_dump(o, NULL);
    if (s)
        fprintf(stderr, "%s\n", s);
    free(s);
    json_decref(o);
}

static void
fail(const char *msg, const char *detail)
{
    logj("error", msg,
         detail && *detail ? json_pack("{s:s}", "detail", detail) : NULL);
}

static void
usage(FILE *f)
{
    fputs("usage: kmsd [options]\n"
          "  --listen ADDR:PORT        listener (default 127.0.0.1:8200; port "
          "0 picks one)\n"
          "  --data DIR                ZapDB store directory (created if "
          "missing)\n"
          "  --audit-log FILE          audit log (default DIR/audit.log)\n"
          "  --tls-cert FILE --tls-key FILE   serve HTTPS\n"
          "  --insecure-http           allow plain HTTP off loopback (not with "
          "--production)\n"
          "  --password-provider NAME  aws|gcp|azure|pkcs11|file|env\n"
          "  --password-key-id ID      key id (or file path) for the provider\n"
          "  --password-config K=V     provider configuration (repeatable)\n"
          "  --production              refuse env passwords, HTTP off "
          "loopback, test options\n"
          "  --dev                     development: temporary store unless "
          "--data, new root token\n"
          "  --root-token-file FILE    write a newly minted root token here "
          "(mode 0600)\n"
          "  --port-file FILE          write the bound port here\n"
          "  --aws-listen ADDR:PORT    also serve the AWS KMS-compatible "
          "endpoint here\n"
          "  --aws-port-file FILE      write its bound port here\n"
          "  --threads N               HTTP worker threads (default: number of "
          "CPUs)\n"
          "  --max-versions N          versions kept per secret (default 10)\n"
          "  --token-ttl DUR           default token TTL (default 1h)\n"
          "  --max-token-ttl DUR       largest token TTL (default 30d)\n"
          "  --login-max-failures N    failed logins before a lockout (default "
          "5)\n"
          "  --login-window SECONDS    failure window and lockout time "
          "(default 60)\n"
          "  --kdf-min                 minimum ZapDB KDF cost (tests only)\n"
          "  --verbose                 debug logs\n",
          f);
}

typedef struct {
    kms_config cfg;
    const char *pw_config[MAX_PW_CONFIG];
    char tmpdir[64];
    char audit_default[4096];
} opts;

static bool
parse_dur_arg(const char *s, uint64_t *out)
{
    json_t *j = json_string(s);
    bool ok = j && kms_parse_duration(j, out);
    json_decref(j);
    return ok;
}

static bool
parse_u32_arg(const char *s, uint32_t *out)
{
    uint64_t v;
    if (kc_parse_u64(s, &v) != 0 || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

enum {
    O_LISTEN = 256,
    O_DATA,
    O_AUDIT,
    O_CERT,
    O_KEY,
    O_INSECURE,
    O_PWPROV,
    O_PWKEY,
    O_PWCFG,
    O_PROD,
    O_DEV,
    O_ROOTFILE,
    O_PORTFILE,
    O_THREADS,
    O_MAXVER,
    O_TTL,
    O_MAXTTL,
    O_LMAX,
    O_LWIN,
    O_KDFMIN,
    O_VERBOSE,
    O_HELP,
    O_AWSLISTEN,
    O_AWSPORTFILE,
};

static int
parse_args(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"listen", required_argument, 0, O_LISTEN},
        {"data", required_argument, 0, O_DATA},
        {"audit-log", required_argument, 0, O_AUDIT},
        {"tls-cert", required_argument, 0, O_CERT},
        {"tls-key", required_argument, 0, O_KEY},
        {"insecure-http", no_argument, 0, O_INSECURE},
        {"password-provider", required_argument, 0, O_PWPROV},
        {"password-key-id", required_argument, 0, O_PWKEY},
        {"password-config", required_argument, 0, O_PWCFG},
        {"production", no_argument, 0, O_PROD},
        {"dev", no_argument, 0, O_DEV},
        {"root-token-file", required_argument, 0, O_ROOTFILE},
        {"port-file", required_argument, 0, O_PORTFILE},
        {"threads", required_argument, 0, O_THREADS},
        {"max-versions", required_argument, 0, O_MAXVER},
        {"token-ttl", required_argument, 0, O_TTL},
        {"max-token-ttl", required_argument, 0, O_MAXTTL},
        {"login-max-failures", required_argument, 0, O_LMAX},
        {"login-window", required_argument, 0, O_LWIN},
        {"kdf-min", no_argument, 0, O_KDFMIN},
        {"verbose", no_argument, 0, O_VERBOSE},
        {"help", no_argument, 0, O_HELP},
        {"aws-listen", required_argument, 0, O_AWSLISTEN},
        {"aws-port-file", required_argument, 0, O_AWSPORTFILE},
        {0, 0, 0, 0},
    };
    kms_config *c = &o->cfg;
    uint32_t u;
    int ch;

    c->listen = "127.0.0.1:8200";
    c->max_versions = 10;
    c->default_ttl = 3600;
    c->max_ttl = 30 * 86400;
    c->login_ttl = 900;
    c->login_max_failures = 5;
    c->login_window = 60;
    c->password_config = o->pw_config;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case O_LISTEN:
            c->listen = optarg;
            break;
        case O_DATA:
            c->data_dir = optarg;
            break;
        case O_AUDIT:
            c->audit_path = optarg;
            break;
        case O_CERT:
            c->tls_cert = optarg;
            break;
        case O_KEY:
            c->tls_key = optarg;
            break;
        case O_INSECURE:
            c->insecure_http = true;
            break;
        case O_PWPROV:
            c->password_provider = optarg;
            break;
        case O_PWKEY:
            c->password_key_id = optarg;
            break;
        case O_PWCFG:
            if (c->password_config_count == MAX_PW_CONFIG)
                return 2;
            o->pw_config[c->password_config_count++] = optarg;
            break;
        case O_PROD:
            c->production = true;
            break;
        case O_DEV:
            c->dev = true;
            break;
        case O_ROOTFILE:
            c->root_token_file = optarg;
            break;
        case O_PORTFILE:
            c->port_file = optarg;
            break;
        case O_AWSLISTEN:
            c->aws_listen = optarg;
            break;
        case O_AWSPORTFILE:
            c->aws_port_file = optarg;
            break;
        case O_THREADS:
            if (!parse_u32_arg(optarg, &u) || u == 0 || u > 256)
                return 2;
            c->threads = u;
            break;
        case O_MAXVER:
            if (!parse_u32_arg(optarg, &c->max_versions) ||
                c->max_versions == 0 || c->max_versions > 1000)
                return 2;
            break;
        case O_TTL:
            if (!parse_dur_arg(optarg, &c->default_ttl))
                return 2;
            break;
        case O_MAXTTL:
            if (!parse_dur_arg(optarg, &c->max_ttl))
                return 2;
            break;
        case O_LMAX:
            if (!parse_u32_arg(optarg, &c->login_max_failures) ||
                c->login_max_failures == 0)
                return 2;
            break;
        case O_LWIN:
            if (!parse_dur_arg(optarg, &c->login_window))
                return 2;
            break;
        case O_KDFMIN:
            c->kdf_min = true;
            break;
        case O_VERBOSE:
            c->verbose = true;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            return 2;
        }
    }
    if (optind != argc)
        return 2;
    if (c->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads = n > 0 && n <= 256 ? (unsigned)n : 2;
    }
    return 0;
}

/* The refusals of --production and the listener rules. */
static const char *
check_policy(const kms_config *c, bool loopback)
{
    bool tls = c->tls_cert || c->tls_key;
    char prov[32] = "";
    const char *p = c->password_provider;

    /* names as libhsm matches them: white space trimmed, case folded */
    if (p) {
        size_t n;
        while (*p == ' ' || *p == '\t')
            p++;
        n = strlen(p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n >= sizeof prov)
            n = sizeof prov - 1;
        memcpy(prov, p, n);
        prov[n] = '\0';
    }

    if (tls && !(c->tls_cert && c->tls_key))
        return "--tls-cert and --tls-key go together";
    if (c->production) {
        if (c->dev)
            return "--production and --dev exclude each other";
        if (c->kdf_min)
            return "--production refuses --kdf-min";
        if (!*prov || strcasecmp(prov, "env") == 0)
            return "--production refuses the env password provider "
                   "(use aws, gcp, azure, pkcs11 or file)";
        if (!tls && !loopback)
            return "--production refuses plain HTTP off loopback "
                   "(give --tls-cert and --tls-key)";
    }
    if (!tls && !loopback && !c->insecure_http)
        return "plain HTTP off loopback needs --insecure-http (or TLS)";
    if (!c->dev && !c->data_dir)
        return "--data DIR is required (or --dev)";
    if (!c->dev && !c->password_provider)
        return "--password-provider is required (or --dev)";
    return NULL;
}

static int
write_text_file(const char *path, const char *text)
{
    return kc_write_file_atomic(path, (const uint8_t *)text, strlen(text),
                                0600);
}

typedef struct {
    kms_store *store;
    kms_srv srv;
    kms_server *http;
    kms_server *aws; /* --aws-listen, or NULL */
    char detail[512];
} runtime;

static kms_err
open_store(opts *o, runtime *rt, bool *temp_pw)
{
    kms_config *c = &o->cfg;
    uint8_t *pw = NULL;
    size_t pw_len = 0;
    kms_st_err se;
    kms_err rc;

    *temp_pw = false;
    if (c->dev && !c->password_provider && c->data_dir != o->tmpdir)
        c->password_provider =
            "env"; /* dev with a kept store: ZAPDB_PASSWORD... */
    if (c->dev && !c->password_provider) {
        /* a throw-away password for a throw-away store */
        uint8_t r[32];
        if (!(pw = kc_secure_alloc(65)))
            return KMS_ENOMEM;
        kc_random(r, sizeof r);
        kc_hex_encode(r, sizeof r, (char *)pw, 65);
        kc_wipe(r, sizeof r);
        pw_len = 64;
        *temp_pw = true;
    } else if ((rc = kmsd_password_get(c, &pw, &pw_len, rt->detail,
                                       sizeof rt->detail)) != KMS_OK) {
        return rc;
    }
    se = kms_store_zap_open(c->data_dir, pw, pw_len, true,
                            c->kdf_min || *temp_pw, &rt->store, rt->detail,
                            sizeof rt->detail);
    kc_secure_free(pw);
    return se == KMS_ST_OK ? KMS_OK : KMS_ESTORE;
}

static kms_err
mint_root(opts *o, runtime *rt)
{
    kms_config *c = &o->cfg;
    char token[KMS_TOKEN_LEN + 2];
    bool is_new = false, tty = isatty(STDERR_FILENO) == 1;
    kms_err rc;

    if ((rc = kms_srv_is_new(&rt->srv, &is_new)) != KMS_OK)
        return rc;
    if (!c->dev && !is_new)
        return kms_srv_init(&rt->srv, rt->store, c->max_versions, NULL, false,
                            NULL);
    if (!c->root_token_file && !tty) {
        snprintf(rt->detail, sizeof rt->detail,
                 "a new root token needs --root-token-file (or a terminal)");
        return KMS_EINVAL;
    }
    rc =
        kms_srv_init(&rt->srv, rt->store, c->max_versions, token, c->dev, NULL);
    if (rc != KMS_OK)
        return rc;
    if (c->root_token_file) {
        token[KMS_TOKEN_LEN] = '\n';
        token[KMS_TOKEN_LEN + 1] = '\0';
        if (write_text_file(c->root_token_file, token) != 0) {
            snprintf(rt->detail, sizeof rt->detail,
                     "cannot write the root token file");
            rc = KMS_EINVAL;
        }
        token[KMS_TOKEN_LEN] = '\0';
    }
    if (rc == KMS_OK && tty)
        fprintf(stderr, "Root token (shown once): %s\n", token);
    kc_wipe(token, sizeof token);
    return rc;
}

static char *
read_pem(const char *path, bool secure)
{
    uint8_t *p = NULL;
    size_t n = 0;

    if (!path || kc_read_file(path, 1024 * 1024, secure, &p, &n) != 0)
        return NULL;
    return (char *)p;
}

static kms_err
start_http(opts *o, runtime *rt, const struct sockaddr_storage *ss,
           uint16_t *port)
{
    kms_config *c = &o->cfg;
    char *cert = NULL, *key = NULL;
    kms_err rc;

    if (c->tls_cert) {
        cert = read_pem(c->tls_cert, false);
        key = read_pem(c->tls_key, true);
        if (!cert || !key) {
            snprintf(rt->detail, sizeof rt->detail,
                     "cannot read the TLS certificate or key file");
            free(cert);
            kc_secure_free(key);
            return KMS_EINVAL;
        }
    }
    rc = kms_server_start(&rt->srv, &kms_api_v1, (const struct sockaddr *)ss,
                          c->threads, cert, key, c->verbose, &rt->http, port,
                          rt->detail, sizeof rt->detail);
    free(cert);
    kc_secure_free(key);
    return rc;
}

/* The AWS KMS-compatible listener: same TLS and loopback rules as the
 * main one. */
static kms_err
start_aws(opts *o, runtime *rt)
{
    kms_config *c = &o->cfg;
    struct sockaddr_storage ss;
    size_t ss_len;
    bool loopback = false;
    char *cert = NULL, *key = NULL, portbuf[16];
    const char *why;
    uint16_t port = 0;
    kms_err rc;

    if (!kms_parse_listen(c->aws_listen, &ss, &ss_len, &loopback)) {
        snprintf(rt->detail, sizeof rt->detail, "bad --aws-listen");
        return KMS_EINVAL;
    }
    if ((why = check_policy(c, loopback))) {
        snprintf(rt->detail, sizeof rt->detail, "%s", why);
        return KMS_EINVAL;
    }
    if (c->tls_cert && (!(cert = read_pem(c->tls_cert, false)) ||
                        !(key = read_pem(c->tls_key, true)))) {
        snprintf(rt->detail, sizeof rt->detail,
                 "cannot read the TLS certificate or key file");
        free(cert);
        return KMS_EINVAL;
    }
    rc = kms_server_start(&rt->srv, &kms_api_aws, (const struct sockaddr *)&ss,
                          c->threads, cert, key, c->verbose, &rt->aws, &port,
                          rt->detail, sizeof rt->detail);
    free(cert);
    kc_secure_free(key);
    if (rc != KMS_OK)
        return rc;
    snprintf(portbuf, sizeof portbuf, "%u\n", port);
    if (c->aws_port_file && write_text_file(c->aws_port_file, portbuf) != 0) {
        snprintf(rt->detail, sizeof rt->detail, "cannot write %s",
                 c->aws_port_file);
        return KMS_EINVAL;
    }
    logj("info", "AWS KMS endpoint started",
         json_pack("{s:s,s:i}", "listen", c->aws_listen, "port", (int)port));
    return KMS_OK;
}

int
main(int argc, char **argv)
{
    opts o;
    runtime rt;
    struct sockaddr_storage ss;
    size_t ss_len;
    bool loopback = false, temp_pw = false;
    const char *why;
    sigset_t sigs;
    uint16_t port = 0;
    int sig = 0, status = 1;
    char portbuf[16];

    memset(&o, 0, sizeof o);
    memset(&rt, 0, sizeof rt);
    kms_json_init();
    if (kc_harden_process() != 0 || kc_init() != 0) {
        fail("cannot harden the process or start libsodium", NULL);
        return 1;
    }
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    if (!kms_parse_listen(o.cfg.listen, &ss, &ss_len, &loopback)) {
        fail("bad --listen: use ADDR:PORT with a numeric address",
             o.cfg.listen);
        return 2;
    }
    if ((why = check_policy(&o.cfg, loopback))) {
        fail("refusing to start", why);
        return 2;
    }
    if (o.cfg.dev && !o.cfg.data_dir) {
        snprintf(o.tmpdir, sizeof o.tmpdir, "/tmp/kmsd-dev-XXXXXX");
        if (!mkdtemp(o.tmpdir)) {
            fail("cannot create a temporary store directory", strerror(errno));
            return 1;
        }
        o.cfg.data_dir = o.tmpdir;
    }
    if (!o.cfg.audit_path) {
        snprintf(o.audit_default, sizeof o.audit_default, "%s/audit.log",
                 o.cfg.data_dir);
        o.cfg.audit_path = o.audit_default;
    }
    /* Signals go to sigwait() below, not to any worker thread. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    rt.srv.default_ttl = o.cfg.default_ttl;
    rt.srv.max_ttl = o.cfg.max_ttl;
    rt.srv.login_ttl =
        o.cfg.login_ttl < o.cfg.max_ttl ? o.cfg.login_ttl : o.cfg.max_ttl;
    if (open_store(&o, &rt, &temp_pw) != KMS_OK) {
        fail("cannot open the store", rt.detail);
        goto out;
    }
    rt.srv.store = rt.store;
    if (mint_root(&o, &rt) != KMS_OK) {
        fail("cannot initialise the store", rt.detail);
        goto out;
    }
    rt.detail[0] = '\0';
    if (kms_ratelimit_new(o.cfg.login_max_failures, o.cfg.login_window,
                          &rt.srv.rl) != KMS_OK ||
        kms_audit_open(o.cfg.audit_path, rt.store, &rt.srv.metrics,
                       &rt.srv.audit, rt.detail, sizeof rt.detail) != KMS_OK) {
        fail("cannot open the audit log", rt.detail);
        goto out;
    }
    if (rt.detail[0]) {
        logj("warn", "audit log repaired",
             json_pack("{s:s}", "detail", rt.detail));
        rt.detail[0] = '\0';
    }
    if (start_http(&o, &rt, &ss, &port) != KMS_OK) {
        fail("cannot start the listener", rt.detail);
        goto out;
    }
    if (o.cfg.aws_listen && start_aws(&o, &rt) != KMS_OK) {
        fail("cannot start the AWS KMS endpoint", rt.detail);
        goto out;
    }
    snprintf(portbuf, sizeof portbuf, "%u\n", port);
    if (o.cfg.port_file && write_text_file(o.cfg.port_file, portbuf) != 0) {
        fail("cannot write the port file", o.cfg.port_file);
        goto out;
    }
    logj("info", "kmsd started",
         json_pack("{s:s,s:i,s:s,s:b,s:s,s:i,s:b}", "listen", o.cfg.listen,
                   "port", (int)port, "tls", o.cfg.tls_cert ? "on" : "off",
                   "dev", o.cfg.dev, "audit_log", o.cfg.audit_path, "threads",
                   (int)o.cfg.threads, "production", o.cfg.production));
    /* Wait for SIGTERM/SIGINT; once a minute, drop expired tokens. */
    for (;;) {
        struct timespec minute = {60, 0};
        size_t swept = 0;
        sig = sigtimedwait(&sigs, NULL, &minute);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (kms_srv_sweep(&rt.srv, &swept) != KMS_OK)
            logj("warn", "expired-token sweep failed", NULL);
        else if (swept)
            logj("info", "expired tokens removed",
                 json_pack("{s:i}", "count", (int)swept));
        if (kms_keys_sweep(&rt.srv, &swept) != KMS_OK)
            logj("warn", "deleted-key sweep failed", NULL);
        else if (swept)
            logj("info", "deleted keys and expired import tokens removed",
                 json_pack("{s:i}", "count", (int)swept));
    }
    logj("info", "shutting down: draining requests",
         json_pack("{s:i}", "signal", sig));
    status = 0;
out:
    kms_server_stop(rt.aws, 10000);
    kms_server_stop(rt.http, 10000);
    kms_audit_close(rt.srv.audit);
    rt.srv.audit = NULL;
    kms_store_close(rt.store);
    kms_srv_fini(&rt.srv);
    if (o.tmpdir[0])
        kc_rmtree(o.tmpdir);
    if (status == 0)
        logj("info", "kmsd stopped", NULL);
    return status;
}
