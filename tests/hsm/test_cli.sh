#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The `hsm` command: every subcommand and exit code. Usage: test_cli.sh HSM
set -u
HSM=${1:?usage: test_cli.sh path/to/hsm}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0

# check NAME EXPECTED_RC CMD...   (stdin from /dev/null unless redirected)
check() {
    local name=$1 want=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" -eq "$want" ]; then
        pass=$((pass + 1)); echo "ok   $name"
    else
        fail=$((fail + 1)); echo "FAIL $name: exit $rc, wanted $want"; sed 's/^/     /' "$T/err"
    fi
}
# expect NAME CONDITION-COMMAND...
expect() {
    local name=$1
    shift
    if "$@" >/dev/null 2>&1; then pass=$((pass + 1)); echo "ok   $name"
    else fail=$((fail + 1)); echo "FAIL $name"; fi
}

printf 'store-pw\n' >"$T/pw"; chmod 600 "$T/pw"
printf 'wrong-pw\n' >"$T/badpw"; chmod 600 "$T/badpw"
S=(--store "$T/st" --password-file "$T/pw" --store-kdf-opslimit 1 --store-kdf-memlimit 8192)
printf 'pay 10 to bob' >"$T/msg"
export MPC_PASSWORD=vault-password

# usage and help
check test_cli_no_args_usage 2 "$HSM"
check test_cli_help_exits_0 0 "$HSM" --help
check test_cli_sign_help_exits_0 0 "$HSM" sign --help
check test_cli_vault_help_exits_0 0 "$HSM" vault store --help
check test_cli_unknown_command_usage 2 "$HSM" frobnicate
check test_cli_unknown_option_usage 2 "$HSM" sign --bogus
check test_cli_misplaced_option_usage 2 "$HSM" password --signature x
expect test_cli_error_is_one_line_prefixed grep -qx "hsm: password: option '--signature' does not apply here (see hsm password --help)" "$T/err"
expect test_cli_error_single_line test "$(wc -l <"$T/err")" -eq 1
check test_cli_unknown_provider_fails 1 "$HSM" sign --provider nosuch --key-id k --in "$T/msg"
expect test_cli_unknown_provider_lists_names grep -q "valid names: local" "$T/err"

# sign / verify / pubkey with a persistent store
check test_cli_sign_ok 0 "$HSM" sign "${S[@]}" --key-id k1 --in "$T/msg" --out "$T/sig"
check test_cli_verify_valid_0 0 "$HSM" verify "${S[@]}" --key-id k1 --in "$T/msg" --signature "$T/sig"
check test_cli_verify_stdin_valid_0 0 sh -c "\"$HSM\" verify --store '$T/st' --password-file '$T/pw' --key-id k1 --signature '$T/sig' < '$T/msg'"
printf 'pay 99 to bob' >"$T/msg2"
check test_cli_verify_wrong_message_6 6 "$HSM" verify "${S[@]}" --key-id k1 --in "$T/msg2" --signature "$T/sig"
check test_cli_sign_other_key_ok 0 "$HSM" sign "${S[@]}" --key-id k2 --in "$T/msg" --out "$T/sig2"
check test_cli_verify_wrong_key_6 6 "$HSM" verify "${S[@]}" --key-id k2 --in "$T/msg" --signature "$T/sig"
check test_cli_verify_unknown_key_3 3 "$HSM" verify "${S[@]}" --key-id nokey --in "$T/msg" --signature "$T/sig"
check test_cli_verify_missing_sig_option_2 2 "$HSM" verify "${S[@]}" --key-id k1 --in "$T/msg"
check test_cli_verify_missing_sig_file_3 3 "$HSM" verify "${S[@]}" --key-id k1 --in "$T/msg" --signature "$T/nofile"
check test_cli_pubkey_pem_0 0 "$HSM" pubkey "${S[@]}" --key-id k1 --out "$T/pub.pem"
expect test_cli_pubkey_is_pem grep -q "BEGIN PUBLIC KEY" "$T/pub.pem"
expect test_cli_signature_verifies_with_openssl openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig" "$T/msg"
check test_cli_pubkey_unknown_key_3 3 "$HSM" pubkey "${S[@]}" --key-id nokey
check test_cli_store_wrong_password_4 4 "$HSM" pubkey --store "$T/st" --password-file "$T/badpw" --key-id k1
chmod 644 "$T/badpw"
check test_cli_store_password_file_mode_refused 1 "$HSM" pubkey --store "$T/st" --password-file "$T/badpw" --key-id k1
expect test_cli_mode_error_names_mode grep -q "mode 0644" "$T/err"

# password
check test_cli_password_env_to_pipe_0 0 "$HSM" password --provider env
expect test_cli_password_printed_exactly test "$(cat "$T/out")" = vault-password
printf 'file-secret\n' >"$T/pwfile"; chmod 600 "$T/pwfile"
check test_cli_password_file_0 0 "$HSM" password --provider " File " --config path="$T/pwfile"
expect test_cli_password_file_content test "$(cat "$T/out")" = file-secret
check test_cli_password_missing_file_3 3 "$HSM" password --provider file --key-id "$T/none"
if command -v script >/dev/null 2>&1; then
    script -qec "\"$HSM\" password --provider env" /dev/null >"$T/tty" 2>&1
    rc=$?
    expect test_cli_password_refuses_terminal test "$rc" -eq 1
    expect test_cli_password_terminal_not_leaked bash -c "! grep -q vault-password '$T/tty'"
    script -qec "\"$HSM\" vault store tty1 --store '$T/st' --password-file '$T/pw' --scheme frost" /dev/null >"$T/tty" 2>&1 </dev/null
    rc=$?
    expect test_cli_vault_store_refuses_terminal_stdin test "$rc" -eq 1
    expect test_cli_vault_store_terminal_message grep -q "refusing to read a key share from a terminal" "$T/tty"
fi

# vault
printf 'share-one-bytes' >"$T/share1"
check test_cli_vault_store_0 0 "$HSM" vault store w1 "${S[@]}" --scheme frost --party-index 1 --threshold 2 --total 3 --group-key 0aff --in "$T/share1"
check test_cli_vault_store_exists_1 1 "$HSM" vault store w1 "${S[@]}" --scheme frost --in "$T/share1"
check test_cli_vault_store_stdin_0 0 sh -c "printf two | \"$HSM\" vault store w2 --store '$T/st' --password-file '$T/pw' --scheme cmp --threshold 1 --total 1"
check test_cli_vault_store_bad_meta_1 1 "$HSM" vault store w3 "${S[@]}" --scheme frost --threshold 3 --total 2 --in "$T/share1"
check test_cli_vault_store_bad_scheme_2 2 "$HSM" vault store w3 "${S[@]}" --scheme nope --in "$T/share1"
check test_cli_vault_store_needs_store_2 2 "$HSM" vault store w3 --scheme frost --in "$T/share1"
check test_cli_vault_load_0 0 "$HSM" vault load w1 "${S[@]}"
expect test_cli_vault_load_content cmp -s "$T/out" "$T/share1"
check test_cli_vault_load_missing_3 3 "$HSM" vault load nope "${S[@]}"
check test_cli_vault_list_0 0 "$HSM" vault list "${S[@]}"
expect test_cli_vault_list_lines test "$(cat "$T/out")" = "$(printf 'w1\tfrost\t1\t2\t3\nw2\tcmp\t0\t1\t1')"
MPC_PASSWORD=not-the-vault-password check test_cli_vault_load_wrong_password_5 5 "$HSM" vault load w1 "${S[@]}"
printf 'backup-pw\n' >"$T/bpw"; chmod 600 "$T/bpw"
printf 'nope\n' >"$T/bpw2"; chmod 600 "$T/bpw2"
check test_cli_vault_backup_0 0 "$HSM" vault backup "$T/backup.json" "${S[@]}" --backup-password-file "$T/bpw"
expect test_cli_vault_backup_mode_0600 test "$(stat -c %a "$T/backup.json")" = 600
expect test_cli_vault_backup_no_plaintext bash -c "! grep -q share-one '$T/backup.json'"
check test_cli_vault_delete_0 0 "$HSM" vault delete w1 "${S[@]}"
check test_cli_vault_delete_missing_3 3 "$HSM" vault delete w1 "${S[@]}"
check test_cli_vault_restore_wrong_password_4 4 "$HSM" vault restore "$T/backup.json" "${S[@]}" --backup-password-file "$T/bpw2"
check test_cli_vault_restore_exists_1 1 "$HSM" vault restore "$T/backup.json" "${S[@]}" --backup-password-file "$T/bpw"
check test_cli_vault_restore_overwrite_0 0 "$HSM" vault restore "$T/backup.json" "${S[@]}" --backup-password-file "$T/bpw" --overwrite
check test_cli_vault_load_restored_0 0 "$HSM" vault load w1 "${S[@]}"
expect test_cli_vault_restored_content cmp -s "$T/out" "$T/share1"
check test_cli_vault_load_has_no_out_option_2 2 "$HSM" vault load w1 "${S[@]}" --out "$T/plain"
expect test_cli_vault_load_wrote_no_file test ! -e "$T/plain"
check test_cli_password_has_no_out_option_2 2 "$HSM" password --provider env --out "$T/plainpw"
sed 's/"data":"A/"data":"B/;t;s/"data":"./"data":"A/' "$T/backup.json" >"$T/bad.json"
expect test_cli_corrupt_copy_differs bash -c "! cmp -s '$T/bad.json' '$T/backup.json'"
check test_cli_vault_restore_corrupt_fails 5 "$HSM" vault restore "$T/bad.json" "${S[@]}" --backup-password-file "$T/bpw" --overwrite
head -c 40 "$T/backup.json" >"$T/trunc.json"
check test_cli_vault_restore_truncated_1 1 "$HSM" vault restore "$T/trunc.json" "${S[@]}" --backup-password-file "$T/bpw" --overwrite

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
