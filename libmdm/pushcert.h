/*
 * pushcert: the APNs MDM push certificates kept in the state directory,
 * STATE/push/TOPIC.pem (0644) beside TOPIC.key (0600), and the one rule
 * for what a topic may be.  `mdm-certs push-import` and mdm-serve's PUT
 * /v1/pushcert check and store a certificate through it, the enrollment
 * profile (enroll.h) picks its topic from it and the push engine
 * (push.h) checks a device's topic with it before reading the files.
 * The push engine reads them afresh for each run, so a stored renewal
 * takes effect at the next push without a restart.
 *
 * Invariants: a topic starts with MDM_PUSHCERT_TOPIC_PREFIX and is a
 * plain file name (mdm_pushcert_topic_check); the key is written before
 * the certificate, so a certificate is never visible without its key.
 */
#ifndef MDM_PUSHCERT_H
#define MDM_PUSHCERT_H

#include <stddef.h>

#include <openssl/x509.h>

#include "err.h"
#include "state.h"

/* Every push topic starts so (protocol.md section 4). */
#define MDM_PUSHCERT_TOPIC_PREFIX	"com.apple.mgmt."
/* The longest topic: TOPIC.pem stays well inside any file name limit. */
#define MDM_PUSHCERT_TOPIC_LEN		200
/* A buffer of this size holds any topic and its NUL. */
#define MDM_PUSHCERT_TOPIC_MAX		256

/*
 * 0 if topic can name a push certificate: it starts with
 * MDM_PUSHCERT_TOPIC_PREFIX, is at most MDM_PUSHCERT_TOPIC_LEN bytes and
 * holds only letters, digits, '.', '-' and '_', so it is a plain file
 * name in STATE/push.  Else -1 with MDM_E_USAGE saying why.
 */
int mdm_pushcert_topic_check(const char *topic, struct mdm_err *e);

/*
 * The topic of an APNs MDM push certificate: its subject UID, which
 * must pass mdm_pushcert_topic_check, NUL-terminated in topic (a
 * topiclen of MDM_PUSHCERT_TOPIC_MAX is enough).  MDM_E_DATA otherwise,
 * saying why.
 */
int mdm_pushcert_topic(X509 *cert, char *topic, size_t topiclen,
    struct mdm_err *e);

/*
 * The first PEM private key block in the NUL-terminated text pem (any
 * "-----BEGIN ... PRIVATE KEY-----"), or NULL; borrowed from pem.
 */
const char *mdm_pushcert_pem_key(const char *pem);

/*
 * Calls fn(topic, arg, e) for each push certificate the state holds
 * (STATE/push/TOPIC.pem with a topic mdm_pushcert_topic_check accepts;
 * other files are not ours), in strcmp order; topic is borrowed for the
 * call.  fn returns 0 to go on, or -1 with e filled to stop, and then
 * this returns -1 too.  No push directory yet: no calls.
 */
int mdm_pushcert_foreach(struct mdm_state *st,
    int (*fn)(const char *topic, void *arg, struct mdm_err *e), void *arg,
    struct mdm_err *e);

/*
 * The stored certificate of topic, STATE/push/TOPIC.pem; *out owned.
 * MDM_E_USAGE for a topic mdm_pushcert_topic_check refuses, else as
 * mdm_x509_load_cert (a missing or unreadable file).
 */
int mdm_pushcert_load(struct mdm_state *st, const char *topic, X509 **out,
    struct mdm_err *e);

/*
 * What the state holds besides topic: *known is 1 when it has topic's
 * certificate already, and other (otherlen >= MDM_PUSHCERT_TOPIC_MAX)
 * gets the first other topic it has, or "" if none.
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
