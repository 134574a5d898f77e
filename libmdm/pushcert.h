/*
 * pushcert: the APNs MDM push certificates kept in the state directory,
 * STATE/push/TOPIC.pem (0644) beside TOPIC.key (0600), shared by
 * `mdm-certs push-import` and mdm-serve's PUT /v1/pushcert so both check
 * and store a certificate the same way.  The push engine (push.h) reads
 * them afresh for each run, so a stored renewal takes effect at the next
 * push without a restart.
 *
 * Invariants: a topic is a safe file name starting with
 * MDM_PUSHCERT_TOPIC_PREFIX; the key is written before the certificate,
 * so a certificate is never visible without its key.
 */
#ifndef MDM_PUSHCERT_H
#define MDM_PUSHCERT_H

#include <stddef.h>

#include <openssl/x509.h>

#include "err.h"
#include "state.h"

#define MDM_PUSHCERT_TOPIC_PREFIX "com.apple.mgmt."
#define MDM_PUSHCERT_TOPIC_MAX	256

/*
 * The topic of an APNs MDM push certificate: its subject UID, which
 * must start with MDM_PUSHCERT_TOPIC_PREFIX and be a safe file name.
 * MDM_E_DATA otherwise, saying why.
 */
int mdm_pushcert_topic(X509 *cert, char *topic, size_t topiclen,
    struct mdm_err *e);

/*
 * The first PEM private key block in the NUL-terminated text pem (any
 * "-----BEGIN ... PRIVATE KEY-----"), or NULL; borrowed from pem.
 */
const char *mdm_pushcert_pem_key(const char *pem);

/*
 * What the state holds besides topic: *known is 1 when it has topic's
 * certificate already, and other gets another topic it has ("" if none).
 */
int mdm_pushcert_other_topic(struct mdm_state *st, const char *topic,
    int *known, char *other, size_t otherlen, struct mdm_err *e);

/*
 * Stores cert and key (borrowed) as the certificate of topic (from
 * mdm_pushcert_topic), replacing one there.  The key must belong to the
 * certificate (MDM_E_DATA).
 */
int mdm_pushcert_store(struct mdm_state *st, const char *topic, X509 *cert,
    EVP_PKEY *key, struct mdm_err *e);

#endif
