#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
build=$1 cc=$2 extra=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() { if "${@:2}"; then pass=$((pass + 1)); else echo "FAIL $1" >&2; fail=$((fail + 1)); fi; }

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
lib=$tmp/prefix/lib
for f in bin/zapdb bin/hsm bin/kms sbin/kmsd include/zapdb/zapdb.h include/hsm/hsm.h \
         include/hsm/vault.h include/hsm/threshold.h lib/pkgconfig/zapdb.pc lib/pkgconfig/hsm.pc; do
  check "installed_$f" test -e "$tmp/prefix/$f"
done

# The pkg-config files carry the install prefix; point them at the temp one.
mkdir "$tmp/pc"
for pc in "$lib"/pkgconfig/*.pc; do
  sed "s|^prefix=.*|prefix=$tmp/prefix|" "$pc" >"$tmp/pc/$(basename "$pc")"
done
cat >"$tmp/consumer.c" <<'EOF'
#include <hsm/hsm.h>
#include <stdio.h>
#include <string.h>
#include <zapdb/zapdb.h>
int main(void)
{
    zap_db *db = NULL;
    zap_opts o;
    zap_opts_default(&o);
    o.flags = ZAP_CREATE;
    o.kdf_opslimit = 1;
    o.kdf_memlimit = 8192;
    if (zap_open("store", &o, "pw", 2, &db) != ZAP_OK)
        return 1;
    if (zap_put(db, "b", (const unsigned char *)"k", 1,
                (const unsigned char *)"v", 1) != ZAP_OK)
        return 2;
    zap_close(db);
    if (strcmp(zap_strerror(ZAP_EAUTH), "wrong password or key") != 0)
        return 3;
    puts(hsm_strerror(HSM_OK));
    return 0;
}
EOF
flags=$(PKG_CONFIG_PATH=$tmp/pc pkg-config --cflags --libs zapdb hsm)
check consumer_builds "$cc" $extra -o "$tmp/consumer" "$tmp/consumer.c" $flags
check consumer_runs bash -c "cd '$tmp' && LD_LIBRARY_PATH='$lib' ./consumer >/dev/null"
check store_created test -f "$tmp/store/data.mdb"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
