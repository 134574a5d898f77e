#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "mdm_int.h"

static const char *log_progname = "mdm";
static enum mdm_log_level log_level = MDM_LOG_INFO;
static mdm_log_sink_fn *log_sink;
static void *log_sink_arg;

void
mdm_log_init(const char *progname, enum mdm_log_level level)
{
	if (progname != NULL)
		log_progname = progname;
	log_level = level;
}

void
mdm_log_set_level(enum mdm_log_level level)
{
	log_level = level;
}

enum mdm_log_level
mdm_log_get_level(void)
{
	return log_level;
}

const char *
mdm_log_progname(void)
{
	return log_progname;
}

void
mdm_log_set_sink(mdm_log_sink_fn *fn, void *arg)
{
	log_sink = fn;
	log_sink_arg = arg;
}

void
mdm_vlog(enum mdm_log_level level, const char *fmt, va_list ap)
{
	char line[1024];

	if (level > log_level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	mdm_strip_newlines(line);
	if (log_sink != NULL) {
		log_sink(level, line, log_sink_arg);
		return;
	}
	fprintf(stderr, "%s: %s%s\n", log_progname,
	    level == MDM_LOG_WARN ? "warning: " : "", line);
}

void
mdm_log(enum mdm_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mdm_vlog(level, fmt, ap);
	va_end(ap);
}

void
mdm_log_status(const char *line)
{
	if (log_sink != NULL)
		return;
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
}

void
mdm_log_status_end(void)
{
	if (log_sink != NULL)
		return;
	fputc('\n', stderr);
}

long long
mdm_log_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
