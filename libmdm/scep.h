/*
 * scep: the SCEP certificate authority of RFC 8894 (protocol.md section
 * 8), as the HTTP side of mdm-scep and mdm-serve calls it: one request
 * (operation, message, body) in, one response (status, type, body) out.
 * It owns the pkiMessage parser, the policy a request must pass before a
 * certificate is issued, and the CertRep a device reads back.
 *
 * Invariants:
 *  - Bad client input never fails the call: a request that cannot be
 *    parsed at all gets a 4xx with a one-line text body; everything else
 *    gets an HTTP 200 CertRep, FAILURE with a failInfo (and a
 *    failInfoText saying why) when the request is refused.  Only server
 *    trouble (the database) returns -1.
 *  - Every issued certificate is in the certificates table before its
 *    CertRep leaves, with its transactionID; a one-time challenge is
 *    consumed in the same transaction, so it pays for exactly one
 *    certificate even when requests race.
 *  - A CertRep is signed by the RA if there is one (MDM_SCEP_RA_CERT),
 *    else by the CA, with the digest the request used and
 *    echoes its transactionID and senderNonce (as recipientNonce).  The
 *    certificate goes back encrypted to the requester's signer
 *    certificate with the request's own content cipher, raised to
 *    AES-256 (or AES-128) when the request's SMIMECapabilities attribute
 *    offers it: the strongest cipher the client has shown it can read.
 *  - The CA (and RA) certificates and keys are read and parsed once, by
 *    mdm_scep_new; a request costs three private-key operations at most
 *    (decrypt, issue, sign the CertRep), and one for a refusal.
 *
 * Message types: PKCSReq (19; challenge required unless the policy says
 * otherwise), RenewalReq (17; no challenge, but signed by an unexpired,
 * unrevoked certificate this CA issued and recorded), CertPoll (20;
 * answers with the certificate of a known transaction, else badCertId),
 * GetCert (21; by issuer and serial) and GetCRL (22; the CA's CRL in a
 * degenerate SignedData).  Requests are never left PENDING.
 */
#ifndef MDM_SCEP_H
#define MDM_SCEP_H

#include <stddef.h>

#include <openssl/x509.h>

#include "buf.h"
#include "err.h"
#include "state.h"

struct mdm_scep_policy {
	int validity_days;		/* of issued certificates; 0 = 365;
					   at most 36500 */
	int min_key_bits;		/* RSA key size a CSR must have at
					   least; 0 = 2048 (EC: 256 always) */
	const char *static_challenge;	/* NULL: only one-time challenges
					   are accepted */
	/*
	 * POSIX extended regex the CSR subject (the one-line form of
	 * x509.h, e.g. "CN=dev1,O=Acme") must match; NULL = any.
	 */
	const char *subject_pattern;
	/*
	 * Program run (no shell) with the CSR in PEM on stdin and
	 * SCEP_TRANSACTION_ID / SCEP_MESSAGE_TYPE added to the environment;
	 * exit 0 = allow; NULL = none; killed after 10 s.  Its stdout is
	 * discarded, its stderr inherited.
	 */
	const char *csr_verify_exec;
	/* GetCACaps/GetCACert message= value we answer to; NULL = any */
	const char *ca_name;
	/*
	 * 1: a PKCSReq needs no challenge password at all (added for the
	 * Apple fixture request, which carries none).  Only behind another
	 * gate such as csr_verify_exec.
	 */
	int no_challenge;
};

/*
 * One SCEP CA bound to one open state handle; not shared between
 * threads: a server with N threads makes N of them.
 */
struct mdm_scep;

/*
 * Loads ca/ca.pem and ca/ca.key from the state (the key through
 * mdm_file_read_private, so a key others can read is refused), and the
 * RA when there is one (see MDM_SCEP_RA_CERT).  An
 * encrypted key is tried with the empty password (the micromdm test CA
 * is stored so); any other password is MDM_E_CRYPTO.  The policy is
 * copied; st is borrowed and must outlive *out.  A subject_pattern that
 * does not compile is MDM_E_CONFIG.  *out owned: mdm_scep_free it.
 */
int mdm_scep_new(struct mdm_state *st, const struct mdm_scep_policy *p,
    struct mdm_scep **out, struct mdm_err *e);
/* s may be NULL. */
void mdm_scep_free(struct mdm_scep *s);

struct mdm_scep_response {
	/* 200; 400/404/405/413 for requests that cannot be parsed at all;
	   500/503 only for server-side failure */
	int http_status;
	const char *content_type;	/* static string */
	struct mdm_buf body;		/* owned; init'ed by
					   mdm_scep_response_init */
	/*
	 * For logs and metrics, static: "caps", "cacert", "issued",
	 * "renewed", "resent" (a retried request got the certificate it
	 * was already issued), "poll", "cert", "crl",
	 * "failure:badAlg", "failure:badMessageCheck",
	 * "failure:badRequest", "failure:badTime", "failure:badCertId";
	 * for non-200 answers "invalid" (400), "not-found" (404),
	 * "method" (405), "too-large" (413), "error" (500), "busy" (503).
	 */
	const char *outcome;
	char serial[100];		/* issued (or resent) serial, or "" */
};
void mdm_scep_response_init(struct mdm_scep_response *r);
/* Frees the body; r may be NULL.  Init again before reuse. */
void mdm_scep_response_release(struct mdm_scep_response *r);

/* The largest pkiMessage accepted (POST body, or decoded GET message). */
#define MDM_SCEP_MAX_MESSAGE	(256u << 10)

/*
 * One SCEP HTTP request in, one response out.  method "GET" or "POST";
 * operation and message are the query parameters, already URL-decoded
 * (message may be NULL); for GET PKIOperation message is the base64
 * pkiMessage (a space in it is read as the '+' a client forgot to
 * escape); body/body_len the POST body.
 *
 * Bad client input never makes it fail: it becomes a 4xx, or (per RFC
 * 8894) an HTTP 200 CertRep with pkiStatus FAILURE and failInfo.  It
 * returns -1 only for server-side trouble (database error: e->code
 * MDM_E_TEMPFAIL for busy -> 503, else 500), and then resp is still
 * filled with that status and a short text/plain body.  resp must have
 * been initialised (its previous contents are replaced).
 */
int mdm_scep_handle(struct mdm_scep *s, const char *method,
    const char *operation, const char *message, const void *body,
    size_t body_len, struct mdm_scep_response *resp, struct mdm_err *e);

/*
 * An optional RA (RFC 8894 2.1.2): with these two files in the state,
 * mdm_scep_new loads them, requests are decrypted with the RA key and
 * CertReps signed with it (the certificates issued and the CRL are
 * still signed by the CA), and GetCACert answers with the CA and RA
 * certificates (application/x-x509-ca-ra-cert).  Without them the CA is
 * its own RA.  Both or neither: one alone is MDM_E_CONFIG.
 */
#define MDM_SCEP_RA_CERT	"ca/ra.pem"
#define MDM_SCEP_RA_KEY		"ca/ra.key"

/* Administration (used by `mdm-scep challenge|revoke|crl|list|ra-init`). */

/*
 * A fresh one-time challenge (144 random bits, base64url: 24 characters
 * of [A-Za-z0-9_-]), valid for ttl_seconds (> 0), stored hashed; written
 * NUL-terminated to out (outlen >= 25, else MDM_E_USAGE).  Expired
 * challenges are swept on the way.
 */
int mdm_scep_challenge_new(struct mdm_state *st, long long ttl_seconds,
    char *out, size_t outlen, struct mdm_err *e);
/*
 * serial as hex (leading zeros, case and one "0x" ignored).  Unknown
 * serial: MDM_E_NOINPUT; not hex: MDM_E_USAGE.  Already revoked: returns
 * 1 (not an error, revocation time kept), else 0.
 */
int mdm_scep_revoke(struct mdm_state *st, const char *serial,
    struct mdm_err *e);
/*
 * A DER CRL (v2, SHA-256) signed by the CA of the state directory,
 * listing every revoked certificate with its revocation time;
 * thisUpdate = now, nextUpdate = now + days (1..3650), CRL number = now
 * in unix seconds (so it only grows), authorityKeyIdentifier from the
 * CA.  Appended to der.
 */
int mdm_scep_crl(struct mdm_state *st, int days, struct mdm_buf *der,
    struct mdm_err *e);
/*
 * Makes the RA: a fresh RSA key as large as the CA's (at least 2048
 * bits) and a certificate for it from the CA (CN "<CA CN> SCEP RA",
 * CA:FALSE, digitalSignature and keyEncipherment), valid for days
 * (1..36500, cut to the CA's own notAfter), written to MDM_SCEP_RA_KEY
 * (0600) and then MDM_SCEP_RA_CERT, each atomically.  An RA already there
 * is MDM_E_EXISTS unless force.  Servers read it when they start.  *out
 * (if out is not NULL) owned: the new certificate.
 */
int mdm_scep_ra_init(struct mdm_state *st, int days, int force, X509 **out,
    struct mdm_err *e);

#endif
