/*
 * fuzz_devsim_profile: mdm-devsim's device_read_profile on untrusted
 * bytes, as an enrollment profile reaches a simulated device from the
 * server's /mdm/enroll: a CMS-signed or bare plist, its SCEP and MDM
 * payloads read into the device and the SCEP request (no trust anchor,
 * so every signature that checks out gets its plist read).
 *
 * Seeds: corpus/devsim_profile/ (the profile bare and signed by
 * mdm-certs sign-profile).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/err.h>
#include <plist/plist.h>

#include "device.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct device_enroll_opts o;
	struct device_scep sp;
	struct device d;
	struct mdm_err e;
	plist_t prof = NULL;

	memset(&o, 0, sizeof(o));
	memset(&sp, 0, sizeof(sp));
	memset(&d, 0, sizeof(d));
	device_read_profile(&o, data, size, &d, &sp, &prof, &e);
	if (prof != NULL)
		plist_free(prof);
	X509_NAME_free(sp.subject);
	ERR_clear_error();
	return 0;
}
