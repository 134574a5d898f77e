/*
 * fuzz_devsim_command: mdm-devsim's device_answer on untrusted bytes, as
 * a server's answer to a check-in or report reaches a simulated device:
 * the command plist parsed and carried out (DeviceInformation queries,
 * InstallProfile with a nested profile, RemoveProfile, ...) by a device
 * with an identity made once and no profiles before each input.
 *
 * Seeds: corpus/devsim_command/ (one command of each kind).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <plist/plist.h>

#include "device.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct device dev;

static int
setup(void)
{
	struct mdm_x509_opts o = { .kind = MDM_X509_CLIENT,
	    .common_name = "fuzz-device", .days = 1 };
	struct mdm_err e;

	memcpy(dev.udid, "FUZZ-UDID", sizeof("FUZZ-UDID"));
	memcpy(dev.serial, "C02FUZZ", sizeof("C02FUZZ"));
	if (mdm_x509_gen_rsa(2048, &dev.key, &e) == -1 ||
	    mdm_x509_self_sign(dev.key, &o, &dev.cert, &e) == -1)
		abort();
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct device_session_opts o;
	struct mdm_err e;
	plist_t rep = NULL;
	int changed = 0;

	if (!ready)
		ready = setup();
	memset(&o, 0, sizeof(o));
	dev.profiles = plist_new_array();
	if (device_answer(&dev, data, size, &o, &rep, &changed, &e) == 0)
		plist_free(rep);
	plist_free(dev.profiles);
	dev.profiles = NULL;
	ERR_clear_error();
	return 0;
}
