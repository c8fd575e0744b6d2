#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kmsd's AWS KMS-compatible endpoint (docs/awskms.md), end to end:
#  1. kmsd with --aws-listen; an identity and its access key from
#     `kms aws-key create`;
#  2. the AWS SDK for JavaScript scenario (node/scenario.js);
#  3. the password hierarchy: libhsm's `aws` password provider (`hsm
#     password --provider aws`) pointed at kmsd decrypts a ZapDB password
#     that kmsd's Encrypt produced, and `zapdb` opens that store with it.
# Usage: test_awskms.sh KMSD KMS HSM ZAPDB NODE_MODULES
set -euo pipefail

KMSD=$1
KMS=$2
HSM=$3
ZAPDB=$4
export NODE_PATH=$5
here=$(cd "$(dirname "$0")" && pwd)
pass=0
fail=0
tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
umask 077

check() {
  local name=$1
  shift
  if "$@" >"$tmp/check.out" 2>&1; then
    pass=$((pass + 1)); echo "ok   $name"
  else
    fail=$((fail + 1)); echo "FAIL $name"; sed 's/^/    /' "$tmp/check.out" | tail -5
  fi
}
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }

printf 'correct horse battery staple\n' >"$tmp/pw"
"$KMSD" --data "$tmp/data" --listen 127.0.0.1:0 --port-file "$tmp/port" \
  --aws-listen 127.0.0.1:0 --aws-port-file "$tmp/awsport" \
  --root-token-file "$tmp/root" --password-provider file \
  --password-config "path=$tmp/pw" --kdf-min 2>>"$tmp/kmsd.log" &
pid=$!
for _ in $(seq 200); do [ -s "$tmp/awsport" ] && break; sleep 0.05; done
export KMS_ADDR="http://127.0.0.1:$(cat "$tmp/port")" KMS_TOKEN=$(cat "$tmp/root") KMS_ORG=acme
export AWS_ENDPOINT_URL_KMS="http://127.0.0.1:$(cat "$tmp/awsport")"
"$KMS" org create acme >/dev/null
printf '%s' '{"rules":[{"path":"keys/**","capabilities":["create","read","encrypt","decrypt","sign","verify","rotate","admin"]},{"path":"keys","capabilities":["list"]},{"path":"random","capabilities":["read"]}]}' >"$tmp/pol"
"$KMS" policy write kms-user --file "$tmp/pol" >/dev/null
printf '%s' '{"rules":[{"path":"keys/**","capabilities":["read"]}]}' >"$tmp/pol2"
"$KMS" policy write kms-reader --file "$tmp/pol2" >/dev/null
cid=$("$KMS" identity create --name app --policy kms-user --json | jget "['client_id']")
cid2=$("$KMS" identity create --name reader --policy kms-reader --json | jget "['client_id']")

test_awskey_create_prints_sourceable_lines() {
  "$KMS" aws-key create --client-id "$cid" >"$tmp/akenv" || return 1
  grep -Eq '^AWS_ACCESS_KEY_ID=AKIA[A-Z2-7]{16}$' "$tmp/akenv" || return 1
  grep -Eq '^AWS_SECRET_ACCESS_KEY=.{40}$' "$tmp/akenv" || return 1
  # the secret is not in the audit log, nor in kmsd's log
  s=$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' "$tmp/akenv")
  ! grep -qF "$s" "$tmp/data/audit.log" "$tmp/kmsd.log" || return 1
  "$KMS" aws-key create --client-id "$cid2" >"$tmp/akenv2" || return 1
  ! "$KMS" aws-key create --client-id cid_nosuch 2>/dev/null
}
check test_awskey_create_prints_sourceable_lines test_awskey_create_prints_sourceable_lines
set -a; . "$tmp/akenv"; set +a
export LIMITED_AKID=$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' "$tmp/akenv2")
export LIMITED_SECRET=$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' "$tmp/akenv2")

# ---- a ZapDB store whose password kmsd will hold ----------------------------
head -c 24 /dev/urandom | base64 -w0 >"$tmp/zpw"
"$ZAPDB" init "$tmp/zdb" --password-file "$tmp/zpw" --kdf-ops 1 --kdf-mem 8388608 >/dev/null
printf 'the payload' | "$ZAPDB" put "$tmp/zdb" app greeting --password-file "$tmp/zpw" >/dev/null

# The scenario's own tests count as tests of this run.
PW_FILE="$tmp/zpw" CT_FILE="$tmp/zct" node "$here/node/scenario.js" \
  >"$tmp/node.out" 2>&1 && node_rc=0 || node_rc=$?
grep -E '^(ok|FAIL)' "$tmp/node.out" || true
pass=$((pass + $(grep -c '^ok' "$tmp/node.out" || true)))
fail=$((fail + $(grep -c '^FAIL' "$tmp/node.out" || true)))
if [ "$node_rc" -ne 0 ] && ! grep -q '^FAIL' "$tmp/node.out"; then
  fail=$((fail + 1)); echo "FAIL test_aws_sdk_scenario_runs"; tail -5 "$tmp/node.out"
fi

test_password_hierarchy_hsm_aws_provider_opens_zapdb() {
  MPC_HSM_KEY_ID=alias/zapdb ZAPDB_ENCRYPTED_PASSWORD=$(cat "$tmp/zct") \
    "$HSM" password --provider aws | cat >"$tmp/pw-from-kms" || return 1
  [ "$(stat -c %a "$tmp/pw-from-kms")" = 600 ] || return 1
  out=$("$ZAPDB" get "$tmp/zdb" app greeting --password-file "$tmp/pw-from-kms") || return 1
  [ "$out" = "the payload" ]
}
check test_password_hierarchy_hsm_aws_provider_opens_zapdb test_password_hierarchy_hsm_aws_provider_opens_zapdb

test_password_hierarchy_wrong_inputs_rejected() {
  # a tampered ciphertext, a wrong key id, a wrong secret: no password
  bad=$(base64 -d "$tmp/zct" | python3 -c 'import sys;b=bytearray(sys.stdin.buffer.read());b[-3]^=1;sys.stdout.buffer.write(b)' | base64 -w0)
  ! MPC_HSM_KEY_ID=alias/zapdb ZAPDB_ENCRYPTED_PASSWORD=$bad "$HSM" password --provider aws 2>/dev/null | cat >/dev/null || return 1
  [ -z "$(MPC_HSM_KEY_ID=alias/zapdb ZAPDB_ENCRYPTED_PASSWORD=$bad "$HSM" password --provider aws 2>/dev/null | cat)" ] || return 1
  [ -z "$(MPC_HSM_KEY_ID=alias/app-none ZAPDB_ENCRYPTED_PASSWORD=$(cat "$tmp/zct") "$HSM" password --provider aws 2>/dev/null | cat)" ] || return 1
  [ -z "$(AWS_SECRET_ACCESS_KEY=wrongwrongwrongwrongwrongwrongwrongwrong MPC_HSM_KEY_ID=alias/zapdb ZAPDB_ENCRYPTED_PASSWORD=$(cat "$tmp/zct") "$HSM" password --provider aws 2>/dev/null | cat)" ]
}
check test_password_hierarchy_wrong_inputs_rejected test_password_hierarchy_wrong_inputs_rejected

test_awskms_audit_records_aws_ops() {
  grep -q '"route":"aws.Encrypt"' "$tmp/data/audit.log" || return 1
  grep -q '"aws_error":"InvalidCiphertextException"' "$tmp/data/audit.log" || return 1
  grep -q '"route":"aws.Decrypt".*"identity":"identity:' "$tmp/data/audit.log"
}
check test_awskms_audit_records_aws_ops test_awskms_audit_records_aws_ops

test_awskms_identity_deleted_key_revoked() {
  "$KMS" identity rm "$cid2" >/dev/null 2>&1 || "$KMS" identity delete "$cid2" >/dev/null || return 1
  out=$(AWS_ACCESS_KEY_ID=$LIMITED_AKID AWS_SECRET_ACCESS_KEY=$LIMITED_SECRET node -e '
    const kms=require("@aws-sdk/client-kms");
    new kms.KMSClient({region:"us-east-1",endpoint:process.env.AWS_ENDPOINT_URL_KMS,maxAttempts:1})
      .send(new kms.ListKeysCommand({})).then(()=>console.log("ok"),e=>console.log(e.name));')
  [ "$out" = UnrecognizedClientException ]
}
check test_awskms_identity_deleted_key_revoked test_awskms_identity_deleted_key_revoked

# kmsd stops cleanly (under ASan: no leak, no error report)
test_kmsd_clean_exit_ok() {
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  pid=""
  [ "$rc" -eq 0 ] || { tail -30 "$tmp/kmsd.log"; return 1; }
  ! grep -q "ERROR: AddressSanitizer\|runtime error:" "$tmp/kmsd.log"
}
check test_kmsd_clean_exit_ok test_kmsd_clean_exit_ok

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
