/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz zap_restore(): arbitrary bytes as a backup file, restored with the
 * password "fuzz-password" into a fresh temporary directory that is removed
 * afterwards. The corpus holds a real backup made by tests/zapdb
 * (test_backup_committed_seed_restores, opslimit 1, memlimit 8 KiB).
 * The KDF cost comes from the file's header: inputs asking for more than
 * the cheap test cost are skipped so that each run stays fast (the library
 * itself caps it at opslimit 64, memlimit 4 GiB). */
/* fuzz-link: zapdb_static */
#include "kc.h"
#include "zapdb/zapdb.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t
le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char tmpl[] = "/tmp/fuzz-zapdb-XXXXXX";
    char file[64], dir[64];
    zap_opts o;
    FILE *f;

    /* Header: kdf at 12, opslimit at 16, memlimit at 24 (docs/zapdb.md). */
    if (size >= 32 && data[12] == 1 &&
        (le64(data + 16) > 2 || le64(data + 24) > 65536))
        return 0;
    if (!mkdtemp(tmpl))
        return 0;
    snprintf(file, sizeof file, "%s/in.zbk", tmpl);
    snprintf(dir, sizeof dir, "%s/store", tmpl);
    f = fopen(file, "wb");
    if (f) {
        if (fwrite(data, 1, size, f) == size && fclose(f) == 0) {
            zap_opts_default(&o);
            o.kdf_opslimit = 1;
            o.kdf_memlimit = 8192;
            o.map_size = (size_t)64 << 20;
            zap_restore(file, dir, &o, "fuzz-password", 13, NULL, NULL);
        } else {
            fclose(f);
        }
    }
    kc_rmtree(tmpl);
    return 0;
}
