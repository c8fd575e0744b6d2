#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libzapdb.so exports exactly the functions declared in zapdb.h: every
# public function is there, nothing else (no internal zap_* helper, no
# kms_common kc_* symbol). Usage: check_exports.sh LIBZAPDB_SO ZAPDB_H
set -euo pipefail
lib=$1
hdr=$2
want=$(grep -oE '\bzap_[a-z_]+\(' "$hdr" | tr -d '(' | sort -u)
have=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TW]$/ {print $3}' |
       sed 's/@.*//' | sort -u)
missing=$(comm -23 <(echo "$want") <(echo "$have"))
extra=$(comm -13 <(echo "$want") <(echo "$have"))
[ -z "$missing" ] || { echo "not exported: $missing"; exit 1; }
[ -z "$extra" ] || { echo "exported but not public: $extra"; exit 1; }
[ "$(echo "$want" | wc -l)" -ge 30 ] || { echo "header parse failed"; exit 1; }
echo "exports: $(echo "$want" | wc -l) public functions, nothing else"
