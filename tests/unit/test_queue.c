/*
 * queue: enrollment ids of every channel kind, command report and
 * check-in parsing (including what a device must not be able to break),
 * raw command checks, the stored form and its rendering, the builders of
 * the common commands, profile identifiers of unsigned and CMS-signed
 * profiles, and the check-in, result and command fixtures of NanoMDM and
 * MicroMDM when $MDM_FIXTURES is there.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/x509.h>
#include <plist/plist.h>

#include "buf.h"
#include "cms.h"
#include "plist.h"
#include "queue.h"
#include "tap.h"
#include "x509.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char profile_xml[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<plist version=\"1.0\"><dict>"
    "<key>PayloadContent</key><array/>"
    "<key>PayloadIdentifier</key><string>com.example.wifi</string>"
    "<key>PayloadType</key><string>Configuration</string>"
    "<key>PayloadUUID</key><string>9A1D7E5C-0000-4000-8000-000000000001</string>"
    "<key>PayloadVersion</key><integer>1</integer>"
    "</dict></plist>\n";

/* A plist body from key/value string pairs, ending with NULL. */
static size_t
body(char *out, size_t outlen, ...)
{
	va_list ap;
	const char *k, *v;
	size_t n;

	n = (size_t)snprintf(out, outlen, "<?xml version=\"1.0\" "
	    "encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>");
	va_start(ap, outlen);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		n += (size_t)snprintf(out + n, outlen - n,
		    "<key>%s</key><string>%s</string>", k, v);
	}
	va_end(ap);
	n += (size_t)snprintf(out + n, outlen - n, "</dict></plist>\n");
	return n;
}

static void
test_ident(void)
{
	struct mdm_queue_ident id;
	struct mdm_err e;
	plist_t p;
	char b[2048], longid[400];
	size_t n;

	n = body(b, sizeof(b), "UDID", "UDID-1", NULL);
	mdm_plist_parse_dict(b, n, &p, &e);
	ok(mdm_queue_ident_from_plist(p, &id, &e) == 0, "device channel");
	is_str(id.id, "UDID-1", "device id is the UDID");
	is_int(id.type, MDM_QUEUE_DEVICE, "type device");
	is_str(id.device_id, "UDID-1", "device channel is its own device");
	plist_free(p);

	n = body(b, sizeof(b), "UDID", "U", "UserID", "GUID-1",
	    "UserShortName", "alice", NULL);
	mdm_plist_parse_dict(b, n, &p, &e);
	ok(mdm_queue_ident_from_plist(p, &id, &e) == 0, "macOS user channel");
	is_str(id.id, "U:GUID-1", "user id is UDID:UserID");
	is_int(id.type, MDM_QUEUE_USER, "type user");
	is_str(id.device_id, "U", "user channel rides on the device");
	is_str(id.user_short_name, "alice", "short name kept");
	plist_free(p);

	n = body(b, sizeof(b), "UDID", "U", "UserID",
	    "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "UserShortName",
	    "bob@example.com", NULL);
	mdm_plist_parse_dict(b, n, &p, &e);
	ok(mdm_queue_ident_from_plist(p, &id, &e) == 0, "Shared iPad user");
	is_str(id.id, "U:bob@example.com", "Shared iPad id is UDID:UserShortName");
	is_int(id.type, MDM_QUEUE_SHARED_IPAD, "type shared-ipad");
	plist_free(p);

	n = body(b, sizeof(b), "UDID", "U", "UserID",
	    "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", NULL);
	mdm_plist_parse_dict(b, n, &p, &e);
	ok(mdm_queue_ident_from_plist(p, &id, &e) == -1,
	    "Shared iPad user without UserShortName refused");
	plist_free(p);

	n = body(b, sizeof(b), "EnrollmentID", "E-1", NULL);
	mdm_plist_parse_dict(b, n, &p, &e);
	ok(mdm_queue_ident_from_plist(p, &id, &e) == 0, "User Enrollment device");
	is_str(id.id, "E-1", "UE device id is the EnrollmentID");
	is_int(id.type, MDM_QUEUE_UE_DEVICE, "type user-enrollment-device");
	ok(mdm_queue_enroll_type_is_device(id.type), "a device channel");
	plist_free(p);

	n = body(b, sizeof(b), "EnrollmentID", "E-1", "EnrollmentUserID",
	    "EU-1", NULL);
	mdm_plist_parse_dict(b, n, &p, &e);
	ok(mdm_queue_ident_from_plist(p, &id, &e) == 0, "User Enrollment user");
	is_str(id.id, "E-1:EU-1", "UE user id is EnrollmentID:EnrollmentUserID");
	is_int(id.type, MDM_QUEUE_UE, "type user-enrollment");
	is_str(id.device_id, "E-1", "rides on the UE device");
	is_str(mdm_queue_enroll_type_name(id.type), "user-enrollment", "name");
	plist_free(p);

	n = body(b, sizeof(b), "UDID", "", "Topic", "x", NULL);
	mdm_plist_parse_dict(b, n, &p, &e);
	ok(mdm_queue_ident_from_plist(p, &id, &e) == -1 && e.code == MDM_E_DATA,
	    "no usable id: refused");
	is_str(id.id, "", "and the id is empty");
	plist_free(p);

	n = body(b, sizeof(b), "UDID", "a&#9;b", NULL);
	mdm_plist_parse_dict(b, n, &p, &e);
	ok(mdm_queue_ident_from_plist(p, &id, &e) == -1,
	    "an id with a tab refused");
	plist_free(p);

	memset(longid, 'a', 300);
	longid[300] = '\0';
	n = body(b, sizeof(b), "UDID", longid, NULL);
	mdm_plist_parse_dict(b, n, &p, &e);
	ok(mdm_queue_ident_from_plist(p, &id, &e) == -1,
	    "an id of 300 bytes refused");
	plist_free(p);
	ok(mdm_queue_ident_from_plist(NULL, &id, &e) == -1, "NULL refused");
}

static void
test_report(void)
{
	struct mdm_queue_report r;
	struct mdm_err e;
	char b[4096];
	size_t n;
	static const char chain[] =
	    "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>"
	    "<key>UDID</key><string>D</string>"
	    "<key>Status</key><string>Error</string>"
	    "<key>CommandUUID</key><string>c-1</string>"
	    "<key>ErrorChain</key><array>"
	    "<dict><key>ErrorCode</key><integer>12021</integer>"
	    "<key>ErrorDomain</key><string>MCMDMErrorDomain</string>"
	    "<key>LocalizedDescription</key><string>Unknown \"x\"</string>"
	    "</dict><string>junk</string>"
	    "<dict><key>ErrorCode</key><string>not a number</string>"
	    "<key>USEnglishDescription</key><string>u</string></dict>"
	    "</array></dict></plist>";

	n = body(b, sizeof(b), "UDID", "D", "Status", "Idle", NULL);
	ok(mdm_queue_report_parse(b, n, &r, &e) == 0, "Idle parses");
	is_int(r.status, MDM_QUEUE_IDLE, "status Idle");
	ok(r.command_uuid == NULL, "Idle has no CommandUUID");
	is_str(r.ident.id, "D", "and names its enrollment");
	mdm_queue_report_release(&r);

	n = body(b, sizeof(b), "UDID", "D", "Status", "Acknowledged",
	    "CommandUUID", "c-1", NULL);
	ok(mdm_queue_report_parse(b, n, &r, &e) == 0, "Acknowledged parses");
	is_int(r.status, MDM_QUEUE_ACKNOWLEDGED, "status Acknowledged");
	is_str(r.command_uuid, "c-1", "CommandUUID");
	ok(r.error_chain == NULL, "no ErrorChain");
	mdm_queue_report_release(&r);

	ok(mdm_queue_report_parse(chain, strlen(chain), &r, &e) == 0,
	    "Error with ErrorChain parses");
	is_int(r.status, MDM_QUEUE_ERROR, "status Error");
	is_str(r.error_chain, "[{\"ErrorCode\":12021,\"ErrorDomain\":"
	    "\"MCMDMErrorDomain\",\"LocalizedDescription\":\"Unknown \\\"x\\\"\"},"
	    "{\"USEnglishDescription\":\"u\"}]",
	    "ErrorChain as JSON, junk items and mistyped keys left out");
	mdm_queue_report_release(&r);

	n = body(b, sizeof(b), "UDID", "D", "Status", "NotNow",
	    "CommandUUID", "c-2", NULL);
	ok(mdm_queue_report_parse(b, n, &r, &e) == 0 &&
	    r.status == MDM_QUEUE_NOT_NOW, "NotNow");
	mdm_queue_report_release(&r);
	n = body(b, sizeof(b), "UDID", "D", "Status", "CommandFormatError",
	    "CommandUUID", "c-2", NULL);
	ok(mdm_queue_report_parse(b, n, &r, &e) == 0 &&
	    r.status == MDM_QUEUE_FORMAT_ERROR, "CommandFormatError");
	mdm_queue_report_release(&r);

	n = body(b, sizeof(b), "UDID", "D", "CommandUUID", "c-3", NULL);
	ok(mdm_queue_report_parse(b, n, &r, &e) == 0 &&
	    r.status == MDM_QUEUE_UNPARSEABLE, "no Status: unparseable");
	is_str(r.command_uuid, "c-3", "but its CommandUUID is kept");
	ok(strstr(r.problem, "Status") != NULL, "problem says why");
	mdm_queue_report_release(&r);

	n = body(b, sizeof(b), "UDID", "D", "Status", "Maybe",
	    "CommandUUID", "c-3", NULL);
	ok(mdm_queue_report_parse(b, n, &r, &e) == 0 &&
	    r.status == MDM_QUEUE_UNPARSEABLE, "unknown Status: unparseable");
	mdm_queue_report_release(&r);

	n = body(b, sizeof(b), "UDID", "D", "Status", "Acknowledged", NULL);
	ok(mdm_queue_report_parse(b, n, &r, &e) == 0 &&
	    r.status == MDM_QUEUE_UNPARSEABLE,
	    "Acknowledged without CommandUUID: unparseable");
	mdm_queue_report_release(&r);

	n = body(b, sizeof(b), "UDID", "D", "Status", "Acknowledged",
	    "CommandUUID", "c 1&lt;", NULL);
	ok(mdm_queue_report_parse(b, n, &r, &e) == 0 &&
	    r.status == MDM_QUEUE_UNPARSEABLE && r.command_uuid == NULL,
	    "a CommandUUID we never send: unparseable, no UUID");
	mdm_queue_report_release(&r);

	n = body(b, sizeof(b), "UDID", "D", "Status", "Idle", "CommandUUID",
	    "a b", NULL);
	ok(mdm_queue_report_parse(b, n, &r, &e) == 0 &&
	    r.status == MDM_QUEUE_IDLE && r.command_uuid == NULL,
	    "Idle with a junk CommandUUID is still Idle");
	mdm_queue_report_release(&r);

	n = body(b, sizeof(b), "Status", "Acknowledged", "CommandUUID", "c-4",
	    NULL);
	ok(mdm_queue_report_parse(b, n, &r, &e) == -1, "no enrollment: -1");
	is_str(r.ident.id, "", "ident empty");
	is_int(r.status, MDM_QUEUE_UNPARSEABLE, "status unparseable");
	is_str(r.command_uuid, "c-4", "CommandUUID still found");
	mdm_queue_report_release(&r);

	ok(mdm_queue_report_parse("garbage", 7, &r, &e) == -1 &&
	    e.code == MDM_E_DATA, "not a plist: -1, data error");
	ok(r.plist == NULL && r.problem[0] != '\0', "problem set");
	mdm_queue_report_release(&r);
	ok(mdm_queue_report_parse("", 0, &r, &e) == -1, "empty body: -1");
	mdm_queue_report_release(&r);
	mdm_queue_report_release(NULL);
}

static void
test_checkin(void)
{
	struct mdm_queue_checkin c;
	struct mdm_err e;
	char b[4096];
	size_t n;
	static const char tu[] =
	    "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>"
	    "<key>MessageType</key><string>TokenUpdate</string>"
	    "<key>UDID</key><string>D</string>"
	    "<key>UserID</key><string>G</string>"
	    "<key>Topic</key><string>com.apple.mgmt.X</string>"
	    "<key>Token</key><data>AAEC</data>"
	    "<key>PushMagic</key><string>M</string>"
	    "<key>UnlockToken</key><data></data>"
	    "<key>AwaitingConfiguration</key><true/>"
	    "<key>NotOnConsole</key><false/>"
	    "</dict></plist>";

	n = body(b, sizeof(b), "MessageType", "Authenticate", "UDID", "D",
	    "Topic", "com.apple.mgmt.X", "SerialNumber", "S1", NULL);
	ok(mdm_queue_checkin_parse(b, n, &c, &e) == 0, "Authenticate parses");
	is_int(c.type, MDM_QUEUE_AUTHENTICATE, "type Authenticate");
	is_str(c.serial_number, "S1", "SerialNumber");
	is_int(c.awaiting_configuration, -1, "AwaitingConfiguration absent");
	mdm_queue_checkin_release(&c);

	n = body(b, sizeof(b), "MessageType", "Authenticate", "UDID", "D",
	    NULL);
	ok(mdm_queue_checkin_parse(b, n, &c, &e) == -1,
	    "Authenticate without Topic refused");
	n = body(b, sizeof(b), "MessageType", "Authenticate", "UDID", "D",
	    "UserID", "G", "Topic", "t", NULL);
	ok(mdm_queue_checkin_parse(b, n, &c, &e) == -1,
	    "Authenticate on a user channel refused");
	n = body(b, sizeof(b), "MessageType", "CheckOut", "EnrollmentID", "E",
	    "EnrollmentUserID", "U", NULL);
	ok(mdm_queue_checkin_parse(b, n, &c, &e) == -1,
	    "CheckOut on a user channel refused");
	n = body(b, sizeof(b), "UDID", "D", "Topic", "t", NULL);
	ok(mdm_queue_checkin_parse(b, n, &c, &e) == -1,
	    "no MessageType refused");
	n = body(b, sizeof(b), "MessageType", "Authenticate", "Topic", "t",
	    NULL);
	ok(mdm_queue_checkin_parse(b, n, &c, &e) == -1, "no UDID refused");
	n = body(b, sizeof(b), "MessageType", "TokenUpdate", "UDID", "D",
	    "Topic", "t", "PushMagic", "m", NULL);
	ok(mdm_queue_checkin_parse(b, n, &c, &e) == -1,
	    "TokenUpdate without Token refused");

	ok(mdm_queue_checkin_parse(tu, strlen(tu), &c, &e) == 0,
	    "user TokenUpdate parses");
	is_int(c.type, MDM_QUEUE_TOKEN_UPDATE, "type TokenUpdate");
	is_str(c.ident.id, "D:G", "user channel id");
	is_int((long long)c.token_len, 3, "Token bytes");
	ok(c.unlock_token == NULL, "empty UnlockToken reads as absent");
	is_int(c.awaiting_configuration, 1, "AwaitingConfiguration true");
	is_int(c.not_on_console, 0, "NotOnConsole false");
	mdm_queue_checkin_release(&c);

	n = body(b, sizeof(b), "MessageType", "Wobble", "UDID", "D", NULL);
	ok(mdm_queue_checkin_parse(b, n, &c, &e) == 0 &&
	    c.type == MDM_QUEUE_CHECKIN_OTHER, "unknown MessageType: OTHER");
	is_str(c.message_type, "Wobble", "MessageType kept");
	mdm_queue_checkin_release(&c);

	n = body(b, sizeof(b), "MessageType", "DeclarativeManagement", "UDID",
	    "D", "Endpoint", "tokens", NULL);
	ok(mdm_queue_checkin_parse(b, n, &c, &e) == 0 &&
	    c.type == MDM_QUEUE_DECLARATIVE_MANAGEMENT &&
	    c.endpoint != NULL && strcmp(c.endpoint, "tokens") == 0,
	    "DeclarativeManagement with Endpoint");
	mdm_queue_checkin_release(&c);
	ok(mdm_queue_checkin_parse("<plist", 6, &c, &e) == -1,
	    "truncated body refused");
}

/* XML of a plist, for comparing trees. */
static char *
xml_of(plist_t p)
{
	char *s = NULL;
	uint32_t n = 0;

	plist_to_xml(p, &s, &n);
	return s;
}

static void
test_cmd(void)
{
	struct mdm_queue_cmd c, d;
	struct mdm_buf out;
	struct mdm_err e;
	plist_t p = NULL, cmd;
	char b[4096];
	int n;

	n = snprintf(b, sizeof(b), "<plist version=\"1.0\"><dict>"
	    "<key>Command</key><dict><key>RequestType</key>"
	    "<string>ProfileList</string></dict></dict></plist>");
	ok(mdm_queue_cmd_parse(b, (size_t)n, &c, &e) == 0,
	    "raw command without CommandUUID");
	is_int((long long)strlen(c.uuid), 36, "a UUID was made");
	is_str(c.request_type, "ProfileList", "request type");
	ok(c.payload_identifier == NULL, "no payload identifier");
	ok(strstr((char *)c.body.data, "CommandUUID") == NULL,
	    "stored form has no CommandUUID");
	mdm_buf_init(&out, MDM_CAP_PLIST);
	ok(mdm_queue_render("ABC-1", c.body.data, c.body.len, &out, &e) == 0,
	    "render");
	ok(mdm_plist_parse_dict(out.data, out.len, &p, &e) == 0,
	    "rendered command parses");
	is_str(mdm_plist_get_string(p, "CommandUUID"), "ABC-1",
	    "rendered with the UUID given");
	is_str((const char *)mdm_plist_as_string(mdm_plist_get_path(p,
	    "Command.RequestType")), "ProfileList", "and its Command");
	plist_free(p);
	p = NULL;
	ok(mdm_queue_render("a b", c.body.data, c.body.len, &out, &e) == -1,
	    "render refuses a UUID with a space");

	n = snprintf(b, sizeof(b), "<plist version=\"1.0\"><dict>"
	    "<key>CommandUUID</key><string>keep-me</string>"
	    "<key>Command</key><dict><key>RequestType</key>"
	    "<string>ProfileList</string></dict></dict></plist>");
	ok(mdm_queue_cmd_parse(b, (size_t)n, &d, &e) == 0,
	    "raw command with CommandUUID");
	is_str(d.uuid, "keep-me", "its CommandUUID is kept");
	ok(c.body.len == d.body.len && memcmp(c.body.data, d.body.data,
	    c.body.len) == 0, "same content, another UUID: same stored form");
	mdm_queue_cmd_release(&c);
	mdm_queue_cmd_release(&d);

	n = snprintf(b, sizeof(b), "<plist version=\"1.0\"><dict>"
	    "<key>CommandUUID</key><string>bad&amp;uuid</string>"
	    "<key>Command</key><dict><key>RequestType</key>"
	    "<string>ProfileList</string></dict></dict></plist>");
	ok(mdm_queue_cmd_parse(b, (size_t)n, &c, &e) == -1 &&
	    e.code == MDM_E_DATA, "a CommandUUID with '&' refused");
	n = snprintf(b, sizeof(b), "<plist version=\"1.0\"><dict>"
	    "<key>CommandUUID</key><integer>1</integer>"
	    "<key>Command</key><dict><key>RequestType</key>"
	    "<string>ProfileList</string></dict></dict></plist>");
	ok(mdm_queue_cmd_parse(b, (size_t)n, &c, &e) == -1,
	    "an integer CommandUUID refused");
	n = snprintf(b, sizeof(b), "<plist version=\"1.0\"><dict>"
	    "<key>Command</key><dict/></dict></plist>");
	ok(mdm_queue_cmd_parse(b, (size_t)n, &c, &e) == -1,
	    "no RequestType refused");
	n = snprintf(b, sizeof(b), "<plist version=\"1.0\"><dict>"
	    "<key>Command</key><dict><key>RequestType</key>"
	    "<string>Install Profile</string></dict></dict></plist>");
	ok(mdm_queue_cmd_parse(b, (size_t)n, &c, &e) == -1,
	    "a RequestType with a space refused");
	n = snprintf(b, sizeof(b), "<plist version=\"1.0\"><dict>"
	    "<key>RequestType</key><string>ProfileList</string>"
	    "</dict></plist>");
	ok(mdm_queue_cmd_parse(b, (size_t)n, &c, &e) == -1,
	    "no Command dict refused");
	n = snprintf(b, sizeof(b), "<plist version=\"1.0\"><array/></plist>");
	ok(mdm_queue_cmd_parse(b, (size_t)n, &c, &e) == -1,
	    "an array refused");
	ok(mdm_queue_cmd_parse("junk", 4, &c, &e) == -1 &&
	    e.code == MDM_E_DATA, "junk refused");
	n = snprintf(b, sizeof(b), "<plist version=\"1.0\"><dict>"
	    "<key>Command</key><dict><key>RequestType</key>"
	    "<string>InstallProfile</string><key>Payload</key>"
	    "<data>Zm9vYmFyYmF6</data></dict></dict></plist>");
	ok(mdm_queue_cmd_parse(b, (size_t)n, &c, &e) == -1,
	    "InstallProfile whose Payload is not a profile refused");
	n = snprintf(b, sizeof(b), "<plist version=\"1.0\"><dict>"
	    "<key>Command</key><dict><key>RequestType</key>"
	    "<string>RemoveProfile</string></dict></dict></plist>");
	ok(mdm_queue_cmd_parse(b, (size_t)n, &c, &e) == -1,
	    "RemoveProfile without Identifier refused");
	n = snprintf(b, sizeof(b), "<plist version=\"1.0\"><dict>"
	    "<key>Command</key><dict><key>RequestType</key>"
	    "<string>RemoveProfile</string><key>Identifier</key>"
	    "<string>com.example.wifi</string></dict></dict></plist>");
	ok(mdm_queue_cmd_parse(b, (size_t)n, &c, &e) == 0 &&
	    c.payload_identifier != NULL &&
	    strcmp(c.payload_identifier, "com.example.wifi") == 0,
	    "RemoveProfile: payload identifier from Identifier");
	mdm_queue_cmd_release(&c);

	/* A built InstallProfile: Payload is the profile byte for byte. */
	{
		struct mdm_queue_build bd = { 0 };
		const unsigned char *pl;
		size_t plen;

		bd.request_type = "installprofile";
		bd.profile = (const unsigned char *)profile_xml;
		bd.profile_len = strlen(profile_xml);
		ok(mdm_queue_build(&bd, &p, &e) == 0, "build InstallProfile");
		cmd = mdm_plist_get_dict(p, "Command");
		is_str(mdm_plist_get_string(cmd, "RequestType"),
		    "InstallProfile", "type name made canonical");
		pl = mdm_plist_get_data(cmd, "Payload", &plen);
		ok(pl != NULL && plen == strlen(profile_xml) &&
		    memcmp(pl, profile_xml, plen) == 0,
		    "Payload is the profile unchanged");
		ok(mdm_queue_cmd_from_plist(p, &c, &e) == 0, "prepare it");
		is_str(c.payload_identifier, "com.example.wifi",
		    "payload identifier from the profile");
		is_str(c.uuid, mdm_plist_get_string(p, "CommandUUID"),
		    "UUID of the built command");
		mdm_buf_reset(&out);
		mdm_queue_render(c.uuid, c.body.data, c.body.len, &out, &e);
		{
			plist_t back = NULL;
			char *x1, *x2;

			mdm_plist_parse_dict(out.data, out.len, &back, &e);
			x1 = xml_of(mdm_plist_get_dict(p, "Command"));
			x2 = xml_of(mdm_plist_get_dict(back, "Command"));
			ok(x1 != NULL && x2 != NULL && strcmp(x1, x2) == 0,
			    "rendered Command equals the built one");
			is_str(mdm_plist_get_string(back, "CommandUUID"),
			    c.uuid, "rendered with its UUID");
			free(x1);
			free(x2);
			plist_free(back);
		}
		mdm_queue_cmd_release(&c);
		plist_free(p);
		p = NULL;
	}
	mdm_buf_release(&out);
	mdm_queue_cmd_release(NULL);
}

static plist_t
build_ok(struct mdm_queue_build *b, const char *what)
{
	struct mdm_err e = { 0 };
	plist_t p = NULL;

	if (!ok(mdm_queue_build(b, &p, &e) == 0, "build %s", what))
		tap_diag("%s", e.msg);
	return p;
}

static void
build_fails(struct mdm_queue_build *b, enum mdm_errc code, const char *what)
{
	struct mdm_err e = { 0 };
	plist_t p = NULL;

	ok(mdm_queue_build(b, &p, &e) == -1 && p == NULL && e.code == code,
	    "%s refused", what);
}

static void
test_build(void)
{
	static const char *const q[] = { "UDID", "OSVersion" };
	struct mdm_queue_build b;
	plist_t p, c, a;
	int64_t i64;
	int bo;
	size_t i, len;

	for (i = 0; mdm_queue_build_types[i] != NULL; i++)
		;
	is_int((long long)i, 18, "18 common command types");

	memset(&b, 0, sizeof(b));
	b.request_type = "RemoveProfile";
	b.identifier = "com.example.wifi";
	b.uuid = "my-uuid";
	if ((p = build_ok(&b, "RemoveProfile")) != NULL) {
		is_str(mdm_plist_get_string(p, "CommandUUID"), "my-uuid",
		    "the UUID given");
		is_str(mdm_plist_as_string(mdm_plist_get_path(p,
		    "Command.Identifier")), "com.example.wifi", "Identifier");
		plist_free(p);
	}

	memset(&b, 0, sizeof(b));
	b.request_type = "DeviceInformation";
	if ((p = build_ok(&b, "DeviceInformation, default queries")) != NULL) {
		a = mdm_plist_get_path(p, "Command.Queries");
		ok(a != NULL && plist_array_get_size(a) >= 10,
		    "a useful default set of queries");
		plist_free(p);
	}
	b.queries = q;
	b.nqueries = 2;
	if ((p = build_ok(&b, "DeviceInformation --query")) != NULL) {
		is_str(mdm_plist_as_string(mdm_plist_get_path(p,
		    "Command.Queries.1")), "OSVersion", "queries as given");
		is_int(plist_array_get_size(mdm_plist_get_path(p,
		    "Command.Queries")), 2, "only those");
		plist_free(p);
	}

	memset(&b, 0, sizeof(b));
	b.request_type = "ProfileList";
	b.managed_only = 1;
	if ((p = build_ok(&b, "ProfileList --managed-only")) != NULL) {
		c = mdm_plist_get_dict(p, "Command");
		ok(mdm_plist_get_bool(c, "ManagedOnly", &bo) == 0 && bo,
		    "ManagedOnly true");
		plist_free(p);
	}
	b.request_type = "InstalledApplicationList";
	if ((p = build_ok(&b, "InstalledApplicationList")) != NULL) {
		c = mdm_plist_get_dict(p, "Command");
		ok(mdm_plist_get_bool(c, "ManagedAppsOnly", &bo) == 0 && bo,
		    "ManagedAppsOnly true");
		plist_free(p);
	}

	memset(&b, 0, sizeof(b));
	b.request_type = "DeviceLock";
	b.pin = "123456";
	b.message = "Lost: call 555";
	b.phone_number = "555";
	if ((p = build_ok(&b, "DeviceLock")) != NULL) {
		c = mdm_plist_get_dict(p, "Command");
		is_str(mdm_plist_get_string(c, "PIN"), "123456", "PIN");
		is_str(mdm_plist_get_string(c, "Message"), "Lost: call 555",
		    "Message");
		is_str(mdm_plist_get_string(c, "PhoneNumber"), "555",
		    "PhoneNumber");
		plist_free(p);
	}
	b.pin = "12345";
	build_fails(&b, MDM_E_USAGE, "a five-digit PIN");
	b.pin = "12345a";
	build_fails(&b, MDM_E_USAGE, "a PIN with a letter");
	b.pin = NULL;
	b.message = "\xff\xfe";
	build_fails(&b, MDM_E_USAGE, "a message that is not UTF-8");

	memset(&b, 0, sizeof(b));
	b.request_type = "EraseDevice";
	b.pin = "000000";
	p = build_ok(&b, "EraseDevice --pin");
	plist_free(p);
	b.message = "x";
	build_fails(&b, MDM_E_USAGE, "EraseDevice with a message");

	memset(&b, 0, sizeof(b));
	b.request_type = "RestartDevice";
	b.notify_user = 1;
	if ((p = build_ok(&b, "RestartDevice --notify-user")) != NULL) {
		c = mdm_plist_get_dict(p, "Command");
		ok(mdm_plist_get_bool(c, "NotifyUser", &bo) == 0 && bo,
		    "NotifyUser");
		plist_free(p);
	}
	memset(&b, 0, sizeof(b));
	b.request_type = "ShutDownDevice";
	if ((p = build_ok(&b, "ShutDownDevice")) != NULL) {
		is_str(mdm_plist_as_string(mdm_plist_get_path(p,
		    "Command.RequestType")), "ShutDownDevice",
		    "spelled as Apple spells it");
		plist_free(p);
	}

	memset(&b, 0, sizeof(b));
	b.request_type = "InstallApplication";
	b.itunes_store_id = 361309726;
	b.management_flags = 1;
	if ((p = build_ok(&b, "InstallApplication --itunes-store-id")) != NULL) {
		c = mdm_plist_get_dict(p, "Command");
		ok(mdm_plist_get_int(c, "iTunesStoreID", &i64) == 0 &&
		    i64 == 361309726, "iTunesStoreID is an integer");
		ok(mdm_plist_get_int(c, "ManagementFlags", &i64) == 0 &&
		    i64 == 1, "ManagementFlags");
		plist_free(p);
	}
	b.manifest_url = "https://example.com/app.plist";
	build_fails(&b, MDM_E_USAGE, "InstallApplication with two sources");
	b.itunes_store_id = 0;
	p = build_ok(&b, "InstallApplication --manifest-url");
	plist_free(p);
	b.manifest_url = "http://example.com/app.plist";
	build_fails(&b, MDM_E_USAGE, "an http:// manifest URL");
	b.manifest_url = NULL;
	build_fails(&b, MDM_E_USAGE, "InstallApplication with no source");

	memset(&b, 0, sizeof(b));
	b.request_type = "InstallEnterpriseApplication";
	build_fails(&b, MDM_E_USAGE,
	    "InstallEnterpriseApplication without a manifest URL");
	b.manifest_url = "https://example.com/m.plist";
	if ((p = build_ok(&b, "InstallEnterpriseApplication")) != NULL) {
		is_str(mdm_plist_as_string(mdm_plist_get_path(p,
		    "Command.ManifestURL")), "https://example.com/m.plist",
		    "ManifestURL");
		plist_free(p);
	}

	memset(&b, 0, sizeof(b));
	b.request_type = "ScheduleOSUpdate";
	b.product_key = "012-34567";
	b.install_action = "InstallASAP";
	if ((p = build_ok(&b, "ScheduleOSUpdate")) != NULL) {
		is_str(mdm_plist_as_string(mdm_plist_get_path(p,
		    "Command.Updates.0.ProductKey")), "012-34567", "ProductKey");
		is_str(mdm_plist_as_string(mdm_plist_get_path(p,
		    "Command.Updates.0.InstallAction")), "InstallASAP",
		    "InstallAction");
		plist_free(p);
	}
	b.install_action = NULL;
	if ((p = build_ok(&b, "ScheduleOSUpdate, default action")) != NULL) {
		is_str(mdm_plist_as_string(mdm_plist_get_path(p,
		    "Command.Updates.0.InstallAction")), "Default",
		    "InstallAction Default");
		plist_free(p);
	}
	b.install_action = "Soon";
	build_fails(&b, MDM_E_USAGE, "an install action Apple does not define");

	memset(&b, 0, sizeof(b));
	b.request_type = "Settings";
	build_fails(&b, MDM_E_USAGE, "Settings with nothing to set");
	b.device_name = "Kiosk 1";
	b.host_name = "kiosk-1";
	if ((p = build_ok(&b, "Settings")) != NULL) {
		is_str(mdm_plist_as_string(mdm_plist_get_path(p,
		    "Command.Settings.0.Item")), "DeviceName", "item DeviceName");
		is_str(mdm_plist_as_string(mdm_plist_get_path(p,
		    "Command.Settings.0.DeviceName")), "Kiosk 1", "its value");
		is_str(mdm_plist_as_string(mdm_plist_get_path(p,
		    "Command.Settings.1.HostName")), "kiosk-1", "HostName item");
		plist_free(p);
	}

	memset(&b, 0, sizeof(b));
	b.request_type = "DeclarativeManagement";
	p = build_ok(&b, "DeclarativeManagement without Data");
	plist_free(p);
	b.data = (const unsigned char *)"{\"SyncTokens\":{}}";
	b.data_len = strlen((const char *)b.data);
	if ((p = build_ok(&b, "DeclarativeManagement with Data")) != NULL) {
		ok(mdm_plist_get_data(mdm_plist_get_dict(p, "Command"), "Data",
		    &len) != NULL && len == b.data_len, "Data as given");
		plist_free(p);
	}
	b.data = (const unsigned char *)"{nope";
	b.data_len = 5;
	build_fails(&b, MDM_E_USAGE, "Data that is not JSON");

	memset(&b, 0, sizeof(b));
	b.request_type = "ClearPasscode";
	build_fails(&b, MDM_E_USAGE, "ClearPasscode without an unlock token");
	b.unlock_token = (const unsigned char *)"\x01\x02";
	b.unlock_token_len = 2;
	p = build_ok(&b, "ClearPasscode");
	plist_free(p);

	memset(&b, 0, sizeof(b));
	b.request_type = "DeviceConfigured";
	p = build_ok(&b, "DeviceConfigured");
	plist_free(p);
	b.request_type = "SecurityInfo";
	p = build_ok(&b, "SecurityInfo");
	plist_free(p);
	b.request_type = "CertificateList";
	p = build_ok(&b, "CertificateList");
	plist_free(p);

	memset(&b, 0, sizeof(b));
	b.request_type = "InstallProfile";
	build_fails(&b, MDM_E_USAGE, "InstallProfile without a profile");
	b.profile = (const unsigned char *)"not a profile";
	b.profile_len = 13;
	build_fails(&b, MDM_E_DATA, "InstallProfile of junk");
	b.profile = (const unsigned char *)profile_xml;
	b.profile_len = strlen(profile_xml);
	b.pin = "123456";
	build_fails(&b, MDM_E_USAGE, "InstallProfile with a PIN");
	b.pin = NULL;
	b.uuid = "bad uuid";
	build_fails(&b, MDM_E_USAGE, "a UUID with a space");

	memset(&b, 0, sizeof(b));
	b.request_type = "Wipe";
	build_fails(&b, MDM_E_USAGE, "an unknown type");
	b.request_type = NULL;
	build_fails(&b, MDM_E_USAGE, "no type");
}

static void
test_profiles(void)
{
	static const char noid[] = "<plist version=\"1.0\"><dict>"
	    "<key>PayloadType</key><string>Configuration</string>"
	    "</dict></plist>";
	static const char wifi[] = "<plist version=\"1.0\"><dict>"
	    "<key>PayloadIdentifier</key><string>x</string>"
	    "<key>PayloadType</key><string>com.apple.wifi</string>"
	    "</dict></plist>";
	struct mdm_x509_opts o = { 0 };
	struct mdm_buf sig, bin;
	struct mdm_err e;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	plist_t p = NULL;
	char *id = NULL;
	int is_signed = -1;

	ok(mdm_queue_profile_identifier(profile_xml, strlen(profile_xml), &id,
	    &is_signed, &e) == 0, "unsigned XML profile");
	is_str(id, "com.example.wifi", "its PayloadIdentifier");
	is_int(is_signed, 0, "not signed");
	free(id);
	id = NULL;

	mdm_buf_init(&bin, MDM_CAP_PLIST);
	mdm_plist_parse(profile_xml, strlen(profile_xml), &p, &e);
	mdm_plist_to_bin(p, &bin, &e);
	plist_free(p);
	ok(mdm_queue_profile_identifier(bin.data, bin.len, &id, NULL,
	    &e) == 0 && strcmp(id, "com.example.wifi") == 0,
	    "binary profile");
	free(id);
	id = NULL;
	mdm_buf_release(&bin);

	mdm_buf_init(&sig, MDM_CAP_CMS);
	o.kind = MDM_X509_SIGNING;
	o.common_name = "test signer";
	o.days = 1;
	if (mdm_x509_gen_rsa(2048, &key, &e) == -1 ||
	    mdm_x509_self_sign(key, &o, &cert, &e) == -1 ||
	    mdm_cms_sign(profile_xml, strlen(profile_xml), cert, key, NULL, 0,
	    &sig, &e) == -1) {
		tap_skip(4, "cannot make a signed profile");
	} else {
		ok(mdm_queue_profile_identifier(sig.data, sig.len, &id,
		    &is_signed, &e) == 0, "CMS-signed profile");
		is_str(id, "com.example.wifi", "identifier from the content");
		is_int(is_signed, 1, "signed");
		free(id);
		id = NULL;
		sig.data[sig.len - 10] ^= 1;
		ok(mdm_queue_profile_identifier(sig.data, sig.len, &id, NULL,
		    &e) == -1, "a tampered signed profile refused");
	}
	mdm_buf_release(&sig);
	X509_free(cert);
	EVP_PKEY_free(key);

	ok(mdm_queue_profile_identifier(noid, strlen(noid), &id, NULL,
	    &e) == -1, "no PayloadIdentifier refused");
	ok(mdm_queue_profile_identifier(wifi, strlen(wifi), &id, NULL,
	    &e) == -1, "PayloadType other than Configuration refused");
	ok(mdm_queue_profile_identifier("0\x82\x01", 3, &id, NULL, &e) == -1,
	    "a broken DER refused");
	ok(mdm_queue_profile_identifier(profile_xml, MDM_QUEUE_PROFILE_MAX + 1,
	    &id, NULL, &e) == -1 && e.code == MDM_E_TOOBIG,
	    "a profile over the cap: too big");
}

static void
test_uuid(void)
{
	char a[37], b[37];
	struct mdm_err e;

	ok(mdm_queue_uuid_new(a, &e) == 0 && mdm_queue_uuid_new(b, &e) == 0,
	    "two UUIDs");
	ok(strcmp(a, b) != 0, "differ");
	ok(a[8] == '-' && a[13] == '-' && a[14] == '4' && a[18] == '-' &&
	    strchr("89ab", a[19]) != NULL && a[23] == '-',
	    "RFC 4122 version 4 layout");
	ok(mdm_queue_uuid_check(a, &e) == 0, "passes the check");
	ok(mdm_queue_uuid_check("", &e) == -1, "empty refused");
	ok(mdm_queue_uuid_check("a\tb", &e) == -1, "tab refused");
	ok(mdm_queue_uuid_check("x:y.z_1-2", &e) == 0, "':', '.', '_' allowed");
	ok(mdm_queue_uuid_check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaa", &e) == -1, "65 characters refused");
}

static struct mdm_buf fixture_buf;

static struct mdm_buf *
read_fixture(const char *rel)
{
	struct mdm_err e;
	const char *path = tap_fixture(rel);

	mdm_buf_release(&fixture_buf);
	mdm_buf_init(&fixture_buf, MDM_CAP_PLIST);
	if (path == NULL || mdm_buf_read_file(&fixture_buf, path, &e) == -1)
		return NULL;
	return &fixture_buf;
}

static void
test_fixtures(void)
{
	static const struct {
		const char *rel, *type, *id;
	} checkins[] = {
		{ "nanomdm/mdm/testdata/Authenticate.1.plist", "Authenticate",
		    "663b07bb783e9ade1dae4fbb92ea12afc0ce5b69" },
		{ "nanomdm/mdm/testdata/Authenticate.2.plist", "Authenticate",
		    "66ADE930-5FDF-5EC4-8429-15640684C489" },
		{ "nanomdm/mdm/testdata/TokenUpdate.1.plist", "TokenUpdate",
		    "663b07bb783e9ade1dae4fbb92ea12afc0ce5b69" },
		{ "nanomdm/mdm/testdata/TokenUpdate.2.plist", "TokenUpdate",
		    "66ADE930-5FDF-5EC4-8429-15640684C489" },
		{ "micromdm/checkin/testdata/TokenUpdate.plist", "TokenUpdate",
		    "FA01680E-98CA-5557-8F59-7716ECFEE964" },
	};
	static const char *const commands[] = {
		"micromdm/command/testdata/DeviceInformation.plist",
		"micromdm/command/testdata/Settings_hostname_devicename.plist",
	};
	struct mdm_queue_checkin c;
	struct mdm_queue_report r;
	struct mdm_queue_cmd cmd;
	struct mdm_err e;
	struct mdm_buf *b;
	size_t i;

	if (tap_fixture("nanomdm") == NULL) {
		tap_skip(1, "no fixtures ($MDM_FIXTURES)");
		return;
	}
	for (i = 0; i < NITEMS(checkins); i++) {
		if ((b = read_fixture(checkins[i].rel)) == NULL) {
			tap_skip(2, checkins[i].rel);
			continue;
		}
		ok(mdm_queue_checkin_parse(b->data, b->len, &c, &e) == 0,
		    "%s parses", checkins[i].rel);
		ok(c.message_type != NULL &&
		    strcmp(c.message_type, checkins[i].type) == 0 &&
		    strcmp(c.ident.id, checkins[i].id) == 0,
		    "%s: %s of %s", checkins[i].rel, checkins[i].type,
		    checkins[i].id);
		if (i == 2)
			ok(c.unlock_token_len > 1000 && c.token_len == 32 &&
			    c.awaiting_configuration == 0,
			    "TokenUpdate.1: token, UnlockToken, "
			    "AwaitingConfiguration");
		if (i == 4)
			ok(c.unlock_token == NULL, "MicroMDM's empty "
			    "UnlockToken reads as absent");
		mdm_queue_checkin_release(&c);
	}
	if ((b = read_fixture("nanomdm/mdm/testdata/DeviceInformation.1.plist"))
	    != NULL) {
		ok(mdm_queue_report_parse(b->data, b->len, &r, &e) == 0,
		    "DeviceInformation.1 result parses");
		is_int(r.status, MDM_QUEUE_ACKNOWLEDGED, "Acknowledged");
		is_str(r.command_uuid, "76eda240-5488-4989-8339-f2ae160113c4",
		    "its CommandUUID");
		is_str(r.request_type, "DeviceInformation", "echoed RequestType");
		is_str(r.ident.id, "66ADE930-5FDF-5EC4-8429-15640684C489",
		    "its enrollment");
		mdm_queue_report_release(&r);
	}
	for (i = 0; i < NITEMS(commands); i++) {
		if ((b = read_fixture(commands[i])) == NULL)
			continue;
		ok(mdm_queue_cmd_parse(b->data, b->len, &cmd, &e) == 0,
		    "%s is a valid raw command", commands[i]);
		ok(strchr(cmd.uuid, '-') != NULL && cmd.body.len > 0,
		    "its CommandUUID kept");
		mdm_queue_cmd_release(&cmd);
	}
	if ((b = read_fixture("micromdm/mdm/mdm/testdata/InstallProfile.plist"))
	    != NULL)
		ok(mdm_queue_cmd_parse(b->data, b->len, &cmd, &e) == -1,
		    "MicroMDM's InstallProfile test command (Payload "
		    "\"foobarbaz\") is refused: not a profile");
	mdm_buf_release(&fixture_buf);
}

static struct mdm_buf *
read_data(const char *name)
{
	char path[4096];
	struct mdm_err e;
	const char *root = getenv("MDM_TEST_DATA");

	if (root == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/report/%s", root, name);
	mdm_buf_release(&fixture_buf);
	mdm_buf_init(&fixture_buf, MDM_CAP_PLIST);
	if (mdm_buf_read_file(&fixture_buf, path, &e) == -1)
		return NULL;
	return &fixture_buf;
}

/* tests/data/report: what its README promises. */
static void
test_data(void)
{
	struct mdm_queue_report r;
	struct mdm_queue_checkin c;
	struct mdm_queue_cmd cmd;
	struct mdm_err e;
	struct mdm_buf *b;
	json_t *j;

	if (getenv("MDM_TEST_DATA") == NULL) {
		tap_skip(1, "MDM_TEST_DATA not set");
		return;
	}
	if ((b = read_data("status-integer.plist")) != NULL) {
		ok(mdm_queue_report_parse(b->data, b->len, &r, &e) == 0 &&
		    r.status == MDM_QUEUE_UNPARSEABLE, "integer Status");
		mdm_queue_report_release(&r);
	}
	if ((b = read_data("uuid-too-long.plist")) != NULL) {
		ok(mdm_queue_report_parse(b->data, b->len, &r, &e) == 0 &&
		    r.status == MDM_QUEUE_UNPARSEABLE && r.command_uuid == NULL,
		    "a 300-byte CommandUUID");
		mdm_queue_report_release(&r);
	}
	if ((b = read_data("udid-tab.plist")) != NULL) {
		ok(mdm_queue_report_parse(b->data, b->len, &r, &e) == -1 &&
		    r.ident.id[0] == '\0', "a UDID with a tab");
		mdm_queue_report_release(&r);
	}
	if ((b = read_data("idle-junk-uuid.plist")) != NULL) {
		ok(mdm_queue_report_parse(b->data, b->len, &r, &e) == 0 &&
		    r.status == MDM_QUEUE_IDLE, "Idle with a junk CommandUUID");
		mdm_queue_report_release(&r);
	}
	if ((b = read_data("errorchain-long.plist")) != NULL) {
		j = NULL;
		ok(mdm_queue_report_parse(b->data, b->len, &r, &e) == 0 &&
		    r.error_chain != NULL &&
		    (j = json_loads(r.error_chain, 0, NULL)) != NULL &&
		    json_array_size(j) == MDM_QUEUE_ERROR_CHAIN_MAX,
		    "a long ErrorChain is cut at %d items",
		    MDM_QUEUE_ERROR_CHAIN_MAX);
		json_decref(j);
		mdm_queue_report_release(&r);
	}
	if ((b = read_data("errorchain-dict.plist")) != NULL) {
		ok(mdm_queue_report_parse(b->data, b->len, &r, &e) == 0 &&
		    r.status == MDM_QUEUE_ERROR && r.error_chain == NULL,
		    "an ErrorChain that is a dict is left out");
		mdm_queue_report_release(&r);
	}
	if ((b = read_data("token-300-bytes.plist")) != NULL)
		ok(mdm_queue_checkin_parse(b->data, b->len, &c, &e) == -1,
		    "a 300-byte push token refused");
	if ((b = read_data("authenticate-user-channel.plist")) != NULL)
		ok(mdm_queue_checkin_parse(b->data, b->len, &c, &e) == -1,
		    "Authenticate on a user channel refused");
	if ((b = read_data("command-der-junk-payload.plist")) != NULL)
		ok(mdm_queue_cmd_parse(b->data, b->len, &cmd, &e) == -1,
		    "InstallProfile of junk DER refused");
	if ((b = read_data("command-array.plist")) != NULL)
		ok(mdm_queue_cmd_parse(b->data, b->len, &cmd, &e) == -1,
		    "Command that is an array refused");
	mdm_buf_release(&fixture_buf);
}

static void
test_ids(void)
{
	struct mdm_queue_ids l = { 0 };
	struct mdm_err e = { 0 };
	char id[16];
	int i, rc = 0;

	ok(mdm_queue_printable("device 1 \xc3\xa9"), "text and UTF-8 print");
	ok(!mdm_queue_printable("a\tb"), "a tab does not");
	ok(!mdm_queue_printable("a\x7f"), "nor DEL");
	ok(mdm_queue_printable(""), "the empty string has nothing bad");
	for (i = 0; i < 40 && rc == 0; i++) {
		snprintf(id, sizeof(id), "id-%d", i);
		rc = mdm_queue_ids_add(&l, id, 40, &e);
	}
	ok(rc == 0 && l.n == 40, "40 ids kept, the list grown past 16");
	is_str(l.v[39], "id-39", "in order, copied");
	is_int(mdm_queue_ids_add(&l, "one-more", 40, &e), -1, "the 41st of "
	    "40 refused");
	is_int(e.code, MDM_E_TOOBIG, "as too big");
	mdm_queue_ids_release(&l);
	ok(l.v == NULL && l.n == 0, "released and zeroed");
	mdm_queue_ids_release(&l);
	ok(1, "releasing twice is harmless");
}

int
main(void)
{
	test_ids();
	test_ident();
	test_report();
	test_checkin();
	test_cmd();
	test_build();
	test_profiles();
	test_uuid();
	test_fixtures();
	test_data();
	return tap_done();
}
