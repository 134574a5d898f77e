#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "file.h"
#include "http_server.h"
#include "log.h"
#include "mdm_int.h"

/* Query parameters a handler may look up in one request. */
#define MAX_PARAMS 16
/* How long a worker stops accepting when it has run out of descriptors. */
#define ACCEPT_PAUSE_MS 100

struct param {
	char *name;		/* owned */
	char *value;		/* owned; NULL: looked up and absent */
};

struct worker {
	struct mdm_http_server *srv;
	int index;
	void *ctx;
	int ctx_made;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct event *stop_ev;
	struct event *grace_ev;
	struct event *resume_ev;	/* accepting again after EMFILE */
	time_t warned;			/* last "cannot accept" warning */
	pthread_t tid;
	int running;
	int stopping;
	unsigned long sending;	/* replies queued and not yet written */
};

struct mdm_http_server {
	struct mdm_http_config cfg;
	int fd;
	int port;
	char address[INET6_ADDRSTRLEN + 16];
	int stop_pipe[2];
	struct worker *workers;
	int nworkers;
	int started;
	int joined;
	/* the signal events live on a base of the thread that waits */
	struct event_base *main_base;
	struct event *sig_ev[2];
	struct event *main_stop_ev;
	volatile sig_atomic_t stop_signal;
};

struct mdm_http_request {
	struct evhttp_request *ev;
	struct worker *w;
	const char *method;
	const char *path;
	const char *query;
	char peer[INET6_ADDRSTRLEN + 1];
	int replied;
	struct param params[MAX_PARAMS];
	int nparams;
};

int
mdm_http_parse_listen(const char *addr, char *host, size_t hostlen,
    int *port, struct mdm_err *e)
{
	const char *colon, *h;
	size_t n;
	char *end;
	long p;

	if (addr == NULL || *addr == '\0')
		return mdm_err_set(e, MDM_E_USAGE, "empty addr address");
	if (*addr == '[') {
		h = addr + 1;
		if ((colon = strchr(h, ']')) == NULL || colon[1] != ':')
			return mdm_err_set(e, MDM_E_USAGE, "'%s' is not "
			    "[ADDRESS]:PORT", addr);
		n = (size_t)(colon - h);
		colon++;
	} else {
		h = addr;
		if ((colon = strrchr(addr, ':')) == NULL)
			return mdm_err_set(e, MDM_E_USAGE, "'%s' has no port: "
			    "give HOST:PORT, or :PORT for every address",
			    addr);
		n = (size_t)(colon - h);
		if (memchr(h, ':', n) != NULL)
			return mdm_err_set(e, MDM_E_USAGE, "'%s': put an IPv6 "
			    "address in brackets, as [::1]:8080", addr);
	}
	if (n >= hostlen)
		return mdm_err_set(e, MDM_E_USAGE, "host name too long in "
		    "'%s'", addr);
	memcpy(host, h, n);
	host[n] = '\0';
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 ||
	    p < 0 || p > 65535)
		return mdm_err_set(e, MDM_E_USAGE, "'%s': the port must be a "
		    "number from 0 to 65535", addr);
	*port = (int)p;
	return 0;
}

static int
bind_errno(int err, const char *what, struct mdm_err *e)
{
	switch (err) {
	case EADDRINUSE:
		return mdm_err_set_sys(e, MDM_E_UNAVAILABLE, err, "%s", what);
	case EACCES:
	case EPERM:
		return mdm_err_set_sys(e, MDM_E_PERM, err, "%s", what);
	default:
		return mdm_err_set_sys(e, MDM_E_CONFIG, err, "%s", what);
	}
}

static int
open_listener(const struct sockaddr *sa, socklen_t salen, int dual,
    const char *what, int *out, struct mdm_err *e)
{
	int fd, one = 1, zero = 0, err;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return bind_errno(errno, what, e);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ==
	    -1 || (dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
	    sizeof(zero)) == -1) || bind(fd, sa, salen) == -1 ||
	    listen(fd, SOMAXCONN) == -1) {
		err = errno;
		close(fd);
		return bind_errno(err, what, e);
	}
	*out = fd;
	return 0;
}

/* Binds every address (IPv6 with IPv4 mapped, else IPv4 only). */
static int
listen_any(int port, int *fd, struct mdm_err *e)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	char what[64];

	snprintf(what, sizeof(what), "listen on :%d", port);
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	s6.sin6_addr = in6addr_any;
	s6.sin6_port = htons((unsigned short)port);
	if (open_listener((struct sockaddr *)&s6, sizeof(s6), 1, what, fd,
	    e) == 0)
		return 0;
	if (e != NULL && e->code != MDM_E_CONFIG)
		return -1;
	/* A host without IPv6. */
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	s4.sin_addr.s_addr = htonl(INADDR_ANY);
	s4.sin_port = htons((unsigned short)port);
	return open_listener((struct sockaddr *)&s4, sizeof(s4), 0, what, fd,
	    e);
}

static int
listen_host(const char *host, int port, const char *addr, int *fd,
    struct mdm_err *e)
{
	struct addrinfo hints, *res = NULL;
	char portstr[16], what[300];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_ADDRCONFIG;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0)
		return mdm_err_set(e, MDM_E_CONFIG, "listen on %s: %s", addr,
		    gai_strerror(rc));
	snprintf(what, sizeof(what), "listen on %s", addr);
	rc = open_listener(res->ai_addr, res->ai_addrlen, 0, what, fd, e);
	freeaddrinfo(res);
	return rc;
}

/* Reads back the bound address: the port the kernel picked for 0. */
static int
describe(struct mdm_http_server *s, struct mdm_err *e)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];

	if (getsockname(s->fd, (struct sockaddr *)&ss, &len) == -1)
		return mdm_err_set_sys(e, MDM_E_SOFTWARE, errno,
		    "getsockname");
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		s->port = ntohs(s6->sin6_port);
		snprintf(s->address, sizeof(s->address), "[%s]:%d", addr,
		    s->port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
		s->port = ntohs(s4->sin_port);
		snprintf(s->address, sizeof(s->address), "%s:%d", addr,
		    s->port);
	}
	return 0;
}

static int
default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
mdm_http_server_new(const struct mdm_http_config *cfg,
    struct mdm_http_server **out, struct mdm_err *e)
{
	struct mdm_http_server *s = NULL;
	char host[256];
	int port, i;

	*out = NULL;
	if (cfg->handler == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "no request handler");
	if (cfg->threads < 0 || cfg->threads > MDM_HTTP_MAX_THREADS)
		return mdm_err_set(e, MDM_E_USAGE, "threads must be 1 to %d",
		    MDM_HTTP_MAX_THREADS);
	if (mdm_http_parse_listen(cfg->listen, host, sizeof(host), &port,
	    e) == -1)
		return -1;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	raise_fd_limit();
	s->cfg = *cfg;
	s->cfg.listen = NULL;
	if (s->cfg.threads == 0)
		s->cfg.threads = default_threads();
	if (s->cfg.max_body == 0)
		s->cfg.max_body = MDM_HTTP_DEFAULT_MAX_BODY;
	if (s->cfg.max_headers == 0)
		s->cfg.max_headers = MDM_HTTP_DEFAULT_MAX_HEADERS;
	if (s->cfg.timeout_ms <= 0)
		s->cfg.timeout_ms = MDM_HTTP_DEFAULT_TIMEOUT_MS;
	s->fd = -1;
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	if (pipe(s->stop_pipe) == -1) {
		mdm_err_set_sys(e, MDM_E_SOFTWARE, errno, "pipe");
		goto fail;
	}
	for (i = 0; i < 2; i++)
		if (fcntl(s->stop_pipe[i], F_SETFD, FD_CLOEXEC) == -1 ||
		    fcntl(s->stop_pipe[i], F_SETFL, O_NONBLOCK) == -1) {
			mdm_err_set_sys(e, MDM_E_SOFTWARE, errno, "fcntl");
			goto fail;
		}
	if ((host[0] == '\0' ? listen_any(port, &s->fd, e) :
	    listen_host(host, port, cfg->listen, &s->fd, e)) == -1 ||
	    describe(s, e) == -1)
		goto fail;
	s->nworkers = s->cfg.threads;
	if ((s->workers = calloc((size_t)s->nworkers,
	    sizeof(*s->workers))) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		goto fail;
	}
	for (i = 0; i < s->nworkers; i++) {
		s->workers[i].srv = s;
		s->workers[i].index = i;
	}
	*out = s;
	return 0;
fail:
	mdm_http_server_free(s);
	return -1;
}

int
mdm_http_server_port(const struct mdm_http_server *s)
{
	return s->port;
}

int
mdm_http_server_threads(const struct mdm_http_server *s)
{
	return s->nworkers;
}

const char *
mdm_http_server_address(const struct mdm_http_server *s)
{
	return s->address;
}

/* %XX-decodes s[0..n) into a new string; see mdm_http_request_param. */
static char *
url_decode(const char *s, size_t n)
{
	char *out, *o;
	size_t i;
	int hi, lo;

	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 0, o = out; i < n; i++) {
		if (s[i] == '%' && n - i > 2 && (hi = mdm_hex_digit(s[i + 1])) >= 0 &&
		    (lo = mdm_hex_digit(s[i + 2])) >= 0 && (hi | lo) != 0) {
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

const char *
mdm_http_request_param(struct mdm_http_request *r, const char *name)
{
	const char *p, *amp, *eq;
	struct param *pa;
	char *key;
	size_t klen;
	int i;

	for (i = 0; i < r->nparams; i++)
		if (strcmp(r->params[i].name, name) == 0)
			return r->params[i].value;
	if (r->nparams == MAX_PARAMS)
		return NULL;
	pa = &r->params[r->nparams];
	if ((pa->name = strdup(name)) == NULL)
		return NULL;
	pa->value = NULL;
	r->nparams++;
	for (p = r->query; p != NULL && *p != '\0'; p = *amp ? amp + 1 : amp) {
		amp = p + strcspn(p, "&");
		eq = memchr(p, '=', (size_t)(amp - p));
		klen = (size_t)((eq ? eq : amp) - p);
		if ((key = url_decode(p, klen)) == NULL)
			return NULL;
		i = strcmp(key, name);
		free(key);
		if (i != 0)
			continue;
		pa->value = eq ? url_decode(eq + 1, (size_t)(amp - eq - 1)) :
		    strdup("");
		break;
	}
	return pa->value;
}

const char *
mdm_http_request_method(const struct mdm_http_request *r)
{
	return r->method;
}

const char *
mdm_http_request_path(const struct mdm_http_request *r)
{
	return r->path;
}

const char *
mdm_http_request_query(const struct mdm_http_request *r)
{
	return r->query;
}

const char *
mdm_http_request_header(const struct mdm_http_request *r, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(r->ev),
	    name);
}

const unsigned char *
mdm_http_request_body(struct mdm_http_request *r, size_t *len)
{
	struct evbuffer *b = evhttp_request_get_input_buffer(r->ev);

	*len = b != NULL ? evbuffer_get_length(b) : 0;
	if (*len == 0)
		return NULL;
	return evbuffer_pullup(b, -1);
}

const char *
mdm_http_request_peer(const struct mdm_http_request *r)
{
	return r->peer;
}

X509 *
mdm_http_request_peer_cert(const struct mdm_http_request *r)
{
	struct evhttp_connection *c;
	struct bufferevent *bev;
	SSL *ssl;

	if (r->w->srv->cfg.ssl_ctx == NULL ||
	    (c = evhttp_request_get_connection(r->ev)) == NULL ||
	    (bev = evhttp_connection_get_bufferevent(c)) == NULL ||
	    (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return NULL;
	return SSL_get0_peer_certificate(ssl);
}

int
mdm_http_request_thread(const struct mdm_http_request *r)
{
	return r->w->index;
}

int
mdm_http_add_header(struct mdm_http_request *r, const char *name,
    const char *value, struct mdm_err *e)
{
	if (r->replied)
		return mdm_err_set(e, MDM_E_USAGE, "header after the reply");
	if (*name == '\0' || strpbrk(name, "\r\n:") != NULL ||
	    strpbrk(value, "\r\n") != NULL)
		return mdm_err_set(e, MDM_E_USAGE, "bad response header");
	if (evhttp_add_header(evhttp_request_get_output_headers(r->ev), name,
	    value) == -1)
		return mdm_err_set(e, MDM_E_SOFTWARE, "cannot add header %s",
		    name);
	return 0;
}

static void
exit_loop(struct worker *w)
{
	event_base_loopexit(w->base, NULL);
}

static void
on_sent(struct evhttp_request *ev, void *arg)
{
	struct worker *w = arg;

	(void)ev;
	if (w->sending > 0)
		w->sending--;
	if (w->stopping && w->sending == 0)
		exit_loop(w);
}

int
mdm_http_reply(struct mdm_http_request *r, int status,
    const char *content_type, const void *body, size_t len,
    struct mdm_err *e)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(r->ev);

	if (r->replied)
		return mdm_err_set(e, MDM_E_USAGE, "second reply to a request");
	if (status < 100 || status > 599)
		return mdm_err_set(e, MDM_E_USAGE, "bad HTTP status %d",
		    status);
	if (content_type == NULL && len > 0)
		content_type = "application/octet-stream";
	if ((content_type != NULL && mdm_http_add_header(r, "Content-Type",
	    content_type, e) == -1))
		return -1;
	if (len > 0 && evbuffer_add(out, body, len) == -1)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	r->replied = 1;
	r->w->sending++;
	evhttp_request_set_on_complete_cb(r->ev, on_sent, r->w);
	evhttp_send_reply(r->ev, status, NULL, NULL);
	return 0;
}

static const char *
method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "UNKNOWN";
}

static void
on_request(struct evhttp_request *ev, void *arg)
{
	struct worker *w = arg;
	struct mdm_http_request r;
	const struct evhttp_uri *uri;
	struct evhttp_connection *c;
	char *addr = NULL;
	ev_uint16_t port = 0;
	int i;

	memset(&r, 0, sizeof(r));
	r.ev = ev;
	r.w = w;
	r.method = method_name(evhttp_request_get_command(ev));
	uri = evhttp_request_get_evhttp_uri(ev);
	r.path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	if (r.path == NULL || *r.path == '\0')
		r.path = "/";
	r.query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	if ((c = evhttp_request_get_connection(ev)) != NULL)
		evhttp_connection_get_peer(c, &addr, &port);
	if (addr != NULL)
		snprintf(r.peer, sizeof(r.peer), "%s", addr);

	w->srv->cfg.handler(&r, w->ctx, w->srv->cfg.arg);
	if (!r.replied) {
		static const char msg[] = "internal server error\n";

		mdm_http_reply(&r, 500, "text/plain", msg, sizeof(msg) - 1,
		    NULL);
	}
	for (i = 0; i < r.nparams; i++) {
		free(r.params[i].name);
		free(r.params[i].value);
	}
}

static struct bufferevent *
make_tls_bev(struct event_base *base, void *arg)
{
	struct worker *w = arg;
	struct bufferevent *bev;
	SSL *ssl;

	if ((ssl = SSL_new(w->srv->cfg.ssl_ctx)) == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	/* Clients that hang up without close_notify are the norm. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static void
on_grace_over(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	exit_loop(arg);
}

static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv;

	(void)fd;
	(void)what;
	/* The pipe is never drained, so every worker sees it. */
	event_del(w->stop_ev);
	event_del(w->resume_ev);
	w->stopping = 1;
	if (w->bound != NULL) {
		evhttp_del_accept_socket(w->http, w->bound);
		w->bound = NULL;
	}
	if (w->sending == 0) {
		exit_loop(w);
		return;
	}
	tv.tv_sec = w->srv->cfg.timeout_ms / 1000;
	tv.tv_usec = (w->srv->cfg.timeout_ms % 1000) * 1000;
	if ((w->grace_ev = evtimer_new(w->base, on_grace_over, w)) == NULL ||
	    evtimer_add(w->grace_ev, &tv) == -1)
		exit_loop(w);
}

/* The worker running in this thread, for the listener's error callback. */
static _Thread_local struct worker *this_worker;

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (w->bound != NULL)
		evconnlistener_enable(evhttp_bound_socket_get_listener(
		    w->bound));
}

/*
 * accept() failed.  Out of descriptors (or memory), the connection stays
 * queued and the socket stays readable, so a worker that kept listening
 * would spin; it pauses instead, while the idle timeout frees descriptors.
 */
static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct worker *w = this_worker;
	struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
	int err = EVUTIL_SOCKET_ERROR();

	(void)arg;
	if (w == NULL || (err != EMFILE && err != ENFILE && err != ENOBUFS &&
	    err != ENOMEM))
		return;
	evconnlistener_disable(lev);
	if (event_add(w->resume_ev, &tv) == -1)
		evconnlistener_enable(lev);
	if (time(NULL) - w->warned >= 10) {
		w->warned = time(NULL);
		mdm_log_warn("cannot accept connections: %s", strerror(err));
	}
}

/*
 * evhttp turns a connection's read and write events off and on again
 * around every request; with the changelist those flips within one loop
 * pass cost one epoll_ctl instead of several.  Its one caveat, dup'd
 * descriptors in the same base, does not apply: each connection has its
 * own socket, and the listener's dup is the only one in its base.
 */
static struct event_base *
new_worker_base(void)
{
	struct event_config *cfg;
	struct event_base *base;

	if ((cfg = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

static int
setup_worker(struct worker *w, struct mdm_err *e)
{
	struct mdm_http_server *s = w->srv;
	struct timeval tv;
	int fd;

	if ((w->base = new_worker_base()) == NULL ||
	    (w->http = evhttp_new(w->base)) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "cannot set up libevent");
	evhttp_set_max_body_size(w->http, (ev_ssize_t)s->cfg.max_body);
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)s->cfg.max_headers);
	tv.tv_sec = s->cfg.timeout_ms / 1000;
	tv.tv_usec = (s->cfg.timeout_ms % 1000) * 1000;
	evhttp_set_timeout_tv(w->http, &tv);
	/* The handler decides what a method means. */
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(w->http, NULL);
	evhttp_set_gencb(w->http, on_request, w);
	if (s->cfg.ssl_ctx != NULL)
		evhttp_set_bevcb(w->http, make_tls_bev, w);
	/* Each worker's listener owns (and closes) a dup of the socket. */
	if ((fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return mdm_err_set_sys(e, MDM_E_SOFTWARE, errno, "dup");
	if ((w->bound = evhttp_accept_socket_with_handle(w->http, fd)) ==
	    NULL) {
		close(fd);
		return mdm_err_set(e, MDM_E_SOFTWARE, "cannot accept on the "
		    "listening socket");
	}
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(w->bound),
	    on_accept_error);
	if ((w->resume_ev = evtimer_new(w->base, on_resume, w)) == NULL ||
	    (w->stop_ev = event_new(w->base, s->stop_pipe[0], EV_READ |
	    EV_PERSIST, on_stop, w)) == NULL || event_add(w->stop_ev, NULL) ==
	    -1)
		return mdm_err_set(e, MDM_E_SOFTWARE, "cannot set up libevent");
	return 0;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	this_worker = w;
	event_base_dispatch(w->base);
	return NULL;
}

static void
on_main_signal(evutil_socket_t sig, short what, void *arg)
{
	struct mdm_http_server *s = arg;

	(void)what;
	if (s->stop_signal == 0)
		s->stop_signal = (int)sig;
	mdm_http_server_stop(s);
}

static void
on_main_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static int
setup_signals(struct mdm_http_server *s, struct mdm_err *e)
{
	static const int sigs[2] = { SIGINT, SIGTERM };
	int i;

	if ((s->main_base = event_base_new()) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "cannot set up libevent");
	for (i = 0; i < 2; i++)
		if ((s->sig_ev[i] = evsignal_new(s->main_base, sigs[i],
		    on_main_signal, s)) == NULL ||
		    event_add(s->sig_ev[i], NULL) == -1)
			return mdm_err_set(e, MDM_E_SOFTWARE, "cannot catch "
			    "signals");
	if ((s->main_stop_ev = event_new(s->main_base, s->stop_pipe[0],
	    EV_READ | EV_PERSIST, on_main_stop, s->main_base)) == NULL ||
	    event_add(s->main_stop_ev, NULL) == -1)
		return mdm_err_set(e, MDM_E_SOFTWARE, "cannot set up libevent");
	return 0;
}

static int
write_port_file(struct mdm_http_server *s, struct mdm_err *e)
{
	char line[16];

	snprintf(line, sizeof(line), "%d\n", s->port);
	return mdm_file_write_atomic(s->cfg.port_file, line, strlen(line),
	    0644, 0, e);
}

int
mdm_http_server_start(struct mdm_http_server *s, struct mdm_err *e)
{
	sigset_t block, old;
	int i, err;

	if (s->started)
		return mdm_err_set(e, MDM_E_USAGE, "server already started");
	s->started = 1;
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		if (s->cfg.thread_init != NULL) {
			if ((w->ctx = s->cfg.thread_init(i, s->cfg.arg, e)) ==
			    NULL)
				goto fail;
			w->ctx_made = 1;
		}
		if (setup_worker(w, e) == -1)
			goto fail;
	}
	if (s->cfg.stop_on_signals && setup_signals(s, e) == -1)
		goto fail;

	/* Signals go to the thread that waits, never to a worker. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (i = 0; i < s->nworkers; i++) {
		if ((err = pthread_create(&s->workers[i].tid, NULL,
		    worker_main, &s->workers[i])) != 0) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			mdm_err_set_sys(e, MDM_E_SOFTWARE, err,
			    "cannot start a worker thread");
			goto fail;
		}
		s->workers[i].running = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (s->cfg.port_file != NULL && write_port_file(s, e) == -1)
		goto fail;
	return 0;
fail:
	/* free() stops and joins what runs and frees what was made. */
	mdm_http_server_stop(s);
	return -1;
}

void
mdm_http_server_stop(struct mdm_http_server *s)
{
	ssize_t n;

	if (s == NULL || s->stop_pipe[1] == -1)
		return;
	do
		n = write(s->stop_pipe[1], "x", 1);
	while (n == -1 && errno == EINTR);
}

int
mdm_http_server_wait(struct mdm_http_server *s)
{
	int i;

	if (!s->started || s->joined)
		return s->stop_signal;
	if (s->main_base != NULL)
		event_base_dispatch(s->main_base);
	for (i = 0; i < s->nworkers; i++)
		if (s->workers[i].running) {
			pthread_join(s->workers[i].tid, NULL);
			s->workers[i].running = 0;
		}
	s->joined = 1;
	return s->stop_signal;
}

void
mdm_http_server_free(struct mdm_http_server *s)
{
	int i;

	if (s == NULL)
		return;
	if (s->started && !s->joined) {
		mdm_http_server_stop(s);
		mdm_http_server_wait(s);
	}
	for (i = 0; s->workers != NULL && i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		if (w->stop_ev != NULL)
			event_free(w->stop_ev);
		if (w->grace_ev != NULL)
			event_free(w->grace_ev);
		if (w->resume_ev != NULL)
			event_free(w->resume_ev);
		if (w->http != NULL)
			evhttp_free(w->http);
		if (w->base != NULL)
			event_base_free(w->base);
		if (w->ctx_made && s->cfg.thread_fini != NULL)
			s->cfg.thread_fini(w->ctx, s->cfg.arg);
	}
	free(s->workers);
	for (i = 0; i < 2; i++)
		if (s->sig_ev[i] != NULL)
			event_free(s->sig_ev[i]);
	if (s->main_stop_ev != NULL)
		event_free(s->main_stop_ev);
	if (s->main_base != NULL)
		event_base_free(s->main_base);
	if (s->fd != -1)
		close(s->fd);
	for (i = 0; i < 2; i++)
		if (s->stop_pipe[i] != -1)
			close(s->stop_pipe[i]);
	free(s);
}
