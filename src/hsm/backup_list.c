/* SPDX-License-Identifier: Apache-2.0 */
/* Parser for the decrypted list of shares inside a key-share backup
 * (backup.c). It is hand-written, not jansson, so that the shares'
 * plaintext is never copied into heap memory that is freed unwiped: the
 * parser only points into the caller's (locked) buffer, and decoded shares
 * go straight into hsm_secret memory.
 *
 * Grammar (RFC 8259 subset; blanks allowed between tokens):
 *   list  = "[" [ item *( "," item ) ] "]"
 *   item  = "{" member *( "," member ) "}"     each of the 8 members once
 *   member= string ":" ( string | uint )
 *   string: printable ASCII without '"' or '\\' (no escapes are needed for
 *           key ids or base64)
 *   uint  : 0 | [1-9][0-9]*, at most 2^32-1
 */
#include <stdlib.h>
#include <string.h>

#include "hsm_int.h"
#include "kc.h"
#include "vault_int.h"

#define COUNT_MAX 1000000u

typedef struct {
    const char *p;
    size_t n, i;
} cur;

static void
ws(cur *c)
{
    while (c->i < c->n && (c->p[c->i] == ' ' || c->p[c->i] == '\t' ||
                           c->p[c->i] == '\n' || c->p[c->i] == '\r'))
        c->i++;
}

static bool
lit(cur *c, char ch)
{
    ws(c);
    if (c->i < c->n && c->p[c->i] == ch) {
        c->i++;
        return true;
    }
    return false;
}

static bool
str(cur *c, const char **s, size_t *len)
{
    size_t start;

    if (!lit(c, '"'))
        return false;
    start = c->i;
    while (c->i < c->n && c->p[c->i] != '"') {
        unsigned char ch = (unsigned char)c->p[c->i];
        if (ch < 0x20 || ch > 0x7e || ch == '\\')
            return false;
        c->i++;
    }
    if (c->i >= c->n)
        return false;
    *s = c->p + start;
    *len = c->i - start;
    c->i++; /* closing quote */
    return true;
}

static bool
u32(cur *c, uint32_t *out)
{
    uint64_t v = 0;
    size_t start;

    ws(c);
    start = c->i;
    while (c->i < c->n && c->p[c->i] >= '0' && c->p[c->i] <= '9') {
        v = v * 10 + (uint64_t)(c->p[c->i] - '0');
        if (v > UINT32_MAX)
            return false;
        c->i++;
    }
    if (c->i == start || (c->p[start] == '0' && c->i - start > 1))
        return false;
    *out = (uint32_t)v;
    return true;
}

enum {
    F_KEY_ID,
    F_SCHEME,
    F_PARTY,
    F_THRESHOLD,
    F_TOTAL,
    F_PUBLIC,
    F_GROUP,
    F_SHARE,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "key_id",        "scheme",       "party_index", "threshold",
    "total_parties", "public_share", "group_key",   "share"};

static int
field_of(const char *s, size_t n)
{
    for (int f = 0; f < F_COUNT; f++) {
        if (strlen(field_names[f]) == n && memcmp(field_names[f], s, n) == 0)
            return f;
    }
    return -1;
}

/* Base64 (standard alphabet) of a public value into a malloc'd buffer. */
static bool
b64_public(const char *s, size_t n, uint8_t **out, size_t *len)
{
    return kc_b64_decode(s, n, KC_B64_STD, out, len) == 0;
}

/* Base64 of the share straight into locked memory. */
static bool
b64_secret(const char *s, size_t n, hsm_secret **out)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    bool ok;

    if (kc_b64_decode(s, n, KC_B64_STD, &raw, &raw_len) != 0)
        return false;
    ok = raw_len > 0 && raw_len <= HSM_VAULT_MAX_SHARE &&
         hsm_secret_from(raw, raw_len, out) == HSM_OK;
    kc_free_wipe(raw, raw_len);
    return ok;
}

static bool
member(cur *c, hsm_backup_item *it, unsigned *seen)
{
    const char *k, *v;
    size_t kn, vn;
    uint32_t *num[F_COUNT] = {NULL, &it->meta.scheme, &it->meta.party_index,
                              &it->meta.threshold, &it->meta.total_parties};
    int f;

    if (!str(c, &k, &kn) || (f = field_of(k, kn)) < 0 || (*seen & (1u << f)) ||
        !lit(c, ':'))
        return false;
    *seen |= 1u << f;
    if (f >= F_SCHEME && f <= F_TOTAL)
        return u32(c, num[f]);
    if (!str(c, &v, &vn))
        return false;
    switch (f) {
    case F_KEY_ID:
        if (vn == 0 || vn > HSM_MAX_KEY_ID)
            return false;
        memcpy(it->key_id, v, vn);
        it->key_id[vn] = 0;
        return hsm_key_id_valid(it->key_id);
    case F_PUBLIC:
        return b64_public(v, vn, &it->meta.public_share,
                          &it->meta.public_share_len);
    case F_GROUP:
        return b64_public(v, vn, &it->meta.group_key, &it->meta.group_key_len);
    case F_SHARE:
        return b64_secret(v, vn, &it->share);
    default:
        return false;
    }
}

static bool
item(cur *c, hsm_backup_item *it)
{
    unsigned seen = 0;

    if (!lit(c, '{'))
        return false;
    do {
        if (!member(c, it, &seen))
            return false;
    } while (lit(c, ','));
    return lit(c, '}') && seen == (1u << F_COUNT) - 1 &&
           hsm_share_meta_check(&it->meta) == HSM_OK;
}

void
hsm_backup_items_free(hsm_backup_item *items, size_t count)
{
    if (!items)
        return;
    for (size_t i = 0; i < count; i++) {
        hsm_secret_free(items[i].share);
        hsm_share_meta_clear(&items[i].meta);
    }
    free(items);
}

static int
cmp_id(const void *a, const void *b)
{
    return strcmp(((const hsm_backup_item *)a)->key_id,
                  ((const hsm_backup_item *)b)->key_id);
}

hsm_err
hsm_backup_list_parse(const uint8_t *text, size_t text_len,
                      hsm_backup_item **items, size_t *count)
{
    cur c = {(const char *)text, text_len, 0};
    hsm_backup_item *its = NULL;
    size_t n = 0, cap = 0;
    hsm_err rc = HSM_EMALFORMED;

    *items = NULL;
    *count = 0;
    if (!text || !lit(&c, '['))
        return HSM_EMALFORMED;
    if (!lit(&c, ']')) {
        do {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                hsm_backup_item *ni;
                if (n >= COUNT_MAX)
                    goto out;
                if (!(ni = realloc(its, ncap * sizeof *ni))) {
                    rc = HSM_ENOMEM;
                    goto out;
                }
                its = ni;
                cap = ncap;
            }
            memset(&its[n], 0, sizeof its[n]);
            n++;
            if (!item(&c, &its[n - 1]))
                goto out;
        } while (lit(&c, ','));
        if (!lit(&c, ']'))
            goto out;
    }
    ws(&c);
    if (c.i != c.n)
        goto out; /* trailing bytes */
    if (n > 1) {
        qsort(its, n, sizeof *its, cmp_id);
        for (size_t i = 1; i < n; i++) {
            if (strcmp(its[i - 1].key_id, its[i].key_id) == 0)
                goto out; /* duplicate id */
        }
    }
    if (!its && !(its = calloc(1, sizeof *its))) {
        rc = HSM_ENOMEM;
        goto out;
    }
    *items = its;
    *count = n;
    return HSM_OK;
out:
    hsm_backup_items_free(its, n);
    return rc;
}
