#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/pem.h>		/* before cms.h */
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "cms.h"
#include "scep_client.h"
#include "scep_msg.h"
#include "x509.h"
#include "ossl_int.h"
#include "mdm_int.h"

#define TEXT_MAX	200		/* failInfoText quoted in a message */

static const char *const fail_names[] = {
	"badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId",
};

struct mdm_scep_client {
	X509 *ca, *ra;			/* trusted CertRep signers */
	X509 *signer;			/* receives the answer */
	EVP_PKEY *signer_key;
	EVP_PKEY *key;			/* the key being certified */
	char txid[MDM_SCEP_MSG_TXID_MAX + 1];
	unsigned char nonce[MDM_SCEP_MSG_NONCE_LEN];
};

const char *
mdm_scep_client_fail_name(int fail_info)
{
	if (fail_info < 0 || (size_t)fail_info >= MDM_ARRAY_LEN(fail_names))
		return "unknown";
	return fail_names[fail_info];
}

/* GetCACaps. */

static void
set_cap(struct mdm_scep_caps *c, const char *w, size_t n)
{
	static const struct {
		const char *name;
		size_t off;
	} words[] = {
		{ "AES", offsetof(struct mdm_scep_caps, aes) },
		{ "DES3", offsetof(struct mdm_scep_caps, des3) },
		{ "SHA-1", offsetof(struct mdm_scep_caps, sha1) },
		{ "SHA-256", offsetof(struct mdm_scep_caps, sha256) },
		{ "SHA-512", offsetof(struct mdm_scep_caps, sha512) },
		{ "POSTPKIOperation", offsetof(struct mdm_scep_caps, post) },
		{ "Renewal", offsetof(struct mdm_scep_caps, renewal) },
		{ "SCEPStandard", offsetof(struct mdm_scep_caps, standard) },
		{ "GetNextCACert", offsetof(struct mdm_scep_caps, next_ca) },
	};
	size_t i;

	for (i = 0; i < MDM_ARRAY_LEN(words); i++)
		if (strlen(words[i].name) == n &&
		    strncasecmp(words[i].name, w, n) == 0)
			*(int *)(void *)((char *)c + words[i].off) = 1;
}

int
mdm_scep_client_parse_caps(const void *body, size_t len,
    struct mdm_scep_caps *out, struct mdm_err *e)
{
	const char *p = body, *end, *eol;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (len > MDM_SCEP_CLIENT_MAX_CAPS)
		return mdm_err_set(e, MDM_E_TOOBIG, "GetCACaps answer over "
		    "%u bytes", MDM_SCEP_CLIENT_MAX_CAPS);
	if (len > 0 && body == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "no GetCACaps body");
	for (i = 0; i < len; i++)
		if (p[i] != '\n' && p[i] != '\r' && p[i] != '\t' &&
		    (p[i] < 0x20 || p[i] > 0x7e))
			return mdm_err_set(e, MDM_E_DATA, "GetCACaps answer "
			    "is not text");
	end = p + len;
	while (p < end) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		i = (size_t)(eol - p);
		while (i > 0 && (p[i - 1] == ' ' || p[i - 1] == '\t' ||
		    p[i - 1] == '\r'))
			i--;
		set_cap(out, p, i);
		p = eol < end ? eol + 1 : end;
	}
	if (out->standard)
		out->aes = out->post = out->sha256 = 1;
	return 0;
}

/* GetCACert. */

static int
is_ca(X509 *c)
{
	return X509_check_ca(c) > 0;
}

int
mdm_scep_client_parse_cacert(const void *body, size_t len, X509 **ca,
    X509 **ra, struct mdm_err *e)
{
	const unsigned char *p = body;
	STACK_OF(X509) *certs = NULL;
	CMS_ContentInfo *cms = NULL;
	X509 *one = NULL, *c_ca = NULL, *c_ra = NULL, *x;
	int i, rc = -1;

	*ca = *ra = NULL;
	if (len > MDM_SCEP_CLIENT_MAX_CACERT) {
		mdm_err_set(e, MDM_E_TOOBIG, "GetCACert answer over %u bytes",
		    MDM_SCEP_CLIENT_MAX_CACERT);
		goto out;
	}
	if (len == 0 || body == NULL) {
		mdm_err_set(e, MDM_E_DATA, "empty GetCACert answer");
		goto out;
	}
	/* A degenerate SignedData first: a certificate never parses as one. */
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) != NULL) {
		if (p != (const unsigned char *)body + len ||
		    OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
			mdm_err_set(e, MDM_E_DATA, "GetCACert answer is not "
			    "a certificate or a certs-only SignedData");
			goto out;
		}
		certs = CMS_get1_certs(cms);
	} else if (mdm_x509_cert_from_mem(body, len, &one, e) == 0) {
		if ((certs = sk_X509_new_null()) == NULL ||
		    !sk_X509_push(certs, one)) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sk_X509_push");
			goto out;
		}
		one = NULL;
	} else {
		mdm_err_prefix(e, "GetCACert answer");
		goto out;
	}
	for (i = 0; i < sk_X509_num(certs) && c_ra == NULL; i++)
		if (!is_ca(x = sk_X509_value(certs, i)))
			c_ra = x;
	for (i = 0; i < sk_X509_num(certs); i++) {
		x = sk_X509_value(certs, i);
		if (!is_ca(x))
			continue;
		if (c_ca == NULL)
			c_ca = x;
		if (c_ra != NULL && X509_check_issued(x, c_ra) == X509_V_OK) {
			c_ca = x;
			break;
		}
	}
	/* A lone certificate is the CA whatever its extensions say. */
	if (c_ca == NULL && sk_X509_num(certs) == 1) {
		c_ca = c_ra;
		c_ra = NULL;
	}
	if (c_ca == NULL) {
		mdm_err_set(e, MDM_E_DATA, "GetCACert answer holds no CA "
		    "certificate");
		goto out;
	}
	if (!X509_up_ref(c_ca) || (c_ra != NULL && !X509_up_ref(c_ra))) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "X509_up_ref");
		goto out;
	}
	*ca = c_ca;
	*ra = c_ra;
	rc = 0;
out:
	ERR_clear_error();
	X509_free(one);
	sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(cms);
	return rc;
}

/* The request. */

void
mdm_scep_client_free(struct mdm_scep_client *c)
{
	if (c == NULL)
		return;
	X509_free(c->ca);
	X509_free(c->ra);
	X509_free(c->signer);
	EVP_PKEY_free(c->signer_key);
	EVP_PKEY_free(c->key);
	free(c);
}

const char *
mdm_scep_client_txid(const struct mdm_scep_client *c)
{
	return c->txid;
}

static int
make_txid(EVP_PKEY *key, char *out, struct mdm_err *e)
{
	unsigned char *der = NULL, md[32];
	unsigned int mdlen = 0;
	int n, i, rc = -1;

	if ((n = i2d_PUBKEY(key, &der)) <= 0 ||
	    !EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen != sizeof(md)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot hash the public key");
		goto out;
	}
	for (i = 0; i < (int)sizeof(md); i++)
		snprintf(out + 2 * i, 3, "%02X", md[i]);
	rc = 0;
out:
	OPENSSL_free(der);
	return rc;
}

static int
make_csr(const struct mdm_scep_client_req *r, const EVP_MD *md,
    struct mdm_buf *out, struct mdm_err *e)
{
	X509_REQ *req = NULL;
	unsigned char *der = NULL;
	int n, rc = -1;

	if ((req = X509_REQ_new()) == NULL ||
	    !X509_REQ_set_version(req, 0) ||
	    !X509_REQ_set_subject_name(req, r->subject) ||
	    !X509_REQ_set_pubkey(req, r->key)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot build the CSR");
		goto out;
	}
	if (r->challenge != NULL && *r->challenge != '\0' &&
	    !X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
	    MBSTRING_UTF8, (const unsigned char *)r->challenge, -1)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot add the challenge");
		goto out;
	}
	if (X509_REQ_sign(req, r->key, md) <= 0 ||
	    (n = i2d_X509_REQ(req, &der)) <= 0) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot sign the CSR");
		goto out;
	}
	rc = mdm_buf_append(out, der, (size_t)n, e);
out:
	OPENSSL_free(der);
	X509_REQ_free(req);
	return rc;
}

static int
sign_request(struct mdm_scep_client *c, enum mdm_scep_msg_type type,
    const EVP_MD *md, const struct mdm_buf *content, struct mdm_buf *out,
    struct mdm_err *e)
{
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	char ts[8];
	int rc = -1;

	snprintf(ts, sizeof(ts), "%d", (int)type);
	/* SMIMECapabilities stays in: it lets the CA answer with AES. */
	if ((cms = CMS_sign(NULL, NULL, NULL, NULL,
	    CMS_PARTIAL | CMS_BINARY)) == NULL ||
	    (si = CMS_add1_signer(cms, c->signer, c->signer_key, md,
	    CMS_BINARY)) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot set up the "
		    "pkiMessage");
		goto out;
	}
	if (mdm_scep_msg_add_attr(si, MDM_SCEP_OID_MESSAGE_TYPE,
	    V_ASN1_PRINTABLESTRING, ts, strlen(ts), e) == -1 ||
	    mdm_scep_msg_add_attr(si, MDM_SCEP_OID_TRANSACTION_ID,
	    V_ASN1_PRINTABLESTRING, c->txid, strlen(c->txid), e) == -1 ||
	    mdm_scep_msg_add_attr(si, MDM_SCEP_OID_SENDER_NONCE,
	    V_ASN1_OCTET_STRING, c->nonce, sizeof(c->nonce), e) == -1)
		goto out;
	rc = mdm_scep_msg_sign_final(cms, content->data, content->len, out,
	    e);
out:
	CMS_ContentInfo_free(cms);
	return rc;
}

static int
take_ref(X509 *x, X509 **dst, struct mdm_err *e)
{
	if (x != NULL && !X509_up_ref(x))
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "X509_up_ref");
	*dst = x;
	return 0;
}

static int
take_key(EVP_PKEY *k, EVP_PKEY **dst, struct mdm_err *e)
{
	if (!EVP_PKEY_up_ref(k))
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "EVP_PKEY_up_ref");
	*dst = k;
	return 0;
}

static int
check_req(const struct mdm_scep_client_req *r, struct mdm_err *e)
{
	if (r->ca == NULL || r->key == NULL || r->subject == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "a scep request needs the "
		    "CA certificate, a key and a subject");
	if (EVP_PKEY_get_base_id(r->key) != EVP_PKEY_RSA)
		return mdm_err_set(e, MDM_E_USAGE, "scep needs an RSA key");
	if ((r->renew_cert == NULL) != (r->renew_key == NULL))
		return mdm_err_set(e, MDM_E_USAGE, "a renewal needs both the "
		    "old certificate and its key");
	if (r->renew_cert != NULL &&
	    (!mdm_x509_key_matches(r->renew_cert, r->renew_key) ||
	    EVP_PKEY_get_base_id(r->renew_key) != EVP_PKEY_RSA))
		return mdm_err_set(e, MDM_E_USAGE, "the certificate to renew "
		    "does not match its RSA key");
	if (r->challenge != NULL &&
	    strlen(r->challenge) > MDM_SCEP_CLIENT_MAX_CHALLENGE)
		return mdm_err_set(e, MDM_E_USAGE, "scep challenge over %d "
		    "bytes", MDM_SCEP_CLIENT_MAX_CHALLENGE);
	return 0;
}

int
mdm_scep_client_new(const struct mdm_scep_client_req *r, struct mdm_buf *msg,
    struct mdm_scep_client **out, struct mdm_err *e)
{
	static const struct mdm_scep_caps none;
	const struct mdm_scep_caps *caps = r->caps != NULL ? r->caps : &none;
	struct mdm_scep_client *c = NULL;
	struct mdm_x509_opts so = { .kind = MDM_X509_CLIENT,
	    .common_name = "MDM SCEP SIGNER", .days = 1 };
	struct mdm_buf csr, env;
	const EVP_MD *md;
	const EVP_CIPHER *cipher;
	int rc = -1;

	*out = NULL;
	mdm_buf_init(&csr, MDM_CAP_CERT);
	mdm_buf_init(&env, MDM_CAP_CMS);
	if (mdm_scep_msg_init(e) == -1 || check_req(r, e) == -1)
		goto out;
	md = caps->sha256 || caps->standard ? EVP_sha256() :
	    caps->sha512 ? EVP_sha512() : EVP_sha1();
	cipher = caps->aes || caps->standard ? EVP_aes_256_cbc() :
	    EVP_des_ede3_cbc();
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	if (take_ref(r->ca, &c->ca, e) == -1 ||
	    take_ref(r->ra, &c->ra, e) == -1 ||
	    take_key(r->key, &c->key, e) == -1)
		goto out;
	if (r->renew_cert != NULL) {
		if (take_ref(r->renew_cert, &c->signer, e) == -1 ||
		    take_key(r->renew_key, &c->signer_key, e) == -1)
			goto out;
	} else {
		if (mdm_x509_self_sign(r->key, &so, &c->signer, e) == -1 ||
		    take_key(r->key, &c->signer_key, e) == -1)
			goto out;
	}
	if (make_txid(r->key, c->txid, e) == -1)
		goto out;
	if (RAND_bytes(c->nonce, sizeof(c->nonce)) != 1) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "RAND_bytes");
		goto out;
	}
	/* The pkcsPKIEnvelope: the CSR encrypted to the RA, else the CA. */
	if (make_csr(r, md, &csr, e) == -1 ||
	    mdm_scep_msg_encrypt(c->ra != NULL ? c->ra : c->ca, cipher,
	    csr.data, csr.len, &env, e) == -1 ||
	    sign_request(c, r->renew_cert != NULL ?
	    MDM_SCEP_MSG_RENEWAL_REQ : MDM_SCEP_MSG_PKCS_REQ, md, &env, msg,
	    e) == -1)
		goto out;
	*out = c;
	c = NULL;
	rc = 0;
out:
	ERR_clear_error();
	mdm_scep_client_free(c);
	mdm_buf_release(&csr);
	mdm_buf_release(&env);
	return rc;
}

/* The CertRep. */

struct rep {
	char type[8], status[8], fail[8], txid[MDM_SCEP_MSG_TXID_MAX + 1];
	char text[TEXT_MAX + 1];
	int have_rnonce;
	unsigned char rnonce[MDM_SCEP_MSG_NONCE_LEN];
};

static int
read_attrs(CMS_SignerInfo *si, struct rep *r, struct mdm_err *e)
{
	char text[1024], want[8];
	size_t n;

	/* An absent one reads as "": the checks below decide. */
	if (mdm_scep_msg_attr_string(si, MDM_SCEP_OID_MESSAGE_TYPE, r->type,
	    sizeof(r->type), NULL) == -1 ||
	    mdm_scep_msg_attr_string(si, MDM_SCEP_OID_PKI_STATUS, r->status,
	    sizeof(r->status), NULL) == -1 ||
	    mdm_scep_msg_attr_string(si, MDM_SCEP_OID_FAIL_INFO, r->fail,
	    sizeof(r->fail), NULL) == -1 ||
	    mdm_scep_msg_attr_string(si, MDM_SCEP_OID_TRANSACTION_ID, r->txid,
	    sizeof(r->txid), NULL) == -1)
		return mdm_err_set(e, MDM_E_DATA, "CertRep has a malformed "
		    "scep attribute");
	/* Only quoted in a message: a bad one is left out, not fatal. */
	if (mdm_scep_msg_attr_string(si, MDM_SCEP_OID_FAIL_INFO_TEXT, text,
	    sizeof(text), NULL) == 0) {
		text[TEXT_MAX] = '\0';
		memcpy(r->text, text, strlen(text) + 1);
	}
	if (mdm_scep_msg_attr_octets(si, MDM_SCEP_OID_RECIPIENT_NONCE,
	    r->rnonce, sizeof(r->rnonce), &n) == 0 && n == sizeof(r->rnonce))
		r->have_rnonce = 1;
	snprintf(want, sizeof(want), "%d", MDM_SCEP_MSG_CERT_REP);
	if (strcmp(r->type, want) != 0)
		return mdm_err_set(e, MDM_E_DATA, "not a CertRep (messageType "
		    "\"%s\")", r->type);
	return 0;
}

/* Checks the one signature with the CA and RA, never with others. */
static int
verify_signer(const struct mdm_scep_client *c, CMS_ContentInfo *cms,
    CMS_SignerInfo *si, struct mdm_err *e)
{
	STACK_OF(X509) *trusted = NULL, *signers = NULL;
	BIO *dcont = NULL;
	ASN1_OCTET_STRING **pos;
	X509 *who;
	int rc = -1;

	if ((trusted = sk_X509_new_null()) == NULL ||
	    !sk_X509_push(trusted, c->ca) ||
	    (c->ra != NULL && !sk_X509_push(trusted, c->ra))) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sk_X509_push");
		goto out;
	}
	/* A FAILURE may come without any eContent at all. */
	pos = CMS_get0_content(cms);
	if ((pos == NULL || *pos == NULL) &&
	    (dcont = mdm_bio_from_mem("", 0, e)) == NULL)
		goto out;
	if (CMS_verify(cms, trusted, NULL, dcont, NULL,
	    CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY | CMS_NOINTERN) != 1) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "CertRep signature does not "
		    "verify with the CA");
		goto out;
	}
	if ((signers = CMS_get0_signers(cms)) == NULL ||
	    sk_X509_num(signers) != 1 ||
	    (who = sk_X509_value(signers, 0)) == NULL ||
	    (X509_cmp(who, c->ca) != 0 &&
	    (c->ra == NULL || X509_cmp(who, c->ra) != 0))) {
		mdm_err_set(e, MDM_E_CRYPTO, "CertRep is not signed by the CA "
		    "or its RA");
		goto out;
	}
	if (!mdm_scep_msg_content_type_ok(cms, si)) {
		mdm_err_set(e, MDM_E_CRYPTO, "CertRep signed content type does "
		    "not match its content");
		goto out;
	}
	rc = 0;
out:
	BIO_free(dcont);
	sk_X509_free(signers);
	sk_X509_free(trusted);
	return rc;
}

/* The issued certificate from the envelope: the one over our key. */
static int
open_envelope(const struct mdm_scep_client *c, CMS_ContentInfo *cms,
    X509 **cert, struct mdm_err *e)
{
	ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
	CMS_ContentInfo *deg = NULL;
	STACK_OF(X509) *certs = NULL;
	struct mdm_buf plain;
	const unsigned char *p;
	X509 *x;
	int i, rc = -1;

	mdm_buf_init(&plain, MDM_SCEP_CLIENT_MAX_CERTREP);
	if (pos == NULL || *pos == NULL || ASN1_STRING_length(*pos) <= 0) {
		mdm_err_set(e, MDM_E_DATA, "CertRep SUCCESS without content");
		goto out;
	}
	if (mdm_cms_decrypt(ASN1_STRING_get0_data(*pos),
	    (size_t)ASN1_STRING_length(*pos), c->signer, c->signer_key, &plain,
	    e) == -1) {
		mdm_err_prefix(e, "CertRep envelope");
		goto out;
	}
	p = plain.data;
	if (plain.len == 0 || plain.len > LONG_MAX ||
	    (deg = d2i_CMS_ContentInfo(NULL, &p, (long)plain.len)) == NULL ||
	    p != plain.data + plain.len ||
	    OBJ_obj2nid(CMS_get0_type(deg)) != NID_pkcs7_signed) {
		mdm_err_set(e, MDM_E_DATA, "CertRep envelope does not hold a "
		    "certs-only SignedData");
		goto out;
	}
	certs = CMS_get1_certs(deg);
	for (i = 0; i < sk_X509_num(certs); i++) {
		x = sk_X509_value(certs, i);
		if (X509_get0_pubkey(x) != NULL &&
		    EVP_PKEY_eq(X509_get0_pubkey(x), c->key) == 1) {
			if (!X509_up_ref(x)) {
				mdm_err_set_ssl(e, MDM_E_SOFTWARE,
				    "X509_up_ref");
				goto out;
			}
			*cert = x;
			rc = 0;
			goto out;
		}
	}
	mdm_err_set(e, MDM_E_DATA, "CertRep holds no certificate for our key");
out:
	sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(deg);
	mdm_buf_release(&plain);
	return rc;
}

int
mdm_scep_client_certrep(const struct mdm_scep_client *c, const void *der,
    size_t len, X509 **cert, int *fail_info, struct mdm_err *e)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	struct rep r;
	int rc = -1, f;

	*cert = NULL;
	if (fail_info != NULL)
		*fail_info = -1;
	memset(&r, 0, sizeof(r));
	if (mdm_scep_msg_init(e) == -1)
		goto out;
	if (len > MDM_SCEP_CLIENT_MAX_CERTREP) {
		mdm_err_set(e, MDM_E_TOOBIG, "CertRep over %u bytes",
		    MDM_SCEP_CLIENT_MAX_CERTREP);
		goto out;
	}
	if (len == 0 || der == NULL ||
	    (cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL ||
	    p != (const unsigned char *)der + len) {
		mdm_err_set(e, MDM_E_DATA, "CertRep is not a CMS message");
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed ||
	    sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) != 1) {
		mdm_err_set(e, MDM_E_DATA, "CertRep is not a SignedData with "
		    "one signer");
		goto out;
	}
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	if (read_attrs(si, &r, e) == -1 || verify_signer(c, cms, si, e) == -1)
		goto out;
	/* Signed by the CA, but is it the answer to this request? */
	if (strcmp(r.txid, c->txid) != 0) {
		mdm_err_set(e, MDM_E_CRYPTO, "CertRep is for another "
		    "transaction");
		goto out;
	}
	if (!r.have_rnonce || CRYPTO_memcmp(r.rnonce, c->nonce,
	    sizeof(c->nonce)) != 0) {
		mdm_err_set(e, MDM_E_CRYPTO, "CertRep recipientNonce is not "
		    "our senderNonce");
		goto out;
	}
	if (strcmp(r.status, "2") == 0) {
		f = strlen(r.fail) == 1 && r.fail[0] >= '0' &&
		    r.fail[0] <= '4' ? r.fail[0] - '0' : -1;
		if (fail_info != NULL)
			*fail_info = f;
		mdm_err_set(e, MDM_E_PERM, "scep server refused the request: "
		    "%s%s%s", f >= 0 ? mdm_scep_client_fail_name(f) :
		    "no valid failInfo", r.text[0] != '\0' ? ": " : "",
		    r.text);
		goto out;
	}
	if (strcmp(r.status, "3") == 0) {
		mdm_err_set(e, MDM_E_TEMPFAIL, "scep request is pending "
		    "(polling is not supported)");
		goto out;
	}
	if (strcmp(r.status, "0") != 0) {
		mdm_err_set(e, MDM_E_DATA, "CertRep has no valid pkiStatus");
		goto out;
	}
	rc = open_envelope(c, cms, cert, e);
out:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	return rc;
}
