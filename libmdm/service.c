#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "devauth.h"
#include "log.h"
#include "plist.h"
#include "proc.h"
#include "queue.h"
#include "seal.h"
#include "service.h"
#include "state_queue.h"
#include "state_webhook.h"
#include "webhook.h"
#include "mdm_int.h"

#define CT_CHECKIN	"application/x-apple-aspen-mdm-checkin"
#define CT_PLIST	"application/xml; charset=utf-8"
#define CT_JSON		"application/json"
#define DM_ENDPOINT_MAX	1024

struct mdm_service {
	struct mdm_state *st;
	const struct mdm_service_config *cfg;
	CURL *dm;		/* kept, so its connection is reused */
	struct mdm_devauth_cache *certs;
};

enum route { ROUTE_NONE, ROUTE_CHECKIN, ROUTE_REPORT };

/* What a request proved about who sent it. */
struct identity {
	enum mdm_devauth_source source;
	char hash[65];
};

int
mdm_service_new(struct mdm_state *st, const struct mdm_service_config *cfg,
    struct mdm_service **out, struct mdm_err *e)
{
	struct mdm_service *s;

	*out = NULL;
	if (st == NULL || cfg == NULL || cfg->ca == NULL ||
	    cfg->seal_key == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "service: the state, the "
		    "CA and the seal key are required");
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	if (mdm_devauth_cache_new(&s->certs, e) == -1) {
		free(s);
		return -1;
	}
	s->st = st;
	s->cfg = cfg;
	*out = s;
	return 0;
}

void
mdm_service_free(struct mdm_service *s)
{
	if (s == NULL)
		return;
	if (s->dm != NULL)
		curl_easy_cleanup(s->dm);
	mdm_devauth_cache_free(s->certs);
	free(s);
}

void
mdm_service_response_init(struct mdm_service_response *r)
{
	memset(r, 0, sizeof(*r));
	mdm_buf_init(&r->body, MDM_SERVICE_DM_MAX);
}

void
mdm_service_response_release(struct mdm_service_response *r)
{
	if (r == NULL)
		return;
	mdm_buf_release_secret(&r->body);
}

static void
respond(struct mdm_service_response *r, int status, const char *outcome)
{
	r->status = status;
	r->outcome = outcome;
}

/* A refusal: the reason goes to the log only; devices get no text. */
static void
refuse(struct mdm_service_response *r, int status, const char *outcome,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
refuse(struct mdm_service_response *r, int status, const char *outcome,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	mdm_buf_reset(&r->body);
	r->content_type = NULL;
	respond(r, status, outcome);
}

/* Server-side trouble: a busy database is worth a retry, the rest is ours. */
static void
fail(struct mdm_service_response *r, const struct mdm_err *e)
{
	switch (e->code) {
	case MDM_E_TEMPFAIL:
		refuse(r, 503, "busy", "%s", e->msg);
		break;
	case MDM_E_DATA:
	case MDM_E_TOOBIG:
	case MDM_E_NOINPUT:
	case MDM_E_EXISTS:
	case MDM_E_USAGE:
		refuse(r, 400, "refused", "%s", e->msg);
		break;
	default:
		refuse(r, 500, "error", "%s", e->msg);
		break;
	}
}

static enum route
route(const struct mdm_service_request *q)
{
	const char *ct = q->content_type;

	if (strcmp(q->path, "/mdm/checkin") == 0)
		return ROUTE_CHECKIN;
	if (strcmp(q->path, "/mdm/connect") == 0)
		return ROUTE_REPORT;
	if (strcmp(q->path, "/mdm") != 0)
		return ROUTE_NONE;
	if (ct != NULL && strncasecmp(ct, CT_CHECKIN, strlen(CT_CHECKIN)) == 0)
		return ROUTE_CHECKIN;
	return ROUTE_REPORT;
}

/*
 * The strongest proof first: a TLS client certificate was shown with its
 * key in the handshake; a signature proves the key over this body; a
 * proxy header is only as good as the proxy, so it is read only when the
 * operator says one is in front.
 */
static int
identify(struct mdm_service *s, const struct mdm_service_request *q,
    struct identity *id, struct mdm_err *e)
{
	X509 *cert = NULL, *owned = NULL;
	int revoked, rc = -1;

	id->source = MDM_DEVAUTH_NONE;
	id->hash[0] = '\0';
	if (q->tls_cert != NULL) {
		cert = q->tls_cert;
		id->source = MDM_DEVAUTH_TLS;
	} else if (q->signature != NULL) {
		/* its errors name the header already */
		if (mdm_devauth_from_signature_cached(s->certs, q->signature,
		    q->body, q->len, &owned, e) == -1)
			goto out;
		cert = owned;
		id->source = MDM_DEVAUTH_SIGNATURE;
	} else if (s->cfg->cert_header != NULL && q->forwarded_cert != NULL) {
		if (mdm_devauth_from_header(q->forwarded_cert, &owned,
		    e) == -1) {
			mdm_err_prefix(e, "%s header", s->cfg->cert_header);
			goto out;
		}
		cert = owned;
		id->source = MDM_DEVAUTH_HEADER;
	} else {
		mdm_err_set(e, MDM_E_DATA, "no device identity: no TLS client "
		    "certificate, no Mdm-Signature%s",
		    s->cfg->cert_header != NULL ? ", no certificate header" :
		    "");
		goto out;
	}
	if (mdm_devauth_verify_cached(s->certs, cert, s->cfg->ca,
	    s->cfg->intermediates, id->hash, e) == -1) {
		mdm_err_prefix(e, "device certificate (%s)",
		    mdm_devauth_source_name(id->source));
		goto out;
	}
	if ((revoked = mdm_state_enroll_cert_revoked(s->st, id->hash, e)) == -1)
		goto out;
	if (revoked) {
		mdm_err_set(e, MDM_E_DATA, "device certificate %.16s... is "
		    "revoked", id->hash);
		goto out;
	}
	rc = 0;
out:
	X509_free(owned);
	return rc;
}

/*
 * May this certificate speak for the device channel dev?  A renewed
 * identity is re-bound here; everything else that does not match is
 * refused with the reason in e.
 */
static int
authorize(struct mdm_service *s, const char *dev, const struct identity *id,
    struct mdm_err *e)
{
	enum mdm_state_cert c;

	if (mdm_state_enroll_cert_check(s->st, dev, id->hash, &c, e) == -1)
		return -1;
	switch (c) {
	case MDM_STATE_CERT_MATCH:
		return 0;
	case MDM_STATE_CERT_UNKNOWN:
		return mdm_err_set(e, MDM_E_DATA, "%s is not enrolled (no "
		    "Authenticate seen)", dev);
	case MDM_STATE_CERT_UNBOUND:
		return mdm_err_set(e, MDM_E_DATA, "%s has no certificate "
		    "bound: it must Authenticate again", dev);
	case MDM_STATE_CERT_OTHER:
		return mdm_err_set(e, MDM_E_DATA, "the certificate is bound to "
		    "another enrollment, not %s", dev);
	case MDM_STATE_CERT_MISMATCH:
		break;
	}
	if (mdm_state_enroll_cert_renew(s->st, dev, id->hash, e) == -1) {
		if (e != NULL && e->code == MDM_E_PERM)
			e->code = MDM_E_DATA;
		return -1;
	}
	mdm_log_info("%s: renewed identity certificate %.16s... bound", dev,
	    id->hash);
	return 0;
}

static int
reply_plist(struct mdm_service_response *r, plist_t p, struct mdm_err *e)
{
	mdm_buf_reset(&r->body);
	if (mdm_plist_to_xml(p, &r->body, e) == -1)
		return -1;
	r->content_type = CT_PLIST;
	return 0;
}

static int
reply_data(struct mdm_service_response *r, const char *key,
    const void *data, size_t len, struct mdm_err *e)
{
	plist_t p;
	int rc;

	if ((p = plist_new_dict()) == NULL || mdm_plist_set_data(p, key, data,
	    len) == -1) {
		plist_free(p);
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	}
	rc = reply_plist(r, p, e);
	plist_free(p);
	return rc;
}

static int
user_authenticate(struct mdm_service *s, const struct mdm_queue_checkin *m,
    struct mdm_service_response *r, struct mdm_err *e)
{
	plist_t p;
	int rc;

	if (!s->cfg->user_auth_zero_challenge) {
		refuse(r, 410, "declined", "UserAuthenticate declined (see "
		    "--user-auth-zero-challenge)");
		return 0;
	}
	if (m->digest_response != NULL) {
		respond(r, 200, "user-authenticated");
		return 0;
	}
	if ((p = plist_new_dict()) == NULL ||
	    mdm_plist_set_string(p, "DigestChallenge", "") == -1) {
		plist_free(p);
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	}
	rc = reply_plist(r, p, e);
	plist_free(p);
	if (rc == 0)
		respond(r, 200, "user-challenge");
	return rc;
}

/*
 * The enrollment id is the associated data, so a sealed token copied to
 * another device's row does not open there.
 */
static int
set_bootstrap(struct mdm_service *s, const struct mdm_queue_checkin *m,
    struct mdm_service_response *r, struct mdm_err *e)
{
	struct mdm_buf sealed;
	int rc = -1;

	mdm_buf_init(&sealed, MDM_CAP_PLIST);
	if (m->bootstrap_token != NULL && mdm_seal(s->cfg->seal_key,
	    m->bootstrap_token, m->bootstrap_token_len, m->ident.id,
	    strlen(m->ident.id), &sealed, e) == -1)
		goto out;
	if (mdm_state_enroll_set_bootstrap(s->st, m->ident.id, sealed.data,
	    sealed.len, e) == -1)
		goto out;
	respond(r, 200, m->bootstrap_token != NULL ? "bootstrap-stored" :
	    "bootstrap-deleted");
	rc = 0;
out:
	mdm_buf_release(&sealed);
	return rc;
}

static int
get_bootstrap(struct mdm_service *s, const struct mdm_queue_checkin *m,
    struct mdm_service_response *r, struct mdm_err *e)
{
	struct mdm_buf sealed, token;
	int rc = -1, none;

	mdm_buf_init(&sealed, MDM_CAP_PLIST);
	mdm_buf_init_secret(&token, MDM_CAP_PLIST);
	if ((none = mdm_state_enroll_get_bootstrap(s->st, m->ident.id, &sealed,
	    e)) == -1)
		goto out;
	if (none) {
		respond(r, 200, "bootstrap-none");
		rc = 0;
		goto out;
	}
	if (mdm_unseal(s->cfg->seal_key, sealed.data, sealed.len, m->ident.id,
	    strlen(m->ident.id), &token, e) == -1) {
		mdm_err_prefix(e, "%s: the stored bootstrap token does not "
		    "open with this state's seal.key", m->ident.id);
		e->code = MDM_E_SOFTWARE;
		goto out;
	}
	if (reply_data(r, "BootstrapToken", token.data, token.len, e) == -1)
		goto out;
	respond(r, 200, "bootstrap-sent");
	rc = 0;
out:
	mdm_buf_release(&sealed);
	mdm_buf_release_secret(&token);
	return rc;
}

static int
get_token(struct mdm_service *s, const struct mdm_service_request *q,
    const struct mdm_queue_checkin *m, struct mdm_service_response *r,
    struct mdm_err *e)
{
	struct mdm_proc_result res;
	struct mdm_buf out;
	char idvar[MDM_QUEUE_ID_MAX + 32], typevar[300];
	const char *env[3];
	int rc = -1;

	if (s->cfg->token_exec == NULL) {
		refuse(r, 400, "refused", "GetToken: no --token-exec program "
		    "is set");
		return 0;
	}
	mdm_buf_init_secret(&out, MDM_SERVICE_TOKEN_MAX);
	snprintf(idvar, sizeof(idvar), "MDM_ENROLLMENT_ID=%s", m->ident.id);
	snprintf(typevar, sizeof(typevar), "MDM_TOKEN_SERVICE_TYPE=%s",
	    m->token_service_type != NULL ? m->token_service_type : "");
	env[0] = idvar;
	env[1] = typevar;
	env[2] = NULL;
	if (mdm_proc_run(s->cfg->token_exec, env, q->body, q->len, &out,
	    MDM_SERVICE_EXEC_TIMEOUT_MS, &res, e) == -1) {
		refuse(r, 500, "error", "GetToken: %s", e->msg);
		rc = 0;
		goto out;
	}
	if (res.out_truncated) {
		refuse(r, 400, "refused", "GetToken: %s printed more than %u "
		    "bytes", s->cfg->token_exec, MDM_SERVICE_TOKEN_MAX);
		rc = 0;
		goto out;
	}
	if (res.timed_out || !res.exited || res.code != 0) {
		refuse(r, 400, "refused", "GetToken: %s %s %d",
		    s->cfg->token_exec, res.timed_out ? "timed out, killed by "
		    "signal" : res.exited ? "exited" : "killed by signal",
		    res.code);
		rc = 0;
		goto out;
	}
	if (reply_data(r, "TokenData", out.data, out.len, e) == -1)
		goto out;
	respond(r, 200, "token");
	rc = 0;
out:
	mdm_buf_release_secret(&out);
	return rc;
}

static size_t
dm_write(char *p, size_t size, size_t n, void *arg)
{
	struct mdm_buf *b = arg;

	if (mdm_buf_append(b, p, size * n, NULL) == -1)
		return 0;
	return size * n;
}

/* A relative path the device names: no way out of the DDM base URL. */
static int
dm_endpoint_ok(const char *ep)
{
	const char *p;

	if (*ep == '\0' || *ep == '/' || strlen(ep) > DM_ENDPOINT_MAX ||
	    strstr(ep, "..") != NULL)
		return 0;
	for (p = ep; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("-._~/=&%",
		    *p) == NULL)
			return 0;
	return 1;
}

/*
 * DeclarativeManagement goes to the DDM server, as NanoMDM forwards it:
 * GET base/endpoint, or PUT with the Data when there is some, the
 * enrollment in X-Enrollment-ID; its 2xx answer goes back as JSON.
 */
static int
declarative(struct mdm_service *s, const struct mdm_queue_checkin *m,
    struct mdm_service_response *r, struct mdm_err *e)
{
	struct curl_slist *hdrs = NULL;
	struct mdm_buf url;
	char idhdr[MDM_QUEUE_ID_MAX + 32], cerr[CURL_ERROR_SIZE];
	const char *ep = m->endpoint != NULL ? m->endpoint : "";
	size_t blen;
	long code = 0;
	CURLcode cc;
	int rc = -1;

	mdm_buf_init(&url, 4096);
	if (s->cfg->dm_url == NULL) {
		refuse(r, 400, "refused", "DeclarativeManagement: no --dm-url "
		    "is set");
		rc = 0;
		goto out;
	}
	if (!dm_endpoint_ok(ep)) {
		refuse(r, 400, "refused", "DeclarativeManagement: bad "
		    "Endpoint");
		rc = 0;
		goto out;
	}
	blen = strlen(s->cfg->dm_url);
	if (mdm_buf_printf(&url, e, "%s%s%s", s->cfg->dm_url,
	    blen > 0 && s->cfg->dm_url[blen - 1] == '/' ? "" : "/", ep) == -1 ||
	    mdm_buf_append(&url, "", 1, e) == -1)
		goto out;
	if (s->dm == NULL && (s->dm = curl_easy_init()) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "curl_easy_init failed");
		goto out;
	}
	curl_easy_reset(s->dm);
	snprintf(idhdr, sizeof(idhdr), "X-Enrollment-ID: %s", m->ident.id);
	if ((hdrs = curl_slist_append(NULL, idhdr)) == NULL ||
	    curl_slist_append(hdrs, "Content-Type: application/json") ==
	    NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	mdm_buf_reset(&r->body);
	cerr[0] = '\0';
	curl_easy_setopt(s->dm, CURLOPT_URL, (const char *)url.data);
	curl_easy_setopt(s->dm, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(s->dm, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->dm, CURLOPT_TIMEOUT_MS,
	    (long)MDM_SERVICE_DM_TIMEOUT_MS);
	curl_easy_setopt(s->dm, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(s->dm, CURLOPT_WRITEFUNCTION, dm_write);
	curl_easy_setopt(s->dm, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(s->dm, CURLOPT_PROTOCOLS_STR, "http,https");
	if (m->data_len > 0) {
		curl_easy_setopt(s->dm, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(s->dm, CURLOPT_POSTFIELDS, m->data);
		curl_easy_setopt(s->dm, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)m->data_len);
	}
	cc = curl_easy_perform(s->dm);
	if (cc == CURLE_OK)
		curl_easy_getinfo(s->dm, CURLINFO_RESPONSE_CODE, &code);
	if (cc != CURLE_OK || code < 200 || code > 299) {
		refuse(r, 502, "dm-failed", "DeclarativeManagement %s: %s",
		    ep, cc != CURLE_OK ? (cerr[0] != '\0' ? cerr :
		    curl_easy_strerror(cc)) : "the DDM server did not answer "
		    "2xx");
		if (cc == CURLE_OK)
			snprintf(r->reason + strlen(r->reason),
			    sizeof(r->reason) - strlen(r->reason), " (%ld)",
			    code);
		rc = 0;
		goto out;
	}
	r->content_type = r->body.len > 0 ? CT_JSON : NULL;
	respond(r, 200, "declarative");
	rc = 0;
out:
	curl_slist_free_all(hdrs);
	mdm_buf_release(&url);
	return rc;
}

static const char *
checkin_topic(enum mdm_queue_checkin_type t)
{
	switch (t) {
	case MDM_QUEUE_AUTHENTICATE:
		return "mdm.Authenticate";
	case MDM_QUEUE_TOKEN_UPDATE:
		return "mdm.TokenUpdate";
	case MDM_QUEUE_CHECK_OUT:
		return "mdm.CheckOut";
	case MDM_QUEUE_USER_AUTHENTICATE:
		return "mdm.UserAuthenticate";
	case MDM_QUEUE_SET_BOOTSTRAP_TOKEN:
		return "mdm.SetBootstrapToken";
	case MDM_QUEUE_GET_BOOTSTRAP_TOKEN:
		return "mdm.GetBootstrapToken";
	case MDM_QUEUE_DECLARATIVE_MANAGEMENT:
		return "mdm.DeclarativeManagement";
	case MDM_QUEUE_GET_TOKEN:
		return "mdm.GetToken";
	default:
		return NULL;
	}
}

/*
 * The event goes to the outbox after the state changed; losing it to a
 * crash in between is the only way to lose one, and a failure to queue
 * it is logged, never turned into a failed check-in (the device did
 * nothing wrong, and it would only resend the same message).
 */
static void
webhook(struct mdm_service *s, struct mdm_webhook_event *ev)
{
	struct mdm_err e = { 0 };

	if (!s->cfg->webhook || ev->topic == NULL)
		return;
	if (mdm_state_webhook_add_event(s->st, ev, mdm_webhook_now_ms(), NULL,
	    &e) == -1)
		mdm_log_error("webhook %s for %s not queued: %s", ev->topic,
		    ev->ident->id, e.msg);
}

static void
checkin(struct mdm_service *s, const struct mdm_service_request *q,
    const struct identity *id, struct mdm_service_response *r)
{
	struct mdm_queue_checkin m;
	struct mdm_webhook_event ev;
	struct mdm_err e = { 0 };
	int64_t tally = 0;
	int rc = -1;

	if (mdm_queue_checkin_parse(q->body, q->len, &m, &e) == -1) {
		refuse(r, 400, "malformed", "check-in: %s", e.msg);
		return;
	}
	snprintf(r->id, sizeof(r->id), "%s", m.ident.id);
	if (m.type == MDM_QUEUE_AUTHENTICATE) {
		if (mdm_state_enroll_authenticate(s->st, &m, id->hash,
		    &e) == 0) {
			respond(r, 200, "authenticate");
			rc = 0;
		}
		goto done;
	}
	if (authorize(s, m.ident.device_id, id, &e) == -1)
		goto done;
	switch (m.type) {
	case MDM_QUEUE_TOKEN_UPDATE:
		if ((rc = mdm_state_enroll_token_update(s->st, &m, &tally,
		    &e)) == 0)
			respond(r, 200, "token-update");
		break;
	case MDM_QUEUE_CHECK_OUT:
		if ((rc = mdm_state_enroll_checkout(s->st, &m, &e)) == 0)
			respond(r, 200, "check-out");
		break;
	case MDM_QUEUE_USER_AUTHENTICATE:
		rc = user_authenticate(s, &m, r, &e);
		break;
	case MDM_QUEUE_SET_BOOTSTRAP_TOKEN:
		rc = set_bootstrap(s, &m, r, &e);
		break;
	case MDM_QUEUE_GET_BOOTSTRAP_TOKEN:
		rc = get_bootstrap(s, &m, r, &e);
		break;
	case MDM_QUEUE_DECLARATIVE_MANAGEMENT:
		rc = declarative(s, &m, r, &e);
		break;
	case MDM_QUEUE_GET_TOKEN:
		rc = get_token(s, q, &m, r, &e);
		break;
	default:
		refuse(r, 400, "refused", "check-in: MessageType %s is not "
		    "one we know", m.message_type);
		rc = 0;
		break;
	}
done:
	if (rc == -1)
		fail(r, &e);
	else if (r->status == 200 || r->status == 410) {
		memset(&ev, 0, sizeof(ev));
		ev.topic = checkin_topic(m.type);
		ev.ident = &m.ident;
		ev.query = q->query;
		ev.raw = q->body;
		ev.raw_len = q->len;
		ev.token_update_tally = tally;
		webhook(s, &ev);
	}
	mdm_queue_checkin_release(&m);
}

/* A recorded result is named by its status, for the log and metrics. */
static const char *
report_outcome(enum mdm_state_report_outcome o, enum mdm_queue_status st)
{
	switch (o) {
	case MDM_STATE_REP_IDLE:
		return "idle";
	case MDM_STATE_REP_RECORDED:
		return st == MDM_QUEUE_ACKNOWLEDGED ? "acknowledged" :
		    st == MDM_QUEUE_ERROR ? "command-error" :
		    st == MDM_QUEUE_FORMAT_ERROR ? "format-error" : "result";
	case MDM_STATE_REP_NOT_NOW:
		return "not-now";
	case MDM_STATE_REP_UNKNOWN:
		return "unknown-command";
	case MDM_STATE_REP_UNPARSEABLE:
		return "unparseable";
	default:
		return "orphan";
	}
}

/*
 * A report that names no enrollment is still a message from a known
 * certificate: it is stored against the device that certificate is bound
 * to, so garbage from a device is kept for inspection and never blocks
 * its queue.
 */
static void
report(struct mdm_service *s, const struct mdm_service_request *q,
    const struct identity *id, struct mdm_service_response *r)
{
	struct mdm_queue_report rep;
	struct mdm_state_delivery d;
	struct mdm_webhook_event ev;
	struct mdm_err e = { 0 };
	int rc = -1;

	mdm_state_delivery_init(&d);
	if (mdm_queue_report_parse(q->body, q->len, &rep, &e) == -1) {
		if (mdm_state_enroll_by_cert(s->st, id->hash, rep.ident.id,
		    sizeof(rep.ident.id), NULL) == -1) {
			refuse(r, 400, "malformed", "report: %s", e.msg);
			rc = 0;
			goto out;
		}
		memcpy(rep.ident.device_id, rep.ident.id,
		    sizeof(rep.ident.device_id));
		rep.ident.type = MDM_QUEUE_DEVICE;
		mdm_err_clear(&e);
	}
	snprintf(r->id, sizeof(r->id), "%s", rep.ident.id);
	if (authorize(s, rep.ident.device_id, id, &e) == -1)
		goto out;
	if (mdm_state_queue_report(s->st, &rep, q->body, q->len, &d, &e) == -1)
		goto out;
	mdm_buf_reset(&r->body);
	if (d.body.len > 0) {
		if (mdm_buf_append(&r->body, d.body.data, d.body.len,
		    &e) == -1)
			goto out;
		r->content_type = CT_PLIST;
		snprintf(r->command_uuid, sizeof(r->command_uuid), "%s",
		    d.uuid);
	}
	respond(r, 200, report_outcome(d.outcome, rep.status));
	rc = 0;
	memset(&ev, 0, sizeof(ev));
	ev.topic = "mdm.Connect";
	ev.ident = &rep.ident;
	ev.query = q->query;
	ev.raw = q->body;
	ev.raw_len = q->len;
	ev.status = mdm_queue_status_name(rep.status);
	ev.command_uuid = d.result_uuid[0] != '\0' ? d.result_uuid :
	    rep.command_uuid;
	webhook(s, &ev);
out:
	if (rc == -1)
		fail(r, &e);
	mdm_state_delivery_release(&d);
	mdm_queue_report_release(&rep);
}

void
mdm_service_handle(struct mdm_service *s,
    const struct mdm_service_request *q, struct mdm_service_response *r)
{
	struct identity id;
	struct mdm_err e = { 0 };
	enum route rt;

	mdm_buf_reset(&r->body);
	r->status = 500;
	r->content_type = NULL;
	r->outcome = "error";
	r->id[0] = r->command_uuid[0] = r->reason[0] = '\0';
	if ((rt = route(q)) == ROUTE_NONE) {
		refuse(r, 404, "not-found", "no MDM endpoint at %.64s",
		    q->path);
		return;
	}
	if (strcmp(q->method, "PUT") != 0 && strcmp(q->method, "POST") != 0) {
		refuse(r, 405, "method", "%.16s: devices PUT", q->method);
		return;
	}
	if (identify(s, q, &id, &e) == -1) {
		if (e.code == MDM_E_TEMPFAIL || e.code == MDM_E_SOFTWARE ||
		    e.code == MDM_E_IO)
			fail(r, &e);
		else
			refuse(r, 400, "unauthenticated", "%s", e.msg);
		return;
	}
	if (rt == ROUTE_CHECKIN)
		checkin(s, q, &id, r);
	else
		report(s, q, &id, r);
}
