#include <limits.h>
#include <stddef.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "buf.h"
#include "scep_msg.h"
#include "ossl_int.h"
#include "mdm_int.h"

static const char *const oid_text[MDM_SCEP_OID_COUNT] = {
	"2.16.840.1.113733.1.9.2",
	"2.16.840.1.113733.1.9.3",
	"2.16.840.1.113733.1.9.4",
	"2.16.840.1.113733.1.9.5",
	"2.16.840.1.113733.1.9.6",
	"2.16.840.1.113733.1.9.7",
	"1.3.6.1.5.5.7.24.1",
};

static ASN1_OBJECT *oids[MDM_SCEP_OID_COUNT];
static CRYPTO_ONCE oids_once = CRYPTO_ONCE_STATIC_INIT;
static int oids_ready;

static void
make_oids(void)
{
	size_t i;

	for (i = 0; i < MDM_SCEP_OID_COUNT; i++)
		if ((oids[i] = OBJ_txt2obj(oid_text[i], 1)) == NULL)
			return;
	oids_ready = 1;
}

int
mdm_scep_msg_init(struct mdm_err *e)
{
	if (!CRYPTO_THREAD_run_once(&oids_once, make_oids) || !oids_ready)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE,
		    "cannot set up the scep object identifiers");
	return 0;
}

const ASN1_OBJECT *
mdm_scep_msg_oid(enum mdm_scep_oid oid)
{
	if (!oids_ready || (unsigned)oid >= MDM_SCEP_OID_COUNT)
		return NULL;
	return oids[oid];
}

ASN1_TYPE *
mdm_scep_msg_attr(CMS_SignerInfo *si, const ASN1_OBJECT *obj)
{
	X509_ATTRIBUTE *at;
	int i;

	if (obj == NULL ||
	    (i = CMS_signed_get_attr_by_OBJ(si, obj, -1)) < 0 ||
	    CMS_signed_get_attr_by_OBJ(si, obj, i) >= 0 ||
	    (at = CMS_signed_get_attr(si, i)) == NULL ||
	    X509_ATTRIBUTE_count(at) != 1)
		return NULL;
	return X509_ATTRIBUTE_get0_type(at, 0);
}

static int
has_attr(CMS_SignerInfo *si, enum mdm_scep_oid oid)
{
	const ASN1_OBJECT *obj = mdm_scep_msg_oid(oid);

	return obj != NULL && CMS_signed_get_attr_by_OBJ(si, obj, -1) >= 0;
}

int
mdm_scep_msg_attr_string(CMS_SignerInfo *si, enum mdm_scep_oid oid,
    char *out, size_t outlen, int *type)
{
	const unsigned char *p;
	ASN1_TYPE *t;
	int n, i;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if (!has_attr(si, oid))
		return 1;
	if ((t = mdm_scep_msg_attr(si, mdm_scep_msg_oid(oid))) == NULL)
		return -1;
	switch (t->type) {
	case V_ASN1_PRINTABLESTRING:
	case V_ASN1_UTF8STRING:
	case V_ASN1_IA5STRING:
		break;
	default:
		return -1;
	}
	n = ASN1_STRING_length(t->value.asn1_string);
	p = ASN1_STRING_get0_data(t->value.asn1_string);
	if (n < 0 || (size_t)n >= outlen || (n > 0 && p == NULL))
		return -1;
	for (i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return -1;
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	if (type != NULL)
		*type = t->type;
	return 0;
}

int
mdm_scep_msg_attr_octets(CMS_SignerInfo *si, enum mdm_scep_oid oid,
    unsigned char *out, size_t outlen, size_t *len)
{
	ASN1_TYPE *t;
	int n;

	if (!has_attr(si, oid))
		return 1;
	if ((t = mdm_scep_msg_attr(si, mdm_scep_msg_oid(oid))) == NULL ||
	    t->type != V_ASN1_OCTET_STRING)
		return -1;
	n = ASN1_STRING_length(t->value.octet_string);
	if (n <= 0 || (size_t)n > outlen)
		return -1;
	memcpy(out, ASN1_STRING_get0_data(t->value.octet_string), (size_t)n);
	*len = (size_t)n;
	return 0;
}

int
mdm_scep_msg_add_attr(CMS_SignerInfo *si, enum mdm_scep_oid oid, int type,
    const void *p, size_t n, struct mdm_err *e)
{
	const ASN1_OBJECT *obj = mdm_scep_msg_oid(oid);

	if (obj == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "no scep attribute %d",
		    (int)oid);
	if (n > INT_MAX || !CMS_signed_add1_attr_by_OBJ(si, obj, type, p,
	    (int)n))
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE,
		    "cannot add signed attribute %s", oid_text[oid]);
	return 0;
}

int
mdm_scep_msg_content_type_ok(CMS_ContentInfo *cms, CMS_SignerInfo *si)
{
	const ASN1_OBJECT *ct;

	ct = CMS_signed_get0_data_by_OBJ(si,
	    OBJ_nid2obj(NID_pkcs9_contentType), -3, V_ASN1_OBJECT);
	return ct != NULL && OBJ_cmp(ct, CMS_get0_eContentType(cms)) == 0;
}

int
mdm_scep_msg_der(CMS_ContentInfo *cms, struct mdm_buf *out,
    struct mdm_err *e)
{
	unsigned char *der = NULL;
	int n, rc;

	if ((n = i2d_CMS_ContentInfo(cms, &der)) <= 0)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE,
		    "cannot encode a CMS message");
	rc = mdm_buf_append(out, der, (size_t)n, e);
	OPENSSL_free(der);
	return rc;
}

int
mdm_scep_msg_encrypt(X509 *to, const EVP_CIPHER *cipher, const void *p,
    size_t n, struct mdm_buf *out, struct mdm_err *e)
{
	STACK_OF(X509) *rcpt = NULL;
	CMS_ContentInfo *cms = NULL;
	BIO *in = NULL;
	int rc = -1;

	if ((rcpt = sk_X509_new_null()) == NULL || !sk_X509_push(rcpt, to)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sk_X509_push");
		goto out;
	}
	if ((in = mdm_bio_from_mem(p, n, e)) == NULL)
		goto out;
	if ((cms = CMS_encrypt(rcpt, in, cipher, CMS_BINARY)) == NULL) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot encrypt to the "
		    "recipient certificate");
		goto out;
	}
	rc = mdm_scep_msg_der(cms, out, e);
out:
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	sk_X509_free(rcpt);
	return rc;
}

int
mdm_scep_msg_sign_final(CMS_ContentInfo *cms, const void *p, size_t n,
    struct mdm_buf *out, struct mdm_err *e)
{
	BIO *in;
	int rc = -1;

	if ((in = mdm_bio_from_mem(p, n, e)) == NULL)
		return -1;
	if (!CMS_final(cms, in, NULL, CMS_BINARY)) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot sign the pkiMessage");
		goto out;
	}
	rc = mdm_scep_msg_der(cms, out, e);
out:
	BIO_free(in);
	return rc;
}
