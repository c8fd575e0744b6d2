#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ML-DSA benchmark: median cycles (x86-64 TSC via __rdtsc) and ops/s for
# keygen, sign and verify of ML-DSA-44/65/87, then the ML-DSA-65 targets as
# ratios (measured / target; lower is better): first kms_crypto as shipped
# (run-time dispatch), then the portable baseline build ("_baseline").
# Usage: run.sh BUILD_DIR [iterations]
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR [iterations]}
"$build/bin/mldsa-bench" "${2:-1000}"
if [ -x "$build/bin/mldsa-bench-baseline" ]; then
  "$build/bin/mldsa-bench-baseline" "${2:-1000}"
fi
