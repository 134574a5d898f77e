/*
 * fuzz_devauth: the device identity headers, as a proxy or a device sends
 * them.  The whole input, as a C string, is a client certificate header
 * (mdm_devauth_from_header); then its first line is an Mdm-Signature value
 * and the rest, after the newline, the request body
 * (mdm_devauth_from_signature).  A certificate either yields goes through
 * mdm_devauth_verify with itself as the CA.
 *
 * An input starting with 'D' is instead: one byte n, n bytes of body, and
 * a CMS message in DER or BER, base64-encoded here, so the fuzzer works
 * on the structure.  It goes through the certificate cache (which cuts
 * the certificates out before OpenSSL parses the rest) and without it:
 * the cache may never accept what the plain path refuses, nor name
 * another signer.
 *
 * Seeds: corpus/devauth/.  Regression inputs: tests/data/devauth/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "buf.h"
#include "devauth.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(X509 *c)
{
	struct mdm_err e;
	char hash[65];

	if (c != NULL)
		mdm_devauth_verify(c, c, NULL, 0, hash, &e);
	X509_free(c);
}

static void
cached_vs_plain(const uint8_t *data, size_t size)
{
	static struct mdm_devauth_cache *cache;
	struct mdm_buf b64;
	struct mdm_err e;
	X509 *a = NULL, *b = NULL;
	size_t n;
	int ra, rb;

	if (size < 2 || (n = data[1]) > size - 2)
		return;
	if (cache == NULL && mdm_devauth_cache_new(&cache, NULL) == -1)
		abort();
	mdm_buf_init(&b64, 2 * MDM_DEVAUTH_CAP_SIGNATURE);
	if (mdm_base64_encode(data + 2 + n, size - 2 - n, &b64, NULL) == 0 &&
	    mdm_buf_append(&b64, "", 1, NULL) == 0) {
		ra = mdm_devauth_from_signature_cached(cache,
		    (const char *)b64.data, data + 2, n, &a, &e);
		rb = mdm_devauth_from_signature((const char *)b64.data,
		    data + 2, n, &b, &e);
		if (ra == 0 && (rb != 0 || X509_cmp(a, b) != 0))
			abort();
	}
	X509_free(a);
	X509_free(b);
	mdm_buf_release(&b64);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mdm_err e;
	const uint8_t *nl;
	char *s;
	X509 *c;

	/* Past the caps nothing is parsed; no need to copy that much. */
	if (size > 4 * MDM_DEVAUTH_CAP_SIGNATURE)
		return 0;
	if (size > 0 && data[0] == 'D') {
		cached_vs_plain(data, size);
		ERR_clear_error();
		return 0;
	}
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	mdm_devauth_from_header(s, &c, &e);
	check(c);

	if ((nl = memchr(data, '\n', size)) != NULL) {
		size_t line = (size_t)(nl - data);

		s[line] = '\0';
		mdm_devauth_from_signature(s, nl + 1, size - line - 1, &c, &e);
	} else
		mdm_devauth_from_signature(s, NULL, 0, &c, &e);
	check(c);

	free(s);
	ERR_clear_error();
	return 0;
}
