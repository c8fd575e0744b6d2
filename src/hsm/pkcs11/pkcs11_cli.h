/* SPDX-License-Identifier: Apache-2.0 */
/* `hsm pkcs11 ...`: token key management for the hsm tool, which includes
 * this header with __has_include (docs/hsm.md, "The hsm tool hook"). */
#ifndef HSM_PKCS11_CLI_H
#define HSM_PKCS11_CLI_H

#define HSM_HAVE_PKCS11_CLI 1

/* argv[0] == "pkcs11". Subcommands:
 *   keygen --type T --label L [--id HEX] [--usage sign|decrypt]
 *   list
 *   wrap --key REF            (secret read from stdin, base64 blob out)
 * each with --config key=value (repeatable): module, token_label or
 * token_serial, pin_provider, pin_key_id, pin.<k>. Results go to stdout,
 * one-line diagnostics to stderr ("hsm: pkcs11 <cmd>: <what>"). Returns
 * the hsm tool's exit codes: 0 ok, 1 error, 2 usage, 3 not found (token,
 * key), 4 wrong PIN, 5 corrupt/tampered. */
int hsm_pkcs11_cli(int argc, char **argv);

#endif
