/*
 * cms: sign and verify round trips, the refusals (tampered, truncated,
 * wrong trust, detached/attached mix-ups), the pathological inputs in
 * tests/data/cms, interop with the openssl tool both ways when
 * /usr/bin/openssl exists, and the SCEP PKCSReq fixture (a SignedData
 * around a 3DES EnvelopedData around a CSR) when fixtures are present.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cms.h"
#include "tap.h"
#include "x509.h"

#define OPENSSL_BIN "/usr/bin/openssl"
/* Make the openssl tool load DES for the single-DES case. */
#define LEGACY " -provider legacy -provider default"

static EVP_PKEY *ca_key, *signer_key, *device_key, *other_key;
static X509 *ca, *signer, *device, *other_ca;
static char dir[4096];

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

/* tests/data/cms/name into b; -1 when the folder is not known. */
static int
read_data(const char *name, struct mdm_buf *b)
{
	const char *root = getenv("MDM_TEST_DATA");
	char path[4200];
	struct mdm_err e;

	mdm_buf_init(b, MDM_CAP_CMS);
	if (root == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/cms/%s", root, name);
	if (mdm_buf_read_file(b, path, &e) == -1) {
		tap_diag("%s", e.msg);
		return -1;
	}
	return 0;
}

static int
same_bytes(const struct mdm_buf *b, const void *p, size_t n)
{
	return b->len == n && (n == 0 || memcmp(b->data, p, n) == 0);
}

static int
is_released(const struct mdm_cms_verified *v)
{
	return v->signer == NULL && v->certs == NULL && v->content.len == 0 &&
	    v->content.data == NULL;
}

static void
setup(void)
{
	struct mdm_x509_opts o;
	struct mdm_err e;

	snprintf(dir, sizeof(dir), "%s", tap_tmpdir());
	memset(&o, 0, sizeof(o));
	o.days = 30;
	if (mdm_x509_gen_rsa(2048, &ca_key, &e) == -1 ||
	    mdm_x509_gen_rsa(2048, &signer_key, &e) == -1 ||
	    mdm_x509_gen_rsa(2048, &device_key, &e) == -1 ||
	    mdm_x509_gen_rsa(2048, &other_key, &e) == -1)
		goto fail;
	o.kind = MDM_X509_CA;
	o.common_name = "cms test CA";
	if (mdm_x509_self_sign(ca_key, &o, &ca, &e) == -1)
		goto fail;
	o.common_name = "cms other CA";
	if (mdm_x509_self_sign(other_key, &o, &other_ca, &e) == -1)
		goto fail;
	o.kind = MDM_X509_SIGNING;
	o.common_name = "cms profile signer";
	if (mdm_x509_issue(ca, ca_key, signer_key, &o, &signer, &e) == -1)
		goto fail;
	o.kind = MDM_X509_CLIENT;
	o.common_name = "cms device";
	if (mdm_x509_issue(ca, ca_key, device_key, &o, &device, &e) == -1)
		goto fail;
	return;
fail:
	ok(0, "setup: %s", e.msg);
	exit(tap_done());
}

static void
test_round_trips(void)
{
	static const char content[] = "<?xml version=\"1.0\"?>\n<plist>\r\n"
	    "</plist>\n\0binary\xff";
	static const char body[] = "{\"MessageType\":\"Authenticate\"}\n";
	struct mdm_cms_verified v;
	struct mdm_buf sig, big;
	struct mdm_err e;
	STACK_OF(X509) *chain = sk_X509_new_null();
	int r;

	mdm_buf_init(&sig, MDM_CAP_CMS);
	ok(mdm_cms_sign(content, sizeof(content), signer, signer_key, NULL, 0,
	    &sig, &e) == 0 && sig.len > 0 && sig.data[0] == 0x30,
	    "sign attached");
	ok(mdm_cms_verify(sig.data, sig.len, NULL, 0, NULL, &v, &e) == 0,
	    "verify attached, signature only");
	ok(same_bytes(&v.content, content, sizeof(content)),
	    "content bytes come back exactly (CR, LF, NUL, 0xff)");
	ok(v.signer != NULL && X509_cmp(v.signer, signer) == 0,
	    "signer is the signing cert");
	ok(v.certs != NULL && sk_X509_num(v.certs) == 1,
	    "message carries the signer cert");
	mdm_cms_verified_release(&v);
	ok(is_released(&v), "release leaves the struct empty");
	mdm_cms_verified_release(&v);

	ok(mdm_cms_verify(sig.data, sig.len, NULL, 0, ca, &v, &e) == 0,
	    "verify attached against the CA");
	mdm_cms_verified_release(&v);
	ok(mdm_cms_verify(sig.data, sig.len, NULL, 0, other_ca, &v, &e) ==
	    -1 && e.code == MDM_E_CRYPTO && is_released(&v),
	    "wrong trust CA fails: %s", e.msg);
	ok(mdm_cms_verify(sig.data, sig.len, content, sizeof(content), NULL,
	    &v, &e) == -1 && e.code == MDM_E_DATA,
	    "attached message with a detached body refused: %s", e.msg);

	/* The chain: the signer repeated in it is included once. */
	sk_X509_push(chain, signer);
	sk_X509_push(chain, ca);
	mdm_buf_reset(&sig);
	ok(mdm_cms_sign(content, sizeof(content), signer, signer_key, chain,
	    0, &sig, &e) == 0, "sign with a chain holding the signer");
	ok(mdm_cms_verify(sig.data, sig.len, NULL, 0, ca, &v, &e) == 0 &&
	    sk_X509_num(v.certs) == 2, "two certs in the message");
	mdm_cms_verified_release(&v);
	sk_X509_free(chain);

	ok(mdm_cms_sign(content, sizeof(content), signer, device_key, NULL,
	    0, &sig, &e) == -1 && e.code == MDM_E_USAGE,
	    "key not matching the signer refused: %s", e.msg);
	ok(mdm_cms_sign(content, sizeof(content), signer, signer_key, NULL,
	    4, &sig, &e) == -1 && e.code == MDM_E_USAGE,
	    "unknown flag refused");

	/* Detached, as an Mdm-Signature header: a device identity signs. */
	mdm_buf_reset(&sig);
	ok(mdm_cms_sign(body, strlen(body), device, device_key, NULL,
	    MDM_CMS_DETACHED, &sig, &e) == 0, "sign detached");
	ok(mdm_cms_verify(sig.data, sig.len, body, strlen(body), NULL, &v,
	    &e) == 0 && v.content.len == 0 && X509_cmp(v.signer, device) == 0,
	    "verify detached, no content returned");
	mdm_cms_verified_release(&v);
	r = mdm_cms_verify(sig.data, sig.len, body, strlen(body), ca, &v, &e);
	ok(r == 0, "clientAuth-only identity chains for any purpose: %s",
	    r ? e.msg : "ok");
	mdm_cms_verified_release(&v);
	ok(mdm_cms_verify(sig.data, sig.len, body, strlen(body) - 1, NULL,
	    &v, &e) == -1 && e.code == MDM_E_CRYPTO,
	    "detached with a shortened body fails: %s", e.msg);
	ok(mdm_cms_verify(sig.data, sig.len, "{\"MessageType\":\"Authenticatf\""
	    "}\n", strlen(body), NULL, &v, &e) == -1 && e.code == MDM_E_CRYPTO,
	    "detached with one byte changed fails");
	ok(mdm_cms_verify(sig.data, sig.len, NULL, 0, NULL, &v, &e) == -1 &&
	    e.code == MDM_E_DATA, "detached message without a body refused: "
	    "%s", e.msg);
	ok(mdm_cms_verify(sig.data, sig.len, body, strlen(body), other_ca, &v,
	    &e) == -1 && e.code == MDM_E_CRYPTO, "detached, wrong CA: %s",
	    e.msg);

	/* Empty content, both ways. */
	mdm_buf_reset(&sig);
	ok(mdm_cms_sign("", 0, signer, signer_key, NULL, 0, &sig, &e) == 0 &&
	    mdm_cms_verify(sig.data, sig.len, NULL, 0, ca, &v, &e) == 0 &&
	    v.content.len == 0, "empty attached content");
	mdm_cms_verified_release(&v);
	mdm_buf_reset(&sig);
	ok(mdm_cms_sign(NULL, 0, signer, signer_key, NULL, MDM_CMS_DETACHED,
	    &sig, &e) == 0 && mdm_cms_verify(sig.data, sig.len, "", 0, ca, &v,
	    &e) == 0, "empty detached body");
	mdm_cms_verified_release(&v);

	/* A megabyte, attached. */
	mdm_buf_init(&big, MDM_CAP_CMS);
	{
		static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz\r\n";
		size_t i;

		for (i = 0; i < (1u << 20); i++)
			mdm_buf_append(&big, &alphabet[i % 28], 1, &e);
	}
	mdm_buf_reset(&sig);
	ok(mdm_cms_sign(big.data, big.len, signer, signer_key, NULL, 0, &sig,
	    &e) == 0 && mdm_cms_verify(sig.data, sig.len, NULL, 0, ca, &v,
	    &e) == 0 && same_bytes(&v.content, big.data, big.len),
	    "one megabyte attached round trip");
	mdm_cms_verified_release(&v);
	mdm_buf_release(&big);
	mdm_buf_release(&sig);
}

static void
test_damage(void)
{
	static const char content[] = "damage me";
	struct mdm_cms_verified v;
	struct mdm_buf sig;
	struct mdm_err e;
	unsigned char *copy;
	size_t i, cut_ok = 0, flips_ok = 0, trusted_ok = 0, content_at;
	int content_flip_fails = 1;

	mdm_buf_init(&sig, MDM_CAP_CMS);
	if (mdm_cms_sign(content, strlen(content), signer, signer_key, NULL, 0,
	    &sig, &e) == -1) {
		ok(0, "damage setup: %s", e.msg);
		return;
	}
	/* Every proper prefix is refused as data, none crashes. */
	for (i = 0; i < sig.len; i++) {
		if (mdm_cms_verify(sig.data, i, NULL, 0, NULL, &v, &e) == -1 &&
		    (e.code == MDM_E_DATA || e.code == MDM_E_CRYPTO) &&
		    is_released(&v))
			cut_ok++;
		mdm_cms_verified_release(&v);
	}
	is_int((long long)cut_ok, (long long)sig.len,
	    "every truncation fails cleanly");

	/* Flip every byte: none crashes; every flip in the content fails. */
	copy = malloc(sig.len);
	content_at = 0;
	for (i = 0; i + strlen(content) <= sig.len; i++)
		if (memcmp(sig.data + i, content, strlen(content)) == 0)
			content_at = i;
	for (i = 0; i < sig.len; i++) {
		int r;

		memcpy(copy, sig.data, sig.len);
		copy[i] ^= 0x5a;
		r = mdm_cms_verify(copy, sig.len, NULL, 0, NULL, &v, &e);
		if (r == 0)
			flips_ok++;
		mdm_cms_verified_release(&v);
		if (mdm_cms_verify(copy, sig.len, NULL, 0, ca, &v, &e) == 0)
			trusted_ok++;
		if (r == 0 && i >= content_at && i < content_at +
		    strlen(content))
			content_flip_fails = 0;
		if (r == -1 && !is_released(&v))
			content_flip_fails = 0;
		mdm_cms_verified_release(&v);
	}
	ok(content_at > 0 && content_flip_fails,
	    "every content flip fails; %zu of %zu flips elsewhere still verify "
	    "without trust (in the unsigned cert, or versions)", flips_ok,
	    sig.len);
	/*
	 * With trust the cert is checked too; OpenSSL ignores only the
	 * SignedData and SignerInfo version numbers.  A changed
	 * eContentType is caught by the content-type attribute check.
	 */
	ok(trusted_ok <= 2, "with trust, %zu flips verify (at most the two "
	    "version numbers)", trusted_ok);
	free(copy);

	/* Bytes after the message, and the cap. */
	mdm_buf_append(&sig, "\0", 1, &e);
	ok(mdm_cms_verify(sig.data, sig.len, NULL, 0, NULL, &v, &e) == -1 &&
	    e.code == MDM_E_DATA, "trailing byte refused: %s", e.msg);
	ok(mdm_cms_verify(NULL, 0, NULL, 0, NULL, &v, &e) == -1 &&
	    e.code == MDM_E_DATA, "no input: %s", e.msg);
	{
		unsigned char *huge = calloc(1, MDM_CAP_CMS + 1);

		huge[0] = 0x30;
		ok(huge != NULL && mdm_cms_verify(huge, MDM_CAP_CMS + 1, NULL,
		    0, NULL, &v, &e) == -1 && e.code == MDM_E_TOOBIG,
		    "over the cap: %s", e.msg);
		free(huge);
	}
	mdm_buf_release(&sig);
}

static void
test_data_files(void)
{
	static const struct {
		const char *name;
		enum mdm_errc code;
	} bad[] = {
		{ "tampered.der", MDM_E_CRYPTO },
		{ "content-type-mismatch.der", MDM_E_CRYPTO },
		{ "md5-digest.der", MDM_E_CRYPTO },
		{ "truncated.der", MDM_E_DATA },
		{ "garbage.bin", MDM_E_DATA },
		{ "trailing.der", MDM_E_DATA },
		{ "two-signers.der", MDM_E_DATA },
		{ "certs-only.der", MDM_E_DATA },
		{ "enveloped.der", MDM_E_DATA },
		{ "huge-length.der", MDM_E_DATA },
		{ "deep-nesting.der", MDM_E_DATA },
		{ "detached.der", MDM_E_DATA },	/* no body given */
	};
	struct mdm_cms_verified v;
	struct mdm_buf b, want;
	struct mdm_err e;
	size_t i;
	int r;

	if (getenv("MDM_TEST_DATA") == NULL) {
		tap_skip(17, "MDM_TEST_DATA not set");
		return;
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (read_data(bad[i].name, &b) == -1) {
			ok(0, "read %s", bad[i].name);
			continue;
		}
		ok(mdm_cms_verify(b.data, b.len, NULL, 0, NULL, &v, &e) == -1 &&
		    e.code == bad[i].code && is_released(&v),
		    "%s refused as %s: %s", bad[i].name,
		    mdm_err_code_name(bad[i].code), e.msg);
		mdm_buf_release(&b);
	}

	/* BER with indefinite lengths and a chunked eContent. */
	mdm_buf_init(&want, MDM_CAP_CMS);
	for (i = 0; i < 140; i++)
		mdm_buf_printf(&want, &e, "line %04zu of the mdm ber test\n",
		    i);
	if (read_data("ber-indefinite.der", &b) == 0) {
		ok(b.data[1] == 0x80,
		    "ber-indefinite.der is indefinite-length");
		r = mdm_cms_verify(b.data, b.len, NULL, 0, NULL, &v, &e);
		ok(r == 0, "BER indefinite-length verifies: %s",
		    r ? e.msg : "ok");
		ok(same_bytes(&v.content, want.data, want.len),
		    "BER content (two OCTET STRING chunks) joined exactly");
		mdm_cms_verified_release(&v);
	} else
		tap_skip(3, "ber-indefinite.der");
	mdm_buf_release(&b);
	mdm_buf_release(&want);

	if (read_data("detached.der", &b) == 0) {
		ok(mdm_cms_verify(b.data, b.len, "mdm detached body\n", 18,
		    NULL, &v, &e) == 0, "detached.der verifies with its body");
		mdm_cms_verified_release(&v);
		ok(mdm_cms_verify(b.data, b.len, "mdm detached body!", 18, NULL,
		    &v, &e) == -1 && e.code == MDM_E_CRYPTO,
		    "detached.der with another body fails");
	} else
		tap_skip(2, "detached.der");
	mdm_buf_release(&b);
}

/* mdm signs, the openssl tool verifies and gives back the same bytes. */
static void
interop_mdm_to_openssl(const char *name, const void *content, size_t len)
{
	struct mdm_buf sig, back;
	struct mdm_err e;

	mdm_buf_init(&sig, MDM_CAP_CMS);
	mdm_buf_init(&back, MDM_CAP_CMS);
	ok(mdm_cms_sign(content, len, signer, signer_key, NULL, 0, &sig,
	    &e) == 0 && write_file(tmp("mdm.der"), sig.data, sig.len) == 0,
	    "%s: mdm signs", name);
	ok(run(OPENSSL_BIN " cms -verify -inform DER -binary -noverify -in "
	    "'%s' -out '%s' 2>/dev/null", tmp("mdm.der"), tmp("mdm.out")) ==
	    0 && mdm_buf_read_file(&back, tmp("mdm.out"), &e) == 0 &&
	    same_bytes(&back, content, len),
	    "%s: openssl cms -verify -noverify gives the same bytes", name);
	ok(run(OPENSSL_BIN " cms -verify -inform DER -binary -CAfile '%s' "
	    "-in '%s' -out /dev/null 2>/dev/null", tmp("ca.pem"),
	    tmp("mdm.der")) == 0,
	    "%s: openssl cms -verify accepts the chain to our CA", name);
	mdm_buf_release(&sig);
	mdm_buf_release(&back);
}

/* The openssl tool signs, mdm verifies and gives back the same bytes. */
static void
interop_openssl_to_mdm(const char *name, const void *content, size_t len,
    const char *extra)
{
	struct mdm_cms_verified v;
	struct mdm_buf sig;
	struct mdm_err e;
	int r;

	mdm_buf_init(&sig, MDM_CAP_CMS);
	write_file(tmp("in.bin"), content, len);
	ok(run(OPENSSL_BIN " %s -in '%s' -signer '%s' -inkey '%s' -out '%s' "
	    "2>/dev/null", extra, tmp("in.bin"), tmp("signer.pem"),
	    tmp("signer.key"), tmp("ossl.der")) == 0 &&
	    mdm_buf_read_file(&sig, tmp("ossl.der"), &e) == 0,
	    "%s: openssl signs", name);
	r = mdm_cms_verify(sig.data, sig.len, NULL, 0, ca, &v, &e);
	ok(r == 0 && same_bytes(&v.content, content, len),
	    "%s: mdm verifies against the CA, same bytes: %s", name,
	    r ? e.msg : "ok");
	mdm_cms_verified_release(&v);
	mdm_buf_release(&sig);
}

static void
test_interop(void)
{
	static const char lf[] = "<plist>\n<dict/>\n</plist>\n";
	static const char crlf[] = "<plist>\r\n<dict/>\r\n</plist>\r\n";
	static const char body[] = "<plist><dict/></plist>\n";
	struct mdm_cms_verified v;
	struct mdm_buf b;
	struct mdm_err e;

	if (!have_openssl()) {
		tap_skip(16, "no " OPENSSL_BIN);
		return;
	}
	mdm_buf_init(&b, MDM_CAP_CERT);
	mdm_x509_cert_to_pem(ca, &b, &e);
	write_file(tmp("ca.pem"), b.data, b.len);
	mdm_buf_reset(&b);
	mdm_x509_cert_to_pem(signer, &b, &e);
	write_file(tmp("signer.pem"), b.data, b.len);
	mdm_buf_release(&b);
	mdm_x509_key_to_pem(signer_key, &b, &e);
	write_file(tmp("signer.key"), b.data, b.len);
	mdm_buf_release_secret(&b);
	mdm_buf_init(&b, MDM_CAP_CMS);

	interop_mdm_to_openssl("LF file", lf, strlen(lf));
	interop_mdm_to_openssl("CRLF file", crlf, strlen(crlf));

	interop_openssl_to_mdm("cms -nodetach -binary, LF", lf, strlen(lf),
	    "cms -sign -nodetach -binary -outform DER");
	interop_openssl_to_mdm("cms -nodetach -binary, CRLF", crlf,
	    strlen(crlf), "cms -sign -nodetach -binary -outform DER");
	interop_openssl_to_mdm("cms -stream (BER), CRLF", crlf, strlen(crlf),
	    "cms -sign -nodetach -binary -stream -outform DER");
	interop_openssl_to_mdm("smime -nodetach -binary", lf, strlen(lf),
	    "smime -sign -nodetach -binary -outform DER");

	/* Detached both ways. */
	write_file(tmp("body.bin"), body, strlen(body));
	mdm_cms_sign(body, strlen(body), signer, signer_key, NULL,
	    MDM_CMS_DETACHED, &b, &e);
	write_file(tmp("det.der"), b.data, b.len);
	ok(run(OPENSSL_BIN " cms -verify -inform DER -binary -noverify "
	    "-content '%s' -in '%s' -out /dev/null 2>/dev/null",
	    tmp("body.bin"), tmp("det.der")) == 0,
	    "openssl verifies an mdm detached signature");
	mdm_buf_reset(&b);
	ok(run(OPENSSL_BIN " cms -sign -binary -outform DER -in '%s' "
	    "-signer '%s' -inkey '%s' -out '%s' 2>/dev/null", tmp("body.bin"),
	    tmp("signer.pem"), tmp("signer.key"), tmp("odet.der")) == 0 &&
	    mdm_buf_read_file(&b, tmp("odet.der"), &e) == 0 &&
	    mdm_cms_verify(b.data, b.len, body, strlen(body), ca, &v, &e) == 0,
	    "mdm verifies an openssl detached signature");
	mdm_cms_verified_release(&v);
	mdm_buf_release(&b);
}

static void
check_decrypt(const char *what, const char *args, const char *plain)
{
	struct mdm_buf b, out;
	struct mdm_err e;

	mdm_buf_init(&b, MDM_CAP_CMS);
	mdm_buf_init(&out, MDM_CAP_CMS);
	int r = -1;

	mdm_err_clear(&e);
	if (run(OPENSSL_BIN " cms -encrypt -binary %s -in '%s' -out '%s' '%s' "
	    "2>/dev/null", args, tmp("plain.bin"), tmp("env.out"),
	    tmp("device.pem")) == 0 &&
	    mdm_buf_read_file(&b, tmp("env.out"), &e) == 0)
		r = mdm_cms_decrypt(b.data, b.len, device, device_key, &out,
		    &e);
	ok(r == 0 && same_bytes(&out, plain, strlen(plain)),
	    "decrypt %s: %s", what, r ? e.msg : "ok");
	mdm_buf_release(&b);
	mdm_buf_release(&out);
}

static void
test_decrypt(void)
{
	static const char plain[] = "secret\r\nplaintext\n";
	struct mdm_buf b, out;
	struct mdm_err e;

	mdm_buf_init(&b, MDM_CAP_CMS);
	mdm_buf_init(&out, MDM_CAP_CMS);
	if (have_openssl()) {
		mdm_x509_cert_to_pem(device, &b, &e);
		write_file(tmp("device.pem"), b.data, b.len);
		write_file(tmp("plain.bin"), plain, strlen(plain));
		check_decrypt("AES-256 DER", "-aes256 -outform DER", plain);
		check_decrypt("AES-128 DER", "-aes128 -outform DER", plain);
		check_decrypt("3DES DER", "-des3 -outform DER", plain);
		check_decrypt("single DES DER (legacy)", "-des -outform DER"
		    LEGACY, plain);
		check_decrypt("AES-256 PEM", "-aes256 -outform PEM", plain);
		check_decrypt("AES-256 S/MIME", "-aes256", plain);

		mdm_buf_reset(&b);
		ok(run(OPENSSL_BIN " cms -encrypt -binary -aes256 -outform DER "
		    "-in '%s' -out '%s' '%s' 2>/dev/null", tmp("plain.bin"),
		    tmp("env.der"), tmp("device.pem")) == 0 &&
		    mdm_buf_read_file(&b, tmp("env.der"), &e) == 0,
		    "encrypt to the device cert");
		ok(mdm_cms_decrypt(b.data, b.len, signer, signer_key, &out,
		    &e) == -1 && e.code == MDM_E_CRYPTO && out.len == 0,
		    "not a recipient: %s", e.msg);
		ok(mdm_cms_decrypt(b.data, b.len, device, signer_key, &out,
		    &e) == -1 && e.code == MDM_E_USAGE,
		    "key not matching the cert: %s", e.msg);
		ok(mdm_cms_decrypt(b.data, b.len - 10, device, device_key, &out,
		    &e) == -1 && e.code == MDM_E_DATA, "truncated: %s", e.msg);
	} else
		tap_skip(10, "no " OPENSSL_BIN);

	mdm_buf_reset(&b);
	mdm_cms_sign("x", 1, signer, signer_key, NULL, 0, &b, &e);
	ok(mdm_cms_decrypt(b.data, b.len, signer, signer_key, &out, &e) ==
	    -1 && e.code == MDM_E_DATA, "signed data is not enveloped: %s",
	    e.msg);
	ok(mdm_cms_decrypt("garbage", 7, signer, signer_key, &out, &e) == -1 &&
	    e.code == MDM_E_DATA, "garbage: %s", e.msg);
	mdm_buf_release(&b);
	if (read_data("enveloped.der", &b) == 0)
		ok(mdm_cms_decrypt(b.data, b.len, device, device_key, &out,
		    &e) == -1 && e.code == MDM_E_CRYPTO,
		    "enveloped.der is for someone else: %s", e.msg);
	else
		tap_skip(1, "enveloped.der");
	mdm_buf_release(&b);
	mdm_buf_release(&out);
}

/* A real Apple PKCSReq: SignedData(SHA-1) > EnvelopedData(3DES) > CSR. */
static void
test_pkcsreq(void)
{
	struct mdm_cms_verified v;
	struct mdm_buf req, kb, cb, csr;
	struct mdm_err e;
	const char *path;
	X509 *scep_ca = NULL;
	EVP_PKEY *scep_key = NULL;
	X509_REQ *csr_req = NULL;
	const unsigned char *p;
	char cn[128];
	int r;

	mdm_buf_init(&req, MDM_CAP_CMS);
	mdm_buf_init(&kb, MDM_CAP_CERT);
	mdm_buf_init(&cb, MDM_CAP_CERT);
	mdm_buf_init(&csr, MDM_CAP_CMS);
	if ((path = tap_fixture("scep/testdata/PKCSReq.der")) == NULL ||
	    mdm_buf_read_file(&req, path, &e) == -1 ||
	    (path = tap_fixture("scep/testdata/testca/ca.key")) == NULL ||
	    mdm_buf_read_file(&kb, path, &e) == -1 ||
	    (path = tap_fixture("scep/testdata/testca/ca.pem")) == NULL ||
	    mdm_buf_read_file(&cb, path, &e) == -1) {
		tap_skip(6, "scep fixtures absent");
		goto out;
	}
	r = mdm_cms_verify(req.data, req.len, NULL, 0, NULL, &v, &e);
	ok(r == 0, "PKCSReq signature verifies (trust NULL): %s",
	    r ? e.msg : "ok");
	ok(v.signer != NULL && mdm_x509_subject_attr(v.signer, NID_commonName,
	    cn, sizeof(cn), &e) == 0 && strcmp(cn, "MDM SCEP SIGNER") == 0,
	    "signer is the device's self-signed CN=MDM SCEP SIGNER");
	mdm_cms_verified_release(&v);
	ok(mdm_cms_verify(req.data, req.len, NULL, 0, ca, &v, &e) == -1 &&
	    e.code == MDM_E_CRYPTO, "PKCSReq does not chain to our CA");
	mdm_cms_verify(req.data, req.len, NULL, 0, NULL, &v, &e);
	ok(mdm_x509_cert_from_mem(cb.data, cb.len, &scep_ca, &e) == 0 &&
	    mdm_x509_key_from_mem(kb.data, kb.len, "", &scep_key, &e) == 0,
	    "SCEP test CA and key load");
	r = mdm_cms_decrypt(v.content.data, v.content.len, scep_ca, scep_key,
	    &csr, &e);
	ok(r == 0, "3DES EnvelopedData decrypts: %s", r ? e.msg : "ok");
	p = csr.data;
	csr_req = csr.len ? d2i_X509_REQ(NULL, &p, (long)csr.len) : NULL;
	ok(csr_req != NULL && p == csr.data + csr.len &&
	    X509_REQ_verify(csr_req, X509_REQ_get0_pubkey(csr_req)) == 1,
	    "plaintext is a self-consistent PKCS#10 CSR");
	mdm_cms_verified_release(&v);
out:
	X509_REQ_free(csr_req);
	X509_free(scep_ca);
	EVP_PKEY_free(scep_key);
	mdm_buf_release(&req);
	mdm_buf_release_secret(&kb);
	mdm_buf_release(&cb);
	mdm_buf_release(&csr);
}

int
main(void)
{
	setup();
	test_round_trips();
	test_damage();
	test_data_files();
	test_interop();
	test_decrypt();
	test_pkcsreq();
	X509_free(ca);
	X509_free(signer);
	X509_free(device);
	X509_free(other_ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(signer_key);
	EVP_PKEY_free(device_key);
	EVP_PKEY_free(other_key);
	return tap_done();
}
