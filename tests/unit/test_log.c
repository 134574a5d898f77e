#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "tap.h"

static char captured[8][256];
static enum mdm_log_level captured_level[8];
static int ncaptured;

static void
sink(enum mdm_log_level level, const char *line, void *arg)
{
	(void)arg;
	if (ncaptured < 8) {
		snprintf(captured[ncaptured], sizeof(captured[0]), "%s", line);
		captured_level[ncaptured++] = level;
	}
}

int
main(void)
{
	struct mdm_progress p;
	struct mdm_cli cli = { 0 };
	char big[3000];

	mdm_log_init("mdm-test", MDM_LOG_INFO);
	is_str(mdm_log_progname(), "mdm-test", "progname kept");
	mdm_log_set_sink(sink, NULL);

	mdm_log_info("hello %d", 1);
	mdm_log_debug("hidden at info level");
	mdm_log_warn("careful");
	mdm_log_error("broken\nline");
	is_int(ncaptured, 3, "debug filtered at the default level");
	is_str(captured[0], "hello 1", "message formatted");
	is_int(captured_level[1], MDM_LOG_WARN, "level passed to the sink");
	is_str(captured[2], "broken line", "newline becomes a space");

	mdm_log_set_level(MDM_LOG_ERROR);
	ncaptured = 0;
	mdm_log_info("quiet");
	mdm_log_warn("quiet too");
	mdm_log_error("still shown");
	is_int(ncaptured, 1, "-q level shows errors only");
	is_int(mdm_log_get_level(), MDM_LOG_ERROR, "level read back");

	mdm_log_set_level(MDM_LOG_TRACE);
	ncaptured = 0;
	mdm_log(MDM_LOG_TRACE, "trace");
	is_int(ncaptured, 1, "-vv level shows trace");

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ncaptured = 0;
	mdm_log_info("%s", big);
	ok(ncaptured == 1 && strlen(captured[0]) == sizeof(captured[0]) - 1,
	    "an overlong message is cut, not overflowed");

	/* Under ctest stderr is no terminal: the bar must stay silent. */
	mdm_progress_start(&p, &cli, "pushing", 100);
	ok(p.active == !!isatty(STDERR_FILENO), "progress bar only on a tty");
	mdm_progress_update(&p, 50);
	is_int((long long)p.done, 50, "progress counts");
	mdm_progress_end(&p);
	ok(!p.active, "progress ended");
	cli.verbosity = -1;
	mdm_progress_start(&p, &cli, "pushing", 100);
	ok(!p.active, "-q turns the progress bar off");

	mdm_log_set_sink(NULL, NULL);
	return tap_done();
}
