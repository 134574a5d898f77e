/*
 * http_server: a small HTTP/1.1 server on libevent's evhttp, shared by
 * mdm-scep and mdm-serve.  It owns the listening socket, N worker threads
 * and the life cycle of every connection; the caller owns what a request
 * means, through one synchronous handler.
 *
 * Threads: each worker runs its own event_base and evhttp, and all of them
 * accept on the same listening socket (a dup of it each), so a worker that
 * is busy handling a request does not take new connections while the
 * others are idle.  A connection stays with the worker that accepted it.
 * Nothing in libevent is shared between threads, so no libevent locking is
 * needed.  Each worker gets a context from the caller's thread_init (for
 * instance its own database handle), made before any worker starts and
 * used by that worker only.
 *
 * Limits: a request body over max_body is answered 413 (before the body
 * is read, when Content-Length or "Expect: 100-continue" says so), headers
 * over max_headers and anything evhttp cannot parse get 400, and a
 * connection that sends or reads nothing for timeout_ms is closed.  A
 * worker that runs out of file descriptors stops accepting for 100 ms at
 * a time (with a warning) rather than spin on the listening socket.
 *
 * Stopping: mdm_http_server_stop is async-signal-safe and may be called
 * from any thread; the workers stop accepting, let replies already being
 * written finish (for at most timeout_ms), and return.  With
 * stop_on_signals, mdm_http_server_wait also stops on SIGINT and SIGTERM.
 * SIGPIPE is ignored process-wide once the server starts, as a peer that
 * hangs up must not kill it.
 *
 * TLS: with an SSL_CTX every connection is TLS (libevent's OpenSSL
 * bufferevents); a handler reads the client's certificate with
 * mdm_http_request_peer_cert.  The SSL_CTX is borrowed and must be set
 * up (certificate, key, verify mode) before the server starts.
 */
#ifndef MDM_HTTP_SERVER_H
#define MDM_HTTP_SERVER_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "err.h"

struct mdm_http_server;
/* One request, borrowed by the handler for the duration of the call. */
struct mdm_http_request;

/*
 * Called in a worker thread for each request.  It answers with
 * mdm_http_reply (once); a handler that returns without answering makes
 * the server answer 500.  ctx is this worker's context from thread_init,
 * arg the config's arg.  It must not block for long: the worker serves
 * no other connection meanwhile.
 */
typedef void mdm_http_handler_fn(struct mdm_http_request *req, void *ctx,
    void *arg);

#define MDM_HTTP_DEFAULT_MAX_BODY	(256u << 10)
#define MDM_HTTP_DEFAULT_MAX_HEADERS	(64u << 10)
#define MDM_HTTP_DEFAULT_TIMEOUT_MS	30000
#define MDM_HTTP_MAX_THREADS		256

struct mdm_http_config {
	/*
	 * "HOST:PORT": "127.0.0.1:8080", "[::1]:8080", "localhost:8080"
	 * (the first address the name resolves to), ":8080" (every address,
	 * IPv6 and IPv4).  Port 0 picks a free port: read it back with
	 * mdm_http_server_port.  Borrowed for mdm_http_server_new only.
	 */
	const char *listen;
	int threads;			/* 1..MDM_HTTP_MAX_THREADS; 0 = one
					   per CPU, at most 64 */
	size_t max_body;		/* 0 = MDM_HTTP_DEFAULT_MAX_BODY */
	size_t max_headers;		/* 0 = MDM_HTTP_DEFAULT_MAX_HEADERS */
	int timeout_ms;			/* 0 = MDM_HTTP_DEFAULT_TIMEOUT_MS */
	SSL_CTX *ssl_ctx;		/* NULL = plain HTTP; borrowed */
	int stop_on_signals;		/* SIGINT/SIGTERM stop the server */
	/*
	 * Optional: mdm_http_server_start writes the port bound and a
	 * newline there (atomically, 0644) once the workers serve, so a
	 * script that asked for port 0 knows when and where to connect.
	 */
	const char *port_file;
	mdm_http_handler_fn *handler;	/* required */
	/*
	 * Optional.  thread_init makes the context of worker `index`
	 * (0..threads-1); it returns NULL with e filled to make
	 * mdm_http_server_start fail.  thread_fini frees one; it is called
	 * for each context thread_init made, after the workers have ended.
	 * Both run in the thread that calls start and free.
	 */
	void *(*thread_init)(int index, void *arg, struct mdm_err *e);
	void (*thread_fini)(void *ctx, void *arg);
	void *arg;
};

/*
 * Resolves cfg->listen, binds and listens, so the port is known (and
 * connections queue) before the workers start.  Every idle client holds a
 * descriptor until it times out, so the process's soft limit on open
 * files is raised to its hard limit here.  A malformed address is
 * MDM_E_USAGE, one that does not resolve MDM_E_CONFIG, a port in use or
 * not ours to bind MDM_E_UNAVAILABLE / MDM_E_PERM.  cfg is copied (its
 * pointers are borrowed and must outlive the server).  *out is owned:
 * mdm_http_server_free it.
 */
int mdm_http_server_new(const struct mdm_http_config *cfg,
    struct mdm_http_server **out, struct mdm_err *e);

/* The port bound, and "ADDR:PORT" ("[::1]:8080" for IPv6); borrowed. */
int mdm_http_server_port(const struct mdm_http_server *s);
/* The number of worker threads (threads 0 resolved). */
int mdm_http_server_threads(const struct mdm_http_server *s);
const char *mdm_http_server_address(const struct mdm_http_server *s);

/*
 * Makes the worker contexts, then starts the workers and returns: the
 * server is serving.  On failure the server is stopped (workers already
 * started end) and mdm_http_server_free frees the contexts made.  Call at
 * most once.
 */
int mdm_http_server_start(struct mdm_http_server *s, struct mdm_err *e);

/* Async-signal-safe; any thread; any number of times. */
void mdm_http_server_stop(struct mdm_http_server *s);

/*
 * Blocks until the server has stopped (mdm_http_server_stop, or a signal
 * with stop_on_signals) and every worker has ended.  Returns the signal
 * number that stopped it, or 0.
 */
int mdm_http_server_wait(struct mdm_http_server *s);

/* Stops and waits if needed, frees contexts and the server; s may be NULL. */
void mdm_http_server_free(struct mdm_http_server *s);

/* Splits "HOST:PORT" as the listen address does (host "" = any). */
int mdm_http_parse_listen(const char *addr, char *host, size_t hostlen,
    int *port, struct mdm_err *e);

/*
 * The request.  Every pointer returned is borrowed and lives until the
 * handler returns.
 */
/* "GET", "POST", "HEAD", "PUT", ... */
const char *mdm_http_request_method(const struct mdm_http_request *r);
/* The path as sent, not %-decoded, without the query: "/scep". */
const char *mdm_http_request_path(const struct mdm_http_request *r);
/* The raw query string after '?', or NULL. */
const char *mdm_http_request_query(const struct mdm_http_request *r);
/*
 * The first query parameter called name, %XX-decoded; NULL when absent.
 * '+' is left as '+' (it is not decoded to a space: SCEP clients send
 * base64 with unescaped '+'), and a %00 stays as the three characters,
 * so the value is always a whole C string.
 */
const char *mdm_http_request_param(struct mdm_http_request *r,
    const char *name);
/* A request header (case-insensitive name), or NULL. */
const char *mdm_http_request_header(const struct mdm_http_request *r,
    const char *name);
/* The body (never more than max_body bytes); NULL with *len 0 if none. */
const unsigned char *mdm_http_request_body(struct mdm_http_request *r,
    size_t *len);
/* The peer's address without the port, e.g. "127.0.0.1"; "" if unknown. */
const char *mdm_http_request_peer(const struct mdm_http_request *r);
/* The client certificate of a TLS connection, or NULL. */
X509 *mdm_http_request_peer_cert(const struct mdm_http_request *r);
/* The worker that runs this handler, 0..threads-1. */
int mdm_http_request_thread(const struct mdm_http_request *r);

/*
 * Adds a response header; call before mdm_http_reply.  Names and values
 * holding CR or LF are refused (MDM_E_USAGE).
 */
int mdm_http_add_header(struct mdm_http_request *r, const char *name,
    const char *value, struct mdm_err *e);
/*
 * Sends the response: status (100..599), Content-Type (may be NULL) and
 * len bytes of body (copied).  A second reply to one request is refused
 * (MDM_E_USAGE).
 */
int mdm_http_reply(struct mdm_http_request *r, int status,
    const char *content_type, const void *body, size_t len,
    struct mdm_err *e);

#endif
