/*
 * Feeds bytes to mdm_plist_parse; whatever it accepts must serialise to
 * XML and binary, and both forms must parse again: the XML and binary
 * checks in plist.c are meant to accept the same trees, so a refusal
 * there means they disagree with each other or with libplist.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "buf.h"
#include "plist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mdm_buf xml, bin;
	struct mdm_err e;
	plist_t p = NULL, q = NULL;

	if (mdm_plist_parse(data, size, &p, &e) == -1)
		return 0;
	mdm_buf_init(&xml, 4 * MDM_CAP_PLIST);
	mdm_buf_init(&bin, 4 * MDM_CAP_PLIST);
	if (mdm_plist_to_xml(p, &xml, &e) == 0) {
		if (mdm_plist_parse(xml.data, xml.len, &q, &e) == -1)
			abort();
		plist_free(q);
		q = NULL;
	}
	if (mdm_plist_to_bin(p, &bin, &e) == 0) {
		if (mdm_plist_parse(bin.data, bin.len, &q, &e) == -1)
			abort();
		plist_free(q);
	}
	plist_free(p);
	mdm_buf_release(&xml);
	mdm_buf_release(&bin);
	return 0;
}
