#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <nghttp2/nghttp2.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "apns.h"
#include "buf.h"
#include "json.h"
#include "mdm_int.h"

#define WBUF_SIZE	(64u << 10)
#define RBUF_SIZE	(16u << 10)
#define BACKOFF_MAX_MS	30000
/* {"mdm":"..."} with every character of the magic escaped. */
#define BODY_MAX	(2 * MDM_APNS_MAGIC_MAX + 16)

enum slot_state {
	SLOT_FREE,
	SLOT_QUEUED,		/* taken from next(), waiting for a stream */
	SLOT_SENT,		/* on a stream of the current connection */
};

struct slot {
	struct mdm_apns_push p;
	enum slot_state state;
	int attempts;
	int status;
	char apns_id[40];
	char body[BODY_MAX];
	size_t body_len, body_off;
	struct mdm_buf reply;
};

struct mdm_apns {
	char host[256];
	char port[32];
	char topic[MDM_APNS_TOPIC_MAX + 1];
	int host_is_ip;
	unsigned max_streams;
	int max_attempts, backoff_ms, timeout_ms;
	SSL_CTX *ctx;
	BIO_METHOD *bio_meth;
	nghttp2_session_callbacks *cbs;

	struct slot *slots;
	unsigned *free_idx;	/* stack of free slots */
	unsigned n_free;
	unsigned *queue;	/* ring of queued slots, oldest first */
	unsigned q_head, q_len;
	unsigned inflight;

	/* The current connection: sess is NULL when there is none. */
	int fd;
	SSL *ssl;
	nghttp2_session *sess;
	int answered;		/* a response came on this connection */
	int goaway;		/* no new streams on this connection */
	int dead;		/* the connection failed: tear it down */
	int cert_rejected;	/* the server refused our certificate */
	char conn_err[400];
	int conn_failures;	/* connections in a row that got no answer */
	long long last_io;
	unsigned char wbuf[WBUF_SIZE];
	size_t wlen;
	const uint8_t *pend;	/* nghttp2's bytes not yet in wbuf */
	size_t pend_len;
	int want_write;
	unsigned rng;

	/* The run in progress. */
	mdm_apns_next_fn next;
	mdm_apns_done_fn done;
	void *arg;
	int eof;
	int fatal;		/* sticky: the topic cannot push */
	char fatal_msg[700];
};

const char *
mdm_apns_outcome_name(enum mdm_apns_outcome o)
{
	switch (o) {
	case MDM_APNS_OK:
		return "ok";
	case MDM_APNS_TOKEN_DEAD:
		return "token-dead";
	case MDM_APNS_TOPIC_FATAL:
		return "topic-fatal";
	case MDM_APNS_RETRY:
		return "retry";
	case MDM_APNS_REFUSED:
		return "refused";
	}
	return "unknown";
}

static int
reason_in(const char *reason, const char *const *list)
{
	for (; reason != NULL && *list != NULL; list++)
		if (strcmp(reason, *list) == 0)
			return 1;
	return 0;
}

enum mdm_apns_outcome
mdm_apns_classify(int status, const char *reason)
{
	static const char *const dead[] = { "Unregistered", "ExpiredToken",
		"BadDeviceToken", "DeviceTokenNotForTopic", NULL };
	static const char *const topic[] = { "BadCertificate",
		"BadCertificateEnvironment", "Forbidden", "BadTopic",
		"TopicDisallowed", "MissingTopic", NULL };

	if (status >= 200 && status < 300)
		return MDM_APNS_OK;
	if (status == 410 || reason_in(reason, dead))
		return MDM_APNS_TOKEN_DEAD;
	if (status == 403 || reason_in(reason, topic))
		return MDM_APNS_TOPIC_FATAL;
	/* IdleTimeout is a 400 about the connection, not the push. */
	if (status == 429 || status >= 500 || status == 0 ||
	    (reason != NULL && strcmp(reason, "IdleTimeout") == 0))
		return MDM_APNS_RETRY;
	return MDM_APNS_REFUSED;
}

int
mdm_apns_parse_reply(const void *body, size_t len, char *reason,
    size_t reasonlen, int64_t *timestamp)
{
	json_t *j = NULL;
	const char *r;
	size_t i;
	int rc = -1;

	if (reasonlen > 0)
		reason[0] = '\0';
	*timestamp = 0;
	if (len > MDM_APNS_REPLY_MAX || mdm_json_parse(body, len, &j,
	    NULL) == -1 || !json_is_object(j))
		goto out;
	if ((r = mdm_json_get_string(j, "reason")) != NULL && reasonlen > 0) {
		for (i = 0; r[i] != '\0' && i + 1 < reasonlen; i++)
			reason[i] = r[i] >= 0x20 && r[i] < 0x7f ? r[i] : '?';
		reason[i] = '\0';
	}
	if (mdm_json_get_int(j, "timestamp", timestamp) == -1)
		*timestamp = 0;
	rc = 0;
out:
	json_decref(j);
	return rc;
}

static int
printable(const char *s, int allow_space)
{
	for (; *s != '\0'; s++)
		if (*s < (allow_space ? 0x20 : 0x21) || *s > 0x7e)
			return 0;
	return 1;
}

static int
is_uuid(const char *s)
{
	size_t i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (mdm_hex_digit((unsigned char)s[i]) == -1)
			return 0;
	}
	return 1;
}

int
mdm_apns_push_check(const struct mdm_apns_push *p, struct mdm_err *e)
{
	size_t n, i;

	n = strnlen(p->token, sizeof(p->token));
	if (n < 2 || n > MDM_APNS_TOKEN_MAX || n % 2 != 0)
		return mdm_err_set(e, MDM_E_DATA, "device token must be 2 to "
		    "%d hex digits, an even number", MDM_APNS_TOKEN_MAX);
	for (i = 0; i < n; i++)
		if (!((p->token[i] >= '0' && p->token[i] <= '9') ||
		    (p->token[i] >= 'a' && p->token[i] <= 'f')))
			return mdm_err_set(e, MDM_E_DATA, "device token is not "
			    "lowercase hex");
	n = strnlen(p->magic, sizeof(p->magic));
	if (n == 0 || n > MDM_APNS_MAGIC_MAX || !printable(p->magic, 1))
		return mdm_err_set(e, MDM_E_DATA, "push magic must be 1 to %d "
		    "printable characters", MDM_APNS_MAGIC_MAX);
	if (strnlen(p->id, sizeof(p->id)) == sizeof(p->id) ||
	    (p->id[0] != '\0' && !is_uuid(p->id)))
		return mdm_err_set(e, MDM_E_DATA, "apns-id is not a uuid");
	if (p->priority != 0 && p->priority != 1 && p->priority != 5 &&
	    p->priority != 10)
		return mdm_err_set(e, MDM_E_DATA, "priority %d is not 1, 5 or 10",
		    p->priority);
	if (p->expiration < 0)
		return mdm_err_set(e, MDM_E_DATA, "expiration is negative");
	return 0;
}

/*
 * OpenSSL's socket BIO writes with write(2), which raises SIGPIPE on a
 * connection the server has closed; a library must not kill its caller,
 * so ours sends with MSG_NOSIGNAL and borrows the rest from the socket BIO.
 */
static int
bio_write(BIO *b, const char *buf, int len)
{
	ssize_t n;
	int fd = -1;

	BIO_get_fd(b, &fd);
	BIO_clear_retry_flags(b);
	n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static int
bio_puts(BIO *b, const char *s)
{
	return bio_write(b, s, (int)strlen(s));
}

static BIO_METHOD *
bio_method(void)
{
	const BIO_METHOD *sock = BIO_s_socket();
	BIO_METHOD *m;

	m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
	    BIO_TYPE_DESCRIPTOR, "mdm apns socket");
	if (m == NULL)
		return NULL;
	if (BIO_meth_set_write(m, bio_write) != 1 ||
	    BIO_meth_set_puts(m, bio_puts) != 1 ||
	    BIO_meth_set_read(m, BIO_meth_get_read(sock)) != 1 ||
	    BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock)) != 1 ||
	    BIO_meth_set_create(m, BIO_meth_get_create(sock)) != 1 ||
	    BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock)) != 1) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

static void
free_slot(struct mdm_apns *a, struct slot *s)
{
	s->state = SLOT_FREE;
	mdm_buf_release(&s->reply);
	a->free_idx[a->n_free++] = (unsigned)(s - a->slots);
}

static void
enqueue(struct mdm_apns *a, struct slot *s)
{
	s->state = SLOT_QUEUED;
	a->queue[(a->q_head + a->q_len) % a->max_streams] =
	    (unsigned)(s - a->slots);
	a->q_len++;
}

static struct slot *
dequeue(struct mdm_apns *a)
{
	struct slot *s = &a->slots[a->queue[a->q_head]];

	a->q_head = (a->q_head + 1) % a->max_streams;
	a->q_len--;
	return s;
}

static void
report(struct mdm_apns *a, struct slot *s, struct mdm_apns_result *r)
{
	r->attempts = s->attempts;
	if (a->done != NULL)
		a->done(a->arg, &s->p, r);
	free_slot(a, s);
}

/* Reports s without an HTTP answer: refused locally or given up on. */
static void
report_error(struct mdm_apns *a, struct slot *s, enum mdm_apns_outcome o,
    const char *msg)
{
	struct mdm_apns_result r;

	memset(&r, 0, sizeof(r));
	r.outcome = o;
	/* cut to the field: the reason of a failed push, for one log line */
	snprintf(r.error, sizeof(r.error), "%.*s", (int)sizeof(r.error) - 1,
	    msg);
	report(a, s, &r);
}

static void
set_fatal(struct mdm_apns *a, const char *msg)
{
	if (a->fatal)
		return;
	a->fatal = 1;
	snprintf(a->fatal_msg, sizeof(a->fatal_msg), "topic %s: %s", a->topic,
	    msg);
}

static void
report_answer(struct mdm_apns *a, struct slot *s)
{
	struct mdm_apns_result r;
	char msg[120];

	memset(&r, 0, sizeof(r));
	r.status = s->status;
	snprintf(r.apns_id, sizeof(r.apns_id), "%s", s->apns_id);
	if (s->reply.len > 0)
		mdm_apns_parse_reply(s->reply.data, s->reply.len, r.reason,
		    sizeof(r.reason), &r.timestamp);
	if (s->status != 410)
		r.timestamp = 0;
	r.outcome = mdm_apns_classify(r.status, r.reason);
	if (r.outcome == MDM_APNS_TOPIC_FATAL) {
		snprintf(msg, sizeof(msg), "apns refused the certificate or "
		    "topic: %d %s", r.status, r.reason[0] != '\0' ? r.reason :
		    "(no reason)");
		set_fatal(a, msg);
	}
	report(a, s, &r);
}

/*
 * s got no answer on a connection: send it again unless it has had its
 * attempts, or the topic is dead.
 */
static void
requeue(struct mdm_apns *a, struct slot *s, const char *why)
{
	s->status = 0;
	s->apns_id[0] = '\0';
	mdm_buf_reset(&s->reply);
	if (a->fatal)
		report_error(a, s, MDM_APNS_TOPIC_FATAL, a->fatal_msg);
	else if (s->attempts >= a->max_attempts)
		report_error(a, s, MDM_APNS_RETRY, why);
	else
		enqueue(a, s);
}

/* The first reason a connection went bad is the one worth reporting. */
static void
conn_fail(struct mdm_apns *a, const char *what)
{
	if (a->dead)
		return;
	a->dead = 1;
	if (a->conn_err[0] == '\0')
		snprintf(a->conn_err, sizeof(a->conn_err), "%s", what);
}

/* Records OpenSSL's reason for a failed TLS call and drains the queue. */
static void
conn_fail_ssl(struct mdm_apns *a, int ret, int sslerr, const char *what)
{
	unsigned long l = ERR_peek_error();
	char msg[300];
	const char *r;

	if (l != 0 && ERR_GET_LIB(l) == ERR_LIB_SSL) {
		switch (ERR_GET_REASON(l)) {
		case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
		case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
		case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
		case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
		case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		/* MicroMDM: APNs says so for an expired or revoked cert. */
		case SSL_R_TLSV1_ALERT_INTERNAL_ERROR:
			a->cert_rejected = 1;
			break;
		default:
			break;
		}
	}
	if (l != 0 && (r = ERR_reason_error_string(l)) != NULL)
		snprintf(msg, sizeof(msg), "%s: %s", what, r);
	else if (sslerr == SSL_ERROR_SYSCALL && ret < 0 && errno != 0)
		snprintf(msg, sizeof(msg), "%s: %s", what, strerror(errno));
	else
		snprintf(msg, sizeof(msg), "%s: connection closed by the "
		    "server", what);
	ERR_clear_error();
	conn_fail(a, msg);
}

static int
on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name,
    size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
    void *user)
{
	struct slot *s;
	size_t i;

	(void)flags;
	(void)user;
	if (f->hd.type != NGHTTP2_HEADERS ||
	    (s = nghttp2_session_get_stream_user_data(sess,
	    f->hd.stream_id)) == NULL)
		return 0;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen == 3) {
		s->status = 0;
		for (i = 0; i < 3; i++) {
			if (value[i] < '0' || value[i] > '9')
				return 0;
			s->status = s->status * 10 + (value[i] - '0');
		}
		/* 1xx is an interim answer; the real one follows. */
		if (s->status < 200)
			s->status = 0;
	} else if (namelen == 7 && memcmp(name, "apns-id", 7) == 0 &&
	    valuelen < sizeof(s->apns_id)) {
		for (i = 0; i < valuelen; i++)
			s->apns_id[i] = value[i] >= 0x20 && value[i] < 0x7f ?
			    (char)value[i] : '?';
		s->apns_id[valuelen] = '\0';
	}
	return 0;
}

static int
on_data(nghttp2_session *sess, uint8_t flags, int32_t stream_id,
    const uint8_t *data, size_t len, void *user)
{
	struct slot *s;

	(void)flags;
	(void)user;
	/* Past the cap the body is cut and its reason lost: not an error. */
	if ((s = nghttp2_session_get_stream_user_data(sess, stream_id)) != NULL &&
	    s->reply.len + len <= s->reply.cap)
		mdm_buf_append(&s->reply, data, len, NULL);
	return 0;
}

/*
 * APNs puts the reason for a GOAWAY in its debug data, in the same JSON as
 * an error body; a certificate reason there dooms the topic like a 403.
 */
static int
on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *user)
{
	struct mdm_apns *a = user;
	char reason[64];
	int64_t ts;

	(void)sess;
	if (f->hd.type != NGHTTP2_GOAWAY)
		return 0;
	a->goaway = 1;
	if (a->conn_err[0] != '\0')
		return 0;
	if (f->goaway.opaque_data_len > 0 &&
	    mdm_apns_parse_reply(f->goaway.opaque_data,
	    f->goaway.opaque_data_len, reason, sizeof(reason), &ts) == 0 &&
	    reason[0] != '\0') {
		snprintf(a->conn_err, sizeof(a->conn_err), "goaway: %s",
		    reason);
		if (mdm_apns_classify(0, reason) == MDM_APNS_TOPIC_FATAL)
			set_fatal(a, a->conn_err);
	} else
		snprintf(a->conn_err, sizeof(a->conn_err), "goaway: %s",
		    nghttp2_http2_strerror(f->goaway.error_code));
	return 0;
}

static int
on_stream_close(nghttp2_session *sess, int32_t stream_id, uint32_t code,
    void *user)
{
	struct mdm_apns *a = user;
	struct slot *s;
	char why[120];

	if ((s = nghttp2_session_get_stream_user_data(sess, stream_id)) == NULL ||
	    s->state != SLOT_SENT)
		return 0;
	nghttp2_session_set_stream_user_data(sess, stream_id, NULL);
	a->inflight--;
	if (s->status != 0) {
		a->answered = 1;
		a->conn_failures = 0;
		report_answer(a, s);
		return 0;
	}
	/* REFUSED_STREAM (GOAWAY, or over the limit): never processed. */
	snprintf(why, sizeof(why), "stream closed without an answer: %s",
	    nghttp2_http2_strerror(code));
	requeue(a, s, why);
	return 0;
}

static ssize_t
read_body(nghttp2_session *sess, int32_t stream_id, uint8_t *buf,
    size_t length, uint32_t *data_flags, nghttp2_data_source *src,
    void *user)
{
	struct slot *s = src->ptr;
	size_t n = s->body_len - s->body_off;

	(void)sess;
	(void)stream_id;
	(void)user;
	if (n > length)
		n = length;
	memcpy(buf, s->body + s->body_off, n);
	s->body_off += n;
	if (s->body_off == s->body_len)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static void
build_body(struct slot *s)
{
	const char *m;
	size_t n = 0;

	memcpy(s->body, "{\"mdm\":\"", 8);
	n = 8;
	for (m = s->p.magic; *m != '\0'; m++) {
		if (*m == '"' || *m == '\\')
			s->body[n++] = '\\';
		s->body[n++] = *m;
	}
	memcpy(s->body + n, "\"}", 2);
	s->body_len = n + 2;
}

static void
nv_set(nghttp2_nv *nv, size_t *n, const char *name, const char *value)
{
	nv[*n].name = (uint8_t *)name;
	nv[*n].namelen = strlen(name);
	nv[*n].value = (uint8_t *)value;
	nv[*n].valuelen = strlen(value);
	nv[*n].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME;
	(*n)++;
}

static void
submit(struct mdm_apns *a, struct slot *s)
{
	char path[MDM_APNS_TOKEN_MAX + 16], prio[8], exp[24], len[16];
	nghttp2_data_provider prd;
	nghttp2_nv nv[11];
	int32_t sid;
	size_t n = 0;

	snprintf(path, sizeof(path), "/3/device/%s", s->p.token);
	snprintf(prio, sizeof(prio), "%d", s->p.priority);
	snprintf(exp, sizeof(exp), "%lld", (long long)s->p.expiration);
	build_body(s);
	snprintf(len, sizeof(len), "%zu", s->body_len);
	nv_set(nv, &n, ":method", "POST");
	nv_set(nv, &n, ":scheme", "https");
	nv_set(nv, &n, ":path", path);
	nv_set(nv, &n, ":authority", a->host);
	nv_set(nv, &n, "apns-topic", a->topic);
	nv_set(nv, &n, "apns-push-type", "mdm");
	nv_set(nv, &n, "apns-priority", prio);
	nv_set(nv, &n, "apns-expiration", exp);
	nv_set(nv, &n, "content-type", "application/json");
	nv_set(nv, &n, "content-length", len);
	if (s->p.id[0] != '\0')
		nv_set(nv, &n, "apns-id", s->p.id);
	s->body_off = 0;
	prd.source.ptr = s;
	prd.read_callback = read_body;
	s->attempts++;
	s->status = 0;
	s->apns_id[0] = '\0';
	mdm_buf_reset(&s->reply);
	sid = nghttp2_submit_request(a->sess, NULL, nv, n, &prd, s);
	if (sid < 0) {
		/* Out of stream ids: finish this connection, then a new one. */
		s->attempts--;
		a->goaway = 1;
		enqueue(a, s);
		return;
	}
	s->state = SLOT_SENT;
	/* The silence clock starts with the first stream in flight. */
	if (a->inflight++ == 0)
		a->last_io = mdm_monotonic_ms();
}

/* A push from next() in a free slot, or NULL (none, or refused). */
static struct slot *
pull(struct mdm_apns *a)
{
	struct mdm_err e;
	struct slot *s;

	if (a->eof || a->fatal || a->n_free == 0)
		return NULL;
	s = &a->slots[a->free_idx[--a->n_free]];
	memset(&s->p, 0, sizeof(s->p));
	s->attempts = 0;
	mdm_buf_init(&s->reply, MDM_APNS_REPLY_MAX);
	if (a->next(a->arg, &s->p) != 1) {
		a->eof = 1;
		free_slot(a, s);
		return NULL;
	}
	/* A caller who filled the arrays to the brim gets a refusal, not UB. */
	s->p.token[sizeof(s->p.token) - 1] = '\0';
	s->p.magic[sizeof(s->p.magic) - 1] = '\0';
	if (mdm_apns_push_check(&s->p, &e) == -1) {
		report_error(a, s, MDM_APNS_REFUSED, e.msg);
		return NULL;
	}
	if (s->p.priority == 0)
		s->p.priority = 10;
	s->state = SLOT_QUEUED;
	return s;
}

static unsigned
stream_limit(struct mdm_apns *a)
{
	uint32_t r;

	/* APNs raises its limit only after the first request. */
	if (!a->answered)
		return 1;
	r = nghttp2_session_get_remote_settings(a->sess,
	    NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	if (r == 0)
		r = 1;
	return r < a->max_streams ? r : a->max_streams;
}

static void
fill(struct mdm_apns *a)
{
	struct slot *s;

	while (!a->goaway && !a->dead && a->inflight < stream_limit(a)) {
		if (a->q_len > 0)
			s = dequeue(a);
		else if (a->eof || a->fatal || a->n_free == 0)
			break;
		else if ((s = pull(a)) == NULL)
			continue;
		submit(a, s);
	}
}

/* Hands nghttp2's frames to TLS until both are drained or TLS blocks. */
static void
flush(struct mdm_apns *a)
{
	ssize_t n;
	size_t take;
	int r, err;

	a->want_write = 0;
	while (!a->dead) {
		while (a->wlen < sizeof(a->wbuf)) {
			if (a->pend_len == 0) {
				n = nghttp2_session_mem_send(a->sess, &a->pend);
				if (n < 0) {
					conn_fail(a, nghttp2_strerror((int)n));
					return;
				}
				if (n == 0)
					break;
				a->pend_len = (size_t)n;
			}
			take = sizeof(a->wbuf) - a->wlen;
			if (take > a->pend_len)
				take = a->pend_len;
			memcpy(a->wbuf + a->wlen, a->pend, take);
			a->wlen += take;
			a->pend += take;
			a->pend_len -= take;
		}
		if (a->wlen == 0)
			return;
		ERR_clear_error();
		errno = 0;
		r = SSL_write(a->ssl, a->wbuf, (int)a->wlen);
		if (r <= 0) {
			err = SSL_get_error(a->ssl, r);
			if (err == SSL_ERROR_WANT_WRITE ||
			    err == SSL_ERROR_WANT_READ) {
				a->want_write = 1;
				return;
			}
			conn_fail_ssl(a, r, err, "tls write");
			return;
		}
		memmove(a->wbuf, a->wbuf + r, a->wlen - (size_t)r);
		a->wlen -= (size_t)r;
	}
}

static void
pump_read(struct mdm_apns *a)
{
	unsigned char buf[RBUF_SIZE];
	ssize_t rv;
	int r, err;

	while (!a->dead) {
		ERR_clear_error();
		errno = 0;
		r = SSL_read(a->ssl, buf, sizeof(buf));
		if (r <= 0) {
			err = SSL_get_error(a->ssl, r);
			if (err == SSL_ERROR_WANT_READ ||
			    err == SSL_ERROR_WANT_WRITE)
				return;
			if (err == SSL_ERROR_ZERO_RETURN)
				conn_fail(a, "the server closed the connection");
			else
				conn_fail_ssl(a, r, err, "tls read");
			return;
		}
		a->last_io = mdm_monotonic_ms();
		rv = nghttp2_session_mem_recv(a->sess, buf, (size_t)r);
		if (rv < 0) {
			conn_fail(a, nghttp2_strerror((int)rv));
			return;
		}
	}
}

static void
conn_close(struct mdm_apns *a)
{
	unsigned i;
	char why[400];

	if (a->sess == NULL)
		return;
	if (!a->answered)
		a->conn_failures++;
	if (a->cert_rejected)
		set_fatal(a, a->conn_err);
	snprintf(why, sizeof(why), "%s", a->conn_err[0] != '\0' ?
	    a->conn_err : "connection closed");
	nghttp2_session_del(a->sess);
	a->sess = NULL;
	SSL_free(a->ssl);
	a->ssl = NULL;
	if (a->fd != -1)
		close(a->fd);
	a->fd = -1;
	a->wlen = 0;
	a->pend_len = 0;
	a->inflight = 0;
	for (i = 0; i < a->max_streams; i++)
		if (a->slots[i].state == SLOT_SENT)
			requeue(a, &a->slots[i], why);
}

/* Waits for fd until deadline; 0 ready, -1 timed out or failed. */
static int
wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p;
	long long left;
	int r;

	for (;;) {
		left = deadline - mdm_monotonic_ms();
		if (left <= 0)
			return -1;
		p.fd = fd;
		p.events = events;
		p.revents = 0;
		r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static int
tcp_connect(struct mdm_apns *a, long long deadline)
{
	struct addrinfo hints, *res = NULL, *ai;
	socklen_t sl;
	int fd = -1, r, soerr = 0, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((r = getaddrinfo(a->host, a->port, &hints, &res)) != 0) {
		snprintf(a->conn_err, sizeof(a->conn_err), "%s: %s", a->host,
		    gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1) {
			soerr = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		soerr = errno;
		if (soerr == EINPROGRESS) {
			sl = sizeof(soerr);
			if (wait_fd(fd, POLLOUT, deadline) == -1)
				soerr = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
			    &sl) == -1)
				soerr = errno;
			if (soerr == 0)
				break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		snprintf(a->conn_err, sizeof(a->conn_err), "connect to %s "
		    "port %s: %s", a->host, a->port, strerror(soerr));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int
conn_open(struct mdm_apns *a)
{
	static const nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
	};
	long long deadline = mdm_monotonic_ms() + a->timeout_ms;
	const unsigned char *alpn = NULL;
	unsigned alpnlen = 0;
	BIO *bio;
	int r, err;

	a->answered = a->goaway = a->dead = a->cert_rejected = 0;
	a->conn_err[0] = '\0';
	a->wlen = a->pend_len = 0;
	if ((a->fd = tcp_connect(a, deadline)) == -1)
		goto fail;
	ERR_clear_error();
	if ((a->ssl = SSL_new(a->ctx)) == NULL ||
	    (bio = BIO_new(a->bio_meth)) == NULL) {
		snprintf(a->conn_err, sizeof(a->conn_err), "out of memory");
		goto fail;
	}
	BIO_set_fd(bio, a->fd, BIO_NOCLOSE);
	SSL_set_bio(a->ssl, bio, bio);
	if (a->host_is_ip)
		r = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(a->ssl),
		    a->host);
	else
		r = SSL_set_tlsext_host_name(a->ssl, a->host) == 1 &&
		    SSL_set1_host(a->ssl, a->host) == 1;
	if (r != 1) {
		snprintf(a->conn_err, sizeof(a->conn_err), "bad host name");
		goto fail;
	}
	for (;;) {
		errno = 0;
		r = SSL_connect(a->ssl);
		if (r == 1)
			break;
		err = SSL_get_error(a->ssl, r);
		if ((err != SSL_ERROR_WANT_READ &&
		    err != SSL_ERROR_WANT_WRITE)) {
			conn_fail_ssl(a, r, err, "tls handshake");
			goto fail;
		}
		if (wait_fd(a->fd, err == SSL_ERROR_WANT_READ ? POLLIN :
		    POLLOUT, deadline) == -1) {
			snprintf(a->conn_err, sizeof(a->conn_err), "tls "
			    "handshake with %s: timed out", a->host);
			goto fail;
		}
	}
	SSL_get0_alpn_selected(a->ssl, &alpn, &alpnlen);
	if (alpnlen != 2 || memcmp(alpn, "h2", 2) != 0) {
		snprintf(a->conn_err, sizeof(a->conn_err), "%s does not speak "
		    "http/2 (alpn)", a->host);
		goto fail;
	}
	if (nghttp2_session_client_new(&a->sess, a->cbs, a) != 0) {
		a->sess = NULL;
		snprintf(a->conn_err, sizeof(a->conn_err), "out of memory");
		goto fail;
	}
	nghttp2_submit_settings(a->sess, NGHTTP2_FLAG_NONE, iv,
	    MDM_ARRAY_LEN(iv));
	a->last_io = mdm_monotonic_ms();
	return 0;
fail:
	SSL_free(a->ssl);
	a->ssl = NULL;
	if (a->fd != -1)
		close(a->fd);
	a->fd = -1;
	a->dead = 0;
	ERR_clear_error();
	return -1;
}

static void
fail_queued(struct mdm_apns *a, enum mdm_apns_outcome o, const char *msg)
{
	while (a->q_len > 0)
		report_error(a, dequeue(a), o, msg);
}

static void
backoff(struct mdm_apns *a)
{
	long long ms = a->backoff_ms;
	int i;

	for (i = 1; i < a->conn_failures && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	/* Jitter so topics that failed together do not retry together. */
	a->rng = a->rng * 1103515245u + 12345u;
	ms += (long long)((a->rng >> 8) % (unsigned)(ms / 2 + 1));
	poll(NULL, 0, (int)ms);
}

/* One round on a live connection: send what fits, wait, read. */
static void
step(struct mdm_apns *a)
{
	struct pollfd p;
	long long left;
	int r;

	flush(a);
	if (a->dead)
		return;
	p.fd = a->fd;
	p.events = POLLIN | (a->want_write ? POLLOUT : 0);
	p.revents = 0;
	left = a->last_io + a->timeout_ms - mdm_monotonic_ms();
	if (left <= 0) {
		snprintf(a->conn_err, sizeof(a->conn_err), "no answer from %s "
		    "in %d ms", a->host, a->timeout_ms);
		a->dead = 1;
		return;
	}
	r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
	if (r < 0 && errno != EINTR) {
		conn_fail(a, strerror(errno));
		return;
	}
	if (r > 0)
		pump_read(a);
	if (!a->dead && !nghttp2_session_want_read(a->sess) &&
	    !nghttp2_session_want_write(a->sess) && a->wlen == 0)
		conn_fail(a, "the server ended the session");
}

int
mdm_apns_run(struct mdm_apns *a, mdm_apns_next_fn next,
    mdm_apns_done_fn done, void *arg, struct mdm_err *e)
{
	struct slot *s;
	int unreachable = 0;

	if (a->fatal)
		return mdm_err_set(e, MDM_E_CONFIG, "%s", a->fatal_msg);
	a->next = next;
	a->done = done;
	a->arg = arg;
	a->eof = 0;
	for (;;) {
		if (a->fatal && a->q_len > 0)
			fail_queued(a, MDM_APNS_TOPIC_FATAL, a->fatal_msg);
		if (a->sess == NULL) {
			/* Connect only once there is something to send. */
			if (a->q_len == 0) {
				if (a->eof || a->fatal)
					break;
				if ((s = pull(a)) != NULL)
					enqueue(a, s);
				continue;
			}
			if (a->conn_failures >= a->max_attempts) {
				fail_queued(a, MDM_APNS_RETRY, a->conn_err);
				unreachable = 1;
				break;
			}
			if (a->conn_failures > 0)
				backoff(a);
			if (conn_open(a) == -1) {
				a->conn_failures++;
				if (a->cert_rejected)
					set_fatal(a, a->conn_err);
				continue;
			}
		}
		fill(a);
		if (a->dead || (a->goaway && a->inflight == 0)) {
			conn_close(a);
			continue;
		}
		if (a->inflight == 0 && a->q_len == 0 && (a->eof || a->fatal))
			break;
		step(a);
	}
	/* Leave an idle connection to the next run, unless it is doomed. */
	if (a->sess != NULL && (a->goaway || a->dead))
		conn_close(a);
	a->next = NULL;
	a->done = NULL;
	a->arg = NULL;
	if (a->fatal)
		return mdm_err_set(e, MDM_E_CONFIG, "%s", a->fatal_msg);
	if (unreachable) {
		a->conn_failures = 0;
		return mdm_err_set(e, MDM_E_UNAVAILABLE, "%s", a->conn_err);
	}
	return 0;
}

static int
host_is_ip(const char *host)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1;
}

static int
make_ctx(struct mdm_apns *a, const struct mdm_apns_config *cfg,
    struct mdm_err *e)
{
	static const unsigned char alpn[] = { 2, 'h', '2' };
	int i;

	ERR_clear_error();
	if ((a->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "SSL_CTX_new");
	SSL_CTX_set_min_proto_version(a->ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(a->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_set_alpn_protos(a->ctx, alpn, sizeof(alpn)) != 0)
		return mdm_err_set_ssl(e, MDM_E_SOFTWARE, "alpn");
	if (SSL_CTX_use_certificate(a->ctx, cfg->cert) != 1 ||
	    SSL_CTX_use_PrivateKey(a->ctx, cfg->key) != 1 ||
	    SSL_CTX_check_private_key(a->ctx) != 1)
		return mdm_err_set_ssl(e, MDM_E_CONFIG, "push certificate "
		    "for %s", a->topic);
	for (i = 0; cfg->chain != NULL && i < sk_X509_num(cfg->chain); i++)
		if (SSL_CTX_add1_chain_cert(a->ctx,
		    sk_X509_value(cfg->chain, i)) != 1)
			return mdm_err_set_ssl(e, MDM_E_CONFIG, "push "
			    "certificate chain");
	SSL_CTX_set_verify(a->ctx, SSL_VERIFY_PEER, NULL);
	if (cfg->ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(a->ctx, cfg->ca_file,
		    NULL) != 1)
			return mdm_err_set_ssl(e, MDM_E_CONFIG, "%s",
			    cfg->ca_file);
	} else if (SSL_CTX_set_default_verify_paths(a->ctx) != 1)
		return mdm_err_set_ssl(e, MDM_E_CONFIG, "system trust store");
	return 0;
}

int
mdm_apns_new(const struct mdm_apns_config *cfg, struct mdm_apns **out,
    struct mdm_err *e)
{
	struct mdm_apns *a = NULL;
	const char *host = cfg->host != NULL ? cfg->host : MDM_APNS_HOST;
	const char *port = cfg->port != NULL ? cfg->port : "443";
	unsigned i;
	int rc = -1;

	*out = NULL;
	if (cfg->topic == NULL || *cfg->topic == '\0' ||
	    strlen(cfg->topic) > MDM_APNS_TOPIC_MAX ||
	    !printable(cfg->topic, 0)) {
		mdm_err_set(e, MDM_E_USAGE, "push topic must be 1 to %d "
		    "printable characters", MDM_APNS_TOPIC_MAX);
		goto out;
	}
	if (*host == '\0' || strlen(host) >= sizeof(a->host) ||
	    !printable(host, 0) || *port == '\0' ||
	    strlen(port) >= sizeof(a->port)) {
		mdm_err_set(e, MDM_E_USAGE, "bad apns host or port");
		goto out;
	}
	if (cfg->cert == NULL || cfg->key == NULL) {
		mdm_err_set(e, MDM_E_USAGE, "push certificate and key needed");
		goto out;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	a->fd = -1;
	snprintf(a->host, sizeof(a->host), "%s", host);
	snprintf(a->port, sizeof(a->port), "%s", port);
	snprintf(a->topic, sizeof(a->topic), "%s", cfg->topic);
	a->host_is_ip = host_is_ip(a->host);
	a->max_streams = cfg->max_streams > 0 ? cfg->max_streams : 1000;
	if (a->max_streams > 100000)
		a->max_streams = 100000;
	a->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 3;
	a->backoff_ms = cfg->backoff_ms > 0 ? cfg->backoff_ms : 500;
	a->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 15000;
	a->rng = (unsigned)mdm_monotonic_ms() ^ (unsigned)getpid();
	a->slots = calloc(a->max_streams, sizeof(*a->slots));
	a->free_idx = calloc(a->max_streams, sizeof(*a->free_idx));
	a->queue = calloc(a->max_streams, sizeof(*a->queue));
	if (a->slots == NULL || a->free_idx == NULL || a->queue == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	/* Lowest index on top, so a small batch touches few pages. */
	for (i = 0; i < a->max_streams; i++) {
		a->free_idx[i] = a->max_streams - 1 - i;
		mdm_buf_init(&a->slots[i].reply, MDM_APNS_REPLY_MAX);
	}
	a->n_free = a->max_streams;
	if (make_ctx(a, cfg, e) == -1)
		goto out;
	if ((a->bio_meth = bio_method()) == NULL ||
	    nghttp2_session_callbacks_new(&a->cbs) != 0) {
		a->cbs = NULL;
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto out;
	}
	nghttp2_session_callbacks_set_on_header_callback(a->cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(a->cbs,
	    on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(a->cbs,
	    on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(a->cbs,
	    on_stream_close);
	*out = a;
	a = NULL;
	rc = 0;
out:
	mdm_apns_free(a);
	return rc;
}

void
mdm_apns_free(struct mdm_apns *a)
{
	unsigned i;

	if (a == NULL)
		return;
	if (a->sess != NULL) {
		nghttp2_session_del(a->sess);
		SSL_free(a->ssl);
	}
	if (a->fd != -1)
		close(a->fd);
	for (i = 0; a->slots != NULL && i < a->max_streams; i++)
		mdm_buf_release(&a->slots[i].reply);
	free(a->slots);
	free(a->free_idx);
	free(a->queue);
	nghttp2_session_callbacks_del(a->cbs);
	BIO_meth_free(a->bio_meth);
	SSL_CTX_free(a->ctx);
	free(a);
}
