/*
 * log: the one place libmdm and the tools write diagnostics.  Messages go
 * to stderr as "progname: message" (the composition contract), one line
 * each, filtered by a level that -q and -v move.  A server may route them
 * elsewhere with mdm_log_set_sink, and tests capture them the same way.
 */
#ifndef MDM_LOG_H
#define MDM_LOG_H

#include <stdarg.h>

enum mdm_log_level {
	MDM_LOG_ERROR = 0,	/* shown even with -q */
	MDM_LOG_WARN,
	MDM_LOG_INFO,		/* the default */
	MDM_LOG_DEBUG,		/* -v */
	MDM_LOG_TRACE,		/* -vv */
};

typedef void mdm_log_sink_fn(enum mdm_log_level level, const char *line,
    void *arg);

/* Microseconds on a monotonic clock, for durations in log lines. */
long long mdm_log_clock_us(void);

/* progname is borrowed and must outlive logging. */
void mdm_log_init(const char *progname, enum mdm_log_level level);
void mdm_log_set_level(enum mdm_log_level level);
enum mdm_log_level mdm_log_get_level(void);
const char *mdm_log_progname(void);

/* NULL restores stderr. */
void mdm_log_set_sink(mdm_log_sink_fn *fn, void *arg);

void mdm_log(enum mdm_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void mdm_vlog(enum mdm_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/*
 * A status line redrawn in place on stderr (a progress bar); a sink, if
 * set, does not get these.  mdm_log_status_end moves past the line.
 */
void mdm_log_status(const char *line);
void mdm_log_status_end(void);

#define mdm_log_error(...) mdm_log(MDM_LOG_ERROR, __VA_ARGS__)
#define mdm_log_warn(...) mdm_log(MDM_LOG_WARN, __VA_ARGS__)
#define mdm_log_info(...) mdm_log(MDM_LOG_INFO, __VA_ARGS__)
#define mdm_log_debug(...) mdm_log(MDM_LOG_DEBUG, __VA_ARGS__)

#endif
