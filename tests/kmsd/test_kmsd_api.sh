#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Integration test: starts kmsd on a random loopback port with a temporary
# store and drives every route with curl and the kms CLI. Usage:
#   test_kmsd_api.sh KMSD KMS
set -euo pipefail

KMSD=$1
KMS=$2
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

check() { # check NAME CMD...: the command must succeed
  local name=$1
  shift
  if "$@" >/dev/null 2>&1; then
    pass=$((pass + 1))
    echo "ok   $name"
  else
    fail=$((fail + 1))
    echo "FAIL $name"
  fi
}

eq() { [ "$1" = "$2" ] || { echo "    expected '$2', got '$1'" >&2; return 1; }; }

# api METHOD PATH [BODY] [TOKEN]: sets $code and $body (file $tmp/body)
api() {
  local m=$1 p=$2 data=${3:-} tok=${4:-${ROOT:-}}
  local args=(-s --path-as-is -o "$tmp/body" -w '%{http_code}' -X "$m" -D "$tmp/headers")
  [ -n "$tok" ] && args+=(-H "Authorization: Bearer $tok")
  [ -n "$data" ] && args+=(--data-binary "$data")
  code=$(curl "${args[@]}" "$BASE$p")
  body=$(cat "$tmp/body")
}

jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }

printf 'correct horse battery staple\n' > "$tmp/pw"
chmod 600 "$tmp/pw"
COMMON=(--password-provider file --password-config "path=$tmp/pw" --kdf-min
        --max-versions 3 --login-max-failures 3 --login-window 3)

start() { # start [extra args]: kmsd on a random port with the test store
  rm -f "$tmp/port"
  "$KMSD" --data "$tmp/data" --listen 127.0.0.1:0 --port-file "$tmp/port" \
    --root-token-file "$tmp/root" "${COMMON[@]}" "$@" 2>>"$tmp/kmsd.log" &
  pid=$!
  for _ in $(seq 200); do
    [ -s "$tmp/port" ] && break
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  [ -s "$tmp/port" ] || return 1
  BASE="http://127.0.0.1:$(cat "$tmp/port")"
  export KMS_ADDR=$BASE
}

stop() {
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  pid=""
  return $rc
}

# ---- start-up refusals ------------------------------------------------------
refuses() { # refuses PATTERN ARGS...: kmsd must exit 2 naming the reason
  local pat=$1
  shift
  local rc=0
  "$KMSD" "$@" >"$tmp/refuse.log" 2>&1 || rc=$?
  [ "$rc" = 2 ] && grep -q "$pat" "$tmp/refuse.log"
}
check test_production_env_provider_refused \
  refuses "env password provider" --production --data "$tmp/x" --password-provider env
check test_production_env_provider_padded_name_refused \
  refuses "env password provider" --production --data "$tmp/x" --password-provider " ENV "
check test_production_http_off_loopback_refused \
  refuses "plain HTTP off loopback" --production --data "$tmp/x" --password-provider file \
  --password-config "path=$tmp/pw" --listen 0.0.0.0:0 --insecure-http
check test_production_dev_refused refuses "exclude" --production --dev --password-provider file
check test_production_kdf_min_refused refuses "kdf-min" --production --kdf-min \
  --data "$tmp/x" --password-provider file
check test_http_off_loopback_without_flag_refused \
  refuses "insecure-http" --dev --listen 0.0.0.0:0
check test_startup_missing_data_refused refuses "data" --password-provider file

# ---- start -------------------------------------------------------------------
check test_kmsd_starts_on_random_port start
ROOT=$(cat "$tmp/root")
check test_root_token_file_mode_0600 eq "$(stat -c %a "$tmp/root")" 600
check test_cli_status_ok "$KMS" status
api GET /v1/kms/health "" ""
check test_health_no_auth_200 eq "$code" 200

# ---- orgs --------------------------------------------------------------------
export KMS_TOKEN=$ROOT
check test_cli_org_create_acme "$KMS" org create acme
check test_cli_org_create_other "$KMS" org create other
rc=0; "$KMS" org create acme 2>/dev/null || rc=$?
check test_cli_org_create_duplicate_exit5 eq "$rc" 5
check test_cli_org_ls_lists_both eq "$("$KMS" org ls | tr '\n' ' ')" "acme other "

# ---- policies ----------------------------------------------------------------
cat > "$tmp/p-read.json" <<'P'
{"rules": [{"path": "secrets/prod/app/**", "capabilities": ["read", "list"]},
           {"path": "secrets/prod/app", "capabilities": ["list"]},
           {"path": "secrets/prod/app/admin/**", "capabilities": ["deny"]}]}
P
cat > "$tmp/p-write.json" <<'P'
{"rules": [{"path": "secrets/*/app/**", "capabilities": ["read", "create", "update", "delete", "list"]},
           {"path": "sys/tokens", "capabilities": ["create"]}]}
P
check test_cli_policy_write_read "$KMS" policy write app-read --org acme --file "$tmp/p-read.json"
check test_cli_policy_write_write "$KMS" policy write app-write --org acme --file "$tmp/p-write.json"
check test_cli_policy_ls eq "$("$KMS" policy ls --org acme | tr '\n' ' ')" "app-read app-write "
check test_cli_policy_read_returns_rules \
  eq "$("$KMS" policy read app-read --org acme --json | jget '["rules"][2]["capabilities"][0]')" deny
api PUT /v1/kms/orgs/acme/policies/bad '{"rules":[{"path":"x","capabilities":["fly"]}]}'
check test_policy_unknown_capability_400 eq "$code" 400

# ---- secrets with the root token ----------------------------------------------
export KMS_ORG=acme
printf 's3cret-v1' | "$KMS" secret set app/db/password --env prod >/dev/null
check test_cli_secret_get_raw eq "$("$KMS" secret get app/db/password --env prod --raw)" s3cret-v1
printf 's3cret-v2' > "$tmp/v2"
check test_cli_secret_set_from_file_with_cas \
  "$KMS" secret set app/db/password --env prod --file "$tmp/v2" --cas 1
rc=0; printf 'x' | "$KMS" secret set app/db/password --env prod --cas 1 2>/dev/null || rc=$?
check test_cli_secret_cas_conflict_exit5 eq "$rc" 5
printf 'a b\n\n' | "$KMS" secret set blob/exact --env prod >/dev/null
check test_cli_secret_value_bytes_exact eq "$("$KMS" secret get blob/exact --env prod --raw | od -An -tx1 | tr -d ' \n')" 6120620a0a
rc=0; printf 'a\0b' | "$KMS" secret set blob/nul --env prod 2>/dev/null || rc=$?
check test_cli_secret_nul_byte_rejected eq "$rc" 1
check test_cli_secret_get_version1 eq "$("$KMS" secret get app/db/password --env prod --version 1 --raw)" s3cret-v1
printf 'u' | "$KMS" secret set app/db/user --env prod >/dev/null
printf 'k' | "$KMS" secret set app/admin/key --env prod >/dev/null
printf 'd' | "$KMS" secret set app/db/password --env dev >/dev/null
check test_cli_secret_ls_one_level eq "$("$KMS" secret ls app --env prod | tr '\n' ' ')" "admin/ db/ "
check test_cli_secret_ls_recursive \
  eq "$("$KMS" secret ls app --env prod -r | tr '\n' ' ')" "admin/key db/password db/user "
check test_cli_secret_history_has_writer \
  eq "$("$KMS" secret history app/db/password --env prod --json | jget '["versions"][1]["created_by"][:5]')" "root:"
check test_cli_secret_rm_soft "$KMS" secret rm app/db/password --env prod
rc=0; "$KMS" secret get app/db/password --env prod 2>/dev/null || rc=$?
check test_cli_secret_get_deleted_exit3 eq "$rc" 3
check test_cli_secret_undelete "$KMS" secret undelete app/db/password --env prod --versions 2
check test_cli_secret_get_after_undelete eq "$("$KMS" secret get app/db/password --env prod --raw)" s3cret-v2
check test_cli_secret_destroy "$KMS" secret destroy app/db/password --env prod --versions 1
api GET "/v1/kms/orgs/acme/secrets/app/db/password?env=prod&version=1"
check test_secret_destroyed_version_404 eq "$code:$(echo "$body" | jget '["error"]["code"]')" 404:destroyed
for i in 3 4 5; do printf "v$i" | "$KMS" secret set app/db/password --env prod >/dev/null; done
api GET "/v1/kms/orgs/acme/secrets/app/db/password?env=prod&version=2"
check test_secret_max_versions_pruned_404 eq "$code" 404
api GET "/v1/kms/orgs/acme/secrets/app/db/password?env=prod&history=true"
check test_secret_history_keeps_three eq "$(echo "$body" | jget '["versions"].__len__()')" 3
api POST "/v1/kms/orgs/acme/secrets/app/x?env=prod" '{"value":"a"'
check test_secret_malformed_json_400 eq "$code" 400
api POST "/v1/kms/orgs/acme/secrets/app/x?env=prod" '{"value":"a","value":"b"}'
check test_secret_duplicate_keys_400 eq "$code:$(echo "$body" | jget '["error"]["code"]')" 400:invalid_json
api POST "/v1/kms/orgs/acme/secrets/app/x" '{"value":"a"}'
check test_secret_write_without_env_400 eq "$code" 400
api POST "/v1/kms/orgs/acme/secrets/app/../x?env=prod" '{"value":"a"}'
check test_secret_dotdot_400 eq "$code" 400
api POST "/v1/kms/orgs/acme/secrets/app/%2e%2e/x?env=prod" '{"value":"a"}'
check test_secret_encoded_dotdot_400 eq "$code" 400
api POST "/v1/kms/orgs/acme/secrets/app/bad%20name?env=prod" '{"value":"a"}'
check test_secret_bad_charset_400 eq "$code" 400
python3 -c 'import json; print(json.dumps({"value": "x" * (1024*1024 + 1)}))' > "$tmp/big.json"
api POST "/v1/kms/orgs/acme/secrets/app/big?env=prod" "@$tmp/big.json"
check test_secret_value_over_1mib_413 eq "$code" 413
head -c 3000000 /dev/zero | tr '\0' 'a' > "$tmp/huge"
api POST "/v1/kms/orgs/acme/secrets/app/huge?env=prod" "@$tmp/huge"
check test_body_over_2mib_413 eq "$code" 413
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-KMS-Token: $ROOT" -H "Transfer-Encoding: chunked" \
  --data-binary "@$tmp/huge" "$BASE/v1/kms/orgs/acme/secrets/app/huge?env=prod")
check test_chunked_body_over_2mib_413 eq "$code" 413
api GET /v1/kms/does/not/exist
check test_unknown_route_404 eq "$code" 404
api PATCH /v1/kms/health
check test_wrong_method_405 eq "$code" 405
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-KMS-Token: $ROOT" \
  "$BASE/v1/kms/orgs/acme/secrets/app/db/user?env=prod")
check test_x_kms_token_header_accepted eq "$code" 200

# ---- concurrent writers: batched, yet as if one after the other ---------------------
racers=()
for i in $(seq 16); do
  curl -s -o /dev/null -w '%{http_code}\n' -H "X-KMS-Token: $ROOT" -X POST \
    "$BASE/v1/kms/orgs/acme/secrets/race/one?env=prod" -d "{\"value\":\"$i\",\"cas\":0}" >> "$tmp/race.codes" &
  racers+=($!)
done
wait "${racers[@]}"
check test_concurrent_cas_exactly_one_wins eq "$(sort "$tmp/race.codes" | uniq -c | tr -s ' ' | tr '\n' ' ')" " 1 201  15 409 "
racers=()
for i in $(seq 16); do
  curl -s -o /dev/null -w '%{http_code}\n' -H "X-KMS-Token: $ROOT" -X POST \
    "$BASE/v1/kms/orgs/acme/secrets/race/n$i?env=prod" -d "{\"value\":\"v$i\"}" >> "$tmp/race2.codes" &
  racers+=($!)
done
wait "${racers[@]}"
check test_concurrent_writes_all_201 eq "$(sort -u "$tmp/race2.codes")" 201
check test_concurrent_writes_all_listed eq "$("$KMS" secret ls race --env prod | wc -l)" 17

# ---- a limited token: every denial ------------------------------------------------
READER=$("$KMS" token create --org acme --policy app-read --ttl 1h --raw)
export KMS_TOKEN=$READER
check test_reader_can_read eq "$("$KMS" secret get app/db/user --env prod --raw)" u
check test_reader_can_list "$KMS" secret ls app --env prod
check test_reader_listing_hides_denied_folder eq "$("$KMS" secret ls app --env prod | tr '\n' ' ')" "db/ "
check test_reader_recursive_listing_hides_denied \
  eq "$("$KMS" secret ls app --env prod -r | tr '\n' ' ')" "db/password db/user "
deny() { local rc=0; "$@" >/dev/null 2>&1 || rc=$?; [ "$rc" = 4 ]; }
check test_reader_write_denied deny sh -c "printf x | '$KMS' secret set app/db/user --env prod"
check test_reader_other_env_denied deny "$KMS" secret get app/db/password --env dev
check test_reader_deny_rule_overrides deny "$KMS" secret get app/admin/key --env prod
check test_reader_list_root_denied deny "$KMS" secret ls --env prod
check test_reader_delete_denied deny "$KMS" secret rm app/db/user --env prod
check test_reader_destroy_denied deny "$KMS" secret destroy app/db/user --env prod --versions 1
check test_reader_undelete_denied deny "$KMS" secret undelete app/db/user --env prod --versions 1
check test_reader_policy_ls_denied deny "$KMS" policy ls
check test_reader_policy_write_denied deny "$KMS" policy write evil --file "$tmp/p-write.json"
check test_reader_token_create_denied deny "$KMS" token create --policy app-read
check test_reader_org_create_denied deny "$KMS" org create evil
check test_reader_identity_create_denied deny "$KMS" identity create --name x
check test_reader_cross_org_denied deny "$KMS" secret get app/db/user --env prod --org other
check test_reader_lookup_self_ok "$KMS" token lookup --self
api GET "/v1/kms/orgs/acme/secrets/app/db/user?env=prod" "" "$READER"
check test_audit_denied_request_logged grep -q '"decision":"deny"' "$tmp/data/audit.log"

# a writer token may mint tokens only with policies it holds
export KMS_TOKEN=$ROOT
WRITER=$("$KMS" token create --org acme --policy app-write --ttl 1h --raw)
KMS_TOKEN=$WRITER check test_writer_cannot_grant_unheld_policy deny "$KMS" token create --policy app-read
check test_writer_can_grant_held_policy env KMS_TOKEN="$WRITER" "$KMS" token create --policy app-write

# ---- cross-org isolation ---------------------------------------------------------
"$KMS" policy write all --org other --file "$tmp/p-write.json" >/dev/null
OTHER=$("$KMS" token create --org other --policy all --raw)
KMS_TOKEN=$OTHER check test_other_org_cannot_read_acme deny "$KMS" secret get app/db/user --env prod --org acme
api GET "/v1/kms/orgs/acme/secrets?env=prod&list=true" "" "$OTHER"
check test_other_org_cannot_list_acme_403 eq "$code" 403
api GET "/v1/kms/orgs/other/secrets/app?env=prod&list=true&recursive=true" "" "$OTHER"
check test_other_org_sees_none_of_acme eq "$(echo "$body" | jget '["keys"]')" "[]"

# ---- expiry and revocation ----------------------------------------------------------
SHORT=$("$KMS" token create --policy app-read --ttl 3s --raw)
api GET /v1/kms/auth/token "" "$SHORT"
check test_short_token_valid_first eq "$code" 200
sleep 4.1
api GET /v1/kms/auth/token "" "$SHORT"
check test_short_token_expired_401 eq "$code" 401
ACC=$(KMS_TOKEN=$READER "$KMS" token lookup --self --json | jget '["accessor"]')
check test_cli_token_lookup_by_accessor "$KMS" token lookup "$ACC"
check test_cli_token_revoke_by_accessor "$KMS" token revoke "$ACC"
api GET /v1/kms/auth/token "" "$READER"
check test_revoked_token_401 eq "$code" 401
T2=$("$KMS" token create --policy app-read --raw)
check test_cli_token_revoke_self env KMS_TOKEN="$T2" "$KMS" token revoke --self
api GET /v1/kms/auth/token "" "$T2"
check test_self_revoked_token_401 eq "$code" 401
api GET /v1/kms/auth/token "" "kms_zz"
check test_garbage_token_401 eq "$code" 401

# ---- identities, login, rate limiting -------------------------------------------------
"$KMS" identity create --name ci --policy app-read --json > "$tmp/ident.json"
CID=$(jget '["client_id"]' < "$tmp/ident.json")
jget '["client_secret"]' < "$tmp/ident.json" > "$tmp/csecret"
chmod 600 "$tmp/csecret"
export KMS_TOKEN_FILE=$tmp/cfg/token
check test_cli_login_with_secret_on_stdin \
  sh -c "env -u KMS_TOKEN '$KMS' login --client-id '$CID' < '$tmp/csecret'"
check test_login_token_file_mode_0600 eq "$(stat -c %a "$tmp/cfg/token")" 600
check test_login_token_reads_secret \
  eq "$(env -u KMS_TOKEN "$KMS" secret get app/db/user --env prod --raw)" u
check test_login_token_write_denied \
  deny env -u KMS_TOKEN sh -c "printf x | '$KMS' secret set app/db/user --env prod"
check test_cli_identity_ls_shows_ci eq "$("$KMS" identity ls --json | jget '["identities"][0]["name"]')" ci
for i in 1 2 3; do
  api POST /v1/kms/auth/login "{\"client_id\":\"$CID\",\"client_secret\":\"wrong\"}" ""
done
check test_login_wrong_secret_401 eq "$code" 401
api POST /v1/kms/auth/login "{\"client_id\":\"$CID\",\"client_secret\":\"$(cat "$tmp/csecret")\"}" ""
check test_login_locked_out_429 eq "$code" 429
check test_login_429_has_retry_after grep -qi '^Retry-After: [0-9]' "$tmp/headers"
rc=0; env -u KMS_TOKEN "$KMS" login --client-id "$CID" --secret-file "$tmp/csecret" 2>/dev/null || rc=$?
check test_cli_login_rate_limited_exit8 eq "$rc" 8
sleep 3.2
check test_login_after_window_ok env -u KMS_TOKEN "$KMS" login --client-id "$CID" --secret-file "$tmp/csecret"
unset KMS_TOKEN_FILE

# ---- metrics --------------------------------------------------------------------------
curl -s "$BASE/metrics" > "$tmp/metrics"
check test_metrics_counts_routes grep -q 'kmsd_requests_total{route="secrets.read",status="200"}' "$tmp/metrics"
check test_metrics_has_histogram grep -q 'kmsd_request_duration_seconds_bucket{le="+Inf"}' "$tmp/metrics"
check test_metrics_has_store_size grep -q '^kmsd_store_bytes [1-9]' "$tmp/metrics"

# ---- audit log ----------------------------------------------------------------------------
LOG=$tmp/data/audit.log
check test_audit_no_secret_values_in_log sh -c "! grep -q 's3cret' '$LOG'"
check test_audit_no_tokens_in_log sh -c "! grep -q '$ROOT' '$LOG' && ! grep -q '$WRITER' '$LOG'"
check test_audit_values_as_hmac grep -q '"value_hmac":"hmac-sha256:' "$LOG"
check test_audit_log_mode_0600 eq "$(stat -c %a "$LOG")" 600
check test_cli_audit_verify_intact "$KMS" audit verify "$LOG"
cp "$LOG" "$tmp/edited.log"
sed -i '5s/"status":[0-9]*/"status":299/' "$tmp/edited.log"
badline() { sed -n 's/^TAMPERED: line \([0-9]*\):.*/\1/p'; }
rc=0; out=$("$KMS" audit verify "$tmp/edited.log") || rc=$?
check test_cli_audit_verify_edit_exit6 eq "$rc" 6
check test_cli_audit_verify_names_line5 eq "$(echo "$out" | badline)" 5
cp "$LOG" "$tmp/removed.log"
sed -i '7d' "$tmp/removed.log"
out=$("$KMS" audit verify "$tmp/removed.log" || true)
check test_cli_audit_verify_removal_names_line7 eq "$(echo "$out" | badline)" 7
awk 'NR==3{held=$0; next} NR==4{print; print held; next} {print}' "$LOG" > "$tmp/reordered.log"
out=$("$KMS" audit verify "$tmp/reordered.log" || true)
check test_cli_audit_verify_reorder_names_line3 eq "$(echo "$out" | badline)" 3

# ---- CLI usage and transport errors ------------------------------------------------------------
rc=0; "$KMS" secret get app/db/user 2>/dev/null || rc=$?
check test_cli_missing_env_exit2 eq "$rc" 2
rc=0; "$KMS" frobnicate 2>/dev/null || rc=$?
check test_cli_unknown_command_exit2 eq "$rc" 2
rc=0; "$KMS" --token "$ROOT" org ls 2>/dev/null || rc=$?
check test_cli_token_not_accepted_in_argv eq "$rc" 2
rc=0; KMS_ADDR=http://127.0.0.1:1 "$KMS" status 2>/dev/null || rc=$?
check test_cli_unreachable_exit7 eq "$rc" 7
rc=0; env -u KMS_TOKEN KMS_TOKEN_FILE=$tmp/none "$KMS" org ls 2>/dev/null || rc=$?
check test_cli_no_token_exit4 eq "$rc" 4

# ---- root token revocation needs an admin identity ------------------------------------------
export KMS_TOKEN=$ROOT
rc=0; "$KMS" token revoke --self 2>/dev/null || rc=$?
check test_root_revoke_without_admin_exit4 eq "$rc" 4
"$KMS" identity admin --name ops --json > "$tmp/admin.json"
ACID=$(jget '["client_id"]' < "$tmp/admin.json")
jget '["client_secret"]' < "$tmp/admin.json" > "$tmp/asecret"
check test_root_revoke_with_admin "$KMS" token revoke --self
api GET /v1/kms/orgs "" "$ROOT"
check test_revoked_root_401 eq "$code" 401
export KMS_TOKEN_FILE=$tmp/cfg/admin-token
env -u KMS_TOKEN "$KMS" login --client-id "$ACID" --secret-file "$tmp/asecret" >/dev/null
check test_admin_identity_creates_org env -u KMS_TOKEN "$KMS" org create third
unset KMS_TOKEN_FILE

# ---- restart keeps everything ------------------------------------------------------------------
check test_sigterm_clean_exit stop
check test_restart_same_store start
export KMS_TOKEN=$WRITER
check test_restart_secret_kept eq "$("$KMS" secret get app/db/user --env prod --raw)" u
check test_restart_versions_kept eq "$("$KMS" secret get app/db/password --env prod --raw)" v5
check test_restart_revoked_root_stays_revoked sh -c "! KMS_TOKEN='$ROOT' '$KMS' org ls"
check test_restart_audit_chain_continues "$KMS" audit verify "$LOG"
stop

# ---- crash: SIGKILL under writes, then a torn audit line; nothing acknowledged is lost
check test_crash_restart start
export KMS_TOKEN=$WRITER
for i in $(seq 20); do printf "c$i" | "$KMS" secret set app/crash --env prod >/dev/null; done
( while :; do curl -s -o /dev/null -H "X-KMS-Token: $WRITER" -X POST \
    "$BASE/v1/kms/orgs/acme/secrets/app/load?env=prod" -d '{"value":"x"}' || true; done ) &
loader=$!
sleep 0.5
{ kill -KILL "$pid"; wait "$pid"; } 2>/dev/null || true
pid=""
{ kill "$loader"; wait "$loader"; } 2>/dev/null || true
printf '{"time":"2026-11-21T00:00:00Z","route":"tor' >> "$LOG"
check test_crash_restart_after_sigkill start
check test_crash_acknowledged_write_kept eq "$("$KMS" secret get app/crash --env prod --raw)" c20
check test_crash_torn_line_cut grep -q 'audit log repaired' "$tmp/kmsd.log"
stop
check test_crash_audit_chain_intact "$KMS" audit verify "$LOG"
sed -i '/audit log repaired/d' "$tmp/kmsd.log"

printf 'xyzzy-not-the-password\n' > "$tmp/pw"
rc=0; "$KMSD" --data "$tmp/data" --listen 127.0.0.1:0 "${COMMON[@]}" 2>"$tmp/wrong.log" || rc=$?
check test_wrong_store_password_refused eq "$rc" 1
check test_wrong_password_not_logged sh -c "! grep -q xyzzy '$tmp/wrong.log'"
printf 'correct horse battery staple\n' > "$tmp/pw"

# ---- unwritable audit log fails closed (503) ------------------------------------------------------
if [ -w /dev/full ]; then
  check test_audit_unwritable_start start --audit-log /dev/full
  api GET /v1/kms/health "" ""
  api GET /v1/kms/health "" ""
  check test_audit_unwritable_503 eq "$code" 503
  check test_audit_unwritable_logged grep -q 'audit log cannot be written' "$tmp/kmsd.log"
  stop || true
fi

# ---- TLS ------------------------------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
chmod 600 "$tmp/key.pem"
check test_tls_start start --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem"
port=$(cat "$tmp/port")
check test_tls_health_over_https \
  eq "$(curl -s --cacert "$tmp/cert.pem" "https://127.0.0.1:$port/v1/kms/health" | jget '["status"]')" ok
check test_tls_cli_with_cacert \
  env KMS_ADDR="https://127.0.0.1:$port" "$KMS" --cacert "$tmp/cert.pem" status
check test_tls_plain_http_fails sh -c "! curl -sf 'http://127.0.0.1:$port/v1/kms/health'"
check test_tls_clean_exit stop
check test_kmsd_no_sanitizer_reports sh -c "! grep -qE 'Sanitizer|runtime error' '$tmp/kmsd.log'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
