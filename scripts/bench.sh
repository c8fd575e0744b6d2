#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every component's benchmark (bench/<component>/run.sh BUILD_DIR) in
# turn. Each prints one figure a line: `name value unit`.
set -euo pipefail
build=${1:-build}
build=$(cd "$build" && pwd)
cd "$(dirname "$0")/.."
for run in bench/*/run.sh; do
  [ -f "$run" ] || continue
  echo "# $(dirname "$run")"
  bash "$run" "$build"
done
