#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <plist/plist.h>

#include "buf.h"
#include "apns.h"
#include "cli.h"
#include "json.h"
#include "log.h"
#include "plist.h"
#include "push.h"
#include "queue.h"
#include "queue_tool.h"
#include "state.h"
#include "state_queue.h"
#include "state_webhook.h"
#include "x509.h"
#include "banned.h"

/* Ids read for one enqueue: a fleet, with room to spare. */
#define MAX_IDS		5000000
#define MAX_QUERIES	128
#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

enum {
	OPT_PLIST = 256,
	OPT_PROFILE,
	OPT_IDENTIFIER,
	OPT_QUERY,
	OPT_MANAGED_ONLY,
	OPT_PIN,
	OPT_MESSAGE,
	OPT_PHONE,
	OPT_ITUNES,
	OPT_MANIFEST,
	OPT_MGMT_FLAGS,
	OPT_PRODUCT_KEY,
	OPT_PRODUCT_VERSION,
	OPT_INSTALL_ACTION,
	OPT_DEVICE_NAME,
	OPT_HOST_NAME,
	OPT_DATA,
	OPT_NOTIFY_USER,
	OPT_UUID,
	OPT_SKIP_UNKNOWN,
	OPT_IDS,
	OPT_PUSH,
	OPT_APNS_URL,
	OPT_APNS_CA,
	OPT_SANDBOX,
	OPT_ALL,
	OPT_STATUS,
	OPT_COMMAND,
	OPT_RAW,
	OPT_OLDER_THAN,
	OPT_VACUUM,
};

static int
open_state(struct mdm_cli *cli, struct mdm_state **st, struct mdm_err *e)
{
	return mdm_state_open(mdm_cli_state_dir(cli), 0, st, e);
}

/* ISO 8601 UTC, or NULL for 0 (prints empty, or null in JSON). */
static const char *
iso8601(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return NULL;
	return out;
}

/* ---- ids ---- */

/* Every id from operands or stdin (see mdm_cli_ids), before any work. */
static int
read_ids(struct mdm_cli *cli, int argc, char **argv, struct mdm_queue_ids *l,
    struct mdm_err *e)
{
	struct mdm_cli_ids it;
	const char *id;
	int rc;

	mdm_cli_ids_init(&it, cli, argc, argv);
	while ((rc = mdm_cli_ids_next(&it, &id, e)) == 1)
		if (mdm_queue_ids_add(l, id, MAX_IDS, e) == -1) {
			rc = -1;
			break;
		}
	mdm_cli_ids_release(&it);
	return rc;
}

/*
 * Ids for list and results: the operands; "-" reads stdin; none means
 * every enrollment (l->n == 0), whatever stdin is, so a bare command in
 * cron shows everything.
 */
static int
filter_ids(struct mdm_cli *cli, int argc, char **argv, struct mdm_queue_ids *l,
    struct mdm_err *e)
{
	if (argc == 0)
		return 0;
	return read_ids(cli, argc, argv, l, e);
}

/* ---- enqueue ---- */

static const struct mdm_cli_opt enqueue_opts[] = {
	{ "plist", 0, "file", OPT_PLIST,
	    "queue this command plist as it is (no TYPE)" },
	{ "profile", 0, "file", OPT_PROFILE,
	    "InstallProfile: the .mobileconfig, signed or not" },
	{ "identifier", 0, "id", OPT_IDENTIFIER,
	    "RemoveProfile: the profile's PayloadIdentifier; "
	    "InstallApplication: the app's bundle id" },
	{ "query", 0, "name", OPT_QUERY,
	    "DeviceInformation: a query (repeat; default: a common set)" },
	{ "managed-only", 0, NULL, OPT_MANAGED_ONLY,
	    "ProfileList, CertificateList, InstalledApplicationList: "
	    "managed items only" },
	{ "pin", 0, "pin", OPT_PIN, "DeviceLock, EraseDevice: six-digit PIN" },
	{ "message", 0, "text", OPT_MESSAGE, "DeviceLock: lock screen message" },
	{ "phone-number", 0, "number", OPT_PHONE,
	    "DeviceLock: lock screen phone number" },
	{ "itunes-store-id", 0, "n", OPT_ITUNES,
	    "InstallApplication: App Store id" },
	{ "manifest-url", 0, "url", OPT_MANIFEST,
	    "InstallApplication, InstallEnterpriseApplication: manifest URL" },
	{ "management-flags", 0, "n", OPT_MGMT_FLAGS,
	    "InstallApplication, InstallEnterpriseApplication: ManagementFlags" },
	{ "product-key", 0, "key", OPT_PRODUCT_KEY,
	    "ScheduleOSUpdate: the update's product key" },
	{ "product-version", 0, "version", OPT_PRODUCT_VERSION,
	    "ScheduleOSUpdate: the OS version to install" },
	{ "install-action", 0, "action", OPT_INSTALL_ACTION,
	    "ScheduleOSUpdate: Default, DownloadOnly, InstallASAP, ..." },
	{ "device-name", 0, "name", OPT_DEVICE_NAME,
	    "Settings: rename the device" },
	{ "host-name", 0, "name", OPT_HOST_NAME,
	    "Settings: set the host name (macOS)" },
	{ "data", 0, "file", OPT_DATA,
	    "DeclarativeManagement: the JSON for its Data key" },
	{ "notify-user", 0, NULL, OPT_NOTIFY_USER,
	    "RestartDevice: let the user save work first (macOS)" },
	{ "uuid", 0, "uuid", OPT_UUID,
	    "use this CommandUUID instead of a new one" },
	{ "skip-unknown", 0, NULL, OPT_SKIP_UNKNOWN,
	    "queue for the known ids and report the others" },
	{ "ids", 0, NULL, OPT_IDS,
	    "print each enrollment id queued (for mdm-push) instead of the "
	    "UUID" },
	{ "push", 0, NULL, OPT_PUSH,
	    "then wake the enrollments queued for through APNs, as mdm-push" },
	{ "apns-url", 0, "url", OPT_APNS_URL,
	    "with --push: APNs server, https://host[:port] (default: "
	    "https://" MDM_APNS_HOST ")" },
	{ "apns-ca", 0, "file", OPT_APNS_CA,
	    "with --push: trust this CA for the APNs server (default: the "
	    "system's)" },
	{ "sandbox", 0, NULL, OPT_SANDBOX,
	    "with --push: use the sandbox server " MDM_APNS_HOST_SANDBOX },
	MDM_CLI_OPT_END
};

struct enq_ctx {
	struct mdm_cli *cli;
	const char *uuid;
	int print_ids;
	struct mdm_queue_ids *topush;	/* NULL without --push */
	size_t unknown;
	int failed;
};

static int
enq_report(const char *given, const char *id,
    enum mdm_state_enqueue_outcome o, void *arg, struct mdm_err *e)
{
	struct enq_ctx *c = arg;

	switch (o) {
	case MDM_STATE_ENQ_UNKNOWN:
		mdm_log_error("%s: no such enrollment", given);
		return 0;
	case MDM_STATE_ENQ_AMBIGUOUS:
		mdm_log_error("%s: serial number of several enrollments; name "
		    "one by its enrollment id", given);
		return 0;
	case MDM_STATE_ENQ_DUPLICATE:
		mdm_log_debug("%s: already has command %s", given, c->uuid);
		break;
	case MDM_STATE_ENQ_QUEUED:
		break;
	}
	if (c->topush != NULL &&
	    mdm_queue_ids_add(c->topush, id, MAX_IDS, e) == -1)
		return -1;
	if (c->print_ids) {
		struct mdm_cli_field f[2] = {
			MDM_CLI_FSTR("id", id),
			MDM_CLI_FSTR("command_uuid", c->uuid),
		};

		return mdm_cli_record(c->cli, f, c->cli->json ? 2 : 1, e);
	}
	return 0;
}

static int
print_summary(struct mdm_cli *cli, const struct mdm_queue_cmd *cmd,
    const struct mdm_state_enqueue_stats *s, struct mdm_err *e)
{
	struct mdm_cli_field f[] = {
		MDM_CLI_FSTR("command_uuid", cmd->uuid),
		MDM_CLI_FSTR("request_type", cmd->request_type),
		MDM_CLI_FINT("queued", (long long)s->queued),
		MDM_CLI_FINT("duplicate", (long long)s->duplicate),
		MDM_CLI_FINT("superseded", (long long)s->superseded),
		MDM_CLI_FINT("unknown", (long long)s->unknown),
	};

	return mdm_cli_record(cli, f, cli->json ? NITEMS(f) : 1, e);
}

/*
 * Queues cmd for ids; *queued counts rows queued or already there, and
 * topush (when not NULL) gets their enrollment ids.
 */
static int
enqueue_one(struct mdm_cli *cli, struct mdm_state *st,
    const struct mdm_queue_cmd *cmd, const struct mdm_queue_ids *ids,
    int skip, int print_ids, struct mdm_queue_ids *topush, size_t *queued,
    struct mdm_err *e)
{
	struct mdm_state_enqueue_stats s;
	struct enq_ctx c = { 0 };

	c.cli = cli;
	c.uuid = cmd->uuid;
	c.print_ids = print_ids;
	c.topush = topush;
	if (mdm_state_queue_enqueue(st, cmd, (const char *const *)ids->v,
	    ids->n, skip ? MDM_STATE_ENQ_SKIP_UNKNOWN : 0, enq_report, &c, &s,
	    e) == -1)
		return -1;
	if (s.superseded > 0)
		mdm_log_info("%zu queued profile command%s superseded by %s",
		    s.superseded, s.superseded == 1 ? "" : "s", cmd->uuid);
	if (s.disabled > 0)
		mdm_log_warn("%zu of the enrollments %s not enabled (checked "
		    "out, or waiting for a TokenUpdate): queued anyway",
		    s.disabled, s.disabled == 1 ? "is" : "are");
	mdm_log_debug("%s: %zu queued, %zu already had it, %zu unknown",
	    cmd->uuid, s.queued, s.duplicate, s.unknown);
	*queued += s.queued + s.duplicate;
	if (s.queued + s.duplicate == 0)
		return 0;
	if (!print_ids && print_summary(cli, cmd, &s, e) == -1)
		return -1;
	return 0;
}

/* ClearPasscode carries each device's own UnlockToken: one command each. */
static int
enqueue_clear_passcode(struct mdm_cli *cli, struct mdm_state *st,
    struct mdm_queue_build *b, const struct mdm_queue_ids *ids, int skip,
    int print_ids, struct mdm_queue_ids *topush, size_t *queued,
    struct mdm_err *e)
{
	struct mdm_state_enrollment en;
	struct mdm_queue_cmd cmd;
	struct mdm_queue_ids one = { 0 };
	plist_t p = NULL;
	size_t i;
	int rc, failed = 0;

	for (i = 0; i < ids->n; i++) {
		if (mdm_state_enroll_get(st, ids->v[i], &en, e) == -1) {
			if (e->code != MDM_E_NOINPUT && e->code != MDM_E_DATA)
				return -1;
			mdm_log_error("%s", e->msg);
			failed = 1;
			continue;
		}
		if (en.unlock_token == NULL) {
			mdm_log_error("%s: no UnlockToken stored (the device "
			    "never sent one)", ids->v[i]);
			mdm_state_enrollment_release(&en);
			failed = 1;
			continue;
		}
		b->unlock_token = en.unlock_token;
		b->unlock_token_len = en.unlock_token_len;
		rc = mdm_queue_build(b, &p, e);
		if (rc == 0)
			rc = mdm_queue_cmd_from_plist(p, &cmd, e);
		plist_free(p);
		p = NULL;
		if (rc == 0) {
			one.v = &ids->v[i];
			one.n = 1;
			rc = enqueue_one(cli, st, &cmd, &one, 0, print_ids,
			    topush, queued, e);
			mdm_queue_cmd_release(&cmd);
		}
		b->unlock_token = NULL;
		mdm_state_enrollment_release(&en);
		if (rc == -1)
			return -1;
	}
	if (failed && !skip)
		return mdm_err_set(e, MDM_E_NOINPUT, "ClearPasscode was not "
		    "queued for every enrollment");
	return 0;
}

/* ---- enqueue --push ---- */

/* An mdm-push run over what was queued, told on stderr: data stays pure. */
struct push_ctx {
	struct mdm_cli *cli;
	struct mdm_progress pg;
};

static int
push_warn(void *arg, const char *id, enum mdm_push_outcome o, int status,
    const char *reason, struct mdm_err *e)
{
	(void)arg;
	(void)e;
	if (o == MDM_PUSH_OK)
		return 0;
	if (status != 0)
		mdm_log_warn("%s: push %s: %d %s", id, mdm_push_outcome_name(o),
		    status, reason);
	else
		mdm_log_warn("%s: push %s%s%s", id, mdm_push_outcome_name(o),
		    reason[0] != '\0' ? ": " : "", reason);
	return 0;
}

static void
push_progress(void *arg, unsigned long long done, unsigned long long total)
{
	struct push_ctx *c = arg;

	if (c->pg.label == NULL)
		mdm_progress_start(&c->pg, c->cli, "pushing", total);
	mdm_progress_update(&c->pg, done);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "pushed 3: 2 ok, 1 token-dead" */
static void
push_summary(const struct mdm_push_stats *s)
{
	char line[512];
	size_t i, total = 0;
	int len = 0;

	for (i = 0; i < MDM_PUSH_NOUTCOMES; i++)
		total += s->n[i];
	for (i = 0; i < MDM_PUSH_NOUTCOMES; i++) {
		if (s->n[i] == 0)
			continue;
		len += snprintf(line + len, sizeof(line) - (size_t)len,
		    "%s%zu %s", len > 0 ? ", " : "", s->n[i],
		    mdm_push_outcome_name((enum mdm_push_outcome)i));
		if (len < 0 || (size_t)len >= sizeof(line))
			break;
	}
	mdm_log_info("pushed %zu: %s", total, len > 0 ? line : "nothing");
}

/*
 * Pushes the enrollment ids queued for (each once) as mdm-push would;
 * *status is mdm-push's exit status.  cfg's report, progress and arg are
 * filled here.
 */
static int
push_queued(struct mdm_cli *cli, struct mdm_state *st,
    struct mdm_push_config *cfg, struct mdm_queue_ids *ids, int *status,
    struct mdm_err *e)
{
	struct mdm_push *p = NULL;
	struct push_ctx c;
	size_t i;
	int rc = -1;

	/* The queue records first, for a reader downstream: pushing can
	   take seconds of retries. */
	fflush(stdout);
	memset(&c, 0, sizeof(c));
	c.cli = cli;
	cfg->report = push_warn;
	cfg->progress = push_progress;
	cfg->arg = &c;
	/* One id may have been named twice, by UDID and by serial. */
	qsort(ids->v, ids->n, sizeof(*ids->v), cmp_str);
	if (mdm_push_new(st, cfg, &p, e) == -1)
		goto out;
	for (i = 0; i < ids->n; i++)
		if ((i == 0 || strcmp(ids->v[i - 1], ids->v[i]) != 0) &&
		    mdm_push_add(p, ids->v[i], e) == -1)
			goto out;
	rc = mdm_push_run(p, e);
	mdm_progress_end(&c.pg);
	if (rc == -1)
		goto out;
	push_summary(mdm_push_stats(p));
	*status = mdm_push_exit_status(mdm_push_stats(p));
	if (*status == MDM_EX_UNAVAILABLE)
		mdm_log_error("APNs at %s:%s could not be reached", cfg->host,
		    cfg->port);
out:
	mdm_push_free(p);
	return rc;
}

static int
cmd_enqueue(struct mdm_cli *cli, int argc, char **argv)
{
	const char *queries[MAX_QUERIES];
	struct mdm_queue_build b;
	struct mdm_queue_cmd cmd = { 0 };
	struct mdm_buf profile, data;
	struct mdm_state *st = NULL;
	struct mdm_queue_ids ids = { 0 }, topush = { 0 };
	struct mdm_push_config pcfg;
	struct mdm_err e = { 0 };
	const char *plist_file = NULL, *profile_file = NULL, *data_file = NULL;
	const char *arg, *url = NULL;
	char host[MDM_PUSH_HOST_MAX], port[MDM_PUSH_PORT_MAX];
	long long v;
	plist_t p = NULL;
	size_t queued = 0;
	int ch, skip = 0, print_ids = 0, type_opts = 0, nops, rc = MDM_EX_OK;
	int clear_passcode, push = 0, sandbox = 0, pst;

	memset(&b, 0, sizeof(b));
	memset(&pcfg, 0, sizeof(pcfg));
	mdm_buf_init(&profile, MDM_QUEUE_PROFILE_MAX);
	mdm_buf_init(&data, MDM_CAP_JSON);
	while ((ch = mdm_cli_getopt(cli, argc, argv, enqueue_opts, &arg)) !=
	    MDM_CLI_DONE) {
		if (ch != OPT_PLIST && ch != OPT_UUID && ch != OPT_SKIP_UNKNOWN &&
		    ch != OPT_IDS && ch != OPT_PUSH && ch != OPT_APNS_URL &&
		    ch != OPT_APNS_CA && ch != OPT_SANDBOX && ch != MDM_CLI_EXIT)
			type_opts++;
		switch (ch) {
		case OPT_PLIST:
			plist_file = arg;
			break;
		case OPT_PROFILE:
			profile_file = arg;
			break;
		case OPT_IDENTIFIER:
			b.identifier = arg;
			break;
		case OPT_QUERY:
			if (b.nqueries == MAX_QUERIES)
				return mdm_cli_usage(cli, "more than %d "
				    "queries", MAX_QUERIES);
			queries[b.nqueries++] = arg;
			b.queries = queries;
			break;
		case OPT_MANAGED_ONLY:
			b.managed_only = 1;
			break;
		case OPT_PIN:
			b.pin = arg;
			break;
		case OPT_MESSAGE:
			b.message = arg;
			break;
		case OPT_PHONE:
			b.phone_number = arg;
			break;
		case OPT_ITUNES:
			if (mdm_cli_parse_int(arg, 1, INT64_MAX, &v, &e) == -1)
				return mdm_cli_usage(cli, "--itunes-store-id: "
				    "%s", e.msg);
			b.itunes_store_id = v;
			break;
		case OPT_MANIFEST:
			b.manifest_url = arg;
			break;
		case OPT_MGMT_FLAGS:
			if (mdm_cli_parse_int(arg, 1, 0xffff, &v, &e) == -1)
				return mdm_cli_usage(cli, "--management-flags: "
				    "%s", e.msg);
			b.management_flags = v;
			break;
		case OPT_PRODUCT_KEY:
			b.product_key = arg;
			break;
		case OPT_PRODUCT_VERSION:
			b.product_version = arg;
			break;
		case OPT_INSTALL_ACTION:
			b.install_action = arg;
			break;
		case OPT_DEVICE_NAME:
			b.device_name = arg;
			break;
		case OPT_HOST_NAME:
			b.host_name = arg;
			break;
		case OPT_DATA:
			data_file = arg;
			break;
		case OPT_NOTIFY_USER:
			b.notify_user = 1;
			break;
		case OPT_UUID:
			b.uuid = arg;
			break;
		case OPT_SKIP_UNKNOWN:
			skip = 1;
			break;
		case OPT_IDS:
			print_ids = 1;
			break;
		case OPT_PUSH:
			push = 1;
			break;
		case OPT_APNS_URL:
			url = arg;
			break;
		case OPT_APNS_CA:
			pcfg.ca_file = arg;
			break;
		case OPT_SANDBOX:
			sandbox = 1;
			break;
		default:
			return cli->status;
		}
	}
	if (!push && (url != NULL || pcfg.ca_file != NULL || sandbox))
		return mdm_cli_usage(cli, "--apns-url, --apns-ca and --sandbox "
		    "go with --push");
	if (mdm_push_server(url, sandbox, host, sizeof(host), port,
	    sizeof(port), &e) == -1)
		return mdm_cli_usage(cli, "%s", e.msg);
	pcfg.host = host;
	pcfg.port = port;
	nops = argc - cli->optind;
	if (plist_file != NULL) {
		if (type_opts > 0)
			return mdm_cli_usage(cli, "--plist takes the command "
			    "as it is: no TYPE options");
	} else {
		if (nops < 1)
			return mdm_cli_usage(cli, "enqueue needs a command "
			    "TYPE or --plist FILE");
		b.request_type = argv[cli->optind];
		cli->optind++;
		nops--;
	}
	/* Stdin can hold the ids or a file, not both. */
	if (nops == 0 && ((plist_file && strcmp(plist_file, "-") == 0) ||
	    (profile_file && strcmp(profile_file, "-") == 0) ||
	    (data_file && strcmp(data_file, "-") == 0)))
		return mdm_cli_usage(cli, "standard input cannot hold both a "
		    "file and the ids: name the ids as operands");
	clear_passcode = b.request_type != NULL &&
	    strcasecmp(b.request_type, "ClearPasscode") == 0;
	if (clear_passcode && b.uuid != NULL)
		return mdm_cli_usage(cli, "ClearPasscode makes one command per "
		    "enrollment: --uuid cannot be used");

	/* The command is checked before any id is read or state opened. */
	if (mdm_crypto_init(&e) == -1)
		goto fail;
	if (plist_file != NULL) {
		if (mdm_plist_parse_file(plist_file, &p, &e) == -1)
			goto fail;
		if (mdm_queue_cmd_from_plist(p, &cmd, &e) == -1) {
			mdm_err_prefix(&e, "%s", plist_file);
			goto fail;
		}
		if (b.uuid != NULL) {
			if (mdm_queue_uuid_check(b.uuid, &e) == -1) {
				rc = mdm_cli_usage(cli, "--uuid: %s", e.msg);
				goto out;
			}
			snprintf(cmd.uuid, sizeof(cmd.uuid), "%s", b.uuid);
		}
	} else {
		if (profile_file != NULL) {
			if (mdm_buf_read_file(&profile, profile_file, &e) == -1)
				goto fail;
			b.profile = profile.data;
			b.profile_len = profile.len;
			if (profile.len == 0) {
				mdm_err_set(&e, MDM_E_DATA, "%s: empty file",
				    profile_file);
				goto fail;
			}
		}
		if (data_file != NULL) {
			if (mdm_buf_read_file(&data, data_file, &e) == -1)
				goto fail;
			b.data = data.data ? data.data :
			    (const unsigned char *)"";
			b.data_len = data.len;
		}
		if (clear_passcode) {
			/* Checked per enrollment; the rest now. */
			b.unlock_token = (const unsigned char *)"";
			b.unlock_token_len = 0;
		}
		if (mdm_queue_build(&b, &p, &e) == -1) {
			if (e.code == MDM_E_USAGE) {
				rc = mdm_cli_usage(cli, "%s", e.msg);
				goto out;
			}
			if (profile_file != NULL)
				mdm_err_prefix(&e, "%s", profile_file);
			goto fail;
		}
		b.unlock_token = NULL;
		if (!clear_passcode &&
		    mdm_queue_cmd_from_plist(p, &cmd, &e) == -1)
			goto fail;
	}

	if (read_ids(cli, nops, argv + cli->optind, &ids, &e) == -1)
		goto fail;
	if (ids.n == 0) {
		mdm_err_set(&e, MDM_E_USAGE, "no enrollment ids given");
		rc = mdm_cli_usage(cli, "%s", e.msg);
		goto out;
	}
	if (open_state(cli, &st, &e) == -1)
		goto fail;
	if (clear_passcode) {
		if (enqueue_clear_passcode(cli, st, &b, &ids, skip, print_ids,
		    push ? &topush : NULL, &queued, &e) == -1)
			goto fail;
	} else if (enqueue_one(cli, st, &cmd, &ids, skip, print_ids,
	    push ? &topush : NULL, &queued, &e) == -1)
		goto fail;
	if (queued == 0)
		rc = MDM_EX_NO;
	if (topush.n > 0) {
		/* The default of mdm-push: a day for an offline device. */
		pcfg.expiration = (int64_t)time(NULL) + 86400;
		if (push_queued(cli, st, &pcfg, &topush, &pst, &e) == -1)
			goto fail;
		if (pst != MDM_EX_OK)
			rc = pst;
	}
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	plist_free(p);
	mdm_queue_cmd_release(&cmd);
	mdm_buf_release(&profile);
	mdm_buf_release(&data);
	mdm_queue_ids_release(&ids);
	mdm_queue_ids_release(&topush);
	mdm_state_close(st);
	return rc;
}

/* ---- list ---- */

static const struct mdm_cli_opt list_opts[] = {
	{ "all", 0, NULL, OPT_ALL, "finished commands too, not only pending" },
	{ "status", 0, "status", OPT_STATUS,
	    "only rows with this status (repeat)" },
	{ "command", 0, "uuid", OPT_COMMAND, "only this command" },
	MDM_CLI_OPT_END
};

struct print_ctx {
	struct mdm_cli *cli;
	int raw;
	size_t n;
};

static int
print_row(const struct mdm_state_queue_row *r, void *arg, struct mdm_err *e)
{
	struct print_ctx *c = arg;
	char t1[32], t2[32], t3[32], t4[32];
	struct mdm_cli_field f[] = {
		MDM_CLI_FSTR("id", r->enrollment_id),
		MDM_CLI_FSTR("command_uuid", r->command_uuid),
		MDM_CLI_FSTR("request_type", r->request_type),
		MDM_CLI_FSTR("status", r->status),
		MDM_CLI_FINT("not_now_count", r->not_now_count),
		MDM_CLI_FSTR("created_at", iso8601(r->created_at, t1)),
		MDM_CLI_FSTR("sent_at", iso8601(r->sent_at, t2)),
		MDM_CLI_FSTR("not_now_at", iso8601(r->not_now_at, t3)),
		MDM_CLI_FSTR("updated_at", iso8601(r->updated_at, t4)),
	};

	c->n++;
	return mdm_cli_record(c->cli, f, NITEMS(f), e);
}

static int
parse_status(struct mdm_cli *cli, const char *arg, unsigned *bits)
{
	int bit = mdm_state_qstatus_parse(arg);

	if (bit == -1)
		return mdm_cli_usage(cli, "unknown status '%s' (pending, "
		    "acknowledged, error, format_error, unparseable, "
		    "cancelled, superseded)", arg);
	*bits |= (unsigned)bit;
	return 0;
}

/* Logs per-id misses and goes on; other errors stop. */
static int
soft_fail(const struct mdm_err *e, int *missing)
{
	if (e->code != MDM_E_NOINPUT && e->code != MDM_E_DATA)
		return -1;
	mdm_log_error("%s", e->msg);
	*missing = 1;
	return 0;
}

static int
cmd_list(struct mdm_cli *cli, int argc, char **argv)
{
	struct mdm_state_queue_filter f = { 0 };
	struct print_ctx c = { 0 };
	struct mdm_state *st = NULL;
	struct mdm_queue_ids ids = { 0 };
	struct mdm_err e = { 0 };
	const char *arg;
	size_t i;
	int ch, all = 0, missing = 0, rc = MDM_EX_OK;

	while ((ch = mdm_cli_getopt(cli, argc, argv, list_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_ALL:
			all = 1;
			break;
		case OPT_STATUS:
			if (parse_status(cli, arg, &f.statuses) != 0)
				return MDM_EX_USAGE;
			break;
		case OPT_COMMAND:
			f.command_uuid = arg;
			break;
		default:
			return cli->status;
		}
	}
	if (all && f.statuses != 0)
		return mdm_cli_usage(cli, "--all and --status exclude each "
		    "other");
	if (all)
		f.statuses = MDM_STATE_Q_PENDING | MDM_STATE_Q_FINISHED;
	c.cli = cli;
	if (filter_ids(cli, argc - cli->optind, argv + cli->optind, &ids,
	    &e) == -1 || open_state(cli, &st, &e) == -1)
		goto fail;
	if (ids.n == 0) {
		if (mdm_state_queue_foreach(st, &f, print_row, &c, &e) == -1)
			goto fail;
	}
	for (i = 0; i < ids.n; i++) {
		f.key = ids.v[i];
		if (mdm_state_queue_foreach(st, &f, print_row, &c, &e) == -1 &&
		    soft_fail(&e, &missing) == -1)
			goto fail;
	}
	if (missing)
		rc = MDM_EX_NOINPUT;
	else if (c.n == 0)
		rc = MDM_EX_NO;
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	mdm_queue_ids_release(&ids);
	mdm_state_close(st);
	return rc;
}

/* ---- results ---- */

static const struct mdm_cli_opt results_opts[] = {
	{ "command", 0, "uuid", OPT_COMMAND, "only the results of this command" },
	{ "raw", 0, NULL, OPT_RAW, "add the result plist as the device sent it" },
	MDM_CLI_OPT_END
};

/* "Domain Code: description; ..." from the stored ErrorChain JSON. */
static void
error_summary(const char *chain, struct mdm_buf *out)
{
	json_t *j = NULL, *item;
	const char *dom, *desc;
	int64_t code;
	size_t i;
	struct mdm_err e;

	if (chain == NULL || mdm_json_parse(chain, strlen(chain), &j, &e) == -1)
		return;
	json_array_foreach(j, i, item) {
		dom = mdm_json_get_string(item, "ErrorDomain");
		desc = mdm_json_get_string(item, "USEnglishDescription");
		if (desc == NULL)
			desc = mdm_json_get_string(item, "LocalizedDescription");
		if (mdm_json_get_int(item, "ErrorCode", &code) == -1)
			code = 0;
		mdm_buf_printf(out, &e, "%s%s %lld%s%s", i ? "; " : "",
		    dom ? dom : "?", (long long)code, desc ? ": " : "",
		    desc ? desc : "");
	}
	json_decref(j);
}

/*
 * The raw result for people: XML (a binary plist converted), or for bytes
 * that are no plist, "base64:" and their base64.
 */
static int
raw_text(const unsigned char *raw, size_t len, struct mdm_buf *out,
    struct mdm_err *e)
{
	plist_t p = NULL;
	int rc;

	if (len > 0 && mdm_plist_parse(raw, len, &p, e) == 0) {
		if (len >= 8 && memcmp(raw, "bplist00", 8) == 0)
			rc = mdm_plist_to_xml(p, out, e);
		else
			rc = mdm_buf_append(out, raw, len, e);
		plist_free(p);
		return rc;
	}
	if (mdm_buf_append_str(out, "base64:", e) == -1)
		return -1;
	return mdm_base64_encode(raw, len, out, e);
}

static int
print_result(const struct mdm_state_result_row *r, void *arg,
    struct mdm_err *e)
{
	struct print_ctx *c = arg;
	struct mdm_buf err, raw, line;
	json_t *obj = NULL, *chain = NULL;
	char t[32];
	int rc = -1;

	mdm_buf_init(&err, 64 * 1024);
	mdm_buf_init(&raw, 4 * (size_t)MDM_CAP_PLIST);
	mdm_buf_init(&line, 8 * (size_t)MDM_CAP_PLIST);
	c->n++;
	error_summary(r->error_chain, &err);
	if (c->raw && raw_text(r->raw, r->raw_len, &raw, e) == -1)
		goto out;
	if (!c->cli->json) {
		struct mdm_cli_field f[] = {
			MDM_CLI_FSTR("id", r->enrollment_id),
			MDM_CLI_FSTR("command_uuid", r->command_uuid),
			MDM_CLI_FSTR("request_type", r->request_type),
			MDM_CLI_FSTR("status", r->status),
			MDM_CLI_FSTR("received_at", iso8601(r->received_at, t)),
			MDM_CLI_FSTR("error", (const char *)err.data),
			MDM_CLI_FSTR("raw", (const char *)raw.data),
		};

		rc = mdm_cli_record(c->cli, f, NITEMS(f) - !c->raw, e);
		goto out;
	}
	/* JSON by hand: the ErrorChain goes out as JSON, not as a string. */
	if (r->error_chain != NULL)
		mdm_json_parse(r->error_chain, strlen(r->error_chain), &chain,
		    NULL);
	obj = json_pack("{s:s, s:s?, s:s?, s:s, s:s?, s:o?}",
	    "id", r->enrollment_id, "command_uuid", r->command_uuid,
	    "request_type", r->request_type, "status", r->status,
	    "received_at", iso8601(r->received_at, t),
	    "error_chain", chain);
	chain = NULL;
	if (obj == NULL || (c->raw && json_object_set_new(obj, "raw",
	    json_stringn(raw.data ? (const char *)raw.data : "",
	    raw.len)) == -1)) {
		mdm_err_set(e, MDM_E_SOFTWARE, "cannot make JSON of a result");
		goto out;
	}
	if (mdm_json_dump(obj, &line, JSON_PRESERVE_ORDER, e) == -1)
		goto out;
	fwrite(line.data, 1, line.len, stdout);
	putchar('\n');
	rc = 0;
out:
	json_decref(chain);
	json_decref(obj);
	mdm_buf_release(&err);
	mdm_buf_release(&raw);
	mdm_buf_release(&line);
	return rc;
}

static int
cmd_results(struct mdm_cli *cli, int argc, char **argv)
{
	struct print_ctx c = { 0 };
	struct mdm_state *st = NULL;
	struct mdm_queue_ids ids = { 0 };
	struct mdm_err e = { 0 };
	const char *arg, *command = NULL;
	size_t i;
	int ch, missing = 0, rc = MDM_EX_OK;

	while ((ch = mdm_cli_getopt(cli, argc, argv, results_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_COMMAND:
			command = arg;
			break;
		case OPT_RAW:
			c.raw = 1;
			break;
		default:
			return cli->status;
		}
	}
	c.cli = cli;
	if (filter_ids(cli, argc - cli->optind, argv + cli->optind, &ids,
	    &e) == -1 || open_state(cli, &st, &e) == -1)
		goto fail;
	if (ids.n == 0 && mdm_state_queue_results_foreach(st, NULL, command,
	    print_result, &c, &e) == -1)
		goto fail;
	for (i = 0; i < ids.n; i++)
		if (mdm_state_queue_results_foreach(st, ids.v[i], command,
		    print_result, &c, &e) == -1 &&
		    soft_fail(&e, &missing) == -1)
			goto fail;
	if (missing)
		rc = MDM_EX_NOINPUT;
	else if (c.n == 0)
		rc = MDM_EX_NO;
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	mdm_queue_ids_release(&ids);
	mdm_state_close(st);
	return rc;
}

/* ---- cancel and clear ---- */

static const struct mdm_cli_opt no_opts[] = {
	MDM_CLI_OPT_END
};

static int
cancel_or_clear(struct mdm_cli *cli, int argc, char **argv, int clear)
{
	struct mdm_state *st = NULL;
	struct mdm_queue_ids ids = { 0 };
	struct mdm_err e = { 0 };
	const char *arg;
	int64_t n, total = 0;
	size_t i;
	int ch, missing = 0, rc = MDM_EX_OK;

	while ((ch = mdm_cli_getopt(cli, argc, argv, no_opts, &arg)) !=
	    MDM_CLI_DONE)
		return cli->status;
	if (read_ids(cli, argc - cli->optind, argv + cli->optind, &ids,
	    &e) == -1 || open_state(cli, &st, &e) == -1)
		goto fail;
	for (i = 0; i < ids.n; i++) {
		if ((clear ? mdm_state_queue_clear(st, ids.v[i], &n, &e) :
		    mdm_state_queue_cancel(st, ids.v[i], &n, &e)) == -1) {
			if (soft_fail(&e, &missing) == -1)
				goto fail;
			continue;
		}
		total += n;
		{
			struct mdm_cli_field f[] = {
				MDM_CLI_FSTR(clear ? "id" : "command_uuid",
				    ids.v[i]),
				MDM_CLI_FINT("cancelled", n),
			};

			if (mdm_cli_record(cli, f, 2, &e) == -1)
				goto fail;
		}
	}
	if (missing)
		rc = MDM_EX_NOINPUT;
	else if (total == 0)
		rc = MDM_EX_NO;
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	mdm_queue_ids_release(&ids);
	mdm_state_close(st);
	return rc;
}

static int
cmd_cancel(struct mdm_cli *cli, int argc, char **argv)
{
	return cancel_or_clear(cli, argc, argv, 0);
}

static int
cmd_clear(struct mdm_cli *cli, int argc, char **argv)
{
	return cancel_or_clear(cli, argc, argv, 1);
}

/* ---- purge ---- */

static const struct mdm_cli_opt purge_opts[] = {
	{ "older-than", 0, "age", OPT_OLDER_THAN,
	    "rows that finished longer ago (default: 30d)" },
	{ "status", 0, "status", OPT_STATUS,
	    "only rows with this status (repeat; pending must be named)" },
	{ "vacuum", 0, NULL, OPT_VACUUM,
	    "then VACUUM, giving the space back (holds the database a while)" },
	MDM_CLI_OPT_END
};

static int
cmd_purge(struct mdm_cli *cli, int argc, char **argv)
{
	struct mdm_state_purge p = { 0 };
	struct mdm_state_purge_stats s;
	struct mdm_state *st = NULL;
	struct mdm_err e = { 0 };
	const char *arg;
	long long secs;
	int64_t keep, events = 0;
	int ch, rc = MDM_EX_OK;

	p.older_than = -1;
	while ((ch = mdm_cli_getopt(cli, argc, argv, purge_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_OLDER_THAN:
			if (mdm_cli_parse_duration(arg, &secs, &e) == -1)
				return mdm_cli_usage(cli, "--older-than: %s",
				    e.msg);
			p.older_than = secs;
			break;
		case OPT_STATUS:
			if (parse_status(cli, arg, &p.statuses) != 0)
				return MDM_EX_USAGE;
			break;
		case OPT_VACUUM:
			p.vacuum = 1;
			break;
		default:
			return cli->status;
		}
	}
	if (argc - cli->optind > 0)
		return mdm_cli_usage(cli, "purge takes no operands");
	/*
	 * Webhook events that were delivered or given up go too, unless
	 * only some queue statuses were asked for; before the vacuum, so
	 * their space is given back as well.
	 */
	keep = p.older_than < 0 ? -1 : p.older_than * 1000;
	if (open_state(cli, &st, &e) == -1 || (p.statuses == 0 &&
	    mdm_state_webhook_purge(st, mdm_webhook_now_ms(), keep, keep,
	    &events, &e) == -1) ||
	    mdm_state_queue_purge(st, &p, &s, &e) == -1)
		goto fail;
	{
		struct mdm_cli_field f[] = {
			MDM_CLI_FINT("queue_rows", s.queue_rows),
			MDM_CLI_FINT("results", s.results),
			MDM_CLI_FINT("commands", s.commands),
			MDM_CLI_FINT("payloads", s.payloads),
			MDM_CLI_FINT("webhook_events", events),
			MDM_CLI_FINT("bytes_freed", s.bytes_freed),
		};

		if (mdm_cli_record(cli, f, NITEMS(f), &e) == -1)
			goto fail;
	}
	if (!p.vacuum && s.queue_rows + s.results + s.commands +
	    s.payloads + events + s.bytes_freed == 0)
		rc = MDM_EX_NO;
	goto out;
fail:
	rc = mdm_cli_fail(cli, &e);
out:
	mdm_state_close(st);
	return rc;
}

static const struct mdm_cli_cmd queue_cmds[] = {
	{ "enqueue", "TYPE [options] [id ...] | --plist file [id ...]",
	    "queue a command for enrollments (ids from operands or stdin)",
	    enqueue_opts, cmd_enqueue },
	{ "list", "[--all | --status status] [--command uuid] [id ...]",
	    "list queued commands", list_opts, cmd_list },
	{ "results", "[--command uuid] [--raw] [id ...]",
	    "list the results devices reported", results_opts, cmd_results },
	{ "cancel", "[uuid ...]", "cancel the pending rows of commands",
	    no_opts, cmd_cancel },
	{ "clear", "[id ...]", "cancel every pending command of enrollments",
	    no_opts, cmd_clear },
	{ "purge", "[--older-than age] [--status status] [--vacuum]",
	    "delete old finished rows and results (30 days by default)",
	    purge_opts, cmd_purge },
	{ NULL, NULL, NULL, NULL, NULL }
};

const struct mdm_cli_tool mdm_queue_tool = {
	.name = "mdm-queue",
	.summary = "Queue MDM commands for enrollments, inspect the queue, "
	    "read results, cancel, clear and purge",
	.cmds = queue_cmds,
};
