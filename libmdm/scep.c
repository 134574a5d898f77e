#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>		/* before cms.h */
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "file.h"
#include "proc.h"
#include "scep.h"
#include "scep_msg.h"
#include "state.h"
#include "state_scep.h"
#include "x509.h"
#include "ossl_int.h"
#include "mdm_int.h"

#define NONCE_MAX	64		/* senderNonce bytes we echo */
#define CHALLENGE_MAX	255
#define CSR_MAX		(64u << 10)	/* a decrypted PKCS#10 */
#define SUBJECT_MAX	1024		/* one-line subject, bytes */
#define RSA_MAX_BITS	16384
#define EC_MIN_BITS	256
#define GETCRL_DAYS	7
#define EXEC_TIMEOUT_MS	10000
#define SERIAL_TRIES	4		/* fresh serials on a clash */
#define NOT_BEFORE_SKEW	300		/* seconds, for slow clocks */

/*
 * A library context with only the "null" provider, to parse requests,
 * CSRs and recorded certificates in.  OpenSSL 3.0 decodes the public key
 * of every certificate and CSR it parses through a fresh OSSL_DECODER_CTX
 * (some 90 us a key, more than anything in a request but the RSA
 * operations); here that decoder finds nothing and gives up at once, and
 * pubkey_of() makes the few keys we use.  Everything else of what is
 * parsed (the certificates' own library context, every algorithm a
 * signature check or an envelope fetches) stays with the default context.
 */
static OSSL_LIB_CTX *bare_ctx;
static CRYPTO_ONCE globals_once = CRYPTO_ONCE_STATIC_INIT;
static int globals_ready;

static void
make_globals(void)
{
	if ((bare_ctx = OSSL_LIB_CTX_new()) == NULL ||
	    OSSL_PROVIDER_load(bare_ctx, "null") == NULL)
		return;
	globals_ready = 1;
}

static int
init_globals(struct mdm_err *e)
{
	if (mdm_scep_msg_init(e) == -1)
		return -1;
	if (!CRYPTO_THREAD_run_once(&globals_once, make_globals) ||
	    !globals_ready)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE,
		    "cannot set up the scep parsing context");
	return 0;
}

enum fail_info {
	FAIL_BAD_ALG = 0,
	FAIL_BAD_MESSAGE_CHECK = 1,
	FAIL_BAD_REQUEST = 2,
	FAIL_BAD_TIME = 3,
	FAIL_BAD_CERT_ID = 4,
};

static const char *const fail_outcome[] = {
	"failure:badAlg",
	"failure:badMessageCheck",
	"failure:badRequest",
	"failure:badTime",
	"failure:badCertId",
};

/* Content ciphers, weakest first: the rank picks the reply's cipher. */
enum {
	C_DES,
	C_DES3,
	C_AES128,
	C_AES192,
	C_AES256,
	C_COUNT
};

static const struct {
	int nid;
	const char *name;
} ciphers[C_COUNT] = {
	{ NID_des_cbc, "DES-CBC" },
	{ NID_des_ede3_cbc, "DES-EDE3-CBC" },
	{ NID_aes_128_cbc, "AES-128-CBC" },
	{ NID_aes_192_cbc, "AES-192-CBC" },
	{ NID_aes_256_cbc, "AES-256-CBC" },
};

/* Request digests we accept (SHA-256 is also ours). */
static const struct {
	int nid;
	const char *name;
} digests[] = {
	{ NID_sha1, "SHA1" },
	{ NID_sha224, "SHA224" },
	{ NID_sha256, "SHA256" },
	{ NID_sha384, "SHA384" },
	{ NID_sha512, "SHA512" },
};

static const char caps_text[] =
    "POSTPKIOperation\nRenewal\nSHA-1\nSHA-256\nSHA-512\nAES\nDES3\n"
    "SCEPStandard";

struct mdm_scep {
	struct mdm_state *st;		/* borrowed */
	struct mdm_state_scep *ss;	/* owned */
	X509 *ca;
	EVP_PKEY *key;
	/* The RA (ca/ra.pem, ca/ra.key), or NULL: the CA is its own RA. */
	X509 *ra;
	EVP_PKEY *ra_key;
	/* Who receives requests and signs CertReps: the RA, else the CA
	   (borrowed from the above). */
	X509 *rep_cert;
	EVP_PKEY *rep_key;
	struct mdm_buf cacert;		/* GetCACert body, made once */
	const char *cacert_type;	/* static */
	/* Extensions every issued certificate carries, made once. */
	X509_EXTENSION *ext_bc, *ext_ku, *ext_eku, *ext_akid;
	EVP_CIPHER *cipher[C_COUNT];	/* NULL: not available (DES) */
	/*
	 * Where single DES comes from when the default library context has
	 * no legacy provider (mdm-serve), else NULL: reading a request
	 * there costs a copy of the key into it, so only for DES.
	 */
	OSSL_LIB_CTX *des_ctx;
	/* Fetched once: OpenSSL 3 would look them up on every use. */
	EVP_MD *md[5];			/* as digests[] */
	EVP_MD *sha256;			/* borrowed from md[] */
	int validity_days;
	int min_key_bits;
	int no_challenge;
	char *static_challenge;		/* owned, wiped when freed */
	size_t static_len;
	char *exec;
	char *ca_name;
	regex_t re;
	int have_re;
};

/* What we learnt of one pkiMessage. */
struct req {
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;		/* borrowed from cms */
	X509 *signer;			/* owned */
	int type;
	char txid[MDM_SCEP_MSG_TXID_MAX + 1];
	int txid_asn1_type;		/* echoed in the same type */
	unsigned char nonce[NONCE_MAX];
	size_t nonce_len;
	const EVP_MD *md;		/* in s->md; NULL until known */
	int cipher;			/* C_* of the envelope, -1 unknown */
	int cap_cipher;			/* best C_* it advertises */
	const unsigned char *content;	/* eContent, borrowed from cms */
	size_t content_len;
	struct mdm_buf plain;		/* the decrypted envelope */
	X509_REQ *csr;			/* parsed without its key */
	EVP_PKEY *csr_key;		/* the CSR's key */
	char signer_sha256[65];		/* of a RenewalReq's signer as sent */
	/* Why a request is refused (FAILURE CertRep) or invalid (400). */
	int fail;
	char why[200];
};

/* Results of the steps below besides 0 (go on) and -1 (server error). */
enum {
	REFUSE = 1,			/* answer FAILURE with req->fail */
	INVALID = 2,			/* answer 400 with req->why */
	FOUND = 3,			/* a certificate to send again */
};

static int
refuse(struct req *r, int fail, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
refuse(struct req *r, int fail, const char *fmt, ...)
{
	va_list ap;

	r->fail = fail;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	mdm_strip_newlines(r->why);
	ERR_clear_error();
	return REFUSE;
}

static int
invalid(struct req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
invalid(struct req *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	mdm_strip_newlines(r->why);
	ERR_clear_error();
	return INVALID;
}

static void
req_init(struct req *r)
{
	memset(r, 0, sizeof(*r));
	r->cipher = -1;
	r->cap_cipher = -1;
	mdm_buf_init(&r->plain, CSR_MAX);
}

static void
req_release(struct req *r)
{
	CMS_ContentInfo_free(r->cms);
	X509_free(r->signer);
	X509_REQ_free(r->csr);
	EVP_PKEY_free(r->csr_key);
	mdm_buf_release_secret(&r->plain);
	memset(r, 0, sizeof(*r));
}

/* Responses. */

void
mdm_scep_response_init(struct mdm_scep_response *r)
{
	memset(r, 0, sizeof(*r));
	r->http_status = 500;
	r->content_type = "text/plain";
	r->outcome = "error";
	/* A CRL of many revocations is the largest answer. */
	mdm_buf_init(&r->body, MDM_CAP_CMS);
}

void
mdm_scep_response_release(struct mdm_scep_response *r)
{
	if (r == NULL)
		return;
	mdm_buf_release(&r->body);
}

static void
resp_text(struct mdm_scep_response *r, int status, const char *outcome,
    const char *msg)
{
	mdm_buf_reset(&r->body);
	r->http_status = status;
	r->content_type = "text/plain";
	r->outcome = outcome;
	r->serial[0] = '\0';
	/* Too long for the cap cannot happen; an empty body would do. */
	if (mdm_buf_append_str(&r->body, msg, NULL) == -1 ||
	    mdm_buf_append(&r->body, "\n", 1, NULL) == -1)
		mdm_buf_reset(&r->body);
}

/* Server trouble: 503 for busy, 500 otherwise; always -1. */
static int
resp_server_error(struct mdm_scep_response *r, struct mdm_err *e)
{
	if (e != NULL && e->code == MDM_E_TEMPFAIL)
		resp_text(r, 503, "busy", "database busy, try again later");
	else
		resp_text(r, 500, "error", "internal server error");
	return -1;
}

static int
resp_bytes(struct mdm_scep_response *r, const char *type, const char *outcome,
    const void *p, size_t n, struct mdm_err *e)
{
	mdm_buf_reset(&r->body);
	r->serial[0] = '\0';
	if (mdm_buf_append(&r->body, p, n, e) == -1)
		return -1;
	r->http_status = 200;
	r->content_type = type;
	r->outcome = outcome;
	return 0;
}

/* Small OpenSSL helpers. */

static int
sha256_hex(const void *p, size_t n, char out[65], struct mdm_err *e)
{
	unsigned char md[32];
	unsigned int len = 0;

	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sha256");
	mdm_hex_lower(md, len, out);
	return 0;
}

static int
cert_sha256(X509 *c, char out[65], struct mdm_err *e)
{
	unsigned char md[32];
	unsigned int len = 0;

	if (!X509_digest(c, EVP_sha256(), md, &len) || len != 32)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE,
		    "cannot hash certificate");
	mdm_hex_lower(md, len, out);
	return 0;
}

/*
 * DER of item `it` parsed in bare_ctx, all of it or nothing (NULL).
 * Owned by the caller, to be freed as that item.
 */
static void *
parse_bare(const ASN1_ITEM *it, const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	ASN1_VALUE *v;

	if (len == 0 || len > LONG_MAX)
		return NULL;
	if ((v = ASN1_item_d2i_ex(NULL, &p, (long)len, it, bare_ctx,
	    NULL)) == NULL)
		return NULL;
	if (p != der + len) {
		ASN1_item_free(v, it);
		return NULL;
	}
	return v;
}

/*
 * The key of a SubjectPublicKeyInfo parsed in bare_ctx, or NULL.  RSA
 * (every SCEP signer, nearly every CSR) is read straight from its
 * RSAPublicKey, parameters ignored as OpenSSL's own RSA decoder does;
 * any other algorithm goes through the generic decoder, in the default
 * context.  Owned.
 */
static EVP_PKEY *
pubkey_of(X509_PUBKEY *pub)
{
	ASN1_OBJECT *obj = NULL;
	const unsigned char *pk = NULL, *p;
	unsigned char *der = NULL;
	EVP_PKEY *key = NULL;
	int n = 0;

	if (pub == NULL || !X509_PUBKEY_get0_param(&obj, &pk, &n, NULL, pub) ||
	    pk == NULL || n <= 0)
		return NULL;
	if (OBJ_obj2nid(obj) == NID_rsaEncryption) {
		p = pk;
		key = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, n);
		if (key != NULL && p != pk + n) {
			EVP_PKEY_free(key);
			key = NULL;
		}
		return key;
	}
	if ((n = i2d_X509_PUBKEY(pub, &der)) > 0) {
		p = der;
		key = d2i_PUBKEY(NULL, &p, n);
	}
	OPENSSL_free(der);
	return key;
}

/* Uppercase hex without leading zeros, as mdm_x509_inspect writes it. */
static int
serial_hex(const ASN1_INTEGER *ai, char *out, size_t outlen,
    struct mdm_err *e)
{
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int rc = -1;

	if ((bn = ASN1_INTEGER_to_BN(ai, NULL)) == NULL ||
	    (hex = BN_bn2hex(bn)) == NULL) {
		mdm_err_set_ssl(e, MDM_E_DATA, "bad serial number");
		goto out;
	}
	if (BN_is_negative(bn) || strlen(hex) >= outlen) {
		mdm_err_set(e, MDM_E_DATA, "serial number out of range");
		goto out;
	}
	snprintf(out, outlen, "%s", hex);
	rc = 0;
out:
	OPENSSL_free(hex);
	BN_free(bn);
	return rc;
}

/* Setup. */

static int
make_ext(X509_EXTENSION **out, int nid, int crit, void *value,
    struct mdm_err *e)
{
	if ((*out = X509V3_EXT_i2d(nid, crit, value)) == NULL)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE,
		    "cannot make extension %s", OBJ_nid2sn(nid));
	return 0;
}

static int
make_extensions(struct mdm_scep *s, struct mdm_err *e)
{
	BASIC_CONSTRAINTS *bc = NULL;
	ASN1_BIT_STRING *ku = NULL;
	EXTENDED_KEY_USAGE *eku = NULL;
	AUTHORITY_KEYID *akid = NULL;
	const ASN1_OCTET_STRING *ski;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc = -1;

	if ((bc = BASIC_CONSTRAINTS_new()) == NULL ||
	    (ku = ASN1_BIT_STRING_new()) == NULL ||
	    (eku = sk_ASN1_OBJECT_new_null()) == NULL ||
	    (akid = AUTHORITY_KEYID_new()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	/* digitalSignature (0) and keyEncipherment (2), as micromdm. */
	if (!ASN1_BIT_STRING_set_bit(ku, 0, 1) ||
	    !ASN1_BIT_STRING_set_bit(ku, 2, 1) ||
	    !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth))) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "key usage");
		goto out;
	}
	if ((ski = X509_get0_subject_key_id(s->ca)) != NULL)
		akid->keyid = ASN1_OCTET_STRING_dup(ski);
	else if (X509_pubkey_digest(s->ca, EVP_sha1(), md, &mdlen) &&
	    (akid->keyid = ASN1_OCTET_STRING_new()) != NULL &&
	    !ASN1_OCTET_STRING_set(akid->keyid, md, (int)mdlen)) {
		ASN1_OCTET_STRING_free(akid->keyid);
		akid->keyid = NULL;
	}
	if (akid->keyid == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "CA key identifier");
		goto out;
	}
	if (make_ext(&s->ext_bc, NID_basic_constraints, 1, bc, e) == -1 ||
	    make_ext(&s->ext_ku, NID_key_usage, 1, ku, e) == -1 ||
	    make_ext(&s->ext_eku, NID_ext_key_usage, 0, eku, e) == -1 ||
	    make_ext(&s->ext_akid, NID_authority_key_identifier, 0, akid,
	    e) == -1)
		goto out;
	rc = 0;
out:
	BASIC_CONSTRAINTS_free(bc);
	ASN1_BIT_STRING_free(ku);
	/* OBJ_nid2obj objects are static; ASN1_OBJECT_free leaves them. */
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	AUTHORITY_KEYID_free(akid);
	return rc;
}

/* ca/ca.pem and ca/ca.key of the state directory; both owned. */
static int
load_ca(struct mdm_state *st, X509 **ca, EVP_PKEY **key, struct mdm_err *e)
{
	char path[PATH_MAX];
	struct mdm_buf kb;
	struct mdm_err ke;
	int rc = -1;

	*ca = NULL;
	*key = NULL;
	mdm_buf_init(&kb, MDM_CAP_CERT);
	if (mdm_state_path(st, "ca/ca.pem", path, sizeof(path), e) == -1 ||
	    mdm_x509_load_cert(path, ca, e) == -1)
		goto out;
	if (mdm_state_path(st, "ca/ca.key", path, sizeof(path), e) == -1 ||
	    mdm_file_read_private(path, &kb, e) == -1)
		goto out;
	if (mdm_x509_key_from_mem(kb.data, kb.len, NULL, key, &ke) == -1) {
		/* Some tools "encrypt" with an empty password. */
		if (ke.code != MDM_E_CRYPTO ||
		    mdm_x509_key_from_mem(kb.data, kb.len, "", key, e) == -1) {
			if (ke.code != MDM_E_CRYPTO && e != NULL)
				*e = ke;
			mdm_err_prefix(e, "%s", path);
			goto out;
		}
	}
	if (!mdm_x509_key_matches(*ca, *key)) {
		mdm_err_set(e, MDM_E_CONFIG, "%s does not match the CA "
		    "certificate", path);
		goto out;
	}
	rc = 0;
out:
	mdm_buf_release_secret(&kb);
	if (rc == -1) {
		X509_free(*ca);
		EVP_PKEY_free(*key);
		*ca = NULL;
		*key = NULL;
	}
	return rc;
}

/*
 * ca/ra.pem and ca/ra.key, when the state has them (both NULL when it has
 * neither): an RSA key for its certificate, which our CA issued, which is
 * valid now, no CA, and has digitalSignature and keyEncipherment, the
 * two things an RA does.  Anything else is MDM_E_CONFIG: a server must
 * not start with an RA its clients would refuse.
 */
static int
load_ra(struct mdm_state *st, X509 *ca, X509 **ra, EVP_PKEY **key,
    struct mdm_err *e)
{
	char cpath[PATH_MAX], kpath[PATH_MAX];
	struct mdm_buf kb;
	EVP_PKEY *capub;
	uint32_t ku;
	int rc = -1;

	*ra = NULL;
	*key = NULL;
	mdm_buf_init(&kb, MDM_CAP_CERT);
	if (mdm_state_path(st, MDM_SCEP_RA_CERT, cpath, sizeof(cpath),
	    e) == -1 ||
	    mdm_state_path(st, MDM_SCEP_RA_KEY, kpath, sizeof(kpath), e) == -1)
		goto out;
	if (mdm_file_exists(cpath) != mdm_file_exists(kpath)) {
		mdm_err_set(e, MDM_E_CONFIG, "scep RA: %s without %s",
		    mdm_file_exists(cpath) ? cpath : kpath,
		    mdm_file_exists(cpath) ? kpath : cpath);
		goto out;
	}
	if (!mdm_file_exists(cpath)) {
		rc = 0;
		goto out;
	}
	if (mdm_x509_load_cert(cpath, ra, e) == -1 ||
	    mdm_file_read_private(kpath, &kb, e) == -1 ||
	    mdm_x509_key_from_mem(kb.data, kb.len, NULL, key, e) == -1) {
		mdm_err_prefix(e, "scep RA");
		goto out;
	}
	capub = X509_get0_pubkey(ca);
	ku = X509_get_key_usage(*ra);
	if (!mdm_x509_key_matches(*ra, *key) ||
	    EVP_PKEY_get_base_id(*key) != EVP_PKEY_RSA)
		mdm_err_set(e, MDM_E_CONFIG, "%s is not the RSA key of %s",
		    kpath, cpath);
	else if (X509_check_issued(ca, *ra) != X509_V_OK || capub == NULL ||
	    X509_verify(*ra, capub) != 1)
		mdm_err_set(e, MDM_E_CONFIG, "%s was not issued by this CA",
		    cpath);
	else if (X509_check_ca(*ra) != 0 ||
	    (ku & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT)) !=
	    (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT))
		mdm_err_set(e, MDM_E_CONFIG, "%s is no RA certificate (a CA, "
		    "or without digitalSignature and keyEncipherment)", cpath);
	else if (mdm_x509_expires_within(*ra, time(NULL), 0) ||
	    X509_cmp_current_time(X509_get0_notBefore(*ra)) > 0)
		mdm_err_set(e, MDM_E_CONFIG, "%s is expired or not yet valid: "
		    "run 'mdm-scep ra-init --force'", cpath);
	else
		rc = 0;
out:
	ERR_clear_error();
	mdm_buf_release_secret(&kb);
	if (rc == -1) {
		X509_free(*ra);
		EVP_PKEY_free(*key);
		*ra = NULL;
		*key = NULL;
	}
	return rc;
}

/*
 * Who answers, and the GetCACert body, made once: the CA certificate
 * alone, or with an RA the CA and RA certificates in a degenerate
 * SignedData (RFC 8894 4.2.1.2).
 */
static int
make_cacert(struct mdm_scep *s, struct mdm_err *e)
{
	X509 *both[2];

	if (s->ra == NULL) {
		s->rep_cert = s->ca;
		s->rep_key = s->key;
		s->cacert_type = "application/x-x509-ca-cert";
		return mdm_x509_cert_to_der(s->ca, &s->cacert, e);
	}
	s->rep_cert = s->ra;
	s->rep_key = s->ra_key;
	s->cacert_type = "application/x-x509-ca-ra-cert";
	both[0] = s->ca;
	both[1] = s->ra;
	return mdm_scep_msg_certs_only(both, 2, NULL, &s->cacert, e);
}

static char *
dup_opt(const char *s, int *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*oom = 1;
	return d;
}

int
mdm_scep_new(struct mdm_state *st, const struct mdm_scep_policy *p,
    struct mdm_scep **out, struct mdm_err *e)
{
	static const struct mdm_scep_policy none;
	struct mdm_scep *s = NULL;
	char msg[128];
	size_t i;
	int oom = 0, rc = -1, r;

	*out = NULL;
	if (st == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "scep needs a state");
	if (p == NULL)
		p = &none;
	if (p->validity_days < 0 || p->validity_days > 36500 ||
	    p->min_key_bits < 0 || p->min_key_bits > RSA_MAX_BITS)
		return mdm_err_set(e, MDM_E_USAGE, "scep policy: validity "
		    "of 1 to 36500 days and a key size up to %d bits",
		    RSA_MAX_BITS);
	if (init_globals(e) == -1)
		return -1;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	s->st = st;
	mdm_buf_init(&s->cacert, MDM_CAP_CMS);
	s->validity_days = p->validity_days ? p->validity_days : 365;
	s->min_key_bits = p->min_key_bits ? p->min_key_bits : 2048;
	s->no_challenge = p->no_challenge != 0;
	s->static_challenge = dup_opt(p->static_challenge, &oom);
	s->static_len = p->static_challenge ? strlen(p->static_challenge) : 0;
	s->exec = dup_opt(p->csr_verify_exec, &oom);
	s->ca_name = dup_opt(p->ca_name, &oom);
	if (oom) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	if (p->subject_pattern != NULL) {
		r = regcomp(&s->re, p->subject_pattern,
		    REG_EXTENDED | REG_NOSUB);
		if (r != 0) {
			regerror(r, &s->re, msg, sizeof(msg));
			mdm_err_set(e, MDM_E_CONFIG, "subject pattern "
			    "\"%.64s\": %s", p->subject_pattern, msg);
			goto out;
		}
		s->have_re = 1;
	}
	if (load_ca(st, &s->ca, &s->key, e) == -1 ||
	    load_ra(st, s->ca, &s->ra, &s->ra_key, e) == -1 ||
	    make_cacert(s, e) == -1 ||
	    make_extensions(s, e) == -1 ||
	    mdm_state_scep_open(st, &s->ss, e) == -1)
		goto out;
	for (i = 0; i < C_COUNT; i++)
		s->cipher[i] = EVP_CIPHER_fetch(NULL, ciphers[i].name, NULL);
	/* Legacy (single DES) is optional: without it DES is refused. */
	if (s->cipher[C_DES] == NULL &&
	    (s->des_ctx = mdm_crypto_legacy_ctx()) != NULL)
		s->cipher[C_DES] = EVP_CIPHER_fetch(s->des_ctx,
		    ciphers[C_DES].name, NULL);
	ERR_clear_error();
	for (i = 0; i < MDM_ARRAY_LEN(digests); i++) {
		if ((s->md[i] = EVP_MD_fetch(NULL, digests[i].name,
		    NULL)) == NULL) {
			mdm_err_set_ssl(e, MDM_E_CONFIG, "openssl lacks %s",
			    digests[i].name);
			goto out;
		}
		if (digests[i].nid == NID_sha256)
			s->sha256 = s->md[i];
	}
	ERR_clear_error();
	if (s->cipher[C_DES3] == NULL || s->cipher[C_AES128] == NULL ||
	    s->cipher[C_AES256] == NULL) {
		mdm_err_set(e, MDM_E_CONFIG, "openssl lacks 3DES or AES");
		goto out;
	}
	*out = s;
	s = NULL;
	rc = 0;
out:
	mdm_scep_free(s);
	return rc;
}

void
mdm_scep_free(struct mdm_scep *s)
{
	size_t i;

	if (s == NULL)
		return;
	mdm_state_scep_close(s->ss);
	X509_free(s->ca);
	EVP_PKEY_free(s->key);
	X509_free(s->ra);
	EVP_PKEY_free(s->ra_key);
	mdm_buf_release(&s->cacert);
	X509_EXTENSION_free(s->ext_bc);
	X509_EXTENSION_free(s->ext_ku);
	X509_EXTENSION_free(s->ext_eku);
	X509_EXTENSION_free(s->ext_akid);
	for (i = 0; i < C_COUNT; i++)
		EVP_CIPHER_free(s->cipher[i]);
	for (i = 0; i < MDM_ARRAY_LEN(s->md); i++)
		EVP_MD_free(s->md[i]);
	if (s->static_challenge != NULL) {
		OPENSSL_cleanse(s->static_challenge, s->static_len);
		free(s->static_challenge);
	}
	free(s->exec);
	free(s->ca_name);
	if (s->have_re)
		regfree(&s->re);
	free(s);
}

static int
cipher_index(int nid)
{
	int i;

	for (i = 0; i < C_COUNT; i++)
		if (ciphers[i].nid == nid)
			return i;
	return -1;
}

/*
 * SMIMECapabilities (RFC 8551 2.5.2), when a client sends it: the
 * strongest of AES-256, AES-128 and 3DES it lists.  AES-192 is left out
 * on purpose: the Go pkcs7 package many SCEP clients use cannot decrypt
 * it, whatever they advertise.
 */
static int
best_capability(CMS_SignerInfo *si)
{
	X509_ALGORS *algs = NULL;
	const unsigned char *p;
	const ASN1_OBJECT *obj;
	ASN1_TYPE *t;
	int i, c, best = -1;

	t = mdm_scep_msg_attr(si, OBJ_nid2obj(NID_SMIMECapabilities));
	if (t == NULL || t->type != V_ASN1_SEQUENCE)
		return -1;
	p = ASN1_STRING_get0_data(t->value.sequence);
	algs = d2i_X509_ALGORS(NULL, &p, ASN1_STRING_length(t->value.sequence));
	for (i = 0; i < sk_X509_ALGOR_num(algs); i++) {
		X509_ALGOR_get0(&obj, NULL, NULL, sk_X509_ALGOR_value(algs, i));
		c = cipher_index(OBJ_obj2nid(obj));
		if ((c == C_AES256 || c == C_AES128 || c == C_DES3) && c > best)
			best = c;
	}
	sk_X509_ALGOR_pop_free(algs, X509_ALGOR_free);
	ERR_clear_error();
	return best;
}

/* The SHA family only: the legacy provider would also allow MD4/MD5. */
static const EVP_MD *
digest_for(struct mdm_scep *s, int nid)
{
	size_t i;

	for (i = 0; i < MDM_ARRAY_LEN(digests); i++)
		if (digests[i].nid == nid)
			return s->md[i];
	return NULL;
}

/*
 * The request was parsed without keys (bare_ctx): the first certificate
 * that matches the signerInfo, which is the one CMS_verify picks, gets
 * its key now.  X509_set_pubkey encodes that key again, so the
 * certificate's DER may change (in theory: RSA keys have one DER form);
 * the fingerprint a RenewalReq is judged by is taken before.  No match,
 * or a key that does not parse, leaves CMS_verify to refuse the request.
 */
static int
give_signer_key(struct req *r, struct mdm_err *e)
{
	STACK_OF(X509) *certs;
	EVP_PKEY *key = NULL;
	X509 *x;
	int i, rc = 0;

	if ((certs = CMS_get1_certs(r->cms)) == NULL)
		return 0;
	for (i = 0; i < sk_X509_num(certs); i++) {
		x = sk_X509_value(certs, i);
		if (CMS_SignerInfo_cert_cmp(r->si, x) != 0)
			continue;
		if (r->type == MDM_SCEP_MSG_RENEWAL_REQ &&
		    cert_sha256(x, r->signer_sha256, e) == -1) {
			rc = -1;
			break;
		}
		if ((key = pubkey_of(X509_get_X509_PUBKEY(x))) != NULL &&
		    !X509_set_pubkey(x, key)) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE, "X509_set_pubkey");
			rc = -1;
		}
		break;
	}
	EVP_PKEY_free(key);
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
	return rc;
}

/*
 * Parses and checks the outer SignedData.  INVALID: not a pkiMessage at
 * all (400); REFUSE: a pkiMessage we answer with FAILURE, which needs the
 * transactionID and senderNonce, so those are read before the signature
 * is checked.
 */
static int
parse_request(struct mdm_scep *s, struct req *r, const void *der, size_t len,
    struct mdm_err *e)
{
	const unsigned char *p = der;
	const ASN1_OBJECT *ect;
	ASN1_OCTET_STRING **pos;
	STACK_OF(X509) *signers = NULL;
	X509_ALGOR *dig = NULL;
	const ASN1_OBJECT *dobj = NULL;
	char type[8];
	int rc = -1;

	if (len == 0)
		return invalid(r, "empty pkiMessage");
	if (len > LONG_MAX || (r->cms = (CMS_ContentInfo *)ASN1_item_d2i_ex(
	    NULL, &p, (long)len, ASN1_ITEM_rptr(CMS_ContentInfo), bare_ctx,
	    NULL)) == NULL)
		return invalid(r, "pkiMessage is not a CMS message");
	if (p != (const unsigned char *)der + len)
		return invalid(r, "%zu bytes after the pkiMessage",
		    len - (size_t)(p - (const unsigned char *)der));
	if (OBJ_obj2nid(CMS_get0_type(r->cms)) != NID_pkcs7_signed)
		return invalid(r, "pkiMessage is not a SignedData");
	if (sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(r->cms)) != 1)
		return invalid(r, "pkiMessage must have exactly one signer");
	r->si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(r->cms), 0);
	if (mdm_scep_msg_attr_string(r->si, MDM_SCEP_OID_MESSAGE_TYPE, type,
	    sizeof(type), NULL) != 0 || type[0] == '\0' ||
	    strspn(type, "0123456789") != strlen(type) || strlen(type) > 3)
		return invalid(r, "pkiMessage has no valid messageType");
	r->type = atoi(type);
	if (mdm_scep_msg_attr_string(r->si, MDM_SCEP_OID_TRANSACTION_ID,
	    r->txid, sizeof(r->txid), &r->txid_asn1_type) != 0 ||
	    r->txid[0] == '\0')
		return invalid(r, "pkiMessage has no valid transactionID");
	if (mdm_scep_msg_attr_octets(r->si, MDM_SCEP_OID_SENDER_NONCE,
	    r->nonce, sizeof(r->nonce), &r->nonce_len) != 0)
		return invalid(r, "pkiMessage has no valid senderNonce");
	ect = CMS_get0_eContentType(r->cms);
	pos = CMS_get0_content(r->cms);
	if (OBJ_obj2nid(ect) != NID_pkcs7_data || pos == NULL || *pos == NULL)
		return invalid(r, "pkiMessage does not carry data content");
	r->content = ASN1_STRING_get0_data(*pos);
	r->content_len = (size_t)ASN1_STRING_length(*pos);

	/* From here on the client gets a CertRep. */
	CMS_SignerInfo_get0_algs(r->si, NULL, NULL, &dig, NULL);
	if (dig != NULL)
		X509_ALGOR_get0(&dobj, NULL, NULL, dig);
	if ((r->md = digest_for(s, OBJ_obj2nid(dobj))) == NULL)
		return refuse(r, FAIL_BAD_ALG, "digest algorithm not "
		    "supported (use SHA-1, SHA-256 or SHA-512)");
	r->cap_cipher = best_capability(r->si);
	if (give_signer_key(r, e) == -1)
		return -1;
	/*
	 * No chain check: a PKCSReq is signed by a self-signed certificate
	 * and a RenewalReq signer is checked against our records later.
	 */
	if (CMS_verify(r->cms, NULL, NULL, NULL, NULL,
	    CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1)
		return refuse(r, FAIL_BAD_MESSAGE_CHECK, "the pkiMessage "
		    "signature does not verify");
	if (!mdm_scep_msg_content_type_ok(r->cms, r->si))
		return refuse(r, FAIL_BAD_MESSAGE_CHECK, "the signed "
		    "content type does not match the content");
	if ((signers = CMS_get0_signers(r->cms)) == NULL ||
	    sk_X509_num(signers) != 1 ||
	    (r->signer = sk_X509_value(signers, 0)) == NULL) {
		rc = refuse(r, FAIL_BAD_MESSAGE_CHECK, "no signer certificate");
		goto out;
	}
	if (!X509_up_ref(r->signer)) {
		r->signer = NULL;
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "X509_up_ref");
		goto out;
	}
	/* Every answer but a FAILURE is encrypted to it (RSA key transport). */
	if (EVP_PKEY_get_base_id(X509_get0_pubkey(r->signer)) != EVP_PKEY_RSA) {
		rc = refuse(r, FAIL_BAD_ALG, "the signer certificate must have "
		    "an RSA key, to receive the answer");
		goto out;
	}
	rc = 0;
out:
	sk_X509_free(signers);
	return rc;
}

/* 1 if one of the envelope's key transport recipients is cert. */
static int
addressed_to(CMS_ContentInfo *env, X509 *cert)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(env);
	CMS_RecipientInfo *ri;
	int i;

	for (i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
		ri = sk_CMS_RecipientInfo_value(ris, i);
		if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS &&
		    CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0)
			return 1;
	}
	return 0;
}

/*
 * The pkcsPKIEnvelope: its cipher, then its plaintext into r->plain.
 * The cipher is read with the PKCS#7 parser because OpenSSL's CMS API
 * does not expose it.
 */
static int
decrypt_envelope(struct mdm_scep *s, struct req *r, struct mdm_err *e)
{
	const unsigned char *p;
	CMS_ContentInfo *env = NULL;
	PKCS7 *p7 = NULL;
	BIO *out = NULL;
	const ASN1_OBJECT *obj = NULL;
	int nid, ok, rc = -1;

	if (r->content_len == 0 || r->content_len > LONG_MAX)
		return refuse(r, FAIL_BAD_REQUEST, "no pkcsPKIEnvelope");
	p = r->content;
	if ((p7 = d2i_PKCS7(NULL, &p, (long)r->content_len)) == NULL ||
	    !PKCS7_type_is_enveloped(p7) || p7->d.enveloped == NULL ||
	    p7->d.enveloped->enc_data == NULL ||
	    p7->d.enveloped->enc_data->algorithm == NULL) {
		rc = refuse(r, FAIL_BAD_REQUEST, "pkcsPKIEnvelope is not an "
		    "EnvelopedData");
		goto out;
	}
	X509_ALGOR_get0(&obj, NULL, NULL, p7->d.enveloped->enc_data->algorithm);
	nid = OBJ_obj2nid(obj);
	if ((r->cipher = cipher_index(nid)) < 0) {
		rc = refuse(r, FAIL_BAD_ALG, "content cipher %s not supported "
		    "(use AES or 3DES)", nid != NID_undef ? OBJ_nid2sn(nid) :
		    "(unknown)");
		goto out;
	}
	if (s->cipher[r->cipher] == NULL) {
		rc = refuse(r, FAIL_BAD_ALG, "single DES needs the openssl "
		    "legacy provider, which is not available: use AES");
		goto out;
	}
	/*
	 * CMS_decrypt fetches the cipher from the envelope's library
	 * context: single DES is read in the one that has it.
	 */
	if (r->cipher == C_DES && s->des_ctx != NULL &&
	    (env = CMS_ContentInfo_new_ex(s->des_ctx,
	    NULL)) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "CMS_ContentInfo_new_ex");
		goto out;
	}
	p = r->content;
	if (d2i_CMS_ContentInfo(&env, &p, (long)r->content_len) ==
	    NULL || p != r->content + r->content_len ||
	    OBJ_obj2nid(CMS_get0_type(env)) != NID_pkcs7_enveloped) {
		rc = refuse(r, FAIL_BAD_REQUEST, "pkcsPKIEnvelope is not an "
		    "EnvelopedData");
		goto out;
	}
	if ((out = BIO_new(BIO_s_mem())) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "BIO_new");
		goto out;
	}
	/* A client that chose the CA over the RA is served all the same. */
	if (s->ra != NULL && !addressed_to(env, s->ra) &&
	    addressed_to(env, s->ca))
		ok = CMS_decrypt(env, s->key, s->ca, NULL, out, CMS_BINARY);
	else
		ok = CMS_decrypt(env, s->rep_key, s->rep_cert, NULL, out,
		    CMS_BINARY);
	if (ok != 1) {
		rc = refuse(r, FAIL_BAD_REQUEST, "cannot decrypt the "
		    "pkcsPKIEnvelope with this CA's key%s",
		    s->ra != NULL ? " or its RA's" : "");
		goto out;
	}
	mdm_buf_reset(&r->plain);
	if (mdm_bio_to_buf(out, &r->plain, e) == -1) {
		if (e != NULL && e->code == MDM_E_TOOBIG)
			rc = refuse(r, FAIL_BAD_REQUEST, "pkcsPKIEnvelope "
			    "content larger than %u bytes", CSR_MAX);
		goto out;
	}
	rc = 0;
out:
	if (out != NULL) {
		/* A CSR carries the challenge password: wipe the copy. */
		char *mp;
		long n = BIO_get_mem_data(out, &mp);

		if (n > 0)
			OPENSSL_cleanse(mp, (size_t)n);
	}
	BIO_free(out);
	CMS_ContentInfo_free(env);
	PKCS7_free(p7);
	return rc;
}

/* Building answers. */

/*
 * EnvelopedData of data to the requester's signer certificate.  REFUSE
 * when its key cannot take it (a key too small for the content key).
 */
static int
envelope(struct mdm_scep *s, struct req *r, const struct mdm_buf *data,
    struct mdm_buf *out, struct mdm_err *e)
{
	struct mdm_err ie;
	int c;

	/* The client's own cipher, or better if it told us it reads it. */
	c = r->cipher >= 0 ? r->cipher : C_DES3;
	if (r->cap_cipher > c)
		c = r->cap_cipher;
	if (s->cipher[c] == NULL)
		c = C_DES3;
	mdm_err_clear(&ie);
	if (mdm_scep_msg_encrypt(r->signer, s->cipher[c], data->data,
	    data->len, out, &ie) == 0)
		return 0;
	if (ie.code == MDM_E_CRYPTO)
		return refuse(r, FAIL_BAD_ALG, "cannot encrypt to the signer "
		    "certificate");
	if (e != NULL)
		*e = ie;
	return -1;
}

/*
 * The CertRep: SignedData by the CA over content (the envelope, or
 * nothing for FAILURE) with the SCEP attributes.  issued goes into the
 * certificates too, as micromdm and smallstep do.
 */
static int
certrep(struct mdm_scep *s, struct req *r, int failed,
    const struct mdm_buf *content, X509 *issued,
    struct mdm_scep_response *resp, struct mdm_err *e)
{
	unsigned char nonce[MDM_SCEP_MSG_NONCE_LEN];
	char fail[4];
	X509 *certs[2];
	struct mdm_scep_msg_value v[7] = {
		{ MDM_SCEP_OID_TRANSACTION_ID, r->txid_asn1_type, r->txid,
		    strlen(r->txid) },
		{ MDM_SCEP_OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, "3", 1 },
		{ MDM_SCEP_OID_PKI_STATUS, V_ASN1_PRINTABLESTRING,
		    failed ? "2" : "0", 1 },
		{ MDM_SCEP_OID_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce,
		    sizeof(nonce) },
		{ MDM_SCEP_OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, r->nonce,
		    r->nonce_len },
		{ MDM_SCEP_OID_FAIL_INFO, V_ASN1_PRINTABLESTRING, fail, 0 },
		{ MDM_SCEP_OID_FAIL_INFO_TEXT, V_ASN1_UTF8STRING, r->why,
		    strlen(r->why) },
	};
	size_t nv = failed ? 7 : 5, ncerts = 0;

	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "RAND_bytes");
	snprintf(fail, sizeof(fail), "%d", r->fail);
	v[5].n = strlen(fail);
	certs[ncerts++] = s->rep_cert;
	if (issued != NULL)
		certs[ncerts++] = issued;
	mdm_buf_reset(&resp->body);
	if (mdm_scep_msg_sign(s->rep_cert, s->rep_key,
	    r->md != NULL ? r->md : s->sha256, v, nv,
	    content != NULL ? content->data : NULL,
	    content != NULL ? content->len : 0, certs, ncerts, &resp->body,
	    e) == -1)
		return -1;
	resp->http_status = 200;
	resp->content_type = "application/x-pki-message";
	resp->outcome = failed ? fail_outcome[r->fail] : resp->outcome;
	return 0;
}

static int
answer_failure(struct mdm_scep *s, struct req *r,
    struct mdm_scep_response *resp, struct mdm_err *e)
{
	resp->serial[0] = '\0';
	return certrep(s, r, 1, NULL, NULL, resp, e);
}

/* SUCCESS with cert, or with a CRL (GetCRL). */
static int
answer_success(struct mdm_scep *s, struct req *r, X509 *cert, X509_CRL *crl,
    const char *outcome, struct mdm_scep_response *resp, struct mdm_err *e)
{
	struct mdm_buf inner, env;
	int rc = -1;

	mdm_buf_init(&inner, MDM_CAP_CMS);
	mdm_buf_init(&env, MDM_CAP_CMS);
	resp->serial[0] = '\0';
	if (cert == NULL && crl == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "success without a "
		    "certificate");
		goto out;
	}
	if (cert != NULL && serial_hex(X509_get0_serialNumber(cert),
	    resp->serial, sizeof(resp->serial), e) == -1)
		goto out;
	if (mdm_scep_msg_certs_only(&cert, cert != NULL, crl, &inner,
	    e) == -1 ||
	    (rc = envelope(s, r, &inner, &env, e)) != 0)
		goto out;
	resp->outcome = outcome;
	rc = certrep(s, r, 0, &env, cert, resp, e);
out:
	mdm_buf_release(&inner);
	mdm_buf_release(&env);
	return rc;
}

/* Policy. */

static int
check_key(struct mdm_scep *s, struct req *r, EVP_PKEY *pub)
{
	int bits = EVP_PKEY_get_bits(pub);

	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_RSA:
		if (bits < s->min_key_bits)
			return refuse(r, FAIL_BAD_REQUEST, "RSA key of %d "
			    "bits is too small (at least %d)", bits,
			    s->min_key_bits);
		if (bits > RSA_MAX_BITS)
			return refuse(r, FAIL_BAD_REQUEST, "RSA key of %d "
			    "bits is too large", bits);
		return 0;
	case EVP_PKEY_EC:
		if (bits < EC_MIN_BITS)
			return refuse(r, FAIL_BAD_REQUEST, "EC key of %d "
			    "bits is too small", bits);
		return 0;
	}
	return refuse(r, FAIL_BAD_REQUEST, "key type not supported "
	    "(use RSA or EC)");
}

/* The CSR's challengePassword (or, failing that, the signed attribute
   Apple also sends); "" when there is none. */
static int
get_challenge(struct req *r, char *out, size_t outlen)
{
	X509_ATTRIBUTE *at = NULL;
	ASN1_TYPE *t = NULL;
	unsigned char *utf8 = NULL;
	int i, n;

	out[0] = '\0';
	if ((i = X509_REQ_get_attr_by_NID(r->csr,
	    NID_pkcs9_challengePassword, -1)) >= 0) {
		if (X509_REQ_get_attr_by_NID(r->csr,
		    NID_pkcs9_challengePassword, i) >= 0 ||
		    (at = X509_REQ_get_attr(r->csr, i)) == NULL ||
		    X509_ATTRIBUTE_count(at) != 1)
			return -1;
		t = X509_ATTRIBUTE_get0_type(at, 0);
	} else
		t = mdm_scep_msg_attr(r->si,
		    OBJ_nid2obj(NID_pkcs9_challengePassword));
	if (t == NULL)
		return 0;
	switch (t->type) {
	case V_ASN1_PRINTABLESTRING:
	case V_ASN1_UTF8STRING:
	case V_ASN1_IA5STRING:
	case V_ASN1_T61STRING:
	case V_ASN1_BMPSTRING:
	case V_ASN1_UNIVERSALSTRING:
		break;
	default:
		return -1;
	}
	if ((n = ASN1_STRING_to_UTF8(&utf8, t->value.asn1_string)) < 0)
		return -1;
	if ((size_t)n >= outlen || memchr(utf8, '\0', (size_t)n) != NULL) {
		OPENSSL_clear_free(utf8, (size_t)n);
		return -1;
	}
	memcpy(out, utf8, (size_t)n);
	out[n] = '\0';
	OPENSSL_clear_free(utf8, (size_t)n);
	return 0;
}

/* Constant time in the secret: both sides are hashed first. */
static int
static_matches(struct mdm_scep *s, const char *given)
{
	unsigned char a[32], b[32];
	unsigned int n = 0;
	int eq;

	if (s->static_challenge == NULL)
		return 0;
	if (EVP_Digest(s->static_challenge, s->static_len, a, &n,
	    EVP_sha256(), NULL) != 1 ||
	    EVP_Digest(given, strlen(given), b, &n, EVP_sha256(),
	    NULL) != 1) {
		ERR_clear_error();
		return 0;
	}
	eq = CRYPTO_memcmp(a, b, sizeof(a)) == 0;
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return eq;
}

/*
 * Runs the CSR check program with the CSR in PEM on stdin.  0 allowed;
 * REFUSE with a reason.
 */
static int
run_verifier(struct mdm_scep *s, struct req *r, struct mdm_err *e)
{
	struct mdm_proc_result res;
	struct mdm_err pe;
	char txvar[MDM_SCEP_MSG_TXID_MAX + 32], typevar[48];
	const char *env[3];
	BIO *pem = NULL;
	char *data;
	long len;
	int rc = -1;

	if ((pem = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_X509_REQ(pem, r->csr)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot write the CSR");
		goto out;
	}
	len = BIO_get_mem_data(pem, &data);
	snprintf(txvar, sizeof(txvar), "SCEP_TRANSACTION_ID=%s", r->txid);
	snprintf(typevar, sizeof(typevar), "SCEP_MESSAGE_TYPE=%d", r->type);
	env[0] = txvar;
	env[1] = typevar;
	env[2] = NULL;
	if (mdm_proc_run(s->exec, env, data, (size_t)len, NULL,
	    EXEC_TIMEOUT_MS, &res, &pe) == -1)
		rc = refuse(r, FAIL_BAD_REQUEST, "CSR check could not run: %s",
		    pe.msg);
	else if (res.timed_out)
		rc = refuse(r, FAIL_BAD_REQUEST, "CSR check timed out");
	else if (res.exited && res.code == 0)
		rc = 0;
	else if (res.exited)
		rc = refuse(r, FAIL_BAD_REQUEST, "CSR refused by the CSR "
		    "check (exit %d)", res.code);
	else
		rc = refuse(r, FAIL_BAD_REQUEST, "CSR check killed by "
		    "signal %d", res.code);
out:
	BIO_free(pem);
	return rc;
}

/* A recorded certificate, parsed (without its key: see bare_ctx). */
static int
record_cert(const struct mdm_state_scep_cert *rec, X509 **out,
    struct mdm_err *e)
{
	if ((*out = parse_bare(ASN1_ITEM_rptr(X509), rec->der.data,
	    rec->der.len)) == NULL)
		return mdm_err_set_ssl(e, MDM_E_IO, "certificate %s: recorded "
		    "DER does not parse", rec->serial);
	return 0;
}

/*
 * The signer of a RenewalReq: a certificate we issued and recorded,
 * signed by our CA, valid now and not revoked.  It is found by the
 * fingerprint of the certificate as the request carried it, and judged
 * as recorded: the same bytes.
 */
static int
check_renewal_signer(struct mdm_scep *s, struct req *r, struct mdm_err *e)
{
	struct mdm_state_scep_cert rec;
	EVP_PKEY *capub;
	X509 *c = NULL;
	time_t now = time(NULL);
	int found, rc = -1;

	mdm_state_scep_cert_init(&rec);
	if (r->signer_sha256[0] == '\0' ||
	    (found = mdm_state_scep_cert_by_sha256(s->ss, r->signer_sha256,
	    &rec, e)) == 0) {
		rc = refuse(r, FAIL_BAD_REQUEST, "RenewalReq must be signed "
		    "by a certificate this CA issued");
		goto out;
	}
	if (found < 0 || record_cert(&rec, &c, e) == -1)
		goto out;
	capub = X509_get0_pubkey(s->ca);
	if (X509_check_issued(s->ca, c) != X509_V_OK ||
	    capub == NULL || X509_verify(c, capub) != 1) {
		rc = refuse(r, FAIL_BAD_REQUEST, "RenewalReq signer does not "
		    "chain to this CA");
		goto out;
	}
	if (rec.revoked_at != 0) {
		rc = refuse(r, FAIL_BAD_REQUEST, "RenewalReq signer "
		    "certificate %s is revoked", rec.serial);
		goto out;
	}
	if (X509_cmp_time(X509_get0_notAfter(c), &now) <= 0 ||
	    X509_cmp_time(X509_get0_notBefore(c), &now) >= 0) {
		rc = refuse(r, FAIL_BAD_TIME, "RenewalReq signer certificate "
		    "%s is expired or not yet valid", rec.serial);
		goto out;
	}
	rc = 0;
out:
	X509_free(c);
	mdm_state_scep_cert_release(&rec);
	return rc;
}

/* Issuing. */

/* One certificate just made, with what its row needs. */
struct issued {
	X509 *cert;
	struct mdm_buf der;		/* cap MDM_CAP_CERT */
	char serial[100];
	int64_t not_before, not_after;
};

static void
issued_init(struct issued *is)
{
	memset(is, 0, sizeof(*is));
	mdm_buf_init(&is->der, MDM_CAP_CERT);
}

static void
issued_release(struct issued *is)
{
	X509_free(is->cert);
	mdm_buf_release(&is->der);
	issued_init(is);
}

/*
 * The certificate gets the CSR's SubjectPublicKeyInfo byte for byte.
 * X509_set_pubkey would encode the key and decode it again through
 * OpenSSL 3's provider encoders, which costs more than the rest of the
 * certificate.
 */
static int
copy_spki(X509 *c, X509_REQ *csr, struct mdm_err *e)
{
	X509_PUBKEY *from = X509_REQ_get_X509_PUBKEY(csr);
	const ASN1_OBJECT *aobj = NULL;
	const unsigned char *pk = NULL;
	const void *pval = NULL;
	X509_ALGOR *alg = NULL;
	ASN1_OBJECT *obj = NULL;
	void *param = NULL;
	unsigned char *enc = NULL;
	int ptype = V_ASN1_UNDEF, pklen = 0;

	if (from == NULL || !X509_PUBKEY_get0_param(NULL, &pk, &pklen, &alg,
	    from) || alg == NULL || pk == NULL || pklen <= 0)
		return mdm_err_set_ssl(e, MDM_E_DATA, "CSR public key");
	X509_ALGOR_get0(&aobj, &ptype, &pval, alg);
	if ((obj = OBJ_dup(aobj)) == NULL)
		goto oom;
	if (ptype == V_ASN1_OBJECT)
		param = OBJ_dup(pval);
	else if (ptype == V_ASN1_SEQUENCE)
		param = ASN1_STRING_dup(pval);
	else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF) {
		ASN1_OBJECT_free(obj);
		return mdm_err_set(e, MDM_E_DATA, "CSR public key parameters "
		    "of an unexpected type");
	}
	if ((ptype == V_ASN1_OBJECT || ptype == V_ASN1_SEQUENCE) &&
	    param == NULL)
		goto oom;
	if ((enc = OPENSSL_memdup(pk, (size_t)pklen)) == NULL)
		goto oom;
	if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(c), obj, ptype,
	    param, enc, pklen))
		goto oom;
	return 0;
oom:
	ASN1_OBJECT_free(obj);
	if (ptype == V_ASN1_OBJECT)
		ASN1_OBJECT_free(param);
	else
		ASN1_STRING_free(param);
	OPENSSL_free(enc);
	return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot copy public key");
}

/* The SAN of the CSR's extensionRequest, checked; NULL if none. */
static int
csr_san(struct req *r, X509_EXTENSION **out, struct mdm_err *e)
{
	STACK_OF(X509_EXTENSION) *exts;
	X509_EXTENSION *x;
	GENERAL_NAMES *gens = NULL;
	int i, rc = 0;

	(void)e;
	*out = NULL;
	exts = X509_REQ_get_extensions(r->csr);
	if ((i = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1)) < 0)
		goto out;
	if (X509v3_get_ext_by_NID(exts, NID_subject_alt_name, i) >= 0) {
		rc = refuse(r, FAIL_BAD_REQUEST, "CSR asks for two "
		    "subjectAltName extensions");
		goto out;
	}
	x = X509v3_get_ext(exts, i);
	if ((gens = X509V3_EXT_d2i(x)) == NULL ||
	    sk_GENERAL_NAME_num(gens) <= 0) {
		rc = refuse(r, FAIL_BAD_REQUEST, "CSR subjectAltName does not "
		    "parse");
		goto out;
	}
	if ((*out = X509_EXTENSION_dup(x)) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "X509_EXTENSION_dup");
		rc = -1;
	}
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ERR_clear_error();
	return rc;
}

/*
 * The device certificate for the CSR: its subject, public key and SANs,
 * our profile (clientAuth; digitalSignature and keyEncipherment), a
 * random 128-bit serial, SHA-256.  The object signed is handed out as it
 * is (never checked for purposes here, so OpenSSL's cached extension
 * flags do not matter), with its DER.
 */
static int
issue(struct mdm_scep *s, struct req *r, X509_EXTENSION *san,
    struct issued *out, struct mdm_err *e)
{
	X509 *c = NULL;
	ASN1_OCTET_STRING *skid = NULL;
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int mdlen = 0;
	time_t now = time(NULL);
	int n, rc = -1;

	issued_release(out);
	if ((c = X509_new()) == NULL || !X509_set_version(c, X509_VERSION_3)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "X509_new");
		goto out;
	}
	if (mdm_x509_random_serial(c, out->serial, sizeof(out->serial),
	    e) == -1 ||
	    copy_spki(c, r->csr, e) == -1)
		goto out;
	if (!X509_set_subject_name(c, X509_REQ_get_subject_name(r->csr)) ||
	    !X509_set_issuer_name(c, X509_get_subject_name(s->ca)) ||
	    X509_time_adj_ex(X509_getm_notBefore(c), 0, -NOT_BEFORE_SKEW,
	    &now) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(c), s->validity_days, 0,
	    &now) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot fill certificate");
		goto out;
	}
	out->not_before = (int64_t)now - NOT_BEFORE_SKEW;
	out->not_after = (int64_t)now + (int64_t)s->validity_days * 86400;
	if (!X509_pubkey_digest(c, EVP_sha1(), md, &mdlen) ||
	    (skid = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(skid, md, (int)mdlen) ||
	    !X509_add1_ext_i2d(c, NID_subject_key_identifier, skid, 0,
	    X509V3_ADD_DEFAULT) ||
	    !X509_add_ext(c, s->ext_bc, -1) ||
	    !X509_add_ext(c, s->ext_ku, -1) ||
	    !X509_add_ext(c, s->ext_eku, -1) ||
	    !X509_add_ext(c, s->ext_akid, -1) ||
	    (san != NULL && !X509_add_ext(c, san, -1))) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot add extensions");
		goto out;
	}
	if (X509_sign(c, s->key, s->sha256) <= 0) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot sign certificate");
		goto out;
	}
	if ((n = i2d_X509(c, &der)) <= 0) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot encode certificate");
		goto out;
	}
	if (mdm_buf_append(&out->der, der, (size_t)n, e) == -1)
		goto out;
	out->cert = c;
	c = NULL;
	rc = 0;
out:
	OPENSSL_free(der);
	ASN1_OCTET_STRING_free(skid);
	X509_free(c);
	if (rc == -1)
		issued_release(out);
	return rc;
}

/*
 * A certificate already issued for this transaction that a retry should
 * get again: same key as the CSR, not revoked, not expired, and (for a
 * RenewalReq) not the very certificate the request is signed with.
 * FOUND and *out set, 0 none, REFUSE when the transaction belongs to
 * another key, -1 error.
 */
static int
find_retry(struct mdm_scep *s, struct req *r, X509 **out, struct mdm_err *e)
{
	struct mdm_state_scep_cert rec;
	EVP_PKEY *key = NULL;
	X509 *c = NULL;
	time_t now = time(NULL);
	int found, rc = -1;

	*out = NULL;
	mdm_state_scep_cert_init(&rec);
	found = mdm_state_scep_cert_by_transaction(s->ss, r->txid, &rec, e);
	if (found <= 0) {
		rc = found;
		goto out;
	}
	if (record_cert(&rec, &c, e) == -1)
		goto out;
	if ((key = pubkey_of(X509_get_X509_PUBKEY(c))) == NULL ||
	    EVP_PKEY_eq(key, r->csr_key) != 1) {
		rc = refuse(r, FAIL_BAD_REQUEST, "transactionID %s already "
		    "belongs to another key", r->txid);
		goto out;
	}
	rc = 0;
	if (rec.revoked_at != 0 || rec.not_after <= (int64_t)now)
		goto out;
	if (r->type == MDM_SCEP_MSG_RENEWAL_REQ &&
	    strcmp(rec.sha256, r->signer_sha256) == 0)
		goto out;
	*out = c;
	c = NULL;
	rc = FOUND;
out:
	ERR_clear_error();
	EVP_PKEY_free(key);
	X509_free(c);
	mdm_state_scep_cert_release(&rec);
	return rc;
}

/*
 * Records is (retrying with a fresh serial on the astronomically
 * unlikely clash) and consumes the one-time challenge, in one
 * transaction.  0 recorded; REFUSE challenge gone meanwhile; FOUND
 * another request of this transaction won the race: *retry holds its
 * certificate; -1 server error.
 */
static int
record(struct mdm_scep *s, struct req *r, X509_EXTENSION *san,
    const char *subject, const char *challenge_hash, struct issued *is,
    X509 **retry, struct mdm_err *e)
{
	struct mdm_cert_row row;
	struct mdm_err ie;
	int tries, got;

	for (tries = 0; tries < SERIAL_TRIES; tries++) {
		if (tries > 0 && issue(s, r, san, is, e) == -1)
			return -1;
		if (mdm_state_begin(s->st, e) == -1)
			return -1;
		if ((got = find_retry(s, r, retry, e)) != 0) {
			mdm_state_rollback(s->st);
			return got;
		}
		if (challenge_hash != NULL &&
		    (got = mdm_state_scep_challenge_consume(s->ss,
		    challenge_hash, (int64_t)time(NULL), e)) != 1) {
			mdm_state_rollback(s->st);
			if (got == 0)
				return refuse(r, FAIL_BAD_REQUEST, "challenge "
				    "password is wrong, expired or already "
				    "used");
			return -1;
		}
		memset(&row, 0, sizeof(row));
		row.serial = is->serial;
		row.subject = subject;
		row.kind = "device";
		row.not_before = is->not_before;
		row.not_after = is->not_after;
		mdm_err_clear(&ie);
		if (mdm_state_scep_cert_insert(s->ss, &row, r->txid,
		    r->type == MDM_SCEP_MSG_RENEWAL_REQ ? r->signer_sha256 :
		    NULL, is->der.data, is->der.len, &ie) == -1) {
			mdm_state_rollback(s->st);
			if (ie.code == MDM_E_EXISTS)
				continue;
			if (e != NULL)
				*e = ie;
			return -1;
		}
		if (mdm_state_commit(s->st, e) == -1) {
			mdm_state_rollback(s->st);
			return -1;
		}
		return 0;
	}
	return mdm_err_set(e, MDM_E_SOFTWARE, "no free certificate serial "
	    "after %d tries", SERIAL_TRIES);
}

/* Message types. */

/*
 * A PKCSReq whose challenge does not pass may be the retry of one that
 * did (a one-time challenge is spent by then): it gets its certificate
 * again.  Checked only here and inside record()'s transaction, so the
 * common path makes one lookup.
 */
static int
challenge_failed(struct mdm_scep *s, struct req *r, const char *why,
    struct mdm_scep_response *resp, struct mdm_err *e)
{
	X509 *retry = NULL;
	int rc;

	if ((rc = find_retry(s, r, &retry, e)) == FOUND)
		rc = answer_success(s, r, retry, NULL, "resent", resp, e);
	else if (rc == 0)
		rc = refuse(r, FAIL_BAD_REQUEST, "%s", why);
	X509_free(retry);
	return rc;
}

static int
do_enrol(struct mdm_scep *s, struct req *r, struct mdm_scep_response *resp,
    struct mdm_err *e)
{
	X509_EXTENSION *san = NULL;
	X509 *retry = NULL;
	struct issued is;
	char subject[SUBJECT_MAX], challenge[CHALLENGE_MAX + 1];
	char hash[65], *chash = NULL;
	int too_long, rc;

	challenge[0] = '\0';
	issued_init(&is);
	if ((rc = decrypt_envelope(s, r, e)) != 0)
		goto out;
	if ((r->csr = parse_bare(ASN1_ITEM_rptr(X509_REQ), r->plain.data,
	    r->plain.len)) == NULL) {
		rc = refuse(r, FAIL_BAD_REQUEST, "pkcsPKIEnvelope does not "
		    "hold a PKCS#10 request");
		goto out;
	}
	if ((r->csr_key = pubkey_of(X509_REQ_get_X509_PUBKEY(r->csr))) ==
	    NULL || X509_REQ_verify(r->csr, r->csr_key) != 1) {
		rc = refuse(r, FAIL_BAD_MESSAGE_CHECK, "the CSR signature "
		    "does not verify");
		goto out;
	}
	if ((rc = check_key(s, r, r->csr_key)) != 0)
		goto out;
	if (mdm_x509_name_str(X509_REQ_get_subject_name(r->csr), subject,
	    sizeof(subject), &too_long, e) == -1) {
		rc = refuse(r, FAIL_BAD_REQUEST, "CSR subject does not parse");
		goto out;
	}
	if (too_long) {
		rc = refuse(r, FAIL_BAD_REQUEST, "CSR subject longer than %d "
		    "bytes", SUBJECT_MAX - 1);
		goto out;
	}
	if ((rc = csr_san(r, &san, e)) != 0)
		goto out;
	if (subject[0] == '\0' && san == NULL) {
		rc = refuse(r, FAIL_BAD_REQUEST, "CSR has neither a subject "
		    "nor a subjectAltName");
		goto out;
	}
	/* RFC 5280 4.2.1.6: with an empty subject the SAN is critical. */
	if (subject[0] == '\0' && !X509_EXTENSION_set_critical(san, 1)) {
		rc = mdm_err_set_ssl(e, MDM_E_SOFTWARE, "SAN");
		goto out;
	}
	if (s->have_re && regexec(&s->re, subject, 0, NULL, 0) != 0) {
		rc = refuse(r, FAIL_BAD_REQUEST, "CSR subject is not allowed "
		    "by this CA's policy");
		goto out;
	}
	if (r->type == MDM_SCEP_MSG_RENEWAL_REQ) {
		if ((rc = check_renewal_signer(s, r, e)) != 0)
			goto out;
	} else if (!s->no_challenge) {
		if (get_challenge(r, challenge, sizeof(challenge)) == -1) {
			rc = refuse(r, FAIL_BAD_REQUEST, "challenge password "
			    "does not parse");
			goto out;
		}
		if (challenge[0] == '\0') {
			rc = challenge_failed(s, r, "no challenge password",
			    resp, e);
			goto out;
		}
		if (!static_matches(s, challenge)) {
			if (sha256_hex(challenge, strlen(challenge), hash,
			    e) == -1 ||
			    (rc = mdm_state_scep_challenge_valid(s->ss, hash,
			    (int64_t)time(NULL), e)) == -1)
				goto out;
			if (rc == 0) {
				rc = challenge_failed(s, r, "challenge "
				    "password is wrong, expired or already "
				    "used", resp, e);
				goto out;
			}
			rc = 0;
			chash = hash;
		}
	}
	if (s->exec != NULL && (rc = run_verifier(s, r, e)) != 0)
		goto out;
	if (issue(s, r, san, &is, e) == -1 ||
	    (rc = record(s, r, san, subject, chash, &is, &retry, e)) == -1) {
		rc = -1;
		goto out;
	}
	if (rc == FOUND)
		rc = answer_success(s, r, retry, NULL, "resent", resp, e);
	else if (rc == 0)
		rc = answer_success(s, r, is.cert, NULL,
		    r->type == MDM_SCEP_MSG_RENEWAL_REQ ? "renewed" : "issued",
		    resp, e);
out:
	OPENSSL_cleanse(challenge, sizeof(challenge));
	X509_EXTENSION_free(san);
	issued_release(&is);
	X509_free(retry);
	return rc;
}

static int
do_poll(struct mdm_scep *s, struct req *r, struct mdm_scep_response *resp,
    struct mdm_err *e)
{
	struct mdm_state_scep_cert rec;
	X509 *c = NULL;
	int found, rc = -1;

	mdm_state_scep_cert_init(&rec);
	if ((found = mdm_state_scep_cert_by_transaction(s->ss, r->txid, &rec,
	    e)) < 0)
		goto out;
	if (found == 0) {
		rc = refuse(r, FAIL_BAD_CERT_ID, "no certificate for "
		    "transactionID %s", r->txid);
		goto out;
	}
	if (record_cert(&rec, &c, e) == -1)
		goto out;
	rc = answer_success(s, r, c, NULL, "poll", resp, e);
out:
	X509_free(c);
	mdm_state_scep_cert_release(&rec);
	return rc;
}

/* GetCert: the pkcsPKIEnvelope holds IssuerAndSerialNumber. */
static int
do_get_cert(struct mdm_scep *s, struct req *r, struct mdm_scep_response *resp,
    struct mdm_err *e)
{
	struct mdm_state_scep_cert rec;
	PKCS7_ISSUER_AND_SERIAL *ias = NULL;
	const unsigned char *p;
	char serial[100];
	X509 *c = NULL;
	int found, rc;

	mdm_state_scep_cert_init(&rec);
	if ((rc = decrypt_envelope(s, r, e)) != 0)
		goto out;
	p = r->plain.data;
	if (r->plain.len == 0 || (ias = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &p,
	    (long)r->plain.len)) == NULL ||
	    serial_hex(ias->serial, serial, sizeof(serial), NULL) == -1) {
		rc = refuse(r, FAIL_BAD_REQUEST, "GetCert does not hold an "
		    "IssuerAndSerialNumber");
		goto out;
	}
	rc = -1;
	if (X509_NAME_cmp(ias->issuer, X509_get_subject_name(s->ca)) != 0 ||
	    (found = mdm_state_scep_cert_by_serial(s->ss, serial, &rec,
	    e)) == 0) {
		rc = refuse(r, FAIL_BAD_CERT_ID, "no certificate with serial "
		    "%s from this CA", serial);
		goto out;
	}
	if (found < 0)
		goto out;
	if (record_cert(&rec, &c, e) == -1)
		goto out;
	rc = answer_success(s, r, c, NULL, "cert", resp, e);
out:
	ERR_clear_error();
	PKCS7_ISSUER_AND_SERIAL_free(ias);
	X509_free(c);
	mdm_state_scep_cert_release(&rec);
	return rc;
}

static int build_crl(struct mdm_state_scep *ss, X509 *ca, EVP_PKEY *key,
    int days, X509_CRL **out, struct mdm_err *e);

/*
 * GetCRL: one CRL covers every certificate of this CA, so the envelope
 * (IssuerAndSerialNumber) is not even decrypted: that saves a private key
 * operation per request.
 */
static int
do_get_crl(struct mdm_scep *s, struct req *r, struct mdm_scep_response *resp,
    struct mdm_err *e)
{
	X509_CRL *crl = NULL;
	int rc = -1;

	if (r->content_len == 0) {
		rc = refuse(r, FAIL_BAD_REQUEST, "no pkcsPKIEnvelope");
		goto out;
	}
	if (build_crl(s->ss, s->ca, s->key, GETCRL_DAYS, &crl, e) == -1)
		goto out;
	rc = answer_success(s, r, NULL, crl, "crl", resp, e);
out:
	X509_CRL_free(crl);
	return rc;
}

static int
pki_operation(struct mdm_scep *s, const void *der, size_t len,
    struct mdm_scep_response *resp, struct mdm_err *e)
{
	struct req r;
	int rc;

	req_init(&r);
	ERR_clear_error();
	rc = parse_request(s, &r, der, len, e);
	if (rc == 0) {
		switch (r.type) {
		case MDM_SCEP_MSG_PKCS_REQ:
		case MDM_SCEP_MSG_RENEWAL_REQ:
			rc = do_enrol(s, &r, resp, e);
			break;
		case MDM_SCEP_MSG_CERT_POLL:
			rc = do_poll(s, &r, resp, e);
			break;
		case MDM_SCEP_MSG_GET_CERT:
			rc = do_get_cert(s, &r, resp, e);
			break;
		case MDM_SCEP_MSG_GET_CRL:
			rc = do_get_crl(s, &r, resp, e);
			break;
		default:
			rc = refuse(&r, FAIL_BAD_REQUEST, "messageType %d is "
			    "not a request this CA answers", r.type);
		}
	}
	if (rc == INVALID) {
		resp_text(resp, 400, "invalid", r.why);
		rc = 0;
	} else if (rc == REFUSE)
		rc = answer_failure(s, &r, resp, e);
	if (rc == -1)
		resp_server_error(resp, e);
	ERR_clear_error();
	req_release(&r);
	return rc;
}

/* GET PKIOperation: standard base64, maybe with '+' turned into ' ' by a
   client that did not escape it, or in the URL-safe alphabet. */
static int
get_message(const char *msg, struct mdm_buf *out, struct mdm_err *e)
{
	struct mdm_buf b64;
	size_t i, n = strlen(msg);
	char c;
	int rc = -1;

	mdm_buf_init(&b64, MDM_SCEP_MAX_MESSAGE / 3 * 4 + 8);
	for (i = 0; i < n; i++) {
		c = msg[i];
		if (c == ' ')
			c = '+';
		else if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		if (mdm_buf_append(&b64, &c, 1, e) == -1)
			goto out;
	}
	rc = mdm_base64_decode((const char *)b64.data, b64.len, out, e);
out:
	mdm_buf_release(&b64);
	return rc;
}

int
mdm_scep_handle(struct mdm_scep *s, const char *method, const char *operation,
    const char *message, const void *body, size_t body_len,
    struct mdm_scep_response *resp, struct mdm_err *e)
{
	struct mdm_buf msg;
	struct mdm_err ie;
	int get, post, head, rc = 0;

	mdm_err_clear(&ie);
	mdm_buf_init(&msg, MDM_SCEP_MAX_MESSAGE);
	mdm_buf_reset(&resp->body);
	resp->serial[0] = '\0';
	get = method != NULL && strcmp(method, "GET") == 0;
	head = method != NULL && strcmp(method, "HEAD") == 0;
	post = method != NULL && strcmp(method, "POST") == 0;
	if (!get && !post && !head) {
		resp_text(resp, 405, "method", "method not allowed");
		goto out;
	}
	if (operation == NULL || *operation == '\0') {
		resp_text(resp, 400, "invalid", "missing operation");
		goto out;
	}
	if (strcasecmp(operation, "GetCACaps") == 0 ||
	    strcasecmp(operation, "GetCACert") == 0) {
		if (s->ca_name != NULL && message != NULL && *message != '\0' &&
		    strcmp(message, s->ca_name) != 0) {
			resp_text(resp, 404, "not-found", "unknown CA name");
			goto out;
		}
		if (strcasecmp(operation, "GetCACaps") == 0)
			rc = resp_bytes(resp, "text/plain", "caps", caps_text,
			    sizeof(caps_text) - 1, e);
		else
			rc = resp_bytes(resp, s->cacert_type, "cacert",
			    s->cacert.data, s->cacert.len, e);
		if (rc == -1)
			resp_server_error(resp, e);
		goto out;
	}
	if (strcasecmp(operation, "GetNextCACert") == 0) {
		resp_text(resp, 404, "not-found", "no next CA certificate");
		goto out;
	}
	if (strcasecmp(operation, "PKIOperation") != 0) {
		resp_text(resp, 400, "invalid", "unknown operation");
		goto out;
	}
	if (head) {
		resp_text(resp, 405, "method", "PKIOperation needs GET or "
		    "POST");
		goto out;
	}
	if (post) {
		if (body_len > MDM_SCEP_MAX_MESSAGE) {
			resp_text(resp, 413, "too-large", "pkiMessage too "
			    "large");
			goto out;
		}
		if (body == NULL)
			body_len = 0;
		rc = pki_operation(s, body, body_len, resp, e);
		goto out;
	}
	if (message == NULL || *message == '\0') {
		resp_text(resp, 400, "invalid", "missing message");
		goto out;
	}
	if (strlen(message) > MDM_SCEP_MAX_MESSAGE / 3 * 4 + 8) {
		resp_text(resp, 413, "too-large", "pkiMessage too large");
		goto out;
	}
	if (get_message(message, &msg, &ie) == -1) {
		if (ie.code == MDM_E_TOOBIG)
			resp_text(resp, 413, "too-large", "pkiMessage too "
			    "large");
		else
			resp_text(resp, 400, "invalid", "message is not "
			    "base64");
		goto out;
	}
	rc = pki_operation(s, msg.data, msg.len, resp, e);
out:
	mdm_buf_release(&msg);
	return rc;
}

/* Administration. */

int
mdm_scep_challenge_new(struct mdm_state *st, long long ttl_seconds, char *out,
    size_t outlen, struct mdm_err *e)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	struct mdm_state_scep *ss = NULL;
	unsigned char raw[18];
	char ch[25], hash[65];
	time_t now = time(NULL);
	size_t i;
	int rc = -1;

	if (outlen > 0)
		out[0] = '\0';
	if (ttl_seconds <= 0 || ttl_seconds > 100LL * 365 * 86400)
		return mdm_err_set(e, MDM_E_USAGE, "challenge lifetime must "
		    "be between 1 second and 100 years");
	if (outlen < sizeof(ch))
		return mdm_err_set(e, MDM_E_USAGE, "challenge buffer too "
		    "small");
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "RAND_bytes");
	/* 18 bytes are 24 base64url characters, no padding. */
	for (i = 0; i < sizeof(raw) / 3; i++) {
		unsigned long v = (unsigned long)raw[3 * i] << 16 |
		    (unsigned long)raw[3 * i + 1] << 8 | raw[3 * i + 2];

		ch[4 * i] = alphabet[(v >> 18) & 63];
		ch[4 * i + 1] = alphabet[(v >> 12) & 63];
		ch[4 * i + 2] = alphabet[(v >> 6) & 63];
		ch[4 * i + 3] = alphabet[v & 63];
	}
	ch[24] = '\0';
	if (sha256_hex(ch, 24, hash, e) == -1 ||
	    mdm_state_scep_open(st, &ss, e) == -1 ||
	    mdm_state_scep_challenge_add(ss, hash,
	    (int64_t)now + ttl_seconds, (int64_t)now, e) == -1)
		goto out;
	memcpy(out, ch, sizeof(ch));
	rc = 0;
out:
	mdm_state_scep_close(ss);
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(ch, sizeof(ch));
	return rc;
}

/* Seconds until c's notAfter (0 if it cannot be read or is past). */
static long long
ca_seconds_left(X509 *c, time_t now)
{
	ASN1_TIME *t = NULL;
	int pday = 0, psec = 0;
	long long left = 0;

	if ((t = ASN1_TIME_set(NULL, now)) != NULL &&
	    ASN1_TIME_diff(&pday, &psec, t, X509_get0_notAfter(c)))
		left = (long long)pday * 86400 + psec;
	ASN1_TIME_free(t);
	return left > 0 ? left : 0;
}

/*
 * The form serials are recorded in (BN_bn2hex, as `openssl x509 -serial`
 * prints them): uppercase, whole bytes, so no leading zero but the one
 * that pads an odd number of digits.
 */
static int
normalise_serial(const char *in, char *out, size_t outlen, struct mdm_err *e)
{
	size_t i, n, pad;

	if (in == NULL)
		in = "";
	if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X'))
		in += 2;
	while (in[0] == '0' && in[1] != '\0')
		in++;
	n = strlen(in);
	pad = n % 2 == 1 && !(n == 1 && in[0] == '0');
	if (n == 0 || n > 64 || n + pad >= outlen)
		return mdm_err_set(e, MDM_E_USAGE, "serial \"%.70s\" is not a "
		    "hex number of 1 to 64 digits", in);
	if (pad)
		out[0] = '0';
	for (i = 0; i < n; i++) {
		char c = in[i];

		if (c >= 'a' && c <= 'f')
			c = (char)(c - 'a' + 'A');
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return mdm_err_set(e, MDM_E_USAGE, "serial \"%.70s\" "
			    "is not hex", in);
		out[pad + i] = c;
	}
	out[pad + n] = '\0';
	return 0;
}

int
mdm_scep_revoke(struct mdm_state *st, const char *serial, struct mdm_err *e)
{
	struct mdm_state_scep *ss = NULL;
	char norm[65];
	int rc = -1;

	if (normalise_serial(serial, norm, sizeof(norm), e) == -1 ||
	    mdm_state_scep_open(st, &ss, e) == -1)
		goto out;
	rc = mdm_state_scep_revoke(ss, norm, (int64_t)time(NULL), e);
out:
	mdm_state_scep_close(ss);
	return rc;
}

static int
add_revoked(const char *serial, int64_t revoked_at, void *arg,
    struct mdm_err *e)
{
	X509_CRL *crl = arg;
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *ai = NULL;
	ASN1_TIME *t = NULL;
	BIGNUM *bn = NULL;
	int rc = -1;

	if (!BN_hex2bn(&bn, serial) ||
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    (t = ASN1_TIME_set(NULL, (time_t)revoked_at)) == NULL ||
	    (rev = X509_REVOKED_new()) == NULL ||
	    !X509_REVOKED_set_serialNumber(rev, ai) ||
	    !X509_REVOKED_set_revocationDate(rev, t) ||
	    !X509_CRL_add0_revoked(crl, rev)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "CRL entry %s", serial);
		X509_REVOKED_free(rev);
		goto out;
	}
	rc = 0;
out:
	BN_free(bn);
	ASN1_INTEGER_free(ai);
	ASN1_TIME_free(t);
	return rc;
}

static int
build_crl(struct mdm_state_scep *ss, X509 *ca, EVP_PKEY *key, int days,
    X509_CRL **out, struct mdm_err *e)
{
	X509_CRL *crl = NULL;
	ASN1_TIME *last = NULL, *next = NULL;
	ASN1_INTEGER *num = NULL;
	AUTHORITY_KEYID *akid = NULL;
	const ASN1_OCTET_STRING *ski;
	time_t now = time(NULL);
	int rc = -1;

	*out = NULL;
	if ((crl = X509_CRL_new()) == NULL ||
	    !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) ||
	    (last = ASN1_TIME_set(NULL, now)) == NULL ||
	    (next = ASN1_TIME_adj(NULL, now, days, 0)) == NULL ||
	    !X509_CRL_set1_lastUpdate(crl, last) ||
	    !X509_CRL_set1_nextUpdate(crl, next)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot set up the CRL");
		goto out;
	}
	if (mdm_state_scep_revoked_foreach(ss, add_revoked, crl, e) == -1)
		goto out;
	if ((num = ASN1_INTEGER_new()) == NULL ||
	    !ASN1_INTEGER_set_int64(num, (int64_t)now) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "CRL number");
		goto out;
	}
	if ((ski = X509_get0_subject_key_id(ca)) != NULL) {
		if ((akid = AUTHORITY_KEYID_new()) == NULL ||
		    (akid->keyid = ASN1_OCTET_STRING_dup(ski)) == NULL ||
		    !X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier,
		    akid, 0, 0)) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE, "CRL key id");
			goto out;
		}
	}
	if (!X509_CRL_sort(crl) || X509_CRL_sign(crl, key, EVP_sha256()) <= 0) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot sign the CRL");
		goto out;
	}
	*out = crl;
	crl = NULL;
	rc = 0;
out:
	AUTHORITY_KEYID_free(akid);
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	X509_CRL_free(crl);
	return rc;
}

int
mdm_scep_crl(struct mdm_state *st, int days, struct mdm_buf *der,
    struct mdm_err *e)
{
	struct mdm_state_scep *ss = NULL;
	X509 *ca = NULL;
	EVP_PKEY *key = NULL;
	X509_CRL *crl = NULL;
	unsigned char *p = NULL;
	int n, rc = -1;

	if (days < 1 || days > 3650)
		return mdm_err_set(e, MDM_E_USAGE, "CRL validity must be 1 to "
		    "3650 days");
	ERR_clear_error();
	if (load_ca(st, &ca, &key, e) == -1 ||
	    mdm_state_scep_open(st, &ss, e) == -1 ||
	    build_crl(ss, ca, key, days, &crl, e) == -1)
		goto out;
	if ((n = i2d_X509_CRL(crl, &p)) <= 0) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot encode the CRL");
		goto out;
	}
	rc = mdm_buf_append(der, p, (size_t)n, e);
out:
	OPENSSL_free(p);
	X509_CRL_free(crl);
	mdm_state_scep_close(ss);
	X509_free(ca);
	EVP_PKEY_free(key);
	return rc;
}

int
mdm_scep_ra_init(struct mdm_state *st, int days, int force, X509 **out,
    struct mdm_err *e)
{
	struct mdm_x509_opts o;
	struct mdm_buf pem;
	X509 *ca = NULL, *ra = NULL;
	EVP_PKEY *key = NULL, *ra_key = NULL;
	char path[PATH_MAX], cn[65], name[100];
	time_t now = time(NULL);
	long long left;
	int bits, rc = -1;

	if (out != NULL)
		*out = NULL;
	mdm_buf_init(&pem, MDM_CAP_CERT);
	if (days < 1 || days > 36500)
		return mdm_err_set(e, MDM_E_USAGE, "RA validity must be 1 to "
		    "36500 days");
	if (mdm_state_path(st, MDM_SCEP_RA_CERT, path, sizeof(path),
	    e) == -1)
		goto out;
	if (!force && mdm_file_exists(path)) {
		mdm_err_set(e, MDM_E_EXISTS, "%s exists: use --force to "
		    "replace it", path);
		goto out;
	}
	if (load_ca(st, &ca, &key, e) == -1)
		goto out;
	/* Never past the CA: the RA would only look valid. */
	left = ca_seconds_left(ca, now) / 86400;
	if (left < 1) {
		mdm_err_set(e, MDM_E_CONFIG, "the CA expires within a day");
		goto out;
	}
	if (days > left)
		days = (int)left;
	if (mdm_x509_subject_attr(ca, NID_commonName, name, sizeof(name),
	    NULL) == -1)
		snprintf(name, sizeof(name), "mdm");
	snprintf(cn, sizeof(cn), "%.56s SCEP RA", name);
	bits = EVP_PKEY_get_bits(key);
	memset(&o, 0, sizeof(o));
	/* The DEP profile is the RA's: CA:FALSE, digitalSignature and
	   keyEncipherment, no extended key usage. */
	o.kind = MDM_X509_DEP;
	o.common_name = cn;
	o.days = days;
	if (mdm_x509_gen_rsa(bits < 2048 ? 2048 : bits, &ra_key, e) == -1 ||
	    mdm_x509_issue(ca, key, ra_key, &o, &ra, e) == -1 ||
	    mdm_x509_key_to_pem(ra_key, &pem, e) == -1 ||
	    mdm_state_write_file(st, MDM_SCEP_RA_KEY, pem.data, pem.len,
	    0600, 0, e) == -1)
		goto out;
	mdm_buf_release_secret(&pem);
	mdm_buf_init(&pem, MDM_CAP_CERT);
	if (mdm_x509_cert_to_pem(ra, &pem, e) == -1 ||
	    mdm_state_write_file(st, MDM_SCEP_RA_CERT, pem.data, pem.len,
	    0644, 0, e) == -1)
		goto out;
	if (out != NULL) {
		*out = ra;
		ra = NULL;
	}
	rc = 0;
out:
	mdm_buf_release_secret(&pem);
	X509_free(ca);
	X509_free(ra);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ra_key);
	return rc;
}
