/*
 * Feeds bytes to the parsers of what devices and API clients send the
 * queue: mdm_queue_report_parse (command reports), mdm_queue_checkin_parse
 * (check-in messages) and mdm_queue_cmd_parse (raw commands).  Beyond not
 * crashing, each must keep the promises of queue.h: a report that parses
 * names its enrollment with a printable id and, unless Idle or
 * unparseable, a CommandUUID we could have sent; its ErrorChain is valid
 * JSON; a TokenUpdate carries a token of 1 to 256 bytes; a command that
 * passes renders to a plist that parses again with the same RequestType.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "plist.h"
#include "queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_id(const char *id)
{
	const char *s;

	if (*id == '\0')
		abort();
	for (s = id; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			abort();
}

static void
report(const uint8_t *data, size_t size)
{
	struct mdm_queue_report r;
	struct mdm_err e;
	json_t *j;

	if (mdm_queue_report_parse(data, size, &r, &e) == 0) {
		check_id(r.ident.id);
		check_id(r.ident.device_id);
		if (r.status != MDM_QUEUE_IDLE &&
		    r.status != MDM_QUEUE_UNPARSEABLE &&
		    mdm_queue_uuid_check(r.command_uuid, NULL) == -1)
			abort();
		if (r.status == MDM_QUEUE_UNPARSEABLE && r.problem[0] == '\0')
			abort();
	} else if (r.status != MDM_QUEUE_UNPARSEABLE || r.ident.id[0] != '\0')
		abort();
	if (r.error_chain != NULL) {
		j = json_loads(r.error_chain, 0, NULL);
		if (j == NULL || !json_is_array(j))
			abort();
		json_decref(j);
	}
	mdm_queue_report_release(&r);
}

static void
checkin(const uint8_t *data, size_t size)
{
	struct mdm_queue_checkin c;
	struct mdm_err e;

	if (mdm_queue_checkin_parse(data, size, &c, &e) == -1) {
		if (c.plist != NULL)
			abort();
		return;
	}
	check_id(c.ident.id);
	if (c.message_type == NULL)
		abort();
	if (c.type == MDM_QUEUE_TOKEN_UPDATE && (c.token == NULL ||
	    c.token_len == 0 || c.token_len > 256 || c.push_magic == NULL ||
	    c.topic == NULL))
		abort();
	if (c.type == MDM_QUEUE_AUTHENTICATE &&
	    !mdm_queue_enroll_type_is_device(c.ident.type))
		abort();
	mdm_queue_checkin_release(&c);
}

static void
command(const uint8_t *data, size_t size)
{
	struct mdm_queue_cmd cmd;
	struct mdm_buf out;
	struct mdm_err e;
	plist_t p = NULL;
	const char *rt;

	if (mdm_queue_cmd_parse(data, size, &cmd, &e) == -1)
		return;
	mdm_buf_init(&out, MDM_CAP_PLIST);
	if (mdm_queue_render(cmd.uuid, cmd.body.data, cmd.body.len, &out,
	    &e) == -1 || mdm_plist_parse_dict(out.data, out.len, &p, &e) == -1)
		abort();
	rt = mdm_plist_as_string(mdm_plist_get_path(p, "Command.RequestType"));
	if (rt == NULL || strcmp(rt, cmd.request_type) != 0 ||
	    strcmp(mdm_plist_get_string(p, "CommandUUID"), cmd.uuid) != 0)
		abort();
	plist_free(p);
	mdm_buf_release(&out);
	mdm_queue_cmd_release(&cmd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	report(data, size);
	checkin(data, size);
	command(data, size);
	return 0;
}
