#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "file.h"
#include "log.h"
#include "version.h"
#include "mdm_int.h"

/* Ids of the global options, out of the range tools use. */
enum {
	OPT_HELP = 0x1000,
	OPT_VERSION,
	OPT_QUIET,
	OPT_VERBOSE,
	OPT_STATE_DIR,
	OPT_JSON,
	OPT_NUL,
	OPT_LIST_OPTIONS,
	OPT_LIST_COMMANDS,
};

static const struct mdm_cli_opt global_opts[] = {
	{ "help", 'h', NULL, OPT_HELP, "show this help and exit" },
	{ "version", 'V', NULL, OPT_VERSION, "show the version and exit" },
	{ "quiet", 'q', NULL, OPT_QUIET, "print errors only" },
	{ "verbose", 'v', NULL, OPT_VERBOSE, "say more (repeat for more)" },
	{ "state-dir", 0, "dir", OPT_STATE_DIR,
	    "state directory (default: $MDM_STATE_DIR, else " MDM_DEFAULT_STATE_DIR ")" },
	{ "json", 0, NULL, OPT_JSON, "print records as JSON Lines" },
	{ "null", '0', NULL, OPT_NUL, "NUL-terminated records and input ids" },
	MDM_CLI_OPT_END
};

/* Hidden: they feed the completion and man page checks. */
static const struct mdm_cli_opt hidden_opts[] = {
	{ "list-options", 0, NULL, OPT_LIST_OPTIONS, NULL },
	{ "list-commands", 0, NULL, OPT_LIST_COMMANDS, NULL },
	MDM_CLI_OPT_END
};

#define MAX_OPTS 64

static size_t
count_opts(const struct mdm_cli_opt *o)
{
	size_t n = 0;

	while (o != NULL && (o[n].name != NULL || o[n].short_name != 0))
		n++;
	return n;
}

static const char *
tool_name(const struct mdm_cli *cli)
{
	return cli->tool->name;
}

static void
print_opt_table(const struct mdm_cli_opt *o)
{
	for (; o != NULL && (o->name != NULL || o->short_name != 0); o++) {
		char left[64];
		int n = 0;

		if (o->short_name != 0 && o->name != NULL)
			n = snprintf(left, sizeof(left), "-%c, --%s",
			    o->short_name, o->name);
		else if (o->short_name != 0)
			n = snprintf(left, sizeof(left), "-%c", o->short_name);
		else
			n = snprintf(left, sizeof(left), "    --%s", o->name);
		if (o->arg != NULL && n > 0 && (size_t)n < sizeof(left))
			snprintf(left + n, sizeof(left) - (size_t)n, " %s",
			    o->arg);
		printf("  %-26s %s\n", left, o->help ? o->help : "");
	}
}

static void
print_usage_line(FILE *f, const struct mdm_cli *cli)
{
	if (cli->cmd != NULL)
		fprintf(f, "usage: %s %s %s\n", tool_name(cli), cli->cmd->name,
		    cli->cmd->synopsis);
	else if (cli->tool->cmds != NULL)
		fprintf(f, "usage: %s [-qv] [--json] [--state-dir dir] "
		    "command [options] [args]\n", tool_name(cli));
	else
		fprintf(f, "usage: %s %s\n", tool_name(cli),
		    cli->tool->synopsis);
}

static void
print_help(const struct mdm_cli *cli)
{
	const struct mdm_cli_cmd *c;

	print_usage_line(stdout, cli);
	if (cli->cmd != NULL) {
		printf("\n%s.\n", cli->cmd->summary);
		if (count_opts(cli->cmd->opts) > 0) {
			printf("\nOptions:\n");
			print_opt_table(cli->cmd->opts);
		}
		printf("\nGlobal options:\n");
		print_opt_table(global_opts);
		return;
	}
	printf("\n%s.\n", cli->tool->summary);
	if (cli->tool->cmds != NULL) {
		printf("\nCommands:\n");
		for (c = cli->tool->cmds; c->name != NULL; c++)
			printf("  %-26s %s\n", c->name, c->summary);
	} else if (count_opts(cli->tool->opts) > 0) {
		printf("\nOptions:\n");
		print_opt_table(cli->tool->opts);
	}
	printf("\nGlobal options:\n");
	print_opt_table(global_opts);
	if (cli->tool->cmds != NULL)
		printf("\nRun '%s COMMAND --help' for the options of a "
		    "command.\n", tool_name(cli));
	printf("Exit status: 0 success, 1 a clean \"no\", 64 usage, 65 bad "
	    "data, 66 no input,\n69 unavailable, 70 internal error, 74 I/O "
	    "error, 75 try again later,\n77 permission denied, 78 "
	    "configuration error.\n");
}

static void
list_options(const struct mdm_cli_opt *o)
{
	for (; o != NULL && (o->name != NULL || o->short_name != 0); o++) {
		if (o->name != NULL)
			printf("--%s\n", o->name);
		if (o->short_name != 0)
			printf("-%c\n", o->short_name);
	}
}

int
mdm_cli_usage(struct mdm_cli *cli, const char *fmt, ...)
{
	char hint[128];
	va_list ap;

	if (fmt != NULL) {
		va_start(ap, fmt);
		mdm_vlog(MDM_LOG_ERROR, fmt, ap);
		va_end(ap);
	}
	print_usage_line(stderr, cli);
	if (cli->cmd != NULL)
		snprintf(hint, sizeof(hint), "%s %s --help", tool_name(cli),
		    cli->cmd->name);
	else
		snprintf(hint, sizeof(hint), "%s --help", tool_name(cli));
	fprintf(stderr, "Try '%s'.\n", hint);
	cli->status = MDM_EX_USAGE;
	return MDM_EX_USAGE;
}

int
mdm_cli_fail(struct mdm_cli *cli, const struct mdm_err *e)
{
	(void)cli;
	mdm_log_error("%s", e->msg[0] ? e->msg : "failed");
	return mdm_err_exit_code(e->code);
}

/* Appends the table's entries to the getopt_long arrays. */
static int
add_getopt(const struct mdm_cli_opt *o, struct option *lo, size_t *nlo,
    char *so, size_t *nso, size_t socap)
{
	for (; o != NULL && (o->name != NULL || o->short_name != 0); o++) {
		if (o->name != NULL) {
			if (*nlo + 1 >= MAX_OPTS)
				return -1;
			lo[*nlo].name = o->name;
			lo[*nlo].has_arg = o->arg ? required_argument :
			    no_argument;
			lo[*nlo].flag = NULL;
			lo[*nlo].val = o->id;
			(*nlo)++;
		}
		if (o->short_name != 0) {
			if (*nso + 3 >= socap)
				return -1;
			so[(*nso)++] = (char)o->short_name;
			if (o->arg != NULL)
				so[(*nso)++] = ':';
		}
	}
	lo[*nlo] = (struct option){ 0 };
	so[*nso] = '\0';
	return 0;
}

/* The id a short letter of opts maps to (the letter itself by default). */
static int
short_id(const struct mdm_cli_opt *opts, int ch)
{
	const struct mdm_cli_opt *o;

	for (o = global_opts; o->name != NULL; o++)
		if (o->short_name == ch)
			return o->id;
	for (o = opts; o != NULL && (o->name != NULL || o->short_name); o++)
		if (o->short_name == ch)
			return o->id;
	return ch;
}

static void
apply_log_level(const struct mdm_cli *cli)
{
	int level = MDM_LOG_INFO + cli->verbosity;

	if (level < MDM_LOG_ERROR)
		level = MDM_LOG_ERROR;
	if (level > MDM_LOG_TRACE)
		level = MDM_LOG_TRACE;
	mdm_log_set_level((enum mdm_log_level)level);
}

/*
 * The shared getopt loop.  stop_at_operand is set for the tool-level pass
 * of a tool with commands, so the command name ends the global options.
 */
static int
next_opt(struct mdm_cli *cli, int argc, char **argv,
    const struct mdm_cli_opt *opts, int stop_at_operand, const char **arg)
{
	struct option lo[MAX_OPTS];
	char so[3 * MAX_OPTS];
	size_t nlo = 0, nso = 0;
	int ch;

	/*
	 * '+' stops at the command name; otherwise getopt permutes, so
	 * options may follow operands as users type them.
	 */
	if (stop_at_operand)
		so[nso++] = '+';
	so[nso++] = ':';
	if (add_getopt(global_opts, lo, &nlo, so, &nso, sizeof(so)) == -1 ||
	    add_getopt(hidden_opts, lo, &nlo, so, &nso, sizeof(so)) == -1 ||
	    add_getopt(opts, lo, &nlo, so, &nso, sizeof(so)) == -1) {
		mdm_log_error("too many options in the option table");
		cli->status = MDM_EX_SOFTWARE;
		return MDM_CLI_EXIT;
	}
	opterr = 0;
	for (;;) {
		ch = getopt_long(argc, argv, so, lo, NULL);
		if (ch == -1) {
			cli->optind = optind;
			if (cli->json && cli->nul)
				return mdm_cli_usage(cli, "--json and -0 "
				    "cannot be used together"), MDM_CLI_EXIT;
			apply_log_level(cli);
			return MDM_CLI_DONE;
		}
		if (ch == '?') {
			if (optopt != 0)
				return mdm_cli_usage(cli, "unknown option "
				    "'-%c'", optopt), MDM_CLI_EXIT;
			return mdm_cli_usage(cli, "unknown option '%s'",
			    argv[optind - 1]), MDM_CLI_EXIT;
		}
		if (ch == ':')
			return mdm_cli_usage(cli, "option '%s' needs a value",
			    argv[optind - 1]), MDM_CLI_EXIT;
		if (ch < 256)
			ch = short_id(opts, ch);
		switch (ch) {
		case OPT_HELP:
			print_help(cli);
			cli->status = MDM_EX_OK;
			return MDM_CLI_EXIT;
		case OPT_VERSION:
			printf("%s %s\n", tool_name(cli), MDM_VERSION);
			cli->status = MDM_EX_OK;
			return MDM_CLI_EXIT;
		case OPT_QUIET:
			cli->verbosity--;
			break;
		case OPT_VERBOSE:
			cli->verbosity++;
			break;
		case OPT_STATE_DIR:
			cli->state_dir_opt = optarg;
			break;
		case OPT_JSON:
			cli->json = 1;
			break;
		case OPT_NUL:
			cli->nul = 1;
			break;
		case OPT_LIST_OPTIONS:
			list_options(global_opts);
			list_options(opts);
			cli->status = MDM_EX_OK;
			return MDM_CLI_EXIT;
		case OPT_LIST_COMMANDS: {
			const struct mdm_cli_cmd *c = cli->tool->cmds;

			for (; c != NULL && c->name != NULL; c++)
				printf("%s\n", c->name);
			cli->status = c == NULL ? MDM_EX_NO : MDM_EX_OK;
			return MDM_CLI_EXIT;
		}
		default:
			*arg = optarg;
			return ch;
		}
	}
}

int
mdm_cli_getopt(struct mdm_cli *cli, int argc, char **argv,
    const struct mdm_cli_opt *opts, const char **arg)
{
	/* optind 0 makes glibc start a fresh scan of a new argv. */
	if (cli->optind == 0) {
		optind = 0;
		cli->optind = 1;
	}
	*arg = NULL;
	return next_opt(cli, argc, argv, opts, 0, arg);
}

static const struct mdm_cli_cmd *
find_command(const struct mdm_cli_tool *tool, const char *name)
{
	const struct mdm_cli_cmd *c;

	for (c = tool->cmds; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static int
finish(int status)
{
	/* A full disk or a closed pipe must not look like success. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		mdm_log_error("write error on standard output: %s",
		    strerror(errno));
		return status == MDM_EX_OK || status == MDM_EX_NO ?
		    MDM_EX_IOERR : status;
	}
	return status;
}

int
mdm_cli_main(const struct mdm_cli_tool *tool, int argc, char **argv)
{
	struct mdm_cli cli = { .tool = tool };
	const char *arg;
	int ch;

	mdm_log_init(tool->name, MDM_LOG_INFO);
	cli.stdout_tty = isatty(STDOUT_FILENO);
	if (tool->cmds == NULL)
		return finish(tool->run(&cli, argc, argv));

	optind = 0;
	cli.optind = 1;
	while ((ch = next_opt(&cli, argc, argv, NULL, 1, &arg)) !=
	    MDM_CLI_DONE)
		if (ch == MDM_CLI_EXIT)
			return finish(cli.status);
	if (cli.optind >= argc)
		return finish(mdm_cli_usage(&cli, "no command given"));
	if ((cli.cmd = find_command(tool, argv[cli.optind])) == NULL)
		return finish(mdm_cli_usage(&cli, "'%s' is not a command",
		    argv[cli.optind]));
	argc -= cli.optind;
	argv += cli.optind;
	cli.optind = 0;
	return finish(cli.cmd->run(&cli, argc, argv));
}

const char *
mdm_cli_state_dir(const struct mdm_cli *cli)
{
	const char *env;

	if (cli->state_dir_opt != NULL && *cli->state_dir_opt != '\0')
		return cli->state_dir_opt;
	env = getenv("MDM_STATE_DIR");
	if (env != NULL && *env != '\0')
		return env;
	return MDM_DEFAULT_STATE_DIR;
}

int
mdm_cli_parse_int(const char *s, long long min, long long max,
    long long *out, struct mdm_err *e)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno == ERANGE || isspace(
	    (unsigned char)*s))
		return mdm_err_set(e, MDM_E_USAGE, "'%s' is not a number", s);
	if (v < min || v > max)
		return mdm_err_set(e, MDM_E_USAGE,
		    "%lld is out of range (%lld to %lld)", v, min, max);
	*out = v;
	return 0;
}

int
mdm_cli_parse_size(const char *s, long long min, long long max,
    long long *out, struct mdm_err *e)
{
	char num[32];
	size_t len = strlen(s);
	long long mult = 1;

	if (len == 0 || len >= sizeof(num))
		return mdm_err_set(e, MDM_E_USAGE, "'%s' is not a size", s);
	memcpy(num, s, len + 1);
	switch (num[len - 1]) {
	case 'k':
	case 'K':
		mult = 1024;
		num[len - 1] = '\0';
		break;
	case 'm':
	case 'M':
		mult = 1024 * 1024;
		num[len - 1] = '\0';
		break;
	}
	if (mdm_cli_parse_int(num, 0, LLONG_MAX / mult, out, e) == -1)
		return mdm_err_set(e, MDM_E_USAGE, "'%s' is not a size (like "
		    "65536, 64k, 1m)", s);
	*out *= mult;
	if (*out < min || *out > max)
		return mdm_err_set(e, MDM_E_USAGE, "%s is out of range (%lld "
		    "to %lld bytes)", s, min, max);
	return 0;
}

int
mdm_cli_parse_duration(const char *s, long long *seconds, struct mdm_err *e)
{
	static const struct {
		char unit;
		long long mult;
	} units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
		{ 'w', 604800 },
	};
	char num[32];
	size_t len = strlen(s), i;
	long long mult = 1, v;

	if (len == 0 || len >= sizeof(num))
		return mdm_err_set(e, MDM_E_USAGE,
		    "'%s' is not a duration (like 90s, 15m, 12h, 30d)", s);
	memcpy(num, s, len + 1);
	if (isalpha((unsigned char)num[len - 1])) {
		for (i = 0; i < MDM_ARRAY_LEN(units); i++)
			if (units[i].unit == num[len - 1])
				break;
		if (i == MDM_ARRAY_LEN(units))
			return mdm_err_set(e, MDM_E_USAGE, "'%s' is not a "
			    "duration (like 90s, 15m, 12h, 30d)", s);
		mult = units[i].mult;
		num[len - 1] = '\0';
	}
	if (mdm_cli_parse_int(num, 0, LLONG_MAX / mult, &v, e) == -1)
		return mdm_err_set(e, MDM_E_USAGE, "'%s' is not a duration "
		    "(like 90s, 15m, 12h, 30d)", s);
	*seconds = v * mult;
	return 0;
}

void
mdm_cli_ids_init(struct mdm_cli_ids *it, const struct mdm_cli *cli,
    int argc, char **argv)
{
	memset(it, 0, sizeof(*it));
	it->cli = cli;
	it->argc = argc;
	it->argv = argv;
	if (argc == 0)
		it->reading_stdin = 1;
}

void
mdm_cli_ids_release(struct mdm_cli_ids *it)
{
	free(it->line);
	it->line = NULL;
	it->line_alloc = 0;
}

static char *
trim(char *s, size_t len)
{
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/* 1 with a line, 0 at EOF of stdin, -1 on error. */
static int
read_stdin_id(struct mdm_cli_ids *it, const char **id, struct mdm_err *e)
{
	int delim = it->cli->nul ? '\0' : '\n';
	ssize_t n;
	char *s;

	for (;;) {
		errno = 0;
		n = getdelim(&it->line, &it->line_alloc, delim, stdin);
		if (n == -1) {
			if (ferror(stdin))
				return mdm_err_set_sys(e, MDM_E_IO, errno,
				    "reading ids from stdin");
			return 0;
		}
		if ((size_t)n > MDM_CLI_ID_MAX)
			return mdm_err_set(e, MDM_E_DATA, "an id on stdin is "
			    "longer than %d bytes", MDM_CLI_ID_MAX);
		if (memchr(it->line, '\0', (size_t)n - (it->line[n - 1] ==
		    '\0')) != NULL)
			return mdm_err_set(e, MDM_E_DATA, "an id on stdin "
			    "holds a NUL byte (use -0 for NUL-separated input)");
		s = trim(it->line, (size_t)n);
		if (*s == '\0')
			continue;
		*id = s;
		return 1;
	}
}

int
mdm_cli_ids_next(struct mdm_cli_ids *it, const char **id, struct mdm_err *e)
{
	int rc;

	for (;;) {
		if (it->reading_stdin) {
			if (!it->stdin_done) {
				if (!it->stdin_checked && it->argc == 0 &&
				    isatty(STDIN_FILENO))
					return mdm_err_set(e, MDM_E_USAGE,
					    "no ids given: name them as "
					    "operands or pipe them in, one per "
					    "line");
				it->stdin_checked = 1;
				rc = read_stdin_id(it, id, e);
				if (rc != 0)
					return rc;
				it->stdin_done = 1;
			}
			it->reading_stdin = 0;
		}
		if (it->next >= it->argc)
			return 0;
		if (strcmp(it->argv[it->next], "-") == 0) {
			it->next++;
			/* Stdin can be read once; a second "-" is empty. */
			it->reading_stdin = 1;
			continue;
		}
		*id = it->argv[it->next++];
		return 1;
	}
}

static void
print_text_field(const char *s)
{
	for (; *s != '\0'; s++)
		putchar(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s);
}

int
mdm_cli_record(struct mdm_cli *cli, const struct mdm_cli_field *f,
    size_t n, struct mdm_err *e)
{
	json_t *obj = NULL, *v;
	char *line = NULL;
	char num[32];
	size_t i;
	int rc = -1;

	if (cli->json) {
		if ((obj = json_object()) == NULL)
			goto oom;
		for (i = 0; i < n; i++) {
			switch (f[i].type) {
			case MDM_CLI_STR:
				v = f[i].s ? json_string(f[i].s) : json_null();
				break;
			case MDM_CLI_INT:
				v = json_integer(f[i].i);
				break;
			default:
				v = json_boolean(f[i].i);
				break;
			}
			/* json_string refuses bytes that are not UTF-8. */
			if (v == NULL)
				v = json_stringn_nocheck(f[i].s,
				    strlen(f[i].s));
			if (v == NULL || json_object_set_new(obj, f[i].key,
			    v) == -1)
				goto oom;
		}
		if ((line = json_dumps(obj, JSON_COMPACT |
		    JSON_PRESERVE_ORDER)) == NULL)
			goto oom;
		puts(line);
		rc = 0;
		goto out;
	}
	if (cli->stdout_tty && !cli->nul && !cli->header_done) {
		for (i = 0; i < n; i++)
			printf("%s%s", i ? "\t" : "", f[i].key);
		putchar('\n');
	}
	cli->header_done = 1;
	for (i = 0; i < n; i++) {
		if (i > 0)
			putchar('\t');
		switch (f[i].type) {
		case MDM_CLI_STR:
			print_text_field(f[i].s ? f[i].s : "");
			break;
		case MDM_CLI_INT:
			snprintf(num, sizeof(num), "%lld", f[i].i);
			fputs(num, stdout);
			break;
		default:
			fputs(f[i].i ? "true" : "false", stdout);
			break;
		}
	}
	putchar(cli->nul ? '\0' : '\n');
	rc = 0;
	goto out;
oom:
	mdm_err_set(e, MDM_E_SOFTWARE, "out of memory");
out:
	free(line);
	json_decref(obj);
	return rc;
}

int
mdm_cli_write_output(const char *path, const void *data, size_t len,
    struct mdm_err *e)
{
	if (path == NULL || strcmp(path, "-") == 0) {
		if (len > 0 && fwrite(data, 1, len, stdout) != len)
			return mdm_err_set(e, MDM_E_IO, "write error on "
			    "standard output");
		return 0;
	}
	return mdm_file_write_atomic(path, data, len, 0644, 0, e);
}

static void
draw(struct mdm_progress *p)
{
	char line[128], bar[31];
	unsigned long long pct = p->total ? p->done * 100 / p->total : 0;
	size_t fill = p->total ? (size_t)(p->done * 30 / p->total) : 0;

	if (fill > 30)
		fill = 30;
	memset(bar, '#', fill);
	memset(bar + fill, '.', 30 - fill);
	bar[30] = '\0';
	snprintf(line, sizeof(line), "%s [%s] %llu/%llu (%llu%%)", p->label,
	    bar, p->done, p->total, pct);
	mdm_log_status(line);
	p->last_draw_ms = mdm_monotonic_ms();
}

void
mdm_progress_start(struct mdm_progress *p, const struct mdm_cli *cli,
    const char *label, unsigned long long total)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->total = total;
	p->active = cli->verbosity >= 0 && isatty(STDERR_FILENO);
	if (p->active)
		draw(p);
}

void
mdm_progress_update(struct mdm_progress *p, unsigned long long done)
{
	p->done = done;
	if (p->active && mdm_monotonic_ms() - p->last_draw_ms >= 100)
		draw(p);
}

void
mdm_progress_end(struct mdm_progress *p)
{
	if (!p->active)
		return;
	draw(p);
	mdm_log_status_end();
	p->active = 0;
}
