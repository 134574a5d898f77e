/*
 * x509: certificates we make are checked by reading their extensions back
 * with OpenSSL, and, when /usr/bin/openssl exists, against what the
 * command line tool says about them.  Fixtures from ../shared/fixtures
 * are used when present and skipped otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tap.h"
#include "x509.h"

#define OPENSSL_BIN "/usr/bin/openssl"

static int
have_openssl(void)
{
	return access(OPENSSL_BIN, X_OK) == 0;
}

static int
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int rc = -1;

	if (f == NULL)
		return -1;
	if (fwrite(p, 1, n, f) == n)
		rc = 0;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* Reads a fixture (relative to $MDM_FIXTURES) into b; -1 if absent. */
static int
read_fixture(const char *rel, struct mdm_buf *b)
{
	const char *path = tap_fixture(rel);
	struct mdm_err e;

	mdm_buf_init(b, MDM_CAP_CERT);
	if (path == NULL)
		return -1;
	if (mdm_buf_read_file(b, path, &e) == -1) {
		tap_diag("%s", e.msg);
		return -1;
	}
	return 0;
}

/* First line printed by cmd, newline stripped; "" on failure. */
static void
run_line(const char *cmd, char *out, size_t outlen)
{
	FILE *p = popen(cmd, "r");

	out[0] = '\0';
	if (p == NULL)
		return;
	if (fgets(out, (int)outlen, p) == NULL)
		out[0] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	pclose(p);
}

/* "AB:CD:..." as openssl prints a fingerprint, to "abcd...". */
static void
fingerprint_to_hex(const char *fp, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *fp != '\0' && n + 1 < outlen; fp++) {
		if (*fp == ':')
			continue;
		out[n++] = (char)(*fp >= 'A' && *fp <= 'F' ? *fp - 'A' + 'a' :
		    *fp);
	}
	out[n] = '\0';
}

static int
has_ext_critical(X509 *c, int nid)
{
	int i = X509_get_ext_by_NID(c, nid, -1);

	if (i < 0)
		return -1;
	return X509_EXTENSION_get_critical(X509_get_ext(c, i));
}

static int
same_octets(const ASN1_OCTET_STRING *a, const ASN1_OCTET_STRING *b)
{
	return a != NULL && b != NULL && ASN1_OCTET_STRING_cmp(a, b) == 0;
}

static void
test_generated(void)
{
	static const char *const sans[] = { "mdm.example.com", "192.0.2.10",
	    "2001:db8::1" };
	struct mdm_x509_opts o;
	struct mdm_x509_info ci, li;
	struct mdm_err e;
	EVP_PKEY *ca_key = NULL, *key = NULL, *other_key = NULL;
	X509 *ca = NULL, *tls = NULL, *tls2 = NULL, *client = NULL,
	    *sign = NULL, *dep = NULL, *other_ca = NULL, *inter = NULL,
	    *leaf2 = NULL, *bad = NULL;
	STACK_OF(X509) *untrusted = NULL;
	BASIC_CONSTRAINTS *bc;
	GENERAL_NAMES *gens;
	AUTHORITY_KEYID *akid;
	time_t now = time(NULL);
	int crit = -1;

	ok(mdm_crypto_init(&e) == 0, "crypto init loads default and legacy");
	ok(mdm_crypto_init(&e) == 0, "crypto init is idempotent");

	ok(mdm_x509_gen_rsa(1024, &key, &e) == -1 && e.code == MDM_E_USAGE &&
	    key == NULL, "1024-bit rsa refused");
	ok(mdm_x509_gen_rsa(2048, &ca_key, &e) == 0 && ca_key != NULL,
	    "ca key generated");
	ok(mdm_x509_gen_rsa(2048, &key, &e) == 0, "leaf key generated");
	ok(mdm_x509_gen_rsa(2048, &other_key, &e) == 0, "other key generated");

	memset(&o, 0, sizeof(o));
	o.kind = MDM_X509_CA;
	o.common_name = "mdm test CA";
	o.organization = "mdm";
	o.days = 3650;
	ok(mdm_x509_self_sign(ca_key, &o, &ca, &e) == 0, "self-signed CA");
	if (ca == NULL) {
		tap_diag("%s", e.msg);
		exit(tap_done());
	}
	ok(mdm_x509_inspect(ca, &ci, &e) == 0, "inspect CA");
	is_str(ci.subject, "CN=mdm test CA,O=mdm",
	    "CA subject, RFC 2253 order");
	is_str(ci.issuer, ci.subject, "CA issuer is its subject");
	ok(ci.is_ca, "CA is_ca");
	ok(strlen(ci.serial) >= 16 && strlen(ci.serial) <= 32 &&
	    strspn(ci.serial, "0123456789ABCDEF") == strlen(ci.serial),
	    "serial is uppercase hex of up to 128 bits (%s)", ci.serial);
	ok(strlen(ci.sha256) == 64 &&
	    strspn(ci.sha256, "0123456789abcdef") == 64,
	    "sha256 is 64 lowercase hex digits");
	ok(ci.not_before <= now - 290 && ci.not_before >= now - 400,
	    "notBefore is five minutes back");
	ok(ci.not_after >= now + 3650LL * 86400 - 60 &&
	    ci.not_after <= now + 3650LL * 86400 + 60, "notAfter in 3650 days");
	bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
	ok(bc != NULL && bc->ca && bc->pathlen != NULL &&
	    ASN1_INTEGER_get(bc->pathlen) == 0 && crit == 1,
	    "CA: basicConstraints critical CA:TRUE pathlen 0");
	BASIC_CONSTRAINTS_free(bc);
	ok((X509_get_key_usage(ca) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN |
	    KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT)) == (KU_KEY_CERT_SIGN |
	    KU_CRL_SIGN | KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT) &&
	    has_ext_critical(ca, NID_key_usage) == 1,
	    "CA: keyUsage critical keyCertSign cRLSign (+ SCEP usages)");
	akid = X509_get_ext_d2i(ca, NID_authority_key_identifier, NULL, NULL);
	ok(akid != NULL && same_octets(akid->keyid,
	    X509_get0_subject_key_id(ca)), "CA: AKI keyid equals its SKI");
	AUTHORITY_KEYID_free(akid);
	ok(X509_get_signature_nid(ca) == NID_sha256WithRSAEncryption,
	    "CA signed with sha256WithRSAEncryption");
	ok(X509_get_version(ca) == X509_VERSION_3, "CA is v3");

	/* TLS server with a DNS, an IPv4 and an IPv6 SAN. */
	o.kind = MDM_X509_TLS_SERVER;
	o.common_name = "mdm.example.com";
	o.organization = NULL;
	o.dns_names = sans;
	o.n_dns_names = 3;
	o.days = 30;
	ok(mdm_x509_issue(ca, ca_key, key, &o, &tls, &e) == 0, "issue TLS");
	ok(mdm_x509_inspect(tls, &li, &e) == 0, "inspect TLS");
	is_str(li.subject, "CN=mdm.example.com", "TLS subject");
	is_str(li.issuer, ci.subject, "TLS issuer is the CA");
	ok(!li.is_ca, "TLS is not a CA");
	ok(strcmp(li.serial, ci.serial) != 0, "serials differ");
	ok((X509_get_extended_key_usage(tls) & (XKU_SSL_SERVER |
	    XKU_SSL_CLIENT)) == XKU_SSL_SERVER, "TLS: EKU serverAuth only");
	ok((X509_get_key_usage(tls) & (KU_DIGITAL_SIGNATURE |
	    KU_KEY_ENCIPHERMENT | KU_KEY_CERT_SIGN)) == (KU_DIGITAL_SIGNATURE |
	    KU_KEY_ENCIPHERMENT), "TLS: digitalSignature keyEncipherment");
	bc = X509_get_ext_d2i(tls, NID_basic_constraints, &crit, NULL);
	ok(bc != NULL && !bc->ca, "TLS: basicConstraints CA:FALSE");
	BASIC_CONSTRAINTS_free(bc);
	gens = X509_get_ext_d2i(tls, NID_subject_alt_name, NULL, NULL);
	ok(gens != NULL && sk_GENERAL_NAME_num(gens) == 3, "TLS: three SANs");
	if (gens != NULL && sk_GENERAL_NAME_num(gens) == 3) {
		static const unsigned char v4[] = { 192, 0, 2, 10 };
		GENERAL_NAME *g0 = sk_GENERAL_NAME_value(gens, 0);
		GENERAL_NAME *g1 = sk_GENERAL_NAME_value(gens, 1);
		GENERAL_NAME *g2 = sk_GENERAL_NAME_value(gens, 2);

		ok(g0->type == GEN_DNS && strcmp((const char *)
		    ASN1_STRING_get0_data(g0->d.dNSName), "mdm.example.com") ==
		    0, "SAN 1 is DNS mdm.example.com");
		ok(g1->type == GEN_IPADD && ASN1_STRING_length(g1->d.iPAddress)
		    == 4 && memcmp(ASN1_STRING_get0_data(g1->d.iPAddress), v4,
		    4) == 0, "SAN 2 is IP 192.0.2.10");
		ok(g2->type == GEN_IPADD &&
		    ASN1_STRING_length(g2->d.iPAddress) == 16,
		    "SAN 3 is an IPv6 address");
	} else
		tap_skip(3, "no SANs to look at");
	GENERAL_NAMES_free(gens);
	ok(X509_check_host(tls, "mdm.example.com", 0, 0, NULL) == 1 &&
	    X509_check_ip_asc(tls, "192.0.2.10", 0) == 1 &&
	    X509_check_ip_asc(tls, "2001:db8::1", 0) == 1 &&
	    X509_check_host(tls, "other.example.com", 0, 0, NULL) == 0,
	    "TLS: OpenSSL host and IP checks agree");
	akid = X509_get_ext_d2i(tls, NID_authority_key_identifier, NULL, NULL);
	ok(akid != NULL && same_octets(akid->keyid,
	    X509_get0_subject_key_id(ca)) && X509_get0_subject_key_id(tls) &&
	    !same_octets(X509_get0_subject_key_id(tls),
	    X509_get0_subject_key_id(ca)),
	    "TLS: AKI is the CA's SKI, own SKI differs");
	AUTHORITY_KEYID_free(akid);

	/* No DNS names: the CN is the SAN, since clients ignore the CN. */
	o.n_dns_names = 0;
	o.dns_names = NULL;
	ok(mdm_x509_issue(ca, ca_key, key, &o, &tls2, &e) == 0 &&
	    X509_check_host(tls2, "mdm.example.com", 0, 0, NULL) == 1,
	    "TLS without SANs names its CN in a SAN");
	o.common_name = "not a host name";
	ok(mdm_x509_issue(ca, ca_key, key, &o, &bad, &e) == -1 &&
	    e.code == MDM_E_USAGE && bad == NULL,
	    "TLS whose CN is no host name and no SANs refused");

	o.kind = MDM_X509_CLIENT;
	o.common_name = "device 0001";
	ok(mdm_x509_issue(ca, ca_key, key, &o, &client, &e) == 0,
	    "issue client");
	ok((X509_get_extended_key_usage(client) & (XKU_SSL_SERVER |
	    XKU_SSL_CLIENT)) == XKU_SSL_CLIENT, "client: EKU clientAuth only");
	ok(X509_get_ext_by_NID(client, NID_subject_alt_name, -1) < 0,
	    "client without SANs has no SAN extension");

	o.kind = MDM_X509_SIGNING;
	o.common_name = "mdm profile signing";
	ok(mdm_x509_issue(ca, ca_key, key, &o, &sign, &e) == 0,
	    "issue signing");
	ok((X509_get_extended_key_usage(sign) & (XKU_SMIME | XKU_CODE_SIGN |
	    XKU_SSL_SERVER)) == (XKU_SMIME | XKU_CODE_SIGN),
	    "signing: EKU emailProtection codeSigning");
	ok((X509_get_key_usage(sign) & (KU_DIGITAL_SIGNATURE |
	    KU_KEY_ENCIPHERMENT)) == KU_DIGITAL_SIGNATURE,
	    "signing: digitalSignature only");

	o.kind = MDM_X509_DEP;
	o.common_name = "depserver";
	o.days = 365;
	ok(mdm_x509_self_sign(other_key, &o, &dep, &e) == 0, "self-signed DEP");
	ok(dep != NULL && (X509_get_key_usage(dep) & (KU_DIGITAL_SIGNATURE |
	    KU_KEY_ENCIPHERMENT | KU_KEY_CERT_SIGN)) == (KU_DIGITAL_SIGNATURE |
	    KU_KEY_ENCIPHERMENT) && !(X509_get_extension_flags(dep) &
	    EXFLAG_CA) && X509_self_signed(dep, 1) == 1,
	    "DEP: keyEncipherment digitalSignature, not a CA, self-signed");

	/* Refusals. */
	o.kind = MDM_X509_CLIENT;
	o.common_name = NULL;
	ok(mdm_x509_issue(ca, ca_key, key, &o, &bad, &e) == -1 &&
	    e.code == MDM_E_USAGE, "no common name refused");
	o.common_name = "x";
	o.days = 0;
	ok(mdm_x509_issue(ca, ca_key, key, &o, &bad, &e) == -1 &&
	    e.code == MDM_E_USAGE, "zero days refused");
	o.days = 10;
	{
		static const char *const badsan[] = { "bad name,DNS:evil" };

		o.dns_names = badsan;
		o.n_dns_names = 1;
		ok(mdm_x509_issue(ca, ca_key, key, &o, &bad, &e) == -1 &&
		    e.code == MDM_E_USAGE && strstr(e.msg, "bad DNS name"),
		    "SAN with a comma and space refused: %s", e.msg);
		o.dns_names = NULL;
		o.n_dns_names = 0;
	}
	o.common_name = "0123456789012345678901234567890123456789"
	    "01234567890123456789012345";
	ok(mdm_x509_issue(ca, ca_key, key, &o, &bad, &e) == -1 &&
	    e.code == MDM_E_USAGE, "65-character CN refused: %s", e.msg);
	o.common_name = "x";
	ok(mdm_x509_issue(ca, other_key, key, &o, &bad, &e) == -1 &&
	    e.code == MDM_E_USAGE, "CA key that does not match refused");
	ok(mdm_x509_issue(tls, key, key, &o, &bad, &e) == -1 &&
	    e.code == MDM_E_USAGE, "non-CA issuer refused");
	ok(bad == NULL, "nothing returned on refusal");

	/* Chains. */
	ok(mdm_x509_verify(tls, ca, NULL, 0, &e) == 0, "TLS verifies to CA");
	ok(mdm_x509_verify(client, ca, NULL, 0, &e) == 0,
	    "client verifies to CA");
	ok(mdm_x509_verify(ca, ca, NULL, 0, &e) == 0, "CA verifies to itself");
	o.kind = MDM_X509_CA;
	o.common_name = "other CA";
	o.days = 100;
	ok(mdm_x509_self_sign(other_key, &o, &other_ca, &e) == 0, "other CA");
	ok(mdm_x509_verify(tls, other_ca, NULL, 0, &e) == -1 &&
	    e.code == MDM_E_CRYPTO && strstr(e.msg, "local issuer") != NULL,
	    "wrong CA fails: %s", e.msg);
	ok(mdm_x509_verify(tls, ca, NULL, now + 40 * 86400, &e) == -1 &&
	    e.code == MDM_E_CRYPTO && strstr(e.msg, "expired") != NULL,
	    "verify after notAfter fails: %s", e.msg);
	ok(mdm_x509_verify(tls, ca, NULL, now - 3600, &e) == -1 &&
	    strstr(e.msg, "not yet valid") != NULL,
	    "verify before notBefore fails: %s", e.msg);
	ok(mdm_x509_verify(tls, ca, NULL, now + 86400, &e) == 0,
	    "verify at a time inside the validity");

	/* pathlen 0: an intermediate under our CA must not be accepted. */
	o.kind = MDM_X509_CA;
	o.common_name = "intermediate";
	ok(mdm_x509_issue(ca, ca_key, other_key, &o, &inter, &e) == 0,
	    "issue an intermediate CA");
	o.kind = MDM_X509_CLIENT;
	o.common_name = "leaf under intermediate";
	ok(mdm_x509_issue(inter, other_key, key, &o, &leaf2, &e) == 0,
	    "issue a leaf under it");
	untrusted = sk_X509_new_null();
	sk_X509_push(untrusted, inter);
	ok(mdm_x509_verify(leaf2, ca, untrusted, 0, &e) == -1 &&
	    strstr(e.msg, "path length") != NULL,
	    "root pathlen 0 forbids the intermediate: %s", e.msg);
	ok(mdm_x509_verify(leaf2, inter, NULL, 0, &e) == 0,
	    "a non-self-signed CA works as the trust anchor");
	sk_X509_free(untrusted);

	/* Expiry. */
	ok(mdm_x509_expires_within(tls, now, 31LL * 86400) == 1,
	    "30-day cert expires within 31 days");
	ok(mdm_x509_expires_within(tls, now, 29LL * 86400) == 0,
	    "30-day cert does not expire within 29 days");
	ok(mdm_x509_expires_within(tls, now, 0) == 0, "not expired now");
	ok(mdm_x509_expires_within(tls, now, 9000000000000000000LL) == 1,
	    "huge window saturates instead of overflowing");

	ok(mdm_x509_key_matches(ca, ca_key) == 1, "CA key matches CA");
	ok(mdm_x509_key_matches(ca, key) == 0, "leaf key does not match CA");
	ok(mdm_x509_key_matches(tls, key) == 1, "leaf key matches leaf");

	/* The fingerprint is what the openssl tool prints. */
	if (have_openssl()) {
		char path[4200], cmd[8500], line[256], hex[100];
		struct mdm_buf pem;

		mdm_buf_init(&pem, MDM_CAP_CERT);
		snprintf(path, sizeof(path), "%s/tls.pem", tap_tmpdir());
		mdm_x509_cert_to_pem(tls, &pem, &e);
		write_file(path, pem.data, pem.len);
		snprintf(cmd, sizeof(cmd), OPENSSL_BIN " x509 -in '%s' -noout "
		    "-fingerprint -sha256", path);
		run_line(cmd, line, sizeof(line));
		fingerprint_to_hex(strchr(line, '=') ? strchr(line, '=') + 1 :
		    "", hex, sizeof(hex));
		is_str(li.sha256, hex, "sha256 equals openssl -fingerprint");
		snprintf(cmd, sizeof(cmd), OPENSSL_BIN " x509 -in '%s' -noout "
		    "-serial", path);
		run_line(cmd, line, sizeof(line));
		is_str(li.serial, strchr(line, '=') ? strchr(line, '=') + 1 :
		    "", "serial equals openssl -serial");
		snprintf(cmd, sizeof(cmd), OPENSSL_BIN " x509 -in '%s' -noout "
		    "-issuer -nameopt RFC2253,-esc_msb", path);
		run_line(cmd, line, sizeof(line));
		is_str(li.issuer, strchr(line, '=') ? strchr(line, '=') + 1 :
		    "", "issuer equals openssl -nameopt RFC2253,-esc_msb");
		mdm_buf_release(&pem);
	} else
		tap_skip(3, "no " OPENSSL_BIN);

	X509_free(ca);
	X509_free(tls);
	X509_free(tls2);
	X509_free(client);
	X509_free(sign);
	X509_free(dep);
	X509_free(other_ca);
	X509_free(inter);
	X509_free(leaf2);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other_key);
}

static void
test_io(void)
{
	struct mdm_x509_opts o;
	struct mdm_buf b, k;
	struct mdm_err e;
	EVP_PKEY *key = NULL, *k2 = NULL;
	X509 *ca = NULL, *ca2 = NULL, *x = NULL;
	STACK_OF(X509) *sk = NULL;
	char path[4200];
	BIO *bio;

	memset(&o, 0, sizeof(o));
	o.kind = MDM_X509_CA;
	o.common_name = "io CA \xc3\xa9t\xc3\xa9";	/* UTF-8 "été" */
	o.organization = "mdm";
	o.days = 10;
	if (mdm_x509_gen_rsa(2048, &key, &e) == -1 ||
	    mdm_x509_self_sign(key, &o, &ca, &e) == -1) {
		ok(0, "io setup: %s", e.msg);
		return;
	}
	{
		struct mdm_x509_info i;

		ok(mdm_x509_inspect(ca, &i, &e) == 0 &&
		    strcmp(i.subject, "CN=io CA \xc3\xa9t\xc3\xa9,O=mdm") == 0,
		    "UTF-8 subject printed unescaped: %s", i.subject);
	}

	mdm_buf_init(&b, MDM_CAP_CERT);
	ok(mdm_x509_cert_to_pem(ca, &b, &e) == 0 && strncmp((char *)b.data,
	    "-----BEGIN CERTIFICATE-----\n", 28) == 0, "cert to PEM");
	ok(mdm_x509_cert_from_mem(b.data, b.len, &x, &e) == 0 &&
	    X509_cmp(x, ca) == 0, "PEM round trip");
	X509_free(x);
	x = NULL;
	mdm_buf_reset(&b);
	ok(mdm_x509_cert_to_der(ca, &b, &e) == 0 && b.data[0] == 0x30,
	    "cert to DER");
	ok(mdm_x509_cert_from_mem(b.data, b.len, &x, &e) == 0 &&
	    X509_cmp(x, ca) == 0, "DER round trip");
	X509_free(x);
	x = NULL;
	ok(mdm_x509_cert_from_mem(b.data, b.len / 2, &x, &e) == -1 &&
	    e.code == MDM_E_DATA && x == NULL, "truncated DER: %s", e.msg);
	ok(mdm_x509_cert_from_mem("hello", 5, &x, &e) == -1 &&
	    e.code == MDM_E_DATA, "garbage: %s", e.msg);
	ok(mdm_x509_cert_from_mem("", 0, &x, &e) == -1 &&
	    e.code == MDM_E_DATA, "empty input: %s", e.msg);

	/* A bundle: key first (skipped), then two certificates. */
	o.common_name = "second";
	mdm_x509_self_sign(key, &o, &ca2, &e);
	mdm_buf_reset(&b);
	mdm_buf_init(&k, MDM_CAP_CERT);
	ok(mdm_x509_key_to_pem(key, &k, &e) == 0 && strncmp((char *)k.data,
	    "-----BEGIN PRIVATE KEY-----\n", 28) == 0,
	    "key to unencrypted PKCS#8 PEM");
	mdm_buf_append(&b, k.data, k.len, &e);
	mdm_x509_cert_to_pem(ca, &b, &e);
	mdm_x509_cert_to_pem(ca2, &b, &e);
	ok(mdm_x509_certs_from_mem(b.data, b.len, &sk, &e) == 0 &&
	    sk_X509_num(sk) == 2 && X509_cmp(sk_X509_value(sk, 0), ca) == 0 &&
	    X509_cmp(sk_X509_value(sk, 1), ca2) == 0,
	    "bundle gives both certs in order, key skipped");
	sk_X509_pop_free(sk, X509_free);
	sk = NULL;
	ok(mdm_x509_cert_from_mem(b.data, b.len, &x, &e) == 0 &&
	    X509_cmp(x, ca) == 0, "first cert of a bundle");
	X509_free(x);
	x = NULL;
	ok(mdm_x509_certs_from_mem(k.data, k.len, &sk, &e) == -1 &&
	    e.code == MDM_E_DATA && sk == NULL,
	    "PEM without certificates: %s", e.msg);
	/* Corrupt the base64 of the second certificate. */
	{
		char *second = strstr((char *)b.data + k.len + 30,
		    "-----BEGIN CERTIFICATE-----");

		if (second != NULL) {
			second[40] = '!';
			ok(mdm_x509_certs_from_mem(b.data, b.len, &sk, &e) ==
			    -1 && e.code == MDM_E_DATA,
			    "corrupt PEM block fails the bundle: %s", e.msg);
		} else
			ok(0, "bundle layout unexpected");
	}
	{
		/* Mdm input is capped: one byte over is refused unread. */
		ok(mdm_x509_cert_from_mem(b.data, MDM_CAP_CERT + 1, &x, &e) ==
		    -1 && e.code == MDM_E_TOOBIG, "over the cap: TOOBIG");
	}
	ok(mdm_x509_key_from_mem(k.data, k.len, NULL, &k2, &e) == 0 &&
	    EVP_PKEY_eq(k2, key) == 1, "key PEM round trip");
	EVP_PKEY_free(k2);
	k2 = NULL;
	mdm_buf_release_secret(&k);

	/* Encrypted PKCS#8, PEM and DER, and a DER PKCS#1 key. */
	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), NULL, 0,
	    NULL, (void *)"pw");
	{
		char *p;
		long n = BIO_get_mem_data(bio, &p);

		ok(mdm_x509_key_from_mem(p, (size_t)n, "pw", &k2, &e) == 0 &&
		    EVP_PKEY_eq(k2, key) == 1, "encrypted PKCS#8 PEM");
		EVP_PKEY_free(k2);
		k2 = NULL;
		ok(mdm_x509_key_from_mem(p, (size_t)n, "nope", &k2, &e) ==
		    -1 && e.code == MDM_E_CRYPTO && strstr(e.msg, "password"),
		    "wrong password: %s", e.msg);
		ok(mdm_x509_key_from_mem(p, (size_t)n, NULL, &k2, &e) == -1 &&
		    e.code == MDM_E_CRYPTO && strstr(e.msg, "password"),
		    "no password: %s", e.msg);
	}
	BIO_free(bio);
	bio = BIO_new(BIO_s_mem());
	i2d_PKCS8PrivateKey_bio(bio, key, EVP_aes_128_cbc(), NULL, 0, NULL,
	    (void *)"pw");
	{
		char *p;
		long n = BIO_get_mem_data(bio, &p);

		ok(mdm_x509_key_from_mem(p, (size_t)n, "pw", &k2, &e) == 0 &&
		    EVP_PKEY_eq(k2, key) == 1, "encrypted PKCS#8 DER");
		EVP_PKEY_free(k2);
		k2 = NULL;
		ok(mdm_x509_key_from_mem(p, (size_t)n, "nope", &k2, &e) ==
		    -1 && e.code == MDM_E_CRYPTO,
		    "encrypted PKCS#8 DER, wrong password: %s", e.msg);
	}
	BIO_free(bio);
	{
		unsigned char *der = NULL;
		int n = i2d_PrivateKey(key, &der);

		ok(n > 0 && mdm_x509_key_from_mem(der, (size_t)n, NULL, &k2,
		    &e) == 0 && EVP_PKEY_eq(k2, key) == 1, "PKCS#1 DER key");
		EVP_PKEY_free(k2);
		k2 = NULL;
		OPENSSL_clear_free(der, (size_t)(n > 0 ? n : 0));
	}
	ok(mdm_x509_key_from_mem("garbage", 7, NULL, &k2, &e) == -1 &&
	    e.code == MDM_E_DATA, "garbage key: %s", e.msg);
	mdm_buf_reset(&b);
	mdm_x509_cert_to_pem(ca, &b, &e);
	ok(mdm_x509_key_from_mem(b.data, b.len, NULL, &k2, &e) == -1 &&
	    e.code == MDM_E_DATA, "a certificate is not a key: %s", e.msg);
	/* Cert then key in one file, as NanoMDM's PUT /v1/pushcert takes. */
	mdm_x509_key_to_pem(key, &b, &e);
	mdm_x509_cert_to_pem(ca, &b, &e);
	ok(mdm_x509_key_from_mem(b.data, b.len, NULL, &k2, &e) == 0 &&
	    EVP_PKEY_eq(k2, key) == 1, "key found after a certificate");
	EVP_PKEY_free(k2);
	k2 = NULL;
	ok(mdm_x509_cert_from_mem(b.data, b.len, &x, &e) == 0 &&
	    X509_cmp(x, ca) == 0, "and the cert found before the key");
	X509_free(x);
	x = NULL;
	mdm_buf_release_secret(&b);
	mdm_x509_cert_to_pem(ca, &b, &e);

	/* Files. */
	snprintf(path, sizeof(path), "%s/ca.pem", tap_tmpdir());
	write_file(path, b.data, b.len);
	ok(mdm_x509_load_cert(path, &x, &e) == 0 && X509_cmp(x, ca) == 0,
	    "load cert from a file");
	X509_free(x);
	x = NULL;
	snprintf(path, sizeof(path), "%s/missing.pem", tap_tmpdir());
	ok(mdm_x509_load_cert(path, &x, &e) == -1 &&
	    e.code == MDM_E_NOINPUT && strstr(e.msg, "missing.pem") != NULL,
	    "missing file: %s", e.msg);
	snprintf(path, sizeof(path), "%s/junk.pem", tap_tmpdir());
	write_file(path, "junk", 4);
	ok(mdm_x509_load_cert(path, &x, &e) == -1 && e.code == MDM_E_DATA &&
	    strstr(e.msg, "junk.pem") != NULL, "bad file named: %s", e.msg);

	mdm_buf_release(&b);
	X509_free(ca);
	X509_free(ca2);
	EVP_PKEY_free(key);
}

static void
test_csr_sign_b64(void)
{
	struct mdm_buf b, s, d;
	struct mdm_err e;
	EVP_PKEY *key = NULL;
	X509_REQ *r = NULL, *r2 = NULL;
	const unsigned char *p;
	char cn[64];

	mdm_buf_init(&b, MDM_CAP_CERT);
	mdm_buf_init(&s, MDM_CAP_CERT);
	mdm_buf_init(&d, MDM_CAP_CERT);
	if (mdm_x509_gen_rsa(2048, &key, &e) == -1) {
		ok(0, "csr setup: %s", e.msg);
		return;
	}
	ok(mdm_x509_make_csr(key, "mdm push", "US", "admin@example.com", &r,
	    &e) == 0, "make CSR");
	ok(mdm_x509_csr_to_der(r, &b, &e) == 0, "CSR to DER");
	p = b.data;
	r2 = d2i_X509_REQ(NULL, &p, (long)b.len);
	ok(r2 != NULL && X509_REQ_verify(r2, key) == 1,
	    "DER CSR parses and its signature checks");
	ok(r2 != NULL && X509_REQ_get_signature_nid(r2) ==
	    NID_sha256WithRSAEncryption, "CSR is SHA-256 with RSA");
	ok(r2 != NULL && X509_NAME_get_text_by_NID(
	    X509_REQ_get_subject_name(r2), NID_pkcs9_emailAddress, cn,
	    sizeof(cn)) > 0 &&
	    strcmp(cn, "admin@example.com") == 0, "CSR emailAddress");
	ok(r2 != NULL && X509_NAME_get_text_by_NID(
	    X509_REQ_get_subject_name(r2), NID_countryName, cn,
	    sizeof(cn)) > 0 && strcmp(cn, "US") == 0,
	    "CSR country");
	X509_REQ_free(r2);
	r2 = NULL;
	ok(mdm_x509_csr_to_pem(r, &s, &e) == 0 && strncmp((char *)s.data,
	    "-----BEGIN CERTIFICATE REQUEST-----\n", 36) == 0, "CSR to PEM");
	ok(mdm_x509_csr_from_mem(s.data, s.len, &r2, &e) == 0 &&
	    X509_REQ_verify(r2, key) == 1, "PEM CSR round trip");
	X509_REQ_free(r2);
	r2 = NULL;
	ok(mdm_x509_csr_from_mem("nope", 4, &r2, &e) == -1 &&
	    e.code == MDM_E_DATA, "garbage CSR: %s", e.msg);
	ok(mdm_x509_make_csr(key, "x", "USA", NULL, &r2, &e) == -1 &&
	    e.code == MDM_E_USAGE, "three-letter country refused: %s", e.msg);
	X509_REQ_free(r);

	/* Vendor signature over the CSR DER. */
	mdm_buf_reset(&s);
	ok(mdm_x509_sign_sha256(key, b.data, b.len, &s, &e) == 0 &&
	    s.len == 256, "RSA-2048 signature is 256 bytes");
	{
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		EVP_PKEY_CTX *pctx = NULL;

		ok(EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key) ==
		    1 && EVP_PKEY_CTX_set_rsa_padding(pctx,
		    RSA_PKCS1_PADDING) > 0 && EVP_DigestVerify(md, s.data,
		    s.len, b.data, b.len) == 1,
		    "signature verifies as PKCS#1 v1.5 SHA-256");
		EVP_MD_CTX_free(md);
	}
	if (have_openssl()) {
		char kpath[4200], dpath[4200], spath[4200], cmd[13000];
		struct mdm_buf kp, os;

		mdm_buf_init(&kp, MDM_CAP_CERT);
		mdm_buf_init(&os, MDM_CAP_CERT);
		snprintf(kpath, sizeof(kpath), "%s/vendor.key", tap_tmpdir());
		snprintf(dpath, sizeof(dpath), "%s/csr.der", tap_tmpdir());
		snprintf(spath, sizeof(spath), "%s/csr.sig", tap_tmpdir());
		mdm_x509_key_to_pem(key, &kp, &e);
		write_file(kpath, kp.data, kp.len);
		write_file(dpath, b.data, b.len);
		snprintf(cmd, sizeof(cmd), OPENSSL_BIN " dgst -sha256 -sign "
		    "'%s' -out '%s' '%s'", kpath, spath, dpath);
		ok(system(cmd) == 0 && mdm_buf_read_file(&os, spath, &e) == 0 &&
		    os.len == s.len && memcmp(os.data, s.data, s.len) == 0,
		    "signature byte-identical to openssl dgst -sha256 -sign");
		mdm_buf_release_secret(&kp);
		mdm_buf_release(&os);
	} else
		tap_skip(1, "no " OPENSSL_BIN);
	EVP_PKEY_free(key);

	/* base64 */
	mdm_buf_reset(&s);
	ok(mdm_base64_encode("", 0, &s, &e) == 0 && s.len == 0, "b64 empty");
	mdm_base64_encode("f", 1, &s, &e);
	mdm_base64_encode("fo", 2, &s, &e);
	mdm_base64_encode("foo", 3, &s, &e);
	mdm_base64_encode("foob", 4, &s, &e);
	is_str((char *)s.data, "Zg==Zm8=Zm9vZm9vYg==", "b64 padding cases");
	mdm_buf_reset(&s);
	mdm_buf_reset(&b);
	{
		unsigned char raw[5000];
		size_t i, j;

		for (i = 0; i < sizeof(raw); i++)
			raw[i] = (unsigned char)(i * 7 + (i >> 8));
		mdm_base64_encode(raw, sizeof(raw), &s, &e);
		ok(s.len == (sizeof(raw) + 2) / 3 * 4 &&
		    memchr(s.data, '\n', s.len) == NULL,
		    "b64 of 5000 bytes: one line of the right length");
		/* Wrap at 64 with CRLF, as PEM and mail do. */
		for (i = 0; i < s.len; i += 64) {
			j = s.len - i < 64 ? s.len - i : 64;
			mdm_buf_append(&b, s.data + i, j, &e);
			mdm_buf_append(&b, "\r\n", 2, &e);
		}
		ok(mdm_base64_decode((char *)b.data, b.len, &d, &e) == 0 &&
		    d.len == sizeof(raw) && memcmp(d.data, raw,
		    sizeof(raw)) == 0, "b64 round trip through wrapped lines");
	}
	{
		static const char *const badb64[] = { "Zm9v!", "Zg=a", "Zg=",
		    "Z===", "Zm9vZg==Zm9v", "=Zg=", "Zm9", "Zg==Zg==" };
		size_t i;

		mdm_buf_reset(&d);
		mdm_buf_append_str(&d, "keep", &e);
		for (i = 0; i < sizeof(badb64) / sizeof(badb64[0]); i++)
			ok(mdm_base64_decode(badb64[i], strlen(badb64[i]), &d,
			    &e) == -1 && e.code == MDM_E_DATA && d.len == 4,
			    "b64 \"%s\" rejected, output untouched: %s",
			    badb64[i], e.msg);
		mdm_buf_reset(&d);
		ok(mdm_base64_decode(" Zm9v\nYg==\n", 11, &d, &e) == 0 &&
		    d.len == 4 && memcmp(d.data, "foob", 4) == 0,
		    "b64 with whitespace decodes");
	}
	mdm_buf_release(&b);
	mdm_buf_release(&s);
	mdm_buf_release(&d);
}

static void
test_fixtures(void)
{
	struct mdm_buf b, kb;
	struct mdm_x509_info i;
	struct mdm_err e;
	char uid[200];
	X509 *c = NULL, *pc = NULL;
	EVP_PKEY *k = NULL;
	STACK_OF(X509) *chain = NULL;

	if (tap_fixture("") == NULL) {
		tap_skip(27, "fixtures absent");
		return;
	}
	if (read_fixture("micromdm/pkg/crypto/testdata/mock_push_cert.pem",
	    &b) == 0 && mdm_x509_cert_from_mem(b.data, b.len, &c, &e) == 0) {
		ok(mdm_x509_subject_attr(c, NID_userId, uid, sizeof(uid), &e) ==
		    0, "mock push cert has a UID");
		is_str(uid, "com.apple.mgmt.External."
		    "18a16429-886b-41f1-9c30-2bd04ae4fc37",
		    "APNs topic from UID");
		ok(mdm_x509_subject_attr(c, NID_userId, uid, 10, &e) == -1 &&
		    e.code == MDM_E_DATA, "UID longer than the buffer refused");
		ok(mdm_x509_inspect(c, &i, &e) == 0, "inspect mock push cert");
		/* openssl x509 -noout -fingerprint -sha256, computed once */
		is_str(i.sha256, "6cd458db7882c7195caad6aec8010a2589a43c"
		    "37d9906b215771e4faa3bcbe8e", "fixture sha256 fingerprint");
		is_str(i.serial, "C7F665773B59FB4B", "fixture serial");
		is_str(i.subject, "C=US,CN=APSP:17a16429-886b-41f1-8c90-"
		    "3bd02ae9fc57,UID=com.apple.mgmt.External.18a16429-886b-"
		    "41f1-9c30-2bd04ae4fc37", "fixture subject");
	} else
		tap_skip(7, "mock_push_cert.pem");
	X509_free(c);
	c = NULL;
	mdm_buf_release(&b);

	if (read_fixture("micromdm/pkg/crypto/testdata/"
	    "mock_push_cert_no_uid.pem", &b) == 0 &&
	    mdm_x509_cert_from_mem(b.data, b.len, &c, &e) == 0)
		ok(mdm_x509_subject_attr(c, NID_userId, uid, sizeof(uid), &e) ==
		    -1 && e.code == MDM_E_NOINPUT && uid[0] == '\0',
		    "no UID: clean NOINPUT: %s", e.msg);
	else
		tap_skip(1, "mock_push_cert_no_uid.pem");
	X509_free(c);
	c = NULL;
	mdm_buf_release(&b);

	if (read_fixture("micromdm/pkg/crypto/testdata/"
	    "mock_push_cert_wrong_uid_prefix.pem", &b) == 0 &&
	    mdm_x509_cert_from_mem(b.data, b.len, &c, &e) == 0)
		ok(mdm_x509_subject_attr(c, NID_userId, uid, sizeof(uid), &e) ==
		    0 && strncmp(uid, "com.apple.mgmt.", 15) != 0,
		    "wrong UID prefix is visible to the caller: %s", uid);
	else
		tap_skip(1, "mock_push_cert_wrong_uid_prefix.pem");
	X509_free(c);
	c = NULL;
	mdm_buf_release(&b);

	if (read_fixture("nanomdm/test/e2e/testdata/push.pem", &b) == 0 &&
	    mdm_x509_cert_from_mem(b.data, b.len, &c, &e) == 0) {
		ok(mdm_x509_subject_attr(c, NID_userId, uid, sizeof(uid), &e) ==
		    0 && strcmp(uid, "com.apple.mgmt.External.e0bd1eac-1f17-"
		    "4c8e-8a63-dd17d3dd35d9") == 0, "real push cert topic");
		ok(mdm_x509_inspect(c, &i, &e) == 0 &&
		    i.not_after == 1644515087, "notAfter 2022-02-10 17:44:47Z");
		is_str(i.sha256, "21a714ede1cb5ccc5606e8a184e7c730088cc14f81dc"
		    "b26c2b507ba542a2ec88", "real push cert fingerprint");
		ok(mdm_x509_expires_within(c, time(NULL), 0) == 1,
		    "expired push cert reported as expiring");
		ok(mdm_x509_expires_within(c, 1644515087 - 86400, 3600) == 0,
		    "not expiring a day before its end with a 1h window");
	} else
		tap_skip(5, "push.pem");
	X509_free(c);
	c = NULL;
	mdm_buf_release(&b);

	/*
	 * Encrypted PKCS#1 (DES-EDE3-CBC), password "secret".  It is the
	 * vendor (provider) key, not the key of pushcert.pem: its public
	 * key differs, so only check that it is a usable RSA key.
	 */
	if (read_fixture("micromdm/server/testdata/ProviderPrivateKey.key",
	    &kb) == 0 && read_fixture("micromdm/server/testdata/pushcert.pem",
	    &b) == 0 && mdm_x509_cert_from_mem(b.data, b.len, &pc, &e) == 0) {
		struct mdm_buf sig;

		mdm_buf_init(&sig, 4096);
		ok(mdm_x509_key_from_mem(kb.data, kb.len, "secret", &k, &e) ==
		    0 && EVP_PKEY_is_a(k, "RSA") &&
		    mdm_x509_sign_sha256(k, "x", 1, &sig, &e) == 0,
		    "encrypted PKCS#1 key opens with its password and signs");
		mdm_buf_release(&sig);
		EVP_PKEY_free(k);
		k = NULL;
		ok(mdm_x509_key_from_mem(kb.data, kb.len, "wrong", &k, &e) ==
		    -1 && e.code == MDM_E_CRYPTO && k == NULL &&
		    strstr(e.msg, "wrong password") != NULL,
		    "wrong password: %s", e.msg);
		ok(mdm_x509_key_from_mem(kb.data, kb.len, NULL, &k, &e) ==
		    -1 && e.code == MDM_E_CRYPTO &&
		    strstr(e.msg, "no password") != NULL,
		    "missing password: %s", e.msg);
	} else
		tap_skip(3, "ProviderPrivateKey.key");
	mdm_buf_release_secret(&kb);
	mdm_buf_release(&b);

	/* PKCS#12 with RC2-40: needs the legacy provider. */
	if (read_fixture("micromdm/server/testdata/pushcert.p12", &kb) == 0) {
		ok(mdm_x509_pkcs12_from_mem(kb.data, kb.len, "secret", &c, &k,
		    &chain, &e) == 0, "p12 opens with its password");
		ok(c != NULL && k != NULL && mdm_x509_key_matches(c, k) &&
		    chain != NULL, "p12 gives cert, matching key and a chain");
		ok(c != NULL && pc != NULL && X509_cmp(c, pc) == 0,
		    "p12 cert is pushcert.pem");
		X509_free(c);
		EVP_PKEY_free(k);
		sk_X509_pop_free(chain, X509_free);
		c = NULL;
		k = NULL;
		chain = NULL;
		ok(mdm_x509_pkcs12_from_mem(kb.data, kb.len, "secret", &c, NULL,
		    NULL, &e) == 0 && c != NULL, "p12: cert only");
		X509_free(c);
		c = NULL;
		ok(mdm_x509_pkcs12_from_mem(kb.data, kb.len, "wrong", &c, &k,
		    &chain, &e) == -1 && e.code == MDM_E_CRYPTO && c == NULL &&
		    k == NULL && chain == NULL && strstr(e.msg, "password"),
		    "p12 wrong password: %s", e.msg);
		ok(mdm_x509_pkcs12_from_mem(kb.data, kb.len, NULL, &c, &k,
		    &chain, &e) == -1 && e.code == MDM_E_CRYPTO,
		    "p12 without password: %s", e.msg);
		ok(mdm_x509_pkcs12_from_mem(kb.data, kb.len / 2, "secret", &c,
		    &k, &chain, &e) == -1 && e.code == MDM_E_DATA,
		    "truncated p12: %s", e.msg);
	} else
		tap_skip(7, "pushcert.p12");
	mdm_buf_release_secret(&kb);
	X509_free(pc);
	pc = NULL;

	/* PEM "encrypted" with an empty password. */
	if (read_fixture("scep/testdata/testca/ca.key", &kb) == 0 &&
	    read_fixture("scep/testdata/testca/ca.pem", &b) == 0 &&
	    mdm_x509_cert_from_mem(b.data, b.len, &c, &e) == 0) {
		ok(mdm_x509_key_from_mem(kb.data, kb.len, "", &k, &e) == 0 &&
		    mdm_x509_key_matches(c, k),
		    "SCEP test CA key opens with the empty password");
		EVP_PKEY_free(k);
		k = NULL;
		ok(mdm_x509_key_from_mem(kb.data, kb.len, NULL, &k, &e) ==
		    -1 && e.code == MDM_E_CRYPTO, "and not without: %s", e.msg);
		ok(mdm_x509_inspect(c, &i, &e) == 0 && i.is_ca &&
		    strcmp(i.subject, "OU=CA,O=etcd-ca,C=USA") == 0,
		    "SCEP test CA subject %s", i.subject);
	} else
		tap_skip(3, "scep testca");
	X509_free(c);
	mdm_buf_release_secret(&kb);
	mdm_buf_release(&b);
}

int
main(void)
{
	test_generated();
	test_io();
	test_csr_sign_b64();
	test_fixtures();
	ERR_clear_error();
	return tap_done();
}
