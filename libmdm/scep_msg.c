#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "buf.h"
#include "der.h"
#include "scep_msg.h"
#include "ossl_int.h"
#include "mdm_int.h"

/* Largest RSA key whose signature or key transport fits: 16384 bits. */
#define RSA_MAX_BYTES		2048
/* What the messages built here hold at most. */
#define SIGNED_CERTS_MAX	8
#define SIGNED_ATTRS_MAX	16

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

/* IssuerAndSerialNumber of cert (RFC 5652 10.2.4). */
static void
put_issuer_serial(struct mdm_der *w, X509 *cert)
{
	size_t seq = mdm_der_begin(w, MDM_DER_SEQUENCE);

	mdm_der_i2d(w, X509_get_issuer_name(cert), ASN1_ITEM_rptr(X509_NAME));
	mdm_der_i2d(w, X509_get0_serialNumber(cert),
	    ASN1_ITEM_rptr(ASN1_INTEGER));
	mdm_der_end(w, seq);
}

/* AlgorithmIdentifier rsaEncryption with NULL parameters. */
static void
put_rsa_alg(struct mdm_der *w)
{
	size_t seq = mdm_der_begin(w, MDM_DER_SEQUENCE);

	mdm_der_nid(w, NID_rsaEncryption);
	mdm_der_put(w, MDM_DER_NULL, NULL, 0);
	mdm_der_end(w, seq);
}

/*
 * The RSA encryption of the n bytes at p to cert's key into ek (at most
 * RSA_MAX_BYTES, a 16384-bit key), its length into *eklen.
 */
static int
rsa_encrypt_to(X509 *cert, const unsigned char *p, size_t n,
    unsigned char ek[RSA_MAX_BYTES], size_t *eklen, struct mdm_err *e)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	EVP_PKEY_CTX *ctx = NULL;
	int rc = -1;

	*eklen = 0;
	if (pub == NULL || EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA ||
	    (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL)) == NULL ||
	    EVP_PKEY_encrypt_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
	    EVP_PKEY_encrypt(ctx, NULL, eklen, p, n) <= 0 ||
	    *eklen > RSA_MAX_BYTES ||
	    EVP_PKEY_encrypt(ctx, ek, eklen, p, n) <= 0) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot encrypt to the "
		    "recipient certificate");
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

/* The n bytes at p in cipher under a fresh key and IV into ct. */
static int
encrypt_content(const EVP_CIPHER *cipher, const void *p, size_t n,
    unsigned char key[EVP_MAX_KEY_LENGTH], int *keylen,
    unsigned char iv[EVP_MAX_IV_LENGTH], int *ivlen, struct mdm_buf *ct,
    struct mdm_err *e)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *buf = NULL;
	int bs, outl = 0, finl = 0, rc = -1;

	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    !EVP_EncryptInit_ex2(ctx, cipher, NULL, NULL, NULL) ||
	    (*keylen = EVP_CIPHER_CTX_get_key_length(ctx)) <= 0 ||
	    *keylen > EVP_MAX_KEY_LENGTH ||
	    (*ivlen = EVP_CIPHER_CTX_get_iv_length(ctx)) <= 0 ||
	    *ivlen > EVP_MAX_IV_LENGTH ||
	    (bs = EVP_CIPHER_CTX_get_block_size(ctx)) <= 0 ||
	    n > INT_MAX - 2 * (size_t)bs ||
	    /* Sets DES parity as CMS_encrypt does. */
	    EVP_CIPHER_CTX_rand_key(ctx, key) <= 0 ||
	    RAND_bytes(iv, *ivlen) != 1 ||
	    !EVP_EncryptInit_ex2(ctx, NULL, key, iv, NULL)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot set up the content "
		    "cipher");
		goto out;
	}
	if ((buf = malloc(n + (size_t)bs)) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	if (!EVP_EncryptUpdate(ctx, buf, &outl, p, (int)n) ||
	    !EVP_EncryptFinal_ex(ctx, buf + outl, &finl)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot encrypt");
		goto out;
	}
	rc = mdm_buf_append(ct, buf, (size_t)outl + (size_t)finl, e);
out:
	free(buf);
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int
mdm_scep_msg_encrypt(X509 *to, const EVP_CIPHER *cipher, const void *p,
    size_t n, struct mdm_buf *out, struct mdm_err *e)
{
	unsigned char key[EVP_MAX_KEY_LENGTH], iv[EVP_MAX_IV_LENGTH];
	unsigned char ek[RSA_MAX_BYTES];
	struct mdm_buf ct;
	struct mdm_der w;
	size_t ci, exp, env, set, ktri, eci, alg, eklen = 0;
	int keylen = 0, ivlen = 0, rc = -1;

	mdm_buf_init(&ct, out->cap);
	if (encrypt_content(cipher, p, n, key, &keylen, iv, &ivlen, &ct,
	    e) == -1 ||
	    rsa_encrypt_to(to, key, (size_t)keylen, ek, &eklen, e) == -1)
		goto out;
	mdm_der_init(&w, out);
	ci = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_nid(&w, NID_pkcs7_enveloped);
	exp = mdm_der_begin(&w, MDM_DER_CTX_CONS(0));
	env = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_uint(&w, 0);
	set = mdm_der_begin(&w, MDM_DER_SET);
	ktri = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_uint(&w, 0);
	put_issuer_serial(&w, to);
	put_rsa_alg(&w);
	mdm_der_put(&w, MDM_DER_OCTET_STRING, ek, eklen);
	mdm_der_end(&w, ktri);
	mdm_der_end(&w, set);
	eci = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_nid(&w, NID_pkcs7_data);
	alg = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_nid(&w, EVP_CIPHER_get_nid(cipher));
	mdm_der_put(&w, MDM_DER_OCTET_STRING, iv, (size_t)ivlen);
	mdm_der_end(&w, alg);
	mdm_der_put(&w, MDM_DER_CTX(0), ct.data, ct.len);
	mdm_der_end(&w, eci);
	mdm_der_end(&w, env);
	mdm_der_end(&w, exp);
	mdm_der_end(&w, ci);
	rc = mdm_der_finish(&w, e);
out:
	OPENSSL_cleanse(key, sizeof(key));
	mdm_buf_release(&ct);
	return rc;
}

/*
 * certs (and the CRL) as the [0] certificates and [1] crls of a
 * SignedData, each a SET OF in DER order; scratch holds the encodings
 * while they are sorted.
 */
static void
put_certs(struct mdm_der *w, X509 *const *certs, size_t n, X509_CRL *crl,
    struct mdm_buf *scratch)
{
	const unsigned char *item[SIGNED_CERTS_MAX];
	size_t len[SIGNED_CERTS_MAX], off[SIGNED_CERTS_MAX], i, tag;
	struct mdm_der sw;
	struct mdm_err e;

	if (n > SIGNED_CERTS_MAX) {
		mdm_err_set(&e, MDM_E_SOFTWARE, "more than %d certificates",
		    SIGNED_CERTS_MAX);
		mdm_der_fail(w, &e);
		return;
	}
	mdm_der_init(&sw, scratch);
	for (i = 0; i < n; i++) {
		off[i] = scratch->len;
		mdm_der_i2d(&sw, certs[i], ASN1_ITEM_rptr(X509));
		len[i] = scratch->len - off[i];
	}
	if (mdm_der_finish(&sw, &e) == -1) {
		mdm_der_fail(w, &e);
		return;
	}
	for (i = 0; i < n; i++)
		item[i] = scratch->data + off[i];
	if (n > 0) {
		tag = mdm_der_begin(w, MDM_DER_CTX_CONS(0));
		mdm_der_set_of(w, item, len, n);
		mdm_der_end(w, tag);
	}
	if (crl != NULL) {
		tag = mdm_der_begin(w, MDM_DER_CTX_CONS(1));
		mdm_der_i2d(w, crl, ASN1_ITEM_rptr(X509_CRL));
		mdm_der_end(w, tag);
	}
}

/* AlgorithmIdentifier of md, parameters absent (RFC 5754 2). */
static void
put_digest_alg(struct mdm_der *w, const EVP_MD *md)
{
	size_t seq = mdm_der_begin(w, MDM_DER_SEQUENCE);

	mdm_der_nid(w, EVP_MD_get_type(md));
	mdm_der_end(w, seq);
}

struct attr {
	const ASN1_OBJECT *obj;
	unsigned char tag;
	const void *p;
	size_t n;
};

/* Attribute ::= SEQUENCE { OID, SET { the one value } } */
static void
put_attr(struct mdm_der *w, const struct attr *a)
{
	size_t seq = mdm_der_begin(w, MDM_DER_SEQUENCE), set;

	mdm_der_obj(w, a->obj);
	set = mdm_der_begin(w, MDM_DER_SET);
	mdm_der_put(w, a->tag, a->p, a->n);
	mdm_der_end(w, set);
	mdm_der_end(w, seq);
}

/*
 * The signed attributes as the DER SET the signature covers, into out.
 * The signer's [0] IMPLICIT form differs only in its first octet.
 */
static int
signed_attrs(const EVP_MD *md, const void *p, size_t n,
    const struct mdm_scep_msg_value *vals, size_t nvals,
    struct mdm_buf *out, struct mdm_err *e)
{
	const ASN1_OBJECT *data = OBJ_nid2obj(NID_pkcs7_data);
	const unsigned char *item[SIGNED_ATTRS_MAX];
	unsigned char digest[EVP_MAX_MD_SIZE], time_tag;
	size_t len[SIGNED_ATTRS_MAX], off[SIGNED_ATTRS_MAX], i, k, set;
	unsigned int dlen = 0;
	char when[MDM_DER_TIME_MAX];
	struct attr a[SIGNED_ATTRS_MAX];
	struct mdm_buf attrs;
	struct mdm_der w;
	int rc = -1;

	if (nvals > SIGNED_ATTRS_MAX - 3)
		return mdm_err_set(e, MDM_E_SOFTWARE, "too many signed "
		    "attributes");
	mdm_buf_init(&attrs, MDM_CAP_CMS);
	if (!EVP_Digest(p != NULL ? p : "", n, digest, &dlen, md, NULL) ||
	    mdm_der_time_str((long long)time(NULL), when, &time_tag) == -1) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot hash the content");
		goto out;
	}
	a[0] = (struct attr){ OBJ_nid2obj(NID_pkcs9_contentType),
	    MDM_DER_OID, OBJ_get0_data(data), (size_t)OBJ_length(data) };
	a[1] = (struct attr){ OBJ_nid2obj(NID_pkcs9_signingTime), time_tag,
	    when, strlen(when) };
	a[2] = (struct attr){ OBJ_nid2obj(NID_pkcs9_messageDigest),
	    MDM_DER_OCTET_STRING, digest, dlen };
	k = 3;
	for (i = 0; i < nvals; i++, k++)
		a[k] = (struct attr){ mdm_scep_msg_oid(vals[i].oid),
		    (unsigned char)vals[i].type, vals[i].p, vals[i].n };
	mdm_der_init(&w, &attrs);
	for (i = 0; i < k; i++) {
		off[i] = attrs.len;
		put_attr(&w, &a[i]);
		len[i] = attrs.len - off[i];
	}
	if (mdm_der_finish(&w, e) == -1)
		goto out;
	for (i = 0; i < k; i++)
		item[i] = attrs.data + off[i];
	mdm_der_init(&w, out);
	set = mdm_der_begin(&w, MDM_DER_SET);
	mdm_der_set_of(&w, item, len, k);
	mdm_der_end(&w, set);
	rc = mdm_der_finish(&w, e);
out:
	mdm_buf_release(&attrs);
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

/* The RSA PKCS #1 v1.5 signature with md over the n bytes at p into sig. */
static int
sign_bytes(EVP_PKEY *key, const EVP_MD *md, const void *p, size_t n,
    unsigned char sig[RSA_MAX_BYTES], size_t *siglen, struct mdm_err *e)
{
	EVP_MD_CTX *ctx;
	int rc = -1;

	*siglen = RSA_MAX_BYTES;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, NULL, md, NULL, key) != 1 ||
	    EVP_DigestSign(ctx, NULL, siglen, p, n) != 1 ||
	    *siglen > RSA_MAX_BYTES ||
	    EVP_DigestSign(ctx, sig, siglen, p, n) != 1) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot sign the pkiMessage");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
mdm_scep_msg_sign(X509 *cert, EVP_PKEY *key, const EVP_MD *md,
    const struct mdm_scep_msg_value *vals, size_t nvals, const void *p,
    size_t n, X509 *const *certs, size_t ncerts, struct mdm_buf *out,
    struct mdm_err *e)
{
	unsigned char sig[RSA_MAX_BYTES];
	struct mdm_buf attrs, scratch;
	struct mdm_der w;
	size_t ci, exp, sd, set, eci, octets, si, at, siglen = 0;
	int rc = -1;

	mdm_buf_init(&attrs, MDM_CAP_CMS);
	mdm_buf_init(&scratch, MDM_CAP_CMS);
	if (signed_attrs(md, p, n, vals, nvals, &attrs, e) == -1 ||
	    sign_bytes(key, md, attrs.data, attrs.len, sig, &siglen,
	    e) == -1)
		goto out;
	mdm_der_init(&w, out);
	ci = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_nid(&w, NID_pkcs7_signed);
	exp = mdm_der_begin(&w, MDM_DER_CTX_CONS(0));
	sd = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_uint(&w, 1);
	set = mdm_der_begin(&w, MDM_DER_SET);
	put_digest_alg(&w, md);
	mdm_der_end(&w, set);
	eci = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_nid(&w, NID_pkcs7_data);
	octets = mdm_der_begin(&w, MDM_DER_CTX_CONS(0));
	mdm_der_put(&w, MDM_DER_OCTET_STRING, p, n);
	mdm_der_end(&w, octets);
	mdm_der_end(&w, eci);
	put_certs(&w, certs, ncerts, NULL, &scratch);
	set = mdm_der_begin(&w, MDM_DER_SET);
	si = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_uint(&w, 1);
	put_issuer_serial(&w, cert);
	put_digest_alg(&w, md);
	at = out->len;
	mdm_der_raw(&w, attrs.data, attrs.len);
	if (!w.failed)
		out->data[at] = MDM_DER_CTX_CONS(0);
	put_rsa_alg(&w);
	mdm_der_put(&w, MDM_DER_OCTET_STRING, sig, siglen);
	mdm_der_end(&w, si);
	mdm_der_end(&w, set);
	mdm_der_end(&w, sd);
	mdm_der_end(&w, exp);
	mdm_der_end(&w, ci);
	rc = mdm_der_finish(&w, e);
out:
	mdm_buf_release(&attrs);
	mdm_buf_release(&scratch);
	return rc;
}

int
mdm_scep_msg_certs_only(X509 *const *certs, size_t n, X509_CRL *crl,
    struct mdm_buf *out, struct mdm_err *e)
{
	struct mdm_buf scratch;
	struct mdm_der w;
	size_t ci, exp, sd, set, eci;
	int rc;

	mdm_buf_init(&scratch, MDM_CAP_CMS);
	mdm_der_init(&w, out);
	ci = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_nid(&w, NID_pkcs7_signed);
	exp = mdm_der_begin(&w, MDM_DER_CTX_CONS(0));
	sd = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_uint(&w, 1);
	set = mdm_der_begin(&w, MDM_DER_SET);
	mdm_der_end(&w, set);
	eci = mdm_der_begin(&w, MDM_DER_SEQUENCE);
	mdm_der_nid(&w, NID_pkcs7_data);
	mdm_der_end(&w, eci);
	put_certs(&w, certs, n, crl, &scratch);
	set = mdm_der_begin(&w, MDM_DER_SET);
	mdm_der_end(&w, set);
	mdm_der_end(&w, sd);
	mdm_der_end(&w, exp);
	mdm_der_end(&w, ci);
	rc = mdm_der_finish(&w, e);
	mdm_buf_release(&scratch);
	return rc;
}
