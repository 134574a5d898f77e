/*
 * fuzz_devauth: the device identity headers, as a proxy or a device sends
 * them.  The whole input, as a C string, is a client certificate header
 * (mdm_devauth_from_header); then its first line is an Mdm-Signature value
 * and the rest, after the newline, the request body
 * (mdm_devauth_from_signature).  A certificate either yields goes through
 * mdm_devauth_verify with itself as the CA.
 *
 * Seeds: corpus/devauth/.  Regression inputs: tests/data/devauth/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "devauth.h"

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
