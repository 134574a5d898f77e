/*
 * Feeds bytes to mdm_apns_parse_reply, the reader of APNs error bodies and
 * GOAWAY debug data (untrusted: whatever sits at the URL the tool is
 * pointed at).  Beyond not crashing, the reason it returns must be
 * printable ASCII that fits its buffer, and classifying it must give one
 * of the five outcomes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char reason[16];
	const char *s;
	int64_t ts;
	enum mdm_apns_outcome o;

	memset(reason, 'x', sizeof(reason));
	if (mdm_apns_parse_reply(data, size, reason, sizeof(reason), &ts) == 0) {
		if (memchr(reason, '\0', sizeof(reason)) == NULL)
			abort();
		for (s = reason; *s != '\0'; s++)
			if (*s < 0x20 || *s > 0x7e)
				abort();
	} else if (reason[0] != '\0' || ts != 0)
		abort();
	o = mdm_apns_classify(size > 0 ? 400 + data[0] % 200 : 0, reason);
	if (o > MDM_APNS_REFUSED)
		abort();
	return 0;
}
