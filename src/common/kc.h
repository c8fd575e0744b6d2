/* SPDX-License-Identifier: Apache-2.0 */
/* kc: helpers shared by every part of the project (never installed).
 *
 * THREAD SAFETY: every function here is safe to call from any thread;
 * kc_init() runs its work once (pthread_once) and is implied by the
 * allocation and random functions.
 *
 * Secret handling conventions used project-wide:
 *   - long-lived secrets: kc_secure_alloc()/kc_secure_free() (libsodium
 *     guarded, mlocked, MADV_DONTDUMP pages, wiped on free);
 *   - short-lived secrets on the stack: kc_wipe() at the function's `out:`;
 *   - heap buffers that held plaintext: kc_free_wipe(p, len).
 */
#ifndef KC_H
#define KC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Initialise libsodium once. Returns 0, or -1 if the library cannot start
 * (no entropy source). Safe to call many times. */
int kc_init(void);

/* Guarded, locked allocation for secrets. Returns NULL on failure.
 * kc_secure_free() wipes and frees; NULL is a no-op. */
void *kc_secure_alloc(size_t n);
void kc_secure_free(void *p);

/* Wipe `n` bytes in a way the compiler cannot elide. */
void kc_wipe(void *p, size_t n);
/* Wipe then free() a heap buffer that held secret data; NULL is a no-op. */
void kc_free_wipe(void *p, size_t n);

/* Constant-time equality of two buffers of the same length. */
bool kc_ct_eq(const void *a, const void *b, size_t n);

/* Fill `buf` with `n` bytes from the OS CSPRNG. Never fails once kc_init()
 * succeeded (aborts otherwise, as libsodium does). */
void kc_random(void *buf, size_t n);

/* ---- hex and base64 --------------------------------------------------- */

/* Lower-case hex of `in` into `out` (needs 2*in_len+1 bytes, NUL added).
 * Returns 0, or -1 if out_cap is too small. */
int kc_hex_encode(const uint8_t *in, size_t in_len, char *out, size_t out_cap);
/* Decode `hex_len` hex digits (either case, no separators). Returns 0, or -1
 * on odd length, a non-hex digit or too small an output. */
int kc_hex_decode(const char *hex, size_t hex_len, uint8_t *out,
                  size_t out_cap, size_t *out_len);

typedef enum {
    KC_B64_STD,    /* RFC 4648 section 4, with '=' padding */
    KC_B64_URL,    /* RFC 4648 section 5, no padding on output; decoding
                    * accepts padded or unpadded input */
} kc_b64_variant;

/* Allocated, NUL-terminated base64 of `in`; caller frees with free() (or
 * kc_free_wipe when `in` was secret). NULL on allocation failure. */
char *kc_b64_encode(const uint8_t *in, size_t in_len, kc_b64_variant v);
/* Decode base64 into a newly allocated buffer (free with free()/kc_free_wipe).
 * Strict: rejects characters outside the alphabet, bad padding, and
 * trailing garbage. Returns 0 or -1. An empty input decodes to a 1-byte
 * allocation with *out_len 0. */
int kc_b64_decode(const char *in, size_t in_len, kc_b64_variant v,
                  uint8_t **out, size_t *out_len);

/* ---- files ------------------------------------------------------------ */

/* Read a whole file of at most `max` bytes into a new buffer (free()).
 * With `secure`, the buffer comes from kc_secure_alloc() instead and must be
 * released with kc_secure_free(). One extra NUL byte is always appended
 * (not counted in *out_len). Returns 0, or -errno (-EFBIG when larger than
 * `max`). */
int kc_read_file(const char *path, size_t max, bool secure, uint8_t **out,
                 size_t *out_len);
/* Read all of an open file descriptor (stdin, say) the same way. */
int kc_read_fd(int fd, size_t max, bool secure, uint8_t **out,
               size_t *out_len);

/* Write `len` bytes to `path` atomically: a temporary file in the same
 * directory created with `mode`, fsync, rename over `path`, fsync of the
 * directory. Returns 0 or -errno; on failure `path` is unchanged. */
int kc_write_file_atomic(const char *path, const uint8_t *data, size_t len,
                         mode_t mode);

/* Recursively remove a directory tree (used by tests and restore). */
int kc_rmtree(const char *path);

/* ---- passwords from the operator (CLIs) ------------------------------ */

typedef enum {
    KC_PW_OK = 0,
    KC_PW_NONE,  /* no file given, variable unset, and no terminal */
    KC_PW_EMPTY, /* the source held an empty password */
    KC_PW_EIO,   /* the file could not be read (errno kept in *err) */
    KC_PW_EPERM, /* the file is readable by group or others */
    KC_PW_ENOMEM,
} kc_pw_status;

/* Get an operator password: from `file` if non-NULL (one trailing "\n" or
 * "\r\n" stripped; refused if group/other can read it), else from the
 * environment variable `env_name` if set, else by a no-echo prompt on the
 * controlling terminal (when `prompt` is non-NULL). The result is a
 * NUL-terminated string in secure memory; release with kc_secure_free().
 * `*err` (may be NULL) receives errno for KC_PW_EIO and the file's mode
 * for KC_PW_EPERM. */
kc_pw_status kc_password_get(const char *file, const char *env_name,
                             const char *prompt, char **pw, size_t *pw_len,
                             int *err);

/* ---- process hygiene (servers and CLIs) ------------------------------- */

/* PR_SET_DUMPABLE 0, RLIMIT_CORE 0, umask(077). Returns 0 or -1. */
int kc_harden_process(void);

/* ---- small string helpers --------------------------------------------- */

/* Parse a whole decimal string into an unsigned 64-bit value; rejects
 * signs, blanks, empty strings, trailing garbage and overflow. */
int kc_parse_u64(const char *s, uint64_t *out);

/* Bounded, always NUL-terminating copy; returns -1 if truncated. */
int kc_strlcpy(char *dst, const char *src, size_t dst_cap);

#endif
