/*
 * service: mdm-serve's request handling without a socket.  Routing by
 * path and Content-Type, the three identity forms, the binding rules
 * (bound on Authenticate, refused for another enrollment, a renewal
 * re-bound, a revoked certificate refused), every check-in type, the
 * command round trip, statuses that are never 401, webhook events in the
 * outbox, and a bootstrap token that is sealed at rest.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <sqlite3.h>

#include "buf.h"
#include "cms.h"
#include "queue.h"
#include "service.h"
#include "state.h"
#include "state_int.h"
#include "state_queue.h"
#include "state_webhook.h"
#include "tap.h"
#include "x509.h"

static struct mdm_state *st;
static struct mdm_service *svc;
static struct mdm_service_config cfg;
static X509 *ca, *other_ca;
static EVP_PKEY *ca_key, *other_key, *dev_key;
static const unsigned char seal_key[32] = "unit-test-seal-key-0123456789abc";

static X509 *
issue(X509 *by, EVP_PKEY *by_key, const char *cn)
{
	struct mdm_x509_opts o = { .kind = MDM_X509_CLIENT,
	    .common_name = cn, .days = 30 };
	X509 *c = NULL;

	if (mdm_x509_issue(by, by_key, dev_key, &o, &c, NULL) == -1)
		abort();
	return c;
}

static void
body(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
body(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(out, outlen, "<?xml version=\"1.0\"?><plist "
	    "version=\"1.0\"><dict>");
	va_start(ap, fmt);
	n += vsnprintf(out + n, outlen - (size_t)n, fmt, ap);
	va_end(ap);
	snprintf(out + n, outlen - (size_t)n, "</dict></plist>");
}

enum how { TLS, SIGNED, HEADER, NONE };

/* Sends b to path as cert, the identity presented the way `how` says. */
static int
send(X509 *cert, enum how how, const char *path, const char *ct,
    const char *b, struct mdm_service_response *r)
{
	struct mdm_service_request q;
	struct mdm_buf sig, b64, der;
	char *hdr = NULL;

	mdm_buf_init(&sig, 1 << 20);
	mdm_buf_init(&b64, 1 << 20);
	mdm_buf_init(&der, 1 << 20);
	memset(&q, 0, sizeof(q));
	q.method = "PUT";
	q.path = path;
	q.content_type = ct;
	q.body = (const unsigned char *)b;
	q.len = strlen(b);
	switch (how) {
	case TLS:
		q.tls_cert = cert;
		break;
	case SIGNED:
		if (mdm_cms_sign(b, strlen(b), cert, dev_key, NULL,
		    MDM_CMS_DETACHED, &sig, NULL) == -1 ||
		    mdm_base64_encode(sig.data, sig.len, &b64, NULL) == -1 ||
		    mdm_buf_append(&b64, "", 1, NULL) == -1)
			abort();
		q.signature = (const char *)b64.data;
		break;
	case HEADER:
		if (mdm_x509_cert_to_der(cert, &der, NULL) == -1 ||
		    mdm_buf_append(&b64, ":", 1, NULL) == -1 ||
		    mdm_base64_encode(der.data, der.len, &b64, NULL) == -1 ||
		    mdm_buf_append(&b64, ":", 2, NULL) == -1)
			abort();
		hdr = (char *)b64.data;
		q.forwarded_cert = hdr;
		break;
	case NONE:
		break;
	}
	mdm_service_handle(svc, &q, r);
	mdm_buf_release(&sig);
	mdm_buf_release(&b64);
	mdm_buf_release(&der);
	return r->status;
}

static int
checkin(X509 *cert, const char *b, struct mdm_service_response *r)
{
	return send(cert, SIGNED, "/mdm/checkin", NULL, b, r);
}

static int
report(X509 *cert, const char *b, struct mdm_service_response *r)
{
	return send(cert, SIGNED, "/mdm/connect", NULL, b, r);
}

static long long
count(const char *sql)
{
	sqlite3_stmt *s = NULL;
	long long n = -1;

	if (mdm_state_prepare(st, sql, &s, NULL) == 0 &&
	    sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static void
exec(const char *sql)
{
	if (mdm_state_exec(st, sql, NULL) == -1)
		abort();
}

/* Our CA's record of c, as mdm-scep writes it; renewed_from may be NULL. */
static void
record(X509 *c, const char *renewed_from, int revoked)
{
	struct mdm_cert_row row = { .subject = "CN=dev", .kind = "device",
	    .not_before = 0, .not_after = 4102444800LL };
	struct mdm_x509_info info;
	struct mdm_buf der;
	char sql[512];

	mdm_buf_init(&der, 1 << 20);
	if (mdm_x509_cert_to_der(c, &der, NULL) == -1 ||
	    mdm_x509_inspect(c, &info, NULL) == -1)
		abort();
	row.serial = info.serial;
	row.sha256 = info.sha256;
	row.revoked_at = revoked;
	if (mdm_state_cert_insert(st, &row, der.data, der.len, NULL) == -1)
		abort();
	if (renewed_from != NULL) {
		snprintf(sql, sizeof(sql), "UPDATE certificates SET "
		    "renewed_from = '%s' WHERE sha256 = '%s'", renewed_from,
		    info.sha256);
		exec(sql);
	}
	mdm_buf_release(&der);
}

static int
has(const struct mdm_buf *b, const char *s)
{
	size_t n = strlen(s), i;

	for (i = 0; i + n <= b->len; i++)
		if (memcmp(b->data + i, s, n) == 0)
			return 1;
	return 0;
}

static void
hash_of(X509 *c, char out[65])
{
	if (mdm_x509_sha256_hex(c, out, NULL) == -1)
		abort();
}

static void
setup(void)
{
	struct mdm_x509_opts o = { .kind = MDM_X509_CA,
	    .common_name = "unit CA", .days = 30 };
	struct mdm_x509_opts oo = { .kind = MDM_X509_CA,
	    .common_name = "other CA", .days = 30 };

	mdm_crypto_init(NULL);
	if (mdm_state_open(tap_tmpdir(), MDM_STATE_CREATE, &st, NULL) == -1 ||
	    mdm_x509_gen_rsa(2048, &ca_key, NULL) == -1 ||
	    mdm_x509_self_sign(ca_key, &o, &ca, NULL) == -1 ||
	    mdm_x509_gen_rsa(2048, &dev_key, NULL) == -1 ||
	    mdm_x509_gen_rsa(2048, &other_key, NULL) == -1 ||
	    mdm_x509_self_sign(other_key, &oo, &other_ca, NULL) == -1)
		abort();
	cfg.ca = ca;
	cfg.seal_key = seal_key;
	cfg.webhook = 1;
	cfg.cert_header = "X-Client-Cert";
	if (mdm_service_new(st, &cfg, &svc, NULL) == -1)
		abort();
}

int
main(void)
{
	struct mdm_service_response r;
	X509 *d1, *d1b, *d2, *d3, *evil;
	char b[4096], h1[65], uuid[MDM_QUEUE_UUID_MAX + 1];
	struct mdm_queue_build qb = { .request_type = "ProfileList" };
	struct mdm_queue_cmd cmd = { 0 };
	const char *keys[1];
	plist_t p = NULL;

	setup();
	mdm_service_response_init(&r);
	d1 = issue(ca, ca_key, "dev1");
	d1b = issue(ca, ca_key, "dev1");
	d2 = issue(ca, ca_key, "dev2");
	d3 = issue(ca, ca_key, "dev3");
	evil = issue(other_ca, other_key, "evil");
	hash_of(d1, h1);
	record(d1, NULL, 0);
	record(d1b, h1, 0);
	record(d3, NULL, 0);

	/* routing */
	body(b, sizeof(b), "<key>Status</key><string>Idle</string>"
	    "<key>UDID</key><string>D1</string>");
	is_int(send(d1, TLS, "/elsewhere", NULL, b, &r), 404, "unknown path");
	ok(r.body.len == 0 && r.reason[0] != '\0', "a refusal has a reason "
	    "and no body");
	r.status = 0;
	{
		struct mdm_service_request q = { .method = "GET",
		    .path = "/mdm/connect", .body = (const unsigned char *)"",
		    .tls_cert = d1 };

		mdm_service_handle(svc, &q, &r);
		is_int(r.status, 405, "GET is not a device request");
	}

	/* identity */
	is_int(send(NULL, NONE, "/mdm/connect", NULL, b, &r), 400,
	    "no identity: 400");
	is_str(r.outcome, "unauthenticated", "outcome unauthenticated");
	is_int(send(evil, TLS, "/mdm/connect", NULL, b, &r), 400,
	    "a certificate that does not chain to our CA");
	ok(strstr(r.reason, "device certificate") != NULL, "the reason says "
	    "so: %s", r.reason);
	is_int(report(d1, b, &r), 400, "a signed Idle before Authenticate");
	ok(strstr(r.reason, "not enrolled") != NULL, "not enrolled: %s",
	    r.reason);

	/* enrollment */
	body(b, sizeof(b), "<key>MessageType</key><string>Authenticate"
	    "</string><key>UDID</key><string>D1</string><key>Topic</key>"
	    "<string>t</string>");
	is_int(checkin(d1, b, &r), 200, "Authenticate, signed");
	is_str(r.outcome, "authenticate", "outcome authenticate");
	is_str(r.id, "D1", "the enrollment id is reported");
	is_int(count("SELECT count(*) FROM enrollments WHERE id = 'D1' AND "
	    "cert_hash IS NOT NULL AND enabled = 0"), 1, "bound, disabled");
	body(b, sizeof(b), "<key>MessageType</key><string>Authenticate"
	    "</string><key>UDID</key><string>D2</string><key>Topic</key>"
	    "<string>t</string>");
	is_int(checkin(d1, b, &r), 400, "d1's certificate cannot enroll D2");
	is_int(send(d2, HEADER, "/mdm/checkin", NULL, b, &r), 200,
	    "d2 enrolls through the proxy header");
	body(b, sizeof(b), "<key>MessageType</key><string>TokenUpdate"
	    "</string><key>UDID</key><string>D1</string><key>Topic</key>"
	    "<string>t</string><key>Token</key><data>AAEC</data>"
	    "<key>PushMagic</key><string>m</string>");
	is_int(send(d1, TLS, "/mdm", "application/x-apple-aspen-mdm-checkin",
	    b, &r), 200, "TokenUpdate at /mdm by Content-Type, over TLS");
	is_int(count("SELECT enabled FROM enrollments WHERE id = 'D1'"), 1,
	    "enabled");
	is_int(checkin(d2, b, &r), 400, "d2's certificate speaking for D1");
	is_int(count("SELECT count(*) FROM webhook_outbox WHERE topic = "
	    "'mdm.TokenUpdate'"), 1, "a refused request queues no webhook");

	/* the command round trip */
	if (mdm_queue_build(&qb, &p, NULL) == -1 ||
	    mdm_queue_cmd_from_plist(p, &cmd, NULL) == -1)
		abort();
	keys[0] = "D1";
	if (mdm_state_queue_enqueue(st, &cmd, keys, 1, 0, NULL, NULL, NULL,
	    NULL) == -1)
		abort();
	snprintf(uuid, sizeof(uuid), "%s", cmd.uuid);
	body(b, sizeof(b), "<key>Status</key><string>Idle</string>"
	    "<key>UDID</key><string>D1</string>");
	is_int(send(d1, SIGNED, "/mdm", "application/x-apple-aspen-mdm", b,
	    &r), 200, "Idle at /mdm");
	is_str(r.command_uuid, uuid, "gets the command");
	ok(r.content_type != NULL && r.body.len > 0 &&
	    has(&r.body, uuid),
	    "the body holds it");
	body(b, sizeof(b), "<key>Status</key><string>NotNow</string>"
	    "<key>UDID</key><string>D1</string><key>CommandUUID</key>"
	    "<string>%s</string>", uuid);
	is_int(report(d1, b, &r), 200, "NotNow");
	is_str(r.outcome, "not-now", "outcome not-now");
	ok(r.body.len == 0, "nothing else this session");
	body(b, sizeof(b), "<key>Status</key><string>Acknowledged</string>"
	    "<key>UDID</key><string>D1</string><key>CommandUUID</key>"
	    "<string>%s</string>", uuid);
	is_int(report(d1, b, &r), 200, "Acknowledged");
	is_str(r.outcome, "acknowledged", "outcome acknowledged");
	is_int(count("SELECT count(*) FROM results WHERE status = "
	    "'acknowledged'"), 1, "the result is stored");
	is_int(report(d1, "garbage", &r), 200, "garbage from a bound "
	    "certificate is stored");
	is_str(r.outcome, "orphan", "as an orphan report");
	is_int(report(d2, "garbage", &r), 200, "and from the proxy device");
	is_int(send(d3, SIGNED, "/mdm/connect", NULL, "garbage", &r), 400,
	    "garbage from a certificate bound nowhere is refused");
	is_int(count("SELECT count(*) FROM webhook_outbox WHERE topic = "
	    "'mdm.Connect'"), 5, "a webhook event per accepted report");

	/* user channel, UserAuthenticate */
	body(b, sizeof(b), "<key>MessageType</key><string>UserAuthenticate"
	    "</string><key>UDID</key><string>D1</string><key>UserID</key>"
	    "<string>U1</string>");
	is_int(checkin(d1, b, &r), 410, "UserAuthenticate: 410 by default");
	cfg.user_auth_zero_challenge = 1;
	is_int(checkin(d1, b, &r), 200, "with the zero challenge: 200");
	ok(has(&r.body, "DigestChallenge"), "a DigestChallenge");
	cfg.user_auth_zero_challenge = 0;

	/* bootstrap token */
	body(b, sizeof(b), "<key>MessageType</key><string>SetBootstrapToken"
	    "</string><key>UDID</key><string>D1</string><key>BootstrapToken"
	    "</key><data>c2VjcmV0LWJvb3RzdHJhcA==</data>");
	is_int(checkin(d1, b, &r), 200, "SetBootstrapToken");
	is_int(count("SELECT instr(bootstrap_token, "
	    "CAST('secret-bootstrap' AS BLOB)) FROM enrollments WHERE id = "
	    "'D1'"), 0, "not stored in the clear");
	body(b, sizeof(b), "<key>MessageType</key><string>GetBootstrapToken"
	    "</string><key>UDID</key><string>D1</string>");
	is_int(checkin(d1, b, &r), 200, "GetBootstrapToken");
	ok(has(&r.body, "c2VjcmV0LWJvb3RzdHJhcA=="), "the token comes back");
	exec("UPDATE enrollments SET bootstrap_token = (SELECT "
	    "bootstrap_token FROM enrollments WHERE id = 'D1') WHERE id = "
	    "'D2'");
	body(b, sizeof(b), "<key>MessageType</key><string>GetBootstrapToken"
	    "</string><key>UDID</key><string>D2</string>");
	is_int(send(d2, HEADER, "/mdm/checkin", NULL, b, &r), 500,
	    "D1's sealed token copied to D2 does not open there");

	/* not configured */
	body(b, sizeof(b), "<key>MessageType</key><string>GetToken</string>"
	    "<key>UDID</key><string>D1</string><key>TokenServiceType</key>"
	    "<string>com.apple.maid</string>");
	is_int(checkin(d1, b, &r), 400, "GetToken without a program");
	body(b, sizeof(b), "<key>MessageType</key><string>"
	    "DeclarativeManagement</string><key>UDID</key><string>D1</string>"
	    "<key>Endpoint</key><string>tokens</string>");
	is_int(checkin(d1, b, &r), 400, "DeclarativeManagement without a "
	    "DDM server");
	body(b, sizeof(b), "<key>MessageType</key><string>Frobnicate"
	    "</string><key>UDID</key><string>D1</string>");
	is_int(checkin(d1, b, &r), 400, "an unknown MessageType");

	/* renewal and revocation */
	body(b, sizeof(b), "<key>Status</key><string>Idle</string>"
	    "<key>UDID</key><string>D1</string>");
	is_int(report(d1b, b, &r), 200, "the renewed certificate is accepted");
	is_int(count("SELECT count(*) FROM enrollments WHERE id = 'D1' AND "
	    "cert_hash = (SELECT sha256 FROM certificates WHERE renewed_from "
	    "IS NOT NULL)"), 1, "and bound");
	is_int(report(d1, b, &r), 400, "the old one is not");
	body(b, sizeof(b), "<key>MessageType</key><string>Authenticate"
	    "</string><key>UDID</key><string>D3</string><key>Topic</key>"
	    "<string>t</string>");
	is_int(checkin(d3, b, &r), 200, "d3 enrolls");
	exec("UPDATE certificates SET revoked_at = 1 WHERE renewed_from IS "
	    "NULL");
	body(b, sizeof(b), "<key>Status</key><string>Idle</string>"
	    "<key>UDID</key><string>D3</string>");
	is_int(report(d3, b, &r), 400, "once revoked, refused");
	ok(strstr(r.reason, "revoked") != NULL, "because revoked: %s",
	    r.reason);

	/* CheckOut */
	body(b, sizeof(b), "<key>MessageType</key><string>CheckOut</string>"
	    "<key>UDID</key><string>D2</string>");
	is_int(send(d2, HEADER, "/mdm/checkin", NULL, b, &r), 200,
	    "CheckOut");
	is_int(count("SELECT enabled FROM enrollments WHERE id = 'D2'"), 0,
	    "disabled");
	is_int(count("SELECT count(*) FROM webhook_outbox WHERE topic = "
	    "'mdm.CheckOut'"), 1, "and a webhook event for it");

	plist_free(p);
	mdm_queue_cmd_release(&cmd);
	mdm_service_response_release(&r);
	mdm_service_free(svc);
	mdm_state_close(st);
	X509_free(d1);
	X509_free(d1b);
	X509_free(d2);
	X509_free(d3);
	X509_free(evil);
	X509_free(ca);
	X509_free(other_ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(dev_key);
	return tap_done();
}
