#include <limits.h>

#include <openssl/bio.h>

#include "ossl_int.h"
#include "mdm_int.h"

BIO *
mdm_bio_from_mem(const void *data, size_t len, struct mdm_err *e)
{
	BIO *b;

	if (len > INT_MAX) {
		mdm_err_set(e, MDM_E_TOOBIG, "input too large");
		return NULL;
	}
	if ((b = BIO_new_mem_buf(len ? data : "", (int)len)) == NULL)
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "BIO_new_mem_buf");
	return b;
}

int
mdm_bio_to_buf(BIO *b, struct mdm_buf *out, struct mdm_err *e)
{
	char *p;
	long n;

	n = BIO_get_mem_data(b, &p);
	if (n < 0)
		return mdm_err_set(e, MDM_E_SOFTWARE, "BIO_get_mem_data");
	return mdm_buf_append(out, p, (size_t)n, e);
}

void
mdm_hex_lower(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}
