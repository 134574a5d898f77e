/*
 * scep_client: the requester's half of SCEP (RFC 8894), as an Apple
 * device plays it: read GetCACaps and GetCACert answers, build a PKCSReq
 * (or a RenewalReq signed by the identity being renewed) and read the
 * CertRep back.  No HTTP here: bytes in, bytes out, so a test drives it
 * against mdm_scep_handle in the same process and mdm-devsim puts it on
 * the wire.
 *
 * Invariants:
 *  - every input is capped (MDM_SCEP_CLIENT_MAX_*) before it is parsed;
 *  - a CertRep is believed only when its one signature verifies with
 *    the CA or RA certificate GetCACert gave (never with a certificate
 *    the CertRep itself carries), its messageType is CertRep, and it
 *    echoes our transactionID and, as recipientNonce, our senderNonce;
 *  - the certificate handed out is the one in the envelope addressed to
 *    us whose public key is the key we asked to have certified.
 *
 * Choices: SHA-256 when the CA lists SHA-256 or SCEPStandard (else
 * SHA-512, else SHA-1, the RFC's default); AES-256-CBC for the request
 * envelope when it lists AES or SCEPStandard, else 3DES.  The
 * transactionID is the uppercase hex SHA-256 of the DER public key being
 * certified (RFC 8894 only asks for a unique PrintableString; a hash of
 * the key is the convention Apple follows with SHA-1), so a retry of the
 * same request gets the certificate already issued.
 */
#ifndef MDM_SCEP_CLIENT_H
#define MDM_SCEP_CLIENT_H

#include <stddef.h>

#include <openssl/x509.h>

#include "buf.h"
#include "err.h"

#define MDM_SCEP_CLIENT_MAX_CAPS	4096		/* GetCACaps body */
#define MDM_SCEP_CLIENT_MAX_CACERT	(256u << 10)	/* GetCACert body */
#define MDM_SCEP_CLIENT_MAX_CERTREP	(256u << 10)	/* CertRep body */
#define MDM_SCEP_CLIENT_MAX_CHALLENGE	255

/* What GetCACaps lists; 1 = present.  Unknown keywords are ignored. */
struct mdm_scep_caps {
	int aes, des3, sha1, sha256, sha512;
	int post, renewal, standard, next_ca;
};

/*
 * Parses a GetCACaps body: one keyword a line, LF or CRLF, any case,
 * blanks around a keyword ignored.  An empty body is valid (no caps).
 * MDM_E_TOOBIG over MDM_SCEP_CLIENT_MAX_CAPS; MDM_E_DATA for a NUL or a
 * line that is not printable ASCII.
 */
int mdm_scep_client_parse_caps(const void *body, size_t len,
    struct mdm_scep_caps *out, struct mdm_err *e);

/*
 * Parses a GetCACert body: one DER (or PEM) certificate, or a degenerate
 * certs-only SignedData holding the CA and an RA (and possibly more
 * CAs).  *ca is the CA (the certificate that issued the RA, else the
 * first CA:TRUE one), *ra the first certificate that is not a CA, or NULL
 * when there is none.  Both owned.  MDM_E_TOOBIG over
 * MDM_SCEP_CLIENT_MAX_CACERT, MDM_E_DATA when no CA is in it.
 */
int mdm_scep_client_parse_cacert(const void *body, size_t len, X509 **ca,
    X509 **ra, struct mdm_err *e);

struct mdm_scep_client_req {
	X509 *ca;			/* from GetCACert; borrowed */
	X509 *ra;			/* from GetCACert, or NULL; borrowed */
	const struct mdm_scep_caps *caps; /* NULL: none listed */
	EVP_PKEY *key;			/* RSA key to certify; borrowed */
	const X509_NAME *subject;	/* of the CSR; borrowed */
	const char *challenge;		/* challengePassword, or NULL */
	/*
	 * RenewalReq: the identity being renewed signs the request and
	 * receives the answer.  NULL (both): a PKCSReq, signed by a
	 * transient self-signed certificate over key ("CN=MDM SCEP
	 * SIGNER", as Apple devices name it).  Borrowed.
	 */
	X509 *renew_cert;
	EVP_PKEY *renew_key;
};

/* One transaction: what a CertRep is checked against. */
struct mdm_scep_client;

/*
 * Builds the pkiMessage for r and appends its DER to msg (POST it as
 * application/x-pki-message, or base64 it for GET).  *out (owned, free
 * with mdm_scep_client_free) keeps what the answer is checked with; it
 * holds references to r's certificates and keys, not r itself.
 * MDM_E_USAGE for a missing field, a non-RSA key, a renew_cert that does
 * not match renew_key, or a challenge over MDM_SCEP_CLIENT_MAX_CHALLENGE.
 */
int mdm_scep_client_new(const struct mdm_scep_client_req *r,
    struct mdm_buf *msg, struct mdm_scep_client **out, struct mdm_err *e);
/* c may be NULL. */
void mdm_scep_client_free(struct mdm_scep_client *c);
/* The transactionID sent (borrowed from c). */
const char *mdm_scep_client_txid(const struct mdm_scep_client *c);

/*
 * Reads the CertRep answering c's request.  SUCCESS: *cert (owned) is
 * the issued certificate.  Errors: MDM_E_TOOBIG over
 * MDM_SCEP_CLIENT_MAX_CERTREP; MDM_E_DATA not a CertRep, or a SUCCESS
 * without our certificate; MDM_E_CRYPTO not signed by the CA or RA, a
 * tampered message, another transactionID or nonce, an envelope we cannot
 * decrypt; MDM_E_PERM the CA said FAILURE: the message names the failInfo
 * ("badRequest", ...) and quotes failInfoText when there is one, and
 * *fail_info (may be NULL; else set to -1 first) gets its number;
 * MDM_E_TEMPFAIL the CA said PENDING (CertPoll is not implemented).  c is
 * not changed: the same transaction may read several answers.
 */
int mdm_scep_client_certrep(const struct mdm_scep_client *c, const void *der,
    size_t len, X509 **cert, int *fail_info, struct mdm_err *e);

/* "badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId" for
   0..4, else "unknown"; static storage. */
const char *mdm_scep_client_fail_name(int fail_info);

#endif
