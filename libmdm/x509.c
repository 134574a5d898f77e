#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "x509.h"
#include "ossl_int.h"
#include "mdm_int.h"

#define MAX_SANS	100
#define MAX_DAYS	36500

/*
 * The providers stay loaded for the life of the process: unloading them
 * while another thread holds a cipher fetched from them is undefined.
 */
static CRYPTO_ONCE providers_once = CRYPTO_ONCE_STATIC_INIT;
static OSSL_PROVIDER *prov_default;
static OSSL_PROVIDER *prov_legacy;

static void
load_providers(void)
{
	/* Loading any provider explicitly turns off the implicit default. */
	prov_default = OSSL_PROVIDER_load(NULL, "default");
	prov_legacy = OSSL_PROVIDER_load(NULL, "legacy");
	ERR_clear_error();
}

int
mdm_crypto_init(struct mdm_err *e)
{
	if (!CRYPTO_THREAD_run_once(&providers_once, load_providers))
		return mdm_err_set(e, MDM_E_SOFTWARE,
		    "cannot initialise openssl providers");
	if (prov_default == NULL)
		return mdm_err_set(e, MDM_E_CONFIG,
		    "cannot load the openssl default provider");
	if (prov_legacy == NULL)
		return mdm_err_set(e, MDM_E_CONFIG, "cannot load the openssl "
		    "legacy provider (needed for des and rc2)");
	return 0;
}

static CRYPTO_ONCE legacy_ctx_once = CRYPTO_ONCE_STATIC_INIT;
static OSSL_LIB_CTX *legacy_ctx;

static void
make_legacy_ctx(void)
{
	if ((legacy_ctx = OSSL_LIB_CTX_new()) != NULL &&
	    (OSSL_PROVIDER_load(legacy_ctx, "default") == NULL ||
	    OSSL_PROVIDER_load(legacy_ctx, "legacy") == NULL)) {
		OSSL_LIB_CTX_free(legacy_ctx);
		legacy_ctx = NULL;
	}
	ERR_clear_error();
}

OSSL_LIB_CTX *
mdm_crypto_legacy_ctx(void)
{
	if (!CRYPTO_THREAD_run_once(&legacy_ctx_once, make_legacy_ctx))
		return NULL;
	return legacy_ctx;
}

/*
 * PEM readers call this instead of prompting on the terminal: an
 * encrypted block in input that should not be encrypted fails cleanly.
 */
static int
no_password_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* memmem(3) is not POSIX. */
static int
contains(const void *data, size_t len, const char *needle)
{
	const unsigned char *p = data;
	size_t n = strlen(needle), i;

	for (i = 0; n <= len && i <= len - n; i++)
		if (p[i] == (unsigned char)needle[0] &&
		    memcmp(p + i, needle, n) == 0)
			return 1;
	return 0;
}

int
mdm_x509_looks_like_pem(const void *data, size_t len)
{
	return contains(data, len, "-----BEGIN ");
}

int
mdm_x509_gen_rsa(int bits, EVP_PKEY **out, struct mdm_err *e)
{
	EVP_PKEY *k;

	*out = NULL;
	if (bits < 2048 || bits > 16384)
		return mdm_err_set(e, MDM_E_USAGE,
		    "rsa key size %d outside 2048..16384", bits);
	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits)) == NULL)
		return mdm_err_set_ssl(e, MDM_E_CRYPTO,
		    "cannot generate rsa key");
	*out = k;
	return 0;
}

/* Certificate building. */

static int
check_dns_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 253)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '*'))
			return -1;
	}
	return 0;
}

static int
check_opts(const struct mdm_x509_opts *o, struct mdm_err *e)
{
	size_t i;

	if (o == NULL || o->common_name == NULL || *o->common_name == '\0')
		return mdm_err_set(e, MDM_E_USAGE,
		    "a certificate needs a common name");
	if (o->kind < MDM_X509_CA || o->kind > MDM_X509_DEP)
		return mdm_err_set(e, MDM_E_USAGE, "unknown certificate kind");
	if (o->days < 1 || o->days > MAX_DAYS)
		return mdm_err_set(e, MDM_E_USAGE,
		    "validity of %d days outside 1..%d", o->days, MAX_DAYS);
	if (o->n_dns_names > MAX_SANS ||
	    (o->n_dns_names > 0 && o->dns_names == NULL))
		return mdm_err_set(e, MDM_E_USAGE,
		    "bad list of subject alternative names");
	for (i = 0; i < o->n_dns_names; i++)
		if (o->dns_names[i] == NULL)
			return mdm_err_set(e, MDM_E_USAGE,
			    "bad list of subject alternative names");
	return 0;
}

static int
add_name_entry(X509_NAME *n, int nid, int type, const char *value,
    const char *what, struct mdm_err *e)
{
	if (!X509_NAME_add_entry_by_NID(n, nid, type,
	    (const unsigned char *)value, -1, -1, 0))
		return mdm_err_set_ssl(e, MDM_E_USAGE, "bad %s \"%s\"", what,
		    value);
	return 0;
}

int
mdm_x509_random_serial(X509 *c, char *hex, size_t hexlen, struct mdm_err *e)
{
	unsigned char raw[16];
	BIGNUM *bn = NULL;
	char *h = NULL;
	int rc = -1;

	/* 128 random bits; zero is not a valid serial, so draw again. */
	do {
		if (RAND_bytes(raw, sizeof(raw)) != 1) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE, "RAND_bytes");
			goto out;
		}
		BN_free(bn);
		if ((bn = BN_bin2bn(raw, sizeof(raw), NULL)) == NULL) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE, "BN_bin2bn");
			goto out;
		}
	} while (BN_is_zero(bn));
	if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "BN_to_ASN1_INTEGER");
		goto out;
	}
	if (hex != NULL) {
		if ((h = BN_bn2hex(bn)) == NULL) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE, "BN_bn2hex");
			goto out;
		}
		snprintf(hex, hexlen, "%s", h);
	}
	rc = 0;
out:
	OPENSSL_free(h);
	BN_free(bn);
	return rc;
}

static int
add_ext(X509 *c, int nid, void *value, int crit, struct mdm_err *e)
{
	if (X509_add1_ext_i2d(c, nid, value, crit, X509V3_ADD_DEFAULT) != 1)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE,
		    "cannot add extension %s", OBJ_nid2sn(nid));
	return 0;
}

static int
add_basic_constraints(X509 *c, int ca, struct mdm_err *e)
{
	BASIC_CONSTRAINTS *bc;
	int rc = -1;

	if ((bc = BASIC_CONSTRAINTS_new()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "BASIC_CONSTRAINTS_new");
		goto out;
	}
	if (ca) {
		bc->ca = 0xff;
		/* pathlen 0: our CA issues leaves, never other CAs. */
		if ((bc->pathlen = ASN1_INTEGER_new()) == NULL ||
		    !ASN1_INTEGER_set(bc->pathlen, 0)) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE, "ASN1_INTEGER_set");
			goto out;
		}
	}
	rc = add_ext(c, NID_basic_constraints, bc, 1, e);
out:
	BASIC_CONSTRAINTS_free(bc);
	return rc;
}

/* Key usage bits as RFC 5280 numbers them. */
enum {
	BIT_DIGITAL_SIGNATURE = 0,
	BIT_KEY_ENCIPHERMENT = 2,
	BIT_KEY_CERT_SIGN = 5,
	BIT_CRL_SIGN = 6,
};

static int
add_key_usage(X509 *c, const int *bits, size_t n, struct mdm_err *e)
{
	ASN1_BIT_STRING *ku;
	size_t i;
	int rc = -1;

	if ((ku = ASN1_BIT_STRING_new()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "ASN1_BIT_STRING_new");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (!ASN1_BIT_STRING_set_bit(ku, bits[i], 1)) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE, "key usage");
			goto out;
		}
	rc = add_ext(c, NID_key_usage, ku, 1, e);
out:
	ASN1_BIT_STRING_free(ku);
	return rc;
}

static int
add_eku(X509 *c, const int *nids, size_t n, struct mdm_err *e)
{
	EXTENDED_KEY_USAGE *eku;
	size_t i;
	int rc = -1;

	if ((eku = sk_ASN1_OBJECT_new_null()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sk_ASN1_OBJECT_new_null");
		goto out;
	}
	for (i = 0; i < n; i++) {
		ASN1_OBJECT *obj = OBJ_nid2obj(nids[i]);

		if (obj == NULL || !sk_ASN1_OBJECT_push(eku, obj)) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE,
			    "extended key usage");
			goto out;
		}
	}
	rc = add_ext(c, NID_ext_key_usage, eku, 0, e);
out:
	/* OBJ_nid2obj objects are static; ASN1_OBJECT_free leaves them. */
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return rc;
}

/* One SAN: an IPv4/IPv6 literal becomes an IP name, anything else DNS. */
static int
push_san(GENERAL_NAMES *gens, const char *name, struct mdm_err *e)
{
	unsigned char ip[16];
	GENERAL_NAME *gen = NULL;
	ASN1_OCTET_STRING *os = NULL;
	ASN1_IA5STRING *ia5 = NULL;
	int iplen = 0, rc = -1;

	if (inet_pton(AF_INET, name, ip) == 1)
		iplen = 4;
	else if (inet_pton(AF_INET6, name, ip) == 1)
		iplen = 16;
	else if (check_dns_name(name) == -1) {
		mdm_err_set(e, MDM_E_USAGE, "bad DNS name \"%s\"", name);
		goto out;
	}
	if ((gen = GENERAL_NAME_new()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "GENERAL_NAME_new");
		goto out;
	}
	if (iplen) {
		if ((os = ASN1_OCTET_STRING_new()) == NULL ||
		    !ASN1_OCTET_STRING_set(os, ip, iplen)) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE, "ip address");
			goto out;
		}
		GENERAL_NAME_set0_value(gen, GEN_IPADD, os);
		os = NULL;
	} else {
		if ((ia5 = ASN1_IA5STRING_new()) == NULL ||
		    !ASN1_STRING_set(ia5, name, -1)) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE, "dns name");
			goto out;
		}
		GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
		ia5 = NULL;
	}
	if (!sk_GENERAL_NAME_push(gens, gen)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sk_GENERAL_NAME_push");
		goto out;
	}
	gen = NULL;
	rc = 0;
out:
	GENERAL_NAME_free(gen);
	ASN1_OCTET_STRING_free(os);
	ASN1_IA5STRING_free(ia5);
	return rc;
}

static int
add_sans(X509 *c, const struct mdm_x509_opts *o, struct mdm_err *e)
{
	GENERAL_NAMES *gens;
	size_t i;
	int rc = -1;

	if ((gens = sk_GENERAL_NAME_new_null()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sk_GENERAL_NAME_new_null");
		goto out;
	}
	for (i = 0; i < o->n_dns_names; i++)
		if (push_san(gens, o->dns_names[i], e) == -1)
			goto out;
	/* Clients ignore the CN of a server certificate: name it in a SAN. */
	if (o->n_dns_names == 0 && o->kind == MDM_X509_TLS_SERVER &&
	    push_san(gens, o->common_name, e) == -1) {
		mdm_err_prefix(e, "no DNS names given and the common name "
		    "cannot stand in");
		goto out;
	}
	rc = sk_GENERAL_NAME_num(gens) > 0 ?
	    add_ext(c, NID_subject_alt_name, gens, 0, e) : 0;
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

/*
 * subjectKeyIdentifier: SHA-1 of the public key bits (RFC 5280 4.2.1.2),
 * or what the certificate already says when use_ski.  Never use_ski on a
 * certificate still being built: it caches the extensions it has so far.
 */
static int
key_id(X509 *c, int use_ski, ASN1_OCTET_STRING **out, struct mdm_err *e)
{
	const ASN1_OCTET_STRING *have;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (use_ski && (have = X509_get0_subject_key_id(c)) != NULL) {
		if ((*out = ASN1_OCTET_STRING_dup(have)) == NULL)
			return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "key id");
		return 0;
	}
	ERR_clear_error();
	if (!X509_pubkey_digest(c, EVP_sha1(), md, &n))
		return mdm_err_set_ssl(e, MDM_E_DATA,
		    "cannot hash the public key");
	if ((*out = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(*out, md, (int)n)) {
		ASN1_OCTET_STRING_free(*out);
		*out = NULL;
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "key id");
	}
	return 0;
}

static int
add_key_ids(X509 *c, X509 *issuer, struct mdm_err *e)
{
	ASN1_OCTET_STRING *ski = NULL;
	AUTHORITY_KEYID *akid = NULL;
	int rc = -1;

	if (key_id(c, 0, &ski, e) == -1 ||
	    add_ext(c, NID_subject_key_identifier, ski, 0, e) == -1)
		goto out;
	if ((akid = AUTHORITY_KEYID_new()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "AUTHORITY_KEYID_new");
		goto out;
	}
	if (issuer == NULL) {
		akid->keyid = ski;
		ski = NULL;
	} else if (key_id(issuer, 1, &akid->keyid, e) == -1)
		goto out;
	rc = add_ext(c, NID_authority_key_identifier, akid, 0, e);
out:
	ASN1_OCTET_STRING_free(ski);
	AUTHORITY_KEYID_free(akid);
	return rc;
}

static int
add_profile(X509 *c, X509 *issuer, const struct mdm_x509_opts *o,
    struct mdm_err *e)
{
	static const int ku_ca[] = { BIT_DIGITAL_SIGNATURE,
	    BIT_KEY_ENCIPHERMENT, BIT_KEY_CERT_SIGN, BIT_CRL_SIGN };
	static const int ku_leaf[] = { BIT_DIGITAL_SIGNATURE,
	    BIT_KEY_ENCIPHERMENT };
	static const int ku_sign[] = { BIT_DIGITAL_SIGNATURE };
	static const int eku_server[] = { NID_server_auth };
	static const int eku_client[] = { NID_client_auth };
	static const int eku_sign[] = { NID_email_protect, NID_code_sign };

	if (add_basic_constraints(c, o->kind == MDM_X509_CA, e) == -1 ||
	    add_key_ids(c, issuer, e) == -1)
		return -1;
	switch (o->kind) {
	case MDM_X509_CA:
		return add_key_usage(c, ku_ca, MDM_ARRAY_LEN(ku_ca), e);
	case MDM_X509_TLS_SERVER:
		if (add_key_usage(c, ku_leaf, MDM_ARRAY_LEN(ku_leaf),
		    e) == -1 ||
		    add_eku(c, eku_server, MDM_ARRAY_LEN(eku_server), e) == -1)
			return -1;
		return add_sans(c, o, e);
	case MDM_X509_CLIENT:
		if (add_key_usage(c, ku_leaf, MDM_ARRAY_LEN(ku_leaf),
		    e) == -1 ||
		    add_eku(c, eku_client, MDM_ARRAY_LEN(eku_client), e) == -1)
			return -1;
		return add_sans(c, o, e);
	case MDM_X509_SIGNING:
		if (add_key_usage(c, ku_sign, MDM_ARRAY_LEN(ku_sign),
		    e) == -1 ||
		    add_eku(c, eku_sign, MDM_ARRAY_LEN(eku_sign), e) == -1)
			return -1;
		return add_sans(c, o, e);
	case MDM_X509_DEP:
		if (add_key_usage(c, ku_leaf, MDM_ARRAY_LEN(ku_leaf), e) == -1)
			return -1;
		return add_sans(c, o, e);
	}
	return mdm_err_set(e, MDM_E_USAGE, "unknown certificate kind");
}

/* issuer NULL: self-signed by sign_key, which is then pub too. */
static int
build_cert(X509 *issuer, EVP_PKEY *sign_key, EVP_PKEY *pub,
    const struct mdm_x509_opts *o, X509 **out, struct mdm_err *e)
{
	X509 *c = NULL;
	X509_NAME *name = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	int n, rc = -1;

	*out = NULL;
	ERR_clear_error();
	if (check_opts(o, e) == -1)
		goto out;
	if ((c = X509_new()) == NULL || (name = X509_NAME_new()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "X509_new");
		goto out;
	}
	if (!X509_set_version(c, X509_VERSION_3)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "X509_set_version");
		goto out;
	}
	if (mdm_x509_random_serial(c, NULL, 0, e) == -1)
		goto out;
	/* DER order is general to specific, so O comes before CN. */
	if (o->organization != NULL && *o->organization != '\0' &&
	    add_name_entry(name, NID_organizationName, MBSTRING_UTF8,
	    o->organization, "organization", e) == -1)
		goto out;
	if (add_name_entry(name, NID_commonName, MBSTRING_UTF8,
	    o->common_name, "common name", e) == -1)
		goto out;
	if (!X509_set_subject_name(c, name) ||
	    !X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) :
	    name) || !X509_set_pubkey(c, pub)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot fill certificate");
		goto out;
	}
	/* Five minutes back, so a device with a slow clock accepts it. */
	if (X509_time_adj_ex(X509_getm_notBefore(c), 0, -300, NULL) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(c), o->days, 0, NULL) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot set validity");
		goto out;
	}
	if (add_profile(c, issuer, o, e) == -1)
		goto out;
	if (X509_sign(c, sign_key, EVP_sha256()) <= 0) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot sign certificate");
		goto out;
	}
	/*
	 * OpenSSL caches a certificate's extension flags the first time it
	 * looks at them and never refreshes them on the object built here:
	 * hand out a fresh parse of exactly the bytes that were signed.
	 */
	if ((n = i2d_X509(c, &der)) <= 0) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot encode certificate");
		goto out;
	}
	p = der;
	if ((*out = d2i_X509(NULL, &p, n)) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE,
		    "cannot reparse certificate");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(der);
	X509_NAME_free(name);
	X509_free(c);
	return rc;
}

int
mdm_x509_self_sign(EVP_PKEY *key, const struct mdm_x509_opts *o, X509 **out,
    struct mdm_err *e)
{
	*out = NULL;
	if (key == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "no key to sign with");
	return build_cert(NULL, key, key, o, out, e);
}

int
mdm_x509_issue(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *pub,
    const struct mdm_x509_opts *o, X509 **out, struct mdm_err *e)
{
	*out = NULL;
	if (ca == NULL || ca_key == NULL || pub == NULL)
		return mdm_err_set(e, MDM_E_USAGE,
		    "issuing needs a CA, its key and a public key");
	if (!mdm_x509_key_matches(ca, ca_key))
		return mdm_err_set(e, MDM_E_USAGE,
		    "CA key does not match the CA certificate");
	if ((X509_get_extension_flags(ca) & EXFLAG_CA) == 0)
		return mdm_err_set(e, MDM_E_USAGE,
		    "issuer certificate is not a CA");
	return build_cert(ca, ca_key, pub, o, out, e);
}

/* Loading. */

int
mdm_x509_certs_from_mem(const void *data, size_t len, STACK_OF(X509) **out,
    struct mdm_err *e)
{
	STACK_OF(X509) *sk = NULL;
	X509 *x = NULL;
	BIO *b = NULL;
	int rc = -1;

	*out = NULL;
	ERR_clear_error();
	if (len > MDM_CAP_CERT) {
		mdm_err_set(e, MDM_E_TOOBIG,
		    "certificate input larger than %u bytes", MDM_CAP_CERT);
		goto out;
	}
	if ((sk = sk_X509_new_null()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sk_X509_new_null");
		goto out;
	}
	if (mdm_x509_looks_like_pem(data, len)) {
		unsigned long err;

		if ((b = mdm_bio_from_mem(data, len, e)) == NULL)
			goto out;
		while ((x = PEM_read_bio_X509(b, NULL, no_password_cb,
		    NULL)) != NULL) {
			if (!sk_X509_push(sk, x)) {
				mdm_err_set_ssl(e, MDM_E_SOFTWARE,
				    "sk_X509_push");
				goto out;
			}
			x = NULL;
		}
		/* Running out of PEM blocks is the normal end. */
		err = ERR_peek_last_error();
		if (ERR_GET_LIB(err) != ERR_LIB_PEM ||
		    ERR_GET_REASON(err) != PEM_R_NO_START_LINE) {
			mdm_err_set_ssl(e, MDM_E_DATA, "bad PEM certificate");
			goto out;
		}
		ERR_clear_error();
	} else {
		const unsigned char *p = data, *end = p + len;

		while (p < end) {
			if ((x = d2i_X509(NULL, &p, end - p)) == NULL) {
				mdm_err_set_ssl(e, MDM_E_DATA,
				    "bad DER certificate");
				goto out;
			}
			if (!sk_X509_push(sk, x)) {
				mdm_err_set_ssl(e, MDM_E_SOFTWARE,
				    "sk_X509_push");
				goto out;
			}
			x = NULL;
		}
	}
	if (sk_X509_num(sk) == 0) {
		mdm_err_set(e, MDM_E_DATA, "no certificate found");
		goto out;
	}
	*out = sk;
	sk = NULL;
	rc = 0;
out:
	X509_free(x);
	sk_X509_pop_free(sk, X509_free);
	BIO_free(b);
	return rc;
}

int
mdm_x509_cert_from_mem(const void *data, size_t len, X509 **out,
    struct mdm_err *e)
{
	STACK_OF(X509) *sk = NULL;

	*out = NULL;
	if (mdm_x509_certs_from_mem(data, len, &sk, e) == -1)
		return -1;
	*out = sk_X509_shift(sk);
	sk_X509_pop_free(sk, X509_free);
	return 0;
}

int
mdm_x509_load_cert(const char *path, X509 **out, struct mdm_err *e)
{
	struct mdm_buf b;
	int rc = -1;

	*out = NULL;
	mdm_buf_init(&b, MDM_CAP_CERT);
	if (mdm_buf_read_file(&b, path, e) == -1)
		goto out;
	if (mdm_x509_cert_from_mem(b.data, b.len, out, e) == -1) {
		mdm_err_prefix(e, "%s", path);
		goto out;
	}
	rc = 0;
out:
	mdm_buf_release(&b);
	return rc;
}

/* The decoder's passphrase callback when the caller has no password. */
static int
no_passphrase_cb(char *pass, size_t pass_size, size_t *pass_len,
    const OSSL_PARAM params[], void *arg)
{
	(void)pass;
	(void)pass_size;
	(void)params;
	(void)arg;
	*pass_len = 0;
	return 0;
}

/*
 * Offset of the first PEM block labelled "... PRIVATE KEY" (plain, RSA, EC,
 * ENCRYPTED), or -1: the decoder stops at the first block, and a key often
 * comes after its certificate in one file.
 */
static long
find_pem_key(const char *data, size_t len)
{
	static const char begin[] = "-----BEGIN ";
	static const char label[] = "PRIVATE KEY-----";
	size_t i, j;

	for (i = 0; i + sizeof(begin) - 1 <= len; i++) {
		if (memcmp(data + i, begin, sizeof(begin) - 1) != 0)
			continue;
		for (j = i + sizeof(begin) - 1; j < len && data[j] != '\n' &&
		    j - i < 80; j++)
			if (j + sizeof(label) - 1 <= len &&
			    memcmp(data + j, label, sizeof(label) - 1) == 0)
				return i > LONG_MAX ? -1 : (long)i;
	}
	return -1;
}

/* Encrypted PEM of either kind, or a DER EncryptedPrivateKeyInfo. */
static int
key_is_encrypted(const void *data, size_t len)
{
	const unsigned char *p = data;
	X509_SIG *sig;
	int enc;

	if (mdm_x509_looks_like_pem(data, len))
		return contains(data, len, "ENCRYPTED");
	if (len > LONG_MAX)
		return 0;
	sig = d2i_X509_SIG(NULL, &p, (long)len);
	enc = sig != NULL;
	X509_SIG_free(sig);
	ERR_clear_error();
	return enc;
}

int
mdm_x509_key_from_mem(const void *data, size_t len, const char *password,
    EVP_PKEY **out, struct mdm_err *e)
{
	OSSL_DECODER_CTX *dctx = NULL;
	EVP_PKEY *k = NULL;
	const unsigned char *p = data, *start;
	size_t left = len;
	int rc = -1;

	*out = NULL;
	ERR_clear_error();
	if (len > MDM_CAP_CERT) {
		mdm_err_set(e, MDM_E_TOOBIG, "key input larger than %u bytes",
		    MDM_CAP_CERT);
		goto out;
	}
	if (len == 0) {
		mdm_err_set(e, MDM_E_DATA, "empty private key");
		goto out;
	}
	if (mdm_x509_looks_like_pem(data, len)) {
		long off = find_pem_key(data, len);

		if (off < 0) {
			mdm_err_set(e, MDM_E_DATA, "no private key in PEM input");
			goto out;
		}
		p += off;
		left -= (size_t)off;
	}
	/* Input type and structure left open: PEM/DER, PKCS#1/PKCS#8. */
	dctx = OSSL_DECODER_CTX_new_for_pkey(&k, NULL, NULL, NULL,
	    EVP_PKEY_KEYPAIR, NULL, NULL);
	if (dctx == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE,
		    "OSSL_DECODER_CTX_new_for_pkey");
		goto out;
	}
	if (password != NULL ?
	    !OSSL_DECODER_CTX_set_passphrase(dctx,
	    (const unsigned char *)password, strlen(password)) :
	    !OSSL_DECODER_CTX_set_passphrase_cb(dctx, no_passphrase_cb,
	    NULL)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot set passphrase");
		goto out;
	}
	start = p;
	if (!OSSL_DECODER_from_data(dctx, &p, &left) || k == NULL) {
		if (key_is_encrypted(start, len - (size_t)(start -
		    (const unsigned char *)data))) {
			if (password == NULL)
				mdm_err_set(e, MDM_E_CRYPTO, "private key is "
				    "encrypted and no password was given");
			else
				mdm_err_set(e, MDM_E_CRYPTO, "cannot decrypt "
				    "private key: wrong password");
		} else
			mdm_err_set(e, MDM_E_DATA, "not a private key");
		ERR_clear_error();
		goto out;
	}
	*out = k;
	k = NULL;
	rc = 0;
out:
	EVP_PKEY_free(k);
	OSSL_DECODER_CTX_free(dctx);
	return rc;
}

int
mdm_x509_pkcs12_from_mem(const void *data, size_t len, const char *password,
    X509 **cert, EVP_PKEY **key, STACK_OF(X509) **chain, struct mdm_err *e)
{
	const unsigned char *p = data;
	PKCS12 *p12 = NULL;
	X509 *c = NULL;
	EVP_PKEY *k = NULL;
	STACK_OF(X509) *ca = NULL;
	struct mdm_err ierr;
	const char *pw = password;
	int have_legacy, rc = -1;

	mdm_err_clear(&ierr);
	if (cert != NULL)
		*cert = NULL;
	if (key != NULL)
		*key = NULL;
	if (chain != NULL)
		*chain = NULL;
	/* Without legacy only AES-encrypted files open; try anyway. */
	have_legacy = mdm_crypto_init(&ierr) == 0;
	ERR_clear_error();
	if (len > MDM_CAP_CERT) {
		mdm_err_set(e, MDM_E_TOOBIG,
		    "pkcs12 input larger than %u bytes", MDM_CAP_CERT);
		goto out;
	}
	if ((p12 = d2i_PKCS12(NULL, &p, (long)len)) == NULL) {
		mdm_err_set_ssl(e, MDM_E_DATA, "not a pkcs12 file");
		goto out;
	}
	if (PKCS12_mac_present(p12)) {
		int mac_ok;

		/* "No password" is encoded two ways; accept either. */
		if (pw != NULL)
			mac_ok = PKCS12_verify_mac(p12, pw, -1);
		else if (!(mac_ok = PKCS12_verify_mac(p12, NULL, 0))) {
			pw = "";
			mac_ok = PKCS12_verify_mac(p12, pw, 0);
		}
		if (!mac_ok) {
			ERR_clear_error();
			mdm_err_set(e, MDM_E_CRYPTO, password == NULL ?
			    "pkcs12 file needs a password" :
			    "cannot open pkcs12 file: wrong password");
			goto out;
		}
	}
	if (!PKCS12_parse(p12, pw, &k, &c, &ca)) {
		if (have_legacy)
			mdm_err_set_ssl(e, MDM_E_CRYPTO,
			    "cannot decrypt pkcs12 file");
		else
			mdm_err_set_ssl(e, MDM_E_CRYPTO,
			    "cannot decrypt pkcs12 file (%s)", ierr.msg);
		goto out;
	}
	if (cert != NULL && c == NULL) {
		mdm_err_set(e, MDM_E_DATA, "pkcs12 file holds no certificate");
		goto out;
	}
	if (key != NULL && k == NULL) {
		mdm_err_set(e, MDM_E_DATA, "pkcs12 file holds no private key");
		goto out;
	}
	if (cert != NULL) {
		*cert = c;
		c = NULL;
	}
	if (key != NULL) {
		*key = k;
		k = NULL;
	}
	if (chain != NULL) {
		if (ca == NULL && (ca = sk_X509_new_null()) == NULL) {
			mdm_err_set_ssl(e, MDM_E_SOFTWARE, "sk_X509_new_null");
			goto out;
		}
		*chain = ca;
		ca = NULL;
	}
	rc = 0;
out:
	if (rc == -1) {
		if (cert != NULL) {
			X509_free(*cert);
			*cert = NULL;
		}
		if (key != NULL) {
			EVP_PKEY_free(*key);
			*key = NULL;
		}
	}
	PKCS12_free(p12);
	X509_free(c);
	EVP_PKEY_free(k);
	sk_X509_pop_free(ca, X509_free);
	return rc;
}

/* Writing. */

int
mdm_x509_cert_to_pem(X509 *c, struct mdm_buf *out, struct mdm_err *e)
{
	BIO *b;
	int rc = -1;

	if ((b = BIO_new(BIO_s_mem())) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "BIO_new");
		goto out;
	}
	if (!PEM_write_bio_X509(b, c)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot write certificate");
		goto out;
	}
	rc = mdm_bio_to_buf(b, out, e);
out:
	BIO_free(b);
	return rc;
}

int
mdm_x509_key_to_pem(EVP_PKEY *k, struct mdm_buf *out, struct mdm_err *e)
{
	BIO *b;
	int rc = -1;

	/* A memory BIO clears its buffer when it grows and when freed. */
	if ((b = BIO_new(BIO_s_mem())) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "BIO_new");
		goto out;
	}
	if (!PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)) {
		mdm_err_set_ssl(e, MDM_E_DATA, "cannot write private key");
		goto out;
	}
	rc = mdm_bio_to_buf(b, out, e);
out:
	BIO_free(b);
	return rc;
}

int
mdm_x509_cert_to_der(X509 *c, struct mdm_buf *out, struct mdm_err *e)
{
	unsigned char *der = NULL;
	int n, rc;

	if ((n = i2d_X509(c, &der)) <= 0)
		return mdm_err_set_ssl(e, MDM_E_DATA,
		    "cannot encode certificate");
	rc = mdm_buf_append(out, der, (size_t)n, e);
	OPENSSL_free(der);
	return rc;
}

/* Inspection. */

int
mdm_x509_name_str(const X509_NAME *n, char *out, size_t outlen,
    int *truncated, struct mdm_err *e)
{
	BIO *b;
	char *p;
	long len;
	size_t cut;
	int rc = -1;

	if (truncated != NULL)
		*truncated = 0;
	out[0] = '\0';
	if ((b = BIO_new(BIO_s_mem())) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "BIO_new");
		goto out;
	}
	if (X509_NAME_print_ex(b, n, 0,
	    XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
		mdm_err_set_ssl(e, MDM_E_DATA, "cannot print name");
		goto out;
	}
	len = BIO_get_mem_data(b, &p);
	cut = len < 0 ? 0 : (size_t)len;
	if (cut > outlen - 1) {
		cut = outlen - 1;
		/* Do not leave half a UTF-8 sequence at the end. */
		while (cut > 0 && ((unsigned char)p[cut] & 0xc0) == 0x80)
			cut--;
		if (truncated != NULL)
			*truncated = 1;
	}
	memcpy(out, p, cut);
	out[cut] = '\0';
	rc = 0;
out:
	BIO_free(b);
	return rc;
}

static int
asn1_time_to_time_t(const ASN1_TIME *t, time_t *out, struct mdm_err *e)
{
	ASN1_TIME *epoch = NULL;
	int days, secs, rc = -1;

	if ((epoch = ASN1_TIME_set(NULL, 0)) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "ASN1_TIME_set");
		goto out;
	}
	if (t == NULL || !ASN1_TIME_diff(&days, &secs, epoch, t)) {
		mdm_err_set_ssl(e, MDM_E_DATA, "bad certificate time");
		goto out;
	}
	*out = (time_t)days * 86400 + secs;
	rc = 0;
out:
	ASN1_TIME_free(epoch);
	return rc;
}

int
mdm_x509_sha256_hex(X509 *c, char out[65], struct mdm_err *e)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (!X509_digest(c, EVP_sha256(), md, &n) || n != 32)
		return mdm_err_set_ssl(e, MDM_E_DATA,
		    "cannot hash certificate");
	mdm_hex_lower(md, n, out);
	return 0;
}

int
mdm_x509_inspect(X509 *c, struct mdm_x509_info *out, struct mdm_err *e)
{
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	ERR_clear_error();
	if (mdm_x509_name_str(X509_get_subject_name(c), out->subject,
	    sizeof(out->subject), NULL, e) == -1 ||
	    mdm_x509_name_str(X509_get_issuer_name(c), out->issuer,
	    sizeof(out->issuer), NULL, e) == -1)
		goto out;
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL);
	if (bn == NULL || (hex = BN_bn2hex(bn)) == NULL) {
		mdm_err_set_ssl(e, MDM_E_DATA, "bad serial number");
		goto out;
	}
	if (strlen(hex) >= sizeof(out->serial)) {
		mdm_err_set(e, MDM_E_DATA, "serial number too long");
		goto out;
	}
	memcpy(out->serial, hex, strlen(hex) + 1);
	if (mdm_x509_sha256_hex(c, out->sha256, e) == -1 ||
	    asn1_time_to_time_t(X509_get0_notBefore(c), &out->not_before,
	    e) == -1 ||
	    asn1_time_to_time_t(X509_get0_notAfter(c), &out->not_after,
	    e) == -1)
		goto out;
	out->is_ca = (X509_get_extension_flags(c) & EXFLAG_CA) != 0;
	rc = 0;
out:
	OPENSSL_free(hex);
	BN_free(bn);
	return rc;
}

int
mdm_x509_subject_attr(X509 *c, int nid, char *out, size_t outlen,
    struct mdm_err *e)
{
	X509_NAME *name = X509_get_subject_name(c);
	X509_NAME_ENTRY *ent;
	unsigned char *utf8 = NULL;
	int i, n, rc = -1;

	if (outlen > 0)
		out[0] = '\0';
	ERR_clear_error();
	if ((i = X509_NAME_get_index_by_NID(name, nid, -1)) < 0) {
		mdm_err_set(e, MDM_E_NOINPUT, "certificate subject has no %s",
		    OBJ_nid2sn(nid) ? OBJ_nid2sn(nid) : "such attribute");
		goto out;
	}
	ent = X509_NAME_get_entry(name, i);
	if ((n = ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(ent))) < 0) {
		mdm_err_set_ssl(e, MDM_E_DATA, "bad %s in certificate subject",
		    OBJ_nid2sn(nid));
		goto out;
	}
	if ((size_t)n >= outlen || memchr(utf8, '\0', (size_t)n) != NULL) {
		mdm_err_set(e, MDM_E_DATA, "%s in certificate subject is too "
		    "long or holds a NUL", OBJ_nid2sn(nid));
		goto out;
	}
	memcpy(out, utf8, (size_t)n);
	out[n] = '\0';
	rc = 0;
out:
	OPENSSL_free(utf8);
	return rc;
}

int
mdm_x509_expires_within(X509 *c, time_t now, long long seconds)
{
	time_t t;

	/* Saturate instead of overflowing time_t. */
	if (seconds > 0 && now > (time_t)(INT64_MAX - seconds))
		t = (time_t)INT64_MAX;
	else if (seconds < 0 && now < (time_t)(INT64_MIN - seconds))
		t = (time_t)INT64_MIN;
	else
		t = now + (time_t)seconds;
	/* -1: notAfter <= t; 0: unreadable, which we treat as expiring. */
	return X509_cmp_time(X509_get0_notAfter(c), &t) <= 0;
}

int
mdm_x509_key_matches(X509 *c, EVP_PKEY *k)
{
	int r;

	if (c == NULL || k == NULL)
		return 0;
	r = EVP_PKEY_eq(X509_get0_pubkey(c), k);
	ERR_clear_error();
	return r == 1;
}

int
mdm_x509_verify(X509 *leaf, X509 *ca, STACK_OF(X509) *untrusted, time_t at,
    struct mdm_err *e)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	int rc = -1;

	ERR_clear_error();
	if (leaf == NULL || ca == NULL) {
		mdm_err_set(e, MDM_E_USAGE,
		    "verify needs a certificate and a CA");
		goto out;
	}
	if ((store = X509_STORE_new()) == NULL ||
	    (ctx = X509_STORE_CTX_new()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "X509_STORE_new");
		goto out;
	}
	if (!X509_STORE_add_cert(store, ca) ||
	    !X509_STORE_CTX_init(ctx, store, leaf, untrusted)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "X509_STORE_CTX_init");
		goto out;
	}
	/* The one CA we are given is the anchor, self-signed or not. */
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN);
	if (!X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE,
		    "X509_STORE_CTX_set_purpose");
		goto out;
	}
	if (at != 0)
		X509_STORE_CTX_set_time(ctx, 0, at);
	if (X509_verify_cert(ctx) != 1) {
		int err = X509_STORE_CTX_get_error(ctx);

		ERR_clear_error();
		mdm_err_set(e, MDM_E_CRYPTO, "certificate verification failed: "
		    "%s", X509_verify_cert_error_string(err));
		goto out;
	}
	rc = 0;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

/* CSRs. */

int
mdm_x509_make_csr(EVP_PKEY *key, const char *cn, const char *country,
    const char *email, X509_REQ **out, struct mdm_err *e)
{
	X509_REQ *r = NULL;
	X509_NAME *name;
	int rc = -1;

	*out = NULL;
	ERR_clear_error();
	if (key == NULL || cn == NULL || *cn == '\0') {
		mdm_err_set(e, MDM_E_USAGE,
		    "a CSR needs a key and a common name");
		goto out;
	}
	if ((r = X509_REQ_new()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "X509_REQ_new");
		goto out;
	}
	name = X509_REQ_get_subject_name(r);
	if (!X509_REQ_set_version(r, X509_REQ_VERSION_1)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "X509_REQ_set_version");
		goto out;
	}
	if (add_name_entry(name, NID_commonName, MBSTRING_UTF8, cn,
	    "common name", e) == -1)
		goto out;
	if (country != NULL && *country != '\0' &&
	    (strlen(country) != 2 || add_name_entry(name, NID_countryName,
	    MBSTRING_ASC, country, "country", e) == -1)) {
		mdm_err_set(e, MDM_E_USAGE,
		    "country \"%s\" is not a two-letter code", country);
		goto out;
	}
	if (email != NULL && *email != '\0' && add_name_entry(name,
	    NID_pkcs9_emailAddress, MBSTRING_ASC, email, "email address",
	    e) == -1)
		goto out;
	if (!X509_REQ_set_pubkey(r, key)) {
		mdm_err_set_ssl(e, MDM_E_USAGE, "cannot use key");
		goto out;
	}
	if (X509_REQ_sign(r, key, EVP_sha256()) <= 0) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot sign CSR");
		goto out;
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	X509_REQ_free(r);
	return rc;
}

int
mdm_x509_csr_from_mem(const void *data, size_t len, X509_REQ **out,
    struct mdm_err *e)
{
	X509_REQ *r = NULL;
	BIO *b = NULL;
	int rc = -1;

	*out = NULL;
	ERR_clear_error();
	if (len > MDM_CAP_CERT) {
		mdm_err_set(e, MDM_E_TOOBIG, "CSR larger than %u bytes",
		    MDM_CAP_CERT);
		goto out;
	}
	if (mdm_x509_looks_like_pem(data, len)) {
		if ((b = mdm_bio_from_mem(data, len, e)) == NULL)
			goto out;
		r = PEM_read_bio_X509_REQ(b, NULL, no_password_cb, NULL);
	} else {
		const unsigned char *p = data;

		r = d2i_X509_REQ(NULL, &p, (long)len);
	}
	if (r == NULL) {
		mdm_err_set_ssl(e, MDM_E_DATA, "not a PKCS#10 CSR");
		goto out;
	}
	*out = r;
	r = NULL;
	rc = 0;
out:
	X509_REQ_free(r);
	BIO_free(b);
	return rc;
}

int
mdm_x509_csr_to_der(X509_REQ *r, struct mdm_buf *out, struct mdm_err *e)
{
	unsigned char *der = NULL;
	int n, rc;

	if ((n = i2d_X509_REQ(r, &der)) <= 0)
		return mdm_err_set_ssl(e, MDM_E_DATA, "cannot encode CSR");
	rc = mdm_buf_append(out, der, (size_t)n, e);
	OPENSSL_free(der);
	return rc;
}

int
mdm_x509_csr_to_pem(X509_REQ *r, struct mdm_buf *out, struct mdm_err *e)
{
	BIO *b;
	int rc = -1;

	if ((b = BIO_new(BIO_s_mem())) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "BIO_new");
		goto out;
	}
	if (!PEM_write_bio_X509_REQ(b, r)) {
		mdm_err_set_ssl(e, MDM_E_DATA, "cannot write CSR");
		goto out;
	}
	rc = mdm_bio_to_buf(b, out, e);
out:
	BIO_free(b);
	return rc;
}

int
mdm_x509_sign_sha256(EVP_PKEY *key, const void *data, size_t len,
    struct mdm_buf *sig, struct mdm_err *e)
{
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *s = NULL;
	size_t slen;
	int size, rc = -1;

	ERR_clear_error();
	if (key == NULL || !EVP_PKEY_is_a(key, "RSA")) {
		mdm_err_set(e, MDM_E_USAGE, "the vendor signature needs an "
		    "rsa key");
		goto out;
	}
	if ((size = EVP_PKEY_get_size(key)) <= 0 ||
	    (s = OPENSSL_malloc((size_t)size)) == NULL ||
	    (md = EVP_MD_CTX_new()) == NULL) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot set up signing");
		goto out;
	}
	slen = (size_t)size;
	if (EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0 ||
	    EVP_DigestSign(md, s, &slen, len ? data : (const void *)"",
	    len) != 1) {
		mdm_err_set_ssl(e, MDM_E_CRYPTO, "cannot sign");
		goto out;
	}
	rc = mdm_buf_append(sig, s, slen, e);
out:
	OPENSSL_free(s);
	EVP_MD_CTX_free(md);
	return rc;
}

int
mdm_base64_encode(const void *data, size_t len, struct mdm_buf *out,
    struct mdm_err *e)
{
	unsigned char chunk[1024 + 1];
	const unsigned char *p = data;
	size_t start = out->len;

	while (len > 0) {
		/* 768 input bytes make exactly 1024 characters, no padding. */
		size_t n = len < 768 ? len : 768;
		int m = EVP_EncodeBlock(chunk, p, (int)n);

		if (m < 0 || mdm_buf_append(out, chunk, (size_t)m, e) == -1) {
			if (m < 0)
				mdm_err_set(e, MDM_E_SOFTWARE,
				    "EVP_EncodeBlock");
			out->len = start;
			if (out->data != NULL)
				out->data[start] = '\0';
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
mdm_base64_decode(const char *b64, size_t len, struct mdm_buf *out,
    struct mdm_err *e)
{
	unsigned char chunk[768];
	size_t start = out->len, n = 0, i;
	int quad[4], q = 0, pad = 0, done = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)b64[i];
		int v;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		    c == '\v' || c == '\f')
			continue;
		if (done) {
			mdm_err_set(e, MDM_E_DATA, "base64 data after padding");
			goto fail;
		}
		if (c == '=') {
			if (q < 2) {
				mdm_err_set(e, MDM_E_DATA,
				    "misplaced base64 padding");
				goto fail;
			}
			pad++;
			v = 0;
		} else if (pad || (v = b64_value(c)) < 0) {
			mdm_err_set(e, MDM_E_DATA, "bad base64 character at "
			    "offset %zu", i);
			goto fail;
		}
		quad[q++] = v;
		if (q < 4)
			continue;
		chunk[n++] = (unsigned char)(quad[0] << 2 | quad[1] >> 4);
		if (pad < 2)
			chunk[n++] = (unsigned char)(quad[1] << 4 |
			    quad[2] >> 2);
		if (pad < 1)
			chunk[n++] = (unsigned char)(quad[2] << 6 | quad[3]);
		done = pad > 0;
		q = 0;
		if (n > sizeof(chunk) - 3) {
			if (mdm_buf_append(out, chunk, n, e) == -1)
				goto fail;
			n = 0;
		}
	}
	if (q != 0) {
		mdm_err_set(e, MDM_E_DATA, "truncated base64");
		goto fail;
	}
	if (mdm_buf_append(out, chunk, n, e) == -1)
		goto fail;
	return 0;
fail:
	out->len = start;
	if (out->data != NULL)
		out->data[start] = '\0';
	return -1;
}
