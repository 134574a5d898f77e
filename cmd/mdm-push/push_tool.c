#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apns.h"
#include "log.h"
#include "push.h"
#include "push_tool.h"
#include "state.h"
#include "state_queue.h"
#include "banned.h"

enum {
	OPT_PENDING = 256,
	OPT_STALE,
	OPT_APNS_URL,
	OPT_SANDBOX,
	OPT_APNS_CA,
	OPT_PRIORITY,
	OPT_EXPIRATION,
	OPT_MAX_STREAMS,
};

static const struct mdm_cli_opt push_opts[] = {
	{ "pending", 0, NULL, OPT_PENDING,
	    "push every enabled enrollment with queued commands" },
	{ "stale", 0, "duration", OPT_STALE,
	    "push every enabled enrollment not seen for this long" },
	{ "apns-url", 0, "url", OPT_APNS_URL,
	    "APNs server, https://host[:port] (default: "
	    "https://" MDM_APNS_HOST ")" },
	{ "sandbox", 0, NULL, OPT_SANDBOX,
	    "use the sandbox server " MDM_APNS_HOST_SANDBOX },
	{ "apns-ca", 0, "file", OPT_APNS_CA,
	    "trust this CA for the APNs server (default: the system's)" },
	{ "priority", 0, "5|10", OPT_PRIORITY,
	    "apns-priority (default: 10)" },
	{ "expiration", 0, "duration", OPT_EXPIRATION,
	    "keep the push this long for an offline device (default: 1d; "
	    "0: now or never)" },
	{ "max-streams", 0, "n", OPT_MAX_STREAMS,
	    "pushes in flight per topic at most (default: 1000)" },
	MDM_CLI_OPT_END
};

struct out {
	struct mdm_cli *cli;
	struct mdm_progress pg;
};

static int
print_rec(void *arg, const char *id, enum mdm_push_outcome o, int status,
    const char *reason, struct mdm_err *e)
{
	struct out *c = arg;
	struct mdm_cli_field f[4] = {
		MDM_CLI_FSTR("id", id),
		MDM_CLI_FSTR("outcome", mdm_push_outcome_name(o)),
		MDM_CLI_FINT("status", status),
		MDM_CLI_FSTR("reason", reason),
	};

	return mdm_cli_record(c->cli, f, 4, e);
}

static void
progress(void *arg, unsigned long long done, unsigned long long total)
{
	struct out *c = arg;

	if (c->pg.label == NULL)
		mdm_progress_start(&c->pg, c->cli, "pushing", total);
	mdm_progress_update(&c->pg, done);
}

static int
add_ids(struct mdm_cli *cli, struct mdm_push *p, int argc, char **argv,
    struct mdm_err *e)
{
	struct mdm_cli_ids ids;
	const char *id;
	int rc;

	mdm_cli_ids_init(&ids, cli, argc, argv);
	while ((rc = mdm_cli_ids_next(&ids, &id, e)) == 1)
		if (mdm_push_add(p, id, e) == -1) {
			rc = -1;
			break;
		}
	mdm_cli_ids_release(&ids);
	return rc;
}

static int
run(struct mdm_cli *cli, int argc, char **argv)
{
	struct mdm_push_config cfg;
	struct mdm_state_enroll_filter f;
	struct mdm_state *st = NULL;
	struct mdm_push *p = NULL;
	struct mdm_err e = { 0 };
	struct out c;
	char host[MDM_PUSH_HOST_MAX], port[MDM_PUSH_PORT_MAX];
	const char *arg, *url = NULL;
	long long v, stale = -1, expiration = 86400;
	int ch, pending = 0, sandbox = 0, rc;

	memset(&cfg, 0, sizeof(cfg));
	memset(&c, 0, sizeof(c));
	c.cli = cli;
	cfg.priority = 10;
	while ((ch = mdm_cli_getopt(cli, argc, argv, push_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_PENDING:
			pending = 1;
			break;
		case OPT_STALE:
			if (mdm_cli_parse_duration(arg, &stale, &e) == -1 ||
			    stale < 1)
				return mdm_cli_usage(cli, "--stale: '%s' is "
				    "not a positive duration", arg);
			break;
		case OPT_APNS_URL:
			url = arg;
			break;
		case OPT_SANDBOX:
			sandbox = 1;
			break;
		case OPT_APNS_CA:
			cfg.ca_file = arg;
			break;
		case OPT_PRIORITY:
			if (strcmp(arg, "5") != 0 && strcmp(arg, "10") != 0)
				return mdm_cli_usage(cli, "--priority: '%s' is "
				    "not 5 or 10", arg);
			cfg.priority = atoi(arg);
			break;
		case OPT_EXPIRATION:
			if (mdm_cli_parse_duration(arg, &expiration, &e) ==
			    -1 || expiration < 0 || expiration > 366 * 86400)
				return mdm_cli_usage(cli, "--expiration: '%s' "
				    "is not a duration up to 366d", arg);
			break;
		case OPT_MAX_STREAMS:
			if (mdm_cli_parse_int(arg, 1, 100000, &v, &e) == -1)
				return mdm_cli_usage(cli, "--max-streams: %s",
				    e.msg);
			cfg.max_streams = (unsigned)v;
			break;
		default:
			return cli->status;
		}
	}
	if (pending && stale != -1)
		return mdm_cli_usage(cli, "--pending and --stale exclude each "
		    "other");
	if ((pending || stale != -1) && cli->optind != argc)
		return mdm_cli_usage(cli, "--pending and --stale take no ids");
	if (mdm_push_server(url, sandbox, host, sizeof(host), port,
	    sizeof(port), &e) == -1)
		return mdm_cli_usage(cli, "%s", e.msg);
	cfg.host = host;
	cfg.port = port;
	cfg.expiration = expiration == 0 ? 0 :
	    (int64_t)time(NULL) + expiration;
	cfg.report = print_rec;
	cfg.progress = progress;
	cfg.arg = &c;

	if (mdm_state_open(mdm_cli_state_dir(cli), 0, &st, &e) == -1 ||
	    mdm_push_new(st, &cfg, &p, &e) == -1)
		goto fail;
	if (pending || stale != -1) {
		memset(&f, 0, sizeof(f));
		f.pending = pending;
		f.enabled = 1;
		if (stale != -1)
			f.seen_before = (int64_t)time(NULL) - stale;
		if (mdm_push_add_filter(p, &f, &e) == -1)
			goto fail;
	} else if (add_ids(cli, p, argc - cli->optind, argv + cli->optind,
	    &e) == -1)
		goto fail;
	rc = mdm_push_run(p, &e);
	mdm_progress_end(&c.pg);
	if (rc == -1)
		goto fail;
	rc = mdm_push_exit_status(mdm_push_stats(p));
	if (rc == MDM_EX_UNAVAILABLE)
		mdm_log_error("APNs at %s:%s could not be reached", host, port);
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	mdm_push_free(p);
	mdm_state_close(st);
	return rc;
}

const struct mdm_cli_tool mdm_push_tool = {
	.name = "mdm-push",
	.summary = "Wake enrolled devices through APNs so they check in",
	.synopsis = "[--pending | --stale duration] [--apns-url url | "
	    "--sandbox] [--apns-ca file] [--priority 5|10] "
	    "[--expiration duration] [--max-streams n] [id ...]",
	.opts = push_opts,
	.run = run,
};
