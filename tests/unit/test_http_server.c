#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "http_server.h"
#include "log.h"
#include "x509.h"
#include "tap.h"

#define NTHREADS 3

struct tctx {
	int index;
	int magic;
};

static int inits, finis, fail_init_at = -1;

static void *
t_init(int index, void *arg, struct mdm_err *e)
{
	struct tctx *c;

	(void)arg;
	if (index == fail_init_at) {
		mdm_err_set(e, MDM_E_CONFIG, "init %d refused", index);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->index = index;
	c->magic = 0x5ca1ab1e;
	inits++;
	return c;
}

static void
t_fini(void *ctx, void *arg)
{
	(void)arg;
	finis++;
	free(ctx);
}

static void
handler(struct mdm_http_request *r, void *ctx, void *arg)
{
	struct tctx *c = ctx;
	const char *x, *path = mdm_http_request_path(r);
	const unsigned char *body;
	char out[512];
	size_t len;
	int n;

	(void)arg;
	if (strcmp(path, "/noreply") == 0)
		return;
	if (strcmp(path, "/twice") == 0) {
		mdm_http_reply(r, 200, "text/plain", "one\n", 4, NULL);
		n = mdm_http_reply(r, 200, "text/plain", "two\n", 4, NULL);
		(void)n;
		return;
	}
	if (strcmp(path, "/slow") == 0)
		usleep(300000);
	body = mdm_http_request_body(r, &len);
	x = mdm_http_request_param(r, "x");
	n = snprintf(out, sizeof(out), "%s %s x=%s len=%zu ctx=%d/%d "
	    "thread=%d peer=%s cert=%s first=%.5s\n",
	    mdm_http_request_method(r), path, x ? x : "(none)", len,
	    c ? c->index : -1, c ? c->magic == 0x5ca1ab1e : 0,
	    mdm_http_request_thread(r), mdm_http_request_peer(r),
	    mdm_http_request_peer_cert(r) ? "yes" : "no",
	    body ? (const char *)body : "");
	mdm_http_add_header(r, "X-Test", "yes", NULL);
	mdm_http_reply(r, 200, "text/plain", out, (size_t)n, NULL);
}

static int
connect_to(int port, int family)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	struct timeval tv = { 10, 0 };
	int fd;

	if ((fd = socket(family, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (family == AF_INET) {
		memset(&s4, 0, sizeof(s4));
		s4.sin_family = AF_INET;
		s4.sin_port = htons((unsigned short)port);
		s4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(fd, (struct sockaddr *)&s4, sizeof(s4)) == 0)
			return fd;
	} else {
		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		s6.sin6_port = htons((unsigned short)port);
		s6.sin6_addr = in6addr_loopback;
		if (connect(fd, (struct sockaddr *)&s6, sizeof(s6)) == 0)
			return fd;
	}
	close(fd);
	return -1;
}

static int
send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		if ((w = send(fd, c, n, MSG_NOSIGNAL)) <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads until EOF (the server closes) or the buffer is full. */
static size_t
read_all(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	ssize_t r;

	while (got + 1 < cap && (r = recv(fd, buf + got, cap - 1 - got, 0)) >
	    0)
		got += (size_t)r;
	buf[got] = '\0';
	return got;
}

/* One request on a fresh connection; the response in resp.  Status. */
static int
exchange(int port, int family, const char *req, size_t len, char *resp,
    size_t cap)
{
	int fd, status = -1;

	resp[0] = '\0';
	if ((fd = connect_to(port, family)) == -1)
		return -1;
	if (send_all(fd, req, len) == 0) {
		read_all(fd, resp, cap);
		if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
			status = -1;
	}
	close(fd);
	return status;
}

static int
exchange_str(int port, const char *req, char *resp, size_t cap)
{
	return exchange(port, AF_INET, req, strlen(req), resp, cap);
}

static const char *
body_of(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");

	return b ? b + 4 : "";
}

struct load_arg {
	int port;
	int ok;
};

static void *
load_client(void *p)
{
	struct load_arg *a = p;
	char resp[2048];
	int i;

	for (i = 0; i < 20; i++)
		if (exchange_str(a->port, "GET /load HTTP/1.1\r\nHost: t\r\n"
		    "Connection: close\r\n\r\n", resp, sizeof(resp)) == 200)
			a->ok++;
	return NULL;
}

static void
test_parse_listen(void)
{
	struct mdm_err e;
	char host[64];
	int port = -1;

	ok(mdm_http_parse_listen("127.0.0.1:8080", host, sizeof(host), &port,
	    &e) == 0 && strcmp(host, "127.0.0.1") == 0 && port == 8080,
	    "parse 127.0.0.1:8080");
	ok(mdm_http_parse_listen("[::1]:0", host, sizeof(host), &port, &e) ==
	    0 && strcmp(host, "::1") == 0 && port == 0, "parse [::1]:0");
	ok(mdm_http_parse_listen(":9001", host, sizeof(host), &port, &e) == 0 &&
	    host[0] == '\0' && port == 9001, "parse :9001 (every address)");
	ok(mdm_http_parse_listen("localhost:65535", host, sizeof(host), &port,
	    &e) == 0 && strcmp(host, "localhost") == 0 && port == 65535,
	    "parse localhost:65535");
	ok(mdm_http_parse_listen("8080", host, sizeof(host), &port, &e) == -1 &&
	    e.code == MDM_E_USAGE, "a bare port is refused");
	ok(mdm_http_parse_listen("::1:80", host, sizeof(host), &port, &e) ==
	    -1 && strstr(e.msg, "brackets") != NULL,
	    "IPv6 without brackets is refused with a hint");
	ok(mdm_http_parse_listen("host:", host, sizeof(host), &port, &e) == -1,
	    "empty port refused");
	ok(mdm_http_parse_listen("host:70000", host, sizeof(host), &port,
	    &e) == -1, "port over 65535 refused");
	ok(mdm_http_parse_listen("host:-1", host, sizeof(host), &port,
	    &e) == -1, "negative port refused");
	ok(mdm_http_parse_listen("[::1]80", host, sizeof(host), &port,
	    &e) == -1, "bracket without colon refused");
	ok(mdm_http_parse_listen("", host, sizeof(host), &port, &e) == -1,
	    "empty address refused");
}

static void
test_basic(void)
{
	struct mdm_http_config cfg;
	struct mdm_http_server *s = NULL;
	struct mdm_err e = { 0 };
	struct load_arg la[8];
	pthread_t tids[8];
	char resp[8192], req[4096], big[8192];
	int port, fd, i, total, n;
	struct timespec t0, t1;

	memset(&cfg, 0, sizeof(cfg));
	cfg.listen = "127.0.0.1:0";
	cfg.threads = NTHREADS;
	cfg.max_body = 1024;
	cfg.max_headers = 4096;
	cfg.timeout_ms = 500;
	cfg.handler = handler;
	cfg.thread_init = t_init;
	cfg.thread_fini = t_fini;
	inits = finis = 0;

	ok(mdm_http_server_new(&cfg, &s, &e) == 0, "server on port 0: %s",
	    e.msg);
	if (s == NULL)
		return;
	port = mdm_http_server_port(s);
	ok(port > 0, "port 0 picked a free port (%d)", port);
	snprintf(req, sizeof(req), "127.0.0.1:%d", port);
	is_str(mdm_http_server_address(s), req, "address names it");
	ok(mdm_http_server_start(s, &e) == 0, "start: %s", e.msg);
	is_int(inits, NTHREADS, "one context per thread");

	is_int(exchange_str(port, "GET /hello?y=1&x=a%2Bb+c%2f%zz%00&x=2 "
	    "HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", resp,
	    sizeof(resp)), 200, "GET: 200");
	ok(strstr(body_of(resp), "GET /hello x=a+b+c/%zz%00 len=0 ") ==
	    body_of(resp), "path and the first x, %%-decoded, '+' kept, bad and NUL "
	    "escapes kept: %s", body_of(resp));
	ok(strstr(resp, "X-Test: yes\r\n") != NULL, "extra header sent");
	ok(strstr(resp, "Content-Type: text/plain\r\n") != NULL,
	    "content type sent");
	ok(strstr(body_of(resp), "/1 ") != NULL, "handler got its context");
	ok(strstr(body_of(resp), "peer=127.0.0.1 ") != NULL, "peer address");
	ok(strstr(body_of(resp), "cert=no ") != NULL, "no peer cert on HTTP");

	is_int(exchange_str(port, "GET /q?x HTTP/1.1\r\nHost: t\r\n"
	    "Connection: close\r\n\r\n", resp, sizeof(resp)), 200,
	    "GET with a bare parameter");
	ok(strstr(body_of(resp), "x= len") != NULL, "bare parameter is empty");
	exchange_str(port, "GET /q HTTP/1.1\r\nHost: t\r\nConnection: close"
	    "\r\n\r\n", resp, sizeof(resp));
	ok(strstr(body_of(resp), "x=(none)") != NULL, "no query: no param");

	is_int(exchange_str(port, "POST /post HTTP/1.1\r\nHost: t\r\n"
	    "Content-Length: 11\r\nConnection: close\r\n\r\nhello world",
	    resp, sizeof(resp)), 200, "POST with a body: 200");
	ok(strstr(body_of(resp), "POST /post x=(none) len=11 ") != NULL &&
	    strstr(body_of(resp), "first=hello") != NULL,
	    "body reaches the handler: %s", body_of(resp));

	is_int(exchange_str(port, "POST /chunked HTTP/1.1\r\nHost: t\r\n"
	    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
	    "5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n", resp, sizeof(resp)), 200,
	    "chunked POST: 200");
	ok(strstr(body_of(resp), "len=8 ") != NULL, "chunked body joined");

	is_int(exchange_str(port, "POST /big HTTP/1.1\r\nHost: t\r\n"
	    "Content-Length: 2048\r\nConnection: close\r\n\r\n", resp,
	    sizeof(resp)), 413, "Content-Length over the cap: 413");
	is_int(exchange_str(port, "POST /big HTTP/1.1\r\nHost: t\r\n"
	    "Content-Length: 99999999999\r\nExpect: 100-continue\r\n\r\n",
	    resp, sizeof(resp)), 413, "100-continue over the cap: 413, "
	    "before any body is sent");
	memset(big, 'a', sizeof(big));
	n = snprintf(req, sizeof(req), "POST /big HTTP/1.1\r\nHost: t\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n800\r\n");
	memcpy(req + n, big, 2048 < sizeof(req) - (size_t)n ? 2048 :
	    sizeof(req) - (size_t)n - 1);
	is_int(exchange(port, AF_INET, req, (size_t)n + 2048, resp,
	    sizeof(resp)), 413, "chunked body over the cap: 413");

	is_int(exchange_str(port, "GARBAGE\r\n\r\n", resp, sizeof(resp)), 400,
	    "malformed request line: 400");
	is_int(exchange_str(port, "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
	    resp, sizeof(resp)), 400, "malformed header: 400");
	n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: ");
	memset(big + n, 'b', 6000);
	memcpy(big + n + 6000, "\r\n\r\n", 5);
	i = exchange_str(port, big, resp, sizeof(resp));
	ok(i == 400 || i == 413, "headers over the cap: 4xx (%d)", i);
	is_int(exchange_str(port, "GET /noreply HTTP/1.1\r\nHost: t\r\n"
	    "Connection: close\r\n\r\n", resp, sizeof(resp)), 500,
	    "a handler that does not answer: 500");
	is_int(exchange_str(port, "GET /twice HTTP/1.1\r\nHost: t\r\n"
	    "Connection: close\r\n\r\n", resp, sizeof(resp)), 200,
	    "a second reply is refused, the first stands");
	ok(strcmp(body_of(resp), "one\n") == 0, "only the first body sent");
	is_int(exchange_str(port, "DELETE /x HTTP/1.1\r\nHost: t\r\n"
	    "Connection: close\r\n\r\n", resp, sizeof(resp)), 200,
	    "other methods reach the handler");
	ok(strncmp(body_of(resp), "DELETE ", 7) == 0, "method name");

	/* Keep-alive: two requests on one connection. */
	fd = connect_to(port, AF_INET);
	snprintf(req, sizeof(req), "GET /a?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"
	    "GET /b?x=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	ok(fd != -1 && send_all(fd, req, strlen(req)) == 0,
	    "two pipelined requests sent");
	if (fd != -1) {
		read_all(fd, resp, sizeof(resp));
		close(fd);
	}
	ok(strstr(resp, "GET /a x=1") != NULL && strstr(resp, "GET /b x=2") !=
	    NULL, "both answered on one connection");

	/* An idle connection is closed after the timeout. */
	fd = connect_to(port, AF_INET);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = fd != -1 ? (int)recv(fd, resp, sizeof(resp), 0) : -1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (fd != -1)
		close(fd);
	ok(n == 0 && t1.tv_sec - t0.tv_sec < 5, "idle connection closed by "
	    "the server after the timeout (recv %d)", n);
	/* A request cut short is closed too, without an answer. */
	fd = connect_to(port, AF_INET);
	snprintf(req, sizeof(req), "POST /p HTTP/1.1\r\nContent-Length: 100"
	    "\r\n\r\nshort");
	n = fd != -1 ? send_all(fd, req, strlen(req)) : -1;
	n = n == 0 ? (int)recv(fd, resp, sizeof(resp), 0) : -1;
	if (fd != -1)
		close(fd);
	ok(n <= 0, "a body cut short gets no answer, only a close (%d)", n);

	/* Concurrent clients. */
	for (i = 0; i < 8; i++) {
		la[i].port = port;
		la[i].ok = 0;
		pthread_create(&tids[i], NULL, load_client, &la[i]);
	}
	for (i = 0, total = 0; i < 8; i++) {
		pthread_join(tids[i], NULL);
		total += la[i].ok;
	}
	is_int(total, 160, "8 concurrent clients x 20 requests all answered");

	/* Stop while a slow request runs: its reply still goes out. */
	fd = connect_to(port, AF_INET);
	snprintf(req, sizeof(req), "GET /slow HTTP/1.1\r\nHost: t\r\n"
	    "Connection: close\r\n\r\n");
	ok(fd != -1 && send_all(fd, req, strlen(req)) == 0,
	    "slow request sent");
	usleep(100000);
	mdm_http_server_stop(s);
	if (fd != -1) {
		read_all(fd, resp, sizeof(resp));
		close(fd);
	}
	ok(strncmp(resp, "HTTP/1.1 200", 12) == 0, "the request running at "
	    "stop is answered");
	is_int(mdm_http_server_wait(s), 0, "wait returns after stop");
	mdm_http_server_stop(s);
	mdm_http_server_free(s);
	is_int(finis, NTHREADS, "every context freed");
	ok(connect_to(port, AF_INET) == -1, "port closed after free");
}

static void
test_ipv6_and_any(void)
{
	struct mdm_http_config cfg;
	struct mdm_http_server *s = NULL;
	struct mdm_err e = { 0 };
	char resp[2048];
	int fd;

	memset(&cfg, 0, sizeof(cfg));
	cfg.handler = handler;
	cfg.listen = "[::1]:0";
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd == -1 || mdm_http_server_new(&cfg, &s, &e) == -1) {
		if (fd != -1)
			close(fd);
		tap_skip(2, "no IPv6 loopback here");
	} else {
		close(fd);
		ok(mdm_http_server_start(s, &e) == 0 &&
		    strncmp(mdm_http_server_address(s), "[::1]:", 6) == 0,
		    "IPv6 loopback: %s", mdm_http_server_address(s));
		is_int(exchange(mdm_http_server_port(s), AF_INET6,
		    "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
		    strlen("GET / HTTP/1.1\r\nHost: t\r\nConnection: close"
		    "\r\n\r\n"), resp, sizeof(resp)), 200, "request over IPv6");
		mdm_http_server_free(s);
		s = NULL;
	}

	cfg.listen = ":0";
	ok(mdm_http_server_new(&cfg, &s, &e) == 0 &&
	    mdm_http_server_start(s, &e) == 0, ":0 listens on every address");
	if (s != NULL)
		is_int(exchange_str(mdm_http_server_port(s), "GET / HTTP/1.1\r\n"
		    "Host: t\r\nConnection: close\r\n\r\n", resp, sizeof(resp)),
		    200, "and answers on 127.0.0.1");
	mdm_http_server_free(s);
	s = NULL;

	cfg.listen = "localhost:0";
	fd = mdm_http_server_new(&cfg, &s, &e);
	ok(fd == 0, "localhost resolves: %s", s ? mdm_http_server_address(s) :
	    e.msg);
	mdm_http_server_free(s);
	s = NULL;
	cfg.listen = "no-such-host.invalid:0";
	ok(mdm_http_server_new(&cfg, &s, &e) == -1 && e.code == MDM_E_CONFIG,
	    "unresolvable host: config error");
	cfg.listen = "192.0.2.1:0";
	ok(mdm_http_server_new(&cfg, &s, &e) == -1, "an address not ours is "
	    "refused: %s", e.msg);
}

static void
test_port_in_use_and_init_failure(void)
{
	struct mdm_http_config cfg;
	struct mdm_http_server *a = NULL, *b = NULL;
	struct mdm_err e = { 0 };
	char addr[64];

	memset(&cfg, 0, sizeof(cfg));
	cfg.handler = handler;
	cfg.listen = "127.0.0.1:0";
	cfg.threads = 4;
	cfg.thread_init = t_init;
	cfg.thread_fini = t_fini;
	ok(mdm_http_server_new(&cfg, &a, &e) == 0, "first server");
	if (a == NULL)
		return;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", mdm_http_server_port(a));
	cfg.listen = addr;
	ok(mdm_http_server_new(&cfg, &b, &e) == -1 &&
	    e.code == MDM_E_UNAVAILABLE, "port in use: unavailable (%s)",
	    e.msg);

	inits = finis = 0;
	fail_init_at = 2;
	ok(mdm_http_server_start(a, &e) == -1 && strstr(e.msg, "init 2") !=
	    NULL, "a failing thread_init fails start: %s", e.msg);
	fail_init_at = -1;
	mdm_http_server_free(a);
	is_int(finis, 2, "the contexts made before it are freed");
}

static void
test_signals(void)
{
	struct mdm_http_config cfg;
	struct mdm_http_server *s = NULL;
	struct mdm_err e = { 0 };

	memset(&cfg, 0, sizeof(cfg));
	cfg.handler = handler;
	cfg.listen = "127.0.0.1:0";
	cfg.threads = 2;
	cfg.stop_on_signals = 1;
	ok(mdm_http_server_new(&cfg, &s, &e) == 0 &&
	    mdm_http_server_start(s, &e) == 0, "server that stops on signals");
	if (s == NULL)
		return;
	kill(getpid(), SIGTERM);
	is_int(mdm_http_server_wait(s), SIGTERM, "SIGTERM stops it");
	mdm_http_server_free(s);
}

static int warned;

static void
capture_log(enum mdm_log_level level, const char *line, void *arg)
{
	(void)arg;
	if (level == MDM_LOG_WARN && strstr(line, "cannot accept") != NULL)
		warned++;
}

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (d == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n - 3;	/* ".", ".." and the DIR's own */
}

static long long
cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000LL +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* Out of descriptors, a worker pauses accepting instead of spinning. */
static void
test_emfile(void)
{
	struct mdm_http_config cfg;
	struct mdm_http_server *s = NULL;
	struct mdm_err e = { 0 };
	struct rlimit old, low;
	char resp[2048];
	int fds[64], n = 0, i, port, base;
	long long c0, c1;

	memset(&cfg, 0, sizeof(cfg));
	cfg.handler = handler;
	cfg.listen = "127.0.0.1:0";
	cfg.threads = 1;
	cfg.timeout_ms = 5000;
	if (mdm_http_server_new(&cfg, &s, &e) == -1 ||
	    mdm_http_server_start(s, &e) == -1 || (base = open_fds()) < 0 ||
	    getrlimit(RLIMIT_NOFILE, &old) == -1) {
		tap_skip(4, "cannot set up the descriptor test");
		mdm_http_server_free(s);
		return;
	}
	port = mdm_http_server_port(s);
	mdm_log_set_sink(capture_log, NULL);
	warned = 0;
	low = old;
	low.rlim_cur = (rlim_t)base + 16;
	setrlimit(RLIMIT_NOFILE, &low);
	/* Each connection costs a descriptor here and one in the server. */
	while (n < 64 && (fds[n] = connect_to(port, AF_INET)) != -1)
		n++;
	usleep(200000);
	c0 = cpu_ms();
	usleep(500000);
	c1 = cpu_ms();
	ok(n > 0 && n < 64, "descriptors ran out after %d connections", n);
	ok(c1 - c0 < 250, "no spinning while out of descriptors (%lld ms "
	    "CPU in 500 ms)", c1 - c0);
	ok(warned > 0 && warned < 5, "one warning, not a flood (%d)", warned);
	for (i = 0; i < n; i++)
		close(fds[i]);
	setrlimit(RLIMIT_NOFILE, &old);
	mdm_log_set_sink(NULL, NULL);
	is_int(exchange_str(port, "GET / HTTP/1.1\r\nHost: t\r\n"
	    "Connection: close\r\n\r\n", resp, sizeof(resp)), 200,
	    "accepting again once descriptors are free");
	mdm_http_server_free(s);
}

/* TLS: a self-signed server identity; the client offers one too. */
static int
make_identity(X509 **cert, EVP_PKEY **key, const char *cn)
{
	struct mdm_x509_opts o;
	struct mdm_err e;

	memset(&o, 0, sizeof(o));
	o.kind = MDM_X509_TLS_SERVER;
	o.common_name = cn;
	o.days = 1;
	return mdm_x509_gen_rsa(2048, key, &e) == 0 &&
	    mdm_x509_self_sign(*key, &o, cert, &e) == 0 ? 0 : -1;
}

static int
accept_any(int ok_, X509_STORE_CTX *ctx)
{
	(void)ok_;
	(void)ctx;
	return 1;
}

static int
tls_get(int port, X509 *cert, EVP_PKEY *key, char *resp, size_t cap)
{
	SSL_CTX *c;
	SSL *ssl = NULL;
	int fd, n, got = 0, status = -1;
	const char *req = "GET /tls HTTP/1.1\r\nHost: t\r\n"
	    "Connection: close\r\n\r\n";

	resp[0] = '\0';
	if ((c = SSL_CTX_new(TLS_client_method())) == NULL)
		return -1;
	if (cert != NULL) {
		SSL_CTX_use_certificate(c, cert);
		SSL_CTX_use_PrivateKey(c, key);
	}
	if ((fd = connect_to(port, AF_INET)) != -1 &&
	    (ssl = SSL_new(c)) != NULL && SSL_set_fd(ssl, fd) == 1 &&
	    SSL_connect(ssl) == 1 &&
	    SSL_write(ssl, req, (int)strlen(req)) > 0) {
		while ((size_t)got + 1 < cap &&
		    (n = SSL_read(ssl, resp + got, (int)(cap - 1 -
		    (size_t)got))) > 0)
			got += n;
		resp[got] = '\0';
		if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
			status = -1;
	}
	SSL_free(ssl);
	if (fd != -1)
		close(fd);
	SSL_CTX_free(c);
	ERR_clear_error();
	return status;
}

static void
test_tls(void)
{
	struct mdm_http_config cfg;
	struct mdm_http_server *s = NULL;
	struct mdm_err e = { 0 };
	X509 *scert = NULL, *ccert = NULL;
	EVP_PKEY *skey = NULL, *ckey = NULL;
	SSL_CTX *ctx;
	char resp[4096];
	int port;

	if (make_identity(&scert, &skey, "server") == -1 ||
	    make_identity(&ccert, &ckey, "client") == -1 ||
	    (ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tap_skip(4, "cannot make TLS identities");
		goto out;
	}
	SSL_CTX_use_certificate(ctx, scert);
	SSL_CTX_use_PrivateKey(ctx, skey);
	/* Ask for a certificate; a handler decides what it means. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any);
	memset(&cfg, 0, sizeof(cfg));
	cfg.handler = handler;
	cfg.listen = "127.0.0.1:0";
	cfg.threads = 2;
	cfg.ssl_ctx = ctx;
	ok(mdm_http_server_new(&cfg, &s, &e) == 0 &&
	    mdm_http_server_start(s, &e) == 0, "TLS server: %s", e.msg);
	if (s != NULL) {
		port = mdm_http_server_port(s);
		is_int(tls_get(port, NULL, NULL, resp, sizeof(resp)), 200,
		    "TLS request without a client certificate");
		ok(strstr(body_of(resp), "cert=no") != NULL,
		    "handler sees no peer certificate");
		is_int(tls_get(port, ccert, ckey, resp, sizeof(resp)), 200,
		    "TLS request with a client certificate");
		ok(strstr(body_of(resp), "cert=yes") != NULL,
		    "handler sees the peer certificate");
		is_int(exchange_str(port, "GET / HTTP/1.1\r\n\r\n", resp,
		    sizeof(resp)) > 0, 0, "plain HTTP on the TLS port gets "
		    "no HTTP answer");
	}
	mdm_http_server_free(s);
	SSL_CTX_free(ctx);
out:
	X509_free(scert);
	X509_free(ccert);
	EVP_PKEY_free(skey);
	EVP_PKEY_free(ckey);
}

int
main(void)
{
	test_parse_listen();
	test_basic();
	test_ipv6_and_any();
	test_port_in_use_and_init_failure();
	test_signals();
	test_emfile();
	test_tls();
	return tap_done();
}
