/*
 * cli: the contract every mdm tool keeps, in one place so the tools cannot
 * drift apart.  A tool describes itself (name, commands, option tables)
 * and calls mdm_cli_main(); this module parses the global options before
 * or after the subcommand, prints --help generated from the same tables
 * (and the hidden --list-options/--list-commands the completion test
 * reads), resolves the state directory, reads ids from operands or stdin,
 * prints records as tab-separated text, JSON Lines or NUL-terminated, draws
 * a progress bar on a terminal, and turns a struct mdm_err into a message
 * and an exit status.  Exit statuses follow sysexits; 1 is a clean "no".
 *
 * Like the rest of libmdm it never calls exit(): a command's run function
 * returns the status and mdm_cli_main returns it from main().  It writes
 * to stdout only what the tool asked for (help, records) and to stderr
 * only through log.c.
 */
#ifndef MDM_CLI_H
#define MDM_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "buf.h"
#include "err.h"

enum {
	MDM_EX_OK = 0,
	MDM_EX_NO = 1,		/* a clear "no": nothing found, nothing to do */
	MDM_EX_USAGE = 64,
	MDM_EX_DATAERR = 65,
	MDM_EX_NOINPUT = 66,
	MDM_EX_UNAVAILABLE = 69,
	MDM_EX_SOFTWARE = 70,
	MDM_EX_IOERR = 74,
	MDM_EX_TEMPFAIL = 75,
	MDM_EX_NOPERM = 77,
	MDM_EX_CONFIG = 78,
};

/* One option of a tool or command.  A table ends with MDM_CLI_OPT_END. */
struct mdm_cli_opt {
	const char *name;	/* long name without "--", or NULL */
	int short_name;		/* letter, or 0 */
	const char *arg;	/* argument name in --help; NULL for a flag */
	int id;			/* what mdm_cli_getopt returns: the letter, or >= 256 */
	const char *help;	/* one line */
};
#define MDM_CLI_OPT_END { NULL, 0, NULL, 0, NULL }

struct mdm_cli;

struct mdm_cli_cmd {
	const char *name;
	const char *synopsis;	/* what follows "usage: tool name " */
	const char *summary;	/* one line, for the tool's --help */
	const struct mdm_cli_opt *opts;
	/*
	 * argv[0] is the command name; the function calls mdm_cli_getopt
	 * with opts and returns the exit status.
	 */
	int (*run)(struct mdm_cli *cli, int argc, char **argv);
};

struct mdm_cli_tool {
	const char *name;
	const char *summary;
	/*
	 * A tool with subcommands sets cmds (ending with a zeroed entry); a
	 * tool without them sets synopsis, opts and run, which then gets the
	 * whole argv.
	 */
	const struct mdm_cli_cmd *cmds;
	const char *synopsis;
	const struct mdm_cli_opt *opts;
	int (*run)(struct mdm_cli *cli, int argc, char **argv);
};

struct mdm_cli {
	const struct mdm_cli_tool *tool;
	const struct mdm_cli_cmd *cmd;	/* NULL until a command is chosen */
	const char *state_dir_opt;	/* --state-dir, or NULL */
	int verbosity;			/* count of -v minus count of -q */
	int json;			/* --json: JSON Lines */
	int nul;			/* -0: NUL-terminated records and input */
	int stdout_tty;
	int optind;			/* first operand after mdm_cli_getopt */
	int status;			/* exit status when getopt says MDM_CLI_EXIT */
	int header_done;
};

enum {
	MDM_CLI_DONE = -1,	/* no more options: operands start at cli->optind */
	MDM_CLI_EXIT = -2,	/* help, version or a usage error was handled: return cli->status */
};

/* Runs the tool.  Returns the exit status for main() to return. */
int mdm_cli_main(const struct mdm_cli_tool *tool, int argc, char **argv);

/*
 * getopt_long over opts plus the global options, which it handles itself.
 * Returns the id of the next tool option (*arg set for options that take
 * one), MDM_CLI_DONE at the end, or MDM_CLI_EXIT.  Options may follow
 * operands; "--" ends them.
 */
int mdm_cli_getopt(struct mdm_cli *cli, int argc, char **argv,
    const struct mdm_cli_opt *opts, const char **arg);

/* --state-dir, else $MDM_STATE_DIR, else the compiled-in default.  Borrowed. */
const char *mdm_cli_state_dir(const struct mdm_cli *cli);

/* Logs e's message as "tool: message" and returns its exit status. */
int mdm_cli_fail(struct mdm_cli *cli, const struct mdm_err *e);
/* Logs a usage error, the synopsis and a --help hint; returns 64. */
int mdm_cli_usage(struct mdm_cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Number parsing for option values, with the option named in the error.
 * Durations are a number and a unit: s, m, h, d or w ("90s", "30d");
 * a bare number is seconds.
 */
int mdm_cli_parse_int(const char *s, long long min, long long max,
    long long *out, struct mdm_err *e);
int mdm_cli_parse_duration(const char *s, long long *seconds,
    struct mdm_err *e);
/* "65536", "64k", "1m": bytes, from min to max (MDM_E_USAGE otherwise). */
int mdm_cli_parse_size(const char *s, long long min, long long max,
    long long *out, struct mdm_err *e);

/*
 * Ids from operands, or one per line (NUL-terminated with -0) from stdin
 * when there are none and stdin is not a terminal; an operand "-" reads
 * stdin at that point.  Blank lines are skipped and surrounding blanks
 * trimmed.  A line over MDM_CLI_ID_MAX bytes is an error.
 */
#define MDM_CLI_ID_MAX 1024
struct mdm_cli_ids {
	const struct mdm_cli *cli;
	int argc;
	char **argv;
	int next;
	int reading_stdin;
	int stdin_checked;	/* a terminal on stdin was ruled out */
	int stdin_done;
	char *line;		/* owned */
	size_t line_alloc;
};
void mdm_cli_ids_init(struct mdm_cli_ids *it, const struct mdm_cli *cli,
    int argc, char **argv);
/*
 * 1 with *id set (borrowed until the next call), 0 at the end, -1 on
 * error.  With no operands and stdin a terminal it fails with
 * MDM_E_USAGE, so a tool never waits silently for input nobody types.
 */
int mdm_cli_ids_next(struct mdm_cli_ids *it, const char **id,
    struct mdm_err *e);
void mdm_cli_ids_release(struct mdm_cli_ids *it);

/*
 * Records.  Tab-separated fields with a header when stdout is a terminal,
 * a JSON object per line with --json, NUL-terminated with -0.  Tabs and
 * newlines inside a value become spaces in text output, so a record is
 * always one line.
 */
enum mdm_cli_ftype { MDM_CLI_STR, MDM_CLI_INT, MDM_CLI_BOOL };
struct mdm_cli_field {
	const char *key;
	enum mdm_cli_ftype type;
	const char *s;		/* MDM_CLI_STR; NULL prints empty / null */
	long long i;		/* MDM_CLI_INT, MDM_CLI_BOOL */
};
#define MDM_CLI_FSTR(k, v) { (k), MDM_CLI_STR, (v), 0 }
#define MDM_CLI_FINT(k, v) { (k), MDM_CLI_INT, NULL, (v) }
#define MDM_CLI_FBOOL(k, v) { (k), MDM_CLI_BOOL, NULL, (v) }

int mdm_cli_record(struct mdm_cli *cli, const struct mdm_cli_field *f,
    size_t n, struct mdm_err *e);

/*
 * The output of a -o option: written atomically to path (mode 0644), or
 * to stdout when path is NULL or "-".
 */
int mdm_cli_write_output(const char *path, const void *data, size_t len,
    struct mdm_err *e);

/*
 * A progress bar on stderr for long work, drawn only when stderr is a
 * terminal and -q was not given; updates are rate-limited, so calling
 * mdm_progress_update for every item is cheap.
 */
struct mdm_progress {
	int active;
	const char *label;
	unsigned long long total;
	unsigned long long done;
	long long last_draw_ms;
};
void mdm_progress_start(struct mdm_progress *p, const struct mdm_cli *cli,
    const char *label, unsigned long long total);
void mdm_progress_update(struct mdm_progress *p, unsigned long long done);
void mdm_progress_end(struct mdm_progress *p);

#endif
