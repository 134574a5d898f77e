#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "buf.h"
#include "cms.h"
#include "devauth.h"
#include "x509.h"
#include "mdm_int.h"

static const char pem_begin[] = "-----BEGIN CERTIFICATE-----";
static const char pem_end[] = "-----END CERTIFICATE-----";

const char *
mdm_devauth_source_name(enum mdm_devauth_source s)
{
	switch (s) {
	case MDM_DEVAUTH_TLS:
		return "tls";
	case MDM_DEVAUTH_SIGNATURE:
		return "signature";
	case MDM_DEVAUTH_HEADER:
		return "header";
	case MDM_DEVAUTH_NONE:
		break;
	}
	return "none";
}

static int
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	    c == '\f';
}

/* Offset of needle in p[0..len), or -1. */
static long
find(const unsigned char *p, size_t len, const char *needle)
{
	size_t n = strlen(needle), i;

	for (i = 0; i + n <= len; i++)
		if (memcmp(p + i, needle, n) == 0)
			return (long)i;
	return -1;
}

static int
only_space(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!is_space(p[i]))
			return 0;
	return 1;
}

/*
 * One DER certificate and nothing after it: unlike mdm_x509_cert_from_mem
 * this never guesses PEM, so no subject text can change how the bytes are
 * read, and a second certificate smuggled after the first is refused.
 */
static int
parse_der(const unsigned char *der, size_t len, X509 **out, struct mdm_err *e)
{
	const unsigned char *p = der;
	X509 *x;

	*out = NULL;
	ERR_clear_error();
	if (len == 0)
		return mdm_err_set(e, MDM_E_DATA, "no certificate");
	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL)
		return mdm_err_set_ssl(e, MDM_E_DATA, "bad DER certificate");
	if (p != der + len) {
		X509_free(x);
		return mdm_err_set(e, MDM_E_DATA,
		    "%zu bytes after the certificate", (size_t)(der + len - p));
	}
	*out = x;
	return 0;
}

/* RFC 9440: the base64 between the colons, '=' padding optional. */
static int
from_rfc9440(const char *s, size_t n, X509 **out, struct mdm_err *e)
{
	struct mdm_buf b64, der;
	size_t i, chars = 0;
	int rc = -1;

	mdm_buf_init(&b64, MDM_DEVAUTH_CAP_HEADER + 2);
	mdm_buf_init(&der, MDM_DEVAUTH_CAP_HEADER);
	if (mdm_buf_append(&b64, s, n, e) == -1)
		goto out;
	for (i = 0; i < n; i++)
		if (!is_space((unsigned char)s[i]))
			chars++;
	if (chars % 4 != 0 && chars % 4 != 1 &&
	    mdm_buf_append(&b64, "==", 4 - chars % 4, e) == -1)
		goto out;
	if (mdm_base64_decode((const char *)b64.data, b64.len, &der, e) == -1)
		goto out;
	rc = parse_der(der.data, der.len, out, e);
out:
	mdm_buf_release(&b64);
	mdm_buf_release(&der);
	return rc;
}

static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * PEM, %-escaped or not.  The base64 between the markers is decoded
 * directly, whitespace skipped, because a proxy may have turned the
 * newlines into spaces, which no PEM reader accepts.
 */
static int
from_pem(const char *s, size_t n, X509 **out, struct mdm_err *e)
{
	struct mdm_buf text, der;
	size_t i, body, tail;
	long begin, end;
	int rc = -1;

	mdm_buf_init(&text, MDM_DEVAUTH_CAP_HEADER);
	mdm_buf_init(&der, MDM_DEVAUTH_CAP_HEADER);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int hi, lo;

		if (c == '%') {
			if (n - i < 3 ||
			    (hi = hex_value((unsigned char)s[i + 1])) < 0 ||
			    (lo = hex_value((unsigned char)s[i + 2])) < 0) {
				mdm_err_set(e, MDM_E_DATA,
				    "bad %%-escape at offset %zu", i);
				goto out;
			}
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (mdm_buf_append(&text, &c, 1, e) == -1)
			goto out;
	}
	begin = find(text.data, text.len, pem_begin);
	body = begin < 0 ? 0 : (size_t)begin + strlen(pem_begin);
	/*
	 * end counts from body: the end marker must come after the begin
	 * marker, which it could otherwise overlap by the shared dashes
	 * ("-----BEGIN CERTIFICATE-----END CERTIFICATE-----").
	 */
	end = begin < 0 ? -1 : find(text.data + body, text.len - body,
	    pem_end);
	if (end < 0) {
		mdm_err_set(e, MDM_E_DATA, "not a PEM certificate");
		goto out;
	}
	tail = body + (size_t)end + strlen(pem_end);
	if (!only_space(text.data, (size_t)begin) ||
	    !only_space(text.data + tail, text.len - tail)) {
		mdm_err_set(e, MDM_E_DATA, "text around the PEM certificate");
		goto out;
	}
	if (mdm_base64_decode((const char *)text.data + body, (size_t)end,
	    &der, e) == -1)
		goto out;
	rc = parse_der(der.data, der.len, out, e);
out:
	mdm_buf_release(&text);
	mdm_buf_release(&der);
	return rc;
}

int
mdm_devauth_from_header(const char *value, X509 **out, struct mdm_err *e)
{
	size_t n;
	int rc;

	*out = NULL;
	if (value == NULL)
		return mdm_err_set(e, MDM_E_NOINPUT,
		    "no client certificate header");
	if ((n = strnlen(value, MDM_DEVAUTH_CAP_HEADER + 1)) >
	    MDM_DEVAUTH_CAP_HEADER)
		return mdm_err_set(e, MDM_E_TOOBIG, "client certificate header "
		    "longer than %u bytes", MDM_DEVAUTH_CAP_HEADER);
	/* Header values may carry optional whitespace around them. */
	while (n > 0 && (*value == ' ' || *value == '\t')) {
		value++;
		n--;
	}
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	if (n == 0 || (n == 6 && memcmp(value, "(null)", 6) == 0) ||
	    (n == 1 && *value == '-'))
		return mdm_err_set(e, MDM_E_NOINPUT,
		    "no client certificate in the header");
	if (n >= 2 && value[0] == ':' && value[n - 1] == ':')
		rc = from_rfc9440(value + 1, n - 2, out, e);
	else
		rc = from_pem(value, n, out, e);
	if (rc == -1)
		mdm_err_prefix(e, "client certificate header");
	return rc;
}

int
mdm_devauth_from_signature(const char *value, const void *body, size_t len,
    X509 **out, struct mdm_err *e)
{
	struct mdm_cms_verified v;
	struct mdm_buf der;
	size_t n;
	int rc = -1;

	*out = NULL;
	memset(&v, 0, sizeof(v));
	mdm_buf_init(&der, MDM_DEVAUTH_CAP_SIGNATURE);
	if (body == NULL && len > 0) {
		mdm_err_set(e, MDM_E_USAGE, "body length without a body");
		goto out;
	}
	n = value != NULL ? strnlen(value, MDM_DEVAUTH_CAP_SIGNATURE + 1) : 0;
	if (n > MDM_DEVAUTH_CAP_SIGNATURE) {
		mdm_err_set(e, MDM_E_TOOBIG, "Mdm-Signature longer than %u "
		    "bytes", MDM_DEVAUTH_CAP_SIGNATURE);
		goto out;
	}
	if (only_space((const unsigned char *)value, n)) {
		mdm_err_set(e, MDM_E_NOINPUT, "empty Mdm-Signature");
		goto out;
	}
	if (mdm_base64_decode(value, n, &der, e) == -1) {
		mdm_err_prefix(e, "Mdm-Signature");
		goto out;
	}
	/*
	 * Never NULL here: mdm_cms_verify would take that as "attached" and
	 * accept a message that signs content of its own instead of body.
	 */
	if (body == NULL)
		body = "";
	if (mdm_cms_verify(der.data, der.len, body, len, NULL, &v, e) == -1) {
		mdm_err_prefix(e, "Mdm-Signature");
		goto out;
	}
	*out = v.signer;
	v.signer = NULL;
	rc = 0;
out:
	mdm_cms_verified_release(&v);
	mdm_buf_release(&der);
	return rc;
}

int
mdm_devauth_verify(X509 *cert, X509 *ca, STACK_OF(X509) *untrusted,
    time_t at, char hash[65], struct mdm_err *e)
{
	hash[0] = '\0';
	if (mdm_x509_verify(cert, ca, untrusted, at, e) == -1) {
		mdm_err_prefix(e, "device identity");
		return -1;
	}
	if (mdm_x509_sha256_hex(cert, hash, e) == -1) {
		hash[0] = '\0';
		return -1;
	}
	return 0;
}
