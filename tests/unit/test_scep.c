/*
 * scep: a small SCEP client in this file (key, CSR with challengePassword,
 * self-signed signer, EnvelopedData to the CA, SignedData with the SCEP
 * attributes) drives mdm_scep_handle through every message type, cipher
 * and digest, the challenge rules (static, one-time, expired, raced by
 * four processes), renewal, revocation, polling, retries, the policy
 * checks, the CRL, and the refusals; then the real Apple PKCSReq of the
 * fixtures is answered with the fixture's CA, and the regression inputs
 * of tests/data/pkimessage go through the handler.
 *
 * MDM_SCEP_SEEDS=DIR writes fuzz seeds (see tests/fuzz/fuzz_pkimessage.c)
 * to DIR.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "scep.h"
#include "state.h"
#include "state_scep.h"
#include "tap.h"
#include "x509.h"

#define PKCS_REQ	19
#define RENEWAL_REQ	17
#define CERT_POLL	20
#define GET_CERT	21
#define GET_CRL		22

enum { A_TYPE, A_STATUS, A_FAIL, A_SNONCE, A_RNONCE, A_TXID, A_FAILTEXT, A_N };
static const char *const attr_oid[A_N] = {
	"2.16.840.1.113733.1.9.2", "2.16.840.1.113733.1.9.3",
	"2.16.840.1.113733.1.9.4", "2.16.840.1.113733.1.9.5",
	"2.16.840.1.113733.1.9.6", "2.16.840.1.113733.1.9.7",
	"1.3.6.1.5.5.7.24.1",
};
static ASN1_OBJECT *attr_obj[A_N];

static X509 *ca;
static EVP_PKEY *ca_key;
static struct mdm_state *st;
static struct mdm_state_scep *ss;
static const char *seeds;
static int seed_no;
static int issued_count;	/* "issued" and "renewed" answers seen */
static X509 *ra_cert;		/* the RA of test_ra, while it runs */
static STACK_OF(X509) *send_to;	/* recipients of make_msg; NULL: ca */

static void
die_ssl(const char *what)
{
	fprintf(stderr, "test_scep: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(99);
}

static void
die_err(const char *what, const struct mdm_err *e)
{
	fprintf(stderr, "test_scep: %s: %s\n", what, e->msg);
	exit(99);
}

static EVP_PKEY *
rsa_key(int bits)
{
	EVP_PKEY *k = EVP_RSA_gen((unsigned)bits);

	if (k == NULL)
		die_ssl("EVP_RSA_gen");
	return k;
}

static X509 *
self_signed(EVP_PKEY *key, const char *cn, enum mdm_x509_kind kind)
{
	struct mdm_x509_opts o = { .kind = kind, .common_name = cn,
	    .days = 30 };
	struct mdm_err e;
	X509 *c;

	if (mdm_x509_self_sign(key, &o, &c, &e) == -1)
		die_err("self_sign", &e);
	return c;
}

static void
write_seed(const char *prefix, const void *p, size_t n)
{
	char path[4200];
	FILE *f;

	if (seeds == NULL)
		return;
	snprintf(path, sizeof(path), "%s/seed-%02d", seeds, seed_no++);
	if ((f = fopen(path, "wb")) == NULL)
		return;
	if (prefix != NULL)
		fputs(prefix, f);
	fwrite(p, 1, n, f);
	fclose(f);
}

/* A CSR over key, with challengePassword and a DNS SAN when given. */
static void
make_csr(EVP_PKEY *key, const char *cn, const char *challenge,
    const char *san, struct mdm_buf *der)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *ext;
	unsigned char *p = NULL;
	char sanv[300];
	int n;

	if (req == NULL || name == NULL ||
	    !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_REQ_set_subject_name(req, name) ||
	    !X509_REQ_set_pubkey(req, key))
		die_ssl("csr");
	if (challenge != NULL && !X509_REQ_add1_attr_by_NID(req,
	    NID_pkcs9_challengePassword, MBSTRING_UTF8,
	    (const unsigned char *)challenge, -1))
		die_ssl("challenge");
	if (san != NULL) {
		snprintf(sanv, sizeof(sanv), "DNS:%s", san);
		if ((exts = sk_X509_EXTENSION_new_null()) == NULL ||
		    (ext = X509V3_EXT_conf_nid(NULL, NULL,
		    NID_subject_alt_name, sanv)) == NULL ||
		    !sk_X509_EXTENSION_push(exts, ext) ||
		    !X509_REQ_add_extensions(req, exts))
			die_ssl("san");
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	if (X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
	    (n = i2d_X509_REQ(req, &p)) <= 0)
		die_ssl("csr sign");
	mdm_buf_reset(der);
	mdm_buf_append(der, p, (size_t)n, NULL);
	OPENSSL_free(p);
	X509_NAME_free(name);
	X509_REQ_free(req);
}

static void
cms_der(CMS_ContentInfo *cms, struct mdm_buf *out)
{
	unsigned char *p = NULL;
	int n;

	if ((n = i2d_CMS_ContentInfo(cms, &p)) <= 0)
		die_ssl("i2d_CMS_ContentInfo");
	mdm_buf_reset(out);
	mdm_buf_append(out, p, (size_t)n, NULL);
	OPENSSL_free(p);
}

static void
encrypt_to(X509 *to, const EVP_CIPHER *cipher, const void *p, size_t n,
    struct mdm_buf *out)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	CMS_ContentInfo *cms;
	BIO *in = BIO_new_mem_buf(p, (int)n);

	sk_X509_push(certs, to);
	if ((cms = CMS_encrypt(certs, in, cipher, CMS_BINARY)) == NULL)
		die_ssl("CMS_encrypt");
	cms_der(cms, out);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	sk_X509_free(certs);
}

struct msg {
	int type;
	const char *txid;
	unsigned char nonce[16];
	X509 *signer;
	EVP_PKEY *signer_key;
	const EVP_MD *md;
	int smimecap;		/* send SMIMECapabilities */
};

/* The pkiMessage: SignedData by m->signer around content. */
static void
sign_msg(struct msg *m, const void *content, size_t n, struct mdm_buf *out)
{
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	char type[8];
	BIO *in = BIO_new_mem_buf(n ? content : "", (int)n);

	RAND_bytes(m->nonce, sizeof(m->nonce));
	snprintf(type, sizeof(type), "%d", m->type);
	if ((cms = CMS_sign(NULL, NULL, NULL, NULL,
	    CMS_PARTIAL | CMS_BINARY)) == NULL ||
	    (si = CMS_add1_signer(cms, m->signer, m->signer_key,
	    m->md ? m->md : EVP_sha256(),
	    CMS_BINARY | (m->smimecap ? 0 : CMS_NOSMIMECAP))) == NULL ||
	    !CMS_signed_add1_attr_by_OBJ(si, attr_obj[A_TYPE],
	    V_ASN1_PRINTABLESTRING, type, (int)strlen(type)) ||
	    !CMS_signed_add1_attr_by_OBJ(si, attr_obj[A_TXID],
	    V_ASN1_PRINTABLESTRING, m->txid,
	    (int)strlen(m->txid)) ||
	    !CMS_signed_add1_attr_by_OBJ(si, attr_obj[A_SNONCE],
	    V_ASN1_OCTET_STRING, m->nonce, sizeof(m->nonce)) ||
	    !CMS_final(cms, in, NULL, CMS_BINARY))
		die_ssl("sign request");
	cms_der(cms, out);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
}

/* A whole request: the CSR (or other content) encrypted to the CA. */
static void
make_msg(struct msg *m, const EVP_CIPHER *cipher, const struct mdm_buf *inner,
    struct mdm_buf *out)
{
	struct mdm_buf env;

	mdm_buf_init(&env, MDM_CAP_CMS);
	if (send_to != NULL) {
		CMS_ContentInfo *cms;
		BIO *in = BIO_new_mem_buf(inner->data, (int)inner->len);

		if ((cms = CMS_encrypt(send_to, in, cipher, CMS_BINARY)) ==
		    NULL)
			die_ssl("CMS_encrypt");
		cms_der(cms, &env);
		CMS_ContentInfo_free(cms);
		BIO_free(in);
	} else
		encrypt_to(ca, cipher, inner->data, inner->len, &env);
	sign_msg(m, env.data, env.len, out);
	mdm_buf_release(&env);
}

struct reply {
	int http;
	const char *outcome;
	char serial[100];
	int signed_by_ca, signed_by_ra;
	int status, fail;
	char txid[256], text[256];
	unsigned char rnonce[64];
	size_t rnonce_len;
	int md_nid, cipher_nid;
	X509 *cert;		/* from the decrypted envelope */
	X509_CRL *crl;
	X509 *outer_cert;	/* a non-CA certificate in the CertRep */
	CMS_ContentInfo *env;
};

static void
reply_release(struct reply *r)
{
	X509_free(r->cert);
	X509_free(r->outer_cert);
	X509_CRL_free(r->crl);
	CMS_ContentInfo_free(r->env);
	memset(r, 0, sizeof(*r));
}

static int
get_string(CMS_SignerInfo *si, int a, char *out, size_t outlen)
{
	int i = CMS_signed_get_attr_by_OBJ(si, attr_obj[a], -1);
	X509_ATTRIBUTE *at;
	ASN1_TYPE *t;
	int n;

	out[0] = '\0';
	if (i < 0 || (at = CMS_signed_get_attr(si, i)) == NULL ||
	    (t = X509_ATTRIBUTE_get0_type(at, 0)) == NULL ||
	    (t->type != V_ASN1_PRINTABLESTRING &&
	    t->type != V_ASN1_UTF8STRING))
		return -1;
	n = ASN1_STRING_length(t->value.asn1_string);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	memcpy(out, ASN1_STRING_get0_data(t->value.asn1_string), (size_t)n);
	out[n] = '\0';
	return 0;
}

/*
 * Parses a CertRep: signature by our CA (trust: ca_cert), the
 * attributes, and with signer/key the envelope's certificate or CRL.
 */
static int
parse_reply(const struct mdm_buf *body, X509 *ca_cert, X509 *signer,
    EVP_PKEY *key, struct reply *r)
{
	const unsigned char *p = body->data;
	CMS_ContentInfo *cms = NULL, *deg = NULL;
	STACK_OF(X509) *trust = sk_X509_new_null(), *signers = NULL;
	STACK_OF(X509) *certs = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	CMS_SignerInfo *si;
	X509_ALGOR *dig;
	const ASN1_OBJECT *obj;
	PKCS7 *p7 = NULL;
	ASN1_OCTET_STRING **pos;
	BIO *out = NULL;
	char buf[16], serial[100];
	const char *outcome = r->outcome;
	int i, rc = -1, http = r->http;

	snprintf(serial, sizeof(serial), "%s", r->serial);
	memset(r, 0, sizeof(*r));
	r->http = http;
	r->outcome = outcome;
	snprintf(r->serial, sizeof(r->serial), "%s", serial);
	r->status = r->fail = -1;
	sk_X509_push(trust, ca_cert);
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)body->len)) == NULL)
		goto out;
	if (CMS_verify(cms, trust, NULL, NULL, NULL,
	    CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1)
		goto out;
	signers = CMS_get0_signers(cms);
	r->signed_by_ca = sk_X509_num(signers) == 1 &&
	    X509_cmp(sk_X509_value(signers, 0), ca_cert) == 0;
	r->signed_by_ra = ra_cert != NULL && sk_X509_num(signers) == 1 &&
	    X509_cmp(sk_X509_value(signers, 0), ra_cert) == 0;
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
	X509_ALGOR_get0(&obj, NULL, NULL, dig);
	r->md_nid = OBJ_obj2nid(obj);
	if (get_string(si, A_TYPE, buf, sizeof(buf)) == -1 ||
	    strcmp(buf, "3") != 0 ||
	    get_string(si, A_STATUS, buf, sizeof(buf)) == -1)
		goto out;
	r->status = atoi(buf);
	if (get_string(si, A_FAIL, buf, sizeof(buf)) == 0)
		r->fail = atoi(buf);
	get_string(si, A_FAILTEXT, r->text, sizeof(r->text));
	get_string(si, A_TXID, r->txid, sizeof(r->txid));
	i = CMS_signed_get_attr_by_OBJ(si, attr_obj[A_RNONCE], -1);
	if (i >= 0) {
		ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(
		    CMS_signed_get_attr(si, i), 0);

		if (t != NULL && t->type == V_ASN1_OCTET_STRING &&
		    ASN1_STRING_length(t->value.octet_string) <= 64) {
			r->rnonce_len = (size_t)ASN1_STRING_length(
			    t->value.octet_string);
			memcpy(r->rnonce, ASN1_STRING_get0_data(
			    t->value.octet_string), r->rnonce_len);
		}
	}
	certs = CMS_get1_certs(cms);
	for (i = 0; i < sk_X509_num(certs); i++)
		if (X509_cmp(sk_X509_value(certs, i), ca_cert) != 0 &&
		    (ra_cert == NULL ||
		    X509_cmp(sk_X509_value(certs, i), ra_cert) != 0) &&
		    r->outer_cert == NULL) {
			r->outer_cert = sk_X509_value(certs, i);
			X509_up_ref(r->outer_cert);
		}
	pos = CMS_get0_content(cms);
	if (r->status == 0 && pos != NULL && *pos != NULL) {
		p = ASN1_STRING_get0_data(*pos);
		if ((r->env = d2i_CMS_ContentInfo(NULL, &p,
		    ASN1_STRING_length(*pos))) == NULL)
			goto out;
		p = ASN1_STRING_get0_data(*pos);
		if ((p7 = d2i_PKCS7(NULL, &p, ASN1_STRING_length(*pos))) ==
		    NULL)
			goto out;
		X509_ALGOR_get0(&obj, NULL, NULL,
		    p7->d.enveloped->enc_data->algorithm);
		r->cipher_nid = OBJ_obj2nid(obj);
		if (key != NULL) {
			char *d;
			long n;

			out = BIO_new(BIO_s_mem());
			if (CMS_decrypt(r->env, key, signer, NULL, out,
			    CMS_BINARY) != 1)
				goto out;
			n = BIO_get_mem_data(out, &d);
			p = (const unsigned char *)d;
			if ((deg = d2i_CMS_ContentInfo(NULL, &p, n)) == NULL)
				goto out;
			sk_X509_pop_free(certs, X509_free);
			certs = CMS_get1_certs(deg);
			crls = CMS_get1_crls(deg);
			if (sk_X509_num(certs) > 0) {
				r->cert = sk_X509_value(certs, 0);
				X509_up_ref(r->cert);
			}
			if (sk_X509_CRL_num(crls) > 0) {
				r->crl = sk_X509_CRL_value(crls, 0);
				X509_CRL_up_ref(r->crl);
			}
		}
	}
	rc = 0;
out:
	if (rc == -1)
		ERR_print_errors_fp(stderr);
	ERR_clear_error();
	BIO_free(out);
	PKCS7_free(p7);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_free(signers);
	sk_X509_free(trust);
	CMS_ContentInfo_free(deg);
	CMS_ContentInfo_free(cms);
	return rc;
}

/* POSTs a pkiMessage; fills r (the envelope decrypted with signer/key). */
static int
post(struct mdm_scep *s, const struct mdm_buf *req, X509 *signer,
    EVP_PKEY *key, struct reply *r)
{
	struct mdm_scep_response resp;
	struct mdm_err e;
	int rc;

	memset(r, 0, sizeof(*r));
	r->status = r->fail = -1;
	mdm_scep_response_init(&resp);
	rc = mdm_scep_handle(s, "POST", "PKIOperation", NULL, req->data,
	    req->len, &resp, &e);
	r->http = resp.http_status;
	r->outcome = resp.outcome;
	if (strcmp(resp.outcome, "issued") == 0 ||
	    strcmp(resp.outcome, "renewed") == 0)
		issued_count++;
	snprintf(r->serial, sizeof(r->serial), "%s", resp.serial);
	if (rc == -1)
		tap_diag("mdm_scep_handle: %s", e.msg);
	if (rc == 0 && resp.http_status == 200 &&
	    strcmp(resp.content_type, "application/x-pki-message") == 0)
		rc = parse_reply(&resp.body, ca, signer, key, r);
	mdm_scep_response_release(&resp);
	return rc;
}

/* A device: key, self-signed signer, and its CSR. */
struct device {
	EVP_PKEY *key;
	X509 *signer;
	char txid[41];
};

static void
device_new(struct device *d, int bits)
{
	unsigned char md[20];
	unsigned char *p = NULL;
	int n, i;

	d->key = rsa_key(bits);
	d->signer = self_signed(d->key, "MDM SCEP SIGNER", MDM_X509_CLIENT);
	/* As Apple: SHA-1 of the public key, 40 uppercase hex digits. */
	n = i2d_PUBKEY(d->key, &p);
	EVP_Digest(p, (size_t)n, md, NULL, EVP_sha1(), NULL);
	OPENSSL_free(p);
	for (i = 0; i < 20; i++)
		snprintf(d->txid + 2 * i, 3, "%02X", md[i]);
}

static void
device_free(struct device *d)
{
	EVP_PKEY_free(d->key);
	X509_free(d->signer);
	memset(d, 0, sizeof(*d));
}

/* Enrols d: PKCSReq with cipher/md/challenge; reply in r. */
static int
enrol(struct mdm_scep *s, struct device *d, const EVP_CIPHER *cipher,
    const EVP_MD *md, const char *cn, const char *challenge, struct reply *r)
{
	struct mdm_buf csr, req;
	struct msg m = { .type = PKCS_REQ, .txid = d->txid,
	    .signer = d->signer, .signer_key = d->key, .md = md };
	int rc;

	mdm_buf_init(&csr, MDM_CAP_CERT);
	mdm_buf_init(&req, MDM_CAP_CMS);
	make_csr(d->key, cn, challenge, NULL, &csr);
	make_msg(&m, cipher, &csr, &req);
	rc = post(s, &req, d->signer, d->key, r);
	if (rc == 0 && (r->rnonce_len != sizeof(m.nonce) ||
	    memcmp(r->rnonce, m.nonce, sizeof(m.nonce)) != 0))
		rc = -2;
	if (rc == 0 && strcmp(r->txid, d->txid) != 0)
		rc = -3;
	mdm_buf_release(&csr);
	mdm_buf_release(&req);
	return rc;
}

static int
is_failure(const struct reply *r, int fail)
{
	return r->http == 200 && r->status == 2 && r->fail == fail;
}

static int
verifies(X509 *c)
{
	struct mdm_err e;

	if (c == NULL)
		return 0;
	if (mdm_x509_verify(c, ca, NULL, 0, &e) == -1) {
		tap_diag("%s", e.msg);
		return 0;
	}
	return 1;
}

static struct mdm_scep *
scep_new(const struct mdm_scep_policy *p)
{
	struct mdm_scep *s;
	struct mdm_err e;

	if (mdm_scep_new(st, p, &s, &e) == -1)
		die_err("mdm_scep_new", &e);
	return s;
}

static void
make_state(const char *dir, X509 *c, EVP_PKEY *k, struct mdm_state **out)
{
	struct mdm_buf pem;
	struct mdm_err e;

	mdm_buf_init(&pem, MDM_CAP_CERT);
	if (mdm_state_open(dir, MDM_STATE_CREATE, out, &e) == -1 ||
	    mdm_x509_cert_to_pem(c, &pem, &e) == -1 ||
	    mdm_state_write_file(*out, "ca/ca.pem", pem.data, pem.len, 0644,
	    0, &e) == -1)
		die_err("state", &e);
	mdm_buf_reset(&pem);
	if (mdm_x509_key_to_pem(k, &pem, &e) == -1 ||
	    mdm_state_write_file(*out, "ca/ca.key", pem.data, pem.len, 0600,
	    0, &e) == -1)
		die_err("state key", &e);
	mdm_buf_release_secret(&pem);
}

static void
test_http(struct mdm_scep *s)
{
	struct mdm_scep_response r;
	struct mdm_buf der;
	struct mdm_err e;
	static const char *const caps[] = { "POSTPKIOperation", "Renewal",
	    "SHA-1", "SHA-256", "SHA-512", "AES", "DES3", "SCEPStandard" };
	static const unsigned char garbage[] = "this is not DER at all";
	size_t i;
	int rc;

	mdm_scep_response_init(&r);
	rc = mdm_scep_handle(s, "GET", "GetCACaps", NULL, NULL, 0, &r, &e);
	ok(rc == 0 && r.http_status == 200 &&
	    strcmp(r.content_type, "text/plain") == 0, "GetCACaps: 200 text");
	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		char *hit = r.body.data ? strstr((char *)r.body.data,
		    caps[i]) : NULL;

		ok(hit != NULL && (hit[strlen(caps[i])] == '\n' ||
		    hit[strlen(caps[i])] == '\0'), "GetCACaps lists %s",
		    caps[i]);
	}
	is_str(r.outcome, "caps", "outcome caps");

	mdm_buf_init(&der, MDM_CAP_CERT);
	mdm_x509_cert_to_der(ca, &der, NULL);
	rc = mdm_scep_handle(s, "GET", "GetCACert", "anything", NULL, 0, &r,
	    &e);
	ok(rc == 0 && r.http_status == 200 &&
	    strcmp(r.content_type, "application/x-x509-ca-cert") == 0 &&
	    r.body.len == der.len && memcmp(r.body.data, der.data,
	    der.len) == 0, "GetCACert: the CA certificate in DER");
	mdm_buf_release(&der);

	rc = mdm_scep_handle(s, "GET", "GetNextCACert", NULL, NULL, 0, &r, &e);
	is_int(r.http_status, 404, "GetNextCACert: 404");
	rc = mdm_scep_handle(s, "GET", "Frobnicate", NULL, NULL, 0, &r, &e);
	is_int(r.http_status, 400, "unknown operation: 400");
	rc = mdm_scep_handle(s, "PUT", "GetCACaps", NULL, NULL, 0, &r, &e);
	is_int(r.http_status, 405, "PUT: 405");
	rc = mdm_scep_handle(s, "GET", NULL, NULL, NULL, 0, &r, &e);
	is_int(r.http_status, 400, "no operation: 400");

	rc = mdm_scep_handle(s, "POST", "PKIOperation", NULL, garbage,
	    sizeof(garbage), &r, &e);
	ok(rc == 0 && r.http_status == 400 &&
	    strcmp(r.content_type, "text/plain") == 0 && r.body.len > 1,
	    "garbage PKIOperation: 400 with a text body");
	rc = mdm_scep_handle(s, "POST", "PKIOperation", NULL, NULL, 0, &r, &e);
	ok(rc == 0 && r.http_status == 400, "empty PKIOperation: 400");
	rc = mdm_scep_handle(s, "GET", "PKIOperation", NULL, NULL, 0, &r, &e);
	ok(rc == 0 && r.http_status == 400, "GET PKIOperation without "
	    "message: 400");
	rc = mdm_scep_handle(s, "GET", "PKIOperation", "!!notbase64!!", NULL,
	    0, &r, &e);
	ok(rc == 0 && r.http_status == 400, "GET PKIOperation, bad "
	    "base64: 400");
	rc = mdm_scep_handle(s, "POST", "PKIOperation", NULL, garbage,
	    MDM_SCEP_MAX_MESSAGE + 1, &r, &e);
	ok(rc == 0 && r.http_status == 413, "oversized PKIOperation: 413");
	mdm_scep_response_release(&r);
}

/* Every cipher and digest a client may use, in and out. */
static void
test_ciphers(struct mdm_scep *s)
{
	static const struct {
		const char *cipher, *md;
		int cipher_nid, md_nid;
	} combos[] = {
		{ "DES-CBC", "SHA1", NID_des_cbc, NID_sha1 },
		{ "DES-EDE3-CBC", "SHA256", NID_des_ede3_cbc, NID_sha256 },
		{ "AES-128-CBC", "SHA512", NID_aes_128_cbc, NID_sha512 },
		{ "AES-256-CBC", "SHA256", NID_aes_256_cbc, NID_sha256 },
	};
	struct mdm_state_scep_cert rec;
	struct mdm_err e;
	struct device d;
	struct reply r;
	EVP_CIPHER *c;
	EVP_MD *md;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(combos) / sizeof(combos[0]); i++) {
		c = EVP_CIPHER_fetch(NULL, combos[i].cipher, NULL);
		md = EVP_MD_fetch(NULL, combos[i].md, NULL);
		if (c == NULL || md == NULL)
			die_ssl(combos[i].cipher);
		device_new(&d, 2048);
		rc = enrol(s, &d, c, md, "dev-1", "s3cret", &r);
		ok(rc == 0 && r.http == 200 && r.status == 0,
		    "%s/%s: SUCCESS", combos[i].cipher, combos[i].md);
		ok(r.signed_by_ca, "%s/%s: CertRep signed by the CA",
		    combos[i].cipher, combos[i].md);
		is_int(r.cipher_nid, combos[i].cipher_nid, "reply cipher is "
		    "the request's");
		is_int(r.md_nid, combos[i].md_nid, "reply digest is the "
		    "request's");
		ok(verifies(r.cert), "%s/%s: issued certificate verifies "
		    "against the CA", combos[i].cipher, combos[i].md);
		ok(r.outer_cert != NULL && r.cert != NULL &&
		    X509_cmp(r.outer_cert, r.cert) == 0,
		    "issued certificate also in the CertRep's certificates");
		is_str(r.outcome, "issued", "outcome issued");
		mdm_state_scep_cert_init(&rec);
		rc = mdm_state_scep_cert_by_transaction(ss, d.txid, &rec, &e);
		ok(rc == 1 && strcmp(rec.serial, r.serial) == 0,
		    "certificate recorded with its transaction id");
		if (i == 0 && r.cert != NULL) {
			uint32_t ku = X509_get_key_usage(r.cert);
			uint32_t xku = X509_get_extended_key_usage(r.cert);
			char cn[64];

			ok((ku & (KU_DIGITAL_SIGNATURE |
			    KU_KEY_ENCIPHERMENT)) == (KU_DIGITAL_SIGNATURE |
			    KU_KEY_ENCIPHERMENT) && (ku & KU_KEY_CERT_SIGN) ==
			    0, "issued key usage: digitalSignature, "
			    "keyEncipherment");
			ok(xku == XKU_SSL_CLIENT, "issued EKU: clientAuth");
			ok(X509_check_ca(r.cert) == 0, "issued cert is no CA");
			ok(mdm_x509_subject_attr(r.cert, NID_commonName, cn,
			    sizeof(cn), NULL) == 0 &&
			    strcmp(cn, "dev-1") == 0, "subject from the CSR");
			ok(mdm_x509_expires_within(r.cert, time(NULL),
			    31LL * 86400) &&
			    !mdm_x509_expires_within(r.cert, time(NULL),
			    29LL * 86400), "validity from the policy (30 "
			    "days)");
		}
		mdm_state_scep_cert_release(&rec);
		reply_release(&r);
		device_free(&d);
		EVP_CIPHER_free(c);
		EVP_MD_free(md);
	}
}

/* SMIMECapabilities offering AES-256 raises a 3DES request's reply. */
static void
test_upgrade(struct mdm_scep *s)
{
	struct mdm_buf csr, req;
	struct device d;
	struct reply r;
	struct msg m;

	device_new(&d, 2048);
	memset(&m, 0, sizeof(m));
	m.type = PKCS_REQ;
	m.txid = d.txid;
	m.signer = d.signer;
	m.signer_key = d.key;
	m.smimecap = 1;
	mdm_buf_init(&csr, MDM_CAP_CERT);
	mdm_buf_init(&req, MDM_CAP_CMS);
	make_csr(d.key, "dev-up", "s3cret", "dev-up.example.com", &csr);
	make_msg(&m, EVP_des_ede3_cbc(), &csr, &req);
	write_seed(NULL, req.data, req.len);
	ok(post(s, &req, d.signer, d.key, &r) == 0 && r.status == 0,
	    "3DES request with SMIMECapabilities: SUCCESS");
	is_int(r.cipher_nid, NID_aes_256_cbc, "reply raised to AES-256");
	if (r.cert != NULL) {
		GENERAL_NAMES *g = X509_get_ext_d2i(r.cert,
		    NID_subject_alt_name, NULL, NULL);
		GENERAL_NAME *n = sk_GENERAL_NAME_value(g, 0);

		ok(sk_GENERAL_NAME_num(g) == 1 && n->type == GEN_DNS &&
		    strcmp((const char *)ASN1_STRING_get0_data(n->d.dNSName),
		    "dev-up.example.com") == 0, "SAN copied from the CSR");
		GENERAL_NAMES_free(g);
	} else
		ok(0, "SAN copied from the CSR");
	reply_release(&r);
	mdm_buf_release(&csr);
	mdm_buf_release(&req);
	device_free(&d);
}

static void
test_challenges(struct mdm_scep *s, struct mdm_scep *once)
{
	struct device d;
	struct reply r;
	struct mdm_err e;
	char ch[32], ch2[32], hash[65];
	unsigned char md[32];
	size_t i;
	int rc, good;

	device_new(&d, 2048);
	rc = enrol(s, &d, EVP_aes_128_cbc(), EVP_sha256(), "dev-2", "wrong",
	    &r);
	ok(rc == 0 && is_failure(&r, 2), "wrong challenge: HTTP 200, "
	    "FAILURE badRequest");
	ok(r.text[0] != '\0', "failInfoText says why: %s", r.text);
	is_str(r.outcome, "failure:badRequest", "outcome failure:badRequest");
	ok(r.cert == NULL && r.env == NULL, "no envelope in a FAILURE");
	reply_release(&r);
	rc = enrol(s, &d, EVP_aes_128_cbc(), EVP_sha256(), "dev-2", NULL, &r);
	ok(rc == 0 && is_failure(&r, 2), "missing challenge: FAILURE "
	    "badRequest");
	reply_release(&r);
	rc = enrol(s, &d, EVP_aes_128_cbc(), EVP_sha256(), "dev-2", "s3cre",
	    &r);
	ok(rc == 0 && is_failure(&r, 2), "prefix of the challenge: FAILURE");
	reply_release(&r);

	/* One-time. */
	rc = mdm_scep_challenge_new(st, 3600, ch, sizeof(ch), &e);
	good = rc == 0 && strlen(ch) == 24;
	for (i = 0; good && i < 24; i++)
		good = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
		    "vwxyz0123456789-_", ch[i]) != NULL;
	ok(good, "challenge_new: 24 URL-safe characters (%s)", ch);
	ok(mdm_scep_challenge_new(st, 0, ch2, sizeof(ch2), &e) == -1 &&
	    e.code == MDM_E_USAGE, "challenge_new: ttl 0 refused");
	ok(mdm_scep_challenge_new(st, 60, ch2, 10, &e) == -1,
	    "challenge_new: small buffer refused");
	rc = enrol(once, &d, EVP_aes_256_cbc(), EVP_sha256(), "dev-2",
	    "s3cret", &r);
	ok(rc == 0 && is_failure(&r, 2), "static challenge refused by a CA "
	    "without one");
	reply_release(&r);
	device_free(&d);
	device_new(&d, 2048);
	rc = enrol(once, &d, EVP_aes_256_cbc(), EVP_sha256(), "dev-3", ch, &r);
	ok(rc == 0 && r.status == 0 && verifies(r.cert),
	    "one-time challenge: SUCCESS");
	reply_release(&r);
	device_free(&d);
	device_new(&d, 2048);
	rc = enrol(once, &d, EVP_aes_256_cbc(), EVP_sha256(), "dev-4", ch, &r);
	ok(rc == 0 && is_failure(&r, 2), "one-time challenge used twice: "
	    "FAILURE");
	reply_release(&r);

	/* Expired: recorded with an expiry in the past. */
	snprintf(ch2, sizeof(ch2), "expired-challenge-0001");
	EVP_Digest(ch2, strlen(ch2), md, NULL, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(hash + 2 * i, 3, "%02x", md[i]);
	ok(mdm_state_scep_challenge_add(ss, hash, time(NULL) - 10,
	    time(NULL) - 20, &e) == 0, "expired challenge recorded");
	rc = enrol(once, &d, EVP_aes_256_cbc(), EVP_sha256(), "dev-4", ch2,
	    &r);
	ok(rc == 0 && is_failure(&r, 2), "expired challenge: FAILURE");
	reply_release(&r);
	device_free(&d);
}

/*
 * Four processes, each with its own state handle and CA, race one
 * one-time challenge: exactly one certificate.
 */
static void
test_race(const char *dir)
{
	enum { N = 4 };
	struct device d[N];
	int go[2], res[2], i, wins = 0, done = 0;
	char ch[32], c;
	struct mdm_err e;
	pid_t pid[N];

	if (mdm_scep_challenge_new(st, 600, ch, sizeof(ch), &e) == -1)
		die_err("challenge", &e);
	for (i = 0; i < N; i++)
		device_new(&d[i], 2048);
	if (pipe(go) == -1 || pipe(res) == -1)
		die_ssl("pipe");
	fflush(stdout);
	/* SQLite state must not cross a fork: reopen afterwards. */
	mdm_state_scep_close(ss);
	mdm_state_close(st);
	for (i = 0; i < N; i++) {
		if ((pid[i] = fork()) == 0) {
			struct mdm_scep_policy p = { .validity_days = 30 };
			struct mdm_state *cst;
			struct mdm_scep *cs;
			struct reply r;
			char x;

			close(go[1]);
			if (mdm_state_open(dir, 0, &cst, &e) == -1 ||
			    mdm_scep_new(cst, &p, &cs, &e) == -1)
				_exit(3);
			if (read(go[0], &x, 1) != 0)
				_exit(4);
			x = (char)(enrol(cs, &d[i], EVP_aes_128_cbc(),
			    EVP_sha256(), "racer", ch, &r) == 0 &&
			    r.status == 0 && verifies(r.cert) ? 'W' :
			    r.status == 2 ? 'L' : 'E');
			if (write(res[1], &x, 1) != 1)
				_exit(5);
			_exit(0);
		}
	}
	close(go[0]);
	close(res[1]);
	usleep(200000);
	close(go[1]);	/* everyone starts now */
	for (i = 0; i < N; i++)
		if (read(res[0], &c, 1) == 1) {
			done++;
			wins += c == 'W';
		}
	for (i = 0; i < N; i++) {
		waitpid(pid[i], NULL, 0);
		device_free(&d[i]);
	}
	close(res[0]);
	if (mdm_state_open(dir, 0, &st, &e) == -1 ||
	    mdm_state_scep_open(st, &ss, &e) == -1)
		die_err("reopen", &e);
	ok(done == N && wins == 1, "one-time challenge raced by %d "
	    "processes: %d answers, %d certificate(s)", N, done, wins);
	issued_count += wins;
}

static void
test_tamper(struct mdm_scep *s)
{
	struct mdm_buf csr, req;
	struct device d;
	struct reply r;
	struct msg m;

	device_new(&d, 2048);
	memset(&m, 0, sizeof(m));
	m.type = PKCS_REQ;
	m.txid = d.txid;
	m.signer = d.signer;
	m.signer_key = d.key;
	mdm_buf_init(&csr, MDM_CAP_CERT);
	mdm_buf_init(&req, MDM_CAP_CMS);
	make_csr(d.key, "dev-t", "s3cret", NULL, &csr);
	make_msg(&m, EVP_aes_128_cbc(), &csr, &req);
	/* The signature is the last thing in a SignedData. */
	req.data[req.len - 5] ^= 0x5a;
	write_seed(NULL, req.data, req.len);
	ok(post(s, &req, d.signer, d.key, &r) == 0 && is_failure(&r, 1),
	    "tampered signature: FAILURE badMessageCheck");
	ok(r.rnonce_len == 16 && memcmp(r.rnonce, m.nonce, 16) == 0,
	    "FAILURE echoes the senderNonce");
	reply_release(&r);
	/* Digests and ciphers we do not take. */
	{
		struct msg m2 = m;
		EVP_CIPHER *cam = EVP_CIPHER_fetch(NULL, "CAMELLIA-128-CBC",
		    NULL);

		m2.md = EVP_md5();
		make_msg(&m2, EVP_aes_128_cbc(), &csr, &req);
		ok(post(s, &req, d.signer, d.key, &r) == 0 &&
		    is_failure(&r, 0), "MD5 digest: FAILURE badAlg");
		reply_release(&r);
		m2.md = EVP_sha256();
		if (cam != NULL) {
			make_msg(&m2, cam, &csr, &req);
			ok(post(s, &req, d.signer, d.key, &r) == 0 &&
			    is_failure(&r, 0), "Camellia envelope: FAILURE "
			    "badAlg");
			reply_release(&r);
		} else
			tap_skip(1, "no camellia in this openssl");
		EVP_CIPHER_free(cam);
		make_msg(&m, EVP_aes_128_cbc(), &csr, &req);
	}
	/* Truncated: not a CMS message any more. */
	req.len /= 2;
	ok(post(s, &req, NULL, NULL, &r) == 0 && r.http == 400,
	    "truncated pkiMessage: 400");
	reply_release(&r);
	/* Too small a key. */
	device_free(&d);
	device_new(&d, 1024);
	ok(enrol(s, &d, EVP_aes_128_cbc(), EVP_sha256(), "dev-t", "s3cret",
	    &r) == 0 && is_failure(&r, 2), "1024-bit key: FAILURE badRequest");
	reply_release(&r);
	mdm_buf_release(&csr);
	mdm_buf_release(&req);
	device_free(&d);
}

/* Signs a RenewalReq for a new key with signer/skey; reply in r. */
static int
renew(struct mdm_scep *s, X509 *signer, EVP_PKEY *skey, EVP_PKEY *newkey,
    const char *txid, struct reply *r)
{
	struct mdm_buf csr, req;
	struct msg m = { .type = RENEWAL_REQ, .txid = txid, .signer = signer,
	    .signer_key = skey };
	int rc;

	mdm_buf_init(&csr, MDM_CAP_CERT);
	mdm_buf_init(&req, MDM_CAP_CMS);
	make_csr(newkey, "dev-r", NULL, NULL, &csr);
	make_msg(&m, EVP_des_ede3_cbc(), &csr, &req);
	write_seed(NULL, req.data, req.len);
	rc = post(s, &req, signer, skey, r);
	mdm_buf_release(&csr);
	mdm_buf_release(&req);
	return rc;
}

static void
simple_msg(struct mdm_scep *s, struct device *d, int type, const char *txid,
    const struct mdm_buf *inner, struct reply *r)
{
	struct mdm_buf req, empty;
	struct msg m = { .type = type, .txid = txid, .signer = d->signer,
	    .signer_key = d->key };

	mdm_buf_init(&req, MDM_CAP_CMS);
	mdm_buf_init(&empty, 16);
	mdm_buf_append(&empty, "x", 1, NULL);
	make_msg(&m, EVP_aes_256_cbc(), inner ? inner : &empty, &req);
	write_seed(NULL, req.data, req.len);
	post(s, &req, d->signer, d->key, r);
	mdm_buf_release(&req);
	mdm_buf_release(&empty);
}

static void
test_lifecycle(struct mdm_scep *s)
{
	struct device d, d2, stranger;
	struct reply r, r2 = { 0 };
	struct mdm_buf ias, crlder;
	struct mdm_err e;
	EVP_PKEY *newkey, *fkey;
	X509 *issued = NULL, *foreign_ca, *foreign = NULL;
	PKCS7_ISSUER_AND_SERIAL *is;
	X509_CRL *crl;
	X509_REVOKED *rev;
	const unsigned char *p;
	unsigned char *der = NULL;
	char serial[100];
	int n;

	device_new(&d, 2048);
	ok(enrol(s, &d, EVP_des_ede3_cbc(), EVP_sha1(), "dev-r", "s3cret",
	    &r) == 0 && r.status == 0 && r.cert != NULL, "enrol for renewal");
	issued = r.cert;
	r.cert = NULL;
	snprintf(serial, sizeof(serial), "%s", r.serial);
	reply_release(&r);

	/* Retried PKCSReq: same transaction, same key. */
	ok(enrol(s, &d, EVP_des_ede3_cbc(), EVP_sha1(), "dev-r", "s3cret",
	    &r) == 0 && r.status == 0 && strcmp(r.serial, serial) == 0,
	    "retried PKCSReq: the same certificate again");
	is_str(r.outcome, "resent", "outcome resent");
	reply_release(&r);
	/* Same transaction, another key. */
	device_new(&d2, 2048);
	memcpy(d2.txid, d.txid, sizeof(d.txid));
	n = enrol(s, &d2, EVP_des_ede3_cbc(), EVP_sha1(), "dev-r", "s3cret",
	    &r);
	ok(n == 0 && is_failure(&r, 2), "transaction id of another key: "
	    "FAILURE");

	reply_release(&r);
	device_free(&d2);

	/* CertPoll. */
	simple_msg(s, &d, CERT_POLL, d.txid, NULL, &r);
	ok(r.status == 0 && r.cert != NULL && strcmp(r.serial, serial) == 0,
	    "CertPoll, known transaction: the certificate");
	is_str(r.outcome, "poll", "outcome poll");
	reply_release(&r);
	simple_msg(s, &d, CERT_POLL, "NO-SUCH-TRANSACTION", NULL, &r);
	ok(is_failure(&r, 4), "CertPoll, unknown transaction: badCertId");
	reply_release(&r);

	/* GetCert by issuer and serial. */
	mdm_buf_init(&ias, 4096);
	is = PKCS7_ISSUER_AND_SERIAL_new();
	X509_NAME_set(&is->issuer, X509_get_subject_name(ca));
	ASN1_INTEGER_free(is->serial);
	is->serial = ASN1_INTEGER_dup(X509_get0_serialNumber(issued));
	n = i2d_PKCS7_ISSUER_AND_SERIAL(is, &der);
	mdm_buf_append(&ias, der, (size_t)n, NULL);
	OPENSSL_free(der);
	der = NULL;
	simple_msg(s, &d, GET_CERT, "getcert-1", &ias, &r);
	ok(r.status == 0 && r.cert != NULL && X509_cmp(r.cert, issued) == 0,
	    "GetCert: the certificate by serial");
	reply_release(&r);
	ASN1_INTEGER_set(is->serial, 12345);
	mdm_buf_reset(&ias);
	n = i2d_PKCS7_ISSUER_AND_SERIAL(is, &der);
	mdm_buf_append(&ias, der, (size_t)n, NULL);
	OPENSSL_free(der);
	PKCS7_ISSUER_AND_SERIAL_free(is);
	simple_msg(s, &d, GET_CERT, "getcert-2", &ias, &r);
	ok(is_failure(&r, 4), "GetCert, unknown serial: badCertId");
	reply_release(&r);
	mdm_buf_release(&ias);

	/* Renewal with the issued certificate. */
	newkey = rsa_key(2048);
	ok(renew(s, issued, d.key, newkey, "renew-1", &r) == 0 &&
	    r.status == 0 && verifies(r.cert) && strcmp(r.serial, serial) != 0,
	    "RenewalReq signed by an issued certificate: a new certificate");
	is_str(r.outcome, "renewed", "outcome renewed");
	ok(r.cert != NULL && EVP_PKEY_eq(X509_get0_pubkey(r.cert), newkey) == 1,
	    "renewed certificate is for the new key");
	reply_release(&r);
	ok(renew(s, d.signer, d.key, newkey, "renew-2", &r) == 0 &&
	    is_failure(&r, 2), "RenewalReq signed by a self-signed "
	    "certificate: FAILURE");
	reply_release(&r);
	/* A look-alike CA with the same name issues the signer. */
	fkey = rsa_key(2048);
	foreign_ca = self_signed(fkey, "mdm test CA", MDM_X509_CA);
	{
		struct mdm_x509_opts o = { .kind = MDM_X509_CLIENT,
		    .common_name = "dev-r", .days = 30 };

		if (mdm_x509_issue(foreign_ca, fkey, d.key, &o, &foreign,
		    &e) == -1)
			die_err("issue", &e);
	}
	ok(renew(s, foreign, d.key, newkey, "renew-3", &r) == 0 &&
	    is_failure(&r, 2), "RenewalReq signed by a foreign CA's "
	    "certificate: FAILURE");
	reply_release(&r);

	/* Revocation. */
	is_int(mdm_scep_revoke(st, serial, &e), 0, "revoke: 0");
	{
		char lower[110];
		size_t i;

		snprintf(lower, sizeof(lower), "00%s", serial);
		for (i = 0; lower[i]; i++)
			if (lower[i] >= 'A' && lower[i] <= 'F')
				lower[i] = (char)(lower[i] - 'A' + 'a');
		is_int(mdm_scep_revoke(st, lower, &e), 1, "revoke again "
		    "(lowercase, leading zeros): 1");
	}
	{
		/* Recorded serials are whole bytes: "0A1B", not "A1B". */
		struct mdm_cert_row row = { .serial = "0A1B", .subject = "x",
		    .kind = "test", .not_before = 1, .not_after = 2 };
		static const unsigned char fake[] = { 0x30, 0x00 };

		ok(mdm_state_cert_insert(st, &row, fake, sizeof(fake), &e) == 0,
		    "a row with serial 0A1B");
		is_int(mdm_scep_revoke(st, "a1b", &e), 0, "revoke a1b finds "
		    "0A1B");
		is_int(mdm_scep_revoke(st, "0x000a1B", &e), 1, "revoke "
		    "0x000a1B finds it again");
	}
	ok(mdm_scep_revoke(st, "ABCDEF0123", &e) == -1 &&
	    e.code == MDM_E_NOINPUT, "revoke unknown serial: NOINPUT");
	ok(mdm_scep_revoke(st, "xyz", &e) == -1 && e.code == MDM_E_USAGE,
	    "revoke non-hex: USAGE");
	ok(renew(s, issued, d.key, newkey, "renew-4", &r) == 0 &&
	    is_failure(&r, 2), "RenewalReq signed by a revoked certificate: "
	    "FAILURE");
	reply_release(&r);

	/* CRL, through SCEP and through mdm_scep_crl. */
	device_new(&stranger, 2048);
	simple_msg(s, &stranger, GET_CRL, "getcrl-1", NULL, &r);
	ok(r.status == 0 && r.crl != NULL &&
	    X509_CRL_verify(r.crl, X509_get0_pubkey(ca)) == 1 &&
	    X509_CRL_get0_by_cert(r.crl, &rev, issued) == 1,
	    "GetCRL: a CRL signed by the CA listing the revoked serial");
	is_str(r.outcome, "crl", "outcome crl");
	reply_release(&r);
	device_free(&stranger);
	mdm_buf_init(&crlder, MDM_CAP_CMS);
	ok(mdm_scep_crl(st, 7, &crlder, &e) == 0, "mdm_scep_crl");
	p = crlder.data;
	crl = d2i_X509_CRL(NULL, &p, (long)crlder.len);
	ok(crl != NULL && X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1,
	    "CRL verifies with the CA key");
	ok(crl != NULL && X509_CRL_get0_by_cert(crl, &rev, issued) == 1,
	    "CRL lists the revoked serial");
	ok(crl != NULL && X509_CRL_get_version(crl) == X509_CRL_VERSION_2 &&
	    X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(ca)) == 0, "CRL v2, issuer is the CA");
	X509_CRL_free(crl);
	mdm_buf_release(&crlder);
	ok(mdm_scep_crl(st, 0, &crlder, &e) == -1, "CRL of 0 days refused");

	/* Retry of a revoked certificate's transaction: a fresh one. */
	ok(enrol(s, &d, EVP_aes_128_cbc(), EVP_sha256(), "dev-r", "s3cret",
	    &r) == 0 && r.status == 0 && strcmp(r.serial, serial) != 0,
	    "PKCSReq of a revoked certificate's transaction: a new one");
	reply_release(&r);

	/* GET PKIOperation with base64, '+' sent as ' '. */
	{
		struct mdm_buf csr, req, b64;
		struct mdm_scep_response resp;
		struct msg m = { .type = PKCS_REQ, .txid = "get-1" };
		struct device g;
		size_t i;

		device_new(&g, 2048);
		m.signer = g.signer;
		m.signer_key = g.key;
		mdm_buf_init(&csr, MDM_CAP_CERT);
		mdm_buf_init(&req, MDM_CAP_CMS);
		mdm_buf_init(&b64, MDM_CAP_CMS);
		make_csr(g.key, "dev-get", "s3cret", NULL, &csr);
		make_msg(&m, EVP_aes_128_cbc(), &csr, &req);
		mdm_base64_encode(req.data, req.len, &b64, NULL);
		for (i = 0; i < b64.len; i++)
			if (b64.data[i] == '+')
				b64.data[i] = ' ';
		mdm_scep_response_init(&resp);
		ok(mdm_scep_handle(s, "GET", "PKIOperation",
		    (char *)b64.data, NULL, 0, &resp, &e) == 0 &&
		    resp.http_status == 200 && parse_reply(&resp.body, ca,
		    g.signer, g.key, &r2) == 0 && r2.status == 0 &&
		    verifies(r2.cert), "GET PKIOperation: SUCCESS");
		issued_count += strcmp(resp.outcome, "issued") == 0;
		reply_release(&r2);
		mdm_scep_response_release(&resp);
		mdm_buf_release(&csr);
		mdm_buf_release(&req);
		mdm_buf_release(&b64);
		device_free(&g);
	}

	/* A signer we cannot encrypt to (EC): badAlg, never a 500. */
	{
		struct device ec;

		memset(&ec, 0, sizeof(ec));
		if ((ec.key = EVP_EC_gen("P-256")) == NULL)
			die_ssl("EVP_EC_gen");
		ec.signer = self_signed(ec.key, "MDM SCEP SIGNER",
		    MDM_X509_CLIENT);
		simple_msg(s, &ec, CERT_POLL, d.txid, NULL, &r);
		ok(is_failure(&r, 0), "CertPoll signed with an EC key: "
		    "FAILURE badAlg");
		reply_release(&r);
		device_free(&ec);
	}

	/* Unknown message types. */
	simple_msg(s, &d, 3, "certrep-in", NULL, &r);
	ok(is_failure(&r, 2), "a CertRep sent to the CA: FAILURE badRequest");
	reply_release(&r);

	X509_free(foreign);
	X509_free(foreign_ca);
	EVP_PKEY_free(fkey);
	EVP_PKEY_free(newkey);
	X509_free(issued);
	device_free(&d);
}

static int
write_script(const char *path, const char *body)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs(body, f);
	fclose(f);
	return chmod(path, 0700);
}

static void
test_policy(const char *dir)
{
	struct mdm_scep_policy p = { .validity_days = 30,
	    .static_challenge = "s3cret" };
	struct mdm_scep *s;
	struct mdm_err e;
	struct device d;
	struct reply r;
	char script[4200];

	device_new(&d, 2048);
	p.subject_pattern = "^CN=dev-[0-9]+$";
	s = scep_new(&p);
	ok(enrol(s, &d, EVP_aes_128_cbc(), EVP_sha256(), "printer", "s3cret",
	    &r) == 0 && is_failure(&r, 2), "subject not matching the "
	    "pattern: FAILURE");
	reply_release(&r);
	ok(enrol(s, &d, EVP_aes_128_cbc(), EVP_sha256(), "dev-42", "s3cret",
	    &r) == 0 && r.status == 0, "subject matching the pattern: "
	    "SUCCESS");
	reply_release(&r);
	mdm_scep_free(s);
	p.subject_pattern = "([";
	ok(mdm_scep_new(st, &p, &s, &e) == -1 && e.code == MDM_E_CONFIG,
	    "a pattern that does not compile: CONFIG");
	p.subject_pattern = NULL;

	device_free(&d);
	device_new(&d, 2048);
	p.csr_verify_exec = "/bin/false";
	s = scep_new(&p);
	ok(enrol(s, &d, EVP_aes_128_cbc(), EVP_sha256(), "dev-5", "s3cret",
	    &r) == 0 && is_failure(&r, 2), "csr_verify_exec /bin/false: "
	    "FAILURE");
	reply_release(&r);
	mdm_scep_free(s);
	p.csr_verify_exec = "/bin/true";
	s = scep_new(&p);
	ok(enrol(s, &d, EVP_aes_128_cbc(), EVP_sha256(), "dev-5", "s3cret",
	    &r) == 0 && r.status == 0, "csr_verify_exec /bin/true: SUCCESS");
	reply_release(&r);
	mdm_scep_free(s);

	device_free(&d);
	device_new(&d, 2048);
	snprintf(script, sizeof(script), "%s/check.sh", dir);
	write_script(script, "#!/bin/sh\n"
	    "[ \"$SCEP_MESSAGE_TYPE\" = 19 ] || exit 3\n"
	    "[ -n \"$SCEP_TRANSACTION_ID\" ] || exit 4\n"
	    "grep -q 'BEGIN CERTIFICATE REQUEST' || exit 5\n"
	    "exit 0\n");
	p.csr_verify_exec = script;
	s = scep_new(&p);
	ok(enrol(s, &d, EVP_aes_128_cbc(), EVP_sha256(), "dev-6", "s3cret",
	    &r) == 0 && r.status == 0, "csr_verify_exec gets the CSR on "
	    "stdin and SCEP_* in the environment");
	reply_release(&r);
	mdm_scep_free(s);
	device_free(&d);
	device_new(&d, 2048);
	p.csr_verify_exec = "/nonexistent/program";
	s = scep_new(&p);
	ok(enrol(s, &d, EVP_aes_128_cbc(), EVP_sha256(), "dev-7", "s3cret",
	    &r) == 0 && is_failure(&r, 2), "csr_verify_exec missing: "
	    "FAILURE, not a crash");
	reply_release(&r);
	mdm_scep_free(s);
	/* A program that ignores its stdin and exits at once. */
	snprintf(script, sizeof(script), "%s/quick.sh", dir);
	write_script(script, "#!/bin/sh\nexit 0\n");
	device_free(&d);
	device_new(&d, 2048);
	p.csr_verify_exec = script;
	s = scep_new(&p);
	ok(enrol(s, &d, EVP_aes_128_cbc(), EVP_sha256(), "dev-8", "s3cret",
	    &r) == 0 && r.status == 0, "csr_verify_exec that reads nothing: "
	    "no SIGPIPE");
	reply_release(&r);
	mdm_scep_free(s);
	device_free(&d);
}

/* Enrols a fresh device with its request encrypted to `to`. */
static void
ra_enrol(struct mdm_scep *s, X509 *to1, X509 *to2, const char *what)
{
	struct device d;
	struct reply r;

	send_to = sk_X509_new_null();
	sk_X509_push(send_to, to1);
	if (to2 != NULL)
		sk_X509_push(send_to, to2);
	device_new(&d, 2048);
	ok(enrol(s, &d, EVP_aes_256_cbc(), EVP_sha256(), "ra-dev",
	    "ra-secret", &r) == 0 && r.status == 0 && r.signed_by_ra &&
	    verifies(r.cert), "RA: request encrypted to %s: issued, signed "
	    "by the CA, the CertRep by the RA", what);
	reply_release(&r);
	device_free(&d);
	sk_X509_free(send_to);
	send_to = NULL;
}

/* The RA: ra-init, GetCACert's chain form, requests for the RA. */
static void
test_ra(const char *dir)
{
	struct mdm_scep_policy p = { .validity_days = 30,
	    .static_challenge = "ra-secret" };
	struct mdm_scep_response resp;
	struct mdm_state *rst;
	struct mdm_scep *s = NULL;
	struct mdm_err e;
	STACK_OF(X509) *certs = NULL;
	CMS_ContentInfo *cms = NULL;
	const unsigned char *der;
	char path[4600];
	struct stat sb;
	X509 *again = NULL;
	EVP_PKEY *other;
	struct mdm_buf pem;
	int rc, i, has_ca = 0, has_ra = 0;

	make_state(dir, ca, ca_key, &rst);
	rc = mdm_scep_ra_init(rst, 30, 0, &ra_cert, &e);
	ok(rc == 0 && ra_cert != NULL, "ra-init makes an RA");
	if (rc == -1) {
		tap_diag("%s", e.msg);
		mdm_state_close(rst);
		return;
	}
	ok(verifies(ra_cert) && X509_check_ca(ra_cert) == 0 &&
	    (X509_get_key_usage(ra_cert) & (KU_DIGITAL_SIGNATURE |
	    KU_KEY_ENCIPHERMENT)) == (KU_DIGITAL_SIGNATURE |
	    KU_KEY_ENCIPHERMENT), "RA certificate: from the CA, no CA, "
	    "digitalSignature and keyEncipherment");
	snprintf(path, sizeof(path), "%s/ca/ra.key", dir);
	ok(stat(path, &sb) == 0 && (sb.st_mode & 077) == 0,
	    "RA key is private (0600)");
	rc = mdm_scep_ra_init(rst, 30, 0, NULL, &e);
	ok(rc == -1 && e.code == MDM_E_EXISTS, "a second ra-init needs "
	    "force");

	if (mdm_scep_new(rst, &p, &s, &e) == -1)
		die_err("mdm_scep_new with RA", &e);
	mdm_scep_response_init(&resp);
	rc = mdm_scep_handle(s, "GET", "GetCACert", NULL, NULL, 0, &resp, &e);
	der = resp.body.data;
	if (rc == 0 && resp.body.len > 0)
		cms = d2i_CMS_ContentInfo(NULL, &der, (long)resp.body.len);
	if (cms != NULL)
		certs = CMS_get1_certs(cms);
	for (i = 0; i < sk_X509_num(certs); i++) {
		has_ca += X509_cmp(sk_X509_value(certs, i), ca) == 0;
		has_ra += X509_cmp(sk_X509_value(certs, i), ra_cert) == 0;
	}
	ok(rc == 0 && resp.http_status == 200 &&
	    strcmp(resp.content_type, "application/x-x509-ca-ra-cert") == 0 &&
	    cms != NULL && OBJ_obj2nid(CMS_get0_type(cms)) ==
	    NID_pkcs7_signed && CMS_get0_SignerInfos(cms) != NULL &&
	    sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) == 0 &&
	    sk_X509_num(certs) == 2 && has_ca == 1 && has_ra == 1,
	    "GetCACert with an RA: degenerate SignedData of CA and RA "
	    "(x-x509-ca-ra-cert)");
	sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(cms);
	mdm_scep_response_release(&resp);

	ra_enrol(s, ra_cert, NULL, "the RA");
	ra_enrol(s, ca, ra_cert, "the CA and the RA");
	ra_enrol(s, ca, NULL, "the CA only");
	mdm_scep_free(s);
	s = NULL;

	/* A key that is not the RA's, or half an RA, stops the server. */
	other = rsa_key(2048);
	mdm_buf_init(&pem, MDM_CAP_CERT);
	if (mdm_x509_key_to_pem(other, &pem, &e) == -1 ||
	    mdm_state_write_file(rst, "ca/ra.key", pem.data, pem.len, 0600, 0,
	    &e) == -1)
		die_err("write RA key", &e);
	mdm_buf_release_secret(&pem);
	EVP_PKEY_free(other);
	rc = mdm_scep_new(rst, &p, &s, &e);
	ok(rc == -1 && e.code == MDM_E_CONFIG, "RA key of another "
	    "certificate: refused (%s)", rc == -1 ? e.msg : "started");
	mdm_scep_free(s);
	s = NULL;
	unlink(path);
	rc = mdm_scep_new(rst, &p, &s, &e);
	ok(rc == -1 && e.code == MDM_E_CONFIG, "RA certificate without its "
	    "key: refused");
	mdm_scep_free(s);
	s = NULL;

	rc = mdm_scep_ra_init(rst, 30, 1, &again, &e);
	ok(rc == 0 && again != NULL && X509_cmp(again, ra_cert) != 0,
	    "ra-init with force replaces the RA");
	X509_free(ra_cert);
	ra_cert = again;
	if (mdm_scep_new(rst, &p, &s, &e) == -1)
		die_err("mdm_scep_new with the new RA", &e);
	ra_enrol(s, ra_cert, NULL, "the new RA");
	mdm_scep_free(s);
	s = NULL;

	unlink(path);
	snprintf(path, sizeof(path), "%s/ca/ra.pem", dir);
	unlink(path);
	X509_free(ra_cert);
	ra_cert = NULL;
	if (mdm_scep_new(rst, &p, &s, &e) == -1)
		die_err("mdm_scep_new without RA", &e);
	mdm_scep_response_init(&resp);
	rc = mdm_scep_handle(s, "GET", "GetCACert", NULL, NULL, 0, &resp, &e);
	ok(rc == 0 && strcmp(resp.content_type,
	    "application/x-x509-ca-cert") == 0, "without the RA files: the "
	    "single certificate form again");
	mdm_scep_response_release(&resp);
	mdm_scep_free(s);
	mdm_state_close(rst);
}

static int
count_cb(const struct mdm_cert_row *row, void *arg, struct mdm_err *e)
{
	(void)e;
	if (strcmp(row->kind, "device") == 0)
		(*(int *)arg)++;
	return 0;
}

/* The Apple PKCSReq of the fixtures, answered with the fixture CA. */
static void
test_fixture(void)
{
	static const unsigned char apple_nonce[] = { 0xae, 0x7f, 0xe8, 0x81,
	    0x6c, 0xc6, 0xbe, 0xdd };
	const char *path = tap_fixture("scep/testdata/PKCSReq.der");
	char dir[4200], src[4200];
	struct mdm_scep_policy p = { .min_key_bits = 1024,
	    .no_challenge = 1 };
	struct mdm_scep_response resp;
	struct mdm_state_scep_cert rec;
	struct mdm_state_scep *fss;
	struct mdm_state *fst;
	struct mdm_buf req, pem, b64;
	struct mdm_scep *s;
	struct mdm_err e;
	struct reply r = { 0 };
	CMS_ContentInfo *cms;
	STACK_OF(X509) *rsigners;
	STACK_OF(CMS_RecipientInfo) *ris;
	X509 *fca = NULL, *apple_signer = NULL;
	const unsigned char *q;
	char serial[100];
	int found, n = 0;

	if (path == NULL) {
		tap_skip(14, "fixtures absent");
		return;
	}
	mdm_buf_init(&req, MDM_CAP_CMS);
	mdm_buf_init(&pem, MDM_CAP_CERT);
	mdm_buf_init(&b64, MDM_CAP_CMS);
	if (mdm_buf_read_file(&req, path, &e) == -1)
		die_err("fixture", &e);
	snprintf(dir, sizeof(dir), "%s/fixture-state", tap_tmpdir());
	if (mdm_state_open(dir, MDM_STATE_CREATE, &fst, &e) == -1)
		die_err("state", &e);
	snprintf(src, sizeof(src), "%s",
	    tap_fixture("scep/testdata/testca/ca.pem"));
	if (mdm_buf_read_file(&pem, src, &e) == -1 ||
	    mdm_state_write_file(fst, "ca/ca.pem", pem.data, pem.len, 0644, 0,
	    &e) == -1 || mdm_x509_cert_from_mem(pem.data, pem.len, &fca,
	    &e) == -1)
		die_err("fixture ca", &e);
	mdm_buf_reset(&pem);
	snprintf(src, sizeof(src), "%s",
	    tap_fixture("scep/testdata/testca/ca.key"));
	if (mdm_buf_read_file(&pem, src, &e) == -1 ||
	    mdm_state_write_file(fst, "ca/ca.key", pem.data, pem.len, 0600, 0,
	    &e) == -1)
		die_err("fixture key", &e);
	mdm_buf_release_secret(&pem);

	/* The signer the Apple device used, for the recipient check. */
	q = req.data;
	cms = d2i_CMS_ContentInfo(NULL, &q, (long)req.len);
	rsigners = cms ? CMS_get1_certs(cms) : NULL;
	if (sk_X509_num(rsigners) == 1) {
		apple_signer = sk_X509_value(rsigners, 0);
		X509_up_ref(apple_signer);
	}
	sk_X509_pop_free(rsigners, X509_free);
	CMS_ContentInfo_free(cms);

	/* A challenge is required unless the policy waives it. */
	{
		struct mdm_scep_policy strict = { .min_key_bits = 1024,
		    .static_challenge = "whatever" };

		if (mdm_scep_new(fst, &strict, &s, &e) == -1)
			die_err("mdm_scep_new fixture", &e);
		mdm_scep_response_init(&resp);
		mdm_scep_handle(s, "POST", "PKIOperation", NULL, req.data,
		    req.len, &resp, &e);
		r.http = resp.http_status;
		ok(resp.http_status == 200 && parse_reply(&resp.body, fca,
		    NULL, NULL, &r) == 0 && is_failure(&r, 2),
		    "Apple request without a challenge, CA wants one: "
		    "FAILURE badRequest");

		reply_release(&r);
		mdm_scep_response_release(&resp);
		mdm_scep_free(s);
	}

	if (mdm_scep_new(fst, &p, &s, &e) == -1)
		die_err("mdm_scep_new fixture", &e);
	mdm_scep_response_init(&resp);
	ok(mdm_scep_handle(s, "POST", "PKIOperation", NULL, req.data, req.len,
	    &resp, &e) == 0 && resp.http_status == 200 &&
	    strcmp(resp.content_type, "application/x-pki-message") == 0,
	    "Apple PKCSReq: HTTP 200 pki-message");
	ok(parse_reply(&resp.body, fca, NULL, NULL, &r) == 0 &&
	    r.signed_by_ca, "CertRep verifies with the fixture CA");
	is_int(r.status, 0, "pkiStatus SUCCESS");
	ok(r.rnonce_len == sizeof(apple_nonce) &&
	    memcmp(r.rnonce, apple_nonce, sizeof(apple_nonce)) == 0,
	    "recipientNonce is the request's senderNonce");
	is_str(r.txid, "A13090761A30F66664F85D37433D2065E1112BA1",
	    "transactionID echoed");
	is_int(r.cipher_nid, NID_des_ede3_cbc, "envelope in 3DES, as the "
	    "request");
	is_int(r.md_nid, NID_sha1, "signed with SHA-1, as the request");
	ris = r.env ? CMS_get0_RecipientInfos(r.env) : NULL;
	ok(sk_CMS_RecipientInfo_num(ris) == 1 && apple_signer != NULL &&
	    CMS_RecipientInfo_ktri_cert_cmp(sk_CMS_RecipientInfo_value(ris,
	    0), apple_signer) == 0, "envelope recipient is the device's "
	    "signer (issuer and serial)");
	ok(r.outer_cert != NULL && X509_verify(r.outer_cert,
	    X509_get0_pubkey(fca)) == 1, "issued certificate signed by the "
	    "fixture CA");
	{
		char cn[128];

		ok(r.outer_cert != NULL && mdm_x509_subject_attr(r.outer_cert,
		    NID_commonName, cn, sizeof(cn), NULL) == 0 &&
		    strcmp(cn, "com.apple.security.scep.063D7953-1338-4BF0-"
		    "8F99-913382996224") == 0, "subject from the Apple CSR");
	}
	snprintf(serial, sizeof(serial), "%s", resp.serial);
	mdm_state_scep_cert_init(&rec);
	if (mdm_state_scep_open(fst, &fss, &e) == -1)
		die_err("state_scep", &e);
	found = mdm_state_scep_cert_by_transaction(fss,
	    "A13090761A30F66664F85D37433D2065E1112BA1", &rec, &e);
	ok(found == 1 && strcmp(rec.serial, serial) == 0,
	    "recorded under the Apple transaction id");
	mdm_state_scep_cert_release(&rec);
	mdm_state_scep_close(fss);
	mdm_state_cert_foreach(fst, count_cb, &n, &e);
	is_int(n, 1, "one device certificate in the database");
	reply_release(&r);

	/* The same request again, over GET: the same certificate. */
	mdm_base64_encode(req.data, req.len, &b64, NULL);
	ok(mdm_scep_handle(s, "GET", "PKIOperation", (char *)b64.data, NULL,
	    0, &resp, &e) == 0 && resp.http_status == 200 &&
	    strcmp(resp.serial, serial) == 0 &&
	    strcmp(resp.outcome, "resent") == 0,
	    "Apple request replayed over GET: the same certificate");
	mdm_scep_response_release(&resp);
	mdm_scep_free(s);
	X509_free(apple_signer);
	X509_free(fca);
	mdm_state_close(fst);
	mdm_buf_release(&req);
	mdm_buf_release(&b64);
}

/*
 * tests/data/pkimessage: inputs the fuzzer found, as fuzz_pkimessage
 * feeds them (a leading 'E' or 'C' selects its wrapping modes).  Each
 * must get a clean 400 or a FAILURE, or (a 'C' CSR) any 200.
 */
static void
wrap_input(const unsigned char *p, size_t n, struct device *d,
    struct mdm_buf *out)
{
	struct mdm_buf env;
	unsigned char md[20];
	char txid[41];
	struct msg m = { .type = PKCS_REQ, .txid = txid, .signer = d->signer,
	    .signer_key = d->key };
	int i;

	/* As fuzz_pkimessage: the transactionID is the input's SHA-1. */
	EVP_Digest(p, n, md, NULL, EVP_sha1(), NULL);
	for (i = 0; i < 20; i++)
		snprintf(txid + 2 * i, 3, "%02X", md[i]);
	mdm_buf_init(&env, MDM_CAP_CMS);
	mdm_buf_reset(out);
	if (n > 0 && p[0] == 'E')
		sign_msg(&m, p + 1, n - 1, out);
	else if (n > 0 && p[0] == 'C') {
		encrypt_to(ca, EVP_des_ede3_cbc(), p + 1, n - 1, &env);
		sign_msg(&m, env.data, env.len, out);
	} else
		mdm_buf_append(out, p, n, NULL);
	mdm_buf_release(&env);
}

static void
test_regressions(struct mdm_scep *s)
{
	const char *data = getenv("MDM_TEST_DATA");
	char dir[4200], path[4600];
	struct mdm_scep_response resp;
	struct mdm_buf in, req;
	struct mdm_err e;
	struct dirent *de;
	struct device d;
	DIR *dp;
	int files = 0, clean = 0, rc;

	if (data == NULL) {
		tap_skip(1, "MDM_TEST_DATA not set");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/pkimessage", data);
	if ((dp = opendir(dir)) == NULL) {
		tap_skip(1, "no tests/data/pkimessage");
		return;
	}
	device_new(&d, 2048);
	mdm_buf_init(&in, MDM_SCEP_MAX_MESSAGE);
	mdm_buf_init(&req, MDM_CAP_CMS);
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "README") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		mdm_buf_reset(&in);
		if (mdm_buf_read_file(&in, path, &e) == -1)
			continue;
		files++;
		wrap_input(in.data, in.len, &d, &req);
		mdm_scep_response_init(&resp);
		rc = mdm_scep_handle(s, "POST", "PKIOperation", NULL, req.data,
		    req.len, &resp, &e);
		if (rc == 0 && (resp.http_status == 400 ||
		    resp.http_status == 413 || (resp.http_status == 200 &&
		    (strncmp(resp.outcome, "failure:", 8) == 0 ||
		    (in.len > 0 && in.data[0] == 'C')))))
			clean++;
		else
			tap_diag("%s: rc %d, http %d, %s", de->d_name, rc,
			    resp.http_status, resp.outcome);
		mdm_scep_response_release(&resp);
	}
	closedir(dp);
	ok(files > 0 && clean == files, "regression inputs: %d of %d "
	    "answered cleanly", clean, files);
	mdm_buf_release(&in);
	mdm_buf_release(&req);
	device_free(&d);
}

/* Seeds for the fuzzer's 'E' and 'C' modes. */
static void
write_mode_seeds(void)
{
	struct mdm_buf csr, env;
	struct device d;

	if (seeds == NULL)
		return;
	device_new(&d, 2048);
	mdm_buf_init(&csr, MDM_CAP_CERT);
	mdm_buf_init(&env, MDM_CAP_CMS);
	make_csr(d.key, "fuzz-dev", "s3cret", "fuzz.example.com", &csr);
	write_seed("C", csr.data, csr.len);
	make_csr(d.key, "fuzz-dev2", "s3cret", NULL, &csr);
	write_seed("C", csr.data, csr.len);
	encrypt_to(ca, EVP_aes_128_cbc(), csr.data, csr.len, &env);
	write_seed("E", env.data, env.len);
	encrypt_to(ca, EVP_des_ede3_cbc(), csr.data, csr.len, &env);
	write_seed("E", env.data, env.len);
	mdm_buf_release(&csr);
	mdm_buf_release(&env);
	device_free(&d);
}

int
main(void)
{
	struct mdm_scep_policy p = { .validity_days = 30,
	    .static_challenge = "s3cret" };
	struct mdm_scep_policy once = { .validity_days = 30 };
	struct mdm_scep *s, *s_once;
	struct mdm_err e;
	char dir[4200];
	size_t i;
	int n = 0;

	seeds = getenv("MDM_SCEP_SEEDS");
	if (mdm_crypto_init(&e) == -1)
		tap_diag("%s", e.msg);
	for (i = 0; i < A_N; i++)
		if ((attr_obj[i] = OBJ_txt2obj(attr_oid[i], 1)) == NULL)
			die_ssl("OBJ_txt2obj");
	ca_key = rsa_key(2048);
	ca = self_signed(ca_key, "mdm test CA", MDM_X509_CA);
	snprintf(dir, sizeof(dir), "%s/state", tap_tmpdir());
	make_state(dir, ca, ca_key, &st);
	if (mdm_state_scep_open(st, &ss, &e) == -1)
		die_err("state_scep", &e);
	test_race(dir);		/* before any handle holds st */
	s = scep_new(&p);
	s_once = scep_new(&once);

	test_http(s);
	test_ciphers(s);
	test_upgrade(s);
	test_challenges(s, s_once);
	test_tamper(s);
	test_lifecycle(s);
	test_policy(tap_tmpdir());
	mdm_state_cert_foreach(st, count_cb, &n, &e);
	ok(n == issued_count, "every issued certificate is in the database "
	    "(%d of %d)", n, issued_count);
	snprintf(dir, sizeof(dir), "%s/ra-state", tap_tmpdir());
	test_ra(dir);
	test_regressions(s);
	write_mode_seeds();
	test_fixture();

	mdm_scep_free(s);
	mdm_scep_free(s_once);
	mdm_state_scep_close(ss);
	mdm_state_close(st);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	for (i = 0; i < A_N; i++)
		ASN1_OBJECT_free(attr_obj[i]);
	return tap_done();
}
