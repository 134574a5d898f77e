#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "tap.h"

enum { OPT_NAME = 256, OPT_FLAG = 'f' };

static const struct mdm_cli_opt greet_opts[] = {
	{ "name", 'n', "name", OPT_NAME, "who to greet" },
	{ "flag", 'f', NULL, OPT_FLAG, "a flag" },
	MDM_CLI_OPT_END
};

static char seen_name[64];
static int seen_flag;
static int seen_operands;
static char seen_first[64];

static int
run_greet(struct mdm_cli *cli, int argc, char **argv)
{
	const char *arg;
	int ch;

	while ((ch = mdm_cli_getopt(cli, argc, argv, greet_opts, &arg)) !=
	    MDM_CLI_DONE) {
		switch (ch) {
		case OPT_NAME:
			snprintf(seen_name, sizeof(seen_name), "%s", arg);
			break;
		case OPT_FLAG:
			seen_flag++;
			break;
		default:
			return cli->status;
		}
	}
	seen_operands = argc - cli->optind;
	snprintf(seen_first, sizeof(seen_first), "%s",
	    seen_operands ? argv[cli->optind] : "");
	return 0;
}

static const struct mdm_cli_cmd cmds[] = {
	{ "greet", "[-f] [--name name] [id ...]", "say hello", greet_opts,
	    run_greet },
	{ NULL, NULL, NULL, NULL, NULL }
};

static const struct mdm_cli_tool tool = {
	.name = "mdm-test",
	.summary = "a tool for testing the cli module",
	.cmds = cmds,
};

/* Runs the tool with stdout sent to a file; returns the exit status. */
static int
run(const char *out, int argc, const char **args)
{
	char *argv[16];
	int i, rc, saved;
	FILE *f;

	for (i = 0; i < argc; i++)
		argv[i] = strdup(args[i]);
	argv[argc] = NULL;
	seen_name[0] = '\0';
	seen_flag = 0;
	seen_operands = -1;
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	f = fopen(out, "w");
	dup2(fileno(f), STDOUT_FILENO);
	fclose(f);
	rc = mdm_cli_main(&tool, argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	for (i = 0; i < argc; i++)
		free(argv[i]);
	return rc;
}

static char *
slurp(const char *path)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

static void
test_parsing(const char *out)
{
	const char *a1[] = { "mdm-test", "--state-dir", "/x", "greet", "-f",
	    "id1", "--name", "bob", "id2" };
	const char *a2[] = { "mdm-test", "greet", "--json", "-0" };
	const char *a3[] = { "mdm-test", "greet", "--bogus" };
	const char *a4[] = { "mdm-test", "greet", "--name" };
	const char *a5[] = { "mdm-test", "nosuch" };
	const char *a6[] = { "mdm-test", "greet", "--help" };
	const char *a7[] = { "mdm-test", "--help" };
	const char *a8[] = { "mdm-test", "greet", "--list-options" };
	const char *a9[] = { "mdm-test", "--list-commands" };
	const char *a10[] = { "mdm-test", "greet", "--", "--name" };
	const char *a11[] = { "mdm-test" };
	const char *a12[] = { "mdm-test", "-V" };

	is_int(run(out, 9, a1), 0, "options before and after operands");
	is_str(seen_name, "bob", "--name value after an operand");
	is_int(seen_flag, 1, "short flag");
	is_int(seen_operands, 2, "two operands left");
	is_str(seen_first, "id1", "operands keep their order");
	is_int(run(out, 4, a2), 64, "--json with -0 is a usage error");
	is_int(run(out, 3, a3), 64, "unknown option exits 64");
	is_str(slurp(out), "", "usage error prints nothing on stdout");
	is_int(run(out, 3, a4), 64, "missing option value exits 64");
	is_int(run(out, 2, a5), 64, "unknown command exits 64");
	is_int(run(out, 3, a6), 0, "command --help exits 0");
	ok(strstr(slurp(out), "usage: mdm-test greet [-f]") != NULL &&
	    strstr(slurp(out), "--name name") != NULL &&
	    strstr(slurp(out), "--state-dir") != NULL,
	    "command help shows its synopsis, options and global options");
	is_int(run(out, 2, a7), 0, "tool --help exits 0");
	ok(strstr(slurp(out), "greet") != NULL &&
	    strstr(slurp(out), "say hello") != NULL, "tool help lists commands");
	is_int(run(out, 3, a8), 0, "--list-options exits 0");
	ok(strstr(slurp(out), "--name\n-n\n") != NULL &&
	    strstr(slurp(out), "--json\n") != NULL, "--list-options lists "
	    "command and global options");
	ok(strstr(slurp(out), "list-options") == NULL,
	    "hidden options stay hidden");
	is_int(run(out, 2, a9), 0, "--list-commands exits 0");
	is_str(slurp(out), "greet\n", "--list-commands prints the commands");
	is_int(run(out, 4, a10), 0, "-- ends options");
	is_str(seen_first, "--name", "an operand after -- is an operand");
	is_int(run(out, 1, a11), 64, "no command is a usage error");
	is_int(run(out, 2, a12), 0, "-V exits 0");
	ok(strncmp(slurp(out), "mdm-test ", 9) == 0, "version printed");
}

static void
test_numbers(void)
{
	struct mdm_err e;
	long long v;

	ok(mdm_cli_parse_int("42", 0, 100, &v, &e) == 0 && v == 42,
	    "parse int");
	ok(mdm_cli_parse_int("101", 0, 100, &v, &e) == -1, "int over max");
	ok(mdm_cli_parse_int("4x", 0, 100, &v, &e) == -1, "trailing junk");
	ok(mdm_cli_parse_int("", 0, 100, &v, &e) == -1, "empty is no number");
	ok(mdm_cli_parse_int(" 4", 0, 100, &v, &e) == -1, "leading blank");
	ok(mdm_cli_parse_int("99999999999999999999", 0, 100, &v, &e) == -1,
	    "overflow");
	ok(mdm_cli_parse_duration("30d", &v, &e) == 0 && v == 30 * 86400,
	    "30d");
	ok(mdm_cli_parse_duration("90", &v, &e) == 0 && v == 90,
	    "bare number is seconds");
	ok(mdm_cli_parse_duration("1h", &v, &e) == 0 && v == 3600, "1h");
	ok(mdm_cli_parse_duration("2w", &v, &e) == 0 && v == 1209600, "2w");
	ok(mdm_cli_parse_duration("3y", &v, &e) == -1 && e.code == MDM_E_USAGE,
	    "unknown unit refused");
	ok(mdm_cli_parse_duration("d", &v, &e) == -1, "unit alone refused");
	ok(mdm_cli_parse_duration("-5m", &v, &e) == -1, "negative refused");
	ok(mdm_cli_parse_duration("99999999999999999w", &v, &e) == -1,
	    "overflowing duration refused");
}

static void
test_ids(const char *dir)
{
	struct mdm_cli cli = { .tool = &tool };
	struct mdm_cli_ids it;
	struct mdm_err e;
	char path[4200];
	char a[] = "a", dash[] = "-", b[] = "b";
	char *ops[] = { a, dash, b };
	const char *id;
	char got[256] = "";
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/ids", dir);
	f = fopen(path, "w");
	fputs("  x1 \n\n\tx2\r\n", f);
	fclose(f);
	if (freopen(path, "r", stdin) == NULL)
		return;
	mdm_cli_ids_init(&it, &cli, 3, ops);
	while ((rc = mdm_cli_ids_next(&it, &id, &e)) == 1) {
		strcat(got, id);	/* test code: bounded by the input */
		strcat(got, ",");
	}
	is_int(rc, 0, "ids end cleanly");
	is_str(got, "a,x1,x2,b,", "operands with - reading stdin in place, "
	    "blanks trimmed and skipped");
	mdm_cli_ids_release(&it);

	f = fopen(path, "w");
	fputs("n1", f);
	fputc('\0', f);
	fputs("n 2", f);
	fputc('\0', f);
	fclose(f);
	if (freopen(path, "r", stdin) == NULL)
		return;
	cli.nul = 1;
	got[0] = '\0';
	mdm_cli_ids_init(&it, &cli, 0, NULL);
	while ((rc = mdm_cli_ids_next(&it, &id, &e)) == 1) {
		strcat(got, id);
		strcat(got, ",");
	}
	is_str(got, "n1,n 2,", "-0 reads NUL-separated ids from stdin");
	mdm_cli_ids_release(&it);

	f = fopen(path, "w");
	for (rc = 0; rc < 2000; rc++)
		fputc('z', f);
	fclose(f);
	if (freopen(path, "r", stdin) == NULL)
		return;
	cli.nul = 0;
	mdm_cli_ids_init(&it, &cli, 0, NULL);
	ok(mdm_cli_ids_next(&it, &id, &e) == -1 && e.code == MDM_E_DATA,
	    "an overlong id is refused");
	mdm_cli_ids_release(&it);
}

static void
test_records(const char *dir)
{
	struct mdm_cli cli = { .tool = &tool };
	struct mdm_cli_field f[] = {
		MDM_CLI_FSTR("name", "a\tb"),
		MDM_CLI_FINT("n", 7),
		MDM_CLI_FBOOL("ok", 1),
		MDM_CLI_FSTR("none", NULL),
	};
	struct mdm_err e;
	char path[4200];
	int saved;
	FILE *out;

	snprintf(path, sizeof(path), "%s/out", dir);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	out = fopen(path, "w");
	dup2(fileno(out), STDOUT_FILENO);
	fclose(out);
	mdm_cli_record(&cli, f, 4, &e);
	cli.json = 1;
	mdm_cli_record(&cli, f, 4, &e);
	cli.json = 0;
	cli.nul = 1;
	mdm_cli_record(&cli, f, 2, &e);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	{
		char buf[512];
		FILE *in = fopen(path, "r");
		size_t n = fread(buf, 1, sizeof(buf), in);

		fclose(in);
		static const char want[] = "a b\t7\ttrue\t\n"
		    "{\"name\":\"a\\tb\",\"n\":7,\"ok\":true,\"none\":null}\n"
		    "a b\t7";	/* and the NUL that ends the string */

		ok(n == sizeof(want) && memcmp(buf, want, n) == 0,
		    "text, JSON and NUL records");
		if (n != sizeof(want))
			tap_diag("got %zu bytes: %.*s", n, (int)n, buf);
	}
}

int
main(void)
{
	char out[4200];

	snprintf(out, sizeof(out), "%s/stdout", tap_tmpdir());
	test_parsing(out);
	test_numbers();
	test_ids(tap_tmpdir());
	test_records(tap_tmpdir());
	{
		struct mdm_cli cli = { .tool = &tool };

		setenv("MDM_STATE_DIR", "/env/dir", 1);
		is_str(mdm_cli_state_dir(&cli), "/env/dir", "state dir from env");
		cli.state_dir_opt = "/opt/dir";
		is_str(mdm_cli_state_dir(&cli), "/opt/dir", "option beats env");
		unsetenv("MDM_STATE_DIR");
		cli.state_dir_opt = NULL;
		ok(mdm_cli_state_dir(&cli)[0] == '/', "compiled-in default");
	}
	return tap_done();
}
