/* SPDX-License-Identifier: Apache-2.0 */
#include "zt.h"

#include <string.h>

zap_opts
zt_opts(unsigned flags)
{
    zap_opts o;

    zap_opts_default(&o);
    o.flags = flags;
    o.kdf_opslimit = 1;
    o.kdf_memlimit = 8192;
    o.map_size = (size_t)256 << 20;
    o.sync = ZAP_SYNC_NONE;
    return o;
}

zap_db *
zt_create(const char *dir)
{
    zap_opts o = zt_opts(ZAP_CREATE);
    zap_db *db = NULL;

    if (!dir)
        dir = kt_path(kt_tmpdir(), "store");
    REQUIRE(zap_open(dir, &o, ZT_PASSWORD, strlen(ZT_PASSWORD), &db) == ZAP_OK);
    return db;
}

zap_db *
zt_reopen(const char *dir, const char *password)
{
    zap_opts o = zt_opts(0);
    zap_db *db = NULL;

    if (zap_open(dir, &o, password, strlen(password), &db) != ZAP_OK)
        return NULL;
    return db;
}

const uint8_t *
zt_raw_key(uint8_t seed)
{
    static uint8_t key[ZAP_KEY_LEN];

    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(seed + i);
    return key;
}

bool
zt_contains(const uint8_t *hay, size_t hay_len, const void *needle,
            size_t needle_len)
{
    return memmem(hay, hay_len, needle, needle_len) != NULL;
}
