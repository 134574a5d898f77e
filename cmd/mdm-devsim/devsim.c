#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/x509.h>

#include "buf.h"
#include "device.h"
#include "devsim.h"
#include "file.h"
#include "log.h"
#include "x509.h"
#include "banned.h"

#define DEFAULT_DIR	"./devsim"
#define MAX_DEVICES	1000000
#define MAX_THREADS	256

enum {
	OPT_DIR = 256,
	OPT_URL,
	OPT_CONCURRENCY,
	OPT_COUNT,
	OPT_MTLS,
	OPT_SIGN,
	OPT_KEY_BITS,
	OPT_PROFILE_CA,
	OPT_SERVER_CA,
	OPT_CHALLENGE,
	OPT_ONCE,
	OPT_INTERVAL,
	OPT_NOTNOW,
	OPT_ERROR,
};

#define O_DIR { "dir", 0, "dir", OPT_DIR, "devices live here (default: " \
    "$MDM_DEVSIM_DIR, else " DEFAULT_DIR ")" }
#define O_CONC { "concurrency", 'c', "n", OPT_CONCURRENCY, \
    "devices at work at once, one thread each (default: 4)" }
#define O_SERVER_CA { "server-ca", 0, "file", OPT_SERVER_CA, \
    "trust this CA for https URLs (default: the system's)" }
#define O_URL { "url", 0, "url", OPT_URL, \
    "enrollment profile: http(s) URL or file" }
#define O_COUNT { "count", 'n', "n", OPT_COUNT, \
    "devices to enroll (default: 1)" }
#define O_MTLS { "mtls", 0, NULL, OPT_MTLS, \
    "identify with the identity as TLS client certificate" }
#define O_SIGN { "sign", 0, NULL, OPT_SIGN, \
    "sign every request (Mdm-Signature) even if the profile does not " \
    "ask" }
#define O_KEY_BITS { "key-bits", 0, "bits", OPT_KEY_BITS, \
    "RSA key size (default: the profile's Keysize, at least 2048)" }
#define O_PROFILE_CA { "profile-ca", 0, "file", OPT_PROFILE_CA, \
    "require the profile to be signed by a certificate from this CA" }
#define O_CHALLENGE { "challenge", 0, "secret", OPT_CHALLENGE, \
    "SCEP challenge to send instead of the profile's" }
#define O_NOTNOW { "notnow-rate", 0, "p", OPT_NOTNOW, \
    "answer NotNow with probability p (0 to 1; default: 0)" }
#define O_ERROR { "error-rate", 0, "p", OPT_ERROR, \
    "answer Error with probability p (0 to 1; default: 0)" }

static const struct mdm_cli_opt enroll_opts[] = {
	O_URL, O_COUNT, O_CONC, O_MTLS, O_SIGN, O_KEY_BITS, O_PROFILE_CA,
	O_SERVER_CA, O_CHALLENGE, O_DIR, MDM_CLI_OPT_END
};
static const struct mdm_cli_opt run_opts[] = {
	{ "once", 0, NULL, OPT_ONCE,
	    "one session per device, then stop (default: poll for ever)" },
	{ "interval", 0, "duration", OPT_INTERVAL,
	    "between polls without --once (default: 10s)" },
	O_NOTNOW, O_ERROR, O_CONC, O_SERVER_CA, O_DIR, MDM_CLI_OPT_END
};
static const struct mdm_cli_opt list_opts[] = {
	O_DIR, MDM_CLI_OPT_END
};
static const struct mdm_cli_opt bench_opts[] = {
	O_URL, O_COUNT, O_CONC, O_MTLS, O_SIGN, O_KEY_BITS, O_SERVER_CA,
	O_NOTNOW, O_ERROR, O_DIR, MDM_CLI_OPT_END
};

static volatile sig_atomic_t stopping;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Options any command may have. */
struct opts {
	const char *dir;
	const char *url;
	int count, concurrency;
	int mtls, sign, key_bits;
	const char *profile_ca, *server_ca, *challenge;
	int once;
	long long interval;
	double notnow, error;
	int quiet_records;		/* bench: the summary only */
};

static int
parse_rate(struct mdm_cli *cli, const char *name, const char *arg,
    double *out)
{
	char *end;
	double v = strtod(arg, &end);

	if (end == arg || *end != '\0' || !(v >= 0.0 && v <= 1.0))
		return mdm_cli_usage(cli, "--%s must be a number from 0 to 1",
		    name);
	*out = v;
	return 0;
}

/* Parses the options; MDM_CLI_DONE when done, else the exit status. */
static int
get_opts(struct mdm_cli *cli, int argc, char **argv,
    const struct mdm_cli_opt *table, struct opts *o)
{
	struct mdm_err e = { 0 };
	const char *arg;
	long long v;
	int ch;

	memset(o, 0, sizeof(*o));
	o->count = 1;
	o->concurrency = 4;
	o->interval = 10;
	if ((o->dir = getenv("MDM_DEVSIM_DIR")) == NULL || *o->dir == '\0')
		o->dir = DEFAULT_DIR;
	while ((ch = mdm_cli_getopt(cli, argc, argv, table, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case MDM_CLI_EXIT:
			return cli->status;
		case OPT_DIR:
			o->dir = arg;
			break;
		case OPT_URL:
			o->url = arg;
			break;
		case OPT_COUNT:
			if (mdm_cli_parse_int(arg, 1, MAX_DEVICES, &v, &e) == -1)
				return mdm_cli_usage(cli, "--count: %s", e.msg);
			o->count = (int)v;
			break;
		case OPT_CONCURRENCY:
			if (mdm_cli_parse_int(arg, 1, MAX_THREADS, &v, &e) == -1)
				return mdm_cli_usage(cli, "--concurrency: %s",
				    e.msg);
			o->concurrency = (int)v;
			break;
		case OPT_MTLS:
			o->mtls = 1;
			break;
		case OPT_SIGN:
			o->sign = 1;
			break;
		case OPT_KEY_BITS:
			if (mdm_cli_parse_int(arg, 2048, 8192, &v, &e) == -1)
				return mdm_cli_usage(cli, "--key-bits: %s",
				    e.msg);
			o->key_bits = (int)v;
			break;
		case OPT_PROFILE_CA:
			o->profile_ca = arg;
			break;
		case OPT_SERVER_CA:
			o->server_ca = arg;
			break;
		case OPT_CHALLENGE:
			o->challenge = arg;
			break;
		case OPT_ONCE:
			o->once = 1;
			break;
		case OPT_INTERVAL:
			if (mdm_cli_parse_duration(arg, &v, &e) == -1 ||
			    v < 1)
				return mdm_cli_usage(cli, "--interval: %s",
				    e.msg[0] != '\0' ? e.msg :
				    "at least 1 second");
			o->interval = v;
			break;
		case OPT_NOTNOW:
			if (parse_rate(cli, "notnow-rate", arg, &o->notnow))
				return MDM_EX_USAGE;
			break;
		case OPT_ERROR:
			if (parse_rate(cli, "error-rate", arg, &o->error))
				return MDM_EX_USAGE;
			break;
		default:
			return mdm_cli_usage(cli, "unexpected option");
		}
	}
	if (o->mtls && o->sign)
		return mdm_cli_usage(cli, "--mtls and --sign exclude each "
		    "other");
	return MDM_CLI_DONE;
}

/* Work shared by the threads of one command. */
struct pool {
	pthread_mutex_t mu;
	struct mdm_cli *cli;
	const struct opts *o;
	X509 *profile_ca;
	char **udids;			/* run: the devices; owned */
	int n, next;
	int failed, done, results;
	int (*work)(struct pool *p, struct device_http *h, int i);
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
record(struct pool *p, const struct mdm_cli_field *f, size_t n)
{
	struct mdm_err e;

	if (p->o->quiet_records)
		return;
	pthread_mutex_lock(&p->mu);
	if (mdm_cli_record(p->cli, f, n, &e) == -1)
		mdm_log(MDM_LOG_ERROR, "%s", e.msg);
	pthread_mutex_unlock(&p->mu);
}

static void
count(struct pool *p, int failed, int results)
{
	pthread_mutex_lock(&p->mu);
	p->done++;
	p->failed += failed;
	p->results += results;
	pthread_mutex_unlock(&p->mu);
}

static void *
worker(void *arg)
{
	struct pool *p = arg;
	struct device_http h;
	struct mdm_err e;
	int i;

	if (device_http_init(&h, p->o->server_ca, &e) == -1) {
		mdm_log(MDM_LOG_ERROR, "%s", e.msg);
		pthread_mutex_lock(&p->mu);
		p->failed++;
		pthread_mutex_unlock(&p->mu);
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&p->mu);
		i = stopping || p->next >= p->n ? -1 : p->next++;
		pthread_mutex_unlock(&p->mu);
		if (i < 0)
			break;
		p->work(p, &h, i);
	}
	device_http_release(&h);
	return NULL;
}

/* Runs p->work for 0..n-1 on the threads; 0, or -1 if none started. */
static int
run_pool(struct pool *p, int n)
{
	pthread_t tid[MAX_THREADS];
	int i, nt = p->o->concurrency < n ? p->o->concurrency : n, started = 0;

	p->n = n;
	p->next = 0;
	for (i = 0; i < nt; i++)
		if (pthread_create(&tid[i], NULL, worker, p) == 0)
			started++;
		else
			break;
	if (started == 0 && n > 0) {
		mdm_log(MDM_LOG_ERROR, "cannot start a thread");
		return -1;
	}
	for (i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	return 0;
}

/* enroll */

static int
enroll_one(struct pool *p, struct device_http *h, int i)
{
	struct device_enroll_opts eo = { .url = p->o->url,
	    .profile_ca = p->profile_ca, .key_bits = p->o->key_bits,
	    .mtls = p->o->mtls, .sign = p->o->sign,
	    .challenge = p->o->challenge,
	    .dir = p->o->dir, .index = i + 1 };
	struct device d;
	struct mdm_err e = { 0 };
	int rc;

	rc = device_enroll(&eo, h, &d, &e);
	if (rc == -1)
		mdm_log(MDM_LOG_ERROR, "device %d%s%s: %s", i + 1,
		    d.udid[0] != '\0' ? " " : "", d.udid, e.msg);
	{
		struct mdm_cli_field f[] = {
			MDM_CLI_FSTR("udid", d.udid),
			MDM_CLI_FSTR("serial", d.serial),
			MDM_CLI_FSTR("outcome", rc == 0 ? "enrolled" :
			    "failed"),
		};

		record(p, f, 3);
	}
	count(p, rc == -1, 0);
	device_release(&d);
	return rc;
}

/*
 * Reads the profile once before any device starts, so a wrong URL or
 * file is one usage-level error, not N device failures.
 */
static int
preflight(struct pool *p, struct mdm_err *e)
{
	struct mdm_buf b;
	int rc = 0;

	if (p->o->url == NULL)
		return mdm_err_set(e, MDM_E_USAGE, "--url is required");
	if (p->o->profile_ca != NULL &&
	    mdm_x509_load_cert(p->o->profile_ca, &p->profile_ca, e) == -1)
		return -1;
	if (strncmp(p->o->url, "http://", 7) != 0 &&
	    strncmp(p->o->url, "https://", 8) != 0) {
		mdm_buf_init(&b, DEVICE_MAX_PROFILE);
		rc = mdm_buf_read_file(&b, p->o->url, e);
		mdm_buf_release(&b);
	}
	if (rc == 0 && mdm_file_mkdir_p(p->o->dir, 0700, e) == -1)
		rc = -1;
	return rc;
}

static int
do_enroll(struct pool *p, struct mdm_err *e)
{
	if (preflight(p, e) == -1)
		return -1;
	p->work = enroll_one;
	if (run_pool(p, p->o->count) == -1)
		return mdm_err_set(e, MDM_E_SOFTWARE, "no thread started");
	return 0;
}

static void
pool_init(struct pool *p, struct mdm_cli *cli, const struct opts *o)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	p->cli = cli;
	p->o = o;
}

static void
pool_release(struct pool *p)
{
	int i;

	for (i = 0; p->udids != NULL && p->udids[i] != NULL; i++)
		free(p->udids[i]);
	free(p->udids);
	X509_free(p->profile_ca);
	pthread_mutex_destroy(&p->mu);
}

static int
cmd_enroll(struct mdm_cli *cli, int argc, char **argv)
{
	struct opts o;
	struct pool p;
	struct mdm_err e = { 0 };
	int rc;

	if ((rc = get_opts(cli, argc, argv, enroll_opts, &o)) != MDM_CLI_DONE)
		return rc;
	if (cli->optind < argc)
		return mdm_cli_usage(cli, "no operands expected");
	if (o.url == NULL)
		return mdm_cli_usage(cli, "--url is required");
	pool_init(&p, cli, &o);
	if (do_enroll(&p, &e) == -1)
		rc = mdm_cli_fail(cli, &e);
	else
		rc = p.failed > 0 ? MDM_EX_NO : MDM_EX_OK;
	pool_release(&p);
	return rc;
}

/* run */

static void
on_result(void *arg, const struct device *d, const struct device_result *r)
{
	struct mdm_cli_field f[] = {
		MDM_CLI_FSTR("udid", d->udid),
		MDM_CLI_FSTR("command", r->uuid),
		MDM_CLI_FSTR("request_type", r->request_type),
		MDM_CLI_FSTR("status", r->status),
	};

	record(arg, f, 4);
}

static int
session_one(struct pool *p, struct device_http *h, int i)
{
	struct device_session_opts so = { .notnow_rate = p->o->notnow,
	    .error_rate = p->o->error, .on_result = on_result, .arg = p };
	struct device d;
	struct mdm_err e = { 0 };
	int n = 0, rc;

	if ((rc = device_load(p->o->dir, p->udids[i], &d, &e)) == 0) {
		rc = device_session(&d, h, &so, &n, &e);
		device_release(&d);
	}
	if (rc == -1)
		mdm_log(MDM_LOG_ERROR, "%s: %s", p->udids[i], e.msg);
	count(p, rc == -1, n);
	return rc;
}

struct collect {
	char **v;
	int n, alloc;
};

static int
add_udid(struct collect *c, const char *id, struct mdm_err *e)
{
	char **nv;

	if (c->n + 1 >= c->alloc) {
		if (c->alloc >= MAX_DEVICES)
			return mdm_err_set(e, MDM_E_TOOBIG, "over %d devices",
			    MAX_DEVICES);
		c->alloc = c->alloc ? 2 * c->alloc : 64;
		if ((nv = realloc(c->v, (size_t)c->alloc * sizeof(*nv))) ==
		    NULL)
			return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
		c->v = nv;
	}
	if ((c->v[c->n] = strdup(id)) == NULL)
		return mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
	c->v[++c->n] = NULL;
	return 0;
}

static int
collect_dir(const char *dir, const char *name, void *arg, struct mdm_err *e)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s/device.plist", dir, name);
	if (!mdm_file_exists(path))
		return 0;
	return add_udid(arg, name, e);
}

/* The devices: operands (or stdin for "-"), else every one in dir. */
static int
pick_devices(struct mdm_cli *cli, const struct opts *o, int argc, char **argv,
    struct pool *p, struct mdm_err *e)
{
	struct collect c = { 0 };
	struct mdm_cli_ids ids;
	const char *id;
	int rc = 0;

	if (cli->optind < argc) {
		mdm_cli_ids_init(&ids, cli, argc - cli->optind,
		    argv + cli->optind);
		while ((rc = mdm_cli_ids_next(&ids, &id, e)) == 1)
			if ((rc = add_udid(&c, id, e)) == -1)
				break;
		mdm_cli_ids_release(&ids);
	} else
		rc = mdm_file_foreach(o->dir, NULL, collect_dir, &c, e);
	p->udids = c.v;
	p->n = c.n;
	return rc;
}

static int
do_run(struct pool *p)
{
	int n = p->n;

	p->work = session_one;
	for (;;) {
		if (run_pool(p, n) == -1)
			return -1;
		if (p->o->once || stopping)
			return 0;
		for (long long s = 0; s < p->o->interval && !stopping; s++)
			sleep(1);
		if (stopping)
			return 0;
	}
}

static int
cmd_run(struct mdm_cli *cli, int argc, char **argv)
{
	struct opts o;
	struct pool p;
	struct mdm_err e = { 0 };
	int rc;

	if ((rc = get_opts(cli, argc, argv, run_opts, &o)) != MDM_CLI_DONE)
		return rc;
	pool_init(&p, cli, &o);
	if (pick_devices(cli, &o, argc, argv, &p, &e) == -1) {
		rc = mdm_cli_fail(cli, &e);
		goto out;
	}
	if (p.n == 0) {
		mdm_log(MDM_LOG_WARN, "no devices in %s", o.dir);
		rc = MDM_EX_NO;
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (do_run(&p) == -1)
		rc = MDM_EX_SOFTWARE;
	else
		rc = p.failed > 0 ? MDM_EX_NO : MDM_EX_OK;
out:
	pool_release(&p);
	return rc;
}

/* list */

static int
cmd_list(struct mdm_cli *cli, int argc, char **argv)
{
	struct opts o;
	struct pool p;
	struct device d;
	struct mdm_err e = { 0 };
	int i, rc;

	if ((rc = get_opts(cli, argc, argv, list_opts, &o)) != MDM_CLI_DONE)
		return rc;
	rc = MDM_EX_OK;
	if (cli->optind < argc)
		return mdm_cli_usage(cli, "no operands expected");
	pool_init(&p, cli, &o);
	if (pick_devices(cli, &o, argc, argv, &p, &e) == -1) {
		rc = mdm_cli_fail(cli, &e);
		goto out;
	}
	for (i = 0; i < p.n; i++) {
		if (device_load(o.dir, p.udids[i], &d, &e) == -1) {
			mdm_log(MDM_LOG_ERROR, "%s", e.msg);
			rc = MDM_EX_DATAERR;
			continue;
		}
		{
			struct mdm_cli_field f[] = {
				MDM_CLI_FSTR("udid", d.udid),
				MDM_CLI_FSTR("serial", d.serial),
				MDM_CLI_FSTR("name", d.name),
				MDM_CLI_FSTR("auth", d.mtls ? "mtls" :
				    "signature"),
				MDM_CLI_FINT("profiles",
				    plist_array_get_size(d.profiles)),
				MDM_CLI_FSTR("server_url", d.server_url),
			};

			if (mdm_cli_record(cli, f, 6, &e) == -1)
				rc = mdm_cli_fail(cli, &e);
		}
		device_release(&d);
	}
	if (rc == 0 && p.n == 0)
		rc = MDM_EX_NO;
out:
	pool_release(&p);
	return rc;
}

/* bench */

static int
cmd_bench(struct mdm_cli *cli, int argc, char **argv)
{
	struct opts o;
	struct pool p;
	struct mdm_err e = { 0 };
	double enroll_s = 0, run_s = 0;
	long long t0;
	int rc, devices = 0, errors = 0, enrolled = 0;

	if ((rc = get_opts(cli, argc, argv, bench_opts, &o)) != MDM_CLI_DONE)
		return rc;
	if (cli->optind < argc)
		return mdm_cli_usage(cli, "no operands expected");
	o.quiet_records = 1;
	pool_init(&p, cli, &o);
	if (o.url != NULL) {
		t0 = now_ms();
		if (do_enroll(&p, &e) == -1) {
			rc = mdm_cli_fail(cli, &e);
			goto out;
		}
		enroll_s = (double)(now_ms() - t0) / 1000.0;
		errors = p.failed;
		enrolled = p.done - p.failed;
	}
	pool_release(&p);
	pool_init(&p, cli, &o);
	if (pick_devices(cli, &o, 0, argv, &p, &e) == -1) {
		rc = mdm_cli_fail(cli, &e);
		goto out;
	}
	devices = p.n;
	t0 = now_ms();
	p.work = session_one;
	if (p.n > 0 && run_pool(&p, p.n) == -1) {
		rc = MDM_EX_SOFTWARE;
		goto out;
	}
	run_s = (double)(now_ms() - t0) / 1000.0;
	errors += p.failed;
	printf("enroll_per_s=%.1f roundtrip_per_s=%.1f devices=%d "
	    "enrolled=%d commands=%d sessions=%d errors=%d\n",
	    enroll_s > 0 ? enrolled / enroll_s : 0.0,
	    run_s > 0 ? p.results / run_s : 0.0, devices, enrolled,
	    p.results, p.done, errors);
	rc = errors > 0 ? MDM_EX_NO : MDM_EX_OK;
out:
	pool_release(&p);
	return rc;
}

static const struct mdm_cli_cmd cmds[] = {
	{ "enroll", "--url url [-n count] [-c n] [--mtls | --sign] "
	    "[--key-bits bits] [--profile-ca file] [--server-ca file] "
	    "[--challenge secret] [--dir dir]",
	    "enroll new devices: profile, SCEP, Authenticate, TokenUpdate",
	    enroll_opts, cmd_enroll },
	{ "run", "[--once] [--interval duration] [--notnow-rate p] "
	    "[--error-rate p] [-c n] [--server-ca file] [--dir dir] "
	    "[udid ...]",
	    "answer the server's commands as devices do", run_opts, cmd_run },
	{ "list", "[--dir dir]", "list the simulated devices", list_opts,
	    cmd_list },
	{ "bench", "[--url url -n count] [-c n] [--mtls | --sign] "
	    "[--key-bits bits] [--server-ca file] [--notnow-rate p] "
	    "[--error-rate p] [--dir dir]",
	    "enroll, then one session per device; print rates as key=value",
	    bench_opts, cmd_bench },
	{ NULL, NULL, NULL, NULL, NULL }
};

const struct mdm_cli_tool mdm_devsim_tool = {
	.name = "mdm-devsim",
	.summary = "Simulated Apple devices: enroll over SCEP, check in and "
	    "answer MDM commands, for tests, demos and load",
	.cmds = cmds,
};
