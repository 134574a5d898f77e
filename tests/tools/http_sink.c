/*
 * http_sink: the peer the tool tests point webhooks and DDM forwarding
 * at.  It records every request it gets into DIR as N.req (method, path,
 * then the headers, one per line) and N.body, numbered from 1 in arrival
 * order, and answers each with STATUS and BODY (from a file).
 *
 *   http_sink LISTEN PORTFILE DIR STATUS [BODYFILE]
 *
 * It stops on SIGTERM.  Built only with the tests; never installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http_server.h"

static const char *dir;
static int status;
static struct mdm_buf reply;
static unsigned long seq;

static const char *const recorded[] = {
	"Content-Type", "Content-Length", "X-Hmac-Signature", "X-Enrollment-ID",
	"User-Agent", NULL,
};

static void
handle(struct mdm_http_request *r, void *ctx, void *arg)
{
	const unsigned char *body;
	const char *v;
	char path[4096];
	size_t len, i;
	FILE *f;

	(void)ctx;
	(void)arg;
	seq++;
	body = mdm_http_request_body(r, &len);
	snprintf(path, sizeof(path), "%s/%lu.body", dir, seq);
	if ((f = fopen(path, "wb")) != NULL) {
		if (len > 0)
			fwrite(body, 1, len, f);
		fclose(f);
	}
	/* The .req file last: a test waiting for N.req finds N.body there. */
	snprintf(path, sizeof(path), "%s/%lu.req", dir, seq);
	if ((f = fopen(path, "w")) != NULL) {
		fprintf(f, "%s %s\n", mdm_http_request_method(r),
		    mdm_http_request_path(r));
		for (i = 0; recorded[i] != NULL; i++)
			if ((v = mdm_http_request_header(r, recorded[i])) !=
			    NULL)
				fprintf(f, "%s: %s\n", recorded[i], v);
		fclose(f);
	}
	mdm_http_reply(r, status, reply.len > 0 ? "application/json" : NULL,
	    reply.data, reply.len, NULL);
}

int
main(int argc, char **argv)
{
	struct mdm_http_config hc;
	struct mdm_http_server *srv = NULL;
	struct mdm_err e = { 0 };

	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: http_sink listen portfile dir status "
		    "[bodyfile]\n");
		return 64;
	}
	dir = argv[3];
	status = atoi(argv[4]);
	mdm_buf_init(&reply, 1 << 20);
	if (argc == 6 && mdm_buf_read_file(&reply, argv[5], &e) == -1)
		goto fail;
	memset(&hc, 0, sizeof(hc));
	hc.listen = argv[1];
	hc.threads = 1;
	hc.stop_on_signals = 1;
	hc.port_file = argv[2];
	hc.max_body = 16u << 20;
	hc.handler = handle;
	if (mdm_http_server_new(&hc, &srv, &e) == -1 ||
	    mdm_http_server_start(srv, &e) == -1)
		goto fail;
	mdm_http_server_wait(srv);
	mdm_http_server_free(srv);
	mdm_buf_release(&reply);
	return 0;
fail:
	fprintf(stderr, "http_sink: %s\n", e.msg);
	mdm_http_server_free(srv);
	mdm_buf_release(&reply);
	return 1;
}
