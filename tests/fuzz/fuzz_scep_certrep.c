/*
 * fuzz_scep_certrep: mdm_scep_client_certrep on untrusted bytes, the
 * CertRep a SCEP server sends back.  At start-up a CA and a PKCSReq
 * transaction are made; a mutated CertRep rarely keeps a valid
 * signature, so two modes wrap the input to reach further in:
 *
 *   'S' + bytes   the bytes are the pkcsPKIEnvelope: signed here by the
 *                 CA into a SUCCESS CertRep with our transactionID and
 *                 nonce, so the client decrypts (or fails to) them;
 *   'D' + bytes   the bytes are the degenerate SignedData: encrypted to
 *                 the requester and signed, so the client looks in them
 *                 for its certificate;
 *   otherwise     the bytes are the CertRep itself.
 *
 * Seeds: corpus/scep_certrep/ (test_scep_client writes CertReps with
 * MDM_SCEP_CERTREP_SEEDS=DIR).  Regression inputs: tests/data/scep_certrep/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "buf.h"
#include "scep_client.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mdm_scep_client *client;
static X509 *ca, *signer;
static EVP_PKEY *ca_key;
static ASN1_OBJECT *o_type, *o_status, *o_txid, *o_rnonce;
static unsigned char nonce[64];
static int nonce_len;

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_scep_certrep: %s\n", what);
	ERR_print_errors_fp(stderr);
	abort();
}

/* The signer certificate and senderNonce of the request we sent. */
static void
read_request(const struct mdm_buf *msg)
{
	const unsigned char *p = msg->data;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	STACK_OF(X509) *certs;
	ASN1_OCTET_STRING *os;
	ASN1_OBJECT *o_snonce = OBJ_txt2obj("2.16.840.1.113733.1.9.5", 1);

	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)msg->len)) == NULL)
		fail("request");
	certs = CMS_get1_certs(cms);
	signer = sk_X509_value(certs, 0);
	X509_up_ref(signer);
	sk_X509_pop_free(certs, X509_free);
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	os = CMS_signed_get0_data_by_OBJ(si, o_snonce, -3,
	    V_ASN1_OCTET_STRING);
	if (os == NULL || ASN1_STRING_length(os) > (int)sizeof(nonce))
		fail("nonce");
	nonce_len = ASN1_STRING_length(os);
	memcpy(nonce, ASN1_STRING_get0_data(os), (size_t)nonce_len);
	ASN1_OBJECT_free(o_snonce);
	CMS_ContentInfo_free(cms);
}

static void
setup(void)
{
	struct mdm_x509_opts o = { .kind = MDM_X509_CA,
	    .common_name = "fuzz CA", .days = 30 };
	struct mdm_scep_caps caps = { .aes = 1, .sha256 = 1, .post = 1 };
	struct mdm_scep_client_req r = { .caps = &caps };
	struct mdm_buf msg;
	struct mdm_err e;
	X509_NAME *name = X509_NAME_new();
	EVP_PKEY *key = NULL;

	if (mdm_x509_gen_rsa(2048, &ca_key, &e) == -1 ||
	    mdm_x509_self_sign(ca_key, &o, &ca, &e) == -1 ||
	    mdm_x509_gen_rsa(2048, &key, &e) == -1)
		fail(e.msg);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"fuzz", -1, -1, 0);
	r.ca = ca;
	r.key = key;
	r.subject = name;
	mdm_buf_init(&msg, MDM_CAP_CMS);
	if (mdm_scep_client_new(&r, &msg, &client, &e) == -1)
		fail(e.msg);
	read_request(&msg);
	o_type = OBJ_txt2obj("2.16.840.1.113733.1.9.2", 1);
	o_status = OBJ_txt2obj("2.16.840.1.113733.1.9.3", 1);
	o_rnonce = OBJ_txt2obj("2.16.840.1.113733.1.9.6", 1);
	o_txid = OBJ_txt2obj("2.16.840.1.113733.1.9.7", 1);
	mdm_buf_release(&msg);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
}

static int
to_buf(CMS_ContentInfo *cms, struct mdm_buf *out)
{
	unsigned char *p = NULL;
	int n = i2d_CMS_ContentInfo(cms, &p), rc = -1;

	if (n > 0)
		rc = mdm_buf_append(out, p, (size_t)n, NULL);
	OPENSSL_free(p);
	return rc;
}

/* A SUCCESS CertRep by the CA around content. */
static int
certrep(const void *content, size_t len, struct mdm_buf *out)
{
	const char *txid = mdm_scep_client_txid(client);
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	BIO *in = BIO_new_mem_buf(len ? content : "", (int)len);
	int rc = -1;

	if ((cms = CMS_sign(NULL, NULL, NULL, NULL,
	    CMS_PARTIAL | CMS_BINARY)) != NULL &&
	    (si = CMS_add1_signer(cms, ca, ca_key, EVP_sha256(),
	    CMS_BINARY | CMS_NOSMIMECAP)) != NULL &&
	    CMS_signed_add1_attr_by_OBJ(si, o_type, V_ASN1_PRINTABLESTRING,
	    "3", 1) &&
	    CMS_signed_add1_attr_by_OBJ(si, o_status, V_ASN1_PRINTABLESTRING,
	    "0", 1) &&
	    CMS_signed_add1_attr_by_OBJ(si, o_txid, V_ASN1_PRINTABLESTRING,
	    txid, (int)strlen(txid)) &&
	    CMS_signed_add1_attr_by_OBJ(si, o_rnonce, V_ASN1_OCTET_STRING,
	    nonce, nonce_len) &&
	    CMS_final(cms, in, NULL, CMS_BINARY))
		rc = to_buf(cms, out);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return rc;
}

/* EnvelopedData (AES-256) of the bytes to the requester. */
static int
envelope(const void *p, size_t len, struct mdm_buf *out)
{
	STACK_OF(X509) *to = sk_X509_new_null();
	CMS_ContentInfo *cms = NULL;
	BIO *in = BIO_new_mem_buf(len ? p : "", (int)len);
	int rc = -1;

	sk_X509_push(to, signer);
	if ((cms = CMS_encrypt(to, in, EVP_aes_256_cbc(), CMS_BINARY)) !=
	    NULL)
		rc = to_buf(cms, out);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	sk_X509_free(to);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mdm_buf env, rep;
	struct mdm_err e;
	X509 *cert = NULL;
	int fi;

	if (client == NULL)
		setup();
	mdm_buf_init(&env, MDM_CAP_CMS);
	mdm_buf_init(&rep, MDM_CAP_CMS);
	if (size > 0 && data[0] == 'S') {
		if (certrep(data + 1, size - 1, &rep) == 0)
			mdm_scep_client_certrep(client, rep.data, rep.len,
			    &cert, &fi, &e);
	} else if (size > 0 && data[0] == 'D') {
		if (envelope(data + 1, size - 1, &env) == 0 &&
		    certrep(env.data, env.len, &rep) == 0)
			mdm_scep_client_certrep(client, rep.data, rep.len,
			    &cert, &fi, &e);
	} else
		mdm_scep_client_certrep(client, data, size, &cert, &fi, &e);
	X509_free(cert);
	mdm_buf_release(&env);
	mdm_buf_release(&rep);
	ERR_clear_error();
	return 0;
}
