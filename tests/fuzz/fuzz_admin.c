/*
 * fuzz_admin: mdm-serve's admin API, mdm_admin_handle, on untrusted
 * requests against one state directory made at start-up (an enrollment
 * FUZZ-DEV with pending work), with an API key, metrics on and no push
 * thread (pushes answer "no push configured": no network).
 *
 * Input: the first byte picks the method (bits 0-2: GET, PUT, POST,
 * HEAD, DELETE, and garbage) and the credentials (bits 3-4: right,
 * wrong, none, the next line as the Authorization header); then a line
 * "PATH[?QUERY]", then the body.
 * Beyond not crashing: a wrong or missing key is always 401 and changes
 * nothing, no answer is a 2xx without a body, and no request the client
 * sends makes a 500 except a push (which has none configured here).
 * Regression inputs: tests/data/admin/.
 */
#define _XOPEN_SOURCE 700	/* nftw */
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "log.h"
#include "queue.h"
#include "state.h"
#include "state_queue.h"
#include "x509.h"

#define AUTH	"Basic bmFub21kbTpzZWtyaXQ="	/* nanomdm:sekrit */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static struct mdm_state *st;
static struct mdm_admin *adm;
static struct mdm_metrics *metrics;
static struct mdm_admin_config cfg;

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
	mdm_admin_free(adm);
	mdm_metrics_free(metrics);
	mdm_state_close(st);
	if (dir[0] != '\0')
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
setup(void)
{
	static const char tok[] = "<plist><dict><key>MessageType</key>"
	    "<string>TokenUpdate</string><key>UDID</key><string>FUZZ-DEV"
	    "</string><key>Topic</key><string>com.apple.mgmt.fuzz</string>"
	    "<key>Token</key><data>AAEC</data><key>PushMagic</key><string>m"
	    "</string></dict></plist>";
	static const char cmd[] = "<plist><dict><key>Command</key><dict>"
	    "<key>RequestType</key><string>ProfileList</string></dict></dict>"
	    "</plist>";
	struct mdm_queue_checkin c;
	struct mdm_queue_cmd q = { 0 };
	const char *keys[1] = { "FUZZ-DEV" };

	mdm_log_init("fuzz_admin", MDM_LOG_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/fuzz-admin-XXXXXX");
	if (mkdtemp(dir) == NULL || mdm_crypto_init(NULL) == -1 ||
	    mdm_state_open(dir, MDM_STATE_CREATE, &st, NULL) == -1 ||
	    mdm_queue_checkin_parse(tok, strlen(tok), &c, NULL) == -1 ||
	    mdm_state_enroll_token_update(st, &c, NULL, NULL) == -1 ||
	    mdm_queue_cmd_parse(cmd, strlen(cmd), &q, NULL) == -1 ||
	    mdm_state_queue_enqueue(st, &q, keys, 1, 0, NULL, NULL, NULL,
	    NULL) == -1 ||
	    mdm_metrics_new(&metrics, NULL) == -1)
		abort();
	mdm_queue_checkin_release(&c);
	mdm_queue_cmd_release(&q);
	cfg.key = (const unsigned char *)"sekrit";
	cfg.key_len = 6;
	cfg.metrics = metrics;
	if (mdm_admin_new(st, &cfg, &adm, NULL) == -1)
		abort();
	atexit(cleanup);
}

static long long
pending(void)
{
	struct mdm_state_queue_counts c;

	if (mdm_state_queue_counts(st, &c, NULL) == -1)
		return -1;
	return c.pending;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "PUT", "POST", "HEAD",
		"DELETE", "PATCH", "", "PUT" };
	struct mdm_admin_request q = { 0 };
	struct mdm_admin_response r;
	char *copy, *line, *nl, *auth = NULL, *qm;
	long long before;
	int creds;

	if (st == NULL)
		setup();
	if (size < 1 || size > 1 << 20)
		return 0;
	if ((copy = malloc(size)) == NULL)
		abort();
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	q.method = methods[data[0] & 7];
	creds = (data[0] >> 3) & 3;
	line = copy;
	if (creds == 3) {
		auth = line;
		if ((nl = strchr(line, '\n')) == NULL)
			goto out;
		*nl = '\0';
		line = nl + 1;
	}
	q.authorization = creds == 0 ? AUTH : creds == 1 ?
	    "Basic bmFub21kbTp3cm9uZw==" : creds == 2 ? NULL : auth;
	if ((nl = strchr(line, '\n')) != NULL) {
		*nl = '\0';
		q.body = (const unsigned char *)nl + 1;
		q.len = size - 1 - (size_t)(nl + 1 - copy);
	}
	if ((qm = strchr(line, '?')) != NULL) {
		*qm = '\0';
		q.query = qm + 1;
	}
	q.path = line;
	before = pending();
	mdm_admin_response_init(&r);
	mdm_admin_handle(adm, &q, &r);
	if (r.status < 200 || r.status > 599)
		abort();
	if (r.status >= 200 && r.status < 300 && r.body.len == 0)
		abort();
	if ((creds == 1 || creds == 2) && strcmp(q.path, "/version") != 0 &&
	    mdm_admin_route(q.path) && r.status != 401 && r.status != 404)
		abort();
	if (r.status == 401 && pending() != before)
		abort();
	if (r.status == 500 && strncmp(q.path, "/v1/push/", 9) != 0 &&
	    strncmp(q.path, "/v1/enqueue/", 12) != 0)
		abort();
	mdm_admin_response_release(&r);
out:
	free(copy);
	return 0;
}
