/* SPDX-License-Identifier: Apache-2.0 */
/* Threshold signer wrapper and the attesting signer (threshold.h).
 * Attested share wire format: u32 big-endian share length || share ||
 * attestation, attestation = HSM signature over the share bytes. */
#include <stdlib.h>
#include <string.h>

#include <hsm/threshold.h>

#include "hsm_int.h"
#include "kc.h"

struct hsm_threshold_signer {
    const hsm_threshold_signer_ops *ops;
    void *self;
};

hsm_err
hsm_threshold_signer_new(const hsm_threshold_signer_ops *ops, void *self,
                         hsm_threshold_signer **out)
{
    if (!ops || !out || !ops->party_index || !ops->public_share ||
        !ops->nonce_gen || !ops->sign_share)
        return HSM_EINVAL;
    if (!(*out = calloc(1, sizeof **out)))
        return HSM_ENOMEM;
    (*out)->ops = ops;
    (*out)->self = self;
    return HSM_OK;
}

void
hsm_threshold_signer_free(hsm_threshold_signer *ts)
{
    if (!ts)
        return;
    if (ts->ops->destroy)
        ts->ops->destroy(ts->self);
    free(ts);
}

uint32_t
hsm_threshold_signer_party_index(const hsm_threshold_signer *ts)
{
    return ts ? ts->ops->party_index(ts->self) : 0;
}

hsm_err
hsm_threshold_signer_public_share(const hsm_threshold_signer *ts, uint8_t **out,
                                  size_t *out_len)
{
    if (!ts || !out || !out_len)
        return HSM_EINVAL;
    *out = NULL;
    *out_len = 0;
    return ts->ops->public_share(ts->self, out, out_len);
}

hsm_err
hsm_threshold_signer_nonce_gen(hsm_threshold_signer *ts, const uint8_t *session,
                               size_t session_len, uint8_t **commitment,
                               size_t *commitment_len)
{
    if (!ts || !session || session_len == 0 || !commitment || !commitment_len)
        return HSM_EINVAL;
    *commitment = NULL;
    *commitment_len = 0;
    return ts->ops->nonce_gen(ts->self, session, session_len, commitment,
                              commitment_len);
}

hsm_err
hsm_threshold_signer_sign_share(hsm_threshold_signer *ts,
                                const uint8_t *session, size_t session_len,
                                const uint8_t *msg, size_t msg_len,
                                const uint8_t *commitments,
                                size_t commitments_len, uint8_t **share,
                                size_t *share_len)
{
    if (!ts || !session || session_len == 0 || (!msg && msg_len) ||
        (!commitments && commitments_len) || !share || !share_len)
        return HSM_EINVAL;
    *share = NULL;
    *share_len = 0;
    if (msg_len > HSM_MAX_MESSAGE)
        return HSM_ETOOBIG;
    return ts->ops->sign_share(ts->self, session, session_len,
                               msg ? msg : (const uint8_t *)"", msg_len,
                               commitments ? commitments : (const uint8_t *)"",
                               commitments_len, share, share_len);
}

/* ---- wire format --------------------------------------------------- */

hsm_err
hsm_attested_share_encode(const uint8_t *share, size_t share_len,
                          const uint8_t *att, size_t att_len, uint8_t **wire,
                          size_t *wire_len)
{
    uint8_t *w;

    if (!share || share_len == 0 || !att || att_len == 0 || !wire || !wire_len)
        return HSM_EINVAL;
    *wire = NULL;
    *wire_len = 0;
    if (share_len > UINT32_MAX || att_len > SIZE_MAX - 4 - share_len)
        return HSM_ETOOBIG;
    if (!(w = malloc(4 + share_len + att_len)))
        return HSM_ENOMEM;
    w[0] = (uint8_t)(share_len >> 24);
    w[1] = (uint8_t)(share_len >> 16);
    w[2] = (uint8_t)(share_len >> 8);
    w[3] = (uint8_t)share_len;
    memcpy(w + 4, share, share_len);
    memcpy(w + 4 + share_len, att, att_len);
    *wire = w;
    *wire_len = 4 + share_len + att_len;
    return HSM_OK;
}

hsm_err
hsm_attested_share_parse(const uint8_t *wire, size_t wire_len,
                         const uint8_t **share, size_t *share_len,
                         const uint8_t **att, size_t *att_len)
{
    size_t n;

    if (!share || !share_len || !att || !att_len)
        return HSM_EINVAL;
    *share = *att = NULL;
    *share_len = *att_len = 0;
    if (!wire || wire_len < 5)
        return HSM_EMALFORMED;
    n = ((size_t)wire[0] << 24) | ((size_t)wire[1] << 16) |
        ((size_t)wire[2] << 8) | wire[3];
    /* share must be non-empty and complete, attestation non-empty */
    if (n == 0 || n > wire_len - 4 || wire_len - 4 - n == 0)
        return HSM_EMALFORMED;
    *share = wire + 4;
    *share_len = n;
    *att = wire + 4 + n;
    *att_len = wire_len - 4 - n;
    return HSM_OK;
}

hsm_err
hsm_attested_share_verify(hsm_signer *hsm, const char *key_id,
                          const uint8_t *wire, size_t wire_len, bool *valid)
{
    const uint8_t *share, *att;
    size_t share_len, att_len;
    hsm_err rc;

    if (!hsm || !valid)
        return HSM_EINVAL;
    *valid = false;
    rc = hsm_attested_share_parse(wire, wire_len, &share, &share_len, &att,
                                  &att_len);
    if (rc != HSM_OK)
        return rc;
    return hsm_signer_verify(hsm, key_id, share, share_len, att, att_len,
                             valid);
}

/* ---- attesting signer ---------------------------------------------- */

struct hsm_attesting_signer {
    hsm_threshold_signer *ts;
    hsm_signer *hsm;
    char *key_id; /* NULL: the HSM signer's configured key */
};

hsm_err
hsm_attesting_signer_new(hsm_threshold_signer *ts, hsm_signer *hsm,
                         const char *hsm_key_id, hsm_attesting_signer **out)
{
    hsm_attesting_signer *a = NULL;

    if (out)
        *out = NULL;
    if (!ts || !hsm || !out || (hsm_key_id && !hsm_key_id_valid(hsm_key_id))) {
        hsm_threshold_signer_free(ts);
        return HSM_EINVAL;
    }
    if (!(a = calloc(1, sizeof *a)) ||
        (hsm_key_id && !(a->key_id = strdup(hsm_key_id)))) {
        free(a);
        hsm_threshold_signer_free(ts);
        return HSM_ENOMEM;
    }
    a->ts = ts;
    a->hsm = hsm;
    *out = a;
    return HSM_OK;
}

void
hsm_attesting_signer_free(hsm_attesting_signer *a)
{
    if (!a)
        return;
    hsm_threshold_signer_free(a->ts);
    free(a->key_id);
    free(a);
}

uint32_t
hsm_attesting_signer_party_index(const hsm_attesting_signer *a)
{
    return a ? hsm_threshold_signer_party_index(a->ts) : 0;
}

hsm_err
hsm_attesting_signer_public_share(const hsm_attesting_signer *a, uint8_t **out,
                                  size_t *out_len)
{
    if (!a)
        return HSM_EINVAL;
    return hsm_threshold_signer_public_share(a->ts, out, out_len);
}

hsm_err
hsm_attesting_signer_nonce_gen(hsm_attesting_signer *a, const uint8_t *session,
                               size_t session_len, uint8_t **commitment,
                               size_t *commitment_len)
{
    if (!a)
        return HSM_EINVAL;
    return hsm_threshold_signer_nonce_gen(a->ts, session, session_len,
                                          commitment, commitment_len);
}

hsm_err
hsm_attesting_signer_sign_share(hsm_attesting_signer *a, const uint8_t *session,
                                size_t session_len, const uint8_t *msg,
                                size_t msg_len, const uint8_t *commitments,
                                size_t commitments_len, uint8_t **wire,
                                size_t *wire_len)
{
    uint8_t *share = NULL, *att = NULL;
    size_t share_len = 0, att_len = 0;
    hsm_err rc;

    if (!a || !wire || !wire_len)
        return HSM_EINVAL;
    *wire = NULL;
    *wire_len = 0;
    rc = hsm_threshold_signer_sign_share(a->ts, session, session_len, msg,
                                         msg_len, commitments, commitments_len,
                                         &share, &share_len);
    if (rc != HSM_OK)
        return rc;
    if (share_len == 0) {
        rc = HSM_EINTERNAL;
        goto out;
    }
    rc = hsm_signer_sign(a->hsm, a->key_id, share, share_len, &att, &att_len);
    if (rc != HSM_OK)
        goto out;
    rc = hsm_attested_share_encode(share, share_len, att, att_len, wire,
                                   wire_len);
out:
    free(share);
    free(att);
    return rc;
}

hsm_err
hsm_attesting_signer_verify(hsm_attesting_signer *a, const uint8_t *wire,
                            size_t wire_len, bool *valid)
{
    if (!a)
        return HSM_EINVAL;
    return hsm_attested_share_verify(a->hsm, a->key_id, wire, wire_len, valid);
}
