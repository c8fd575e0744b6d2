#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ZapDB benchmark: bash bench/zapdb/run.sh BUILD_DIR [extra zapdb-bench args]
# Runs bin/zapdb-bench with 1,000,000 records in a temporary directory
# (removed afterwards) and prints one figure a line: `name value unit`.
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR [zapdb-bench options]}
shift
bin="$build/bin/zapdb-bench"
if [ ! -x "$bin" ]; then
  echo "zapdb-bench: $bin not built" >&2
  exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/zapdb-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$bin" --dir "$work" --records 1000000 "$@"
