/*
 * devauth: which device is asking.  A device proves its identity on every
 * check-in and command report with the certificate its enrollment profile
 * gave it (protocol.md section 3), which reaches mdm-serve in one of three
 * ways: as the TLS client certificate, inside the Mdm-Signature header (a
 * detached CMS SignedData over the exact request body), or in a header a
 * TLS-terminating proxy set.  This module turns the last two into an X509
 * and owns the one check every form then goes through: the certificate
 * must chain to our SCEP CA, and its hash (lowercase hex SHA-256 of the
 * DER, as x509.h defines it) is what binds it to an enrollment.
 *
 * Invariants: header values are capped before they are decoded; a
 * certificate is returned only when it parsed whole, with nothing after
 * it; the signature form only ever proves the signer holds the key (the
 * chain is mdm_devauth_verify's job, so no caller can forget it by
 * picking one form over another).  Nothing here prints or exits.
 */
#ifndef MDM_DEVAUTH_H
#define MDM_DEVAUTH_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "err.h"

/* Longest header values accepted, before decoding. */
#define MDM_DEVAUTH_CAP_SIGNATURE	(64u << 10)
#define MDM_DEVAUTH_CAP_HEADER		(16u << 10)

/* Where the identity came from, for logs and metrics. */
enum mdm_devauth_source {
	MDM_DEVAUTH_NONE = 0,
	MDM_DEVAUTH_TLS,	/* the TLS client certificate */
	MDM_DEVAUTH_SIGNATURE,	/* the Mdm-Signature header */
	MDM_DEVAUTH_HEADER,	/* a header set by a TLS-terminating proxy */
};

/* "tls", "signature", "header", or "none" (also for unknown values);
   static. */
const char *mdm_devauth_source_name(enum mdm_devauth_source s);

/*
 * The Mdm-Signature header: value is the header value (base64 of a
 * DER/BER CMS SignedData, detached, signer cert included; whitespace
 * inside the base64 is skipped), body the exact request body (NULL with
 * len 0 for an empty one).  Checks the one signature over body, with no
 * chain or time check.  *out is the signer certificate, owned; NULL on
 * failure.  Errors: MDM_E_NOINPUT value NULL, empty or only whitespace
 * (no header); MDM_E_TOOBIG value longer than
 * MDM_DEVAUTH_CAP_SIGNATURE; MDM_E_DATA not base64, not a SignedData, or
 * a SignedData carrying content of its own (not detached); MDM_E_CRYPTO
 * the signature does not verify over body (a tampered body) or the signer
 * cert is missing.
 */
int mdm_devauth_from_signature(const char *value, const void *body,
    size_t len, X509 **out, struct mdm_err *e);

/*
 * What a server keeps between requests so a device that checks in again
 * costs less: the certificates parsed out of its Mdm-Signature (OpenSSL
 * 3.0 spends some 90 us building a key decoder for every certificate it
 * parses, more than the signature check), and when each passed the chain
 * check.  Entries are keyed by the SHA-256 of the certificate's DER, so a
 * hit is the very same certificate; a chain check is reused for at most
 * MDM_DEVAUTH_VERIFIED_FOR seconds and never past the certificate's
 * notAfter.  One cache serves one thread and one CA.
 */
#define MDM_DEVAUTH_CACHE_SLOTS		4096
#define MDM_DEVAUTH_VERIFIED_FOR	300

struct mdm_devauth_cache;

/* *out owned: mdm_devauth_cache_free. */
int mdm_devauth_cache_new(struct mdm_devauth_cache **out, struct mdm_err *e);
void mdm_devauth_cache_free(struct mdm_devauth_cache *c);

/*
 * mdm_devauth_from_signature with the signature's certificates taken
 * from cache when it has them (cache may be NULL).  A message with
 * indefinite lengths around its certificates is verified as it is,
 * uncached.
 */
int mdm_devauth_from_signature_cached(struct mdm_devauth_cache *cache,
    const char *value, const void *body, size_t len, X509 **out,
    struct mdm_err *e);

/*
 * mdm_devauth_verify at the current time, skipping the chain check when
 * cache saw this certificate pass it recently (cache may be NULL).
 */
int mdm_devauth_verify_cached(struct mdm_devauth_cache *cache, X509 *cert,
    X509 *ca, STACK_OF(X509) *untrusted, char hash[65], struct mdm_err *e);

/*
 * A certificate forwarded by a proxy, in any of the forms they use:
 *  - RFC 9440 ":BASE64DER:" (starts and ends with ':'; '=' padding may be
 *    left out, as RFC 8941 allows);
 *  - nginx's $ssl_client_escaped_cert: URL-%-escaped PEM ('+' is taken
 *    literally, never as a space: it is a base64 character);
 *  - plain PEM, or PEM whose newlines a proxy turned into spaces or tabs.
 * Surrounding spaces and tabs are ignored.  *out owned; NULL on failure.
 * Errors: MDM_E_NOINPUT an empty value, "(null)" or "-" (what proxies send
 * when the client offered no certificate); MDM_E_TOOBIG longer than
 * MDM_DEVAUTH_CAP_HEADER; MDM_E_DATA anything else that does not parse as
 * exactly one certificate.
 */
int mdm_devauth_from_header(const char *value, X509 **out, struct mdm_err *e);

/*
 * The chain check and the hash that binds a device to its enrollment:
 * cert must chain to ca, through the optional untrusted intermediates, at
 * time at (0 = now), for any purpose (mdm_x509_verify's rules).  Then hash
 * gets the lowercase hex SHA-256 of cert's DER; on failure it is "".
 * Errors: MDM_E_CRYPTO, the message saying why (unknown CA, expired, ...);
 * MDM_E_USAGE cert or ca NULL.  All arguments borrowed.
 */
int mdm_devauth_verify(X509 *cert, X509 *ca, STACK_OF(X509) *untrusted,
    time_t at, char hash[65], struct mdm_err *e);

#endif
