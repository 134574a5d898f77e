/*
 * apns_mock: a stand-in for api.push.apple.com that the APNs tests push
 * to.  HTTP/2 over TLS (ALPN h2) on 127.0.0.1, a client certificate
 * required (signed by --client-ca, or any with --any-client), one thread
 * and poll().  It answers each POST /3/device/TOKEN by the first rule
 * whose prefix the token starts with (--rules FILE lines "prefix status
 * reason" come before the built-in ones below), else 200 with an apns-id.
 *
 *   apns_mock --cert F --key F (--client-ca F | --any-client)
 *       --port-file F --log F [--stats F] [--rules F] [--slow-start]
 *       [--goaway-after N] [--close-after N] [--drop]
 *
 * --log gets one line per request it processed: token, apns-topic,
 * apns-push-type, apns-priority, apns-expiration, apns-id, body, tab
 * separated.  --stats is written on SIGTERM: connections, requests,
 * streams open at once (max_streams) and the same before the first
 * answer on a connection (max_streams_first), and the last client
 * certificate subject.  --slow-start advertises MAX_CONCURRENT_STREAMS 1
 * and raises it to 1000 after the first answer, as APNs does.
 * --goaway-after N sends GOAWAY on the connection that serves request N,
 * naming it the last stream, so the streams after it go unprocessed;
 * --close-after N drops that connection instead (no GOAWAY, no TLS
 * close).  Both fire once.  --drop drops every connection at its first
 * request, unprocessed: a server that is never any use.  Built only with
 * the tests; never installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "x509.h"

#define MAX_CONNS	64
#define MAX_RULES	64

struct rule {
	char prefix[64];
	int status;
	char reason[64];
};

struct stream {
	struct stream *prev, *next;	/* the connection's open streams */
	char token[600];
	char topic[300];
	char type[32];
	char prio[16];
	char exp[32];
	char id[64];
	char body[1024];
	size_t blen;
	char reply[256];
	size_t rlen, roff;
};

struct conn {
	int fd;
	SSL *ssl;
	nghttp2_session *sess;
	int handshaken;
	int closing;		/* --close-after fired: drain, then close */
	int shut;
	int goaway;
	int32_t last_sid;
	unsigned open;
	int answered;
	const uint8_t *pend;
	size_t pend_len;
	/* nghttp2_session_del does not close streams: we free them. */
	struct stream *streams;
};

static struct rule rules[MAX_RULES];
static size_t nrules;
static const struct rule builtin[] = {
	{ "410e", 410, "ExpiredToken" },
	{ "410", 410, "Unregistered" },
	{ "400b", 400, "BadDeviceToken" },
	{ "400d", 400, "DeviceTokenNotForTopic" },
	{ "400c", 400, "BadTopic" },
	{ "400a", 400, "TopicDisallowed" },
	{ "4000", 400, "BadExpirationDate" },
	{ "403e", 403, "BadCertificateEnvironment" },
	{ "403f", 403, "Forbidden" },
	{ "403", 403, "BadCertificate" },
	{ "413", 413, "PayloadTooLarge" },
	{ "429", 429, "TooManyRequests" },
	{ "500", 500, "InternalServerError" },
	{ "503", 503, "ServiceUnavailable" },
};

static struct conn conns[MAX_CONNS];
static FILE *reqlog;
static const char *stats_path;
static int slow_start, drop_all;
static unsigned long goaway_after, close_after, served, nconns, idseq;
static unsigned max_streams, max_streams_first;
static char client_subject[512] = "-";
static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static const struct rule *
match(const char *token)
{
	size_t i;

	for (i = 0; i < nrules; i++)
		if (strncmp(token, rules[i].prefix, strlen(rules[i].prefix)) == 0)
			return &rules[i];
	for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		if (strncmp(token, builtin[i].prefix,
		    strlen(builtin[i].prefix)) == 0)
			return &builtin[i];
	return NULL;
}

static int
load_rules(const char *path)
{
	char line[256];
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (nrules < MAX_RULES && fgets(line, sizeof(line), f) != NULL) {
		struct rule *r = &rules[nrules];

		if (line[0] == '#' || sscanf(line, "%63s %d %63s", r->prefix,
		    &r->status, r->reason) < 2)
			continue;
		nrules++;
	}
	fclose(f);
	return 0;
}

static void
copy(char *dst, size_t dstlen, const uint8_t *v, size_t len)
{
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

static int
on_begin_headers(nghttp2_session *sess, const nghttp2_frame *f, void *user)
{
	struct conn *c = user;
	struct stream *st;

	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(sess, f->hd.stream_id, st);
	st->next = c->streams;
	if (c->streams != NULL)
		c->streams->prev = st;
	c->streams = st;
	c->open++;
	if (c->open > max_streams)
		max_streams = c->open;
	if (!c->answered && c->open > max_streams_first)
		max_streams_first = c->open;
	return 0;
}

static int
on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name,
    size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
    void *user)
{
	struct stream *st;

	(void)flags;
	(void)user;
	if ((st = nghttp2_session_get_stream_user_data(sess,
	    f->hd.stream_id)) == NULL)
		return 0;
#define IS(n) (namelen == sizeof(n) - 1 && memcmp(name, n, namelen) == 0)
	if (IS(":path")) {
		if (valuelen > 11 && memcmp(value, "/3/device/", 10) == 0)
			copy(st->token, sizeof(st->token), value + 10,
			    valuelen - 10);
	} else if (IS("apns-topic"))
		copy(st->topic, sizeof(st->topic), value, valuelen);
	else if (IS("apns-push-type"))
		copy(st->type, sizeof(st->type), value, valuelen);
	else if (IS("apns-priority"))
		copy(st->prio, sizeof(st->prio), value, valuelen);
	else if (IS("apns-expiration"))
		copy(st->exp, sizeof(st->exp), value, valuelen);
	else if (IS("apns-id"))
		copy(st->id, sizeof(st->id), value, valuelen);
#undef IS
	return 0;
}

static int
on_data(nghttp2_session *sess, uint8_t flags, int32_t sid, const uint8_t *d,
    size_t len, void *user)
{
	struct stream *st;

	(void)flags;
	(void)user;
	if ((st = nghttp2_session_get_stream_user_data(sess, sid)) == NULL)
		return 0;
	if (st->blen + len < sizeof(st->body)) {
		memcpy(st->body + st->blen, d, len);
		st->blen += len;
	}
	return 0;
}

static ssize_t
read_reply(nghttp2_session *sess, int32_t sid, uint8_t *buf, size_t length,
    uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct stream *st = src->ptr;
	size_t n = st->rlen - st->roff;

	(void)sess;
	(void)sid;
	(void)user;
	if (n > length)
		n = length;
	memcpy(buf, st->reply + st->roff, n);
	st->roff += n;
	if (st->roff == st->rlen)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static void
process(struct conn *c, int32_t sid, struct stream *st)
{
	const struct rule *r;
	nghttp2_data_provider prd;
	nghttp2_settings_entry iv;
	char status[8], id[64];
	struct timespec ts;
	nghttp2_nv nv[3];
	int code = 200;

	if (drop_all)
		c->closing = 1;
	if (c->closing || (c->goaway && sid > c->last_sid))
		return;
	st->body[st->blen] = '\0';
	fprintf(reqlog, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st->token, st->topic,
	    st->type, st->prio, st->exp, st->id[0] != '\0' ? st->id : "-",
	    st->body);
	fflush(reqlog);
	served++;
	if (st->id[0] != '\0')
		snprintf(id, sizeof(id), "%s", st->id);
	else
		snprintf(id, sizeof(id), "%08lx-0000-4000-8000-000000000000",
		    ++idseq);
	if ((r = match(st->token)) != NULL) {
		code = r->status;
		clock_gettime(CLOCK_REALTIME, &ts);
		if (code == 410)
			st->rlen = (size_t)snprintf(st->reply, sizeof(st->reply),
			    "{\"reason\":\"%s\",\"timestamp\":%lld}", r->reason,
			    (long long)ts.tv_sec * 1000);
		else
			st->rlen = (size_t)snprintf(st->reply, sizeof(st->reply),
			    "{\"reason\":\"%s\"}", r->reason);
	}
	snprintf(status, sizeof(status), "%d", code);
	nv[0] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)status, 7,
	    strlen(status), NGHTTP2_NV_FLAG_NONE };
	nv[1] = (nghttp2_nv){ (uint8_t *)"apns-id", (uint8_t *)id, 7,
	    strlen(id), NGHTTP2_NV_FLAG_NONE };
	nv[2] = (nghttp2_nv){ (uint8_t *)"content-type",
	    (uint8_t *)"application/json", 12, 16, NGHTTP2_NV_FLAG_NONE };
	prd.source.ptr = st;
	prd.read_callback = read_reply;
	nghttp2_submit_response(c->sess, sid, nv, st->rlen > 0 ? 3 : 2,
	    st->rlen > 0 ? &prd : NULL);
	if (!c->answered && slow_start) {
		iv.settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
		iv.value = 1000;
		nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, &iv, 1);
	}
	c->answered = 1;
	if (goaway_after > 0 && served == goaway_after) {
		c->goaway = 1;
		c->last_sid = sid;
		nghttp2_submit_goaway(c->sess, NGHTTP2_FLAG_NONE, sid,
		    NGHTTP2_NO_ERROR, NULL, 0);
	}
	if (close_after > 0 && served == close_after)
		c->closing = 1;
}

static int
on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *user)
{
	struct stream *st;

	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
	    (st = nghttp2_session_get_stream_user_data(sess,
	    f->hd.stream_id)) == NULL)
		return 0;
	process(user, f->hd.stream_id, st);
	return 0;
}

static int
on_stream_close(nghttp2_session *sess, int32_t sid, uint32_t code, void *user)
{
	struct conn *c = user;
	struct stream *st;

	(void)code;
	if ((st = nghttp2_session_get_stream_user_data(sess, sid)) != NULL) {
		c->open--;
		nghttp2_session_set_stream_user_data(sess, sid, NULL);
		if (st->prev != NULL)
			st->prev->next = st->next;
		else
			c->streams = st->next;
		if (st->next != NULL)
			st->next->prev = st->prev;
		free(st);
	}
	return 0;
}

static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	if (nghttp2_select_next_protocol((unsigned char **)out, outlen, in,
	    inlen) != 1)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

static int
accept_any(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1;
}

static void
conn_free(struct conn *c)
{
	struct stream *st;

	while ((st = c->streams) != NULL) {
		c->streams = st->next;
		free(st);
	}
	if (c->sess != NULL)
		nghttp2_session_del(c->sess);
	SSL_free(c->ssl);
	close(c->fd);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static int
start_session(struct conn *c, nghttp2_session_callbacks *cbs)
{
	nghttp2_settings_entry iv;
	X509 *peer;

	if ((peer = SSL_get0_peer_certificate(c->ssl)) != NULL)
		mdm_x509_name_str(X509_get_subject_name(peer), client_subject,
		    sizeof(client_subject), NULL, NULL);
	fprintf(stderr, "apns_mock: connection %lu from %s\n", nconns,
	    client_subject);
	if (nghttp2_session_server_new(&c->sess, cbs, c) != 0)
		return -1;
	iv.settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
	iv.value = slow_start ? 1 : 1000;
	return nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, &iv, 1);
}

/* Returns -1 when the connection is done with. */
static int
conn_io(struct conn *c, nghttp2_session_callbacks *cbs)
{
	unsigned char buf[16384];
	ssize_t n;
	int r;

	if (!c->handshaken) {
		ERR_clear_error();
		r = SSL_accept(c->ssl);
		if (r != 1) {
			r = SSL_get_error(c->ssl, r);
			if (r == SSL_ERROR_WANT_READ ||
			    r == SSL_ERROR_WANT_WRITE)
				return 0;
			fprintf(stderr, "apns_mock: handshake failed: %s\n",
			    ERR_reason_error_string(ERR_peek_error()));
			/* Let the client read our alert before we go. */
			shutdown(c->fd, SHUT_WR);
			c->handshaken = 1;
			c->shut = 1;
			return 0;
		}
		c->handshaken = 1;
		if (start_session(c, cbs) != 0)
			return -1;
	}
	if (c->shut) {
		/* Wait for the client to notice, so no RST eats our answers. */
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return -1;
		return 0;
	}
	for (;;) {
		ERR_clear_error();
		r = SSL_read(c->ssl, buf, sizeof(buf));
		if (r <= 0) {
			r = SSL_get_error(c->ssl, r);
			if (r == SSL_ERROR_WANT_READ ||
			    r == SSL_ERROR_WANT_WRITE)
				break;
			return -1;
		}
		if (nghttp2_session_mem_recv(c->sess, buf, (size_t)r) < 0)
			return -1;
	}
	for (;;) {
		if (c->pend_len == 0) {
			n = nghttp2_session_mem_send(c->sess, &c->pend);
			if (n < 0)
				return -1;
			if (n == 0)
				break;
			c->pend_len = (size_t)n;
		}
		ERR_clear_error();
		r = SSL_write(c->ssl, c->pend, (int)c->pend_len);
		if (r <= 0) {
			r = SSL_get_error(c->ssl, r);
			if (r == SSL_ERROR_WANT_READ ||
			    r == SSL_ERROR_WANT_WRITE)
				return 0;
			return -1;
		}
		c->pend += r;
		c->pend_len -= (size_t)r;
	}
	if (c->closing && !c->shut) {
		shutdown(c->fd, SHUT_WR);
		c->shut = 1;
	}
	if (!nghttp2_session_want_read(c->sess) &&
	    !nghttp2_session_want_write(c->sess))
		return -1;
	return 0;
}

static void
write_stats(void)
{
	FILE *f;

	if (stats_path == NULL || (f = fopen(stats_path, "w")) == NULL)
		return;
	fprintf(f, "connections %lu\nrequests %lu\nmax_streams %u\n"
	    "max_streams_first %u\nclient %s\n", nconns, served, max_streams,
	    max_streams_first, client_subject);
	fclose(f);
}

static int
listen_local(const char *port_file)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	FILE *f;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) == -1)
		return -1;
	/* Written whole, then renamed: a test polling it never sees half. */
	{
		char tmp[4096];

		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		if ((f = fopen(tmp, "w")) == NULL)
			return -1;
		fprintf(f, "%u\n", ntohs(sin.sin_port));
		if (fclose(f) != 0 || rename(tmp, port_file) == -1)
			return -1;
	}
	return fd;
}

static void
usage(void)
{
	fprintf(stderr, "usage: apns_mock --cert file --key file "
	    "(--client-ca file | --any-client) --port-file file --log file\n"
	    "       [--stats file] [--rules file] [--slow-start] "
	    "[--goaway-after n] [--close-after n] [--drop]\n");
	exit(64);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "client-ca", required_argument, NULL, 'a' },
		{ "any-client", no_argument, NULL, 'A' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "log", required_argument, NULL, 'l' },
		{ "stats", required_argument, NULL, 's' },
		{ "rules", required_argument, NULL, 'r' },
		{ "slow-start", no_argument, NULL, 'S' },
		{ "goaway-after", required_argument, NULL, 'g' },
		{ "close-after", required_argument, NULL, 'x' },
		{ "drop", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cert = NULL, *key = NULL, *ca = NULL, *port_file = NULL;
	const char *log_path = NULL;
	struct pollfd pfd[MAX_CONNS + 1];
	nghttp2_session_callbacks *cbs;
	struct sigaction sa;
	SSL_CTX *ctx;
	int any = 0, ch, lfd, fd, i, n;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'a': ca = optarg; break;
		case 'A': any = 1; break;
		case 'p': port_file = optarg; break;
		case 'l': log_path = optarg; break;
		case 's': stats_path = optarg; break;
		case 'r':
			if (load_rules(optarg) == -1) {
				perror(optarg);
				return 66;
			}
			break;
		case 'S': slow_start = 1; break;
		case 'g': goaway_after = strtoul(optarg, NULL, 10); break;
		case 'x': close_after = strtoul(optarg, NULL, 10); break;
		case 'D': drop_all = 1; break;
		default: usage();
		}
	}
	if (cert == NULL || key == NULL || (ca == NULL && !any) ||
	    port_file == NULL || log_path == NULL || optind != argc)
		usage();
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((reqlog = fopen(log_path, "a")) == NULL) {
		perror(log_path);
		return 73;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    (ca != NULL && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)) {
		fprintf(stderr, "apns_mock: tls setup: %s\n",
		    ERR_reason_error_string(ERR_peek_error()));
		return 78;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, any ? accept_any : NULL);
	nghttp2_session_callbacks_new(&cbs);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
	    on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs,
	    on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
	    on_stream_close);
	for (i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;
	if ((lfd = listen_local(port_file)) == -1) {
		perror("apns_mock: listen");
		return 71;
	}
	while (!stop) {
		pfd[0].fd = lfd;
		pfd[0].events = POLLIN;
		for (i = 0; i < MAX_CONNS; i++) {
			pfd[i + 1].fd = conns[i].fd;
			pfd[i + 1].events = POLLIN |
			    (conns[i].pend_len > 0 ? POLLOUT : 0);
			pfd[i + 1].revents = 0;
		}
		n = poll(pfd, MAX_CONNS + 1, 1000);
		if (n <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			while ((fd = accept(lfd, NULL, NULL)) != -1) {
				fcntl(fd, F_SETFL, O_NONBLOCK);
				for (i = 0; i < MAX_CONNS && conns[i].fd != -1;
				    i++)
					;
				if (i == MAX_CONNS ||
				    (conns[i].ssl = SSL_new(ctx)) == NULL) {
					close(fd);
					continue;
				}
				conns[i].fd = fd;
				SSL_set_fd(conns[i].ssl, fd);
				nconns++;
				if (conn_io(&conns[i], cbs) == -1)
					conn_free(&conns[i]);
			}
		}
		for (i = 0; i < MAX_CONNS; i++)
			if (conns[i].fd != -1 && pfd[i + 1].fd == conns[i].fd &&
			    pfd[i + 1].revents != 0 &&
			    conn_io(&conns[i], cbs) == -1)
				conn_free(&conns[i]);
	}
	for (i = 0; i < MAX_CONNS; i++)
		if (conns[i].fd != -1)
			conn_free(&conns[i]);
	write_stats();
	nghttp2_session_callbacks_del(cbs);
	SSL_CTX_free(ctx);
	close(lfd);
	fclose(reqlog);
	return 0;
}
