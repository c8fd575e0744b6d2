/* SPDX-License-Identifier: Apache-2.0 */
/* AWS SigV4: the AWS test suite (tests/vectors/sigv4) for signing and
 * verification, plus negative tests for every verifier error. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kc.h"
#include "sigv4.h"
#include "testutil.h"

#define SUITE_AKID   "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_TIME   ((time_t)1440938160) /* 20150830T123600Z */
#define MAXH         32

/* ---- a parser for the suite's raw requests ---------------------------- */

typedef struct {
    char *text; /* owned copy, cut into pieces */
    char *method, *path, *query;
    hsm_sigv4_header h[MAXH];
    size_t nh;
    char *body;
    size_t body_len;
} raw_req;

/* Parse "METHOD SP target SP HTTP/1.1", header lines (a line starting
 * with blanks continues the previous header as a further value), then an
 * optional body after an empty line. The target may hold a raw space
 * (normalize-path/get-space), so the version is taken from the last
 * space. */
static int
parse_req(const char *src, size_t len, raw_req *r)
{
    char *p, *nl, *sp, *last;

    memset(r, 0, sizeof *r);
    if (!(r->text = malloc(len + 1)))
        return -1;
    memcpy(r->text, src, len);
    r->text[len] = '\0';
    p = r->text;
    nl = strchr(p, '\n');
    if (!nl)
        return -1;
    *nl = '\0';
    sp = strchr(p, ' ');
    last = strrchr(p, ' ');
    if (!sp || sp == last)
        return -1;
    *sp = '\0';
    *last = '\0';
    r->method = p;
    r->path = sp + 1;
    if ((r->query = strchr(r->path, '?')))
        *r->query++ = '\0';
    p = nl + 1;
    while (*p) {
        char *line = p, *colon;

        nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        p = nl ? nl + 1 : p + strlen(p);
        if (*line == '\0') {
            r->body = p;
            r->body_len = strlen(p);
            break;
        }
        if (r->nh == MAXH)
            return -1;
        if (*line == ' ' || *line == '\t') {
            if (r->nh == 0)
                return -1;
            while (*line == ' ' || *line == '\t')
                line++;
            r->h[r->nh].name = r->h[r->nh - 1].name;
            r->h[r->nh++].value = line;
            continue;
        }
        if (!(colon = strchr(line, ':')))
            return -1;
        *colon = '\0';
        r->h[r->nh].name = line;
        r->h[r->nh++].value = colon + 1;
    }
    return 0;
}

static void
remove_header(raw_req *r, const char *name)
{
    size_t j = 0;

    for (size_t i = 0; i < r->nh; i++)
        if (strcasecmp(r->h[i].name, name) != 0)
            r->h[j++] = r->h[i];
    r->nh = j;
}

static const char *
find_header(const raw_req *r, const char *name)
{
    for (size_t i = 0; i < r->nh; i++)
        if (strcasecmp(r->h[i].name, name) == 0)
            return r->h[i].value;
    return NULL;
}

static hsm_sigv4_request
as_request(const raw_req *r)
{
    hsm_sigv4_request q = {
        .method = r->method,
        .path = r->path,
        .query = r->query,
        .headers = r->h,
        .header_count = r->nh,
        .body = (const uint8_t *)r->body,
        .body_len = r->body_len,
    };
    return q;
}

/* ---- suite enumeration ------------------------------------------------- */

typedef struct {
    char dir[1024];
    char name[128];
} suite_case;

static suite_case cases_found[64];
static size_t ncases;

static void
scan(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d))) {
        char sub[1024], probe[1200];
        struct stat st;

        if (e->d_name[0] == '.')
            continue;
        if (snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >=
                (int)sizeof sub ||
            stat(sub, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (snprintf(probe, sizeof probe, "%s/%s.req", sub, e->d_name) <
                (int)sizeof probe &&
            stat(probe, &st) == 0 && ncases < KT_COUNT(cases_found)) {
            kc_strlcpy(cases_found[ncases].dir, sub, sizeof cases_found[0].dir);
            kc_strlcpy(cases_found[ncases].name, e->d_name,
                       sizeof cases_found[0].name);
            ncases++;
        }
        scan(sub);
    }
    closedir(d);
}

static void
load_cases(void)
{
    char root[1024];

    if (ncases)
        return;
    snprintf(root, sizeof root, "%s/sigv4/aws-sig-v4-test-suite",
             kt_vectors_dir());
    scan(root);
}

static char *
case_file(const suite_case *c, const char *ext, size_t *len)
{
    char p[1400];

    if (snprintf(p, sizeof p, "%s/%s.%s", c->dir, c->name, ext) >=
        (int)sizeof p)
        return NULL;
    return (char *)kt_read_all(p, len);
}

static const char *
suite_token(void)
{
    static char tok[1024];
    suite_case c;
    char *t;
    size_t n;
    raw_req r;

    if (tok[0])
        return tok;
    snprintf(c.dir, sizeof c.dir,
             "%s/sigv4/aws-sig-v4-test-suite/post-sts-token/"
             "post-sts-header-before",
             kt_vectors_dir());
    kc_strlcpy(c.name, "post-sts-header-before", sizeof c.name);
    t = case_file(&c, "req", &n);
    if (t && parse_req(t, n, &r) == 0 &&
        find_header(&r, "X-Amz-Security-Token"))
        kc_strlcpy(tok, find_header(&r, "X-Amz-Security-Token"), sizeof tok);
    free(t);
    free(r.text);
    return tok;
}

/* The two form-urlencoded cases are inconsistent upstream (see
 * tests/vectors/sigv4/README.md): their .sts/.authz/.sreq were made
 * without the Content-Length header that .creq signs. */
static bool
is_form(const suite_case *c)
{
    return strcmp(c->name, "post-x-www-form-urlencoded") == 0;
}
static bool
is_form_params(const suite_case *c)
{
    return strcmp(c->name, "post-x-www-form-urlencoded-parameters") == 0;
}

/* Remove the "Content-Length:..." line from a raw request text. */
static void
drop_content_length_line(char *t)
{
    char *p = strstr(t, "\nContent-Length:");
    char *e;

    if (!p)
        return;
    e = strchr(p + 1, '\n');
    if (e)
        memmove(p, e, strlen(e) + 1);
    else
        *p = '\0';
}

static hsm_sigv4_err
sign_case(const suite_case *c, const char *req_text, size_t len,
          hsm_sigv4_result *res)
{
    raw_req r;
    hsm_sigv4_params p = {
        .access_key_id = SUITE_AKID,
        .secret_access_key = SUITE_SECRET,
        .region = "us-east-1",
        .service = "service",
        .time = SUITE_TIME,
    };
    hsm_sigv4_request q;
    hsm_sigv4_err rc;

    if (parse_req(req_text, len, &r) != 0) {
        free(r.text);
        return HSM_SIGV4_EINVAL;
    }
    /* The signer adds X-Amz-Date (from the time) and the token itself. */
    remove_header(&r, "X-Amz-Date");
    if (find_header(&r, "X-Amz-Security-Token")) {
        remove_header(&r, "X-Amz-Security-Token");
        p.session_token = suite_token();
    }
    if (strcmp(c->name, "post-sts-header-after") == 0) {
        p.session_token = suite_token();
        p.flags |= HSM_SIGV4_TOKEN_UNSIGNED;
    }
    q = as_request(&r);
    rc = hsm_sigv4_sign(&q, &p, res);
    free(r.text);
    return rc;
}

/* The signed request as the suite writes it: the original request, the
 * headers added after signing, the Authorization line, then the body. */
static char *
make_sreq(const char *req_text, const hsm_sigv4_result *res, bool token_after)
{
    const char *body = strstr(req_text, "\n\n");
    size_t head_len = body ? (size_t)(body - req_text) : strlen(req_text);
    size_t cap = strlen(req_text) + 4096;
    char *s = malloc(cap);
    size_t n;

    if (!s)
        return NULL;
    memcpy(s, req_text, head_len);
    n = head_len;
    if (token_after)
        n += (size_t)snprintf(s + n, cap - n, "\nX-Amz-Security-Token:%s",
                              res->add[1].value);
    n += (size_t)snprintf(s + n, cap - n, "\nAuthorization: %s",
                          res->authorization);
    if (body)
        snprintf(s + n, cap - n, "%s", body);
    return s;
}

static void
test_sigv4_suite_all_cases_match(void)
{
    size_t checked = 0;

    load_cases();
    CHECK_EQ(ncases, 31);
    for (size_t i = 0; i < ncases; i++) {
        const suite_case *c = &cases_found[i];
        size_t rl, cl, sl, al, ql;
        char *req = case_file(c, "req", &rl), *creq = case_file(c, "creq", &cl);
        char *sts = case_file(c, "sts", &sl),
             *authz = case_file(c, "authz", &al);
        char *sreq = case_file(c, "sreq", &ql), *mine = NULL;
        hsm_sigv4_result res;

        REQUIRE(req && creq && sts && authz && sreq);
        /* 1. The canonical request of the .req as given. */
        memset(&res, 0, sizeof res);
        CHECK_EQ(sign_case(c, req, rl, &res), HSM_SIGV4_OK);
        if (!res.canonical_request || strcmp(res.canonical_request, creq) != 0)
            fprintf(stderr, "  creq mismatch in %s:\n%s\n", c->name,
                    res.canonical_request ? res.canonical_request : "(null)");
        CHECK(res.canonical_request &&
              strcmp(res.canonical_request, creq) == 0);
        hsm_sigv4_result_free(&res);
        if (is_form_params(c)) {
            free(req), free(creq), free(sts), free(authz), free(sreq);
            checked++;
            continue; /* only .sts -> .authz is reliable: tested below */
        }
        /* 2. String to sign, Authorization and signed request. */
        if (is_form(c))
            drop_content_length_line(req);
        CHECK_EQ(sign_case(c, req, strlen(req), &res), HSM_SIGV4_OK);
        CHECK(res.string_to_sign && strcmp(res.string_to_sign, sts) == 0);
        CHECK(res.authorization && strcmp(res.authorization, authz) == 0);
        if (res.authorization &&
            !(mine = make_sreq(req, &res,
                               strcmp(c->name, "post-sts-header-after") == 0)))
            CHECK(0);
        if (mine && strcmp(mine, sreq) != 0)
            fprintf(stderr, "  sreq mismatch in %s:\n%s\n", c->name, mine);
        CHECK(mine && strcmp(mine, sreq) == 0);
        if (res.authorization && strcmp(res.authorization, authz) != 0)
            fprintf(stderr, "  authz mismatch in %s: %s\n", c->name,
                    res.authorization);
        free(mine);
        hsm_sigv4_result_free(&res);
        free(req), free(creq), free(sts), free(authz), free(sreq);
        checked++;
    }
    CHECK_EQ(checked, 31);
}

/* Signing key derivation and HMAC over every case's own .sts must give the
 * .authz signature (the one step reliable in all 31 cases). */
static void
test_sigv4_suite_sts_to_signature_matches(void)
{
    uint8_t key[32];

    load_cases();
    REQUIRE(ncases == 31);
    REQUIRE(hsm_sigv4_signing_key(SUITE_SECRET, "20150830", "us-east-1",
                                  "service", key) == 0);
    for (size_t i = 0; i < ncases; i++) {
        size_t sl;
        char *sts = case_file(&cases_found[i], "sts", &sl);
        char *authz = case_file(&cases_found[i], "authz", NULL);
        char sig[65];
        const char *want;

        REQUIRE(sts && authz);
        want = strstr(authz, "Signature=");
        REQUIRE(want);
        CHECK_EQ(hsm_sigv4_signature_from_sts(key, sts, sl, sig), 0);
        CHECK(strcmp(sig, want + 10) == 0);
        free(sts);
        free(authz);
    }
    kc_wipe(key, sizeof key);
}

/* ---- verification ------------------------------------------------------ */

static int
suite_lookup(void *ctx, const char *akid, char *secret, size_t cap, size_t *len)
{
    (void)ctx;
    if (strcmp(akid, SUITE_AKID) != 0)
        return -1;
    *len = strlen(SUITE_SECRET);
    return kc_strlcpy(secret, SUITE_SECRET, cap);
}

static hsm_sigv4_verify_opts
suite_opts(void)
{
    hsm_sigv4_verify_opts o = {
        .lookup = suite_lookup,
        .region = "us-east-1",
        .service = "service",
        .now = SUITE_TIME,
    };
    return o;
}

static hsm_sigv4_err
verify_raw(const raw_req *r, const hsm_sigv4_verify_opts *o)
{
    hsm_sigv4_request q = as_request(r);

    return hsm_sigv4_verify(&q, o, NULL);
}

/* Tamper with one signed part of the parsed request; returns false when
 * the case has no such part. `buf` provides storage for new strings. */
static bool
tamper(raw_req *r, int what, char *buf, size_t cap)
{
    switch (what) {
    case 0: /* method */
        r->method = strcmp(r->method, "GET") == 0 ? "POST" : "GET";
        return true;
    case 1: /* path */
        snprintf(buf, cap, "%sx", r->path);
        r->path = buf;
        return true;
    case 2: /* query */
        snprintf(buf, cap, "%s%stamper=1", r->query ? r->query : "",
                 r->query && *r->query ? "&" : "");
        r->query = buf;
        return true;
    case 3: /* a signed header other than the date */
        for (size_t i = 0; i < r->nh; i++) {
            if (strcasecmp(r->h[i].name, "authorization") == 0 ||
                strcasecmp(r->h[i].name, "x-amz-date") == 0 ||
                strcasecmp(r->h[i].name, "x-amz-security-token") == 0)
                continue;
            snprintf(buf, cap, "%sx", r->h[i].value);
            r->h[i].value = buf;
            return true;
        }
        return false;
    case 4: /* body */
        snprintf(buf, cap, "%.*sX", (int)r->body_len, r->body ? r->body : "");
        r->body = buf;
        r->body_len = strlen(buf);
        return true;
    default:
        return false;
    }
}

static void
test_sigv4_verify_suite_sreq_accepted_and_tampered_rejected(void)
{
    hsm_sigv4_verify_opts o = suite_opts();

    load_cases();
    REQUIRE(ncases == 31);
    for (size_t i = 0; i < ncases; i++) {
        const suite_case *c = &cases_found[i];
        size_t ql;
        char *sreq = case_file(c, "sreq", &ql);
        raw_req r;
        hsm_sigv4_err rc;

        REQUIRE(sreq);
        REQUIRE(parse_req(sreq, ql, &r) == 0);
        rc = verify_raw(&r, &o);
        if (is_form_params(c)) {
            /* Upstream inconsistency: the signature covers
             * "charset=utf8", the request says "utf-8". */
            CHECK_EQ(rc, HSM_SIGV4_ESIGNATURE);
            for (size_t k = 0; k < r.nh; k++)
                if (strcasecmp(r.h[k].name, "content-type") == 0)
                    r.h[k].value =
                        "application/x-www-form-urlencoded; charset=utf8";
            rc = verify_raw(&r, &o);
        }
        if (rc != HSM_SIGV4_OK)
            fprintf(stderr, "  verify %s: %s\n", c->name,
                    hsm_sigv4_strerror(rc));
        CHECK_EQ(rc, HSM_SIGV4_OK);
        for (int what = 0; what < 5; what++) {
            raw_req t = r;
            char buf[2048];

            if (!tamper(&t, what, buf, sizeof buf))
                continue;
            rc = verify_raw(&t, &o);
            if (rc != HSM_SIGV4_ESIGNATURE)
                fprintf(stderr, "  tamper %d of %s: %s\n", what, c->name,
                        hsm_sigv4_strerror(rc));
            CHECK_EQ(rc, HSM_SIGV4_ESIGNATURE);
        }
        free(r.text);
        free(sreq);
    }
}

/* A KMS-style request signed by us, used by the negative tests. */
typedef struct {
    hsm_sigv4_header h[8];
    size_t nh;
    hsm_sigv4_result res;
    hsm_sigv4_request q;
    const char *body;
} kms_req;

static void
make_kms_req(kms_req *k, time_t t, unsigned flags, const char *token)
{
    hsm_sigv4_params p = {
        .access_key_id = SUITE_AKID,
        .secret_access_key = SUITE_SECRET,
        .session_token = token,
        .region = "us-east-1",
        .service = "kms",
        .time = t,
        .flags = flags,
    };

    memset(k, 0, sizeof *k);
    k->body = "{\"KeyId\":\"alias/test\",\"CiphertextBlob\":\"AAAA\"}";
    k->h[0] = (hsm_sigv4_header){"Host", "kms.us-east-1.amazonaws.com"};
    k->h[1] = (hsm_sigv4_header){"Content-Type", "application/x-amz-json-1.1"};
    k->h[2] = (hsm_sigv4_header){"X-Amz-Target", "TrentService.Decrypt"};
    k->h[3] = (hsm_sigv4_header){"User-Agent", "test/1"};
    k->nh = 4;
    k->q = (hsm_sigv4_request){.method = "POST",
                               .path = "/",
                               .headers = k->h,
                               .header_count = k->nh,
                               .body = (const uint8_t *)k->body,
                               .body_len = strlen(k->body)};
    REQUIRE(hsm_sigv4_sign(&k->q, &p, &k->res) == HSM_SIGV4_OK);
    for (size_t i = 0; i < k->res.add_count; i++)
        k->h[k->nh++] = k->res.add[i];
    k->h[k->nh++] = (hsm_sigv4_header){"Authorization", k->res.authorization};
    k->q.header_count = k->nh;
}

static hsm_sigv4_verify_opts
kms_opts(time_t now)
{
    hsm_sigv4_verify_opts o = suite_opts();

    o.service = "kms";
    o.now = now;
    return o;
}

static void
test_sigv4_roundtrip_with_token_and_content_sha_ok(void)
{
    kms_req k;
    hsm_sigv4_verify_opts o = kms_opts(SUITE_TIME + 10);
    hsm_sigv4_identity who;

    make_kms_req(&k, SUITE_TIME, HSM_SIGV4_ADD_CONTENT_SHA256, "tok/en+=");
    CHECK_EQ(k.res.add_count, 3);
    CHECK(strstr(k.res.authorization,
                 "SignedHeaders=content-type;host;x-amz-content-sha256;"
                 "x-amz-date;x-amz-security-token;x-amz-target,") != NULL);
    /* User-Agent is never signed. */
    CHECK(strstr(k.res.canonical_request, "user-agent") == NULL);
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, &who), HSM_SIGV4_OK);
    CHECK(strcmp(who.access_key_id, SUITE_AKID) == 0);
    CHECK(strcmp(who.service, "kms") == 0);
    CHECK(who.signed_session_token);
    /* Unsigned headers may change: User-Agent. */
    k.h[3].value = "other/2";
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_OK);
    /* The body no longer matching X-Amz-Content-Sha256 is refused. */
    k.q.body_len--;
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_ESIGNATURE);
    hsm_sigv4_result_free(&k.res);
}

static void
test_sigv4_verify_missing_headers_emissing(void)
{
    kms_req k;
    hsm_sigv4_verify_opts o = kms_opts(SUITE_TIME);

    make_kms_req(&k, SUITE_TIME, 0, NULL);
    k.q.header_count = k.nh - 1; /* without Authorization */
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_EMISSING);
    k.q.header_count = k.nh;
    k.h[4].name = "X-Other-Date"; /* X-Amz-Date gone */
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_EMISSING);
    hsm_sigv4_result_free(&k.res);
}

static void
test_sigv4_verify_malformed_authorization_emalformed(void)
{
    static const char *const bad[] = {
        "AWS4-HMAC-SHA512 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/"
        "aws4_request, SignedHeaders=host;x-amz-date, Signature=" /* algo */
        "0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms, "
        "SignedHeaders=host;x-amz-date, Signature=" /* scope parts */
        "0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/"
        "aws4_request, SignedHeaders=x-amz-date;host, Signature=" /* order */
        "0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/"
        "aws4_request, SignedHeaders=x-amz-date, Signature=" /* no host */
        "0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/"
        "aws4_request, SignedHeaders=host;x-amz-date, Signature=" /* short */
        "000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/"
        "aws4_request, SignedHeaders=host;x-amz-date, Signature=" /* case */
        "000000000000000000000000000000000000000000000000000000000000000A",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/"
        "aws4_request, SignedHeaders=host;x-amz-date, Signature=" /* junk */
        "0000000000000000000000000000000000000000000000000000000000000000, x",
        "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Credential=AKIDEX"
        "AMPLE/20150830/us-east-1/kms/aws4_request, Signature=" /* fields */
        "0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083/us-east-1/kms/"
        "aws4_request, SignedHeaders=host;x-amz-date, Signature=" /* date */
        "0000000000000000000000000000000000000000000000000000000000000000",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/"
        "aws4_request, SignedHeaders=host;host;x-amz-date, Signature=" /* dup */
        "0000000000000000000000000000000000000000000000000000000000000000",
        "",
    };
    kms_req k;
    hsm_sigv4_verify_opts o = kms_opts(SUITE_TIME);

    make_kms_req(&k, SUITE_TIME, 0, NULL);
    for (size_t i = 0; i < KT_COUNT(bad); i++) {
        k.h[k.nh - 1].value = bad[i];
        if (hsm_sigv4_verify(&k.q, &o, NULL) != HSM_SIGV4_EMALFORMED)
            fprintf(stderr, "  accepted bad[%zu]\n", i);
        CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_EMALFORMED);
    }
    /* Two Authorization headers. */
    k.h[k.nh - 1].value = k.res.authorization;
    k.h[k.nh] = k.h[k.nh - 1];
    k.q.header_count = k.nh + 1;
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_EMALFORMED);
    hsm_sigv4_result_free(&k.res);
}

static int
other_lookup(void *ctx, const char *akid, char *secret, size_t cap, size_t *len)
{
    (void)ctx;
    (void)akid;
    *len = 6;
    return kc_strlcpy(secret, "wrong!", cap);
}

static int
none_lookup(void *ctx, const char *akid, char *secret, size_t cap, size_t *len)
{
    (void)ctx, (void)akid, (void)secret, (void)cap, (void)len;
    return -1;
}

static void
test_sigv4_verify_unknown_key_eunknown_key(void)
{
    kms_req k;
    hsm_sigv4_verify_opts o = kms_opts(SUITE_TIME);

    make_kms_req(&k, SUITE_TIME, 0, NULL);
    o.lookup = none_lookup;
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_EUNKNOWN_KEY);
    hsm_sigv4_result_free(&k.res);
}

static void
test_sigv4_verify_wrong_secret_esignature(void)
{
    kms_req k;
    hsm_sigv4_verify_opts o = kms_opts(SUITE_TIME);

    make_kms_req(&k, SUITE_TIME, 0, NULL);
    o.lookup = other_lookup;
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_ESIGNATURE);
    hsm_sigv4_result_free(&k.res);
}

static void
test_sigv4_verify_clock_skew_eskew(void)
{
    kms_req k;
    hsm_sigv4_verify_opts o;

    make_kms_req(&k, SUITE_TIME, 0, NULL);
    o = kms_opts(SUITE_TIME + 300);
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_OK);
    o = kms_opts(SUITE_TIME - 300);
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_OK);
    o = kms_opts(SUITE_TIME + 301);
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_ESKEW);
    o = kms_opts(SUITE_TIME - 301);
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_ESKEW);
    o = kms_opts(SUITE_TIME + 61);
    o.max_skew = 60;
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_ESKEW);
    /* A malformed X-Amz-Date. */
    o = kms_opts(SUITE_TIME);
    k.h[4].value = "20150830T1236Z";
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_EMALFORMED);
    hsm_sigv4_result_free(&k.res);
}

static void
test_sigv4_verify_scope_mismatch_escope(void)
{
    kms_req k;
    hsm_sigv4_verify_opts o = kms_opts(SUITE_TIME);
    char authz[512];
    char *d;

    make_kms_req(&k, SUITE_TIME, 0, NULL);
    o.region = "eu-west-1";
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_ESCOPE);
    o.region = NULL; /* any region */
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_OK);
    o.service = "s3";
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_ESCOPE);
    /* Scope date not the X-Amz-Date day. */
    o = kms_opts(SUITE_TIME);
    kc_strlcpy(authz, k.res.authorization, sizeof authz);
    d = strstr(authz, "/20150830/");
    REQUIRE(d);
    memcpy(d + 1, "20150831", 8);
    k.h[k.nh - 1].value = authz;
    CHECK_EQ(hsm_sigv4_verify(&k.q, &o, NULL), HSM_SIGV4_ESCOPE);
    hsm_sigv4_result_free(&k.res);
}

static void
test_sigv4_sign_bad_input_rejected(void)
{
    hsm_sigv4_header h[3] = {{"Host", "example.com"}, {"X-Amz-Date", "x"}};
    hsm_sigv4_request q = {
        .method = "GET", .path = "/", .headers = h, .header_count = 1};
    hsm_sigv4_params p = {.access_key_id = SUITE_AKID,
                          .secret_access_key = SUITE_SECRET,
                          .region = "us-east-1",
                          .service = "kms",
                          .time = SUITE_TIME};
    hsm_sigv4_result r;

    CHECK_EQ(hsm_sigv4_sign(&q, &p, &r), HSM_SIGV4_OK);
    hsm_sigv4_result_free(&r);
    q.query = "a=%zz";
    CHECK_EQ(hsm_sigv4_sign(&q, &p, &r), HSM_SIGV4_EMALFORMED);
    q.query = "a=%4";
    CHECK_EQ(hsm_sigv4_sign(&q, &p, &r), HSM_SIGV4_EMALFORMED);
    q.query = NULL;
    {
        static char deep[2000];

        for (size_t i = 0; i + 2 < sizeof deep; i += 2)
            memcpy(deep + i, "/a", 2);
        q.path = deep; /* ~1000 segments: refused, not truncated */
        CHECK_EQ(hsm_sigv4_sign(&q, &p, &r), HSM_SIGV4_EMALFORMED);
        q.path = "/";
    }
    q.header_count = 2; /* X-Amz-Date given by the caller */
    CHECK_EQ(hsm_sigv4_sign(&q, &p, &r), HSM_SIGV4_EINVAL);
    h[1] = (hsm_sigv4_header){"X-Evil", "a\r\nInjected: yes"};
    CHECK_EQ(hsm_sigv4_sign(&q, &p, &r), HSM_SIGV4_EMALFORMED);
    h[1] = (hsm_sigv4_header){"Bad Name", "v"};
    CHECK_EQ(hsm_sigv4_sign(&q, &p, &r), HSM_SIGV4_EMALFORMED);
    q.headers = h + 1; /* no Host */
    q.header_count = 1;
    CHECK_EQ(hsm_sigv4_sign(&q, &p, &r), HSM_SIGV4_EINVAL);
    q.headers = h;
    p.region = "us east";
    CHECK_EQ(hsm_sigv4_sign(&q, &p, &r), HSM_SIGV4_EINVAL);
    p.region = "us-east-1";
    p.secret_access_key = "";
    CHECK_EQ(hsm_sigv4_sign(&q, &p, &r), HSM_SIGV4_EINVAL);
    CHECK(strcmp(hsm_sigv4_strerror(HSM_SIGV4_ESKEW),
                 "request date outside the allowed clock skew") == 0);
    CHECK(hsm_sigv4_strerror((hsm_sigv4_err)999) != NULL);
}

static void
test_sigv4_amz_date_parse_strict_rejects_bad(void)
{
    time_t t;
    char d[17];

    CHECK_EQ(hsm_sigv4_parse_amz_date("20150830T123600Z", &t), 0);
    CHECK_EQ((long long)t, 1440938160LL);
    CHECK_EQ(hsm_sigv4_amz_date(t, d), 0);
    CHECK(strcmp(d, "20150830T123600Z") == 0);
    CHECK_EQ(hsm_sigv4_parse_amz_date("20150830T123600", &t), -1);
    CHECK_EQ(hsm_sigv4_parse_amz_date("20151330T123600Z", &t), -1);
    CHECK_EQ(hsm_sigv4_parse_amz_date("2015083OT123600Z", &t), -1);
    CHECK_EQ(hsm_sigv4_parse_amz_date("20150830 123600Z", &t), -1);
    CHECK_EQ(hsm_sigv4_parse_amz_date("", &t), -1);
}

static const kt_case cases[] = {
    KT_CASE(test_sigv4_suite_all_cases_match),
    KT_CASE(test_sigv4_suite_sts_to_signature_matches),
    KT_CASE(test_sigv4_verify_suite_sreq_accepted_and_tampered_rejected),
    KT_CASE(test_sigv4_roundtrip_with_token_and_content_sha_ok),
    KT_CASE(test_sigv4_verify_missing_headers_emissing),
    KT_CASE(test_sigv4_verify_malformed_authorization_emalformed),
    KT_CASE(test_sigv4_verify_unknown_key_eunknown_key),
    KT_CASE(test_sigv4_verify_wrong_secret_esignature),
    KT_CASE(test_sigv4_verify_clock_skew_eskew),
    KT_CASE(test_sigv4_verify_scope_mismatch_escope),
    KT_CASE(test_sigv4_sign_bad_input_rejected),
    KT_CASE(test_sigv4_amz_date_parse_strict_rejects_bad),
};

int
main(int argc, char **argv)
{
    return kt_main(argc, argv, cases, KT_COUNT(cases));
}
