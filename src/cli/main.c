/* SPDX-License-Identifier: Apache-2.0 */
/* kms: option parsing and the command table. */
#include "cli.h"

#include "kc.h"
#include "kmsd_int.h"

#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*fn)(kms_cli *c);
    const char *help;
} command;

static const command commands[] = {
    {"login", cmd_login,
     "login --client-id ID [--secret-file F]   (secret on stdin otherwise)"},
    {"status", cmd_status, "status"},
    {"secret", cmd_secret,
     "secret get|set|ls|history|rm|undelete|destroy PATH --env E [--org O]"},
    {"token", cmd_token,
     "token create|revoke|lookup [ACCESSOR] [--policy P ...] [--ttl D] "
     "[--self]"},
    {"policy", cmd_policy, "policy write|read|ls|rm [NAME] [--file F]"},
    {"org", cmd_org, "org create NAME | org ls"},
    {"identity", cmd_identity,
     "identity create --name N [--policy P ...] | ls | rm CLIENT_ID | admin "
     "--name N"},
    {"audit", cmd_audit, "audit verify FILE"},
    {"key", cmd_key,
     "key create|import|ls|describe|enable|disable|rotate|delete|"
     "cancel-delete|"
     "encrypt|decrypt|sign|verify|pubkey|random|datakey NAME [--type T] "
     "[--context K=V] [--file F] [--signature-file F] [--digest] "
     "[--days N] [--exportable] [--rotation DUR]"},
    {"aws-key", cmd_aws_key, "aws-key create --client-id ID [--org O]"},
};

static void
usage(void)
{
    fputs("usage: kms [--addr URL] [--json] [--cacert FILE] COMMAND ...\n",
          stderr);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(stderr, "  kms %s\n", commands[i].help);
    fputs("environment: KMS_ADDR, KMS_TOKEN, KMS_TOKEN_FILE, KMS_ORG\n"
          "exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 denied, "
          "5 conflict, 6 audit tampered, 7 unavailable, 8 rate limited\n",
          stderr);
}

static int
parse(int argc, char **argv, kms_cli *c)
{
    enum {
        O_ADDR = 256,
        O_CACERT,
        O_JSON,
        O_ORG,
        O_ENV,
        O_FILE,
        O_TTL,
        O_CID,
        O_SFILE,
        O_NAME,
        O_VERSION,
        O_VERSIONS,
        O_CAS,
        O_POLICY,
        O_REC,
        O_RAW,
        O_SELF,
        O_HELP,
        O_TYPE,
        O_BACKEND,
        O_SIGFILE,
        O_DAYS,
        O_ROTATION,
        O_CONTEXT,
        O_DIGEST,
        O_EXPORTABLE,
        O_IMMEDIATE,
        O_NOPT,
    };
    static const struct option lo[] = {
        {"addr", required_argument, 0, O_ADDR},
        {"cacert", required_argument, 0, O_CACERT},
        {"json", no_argument, 0, O_JSON},
        {"org", required_argument, 0, O_ORG},
        {"env", required_argument, 0, O_ENV},
        {"file", required_argument, 0, O_FILE},
        {"ttl", required_argument, 0, O_TTL},
        {"client-id", required_argument, 0, O_CID},
        {"secret-file", required_argument, 0, O_SFILE},
        {"name", required_argument, 0, O_NAME},
        {"version", required_argument, 0, O_VERSION},
        {"versions", required_argument, 0, O_VERSIONS},
        {"cas", required_argument, 0, O_CAS},
        {"policy", required_argument, 0, O_POLICY},
        {"recursive", no_argument, 0, O_REC},
        {"raw", no_argument, 0, O_RAW},
        {"self", no_argument, 0, O_SELF},
        {"help", no_argument, 0, O_HELP},
        {"type", required_argument, 0, O_TYPE},
        {"backend", required_argument, 0, O_BACKEND},
        {"signature-file", required_argument, 0, O_SIGFILE},
        {"days", required_argument, 0, O_DAYS},
        {"rotation", required_argument, 0, O_ROTATION},
        {"context", required_argument, 0, O_CONTEXT},
        {"digest", no_argument, 0, O_DIGEST},
        {"exportable", no_argument, 0, O_EXPORTABLE},
        {"immediate", no_argument, 0, O_IMMEDIATE},
        {"no-plaintext", no_argument, 0, O_NOPT},
        {0, 0, 0, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "+rj", lo, NULL)) != -1 ||
           optind < argc) {
        if (ch == -1) {
            /* a positional: keep it, go on parsing options after it */
            if (c->npos == CLI_MAX_POS)
                return -1;
            c->pos[c->npos++] = argv[optind++];
            continue;
        }
        switch (ch) {
        case O_ADDR:
            c->addr = optarg;
            break;
        case O_CACERT:
            c->cacert = optarg;
            break;
        case 'j':
        case O_JSON:
            c->json = true;
            break;
        case O_ORG:
            c->org = optarg;
            break;
        case O_ENV:
            c->env = optarg;
            break;
        case O_FILE:
            c->file = optarg;
            break;
        case O_TTL:
            c->ttl = optarg;
            break;
        case O_CID:
            c->client_id = optarg;
            break;
        case O_SFILE:
            c->secret_file = optarg;
            break;
        case O_NAME:
            c->name = optarg;
            break;
        case O_VERSION:
            c->version = optarg;
            break;
        case O_VERSIONS:
            c->versions = optarg;
            break;
        case O_CAS:
            c->cas = optarg;
            break;
        case O_POLICY:
            if (c->npolicies == CLI_MAX_POLICIES)
                return -1;
            c->policies[c->npolicies++] = optarg;
            break;
        case 'r':
        case O_REC:
            c->recursive = true;
            break;
        case O_RAW:
            c->raw = true;
            break;
        case O_SELF:
            c->self = true;
            break;
        case O_TYPE:
            c->type = optarg;
            break;
        case O_BACKEND:
            c->backend = optarg;
            break;
        case O_SIGFILE:
            c->sig_file = optarg;
            break;
        case O_DAYS:
            c->days = optarg;
            break;
        case O_ROTATION:
            c->rotation = optarg;
            break;
        case O_CONTEXT:
            if (c->ncontexts == CLI_MAX_POLICIES || !strchr(optarg, '='))
                return -1;
            c->contexts[c->ncontexts++] = optarg;
            break;
        case O_DIGEST:
            c->digest = true;
            break;
        case O_EXPORTABLE:
            c->exportable = true;
            break;
        case O_IMMEDIATE:
            c->immediate = true;
            break;
        case O_NOPT:
            c->no_plaintext = true;
            break;
        case O_HELP:
        default:
            return -1;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    kms_cli c;
    int rc = KMS_EXIT_USAGE;

    memset(&c, 0, sizeof c);
    kms_json_init(); /* JSON memory (secret values) is wiped when freed */
    if (kc_harden_process() != 0 || kc_init() != 0)
        return KMS_EXIT_ERROR;
    if (parse(argc, argv, &c) != 0 || c.npos == 0) {
        usage();
        return KMS_EXIT_USAGE;
    }
    if (!c.addr)
        c.addr = getenv("KMS_ADDR");
    if (!c.addr)
        c.addr = "http://127.0.0.1:8200";
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return KMS_EXIT_ERROR;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(c.pos[0], commands[i].name) == 0) {
            rc = commands[i].fn(&c);
            if (rc == KMS_EXIT_USAGE)
                fprintf(stderr, "usage: kms %s\n", commands[i].help);
            curl_global_cleanup();
            return rc;
        }
    }
    usage();
    curl_global_cleanup();
    return rc;
}
