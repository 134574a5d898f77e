#include <sys/resource.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "file.h"
#include "http_server.h"
#include "log.h"
#include "scep.h"
#include "scep_http.h"
#include "scep_tool.h"
#include "state.h"
#include "x509.h"
#include "banned.h"

#define DEFAULT_CRL_DAYS 7
#define DEFAULT_RA_DAYS 730
#define DEFAULT_CHALLENGE_TTL "1h"
#define MAX_THREADS 64

enum {
	OPT_LISTEN = 256,
	OPT_THREADS,
	OPT_MAX_BODY,
	OPT_TIMEOUT,
	OPT_PORT_FILE,
	OPT_TTL,
	OPT_DAYS,
	OPT_REVOKED,
	OPT_EXPIRING,
	OPT_FORCE,
	OPT_OUTPUT = 'o',
};

static void
iso8601(time_t t, char out[32])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "%lld", (long long)t);
}

/*
 * Opens the state for a command; the CA must be there too, as every
 * command but list and challenge needs it and a state without it was
 * never set up for SCEP.
 */
static int
open_state(struct mdm_cli *cli, int need_ca, struct mdm_state **st,
    struct mdm_err *e)
{
	char cert[PATH_MAX], key[PATH_MAX];

	if (mdm_crypto_init(e) == -1 ||
	    mdm_state_open(mdm_cli_state_dir(cli), 0, st, e) == -1)
		return -1;
	if (!need_ca)
		return 0;
	if (mdm_state_path(*st, "ca/ca.pem", cert, sizeof(cert), e) == -1 ||
	    mdm_state_path(*st, "ca/ca.key", key, sizeof(key), e) == -1)
		return -1;
	if (!mdm_file_exists(cert) || !mdm_file_exists(key))
		return mdm_err_set(e, MDM_E_CONFIG, "%s has no CA (ca/ca.pem "
		    "and ca/ca.key): run 'mdm-certs init' first",
		    mdm_state_dir(*st));
	return 0;
}

/* ---- serve ---- */

struct serve_conf {
	const char *state_dir;
	struct mdm_scep_cli scep;
};

struct serve_ctx {
	struct mdm_state *st;
	struct mdm_scep *scep;
};

static void
serve_thread_fini(void *p, void *arg)
{
	struct serve_ctx *c = p;

	(void)arg;
	if (c == NULL)
		return;
	mdm_scep_free(c->scep);
	mdm_state_close(c->st);
	free(c);
}

static void *
serve_thread_init(int index, void *arg, struct mdm_err *e)
{
	struct serve_conf *conf = arg;
	struct serve_ctx *c;

	(void)index;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		return NULL;
	}
	if (mdm_state_open(conf->state_dir, 0, &c->st, e) == -1 ||
	    mdm_scep_new(c->st, &conf->scep.policy, &c->scep, e) == -1) {
		serve_thread_fini(c, arg);
		return NULL;
	}
	return c;
}

static void
serve_request(struct mdm_http_request *r, void *ctx, void *arg)
{
	struct serve_ctx *c = ctx;
	static const char text[] = "not found: SCEP is served at /scep\n";

	(void)arg;
	if (mdm_scep_http_path(mdm_http_request_path(r)))
		mdm_scep_http_handle(c->scep, r);
	else
		mdm_http_reply(r, 404, "text/plain; charset=utf-8", text,
		    sizeof(text) - 1, NULL);
}

static const struct mdm_cli_opt serve_opts[] = {
	{ "listen", 0, "addr:port", OPT_LISTEN,
	    "listen here (default: " MDM_SCEP_DEFAULT_LISTEN "; :PORT = "
	    "every address)" },
	MDM_SCEP_CLI_OPTS,
	{ "threads", 0, "n", OPT_THREADS,
	    "worker threads (default: the number of CPUs)" },
	{ "max-body", 0, "bytes", OPT_MAX_BODY,
	    "largest request body (default: 256k)" },
	{ "timeout", 0, "duration", OPT_TIMEOUT,
	    "close connections idle this long (default: 30s)" },
	{ "port-file", 0, "file", OPT_PORT_FILE,
	    "write the port to file once serving (for --listen ...:0)" },
	MDM_CLI_OPT_END
};

static int
cmd_serve(struct mdm_cli *cli, int argc, char **argv)
{
	struct serve_conf conf;
	struct mdm_http_config hc;
	struct mdm_http_server *srv = NULL;
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	const char *listen_addr = MDM_SCEP_DEFAULT_LISTEN;
	const char *port_file = NULL, *arg;
	long long timeout = 30, threads = 0;
	long long max_body = MDM_SCEP_MAX_MESSAGE;
	int ch, sig, rc = MDM_EX_OK;

	memset(&conf, 0, sizeof(conf));
	mdm_scep_cli_init(&conf.scep);
	while ((ch = mdm_cli_getopt(cli, argc, argv, serve_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (mdm_scep_cli_opt(&conf.scep, ch, arg, &e)) {
		case 1:
			continue;
		case -1:
			rc = mdm_cli_usage(cli, "%s", e.msg);
			goto out;
		}
		switch (ch) {
		case OPT_LISTEN:
			listen_addr = arg;
			break;
		case OPT_THREADS:
			if (mdm_cli_parse_int(arg, 1, MAX_THREADS, &threads,
			    &e) == -1) {
				rc = mdm_cli_usage(cli, "--threads: %s", e.msg);
				goto out;
			}
			break;
		case OPT_MAX_BODY:
			if (mdm_cli_parse_size(arg, 4096, MDM_SCEP_MAX_MESSAGE,
			    &max_body, &e) == -1) {
				rc = mdm_cli_usage(cli, "--max-body: %s",
				    e.msg);
				goto out;
			}
			break;
		case OPT_TIMEOUT:
			if (mdm_cli_parse_duration(arg, &timeout, &e) == -1 ||
			    timeout < 1 || timeout > 3600) {
				rc = mdm_cli_usage(cli, "--timeout: '%s' is "
				    "not a duration from 1s to 1h", arg);
				goto out;
			}
			break;
		case OPT_PORT_FILE:
			port_file = arg;
			break;
		default:
			rc = cli->status;
			goto out;
		}
	}
	if (cli->optind != argc) {
		rc = mdm_cli_usage(cli, "serve takes no operands");
		goto out;
	}
	if (mdm_scep_cli_finish(&conf.scep, &e) == -1) {
		rc = e.code == MDM_E_USAGE ? mdm_cli_usage(cli, "%s", e.msg) :
		    mdm_cli_fail(cli, &e);
		goto out;
	}
	/* A state that is not set up fails here, before the port opens. */
	if (open_state(cli, 1, &st, &e) == -1)
		goto fail;
	mdm_state_close(st);
	st = NULL;
	conf.state_dir = mdm_cli_state_dir(cli);

	memset(&hc, 0, sizeof(hc));
	hc.listen = listen_addr;
	hc.threads = (int)threads;
	hc.max_body = (size_t)max_body;
	hc.timeout_ms = (int)timeout * 1000;
	hc.stop_on_signals = 1;
	hc.port_file = port_file;
	hc.handler = serve_request;
	hc.thread_init = serve_thread_init;
	hc.thread_fini = serve_thread_fini;
	hc.arg = &conf;
	if (mdm_http_server_new(&hc, &srv, &e) == -1 ||
	    mdm_http_server_start(srv, &e) == -1)
		goto fail;

	mdm_log_info("listening on %s (SCEP at /scep, %d thread%s%s)",
	    mdm_http_server_address(srv), mdm_http_server_threads(srv),
	    mdm_http_server_threads(srv) > 1 ? "s" : "",
	    conf.scep.policy.static_challenge == NULL ? "; one-time "
	    "challenges only" : "");
	sig = mdm_http_server_wait(srv);
	mdm_log_info("stopped%s", sig == SIGTERM ? " (SIGTERM)" :
	    sig == SIGINT ? " (SIGINT)" : "");
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	mdm_http_server_free(srv);
	mdm_state_close(st);
	mdm_scep_cli_release(&conf.scep);
	return rc;
}

/* ---- challenge ---- */

static const struct mdm_cli_opt challenge_opts[] = {
	{ "ttl", 0, "duration", OPT_TTL,
	    "how long the challenge stays valid (default: 1h)" },
	MDM_CLI_OPT_END
};

static int
cmd_challenge(struct mdm_cli *cli, int argc, char **argv)
{
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	const char *arg;
	char chal[128];
	long long ttl;
	int ch, rc = MDM_EX_OK;

	mdm_cli_parse_duration(DEFAULT_CHALLENGE_TTL, &ttl, NULL);
	while ((ch = mdm_cli_getopt(cli, argc, argv, challenge_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_TTL:
			if (mdm_cli_parse_duration(arg, &ttl, &e) == -1)
				return mdm_cli_usage(cli, "--ttl: %s", e.msg);
			if (ttl < 1 || ttl > 366LL * 86400)
				return mdm_cli_usage(cli, "--ttl: '%s' is not "
				    "from 1s to 366d", arg);
			break;
		default:
			return cli->status;
		}
	}
	if (cli->optind != argc)
		return mdm_cli_usage(cli, "challenge takes no operands");
	if (open_state(cli, 1, &st, &e) == -1 ||
	    mdm_scep_challenge_new(st, ttl, chal, sizeof(chal), &e) == -1)
		goto fail;
	{
		struct mdm_cli_field f[1] = { MDM_CLI_FSTR("challenge", chal) };

		if (mdm_cli_record(cli, f, 1, &e) == -1)
			goto fail;
	}
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	OPENSSL_cleanse(chal, sizeof(chal));
	mdm_state_close(st);
	return rc;
}

/* ---- revoke ---- */

static const struct mdm_cli_opt no_opts[] = {
	MDM_CLI_OPT_END
};

static int
cmd_revoke(struct mdm_cli *cli, int argc, char **argv)
{
	struct mdm_cli_ids ids;
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	const char *arg, *serial;
	int ch, r, newly = 0, worst = MDM_EX_OK, rc;

	while ((ch = mdm_cli_getopt(cli, argc, argv, no_opts, &arg)) !=
	    MDM_CLI_DONE)
		return cli->status;
	mdm_cli_ids_init(&ids, cli, argc - cli->optind, argv + cli->optind);
	if (open_state(cli, 1, &st, &e) == -1)
		goto fail;
	while ((r = mdm_cli_ids_next(&ids, &serial, &e)) == 1) {
		struct mdm_cli_field f[2] = {
			MDM_CLI_FSTR("serial", serial),
			MDM_CLI_FSTR("status", NULL),
		};

		r = mdm_scep_revoke(st, serial, &e);
		if (r == -1 && (e.code == MDM_E_NOINPUT ||
		    e.code == MDM_E_USAGE || e.code == MDM_E_DATA)) {
			/* Say so and go on with the other serials. */
			mdm_log_error("%s", e.msg);
			r = e.code == MDM_E_NOINPUT ? MDM_EX_NOINPUT :
			    MDM_EX_DATAERR;
			if (worst == MDM_EX_OK || r == MDM_EX_NOINPUT)
				worst = r;
			continue;
		}
		if (r == -1)
			goto fail;
		if (r == 0)
			newly++;
		f[1].s = r == 1 ? "already-revoked" : "revoked";
		if (mdm_cli_record(cli, f, 2, &e) == -1)
			goto fail;
	}
	if (r == -1)
		goto fail;
	if (worst != MDM_EX_OK)
		rc = worst;
	else
		rc = newly > 0 ? MDM_EX_OK : MDM_EX_NO;
	goto out;
fail:
	/* From the ids: none given on a terminal. */
	rc = e.code == MDM_E_USAGE ? mdm_cli_usage(cli, "%s", e.msg) :
	    mdm_cli_fail(cli, &e);
out:
	mdm_cli_ids_release(&ids);
	mdm_state_close(st);
	return rc;
}

/* ---- crl ---- */

static const struct mdm_cli_opt crl_opts[] = {
	{ "output", 'o', "file", OPT_OUTPUT,
	    "write the CRL here, atomically (default: stdout)" },
	{ "days", 0, "n", OPT_DAYS,
	    "days until the CRL's nextUpdate (default: 7)" },
	MDM_CLI_OPT_END
};

static int
cmd_crl(struct mdm_cli *cli, int argc, char **argv)
{
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	struct mdm_buf der;
	const char *output = NULL, *arg;
	long long days = DEFAULT_CRL_DAYS;
	int ch, rc = MDM_EX_OK;

	while ((ch = mdm_cli_getopt(cli, argc, argv, crl_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_OUTPUT:
			output = arg;
			break;
		case OPT_DAYS:
			if (mdm_cli_parse_int(arg, 1, 3650, &days, &e) == -1)
				return mdm_cli_usage(cli, "--days: %s", e.msg);
			break;
		default:
			return cli->status;
		}
	}
	if (cli->optind != argc)
		return mdm_cli_usage(cli, "crl takes no operands");
	if ((output == NULL || strcmp(output, "-") == 0) && cli->stdout_tty)
		return mdm_cli_usage(cli, "refusing to write a binary CRL to "
		    "a terminal: use -o FILE or a redirection");

	mdm_buf_init(&der, MDM_CAP_CMS);
	if (open_state(cli, 1, &st, &e) == -1 ||
	    mdm_scep_crl(st, (int)days, &der, &e) == -1)
		goto fail;
	if (mdm_cli_write_output(output, der.data, der.len, &e) == -1)
		goto fail;
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	mdm_buf_release(&der);
	mdm_state_close(st);
	return rc;
}

/* ---- list ---- */

struct list_ctx {
	struct mdm_cli *cli;
	int revoked_only;
	long long within;	/* seconds, or -1 */
	time_t now;
	unsigned long matched;
};

static int
list_row(const struct mdm_cert_row *row, void *arg, struct mdm_err *e)
{
	struct list_ctx *c = arg;
	char not_after[32], revoked[32];
	struct mdm_cli_field f[5];

	if (c->revoked_only && row->revoked_at == 0)
		return 0;
	if (c->within >= 0 && (long long)row->not_after - (long long)c->now >
	    c->within)
		return 0;
	c->matched++;
	iso8601((time_t)row->not_after, not_after);
	if (row->revoked_at != 0)
		iso8601((time_t)row->revoked_at, revoked);
	f[0] = (struct mdm_cli_field)MDM_CLI_FSTR("serial", row->serial);
	f[1] = (struct mdm_cli_field)MDM_CLI_FSTR("subject", row->subject);
	f[2] = (struct mdm_cli_field)MDM_CLI_FSTR("not_after", not_after);
	f[3] = (struct mdm_cli_field)MDM_CLI_FSTR("revoked",
	    row->revoked_at != 0 ? revoked : NULL);
	f[4] = (struct mdm_cli_field)MDM_CLI_FSTR("sha256", row->sha256);
	return mdm_cli_record(c->cli, f, 5, e);
}

static const struct mdm_cli_opt list_opts[] = {
	{ "revoked", 0, NULL, OPT_REVOKED, "only revoked certificates" },
	{ "expiring-within", 0, "days", OPT_EXPIRING,
	    "only certificates that expire within this many days" },
	MDM_CLI_OPT_END
};

static int
cmd_list(struct mdm_cli *cli, int argc, char **argv)
{
	struct list_ctx c = { .cli = cli, .within = -1 };
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	const char *arg;
	long long days;
	int ch, rc;

	while ((ch = mdm_cli_getopt(cli, argc, argv, list_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_REVOKED:
			c.revoked_only = 1;
			break;
		case OPT_EXPIRING:
			if (mdm_cli_parse_int(arg, 0, 36500, &days, &e) == -1)
				return mdm_cli_usage(cli, "--expiring-within: "
				    "%s", e.msg);
			c.within = days * 86400;
			break;
		default:
			return cli->status;
		}
	}
	if (cli->optind != argc)
		return mdm_cli_usage(cli, "list takes no operands");
	c.now = time(NULL);
	if (open_state(cli, 0, &st, &e) == -1 ||
	    mdm_state_cert_foreach(st, list_row, &c, &e) == -1)
		rc = mdm_cli_fail(cli, &e);
	else if ((c.revoked_only || c.within >= 0) && c.matched == 0)
		rc = MDM_EX_NO;
	else
		rc = MDM_EX_OK;
	mdm_state_close(st);
	return rc;
}

/* ---- ra-init ---- */

static const struct mdm_cli_opt ra_opts[] = {
	{ "days", 0, "n", OPT_DAYS,
	    "validity of the RA certificate (default: 730; never past the "
	    "CA's)" },
	{ "force", 0, NULL, OPT_FORCE, "replace an RA that is already there" },
	MDM_CLI_OPT_END
};

static int
cmd_ra_init(struct mdm_cli *cli, int argc, char **argv)
{
	struct mdm_state *st = NULL;
	struct mdm_x509_info info;
	struct mdm_err e = { 0 };
	const char *arg;
	char path[PATH_MAX], not_after[32];
	long long days = DEFAULT_RA_DAYS;
	X509 *ra = NULL;
	int ch, force = 0, rc = MDM_EX_OK;

	while ((ch = mdm_cli_getopt(cli, argc, argv, ra_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_DAYS:
			if (mdm_cli_parse_int(arg, 1, 36500, &days, &e) == -1)
				return mdm_cli_usage(cli, "--days: %s", e.msg);
			break;
		case OPT_FORCE:
			force = 1;
			break;
		default:
			return cli->status;
		}
	}
	if (cli->optind != argc)
		return mdm_cli_usage(cli, "ra-init takes no operands");
	if (open_state(cli, 1, &st, &e) == -1 ||
	    mdm_scep_ra_init(st, (int)days, force, &ra, &e) == -1 ||
	    mdm_x509_inspect(ra, &info, &e) == -1 ||
	    mdm_state_path(st, MDM_SCEP_RA_CERT, path, sizeof(path), &e) == -1)
		goto fail;
	iso8601(info.not_after, not_after);
	{
		struct mdm_cli_field f[3] = {
			MDM_CLI_FSTR("path", path),
			MDM_CLI_FSTR("serial", info.serial),
			MDM_CLI_FSTR("not_after", not_after),
		};

		if (mdm_cli_record(cli, f, 3, &e) == -1)
			goto fail;
	}
	mdm_log_info("restart 'mdm-scep serve' to use the new RA");
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	X509_free(ra);
	mdm_state_close(st);
	return rc;
}

static const struct mdm_cli_cmd scep_cmds[] = {
	{ "serve", "[--listen addr:port] [--challenge secret | "
	    "--challenge-file file] [--validity-days n] [--min-key-bits n] "
	    "[--allow-subject regex] [--csr-verify-exec prog] [--threads n] "
	    "[--max-body bytes] [--timeout duration] [--port-file file]",
	    "serve SCEP over HTTP at /scep", serve_opts, cmd_serve },
	{ "challenge", "[--ttl duration]",
	    "print a new one-time challenge password", challenge_opts,
	    cmd_challenge },
	{ "revoke", "[serial ...]",
	    "revoke issued certificates by serial (operands or stdin)",
	    no_opts, cmd_revoke },
	{ "crl", "[-o file] [--days n]",
	    "write the CA's certificate revocation list (DER)", crl_opts,
	    cmd_crl },
	{ "list", "[--revoked] [--expiring-within days]",
	    "list the certificates the CA issued", list_opts, cmd_list },
	{ "ra-init", "[--days n] [--force]",
	    "make an RA certificate and key for the CA (ca/ra.pem, "
	    "ca/ra.key)", ra_opts, cmd_ra_init },
	{ NULL, NULL, NULL, NULL, NULL }
};

const struct mdm_cli_tool mdm_scep_tool = {
	.name = "mdm-scep",
	.summary = "The SCEP certificate authority of an MDM server (RFC "
	    "8894): serve enrollment and renewal over HTTP, hand out "
	    "one-time challenges, revoke, publish the CRL",
	.cmds = scep_cmds,
};
