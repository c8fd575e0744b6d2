#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kmsd benchmark: secret reads and durable secret writes against kmsd
# (--dev: temporary store, audit log on, fsync'd before each response) and
# nginx serving a small static file, measured with wrk in the same run;
# named keys over HTTP (encrypt: aes256-gcm, 256-byte plaintext; sign:
# ecdsa-p256) and in-process ECDSA P-256 signing (kmsd-sign-bench: libhsm's
# local signer and kmsd's key engine) beside `openssl speed ecdsap256`.
# Prints `name value unit` lines.
# Usage: bench/kmsd/run.sh BUILD_DIR   (env: DURATION seconds, CONNS)
set -euo pipefail

build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
dur=${DURATION:-5}
conns=${CONNS:-64}
tmp=$(mktemp -d)
kpid=""
npid=""

cleanup() {
  if [ -n "$kpid" ]; then kill -TERM "$kpid" 2>/dev/null || true; wait "$kpid" 2>/dev/null || true; fi
  if [ -n "$npid" ]; then kill -TERM "$npid" 2>/dev/null || true; wait "$npid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

for tool in wrk nginx curl; do
  command -v "$tool" >/dev/null || { echo "# $tool not installed: skipping kmsd bench" >&2; exit 0; }
done

# ---- kmsd ----------------------------------------------------------------------
"$build/bin/kmsd" --dev --listen 127.0.0.1:0 --port-file "$tmp/port" \
  --root-token-file "$tmp/root" 2>"$tmp/kmsd.log" &
kpid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
kport=$(cat "$tmp/port")
token=$(cat "$tmp/root")
base="http://127.0.0.1:$kport"
curl -sf -H "X-KMS-Token: $token" -X POST "$base/v1/kms/orgs" -d '{"name":"bench"}' >/dev/null
curl -sf -H "X-KMS-Token: $token" -X POST \
  "$base/v1/kms/orgs/bench/secrets/app/db/password?env=prod" \
  -d '{"value":"correct horse battery staple"}' >/dev/null
curl -sf -H "X-KMS-Token: $token" -X POST "$base/v1/kms/orgs/bench/keys" \
  -d '{"name":"enc","type":"aes256-gcm"}' >/dev/null
curl -sf -H "X-KMS-Token: $token" -X POST "$base/v1/kms/orgs/bench/keys" \
  -d '{"name":"sig","type":"ecdsa-p256"}' >/dev/null

# ---- nginx: a small static file on a loopback port ---------------------------------
nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
mkdir -p "$tmp/www" "$tmp/logs"
printf '{"status":"ok","value":"correct horse battery staple"}' > "$tmp/www/index.json"
cat > "$tmp/nginx.conf" <<NGX
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/cbt;
  proxy_temp_path $tmp/pt;
  fastcgi_temp_path $tmp/ft;
  uwsgi_temp_path $tmp/ut;
  scgi_temp_path $tmp/st;
  server {
    listen 127.0.0.1:$nport;
    root $tmp/www;
    location / { try_files /index.json =404; }
  }
}
NGX
nginx -c "$tmp/nginx.conf" -p "$tmp" 2>"$tmp/logs/start.log" &
npid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$nport/" >/dev/null && break; sleep 0.05; done

# ---- wrk -------------------------------------------------------------------------------
cat > "$tmp/read.lua" <<LUA
wrk.method = "GET"
wrk.headers["X-KMS-Token"] = "$token"
LUA
cat > "$tmp/write.lua" <<LUA
local n = 0
wrk.method = "POST"
wrk.headers["X-KMS-Token"] = "$token"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local path = "/v1/kms/orgs/bench/secrets/app/w" .. (n % 200) .. "?env=prod"
  return wrk.format(nil, path, nil, '{"value":"v' .. n .. '"}')
end
LUA

pt=$(head -c 256 /dev/zero | tr '\0' 'p' | base64 -w0)
cat > "$tmp/encrypt.lua" <<LUA
wrk.method = "POST"
wrk.headers["X-KMS-Token"] = "$token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"plaintext":"$pt","context":{"app":"bench"}}'
LUA
cat > "$tmp/sign.lua" <<LUA
wrk.method = "POST"
wrk.headers["X-KMS-Token"] = "$token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"message":"$(printf 'a message to sign, 32 bytes long' | base64 -w0)"}'
LUA

# run NAME URL [SCRIPT]: prints NAME_rps and NAME_p99_ms, sets $rps
run() {
  local name=$1 url=$2 script=${3:-}
  local args=(-t2 -c"$conns" -d"${dur}s" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  wrk "${args[@]}" "$url" > "$tmp/$name.out" 2>&1
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/$name.out")
  local p99
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000}
        else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}
        printf "%.2f", v}' "$tmp/$name.out")
  local errs
  errs=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$tmp/$name.out")
  echo "${name}_rps ${rps} req/s"
  echo "${name}_p99 ${p99} ms"
  if [ -n "$errs" ]; then echo "${name}_non2xx ${errs} responses"; fi
}

run nginx_static "http://127.0.0.1:$nport/"
nginx_rps=$rps
run kmsd_read "$base/v1/kms/orgs/bench/secrets/app/db/password?env=prod" "$tmp/read.lua"
read_rps=$rps
run kmsd_write "$base/" "$tmp/write.lua"
awk -v a="$read_rps" -v b="$nginx_rps" 'BEGIN {printf "kmsd_read_vs_nginx %.3f ratio\n", a / b}'
curl -s "$base/metrics" > "$tmp/metrics"
awk '/^kmsd_audit_lines_total/ {l=$2} /^kmsd_audit_batches_total/ {b=$2}
     END {printf "kmsd_audit_lines %d lines\nkmsd_audit_lines_per_fsync %.1f lines\n", l, (b ? l / b : 0)}' "$tmp/metrics"
run kmsd_encrypt "$base/v1/kms/orgs/bench/keys/enc/encrypt" "$tmp/encrypt.lua"
enc_rps=$rps
run kmsd_sign "$base/v1/kms/orgs/bench/keys/sig/sign" "$tmp/sign.lua"
awk -v a="$enc_rps" -v b="$nginx_rps" 'BEGIN {printf "kmsd_encrypt_vs_nginx %.3f ratio\n", a / b}'

# ---- in-process signing on one core, beside openssl speed ----------------------
if [ -x "$build/bin/kmsd-sign-bench" ] && command -v openssl >/dev/null; then
  taskset -c 0 "$build/bin/kmsd-sign-bench" 3 | tee "$tmp/sign.out"
  ossl=$(taskset -c 0 openssl speed -seconds 3 ecdsap256 2>/dev/null |
         awk '/ecdsa \(nistp256\)/ {print $(NF-1)}')
  echo "openssl_ecdsap256_sign ${ossl} signs/s"
  awk -v o="$ossl" '/^kmsd_engine_sign/ {k=$2} /^hsm_local_sign/ {h=$2}
       END {printf "kmsd_sign_vs_openssl %.3f ratio\nhsm_local_sign_vs_openssl %.3f ratio\n", k / o, h / o}' "$tmp/sign.out"
fi
