/*
 * devauth: the Mdm-Signature header (detached CMS over the body, made here
 * with mdm_cms_sign and, when an openssl tool is on PATH, with `openssl
 * cms -sign`), every proxy header form of a certificate (RFC 9440, nginx's
 * escaped PEM, plain PEM, PEM with its newlines flattened), the values
 * that must fail cleanly, and the chain check with its hash.  A real
 * certificate from ../shared/fixtures goes through the header forms when
 * fixtures are present (they hold no Mdm-Signature sample).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <openssl/asn1.h>

#include "buf.h"
#include "cms.h"
#include "devauth.h"
#include "tap.h"
#include "x509.h"

static EVP_PKEY *ca_key, *other_key, *device_key;
static X509 *ca, *other_ca, *device;
static char dir[4096];

static const char body[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<plist version=\"1.0\"><dict><key>MessageType</key>"
    "<string>Authenticate</string></dict></plist>\n";

static void
setup(void)
{
	struct mdm_x509_opts o;
	struct mdm_err e;

	snprintf(dir, sizeof(dir), "%s", tap_tmpdir());
	memset(&o, 0, sizeof(o));
	o.days = 30;
	if (mdm_x509_gen_rsa(2048, &ca_key, &e) == -1 ||
	    mdm_x509_gen_rsa(2048, &other_key, &e) == -1 ||
	    mdm_x509_gen_rsa(2048, &device_key, &e) == -1)
		goto fail;
	o.kind = MDM_X509_CA;
	o.common_name = "devauth SCEP CA";
	if (mdm_x509_self_sign(ca_key, &o, &ca, &e) == -1)
		goto fail;
	o.common_name = "devauth other CA";
	if (mdm_x509_self_sign(other_key, &o, &other_ca, &e) == -1)
		goto fail;
	o.kind = MDM_X509_CLIENT;
	o.common_name = "devauth device identity";
	if (mdm_x509_issue(ca, ca_key, device_key, &o, &device, &e) == -1)
		goto fail;
	return;
fail:
	ok(0, "setup: %s", e.msg);
	exit(tap_done());
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

static const char *
tmp(const char *name)
{
	static char paths[8][4200];
	static int next;
	char *p = paths[next++ % 8];

	snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
	return p;
}

static int
run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
run(const char *fmt, ...)
{
	char cmd[16384];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		tap_diag("command failed (%d): %s", rc, cmd);
	return rc;
}

/* Base64 of a detached (or attached) signature of data by device. */
static void
sign_b64(const void *data, size_t len, int flags, struct mdm_buf *out)
{
	struct mdm_buf sig;
	struct mdm_err e;

	mdm_buf_init(&sig, MDM_CAP_CMS);
	mdm_buf_init(out, MDM_CAP_CMS);
	if (mdm_cms_sign(data, len, device, device_key, NULL, flags, &sig,
	    &e) == -1 || mdm_base64_encode(sig.data, sig.len, out, &e) == -1)
		tap_diag("sign: %s", e.msg);
	mdm_buf_release(&sig);
}

/* from_signature, and whether the signer came back as want. */
static int
sig_is(const char *value, const void *b, size_t len, X509 *want,
    struct mdm_err *e)
{
	X509 *got = NULL;
	int r;

	r = mdm_devauth_from_signature(value, b, len, &got, e);
	if (r == 0 && (got == NULL || X509_cmp(got, want) != 0))
		r = 1;
	if (r == -1 && got != NULL)
		r = 2;
	X509_free(got);
	return r;
}

/* from_signature's error code, or MDM_E_OK when it succeeded. */
static int
sig_err(const char *value, const void *b, size_t len)
{
	struct mdm_err e;
	X509 *got = NULL;

	e.code = MDM_E_OK;
	e.msg[0] = '\0';
	if (mdm_devauth_from_signature(value, b, len, &got, &e) == 0)
		e.code = MDM_E_OK;
	else if (got != NULL || e.msg[0] == '\0')
		e.code = MDM_E_SOFTWARE;	/* no output, a message */
	X509_free(got);
	return (int)e.code;
}

static void
test_source_names(void)
{
	is_str(mdm_devauth_source_name(MDM_DEVAUTH_TLS), "tls", "tls");
	is_str(mdm_devauth_source_name(MDM_DEVAUTH_SIGNATURE), "signature",
	    "signature");
	is_str(mdm_devauth_source_name(MDM_DEVAUTH_HEADER), "header",
	    "header");
	is_str(mdm_devauth_source_name(MDM_DEVAUTH_NONE), "none", "none");
	is_str(mdm_devauth_source_name((enum mdm_devauth_source)42), "none",
	    "unknown value");
}

static void
test_signature(void)
{
	struct mdm_buf b64, wrapped, big, der;
	struct mdm_err e;
	char *tampered;
	size_t i;
	int r;

	sign_b64(body, strlen(body), MDM_CMS_DETACHED, &b64);
	r = sig_is((char *)b64.data, body, strlen(body), device, &e);
	ok(r == 0, "detached signature verifies, signer is the device: %s",
	    r == -1 ? e.msg : "ok");

	/* The header folded like a MIME line, with CRLF, spaces and tabs. */
	mdm_buf_init(&wrapped, MDM_CAP_CMS);
	mdm_buf_append_str(&wrapped, " \t", &e);
	for (i = 0; i < b64.len; i += 64) {
		mdm_buf_append(&wrapped, b64.data + i,
		    b64.len - i < 64 ? b64.len - i : 64, &e);
		mdm_buf_append_str(&wrapped, i % 128 ? "\r\n" : "\n\t ", &e);
	}
	r = sig_is((char *)wrapped.data, body, strlen(body), device, &e);
	ok(r == 0, "whitespace inside the base64 tolerated: %s",
	    r == -1 ? e.msg : "ok");
	mdm_buf_release(&wrapped);

	tampered = strdup(body);
	tampered[40] ^= 1;
	is_int(sig_err((char *)b64.data, tampered, strlen(body)),
	    MDM_E_CRYPTO, "tampered body: crypto");
	is_int(sig_err((char *)b64.data, body, strlen(body) - 1),
	    MDM_E_CRYPTO, "truncated body: crypto");
	is_int(sig_err((char *)b64.data, NULL, 0), MDM_E_CRYPTO,
	    "no body: crypto");
	free(tampered);

	/* A flipped bit in the signature itself. */
	mdm_buf_init(&der, MDM_CAP_CMS);
	mdm_base64_decode((char *)b64.data, b64.len, &der, &e);
	der.data[der.len - 10] ^= 0x40;
	mdm_buf_release(&b64);
	mdm_buf_init(&b64, MDM_CAP_CMS);
	mdm_base64_encode(der.data, der.len, &b64, &e);
	r = sig_err((char *)b64.data, body, strlen(body));
	ok(r == MDM_E_CRYPTO || r == MDM_E_DATA,
	    "flipped signature bit refused (%d)", r);
	mdm_buf_release(&b64);

	/* An empty body can be signed, and NULL stands for it. */
	sign_b64("", 0, MDM_CMS_DETACHED, &b64);
	ok(sig_is((char *)b64.data, NULL, 0, device, &e) == 0,
	    "empty body signed, NULL body verifies");
	ok(sig_is((char *)b64.data, "", 0, device, &e) == 0,
	    "empty body signed, \"\" verifies");
	mdm_buf_release(&b64);

	/* Attached: refused even when the content is the body. */
	sign_b64(body, strlen(body), 0, &b64);
	is_int(sig_err((char *)b64.data, body, strlen(body)), MDM_E_DATA,
	    "attached signature refused");
	is_int(sig_err((char *)b64.data, NULL, 0), MDM_E_DATA,
	    "attached signature refused with no body");
	mdm_buf_release(&b64);

	/* Values that are not signatures. */
	is_int(sig_err("!!! not base64 !!!", body, strlen(body)), MDM_E_DATA,
	    "not base64: data");
	is_int(sig_err("QUJD", body, strlen(body)), MDM_E_DATA,
	    "base64 of garbage: data");
	is_int(sig_err("QUJ", body, strlen(body)), MDM_E_DATA,
	    "truncated base64: data");
	is_int(sig_err("", body, strlen(body)), MDM_E_NOINPUT,
	    "empty value: noinput");
	is_int(sig_err(" \r\n\t", body, strlen(body)), MDM_E_NOINPUT,
	    "whitespace value: noinput");
	is_int(sig_err(NULL, body, strlen(body)), MDM_E_NOINPUT,
	    "NULL value: noinput");
	mdm_buf_init(&b64, MDM_CAP_CERT);
	mdm_buf_reset(&der);
	mdm_x509_cert_to_der(device, &der, &e);
	mdm_base64_encode(der.data, der.len, &b64, &e);
	is_int(sig_err((char *)b64.data, body, strlen(body)), MDM_E_DATA,
	    "base64 of a certificate: data");
	mdm_buf_release(&b64);
	mdm_buf_release(&der);

	mdm_buf_init(&big, MDM_DEVAUTH_CAP_SIGNATURE + 8);
	for (i = 0; i < MDM_DEVAUTH_CAP_SIGNATURE + 4; i += 4)
		mdm_buf_append_str(&big, "QUJD", &e);
	is_int(sig_err((char *)big.data, body, strlen(body)), MDM_E_TOOBIG,
	    "value over the cap: toobig");
	big.len = MDM_DEVAUTH_CAP_SIGNATURE;
	big.data[big.len] = '\0';
	is_int(sig_err((char *)big.data, body, strlen(body)), MDM_E_DATA,
	    "value at the cap: decoded, then data");
	mdm_buf_release(&big);

	is_int(sig_err("QUJD", NULL, 5), MDM_E_USAGE,
	    "length without a body: usage");
}

/* nginx's $ssl_client_escaped_cert: every byte but [A-Za-z0-9-._~]. */
static void
escape(const char *s, struct mdm_buf *out)
{
	struct mdm_err e;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
			mdm_buf_append(out, s, 1, &e);
		else
			mdm_buf_printf(out, &e, "%%%02X", c);
	}
}

/* Every byte c in s replaced by r. */
static void
replace(struct mdm_buf *b, char c, char r)
{
	size_t i;

	for (i = 0; i < b->len; i++)
		if (b->data[i] == (unsigned char)c)
			b->data[i] = (unsigned char)r;
}

/* from_header, and whether the cert came back as want. */
static int
hdr_is(const char *value, X509 *want, struct mdm_err *e)
{
	X509 *got = NULL;
	int r;

	r = mdm_devauth_from_header(value, &got, e);
	if (r == 0 && (got == NULL || X509_cmp(got, want) != 0))
		r = 1;
	if (r == -1 && got != NULL)
		r = 2;
	X509_free(got);
	return r;
}

static int
hdr_err(const char *value)
{
	struct mdm_err e;
	X509 *got = NULL;

	e.msg[0] = '\0';
	if (mdm_devauth_from_header(value, &got, &e) == 0)
		e.code = MDM_E_OK;
	else if (got != NULL || e.msg[0] == '\0')
		e.code = MDM_E_SOFTWARE;
	X509_free(got);
	return (int)e.code;
}

/* The header forms of c all give c back; name says which cert. */
static void
header_forms(const char *name, X509 *c)
{
	struct mdm_buf der, pem, v;
	struct mdm_err e;
	int r;

	mdm_buf_init(&der, MDM_CAP_CERT);
	mdm_buf_init(&pem, MDM_CAP_CERT);
	mdm_buf_init(&v, MDM_CAP_CERT);
	mdm_x509_cert_to_der(c, &der, &e);
	mdm_x509_cert_to_pem(c, &pem, &e);

	mdm_buf_append_str(&v, ":", &e);
	mdm_base64_encode(der.data, der.len, &v, &e);
	mdm_buf_append_str(&v, ":", &e);
	r = hdr_is((char *)v.data, c, &e);
	ok(r == 0, "%s: RFC 9440 :base64: form: %s", name,
	    r == -1 ? e.msg : "ok");
	/* Pad-less byte sequences: RFC 8941 says accept them. */
	while (v.len > 2 && v.data[v.len - 2] == '=') {
		v.data[v.len - 2] = ':';
		v.data[--v.len] = '\0';
	}
	r = hdr_is((char *)v.data, c, &e);
	ok(r == 0, "%s: RFC 9440 form without padding: %s", name,
	    r == -1 ? e.msg : "ok");

	mdm_buf_reset(&v);
	escape((char *)pem.data, &v);
	ok(strstr((char *)v.data, "%0A") != NULL &&
	    strstr((char *)v.data, "\n") == NULL, "%s: escaped PEM looks "
	    "like nginx's", name);
	r = hdr_is((char *)v.data, c, &e);
	ok(r == 0, "%s: escaped PEM: %s", name, r == -1 ? e.msg : "ok");

	r = hdr_is((char *)pem.data, c, &e);
	ok(r == 0, "%s: plain PEM: %s", name, r == -1 ? e.msg : "ok");

	mdm_buf_reset(&v);
	mdm_buf_append(&v, pem.data, pem.len, &e);
	replace(&v, '\n', ' ');
	ok(strchr((char *)v.data, '\n') == NULL, "%s: one line", name);
	r = hdr_is((char *)v.data, c, &e);
	ok(r == 0, "%s: PEM with spaces for newlines: %s", name,
	    r == -1 ? e.msg : "ok");
	mdm_buf_reset(&v);
	mdm_buf_append(&v, pem.data, pem.len, &e);
	replace(&v, '\n', '\t');
	r = hdr_is((char *)v.data, c, &e);
	ok(r == 0, "%s: PEM with tabs for newlines: %s", name,
	    r == -1 ? e.msg : "ok");

	mdm_buf_release(&der);
	mdm_buf_release(&pem);
	mdm_buf_release(&v);
}

static void
test_header(void)
{
	struct mdm_buf der, pem, v, big;
	struct mdm_err e;
	X509 *got;
	size_t i;
	char *p;
	int r;

	header_forms("device", device);

	mdm_buf_init(&der, MDM_CAP_CERT);
	mdm_buf_init(&pem, MDM_CAP_CERT);
	mdm_buf_init(&v, MDM_CAP_CERT);
	mdm_x509_cert_to_der(device, &der, &e);
	mdm_x509_cert_to_pem(device, &pem, &e);

	/* Variations a proxy may produce. */
	for (i = 0; i < pem.len; i++) {
		if (pem.data[i] == '\n')
			mdm_buf_append_str(&v, "\r\n", &e);
		else
			mdm_buf_append(&v, pem.data + i, 1, &e);
	}
	ok(hdr_is((char *)v.data, device, &e) == 0, "PEM with CRLF");
	mdm_buf_reset(&v);
	escape((char *)pem.data, &v);
	for (p = (char *)v.data; *p != '\0'; p++)
		if (p[0] == '%' && isupper((unsigned char)p[2]))
			p[2] = (char)tolower((unsigned char)p[2]);
	ok(hdr_is((char *)v.data, device, &e) == 0,
	    "escaped PEM with lowercase hex");
	mdm_buf_reset(&v);
	mdm_buf_append_str(&v, " \t", &e);
	mdm_buf_append(&v, pem.data, pem.len, &e);
	mdm_buf_append_str(&v, "  ", &e);
	ok(hdr_is((char *)v.data, device, &e) == 0,
	    "PEM with spaces around the value");

	/* No certificate. */
	is_int(hdr_err(""), MDM_E_NOINPUT, "\"\": noinput");
	is_int(hdr_err("(null)"), MDM_E_NOINPUT, "(null): noinput");
	is_int(hdr_err("-"), MDM_E_NOINPUT, "-: noinput");
	is_int(hdr_err("  \t"), MDM_E_NOINPUT, "only whitespace: noinput");
	is_int(hdr_err(NULL), MDM_E_NOINPUT, "NULL: noinput");

	/* Not a certificate. */
	is_int(hdr_err("hello"), MDM_E_DATA, "plain text: data");
	is_int(hdr_err(":"), MDM_E_DATA, "a lone colon: data");
	is_int(hdr_err("::"), MDM_E_DATA, "empty RFC 9440 value: data");
	is_int(hdr_err(":!!!!:"), MDM_E_DATA, "RFC 9440 not base64: data");
	is_int(hdr_err(":QUJD:"), MDM_E_DATA, "RFC 9440 of garbage: data");
	is_int(hdr_err(":Q:"), MDM_E_DATA, "RFC 9440 of one base64 char: "
	    "data");
	is_int(hdr_err("-----BEGIN%20CERTIFICATE-----%0AMIIB%zz"),
	    MDM_E_DATA, "bad %-escape: data");
	is_int(hdr_err("-----BEGIN%20CERTIFICATE-----%0"), MDM_E_DATA,
	    "%-escape cut short: data");
	is_int(hdr_err("-----BEGIN CERTIFICATE-----\nQUJD\n"
	    "-----END CERTIFICATE-----\n"), MDM_E_DATA, "PEM of garbage: data");
	is_int(hdr_err("-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----"
	    "\n"), MDM_E_DATA, "markers the wrong way round: data");
	is_int(hdr_err("-----BEGIN CERTIFICATE-----\n"), MDM_E_DATA,
	    "PEM without an end: data");
	is_int(hdr_err("-----BEGIN CERTIFICATE-----END CERTIFICATE-----"),
	    MDM_E_DATA, "markers sharing their dashes: data");
	is_int(hdr_err("-----BEGIN CERTIFICATE----------END CERTIFICATE-----"),
	    MDM_E_DATA, "nothing between the markers: data");

	mdm_buf_reset(&v);
	mdm_buf_append(&v, pem.data, pem.len, &e);
	mdm_buf_append(&v, pem.data, pem.len, &e);
	is_int(hdr_err((char *)v.data), MDM_E_DATA, "two PEM certs: data");
	mdm_buf_reset(&v);
	mdm_buf_append_str(&v, "subject=CN=x\n", &e);
	mdm_buf_append(&v, pem.data, pem.len, &e);
	is_int(hdr_err((char *)v.data), MDM_E_DATA,
	    "text before the PEM: data");

	mdm_buf_reset(&v);
	mdm_x509_key_to_pem(device_key, &v, &e);
	is_int(hdr_err((char *)v.data), MDM_E_DATA, "a PEM key: data");
	mdm_buf_release_secret(&v);

	/* DER with a byte after it, and two DER certs: refused. */
	mdm_buf_init(&v, MDM_CAP_CERT);
	mdm_buf_append(&der, "\0", 1, &e);
	mdm_buf_append_str(&v, ":", &e);
	mdm_base64_encode(der.data, der.len, &v, &e);
	mdm_buf_append_str(&v, ":", &e);
	is_int(hdr_err((char *)v.data), MDM_E_DATA,
	    "RFC 9440 with a byte after the cert: data");
	der.len--;
	mdm_buf_reset(&pem);		/* now two DER certs in a row */
	mdm_buf_append(&pem, der.data, der.len, &e);
	mdm_buf_append(&pem, der.data, der.len, &e);
	mdm_buf_reset(&v);
	mdm_buf_append_str(&v, ":", &e);
	mdm_base64_encode(pem.data, pem.len, &v, &e);
	mdm_buf_append_str(&v, ":", &e);
	is_int(hdr_err((char *)v.data), MDM_E_DATA,
	    "RFC 9440 with two certs: data");

	mdm_buf_init(&big, MDM_DEVAUTH_CAP_HEADER + 8);
	mdm_buf_append_str(&big, ":", &e);
	for (i = 0; i < MDM_DEVAUTH_CAP_HEADER; i += 4)
		mdm_buf_append_str(&big, "QUJD", &e);
	mdm_buf_append_str(&big, ":", &e);
	is_int(hdr_err((char *)big.data), MDM_E_TOOBIG,
	    "header over the cap: toobig");
	mdm_buf_release(&big);

	r = mdm_devauth_from_header("hello", &got, &e);
	ok(r == -1 && got == NULL &&
	    strstr(e.msg, "client certificate header") != NULL,
	    "message names the header: %s", e.msg);

	mdm_buf_release(&der);
	mdm_buf_release(&pem);
	mdm_buf_release(&v);
}

static void
test_fixture_cert(void)
{
	const char *path = tap_fixture("micromdm/pkg/crypto/testdata/"
	    "mock_push_cert.pem");
	struct mdm_err e;
	X509 *c = NULL;

	if (path == NULL) {
		tap_skip(8, "no fixtures");
		return;
	}
	if (mdm_x509_load_cert(path, &c, &e) == -1) {
		ok(0, "load fixture: %s", e.msg);
		return;
	}
	header_forms("micromdm mock push cert", c);
	X509_free(c);
}

static void
test_verify(void)
{
	char hash[65], want[65];
	STACK_OF(X509) *untrusted;
	struct mdm_err e;
	time_t now = time(NULL);

	mdm_x509_sha256_hex(device, want, &e);
	ok(mdm_devauth_verify(device, ca, NULL, 0, hash, &e) == 0,
	    "device chains to its CA");
	is_str(hash, want, "hash is the SHA-256 of the DER");
	ok(strlen(hash) == 64 && strspn(hash, "0123456789abcdef") == 64,
	    "lowercase hex");

	untrusted = sk_X509_new_null();
	sk_X509_push(untrusted, other_ca);
	ok(mdm_devauth_verify(device, ca, untrusted, now, hash, &e) == 0 &&
	    strcmp(hash, want) == 0,
	    "unrelated untrusted certs do not get in the way");
	ok(mdm_devauth_verify(device, other_ca, untrusted, 0, hash, &e) ==
	    -1 && e.code == MDM_E_CRYPTO && hash[0] == '\0',
	    "an untrusted cert cannot stand in for the CA: %s", e.msg);
	sk_X509_free(untrusted);

	ok(mdm_devauth_verify(device, other_ca, NULL, 0, hash, &e) == -1 &&
	    e.code == MDM_E_CRYPTO && hash[0] == '\0',
	    "another CA: crypto: %s", e.msg);
	ok(mdm_devauth_verify(device, ca, NULL, now + 60 * 86400, hash,
	    &e) == -1 && e.code == MDM_E_CRYPTO &&
	    strstr(e.msg, "expired") != NULL && hash[0] == '\0',
	    "expired: crypto: %s", e.msg);
	ok(mdm_devauth_verify(device, ca, NULL, now - 2 * 86400, hash,
	    &e) == -1 && e.code == MDM_E_CRYPTO,
	    "not yet valid: crypto: %s", e.msg);
	ok(mdm_devauth_verify(other_ca, ca, NULL, 0, hash, &e) == -1 &&
	    e.code == MDM_E_CRYPTO, "a self-signed cert: crypto: %s", e.msg);
	ok(mdm_devauth_verify(ca, ca, NULL, 0, hash, &e) == 0,
	    "the CA itself chains (caller binds it to no device anyway)");
	ok(mdm_devauth_verify(NULL, ca, NULL, 0, hash, &e) == -1 &&
	    e.code == MDM_E_USAGE, "NULL cert: usage");
}

/* Signature to chain to hash: what mdm-serve does with a request. */
static void
test_end_to_end(void)
{
	struct mdm_buf b64;
	struct mdm_err e;
	char hash[65], want[65];
	X509 *signer = NULL;

	sign_b64(body, strlen(body), MDM_CMS_DETACHED, &b64);
	mdm_x509_sha256_hex(device, want, &e);
	ok(mdm_devauth_from_signature((char *)b64.data, body, strlen(body),
	    &signer, &e) == 0 &&
	    mdm_devauth_verify(signer, ca, NULL, 0, hash, &e) == 0 &&
	    strcmp(hash, want) == 0, "signature, chain, hash");
	X509_free(signer);
	mdm_buf_release(&b64);
}

/* The per-server cache: same answers as without it, and reuse. */
static void
test_cache(void)
{
	struct mdm_devauth_cache *c = NULL;
	struct mdm_buf b64, sig, chained;
	struct mdm_err e;
	STACK_OF(X509) *chain = NULL;
	X509 *a = NULL, *b = NULL, *d2 = NULL, *got = NULL;
	struct mdm_x509_opts o = { .kind = MDM_X509_CLIENT,
	    .common_name = "second device", .days = 30 };
	char hash[65], want[65], *tampered;

	ok(mdm_devauth_cache_new(&c, &e) == 0, "cache made");
	sign_b64(body, strlen(body), MDM_CMS_DETACHED, &b64);
	ok(mdm_devauth_from_signature_cached(c, (char *)b64.data, body,
	    strlen(body), &a, &e) == 0 && X509_cmp(a, device) == 0,
	    "cached: the signer is the device");
	ok(mdm_devauth_from_signature_cached(c, (char *)b64.data, body,
	    strlen(body), &b, &e) == 0 && a == b,
	    "again: the very certificate parsed the first time");
	tampered = strdup(body);
	tampered[3] = 'X';
	got = NULL;
	ok(mdm_devauth_from_signature_cached(c, (char *)b64.data, tampered,
	    strlen(body), &got, &e) == -1 && e.code == MDM_E_CRYPTO &&
	    got == NULL, "a tampered body still fails, certificate cached");
	free(tampered);
	b64.len /= 2;
	b64.data[b64.len] = '\0';
	ok(mdm_devauth_from_signature_cached(c, (char *)b64.data, body,
	    strlen(body), &got, &e) == -1 && got == NULL,
	    "a truncated signature fails cleanly");
	mdm_buf_release(&b64);
	sign_b64(body, strlen(body), 0, &b64);
	ok(mdm_devauth_from_signature_cached(c, (char *)b64.data, body,
	    strlen(body), &got, &e) == -1 && e.code == MDM_E_DATA,
	    "an attached signature is refused with the cache too");
	mdm_buf_release(&b64);

	/* a second device, and a signature carrying the CA as well */
	mdm_buf_init(&sig, MDM_CAP_CMS);
	mdm_buf_init(&chained, MDM_CAP_CMS);
	if (mdm_x509_issue(ca, ca_key, device_key, &o, &d2, &e) == -1 ||
	    (chain = sk_X509_new_null()) == NULL || !sk_X509_push(chain, ca) ||
	    mdm_cms_sign(body, strlen(body), d2, device_key, chain,
	    MDM_CMS_DETACHED, &sig, &e) == -1 ||
	    mdm_base64_encode(sig.data, sig.len, &chained, &e) == -1 ||
	    mdm_buf_append(&chained, "", 1, &e) == -1)
		tap_diag("second device: %s", e.msg);
	ok(mdm_devauth_from_signature_cached(c, (char *)chained.data, body,
	    strlen(body), &got, &e) == 0 && X509_cmp(got, d2) == 0,
	    "two certificates in one signature: the signer is found");
	X509_free(got);
	got = NULL;

	/* the chain check */
	mdm_x509_sha256_hex(device, want, &e);
	ok(mdm_devauth_verify_cached(c, device, ca, NULL, hash, &e) == 0 &&
	    strcmp(hash, want) == 0, "verify_cached: the hash");
	hash[0] = '\0';
	ok(mdm_devauth_verify_cached(c, device, ca, NULL, hash, &e) == 0 &&
	    strcmp(hash, want) == 0, "again, from the cache: the same hash");
	ok(mdm_devauth_verify_cached(c, device, other_ca, NULL, hash, &e) ==
	    0, "(a cache serves one CA: it answers from what it saw)");
	mdm_devauth_cache_free(c);
	c = NULL;
	mdm_devauth_cache_new(&c, &e);
	ok(mdm_devauth_verify_cached(c, device, other_ca, NULL, hash, &e) ==
	    -1 && e.code == MDM_E_CRYPTO, "another CA, fresh cache: refused");
	ok(mdm_devauth_verify_cached(c, device, other_ca, NULL, hash, &e) ==
	    -1, "and refused again: a failure is never cached");
	ok(mdm_devauth_verify_cached(NULL, device, ca, NULL, hash, &e) == 0,
	    "no cache: verifies as mdm_devauth_verify");

	sk_X509_free(chain);
	mdm_buf_release(&sig);
	mdm_buf_release(&chained);
	X509_free(a);
	X509_free(b);
	X509_free(d2);
	mdm_devauth_cache_free(c);
}

/*
 * der with its three outer lengths (ContentInfo, [0], SignedData) made
 * indefinite, as a streaming BER signer writes them; out owned.
 */
static int
to_ber(const unsigned char *der, size_t len, struct mdm_buf *out)
{
	const unsigned char *p = der, *q;
	long l;
	int tag, cls;

	mdm_buf_init(out, MDM_CAP_CMS);
	if (ASN1_get_object(&p, &l, &tag, &cls, (long)len) & 0x80 ||
	    mdm_buf_append(out, "\x30\x80", 2, NULL) == -1)
		return -1;
	q = p;
	if (ASN1_get_object(&q, &l, &tag, &cls, (long)(der + len - q)) & 0x80)
		return -1;
	q += l;				/* past the OID */
	if (mdm_buf_append(out, p, (size_t)(q - p), NULL) == -1 ||
	    mdm_buf_append(out, "\xa0\x80\x30\x80", 4, NULL) == -1)
		return -1;
	p = q;
	if (ASN1_get_object(&p, &l, &tag, &cls, (long)(der + len - p)) &
	    0x80 || ASN1_get_object(&p, &l, &tag, &cls,
	    (long)(der + len - p)) & 0x80)
		return -1;
	return mdm_buf_append(out, p, (size_t)(der + len - p), NULL) == -1 ||
	    mdm_buf_append(out, "\0\0\0\0\0\0", 6, NULL) == -1 ? -1 : 0;
}

/* Indefinite lengths around the certificates: cut out all the same. */
static void
test_cache_ber(void)
{
	struct mdm_devauth_cache *c = NULL;
	struct mdm_buf sig, ber, b64;
	struct mdm_err e;
	X509 *a = NULL, *b = NULL, *got = NULL;

	mdm_buf_init(&sig, MDM_CAP_CMS);
	mdm_buf_init(&b64, MDM_CAP_CMS);
	ok(mdm_devauth_cache_new(&c, &e) == 0 &&
	    mdm_cms_sign(body, strlen(body), device, device_key, NULL,
	    MDM_CMS_DETACHED, &sig, &e) == 0 &&
	    to_ber(sig.data, sig.len, &ber) == 0 &&
	    mdm_base64_encode(ber.data, ber.len, &b64, &e) == 0 &&
	    mdm_buf_append(&b64, "", 1, &e) == 0, "a BER signature made");
	ok(mdm_devauth_from_signature((char *)b64.data, body, strlen(body),
	    &got, &e) == 0 && X509_cmp(got, device) == 0,
	    "it verifies uncached (OpenSSL reads the BER)");
	ok(mdm_devauth_from_signature_cached(c, (char *)b64.data, body,
	    strlen(body), &a, &e) == 0 && X509_cmp(a, device) == 0,
	    "cached: verifies, signer is the device");
	ok(mdm_devauth_from_signature_cached(c, (char *)b64.data, body,
	    strlen(body), &b, &e) == 0 && a == b,
	    "again: the certificate came from the cache");
	X509_free(got);
	got = NULL;
	ok(mdm_devauth_from_signature_cached(c, (char *)b64.data, "tampered",
	    8, &got, &e) == -1 && e.code == MDM_E_CRYPTO && got == NULL,
	    "and a tampered body fails");
	X509_free(a);
	X509_free(b);
	mdm_devauth_cache_free(c);
	mdm_buf_release(&sig);
	mdm_buf_release(&ber);
	mdm_buf_release(&b64);
}

/* openssl cms -sign (detached by default) makes the header. */
static void
test_openssl_interop(void)
{
	struct mdm_buf b, b64;
	struct mdm_err e;
	char *tampered;
	int r;

	if (system("command -v openssl >/dev/null 2>&1") != 0) {
		tap_skip(4, "no openssl on PATH");
		return;
	}
	mdm_buf_init(&b, MDM_CAP_CERT);
	mdm_buf_init(&b64, MDM_CAP_CMS);
	mdm_x509_cert_to_pem(device, &b, &e);
	write_file(tmp("device.pem"), b.data, b.len);
	mdm_buf_release(&b);
	mdm_buf_init_secret(&b, MDM_CAP_CERT);
	mdm_x509_key_to_pem(device_key, &b, &e);
	write_file(tmp("device.key"), b.data, b.len);
	mdm_buf_release_secret(&b);
	write_file(tmp("body"), body, strlen(body));

	ok(run("openssl cms -sign -binary -outform DER -in '%s' -signer '%s' "
	    "-inkey '%s' -out '%s' 2>/dev/null", tmp("body"),
	    tmp("device.pem"), tmp("device.key"), tmp("sig.der")) == 0 &&
	    run("openssl base64 -in '%s' -out '%s'", tmp("sig.der"),
	    tmp("sig.b64")) == 0 &&
	    mdm_buf_read_file(&b64, tmp("sig.b64"), &e) == 0,
	    "openssl signs the body, detached");
	ok(strchr((char *)b64.data, '\n') != NULL,
	    "openssl base64 wraps its lines");
	r = sig_is((char *)b64.data, body, strlen(body), device, &e);
	ok(r == 0, "openssl's detached signature verifies, signer is the "
	    "device: %s", r == -1 ? e.msg : "ok");
	tampered = strdup(body);
	tampered[0] = ' ';
	is_int(sig_err((char *)b64.data, tampered, strlen(body)),
	    MDM_E_CRYPTO, "openssl's signature over a tampered body: crypto");
	free(tampered);
	mdm_buf_release(&b64);
}

int
main(void)
{
	setup();
	test_source_names();
	test_signature();
	test_header();
	test_fixture_cert();
	test_verify();
	test_end_to_end();
	test_cache();
	test_cache_ber();
	test_openssl_interop();
	X509_free(ca);
	X509_free(other_ca);
	X509_free(device);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(device_key);
	return tap_done();
}
