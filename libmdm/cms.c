#include <limits.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>		/* before cms.h, for PEM_read_bio_CMS */
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "cms.h"
#include "x509.h"
#include "ossl_int.h"
#include "mdm_int.h"

/* CMS never needs a password; refuse instead of prompting. */
static int
no_password_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* DER or BER, all of it: bytes after the message are refused. */
static int
parse_der(const void *der, size_t len, CMS_ContentInfo **out,
    struct mdm_err *e)
{
	const unsigned char *p = der;

	*out = NULL;
	if (len > MDM_CAP_CMS)
		return mdm_err_set(e, MDM_E_TOOBIG,
		    "CMS message larger than %u bytes", MDM_CAP_CMS);
	if (der == NULL || len == 0)
		return mdm_err_set(e, MDM_E_DATA, "empty CMS message");
	if ((*out = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL)
		return mdm_err_set_ssl(e, MDM_E_DATA, "not a CMS message");
	if (p != (const unsigned char *)der + len) {
		CMS_ContentInfo_free(*out);
		*out = NULL;
		return mdm_err_set(e, MDM_E_DATA,
		    "%zu bytes after the CMS message",
		    len - (size_t)(p - (const unsigned char *)der));
	}
	return 0;
}

/*
 * RFC 5652 11.1: the signed content-type attribute must name the
 * eContentType.  OpenSSL 3.0 does not compare them, so without this the
 * eContentType of a signed message could be changed at will.
 */
static int
check_content_type(CMS_ContentInfo *cms, CMS_SignerInfo *si,
    struct mdm_err *e)
{
	const ASN1_OBJECT *ect = CMS_get0_eContentType(cms);
	const ASN1_OBJECT *ct;

	if (CMS_signed_get_attr_count(si) < 0) {
		/* Only id-data may be signed without attributes. */
		if (OBJ_obj2nid(ect) != NID_pkcs7_data)
			return mdm_err_set(e, MDM_E_CRYPTO, "signed data "
			    "of a non-data type has no signed attributes");
		return 0;
	}
	ct = CMS_signed_get0_data_by_OBJ(si, OBJ_nid2obj(NID_pkcs9_contentType),
	    -3, V_ASN1_OBJECT);
	if (ct == NULL || ect == NULL || OBJ_cmp(ct, ect) != 0)
		return mdm_err_set(e, MDM_E_CRYPTO, "signed content type "
		    "attribute does not match the content");
	return 0;
}

/*
 * The legacy provider, loaded process-wide for DES and RC2, also makes MD4
 * and friends available to CMS_verify: accept only the SHA family, which
 * is what Apple devices and OpenSSL use (SHA-1 in older SCEP requests).
 */
static int
check_digest(CMS_SignerInfo *si, struct mdm_err *e)
{
	X509_ALGOR *dig = NULL;
	const ASN1_OBJECT *obj = NULL;
	int nid;

	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
	if (dig != NULL)
		X509_ALGOR_get0(&obj, NULL, NULL, dig);
	nid = OBJ_obj2nid(obj);
	switch (nid) {
	case NID_sha1:
	case NID_sha224:
	case NID_sha256:
	case NID_sha384:
	case NID_sha512:
		return 0;
	}
	return mdm_err_set(e, MDM_E_CRYPTO, "signature digest %s not accepted",
	    nid != NID_undef ? OBJ_nid2sn(nid) : "(unknown)");
}

int
mdm_cms_sign(const void *content, size_t len, X509 *signer, EVP_PKEY *key,
    STACK_OF(X509) *chain, int flags, struct mdm_buf *out, struct mdm_err *e)
{
	/* No SMIMECapabilities: Apple ignores it and it only adds bytes. */
	unsigned int cflags = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms = NULL;
	unsigned char *der = NULL;
	BIO *in = NULL;
	int i, j, n, rc = -1;

	ERR_clear_error();
	if (signer == NULL || key == NULL || (content == NULL && len > 0)) {
		mdm_err_set(e, MDM_E_USAGE, "signing needs a cert and a key");
		goto out;
	}
	if ((flags & ~MDM_CMS_DETACHED) != 0) {
		mdm_err_set(e, MDM_E_USAGE, "unknown CMS signing flags");
		goto out;
	}
	if (len > MDM_CAP_CMS) {
		mdm_err_set(e, MDM_E_TOOBIG, "content larger than %u bytes",
		    MDM_CAP_CMS);
		goto out;
	}
	if (!mdm_x509_key_matches(signer, key)) {
		mdm_err_set(e, MDM_E_USAGE,
		    "signing key does not match the signer certificate");
		goto out;
	}
	if (flags & MDM_CMS_DETACHED)
		cflags |= CMS_DETACHED;
	if ((cms = CMS_sign(NULL, NULL, NULL, NULL, cflags)) == NULL ||
	    CMS_add1_signer(cms, signer, key, EVP_sha256(), cflags) == NULL) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot set up CMS signing");
		goto out;
	}
	/* OpenSSL refuses a cert twice; a chain often repeats the signer. */
	for (i = 0; i < sk_X509_num(chain); i++) {
		X509 *c = sk_X509_value(chain, i);
		int dup = X509_cmp(c, signer) == 0;

		for (j = 0; j < i && !dup; j++)
			dup = X509_cmp(c, sk_X509_value(chain, j)) == 0;
		if (!dup && !CMS_add1_cert(cms, c)) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE,
			    "cannot add chain certificate");
			goto out;
		}
	}
	if (!CMS_set_detached(cms, (flags & MDM_CMS_DETACHED) != 0) ||
	    (in = mdm_bio_from_mem(content, len, e)) == NULL)
		goto out;
	if (!CMS_final(cms, in, NULL, cflags)) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot sign");
		goto out;
	}
	if ((n = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot encode CMS message");
		goto out;
	}
	rc = mdm_buf_append(out, der, (size_t)n, e);
out:
	OPENSSL_free(der);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return rc;
}

void
mdm_cms_verified_release(struct mdm_cms_verified *v)
{
	if (v == NULL)
		return;
	X509_free(v->signer);
	sk_X509_pop_free(v->certs, X509_free);
	mdm_buf_release(&v->content);
	memset(v, 0, sizeof(*v));
}

static int
verify(const void *der, size_t len, const void *detached,
    size_t detached_len, X509 *trust, STACK_OF(X509) *certs,
    struct mdm_cms_verified *v, struct mdm_err *e)
{
	/* Signature here; the chain below, with mdm_x509_verify's rules. */
	unsigned int flags = CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(X509) *extra = NULL, *signers = NULL;
	ASN1_OCTET_STRING **pos;
	CMS_SignerInfo *si;
	BIO *dcont = NULL, *outb = NULL;
	int nsigners, attached, rc = -1;

	memset(v, 0, sizeof(*v));
	mdm_buf_init(&v->content, MDM_CAP_CMS);
	ERR_clear_error();
	if (parse_der(der, len, &cms, e) == -1)
		goto out;
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		mdm_err_set(e, MDM_E_DATA, "CMS message is not signed data");
		goto out;
	}
	nsigners = sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms));
	if (nsigners != 1) {
		mdm_err_set(e, MDM_E_DATA,
		    "signed data has %d signers, want exactly one",
		    nsigners < 0 ? 0 : nsigners);
		goto out;
	}
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	if (check_digest(si, e) == -1)
		goto out;
	pos = CMS_get0_content(cms);
	attached = pos != NULL && *pos != NULL;
	/*
	 * OpenSSL would hash a detached body in place of attached content
	 * without a word: insist the caller and the message agree.
	 */
	if (detached != NULL && attached) {
		mdm_err_set(e, MDM_E_DATA, "signed data carries content, "
		    "but a detached body was given");
		goto out;
	}
	if (detached == NULL && !attached) {
		mdm_err_set(e, MDM_E_DATA,
		    "signed data has no content (a detached signature)");
		goto out;
	}
	if (detached != NULL) {
		if (detached_len > MDM_CAP_CMS) {
			mdm_err_set(e, MDM_E_TOOBIG,
			    "signed body larger than %u bytes", MDM_CAP_CMS);
			goto out;
		}
		if ((dcont = mdm_bio_from_mem(detached, detached_len, e)) == NULL)
			goto out;
	} else if ((outb = BIO_new(BIO_s_mem())) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "BIO_new");
		goto out;
	}
	/*
	 * The caller's certificates, and trust, stand in for signer certs
	 * the message left out.
	 */
	if ((extra = certs != NULL ? sk_X509_dup(certs) : sk_X509_new_null()) ==
	    NULL || (trust != NULL && !sk_X509_push(extra, trust))) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sk_X509_push");
		goto out;
	}
	if (CMS_verify(cms, extra, NULL, dcont, outb, flags) != 1) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO,
		    "CMS signature verification failed");
		goto out;
	}
	if (check_content_type(cms, si, e) == -1)
		goto out;
	if ((signers = CMS_get0_signers(cms)) == NULL ||
	    sk_X509_num(signers) != 1) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "no signer certificate");
		goto out;
	}
	v->signer = sk_X509_value(signers, 0);
	if (!X509_up_ref(v->signer)) {
		v->signer = NULL;
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "X509_up_ref");
		goto out;
	}
	if ((v->certs = CMS_get1_certs(cms)) == NULL &&
	    (v->certs = sk_X509_new_null()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sk_X509_new_null");
		goto out;
	}
	if (trust != NULL &&
	    mdm_x509_verify(v->signer, trust, v->certs, 0, e) == -1) {
		mdm_err_prefix(e, "CMS signer");
		goto out;
	}
	if (outb != NULL && mdm_bio_to_buf(outb, &v->content, e) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		mdm_cms_verified_release(v);
	sk_X509_free(signers);
	sk_X509_free(extra);
	BIO_free(dcont);
	BIO_free(outb);
	CMS_ContentInfo_free(cms);
	return rc;
}

int
mdm_cms_verify(const void *der, size_t len, const void *detached,
    size_t detached_len, X509 *trust, struct mdm_cms_verified *v,
    struct mdm_err *e)
{
	return verify(der, len, detached, detached_len, trust, NULL, v, e);
}

int
mdm_cms_verify_certs(const void *der, size_t len, const void *detached,
    size_t detached_len, STACK_OF(X509) *certs, struct mdm_cms_verified *v,
    struct mdm_err *e)
{
	return verify(der, len, detached, detached_len, NULL, certs, v, e);
}

/* DER/BER, PEM or S/MIME, told apart by their first bytes. */
static int
parse_any(const void *data, size_t len, CMS_ContentInfo **out,
    struct mdm_err *e)
{
	const unsigned char *p = data;
	BIO *b = NULL;
	int rc = -1;

	*out = NULL;
	if (len > MDM_CAP_CMS)
		return mdm_err_set(e, MDM_E_TOOBIG,
		    "CMS message larger than %u bytes", MDM_CAP_CMS);
	if (data == NULL || len == 0)
		return mdm_err_set(e, MDM_E_DATA, "empty CMS message");
	if (p[0] == 0x30)
		return parse_der(data, len, out, e);
	if ((b = mdm_bio_from_mem(data, len, e)) == NULL)
		goto out;
	if (mdm_x509_looks_like_pem(data, len))
		*out = PEM_read_bio_CMS(b, NULL, no_password_cb, NULL);
	else
		*out = SMIME_read_CMS(b, NULL);
	if (*out == NULL) {
		mdm_err_set_ssl(e, MDM_E_DATA, "not a CMS message");
		goto out;
	}
	rc = 0;
out:
	BIO_free(b);
	return rc;
}

/*
 * 1 if some key-transport recipient is cert, or if there are recipients of
 * other kinds (left to CMS_decrypt); 0 if cert is plainly not a recipient,
 * which OpenSSL 3.0 reports without any reason on its error queue.
 */
static int
has_recipient(CMS_ContentInfo *cms, X509 *cert)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	int i;

	for (i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);

		if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS ||
		    CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0)
			return 1;
	}
	return 0;
}

int
mdm_cms_decrypt(const void *der, size_t len, X509 *cert, EVP_PKEY *key,
    struct mdm_buf *out, struct mdm_err *e)
{
	CMS_ContentInfo *cms = NULL;
	struct mdm_err ierr;
	BIO *outb = NULL;
	int type, have_legacy, rc = -1;

	mdm_err_clear(&ierr);
	/* Single DES, still sent by some SCEP servers, is legacy-only. */
	have_legacy = mdm_crypto_init(&ierr) == 0;
	ERR_clear_error();
	if (cert == NULL || key == NULL) {
		mdm_err_set(e, MDM_E_USAGE,
		    "decrypting needs a cert and a key");
		goto out;
	}
	if (parse_any(der, len, &cms, e) == -1)
		goto out;
	type = OBJ_obj2nid(CMS_get0_type(cms));
	if (type != NID_pkcs7_enveloped &&
	    type != NID_id_smime_ct_authEnvelopedData) {
		mdm_err_set(e, MDM_E_DATA, "CMS message is not enveloped data");
		goto out;
	}
	if (!mdm_x509_key_matches(cert, key)) {
		mdm_err_set(e, MDM_E_USAGE,
		    "key does not match the recipient certificate");
		goto out;
	}
	if (!has_recipient(cms, cert)) {
		ERR_clear_error();
		mdm_err_set(e, MDM_E_CRYPTO,
		    "the certificate is not a recipient of this message");
		goto out;
	}
	if ((outb = BIO_new(BIO_s_mem())) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "BIO_new");
		goto out;
	}
	if (CMS_decrypt(cms, key, cert, NULL, outb, CMS_BINARY) != 1) {
		if (have_legacy)
			mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot decrypt");
		else
			mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot decrypt (%s)",
			    ierr.msg);
		goto out;
	}
	rc = mdm_bio_to_buf(outb, out, e);
out:
	/* A memory BIO clears its buffer when freed: no plaintext left. */
	BIO_free(outb);
	CMS_ContentInfo_free(cms);
	return rc;
}
