/* SPDX-License-Identifier: Apache-2.0 */
/* RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) decoding on the host, for
 * tokens whose CKM_RSA_PKCS_OAEP only takes SHA-1 (SoftHSM2 2.6 does): the
 * token performs the raw private-key operation (CKM_RSA_X_509) and the
 * encoded message is checked here, in locked memory.
 *
 * OpenSSL 3 has no non-deprecated API for OAEP decoding of a buffer that
 * was not produced by an OpenSSL key; RSA_padding_check_PKCS1_OAEP_mgf1 is
 * the constant-time implementation OpenSSL itself uses (RFC 8017 section
 * 7.1.2 step 3, with the implicit-rejection care against Manger's attack),
 * so this one file opts out of the deprecation warnings. */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "p11_oaep.h"

#include <limits.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

int
p11_oaep_sha256_decode(const uint8_t *em, size_t em_len, size_t mod_len,
                       uint8_t *out, size_t out_cap, size_t *out_len)
{
    int n;

    *out_len = 0;
    if (!em || !out || em_len == 0 || em_len > mod_len || mod_len > 2048 ||
        out_cap > INT_MAX || mod_len < 2 * 32 + 2)
        return -1;
    n = RSA_padding_check_PKCS1_OAEP_mgf1(out, (int)out_cap, em, (int)em_len,
                                          (int)mod_len, NULL, 0, EVP_sha256(),
                                          EVP_sha256());
    if (n < 0) {
        ERR_clear_error();
        return -1;
    }
    *out_len = (size_t)n;
    return 0;
}
