/*
 * test_scep_msg: the SCEP message parts both halves share.  The object
 * identifiers (none before init, their dotted text after, none out of
 * range); signed attributes written with mdm_scep_msg_add_attr and read
 * back from the DER that mdm_scep_msg_sign_final makes: strings (type
 * echoed, empty allowed, absent is 1, wrong type, non-printable, too
 * long, twice, two values are -1), octets (length, too long, wrong
 * type, absent); the signed contentType check both ways (the duplicates
 * and the mismatch go in after signing: OpenSSL would not sign them);
 * encoding under a cap; mdm_scep_msg_encrypt decrypted back with
 * mdm_cms_decrypt, or refused as MDM_E_CRYPTO for a key that cannot
 * take it (Ed25519); and the messages encoded by hand (the envelope,
 * mdm_scep_msg_sign, mdm_scep_msg_certs_only) read by OpenSSL, verified,
 * their attributes read back, and written back by OpenSSL to the same
 * bytes, which shows they are canonical DER.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "buf.h"
#include "cms.h"
#include "scep_msg.h"
#include "tap.h"
#include "x509.h"

static EVP_PKEY *key;
static X509 *cert;

static void
die(const char *what, const struct mdm_err *e)
{
	fprintf(stderr, "test_scep_msg: %s: %s\n", what,
	    e != NULL ? e->msg : "failed");
	ERR_print_errors_fp(stderr);
	exit(99);
}

/* A partial SignedData by cert, its one signer in *si. */
static CMS_ContentInfo *
start(CMS_SignerInfo **si)
{
	CMS_ContentInfo *cms;

	if ((cms = CMS_sign(NULL, NULL, NULL, NULL,
	    CMS_PARTIAL | CMS_BINARY)) == NULL ||
	    (*si = CMS_add1_signer(cms, cert, key, EVP_sha256(),
	    CMS_BINARY)) == NULL)
		die("CMS_sign", NULL);
	return cms;
}

/* Signs cms over "hello", frees it, and parses the DER back. */
static CMS_ContentInfo *
finish(CMS_ContentInfo *cms, CMS_SignerInfo **si)
{
	struct mdm_buf der;
	struct mdm_err e;
	const unsigned char *p;
	CMS_ContentInfo *back;

	mdm_buf_init(&der, MDM_CAP_CMS);
	if (mdm_scep_msg_sign_final(cms, "hello", 5, &der, &e) == -1)
		die("sign_final", &e);
	CMS_ContentInfo_free(cms);
	p = der.data;
	if ((back = d2i_CMS_ContentInfo(NULL, &p, (long)der.len)) == NULL)
		die("d2i_CMS_ContentInfo", NULL);
	mdm_buf_release(&der);
	*si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(back), 0);
	return back;
}

/*
 * 1 when OpenSSL reads der as a CMS message and writes the very same
 * bytes back: the hand-made encoding is the canonical DER.
 */
static int
reencodes_same(const struct mdm_buf *der, CMS_ContentInfo **out)
{
	const unsigned char *p = der->data;
	unsigned char *again = NULL;
	CMS_ContentInfo *cms;
	int n, same;

	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)der->len)) == NULL ||
	    p != der->data + der->len) {
		CMS_ContentInfo_free(cms);
		return 0;
	}
	n = i2d_CMS_ContentInfo(cms, &again);
	same = n > 0 && (size_t)n == der->len &&
	    memcmp(again, der->data, der->len) == 0;
	OPENSSL_free(again);
	if (out != NULL)
		*out = cms;
	else
		CMS_ContentInfo_free(cms);
	return same;
}

static void
test_oids(void)
{
	static const char *const want[MDM_SCEP_OID_COUNT] = {
		"2.16.840.1.113733.1.9.2", "2.16.840.1.113733.1.9.3",
		"2.16.840.1.113733.1.9.4", "2.16.840.1.113733.1.9.5",
		"2.16.840.1.113733.1.9.6", "2.16.840.1.113733.1.9.7",
		"1.3.6.1.5.5.7.24.1",
	};
	struct mdm_err e;
	char text[80];
	int i, same = 1;

	ok(mdm_scep_msg_oid(MDM_SCEP_OID_MESSAGE_TYPE) == NULL,
	    "no object before init");
	is_int(mdm_scep_msg_init(&e), 0, "init");
	is_int(mdm_scep_msg_init(&e), 0, "init again");
	for (i = 0; i < MDM_SCEP_OID_COUNT; i++) {
		const ASN1_OBJECT *o = mdm_scep_msg_oid(i);

		if (o == NULL || OBJ_obj2txt(text, sizeof(text), o, 1) <= 0 ||
		    strcmp(text, want[i]) != 0)
			same = 0;
	}
	ok(same, "every object has its dotted text");
	ok(mdm_scep_msg_oid(MDM_SCEP_OID_COUNT) == NULL, "none past the end");
}

static void
test_attrs(void)
{
	static const unsigned char nonce[16] = "0123456789abcdef";
	static const unsigned char long_nonce[20] = "0123456789abcdefghij";
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	struct mdm_err e;
	unsigned char oct[32];
	char s[16];
	size_t n = 0;
	int type = 0;

	cms = start(&si);
	if (mdm_scep_msg_add_attr(si, MDM_SCEP_OID_MESSAGE_TYPE,
	    V_ASN1_PRINTABLESTRING, "19", 2, &e) == -1 ||
	    mdm_scep_msg_add_attr(si, MDM_SCEP_OID_TRANSACTION_ID,
	    V_ASN1_UTF8STRING, "ABC", 3, &e) == -1 ||
	    mdm_scep_msg_add_attr(si, MDM_SCEP_OID_PKI_STATUS,
	    V_ASN1_PRINTABLESTRING, "", 0, &e) == -1 ||
	    mdm_scep_msg_add_attr(si, MDM_SCEP_OID_FAIL_INFO,
	    V_ASN1_OCTET_STRING, "2", 1, &e) == -1 ||
	    mdm_scep_msg_add_attr(si, MDM_SCEP_OID_FAIL_INFO_TEXT,
	    V_ASN1_UTF8STRING, "bad\001", 4, &e) == -1 ||
	    mdm_scep_msg_add_attr(si, MDM_SCEP_OID_SENDER_NONCE,
	    V_ASN1_OCTET_STRING, nonce, sizeof(nonce), &e) == -1 ||
	    mdm_scep_msg_add_attr(si, MDM_SCEP_OID_RECIPIENT_NONCE,
	    V_ASN1_OCTET_STRING, long_nonce, sizeof(long_nonce), &e) == -1)
		die("add_attr", &e);
	is_int(mdm_scep_msg_add_attr(si, MDM_SCEP_OID_MESSAGE_TYPE,
	    V_ASN1_PRINTABLESTRING, "x", (size_t)INT_MAX + 1, &e), -1,
	    "add_attr refuses over INT_MAX bytes");
	cms = finish(cms, &si);

	is_int(mdm_scep_msg_attr_string(si, MDM_SCEP_OID_MESSAGE_TYPE, s,
	    sizeof(s), &type), 0, "messageType read");
	is_str(s, "19", "messageType value");
	is_int(type, V_ASN1_PRINTABLESTRING, "messageType type");
	is_int(mdm_scep_msg_attr_string(si, MDM_SCEP_OID_TRANSACTION_ID, s,
	    sizeof(s), &type), 0, "UTF8String transactionID read");
	is_int(type, V_ASN1_UTF8STRING, "its type is echoed");
	is_int(mdm_scep_msg_attr_string(si, MDM_SCEP_OID_PKI_STATUS, s,
	    sizeof(s), NULL), 0, "empty string read");
	is_str(s, "", "as \"\"");
	is_int(mdm_scep_msg_attr_string(si, MDM_SCEP_OID_FAIL_INFO, s,
	    sizeof(s), NULL), -1, "OCTET STRING is not a string");
	is_str(s, "", "out is \"\" on failure");
	is_int(mdm_scep_msg_attr_string(si, MDM_SCEP_OID_FAIL_INFO_TEXT, s,
	    sizeof(s), NULL), -1, "control character refused");
	is_int(mdm_scep_msg_attr_string(si, MDM_SCEP_OID_MESSAGE_TYPE, s, 2,
	    NULL), -1, "string longer than the buffer refused");

	is_int(mdm_scep_msg_attr_octets(si, MDM_SCEP_OID_SENDER_NONCE, oct,
	    16, &n), 0, "senderNonce read");
	ok(n == 16 && memcmp(oct, nonce, 16) == 0, "senderNonce value");
	is_int(mdm_scep_msg_attr_octets(si, MDM_SCEP_OID_RECIPIENT_NONCE,
	    oct, 16, &n), -1, "octets longer than the buffer refused");
	n = 0;
	is_int(mdm_scep_msg_attr_octets(si, MDM_SCEP_OID_RECIPIENT_NONCE,
	    oct, sizeof(oct), &n), 0, "they fit a larger one");
	is_int((long long)n, 20, "with their length");
	is_int(mdm_scep_msg_attr_octets(si, MDM_SCEP_OID_MESSAGE_TYPE, oct,
	    sizeof(oct), &n), -1, "a string is not octets");
	ok(mdm_scep_msg_content_type_ok(cms, si), "signed content type "
	    "matches");
	CMS_ContentInfo_free(cms);
}

static void
test_absent_twice(void)
{
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	X509_ATTRIBUTE *at = NULL;
	struct mdm_err e;
	unsigned char oct[16];
	char s[16];
	size_t n;

	/* OpenSSL signs none of these: they go in after signing. */
	cms = finish(start(&si), &si);
	if (mdm_scep_msg_add_attr(si, MDM_SCEP_OID_TRANSACTION_ID,
	    V_ASN1_PRINTABLESTRING, "A", 1, &e) == -1 ||
	    mdm_scep_msg_add_attr(si, MDM_SCEP_OID_TRANSACTION_ID,
	    V_ASN1_PRINTABLESTRING, "B", 1, &e) == -1)
		die("add_attr", &e);
	/* One attribute, two values. */
	if ((at = X509_ATTRIBUTE_create_by_OBJ(NULL,
	    mdm_scep_msg_oid(MDM_SCEP_OID_MESSAGE_TYPE),
	    V_ASN1_PRINTABLESTRING, "3", 1)) == NULL ||
	    !X509_ATTRIBUTE_set1_data(at, V_ASN1_PRINTABLESTRING, "19", 2) ||
	    !CMS_signed_add1_attr(si, at))
		die("two values", NULL);
	X509_ATTRIBUTE_free(at);
	/* A contentType that is not the content's. */
	if ((at = CMS_signed_delete_attr(si, CMS_signed_get_attr_by_NID(si,
	    NID_pkcs9_contentType, -1))) == NULL ||
	    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType,
	    V_ASN1_OBJECT, OBJ_nid2obj(NID_pkcs7_enveloped), -1))
		die("contentType", NULL);
	X509_ATTRIBUTE_free(at);

	is_int(mdm_scep_msg_attr_string(si, MDM_SCEP_OID_PKI_STATUS, s,
	    sizeof(s), NULL), 1, "absent string is 1");
	is_str(s, "", "and reads as \"\"");
	is_int(mdm_scep_msg_attr_octets(si, MDM_SCEP_OID_SENDER_NONCE, oct,
	    sizeof(oct), &n), 1, "absent octets are 1");
	ok(mdm_scep_msg_attr(si, mdm_scep_msg_oid(MDM_SCEP_OID_PKI_STATUS)) ==
	    NULL, "no value of an absent attribute");
	is_int(mdm_scep_msg_attr_string(si, MDM_SCEP_OID_TRANSACTION_ID, s,
	    sizeof(s), NULL), -1, "attribute given twice refused");
	is_int(mdm_scep_msg_attr_string(si, MDM_SCEP_OID_MESSAGE_TYPE, s,
	    sizeof(s), NULL), -1, "attribute with two values refused");
	ok(!mdm_scep_msg_content_type_ok(cms, si), "signed content type "
	    "that is not the content's refused");
	ok(mdm_scep_msg_attr(si, NULL) == NULL, "no object, no value");
	CMS_ContentInfo_free(cms);
}

/*
 * A self-signed Ed25519 certificate: a key that can neither take key
 * transport nor agree on one.  Made by hand, as mdm_x509 signs with a
 * digest and Ed25519 takes none.
 */
static X509 *
ed_cert(EVP_PKEY **edkey)
{
	X509 *x;

	if ((*edkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    (x = X509_new()) == NULL ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
	    !X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_ASC, (const unsigned char *)"ed", -1, -1, 0) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(x)) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    !X509_set_pubkey(x, *edkey) || X509_sign(x, *edkey, NULL) <= 0)
		die("Ed25519 certificate", NULL);
	return x;
}

static void
test_der_encrypt(void)
{
	static const char secret[] = "a CSR, say";
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	EVP_PKEY *ed = NULL;
	X509 *ed_x;
	struct mdm_buf b, plain;
	struct mdm_err e;

	cms = finish(start(&si), &si);
	mdm_buf_init(&b, 16);
	is_int(mdm_scep_msg_der(cms, &b, &e), -1, "DER over the cap");
	is_int(e.code, MDM_E_TOOBIG, "is MDM_E_TOOBIG");
	mdm_buf_release(&b);
	CMS_ContentInfo_free(cms);

	mdm_buf_init(&b, MDM_CAP_CMS);
	mdm_buf_init(&plain, 1024);
	is_int(mdm_scep_msg_encrypt(cert, EVP_aes_256_cbc(), secret,
	    strlen(secret), &b, &e), 0, "encrypt with AES-256");
	ok(reencodes_same(&b, NULL), "the EnvelopedData is canonical DER");
	is_int(mdm_cms_decrypt(b.data, b.len, cert, key, &plain, &e), 0,
	    "decrypts with the recipient's key");
	ok(plain.len == strlen(secret) &&
	    memcmp(plain.data, secret, plain.len) == 0, "to the same bytes");
	mdm_buf_release(&b);
	mdm_buf_release(&plain);

	ed_x = ed_cert(&ed);
	mdm_buf_init(&b, MDM_CAP_CMS);
	is_int(mdm_scep_msg_encrypt(ed_x, EVP_aes_256_cbc(), secret,
	    strlen(secret), &b, &e), -1, "nothing encrypts to Ed25519");
	is_int(e.code, MDM_E_CRYPTO, "is MDM_E_CRYPTO");
	is_int((long long)b.len, 0, "nothing written");
	mdm_buf_release(&b);
	X509_free(ed_x);
	EVP_PKEY_free(ed);
	ERR_clear_error();
}

/* A CertRep-like message by cert over "content", two certificates. */
static void
test_sign(void)
{
	static const unsigned char nonce[16] = "0123456789abcdef";
	const struct mdm_scep_msg_value v[] = {
		{ MDM_SCEP_OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, "3", 1 },
		{ MDM_SCEP_OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING,
		    "TXID-1", 6 },
		{ MDM_SCEP_OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, "0", 1 },
		{ MDM_SCEP_OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, nonce,
		    sizeof(nonce) },
		{ MDM_SCEP_OID_FAIL_INFO_TEXT, V_ASN1_UTF8STRING, "", 0 },
	};
	struct mdm_x509_opts o = { .kind = MDM_X509_CLIENT,
	    .common_name = "other", .days = 1 };
	X509 *certs[2], *other = NULL;
	EVP_PKEY *okey = NULL;
	STACK_OF(X509) *in;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	ASN1_OCTET_STRING **content;
	struct mdm_buf b;
	struct mdm_err e;
	unsigned char oct[16];
	char str[16];
	size_t n = 0;
	int type = 0;

	if (mdm_x509_gen_rsa(2048, &okey, &e) == -1 ||
	    mdm_x509_self_sign(okey, &o, &other, &e) == -1)
		die("other key", &e);
	certs[0] = cert;
	certs[1] = other;
	mdm_buf_init(&b, MDM_CAP_CMS);
	is_int(mdm_scep_msg_sign(cert, key, EVP_sha256(), v,
	    sizeof(v) / sizeof(v[0]), "content", 7, certs, 2, &b, &e), 0,
	    "sign by hand");
	ok(reencodes_same(&b, &cms), "the SignedData is canonical DER");
	if (cms == NULL)
		die("d2i_CMS_ContentInfo", NULL);
	is_int(CMS_verify(cms, NULL, NULL, NULL, NULL, CMS_BINARY |
	    CMS_NO_SIGNER_CERT_VERIFY), 1, "OpenSSL verifies it");
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	is_int(CMS_SignerInfo_cert_cmp(si, cert), 0, "signed by cert");
	ok(mdm_scep_msg_content_type_ok(cms, si), "signed contentType");
	ok(CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1) >= 0,
	    "signingTime");
	is_int(mdm_scep_msg_attr_string(si, MDM_SCEP_OID_TRANSACTION_ID, str,
	    sizeof(str), &type), 0, "transactionID read back");
	is_str(str, "TXID-1", "transactionID value");
	is_int(type, V_ASN1_PRINTABLESTRING, "as a PrintableString");
	is_int(mdm_scep_msg_attr_octets(si, MDM_SCEP_OID_RECIPIENT_NONCE, oct,
	    sizeof(oct), &n), 0, "recipientNonce read back");
	ok(n == 16 && memcmp(oct, nonce, 16) == 0, "recipientNonce value");
	is_int(mdm_scep_msg_attr_string(si, MDM_SCEP_OID_FAIL_INFO_TEXT, str,
	    sizeof(str), &type), 0, "an empty string is kept");
	content = CMS_get0_content(cms);
	ok(content != NULL && *content != NULL &&
	    ASN1_STRING_length(*content) == 7 &&
	    memcmp(ASN1_STRING_get0_data(*content), "content", 7) == 0,
	    "the content");
	in = CMS_get1_certs(cms);
	is_int(sk_X509_num(in), 2, "both certificates");
	sk_X509_pop_free(in, X509_free);
	CMS_ContentInfo_free(cms);
	cms = NULL;

	mdm_buf_reset(&b);
	is_int(mdm_scep_msg_sign(cert, key, EVP_sha1(), v, 3, NULL, 0, NULL,
	    0, &b, &e), 0, "SHA-1, no content, no certificates");
	ok(reencodes_same(&b, &cms), "canonical DER too");
	in = sk_X509_new_null();
	if (in == NULL || !sk_X509_push(in, cert))
		die("sk_X509_push", NULL);
	is_int(CMS_verify(cms, in, NULL, NULL, NULL, CMS_BINARY |
	    CMS_NO_SIGNER_CERT_VERIFY), 1, "verifies with the cert given");
	sk_X509_free(in);
	CMS_ContentInfo_free(cms);
	cms = NULL;
	mdm_buf_release(&b);

	mdm_buf_init(&b, 64);
	is_int(mdm_scep_msg_sign(cert, key, EVP_sha256(), v, 3, "x", 1,
	    certs, 2, &b, &e), -1, "over the cap");
	is_int(e.code, MDM_E_TOOBIG, "is MDM_E_TOOBIG");
	is_int((long long)b.len, 0, "nothing left written");
	mdm_buf_release(&b);

	mdm_buf_init(&b, MDM_CAP_CMS);
	is_int(mdm_scep_msg_certs_only(certs, 2, NULL, &b, &e), 0,
	    "certs-only");
	ok(reencodes_same(&b, &cms), "certs-only is canonical DER");
	in = cms != NULL ? CMS_get1_certs(cms) : NULL;
	is_int(sk_X509_num(in), 2, "with both certificates");
	ok(cms != NULL && sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) ==
	    0, "and no signer");
	sk_X509_pop_free(in, X509_free);
	CMS_ContentInfo_free(cms);
	mdm_buf_release(&b);
	X509_free(other);
	EVP_PKEY_free(okey);
	ERR_clear_error();
}

int
main(void)
{
	struct mdm_x509_opts o = { .kind = MDM_X509_CLIENT,
	    .common_name = "scep_msg", .days = 1 };
	struct mdm_err e;

	test_oids();
	if (mdm_x509_gen_rsa(2048, &key, &e) == -1 ||
	    mdm_x509_self_sign(key, &o, &cert, &e) == -1)
		die("key", &e);
	test_attrs();
	test_absent_twice();
	test_der_encrypt();
	test_sign();
	X509_free(cert);
	EVP_PKEY_free(key);
	return tap_done();
}
