/*
 * state_queue: enrollments from Authenticate, TokenUpdate and CheckOut
 * (unlock tokens never erased, user channels, certificate binding), the
 * queue (one payload for many enrollments, unknown ids, supersession),
 * device sessions driven through the API as mdm-serve will drive it
 * (NotNow skipped for the rest of a session, unknown and unparseable
 * results never blocking, Idle with an empty queue writing nothing),
 * inspection, cancel, clear, retention and vacuum, the NanoMDM and
 * MicroMDM check-in and result fixtures, and two processes enqueuing
 * while a third dequeues.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "buf.h"
#include "queue.h"
#include "state.h"
#include "state_int.h"
#include "state_queue.h"
#include "tap.h"

#define TOPIC "com.apple.mgmt.External.test"
#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"

static struct mdm_state *st;
static char dir[4096];

static const char profile_fmt[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<plist version=\"1.0\"><dict>"
    "<key>PayloadContent</key><array/>"
    "<key>PayloadDisplayName</key><string>%s</string>"
    "<key>PayloadIdentifier</key><string>%s</string>"
    "<key>PayloadType</key><string>Configuration</string>"
    "<key>PayloadUUID</key><string>9A1D7E5C-0000-4000-8000-000000000001</string>"
    "<key>PayloadVersion</key><integer>1</integer>"
    "</dict></plist>\n";

/* ---- plist bodies ---- */

struct pb {
	char s[16384];
	size_t n;
};

static void
pb_add(struct pb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
pb_add(struct pb *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	b->n += (size_t)vsnprintf(b->s + b->n, sizeof(b->s) - b->n, fmt, ap);
	va_end(ap);
}

static void
pb_start(struct pb *b)
{
	b->n = 0;
	pb_add(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<plist version=\"1.0\"><dict>");
}

static void
pb_str(struct pb *b, const char *k, const char *v)
{
	if (v != NULL)
		pb_add(b, "<key>%s</key><string>%s</string>", k, v);
}

static void
pb_end(struct pb *b)
{
	pb_add(b, "</dict></plist>\n");
}

/* Splits "UDID" or "UDID:UserID" into the report/check-in keys. */
static void
pb_ident(struct pb *b, const char *id)
{
	char udid[256];
	const char *colon = strchr(id, ':');

	if (colon == NULL) {
		pb_str(b, "UDID", id);
		return;
	}
	snprintf(udid, sizeof(udid), "%.*s", (int)(colon - id), id);
	pb_str(b, "UDID", udid);
	pb_str(b, "UserID", colon + 1);
}

/* ---- check-ins ---- */

static int
auth(const char *udid, const char *serial, const char *hash,
    struct mdm_err *e)
{
	struct mdm_queue_checkin c;
	struct pb b;
	int rc;

	pb_start(&b);
	pb_str(&b, "MessageType", "Authenticate");
	pb_str(&b, "UDID", udid);
	pb_str(&b, "Topic", TOPIC);
	pb_str(&b, "SerialNumber", serial);
	pb_end(&b);
	if (mdm_queue_checkin_parse(b.s, b.n, &c, e) == -1)
		return -1;
	rc = mdm_state_enroll_authenticate(st, &c, hash, e);
	mdm_queue_checkin_release(&c);
	return rc;
}

/* unlock: base64 text, "" for an empty <data/>, NULL for none. */
static int
token_update(const char *id, const char *unlock, const char *awaiting,
    int64_t *tally, struct mdm_err *e)
{
	struct mdm_queue_checkin c;
	struct pb b;
	int rc;

	pb_start(&b);
	pb_str(&b, "MessageType", "TokenUpdate");
	pb_ident(&b, id);
	pb_str(&b, "Topic", TOPIC);
	pb_add(&b, "<key>Token</key><data>3q2+7w==</data>");
	pb_str(&b, "PushMagic", "MAGIC-1");
	if (unlock != NULL)
		pb_add(&b, "<key>UnlockToken</key><data>%s</data>", unlock);
	if (awaiting != NULL)
		pb_add(&b, "<key>AwaitingConfiguration</key><%s/>", awaiting);
	pb_end(&b);
	if (mdm_queue_checkin_parse(b.s, b.n, &c, e) == -1)
		return -1;
	rc = mdm_state_enroll_token_update(st, &c, tally, e);
	mdm_queue_checkin_release(&c);
	return rc;
}

static int
checkout(const char *udid, struct mdm_err *e)
{
	struct mdm_queue_checkin c;
	struct pb b;
	int rc;

	pb_start(&b);
	pb_str(&b, "MessageType", "CheckOut");
	pb_str(&b, "UDID", udid);
	pb_str(&b, "Topic", TOPIC);
	pb_end(&b);
	if (mdm_queue_checkin_parse(b.s, b.n, &c, e) == -1)
		return -1;
	rc = mdm_state_enroll_checkout(st, &c, e);
	mdm_queue_checkin_release(&c);
	return rc;
}

static void
enroll(const char *udid)
{
	struct mdm_err e;

	if (auth(udid, NULL, NULL, &e) == -1 ||
	    token_update(udid, NULL, NULL, NULL, &e) == -1)
		tap_diag("enroll %s: %s", udid, e.msg);
}

/* ---- commands ---- */

/* Queues a command of type to the ids; its UUID into uuid. */
static int
enqueue_type(const char *type, const char *uuid_in, const char *const *ids,
    size_t n, unsigned flags, char *uuid, struct mdm_state_enqueue_stats *s,
    struct mdm_err *e)
{
	struct mdm_queue_build bd = { 0 };
	struct mdm_queue_cmd cmd;
	plist_t p = NULL;
	int rc;

	bd.request_type = type;
	bd.uuid = uuid_in;
	if (mdm_queue_build(&bd, &p, e) == -1)
		return -1;
	rc = mdm_queue_cmd_from_plist(p, &cmd, e);
	plist_free(p);
	if (rc == -1)
		return -1;
	if (uuid != NULL)
		snprintf(uuid, MDM_QUEUE_UUID_MAX + 1, "%s", cmd.uuid);
	rc = mdm_state_queue_enqueue(st, &cmd, ids, n, flags, NULL, NULL, s, e);
	mdm_queue_cmd_release(&cmd);
	return rc;
}

static int
enqueue_profile(const char *ident, const char *name, const char *const *ids,
    size_t n, const char *remove, char *uuid,
    struct mdm_state_enqueue_stats *s, struct mdm_err *e)
{
	struct mdm_queue_build bd = { 0 };
	struct mdm_queue_cmd cmd;
	char prof[2048];
	plist_t p = NULL;
	int rc;

	snprintf(prof, sizeof(prof), profile_fmt, name, ident);
	if (remove != NULL) {
		bd.request_type = "RemoveProfile";
		bd.identifier = remove;
	} else {
		bd.request_type = "InstallProfile";
		bd.profile = (const unsigned char *)prof;
		bd.profile_len = strlen(prof);
	}
	if (mdm_queue_build(&bd, &p, e) == -1)
		return -1;
	rc = mdm_queue_cmd_from_plist(p, &cmd, e);
	plist_free(p);
	if (rc == -1)
		return -1;
	snprintf(uuid, MDM_QUEUE_UUID_MAX + 1, "%s", cmd.uuid);
	rc = mdm_state_queue_enqueue(st, &cmd, ids, n, 0, NULL, NULL, s, e);
	mdm_queue_cmd_release(&cmd);
	return rc;
}

/* ---- sessions ---- */

static struct mdm_state_delivery d;

/*
 * Sends a report for id; status NULL sends one without a Status.  The
 * next command's UUID is in d.uuid ("" for an empty answer).
 */
static int
report_on(struct mdm_state *s, const char *id, const char *status,
    const char *uuid, const char *extra, struct mdm_err *e)
{
	struct mdm_queue_report r;
	struct pb b;
	int rc;

	pb_start(&b);
	pb_ident(&b, id);
	pb_str(&b, "Status", status);
	pb_str(&b, "CommandUUID", uuid);
	if (extra != NULL)
		pb_add(&b, "%s", extra);
	pb_end(&b);
	if (mdm_queue_report_parse(b.s, b.n, &r, e) == -1) {
		mdm_queue_report_release(&r);
		return -1;
	}
	rc = mdm_state_queue_report(s, &r, b.s, b.n, &d, e);
	mdm_queue_report_release(&r);
	return rc;
}

static int
report(const char *id, const char *status, const char *uuid,
    struct mdm_err *e)
{
	return report_on(st, id, status, uuid, NULL, e);
}

static struct mdm_state_queue_counts
counts(void)
{
	struct mdm_state_queue_counts c;
	struct mdm_err e;

	if (mdm_state_queue_counts(st, &c, &e) == -1) {
		tap_diag("counts: %s", e.msg);
		memset(&c, 0, sizeof(c));
	}
	return c;
}

static long long
sql_int(const char *sql)
{
	sqlite3_stmt *s = NULL;
	long long v = -1;

	if (sqlite3_prepare_v2(mdm_state_db(st), sql, -1, &s, NULL) ==
	    SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	else
		tap_diag("%s: %s", sql, sqlite3_errmsg(mdm_state_db(st)));
	sqlite3_finalize(s);
	return v;
}

static void
sql_exec(const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(mdm_state_db(st), sql, NULL, NULL, &msg) != SQLITE_OK)
		tap_diag("%s: %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
}

/* ---- tests ---- */

static void
test_enrollments(void)
{
	struct mdm_state_enrollment en;
	struct mdm_err e;
	int64_t tally = 0;

	ok(auth("D1", "SER1", H1, &e) == 0, "Authenticate D1");
	ok(mdm_state_enroll_get(st, "D1", &en, &e) == 0, "D1 is stored");
	is_str(en.type, "device", "type device");
	is_int(en.enabled, 0, "disabled until TokenUpdate");
	is_str(en.serial_number, "SER1", "serial number");
	is_str(en.topic, TOPIC, "topic");
	is_str(en.cert_hash, H1, "certificate bound");
	ok(en.push_token == NULL, "no push token yet");
	mdm_state_enrollment_release(&en);

	ok(token_update("D1", "AQIDBA==", NULL, &tally, &e) == 0,
	    "TokenUpdate D1 with an UnlockToken");
	is_int(tally, 1, "tally 1: the enrollment's first TokenUpdate");
	mdm_state_enroll_get(st, "D1", &en, &e);
	is_int(en.enabled, 1, "enabled");
	is_str(en.push_token, "deadbeef", "push token as hex");
	is_str(en.push_magic, "MAGIC-1", "PushMagic");
	ok(en.unlock_token != NULL && en.unlock_token_len == 4 &&
	    memcmp(en.unlock_token, "\1\2\3\4", 4) == 0, "UnlockToken stored");
	mdm_state_enrollment_release(&en);

	ok(token_update("D1", NULL, "true", &tally, &e) == 0,
	    "TokenUpdate without an UnlockToken");
	is_int(tally, 2, "tally 2");
	ok(token_update("D1", "", NULL, &tally, &e) == 0,
	    "TokenUpdate with an empty UnlockToken");
	mdm_state_enroll_get(st, "D1", &en, &e);
	ok(en.unlock_token_len == 4 && memcmp(en.unlock_token, "\1\2\3\4",
	    4) == 0, "the stored UnlockToken is never erased by an absent one");
	is_int(en.awaiting_configuration, 1, "AwaitingConfiguration kept");
	mdm_state_enrollment_release(&en);
	ok(token_update("D1", "BQY=", "false", NULL, &e) == 0,
	    "TokenUpdate with a new UnlockToken");
	mdm_state_enroll_get(st, "D1", &en, &e);
	ok(en.unlock_token_len == 2 && en.unlock_token[0] == 5,
	    "a new UnlockToken replaces the old one");
	is_int(en.awaiting_configuration, 0, "AwaitingConfiguration false");
	is_int(en.token_update_tally, 4, "tally 4");
	mdm_state_enrollment_release(&en);

	ok(mdm_state_enroll_get(st, "ser1", &en, &e) == 0 &&
	    strcmp(en.id, "D1") == 0, "found by serial number, any case");
	mdm_state_enrollment_release(&en);
	ok(mdm_state_enroll_get(st, "d1", &en, &e) == 0 &&
	    strcmp(en.id, "D1") == 0, "found by UDID, any case");
	mdm_state_enrollment_release(&en);
	ok(mdm_state_enroll_get(st, "nope", &en, &e) == -1 &&
	    e.code == MDM_E_NOINPUT, "unknown: no input");

	/* User channels. */
	ok(token_update("D1:G1", NULL, NULL, &tally, &e) == 0,
	    "first TokenUpdate of a user channel");
	is_int(tally, 1, "its tally 1");
	ok(mdm_state_enroll_get(st, "D1:G1", &en, &e) == 0, "user channel stored");
	is_str(en.type, "user", "type user");
	is_str(en.device_id, "D1", "rides on D1");
	is_str(en.user_id, "G1", "UserID");
	is_int(en.enabled, 1, "enabled");
	mdm_state_enrollment_release(&en);
	ok(token_update("D9:G1", NULL, NULL, NULL, &e) == -1 &&
	    e.code == MDM_E_NOINPUT, "user channel of an unknown device refused");

	/* A device TokenUpdate without Authenticate creates it. */
	ok(token_update("D0", NULL, NULL, &tally, &e) == 0 && tally == 1,
	    "TokenUpdate without Authenticate creates the device");

	/* Bootstrap token. */
	{
		struct mdm_buf b;

		mdm_buf_init(&b, 1024);
		ok(mdm_state_enroll_get_bootstrap(st, "D1", &b, &e) == 1,
		    "no bootstrap token yet");
		ok(mdm_state_enroll_set_bootstrap(st, "D1", "tok", 3, &e) == 0,
		    "store one");
		ok(mdm_state_enroll_get_bootstrap(st, "D1", &b, &e) == 0 &&
		    b.len == 3 && memcmp(b.data, "tok", 3) == 0, "read it back");
		ok(mdm_state_enroll_set_bootstrap(st, "D1", NULL, 0, &e) == 0 &&
		    mdm_state_enroll_get_bootstrap(st, "D1", &b, &e) == 1,
		    "an empty one deletes it");
		ok(mdm_state_enroll_set_bootstrap(st, "D1:G1", "x", 1,
		    &e) == -1, "not on a user channel");
		mdm_buf_release(&b);
	}
}

static void
test_certs(void)
{
	enum mdm_state_cert c;
	struct mdm_state_enrollment en;
	struct mdm_err e;
	char id[600];

	ok(mdm_state_enroll_cert_check(st, "D1", H1, &c, &e) == 0 &&
	    c == MDM_STATE_CERT_MATCH, "D1 with its certificate: match");
	ok(mdm_state_enroll_cert_check(st, "D1:G1", H1, &c, &e) == 0 &&
	    c == MDM_STATE_CERT_MATCH, "its user channel: the device's binding");
	ok(mdm_state_enroll_cert_check(st, "D1", H2, &c, &e) == 0 &&
	    c == MDM_STATE_CERT_MISMATCH, "another certificate: mismatch");
	ok(auth("D2", NULL, H1, &e) == -1 && e.code == MDM_E_EXISTS,
	    "Authenticate of D2 with D1's certificate refused");
	ok(mdm_state_enroll_get(st, "D2", &en, &e) == -1,
	    "and D2 was not created");
	ok(auth("D2", NULL, H2, &e) == 0, "D2 with its own certificate");
	ok(mdm_state_enroll_cert_check(st, "D1", H2, &c, &e) == 0 &&
	    c == MDM_STATE_CERT_OTHER, "D2's certificate on D1: other's");
	ok(auth("D3", NULL, NULL, &e) == 0, "D3 without a certificate hash");
	ok(mdm_state_enroll_cert_check(st, "D3", H3, &c, &e) == 0 &&
	    c == MDM_STATE_CERT_UNBOUND, "D3: unbound");
	ok(mdm_state_enroll_cert_check(st, "D7", H3, &c, &e) == 0 &&
	    c == MDM_STATE_CERT_UNKNOWN, "unknown enrollment");
	ok(mdm_state_enroll_cert_bind(st, "D1", H2, &e) == -1 &&
	    e.code == MDM_E_EXISTS, "binding D2's certificate to D1 refused");
	ok(mdm_state_enroll_cert_bind(st, "D1:G1", H3, &e) == 0,
	    "renewal: re-bind D1 (named by its user channel)");
	ok(mdm_state_enroll_cert_check(st, "D1", H3, &c, &e) == 0 &&
	    c == MDM_STATE_CERT_MATCH, "D1 now matches the new certificate");
	ok(mdm_state_enroll_cert_check(st, "D1", H1, &c, &e) == 0 &&
	    c == MDM_STATE_CERT_MISMATCH, "and no longer the old one");
	ok(mdm_state_enroll_by_cert(st, H3, id, sizeof(id), &e) == 0 &&
	    strcmp(id, "D1") == 0, "enrollment by certificate");
	ok(mdm_state_enroll_by_cert(st, H1, id, sizeof(id), &e) == -1 &&
	    e.code == MDM_E_NOINPUT, "a certificate bound nowhere");
	ok(mdm_state_enroll_cert_check(st, "D1", "ABC", &c, &e) == -1 &&
	    e.code == MDM_E_USAGE, "a malformed hash refused");
}

static void
test_enqueue(void)
{
	static const char *const ids3[] = { "D1", "D2", "D3" };
	static const char *const bad[] = { "D1", "nobody", "D2" };
	static const char *const dup[] = { "D1", "D1", "d2", "SER1" };
	struct mdm_state_enqueue_stats s;
	struct mdm_queue_build bd = { 0 };
	struct mdm_queue_cmd cmd;
	struct mdm_state_queue_counts c0, c;
	struct mdm_err e;
	const char *ids[60];
	char names[60][16], uuid[80], uuid2[80];
	plist_t p;
	int i;

	for (i = 0; i < 60; i++) {
		snprintf(names[i], sizeof(names[i]), "M%02d", i);
		ids[i] = names[i];
		enroll(names[i]);
	}
	c0 = counts();
	ok(enqueue_type("DeviceInformation", NULL, ids, 60, 0, uuid, &s,
	    &e) == 0, "one command to 60 enrollments");
	is_int((long long)s.queued, 60, "60 queue rows");
	c = counts();
	is_int(c.payloads - c0.payloads, 1, "its payload stored once");
	is_int(c.commands - c0.commands, 1, "one command row");
	is_int(c.pending - c0.pending, 60, "60 pending");
	ok(enqueue_type("DeviceInformation", NULL, ids, 60, 0, uuid2, &s,
	    &e) == 0, "the same command again under a new UUID");
	c = counts();
	is_int(c.payloads - c0.payloads, 1, "still one payload");
	is_int(c.commands - c0.commands, 2, "two commands");
	ok(sql_int("SELECT count(*) FROM command_payloads WHERE "
	    "length(body) > 100") >= 1, "payload bodies are whole commands");

	/* Unknown ids. */
	c0 = counts();
	ok(enqueue_type("SecurityInfo", NULL, bad, 3, 0, uuid, &s, &e) == -1 &&
	    e.code == MDM_E_NOINPUT, "an unknown id: refused");
	ok(strstr(e.msg, "nothing queued") != NULL, "says nothing was queued");
	is_int((long long)s.unknown, 1, "one unknown");
	c = counts();
	is_int(c.pending - c0.pending, 0, "and nothing was queued");
	is_int(c.commands - c0.commands, 0, "no command row either");
	ok(enqueue_type("SecurityInfo", NULL, bad, 3,
	    MDM_STATE_ENQ_SKIP_UNKNOWN, uuid, &s, &e) == 0,
	    "with skip-unknown: queued for the others");
	is_int((long long)s.queued, 2, "two queued");
	is_int((long long)s.unknown, 1, "one skipped");

	/* The same enrollment named twice, by id, UDID and serial. */
	ok(enqueue_type("CertificateList", NULL, dup, 4, 0, uuid, &s, &e) == 0,
	    "D1, D1, d2, SER1");
	is_int((long long)s.queued, 2, "two rows");
	is_int((long long)s.duplicate, 2, "two duplicates");

	/* An existing UUID: more enrollments, same content only. */
	ok(enqueue_type("CertificateList", uuid, ids3, 3, 0, NULL, &s,
	    &e) == 0, "same UUID, same content: sent to more enrollments");
	is_int((long long)s.queued, 1, "D3 added");
	ok(enqueue_type("ProfileList", uuid, ids3, 3, 0, NULL, &s, &e) == -1 &&
	    e.code == MDM_E_EXISTS, "same UUID, other content: refused");

	/* Two enabled device enrollments with one serial number. */
	auth("DS1", "DUPSER", NULL, &e);
	token_update("DS1", NULL, NULL, NULL, &e);
	auth("DS2", "DUPSER", NULL, &e);
	token_update("DS2", NULL, NULL, NULL, &e);
	{
		static const char *const amb[] = { "DUPSER" };
		struct mdm_state_enrollment en;

		ok(enqueue_type("SecurityInfo", NULL, amb, 1, 0, uuid, &s,
		    &e) == -1 && e.code == MDM_E_NOINPUT,
		    "an ambiguous serial number is not guessed");
		ok(mdm_state_enroll_get(st, "DUPSER", &en, &e) == -1 &&
		    e.code == MDM_E_DATA, "lookup says it is ambiguous");
		checkout("DS2", &e);
		ok(mdm_state_enroll_get(st, "DUPSER", &en, &e) == 0 &&
		    strcmp(en.id, "DS1") == 0,
		    "with one of them checked out, the enabled one");
		mdm_state_enrollment_release(&en);
	}

	/* A prepared command must be whole. */
	memset(&cmd, 0, sizeof(cmd));
	ok(mdm_state_queue_enqueue(st, &cmd, ids3, 3, 0, NULL, NULL, &s,
	    &e) == -1, "an empty command refused");
	bd.request_type = "SecurityInfo";
	mdm_queue_build(&bd, &p, &e);
	mdm_queue_cmd_from_plist(p, &cmd, &e);
	plist_free(p);
	ok(mdm_state_queue_enqueue(st, &cmd, ids3, 0, 0, NULL, NULL, &s,
	    &e) == -1 && e.code == MDM_E_USAGE, "no enrollments refused");
	mdm_queue_cmd_release(&cmd);
}

static int
collect_outcome(const char *given, const char *id,
    enum mdm_state_enqueue_outcome o, void *arg, struct mdm_err *e)
{
	char *out = arg;
	size_t n = strlen(out);

	(void)e;
	snprintf(out + n, 512 - n, "%s=%s:%d ", given, id ? id : "-", (int)o);
	return 0;
}

static void
test_enqueue_callback(void)
{
	static const char *const ids[] = { "D2", "ghost", "d3" };
	struct mdm_queue_build bd = { 0 };
	struct mdm_queue_cmd cmd;
	struct mdm_err e;
	char out[512] = "";
	plist_t p;

	bd.request_type = "ProfileList";
	mdm_queue_build(&bd, &p, &e);
	mdm_queue_cmd_from_plist(p, &cmd, &e);
	plist_free(p);
	ok(mdm_state_queue_enqueue(st, &cmd, ids, 3,
	    MDM_STATE_ENQ_SKIP_UNKNOWN, collect_outcome, out, NULL, &e) == 0,
	    "enqueue with a callback");
	is_str(out, "ghost=-:2 D2=D2:0 d3=D3:0 ",
	    "told of the unknown first, then of each queued id as resolved");
	mdm_queue_cmd_release(&cmd);
}

static void
test_supersede(void)
{
	static const char *const ab[] = { "SA", "SB" };
	static const char *const a[] = { "SA" };
	static const char *const b[] = { "SB" };
	struct mdm_state_enqueue_stats s;
	struct mdm_err e;
	char v1[80], v2[80], rm[80], other[80];

	enroll("SA");
	enroll("SB");
	enqueue_profile("com.example.wifi", "v1", ab, 2, NULL, v1, &s, &e);
	enqueue_profile("com.example.vpn", "vpn", ab, 2, NULL, other, &s, &e);
	ok(enqueue_profile("com.example.wifi", "v2", a, 1, NULL, v2, &s,
	    &e) == 0, "revised profile for SA");
	is_int((long long)s.superseded, 1, "supersedes one queued command");
	ok(sql_int("SELECT count(*) FROM queue q JOIN commands c ON "
	    "c.cid = q.command JOIN enrollments n ON n.eid = q.enrollment "
	    "WHERE n.id = 'SA' AND q.status = 'pending' AND "
	    "c.payload_identifier = 'com.example.wifi'") == 1,
	    "SA has one wifi install queued");
	ok(report("SA", "Idle", NULL, &e) == 0 &&
	    strcmp(d.uuid, other) == 0,
	    "SA is first offered the vpn profile (v1 is gone)");
	ok(report("SA", "Acknowledged", other, &e) == 0 &&
	    strcmp(d.uuid, v2) == 0, "then v2");
	ok(report("SB", "Idle", NULL, &e) == 0 && strcmp(d.uuid, v1) == 0,
	    "SB still gets v1");
	ok(enqueue_profile(NULL, NULL, b, 1, "com.example.wifi", rm, &s,
	    &e) == 0, "RemoveProfile of the same identifier for SB");
	is_int((long long)s.superseded, 1,
	    "supersedes the install, even one already sent");
	ok(report("SB", "Acknowledged", v1, &e) == 0,
	    "a late result for the superseded install is still recorded");
	ok(enqueue_profile("com.example.wifi", "v3", a, 1, NULL, v1, &s,
	    &e) == 0 && s.superseded == 1,
	    "v3 for SA supersedes v2 though it was offered");
}

static void
test_session(void)
{
	static const char *const n1[] = { "N1" };
	struct mdm_state_enqueue_stats s;
	struct mdm_state_enrollment en;
	struct mdm_err e;
	char c1[80], c2[80], c3[80];
	static const char chain[] =
	    "<key>ErrorChain</key><array><dict><key>ErrorCode</key>"
	    "<integer>12021</integer><key>ErrorDomain</key>"
	    "<string>MCMDMErrorDomain</string></dict></array>";

	enroll("N1");
	enqueue_type("ProfileList", NULL, n1, 1, 0, c1, &s, &e);
	enqueue_type("SecurityInfo", NULL, n1, 1, 0, c2, &s, &e);
	enqueue_type("CertificateList", NULL, n1, 1, 0, c3, &s, &e);

	ok(report("N1", "Idle", NULL, &e) == 0, "Idle");
	is_int(d.outcome, MDM_STATE_REP_IDLE, "outcome idle");
	is_str(d.uuid, c1, "oldest first");
	ok(d.body.len > 0 && strstr((char *)d.body.data, c1) != NULL &&
	    strstr((char *)d.body.data, "ProfileList") != NULL,
	    "the body is the command with its UUID");
	ok(report("N1", "NotNow", c1, &e) == 0, "NotNow");
	is_int(d.outcome, MDM_STATE_REP_NOT_NOW, "outcome not now");
	is_str(d.uuid, c2, "the next one is offered instead");
	ok(report("N1", "Acknowledged", c2, &e) == 0, "Acknowledged");
	is_int(d.outcome, MDM_STATE_REP_RECORDED, "recorded");
	is_str(d.uuid, c3, "the NotNow'd command is not offered again in "
	    "this session");
	ok(report("N1", "NotNow", c3, &e) == 0 && d.uuid[0] == '\0' &&
	    d.body.len == 0, "nothing left for this session: empty body");
	ok(sql_int("SELECT not_now_count FROM queue q JOIN commands c ON "
	    "c.cid = q.command WHERE c.uuid = (SELECT uuid FROM commands "
	    "WHERE request_type = 'ProfileList' ORDER BY cid DESC LIMIT 1)") ==
	    1, "NotNow counted");

	ok(report("N1", "Idle", NULL, &e) == 0 && strcmp(d.uuid, c1) == 0,
	    "a new session offers the NotNow'd command again");
	ok(report_on(st, "N1", "Error", c1, chain, &e) == 0,
	    "Error with an ErrorChain");
	is_str(d.uuid, c3, "next");
	ok(report("N1", "CommandFormatError", c3, &e) == 0 &&
	    d.uuid[0] == '\0', "CommandFormatError: queue empty");
	mdm_state_enroll_get(st, "N1", &en, &e);
	is_int(en.pending, 0, "nothing pending");
	mdm_state_enrollment_release(&en);
	ok(sql_int("SELECT count(*) FROM results r JOIN enrollments n ON "
	    "n.eid = r.enrollment WHERE n.id = 'N1'") == 3,
	    "three results stored");
	ok(sql_int("SELECT count(*) FROM results WHERE status = 'error' AND "
	    "error_chain LIKE '%12021%'") >= 1, "the ErrorChain as JSON");
	ok(sql_int("SELECT count(*) FROM results WHERE status = "
	    "'format_error'") >= 1, "format_error recorded");

	/* A result for a command this enrollment does not have. */
	enqueue_type("DeviceConfigured", NULL, n1, 1, 0, c1, &s, &e);
	ok(report("N1", "Acknowledged", "no-such-command", &e) == 0,
	    "a result for an unknown command");
	is_int(d.outcome, MDM_STATE_REP_UNKNOWN, "is ignored");
	is_str(d.uuid, c1, "and the next command is still sent");
	ok(report("N1", "Acknowledged", c2, &e) == 0 &&
	    d.outcome == MDM_STATE_REP_RECORDED && d.uuid[0] == '\0',
	    "a result resent for a finished command replaces the first (and "
	    "c1, offered already, waits)");
	ok(report("N1", "Acknowledged", c1, &e) == 0 && d.uuid[0] == '\0',
	    "done");
	ok(report("N1", "Idle", NULL, &e) == 0 && d.uuid[0] == '\0',
	    "Idle with an empty queue: empty body");
	ok(report("nobody", "Idle", NULL, &e) == -1 && e.code == MDM_E_NOINPUT,
	    "a report from an unknown enrollment: no input");
}

static void
test_unparseable(void)
{
	static const char *const u1[] = { "U1" };
	struct mdm_state_enqueue_stats s;
	struct mdm_queue_report r;
	struct mdm_err e;
	char c1[80], c2[80], c3[80];
	static const char garbage[] = "\x01\x02 not a plist at all";

	enroll("U1");
	enqueue_type("ProfileList", NULL, u1, 1, 0, c1, &s, &e);
	enqueue_type("SecurityInfo", NULL, u1, 1, 0, c2, &s, &e);
	enqueue_type("CertificateList", NULL, u1, 1, 0, c3, &s, &e);
	report("U1", "Idle", NULL, &e);
	is_str(d.uuid, c1, "c1 offered");
	ok(report("U1", "Sideways", c1, &e) == 0,
	    "a report with an unknown Status");
	is_int(d.outcome, MDM_STATE_REP_UNPARSEABLE, "stored as unparseable");
	is_str(d.result_uuid, c1, "matched by its CommandUUID");
	is_str(d.uuid, c2, "and the queue moves on");

	/* A body that is not a plist: the server knows the device by its
	   certificate and hands the id over. */
	ok(mdm_queue_report_parse(garbage, sizeof(garbage) - 1, &r, &e) == -1,
	    "garbage does not parse");
	snprintf(r.ident.id, sizeof(r.ident.id), "U1");
	ok(mdm_state_queue_report(st, &r, garbage, sizeof(garbage) - 1, &d,
	    &e) == 0, "the server stores it anyway");
	is_int(d.outcome, MDM_STATE_REP_UNPARSEABLE, "unparseable");
	is_str(d.result_uuid, c2, "attributed to the command last offered");
	is_str(d.uuid, c3, "the queue moves on again");
	mdm_queue_report_release(&r);
	ok(sql_int("SELECT count(*) FROM results r JOIN commands c ON "
	    "c.cid = r.command WHERE r.status = 'unparseable' AND "
	    "r.raw = CAST(X'0102' || CAST(' not a plist at all' AS BLOB) "
	    "AS BLOB)") == 1, "stored raw, byte for byte");
	ok(sql_int("SELECT count(*) FROM queue WHERE status = "
	    "'unparseable'") == 2, "both commands left the queue");

	ok(report("U1", "Acknowledged", c3, &e) == 0 && d.uuid[0] == '\0',
	    "queue empty");
	ok(mdm_queue_report_parse(garbage, sizeof(garbage) - 1, &r, &e) == -1,
	    "more garbage");
	snprintf(r.ident.id, sizeof(r.ident.id), "U1");
	ok(mdm_state_queue_report(st, &r, garbage, sizeof(garbage) - 1, &d,
	    &e) == 0 && d.outcome == MDM_STATE_REP_ORPHAN,
	    "matched to nothing: kept as an orphan result");
	mdm_queue_report_release(&r);
	ok(sql_int("SELECT count(*) FROM results WHERE command IS NULL") == 1,
	    "an orphan result has no command");

	/* The same unparseable answer forever cannot loop a session. */
	enqueue_type("ProfileList", NULL, u1, 1, 0, c1, &s, &e);
	report("U1", "Idle", NULL, &e);
	ok(report("U1", "Acknowledged", "other-uuid", &e) == 0 &&
	    d.outcome == MDM_STATE_REP_UNKNOWN && d.uuid[0] == '\0',
	    "an answer naming another command: the offered one is not "
	    "offered again in this session");
	ok(report("U1", "Idle", NULL, &e) == 0 && strcmp(d.uuid, c1) == 0,
	    "but in the next one");
}

static void
test_idle_writes_nothing(void)
{
	static const char *const w1[] = { "W1" };
	struct mdm_state_enqueue_stats s;
	struct mdm_state *other = NULL;
	struct mdm_err e;
	char c1[80];

	enroll("W1");
	ok(report("W1", "Idle", NULL, &e) == 0, "Idle once (sets last seen)");
	ok(sql_int("SELECT last_seen_at FROM enrollments WHERE id = 'W1'") >
	    0, "last_seen_at written");
	if (mdm_state_open(dir, 0, &other, &e) == -1 ||
	    mdm_state_begin(other, &e) == -1) {
		tap_skip(4, "cannot open a second connection");
		mdm_state_close(other);
		return;
	}
	mdm_state_set_busy_timeout(st, 0);
	ok(report("W1", "Idle", NULL, &e) == 0,
	    "another process holds the write lock: Idle with an empty queue "
	    "still answers (it writes nothing)");
	mdm_state_rollback(other);
	sql_exec("UPDATE enrollments SET last_seen_at = 1 WHERE id = 'W1'");
	mdm_state_begin(other, &e);
	ok(report("W1", "Idle", NULL, &e) == 0,
	    "and when last_seen_at is due but the lock is held, the check-in "
	    "still succeeds (the timestamp waits)");
	enqueue_type("SecurityInfo", NULL, w1, 1, 0, c1, &s, &e);
	ok(e.code == MDM_E_TEMPFAIL, "(enqueue meanwhile is busy: %s)",
	    mdm_err_code_name(e.code));
	mdm_state_rollback(other);
	enqueue_type("SecurityInfo", NULL, w1, 1, 0, c1, &s, &e);
	mdm_state_begin(other, &e);
	ok(report("W1", "Idle", NULL, &e) == -1 && e.code == MDM_E_TEMPFAIL,
	    "with a command queued, Idle must write: busy, try again");
	mdm_state_rollback(other);
	mdm_state_close(other);
	mdm_state_set_busy_timeout(st, MDM_STATE_BUSY_TIMEOUT_MS);
	ok(report("W1", "Idle", NULL, &e) == 0 && strcmp(d.uuid, c1) == 0,
	    "lock released: the command is sent");
	report("W1", "Acknowledged", c1, &e);
}

static void
test_authenticate_clears(void)
{
	static const char *const both[] = { "D1", "D1:G1", "D2" };
	struct mdm_state_enqueue_stats s;
	struct mdm_state_enrollment en;
	struct mdm_err e;
	char c1[80];
	long long before;

	token_update("D1:G1", NULL, NULL, NULL, &e);
	ok(enqueue_type("ProfileList", NULL, both, 3, 0, c1, &s, &e) == 0 &&
	    s.queued == 3, "a command for D1, its user channel and D2");
	before = sql_int("SELECT count(*) FROM queue WHERE status = "
	    "'cancelled'");
	ok(auth("D1", "SER1", H3, &e) == 0, "D1 authenticates again");
	ok(sql_int("SELECT count(*) FROM queue q JOIN enrollments n ON "
	    "n.eid = q.enrollment WHERE n.id IN ('D1', 'D1:G1') AND "
	    "q.status = 'pending'") == 0,
	    "D1's and its user channel's queues are cleared");
	ok(sql_int("SELECT count(*) FROM queue WHERE status = "
	    "'cancelled'") - before >= 2, "as cancelled rows");
	ok(sql_int("SELECT count(*) FROM queue q JOIN enrollments n ON "
	    "n.eid = q.enrollment WHERE n.id = 'D2' AND q.status = "
	    "'pending'") >= 1, "D2's queue is untouched");
	mdm_state_enroll_get(st, "D1:G1", &en, &e);
	is_int(en.enabled, 0, "the user channel waits for a TokenUpdate");
	is_int(en.token_update_tally, 0, "its tally reset");
	mdm_state_enrollment_release(&en);
	mdm_state_enroll_get(st, "D1", &en, &e);
	is_int(en.enabled, 0, "D1 disabled until TokenUpdate");
	ok(en.unlock_token != NULL, "D1 keeps its UnlockToken");
	mdm_state_enrollment_release(&en);
	token_update("D1", NULL, NULL, NULL, &e);
	token_update("D1:G1", NULL, NULL, NULL, &e);

	enqueue_type("ProfileList", NULL, both, 2, 0, c1, &s, &e);
	ok(checkout("D1", &e) == 0, "CheckOut D1");
	mdm_state_enroll_get(st, "D1:G1", &en, &e);
	is_int(en.enabled, 0, "its user channel disabled too");
	is_int(en.pending, 0, "and its queue cleared");
	mdm_state_enrollment_release(&en);
	ok(checkout("nobody", &e) == -1 && e.code == MDM_E_NOINPUT,
	    "CheckOut of an unknown device");
	auth("D1", "SER1", H3, &e);
	token_update("D1", NULL, NULL, NULL, &e);
}

struct rows {
	int n;
	char last[256];
};

static int
count_row(const struct mdm_state_queue_row *r, void *arg, struct mdm_err *e)
{
	struct rows *x = arg;

	(void)e;
	x->n++;
	snprintf(x->last, sizeof(x->last), "%s %s %s %s", r->enrollment_id,
	    r->request_type, r->status, r->command_uuid);
	return 0;
}

static int
count_result(const struct mdm_state_result_row *r, void *arg,
    struct mdm_err *e)
{
	struct rows *x = arg;

	(void)e;
	x->n++;
	snprintf(x->last, sizeof(x->last), "%s %s %s %zu %s", r->enrollment_id,
	    r->request_type ? r->request_type : "-", r->status, r->raw_len,
	    r->error_chain ? r->error_chain : "-");
	return 0;
}

static int
count_enrollment(const struct mdm_state_enrollment *en, void *arg,
    struct mdm_err *e)
{
	struct rows *x = arg;

	(void)e;
	x->n++;
	snprintf(x->last, sizeof(x->last), "%s", en->id);
	return 0;
}

static void
test_inspect(void)
{
	static const char *const l[] = { "L1", "L2" };
	struct mdm_state_queue_filter f = { 0 };
	struct mdm_state_enroll_filter ef = { 0 };
	struct mdm_state_enqueue_stats s;
	struct rows x;
	struct mdm_err e;
	int64_t n;
	char c1[80], c2[80];

	enroll("L1");
	enroll("L2");
	enqueue_type("ProfileList", NULL, l, 2, 0, c1, &s, &e);
	enqueue_type("SecurityInfo", NULL, l, 2, 0, c2, &s, &e);
	f.key = "L1";
	memset(&x, 0, sizeof(x));
	ok(mdm_state_queue_foreach(st, &f, count_row, &x, &e) == 0 && x.n == 2,
	    "L1 has two pending commands");
	f.command_uuid = c2;
	memset(&x, 0, sizeof(x));
	ok(mdm_state_queue_foreach(st, &f, count_row, &x, &e) == 0 &&
	    x.n == 1 && strncmp(x.last, "L1 SecurityInfo pending", 23) == 0,
	    "filtered by command too");
	f.key = NULL;
	memset(&x, 0, sizeof(x));
	ok(mdm_state_queue_foreach(st, &f, count_row, &x, &e) == 0 && x.n == 2,
	    "a command's rows");
	f.command_uuid = "ghost";
	ok(mdm_state_queue_foreach(st, &f, count_row, &x, &e) == -1 &&
	    e.code == MDM_E_NOINPUT, "an unknown command: no input");
	f.command_uuid = NULL;
	f.key = "ghost";
	ok(mdm_state_queue_foreach(st, &f, count_row, &x, &e) == -1 &&
	    e.code == MDM_E_NOINPUT, "an unknown enrollment: no input");

	report("L1", "Idle", NULL, &e);
	report("L1", "Acknowledged", c1, &e);
	memset(&x, 0, sizeof(x));
	ok(mdm_state_queue_results_foreach(st, "L1", NULL, count_result, &x,
	    &e) == 0 && x.n == 1 && strncmp(x.last, "L1 ProfileList "
	    "acknowledged", 27) == 0, "L1's result");
	f.key = "L1";
	f.statuses = MDM_STATE_Q_FINISHED;
	memset(&x, 0, sizeof(x));
	ok(mdm_state_queue_foreach(st, &f, count_row, &x, &e) == 0 && x.n == 1,
	    "finished rows on request");

	ok(mdm_state_queue_cancel(st, c2, &n, &e) == 0 && n == 2,
	    "cancel a command: two rows");
	ok(mdm_state_queue_cancel(st, c2, &n, &e) == 0 && n == 0,
	    "cancel again: nothing left to cancel");
	ok(mdm_state_queue_cancel(st, "ghost", &n, &e) == -1 &&
	    e.code == MDM_E_NOINPUT, "cancel an unknown command");
	enqueue_type("ProfileList", NULL, l, 2, 0, c1, &s, &e);
	ok(mdm_state_queue_clear(st, "L2", &n, &e) == 0 && n == 2,
	    "clear L2: both its pending commands");
	ok(mdm_state_queue_clear(st, "ghost", &n, &e) == -1 &&
	    e.code == MDM_E_NOINPUT, "clear an unknown enrollment");

	ef.pending = 1;
	memset(&x, 0, sizeof(x));
	ok(mdm_state_enroll_foreach(st, &ef, count_enrollment, &x, &e) == 0 &&
	    x.n >= 1, "enrollments with pending commands (%d)", x.n);
	ok(mdm_state_enroll_push_result(st, "L1", 1000, 410, "Unregistered", 1,
	    &e) == 0, "record a dead token");
	ef.pending = 0;
	ef.enabled = 1;
	memset(&x, 0, sizeof(x));
	mdm_state_enroll_foreach(st, &ef, count_enrollment, &x, &e);
	ef.enabled = 0;
	{
		struct rows all = { 0 };
		struct mdm_state_enrollment en;

		mdm_state_enroll_foreach(st, NULL, count_enrollment, &all, &e);
		ok(x.n < all.n, "pushable enrollments leave out dead tokens "
		    "(%d of %d)", x.n, all.n);
		{
			struct mdm_state_queue_counts qc;

			ok(mdm_state_queue_counts(st, &qc, &e) == 0 &&
			    qc.pushable == x.n, "the count of pushable ones "
			    "is the filter's");
		}
		{
			struct mdm_state_enroll_filter pf = { 0 };
			struct rows page = { 0 };
			char after[256] = "";
			int pages = 0, seen = 0;

			pf.limit = 1;
			do {
				memset(&page, 0, sizeof(page));
				pf.after_id = pages > 0 ? after : NULL;
				if (mdm_state_enroll_foreach(st, &pf,
				    count_enrollment, &page, &e) == -1)
					break;
				ok(page.n <= 1, "a page holds at most limit");
				snprintf(after, sizeof(after), "%s", page.last);
				seen += page.n;
				pages++;
			} while (page.n > 0 && pages <= all.n);
			is_int(seen, all.n, "keyset pages cover every "
			    "enrollment once");
		}
		mdm_state_enroll_get(st, "L1", &en, &e);
		ok(en.token_dead == 1 && en.last_push_status == 410 &&
		    strcmp(en.last_push_reason, "Unregistered") == 0,
		    "push health stored");
		mdm_state_enrollment_release(&en);
	}
	token_update("L1", NULL, NULL, NULL, &e);
	ef.seen_before = 5;
	sql_exec("UPDATE enrollments SET last_seen_at = 1 WHERE id = 'L2'");
	memset(&x, 0, sizeof(x));
	ok(mdm_state_enroll_foreach(st, &ef, count_enrollment, &x, &e) == 0 &&
	    x.n >= 1, "stale enrollments");
}

static void
test_purge(void)
{
	static const char *const p1[] = { "P1", "P2" };
	struct mdm_state_purge pu = { 0 };
	struct mdm_state_purge_stats ps;
	struct mdm_state_enqueue_stats s;
	struct mdm_state_queue_counts c0, c;
	struct mdm_err e;
	char c1[80], c2[80];
	long long av;

	enroll("P1");
	enroll("P2");
	enqueue_type("ProfileList", NULL, p1, 2, 0, c1, &s, &e);
	enqueue_type("SecurityInfo", NULL, p1, 2, 0, c2, &s, &e);
	report("P1", "Idle", NULL, &e);
	report("P1", "Acknowledged", c1, &e);
	report("P1", "Acknowledged", c2, &e);

	pu.older_than = -1;
	c0 = counts();
	ok(mdm_state_queue_purge(st, &pu, &ps, &e) == 0, "purge, defaults");
	is_int(ps.queue_rows + ps.results, 0,
	    "nothing younger than 30 days goes");
	/* Age everything finished by 31 days. */
	sql_exec("UPDATE queue SET updated_at = updated_at - 31 * 86400 "
	    "WHERE status <> 'pending'");
	sql_exec("UPDATE queue SET created_at = created_at - 31 * 86400");
	sql_exec("UPDATE results SET received_at = received_at - 31 * 86400");
	ok(mdm_state_queue_purge(st, &pu, &ps, &e) == 0, "purge again");
	c = counts();
	is_int(c.acknowledged + c.error + c.format_error + c.unparseable +
	    c.cancelled + c.superseded, 0, "every finished row older than "
	    "30 days is gone");
	is_int(c.results, 0, "and every result");
	is_int(c.pending, c0.pending, "pending rows are kept");
	ok(ps.queue_rows > 0 && ps.results > 0, "purged %lld rows, %lld "
	    "results, %lld commands, %lld payloads", (long long)ps.queue_rows,
	    (long long)ps.results, (long long)ps.commands,
	    (long long)ps.payloads);
	is_int(sql_int("SELECT count(*) FROM commands c WHERE NOT EXISTS "
	    "(SELECT 1 FROM queue q WHERE q.command = c.cid)"), 0,
	    "no command is left without queue rows");
	is_int(sql_int("SELECT count(*) FROM command_payloads p WHERE NOT "
	    "EXISTS (SELECT 1 FROM commands c WHERE c.payload = p.pid)"), 0,
	    "no payload is left without a command");
	is_int(sql_int("SELECT count(*) FROM queue q JOIN commands c ON "
	    "c.cid = q.command JOIN enrollments n ON n.eid = q.enrollment "
	    "WHERE n.id = 'P2' AND q.status = 'pending'"), 2,
	    "P2's two pending commands survive");

	pu.statuses = MDM_STATE_Q_PENDING;
	pu.older_than = 30 * 86400;
	ok(mdm_state_queue_purge(st, &pu, &ps, &e) == 0 && ps.queue_rows > 0,
	    "purge --status pending removes old pending rows (%lld)",
	    (long long)ps.queue_rows);
	is_int(counts().pending, 0, "no pending rows are left");
	ok(mdm_state_qstatus_parse("superseded") == MDM_STATE_Q_SUPERSEDED &&
	    mdm_state_qstatus_parse("done") == -1, "status names");

	/* Vacuum: a database made by 0001 is not in incremental mode. */
	av = sql_int("PRAGMA auto_vacuum");
	memset(&pu, 0, sizeof(pu));
	pu.older_than = -1;
	pu.vacuum = 1;
	ok(mdm_state_queue_purge(st, &pu, &ps, &e) == 0, "purge --vacuum");
	is_int(sql_int("PRAGMA auto_vacuum"), 2,
	    "the database is now in incremental auto-vacuum mode");
	tap_diag("auto_vacuum was %lld; vacuum gave back %lld bytes", av,
	    (long long)ps.bytes_freed);
	pu.vacuum = 0;
	ok(mdm_state_queue_purge(st, &pu, &ps, &e) == 0,
	    "later purges run incremental_vacuum");
}

static void
test_growth_bounded(void)
{
	static const char *const g[] = { "G1" };
	struct mdm_state_purge pu = { 0 };
	struct mdm_state_enqueue_stats s;
	struct mdm_state_delivery *dd = &d;
	struct mdm_err e;
	char c1[80];
	long long pages_after_first = 0, pages;
	int round, i;

	enroll("G1");
	pu.older_than = 0;
	/* The same work twice, purged between: the file stops growing. */
	for (round = 0; round < 3; round++) {
		for (i = 0; i < 200; i++) {
			enqueue_type("DeviceInformation", NULL, g, 1, 0, c1, &s,
			    &e);
			report("G1", "Idle", NULL, &e);
			report("G1", "Acknowledged", dd->uuid, &e);
		}
		sql_exec("UPDATE queue SET updated_at = updated_at - 10");
		sql_exec("UPDATE results SET received_at = received_at - 10");
		mdm_state_queue_purge(st, &pu, NULL, &e);
		pages = sql_int("PRAGMA page_count");
		if (round == 0)
			pages_after_first = pages;
	}
	ok(pages <= pages_after_first + 2,
	    "600 commands and results, purged after each 200: the database "
	    "stays at %lld pages (first round %lld)", pages,
	    pages_after_first);
}

static void
test_fixtures(void)
{
	struct mdm_queue_checkin c;
	struct mdm_queue_report r;
	struct mdm_state_enrollment en;
	struct mdm_state_enqueue_stats s;
	struct mdm_buf b;
	struct mdm_err e;
	static const char *const dev2[] = {
		"66ADE930-5FDF-5EC4-8429-15640684C489"
	};
	static const char *const files[] = {
		"nanomdm/mdm/testdata/Authenticate.1.plist",
		"nanomdm/mdm/testdata/TokenUpdate.1.plist",
		"nanomdm/mdm/testdata/Authenticate.2.plist",
		"nanomdm/mdm/testdata/TokenUpdate.2.plist",
		"micromdm/checkin/testdata/TokenUpdate.plist",
	};
	const char *path;
	size_t i;
	int rc;

	if (tap_fixture("nanomdm") == NULL) {
		tap_skip(1, "no fixtures ($MDM_FIXTURES)");
		return;
	}
	mdm_buf_init(&b, MDM_CAP_PLIST);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		mdm_buf_reset(&b);
		path = tap_fixture(files[i]);
		if (mdm_buf_read_file(&b, path, &e) == -1 ||
		    mdm_queue_checkin_parse(b.data, b.len, &c, &e) == -1) {
			ok(0, "%s: %s", files[i], e.msg);
			continue;
		}
		if (c.type == MDM_QUEUE_AUTHENTICATE)
			rc = mdm_state_enroll_authenticate(st, &c, NULL, &e);
		else
			rc = mdm_state_enroll_token_update(st, &c, NULL, &e);
		ok(rc == 0, "%s is stored", files[i]);
		mdm_queue_checkin_release(&c);
	}
	ok(mdm_state_enroll_get(st, "663b07bb783e9ade1dae4fbb92ea12afc0ce5b69",
	    &en, &e) == 0, "the iPad of Authenticate.1");
	is_str(en.serial_number, "F5JM992LF193", "its serial");
	is_str(en.product_name, "iPad2,5", "its product name");
	ok(en.enabled && en.push_token != NULL &&
	    strlen(en.push_token) == 64, "enabled, 32-byte token as hex");
	is_str(en.push_magic, "CEFDF0BD-E342-4A27-8742-E930EA116B0A",
	    "its PushMagic");
	ok(en.unlock_token_len > 1000, "its UnlockToken (%zu bytes)",
	    en.unlock_token_len);
	mdm_state_enrollment_release(&en);
	ok(mdm_state_enroll_get(st, "FA01680E-98CA-5557-8F59-7716ECFEE964",
	    &en, &e) == 0 && en.enabled && en.unlock_token == NULL,
	    "MicroMDM's TokenUpdate: enrolled, empty UnlockToken not stored");
	mdm_state_enrollment_release(&en);

	/* The Mac of Authenticate.2 answers DeviceInformation.1. */
	ok(enqueue_type("DeviceInformation",
	    "76eda240-5488-4989-8339-f2ae160113c4", dev2, 1, 0, NULL, &s,
	    &e) == 0, "DeviceInformation queued with the fixture's UUID");
	report(dev2[0], "Idle", NULL, &e);
	is_str(d.uuid, "76eda240-5488-4989-8339-f2ae160113c4", "sent");
	mdm_buf_reset(&b);
	path = tap_fixture("nanomdm/mdm/testdata/DeviceInformation.1.plist");
	if (mdm_buf_read_file(&b, path, &e) == 0 &&
	    mdm_queue_report_parse(b.data, b.len, &r, &e) == 0) {
		ok(mdm_state_queue_report(st, &r, b.data, b.len, &d, &e) == 0 &&
		    d.outcome == MDM_STATE_REP_RECORDED,
		    "DeviceInformation.1 is recorded");
		ok(sql_int("SELECT length(raw) FROM results r JOIN commands c "
		    "ON c.cid = r.command WHERE c.uuid = "
		    "'76eda240-5488-4989-8339-f2ae160113c4'") ==
		    (long long)b.len, "its raw result stored whole");
	} else
		ok(0, "DeviceInformation.1: %s", e.msg);
	mdm_queue_report_release(&r);
	mdm_buf_release(&b);
}

/* ---- concurrency ---- */

#define CONC_DEV 20
#define CONC_CMDS 30

static int
child_enqueue(int w)
{
	const char *ids[CONC_DEV];
	char names[CONC_DEV][16], uuid[80];
	struct mdm_err e;
	int i;

	if (mdm_state_open(dir, 0, &st, &e) == -1)
		return 1;
	for (i = 0; i < CONC_DEV; i++) {
		snprintf(names[i], sizeof(names[i]), "C%02d", i);
		ids[i] = names[i];
	}
	for (i = 0; i < CONC_CMDS; i++) {
		snprintf(uuid, sizeof(uuid), "w%d-%d", w, i);
		if (enqueue_type(i % 2 ? "SecurityInfo" : "ProfileList", uuid,
		    ids, CONC_DEV, 0, NULL, NULL, &e) == -1) {
			fprintf(stderr, "enqueue %s: %s\n", uuid, e.msg);
			return 1;
		}
	}
	mdm_state_close(st);
	return 0;
}

static int
child_dequeue(void)
{
	static char seen[2 * CONC_CMDS * CONC_DEV][96];
	struct mdm_err e;
	char id[16], key[96];
	int total = 0, i, j, k;
	time_t start = time(NULL);

	if (mdm_state_open(dir, 0, &st, &e) == -1)
		return 1;
	mdm_state_delivery_init(&d);
	while (total < 2 * CONC_CMDS * CONC_DEV && time(NULL) - start < 120) {
		for (i = 0; i < CONC_DEV; i++) {
			snprintf(id, sizeof(id), "C%02d", i);
			if (report(id, "Idle", NULL, &e) == -1) {
				fprintf(stderr, "idle %s: %s\n", id, e.msg);
				return 1;
			}
			while (d.uuid[0] != '\0') {
				snprintf(key, sizeof(key), "%s/%s", id, d.uuid);
				for (k = 0; k < total; k++)
					if (strcmp(seen[k], key) == 0) {
						fprintf(stderr, "%s delivered "
						    "twice\n", key);
						return 1;
					}
				snprintf(seen[total++], sizeof(seen[0]), "%s",
				    key);
				snprintf(key, sizeof(key), "%s", d.uuid);
				for (j = 0; j < 50; j++) {
					if (report(id, "Acknowledged", key,
					    &e) == 0)
						break;
					usleep(10000);
				}
				if (j == 50) {
					fprintf(stderr, "ack: %s\n", e.msg);
					return 1;
				}
			}
		}
	}
	mdm_state_delivery_release(&d);
	mdm_state_close(st);
	return total == 2 * CONC_CMDS * CONC_DEV ? 0 : 2;
}

static void
test_concurrency(void)
{
	struct mdm_state_queue_counts c0, c;
	pid_t pids[3];
	int i, status, fails = 0;
	char name[16];

	for (i = 0; i < CONC_DEV; i++) {
		snprintf(name, sizeof(name), "C%02d", i);
		enroll(name);
	}
	c0 = counts();
	fflush(stdout);
	for (i = 0; i < 3; i++) {
		if ((pids[i] = fork()) == -1) {
			tap_skip(4, "fork failed");
			return;
		}
		if (pids[i] == 0)
			_exit(i < 2 ? child_enqueue(i) : child_dequeue());
	}
	for (i = 0; i < 3; i++) {
		if (waitpid(pids[i], &status, 0) == -1 ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fails++;
			tap_diag("child %d: status %d", i, status);
		}
	}
	ok(fails == 0, "two processes enqueued %d commands to %d enrollments "
	    "each while a third dequeued them all, none twice",
	    CONC_CMDS, CONC_DEV);
	c = counts();
	is_int(c.acknowledged - c0.acknowledged, 2 * CONC_CMDS * CONC_DEV,
	    "every row acknowledged exactly once: none lost");
	is_int(c.pending - c0.pending, 0, "nothing left pending");
	is_int(c.commands - c0.commands, 2 * CONC_CMDS, "one row per command");
}

int
main(void)
{
	struct mdm_err e;

	snprintf(dir, sizeof(dir), "%s/state", tap_tmpdir());
	if (mdm_state_open(dir, MDM_STATE_CREATE, &st, &e) == -1) {
		ok(0, "open state: %s", e.msg);
		return tap_done();
	}
	mdm_state_delivery_init(&d);
	test_enrollments();
	test_certs();
	test_enqueue();
	test_enqueue_callback();
	test_supersede();
	test_session();
	test_unparseable();
	test_idle_writes_nothing();
	test_authenticate_clears();
	test_inspect();
	test_purge();
	test_growth_bounded();
	test_fixtures();
	test_concurrency();
	mdm_state_delivery_release(&d);
	mdm_state_close(st);
	return tap_done();
}
