/* SPDX-License-Identifier: Apache-2.0 */
/* p11: PKCS#11 modules, tokens, the session pool and the one table of
 * CKR_* codes. See p11.h for the contracts. */
#include "p11.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc.h"

/* ---- the one table of codes ------------------------------------------- */

/* code, hint (what it means for an operator), class. */
#define P11_RV_TABLE(X)                                                        \
    X(CKR_OK, "success", P11_C_OK)                                             \
    X(CKR_CANCEL, "cancelled", P11_C_DEVICE)                                   \
    X(CKR_HOST_MEMORY, "out of memory", P11_C_NOMEM)                           \
    X(CKR_SLOT_ID_INVALID, "slot not found", P11_C_NOT_FOUND)                  \
    X(CKR_GENERAL_ERROR, "general token error", P11_C_DEVICE)                  \
    X(CKR_FUNCTION_FAILED, "token function failed", P11_C_DEVICE)              \
    X(CKR_ARGUMENTS_BAD, "bad arguments", P11_C_INVALID)                       \
    X(CKR_NEED_TO_CREATE_THREADS, "module needs to create threads",            \
      P11_C_CONFIG)                                                            \
    X(CKR_CANT_LOCK, "module cannot use OS locking", P11_C_CONFIG)             \
    X(CKR_ATTRIBUTE_READ_ONLY, "attribute is read-only", P11_C_INVALID)        \
    X(CKR_ATTRIBUTE_SENSITIVE, "attribute is sensitive", P11_C_INVALID)        \
    X(CKR_ATTRIBUTE_TYPE_INVALID, "attribute not supported",                   \
      P11_C_UNSUPPORTED)                                                       \
    X(CKR_ATTRIBUTE_VALUE_INVALID, "attribute value invalid", P11_C_INVALID)   \
    X(CKR_ACTION_PROHIBITED, "action prohibited by policy", P11_C_UNSUPPORTED) \
    X(CKR_DATA_INVALID, "input data invalid", P11_C_INVALID)                   \
    X(CKR_DATA_LEN_RANGE, "input data has the wrong length", P11_C_INVALID)    \
    X(CKR_DEVICE_ERROR, "device error", P11_C_DEVICE)                          \
    X(CKR_DEVICE_MEMORY, "token out of memory", P11_C_DEVICE)                  \
    X(CKR_DEVICE_REMOVED, "token removed", P11_C_SESSION)                      \
    X(CKR_ENCRYPTED_DATA_INVALID, "ciphertext rejected", P11_C_DECRYPT)        \
    X(CKR_ENCRYPTED_DATA_LEN_RANGE, "ciphertext has the wrong length",         \
      P11_C_DECRYPT)                                                           \
    X(CKR_FUNCTION_CANCELED, "function cancelled", P11_C_DEVICE)               \
    X(CKR_FUNCTION_NOT_PARALLEL, "function not parallel", P11_C_UNSUPPORTED)   \
    X(CKR_FUNCTION_NOT_SUPPORTED, "function not supported by the module",      \
      P11_C_UNSUPPORTED)                                                       \
    X(CKR_KEY_HANDLE_INVALID, "key not found", P11_C_NOT_FOUND)                \
    X(CKR_KEY_SIZE_RANGE, "key size not supported", P11_C_UNSUPPORTED)         \
    X(CKR_KEY_TYPE_INCONSISTENT, "key type does not fit the mechanism",        \
      P11_C_UNSUPPORTED)                                                       \
    X(CKR_KEY_NOT_NEEDED, "key not needed", P11_C_INVALID)                     \
    X(CKR_KEY_CHANGED, "key changed", P11_C_DEVICE)                            \
    X(CKR_KEY_NEEDED, "key needed", P11_C_INVALID)                             \
    X(CKR_KEY_INDIGESTIBLE, "key indigestible", P11_C_UNSUPPORTED)             \
    X(CKR_KEY_FUNCTION_NOT_PERMITTED, "key usage does not permit this",        \
      P11_C_UNSUPPORTED)                                                       \
    X(CKR_KEY_NOT_WRAPPABLE, "key not wrappable", P11_C_UNSUPPORTED)           \
    X(CKR_KEY_UNEXTRACTABLE, "key not extractable", P11_C_UNSUPPORTED)         \
    X(CKR_MECHANISM_INVALID, "mechanism not supported", P11_C_UNSUPPORTED)     \
    X(CKR_MECHANISM_PARAM_INVALID, "mechanism parameters not supported",       \
      P11_C_UNSUPPORTED)                                                       \
    X(CKR_OBJECT_HANDLE_INVALID, "object not found", P11_C_NOT_FOUND)          \
    X(CKR_OPERATION_ACTIVE, "another operation is active", P11_C_DEVICE)       \
    X(CKR_OPERATION_NOT_INITIALIZED, "operation not initialised",              \
      P11_C_DEVICE)                                                            \
    X(CKR_PIN_INCORRECT, "wrong PIN", P11_C_AUTH)                              \
    X(CKR_PIN_INVALID, "PIN has invalid characters", P11_C_AUTH)               \
    X(CKR_PIN_LEN_RANGE, "PIN has the wrong length", P11_C_AUTH)               \
    X(CKR_PIN_EXPIRED, "PIN expired", P11_C_AUTH)                              \
    X(CKR_PIN_LOCKED, "PIN locked", P11_C_AUTH)                                \
    X(CKR_SESSION_CLOSED, "session closed", P11_C_SESSION)                     \
    X(CKR_SESSION_COUNT, "too many sessions", P11_C_DEVICE)                    \
    X(CKR_SESSION_HANDLE_INVALID, "session no longer valid", P11_C_SESSION)    \
    X(CKR_SESSION_PARALLEL_NOT_SUPPORTED, "parallel sessions not supported",   \
      P11_C_UNSUPPORTED)                                                       \
    X(CKR_SESSION_READ_ONLY, "session is read-only", P11_C_UNSUPPORTED)        \
    X(CKR_SESSION_EXISTS, "a session exists", P11_C_DEVICE)                    \
    X(CKR_SESSION_READ_ONLY_EXISTS, "a read-only session exists",              \
      P11_C_DEVICE)                                                            \
    X(CKR_SESSION_READ_WRITE_SO_EXISTS, "an SO session exists", P11_C_DEVICE)  \
    X(CKR_SIGNATURE_INVALID, "signature invalid", P11_C_BAD_SIG)               \
    X(CKR_SIGNATURE_LEN_RANGE, "signature has the wrong length",               \
      P11_C_BAD_SIG)                                                           \
    X(CKR_TEMPLATE_INCOMPLETE, "template incomplete", P11_C_INVALID)           \
    X(CKR_TEMPLATE_INCONSISTENT, "template inconsistent", P11_C_INVALID)       \
    X(CKR_TOKEN_NOT_PRESENT, "token not present", P11_C_SESSION)               \
    X(CKR_TOKEN_NOT_RECOGNIZED, "token not recognised", P11_C_DEVICE)          \
    X(CKR_TOKEN_WRITE_PROTECTED, "token is write-protected",                   \
      P11_C_UNSUPPORTED)                                                       \
    X(CKR_UNWRAPPING_KEY_SIZE_RANGE, "unwrapping key size", P11_C_UNSUPPORTED) \
    X(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, "unwrapping key type",             \
      P11_C_UNSUPPORTED)                                                       \
    X(CKR_USER_ALREADY_LOGGED_IN, "already logged in", P11_C_OK)               \
    X(CKR_USER_NOT_LOGGED_IN, "not logged in", P11_C_SESSION)                  \
    X(CKR_USER_PIN_NOT_INITIALIZED, "user PIN not initialised", P11_C_AUTH)    \
    X(CKR_USER_TYPE_INVALID, "user type invalid", P11_C_AUTH)                  \
    X(CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "another user is logged in",         \
      P11_C_AUTH)                                                              \
    X(CKR_USER_TOO_MANY_TYPES, "too many user types", P11_C_AUTH)              \
    X(CKR_WRAPPED_KEY_INVALID, "wrapped key invalid", P11_C_DECRYPT)           \
    X(CKR_WRAPPED_KEY_LEN_RANGE, "wrapped key length", P11_C_DECRYPT)          \
    X(CKR_RANDOM_NO_RNG, "token has no RNG", P11_C_UNSUPPORTED)                \
    X(CKR_DOMAIN_PARAMS_INVALID, "domain parameters invalid",                  \
      P11_C_UNSUPPORTED)                                                       \
    X(CKR_CURVE_NOT_SUPPORTED, "curve not supported", P11_C_UNSUPPORTED)       \
    X(CKR_BUFFER_TOO_SMALL, "buffer too small", P11_C_DEVICE)                  \
    X(CKR_INFORMATION_SENSITIVE, "information sensitive", P11_C_INVALID)       \
    X(CKR_CRYPTOKI_NOT_INITIALIZED, "module not initialised", P11_C_CONFIG)    \
    X(CKR_CRYPTOKI_ALREADY_INITIALIZED, "module already initialised",          \
      P11_C_OK)                                                                \
    X(CKR_MUTEX_BAD, "mutex bad", P11_C_DEVICE)                                \
    X(CKR_MUTEX_NOT_LOCKED, "mutex not locked", P11_C_DEVICE)                  \
    X(CKR_FIPS_SELF_TEST_FAILED, "FIPS self-test failed", P11_C_DEVICE)        \
    X(CKR_LIBRARY_LOAD_FAILED, "module could not load a library",              \
      P11_C_CONFIG)                                                            \
    X(CKR_PIN_TOO_WEAK, "PIN too weak", P11_C_AUTH)                            \
    X(CKR_PUBLIC_KEY_INVALID, "public key invalid", P11_C_INVALID)             \
    X(CKR_FUNCTION_REJECTED, "function rejected", P11_C_UNSUPPORTED)           \
    X(P11R_MODULE_LOAD, "module could not be loaded", P11_C_CONFIG)            \
    X(P11R_MODULE_SYMBOL, "not a PKCS#11 module (no C_GetFunctionList)",       \
      P11_C_CONFIG)                                                            \
    X(P11R_MODULE_PATH, "module path must be absolute", P11_C_CONFIG)          \
    X(P11R_TOKEN_NOT_FOUND, "token not found", P11_C_NOT_FOUND)                \
    X(P11R_TOKEN_AMBIGUOUS, "several tokens match; set token_serial",          \
      P11_C_CONFIG)                                                            \
    X(P11R_KEY_NOT_FOUND, "key not found", P11_C_NOT_FOUND)                    \
    X(P11R_KEY_AMBIGUOUS, "several keys match; use id:HEX", P11_C_CONFIG)      \
    X(P11R_KEY_EXISTS, "a key with this label or id exists", P11_C_EXISTS)     \
    X(P11R_BAD_INPUT, "invalid input", P11_C_INVALID)                          \
    X(P11R_UNSUPPORTED_KEY, "key type not supported here", P11_C_UNSUPPORTED)  \
    X(P11R_UNSUPPORTED_MECH, "token lacks the mechanism", P11_C_UNSUPPORTED)   \
    X(P11R_ENCODING, "key encoding failed", P11_C_DEVICE)                      \
    X(P11R_BAD_BLOB, "wrapped blob malformed", P11_C_DECRYPT)                  \
    X(P11R_DECRYPT_FAILED, "decryption failed (tampered blob or wrong key)",   \
      P11_C_DECRYPT)

typedef struct {
    ck_rv_t rv;
    const char *name;
    const char *hint;
    p11_class cls;
} p11_rv_entry;

static const p11_rv_entry p11_rv_table[] = {
#define P11_X_ENTRY(code, hint, cls) {code, #code, hint, cls},
    P11_RV_TABLE(P11_X_ENTRY)
#undef P11_X_ENTRY
};

static const p11_rv_entry *
rv_lookup(ck_rv_t rv)
{
    for (size_t i = 0; i < sizeof p11_rv_table / sizeof p11_rv_table[0]; i++)
        if (p11_rv_table[i].rv == rv)
            return &p11_rv_table[i];
    return NULL;
}

const char *
p11_rv_name(ck_rv_t rv)
{
    const p11_rv_entry *e = rv_lookup(rv);

    return e ? e->name : "CKR_(unknown)";
}

p11_class
p11_rv_class(ck_rv_t rv)
{
    const p11_rv_entry *e = rv_lookup(rv);

    return e ? e->cls : P11_C_DEVICE;
}

ck_rv_t
p11_fail(p11_diag *d, const char *fn, ck_rv_t rv, const char *detail, ...)
{
    const p11_rv_entry *e = rv_lookup(rv);
    char extra[160] = "";

    if (!d)
        return rv;
    if (detail) {
        va_list ap;

        va_start(ap, detail);
        extra[0] = ':';
        extra[1] = ' ';
        vsnprintf(extra + 2, sizeof extra - 2, detail, ap);
        va_end(ap);
    }
    if (!e)
        snprintf(d->msg, sizeof d->msg,
                 "pkcs11: %s: CKR 0x%08lx (unknown code)%s", fn, rv, extra);
    else if (rv >= P11R_BASE)
        snprintf(d->msg, sizeof d->msg, "pkcs11: %s: %s%s", fn, e->hint, extra);
    else
        snprintf(d->msg, sizeof d->msg, "pkcs11: %s: %s (%s)%s", fn, e->name,
                 e->hint, extra);
    return rv;
}

/* ---- modules ------------------------------------------------------------ */

struct p11_module {
    char *path; /* realpath(), the registry key */
    void *dl;
    struct ck_function_list *f;
    unsigned refs;
    bool we_initialized; /* C_Finalize on the last release */
    p11_module *next;
};

/* The registry of loaded modules. PKCS#11 allows one C_Initialize per
 * process and module, so every user of a module must share one instance:
 * this is the one piece of global mutable state here, behind its lock. */
static pthread_mutex_t g_mod_mu = PTHREAD_MUTEX_INITIALIZER;
static p11_module *g_mods;

static ck_rv_t
module_load(const char *real, p11_module **out, p11_diag *d)
{
    struct ck_c_initialize_args args;
    ck_rv_t (*get_list)(struct ck_function_list **);
    p11_module *m = calloc(1, sizeof *m);
    ck_rv_t rv;

    if (!m || !(m->path = strdup(real))) {
        rv = p11_fail(d, "module", CKR_HOST_MEMORY, NULL);
        goto out;
    }
    /* RTLD_NODELETE: modules start threads and register handlers that
     * must not outlive their code; C_Finalize is the real shutdown. */
    m->dl = dlopen(real, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!m->dl) {
        const char *why = dlerror();

        rv = p11_fail(d, "dlopen", P11R_MODULE_LOAD, "%s", why ? why : real);
        goto out;
    }
    *(void **)&get_list = dlsym(m->dl, "C_GetFunctionList");
    if (!get_list) {
        rv = p11_fail(d, "dlsym", P11R_MODULE_SYMBOL, "%s", real);
        goto out;
    }
    rv = get_list(&m->f);
    if (rv != CKR_OK || !m->f) {
        rv =
            p11_fail(d, "C_GetFunctionList", rv ? rv : CKR_GENERAL_ERROR, NULL);
        goto out;
    }
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    rv = m->f->C_Initialize(&args);
    if (rv == CKR_OK)
        m->we_initialized = true;
    else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        rv = p11_fail(d, "C_Initialize", rv, NULL);
        goto out;
    }
    m->refs = 1;
    *out = m;
    m = NULL;
    rv = CKR_OK;
out:
    if (m) {
        if (m->dl)
            dlclose(m->dl);
        free(m->path);
        free(m);
    }
    return rv;
}

ck_rv_t
p11_module_acquire(const char *path, p11_module **out, p11_diag *d)
{
    char real[PATH_MAX];
    p11_module *m;
    ck_rv_t rv;

    if (!out)
        return p11_fail(d, "module", CKR_ARGUMENTS_BAD, NULL);
    *out = NULL;
    if (!path || path[0] != '/')
        return p11_fail(d, "module", P11R_MODULE_PATH, "\"%s\"",
                        path ? path : "(none)");
    if (!realpath(path, real))
        return p11_fail(d, "dlopen", P11R_MODULE_LOAD, "%s: %s", path,
                        strerror(errno));
    pthread_mutex_lock(&g_mod_mu);
    for (m = g_mods; m; m = m->next)
        if (strcmp(m->path, real) == 0)
            break;
    if (m) {
        m->refs++;
        *out = m;
        rv = CKR_OK;
    } else if ((rv = module_load(real, &m, d)) == CKR_OK) {
        m->next = g_mods;
        g_mods = m;
        *out = m;
    }
    pthread_mutex_unlock(&g_mod_mu);
    return rv;
}

void
p11_module_release(p11_module *m)
{
    p11_module **pp;

    if (!m)
        return;
    pthread_mutex_lock(&g_mod_mu);
    if (--m->refs == 0) {
        for (pp = &g_mods; *pp; pp = &(*pp)->next)
            if (*pp == m) {
                *pp = m->next;
                break;
            }
        if (m->we_initialized)
            (void)m->f->C_Finalize(NULL);
        dlclose(m->dl);
        free(m->path);
        free(m);
    }
    pthread_mutex_unlock(&g_mod_mu);
}

struct ck_function_list *
p11_module_functions(const p11_module *m)
{
    return m ? m->f : NULL;
}

/* ---- tokens ------------------------------------------------------------- */

#define P11_MAX_SLOTS 1024u /* sanity cap on what a module reports */

struct p11_token {
    p11_module *mod;
    struct ck_function_list *f;
    char label[33]; /* selectors, as configured */
    char serial[17];
    uint8_t *pin; /* kc_secure_alloc */
    size_t pin_len;
    ck_mechanism_type_t *mechs;
    size_t mech_count;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    ck_slot_id_t slot;
    bool logged_in;
    unsigned gen; /* bumped when every session must be dropped */
    ck_session_handle_t idle[P11_POOL_MAX];
    size_t idle_count;
    size_t open_count; /* idle + in use */
    size_t pool_max;   /* P11_POOL_MAX, lowered on CKR_SESSION_COUNT */
};

/* PKCS#11 text fields are blank-padded, not NUL-terminated. */
static bool
padded_eq(const unsigned char *field, size_t field_len, const char *want)
{
    size_t n = strlen(want);

    if (n > field_len)
        return false;
    if (memcmp(field, want, n) != 0)
        return false;
    for (size_t i = n; i < field_len; i++)
        if (field[i] != ' ' && field[i] != '\0')
            return false;
    return true;
}

/* "label \"x\"", "serial \"y\"" or both, for messages. */
static const char *
token_what(const p11_token *t, char *buf, size_t cap)
{
    if (t->label[0] && t->serial[0])
        snprintf(buf, cap, "label \"%s\" serial \"%s\"", t->label, t->serial);
    else if (t->label[0])
        snprintf(buf, cap, "label \"%s\"", t->label);
    else
        snprintf(buf, cap, "serial \"%s\"", t->serial);
    return buf;
}

/* Find the slot whose token matches the selectors (called with t->mu held
 * or before the token is shared). */
static ck_rv_t
token_find_slot(p11_token *t, ck_slot_id_t *slot, p11_diag *d)
{
    ck_slot_id_t *slots = NULL;
    unsigned long n = 0, found = 0;
    char what[80];
    ck_rv_t rv;

    /* Tokens may appear between the two calls: retry a few times. */
    for (int tries = 0; tries < 3; tries++) {
        rv = t->f->C_GetSlotList(CK_TRUE, NULL, &n);
        if (rv != CKR_OK)
            return p11_fail(d, "C_GetSlotList", rv, NULL);
        if (n == 0 || n > P11_MAX_SLOTS)
            break;
        free(slots);
        if (!(slots = calloc(n, sizeof *slots)))
            return p11_fail(d, "C_GetSlotList", CKR_HOST_MEMORY, NULL);
        rv = t->f->C_GetSlotList(CK_TRUE, slots, &n);
        if (rv != CKR_BUFFER_TOO_SMALL)
            break;
    }
    if (rv != CKR_OK) {
        rv = p11_fail(d, "C_GetSlotList", rv, NULL);
        goto out;
    }
    if (n > P11_MAX_SLOTS) {
        rv = p11_fail(d, "C_GetSlotList", CKR_GENERAL_ERROR,
                      "module reports %lu slots", n);
        goto out;
    }
    for (unsigned long i = 0; i < n; i++) {
        struct ck_token_info ti;

        if (t->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue; /* removed meanwhile, or not a token we can use */
        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        if (t->label[0] && !padded_eq(ti.label, sizeof ti.label, t->label))
            continue;
        if (t->serial[0] &&
            !padded_eq(ti.serial_number, sizeof ti.serial_number, t->serial))
            continue;
        if (found++ == 0)
            *slot = slots[i];
    }
    if (found == 0)
        rv = p11_fail(d, "C_GetTokenInfo", P11R_TOKEN_NOT_FOUND, "%s",
                      token_what(t, what, sizeof what));
    else if (found > 1)
        rv = p11_fail(d, "C_GetTokenInfo", P11R_TOKEN_AMBIGUOUS, "%s",
                      token_what(t, what, sizeof what));
    else
        rv = CKR_OK;
out:
    free(slots);
    return rv;
}

static ck_rv_t
token_load_mechs(p11_token *t, p11_diag *d)
{
    unsigned long n = 0;
    ck_rv_t rv;

    rv = t->f->C_GetMechanismList(t->slot, NULL, &n);
    if (rv != CKR_OK)
        return p11_fail(d, "C_GetMechanismList", rv, NULL);
    if (n == 0)
        return CKR_OK;
    t->mechs = calloc(n, sizeof *t->mechs);
    if (!t->mechs)
        return p11_fail(d, "C_GetMechanismList", CKR_HOST_MEMORY, NULL);
    rv = t->f->C_GetMechanismList(t->slot, t->mechs, &n);
    if (rv != CKR_OK)
        return p11_fail(d, "C_GetMechanismList", rv, NULL);
    t->mech_count = n;
    return CKR_OK;
}

/* Open a session and make sure the token is logged in. t->mu held. */
static ck_rv_t
session_open_locked(p11_token *t, ck_session_handle_t *s, p11_diag *d)
{
    ck_rv_t rv;

    rv = t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                             NULL, s);
    if (rv != CKR_OK)
        return p11_fail(d, "C_OpenSession", rv, NULL);
    t->open_count++;
    return CKR_OK;
}

/* Login state is per token and application, not per session: log in
 * through any session when we know (or learnt) that we are logged out. */
static ck_rv_t
login_locked(p11_token *t, ck_session_handle_t s, p11_diag *d)
{
    ck_rv_t rv;

    if (t->logged_in)
        return CKR_OK;
    rv = t->f->C_Login(s, CKU_USER, t->pin, t->pin_len);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
        return p11_fail(d, "C_Login", rv, NULL);
    t->logged_in = true;
    return CKR_OK;
}

static void
session_drop_locked(p11_token *t, ck_session_handle_t s)
{
    (void)t->f->C_CloseSession(s);
    if (t->open_count > 0)
        t->open_count--;
    /* PKCS#11 5.6 (C_CloseSession): closing the application's last
     * session logs the user out. */
    if (t->open_count == 0)
        t->logged_in = false;
}

/* May a session be reused after `op` returned rv? Failures of these
 * classes end the operation they belong to (PKCS#11 5.2) and leave the
 * session healthy; anything else (lost session, device trouble, our own
 * failure between an Init and its final call) retires the session. */
static bool
session_reusable(ck_rv_t rv)
{
    switch (p11_rv_class(rv)) {
    case P11_C_OK:
    case P11_C_NOT_FOUND:
    case P11_C_EXISTS:
    case P11_C_INVALID:
    case P11_C_UNSUPPORTED:
    case P11_C_BAD_SIG:
    case P11_C_DECRYPT:
        return true;
    default:
        return false;
    }
}

static ck_rv_t
session_get(p11_token *t, ck_session_handle_t *s, unsigned *gen, p11_diag *d)
{
    ck_rv_t rv = CKR_OK;

    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (t->idle_count == 0 && t->open_count >= t->pool_max)
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->idle_count > 0) {
            *s = t->idle[--t->idle_count];
            break;
        }
        rv = session_open_locked(t, s, d);
        if (rv == CKR_OK)
            break;
        /* A token allowing fewer sessions than the pool (YubiHSM 2, busy
         * network HSMs): make do with the sessions we already have. */
        if (rv != CKR_SESSION_COUNT || t->open_count == 0)
            goto out;
        t->pool_max = t->open_count;
    }
    *gen = t->gen;
    if ((rv = login_locked(t, *s, d)) != CKR_OK) {
        session_drop_locked(t, *s);
        pthread_cond_signal(&t->cv);
    }
out:
    pthread_mutex_unlock(&t->mu);
    return rv;
}

static void
session_put(p11_token *t, ck_session_handle_t s, unsigned gen, bool bad)
{
    pthread_mutex_lock(&t->mu);
    if (bad || gen != t->gen || t->idle_count >= P11_POOL_MAX) {
        session_drop_locked(t, s);
    } else {
        t->idle[t->idle_count++] = s;
    }
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* After a session-class failure: forget the login; when the token itself
 * went away, drop every idle session and look the token up again (its
 * slot number may have changed on reinsertion). */
static void
token_reset(p11_token *t, ck_rv_t why)
{
    ck_slot_id_t slot;

    pthread_mutex_lock(&t->mu);
    t->logged_in = false;
    if (why != CKR_USER_NOT_LOGGED_IN) {
        t->gen++;
        while (t->idle_count > 0)
            session_drop_locked(t, t->idle[--t->idle_count]);
        if ((why == CKR_DEVICE_REMOVED || why == CKR_TOKEN_NOT_PRESENT) &&
            token_find_slot(t, &slot, NULL) == CKR_OK)
            t->slot = slot;
    }
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

ck_rv_t
p11_token_run(p11_token *t, p11_op_fn op, void *ctx, p11_diag *d)
{
    ck_session_handle_t s;
    unsigned gen;
    ck_rv_t rv = CKR_GENERAL_ERROR;

    if (!t || !op)
        return p11_fail(d, "session", CKR_ARGUMENTS_BAD, NULL);
    for (int attempt = 0; attempt < 2; attempt++) {
        rv = session_get(t, &s, &gen, d);
        if (rv == CKR_OK) {
            rv = op(t, s, ctx, d);
            session_put(t, s, gen, !session_reusable(rv));
        }
        if (p11_rv_class(rv) != P11_C_SESSION)
            break;
        token_reset(t, rv);
    }
    return rv;
}

static ck_rv_t
token_login_first(p11_token *t, p11_diag *d)
{
    ck_session_handle_t s;
    ck_rv_t rv;

    pthread_mutex_lock(&t->mu);
    rv = session_open_locked(t, &s, d);
    if (rv == CKR_OK) {
        rv = login_locked(t, s, d);
        if (rv == CKR_OK) {
            t->idle[t->idle_count++] = s;
        } else {
            session_drop_locked(t, s);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return rv;
}

ck_rv_t
p11_token_open(p11_module *m, const p11_token_sel *sel, const uint8_t *pin,
               size_t pin_len, p11_token **out, p11_diag *d)
{
    p11_token *t = NULL;
    ck_rv_t rv;

    if (!out)
        return p11_fail(d, "token", CKR_ARGUMENTS_BAD, NULL);
    *out = NULL;
    if (!m || !sel || (!pin && pin_len) || pin_len > 256)
        return p11_fail(d, "token", CKR_ARGUMENTS_BAD, NULL);
    if ((!sel->label || !*sel->label) && (!sel->serial || !*sel->serial))
        return p11_fail(d, "token", P11R_BAD_INPUT,
                        "token_label or token_serial is required");
    if ((sel->label && strlen(sel->label) > 32) ||
        (sel->serial && strlen(sel->serial) > 16))
        return p11_fail(d, "token", P11R_BAD_INPUT,
                        "token label over 32 or serial over 16 bytes");
    if (!(t = calloc(1, sizeof *t)) ||
        !(t->pin = kc_secure_alloc(pin_len + 1))) {
        free(t);
        return p11_fail(d, "token", CKR_HOST_MEMORY, NULL);
    }
    if (pin_len)
        memcpy(t->pin, pin, pin_len);
    t->pin_len = pin_len;
    t->pool_max = P11_POOL_MAX;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    kc_strlcpy(t->label, sel->label ? sel->label : "", sizeof t->label);
    kc_strlcpy(t->serial, sel->serial ? sel->serial : "", sizeof t->serial);
    pthread_mutex_lock(&g_mod_mu);
    m->refs++;
    pthread_mutex_unlock(&g_mod_mu);
    t->mod = m;
    t->f = m->f;
    if ((rv = token_find_slot(t, &t->slot, d)) != CKR_OK ||
        (rv = token_load_mechs(t, d)) != CKR_OK ||
        (rv = token_login_first(t, d)) != CKR_OK)
        goto out;
    *out = t;
    t = NULL;
out:
    p11_token_close(t);
    return rv;
}

void
p11_token_close(p11_token *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    while (t->idle_count > 0)
        session_drop_locked(t, t->idle[--t->idle_count]);
    pthread_mutex_unlock(&t->mu);
    /* Logging out is per application: other users of the same module and
     * token keep their own sessions, so we only close ours. */
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    kc_secure_free(t->pin);
    free(t->mechs);
    p11_module_release(t->mod);
    free(t);
}

struct ck_function_list *
p11_token_functions(const p11_token *t)
{
    return t ? t->f : NULL;
}

ck_slot_id_t
p11_token_slot(p11_token *t)
{
    ck_slot_id_t s;

    pthread_mutex_lock(&t->mu);
    s = t->slot;
    pthread_mutex_unlock(&t->mu);
    return s;
}

bool
p11_token_has_mech(const p11_token *t, ck_mechanism_type_t mech)
{
    for (size_t i = 0; t && i < t->mech_count; i++)
        if (t->mechs[i] == mech)
            return true;
    return false;
}

size_t
p11_token_session_count(p11_token *t)
{
    size_t n;

    pthread_mutex_lock(&t->mu);
    n = t->open_count;
    pthread_mutex_unlock(&t->mu);
    return n;
}
