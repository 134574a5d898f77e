#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "enroll.h"
#include "admin.h"
#include "apns.h"
#include "file.h"
#include "http_server.h"
#include "log.h"
#include "metrics.h"
#include "scep.h"
#include "scep_http.h"
#include "seal.h"
#include "serve_tool.h"
#include "service.h"
#include "state.h"
#include "state_webhook.h"
#include "webhook.h"
#include "x509.h"
#include "banned.h"

#define DEFAULT_LISTEN		"127.0.0.1:8443"
#define MAX_THREADS		64
#define HMAC_KEY_MAX		4096
#define WEBHOOK_INTERVAL_S	1
#define WEBHOOK_PURGE_S		3600

enum {
	OPT_LISTEN = 256,
	OPT_NO_TLS,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_CERT_HEADER,
	OPT_ZERO_CHALLENGE,
	OPT_TOKEN_EXEC,
	OPT_DM_URL,
	OPT_WEBHOOK_URL,
	OPT_WEBHOOK_HMAC_KEY_FILE,
	OPT_THREADS,
	OPT_MAX_BODY,
	OPT_TIMEOUT,
	OPT_PORT_FILE,
	OPT_NO_SCEP,
	OPT_API_KEY_FILE,
	OPT_METRICS,
	OPT_APNS_URL,
	OPT_APNS_CA,
	OPT_SANDBOX,
	OPT_URL,
	OPT_SCEP_URL,
	OPT_TOPIC,
	OPT_DEP_CA,
};

struct serve {
	const char *state_dir;
	struct mdm_service_config svc;
	X509 *ca;
	unsigned char seal_key[MDM_SEAL_KEY_LEN];
	struct mdm_scep_cli scep;	/* its policy flags */
	int no_scep;
	/* the admin API and /metrics (api_start) */
	struct mdm_admin_config admin;
	struct mdm_push_config push;
	struct mdm_buf api_key;
	const char *api_key_file, *apns_url;
	int metrics, sandbox;
	char apns_host[MDM_PUSH_HOST_MAX], apns_port[MDM_PUSH_PORT_MAX];
	/* The enrollment profile; off without base_url (--url). */
	struct mdm_enroll_config enroll;
	X509 *dep_ca;			/* verifies DEP MachineInfo, or NULL */
	/* webhooks */
	const char *webhook_url;
	struct mdm_buf hmac_key;
	pthread_t webhook_tid;
	int webhook_running;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stopping;
};

struct worker {
	struct mdm_state *st;
	struct mdm_service *svc;
	struct mdm_scep *scep;		/* NULL with --no-scep */
	struct mdm_admin *admin;
};

static void
worker_fini(void *p, void *arg)
{
	struct worker *w = p;

	(void)arg;
	if (w == NULL)
		return;
	mdm_service_free(w->svc);
	mdm_scep_free(w->scep);
	mdm_admin_free(w->admin);
	mdm_state_close(w->st);
	free(w);
}

static void *
worker_init(int index, void *arg, struct mdm_err *e)
{
	struct serve *sv = arg;
	struct worker *w;

	(void)index;
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		return NULL;
	}
	if (mdm_state_open(sv->state_dir, 0, &w->st, e) == -1 ||
	    mdm_service_new(w->st, &sv->svc, &w->svc, e) == -1 ||
	    mdm_admin_new(w->st, &sv->admin, &w->admin, e) == -1 ||
	    (!sv->no_scep && mdm_scep_new(w->st, &sv->scep.policy, &w->scep,
	    e) == -1)) {
		worker_fini(w, arg);
		return NULL;
	}
	return w;
}

/* Ids and reasons come from devices: one line, printable, short. */
static void
log_safe(const char *s, char *out, size_t outlen)
{
	size_t i;

	if (s == NULL || *s == '\0') {
		snprintf(out, outlen, "-");
		return;
	}
	for (i = 0; i + 1 < outlen && s[i] != '\0'; i++)
		out[i] = (s[i] > 0x20 && s[i] < 0x7f) || s[i] == ' ' ? s[i] :
		    '?';
	out[i] = '\0';
}

static void
reply_text(struct mdm_http_request *r, int status, const char *text)
{
	mdm_http_reply(r, status, "text/plain; charset=utf-8", text,
	    strlen(text), NULL);
}

/*
 * GET /mdm/enroll: a profile, with a fresh one-time challenge unless the
 * server has a static one.  POST: a DEP device's signed MachineInfo
 * first.  Failures are told to the log; the client gets a status and a
 * line that gives nothing away.
 */
static int
serve_enroll(struct worker *w, struct serve *sv, struct mdm_http_request *r)
{
	struct mdm_enroll_machineinfo mi;
	struct mdm_buf profile;
	struct mdm_err e = { 0 };
	const char *method = mdm_http_request_method(r);
	const unsigned char *body;
	char what[2 * MDM_ENROLL_FIELD_MAX + 32] = "";
	size_t len;
	int status;

	mdm_buf_init(&profile, MDM_CAP_CMS);
	if (sv->enroll.base_url == NULL) {
		reply_text(r, status = 404, "not found: enrollment is off "
		    "(no --url)\n");
		goto out;
	}
	if (strcmp(method, "POST") == 0) {
		body = mdm_http_request_body(r, &len);
		if (mdm_enroll_machineinfo(body, len, sv->dep_ca, &mi,
		    &e) == -1) {
			mdm_log_warn("%s POST /mdm/enroll 400: %s",
			    mdm_http_request_peer(r), e.msg);
			reply_text(r, status = 400, "bad request: not a signed "
			    "MachineInfo\n");
			goto out;
		}
		snprintf(what, sizeof(what), " for %s (%s)%s", mi.serial,
		    mi.udid, mi.verified ? "" : ", unverified");
	} else if (strcmp(method, "GET") != 0) {
		mdm_http_add_header(r, "Allow", "GET, POST", NULL);
		reply_text(r, status = 405, "method not allowed: use GET or "
		    "POST\n");
		goto out;
	}
	if (mdm_enroll_profile(w->st, &sv->enroll, &profile, &e) == -1) {
		mdm_log_error("%s %s /mdm/enroll: %s", mdm_http_request_peer(r),
		    method, e.msg);
		if (e.code == MDM_E_TEMPFAIL)
			mdm_http_add_header(r, "Retry-After", "1", NULL);
		status = e.code == MDM_E_TEMPFAIL ? 503 : 500;
		reply_text(r, status, "the enrollment profile cannot be made "
		    "now\n");
		goto out;
	}
	mdm_http_reply(r, status = 200, MDM_ENROLL_CONTENT_TYPE, profile.data,
	    profile.len, NULL);
	mdm_log_debug("%s %s /mdm/enroll 200 profile%s",
	    mdm_http_request_peer(r), method, what);
out:
	mdm_buf_release(&profile);
	return status;
}

/* ---- the admin API and /metrics (libmdm/admin, libmdm/metrics) ---- */

/* One option of the admin API; 0, or mdm_cli_usage's status. */
static int
api_opt(struct mdm_cli *cli, struct serve *sv, int ch, const char *arg)
{
	switch (ch) {
	case OPT_API_KEY_FILE:
		sv->api_key_file = arg;
		break;
	case OPT_METRICS:
		sv->metrics = 1;
		break;
	case OPT_APNS_URL:
		sv->apns_url = arg;
		break;
	case OPT_APNS_CA:
		sv->push.ca_file = arg;
		break;
	case OPT_SANDBOX:
		sv->sandbox = 1;
		break;
	default:
		return mdm_cli_usage(cli, "unknown option");
	}
	return 0;
}

/* The checks across the admin API's options, as mdm-queue's --push. */
static int
api_check(struct mdm_cli *cli, struct serve *sv)
{
	struct mdm_err e = { 0 };

	if (sv->api_key_file == NULL && (sv->apns_url != NULL ||
	    sv->push.ca_file != NULL || sv->sandbox))
		return mdm_cli_usage(cli, "--apns-url, --apns-ca and --sandbox "
		    "go with --api-key-file (they are for the API's pushes)");
	if (mdm_push_server(sv->apns_url, sv->sandbox, sv->apns_host,
	    sizeof(sv->apns_host), sv->apns_port, sizeof(sv->apns_port),
	    &e) == -1)
		return mdm_cli_usage(cli, "%s", e.msg);
	return 0;
}

/*
 * Reads the API key and starts the push thread and the counters, before
 * the workers (which borrow sv->admin) start.  The key is read from a
 * file only: on the command line it would show in ps.
 */
static int
api_start(struct serve *sv, SSL_CTX *tls, struct mdm_err *e)
{
	mdm_buf_init_secret(&sv->api_key, MDM_ADMIN_KEY_MAX);
	sv->admin.ca = sv->ca;
	sv->admin.tls = tls != NULL ? SSL_CTX_get0_certificate(tls) : NULL;
	if (sv->metrics && mdm_metrics_new(&sv->admin.metrics, e) == -1)
		return -1;
	if (sv->api_key_file == NULL)
		return 0;
	if (mdm_file_read_secret_line(sv->api_key_file, "API key",
	    &sv->api_key, e) == -1)
		return -1;
	sv->admin.key = sv->api_key.data;
	sv->admin.key_len = sv->api_key.len;
	sv->push.host = sv->apns_host;
	sv->push.port = sv->apns_port;
	if (mdm_admin_pusher_new(sv->state_dir, &sv->push, sv->admin.metrics,
	    0, &sv->admin.pusher, e) == -1)
		return -1;
	mdm_log_info("admin API at /v1 (pushes to %s:%s)%s", sv->apns_host,
	    sv->apns_port, sv->metrics ? ", metrics at /metrics" : "");
	return 0;
}

/* After the workers have ended. */
static void
api_stop(struct serve *sv)
{
	mdm_admin_pusher_free(sv->admin.pusher);
	sv->admin.pusher = NULL;
	mdm_metrics_free(sv->admin.metrics);
	sv->admin.metrics = NULL;
	mdm_buf_release_secret(&sv->api_key);
}

static void
admin_handle(struct mdm_http_request *r, struct worker *w, struct serve *sv)
{
	struct mdm_admin_request q;
	struct mdm_admin_response resp;
	char path[128], reason[MDM_ERR_MSG_MAX];
	long long t0 = mdm_log_clock_us();

	memset(&q, 0, sizeof(q));
	q.method = mdm_http_request_method(r);
	q.path = mdm_http_request_path(r);
	q.query = mdm_http_request_query(r);
	q.authorization = mdm_http_request_header(r, "Authorization");
	q.body = mdm_http_request_body(r, &q.len);
	mdm_admin_response_init(&resp);
	mdm_admin_handle(w->admin, &q, &resp);
	if (resp.www_authenticate != NULL)
		mdm_http_add_header(r, "WWW-Authenticate",
		    resp.www_authenticate, NULL);
	if (resp.status == 503)
		mdm_http_add_header(r, "Retry-After", "1", NULL);
	mdm_http_reply(r, resp.status, resp.content_type, resp.body.data,
	    resp.body.len, NULL);
	mdm_metrics_request(sv->admin.metrics, strcmp(q.path, "/metrics") == 0 ?
	    MDM_METRICS_ROUTE_METRICS : MDM_METRICS_ROUTE_API, resp.status,
	    mdm_log_clock_us() - t0);
	log_safe(q.path, path, sizeof(path));
	if (resp.reason[0] != '\0') {
		log_safe(resp.reason, reason, sizeof(reason));
		mdm_log(resp.status >= 500 ? MDM_LOG_ERROR : MDM_LOG_WARN,
		    "%s %s %s %d: %s", mdm_http_request_peer(r), q.method,
		    path, resp.status, reason);
	} else
		mdm_log_debug("%s %s %s %d %s %lldus",
		    mdm_http_request_peer(r), q.method, path, resp.status,
		    resp.outcome, mdm_log_clock_us() - t0);
	mdm_admin_response_release(&resp);
}

static void
handle(struct mdm_http_request *r, void *ctx, void *arg)
{
	struct worker *w = ctx;
	struct serve *sv = arg;
	struct mdm_service_request q;
	struct mdm_service_response resp;
	char id[128], reason[MDM_ERR_MSG_MAX];
	long long t0 = mdm_log_clock_us();

	if (w->scep != NULL && mdm_scep_http_path(mdm_http_request_path(r))) {
		mdm_metrics_scep(sv->admin.metrics, mdm_scep_http_handle(w->scep,
		    r), mdm_log_clock_us() - t0);
		return;
	}
	if (mdm_admin_route(mdm_http_request_path(r))) {
		admin_handle(r, w, sv);
		return;
	}
	if (strcmp(mdm_http_request_path(r), "/mdm/enroll") == 0) {
		mdm_metrics_request(sv->admin.metrics, MDM_METRICS_ROUTE_ENROLL,
		    serve_enroll(w, sv, r), mdm_log_clock_us() - t0);
		return;
	}
	memset(&q, 0, sizeof(q));
	q.method = mdm_http_request_method(r);
	q.path = mdm_http_request_path(r);
	q.query = mdm_http_request_query(r);
	q.content_type = mdm_http_request_header(r, "Content-Type");
	q.signature = mdm_http_request_header(r, "Mdm-Signature");
	if (sv->svc.cert_header != NULL)
		q.forwarded_cert = mdm_http_request_header(r,
		    sv->svc.cert_header);
	q.tls_cert = mdm_http_request_peer_cert(r);
	q.body = mdm_http_request_body(r, &q.len);
	mdm_service_response_init(&resp);
	mdm_service_handle(w->svc, &q, &resp);
	mdm_metrics_service(sv->admin.metrics, resp.outcome, resp.status);
	mdm_metrics_request(sv->admin.metrics, MDM_METRICS_ROUTE_MDM,
	    resp.status, mdm_log_clock_us() - t0);
	if (resp.status == 503)
		mdm_http_add_header(r, "Retry-After", "1", NULL);
	mdm_http_reply(r, resp.status, resp.content_type, resp.body.data,
	    resp.body.len, NULL);
	log_safe(resp.id, id, sizeof(id));
	if (resp.reason[0] != '\0') {
		log_safe(resp.reason, reason, sizeof(reason));
		mdm_log(resp.status >= 500 ? MDM_LOG_ERROR : MDM_LOG_WARN,
		    "%s %s %s %d %s: %s", mdm_http_request_peer(r), q.method,
		    q.path, resp.status, id, reason);
	} else
		mdm_log_debug("%s %s %s %d %s %s%s%s %lldus",
		    mdm_http_request_peer(r), q.method, q.path, resp.status,
		    id, resp.outcome, resp.command_uuid[0] != '\0' ? " sent " :
		    "", resp.command_uuid, mdm_log_clock_us() - t0);
	mdm_service_response_release(&resp);
	if (sv->webhook_url != NULL) {
		pthread_mutex_lock(&sv->lock);
		pthread_cond_signal(&sv->wake);
		pthread_mutex_unlock(&sv->lock);
	}
}

/*
 * Delivers the outbox: woken by each request (which may have queued an
 * event) and once a second for retries that came due.  It has its own
 * database handle and never blocks a worker.  Once an hour it also
 * drops events delivered or given up long ago, so the outbox of a server
 * nobody runs `mdm-queue purge` for still stays small.
 */
static void *
webhook_main(void *arg)
{
	struct serve *sv = arg;
	struct mdm_webhook_config wc;
	struct mdm_webhook_stats stats;
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	struct timespec until;
	time_t warned = 0, purged = 0;
	int n;

	memset(&wc, 0, sizeof(wc));
	wc.url = sv->webhook_url;
	wc.hmac_key = sv->hmac_key.len > 0 ? sv->hmac_key.data : NULL;
	wc.hmac_key_len = sv->hmac_key.len;
	pthread_mutex_lock(&sv->lock);
	while (!sv->stopping) {
		pthread_mutex_unlock(&sv->lock);
		if (st == NULL && mdm_state_open(sv->state_dir, 0, &st,
		    &e) == -1)
			n = -1;
		else {
			memset(&stats, 0, sizeof(stats));
			n = mdm_webhook_deliver_due(st, &wc,
			    mdm_webhook_now_ms(), &stats, &e);
			if (n != -1 && time(NULL) - purged >= WEBHOOK_PURGE_S) {
				purged = time(NULL);
				if (mdm_state_webhook_purge(st,
				    mdm_webhook_now_ms(), -1, -1, NULL,
				    &e) == -1)
					n = -1;
			}
		}
		if (n == -1 && time(NULL) - warned >= 60) {
			mdm_log_error("webhook: %s", e.msg);
			warned = time(NULL);
		}
		pthread_mutex_lock(&sv->lock);
		if (n > 0 && !stats.stopped && !sv->stopping)
			continue;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += WEBHOOK_INTERVAL_S;
		if (!sv->stopping)
			pthread_cond_timedwait(&sv->wake, &sv->lock, &until);
	}
	pthread_mutex_unlock(&sv->lock);
	mdm_state_close(st);
	return NULL;
}

static int
webhook_start(struct serve *sv, struct mdm_err *e)
{
	int err;

	if (sv->webhook_url == NULL)
		return 0;
	if ((err = pthread_create(&sv->webhook_tid, NULL, webhook_main,
	    sv)) != 0)
		return mdm_err_set_sys(e, MDM_E_SOFTWARE, err, "cannot start "
		    "the webhook thread");
	sv->webhook_running = 1;
	return 0;
}

static void
webhook_stop(struct serve *sv)
{
	if (!sv->webhook_running)
		return;
	pthread_mutex_lock(&sv->lock);
	sv->stopping = 1;
	pthread_cond_signal(&sv->wake);
	pthread_mutex_unlock(&sv->lock);
	pthread_join(sv->webhook_tid, NULL);
	sv->webhook_running = 0;
}

/*
 * The TLS identity of the server, and a request for the device's
 * certificate that never fails the handshake: a device that signs its
 * messages offers none, and one our CA did not issue is refused with a
 * 400 and a log line saying why, which a handshake alert would not give.
 */
static int
accept_any(int ok, X509_STORE_CTX *ctx)
{
	(void)ok;
	(void)ctx;
	return 1;
}

static int
tls_setup(struct mdm_state *st, const char *cert, const char *key, X509 *ca,
    SSL_CTX **out, struct mdm_err *e)
{
	char cpath[PATH_MAX], kpath[PATH_MAX];
	STACK_OF(X509_NAME) *names = NULL;
	X509_NAME *n;
	SSL_CTX *ctx = NULL;

	*out = NULL;
	if (cert == NULL) {
		if (mdm_state_path(st, "tls/server.pem", cpath, sizeof(cpath),
		    e) == -1)
			return -1;
		cert = cpath;
	}
	if (key == NULL) {
		if (mdm_state_path(st, "tls/server.key", kpath, sizeof(kpath),
		    e) == -1)
			return -1;
		key = kpath;
	}
	if (!mdm_file_exists(cert))
		return mdm_err_set(e, MDM_E_CONFIG, "%s is missing: run "
		    "'mdm-certs init', give --tls-cert, or serve behind a "
		    "TLS proxy with --no-tls", cert);
	if (mdm_file_check_private(key, e) == -1)
		return -1;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "cannot make a TLS context");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		mdm_err_set_ssl(e, MDM_E_CONFIG, "%s", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		mdm_err_set_ssl(e, MDM_E_CONFIG, "%s (for %s)", key, cert);
		goto fail;
	}
	if ((names = sk_X509_NAME_new_null()) == NULL ||
	    (n = X509_NAME_dup(X509_get_subject_name(ca))) == NULL ||
	    !sk_X509_NAME_push(names, n)) {
		mdm_err_set_ssl(e, MDM_E_SOFTWARE, "out of memory");
		goto fail;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	names = NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
	*out = ctx;
	return 0;
fail:
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	SSL_CTX_free(ctx);
	return -1;
}

static int
executable(const char *path)
{
	return strchr(path, '/') != NULL && access(path, X_OK) == 0;
}

static const struct mdm_cli_opt serve_opts[] = {
	{ "listen", 0, "addr:port", OPT_LISTEN,
	    "listen here (default: " DEFAULT_LISTEN "; :PORT = every "
	    "address)" },
	{ "no-tls", 0, NULL, OPT_NO_TLS,
	    "plain HTTP, for a TLS-terminating proxy in front" },
	{ "tls-cert", 0, "file", OPT_TLS_CERT,
	    "server certificate chain, PEM (default: STATE/tls/server.pem)" },
	{ "tls-key", 0, "file", OPT_TLS_KEY,
	    "its key, PEM, mode 0600 (default: STATE/tls/server.key)" },
	{ "cert-header", 0, "name", OPT_CERT_HEADER,
	    "read the device certificate from this proxy header" },
	{ "user-auth-zero-challenge", 0, NULL, OPT_ZERO_CHALLENGE,
	    "answer UserAuthenticate with an empty challenge, not 410" },
	{ "token-exec", 0, "prog", OPT_TOKEN_EXEC,
	    "answer GetToken with what prog prints" },
	{ "dm-url", 0, "url", OPT_DM_URL,
	    "forward DeclarativeManagement to this DDM server" },
	{ "webhook-url", 0, "url", OPT_WEBHOOK_URL,
	    "POST MicroMDM-style events here, from a durable outbox" },
	{ "webhook-hmac-key-file", 0, "file", OPT_WEBHOOK_HMAC_KEY_FILE,
	    "sign events with this key (X-Hmac-Signature)" },
	{ "url", 0, "url", OPT_URL,
	    "serve the enrollment profile at /mdm/enroll for this base URL" },
	{ "scep-url", 0, "url", OPT_SCEP_URL,
	    "the profile's SCEP URL (default: URL/scep)" },
	{ "topic", 0, "topic", OPT_TOPIC,
	    "the profile's push topic (default: the only one in STATE/push)" },
	{ "dep-ca", 0, "file", OPT_DEP_CA,
	    "DEP MachineInfo must be signed by a device of this Apple CA" },
	{ "no-scep", 0, NULL, OPT_NO_SCEP,
	    "do not serve SCEP at /scep (mdm-scep serves it)" },
	MDM_SCEP_CLI_OPTS,
	{ "api-key-file", 0, "file", OPT_API_KEY_FILE,
	    "serve the admin API at /v1, its key the first line of file" },
	{ "metrics", 0, NULL, OPT_METRICS,
	    "serve Prometheus metrics at /metrics (behind the API key)" },
	{ "apns-url", 0, "url", OPT_APNS_URL,
	    "admin API pushes: APNs server, https://host[:port] (default: "
	    "https://" MDM_APNS_HOST ")" },
	{ "apns-ca", 0, "file", OPT_APNS_CA,
	    "admin API pushes: trust this CA for the APNs server" },
	{ "sandbox", 0, NULL, OPT_SANDBOX,
	    "admin API pushes: use the sandbox server "
	    MDM_APNS_HOST_SANDBOX },
	{ "threads", 0, "n", OPT_THREADS,
	    "worker threads (default: the number of CPUs)" },
	{ "max-body", 0, "bytes", OPT_MAX_BODY,
	    "largest request body (default: 8m)" },
	{ "timeout", 0, "duration", OPT_TIMEOUT,
	    "close connections idle this long (default: 30s)" },
	{ "port-file", 0, "file", OPT_PORT_FILE,
	    "write the port to file once serving (for --listen ...:0)" },
	MDM_CLI_OPT_END
};

struct opts {
	const char *listen, *tls_cert, *tls_key, *port_file, *hmac_file;
	const char *dep_ca;
	long long threads, max_body, timeout;
	int no_tls;
};

/*
 * Fills o and sv from argv.  0: go on; otherwise the exit status, or -1
 * when --help, --version or a usage error was handled (cli->status).
 */
static int
parse_opts(struct mdm_cli *cli, int argc, char **argv, struct opts *o,
    struct serve *sv)
{
	struct mdm_err e = { 0 };
	const char *arg;
	int ch;

	while ((ch = mdm_cli_getopt(cli, argc, argv, serve_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (mdm_scep_cli_opt(&sv->scep, ch, arg, &e)) {
		case 1:
			continue;
		case -1:
			return mdm_cli_usage(cli, "%s", e.msg);
		}
		switch (ch) {
		case OPT_LISTEN:
			o->listen = arg;
			break;
		case OPT_NO_TLS:
			o->no_tls = 1;
			break;
		case OPT_TLS_CERT:
			o->tls_cert = arg;
			break;
		case OPT_TLS_KEY:
			o->tls_key = arg;
			break;
		case OPT_CERT_HEADER:
			if (*arg == '\0' || strpbrk(arg, ": \t\r\n") != NULL)
				return mdm_cli_usage(cli, "--cert-header: '%s' "
				    "is not a header name", arg);
			sv->svc.cert_header = arg;
			break;
		case OPT_ZERO_CHALLENGE:
			sv->svc.user_auth_zero_challenge = 1;
			break;
		case OPT_TOKEN_EXEC:
			sv->svc.token_exec = arg;
			break;
		case OPT_DM_URL:
			if (strncmp(arg, "http://", 7) != 0 &&
			    strncmp(arg, "https://", 8) != 0)
				return mdm_cli_usage(cli, "--dm-url: '%s' is "
				    "not an http(s) URL", arg);
			sv->svc.dm_url = arg;
			break;
		case OPT_WEBHOOK_URL:
			if (strncmp(arg, "http://", 7) != 0 &&
			    strncmp(arg, "https://", 8) != 0)
				return mdm_cli_usage(cli, "--webhook-url: '%s' "
				    "is not an http(s) URL", arg);
			sv->webhook_url = arg;
			break;
		case OPT_WEBHOOK_HMAC_KEY_FILE:
			o->hmac_file = arg;
			break;
		case OPT_THREADS:
			if (mdm_cli_parse_int(arg, 1, MAX_THREADS, &o->threads,
			    &e) == -1)
				return mdm_cli_usage(cli, "--threads: %s",
				    e.msg);
			break;
		case OPT_MAX_BODY:
			if (mdm_cli_parse_size(arg, 4096, 64LL << 20,
			    &o->max_body, &e) == -1)
				return mdm_cli_usage(cli, "--max-body: %s",
				    e.msg);
			break;
		case OPT_TIMEOUT:
			if (mdm_cli_parse_duration(arg, &o->timeout, &e) == -1 ||
			    o->timeout < 1 || o->timeout > 3600)
				return mdm_cli_usage(cli, "--timeout: '%s' is "
				    "not a duration from 1s to 1h", arg);
			break;
		case OPT_PORT_FILE:
			o->port_file = arg;
			break;
		case OPT_NO_SCEP:
			sv->no_scep = 1;
			break;
		case OPT_API_KEY_FILE:
		case OPT_METRICS:
		case OPT_APNS_URL:
		case OPT_APNS_CA:
		case OPT_SANDBOX:
			if (api_opt(cli, sv, ch, arg) != 0)
				return MDM_EX_USAGE;
			break;
		case OPT_URL:
			sv->enroll.base_url = arg;
			break;
		case OPT_SCEP_URL:
			sv->enroll.scep_url = arg;
			break;
		case OPT_TOPIC:
			sv->enroll.topic = arg;
			break;
		case OPT_DEP_CA:
			o->dep_ca = arg;
			break;
		default:
			return -1;
		}
	}
	if (cli->optind != argc)
		return mdm_cli_usage(cli, "mdm-serve takes no operands");
	if (api_check(cli, sv) != 0)
		return MDM_EX_USAGE;
	if (o->no_tls && (o->tls_cert != NULL || o->tls_key != NULL))
		return mdm_cli_usage(cli, "--no-tls excludes --tls-cert and "
		    "--tls-key");
	if (o->hmac_file != NULL && sv->webhook_url == NULL)
		return mdm_cli_usage(cli, "--webhook-hmac-key-file needs "
		    "--webhook-url");
	/* The challenge stays: the enrollment profile hands it out. */
	if (sv->no_scep && (sv->scep.policy.validity_days != 0 ||
	    sv->scep.policy.min_key_bits != 0 ||
	    sv->scep.policy.subject_pattern != NULL ||
	    sv->scep.policy.csr_verify_exec != NULL))
		return mdm_cli_usage(cli, "--no-scep excludes the SCEP "
		    "issuing options");
	if (sv->enroll.base_url == NULL && (sv->enroll.scep_url != NULL ||
	    sv->enroll.topic != NULL || o->dep_ca != NULL))
		return mdm_cli_usage(cli, "--scep-url, --topic and --dep-ca "
		    "need --url");
	sv->enroll.allow_http = 1;
	if (sv->enroll.base_url != NULL &&
	    mdm_enroll_config_check(&sv->enroll, &e) == -1)
		return mdm_cli_usage(cli, "%s", e.msg);
	if (sv->enroll.base_url != NULL &&
	    strncmp(sv->enroll.base_url, "http://", 7) == 0)
		mdm_log_warn("--url %s: Apple devices enroll only with an "
		    "https:// server URL; this one serves simulated devices",
		    sv->enroll.base_url);
	if (mdm_scep_cli_finish(&sv->scep, &e) == -1)
		return e.code == MDM_E_USAGE ? mdm_cli_usage(cli, "%s", e.msg) :
		    mdm_cli_fail(cli, &e);
	return 0;
}

static int
run(struct mdm_cli *cli, int argc, char **argv)
{
	struct serve sv;
	struct opts o;
	struct mdm_http_config hc;
	struct mdm_http_server *srv = NULL;
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	SSL_CTX *tls = NULL;
	char keypath[PATH_MAX], topic[MDM_ENROLL_TOPIC_MAX + 1];
	int sig, rc;

	memset(&sv, 0, sizeof(sv));
	memset(&o, 0, sizeof(o));
	o.listen = DEFAULT_LISTEN;
	o.max_body = 8LL << 20;
	o.timeout = 30;
	mdm_buf_init_secret(&sv.hmac_key, HMAC_KEY_MAX);
	mdm_scep_cli_init(&sv.scep);
	pthread_mutex_init(&sv.lock, NULL);
	pthread_cond_init(&sv.wake, NULL);
	if ((rc = parse_opts(cli, argc, argv, &o, &sv)) != 0) {
		if (rc == -1)
			rc = cli->status;
		goto out;
	}
	if (sv.svc.token_exec != NULL && !executable(sv.svc.token_exec)) {
		mdm_err_set(&e, MDM_E_CONFIG, "--token-exec: '%s' is not an "
		    "executable file (give its path)", sv.svc.token_exec);
		goto fail;
	}
	if (o.hmac_file != NULL && mdm_file_read_secret_line(o.hmac_file,
	    "key", &sv.hmac_key, &e) == -1)
		goto fail;
	/*
	 * No mdm_crypto_init: nothing here needs the legacy provider, and
	 * with it loaded OpenSSL 3.0 takes half again as long to parse each
	 * device certificate.
	 */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		mdm_err_set(&e, MDM_E_SOFTWARE, "curl_global_init failed");
		goto fail;
	}
	/* A state that is not set up fails here, before the port opens. */
	if (mdm_state_open(mdm_cli_state_dir(cli), 0, &st, &e) == -1 ||
	    mdm_state_ca_cert(st, &sv.ca, &e) == -1 ||
	    mdm_state_path(st, "seal.key", keypath, sizeof(keypath),
	    &e) == -1 ||
	    mdm_seal_key_load(keypath, 1, sv.seal_key, &e) == -1)
		goto fail;
	if (!o.no_tls && tls_setup(st, o.tls_cert, o.tls_key, sv.ca, &tls,
	    &e) == -1)
		goto fail;
	sv.enroll.challenge = sv.scep.policy.static_challenge;
	if (sv.enroll.base_url != NULL &&
	    mdm_enroll_topic(st, sv.enroll.topic, topic, sizeof(topic),
	    &e) == -1)
		goto fail;
	if (sv.enroll.base_url != NULL) {
		sv.enroll.topic = topic;
		sv.enroll.ca = sv.ca;
		if (mdm_state_identity(st, "signing/signing", "run 'mdm-certs "
		    "init' first", &sv.enroll.signer, &sv.enroll.signer_key,
		    &e) == -1)
			goto fail;
	}
	if (o.dep_ca != NULL && mdm_x509_load_cert(o.dep_ca, &sv.dep_ca,
	    &e) == -1)
		goto fail;
	mdm_state_close(st);
	st = NULL;
	sv.state_dir = mdm_cli_state_dir(cli);
	sv.svc.ca = sv.ca;
	sv.svc.seal_key = sv.seal_key;
	sv.svc.webhook = sv.webhook_url != NULL;
	if (api_start(&sv, tls, &e) == -1)
		goto fail;

	memset(&hc, 0, sizeof(hc));
	hc.listen = o.listen;
	hc.threads = (int)o.threads;
	hc.max_body = (size_t)o.max_body;
	hc.timeout_ms = (int)o.timeout * 1000;
	hc.ssl_ctx = tls;
	hc.stop_on_signals = 1;
	hc.port_file = o.port_file;
	hc.handler = handle;
	hc.thread_init = worker_init;
	hc.thread_fini = worker_fini;
	hc.arg = &sv;
	if (mdm_http_server_new(&hc, &srv, &e) == -1 ||
	    webhook_start(&sv, &e) == -1 ||
	    mdm_http_server_start(srv, &e) == -1)
		goto fail;
	mdm_log_info("listening on %s (%s; check-in at /mdm/checkin, "
	    "commands at /mdm/connect, both at /mdm%s%s)%s%s",
	    mdm_http_server_address(srv), tls != NULL ? "TLS" : "plain HTTP",
	    sv.no_scep ? "" : "; SCEP at /scep",
	    sv.enroll.base_url != NULL ? "; enrollment at /mdm/enroll" : "",
	    sv.webhook_url != NULL ? "; webhooks to " : "",
	    sv.webhook_url != NULL ? sv.webhook_url : "");
	sig = mdm_http_server_wait(srv);
	mdm_log_info("stopped%s", sig == SIGTERM ? " (SIGTERM)" :
	    sig == SIGINT ? " (SIGINT)" : "");
	rc = MDM_EX_OK;
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	mdm_http_server_free(srv);
	api_stop(&sv);
	webhook_stop(&sv);
	mdm_state_close(st);
	SSL_CTX_free(tls);
	X509_free(sv.ca);
	X509_free(sv.dep_ca);
	X509_free(sv.enroll.signer);
	EVP_PKEY_free(sv.enroll.signer_key);
	OPENSSL_cleanse(sv.seal_key, sizeof(sv.seal_key));
	mdm_buf_release_secret(&sv.hmac_key);
	mdm_scep_cli_release(&sv.scep);
	pthread_cond_destroy(&sv.wake);
	pthread_mutex_destroy(&sv.lock);
	return rc;
}

const struct mdm_cli_tool mdm_serve_tool = {
	.name = "mdm-serve",
	.summary = "The MDM server devices talk to: enrollment, SCEP, "
	    "check-in, command delivery and results, with webhooks, an admin "
	    "API and metrics",
	.synopsis = "[--listen addr:port] [--no-tls | --tls-cert file "
	    "--tls-key file] [--cert-header name] [--user-auth-zero-challenge] "
	    "[--token-exec prog] [--dm-url url] [--url url [--scep-url url] "
	    "[--topic topic] [--dep-ca file]] [--challenge secret | "
	    "--challenge-file file] [--no-scep | [--validity-days n] "
	    "[--min-key-bits n] [--allow-subject regex] "
	    "[--csr-verify-exec prog]] "
	    "[--api-key-file file [--apns-url url | --sandbox] "
	    "[--apns-ca file]] [--metrics] [--webhook-url url "
	    "[--webhook-hmac-key-file file]] [--threads n] [--max-body bytes] "
	    "[--timeout duration] [--port-file file]",
	.opts = serve_opts,
	.run = run,
};
