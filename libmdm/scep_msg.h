/*
 * scep_msg: the parts of an SCEP pkiMessage (RFC 8894 3) that both
 * halves build and read, the CA (scep.c) and the requester
 * (scep_client.c): the attribute object identifiers, the messageType
 * numbers, the signed attributes in and out, and the CMS steps they take
 * alike (encrypting to one certificate, finishing a signature,
 * encoding).  Internal to libmdm; tools use scep.h and
 * scep_client.h.
 *
 * Invariants:
 *  - mdm_scep_msg_init has succeeded before anything else here is used;
 *    the object identifiers it makes live until the process ends and
 *    stay out of OpenSSL's object table (OBJ_txt2obj with no_name), so
 *    threads (mdm-devsim enrols from several) never race on registering
 *    them;
 *  - a signed attribute is read only when it occurs once with exactly
 *    one value: taking the first of several would let the signature
 *    cover another than the one acted on;
 *  - strings read are printable ASCII, NUL-terminated, within the
 *    caller's buffer.
 */
#ifndef MDM_SCEP_MSG_H
#define MDM_SCEP_MSG_H

#include <stddef.h>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"
#include "err.h"

#define MDM_SCEP_MSG_TXID_MAX	255	/* transactionID bytes */
#define MDM_SCEP_MSG_NONCE_LEN	16	/* the senderNonce either side sends */

/* The SCEP attributes (RFC 8894 3.2.1) and failInfoText (RFC 8894). */
enum mdm_scep_oid {
	MDM_SCEP_OID_MESSAGE_TYPE,
	MDM_SCEP_OID_PKI_STATUS,
	MDM_SCEP_OID_FAIL_INFO,
	MDM_SCEP_OID_SENDER_NONCE,
	MDM_SCEP_OID_RECIPIENT_NONCE,
	MDM_SCEP_OID_TRANSACTION_ID,
	MDM_SCEP_OID_FAIL_INFO_TEXT,
	MDM_SCEP_OID_COUNT
};

/* messageType values (RFC 8894 3.2.1.2). */
enum mdm_scep_msg_type {
	MDM_SCEP_MSG_CERT_REP = 3,
	MDM_SCEP_MSG_RENEWAL_REQ = 17,
	MDM_SCEP_MSG_PKCS_REQ = 19,
	MDM_SCEP_MSG_CERT_POLL = 20,
	MDM_SCEP_MSG_GET_CERT = 21,
	MDM_SCEP_MSG_GET_CRL = 22,
};

/* Makes the object identifiers, once per process; safe from any thread. */
int mdm_scep_msg_init(struct mdm_err *e);

/* The object of oid (borrowed, static); NULL before mdm_scep_msg_init. */
const ASN1_OBJECT *mdm_scep_msg_oid(enum mdm_scep_oid oid);

/*
 * The single value of the signed attribute obj (borrowed from si), or
 * NULL when it is absent, occurs twice or has other than one value.
 */
ASN1_TYPE *mdm_scep_msg_attr(CMS_SignerInfo *si, const ASN1_OBJECT *obj);

/*
 * The signed attribute oid as a string into out: a PrintableString or,
 * leniently, a UTF8String or IA5String, of printable ASCII, shorter than
 * outlen; it may be empty.  *type (may be NULL) gets its ASN.1 type, to
 * echo it in kind.  1 when it is absent, -1 when it is not such a string
 * or not single; out is "" then.
 */
int mdm_scep_msg_attr_string(CMS_SignerInfo *si, enum mdm_scep_oid oid,
    char *out, size_t outlen, int *type);

/*
 * The signed attribute oid as an OCTET STRING of 1 to outlen bytes into
 * out, its length into *len.  1 when it is absent, -1 when it is not such
 * a string or not single.
 */
int mdm_scep_msg_attr_octets(CMS_SignerInfo *si, enum mdm_scep_oid oid,
    unsigned char *out, size_t outlen, size_t *len);

/* Adds the signed attribute oid: n bytes at p as an ASN.1 string type. */
int mdm_scep_msg_add_attr(CMS_SignerInfo *si, enum mdm_scep_oid oid,
    int type, const void *p, size_t n, struct mdm_err *e);

/*
 * 1 when si's signed contentType is cms's eContentType (RFC 5652 11.1:
 * OpenSSL 3.0 does not compare them), else 0.
 */
int mdm_scep_msg_content_type_ok(CMS_ContentInfo *cms, CMS_SignerInfo *si);

/* The DER of cms appended to out (its cap applies). */
int mdm_scep_msg_der(CMS_ContentInfo *cms, struct mdm_buf *out,
    struct mdm_err *e);

/*
 * An EnvelopedData of the n bytes at p to the one certificate to
 * (borrowed), RSA key transport (PKCS #1 v1.5) with a fresh content key
 * for cipher (a CBC cipher: its parameters are the IV), DER appended to
 * out.  Encoded by hand (der.h), as the CA does this for every
 * enrollment.  Errors (out left as it was): MDM_E_CRYPTO when to's key
 * cannot take it, MDM_E_TOOBIG past out's cap.
 */
int mdm_scep_msg_encrypt(X509 *to, const EVP_CIPHER *cipher, const void *p,
    size_t n, struct mdm_buf *out, struct mdm_err *e);

/*
 * Signs cms, a CMS_PARTIAL SignedData whose signer and attributes are
 * set, over the n bytes at p (may be NULL when n is 0) as attached
 * content, and appends its DER to out.  cms stays the caller's.
 */
int mdm_scep_msg_sign_final(CMS_ContentInfo *cms, const void *p, size_t n,
    struct mdm_buf *out, struct mdm_err *e);

/* A signed attribute for mdm_scep_msg_sign: n bytes at p as an ASN.1
   string type (V_ASN1_PRINTABLESTRING, V_ASN1_OCTET_STRING, ...). */
struct mdm_scep_msg_value {
	enum mdm_scep_oid oid;
	int type;
	const void *p;
	size_t n;
};

/*
 * What CMS_sign and mdm_scep_msg_sign_final make of a SignedData with no
 * SMIMECapabilities, encoded by hand: the n bytes at p (may be NULL when
 * n is 0) as id-data content, signed by cert and key (RSA, PKCS #1 v1.5)
 * with md over the signed attributes contentType, signingTime (now),
 * messageDigest and the nvals values; the signer named by issuer and
 * serial; the ncerts certificates in certificates.  DER appended to out,
 * which is left as it was on error.
 * The CA signs every CertRep with it; the OpenSSL path above stays for
 * the requester, which also sends SMIMECapabilities.
 */
int mdm_scep_msg_sign(X509 *cert, EVP_PKEY *key, const EVP_MD *md,
    const struct mdm_scep_msg_value *vals, size_t nvals, const void *p,
    size_t n, X509 *const *certs, size_t ncerts, struct mdm_buf *out,
    struct mdm_err *e);

/*
 * A degenerate certs-only SignedData (RFC 8894 3.4): no signers and no
 * content, the n certificates and, when crl is not NULL, the CRL.  DER
 * appended to out, which is left as it was on error.
 */
int mdm_scep_msg_certs_only(X509 *const *certs, size_t n, X509_CRL *crl,
    struct mdm_buf *out, struct mdm_err *e);

#endif
