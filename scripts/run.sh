#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make run`: bash scripts/run.sh BUILD_DIR DATA_DIR
#
# A demonstration of the system as it stands. Today that is the ZapDB
# store through the `zapdb` tool; kmsd will be started from here too once
# it exists (add a mode function and a case below). Every command is
# printed before it runs. Safe to run again: the store and its password
# file are reused.
#
# Modes (RUN_MODE, default "zapdb"): zapdb.
set -euo pipefail

build=${1:-build}
data=${2:-./data}
zapdb="$build/bin/zapdb"
pwfile="$data/demo-password"

say() { printf '\n== %s\n' "$*"; }

# Print a zapdb command, then run it. Values are fed through pipes from
# shell built-ins (printf), so they never appear in any process's argv.
zap() {
  printf '$ zapdb %s\n' "$*"
  "$zapdb" "$@"
}

require_built() {
  if [ ! -x "$zapdb" ]; then
    echo "run.sh: $zapdb is not built (run: make build)" >&2
    exit 1
  fi
}

# The demo's password: random, 0600, created once and kept in DATA_DIR.
ensure_password() {
  mkdir -p "$data"
  chmod 700 "$data"
  if [ ! -s "$pwfile" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$pwfile")
    echo "created $pwfile (random password, mode 0600)"
  fi
  chmod 600 "$pwfile"
}

put() { # put BUCKET KEY VALUE  (the value goes through stdin)
  printf '$ printf %%s <value> | zapdb put %s %s %s --password-file %s\n' \
    "$store" "$1" "$2" "$pwfile"
  printf '%s' "$3" | "$zapdb" put "$store" "$1" "$2" --password-file "$pwfile"
}

# ZapDB: create (once), write, list, read, verify, back up, statistics.
mode_zapdb() {
  store="$data/demo-zapdb"
  require_built
  ensure_password

  say "ZapDB store in $store"
  if [ -d "$store" ]; then
    echo "(store exists: reusing it)"
  else
    zap init "$store" --password-file "$pwfile"
  fi

  say "Records in two buckets (put replaces, so running twice is fine)"
  put config db_url "postgres://app@db.internal:5432/app"
  put config region "eu-west-1"
  put config feature_flags '{"beta": true}'
  put tokens ci-runner "demo-token-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  printf '$ printf <bytes> | zapdb put %s tokens --key-hex 00ff01 ...\n' "$store"
  printf '\001\002\003' | "$zapdb" put "$store" tokens --key-hex 00ff01 \
    --password-file "$pwfile"

  say "Listing"
  zap ls "$store" --password-file "$pwfile"
  zap ls "$store" config --password-file "$pwfile"
  zap ls "$store" config --prefix feat --password-file "$pwfile"
  zap ls "$store" tokens --password-file "$pwfile"

  say "Reading"
  zap get "$store" config db_url --password-file "$pwfile"
  echo
  zap get "$store" config region --out "$data/region.txt" \
    --password-file "$pwfile"
  echo "wrote $data/region.txt ($(wc -c <"$data/region.txt") bytes, mode $(stat -c %a "$data/region.txt"))"
  rm -f "$data/region.txt"
  set +e
  zap get "$store" config missing --password-file "$pwfile"
  echo "(exit status $?: not found)"
  set -e

  say "Integrity, backup and statistics"
  zap verify "$store" --password-file "$pwfile"
  zap backup "$store" "$data/demo-zapdb.backup" --password-file "$pwfile"
  zap stats "$store" --password-file "$pwfile"
  zap stats "$store" --json --password-file "$pwfile"
}

# kmsd in the foreground on an embedded ZapDB store.
mode_kmsd() {
  local kmsd="$build/bin/kmsd" kms="$build/bin/kms"
  local listen=${KMSD_LISTEN:-127.0.0.1:8200}
  local aws_listen=${KMSD_AWS_LISTEN:-127.0.0.1:8300}
  if [ ! -x "$kmsd" ]; then
    echo "run.sh: $kmsd is not built (run: make build)" >&2
    exit 1
  fi
  ensure_password
  say "kmsd on http://$listen, store $data/kmsd"
  cat <<EOF
Try it from another terminal (the token is read from a file, never argv):
  export KMS_ADDR=http://$listen KMS_TOKEN_FILE=$data/root-token
  $kms status
  $kms org create acme
  printf 's3cret' | $kms secret set app/db/password --env prod --org acme
  $kms secret get app/db/password --env prod --org acme
  $kms secret history app/db/password --env prod --org acme
  curl -s http://$listen/v1/kms/health
Named keys, and the AWS KMS-compatible API on http://$aws_listen:
  $kms key create payments --type aes256-gcm --org acme
  printf 'card 4111' | $kms key encrypt payments --context app=billing --org acme
  $kms identity create --name app --org acme     # then: kms aws-key create --client-id ID --org acme
Stop with Ctrl-C (kmsd drains requests and closes the store).
EOF
  printf '$ kmsd --dev --data %s --password-provider file --password-config path=%s --listen %s --aws-listen %s --root-token-file %s\n' \
    "$data/kmsd" "$pwfile" "$listen" "$aws_listen" "$data/root-token"
  exec "$kmsd" --dev --data "$data/kmsd" --password-provider file \
    --password-config "path=$pwfile" --listen "$listen" \
    --aws-listen "$aws_listen" --root-token-file "$data/root-token"
}

main() {
  case "${RUN_MODE:-kmsd}" in
  kmsd) mode_kmsd ;;
  zapdb) mode_zapdb ;;
  *)
    echo "run.sh: unknown RUN_MODE ${RUN_MODE} (known: kmsd, zapdb)" >&2
    exit 2
    ;;
  esac
}

main
