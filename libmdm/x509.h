/*
 * x509: keys, certificates and CSRs for every tool that holds a CA, a TLS
 * identity, an APNs push certificate or a DEP token keypair.  It wraps the
 * OpenSSL 3 EVP/X509 API only (no deprecated RSA_* calls) and owns three
 * decisions the rest of the project relies on:
 *
 *  - the profile of each kind of certificate we issue (enum mdm_x509_kind);
 *  - one text form of a distinguished name, used in every message, report
 *    and database row: RFC 2253 order (most specific first, as
 *    `openssl x509 -nameopt RFC2253,-esc_msb` prints it), short attribute
 *    names, UTF-8 left unescaped, e.g. "CN=mdm CA,O=mdm";
 *  - the certificate hash that binds a device to its enrollment: lowercase
 *    hex SHA-256 of the DER (protocol.md section 3).
 *
 * Invariants: nothing here prompts for a password, prints or exits; every
 * input is capped at MDM_CAP_CERT; every OpenSSL object returned is owned
 * by the caller (free it with X509_free, EVP_PKEY_free, X509_REQ_free or
 * sk_X509_pop_free(..., X509_free)) unless the prototype says borrowed.
 * Key bytes written into a struct mdm_buf are secret: release that buffer
 * with mdm_buf_release_secret.
 */
#ifndef MDM_X509_H
#define MDM_X509_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "buf.h"
#include "err.h"

/*
 * OpenSSL 3 keeps DES, RC2-40 (old PKCS#12 files) and friends in the
 * legacy provider.  Loads the default and legacy providers into the
 * default library context, once; safe to call from any thread, any number
 * of times.  Fails with MDM_E_CONFIG when a provider cannot be loaded (the
 * default one still works then, so callers may go on without legacy).
 */
int mdm_crypto_init(struct mdm_err *e);

/*
 * A library context of its own with the default and legacy providers,
 * for the rare request in single DES: a server reads it there, so it
 * need not load legacy into the default context, which makes every
 * certificate parse slower.  NULL when legacy cannot be loaded.
 * Borrowed: it lives as long as the process.
 */
OSSL_LIB_CTX *mdm_crypto_legacy_ctx(void);

enum mdm_x509_kind {
	/*
	 * basicConstraints critical CA:TRUE pathlen:0; keyUsage critical
	 * keyCertSign|cRLSign|digitalSignature|keyEncipherment: the last two
	 * because this CA also answers SCEP (RFC 8894 2.1.2: it signs
	 * CertReps and is the recipient of encrypted requests).
	 */
	MDM_X509_CA,
	/* serverAuth; digitalSignature|keyEncipherment; SANs from dns_names
	   (common_name as the only DNS SAN when none are given) */
	MDM_X509_TLS_SERVER,
	/* clientAuth; digitalSignature|keyEncipherment: device identities */
	MDM_X509_CLIENT,
	/* digitalSignature; emailProtection+codeSigning: profile signing */
	MDM_X509_SIGNING,
	/* self-signed, keyEncipherment|digitalSignature, CA:FALSE: the DEP
	   token encryption keypair */
	MDM_X509_DEP,
};

struct mdm_x509_opts {
	enum mdm_x509_kind kind;
	const char *common_name;	/* required, 1 to 64 characters */
	const char *organization;	/* optional O= */
	/* optional SANs; an entry that parses as IPv4/IPv6 is an IP SAN */
	const char *const *dns_names;
	size_t n_dns_names;
	int days;			/* validity, 1..36500; notBefore is
					   now - 5 minutes for clock skew */
};

/* RSA key of bits (2048..16384); *out owned. */
int mdm_x509_gen_rsa(int bits, EVP_PKEY **out, struct mdm_err *e);
/*
 * Self-signed certificate over key: meant for MDM_X509_CA and
 * MDM_X509_DEP (other kinds work and give a self-signed leaf).  Random
 * 128-bit serial, SHA-256, subjectKeyIdentifier and authorityKeyIdentifier.
 * *out owned.
 */
int mdm_x509_self_sign(EVP_PKEY *key, const struct mdm_x509_opts *o,
    X509 **out, struct mdm_err *e);
/*
 * Certificate for pub, signed by ca/ca_key (which must match and be a
 * CA): serial a fresh random positive 128-bit number, SHA-256,
 * subjectKeyIdentifier + authorityKeyIdentifier, issuer = ca's subject.
 * ca, ca_key and pub are borrowed; *out owned.
 */
int mdm_x509_issue(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *pub,
    const struct mdm_x509_opts *o, X509 **out, struct mdm_err *e);

/*
 * Loading: PEM or DER is detected from the bytes.  Files go through
 * struct mdm_buf with MDM_CAP_CERT.  Malformed input is MDM_E_DATA.
 */
/* The first certificate of a PEM bundle or of concatenated DER (all of
   the input must parse, as for mdm_x509_certs_from_mem).  *out owned. */
int mdm_x509_cert_from_mem(const void *data, size_t len, X509 **out,
    struct mdm_err *e);
/* 1 if the bytes hold a PEM "-----BEGIN " line, else 0 (then: DER). */
int mdm_x509_looks_like_pem(const void *data, size_t len);
/* Every certificate of a PEM bundle (other PEM blocks skipped), or one or
   more concatenated DER certificates; at least one.  *out owned. */
int mdm_x509_certs_from_mem(const void *data, size_t len,
    STACK_OF(X509) **out, struct mdm_err *e);
/* mdm_x509_cert_from_mem on a file; the message names the path. */
int mdm_x509_load_cert(const char *path, X509 **out, struct mdm_err *e);
/*
 * Private key: PEM (PKCS#8, PKCS#1 "traditional", either encrypted) or
 * DER (PKCS#8, encrypted PKCS#8, PKCS#1).  password may be NULL (no
 * password) or "" (an empty one: some tools encrypt with it).  A wrong or
 * missing password is MDM_E_CRYPTO with a message saying so.  *out owned.
 */
int mdm_x509_key_from_mem(const void *data, size_t len, const char *password,
    EVP_PKEY **out, struct mdm_err *e);
/*
 * PKCS#12 (DER): certificate, key and the other certificates.  key, cert
 * and chain may each be NULL when the caller does not want that part.
 * Loads the legacy provider itself (RC2-40 and 3DES p12 files).  A NULL
 * password tries both "no password" and "".  Wrong password: MDM_E_CRYPTO.
 * Everything returned is owned; on failure nothing is returned.
 */
int mdm_x509_pkcs12_from_mem(const void *data, size_t len,
    const char *password, X509 **cert, EVP_PKEY **key,
    STACK_OF(X509) **chain, struct mdm_err *e);

/* Writing, appended to out: PEM certificates, keys as unencrypted PKCS#8
   PEM ("BEGIN PRIVATE KEY"), DER certificates. */
int mdm_x509_cert_to_pem(X509 *c, struct mdm_buf *out, struct mdm_err *e);
int mdm_x509_key_to_pem(EVP_PKEY *k, struct mdm_buf *out, struct mdm_err *e);
int mdm_x509_cert_to_der(X509 *c, struct mdm_buf *out, struct mdm_err *e);

/* Inspection. */
struct mdm_x509_info {
	char subject[512];	/* the one DN form above; cut at 511 bytes */
	char issuer[512];
	char serial[100];	/* uppercase hex, no colons, as openssl
				   x509 -serial ("-" in front if negative) */
	char sha256[65];	/* lowercase hex SHA-256 of the DER */
	time_t not_before, not_after;
	int is_ca;		/* basicConstraints CA:TRUE */
};
int mdm_x509_inspect(X509 *c, struct mdm_x509_info *out, struct mdm_err *e);
/*
 * A fresh serial for c: 128 random bits, never zero, so unique by
 * construction in practice.  hex (may be NULL) gets it in uppercase hex.
 */
int mdm_x509_random_serial(X509 *c, char *hex, size_t hexlen,
    struct mdm_err *e);

/*
 * The one text form of a name (see above) into out.  A name longer than
 * outlen is cut at a character boundary and *truncated set (it may be
 * NULL when a cut name will do, as in a report).
 */
int mdm_x509_name_str(const X509_NAME *n, char *out, size_t outlen,
    int *truncated, struct mdm_err *e);
int mdm_x509_sha256_hex(X509 *c, char out[65], struct mdm_err *e);
/*
 * The first subject attribute with this NID (NID_userId for the APNs
 * topic, NID_commonName, ...) as UTF-8.  Absent: -1 with MDM_E_NOINPUT;
 * longer than outlen - 1 or holding a NUL: -1 with MDM_E_DATA.
 */
int mdm_x509_subject_attr(X509 *c, int nid, char *out, size_t outlen,
    struct mdm_err *e);
/* 1 if notAfter is before now + seconds (or unreadable), else 0. */
int mdm_x509_expires_within(X509 *c, time_t now, long long seconds);
/* 1 if the private key k belongs to c's public key, else 0. */
int mdm_x509_key_matches(X509 *c, EVP_PKEY *k);
/*
 * Verifies leaf against the single trust anchor ca (which need not be
 * self-signed), with optional untrusted intermediates, at time `at`
 * (0 = now), for any purpose.  Failure: MDM_E_CRYPTO with OpenSSL's
 * reason (X509_verify_cert_error_string).  All arguments borrowed.
 */
int mdm_x509_verify(X509 *leaf, X509 *ca, STACK_OF(X509) *untrusted,
    time_t at, struct mdm_err *e);

/*
 * PKCS#10 request for the APNs push certificate: subject CN=cn, C=country
 * (optional, two letters), emailAddress=email (optional), SHA-256.  *out
 * owned.
 */
int mdm_x509_make_csr(EVP_PKEY *key, const char *cn, const char *country,
    const char *email, X509_REQ **out, struct mdm_err *e);
/* Parses a PEM or DER PKCS#10 request; *out owned. */
int mdm_x509_csr_from_mem(const void *data, size_t len, X509_REQ **out,
    struct mdm_err *e);
int mdm_x509_csr_to_der(X509_REQ *r, struct mdm_buf *out, struct mdm_err *e);
int mdm_x509_csr_to_pem(X509_REQ *r, struct mdm_buf *out, struct mdm_err *e);
/*
 * RSA PKCS#1 v1.5 signature over SHA-256 of data, appended to sig: the
 * vendor signature of a push certificate request (protocol.md section 7).
 * key must be RSA.
 */
int mdm_x509_sign_sha256(EVP_PKEY *key, const void *data, size_t len,
    struct mdm_buf *sig, struct mdm_err *e);
/* Standard base64 without newlines (EVP_EncodeBlock), appended to out. */
int mdm_base64_encode(const void *data, size_t len, struct mdm_buf *out,
    struct mdm_err *e);
/*
 * Decodes standard base64, appended to out.  Whitespace anywhere is
 * skipped; any other character outside the alphabet, padding anywhere but
 * the end, or a length that is not a multiple of 4 is MDM_E_DATA.
 */
int mdm_base64_decode(const char *b64, size_t len, struct mdm_buf *out,
    struct mdm_err *e);

#endif
