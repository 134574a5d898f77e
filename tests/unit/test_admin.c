/*
 * test_admin: the admin API without sockets: auth (401 with the realm,
 * nothing stored), /version, enqueue (NanoMDM's APIResult, nopush, a
 * malformed plist refused with nothing queued, unknown ids), push
 * through the push thread (no push certificate: an outcome at once, no
 * network), the read endpoints and their limit, pushcert upload and
 * listing, /metrics, and the API switched off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "admin.h"
#include "queue.h"
#include "state_queue.h"
#include "tap.h"
#include "x509.h"

#define AUTH	"Basic bmFub21kbTpzZWtyaXQ="	/* nanomdm:sekrit */
#define BADAUTH	"Basic bmFub21kbTpzZWtyaXU="	/* nanomdm:sekriu */
#define CMD	"<plist><dict><key>Command</key><dict><key>RequestType</key>" \
		"<string>ProfileList</string></dict><key>CommandUUID</key>" \
		"<string>%s</string></dict></plist>"

static struct mdm_state *st;
static struct mdm_admin *adm;
static struct mdm_admin_response r;
static json_t *js;

static int
req(const char *method, const char *path, const char *query, const char *auth,
    const char *body)
{
	struct mdm_admin_request q = { 0 };

	q.method = method;
	q.path = path;
	q.query = query;
	q.authorization = auth;
	q.body = (const unsigned char *)body;
	q.len = body != NULL ? strlen(body) : 0;
	mdm_admin_handle(adm, &q, &r);
	json_decref(js);
	js = NULL;
	if (r.content_type != NULL && strcmp(r.content_type,
	    "application/json") == 0)
		js = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
	return r.status;
}

static long long
pending(void)
{
	struct mdm_state_queue_counts c;

	if (mdm_state_queue_counts(st, &c, NULL) == -1)
		abort();
	return c.pending;
}

/* json path a.b.c over objects; NULL when absent. */
static json_t *
jget(json_t *j, const char *k1, const char *k2, const char *k3)
{
	j = json_object_get(j, k1);
	if (k2 != NULL)
		j = json_object_get(j, k2);
	if (k3 != NULL)
		j = json_object_get(j, k3);
	return j;
}

static void
enroll(const char *udid, const char *serial)
{
	struct mdm_queue_checkin c;
	char b[1024];

	snprintf(b, sizeof(b), "<plist><dict><key>MessageType</key><string>"
	    "Authenticate</string><key>UDID</key><string>%s</string><key>"
	    "SerialNumber</key><string>%s</string><key>Topic</key><string>"
	    "com.apple.mgmt.unit</string></dict></plist>", udid, serial);
	if (mdm_queue_checkin_parse(b, strlen(b), &c, NULL) == -1 ||
	    mdm_state_enroll_authenticate(st, &c, NULL, NULL) == -1)
		abort();
	mdm_queue_checkin_release(&c);
	snprintf(b, sizeof(b), "<plist><dict><key>MessageType</key><string>"
	    "TokenUpdate</string><key>UDID</key><string>%s</string><key>"
	    "SerialNumber</key><string>%s</string><key>Topic</key><string>"
	    "com.apple.mgmt.unit</string><key>Token</key><data>AAEC</data>"
	    "<key>PushMagic</key><string>m</string></dict></plist>", udid,
	    serial);
	if (mdm_queue_checkin_parse(b, strlen(b), &c, NULL) == -1 ||
	    mdm_state_enroll_token_update(st, &c, NULL, NULL) == -1)
		abort();
	mdm_queue_checkin_release(&c);
}

/* A push certificate: PEM certificate + PEM key, with subject UID topic. */
static void
pushcert(const char *topic, char *out, size_t outlen, int wrong_key)
{
	EVP_PKEY *k = NULL, *k2 = NULL;
	X509 *c = X509_new();
	X509_NAME *n = X509_NAME_new();
	struct mdm_buf b;

	mdm_buf_init(&b, 1 << 20);
	if (mdm_x509_gen_rsa(2048, &k, NULL) == -1 ||
	    (wrong_key && mdm_x509_gen_rsa(2048, &k2, NULL) == -1) ||
	    !X509_NAME_add_entry_by_NID(n, NID_userId, MBSTRING_UTF8,
	    (const unsigned char *)topic, -1, -1, 0) ||
	    !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)"APSP:unit", -1, -1, 0) ||
	    !X509_set_version(c, 2) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(c), 7) ||
	    !X509_set_subject_name(c, n) || !X509_set_issuer_name(c, n) ||
	    !X509_gmtime_adj(X509_getm_notBefore(c), 0) ||
	    !X509_gmtime_adj(X509_getm_notAfter(c), 86400) ||
	    !X509_set_pubkey(c, k) || !X509_sign(c, k, EVP_sha256()) ||
	    mdm_x509_cert_to_pem(c, &b, NULL) == -1 ||
	    mdm_x509_key_to_pem(wrong_key ? k2 : k, &b, NULL) == -1 ||
	    b.len + 1 > outlen)
		abort();
	memcpy(out, b.data, b.len);
	out[b.len] = '\0';
	mdm_buf_release(&b);
	X509_NAME_free(n);
	X509_free(c);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
}

int
main(void)
{
	static char pem[16384];
	struct mdm_admin_config cfg = { 0 }, off = { 0 };
	struct mdm_push_config pc = { 0 };
	struct mdm_metrics *m = NULL;
	struct mdm_admin *a_off = NULL;
	char body[1024];
	json_t *o;

	mdm_crypto_init(NULL);
	if (mdm_state_open(tap_tmpdir(), MDM_STATE_CREATE, &st, NULL) == -1)
		abort();
	enroll("D1", "SER1");
	enroll("D2", "SER2");
	pc.host = "127.0.0.1";
	pc.port = "1";
	cfg.key = (const unsigned char *)"sekrit";
	cfg.key_len = 6;
	cfg.push_wait_ms = 5000;
	ok(mdm_metrics_new(&m, NULL) == 0, "metrics");
	ok(mdm_admin_pusher_new(tap_tmpdir(), &pc, m, 2, &cfg.pusher,
	    NULL) == 0, "push thread started");
	ok(mdm_admin_new(st, &cfg, &adm, NULL) == 0, "admin");
	mdm_admin_response_init(&r);

	ok(mdm_admin_route("/v1/enqueue/x") && mdm_admin_route("/version") &&
	    mdm_admin_route("/metrics") && !mdm_admin_route("/mdm") &&
	    !mdm_admin_route("/v1") && !mdm_admin_route(NULL), "routes");

	/* version, auth */
	is_int(req("GET", "/version", NULL, NULL, NULL), 200, "/version "
	    "without a key");
	ok(json_is_string(jget(js, "version", NULL, NULL)), "it has the "
	    "version");
	is_int(req("PUT", "/version", NULL, NULL, NULL), 405, "PUT /version");
	is_int(req("GET", "/v1/enrollments", NULL, NULL, NULL), 401,
	    "no key: 401");
	is_str(r.www_authenticate, "Basic realm=\"mdm\"", "with the realm");
	is_int(req("GET", "/v1/enrollments", NULL, BADAUTH, NULL), 401,
	    "wrong key: 401");
	is_int(req("GET", "/v1/enrollments", NULL, "Basic !!!", NULL), 401,
	    "garbage: 401");
	is_int(req("GET", "/v1/enrollments", NULL, "Basic c2Vrcml0", NULL),
	    401, "no colon: 401");
	is_int(req("GET", "/v1/enrollments", NULL, "Bearer sekrit", NULL),
	    401, "another scheme: 401");
	is_int(req("GET", "/v1/enrollments", NULL, "basic  Ondzb3Jk" "", NULL),
	    401, "empty user, wrong password: 401");
	is_int(req("GET", "/v1/enrollments", NULL, AUTH, NULL), 200,
	    "the right key");
	is_int((long long)json_array_size(jget(js, "enrollments", NULL, NULL)),
	    2, "two enrollments");
	o = json_array_get(jget(js, "enrollments", NULL, NULL), 0);
	ok(json_is_true(json_object_get(o, "enabled")) &&
	    json_is_string(json_object_get(o, "serial")), "enabled, serial");
	is_int(req("GET", "/v1/enrollments", "limit=1", AUTH, NULL), 200,
	    "limit=1");
	ok(json_array_size(jget(js, "enrollments", NULL, NULL)) == 1 &&
	    json_is_true(jget(js, "truncated", NULL, NULL)), "one row, "
	    "truncated");
	is_int(req("GET", "/v1/enrollments", "limit=0", AUTH, NULL), 400,
	    "limit=0: 400");
	is_int(req("GET", "/v1/enrollments", "limit=100000", AUTH, NULL), 400,
	    "limit over the cap: 400");
	is_int(req("POST", "/v1/enrollments", NULL, AUTH, NULL), 405,
	    "POST /v1/enrollments");
	is_int(req("GET", "/v1/nothing", NULL, AUTH, NULL), 404,
	    "unknown endpoint");

	/* enqueue */
	snprintf(body, sizeof(body), CMD, "cmd-1");
	is_int(req("PUT", "/v1/enqueue/D1", "nopush=1", BADAUTH, body), 401,
	    "enqueue with a wrong key: 401");
	is_int(pending(), 0, "nothing queued");
	is_int(req("PUT", "/v1/enqueue/D1", NULL, AUTH, "<plist><dict>"),
	    400, "malformed plist: 400");
	ok(json_is_string(jget(js, "command_error", NULL, NULL)), "with a "
	    "command_error");
	is_int(req("PUT", "/v1/enqueue/D1", NULL, AUTH, "<plist><dict><key>"
	    "Command</key><dict/></dict></plist>"), 400, "no RequestType: 400");
	is_int(req("PUT", "/v1/enqueue/D1", NULL, AUTH, NULL), 400,
	    "empty body: 400");
	is_int(pending(), 0, "nothing queued");
	is_int(req("GET", "/v1/enqueue/D1", NULL, AUTH, body), 405,
	    "GET enqueue: 405");
	is_int(req("PUT", "/v1/enqueue/", NULL, AUTH, body), 400, "no id: 400");
	is_int(req("PUT", "/v1/enqueue/D1,,D2", NULL, AUTH, body), 400,
	    "an empty id: 400");
	is_int(req("PUT", "/v1/enqueue/D%001", NULL, AUTH, body), 400,
	    "%00 in an id: 400");
	is_int(req("PUT", "/v1/enqueue/D%4", NULL, AUTH, body), 400,
	    "a cut escape: 400");
	is_int(pending(), 0, "nothing queued");

	is_int(req("PUT", "/v1/enqueue/D1", "nopush=1", AUTH, body), 200,
	    "enqueue nopush: 200");
	is_str(json_string_value(jget(js, "command_uuid", NULL, NULL)),
	    "cmd-1", "command_uuid");
	is_str(json_string_value(jget(js, "request_type", NULL, NULL)),
	    "ProfileList", "request_type");
	ok(json_is_true(jget(js, "no_push", NULL, NULL)), "no_push true");
	ok(json_is_object(jget(js, "status", "D1", NULL)), "status of D1");
	is_int(pending(), 1, "one pending");

	snprintf(body, sizeof(body), CMD, "cmd-2");
	is_int(req("POST", "/v1/enqueue/D%31,SER2,NOPE", "nopush=yes", AUTH,
	    body), 207, "enqueue to D1, a serial and an unknown id: 207");
	is_int(pending(), 3, "queued for D1 and D2");
	is_str(json_string_value(jget(js, "status", "NOPE", "command_error")),
	    "no such enrollment", "NOPE: command_error");
	ok(json_is_object(jget(js, "status", "D2", NULL)), "D2 by its serial, "
	    "keyed by its id");
	is_int(req("PUT", "/v1/enqueue/D2", NULL, AUTH, body), 500,
	    "again to D2: every push failed: 500");
	ok(jget(js, "no_push", NULL, NULL) == NULL, "no no_push");
	ok(strncmp(json_string_value(jget(js, "status", "D2", "push_error")) ?
	    json_string_value(jget(js, "status", "D2", "push_error")) : "",
	    "no-push-cert", 12) == 0, "D2: push_error no-push-cert");
	is_int(pending(), 3, "a duplicate queues nothing");
	is_int(req("PUT", "/v1/enqueue/D2", "nopush=1", AUTH, "<plist><dict>"
	    "<key>Command</key><dict><key>RequestType</key><string>"
	    "DeviceInformation</string></dict><key>CommandUUID</key><string>"
	    "cmd-2</string></dict></plist>"), 409, "same uuid, another "
	    "command: 409");

	/* push */
	is_int(req("GET", "/v1/push/D1,NOPE", NULL, AUTH, NULL), 500,
	    "push: all failed");
	ok(strncmp(json_string_value(jget(js, "status", "NOPE", "push_error")) ?
	    json_string_value(jget(js, "status", "NOPE", "push_error")) : "",
	    "unknown", 7) == 0, "NOPE: unknown");

	/* queue, results */
	is_int(req("GET", "/v1/queue/D1", NULL, AUTH, NULL), 200, "queue");
	is_int((long long)json_array_size(jget(js, "commands", NULL, NULL)), 2,
	    "two pending commands");
	o = json_array_get(jget(js, "commands", NULL, NULL), 0);
	is_str(json_string_value(json_object_get(o, "command_uuid")), "cmd-1",
	    "oldest first");
	is_int(req("GET", "/v1/queue/NOPE", NULL, AUTH, NULL), 404,
	    "queue of an unknown id: 404");
	is_int(req("GET", "/v1/queue/", NULL, AUTH, NULL), 400, "queue of "
	    "nobody: 400");
	is_int(req("GET", "/v1/results/D1", NULL, AUTH, NULL), 200, "results");
	is_int((long long)json_array_size(jget(js, "results", NULL, NULL)), 0,
	    "none yet");

	/* push certificates */
	pushcert("com.apple.mgmt.External.unit", pem, sizeof(pem), 0);
	is_int(req("PUT", "/v1/pushcert", NULL, BADAUTH, pem), 401,
	    "pushcert with a wrong key");
	is_int(req("PUT", "/v1/pushcert", NULL, AUTH, pem), 200, "pushcert");
	is_str(json_string_value(jget(js, "topic", NULL, NULL)),
	    "com.apple.mgmt.External.unit", "its topic");
	ok(json_is_string(jget(js, "not_after", NULL, NULL)), "not_after");
	is_int(req("GET", "/v1/pushcert", NULL, AUTH, NULL), 200,
	    "GET pushcert");
	is_int((long long)json_array_size(jget(js, "pushcerts", NULL, NULL)),
	    1, "one certificate");
	is_int(req("GET", "/v1/pushcert", "topic=com.apple.mgmt.External.unit",
	    AUTH, NULL), 200, "GET pushcert?topic=");
	is_str(json_string_value(jget(js, "topic", NULL, NULL)),
	    "com.apple.mgmt.External.unit", "that topic");
	is_int(req("GET", "/v1/pushcert", "topic=com.apple.mgmt.nope", AUTH,
	    NULL), 404, "another topic: 404");
	pushcert("com.apple.mgmt.External.other", pem, sizeof(pem), 0);
	is_int(req("PUT", "/v1/pushcert", NULL, AUTH, pem), 409,
	    "a second topic: 409");
	is_int(req("PUT", "/v1/pushcert", "force=1", AUTH, pem), 200,
	    "with force=1");
	pushcert("com.apple.mgmt.External.unit", pem, sizeof(pem), 1);
	is_int(req("PUT", "/v1/pushcert", NULL, AUTH, pem), 400, "a key that "
	    "does not match: 400");
	pushcert("not.a.push.topic", pem, sizeof(pem), 0);
	is_int(req("PUT", "/v1/pushcert", NULL, AUTH, pem), 400, "not a push "
	    "topic: 400");
	is_int(req("PUT", "/v1/pushcert", NULL, AUTH, "junk"), 400,
	    "junk: 400");
	is_int(req("DELETE", "/v1/pushcert", NULL, AUTH, NULL), 405,
	    "DELETE pushcert: 405");

	/* metrics */
	is_int(req("GET", "/metrics", NULL, AUTH, NULL), 404, "metrics off: "
	    "404");
	cfg.metrics = m;
	is_int(req("GET", "/metrics", NULL, NULL, NULL), 401, "metrics behind "
	    "the key");
	is_int(req("GET", "/metrics", NULL, AUTH, NULL), 200, "metrics");
	ok(strstr((const char *)r.body.data, "\nmdm_push_total{outcome="
	    "\"no-push-cert\"} 2\n") != NULL, "push outcomes counted");
	ok(strstr((const char *)r.body.data, "\nmdm_queue_rows{status="
	    "\"pending\"} 3\n") != NULL, "queue depth");

	/* the API off */
	off.metrics = m;
	ok(mdm_admin_new(st, &off, &a_off, NULL) == 0, "admin without a key");
	{
		struct mdm_admin *save = adm;

		adm = a_off;
		is_int(req("GET", "/v1/enrollments", NULL, AUTH, NULL), 404,
		    "no key: no API");
		is_int(req("GET", "/metrics", NULL, NULL, NULL), 200,
		    "no key: open metrics");
		is_int(req("GET", "/version", NULL, NULL, NULL), 200,
		    "no key: /version");
		adm = save;
	}

	json_decref(js);
	mdm_admin_response_release(&r);
	mdm_admin_free(a_off);
	mdm_admin_free(adm);
	mdm_admin_pusher_free(cfg.pusher);
	mdm_metrics_free(m);
	mdm_state_close(st);
	return tap_done();
}
