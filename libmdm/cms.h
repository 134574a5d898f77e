/*
 * cms: the CMS (PKCS#7) messages an MDM server signs, verifies and
 * decrypts: signed .mobileconfig profiles, the Mdm-Signature header of
 * device requests, SCEP pkiMessages and the DEP token .p7m.  Built on
 * OpenSSL 3's CMS API; no S/MIME text canonicalisation ever happens, so
 * the bytes signed are the bytes given and the bytes extracted are the
 * bytes that were signed.
 *
 * Invariants: input is capped at MDM_CAP_CMS; a message is accepted only
 * when it is one SignedData with exactly one signer whose signature (and
 * signed attributes) check out; attached content and a detached body are
 * never mixed.  Nothing here prints, prompts or exits.
 */
#ifndef MDM_CMS_H
#define MDM_CMS_H

#include <stddef.h>

#include <openssl/x509.h>

#include "buf.h"
#include "err.h"

enum { MDM_CMS_DETACHED = 1 };

/*
 * CMS SignedData, DER, appended to out.  Attached (the default): eContent
 * is id-data with the exact content bytes (as `openssl cms -sign -nodetach
 * -binary -outform DER` makes).  SHA-256, signed attributes (contentType,
 * signingTime, messageDigest), the signer cert plus chain (may be NULL;
 * duplicates of the signer are skipped) included.  MDM_CMS_DETACHED leaves
 * the content out, as in the Mdm-Signature header of an Apple device.
 * signer, key and chain are borrowed.
 */
int mdm_cms_sign(const void *content, size_t len, X509 *signer, EVP_PKEY *key,
    STACK_OF(X509) *chain, int flags, struct mdm_buf *out, struct mdm_err *e);

struct mdm_cms_verified {
	X509 *signer;			/* owned by this struct */
	STACK_OF(X509) *certs;		/* the message's certs, owned */
	struct mdm_buf content;		/* attached content (empty for
					   detached), cap MDM_CAP_CMS */
};
/* Frees everything and leaves v zeroed; accepts a zeroed struct. */
void mdm_cms_verified_release(struct mdm_cms_verified *v);
/*
 * Parses a DER or BER (indefinite lengths, as Apple's `security cms`
 * writes) ContentInfo holding a SignedData, at most MDM_CAP_CMS bytes with
 * nothing after it, and checks its one signature.
 *
 * detached: NULL when the content is attached; otherwise the exact bytes
 * signed (e.g. an HTTP body), and then the message must not carry content
 * of its own.  trust: NULL checks the signature only (signer cert taken
 * from the message, no chain or time check); otherwise the signer must
 * chain to trust now, through the message's certs, for any purpose (as
 * mdm_x509_verify), and trust also serves as the signer cert for a message
 * that carries none.
 *
 * v needs no initialisation; on success it holds the signer, the certs
 * and the attached content; on failure it is left released.  Errors:
 * MDM_E_TOOBIG over the cap, MDM_E_DATA unparseable or not exactly one
 * signer, MDM_E_CRYPTO bad signature, missing signer cert or untrusted
 * signer.
 */
int mdm_cms_verify(const void *der, size_t len, const void *detached,
    size_t detached_len, X509 *trust, struct mdm_cms_verified *v,
    struct mdm_err *e);
/*
 * mdm_cms_verify with no chain check, for a message whose certificates
 * the caller took out and parsed itself (devauth keeps device
 * certificates parsed across requests): the signer is looked for in
 * certs (borrowed, may be NULL) as well as in the message.
 */
int mdm_cms_verify_certs(const void *der, size_t len, const void *detached,
    size_t detached_len, STACK_OF(X509) *certs, struct mdm_cms_verified *v,
    struct mdm_err *e);
/*
 * Decrypts a CMS EnvelopedData for the recipient cert and key (borrowed)
 * and appends the plaintext to out (its cap applies).  Accepts DER/BER,
 * PEM ("BEGIN CMS" or "BEGIN PKCS7") and S/MIME (MIME headers then
 * base64, like the DEP token .p7m).  Content ciphers: AES-CBC, 3DES, and
 * DES when the legacy provider is available (loaded here).  Errors:
 * MDM_E_DATA unparseable or not EnvelopedData, MDM_E_USAGE key and cert
 * do not match, MDM_E_CRYPTO no recipient for cert or decryption failed.
 * The plaintext may be secret: the caller decides how to release out.
 */
int mdm_cms_decrypt(const void *der, size_t len, X509 *cert, EVP_PKEY *key,
    struct mdm_buf *out, struct mdm_err *e);

#endif
