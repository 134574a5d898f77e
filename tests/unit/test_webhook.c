/*
 * webhook: event JSON against NanoMDM's webhook fixtures (built from the
 * same check-in and report plists, compared as parsed JSON), the ids
 * object of every enrollment type, url_params decoding, the optional
 * fields, created_at, argument checks, HMAC against RFC 4231 vectors, and
 * the backoff schedule.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "json.h"
#include "queue.h"
#include "webhook.h"
#include "tap.h"

/* Builds ev and parses the JSON back; NULL (and a diag) on failure. */
static json_t *
event(const struct mdm_webhook_event *ev)
{
	struct mdm_buf b;
	struct mdm_err e = { 0 };
	json_t *j = NULL;

	mdm_buf_init(&b, MDM_WEBHOOK_BODY_MAX);
	if (mdm_webhook_event_json(ev, &b, &e) == -1)
		tap_diag("event_json: %s", e.msg);
	else if (mdm_json_parse(b.data, b.len, &j, &e) == -1)
		tap_diag("parse: %s: %s", e.msg, (const char *)b.data);
	mdm_buf_release(&b);
	return j;
}

static const char *
str_at(const json_t *j, const char *sub, const char *key)
{
	return mdm_json_get_string(sub ? mdm_json_get_object(j, sub) : j, key);
}

static int
has(const json_t *j, const char *sub, const char *key)
{
	const json_t *o = sub ? mdm_json_get_object(j, sub) : j;

	return o != NULL && json_object_get(o, key) != NULL;
}

/* Every key of want is in got with an equal value, and no other key. */
static void
same_object(const json_t *got, const json_t *want, const char *what)
{
	const char *k;
	json_t *v;
	char *a, *b;

	json_object_foreach((json_t *)want, k, v) {
		a = json_dumps(json_object_get(got, k), JSON_ENCODE_ANY);
		b = json_dumps(v, JSON_ENCODE_ANY);
		ok(json_equal(json_object_get(got, k), v), "%s: %s", what, k);
		if (!json_equal(json_object_get(got, k), v))
			tap_diag("got %s, want %s", a ? a : "(none)", b);
		free(a);
		free(b);
	}
	json_object_foreach((json_t *)got, k, v)
		if (json_object_get(want, k) == NULL)
			ok(0, "%s: unexpected key %s", what, k);
}

/* got and want have the same keys. */
static void
same_keys(const json_t *got, const json_t *want, const char *what)
{
	const char *k;
	json_t *v;
	int same = json_object_size(got) == json_object_size(want);

	json_object_foreach((json_t *)want, k, v)
		same &= json_object_get(got, k) != NULL;
	ok(same, "%s: same keys", what);
}

static int
read_fixture(const char *rel, struct mdm_buf *b)
{
	const char *p = tap_fixture(rel);
	struct mdm_err e = { 0 };

	mdm_buf_init(b, MDM_CAP_PLIST);
	if (p == NULL || mdm_buf_read_file(b, p, &e) == -1)
		return -1;
	return 0;
}

static void
test_fixture_authenticate(void)
{
	struct mdm_buf raw, want;
	struct mdm_queue_checkin m;
	struct mdm_webhook_event ev;
	struct mdm_err e = { 0 };
	json_t *got = NULL, *exp = NULL;

	if (read_fixture("nanomdm/mdm/testdata/Authenticate.2.plist",
	    &raw) == -1 ||
	    read_fixture("nanomdm/service/webhook/testdata/Authenticate.2.json",
	    &want) == -1) {
		tap_skip(1, "NanoMDM fixtures absent");
		mdm_buf_release(&raw);
		return;
	}
	ok(mdm_queue_checkin_parse(raw.data, raw.len, &m, &e) == 0,
	    "Authenticate.2.plist parses");
	memset(&ev, 0, sizeof(ev));
	ev.topic = "mdm.Authenticate";
	ev.ident = &m.ident;
	ev.raw = raw.data;
	ev.raw_len = raw.len;
	ev.event_id = "test_event_id";
	ev.created_at_ns = 1;
	got = event(&ev);
	ok(got != NULL && mdm_json_parse(want.data, want.len, &exp, &e) == 0,
	    "Authenticate event and fixture parse");
	if (got != NULL && exp != NULL) {
		is_str(str_at(got, NULL, "topic"), "mdm.Authenticate", "topic");
		is_str(str_at(got, NULL, "event_id"),
		    str_at(exp, NULL, "event_id"), "event_id");
		/* Go's zero time is year 1: only the format can match. */
		is_str(str_at(got, NULL, "created_at"),
		    "1970-01-01T00:00:00.000000001Z", "created_at");
		ok(!has(got, NULL, "acknowledge_event"), "no acknowledge_event");
		same_object(mdm_json_get_object(got, "checkin_event"),
		    mdm_json_get_object(exp, "checkin_event"), "checkin_event");
		same_keys(got, exp, "top level");
	}
	json_decref(got);
	json_decref(exp);
	mdm_queue_checkin_release(&m);
	mdm_buf_release(&raw);
	mdm_buf_release(&want);
}

static void
test_fixture_report(void)
{
	struct mdm_buf raw, want;
	struct mdm_queue_report r;
	struct mdm_webhook_event ev;
	struct mdm_err e = { 0 };
	json_t *got = NULL, *exp = NULL;

	if (read_fixture("nanomdm/mdm/testdata/DeviceInformation.1.plist",
	    &raw) == -1 ||
	    read_fixture("nanomdm/service/webhook/testdata/"
	    "DeviceInformation.1.json", &want) == -1) {
		tap_skip(1, "NanoMDM fixtures absent");
		mdm_buf_release(&raw);
		return;
	}
	memset(&r, 0, sizeof(r));
	ok(mdm_queue_report_parse(raw.data, raw.len, &r, &e) == 0,
	    "DeviceInformation.1.plist parses");
	memset(&ev, 0, sizeof(ev));
	ev.topic = "mdm.Connect";
	ev.ident = &r.ident;
	ev.raw = raw.data;
	ev.raw_len = raw.len;
	ev.status = mdm_queue_status_name(r.status);
	ev.command_uuid = r.command_uuid;
	ev.event_id = "test_event_id";
	ev.created_at_ns = 1534170616132723950LL;
	got = event(&ev);
	ok(got != NULL && mdm_json_parse(want.data, want.len, &exp, &e) == 0,
	    "report event and fixture parse");
	if (got != NULL && exp != NULL) {
		is_str(str_at(got, NULL, "topic"), "mdm.Connect", "topic");
		/* protocol.md's example: nanoseconds, trailing zero cut. */
		is_str(str_at(got, NULL, "created_at"),
		    "2018-08-13T14:30:16.13272395Z", "created_at");
		ok(!has(got, NULL, "checkin_event"), "no checkin_event");
		same_object(mdm_json_get_object(got, "acknowledge_event"),
		    mdm_json_get_object(exp, "acknowledge_event"),
		    "acknowledge_event");
		same_keys(got, exp, "top level");
	}
	json_decref(got);
	json_decref(exp);
	mdm_queue_report_release(&r);
	mdm_buf_release(&raw);
	mdm_buf_release(&want);
}

static void
mkident(struct mdm_queue_ident *id, enum mdm_queue_enroll_type t,
    const char *eid, const char *dev)
{
	memset(id, 0, sizeof(*id));
	id->type = t;
	snprintf(id->id, sizeof(id->id), "%s", eid);
	snprintf(id->device_id, sizeof(id->device_id), "%s", dev);
}

static void
test_ids(void)
{
	static const struct {
		enum mdm_queue_enroll_type t;
		const char *id, *dev, *name;
	} cases[] = {
		{ MDM_QUEUE_DEVICE, "D1", "D1", "Device" },
		{ MDM_QUEUE_USER, "D1:U1", "D1", "User" },
		{ MDM_QUEUE_UE_DEVICE, "E1", "E1", "User Enrollment (Device)" },
		{ MDM_QUEUE_UE, "E1:EU1", "E1", "User Enrollment" },
		{ MDM_QUEUE_SHARED_IPAD, "D1:alice", "D1", "Shared iPad" },
	};
	struct mdm_queue_ident id;
	struct mdm_webhook_event ev;
	json_t *j, *ids;
	size_t i;
	int user;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mkident(&id, cases[i].t, cases[i].id, cases[i].dev);
		id.udid = cases[i].t == MDM_QUEUE_UE ||
		    cases[i].t == MDM_QUEUE_UE_DEVICE ? NULL : "D1";
		id.enrollment_id = id.udid ? NULL : "E1";
		memset(&ev, 0, sizeof(ev));
		ev.topic = "mdm.TokenUpdate";
		ev.ident = &id;
		ev.raw = "x";
		ev.raw_len = 1;
		if ((j = event(&ev)) == NULL) {
			ok(0, "ids %s", cases[i].name);
			continue;
		}
		ids = mdm_json_get_object(mdm_json_get_object(j,
		    "checkin_event"), "ids");
		user = !mdm_queue_enroll_type_is_device(cases[i].t);
		is_str(mdm_json_get_string(ids, "type"), cases[i].name,
		    "ids.type");
		is_str(mdm_json_get_string(ids, "id"), cases[i].id, "ids.id");
		ok(user ? mdm_json_get_string(ids, "parent_id") != NULL &&
		    strcmp(mdm_json_get_string(ids, "parent_id"),
		    cases[i].dev) == 0 : json_object_get(ids, "parent_id") ==
		    NULL, "%s: parent_id %s", cases[i].name,
		    user ? "is the device channel" : "left out");
		ok(id.udid ? has(j, "checkin_event", "udid") &&
		    !has(j, "checkin_event", "enrollment_id") :
		    !has(j, "checkin_event", "udid") &&
		    has(j, "checkin_event", "enrollment_id"),
		    "%s: udid or enrollment_id, the one that is set",
		    cases[i].name);
		json_decref(j);
	}
}

static void
test_url_params(void)
{
	struct mdm_queue_ident id;
	struct mdm_webhook_event ev;
	json_t *j, *p;

	mkident(&id, MDM_QUEUE_DEVICE, "D1", "D1");
	id.udid = "D1";
	memset(&ev, 0, sizeof(ev));
	ev.topic = "mdm.Connect";
	ev.status = "Idle";
	ev.ident = &id;
	ev.raw = "";
	ev.query = "a=1&b=x%20y+z&a=2&bad=%zz&&x;y=1&empty=&k&%41%42=%c3%a9"
	    "&u=%ff%fe&n=%E2%82";
	j = event(&ev);
	p = mdm_json_get_object(mdm_json_get_object(j, "acknowledge_event"),
	    "url_params");
	ok(p != NULL, "url_params present");
	is_str(mdm_json_get_string(p, "a"), "1", "first value of a key wins");
	is_str(mdm_json_get_string(p, "b"), "x y z", "%20 and + decode");
	is_str(mdm_json_get_string(p, "empty"), "", "empty value");
	is_str(mdm_json_get_string(p, "k"), "", "key without =");
	is_str(mdm_json_get_string(p, "AB"), "\xc3\xa9", "key and UTF-8 "
	    "value decoded");
	is_str(mdm_json_get_string(p, "u"), "\xef\xbf\xbd\xef\xbf\xbd",
	    "invalid bytes become U+FFFD");
	is_str(mdm_json_get_string(p, "n"), "\xef\xbf\xbd\xef\xbf\xbd",
	    "a cut sequence too");
	ok(json_object_get(p, "bad") == NULL, "broken escape skipped");
	ok(json_object_get(p, "x;y") == NULL && json_object_get(p, "x") ==
	    NULL, "pair with ';' skipped");
	is_int((long long)json_object_size(p), 7, "seven params");
	ok(!has(j, "acknowledge_event", "command_uuid"),
	    "no command_uuid for Idle");
	is_str(str_at(j, "acknowledge_event", "raw_payload"), "",
	    "empty raw payload");
	json_decref(j);

	ev.query = "";
	j = event(&ev);
	ok(j != NULL && !has(j, "acknowledge_event", "url_params"),
	    "empty query: url_params left out");
	json_decref(j);
	ev.query = "&&%zz=1";
	j = event(&ev);
	ok(j != NULL && !has(j, "acknowledge_event", "url_params"),
	    "nothing left: url_params left out");
	json_decref(j);
	ev.topic = "mdm.CheckOut";
	ev.query = "x=%2B";
	j = event(&ev);
	is_str(mdm_json_get_string(mdm_json_get_object(mdm_json_get_object(j,
	    "checkin_event"), "url_params"), "x"), "+", "check-in url_params");
	json_decref(j);
}

static void
test_fields(void)
{
	struct mdm_queue_ident id;
	struct mdm_webhook_event ev;
	struct mdm_buf b;
	struct mdm_err e = { 0 };
	json_t *j, *k;
	json_int_t tally = 0;

	mkident(&id, MDM_QUEUE_DEVICE, "D1", "D1");
	id.udid = "D1";
	memset(&ev, 0, sizeof(ev));
	ev.topic = "mdm.TokenUpdate";
	ev.ident = &id;
	ev.raw = "<plist/>";
	ev.raw_len = 8;
	ev.token_update_tally = 3;
	j = event(&ev);
	k = json_object_get(mdm_json_get_object(j, "checkin_event"),
	    "token_update_tally");
	if (json_is_integer(k))
		tally = json_integer_value(k);
	is_int(tally, 3, "token_update_tally on TokenUpdate");
	is_str(str_at(j, "checkin_event", "raw_payload"), "PHBsaXN0Lz4=",
	    "raw_payload is base64");
	is_int((long long)strlen(str_at(j, NULL, "event_id") ?
	    str_at(j, NULL, "event_id") : ""), 36, "a UUID event_id by "
	    "default");
	ok(str_at(j, NULL, "created_at") != NULL &&
	    strncmp(str_at(j, NULL, "created_at"), "20", 2) == 0,
	    "created_at now by default");
	json_decref(j);
	ev.token_update_tally = 0;
	j = event(&ev);
	ok(j != NULL && !has(j, "checkin_event", "token_update_tally"),
	    "tally 0 left out");
	json_decref(j);
	ev.topic = "mdm.Authenticate";
	ev.token_update_tally = 3;
	j = event(&ev);
	ok(j != NULL && !has(j, "checkin_event", "token_update_tally"),
	    "tally only on TokenUpdate");
	json_decref(j);

	ev.created_at_ns = 1534170616000000000LL;
	j = event(&ev);
	is_str(str_at(j, NULL, "created_at"), "2018-08-13T14:30:16Z",
	    "whole seconds: no fraction");
	json_decref(j);
	ev.created_at_ns = -1;
	j = event(&ev);
	is_str(str_at(j, NULL, "created_at"),
	    "1969-12-31T23:59:59.999999999Z", "before 1970");
	json_decref(j);

	mdm_buf_init(&b, 1 << 20);
	ev.topic = "mdm.Nope";
	ok(mdm_webhook_event_json(&ev, &b, &e) == -1 && e.code == MDM_E_USAGE,
	    "unknown topic refused");
	ev.topic = "mdm.Connect";
	ok(mdm_webhook_event_json(&ev, &b, &e) == -1 && e.code == MDM_E_USAGE,
	    "mdm.Connect without status refused");
	ev.status = "Acknowledged";
	ev.ident = NULL;
	ok(mdm_webhook_event_json(&ev, &b, &e) == -1 && e.code == MDM_E_USAGE,
	    "no ident refused");
	ev.ident = &id;
	ev.raw = NULL;
	ok(mdm_webhook_event_json(&ev, &b, &e) == -1 && e.code == MDM_E_USAGE,
	    "no raw payload refused");
	ev.raw = "";
	ev.event_id = "has space";
	ok(mdm_webhook_event_json(&ev, &b, &e) == -1 && e.code == MDM_E_USAGE,
	    "event_id with a space refused");
	ev.event_id = "";
	ok(mdm_webhook_event_json(&ev, &b, &e) == -1, "empty event_id refused");
	ev.event_id = "abc";
	id.udid = "\xff";
	ok(mdm_webhook_event_json(&ev, &b, &e) == -1, "non-UTF-8 udid refused");
	is_int((long long)b.len, 0, "failures append nothing");
	id.udid = "D1";
	ok(mdm_webhook_event_json(&ev, &b, &e) == 0 && b.len > 0 &&
	    memchr(b.data, '\n', b.len) == NULL, "one line");
	mdm_buf_release(&b);
}

static void
test_hmac(void)
{
	unsigned char key1[20];
	struct mdm_buf b;
	struct mdm_err e = { 0 };

	mdm_buf_init(&b, 1024);
	/* RFC 4231 test case 2 (also `openssl dgst -sha256 -hmac Jefe`). */
	ok(mdm_webhook_hmac("Jefe", 4, "what do ya want for nothing?", 28, &b,
	    &e) == 0, "hmac");
	is_str((const char *)b.data,
	    "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=", "RFC 4231 case 2");
	mdm_buf_reset(&b);
	memset(key1, 0x0b, sizeof(key1));
	ok(mdm_webhook_hmac(key1, sizeof(key1), "Hi There", 8, &b, &e) == 0,
	    "hmac");
	is_str((const char *)b.data,
	    "sDRMYdjbOFNcqK/OrwvxK4gdwgDJgz2nJuk3bC4yz/c=", "RFC 4231 case 1");
	ok(mdm_webhook_hmac("", 0, "x", 1, &b, &e) == -1 &&
	    e.code == MDM_E_USAGE, "empty key refused");
	mdm_buf_release(&b);
}

static void
test_backoff(void)
{
	static const struct {
		int64_t attempts, base;
	} cases[] = {
		{ 1, 1000 }, { 2, 2000 }, { 3, 4000 }, { 12, 2048000 },
		{ 13, 3600000 }, { 20, 3600000 }, { 1000000, 3600000 },
	};
	int64_t d, lo, hi;
	size_t i;
	int k, inrange, varied;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		inrange = 1;
		varied = 0;
		lo = cases[i].base - cases[i].base / 5;
		hi = cases[i].base + cases[i].base / 5;
		for (k = 0; k < 50; k++) {
			d = mdm_webhook_backoff_ms(cases[i].attempts);
			inrange &= d >= lo && d <= hi;
			varied |= d != cases[i].base;
		}
		ok(inrange && varied, "backoff after %lld attempts: %lld ms "
		    "+-20%%, jittered", (long long)cases[i].attempts,
		    (long long)cases[i].base);
	}
}

static void
test_client_config(void)
{
	struct mdm_webhook_config cfg;
	struct mdm_webhook_client *c = NULL;
	struct mdm_err e = { 0 };

	memset(&cfg, 0, sizeof(cfg));
	ok(mdm_webhook_client_new(&cfg, &c, &e) == -1 &&
	    e.code == MDM_E_USAGE, "no URL refused");
	cfg.url = "file:///etc/passwd";
	ok(mdm_webhook_client_new(&cfg, &c, &e) == -1 &&
	    e.code == MDM_E_CONFIG, "file:// refused");
	cfg.url = "HTTPS://example.invalid/hook";
	ok(mdm_webhook_client_new(&cfg, &c, &e) == 0 && c != NULL,
	    "https:// accepted");
	mdm_webhook_client_free(c);
	mdm_webhook_client_free(NULL);
}

int
main(void)
{
	test_fixture_authenticate();
	test_fixture_report();
	test_ids();
	test_url_params();
	test_fields();
	test_hmac();
	test_backoff();
	test_client_config();
	return tap_done();
}
