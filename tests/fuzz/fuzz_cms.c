/*
 * fuzz_cms: mdm_cms_verify on untrusted bytes, the way a signed profile
 * (attached) and an Mdm-Signature header plus HTTP body (detached) reach
 * it.  For the detached case the input is split after its first DER
 * element: the element is the signature, whatever follows is the body, so
 * a seed is simply a detached signature with its body appended.
 *
 * Seeds: corpus/cms/.  Regression inputs: tests/data/cms/.
 */
#include <stddef.h>
#include <stdint.h>

#include <openssl/asn1.h>
#include <openssl/err.h>

#include "cms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mdm_cms_verified v;
	struct mdm_err e;
	const unsigned char *p = data;
	long len = 0;
	size_t hdr, sig_len;
	int tag, cls, r;

	/* Attached, signature only. */
	mdm_cms_verify(data, size, NULL, 0, NULL, &v, &e);
	mdm_cms_verified_release(&v);

	/* Detached: first element, then the body. */
	if (size < 2 || size > (size_t)1 << 30)
		goto out;
	r = ASN1_get_object(&p, &len, &tag, &cls, (long)size);
	if (r & 0x80)
		goto out;
	hdr = (size_t)(p - data);
	if (r == 0x21)		/* indefinite length: no cheap split */
		sig_len = size;
	else if (len < 0 || (size_t)len > size - hdr)
		goto out;
	else
		sig_len = hdr + (size_t)len;
	mdm_cms_verify(data, sig_len, data + sig_len, size - sig_len, NULL,
	    &v, &e);
	mdm_cms_verified_release(&v);
out:
	ERR_clear_error();
	return 0;
}
