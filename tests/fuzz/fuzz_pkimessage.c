/*
 * fuzz_pkimessage: mdm_scep_handle(POST PKIOperation) on untrusted bytes,
 * against one state directory made at start-up (a fresh CA, static
 * challenge "s3cret").  A mutated pkiMessage rarely keeps a valid
 * signature, so two modes wrap the input to reach further in:
 *
 *   'E' + bytes   the bytes are the pkcsPKIEnvelope: signed here into a
 *                 PKCSReq, so the server gets to parse and decrypt them;
 *   'C' + bytes   the bytes are the CSR: encrypted (3DES) to the CA and
 *                 signed, so the server gets to the CSR and the policy;
 *   otherwise     the bytes are the pkiMessage itself.
 *
 * The transactionID of a wrapped message is the SHA-1 of the input, as
 * test_scep's regression runner makes it.  Seeds: corpus/pkimessage/
 * (written by test_scep with MDM_SCEP_SEEDS=DIR).  Regression inputs:
 * tests/data/pkimessage/.
 */
#define _XOPEN_SOURCE 700	/* nftw */
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "buf.h"
#include "scep.h"
#include "state.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static struct mdm_state *st;
static struct mdm_scep *scep;
static X509 *ca, *signer;
static EVP_PKEY *signer_key;
static ASN1_OBJECT *o_type, *o_txid, *o_nonce;

static void
fail(const char *what, const struct mdm_err *e)
{
	fprintf(stderr, "fuzz_pkimessage: %s: %s\n", what,
	    e != NULL ? e->msg : "openssl");
	ERR_print_errors_fp(stderr);
	abort();
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(path);
}

static void
cleanup(void)
{
	mdm_scep_free(scep);
	mdm_state_close(st);
	if (dir[0] != '\0')
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
setup(void)
{
	struct mdm_scep_policy p = { .validity_days = 30,
	    .static_challenge = "s3cret" };
	struct mdm_x509_opts o = { .kind = MDM_X509_CA,
	    .common_name = "fuzz CA", .days = 30 };
	struct mdm_x509_opts so = { .kind = MDM_X509_CLIENT,
	    .common_name = "MDM SCEP SIGNER", .days = 30 };
	struct mdm_buf pem;
	struct mdm_err e;
	EVP_PKEY *key = NULL;

	mdm_crypto_init(NULL);
	snprintf(dir, sizeof(dir), "/tmp/fuzz-pkimessage-XXXXXX");
	if (mkdtemp(dir) == NULL)
		fail("mkdtemp", NULL);
	atexit(cleanup);
	mdm_buf_init(&pem, MDM_CAP_CERT);
	if (mdm_state_open(dir, MDM_STATE_CREATE, &st, &e) == -1 ||
	    mdm_x509_gen_rsa(2048, &key, &e) == -1 ||
	    mdm_x509_self_sign(key, &o, &ca, &e) == -1 ||
	    mdm_x509_cert_to_pem(ca, &pem, &e) == -1 ||
	    mdm_state_write_file(st, "ca/ca.pem", pem.data, pem.len, 0644, 0,
	    &e) == -1)
		fail("setup", &e);
	mdm_buf_reset(&pem);
	if (mdm_x509_key_to_pem(key, &pem, &e) == -1 ||
	    mdm_state_write_file(st, "ca/ca.key", pem.data, pem.len, 0600, 0,
	    &e) == -1 || mdm_scep_new(st, &p, &scep, &e) == -1)
		fail("setup", &e);
	mdm_buf_release_secret(&pem);
	EVP_PKEY_free(key);
	/* The client side only signs: a small key keeps runs fast. */
	if ((signer_key = EVP_RSA_gen(1024)) == NULL ||
	    mdm_x509_self_sign(signer_key, &so, &signer, &e) == -1)
		fail("signer", &e);
	o_type = OBJ_txt2obj("2.16.840.1.113733.1.9.2", 1);
	o_txid = OBJ_txt2obj("2.16.840.1.113733.1.9.7", 1);
	o_nonce = OBJ_txt2obj("2.16.840.1.113733.1.9.5", 1);
	if (o_type == NULL || o_txid == NULL || o_nonce == NULL)
		fail("OBJ_txt2obj", NULL);
}

/* A PKCSReq SignedData by signer around content; NULL on failure. */
static unsigned char *
wrap(const uint8_t *input, size_t insize, const unsigned char *content,
    size_t n, int *outlen)
{
	static const unsigned char nonce[16];
	unsigned char md[20], *der = NULL;
	char txid[41];
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	BIO *in = NULL;
	int i;

	EVP_Digest(input, insize, md, NULL, EVP_sha1(), NULL);
	for (i = 0; i < 20; i++)
		snprintf(txid + 2 * i, 3, "%02X", md[i]);
	if ((in = BIO_new_mem_buf(n ? content : (const unsigned char *)"",
	    (int)n)) == NULL ||
	    (cms = CMS_sign(NULL, NULL, NULL, NULL,
	    CMS_PARTIAL | CMS_BINARY)) == NULL ||
	    (si = CMS_add1_signer(cms, signer, signer_key, EVP_sha256(),
	    CMS_BINARY | CMS_NOSMIMECAP)) == NULL ||
	    !CMS_signed_add1_attr_by_OBJ(si, o_type, V_ASN1_PRINTABLESTRING,
	    "19", 2) ||
	    !CMS_signed_add1_attr_by_OBJ(si, o_txid, V_ASN1_PRINTABLESTRING,
	    txid, 40) ||
	    !CMS_signed_add1_attr_by_OBJ(si, o_nonce, V_ASN1_OCTET_STRING,
	    nonce, sizeof(nonce)) ||
	    !CMS_final(cms, in, NULL, CMS_BINARY) ||
	    (*outlen = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
		OPENSSL_free(der);
		der = NULL;
	}
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return der;
}

/* The CSR bytes as a 3DES EnvelopedData to the CA. */
static unsigned char *
envelop(const unsigned char *p, size_t n, int *outlen)
{
	STACK_OF(X509) *to = sk_X509_new_null();
	CMS_ContentInfo *cms = NULL;
	unsigned char *der = NULL;
	BIO *in = BIO_new_mem_buf(n ? p : (const unsigned char *)"", (int)n);

	if (to != NULL && in != NULL && sk_X509_push(to, ca) &&
	    (cms = CMS_encrypt(to, in, EVP_des_ede3_cbc(), CMS_BINARY)) !=
	    NULL && (*outlen = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
		OPENSSL_free(der);
		der = NULL;
	}
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	sk_X509_free(to);
	return der;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mdm_scep_response resp;
	struct mdm_err e;
	unsigned char *msg = NULL, *env = NULL;
	const void *body = data;
	size_t len = size;
	int n = 0, envlen = 0;

	if (scep == NULL)
		setup();
	if (size > MDM_SCEP_MAX_MESSAGE)
		return 0;
	if (size > 0 && data[0] == 'E') {
		if ((msg = wrap(data, size, data + 1, size - 1, &n)) == NULL)
			goto out;
	} else if (size > 0 && data[0] == 'C') {
		if ((env = envelop(data + 1, size - 1, &envlen)) == NULL ||
		    (msg = wrap(data, size, env, (size_t)envlen, &n)) == NULL)
			goto out;
	}
	if (msg != NULL) {
		body = msg;
		len = (size_t)n;
	}
	mdm_scep_response_init(&resp);
	if (mdm_scep_handle(scep, "POST", "PKIOperation", NULL, body, len,
	    &resp, &e) == -1)
		fail("server error on client input", &e);
	/* Bad input is a 4xx or a CertRep, never a 5xx. */
	if (resp.http_status >= 500)
		abort();
	mdm_scep_response_release(&resp);
out:
	OPENSSL_free(msg);
	OPENSSL_free(env);
	ERR_clear_error();
	return 0;
}
