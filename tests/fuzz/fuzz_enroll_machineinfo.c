/*
 * fuzz_enroll_machineinfo: mdm_enroll_machineinfo on untrusted bytes, as
 * the body of a DEP device's POST to /mdm/enroll reaches it (no Apple CA
 * configured, so every signature that checks out gets its plist parsed).
 *
 * Seeds: corpus/enroll_machineinfo/ (signed requests written by
 * MDM_ENROLL_SEEDS=DIR test_enroll).  Regression inputs:
 * tests/data/enroll_machineinfo/.
 */
#include <stddef.h>
#include <stdint.h>

#include <openssl/err.h>

#include "enroll.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mdm_enroll_machineinfo info;
	struct mdm_err e;

	mdm_enroll_machineinfo(data, size, NULL, &info, &e);
	ERR_clear_error();
	return 0;
}
