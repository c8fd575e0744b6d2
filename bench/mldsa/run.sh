#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ML-DSA benchmark: median cycles (x86-64 TSC via __rdtsc) and ops/s for
# keygen, sign and verify of ML-DSA-44/65/87, then the ML-DSA-65 targets as
# ratios (measured / target; lower is better). Usage: run.sh BUILD_DIR [iters]
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR [iterations]}
exec "$build/bin/mldsa-bench" "${2:-300}"
