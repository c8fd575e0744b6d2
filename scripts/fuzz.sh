#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs each libFuzzer target for FUZZ_SECONDS (default 60) on a copy of its
# corpus. Not part of `make test` (which replays the corpora instead).
set -euo pipefail
build=${1:-build-fuzz}
secs=${FUZZ_SECONDS:-60}
cd "$(dirname "$0")/.."
for bin in "$build"/bin/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin"); target=${name#fuzz_}
  work=$(mktemp -d)
  cp -r "fuzz/corpus/$target/." "$work/" 2>/dev/null || true
  echo "# $name for ${secs}s"
  "$bin" -max_total_time="$secs" -max_len=65536 "$work"
  rm -rf "$work"
done
