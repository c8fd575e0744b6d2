#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs scripts/run.sh (what `make run` runs) the way a person would:
# the zapdb demo twice (it must be idempotent), then kmsd mode, driven with
# the CLI steps the script prints, and stopped with SIGINT.
set -euo pipefail
src=$1 build=$2
bin=$build/bin
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0
check() { # check NAME CMD...
  if "${@:2}"; then pass=$((pass + 1)); else echo "FAIL $1" >&2; fail=$((fail + 1)); fi
}

# zapdb mode, twice.
check zapdb_demo_first env RUN_MODE=zapdb bash "$src/scripts/run.sh" "$build" "$tmp/d1" >"$tmp/z1.out" 2>&1
check zapdb_demo_again env RUN_MODE=zapdb bash "$src/scripts/run.sh" "$build" "$tmp/d1" >"$tmp/z2.out" 2>&1
check zapdb_demo_password_0600 test "$(stat -c %a "$tmp/d1/demo-password")" = 600
check zapdb_demo_verified grep -q 'verify' "$tmp/z2.out"
pw=$(cat "$tmp/d1/demo-password")
check zapdb_demo_password_not_printed bash -c "! grep -qF '$pw' '$tmp/z1.out' '$tmp/z2.out'"

# kmsd mode: a free loopback port, then the printed steps.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
awsport=$(free_port)
export KMSD_AWS_LISTEN=127.0.0.1:$awsport
KMSD_LISTEN=127.0.0.1:$port bash "$src/scripts/run.sh" "$build" "$tmp/d2" >"$tmp/k.out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/v1/kms/health" >/dev/null 2>&1 && break
  sleep 0.1
done
export KMS_ADDR=http://127.0.0.1:$port KMS_TOKEN_FILE=$tmp/d2/root-token
check kmsd_health curl -sf "http://127.0.0.1:$port/v1/kms/health" -o /dev/null
check kmsd_root_token_0600 test "$(stat -c %a "$tmp/d2/root-token")" = 600
check kmsd_org_create "$bin/kms" org create acme
check kmsd_secret_set bash -c "printf 's3cret-demo' | '$bin/kms' secret set app/db/password --env prod --org acme >/dev/null"
check kmsd_secret_get bash -c "'$bin/kms' secret get app/db/password --env prod --org acme --json | grep -q s3cret-demo"
# The AWS KMS-compatible listener answers, and refuses an unsigned request.
check kmsd_aws_listener_refuses_unsigned bash -c "curl -s -X POST -H 'X-Amz-Target: TrentService.ListKeys' -H 'Content-Type: application/x-amz-json-1.1' -d '{}' http://127.0.0.1:$awsport/ | grep -q Exception"
check kmsd_key_encrypt_decrypt bash -c "'$bin/kms' key create demo --type aes256-gcm --org acme >/dev/null && printf 'pay' | '$bin/kms' key encrypt demo --org acme | '$bin/kms' key decrypt demo --org acme | grep -qx pay"
check kmsd_store_encrypted bash -c "! grep -rqF s3cret-demo '$tmp/d2/kmsd'"
kill -INT "$pid"
wait "$pid" || true
pid=
check kmsd_clean_stop grep -q 'kmsd stopped' "$tmp/k.out"
# Restarted on the same store: the secret is still there.
KMSD_LISTEN=127.0.0.1:$port bash "$src/scripts/run.sh" "$build" "$tmp/d2" >"$tmp/k2.out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/v1/kms/health" >/dev/null 2>&1 && break
  sleep 0.1
done
check kmsd_restart_keeps_secret bash -c "'$bin/kms' secret get app/db/password --env prod --org acme --json | grep -q s3cret-demo"
kill -TERM "$pid"; wait "$pid" || true; pid=

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
