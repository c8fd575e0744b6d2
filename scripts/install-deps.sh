#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages this project builds, tests and runs with,
# only when some are missing. Idempotent; needs root or sudo only when it
# actually has something to install.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang
  libsodium-dev libssl-dev liblmdb-dev lmdb-utils
  libcurl4-openssl-dev libmicrohttpd-dev libjansson-dev libpq-dev
  libsqlcipher-dev
  valgrind
  softhsm2 opensc libp11-kit-dev
  postgresql
  wrk nginx-light
  ca-certificates
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# Node.js may come from a package that bundles npm (NodeSource) rather than
# Debian's split nodejs + npm: judge it by the commands.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# nginx and postgresql must not start system-wide services on install; the
# tests and benchmarks start their own instances on loopback.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
