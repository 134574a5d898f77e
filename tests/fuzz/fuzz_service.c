/*
 * fuzz_service: the request path of mdm-serve, mdm_service_handle, on
 * untrusted requests against one state directory made at start-up: a
 * fresh CA, one device certificate issued by it and enrolled (UDID
 * FUZZ-DEV, with a user channel), webhooks on, so every accepted request
 * also writes an outbox event.
 *
 * The first input byte picks the request's shape; the rest is the body:
 *   bits 0-1  path: /mdm/checkin, /mdm/connect, /mdm, /elsewhere
 *   bit 2     Content-Type: the check-in type, else the command type
 *   bit 3     method GET instead of PUT
 *   bit 4-5   identity: the device's TLS certificate (most inputs, so
 *             the body reaches the parsers and the database), none, the
 *             body's first line as an Mdm-Signature value, or that line
 *             as a forwarded certificate header
 * Beyond not crashing: no answer is ever 401 (a device unenrolls on
 * it), nothing the client sends may cause a 500, and a refusal carries
 * its reason and no body.
 * Regression inputs: tests/data/service/.
 */
#define _XOPEN_SOURCE 700	/* nftw */
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "buf.h"
#include "log.h"
#include "service.h"
#include "state.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static struct mdm_state *st;
static struct mdm_service *svc;
static struct mdm_service_config cfg;
static X509 *ca, *device;
static const unsigned char seal_key[32] = "fuzz-service-seal-key-0123456789";

static void
fail(const char *what, const struct mdm_err *e)
{
	fprintf(stderr, "fuzz_service: %s: %s\n", what,
	    e != NULL ? e->msg : "openssl");
	ERR_print_errors_fp(stderr);
	abort();
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(path);
}

static void
cleanup(void)
{
	mdm_service_free(svc);
	mdm_state_close(st);
	X509_free(ca);
	X509_free(device);
	if (dir[0] != '\0')
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
handle(const char *method, const char *path, const char *ct,
    const void *body, size_t len, struct mdm_service_response *r)
{
	struct mdm_service_request q;

	memset(&q, 0, sizeof(q));
	q.method = method;
	q.path = path;
	q.content_type = ct;
	q.tls_cert = device;
	q.body = body;
	q.len = len;
	mdm_service_handle(svc, &q, r);
}

static void
enroll(void)
{
	static const char *const msgs[] = {
		"<plist><dict><key>MessageType</key><string>Authenticate"
		"</string><key>UDID</key><string>FUZZ-DEV</string><key>Topic"
		"</key><string>com.apple.mgmt.fuzz</string></dict></plist>",
		"<plist><dict><key>MessageType</key><string>TokenUpdate"
		"</string><key>UDID</key><string>FUZZ-DEV</string><key>Topic"
		"</key><string>com.apple.mgmt.fuzz</string><key>Token</key>"
		"<data>AAEC</data><key>PushMagic</key><string>m</string>"
		"</dict></plist>",
		"<plist><dict><key>MessageType</key><string>TokenUpdate"
		"</string><key>UDID</key><string>FUZZ-DEV</string><key>UserID"
		"</key><string>U1</string><key>Topic</key><string>"
		"com.apple.mgmt.fuzz</string><key>Token</key><data>AAEC</data>"
		"<key>PushMagic</key><string>m</string></dict></plist>",
	};
	struct mdm_service_response r;
	size_t i;

	mdm_service_response_init(&r);
	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		handle("PUT", "/mdm/checkin", NULL, msgs[i], strlen(msgs[i]),
		    &r);
		if (r.status != 200) {
			fprintf(stderr, "enroll %zu: %d %s\n", i, r.status,
			    r.reason);
			abort();
		}
	}
	mdm_service_response_release(&r);
}

static void
setup(void)
{
	struct mdm_x509_opts o = { .kind = MDM_X509_CA,
	    .common_name = "fuzz CA", .days = 30 };
	struct mdm_x509_opts d = { .kind = MDM_X509_CLIENT,
	    .common_name = "FUZZ-DEV", .days = 30 };
	struct mdm_err e;
	EVP_PKEY *key = NULL;

	mdm_log_init("fuzz_service", MDM_LOG_ERROR);
	mdm_crypto_init(NULL);
	snprintf(dir, sizeof(dir), "/tmp/fuzz-service-XXXXXX");
	if (mkdtemp(dir) == NULL)
		fail("mkdtemp", NULL);
	atexit(cleanup);
	if (mdm_state_open(dir, MDM_STATE_CREATE, &st, &e) == -1 ||
	    mdm_x509_gen_rsa(2048, &key, &e) == -1 ||
	    mdm_x509_self_sign(key, &o, &ca, &e) == -1 ||
	    mdm_x509_issue(ca, key, key, &d, &device, &e) == -1)
		fail("setup", &e);
	EVP_PKEY_free(key);
	cfg.ca = ca;
	cfg.seal_key = seal_key;
	cfg.webhook = 1;
	cfg.cert_header = "X-Client-Cert";
	if (mdm_service_new(st, &cfg, &svc, &e) == -1)
		fail("service", &e);
	enroll();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = {
		"/mdm/checkin", "/mdm/connect", "/mdm", "/elsewhere",
	};
	struct mdm_service_request q;
	struct mdm_service_response r;
	const uint8_t *nl;
	char *line = NULL;
	size_t n;
	int s;

	if (svc == NULL)
		setup();
	if (size == 0)
		return 0;
	memset(&q, 0, sizeof(q));
	q.path = paths[data[0] & 3];
	q.content_type = data[0] & 4 ? "application/x-apple-aspen-mdm-checkin" :
	    "application/x-apple-aspen-mdm";
	q.method = data[0] & 8 ? "GET" : "PUT";
	q.body = data + 1;
	q.len = size - 1;
	switch ((data[0] >> 4) & 3) {
	case 0:
		q.tls_cert = device;
		break;
	case 1:
		break;
	default:
		nl = memchr(q.body, '\n', q.len);
		n = nl != NULL ? (size_t)(nl - q.body) : q.len;
		if ((line = malloc(n + 1)) == NULL)
			abort();
		memcpy(line, q.body, n);
		line[n] = '\0';
		if (((data[0] >> 4) & 3) == 2)
			q.signature = line;
		else
			q.forwarded_cert = line;
		break;
	}
	mdm_service_response_init(&r);
	mdm_service_handle(svc, &q, &r);
	s = r.status;
	if (s == 401 || s == 500 || s < 200 || s > 599)
		abort();
	if (s != 200 && (r.reason[0] == '\0' || r.body.len != 0))
		abort();
	mdm_service_response_release(&r);
	free(line);
	return 0;
}
